//! `tenet-compute api` driven by the real `openstack` CLI (python-openstackclient 10.5.0,
//! openstacksdk 4.22.0; venv in `target/netapi-venv`): flavors, images with data,
//! servers, errors, project isolation, and the API's half of the agent protocol.
//!
//! Each test runs a netapi (Keystone + Neutron) whose catalog points compute and image at
//! a `tenet-compute api` on a loopback port. No hypervisor: where a host is needed, a
//! STAND-IN agent (`tenet_tests::compute::StandInAgent`, which only accepts and records
//! requests) is registered, and the test itself sends the reports a real agent would.

use std::time::Duration;

use serde_json::{json, Value};
use tenet_netapi::client::{Method, Rest, StatusCode};
use tenet_tests::compute::{live_migrate, migration_list, ComputeApi, StandInAgent};
use tenet_tests::netapi::{Cli, NetApi};
use tenet_tests::{free_addr, unique_prefix, wait_until};

/// netapi with the catalog pointing at a compute API, which runs as service user `nova`.
struct Cloud {
    compute: ComputeApi,
    netapi: NetApi,
    admin: Cli,
}

impl Cloud {
    fn start() -> anyhow::Result<Cloud> {
        let addr = free_addr()?;
        let netapi =
            NetApi::start_with_catalog(&format!("http://{addr}/compute/v2.1"), &format!("http://{addr}/image"))?;
        let admin = netapi.admin_cli()?;
        admin.json(&["user", "create", "--project", "admin", "--password", "novapw", "nova"])?;
        admin.ok(&["role", "add", "--project", "admin", "--user", "nova", "service"])?;
        let compute = ComputeApi::start(&netapi, &addr, "nova", "novapw", "admin")?;
        Ok(Cloud { compute, netapi, admin })
    }

    /// A member of a new project `project` (user `user`, password `pw`).
    fn member(&self, project: &str, user: &str) -> anyhow::Result<Cli> {
        self.admin.json(&["project", "create", project])?;
        self.admin.json(&["user", "create", "--project", project, "--password", "pw", user])?;
        self.admin.ok(&["role", "add", "--project", project, "--user", user, "member"])?;
        self.netapi.cli_as(user, "pw", project)
    }

    /// Creates an active raw image `name` from `data` as `cli`; returns its id.
    fn image(&self, cli: &Cli, name: &str, data: &[u8]) -> anyhow::Result<String> {
        let file = std::env::temp_dir().join(format!("tenet-image-{}-{}-{name}", std::process::id(), unique_prefix()));
        std::fs::write(&file, data)?;
        let path = file.display().to_string();
        let img =
            cli.json(&["image", "create", "--file", &path, "--disk-format", "raw", "--container-format", "bare", name]);
        let _ = std::fs::remove_file(&file);
        Ok(img?["id"].as_str().unwrap_or_default().to_string())
    }

