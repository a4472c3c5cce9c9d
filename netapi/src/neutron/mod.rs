//! The Neutron v2.0 subset: networks, subnets (IPAM), ports and port bindings,
//! security groups and rules, networking-sfc resources and the extension list.
//!
//! Served under both `/network/v2.0` (the catalog's network endpoint is
//! `<public>/network`, and the SDK appends `/v2.0` itself) and `/v2.0`.

pub mod networks;
pub mod ports;
pub mod secgroups;
pub mod sfc;
pub mod subnets;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use sqlx::AnyConnection;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{matches_filters, select_fields};
use crate::store::{get_body, iso8601, list_bodies, StoreError, WriteTx};
use crate::AppState;

/// A Neutron resource type: its table and the names the API uses for it.
#[derive(Clone, Copy, Debug)]
pub struct Kind {
    /// SQL table.
    pub table: &'static str,
    /// Body key of one object (`network`).
    pub singular: &'static str,
    /// Body key of a list (`networks`).
    pub plural: &'static str,
    /// Name in messages (`Network`).
    pub label: &'static str,
}

/// Networks.
pub const NETWORK: Kind = Kind { table: "networks", singular: "network", plural: "networks", label: "Network" };
/// Subnets.
pub const SUBNET: Kind = Kind { table: "subnets", singular: "subnet", plural: "subnets", label: "Subnet" };
/// Ports.
pub const PORT: Kind = Kind { table: "ports", singular: "port", plural: "ports", label: "Port" };
/// Security groups.
pub const SECURITY_GROUP: Kind =
    Kind { table: "security_groups", singular: "security_group", plural: "security_groups", label: "Security group" };
/// Security group rules.
pub const SECURITY_GROUP_RULE: Kind = Kind {
    table: "security_group_rules",
    singular: "security_group_rule",
    plural: "security_group_rules",
    label: "Security group rule",
};

/// The routes of the Neutron API, relative to `/v2.0`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/extensions", get(list_extensions))
        .route("/extensions/{alias}", get(get_extension))
        .route("/networks", get(networks::list).post(networks::create))
        .route("/networks/{id}", get(networks::show).put(networks::update).delete(networks::delete))
        .route("/subnets", get(subnets::list).post(subnets::create))
        .route("/subnets/{id}", get(subnets::show).put(subnets::update).delete(subnets::delete))
        .route("/ports", get(ports::list).post(ports::create))
        .route("/ports/{id}", get(ports::show).put(ports::update).delete(ports::delete))
        .route("/ports/{id}/bindings", get(ports::list_bindings).post(ports::create_binding))
        .route("/ports/{id}/bindings/{host}", get(ports::show_binding).delete(ports::delete_binding))
        .route("/ports/{id}/bindings/{host}/activate", put(ports::activate_binding))
        .route("/security-groups", get(secgroups::list).post(secgroups::create))
        .route("/security-groups/{id}", get(secgroups::show).put(secgroups::update).delete(secgroups::delete))
        .route("/security-group-rules", get(secgroups::list_rules).post(secgroups::create_rule))
        .route("/security-group-rules/{id}", get(secgroups::show_rule).delete(secgroups::delete_rule))
        .merge(sfc::routes())
}

/// `GET /network` and `GET /network/`: the API versions.
pub async fn versions(State(state): State<AppState>) -> Json<Value> {
    let href = format!("{}/network/v2.0/", state.config.public_url);
    Json(json!({"versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": href}]}]}))
}

/// The extensions this server implements.
const EXTENSIONS: &[(&str, &str, &str)] = &[
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    ("binding-extended", "Port Bindings Extended", "Expose port bindings of a virtual port to external application"),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    ("security-group", "security-group", "The security groups extension."),
    ("port-security", "Port Security", "Provides port security"),
    ("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled."),
    ("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes"),
    (
        "standard-attr-revisions",
        "Resource revision numbers",
        "This extension will display the revision number of neutron resources.",
    ),
    (
        "standard-attr-timestamp",
        "Resource timestamps",
        "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.",
    ),
    ("sfc", "Service Function Chaining", "Service Function Chain extension."),
    ("flow_classifier", "Flow Classifier", "Flow Classifier Extension."),
];

fn extension_body(alias: &str, name: &str, description: &str) -> Value {
    json!({"alias": alias, "name": name, "description": description, "updated": "2019-01-01T00:00:00-00:00", "links": []})
}

/// `GET /v2.0/extensions`.
pub async fn list_extensions(_caller: Caller) -> Json<Value> {
    let exts: Vec<Value> = EXTENSIONS.iter().map(|(a, n, d)| extension_body(a, n, d)).collect();
    Json(json!({ "extensions": exts }))
}

