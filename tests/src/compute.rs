//! Helpers for the compute end-to-end tests: a `tenet-compute api` process beside a
//! [`NetApi`](crate::netapi::NetApi) whose catalog points at it, and a stand-in agent
//! (a tiny HTTP server that accepts every request with 202 and records it) for tests
//! of the API's side of the agent protocol without a hypervisor.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use serde_json::Value;
use tenet_netapi::client::{Method, Rest, StatusCode};

use crate::netapi::NetApi;
use crate::{repo_root, unique_prefix};

/// A running `tenet-compute api` on a temp SQLite database; stopped on drop.
pub struct ComputeApi {
    child: Option<Child>,
    dir: PathBuf,
    /// `http://ADDR`.
    pub url: String,
    /// netapi's URL and the service user (user, password, project).
    identity: (String, String, String, String),
}

impl ComputeApi {
    /// Starts the API on `addr` (the address the netapi catalog names) with the admin's
    /// credentials as its service user.
    pub fn start_on(netapi: &NetApi, addr: &str) -> anyhow::Result<ComputeApi> {
        ComputeApi::start_on_with(netapi, addr, &[])
    }

    /// Like [`ComputeApi::start_on`] with more `tenet-compute api` options (e.g. quotas).
    pub fn start_on_with(netapi: &NetApi, addr: &str, extra: &[&str]) -> anyhow::Result<ComputeApi> {
        let env =
            |k: &str| netapi.admin_env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
        ComputeApi::start_inner(netapi, addr, &env("OS_USERNAME"), &env("OS_PASSWORD"), &env("OS_PROJECT_NAME"), extra)
    }

    /// Starts the API on `addr` (the address the netapi catalog names), authenticating
    /// as the service user `user` / `password` of project `project` against `netapi`.
    pub fn start(netapi: &NetApi, addr: &str, user: &str, password: &str, project: &str) -> anyhow::Result<ComputeApi> {
        ComputeApi::start_inner(netapi, addr, user, password, project, &[])
    }

    fn start_inner(
        netapi: &NetApi,
        addr: &str,
        user: &str,
        password: &str,
        project: &str,
        extra: &[&str],
    ) -> anyhow::Result<ComputeApi> {
        let dir = std::env::temp_dir().join(format!("tenet-compute-e2e-{}-{}", std::process::id(), unique_prefix()));
        std::fs::create_dir_all(&dir).context("creating the temp dir")?;
        let bin = crate::workspace_binary("tenet-compute", "tenet-compute")?;
        let log = std::fs::File::create(dir.join("compute.log")).context("compute log")?;
        let db = format!("sqlite://{}", dir.join("compute.db").display());
        let mut child = Command::new(bin)
            .args(["api", "--db", &db, "--http", addr, "--identity", &netapi.url])
            .args(extra)
            .env("OS_USERNAME", user)
            .env("OS_PASSWORD", password)
            .env("OS_PROJECT_NAME", project)
            .env("RUST_LOG", "info,sqlx=warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting tenet-compute api")?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("compute stdout")?;
        let _ = BufReader::new(stdout).read_line(&mut line);
        let Some(local) = line.trim().strip_prefix("listening on ").map(str::to_string) else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.join("compute.log")).unwrap_or_default();
            bail!("tenet-compute api did not start: {line:?}\n{log}");
        };
        let identity = (netapi.url.clone(), user.to_string(), password.to_string(), project.to_string());
        Ok(ComputeApi { child: Some(child), dir, url: format!("http://{local}"), identity })
    }

    /// The registered hosts (`GET /internal/v1/hosts` as the service user): each with
    /// `report`, `alive`, `used`, `servers`. Not for use inside an async runtime.
    pub fn hosts(&self) -> anyhow::Result<Vec<Value>> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let (netapi, user, password, project) = &self.identity;
            let token = Rest::new(netapi).password_token(user, password, project).await?;
            let body = Rest::new(&self.url)
                .expect(StatusCode::OK, Method::GET, "/internal/v1/hosts", Some(&token), None)
                .await?;
            Ok(body["hosts"].as_array().cloned().unwrap_or_default())
        })
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("compute.log")).unwrap_or_default()
    }
}

impl Drop for ComputeApi {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One request a [`StandInAgent`] received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub body: Value,
}

