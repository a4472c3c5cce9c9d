#!/usr/bin/python3
"""A Mininet lab of userspace Open vSwitch switches with a remote controller.

Used three ways:
  * by hand:   labs/mininet_lab.py --topo tree,2,3 --controller 127.0.0.1:6653 --cli
  * by tests:  with --steps, the lab reads commands from stdin, one per line, and
               answers each with one JSON line on stdout (see STEPS below);
  * by labs/up.sh, to bring up the platform with a lab.

Every name is prefixed (--prefix) so that several labs and test runs can share
one machine: switches are PREFIXs1.., hosts PREFIXh1... The lab removes only
what it created (net.stop()); it never runs `mn -c`.

Needs root and Debian's python3 (/usr/bin/python3) with Mininet.

STEPS (stdin commands, one JSON line answers each):
  switches                 -> {"switches": [{"name", "dpid"}...]}
  links                    -> {"links": [[a, port, b, port]...]}   (switch-switch only)
  hosts                    -> {"hosts": [{"name", "mac", "ip", "switch", "port"}...]}
  pingall [timeout]        -> {"sent": n, "received": n, "dropped_pct": x}
  ping SRC DST [count]     -> {"sent": n, "received": n}
  link A B up|down         -> {"ok": true}
  cmd HOST SHELL...        -> {"output": "..."}
  dhcp HOST MAC            -> {"ip": "a.b.c.d/len" or null, "output": "..."}: sets the host's MAC,
                              drops its address, asks DHCP (busybox udhcpc) and applies the answer
  stop                     -> {"stopped": true} and exit
"""

import argparse
import json
import os
import re
import sys

from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import OVSSwitch, RemoteController
from mininet.topo import Topo


