//! Security groups and rules with Neutron's semantics: every project has a `default`
//! group (created on first use; ingress from members of the group itself, all egress),
//! a new group starts with allow-all egress for IPv4 and IPv6, rules may name a remote
//! group, and a group in use by a port cannot be deleted (409).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde_json::{json, Map, Value};
use sqlx::Row;

use super::{
    apply_name_description, created, fetch, fetch_for_write, list_response, list_visible, new_id, one, project_of,
    read_conn, standard_attrs, touch, SECURITY_GROUP, SECURITY_GROUP_RULE,
};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{coerce_int, opt_bool, opt_str, resource_body};
use crate::store::{list_bodies, Col, StoreError, WriteTx};
use crate::AppState;

const CREATE_FIELDS: &[&str] = &["name", "description", "project_id", "tenant_id", "stateful"];
const UPDATE_FIELDS: &[&str] = &["name", "description", "stateful"];
const RULE_FIELDS: &[&str] = &[
    "security_group_id",
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "remote_address_group_id",
    "description",
    "project_id",
    "tenant_id",
];

/// IP protocol names Neutron accepts, with their numbers.
const PROTOCOLS: &[(&str, u8)] = &[
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("icmp", 1),
    ("icmpv6", 58),
    ("igmp", 2),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];

/// Protocols whose port range means L4 ports.
const PORTED: &[&str] = &["tcp", "udp", "sctp", "dccp", "udplite", "6", "17", "132", "33", "136"];

/// Builds a rule body in `tx` (not yet stored).
#[allow(clippy::too_many_arguments)]
fn rule_body(
    tx: &WriteTx,
    project: &str,
    group_id: &str,
    direction: &str,
    ethertype: &str,
    protocol: Option<String>,
    range: (Option<i64>, Option<i64>),
    remote_ip_prefix: Option<String>,
    remote_group_id: Option<String>,
    description: &str,
) -> Value {
    let id = new_id();
    let mut obj = Map::new();
    obj.insert("description".into(), json!(description));
    let mut b = standard_attrs(tx, &id, project, &obj);
    b.remove("tags");
    b.insert("security_group_id".into(), json!(group_id));
    b.insert("direction".into(), json!(direction));
    b.insert("ethertype".into(), json!(ethertype));
    b.insert("protocol".into(), json!(protocol));
    b.insert("port_range_min".into(), json!(range.0));
    b.insert("port_range_max".into(), json!(range.1));
    b.insert("normalized_cidr".into(), json!(remote_ip_prefix));
    b.insert("remote_ip_prefix".into(), json!(remote_ip_prefix));
    b.insert("remote_group_id".into(), json!(remote_group_id));
    b.insert("remote_address_group_id".into(), Value::Null);
    b.insert("belongs_to_default_sg".into(), json!(false));
    Value::Object(b)
}

async fn insert_rule(tx: &mut WriteTx, rule: &Value) -> ApiResult<()> {
    let extra = [
        ("security_group_id", Col::Text(rule["security_group_id"].as_str().unwrap_or_default().to_string())),
        ("remote_group_id", Col::Text(rule["remote_group_id"].as_str().unwrap_or_default().to_string())),
    ];
    if rule["remote_group_id"].is_null() {
        tx.insert("security_group_rules", "security_group_rule", rule, &extra[..1]).await?;
    } else {
        tx.insert("security_group_rules", "security_group_rule", rule, &extra).await?;
    }
    Ok(())
}

/// Creates a group with its initial rules: allow-all egress, plus (for `default`) ingress
/// from the group's own members.
async fn create_group(tx: &mut WriteTx, project: &str, obj: &Map<String, Value>, is_default: bool) -> ApiResult<Value> {
    let id = new_id();
    let mut b = standard_attrs(tx, &id, project, obj);
    b.insert("stateful".into(), json!(opt_bool(obj, "stateful")?.unwrap_or(true)));
    b.insert("shared".into(), json!(false));
    let mut body = Value::Object(b);
    tx.insert("security_groups", "security_group", &body, &[]).await?;
    let mut rules = Vec::new();
    for ethertype in ["IPv4", "IPv6"] {
        rules.push(rule_body(tx, project, &id, "egress", ethertype, None, (None, None), None, None, ""));
        if is_default {
            rules.push(rule_body(
                tx,
                project,
                &id,
                "ingress",
                ethertype,
                None,
                (None, None),
                None,
                Some(id.clone()),
                "",
            ));
        }
    }
    for r in &mut rules {
        r["belongs_to_default_sg"] = json!(is_default);
        insert_rule(tx, r).await?;
    }
    body["security_group_rules"] = json!(rules);
    Ok(body)
}

