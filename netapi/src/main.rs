//! `tenet-netapi`: the network API server.
//!
//! - `tenet-netapi serve --db URL --http ADDR --grpc ADDR --public-url URL` serves REST on
//!   `--http` and gRPC (`PortRegistry`, `StateFeed`) on `--grpc`; prints
//!   `listening on HTTP_ADDR` then `grpc listening on GRPC_ADDR` once both are bound.
//! - `tenet-netapi check --db URL` checks the database's invariants (after a crash, say).
//! - `tenet-netapi bootstrap --db URL --password PW [--public-url URL]` creates the admin
//!   user and project (idempotent) and prints an openrc for them.

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tenet_netapi::check::check;
use tenet_netapi::grpc::{serve_grpc, stopped};
use tenet_netapi::identity::{bootstrap, openrc};
use tenet_netapi::neutron::networks::assign_missing_segments;
use tenet_netapi::store::StoreOptions;
use tenet_netapi::{serve, Config, Store};
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(
    name = "tenet-netapi",
    version,
    about = "tenet network API (Keystone and Neutron subsets over REST, gRPC for services)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the REST and gRPC APIs.
    Serve {
        /// Database: sqlite://PATH (created and migrated on first start) or postgres://USER:PW@HOST/DB.
        #[arg(long, default_value = "sqlite://tenet-netapi.db")]
        db: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9696")]
        http: SocketAddr,
        /// Address the gRPC services listen on.
        #[arg(long, default_value = "127.0.0.1:9697")]
        grpc: SocketAddr,
        /// SQLite: fsync every commit (synchronous=FULL). The default (WAL, synchronous=NORMAL)
        /// survives the process being killed; FULL also survives power loss.
        #[arg(long)]
        sqlite_sync_full: bool,
        /// URL clients reach this server at (catalog and links); default http://<--http>.
        #[arg(long)]
        public_url: Option<String>,
        /// Region named in the catalog.
        #[arg(long, default_value = "RegionOne")]
        region: String,
        /// Token lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        token_ttl: i64,
        /// Compute endpoint for the catalog (default http://<public host>:8774/compute/v2.1,
        /// where tenet-compute api listens by default).
        #[arg(long)]
        compute_url: Option<String>,
        /// Image endpoint for the catalog (default http://<public host>:8774/image).
        #[arg(long)]
        image_url: Option<String>,
        /// Log as JSON lines.
        #[arg(long)]
        log_json: bool,
    },
    /// Check the database's consistency; print a JSON report, exit 1 when broken.
    Check {
        /// Database, as for `serve`.
        #[arg(long, default_value = "sqlite://tenet-netapi.db")]
        db: String,
    },
    /// Create the admin user and project and print an openrc.
    Bootstrap {
        /// Database, as for `serve`.
        #[arg(long, default_value = "sqlite://tenet-netapi.db")]
        db: String,
        /// The admin's password.
        #[arg(long, env = "TENET_ADMIN_PASSWORD")]
        password: String,
        /// The admin user's name.
        #[arg(long, default_value = "admin")]
        username: String,
        /// The admin project's name.
        #[arg(long, default_value = "admin")]
        project: String,
        /// URL of the server, for OS_AUTH_URL.
        #[arg(long, default_value = "http://127.0.0.1:9696")]
        public_url: String,
        /// Region, for OS_REGION_NAME.
        #[arg(long, default_value = "RegionOne")]
        region: String,
    },
}

fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            db,
            http,
            grpc,
            sqlite_sync_full,
            public_url,
            region,
            token_ttl,
            compute_url,
            image_url,
            log_json,
        } => {
            init_logging(log_json);
            let opts = StoreOptions { sqlite_synchronous_full: sqlite_sync_full };
            let store = Store::open_with(&db, &opts).await.with_context(|| format!("opening database {db}"))?;
            assign_missing_segments(&store).await.map_err(|e| anyhow::anyhow!("assigning network segments: {e}"))?;
            let listener = tokio::net::TcpListener::bind(http).await.with_context(|| format!("binding {http}"))?;
            let grpc_listener =
                tokio::net::TcpListener::bind(grpc).await.with_context(|| format!("binding {grpc} (gRPC)"))?;
            let local = listener.local_addr()?;
            let grpc_local = grpc_listener.local_addr()?;
            let mut config = Config::new(&public_url.unwrap_or_else(|| format!("http://{local}")));
            config.region = region;
            config.token_ttl_secs = token_ttl;
            if let Some(u) = compute_url {
                config.compute_url = u;
            }
            if let Some(u) = image_url {
                config.image_url = u;
            }
            tracing::info!(addr = %local, grpc = %grpc_local, public_url = %config.public_url, "tenet-netapi listening");
            // The lines tests wait for; printed once the sockets are bound.
            println!("listening on {local}");
            println!("grpc listening on {grpc_local}");
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let grpc_task = tokio::spawn(serve_grpc(grpc_listener, store.clone(), stop_rx.clone()));
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("shutting down");
                let _ = stop_tx.send(true);
            });
            serve(listener, store.clone(), config, stopped(stop_rx)).await.context("serving")?;
            grpc_task.await.context("gRPC server task")?.context("serving gRPC")?;
            store.close().await;
        }
        Command::Check { db } => {
            init_logging(false);
            let store = Store::open(&db).await.with_context(|| format!("opening database {db}"))?;
            let report = check(&store).await.context("checking the database")?;
            store.close().await;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !report.is_consistent() {
                std::process::exit(1);
            }
        }
        Command::Bootstrap { db, password, username, project, public_url, region } => {
            init_logging(false);
            let store = Store::open(&db).await.with_context(|| format!("opening database {db}"))?;
            bootstrap(&store, &username, &project, &password)
                .await
                .map_err(|e| anyhow::anyhow!("bootstrap failed: {e}"))?;
            store.close().await;
            let auth_url = format!("{}/v3", public_url.trim_end_matches('/'));
            print!("{}", openrc(&auth_url, &username, &password, &project, &region));
        }
    }
    Ok(())
}
