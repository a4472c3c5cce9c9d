//! Ports (MAC and IP allocation, security groups, device and binding attributes) and
//! the binding-extended port bindings API used for migration: a binding is created
//! INACTIVE on the destination host, activated (the old one turns INACTIVE), and the
//! old one deleted.
//!
//! Binding a port to a host decides where its traffic goes, so, as in Neutron,
//! `binding:host_id`, `binding:profile` and the bindings API are admin-only.
//!
//! A binding made by a compute or storage node through gRPC also says where the port
//! is plugged ([`Placement`]: the bridge's datapath id and the interface name); the
//! functions shared with the gRPC `PortRegistry` are [`create_in`], [`adopt_in`],
//! [`add_inactive_binding`], [`activate_in`], [`remove_binding_in`] and [`delete_in`].

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use sqlx::Row;

use super::subnets::{allocate, parse_fixed_ips, release, FixedIpRequest};
use super::{
    apply_name_description, created, fetch, fetch_for_write, list_response, list_visible, new_id, one, read_conn,
    standard_attrs, touch, NETWORK, PORT,
};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{opt_bool, opt_str, opt_str_list, resource_body};
use crate::store::{Col, StoreError, WriteTx};
use crate::AppState;

const CREATE_FIELDS: &[&str] = &[
    "name",
    "description",
    "network_id",
    "admin_state_up",
    "mac_address",
    "fixed_ips",
    "security_groups",
    "device_owner",
    "device_id",
    "binding:host_id",
    "binding:profile",
    "binding:vnic_type",
    "project_id",
    "tenant_id",
    "port_security_enabled",
    "allowed_address_pairs",
];
const UPDATE_FIELDS: &[&str] = &[
    "name",
    "description",
    "admin_state_up",
    "fixed_ips",
    "security_groups",
    "device_owner",
    "device_id",
    "binding:host_id",
    "binding:profile",
    "binding:vnic_type",
    "port_security_enabled",
    "allowed_address_pairs",
];

/// Neutron's default base MAC: `fa:16:3e` then three random octets.
const MAC_PREFIX: &str = "fa:16:3e";

/// Normalises a MAC address (lower case, colon separated); 400 unless it is a valid unicast MAC.
pub fn parse_mac(s: &str) -> ApiResult<String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let octets: Option<Vec<u8>> = if parts.len() == 6 {
        parts.iter().map(|p| u8::from_str_radix(p, 16).ok().filter(|_| p.len() == 2)).collect()
    } else {
        None
    };
    match octets {
        Some(o) if o[0] & 1 == 0 && o.iter().any(|b| *b != 0) => {
            Ok(o.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"))
        }
        _ => Err(ApiError::invalid_input(format!("'{s}' is not a valid MAC address"))),
    }
}

