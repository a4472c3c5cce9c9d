//! Compute benchmark (ignored by default; `labs/bench-compute.sh` runs it in release):
//! the whole platform on this machine (netapi, tenant controller, compute API, two
//! namespace-driver hosts), driven through the Nova REST API:
//! 1. `POST /servers` to ACTIVE and to the first ping answered from another VM (median of 5);
//! 2. how many servers one machine runs: N servers (`TENET_BENCH_VMS`, default 200) created
//!    20 at a time, time to all ACTIVE, time to all with a DHCP address, memory per server,
//!    and a ping sample.
//!
//! Prints one JSON line (`compute-bench: {...}`).

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};
use tenet_netapi::client::{Method, Rest, StatusCode};
use tenet_tests::compute::{ns_ip, pings, ComputeApi, Hypervisors};
use tenet_tests::netapi::NetApi;
use tenet_tests::tenant::TenantController;
use tenet_tests::{free_addr, require_root_and_ovs, LAB_LOCK};

fn mem_available_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find_map(|l| l.strip_prefix("MemAvailable:").map(str::to_string)))
        .and_then(|v| v.split_whitespace().next().and_then(|k| k.parse::<u64>().ok()))
        .map_or(0, |kb| kb / 1024)
}

#[test]
#[ignore]
fn compute_bench() {
    require_root_and_ovs();
    let _guard = LAB_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = bench() {
        panic!("{e:#}");
    }
}

struct Nova {
    rest: Rest,
    token: String,
}

impl Nova {
    async fn call(
        &self,
        method: Method,
        path: &str,
        expected: StatusCode,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        Ok(self.rest.expect(expected, method, path, Some(&self.token), body.as_ref()).await?)
    }

    async fn create(&self, name: &str, image: &str, flavor: &str, net: &str) -> anyhow::Result<String> {
        let body =
            json!({"server": {"name": name, "imageRef": image, "flavorRef": flavor, "networks": [{"uuid": net}]}});
        let s = self.call(Method::POST, "/compute/v2.1/servers", StatusCode::ACCEPTED, Some(body)).await?;
        Ok(s["server"]["id"].as_str().context("server id")?.to_string())
    }

    async fn wait_active(&self, id: &str) -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let s = self.call(Method::GET, &format!("/compute/v2.1/servers/{id}"), StatusCode::OK, None).await?;
            match s["server"]["status"].as_str() {
                Some("ACTIVE") => return Ok(s),
                Some("ERROR") => bail!("server {id} went to ERROR: {}", s["server"]["fault"]),
                _ if Instant::now() > deadline => bail!("server {id} not ACTIVE in time: {s}"),
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }
}

fn first_ip(server: &Value) -> Option<String> {
    server["server"]["addresses"]
        .as_object()?
        .values()
        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
        .find_map(|a| a["addr"].as_str().map(str::to_string))
}

