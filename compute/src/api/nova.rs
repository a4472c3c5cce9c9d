//! The Nova v2.1 subset: versions, microversions, flavors, servers, server actions and
//! hypervisors, with Nova's bodies and error wrappers.

use std::collections::{BTreeMap, HashSet};

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use hyper::Method;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha224};
use tenet_netapi::store::{iso8601, now_unix};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::store::Table;
use super::AppState;
use crate::model::{power_state_code, Fault, Flavor, Image, Server, TaskState, VmState};
use crate::protocol::{Action, ActionRequest, Capacity, HostReport, ImageSpec, NicRequest, SpawnRequest, HEARTBEAT};
use crate::scheduler::{self, HostState};

/// The newest microversion served.
pub const MAX_MICROVERSION: u32 = 96;

/// The microversion of a request: 2.`0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Microversion(pub u32);

/// The routes under `/compute/v2.1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/flavors", get(list_flavors).post(create_flavor))
        .route("/flavors/detail", get(list_flavors_detail))
        .route("/flavors/{id}", get(get_flavor).delete(delete_flavor))
        .route("/flavors/{id}/os-extra_specs", get(flavor_extra_specs))
        .route("/servers", get(list_servers).post(create_server))
        .route("/servers/detail", get(list_servers_detail))
        .route("/servers/{id}", get(get_server).delete(delete_server))
        .route("/servers/{id}/action", post(server_action))
        .route("/servers/{id}/migrations", get(super::migrations::list_server_migrations))
        .route("/servers/{id}/migrations/{mid}", get(super::migrations::show_server_migration))
        .route("/os-migrations", get(super::migrations::list_migrations))
        .route("/os-hypervisors", get(list_hypervisors))
        .route("/os-hypervisors/detail", get(list_hypervisors))
}

/// Parses `OpenStack-API-Version: compute 2.X` / `X-OpenStack-Nova-API-Version: 2.X`,
/// refuses versions out of range (406) and echoes the version in the answer.
pub async fn microversion(mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    let wanted = headers
        .get_all("openstack-api-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|v| {
            let mut parts = v.split_whitespace();
            (parts.next()? == "compute").then(|| parts.next().unwrap_or("").to_string())
        })
        .or_else(|| {
            headers.get("x-openstack-nova-api-version").and_then(|v| v.to_str().ok()).map(|v| v.trim().to_string())
        });
    let minor = match wanted.as_deref() {
        None => 1,
        Some("latest") => MAX_MICROVERSION,
        Some(v) => match v.split_once('.').and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?))) {
            Some((2, m)) if (1..=MAX_MICROVERSION).contains(&m) => m,
            Some(_) => {
                return ApiError::new(
                    StatusCode::NOT_ACCEPTABLE,
                    format!(
                        "Version {v} is not supported by the API. Minimum is 2.1 and maximum is 2.{MAX_MICROVERSION}."
                    ),
                )
                .into_response()
            }
            None => {
                return ApiError::bad_request(format!(
                    "API Version String {v} is of invalid format. Must be of format MajorNum.MinorNum."
                ))
                .into_response()
            }
        },
    };
    req.extensions_mut().insert(Microversion(minor));
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("compute 2.{minor}")) {
        h.insert("openstack-api-version", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("2.{minor}")) {
        h.insert("x-openstack-nova-api-version", v);
    }
    h.insert("vary", HeaderValue::from_static("OpenStack-API-Version, X-OpenStack-Nova-API-Version"));
    resp
}

fn version_body(state: &AppState) -> Value {
    json!({
        "id": "v2.1",
        "status": "CURRENT",
        "version": format!("2.{MAX_MICROVERSION}"),
        "min_version": "2.1",
        "updated": "2013-07-23T11:33:21Z",
        "links": [
            {"rel": "self", "href": format!("{}/", state.compute_url())},
            {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
        ],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}],
    })
}

/// `GET /compute`: the versions (no token).
pub async fn versions(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"versions": [version_body(&state)]}))
}

/// `GET /compute/v2.1`: the version document (no token).
pub async fn version(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"version": version_body(&state)}))
}

/// Parses a JSON request body.
fn parse_body(body: &Bytes) -> ApiResult<Value> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Malformed request body: {e}")))
}

/// A non-negative integer given as a number or a numeric string.
fn as_uint(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

/// Nova's `self` and `bookmark` links of `{coll}/{id}`.
pub fn links(state: &AppState, coll: &str, id: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{}/{coll}/{id}", state.compute_url())},
        {"rel": "bookmark", "href": format!("{}/compute/{coll}/{id}", state.public_url)},
    ])
}

// ---------------------------------------------------------------- flavors

fn flavor_body(state: &AppState, f: &Flavor, mv: Microversion) -> Value {
    let mut b = json!({
        "id": f.id,
        "name": f.name,
        "ram": f.ram,
        "vcpus": f.vcpus,
        "disk": f.disk,
        "OS-FLV-EXT-DATA:ephemeral": 0,
        "OS-FLV-DISABLED:disabled": false,
        "swap": if mv.0 >= 75 { json!(0) } else { json!("") },
        "rxtx_factor": 1.0,
        "os-flavor-access:is_public": f.is_public,
        "links": links(state, "flavors", &f.id),
    });
    if mv.0 >= 55 {
        b["description"] = json!(f.description);
    }
    if mv.0 >= 61 {
        b["extra_specs"] = json!({});
    }
    b
}

