//! Live migration, agent side. The source agent orchestrates (as Nova's source compute
//! does) and the destination agent follows Neutron's multiple port bindings:
//!
//! 1. The API sends the source `POST /v1/servers/{id}/migrate` ([`MigrateRequest`]); the
//!    source reports the migration `preparing`.
//! 2. The source asks the destination `POST /v1/migrations/prepare`
//!    ([`PrepareMigration`]: the NICs with port id, MAC and source interface, the block
//!    flag and the disk's size). The destination creates an INACTIVE binding of every
//!    port on itself (netapi `UpdatePortBinding`: its host, its bridge's datapath id,
//!    the destination interface name of [`migration_interface`]) and has its driver
//!    prepare ([`crate::driver::Driver::prepare_incoming`]); it answers its bridge, datapath id,
//!    libvirt URI, interface names and file paths ([`PreparedMigration`]), or undoes
//!    its part and answers an error.
//! 3. The source reports `running` and has its driver move the machine
//!    ([`crate::driver::Driver::migrate`]). On failure it asks the destination to abort
//!    (`POST /v1/migrations/abort`: `DeletePortBinding(dest)` for every port,
//!    [`crate::driver::Driver::abort_incoming`]) and reports the migration `error` with the reason, the
//!    server running (or paused) at the source as before.
//! 4. On success the source activates every port's destination binding
//!    (`ActivateBinding(dest)`: the source binding turns INACTIVE), tells the destination
//!    `POST /v1/migrations/finish` (it records the ports the agent created, so it deletes
//!    them with the server, and [`crate::driver::Driver::finish_incoming`]), waits `--migration-grace-ms`
//!    (the network delivers to both places meanwhile), deletes the source bindings
//!    (`DeletePortBinding(source)`), cleans up what the machine left here
//!    ([`crate::driver::Driver::cleanup_after_outgoing`]) and reports the migration `completed` with the
//!    server at the destination and its ports on the destination interfaces.
//!
//! A failure after the machine moved (the bindings cannot be activated) leaves the server
//! at the destination in ERROR with the reason: it cannot be rolled back by then.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use tenet_netapi::client::{connect_grpc, Method, Rest};
use tenet_netapi::grpc::pb;

use super::{authorized, Agent};
use crate::driver::{Incoming, MovingNic, Outgoing, Prepared};
use crate::protocol::{
    migration_interface, FinishMigration, MigrateRequest, MigrationKind, MigrationNic, MigrationRef, MigrationStatus,
    MigrationUpdate, PortInfo, PrepareMigration, PreparedMigration, PreparedNic, ServerReport,
};

/// How long the destination may take to prepare (bindings, interfaces, a disk).
const PREPARE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the destination may take to finish or abort.
const FOLLOW_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// A migration this agent is the destination of, between prepare and finish/abort.
pub(super) struct IncomingState {
    pub incoming: Incoming,
    /// The ports whose INACTIVE binding on this host it created.
    pub bindings: Vec<String>,
}

/// Why a migration failed, and whether the machine had already moved.
struct Failure {
    reason: String,
    moved: bool,
}

fn failed(reason: impl Into<String>) -> Failure {
    Failure { reason: reason.into(), moved: false }
}

impl Agent {
    /// Marks a server busy; false when it already is.
    fn claim(&self, server_id: &str) -> bool {
        self.busy.lock().map(|mut b| b.insert(server_id.to_string(), ()).is_none()).unwrap_or(false)
    }

    fn release(&self, server_id: &str) {
        if let Ok(mut b) = self.busy.lock() {
            b.remove(server_id);
        }
    }

    /// Sends `body` to the destination agent's `path`; its JSON answer on 200.
    async fn call_dest(&self, dest_url: &str, path: &str, body: &Value, timeout: Duration) -> anyhow::Result<Value> {
        let token = self.token().await?;
        let rest = Rest::new(dest_url);
        let a = tokio::time::timeout(timeout, rest.call(Method::POST, path, Some(&token), Some(body)))
            .await
            .map_err(|_| anyhow::anyhow!("{dest_url}{path}: no answer within {} s", timeout.as_secs()))?
            .with_context(|| format!("{dest_url}{path}"))?;
        if a.status != StatusCode::OK {
            let why = a.body["error"].as_str().map(str::to_string).unwrap_or_else(|| a.body.to_string());
            if a.status == StatusCode::UNAUTHORIZED {
                self.forget_token().await;
            }
            bail!("{why}");
        }
        Ok(a.body)
    }

