//! Topology model: switches, ports, links and hosts, and path computation.
//!
//! Architecture invariant: this crate depends on nothing else of tenet's.
//! The model, LLDP frames and path computation arrive with the topology issue.
