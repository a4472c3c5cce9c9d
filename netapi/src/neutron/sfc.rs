//! networking-sfc resources, tenet's IPS steering policies: port pairs (an appliance's
//! ingress and egress ports), port pair groups, flow classifiers, and port chains that
//! send classified traffic through the groups in order.
//!
//! The neutronclient OSC plugin sends some values as strings (`"weight": "1"`,
//! `"symmetric": "false"`); they are coerced to their types.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use sqlx::{AnyConnection, Row};

use super::{
    apply_name_description, created, fetch, fetch_for_write, list_response, list_visible, new_id, one, read_conn,
    standard_attrs, touch, Kind, PORT,
};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{coerce_bool, coerce_int, opt_int, opt_str, opt_str_list, resource_body};
use crate::store::{StoreError, WriteTx};
use crate::AppState;

/// Port pairs.
pub const PORT_PAIR: Kind =
    Kind { table: "port_pairs", singular: "port_pair", plural: "port_pairs", label: "Port Pair" };
/// Port pair groups.
pub const PORT_PAIR_GROUP: Kind = Kind {
    table: "port_pair_groups",
    singular: "port_pair_group",
    plural: "port_pair_groups",
    label: "Port Pair Group",
};
/// Flow classifiers.
pub const FLOW_CLASSIFIER: Kind = Kind {
    table: "flow_classifiers",
    singular: "flow_classifier",
    plural: "flow_classifiers",
    label: "Flow Classifier",
};
/// Port chains.
pub const PORT_CHAIN: Kind =
    Kind { table: "port_chains", singular: "port_chain", plural: "port_chains", label: "Port Chain" };

const KINDS: [Kind; 4] = [PORT_PAIR, PORT_PAIR_GROUP, FLOW_CLASSIFIER, PORT_CHAIN];

/// The routes under `/v2.0/sfc`.
pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for k in KINDS {
        let coll = format!("/sfc/{}", k.plural);
        r = r
            .route(
                &coll,
                get(move |s: State<AppState>, c: Caller, q: Query<Vec<(String, String)>>| list(s, c, q, k))
                    .post(move |s: State<AppState>, c: Caller, b: Bytes| create(s, c, b, k)),
            )
            .route(
                &format!("{coll}/{{id}}"),
                get(move |s: State<AppState>, c: Caller, p: Path<String>| show(s, c, p, k))
                    .put(move |s: State<AppState>, c: Caller, p: Path<String>, b: Bytes| update(s, c, p, b, k))
                    .delete(move |s: State<AppState>, c: Caller, p: Path<String>| delete(s, c, p, k)),
            );
    }
    r
}

fn create_fields(k: Kind) -> &'static [&'static str] {
    match k.table {
        "port_pairs" => {
            &["name", "description", "ingress", "egress", "service_function_parameters", "project_id", "tenant_id"]
        }
        "port_pair_groups" => &[
            "name",
            "description",
            "port_pairs",
            "port_pair_group_parameters",
            "tap_enabled",
            "project_id",
            "tenant_id",
        ],
        "flow_classifiers" => &[
            "name",
            "description",
            "ethertype",
            "protocol",
            "source_port_range_min",
            "source_port_range_max",
            "destination_port_range_min",
            "destination_port_range_max",
            "source_ip_prefix",
            "destination_ip_prefix",
            "logical_source_port",
            "logical_destination_port",
            "l7_parameters",
            "project_id",
            "tenant_id",
        ],
        _ => &[
            "name",
            "description",
            "port_pair_groups",
            "flow_classifiers",
            "chain_parameters",
            "chain_id",
            "project_id",
            "tenant_id",
        ],
    }
}

fn update_fields(k: Kind) -> &'static [&'static str] {
    match k.table {
        "port_pair_groups" => &["name", "description", "port_pairs"],
        "port_chains" => &["name", "description", "port_pair_groups", "flow_classifiers"],
        _ => &["name", "description"],
    }
}

/// The sfc object naming `target_id` (a port, port pair, group or classifier), if any.
pub async fn referenced_by(conn: &mut AnyConnection, target_id: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT owner_id FROM sfc_references WHERE target_id = $1")
        .bind(target_id.to_string())
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

async fn set_references(tx: &mut WriteTx, owner: &str, refs: &[(&str, String)]) -> ApiResult<()> {
    sqlx::query("DELETE FROM sfc_references WHERE owner_id = $1")
        .bind(owner.to_string())
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from)?;
    for (kind, id) in refs {
        sqlx::query("INSERT INTO sfc_references (owner_id, target_kind, target_id) VALUES ($1, $2, $3)")
            .bind(owner.to_string())
            .bind(kind.to_string())
            .bind(id.clone())
            .execute(&mut **tx)
            .await
            .map_err(StoreError::from)?;
    }
    Ok(())
}

