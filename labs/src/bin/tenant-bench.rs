//! `tenant-bench`: how fast tenant mode turns API calls into working connectivity.
//!
//! Builds, on this machine's Open vSwitch (userspace datapath), N bridges in a ring
//! (patch ports), each with its share of P ports (OVS internal interfaces; a sample
//! of them are veths into network namespaces so that connectivity can be checked),
//! then starts `tenet-netapi` (SQLite) and `tenet-controller --mode tenant` and
//! measures:
//!
//! 1. P ports over N switches: time from the first RegisterPort call to every switch
//!    reconciled at the last revision, and to ping working between every sample pair;
//!    flows installed; controller CPU seconds and peak memory.
//! 2. 1 port more: time from its RegisterPort call to ping working.
//!
//! Everything it creates is named with a unique prefix and removed at the end, also
//! on failure. Needs root, OVS running (labs/setup-host.sh) and the release binaries
//! (`cargo build --release`). Prints one JSON object with `--json`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::{json, Value};
use tenet_netapi::client::{connect_grpc, Method, Rest, StatusCode};
use tenet_netapi::grpc::pb;

#[derive(Debug, Parser)]
#[command(name = "tenant-bench", about, long_about = None)]
struct Args {
    /// Switches (OVS bridges, linked in a ring).
    #[arg(long, default_value_t = 20)]
    switches: u32,
    /// Tenant ports, spread evenly over the switches and over two networks.
    #[arg(long, default_value_t = 1000)]
    ports: u32,
    /// Sample port pairs (namespaces) whose connectivity is checked.
    #[arg(long, default_value_t = 10)]
    samples: u32,
    /// RegisterPort calls in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Directory with tenet-netapi and tenet-controller.
    #[arg(long, default_value = "target/release")]
    bin: PathBuf,
    /// Print the results as one JSON object.
    #[arg(long)]
    json: bool,
    /// The controller's log filter (its log is in the run's temporary directory).
    #[arg(long, default_value = "info")]
    controller_log: String,
    /// Leave everything up at the end (for debugging); remove it later with the printed commands.
    #[arg(long)]
    keep: bool,
}

fn sh(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(cmd).args(args).output().with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        bail!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn free_addr() -> anyhow::Result<String> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.to_string())
}

/// CPU seconds (user + system) and peak resident KiB of a process.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (ticks / 100.0, hwm)
}

/// Everything to remove at the end.
struct Lab {
    prefix: String,
    dir: PathBuf,
    children: Vec<Child>,
    bridges: Vec<String>,
    namespaces: Vec<String>,
    keep: bool,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.keep {
            let pids: Vec<String> = self.children.iter().map(|c| c.id().to_string()).collect();
            eprintln!(
                "kept: processes {} (kill them), bridges {}* (ovs-vsctl del-br), namespaces {}* (ip netns del), dir {}",
                pids.join(" "),
                self.prefix,
                self.prefix,
                self.dir.display()
            );
            return;
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for b in &self.bridges {
            let _ = Command::new("ovs-vsctl").args(["--if-exists", "del-br", b]).status();
        }
        for n in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Clone, Debug)]
