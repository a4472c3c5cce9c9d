#!/usr/bin/env bash
# Migration benchmark: a TCG guest (labs/guest) live-migrates (shared storage) and
# block-migrates between the system libvirtd and a second one (labs/libvirtd-second.sh),
# pinged 100 times a second and carrying a TCP echo stream from a namespace VM on a third
# host; once with tenet's controller (tenant mode, dual delivery) and once with the same
# bridges turned into plain MAC-learning switches (standalone, NORMAL) as the baseline.
#   labs/bench-migration.sh [ROUNDS]      (default 1; each round is 4 migrations, ~3 min)
#   labs/bench-migration.sh ns            ten namespace-driver VMs migrating at once
# Needs root and labs/setup-host.sh. Prints a line per migration and a JSON summary.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
  ns) cargo test -q -p tenet-tests --test compute_namespace ten_namespace_vms_migrate_at_once -- --ignored --nocapture 2>&1 \
        | grep -E '^ten|panicked|Error' || true
      exit 0 ;;
esac
TENET_MIGRATION_BENCH_ROUNDS=${1:-1} cargo test -q -p tenet-tests --test compute_libvirt migration_bench -- --ignored --nocapture 2>&1 \
  | grep -E '^round |^migration-bench:|panicked|Error' || true
