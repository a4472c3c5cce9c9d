//! The contract between `tenet-compute api` and `tenet-compute agent` (JSON over HTTP,
//! both directions authenticated with a Keystone token of a user holding the `admin` or
//! `service` role, in `X-Auth-Token`).
//!
//! Agent -> API:
//! - `POST /internal/v1/hosts` with [`HostReport`] when it starts and then every
//!   [`HEARTBEAT`]: the host's capacity and where the agent listens. A host not heard of
//!   for 3 heartbeats is not scheduled to.
//! - `PUT /internal/v1/servers/{id}` with [`ServerReport`] whenever a server it runs
//!   changes (built, failed, paused, suspended, deleted, migrated). During a live
//!   migration the source agent reports with [`ServerReport::migration`] set: the
//!   migration's progress (`preparing`, `running`) and its outcome (`completed`: the
//!   report's host is the destination; `error`: the server still runs at the source).
//!
//! API -> agent (at the URL the agent reported):
//! - `POST /v1/servers` with [`SpawnRequest`] -> 202; the agent builds the server and
//!   reports the outcome.
//! - `POST /v1/servers/{id}/action` with [`ActionRequest`] -> 202; the agent reports.
//! - `POST /v1/servers/{id}/migrate` with [`MigrateRequest`] -> 202: live migration; the
//!   agent that runs the server (the source) orchestrates it, as Nova's source compute
//!   does, and reports progress and outcome.
//! - `GET /v1/health` -> 200 (no token).
//!
//! Source agent -> destination agent (at the `dest_url` of the [`MigrateRequest`]):
//! - `POST /v1/migrations/prepare` with [`PrepareMigration`] -> 200 [`PreparedMigration`]:
//!   the destination creates an INACTIVE binding of every port on itself (netapi
//!   `PortRegistry.UpdatePortBinding`: host, its bridge's datapath id, its interface
//!   name) and prepares the machine's place (interfaces, disk). Any other answer is an
//!   error `{"error": message}` and the destination has undone its part.
//! - `POST /v1/migrations/abort` with [`MigrationRef`] -> 200: the migration failed; the
//!   destination deletes its INACTIVE bindings (`DeletePortBinding(dest)`) and what it
//!   prepared. Idempotent.
//! - `POST /v1/migrations/finish` with [`FinishMigration`] -> 200: the machine runs at the
//!   destination and its bindings are ACTIVE there; the destination takes ownership
//!   (the ports the agent created, to delete with the server).
//!
//! Destination interface names: both hosts of a lab may share one kernel, so the
//! destination's interface must not have the source's name: see [`migration_interface`].

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
    /// The name of the storage the host's server disks live on when it is shared with
    /// other hosts (`--shared-storage`); empty: local only. Two hosts reporting the same
    /// non-empty name can live-migrate without copying disks.
    #[serde(default)]
    pub shared_storage: String,
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
    /// Set by the source agent of a live migration: its progress or outcome (absent in
    /// every other report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationUpdate>,
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

/// How a live migration treats the server's disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationKind {
    /// Shared storage: the disk stays where it is; only memory and devices move.
    Live,
    /// Block migration: the disk is copied to the destination with the memory.
    Block,
}

/// A migration's status, with Nova's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationStatus {
    /// Recorded by the API, not yet taken by the source agent.
    Queued,
    /// The destination is preparing (bindings, interfaces, disk).
    Preparing,
    /// The hypervisor moves the machine.
    Running,
    /// The machine runs at the destination, its ports are bound there.
    Completed,
    /// Failed and rolled back: the machine still runs at the source.
    Error,
    /// Never started (the source agent could not be reached).
    Failed,
}

impl MigrationStatus {
    /// Nova's name (`queued`, `preparing`, ...).
    pub fn name(self) -> &'static str {
        match self {
            MigrationStatus::Queued => "queued",
            MigrationStatus::Preparing => "preparing",
            MigrationStatus::Running => "running",
            MigrationStatus::Completed => "completed",
            MigrationStatus::Error => "error",
            MigrationStatus::Failed => "failed",
        }
    }

    /// Whether the migration is still going on.
    pub fn in_progress(self) -> bool {
        matches!(self, MigrationStatus::Queued | MigrationStatus::Preparing | MigrationStatus::Running)
    }
}