    fn progress(
        &self,
        req: &MigrateRequest,
        host: &str,
        status: MigrationStatus,
        error: Option<String>,
    ) -> ServerReport {
        ServerReport {
            host: host.to_string(),
            power: Some(req.power),
            fault: None,
            ports: req.ports.clone(),
            migration: Some(MigrationUpdate { migration_id: req.migration_id.clone(), status, error }),
        }
    }

    /// Source side: runs one migration and reports its outcome.
    async fn migrate_out(self: Arc<Self>, req: MigrateRequest) {
        let id = req.server_id.clone();
        let me = self.config.host.clone();
        tracing::info!(server = %id, migration = %req.migration_id, dest = %req.dest_host, kind = ?req.kind, "live migration starts");
        self.report_server(&id, &self.progress(&req, &me, MigrationStatus::Preparing, None)).await;
        let report = match self.migrate_steps(&req).await {
            Ok(ports) => {
                tracing::info!(server = %id, migration = %req.migration_id, dest = %req.dest_host, "live migration completed");
                ServerReport { ports, ..self.progress(&req, &req.dest_host, MigrationStatus::Completed, None) }
            }
            Err(f) if f.moved => {
                tracing::error!(server = %id, migration = %req.migration_id, error = %f.reason, "live migration failed after the switch-over");
                ServerReport {
                    fault: Some(format!(
                        "Live migration to {} failed after the switch-over: {}",
                        req.dest_host, f.reason
                    )),
                    ..self.progress(&req, &req.dest_host, MigrationStatus::Error, Some(f.reason))
                }
            }
            Err(f) => {
                tracing::warn!(server = %id, migration = %req.migration_id, error = %f.reason, "live migration failed; the server stays here");
                self.progress(&req, &me, MigrationStatus::Error, Some(f.reason))
            }
        };
        self.report_server(&id, &report).await;
    }

    async fn migrate_steps(&self, req: &MigrateRequest) -> Result<Vec<PortInfo>, Failure> {
        let id = req.server_id.clone();
        let (driver, sid) = (self.driver.clone(), id.clone());
        let disk_size = tokio::task::spawn_blocking(move || driver.disk_size(&sid))
            .await
            .map_err(|e| failed(e.to_string()))?
            .map_err(|e| failed(format!("reading the disk: {e}")))?;
        let prepare = PrepareMigration {
            migration_id: req.migration_id.clone(),
            server_id: id.clone(),
            name: req.name.clone(),
            source_host: self.config.host.clone(),
            kind: req.kind,
            flavor: req.flavor.clone(),
            image: req.image.clone(),
            power: req.power,
            nics: req
                .ports
                .iter()
                .map(|p| MigrationNic {
                    port_id: p.port_id.clone(),
                    mac: p.mac.clone(),
                    source_interface: p.interface.clone(),
                })
                .collect(),
            disk_size,
        };
        let body = serde_json::to_value(&prepare).map_err(|e| failed(e.to_string()))?;
        let abort_body = json!(MigrationRef { migration_id: req.migration_id.clone(), server_id: id.clone() });
        let prepared: PreparedMigration = match self
            .call_dest(&req.dest_url, "/v1/migrations/prepare", &body, PREPARE_TIMEOUT)
            .await
            .and_then(|v| serde_json::from_value(v).context("the destination's answer"))
        {
            Ok(p) => p,
            Err(e) => {
                // The destination undid its part; an abort makes sure (it is idempotent).
                let _ = self.call_dest(&req.dest_url, "/v1/migrations/abort", &abort_body, FOLLOW_UP_TIMEOUT).await;
                return Err(failed(format!("preparing {}: {e:#}", req.dest_host)));
            }
        };
        self.report_server(&id, &self.progress(req, &self.config.host, MigrationStatus::Running, None)).await;

        let mut nics = Vec::new();
        for p in &req.ports {
            let dest = prepared.nics.iter().find(|n| n.port_id == p.port_id).map(|n| n.interface.clone());
            let Some(dest_interface) = dest else {
                let _ = self.call_dest(&req.dest_url, "/v1/migrations/abort", &abort_body, FOLLOW_UP_TIMEOUT).await;
                return Err(failed(format!("{} prepared no interface for port {}", req.dest_host, p.port_id)));
            };
            nics.push(MovingNic {
                port_id: p.port_id.clone(),
                mac: p.mac.clone(),
                source_interface: p.interface.clone(),
                dest_interface,
            });
        }
        let outgoing = Outgoing {
            server_id: id.clone(),
            block: req.kind == MigrationKind::Block,
            nics,
            source_bridge: self.config.bridge.clone(),
            dest_bridge: prepared.bridge.clone(),
            dest_uri: prepared.libvirt_uri.clone(),
            prepared: Prepared {
                disk_path: prepared.disk_path.as_ref().map(Into::into),
                console_path: prepared.console_path.as_ref().map(Into::into),
            },
            power: req.power,
        };
        let (driver, out) = (self.driver.clone(), outgoing.clone());
        let moved = tokio::task::spawn_blocking(move || driver.migrate(&out)).await;
        let why = match moved {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("driver task: {e}")),
        };
        if let Some(why) = why {
            if let Err(e) = self.call_dest(&req.dest_url, "/v1/migrations/abort", &abort_body, FOLLOW_UP_TIMEOUT).await
            {
                tracing::warn!(server = %id, error = %format!("{e:#}"), "the destination did not abort cleanly");
            }
            return Err(failed(why));
        }

