//! Identity: the Keystone v3 subset the OpenStack clients need.
//!
//! One domain (`default`, named `Default`), projects, users with argon2-hashed
//! passwords, the roles reader/member/admin assigned per project, password and
//! token authentication issuing expiring tokens with a service catalog, and EC2
//! credentials.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

use crate::auth::{resolve_token, KeystoneCaller, Role};
use crate::error::{ApiError, ApiResult};
use crate::json::parse_json;
use crate::store::{get_body, iso8601, list_bodies, now_unix, Store, StoreError, WriteTx};
use crate::AppState;

/// The only domain.
pub const DOMAIN_ID: &str = "default";
/// The only domain's name.
pub const DOMAIN_NAME: &str = "Default";

/// Hashes a password with argon2 and a random salt.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes()).map_err(ApiError::internal)?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(ApiError::internal)
}

/// True when `password` matches the stored argon2 `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok()).unwrap_or(false)
}

/// The project named `project_id`'s name and the highest role `user_id` holds on it.
pub async fn project_role(
    store: &Store,
    user_id: &str,
    project_id: &str,
) -> Result<Option<(String, Role)>, StoreError> {
    let rows = sqlx::query(
        "SELECT p.name, r.name FROM role_assignments a JOIN roles r ON r.id = a.role_id \
         JOIN projects p ON p.id = a.project_id WHERE a.user_id = $1 AND a.project_id = $2",
    )
    .bind(user_id.to_string())
    .bind(project_id.to_string())
    .fetch_all(store.pool())
    .await?;
    let mut best: Option<(String, Role)> = None;
    for row in rows {
        let name: String = row.try_get(0)?;
        let role_name: String = row.try_get(1)?;
        if let Some(role) = Role::from_name(&role_name) {
            if best.as_ref().map_or(true, |(_, r)| role > *r) {
                best = Some((name, role));
            }
        }
    }
    Ok(best)
}

fn project_body(id: &str, name: &str, description: &str) -> Value {
    json!({
        "id": id, "name": name, "description": description, "domain_id": DOMAIN_ID, "enabled": true,
        "parent_id": DOMAIN_ID, "is_domain": false, "tags": [], "options": {}, "project_id": id,
    })
}

/// Creates a project in `tx`.
pub async fn create_project(tx: &mut WriteTx, name: &str, description: &str) -> Result<Value, StoreError> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let body = project_body(&id, name, description);
    tx.insert("projects", "project", &body, &[]).await?;
    Ok(body)
}

/// Creates a user in `tx` (the password already hashed).
pub async fn create_user(
    tx: &mut WriteTx,
    name: &str,
    password_hash: &str,
    default_project_id: Option<&str>,
) -> Result<Value, StoreError> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut body = json!({
        "id": id, "name": name, "domain_id": DOMAIN_ID, "enabled": true, "password_expires_at": null, "options": {},
    });
    if let Some(p) = default_project_id {
        body["default_project_id"] = json!(p);
    }
    // The change log carries the user's project as its owner, when it has one.
    let mut logged = body.clone();
    logged["project_id"] = json!(default_project_id.unwrap_or(""));
    sqlx::query("INSERT INTO users (id, name, password_hash, rev, body) VALUES ($1, $2, $3, $4, $5)")
        .bind(id.clone())
        .bind(name.to_string())
        .bind(password_hash.to_string())
        .bind(tx.revision())
        .bind(body.to_string())
        .execute(&mut **tx)
        .await?;
    tx.record("user", "put", &id, default_project_id.unwrap_or(""), &logged).await?;
    Ok(body)
}

/// Grants `role` on `project_id` to `user_id` (idempotent).
pub async fn assign_role(tx: &mut WriteTx, project_id: &str, user_id: &str, role: Role) -> Result<(), StoreError> {
    let exists = sqlx::query("SELECT 1 FROM role_assignments WHERE project_id = $1 AND user_id = $2 AND role_id = $3")
        .bind(project_id.to_string())
        .bind(user_id.to_string())
        .bind(role.name())
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    if !exists {
        sqlx::query("INSERT INTO role_assignments (project_id, user_id, role_id) VALUES ($1, $2, $3)")
            .bind(project_id.to_string())
            .bind(user_id.to_string())
            .bind(role.name())
            .execute(&mut **tx)
            .await?;
        let body = json!({"project_id": project_id, "user_id": user_id, "role_id": role.name()});
        tx.record("role_assignment", "put", &format!("{project_id}:{user_id}:{}", role.name()), project_id, &body)
            .await?;
    }
    Ok(())
}

