#!/usr/bin/env bash
# IPS appliance benchmark: what the inline Suricata appliance (labs/ips-appliance.sh) adds
# on this machine. One OVS bridge (userspace datapath), two namespaces A and B, flows set by
# hand (no controller): ping RTT (200 pings 10 ms apart) and iperf3 TCP throughput A->B (10 s),
# direct and through the appliance, ROUNDS times alternating.
#   labs/bench-ips.sh [ROUNDS]     (default 3)
# Needs root and labs/setup-host.sh. Prints one line per round and mode, then one JSON line.
# The test binary only orchestrates (ovs-ofctl, ping, iperf3), so the debug profile is fine.
set -euo pipefail
cd "$(dirname "$0")/.."
TENET_IPS_BENCH_ROUNDS=${1:-3} cargo test -q -p tenet-tests --test ips_appliance ips_bench -- --ignored --nocapture 2>&1 \
  | grep -E '^round |^ips-bench:|panicked|Error' || true