/// NOT the real agent: a stand-in that answers 202 to every request and records it, so
/// that tests can drive the API's half of the agent protocol (spawn and action requests
/// out; reports, sent by the test itself, in).
pub struct StandInAgent {
    /// `http://ADDR`.
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl StandInAgent {
    /// Listens on an ephemeral loopback port (a thread per connection, for the test's life).
    pub fn start() -> anyhow::Result<StandInAgent> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the stand-in agent")?;
        let url = format!("http://{}", listener.local_addr()?);
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = serve_connection(stream, &log);
                });
            }
        });
        Ok(StandInAgent { url, received })
    }

    /// What it received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// Serves keep-alive HTTP/1.1 requests on one connection.
fn serve_connection(stream: std::net::TcpStream, log: &Mutex<Vec<Received>>) -> anyhow::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if let Ok(mut l) = log.lock() {
            l.push(Received { method, path, body });
        }
        writer.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")?;
    }
}

/// Runs a command; its stdout, or an error with its stderr.
pub fn run(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(cmd).args(args).output().with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        bail!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates OVS bridge `name` as tenant mode wants it (userspace datapath, fail mode
/// secure, OpenFlow 1.3, datapath id `dpid`) connected to the controller at `of_addr`.
pub fn tenant_bridge(name: &str, dpid: u64, of_addr: &str) -> anyhow::Result<()> {
    let dpid = format!("other-config:datapath-id={dpid:016x}");
    run(
        "ovs-vsctl",
        &[
            "add-br",
            name,
            "--",
            "set",
            "bridge",
            name,
            "datapath_type=netdev",
            "fail_mode=secure",
            "protocols=OpenFlow13",
            &dpid,
        ],
    )?;
    run("ovs-vsctl", &["set-controller", name, &format!("tcp:{of_addr}")])?;
    Ok(())
}

/// Links bridges `a` and `b` with the veth pair `link`/`peer` (transmit checksum offload
/// off: TCP over the userspace datapath needs it). Deleting `link` removes both ends.
pub fn fabric_link(link: &str, peer: &str, a: &str, b: &str) -> anyhow::Result<()> {
    run("ip", &["link", "add", link, "type", "veth", "peer", "name", peer])?;
    for (dev, br) in [(link, a), (peer, b)] {
        run("ip", &["link", "set", dev, "up"])?;
        let _ = run("ethtool", &["-K", dev, "tx", "off"]);
        run("ovs-vsctl", &["add-port", br, dev])?;
    }
    Ok(())
}

/// The IPv4 address a namespace-driver server's `eth0` has (from DHCP), if any.
pub fn ns_ip(id: &str) -> Option<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", &format!("tvm-{id}"), "ip", "-4", "-o", "addr", "show", "dev", "eth0"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().skip_while(|w| *w != "inet").nth(1).map(|a| a.split('/').next().unwrap_or("").to_string())
}

/// Pings `ip` `count` times (100 ms apart) from a namespace-driver server; replies received.
pub fn pings(from: &str, ip: &str, count: u32) -> u32 {
    let out = Command::new("ip")
        .args(["netns", "exec", &format!("tvm-{from}"), "ping", "-c", &count.to_string(), "-i", "0.1", "-W", "1", ip])
        .output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    text.split(',').find_map(|p| p.trim().strip_suffix(" received").and_then(|n| n.trim().parse().ok())).unwrap_or(0)
}

/// The control plane of an end-to-end test: netapi (SQLite) whose catalog points at a
/// compute API on a free port, a tenant-mode controller following it, and that compute
/// API (with `compute_args`). Bind the three in this order: they stop in reverse.
pub fn control_plane(compute_args: &[&str]) -> anyhow::Result<(NetApi, crate::tenant::TenantController, ComputeApi)> {
    let addr = crate::free_addr()?;
    let api = NetApi::start_with_catalog(&format!("http://{addr}/compute/v2.1"), &format!("http://{addr}/image"))?;
    let ctl = crate::tenant::TenantController::start(&api, &[])?;
    let compute = ComputeApi::start_on_with(&api, &addr, compute_args)?;
    Ok((api, ctl, compute))
}

/// N hypervisor hosts on this machine: N OVS bridges (netdev, fail mode secure,
/// OpenFlow 1.3, connected to the tenant controller) chained by veth pairs, each with a
/// `tenet-compute agent --driver namespace`. Everything goes on drop (agents, the
/// namespaces of servers they were told about with [`Hypervisors::track`], links, bridges).
pub struct Hypervisors {
    pub prefix: String,
    pub bridges: Vec<String>,
    links: Vec<String>,
    agents: Vec<std::process::Child>,
    logs: Vec<PathBuf>,
    state: PathBuf,
    servers: std::sync::Mutex<Vec<String>>,
}

impl Hypervisors {
    /// Starts `n` hosts whose agents report to `compute` (extra agent options in `agent_args`).
    pub fn start(
        netapi: &NetApi,
        ctl: &crate::tenant::TenantController,
        compute: &ComputeApi,
        n: usize,
        agent_args: &[&str],
    ) -> anyhow::Result<Hypervisors> {
        let each: Vec<Vec<String>> = (0..n).map(|_| agent_args.iter().map(|a| a.to_string()).collect()).collect();
        Hypervisors::start_each(netapi, ctl, compute, &each)
    }

    /// Starts one host per entry of `agent_args`, each agent with its own extra options
    /// (e.g. a different driver).
    pub fn start_each(
        netapi: &NetApi,
        ctl: &crate::tenant::TenantController,
        compute: &ComputeApi,
        agent_args: &[Vec<String>],
    ) -> anyhow::Result<Hypervisors> {
        let n = agent_args.len();
        let prefix = unique_prefix();
        let state = std::env::temp_dir().join(format!("tenet-agents-{prefix}"));
        let mut hv = Hypervisors {
            prefix: prefix.clone(),
            bridges: Vec::new(),
            links: Vec::new(),
            agents: Vec::new(),
            logs: Vec::new(),
            state: state.clone(),
            servers: std::sync::Mutex::new(Vec::new()),
        };
        for i in 0..n {
            let b = format!("{prefix}b{}", i + 1);
            hv.bridges.push(b.clone());
            tenant_bridge(&b, 0xc0_0000 + i as u64 + 1, &ctl.of_addr)?;
        }
        for i in 1..n {
            let link = format!("{prefix}l{i}");
            let peer = format!("{link}p");
            hv.links.push(link.clone());
            fabric_link(&link, &peer, &hv.bridges[i - 1], &hv.bridges[i])?;
        }
        let bin = crate::workspace_binary("tenet-compute", "tenet-compute")?;
        for (i, b) in hv.bridges.clone().iter().enumerate() {
            let log = std::env::temp_dir().join(format!("{prefix}-agent{i}.log"));
            let child = Command::new(&bin)
                .args(["agent", "--host", &format!("{prefix}-host{}", i + 1), "--bridge", b, "--api", &compute.url])
                .args(["--netapi", &netapi.url, "--netapi-grpc", &netapi.grpc_url])
                .args(&agent_args[i])
                .arg("--state-dir")
                .arg(&state)
                .envs(netapi.admin_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).context("agent log")?)
                .spawn()
                .context("starting an agent")?;
            hv.agents.push(child);
            hv.logs.push(log);
        }
        if !crate::wait_until(std::time::Duration::from_secs(20), || {
            compute.hosts().map(|h| h.len() >= n).unwrap_or(false)
        }) {
            bail!("the {n} agents did not report:\n{}", hv.logs());
        }
        Ok(hv)
    }

    /// Remembers a server whose namespace must go on drop (if the test fails first).
    pub fn track(&self, server_id: &str) {
        if let Ok(mut s) = self.servers.lock() {
            s.push(server_id.to_string());
        }
    }

    /// The servers tracked so far.
    pub fn tracked(&self) -> Vec<String> {
        self.servers.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// A file in agent `i`'s state directory (e.g. a libvirt console log).
    pub fn state_file(&self, i: usize, name: &str) -> PathBuf {
        self.state.join(self.host(i)).join(name)
    }

    /// The host name of agent `i` (0-based).
    pub fn host(&self, i: usize) -> String {
        format!("{}-host{}", self.prefix, i + 1)
    }

    /// The agents' logs.
    pub fn logs(&self) -> String {
        self.logs
            .iter()
            .enumerate()
            .map(|(i, l)| format!("--- agent {i} ---\n{}", std::fs::read_to_string(l).unwrap_or_default()))
            .collect()
    }
}

impl Drop for Hypervisors {
    fn drop(&mut self) {
        for c in &mut self.agents {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        for id in self.tracked() {
            // Interfaces of a migration cut short (both veth ends in the root namespace).
            if let Ok(out) = Command::new("ovs-vsctl")
                .args(["--columns=name", "--format=csv", "--no-headings", "find", "interface"])
                .arg(format!("external_ids:vm-id={id}"))
                .output()
            {
                for name in String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().trim_matches('"')) {
                    if !name.is_empty() && std::path::Path::new("/sys/class/net").join(name).exists() {
                        let _ = Command::new("ip").args(["link", "del", name]).status();
                    }
                }
            }
            // A libvirt server of a failed test: its domain goes too.
            let dom = format!("tenet-{id}");
            if Command::new("virsh")
                .args(["-c", "qemu:///system", "dominfo", &dom])
                .output()
                .is_ok_and(|o| o.status.success())
            {
                let _ = Command::new("virsh").args(["-c", "qemu:///system", "destroy", &dom]).output();
                let _ = Command::new("virsh")
                    .args(["-c", "qemu:///system", "undefine", &dom, "--managed-save", "--nvram"])
                    .output();
            }
            let ns = format!("tvm-{id}");
            if std::path::Path::new("/run/netns").join(&ns).exists() {
                let _ = Command::new("ip").args(["netns", "del", &ns]).status();
            }
        }
        for b in &self.bridges {
            let _ = Command::new("ovs-vsctl").args(["--if-exists", "del-br", b]).status();
        }
        for l in &self.links {
            let _ = Command::new("ip").args(["link", "del", l]).status();
        }
        for l in &self.logs {
            let _ = std::fs::remove_file(l);
        }
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// `openstack network create NAME` and an IPv4 subnet `NAME-v4` of `cidr`.
pub fn network(cli: &crate::netapi::Cli, name: &str, cidr: &str) -> anyhow::Result<()> {
    cli.json(&["network", "create", name])?;
    cli.json(&["subnet", "create", "--network", name, "--subnet-range", cidr, &format!("{name}-v4")])?;
    Ok(())
}

/// `openstack image create --file PATH --disk-format FORMAT --container-format bare NAME`; its id.
pub fn image_from_file(
    cli: &crate::netapi::Cli,
    name: &str,
    path: &std::path::Path,
    format: &str,
) -> anyhow::Result<String> {
    let path = path.to_string_lossy();
    let img =
        cli.json(&["image", "create", "--file", &path, "--disk-format", format, "--container-format", "bare", name])?;
    Ok(img["id"].as_str().unwrap_or_default().to_string())
}

/// Like [`image_from_file`] with the image's bytes (a raw image).
pub fn image_from_bytes(cli: &crate::netapi::Cli, name: &str, data: &[u8]) -> anyhow::Result<String> {
    let file = std::env::temp_dir().join(format!("tenet-image-{}-{}", std::process::id(), unique_prefix()));
    std::fs::write(&file, data)?;
    let id = image_from_file(cli, name, &file, "raw");
    let _ = std::fs::remove_file(&file);
    id
}

/// `openstack --os-compute-api-version 2.74 server create --image IMAGE --flavor FLAVOR
/// --network NET --wait NAME` with any `extra` options (e.g. `--host`, which needs 2.74);
/// the CLI's output (it may fail: ERROR servers).
pub fn server_create(
    cli: &crate::netapi::Cli,
    name: &str,
    image: &str,
    flavor: &str,
    net: &str,
    extra: &[&str],
) -> anyhow::Result<std::process::Output> {
    let mut args = vec!["--os-compute-api-version", "2.74", "server", "create", "--image", image, "--flavor", flavor];
    args.extend_from_slice(&["--network", net, "--wait"]);
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-f", "json", name]);
    cli.run(&args)
}

/// `openstack --os-compute-api-version 2.30 server migrate --live-migration [--host HOST]
/// EXTRA... SERVER` (EXTRA e.g. `--wait`, `--block-migration`, `--shared-migration`); the
/// CLI's output, whatever its exit status.
pub fn live_migrate(
    cli: &crate::netapi::Cli,
    server: &str,
    host: Option<&str>,
    extra: &[&str],
) -> anyhow::Result<std::process::Output> {
    let mut args = vec!["--os-compute-api-version", "2.30", "server", "migrate", "--live-migration"];
    if let Some(h) = host {
        args.extend(["--host", h]);
    }
    args.extend_from_slice(extra);
    args.push(server);
    cli.run(&args)
}

/// `openstack --os-compute-api-version 2.80 server migration list [ARGS]` as JSON rows.
pub fn migration_list(cli: &crate::netapi::Cli, args: &[&str]) -> anyhow::Result<Vec<Value>> {
    let mut all = vec!["--os-compute-api-version", "2.80", "server", "migration", "list"];
    all.extend_from_slice(args);
    Ok(cli.json(&all)?.as_array().cloned().unwrap_or_default())
}

/// The port's bindings (`GET /v2.0/ports/{id}/bindings` as the admin): each with `host`
/// and `status`. Not for use inside an async runtime.
pub fn port_bindings(netapi: &NetApi, port: &str) -> anyhow::Result<Vec<Value>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let token = netapi.admin_token().await?;
        let b = netapi
            .rest()
            .expect(StatusCode::OK, Method::GET, &format!("/v2.0/ports/{port}/bindings"), Some(&token), None)
            .await?;
        Ok(b["bindings"].as_array().cloned().unwrap_or_default())
    })
}

