//! `tenet-compute agent`: the hypervisor side. One per host: it reports the host's
//! capacity to the compute API, builds the servers the scheduler sends it with its
//! driver, plugs their NICs into the host's OVS bridge, registers the ports through
//! netapi's `PortRegistry` (host, bridge datapath id, interface name, MAC: the
//! controller connects them), and reports every change back.
//!
//! Port flow for a NIC on a network: the agent picks the port id (so the interface,
//! `tap<first 11 of the id>` as Nova names it, exists before the port) and a MAC,
//! plugs the interface, then registers the port with that id, MAC and binding. For a
//! NIC on an existing port it reads the port's MAC first and adopts it. A server whose
//! port cannot be registered is torn down and reported with the fault.
//!
//! Live migration ([`migration`]): the source agent orchestrates, as Nova's source
//! compute does; the destination agent prepares (INACTIVE port bindings on itself,
//! interfaces, disk), then finishes or aborts.

mod migration;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tenet_netapi::client::{connect_grpc, Method, Rest};
use tenet_netapi::grpc::pb;

use crate::driver::libvirt::{LibvirtConfig, LibvirtDriver};
use crate::driver::namespace::NamespaceDriver;
use crate::driver::{Driver, Machine, Nic};
use crate::protocol::{
    Action, ActionRequest, Capacity, HostReport, PortInfo, Power, ServerReport, SpawnRequest, HEARTBEAT,
};
use migration::IncomingState;

/// The agent's options.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentConfig {
    /// This host's name (what the scheduler and `OS-EXT-SRV-ATTR:host` show).
    #[arg(long)]
    pub host: String,
    /// The compute API's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8774")]
    pub api: String,
    /// Where to listen for the compute API's requests (port 0: any; the address is
    /// printed as `listening on ADDR`).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The OVS bridge VMs are plugged into (it must exist; its controller is the
    /// operator's business).
    #[arg(long)]
    pub bridge: String,
    /// netapi's REST base URL (Keystone and Neutron).
    #[arg(long, default_value = "http://127.0.0.1:9696")]
    pub netapi: String,
    /// netapi's gRPC address (PortRegistry).
    #[arg(long, default_value = "http://127.0.0.1:9697")]
    pub netapi_grpc: String,
    /// The hypervisor driver: `namespace` (network namespaces; labs) or `libvirt`
    /// (QEMU guests under TCG booting the tenet guest, labs/guest/build-image.sh).
    #[arg(long, default_value = "namespace")]
    pub driver: String,
    /// libvirt: the connection URI.
    #[arg(long, default_value = "qemu:///system")]
    pub libvirt_uri: String,
    /// libvirt: the guest kernel and initramfs every server boots.
    #[arg(long, default_value = "target/guest/vmlinuz")]
    pub guest_kernel: PathBuf,
    #[arg(long, default_value = "target/guest/initrd.img")]
    pub guest_initrd: PathBuf,
    /// libvirt: the disk a server's copy-on-write overlay is made on when its image is not
    /// a qcow2 or raw disk.
    #[arg(long, default_value = "target/guest/disk.qcow2")]
    pub guest_disk: PathBuf,
    /// Capacity offered (default: what the machine has).
    #[arg(long)]
    pub vcpus: Option<u32>,
    #[arg(long)]
    pub ram_mb: Option<u64>,
    #[arg(long, default_value_t = 100)]
    pub disk_gb: u64,
    /// Where the agent keeps its files.
    #[arg(long, default_value = "/var/lib/tenet-compute")]
    pub state_dir: PathBuf,
    /// The name of the storage server disks live on when other hosts share it (hosts
    /// reporting the same name live-migrate without copying disks); empty: local only.
    #[arg(long, default_value = "")]
    pub shared_storage: String,
    /// libvirt: the URI other hosts' libvirt migrates this host's incoming servers to
    /// (default: --libvirt-uri).
    #[arg(long)]
    pub libvirt_migration_uri: Option<String>,
    /// Live migration: how long the source keeps its port bindings after the
    /// destination's became ACTIVE (the network delivers to both places meanwhile).
    #[arg(long, default_value_t = 1000)]
    pub migration_grace_ms: u64,
    /// namespace driver: how long a migrating namespace's old and new NICs are both down
    /// (emulates the pause of a real VM's switch-over; 0: make before break).
    #[arg(long, default_value_t = 0)]
    pub ns_migration_pause_ms: u64,
}

