//! tenet's OpenFlow controller.
//!
//! - [`wire`]: the OpenFlow 1.3 and 1.0 codec (parse with nom, emit by hand, byte-identical round trips).
//! - [`session`]: switch sessions (handshake, keepalive, xid-tracked requests) and the accept loop.
//! - [`learning`]: learning mode, a reactive L2 learning switch per datapath.
//! - [`network`]: discovery (LLDP), host tracking and the topology model the switches share.
//! - [`api`]: the topology REST API for network admins.
//! - [`grpc`]: the same topology queries, plus a live event stream, as a gRPC service.
//! - [`query`]: the topology queries both APIs answer (path resolution, drain, switch views).
//! - [`metrics`]: counters in the Prometheus text format.
pub mod api;
pub mod grpc;
pub mod learning;
pub mod metrics;
pub mod network;
pub mod query;
pub mod session;
pub mod tenant;
pub mod wire;
