//! tenet's OpenFlow controller.
//!
//! - [`wire`]: the OpenFlow 1.3 and 1.0 codec (parse with nom, emit by hand, byte-identical round trips).
//! - [`session`]: switch sessions (handshake, keepalive, xid-tracked requests) and the accept loop.
//! - [`learning`]: learning mode, a reactive L2 learning switch per datapath.
//! - [`metrics`]: counters in the Prometheus text format.
pub mod learning;
pub mod metrics;
pub mod session;
pub mod wire;