fn bench() -> anyhow::Result<()> {
    let vms: usize = std::env::var("TENET_BENCH_VMS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let compute_addr = free_addr()?;
    let api = NetApi::start_with_catalog(
        &format!("http://{compute_addr}/compute/v2.1"),
        &format!("http://{compute_addr}/image"),
    )?;
    let ctl = TenantController::start(&api, &[])?;
    let quota = (vms + 20).to_string();
    let cores = (vms * 2 + 40).to_string();
    let ram = (vms * 64 + 2048).to_string();
    let compute = ComputeApi::start_on_with(
        &api,
        &compute_addr,
        &["--max-instances-per-project", &quota, "--max-cores-per-project", &cores, "--max-ram-per-project", &ram],
    )?;
    let hv = Hypervisors::start(
        &api,
        &ctl,
        &compute,
        2,
        &["--ram-mb", "1000000", "--vcpus", "10000", "--disk-gb", "100000"],
    )?;
    let rt = tokio::runtime::Runtime::new()?;
    let token = rt.block_on(api.admin_token())?;
    let nova = Nova { rest: Rest::new(&compute.url), token: token.clone() };
    let netapi = Rest::new(&api.url);

    let (net, image, flavor) = rt.block_on(async {
        let n = netapi
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/v2.0/networks",
                Some(&token),
                Some(&json!({"network": {"name": "bench"}})),
            )
            .await?;
        let net = n["network"]["id"].as_str().context("network")?.to_string();
        netapi
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/v2.0/subnets",
                Some(&token),
                Some(&json!({"subnet": {"network_id": net, "cidr": "10.9.0.0/16", "ip_version": 4}})),
            )
            .await?;
        let img = nova
            .call(
                Method::POST,
                "/image/v2/images",
                StatusCode::CREATED,
                Some(json!({"name": "bench", "disk_format": "raw", "container_format": "bare"})),
            )
            .await?;
        let image = img["id"].as_str().context("image id")?.to_string();
        // The upload takes raw bytes: a small body through the JSON client is fine (an empty image).
        let flavors = nova.call(Method::GET, "/compute/v2.1/flavors", StatusCode::OK, None).await?;
        let flavor = flavors["flavors"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["name"] == "m1.nano"))
            .and_then(|f| f["id"].as_str())
            .context("m1.nano")?
            .to_string();
        anyhow::Ok((net, image, flavor))
    })?;
    upload(&compute.url, &token, &image)?;

    // 1. One server: create -> ACTIVE -> first ping from another VM.
    let pinger = rt.block_on(async { nova.create("pinger", &image, &flavor, &net).await })?;
    hv.track(&pinger);
    rt.block_on(nova.wait_active(&pinger))?;
    ensure!(tenet_tests::wait_until(Duration::from_secs(30), || ns_ip(&pinger).is_some()), "pinger has no address");
    let mut to_active = Vec::new();
    let mut to_ping = Vec::new();
    for i in 0..5 {
        let t = Instant::now();
        let id = rt.block_on(nova.create(&format!("one{i}"), &image, &flavor, &net))?;
        hv.track(&id);
        let s = rt.block_on(nova.wait_active(&id))?;
        to_active.push(t.elapsed().as_secs_f64() * 1000.0);
        let ip = first_ip(&s).context("address")?;
        while pings(&pinger, &ip, 1) == 0 {
            ensure!(t.elapsed() < Duration::from_secs(60), "no ping answer from {id}");
        }
        to_ping.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };

    // 2. Many servers.
    let before = mem_available_mb();
    let t = Instant::now();
    let mut ids = Vec::new();
    for batch in 0..vms.div_ceil(20) {
        let n = (vms - batch * 20).min(20);
        let created: Vec<String> = rt.block_on(async {
            let names: Vec<String> = (0..n).map(|k| format!("many{}", batch * 20 + k)).collect();
            let mut v = Vec::new();
            for name in &names {
                v.push(nova.create(name, &image, &flavor, &net));
            }
            futures_util::future::join_all(v).await.into_iter().collect::<anyhow::Result<Vec<_>>>()
        })?;
        for id in &created {
            hv.track(id);
        }
        ids.extend(created);
    }
    let mut servers = Vec::new();
    for id in &ids {
        servers.push(rt.block_on(nova.wait_active(id))?);
    }
    let all_active = t.elapsed().as_secs_f64();
    ensure!(
        tenet_tests::wait_until(Duration::from_secs(300), || ids.iter().all(|id| ns_ip(id).is_some())),
        "not every server got a DHCP address"
    );
    let all_addressed = t.elapsed().as_secs_f64();
    let after = mem_available_mb();
    let mut answered = 0;
    for s in servers.iter().step_by((vms / 10).max(1)) {
        if let Some(ip) = first_ip(s) {
            if pings(&pinger, &ip, 2) > 0 {
                answered += 1;
            }
        }
    }
    let sampled = servers.iter().step_by((vms / 10).max(1)).count();
    let result = json!({
        "create_to_active_ms_median": median(&mut to_active),
        "create_to_first_ping_ms_median": median(&mut to_ping),
        "runs_ms": {"active": to_active, "ping": to_ping},
        "servers": vms,
        "all_active_s": all_active,
        "all_dhcp_addressed_s": all_addressed,
        "memory_per_server_mb": (before.saturating_sub(after)) as f64 / vms as f64,
        "ping_sample": format!("{answered}/{sampled}"),
    });
    println!("compute-bench: {result}");
    ensure!(answered == sampled, "some sampled servers did not answer: {answered}/{sampled}");
    // Delete everything through the API (agents remove namespaces and ports).
    for id in ids.iter().chain(hv.tracked().iter()) {
        let _ = rt.block_on(nova.call(
            Method::DELETE,
            &format!("/compute/v2.1/servers/{id}"),
            StatusCode::NO_CONTENT,
            None,
        ));
    }
    std::thread::sleep(Duration::from_secs(3));
    Ok(())
}

/// `PUT /image/v2/images/{id}/file` with a few bytes (raw HTTP: the JSON client sends JSON only).
fn upload(base: &str, token: &str, image: &str) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://");
    let body = b"tenet-bench-image";
    let mut s = std::net::TcpStream::connect(host)?;
    write!(
        s,
        "PUT /image/v2/images/{image}/file HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let status = answer.split_whitespace().nth(1).unwrap_or_default();
    ensure!(status.starts_with('2'), "image upload failed: {answer}");
    Ok(())
}