/// The OVS bridge an interface is a port of, if any.
pub fn bridge_of(interface: &str) -> Option<String> {
    let out = Command::new("ovs-vsctl").args(["port-to-br", interface]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Whether a network interface exists in the root namespace.
pub fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// A ping flood (`ping -i INTERVAL`) from a namespace, running until [`PingFlood::stop`]
/// (killed on drop).
pub struct PingFlood {
    child: Option<Child>,
    interval_ms: f64,
}

/// What a ping flood saw, by sequence number (echo replies still in flight when it was
/// stopped do not count as lost: the last second of requests is left out).
#[derive(Debug, Clone, PartialEq)]
pub struct PingStats {
    /// Requests judged (sent at least a second before the stop).
    pub sent: u64,
    /// Of those, answered (duplicates once).
    pub received: u64,
    /// Sequence numbers never answered.
    pub lost: Vec<u64>,
    /// The longest run of unanswered requests, as time (runs x interval).
    pub longest_gap_ms: f64,
    /// Duplicate answers (a migrating VM may get a request at both places).
    pub duplicates: u64,
}

impl PingFlood {
    /// Starts pinging `ip` from namespace `ns` every `interval` seconds (e.g. "0.01").
    pub fn start(ns: &str, ip: &str, interval: &str) -> anyhow::Result<PingFlood> {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "ping", "-n", "-i", interval, "-W", "1", ip])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting ping")?;
        let interval_ms = interval.parse::<f64>().unwrap_or(0.01) * 1000.0;
        Ok(PingFlood { child: Some(child), interval_ms })
    }

    /// Stops it (SIGINT) and counts, per sequence number, what came back.
    pub fn stop(mut self) -> anyhow::Result<PingStats> {
        let child = self.child.take().context("already stopped")?;
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        let out = child.wait_with_output().context("waiting for ping")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut answered: std::collections::BTreeSet<u64> = std::collections::BTreeSet::new();
        let mut duplicates = 0;
        for line in text.lines().filter(|l| l.contains("bytes from")) {
            let seq = line.split_whitespace().find_map(|w| w.strip_prefix("icmp_seq=")).and_then(|n| n.parse().ok());
            if let Some(seq) = seq {
                if !answered.insert(seq) || line.contains("(DUP!)") {
                    duplicates += 1;
                }
            }
        }
        let transmitted: u64 = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .and_then(|l| l.split(',').next())
            .and_then(|p| p.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("ping printed no summary: {text}{}", String::from_utf8_lossy(&out.stderr)))?;
        let judged = transmitted.saturating_sub((1000.0 / self.interval_ms).ceil() as u64);
        let lost: Vec<u64> = (1..=judged).filter(|s| !answered.contains(s)).collect();
        let mut longest = 0u64;
        let mut run = 0u64;
        let mut prev = 0u64;
        for &s in &lost {
            run = if s == prev + 1 { run + 1 } else { 1 };
            longest = longest.max(run);
            prev = s;
        }
        Ok(PingStats {
            sent: judged,
            received: judged - lost.len() as u64,
            lost,
            longest_gap_ms: longest as f64 * self.interval_ms,
            duplicates,
        })
    }
}

