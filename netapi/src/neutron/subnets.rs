//! Subnets and IPAM: CIDR checks, gateway, allocation pools, host routes, DNS servers,
//! and the allocation of addresses to ports.
//!
//! Overlapping CIDRs are allowed across networks and refused within one network.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use ipnet::IpNet;
use serde_json::{json, Value};
use sqlx::{AnyConnection, Row};

use super::{
    apply_name_description, created, fetch, fetch_for_write, list_response, list_visible, new_id, one, read_conn,
    standard_attrs, touch, NETWORK, SUBNET,
};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{opt_bool, opt_int, opt_str, resource_body};
use crate::store::{list_bodies, Col, StoreError, WriteTx};
use crate::AppState;

const CREATE_FIELDS: &[&str] = &[
    "name",
    "description",
    "network_id",
    "cidr",
    "ip_version",
    "gateway_ip",
    "allocation_pools",
    "dns_nameservers",
    "host_routes",
    "enable_dhcp",
    "project_id",
    "tenant_id",
    "ipv6_ra_mode",
    "ipv6_address_mode",
    "subnetpool_id",
    "use_default_subnetpool",
    "prefixlen",
    "segment_id",
    "service_types",
    "dns_publish_fixed_ip",
];
const UPDATE_FIELDS: &[&str] =
    &["name", "description", "gateway_ip", "allocation_pools", "dns_nameservers", "host_routes", "enable_dhcp"];

/// An address as a number (IPv4 in the low 32 bits).
pub fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address numbered `n` in the family of `like`.
pub fn u128_to_ip(n: u128, like: &IpNet) -> IpAddr {
    match like {
        IpNet::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(n as u32)),
        IpNet::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(n)),
    }
}

/// Parses a CIDR whose host bits are zero.
pub fn parse_cidr(s: &str) -> ApiResult<IpNet> {
    let net: IpNet = s.parse().map_err(|_| ApiError::invalid_input(format!("'{s}' is not a valid IP subnet")))?;
    if net.trunc() != net {
        return Err(ApiError::invalid_input(format!(
            "'{s}' isn't a recognized IP subnet cidr, '{}' is recommended",
            net.trunc()
        )));
    }
    Ok(net)
}

/// Parses an IP address.
pub fn parse_ip(s: &str) -> ApiResult<IpAddr> {
    s.parse().map_err(|_| ApiError::invalid_input(format!("'{s}' is not a valid IP address")))
}

/// The first and last assignable addresses of `net` (IPv4 excludes the network and
/// broadcast addresses, IPv6 the subnet-router anycast address).
fn host_range(net: &IpNet) -> (u128, u128) {
    let first = ip_to_u128(net.network());
    let last = ip_to_u128(net.broadcast());
    match net {
        IpNet::V4(n) if n.prefix_len() >= 31 => (first, last),
        IpNet::V4(_) => (first + 1, last - 1),
        IpNet::V6(n) if n.prefix_len() == 128 => (first, last),
        IpNet::V6(_) => (first + 1, last),
    }
}

/// True when `ip` may be given to a port on `net`.
fn assignable(net: &IpNet, ip: IpAddr) -> bool {
    let (lo, hi) = host_range(net);
    let n = ip_to_u128(ip);
    net.contains(&ip) && n >= lo && n <= hi
}

