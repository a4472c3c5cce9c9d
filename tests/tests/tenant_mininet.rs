//! Tenant mode end to end: netapi (SQLite), `tenet-controller --mode tenant` and a
//! Mininet ring of userspace OVS switches (fail mode secure), two projects whose
//! networks both use 10.0.0.0/24. Hosts are VM ports registered through netapi's gRPC
//! PortRegistry; they get their addresses by DHCP from the controller.
//!
//! Needs root and Open vSwitch (labs/setup-host.sh); fails, never skips, without them.

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};
use tenet_netapi::client::{connect_grpc, Method, StatusCode};
use tenet_netapi::grpc::pb;
use tenet_tests::netapi::NetApi;
use tenet_tests::tenant::TenantController;
use tenet_tests::{http_get, require_root_and_ovs, Lab, LAB_LOCK};

/// A lab host registered as a tenant port.
#[derive(Debug, Clone)]
struct Vm {
    host: String,
    port_id: String,
    mac: String,
    ip: String,
    network: String,
}

struct World {
    rt: tokio::runtime::Runtime,
    api: NetApi,
    token: String,
    lab: Lab,
    ctl: TenantController,
    red: Vec<Vm>,
    blue: Vec<Vm>,
    red_project: String,
    revision: i64,
}

impl World {
    fn rest(&self, method: Method, path: &str, expected: StatusCode, body: Option<Value>) -> anyhow::Result<Value> {
        let rest = self.api.rest();
        Ok(self.rt.block_on(rest.expect(expected, method, path, Some(&self.token), body.as_ref()))?)
    }

    /// The current netapi revision (from a harmless write-free read of the feed status).
    fn bump_revision(&mut self, v: &Value) {
        if let Some(r) = v.pointer("/port/revision_number").and_then(Value::as_i64) {
            self.revision = self.revision.max(r);
        }
    }

    fn step(&mut self, cmd: &str) -> anyhow::Result<Value> {
        self.lab.step(cmd)
    }

    fn sh(&mut self, host: &str, cmd: &str) -> anyhow::Result<String> {
        let v = self.lab.step(&format!("cmd {host} {cmd}"))?;
        Ok(v["output"].as_str().unwrap_or_default().to_string())
    }

    /// Pings `count` times (10 ms apart) from `src` to `ip`; returns how many came back.
    fn ping(&mut self, src: &str, ip: &str, count: u32) -> anyhow::Result<u32> {
        let out = self.sh(src, &format!("ping -c {count} -i 0.05 -W 1 {ip}"))?;
        Ok(received(&out))
    }
}

fn received(ping_output: &str) -> u32 {
    ping_output
        .split(',')
        .find_map(|part| part.trim().strip_suffix(" received").and_then(|n| n.trim().parse().ok()))
        .unwrap_or(0)
}