/// One TCP connection from a namespace to an echo service (the guest's port 81) carrying
/// a 64-byte message every 10 ms until [`EchoStream::stop`] (killed on drop).
pub struct EchoStream {
    child: Option<Child>,
}

/// What an echo stream saw.
#[derive(Debug, Clone, PartialEq)]
pub struct EchoStats {
    /// Bytes sent and echoed back.
    pub sent: u64,
    pub echoed: u64,
    /// The longest time without echoed bytes while some were outstanding.
    pub max_stall_ms: f64,
    /// TCP retransmissions on the connection (tcp_info): a lost segment is retransmitted.
    pub retransmits: u64,
    /// Empty when the connection stayed up.
    pub error: String,
}

const ECHO_CLIENT: &str = r#"
import json, select, signal, socket, struct, sys, time
ip, port = sys.argv[1], int(sys.argv[2])
stop = False
def on_int(*_):
    global stop
    stop = True
signal.signal(signal.SIGINT, on_int)
out = {"sent": 0, "echoed": 0, "max_stall_ms": 0.0, "retransmits": 0, "error": ""}
try:
    s = socket.create_connection((ip, port), timeout=5)
    s.setblocking(False)
    msg = b"x" * 63 + b"\n"
    last_echo = time.time()
    next_send = time.time()
    while not stop:
        now = time.time()
        if now >= next_send:
            s.sendall(msg)
            out["sent"] += len(msg)
            next_send = now + 0.01
        r, _, _ = select.select([s], [], [], 0.002)
        if r:
            d = s.recv(65536)
            if not d:
                out["error"] = "closed by the peer"
                break
            out["echoed"] += len(d)
            last_echo = time.time()
        if out["echoed"] < out["sent"]:
            out["max_stall_ms"] = max(out["max_stall_ms"], (time.time() - last_echo) * 1000)
        else:
            last_echo = time.time()
    deadline = time.time() + 5
    while out["echoed"] < out["sent"] and time.time() < deadline:
        r, _, _ = select.select([s], [], [], 0.1)
        if r:
            d = s.recv(65536)
            if not d:
                break
            out["echoed"] += len(d)
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    out["retransmits"] = struct.unpack_from("I", info, 100)[0]
    s.close()