async fn visible_flavors(state: &AppState, caller: &Caller, query: &[(String, String)]) -> ApiResult<Vec<Flavor>> {
    let all: Vec<Flavor> = state.store.list(Table::Flavors, None).await?;
    let min_ram = query.iter().find(|(k, _)| k == "minRam").and_then(|(_, v)| v.parse::<u64>().ok()).unwrap_or(0);
    let min_disk = query.iter().find(|(k, _)| k == "minDisk").and_then(|(_, v)| v.parse::<u64>().ok()).unwrap_or(0);
    let name = query.iter().find(|(k, _)| k == "name").map(|(_, v)| v.as_str());
    Ok(all
        .into_iter()
        .filter(|f| f.is_public || caller.is_admin())
        .filter(|f| f.ram >= min_ram && f.disk >= min_disk && name.map_or(true, |n| f.name == n))
        .collect())
}

async fn list_flavors(
    State(state): State<AppState>,
    caller: Caller,
    Extension(mv): Extension<Microversion>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let flavors = visible_flavors(&state, &caller, &query).await?;
    let list: Vec<Value> = flavors
        .iter()
        .map(|f| {
            let mut b = json!({"id": f.id, "name": f.name, "links": links(&state, "flavors", &f.id)});
            if mv.0 >= 55 {
                b["description"] = json!(f.description);
            }
            b
        })
        .collect();
    Ok(Json(json!({ "flavors": list })))
}

async fn list_flavors_detail(
    State(state): State<AppState>,
    caller: Caller,
    Extension(mv): Extension<Microversion>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let flavors = visible_flavors(&state, &caller, &query).await?;
    let list: Vec<Value> = flavors.iter().map(|f| flavor_body(&state, f, mv)).collect();
    Ok(Json(json!({ "flavors": list })))
}

async fn get_flavor(
    State(state): State<AppState>,
    _caller: Caller,
    Extension(mv): Extension<Microversion>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let f: Flavor = state.store.get(Table::Flavors, &id).await?.ok_or_else(|| ApiError::not_found("Flavor", &id))?;
    Ok(Json(json!({"flavor": flavor_body(&state, &f, mv)})))
}

async fn flavor_extra_specs(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let _: Flavor = state.store.get(Table::Flavors, &id).await?.ok_or_else(|| ApiError::not_found("Flavor", &id))?;
    Ok(Json(json!({"extra_specs": {}})))
}

async fn create_flavor(
    State(state): State<AppState>,
    caller: Caller,
    Extension(mv): Extension<Microversion>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require_admin("os_compute_api:os-flavor-manage:create")?;
    let req = parse_body(&body)?;
    let f = req
        .get("flavor")
        .filter(|f| f.is_object())
        .ok_or_else(|| ApiError::bad_request("'flavor' is a required property"))?;
    let name =
        f.get("name").and_then(Value::as_str).map(str::trim).filter(|n| !n.is_empty() && n.len() <= 255).ok_or_else(
            || {
                ApiError::bad_request(
                    "Invalid input for field/attribute name: a non-empty string of at most 255 characters is required",
                )
            },
        )?;
    let field = |key: &str, min: u64| -> ApiResult<u64> {
        f.get(key).and_then(as_uint).filter(|v| *v >= min && *v <= i32::MAX as u64).ok_or_else(|| {
            ApiError::bad_request(format!("Invalid input for field/attribute {key}: an integer >= {min} is required"))
        })
    };
    let ram = field("ram", 1)?;
    let vcpus = u32::try_from(field("vcpus", 1)?).map_err(|_| ApiError::bad_request("vcpus is too large"))?;
    let disk = field("disk", 0)?;
    let id = match f.get("id") {
        None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
        Some(Value::String(s)) if s == "auto" => uuid::Uuid::new_v4().to_string(),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 && !s.contains('/') => s.clone(),
        Some(_) => return Err(ApiError::bad_request("Invalid input for field/attribute id")),
    };
    let is_public = f.get("os-flavor-access:is_public").and_then(Value::as_bool).unwrap_or(true);
    let description = f.get("description").and_then(Value::as_str).map(str::to_string);
    let flavor = Flavor { id: id.clone(), name: name.to_string(), vcpus, ram, disk, is_public, description };
    let _w = state.write().await;
    let all: Vec<Flavor> = state.store.list(Table::Flavors, None).await?;
    if all.iter().any(|x| x.name == flavor.name) {
        return Err(ApiError::conflict(format!("Flavor with name {} already exists.", flavor.name)));
    }
    if all.iter().any(|x| x.id == flavor.id) {
        return Err(ApiError::conflict(format!("Flavor with ID {} already exists.", flavor.id)));
    }
    state.store.put(Table::Flavors, &id, "", &flavor).await?;
    tracing::info!(flavor = %id, name, "flavor created");
    Ok(Json(json!({"flavor": flavor_body(&state, &flavor, mv)})))
}

