#!/usr/bin/env bash
# An inline IPS appliance for the labs: Suricata 7 in its own network namespace,
# bridging two interfaces (AF_PACKET `copy-mode: ips`) that are plugged into an OVS
# bridge. Whatever OVS sends into one port comes out of the other unless a `drop`
# rule matches; when Suricata is not running nothing passes (fail-closed).
#
#   OVS bridge --IN_IF==veth==ips-in--[ suricata, namespace NAME ]--ips-out==veth==OUT_IF-- OVS bridge
#
# Run `labs/ips-appliance.sh --help` for the commands. Needs root, Open vSwitch and
# Suricata (labs/setup-host.sh installs both). All state lives in one directory per
# appliance ($TENET_IPS_DIR/NAME, default /run/tenet-ips/NAME).
set -euo pipefail

STATE_ROOT=${TENET_IPS_DIR:-/run/tenet-ips}
# How long Suricata may take to say "Engine started" (it takes ~0.3 s here).
START_TIMEOUT=${TENET_IPS_START_TIMEOUT:-30}
# How long Suricata may take to exit after SIGTERM (it takes ~3.6 s here).
STOP_TIMEOUT=${TENET_IPS_STOP_TIMEOUT:-20}
# The appliance's own ends of the two veth pairs, inside its namespace.
INNER_IN=ips-in
INNER_OUT=ips-out

usage() {
  cat <<'EOF'
Usage: labs/ips-appliance.sh COMMAND NAME [ARGS]

  start NAME BRIDGE IN_IF OUT_IF [--rules FILE] [--mac-in MAC] [--mac-out MAC]
        Create namespace NAME with two veth pairs whose host ends IN_IF and OUT_IF
        become ports of OVS bridge BRIDGE, write a suricata.yaml bridging the
        appliance ends (ips-in <-> ips-out, AF_PACKET copy-mode ips) and start
        Suricata there; returns once Suricata says "Engine started".
        --rules FILE   Suricata rules to use (copied into the state directory);
                       default: drop any TCP/UDP payload containing EVIL-PAYLOAD
                       (sid 1000001 TCP, 1000002 UDP), in both directions;
                       everything else passes.
        --mac-in MAC, --mac-out MAC
                       MAC addresses of the appliance's own NICs (ips-in, ips-out),
                       also recorded as external_ids:attached-mac of the OVS
                       interfaces IN_IF and OUT_IF (as libvirt does for a VM).
        On failure everything the command made is removed again.
  stop NAME     SIGTERM Suricata, wait for it, then remove the OVS ports, veths,
                namespace and state directory. Idempotent.
  kill NAME     SIGKILL Suricata only (a dead appliance); namespace and ports stay,
                so traffic steered into IN_IF/OUT_IF is lost.
  restart NAME  Start Suricata again in the existing namespace (stopping it first
                if it runs); waits for "Engine started".
  eve NAME      Print the path of the appliance's eve.json.
  status NAME   Print the appliance's state as KEY=VALUE lines. Exit status 0 when
                Suricata runs, 3 when the appliance exists but Suricata does not
                run, 4 when there is no such appliance.

Traffic OVS sends into IN_IF leaves through OUT_IF and the other way round. The
host ends' tx counters (/sys/class/net/IF/statistics/tx_packets) count the frames
that entered the appliance.

Environment: TENET_IPS_DIR (state root, default /run/tenet-ips),
TENET_IPS_START_TIMEOUT (seconds, default 30), TENET_IPS_STOP_TIMEOUT (default 20).
Needs root, a running Open vSwitch and Suricata 7 (labs/setup-host.sh).
EOF
}

die() {
  echo "ips-appliance.sh: $*" >&2
  exit 1
}

# --- the instance's files ------------------------------------------------------
dir_of() { printf '%s/%s' "$STATE_ROOT" "$1"; }
pidfile_of() { printf '%s/suricata.pid' "$(dir_of "$1")"; }
eve_of() { printf '%s/log/eve.json' "$(dir_of "$1")"; }

netns_exists() { [ -e "/run/netns/$1" ]; }

