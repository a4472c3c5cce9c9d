//! tenet's compute service (the seed's Nova and Glance, and the hypervisor side).
//!
//! - [`model`]: flavors, images, servers, hosts as the API shows them.
//! - [`protocol`]: the messages between the API service and the agents.
//! - [`api`]: `tenet-compute api`: a Nova v2.1 subset and a Glance v2 subset the real
//!   `openstack` CLI accepts, plus the internal endpoints agents report to.
//! - [`scheduler`]: filters and weighers that pick a host.
//! - [`agent`]: `tenet-compute agent`: one per hypervisor host; runs a driver, plugs ports
//!   into the host's OVS bridge and registers them through netapi.
//! - [`driver`]: hypervisor drivers (network namespaces for labs; libvirt with QEMU/TCG guests).
pub mod agent;
pub mod api;
pub mod driver;
pub mod model;
pub mod protocol;
pub mod scheduler;