/// Parses and checks allocation pools against the subnet and its gateway.
fn parse_pools(v: &Value, net: &IpNet, gateway: Option<IpAddr>) -> ApiResult<Vec<(u128, u128)>> {
    let Value::Array(items) = v else {
        return Err(ApiError::invalid_input("allocation_pools must be a list"));
    };
    let mut pools = Vec::new();
    for item in items {
        let start = item
            .get("start")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid_input("allocation pool needs start"))?;
        let end = item
            .get("end")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid_input("allocation pool needs end"))?;
        let (s, e) = (parse_ip(start)?, parse_ip(end)?);
        if !assignable(net, s) || !assignable(net, e) || ip_to_u128(s) > ip_to_u128(e) {
            return Err(ApiError::bad_request(format!(
                "The allocation pool {start}-{end} spans beyond the subnet cidr {net}."
            )));
        }
        pools.push((ip_to_u128(s), ip_to_u128(e)));
    }
    pools.sort_unstable();
    for w in pools.windows(2) {
        if w[1].0 <= w[0].1 {
            return Err(ApiError::bad_request("Found overlapping allocation pools"));
        }
    }
    if let Some(gw) = gateway {
        let g = ip_to_u128(gw);
        if pools.iter().any(|(s, e)| g >= *s && g <= *e) {
            return Err(ApiError::conflict(
                "GatewayConflictWithAllocationPools",
                format!("Gateway ip {gw} conflicts with allocation pool"),
            ));
        }
    }
    Ok(pools)
}

/// The default pools: the host range minus the gateway.
fn default_pools(net: &IpNet, gateway: Option<IpAddr>) -> Vec<(u128, u128)> {
    let (lo, hi) = host_range(net);
    match gateway.map(ip_to_u128) {
        Some(g) if g >= lo && g <= hi => {
            let mut v = Vec::new();
            if g > lo {
                v.push((lo, g - 1));
            }
            if g < hi {
                v.push((g + 1, hi));
            }
            v
        }
        _ => vec![(lo, hi)],
    }
}

fn pools_json(pools: &[(u128, u128)], net: &IpNet) -> Value {
    pools
        .iter()
        .map(|(s, e)| json!({"start": u128_to_ip(*s, net).to_string(), "end": u128_to_ip(*e, net).to_string()}))
        .collect()
}

fn parse_gateway(v: Option<&Value>, net: &IpNet) -> ApiResult<Option<IpAddr>> {
    match v {
        // Absent: the first host address.
        None => Ok(Some(u128_to_ip(ip_to_u128(net.network()) + 1, net)).filter(|ip| net.contains(ip))),
        Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let ip = parse_ip(s)?;
            if !assignable(net, ip) {
                return Err(ApiError::bad_request(format!("Gateway IP {s} is not a valid host address of {net}")));
            }
            Ok(Some(ip))
        }
        Some(other) => Err(ApiError::invalid_input(format!("'{other}' is not a valid gateway_ip"))),
    }
}

fn parse_dns(v: &Value) -> ApiResult<Value> {
    let Value::Array(items) = v else {
        return Err(ApiError::invalid_input("dns_nameservers must be a list"));
    };
    let mut seen = HashSet::new();
    for item in items {
        let s = item.as_str().ok_or_else(|| ApiError::invalid_input(format!("'{item}' is not a valid nameserver")))?;
        parse_ip(s)?;
        if !seen.insert(s) {
            return Err(ApiError::invalid_input(format!("Duplicate nameserver '{s}'")));
        }
    }
    Ok(v.clone())
}

fn parse_routes(v: &Value) -> ApiResult<Value> {
    let Value::Array(items) = v else {
        return Err(ApiError::invalid_input("host_routes must be a list"));
    };
    let mut out = Vec::new();
    for item in items {
        let dest = item
            .get("destination")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid_input("host route needs destination"))?;
        let hop = item
            .get("nexthop")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid_input("host route needs nexthop"))?;
        parse_cidr(dest)?;
        parse_ip(hop)?;
        out.push(json!({"destination": dest, "nexthop": hop}));
    }
    Ok(Value::Array(out))
}

