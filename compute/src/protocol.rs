//! The contract between `tenet-compute api` and `tenet-compute agent` (JSON over HTTP,
//! both directions authenticated with a Keystone token of a user holding the `admin` or
//! `service` role, in `X-Auth-Token`).
//!
//! Agent -> API:
//! - `POST /internal/v1/hosts` with [`HostReport`] when it starts and then every
//!   [`HEARTBEAT`]: the host's capacity and where the agent listens. A host not heard of
//!   for 3 heartbeats is not scheduled to.
//! - `PUT /internal/v1/servers/{id}` with [`ServerReport`] whenever a server it runs
//!   changes (built, failed, paused, suspended, deleted).
//!
//! API -> agent (at the URL the agent reported):
//! - `POST /v1/servers` with [`SpawnRequest`] -> 202; the agent builds the server and
//!   reports the outcome.
//! - `POST /v1/servers/{id}/action` with [`ActionRequest`] -> 202; the agent reports.
//! - `GET /v1/health` -> 200 (no token).

use serde::{Deserialize, Serialize};

/// How often agents report.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a host offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub vcpus: u32,
    pub ram_mb: u64,
    pub disk_gb: u64,
}

/// An agent's report about its host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostReport {
    /// The host's name (`--host`), as Nova's `OS-EXT-SRV-ATTR:host`.
    pub host: String,
    /// Where the agent's HTTP endpoint is (`http://ADDR`).
    pub url: String,
    /// `namespace` or `libvirt`.
    pub driver: String,
    pub capacity: Capacity,
    /// Disabled hosts are never scheduled to.
    pub enabled: bool,
    /// The OVS bridge VMs are plugged into, and its datapath id.
    pub bridge: String,
    pub datapath_id: u64,
}

/// One NIC the server asks for: a network (a port is created) or an existing port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicRequest {
    pub network_id: Option<String>,
    pub port_id: Option<String>,
    /// A fixed IPv4 address wanted on the network (`--nic net-id=X,v4-fixed-ip=Y`).
    pub fixed_ip: Option<String>,
}

/// What an agent needs to build a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnRequest {
    pub server_id: String,
    pub name: String,
    pub project_id: String,
    pub flavor: FlavorSpec,
    pub image: ImageSpec,
    pub nics: Vec<NicRequest>,
    /// Security group ids for the ports the agent creates (empty: the project's default).
    pub security_groups: Vec<String>,
}

/// The flavor's sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlavorSpec {
    pub id: String,
    pub vcpus: u32,
    pub ram_mb: u64,
    pub disk_gb: u64,
}

/// The image: where the agent fetches its data (`GET {api}/image/v2/images/{id}/file`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSpec {
    pub id: String,
    pub disk_format: String,
    pub size: u64,
}

/// A server action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pause,
    Unpause,
    Suspend,
    Resume,
    Delete,
}

/// The power state of a server as the hypervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Power {
    Running,
    Paused,
    Suspended,
    Shutdown,
    /// Gone from the host (deleted).
    Gone,
}

/// An agent's report about one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerReport {
    pub host: String,
    /// `None` while building.
    pub power: Option<Power>,
    /// Set when the last operation failed: the server goes to ERROR with this fault.
    pub fault: Option<String>,
    /// The server's ports as registered through netapi.
    pub ports: Vec<PortInfo>,
}

/// A server port as registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortInfo {
    pub port_id: String,
    pub network_id: String,
    pub mac: String,
    pub ips: Vec<String>,
    /// The interface on the host bridge.
    pub interface: String,
}

/// Body of `POST /v1/servers/{id}/action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRequest {
    pub action: Action,
}
