#!/usr/bin/python3
"""Topology benchmarks: discovery time, link-down-to-rerouted time, /v1/paths latency.

Usage (root, OVS running, release build present):
  labs/bench_topology.py [--osken] [--runs N]

For each Mininet lab (userspace OVS: linear,10; tree,2,3; ring,8; fattree,4) it starts a
fresh target/release/tenet-controller, starts the lab, and measures the time from
net.start() until GET /v1/links equals the links Mininet built (polled every 10 ms).
With --osken it does the same for os-ken's LLDP discovery (os_ken.topology.switches,
--observe-links, labs/osken_topology.py) on the same lab.
On ring,8 it cuts a cable on the path of a 100 pings/s stream and reports the time until
the API drops the link, the pings lost and the longest gap. On fattree,4 it times 2,000
sequential GET /v1/paths between hosts in different pods (keep-alive connection).
Prints a markdown table. Every bridge and host is prefixed "bt" and removed at the end.
"""

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mininet_lab import PrefixedTopo, describe_links, parse_topo  # noqa: E402
from mininet.log import setLogLevel  # noqa: E402
from mininet.net import Mininet  # noqa: E402
from mininet.node import OVSSwitch, RemoteController  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TENET = os.path.join(ROOT, "target/release/tenet-controller")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    return r.status, json.loads(body) if body else None


def lab_links(net):
    want = set()
    for a, pa, b, pb in describe_links(net):
        da, db = int(net.get(a).dpid, 16), int(net.get(b).dpid, 16)
        want.add((da, pa, db, pb))
        want.add((db, pb, da, pa))
    return want


def api_links(api):
    try:
        c = http.client.HTTPConnection(api, timeout=5)
        st, links = get(c, "/v1/links")
        c.close()
    except OSError:
        return set()
    if st != 200:
        return set()
    return {(int(l["src"]["dpid"], 16), l["src"]["port"], int(l["dst"]["dpid"], 16), l["dst"]["port"]) for l in links}


def start_lab(topo, of_port):
    kind, args = parse_topo(topo)
    net = Mininet(
        topo=PrefixedTopo(kind=kind, args=args, prefix="bt"),
        switch=lambda name, **kw: OVSSwitch(name, datapath="user", protocols="OpenFlow13", **kw),
        controller=lambda name: RemoteController(name, ip="127.0.0.1", port=of_port),
        autoSetMacs=False,
        waitConnected=False,
    )
    return net


def start_tenet(of_port, api_port):
    log = open(os.path.join(tempfile.gettempdir(), "bench-topology-tenet.log"), "w")
    p = subprocess.Popen([TENET, "--listen", "127.0.0.1:%d" % of_port, "--api", "127.0.0.1:%d" % api_port, "--grpc", "127.0.0.1:0",
                          "--log-level", "warn"], stdout=log, stderr=log)
    time.sleep(0.3)
    return p


def stop(p):
    if p and p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def discovery_tenet(topo):
    of_port, api_port = free_port(), free_port()
    api = "127.0.0.1:%d" % api_port
    ctl = start_tenet(of_port, api_port)
    net = start_lab(topo, of_port)
    try:
        want = lab_links(net)
        t0 = time.time()
        net.start()
        while api_links(api) != want:
            if time.time() - t0 > 60:
                return None, net, ctl, api
            time.sleep(0.01)
        return time.time() - t0, net, ctl, api
    except Exception:
        net.stop()
        stop(ctl)
        raise


