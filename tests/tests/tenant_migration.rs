//! The controller's side of a migration, without a hypervisor: netapi, the tenant-mode
//! controller and two OVS bridges (userspace datapath) linked by a veth pair. A "VM"
//! namespace has its port bound on bridge 1; a second NIC with the same MAC and address
//! appears on bridge 2 and the port gets an INACTIVE binding there (what the compute
//! service does before it migrates). Shown: the controller sends the VM's traffic to both
//! places (the pinger's requests arrive on both NICs), and a gratuitous ARP from the new
//! NIC moves the primary place to bridge 2 before netapi activates anything, as QEMU's or
//! the guest's announcement does; deleting the INACTIVE binding (a failed migration)
//! takes the second place away again.
//!
//! Needs root and Open vSwitch (labs/setup-host.sh); fails, never skips, without them.

use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context};
use tenet_netapi::client::connect_grpc;
use tenet_netapi::grpc::pb;
use tenet_tests::compute::{fabric_link, run, tenant_bridge};
use tenet_tests::netapi::NetApi;
use tenet_tests::tenant::TenantController;
use tenet_tests::{require_root_and_ovs, unique_prefix, wait_until, LAB_LOCK};

#[test]
fn a_migrating_port_gets_both_places_and_its_announcement_moves_the_primary() {
    require_root_and_ovs();
    let _guard = LAB_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut lab = Lab { prefix: unique_prefix(), bridges: vec![], links: vec![], namespaces: vec![] };
    if let Err(e) = scenario(&mut lab) {
        panic!("{e:#}");
    }
}

/// What the test made; removed on drop, also when it fails.
struct Lab {
    prefix: String,
    bridges: Vec<String>,
    links: Vec<String>,
    namespaces: Vec<String>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for b in &self.bridges {
            let _ = run("ovs-vsctl", &["--if-exists", "del-br", b]);
        }
        for l in &self.links {
            let _ = run("ip", &["link", "del", l]);
        }
        for n in &self.namespaces {
            let _ = run("ip", &["netns", "del", n]);
        }
    }
}

impl Lab {
    fn bridge(&mut self, n: u64, controller: &str) -> anyhow::Result<String> {
        let b = format!("{}b{n}", self.prefix);
        self.bridges.push(b.clone());
        tenant_bridge(&b, 0xd0_0000 + n, controller)?;
        Ok(b)
    }

    /// A veth pair `host`/`inner`, `host` on `bridge`, `inner` in namespace `ns` (made if new).
    fn nic(&mut self, ns: &str, bridge: &str, host: &str, inner: &str, mac: &str) -> anyhow::Result<()> {
        if !self.namespaces.iter().any(|n| n == ns) {
            run("ip", &["netns", "add", ns])?;
            self.namespaces.push(ns.to_string());
            run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        }
        run("ip", &["link", "add", host, "type", "veth", "peer", "name", inner])?;
        self.links.push(host.to_string());
        run("ip", &["link", "set", inner, "netns", ns])?;
        run("ip", &["-n", ns, "link", "set", inner, "address", mac, "up"])?;
        run("ip", &["link", "set", host, "up"])?;
        run("ovs-vsctl", &["add-port", bridge, host])?;
        Ok(())
    }
}

/// Table 30 flows of `bridge` for destination `mac` (their actions).
fn forward_flows(bridge: &str, mac: &str) -> String {
    run("ovs-ofctl", &["-O", "OpenFlow13", "--no-stats", "dump-flows", bridge, &format!("table=30,dl_dst={mac}")])
        .unwrap_or_default()
}