/// The agent's credentials from the environment (an openrc of a service or admin user).
fn credentials() -> anyhow::Result<(String, String, String)> {
    let var = |k: &str| std::env::var(k).with_context(|| format!("{k} is not set (source an openrc)"));
    Ok((var("OS_USERNAME")?, var("OS_PASSWORD")?, var("OS_PROJECT_NAME")?))
}

struct Agent {
    config: AgentConfig,
    driver: Arc<dyn Driver>,
    rest: Rest,
    datapath_id: u64,
    url: String,
    token: tokio::sync::Mutex<Option<String>>,
    /// Servers being built or changed: one operation at a time per server.
    busy: Mutex<HashMap<String, ()>>,
    /// Migrations coming in, by migration id (prepared, not yet finished or aborted).
    incoming: Mutex<HashMap<String, IncomingState>>,
}

impl Agent {
    async fn token(&self) -> anyhow::Result<String> {
        let mut t = self.token.lock().await;
        if let Some(t) = t.as_ref() {
            return Ok(t.clone());
        }
        let (user, pw, project) = credentials()?;
        let fresh = self.rest.password_token(&user, &pw, &project).await.context("Keystone token")?;
        *t = Some(fresh.clone());
        Ok(fresh)
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    fn api(&self) -> Rest {
        Rest::new(&self.config.api)
    }

    async fn report_host(&self) -> anyhow::Result<()> {
        let c = &self.config;
        let report = HostReport {
            host: c.host.clone(),
            url: self.url.clone(),
            driver: self.driver.name().into(),
            capacity: Capacity {
                vcpus: c.vcpus.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32)),
                ram_mb: c.ram_mb.unwrap_or_else(machine_ram_mb),
                disk_gb: c.disk_gb,
            },
            enabled: true,
            bridge: c.bridge.clone(),
            datapath_id: self.datapath_id,
            shared_storage: c.shared_storage.clone(),
        };
        let token = self.token().await?;
        let body = serde_json::to_value(&report)?;
        match self.api().call(Method::POST, "/internal/v1/hosts", Some(&token), Some(&body)).await {
            Ok(a) if a.status.is_success() => Ok(()),
            Ok(a) => {
                if a.status == StatusCode::UNAUTHORIZED {
                    self.forget_token().await;
                }
                bail!("reporting to the compute API: HTTP {}: {}", a.status, a.body)
            }
            Err(e) => bail!("reporting to the compute API: {e}"),
        }
    }

    async fn report_server(&self, id: &str, report: &ServerReport) {
        let body = match serde_json::to_value(report) {
            Ok(b) => b,
            Err(e) => return tracing::error!(server = id, error = %e, "report not encodable"),
        };
        for attempt in 0..5u32 {
            let Ok(token) = self.token().await else { continue };
            match self.api().call(Method::PUT, &format!("/internal/v1/servers/{id}"), Some(&token), Some(&body)).await {
                Ok(a) if a.status.is_success() => return,
                // The API forgot the server (deleted before it was built): nothing to report to.
                Ok(a) if a.status == StatusCode::NOT_FOUND => {
                    tracing::info!(server = id, "the compute API no longer knows the server");
                    return;
                }
                other => {
                    let why = match other {
                        Ok(a) => format!("HTTP {}: {}", a.status, a.body),
                        Err(e) => e.to_string(),
                    };
                    tracing::warn!(server = id, attempt, error = %why, "server report not accepted; retrying");
                    self.forget_token().await;
                    tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
                }
            }
        }
    }

    async fn spawn(self: Arc<Self>, req: SpawnRequest) {
        let id = req.server_id.clone();
        let report = match self.build(&req).await {
            Ok(ports) => ServerReport {
                host: self.config.host.clone(),
                power: Some(Power::Running),
                fault: None,
                ports,
                migration: None,
            },
            Err(e) => {
                tracing::warn!(server = %id, error = %format!("{e:#}"), "build failed; cleaning up");
                let _ = self.teardown(&id).await;
                ServerReport {
                    host: self.config.host.clone(),
                    power: None,
                    fault: Some(format!("Build of instance {id} aborted: {e:#}")),
                    ports: vec![],
                    migration: None,
                }
            }
        };
        self.report_server(&id, &report).await;
    }

    /// Plugs and registers every NIC, then boots the guest's DHCP.
    async fn build(&self, req: &SpawnRequest) -> anyhow::Result<Vec<PortInfo>> {
        let token = self.token().await?;
        // Decide each NIC's port id and MAC before anything is plugged.
        let mut nics = Vec::new();
        let mut plan = Vec::new();
        for nic in &req.nics {
            let (port_id, mac, network_id, adopt) = match (&nic.port_id, &nic.network_id) {
                (Some(p), _) => {
                    let port = self
                        .rest
                        .expect(StatusCode::OK, Method::GET, &format!("/v2.0/ports/{p}"), Some(&token), None)
                        .await
                        .with_context(|| format!("port {p}"))?;
                    let mac = port["port"]["mac_address"].as_str().context("port without MAC")?.to_string();
                    let net = port["port"]["network_id"].as_str().unwrap_or_default().to_string();
                    (p.clone(), mac, net, true)
                }
                (None, Some(n)) => (uuid::Uuid::new_v4().to_string(), random_mac(), n.clone(), false),
                (None, None) => bail!("a NIC names neither a network nor a port"),
            };
            let interface = format!("tap{}", &port_id.chars().take(11).collect::<String>());
            nics.push(Nic { interface: interface.clone(), mac: mac.clone(), port_id: Some(port_id.clone()), ip: None });
            plan.push((port_id, mac, network_id, adopt, interface, nic.fixed_ip.clone()));
        }
        let machine = Machine {
            server_id: req.server_id.clone(),
            name: req.name.clone(),
            vcpus: req.flavor.vcpus,
            ram_mb: req.flavor.ram_mb,
            image_path: self.fetch_image(&req.image, &token).await?,
            nics,
        };
        let (driver, bridge) = (self.driver.clone(), self.config.bridge.clone());
        let m = machine.clone();
        tokio::task::spawn_blocking(move || driver.spawn(&m, &bridge)).await.context("driver task")??;
        let (mut registry, _) = connect_grpc(&self.config.netapi_grpc, &token).await.context("netapi gRPC")?;
        let mut ports = Vec::new();
        for (port_id, mac, network_id, adopt, interface, fixed_ip) in plan {
            let reply = registry
                .register_port(pb::RegisterPortRequest {
                    network_id: network_id.clone(),
                    port_id: port_id.clone(),
                    mac_address: if adopt { String::new() } else { mac.clone() },
                    fixed_ips: fixed_ip
                        .map(|ip| vec![pb::FixedIp { subnet_id: String::new(), ip_address: ip }])
                        .unwrap_or_default(),
                    device_id: req.server_id.clone(),
                    device_owner: "compute:nova".into(),
                    binding: Some(pb::BindingSpec {
                        host: self.config.host.clone(),
                        datapath_id: self.datapath_id,
                        interface_name: interface.clone(),
                        vnic_type: "normal".into(),
                    }),
                    project_id: req.project_id.clone(),
                    name: String::new(),
                    security_groups: if adopt { vec![] } else { req.security_groups.clone() },
                    port_security_enabled: None,
                })
                .await
                .map_err(|s| anyhow::anyhow!("registering port {port_id} on network {network_id}: {}", s.message()))?
                .into_inner();
            let port = reply.port.context("netapi answered without the port")?;
            if !adopt {
                self.remember_created(&req.server_id, &port.id);
            }
            ports.push(PortInfo {
                port_id: port.id,
                network_id: port.network_id,
                mac: port.mac_address,
                ips: port.fixed_ips.into_iter().map(|f| f.ip_address).collect(),
                interface,
            });
        }
        self.driver.after_ports(&req.server_id, ports.len()).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(ports)
    }

    /// The image's data on this host (downloaded once from the image API into the state
    /// directory), for drivers that boot from it; None for the namespace driver.
    async fn fetch_image(&self, image: &crate::protocol::ImageSpec, token: &str) -> anyhow::Result<Option<PathBuf>> {
        if self.driver.name() == "namespace" || image.size == 0 {
            return Ok(None);
        }
        let dir = self.config.state_dir.join(&self.config.host).join("images");
        let path = dir.join(&image.id);
        if path.exists() {
            return Ok(Some(path));
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let url = format!("{}/image/v2/images/{}/file", self.config.api.trim_end_matches('/'), image.id);
        let partial = dir.join(format!("{}.part", image.id));
        let (out, header) = (partial.clone(), format!("X-Auth-Token: {token}"));
        let status = tokio::task::spawn_blocking(move || {
            std::process::Command::new("curl").args(["-sSf", "-o"]).arg(&out).args(["-H", &header, &url]).status()
        })
        .await
        .context("image download task")?
        .context("running curl to fetch the image (labs/setup-host.sh installs curl)")?;
        if !status.success() {
            let _ = std::fs::remove_file(&partial);
            bail!("downloading image {} failed", image.id);
        }
        std::fs::rename(&partial, &path).with_context(|| format!("storing image {}", image.id))?;
        Ok(Some(path))
    }

    /// The file listing the ports the agent created for a server (deleted with it; ports
    /// a tenant made and the server adopted are only unbound).
    fn created_file(&self, server_id: &str) -> PathBuf {
        self.config.state_dir.join(&self.config.host).join(format!("ports-{server_id}.json"))
    }

    /// The ports the agent created for a server (see [`Agent::created_file`]).
    fn created_ports(&self, server_id: &str) -> Vec<String> {
        std::fs::read(self.created_file(server_id))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn write_created(&self, server_id: &str, ids: &[String]) {
        let path = self.created_file(server_id);
        if let Err(e) = serde_json::to_vec(ids).map_err(std::io::Error::other).and_then(|b| std::fs::write(&path, b)) {
            tracing::warn!(server = server_id, error = %e, "cannot record the ports it created");
        }
    }

    fn remember_created(&self, server_id: &str, port_id: &str) {
        let mut ids = self.created_ports(server_id);
        ids.push(port_id.to_string());
        self.write_created(server_id, &ids);
    }

    /// Removes the machine and the ports the agent created for it; ports the tenant made
    /// (adopted through `--nic port-id=`) are only unbound.
    async fn teardown(&self, id: &str) -> anyhow::Result<()> {
        let (driver, bridge, sid) = (self.driver.clone(), self.config.bridge.clone(), id.to_string());
        tokio::task::spawn_blocking(move || driver.destroy(&sid, &bridge)).await.context("driver task")??;
        let token = self.token().await?;
        let ports = self
            .rest
            .expect(StatusCode::OK, Method::GET, &format!("/v2.0/ports?device_id={id}"), Some(&token), None)
            .await?;
        let (mut registry, _) = connect_grpc(&self.config.netapi_grpc, &token).await?;
        let path = self.created_file(id);
        let created = self.created_ports(id);
        for p in ports["ports"].as_array().into_iter().flatten() {
            let Some(pid) = p["id"].as_str() else { continue };
            if created.iter().any(|c| c == pid) {
                registry.delete_port(pb::DeletePortRequest { port_id: pid.to_string() }).await.ok();
            } else {
                registry
                    .delete_port_binding(pb::DeletePortBindingRequest {
                        port_id: pid.to_string(),
                        host: self.config.host.clone(),
                    })
                    .await
                    .ok();
            }
        }
        let _ = std::fs::remove_file(&path);
        Ok(())
    }

    async fn act(self: Arc<Self>, id: String, action: Action) {
        let power = match action {
            Action::Pause => Power::Paused,
            Action::Suspend => Power::Suspended,
            Action::Unpause | Action::Resume => Power::Running,
            Action::Delete => {
                let report = match self.teardown(&id).await {
                    Ok(()) => ServerReport {
                        host: self.config.host.clone(),
                        power: Some(Power::Gone),
                        fault: None,
                        ports: vec![],
                        migration: None,
                    },
                    Err(e) => ServerReport {
                        host: self.config.host.clone(),
                        power: None,
                        fault: Some(format!("delete failed: {e:#}")),
                        ports: vec![],
                        migration: None,
                    },
                };
                return self.report_server(&id, &report).await;
            }
        };
        let (driver, sid) = (self.driver.clone(), id.clone());
        let result = tokio::task::spawn_blocking(move || driver.set_power(&sid, power)).await;
        let report = match result {
            Ok(Ok(())) => ServerReport {
                host: self.config.host.clone(),
                power: Some(power),
                fault: None,
                ports: vec![],
                migration: None,
            },
            Ok(Err(e)) => ServerReport {
                host: self.config.host.clone(),
                power: None,
                fault: Some(e.to_string()),
                ports: vec![],
                migration: None,
            },
            Err(e) => ServerReport {
                host: self.config.host.clone(),
                power: None,
                fault: Some(e.to_string()),
                ports: vec![],
                migration: None,
            },
        };
        self.report_server(&id, &report).await;
    }
}

fn random_mac() -> String {
    let b = uuid::Uuid::new_v4().into_bytes();
    format!("fa:16:3e:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

fn machine_ram_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find_map(|l| l.strip_prefix("MemTotal:").map(str::to_string)))
        .and_then(|v| v.split_whitespace().next().and_then(|k| k.parse::<u64>().ok()))
        .map_or(1024, |kb| kb / 1024)
}

fn bridge_datapath_id(bridge: &str) -> anyhow::Result<u64> {
    let out = std::process::Command::new("ovs-vsctl")
        .args(["--timeout=10", "get", "bridge", bridge, "datapath_id"])
        .output()
        .context("running ovs-vsctl (is Open vSwitch installed and running?)")?;
    if !out.status.success() {
        bail!("bridge {bridge}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().trim_matches('"').to_string();
    u64::from_str_radix(&text, 16).with_context(|| format!("bridge {bridge} has no datapath id yet ({text:?})"))
}

/// Whether the request carries a token of the compute service (checked by netapi).
async fn authorized(agent: &Agent, headers: &HeaderMap) -> bool {
    let Some(token) = headers.get("x-auth-token").and_then(|v| v.to_str().ok()) else { return false };
    let Ok(own) = agent.token().await else { return false };
    if token == own {
        return true;
    }
    // Another service token: valid if Keystone says so and it carries admin or service.
    match agent.rest.validate_token(&own, token).await {
        Ok(v) => v["token"]["roles"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["name"] == "admin" || r["name"] == "service")),
        Err(_) => false,
    }
}

async fn post_server(
    State(agent): State<Arc<Agent>>,
    headers: HeaderMap,
    Json(req): Json<SpawnRequest>,
) -> (StatusCode, Json<serde_json::Value>) {
    if !authorized(&agent, &headers).await {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "a service token is required"})));
    }
    if agent.busy.lock().map(|mut b| b.insert(req.server_id.clone(), ()).is_some()).unwrap_or(true) {
        return (StatusCode::CONFLICT, Json(json!({"error": "server is already being built here"})));
    }
    let a = agent.clone();
    tokio::spawn(async move {
        let id = req.server_id.clone();
        a.clone().spawn(req).await;
        if let Ok(mut b) = a.busy.lock() {
            b.remove(&id);
        }
    });
    (StatusCode::ACCEPTED, Json(json!({})))
}

