//! netapi's gRPC API end to end: a real `tenet-netapi serve` process (SQLite, and
//! PostgreSQL for the feed), the generated clients, and the REST API to cross-check.
//!
//! - `PortRegistry`: a registered port shows through REST with its binding; bindings move
//!   (UpdatePortBinding + ActivateBinding) and go; ports are adopted and deleted.
//! - `StateFeed`: a snapshot then live changes in revision order; reconnecting from the
//!   last revision seen loses and repeats nothing while writers keep writing.
//! - Calls without a valid token, or by a role other than admin/service, are refused.
//!
//! PostgreSQL variants need the server `labs/setup-host.sh` sets up (or `TENET_TEST_POSTGRES`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};
use tenet_netapi::client::tonic::{Code, Streaming};
use tenet_netapi::client::{connect_grpc, Method, StatusCode};
use tenet_netapi::grpc::pb::{self, watch_event::Event};
use tenet_tests::netapi::NetApi;

const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// Admin token, a service user's token, and a network with a /16 subnet.
struct Setup {
    admin: String,
    service: String,
    net: String,
    subnet: String,
}

async fn setup(api: &NetApi) -> anyhow::Result<Setup> {
    let admin = api.admin_token().await?;
    let service = api.user_with_role(&admin, "nova", "service").await?;
    let (net, subnet) = api.network_with_subnet(&admin, "net1", "10.0.0.0/16").await?;
    Ok(Setup { admin, service, net, subnet })
}

fn binding(host: &str, dpid: u64, ifname: &str) -> Option<pb::BindingSpec> {
    Some(pb::BindingSpec {
        host: host.into(),
        datapath_id: dpid,
        interface_name: ifname.into(),
        vnic_type: String::new(),
    })
}