/// The id of the row of `table` named `name`.
async fn id_by_name(conn: &mut AnyConnection, table: &'static str, name: &str) -> Result<Option<String>, StoreError> {
    let sql = format!("SELECT id FROM {table} WHERE name = $1");
    Ok(sqlx::query(&sql).bind(name.to_string()).fetch_optional(conn).await?.map(|r| r.try_get(0)).transpose()?)
}

/// What `bootstrap` made.
#[derive(Clone, Debug)]
pub struct Bootstrapped {
    /// The admin user's id.
    pub user_id: String,
    /// The admin project's id.
    pub project_id: String,
}

/// Creates (or, when present, re-keys) the admin user and the admin project, and makes
/// the user admin of it. Idempotent.
pub async fn bootstrap(store: &Store, user: &str, project: &str, password: &str) -> Result<Bootstrapped, ApiError> {
    let hash = hash_password(password)?;
    let mut tx = store.begin_write().await?;
    let project_id = match id_by_name(&mut tx, "projects", project).await? {
        Some(id) => id,
        None => create_project(&mut tx, project, "Bootstrap project for initializing the cloud.").await?["id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    };
    let user_id = match id_by_name(&mut tx, "users", user).await? {
        Some(id) => {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(hash)
                .bind(id.clone())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
            id
        }
        None => {
            create_user(&mut tx, user, &hash, Some(&project_id)).await?["id"].as_str().unwrap_or_default().to_string()
        }
    };
    assign_role(&mut tx, &project_id, &user_id, Role::Admin).await?;
    tx.commit().await?;
    tracing::info!(user, project, user_id, project_id, "bootstrapped admin");
    Ok(Bootstrapped { user_id, project_id })
}

/// The openrc text for `user` in `project` against `auth_url` (e.g. `http://127.0.0.1:9696/v3`).
pub fn openrc(auth_url: &str, user: &str, password: &str, project: &str, region: &str) -> String {
    let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    format!(
        "export OS_AUTH_URL={}\nexport OS_USERNAME={}\nexport OS_PASSWORD={}\nexport OS_PROJECT_NAME={}\n\
         export OS_USER_DOMAIN_NAME=Default\nexport OS_PROJECT_DOMAIN_NAME=Default\nexport OS_REGION_NAME={}\n\
         export OS_IDENTITY_API_VERSION=3\nexport OS_INTERFACE=public\n",
        q(auth_url),
        q(user),
        q(password),
        q(project),
        q(region)
    )
}

// ---------------------------------------------------------------------------------------------
// HTTP handlers.

fn ks<T>(r: ApiResult<T>) -> ApiResult<T> {
    r.map_err(ApiError::keystone)
}

fn domain() -> Value {
    json!({"id": DOMAIN_ID, "name": DOMAIN_NAME})
}

fn version_doc(state: &AppState) -> Value {
    json!({
        "id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{}/v3/", state.config.public_url)}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    })
}

/// `GET /v3`: version discovery.
pub async fn get_v3(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "version": version_doc(&state) }))
}

/// `GET /`: the identity versions.
pub async fn get_versions(State(state): State<AppState>) -> Response {
    (StatusCode::MULTIPLE_CHOICES, Json(json!({"versions": {"values": [version_doc(&state)]}}))).into_response()
}

/// The catalog: identity, network, compute and image, all in the configured region.
fn catalog(state: &AppState) -> Value {
    let c = &state.config;
    let entry = |kind: &str, name: &str, url: &str| {
        let endpoints: Vec<Value> = ["public", "internal", "admin"]
            .iter()
            .map(|iface| {
                json!({"id": format!("{name}-{iface}"), "interface": iface, "region": c.region, "region_id": c.region, "url": url})
            })
            .collect();
        json!({"type": kind, "name": name, "id": name, "endpoints": endpoints})
    };
    json!([
        entry("identity", "keystone", &format!("{}/v3", c.public_url)),
        entry("network", "neutron", &format!("{}/network", c.public_url)),
        entry("compute", "nova", &c.compute_url),
        entry("image", "glance", &c.image_url),
    ])
}