/// The id of `project`'s default group, creating it (in `tx`) on first use.
pub async fn ensure_default(tx: &mut WriteTx, project: &str) -> ApiResult<String> {
    let row = sqlx::query("SELECT security_group_id FROM default_security_groups WHERE project_id = $1")
        .bind(project.to_string())
        .fetch_optional(&mut **tx)
        .await
        .map_err(StoreError::from)?;
    if let Some(row) = row {
        return Ok(row.try_get(0).map_err(StoreError::from)?);
    }
    let mut obj = Map::new();
    obj.insert("name".into(), json!("default"));
    obj.insert("description".into(), json!("Default security group"));
    let group = create_group(tx, project, &obj, true).await?;
    let id = group["id"].as_str().unwrap_or_default().to_string();
    sqlx::query("INSERT INTO default_security_groups (project_id, security_group_id) VALUES ($1, $2)")
        .bind(project.to_string())
        .bind(id.clone())
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from)?;
    tracing::info!(project, security_group = %id, "default security group created");
    Ok(id)
}

/// Attaches each group's rules to it.
async fn with_rules(conn: &mut sqlx::AnyConnection, groups: Vec<Value>, caller: &Caller) -> ApiResult<Vec<Value>> {
    let rules = list_visible(conn, SECURITY_GROUP_RULE, caller).await?;
    let mut by_group: HashMap<String, Vec<Value>> = HashMap::new();
    for r in rules {
        by_group.entry(r["security_group_id"].as_str().unwrap_or_default().to_string()).or_default().push(r);
    }
    Ok(groups
        .into_iter()
        .map(|mut g| {
            let id = g["id"].as_str().unwrap_or_default().to_string();
            g["security_group_rules"] = json!(by_group.remove(&id).unwrap_or_default());
            g
        })
        .collect())
}

/// `POST /v2.0/security-groups`.
pub async fn create(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult<Response> {
    caller.require_writer()?;
    let obj = resource_body(&body, "security_group", CREATE_FIELDS)?;
    let project = caller.owning_project(opt_str(&obj, "project_id")?.or(opt_str(&obj, "tenant_id")?).as_deref())?;
    let mut tx = state.store.begin_write().await?;
    ensure_default(&mut tx, &project).await?;
    if opt_str(&obj, "name")?.as_deref() == Some("default") {
        return Err(ApiError::conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists."));
    }
    let group = create_group(&mut tx, &project, &obj, false).await?;
    tx.commit().await?;
    tracing::info!(security_group = %group["id"], project = %project, "security group created");
    Ok(created(SECURITY_GROUP, group))
}

/// `GET /v2.0/security-groups` (creates the caller's default group on first use).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    if caller.require_writer().is_ok() {
        let had = sqlx::query("SELECT 1 FROM default_security_groups WHERE project_id = $1")
            .bind(caller.project_id.clone())
            .fetch_optional(state.store.pool())
            .await
            .map_err(StoreError::from)?
            .is_some();
        if !had {
            let mut tx = state.store.begin_write().await?;
            ensure_default(&mut tx, &caller.project_id).await?;
            tx.commit().await?;
        }
    }
    let mut conn = read_conn(&state).await?;
    let groups = list_visible(&mut conn, SECURITY_GROUP, &caller).await?;
    Ok(list_response(SECURITY_GROUP, with_rules(&mut conn, groups, &caller).await?, &q))
}

/// `GET /v2.0/security-groups/{id}`.
pub async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let mut conn = read_conn(&state).await?;
    let group = fetch(&mut conn, SECURITY_GROUP, &caller, &id).await?;
    let mut groups = with_rules(&mut conn, vec![group], &caller).await?;
    Ok(one(SECURITY_GROUP, groups.pop().unwrap_or_default()))
}

