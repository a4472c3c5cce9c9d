//! Crash safety of netapi: 8 clients create ports through REST as fast as they can, the
//! server is killed with SIGKILL (`kill -9`) in the middle of the burst, and restarted on
//! the same database. Then:
//!
//! - every port whose creation was acknowledged (201 received) exists, with its address;
//! - nothing was half written: `tenet-netapi check` finds every object matching its last
//!   logged change and vice versa, every port's address allocations, security groups and
//!   bindings matching its body (see `netapi/src/check.rs`);
//! - the revision equals the highest logged revision;
//! - the server works on: new writes succeed and continue the revision sequence.
//!
//! Three kill rounds per database, on SQLite (WAL, synchronous=NORMAL: a commit is in the
//! OS page cache when COMMIT returns, which a killed process cannot lose) and PostgreSQL.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context};
use serde_json::{json, Value};
use tenet_netapi::client::{Method, Rest, StatusCode};
use tenet_tests::netapi::NetApi;

const CLIENTS: usize = 8;
const ROUNDS: usize = 3;

/// Creates ports until the server goes away; records the acknowledged ones (id, address).
async fn client(url: String, token: String, net: String, n: usize, acked: Arc<Mutex<Vec<(String, String)>>>) {
    let rest = Rest::new(&url);
    for i in 0.. {
        let body = json!({"port": {"network_id": net, "name": format!("c{n}-{i}")}});
        match rest.call(Method::POST, "/v2.0/ports", Some(&token), Some(&body)).await {
            Ok(a) if a.status == StatusCode::CREATED => {
                let id = a.body["port"]["id"].as_str().unwrap_or_default().to_string();
                let ip = a.body["port"]["fixed_ips"][0]["ip_address"].as_str().unwrap_or_default().to_string();
                if let Ok(mut v) = acked.lock() {
                    v.push((id, ip));
                }
            }
            // The server is gone (or answered an error while dying): this client is done.
            Ok(_) | Err(_) => return,
        }
    }
}

async fn crash_rounds(mut api: NetApi) -> anyhow::Result<()> {
    let token = api.admin_token().await?;
    let (net, _) = api.network_with_subnet(&token, "crash", "10.64.0.0/12").await?;
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(Vec::new()));
    for round in 1..=ROUNDS {
        let before = acked.lock().map(|v| v.len()).unwrap_or(0);
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|n| tokio::spawn(client(api.url.clone(), token.clone(), net.clone(), n, acked.clone())))
            .collect();
        // Let the burst get going, then kill mid-flight (the kill lands at a different point each round).
        let wanted = 150 + 70 * round;
        for _ in 0..200 {
            let done = acked.lock().map(|v| v.len()).unwrap_or(0) - before;
            if done >= wanted {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        api.kill_hard()?;
        for t in tasks {
            t.await.context("client task")?;
        }
        let acked_now: Vec<(String, String)> = acked.lock().map(|v| v.clone()).unwrap_or_default();
        eprintln!("round {round}: killed after {} acknowledged creates this round", acked_now.len() - before);
        ensure!(acked_now.len() > before, "round {round}: nothing was acknowledged before the kill");

        // The database as the killed server left it.
        let report = api.check()?;
        ensure!(report["problems"] == json!([]), "round {round}: half-written state after kill -9: {report:#}");
        ensure!(
            report["revision"] == report["max_change_revision"],
            "round {round}: revision {} but the highest logged revision is {}",
            report["revision"],
            report["max_change_revision"]
        );

        api.restart()?;
        let rest = api.rest();
        let listed = rest.expect(StatusCode::OK, Method::GET, "/v2.0/ports", Some(&token), None).await?;
        let ports: Vec<&Value> = listed["ports"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
        let present: HashSet<(String, String)> = ports
            .iter()
            .map(|p| {
                let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
                (s(&p["id"]), s(&p["fixed_ips"][0]["ip_address"]))
            })
            .collect();
        for (id, ip) in &acked_now {
            ensure!(
                present.contains(&(id.clone(), ip.clone())),
                "round {round}: acknowledged port {id} ({ip}) is gone"
            );
        }
        let ips: HashSet<&String> = present.iter().map(|(_, ip)| ip).collect();
        ensure!(ips.len() == present.len(), "round {round}: two ports share an address");
        eprintln!(
            "round {round}: {} ports present, {} acknowledged, revision {}",
            present.len(),
            acked_now.len(),
            report["revision"]
        );
        // The server goes on from where the log ends.
        let p = rest
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/v2.0/ports",
                Some(&token),
                Some(&json!({"port": {"network_id": net, "name": format!("after-{round}")}})),
            )
            .await?;
        let rev = report["revision"].as_i64().context("revision")?;
        ensure!(p["port"]["revision_number"] == json!(rev + 1), "round {round}: revision after restart {p}");
        if let Ok(mut v) = acked.lock() {
            v.push((
                p["port"]["id"].as_str().unwrap_or_default().to_string(),
                p["port"]["fixed_ips"][0]["ip_address"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    let report = api.check()?;
    ensure!(report["problems"] == json!([]), "final state inconsistent: {report:#}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_loses_no_acknowledged_port_and_leaves_nothing_half_written_sqlite() -> anyhow::Result<()> {
    crash_rounds(NetApi::start()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_loses_no_acknowledged_port_and_leaves_nothing_half_written_postgres() -> anyhow::Result<()> {
    crash_rounds(NetApi::start_postgres()?).await
}
