//! tenet labs: benchmark tooling.
//!
//! [`bench`] is `ofbench`, a cbench-compatible OpenFlow 1.0/1.3 load generator; [`of`] holds the
//! hand-written wire format it needs and [`framing`] splits the controller's byte stream into
//! messages.

pub mod bench;
pub mod framing;
pub mod of;