async fn delete_flavor(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    caller.require_admin("os_compute_api:os-flavor-manage:delete")?;
    let _w = state.write().await;
    if !state.store.delete(Table::Flavors, &id).await? {
        return Err(ApiError::not_found("Flavor", &id));
    }
    Ok(StatusCode::ACCEPTED)
}

// ---------------------------------------------------------------- servers

/// Nova's hostId: a per-project opaque id of the host.
fn host_id(project: &str, host: Option<&str>) -> String {
    match host {
        Some(h) => {
            let digest = Sha224::digest(format!("{project}{h}").as_bytes());
            digest.iter().map(|b| format!("{b:02x}")).collect()
        }
        None => String::new(),
    }
}

/// Renders a server (network names from the cache; see [`learn_network_names`]).
fn server_body(state: &AppState, s: &Server, caller: &Caller, mv: Microversion) -> Value {
    let names = state.network_names.lock().map(|m| m.clone()).unwrap_or_default();
    let mut addresses: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for p in &s.ports {
        let net = names.get(&p.network_id).cloned().unwrap_or_else(|| p.network_id.clone());
        let entry = addresses.entry(net).or_default();
        for ip in &p.ips {
            let addr = ip.split('/').next().unwrap_or(ip);
            entry.push(json!({
                "addr": addr,
                "version": if addr.contains(':') { 6 } else { 4 },
                "OS-EXT-IPS:type": "fixed",
                "OS-EXT-IPS-MAC:mac_addr": p.mac,
            }));
        }
    }
    let flavor = if mv.0 >= 47 {
        json!({
            "original_name": s.flavor.name, "vcpus": s.flavor.vcpus, "ram": s.flavor.ram, "disk": s.flavor.disk,
            "ephemeral": 0, "swap": 0, "extra_specs": {},
        })
    } else {
        json!({"id": s.flavor.id, "links": [{"rel": "bookmark", "href": format!("{}/compute/flavors/{}", state.public_url, s.flavor.id)}]})
    };
    let launched = matches!(s.vm_state, VmState::Active | VmState::Paused | VmState::Suspended | VmState::Stopped);
    let mut b = json!({
        "id": s.id,
        "name": s.name,
        "status": s.status(),
        "tenant_id": s.project_id,
        "user_id": s.user_id,
        "metadata": {},
        "hostId": host_id(&s.project_id, s.host.as_deref()),
        "image": {"id": s.image_id, "links": [{"rel": "bookmark", "href": format!("{}/compute/images/{}", state.public_url, s.image_id)}]},
        "flavor": flavor,
        "created": iso8601(s.created),
        "updated": iso8601(s.updated),
        "addresses": addresses,
        "accessIPv4": "",
        "accessIPv6": "",
        "links": links(state, "servers", &s.id),
        "OS-DCF:diskConfig": "MANUAL",
        "progress": 0,
        "OS-EXT-AZ:availability_zone": "nova",
        "config_drive": "",
        "key_name": null,
        "OS-SRV-USG:launched_at": if launched { json!(iso8601(s.created)) } else { Value::Null },
        "OS-SRV-USG:terminated_at": null,
        "OS-EXT-STS:task_state": s.task_state.map(TaskState::name),
        "OS-EXT-STS:vm_state": s.vm_state.name(),
        "OS-EXT-STS:power_state": power_state_code(s.power),
        "os-extended-volumes:volumes_attached": [],
        // None requested: the ports get the project's default group.
        "security_groups": if s.security_groups.is_empty() {
            json!([{"name": "default"}])
        } else {
            json!(s.security_groups.iter().map(|g| json!({"name": g})).collect::<Vec<_>>())
        },
        "locked": false,
    });
    if caller.is_admin() {
        b["OS-EXT-SRV-ATTR:host"] = json!(s.host);
        b["OS-EXT-SRV-ATTR:hypervisor_hostname"] = json!(s.host);
        b["OS-EXT-SRV-ATTR:instance_name"] = json!(format!("instance-{}", s.id.get(..8).unwrap_or(&s.id)));
    }
    if mv.0 >= 19 {
        b["description"] = Value::Null;
    }
    if mv.0 >= 26 {
        b["tags"] = json!([]);
    }
    if mv.0 >= 73 {
        b["locked_reason"] = Value::Null;
    }
    if mv.0 >= 63 {
        b["trusted_image_certificates"] = Value::Null;
    }
    if mv.0 >= 90 {
        b["OS-EXT-SRV-ATTR:hostname"] = json!(s.name);
    }
    if mv.0 >= 96 {
        b["pinned_availability_zone"] = Value::Null;
    }
    // Nova shows a fault in ERROR; a failed live migration leaves one on a server that
    // still runs (cleared by its next successful operation).
    if let Some(f) = &s.fault {
        b["fault"] = json!({"code": f.code, "message": f.message, "created": iso8601(f.created)});
    }
    b
}