fn random_mac() -> String {
    let b = *uuid::Uuid::new_v4().as_bytes();
    format!("{MAC_PREFIX}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

/// Checks the requested security groups: each must be visible to the caller.
async fn check_groups(tx: &mut WriteTx, caller: &Caller, ids: &[String]) -> ApiResult<Vec<String>> {
    let mut out = Vec::new();
    for id in ids {
        let sg = fetch(tx, super::SECURITY_GROUP, caller, id).await?;
        let id = sg["id"].as_str().unwrap_or_default().to_string();
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

async fn set_port_groups(tx: &mut WriteTx, port_id: &str, groups: &[String]) -> ApiResult<()> {
    sqlx::query("DELETE FROM port_security_groups WHERE port_id = $1")
        .bind(port_id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from)?;
    add_port_groups(tx, port_id, groups).await
}

/// Adds group memberships of a port (a new port has none to replace).
async fn add_port_groups(tx: &mut WriteTx, port_id: &str, groups: &[String]) -> ApiResult<()> {
    for g in groups {
        sqlx::query("INSERT INTO port_security_groups (port_id, security_group_id) VALUES ($1, $2)")
            .bind(port_id.to_string())
            .bind(g.clone())
            .execute(&mut **tx)
            .await
            .map_err(StoreError::from)?;
    }
    Ok(())
}

fn check_address_pairs(v: &Value) -> ApiResult<Value> {
    let Value::Array(items) = v else {
        return Err(ApiError::invalid_input("allowed_address_pairs must be a list"));
    };
    for item in items {
        let ip = item
            .get("ip_address")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid_input("address pair needs ip_address"))?;
        if ip.contains('/') {
            super::subnets::parse_cidr(ip)?;
        } else {
            super::subnets::parse_ip(ip)?;
        }
        if let Some(mac) = item.get("mac_address").and_then(Value::as_str) {
            parse_mac(mac)?;
        }
    }
    Ok(v.clone())
}

fn binding_attrs_admin_only(caller: &Caller, obj: &Map<String, Value>) -> ApiResult<()> {
    if (obj.contains_key("binding:host_id") || obj.contains_key("binding:profile")) && !caller.is_admin() {
        return Err(ApiError::forbidden("rule:create_port:binding:host_id is disallowed by policy"));
    }
    Ok(())
}

/// Where a bound port is plugged on its host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// The OpenFlow datapath id of the host bridge (None: not known, e.g. bound through REST).
    pub datapath_id: Option<u64>,
    /// The port's interface name on that bridge ("" when not known).
    pub interface_name: String,
}

impl Placement {
    /// The placement recorded in a binding's JSON body.
    pub fn of_binding(binding: &Value) -> Placement {
        Placement {
            datapath_id: binding["datapath_id"].as_str().and_then(|d| u64::from_str_radix(d, 16).ok()),
            interface_name: binding["interface_name"].as_str().unwrap_or_default().to_string(),
        }
    }

    /// The placement a `binding:profile` names, for bindings made through REST (e.g.
    /// `openstack port create --host H --binding-profile datapath_id=0000000000000001
    /// --binding-profile interface_name=s1-eth1`): `datapath_id` as hex (optionally
    /// `0x`-prefixed), `interface_name` as a string. None when the profile names neither.
    pub fn of_profile(profile: &Value) -> ApiResult<Option<Placement>> {
        let dpid = profile.get("datapath_id").filter(|v| !v.is_null());
        let iface = profile.get("interface_name").filter(|v| !v.is_null());
        if dpid.is_none() && iface.is_none() {
            return Ok(None);
        }
        let datapath_id = match dpid {
            None => None,
            Some(v) => {
                let text = v
                    .as_str()
                    .ok_or_else(|| ApiError::invalid_input("binding:profile datapath_id must be a hex string"))?;
                let hex = text.trim_start_matches("0x");
                if hex.is_empty() || hex.len() > 16 {
                    return Err(ApiError::invalid_input(format!(
                        "binding:profile datapath_id {text:?} is not 1-16 hex digits"
                    )));
                }
                Some(u64::from_str_radix(hex, 16).map_err(|_| {
                    ApiError::invalid_input(format!("binding:profile datapath_id {text:?} is not hexadecimal"))
                })?)
            }
        };
        let interface_name = match iface {
            None => String::new(),
            Some(v) => v
                .as_str()
                .filter(|s| !s.is_empty() && s.len() <= 255)
                .ok_or_else(|| ApiError::invalid_input("binding:profile interface_name must be a non-empty string"))?
                .to_string(),
        };
        Ok(Some(Placement { datapath_id, interface_name }))
    }

    /// The datapath id as stored: 16 lower-case hex digits ("" when unknown).
    pub fn datapath_text(&self) -> String {
        self.datapath_id.map(|d| format!("{d:016x}")).unwrap_or_default()
    }
}

fn binding_body(host: &str, vnic_type: &str, profile: &Value, status: &str, place: &Placement) -> Value {
    json!({
        "host": host,
        "vif_type": if host.is_empty() { "unbound" } else { "ovs" },
        "vif_details": if host.is_empty() { json!({}) } else { json!({"port_filter": true, "datapath_type": "netdev", "bridge_name": "br-int"}) },
        "vnic_type": vnic_type,
        "profile": profile,
        "status": status,
        "datapath_id": place.datapath_id.map(|d| format!("{d:016x}")),
        "interface_name": place.interface_name,
    })
}

/// Copies a binding's attributes onto its port (`binding:host_id`, ...).
fn show_binding_on_port(port: &mut Value, binding: &Value) {
    port["binding:host_id"] = binding["host"].clone();
    port["binding:vif_type"] = binding["vif_type"].clone();
    port["binding:vif_details"] = binding["vif_details"].clone();
    port["binding:vnic_type"] = binding["vnic_type"].clone();
    port["binding:profile"] = binding["profile"].clone();
}

async fn insert_binding(tx: &mut WriteTx, port: &Value, binding: &Value) -> ApiResult<()> {
    let port_id = port["id"].as_str().unwrap_or_default();
    let host = binding["host"].as_str().unwrap_or_default();
    let place = Placement::of_binding(binding);
    sqlx::query(
        "INSERT INTO port_bindings (port_id, host, status, body, datapath_id, interface_name) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(port_id.to_string())
    .bind(host.to_string())
    .bind(binding["status"].as_str().unwrap_or_default().to_string())
    .bind(binding.to_string())
    .bind(place.datapath_text())
    .bind(place.interface_name)
    .execute(&mut **tx)
    .await
    .map_err(StoreError::from)?;
    let mut logged = binding.clone();
    logged["port_id"] = json!(port_id);
    tx.record("port_binding", "put", &format!("{port_id}/{host}"), super::project_of(port), &logged).await?;
    Ok(())
}

async fn delete_binding_row(tx: &mut WriteTx, port: &Value, host: &str) -> ApiResult<()> {
    let port_id = port["id"].as_str().unwrap_or_default();
    let n = sqlx::query("DELETE FROM port_bindings WHERE port_id = $1 AND host = $2")
        .bind(port_id.to_string())
        .bind(host.to_string())
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from)?
        .rows_affected();
    if n > 0 {
        let logged = json!({"port_id": port_id, "host": host});
        tx.record("port_binding", "delete", &format!("{port_id}/{host}"), super::project_of(port), &logged).await?;
    }
    Ok(())
}

/// Makes `host` (empty: none) the port's active binding, replacing the previous active one.
/// `place` None keeps the placement of an existing binding on the same host.
async fn rebind(
    tx: &mut WriteTx,
    port: &mut Value,
    host: &str,
    vnic: &str,
    profile: &Value,
    place: Option<Placement>,
) -> ApiResult<()> {
    let port_id = port["id"].as_str().unwrap_or_default().to_string();
    let old: Vec<(String, String)> =
        sqlx::query("SELECT host, body FROM port_bindings WHERE port_id = $1 AND (status = 'ACTIVE' OR host = $2)")
            .bind(port_id.clone())
            .bind(host.to_string())
            .fetch_all(&mut **tx)
            .await
            .map_err(StoreError::from)?
            .iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)?;
    let mut kept = Placement::default();
    for (h, body) in old {
        if h == host {
            kept = Placement::of_binding(&crate::store::parse_body("port_bindings", &port_id, body)?);
        }
        delete_binding_row(tx, port, &h).await?;
    }
    let binding = binding_body(host, vnic, profile, "ACTIVE", &place.unwrap_or(kept));
    if !host.is_empty() {
        insert_binding(tx, port, &binding).await?;
    }
    show_binding_on_port(port, &binding);
    Ok(())
}

/// A port to create (REST `POST /v2.0/ports` or gRPC `RegisterPort`).
#[derive(Clone, Debug)]
pub struct NewPort {
    /// The id to give it (None: a new one).
    pub id: Option<String>,
    /// Its network.
    pub network_id: String,
    /// The requested owner (None: the caller's project).
    pub project_id: Option<String>,
    /// `name` and `description` (standard attributes).
    pub attrs: Map<String, Value>,
    /// Administrative state.
    pub admin_state_up: bool,
    /// A normalised MAC (None: allocated).
    pub mac: Option<String>,
    /// Requested addresses (None: one per IP family).
    pub fixed_ips: Option<Vec<FixedIpRequest>>,
    /// Requested security groups (None: the project's default when port security is on).
    pub security_groups: Option<Vec<String>>,
    /// Port security (None: the network's setting).
    pub port_security: Option<bool>,
    /// Checked `allowed_address_pairs`.
    pub address_pairs: Value,
    /// `device_owner`.
    pub device_owner: String,
    /// `device_id`.
    pub device_id: String,
    /// `binding:vnic_type`.
    pub vnic_type: String,
    /// `binding:profile` (an object).
    pub profile: Value,
    /// The host to bind to (None: unbound) and where the port is plugged there.
    pub binding: Option<(String, Placement)>,
    /// The network as already read in this transaction (None: read it).
    pub network: Option<Value>,
}

/// `POST /v2.0/ports`.
pub async fn create(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult<Response> {
    caller.require_writer()?;
    let obj = resource_body(&body, "port", CREATE_FIELDS)?;
    binding_attrs_admin_only(&caller, &obj)?;
    let network_id = opt_str(&obj, "network_id")?.ok_or_else(|| ApiError::bad_request("network_id is required"))?;
    let fixed_ips = obj.get("fixed_ips").filter(|v| !v.is_null()).map(parse_fixed_ips).transpose()?;
    let mac = opt_str(&obj, "mac_address")?.map(|m| parse_mac(&m)).transpose()?;
    let security_groups = opt_str_list(&obj, "security_groups")?;
    let address_pairs = obj
        .get("allowed_address_pairs")
        .filter(|v| !v.is_null())
        .map(check_address_pairs)
        .transpose()?
        .unwrap_or(json!([]));
    let profile = obj.get("binding:profile").filter(|v| !v.is_null()).cloned().unwrap_or(json!({}));
    if !profile.is_object() {
        return Err(ApiError::invalid_input("binding:profile must be a dictionary"));
    }
    let binding = match opt_str(&obj, "binding:host_id")?.filter(|h| !h.is_empty()) {
        Some(h) => Some((h, Placement::of_profile(&profile)?.unwrap_or_default())),
        None => None,
    };
    let req = NewPort {
        id: None,
        network_id,
        project_id: opt_str(&obj, "project_id")?.or(opt_str(&obj, "tenant_id")?),
        admin_state_up: opt_bool(&obj, "admin_state_up")?.unwrap_or(true),
        mac,
        fixed_ips,
        security_groups,
        port_security: opt_bool(&obj, "port_security_enabled")?,
        address_pairs,
        device_owner: opt_str(&obj, "device_owner")?.unwrap_or_default(),
        device_id: opt_str(&obj, "device_id")?.unwrap_or_default(),
        vnic_type: opt_str(&obj, "binding:vnic_type")?.unwrap_or_else(|| "normal".into()),
        profile,
        binding,
        network: None,
        attrs: obj,
    };
    let mut tx = state.store.begin_write().await?;
    let body = create_in(&mut tx, &caller, req).await?;
    tx.commit().await?;
    Ok(created(PORT, body))
}

/// Creates a port in `tx` (its addresses, groups and binding with it) and logs it once.
pub async fn create_in(tx: &mut WriteTx, caller: &Caller, req: NewPort) -> ApiResult<Value> {
    let network_id = req.network_id.clone();
    let network = match req.network {
        Some(n) => n,
        None => fetch(tx, NETWORK, caller, &network_id).await?,
    };
    let project = caller.owning_project(req.project_id.as_deref())?;
    let port_security = req.port_security.unwrap_or_else(|| network["port_security_enabled"].as_bool().unwrap_or(true));
    let groups = match &req.security_groups {
        Some(ids) => check_groups(tx, caller, ids).await?,
        None if port_security => vec![super::secgroups::ensure_default(tx, &project).await?],
        None => vec![],
    };
    if !port_security && (!groups.is_empty() || req.address_pairs.as_array().is_some_and(|a| !a.is_empty())) {
        return Err(ApiError::conflict(
            "PortSecurityAndIPRequiredForSecurityGroups",
            "Port security must be enabled and port must have an IP address in order to use security groups.",
        ));
    }
    let id = req.id.unwrap_or_else(new_id);
    let mut b = standard_attrs(tx, &id, &project, &req.attrs);
    b.insert("network_id".into(), json!(network_id));
    b.insert("mac_address".into(), Value::Null);
    b.insert("admin_state_up".into(), json!(req.admin_state_up));
    b.insert("status".into(), json!("DOWN"));
    b.insert("device_owner".into(), json!(req.device_owner));
    b.insert("device_id".into(), json!(req.device_id));
    b.insert("security_groups".into(), json!(groups));
    b.insert("port_security_enabled".into(), json!(port_security));
    b.insert("allowed_address_pairs".into(), req.address_pairs);
    b.insert("extra_dhcp_opts".into(), json!([]));
    b.insert("ip_allocation".into(), json!("immediate"));
    b.insert("dns_name".into(), json!(""));
    b.insert("dns_assignment".into(), json!([]));
    b.insert("propagate_uplink_status".into(), json!(false));
    b.insert("qos_policy_id".into(), Value::Null);
    b.insert("qos_network_policy_id".into(), Value::Null);
    b.insert("resource_request".into(), Value::Null);
    let mut body = Value::Object(b);
    show_binding_on_port(&mut body, &binding_body("", &req.vnic_type, &req.profile, "ACTIVE", &Placement::default()));
    // The row goes in first (allocations and bindings refer to it); the final update logs it once.
    // The MAC is checked by the insert itself (UNIQUE (network_id, mac_address)): an allocated
    // one that happens to be taken is drawn again.
    let requested_mac = req.mac.is_some();
    let mut mac = req.mac.unwrap_or_else(random_mac);
    let mut tries = 0;
    loop {
        body["mac_address"] = json!(mac);
        let extra = [("network_id", Col::Text(network_id.clone())), ("mac_address", Col::Text(mac.clone()))];
        if tx.insert_unlogged_if_absent("ports", &body, &extra).await? {
            break;
        }
        if requested_mac {
            return Err(ApiError::conflict(
                "MacAddressInUse",
                format!("Unable to complete operation for network {network_id}. The mac address {mac} is in use."),
            ));
        }
        tries += 1;
        if tries >= 16 {
            return Err(ApiError::conflict(
                "MacAddressGenerationFailure",
                format!("Unable to generate unique mac on network {network_id}."),
            ));
        }
        mac = random_mac();
    }
    let router_port = req.device_owner.starts_with("network:router");
    body["fixed_ips"] = json!(allocate(tx, &network_id, &id, req.fixed_ips.as_deref(), router_port).await?);
    add_port_groups(tx, &id, &groups).await?;
    if let Some((host, place)) = req.binding {
        // A new port has no binding to replace.
        let binding = binding_body(&host, &req.vnic_type, &req.profile, "ACTIVE", &place);
        insert_binding(tx, &body, &binding).await?;
        show_binding_on_port(&mut body, &binding);
    }
    tx.update("ports", "port", &body).await?;
    tracing::info!(port = %id, network = %network_id, project = %project, revision = tx.revision(), "port created");
    Ok(body)
}

/// What [`adopt_in`] changes on an existing port.
#[derive(Clone, Debug, Default)]
pub struct Adoption {
    /// The network the caller believes the port is on (checked; empty: not checked).
    pub network_id: String,
    /// The MAC the caller's interface has (checked; None: not checked).
    pub mac: Option<String>,
    /// New addresses (None: unchanged).
    pub fixed_ips: Option<Vec<FixedIpRequest>>,
    /// New `device_id` (None: unchanged).
    pub device_id: Option<String>,
    /// New `device_owner` (None: unchanged).
    pub device_owner: Option<String>,
    /// The host that becomes the active binding, with its placement and vnic type.
    pub binding: Option<(String, Placement, String)>,
}

/// Adopts the existing port `port` (as stored) in `tx`: checks network and MAC, applies the
/// device attributes and addresses, makes the given binding active, and logs the port.
pub async fn adopt_in(tx: &mut WriteTx, mut port: Value, req: Adoption) -> ApiResult<Value> {
    let id = port["id"].as_str().unwrap_or_default().to_string();
    let network_id = port["network_id"].as_str().unwrap_or_default().to_string();
    if !req.network_id.is_empty() && req.network_id != network_id {
        return Err(ApiError::conflict(
            "PortNetworkMismatch",
            format!("Port {id} is on network {network_id}, not {}.", req.network_id),
        ));
    }
    if let Some(mac) = &req.mac {
        if port["mac_address"].as_str() != Some(mac.as_str()) {
            return Err(ApiError::conflict(
                "PortMacMismatch",
                format!("Port {id} has MAC {}, not {mac}.", port["mac_address"].as_str().unwrap_or_default()),
            ));
        }
    }
    if let Some(v) = req.device_id {
        port["device_id"] = json!(v);
    }
    if let Some(v) = req.device_owner {
        port["device_owner"] = json!(v);
    }
    if let Some(reqs) = req.fixed_ips {
        release(tx, &id).await?;
        let router_port = port["device_owner"].as_str().unwrap_or_default().starts_with("network:router");
        port["fixed_ips"] = json!(allocate(tx, &network_id, &id, Some(&reqs), router_port).await?);
    }
    if let Some((host, place, vnic)) = req.binding {
        let profile = port["binding:profile"].clone();
        let profile = if profile.is_object() { profile } else { json!({}) };
        rebind(tx, &mut port, &host, &vnic, &profile, Some(place)).await?;
    }
    touch(&mut port, tx);
    tx.update("ports", "port", &port).await?;
    tracing::info!(port = %id, network = %network_id, revision = tx.revision(), "port adopted");
    Ok(port)
}

/// `GET /v2.0/ports`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let mut conn = read_conn(&state).await?;
    Ok(list_response(PORT, list_visible(&mut conn, PORT, &caller).await?, &q))
}

/// The port `id` if the caller's project owns it (or the caller is admin).
async fn own_port(conn: &mut sqlx::AnyConnection, caller: &Caller, id: &str) -> ApiResult<Value> {
    match crate::store::get_body(conn, PORT.table, id).await? {
        Some(p) if caller.can_see(super::project_of(&p)) => Ok(p),
        _ => Err(ApiError::not_found(PORT.label, id)),
    }
}

/// `GET /v2.0/ports/{id}`.
pub async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let mut conn = read_conn(&state).await?;
    Ok(one(PORT, own_port(&mut conn, &caller, &id).await?))
}

