//! The HTTP router (Keystone under `/v3`, Neutron under `/network/v2.0` and `/v2.0`) and
//! the server loop.

use std::future::Future;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use tokio::net::TcpListener;

use crate::error::ApiError;
use crate::{identity, neutron, AppState, Config, Store};

/// The whole API.
pub fn router(store: Store, config: Config) -> Router {
    let writer = store.clone();
    let state = AppState { store, config: Arc::new(config) };
    let keystone = Router::new()
        .route("/", get(identity::get_v3))
        .route("/auth/tokens", get(identity::validate_token).post(identity::issue_token).delete(identity::revoke_token))
        .route("/domains", get(identity::list_domains))
        .route("/domains/{id}", get(identity::get_domain))
        .route("/projects", get(identity::list_projects).post(identity::post_project))
        .route("/projects/{id}", get(identity::get_project).delete(identity::delete_project))
        .route(
            "/projects/{project}/users/{user}/roles/{role}",
            put(identity::put_role_assignment).delete(identity::delete_role_assignment),
        )
        .route("/users", get(identity::list_users).post(identity::post_user))
        .route("/users/{id}", get(identity::get_user))
        .route("/users/{id}/credentials/OS-EC2", get(identity::list_ec2).post(identity::post_ec2))
        .route("/users/{id}/credentials/OS-EC2/{access}", axum::routing::delete(identity::delete_ec2))
        .route("/roles", get(identity::list_roles))
        .route("/roles/{id}", get(identity::get_role));
    let network = neutron::routes();
    Router::new()
        .route("/", get(identity::get_versions))
        .nest("/v3", keystone)
        .route("/network", get(neutron::versions))
        .route("/network/", get(neutron::versions))
        .nest("/network/v2.0", network.clone())
        .nest("/v2.0", network)
        .fallback(|| async { ApiError::no_route() })
        .layer(middleware::from_fn(move |req: Request, next: Next| on_writer(writer.clone(), req, next)))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// Runs a Neutron write request (any method but GET, HEAD and OPTIONS) where the store runs
/// writes: on SQLite, its writer thread ([`crate::writer`]). Reads stay on the server's
/// runtime, and so do identity requests: they are rare, and their password hashing, in the
/// blocking pool, must not inherit the writer thread's CPU. (Where a request runs is only a
/// matter of speed: every SQLite write goes through the one writer connection anyway.)
async fn on_writer(store: Store, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req.uri().path().starts_with("/v3")
        || !store.has_writer_thread()
    {
        return next.run(req).await;
    }
    match store.on_writer(next.run(req)).await {
        Ok(resp) => resp,
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// Logs every request with its outcome.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    if status >= 500 {
        tracing::error!(%method, path, status, "request failed");
    } else {
        tracing::debug!(%method, path, status, "request");
    }
    resp.into_response()
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(store, config);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
