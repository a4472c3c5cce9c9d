//! Live migration in the Nova API: the `os-migrateLive` server action (admin only, as
//! Nova's policy), `GET /os-migrations` and `GET /servers/{id}/migrations[/{id}]`.
//!
//! The action is checked synchronously, with Nova's errors: 409 unless the server is
//! ACTIVE or PAUSED with no task; 400 when the requested host is unknown, disabled,
//! not reporting, the server's own, or runs another driver, when
//! `block_migration: false` is asked between hosts that do not share storage (or `true`
//! between hosts that do), and when no host fits (the scheduler, the source excluded).
//! Then a migration is recorded (`queued`), the server goes to task `migrating`
//! (status MIGRATING), the source agent is sent a [`MigrateRequest`] and the answer is
//! 202. The source agent's reports move the migration on (`preparing`, `running`,
//! `completed` / `error`) and, at the end, the server (see [`Server::apply_migration`]).
//!
//! `block_migration: "auto"` means a block migration unless both hosts report the same
//! non-empty `shared_storage`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use hyper::Method;
use serde_json::{json, Value};
use tenet_netapi::store::{iso8601, now_unix};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::nova::{host_states, links, visible_server, Microversion};
use super::store::Table;
use super::AppState;
use crate::model::{Image, Migration, Server, TaskState};
use crate::protocol::{ImageSpec, MigrateRequest, MigrationKind, MigrationStatus, Power};
use crate::scheduler::{self, HostState};

/// What `block_migration` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockWanted {
    Auto,
    Yes,
    No,
}

/// The body of `os-migrateLive`: the requested host and `block_migration`.
fn parse_live_migrate(args: &Value) -> ApiResult<(Option<String>, BlockWanted)> {
    let o = args.as_object().ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid input for field/attribute os-migrateLive. Value: {args}. {args} is not of type 'object'"
        ))
    })?;
    for k in o.keys() {
        if !matches!(k.as_str(), "host" | "block_migration" | "disk_over_commit" | "force") {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute os-migrateLive. Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
    }
    let host = match o.get("host") {
        None | Some(Value::Null) => None,
        Some(Value::String(h)) if !h.trim().is_empty() && h.len() <= 255 => Some(h.trim().to_string()),
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute host. Value: {v}. {v} is not valid under any of the given schemas"
            )))
        }
    };
    let block = match o.get("block_migration") {
        None => {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute os-migrateLive. 'block_migration' is a required property",
            ))
        }
        Some(Value::Bool(true)) => BlockWanted::Yes,
        Some(Value::Bool(false)) => BlockWanted::No,
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "auto" => BlockWanted::Auto,
            "true" | "1" | "yes" | "on" => BlockWanted::Yes,
            "false" | "0" | "no" | "off" => BlockWanted::No,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Invalid input for field/attribute block_migration. Value: {s}. '{s}' is not one of ['auto', True, False]"
                )))
            }
        },
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute block_migration. Value: {v}. {v} is not one of ['auto', True, False]"
            )))
        }
    };
    Ok((host, block))
}

/// Whether two hosts share storage: the same non-empty name.
fn shared(a: &HostState, b: &HostState) -> bool {
    !a.report.shared_storage.is_empty() && a.report.shared_storage == b.report.shared_storage
}