/// `PUT /v2.0/ports/{id}`.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = resource_body(&body, "port", UPDATE_FIELDS)?;
    binding_attrs_admin_only(&caller, &obj)?;
    let mut tx = state.store.begin_write().await?;
    let mut port = fetch_for_write(&mut tx, PORT, &caller, &id).await?;
    let network_id = port["network_id"].as_str().unwrap_or_default().to_string();
    apply_name_description(&mut port, &obj)?;
    if let Some(v) = opt_bool(&obj, "admin_state_up")? {
        port["admin_state_up"] = json!(v);
    }
    for key in ["device_owner", "device_id"] {
        if obj.contains_key(key) {
            port[key] = json!(opt_str(&obj, key)?.unwrap_or_default());
        }
    }
    if let Some(v) = opt_bool(&obj, "port_security_enabled")? {
        port["port_security_enabled"] = json!(v);
    }
    if let Some(ids) = opt_str_list(&obj, "security_groups")? {
        let groups = check_groups(&mut tx, &caller, &ids).await?;
        set_port_groups(&mut tx, &id, &groups).await?;
        port["security_groups"] = json!(groups);
    } else if obj.get("security_groups").is_some_and(Value::is_null) {
        set_port_groups(&mut tx, &id, &[]).await?;
        port["security_groups"] = json!([]);
    }
    if let Some(v) = obj.get("allowed_address_pairs") {
        port["allowed_address_pairs"] = if v.is_null() { json!([]) } else { check_address_pairs(v)? };
    }
    let secured = port["port_security_enabled"].as_bool().unwrap_or(true);
    let has_groups = port["security_groups"].as_array().is_some_and(|a| !a.is_empty());
    let has_pairs = port["allowed_address_pairs"].as_array().is_some_and(|a| !a.is_empty());
    if !secured && (has_groups || has_pairs) {
        return Err(ApiError::conflict(
            "PortSecurityPortHasSecurityGroup",
            "Port has security group associated. Cannot disable port security or ip address until security group is removed",
        ));
    }
    if let Some(v) = obj.get("fixed_ips") {
        let reqs = if v.is_null() { vec![] } else { parse_fixed_ips(v)? };
        release(&mut tx, &id).await?;
        let router_port = port["device_owner"].as_str().unwrap_or_default().starts_with("network:router");
        port["fixed_ips"] = json!(allocate(&mut tx, &network_id, &id, Some(&reqs), router_port).await?);
    }
    if obj.contains_key("binding:host_id")
        || obj.contains_key("binding:profile")
        || obj.contains_key("binding:vnic_type")
    {
        let host = if obj.contains_key("binding:host_id") {
            opt_str(&obj, "binding:host_id")?.unwrap_or_default()
        } else {
            port["binding:host_id"].as_str().unwrap_or_default().to_string()
        };
        let vnic = opt_str(&obj, "binding:vnic_type")?
            .unwrap_or_else(|| port["binding:vnic_type"].as_str().unwrap_or("normal").to_string());
        let profile = match obj.get("binding:profile") {
            Some(Value::Null) => json!({}),
            Some(p @ Value::Object(_)) => p.clone(),
            Some(_) => return Err(ApiError::invalid_input("binding:profile must be a dictionary")),
            None => port["binding:profile"].clone(),
        };
        let place = Placement::of_profile(&profile)?;
        rebind(&mut tx, &mut port, &host, &vnic, &profile, place).await?;
    }
    touch(&mut port, &tx);
    tx.update("ports", "port", &port).await?;
    tx.commit().await?;
    Ok(one(PORT, port))
}

