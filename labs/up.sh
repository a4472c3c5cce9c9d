#!/usr/bin/env bash
# Brings up tenet on this machine: installs what is missing (labs/setup-host.sh),
# builds in release mode, starts the network API (tenet-netapi on its embedded
# default store, SQLite in target/lab/netapi.db, with an admin openrc in
# target/lab/openrc) and tenet-controller, and starts a Mininet lab of userspace
# OVS switches connected to it, then opens the Mininet CLI (try `pingall`;
# `exit` stops everything).
#
# Environment:
#   TOPO=tree,2,3           lab topology: linear,N | tree,D,F | ring,N | fattree,K
#   PROTOCOLS=OpenFlow13    OpenFlow13 or OpenFlow10
#   PORT=6653               controller port (loopback)
#   METRICS=127.0.0.1:9100  Prometheus metrics address
#   NO_CLI=1                run pingall once and stop instead of opening the CLI
#   ADMIN_PASSWORD=tenet    the network API's admin password
#
# Logs: target/lab/controller.log, target/lab/netapi.log.
# Topology API: http://127.0.0.1:8181/v1/topology. Network API: . target/lab/openrc; openstack network list
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOPO=${TOPO:-tree,2,3}
PROTOCOLS=${PROTOCOLS:-OpenFlow13}
PORT=${PORT:-6653}
METRICS=${METRICS:-127.0.0.1:9100}

./labs/setup-host.sh
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi

echo "=== build (release) ==="
cargo build --release -p tenet-controller -p tenet-netapi

mkdir -p target/lab
NETAPI_DB=sqlite://$PWD/target/lab/netapi.db
echo "=== tenet-netapi on 127.0.0.1:9696 (store $NETAPI_DB, openrc target/lab/openrc) ==="
./target/release/tenet-netapi bootstrap --db "$NETAPI_DB" --password "${ADMIN_PASSWORD:-tenet}" >target/lab/openrc
./target/release/tenet-netapi serve --db "$NETAPI_DB" --http 127.0.0.1:9696 >target/lab/netapi.log 2>&1 &
NETAPI=$!
echo "=== tenet-controller on 127.0.0.1:$PORT (metrics on $METRICS, log target/lab/controller.log) ==="
./target/release/tenet-controller --listen "127.0.0.1:$PORT" --mode learning --metrics "$METRICS" --api 127.0.0.1:8181 \
  >target/lab/controller.log 2>&1 &
CTL=$!
trap 'kill $CTL $NETAPI 2>/dev/null || true; wait $CTL $NETAPI 2>/dev/null || true' EXIT
sleep 0.5
if ! kill -0 "$CTL" 2>/dev/null; then
  echo "tenet-controller did not start:" >&2
  cat target/lab/controller.log >&2
  exit 1
fi
if ! kill -0 "$NETAPI" 2>/dev/null; then
  echo "tenet-netapi did not start:" >&2
  cat target/lab/netapi.log >&2
  exit 1
fi

echo "=== Mininet lab: $TOPO ($PROTOCOLS) ==="
if [ -n "${NO_CLI:-}" ]; then
  /usr/bin/python3 labs/mininet_lab.py --topo "$TOPO" --protocols "$PROTOCOLS" \
    --controller "127.0.0.1:$PORT" --prefix lab --pingall
else
  /usr/bin/python3 labs/mininet_lab.py --topo "$TOPO" --protocols "$PROTOCOLS" \
    --controller "127.0.0.1:$PORT" --prefix lab --cli
fi