fn transmitted(ping_output: &str) -> u32 {
    ping_output
        .lines()
        .find_map(|l| l.split(" packets transmitted").next().filter(|_| l.contains("packets transmitted")))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits for a background ping writing to `file` to finish; returns its output.
fn wait_for_ping(file: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    let done = tenet_tests::wait_until(Duration::from_secs(30), || {
        out = std::fs::read_to_string(file).unwrap_or_default();
        out.contains("packets transmitted")
    });
    ensure!(done, "the background ping did not finish: {out}");
    Ok(out)
}

fn setup() -> anyhow::Result<World> {
    let api = NetApi::start()?;
    let rt = tokio::runtime::Runtime::new()?;
    let token = rt.block_on(api.admin_token())?;
    let rest = api.rest();
    let mut projects = Vec::new();
    for name in ["red", "blue"] {
        let p = rt.block_on(rest.expect(
            StatusCode::CREATED,
            Method::POST,
            "/v3/projects",
            Some(&token),
            Some(&json!({"project": {"name": format!("proj-{name}")}})),
        ))?;
        projects.push(p["project"]["id"].as_str().context("project id")?.to_string());
    }
    let mut nets = Vec::new();
    for (name, project) in ["red", "blue"].iter().zip(&projects) {
        let n = rt.block_on(rest.expect(
            StatusCode::CREATED,
            Method::POST,
            "/v2.0/networks",
            Some(&token),
            Some(&json!({"network": {"name": name, "project_id": project}})),
        ))?;
        let net_id = n["network"]["id"].as_str().context("network id")?.to_string();
        rt.block_on(rest.expect(
            StatusCode::CREATED,
            Method::POST,
            "/v2.0/subnets",
            Some(&token),
            Some(&json!({"subnet": {"network_id": net_id, "cidr": "10.0.0.0/24", "ip_version": 4,
                                    "project_id": project, "gateway_ip": "10.0.0.1"}})),
        ))?;
        nets.push(net_id);
    }

    let ctl = TenantController::start(&api, &["--audit", "3"])?;
    let mut lab = Lab::start_with("ring,4,2", &ctl.of_addr, "OpenFlow13", &["--fail-mode", "secure"])?;
    let switches = lab.step("switches")?;
    let hosts = lab.step("hosts")?;
    let dpid_of = |sw: &str| -> Option<u64> {
        switches["switches"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == sw)
            .and_then(|s| s["dpid"].as_str())
            .and_then(|d| u64::from_str_radix(d, 16).ok())
    };
    let (mut registry, _) = rt.block_on(connect_grpc(&api.grpc_url, &token))?;
    let mut red = Vec::new();
    let mut blue = Vec::new();
    let mut revision = 0;
    for (i, h) in hosts["hosts"].as_array().context("hosts")?.iter().enumerate() {
        let name = h["name"].as_str().context("host name")?.to_string();
        let sw = h["switch"].as_str().context("switch")?;
        let iface = format!("{sw}-eth{}", h["port"]);
        let is_red = i % 2 == 0;
        let net = if is_red { &nets[0] } else { &nets[1] };
        // Blue's first port takes red's first address (overlap); the others differ so
        // that cross-project pings have a target that is not also in the sender's network.
        let fixed_ips = match (is_red, i) {
            (false, 1) => vec![],
            (false, _) => vec![pb::FixedIp { subnet_id: String::new(), ip_address: format!("10.0.0.{}", 100 + i / 2) }],
            _ => vec![],
        };
        let reply = rt
            .block_on(registry.register_port(pb::RegisterPortRequest {
                network_id: net.clone(),
                device_id: format!("vm-{name}"),
                device_owner: "compute:lab".into(),
                fixed_ips,
                binding: Some(pb::BindingSpec {
                    host: "lab".into(),
                    datapath_id: dpid_of(sw).context("dpid of host's switch")?,
                    interface_name: iface,
                    vnic_type: String::new(),
                }),
                ..Default::default()
            }))
            .with_context(|| format!("registering {name}"))?
            .into_inner();
        revision = revision.max(reply.revision);
        let port = reply.port.context("port")?;
        let vm = Vm {
            host: name,
            port_id: port.id.clone(),
            mac: port.mac_address.clone(),
            ip: port.fixed_ips.first().map(|f| f.ip_address.clone()).context("address")?,
            network: net.clone(),
        };
        if is_red {
            red.push(vm);
        } else {
            blue.push(vm);
        }
    }
    ensure!(red[0].ip == blue[0].ip, "the overlap case: red {} blue {}", red[0].ip, blue[0].ip);
    let world = World { rt, api, token, lab, ctl, red, blue, red_project: projects[0].clone(), revision };
    world.ctl.wait_applied(revision, 4, Duration::from_secs(60))?;
    Ok(world)
}

#[test]
fn two_projects_with_overlapping_subnets_on_a_ring() {
    require_root_and_ovs();
    let _guard = LAB_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = scenario() {
        panic!("{e:#}");
    }
}

fn scenario() -> anyhow::Result<()> {
    let mut w = setup()?;

    // Every VM port gets its netapi address by DHCP from the controller.
    for vm in w.red.clone().iter().chain(w.blue.clone().iter()) {
        let v = w.step(&format!("dhcp {} {}", vm.host, vm.mac))?;
        let got = v["ip"].as_str().unwrap_or_default().to_string();
        ensure!(
            got == format!("{}/24", vm.ip),
            "{} asked DHCP and got {got:?} (want {}/24): {}",
            vm.host,
            vm.ip,
            v["output"]
        );
    }

    // Within a network every pair reaches each other; across projects nothing does.
    for group in [w.red.clone(), w.blue.clone()] {
        for a in &group {
            for b in &group {
                if a.host != b.host {
                    let r = w.ping(&a.host, &b.ip, 2)?;
                    ensure!(r >= 1, "{} -> {} ({}) in the same network: no answer", a.host, b.host, b.ip);
                }
            }
        }
    }
    // red[0] and blue[0] share 10.0.0.2: red[1] reaches red[0], not blue[0].
    let r1 = w.red[1].host.clone();
    ensure!(w.ping(&r1, &w.red[0].ip.clone(), 2)? >= 1);
    let neigh = w.sh(&r1, &format!("ip neigh show {}", w.red[0].ip))?;
    ensure!(neigh.contains(&w.red[0].mac), "{r1} resolved {} to {neigh:?}, not red's {}", w.red[0].ip, w.red[0].mac);
    for b in w.blue.clone().iter().skip(1) {
        let a = w.red[0].host.clone();
        ensure!(w.ping(&a, &b.ip, 2)? == 0, "{a} (red) reached {} (blue) at {}", b.host, b.ip);
        // Even with the blue MAC known (no ARP needed), the data plane keeps them apart.
        let dev = format!("{a}-eth0");
        w.sh(&a, &format!("ip neigh replace {} lladdr {} dev {dev}", b.ip, b.mac))?;
        ensure!(w.ping(&a, &b.ip, 2)? == 0, "{a} (red) reached {} (blue) with a static ARP entry", b.host);
    }

    // Spoofing: another source IP, another source MAC: dropped.
    let (a, dev, target) = (w.red[2].host.clone(), format!("{}-eth0", w.red[2].host), w.red[3].ip.clone());
    ensure!(w.ping(&a, &target, 2)? >= 1, "baseline");
    w.sh(&a, &format!("ip addr add 10.0.0.77/24 dev {dev}"))?;
    let out = w.sh(&a, &format!("ping -c 2 -i 0.05 -W 1 -I 10.0.0.77 {target}"))?;
    ensure!(received(&out) == 0, "a spoofed source IP got through: {out}");
    w.sh(&a, &format!("ip addr del 10.0.0.77/24 dev {dev}"))?;
    let mac = w.red[2].mac.clone();
    w.sh(&a, &format!("ip link set dev {dev} address fa:16:3e:99:99:99"))?;
    ensure!(w.ping(&a, &target, 2)? == 0, "a spoofed source MAC got through");
    w.sh(&a, &format!("ip link set dev {dev} address {mac}"))?;
    ensure!(w.ping(&a, &target, 2)? >= 1, "back to the port's own MAC");

    netapi_restart(&mut w)?;
    security_groups(&mut w)?;
    link_cut(&mut w)?;
    controller_restart(&mut w)?;

    // The installed flows prove isolation; a planted leak is found.
    let (code, out) = w.ctl.verify()?;
    ensure!(code == 0, "verify found a leak (exit {code}):\n{out}");
    verify_finds_a_planted_leak(&mut w)?;
    Ok(())
}

/// netapi restarts: the controller resumes its feed from the last revision (no
/// snapshot, nothing re-sent to the switches) and follows the next change.
fn netapi_restart(w: &mut World) -> anyhow::Result<()> {
    let before = w.ctl.status()?;
    w.api.restart_same_ports()?;
    w.token = w.rt.block_on(w.api.admin_token())?;
    // A change after the restart arrives: red[1] loses port security, then gets it back.
    let id = w.red[1].port_id.clone();
    let v =
        w.rest(Method::PUT, &format!("/v2.0/ports/{id}"), StatusCode::OK, Some(json!({"port": {"name": "renamed"}})))?;
    w.bump_revision(&v);
    w.ctl.wait_applied(w.revision, 4, Duration::from_secs(30))?;
    let after = w.ctl.status()?;
    let log = w.ctl.log();
    ensure!(
        log.matches("netapi snapshot begins").count() == 1,
        "the controller took a second snapshot after netapi restarted (should resume):\n{}",
        w.ctl.log_tail()
    );
    for (dpid, s) in after["switches"].as_object().cloned().unwrap_or_default() {
        let b = &before["switches"][&dpid];
        ensure!(s["flow_mods"] == b["flow_mods"], "switch {dpid} got flow mods for a rename: {b} -> {s}");
    }
    Ok(())
}

/// Only tcp/22 from members of "clients" reaches the server; replies flow back
/// (stateful) although the client's own rules admit nothing from the server.
fn security_groups(w: &mut World) -> anyhow::Result<()> {
    let project = w.red_project.clone();
    let mk = |w: &mut World, name: &str| -> anyhow::Result<String> {
        let g = w.rest(
            Method::POST,
            "/v2.0/security-groups",
            StatusCode::CREATED,
            Some(json!({"security_group": {"name": name, "project_id": project}})),
        )?;
        Ok(g["security_group"]["id"].as_str().context("group id")?.to_string())
    };
    let web = mk(w, "web")?;
    let clients = mk(w, "clients")?;
    w.rest(
        Method::POST,
        "/v2.0/security-group-rules",
        StatusCode::CREATED,
        Some(json!({"security_group_rule": {"security_group_id": web, "direction": "ingress", "ethertype": "IPv4",
            "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_group_id": clients}})),
    )?;
    let default = {
        let g = w.rest(
            Method::GET,
            &format!("/v2.0/security-groups?name=default&project_id={project}"),
            StatusCode::OK,
            None,
        )?;
        g["security_groups"][0]["id"].as_str().context("default group")?.to_string()
    };
    let (server, client, other) = (w.red[2].clone(), w.red[1].clone(), w.red[3].clone());
    let v = w.rest(
        Method::PUT,
        &format!("/v2.0/ports/{}", server.port_id),
        StatusCode::OK,
        Some(json!({"port": {"security_groups": [web]}})),
    )?;
    w.bump_revision(&v);
    let v = w.rest(
        Method::PUT,
        &format!("/v2.0/ports/{}", client.port_id),
        StatusCode::OK,
        Some(json!({"port": {"security_groups": [default, clients]}})),
    )?;
    w.bump_revision(&v);
    w.ctl.wait_applied(w.revision, 4, Duration::from_secs(30))?;

    let listen = |w: &mut World, port: u16| -> anyhow::Result<String> {
        let out = w.sh(&server.host, &format!("sh -c 'nc -lk {port} >/dev/null 2>&1 & echo $!'"))?;
        Ok(out.trim().to_string())
    };
    let pids = [listen(w, 22)?, listen(w, 23)?];
    std::thread::sleep(Duration::from_millis(300));
    let connect = |w: &mut World, from: &str, port: u16| -> anyhow::Result<bool> {
        let out = w.sh(from, &format!("nc -z -w 2 {} {port}; echo rc=$?", server.ip))?;
        Ok(out.contains("rc=0"))
    };
    let member_22 = connect(w, &client.host, 22)?;
    let member_23 = connect(w, &client.host, 23)?;
    let other_22 = connect(w, &other.host, 22)?;
    let ping = w.ping(&client.host, &server.ip, 2)?;
    for pid in pids {
        w.sh(&server.host, &format!("kill {pid}"))?;
    }
    ensure!(member_22, "a member of 'clients' could not reach tcp/22 (or its replies were dropped: not stateful)");
    ensure!(!member_23, "tcp/23 was reachable: only 22 is allowed");
    ensure!(!other_22, "a port outside 'clients' reached tcp/22");
    ensure!(ping == 0, "ICMP reached the server though its group allows only tcp/22");
    // Put the ports back in the default group for what follows.
    for p in [&server, &client] {
        let v = w.rest(
            Method::PUT,
            &format!("/v2.0/ports/{}", p.port_id),
            StatusCode::OK,
            Some(json!({"port": {"security_groups": [default]}})),
        )?;
        w.bump_revision(&v);
    }
    w.ctl.wait_applied(w.revision, 4, Duration::from_secs(30))?;
    Ok(())
}

/// Background ping across the ring; cut the link the path uses; pings go on.
fn link_cut(w: &mut World) -> anyhow::Result<()> {
    let (src, dst) = (w.red[0].clone(), w.red[3].clone()); // s1 and s4: neighbours on the ring
    let hosts = w.step("hosts")?;
    let switches = w.step("switches")?;
    let switch_of = |host: &str| -> Option<String> {
        hosts["hosts"]
            .as_array()?
            .iter()
            .find(|h| h["name"] == host)
            .and_then(|h| h["switch"].as_str().map(str::to_string))
    };
    let dpid_of = |name: &str| -> Option<String> {
        switches["switches"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["dpid"].as_str().map(str::to_string))
    };
    let name_of = |dpid: &Value| -> Option<String> {
        let d = u64::from_str_radix(dpid.as_str()?.trim_start_matches("0x"), 16).ok()?;
        switches["switches"]
            .as_array()?
            .iter()
            .find(|s| s["dpid"].as_str().and_then(|x| u64::from_str_radix(x, 16).ok()) == Some(d))
            .and_then(|s| s["name"].as_str().map(str::to_string))
    };
    let (sa, sb) = (switch_of(&src.host).context("src switch")?, switch_of(&dst.host).context("dst switch")?);
    let (da, db) = (dpid_of(&sa).context("src dpid")?, dpid_of(&sb).context("dst dpid")?);
    let (_, path) = http_get(&w.ctl.api_addr, &format!("/v1/paths?src={da}&dst={db}"))?;
    let hops = path.pointer("/0/hops").and_then(Value::as_array).cloned().unwrap_or_default();
    ensure!(hops.len() >= 2, "no path between the hosts' switches: {path}");
    let (a, b) = (name_of(&hops[0]["dpid"]).context("first hop")?, name_of(&hops[1]["dpid"]).context("second hop")?);
    let file = format!("/tmp/{}-cut.ping", w.lab.prefix);
    w.sh(&src.host, &format!("sh -c 'ping -i 0.01 -c 400 -W 1 {} > {file} 2>&1 &'", dst.ip))?;
    std::thread::sleep(Duration::from_millis(1000));
    w.step(&format!("link {a} {b} down"))?;
    let out = wait_for_ping(&file)?;
    let _ = std::fs::remove_file(&file);
    let (sent, got) = (transmitted(&out), received(&out));
    eprintln!("link cut {a}-{b}: {got}/{sent} pings answered at 100/s (gap ~{} ms)", (sent - got.min(sent)) * 10);
    ensure!(sent > 0, "the background ping did not run: {out}");
    ensure!(w.ping(&src.host, &dst.ip, 3)? >= 2, "no connectivity after the cut");
    Ok(())
}

/// Restart the controller while a ping runs, then reconnect a switch: not one packet
/// lost, nothing re-sent.
fn controller_restart(w: &mut World) -> anyhow::Result<()> {
    let (src, dst) = (w.blue[1].clone(), w.blue[3].clone());
    let file = format!("/tmp/{}-restart.ping", w.lab.prefix);
    w.sh(&src.host, &format!("sh -c 'ping -i 0.02 -c 300 -W 1 {} > {file} 2>&1 &'", dst.ip))?;
    std::thread::sleep(Duration::from_millis(800));
    w.ctl.restart()?;
    w.ctl.wait_applied(w.revision, 4, Duration::from_secs(30))?;
    let out = wait_for_ping(&file)?;
    let _ = std::fs::remove_file(&file);
    let (sent, got) = (transmitted(&out), received(&out));
    eprintln!("controller restart: {got}/{sent} pings answered");
    ensure!(sent >= 250 && got == sent, "packets lost across a controller restart: {got}/{sent}\n{out}");
    let status = w.ctl.status()?;
    for (dpid, s) in status["switches"].as_object().cloned().unwrap_or_default() {
        ensure!(s["flow_mods"] == 0, "switch {dpid} got flow mods after the restart (not a no-op): {s}");
    }

    // A switch reconnects during a ping through it: its controller is pointed elsewhere and
    // back (removing the controller altogether would make OVS flush its flows by design).
    let hosts = w.step("hosts")?;
    let sw = hosts["hosts"]
        .as_array()
        .and_then(|a| a.iter().find(|h| h["name"] == src.host.as_str()))
        .and_then(|h| h["switch"].as_str())
        .context("switch of the pinging host")?
        .to_string();
    let file = format!("/tmp/{}-reconnect.ping", w.lab.prefix);
    w.sh(&src.host, &format!("sh -c 'ping -i 0.02 -c 200 -W 1 {} > {file} 2>&1 &'", dst.ip))?;
    std::thread::sleep(Duration::from_millis(500));
    let vsctl = |args: &[&str]| std::process::Command::new("ovs-vsctl").args(args).status();
    ensure!(vsctl(&["set-controller", &sw, "tcp:127.0.0.1:9"])?.success(), "set-controller away");
    std::thread::sleep(Duration::from_millis(500));
    ensure!(vsctl(&["set-controller", &sw, &format!("tcp:{}", w.ctl.of_addr)])?.success(), "set-controller");
    let out = wait_for_ping(&file)?;
    let _ = std::fs::remove_file(&file);
    let (sent, got) = (transmitted(&out), received(&out));
    eprintln!("switch reconnect: {got}/{sent} pings answered");
    ensure!(sent >= 150 && got == sent, "packets lost across a switch reconnect: {got}/{sent}\n{out}");
    w.ctl.wait_applied(w.revision, 4, Duration::from_secs(30))?;
    let status = w.ctl.status()?;
    for (dpid, s) in status["switches"].as_object().cloned().unwrap_or_default() {
        ensure!(s["flow_mods"] == 0, "switch {dpid} got flow mods after reconnecting: {s}");
    }
    Ok(())
}

/// A flow planted behind the controller's back that sends red traffic to a blue port
/// is found by verify, with the packet.
fn verify_finds_a_planted_leak(w: &mut World) -> anyhow::Result<()> {
    let red = w.red[0].clone();
    let blue = w.blue[0].clone();
    let net = w.rest(Method::GET, &format!("/v2.0/networks/{}", red.network), StatusCode::OK, None)?;
    let seg = net["network"]["provider:segmentation_id"].as_u64().context("segment")?;
    let hosts = w.step("hosts")?;
    let at = |name: &str| -> Option<(String, u64)> {
        let h = hosts["hosts"].as_array()?.iter().find(|h| h["name"] == name)?;
        Some((h["switch"].as_str()?.to_string(), h["port"].as_u64()?))
    };
    let (sw, blue_port) = at(&blue.host).context("blue host")?;
    let (red_sw, _) = at(&red.host).context("red host")?;
    if sw != red_sw {
        bail!("test layout: red[0] and blue[0] should share a switch");
    }
    let flow =
        format!("table=30,priority=200,metadata={seg}/0xffff,dl_dst=02:00:00:00:00:99,actions=output:{blue_port}");
    let st = std::process::Command::new("ovs-ofctl").args(["-O", "OpenFlow13", "add-flow", &sw, &flow]).status()?;
    ensure!(st.success(), "ovs-ofctl add-flow failed");
    let (code, out) = w.ctl.verify()?;
    eprintln!("verify with a planted leak:\n{out}");
    ensure!(code == 1, "verify missed a planted leak (exit {code}):\n{out}");
    ensure!(out.contains("02:00:00:00:00:99"), "the counterexample should show the packet:\n{out}");
    // The next audit (every 3 s in this test) removes the foreign flow again.
    let healed =
        tenet_tests::wait_until(Duration::from_secs(20), || w.ctl.verify().map(|(c, _)| c == 0).unwrap_or(false));
    ensure!(healed, "the audit did not remove the planted flow:\n{}", w.ctl.log_tail());
    ensure!(w.ctl.log().contains("audit: the switch's flows drifted"), "the audit should say it found drift");
    Ok(())
}