/// Picks and checks the destination: the requested host, or the scheduler's choice among
/// the other hosts of the source's driver.
fn destination(hosts: &[HostState], server: &Server, source: &HostState, wanted: Option<&str>) -> ApiResult<HostState> {
    let flavor = server.flavor.spec();
    match wanted {
        Some(h) => {
            if h == source.report.host {
                return Err(ApiError::bad_request(format!(
                    "Unable to migrate instance ({}) to current host ({h}).",
                    server.id
                )));
            }
            let Some(dest) = hosts.iter().find(|x| x.report.host == h) else {
                return Err(ApiError::bad_request(format!("Compute host {h} could not be found.")));
            };
            if !dest.report.enabled {
                return Err(ApiError::bad_request(format!(
                    "Compute service of {h} is unavailable at this time: the host is disabled."
                )));
            }
            if !dest.alive {
                return Err(ApiError::bad_request(format!(
                    "Compute service of {h} is unavailable at this time: its agent has not reported for 3 heartbeats."
                )));
            }
            if dest.report.driver != source.report.driver {
                return Err(ApiError::bad_request(format!(
                    "Host {h} runs the {} driver and the instance's host {} runs {}: live migration needs the same hypervisor type.",
                    dest.report.driver, source.report.host, source.report.driver
                )));
            }
            scheduler::pick(std::slice::from_ref(dest), &flavor, Some(h))
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            Ok(dest.clone())
        }
        None => {
            let candidates: Vec<HostState> = hosts
                .iter()
                .filter(|x| x.report.host != source.report.host && x.report.driver == source.report.driver)
                .cloned()
                .collect();
            if candidates.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "No valid host was found. No other compute host runs the {} driver.",
                    source.report.driver
                )));
            }
            let picked =
                scheduler::pick(&candidates, &flavor, None).map_err(|e| ApiError::bad_request(e.to_string()))?;
            candidates
                .into_iter()
                .find(|x| x.report.host == picked)
                .ok_or_else(|| ApiError::internal(format!("the scheduler picked an unknown host {picked}")))
        }
    }
}

/// The host part of an agent URL (`http://127.0.0.1:4000` -> `127.0.0.1`).
fn address_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h.trim_matches(['[', ']']).to_string(),
        _ => authority.to_string(),
    }
}

/// `POST /servers/{id}/action {"os-migrateLive": {...}}`.
pub async fn live_migrate(state: &AppState, caller: &Caller, id: &str, args: &Value) -> ApiResult<StatusCode> {
    caller.require_admin("os_compute_api:os-migrate-server:migrate_live")?;
    let (wanted, block) = parse_live_migrate(args)?;
    let (request, source_url, migration_uuid) = {
        let _w = state.write().await;
        let mut s = visible_server(state, caller, id).await?;
        s.begin_live_migration().map_err(|e| ApiError::conflict(e.to_string()))?;
        let source_name = s.host.clone().unwrap_or_default();
        let hosts = host_states(state).await?;
        let source = hosts.iter().find(|h| h.report.host == source_name && h.alive).cloned().ok_or_else(|| {
            ApiError::conflict(format!("Compute service of {source_name} is unavailable at this time."))
        })?;
        let dest = destination(&hosts, &s, &source, wanted.as_deref())?;
        let dest_name = dest.report.host.clone();
        let kind = match (block, shared(&source, &dest)) {
            (BlockWanted::No, false) => {
                return Err(ApiError::bad_request(format!(
                    "{dest_name} is not on shared storage: Shared storage live-migration requires either shared storage or boot-from-volume with no local disks."
                )))
            }
            (BlockWanted::Yes, true) => {
                return Err(ApiError::bad_request(format!(
                    "{dest_name} is not on local storage: Block migration can not be used with shared storage."
                )))
            }
            (BlockWanted::No, true) | (BlockWanted::Auto, true) => MigrationKind::Live,
            (BlockWanted::Yes, false) | (BlockWanted::Auto, false) => MigrationKind::Block,
        };
        let now = now_unix();
        let all: Vec<Migration> = state.store.list(Table::Migrations, None).await?;
        let m = Migration {
            id: all.iter().map(|m| m.id).max().unwrap_or(0) + 1,
            uuid: uuid::Uuid::new_v4().to_string(),
            server_id: s.id.clone(),
            project_id: s.project_id.clone(),
            user_id: caller.user_id.clone(),
            source_host: source_name.clone(),
            dest_host: dest_name.clone(),
            dest_address: address_of(&dest.report.url),
            kind,
            status: MigrationStatus::Queued,
            error: None,
            flavor_id: s.flavor.id.clone(),
            created: now,
            updated: now,
        };
        state.store.put(Table::Migrations, &m.uuid, &m.server_id, &m).await?;
        s.task_state = Some(TaskState::Migrating);
        s.updated = now;
        state.store.put(Table::Servers, &s.id, &s.project_id, &s).await?;
        let image = state.store.get::<Image>(Table::Images, &s.image_id).await?;
        let request = MigrateRequest {
            migration_id: m.uuid.clone(),
            server_id: s.id.clone(),
            name: s.name.clone(),
            kind,
            dest_host: dest_name.clone(),
            dest_url: dest.report.url.clone(),
            flavor: s.flavor.spec(),
            image: ImageSpec {
                id: s.image_id.clone(),
                disk_format: image.as_ref().and_then(|i| i.disk_format.clone()).unwrap_or_else(|| "raw".into()),
                size: image.as_ref().and_then(|i| i.size).unwrap_or(0),
            },
            ports: s.ports.clone(),
            power: if s.power == Some(Power::Paused) { Power::Paused } else { Power::Running },
        };
        tracing::info!(server = %s.id, migration = %m.uuid, from = %source_name, to = %dest_name, ?kind, "live migration accepted");
        (request, source.report.url.clone(), m.uuid)
    };
    if let Err(e) = send(state, &source_url, &request).await {
        let _w = state.write().await;
        let now = now_unix();
        if let Some(mut m) = state.store.get::<Migration>(Table::Migrations, &migration_uuid).await? {
            m.status = MigrationStatus::Failed;
            m.error = Some(e.clone());
            m.updated = now;
            state.store.put(Table::Migrations, &m.uuid, &m.server_id, &m).await?;
        }
        if let Some(mut s) = state.store.get::<Server>(Table::Servers, id).await? {
            if s.task_state == Some(TaskState::Migrating) {
                s.task_state = None;
                s.updated = now;
                state.store.put(Table::Servers, id, &s.project_id, &s).await?;
            }
        }
        return Err(ApiError::conflict(format!("Compute host of instance {id} could not be reached: {e}")));
    }
    Ok(StatusCode::ACCEPTED)
}