/// The body of token `id`.
async fn token_body(
    state: &AppState,
    user_id: &str,
    project_id: Option<&str>,
    issued: i64,
    expires: i64,
) -> ApiResult<Value> {
    // The connection goes back before `project_role` takes one: never two at once (pool starvation).
    let mut conn = state.store.pool().acquire().await.map_err(StoreError::from)?;
    let user =
        get_body(&mut conn, "users", user_id).await?.ok_or_else(|| ApiError::unauthorized("The user is gone."))?;
    drop(conn);
    let stamp = |t: i64| iso8601(t).replace('Z', ".000000Z");
    let mut token = json!({
        "methods": ["password"],
        "user": {"id": user_id, "name": user["name"], "domain": domain(), "password_expires_at": null},
        "audit_ids": [uuid::Uuid::new_v4().simple().to_string()[..22].to_string()],
        "expires_at": stamp(expires),
        "issued_at": stamp(issued),
    });
    if let Some(project_id) = project_id {
        let (project_name, role) = project_role(&state.store, user_id, project_id)
            .await?
            .ok_or_else(|| ApiError::unauthorized("The user has no role on the requested project."))?;
        token["project"] = json!({"id": project_id, "name": project_name, "domain": domain()});
        token["is_domain"] = json!(false);
        token["roles"] = role.implied().iter().map(|r| json!({"id": r.name(), "name": r.name()})).collect();
        token["catalog"] = catalog(state);
    }
    Ok(json!({ "token": token }))
}

/// Returns the value of `v[key]` as a string, or a 400.
fn req_str<'a>(v: &'a Value, key: &str, what: &str) -> ApiResult<&'a str> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| ApiError::bad_request(format!("{what}: '{key}' is required")))
}

/// `POST /v3/auth/tokens`: password (or token) authentication, optionally project-scoped.
pub async fn issue_token(State(state): State<AppState>, body: Bytes) -> ApiResult<Response> {
    ks(issue_token_inner(&state, &body).await)
}

