//! Topology model: switches, ports, links and hosts; LLDP frames; paths.
//!
//! # The model
//!
//! A [`Topology`] is a directed graph whose nodes are switches (with their
//! ports) and whose edges are links. A link is one direction of a cable,
//! discovered on its own: the controller sends our LLDP frame
//! ([`lldp::build`]) out of every port, and when it comes back in a
//! PACKET_IN on another switch ([`lldp::parse`]), calls
//! [`Topology::link_seen`]. Links age out ([`Topology::expire_links`]) and
//! go at once when their port goes down ([`Topology::update_port`]).
//! Hosts are learned at edge ports (ports that are not the end of a link)
//! from the traffic they send ([`Topology::learn_host`]).
//!
//! The caller supplies the time (milliseconds as a plain `u64`) and the
//! model holds no clock, no task and no lock, so it is deterministic and
//! tested without a switch. Every mutation returns the [`TopologyEvent`]s it
//! caused and sends them to [`Topology::subscribe`]rs (the controller's
//! path recomputation, the REST API's live feed).
//!
//! Paths ([`Topology::shortest_path`], [`Topology::ecmp_paths`],
//! [`Topology::disjoint_paths`], [`Topology::host_path`]) weigh links by
//! port speed unless an operator set the weight, and avoid drained switches
//! where they can. Flooding follows a spanning tree
//! ([`Topology::spanning_tree`], [`Topology::flood_ports`]) so rings and
//! fat-trees do not storm.
//!
//! The API types serialise with serde: datapath ids as 16 hex digits
//! (`"0000000000000001"`), MAC addresses as `"aa:bb:cc:dd:ee:ff"`, events
//! tagged by `"type"`.
//!
//! Architecture invariant: this crate depends on nothing else of tenet's.

pub mod lldp;
mod model;
mod path;

#[cfg(test)]
mod testutil;

pub use model::{
    fmt_dpid, fmt_mac, parse_dpid, parse_mac, weight_for_speed, Dpid, Endpoint, Host, Link, Mac, ParseError, PortInfo,
    PortNo, Switch, Topology, TopologyEvent, EVENT_CHANNEL_CAPACITY, OFPP_MAX,
};
pub use path::{Hop, Path};