    fn rest(&self) -> Rest {
        Rest::new(&self.compute.url)
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

fn hex_digest(tool: &str, path: &std::path::Path) -> anyhow::Result<String> {
    let out = std::process::Command::new(tool).arg(path).output()?;
    Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string())
}

#[test]
fn openstack_cli_lists_shows_and_creates_flavors() -> anyhow::Result<()> {
    let cloud = Cloud::start()?;
    let cli = &cloud.admin;

    let flavors = cli.json(&["flavor", "list"])?;
    let names: Vec<&str> = flavors.as_array().into_iter().flatten().filter_map(|f| f["Name"].as_str()).collect();
    for wanted in ["m1.nano", "m1.tiny", "m1.small", "m1.medium"] {
        assert!(names.contains(&wanted), "{wanted} missing from {flavors}");
    }
    let small = cli.json(&["flavor", "show", "m1.small"])?;
    assert_eq!(
        (small["ram"].as_u64(), small["vcpus"].as_u64(), small["disk"].as_u64()),
        (Some(2048), Some(1), Some(20))
    );

    let big = cli.json(&["flavor", "create", "--ram", "8192", "--vcpus", "4", "--disk", "80", "m1.big"])?;
    assert_eq!(big["name"], "m1.big");
    let shown = cli.json(&["flavor", "show", big["id"].as_str().unwrap_or_default()])?;
    assert_eq!((shown["ram"].as_u64(), shown["vcpus"].as_u64()), (Some(8192), Some(4)));
    let dup = cli.fails(&["flavor", "create", "--ram", "1", "--vcpus", "1", "--disk", "1", "m1.big"])?;
    assert!(dup.contains("already exists"), "{dup}");

    // Only admins create flavors.
    let user = cloud.member("p1", "alice")?;
    let refused = user.fails(&["flavor", "create", "--ram", "1", "--vcpus", "1", "--disk", "1", "mine"])?;
    assert!(refused.contains("Policy doesn't allow"), "{refused}");
    assert!(user.json(&["flavor", "show", "m1.big"]).is_ok());

    cli.ok(&["flavor", "delete", "m1.big"])?;
    let gone = cli.fails(&["flavor", "show", "m1.big"])?;
    assert!(gone.contains("m1.big"), "{gone}");

    // Versions: no token needed; microversions echoed; too new refused.
    runtime()?.block_on(async {
        let rest = cloud.rest();
        let v = rest.call(Method::GET, "/compute/v2.1", None, None).await?;
        assert_eq!(v.status, StatusCode::OK);
        assert_eq!(v.body["version"]["version"], "2.96");
        assert_eq!(v.body["version"]["min_version"], "2.1");
        let g = rest.call(Method::GET, "/image", None, None).await?;
        assert_eq!(g.status, StatusCode::MULTIPLE_CHOICES);
        let no_token = rest.call(Method::GET, "/compute/v2.1/flavors", None, None).await?;
        assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
        let bad_token = rest.call(Method::GET, "/compute/v2.1/flavors", Some("nonsense"), None).await?;
        assert_eq!(bad_token.status, StatusCode::UNAUTHORIZED);
        assert!(bad_token.body["unauthorized"]["message"].is_string(), "{}", bad_token.body);
        anyhow::Ok(())
    })?;
    Ok(())
}

#[test]
fn openstack_cli_uploads_shows_lists_and_downloads_images() -> anyhow::Result<()> {
    let cloud = Cloud::start()?;
    let cli = &cloud.admin;
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let id = cloud.image(cli, "cirros", &data)?;

    let img = cli.json(&["image", "show", "cirros"])?;
    assert_eq!(img["id"], id.as_str());
    assert_eq!(img["status"], "active");
    assert_eq!(img["size"].as_u64(), Some(5000));
    assert_eq!(img["disk_format"], "raw");
    assert_eq!(img["container_format"], "bare");
    let local = std::env::temp_dir().join(format!("tenet-image-check-{}", std::process::id()));
    std::fs::write(&local, &data)?;
    assert_eq!(img["checksum"].as_str(), Some(hex_digest("md5sum", &local)?.as_str()));
    let shown = cli.json(&["image", "show", &id])?;
    // The CLI shows the hash under "properties", as it does for Glance.
    assert_eq!(shown["properties"]["os_hash_algo"], "sha512", "{shown}");
    assert_eq!(shown["properties"]["os_hash_value"].as_str(), Some(hex_digest("sha512sum", &local)?.as_str()));
    let _ = std::fs::remove_file(&local);

    let list = cli.json(&["image", "list"])?;
    assert!(list.as_array().into_iter().flatten().any(|i| i["Name"] == "cirros" && i["Status"] == "active"), "{list}");

    let saved = std::env::temp_dir().join(format!("tenet-image-saved-{}", std::process::id()));
    cli.ok(&["image", "save", "--file", &saved.display().to_string(), "cirros"])?;
    let back = std::fs::read(&saved)?;
    let _ = std::fs::remove_file(&saved);
    assert_eq!(back, data, "downloaded data differ");

    // Another project does not see a private image; a missing one is reported by name.
    let user = cloud.member("p2", "bob")?;
    let err = user.fails(&["image", "show", &id])?;
    assert!(err.contains("No Image found") || err.contains("could not be found"), "{err}");

    cli.ok(&["image", "delete", "cirros"])?;
    assert!(cli.fails(&["image", "show", &id]).is_ok());
    Ok(())
}

#[test]
fn servers_fail_cleanly_without_hosts_and_reject_bad_input() -> anyhow::Result<()> {
    let cloud = Cloud::start()?;
    let alice = cloud.member("p1", "alice")?;
    alice.json(&["network", "create", "net1"])?;
    alice.json(&["subnet", "create", "--network", "net1", "--subnet-range", "10.1.0.0/24", "sub1"])?;
    let image = cloud.image(&alice, "cirros", b"not really a disk")?;

    // No compute host: ERROR with Nova's fault.
    let out = alice.run(&[
        "server",
        "create",
        "--image",
        "cirros",
        "--flavor",
        "m1.tiny",
        "--network",
        "net1",
        "--wait",
        "vm1",
    ])?;
    assert!(!out.status.success(), "create --wait should fail without hosts");
    let vm = alice.json(&["server", "show", "vm1"])?;
    assert_eq!(vm["status"], "ERROR");
    let fault = vm["fault"].to_string();
    assert!(fault.contains("No valid host was found."), "{vm}");
    let list = alice.json(&["server", "list"])?;
    assert!(list.as_array().into_iter().flatten().any(|s| s["Name"] == "vm1" && s["Status"] == "ERROR"), "{list}");

    // Bad input: unknown image, flavor, network.
    let e = alice.fails(&["server", "create", "--image", "nope", "--flavor", "m1.tiny", "--network", "net1", "x"])?;
    assert!(e.contains("nope"), "{e}");
    let e = alice.fails(&["server", "create", "--image", "cirros", "--flavor", "m9.huge", "--network", "net1", "x"])?;
    assert!(e.contains("m9.huge"), "{e}");
    let bogus = "00000000-0000-4000-8000-000000000000";
    let e = alice.fails(&[
        "server",
        "create",
        "--image",
        "cirros",
        "--flavor",
        "m1.tiny",
        "--nic",
        &format!("net-id={bogus}"),
        "x",
    ])?;
    assert!(e.contains(bogus), "{e}");

    // Malformed bodies are Nova errors, never a crash.
    runtime()?.block_on(async {
        let token = cloud.netapi.rest().password_token("alice", "pw", "p1").await?;
        let rest = cloud.rest();
        for body in [json!({}), json!({"server": {"imageRef": "x"}}), json!({"server": {"name": 5}}), json!([1, 2])] {
            let a = rest.call(Method::POST, "/compute/v2.1/servers", Some(&token), Some(&body)).await?;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.body);
            assert!(a.body["badRequest"]["message"].is_string(), "{}", a.body);
        }
        // The API checks networks itself too (the CLI checked first above).
        let body = json!({"server": {"name": "x", "imageRef": image, "flavorRef": "1", "networks": [{"uuid": bogus}]}});
        let a = rest.call(Method::POST, "/compute/v2.1/servers", Some(&token), Some(&body)).await?;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
        assert_eq!(a.body["badRequest"]["message"], format!("Network {bogus} could not be found."));
        let a = rest
            .call(Method::POST, "/compute/v2.1/servers/x/action", Some(&token), Some(&json!({"os-bogus": null})))
            .await?;
        assert_eq!(a.body["badRequest"]["message"], "There is no such action: os-bogus", "{}", a.body);
        anyhow::Ok(())
    })?;