fn status_of(port: &pb::Port, host: &str) -> Option<pb::BindingStatus> {
    port.bindings.iter().find(|b| b.host == host).map(|b| b.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_port_shows_through_rest_with_its_binding() -> anyhow::Result<()> {
    let api = NetApi::start()?;
    let s = setup(&api).await?;
    let (mut registry, _) = connect_grpc(&api.grpc_url, &s.service).await?;
    let reply = registry
        .register_port(pb::RegisterPortRequest {
            network_id: s.net.clone(),
            device_id: "vm-1".into(),
            device_owner: "compute:nova".into(),
            binding: binding("compute1", 0xabc, "tap-vm1"),
            ..Default::default()
        })
        .await?
        .into_inner();
    let port = reply.port.context("reply without port")?;
    ensure!(port.mac_address.starts_with("fa:16:3e:"), "allocated MAC: {}", port.mac_address);
    ensure!(port.fixed_ips.len() == 1 && port.fixed_ips[0].subnet_id == s.subnet, "{:?}", port.fixed_ips);
    ensure!(reply.revision > 0 && port.revision_number == reply.revision);
    ensure!(port.bindings.len() == 1, "{:?}", port.bindings);
    let b = &port.bindings[0];
    ensure!(b.host == "compute1" && b.datapath_id == 0xabc && b.interface_name == "tap-vm1");
    ensure!(b.status() == pb::BindingStatus::Active);

    // Through REST, the openstack way.
    let rest = api.rest();
    let shown =
        rest.expect(StatusCode::OK, Method::GET, &format!("/v2.0/ports/{}", port.id), Some(&s.admin), None).await?;
    let p = &shown["port"];
    ensure!(p["binding:host_id"] == json!("compute1"), "{p}");
    ensure!(p["mac_address"] == json!(port.mac_address), "{p}");
    ensure!(p["device_id"] == json!("vm-1") && p["device_owner"] == json!("compute:nova"), "{p}");
    ensure!(p["fixed_ips"][0]["ip_address"] == json!(port.fixed_ips[0].ip_address), "{p}");
    let bindings = rest
        .expect(StatusCode::OK, Method::GET, &format!("/v2.0/ports/{}/bindings", port.id), Some(&s.admin), None)
        .await?;
    ensure!(bindings["bindings"][0]["datapath_id"] == json!("0000000000000abc"), "{bindings}");
    ensure!(bindings["bindings"][0]["interface_name"] == json!("tap-vm1"), "{bindings}");

    // A port created through REST is adopted: same id and MAC, the binding becomes active.
    let created = rest
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/v2.0/ports",
            Some(&s.admin),
            Some(&json!({"port": {"network_id": s.net, "name": "pre-made"}})),
        )
        .await?;
    let pre_id = created["port"]["id"].as_str().context("id")?.to_string();
    let pre_mac = created["port"]["mac_address"].as_str().context("mac")?.to_string();
    let adopt = pb::RegisterPortRequest {
        network_id: s.net.clone(),
        port_id: pre_id.clone(),
        mac_address: pre_mac.to_uppercase(),
        device_id: "vm-2".into(),
        binding: binding("compute2", 7, "tap-vm2"),
        ..Default::default()
    };
    let adopted = registry.register_port(adopt.clone()).await?.into_inner().port.context("port")?;
    ensure!(adopted.id == pre_id && adopted.mac_address == pre_mac && adopted.device_id == "vm-2");
    ensure!(status_of(&adopted, "compute2") == Some(pb::BindingStatus::Active));
    ensure!(adopted.fixed_ips == created_fixed_ips(&created), "addresses kept");
    // Registering again is idempotent.
    let again = registry.register_port(adopt.clone()).await?.into_inner().port.context("port")?;
    ensure!(again.bindings == adopted.bindings && again.fixed_ips == adopted.fixed_ips);
    // Another MAC than the port's is refused.
    let err = registry
        .register_port(pb::RegisterPortRequest { mac_address: "fa:16:3e:00:00:01".into(), ..adopt })
        .await
        .err()
        .context("a MAC mismatch must fail")?;
    ensure!(err.code() == Code::FailedPrecondition, "{err:?}");

    // A new port with a chosen id, MAC and address.
    let id = "6f1c8a52-8a3c-4a8e-9a55-3d3f3b0c1d2e";
    let chosen = registry
        .register_port(pb::RegisterPortRequest {
            network_id: s.net.clone(),
            port_id: id.into(),
            mac_address: "fa:16:3e:12:34:56".into(),
            fixed_ips: vec![pb::FixedIp { subnet_id: String::new(), ip_address: "10.0.7.7".into() }],
            binding: binding("compute1", 0xabc, "tap-vm3"),
            ..Default::default()
        })
        .await?
        .into_inner()
        .port
        .context("port")?;
    ensure!(chosen.id == id && chosen.mac_address == "fa:16:3e:12:34:56");
    ensure!(chosen.fixed_ips[0].ip_address == "10.0.7.7");
    let taken = registry
        .register_port(pb::RegisterPortRequest {
            network_id: s.net.clone(),
            fixed_ips: vec![pb::FixedIp { subnet_id: s.subnet.clone(), ip_address: "10.0.7.7".into() }],
            ..Default::default()
        })
        .await
        .err()
        .context("a taken address must fail")?;
    ensure!(taken.code() == Code::AlreadyExists, "{taken:?}");
    let missing = registry
        .register_port(pb::RegisterPortRequest { network_id: "no-such-net".into(), ..Default::default() })
        .await
        .err()
        .context("an unknown network must fail")?;
    ensure!(missing.code() == Code::NotFound, "{missing:?}");
    let report = api.check()?;
    ensure!(report["problems"] == json!([]), "database inconsistent: {report}");
    Ok(())
}

fn created_fixed_ips(created: &Value) -> Vec<pb::FixedIp> {
    created["port"]["fixed_ips"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|ip| pb::FixedIp {
                    subnet_id: ip["subnet_id"].as_str().unwrap_or_default().into(),
                    ip_address: ip["ip_address"].as_str().unwrap_or_default().into(),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_update_and_activation_flip_statuses() -> anyhow::Result<()> {
    let api = NetApi::start()?;
    let s = setup(&api).await?;
    let (mut registry, _) = connect_grpc(&api.grpc_url, &s.service).await?;
    let port = registry
        .register_port(pb::RegisterPortRequest {
            network_id: s.net.clone(),
            binding: binding("src", 1, "tap-a"),
            ..Default::default()
        })
        .await?
        .into_inner()
        .port
        .context("port")?;
    let id = port.id.clone();
    // Migration: an inactive binding on the destination first.
    let r = registry
        .update_port_binding(pb::UpdatePortBindingRequest { port_id: id.clone(), binding: binding("dst", 2, "tap-b") })
        .await?
        .into_inner();
    let p = r.port.context("port")?;
    ensure!(status_of(&p, "src") == Some(pb::BindingStatus::Active), "{:?}", p.bindings);
    ensure!(status_of(&p, "dst") == Some(pb::BindingStatus::Inactive), "{:?}", p.bindings);
    let dup = registry
        .update_port_binding(pb::UpdatePortBindingRequest { port_id: id.clone(), binding: binding("dst", 2, "tap-b") })
        .await
        .err()
        .context("a second binding on one host must fail")?;
    ensure!(dup.code() == Code::AlreadyExists, "{dup:?}");
    // Then activation flips both.
    let r = registry
        .activate_binding(pb::ActivateBindingRequest { port_id: id.clone(), host: "dst".into() })
        .await?
        .into_inner();
    let p = r.port.context("port")?;
    ensure!(status_of(&p, "src") == Some(pb::BindingStatus::Inactive), "{:?}", p.bindings);
    ensure!(status_of(&p, "dst") == Some(pb::BindingStatus::Active), "{:?}", p.bindings);
    let dst = p.bindings.iter().find(|b| b.host == "dst").context("dst binding")?;
    ensure!(dst.datapath_id == 2 && dst.interface_name == "tap-b");
    let rest = api.rest();
    let shown = rest.expect(StatusCode::OK, Method::GET, &format!("/v2.0/ports/{id}"), Some(&s.admin), None).await?;
    ensure!(shown["port"]["binding:host_id"] == json!("dst"), "{shown}");
    let again = registry
        .activate_binding(pb::ActivateBindingRequest { port_id: id.clone(), host: "dst".into() })
        .await
        .err()
        .context("activating the active binding must fail")?;
    ensure!(again.code() == Code::FailedPrecondition, "{again:?}");
    let none = registry
        .activate_binding(pb::ActivateBindingRequest { port_id: id.clone(), host: "nowhere".into() })
        .await
        .err()
        .context("activating a missing binding must fail")?;
    ensure!(none.code() == Code::NotFound, "{none:?}");
    // The source binding goes once migrated.
    let p = registry
        .delete_port_binding(pb::DeletePortBindingRequest { port_id: id.clone(), host: "src".into() })
        .await?
        .into_inner()
        .port
        .context("port")?;
    ensure!(p.bindings.len() == 1 && p.bindings[0].host == "dst", "{:?}", p.bindings);
    // And the port.
    let deleted = registry.delete_port(pb::DeletePortRequest { port_id: id.clone() }).await?.into_inner();
    ensure!(deleted.revision > r.revision);
    let gone = rest.call(Method::GET, &format!("/v2.0/ports/{id}"), Some(&s.admin), None).await?;
    ensure!(gone.status == StatusCode::NOT_FOUND, "{:?}", gone.status);
    let twice = registry.delete_port(pb::DeletePortRequest { port_id: id }).await.err().context("twice")?;
    ensure!(twice.code() == Code::NotFound, "{twice:?}");
    let report = api.check()?;
    ensure!(report["problems"] == json!([]), "database inconsistent: {report}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_admin_or_service_are_refused() -> anyhow::Result<()> {
    let api = NetApi::start()?;
    let s = setup(&api).await?;
    let member = api.user_with_role(&s.admin, "alice", "member").await?;
    let reader = api.user_with_role(&s.admin, "rita", "reader").await?;
    let req = || pb::RegisterPortRequest { network_id: s.net.clone(), ..Default::default() };

    // No token at all: a raw client without the interceptor.
    let channel =
        tenet_netapi::client::tonic::transport::Endpoint::from_shared(api.grpc_url.clone())?.connect().await?;
    let mut bare = pb::port_registry_client::PortRegistryClient::new(channel.clone());
    let err = bare.register_port(req()).await.err().context("no token must fail")?;
    ensure!(err.code() == Code::Unauthenticated, "{err:?}");
    let mut bare_feed = pb::state_feed_client::StateFeedClient::new(channel);
    let err = bare_feed.watch_state(pb::WatchRequest { from_revision: 0 }).await.err().context("no token")?;
    ensure!(err.code() == Code::Unauthenticated, "{err:?}");

    let (mut bogus, mut bogus_feed) = connect_grpc(&api.grpc_url, "not-a-token").await?;
    let err = bogus.register_port(req()).await.err().context("a bogus token must fail")?;
    ensure!(err.code() == Code::Unauthenticated, "{err:?}");
    let err = bogus_feed.watch_state(pb::WatchRequest { from_revision: 0 }).await.err().context("bogus")?;
    ensure!(err.code() == Code::Unauthenticated, "{err:?}");

    for token in [&member, &reader] {
        let (mut registry, mut feed) = connect_grpc(&api.grpc_url, token).await?;
        let err = registry.register_port(req()).await.err().context("member/reader must be refused")?;
        ensure!(err.code() == Code::PermissionDenied, "{err:?}");
        let err = feed.watch_state(pb::WatchRequest { from_revision: 0 }).await.err().context("feed")?;
        ensure!(err.code() == Code::PermissionDenied, "{err:?}");
    }
    // The service user may, and through REST it reads but cannot write.
    let (mut registry, _) = connect_grpc(&api.grpc_url, &s.service).await?;
    registry.register_port(req()).await?;
    let rest = api.rest();
    let write =
        rest.call(Method::POST, "/v2.0/networks", Some(&s.service), Some(&json!({"network": {"name": "x"}}))).await?;
    ensure!(write.status == StatusCode::FORBIDDEN, "service wrote through REST: {:?}", write.status);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The state feed.

async fn next_event(stream: &mut Streaming<pb::WatchEvent>) -> anyhow::Result<Event> {
    match tokio::time::timeout(EVENT_TIMEOUT, stream.message()).await {
        Err(_) => bail!("no feed event within {EVENT_TIMEOUT:?}"),
        Ok(Err(status)) => bail!("feed failed: {status:?}"),
        Ok(Ok(None)) => bail!("feed ended"),
        Ok(Ok(Some(pb::WatchEvent { event: Some(e) }))) => Ok(e),
        Ok(Ok(Some(_))) => bail!("empty feed event"),
    }
}

/// Reads a whole snapshot: its revision and objects.
async fn read_snapshot(stream: &mut Streaming<pb::WatchEvent>) -> anyhow::Result<(i64, Vec<pb::StateObject>)> {
    let Event::SnapshotBegin(begin) = next_event(stream).await? else {
        bail!("the feed did not start with a snapshot")
    };
    let mut objects = Vec::new();
    loop {
        match next_event(stream).await? {
            Event::SnapshotObjects(chunk) => objects.extend(chunk.objects),
            Event::SnapshotEnd(end) => {
                ensure!(
                    end.revision == begin.revision,
                    "snapshot begins at {} ends at {}",
                    begin.revision,
                    end.revision
                );
                ensure!(
                    end.count as usize == objects.len(),
                    "snapshot count {} for {} objects",
                    end.count,
                    objects.len()
                );
                return Ok((end.revision, objects));
            }
            other => bail!("unexpected event inside a snapshot: {other:?}"),
        }
    }
}

async fn next_changes(stream: &mut Streaming<pb::WatchEvent>) -> anyhow::Result<pb::RevisionChanges> {
    match next_event(stream).await? {
        Event::Changes(c) => Ok(c),
        other => bail!("expected changes, got {other:?}"),
    }
}

fn json_of(o: &str) -> anyhow::Result<Value> {
    serde_json::from_str(o).with_context(|| format!("feed JSON {o:?}"))
}

async fn snapshot_then_live_changes(api: NetApi) -> anyhow::Result<()> {
    let s = setup(&api).await?;
    let (mut registry, mut feed) = connect_grpc(&api.grpc_url, &s.service).await?;
    let first = registry
        .register_port(pb::RegisterPortRequest {
            network_id: s.net.clone(),
            binding: binding("compute1", 0x1f, "tap0"),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut stream = feed.watch_state(pb::WatchRequest { from_revision: 0 }).await?.into_inner();
    let (rev, objects) = read_snapshot(&mut stream).await?;
    ensure!(rev == first.revision, "snapshot at {rev}, last write at {}", first.revision);
    let by_kind = |k: &str| objects.iter().filter(|o| o.kind == k).collect::<Vec<_>>();
    let nets = by_kind("network");
    ensure!(nets.len() == 1 && nets[0].id == s.net, "{nets:?}");
    let net = json_of(&nets[0].json)?;
    ensure!(net["provider:segmentation_id"].as_i64().is_some_and(|v| (1..=3999).contains(&v)), "{net}");
    let subnets = by_kind("subnet");
    ensure!(subnets.len() == 1 && json_of(&subnets[0].json)?["cidr"] == json!("10.0.0.0/16"));
    let ports = by_kind("port");
    ensure!(ports.len() == 1 && ports[0].id == first.port.as_ref().map(|p| p.id.clone()).unwrap_or_default());
    let port = json_of(&ports[0].json)?;
    ensure!(
        port["port_security_enabled"] == json!(true)
            && port["security_groups"].as_array().is_some_and(|g| g.len() == 1)
    );
    let bindings = by_kind("port_binding");
    ensure!(bindings.len() == 1, "{bindings:?}");
    let b = json_of(&bindings[0].json)?;
    ensure!(
        b["host"] == json!("compute1")
            && b["datapath_id"] == json!("000000000000001f")
            && b["status"] == json!("ACTIVE"),
        "{b}"
    );
    ensure!(b["interface_name"] == json!("tap0") && b["port_id"] == port["id"], "{b}");
    ensure!(!by_kind("security_group").is_empty() && by_kind("security_group_rule").len() >= 4);
    // Object order: what is referred to comes first.
    let pos = |k: &str| objects.iter().position(|o| o.kind == k).unwrap_or(usize::MAX);
    ensure!(pos("network") < pos("subnet") && pos("subnet") < pos("port") && pos("port") < pos("port_binding"));

    // Live: a REST write and a gRPC write, in order.
    let rest = api.rest();
    let created = rest
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/v2.0/ports",
            Some(&s.admin),
            Some(&json!({"port": {"network_id": s.net, "name": "live"}})),
        )
        .await?;
    let c1 = next_changes(&mut stream).await?;
    ensure!(c1.revision == rev + 1, "first live revision {} after snapshot {rev}", c1.revision);
    ensure!(c1
        .changes
        .iter()
        .any(|c| c.kind == "port" && c.op == "put" && Some(c.id.as_str()) == created["port"]["id"].as_str()));
    ensure!(c1.changes.iter().all(|c| c.revision == c1.revision));
    let seqs: Vec<i64> = c1.changes.iter().map(|c| c.seq).collect();
    ensure!(seqs.windows(2).all(|w| w[0] < w[1]), "seq order {seqs:?}");
    let deleted = registry
        .delete_port(pb::DeletePortRequest { port_id: first.port.map(|p| p.id).unwrap_or_default() })
        .await?
        .into_inner();
    let c2 = next_changes(&mut stream).await?;
    ensure!(c2.revision == deleted.revision && c2.revision == c1.revision + 1);
    let kinds: BTreeSet<(String, String)> = c2.changes.iter().map(|c| (c.kind.clone(), c.op.clone())).collect();
    ensure!(
        kinds.contains(&("port".into(), "delete".into())) && kinds.contains(&("port_binding".into(), "delete".into())),
        "{kinds:?}"
    );

    // Resuming from a revision gives no snapshot, only what follows it.
    let mut resumed = feed.watch_state(pb::WatchRequest { from_revision: rev }).await?.into_inner();
    ensure!(next_changes(&mut resumed).await?.revision == c1.revision);
    ensure!(next_changes(&mut resumed).await?.revision == c2.revision);
    // A revision from the future (a replaced database) gets a snapshot.
    let mut future = feed.watch_state(pb::WatchRequest { from_revision: c2.revision + 1000 }).await?.into_inner();
    let (frev, _) = read_snapshot(&mut future).await?;
    ensure!(frev == c2.revision);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_state_sends_a_snapshot_then_live_changes_in_order() -> anyhow::Result<()> {
    snapshot_then_live_changes(NetApi::start()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_state_sends_a_snapshot_then_live_changes_in_order_postgres() -> anyhow::Result<()> {
    snapshot_then_live_changes(NetApi::start_postgres()?).await
}

/// Writers keep creating ports (REST and gRPC) while a watcher reads the feed, disconnecting
/// every few revisions and resuming from the last one it saw; now and then another stream
/// takes a snapshot. At the end the watcher has seen every revision after its first snapshot
/// exactly once, and every snapshot held exactly the ports committed at or below its revision.
async fn resume_under_concurrent_writes(api: NetApi) -> anyhow::Result<()> {
    let s = setup(&api).await?;
    let (_, mut feed) = connect_grpc(&api.grpc_url, &s.service).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..3 {
        let (stop, url, grpc, admin, service, net) =
            (stop.clone(), api.url.clone(), api.grpc_url.clone(), s.admin.clone(), s.service.clone(), s.net.clone());
        writers.push(tokio::spawn(async move {
            let rest = tenet_netapi::client::Rest::new(&url);
            let (mut registry, _) = connect_grpc(&grpc, &service).await?;
            let mut acked: Vec<(String, i64)> = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                if w == 2 {
                    let r = registry
                        .register_port(pb::RegisterPortRequest {
                            network_id: net.clone(),
                            binding: binding(&format!("h{n}"), n, &format!("tap{n}")),
                            ..Default::default()
                        })
                        .await?
                        .into_inner();
                    acked.push((r.port.map(|p| p.id).unwrap_or_default(), r.revision));
                } else {
                    let body = json!({"port": {"network_id": net, "name": format!("w{w}-{n}")}});
                    let p = rest
                        .expect(StatusCode::CREATED, Method::POST, "/v2.0/ports", Some(&admin), Some(&body))
                        .await?;
                    let id = p["port"]["id"].as_str().unwrap_or_default().to_string();
                    acked.push((id, p["port"]["revision_number"].as_i64().unwrap_or(0)));
                }
            }
            Ok::<_, anyhow::Error>(acked)
        }));
    }

    let mut seen: Vec<i64> = Vec::new();
    let mut snapshots: Vec<(i64, BTreeSet<String>)> = Vec::new();
    let mut ports_at: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut last = 0;
    let started = Instant::now();
    let mut round = 0;
    while started.elapsed() < Duration::from_secs(6) {
        round += 1;
        let mut stream = feed.watch_state(pb::WatchRequest { from_revision: last }).await?.into_inner();
        if last == 0 {
            let (rev, objects) = read_snapshot(&mut stream).await?;
            snapshots.push((rev, objects.iter().filter(|o| o.kind == "port").map(|o| o.id.clone()).collect()));
            last = rev;
        }
        for _ in 0..(3 + round % 5) {
            let c = next_changes(&mut stream).await?;
            // Every writer's revision logs a port, so the revisions are contiguous.
            ensure!(c.revision == last + 1, "revision {} after {last}: a gap, a repeat or out of order", c.revision);
            for ch in c.changes.iter().filter(|ch| ch.kind == "port" && ch.op == "put") {
                ports_at.entry(c.revision).or_default().push(ch.id.clone());
            }
            seen.push(c.revision);
            last = c.revision;
        }
        drop(stream);
        if round % 3 == 0 {
            // A fresh snapshot now and then, taken while the writers write.
            let mut other = feed.watch_state(pb::WatchRequest { from_revision: 0 }).await?.into_inner();
            let (rev, objects) = read_snapshot(&mut other).await?;
            snapshots.push((rev, objects.iter().filter(|o| o.kind == "port").map(|o| o.id.clone()).collect()));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut acked: HashMap<String, i64> = HashMap::new();
    for w in writers {
        acked.extend(w.await??);
    }
    let final_rev = acked.values().copied().max().context("no writes")?;
    // Catch up to the end.
    let mut stream = feed.watch_state(pb::WatchRequest { from_revision: last }).await?.into_inner();
    while last < final_rev {
        let c = next_changes(&mut stream).await?;
        ensure!(c.revision == last + 1, "revision {} after {last}", c.revision);
        for ch in c.changes.iter().filter(|ch| ch.kind == "port" && ch.op == "put") {
            ports_at.entry(c.revision).or_default().push(ch.id.clone());
        }
        seen.push(c.revision);
        last = c.revision;
    }
    ensure!(last == final_rev, "feed ended at {last}, writes at {final_rev}");

    // Every revision after the first snapshot exactly once.
    let first_snapshot = snapshots.first().map(|(r, _)| *r).context("no snapshot")?;
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    ensure!(unique.len() == seen.len(), "duplicated revisions in {seen:?}");
    let expected: BTreeSet<i64> = (first_snapshot + 1..=final_rev).collect();
    ensure!(
        unique == expected,
        "gap or extra: missing {:?}, extra {:?}",
        expected.difference(&unique).collect::<Vec<_>>(),
        unique.difference(&expected).collect::<Vec<_>>()
    );
    // Every acknowledged port came through the feed (in the first snapshot, or as a change at the
    // revision its write answered).
    let first_ports = &snapshots[0].1;
    for (id, rev) in &acked {
        let fed = if *rev <= first_snapshot {
            first_ports.contains(id)
        } else {
            ports_at.get(rev).is_some_and(|ids| ids.contains(id))
        };
        ensure!(fed, "port {id} of revision {rev} not in the feed");
    }
    // Each snapshot held exactly the acknowledged ports at or below its revision.
    for (rev, ports) in &snapshots {
        let want: BTreeSet<String> = acked.iter().filter(|(_, r)| **r <= *rev).map(|(id, _)| id.clone()).collect();
        ensure!(ports == &want, "snapshot at {rev}: {} ports, {} acknowledged at or below it", ports.len(), want.len());
    }
    eprintln!(
        "feed: {} revisions, {} rounds, {} snapshots, {} ports acknowledged",
        seen.len(),
        round,
        snapshots.len(),
        acked.len()
    );
    ensure!(acked.len() > 50, "the writers wrote too little to test anything: {}", acked.len());
    let report = api.check()?;
    ensure!(report["problems"] == json!([]), "database inconsistent: {report}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_the_feed_loses_and_repeats_nothing_under_concurrent_writes() -> anyhow::Result<()> {
    resume_under_concurrent_writes(NetApi::start()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_the_feed_loses_and_repeats_nothing_under_concurrent_writes_postgres() -> anyhow::Result<()> {
    resume_under_concurrent_writes(NetApi::start_postgres()?).await
}
