//! The compute service end to end with the namespace driver: netapi, the tenant-mode
//! controller, `tenet-compute api` and two agents (two hosts: two OVS bridges linked by a
//! veth pair), all driven by the real `openstack` CLI: image create, server create --wait
//! (the scheduler spreads the two servers over the hosts), the VMs get their addresses
//! by DHCP from the controller and ping each other, pause/unpause and suspend/resume
//! change what ping sees, delete leaves no namespace, OVS port or netapi port behind.
//!
//! A second test live-migrates a namespace VM between the two hosts with
//! `openstack server migrate --live-migration --wait` (its port's binding, interface,
//! MAC and address follow; lost pings during the move are measured), back again, and a
//! migration that fails rolls back.
//!
//! Needs root and Open vSwitch (labs/setup-host.sh); fails, never skips, without them.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use serde_json::Value;
use tenet_tests::compute::{
    bridge_of, control_plane, image_from_bytes, link_exists, live_migrate, migration_list, network, ns_ip, pings,
    port_bindings, run, server_create, Hypervisors, PingFlood,
};
use tenet_tests::{require_root_and_ovs, wait_until, LAB_LOCK};

#[test]
fn servers_boot_on_two_hosts_get_dhcp_addresses_ping_pause_and_go() {
    require_root_and_ovs();
    let _guard = LAB_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = scenario() {
        panic!("{e:#}");
    }
}

