//! `tenet-controller`: the OpenFlow controller binary.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use tenet_controller::api::{self, ApiState};
use tenet_controller::grpc;
use tenet_controller::learning::Learning;
use tenet_controller::metrics;
use tenet_controller::network::{self, DiscoveryConfig, Network};
use tenet_controller::session::{AppFactory, Controller, SessionConfig};
use tenet_controller::tenant::app::TenantApps;
use tenet_controller::tenant::engine::{self, Tenant, TenantConfig};
use tenet_controller::tenant::feed;

#[path = "ips_ship.rs"]
mod ips_ship;
#[path = "verify_cli.rs"]
mod verify;

/// tenet's OpenFlow controller.
///
/// Accepts OpenFlow connections from switches (Open vSwitch or any OpenFlow 1.3
/// or 1.0 switch), negotiates the version (1.3 preferred), and runs the chosen
/// mode's logic on every switch. Point a switch at it with
/// `ovs-vsctl set-controller BRIDGE tcp:HOST:6653`.
#[derive(Debug, Parser)]
#[command(name = "tenet-controller", version, about, long_about)]
struct Cli {
    /// Address to accept switch connections on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:6653")]
    listen: SocketAddr,

    /// What the controller does with the switches.
    ///
    /// learning: a reactive L2 learning switch per datapath (flow-mod plus
    /// packet-out), with LLDP discovery: floods follow a spanning tree of the
    /// discovered topology, so networks with loops work; for labs and benchmarks.
    ///
    /// tenant: the platform's mode. Follows netapi's state feed (--netapi) and compiles
    /// tenant networks, ports and security groups into flows on every switch
    /// (proactively; ARP and DHCP are answered by the controller). Needs OpenFlow 1.3
    /// and netapi credentials in the environment (source an openrc: OS_AUTH_URL,
    /// OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME; or OS_TOKEN) of a user with the
    /// admin or service role.
    #[arg(long, value_enum, default_value_t = Mode::Learning)]
    mode: Mode,

    /// netapi's gRPC address (tenant mode).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9697")]
    netapi: String,

    /// Tenant mode: milliseconds a switch must be connected before its flows are
    /// reconciled, so that discovery has found its links (a restarted controller then
    /// changes nothing on the switches).
    #[arg(long, value_name = "MS", default_value_t = 1500)]
    settle: u64,

    /// Tenant mode: seconds between audits, which read every switch's flows back and
    /// undo changes made behind the controller's back (0: no audits).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    audit: u64,

    #[command(subcommand)]
    command: Option<Command>,

    /// Log line format: human-readable text or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax, e.g. `info`, `tenet_controller=debug`).
    /// The RUST_LOG environment variable overrides it.
    #[arg(long, value_name = "FILTER", default_value = "info")]
    log_level: String,

    /// Serve the topology API (REST/JSON; `GET /v1/openapi.json` describes it) on this address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8181")]
    api: SocketAddr,

    /// Serve the topology API over gRPC (service `tenet.topology.v1.Topology`: the same
    /// queries plus a live event stream) on this address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8182")]
    grpc: SocketAddr,

    /// Serve Prometheus text-format metrics on this address (e.g. 127.0.0.1:9100).
    /// Off when not given.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,

    /// Threads serving switch sessions (default: one per CPU). With 1, everything runs on
    /// one thread, which is fastest when the machine's other cores are busy.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,

    /// Milliseconds between LLDP discovery rounds (LLDP also goes out at once when a switch
    /// connects and when a port comes up).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    lldp_interval: u64,

    /// A link not confirmed by this many LLDP rounds in a row is removed (PORT_STATUS
    /// down or a switch disconnecting removes links at once).
    #[arg(long, value_name = "N", default_value_t = 3)]
    link_missed_rounds: u32,

    /// Seconds of silence from a switch before an ECHO_REQUEST is sent to it.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    echo_interval: u64,

