//! Networks, each with a segment: a VLAN id (1..3999; the controller keeps 4000..4094 to
//! carry steered traffic to IPS instances) the controller tags the network's
//! traffic with on fabric links, allocated at creation (lowest free) and shown to admins
//! as Neutron's provider attributes (`provider:network_type`, `provider:segmentation_id`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};
use sqlx::Row;

use super::{
    apply_name_description, created, fetch, fetch_for_write, list_response, list_visible, new_id, one, read_conn,
    standard_attrs, touch, NETWORK, SUBNET,
};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{opt_bool, opt_int, opt_str, opt_str_list, resource_body};
use crate::store::{get_body, list_bodies, Col, Store, StoreError, WriteTx};
use crate::AppState;

const CREATE_FIELDS: &[&str] = &[
    "name",
    "description",
    "admin_state_up",
    "shared",
    "project_id",
    "tenant_id",
    "mtu",
    "port_security_enabled",
    "availability_zone_hints",
    "router:external",
    "dns_domain",
];
const UPDATE_FIELDS: &[&str] =
    &["name", "description", "admin_state_up", "shared", "mtu", "port_security_enabled", "dns_domain"];

/// Default MTU: room for a tunnel header on a 1500-byte fabric.
const DEFAULT_MTU: i64 = 1450;

/// The segment ids networks get.
const SEGMENTS: std::ops::RangeInclusive<i64> = 1..=3999;

/// The provider attributes, which only admins see (as in Neutron).
const PROVIDER_ATTRS: &[&str] = &["provider:network_type", "provider:physical_network", "provider:segmentation_id"];

/// The lowest free segment id, in `tx`; 409 when every id is taken.
async fn allocate_segment(tx: &mut WriteTx) -> ApiResult<i64> {
    let used: Vec<i64> =
        sqlx::query("SELECT segmentation_id FROM networks WHERE segmentation_id IS NOT NULL ORDER BY segmentation_id")
            .fetch_all(&mut **tx)
            .await
            .map_err(StoreError::from)?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)?;
    let mut candidate = *SEGMENTS.start();
    for u in used {
        if u == candidate {
            candidate += 1;
        } else if u > candidate {
            break;
        }
    }
    if SEGMENTS.contains(&candidate) {
        Ok(candidate)
    } else {
        Err(ApiError::conflict(
            "NoNetworkAvailable",
            "Unable to create the network. No tenant network is available for allocation.",
        ))
    }
}

/// Sets the provider attributes of a network body to segment `seg`.
fn set_segment(body: &mut Value, seg: i64) {
    body["provider:network_type"] = json!("vlan");
    body["provider:physical_network"] = Value::Null;
    body["provider:segmentation_id"] = json!(seg);
}

/// A network as `caller` may see it: without the provider attributes unless admin.
pub fn present(caller: &Caller, mut body: Value) -> Value {
    if !caller.is_admin() {
        if let Some(o) = body.as_object_mut() {
            for k in PROVIDER_ATTRS {
                o.remove(*k);
            }
        }
    }
    body
}

/// Gives a segment to every network that has none (made before segments existed), in
/// one write transaction; nothing is written when all have one. Returns how many got one.
pub async fn assign_missing_segments(store: &Store) -> ApiResult<usize> {
    let missing: i64 = sqlx::query("SELECT COUNT(*) FROM networks WHERE segmentation_id IS NULL")
        .fetch_one(store.pool())
        .await
        .map_err(StoreError::from)?
        .try_get(0)
        .map_err(StoreError::from)?;
    if missing == 0 {
        return Ok(0);
    }
    let mut tx = store.begin_write().await?;
    let ids: Vec<String> = sqlx::query("SELECT id FROM networks WHERE segmentation_id IS NULL ORDER BY rev, id")
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::from)?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)?;
    for id in &ids {
        let seg = allocate_segment(&mut tx).await?;
        let Some(mut net) = get_body(&mut tx, NETWORK.table, id).await? else { continue };
        sqlx::query("UPDATE networks SET segmentation_id = $1 WHERE id = $2")
            .bind(seg)
            .bind(id.clone())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        set_segment(&mut net, seg);
        touch(&mut net, &tx);
        tx.update("networks", "network", &net).await?;
        tracing::info!(network = %id, segment = seg, "segment assigned");
    }
    tx.commit().await?;
    Ok(ids.len())
}

