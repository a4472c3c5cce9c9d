//! The IPS appliance fixture (`tenet_tests::ips`, `labs/ips-appliance.sh`) on real Open vSwitch
//! (userspace datapath), without the tenet controller: one bridge, two "VM" namespaces A and B,
//! and OpenFlow 1.3 rules installed by hand with ovs-ofctl that steer A->B into the appliance's
//! `in_if`, what leaves its `out_if` on to B, and B->A the other way round.
//!
//! The ignored test `ips_bench` measures the appliance's added cost (labs/bench-ips.sh).
//!
//! Needs root, Open vSwitch and Suricata (labs/setup-host.sh); fails, never skips, without them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};
use tenet_tests::ips::{IpsAppliance, FORBIDDEN_PAYLOAD, FORBIDDEN_PAYLOAD_SID};
use tenet_tests::{require_root_and_ovs, unique_prefix, wait_until};

const IP_A: &str = "10.213.0.1";
const IP_B: &str = "10.213.0.2";

/// Runs a command; its stdout, or an error with its output.
fn run(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(cmd).args(args).output().with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        bail!(
            "{cmd} {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Which way A's and B's traffic takes.
#[derive(Clone, Copy, Debug)]
enum Path {
    /// A <-> B straight through the bridge.
    Direct,
    /// A -> in_if, out_if -> B; B -> out_if, in_if -> A.
    ThroughAppliance,
}

/// A unique OVS bridge (userspace datapath, fail-mode secure, no controller) with two
/// "VM" namespaces A and B on it; removed on drop.
struct Bed {
    prefix: String,
    bridge: String,
}

impl Bed {
    fn new() -> anyhow::Result<Bed> {
        let prefix = unique_prefix();
        let bed = Bed { bridge: format!("{prefix}br"), prefix };
        let br = bed.bridge.as_str();
        run(
            "ovs-vsctl",
            &[
                "add-br",
                br,
                "--",
                "set",
                "bridge",
                br,
                "datapath_type=netdev",
                "fail_mode=secure",
                "protocols=OpenFlow13",
            ],
        )?;
        for (vm, ip) in [("A", IP_A), ("B", IP_B)] {
            let ns = bed.ns(vm);
            let host = bed.vm_port(vm);
            run("ip", &["netns", "add", &ns])?;
            run("ip", &["link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
            run("sysctl", &["-qw", &format!("net.ipv6.conf.{host}.disable_ipv6=1")])?;
            run("ip", &["netns", "exec", &ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])?;
            // TCP over the userspace datapath needs transmit checksum offload off on the endpoints.
            run("ethtool", &["-K", &host, "tx", "off"])?;
            run("ip", &["netns", "exec", &ns, "ethtool", "-K", "eth0", "tx", "off"])?;
            run("ip", &["link", "set", &host, "up"])?;
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
            run("ip", &["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
            run("ovs-vsctl", &["add-port", br, &host])?;
        }
        Ok(bed)
    }

    fn ns(&self, vm: &str) -> String {
        format!("{}-{vm}", self.prefix)
    }

    fn vm_port(&self, vm: &str) -> String {
        format!("{}v{}", self.prefix, vm.to_lowercase())
    }

    /// Starts an appliance whose ports are on this bed's bridge.
    fn appliance(&self) -> anyhow::Result<IpsAppliance> {
        let p = &self.prefix;
        IpsAppliance::start(&format!("{p}-ips"), &self.bridge, &format!("{p}ii"), &format!("{p}io"))
    }

    /// The OpenFlow port number of OVS interface `iface`, once OVS has assigned it.
    fn ofport(&self, iface: &str) -> anyhow::Result<u32> {
        let mut port = None;
        wait_until(Duration::from_secs(10), || {
            port = run("ovs-vsctl", &["get", "interface", iface, "ofport"])
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|p| *p > 0)
                .and_then(|p| u32::try_from(p).ok());
            port.is_some()
        });
        port.with_context(|| format!("OVS gave {iface} no OpenFlow port"))
    }

    /// Replaces the bridge's flows so that A's and B's traffic takes `path`.
    fn steer(&self, path: Path, ips: &IpsAppliance) -> anyhow::Result<()> {
        let a = self.ofport(&self.vm_port("A"))?;
        let b = self.ofport(&self.vm_port("B"))?;
        let flows = match path {
            Path::Direct => vec![format!("in_port={a},actions=output:{b}"), format!("in_port={b},actions=output:{a}")],
            Path::ThroughAppliance => {
                let i = self.ofport(&ips.in_if)?;
                let o = self.ofport(&ips.out_if)?;
                vec![
                    format!("in_port={a},actions=output:{i}"),
                    format!("in_port={o},actions=output:{b}"),
                    format!("in_port={b},actions=output:{o}"),
                    format!("in_port={i},actions=output:{a}"),
                ]
            }
        };
        run("ovs-ofctl", &["-O", "OpenFlow13", "del-flows", &self.bridge])?;
        for f in flows {
            run("ovs-ofctl", &["-O", "OpenFlow13", "add-flow", &self.bridge, &format!("priority=100,{f}")])?;
        }
        Ok(())
    }

    /// Pings `to_ip` from `vm` `count` times, `interval` apart; the ping output.
    fn ping_output(&self, vm: &str, to_ip: &str, count: u32, interval: &str) -> anyhow::Result<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(vm), "ping", "-n", "-q", "-c", &count.to_string(), "-i", interval])
            .args(["-W", "1", to_ip])
            .output()
            .context("running ping")?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// How many of `count` pings from `vm` to `to_ip` were answered.
    fn pings(&self, vm: &str, to_ip: &str, count: u32) -> anyhow::Result<u32> {
        let out = self.ping_output(vm, to_ip, count, "0.2")?;
        ping_received(&out).with_context(|| format!("no ping summary in {out:?}"))
    }

    /// Sends `payload` over a new TCP connection from `from` to a listener in `to` (at
    /// `to_ip`:`port`), which answers `ok N` after reading N bytes up to the client's FIN.
    fn tcp_send(&self, from: &str, to: &str, to_ip: &str, port: u16, payload: &str) -> anyhow::Result<TcpOutcome> {
        let mut server = Command::new("ip")
            .args(["netns", "exec", &self.ns(to), "/usr/bin/python3", "-c", TCP_SERVER, &port.to_string(), "4"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the TCP listener")?;
        let mut stdout = BufReader::new(server.stdout.take().context("listener stdout")?);
        let mut ready = String::new();
        stdout.read_line(&mut ready).context("reading from the listener")?;
        if ready.trim() != "ready" {
            let _ = server.kill();
            let _ = server.wait();
            bail!("the TCP listener in {to} did not start: {ready:?}");
        }
        let client = Command::new("ip")
            .args(["netns", "exec", &self.ns(from), "/usr/bin/python3", "-c", TCP_CLIENT, to_ip, &port.to_string()])
            .args([payload, "3"])
            .output()
            .context("running the TCP client")?;
        let mut received = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut received).context("reading what the listener got")?;
        server.wait().context("waiting for the listener")?;
        Ok(TcpOutcome {
            reply: client.status.success().then(|| String::from_utf8_lossy(&client.stdout).trim().to_string()),
            received,
        })
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = Command::new("ovs-vsctl").args(["--if-exists", "del-br", &self.bridge]).status();
        for vm in ["A", "B"] {
            let host = self.vm_port(vm);
            if std::path::Path::new("/sys/class/net").join(&host).exists() {
                let _ = Command::new("ip").args(["link", "del", &host]).status();
            }
            let ns = self.ns(vm);
            if std::path::Path::new("/run/netns").join(&ns).exists() {
                let _ = Command::new("ip").args(["netns", "del", &ns]).status();
            }
        }
    }
}

/// Accepts one connection, reads to EOF (or the timeout), answers `ok N`, then prints what it got.
const TCP_SERVER: &str = r#"
import socket, sys
port, timeout = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
s.listen(1)
s.settimeout(timeout)
print("ready", flush=True)
data = b""
try:
    c, _ = s.accept()
    c.settimeout(timeout)
    while True:
        d = c.recv(65536)
        if not d:
            break
        data += d
    c.sendall(b"ok %d" % len(data))
    c.close()
except OSError:
    pass
sys.stdout.write(data.decode(errors="replace"))
"#;

/// Connects, sends its payload, closes its sending side and prints the answer; fails on timeout.
const TCP_CLIENT: &str = r#"
import socket, sys
host, port, payload, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
c = socket.create_connection((host, port), timeout=timeout)
c.sendall(payload.encode())
c.shutdown(socket.SHUT_WR)
r = b""
while True:
    d = c.recv(65536)
    if not d:
        break
    r += d
print(r.decode(errors="replace"))
"#;

/// What one TCP exchange achieved.
#[derive(Debug)]
struct TcpOutcome {
    /// The listener's answer, if the client got one in time.
    reply: Option<String>,
    /// What reached the listener.
    received: String,
}

impl TcpOutcome {
    fn delivered(&self, payload: &str) -> bool {
        self.received == payload && self.reply.as_deref() == Some(&format!("ok {}", payload.len()))
    }
}

/// `N received` from ping's summary.
fn ping_received(out: &str) -> Option<u32> {
    let line = out.lines().find(|l| l.contains("packets transmitted"))?;
    let part = line.split(',').find(|p| p.contains("received"))?;
    part.split_whitespace().next()?.parse().ok()
}

/// `(min, avg, max, mdev)` in ms from ping's `rtt min/avg/max/mdev = ...` line.
fn ping_rtt(out: &str) -> Option<[f64; 4]> {
    let line = out.lines().find(|l| l.contains("min/avg/max"))?;
    let nums = line.split('=').nth(1)?.split_whitespace().next()?;
    let v: Vec<f64> = nums.split('/').filter_map(|n| n.parse().ok()).collect();
    v.try_into().ok()
}

fn fail_on_error(r: anyhow::Result<()>) {
    if let Err(e) = r {
        panic!("{e:#}");
    }
}

#[test]
fn traffic_steered_through_the_appliance_passes_and_moves_its_counters() {
    require_root_and_ovs();
    fail_on_error(steered_traffic_passes());
}

fn steered_traffic_passes() -> anyhow::Result<()> {
    let bed = Bed::new()?;
    let ips = bed.appliance()?;

    // Control: the direct path works and does not touch the appliance.
    bed.steer(Path::Direct, &ips)?;
    ensure!(bed.pings("A", IP_B, 3)? == 3, "A cannot ping B on the direct path");
    let before = ips.packet_counts();
    ensure!(bed.pings("A", IP_B, 3)? == 3, "A cannot ping B on the direct path");
    ensure!(
        ips.packet_counts() == before,
        "direct traffic entered the appliance: {before:?} -> {:?}",
        ips.packet_counts()
    );

    bed.steer(Path::ThroughAppliance, &ips)?;
    let (in0, out0) = ips.packet_counts();
    let got = bed.pings("A", IP_B, 5)?;
    ensure!(got == 5, "{got} of 5 pings A->B through the appliance answered");
    let (in1, out1) = ips.packet_counts();
    ensure!(in1 >= in0 + 5, "the 5 requests did not enter the appliance's in side: {in0} -> {in1}");
    ensure!(out1 >= out0 + 5, "the 5 replies did not enter the appliance's out side: {out0} -> {out1}");

    let allowed = "hello from A, nothing to see here";
    let t = bed.tcp_send("A", "B", IP_B, 5001, allowed)?;
    ensure!(t.delivered(allowed), "an allowed TCP payload A->B did not get through: {t:?}");
    let t = bed.tcp_send("B", "A", IP_A, 5002, allowed)?;
    ensure!(t.delivered(allowed), "an allowed TCP payload B->A did not get through: {t:?}");
    let (in2, out2) = ips.packet_counts();
    ensure!(in2 > in1 && out2 > out1, "the TCP connections did not pass the appliance: {in1}/{out1} -> {in2}/{out2}");
    ensure!(
        ips.eve_events().iter().all(|e| e["event_type"] != "drop"),
        "allowed traffic was dropped: {:?}",
        ips.eve_events()
    );
    Ok(())
}

#[test]
fn forbidden_payload_is_dropped_and_logged_in_both_directions() {
    require_root_and_ovs();
    fail_on_error(forbidden_payload_is_dropped());
}

fn forbidden_payload_is_dropped() -> anyhow::Result<()> {
    let bed = Bed::new()?;
    let ips = bed.appliance()?;
    bed.steer(Path::ThroughAppliance, &ips)?;

    for (from, to, from_ip, to_ip, port) in [("A", "B", IP_A, IP_B, 5011), ("B", "A", IP_B, IP_A, 5012)] {
        let evil = format!("GET /{FORBIDDEN_PAYLOAD} please");
        let t = bed.tcp_send(from, to, to_ip, port, &evil)?;
        ensure!(t.reply.is_none(), "the client {from} got an answer for a forbidden payload: {t:?}");
        ensure!(!t.received.contains(FORBIDDEN_PAYLOAD), "the forbidden payload reached {to}: {t:?}");

        let blocked = |e: &Value| {
            e["alert"]["action"] == "blocked"
                && e["src_ip"] == from_ip
                && e["dest_ip"] == to_ip
                && e["dest_port"].as_u64() == Some(u64::from(port))
        };
        ensure!(
            wait_until(Duration::from_secs(5), || ips.alerts_with_sid(FORBIDDEN_PAYLOAD_SID).iter().any(blocked)),
            "no blocked alert {from_ip} -> {to_ip}:{port} for sid {FORBIDDEN_PAYLOAD_SID} in {}: {:?}",
            ips.eve_path().display(),
            ips.eve_events()
        );
        let drops = ips.eve_events().into_iter().filter(|e| e["event_type"] == "drop" && e["src_ip"] == from_ip);
        ensure!(drops.count() > 0, "no drop event from {from_ip}: {:?}", ips.eve_events());

        // The appliance still passes other connections.
        let fine = "an ordinary payload";
        let t = bed.tcp_send(from, to, to_ip, port + 100, fine)?;
        ensure!(t.delivered(fine), "an allowed payload {from}->{to} after the drop did not get through: {t:?}");
    }
    Ok(())
}

#[test]
fn dead_appliance_passes_nothing_until_restarted() {
    require_root_and_ovs();
    fail_on_error(dead_appliance_fails_closed());
}

fn dead_appliance_fails_closed() -> anyhow::Result<()> {
    let bed = Bed::new()?;
    let ips = bed.appliance()?;
    bed.steer(Path::ThroughAppliance, &ips)?;
    ensure!(bed.pings("A", IP_B, 3)? == 3, "A cannot ping B through the live appliance");

    ips.kill()?;
    ensure!(!ips.is_running(), "Suricata still runs after kill()");
    let (in0, _) = ips.packet_counts();
    let got = bed.pings("A", IP_B, 5)?;
    ensure!(got == 0, "{got} of 5 pings passed a dead appliance");
    let (in1, _) = ips.packet_counts();
    ensure!(in1 >= in0 + 5, "the pings were not steered into the dead appliance: {in0} -> {in1}");
    let payload = "anyone there?";
    let t = bed.tcp_send("A", "B", IP_B, 5021, payload)?;
    ensure!(t.reply.is_none() && t.received.is_empty(), "TCP passed a dead appliance: {t:?}");

    ips.restart()?;
    ensure!(ips.is_running(), "Suricata does not run after restart()");
    let got = bed.pings("A", IP_B, 5)?;
    ensure!(got == 5, "{got} of 5 pings passed the restarted appliance");
    let t = bed.tcp_send("A", "B", IP_B, 5022, payload)?;
    ensure!(t.delivered(payload), "TCP does not pass the restarted appliance: {t:?}");
    Ok(())
}

/// The appliance's added cost: ping RTT (200 pings, 10 ms apart) and iperf3 TCP throughput
/// A->B (10 s), direct and through the appliance, each `TENET_IPS_BENCH_ROUNDS` times
/// (default 3), alternating. Prints one `ips-bench: {json}` line. Run by labs/bench-ips.sh.
#[test]
#[ignore = "benchmark; run labs/bench-ips.sh"]
fn ips_bench() {
    require_root_and_ovs();
    fail_on_error(bench());
}

fn bench() -> anyhow::Result<()> {
    let rounds: u32 = std::env::var("TENET_IPS_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let bed = Bed::new()?;
    let ips = bed.appliance()?;
    let mut results = serde_json::Map::new();
    for path in [Path::Direct, Path::ThroughAppliance] {
        results.insert(
            format!("{path:?}"),
            json!({"ping_avg_ms": [], "ping_mdev_ms": [], "ping_lost": [], "iperf3_gbit_s": []}),
        );
    }
    for round in 0..rounds {
        for path in [Path::Direct, Path::ThroughAppliance] {
            bed.steer(path, &ips)?;
            // Warm up ARP and the datapath's flow cache.
            bed.pings("A", IP_B, 2)?;
            let out = bed.ping_output("A", IP_B, 200, "0.01")?;
            let rtt = ping_rtt(&out).with_context(|| format!("no rtt in {out:?}"))?;
            let lost = 200 - ping_received(&out).unwrap_or(0);
            let gbit = iperf3(&bed, 10)?;
            eprintln!(
                "round {round} {path:?}: ping avg {:.3} ms mdev {:.3} ms lost {lost}; iperf3 {gbit:.3} Gbit/s",
                rtt[1], rtt[3]
            );
            let r = &mut results[&format!("{path:?}")];
            for (key, v) in [
                ("ping_avg_ms", json!(rtt[1])),
                ("ping_mdev_ms", json!(rtt[3])),
                ("ping_lost", json!(lost)),
                ("iperf3_gbit_s", json!(gbit)),
            ] {
                if let Some(a) = r[key].as_array_mut() {
                    a.push(v);
                }
            }
        }
    }
    // Drops here are collateral (no payload matches a rule): show why Suricata dropped.
    let drops: Vec<Value> = ips
        .eve_events()
        .into_iter()
        .filter(|e| e["event_type"] == "drop")
        .map(|e| {
            json!({"reason": e["drop"]["reason"], "src": format!("{}:{}", e["src_ip"], e["src_port"]),
                "dest": format!("{}:{}", e["dest_ip"], e["dest_port"]), "proto": e["proto"],
                "syn": e["drop"]["syn"], "fin": e["drop"]["fin"], "rst": e["drop"]["rst"], "len": e["drop"]["len"]})
        })
        .collect();
    println!("ips-bench: {}", json!({"rounds": rounds, "results": results, "appliance_drops": drops}));
    Ok(())
}

/// iperf3 TCP throughput A->B for `secs` seconds, in Gbit/s (receiver side).
fn iperf3(bed: &Bed, secs: u32) -> anyhow::Result<f64> {
    let mut server = Command::new("ip")
        .args(["netns", "exec", &bed.ns("B"), "iperf3", "-s", "-1", "-B", IP_B])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting iperf3 -s")?;
    let mut out = None;
    // The server needs a moment to listen; the client fails fast until it does.
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let o = Command::new("ip")
            .args(["netns", "exec", &bed.ns("A"), "iperf3", "-J", "-c", IP_B, "-t", &secs.to_string()])
            .output()
            .context("running iperf3 -c")?;
        if o.status.success() {
            out = Some(o);
            break;
        }
    }
    let Some(out) = out else {
        let _ = server.kill();
        let _ = server.wait();
        bail!("iperf3 A->B never connected");
    };
    server.wait().context("waiting for iperf3 -s")?;
    let v: Value = serde_json::from_slice(&out.stdout).context("iperf3 -J output")?;
    let bps = v["end"]["sum_received"]["bits_per_second"].as_f64().context("no end.sum_received in iperf3 output")?;
    Ok(bps / 1e9)
}