/// `DELETE /v2.0/ports/{id}`: 409 while a port pair or flow classifier names the port.
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let mut tx = state.store.begin_write().await?;
    let port = fetch_for_write(&mut tx, PORT, &caller, &id).await?;
    delete_in(&mut tx, &port).await?;
    tx.commit().await?;
    tracing::info!(port = %id, project = %caller.project_id, "port deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes the stored port `port` in `tx` with its bindings, addresses and group
/// memberships; 409 while a steering object names it.
pub async fn delete_in(tx: &mut WriteTx, port: &Value) -> ApiResult<()> {
    let id = port["id"].as_str().unwrap_or_default().to_string();
    if let Some(owner) = super::sfc::referenced_by(tx, &id).await? {
        return Err(ApiError::conflict("PortInUse", format!("Port {id} is in use by steering object {owner}.")));
    }
    let hosts: Vec<String> = sqlx::query("SELECT host FROM port_bindings WHERE port_id = $1")
        .bind(id.clone())
        .fetch_all(&mut **tx)
        .await
        .map_err(StoreError::from)?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)?;
    for h in hosts {
        delete_binding_row(tx, port, &h).await?;
    }
    release(tx, &id).await?;
    set_port_groups(tx, &id, &[]).await?;
    tx.delete("ports", "port", port).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Port bindings (binding-extended).

/// The bindings of a port (their JSON bodies), by host.
pub async fn bindings_of(conn: &mut sqlx::AnyConnection, port_id: &str) -> ApiResult<Vec<Value>> {
    let rows = sqlx::query("SELECT host, body FROM port_bindings WHERE port_id = $1 ORDER BY host")
        .bind(port_id.to_string())
        .fetch_all(conn)
        .await
        .map_err(StoreError::from)?;
    rows.iter()
        .map(|r| {
            let host: String = r.try_get(0).map_err(StoreError::from)?;
            let body: String = r.try_get(1).map_err(StoreError::from)?;
            Ok(crate::store::parse_body("port_bindings", &host, body)?)
        })
        .collect()
}

fn binding_not_found(port_id: &str, host: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "PortBindingNotFound",
        format!("Binding for port {port_id} for host {host} could not be found."),
    )
}