/// `POST /v2.0/networks`.
pub async fn create(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult<Response> {
    caller.require_writer()?;
    let obj = resource_body(&body, "network", CREATE_FIELDS)?;
    let project = caller.owning_project(opt_str(&obj, "project_id")?.or(opt_str(&obj, "tenant_id")?).as_deref())?;
    let shared = opt_bool(&obj, "shared")?.unwrap_or(false);
    if shared && !caller.is_admin() {
        return Err(ApiError::forbidden("rule:create_network:shared is disallowed by policy"));
    }
    if opt_bool(&obj, "router:external")?.unwrap_or(false) {
        return Err(ApiError::bad_request("External networks are not supported."));
    }
    let mtu = opt_int(&obj, "mtu")?.unwrap_or(DEFAULT_MTU);
    if !(68..=9000).contains(&mtu) {
        return Err(ApiError::invalid_input(format!("mtu {mtu} is out of range 68..9000")));
    }
    let mut tx = state.store.begin_write().await?;
    let segment = allocate_segment(&mut tx).await?;
    let id = new_id();
    let mut b = standard_attrs(&tx, &id, &project, &obj);
    b.insert("admin_state_up".into(), json!(opt_bool(&obj, "admin_state_up")?.unwrap_or(true)));
    b.insert("status".into(), json!("ACTIVE"));
    b.insert("shared".into(), json!(shared));
    b.insert("subnets".into(), json!([]));
    b.insert("mtu".into(), json!(mtu));
    b.insert("port_security_enabled".into(), json!(opt_bool(&obj, "port_security_enabled")?.unwrap_or(true)));
    b.insert("router:external".into(), json!(false));
    b.insert(
        "availability_zone_hints".into(),
        json!(opt_str_list(&obj, "availability_zone_hints")?.unwrap_or_default()),
    );
    b.insert("availability_zones".into(), json!([]));
    b.insert("ipv4_address_scope".into(), Value::Null);
    b.insert("ipv6_address_scope".into(), Value::Null);
    b.insert("l2_adjacency".into(), json!(true));
    b.insert("dns_domain".into(), json!(opt_str(&obj, "dns_domain")?.unwrap_or_default()));
    b.insert("qos_policy_id".into(), Value::Null);
    let mut body = Value::Object(b);
    set_segment(&mut body, segment);
    tx.insert(
        "networks",
        "network",
        &body,
        &[("shared", Col::Int(i64::from(shared))), ("segmentation_id", Col::Int(segment))],
    )
    .await?;
    tx.commit().await?;
    tracing::info!(network = %id, project = %project, segment, "network created");
    Ok(created(NETWORK, present(&caller, body)))
}

/// `GET /v2.0/networks`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let mut conn = read_conn(&state).await?;
    let items = list_visible(&mut conn, NETWORK, &caller).await?.into_iter().map(|n| present(&caller, n)).collect();
    Ok(list_response(NETWORK, items, &q))
}

/// `GET /v2.0/networks/{id}`.
pub async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let mut conn = read_conn(&state).await?;
    Ok(one(NETWORK, present(&caller, fetch(&mut conn, NETWORK, &caller, &id).await?)))
}

/// `PUT /v2.0/networks/{id}`.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = resource_body(&body, "network", UPDATE_FIELDS)?;
    let mut tx = state.store.begin_write().await?;
    let mut net = fetch_for_write(&mut tx, NETWORK, &caller, &id).await?;
    apply_name_description(&mut net, &obj)?;
    if let Some(v) = opt_bool(&obj, "admin_state_up")? {
        net["admin_state_up"] = json!(v);
    }
    if let Some(v) = opt_bool(&obj, "port_security_enabled")? {
        net["port_security_enabled"] = json!(v);
    }
    if let Some(v) = opt_int(&obj, "mtu")? {
        net["mtu"] = json!(v);
    }
    if let Some(v) = opt_str(&obj, "dns_domain")? {
        net["dns_domain"] = json!(v);
    }
    if let Some(v) = opt_bool(&obj, "shared")? {
        if !caller.is_admin() {
            return Err(ApiError::forbidden("rule:update_network:shared is disallowed by policy"));
        }
        net["shared"] = json!(v);
        sqlx::query("UPDATE networks SET shared = $1 WHERE id = $2")
            .bind(i64::from(v))
            .bind(id.clone())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
    }
    touch(&mut net, &tx);
    tx.update("networks", "network", &net).await?;
    tx.commit().await?;
    Ok(one(NETWORK, present(&caller, net)))
}

/// `DELETE /v2.0/networks/{id}`: 409 while ports exist; its subnets go with it.
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let mut tx = state.store.begin_write().await?;
    let net = fetch_for_write(&mut tx, NETWORK, &caller, &id).await?;
    let ports: i64 = sqlx::query("SELECT COUNT(*) FROM ports WHERE network_id = $1")
        .bind(id.clone())
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::from)?
        .try_get(0)
        .map_err(StoreError::from)?;
    if ports > 0 {
        return Err(ApiError::conflict(
            "NetworkInUse",
            format!("Unable to complete operation on network {id}. There are one or more ports still in use on the network."),
        ));
    }
    for subnet in list_bodies(&mut tx, SUBNET.table, Some(("network_id", &id))).await? {
        tx.delete("subnets", "subnet", &subnet).await?;
    }
    tx.delete("networks", "network", &net).await?;
    tx.commit().await?;
    tracing::info!(network = %id, project = %caller.project_id, "network deleted");
    Ok(StatusCode::NO_CONTENT)
}