fn scenario(lab: &mut Lab) -> anyhow::Result<()> {
    let api = NetApi::start()?;
    let ctl = TenantController::start(&api, &[])?;
    let cli = api.admin_cli()?;
    let net = cli.json(&["network", "create", "mig"])?;
    let net_id = net["id"].as_str().context("network id")?.to_string();
    cli.json(&["subnet", "create", "--network", "mig", "--subnet-range", "10.12.0.0/24", "mig-v4"])?;
    let p = lab.prefix.clone();
    let (b1, b2) = (lab.bridge(1, &ctl.of_addr)?, lab.bridge(2, &ctl.of_addr)?);
    let (l1, l2) = (format!("{p}l1"), format!("{p}l2"));
    lab.links.push(l1.clone());
    fabric_link(&l1, &l2, &b1, &b2)?;

    // Ports: the VM on bridge 1, the pinger on bridge 2.
    let rt = tokio::runtime::Runtime::new()?;
    let token = rt.block_on(api.admin_token())?;
    let (mut registry, _) = rt.block_on(connect_grpc(&api.grpc_url, &token)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut register = |host: &str, dpid: u64, iface: &str| -> anyhow::Result<(String, String, String)> {
        let reply = rt
            .block_on(registry.register_port(pb::RegisterPortRequest {
                network_id: net_id.clone(),
                binding: Some(pb::BindingSpec {
                    host: host.into(),
                    datapath_id: dpid,
                    interface_name: iface.into(),
                    vnic_type: "normal".into(),
                }),
                port_security_enabled: Some(false),
                ..Default::default()
            }))
            .map_err(|s| anyhow::anyhow!("RegisterPort: {}", s.message()))?
            .into_inner();
        let port = reply.port.context("no port")?;
        let ip = port.fixed_ips.first().map(|f| f.ip_address.clone()).context("no address")?;
        Ok((port.id, port.mac_address, ip))
    };
    let (vm_h1, vm_h2, pinger_h) = (format!("{p}v1"), format!("{p}v2"), format!("{p}pg"));
    let (vm_port, vm_mac, vm_ip) = register("h1", 0xd0_0001, &vm_h1)?;
    let (_, pinger_mac, pinger_ip) = register("h2", 0xd0_0002, &pinger_h)?;
    let (vm_ns, pinger_ns) = (format!("{p}vm"), format!("{p}pn"));
    lab.nic(&vm_ns, &b1, &vm_h1, &format!("{p}e0"), &vm_mac)?;
    lab.nic(&pinger_ns, &b2, &pinger_h, &format!("{p}p0"), &pinger_mac)?;
    run("ip", &["-n", &vm_ns, "addr", "add", &format!("{vm_ip}/24"), "dev", &format!("{p}e0")])?;
    run("ip", &["-n", &pinger_ns, "addr", "add", &format!("{pinger_ip}/24"), "dev", &format!("{p}p0")])?;
    let ping = |count: &str| {
        Command::new("ip")
            .args(["netns", "exec", &pinger_ns, "ping", "-c", count, "-i", "0.05", "-W", "1", &vm_ip])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    ensure!(
        wait_until(Duration::from_secs(20), || ping("1").contains(" 0% packet loss")),
        "the pinger never reached the VM\n{}",
        ctl.log_tail()
    );

    // The migration's destination: a second NIC (same MAC, same address) on bridge 2 and an
    // INACTIVE binding there. Traffic now goes to both places.
    let e1 = format!("{p}e1");
    lab.nic(&vm_ns, &b2, &vm_h2, &e1, &vm_mac)?;
    run("ip", &["-n", &vm_ns, "addr", "add", &format!("{vm_ip}/24"), "dev", &e1])?;
    rt.block_on(registry.update_port_binding(pb::UpdatePortBindingRequest {
        port_id: vm_port.clone(),
        binding: Some(pb::BindingSpec {
            host: "h2".into(),
            datapath_id: 0xd0_0002,
            interface_name: vm_h2.clone(),
            vnic_type: "normal".into(),
        }),
    }))
    .map_err(|s| anyhow::anyhow!("UpdatePortBinding: {}", s.message()))?;
    ensure!(
        wait_until(Duration::from_secs(10), || forward_flows(&b1, &vm_mac).contains("set_field:7->vlan_pcp")),
        "bridge 1 (primary) never copied the VM's traffic towards bridge 2: {}",
        forward_flows(&b1, &vm_mac)
    );
    let dup = ping("20");
    ensure!(dup.contains("DUP!"), "requests must reach both NICs (duplicate replies): {dup}");

    // The VM announces itself at the new place: bridge 2 becomes primary (delivers locally
    // and copies back), bridge 1 forwards there; netapi was never told.
    run("ip", &["netns", "exec", &vm_ns, "busybox", "arping", "-U", "-c", "1", "-I", &e1, &vm_ip])?;
    let moved = wait_until(Duration::from_secs(10), || {
        let (f1, f2) = (forward_flows(&b1, &vm_mac), forward_flows(&b2, &vm_mac));
        f2.contains("priority=100")
            && f2.contains("goto_table:40")
            && f2.contains("set_field:7->vlan_pcp")
            && !f1.lines().any(|l| l.contains("priority=100") && l.contains("goto_table:40"))
    });
    ensure!(
        moved,
        "the announcement did not move the primary place:\nbridge 1: {}\nbridge 2: {}\n{}",
        forward_flows(&b1, &vm_mac),
        forward_flows(&b2, &vm_mac),
        ctl.log_tail()
    );
    ensure!(ctl.log().contains("announced itself"), "the controller did not log the announcement");
    let bindings = cli.json(&["port", "show", &vm_port])?;
    ensure!(bindings["binding_host_id"] == "h1", "netapi must still have h1 active: {bindings}");
    let after = ping("20");
    ensure!(after.contains(" 0% packet loss"), "after the announcement: {after}");

    // A failed migration deletes the INACTIVE binding: one place again (bridge 1), no copies.
    rt.block_on(
        registry.delete_port_binding(pb::DeletePortBindingRequest { port_id: vm_port.clone(), host: "h2".into() }),
    )
    .map_err(|s| anyhow::anyhow!("DeletePortBinding: {}", s.message()))?;
    let back = wait_until(Duration::from_secs(10), || {
        let f1 = forward_flows(&b1, &vm_mac);
        f1.contains("goto_table:40") && !f1.contains("vlan_pcp")
    });
    ensure!(back, "after the binding went: bridge 1: {}", forward_flows(&b1, &vm_mac));
    run("ip", &["-n", &vm_ns, "link", "del", &e1])?;
    let last = ping("10");
    ensure!(last.contains(" 0% packet loss"), "the VM at its old place: {last}");
    Ok(())
}