/// Checks that each of `ids` is a visible `kind` not already used by another owner.
async fn members(
    tx: &mut WriteTx,
    caller: &Caller,
    kind: Kind,
    ids: &[String],
    owner: &str,
    in_use: &'static str,
) -> ApiResult<Vec<String>> {
    let mut out = Vec::new();
    for id in ids {
        fetch(tx, kind, caller, id).await?;
        if let Some(other) = referenced_by(tx, id).await?.filter(|o| o != owner) {
            return Err(ApiError::conflict(in_use, format!("{} {id} is already in use by {other}.", kind.label)));
        }
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    Ok(out)
}

fn port_range(obj: &Map<String, Value>, side: &str) -> ApiResult<(Option<i64>, Option<i64>)> {
    let lo = opt_int(obj, &format!("{side}_port_range_min"))?;
    let hi = opt_int(obj, &format!("{side}_port_range_max"))?;
    for v in [lo, hi].into_iter().flatten() {
        if !(0..=65535).contains(&v) {
            return Err(ApiError::invalid_input(format!("{side} port {v} is out of range 0..65535")));
        }
    }
    if let (Some(l), Some(h)) = (lo, hi) {
        if l > h {
            return Err(ApiError::invalid_input(format!(
                "{side}_port_range_min {l} is greater than {side}_port_range_max {h}"
            )));
        }
    }
    Ok((lo, hi))
}

fn prefix(obj: &Map<String, Value>, key: &str) -> ApiResult<Option<String>> {
    opt_str(obj, key)?
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|n| n.to_string())
                .map_err(|_| ApiError::invalid_input(format!("'{p}' is not a valid IP prefix for {key}")))
        })
        .transpose()
}

/// The next free small integer of `field` (group_id, chain_id) in `kind`.
async fn next_number(tx: &mut WriteTx, kind: Kind, field: &str) -> ApiResult<i64> {
    let all = crate::store::list_bodies(tx, kind.table, None).await?;
    Ok(all.iter().filter_map(|b| b[field].as_i64()).max().unwrap_or(0) + 1)
}

