//! The Glance v2 subset: images (create, list, show, delete) and their data (upload,
//! download), kept as one file per image under `--images`.

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http_body_util::BodyExt;
use md5::Md5;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha512};
use tenet_netapi::store::{iso8601, now_unix};
use tokio::io::AsyncWriteExt;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::store::Table;
use super::AppState;
use crate::model::Image;

const DISK_FORMATS: &[&str] = &["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"];
const CONTAINER_FORMATS: &[&str] = &["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"];
const VISIBILITIES: &[&str] = &["public", "private", "shared", "community"];
/// Fields a client may not set (Glance's read-only and reserved attributes).
const READ_ONLY: &[&str] = &[
    "status",
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
    "direct_url",
    "locations",
    "owner",
];

/// The routes under `/image/v2`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/images", get(list_images).post(create_image))
        .route("/images/{id}", get(get_image).delete(delete_image))
        .route("/images/{id}/file", get(download).put(upload).layer(DefaultBodyLimit::disable()))
        .route("/schemas/image", get(image_schema))
        .route("/schemas/images", get(images_schema))
}

/// `GET /image`: the versions document (300, as Glance).
pub async fn versions(State(state): State<AppState>) -> Response {
    let href = format!("{}/image/v2/", state.public_url);
    let version =
        |id: &str, status: &str| json!({"id": id, "status": status, "links": [{"rel": "self", "href": href}]});
    let body =
        json!({"versions": [version("v2.16", "CURRENT"), version("v2.15", "SUPPORTED"), version("v2.0", "SUPPORTED")]});
    (StatusCode::MULTIPLE_CHOICES, Json(body)).into_response()
}

fn g(e: ApiError) -> ApiError {
    e.glance()
}

fn image_body(i: &Image) -> Value {
    let mut b = Map::new();
    for (k, v) in &i.properties {
        b.insert(k.clone(), v.clone());
    }
    let fields = json!({
        "id": i.id,
        "name": i.name,
        "status": i.status,
        "visibility": i.visibility,
        "disk_format": i.disk_format,
        "container_format": i.container_format,
        "size": i.size,
        "virtual_size": null,
        "checksum": i.checksum,
        "os_hash_algo": i.os_hash_value.as_ref().map(|_| "sha512"),
        "os_hash_value": i.os_hash_value,
        "min_disk": i.min_disk,
        "min_ram": i.min_ram,
        "owner": i.owner,
        "protected": i.protected,
        "os_hidden": false,
        "tags": i.tags,
        "created_at": iso8601(i.created_at),
        "updated_at": iso8601(i.updated_at),
        "self": format!("/v2/images/{}", i.id),
        "file": format!("/v2/images/{}/file", i.id),
        "schema": "/v2/schemas/image",
    });
    if let Value::Object(f) = fields {
        b.extend(f);
    }
    Value::Object(b)
}

/// Whether the caller sees every image (admins, and agents fetching data).
fn sees_all(caller: &Caller) -> bool {
    caller.is_service_or_admin()
}

async fn visible_image(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Image> {
    let i: Option<Image> = state.store.get(Table::Images, id).await.map_err(|e| g(e.into()))?;
    i.filter(|i| i.visible_to(&caller.project_id, sees_all(caller))).ok_or_else(|| g(ApiError::not_found("Image", id)))
}

fn may_change(caller: &Caller, i: &Image) -> ApiResult<()> {
    if caller.is_admin() || i.owner == caller.project_id {
        Ok(())
    } else {
        Err(g(ApiError::forbidden(format!("You are not permitted to modify image {}.", i.id))))
    }
}

async fn list_images(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let all: Vec<Image> = state.store.list(Table::Images, None).await.map_err(|e| g(e.into()))?;
    let q = |k: &str| query.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let mut images: Vec<Image> =
        all.into_iter().filter(|i| i.visible_to(&caller.project_id, sees_all(&caller))).collect();
    if let Some(name) = q("name") {
        images.retain(|i| i.name.as_deref() == Some(name));
    }
    if let Some(id) = q("id") {
        let ids: Vec<&str> = id.strip_prefix("in:").map(|l| l.split(',').collect()).unwrap_or_else(|| vec![id]);
        images.retain(|i| ids.contains(&i.id.as_str()));
    }
    if let Some(v) = q("visibility").filter(|v| *v != "all") {
        images.retain(|i| i.visibility == v);
    }
    if let Some(s) = q("status") {
        images.retain(|i| i.status == s);
    }
    if let Some(o) = q("owner") {
        images.retain(|i| i.owner == o);
    }
    images.sort_by_key(|i| std::cmp::Reverse(i.created_at));
    if let Some(limit) = q("limit").and_then(|l| l.parse::<usize>().ok()) {
        images.truncate(limit);
    }
    let list: Vec<Value> = images.iter().map(image_body).collect();
    Ok(Json(json!({"images": list, "first": "/v2/images", "schema": "/v2/schemas/images"})))
}

async fn get_image(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let i = visible_image(&state, &caller, &id).await?;
    Ok(Json(image_body(&i)))
}

fn opt_str(v: &Value, key: &str, allowed: &[&str]) -> ApiResult<Option<String>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if allowed.is_empty() || allowed.contains(&s.as_str()) => Ok(Some(s.clone())),
        Some(other) => Err(g(ApiError::bad_request(format!(
            "Invalid value {other} for {key}{}",
            if allowed.is_empty() { String::new() } else { format!(": one of {}", allowed.join(", ")) }
        )))),
    }
}

