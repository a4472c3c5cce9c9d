//! Network API: identity (a Keystone v3 subset), networks, subnets with IPAM, ports and
//! port bindings, security groups and steering policies (networking-sfc), over REST that
//! the real `openstack` CLI speaks. The platform's source of truth.
//!
//! - [`store`]: the SQL store (SQLite or PostgreSQL, same code), the global revision and
//!   the change log every write transaction appends to.
//! - [`identity`]: projects, users, roles, tokens with a service catalog, EC2 credentials.
//! - [`auth`]: tokens to callers, and who may see and change what.
//! - [`neutron`]: the Neutron v2.0 resources.
//! - [`server`]: the HTTP router and the server loop.
//! - [`grpc`]: the gRPC services for platform services (`PortRegistry`, `StateFeed`).
//! - [`client`]: REST and gRPC clients for the services using netapi.
//! - [`check`]: the database consistency check (`tenet-netapi check`).
//! - [`writer`]: SQLite's single writer thread.

pub mod auth;
pub mod check;
pub mod client;
pub mod error;
pub mod grpc;
pub mod identity;
pub mod json;
pub mod neutron;
pub mod server;
pub mod store;
pub mod writer;

use std::sync::Arc;

pub use server::{router, serve};
pub use store::Store;

/// Settings of a running API server.
#[derive(Clone, Debug)]
pub struct Config {
    /// The URL clients reach this server at, without a trailing slash (`http://127.0.0.1:9696`).
    pub public_url: String,
    /// The region named in the catalog.
    pub region: String,
    /// How long a token lives, in seconds.
    pub token_ttl_secs: i64,
    /// The compute endpoint in the catalog.
    pub compute_url: String,
    /// The image endpoint in the catalog.
    pub image_url: String,
}

impl Config {
    /// Defaults for a server reachable at `public_url`: region `RegionOne`, one-hour
    /// tokens; compute and image at tenet-compute's default port (8774) on the same host:
    /// `http://HOST:8774/compute/v2.1` and `http://HOST:8774/image`.
    pub fn new(public_url: &str) -> Config {
        let public_url = public_url.trim_end_matches('/').to_string();
        let compute = compute_base(&public_url);
        Config {
            compute_url: format!("{compute}/compute/v2.1"),
            image_url: format!("{compute}/image"),
            public_url,
            region: "RegionOne".into(),
            token_ttl_secs: 3600,
        }
    }
}

/// `scheme://host:8774` for `scheme://host[:port][/path]` (tenet-compute's default port).
fn compute_base(public_url: &str) -> String {
    let (scheme, rest) = public_url.split_once("://").unwrap_or(("http", public_url));
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = match authority.rsplit_once(':') {
        // An IPv6 literal without a port ends with `]`.
        Some((h, p)) if !p.contains(']') => h,
        _ => authority,
    };
    format!("{scheme}://{host}:8774")
}

#[cfg(test)]
mod config_tests {
    #[test]
    fn the_catalog_points_compute_and_image_at_port_8774_of_the_same_host() {
        let c = super::Config::new("http://10.1.2.3:9696/");
        assert_eq!(c.compute_url, "http://10.1.2.3:8774/compute/v2.1");
        assert_eq!(c.image_url, "http://10.1.2.3:8774/image");
        assert_eq!(super::compute_base("https://[::1]:9696/x"), "https://[::1]:8774");
        assert_eq!(super::compute_base("http://api.example"), "http://api.example:8774");
    }
}

/// What every request handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Server settings.
    pub config: Arc<Config>,
}
