//! Who is calling: tokens resolved into a [`Caller`], and the authorization rules.
//!
//! Roles are ordered reader < member < admin (admin implies member implies reader).
//! `service` (compute, storage, the controller) sits beside that chain: through REST it
//! reads like a reader; it may use the gRPC API, which only it and admin may.
//! A member sees and changes only its project's objects; another project's object
//! is reported as missing (404), never as forbidden. A reader may only read. An
//! admin sees and changes everything.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sqlx::Row;

use crate::error::ApiError;
use crate::store::{now_unix, Store};
use crate::AppState;

/// A role, ordered by what it allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read only.
    Reader,
    /// A platform service: the gRPC API; through REST, read only.
    Service,
    /// Read and write the project's objects.
    Member,
    /// Everything, in every project.
    Admin,
}

impl Role {
    /// The role's name (also its id).
    pub fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Service => "service",
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    /// The role named `name`, if it is one of ours.
    pub fn from_name(name: &str) -> Option<Role> {
        match name {
            "reader" => Some(Role::Reader),
            "service" => Some(Role::Service),
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// This role and the roles it implies, highest first (`service` implies `reader` only,
    /// and nothing implies `service`).
    pub fn implied(self) -> Vec<Role> {
        if self == Role::Service {
            return vec![Role::Service, Role::Reader];
        }
        [Role::Admin, Role::Member, Role::Reader].into_iter().filter(|r| *r <= self).collect()
    }
}

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token's user.
    pub user_id: String,
    /// The user's name.
    pub user_name: String,
    /// The project the token is scoped to (empty for an unscoped token).
    pub project_id: String,
    /// The project's name.
    pub project_name: String,
    /// The highest role the user holds on the project.
    pub role: Role,
}

impl Caller {
    /// True for an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// True when the caller may see an object of `project_id`.
    pub fn can_see(&self, project_id: &str) -> bool {
        self.is_admin() || (!self.project_id.is_empty() && self.project_id == project_id)
    }

    /// Fails with 403 unless the caller may write (member or admin).
    pub fn require_writer(&self) -> Result<(), ApiError> {
        if self.role >= Role::Member && !self.project_id.is_empty() {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "rule:create_or_update_or_delete is disallowed by policy: the reader role cannot write",
            ))
        }
    }

    /// True when the caller may use the gRPC services (admin or service).
    pub fn is_service_or_admin(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Service)
    }

    /// Fails with 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("You are not authorized to perform the requested action: admin role required."))
        }
    }

    /// The project an object created by the caller belongs to: the caller's own, or
    /// the one named in the request (`project_id` or `tenant_id`), which only an admin may name.
    pub fn owning_project(&self, requested: Option<&str>) -> Result<String, ApiError> {
        match requested {
            Some(p) if p != self.project_id => {
                if self.is_admin() {
                    Ok(p.to_string())
                } else {
                    Err(ApiError::forbidden("Only an admin may create objects in another project."))
                }
            }
            _ => Ok(self.project_id.clone()),
        }
    }
}

/// How long a resolved token is trusted without asking the database again.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);
/// Past this many entries the cache starts over.
const TOKEN_CACHE_MAX: usize = 16_384;

/// Tokens resolved in the last few seconds, so that a client's burst of requests costs
/// two database reads per token, not per request. Revoking a token, or removing a role
/// assignment or a project, through this process takes effect at once; through another
/// replica sharing the database, within [`TOKEN_CACHE_TTL`] (5 s).
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Instant, Caller)>>,
}

impl TokenCache {
    fn get(&self, token: &str) -> Option<Caller> {
        let entries = self.entries.lock().ok()?;
        entries.get(token).filter(|(until, _)| Instant::now() < *until).map(|(_, c)| c.clone())
    }

    fn put(&self, token: &str, caller: &Caller, token_expires_at: i64) {
        // Whole seconds left, minus one for the clock's truncation.
        let left = u64::try_from(token_expires_at - now_unix() - 1).unwrap_or(0);
        let ttl = TOKEN_CACHE_TTL.min(Duration::from_secs(left));
        if ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= TOKEN_CACHE_MAX {
                entries.clear();
            }
            entries.insert(token.to_string(), (Instant::now() + ttl, caller.clone()));
        }
    }

    /// Forgets one token (revoked).
    pub fn forget(&self, token: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(token);
        }
    }

    /// Forgets every token (a role assignment or a project went away).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