async fn issue_token_inner(state: &AppState, body: &Bytes) -> ApiResult<Response> {
    let req = parse_json(body)?;
    let auth = req.get("auth").ok_or_else(|| ApiError::bad_request("'auth' is a required property"))?;
    let identity = auth.get("identity").ok_or_else(|| ApiError::bad_request("'identity' is a required property"))?;
    let methods: Vec<&str> = identity
        .get("methods")
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let denied = || ApiError::unauthorized("The request you have made requires authentication.");
    // Each read takes a pooled connection only for itself: holding one across another read
    // (or the slow password check) would starve the pool under concurrent logins.
    let pool = state.store.pool();
    let user_id = if methods.contains(&"password") {
        let user =
            identity.pointer("/password/user").ok_or_else(|| ApiError::bad_request("password.user is required"))?;
        let password = req_str(user, "password", "password.user")?.to_string();
        let row = if let Some(id) = user.get("id").and_then(Value::as_str) {
            sqlx::query("SELECT id, password_hash FROM users WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(pool)
                .await
        } else {
            let name = req_str(user, "name", "password.user")?;
            sqlx::query("SELECT id, password_hash FROM users WHERE name = $1")
                .bind(name.to_string())
                .fetch_optional(pool)
                .await
        }
        .map_err(StoreError::from)?;
        let row = row.ok_or_else(denied)?;
        let id: String = row.try_get(0).map_err(StoreError::from)?;
        let hash: String = row.try_get(1).map_err(StoreError::from)?;
        let ok =
            tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await.map_err(ApiError::internal)?;
        if !ok {
            tracing::info!(user_id = %id, "password authentication failed");
            return Err(denied());
        }
        id
    } else if methods.contains(&"token") {
        let old = identity
            .pointer("/token/id")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request("token.id is required"))?;
        resolve_token(&state.store, old).await?.user_id
    } else {
        return Err(ApiError::unauthorized("Unsupported authentication method."));
    };

    let project_id = match auth.pointer("/scope/project") {
        None => None,
        Some(p) => {
            let id = if let Some(id) = p.get("id").and_then(Value::as_str) {
                id.to_string()
            } else {
                let name = req_str(p, "name", "scope.project")?;
                let mut conn = pool.acquire().await.map_err(StoreError::from)?;
                id_by_name(&mut conn, "projects", name).await?.ok_or_else(denied)?
            };
            if project_role(&state.store, &user_id, &id).await?.is_none() {
                return Err(denied());
            }
            Some(id)
        }
    };
    let issued = now_unix();
    let expires = issued + state.config.token_ttl_secs;
    let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    // Not an object change: no revision, no log; on SQLite it still queues with the writers.
    let mut tx = state.store.begin_plain_write().await?;
    sqlx::query("DELETE FROM tokens WHERE expires_at < $1")
        .bind(issued - 86_400)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    sqlx::query("INSERT INTO tokens (id, user_id, project_id, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(token.clone())
        .bind(user_id.clone())
        .bind(project_id.clone())
        .bind(issued)
        .bind(expires)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    tx.commit().await?;
    let body = token_body(state, &user_id, project_id.as_deref(), issued, expires).await?;
    tracing::info!(user_id, project_id = project_id.as_deref().unwrap_or(""), "token issued");
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    let header = HeaderValue::from_str(&token).map_err(ApiError::internal)?;
    resp.headers_mut().insert("x-subject-token", header);
    Ok(resp)
}

/// `GET /v3/auth/tokens`: validates the `X-Subject-Token`.
pub async fn validate_token(
    State(state): State<AppState>,
    _caller: KeystoneCaller,
    headers: HeaderMap,
) -> ApiResult<Response> {
    ks(async {
        let subject = headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::bad_request("X-Subject-Token is required"))?;
        let caller = resolve_token(&state.store, subject).await.map_err(|_| ApiError::not_found("Token", "subject"))?;
        let row = sqlx::query("SELECT issued_at, expires_at FROM tokens WHERE id = $1")
            .bind(subject.to_string())
            .fetch_one(state.store.pool())
            .await
            .map_err(StoreError::from)?;
        let issued: i64 = row.try_get(0).map_err(StoreError::from)?;
        let expires: i64 = row.try_get(1).map_err(StoreError::from)?;
        let project = (!caller.project_id.is_empty()).then_some(caller.project_id.as_str());
        let body = token_body(&state, &caller.user_id, project, issued, expires).await?;
        let mut resp = Json(body).into_response();
        if let Ok(v) = HeaderValue::from_str(subject) {
            resp.headers_mut().insert("x-subject-token", v);
        }
        Ok(resp)
    }
    .await)
}

/// `DELETE /v3/auth/tokens`: revokes the `X-Subject-Token`.
pub async fn revoke_token(
    State(state): State<AppState>,
    KeystoneCaller(caller): KeystoneCaller,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let subject = headers.get("x-subject-token").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let owner =
        resolve_token(&state.store, &subject).await.map_err(|_| ApiError::not_found("Token", "subject").keystone())?;
    if owner.user_id != caller.user_id && !caller.is_admin() {
        return Err(ApiError::forbidden("You may only revoke your own tokens.").keystone());
    }
    sqlx::query("DELETE FROM tokens WHERE id = $1")
        .bind(subject.clone())
        .execute(state.store.pool())
        .await
        .map_err(|e| ApiError::from(StoreError::from(e)).keystone())?;
    state.store.token_cache().forget(&subject);
    Ok(StatusCode::NO_CONTENT)
}

fn with_link(state: &AppState, mut body: Value, coll: &str) -> Value {
    let id = body["id"].as_str().unwrap_or_default().to_string();
    body["links"] = json!({"self": format!("{}/v3/{coll}/{id}", state.config.public_url)});
    if coll == "users" {
        if let Some(o) = body.as_object_mut() {
            o.remove("project_id");
        }
    }
    body
}

/// `GET /v3/domains/{id}` and `GET /v3/domains`: the one domain.
pub async fn get_domain(Path(id): Path<String>, _caller: KeystoneCaller) -> ApiResult<Json<Value>> {
    if id == DOMAIN_ID || id == DOMAIN_NAME {
        Ok(Json(
            json!({"domain": {"id": DOMAIN_ID, "name": DOMAIN_NAME, "enabled": true, "description": "The default domain", "tags": [], "options": {}}}),
        ))
    } else {
        Err(ApiError::not_found("Domain", &id).keystone())
    }
}

