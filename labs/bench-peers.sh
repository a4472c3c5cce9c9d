#!/usr/bin/env bash
# bench-peers.sh -- side-by-side cbench-style benchmark of tenet-controller against the peer
# controllers installed on the lab machines (see labs/setup-host.sh):
#   tenet-controller   target/release/tenet-controller --listen 127.0.0.1:PORT --mode learning
#   ovs-testcontroller Open vSwitch's C learning switch (OpenFlow 1.0; 1.3 when it accepts -O OpenFlow13)
#   os-ken             osken-manager with labs/osken_learning.py (OpenFlow 1.0 and 1.3)
#
# For OpenFlow 1.0 and 1.3, throughput and latency mode, every controller is started fresh,
# benchmarked by ofbench with identical parameters, and killed (by PID) afterwards. The RESULT
# lines are collected into a markdown table with the tenet/peer ratios. ofbench's
# --count-by-type lines tell how each controller answers a PACKET_IN (FLOW_MOD with the buffer
# id, PACKET_OUT, or both -- cbench counts every FLOW_MOD ADD and non-LLDP PACKET_OUT, so a
# controller sending two messages per PACKET_IN would be counted twice).
#
# Usage: labs/bench-peers.sh        (from anywhere; builds in release mode first)
# Environment (defaults in brackets):
#   SWITCHES [16]  MACS [1000]  LOOPS [10]  MS [1000]  WARMUP [1]  CONNECT_DELAY_MS [10]
#   VERSIONS ["1.0 1.3"]  MODES ["throughput latency"]
#   CONTROLLERS ["tenet tenet-1t ovs-testcontroller os-ken"]  (tenet-1t: tenet-controller --threads 1)
#   PORT_BASE [16660]  (one fresh port per run, counting up; keep within 16600-16699)
#   NO_BUILD=1 skips the cargo build.  KEEP_LOGS=1 keeps the per-run logs.
set -uo pipefail

SWITCHES=${SWITCHES:-16}
MACS=${MACS:-1000}
LOOPS=${LOOPS:-10}
MS=${MS:-1000}
WARMUP=${WARMUP:-1}
CONNECT_DELAY_MS=${CONNECT_DELAY_MS:-10}
VERSIONS=${VERSIONS:-"1.0 1.3"}
MODES=${MODES:-"throughput latency"}
CONTROLLERS=${CONTROLLERS:-"tenet tenet-1t ovs-testcontroller os-ken"}
PORT_BASE=${PORT_BASE:-16660}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OFBENCH=$ROOT/target/release/ofbench
TENET=$ROOT/target/release/tenet-controller
OSKEN_APP=$ROOT/labs/osken_learning.py
LOGDIR=$(mktemp -d /tmp/bench-peers.XXXXXX)

PEER_PID=""
cleanup() {
  stop_peer
  if [ "${KEEP_LOGS:-0}" = 1 ]; then
    echo "logs kept in $LOGDIR" >&2
  else
    rm -rf "$LOGDIR"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_peer() {
  if [ -n "$PEER_PID" ]; then
    if kill -0 "$PEER_PID" 2>/dev/null; then
      kill "$PEER_PID" 2>/dev/null
      for _ in $(seq 1 30); do kill -0 "$PEER_PID" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$PEER_PID" 2>/dev/null
    fi
    wait "$PEER_PID" 2>/dev/null
    PEER_PID=""
  fi
}

# --- build -----------------------------------------------------------------------------------
TENET_NOTE=""
if [ "${NO_BUILD:-0}" != 1 ]; then
  echo "== building ofbench and tenet-controller (release)" >&2
  if ! (cd "$ROOT" && cargo build --release -p tenet-labs -p tenet-controller); then
    echo "warning: building tenet-controller failed; building ofbench alone" >&2
    (cd "$ROOT" && cargo build --release -p tenet-labs) || { echo "error: ofbench does not build" >&2; exit 1; }
    if [ -x "$TENET" ]; then
      TENET_NOTE="tenet-controller did not build: stale binary from $(date -r "$TENET" '+%Y-%m-%d %H:%M')"
    fi
  fi
fi
[ -x "$OFBENCH" ] || { echo "error: $OFBENCH missing" >&2; exit 1; }

listening() { ss -Hltn "( sport = :$1 )" 2>/dev/null | grep -q .; }

# start_peer NAME OF PORT LOG -> sets PEER_PID; returns 1 and sets START_WHY if it does not come up
START_WHY=""
start_peer() {
  local name=$1 of=$2 port=$3 log=$4
  START_WHY=""
  case $name in
    tenet)
      [ -x "$TENET" ] || { START_WHY="$TENET not found"; return 1; }
      "$TENET" --listen "127.0.0.1:$port" --api 127.0.0.1:0 --grpc 127.0.0.1:0 --mode learning --log-format text >"$log" 2>&1 &
      ;;
    tenet-1t)
      # One thread, like both peers: the load generator holds one of the machine's cores.
      [ -x "$TENET" ] || { START_WHY="$TENET not found"; return 1; }
      "$TENET" --listen "127.0.0.1:$port" --api 127.0.0.1:0 --grpc 127.0.0.1:0 --mode learning --threads 1 --log-format text >"$log" 2>&1 &
      ;;
    ovs-testcontroller)
      command -v ovs-testcontroller >/dev/null || { START_WHY="ovs-testcontroller not installed"; return 1; }
      local proto=OpenFlow10
      [ "$of" = 1.3 ] && proto=OpenFlow13
      # -vwarn: without it, its poll-loop INFO lines (rate-limited) cost it throughput.
      ovs-testcontroller -vwarn -O "$proto" --unixctl="$LOGDIR/ovs-testcontroller.$port.ctl" \
        "ptcp:$port:127.0.0.1" >"$log" 2>&1 &
      ;;
    os-ken)
      command -v osken-manager >/dev/null || { START_WHY="osken-manager not installed"; return 1; }
      osken-manager --ofp-listen-host 127.0.0.1 --ofp-tcp-listen-port "$port" "$OSKEN_APP" >"$log" 2>&1 &
      ;;
  esac
  PEER_PID=$!
  for _ in $(seq 1 150); do # up to 15 s (os-ken takes a few seconds to import)
    if ! kill -0 "$PEER_PID" 2>/dev/null; then
      wait "$PEER_PID" 2>/dev/null
      START_WHY="exited at start-up: $(tail -n 2 "$log" | tr '\n' ' ')"
      PEER_PID=""
      return 1
    fi
    listening "$port" && return 0
    sleep 0.1
  done
  START_WHY="not listening on port $port after 15 s"
  stop_peer
  return 1
}

