//! Tenant mode: netapi's desired state compiled into the tenant pipeline on every switch.
//!
//! - [`state`]: the desired state, parsed from netapi's change feed.
//! - [`compile`]: (state, topology) -> flows and groups per switch; pure, one module per table.
//! - [`flows`]: what the compiler produces (flows keyed as OpenFlow names them, cookies).
//! - [`packet`]: ARP and DHCP frames the controller answers.
//! - [`verify`]: proves from installed flows that no packet crosses between networks.
pub mod compile;
pub mod flows;
pub mod packet;
pub mod state;
pub mod verify;