struct Sample {
    ns: String,
    mac: String,
    ip: String,
    switch: u32,
    iface: String,
    network: usize,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tenant-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    if args.switches < 2 || args.ports < 2 * args.switches || args.samples * 2 > args.ports {
        bail!("need at least 2 switches, 2 ports per switch, and samples*2 <= ports");
    }
    let netapi_bin = args.bin.join("tenet-netapi");
    let ctl_bin = args.bin.join("tenet-controller");
    for b in [&netapi_bin, &ctl_bin] {
        if !b.exists() {
            bail!("{} missing: run `cargo build --release` first", b.display());
        }
    }
    let prefix = format!("tb{}", std::process::id() % 1000);
    let dir = std::env::temp_dir().join(format!("tenant-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut lab = Lab {
        prefix: prefix.clone(),
        dir: dir.clone(),
        children: vec![],
        bridges: vec![],
        namespaces: vec![],
        keep: args.keep,
    };
    let rt = tokio::runtime::Runtime::new()?;
    let progress = |msg: &str| {
        if !args.json {
            eprintln!("[tenant-bench] {msg}");
        }
    };

    // netapi (SQLite) with an admin.
    let db = format!("sqlite://{}", dir.join("netapi.db").display());
    let (http, grpc) = (free_addr()?, free_addr()?);
    let openrc = sh(
        netapi_bin.to_str().unwrap_or_default(),
        &["bootstrap", "--db", &db, "--password", "pw", "--public-url", &format!("http://{http}")],
    )?;
    let env: Vec<(String, String)> = openrc
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches(|c| c == '"' || c == '\'').to_string()))
        .collect();
    let netapi = Command::new(&netapi_bin)
        .args(["serve", "--db", &db, "--http", &http, "--grpc", &grpc])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("netapi.log"))?)
        .spawn()?;
    let netapi_pid = netapi.id();
    lab.children.push(netapi);
    let rest = Rest::new(&format!("http://{http}"));
    let token = rt.block_on(async {
        for _ in 0..100 {
            if let Ok(t) = rest.password_token("admin", "pw", "admin").await {
                return Ok(t);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("netapi did not come up (see {}/netapi.log)", dir.display())
    })?;
    let mut nets = Vec::new();
    for name in ["red", "blue"] {
        let p = rt.block_on(rest.expect(
            StatusCode::CREATED,
            Method::POST,
            "/v3/projects",
            Some(&token),
            Some(&json!({"project": {"name": name}})),
        ))?;
        let project = p["project"]["id"].as_str().context("project")?.to_string();
        let n = rt.block_on(rest.expect(
            StatusCode::CREATED,
            Method::POST,
            "/v2.0/networks",
            Some(&token),
            Some(&json!({"network": {"name": name, "project_id": project}})),
        ))?;
        let id = n["network"]["id"].as_str().context("network")?.to_string();
        rt.block_on(rest.expect(
            StatusCode::CREATED,
            Method::POST,
            "/v2.0/subnets",
            Some(&token),
            Some(&json!({"subnet": {"network_id": id, "cidr": "10.0.0.0/16", "ip_version": 4, "project_id": project}})),
        ))?;
        nets.push(id);
    }

    // The controller.
    let (of, api, cgrpc) = (free_addr()?, free_addr()?, free_addr()?);
    let ctl = Command::new(&ctl_bin)
        .args([
            "--mode",
            "tenant",
            "--netapi",
            &format!("http://{grpc}"),
            "--listen",
            &of,
            "--api",
            &api,
            "--grpc",
            &cgrpc,
        ])
        .args(["--settle", "1000", "--lldp-interval", "1000"])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RUST_LOG", &args.controller_log)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("controller.log"))?)
        .spawn()?;
    let ctl_pid = ctl.id();
    lab.children.push(ctl);

    // Bridges in a ring, ports, sample namespaces.
    progress(&format!("creating {} bridges with {} ports", args.switches, args.ports));
    let mut vsctl: Vec<String> = vec!["--timeout=60".into()];
    for i in 1..=args.switches {
        let b = format!("{prefix}s{i}");
        lab.bridges.push(b.clone());
        vsctl.extend(
            format!(
                "-- add-br {b} -- set bridge {b} datapath_type=netdev fail_mode=secure protocols=OpenFlow13 other-config:datapath-id={i:016x} -- set-controller {b} tcp:{of}"
            )
            .split(' ')
            .map(str::to_string),
        );
    }
    for i in 1..=args.switches {
        let j = i % args.switches + 1;
        let (a, b) = (format!("{prefix}s{i}"), format!("{prefix}s{j}"));
        let (pa, pb) = (format!("{prefix}p{i}-{j}"), format!("{prefix}p{j}-{i}"));
        vsctl.extend(
            format!("-- add-port {a} {pa} -- set interface {pa} type=patch options:peer={pb} -- add-port {b} {pb} -- set interface {pb} type=patch options:peer={pa}")
                .split(' ')
                .map(str::to_string),
        );
    }
    let vsctl_ref: Vec<&str> = vsctl.iter().map(String::as_str).collect();
    sh("ovs-vsctl", &vsctl_ref)?;

    // Which ports are samples: pairs (a on switch k, b on the switch across the ring), same network.
    let per_switch = args.ports / args.switches;
    let mut plan: Vec<(u32, String, usize, Option<usize>)> = Vec::new(); // (switch, iface, network, sample index)
    let mut samples: Vec<Sample> = Vec::new();
    for n in 0..args.ports {
        let switch = n % args.switches + 1;
        let network = ((n / args.switches) % 2) as usize;
        plan.push((switch, format!("{prefix}v{n}"), network, None));
    }
    for k in 0..args.samples {
        let a = (2 * k * args.switches) as usize % plan.len();
        let b_switch_offset = args.switches / 2;
        let b = (a + b_switch_offset as usize) % plan.len();
        for idx in [a, b] {
            if plan[idx].3.is_none() {
                let (switch, iface, network, _) = plan[idx].clone();
                let ns = format!("{prefix}n{idx}");
                let s = samples.len();
                samples.push(Sample {
                    ns,
                    mac: format!("fa:16:3e:ee:{:02x}:{:02x}", s >> 8, s & 255),
                    ip: String::new(),
                    switch,
                    iface,
                    network,
                });
                plan[idx].3 = Some(s);
            }
        }
    }
    let _ = per_switch;
    // Internal ports for the non-samples, one transaction per switch.
    for i in 1..=args.switches {
        let mut cmd: Vec<String> = vec!["--timeout=120".into()];
        for (switch, iface, _, sample) in &plan {
            if *switch == i && sample.is_none() {
                cmd.extend(
                    format!("-- add-port {prefix}s{i} {iface} -- set interface {iface} type=internal")
                        .split(' ')
                        .map(str::to_string),
                );
            }
        }
        if cmd.len() > 1 {
            let r: Vec<&str> = cmd.iter().map(String::as_str).collect();
            sh("ovs-vsctl", &r)?;
        }
    }
    for s in &samples {
        lab.namespaces.push(s.ns.clone());
        plug(&prefix, s)?;
    }

    // Wait for the controller to have reconciled every switch (empty tenant state).
    progress("waiting for the switches to connect and settle");
    wait_ready(&api, 0, args.switches as usize, Duration::from_secs(120))?;

    // 1. All ports.
    progress(&format!("registering {} ports", args.ports));
    let (cpu0, _) = usage(ctl_pid);
    let (ncpu0, _) = usage(netapi_pid);
    let t0 = Instant::now();
    let revisions = rt.block_on(register_all(&grpc, &token, &nets, &plan, &samples, args.concurrency))?;
    let api_done = t0.elapsed();
    let last = revisions.iter().map(|(_, r, _)| *r).max().unwrap_or(0);
    for (sample, _, ip) in &revisions {
        if let Some(s) = sample {
            samples[*s].ip = ip.clone();
        }
    }
    wait_ready(&api, last, args.switches as usize, Duration::from_secs(600))?;
    let flows_done = t0.elapsed();
    // Sample addresses are configured now (as DHCP would), then pinged pairwise.
    for s in &samples {
        sh(
            "ip",
            &["netns", "exec", &s.ns, "ip", "addr", "add", &format!("{}/16", s.ip), "dev", &format!("{}i", s.iface)],
        )?;
    }
    let pairs: Vec<(Sample, Sample)> =
        samples.chunks(2).filter(|c| c.len() == 2).map(|c| (c[0].clone(), c[1].clone())).collect();
    let connectivity = ping_pairs(&pairs, Duration::from_secs(60))?;
    let conn_done = t0.elapsed();
    let (cpu1, hwm) = usage(ctl_pid);
    let (ncpu1, nhwm) = usage(netapi_pid);
    let status = get_json(&api, "/v1/tenant")?;
    let flows: u64 =
        status["switches"].as_object().map(|m| m.values().filter_map(|s| s["flows"].as_u64()).sum()).unwrap_or(0);
    let mut ovs_flows = 0u64;
    for b in &lab.bridges {
        let out = sh("ovs-ofctl", &["-O", "OpenFlow13", "dump-aggregate", b]).unwrap_or_default();
        ovs_flows +=
            out.split("flow_count=").nth(1).and_then(|r| r.split_whitespace().next()?.parse().ok()).unwrap_or(0);
    }

    // 2. One port more (three times, the median counts), on switch 1, pinged from a
    // sample of its network elsewhere.
    progress("one more port (x3)");
    let peer =
        samples.iter().find(|s| s.network == 0 && s.switch != 1).cloned().context("a red sample off switch 1")?;
    let mut one_port = Vec::new();
    for rep in 0..3u8 {
        let one = Sample {
            ns: format!("{prefix}one{rep}"),
            mac: format!("fa:16:3e:ef:00:{rep:02x}"),
            ip: format!("10.0.250.{}", rep + 1),
            switch: 1,
            iface: format!("{prefix}one{rep}"),
            network: 0,
        };
        lab.namespaces.push(one.ns.clone());
        plug(&prefix, &one)?;
        sh(
            "ip",
            &[
                "netns",
                "exec",
                &one.ns,
                "ip",
                "addr",
                "add",
                &format!("{}/16", one.ip),
                "dev",
                &format!("{}i", one.iface),
            ],
        )?;
        std::thread::sleep(Duration::from_millis(500)); // the interface's PORT_STATUS has reached the controller
        let t1 = Instant::now();
        rt.block_on(async {
            let (mut reg, _) = connect_grpc(&format!("http://{grpc}"), &token).await?;
            reg.register_port(pb::RegisterPortRequest {
                network_id: nets[0].clone(),
                mac_address: one.mac.clone(),
                fixed_ips: vec![pb::FixedIp { subnet_id: String::new(), ip_address: one.ip.clone() }],
                binding: Some(pb::BindingSpec {
                    host: "bench".into(),
                    datapath_id: 1,
                    interface_name: one.iface.clone(),
                    vnic_type: String::new(),
                }),
                ..Default::default()
            })
            .await
            .map_err(|s| anyhow::anyhow!("RegisterPort: {s}"))?;
            anyhow::Ok(())
        })?;
        ping_until(&peer.ns, &one.ip, Duration::from_secs(30))?;
        one_port.push(t1.elapsed().as_secs_f64() * 1000.0);
    }
    one_port.sort_by(f64::total_cmp);
    let one_port_ms = one_port[one_port.len() / 2];

    let result = json!({
        "switches": args.switches,
        "ports": args.ports,
        "sample_pairs": pairs.len(),
        "register_calls_s": api_done.as_secs_f64(),
        "all_flows_installed_s": flows_done.as_secs_f64(),
        "all_samples_connected_s": conn_done.as_secs_f64(),
        "sample_connectivity": connectivity,
        "flows_compiled": flows,
        "flows_on_switches": ovs_flows,
        "controller_cpu_s": cpu1 - cpu0,
        "controller_peak_rss_kib": hwm,
        "netapi_cpu_s": ncpu1 - ncpu0,
        "netapi_peak_rss_kib": nhwm,
        "one_port_to_connectivity_ms": one_port_ms,
        "one_port_runs_ms": one_port,
    });
    if args.json {
        println!("{result}");
    } else {
        println!("{}", serde_json::to_string_pretty(&result)?);
    }
    Ok(())
}

/// A namespace with a veth whose other end is on the sample's bridge: the VM's MAC, up,
/// ARP retried every 10 ms.
fn plug(prefix: &str, s: &Sample) -> anyhow::Result<()> {
    sh("ip", &["netns", "add", &s.ns])?;
    let inner = format!("{}i", s.iface);
    sh("ip", &["link", "add", &s.iface, "type", "veth", "peer", "name", &inner])?;
    sh("ip", &["link", "set", &inner, "netns", &s.ns])?;
    sh("ip", &["link", "set", &s.iface, "up"])?;
    sh("ip", &["netns", "exec", &s.ns, "ip", "link", "set", &inner, "address", &s.mac])?;
    sh("ip", &["netns", "exec", &s.ns, "ip", "link", "set", &inner, "up"])?;
    sh("ip", &["netns", "exec", &s.ns, "sysctl", "-qw", &format!("net.ipv4.neigh.{inner}.retrans_time_ms=10")])?;
    sh("ovs-vsctl", &["add-port", &format!("{prefix}s{}", s.switch), &s.iface])?;
    Ok(())
}

fn get_json(api: &str, path: &str) -> anyhow::Result<Value> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(api)?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n")?;
    let mut b = Vec::new();
    s.read_to_end(&mut b)?;
    let t = String::from_utf8_lossy(&b);
    let body = t.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    Ok(serde_json::from_str(body)?)
}

