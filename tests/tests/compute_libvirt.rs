//! A real VM through the openstack CLI: a QEMU/TCG guest (labs/guest: Debian kernel +
//! busybox initramfs) on a libvirt host, beside a namespace-driver VM on another host of
//! the same tenant network. The guest boots from the uploaded qcow2 image, takes its
//! address by DHCP from the controller, answers ping and its TCP responder from the other
//! VM; pause/unpause and suspend (managed save)/resume change what ping sees; delete
//! leaves no domain, OVS port or netapi port.
//!
//! Needs root, Open vSwitch and libvirtd (labs/setup-host.sh); fails, never skips, without them.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use tenet_tests::compute::{
    image_from_bytes, image_from_file, network, ns_ip, pings, run, server_create, ComputeApi, Hypervisors,
};
use tenet_tests::netapi::NetApi;
use tenet_tests::tenant::TenantController;
use tenet_tests::{free_addr, repo_root, require_root_and_ovs, wait_until, LAB_LOCK};

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

    let compute_addr = free_addr()?;
    let api = NetApi::start_with_catalog(
        &format!("http://{compute_addr}/compute/v2.1"),
        &format!("http://{compute_addr}/image"),
    )?;
    let ctl = TenantController::start(&api, &[])?;
    let compute = ComputeApi::start_on(&api, &compute_addr)?;
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