/// Fills the resource-specific attributes of a new object; returns what it references.
async fn build(
    tx: &mut WriteTx,
    caller: &Caller,
    k: Kind,
    id: &str,
    obj: &Map<String, Value>,
    b: &mut Map<String, Value>,
) -> ApiResult<Vec<(&'static str, String)>> {
    let mut refs = Vec::new();
    match k.table {
        "port_pairs" => {
            for side in ["ingress", "egress"] {
                let pid = opt_str(obj, side)?.ok_or_else(|| ApiError::bad_request(format!("{side} is required")))?;
                fetch(tx, PORT, caller, &pid).await?;
                b.insert(side.into(), json!(pid));
                refs.push(("port", pid));
            }
            let sfp = obj.get("service_function_parameters").and_then(Value::as_object).cloned().unwrap_or_default();
            let correlation = match sfp.get("correlation") {
                None | Some(Value::Null) => Value::Null,
                Some(Value::String(s)) if s == "None" => Value::Null,
                Some(Value::String(s)) if s == "mpls" || s == "nsh" => json!(s),
                Some(v) => {
                    return Err(ApiError::invalid_input(format!("correlation {v} is not one of None, mpls, nsh")))
                }
            };
            let weight = match sfp.get("weight") {
                None | Some(Value::Null) => 1,
                Some(v) => coerce_int(v)
                    .filter(|w| *w >= 1)
                    .ok_or_else(|| ApiError::invalid_input(format!("weight {v} is not a positive integer")))?,
            };
            b.insert("service_function_parameters".into(), json!({"correlation": correlation, "weight": weight}));
        }
        "port_pair_groups" => {
            let pps = opt_str_list(obj, "port_pairs")?.unwrap_or_default();
            let pps = members(tx, caller, PORT_PAIR, &pps, id, "PortPairInUse").await?;
            refs.extend(pps.iter().map(|p| ("port_pair", p.clone())));
            b.insert("port_pairs".into(), json!(pps));
            let params = obj.get("port_pair_group_parameters").and_then(Value::as_object).cloned().unwrap_or_default();
            let lb = params.get("lb_fields").cloned().filter(|v| v.is_array()).unwrap_or(json!([]));
            let mapping = params
                .get("ppg_n_tuple_mapping")
                .cloned()
                .filter(|v| v.is_object())
                .unwrap_or(json!({"ingress_n_tuple": {}, "egress_n_tuple": {}}));
            b.insert("port_pair_group_parameters".into(), json!({"lb_fields": lb, "ppg_n_tuple_mapping": mapping}));
            let tap = match obj.get("tap_enabled") {
                None | Some(Value::Null) => false,
                Some(v) => coerce_bool(v)
                    .ok_or_else(|| ApiError::invalid_input(format!("tap_enabled {v} is not a boolean")))?,
            };
            b.insert("tap_enabled".into(), json!(tap));
            b.insert("group_id".into(), json!(next_number(tx, k, "group_id").await?));
        }
        "flow_classifiers" => {
            let ethertype = match opt_str(obj, "ethertype")?.as_deref().map(str::to_ascii_lowercase).as_deref() {
                None | Some("ipv4") => "IPv4",
                Some("ipv6") => "IPv6",
                Some(other) => return Err(ApiError::invalid_input(format!("ethertype {other} is not IPv4 or IPv6"))),
            };
            b.insert("ethertype".into(), json!(ethertype));
            let protocol = opt_str(obj, "protocol")?.map(|p| p.to_ascii_lowercase());
            if let Some(p) = &protocol {
                if !["tcp", "udp", "icmp", "icmpv6"].contains(&p.as_str()) && p.parse::<u8>().is_err() {
                    return Err(ApiError::invalid_input(format!("protocol {p} is not supported")));
                }
            }
            b.insert("protocol".into(), json!(protocol));
            for side in ["source", "destination"] {
                let (lo, hi) = port_range(obj, side)?;
                if (lo.is_some() || hi.is_some()) && !matches!(protocol.as_deref(), Some("tcp" | "udp" | "6" | "17")) {
                    return Err(ApiError::invalid_input("port ranges need protocol tcp or udp"));
                }
                b.insert(format!("{side}_port_range_min"), json!(lo));
                b.insert(format!("{side}_port_range_max"), json!(hi));
                b.insert(format!("{side}_ip_prefix"), json!(prefix(obj, &format!("{side}_ip_prefix"))?));
                let key = format!("logical_{side}_port");
                let port = opt_str(obj, &key)?;
                if let Some(pid) = &port {
                    fetch(tx, PORT, caller, pid).await?;
                    refs.push(("port", pid.clone()));
                }
                b.insert(key, json!(port));
            }
            let l7 = obj.get("l7_parameters").cloned().filter(|v| v.is_object()).unwrap_or(json!({}));
            b.insert("l7_parameters".into(), l7);
        }
        _ => {
            let groups = opt_str_list(obj, "port_pair_groups")?.unwrap_or_default();
            if groups.is_empty() {
                return Err(ApiError::bad_request("port_pair_groups must name at least one port pair group"));
            }
            let groups = members(tx, caller, PORT_PAIR_GROUP, &groups, id, "PortPairGroupInUse").await?;
            let fcs = opt_str_list(obj, "flow_classifiers")?.unwrap_or_default();
            let fcs = members(tx, caller, FLOW_CLASSIFIER, &fcs, id, "FlowClassifierInUse").await?;
            refs.extend(groups.iter().map(|g| ("port_pair_group", g.clone())));
            refs.extend(fcs.iter().map(|f| ("flow_classifier", f.clone())));
            b.insert("port_pair_groups".into(), json!(groups));
            b.insert("flow_classifiers".into(), json!(fcs));
            let params = obj.get("chain_parameters").and_then(Value::as_object).cloned().unwrap_or_default();
            let correlation = match params.get("correlation") {
                None | Some(Value::Null) => "mpls".to_string(),
                Some(Value::String(s)) if s == "mpls" || s == "nsh" => s.clone(),
                Some(v) => return Err(ApiError::invalid_input(format!("correlation {v} is not mpls or nsh"))),
            };
            let symmetric = match params.get("symmetric") {
                None | Some(Value::Null) => false,
                Some(v) => {
                    coerce_bool(v).ok_or_else(|| ApiError::invalid_input(format!("symmetric {v} is not a boolean")))?
                }
            };
            // tenet's extension: what the chain does when a group has no live instance.
            let fail_mode = match params.get("fail_mode") {
                None | Some(Value::Null) => "closed".to_string(),
                Some(Value::String(s)) if s == "open" || s == "closed" => s.clone(),
                Some(v) => return Err(ApiError::invalid_input(format!("fail_mode {v} is not open or closed"))),
            };
            b.insert(
                "chain_parameters".into(),
                json!({"correlation": correlation, "symmetric": symmetric, "fail_mode": fail_mode}),
            );
            let chain_id = match opt_int(obj, "chain_id")? {
                Some(c) if (1..=65535).contains(&c) => c,
                Some(c) => return Err(ApiError::invalid_input(format!("chain_id {c} is out of range 1..65535"))),
                None => next_number(tx, k, "chain_id").await?,
            };
            b.insert("chain_id".into(), json!(chain_id));
        }
    }
    Ok(refs)
}