/// `POST /v2.0/subnets`.
pub async fn create(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult<Response> {
    caller.require_writer()?;
    let obj = resource_body(&body, "subnet", CREATE_FIELDS)?;
    let network_id = opt_str(&obj, "network_id")?.ok_or_else(|| ApiError::bad_request("network_id is required"))?;
    let cidr_s = opt_str(&obj, "cidr")?
        .ok_or_else(|| ApiError::bad_request("cidr is required (subnet pools are not supported)"))?;
    let net = parse_cidr(&cidr_s)?;
    let ip_version = opt_int(&obj, "ip_version")?.unwrap_or(4);
    let family = if matches!(net, IpNet::V4(_)) { 4 } else { 6 };
    if ip_version != family {
        return Err(ApiError::invalid_input(format!("Cidr {cidr_s} does not match ip_version {ip_version}")));
    }
    if opt_str(&obj, "subnetpool_id")?.is_some() || opt_bool(&obj, "use_default_subnetpool")?.unwrap_or(false) {
        return Err(ApiError::bad_request("Subnet pools are not supported."));
    }
    let gateway = parse_gateway(obj.get("gateway_ip"), &net)?;
    let pools = match obj.get("allocation_pools") {
        None | Some(Value::Null) => default_pools(&net, gateway),
        Some(v) => parse_pools(v, &net, gateway)?,
    };
    let dns = obj.get("dns_nameservers").filter(|v| !v.is_null()).map(parse_dns).transpose()?.unwrap_or(json!([]));
    let routes = obj.get("host_routes").filter(|v| !v.is_null()).map(parse_routes).transpose()?.unwrap_or(json!([]));

    let mut tx = state.store.begin_write().await?;
    let mut network = fetch_for_write(&mut tx, NETWORK, &caller, &network_id).await?;
    let project = caller.owning_project(opt_str(&obj, "project_id")?.or(opt_str(&obj, "tenant_id")?).as_deref())?;
    for other in list_bodies(&mut tx, SUBNET.table, Some(("network_id", &network_id))).await? {
        let Some(other_net) = other["cidr"].as_str().and_then(|c| c.parse::<IpNet>().ok()) else { continue };
        if other_net.contains(&net.network()) || net.contains(&other_net.network()) {
            return Err(ApiError::bad_request(format!(
                "Invalid input for operation: Requested subnet with cidr: {net} for network: {network_id} overlaps with another subnet."
            )));
        }
    }
    let id = new_id();
    let mut b = standard_attrs(&tx, &id, &project, &obj);
    b.insert("network_id".into(), json!(network_id));
    b.insert("ip_version".into(), json!(family));
    b.insert("cidr".into(), json!(net.to_string()));
    b.insert("gateway_ip".into(), json!(gateway.map(|g| g.to_string())));
    b.insert("allocation_pools".into(), pools_json(&pools, &net));
    b.insert("dns_nameservers".into(), dns);
    b.insert("host_routes".into(), routes);
    b.insert("enable_dhcp".into(), json!(opt_bool(&obj, "enable_dhcp")?.unwrap_or(true)));
    b.insert("ipv6_ra_mode".into(), json!(opt_str(&obj, "ipv6_ra_mode")?));
    b.insert("ipv6_address_mode".into(), json!(opt_str(&obj, "ipv6_address_mode")?));
    b.insert("subnetpool_id".into(), Value::Null);
    b.insert("segment_id".into(), Value::Null);
    b.insert("service_types".into(), json!([]));
    b.insert("dns_publish_fixed_ip".into(), json!(false));
    let body = Value::Object(b);
    tx.insert("subnets", "subnet", &body, &[("network_id", Col::Text(network_id.clone()))]).await?;
    if let Some(list) = network["subnets"].as_array_mut() {
        list.push(json!(id));
    }
    touch(&mut network, &tx);
    tx.update("networks", "network", &network).await?;
    tx.commit().await?;
    tracing::info!(subnet = %id, network = %network_id, cidr = %net, project = %project, "subnet created");
    Ok(created(SUBNET, body))
}

/// `GET /v2.0/subnets`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let mut conn = read_conn(&state).await?;
    let mut items = list_visible(&mut conn, SUBNET, &caller).await?;
    if !caller.is_admin() {
        // Subnets of shared networks are visible too.
        for net in list_visible(&mut conn, NETWORK, &caller).await? {
            if net["shared"] == json!(true) && !caller.can_see(super::project_of(&net)) {
                let id = net["id"].as_str().unwrap_or_default().to_string();
                items.extend(list_bodies(&mut conn, SUBNET.table, Some(("network_id", &id))).await?);
            }
        }
    }
    Ok(list_response(SUBNET, items, &q))
}