/// Resolves a token into its caller: 401 when the token is unknown or expired, or
/// when the user no longer holds a role on the token's project. Answers from the
/// [`TokenCache`] when it can.
pub async fn resolve_token(store: &Store, token: &str) -> Result<Caller, ApiError> {
    if let Some(caller) = store.token_cache().get(token) {
        return Ok(caller);
    }
    let (caller, expires_at) = resolve_token_uncached(store, token).await?;
    store.token_cache().put(token, &caller, expires_at);
    Ok(caller)
}

async fn resolve_token_uncached(store: &Store, token: &str) -> Result<(Caller, i64), ApiError> {
    let row = sqlx::query(
        "SELECT t.user_id, u.name, t.project_id, t.expires_at FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1",
    )
    .bind(token.to_string())
    .fetch_optional(store.pool())
    .await
    .map_err(crate::store::StoreError::from)?;
    let Some(row) = row else {
        return Err(ApiError::unauthorized("The request you have made requires authentication."));
    };
    let expires_at: i64 = row.try_get(3).map_err(crate::store::StoreError::from)?;
    if expires_at <= now_unix() {
        tracing::debug!(expires_at, "expired token refused");
        return Err(ApiError::unauthorized("The token has expired."));
    }
    let user_id: String = row.try_get(0).map_err(crate::store::StoreError::from)?;
    let user_name: String = row.try_get(1).map_err(crate::store::StoreError::from)?;
    let project_id: Option<String> = row.try_get(2).map_err(crate::store::StoreError::from)?;
    let Some(project_id) = project_id else {
        let caller =
            Caller { user_id, user_name, project_id: String::new(), project_name: String::new(), role: Role::Reader };
        return Ok((caller, expires_at));
    };
    let (project_name, role) = crate::identity::project_role(store, &user_id, &project_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("The request you have made requires authentication."))?;
    Ok((Caller { user_id, user_name, project_id, project_name, role }, expires_at))
}

/// The `X-Auth-Token` header of a request.
fn token_of(parts: &Parts) -> Option<String> {
    parts.headers.get("x-auth-token").and_then(|v| v.to_str().ok()).map(str::to_string)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let token = token_of(parts).ok_or_else(|| ApiError::unauthorized("Authentication required"))?;
        resolve_token(&state.store, &token).await
    }
}

/// A [`Caller`] for the identity API, whose errors are Keystone-style.
#[derive(Clone, Debug)]
pub struct KeystoneCaller(pub Caller);

impl FromRequestParts<AppState> for KeystoneCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<KeystoneCaller, ApiError> {
        let token = token_of(parts)
            .ok_or_else(|| ApiError::unauthorized("The request you have made requires authentication.").keystone())?;
        resolve_token(&state.store, &token).await.map(KeystoneCaller).map_err(ApiError::keystone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_member_and_reader() {
        assert_eq!(Role::Admin.implied(), vec![Role::Admin, Role::Member, Role::Reader]);
        assert_eq!(Role::Reader.implied(), vec![Role::Reader]);
        assert_eq!(Role::Service.implied(), vec![Role::Service, Role::Reader]);
    }

    #[test]
    fn service_reads_but_does_not_write() {
        let c = Caller {
            user_id: "u".into(),
            user_name: "nova".into(),
            project_id: "svc".into(),
            project_name: "service".into(),
            role: Role::Service,
        };
        assert!(c.require_writer().is_err());
        assert!(c.is_service_or_admin());
        assert!(!c.is_admin());
    }

    #[test]
    fn member_sees_only_its_project() {
        let c = Caller {
            user_id: "u".into(),
            user_name: "alice".into(),
            project_id: "p1".into(),
            project_name: "demo".into(),
            role: Role::Member,
        };
        assert!(c.can_see("p1"));
        assert!(!c.can_see("p2"));
        assert!(c.require_writer().is_ok());
        assert!(c.owning_project(Some("p2")).is_err());
        let reader = Caller { role: Role::Reader, ..c };
        assert!(reader.require_writer().is_err());
    }
}