async fn post_action(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<ActionRequest>,
) -> (StatusCode, Json<serde_json::Value>) {
    if !authorized(&agent, &headers).await {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "a service token is required"})));
    }
    tokio::spawn(agent.clone().act(id, req.action));
    (StatusCode::ACCEPTED, Json(json!({})))
}

/// Runs the agent until the process is stopped.
pub async fn run(config: AgentConfig) -> anyhow::Result<()> {
    credentials()?;
    let datapath_id = bridge_datapath_id(&config.bridge)?;
    let state_dir = config.state_dir.join(&config.host);
    let driver: Arc<dyn Driver> = match config.driver.as_str() {
        "namespace" => Arc::new(
            NamespaceDriver::new(&state_dir, std::time::Duration::from_millis(config.ns_migration_pause_ms))
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        "libvirt" => Arc::new(
            LibvirtDriver::new(LibvirtConfig {
                uri: config.libvirt_uri.clone(),
                kernel: config.guest_kernel.clone(),
                initrd: config.guest_initrd.clone(),
                disk: config.guest_disk.clone(),
                state_dir,
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        other => bail!("driver {other:?} is not available (drivers: namespace, libvirt)"),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    let agent = Arc::new(Agent {
        rest: Rest::new(&config.netapi),
        url: format!("http://{addr}"),
        config,
        driver,
        datapath_id,
        token: tokio::sync::Mutex::new(None),
        busy: Mutex::new(HashMap::new()),
        incoming: Mutex::new(HashMap::new()),
    });
    let heart = agent.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = heart.report_host().await {
                tracing::warn!(error = %format!("{e:#}"), "host report failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
            tokio::time::sleep(HEARTBEAT).await;
        }
    });
    tracing::info!(host = %agent.config.host, bridge = %agent.config.bridge, dpid = format!("{datapath_id:016x}"), %addr, "agent up");
    let app = Router::new()
        .route("/v1/health", get(|| async { "ok" }))
        .route("/v1/servers", post(post_server))
        .route("/v1/servers/{id}/action", post(post_action))
        .route("/v1/servers/{id}/migrate", post(migration::post_migrate))
        .route("/v1/migrations/prepare", post(migration::post_prepare))
        .route("/v1/migrations/abort", post(migration::post_abort))
        .route("/v1/migrations/finish", post(migration::post_finish))
        .with_state(agent);
    axum::serve(listener, app).await.context("agent HTTP server")?;
    Ok(())
}