fn opt_uint(v: &Value, key: &str) -> ApiResult<u64> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(x) => x.as_u64().or_else(|| x.as_str().and_then(|s| s.parse().ok())).ok_or_else(|| {
            g(ApiError::bad_request(format!("Invalid value for {key}: a non-negative integer is required")))
        }),
    }
}

async fn create_image(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult<Response> {
    let req: Value =
        serde_json::from_slice(&body).map_err(|e| g(ApiError::bad_request(format!("Malformed request body: {e}"))))?;
    let obj = req.as_object().ok_or_else(|| g(ApiError::bad_request("The request body must be a JSON object.")))?;
    for key in READ_ONLY {
        if obj.contains_key(*key) {
            return Err(g(ApiError::forbidden(format!("Attribute '{key}' is read-only."))));
        }
    }
    let name = opt_str(&req, "name", &[])?;
    if name.as_ref().is_some_and(|n| n.len() > 255) {
        return Err(g(ApiError::bad_request("Image name is too long (at most 255 characters).")));
    }
    let visibility = opt_str(&req, "visibility", VISIBILITIES)?.unwrap_or_else(|| "shared".into());
    if visibility == "public" && !caller.is_admin() {
        return Err(g(ApiError::forbidden("You are not authorized to complete publicize_image action.")));
    }
    let id = match opt_str(&req, "id", &[])? {
        Some(id) => uuid::Uuid::parse_str(&id)
            .map(|u| u.to_string())
            .map_err(|_| g(ApiError::bad_request("Invalid id: a UUID is required")))?,
        None => uuid::Uuid::new_v4().to_string(),
    };
    let tags = match req.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(t)) => t.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(_) => return Err(g(ApiError::bad_request("Invalid value for tags: a list of strings is required"))),
    };
    let known =
        ["id", "name", "visibility", "disk_format", "container_format", "min_disk", "min_ram", "protected", "tags"];
    let mut properties = Map::new();
    for (k, v) in obj {
        if !known.contains(&k.as_str()) {
            if !(v.is_string() || v.is_null()) {
                return Err(g(ApiError::bad_request(format!(
                    "Invalid value for {k}: additional properties must be strings"
                ))));
            }
            properties.insert(k.clone(), v.clone());
        }
    }
    let now = now_unix();
    let image = Image {
        id: id.clone(),
        name,
        owner: caller.project_id.clone(),
        visibility,
        status: "queued".into(),
        disk_format: opt_str(&req, "disk_format", DISK_FORMATS)?,
        container_format: opt_str(&req, "container_format", CONTAINER_FORMATS)?,
        size: None,
        checksum: None,
        os_hash_value: None,
        min_disk: opt_uint(&req, "min_disk")?,
        min_ram: opt_uint(&req, "min_ram")?,
        protected: req.get("protected").and_then(Value::as_bool).unwrap_or(false),
        tags,
        created_at: now,
        updated_at: now,
        properties,
    };
    let _w = state.write().await;
    if state.store.get::<Image>(Table::Images, &id).await.map_err(|e| g(e.into()))?.is_some() {
        return Err(g(ApiError::conflict(format!("An image with identifier {id} already exists"))));
    }
    state.store.put(Table::Images, &id, &image.owner, &image).await.map_err(|e| g(e.into()))?;
    tracing::info!(image = %id, "image created");
    Ok((StatusCode::CREATED, Json(image_body(&image))).into_response())
}