/// Looks up (with the caller's token) the names of networks not yet known.
async fn learn_network_names(state: &AppState, caller: &Caller, servers: &[Server]) {
    let known: HashSet<String> = state.network_names.lock().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    let wanted: HashSet<&str> = servers
        .iter()
        .flat_map(|s| s.ports.iter().map(|p| p.network_id.as_str()))
        .filter(|n| !known.contains(*n))
        .collect();
    for net in wanted {
        if let Ok(Some(v)) = neutron_get(state, &caller.token, "networks", net).await {
            if let Some(name) = v.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                if let Ok(mut m) = state.network_names.lock() {
                    m.insert(net.to_string(), name.to_string());
                }
            }
        }
    }
}

/// `GET {netapi}/v2.0/{coll}/{id}` with `token`: the object, or None on 404.
async fn neutron_get(state: &AppState, token: &str, coll: &str, id: &str) -> ApiResult<Option<Value>> {
    if id.is_empty() || id.contains(['/', '?', '#', '%', ' ']) {
        return Ok(None);
    }
    let url = format!("{}/v2.0/{coll}/{id}", state.keystone.base());
    let a =
        state.http.send(Method::GET, &url, &[("x-auth-token", token)], None).await.map_err(ApiError::unavailable)?;
    match a.status {
        StatusCode::OK => {
            let key = coll.trim_end_matches('s').replace('-', "_");
            Ok(a.body.get(&key).cloned())
        }
        StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST => Ok(None),
        s => Err(ApiError::unavailable(format!("the network service answered {s} for {coll}/{id}"))),
    }
}

/// `GET {netapi}/v2.0/{coll}?{query}` with `token`.
async fn neutron_list(state: &AppState, token: &str, coll: &str, query: &str) -> ApiResult<Vec<Value>> {
    let url = format!("{}/v2.0/{coll}?{query}", state.keystone.base());
    let a =
        state.http.send(Method::GET, &url, &[("x-auth-token", token)], None).await.map_err(ApiError::unavailable)?;
    if a.status != StatusCode::OK {
        return Err(ApiError::unavailable(format!("the network service answered {} for {coll}", a.status)));
    }
    let key = coll.replace('-', "_");
    Ok(a.body.get(&key).and_then(Value::as_array).cloned().unwrap_or_default())
}