async fn create(State(state): State<AppState>, caller: Caller, body: Bytes, k: Kind) -> ApiResult<Response> {
    caller.require_writer()?;
    let obj = resource_body(&body, k.singular, create_fields(k))?;
    let project = caller.owning_project(opt_str(&obj, "project_id")?.or(opt_str(&obj, "tenant_id")?).as_deref())?;
    let mut tx = state.store.begin_write().await?;
    let id = new_id();
    let mut b = standard_attrs(&tx, &id, &project, &obj);
    b.remove("tags");
    let refs = build(&mut tx, &caller, k, &id, &obj, &mut b).await?;
    let body = Value::Object(b);
    tx.insert(k.table, k.singular, &body, &[]).await?;
    set_references(&mut tx, &id, &refs).await?;
    tx.commit().await?;
    tracing::info!(kind = k.singular, id = %id, project = %project, "steering object created");
    Ok(created(k, body))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<Vec<(String, String)>>,
    k: Kind,
) -> ApiResult<Json<Value>> {
    let mut conn = read_conn(&state).await?;
    Ok(list_response(k, list_visible(&mut conn, k, &caller).await?, &q))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    k: Kind,
) -> ApiResult<Json<Value>> {
    let mut conn = read_conn(&state).await?;
    Ok(one(k, fetch(&mut conn, k, &caller, &id).await?))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
    k: Kind,
) -> ApiResult<Json<Value>> {
    let obj = resource_body(&body, k.singular, update_fields(k))?;
    let mut tx = state.store.begin_write().await?;
    let mut cur = fetch_for_write(&mut tx, k, &caller, &id).await?;
    apply_name_description(&mut cur, &obj)?;
    if k.table == "port_pair_groups" || k.table == "port_chains" {
        // Membership changes: rebuild the lists and the references from the merged view.
        let mut merged = cur.as_object().cloned().unwrap_or_default();
        for key in ["port_pairs", "port_pair_groups", "flow_classifiers"] {
            if let Some(v) = obj.get(key) {
                merged.insert(key.into(), if v.is_null() { json!([]) } else { v.clone() });
            }
        }
        let mut b = Map::new();
        let refs = build(&mut tx, &caller, k, &id, &merged, &mut b).await?;
        for key in ["port_pairs", "port_pair_groups", "flow_classifiers"] {
            if let Some(v) = b.remove(key) {
                cur[key] = v;
            }
        }
        set_references(&mut tx, &id, &refs).await?;
    }
    touch(&mut cur, &tx);
    tx.update(k.table, k.singular, &cur).await?;
    tx.commit().await?;
    Ok(one(k, cur))
}

async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    k: Kind,
) -> ApiResult<StatusCode> {
    let mut tx = state.store.begin_write().await?;
    let cur = fetch_for_write(&mut tx, k, &caller, &id).await?;
    if let Some(owner) = referenced_by(&mut tx, &id).await? {
        let kind = match k.table {
            "port_pairs" => "PortPairInUse",
            "port_pair_groups" => "PortPairGroupInUse",
            _ => "FlowClassifierInUse",
        };
        return Err(ApiError::conflict(kind, format!("{} {id} is in use by {owner}.", k.label)));
    }
    set_references(&mut tx, &id, &[]).await?;
    tx.delete(k.table, k.singular, &cur).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
