//! Who is calling: user tokens validated with Keystone (netapi's `GET /v3/auth/tokens`,
//! authenticated with the service's own token), cached for a few seconds; and the
//! service's own token, for Keystone, Neutron lookups and the agents.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::client::Http;
use super::error::ApiError;
use super::AppState;

/// How long a validated token is trusted without asking Keystone again.
const CACHE_TTL: Duration = Duration::from_secs(5);

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: String,
    pub user_id: String,
    pub project_id: String,
    pub roles: Vec<String>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }

    /// Admin or a platform service (agents).
    pub fn is_service_or_admin(&self) -> bool {
        self.is_admin() || self.roles.iter().any(|r| r == "service")
    }

    pub fn require_admin(&self, rule: &str) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::policy(rule))
        }
    }
}

/// The service's credentials (an openrc's OS_* values).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub project: String,
}

/// Keystone, as this service uses it.
#[derive(Debug)]
pub struct Keystone {
    http: Http,
    /// netapi's base URL (Keystone at `/v3`, Neutron at `/v2.0`).
    base: String,
    creds: Option<Credentials>,
    service_token: tokio::sync::Mutex<Option<String>>,
    cache: Mutex<HashMap<String, (Instant, Option<Caller>)>>,
}

impl Keystone {
    pub fn new(http: Http, base: &str, creds: Option<Credentials>) -> Keystone {
        Keystone {
            http,
            base: base.trim_end_matches('/').to_string(),
            creds,
            service_token: tokio::sync::Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// netapi's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The service's token (issued once, again after `forget_service_token`).
    pub async fn service_token(&self) -> Result<String, ApiError> {
        let mut guard = self.service_token.lock().await;
        if let Some(t) = guard.as_ref() {
            return Ok(t.clone());
        }
        let c = self.creds.as_ref().ok_or_else(|| {
            ApiError::unavailable("no service credentials (set OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME)")
        })?;
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {"name": c.username, "password": c.password, "domain": {"name": "Default"}}}},
            "scope": {"project": {"name": c.project, "domain": {"name": "Default"}}}}});
        let url = format!("{}/v3/auth/tokens", self.base);
        let answer = self.http.send(Method::POST, &url, &[], Some(&body)).await.map_err(ApiError::unavailable)?;
        if answer.status != StatusCode::CREATED {
            return Err(ApiError::unavailable(format!("Keystone refused the service credentials: {}", answer.status)));
        }
        let token = answer.subject_token.ok_or_else(|| ApiError::unavailable("Keystone sent no X-Subject-Token"))?;
        *guard = Some(token.clone());
        Ok(token)
    }

    async fn forget_service_token(&self) {
        *self.service_token.lock().await = None;
    }

    /// Resolves a user's token (401 when Keystone does not know it).
    pub async fn validate(&self, token: &str) -> Result<Caller, ApiError> {
        if let Ok(cache) = self.cache.lock() {
            if let Some((at, caller)) = cache.get(token) {
                if at.elapsed() < CACHE_TTL {
                    return caller.clone().ok_or_else(ApiError::unauthorized);
                }
            }
        }
        let url = format!("{}/v3/auth/tokens", self.base);
        let mut answer = None;
        for _ in 0..2 {
            let service = self.service_token().await?;
            let a = self
                .http
                .send(Method::GET, &url, &[("x-auth-token", &service), ("x-subject-token", token)], None)
                .await
                .map_err(ApiError::unavailable)?;
            if a.status == StatusCode::UNAUTHORIZED {
                // Our own token expired or was revoked: once more with a new one.
                self.forget_service_token().await;
                answer = Some(a);
                continue;
            }
            answer = Some(a);
            break;
        }
        let answer = answer.ok_or_else(ApiError::unauthorized)?;
        let caller = if answer.status == StatusCode::OK { parse_token(token, &answer.body) } else { None };
        if answer.status.is_server_error() {
            return Err(ApiError::unavailable(format!("Keystone answered {}", answer.status)));
        }
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 10_000 {
                cache.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
            }
            cache.insert(token.to_string(), (Instant::now(), caller.clone()));
        }
        caller.ok_or_else(ApiError::unauthorized)
    }
}

fn parse_token(token: &str, body: &Value) -> Option<Caller> {
    let t = body.get("token")?;
    let roles = t
        .get("roles")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(|r| r.get("name").and_then(Value::as_str)).map(str::to_string).collect())
        .unwrap_or_default();
    Some(Caller {
        token: token.to_string(),
        user_id: t.get("user")?.get("id")?.as_str()?.to_string(),
        project_id: t.get("project").and_then(|p| p.get("id")).and_then(Value::as_str).unwrap_or_default().to_string(),
        roles,
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let glance = parts.uri.path().starts_with("/image");
        let token = parts.headers.get("x-auth-token").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let result =
            if token.is_empty() { Err(ApiError::unauthorized()) } else { state.keystone.validate(&token).await };
        result.map_err(|e| if glance { e.glance() } else { e })
    }
}
