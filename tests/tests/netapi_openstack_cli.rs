//! tenet-netapi driven by the real OpenStack clients: the `openstack` CLI
//! (python-openstackclient 10.5.0 with the python-neutronclient 14.0.0 sfc plugin)
//! and openstacksdk 4.22.0, installed into `target/netapi-venv` on first run.
//!
//! Needs only python3 with venv (Debian `python3-venv`) and PyPI on the first run.
//! Each test runs its own server on an ephemeral loopback port with a temp SQLite db.

use serde_json::Value;
use tenet_tests::netapi::{Cli, NetApi};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

/// Creates project `project` with `user` (password `pw`) holding `role` in it.
fn add_user(admin: &Cli, project: &str, user: &str, role: &str) -> anyhow::Result<()> {
    if admin.run(&["project", "show", project])?.status.success() {
        // Already there.
    } else {
        admin.json(&["project", "create", project])?;
    }
    admin.json(&["user", "create", "--project", project, "--password", "pw", user])?;
    admin.ok(&["role", "add", "--project", project, "--user", user, role])?;
    Ok(())
}

#[test]
fn openstack_cli_manages_networks_subnets_security_groups_and_ports() -> anyhow::Result<()> {
    let api = NetApi::start()?;
    let cli = api.admin_cli()?;

    let net = cli.json(&["network", "create", "net1"])?;
    assert_eq!(net["name"], "net1");
    assert_eq!(net["status"], "ACTIVE");

    let sub = cli.json(&["subnet", "create", "--network", "net1", "--subnet-range", "10.0.0.0/24", "sub1"])?;
    assert_eq!(sub["cidr"], "10.0.0.0/24");
    assert_eq!(sub["gateway_ip"], "10.0.0.1");
    assert_eq!(sub["network_id"], net["id"]);
    assert_eq!(sub["allocation_pools"][0]["start"], "10.0.0.2");

    let sg = cli.json(&["security", "group", "create", "--description", "web", "web"])?;
    assert_eq!(sg["name"], "web");
    let egress = sg["rules"].as_array().map(|r| r.iter().filter(|r| r["direction"] == "egress").count());
    assert_eq!(egress, Some(2), "a new group allows all egress (IPv4 and IPv6): {sg}");
    let rule = cli.json(&["security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "web"])?;
    assert_eq!(rule["port_range_min"], 22);
    assert_eq!(rule["port_range_max"], 22);
    assert_eq!(rule["direction"], "ingress");
    assert_eq!(rule["remote_ip_prefix"], "0.0.0.0/0");

    let p1 = cli.json(&[
        "port",
        "create",
        "--network",
        "net1",
        "--security-group",
        "web",
        "--fixed-ip",
        "subnet=sub1,ip-address=10.0.0.50",
        "p1",
    ])?;
    assert_eq!(p1["fixed_ips"][0]["ip_address"], "10.0.0.50");
    assert_eq!(p1["security_group_ids"], serde_json::json!([sg["id"]]));
    assert!(p1["mac_address"].as_str().is_some_and(|m| m.starts_with("fa:16:3e:")), "{p1}");
    let p2 = cli.json(&["port", "create", "--network", "net1", "p2"])?;
    assert_eq!(p2["fixed_ips"][0]["ip_address"], "10.0.0.2");

    cli.ok(&["port", "set", "--name", "p2-renamed", "--description", "second", "p2"])?;
    let renamed = cli.json(&["port", "show", "p2-renamed"])?;
    assert_eq!((renamed["id"].clone(), renamed["description"].clone()), (p2["id"].clone(), "second".into()));
    cli.ok(&["port", "set", "--name", "p2", "p2-renamed"])?;

    let ports = cli.json(&["port", "list"])?;
    let names: Vec<&str> = ports.as_array().into_iter().flatten().filter_map(|p| p["Name"].as_str()).collect();
    assert!(names.contains(&"p1") && names.contains(&"p2"), "{ports}");
    let shown = cli.json(&["port", "show", "p1"])?;
    assert_eq!(shown["id"], p1["id"]);
    assert_eq!(shown["network_id"], net["id"]);

    // In use: the group cannot go while p1 has it.
    let err = cli.fails(&["security", "group", "delete", "web"])?;
    assert!(err.contains("in use"), "{err}");

    cli.ok(&["port", "delete", "p1"])?;
    let ports = cli.json(&["port", "list"])?;
    assert!(ports.as_array().is_some_and(|p| p.iter().all(|p| p["Name"] != "p1")), "{ports}");
    let err = cli.fails(&["port", "show", "p1"])?;
    assert!(err.contains("No Port found for p1"), "{err}");

    // Bad input is refused with Neutron's messages.
    let err = cli.fails(&["subnet", "create", "--network", "net1", "--subnet-range", "10.1.0.5/24", "bad"])?;
    assert!(err.contains("10.1.0.0/24"), "{err}");
    let err = cli.fails(&["subnet", "create", "--network", "net1", "--subnet-range", "10.0.0.0/16", "overlap"])?;
    assert!(err.contains("overlaps"), "{err}");
    let err =
        cli.fails(&["port", "create", "--network", "net1", "--fixed-ip", "subnet=sub1,ip-address=10.9.9.9", "bad"])?;
    assert!(err.contains("not a valid IP for the specified subnet"), "{err}");
    let err = cli.fails(&[
        "port",
        "create",
        "--network",
        "net1",
        "--mac-address",
        p2["mac_address"].as_str().unwrap_or_default(),
        "dup",
    ])?;
    assert!(err.contains("is in use"), "{err}");
    Ok(())
}

#[test]
fn second_project_cannot_see_the_first_projects_network() -> anyhow::Result<()> {
    let api = NetApi::start()?;
    let admin = api.admin_cli()?;
    add_user(&admin, "demo", "alice", "member")?;
    add_user(&admin, "demo", "rita", "reader")?;
    add_user(&admin, "demo2", "bob", "member")?;
    let alice = api.cli_as("alice", "pw", "demo")?;
    let bob = api.cli_as("bob", "pw", "demo2")?;
    let rita = api.cli_as("rita", "pw", "demo")?;

    let net = alice.json(&["network", "create", "net1"])?;
    alice.json(&["subnet", "create", "--network", "net1", "--subnet-range", "10.0.0.0/24", "sub1"])?;

    let err = bob.fails(&["network", "show", "net1"])?;
    assert!(err.contains("No Network found for net1"), "{err}");
    let err = bob.fails(&["network", "show", &id(&net)])?;
    assert!(err.contains("No Network found"), "{err}");
    let listed = bob.json(&["network", "list"])?;
    assert_eq!(listed, serde_json::json!([]));
    let err = bob.fails(&["port", "create", "--network", &id(&net), "sneaky"])?;
    assert!(err.contains("No Network found"), "{err}");
    let err = bob.fails(&["network", "delete", &id(&net)])?;
    assert!(err.contains("net") || err.contains("found"), "{err}");

    // The same names in another project are fine, and stay apart.
    let bobs = bob.json(&["network", "create", "net1"])?;
    bob.json(&["subnet", "create", "--network", "net1", "--subnet-range", "10.0.0.0/24", "sub1"])?;
    assert_ne!(id(&bobs), id(&net));
    assert_eq!(alice.json(&["network", "show", "net1"])?["id"], net["id"]);

    // A reader sees but cannot write; the admin sees both.
    assert_eq!(rita.json(&["network", "show", "net1"])?["id"], net["id"]);
    let err = rita.fails(&["network", "create", "rnet"])?;
    assert!(err.to_lowercase().contains("policy") || err.contains("403"), "{err}");
    let all = admin.json(&["network", "list"])?;
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");

    // Identity extras the clients use: token issue and EC2 credentials.
    let token = alice.json(&["token", "issue"])?;
    assert!(token["id"].is_string() && token["project_id"].is_string() && token["user_id"].is_string(), "{token}");
    let cred = alice.json(&["ec2", "credentials", "create"])?;
    assert!(cred["access"].is_string() && cred["secret"].is_string(), "{cred}");
    let creds = alice.json(&["ec2", "credentials", "list"])?;
    assert_eq!(creds.as_array().map(Vec::len), Some(1), "{creds}");
    Ok(())
}

#[test]
fn sdk_creates_activates_and_deletes_port_bindings() -> anyhow::Result<()> {
    let api = NetApi::start()?;
    let cli = api.admin_cli()?;
    cli.json(&["network", "create", "net1"])?;
    cli.json(&["subnet", "create", "--network", "net1", "--subnet-range", "10.0.0.0/24", "sub1"])?;
    let port = cli.json(&["port", "create", "--network", "net1", "--host", "h1", "vm-port"])?;
    assert_eq!(port["binding_host_id"], "h1");
    let script = r#"
import sys, openstack
conn = openstack.connect()
port = conn.network.find_port(sys.argv[1], ignore_missing=False)
b = conn.network.create_port_binding(port, host="h2")
print("created", b.host, b.status)
a = conn.network.activate_port_binding(port, host="h2")
print("activated", a.host, a.status)
print("bindings", " ".join(sorted(x.host + "=" + x.status for x in conn.network.port_bindings(port))))
print("port-host", conn.network.get_port(port).binding_host_id)
conn.network.delete_port_binding(port, host="h1")
print("after-delete", " ".join(sorted(x.host + "=" + x.status for x in conn.network.port_bindings(port))))
"#;
    let out = cli.python(script, &[&id(&port)])?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            "created h2 INACTIVE",
            "activated h2 ACTIVE",
            "bindings h1=INACTIVE h2=ACTIVE",
            "port-host h2",
            "after-delete h2=ACTIVE"
        ],
        "{out}\n{}",
        api.log()
    );
    Ok(())
}