def discovery_osken(topo):
    of_port = free_port()
    logf = tempfile.NamedTemporaryFile(prefix="osken-links", delete=False).name
    env = dict(os.environ, OSKEN_LINKS_LOG=logf)
    p = subprocess.Popen(["osken-manager", "--observe-links", "--ofp-listen-host", "127.0.0.1",
                          "--ofp-tcp-listen-port", str(of_port), "os_ken.topology.switches",
                          os.path.join(ROOT, "labs/osken_topology.py")],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(150):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", of_port)) == 0:
                break
        time.sleep(0.1)
    net = start_lab(topo, of_port)
    took = None
    try:
        want = len(lab_links(net))
        t0 = time.time()
        net.start()
        while time.time() - t0 < 60:
            lines = open(logf).read().split()
            counts = [int(x) for x in lines[1::2]]
            if counts and counts[-1] >= want:
                took = float(lines[-2]) - t0
                break
            time.sleep(0.05)
    finally:
        net.stop()
        stop(p)
        os.unlink(logf)
    return took


def ping_stream(src, dst, seconds):
    return src.popen("ping -i 0.01 -w %d %s" % (seconds, dst.IP()), stdout=subprocess.PIPE, text=True)


def reroute(net, api):
    """Cut the first ring cable under a 100/s ping from h1 to the opposite host."""
    for h in net.hosts:
        h.cmd("ethtool -K %s tx off >/dev/null 2>&1" % h.defaultIntf().name)
    h1, hx = net.hosts[0], net.hosts[len(net.hosts) // 2]
    h1.cmd("ping -c 3 -W 1 %s" % hx.IP())  # learn the path
    s1, s2 = net.switches[0].name, net.switches[1].name
    before = len(api_links(api))
    p = ping_stream(h1, hx, 6)
    time.sleep(2)
    t0 = time.time()
    net.configLinkStatus(s1, s2, "down")
    gone = None
    while time.time() - t0 < 10:
        if len(api_links(api)) == before - 2:
            gone = time.time() - t0
            break
        time.sleep(0.002)
    out, _ = p.communicate()
    seqs = [int(m) for m in re.findall(r"icmp_seq=(\d+)", out)]
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    sent, recv = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    gaps = [b - a for a, b in zip(seqs, seqs[1:])]
    longest = (max(gaps) if gaps else 0) * 10  # ms at 100/s
    return gone, sent - recv, sent, longest


def path_latency(net, api, n=2000):
    for h in net.hosts:
        h.cmd("ethtool -K %s tx off >/dev/null 2>&1" % h.defaultIntf().name)
    a, b = net.hosts[0], net.hosts[-1]
    a.cmd("ping -c 2 -W 1 %s" % b.IP())
    b.cmd("ping -c 2 -W 1 %s" % a.IP())
    c = http.client.HTTPConnection(api, timeout=5)
    path = "/v1/paths?src=%s&dst=%s" % (a.MAC(), b.MAC())
    st, body = get(c, path)
    if st != 200:
        return None
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        get(c, path)
        lat.append((time.perf_counter() - t) * 1e6)
    lat.sort()
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--osken", action="store_true", help="also measure os-ken's discovery")
    ap.add_argument("--runs", type=int, default=3, help="discovery runs per topology")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root")
    if not os.path.exists(TENET):
        raise SystemExit("build first: cargo build --release -p tenet-controller")
    setLogLevel("warning")
    rows = []
    extra = []
    for topo in ["linear,10", "tree,2,3", "ring,8", "fattree,4"]:
        t_runs, o_runs = [], []
        for i in range(args.runs):
            took, net, ctl, api = discovery_tenet(topo)
            try:
                t_runs.append(took)
                if i == 0 and topo == "ring,8":
                    gone, lost, sent, longest = reroute(net, api)
                    extra.append("ring,8 link cut: link gone from the API after %s ms; pings lost %d of %d "
                                 "(100/s), longest gap %d ms" % ("%.1f" % (gone * 1000) if gone else "n/a",
                                                                 lost, sent, longest))
                if i == 0 and topo == "fattree,4":
                    lat = path_latency(net, api)
                    if lat:
                        extra.append("fattree,4 GET /v1/paths host-to-host across pods, 2000 sequential requests "
                                     "(keep-alive): p50 %.0f us, p99 %.0f us" % lat)
            finally:
                net.stop()
                stop(ctl)
            if args.osken:
                o_runs.append(discovery_osken(topo))
        fmt = lambda xs: "n/a" if not xs or None in xs else "%.2f s (%s)" % (
            statistics.median(xs), ", ".join("%.2f" % x for x in xs))
        rows.append((topo, fmt(t_runs), fmt(o_runs) if args.osken else "not run"))
        print("%s: tenet %s, os-ken %s" % rows[-1], file=sys.stderr)
    print("| lab | tenet discovery (median, runs) | os-ken discovery (median, runs) |")
    print("|---|---|---|")
    for r in rows:
        print("| %s | %s | %s |" % r)
    print()
    for e in extra:
        print("- " + e)


if __name__ == "__main__":
    main()