/// `GET /v2.0/extensions/{alias}`.
pub async fn get_extension(
    _caller: Caller,
    axum::extract::Path(alias): axum::extract::Path<String>,
) -> ApiResult<Json<Value>> {
    EXTENSIONS
        .iter()
        .find(|(a, _, _)| *a == alias)
        .map(|(a, n, d)| Json(json!({"extension": extension_body(a, n, d)})))
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "ExtensionNotFound",
                format!("Extension with alias {alias} does not exist"),
            )
        })
}

/// The attributes every Neutron object has, for a new object written in `tx`.
pub fn standard_attrs(tx: &WriteTx, id: &str, project_id: &str, obj: &Map<String, Value>) -> Map<String, Value> {
    let now = iso8601(tx.now());
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("name".into(), json!(obj.get("name").and_then(Value::as_str).unwrap_or_default()));
    m.insert("description".into(), json!(obj.get("description").and_then(Value::as_str).unwrap_or_default()));
    m.insert("project_id".into(), json!(project_id));
    m.insert("tenant_id".into(), json!(project_id));
    m.insert("tags".into(), json!([]));
    m.insert("created_at".into(), json!(now));
    m.insert("updated_at".into(), json!(now));
    m.insert("revision_number".into(), json!(tx.revision()));
    m
}

/// Marks `body` as changed by `tx` (updated_at, revision_number).
pub fn touch(body: &mut Value, tx: &WriteTx) {
    body["updated_at"] = json!(iso8601(tx.now()));
    body["revision_number"] = json!(tx.revision());
}

/// Applies the `name` and `description` of an update request.
pub fn apply_name_description(body: &mut Value, obj: &Map<String, Value>) -> ApiResult<()> {
    for key in ["name", "description"] {
        if let Some(v) = crate::json::opt_str(obj, key)? {
            body[key] = json!(v);
        } else if obj.get(key).is_some_and(Value::is_null) {
            body[key] = json!("");
        }
    }
    Ok(())
}

/// The project owning a stored object.
pub fn project_of(body: &Value) -> &str {
    body.get("project_id").and_then(Value::as_str).unwrap_or_default()
}

/// True when the caller may read `body`: its project's, an admin, or a shared network.
pub fn visible(caller: &Caller, body: &Value) -> bool {
    caller.can_see(project_of(body)) || body.get("shared").and_then(Value::as_bool).unwrap_or(false)
}

/// The object `id` of `kind` as the caller may see it; 404 when it does not exist or is
/// another project's.
pub async fn fetch(conn: &mut AnyConnection, kind: Kind, caller: &Caller, id: &str) -> ApiResult<Value> {
    match get_body(conn, kind.table, id).await? {
        Some(body) if visible(caller, &body) => Ok(body),
        _ => Err(ApiError::not_found(kind.label, id)),
    }
}

/// Like [`fetch`], for a write: the caller must be a writer and own the object (403 for a
/// shared network of another project).
pub async fn fetch_for_write(conn: &mut AnyConnection, kind: Kind, caller: &Caller, id: &str) -> ApiResult<Value> {
    caller.require_writer()?;
    let body = fetch(conn, kind, caller, id).await?;
    if !caller.can_see(project_of(&body)) {
        return Err(ApiError::forbidden(format!("{} {id} belongs to another project", kind.label)));
    }
    Ok(body)
}

/// Every object of `kind` the caller may see, oldest first.
pub async fn list_visible(conn: &mut AnyConnection, kind: Kind, caller: &Caller) -> Result<Vec<Value>, StoreError> {
    let all = if caller.is_admin() {
        list_bodies(conn, kind.table, None).await?
    } else if kind.table == "networks" {
        list_bodies(conn, kind.table, None).await?.into_iter().filter(|b| visible(caller, b)).collect()
    } else {
        list_bodies(conn, kind.table, Some(("project_id", &caller.project_id))).await?
    };
    Ok(all)
}

/// A list response: filtered, with `fields` applied, under the plural key.
pub fn list_response(kind: Kind, items: Vec<Value>, query: &[(String, String)]) -> Json<Value> {
    let items: Vec<Value> =
        items.into_iter().filter(|i| matches_filters(i, query)).map(|i| select_fields(i, query)).collect();
    let mut m = Map::new();
    m.insert(kind.plural.to_string(), Value::Array(items));
    Json(Value::Object(m))
}

/// A one-object response under the singular key.
pub fn one(kind: Kind, body: Value) -> Json<Value> {
    let mut m = Map::new();
    m.insert(kind.singular.to_string(), body);
    Json(Value::Object(m))
}

/// A 201 response carrying the created object.
pub fn created(kind: Kind, body: Value) -> Response {
    (axum::http::StatusCode::CREATED, one(kind, body)).into_response()
}

/// A new object id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Acquires a read connection.
pub async fn read_conn(state: &AppState) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, StoreError> {
    Ok(state.store.pool().acquire().await?)
}