# The PID of NAME's Suricata, if it runs: the pidfile's process must be the suricata
# binary and live in namespace NAME, so a reused PID is never signalled.
suricata_pid() {
  local name=$1 pidfile pid exe
  pidfile=$(pidfile_of "$name")
  [ -s "$pidfile" ] || return 1
  pid=$(tr -dc '0-9' <"$pidfile")
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
  [ "${exe##*/}" = suricata ] || return 1
  [ "$(ip netns identify "$pid" 2>/dev/null || true)" = "$name" ] || return 1
  printf '%s' "$pid"
}

# Waits until PID is gone; returns 1 after SECONDS.
wait_gone() {
  local pid=$1 seconds=$2 i
  for ((i = 0; i < seconds * 10; i++)); do
    [ -d "/proc/$pid" ] || return 0
    # A zombie has exited already.
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z)" = Z ] && return 0
    sleep 0.1
  done
  return 1
}

load_instance() {
  local name=$1 env
  env="$(dir_of "$name")/instance.env"
  [ -r "$env" ] || die "no appliance named $name (no $env)"
  # shellcheck source=/dev/null
  . "$env"
}

default_rules() {
  cat <<'EOF'
# tenet lab IPS rules. Everything not dropped here passes (IPS mode passes by default).
# "any any -> any any" matches the payload in both directions of a connection.
drop tcp any any -> any any (msg:"tenet test: forbidden payload"; content:"EVIL-PAYLOAD"; sid:1000001; rev:1;)
drop udp any any -> any any (msg:"tenet test: forbidden payload (udp)"; content:"EVIL-PAYLOAD"; sid:1000002; rev:1;)
EOF
}

write_config() {
  local dir=$1
  cat >"$dir/suricata.yaml" <<EOF
%YAML 1.1
---
# Written by labs/ips-appliance.sh: a two-port inline IPS between $INNER_IN and $INNER_OUT.
vars:
  address-groups:
    HOME_NET: "[10.0.0.0/8,172.16.0.0/12,192.168.0.0/16]"
    EXTERNAL_NET: "any"
  port-groups:
    HTTP_PORTS: "80"
default-log-dir: $dir/log
default-rule-path: $dir
rule-files:
  - rules
classification-file: /etc/suricata/classification.config
reference-config-file: /etc/suricata/reference.config

# One worker thread per interface does capture, detection and forwarding.
runmode: workers
af-packet:
  - interface: $INNER_IN
    threads: 1
    copy-mode: ips
    copy-iface: $INNER_OUT
    cluster-id: 98
    cluster-type: cluster_flow
    # Defragmenting inline would change what is forwarded.
    defrag: no
    use-mmap: yes
    # OVS's userspace datapath leaves checksums unset (tx offload); do not judge them.
    checksum-checks: no
  - interface: $INNER_OUT
    threads: 1
    copy-mode: ips
    copy-iface: $INNER_IN
    cluster-id: 97
    cluster-type: cluster_flow
    defrag: no
    use-mmap: yes
    checksum-checks: no

stream:
  inline: auto
  checksum-validation: no
  # The default (yes) drops OVS-netdev retransmits as invalid: collateral drops.
  drop-invalid: no

outputs:
  - eve-log:
      enabled: yes
      filetype: regular
      filename: eve.json
      types:
        - alert
        - drop:
            alerts: yes

logging:
  default-log-level: notice
  outputs:
    - console:
        enabled: yes
    - file:
        enabled: yes
        level: info
        filename: suricata.log

unix-command:
  enabled: no
stats:
  enabled: no
livedev:
  use-for-tracking: false
EOF
}

