#!/usr/bin/env bash
# Brings up tenet on this machine: installs what is missing (labs/setup-host.sh),
# builds in release mode, starts the network API (tenet-netapi on its embedded
# default store, SQLite in target/lab/netapi.db, with an admin openrc in
# target/lab/openrc) and tenet-controller in tenant mode, and starts a Mininet lab
# of userspace OVS switches connected to it. Every lab host is registered as a port
# of network `lab` (10.0.0.0/24) through the network API and takes its address by
# DHCP from the controller; then the Mininet CLI opens (try `pingall`; `exit` stops
# everything).
#
# Environment:
#   MODE=tenant             tenant (the platform) or learning (a plain learning switch, no netapi ports)
#   TOPO=tree,2,3           lab topology: linear,N | tree,D,F | ring,N[,HOSTS] | fattree,K
#   PROTOCOLS=OpenFlow13    OpenFlow13 or OpenFlow10
#   PORT=6653               controller port (loopback)
#   METRICS=127.0.0.1:9100  Prometheus metrics address
#   NO_CLI=1                run pingall once and stop instead of opening the CLI
#   ADMIN_PASSWORD=tenet    the network API's admin password
#
# In tenant mode it also starts tenet-compute (API on 127.0.0.1:8774, an agent with the
# namespace driver on the lab's first switch) and uploads an image `lab`:
#   . target/lab/openrc; openstack server create --image lab --flavor m1.nano --network lab --wait vm1
#
# Logs: target/lab/controller.log, netapi.log, compute.log, agent.log.
# Topology API: http://127.0.0.1:8181/v1/topology. Network API: . target/lab/openrc; openstack network list
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOPO=${TOPO:-tree,2,3}
PROTOCOLS=${PROTOCOLS:-OpenFlow13}
PORT=${PORT:-6653}
MODE=${MODE:-tenant}
METRICS=${METRICS:-127.0.0.1:9100}

./labs/setup-host.sh
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi

echo "=== build (release) ==="
cargo build --release -p tenet-controller -p tenet-netapi -p tenet-compute

mkdir -p target/lab
NETAPI_DB=sqlite://$PWD/target/lab/netapi.db
echo "=== tenet-netapi on 127.0.0.1:9696 (store $NETAPI_DB, openrc target/lab/openrc) ==="
./target/release/tenet-netapi bootstrap --db "$NETAPI_DB" --password "${ADMIN_PASSWORD:-tenet}" >target/lab/openrc
./target/release/tenet-netapi serve --db "$NETAPI_DB" --http 127.0.0.1:9696 --grpc 127.0.0.1:9697 \
  --compute-url http://127.0.0.1:8774/compute/v2.1 --image-url http://127.0.0.1:8774/image \
  >target/lab/netapi.log 2>&1 &
NETAPI=$!
set -a
. target/lab/openrc
set +a
echo "=== tenet-compute api on 127.0.0.1:8774 (log target/lab/compute.log) ==="
./target/release/tenet-compute api --db "sqlite://$PWD/target/lab/compute.db" --http 127.0.0.1:8774 \
  --identity http://127.0.0.1:9696 >/dev/null 2>target/lab/compute.log &
COMPUTE=$!
echo "=== tenet-controller ($MODE mode) on 127.0.0.1:$PORT (metrics on $METRICS, log target/lab/controller.log) ==="
./target/release/tenet-controller --listen "127.0.0.1:$PORT" --mode "$MODE" --netapi http://127.0.0.1:9697 \
  --metrics "$METRICS" --api 127.0.0.1:8181 >target/lab/controller.log 2>&1 &
CTL=$!
AGENT=
trap 'kill $CTL $NETAPI $COMPUTE $AGENT 2>/dev/null || true; wait $CTL $NETAPI $COMPUTE $AGENT 2>/dev/null || true' EXIT
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

LAB_ARGS=(--topo "$TOPO" --protocols "$PROTOCOLS" --controller "127.0.0.1:$PORT" --prefix lab)
if [ "$MODE" = tenant ]; then
  if [ "$PROTOCOLS" != OpenFlow13 ]; then echo "tenant mode needs PROTOCOLS=OpenFlow13" >&2; exit 1; fi
  LAB_ARGS+=(--fail-mode secure --netapi http://127.0.0.1:9696)
  # A compute host on the lab's first switch: `openstack server create --flavor m1.nano
  # --image lab --network lab vm1` builds a namespace VM there, reachable from the lab hosts.
  (
    for _ in $(seq 1 240); do ovs-vsctl br-exists labs1 2>/dev/null && break; sleep 0.5; done
    exec ./target/release/tenet-compute agent --host lab --bridge labs1 --api http://127.0.0.1:8774 \
      --state-dir "$PWD/target/lab/agent" >/dev/null 2>target/lab/agent.log
  ) &
  AGENT=$!
  /usr/bin/python3 labs/lab_image.py http://127.0.0.1:9696 http://127.0.0.1:8774 \
    || echo "(no lab image: see target/lab/compute.log)" >&2
fi
echo "=== Mininet lab: $TOPO ($PROTOCOLS) ==="
if [ -n "${NO_CLI:-}" ]; then
  /usr/bin/python3 labs/mininet_lab.py "${LAB_ARGS[@]}" --pingall
else
  /usr/bin/python3 labs/mininet_lab.py "${LAB_ARGS[@]}" --cli
fi
