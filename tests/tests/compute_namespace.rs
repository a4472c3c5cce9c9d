//! The compute service end to end with the namespace driver: netapi, the tenant-mode
//! controller, `tenet-compute api` and two agents (two hosts: two OVS bridges linked by a
//! veth pair), all driven by the real `openstack` CLI: image create, server create --wait
//! (the scheduler spreads the two servers over the hosts), the VMs get their addresses
//! by DHCP from the controller and ping each other, pause/unpause and suspend/resume
//! change what ping sees, delete leaves no namespace, OVS port or netapi port behind.
//!
//! Needs root and Open vSwitch (labs/setup-host.sh); fails, never skips, without them.

use std::time::Duration;

use anyhow::{ensure, Context};
use serde_json::Value;
use tenet_tests::compute::{image_from_bytes, network, ns_ip, pings, run, server_create, ComputeApi, Hypervisors};
use tenet_tests::netapi::NetApi;
use tenet_tests::tenant::TenantController;
use tenet_tests::{free_addr, require_root_and_ovs, wait_until, LAB_LOCK};

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
    let hv = Hypervisors::start(&api, &ctl, &compute, 2, &["--ram-mb", "2048", "--vcpus", "4"])?;
    let cli = api.admin_cli()?;
    ensure!(
        wait_until(Duration::from_secs(20), || compute.hosts().map(|h| h.len() >= 2).unwrap_or(false)),
        "the two agents did not report"
    );

    network(&cli, "net1", "10.7.0.0/24")?;
    image_from_bytes(&cli, "tiny", &[7u8; 4096])?;

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
        hv.track(&id);
        servers.push(s);
    }
    let host = |s: &Value| s["OS-EXT-SRV-ATTR:host"].as_str().unwrap_or_default().to_string();
    ensure!(
        host(&servers[0]) != host(&servers[1]),
        "the scheduler should spread: {} and {}",
        host(&servers[0]),
        host(&servers[1])
    );
    let ids: Vec<String> = hv.tracked();

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

    // A server whose port cannot be registered (its subnet has no address left) goes to
    // ERROR with the reason, and nothing of it stays on the host.
    network(&cli, "tiny", "10.8.0.0/30")?;
    let first = server_create(&cli, "fits", "tiny", "m1.nano", "tiny", &[])?;
    ensure!(first.status.success(), "the first server fits: {}", String::from_utf8_lossy(&first.stderr));
    let first: Value = serde_json::from_slice(&first.stdout)?;
    let first_id = first["id"].as_str().context("id")?.to_string();
    hv.track(&first_id);
    let out = server_create(&cli, "full", "tiny", "m1.nano", "tiny", &[])?;
    let full = cli.json(&["server", "show", "full"])?;
    let full_id = full["id"].as_str().context("id")?.to_string();
    hv.track(&full_id);
    ensure!(full["status"] == "ERROR", "a server without an address should be ERROR: {full}\n{out:?}");
    let fault = full["fault"].to_string();
    ensure!(fault.contains("registering port"), "the fault should say why: {fault}");
    ensure!(!run("ip", &["netns", "list"])?.contains(&full_id), "the failed server's namespace is left");
    let left = run("ovs-vsctl", &["--columns=name", "find", "interface", &format!("external_ids:vm-id={full_id}")])?;
    ensure!(left.trim().is_empty(), "the failed server's OVS port is left: {left}");
    cli.ok(&["server", "delete", "--wait", "full"])?;
    cli.ok(&["server", "delete", "--wait", "fits"])?;

    for id in &ids {
        cli.ok(&["server", "delete", "--wait", id])?;
    }
    let netns = run("ip", &["netns", "list"])?;
    for id in &ids {
        ensure!(!netns.contains(id.as_str()), "namespace of {id} left behind");
        let ports = run("ovs-vsctl", &["--columns=name", "find", "interface", &format!("external_ids:vm-id={id}")])?;
        ensure!(ports.trim().is_empty(), "OVS ports of {id} left behind: {ports}");
        let left = cli.json(&["port", "list", "--device-id", id])?;
        ensure!(left.as_array().is_some_and(|a| a.is_empty()), "netapi ports of {id} left behind: {left}");
    }
    Ok(())
}