# Starts Suricata in namespace NAME and waits for "Engine started".
# Returns 1 (after printing its output) when it exits or does not start in time;
# a Suricata that hangs is killed.
start_suricata() {
  local name=$1 dir pidfile out pid i
  dir=$(dir_of "$name")
  pidfile=$(pidfile_of "$name")
  out="$dir/log/suricata.out"
  mkdir -p "$dir/log"
  # Suricata refuses to start over a stale pidfile.
  rm -f "$pidfile"
  : >"$out"
  # Detached from our stdio and session, so callers that wait for our output
  # (and their Ctrl-C) are not tied to the daemon.
  setsid ip netns exec "$name" suricata -c "$dir/suricata.yaml" --af-packet -k none --init-errors-fatal \
    --pidfile "$pidfile" </dev/null >>"$out" 2>&1 &
  pid=$!
  # No "Killed" job notice from this shell if the timeout below has to kill it.
  disown "$pid"
  for ((i = 0; i < START_TIMEOUT * 10; i++)); do
    if grep -q 'Engine started' "$out"; then
      echo "suricata for $name started (pid $(cat "$pidfile" 2>/dev/null || echo "$pid"))"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "ips-appliance.sh: suricata for $name exited before \"Engine started\"; its output ($out):" >&2
      sed 's/^/  | /' "$out" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "ips-appliance.sh: suricata for $name did not say \"Engine started\" within ${START_TIMEOUT}s; its output ($out):" >&2
  sed 's/^/  | /' "$out" >&2
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 5 || true
  return 1
}

# SIGTERM (or SIGKILL) NAME's Suricata and wait until it has gone.
signal_suricata() {
  local name=$1 sig=$2 pid
  pid=$(suricata_pid "$name") || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" "$STOP_TIMEOUT"; then
    echo "ips-appliance.sh: suricata $pid did not exit within ${STOP_TIMEOUT}s of SIG$sig; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 || die "suricata $pid survives SIGKILL"
  fi
}

