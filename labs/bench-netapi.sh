#!/usr/bin/env bash
# bench-netapi.sh -- throughput and latency of tenet-netapi's write path (release build).
#
# For each database engine (SQLite file in WAL mode, PostgreSQL), a fresh tenet-netapi is
# started on a fresh database, bootstrapped, and netapi-bench drives it with CLIENTS
# concurrent clients (one connection each) for WARMUP seconds, then measures DURATION seconds:
#   rest-ports  POST /v2.0/ports (MAC + one IPv4 address allocated, default security group,
#               one SQL transaction, one revision, logged in the change log)
#   grpc-ports  PortRegistry.RegisterPort with a binding (host, datapath id, interface name)
#   tokens      POST /v3/auth/tokens (password, project-scoped: dominated by argon2)
# Each mode gets its own server and database. The server and the load generator share the
# machine. Results: a markdown table on stdout and in target/netapi-bench.md.
#
# Usage: labs/bench-netapi.sh          (from anywhere; builds in release mode first)
# Environment (defaults in brackets):
#   CLIENTS [8]  DURATION [10]  WARMUP [2]  ENGINES ["sqlite postgres"]
#   MODES ["rest-ports grpc-ports tokens"]
#   PG_ADMIN [postgres://tenet:tenet@127.0.0.1:5432/postgres]  (role may CREATE DATABASE;
#            labs/setup-host.sh sets it up)
#   SQLITE_SYNC_FULL=1 runs SQLite with synchronous=FULL (fsync per commit).
#   NO_BUILD=1 skips the cargo build.  KEEP_LOGS=1 keeps the per-run logs.
set -uo pipefail

CLIENTS=${CLIENTS:-8}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ENGINES=${ENGINES:-"sqlite postgres"}
MODES=${MODES:-"rest-ports grpc-ports tokens"}
PG_ADMIN=${PG_ADMIN:-postgres://tenet:tenet@127.0.0.1:5432/postgres}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NETAPI=$ROOT/target/release/tenet-netapi
BENCH=$ROOT/target/release/netapi-bench
OUT=$ROOT/target/netapi-bench.md
LOGDIR=$(mktemp -d /tmp/bench-netapi.XXXXXX)
PASSWORD=benchpw

SERVER_PID=""
PG_DB=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      kill "$SERVER_PID" 2>/dev/null
      for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$SERVER_PID" 2>/dev/null
    fi
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
  fi
  if [ -n "$PG_DB" ]; then
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1
    PG_DB=""
  fi
}
cleanup() {
  stop_server
  if [ "${KEEP_LOGS:-0}" = 1 ]; then
    echo "logs kept in $LOGDIR" >&2
  else
    rm -rf "$LOGDIR"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${NO_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && cargo build --release -p tenet-netapi --bins) || exit 1
fi

# start_server ENGINE RUN: fresh database, server on ephemeral ports, admin bootstrapped.
# Sets SERVER_PID, HTTP_URL, GRPC_URL.
start_server() {
  local engine=$1 run=$2 db
  case $engine in
    sqlite) db="sqlite://$LOGDIR/$run.db" ;;
    postgres)
      PG_DB="tenet_bench_$$_${run//-/_}"
      psql "$PG_ADMIN" -qc "CREATE DATABASE $PG_DB" >/dev/null || { echo "cannot create $PG_DB on $PG_ADMIN" >&2; return 1; }
      db="${PG_ADMIN%/*}/$PG_DB" ;;
    *) echo "unknown engine $engine" >&2; return 1 ;;
  esac
  local extra=()
  [ "${SQLITE_SYNC_FULL:-0}" = 1 ] && extra+=(--sqlite-sync-full)
  RUST_LOG=warn "$NETAPI" serve --db "$db" --http 127.0.0.1:0 --grpc 127.0.0.1:0 "${extra[@]}" \
    > "$LOGDIR/$run.addr" 2> "$LOGDIR/$run.log" &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    [ "$(wc -l < "$LOGDIR/$run.addr")" -ge 2 ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server died: $(cat "$LOGDIR/$run.log")" >&2; return 1; }
    sleep 0.1
  done
  HTTP_URL="http://$(sed -n 's/^listening on //p' "$LOGDIR/$run.addr")"
  GRPC_URL="http://$(sed -n 's/^grpc listening on //p' "$LOGDIR/$run.addr")"
  "$NETAPI" bootstrap --db "$db" --password "$PASSWORD" --public-url "$HTTP_URL" > /dev/null 2>> "$LOGDIR/$run.log" || return 1
}

ROWS=()
for engine in $ENGINES; do
  for mode in $MODES; do
    run="$engine-$mode"
    echo "== $run: $CLIENTS clients, ${WARMUP}s warm-up, ${DURATION}s measured" >&2
    if ! start_server "$engine" "$run"; then
      ROWS+=("| $engine | $mode | failed to start | | | | | |")
      stop_server
      continue
    fi
    result=$("$BENCH" --url "$HTTP_URL" --grpc "$GRPC_URL" --password "$PASSWORD" --mode "$mode" \
      --clients "$CLIENTS" --duration "$DURATION" --warmup "$WARMUP" --label "$engine" 2> "$LOGDIR/$run.bench")
    echo "$result" >&2
    stop_server
    if [ -z "$result" ]; then
      ROWS+=("| $engine | $mode | failed: $(tail -n1 "$LOGDIR/$run.bench") | | | | | |")
      continue
    fi
    ROWS+=("$(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print("| {label} | {mode} | {clients} | {rate_per_s:,.0f} | {p50_ms:.2f} | {p90_ms:.2f} | {p99_ms:.2f} | {errors} |".format(
    label=r["label"], mode=sys.argv[2], **{k: r[k] for k in ("clients", "rate_per_s", "p50_ms", "p90_ms", "p99_ms", "errors")}))
' "$result" "$mode")")
  done
done

{
  echo "## netapi write path ($(date -u +%Y-%m-%d), $(nproc) cores, release build)"
  echo
  echo "Command: \`CLIENTS=$CLIENTS DURATION=$DURATION WARMUP=$WARMUP ENGINES=\"$ENGINES\" MODES=\"$MODES\"$([ "${SQLITE_SYNC_FULL:-0}" = 1 ] && echo ' SQLITE_SYNC_FULL=1') labs/bench-netapi.sh\`"
  echo
  echo "| engine | mode | clients | ops/s | p50 ms | p90 ms | p99 ms | errors |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${ROWS[@]}"
} | tee "$OUT"
echo "(written to $OUT)" >&2