/// A server the caller may see, or 404.
pub async fn visible_server(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Server> {
    let s: Option<Server> = state.store.get(Table::Servers, id).await?;
    s.filter(|s| caller.is_admin() || s.project_id == caller.project_id)
        .ok_or_else(|| ApiError::not_found("Instance", id))
}

async fn get_server(
    State(state): State<AppState>,
    caller: Caller,
    Extension(mv): Extension<Microversion>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let s = visible_server(&state, &caller, &id).await?;
    learn_network_names(&state, &caller, std::slice::from_ref(&s)).await;
    Ok(Json(json!({"server": server_body(&state, &s, &caller, mv)})))
}

async fn filtered_servers(state: &AppState, caller: &Caller, query: &[(String, String)]) -> ApiResult<Vec<Server>> {
    let q = |k: &str| query.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let all_tenants = caller.is_admin() && q("all_tenants").is_some_and(|v| v.is_empty() || truthy(v));
    let mut servers: Vec<Server> = if all_tenants {
        state.store.list(Table::Servers, None).await?
    } else {
        state.store.list(Table::Servers, Some(&caller.project_id)).await?
    };
    if all_tenants {
        if let Some(p) = q("project_id").or(q("tenant_id")) {
            servers.retain(|s| s.project_id == p);
        }
    }
    if let Some(name) = q("name") {
        let exact = name.strip_prefix('^').and_then(|n| n.strip_suffix('$'));
        servers.retain(|s| match exact {
            Some(e) => s.name == e,
            None => s.name.contains(name),
        });
    }
    if let Some(status) = q("status") {
        servers.retain(|s| s.status().eq_ignore_ascii_case(status));
    }
    if let (Some(host), true) = (q("host").or(q("node")), caller.is_admin()) {
        servers.retain(|s| s.host.as_deref() == Some(host));
    }
    if let Some(image) = q("image") {
        servers.retain(|s| s.image_id == image);
    }
    if let Some(flavor) = q("flavor") {
        servers.retain(|s| s.flavor.id == flavor);
    }
    if let Some(user) = q("user_id") {
        servers.retain(|s| s.user_id == user);
    }
    servers.sort_by_key(|s| std::cmp::Reverse(s.created));
    if let Some(limit) = q("limit").and_then(|l| l.parse::<usize>().ok()) {
        servers.truncate(limit);
    }
    Ok(servers)
}

async fn list_servers(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let servers = filtered_servers(&state, &caller, &query).await?;
    let list: Vec<Value> =
        servers.iter().map(|s| json!({"id": s.id, "name": s.name, "links": links(&state, "servers", &s.id)})).collect();
    Ok(Json(json!({ "servers": list })))
}

async fn list_servers_detail(
    State(state): State<AppState>,
    caller: Caller,
    Extension(mv): Extension<Microversion>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let servers = filtered_servers(&state, &caller, &query).await?;
    learn_network_names(&state, &caller, &servers).await;
    let list: Vec<Value> = servers.iter().map(|s| server_body(&state, s, &caller, mv)).collect();
    Ok(Json(json!({ "servers": list })))
}

/// The last path segment of a reference that may be a URL.
fn reference(v: Option<&Value>) -> Option<String> {
    let s = v?.as_str()?.trim();
    let s = s.trim_end_matches('/').rsplit('/').next().unwrap_or(s);
    (!s.is_empty()).then(|| s.to_string())
}

/// Checks the requested networks and ports with the caller's token; "auto" picks the
/// project's only network.
async fn requested_nics(state: &AppState, caller: &Caller, networks: Option<&Value>) -> ApiResult<Vec<NicRequest>> {
    let mut nics = Vec::new();
    match networks {
        Some(Value::String(s)) if s == "none" => {}
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "auto" => {
            let project = format!("project_id={}", caller.project_id);
            let nets = neutron_list(state, &caller.token, "networks", &project).await?;
            match nets.as_slice() {
                [] => {}
                [one] => {
                    let id = one.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                    remember_name(state, one);
                    nics.push(NicRequest { network_id: Some(id), port_id: None, fixed_ip: None });
                }
                _ => {
                    return Err(ApiError::conflict(
                        "Multiple possible networks found, use a Network ID to be more specific.",
                    ))
                }
            }
        }
        Some(Value::Array(list)) => {
            for n in list {
                let o = n.as_object().ok_or_else(|| {
                    ApiError::bad_request("Invalid input for field/attribute networks: each entry must be an object")
                })?;
                let fixed_ip = o.get("fixed_ip").and_then(Value::as_str).map(str::to_string);
                if let Some(port) = o.get("port").and_then(Value::as_str).filter(|p| !p.is_empty()) {
                    let p = neutron_get(state, &caller.token, "ports", port)
                        .await?
                        .ok_or_else(|| ApiError::bad_request(format!("Port {port} could not be found.")))?;
                    if p.get("device_id").and_then(Value::as_str).is_some_and(|d| !d.is_empty()) {
                        return Err(ApiError::conflict(format!("Port {port} is still in use.")));
                    }
                    nics.push(NicRequest { network_id: None, port_id: Some(port.to_string()), fixed_ip });
                } else if let Some(net) = o.get("uuid").and_then(Value::as_str) {
                    let n = neutron_get(state, &caller.token, "networks", net)
                        .await?
                        .ok_or_else(|| ApiError::bad_request(format!("Network {net} could not be found.")))?;
                    remember_name(state, &n);
                    nics.push(NicRequest { network_id: Some(net.to_string()), port_id: None, fixed_ip });
                } else {
                    return Err(ApiError::bad_request(
                        "Invalid input for field/attribute networks: 'uuid' or 'port' is required",
                    ));
                }
            }
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute networks: a list, 'auto' or 'none' is required",
            ))
        }
    }
    Ok(nics)
}

fn remember_name(state: &AppState, net: &Value) {
    if let (Some(id), Some(name)) = (net.get("id").and_then(Value::as_str), net.get("name").and_then(Value::as_str)) {
        if let Ok(mut m) = state.network_names.lock() {
            m.insert(id.to_string(), name.to_string());
        }
    }
}

