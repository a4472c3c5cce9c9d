//! The topology API for network admins: REST/JSON over axum (`--api ADDR`).
//!
//! Every answer is computed from the live [`Network`] and [`Registry`]; flows are
//! read from the switch itself. `GET /v1/openapi.json` describes every route.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tenet_topology::{fmt_dpid, Dpid};
use tokio::net::TcpListener;

use crate::network::Network;
use crate::query::{self, QueryError, SwitchView};
use crate::session::Registry;
use crate::wire::of13;
use crate::wire::of13::multipart::{FlowStatsRequest, MultipartReply, MultipartRequest};
use crate::wire::OFP13;

/// The OpenAPI document served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// What the handlers read.
#[derive(Clone)]
pub struct ApiState {
    pub network: Arc<Network>,
    pub registry: Registry,
    /// Tenant mode's engine, when the controller runs in tenant mode.
    pub tenant: Option<Arc<crate::tenant::engine::Tenant>>,
}

/// An API error: a status and a message, served as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn bad_request(msg: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }
    fn not_found(msg: impl Into<String>) -> Self {
        ApiError(StatusCode::NOT_FOUND, msg.into())
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Invalid(msg) => ApiError::bad_request(msg),
            QueryError::NotFound(msg) => ApiError::not_found(msg),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/topology", get(topology))
        .route("/v1/switches", get(switches))
        .route("/v1/switches/{dpid}", get(switch))
        .route("/v1/switches/{dpid}/flows", get(flows))
        .route("/v1/switches/{dpid}/drain", post(drain))
        .route("/v1/switches/{dpid}/undrain", post(undrain))
        .route("/v1/links", get(links))
        .route("/v1/hosts", get(hosts))
        .route("/v1/paths", get(paths))
        .route("/v1/events", get(events))
        .route("/v1/tenant", get(tenant_status))
        .route("/v1/verify", get(verify))
        .route("/v1/ips/events", post(ips_events))
        .route("/v1/ips/alerts", get(ips_alerts))
        .fallback(|| async { ApiError::not_found("no such route; see /v1/openapi.json") })
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await
}

async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

fn dpid_arg(text: &str) -> Result<Dpid, ApiError> {
    Ok(query::dpid_arg(text)?)
}

fn switch_json(v: &SwitchView) -> Value {
    let ports: Vec<Value> = v.switch.as_ref().map(|s| s.ports.values().map(|p| json!(p)).collect()).unwrap_or_default();
    let handle = v.handle.as_ref();
    json!({
        "dpid": fmt_dpid(v.dpid),
        "ports": ports,
        "drained": v.drained(),
        "connected": handle.is_some(),
        "connection": handle.map(|h| json!({
            "peer": h.info.peer.to_string(),
            "version": query::version_name(h.info.version),
        })),
        "features": handle.map(|h| json!({
            "n_buffers": h.info.n_buffers,
            "n_tables": h.info.n_tables,
            "capabilities": h.info.capabilities,
        })),
        "role": query::role_name(v.role()),
    })
}

fn all_switches(st: &ApiState) -> Vec<Value> {
    let views = query::switches(&st.network.topology(), &st.registry);
    views.iter().map(switch_json).collect()
}

async fn topology(State(st): State<ApiState>) -> ApiResult {
    let topo = st.network.topology();
    let switches: Vec<Value> = query::switches(&topo, &st.registry).iter().map(switch_json).collect();
    let links: Vec<Value> = topo.links().map(|l| json!(l)).collect();
    let hosts: Vec<Value> = topo.hosts().map(|h| json!(h)).collect();
    Ok(Json(json!({ "switches": switches, "links": links, "hosts": hosts })))
}

async fn switches(State(st): State<ApiState>) -> ApiResult {
    Ok(Json(Value::Array(all_switches(&st))))
}

async fn switch(State(st): State<ApiState>, UrlPath(dpid): UrlPath<String>) -> ApiResult {
    let dpid = dpid_arg(&dpid)?;
    let view = query::switch(&st.network.topology(), &st.registry, dpid)?;
    Ok(Json(switch_json(&view)))
}

async fn flows(State(st): State<ApiState>, UrlPath(dpid): UrlPath<String>) -> ApiResult {
    let dpid = dpid_arg(&dpid)?;
    let handle = st
        .registry
        .get(dpid)
        .ok_or_else(|| ApiError::not_found(format!("switch {} is not connected", fmt_dpid(dpid))))?;
    if handle.info.version != OFP13 {
        return Err(ApiError(
            StatusCode::NOT_IMPLEMENTED,
            "flow stats are read from OpenFlow 1.3 switches only".into(),
        ));
    }
    let req = of13::Message::MultipartRequest { flags: 0, body: MultipartRequest::Flow(FlowStatsRequest::default()) };
    let parts = handle
        .request(req, Duration::from_secs(5))
        .await
        .map_err(|e| ApiError(StatusCode::BAD_GATEWAY, format!("switch {}: {e}", fmt_dpid(dpid))))?;
    let mut out = Vec::new();
    for part in parts {
        if let of13::Message::MultipartReply { body: MultipartReply::Flow(stats), .. } = part {
            out.extend(stats.iter().map(|f| {
                json!({
                    "table_id": f.table_id,
                    "priority": f.priority,
                    "cookie": format!("{:#x}", f.cookie),
                    "match": f.match_.fields.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
                    "instructions": f.instructions.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
                    "packet_count": f.packet_count,
                    "byte_count": f.byte_count,
                    "duration_sec": f.duration_sec,
                    "idle_timeout": f.idle_timeout,
                    "hard_timeout": f.hard_timeout,
                })
            }));
        }
    }
    Ok(Json(Value::Array(out)))
}

