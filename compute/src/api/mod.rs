//! `tenet-compute api`: a Nova v2.1 subset (under `/compute`), a Glance v2 subset (under
//! `/image`) that the real `openstack` CLI accepts, and the internal endpoints agents
//! report to (`/internal/v1`, see [`crate::protocol`]).
//!
//! - [`nova`]: versions, flavors, servers (create schedules and asks the agent to build),
//!   server actions, hypervisors.
//! - [`glance`]: images and their data (kept as files under `--images`).
//! - [`migrations`]: live migration (`os-migrateLive`) and the migration records.
//! - [`internal`]: host registration and server reports from agents.
//! - [`auth`]: Keystone (netapi) validates every user token; cached for 5 s.
//! - [`store`]: sqlx `Any` over SQLite, objects as JSON.

pub mod auth;
pub mod client;
pub mod error;
pub mod glance;
pub mod internal;
pub mod migrations;
pub mod nova;
pub mod store;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::extract::Request;
use axum::http::Uri;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use auth::{Credentials, Keystone};
use client::Http;
use error::ApiError;
use store::{Store, Table};

use crate::model::{Flavor, DEFAULT_FLAVORS};

/// Options of `tenet-compute api`.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiConfig {
    /// Database: sqlite://PATH (created and migrated on first start).
    #[arg(long, env = "TENET_COMPUTE_DB", default_value = "sqlite://tenet-compute.db")]
    pub db: String,
    /// Address to listen on (port 0: any free port; the first stdout line says which).
    #[arg(long, env = "TENET_COMPUTE_HTTP", default_value = "127.0.0.1:8774")]
    pub http: SocketAddr,
    /// URL clients reach this server at (links); default http://<--http>.
    #[arg(long, env = "TENET_COMPUTE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// netapi's base URL (Keystone at /v3, Neutron at /v2.0); default: OS_AUTH_URL without
    /// its `/v3`, else http://127.0.0.1:9696.
    #[arg(long, env = "TENET_IDENTITY_URL")]
    pub identity: Option<String>,
    /// Directory of image data; default `images/` next to a SQLite database.
    #[arg(long, env = "TENET_COMPUTE_IMAGES")]
    pub images: Option<PathBuf>,
    /// The service user (validates tokens, calls agents), as in an openrc.
    #[arg(long, env = "OS_USERNAME")]
    pub os_username: Option<String>,
    /// The service user's password.
    #[arg(long, env = "OS_PASSWORD", hide_env_values = true)]
    pub os_password: Option<String>,
    /// The service user's project.
    #[arg(long, env = "OS_PROJECT_NAME")]
    pub os_project_name: Option<String>,
    /// Servers a project may have.
    #[arg(long, default_value_t = 10)]
    pub max_instances_per_project: u64,
    /// vCPUs a project's servers may use.
    #[arg(long, default_value_t = 20)]
    pub max_cores_per_project: u64,
    /// MB of RAM a project's servers may use.
    #[arg(long, default_value_t = 51200)]
    pub max_ram_per_project: u64,
}

/// Quotas per project.
#[derive(Debug, Clone, Copy)]
pub struct Quotas {
    pub instances: u64,
    pub cores: u64,
    pub ram: u64,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub keystone: Arc<Keystone>,
    pub http: Http,
    pub public_url: Arc<str>,
    pub images: Arc<PathBuf>,
    pub quotas: Quotas,
    /// Serialises every read-modify-write of the database (and scheduling decisions).
    write: Arc<tokio::sync::Mutex<()>>,
    /// Network names by id (they label a server's addresses).
    pub network_names: Arc<Mutex<HashMap<String, String>>>,
}

impl AppState {
    /// Takes the write lock.
    pub async fn write(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.write.lock().await
    }