/// `GET /v2.0/ports/{id}/bindings` (admin).
pub async fn list_bindings(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let mut conn = read_conn(&state).await?;
    own_port(&mut conn, &caller, &id).await?;
    let items: Vec<Value> =
        bindings_of(&mut conn, &id).await?.into_iter().filter(|b| crate::json::matches_filters(b, &q)).collect();
    Ok(Json(json!({ "bindings": items })))
}

/// `GET /v2.0/ports/{id}/bindings/{host}` (admin).
pub async fn show_binding(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, host)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let mut conn = read_conn(&state).await?;
    own_port(&mut conn, &caller, &id).await?;
    let b = bindings_of(&mut conn, &id)
        .await?
        .into_iter()
        .find(|b| b["host"] == json!(host))
        .ok_or_else(|| binding_not_found(&id, &host))?;
    Ok(Json(json!({ "binding": b })))
}

/// `POST /v2.0/ports/{id}/bindings` `{"binding": {"host", ...}}` (admin): a new INACTIVE binding.
pub async fn create_binding(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let obj = resource_body(&body, "binding", &["host", "vnic_type", "profile"])?;
    let host =
        opt_str(&obj, "host")?.filter(|h| !h.is_empty()).ok_or_else(|| ApiError::bad_request("host is required"))?;
    let vnic = opt_str(&obj, "vnic_type")?.unwrap_or_else(|| "normal".into());
    let profile = obj.get("profile").filter(|v| !v.is_null()).cloned().unwrap_or(json!({}));
    if !profile.is_object() {
        return Err(ApiError::invalid_input("profile must be a dictionary"));
    }
    let mut tx = state.store.begin_write().await?;
    let port = own_port(&mut tx, &caller, &id).await?;
    let place = Placement::of_profile(&profile)?.unwrap_or_default();
    let binding = add_inactive_binding(&mut tx, &port, &host, &vnic, &profile, &place).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(json!({ "binding": binding }))).into_response())
}