    /// Seconds of silence after which a switch is declared dead and disconnected.
    #[arg(long, value_name = "SECS", default_value_t = 15)]
    dead_after: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Reactive L2 learning switch on every datapath.
    Learning,
    /// Tenant networks compiled from netapi's desired state.
    Tenant,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Prove tenant isolation from the flows installed on every switch: for every pair
    /// of networks, no packet entering at a port of one can leave at a port of the
    /// other. Asks a running tenant-mode controller (its topology API), prints any
    /// counterexample packet with its path, and exits 1 when there is one.
    Verify {
        /// The controller's topology API.
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8181")]
        api: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Follow an IPS instance's Suricata eve.json and ship new events to a tenant-mode
    /// controller, which attributes alerts and drops to tenant ports
    /// (`GET /v1/ips/alerts?project_id=&port_id=`).
    IpsShip {
        /// The eve.json file (followed until it exists, except with --once).
        #[arg(long, value_name = "FILE")]
        eve: std::path::PathBuf,
        /// The instance's networking-sfc port pair id.
        #[arg(long, value_name = "ID")]
        port_pair: String,
        /// The controller's topology API.
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8181")]
        api: String,
        /// Ship what the file holds now and exit.
        #[arg(long)]
        once: bool,
        /// How often to look for new lines, milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 500)]
        interval_ms: u64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cli.log_level))
        .with_context(|| format!("invalid --log-level {:?}", cli.log_level))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::Verify { api, json }) => return verify::main(api, *json),
        Some(Command::IpsShip { eve, port_pair, api, once, interval_ms }) => {
            return ips_ship::main(&ips_ship::Options {
                eve: eve.clone(),
                port_pair: port_pair.clone(),
                api: api.clone(),
                once: *once,
                interval: std::time::Duration::from_millis(*interval_ms),
            })
        }
        None => {}
    }
    match start(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tenet-controller: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn start(cli: Cli) -> anyhow::Result<()> {
    init_logging(&cli)?;
    if cli.dead_after <= cli.echo_interval {
        anyhow::bail!("--dead-after ({}) must be longer than --echo-interval ({})", cli.dead_after, cli.echo_interval);
    }
    // One thread: a current-thread runtime, which skips the work-stealing machinery.
    let mut builder = match cli.threads {
        Some(0) => anyhow::bail!("--threads must be at least 1"),
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = builder.enable_all().build().context("starting tokio")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.lldp_interval == 0 {
        anyhow::bail!("--lldp-interval must be at least 1 ms");
    }
    let network = Network::new(DiscoveryConfig {
        interval: Duration::from_millis(cli.lldp_interval),
        missed_rounds: cli.link_missed_rounds.max(1),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tenant = None;
    let apps: Arc<dyn AppFactory> = match cli.mode {
        Mode::Learning => Arc::new(Learning::with_network(network.clone())),
        Mode::Tenant => {
            let auth =
                feed::Auth::from_env().map_err(|e| anyhow::anyhow!("tenant mode needs netapi credentials: {e}"))?;
            let t = Tenant::new(
                network.clone(),
                TenantConfig {
                    settle: Duration::from_millis(cli.settle),
                    audit: (cli.audit > 0).then(|| Duration::from_secs(cli.audit)),
                    ..TenantConfig::default()
                },
            );
            let (feed_tx, feed_rx) = tokio::sync::mpsc::channel(1024);
            tokio::spawn(feed::run(cli.netapi.clone(), auth, feed_tx, stop_rx.clone()));
            tenant = Some((t.clone(), feed_rx));
            Arc::new(TenantApps(t))
        }
    };
    let config = SessionConfig {
        echo_interval: Duration::from_secs(cli.echo_interval),
        dead_after: Duration::from_secs(cli.dead_after),
        ..SessionConfig::default()
    };
    let ctl = Controller::new(config, apps);
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("cannot listen on {} (is another controller running?)", cli.listen))?;
    tracing::info!(listen = %cli.listen, mode = ?cli.mode, "tenet-controller listening for switches");
    if let Some(addr) = cli.metrics {
        let m = ctl.metrics.clone();
        let l = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot serve metrics on {addr}"))?;
        tokio::spawn(async move {
            if let Err(e) = metrics::serve(l, m).await {
                tracing::error!(error = %e, "metrics server stopped");
            }
        });
    }
    let api_listener =
        tokio::net::TcpListener::bind(cli.api).await.with_context(|| format!("cannot serve the API on {}", cli.api))?;
    tracing::info!(api = %cli.api, "topology API listening");
    let grpc_listener =
        tokio::net::TcpListener::bind(cli.grpc).await.with_context(|| format!("cannot serve gRPC on {}", cli.grpc))?;
    tracing::info!(grpc = %cli.grpc, "topology gRPC API listening");
    let state = ApiState {
        network: network.clone(),
        registry: ctl.registry.clone(),
        tenant: tenant.as_ref().map(|(t, _)| t.clone()),
    };
    if let Some((t, feed_rx)) = tenant {
        tokio::spawn(engine::run(t, ctl.registry.clone(), feed_rx, stop_rx.clone()));
    }
    let (api_state, api_stop) = (state.clone(), stop_rx.clone());
    tokio::spawn(async move {
        if let Err(e) = api::serve(api_listener, api_state, api_stop).await {
            tracing::error!(error = %e, "topology API stopped");
        }
    });
    let grpc_stop = stop_rx.clone();
    tokio::spawn(async move {
        if let Err(e) = grpc::serve(grpc_listener, state, grpc_stop).await {
            tracing::error!(error = %e, "topology gRPC API stopped");
        }
    });
    tokio::spawn(network::run(network, ctl.registry.clone(), stop_rx.clone()));
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    ctl.serve(listener, stop_rx).await.context("accept loop failed")?;
    Ok(())
}