/// The subnet `id` if the caller may see it (its own, or on a visible shared network).
async fn fetch_subnet(conn: &mut AnyConnection, caller: &Caller, id: &str) -> ApiResult<Value> {
    match crate::store::get_body(conn, SUBNET.table, id).await? {
        Some(s) if caller.can_see(super::project_of(&s)) => Ok(s),
        Some(s) => {
            let net = s["network_id"].as_str().unwrap_or_default().to_string();
            fetch(conn, NETWORK, caller, &net).await.map(|_| s).map_err(|_| ApiError::not_found(SUBNET.label, id))
        }
        None => Err(ApiError::not_found(SUBNET.label, id)),
    }
}

/// `GET /v2.0/subnets/{id}`.
pub async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let mut conn = read_conn(&state).await?;
    Ok(one(SUBNET, fetch_subnet(&mut conn, &caller, &id).await?))
}

/// `PUT /v2.0/subnets/{id}`.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = resource_body(&body, "subnet", UPDATE_FIELDS)?;
    let mut tx = state.store.begin_write().await?;
    let mut subnet = fetch_for_write(&mut tx, SUBNET, &caller, &id).await?;
    let net = parse_cidr(subnet["cidr"].as_str().unwrap_or_default())?;
    apply_name_description(&mut subnet, &obj)?;
    let mut gateway = subnet["gateway_ip"].as_str().and_then(|g| g.parse::<IpAddr>().ok());
    if obj.contains_key("gateway_ip") {
        gateway = parse_gateway(obj.get("gateway_ip"), &net)?;
        subnet["gateway_ip"] = json!(gateway.map(|g| g.to_string()));
        // A former gateway address below the hint becomes free.
        reset_hint(&mut tx, &id).await?;
    }
    if let Some(v) = obj.get("allocation_pools").filter(|v| !v.is_null()) {
        subnet["allocation_pools"] = pools_json(&parse_pools(v, &net, gateway)?, &net);
        reset_hint(&mut tx, &id).await?;
    } else if obj.contains_key("gateway_ip") {
        // The gateway moved: it must stay out of the existing pools.
        parse_pools(&subnet["allocation_pools"], &net, gateway)?;
    }
    if let Some(v) = obj.get("dns_nameservers") {
        subnet["dns_nameservers"] = if v.is_null() { json!([]) } else { parse_dns(v)? };
    }
    if let Some(v) = obj.get("host_routes") {
        subnet["host_routes"] = if v.is_null() { json!([]) } else { parse_routes(v)? };
    }
    if let Some(v) = opt_bool(&obj, "enable_dhcp")? {
        subnet["enable_dhcp"] = json!(v);
    }
    touch(&mut subnet, &tx);
    tx.update("subnets", "subnet", &subnet).await?;
    tx.commit().await?;
    Ok(one(SUBNET, subnet))
}

