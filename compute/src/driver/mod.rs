//! Hypervisor drivers. A driver builds a server's machine with one interface per NIC,
//! each plugged into the host's OVS bridge under a name the agent chooses, and changes
//! its power state. The agent does the rest (ports, netapi, reports).

pub mod libvirt;
pub mod namespace;

use crate::protocol::Power;

/// One NIC to create: the interface name on the bridge and the MAC the port has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    pub interface: String,
    pub mac: String,
    /// The netapi port id (libvirt puts it in the OVS interface's `iface-id`, as Nova does).
    pub port_id: Option<String>,
    /// The port's IPv4 address with prefix length (the namespace driver configures it
    /// statically when the guest has no DHCP client; libvirt guests ask DHCP).
    pub ip: Option<String>,
}

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    pub server_id: String,
    pub name: String,
    pub vcpus: u32,
    pub ram_mb: u64,
    /// The image's data on this host (the driver may ignore it).
    pub image_path: Option<std::path::PathBuf>,
    pub nics: Vec<Nic>,
}

/// Why a driver call failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DriverError(pub String);

/// A hypervisor.
pub trait Driver: Send + Sync {
    /// `namespace`, `libvirt`.
    fn name(&self) -> &'static str;
    /// Builds and starts the machine, its NICs plugged into `bridge`.
    fn spawn(&self, m: &Machine, bridge: &str) -> Result<(), DriverError>;
    /// Called once the machine's ports are registered (`nics` of them): the namespace
    /// driver starts the guest's DHCP client here; a real guest runs its own.
    fn after_ports(&self, _server_id: &str, _nics: usize) -> Result<(), DriverError> {
        Ok(())
    }
    /// Changes the power state: Paused (kept in memory), Suspended (saved), Running.
    fn set_power(&self, server_id: &str, power: Power) -> Result<(), DriverError>;
    /// Removes the machine and its interfaces (from the bridge too). Idempotent.
    fn destroy(&self, server_id: &str, bridge: &str) -> Result<(), DriverError>;
    /// The machines it runs (server ids), for recovery after an agent restart.
    fn list(&self) -> Vec<String>;
}