    // Another project sees nothing of alice's.
    let bob = cloud.member("p2", "bob")?;
    let theirs = bob.json(&["server", "list"])?;
    assert_eq!(theirs.as_array().map(Vec::len), Some(0), "{theirs}");
    let e = bob.fails(&["server", "show", vm["id"].as_str().unwrap_or_default()])?;
    assert!(e.contains("No Server found") || e.contains("could not be found"), "{e}");
    // The admin sees it with --all-projects.
    let all = cloud.admin.json(&["server", "list", "--all-projects"])?;
    assert!(all.as_array().into_iter().flatten().any(|s| s["Name"] == "vm1"), "{all}");

    // A server that never reached a host is deleted at once.
    alice.ok(&["server", "delete", "vm1"])?;
    let left = alice.json(&["server", "list"])?;
    assert_eq!(left.as_array().map(Vec::len), Some(0), "{left}");
    Ok(())
}

/// Sends the report a real agent would.
async fn report(rest: &Rest, token: &str, id: &str, power: Option<&str>, ports: Value) -> anyhow::Result<()> {
    let body = json!({"host": "standin-1", "power": power, "fault": null, "ports": ports});
    rest.expect(StatusCode::NO_CONTENT, Method::PUT, &format!("/internal/v1/servers/{id}"), Some(token), Some(&body))
        .await?;
    Ok(())
}