fn wait_ready(api: &str, revision: i64, switches: usize, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(s) = get_json(api, "/v1/tenant") {
            let sw = s["switches"].as_object().cloned().unwrap_or_default();
            if s["revision"].as_i64().unwrap_or(0) >= revision
                && sw.len() >= switches
                && sw.values().all(|v| v["ready"] == true && v["revision"].as_i64().unwrap_or(0) >= revision)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("controller not ready at revision {revision} on {switches} switches: {s}");
            }
        } else if Instant::now() > deadline {
            bail!("controller API not answering");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

type Registered = (Option<usize>, i64, String);

async fn register_all(
    grpc: &str,
    token: &str,
    nets: &[String],
    plan: &[(u32, String, usize, Option<usize>)],
    samples: &[Sample],
    concurrency: usize,
) -> anyhow::Result<Vec<Registered>> {
    let (reg, _) = connect_grpc(&format!("http://{grpc}"), token).await?;
    let queue = Arc::new(tokio::sync::Mutex::new(plan.iter().cloned().collect::<std::collections::VecDeque<_>>()));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (q, mut reg, nets) = (queue.clone(), reg.clone(), nets.to_vec());
        let macs: BTreeMap<usize, String> = samples.iter().enumerate().map(|(i, s)| (i, s.mac.clone())).collect();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let Some((switch, iface, network, sample)) = q.lock().await.pop_front() else { break };
                let reply = reg
                    .register_port(pb::RegisterPortRequest {
                        network_id: nets[network].clone(),
                        mac_address: sample.and_then(|s| macs.get(&s).cloned()).unwrap_or_default(),
                        binding: Some(pb::BindingSpec {
                            host: format!("hv{switch}"),
                            datapath_id: u64::from(switch),
                            interface_name: iface,
                            vnic_type: String::new(),
                        }),
                        ..Default::default()
                    })
                    .await
                    .map_err(|s| anyhow::anyhow!("RegisterPort: {s}"))?
                    .into_inner();
                let ip = reply.port.and_then(|p| p.fixed_ips.first().map(|f| f.ip_address.clone())).unwrap_or_default();
                out.push((sample, reply.revision, ip));
            }
            anyhow::Ok(out)
        }));
    }
    let mut all = Vec::new();
    for t in futures_util::future::join_all(tasks).await {
        all.extend(t??);
    }
    Ok(all)
}

