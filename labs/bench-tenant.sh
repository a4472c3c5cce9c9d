#!/usr/bin/env bash
# Tenant networking side by side: tenet's tenant mode (labs/src/bin/tenant-bench.rs) and
# OVN 23.03 (labs/bench_ovn.py, with Neutron's default security group as port groups and
# ACLs), same machine, same run: 1,000 ports over 20 switches / chassis, and 1 port more.
# Prints both results and the ratios. Needs root and labs/setup-host.sh (OVS, OVN).
#
#   labs/bench-tenant.sh [SWITCHES] [PORTS]     (default 20 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
SWITCHES=${1:-20}
PORTS=${2:-1000}
OUT=${OUT:-target/bench-tenant}
mkdir -p "$OUT"
cargo build --release -q -p tenet-controller -p tenet-netapi -p tenet-labs
echo "=== tenet: $PORTS ports over $SWITCHES switches (load: $(cut -d' ' -f1-3 /proc/loadavg)) ==="
./target/release/tenant-bench --switches "$SWITCHES" --ports "$PORTS" --json | tee "$OUT/tenet.json"
echo "=== OVN: $PORTS ports over $SWITCHES chassis (load: $(cut -d' ' -f1-3 /proc/loadavg)) ==="
/usr/bin/python3 labs/bench_ovn.py --chassis "$SWITCHES" --ports "$PORTS" --json "$OUT/ovn.json" >"$OUT/ovn.log" 2>&1 \
  || { tail -20 "$OUT/ovn.log"; exit 1; }
/usr/bin/python3 - "$OUT/tenet.json" "$OUT/ovn.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1])); o = json.load(open(sys.argv[2]))
b = o["bulk"]
# The control plane: OVN's databases, northd and every ovn-controller (not the switches,
# not the API client); tenet's controller and netapi.
CONTROL = ("nb-ovsdb", "sb-ovsdb", "northd", "ovn-controller")
def cpu(acct):
    return sum(r.get("cpu_s", 0) for k, r in acct.get("roles", {}).items() if k in CONTROL)
def rss(acct):
    return sum(r.get("peak_rss_kb_sum", 0) for k, r in acct.get("roles", {}).items() if k in CONTROL)
rows = [
    ("1000 ports: API calls done (s)", t["register_calls_s"], b["api_total_s"]),
    ("1000 ports: all flows installed / hv sync (s)", t["all_flows_installed_s"], b["t_sync_s"]),
    ("1000 ports: all sample pairs ping (s)", t["all_samples_connected_s"], b["t_all_pairs_ping_s"]),
    ("flows on the switches", t["flows_on_switches"], b["flows"]["openflow_total"]),
    ("control-plane CPU seconds", t["controller_cpu_s"] + t["netapi_cpu_s"], cpu(b["acct"])),
    ("control-plane peak RSS MiB", (t["controller_peak_rss_kib"] + t["netapi_peak_rss_kib"]) / 1024, rss(b["acct"]) / 1024),
    ("1 more port (1000 in place) to ping, median (ms)", t["one_port_to_connectivity_ms"], 1000 * o["scale_port"]["ping_s"]["median"]),
]
print("%-48s %12s %12s %8s" % ("", "tenet", "OVN", "OVN/tenet"))
for name, tv, ov in rows:
    try:
        ratio = "%.1fx" % (float(ov) / float(tv))
    except (TypeError, ValueError, ZeroDivisionError):
        ratio = "-"
    print("%-48s %12.3f %12.3f %8s" % (name, float(tv), float(ov) if ov is not None else float("nan"), ratio))
PY