#[test]
fn stand_in_agent_drives_scheduling_reports_and_actions() -> anyhow::Result<()> {
    let cloud = Cloud::start()?;
    let alice = cloud.member("p1", "alice")?;
    let net = alice.json(&["network", "create", "net1"])?;
    let net_id = net["id"].as_str().unwrap_or_default().to_string();
    alice.json(&["subnet", "create", "--network", "net1", "--subnet-range", "10.1.0.0/24", "sub1"])?;
    cloud.image(&alice, "cirros", b"disk bytes")?;
    // The stand-in agent (not the real one) registers as host standin-1.
    let agent = StandInAgent::start()?;
    let rt = runtime()?;
    let rest = cloud.rest();
    let service = rt.block_on(cloud.netapi.rest().password_token("nova", "novapw", "admin"))?;
    let host = json!({
        "host": "standin-1", "url": agent.url, "driver": "namespace",
        "capacity": {"vcpus": 4, "ram_mb": 4096, "disk_gb": 40},
        "enabled": true, "bridge": "br-int", "datapath_id": 1,
    });
    rt.block_on(rest.expect(StatusCode::NO_CONTENT, Method::POST, "/internal/v1/hosts", Some(&service), Some(&host)))?;
    // A member may not use the internal endpoints.
    let alice_token = rt.block_on(cloud.netapi.rest().password_token("alice", "pw", "p1"))?;
    let refused = rt.block_on(rest.call(Method::POST, "/internal/v1/hosts", Some(&alice_token), Some(&host)))?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let vm =
        alice.json(&["server", "create", "--image", "cirros", "--flavor", "m1.tiny", "--network", "net1", "vm1"])?;
    let id = vm["id"].as_str().unwrap_or_default().to_string();
    assert!(wait_until(Duration::from_secs(10), || agent.received().iter().any(|r| r.path == "/v1/servers")));
    let spawn = agent.received().into_iter().find(|r| r.path == "/v1/servers").map(|r| r.body).unwrap_or_default();
    assert_eq!(spawn["server_id"], id.as_str());
    assert_eq!(spawn["flavor"]["ram_mb"], 512);
    assert_eq!(spawn["nics"][0]["network_id"], net_id.as_str());
    let building = alice.json(&["server", "show", "vm1"])?;
    assert_eq!(building["status"], "BUILD");
    assert_eq!(building["OS-EXT-STS:task_state"], "spawning");

    // Built: ACTIVE with its address under the network's name.
    let ports = json!([{"port_id": "p-1", "network_id": net_id, "mac": "fa:16:3e:00:00:01", "ips": ["10.1.0.5"], "interface": "tap1"}]);
    rt.block_on(report(&rest, &service, &id, Some("running"), ports.clone()))?;
    let active = alice.json(&["server", "show", "vm1"])?;
    assert_eq!(active["status"], "ACTIVE");
    assert_eq!(active["OS-EXT-STS:power_state"], 1, "{active}");
    assert!(
        active["addresses"].to_string().contains("net1") && active["addresses"].to_string().contains("10.1.0.5"),
        "{active}"
    );
    let as_admin = cloud.admin.json(&["server", "show", &id])?;
    assert_eq!(as_admin["OS-EXT-SRV-ATTR:host"], "standin-1");

    // pause -> PAUSED -> unpause -> ACTIVE -> suspend -> SUSPENDED -> resume -> ACTIVE.
    for (action, power, status) in [
        ("pause", "paused", "PAUSED"),
        ("unpause", "running", "ACTIVE"),
        ("suspend", "suspended", "SUSPENDED"),
        ("resume", "running", "ACTIVE"),
    ] {
        alice.ok(&["server", action, "vm1"])?;
        let sent = agent.received().into_iter().rfind(|r| r.path.ends_with("/action")).map(|r| r.body);
        assert_eq!(sent, Some(json!({"action": action})));
        let busy = alice.json(&["server", "show", "vm1"])?;
        assert!(busy["OS-EXT-STS:task_state"].as_str().is_some_and(|t| t.ends_with("ing")), "{busy}");
        rt.block_on(report(&rest, &service, &id, Some(power), ports.clone()))?;
        let after = alice.json(&["server", "show", "vm1"])?;
        assert_eq!(after["status"], status, "after {action}");
        if action == "pause" {
            let again = alice.fails(&["server", "pause", "vm1"])?;
            assert!(again.contains("Cannot 'pause' instance") && again.contains("vm_state paused"), "{again}");
        }
    }

    // delete: deleting until the agent reports the server gone.
    alice.ok(&["server", "delete", "vm1"])?;
    let deleting = alice.json(&["server", "show", &id])?;
    assert_eq!(deleting["OS-EXT-STS:task_state"], "deleting");
    assert!(agent.received().iter().any(|r| r.body == json!({"action": "delete"})));
    rt.block_on(report(&rest, &service, &id, Some("gone"), json!([])))?;
    assert!(alice.fails(&["server", "show", &id]).is_ok());

    // Capacity: m1.medium needs 4096 MB, all the host has; the second one goes to ERROR
    // with the scheduler's reason. (The stand-in reports again first: a host silent for
    // three heartbeats is not scheduled to, and this test can take that long.)
    rt.block_on(rest.expect(StatusCode::NO_CONTENT, Method::POST, "/internal/v1/hosts", Some(&service), Some(&host)))?;
    alice.json(&["server", "create", "--image", "cirros", "--flavor", "m1.medium", "--network", "net1", "a"])?;
    let b =
        alice.json(&["server", "create", "--image", "cirros", "--flavor", "m1.medium", "--network", "net1", "b"])?;
    let bid = b["id"].as_str().unwrap_or_default().to_string();
    assert!(wait_until(Duration::from_secs(10), || {
        alice.json(&["server", "show", &bid]).map(|s| s["status"] == "ERROR").unwrap_or(false)
    }));
    let failed = alice.json(&["server", "show", &bid])?;
    assert!(failed["fault"].to_string().contains("MB RAM free"), "{failed}");
    Ok(())
}

