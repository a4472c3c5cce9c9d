#!/usr/bin/python3
"""OVN 23.03 tenant-networking benchmark on one machine (the peer for tenet's own figures).

Usage (root; Debian packages ovn-central, ovn-host, openvswitch-switch, iputils-ping):
  labs/bench_ovn.py [--chassis 20] [--ports 1000] [--sample 10] [--no-acls] [--json out.json] [--keep]

What it builds, all under /tmp/ovnbench.PID and with names prefixed obNNN (NNN = PID % 1000):
  * one OVN central: ovsdb-server for the NB and one for the SB database (unix sockets),
    ovn-northd, and an ovn-nbctl daemon (the "CMS": one persistent connection, one
    transaction per API call, like a Neutron-style plugin);
  * N chassis (hypervisors), each a sandbox of its own: ovsdb-server (conf.db), and, in a
    network namespace of the chassis's own, ovs-vswitchd (userspace datapath,
    datapath_type=netdev, 1 handler + 1 revalidator thread) and ovn-controller.
    The vswitchd's br-phy carries the chassis's Geneve tunnel endpoint (198.18.0.X/24, the
    RFC 2544 benchmarking range, which exists only inside these namespaces) and is plugged
    by a veth into a Linux bridge in an underlay namespace; br-int is the integration
    bridge. Tunnels: Geneve, userspace.
  * VM ports: plain OVS internal interfaces (tap devices) on br-int, except the ports that are
    pinged, which are veths whose other end sits in a namespace of its own (MAC + IP set).

Security groups (default; --no-acls turns them off): every port gets what Neutron's OVN driver
(ML2/OVN) gives a port in its project's *default security group*, IPv4, stateful (conntrack):
  * at startup (untimed) the drop group every port joins, with two ACLs:
      pg-add neutron_pg_drop
      acl-add neutron_pg_drop from-lport 1001 'inport == @neutron_pg_drop && ip' drop
      acl-add neutron_pg_drop to-lport   1001 'outport == @neutron_pg_drop && ip' drop
  * per logical switch (= per project) its default group PG = pg_default_<switch>, one NB
    transaction right after ls-add (timed in phase bulk, like the network's creation):
      pg-add PG
      acl-add PG from-lport 1002 'inport == @PG && ip4' allow-related            (egress: all IPv4)
      acl-add PG to-lport   1002 'outport == @PG && ip4 && ip4.src == $PG_ip4' allow-related
                                                          (ingress: only from members of PG)
    (all acl-add with --type=port-group; $PG_ip4 is the address set northd keeps from the
    members' addresses). ARP is not ip, so neither ACL touches it.
  * the port-create API call is one NB transaction that creates the port and adds it to both
    groups, as Neutron does (ovn-nbctl cannot name a port created in the same transaction
    except through --id, so lsp-add becomes create + add):
      --id=@p create Logical_Switch_Port name=LSP addresses="MAC IP" port_security="MAC IP"
      -- add Logical_Switch LS ports @p -- add Port_Group PG ports @p
      -- add Port_Group neutron_pg_drop ports @p
  * after the timed phases (untimed), a negative check: one sample port is removed from PG
    (it stays in neutron_pg_drop); its pair's ping must then fail both ways, and work again
    once the port is back in PG.
  With --no-acls: no port groups, no ACLs; the API call is lsp-add + lsp-set-addresses +
  lsp-set-port-security in one NB transaction. The JSON says which mode ran ("mode").

Phases (--phases, default one,bulk,scale):
  one   logical switch "one" with 3 working ports (namespaces on chassis 0,1,2); then, --reps
        times, one new port on chassis 1: time from the API call (the port-create NB
        transaction above, then the OVS binding add-port ...
        external_ids:iface-id=...) to the first ping reply from the port on chassis 0 (ping
        -i 0.01 running all along; ARP retransmit 10 ms in the pinging namespace) and to
        `ovn-nbctl --wait=hv sync` returning. Switch "one" is deleted afterwards.
  bulk  --switches tenant switches (default 2, all with the same subnet 10.0.0.0/16: the
        tenants overlap) and --ports ports, spread evenly over the switches and over the
        chassis. Timed from the first API call (ls-add, then the switch's default security
        group) through one NB transaction per port
        (--nb-batch N: N ports per transaction), then the bindings (one ovs-vsctl
        transaction per chassis, all chassis at once) to:
        all Port_Bindings bound, all NB ports up (ovn-controller has installed their flows),
        `--wait=hv sync` returned, and the first ping reply of each of --sample pairs of
        ports on different chassis (pings every 0.2 s from before the first API call).
        Then flows per br-int, SB logical flows, CPU seconds and peak RSS of every daemon.
  scale one new port into the first tenant switch with everything of "bulk" in place,
        timed like "one" (--scale-reps times).
The NB and SB states are followed with OVSDB monitors (pushed updates, no polling).
CPU and peak RSS come from /proc/PID/stat and /proc/PID/status (VmHWM, reset through
/proc/PID/clear_refs at the start of each phase).

Everything started is killed by PID and every namespace/interface made is deleted at exit,
also on failure and Ctrl-C, unless --keep. Never touches the system OVS (/var/run/openvswitch).
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

OVS_SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
NB_SCHEMA = "/usr/share/ovn/ovn-nb.ovsschema"
SB_SCHEMA = "/usr/share/ovn/ovn-sb.ovsschema"
UNDERLAY_NET = "198.18.0"  # RFC 2544 benchmarking range; lives only in our namespaces
DROP_PG = "neutron_pg_drop"
T_START = time.time()


class BenchError(Exception):
    pass


class Interrupted(BaseException):
    pass


def log(msg):
    print(f"[{time.time() - T_START:7.1f}s] {msg}", flush=True)


def run(argv, check=True, capture=True, env=None, timeout=300):
    r = subprocess.run(argv, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, env=env, timeout=timeout)
    if check and r.returncode != 0:
        raise BenchError(f"command failed ({r.returncode}): {' '.join(argv)}\n{r.stderr.strip()}")
    return r


# --------------------------------------------------------------------------------------------
# JSON-RPC over a unix socket (OVSDB protocol, also the unixctl protocol of the nbctl daemon)

class JsonRpc:
    def __init__(self, path, timeout=600):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.dec = json.JSONDecoder()
        self.next_id = 0
        self.send_lock = threading.Lock()

    def send(self, obj):
        with self.send_lock:
            self.sock.sendall(json.dumps(obj).encode())

    def recv(self):
        while True:
            s = self.buf.lstrip()
            if s:
                try:
                    text = s.decode()
                    obj, n = self.dec.raw_decode(text)
                    self.buf = text[n:].encode()
                    return obj
                except (ValueError, UnicodeDecodeError):
                    pass
            data = self.sock.recv(1 << 20)
            if not data:
                raise BenchError("JSON-RPC connection closed")
            self.buf += data

    def call(self, method, params):
        self.next_id += 1
        mid = self.next_id
        self.send({"method": method, "params": params, "id": mid})
        while True:
            m = self.recv()
            if m.get("method") == "echo":
                self.send({"result": m["params"], "error": None, "id": m["id"]})
                continue
            if m.get("id") == mid:
                return m

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Nbctl:
    """Client of an `ovn-nbctl --detach` daemon: one unixctl "run" per API call."""

    def __init__(self, path):
        self.rpc = JsonRpc(path, timeout=3600)

    def run(self, *args):
        r = self.rpc.call("run", [str(a) for a in args])
        if r.get("error"):
            raise BenchError(f"ovn-nbctl {' '.join(map(str, args))}: {r['error']}")
        return r.get("result") or ""


class Monitor:
    """OVSDB monitor of one table; records when registered predicates first hold."""

    def __init__(self, path, db, table, columns):
        self.rpc = JsonRpc(path, timeout=None)
        self.rows = {}
        self.cond = threading.Condition()
        self.watches = {}
        self.error = None
        self.updates = 0
        r = self.rpc.call("monitor", [db, "m", {table: {"columns": columns}}])
        if r.get("error"):
            raise BenchError(f"monitor {db}.{table}: {r['error']}")
        self._apply(r["result"].get(table, {}))
        self.table = table
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _apply(self, changes):
        for uuid, ch in changes.items():
            new = ch.get("new")
            if new is None:
                self.rows.pop(uuid, None)
            else:
                self.rows[uuid] = new

    def _loop(self):
        try:
            while True:
                m = self.rpc.recv()
                if m.get("method") == "echo":
                    self.rpc.send({"result": m["params"], "error": None, "id": m["id"]})
                elif m.get("method") == "update":
                    now = time.time()
                    with self.cond:
                        self._apply(m["params"][1].get(self.table, {}))
                        self.updates += 1
                        self._check(now)
                        self.cond.notify_all()
        except Exception as e:  # noqa: BLE001 -- reported by wait()
            with self.cond:
                self.error = e
                self.cond.notify_all()

    def _check(self, now):
        for w in self.watches.values():
            if w["t"] is None and w["pred"](self.rows):
                w["t"] = now

    def watch(self, name, pred):
        with self.cond:
            self.watches[name] = {"pred": pred, "t": None}
            self._check(time.time())

    def when(self, name):
        with self.cond:
            return self.watches[name]["t"]

    def count(self, fn):
        with self.cond:
            return sum(1 for r in self.rows.values() if fn(r))

    def close(self):
        self.rpc.close()


def is_true(v):
    return v is True


def has_uuid(v):
    return isinstance(v, list) and len(v) == 2 and v[0] == "uuid"


# --------------------------------------------------------------------------------------------
# /proc accounting

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def proc_status(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])  # kB
    except OSError:
        pass
    return None


def reset_hwm(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def machine_cpu():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]) / CLK_TCK, idle / CLK_TCK


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# --------------------------------------------------------------------------------------------

class Pinger:
    """`ping -D -i INTERVAL` in a namespace; records the time of the first reply.

    No -w: with a deadline ping exits at the first "Destination Host Unreachable" (ARP
    failure), so it runs until stop() (the callers bound the wait)."""

    def __init__(self, bench, ns, dst, interval, deadline):
        self.dst = dst
        self.first = None
        self.replies = 0
        self.p = subprocess.Popen(
            ["ip", "netns", "exec", ns, "stdbuf", "-oL", "ping", "-n", "-D", "-i", str(interval), dst],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        bench.pingers.append(self)
        self.done = threading.Event()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        rx = re.compile(r"^\[(\d+\.\d+)\].*bytes from")
        for line in self.p.stdout:
            m = rx.match(line)
            if m:
                self.replies += 1
                if self.first is None:
                    self.first = float(m.group(1))
                    self.done.set()
        self.done.set()

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()


class Bench:
    def __init__(self, args):
        self.a = args
        self.pid = os.getpid()
        self.pfx = f"ob{self.pid % 1000:03d}"
        self.work = f"/tmp/ovnbench.{self.pid}"
        self.procs = []        # dicts: role, name, pid, popen
        self.netns = []        # namespaces we made (deleted in reverse order)
        self.root_links = []   # veth names created in the root namespace
        self.pingers = []
        self.vm_seq = 0
        self.results = {}
        self.nb = None
        self.monitors = []
        self.acls = not args.no_acls
        self.sg_commands = []  # the security group NB commands as run (for the JSON)

    # ---------------------------------------------------------------- processes
    def spawn(self, role, name, argv, env=None, ns=None, logname=None):
        if ns:
            argv = ["ip", "netns", "exec", ns] + argv
        out = open(os.path.join(self.work, logname or f"{name}.out"), "ab")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, start_new_session=True)
        out.close()
        self.procs.append({"role": role, "name": name, "pid": p.pid, "popen": p})
        return p

    def check_alive(self):
        for pr in self.procs:
            if pr["popen"] is not None and pr["popen"].poll() is not None:
                raise BenchError(f"{pr['name']} (pid {pr['pid']}) exited with {pr['popen'].returncode};"
                                 f" see logs in {self.work}")

    @staticmethod
    def wait_path(path, timeout=30):
        end = time.time() + timeout
        while not os.path.exists(path):
            if time.time() > end:
                raise BenchError(f"timed out waiting for {path}")
            time.sleep(0.02)

    def env_for(self, d):
        e = dict(os.environ)
        for k in ("OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR",
                  "OVN_RUNDIR", "OVN_DBDIR", "OVN_LOGDIR", "OVN_SYSCONFDIR"):
            e[k] = d
        return e

    # ---------------------------------------------------------------- namespaces
    def netns_add(self, ns):
        run(["ip", "netns", "add", ns])
        self.netns.append(ns)
        nsx = ["ip", "netns", "exec", ns, "sh", "-c",
               "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6;"
               "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6;"
               "ip link set lo up"]
        run(nsx)

    def veth(self, a, b, ns_a, ns_b):
        run(["ip", "link", "add", a, "type", "veth", "peer", "name", b])
        self.root_links.append(a)
        run(["ip", "link", "set", a, "netns", ns_a])
        run(["ip", "link", "set", b, "netns", ns_b])

    # ---------------------------------------------------------------- central
    def chdir(self, i):
        return os.path.join(self.work, f"c{i:02d}")

    def chns(self, i):
        return f"{self.pfx}c{i:02d}"

    def vsctl(self, i, *args, timeout=300):
        return run(["ovs-vsctl", f"--db=unix:{self.chdir(i)}/db.sock", "--timeout=300"] + list(args),
                   timeout=timeout)

    def start_central(self):
        w = self.work
        env = self.env_for(w)
        for db, schema in (("nb", NB_SCHEMA), ("sb", SB_SCHEMA)):
            run(["ovsdb-tool", "create", f"{w}/{db}.db", schema])
            self.spawn(f"{db}-ovsdb", f"ovsdb-server-{db}",
                       ["ovsdb-server", f"{w}/{db}.db", f"--remote=punix:{w}/{db}.sock",
                        f"--unixctl={w}/ovsdb-server-{db}.ctl", "-vconsole:off", "-vfile:info",
                        f"--log-file={w}/ovsdb-server-{db}.log"], env=env)
        for db in ("nb", "sb"):
            self.wait_path(f"{w}/{db}.sock")
        self.spawn("northd", "ovn-northd",
                   ["ovn-northd", f"--ovnnb-db=unix:{w}/nb.sock", f"--ovnsb-db=unix:{w}/sb.sock",
                    f"--unixctl={w}/ovn-northd.ctl", "-vconsole:off", "-vfile:info",
                    f"--log-file={w}/ovn-northd.log"], env=env)
        r = run(["ovn-nbctl", f"--db=unix:{w}/nb.sock", "--detach", f"--pidfile={w}/nbctl.pid",
                 f"--log-file={w}/nbctl.log", "-vconsole:off", f"--unixctl={w}/nbctl.ctl"], env=env)
        sock = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else f"{w}/nbctl.ctl"
        with open(f"{w}/nbctl.pid") as f:
            npid = int(f.read().strip())
        self.procs.append({"role": "nbctl-daemon", "name": "ovn-nbctl-daemon", "pid": npid, "popen": None})
        self.nb = Nbctl(sock)
        self.nb.run("init")
        if self.acls:
            self.nb_sg(["pg-add", DROP_PG,
                        "--", "--type=port-group", "acl-add", DROP_PG, "from-lport", "1001",
                        f"inport == @{DROP_PG} && ip", "drop",
                        "--", "--type=port-group", "acl-add", DROP_PG, "to-lport", "1001",
                        f"outport == @{DROP_PG} && ip", "drop"])
        self.lsp_mon = Monitor(f"{w}/nb.sock", "OVN_Northbound", "Logical_Switch_Port", ["name", "up"])
        self.pb_mon = Monitor(f"{w}/sb.sock", "OVN_Southbound", "Port_Binding",
                              ["logical_port", "chassis", "up"])
        self.ch_mon = Monitor(f"{w}/sb.sock", "OVN_Southbound", "Chassis", ["name"])
        self.monitors += [self.lsp_mon, self.pb_mon, self.ch_mon]

    # ---------------------------------------------------------------- chassis
    def start_underlay(self):
        ul = f"{self.pfx}ul"
        self.netns_add(ul)
        run(["ip", "-n", ul, "link", "add", "name", "ulbr", "type", "bridge"])
        run(["ip", "-n", ul, "link", "set", "ulbr", "up"])

    def start_chassis(self, i):
        d = self.chdir(i)
        os.makedirs(d)
        env = self.env_for(d)
        ns = self.chns(i)
        ul = f"{self.pfx}ul"
        name = f"ch{i:02d}"
        ip = f"{UNDERLAY_NET}.{i + 1}"
        self.netns_add(ns)
        self.veth(f"{self.pfx}u{i:02d}", f"{self.pfx}t{i:02d}", ul, ns)
        run(["ip", "-n", ul, "link", "set", f"{self.pfx}u{i:02d}", "master", "ulbr", "up"])
        run(["ip", "-n", ns, "link", "set", f"{self.pfx}t{i:02d}", "up"])
        run(["ovsdb-tool", "create", f"{d}/conf.db", OVS_SCHEMA])
        self.spawn("chassis-ovsdb", f"ovsdb-server-{name}",
                   ["ovsdb-server", f"{d}/conf.db", f"--remote=punix:{d}/db.sock",
                    f"--unixctl={d}/ovsdb-server.ctl", "-vconsole:off", "-vfile:info",
                    f"--log-file={d}/ovsdb-server.log"], env=env, logname=f"c{i:02d}/ovsdb-server.out")
        self.wait_path(f"{d}/db.sock")
        sb = f"unix:{self.work}/sb.sock"
        self.vsctl(i, "--no-wait", "init", "--", "set", "Open_vSwitch", ".",
                   f"external_ids:system-id={name}", f"external_ids:hostname={name}",
                   f"external_ids:ovn-remote={sb}", "external_ids:ovn-encap-type=geneve",
                   f"external_ids:ovn-encap-ip={ip}", "external_ids:ovn-bridge-datapath-type=netdev",
                   "external_ids:ovn-remote-probe-interval=0",
                   "external_ids:ovn-openflow-probe-interval=0",
                   "other_config:n-handler-threads=1", "other_config:n-revalidator-threads=1")
        self.spawn("ovs-vswitchd", f"ovs-vswitchd-{name}",
                   ["ovs-vswitchd", f"unix:{d}/db.sock", f"--unixctl={d}/ovs-vswitchd.ctl",
                    "-vconsole:off", "-vfile:info", f"--log-file={d}/ovs-vswitchd.log"],
                   env=env, ns=ns, logname=f"c{i:02d}/ovs-vswitchd.out")
        self.vsctl(i, "add-br", "br-phy", "--", "set", "Bridge", "br-phy", "datapath_type=netdev",
                   "--", "add-port", "br-phy", f"{self.pfx}t{i:02d}",
                   "--", "add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev",
                   "fail_mode=secure", "other_config:disable-in-band=true")
        run(["ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "br-phy"])
        run(["ip", "-n", ns, "link", "set", "br-phy", "up"])
        self.spawn("ovn-controller", f"ovn-controller-{name}",
                   ["ovn-controller", f"unix:{d}/db.sock",
                    "-vconsole:off", "-vfile:info", f"--log-file={d}/ovn-controller.log"],
                   env=env, ns=ns, logname=f"c{i:02d}/ovn-controller.out")

    def start_all_chassis(self):
        n = self.a.chassis
        self.start_underlay()
        for i in range(n):
            self.start_chassis(i)
            self.check_alive()
            if (i + 1) % 5 == 0 or i + 1 == n:
                log(f"started {i + 1}/{n} chassis")
        # all chassis registered in the SB, full mesh of tunnels on every br-int
        end = time.time() + 300
        while self.ch_mon.count(lambda r: True) < n:
            self.check_alive()
            if time.time() > end:
                raise BenchError(f"only {self.ch_mon.count(lambda r: True)} of {n} chassis in the SB")
            time.sleep(0.2)
        for i in range(n):
            while True:
                r = self.vsctl(i, "--bare", "--columns=name", "find", "Interface", "type=geneve")
                if len(r.stdout.split()) >= n - 1:
                    break
                self.check_alive()
                if time.time() > end:
                    raise BenchError(f"chassis {i}: only {len(r.stdout.split())} Geneve tunnels")
                time.sleep(0.2)
        # a warm underlay: every vswitchd knows every other tunnel endpoint's MAC
        macs = {}
        for i in range(n):
            r = run(["ip", "netns", "exec", self.chns(i), "cat", "/sys/class/net/br-phy/address"])
            macs[i] = r.stdout.strip()
        for i in range(n):
            for j in range(n):
                if i != j:
                    run(["ovs-appctl", "-t", f"{self.chdir(i)}/ovs-vswitchd.ctl", "tnl/neigh/set",
                         "br-phy", f"{UNDERLAY_NET}.{j + 1}", macs[j]])
        if n > 1:  # underlay sanity check through br-phy of chassis 0
            for j in range(1, n):
                r = run(["ip", "netns", "exec", self.chns(0), "ping", "-c1", "-W2",
                         f"{UNDERLAY_NET}.{j + 1}"], check=False)
                if r.returncode != 0:
                    raise BenchError(f"underlay: chassis 0 cannot reach {UNDERLAY_NET}.{j + 1}")
        log(f"{n} chassis registered, {n - 1} Geneve tunnels each, underlay OK (load {loadavg()})")

    # ---------------------------------------------------------------- VM ports
    def make_vm(self, chassis, mac, ip, retrans_ms):
        n = self.vm_seq
        self.vm_seq += 1
        ns, p, q = f"{self.pfx}v{n}", f"{self.pfx}p{n}", f"{self.pfx}q{n}"
        self.netns_add(ns)
        self.veth(p, q, self.chns(chassis), ns)
        run(["ip", "-n", ns, "link", "set", q, "address", mac])
        run(["ip", "-n", ns, "addr", "add", f"{ip}/16", "dev", q])
        run(["ip", "-n", ns, "link", "set", q, "up"])
        run(["ip", "-n", self.chns(chassis), "link", "set", p, "up"])
        run(["ip", "netns", "exec", ns, "sh", "-c",
             f"echo {retrans_ms} > /proc/sys/net/ipv4/neigh/{q}/retrans_time_ms"])
        return {"ns": ns, "ovs_if": p, "vm_if": q, "chassis": chassis, "mac": mac, "ip": ip}

    def del_vm(self, vm):
        run(["ip", "netns", "del", vm["ns"]], check=False)
        if vm["ns"] in self.netns:
            self.netns.remove(vm["ns"])

    def bind_args(self, ifname, lsp, internal):
        a = ["--", "add-port", "br-int", ifname, "--", "set", "Interface", ifname,
             f"external_ids:iface-id={lsp}"]
        if internal:
            a.append("type=internal")
        return a

    @staticmethod
    def pg_name(ls):
        return f"pg_default_{ls}"

    def nb_sg(self, args):
        """Runs one NB transaction of security group setup and records it."""
        self.sg_commands.append(" ".join(a if re.fullmatch(r"[\w@=./:-]+", a) else f"'{a}'" for a in args))
        self.nb.run(*args)

    def sg_add(self, ls):
        """The project's default security group: port group + its two ACLs, one transaction."""
        pg = self.pg_name(ls)
        self.nb_sg(["pg-add", pg,
                    "--", "--type=port-group", "acl-add", pg, "from-lport", "1002",
                    f"inport == @{pg} && ip4", "allow-related",
                    "--", "--type=port-group", "acl-add", pg, "to-lport", "1002",
                    f"outport == @{pg} && ip4 && ip4.src == ${pg}_ip4", "allow-related"])

    def lsp_args(self, ls, lsp, mac, ip, ref="@p"):
        """The port-create API call (one NB transaction; ref must be unique within it)."""
        if not self.acls:
            return ["lsp-add", ls, lsp, "--", "lsp-set-addresses", lsp, f"{mac} {ip}",
                    "--", "lsp-set-port-security", lsp, f"{mac} {ip}"]
        return [f"--id={ref}", "create", "Logical_Switch_Port", f"name={lsp}",
                f'addresses="{mac} {ip}"', f'port_security="{mac} {ip}"',
                "--", "add", "Logical_Switch", ls, "ports", ref,
                "--", "add", "Port_Group", self.pg_name(ls), "ports", ref,
                "--", "add", "Port_Group", DROP_PG, "ports", ref]

    def wait_up(self, names, timeout):
        names = set(names)
        end = time.time() + timeout
        while self.lsp_mon.count(lambda r: r.get("name") in names and is_true(r.get("up"))) < len(names):
            self.check_alive()
            if time.time() > end:
                raise BenchError(f"ports not up after {timeout} s")
            time.sleep(0.05)

    def ping_ok(self, vm, ip, count=3):
        r = run(["ip", "netns", "exec", vm["ns"], "ping", "-n", "-c", str(count), "-i", "0.2", "-W", "1",
                 ip], check=False)
        m = re.search(r"(\d+) received", r.stdout)
        return int(m.group(1)) if m else 0

    # ---------------------------------------------------------------- accounting
    def acct_start(self):
        snap = {}
        for pr in self.procs:
            reset_hwm(pr["pid"])
            snap[pr["pid"]] = proc_cpu(pr["pid"])
        return {"cpu": snap, "machine": machine_cpu(), "self": os.times(), "t": time.time(),
                "load": loadavg()}

    def acct_end(self, st):
        roles = {}
        for pr in self.procs:
            c0, c1 = st["cpu"].get(pr["pid"]), proc_cpu(pr["pid"])
            hwm = proc_status(pr["pid"], "VmHWM")
            rss = proc_status(pr["pid"], "VmRSS")
            g = roles.setdefault(pr["role"], {"n": 0, "cpu_s": 0.0, "cpu_s_max": 0.0, "peak_rss_kb_sum": 0,
                                              "peak_rss_kb_max": 0, "rss_kb_sum": 0})
            g["n"] += 1
            if c0 is not None and c1 is not None:
                g["cpu_s"] += c1 - c0
                g["cpu_s_max"] = max(g["cpu_s_max"], round(c1 - c0, 2))
            g["peak_rss_kb_sum"] += hwm or 0
            g["peak_rss_kb_max"] = max(g["peak_rss_kb_max"], hwm or 0)
            g["rss_kb_sum"] += rss or 0
        for g in roles.values():
            g["cpu_s"] = round(g["cpu_s"], 2)
        wall = time.time() - st["t"]
        tot1, idle1 = machine_cpu()
        tot0, idle0 = st["machine"]
        busy = (tot1 - tot0) - (idle1 - idle0)
        ours = sum(g["cpu_s"] for g in roles.values())
        s1 = os.times()
        script = (s1.user - st["self"].user) + (s1.system - st["self"].system) + \
                 (s1.children_user - st["self"].children_user) + \
                 (s1.children_system - st["self"].children_system)
        return {"wall_s": round(wall, 2), "roles": roles,
                "machine_busy_cpu_s": round(busy, 2),
                "daemons_cpu_s": round(ours, 2),
                "bench_script_and_tools_cpu_s": round(script, 2),
                "other_cpu_s": round(busy - ours - script, 2),
                "load_start": st["load"], "load_end": loadavg()}

    def flows(self):
        per = []
        for i in range(self.a.chassis):
            r = run(["ovs-ofctl", "-O", "OpenFlow15", "dump-aggregate", f"unix:{self.chdir(i)}/br-int.mgmt"])
            m = re.search(r"flow_count=(\d+)", r.stdout)
            per.append(int(m.group(1)) if m else -1)
        sb = JsonRpc(f"{self.work}/sb.sock")
        try:
            r = sb.call("transact", ["OVN_Southbound", {"op": "select", "table": "Logical_Flow",
                                                        "where": [], "columns": ["_uuid"]}])
            lflows = len(r["result"][0]["rows"])
        finally:
            sb.close()
        return {"openflow_total": sum(per), "openflow_min": min(per), "openflow_max": max(per),
                "openflow_per_chassis": per, "sb_logical_flows": lflows}

    # ---------------------------------------------------------------- one port timing
    def time_one_port(self, ls, lsp, pinger_vm, new_vm, tag):
        """Adds one port (NB + binding) and times connectivity and --wait=hv sync."""
        pg = Pinger(self, pinger_vm["ns"], new_vm["ip"], 0.01, self.a.one_timeout)
        time.sleep(0.1)  # ping is running (and failing) before the API call
        t0 = time.time()
        self.nb.run(*self.lsp_args(ls, lsp, new_vm["mac"], new_vm["ip"]))
        t_nb = time.time()
        self.vsctl(new_vm["chassis"], *self.bind_args(new_vm["ovs_if"], lsp, False))
        t_bind = time.time()
        self.nb.run("--wait=hv", f"--timeout={int(self.a.one_timeout)}", "sync")
        t_sync = time.time()
        self.wait_up([lsp], self.a.one_timeout)
        pg.done.wait(self.a.one_timeout)
        pg.stop()
        t_up = self.lsp_mon.when(f"up:{lsp}") if f"up:{lsp}" in self.lsp_mon.watches else None
        r = {"nb_api_s": round(t_nb - t0, 4), "bind_api_s": round(t_bind - t_nb, 4),
             "api_s": round(t_bind - t0, 4),
             "sync_s": round(t_sync - t0, 4),
             "up_s": round(t_up - t0, 4) if t_up else None,
             "ping_s": round(pg.first - t0, 4) if pg.first else None}
        log(f"{tag}: API {r['api_s']:.3f} s (NB {r['nb_api_s']:.3f}, bind {r['bind_api_s']:.3f}), "
            f"up {r['up_s']} s, first ping reply {r['ping_s']} s, --wait=hv sync {r['sync_s']:.3f} s")
        if pg.first is None:
            raise BenchError(f"{tag}: no ping reply within {self.a.one_timeout} s")
        return r

    def add_one_port_watch(self, lsp):
        self.lsp_mon.watch(f"up:{lsp}", lambda rows, n=lsp: any(
            r.get("name") == n and is_true(r.get("up")) for r in rows.values()))

    @staticmethod
    def summarize(runs, key):
        v = [r[key] for r in runs if r.get(key) is not None]
        if not v:
            return None
        return {"median": round(statistics.median(v), 4), "min": round(min(v), 4), "max": round(max(v), 4)}

    def phase_one(self):
        n = self.a.chassis
        ls = "one"
        log("phase one: logical switch 'one' with 3 working ports")
        acct = self.acct_start()
        self.nb.run("ls-add", ls)
        if self.acls:
            self.sg_add(ls)
        base = []
        for k in range(3):
            mac, ip = f"0a:ff:00:00:00:{k + 1:02x}", f"10.0.0.{k + 1}"
            vm = self.make_vm(k % n, mac, ip, 10)
            lsp = f"one-p{k}"
            self.nb.run(*self.lsp_args(ls, lsp, mac, ip))
            self.vsctl(vm["chassis"], *self.bind_args(vm["ovs_if"], lsp, False))
            vm["lsp"] = lsp
            base.append(vm)
        self.nb.run("--wait=hv", "--timeout=300", "sync")
        self.wait_up([v["lsp"] for v in base], 300)
        for vm in base[1:]:
            ok = 0
            for _ in range(20):
                ok = self.ping_ok(base[0], vm["ip"], 1)
                if ok:
                    break
            if not ok:
                raise BenchError(f"phase one: {base[0]['ip']} cannot ping {vm['ip']}")
        log("phase one: 3 ports up and pinging; timing single port additions")
        runs = []
        target_ch = 1 % n
        for r in range(self.a.reps):
            mac, ip = f"0a:ff:00:00:01:{r + 1:02x}", f"10.0.1.{r + 1}"
            vm = self.make_vm(target_ch, mac, ip, 10)
            lsp = f"one-new{r}"
            vm["lsp"] = lsp
            self.add_one_port_watch(lsp)
            runs.append(self.time_one_port(ls, lsp, base[0], vm, f"one port #{r + 1} (chassis {target_ch})"))
            base.append(vm)
        res = {"runs": runs, "pinger_chassis": 0, "new_port_chassis": target_ch,
               "ports_before": 3, "acct": self.acct_end(acct)}
        for key in ("api_s", "nb_api_s", "bind_api_s", "up_s", "ping_s", "sync_s"):
            res[key] = self.summarize(runs, key)
        self.results["one_port"] = res
        # tear down switch "one"
        self.nb.run("ls-del", ls)
        if self.acls:
            self.nb.run("pg-del", self.pg_name(ls))
        for vm in base:
            self.vsctl(vm["chassis"], "--if-exists", "del-port", "br-int", vm["ovs_if"])
            self.del_vm(vm)
        self.nb.run("--wait=hv", "--timeout=300", "sync")
        log("phase one: done, switch 'one' deleted")

    # ---------------------------------------------------------------- bulk
    def layout(self):
        a = self.a
        L, C = a.switches, a.chassis
        ports = []
        for k in range(a.ports):
            ls, j = k % L, k // L
            h = j + 10
            ports.append({"k": k, "ls": ls, "j": j, "lsname": f"ls{ls}", "lsp": f"ls{ls}-p{j}",
                          "chassis": j % C, "mac": f"0a:{ls + 1:02x}:00:00:{(j >> 8) & 255:02x}:{j & 255:02x}",
                          "ip": f"10.0.{h >> 8}.{h & 255}", "sample": False})
        by = {}
        for p in ports:
            by.setdefault((p["ls"], p["chassis"]), []).append(p)
        pairs = []
        for i in range(a.sample):
            ls = i % L
            ca, cb = (2 * i) % C, (2 * i + 1) % C
            pa = next((p for p in by.get((ls, ca), []) if not p["sample"]), None)
            if pa:
                pa["sample"] = True
            pb = next((p for p in by.get((ls, cb), []) if not p["sample"]), None)
            if pb:
                pb["sample"] = True
            if not pa or not pb:
                raise BenchError(f"not enough ports for {a.sample} sample pairs")
            pairs.append((pa, pb))
        return ports, pairs

    def phase_bulk(self):
        a = self.a
        C, L = a.chassis, a.switches
        ports, pairs = self.layout()
        names = {p["lsp"] for p in ports}
        log(f"phase bulk: {a.ports} ports, {L} switches, {C} chassis, {len(pairs)} ping pairs; "
            f"making {2 * len(pairs)} namespaces")
        for p in ports:
            if p["sample"]:
                p["vm"] = self.make_vm(p["chassis"], p["mac"], p["ip"], 200)
        self.pb_mon.watch("bulk_bound", lambda rows: sum(
            1 for r in rows.values() if r.get("logical_port") in names and has_uuid(r.get("chassis"))) == len(names))
        self.pb_mon.watch("bulk_sb_rows", lambda rows: sum(
            1 for r in rows.values() if r.get("logical_port") in names) == len(names))
        self.lsp_mon.watch("bulk_up", lambda rows: sum(
            1 for r in rows.values() if r.get("name") in names and is_true(r.get("up"))) == len(names))
        deadline = a.timeout
        pingers = [(pa, pb, Pinger(self, pa["vm"]["ns"], pb["ip"], 0.2, deadline)) for pa, pb in pairs]
        time.sleep(0.3)
        self.check_alive()
        log(f"phase bulk: start (load {loadavg()})")
        acct = self.acct_start()
        t0 = time.time()
        for ls in range(L):
            self.nb.run("ls-add", f"ls{ls}", "--", "set", "Logical_Switch", f"ls{ls}",
                        "other_config:subnet=10.0.0.0/16")
            if self.acls:
                self.sg_add(f"ls{ls}")
        lat = []
        nb_batch = max(1, a.nb_batch)
        for idx in range(0, len(ports), nb_batch):
            args = []
            for p in ports[idx:idx + nb_batch]:
                args += (["--"] if args else []) + self.lsp_args(p["lsname"], p["lsp"], p["mac"], p["ip"],
                                                                 f"@p{p['k']}")
            t = time.time()
            self.nb.run(*args)
            lat.append(time.time() - t)
            done_n = min(idx + nb_batch, len(ports))
            if done_n // 250 != idx // 250 or done_n == len(ports):
                log(f"  NB: {done_n}/{len(ports)} ports created")
        t_nb = time.time()
        bind = []
        for i in range(C):
            args = []
            for p in ports:
                if p["chassis"] == i:
                    if p["sample"]:
                        args += self.bind_args(p["vm"]["ovs_if"], p["lsp"], False)
                    else:
                        args += self.bind_args(f"{self.pfx}i{p['k']:05d}", p["lsp"], True)
            if args:
                bind.append((i, subprocess.Popen(
                    ["ovs-vsctl", f"--db=unix:{self.chdir(i)}/db.sock", "--timeout=600"] + args,
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)))
        for i, pr in bind:
            _, err = pr.communicate()
            if pr.returncode != 0:
                raise BenchError(f"binding on chassis {i} failed: {err.strip()}")
        t_bind = time.time()
        log(f"phase bulk: API calls done in {t_bind - t0:.2f} s (NB {t_nb - t0:.2f} s, "
            f"bindings {t_bind - t_nb:.2f} s); waiting for --wait=hv sync")
        sync = {}

        def do_sync():
            try:
                self.nb.run("--wait=hv", f"--timeout={int(deadline)}", "sync")
                sync["t"] = time.time()
            except Exception as e:  # noqa: BLE001
                sync["err"] = e
        th = threading.Thread(target=do_sync, daemon=True)
        th.start()
        end = t0 + deadline
        last = 0
        while True:
            self.check_alive()
            up = self.lsp_mon.count(lambda r: r.get("name") in names and is_true(r.get("up")))
            bound = self.pb_mon.count(lambda r: r.get("logical_port") in names and has_uuid(r.get("chassis")))
            pinged = sum(1 for _, _, pg in pingers if pg.first)
            done = (not th.is_alive()) and up == len(names) and pinged == len(pingers)
            if done or time.time() > end:
                break
            if time.time() - last >= 5:
                last = time.time()
                log(f"  bound {bound}/{len(names)}, up {up}/{len(names)}, pairs pinging {pinged}/"
                    f"{len(pingers)}, sync {'done' if 't' in sync else 'waiting'} (load {loadavg()})")
            time.sleep(0.1)
        t_end = time.time()
        ac = self.acct_end(acct)
        for _, _, pg in pingers:
            pg.stop()
        if "err" in sync:
            raise BenchError(f"--wait=hv sync failed: {sync['err']}")

        def rel(t):
            return round(t - t0, 3) if t else None
        first = [pg.first for _, _, pg in pingers]
        res = {"ports": a.ports, "switches": L, "chassis": C, "nb_ports_per_transaction": nb_batch,
               "security_groups": self.acls,
               "ports_per_chassis": a.ports / C,
               "api_total_s": round(t_bind - t0, 3), "api_nb_s": round(t_nb - t0, 3),
               "api_bind_s": round(t_bind - t_nb, 3),
               "nb_call_ms": {"n": len(lat), "p50": round(1000 * statistics.median(lat), 3),
                              "p99": round(1000 * sorted(lat)[int(0.99 * (len(lat) - 1))], 3),
                              "max": round(1000 * max(lat), 3)},
               "t_sb_port_bindings_s": rel(self.pb_mon.when("bulk_sb_rows")),
               "t_all_bound_s": rel(self.pb_mon.when("bulk_bound")),
               "t_all_up_s": rel(self.lsp_mon.when("bulk_up")),
               "t_sync_s": rel(sync.get("t")),
               "t_first_pair_ping_s": rel(min(f for f in first if f)) if any(first) else None,
               "t_all_pairs_ping_s": rel(max(first)) if all(first) else None,
               "pairs": [], "timed_out": t_end > end, "acct": ac}
        # verification: every pair pings, and the ARP answer is the right tenant's MAC
        bad = 0
        for pa, pb, pg in pingers:
            got = self.ping_ok(pa["vm"], pb["ip"], 3)
            nb = run(["ip", "-n", pa["vm"]["ns"], "neigh", "show", pb["ip"]], check=False).stdout
            mac_ok = pb["mac"] in nb.lower()
            res["pairs"].append({"src": pa["lsp"], "src_chassis": pa["chassis"], "dst": pb["lsp"],
                                 "dst_chassis": pb["chassis"], "dst_ip": pb["ip"],
                                 "first_reply_s": rel(pg.first), "verify_replies_of_3": got,
                                 "arp_mac_is_own_tenant": mac_ok})
            if got == 0 or not mac_ok:
                bad += 1
        res["pairs_failed"] = bad
        res["flows"] = self.flows()
        self.results["bulk"] = res
        self.bulk_pairs = pairs
        log(f"phase bulk: all up {res['t_all_up_s']} s, sync {res['t_sync_s']} s, all pairs ping "
            f"{res['t_all_pairs_ping_s']} s; {res['flows']['openflow_total']} OpenFlow flows, "
            f"{res['flows']['sb_logical_flows']} logical flows; {bad} pairs failed verification")
        if res["timed_out"]:
            raise BenchError(f"phase bulk timed out after {deadline} s (results so far in JSON)")

    def phase_scale(self):
        a = self.a
        if not getattr(self, "bulk_pairs", None):
            raise BenchError("phase scale needs phase bulk")
        pa = self.bulk_pairs[0][0]
        ls = pa["lsname"]
        target_ch = 1 % a.chassis
        log(f"phase scale: one more port into {ls} with {a.ports} ports in place")
        acct = self.acct_start()
        runs = []
        nls = sum(1 for k in range(a.ports) if k % a.switches == pa["ls"])
        for r in range(a.scale_reps):
            j = nls + r
            h = j + 10
            mac = f"0a:{pa['ls'] + 1:02x}:00:00:{(j >> 8) & 255:02x}:{j & 255:02x}"
            ip = f"10.0.{h >> 8}.{h & 255}"
            vm = self.make_vm(target_ch, mac, ip, 10)
            lsp = f"{ls}-p{j}"
            self.add_one_port_watch(lsp)
            run(["ip", "netns", "exec", pa["vm"]["ns"], "sh", "-c",
                 f"echo 10 > /proc/sys/net/ipv4/neigh/{pa['vm']['vm_if']}/retrans_time_ms"])
            runs.append(self.time_one_port(ls, lsp, pa["vm"], vm,
                                           f"port #{a.ports + r + 1} (chassis {target_ch})"))
        res = {"runs": runs, "pinger_chassis": pa["chassis"], "new_port_chassis": target_ch,
               "acct": self.acct_end(acct)}
        for key in ("api_s", "nb_api_s", "bind_api_s", "up_s", "ping_s", "sync_s"):
            res[key] = self.summarize(runs, key)
        self.results["scale_port"] = res

    # ---------------------------------------------------------------- ACL check (untimed)
    def conntrack_entries(self, chassis, src, dst):
        r = run(["ovs-appctl", "-t", f"{self.chdir(chassis)}/ovs-vswitchd.ctl", "dpctl/dump-conntrack"],
                check=False)
        return sum(1 for line in r.stdout.splitlines() if f"src={src},dst={dst}" in line)

    def check_acls(self):
        """Negative check: a sample port taken out of its security group (left in
        neutron_pg_drop only) must lose connectivity to its pair, both ways; then it is put
        back and must ping again."""
        pa, pb = self.bulk_pairs[0]
        pg = self.pg_name(pb["lsname"])
        log(f"ACL check: removing {pb['lsp']} from {pg} (it stays in {DROP_PG}); "
            f"{pa['lsp']} <-> {pb['lsp']} must fail")
        uuid = self.nb.run("get", "Logical_Switch_Port", pb["lsp"], "_uuid").strip()

        def members(group):
            return self.nb.run("get", "Port_Group", group, "ports")
        res = {"removed_port": pb["lsp"], "removed_from": pg, "peer": pa["lsp"],
               "peer_chassis": pa["chassis"], "port_chassis": pb["chassis"]}
        res["before_replies_of_3"] = self.ping_ok(pa["vm"], pb["ip"], 3)
        res["conntrack_entries_on_port_chassis"] = self.conntrack_entries(pb["chassis"], pa["ip"], pb["ip"])
        self.nb.run("remove", "Port_Group", pg, "ports", uuid)
        self.nb.run("--wait=hv", "--timeout=300", "sync")
        res["removed_in_group"] = uuid in members(pg)
        res["removed_in_drop_group"] = uuid in members(DROP_PG)
        res["removed_fwd_replies_of_5"] = self.ping_ok(pa["vm"], pb["ip"], 5)
        res["removed_rev_replies_of_5"] = self.ping_ok(pb["vm"], pa["ip"], 5)
        self.nb.run("add", "Port_Group", pg, "ports", uuid)
        self.nb.run("--wait=hv", "--timeout=300", "sync")
        t = time.time()
        got = 0
        for _ in range(20):
            got = self.ping_ok(pa["vm"], pb["ip"], 1)
            if got:
                break
        res["restored_ping_s"] = round(time.time() - t, 3) if got else None
        res["restored_replies_of_3"] = self.ping_ok(pa["vm"], pb["ip"], 3)
        res["ok"] = (res["before_replies_of_3"] > 0 and not res["removed_in_group"]
                     and res["removed_in_drop_group"] and res["removed_fwd_replies_of_5"] == 0
                     and res["removed_rev_replies_of_5"] == 0 and res["restored_replies_of_3"] > 0)
        self.results["acl_check"] = res
        log(f"ACL check: before {res['before_replies_of_3']}/3 replies; removed from {pg}: "
            f"{res['removed_fwd_replies_of_5']}/5 and {res['removed_rev_replies_of_5']}/5 (back); "
            f"put back: {res['restored_replies_of_3']}/3 -> {'OK' if res['ok'] else 'FAILED'}")
        if not res["ok"]:
            raise BenchError(f"ACL check failed: {res}")

    # ---------------------------------------------------------------- cleanup
    def cleanup(self):
        for pg in self.pingers:
            try:
                pg.stop()
            except Exception:  # noqa: BLE001
                pass
        for m in self.monitors:
            m.close()
        if self.nb:
            self.nb.rpc.close()
        order = {"ovn-controller": 0, "nbctl-daemon": 1, "northd": 2, "ovs-vswitchd": 3,
                 "chassis-ovsdb": 4, "sb-ovsdb": 5, "nb-ovsdb": 6}
        procs = sorted(self.procs, key=lambda p: order.get(p["role"], 9))
        for pr in procs:
            try:
                os.kill(pr["pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass
        end = time.time() + 5
        for pr in procs:
            while time.time() < end:
                if pr["popen"] is not None:
                    if pr["popen"].poll() is not None:
                        break
                elif not os.path.exists(f"/proc/{pr['pid']}"):
                    break
                time.sleep(0.05)
        for pr in procs:
            alive = pr["popen"].poll() is None if pr["popen"] is not None else os.path.exists(f"/proc/{pr['pid']}")
            if alive:
                try:
                    os.kill(pr["pid"], signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if pr["popen"] is not None:
                try:
                    pr["popen"].wait(5)
                except subprocess.TimeoutExpired:
                    pass
        for ns in reversed(self.netns):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        for link in self.root_links:
            if os.path.exists(f"/sys/class/net/{link}"):
                subprocess.run(["ip", "link", "del", link], stderr=subprocess.DEVNULL)


def check_prereqs():
    if os.geteuid() != 0:
        sys.exit("bench_ovn.py: must run as root (namespaces, veths, OVS daemons)")
    missing = [b for b in ("ovn-northd", "ovn-controller", "ovn-nbctl") if not shutil.which(b)]
    if missing or not os.path.exists(NB_SCHEMA):
        sys.exit(f"bench_ovn.py: OVN is not installed ({', '.join(missing) or NB_SCHEMA} missing): "
                 "apt-get install -y ovn-central ovn-host")
    missing = [b for b in ("ovsdb-server", "ovsdb-tool", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovs-appctl")
               if not shutil.which(b)]
    if missing or not os.path.exists(OVS_SCHEMA):
        sys.exit(f"bench_ovn.py: Open vSwitch is missing ({', '.join(missing)}): "
                 "apt-get install -y openvswitch-switch")
    for b, pkg in (("ip", "iproute2"), ("ping", "iputils-ping"), ("stdbuf", "coreutils")):
        if not shutil.which(b):
            sys.exit(f"bench_ovn.py: {b} missing: apt-get install -y {pkg}")


def versions():
    out = {}
    for k, cmd in (("ovn", ["ovn-northd", "--version"]), ("ovs", ["ovs-vswitchd", "--version"])):
        r = subprocess.run(cmd, capture_output=True, text=True)
        out[k] = r.stdout.splitlines()[0] if r.stdout else "?"
    out["kernel"] = os.uname().release
    out["cpus"] = os.cpu_count()
    return out


def print_summary(res):
    def f(x, unit=" s"):
        return "-" if x is None else f"{x:.3f}{unit}" if isinstance(x, float) else f"{x}{unit}"

    def mm(d):
        return "-" if not d else f"{d['median']:.3f} s ({d['min']:.3f}-{d['max']:.3f})"
    print("\n## Results (OVN %s, %d chassis)" % (res["versions"]["ovn"].split()[-1], res["params"]["chassis"]))
    for key, title in (("one_port", "1 port, switch with 3 ports"),
                       ("scale_port", "1 port, after the bulk phase")):
        r = res.get(key)
        if not r:
            continue
        print(f"\n{title} (median of {len(r['runs'])}, min-max):")
        print(f"  API (NB txn + OVS binding): {mm(r['api_s'])}   [NB {mm(r['nb_api_s'])}]")
        print(f"  port up in NB:              {mm(r['up_s'])}")
        print(f"  first ping reply:           {mm(r['ping_s'])}")
        print(f"  --wait=hv sync returned:    {mm(r['sync_s'])}")
    print(f"\nmode: {res.get('mode')}")
    c = res.get("acl_check")
    if c:
        print(f"ACL check: {c['peer']} -> {c['removed_port']} {c['before_replies_of_3']}/3 replies; "
              f"with {c['removed_port']} out of {c['removed_from']} (still in {DROP_PG}: "
              f"{c['removed_in_drop_group']}): {c['removed_fwd_replies_of_5']}/5, back "
              f"{c['removed_rev_replies_of_5']}/5; put back: {c['restored_replies_of_3']}/3 "
              f"-> {'OK' if c['ok'] else 'FAILED'}")
    b = res.get("bulk")
    if b:
        print(f"\n{b['ports']} ports, {b['switches']} switches, {b['chassis']} chassis:")
        print(f"  API total {f(b['api_total_s'])} (NB {f(b['api_nb_s'])}: {b['nb_call_ms']['n']} calls of "
              f"{b['nb_ports_per_transaction']} port(s), "
              f"p50 {b['nb_call_ms']['p50']} ms, p99 {b['nb_call_ms']['p99']} ms; "
              f"bindings {f(b['api_bind_s'])})")
        print(f"  all bound {f(b['t_all_bound_s'])}, all up {f(b['t_all_up_s'])}, "
              f"--wait=hv sync {f(b['t_sync_s'])}, all {len(b['pairs'])} pairs ping {f(b['t_all_pairs_ping_s'])}"
              f" (first {f(b['t_first_pair_ping_s'])}); pairs failing verification: {b['pairs_failed']}")
        fl = b["flows"]
        print(f"  OpenFlow flows: {fl['openflow_total']} total on {b['chassis']} br-int "
              f"({fl['openflow_min']}-{fl['openflow_max']} per chassis); SB logical flows {fl['sb_logical_flows']}")
        ac = b["acct"]
        print(f"  CPU during the phase ({ac['wall_s']} s wall; machine busy {ac['machine_busy_cpu_s']} CPU-s, "
              f"of which other tenants {ac['other_cpu_s']}; load {ac['load_start']} -> {ac['load_end']}):")
        for role, g in sorted(ac["roles"].items()):
            print(f"    {role:15s} x{g['n']:<3d} CPU {g['cpu_s']:7.2f} s (max {g['cpu_s_max']:6.2f} per process)"
                  f"  peak RSS max {g['peak_rss_kb_max'] / 1024:7.1f} MiB"
                  f"  sum {g['peak_rss_kb_sum'] / 1024:8.1f} MiB")


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[1] if "\n\n" in __doc__ else __doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chassis", type=int, default=20, help="chassis (hypervisor sandboxes), default 20")
    ap.add_argument("--ports", type=int, default=1000, help="logical ports in the bulk phase, default 1000")
    ap.add_argument("--switches", type=int, default=2, help="tenant logical switches (same subnet), default 2")
    ap.add_argument("--sample", type=int, default=10,
                    help="port pairs on different chassis pinged in the bulk phase (2 namespaces each), default 10")
    ap.add_argument("--nb-batch", type=int, default=1,
                    help="ports per NB transaction in the bulk phase (default 1: one API call per port)")
    ap.add_argument("--no-acls", action="store_true",
                    help="no security groups: no port groups, no ACLs, API call = lsp-add (the old behaviour)")
    ap.add_argument("--reps", type=int, default=5, help="single-port additions in phase one, default 5")
    ap.add_argument("--scale-reps", type=int, default=3, help="single-port additions in phase scale, default 3")
    ap.add_argument("--phases", default="one,bulk,scale", help="comma list of one,bulk,scale (default all)")
    ap.add_argument("--timeout", type=float, default=1800, help="bulk phase limit in seconds, default 1800")
    ap.add_argument("--one-timeout", type=float, default=120, help="limit per single-port addition, default 120")
    ap.add_argument("--json", metavar="PATH", help="write machine-readable results here")
    ap.add_argument("--keep", action="store_true",
                    help="leave daemons, namespaces and /tmp/ovnbench.PID in place (debugging); "
                         "the cleanup commands are printed")
    a = ap.parse_args()
    phases = [p for p in a.phases.split(",") if p]
    if set(phases) - {"one", "bulk", "scale"}:
        ap.error("--phases takes one,bulk,scale")
    if a.chassis < 1 or a.chassis > 250 or a.ports < 1 or a.switches < 1 or a.sample < 0:
        ap.error("need 1 <= --chassis <= 250, --ports >= 1, --switches >= 1, --sample >= 0")
    if a.ports // a.switches > 65000:
        ap.error("at most 65000 ports per switch")
    check_prereqs()

    b = Bench(a)
    stale = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    if re.search(rf"^{b.pfx}(c|v|ul)", stale, re.M):
        sys.exit(f"bench_ovn.py: namespaces named {b.pfx}* already exist (an earlier --keep run?); "
                 "remove them first")

    def on_signal(signum, _frame):
        raise Interrupted(f"signal {signum}")
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    os.makedirs(b.work)
    res = {"params": vars(a), "versions": versions(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
           "load_at_start": loadavg()}
    b.results = res
    res["mode"] = "no-acls" if a.no_acls else "neutron-default-sg"
    res["security_groups"] = (
        {"enabled": False} if a.no_acls else
        {"enabled": True,
         "model": "Neutron ML2/OVN: per project a default security group (IPv4 egress allowed, IPv4 "
                  "ingress only from the group's members), stateful (allow-related); plus neutron_pg_drop "
                  "(drop all ip) holding every port; each port joins both groups in its create transaction",
         "nb_transactions": b.sg_commands,
         "port_create_transaction": " ".join(b.lsp_args("LS", "LSP", "MAC", "IP"))})
    ok = False
    try:
        log(f"work dir {b.work}, prefix {b.pfx}, load {loadavg()}")
        b.start_central()
        b.start_all_chassis()
        res["chassis_startup_s"] = round(time.time() - T_START, 1)
        if "one" in phases:
            b.phase_one()
        if "bulk" in phases:
            b.phase_bulk()
        if "scale" in phases:
            b.phase_scale()
        if b.acls and getattr(b, "bulk_pairs", None):
            b.check_acls()
        ok = True
    except Interrupted as e:
        res["error"] = f"interrupted ({e})"
        print("bench_ovn.py: interrupted, cleaning up", file=sys.stderr)
    except BenchError as e:
        res["error"] = str(e)
        print(f"bench_ovn.py: error: {e}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        res["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=2, default=str)
        try:
            print_summary(res)
        except Exception as e:  # noqa: BLE001
            print(f"(summary incomplete: {e})")
        if a.keep:
            print(f"\n--keep: left running. Logs and sockets in {b.work}. To clean up:\n"
                  f"  kill {' '.join(str(p['pid']) for p in b.procs)}\n"
                  f"  for n in {' '.join(reversed(b.netns))}; do ip netns del $n; done")
        else:
            log("cleaning up")
            b.cleanup()
            if ok:
                shutil.rmtree(b.work, ignore_errors=True)
            else:
                print(f"logs kept in {b.work}", file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
