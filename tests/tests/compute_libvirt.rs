//! A real VM through the openstack CLI: a QEMU/TCG guest (labs/guest: Debian kernel +
//! busybox initramfs) on a libvirt host, beside a namespace-driver VM on another host of
//! the same tenant network. The guest boots from the uploaded qcow2 image, takes its
//! address by DHCP from the controller, answers ping and its TCP responder from the other
//! VM; pause/unpause and suspend (managed save)/resume change what ping sees; delete
//! leaves no domain, OVS port or netapi port.
//!
//! Two more tests live-migrate such a guest from the system libvirtd to a second libvirtd
//! on the same machine (labs/libvirtd-second.sh): on shared storage and by block
//! migration; the server moves host, the domain runs at the destination only, the guest
//! answers ping afterwards; pings lost during the move are measured.
//!
//! Needs root, Open vSwitch and libvirtd (labs/setup-host.sh); fails, never skips, without them.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use tenet_tests::compute::{
    bridge_of, control_plane, domains, image_from_bytes, image_from_file, link_exists, live_migrate, migration_list,
    network, ns_ip, pings, port_bindings, run, server_create, EchoStream, Hypervisors, PingFlood, SecondLibvirtd,
};
use tenet_tests::{repo_root, require_root_and_ovs, wait_until, LAB_LOCK};

fn require_libvirt() {
    let ok = Command::new("virsh").args(["-c", "qemu:///system", "version"]).output().is_ok_and(|o| o.status.success());
    assert!(ok, "this test needs libvirtd answering on qemu:///system: run labs/setup-host.sh first");
}

#[test]
fn a_tcg_guest_boots_through_the_cli_gets_dhcp_and_answers_the_tenants_other_vm() {
    require_root_and_ovs();
    require_libvirt();
    let _guard = LAB_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = scenario() {
        panic!("{e:#}");
    }
}