/// `DELETE /v2.0/subnets/{id}`: 409 while a port holds an address of it.
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let mut tx = state.store.begin_write().await?;
    let subnet = fetch_for_write(&mut tx, SUBNET, &caller, &id).await?;
    let used: i64 = sqlx::query("SELECT COUNT(*) FROM ip_allocations WHERE subnet_id = $1")
        .bind(id.clone())
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::from)?
        .try_get(0)
        .map_err(StoreError::from)?;
    if used > 0 {
        return Err(ApiError::conflict(
            "SubnetInUse",
            format!("Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."),
        ));
    }
    let network_id = subnet["network_id"].as_str().unwrap_or_default().to_string();
    tx.delete("subnets", "subnet", &subnet).await?;
    if let Some(mut network) = crate::store::get_body(&mut tx, NETWORK.table, &network_id).await? {
        if let Some(list) = network["subnets"].as_array_mut() {
            list.retain(|s| s.as_str() != Some(id.as_str()));
        }
        touch(&mut network, &tx);
        tx.update("networks", "network", &network).await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Address allocation for ports.

/// One requested fixed IP of a port: a subnet, an address, or both.
#[derive(Clone, Debug, Default)]
pub struct FixedIpRequest {
    /// The subnet to allocate from.
    pub subnet_id: Option<String>,
    /// The exact address wanted.
    pub ip_address: Option<String>,
}

/// Parses a port's `fixed_ips` attribute.
pub fn parse_fixed_ips(v: &Value) -> ApiResult<Vec<FixedIpRequest>> {
    let Value::Array(items) = v else {
        return Err(ApiError::invalid_input("fixed_ips must be a list"));
    };
    items
        .iter()
        .map(|item| {
            let Value::Object(o) = item else {
                return Err(ApiError::invalid_input(format!("'{item}' is not a valid fixed IP")));
            };
            if let Some(k) = o.keys().find(|k| *k != "subnet_id" && *k != "ip_address") {
                return Err(ApiError::invalid_input(format!("Unrecognized fixed IP attribute '{k}'")));
            }
            let req = FixedIpRequest { subnet_id: opt_str(o, "subnet_id")?, ip_address: opt_str(o, "ip_address")? };
            if req.subnet_id.is_none() && req.ip_address.is_none() {
                return Err(ApiError::invalid_input("A fixed IP needs subnet_id or ip_address"));
            }
            Ok(req)
        })
        .collect()
}

/// Allocates the addresses of a port on `network_id` in `tx`: the requested ones, or (when
/// `requested` is `None`) one from the first IPv4 subnet and one from the first IPv6 subnet
/// with room. Returns the port's `fixed_ips`.
pub async fn allocate(
    tx: &mut WriteTx,
    network_id: &str,
    port_id: &str,
    requested: Option<&[FixedIpRequest]>,
    router_port: bool,
) -> ApiResult<Vec<Value>> {
    // The subnets with their allocation hints, in one read.
    let rows = sqlx::query(
        "SELECT s.id, s.body, h.next_ip FROM subnets s LEFT JOIN ip_allocation_hints h ON h.subnet_id = s.id \
         WHERE s.network_id = $1 ORDER BY s.rev, s.id",
    )
    .bind(network_id.to_string())
    .fetch_all(&mut **tx)
    .await
    .map_err(StoreError::from)?;
    let mut subnets = Vec::with_capacity(rows.len());
    let mut hints: HashMap<String, u128> = HashMap::new();
    for row in rows {
        let id: String = row.try_get(0).map_err(StoreError::from)?;
        let next: Option<String> = row.try_get(2).map_err(StoreError::from)?;
        if let Some(n) = next.and_then(|n| n.parse::<IpAddr>().ok()) {
            hints.insert(id.clone(), ip_to_u128(n));
        }
        subnets.push(crate::store::parse_body("subnets", &id, row.try_get(1).map_err(StoreError::from)?)?);
    }
    let mut out = Vec::new();
    match requested {
        Some(reqs) => {
            for req in reqs {
                let subnet = match (&req.subnet_id, &req.ip_address) {
                    (Some(sid), _) => subnets.iter().find(|s| s["id"].as_str() == Some(sid.as_str())).ok_or_else(|| {
                        ApiError::invalid_input(format!(
                            "Failed to create port on network {network_id}, because fixed_ips included invalid subnet {sid}"
                        ))
                    })?,
                    (None, Some(ip)) => {
                        let addr = parse_ip(ip)?;
                        subnets
                            .iter()
                            .find(|s| s["cidr"].as_str().and_then(|c| c.parse::<IpNet>().ok()).is_some_and(|n| n.contains(&addr)))
                            .ok_or_else(|| ApiError::bad_request(format!("IP address {ip} is not a valid IP for any subnet on network {network_id}.")))?
                    }
                    (None, None) => return Err(ApiError::invalid_input("A fixed IP needs subnet_id or ip_address")),
                };
                let ip = match &req.ip_address {
                    Some(ip) => claim(tx, subnet, ip, port_id, router_port).await?,
                    None => next_free(tx, subnet, &mut hints, port_id).await?.ok_or_else(|| exhausted(network_id))?,
                };
                out.push(json!({"subnet_id": subnet["id"], "ip_address": ip}));
            }
        }
        None => {
            for family in [4, 6] {
                let candidates: Vec<&Value> = subnets.iter().filter(|s| s["ip_version"] == json!(family)).collect();
                if candidates.is_empty() {
                    continue;
                }
                let mut got = None;
                for subnet in candidates {
                    if let Some(ip) = next_free(tx, subnet, &mut hints, port_id).await? {
                        got = Some(json!({"subnet_id": subnet["id"], "ip_address": ip}));
                        break;
                    }
                }
                out.push(got.ok_or_else(|| exhausted(network_id))?);
            }
        }
    }
    Ok(out)
}

fn exhausted(network_id: &str) -> ApiError {
    ApiError::conflict("IpAddressGenerationFailure", format!("No more IP addresses available on network {network_id}."))
}

/// Claims the exact address `ip` of `subnet` for the port.
async fn claim(tx: &mut WriteTx, subnet: &Value, ip: &str, port_id: &str, router_port: bool) -> ApiResult<String> {
    let subnet_id = subnet["id"].as_str().unwrap_or_default();
    let net = parse_cidr(subnet["cidr"].as_str().unwrap_or_default())?;
    let addr = parse_ip(ip)?;
    if !assignable(&net, addr) {
        return Err(ApiError::bad_request(format!("IP address {ip} is not a valid IP for the specified subnet.")));
    }
    let canonical = addr.to_string();
    let is_gateway = subnet["gateway_ip"].as_str() == Some(canonical.as_str());
    if (is_gateway && !router_port) || !record_allocation(tx, subnet_id, &canonical, port_id).await? {
        return Err(ApiError::conflict(
            "IpAddressAlreadyAllocated",
            format!("IP address {canonical} already allocated in subnet {subnet_id}"),
        ));
    }
    Ok(canonical)
}

/// Gives `ip` of `subnet_id` to the port unless it is taken; returns whether it was free.
async fn record_allocation(tx: &mut WriteTx, subnet_id: &str, ip: &str, port_id: &str) -> ApiResult<bool> {
    let n = sqlx::query(
        "INSERT INTO ip_allocations (subnet_id, ip_address, port_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(subnet_id.to_string())
    .bind(ip.to_string())
    .bind(port_id.to_string())
    .execute(&mut **tx)
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    Ok(n > 0)
}

/// The allocation hint of `subnet_id` (see `ip_allocation_hints`): every pool address below
/// it is taken.
async fn hint(tx: &mut WriteTx, subnet_id: &str) -> ApiResult<Option<u128>> {
    let row = sqlx::query("SELECT next_ip FROM ip_allocation_hints WHERE subnet_id = $1")
        .bind(subnet_id.to_string())
        .fetch_optional(&mut **tx)
        .await
        .map_err(StoreError::from)?;
    let Some(row) = row else { return Ok(None) };
    let text: String = row.try_get(0).map_err(StoreError::from)?;
    Ok(text.parse::<IpAddr>().ok().map(ip_to_u128))
}

async fn set_hint(tx: &mut WriteTx, subnet_id: &str, next: IpAddr) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO ip_allocation_hints (subnet_id, next_ip) VALUES ($1, $2) \
         ON CONFLICT (subnet_id) DO UPDATE SET next_ip = excluded.next_ip",
    )
    .bind(subnet_id.to_string())
    .bind(next.to_string())
    .execute(&mut **tx)
    .await
    .map_err(StoreError::from)?;
    Ok(())
}