/// A project over its instance quota gets Nova's 403 "Quota exceeded", with the numbers.
#[test]
fn the_instance_quota_is_enforced() -> anyhow::Result<()> {
    let addr = free_addr()?;
    let netapi = NetApi::start_with_catalog(&format!("http://{addr}/compute/v2.1"), &format!("http://{addr}/image"))?;
    let _compute = ComputeApi::start_on_with(&netapi, &addr, &["--max-instances-per-project", "1"])?;
    let admin = netapi.admin_cli()?;
    admin.json(&["network", "create", "q1"])?;
    admin.json(&["subnet", "create", "--network", "q1", "--subnet-range", "10.5.0.0/24", "q1v4"])?;
    let file = std::env::temp_dir().join(format!("tenet-quota-{}", unique_prefix()));
    std::fs::write(&file, b"quota")?;
    let path = file.display().to_string();
    admin.json(&["image", "create", "--file", &path, "--disk-format", "raw", "--container-format", "bare", "qimg"])?;
    let _ = std::fs::remove_file(&file);
    // No hosts: the first server goes to ERROR, but counts against the quota as in Nova.
    let first = admin.run(&["server", "create", "--image", "qimg", "--flavor", "m1.nano", "--network", "q1", "one"])?;
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let err = admin.fails(&["server", "create", "--image", "qimg", "--flavor", "m1.nano", "--network", "q1", "two"])?;
    assert!(err.contains("Quota exceeded for instances"), "{err}");
    Ok(())
}