/// Adds an INACTIVE binding of the stored port `port` on `host` in `tx`; 409 when the
/// port already has a binding there.
pub async fn add_inactive_binding(
    tx: &mut WriteTx,
    port: &Value,
    host: &str,
    vnic: &str,
    profile: &Value,
    place: &Placement,
) -> ApiResult<Value> {
    let id = port["id"].as_str().unwrap_or_default();
    if bindings_of(tx, id).await?.iter().any(|b| b["host"] == json!(host)) {
        return Err(ApiError::conflict(
            "PortBindingAlreadyExists",
            format!("Binding for port {id} on host {host} already exists."),
        ));
    }
    let binding = binding_body(host, vnic, profile, "INACTIVE", place);
    insert_binding(tx, port, &binding).await?;
    tracing::info!(port = %id, host, datapath = %place.datapath_text(), "inactive port binding created");
    Ok(binding)
}

/// `PUT /v2.0/ports/{id}/bindings/{host}/activate` (admin): answers the bare binding.
pub async fn activate_binding(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, host)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let mut tx = state.store.begin_write().await?;
    let port = own_port(&mut tx, &caller, &id).await?;
    let (_, active) = activate_in(&mut tx, port, &host).await?;
    tx.commit().await?;
    // Neutron answers this member action with the bare binding, not {"binding": ...}; the SDK relies on it.
    Ok(Json(active))
}