    /// `{public}/compute/v2.1`.
    pub fn compute_url(&self) -> String {
        format!("{}/compute/v2.1", self.public_url)
    }
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(nova::versions))
        .route("/compute", get(nova::versions))
        .route("/compute/", get(nova::versions))
        .route("/compute/v2.1", get(nova::version))
        .route("/compute/v2.1/", get(nova::version))
        .nest("/compute/v2.1", nova::routes().layer(middleware::from_fn(nova::microversion)))
        .route("/image", get(glance::versions))
        .route("/image/", get(glance::versions))
        .nest("/image/v2", glance::routes())
        .nest("/internal/v1", internal::routes())
        .fallback(no_route)
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

async fn no_route(uri: Uri) -> ApiError {
    if uri.path().starts_with("/image") {
        ApiError::no_route().glance()
    } else {
        ApiError::no_route()
    }
}

async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    if status >= 500 {
        tracing::error!(%method, path, status, "request failed");
    } else {
        tracing::debug!(%method, path, status, "request");
    }
    resp.into_response()
}

/// Where image data lives by default: `images/` beside a SQLite database file.
fn default_images_dir(db: &str) -> PathBuf {
    let path = db.strip_prefix("sqlite://").or_else(|| db.strip_prefix("sqlite:")).unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    match std::path::Path::new(path).parent() {
        Some(p) if !path.is_empty() => p.join("images"),
        _ => PathBuf::from("images"),
    }
}

/// Adds the default flavors to an empty flavor table.
async fn seed_flavors(store: &Store) -> anyhow::Result<()> {
    let existing: Vec<Flavor> = store.list(Table::Flavors, None).await?;
    if !existing.is_empty() {
        return Ok(());
    }
    for (id, name, ram, vcpus, disk) in DEFAULT_FLAVORS {
        let f = Flavor {
            id: id.to_string(),
            name: name.to_string(),
            vcpus: *vcpus,
            ram: *ram,
            disk: *disk,
            is_public: true,
            description: None,
        };
        store.put(Table::Flavors, id, "", &f).await?;
    }
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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

/// Runs `tenet-compute api` until Ctrl-C or SIGTERM.
pub async fn run(config: ApiConfig) -> anyhow::Result<()> {
    let store = Store::open(&config.db).await.with_context(|| format!("opening database {}", config.db))?;
    seed_flavors(&store).await.context("seeding the default flavors")?;
    let images = config.images.clone().unwrap_or_else(|| default_images_dir(&config.db));
    std::fs::create_dir_all(&images).with_context(|| format!("creating {}", images.display()))?;
    let listener =
        tokio::net::TcpListener::bind(config.http).await.with_context(|| format!("binding {}", config.http))?;
    let local = listener.local_addr()?;
    let public_url = config.public_url.clone().unwrap_or_else(|| format!("http://{local}"));
    let creds = match (&config.os_username, &config.os_password, &config.os_project_name) {
        (Some(u), Some(p), Some(pr)) => {
            Some(Credentials { username: u.clone(), password: p.clone(), project: pr.clone() })
        }
        _ => {
            tracing::warn!(
                "no service credentials (OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME): every token is refused"
            );
            None
        }
    };
    // OS_AUTH_URL (an openrc's) names Keystone; netapi serves Neutron at the same base.
    let identity = config
        .identity
        .clone()
        .or_else(|| {
            std::env::var("OS_AUTH_URL").ok().map(|u| u.trim_end_matches('/').trim_end_matches("/v3").to_string())
        })
        .unwrap_or_else(|| "http://127.0.0.1:9696".to_string());
    let http = Http::new();
    let state = AppState {
        store: store.clone(),
        keystone: Arc::new(Keystone::new(http.clone(), &identity, creds)),
        http,
        public_url: public_url.trim_end_matches('/').into(),
        images: Arc::new(images),
        quotas: Quotas {
            instances: config.max_instances_per_project,
            cores: config.max_cores_per_project,
            ram: config.max_ram_per_project,
        },
        write: Arc::new(tokio::sync::Mutex::new(())),
        network_names: Arc::new(Mutex::new(HashMap::new())),
    };
    tracing::info!(addr = %local, %public_url, identity, "tenet-compute api listening");
    println!("listening on {local}");
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown_signal()).await.context("serving")?;
    store.close().await;
    Ok(())
}
