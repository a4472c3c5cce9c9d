#!/usr/bin/env bash
# Compute benchmark: the platform on this machine (netapi, tenant controller, compute API,
# two namespace-driver hosts) through the Nova REST API: server create to ACTIVE and to the
# first ping from another VM, and N servers on one machine (time, memory per server).
#   labs/bench-compute.sh [VMS]     (default 200)
# Needs root and labs/setup-host.sh. Prints one JSON line.
set -euo pipefail
cd "$(dirname "$0")/.."
TENET_BENCH_VMS=${1:-200} cargo test --release -q -p tenet-tests --test compute_bench -- --ignored --nocapture 2>&1 \
  | grep -E '^compute-bench:|panicked|Error' || true