/// `GET /v3/domains`.
pub async fn list_domains(_caller: KeystoneCaller) -> Json<Value> {
    Json(
        json!({"domains": [{"id": DOMAIN_ID, "name": DOMAIN_NAME, "enabled": true, "description": "The default domain", "tags": [], "options": {}}]}),
    )
}

/// `POST /v3/projects` (admin).
pub async fn post_project(
    State(state): State<AppState>,
    KeystoneCaller(caller): KeystoneCaller,
    body: Bytes,
) -> ApiResult<Response> {
    ks(async {
        caller.require_admin()?;
        let req = parse_json(&body)?;
        let p = req.get("project").ok_or_else(|| ApiError::bad_request("'project' is a required property"))?;
        let name = req_str(p, "name", "project")?;
        let description = p.get("description").and_then(Value::as_str).unwrap_or_default();
        let mut tx = state.store.begin_write().await?;
        if id_by_name(&mut tx, "projects", name).await?.is_some() {
            return Err(ApiError::conflict("Conflict", format!("Conflict occurred attempting to store project - it is not permitted to have two projects with the same name in the same domain : {name}.")));
        }
        let project = create_project(&mut tx, name, description).await?;
        tx.commit().await?;
        tracing::info!(project = name, by = %caller.user_id, "project created");
        Ok((StatusCode::CREATED, Json(json!({"project": with_link(&state, project, "projects")}))).into_response())
    }
    .await)
}

/// `GET /v3/projects` (admin: all; others: their own).
pub async fn list_projects(
    State(state): State<AppState>,
    KeystoneCaller(caller): KeystoneCaller,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let own = caller.project_id.clone();
    list_visible(&state, "projects", &q, |p| caller.is_admin() || p["id"] == json!(own)).await
}

/// `GET /v3/projects/{id}`.
pub async fn get_project(
    State(state): State<AppState>,
    KeystoneCaller(caller): KeystoneCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let visible = caller.is_admin() || caller.project_id == id;
    get_visible(&state, ("projects", "project", "Project"), &id, visible).await
}

/// `DELETE /v3/projects/{id}` (admin).
pub async fn delete_project(
    State(state): State<AppState>,
    KeystoneCaller(caller): KeystoneCaller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    ks(async {
        caller.require_admin()?;
        let mut tx = state.store.begin_write().await?;
        let body = get_body(&mut tx, "projects", &id).await?.ok_or_else(|| ApiError::not_found("Project", &id))?;
        tx.delete("projects", "project", &body).await?;
        tx.commit().await?;
        state.store.token_cache().clear();
        Ok(StatusCode::NO_CONTENT)
    }
    .await)
}

/// `POST /v3/users` (admin).
pub async fn post_user(
    State(state): State<AppState>,
    KeystoneCaller(caller): KeystoneCaller,
    body: Bytes,
) -> ApiResult<Response> {
    ks(async {
        caller.require_admin()?;
        let req = parse_json(&body)?;
        let u = req.get("user").ok_or_else(|| ApiError::bad_request("'user' is a required property"))?;
        let name = req_str(u, "name", "user")?;
        let password = u.get("password").and_then(Value::as_str).unwrap_or_default().to_string();
        let default_project = u.get("default_project_id").and_then(Value::as_str);
        let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await.map_err(ApiError::internal)??;
        let mut tx = state.store.begin_write().await?;
        if id_by_name(&mut tx, "users", name).await?.is_some() {
            return Err(ApiError::conflict("Conflict", format!("Conflict occurred attempting to store user - Duplicate entry found with name {name} at domain ID default.")));
        }
        if let Some(p) = default_project {
            if get_body(&mut tx, "projects", p).await?.is_none() {
                return Err(ApiError::not_found("Project", p));
            }
        }
        let user = create_user(&mut tx, name, &hash, default_project).await?;
        tx.commit().await?;
        tracing::info!(user = name, by = %caller.user_id, "user created");
        Ok((StatusCode::CREATED, Json(json!({"user": with_link(&state, user, "users")}))).into_response())
    }
    .await)
}

/// `GET /v3/users` (admin: all; others: themselves).
pub async fn list_users(
    State(state): State<AppState>,
    KeystoneCaller(caller): KeystoneCaller,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let own = caller.user_id.clone();
    list_visible(&state, "users", &q, |u| caller.is_admin() || u["id"] == json!(own)).await
}