# --- runs ------------------------------------------------------------------------------------
declare -A AVG SD NOTE MIX LOAD
port=$PORT_BASE
for of in $VERSIONS; do
  for mode in $MODES; do
    for ctl in $CONTROLLERS; do
      key="$ctl|$of|$mode"
      log="$LOGDIR/${ctl}-${of}-${mode}"
      echo "== $ctl OpenFlow $of $mode (port $port)" >&2
      if ! start_peer "$ctl" "$of" "$port" "$log.peer.log"; then
        why=$START_WHY
        if [ "$ctl" = ovs-testcontroller ] && [ "$of" = 1.3 ]; then
          NOTE[$key]="n/a (no OpenFlow 1.3: $why)"
        else
          NOTE[$key]="failed to start: $why"
        fi
        echo "   $ctl: ${NOTE[$key]}" >&2
        port=$((port + 1))
        continue
      fi
      LOAD[$key]=$(cut -d' ' -f1 /proc/loadavg)
      args=(--controller "127.0.0.1:$port" --of "$of" -s "$SWITCHES" -M "$MACS" -l "$LOOPS" -m "$MS"
            -w "$WARMUP" --connect-delay-ms "$CONNECT_DELAY_MS" --count-by-type)
      [ "$mode" = throughput ] && args+=(-t)
      limit=$(( (LOOPS * (MS + 100)) / 1000 + 40 ))
      timeout "$limit" "$OFBENCH" "${args[@]}" >"$log.out" 2>"$log.err"
      rc=$?
      if ! kill -0 "$PEER_PID" 2>/dev/null; then
        echo "   warning: $ctl exited during the run" >&2
      fi
      stop_peer
      port=$((port + 1))
      grep -E '^RESULT|^COUNT-BY-TYPE (measured|run):' "$log.out" | sed 's/^/   /' >&2
      [ -s "$log.err" ] && sed 's/^/   stderr: /' "$log.err" | head -n 5 >&2
      result=$(grep '^RESULT:' "$log.out" | tail -n 1)
      if [ -z "$result" ]; then
        NOTE[$key]="ofbench failed (rc $rc): $(tail -n 1 "$log.err")"
        continue
      fi
      # RESULT: N switches K tests min/max/avg/stdev = a/b/c/d responses/s
      read -r avg sd < <(echo "$result" | sed 's/.*= //; s/ responses.*//' | awk -F/ '{print $3, $4}')
      AVG[$key]=$avg
      SD[$key]=$sd
      # How the controller answers: exact per PACKET_IN once its answers settled (latency mode);
      # in throughput mode (kernel socket backlog unanswered at the end) the share of responses.
      run=$(grep '^COUNT-BY-TYPE run:' "$log.out")
      meas=$(grep '^COUNT-BY-TYPE measured:' "$log.out")
      MIX[$key]=$(awk -v run="$run" -v meas="$meas" 'BEGIN {
        n = split(run, a, " "); for (i = 1; i <= n; i++) if (split(a[i], kv, "=") == 2) R[kv[1]] = kv[2]
        n = split(meas, a, " "); for (i = 1; i <= n; i++) if (split(a[i], kv, "=") == 2) M[kv[1]] = kv[2]
        settled = (run ~ /settled=yes/)
        if (settled && R["packet_in"] > 0) {
          fb = R["flow_mod"] > 0 ? 100 * R["flow_mod_buffered"] / R["flow_mod"] : 0
          printf "%.2f FLOW_MOD (%.0f%% with buffer id) + %.2f PACKET_OUT per PACKET_IN", \
            R["flow_mod"] / R["packet_in"], fb, R["packet_out"] / R["packet_in"]
        } else if (M["responses"] > 0) {
          fb = M["flow_mod"] > 0 ? 100 * M["flow_mod_buffered"] / M["flow_mod"] : 0
          printf "responses: %.1f%% FLOW_MOD (%.0f%% with buffer id), %.1f%% PACKET_OUT (backlog unsettled)", \
            100 * M["flow_mod_counted"] / M["responses"], fb, 100 * M["packet_out_counted"] / M["responses"]
        } else printf "no responses"
      }')
      if [ "${ctl%-1t}" = tenet ] && [ -n "$TENET_NOTE" ]; then NOTE[$key]=$TENET_NOTE; fi
      if [ "$rc" -ne 0 ]; then NOTE[$key]="${NOTE[$key]:+${NOTE[$key]}; }ofbench rc $rc"; fi
      if grep -q 'connection closed\|failed' "$log.err"; then
        NOTE[$key]="${NOTE[$key]:+${NOTE[$key]}; }connections dropped (see stderr)"
      fi
      if grep -q 'negotiation fails' "$log.err"; then
        NOTE[$key]="${NOTE[$key]:+${NOTE[$key]}; }version negotiation failed"
      fi
    done
  done
