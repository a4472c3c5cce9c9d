//! Tenant mode: netapi's desired state compiled into the tenant pipeline on every switch.
//!
//! - [`feed`]: follows netapi's state feed (gRPC), resuming from the last revision.
//! - [`state`]: the desired state, parsed from the feed.
//! - [`compile`]: (state, topology) -> flows and groups per switch; pure, one module per table.
//! - [`flows`]: what the compiler produces (flows keyed as OpenFlow names them, cookies).
//! - [`reconcile`]: diff against what a switch holds; only the difference is sent, closed by a barrier.
//! - [`engine`]: the task that ties them together and recompiles only touched switches.
//! - [`app`]: per-switch discovery input and the ARP/DHCP responders.
//! - [`packet`]: ARP and DHCP frames.
//! - [`verify`]: proves from installed flows that no packet crosses between networks.
//! - [`alerts`]: IPS (Suricata EVE) alerts attributed to the tenant ports involved.
pub mod alerts;
pub mod app;
pub mod compile;
pub mod engine;
pub mod feed;
pub mod flows;
pub mod packet;
pub mod reconcile;
pub mod state;
pub mod verify;