# --- commands ------------------------------------------------------------------
cmd_start() {
  [ $# -ge 4 ] || die "start needs NAME BRIDGE IN_IF OUT_IF (see --help)"
  local name=$1 bridge=$2 in_if=$3 out_if=$4
  shift 4
  local rules="" mac_in="" mac_out=""
  while [ $# -gt 0 ]; do
    case $1 in
      --rules) [ $# -ge 2 ] || die "--rules needs a FILE"; rules=$2; shift 2 ;;
      --mac-in) [ $# -ge 2 ] || die "--mac-in needs a MAC"; mac_in=$2; shift 2 ;;
      --mac-out) [ $# -ge 2 ] || die "--mac-out needs a MAC"; mac_out=$2; shift 2 ;;
      *) die "start: unknown option $1 (see --help)" ;;
    esac
  done
  [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad appliance name '$name'"
  for i in "$in_if" "$out_if"; do
    [ ${#i} -le 15 ] && [[ $i =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad interface name '$i' (at most 15 characters)"
  done
  [ "$in_if" != "$out_if" ] || die "IN_IF and OUT_IF must differ"
  [ -z "$rules" ] || [ -r "$rules" ] || die "cannot read rules file $rules"
  command -v suricata >/dev/null || die "suricata is not installed (run labs/setup-host.sh)"
  ovs-vsctl --timeout=5 br-exists "$bridge" || die "no OVS bridge $bridge"
  netns_exists "$name" && die "namespace $name exists already (stop it first)"
  for i in "$in_if" "$out_if"; do
    [ ! -e "/sys/class/net/$i" ] || die "interface $i exists already"
  done

  local dir
  dir=$(dir_of "$name")
  rm -rf "$dir"
  mkdir -p "$dir/log"
  printf 'BRIDGE=%q\nIN_IF=%q\nOUT_IF=%q\n' "$bridge" "$in_if" "$out_if" >"$dir/instance.env"
  if [ -n "$rules" ]; then cp "$rules" "$dir/rules"; else default_rules >"$dir/rules"; fi
  write_config "$dir"

  # From here on a failure removes what was made.
  trap 'echo "ips-appliance.sh: start of $name failed; cleaning up" >&2; cmd_stop "$name" >/dev/null 2>&1 || true' ERR
  set -E
  ip netns add "$name"
  ip -n "$name" link set lo up
  # The appliance sends nothing of its own: no IPv6 autoconfiguration traffic.
  ip netns exec "$name" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  local host inner mac k
  local hosts=("$in_if" "$out_if") inners=("$INNER_IN" "$INNER_OUT") macs=("$mac_in" "$mac_out")
  for k in 0 1; do
    host=${hosts[$k]} inner=${inners[$k]} mac=${macs[$k]}
    ip link add "$host" type veth peer name "$inner" netns "$name"
    sysctl -qw "net.ipv6.conf.$host.disable_ipv6=1"
    [ -z "$mac" ] || ip -n "$name" link set "$inner" address "$mac"
    mac=$(ip netns exec "$name" cat "/sys/class/net/$inner/address")
    ethtool -K "$host" tx off gro off >/dev/null
    ip netns exec "$name" ethtool -K "$inner" tx off gro off >/dev/null
    ip link set "$host" up
    ip -n "$name" link set "$inner" up
    ovs-vsctl --timeout=10 add-port "$bridge" "$host" -- set interface "$host" \
      "external_ids:tenet-ips=$name" "external_ids:attached-mac=$mac"
  done
  start_suricata "$name"
  trap - ERR
  set +E
  echo "appliance $name: $bridge:$in_if -> [$INNER_IN suricata $INNER_OUT] -> $bridge:$out_if; eve: $(eve_of "$name")"
}

cmd_stop() {
  local name=$1 dir bridge="" in_if="" out_if=""
  dir=$(dir_of "$name")
  if [ -r "$dir/instance.env" ]; then
    # shellcheck source=/dev/null
    . "$dir/instance.env"
    bridge=$BRIDGE in_if=$IN_IF out_if=$OUT_IF
  fi
  if netns_exists "$name"; then signal_suricata "$name" TERM; fi
  for i in $in_if $out_if; do
    ovs-vsctl --timeout=10 --if-exists del-port "$i" || echo "ips-appliance.sh: could not remove OVS port $i" >&2
    # Deleting the host end removes the pair.
    if [ -e "/sys/class/net/$i" ]; then ip link del "$i" || true; fi
  done
  if netns_exists "$name"; then ip netns del "$name"; fi
  rm -rf "$dir"
  echo "appliance $name stopped${bridge:+ (ports $in_if $out_if removed from $bridge)}"
}

cmd_kill() {
  local name=$1
  load_instance "$name"
  netns_exists "$name" || die "namespace $name is gone"
  local pid
  if pid=$(suricata_pid "$name"); then
    signal_suricata "$name" KILL
    echo "suricata for $name killed (pid $pid); ports $IN_IF and $OUT_IF stay on $BRIDGE"
  else
    echo "suricata for $name was not running"
  fi
}

cmd_restart() {
  local name=$1
  load_instance "$name"
  netns_exists "$name" || die "namespace $name is gone; use start"
  signal_suricata "$name" TERM
  start_suricata "$name"
}

cmd_status() {
  local name=$1 dir pid
  dir=$(dir_of "$name")
  if ! [ -r "$dir/instance.env" ] && ! netns_exists "$name"; then
    echo "name=$name"
    echo "exists=no"
    return 4
  fi
  BRIDGE="" IN_IF="" OUT_IF=""
  # shellcheck source=/dev/null
  [ -r "$dir/instance.env" ] && . "$dir/instance.env"
  echo "name=$name"
  echo "exists=yes"
  echo "namespace=$(netns_exists "$name" && echo yes || echo no)"
  echo "bridge=$BRIDGE"
  echo "in_if=$IN_IF"
  echo "out_if=$OUT_IF"
  local i
  for i in $IN_IF $OUT_IF; do
    echo "$i.tx_packets=$(cat "/sys/class/net/$i/statistics/tx_packets" 2>/dev/null || echo none)"
    echo "$i.rx_packets=$(cat "/sys/class/net/$i/statistics/rx_packets" 2>/dev/null || echo none)"
  done
  echo "eve=$(eve_of "$name")"
  if pid=$(suricata_pid "$name"); then
    echo "suricata=running"
    echo "pid=$pid"
    return 0
  fi
  echo "suricata=stopped"
  return 3
}

# --- main ----------------------------------------------------------------------
case ${1:-} in
  -h | --help | help) usage; exit 0 ;;
  "") usage >&2; exit 2 ;;
esac
cmd=$1
shift
[ $# -ge 1 ] || die "$cmd needs NAME (see --help)"
[ "$(id -u)" -eq 0 ] || die "must run as root (namespaces, OVS ports)"
case $cmd in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$1" ;;
  kill) cmd_kill "$1" ;;
  restart) cmd_restart "$1" ;;
  eve) eve_of "$1"; echo ;;
  status) cmd_status "$1" ;;
  *) die "unknown command $cmd (see --help)" ;;
esac
