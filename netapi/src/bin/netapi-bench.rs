//! `netapi-bench`: load generator for tenet-netapi (used by `labs/bench-netapi.sh`).
//!
//! Modes, each with N concurrent clients (own connection each) for a warm-up then a
//! measured period; prints one JSON line with the rate and latency percentiles:
//!
//! - `rest-ports`: `POST /v2.0/ports` (one address allocated from a /12 subnet);
//! - `grpc-ports`: `PortRegistry.RegisterPort` with a binding (host, datapath, interface);
//! - `tokens`: `POST /v3/auth/tokens` (password, project-scoped).
//!
//! ```sh
//! netapi-bench --url http://127.0.0.1:9696 --grpc http://127.0.0.1:9697 --password pw \
//!     --mode rest-ports --clients 8 --duration 10 --warmup 2
//! ```

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use serde_json::json;
use tenet_netapi::client::{connect_grpc, Method, Rest, StatusCode};
use tenet_netapi::grpc::pb;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    RestPorts,
    GrpcPorts,
    Tokens,
}

#[derive(Parser, Debug)]
#[command(name = "netapi-bench", about = "load generator for tenet-netapi")]
struct Args {
    /// REST base URL.
    #[arg(long, default_value = "http://127.0.0.1:9696")]
    url: String,
    /// gRPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:9697")]
    grpc: String,
    /// User (admin or service role for gRPC).
    #[arg(long, default_value = "admin")]
    user: String,
    /// The user's password.
    #[arg(long)]
    password: String,
    /// Project to scope tokens to.
    #[arg(long, default_value = "admin")]
    project: String,
    /// What to measure.
    #[arg(long, value_enum)]
    mode: Mode,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds (not measured).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Subnet the port modes allocate from (a new network is made per run).
    #[arg(long, default_value = "10.0.0.0/12")]
    cidr: String,
    /// Label copied into the output (e.g. the database engine).
    #[arg(long, default_value = "")]
    label: String,
}

/// What one client measured.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

/// Runs `op` in a loop until `end`; records the latency of calls finishing after `measure_from`.
async fn drive<F, Fut>(measure_from: Instant, end: Instant, mut op: F) -> Tally
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut tally = Tally::default();
    let mut i = 0;
    while Instant::now() < end {
        i += 1;
        let t0 = Instant::now();
        let r = op(i).await;
        let done = Instant::now();
        match r {
            Ok(()) if done >= measure_from && done <= end => {
                tally.latencies_us.push(u32::try_from(done.duration_since(t0).as_micros()).unwrap_or(u32::MAX))
            }
            Ok(()) => {}
            Err(e) => {
                tally.errors += 1;
                if tally.first_error.is_none() {
                    tally.first_error = Some(format!("{e:#}"));
                }
            }
        }
    }
    tally
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx.min(sorted.len() - 1)]) / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rest = Rest::new(&args.url);
    let token = rest.password_token(&args.user, &args.password, &args.project).await.context("authenticating")?;
    let network = if args.mode == Mode::Tokens {
        String::new()
    } else {
        let net = rest
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/v2.0/networks",
                Some(&token),
                Some(&json!({"network": {"name": "bench"}})),
            )
            .await?;
        let id = net["network"]["id"].as_str().context("network id")?.to_string();
        rest.expect(
            StatusCode::CREATED,
            Method::POST,
            "/v2.0/subnets",
            Some(&token),
            Some(&json!({"subnet": {"network_id": id, "cidr": args.cidr, "ip_version": 4}})),
        )
        .await?;
        id
    };
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.duration);
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (token, network, args_url, grpc, user, password, project, mode) = (
            token.clone(),
            network.clone(),
            args.url.clone(),
            args.grpc.clone(),
            args.user.clone(),
            args.password.clone(),
            args.project.clone(),
            args.mode,
        );
        tasks.push(tokio::spawn(async move {
            match mode {
                Mode::RestPorts => {
                    let rest = Rest::new(&args_url);
                    drive(measure_from, end, |i| {
                        let (rest, token, network) = (rest.clone(), token.clone(), network.clone());
                        async move {
                            let body = json!({"port": {"network_id": network, "name": format!("b{c}-{i}")}});
                            rest.expect(StatusCode::CREATED, Method::POST, "/v2.0/ports", Some(&token), Some(&body))
                                .await?;
                            Ok(())
                        }
                    })
                    .await
                }
                Mode::GrpcPorts => {
                    let (registry, _) = match connect_grpc(&grpc, &token).await {
                        Ok(c) => c,
                        Err(e) => return Tally { errors: 1, first_error: Some(e.to_string()), ..Tally::default() },
                    };
                    drive(measure_from, end, |i| {
                        let (mut registry, network) = (registry.clone(), network.clone());
                        async move {
                            registry
                                .register_port(pb::RegisterPortRequest {
                                    network_id: network,
                                    device_id: format!("vm-{c}-{i}"),
                                    device_owner: "compute:bench".into(),
                                    binding: Some(pb::BindingSpec {
                                        host: format!("compute{c}"),
                                        datapath_id: c as u64 + 1,
                                        interface_name: format!("tap{c}-{i}"),
                                        vnic_type: String::new(),
                                    }),
                                    ..Default::default()
                                })
                                .await?;
                            Ok(())
                        }
                    })
                    .await
                }
                Mode::Tokens => {
                    let rest = Rest::new(&args_url);
                    drive(measure_from, end, |_| {
                        let (rest, user, password, project) =
                            (rest.clone(), user.clone(), password.clone(), project.clone());
                        async move {
                            rest.password_token(&user, &password, &project).await?;
                            Ok(())
                        }
                    })
                    .await
                }
            }
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        let tally = t.await.context("client task")?;
        all.extend(tally.latencies_us);
        errors += tally.errors;
        first_error = first_error.or(tally.first_error);
    }
    all.sort_unstable();
    let ops = all.len();
    if ops == 0 {
        bail!("no request succeeded in the measured period: {}", first_error.unwrap_or_default());
    }
    let out = json!({
        "label": args.label,
        "mode": format!("{:?}", args.mode),
        "clients": args.clients,
        "duration_s": args.duration,
        "ops": ops,
        "rate_per_s": (ops as f64 / args.duration * 10.0).round() / 10.0,
        "p50_ms": percentile(&all, 0.50),
        "p90_ms": percentile(&all, 0.90),
        "p99_ms": percentile(&all, 0.99),
        "max_ms": percentile(&all, 1.0),
        "errors": errors,
        "first_error": first_error,
    });
    println!("{out}");
    Ok(())
}