done

# --- report ----------------------------------------------------------------------------------
fmt() { [ -n "${1:-}" ] && printf "%.0f" "$1" || printf "n/a"; }
echo
echo "## ofbench: tenet vs peers"
echo
echo "Parameters: $SWITCHES switches, $MACS MACs per switch, $LOOPS loops x $MS ms ($WARMUP warm-up), connects staggered ${CONNECT_DELAY_MS} ms; $(nproc) CPUs; $(date -u '+%Y-%m-%d %H:%M UTC')."
echo
echo "| controller | OF | mode | avg responses/s | stdev | how it answers | load avg (1 min) at start | notes |"
echo "|---|---|---|---:|---:|---|---:|---|"
for of in $VERSIONS; do
  for mode in $MODES; do
    for ctl in $CONTROLLERS; do
      key="$ctl|$of|$mode"
      echo "| $ctl | $of | $mode | $(fmt "${AVG[$key]:-}") | $(fmt "${SD[$key]:-}") | ${MIX[$key]:-} | ${LOAD[$key]:-} | ${NOTE[$key]:-} |"
    done
  done
done
echo
echo "| tenet | OF | mode | tenet / ovs-testcontroller | tenet / os-ken |"
echo "|---|---|---|---:|---:|"
ratio() {
  if [ -n "${1:-}" ] && [ -n "${2:-}" ] && awk -v d="$2" 'BEGIN { exit !(d > 0) }'; then
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
  else
    printf "n/a"
  fi
}
for tn in tenet tenet-1t; do
  for of in $VERSIONS; do
    for mode in $MODES; do
      t=${AVG["$tn|$of|$mode"]:-}
      [ -n "$t" ] || continue
      echo "| $tn | $of | $mode | $(ratio "$t" "${AVG["ovs-testcontroller|$of|$mode"]:-}") | $(ratio "$t" "${AVG["os-ken|$of|$mode"]:-}") |"
    done
  done
done
echo
echo "How each controller answers a PACKET_IN (ofbench --count-by-type; latency mode, where every PACKET_IN"
echo "is answered before the run ends, so the ratio is exact):"
for ctl in $CONTROLLERS; do
  for of in $VERSIONS; do
    m=${MIX["$ctl|$of|latency"]:-}
    [ -n "$m" ] && echo "- $ctl, OpenFlow $of: $m"
  done
done
echo
cat <<'EOF'
Notes:
- Responses are counted as cbench does: FLOW_MOD ADD/MODIFY_STRICT and non-LLDP PACKET_OUT, no xid
  matching, so a controller answering with FLOW_MOD + PACKET_OUT would be counted twice. A FLOW_MOD
  "with buffer id" makes the switch release the buffered packet itself: one message per PACKET_IN.
- The few PACKET_OUTs (one per switch) answer the learn step's unbuffered gratuitous ARP (flooded);
  in OpenFlow 1.3 os-ken also installs one table-miss FLOW_MOD per switch.
- Throughput mode fills the loopback socket buffers (up to 16 MiB each way per switch), so a slow
  controller still has a backlog of unanswered PACKET_INs at the end; there the column gives the
  share of each message type among the responses instead.
- ofbench and the controller share the machine's CPUs (and with anything else running: see the
  load column); compare runs made under similar load.
EOF