/// An admin binds a port to a switch interface with the plain CLI: `binding:profile`
/// carries the datapath id and interface name that tenant mode places the port by.
#[test]
fn cli_binds_a_port_to_a_switch_interface_through_the_binding_profile() -> anyhow::Result<()> {
    let api = NetApi::start()?;
    let cli = api.admin_cli()?;
    cli.json(&["network", "create", "net1"])?;
    cli.json(&["subnet", "create", "--network", "net1", "--subnet-range", "10.0.0.0/24", "sub1"])?;
    let port = cli.json(&[
        "port",
        "create",
        "--network",
        "net1",
        "--host",
        "lab",
        "--binding-profile",
        "datapath_id=00000000000000ab",
        "--binding-profile",
        "interface_name=s1-eth1",
        "vm1",
    ])?;
    assert_eq!(port["binding_host_id"], "lab");
    let script = r#"
import sys, openstack
conn = openstack.connect()
port = conn.network.find_port(sys.argv[1], ignore_missing=False)
for b in conn.network.port_bindings(port):
    print(b.host, b.status)
"#;
    let out = cli.python(script, &[&id(&port)])?;
    assert_eq!(out.trim(), "lab ACTIVE", "{out}");
    // The placement is in the binding the controller reads (the REST binding body).
    let rest = api.rest();
    let rt = tokio::runtime::Runtime::new()?;
    let token = rt.block_on(api.admin_token())?;
    let b = rt.block_on(rest.expect(
        tenet_netapi::client::StatusCode::OK,
        tenet_netapi::client::Method::GET,
        &format!("/v2.0/ports/{}/bindings", id(&port)),
        Some(&token),
        None,
    ))?;
    assert_eq!(b["bindings"][0]["datapath_id"], "00000000000000ab", "{b}");
    assert_eq!(b["bindings"][0]["interface_name"], "s1-eth1", "{b}");
    // A datapath id that is not hex is refused with a message.
    let err = cli.fails(&[
        "port",
        "create",
        "--network",
        "net1",
        "--host",
        "lab",
        "--binding-profile",
        "datapath_id=zz",
        "vm2",
    ])?;
    assert!(err.contains("datapath_id"), "{err}");
    Ok(())
}