/// Forgets the allocation hint of a subnet (its pools changed).
pub async fn reset_hint(tx: &mut WriteTx, subnet_id: &str) -> ApiResult<()> {
    sqlx::query("DELETE FROM ip_allocation_hints WHERE subnet_id = $1")
        .bind(subnet_id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from)?;
    Ok(())
}

/// Allocates the lowest free address of `subnet`'s pools, if any is left. Starts at the
/// subnet's hint and tries candidates one by one (an insert that does nothing when the
/// address is taken), so a subnet with many ports costs a few statements per allocation,
/// not a read of every allocation.
/// `hints` holds the hints read with the subnets, and is kept up to date.
async fn next_free(
    tx: &mut WriteTx,
    subnet: &Value,
    hints: &mut HashMap<String, u128>,
    port_id: &str,
) -> ApiResult<Option<String>> {
    let subnet_id = subnet["id"].as_str().unwrap_or_default().to_string();
    let net = parse_cidr(subnet["cidr"].as_str().unwrap_or_default())?;
    let floor = hints.get(&subnet_id).copied().unwrap_or(0);
    let gateway = subnet["gateway_ip"].as_str().map(str::to_string);
    let empty = Vec::new();
    for pool in subnet["allocation_pools"].as_array().unwrap_or(&empty) {
        let (Some(start), Some(end)) = (pool["start"].as_str(), pool["end"].as_str()) else { continue };
        let (s, e) = (ip_to_u128(parse_ip(start)?), ip_to_u128(parse_ip(end)?));
        let mut n = s.max(floor);
        while n <= e {
            let addr = u128_to_ip(n, &net);
            let ip = addr.to_string();
            if gateway.as_deref() != Some(ip.as_str()) && record_allocation(tx, &subnet_id, &ip, port_id).await? {
                if n < u128::MAX {
                    set_hint(tx, &subnet_id, u128_to_ip(n + 1, &net)).await?;
                    hints.insert(subnet_id.clone(), n + 1);
                }
                return Ok(Some(ip));
            }
            n += 1;
        }
    }
    Ok(None)
}