/// `PUT /v2.0/security-groups/{id}`.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = resource_body(&body, "security_group", UPDATE_FIELDS)?;
    let mut tx = state.store.begin_write().await?;
    let mut group = fetch_for_write(&mut tx, SECURITY_GROUP, &caller, &id).await?;
    if group["name"] == json!("default") && obj.get("name").is_some_and(|n| n != "default") {
        return Err(ApiError::conflict(
            "SecurityGroupCannotUpdateDefault",
            "Updating default security group not allowed.",
        ));
    }
    apply_name_description(&mut group, &obj)?;
    if let Some(v) = opt_bool(&obj, "stateful")? {
        group["stateful"] = json!(v);
    }
    touch(&mut group, &tx);
    tx.update("security_groups", "security_group", &group).await?;
    tx.commit().await?;
    let mut conn = read_conn(&state).await?;
    let mut groups = with_rules(&mut conn, vec![group], &caller).await?;
    Ok(one(SECURITY_GROUP, groups.pop().unwrap_or_default()))
}

/// `DELETE /v2.0/security-groups/{id}`: 409 while a port uses it, or for a default group
/// (unless the caller is admin). Rules of other groups naming it as remote go with it.
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let mut tx = state.store.begin_write().await?;
    let group = fetch_for_write(&mut tx, SECURITY_GROUP, &caller, &id).await?;
    let is_default = sqlx::query("SELECT 1 FROM default_security_groups WHERE security_group_id = $1")
        .bind(id.clone())
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from)?
        .is_some();
    if is_default && !caller.is_admin() {
        return Err(ApiError::conflict(
            "SecurityGroupCannotRemoveDefault",
            "Removing default security group not allowed.",
        ));
    }
    let in_use = sqlx::query("SELECT 1 FROM port_security_groups WHERE security_group_id = $1")
        .bind(id.clone())
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from)?
        .is_some();
    if in_use {
        return Err(ApiError::conflict("SecurityGroupInUse", format!("Security Group {id} in use.")));
    }
    let mut rules = list_bodies(&mut tx, SECURITY_GROUP_RULE.table, Some(("security_group_id", &id))).await?;
    rules.extend(list_bodies(&mut tx, SECURITY_GROUP_RULE.table, Some(("remote_group_id", &id))).await?);
    for rule in rules {
        tx.delete("security_group_rules", "security_group_rule", &rule).await?;
    }
    tx.delete("security_groups", "security_group", &group).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn normalize_protocol(p: Option<String>) -> ApiResult<Option<String>> {
    let Some(p) = p else { return Ok(None) };
    let lower = p.to_ascii_lowercase();
    if lower == "any" || lower.is_empty() {
        return Ok(None);
    }
    if PROTOCOLS.iter().any(|(n, _)| *n == lower) {
        return Ok(Some(lower));
    }
    match lower.parse::<u16>() {
        Ok(n) if n <= 255 => Ok(Some(lower)),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "SecurityGroupRuleInvalidProtocol",
            format!("Security group rule protocol {p} not supported. Only protocol values {} and integer representations [0 to 255] are supported.", PROTOCOLS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")),
        )),
    }
}