/// Resolves security groups (names or ids) to ids with the caller's token.
async fn requested_groups(state: &AppState, caller: &Caller, groups: Option<&Value>) -> ApiResult<Vec<String>> {
    let Some(groups) = groups.filter(|g| !g.is_null()) else { return Ok(Vec::new()) };
    let list = groups.as_array().ok_or_else(|| {
        ApiError::bad_request("Invalid input for field/attribute security_groups: a list is required")
    })?;
    let mut ids = Vec::new();
    for g in list {
        let name = g.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).ok_or_else(|| {
            ApiError::bad_request("Invalid input for field/attribute security_groups: 'name' is required")
        })?;
        let id = match neutron_get(state, &caller.token, "security-groups", name).await? {
            Some(sg) => sg.get("id").and_then(Value::as_str).unwrap_or(name).to_string(),
            None => {
                let query = format!("name={}", urlencode(name));
                let found = neutron_list(state, &caller.token, "security-groups", &query).await?;
                let mut mine = found
                    .iter()
                    .filter(|g| g.get("project_id").and_then(Value::as_str) == Some(caller.project_id.as_str()));
                match (mine.next().or(found.first()), found.len()) {
                    (Some(g), _) => g.get("id").and_then(Value::as_str).unwrap_or(name).to_string(),
                    (None, _) => {
                        return Err(ApiError::bad_request(format!(
                            "Security group {name} not found for project {}.",
                            caller.project_id
                        )))
                    }
                }
            }
        };
        ids.push(id);
    }
    Ok(ids)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn create_server(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult<Response> {
    let req = parse_body(&body)?;
    let sv = req.get("server").filter(|s| s.is_object()).ok_or_else(|| {
        ApiError::bad_request("Invalid input for field/attribute server: 'server' is a required property")
    })?;
    let name = match sv.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() && n.len() <= 255 => n.clone(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute name: a non-empty string of at most 255 characters is required",
            ))
        }
        None => {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute server: 'name' is a required property",
            ))
        }
    };
    for key in ["min_count", "max_count"] {
        if let Some(v) = sv.get(key) {
            match as_uint(v) {
                Some(1) => {}
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid input for field/attribute {key}: only one server per request is supported"
                    )))
                }
            }
        }
    }
    // The image: imageRef, or the boot device's image.
    let image_ref = reference(sv.get("imageRef")).or_else(|| {
        sv.get("block_device_mapping_v2")
            .and_then(Value::as_array)
            .and_then(|b| b.iter().find(|d| d.get("source_type").and_then(Value::as_str) == Some("image")))
            .and_then(|d| reference(d.get("uuid")))
    });
    let image_id = image_ref
        .ok_or_else(|| ApiError::bad_request("Invalid input for field/attribute imageRef: an image is required"))?;
    let image: Image = state
        .store
        .get::<Image>(Table::Images, &image_id)
        .await?
        .filter(|i| i.visible_to(&caller.project_id, caller.is_admin()))
        .ok_or_else(|| ApiError::bad_request(format!("Image {image_id} could not be found.")))?;
    if image.status != "active" {
        return Err(ApiError::bad_request(format!("Image {image_id} is not active.")));
    }
    let flavor_id = reference(sv.get("flavorRef"))
        .ok_or_else(|| ApiError::bad_request("Invalid input for field/attribute flavorRef: a flavor is required"))?;
    let flavor: Flavor = state
        .store
        .get::<Flavor>(Table::Flavors, &flavor_id)
        .await?
        .filter(|f| f.is_public || caller.is_admin())
        .ok_or_else(|| ApiError::bad_request(format!("Flavor {flavor_id} could not be found.")))?;
    if image.min_ram > flavor.ram {
        return Err(ApiError::bad_request("Flavor's memory is too small for requested image."));
    }
    if image.min_disk > flavor.disk && flavor.disk > 0 {
        return Err(ApiError::bad_request("Flavor's disk is too small for requested image."));
    }
    // A host: `host` (2.74) or availability_zone "nova:HOST" (admins only).
    let requested_host = sv
        .get("host")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            sv.get("availability_zone")
                .and_then(Value::as_str)
                .and_then(|z| z.split_once(':'))
                .map(|(_, h)| h.to_string())
        })
        .filter(|h| !h.is_empty());
    if requested_host.is_some() {
        caller.require_admin("compute:servers:create:requested_destination")?;
    }
    let nics = requested_nics(&state, &caller, sv.get("networks")).await?;
    let security_groups = requested_groups(&state, &caller, sv.get("security_groups")).await?;

    let now = now_unix();
    let server = Server {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        project_id: caller.project_id.clone(),
        user_id: caller.user_id.clone(),
        image_id: image.id.clone(),
        flavor,
        nics,
        security_groups,
        vm_state: VmState::Building,
        task_state: Some(TaskState::Scheduling),
        power: None,
        host: None,
        requested_host,
        fault: None,
        ports: Vec::new(),
        created: now,
        updated: now,
    };
    {
        let _w = state.write().await;
        let mine: Vec<Server> = state.store.list(Table::Servers, Some(&caller.project_id)).await?;
        let q = state.quotas;
        let used_cores: u64 = mine.iter().map(|s| u64::from(s.flavor.vcpus)).sum();
        let used_ram: u64 = mine.iter().map(|s| s.flavor.ram).sum();
        let over = |what: &str, req: u64, used: u64, limit: u64| {
            ApiError::forbidden(format!(
                "Quota exceeded for {what}: Requested {req}, but already used {used} of {limit} {what}"
            ))
        };
        if mine.len() as u64 + 1 > q.instances {
            return Err(over("instances", 1, mine.len() as u64, q.instances));
        }
        if used_cores + u64::from(server.flavor.vcpus) > q.cores {
            return Err(over("cores", u64::from(server.flavor.vcpus), used_cores, q.cores));
        }
        if used_ram + server.flavor.ram > q.ram {
            return Err(over("ram", server.flavor.ram, used_ram, q.ram));
        }
        state.store.put(Table::Servers, &server.id, &server.project_id, &server).await?;
    }
    tracing::info!(server = %server.id, project = %server.project_id, "server accepted");
    let body = json!({"server": {
        "id": server.id,
        "links": links(&state, "servers", &server.id),
        "OS-DCF:diskConfig": "MANUAL",
        "security_groups": server.security_groups.iter().map(|g| json!({"name": g})).collect::<Vec<_>>(),
        "adminPass": uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
    }});
    let spawn_state = state.clone();
    let (id, image_spec) = (
        server.id.clone(),
        ImageSpec {
            id: image.id.clone(),
            disk_format: image.disk_format.clone().unwrap_or_else(|| "raw".into()),
            size: image.size.unwrap_or(0),
        },
    );
    tokio::spawn(async move { build(spawn_state, id, image_spec).await });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// A registered host with when it last reported (Unix ms).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HostRecord {
    pub report: HostReport,
    pub last_seen_ms: i64,
}

