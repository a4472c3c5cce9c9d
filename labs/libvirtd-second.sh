#!/usr/bin/env bash
# Run another libvirt daemon (libvirtd + its own virtlogd) on this machine, beside the
# system one, so that two "hosts" of a lab can live-migrate between each other.
#
#   labs/libvirtd-second.sh start DIR    prints the daemon's URI (qemu+unix:///system?socket=DIR/run/libvirt-sock)
#   labs/libvirtd-second.sh stop DIR     destroys its domains, stops its daemons and QEMUs, removes DIR
#   labs/libvirtd-second.sh uri DIR      prints the URI again
#
# The daemons run in a private mount namespace (`unshare -m`) where DIR's run/, lib/,
# etc/, log/ and cache/ are bind-mounted over /run/libvirt, /var/lib/libvirt,
# /etc/libvirt, /var/log/libvirt and /var/cache/libvirt: their own sockets, domain
# state and configuration (the system's *.conf files, with a host_uuid of their own,
# `cgroup_controllers = [ ]` and migration ports away from the system daemon's). The
# mounts exist only in that namespace and vanish with its last process. DIR must be
# unique per daemon (tests use a temp dir) and short (sockets live under it). `stop`
# touches only processes of that namespace (found through the pid files), never
# another daemon. Needs root, libvirt-daemon-system and util-linux's unshare.
set -euo pipefail

usage() { echo "usage: $0 start|stop|uri DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2
log() { printf 'libvirtd-second: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

uri_of() { echo "qemu+unix:///system?socket=$1/run/libvirt-sock"; }

# A pid from a pid file, if that process is alive and is the named program.
live_pid() { # PIDFILE PROGRAM
  local pid
  [ -s "$1" ] || return 1
  pid=$(tr -dc '0-9' < "$1")
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
  echo "$pid"
}

start() {
  [ "$(id -u)" -eq 0 ] || die "must run as root"
  for t in libvirtd virtlogd unshare virsh; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found (labs/setup-host.sh installs libvirt)"
  done
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if live_pid "$dir/run/libvirtd.pid" libvirtd >/dev/null; then
    die "a daemon already runs in $dir"
  fi
  [ ${#dir} -le 60 ] || die "$dir is too long for the daemon's sockets (at most 60 characters)"
  mkdir -p "$dir"/{run,etc,log/qemu,cache/qemu}
  mkdir -p "$dir"/lib/{images,boot} "$dir"/lib/qemu/{checkpoint,dump,nvram,ram,save,snapshot,channel/target}
  chown -R --reference=/var/lib/libvirt/qemu "$dir/lib/qemu" 2>/dev/null || true
  # The system's settings, minus its domains and networks (qemu/, nwfilter/ stay empty).
  cp /etc/libvirt/*.conf "$dir/etc/"
  mkdir -p "$dir/etc/qemu" "$dir/etc/nwfilter" "$dir/etc/secrets"
  printf '\n# libvirtd-second.sh\nhost_uuid = "%s"\n' "$(cat /proc/sys/kernel/random/uuid)" >> "$dir/etc/libvirtd.conf"
  # No cgroups of its own (they would clash with the system daemon's); migration ports
  # away from the system daemon's default range (49152-49215).
  printf '\n# libvirtd-second.sh\ncgroup_controllers = [ ]\nmigration_port_min = 49400\nmigration_port_max = 49463\n' \
    >> "$dir/etc/qemu.conf"

  unshare -m --propagation private sh -ec '
    d=$1
    mount --bind "$d/run" /run/libvirt
    mount --bind "$d/lib" /var/lib/libvirt
    mount --bind "$d/etc" /etc/libvirt
    mount --bind "$d/log" /var/log/libvirt
    mount --bind "$d/cache" /var/cache/libvirt
    virtlogd -d -p /run/libvirt/virtlogd.pid
    libvirtd -d -p /run/libvirt/libvirtd.pid
  ' libvirtd-second "$dir"

  local i=0
  while [ ! -S "$dir/run/libvirt-sock" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
  [ -S "$dir/run/libvirt-sock" ] || { stop_daemons; die "libvirtd did not come up (see $dir/log/)"; }
  i=0
  until virsh -q -c "$(uri_of "$dir")" version >/dev/null 2>&1; do
    [ $i -lt 100 ] || { stop_daemons; die "libvirtd does not answer on $(uri_of "$dir")"; }
    sleep 0.1; i=$((i + 1))
  done
  uri_of "$dir"
}

# Destroys the daemon's domains, stops its daemons and every process left in its mount
# namespace (QEMUs), and waits for them.
stop_daemons() {
  local lpid vpid ns own p pids=()
  lpid=$(live_pid "$dir/run/libvirtd.pid" libvirtd || true)
  vpid=$(live_pid "$dir/run/virtlogd.pid" virtlogd || true)
  ns=
  if [ -n "$lpid" ]; then
    ns=$(readlink "/proc/$lpid/ns/mnt" || true)
    local uri
    uri=$(uri_of "$dir")
    for d in $(virsh -q -c "$uri" list --all --name 2>/dev/null); do
      virsh -q -c "$uri" destroy "$d" >/dev/null 2>&1 || true
      virsh -q -c "$uri" undefine "$d" --managed-save --nvram >/dev/null 2>&1 || true
    done
  elif [ -n "$vpid" ]; then
    ns=$(readlink "/proc/$vpid/ns/mnt" || true)
  fi
  own=$(readlink /proc/self/ns/mnt)
  [ -n "$lpid" ] && kill "$lpid" 2>/dev/null || true
  [ -n "$vpid" ] && kill "$vpid" 2>/dev/null || true
  if [ -n "$ns" ] && [ "$ns" != "$own" ]; then
    for p in /proc/[0-9]*; do
      [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && pids+=("${p#/proc/}")
    done
    [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
    local i=0
    while [ $i -lt 100 ]; do
      local left=0
      for p in "${pids[@]}"; do [ -d "/proc/$p" ] && left=1; done
      [ $left -eq 0 ] && break
      sleep 0.1; i=$((i + 1))
    done
    for p in "${pids[@]}"; do [ -d "/proc/$p" ] && kill -9 "$p" 2>/dev/null || true; done
  fi
}

case "$cmd" in
  start) start ;;
  uri) [ -d "$dir" ] || die "no daemon in $dir"; uri_of "$(cd "$dir" && pwd)" ;;
  stop)
    [ -d "$dir" ] || exit 0
    dir=$(cd "$dir" && pwd)
    stop_daemons
    rm -rf "$dir"
    ;;
  *) usage ;;
esac