/// Makes the binding of the stored port `port` on `host` ACTIVE in `tx` (the active one
/// turns INACTIVE); returns the port as updated and the binding. 404 without a binding
/// there, 409 when it is already active.
pub async fn activate_in(tx: &mut WriteTx, mut port: Value, host: &str) -> ApiResult<(Value, Value)> {
    let id = port["id"].as_str().unwrap_or_default().to_string();
    let bindings = bindings_of(tx, &id).await?;
    let target =
        bindings.iter().find(|b| b["host"] == json!(host)).ok_or_else(|| binding_not_found(&id, host))?.clone();
    if target["status"] == json!("ACTIVE") {
        return Err(ApiError::conflict(
            "PortBindingAlreadyActive",
            format!("Binding for port {id} on host {host} is already active."),
        ));
    }
    for old in bindings.iter().filter(|b| b["status"] == json!("ACTIVE")) {
        let old_host = old["host"].as_str().unwrap_or_default().to_string();
        delete_binding_row(tx, &port, &old_host).await?;
        let mut inactive = old.clone();
        inactive["status"] = json!("INACTIVE");
        insert_binding(tx, &port, &inactive).await?;
    }
    delete_binding_row(tx, &port, host).await?;
    let mut active = target;
    active["status"] = json!("ACTIVE");
    insert_binding(tx, &port, &active).await?;
    show_binding_on_port(&mut port, &active);
    touch(&mut port, tx);
    tx.update("ports", "port", &port).await?;
    tracing::info!(port = %id, host, revision = tx.revision(), "port binding activated");
    Ok((port, active))
}