/// Registers (or heartbeats) a stand-in host.
async fn register(
    rest: &Rest,
    token: &str,
    host: &str,
    url: &str,
    driver: &str,
    enabled: bool,
    shared: &str,
) -> anyhow::Result<()> {
    let body = json!({
        "host": host, "url": url, "driver": driver,
        "capacity": {"vcpus": 4, "ram_mb": 4096, "disk_gb": 40},
        "enabled": enabled, "bridge": format!("br-{host}"), "datapath_id": 1, "shared_storage": shared,
    });
    rest.expect(StatusCode::NO_CONTENT, Method::POST, "/internal/v1/hosts", Some(token), Some(&body)).await?;
    Ok(())
}

/// Sends a source agent's migration report.
/// `update` is (migration id, status, error).
async fn migration_report(
    rest: &Rest,
    token: &str,
    id: &str,
    host: &str,
    (migration, status, error): (&str, &str, Option<&str>),
    ports: Value,
) -> anyhow::Result<()> {
    let body = json!({"host": host, "power": "running", "fault": null, "ports": ports,
        "migration": {"migration_id": migration, "status": status, "error": error}});
    rest.expect(StatusCode::NO_CONTENT, Method::PUT, &format!("/internal/v1/servers/{id}"), Some(token), Some(&body))
        .await?;
    Ok(())
}