/// Frees every address of a port (lowering the subnets' hints to the freed addresses).
pub async fn release(tx: &mut WriteTx, port_id: &str) -> ApiResult<()> {
    let rows = sqlx::query("SELECT subnet_id, ip_address FROM ip_allocations WHERE port_id = $1")
        .bind(port_id.to_string())
        .fetch_all(&mut **tx)
        .await
        .map_err(StoreError::from)?;
    let freed: Vec<(String, String)> = rows
        .iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)?;
    if freed.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM ip_allocations WHERE port_id = $1")
        .bind(port_id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from)?;
    for (subnet_id, ip) in freed {
        let Ok(addr) = ip.parse::<IpAddr>() else { continue };
        if hint(tx, &subnet_id).await?.is_some_and(|h| ip_to_u128(addr) < h) {
            set_hint(tx, &subnet_id, addr).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_with_host_bits_is_refused() {
        assert!(parse_cidr("10.0.0.5/24").unwrap_err().message.contains("10.0.0.0/24"));
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("nonsense").is_err());
    }

    #[test]
    fn default_pools_skip_gateway_network_and_broadcast() {
        let net = parse_cidr("10.0.0.0/24").unwrap();
        let gw = parse_gateway(None, &net).unwrap();
        assert_eq!(gw, Some("10.0.0.1".parse().unwrap()));
        let pools = pools_json(&default_pools(&net, gw), &net);
        assert_eq!(pools, json!([{"start": "10.0.0.2", "end": "10.0.0.254"}]));
    }

    #[test]
    fn pools_outside_the_cidr_or_over_the_gateway_are_refused() {
        let net = parse_cidr("10.0.0.0/24").unwrap();
        let gw = Some("10.0.0.1".parse().unwrap());
        assert!(parse_pools(&json!([{"start": "10.0.1.2", "end": "10.0.1.9"}]), &net, gw).is_err());
        assert_eq!(
            parse_pools(&json!([{"start": "10.0.0.1", "end": "10.0.0.9"}]), &net, gw).unwrap_err().status.as_u16(),
            409
        );
        assert!(parse_pools(
            &json!([{"start": "10.0.0.2", "end": "10.0.0.9"}, {"start": "10.0.0.5", "end": "10.0.0.20"}]),
            &net,
            gw
        )
        .is_err());
    }
}