/// The source agent's word on a migration, inside a [`ServerReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationUpdate {
    pub migration_id: String,
    /// `preparing`, `running`, `completed` or `error`.
    pub status: MigrationStatus,
    /// Why it failed (status `error`).
    #[serde(default)]
    pub error: Option<String>,
}

/// Body of `POST /v1/servers/{id}/migrate` (API -> the source agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateRequest {
    /// The migration's UUID (as the API records it).
    pub migration_id: String,
    pub server_id: String,
    pub name: String,
    pub kind: MigrationKind,
    /// The destination host's name and its agent's URL.
    pub dest_host: String,
    pub dest_url: String,
    pub flavor: FlavorSpec,
    pub image: ImageSpec,
    /// The server's ports as the API knows them (interfaces on the source).
    pub ports: Vec<PortInfo>,
    /// `running` or `paused`: what the server is at the source and stays at the destination.
    pub power: Power,
}

/// One NIC that moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationNic {
    pub port_id: String,
    pub mac: String,
    /// Its interface on the source host's bridge.
    pub source_interface: String,
}

/// Body of `POST /v1/migrations/prepare` (source agent -> destination agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepareMigration {
    pub migration_id: String,
    pub server_id: String,
    pub name: String,
    pub source_host: String,
    pub kind: MigrationKind,
    pub flavor: FlavorSpec,
    pub image: ImageSpec,
    pub power: Power,
    pub nics: Vec<MigrationNic>,
    /// The virtual size in bytes of the server's disk, when it has one (block migration
    /// creates an empty disk of that size at the destination to copy into).
    #[serde(default)]
    pub disk_size: Option<u64>,
}

/// A NIC's interface at the destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedNic {
    pub port_id: String,
    /// Its interface on the destination host's bridge (see [`migration_interface`]).
    pub interface: String,
}

/// Answer to `POST /v1/migrations/prepare`: where the machine goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedMigration {
    pub host: String,
    pub bridge: String,
    pub datapath_id: u64,
    /// The libvirt URI the source's libvirt migrates to (`--libvirt-migration-uri`,
    /// default the destination's `--libvirt-uri`); empty for other drivers.
    #[serde(default)]
    pub libvirt_uri: String,
    pub nics: Vec<PreparedNic>,
    /// Where the disk goes at the destination (block migration); None: it stays where it is.
    #[serde(default)]
    pub disk_path: Option<String>,
    /// The serial console log at the destination (libvirt), if the machine has one.
    #[serde(default)]
    pub console_path: Option<String>,
}

/// Body of `POST /v1/migrations/abort`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationRef {
    pub migration_id: String,
    pub server_id: String,
}

/// Body of `POST /v1/migrations/finish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishMigration {
    pub migration_id: String,
    pub server_id: String,
    /// The ports the source agent created for the server (the destination deletes them
    /// with the server; adopted ports are only unbound).
    pub created_ports: Vec<String>,
}

/// The interface name a NIC gets on the destination of a migration: `tap<11>` becomes
/// `tmv<11>` and `tmv<11>` becomes `tap<11>` (the same 11 characters of the port id), so
/// that a machine moving between two hosts on one kernel never meets its old interface,
/// and moving back restores Nova's name. Other names get `tmv` + their first 11
/// characters after any 3-letter prefix.
pub fn migration_interface(source: &str) -> String {
    let rest: String = source.chars().skip(3).take(11).collect();
    if source.starts_with("tmv") {
        format!("tap{rest}")
    } else {
        format!("tmv{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_interfaces_alternate_between_tap_and_tmv() {
        assert_eq!(migration_interface("tap0123456789a"), "tmv0123456789a");
        assert_eq!(migration_interface("tmv0123456789a"), "tap0123456789a");
        assert!(migration_interface("vnet12").len() <= 15);
    }

    #[test]
    fn old_reports_still_parse() {
        let host: HostReport = serde_json::from_value(serde_json::json!({
            "host": "h", "url": "http://x", "driver": "namespace",
            "capacity": {"vcpus": 1, "ram_mb": 1, "disk_gb": 1},
            "enabled": true, "bridge": "br", "datapath_id": 1,
        }))
        .expect("a report without shared_storage");
        assert_eq!(host.shared_storage, "");
        let server: ServerReport =
            serde_json::from_value(serde_json::json!({"host": "h", "power": "running", "fault": null, "ports": []}))
                .expect("a report without migration");
        assert_eq!(server.migration, None);
    }
}