fn scenario() -> anyhow::Result<()> {
    let guest = repo_root().join("target/guest");
    let built = Command::new(repo_root().join("labs/guest/build-image.sh"))
        .arg(&guest)
        .output()
        .context("building the guest")?;
    ensure!(built.status.success(), "labs/guest/build-image.sh failed: {}", String::from_utf8_lossy(&built.stderr));
    let path = |f: &str| guest.join(f).to_string_lossy().into_owned();

    let (api, ctl, compute) = control_plane(&[])?;
    let ns_host: Vec<String> = vec!["--ram-mb".into(), "4096".into()];
    let kvm_host: Vec<String> = [
        "--driver",
        "libvirt",
        "--ram-mb",
        "4096",
        "--guest-kernel",
        &path("vmlinuz"),
        "--guest-initrd",
        &path("initrd.img"),
        "--guest-disk",
        &path("disk.qcow2"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let hv = Hypervisors::start_each(&api, &ctl, &compute, &[ns_host, kvm_host])?;
    let cli = api.admin_cli()?;

    network(&cli, "net1", "10.6.0.0/24")?;
    image_from_bytes(&cli, "tiny", &[0u8; 4096])?;
    image_from_file(&cli, "guest", &guest.join("disk.qcow2"), "qcow2")?;

    let create = |name: &str, image: &str, host: &str| -> anyhow::Result<String> {
        let out = server_create(&cli, name, image, "m1.tiny", "net1", &["--host", host])?;
        ensure!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let s: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        ensure!(s["status"] == "ACTIVE", "{name}: {s}");
        let id = s["id"].as_str().context("server id")?.to_string();
        hv.track(&id);
        Ok(id)
    };
    let pinger = create("pinger", "tiny", &hv.host(0))?;
    let t = Instant::now();
    let vm = create("vm", "guest", &hv.host(1))?;
    let show = cli.json(&["server", "show", &vm])?;
    ensure!(show["OS-EXT-SRV-ATTR:host"] == hv.host(1).as_str(), "placed on the libvirt host: {show}");
    let ip = show["addresses"]
        .to_string()
        .split('\'')
        .chain(show["addresses"].to_string().split('"'))
        .find(|w| w.starts_with("10.6.0."))
        .context("the guest's address")?
        .to_string();
    ensure!(wait_until(Duration::from_secs(30), || ns_ip(&pinger).is_some()), "the namespace VM got no address");
    // The guest boots under TCG, asks DHCP and answers ping.
    let answered = wait_until(Duration::from_secs(120), || pings(&pinger, &ip, 1) == 1);
    let console = std::fs::read_to_string(hv.state_file(1, &format!("tenet-{vm}.console.log"))).unwrap_or_default();
    ensure!(answered, "the guest at {ip} never answered ping; its console:\n{console}\n{}", ctl.log_tail());
    eprintln!("server create to first ping of a TCG guest: {:.1} s", t.elapsed().as_secs_f64());
    // libvirt's OVS port names the netapi port as Nova's does (iface-id).
    let ports = cli.json(&["port", "list", "--device-id", &vm])?;
    let port_id = ports[0]["ID"].as_str().context("the guest's port")?.to_string();
    let tap = format!("tap{}", &port_id[..11]);
    let iface_id = run("ovs-vsctl", &["get", "interface", &tap, "external_ids:iface-id"])?;
    ensure!(iface_id.trim().trim_matches('"') == port_id, "iface-id of {tap} is {iface_id}, not {port_id}");
    let reply =
        run("ip", &["netns", "exec", &format!("tvm-{pinger}"), "sh", "-c", &format!("echo | nc -w 3 {ip} 80")])?;
    ensure!(reply.contains("tenet-guest"), "the guest's TCP responder said {reply:?}");

    for (act, undo, status) in [("pause", "unpause", "PAUSED"), ("suspend", "resume", "SUSPENDED")] {
        cli.ok(&["server", act, &vm])?;
        ensure!(
            wait_until(Duration::from_secs(60), || cli
                .json(&["server", "show", &vm])
                .map(|s| s["status"] == status)
                .unwrap_or(false)),
            "vm not {status}"
        );
        ensure!(pings(&pinger, &ip, 3) == 0, "the guest answers while {status}");
        cli.ok(&["server", undo, &vm])?;
        ensure!(
            wait_until(Duration::from_secs(60), || cli
                .json(&["server", "show", &vm])
                .map(|s| s["status"] == "ACTIVE")
                .unwrap_or(false)),
            "vm not ACTIVE after {undo}"
        );
        ensure!(
            wait_until(Duration::from_secs(60), || pings(&pinger, &ip, 1) == 1),
            "the guest is silent after {undo}"
        );
    }

    for id in [&vm, &pinger] {
        cli.ok(&["server", "delete", "--wait", id])?;
    }
    let domains = run("virsh", &["-c", "qemu:///system", "list", "--all", "--name"])?;
    ensure!(!domains.contains(&vm), "the domain is left: {domains}");
    let links = run("ip", &["-o", "link", "show"])?;
    ensure!(!links.contains(&tap), "the guest's tap {tap} is left");
    for id in [&vm, &pinger] {
        let ports = run("ovs-vsctl", &["--columns=name", "find", "interface", &format!("external_ids:vm-id={id}")])?;
        ensure!(ports.trim().is_empty(), "OVS ports of {id} left: {ports}");
        let left = cli.json(&["port", "list", "--device-id", id])?;
        ensure!(left.as_array().is_some_and(|a| a.is_empty()), "netapi ports of {id} left: {left}");
    }
    Ok(())
}

#[test]
fn a_tcg_guest_live_migrates_between_two_libvirt_daemons_on_shared_storage() {
    require_root_and_ovs();
    require_libvirt();
    let _guard = LAB_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = migration_scenario(true, Network::Tenet) {
        panic!("{e:#}");
    }
}

#[test]
fn a_tcg_guest_block_migrates_between_two_libvirt_daemons() {
    require_root_and_ovs();
    require_libvirt();
    let _guard = LAB_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = migration_scenario(false, Network::Tenet) {
        panic!("{e:#}");
    }
}

/// A namespace VM (the pinger) on host 0 and a TCG guest on host 1 (the system libvirtd);
/// the guest live-migrates to host 2 (a second libvirtd, labs/libvirtd-second.sh) while
/// the pinger pings it 100 times a second: with `shared` both libvirt hosts report the
/// same shared storage (the disk stays in place, `--unsafe`), else it is a block
/// migration (the disk is copied into one the destination created).
/// With `Network::Learning` (the benchmark's baseline) the bridges are turned into plain
/// MAC-learning switches (no controller, fail mode standalone, NORMAL) once the VMs have
/// their addresses, and losses are reported, not judged.
fn migration_scenario(shared: bool, network_kind: Network) -> anyhow::Result<Measured> {
    let kind = if shared { "shared-storage live migration" } else { "block migration" };
    let guest = repo_root().join("target/guest");
    let built = Command::new(repo_root().join("labs/guest/build-image.sh"))
        .arg(&guest)
        .output()
        .context("building the guest")?;
    ensure!(built.status.success(), "labs/guest/build-image.sh failed: {}", String::from_utf8_lossy(&built.stderr));
    let path = |f: &str| guest.join(f).to_string_lossy().into_owned();

    let (api, ctl, compute) = control_plane(&[])?;
    // Declared before the hosts: dropped after their agents stop.
    let second = SecondLibvirtd::start()?;
    let libvirt_host = |uri: &str| -> Vec<String> {
        let mut a: Vec<String> = [
            "--driver",
            "libvirt",
            "--libvirt-uri",
            uri,
            "--ram-mb",
            "4096",
            "--guest-kernel",
            &path("vmlinuz"),
            "--guest-initrd",
            &path("initrd.img"),
            "--guest-disk",
            &path("disk.qcow2"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if shared {
            a.extend(["--shared-storage".to_string(), "labdisk".to_string()]);
        }
        a
    };
    let ns_host: Vec<String> = vec!["--ram-mb".into(), "4096".into()];
    let hv = Hypervisors::start_each(
        &api,
        &ctl,
        &compute,
        &[ns_host, libvirt_host("qemu:///system"), libvirt_host(&second.uri)],
    )?;
    let cli = api.admin_cli()?;
    network(&cli, "lnet", "10.4.0.0/24")?;
    image_from_bytes(&cli, "tiny", &[0u8; 4096])?;
    image_from_file(&cli, "guest", &guest.join("disk.qcow2"), "qcow2")?;
    let create = |name: &str, image: &str, host: &str| -> anyhow::Result<String> {
        let out = server_create(&cli, name, image, "m1.tiny", "lnet", &["--host", host])?;
        ensure!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let s: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let id = s["id"].as_str().context("server id")?.to_string();
        hv.track(&id);
        ensure!(s["status"] == "ACTIVE", "{name}: {s}");
        Ok(id)
    };
    let pinger = create("pinger", "tiny", &hv.host(0))?;
    let vm = create("vm", "guest", &hv.host(1))?;
    let show = cli.json(&["server", "show", &vm])?;
    let ip = show["addresses"]
        .to_string()
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|w| w.starts_with("10.4.0."))
        .context("the guest's address")?
        .to_string();
    ensure!(wait_until(Duration::from_secs(30), || ns_ip(&pinger).is_some()), "the namespace VM got no address");
    let console = |host: usize| {
        std::fs::read_to_string(hv.state_file(host, &format!("tenet-{vm}.console.log"))).unwrap_or_default()
    };
    ensure!(
        wait_until(Duration::from_secs(120), || pings(&pinger, &ip, 1) == 1),
        "the guest at {ip} never answered ping; its console:\n{}",
        console(1)
    );
    let dom = format!("tenet-{vm}");
    ensure!(domains("qemu:///system").contains(&dom), "{dom} does not run on the system libvirtd");
    let port = cli.json(&["port", "list", "--device-id", &vm])?[0]["ID"].as_str().context("port")?.to_string();
    let tmv = format!("tmv{}", &port[..11]);
    let source_disk = hv.state_file(1, &format!("tenet-{vm}.qcow2"));
    ensure!(source_disk.exists(), "no overlay at {}", source_disk.display());

    if network_kind == Network::Learning {
        for b in &hv.bridges {
            run("ovs-vsctl", &["del-controller", b, "--", "set-fail-mode", b, "standalone"])?;
            run("ovs-ofctl", &["-O", "OpenFlow13", "del-flows", b])?;
            run("ovs-ofctl", &["-O", "OpenFlow13", "add-flow", b, "priority=0,actions=NORMAL"])?;
        }
        ensure!(wait_until(Duration::from_secs(10), || pings(&pinger, &ip, 1) == 1), "learning switches: no ping");
    }
    let revision = ctl.status()?["revision"].as_i64().unwrap_or(0);
    let flood = PingFlood::start(&format!("tvm-{pinger}"), &ip, "0.01")?;
    let stream = EchoStream::start(&format!("tvm-{pinger}"), &ip, 81)?;
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let flag = if shared { "--shared-migration" } else { "--block-migration" };
    let out = live_migrate(&cli, &vm, Some(&hv.host(2)), &[flag, "--wait"])?;
    let took = t.elapsed();
    std::thread::sleep(Duration::from_millis(1500));
    let stats = flood.stop()?;
    let tcp = stream.stop()?;
    let (sent, received) = (stats.sent, stats.received);
    ensure!(out.status.success(), "migrate: {}\n{}", String::from_utf8_lossy(&out.stderr), hv.logs());
    eprintln!(
        "libvirt {kind} (CLI --wait, {:.1} s): {} of {} pings at 100/s lost (seqs {:?}, longest gap {} ms, {} duplicates)",
        took.as_secs_f64(),
        sent - received,
        sent,
        stats.lost,
        stats.longest_gap_ms,
        stats.duplicates
    );
    eprintln!("libvirt {kind}: TCP stream {tcp:?}");
    let applies: Vec<f64> = ctl.status()?["recent_applies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["revision"].as_i64().unwrap_or(0) > revision)
        .filter_map(|a| a["ms"].as_f64())
        .collect();
    let measured = Measured { pings: stats.clone(), tcp: tcp.clone(), took_s: took.as_secs_f64(), applies_ms: applies };
    if network_kind == Network::Learning {
        return Ok(measured);
    }
    // The controller delivers to both places while the port has two bindings, and the
    // destination's tap queues what arrives while the guest is paused: nothing is lost.
    ensure!(sent > 100 && sent == received, "pings lost during the {kind}: {stats:?}");
    ensure!(
        tcp.error.is_empty() && tcp.sent > 10_000 && tcp.echoed == tcp.sent,
        "the TCP stream through the {kind} must go on and get everything back: {tcp:?}"
    );
    ensure!(tcp.retransmits == 0, "no TCP segment may be lost (retransmitted) in the {kind}: {tcp:?}");

    let show = cli.json(&["server", "show", &vm])?;
    ensure!(
        show["status"] == "ACTIVE" && show["OS-EXT-SRV-ATTR:host"] == hv.host(2).as_str(),
        "after: {show}\n{}",
        hv.logs()
    );
    let list = migration_list(&cli, &["--server", &vm])?;
    ensure!(list.len() == 1 && list[0]["Status"] == "completed", "migrations: {list:?}");
    ensure!(second.domains().contains(&dom), "{dom} does not run on the destination's libvirtd");
    let everywhere = run("virsh", &["-q", "-c", "qemu:///system", "list", "--all", "--name"])?;
    ensure!(!everywhere.contains(&dom), "{dom} is still defined on the source's libvirtd");
    ensure!(bridge_of(&tmv).as_deref() == Some(hv.bridges[2].as_str()), "{tmv} is not on {}", hv.bridges[2]);
    let qlen = std::fs::read_to_string(format!("/sys/class/net/{tmv}/tx_queue_len")).unwrap_or_default();
    ensure!(qlen.trim() == "10000", "{tmv}'s txqueuelen is {qlen:?}");
    let bindings = port_bindings(&api, &port)?;
    ensure!(
        bindings.len() == 1 && bindings[0]["host"] == hv.host(2).as_str() && bindings[0]["status"] == "ACTIVE",
        "bindings: {bindings:?}"
    );
    ensure!(
        wait_until(Duration::from_secs(30), || pings(&pinger, &ip, 1) == 1),
        "the guest is silent after the migration; its console:\n{}",
        console(2)
    );
    let dest_disk = hv.state_file(2, &format!("tenet-{vm}.qcow2"));
    if shared {
        ensure!(source_disk.exists(), "the shared disk {} was deleted", source_disk.display());
        ensure!(!dest_disk.exists(), "a disk was copied to {}", dest_disk.display());
    } else {
        ensure!(!source_disk.exists(), "the source's overlay {} is left", source_disk.display());
        ensure!(dest_disk.exists(), "no disk at the destination {}", dest_disk.display());
    }

    for id in [&vm, &pinger] {
        cli.ok(&["server", "delete", "--wait", id])?;
    }
    ensure!(!second.domains().contains(&dom), "{dom} is left on the destination");
    ensure!(!source_disk.exists() && !dest_disk.exists(), "the guest's disk is left");
    ensure!(!link_exists(&tmv), "{tmv} is left");
    let left = cli.json(&["port", "list", "--device-id", &vm])?;
    ensure!(left.as_array().is_some_and(|a| a.is_empty()), "netapi ports left: {left}");
    Ok(measured)
}

/// The network under a migration: tenet in tenant mode, or plain MAC learning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Network {
    Tenet,
    Learning,
}

/// What one migration cost the traffic.
#[derive(Debug, Clone)]
struct Measured {
    pings: tenet_tests::compute::PingStats,
    tcp: tenet_tests::compute::EchoStats,
    took_s: f64,
    /// Controller: feed change arrival to all touched switches reconciled, for the
    /// migration's changes (INACTIVE binding, activation, source binding deleted).
    applies_ms: Vec<f64>,
}

/// `labs/bench-migration.sh`: each migration kind with tenet and with plain MAC-learning
/// OVS (same hosts, same guest, 100 pings/s and a TCP stream), rounds from env
/// TENET_MIGRATION_BENCH_ROUNDS (default 1). Prints a line per run and a JSON summary.
#[test]
#[ignore]
fn migration_bench() {
    require_root_and_ovs();
    let _guard = LAB_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let rounds: usize = std::env::var("TENET_MIGRATION_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(1);
    let mut all = Vec::new();
    for round in 1..=rounds {
        for shared in [true, false] {
            for net in [Network::Tenet, Network::Learning] {
                let kind = if shared { "live" } else { "block" };
                match migration_scenario(shared, net) {
                    Ok(m) => {
                        println!(
                            "round {round} {kind} {net:?}: {} of {} pings lost, longest gap {} ms, {} duplicates; TCP {} retransmits, longest stall {:.0} ms; migration {:.1} s; controller applies {:?} ms",
                            m.pings.sent - m.pings.received,
                            m.pings.sent,
                            m.pings.longest_gap_ms,
                            m.pings.duplicates,
                            m.tcp.retransmits,
                            m.tcp.max_stall_ms,
                            m.took_s,
                            m.applies_ms.iter().map(|a| (a * 10.0).round() / 10.0).collect::<Vec<_>>()
                        );
                        all.push(serde_json::json!({"round": round, "kind": kind, "network": format!("{net:?}"),
                            "lost": m.pings.sent - m.pings.received, "sent": m.pings.sent,
                            "longest_gap_ms": m.pings.longest_gap_ms, "duplicates": m.pings.duplicates,
                            "tcp_retransmits": m.tcp.retransmits, "tcp_max_stall_ms": m.tcp.max_stall_ms,
                            "applies_ms": m.applies_ms}));
                    }
                    Err(e) => panic!("{kind} {net:?}: {e:#}"),
                }
            }
        }
    }
    println!("migration-bench: {}", serde_json::Value::Array(all));
}