/// Posts the migrate request to the source agent.
async fn send(state: &AppState, url: &str, request: &MigrateRequest) -> Result<(), String> {
    let token = state.keystone.service_token().await.map_err(|e| e.message)?;
    let body = serde_json::to_value(request).map_err(|e| e.to_string())?;
    let url = format!("{}/v1/servers/{}/migrate", url.trim_end_matches('/'), request.server_id);
    let a = state.http.send(Method::POST, &url, &[("x-auth-token", &token)], Some(&body)).await?;
    if a.status.is_success() {
        Ok(())
    } else {
        Err(format!("the agent answered {}: {}", a.status, a.body))
    }
}

/// A migration as `GET /os-migrations` shows it.
fn migration_body(state: &AppState, m: &Migration, mv: Microversion) -> Value {
    let mut b = json!({
        "id": m.id,
        "instance_uuid": m.server_id,
        "source_compute": m.source_host,
        "dest_compute": m.dest_host,
        "source_node": m.source_host,
        "dest_node": m.dest_host,
        "dest_host": m.dest_address,
        "status": m.status.name(),
        "old_instance_type_id": m.flavor_id,
        "new_instance_type_id": m.flavor_id,
        "created_at": iso8601(m.created),
        "updated_at": iso8601(m.updated),
    });
    if mv.0 >= 23 {
        b["migration_type"] = json!("live-migration");
        if m.status.in_progress() {
            b["links"] = links(state, &format!("servers/{}/migrations", m.server_id), &m.id.to_string());
        }
    }
    if mv.0 >= 59 {
        b["uuid"] = json!(m.uuid);
    }
    if mv.0 >= 80 {
        b["project_id"] = json!(m.project_id);
        b["user_id"] = json!(m.user_id);
    }
    b
}

/// A live migration in progress as `GET /servers/{id}/migrations` shows it.
fn server_migration_body(m: &Migration, mv: Microversion) -> Value {
    let mut b = json!({
        "id": m.id,
        "server_uuid": m.server_id,
        "source_compute": m.source_host,
        "dest_compute": m.dest_host,
        "source_node": m.source_host,
        "dest_node": m.dest_host,
        "dest_host": m.dest_address,
        "status": m.status.name(),
        // Not measured: the hypervisors' progress is not followed.
        "memory_total_bytes": null,
        "memory_processed_bytes": null,
        "memory_remaining_bytes": null,
        "disk_total_bytes": null,
        "disk_processed_bytes": null,
        "disk_remaining_bytes": null,
        "created_at": iso8601(m.created),
        "updated_at": iso8601(m.updated),
    });
    if mv.0 >= 59 {
        b["uuid"] = json!(m.uuid);
    }
    if mv.0 >= 80 {
        b["project_id"] = json!(m.project_id);
        b["user_id"] = json!(m.user_id);
    }
    b
}