fn scenario() -> anyhow::Result<()> {
    let (api, ctl, compute) = control_plane(&[])?;
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

/// The first IPv4 address of a server as `server show` lists it.
fn address(show: &Value, prefix: &str) -> Option<String> {
    let text = show["addresses"].to_string();
    text.split(|c: char| !(c.is_ascii_digit() || c == '.')).find(|w| w.starts_with(prefix)).map(str::to_string)
}

/// The MAC of `eth0` in a namespace VM.
fn ns_mac(id: &str) -> String {
    // `eth0` may be an alternative name after a migration (sysfs knows only the name).
    run("ip", &["-n", &format!("tvm-{id}"), "-o", "link", "show", "eth0"])
        .ok()
        .and_then(|l| l.split_whitespace().skip_while(|w| *w != "link/ether").nth(1).map(str::to_string))
        .unwrap_or_default()
}

#[test]
fn a_namespace_server_live_migrates_with_its_port_and_a_failed_migration_rolls_back() {
    require_root_and_ovs();
    let _guard = LAB_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = migration_scenario() {
        panic!("{e:#}");
    }
}

fn migration_scenario() -> anyhow::Result<()> {
    let (api, ctl, compute) = control_plane(&[])?;
    let hv = Hypervisors::start(&api, &ctl, &compute, 2, &["--ram-mb", "2048", "--vcpus", "4"])?;
    let cli = api.admin_cli()?;
    let (h1, h2) = (hv.host(0), hv.host(1));
    network(&cli, "mnet", "10.9.0.0/24")?;
    image_from_bytes(&cli, "tiny", &[7u8; 4096])?;
    let create = |name: &str, host: &str| -> anyhow::Result<String> {
        let out = server_create(&cli, name, "tiny", "m1.nano", "mnet", &["--host", host])?;
        ensure!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let s: Value = serde_json::from_slice(&out.stdout)?;
        let id = s["id"].as_str().context("server id")?.to_string();
        hv.track(&id);
        ensure!(s["status"] == "ACTIVE", "{name}: {s}");
        Ok(id)
    };
    let vm = create("vm", &h1)?;
    let pinger = create("pinger", &h2)?;
    let ip = address(&cli.json(&["server", "show", &vm])?, "10.9.0.").context("vm's address")?;
    for id in [&vm, &pinger] {
        ensure!(wait_until(Duration::from_secs(30), || ns_ip(id).is_some()), "{id} got no address by DHCP");
    }
    ensure!(wait_until(Duration::from_secs(10), || pings(&pinger, &ip, 1) == 1), "pinger cannot reach vm");
    let ports = cli.json(&["port", "list", "--device-id", &vm])?;
    let port = ports[0]["ID"].as_str().context("vm's port")?.to_string();
    let mac = ns_mac(&vm);
    let (tap, tmv) = (format!("tap{}", &port[..11]), format!("tmv{}", &port[..11]));
    ensure!(bridge_of(&tap).as_deref() == Some(hv.bridges[0].as_str()), "{tap} is not on {}", hv.bridges[0]);

    // Live migration to the other host while the pinger sends 100 pings a second.
    let flood = PingFlood::start(&format!("tvm-{pinger}"), &ip, "0.01")?;
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let out = live_migrate(&cli, &vm, Some(&h2), &["--wait"])?;
    let took = t.elapsed();
    std::thread::sleep(Duration::from_millis(1500));
    let stats = flood.stop()?;
    let (sent, received) = (stats.sent, stats.received);
    ensure!(out.status.success(), "migrate --wait: {}\n{}", String::from_utf8_lossy(&out.stderr), hv.logs());
    eprintln!(
        "namespace live migration (CLI --wait, {:.1} s): {} of {} pings at 100/s lost (seqs {:?}, longest gap {} ms, {} duplicates)",
        took.as_secs_f64(),
        sent - received,
        sent,
        stats.lost,
        stats.longest_gap_ms,
        stats.duplicates
    );
    // The controller delivers to both places while the port has two bindings: nothing is lost.
    ensure!(sent > 100 && sent == received, "pings lost during the migration: {stats:?}");

    let show = cli.json(&["server", "show", &vm])?;
    ensure!(show["status"] == "ACTIVE" && show["OS-EXT-SRV-ATTR:host"] == h2.as_str(), "after migration: {show}");
    ensure!(show["OS-EXT-STS:task_state"].is_null(), "task left: {show}");
    let p = cli.json(&["port", "show", &port])?;
    ensure!(p["binding_host_id"] == h2.as_str(), "the port is bound to {} (want {h2})", p["binding_host_id"]);
    let bindings = port_bindings(&api, &port)?;
    ensure!(
        bindings.len() == 1 && bindings[0]["host"] == h2.as_str() && bindings[0]["status"] == "ACTIVE",
        "bindings after migration: {bindings:?}"
    );
    ensure!(bridge_of(&tmv).as_deref() == Some(hv.bridges[1].as_str()), "{tmv} is not on {}", hv.bridges[1]);
    ensure!(bridge_of(&tap).is_none() && !link_exists(&tap), "{tap} is left at the source");
    ensure!(ns_mac(&vm) == mac, "the VM's MAC changed: {} -> {mac}", ns_mac(&vm));
    ensure!(ns_ip(&vm).as_deref() == Some(ip.as_str()), "the VM's address changed: {:?}", ns_ip(&vm));
    ensure!(pings(&pinger, &ip, 5) >= 4, "pinger cannot reach vm after the migration\n{}", ctl.log_tail());
    let list = migration_list(&cli, &["--server", &vm])?;
    ensure!(list.len() == 1 && list[0]["Status"] == "completed", "migrations: {list:?}");
    ensure!(list[0]["Source Compute"] == h1.as_str() && list[0]["Dest Compute"] == h2.as_str(), "{list:?}");

    // And back, the scheduler choosing the host: Nova's tap name again.
    let out = live_migrate(&cli, &vm, None, &["--wait"])?;
    ensure!(out.status.success(), "migrate back: {}\n{}", String::from_utf8_lossy(&out.stderr), hv.logs());
    let show = cli.json(&["server", "show", &vm])?;
    ensure!(show["OS-EXT-SRV-ATTR:host"] == h1.as_str(), "back on {h1}: {show}");
    ensure!(bridge_of(&tap).as_deref() == Some(hv.bridges[0].as_str()), "{tap} is not back on {}", hv.bridges[0]);
    ensure!(!link_exists(&tmv), "{tmv} is left");
    ensure!(wait_until(Duration::from_secs(5), || pings(&pinger, &ip, 1) == 1), "vm silent after moving back");

    // A migration that fails at the source (a name clash in the guest: the destination's
    // interface cannot move in) rolls back: ACTIVE at the source, pinging, with a fault,
    // the migration in error, no INACTIVE binding or destination interface left.
    let clash = format!("{tmv}g");
    let peer = format!("clash{}", &port[..8]);
    run(
        "ip",
        &["netns", "exec", &format!("tvm-{vm}"), "ip", "link", "add", &clash, "type", "veth", "peer", "name", &peer],
    )?;
    let out = live_migrate(&cli, &vm, Some(&h2), &["--wait"])?;
    ensure!(
        out.status.success(),
        "migrate --wait (the CLI waits for ACTIVE): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let show = cli.json(&["server", "show", &vm])?;
    ensure!(
        show["status"] == "ACTIVE" && show["OS-EXT-SRV-ATTR:host"] == h1.as_str(),
        "after a failed migration: {show}"
    );
    let fault = show["fault"]["message"].as_str().unwrap_or_default().to_string();
    ensure!(fault.starts_with(&format!("Live migration to {h2} failed: ")), "fault: {show}");
    ensure!(show["fault"]["code"] == 500, "fault: {show}");
    eprintln!("failed migration's fault: {fault}");
    let list = migration_list(&cli, &["--server", &vm, "--status", "error"])?;
    ensure!(list.len() == 1, "the failed migration: {list:?}");
    let bindings = port_bindings(&api, &port)?;
    ensure!(
        bindings.len() == 1 && bindings[0]["host"] == h1.as_str() && bindings[0]["status"] == "ACTIVE",
        "bindings after the failed migration: {bindings:?}"
    );
    ensure!(bridge_of(&tmv).is_none() && !link_exists(&tmv), "the destination's {tmv} is left");
    ensure!(bridge_of(&tap).as_deref() == Some(hv.bridges[0].as_str()), "{tap} left {}", hv.bridges[0]);
    ensure!(pings(&pinger, &ip, 5) >= 4, "vm silent after the failed migration");
    run("ip", &["netns", "exec", &format!("tvm-{vm}"), "ip", "link", "del", &clash])?;

    for id in [&vm, &pinger] {
        cli.ok(&["server", "delete", "--wait", id])?;
    }
    let netns = run("ip", &["netns", "list"])?;
    for id in [&vm, &pinger] {
        ensure!(!netns.contains(id.as_str()), "namespace of {id} left behind");
        let ports = run("ovs-vsctl", &["--columns=name", "find", "interface", &format!("external_ids:vm-id={id}")])?;
        ensure!(ports.trim().is_empty(), "OVS ports of {id} left behind: {ports}");
        let left = cli.json(&["port", "list", "--device-id", id])?;
        ensure!(left.as_array().is_some_and(|a| a.is_empty()), "netapi ports of {id} left behind: {left}");
    }
    Ok(())
}

/// `labs/bench-migration.sh ns` (or this test with `--ignored`): ten namespace VMs on host 1
/// live-migrate to host 2 at once (ten os-migrateLive requests sent together), each pinged
/// 50 times a second from a VM on host 2. Prints per-VM losses, the time until all ten
/// are ACTIVE on host 2, and the controller's apply times, then a JSON line.
#[test]
#[ignore]
fn ten_namespace_vms_migrate_at_once() {
    require_root_and_ovs();
    let _guard = LAB_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = ten_at_once() {
        panic!("{e:#}");
    }
}

fn ten_at_once() -> anyhow::Result<()> {
    use tenet_netapi::client::{Method, Rest};
    let (api, ctl, compute) = control_plane(&["--max-instances-per-project", "20"])?;
    let hv = Hypervisors::start(&api, &ctl, &compute, 2, &["--ram-mb", "8192", "--vcpus", "16"])?;
    let cli = api.admin_cli()?;
    let (h1, h2) = (hv.host(0), hv.host(1));
    network(&cli, "tnet", "10.11.0.0/24")?;
    image_from_bytes(&cli, "tiny", &[7u8; 4096])?;
    let create = |name: &str, host: &str| -> anyhow::Result<String> {
        let out = server_create(&cli, name, "tiny", "m1.nano", "tnet", &["--host", host])?;
        ensure!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let s: Value = serde_json::from_slice(&out.stdout)?;
        let id = s["id"].as_str().context("server id")?.to_string();
        hv.track(&id);
        Ok(id)
    };
    let pinger = create("pinger", &h2)?;
    let vms: Vec<String> = (0..10).map(|i| create(&format!("vm{i}"), &h1)).collect::<anyhow::Result<_>>()?;
    let mut ips = Vec::new();
    for id in vms.iter().chain([&pinger]) {
        let mut ip = None;
        ensure!(
            wait_until(Duration::from_secs(60), || {
                ip = ns_ip(id);
                ip.is_some()
            }),
            "{id}: no DHCP address"
        );
        ips.push(ip.unwrap_or_default());
    }
    for ip in &ips[..10] {
        ensure!(wait_until(Duration::from_secs(10), || pings(&pinger, ip, 1) == 1), "pinger cannot reach {ip}");
    }
    let revision = ctl.status()?["revision"].as_i64().unwrap_or(0);
    let floods: Vec<PingFlood> = ips[..10]
        .iter()
        .map(|ip| PingFlood::start(&format!("tvm-{pinger}"), ip, "0.02"))
        .collect::<anyhow::Result<_>>()?;
    std::thread::sleep(Duration::from_millis(500));
    let rt = tokio::runtime::Runtime::new()?;
    let t = Instant::now();
    let took = rt.block_on(async {
        let token = api.admin_token().await?;
        let rest = Rest::new(&compute.url);
        let headers = [("x-auth-token", token.as_str()), ("openstack-api-version", "compute 2.30")];
        let body = serde_json::json!({"os-migrateLive": {"host": h2, "block_migration": "auto"}});
        let sends = vms.iter().map(|id| {
            let (rest, path, body) = (&rest, format!("/compute/v2.1/servers/{id}/action"), &body);
            async move { rest.call_with_headers(Method::POST, &path, &headers, Some(body)).await }
        });
        for r in futures_util::future::join_all(sends).await {
            let a = r.map_err(|e| anyhow::anyhow!("os-migrateLive: {e}"))?;
            ensure!(a.status.as_u16() == 202, "os-migrateLive: {} {}", a.status, a.body);
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let mut done = 0;
            for id in &vms {
                let a = rest
                    .call_with_headers(Method::GET, &format!("/compute/v2.1/servers/{id}"), &headers, None)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let s = &a.body["server"];
                if s["status"] == "ACTIVE" && s["OS-EXT-SRV-ATTR:host"] == h2.as_str() {
                    done += 1;
                }
            }
            if done == vms.len() {
                return anyhow::Ok(t.elapsed());
            }
            ensure!(Instant::now() < deadline, "only {done} of 10 migrated:\n{}", hv.logs());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })?;
    std::thread::sleep(Duration::from_millis(1500));
    let mut lost = Vec::new();
    let mut gaps = Vec::new();
    for f in floods {
        let s = f.stop()?;
        lost.push(s.sent - s.received);
        gaps.push(s.longest_gap_ms);
    }
    let applies: Vec<f64> = ctl.status()?["recent_applies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["revision"].as_i64().unwrap_or(0) > revision)
        .filter_map(|a| a["ms"].as_f64())
        .collect();
    println!(
        "ten at once: all ACTIVE on {h2} after {:.2} s; lost pings per VM {lost:?}; longest gaps {gaps:?} ms; controller applies {} batches, max {:.1} ms",
        took.as_secs_f64(),
        applies.len(),
        applies.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "ten-bench: {}",
        serde_json::json!({"seconds": took.as_secs_f64(), "lost": lost, "longest_gap_ms": gaps, "applies_ms": applies})
    );
    Ok(())
}
