#!/usr/bin/env bash
# IPS steering benchmark through the whole platform: netapi, the tenant-mode controller,
# compute with two namespace-driver hosts, VMs A and B on host 1, Suricata instances on
# host 1 ("near") and host 2 ("far"). Ping RTT (200 at 10 ms) and iperf3 A->B (5 s) with no
# chain, then with all of A's traffic chained through each instance; ROUNDS alternating.
#   labs/bench-steering.sh [ROUNDS]     (default 3)
# Needs root and labs/setup-host.sh. Prints one line per round and mode, then a JSON line
# of medians. The test binary only orchestrates, so the debug profile is fine.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,8p' "$0"; exit 0 ;; esac
TENET_STEER_BENCH_ROUNDS=${1:-3} cargo test -q -p tenet-tests --test tenant_ips steering_bench -- --ignored --nocapture 2>&1 \
  | grep -E '^round |^steer-bench:|panicked|Error' || true
