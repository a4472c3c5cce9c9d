//! The gRPC API (`proto/netapi.proto`, package `tenet.netapi.v1`) for platform services:
//!
//! - [`Registry`] (`PortRegistry`): compute and storage nodes register the ports they plug
//!   into a host bridge, and move bindings for migration;
//! - [`Feed`] (`StateFeed`): the controller's snapshot-then-changes stream of the desired state.
//!
//! Every call carries a Keystone token in the `x-auth-token` metadata; its user must hold
//! `admin` or `service` on the token's project ([`authorize`]).

// tonic's service traits return `Status` by value; helpers returning it follow suit.
#![allow(clippy::result_large_err)]

mod feed;
mod registry;

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::metadata::MetadataMap;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Status};

pub use feed::Feed;
pub use registry::Registry;

use crate::auth::{resolve_token, Caller};
use crate::error::ApiError;
use crate::store::{Store, StoreError};

/// The generated messages, servers and clients.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("tenet.netapi.v1");
}

/// The metadata key carrying the Keystone token.
pub const TOKEN_METADATA: &str = "x-auth-token";

/// Resolves the call's token into its caller: UNAUTHENTICATED without a valid token,
/// PERMISSION_DENIED unless the caller holds `admin` or `service`.
pub async fn authorize(store: &Store, metadata: &MetadataMap) -> Result<Caller, Status> {
    let Some(token) = metadata.get(TOKEN_METADATA) else {
        return Err(Status::unauthenticated("a Keystone token is required in the x-auth-token metadata"));
    };
    let token = token.to_str().map_err(|_| Status::unauthenticated("the x-auth-token metadata is not ASCII"))?;
    let caller = resolve_token(store, token).await.map_err(status_of)?;
    if !caller.is_service_or_admin() {
        tracing::info!(user = %caller.user_name, project = %caller.project_id, role = caller.role.name(), "gRPC call refused");
        return Err(Status::permission_denied("the admin or service role is required"));
    }
    Ok(caller)
}

/// The gRPC status answering an API error.
pub fn status_of(e: ApiError) -> Status {
    let code = match e.status.as_u16() {
        400 | 422 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        409 => match e.kind {
            "MacAddressInUse" | "IpAddressAlreadyAllocated" | "PortBindingAlreadyExists" | "Conflict" => {
                Code::AlreadyExists
            }
            _ => Code::FailedPrecondition,
        },
        503 => Code::Unavailable,
        _ => Code::Internal,
    };
    Status::new(code, format!("{}: {}", e.kind, e.message))
}

/// The gRPC status answering a store error.
pub fn store_status(e: StoreError) -> Status {
    status_of(ApiError::from(e))
}

/// Serves `PortRegistry` and `StateFeed` on `listener` until `stop` turns true (open
/// `WatchState` streams end then too).
pub async fn serve_grpc(
    listener: TcpListener,
    store: Store,
    stop: watch::Receiver<bool>,
) -> Result<(), tonic::transport::Error> {
    let registry = pb::port_registry_server::PortRegistryServer::new(Registry::new(store.clone()));
    let feed = pb::state_feed_server::StateFeedServer::new(Feed::new(store, stop.clone()));
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(registry)
        .add_service(feed)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), stopped(stop))
        .await
}

/// Completes when `stop` turns true (or its sender is gone).
pub async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
