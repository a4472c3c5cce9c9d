//! The change feed's store side and the consistency check, on SQLite and PostgreSQL, with
//! the REST and gRPC servers in-process on ephemeral ports:
//!
//! - `changes_after` hands out whole revisions;
//! - a feed client resuming from a revision the log no longer holds (compacted) gets a
//!   snapshot; one resuming above the floor gets only the changes;
//! - `check` passes on a database the API wrote and catches half-written state.

use std::time::Duration;

use serde_json::json;
use tenet_netapi::check::check;
use tenet_netapi::client::{connect_grpc, Method, Rest, StatusCode};
use tenet_netapi::grpc::pb::{self, watch_event::Event};
use tenet_netapi::grpc::serve_grpc;
use tenet_netapi::identity::bootstrap;
use tenet_netapi::{serve, Config, Store};
use tokio::sync::watch;

mod common;

use common::Db;

/// REST and gRPC servers on one store, stopped on drop.
struct Servers {
    store: Store,
    rest: Rest,
    grpc: String,
    stop: watch::Sender<bool>,
    _db: Db,
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn start(db: Db) -> Servers {
    let store = Store::open(&db.url).await.expect("open store");
    bootstrap(&store, "admin", "admin", "adminpw").await.expect("bootstrap");
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind http");
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind grpc");
    let url = format!("http://{}", http.local_addr().expect("addr"));
    let grpc_url = format!("http://{}", grpc.local_addr().expect("addr"));
    let (stop, stopped) = watch::channel(false);
    let (s1, s2) = (store.clone(), store.clone());
    let mut rest_stop = stopped.clone();
    let config = Config::new(&url);
    tokio::spawn(async move {
        let _ = serve(http, s1, config, async move {
            let _ = rest_stop.wait_for(|s| *s).await;
        })
        .await;
    });
    tokio::spawn(serve_grpc(grpc, s2, stopped));
    Servers { store, rest: Rest::new(&url), grpc: grpc_url, stop, _db: db }
}

async fn admin(s: &Servers) -> String {
    s.rest.password_token("admin", "adminpw", "admin").await.expect("admin token")
}

async fn network(s: &Servers, token: &str) -> String {
    let net = s
        .rest
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/v2.0/networks",
            Some(token),
            Some(&json!({"network": {"name": "n"}})),
        )
        .await
        .expect("network");
    let id = net["network"]["id"].as_str().expect("id").to_string();
    s.rest
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/v2.0/subnets",
            Some(token),
            Some(&json!({"subnet": {"network_id": id, "cidr": "10.1.0.0/24", "ip_version": 4}})),
        )
        .await
        .expect("subnet");
    id
}

async fn port(s: &Servers, token: &str, net: &str) -> i64 {
    let p = s
        .rest
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/v2.0/ports",
            Some(token),
            Some(&json!({"port": {"network_id": net}})),
        )
        .await
        .expect("port");
    p["port"]["revision_number"].as_i64().expect("revision")
}

async fn next(stream: &mut tonic::Streaming<pb::WatchEvent>) -> Event {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a feed event in time")
        .expect("feed ok")
        .expect("feed open")
        .event
        .expect("event")
}

async fn compacted_log_gives_a_snapshot(db: Db) {
    let s = start(db).await;
    let t = admin(&s).await;
    let net = network(&s, &t).await;
    let mut revs = Vec::new();
    for _ in 0..4 {
        revs.push(port(&s, &t, &net).await);
    }
    // Whole revisions: a limit of one row still returns the whole first revision after `revs[0] - 1`.
    let first = s.store.changes_after(revs[0] - 1, 1).await.expect("changes");
    assert!(first.len() > 1, "the first port's revision also logs its default group: {first:?}");
    assert!(first.iter().all(|c| c.revision == revs[0]));
    let two = s.store.changes_after(revs[0], 2).await.expect("changes");
    assert!(two.iter().all(|c| c.revision == revs[1]), "a batch ends on a revision boundary: {two:?}");

    let removed = s.store.compact_changes(revs[1]).await.expect("compact");
    assert!(removed > 0);
    assert_eq!(s.store.log_floor().await.expect("floor"), revs[1]);
    let (_, mut feed) = connect_grpc(&s.grpc, &t).await.expect("grpc");
    // Behind the floor: a snapshot, then what follows it.
    let mut behind = feed.watch_state(pb::WatchRequest { from_revision: revs[0] }).await.expect("watch").into_inner();
    match next(&mut behind).await {
        Event::SnapshotBegin(b) => assert_eq!(b.revision, revs[3]),
        other => panic!("expected a snapshot, got {other:?}"),
    }
    // At the floor: only the changes.
    let mut at = feed.watch_state(pb::WatchRequest { from_revision: revs[1] }).await.expect("watch").into_inner();
    for want in &revs[2..] {
        match next(&mut at).await {
            Event::Changes(c) => assert_eq!(c.revision, *want),
            other => panic!("expected changes, got {other:?}"),
        }
    }
    let report = check(&s.store).await.expect("check");
    assert!(report.is_consistent(), "{:?}", report.problems);
}

async fn check_finds_half_written_state(db: Db) {
    let s = start(db).await;
    let t = admin(&s).await;
    let net = network(&s, &t).await;
    port(&s, &t, &net).await;
    let report = check(&s.store).await.expect("check");
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert_eq!(report.revision, report.max_change_revision);
    // A port without its address allocation, as a torn write would leave it.
    sqlx::query("DELETE FROM ip_allocations").execute(s.store.pool()).await.expect("delete");
    // And a logged object that is not there.
    sqlx::query("DELETE FROM security_group_rules WHERE id IN (SELECT id FROM security_group_rules LIMIT 1)")
        .execute(s.store.pool())
        .await
        .expect("delete");
    let report = check(&s.store).await.expect("check");
    let text = report.problems.join("\n");
    assert!(text.contains("address allocations differ"), "{text}");
    assert!(text.contains("does not exist"), "{text}");
}

macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Db::sqlite()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::Db::postgres().await).await;
            }
        }
    };
}

on_both!(compacted_log_gives_a_snapshot);
on_both!(check_finds_half_written_state);