class PrefixedTopo(Topo):
    """Linear, tree, ring and fat-tree topologies with prefixed names."""

    def build(self, kind, args, prefix):
        self.prefix = prefix
        self._sw = 0
        self._h = 0
        if kind == "linear":
            n = args[0] if args else 2
            sws = [self.sw() for _ in range(n)]
            for s in sws:
                self.addLink(self.host(), s)
            for a, b in zip(sws, sws[1:]):
                self.addLink(a, b)
        elif kind == "tree":
            depth = args[0] if args else 2
            fanout = args[1] if len(args) > 1 else 2
            self.tree(depth, fanout)
        elif kind == "ring":
            n = args[0] if args else 4
            per = args[1] if len(args) > 1 else 1
            sws = [self.sw() for _ in range(n)]
            for s in sws:
                for _ in range(per):
                    self.addLink(self.host(), s)
            for i, s in enumerate(sws):
                self.addLink(s, sws[(i + 1) % n])
        elif kind == "fattree":
            k = args[0] if args else 4
            cores = [self.sw() for _ in range((k // 2) ** 2)]
            for pod in range(k):
                aggs = [self.sw() for _ in range(k // 2)]
                edges = [self.sw() for _ in range(k // 2)]
                for i, a in enumerate(aggs):
                    for j in range(k // 2):
                        self.addLink(a, cores[i * (k // 2) + j])
                    for e in edges:
                        self.addLink(a, e)
                for e in edges:
                    for _ in range(k // 2):
                        self.addLink(self.host(), e)
        else:
            raise SystemExit("unknown topology %r (linear,N | tree,D,F | ring,N[,HOSTS_PER_SWITCH] | fattree,K)" % kind)

    def sw(self):
        self._sw += 1
        return self.addSwitch("%ss%d" % (self.prefix, self._sw), dpid="%016x" % self._sw)

    def host(self):
        self._h += 1
        n = self._h
        return self.addHost(
            "%sh%d" % (self.prefix, n),
            ip="10.%d.%d.%d/8" % ((n >> 16) & 255, (n >> 8) & 255, n & 255),
            mac="00:00:00:%02x:%02x:%02x" % ((n >> 16) & 255, (n >> 8) & 255, n & 255),
        )

    def tree(self, depth, fanout):
        if depth == 0:
            return self.host()
        s = self.sw()
        for _ in range(fanout):
            self.addLink(s, self.tree(depth - 1, fanout))
        return s


def parse_topo(spec):
    parts = spec.split(",")
    try:
        return parts[0], [int(p) for p in parts[1:]]
    except ValueError:
        raise SystemExit("bad --topo %r: numbers expected after the name" % spec)


def ping(src, dst, count=1, timeout=1):
    out = src.cmd("ping -c %d -W %d -i 0.2 %s" % (count, timeout, dst.IP()))
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    return (int(m.group(1)), int(m.group(2))) if m else (count, 0)


def pingall(net, timeout=1):
    sent = received = 0
    for a in net.hosts:
        for b in net.hosts:
            if a is b:
                continue
            s, r = ping(a, b, 1, timeout)
            if r == 0:
                s2, r = ping(a, b, 1, timeout)  # first packet may race the flow install
            sent += 1
            received += 1 if r else 0
    return sent, received


def describe_links(net):
    links = []
    for link in net.links:
        i1, i2 = link.intf1, link.intf2
        if isinstance(i1.node, OVSSwitch) and isinstance(i2.node, OVSSwitch):
            links.append([i1.node.name, i1.node.ports[i1], i2.node.name, i2.node.ports[i2]])
    return links


def describe_hosts(net):
    hosts = []
    for h in net.hosts:
        intf = h.defaultIntf()
        link = intf.link
        other = link.intf2 if link.intf1 is intf else link.intf1
        hosts.append({"name": h.name, "mac": h.MAC(), "ip": h.IP(), "switch": other.node.name,
                      "port": other.node.ports[other]})
    return hosts


def api(method, url, token=None, body=None):
    """One JSON call to the network API; returns (status, headers, parsed body)."""
    import urllib.error
    import urllib.request
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, r.headers, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raise SystemExit("%s %s: HTTP %d %s" % (method, url, e.code, e.read().decode(errors="replace")))


def register_tenant_ports(net, base):
    """Registers every host as a port of network `lab` (subnet 10.0.0.0/24, created if
    missing) bound to its switch interface, with the credentials of an openrc in the
    environment (OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME), then lets each host ask DHCP.
    Idempotent: ports are named lab-HOST and rebound on a rerun."""
    user, pw, project = (os.environ.get(k) for k in ("OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME"))
    if not (user and pw and project):
        raise SystemExit("--netapi needs OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME (source target/lab/openrc)")
    scope = {"project": {"name": project, "domain": {"name": "Default"}}}
    ident = {"methods": ["password"], "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": pw}}}
    _, headers, _ = api("POST", base + "/v3/auth/tokens", body={"auth": {"identity": ident, "scope": scope}})
    token = headers["X-Subject-Token"]
    _, _, nets = api("GET", base + "/v2.0/networks?name=lab", token)
    if nets["networks"]:
        net_id = nets["networks"][0]["id"]
    else:
        _, _, n = api("POST", base + "/v2.0/networks", token, {"network": {"name": "lab"}})
        net_id = n["network"]["id"]
        api("POST", base + "/v2.0/subnets", token,
            {"subnet": {"network_id": net_id, "cidr": "10.0.0.0/24", "ip_version": 4, "name": "lab-v4"}})
    macs = {}
    for h in describe_hosts(net):
        sw = net.get(h["switch"])
        profile = {"datapath_id": sw.dpid, "interface_name": "%s-eth%d" % (h["switch"], h["port"])}
        name = "lab-%s" % h["name"]
        _, _, found = api("GET", base + "/v2.0/ports?name=%s" % name, token)
        if found["ports"]:
            port = found["ports"][0]
            api("PUT", base + "/v2.0/ports/%s" % port["id"], token,
                {"port": {"binding:host_id": "lab", "binding:profile": profile}})
        else:
            _, _, p = api("POST", base + "/v2.0/ports", token, {"port": {
                "network_id": net_id, "name": name, "binding:host_id": "lab", "binding:profile": profile}})
            port = p["port"]
        macs[h["name"]] = port["mac_address"]
    for name, mac in macs.items():
        got = dhcp(net.get(name), mac)
        print("%s: %s by DHCP (port MAC %s)" % (name, got["ip"] or "no address", mac))


UDHCPC_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "udhcpc-script.sh")


def dhcp(h, mac):
    intf = h.defaultIntf().name
    h.cmd("ip link set %s address %s" % (intf, mac))
    h.cmd("ip addr flush dev %s" % intf)
    out = h.cmd("udhcpc -i %s -n -q -f -t 8 -T 1 -A 1 -s %s 2>&1" % (intf, UDHCPC_SCRIPT))
    m = re.search(r"inet (\d+\.\d+\.\d+\.\d+/\d+)", h.cmd("ip -4 addr show dev %s" % intf))
    if m:
        h.setIP(m.group(1).split("/")[0], prefixLen=int(m.group(1).split("/")[1]), intf=intf)
        h.intf(intf).mac = mac
    return {"ip": m.group(1) if m else None, "output": out}


def serve_steps(net):
    def say(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    say({"ready": True})
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        op = words[0]
        try:
            if op == "switches":
                say({"switches": [{"name": s.name, "dpid": s.dpid} for s in net.switches]})
            elif op == "links":
                say({"links": describe_links(net)})
            elif op == "hosts":
                say({"hosts": describe_hosts(net)})
            elif op == "pingall":
                sent, received = pingall(net, int(words[1]) if len(words) > 1 else 1)
                say({"sent": sent, "received": received,
                     "dropped_pct": 100.0 * (sent - received) / sent if sent else 0.0})
            elif op == "ping":
                s, r = ping(net.get(words[1]), net.get(words[2]), int(words[3]) if len(words) > 3 else 1)
                say({"sent": s, "received": r})
            elif op == "link":
                net.configLinkStatus(words[1], words[2], words[3])
                say({"ok": True})
            elif op == "dhcp":
                say(dhcp(net.get(words[1]), words[2]))
            elif op == "cmd":
                say({"output": net.get(words[1]).cmd(" ".join(words[2:]))})
            elif op == "stop":
                say({"stopped": True})
                return
            else:
                say({"error": "unknown step %r" % op})
        except Exception as e:  # report, keep serving: the caller decides
            say({"error": "%s: %s" % (type(e).__name__, e)})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--topo", default="linear,2", help="linear,N | tree,DEPTH,FANOUT | ring,N[,HOSTS_PER_SWITCH] | fattree,K")
    ap.add_argument("--controller", default="127.0.0.1:6653", help="HOST:PORT of the OpenFlow controller")
    ap.add_argument("--protocols", default="OpenFlow13", help="OpenFlow13, OpenFlow10 or OpenFlow10,OpenFlow13")
    ap.add_argument("--prefix", default="t", help="prefix of every switch and host name (keep it short)")
    ap.add_argument("--steps", action="store_true", help="read steps from stdin (for tests)")
    ap.add_argument("--fail-mode", default="standalone", choices=["standalone", "secure"],
                    help="OVS fail mode: secure keeps the controller's flows (and nothing else) while it is away")
    ap.add_argument("--cli", action="store_true", help="open the Mininet CLI")
    ap.add_argument("--netapi", metavar="URL",
                    help="tenant mode: register every host as a port of network 'lab' through this network API "
                         "(e.g. http://127.0.0.1:9696, credentials from the environment: source an openrc) "
                         "and let the hosts take their addresses by DHCP")
    ap.add_argument("--pingall", action="store_true", help="run pingall once and report")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("mininet_lab.py needs root (Mininet creates namespaces and OVS bridges)")

    host, _, port = args.controller.rpartition(":")
    kind, targs = parse_topo(args.topo)
    setLogLevel("warning")
    topo = PrefixedTopo(kind=kind, args=targs, prefix=args.prefix)
    net = Mininet(
        topo=topo,
        switch=lambda name, **kw: OVSSwitch(name, datapath="user", protocols=args.protocols,
                                            failMode=args.fail_mode, **kw),
        controller=lambda name: RemoteController(name, ip=host, port=int(port)),
        autoSetMacs=False,
        waitConnected=False,
    )
    try:
        net.start()
        for h in net.hosts:
            # TCP over the userspace datapath needs transmit checksum offload off.
            h.cmd("ethtool -K %s tx off >/dev/null 2>&1" % h.defaultIntf().name)
        if args.netapi:
            register_tenant_ports(net, args.netapi.rstrip("/"))
        if args.steps:
            serve_steps(net)
        if args.pingall:
            sent, received = pingall(net)
            print("pingall: %d/%d received (%.1f%% dropped)" % (received, sent, 100.0 * (sent - received) / max(sent, 1)))
        if args.cli:
            from mininet.cli import CLI
            CLI(net)
    finally:
        net.stop()


if __name__ == "__main__":
    main()