        // The machine runs at the destination: from here on there is no going back.
        let token = self.token().await.map_err(|e| Failure { reason: format!("{e:#}"), moved: true })?;
        self.activate_bindings(&token, &req.ports, &req.dest_host)
            .await
            .map_err(|e| Failure { reason: format!("{e:#}"), moved: true })?;
        let finish = json!(FinishMigration {
            migration_id: req.migration_id.clone(),
            server_id: id.clone(),
            created_ports: self.created_ports(&id),
        });
        if let Err(e) = self.call_dest(&req.dest_url, "/v1/migrations/finish", &finish, FOLLOW_UP_TIMEOUT).await {
            tracing::warn!(server = %id, error = %format!("{e:#}"), "the destination did not finish cleanly");
        }
        tokio::time::sleep(Duration::from_millis(self.config.migration_grace_ms)).await;
        match connect_grpc(&self.config.netapi_grpc, &token).await {
            Ok((mut registry, _)) => {
                for p in &req.ports {
                    let gone = registry
                        .delete_port_binding(pb::DeletePortBindingRequest {
                            port_id: p.port_id.clone(),
                            host: self.config.host.clone(),
                        })
                        .await;
                    if let Err(s) = gone {
                        tracing::warn!(server = %id, port = %p.port_id, error = %s.message(), "cannot delete the source binding");
                    }
                }
            }
            Err(e) => tracing::warn!(server = %id, error = %e, "netapi gRPC: the source bindings stay"),
        }
        let driver = self.driver.clone();
        match tokio::task::spawn_blocking(move || driver.cleanup_after_outgoing(&outgoing)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(server = %id, error = %e, "cleaning up after the migration"),
            Err(e) => tracing::warn!(server = %id, error = %e, "cleaning up after the migration"),
        }
        let _ = std::fs::remove_file(self.created_file(&id));
        Ok(req
            .ports
            .iter()
            .map(|p| {
                let interface = prepared.nics.iter().find(|n| n.port_id == p.port_id).map(|n| n.interface.clone());
                PortInfo { interface: interface.unwrap_or_else(|| p.interface.clone()), ..p.clone() }
            })
            .collect())
    }

    /// Makes every port's binding on `host` ACTIVE (three tries each).
    async fn activate_bindings(&self, token: &str, ports: &[PortInfo], host: &str) -> anyhow::Result<()> {
        let (mut registry, _) = connect_grpc(&self.config.netapi_grpc, token).await.context("netapi gRPC")?;
        for p in ports {
            let mut attempt = 0;
            loop {
                let r = registry
                    .activate_binding(pb::ActivateBindingRequest { port_id: p.port_id.clone(), host: host.to_string() })
                    .await;
                match r {
                    Ok(_) => break,
                    // Already active there (a retry after a lost answer).
                    Err(s) if s.code() == tonic::Code::AlreadyExists || s.message().contains("already active") => break,
                    Err(s) if attempt < 2 => {
                        tracing::warn!(port = %p.port_id, host, error = %s.message(), "activating the binding; retrying");
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(s) => bail!("activating the binding of port {} on {host}: {}", p.port_id, s.message()),
                }
            }
        }
        Ok(())
    }

    /// Destination side: INACTIVE bindings and the driver's preparation.
    async fn prepare_in(&self, req: PrepareMigration) -> anyhow::Result<PreparedMigration> {
        if req.source_host == self.config.host {
            bail!("{} is the server's own host", self.config.host);
        }
        let nics: Vec<MovingNic> = req
            .nics
            .iter()
            .map(|n| MovingNic {
                port_id: n.port_id.clone(),
                mac: n.mac.clone(),
                source_interface: n.source_interface.clone(),
                dest_interface: migration_interface(&n.source_interface),
            })
            .collect();
        let incoming = Incoming {
            server_id: req.server_id.clone(),
            name: req.name.clone(),
            block: req.kind == MigrationKind::Block,
            disk_size: req.disk_size,
            nics,
        };
        let token = self.token().await?;
        let (mut registry, _) = connect_grpc(&self.config.netapi_grpc, &token).await.context("netapi gRPC")?;
        let mut bindings = Vec::new();
        let mut result: anyhow::Result<Prepared> = Ok(Prepared::default());
        for nic in &incoming.nics {
            let made = registry
                .update_port_binding(pb::UpdatePortBindingRequest {
                    port_id: nic.port_id.clone(),
                    binding: Some(pb::BindingSpec {
                        host: self.config.host.clone(),
                        datapath_id: self.datapath_id,
                        interface_name: nic.dest_interface.clone(),
                        vnic_type: "normal".into(),
                    }),
                })
                .await;
            match made {
                Ok(_) => bindings.push(nic.port_id.clone()),
                Err(s) => {
                    result =
                        Err(anyhow::anyhow!("binding port {} on {}: {}", nic.port_id, self.config.host, s.message()));
                    break;
                }
            }
        }
        if result.is_ok() {
            let (driver, inc, bridge) = (self.driver.clone(), incoming.clone(), self.config.bridge.clone());
            result = match tokio::task::spawn_blocking(move || driver.prepare_incoming(&inc, &bridge)).await {
                Ok(r) => r.map_err(|e| anyhow::anyhow!("{e}")),
                Err(e) => Err(anyhow::anyhow!("driver task: {e}")),
            };
        }
        let prepared = match result {
            Ok(p) => p,
            Err(e) => {
                for port_id in &bindings {
                    let _ = registry
                        .delete_port_binding(pb::DeletePortBindingRequest {
                            port_id: port_id.clone(),
                            host: self.config.host.clone(),
                        })
                        .await;
                }
                return Err(e);
            }
        };
        tracing::info!(server = %req.server_id, migration = %req.migration_id, from = %req.source_host, "incoming migration prepared");
        let answer = PreparedMigration {
            host: self.config.host.clone(),
            bridge: self.config.bridge.clone(),
            datapath_id: self.datapath_id,
            libvirt_uri: if self.driver.name() == "libvirt" {
                self.config.libvirt_migration_uri.clone().unwrap_or_else(|| self.config.libvirt_uri.clone())
            } else {
                String::new()
            },
            nics: incoming
                .nics
                .iter()
                .map(|n| PreparedNic { port_id: n.port_id.clone(), interface: n.dest_interface.clone() })
                .collect(),
            disk_path: prepared.disk_path.map(|p| p.to_string_lossy().into_owned()),
            console_path: prepared.console_path.map(|p| p.to_string_lossy().into_owned()),
        };
        if let Ok(mut m) = self.incoming.lock() {
            m.insert(req.migration_id.clone(), IncomingState { incoming, bindings });
        }
        Ok(answer)
    }

    /// Destination side: the migration failed; undoes the preparation.
    async fn abort_in(&self, req: &MigrationRef) -> anyhow::Result<()> {
        let Some(state) = self.incoming.lock().ok().and_then(|mut m| m.remove(&req.migration_id)) else {
            return Ok(()); // never prepared (or already aborted)
        };
        self.release(&req.server_id);
        let token = self.token().await?;
        let (mut registry, _) = connect_grpc(&self.config.netapi_grpc, &token).await.context("netapi gRPC")?;
        let mut problems = Vec::new();
        for port_id in &state.bindings {
            let r = registry
                .delete_port_binding(pb::DeletePortBindingRequest {
                    port_id: port_id.clone(),
                    host: self.config.host.clone(),
                })
                .await;
            if let Err(s) = r {
                if s.code() != tonic::Code::NotFound {
                    problems.push(format!("deleting the binding of port {port_id}: {}", s.message()));
                }
            }
        }
        let (driver, inc, bridge) = (self.driver.clone(), state.incoming, self.config.bridge.clone());
        match tokio::task::spawn_blocking(move || driver.abort_incoming(&inc, &bridge)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => problems.push(e.to_string()),
            Err(e) => problems.push(e.to_string()),
        }
        tracing::info!(server = %req.server_id, migration = %req.migration_id, "incoming migration aborted");
        if problems.is_empty() {
            Ok(())
        } else {
            bail!("{}", problems.join("; "))
        }
    }

    /// Destination side: the server is ours now.
    async fn finish_in(&self, req: &FinishMigration) -> anyhow::Result<()> {
        let state = self
            .incoming
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&req.migration_id))
            .with_context(|| format!("no incoming migration {}", req.migration_id))?;
        self.release(&req.server_id);
        self.write_created(&req.server_id, &req.created_ports);
        let (driver, inc, bridge) = (self.driver.clone(), state.incoming, self.config.bridge.clone());
        tokio::task::spawn_blocking(move || driver.finish_incoming(&inc, &bridge))
            .await
            .context("driver task")?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        tracing::info!(server = %req.server_id, migration = %req.migration_id, "incoming migration finished");
        Ok(())
    }
}