except Exception as e:
    out["error"] = repr(e)
print(json.dumps(out))
"#;

impl EchoStream {
    /// Connects from namespace `ns` to `ip:port` and starts streaming.
    pub fn start(ns: &str, ip: &str, port: u16) -> anyhow::Result<EchoStream> {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", ECHO_CLIENT, ip, &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting the echo stream")?;
        Ok(EchoStream { child: Some(child) })
    }

    /// Stops sending, waits for the outstanding echoes (5 s at most) and reports.
    pub fn stop(mut self) -> anyhow::Result<EchoStats> {
        let child = self.child.take().context("already stopped")?;
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        let out = child.wait_with_output().context("waiting for the echo stream")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(text.trim())
            .with_context(|| format!("echo stream printed {text:?} {}", String::from_utf8_lossy(&out.stderr)))?;
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        Ok(EchoStats {
            sent: n("sent"),
            echoed: n("echoed"),
            max_stall_ms: v["max_stall_ms"].as_f64().unwrap_or(0.0),
            retransmits: n("retransmits"),
            error: v["error"].as_str().unwrap_or("no report").to_string(),
        })
    }
}

impl Drop for EchoStream {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PingFlood {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Another libvirt daemon on this machine (`labs/libvirtd-second.sh`: libvirtd and virtlogd
/// in a private mount namespace), the destination of libvirt migrations in a lab. Its
/// domains, daemons, QEMUs and directory go on drop, also when the test fails.
pub struct SecondLibvirtd {
    dir: PathBuf,
    /// `qemu+unix:///system?socket=...`.
    pub uri: String,
}

impl SecondLibvirtd {
    pub fn start() -> anyhow::Result<SecondLibvirtd> {
        let dir = PathBuf::from(format!("/tmp/tenet-lv-{}-{}", std::process::id(), unique_prefix()));
        let script = repo_root().join("labs/libvirtd-second.sh");
        let out = Command::new(&script).arg("start").arg(&dir).output().context("running labs/libvirtd-second.sh")?;
        // From here on Drop stops whatever started.
        let mut daemon = SecondLibvirtd { dir, uri: String::new() };
        if !out.status.success() {
            bail!("labs/libvirtd-second.sh start failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        daemon.uri = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_string();
        if !daemon.uri.starts_with("qemu+unix://") {
            bail!("labs/libvirtd-second.sh printed no URI: {}", String::from_utf8_lossy(&out.stdout));
        }
        Ok(daemon)
    }

    /// The names of the domains it runs (`virsh list --name`).
    pub fn domains(&self) -> Vec<String> {
        domains(&self.uri)
    }
}

impl Drop for SecondLibvirtd {
    fn drop(&mut self) {
        let script = repo_root().join("labs/libvirtd-second.sh");
        match Command::new(&script).arg("stop").arg(&self.dir).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!("labs/libvirtd-second.sh stop: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => eprintln!("labs/libvirtd-second.sh stop: {e}"),
        }
    }
}

/// The names of the running domains at libvirt `uri`.
pub fn domains(uri: &str) -> Vec<String> {
    Command::new("virsh")
        .args(["-q", "-c", uri, "list", "--name"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
        })
        .unwrap_or_default()
}