/// Time until `ns` gets its first echo reply from `ip`: a ping every 10 ms (and ARP
/// retried every 10 ms in the namespace), so the resolution is about 10 ms.
fn ping_until(ns: &str, ip: &str, timeout: Duration) -> anyhow::Result<Duration> {
    use std::io::BufRead;
    let t = Instant::now();
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-n", "-i", "0.01", "-w"])
        .arg(timeout.as_secs().max(1).to_string())
        .arg(ip)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("ping")?;
    let out = child.stdout.take().context("ping stdout")?;
    let mut got = None;
    for line in std::io::BufReader::new(out).lines() {
        let Ok(line) = line else { break };
        if line.contains("bytes from") {
            got = Some(t.elapsed());
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    got.with_context(|| format!("{ns} cannot reach {ip} within {timeout:?}"))
}

fn ping_pairs(pairs: &[(Sample, Sample)], timeout: Duration) -> anyhow::Result<String> {
    let mut handles = Vec::new();
    for (a, b) in pairs.iter().cloned() {
        handles.push(std::thread::spawn(move || ping_until(&a.ns, &b.ip, timeout).map(|_| ())));
    }
    let mut ok = 0;
    for h in handles {
        if h.join().map_err(|_| anyhow::anyhow!("ping thread panicked"))?.is_ok() {
            ok += 1;
        }
    }
    if ok < pairs.len() {
        bail!("only {ok} of {} sample pairs connected", pairs.len());
    }
    Ok(format!("{ok}/{}", pairs.len()))
}
