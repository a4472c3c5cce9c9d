#!/usr/bin/env bash
# Prepare a Debian bookworm host for the tenet labs and tests:
#   1. install the system packages (skipped when all are already installed),
#   2. start Open vSwitch (ovsdb-server + ovs-vswitchd, userspace datapath only;
#      no kernel module is loaded), unless it is already running,
#   3. start PostgreSQL on 127.0.0.1:5432 with a `tenet` role (password `tenet`,
#      CREATEDB) for netapi's store tests, unless it is already running,
#   4. start libvirt (virtlogd + libvirtd, for the compute service's libvirt driver;
#      QEMU guests use TCG), unless it is already running.
# Suricata is installed but never left running: labs/ips-appliance.sh starts one
# per appliance namespace.
# Idempotent and safe to run repeatedly. Runs as root (or via sudo).
# Never runs `mn -c` and never touches existing bridges.
set -euo pipefail

# Packages the labs and tests need.
PACKAGES=(
  openvswitch-switch mininet openvswitch-testcontroller python3-os-ken
  iputils-ping tcpdump ethtool tshark iperf3 netcat-openbsd valgrind
  build-essential pkg-config
  postgresql python3-venv protobuf-compiler
  udhcpc cpio curl
  busybox  # arping -U: gratuitous ARP after a namespace VM's live migration
)
# libvirt and QEMU come from bookworm-backports (the machine's qemu-utils does too);
# so does Suricata 7, the inline IPS appliance (labs/ips-appliance.sh).
BACKPORTS_PACKAGES=(libvirt-daemon-system libvirt-dev qemu-system-x86 qemu-utils suricata)
BACKPORTS_SOURCES=/etc/apt/sources.list.d/bookworm-backports.sources
# Nice to have (profiling); failure to install is not an error.
# OVN only for labs/bench-tenant.sh (its peer); failure to install is not an error either.
OPTIONAL_PACKAGES=(linux-perf ovn-central ovn-host)

OVS_CTL=/usr/share/openvswitch/scripts/ovs-ctl

section() { printf '\n=== %s ===\n' "$*"; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "setup-host.sh: must run as root (or have sudo)" >&2
    exit 1
  fi
fi

is_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]
}

apt_install() {
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq -o Dpkg::Use-Pty=0 "$@" >/dev/null
}

# --- packages ---------------------------------------------------------------
section "packages"
missing=()
for p in "${PACKAGES[@]}"; do is_installed "$p" || missing+=("$p"); done
missing_opt=()
for p in "${OPTIONAL_PACKAGES[@]}"; do is_installed "$p" || missing_opt+=("$p"); done
missing_bpo=()
for p in "${BACKPORTS_PACKAGES[@]}"; do is_installed "$p" || missing_bpo+=("$p"); done

