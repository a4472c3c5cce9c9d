//! Hypervisor drivers. A driver builds a server's machine with one interface per NIC,
//! each plugged into the host's OVS bridge under a name the agent chooses, and changes
//! its power state. The agent does the rest (ports, netapi, reports).
//!
//! Live migration (see [`crate::agent`] for the whole sequence) splits between the two
//! hosts' drivers: the destination's [`Driver::prepare_incoming`] readies the machine's
//! place (interfaces on its bridge, a disk to copy into), the source's [`Driver::migrate`]
//! moves the machine, then either the destination's [`Driver::finish_incoming`] and the
//! source's [`Driver::cleanup_after_outgoing`] run (success), or the destination's
//! [`Driver::abort_incoming`] (failure: the machine still runs at the source).

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

/// A NIC that moves with its machine: its interface at the source and at the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovingNic {
    pub port_id: String,
    pub mac: String,
    pub source_interface: String,
    pub dest_interface: String,
}

/// What the destination prepares for an incoming machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub server_id: String,
    pub name: String,
    /// Block migration: the disk is copied (the destination creates an empty disk of
    /// `disk_size` bytes); otherwise it stays where it is (shared storage).
    pub block: bool,
    pub disk_size: Option<u64>,
    pub nics: Vec<MovingNic>,
}

/// What the destination prepared: where the machine's files go there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prepared {
    /// The disk at the destination (block migration).
    pub disk_path: Option<std::path::PathBuf>,
    /// The serial console log at the destination.
    pub console_path: Option<std::path::PathBuf>,
}

/// What the source needs to move a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub server_id: String,
    pub block: bool,
    pub nics: Vec<MovingNic>,
    pub source_bridge: String,
    pub dest_bridge: String,
    /// The destination's hypervisor URI (libvirt).
    pub dest_uri: String,
    pub prepared: Prepared,
    /// Paused machines stay paused.
    pub power: Power,
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

    /// Source side, before prepare: the virtual size in bytes of the machine's disk, if
    /// it has one (the destination of a block migration creates a disk that size).
    fn disk_size(&self, _server_id: &str) -> Result<Option<u64>, DriverError> {
        Ok(None)
    }

    /// Destination side: readies the place of an incoming machine on `bridge` (each NIC's
    /// `dest_interface`, a disk for block migration). On error, nothing it made is left.
    fn prepare_incoming(&self, _m: &Incoming, _bridge: &str) -> Result<Prepared, DriverError> {
        Err(DriverError(format!("the {} driver cannot receive live migrations", self.name())))
    }

    /// Source side: moves the running (or paused) machine to the destination prepared for
    /// it. On error the machine still runs here, as before (the driver rolls back its part;
    /// the agent then asks the destination to abort).
    fn migrate(&self, _m: &Outgoing) -> Result<(), DriverError> {
        Err(DriverError(format!("the {} driver cannot live-migrate", self.name())))
    }

    /// Destination side, after success: the machine is ours now.
    fn finish_incoming(&self, _m: &Incoming, _bridge: &str) -> Result<(), DriverError> {
        Ok(())
    }

    /// Destination side, after failure: removes what [`Driver::prepare_incoming`] made
    /// (never the machine's shared disk). Idempotent.
    fn abort_incoming(&self, _m: &Incoming, _bridge: &str) -> Result<(), DriverError> {
        Ok(())
    }

    /// Source side, after success: removes what the machine left here (interfaces still
    /// on `bridge`, the disk copied away by a block migration, logs), never the disk a
    /// shared-storage migration left in place. Idempotent.
    fn cleanup_after_outgoing(&self, _m: &Outgoing) -> Result<(), DriverError> {
        Ok(())
    }
}