/// `GET /os-migrations` (admin): filters `instance_uuid`, `status`, `host` (source or
/// destination), `source_compute`, `migration_type`, `project_id`, `user_id`; newest first.
pub async fn list_migrations(
    State(state): State<AppState>,
    caller: Caller,
    Extension(mv): Extension<Microversion>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    caller.require_admin("os_compute_api:os-migrations:index")?;
    let q = |k: &str| query.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let mut all: Vec<Migration> = match q("instance_uuid") {
        Some(server) => state.store.list(Table::Migrations, Some(server)).await?,
        None => state.store.list(Table::Migrations, None).await?,
    };
    if let Some(st) = q("status") {
        all.retain(|m| m.status.name().eq_ignore_ascii_case(st));
    }
    if let Some(h) = q("host") {
        all.retain(|m| m.source_host == h || m.dest_host == h);
    }
    if let Some(h) = q("source_compute") {
        all.retain(|m| m.source_host == h);
    }
    if let Some(t) = q("migration_type") {
        all.retain(|_| t == "live-migration");
    }
    if let Some(p) = q("project_id") {
        all.retain(|m| m.project_id == p);
    }
    if let Some(u) = q("user_id") {
        all.retain(|m| m.user_id == u);
    }
    all.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
    if let Some(limit) = q("limit").and_then(|l| l.parse::<usize>().ok()) {
        all.truncate(limit);
    }
    let list: Vec<Value> = all.iter().map(|m| migration_body(&state, m, mv)).collect();
    Ok(Json(json!({ "migrations": list })))
}

/// `GET /servers/{id}/migrations` (admin): its live migrations in progress.
pub async fn list_server_migrations(
    State(state): State<AppState>,
    caller: Caller,
    Extension(mv): Extension<Microversion>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require_admin("os_compute_api:servers:migrations:index")?;
    visible_server(&state, &caller, &id).await?;
    let all: Vec<Migration> = state.store.list(Table::Migrations, Some(&id)).await?;
    let list: Vec<Value> =
        all.iter().filter(|m| m.status.in_progress()).map(|m| server_migration_body(m, mv)).collect();
    Ok(Json(json!({ "migrations": list })))
}

/// `GET /servers/{id}/migrations/{mid}` (admin): one live migration in progress.
pub async fn show_server_migration(
    State(state): State<AppState>,
    caller: Caller,
    Extension(mv): Extension<Microversion>,
    Path((id, mid)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require_admin("os_compute_api:servers:migrations:show")?;
    visible_server(&state, &caller, &id).await?;
    let all: Vec<Migration> = state.store.list(Table::Migrations, Some(&id)).await?;
    let m = all.iter().find(|m| m.id.to_string() == mid || m.uuid == mid).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, format!("Migration {mid} for server {id} could not be found."))
    })?;
    if !m.status.in_progress() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Live migration {mid} for server {id} is not in progress."),
        ));
    }
    Ok(Json(json!({ "migration": server_migration_body(m, mv) })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_migration_takes_auto_booleans_and_their_strings() {
        let p = |v: Value| parse_live_migrate(&v).map_err(|e| e.message);
        assert_eq!(p(json!({"host": null, "block_migration": "auto"})), Ok((None, BlockWanted::Auto)));
        assert_eq!(p(json!({"host": "h2", "block_migration": true})), Ok((Some("h2".into()), BlockWanted::Yes)));
        assert_eq!(
            p(json!({"host": "h2", "block_migration": false, "disk_over_commit": false})),
            Ok((Some("h2".into()), BlockWanted::No))
        );
        assert_eq!(p(json!({"block_migration": "False"})), Ok((None, BlockWanted::No)));
        assert!(p(json!({"host": "h"})).is_err_and(|e| e.contains("'block_migration' is a required property")));
        assert!(p(json!({"block_migration": "maybe"})).is_err());
        assert!(p(json!({"block_migration": true, "bogus": 1})).is_err_and(|e| e.contains("'bogus' was unexpected")));
        assert!(p(json!("x")).is_err());
    }

    #[test]
    fn dest_host_is_the_agents_address() {
        assert_eq!(address_of("http://127.0.0.1:4000"), "127.0.0.1");
        assert_eq!(address_of("http://[::1]:80/x"), "::1");
        assert_eq!(address_of("http://hv2"), "hv2");
    }
}