if [ ${#missing[@]} -eq 0 ] && [ ${#missing_opt[@]} -eq 0 ] && [ ${#missing_bpo[@]} -eq 0 ]; then
  echo "all packages already installed; skipping apt"
else
  if [ ${#missing_bpo[@]} -gt 0 ] && [ ! -e "$BACKPORTS_SOURCES" ]; then
    echo "adding $BACKPORTS_SOURCES"
    printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' \
      'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
      "${SUDO[@]}" tee "$BACKPORTS_SOURCES" >/dev/null
  fi
  echo "apt-get update"
  "${SUDO[@]}" apt-get update -qq
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt_install "${missing[@]}"
  fi
  if [ ${#missing_bpo[@]} -gt 0 ]; then
    echo "installing from bookworm-backports: ${missing_bpo[*]}"
    # Package scripts must not start daemons (no systemd here; Suricata's would sniff
    # the host's interfaces): a policy-rc.d that denies every start, unless one exists.
    added_policy=no
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\n# added by tenet labs/setup-host.sh while installing\nexit 101\n' |
        "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
      "${SUDO[@]}" chmod 755 /usr/sbin/policy-rc.d
      added_policy=yes
    fi
    install_rc=0
    apt_install -t bookworm-backports "${missing_bpo[@]}" || install_rc=$?
    if [ "$added_policy" = yes ]; then "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d; fi
    [ "$install_rc" -eq 0 ] || exit "$install_rc"
  fi
  for p in "${missing_opt[@]}"; do
    echo "installing (optional): $p"
    apt_install "$p" || echo "warning: optional package $p could not be installed; continuing" >&2
  done
fi

# A Suricata started by the package's own scripts (pidfile from /etc/default/suricata)
# would watch the host's interfaces; the appliances run their own, one per namespace.
if [ -s /run/suricata.pid ] && "${SUDO[@]}" kill -0 "$(cat /run/suricata.pid)" 2>/dev/null; then
  echo "stopping the Suricata the package started (pid $(cat /run/suricata.pid))"
  "${SUDO[@]}" kill -TERM "$(cat /run/suricata.pid)" || true
fi
if is_installed suricata; then
  echo "suricata $(suricata -V 2>/dev/null | sed -n 's/.*version \([^ ]*\).*/\1/p') installed (not running; labs/ips-appliance.sh starts one per appliance)"
fi

# --- Open vSwitch -------------------------------------------------------------
section "open vswitch"
ovs_daemon_up() { "${SUDO[@]}" ovs-appctl -T 2 -t "$1" version >/dev/null 2>&1; }

if ovs_daemon_up ovsdb-server && ovs_daemon_up ovs-vswitchd; then
  echo "ovsdb-server and ovs-vswitchd already running"
else
  # ovs-ctl starts only the daemons that are not running. The `ulimit` warning
  # it prints in containers is harmless.
  "${SUDO[@]}" "$OVS_CTL" start --system-id=random 2>&1 | grep -v 'ulimit' || true
fi

# Wait until the database answers and the switch daemon is up.
for _ in $(seq 1 50); do
  if ovs_daemon_up ovs-vswitchd && "${SUDO[@]}" ovs-vsctl --timeout=2 show >/dev/null 2>&1; then
    break
  fi
  sleep 0.2
done
if ! (ovs_daemon_up ovsdb-server && ovs_daemon_up ovs-vswitchd); then
  echo "setup-host.sh: Open vSwitch failed to start" >&2
  "${SUDO[@]}" "$OVS_CTL" status >&2 || true
  exit 1
fi
echo "$("${SUDO[@]}" ovs-vsctl --version | head -n1) ready (use datapath_type=netdev / mn --switch ovs,datapath=user)"

# --- PostgreSQL (netapi store tests) -------------------------------------------
section "postgresql"
pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1; }
if pg_ready; then
  echo "PostgreSQL already answering on 127.0.0.1:5432"
else
  # Debian's first cluster (e.g. "15 main"); no systemd here, so pg_ctlcluster starts it.
  read -r pg_version pg_cluster _ < <(pg_lsclusters --no-header | head -n1) || true
  if [ -z "${pg_version:-}" ]; then
    pg_version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
    pg_cluster=main
    "${SUDO[@]}" pg_createcluster "$pg_version" "$pg_cluster"
  fi
  "${SUDO[@]}" pg_ctlcluster "$pg_version" "$pg_cluster" start
  for _ in $(seq 1 50); do pg_ready && break; sleep 0.2; done
fi
if ! pg_ready; then
  echo "setup-host.sh: PostgreSQL failed to start on 127.0.0.1:5432" >&2
  exit 1
fi
pg_sql() { "${SUDO[@]}" runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtAc "$1"; }
if [ "$(pg_sql "SELECT 1 FROM pg_roles WHERE rolname = 'tenet'")" = "1" ]; then
  echo "role tenet exists"
else
  pg_sql "CREATE ROLE tenet LOGIN PASSWORD 'tenet' CREATEDB"
  echo "role tenet created"
fi
echo "PostgreSQL ready: postgres://tenet:tenet@127.0.0.1:5432/postgres"

# --- libvirt (compute's libvirt driver) -----------------------------------------
section "libvirt"
# No systemd here: the daemons are started by hand (each with a pidfile; -d daemonizes).
LIBVIRT_RUN=/run/libvirt
libvirt_up() { "${SUDO[@]}" virsh -c qemu:///system version >/dev/null 2>&1; }
pid_alive() { [ -s "$1" ] && "${SUDO[@]}" kill -0 "$(cat "$1")" 2>/dev/null; }

if libvirt_up; then
  echo "libvirtd already answering on qemu:///system"
else
  "${SUDO[@]}" mkdir -p "$LIBVIRT_RUN"
  if ! pid_alive "$LIBVIRT_RUN/virtlogd.pid" && ! pgrep -x virtlogd >/dev/null; then
    "${SUDO[@]}" virtlogd -d -p "$LIBVIRT_RUN/virtlogd.pid"
  fi
  if ! pid_alive "$LIBVIRT_RUN/libvirtd.pid" && ! pgrep -x libvirtd >/dev/null; then
    "${SUDO[@]}" libvirtd -d -p "$LIBVIRT_RUN/libvirtd.pid"
  fi
  for _ in $(seq 1 50); do libvirt_up && break; sleep 0.2; done
fi
if ! libvirt_up; then
  echo "setup-host.sh: libvirtd failed to start (qemu:///system does not answer)" >&2
  exit 1
fi
echo "libvirt $("${SUDO[@]}" virsh -c qemu:///system version --daemon 2>/dev/null | sed -n 's/^Running against daemon: //p') ready (qemu:///system; guests use TCG: <domain type='qemu'>)"