/// `openstack server migrate --live-migration` through the real CLI (microversion 2.30):
/// admin only, Nova's 400/409 checks, then the API's half of the migration protocol with
/// STAND-IN agents (the test sends the source agent's reports): the migrate request, the
/// MIGRATING status, progress, completion (the server moves) and failure (it stays, with a
/// fault), and the records through `openstack server migration list`.
#[test]
fn live_migration_is_checked_then_driven_by_the_source_agents_reports() -> anyhow::Result<()> {
    let cloud = Cloud::start()?;
    let admin = &cloud.admin;
    let alice = cloud.member("p1", "alice")?;
    let net = alice.json(&["network", "create", "net1"])?;
    let net_id = net["id"].as_str().unwrap_or_default().to_string();
    alice.json(&["subnet", "create", "--network", "net1", "--subnet-range", "10.1.0.0/24", "sub1"])?;
    cloud.image(&alice, "cirros", b"disk bytes")?;
    let (a, b, c) = (StandInAgent::start()?, StandInAgent::start()?, StandInAgent::start()?);
    let rt = runtime()?;
    let rest = cloud.rest();
    let service = rt.block_on(cloud.netapi.rest().password_token("nova", "novapw", "admin"))?;
    // standin-1 and -2 (namespace), standin-lv (libvirt), standin-off (disabled).
    let hosts = |shared: &str| -> anyhow::Result<()> {
        rt.block_on(async {
            register(&rest, &service, "standin-1", &a.url, "namespace", true, shared).await?;
            register(&rest, &service, "standin-2", &b.url, "namespace", true, shared).await?;
            register(&rest, &service, "standin-lv", &c.url, "libvirt", true, "").await?;
            register(&rest, &service, "standin-off", &c.url, "namespace", false, "").await
        })
    };
    hosts("")?;
    let out = alice.run(&[
        "--os-compute-api-version",
        "2.74",
        "server",
        "create",
        "--image",
        "cirros",
        "--flavor",
        "m1.tiny",
        "--network",
        "net1",
        "vm1",
    ])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let vm = alice.json(&["server", "show", "vm1"])?;
    let id = vm["id"].as_str().unwrap_or_default().to_string();
    assert!(wait_until(Duration::from_secs(10), || a.received().iter().any(|r| r.path == "/v1/servers")));
    let ports = json!([{"port_id": "p-1", "network_id": net_id, "mac": "fa:16:3e:00:00:01", "ips": ["10.1.0.5"], "interface": "tapp-1"}]);
    rt.block_on(report(&rest, &service, &id, Some("running"), ports.clone()))?;

    // Only admins live-migrate (Nova's policy).
    let e = alice.fails(&[
        "--os-compute-api-version",
        "2.30",
        "server",
        "migrate",
        "--live-migration",
        "--host",
        "standin-2",
        "vm1",
    ])?;
    assert!(e.contains("Policy doesn't allow os_compute_api:os-migrate-server:migrate_live"), "{e}");
    // Nova's checks of the destination, each a 400 with its reason.
    for (host, extra, wanted) in [
        ("nowhere", "", "Compute host nowhere could not be found."),
        ("standin-1", "", &format!("Unable to migrate instance ({id}) to current host (standin-1).") as &str),
        ("standin-off", "", "Compute service of standin-off is unavailable at this time"),
        ("standin-lv", "", "Host standin-lv runs the libvirt driver and the instance's host standin-1 runs namespace"),
        ("standin-2", "--shared-migration", "standin-2 is not on shared storage: Shared storage live-migration requires either shared storage or boot-from-volume with no local disks."),
    ] {
        let extra: Vec<&str> = extra.split_whitespace().collect();
        let out = live_migrate(admin, &id, Some(host), &extra)?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(wanted), "--host {host} {extra:?}: {err}");
        assert!(err.contains("BadRequestException: 400"), "--host {host}: {err}");
    }
    assert!(!a.received().iter().any(|r| r.path.ends_with("/migrate")), "nothing reached the agent");
    // Not ACTIVE/PAUSED: 409.
    alice.ok(&["server", "suspend", "vm1"])?;
    rt.block_on(report(&rest, &service, &id, Some("suspended"), ports.clone()))?;
    let out = live_migrate(admin, &id, Some("standin-2"), &[])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("Cannot 'os-migrateLive' instance {id} while it is in vm_state suspended")), "{err}");
    assert!(err.contains("ConflictException: 409"), "{err}");
    alice.ok(&["server", "resume", "vm1"])?;
    rt.block_on(report(&rest, &service, &id, Some("running"), ports.clone()))?;

    // Accepted: a queued migration, the server MIGRATING, the source agent asked.
    hosts("")?;
    let out = live_migrate(admin, &id, Some("standin-2"), &[])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sent = a.received().into_iter().find(|r| r.path == format!("/v1/servers/{id}/migrate")).map(|r| r.body);
    let sent = sent.expect("the source agent got the migrate request");
    assert_eq!(sent["dest_host"], "standin-2");
    assert_eq!(sent["dest_url"], b.url.as_str());
    assert_eq!(sent["kind"], "block", "no shared storage: auto means block migration");
    assert_eq!(sent["power"], "running");
    assert_eq!(sent["ports"][0]["port_id"], "p-1");
    let migration = sent["migration_id"].as_str().unwrap_or_default().to_string();
    let shown = admin.json(&["server", "show", &id])?;
    assert_eq!(
        (shown["status"].as_str(), shown["OS-EXT-STS:task_state"].as_str()),
        (Some("MIGRATING"), Some("migrating"))
    );
    let again = live_migrate(admin, &id, Some("standin-2"), &[])?;
    assert!(String::from_utf8_lossy(&again.stderr).contains("task_state migrating"), "one migration at a time");
    let list = migration_list(admin, &["--server", &id])?;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["Status"], "queued");
    assert_eq!(list[0]["UUID"], migration.as_str());
    assert_eq!(list[0]["Type"], "live-migration");
    assert_eq!(
        (list[0]["Source Compute"].as_str(), list[0]["Dest Compute"].as_str()),
        (Some("standin-1"), Some("standin-2"))
    );
    // Progress, seen through the server's migrations (in progress only).
    rt.block_on(migration_report(&rest, &service, &id, "standin-1", (&migration, "preparing", None), ports.clone()))?;
    rt.block_on(migration_report(&rest, &service, &id, "standin-1", (&migration, "running", None), ports.clone()))?;
    // By UUID: OSC 10.5 lists the server's migrations and picks it (by integer id it swaps
    // the server and migration ids in the URL: /servers/<migration id>/migrations/<server id>).
    let one = admin.json(&["--os-compute-api-version", "2.80", "server", "migration", "show", &id, &migration])?;
    assert_eq!((one["Status"].as_str(), one["Dest Compute"].as_str()), (Some("running"), Some("standin-2")), "{one}");
    // Completed: the server is at the destination, on its new interface.
    let moved = json!([{"port_id": "p-1", "network_id": net_id, "mac": "fa:16:3e:00:00:01", "ips": ["10.1.0.5"], "interface": "tmvp-1"}]);
    rt.block_on(migration_report(&rest, &service, &id, "standin-2", (&migration, "completed", None), moved))?;
    let shown = admin.json(&["server", "show", &id])?;
    assert_eq!((shown["status"].as_str(), shown["OS-EXT-SRV-ATTR:host"].as_str()), (Some("ACTIVE"), Some("standin-2")));
    assert!(shown["OS-EXT-STS:task_state"].is_null(), "{shown}");
    assert!(shown["addresses"].to_string().contains("10.1.0.5"), "{shown}");
    let e = admin.fails(&["--os-compute-api-version", "2.80", "server", "migration", "show", &id, &migration])?;
    assert!(e.contains("is not found"), "{e}");
    let mid = list[0]["Id"].as_u64().unwrap_or_default();
    let admin_token = rt.block_on(cloud.netapi.admin_token())?;
    let done = rt.block_on(rest.call(
        Method::GET,
        &format!("/compute/v2.1/servers/{id}/migrations/{mid}"),
        Some(&admin_token),
        None,
    ))?;
    assert_eq!(done.status, StatusCode::NOT_FOUND);
    assert!(
        done.body["itemNotFound"]["message"].as_str().is_some_and(|m| m.contains("is not in progress")),
        "{}",
        done.body
    );

    // Without --host the scheduler picks among the other hosts of the same driver: standin-1.
    // The source agent fails it: the server stays, ACTIVE, with a fault saying why.
    hosts("")?;
    let out = live_migrate(admin, &id, None, &["--block-migration"])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sent = b.received().into_iter().find(|r| r.path == format!("/v1/servers/{id}/migrate")).map(|r| r.body);
    let sent = sent.expect("the new source (standin-2) got the migrate request");
    assert_eq!(sent["dest_host"], "standin-1");
    let second = sent["migration_id"].as_str().unwrap_or_default().to_string();
    rt.block_on(migration_report(
        &rest,
        &service,
        &id,
        "standin-2",
        (&second, "error", Some("no room for it")),
        json!([]),
    ))?;
    let shown = admin.json(&["server", "show", &id])?;
    assert_eq!((shown["status"].as_str(), shown["OS-EXT-SRV-ATTR:host"].as_str()), (Some("ACTIVE"), Some("standin-2")));
    assert_eq!(shown["fault"]["message"], "Live migration to standin-1 failed: no room for it", "{shown}");
    assert_eq!(shown["fault"]["code"], 500);
    let statuses: Vec<String> =
        migration_list(admin, &[])?.iter().map(|m| m["Status"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(statuses, ["error", "completed"], "newest first");
    assert_eq!(migration_list(admin, &["--status", "error"])?.len(), 1);
    assert_eq!(migration_list(admin, &["--host", "standin-1"])?.len(), 2);
    assert_eq!(migration_list(admin, &["--type", "live-migration", "--server", &id])?.len(), 2);
    let e = alice.fails(&["server", "migration", "list"])?;
    assert!(e.contains("Policy doesn't allow"), "{e}");

    // Shared storage: "auto" is a live migration; --block-migration is refused.
    hosts("nfs1")?;
    let out = live_migrate(admin, &id, Some("standin-1"), &["--block-migration"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("standin-1 is not on local storage: Block migration can not be used with shared storage."),
        "{err}"
    );
    let out = live_migrate(admin, &id, Some("standin-1"), &[])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sent = b.received().into_iter().rfind(|r| r.path.ends_with("/migrate")).map(|r| r.body);
    assert_eq!(sent.map(|s| s["kind"].clone()), Some(json!("live")));
    Ok(())
}