fn refused() -> (StatusCode, Json<Value>) {
    (StatusCode::UNAUTHORIZED, Json(json!({"error": "a service token is required"})))
}

/// `POST /v1/servers/{id}/migrate` (API -> source agent).
pub(super) async fn post_migrate(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<MigrateRequest>,
) -> (StatusCode, Json<Value>) {
    if !authorized(&agent, &headers).await {
        return refused();
    }
    if req.server_id != id {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "the body names another server"})));
    }
    if !agent.driver.list().contains(&id) {
        return (StatusCode::NOT_FOUND, Json(json!({"error": format!("server {id} does not run on this host")})));
    }
    if !agent.claim(&id) {
        return (StatusCode::CONFLICT, Json(json!({"error": "the server is busy here"})));
    }
    let a = agent.clone();
    tokio::spawn(async move {
        a.clone().migrate_out(req).await;
        a.release(&id);
    });
    (StatusCode::ACCEPTED, Json(json!({})))
}

/// `POST /v1/migrations/prepare` (source agent -> destination agent).
pub(super) async fn post_prepare(
    State(agent): State<Arc<Agent>>,
    headers: HeaderMap,
    Json(req): Json<PrepareMigration>,
) -> (StatusCode, Json<Value>) {
    if !authorized(&agent, &headers).await {
        return refused();
    }
    let id = req.server_id.clone();
    if !agent.claim(&id) {
        return (StatusCode::CONFLICT, Json(json!({"error": format!("server {id} is busy on {}", agent.config.host)})));
    }
    match agent.prepare_in(req).await {
        Ok(p) => (StatusCode::OK, Json(json!(p))),
        Err(e) => {
            agent.release(&id);
            tracing::warn!(server = %id, error = %format!("{e:#}"), "cannot prepare an incoming migration");
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": format!("{e:#}")})))
        }
    }
}

/// `POST /v1/migrations/abort`.
pub(super) async fn post_abort(
    State(agent): State<Arc<Agent>>,
    headers: HeaderMap,
    Json(req): Json<MigrationRef>,
) -> (StatusCode, Json<Value>) {
    if !authorized(&agent, &headers).await {
        return refused();
    }
    match agent.abort_in(&req).await {
        Ok(()) => (StatusCode::OK, Json(json!({}))),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": format!("{e:#}")}))),
    }
}

/// `POST /v1/migrations/finish`.
pub(super) async fn post_finish(
    State(agent): State<Arc<Agent>>,
    headers: HeaderMap,
    Json(req): Json<FinishMigration>,
) -> (StatusCode, Json<Value>) {
    if !authorized(&agent, &headers).await {
        return refused();
    }
    match agent.finish_in(&req).await {
        Ok(()) => (StatusCode::OK, Json(json!({}))),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": format!("{e:#}")}))),
    }
}