/// `DELETE /v2.0/ports/{id}/bindings/{host}` (admin). Deleting the active binding unbinds the port.
pub async fn delete_binding(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, host)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let mut tx = state.store.begin_write().await?;
    let port = own_port(&mut tx, &caller, &id).await?;
    remove_binding_in(&mut tx, port, &host).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes the binding of the stored port `port` on `host` in `tx` (the active one: the
/// port is unbound); returns the port. 404 without a binding there.
pub async fn remove_binding_in(tx: &mut WriteTx, mut port: Value, host: &str) -> ApiResult<Value> {
    let id = port["id"].as_str().unwrap_or_default().to_string();
    let binding = bindings_of(tx, &id)
        .await?
        .into_iter()
        .find(|b| b["host"] == json!(host))
        .ok_or_else(|| binding_not_found(&id, host))?;
    delete_binding_row(tx, &port, host).await?;
    if binding["status"] == json!("ACTIVE") {
        let vnic = port["binding:vnic_type"].as_str().unwrap_or("normal").to_string();
        show_binding_on_port(&mut port, &binding_body("", &vnic, &json!({}), "ACTIVE", &Placement::default()));
        touch(&mut port, tx);
        tx.update("ports", "port", &port).await?;
    }
    tracing::info!(port = %id, host, "port binding removed");
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_normalised_and_checked() {
        assert_eq!(parse_mac("FA-16-3E-00-00-01").unwrap(), "fa:16:3e:00:00:01");
        assert!(parse_mac("01:00:5e:00:00:01").is_err(), "multicast");
        assert!(parse_mac("00:00:00:00:00:00").is_err());
        assert!(parse_mac("fa:16:3e:00:00").is_err());
        assert!(parse_mac("fa:16:3e:00:00:0g").is_err());
    }

    #[test]
    fn random_macs_use_the_base_prefix() {
        assert!(random_mac().starts_with("fa:16:3e:"));
        assert!(parse_mac(&random_mac()).is_ok());
    }
}
