//! The endpoints agents call (see [`crate::protocol`]): host registration and heartbeat,
//! and server reports. Admin or service role only.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use tenet_netapi::store::now_unix;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::nova::{host_states, now_ms, HostRecord};
use super::store::Table;
use super::AppState;
use crate::model::{Migration, Server};
use crate::protocol::{HostReport, Power, ServerReport};

/// The routes under `/internal/v1`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/hosts", get(list_hosts).post(report_host)).route("/servers/{id}", put(report_server))
}

fn require_service(caller: &Caller) -> ApiResult<()> {
    if caller.is_service_or_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("The admin or service role is required."))
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Malformed request body: {e}")))
}

/// `POST /internal/v1/hosts`: an agent registers or heartbeats.
async fn report_host(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult<StatusCode> {
    require_service(&caller)?;
    let report: HostReport = parse(&body)?;
    if report.host.is_empty() || report.host.len() > 255 || report.host.contains('/') {
        return Err(ApiError::bad_request("'host' must be a non-empty name without '/'"));
    }
    if !(report.url.starts_with("http://") || report.url.starts_with("https://")) {
        return Err(ApiError::bad_request("'url' must be an http:// or https:// URL"));
    }
    let _w = state.write().await;
    let known = state.store.get::<HostRecord>(Table::Hosts, &report.host).await?.is_some();
    let host = report.host.clone();
    state.store.put(Table::Hosts, &host, &host, &HostRecord { report, last_seen_ms: now_ms() }).await?;
    if !known {
        tracing::info!(host, "compute host registered");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /internal/v1/hosts`: the hosts with their usage and liveness.
async fn list_hosts(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    require_service(&caller)?;
    let records: Vec<HostRecord> = state.store.list(Table::Hosts, None).await?;
    let hosts = host_states(&state).await?;
    let list: Vec<Value> = hosts
        .iter()
        .map(|h| {
            let seen = records.iter().find(|r| r.report.host == h.report.host).map(|r| r.last_seen_ms);
            json!({"report": h.report, "alive": h.alive, "used": h.used, "servers": h.servers, "last_seen_ms": seen})
        })
        .collect();
    Ok(Json(json!({ "hosts": list })))
}

/// `PUT /internal/v1/servers/{id}`: an agent reports a server's state.
async fn report_server(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    require_service(&caller)?;
    let report: ServerReport = parse(&body)?;
    let _w = state.write().await;
    let mut s: Server =
        state.store.get(Table::Servers, &id).await?.ok_or_else(|| ApiError::not_found("Instance", &id))?;
    if let Some(update) = &report.migration {
        let now = now_unix();
        let mut m: Migration = state
            .store
            .get(Table::Migrations, &update.migration_id)
            .await?
            .filter(|m: &Migration| m.server_id == id)
            .ok_or_else(|| ApiError::not_found("Migration", &update.migration_id))?;
        m.advance(update.status, update.error.clone(), now);
        state.store.put(Table::Migrations, &m.uuid, &m.server_id, &m).await?;
        s.apply_migration(
            &m.dest_host,
            update.status,
            update.error.as_deref(),
            &report.host,
            report.power,
            report.fault.clone(),
            report.ports.clone(),
            now,
        );
        state.store.put(Table::Servers, &id, &s.project_id, &s).await?;
        tracing::info!(server = %id, migration = %m.uuid, status = m.status.name(), host = ?s.host, server_status = s.status(), "migration reported");
        return Ok(StatusCode::NO_CONTENT);
    }
    if s.host.as_deref().is_some_and(|h| h != report.host) {
        tracing::info!(server = %id, from = ?s.host, to = %report.host, "server reported by another host");
    }
    // Action reports carry no ports: the server keeps those it has.
    if !report.ports.is_empty() || report.power == Some(Power::Gone) {
        s.ports = report.ports.clone();
    }
    let keep = s.apply_report(&report.host, report.power, report.fault.clone(), now_unix());
    if keep {
        state.store.put(Table::Servers, &id, &s.project_id, &s).await?;
        tracing::info!(server = %id, status = s.status(), task = ?s.task_state, "server reported");
    } else {
        state.store.delete(Table::Servers, &id).await?;
        tracing::info!(server = %id, "server gone");
    }
    Ok(StatusCode::NO_CONTENT)
}