/// `GET /v3/users/{id}`.
pub async fn get_user(
    State(state): State<AppState>,
    KeystoneCaller(caller): KeystoneCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let visible = caller.is_admin() || caller.user_id == id;
    get_visible(&state, ("users", "user", "User"), &id, visible).await
}

/// Lists the objects of `table` the caller may see, filtered by `?name=`, with their links.
async fn list_visible(
    state: &AppState,
    table: &'static str,
    q: &HashMap<String, String>,
    visible: impl Fn(&Value) -> bool,
) -> ApiResult<Json<Value>> {
    ks(async {
        let mut conn = state.store.pool().acquire().await.map_err(StoreError::from)?;
        let items: Vec<Value> = list_bodies(&mut conn, table, None)
            .await?
            .into_iter()
            .filter(|v| visible(v))
            .filter(|v| q.get("name").map_or(true, |n| v["name"] == json!(n)))
            .map(|v| with_link(state, v, table))
            .collect();
        Ok(Json(json!({ table: items })))
    }
    .await)
}

/// One object of a table (`(table, wrapper key, name in errors)`) if the caller may see it;
/// otherwise the same 404 as for an object that does not exist.
async fn get_visible(
    state: &AppState,
    (table, key, label): (&'static str, &'static str, &'static str),
    id: &str,
    visible: bool,
) -> ApiResult<Json<Value>> {
    ks(async {
        let mut conn = state.store.pool().acquire().await.map_err(StoreError::from)?;
        match get_body(&mut conn, table, id).await? {
            Some(v) if visible => Ok(Json(json!({ key: with_link(state, v, table) }))),
            _ => Err(ApiError::not_found(label, id)),
        }
    }
    .await)
}

/// `GET /v3/roles`.
pub async fn list_roles(_caller: KeystoneCaller, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let roles: Vec<Value> = [Role::Admin, Role::Member, Role::Service, Role::Reader]
        .iter()
        .filter(|r| q.get("name").map_or(true, |n| n == r.name()))
        .map(|r| json!({"id": r.name(), "name": r.name(), "domain_id": null, "description": null, "options": {}}))
        .collect();
    Json(json!({ "roles": roles }))
}

/// `GET /v3/roles/{id}`.
pub async fn get_role(_caller: KeystoneCaller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let r = Role::from_name(&id).ok_or_else(|| ApiError::not_found("Role", &id).keystone())?;
    Ok(Json(json!({"role": {"id": r.name(), "name": r.name(), "domain_id": null, "description": null, "options": {}}})))
}

/// `PUT /v3/projects/{p}/users/{u}/roles/{r}` (admin).
pub async fn put_role_assignment(
    State(state): State<AppState>,
    KeystoneCaller(caller): KeystoneCaller,
    Path((project, user, role)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    ks(async {
        caller.require_admin()?;
        let role = Role::from_name(&role).ok_or_else(|| ApiError::not_found("Role", &role))?;
        let mut tx = state.store.begin_write().await?;
        get_body(&mut tx, "projects", &project).await?.ok_or_else(|| ApiError::not_found("Project", &project))?;
        get_body(&mut tx, "users", &user).await?.ok_or_else(|| ApiError::not_found("User", &user))?;
        assign_role(&mut tx, &project, &user, role).await?;
        tx.commit().await?;
        // A cached caller would keep its old role for a few seconds.
        state.store.token_cache().clear();
        tracing::info!(project, user, role = role.name(), "role assigned");
        Ok(StatusCode::NO_CONTENT)
    }
    .await)
}

/// `DELETE /v3/projects/{p}/users/{u}/roles/{r}` (admin).
pub async fn delete_role_assignment(
    State(state): State<AppState>,
    KeystoneCaller(caller): KeystoneCaller,
    Path((project, user, role)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    ks(async {
        caller.require_admin()?;
        let mut tx = state.store.begin_write().await?;
        let n = sqlx::query("DELETE FROM role_assignments WHERE project_id = $1 AND user_id = $2 AND role_id = $3")
            .bind(project.clone())
            .bind(user.clone())
            .bind(role.clone())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?
            .rows_affected();
        if n == 0 {
            return Err(ApiError::not_found("RoleAssignment", &format!("{project}/{user}/{role}")));
        }
        let body = json!({"project_id": project, "user_id": user, "role_id": role});
        tx.record("role_assignment", "delete", &format!("{project}:{user}:{role}"), &project, &body).await?;
        tx.commit().await?;
        state.store.token_cache().clear();
        Ok(StatusCode::NO_CONTENT)
    }
    .await)
}

fn ec2_body(state: &AppState, user_id: &str, project_id: &str, access: &str, secret: &str) -> Value {
    json!({
        "user_id": user_id, "tenant_id": project_id, "access": access, "secret": secret, "trust_id": null,
        "links": {"self": format!("{}/v3/users/{user_id}/credentials/OS-EC2/{access}", state.config.public_url)},
    })
}

/// `POST /v3/users/{uid}/credentials/OS-EC2` `{"tenant_id": ...}`.
pub async fn post_ec2(
    State(state): State<AppState>,
    KeystoneCaller(caller): KeystoneCaller,
    Path(user_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    ks(async {
        if caller.user_id != user_id && !caller.is_admin() {
            return Err(ApiError::forbidden("You may only create credentials for yourself."));
        }
        let req = parse_json(&body)?;
        let project_id = req_str(&req, "tenant_id", "credential")?.to_string();
        if project_role(&state.store, &user_id, &project_id).await?.is_none() {
            return Err(ApiError::unauthorized("The user has no role on that project."));
        }
        let access = uuid::Uuid::new_v4().simple().to_string();
        let secret = uuid::Uuid::new_v4().simple().to_string();
        let mut tx = state.store.begin_write().await?;
        sqlx::query("INSERT INTO ec2_credentials (access, secret, user_id, project_id) VALUES ($1, $2, $3, $4)")
            .bind(access.clone())
            .bind(secret.clone())
            .bind(user_id.clone())
            .bind(project_id.clone())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let logged = json!({"user_id": user_id, "tenant_id": project_id, "access": access});
        tx.record("ec2_credential", "put", &access, &project_id, &logged).await?;
        tx.commit().await?;
        Ok((
            StatusCode::CREATED,
            Json(json!({"credential": ec2_body(&state, &user_id, &project_id, &access, &secret)})),
        )
            .into_response())
    }
    .await)
}

/// `GET /v3/users/{uid}/credentials/OS-EC2`.
pub async fn list_ec2(
    State(state): State<AppState>,
    KeystoneCaller(caller): KeystoneCaller,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Value>> {
    ks(async {
        if caller.user_id != user_id && !caller.is_admin() {
            return Err(ApiError::forbidden("You may only list your own credentials."));
        }
        let rows =
            sqlx::query("SELECT access, secret, project_id FROM ec2_credentials WHERE user_id = $1 ORDER BY access")
                .bind(user_id.clone())
                .fetch_all(state.store.pool())
                .await
                .map_err(StoreError::from)?;
        let mut creds = Vec::new();
        for r in rows {
            let access: String = r.try_get(0).map_err(StoreError::from)?;
            let secret: String = r.try_get(1).map_err(StoreError::from)?;
            let project: String = r.try_get(2).map_err(StoreError::from)?;
            creds.push(ec2_body(&state, &user_id, &project, &access, &secret));
        }
        Ok(Json(json!({ "credentials": creds })))
    }
    .await)
}

/// `DELETE /v3/users/{uid}/credentials/OS-EC2/{access}`.
pub async fn delete_ec2(
    State(state): State<AppState>,
    KeystoneCaller(caller): KeystoneCaller,
    Path((user_id, access)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    ks(async {
        if caller.user_id != user_id && !caller.is_admin() {
            return Err(ApiError::not_found("Credential", &access));
        }
        let mut tx = state.store.begin_write().await?;
        let n = sqlx::query("DELETE FROM ec2_credentials WHERE access = $1 AND user_id = $2")
            .bind(access.clone())
            .bind(user_id.clone())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?
            .rows_affected();
        if n == 0 {
            return Err(ApiError::not_found("Credential", &access));
        }
        tx.record("ec2_credential", "delete", &access, "", &json!({"access": access, "user_id": user_id})).await?;
        tx.commit().await?;
        Ok(StatusCode::NO_CONTENT)
    }
    .await)
}