#[test]
fn sfc_commands_build_a_port_chain_visible_only_to_its_project() -> anyhow::Result<()> {
    let api = NetApi::start()?;
    let admin = api.admin_cli()?;
    add_user(&admin, "demo", "alice", "member")?;
    add_user(&admin, "demo2", "bob", "member")?;
    let alice = api.cli_as("alice", "pw", "demo")?;
    let bob = api.cli_as("bob", "pw", "demo2")?;
    alice.json(&["network", "create", "net1"])?;
    alice.json(&["subnet", "create", "--network", "net1", "--subnet-range", "10.0.0.0/24", "sub1"])?;
    for p in ["ips-in", "ips-out", "vm1"] {
        alice.json(&["port", "create", "--network", "net1", p])?;
    }
    let pp = alice.json(&[
        "sfc",
        "port",
        "pair",
        "create",
        "--ingress",
        "ips-in",
        "--egress",
        "ips-out",
        "--service-function-parameters",
        "correlation=None,weight=1",
        "pp1",
    ])?;
    assert_eq!(pp["Service Function Parameters"]["weight"], 1, "{pp}");
    let ppg = alice.json(&["sfc", "port", "pair", "group", "create", "--port-pair", "pp1", "ppg1"])?;
    assert_eq!(ppg["Port Pair"], serde_json::json!([pp["ID"]]));
    let fc = alice.json(&[
        "sfc",
        "flow",
        "classifier",
        "create",
        "--protocol",
        "tcp",
        "--destination-port",
        "80:80",
        "--logical-source-port",
        "vm1",
        "--source-ip-prefix",
        "10.0.0.0/24",
        "fc1",
    ])?;
    assert_eq!(fc["Destination Port Range Min"], 80);
    let pc = alice.json(&[
        "sfc",
        "port",
        "chain",
        "create",
        "--port-pair-group",
        "ppg1",
        "--flow-classifier",
        "fc1",
        "--chain-parameters",
        "correlation=mpls,symmetric=false",
        "pc1",
    ])?;
    assert_eq!(pc["Chain Parameters"]["symmetric"], false, "{pc}");
    assert_eq!(pc["Port Pair Groups"], serde_json::json!([ppg["ID"]]));
    let chains = alice.json(&["sfc", "port", "chain", "list"])?;
    assert_eq!(chains.as_array().map(Vec::len), Some(1));

    assert_eq!(bob.json(&["sfc", "port", "chain", "list"])?, serde_json::json!([]));
    assert!(!bob.run(&["sfc", "port", "chain", "show", "pc1"])?.status.success());

    // Parts in use cannot go; the chain first, then the rest.
    alice.fails(&["sfc", "port", "pair", "group", "delete", "ppg1"])?;
    alice.fails(&["port", "delete", "ips-in"])?;
    alice.ok(&["sfc", "port", "chain", "delete", "pc1"])?;
    alice.ok(&["sfc", "port", "pair", "group", "delete", "ppg1"])?;
    alice.ok(&["sfc", "flow", "classifier", "delete", "fc1"])?;
    alice.ok(&["sfc", "port", "pair", "delete", "pp1"])?;
    alice.ok(&["port", "delete", "ips-in"])?;
    Ok(())
}