impl HostRecord {
    pub fn alive(&self, now_ms: i64) -> bool {
        now_ms - self.last_seen_ms <= 3 * HEARTBEAT.as_millis() as i64
    }
}

/// Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The hosts as the scheduler sees them.
pub async fn host_states(state: &AppState) -> ApiResult<Vec<HostState>> {
    let hosts: Vec<HostRecord> = state.store.list(Table::Hosts, None).await?;
    let servers: Vec<Server> = state.store.list(Table::Servers, None).await?;
    let now = now_ms();
    Ok(hosts
        .into_iter()
        .map(|h| {
            let mut used = Capacity { vcpus: 0, ram_mb: 0, disk_gb: 0 };
            let mut count = 0;
            for s in servers.iter().filter(|s| s.host.as_deref() == Some(h.report.host.as_str())) {
                used.vcpus += s.flavor.vcpus;
                used.ram_mb += s.flavor.ram;
                used.disk_gb += s.flavor.disk;
                count += 1;
            }
            HostState { alive: h.alive(now), report: h.report, used, servers: count }
        })
        .collect())
}

/// Marks server `id` ERROR with `message` (unless it is gone or being deleted).
async fn fail(state: &AppState, id: &str, message: String) -> ApiResult<()> {
    let _w = state.write().await;
    let Some(mut s) = state.store.get::<Server>(Table::Servers, id).await? else { return Ok(()) };
    if s.task_state == Some(TaskState::Deleting) {
        // Deleted while it failed: nothing to keep.
        state.store.delete(Table::Servers, id).await?;
        return Ok(());
    }
    let now = now_unix();
    s.vm_state = VmState::Error;
    s.task_state = None;
    s.fault = Some(Fault { code: 500, message, created: now });
    s.updated = now;
    state.store.put(Table::Servers, id, &s.project_id, &s).await?;
    Ok(())
}

/// Schedules server `id` and asks the chosen host's agent to build it.
async fn build(state: AppState, id: String, image: ImageSpec) {
    if let Err(e) = build_inner(&state, &id, image).await {
        tracing::warn!(server = %id, error = %e.message, "build failed");
        let _ = fail(&state, &id, e.message).await;
    }
}

async fn build_inner(state: &AppState, id: &str, image: ImageSpec) -> ApiResult<()> {
    let (server, url) = {
        let _w = state.write().await;
        let Some(mut s) = state.store.get::<Server>(Table::Servers, id).await? else { return Ok(()) };
        if s.task_state != Some(TaskState::Scheduling) {
            return Ok(()); // deleted meanwhile
        }
        let hosts = host_states(state).await?;
        let picked = scheduler::pick(&hosts, &s.flavor.spec(), s.requested_host.as_deref());
        let host = match picked {
            Ok(h) => h,
            Err(e) => {
                let now = now_unix();
                s.vm_state = VmState::Error;
                s.task_state = None;
                s.fault = Some(Fault { code: 500, message: e.to_string(), created: now });
                s.updated = now;
                state.store.put(Table::Servers, id, &s.project_id, &s).await?;
                tracing::info!(server = %id, reason = %e, "no valid host");
                return Ok(());
            }
        };
        let url = hosts.iter().find(|h| h.report.host == host).map(|h| h.report.url.clone()).unwrap_or_default();
        s.host = Some(host.clone());
        s.task_state = Some(TaskState::Spawning);
        s.updated = now_unix();
        state.store.put(Table::Servers, id, &s.project_id, &s).await?;
        tracing::info!(server = %id, host, "scheduled");
        (s, url)
    };
    let spawn = SpawnRequest {
        server_id: server.id.clone(),
        name: server.name.clone(),
        project_id: server.project_id.clone(),
        flavor: server.flavor.spec(),
        image,
        nics: server.nics.clone(),
        security_groups: server.security_groups.clone(),
    };
    let body = serde_json::to_value(&spawn).map_err(ApiError::internal)?;
    let host = server.host.clone().unwrap_or_default();
    let abort =
        |why: String| ApiError::internal(why.clone()).with_message(format!("Build of instance {id} aborted: {why}"));
    let token = state.keystone.service_token().await.map_err(|e| abort(e.message))?;
    let url = format!("{}/v1/servers", url.trim_end_matches('/'));
    let a = state
        .http
        .send(Method::POST, &url, &[("x-auth-token", &token)], Some(&body))
        .await
        .map_err(|e| abort(format!("host {host} unreachable: {e}")))?;
    if !a.status.is_success() {
        return Err(abort(format!("host {host} answered {}: {}", a.status, a.body)));
    }
    Ok(())
}

impl ApiError {
    fn with_message(mut self, m: String) -> ApiError {
        self.message = m;
        self
    }
}

/// The agent URL of `host`, if it is registered and alive.
async fn live_agent(state: &AppState, host: &str) -> ApiResult<Option<String>> {
    let h: Option<HostRecord> = state.store.get(Table::Hosts, host).await?;
    Ok(h.filter(|h| h.alive(now_ms())).map(|h| h.report.url))
}