async fn set_drained(st: ApiState, dpid: String, drained: bool) -> ApiResult {
    let dpid = dpid_arg(&dpid)?;
    let view = query::set_drained(&st.network, &st.registry, dpid, drained)?;
    Ok(Json(switch_json(&view)))
}

async fn drain(State(st): State<ApiState>, UrlPath(dpid): UrlPath<String>) -> ApiResult {
    set_drained(st, dpid, true).await
}

async fn undrain(State(st): State<ApiState>, UrlPath(dpid): UrlPath<String>) -> ApiResult {
    set_drained(st, dpid, false).await
}

async fn links(State(st): State<ApiState>) -> ApiResult {
    let topo = st.network.topology();
    Ok(Json(Value::Array(topo.links().map(|l| json!(l)).collect())))
}

async fn hosts(State(st): State<ApiState>) -> ApiResult {
    let topo = st.network.topology();
    Ok(Json(Value::Array(topo.hosts().map(|h| json!(h)).collect())))
}

#[derive(Debug, Deserialize)]
struct PathQuery {
    src: Option<String>,
    dst: Option<String>,
    mode: Option<String>,
    k: Option<usize>,
}

async fn paths(State(st): State<ApiState>, Query(q): Query<PathQuery>) -> ApiResult {
    let (Some(src), Some(dst)) = (q.src.as_deref(), q.dst.as_deref()) else {
        return Err(ApiError::bad_request("both src and dst are required (host MAC or IP, or a dpid)"));
    };
    let found = query::paths(&st.network.topology(), src, dst, q.mode.as_deref(), q.k)?;
    Ok(Json(Value::Array(found.iter().map(|p| json!(p)).collect())))
}

async fn events(State(st): State<ApiState>) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let rx = st.network.topology().subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let data = match rx.recv().await {
            Ok(ev) => serde_json::to_string(&ev).unwrap_or_else(|_| "{}".into()),
            // A slow reader missed events: say so, and go on.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                json!({ "type": "lagged", "missed": n }).to_string()
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(Event::default().data(data)), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn tenant_of(st: &ApiState) -> Result<&Arc<crate::tenant::engine::Tenant>, ApiError> {
    st.tenant
        .as_ref()
        .ok_or_else(|| ApiError(StatusCode::CONFLICT, "the controller does not run in tenant mode".into()))
}

/// `GET /v1/tenant`: tenant mode's feed revision and each switch's reconciliation.
async fn tenant_status(State(st): State<ApiState>) -> ApiResult {
    let t = tenant_of(&st)?;
    Ok(Json(serde_json::to_value(t.status()).unwrap_or(Value::Null)))
}

#[derive(Debug, Deserialize)]
struct IpsEventsQuery {
    port_pair: Option<String>,
}

/// `POST /v1/ips/events?port_pair=ID`: an IPS instance's EVE JSON lines; alert and
/// drop events are attributed to ports and kept.
async fn ips_events(State(st): State<ApiState>, Query(q): Query<IpsEventsQuery>, body: String) -> ApiResult {
    let t = tenant_of(&st)?;
    let pair = q.port_pair.filter(|p| !p.is_empty()).ok_or_else(|| ApiError::bad_request("port_pair is required"))?;
    let view = t.view();
    if !view.state.port_pairs.contains_key(&pair) {
        return Err(ApiError::not_found(format!("port pair {pair} is unknown")));
    }
    let done = t.alerts.ingest(&view.state, &pair, &body);
    Ok(Json(serde_json::to_value(done).unwrap_or(Value::Null)))
}

#[derive(Debug, Deserialize)]
struct IpsAlertsQuery {
    project_id: Option<String>,
    port_id: Option<String>,
}

/// `GET /v1/ips/alerts?project_id=&port_id=`: kept alerts, oldest first.
async fn ips_alerts(State(st): State<ApiState>, Query(q): Query<IpsAlertsQuery>) -> ApiResult {
    let t = tenant_of(&st)?;
    let alerts = t.alerts.list(q.project_id.as_deref(), q.port_id.as_deref());
    Ok(Json(json!({ "alerts": alerts })))
}

/// `GET /v1/verify`: reads every switch's flows and groups and proves isolation between
/// tenant networks (see `tenant::verify`).
async fn verify(State(st): State<ApiState>) -> ApiResult {
    use crate::tenant::verify as v;
    let t = tenant_of(&st)?;
    let view = t.view();
    let mut switches = std::collections::BTreeMap::new();
    for handle in st.registry.switches() {
        let flows = crate::tenant::reconcile::read(&handle, Duration::from_secs(10))
            .await
            .map_err(|e| ApiError(StatusCode::BAD_GATEWAY, format!("switch {}: {e}", fmt_dpid(handle.info.dpid))))?;
        switches.insert(handle.info.dpid, flows);
    }
    let links = st.network.topology().links().map(|l| ((l.src.dpid, l.src.port), (l.dst.dpid, l.dst.port))).collect();
    let edges = view
        .edges
        .iter()
        .filter_map(|(&(dpid, port), id)| {
            let p = view.state.ports.get(id)?;
            Some(v::EdgePort { dpid, port, network: p.network_id.clone(), port_id: id.clone() })
        })
        .collect();
    let input = v::VerifyInput { switches, fabric: v::Fabric { links }, edges };
    let report = tokio::task::spawn_blocking(move || v::verify(&input, 20))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("verification failed: {e}")))?;
    Ok(Json(serde_json::to_value(report).unwrap_or(Value::Null)))
}