async fn delete_image(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let _w = state.write().await;
    let i = visible_image(&state, &caller, &id).await?;
    may_change(&caller, &i)?;
    if i.protected {
        return Err(g(ApiError::forbidden(format!("Image {id} is protected and cannot be deleted."))));
    }
    state.store.delete(Table::Images, &id).await.map_err(|e| g(e.into()))?;
    let _ = tokio::fs::remove_file(state.images.join(&id)).await;
    Ok(StatusCode::NO_CONTENT)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<StatusCode> {
    {
        let _w = state.write().await;
        let mut i = visible_image(&state, &caller, &id).await?;
        may_change(&caller, &i)?;
        if i.status != "queued" {
            return Err(g(ApiError::conflict(format!(
                "Image status transition from {} to saving is not allowed",
                i.status
            ))));
        }
        i.status = "saving".into();
        state.store.put(Table::Images, &id, &i.owner, &i).await.map_err(|e| g(e.into()))?;
    }
    let result = receive(&state, &id, body).await;
    let _w = state.write().await;
    let Some(mut i) = state.store.get::<Image>(Table::Images, &id).await.map_err(|e| g(e.into()))? else {
        let _ = tokio::fs::remove_file(state.images.join(&id)).await;
        return Err(g(ApiError::not_found("Image", &id)));
    };
    i.updated_at = now_unix();
    match result {
        Ok((size, md5, sha512)) => {
            i.status = "active".into();
            i.size = Some(size);
            i.checksum = Some(md5);
            i.os_hash_value = Some(sha512);
            state.store.put(Table::Images, &id, &i.owner, &i).await.map_err(|e| g(e.into()))?;
            tracing::info!(image = %id, size, "image data stored");
            Ok(StatusCode::NO_CONTENT)
        }
        Err(e) => {
            i.status = "queued".into();
            state.store.put(Table::Images, &id, &i.owner, &i).await.map_err(|e| g(e.into()))?;
            let _ = tokio::fs::remove_file(state.images.join(&id)).await;
            Err(e)
        }
    }
}

/// Streams the body to the image's file; returns (size, md5 hex, sha512 hex).
async fn receive(state: &AppState, id: &str, mut body: Body) -> ApiResult<(u64, String, String)> {
    let path = state.images.join(id);
    let partial = state.images.join(format!("{id}.partial"));
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(|e| g(ApiError::internal(format!("{}: {e}", partial.display()))))?;
    let (mut md5, mut sha, mut size) = (Md5::new(), Sha512::new(), 0u64);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| g(ApiError::bad_request(format!("Error reading the image data: {e}"))))?;
        if let Ok(data) = frame.into_data() {
            md5.update(&data);
            sha.update(&data);
            size += data.len() as u64;
            file.write_all(&data).await.map_err(|e| g(ApiError::internal(format!("{}: {e}", partial.display()))))?;
        }
    }
    file.flush().await.map_err(|e| g(ApiError::internal(e)))?;
    file.sync_all().await.map_err(|e| g(ApiError::internal(e)))?;
    drop(file);
    tokio::fs::rename(&partial, &path).await.map_err(|e| g(ApiError::internal(e)))?;
    Ok((size, hex(&md5.finalize()), hex(&sha.finalize())))
}

async fn download(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let i = visible_image(&state, &caller, &id).await?;
    if i.status != "active" {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let path = state.images.join(&id);
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| g(ApiError::internal(format!("image {id} data at {}: {e}", path.display()))))?;
    let stream = tokio_util::io::ReaderStream::new(file);
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/octet-stream"));
    if let Some(size) = i.size {
        h.insert(header::CONTENT_LENGTH, header::HeaderValue::from(size));
    }
    if let Some(sum) = i.checksum.as_deref().and_then(|c| header::HeaderValue::from_str(c).ok()) {
        h.insert("content-md5", sum);
    }
    Ok(resp)
}

fn schema_properties() -> Value {
    let s = |t: &str| json!({"type": t});
    json!({
        "id": s("string"), "name": {"type": ["null", "string"]}, "status": s("string"),
        "visibility": {"type": "string", "enum": VISIBILITIES}, "protected": s("boolean"),
        "checksum": {"type": ["null", "string"]}, "owner": {"type": ["null", "string"]},
        "size": {"type": ["null", "integer"]}, "virtual_size": {"type": ["null", "integer"]},
        "container_format": {"type": ["null", "string"], "enum": [null, "ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]},
        "disk_format": {"type": ["null", "string"], "enum": [null, "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"]},
        "created_at": s("string"), "updated_at": s("string"), "tags": {"type": "array", "items": s("string")},
        "min_ram": s("integer"), "min_disk": s("integer"), "os_hash_algo": {"type": ["null", "string"]},
        "os_hash_value": {"type": ["null", "string"]}, "os_hidden": s("boolean"),
        "self": s("string"), "file": s("string"), "schema": s("string"),
    })
}

async fn image_schema() -> Json<Value> {
    Json(json!({"name": "image", "properties": schema_properties(), "additionalProperties": {"type": "string"}}))
}

async fn images_schema() -> Json<Value> {
    Json(
        json!({"name": "images", "properties": {"images": {"type": "array", "items": {"name": "image", "properties": schema_properties()}}, "schema": {"type": "string"}, "first": {"type": "string"}, "next": {"type": "string"}}}),
    )
}