/// Posts `action` for server `id` to the agent at `url`.
async fn tell_agent(state: &AppState, url: &str, id: &str, action: Action) -> Result<(), String> {
    let token = state.keystone.service_token().await.map_err(|e| e.message)?;
    let body = serde_json::to_value(ActionRequest { action }).map_err(|e| e.to_string())?;
    let url = format!("{}/v1/servers/{id}/action", url.trim_end_matches('/'));
    let a = state.http.send(Method::POST, &url, &[("x-auth-token", &token)], Some(&body)).await?;
    if a.status.is_success() {
        Ok(())
    } else {
        Err(format!("the agent answered {}: {}", a.status, a.body))
    }
}

async fn delete_server(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let url = {
        let _w = state.write().await;
        let mut s = visible_server(&state, &caller, &id).await?;
        let task = s.begin(Action::Delete).map_err(|e| ApiError::conflict(e.to_string()))?;
        let url = match &s.host {
            Some(h) => live_agent(&state, h).await?,
            None => None,
        };
        match url {
            None => {
                // Never reached a host, or its host is down: deleted here (Nova's local delete).
                state.store.delete(Table::Servers, &id).await?;
                tracing::info!(server = %id, "server deleted locally");
                return Ok(StatusCode::NO_CONTENT);
            }
            Some(url) => {
                s.task_state = Some(task);
                s.updated = now_unix();
                state.store.put(Table::Servers, &id, &s.project_id, &s).await?;
                url
            }
        }
    };
    if let Err(e) = tell_agent(&state, &url, &id, Action::Delete).await {
        tracing::warn!(server = %id, error = %e, "agent unreachable; deleting locally");
        let _w = state.write().await;
        state.store.delete(Table::Servers, &id).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn server_action(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let req = parse_body(&body)?;
    let name = req
        .as_object()
        .and_then(|o| o.keys().next().cloned())
        .ok_or_else(|| ApiError::bad_request("Malformed request body: an action is required"))?;
    let action = match name.as_str() {
        "pause" => Action::Pause,
        "unpause" => Action::Unpause,
        "suspend" => Action::Suspend,
        "resume" => Action::Resume,
        "os-migrateLive" => {
            let args = req.get("os-migrateLive").cloned().unwrap_or(Value::Null);
            return super::migrations::live_migrate(&state, &caller, &id, &args).await;
        }
        other => return Err(ApiError::bad_request(format!("There is no such action: {other}"))),
    };
    let (url, before) = {
        let _w = state.write().await;
        let mut s = visible_server(&state, &caller, &id).await?;
        let task = s.begin(action).map_err(|e| ApiError::conflict(e.to_string()))?;
        let host = s.host.clone().unwrap_or_default();
        let url = live_agent(&state, &host)
            .await?
            .ok_or_else(|| ApiError::conflict(format!("Compute service of {host} is unavailable at this time.")))?;
        let before = s.task_state;
        s.task_state = Some(task);
        s.updated = now_unix();
        state.store.put(Table::Servers, &id, &s.project_id, &s).await?;
        (url, before)
    };
    if let Err(e) = tell_agent(&state, &url, &id, action).await {
        let _w = state.write().await;
        if let Some(mut s) = state.store.get::<Server>(Table::Servers, &id).await? {
            s.task_state = before;
            state.store.put(Table::Servers, &id, &s.project_id, &s).await?;
        }
        return Err(ApiError::conflict(format!("Compute host of instance {id} could not be reached: {e}")));
    }
    Ok(StatusCode::ACCEPTED)
}

// ---------------------------------------------------------------- hypervisors

async fn list_hypervisors(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require_admin("os_compute_api:os-hypervisors:list-detail")?;
    let hosts = host_states(&state).await?;
    let list: Vec<Value> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let c = &h.report.capacity;
            let mut b = Map::new();
            b.insert("id".into(), json!(i + 1));
            b.insert("hypervisor_hostname".into(), json!(h.report.host));
            b.insert("hypervisor_type".into(), json!(h.report.driver));
            b.insert("state".into(), json!(if h.alive { "up" } else { "down" }));
            b.insert("status".into(), json!(if h.report.enabled { "enabled" } else { "disabled" }));
            b.insert("vcpus".into(), json!(c.vcpus));
            b.insert("memory_mb".into(), json!(c.ram_mb));
            b.insert("local_gb".into(), json!(c.disk_gb));
            b.insert("vcpus_used".into(), json!(h.used.vcpus));
            b.insert("memory_mb_used".into(), json!(h.used.ram_mb));
            b.insert("local_gb_used".into(), json!(h.used.disk_gb));
            b.insert("running_vms".into(), json!(h.servers));
            b.insert("host_ip".into(), json!(h.report.url));
            b.insert("service".into(), json!({"host": h.report.host, "id": i + 1, "disabled_reason": null}));
            Value::Object(b)
        })
        .collect();
    Ok(Json(json!({ "hypervisors": list })))
}