/// `POST /v2.0/security-group-rules`.
pub async fn create_rule(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult<Response> {
    caller.require_writer()?;
    let obj = resource_body(&body, "security_group_rule", RULE_FIELDS)?;
    let group_id =
        opt_str(&obj, "security_group_id")?.ok_or_else(|| ApiError::bad_request("security_group_id is required"))?;
    let direction = opt_str(&obj, "direction")?.unwrap_or_default();
    if direction != "ingress" && direction != "egress" {
        return Err(ApiError::invalid_input(format!("direction '{direction}' is not in [ingress, egress]")));
    }
    let ethertype = opt_str(&obj, "ethertype")?.unwrap_or_else(|| "IPv4".into());
    let ethertype = match ethertype.to_ascii_lowercase().as_str() {
        "ipv4" => "IPv4",
        "ipv6" => "IPv6",
        _ => return Err(ApiError::invalid_input(format!("ethertype '{ethertype}' is not in [IPv4, IPv6]"))),
    };
    let protocol = normalize_protocol(opt_str(&obj, "protocol")?)?;
    let port = |k: &str| -> ApiResult<Option<i64>> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => coerce_int(v)
                .map(Some)
                .ok_or_else(|| ApiError::invalid_input(format!("'{v}' is not an integer for {k}"))),
        }
    };
    let (min, max) = (port("port_range_min")?, port("port_range_max")?);
    match protocol.as_deref() {
        Some(p) if PORTED.contains(&p) => {
            if let (Some(lo), Some(hi)) = (min, max) {
                if lo > hi || !(0..=65535).contains(&lo) || !(0..=65535).contains(&hi) {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "SecurityGroupInvalidPortRange",
                        "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                    ));
                }
            } else if min.is_some() != max.is_some() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "SecurityGroupInvalidPortRange",
                    "port_range_min and port_range_max must both be given",
                ));
            }
        }
        Some("icmp" | "icmpv6" | "ipv6-icmp" | "1" | "58")
            if min.is_some_and(|v| !(0..=255).contains(&v)) || max.is_some_and(|v| !(0..=255).contains(&v)) =>
        {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "SecurityGroupInvalidIcmpValue",
                "Invalid value for ICMP type or code: must be 0 to 255",
            ));
        }
        // ICMP type and code within range.
        Some("icmp" | "icmpv6" | "ipv6-icmp" | "1" | "58") => {}
        _ if min.is_some() || max.is_some() => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "SecurityGroupInvalidPortRange",
                "Port ranges need a protocol that has ports",
            ));
        }
        _ => {}
    }
    let prefix = match opt_str(&obj, "remote_ip_prefix")? {
        Some(p) => {
            let net: ipnet::IpNet = p
                .parse()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| ApiError::invalid_input(format!("'{p}' is not a valid IP prefix")))?;
            let family = if matches!(net, ipnet::IpNet::V4(_)) { "IPv4" } else { "IPv6" };
            if family != ethertype {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "SecurityGroupRuleParameterConflict",
                    format!("Conflicting value ethertype {ethertype} for CIDR {p}"),
                ));
            }
            Some(net.trunc().to_string())
        }
        None => None,
    };
    let remote_group = opt_str(&obj, "remote_group_id")?;
    if prefix.is_some() && remote_group.is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "SecurityGroupRemoteGroupAndRemoteIpPrefix",
            "Only remote_ip_prefix or remote_group_id may be provided.",
        ));
    }
    if opt_str(&obj, "remote_address_group_id")?.is_some() {
        return Err(ApiError::bad_request("Address groups are not supported."));
    }
    let mut tx = state.store.begin_write().await?;
    let group = fetch_for_write(&mut tx, SECURITY_GROUP, &caller, &group_id).await?;
    if let Some(rg) = &remote_group {
        fetch(&mut tx, SECURITY_GROUP, &caller, rg).await?;
    }
    let project = project_of(&group).to_string();
    let description = opt_str(&obj, "description")?.unwrap_or_default();
    let rule = rule_body(
        &tx,
        &project,
        &group_id,
        &direction,
        ethertype,
        protocol,
        (min, max),
        prefix,
        remote_group,
        &description,
    );
    // Neutron refuses a rule identical to an existing one (ignoring description).
    const SAME: &[&str] = &[
        "direction",
        "ethertype",
        "protocol",
        "port_range_min",
        "port_range_max",
        "remote_ip_prefix",
        "remote_group_id",
    ];
    for existing in list_bodies(&mut tx, SECURITY_GROUP_RULE.table, Some(("security_group_id", &group_id))).await? {
        if SAME.iter().all(|k| existing[*k] == rule[*k]) {
            return Err(ApiError::conflict(
                "SecurityGroupRuleExists",
                format!(
                    "Security group rule already exists. Rule id is {}.",
                    existing["id"].as_str().unwrap_or_default()
                ),
            ));
        }
    }
    insert_rule(&mut tx, &rule).await?;
    tx.commit().await?;
    Ok(created(SECURITY_GROUP_RULE, rule))
}

/// `GET /v2.0/security-group-rules`.
pub async fn list_rules(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let mut conn = read_conn(&state).await?;
    Ok(list_response(SECURITY_GROUP_RULE, list_visible(&mut conn, SECURITY_GROUP_RULE, &caller).await?, &q))
}

/// `GET /v2.0/security-group-rules/{id}`.
pub async fn show_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut conn = read_conn(&state).await?;
    Ok(one(SECURITY_GROUP_RULE, fetch(&mut conn, SECURITY_GROUP_RULE, &caller, &id).await?))
}

/// `DELETE /v2.0/security-group-rules/{id}`.
pub async fn delete_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut tx = state.store.begin_write().await?;
    let rule = fetch_for_write(&mut tx, SECURITY_GROUP_RULE, &caller, &id).await?;
    tx.delete("security_group_rules", "security_group_rule", &rule).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
