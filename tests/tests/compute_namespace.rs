//! The compute service end to end with the namespace driver: netapi, the tenant-mode
//! controller, `tenet-compute api` and two agents (two hosts: two OVS bridges linked by a
//! veth pair), all driven by the real `openstack` CLI: image create, server create --wait
//! (the scheduler spreads the two servers over the hosts), the VMs get their addresses
//! by DHCP from the controller and ping each other, pause/unpause and suspend/resume
//! change what ping sees, delete leaves no namespace, OVS port or netapi port behind.
//!
//! Needs root and Open vSwitch (labs/setup-host.sh); fails, never skips, without them.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context};
use serde_json::Value;
use tenet_tests::compute::ComputeApi;
use tenet_tests::netapi::NetApi;
use tenet_tests::tenant::TenantController;
use tenet_tests::{free_addr, require_root_and_ovs, unique_prefix, wait_until, workspace_binary, LAB_LOCK};

/// Two bridges linked by a veth pair, removed on drop.
struct Hosts {
    bridges: Vec<String>,
    link: String,
}

impl Hosts {
    fn create(prefix: &str, controller: &str) -> anyhow::Result<Hosts> {
        let bridges = vec![format!("{prefix}b1"), format!("{prefix}b2")];
        let link = format!("{prefix}l");
        let hosts = Hosts { bridges: bridges.clone(), link: link.clone() };
        for (i, b) in bridges.iter().enumerate() {
            sh(
                "ovs-vsctl",
                &[
                    "add-br",
                    b,
                    "--",
                    "set",
                    "bridge",
                    b,
                    "datapath_type=netdev",
                    "fail_mode=secure",
                    "protocols=OpenFlow13",
                    &format!("other-config:datapath-id={:016x}", 0xc0_0000 + i as u64 + 1),
                ],
            )?;
            sh("ovs-vsctl", &["set-controller", b, &format!("tcp:{controller}")])?;
        }
        let peer = format!("{link}p");
        sh("ip", &["link", "add", &link, "type", "veth", "peer", "name", &peer])?;
        for (dev, b) in [(&link, &bridges[0]), (&peer, &bridges[1])] {
            sh("ip", &["link", "set", dev, "up"])?;
            let _ = sh("ethtool", &["-K", dev, "tx", "off"]);
            sh("ovs-vsctl", &["add-port", b, dev])?;
        }
        Ok(hosts)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for b in &self.bridges {
            let _ = Command::new("ovs-vsctl").args(["--if-exists", "del-br", b]).status();
        }
        let _ = Command::new("ip").args(["link", "del", &self.link]).status();
    }
}

/// Agents as processes, killed on drop (with the namespaces of servers they made, so a
/// failed test leaves nothing behind).
struct Agents(Vec<Child>, Vec<String>, Vec<std::path::PathBuf>);

impl Drop for Agents {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
        for (i, log) in self.2.iter().enumerate() {
            if std::thread::panicking() {
                eprintln!("--- agent {i} log ---\n{}", std::fs::read_to_string(log).unwrap_or_default());
            }
            let _ = std::fs::remove_file(log);
        }
        for id in &self.1 {
            let ns = format!("tvm-{id}");
            if std::path::Path::new("/run/netns").join(&ns).exists() {
                let _ = Command::new("ip").args(["netns", "del", &ns]).status();
            }
        }
    }
}

fn sh(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(cmd).args(args).output().with_context(|| format!("running {cmd}"))?;
    ensure!(out.status.success(), "{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ns_ip(id: &str) -> Option<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", &format!("tvm-{id}"), "ip", "-4", "-o", "addr", "show", "dev", "eth0"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().skip_while(|w| *w != "inet").nth(1).map(|a| a.split('/').next().unwrap_or("").to_string())
}

fn pings(from: &str, ip: &str, count: u32) -> u32 {
    let out = Command::new("ip")
        .args(["netns", "exec", &format!("tvm-{from}"), "ping", "-c", &count.to_string(), "-i", "0.1", "-W", "1", ip])
        .output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    text.split(',').find_map(|p| p.trim().strip_suffix(" received").and_then(|n| n.trim().parse().ok())).unwrap_or(0)
}

#[test]
fn servers_boot_on_two_hosts_get_dhcp_addresses_ping_pause_and_go() {
    require_root_and_ovs();
    let _guard = LAB_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = scenario() {
        panic!("{e:#}");
    }
}

fn scenario() -> anyhow::Result<()> {
    let compute_addr = free_addr()?;
    let api = NetApi::start_with_catalog(
        &format!("http://{compute_addr}/compute/v2.1"),
        &format!("http://{compute_addr}/image"),
    )?;
    let ctl = TenantController::start(&api, &[])?;
    let compute = ComputeApi::start_on(&api, &compute_addr)?;
    let prefix = unique_prefix();
    let hosts = Hosts::create(&prefix, &ctl.of_addr)?;
    let bin = workspace_binary("tenet-compute", "tenet-compute")?;
    let state = std::env::temp_dir().join(format!("tenet-agents-{prefix}"));
    let mut agents = Agents(Vec::new(), Vec::new(), Vec::new());
    for (i, b) in hosts.bridges.iter().enumerate() {
        let child = Command::new(&bin)
            .args(["agent", "--host", &format!("{prefix}-host{}", i + 1), "--bridge", b, "--api", &compute.url])
            .args(["--netapi", &api.url, "--netapi-grpc", &api.grpc_url, "--ram-mb", "2048", "--vcpus", "4"])
            .arg("--state-dir")
            .arg(&state)
            .envs(api.admin_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(std::env::temp_dir().join(format!("{prefix}-agent{i}.log")))?)
            .spawn()
            .context("starting an agent")?;
        agents.0.push(child);
        agents.2.push(std::env::temp_dir().join(format!("{prefix}-agent{i}.log")));
    }
    let cli = api.admin_cli()?;
    ensure!(
        wait_until(Duration::from_secs(20), || compute.hosts().map(|h| h.len() >= 2).unwrap_or(false)),
        "the two agents did not report"
    );

    cli.json(&["network", "create", "net1"])?;
    cli.json(&["subnet", "create", "--network", "net1", "--subnet-range", "10.7.0.0/24", "sub1"])?;
    let image = std::env::temp_dir().join(format!("{prefix}.img"));
    std::fs::write(&image, vec![7u8; 4096])?;
    cli.json(&[
        "image",
        "create",
        "--file",
        &image.to_string_lossy(),
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "tiny",
    ])?;
    let _ = std::fs::remove_file(&image);

    let mut servers = Vec::new();
    for name in ["vm1", "vm2"] {
        let s = cli.json(&[
            "server",
            "create",
            "--image",
            "tiny",
            "--flavor",
            "m1.nano",
            "--network",
            "net1",
            "--wait",
            name,
        ])?;
        ensure!(s["status"] == "ACTIVE", "{name}: {s}");
        let id = s["id"].as_str().context("server id")?.to_string();
        agents.1.push(id.clone());
        servers.push(s);
    }
    let host = |s: &Value| s["OS-EXT-SRV-ATTR:host"].as_str().unwrap_or_default().to_string();
    ensure!(
        host(&servers[0]) != host(&servers[1]),
        "the scheduler should spread: {} and {}",
        host(&servers[0]),
        host(&servers[1])
    );
    let ids: Vec<String> = agents.1.clone();

    // Each VM takes its netapi address by DHCP from the controller.
    let mut ips = Vec::new();
    for id in &ids {
        let want = cli.json(&["server", "show", id])?;
        let addr = want["addresses"].to_string();
        let mut got = None;
        ensure!(
            wait_until(Duration::from_secs(30), || {
                got = ns_ip(id);
                got.is_some()
            }),
            "server {id} got no address by DHCP (addresses {addr})\n{}",
            ctl.log_tail()
        );
        let got = got.unwrap_or_default();
        ensure!(addr.contains(&got), "server {id} has {got} by DHCP, the API says {addr}");
        ips.push(got);
    }
    ensure!(pings(&ids[0], &ips[1], 3) >= 2, "vm1 cannot ping vm2 across the hosts");

    for (act, undo) in [("pause", "unpause"), ("suspend", "resume")] {
        cli.ok(&["server", act, &ids[1]])?;
        let status = if act == "pause" { "PAUSED" } else { "SUSPENDED" };
        ensure!(
            wait_until(Duration::from_secs(20), || cli
                .json(&["server", "show", &ids[1]])
                .map(|s| s["status"] == status)
                .unwrap_or(false)),
            "vm2 not {status}"
        );
        ensure!(pings(&ids[0], &ips[1], 3) == 0, "vm2 answers while {status}");
        cli.ok(&["server", undo, &ids[1]])?;
        ensure!(
            wait_until(Duration::from_secs(20), || cli
                .json(&["server", "show", &ids[1]])
                .map(|s| s["status"] == "ACTIVE")
                .unwrap_or(false)),
            "vm2 not ACTIVE after {undo}"
        );
        ensure!(wait_until(Duration::from_secs(10), || pings(&ids[0], &ips[1], 1) == 1), "vm2 silent after {undo}");
    }

    for id in &ids {
        cli.ok(&["server", "delete", "--wait", id])?;
    }
    let netns = sh("ip", &["netns", "list"])?;
    for id in &ids {
        ensure!(!netns.contains(id.as_str()), "namespace of {id} left behind");
        let ports = sh("ovs-vsctl", &["--columns=name", "find", "interface", &format!("external_ids:vm-id={id}")])?;
        ensure!(ports.trim().is_empty(), "OVS ports of {id} left behind: {ports}");
        let left = cli.json(&["port", "list", "--device-id", id])?;
        ensure!(left.as_array().is_some_and(|a| a.is_empty()), "netapi ports of {id} left behind: {left}");
    }
    let _ = std::fs::remove_dir_all(&state);
    drop(hosts);
    Ok(())
}
