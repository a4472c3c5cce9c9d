//! The topology model: switches, their ports, directed links between ports,
//! and hosts learned at edge ports.
//!
//! Switches are the nodes of a petgraph [`StableDiGraph`] and links its
//! directed edges, so a cable is two links that appear and disappear
//! independently. Node and edge indices stay valid across removals, and the
//! indices below (`nodes`, `links_by_src`, the host maps) point into it.
//!
//! Every mutation returns the [`TopologyEvent`]s it caused, in order, and
//! sends the same events to [`Topology::subscribe`]rs. Time is a plain `u64`
//! of milliseconds supplied by the caller, so the model is deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;

use petgraph::stable_graph::{EdgeIndex, NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// OpenFlow datapath id of a switch.
pub type Dpid = u64;
/// OpenFlow port number.
pub type PortNo = u32;
/// Ethernet MAC address.
pub type Mac = [u8; 6];

/// Port numbers from this one up are OpenFlow reserved ports (`IN_PORT`,
/// `FLOOD`, `LOCAL`, ...), never edge ports of the fabric.
pub const OFPP_MAX: PortNo = 0xffff_ff00;

/// How many events a subscriber may fall behind before it sees
/// `RecvError::Lagged` (and should then resynchronise from a snapshot).
pub const EVENT_CHANNEL_CAPACITY: usize = 1024;

/// Link weight of a port whose speed is `kbps`: 1 at 10 Gb/s and above, 10 at
/// 1 Gb/s, 100 at 100 Mb/s; 1 when the speed is unknown (0).
pub const fn weight_for_speed(kbps: u32) -> u32 {
    if kbps == 0 {
        return 1;
    }
    let w = 10_000_000 / kbps;
    if w == 0 {
        1
    } else {
        w
    }
}

/// Formats a datapath id as 16 lowercase hex digits (`"0000000000000001"`).
pub fn fmt_dpid(dpid: Dpid) -> String {
    format!("{dpid:016x}")
}

/// Parses a datapath id written as exactly 16 hex digits (how [`fmt_dpid`]
/// and OVS write it, optionally with colons between byte pairs), as hex with a
/// `0x` prefix, or as plain decimal.
///
/// A 16-digit string is always read as hex, even when all its digits are
/// decimal ones.
pub fn parse_dpid(text: &str) -> Result<Dpid, ParseError> {
    let err = || ParseError::Dpid(text.to_owned());
    let s = text.trim();
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if hex.is_empty() || hex.len() > 16 {
            return Err(err());
        }
        return u64::from_str_radix(hex, 16).map_err(|_| err());
    }
    if s.contains(':') {
        let pairs: Vec<&str> = s.split(':').collect();
        if pairs.len() != 8 || pairs.iter().any(|p| p.len() != 2) {
            return Err(err());
        }
        return u64::from_str_radix(&pairs.concat(), 16).map_err(|_| err());
    }
    if s.len() == 16 {
        return u64::from_str_radix(s, 16).map_err(|_| err());
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    s.parse().map_err(|_| err())
}

/// Formats a MAC address as `"aa:bb:cc:dd:ee:ff"`.
pub fn fmt_mac(mac: &Mac) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// Parses a MAC address: six groups of one or two hex digits separated by
/// `:` or `-` (`"aa:bb:cc:dd:ee:ff"`, `"AA-BB-CC-DD-EE-FF"`).
pub fn parse_mac(text: &str) -> Result<Mac, ParseError> {
    let err = || ParseError::Mac(text.to_owned());
    let s = text.trim();
    let sep = if s.contains('-') { '-' } else { ':' };
    let mut mac = [0u8; 6];
    let mut groups = s.split(sep);
    for byte in &mut mac {
        let group = groups.next().ok_or_else(err)?;
        if group.is_empty() || group.len() > 2 || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err());
        }
        *byte = u8::from_str_radix(group, 16).map_err(|_| err())?;
    }
    if groups.next().is_some() {
        return Err(err());
    }
    Ok(mac)
}

/// Text that is not a datapath id or MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not 16 hex digits, `0x` hex, or decimal.
    #[error("invalid datapath id {0:?}")]
    Dpid(String),
    /// Not six hex bytes separated by `:` or `-`.
    #[error("invalid MAC address {0:?}")]
    Mac(String),
}

/// Serde adapter: a [`Dpid`] as its 16-hex-digit string (numbers are also
/// accepted when reading).
pub(crate) mod dpid_serde {
    use super::{fmt_dpid, parse_dpid, Dpid};
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(dpid: &Dpid, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&fmt_dpid(*dpid))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Dpid, D::Error> {
        struct DpidVisitor;
        impl Visitor<'_> for DpidVisitor {
            type Value = Dpid;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a datapath id (16 hex digits, 0x hex, or decimal)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dpid, E> {
                parse_dpid(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dpid, E> {
                Ok(v)
            }
        }
        d.deserialize_any(DpidVisitor)
    }
}

/// Serde adapter: a [`Mac`] as `"aa:bb:cc:dd:ee:ff"`.
pub(crate) mod mac_serde {
    use super::{fmt_mac, parse_mac, Mac};
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(mac: &Mac, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&fmt_mac(mac))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        struct MacVisitor;
        impl Visitor<'_> for MacVisitor {
            type Value = Mac;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a MAC address like \"aa:bb:cc:dd:ee:ff\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Mac, E> {
                parse_mac(v).map_err(E::custom)
            }
        }
        d.deserialize_str(MacVisitor)
    }
}

/// One port of a switch, as the switch describes it (PORT_DESC, PORT_STATUS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortInfo {
    /// OpenFlow port number.
    pub port_no: PortNo,
    /// Interface name on the switch (`"s1-eth1"`, `"tap0"`).
    pub name: String,
    /// The port's own MAC address (LLDP goes out with it as source).
    #[serde(with = "mac_serde")]
    pub hw_addr: Mac,
    /// Link up and port not administratively down.
    pub up: bool,
    /// Current speed in kb/s, 0 when unknown.
    pub curr_speed_kbps: u32,
}

/// A switch and its ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Switch {
    /// Datapath id.
    #[serde(with = "dpid_serde")]
    pub dpid: Dpid,
    /// Ports by number.
    pub ports: BTreeMap<PortNo, PortInfo>,
    /// Drained for maintenance: paths avoid it where they can.
    pub drained: bool,
}

/// A port of a switch: one end of a link, or where a host is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    /// The switch.
    #[serde(with = "dpid_serde")]
    pub dpid: Dpid,
    /// The port on it.
    pub port: PortNo,
}

impl Endpoint {
    /// The endpoint at `port` of switch `dpid`.
    pub const fn new(dpid: Dpid, port: PortNo) -> Self {
        Self { dpid, port }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}:{}", self.dpid, self.port)
    }
}

/// A directed link: frames sent out of `src` arrive at `dst`. A cable is two
/// links, one per direction, each discovered on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Link {
    /// Sending port.
    pub src: Endpoint,
    /// Receiving port.
    pub dst: Endpoint,
    /// Cost for path computation (at least 1): set with
    /// [`Topology::set_link_weight`], otherwise [`weight_for_speed`] of the
    /// slower port.
    pub weight: u32,
}

/// A host (VM, server, appliance) learned at an edge port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// Its MAC address.
    #[serde(with = "mac_serde")]
    pub mac: Mac,
    /// Addresses it has been seen using (ARP, IP source).
    pub ips: BTreeSet<IpAddr>,
    /// Where it is attached.
    pub at: Endpoint,
    /// When it was last seen, caller's milliseconds.
    pub last_seen_ms: u64,
}

/// A change of the topology. Removals come after the removals they caused
/// (a switch's links go before the switch), changes before their effects (a
/// port goes down, then its links go).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TopologyEvent {
    /// A switch connected.
    SwitchAdded {
        /// The switch.
        #[serde(with = "dpid_serde")]
        dpid: Dpid,
    },
    /// A switch is gone, with its ports (its links and hosts went first).
    SwitchRemoved {
        /// The switch.
        #[serde(with = "dpid_serde")]
        dpid: Dpid,
    },
    /// A switch has a new port.
    PortAdded {
        /// The switch.
        #[serde(with = "dpid_serde")]
        dpid: Dpid,
        /// The port.
        port: PortInfo,
    },
    /// A port changed (state, speed, name, address).
    PortChanged {
        /// The switch.
        #[serde(with = "dpid_serde")]
        dpid: Dpid,
        /// The port as it is now.
        port: PortInfo,
    },
    /// A port is gone.
    PortRemoved {
        /// The switch.
        #[serde(with = "dpid_serde")]
        dpid: Dpid,
        /// The port number.
        port_no: PortNo,
    },
    /// A directed link was discovered.
    LinkAdded {
        /// The link.
        link: Link,
    },
    /// A link's weight changed.
    LinkChanged {
        /// The link as it is now.
        link: Link,
    },
    /// A directed link is gone.
    LinkRemoved {
        /// The link.
        link: Link,
        /// Why: "port down", "port removed", "switch removed", "aged out",
        /// "replaced", or what the caller of [`Topology::remove_link`] said.
        reason: String,
    },
    /// A host was learned.
    HostAdded {
        /// The host.
        host: Host,
    },
    /// A host was seen at another port.
    HostMoved {
        /// The host, at its new place.
        host: Host,
        /// Where it was.
        from: Endpoint,
    },
    /// A host gained or lost an address.
    HostChanged {
        /// The host as it is now.
        host: Host,
    },
    /// A host is gone.
    HostRemoved {
        /// Its MAC address.
        #[serde(with = "mac_serde")]
        mac: Mac,
    },
    /// A switch was drained or undrained.
    SwitchDrained {
        /// The switch.
        #[serde(with = "dpid_serde")]
        dpid: Dpid,
        /// Its new state.
        drained: bool,
    },
}

impl TopologyEvent {
    /// Whether the event can change paths or the spanning tree between
    /// switches (host and port events cannot by themselves).
    fn changes_fabric(&self) -> bool {
        !matches!(
            self,
            Self::HostAdded { .. }
                | Self::HostMoved { .. }
                | Self::HostChanged { .. }
                | Self::HostRemoved { .. }
                | Self::PortAdded { .. }
                | Self::PortChanged { .. }
                | Self::PortRemoved { .. }
        )
    }
}

/// A link in the graph, with what the model needs to age it.
#[derive(Debug, Clone)]
pub(crate) struct LinkState {
    pub(crate) link: Link,
    pub(crate) last_seen_ms: u64,
}

/// Link ports of each switch that belong to the spanning forest.
pub(crate) type SpanningTree = BTreeMap<Dpid, BTreeSet<PortNo>>;

/// The network as the controller sees it. Not internally synchronised: share
/// it behind a lock; observers follow it through [`Topology::subscribe`].
#[derive(Debug)]
pub struct Topology {
    pub(crate) graph: StableDiGraph<Switch, LinkState>,
    pub(crate) nodes: BTreeMap<Dpid, NodeIndex>,
    /// Each port sends to at most one peer, so the sending end names a link.
    pub(crate) links_by_src: BTreeMap<Endpoint, EdgeIndex>,
    /// Operator-set weights per (src, dst), kept across link flaps.
    weight_overrides: BTreeMap<(Endpoint, Endpoint), u32>,
    /// Drained switches, kept across reconnects.
    drained: BTreeSet<Dpid>,
    hosts: BTreeMap<Mac, Host>,
    hosts_by_ip: BTreeMap<IpAddr, Mac>,
    hosts_at: BTreeMap<Endpoint, BTreeSet<Mac>>,
    /// Computed on demand, reset by every change of the fabric.
    pub(crate) tree: OnceLock<SpanningTree>,
    events: broadcast::Sender<TopologyEvent>,
}

impl Default for Topology {
    fn default() -> Self {
        Self::new()
    }
}

impl Topology {
    /// An empty topology.
    pub fn new() -> Self {
        Self {
            graph: StableDiGraph::new(),
            nodes: BTreeMap::new(),
            links_by_src: BTreeMap::new(),
            weight_overrides: BTreeMap::new(),
            drained: BTreeSet::new(),
            hosts: BTreeMap::new(),
            hosts_by_ip: BTreeMap::new(),
            hosts_at: BTreeMap::new(),
            tree: OnceLock::new(),
            events: broadcast::channel(EVENT_CHANNEL_CAPACITY).0,
        }
    }

    /// Receives every event from now on. A receiver that falls more than
    /// [`EVENT_CHANNEL_CAPACITY`] events behind gets `Lagged` and should
    /// re-read the topology.
    pub fn subscribe(&self) -> broadcast::Receiver<TopologyEvent> {
        self.events.subscribe()
    }

    // ----- mutations -----

    /// A switch connected with these ports. Re-adding a known switch replaces
    /// its ports: missing ones are removed, new or changed ones announced.
    pub fn add_switch(&mut self, dpid: Dpid, ports: Vec<PortInfo>) -> Vec<TopologyEvent> {
        let mut out = Vec::new();
        let ports: BTreeMap<PortNo, PortInfo> = ports.into_iter().map(|p| (p.port_no, p)).collect();
        match self.nodes.get(&dpid) {
            None => {
                out.push(TopologyEvent::SwitchAdded { dpid });
                out.extend(ports.values().map(|p| TopologyEvent::PortAdded { dpid, port: p.clone() }));
                let drained = self.drained.contains(&dpid);
                let node = self.graph.add_node(Switch { dpid, ports, drained });
                self.nodes.insert(dpid, node);
            }
            Some(&node) => {
                let gone: Vec<PortNo> =
                    self.graph[node].ports.keys().copied().filter(|no| !ports.contains_key(no)).collect();
                for port_no in gone {
                    self.remove_port_into(dpid, port_no, &mut out);
                }
                for port in ports.into_values() {
                    self.update_port_into(dpid, port, &mut out);
                }
            }
        }
        self.publish(out)
    }

    /// A switch disconnected: its links (both directions) and the hosts
    /// attached to it go with it.
    pub fn remove_switch(&mut self, dpid: Dpid) -> Vec<TopologyEvent> {
        let mut out = Vec::new();
        let Some(&node) = self.nodes.get(&dpid) else {
            return out;
        };
        let mut edges: Vec<(Link, EdgeIndex)> = self
            .graph
            .edges_directed(node, Direction::Outgoing)
            .chain(self.graph.edges_directed(node, Direction::Incoming))
            .map(|e| (e.weight().link, e.id()))
            .collect();
        edges.sort();
        edges.dedup_by_key(|(_, e)| *e); // a self-loop shows up in both directions
        for (_, edge) in edges {
            self.drop_link(edge, "switch removed", &mut out);
        }
        let macs: Vec<Mac> = self
            .hosts_at
            .range(Endpoint::new(dpid, 0)..=Endpoint::new(dpid, PortNo::MAX))
            .flat_map(|(_, macs)| macs.iter().copied())
            .collect();
        for mac in macs {
            self.drop_host(mac, &mut out);
        }
        self.graph.remove_node(node);
        self.nodes.remove(&dpid);
        out.push(TopologyEvent::SwitchRemoved { dpid });
        self.publish(out)
    }

    /// A port was added or changed (PORT_STATUS). A port that is down loses
    /// its links at once (reason "port down") and its hosts. Ignored for an
    /// unknown switch; silent when nothing changed.
    pub fn update_port(&mut self, dpid: Dpid, port: PortInfo) -> Vec<TopologyEvent> {
        let mut out = Vec::new();
        self.update_port_into(dpid, port, &mut out);
        self.publish(out)
    }

    /// A port was deleted: its links and hosts go first.
    pub fn remove_port(&mut self, dpid: Dpid, port_no: PortNo) -> Vec<TopologyEvent> {
        let mut out = Vec::new();
        self.remove_port_into(dpid, port_no, &mut out);
        self.publish(out)
    }

    /// Our LLDP sent out of `src` came in at `dst`. Adds the directed link if
    /// it is new (replacing another link out of `src`: a port has one peer)
    /// and forgets hosts learned at either end, which is a fabric port; for a
    /// known link only refreshes its age. Ignored unless both ports exist and
    /// are up.
    pub fn link_seen(&mut self, src: Endpoint, dst: Endpoint, now_ms: u64) -> Vec<TopologyEvent> {
        let mut out = Vec::new();
        if src == dst || !self.port_is_up(src) || !self.port_is_up(dst) {
            return out;
        }
        if let Some(&edge) = self.links_by_src.get(&src) {
            let state = &mut self.graph[edge];
            if state.link.dst == dst {
                state.last_seen_ms = state.last_seen_ms.max(now_ms);
                return out;
            }
            self.drop_link(edge, "replaced", &mut out);
        }
        let link = Link { src, dst, weight: self.weight_of(src, dst) };
        let edge =
            self.graph.add_edge(self.nodes[&src.dpid], self.nodes[&dst.dpid], LinkState { link, last_seen_ms: now_ms });
        self.links_by_src.insert(src, edge);
        out.push(TopologyEvent::LinkAdded { link });
        self.drop_hosts_at(src, &mut out);
        self.drop_hosts_at(dst, &mut out);
        self.publish(out)
    }

    /// Removes links not seen for more than `max_age_ms` (reason "aged out").
    pub fn expire_links(&mut self, now_ms: u64, max_age_ms: u64) -> Vec<TopologyEvent> {
        let mut out = Vec::new();
        let stale: Vec<EdgeIndex> = self
            .links_by_src
            .values()
            .copied()
            .filter(|&e| now_ms.saturating_sub(self.graph[e].last_seen_ms) > max_age_ms)
            .collect();
        for edge in stale {
            self.drop_link(edge, "aged out", &mut out);
        }
        self.publish(out)
    }

    /// Removes the link `src -> dst` (only that direction), if known.
    pub fn remove_link(&mut self, src: Endpoint, dst: Endpoint, reason: &str) -> Vec<TopologyEvent> {
        let mut out = Vec::new();
        if let Some(&edge) = self.links_by_src.get(&src) {
            if self.graph[edge].link.dst == dst {
                self.drop_link(edge, reason, &mut out);
            }
        }
        self.publish(out)
    }

    /// A frame from `mac` (with source address `ip`, if the caller knows one)
    /// came in at `at`. Ignored when `at` is a link port, an unknown or down
    /// port, or `mac` is multicast or zero; `ip` is ignored when unspecified,
    /// multicast or broadcast. A new host is added, a known one at another
    /// port moved, a known one at the same port refreshed silently (a new
    /// address gives `HostChanged`). An address belongs to the MAC that
    /// claimed it last: its previous owner loses it (`HostChanged`).
    pub fn learn_host(&mut self, mac: Mac, ip: Option<IpAddr>, at: Endpoint, now_ms: u64) -> Vec<TopologyEvent> {
        let mut out = Vec::new();
        if mac == [0; 6] || mac[0] & 1 != 0 || !self.port_is_up(at) || self.is_link_port(at) {
            return out;
        }
        let ip = ip.filter(is_host_ip);
        if let Some(ip) = ip {
            if let Some(owner) = self.hosts_by_ip.get(&ip).copied().filter(|&o| o != mac) {
                self.hosts_by_ip.remove(&ip);
                if let Some(prev) = self.hosts.get_mut(&owner) {
                    prev.ips.remove(&ip);
                    out.push(TopologyEvent::HostChanged { host: prev.clone() });
                }
            }
        }
        let event = match self.hosts.get_mut(&mac) {
            None => {
                let host = Host { mac, ips: ip.into_iter().collect(), at, last_seen_ms: now_ms };
                self.hosts.insert(mac, host.clone());
                self.hosts_at.entry(at).or_default().insert(mac);
                Some(TopologyEvent::HostAdded { host })
            }
            Some(host) => {
                let from = host.at;
                let new_ip = ip.is_some_and(|ip| host.ips.insert(ip));
                host.last_seen_ms = host.last_seen_ms.max(now_ms);
                if from != at {
                    host.at = at;
                    let host = host.clone();
                    self.unindex_host_at(from, mac);
                    self.hosts_at.entry(at).or_default().insert(mac);
                    Some(TopologyEvent::HostMoved { host, from })
                } else if new_ip {
                    Some(TopologyEvent::HostChanged { host: host.clone() })
                } else {
                    None
                }
            }
        };
        if let Some(ip) = ip {
            self.hosts_by_ip.insert(ip, mac);
        }
        out.extend(event);
        self.publish(out)
    }

    /// Forgets a host.
    pub fn remove_host(&mut self, mac: Mac) -> Vec<TopologyEvent> {
        let mut out = Vec::new();
        self.drop_host(mac, &mut out);
        self.publish(out)
    }

    /// Forgets hosts not seen for more than `max_age_ms`.
    pub fn expire_hosts(&mut self, now_ms: u64, max_age_ms: u64) -> Vec<TopologyEvent> {
        let mut out = Vec::new();
        let stale: Vec<Mac> =
            self.hosts.values().filter(|h| now_ms.saturating_sub(h.last_seen_ms) > max_age_ms).map(|h| h.mac).collect();
        for mac in stale {
            self.drop_host(mac, &mut out);
        }
        self.publish(out)
    }

    /// Drains (or undrains) a switch: paths and the spanning tree avoid it
    /// where they can. The state is kept for a switch that is not connected
    /// (or reconnects); the event comes only when a connected switch changes.
    pub fn set_drained(&mut self, dpid: Dpid, drained: bool) -> Vec<TopologyEvent> {
        let mut out = Vec::new();
        if drained {
            self.drained.insert(dpid);
        } else {
            self.drained.remove(&dpid);
        }
        if let Some(&node) = self.nodes.get(&dpid) {
            let sw = &mut self.graph[node];
            if sw.drained != drained {
                sw.drained = drained;
                out.push(TopologyEvent::SwitchDrained { dpid, drained });
            }
        }
        self.publish(out)
    }

    /// Sets the weight of the link `src -> dst` (one direction); 0 goes back
    /// to the weight derived from port speed. The setting is kept when the
    /// link flaps, and applies when such a link appears later.
    pub fn set_link_weight(&mut self, src: Endpoint, dst: Endpoint, weight: u32) -> Vec<TopologyEvent> {
        let mut out = Vec::new();
        if weight == 0 {
            self.weight_overrides.remove(&(src, dst));
        } else {
            self.weight_overrides.insert((src, dst), weight);
        }
        if let Some(&edge) = self.links_by_src.get(&src) {
            if self.graph[edge].link.dst == dst {
                self.reweigh(edge, &mut out);
            }
        }
        self.publish(out)
    }

    // ----- queries -----

    /// All switches, by dpid.
    pub fn switches(&self) -> impl Iterator<Item = &Switch> + '_ {
        self.nodes.values().map(|&n| &self.graph[n])
    }

    /// One switch.
    pub fn switch(&self, dpid: Dpid) -> Option<&Switch> {
        self.nodes.get(&dpid).map(|&n| &self.graph[n])
    }

    /// One port.
    pub fn port(&self, at: Endpoint) -> Option<&PortInfo> {
        self.switch(at.dpid)?.ports.get(&at.port)
    }

    /// All links, sorted by (src, dst).
    pub fn links(&self) -> impl Iterator<Item = &Link> + '_ {
        self.links_by_src.values().map(|&e| &self.graph[e].link)
    }

    /// All hosts, by MAC.
    pub fn hosts(&self) -> impl Iterator<Item = &Host> + '_ {
        self.hosts.values()
    }

    /// The host with this MAC.
    pub fn host(&self, mac: Mac) -> Option<&Host> {
        self.hosts.get(&mac)
    }

    /// The host that last used this address.
    pub fn host_by_ip(&self, ip: IpAddr) -> Option<&Host> {
        self.hosts_by_ip.get(&ip).and_then(|mac| self.hosts.get(mac))
    }

    /// Whether a link starts or ends at this port (a fabric port).
    pub fn is_link_port(&self, at: Endpoint) -> bool {
        if self.links_by_src.contains_key(&at) {
            return true;
        }
        let Some(&node) = self.nodes.get(&at.dpid) else {
            return false;
        };
        self.graph.edges_directed(node, Direction::Incoming).any(|e| e.weight().link.dst == at)
    }

    /// The link out of this port.
    pub fn link_from(&self, src: Endpoint) -> Option<Link> {
        self.links_by_src.get(&src).map(|&e| self.graph[e].link)
    }

    // ----- internals -----

    fn port_is_up(&self, at: Endpoint) -> bool {
        self.port(at).is_some_and(|p| p.up)
    }

    /// Sends the events to subscribers, drops the cached spanning tree when
    /// the fabric changed, and hands the events back.
    fn publish(&mut self, events: Vec<TopologyEvent>) -> Vec<TopologyEvent> {
        if events.iter().any(TopologyEvent::changes_fabric) {
            self.tree = OnceLock::new();
        }
        if self.events.receiver_count() > 0 {
            for event in &events {
                // Nobody listening is not an error.
                let _ = self.events.send(event.clone());
            }
        }
        events
    }

    fn update_port_into(&mut self, dpid: Dpid, port: PortInfo, out: &mut Vec<TopologyEvent>) {
        let Some(&node) = self.nodes.get(&dpid) else {
            return;
        };
        let at = Endpoint::new(dpid, port.port_no);
        let up = port.up;
        let old = self.graph[node].ports.insert(port.port_no, port.clone());
        let speed_changed = match &old {
            None => {
                out.push(TopologyEvent::PortAdded { dpid, port });
                false
            }
            Some(old) if *old == port => return,
            Some(old) => {
                let changed = old.curr_speed_kbps != port.curr_speed_kbps;
                out.push(TopologyEvent::PortChanged { dpid, port });
                changed
            }
        };
        if !up {
            self.drop_links_at(at, "port down", out);
            self.drop_hosts_at(at, out);
        } else if speed_changed {
            for edge in self.links_at(at) {
                self.reweigh(edge, out);
            }
        }
    }

    fn remove_port_into(&mut self, dpid: Dpid, port_no: PortNo, out: &mut Vec<TopologyEvent>) {
        let Some(&node) = self.nodes.get(&dpid) else {
            return;
        };
        if !self.graph[node].ports.contains_key(&port_no) {
            return;
        }
        let at = Endpoint::new(dpid, port_no);
        self.drop_links_at(at, "port removed", out);
        self.drop_hosts_at(at, out);
        self.graph[node].ports.remove(&port_no);
        out.push(TopologyEvent::PortRemoved { dpid, port_no });
    }

    /// Links starting or ending at `at`, sorted.
    fn links_at(&self, at: Endpoint) -> Vec<EdgeIndex> {
        let Some(&node) = self.nodes.get(&at.dpid) else {
            return Vec::new();
        };
        let mut edges: Vec<(Link, EdgeIndex)> = self
            .graph
            .edges_directed(node, Direction::Incoming)
            .filter(|e| e.weight().link.dst == at)
            .map(|e| (e.weight().link, e.id()))
            .collect();
        if let Some(&e) = self.links_by_src.get(&at) {
            edges.push((self.graph[e].link, e));
        }
        edges.sort();
        edges.dedup_by_key(|(_, e)| *e);
        edges.into_iter().map(|(_, e)| e).collect()
    }

    fn drop_links_at(&mut self, at: Endpoint, reason: &str, out: &mut Vec<TopologyEvent>) {
        for edge in self.links_at(at) {
            self.drop_link(edge, reason, out);
        }
    }

    fn drop_link(&mut self, edge: EdgeIndex, reason: &str, out: &mut Vec<TopologyEvent>) {
        if let Some(state) = self.graph.remove_edge(edge) {
            self.links_by_src.remove(&state.link.src);
            out.push(TopologyEvent::LinkRemoved { link: state.link, reason: reason.to_owned() });
        }
    }

    /// The weight a link `src -> dst` gets: the operator's, or derived from
    /// the slower of the two ports (a port of unknown speed does not count).
    fn weight_of(&self, src: Endpoint, dst: Endpoint) -> u32 {
        if let Some(&w) = self.weight_overrides.get(&(src, dst)) {
            return w;
        }
        let speed = |at| self.port(at).map_or(0, |p| p.curr_speed_kbps);
        let slower = [speed(src), speed(dst)].into_iter().filter(|&s| s > 0).min().unwrap_or(0);
        weight_for_speed(slower)
    }

    fn reweigh(&mut self, edge: EdgeIndex, out: &mut Vec<TopologyEvent>) {
        let link = self.graph[edge].link;
        let weight = self.weight_of(link.src, link.dst);
        if weight != link.weight {
            let link = &mut self.graph[edge].link;
            link.weight = weight;
            out.push(TopologyEvent::LinkChanged { link: *link });
        }
    }

    fn drop_hosts_at(&mut self, at: Endpoint, out: &mut Vec<TopologyEvent>) {
        for mac in self.hosts_at.remove(&at).unwrap_or_default() {
            self.drop_host(mac, out);
        }
    }

    fn drop_host(&mut self, mac: Mac, out: &mut Vec<TopologyEvent>) {
        let Some(host) = self.hosts.remove(&mac) else {
            return;
        };
        self.unindex_host_at(host.at, mac);
        for ip in &host.ips {
            if self.hosts_by_ip.get(ip) == Some(&mac) {
                self.hosts_by_ip.remove(ip);
            }
        }
        out.push(TopologyEvent::HostRemoved { mac });
    }

    fn unindex_host_at(&mut self, at: Endpoint, mac: Mac) {
        if let Some(macs) = self.hosts_at.get_mut(&at) {
            macs.remove(&mac);
            if macs.is_empty() {
                self.hosts_at.remove(&at);
            }
        }
    }
}

/// Whether an address can belong to one host.
fn is_host_ip(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{add, cable, ep, linear, port};
    use std::net::Ipv4Addr;

    const H1: Mac = [0x02, 0, 0, 0, 0x01, 0x01];
    const H2: Mac = [0x02, 0, 0, 0, 0x01, 0x02];

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)))
    }

    fn down(mut p: PortInfo) -> PortInfo {
        p.up = false;
        p
    }

    fn removed_links(events: &[TopologyEvent]) -> Vec<(Link, &str)> {
        events
            .iter()
            .filter_map(|e| match e {
                TopologyEvent::LinkRemoved { link, reason } => Some((*link, reason.as_str())),
                _ => None,
            })
            .collect()
    }

    /// Two switches, 1 and 2, cabled 1:2 <-> 2:2; port 1 of each is an edge port.
    fn pair() -> Topology {
        linear(2)
    }

    #[test]
    fn dpid_formats_as_16_hex_digits() {
        assert_eq!(fmt_dpid(1), "0000000000000001");
        assert_eq!(fmt_dpid(0xdead_beef), "00000000deadbeef");
    }

    #[test]
    fn parse_dpid_accepts_hex_0x_colons_and_decimal() {
        assert_eq!(parse_dpid("00000000000000ff"), Ok(255));
        assert_eq!(parse_dpid("0x1F"), Ok(31));
        assert_eq!(parse_dpid("00:00:00:00:00:00:01:00"), Ok(256));
        assert_eq!(parse_dpid("42"), Ok(42));
        assert_eq!(parse_dpid(&fmt_dpid(u64::MAX)), Ok(u64::MAX));
    }

    #[test]
    fn parse_dpid_rejects_garbage() {
        for bad in ["", "0x", "ff", "12ab", "0x10000000000000000", "1:2", "-1", "00000000000000zz"] {
            assert_eq!(parse_dpid(bad), Err(ParseError::Dpid(bad.into())), "{bad:?}");
        }
    }

    #[test]
    fn mac_round_trips_through_text() {
        let mac = [0xaa, 0xbb, 0x0c, 0xdd, 0xee, 0x0f];
        assert_eq!(fmt_mac(&mac), "aa:bb:0c:dd:ee:0f");
        assert_eq!(parse_mac("aa:bb:0c:dd:ee:0f"), Ok(mac));
        assert_eq!(parse_mac("AA-BB-C-DD-EE-F"), Ok(mac));
    }

    #[test]
    fn parse_mac_rejects_garbage() {
        for bad in
            ["", "aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:ff:00", "aa:bb:cc:dd:ee:fff", "aa:bb:cc:dd:ee:gg", "aa::cc:dd:ee:ff"]
        {
            assert!(parse_mac(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn weight_follows_port_speed() {
        assert_eq!(weight_for_speed(10_000_000), 1);
        assert_eq!(weight_for_speed(100_000_000), 1);
        assert_eq!(weight_for_speed(1_000_000), 10);
        assert_eq!(weight_for_speed(100_000), 100);
        assert_eq!(weight_for_speed(0), 1);
    }

    #[test]
    fn types_serialise_with_text_dpids_and_macs() {
        let host = Host { mac: H1, ips: ip(1).into_iter().collect(), at: ep(1, 3), last_seen_ms: 5 };
        let json = serde_json::to_value(&host).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "mac": "02:00:00:00:01:01",
                "ips": ["10.0.0.1"],
                "at": {"dpid": "0000000000000001", "port": 3},
                "last_seen_ms": 5
            })
        );
        let back: Host = serde_json::from_value(json).unwrap();
        assert_eq!(back, host);
        let sw = serde_json::to_value(pair().switch(2).unwrap()).unwrap();
        assert_eq!(sw["dpid"], "0000000000000002");
        assert_eq!(sw["ports"]["1"]["hw_addr"], "02:00:00:00:00:01");
    }

    #[test]
    fn events_serialise_with_a_type_tag() {
        let event = TopologyEvent::LinkRemoved {
            link: Link { src: ep(1, 2), dst: ep(2, 3), weight: 10 },
            reason: "aged out".into(),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "link_removed",
                "link": {
                    "src": {"dpid": "0000000000000001", "port": 2},
                    "dst": {"dpid": "0000000000000002", "port": 3},
                    "weight": 10
                },
                "reason": "aged out"
            })
        );
        assert_eq!(serde_json::from_value::<TopologyEvent>(json).unwrap(), event);
        let drained = serde_json::to_value(TopologyEvent::SwitchDrained { dpid: 16, drained: true }).unwrap();
        assert_eq!(drained, serde_json::json!({"type": "switch_drained", "dpid": "0000000000000010", "drained": true}));
    }

    #[test]
    fn every_event_deserialises_back() {
        let mut topo = pair();
        let mut events = topo.switches().map(|s| TopologyEvent::SwitchAdded { dpid: s.dpid }).collect::<Vec<_>>();
        events.extend(topo.learn_host(H1, ip(1), ep(1, 1), 0));
        events.extend(topo.learn_host(H1, ip(1), ep(2, 1), 0));
        events.extend(topo.learn_host(H1, ip(2), ep(2, 1), 0));
        events.extend(topo.set_drained(1, true));
        events.extend(topo.set_link_weight(ep(1, 3), ep(2, 2), 7));
        events.extend(topo.update_port(1, down(port(3))));
        events.extend(topo.remove_switch(2));
        let json = serde_json::to_string(&events).unwrap();
        assert_eq!(serde_json::from_str::<Vec<TopologyEvent>>(&json).unwrap(), events);
    }

    #[test]
    fn new_switch_announces_itself_and_its_ports() {
        let mut topo = Topology::new();
        let events = topo.add_switch(1, vec![port(1), port(2)]);
        assert_eq!(
            events,
            vec![
                TopologyEvent::SwitchAdded { dpid: 1 },
                TopologyEvent::PortAdded { dpid: 1, port: port(1) },
                TopologyEvent::PortAdded { dpid: 1, port: port(2) },
            ]
        );
        assert_eq!(topo.switch(1).unwrap().ports.len(), 2);
        assert!(!topo.switch(1).unwrap().drained);
    }

    #[test]
    fn readding_a_switch_replaces_its_ports() {
        let mut topo = pair();
        topo.learn_host(H1, None, ep(1, 1), 0);
        let mut faster = port(2);
        faster.curr_speed_kbps = 1_000_000;
        let events = topo.add_switch(1, vec![faster.clone(), port(3), port(4)]);
        assert_eq!(
            events,
            vec![
                TopologyEvent::HostRemoved { mac: H1 },
                TopologyEvent::PortRemoved { dpid: 1, port_no: 1 },
                TopologyEvent::PortChanged { dpid: 1, port: faster },
                TopologyEvent::PortAdded { dpid: 1, port: port(4) },
            ]
        );
        assert_eq!(topo.switch(1).unwrap().ports.keys().copied().collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(topo.links().count(), 2, "links at unchanged ports stay");
    }

    #[test]
    fn removing_a_switch_removes_its_links_and_hosts() {
        let mut topo = linear(3);
        topo.learn_host(H1, ip(1), ep(2, 1), 0);
        topo.learn_host(H2, ip(2), ep(1, 1), 0);
        let events = topo.remove_switch(2);
        let removed = removed_links(&events);
        assert_eq!(removed.len(), 4);
        assert!(removed.iter().all(|(l, why)| *why == "switch removed" && (l.src.dpid == 2 || l.dst.dpid == 2)));
        assert!(events.contains(&TopologyEvent::HostRemoved { mac: H1 }));
        assert_eq!(events.last(), Some(&TopologyEvent::SwitchRemoved { dpid: 2 }));
        assert_eq!(topo.links().count(), 0);
        assert!(topo.switch(2).is_none());
        assert!(topo.host(H1).is_none() && topo.host_by_ip(ip(1).unwrap()).is_none());
        assert!(topo.host(H2).is_some());
        assert!(topo.remove_switch(2).is_empty());
    }

    #[test]
    fn port_down_removes_its_links_at_once() {
        let mut topo = pair();
        let events = topo.update_port(1, down(port(3)));
        assert_eq!(events[0], TopologyEvent::PortChanged { dpid: 1, port: down(port(3)) });
        let removed = removed_links(&events);
        assert_eq!(removed.len(), 2, "both directions of the cable");
        assert!(removed.iter().all(|(_, why)| *why == "port down"));
        assert_eq!(topo.links().count(), 0);
        assert!(!topo.is_link_port(ep(2, 2)));
    }

    #[test]
    fn port_down_forgets_its_hosts() {
        let mut topo = pair();
        topo.learn_host(H1, None, ep(1, 1), 0);
        let events = topo.update_port(1, down(port(1)));
        assert!(events.contains(&TopologyEvent::HostRemoved { mac: H1 }));
    }

    #[test]
    fn unchanged_port_update_is_silent() {
        let mut topo = pair();
        assert!(topo.update_port(1, port(1)).is_empty());
        assert!(topo.update_port(9, port(1)).is_empty(), "unknown switch");
    }

    #[test]
    fn new_port_is_announced() {
        let mut topo = pair();
        assert_eq!(topo.update_port(1, port(7)), vec![TopologyEvent::PortAdded { dpid: 1, port: port(7) }]);
    }

    #[test]
    fn removing_a_port_removes_its_links_and_hosts() {
        let mut topo = pair();
        topo.learn_host(H1, None, ep(2, 1), 0);
        let events = topo.remove_port(1, 3);
        assert_eq!(removed_links(&events).len(), 2);
        assert!(removed_links(&events).iter().all(|(_, why)| *why == "port removed"));
        assert_eq!(events.last(), Some(&TopologyEvent::PortRemoved { dpid: 1, port_no: 3 }));
        assert!(topo.remove_port(2, 1).contains(&TopologyEvent::HostRemoved { mac: H1 }));
        assert!(topo.remove_port(2, 1).is_empty());
    }

    #[test]
    fn link_weight_comes_from_the_slower_port() {
        let mut topo = Topology::new();
        let mut slow = port(1);
        slow.curr_speed_kbps = 100_000;
        let mut unknown = port(1);
        unknown.curr_speed_kbps = 0;
        topo.add_switch(1, vec![slow]);
        topo.add_switch(2, vec![port(1)]);
        topo.add_switch(3, vec![unknown]);
        cable(&mut topo, ep(1, 1), ep(2, 1));
        assert_eq!(topo.link_from(ep(1, 1)).unwrap().weight, 100);
        assert_eq!(topo.link_from(ep(2, 1)).unwrap().weight, 100);
        topo.remove_link(ep(2, 1), ep(1, 1), "test");
        topo.link_seen(ep(2, 1), ep(3, 1), 0);
        assert_eq!(topo.link_from(ep(2, 1)).unwrap().weight, 1, "unknown speed does not count");
    }

    #[test]
    fn port_speed_change_reweighs_its_links() {
        let mut topo = pair();
        let mut slow = port(3);
        slow.curr_speed_kbps = 1_000_000;
        let events = topo.update_port(1, slow);
        let changed: Vec<Link> = events
            .iter()
            .filter_map(|e| match e {
                TopologyEvent::LinkChanged { link } => Some(*link),
                _ => None,
            })
            .collect();
        assert_eq!(changed.len(), 2);
        assert!(changed.iter().all(|l| l.weight == 10));
    }

    #[test]
    fn link_seen_adds_a_directed_link_once() {
        let mut topo = Topology::new();
        add(&mut topo, 1, 2);
        add(&mut topo, 2, 2);
        let events = topo.link_seen(ep(1, 1), ep(2, 1), 10);
        let link = Link { src: ep(1, 1), dst: ep(2, 1), weight: 1 };
        assert_eq!(events, vec![TopologyEvent::LinkAdded { link }]);
        assert!(topo.link_seen(ep(1, 1), ep(2, 1), 20).is_empty());
        assert_eq!(topo.links().copied().collect::<Vec<_>>(), vec![link]);
        assert_eq!(topo.link_from(ep(1, 1)), Some(link));
        assert_eq!(topo.link_from(ep(2, 1)), None, "the other direction is not known yet");
        assert!(topo.is_link_port(ep(1, 1)) && topo.is_link_port(ep(2, 1)));
        assert!(!topo.is_link_port(ep(1, 2)));
    }

    #[test]
    fn link_seen_between_unknown_ports_is_ignored() {
        let mut topo = pair();
        assert!(topo.link_seen(ep(1, 1), ep(9, 1), 0).is_empty());
        assert!(topo.link_seen(ep(1, 9), ep(2, 1), 0).is_empty());
        assert!(topo.link_seen(ep(1, 1), ep(1, 1), 0).is_empty());
        assert_eq!(topo.links().count(), 2);
    }

    #[test]
    fn link_seen_on_a_down_port_is_ignored() {
        let mut topo = pair();
        topo.update_port(2, down(port(1)));
        assert!(topo.link_seen(ep(1, 1), ep(2, 1), 0).is_empty());
    }

    #[test]
    fn link_from_a_port_replaces_its_old_peer() {
        let mut topo = linear(3);
        let events = topo.link_seen(ep(1, 3), ep(3, 1), 5);
        assert_eq!(removed_links(&events), vec![(Link { src: ep(1, 3), dst: ep(2, 2), weight: 1 }, "replaced")]);
        assert_eq!(topo.link_from(ep(1, 3)).unwrap().dst, ep(3, 1));
    }

    #[test]
    fn links_age_out() {
        let mut topo = pair();
        assert!(topo.expire_links(1_000, 1_000).is_empty(), "exactly max_age old is still alive");
        let events = topo.expire_links(1_001, 1_000);
        assert_eq!(removed_links(&events).len(), 2);
        assert!(removed_links(&events).iter().all(|(_, why)| *why == "aged out"));
        assert_eq!(topo.links().count(), 0);
    }

    #[test]
    fn refreshed_link_does_not_age_out() {
        let mut topo = pair();
        topo.link_seen(ep(1, 3), ep(2, 2), 900);
        let events = topo.expire_links(1_500, 1_000);
        assert_eq!(removed_links(&events), vec![(Link { src: ep(2, 2), dst: ep(1, 3), weight: 1 }, "aged out")]);
        assert!(topo.link_from(ep(1, 3)).is_some());
    }

    #[test]
    fn remove_link_removes_only_that_direction() {
        let mut topo = pair();
        assert!(topo.remove_link(ep(1, 3), ep(2, 3), "wrong dst").is_empty());
        let events = topo.remove_link(ep(1, 3), ep(2, 2), "operator");
        assert_eq!(removed_links(&events), vec![(Link { src: ep(1, 3), dst: ep(2, 2), weight: 1 }, "operator")]);
        assert!(topo.link_from(ep(2, 2)).is_some());
        assert!(topo.is_link_port(ep(1, 3)), "still the end of the reverse link");
    }

    #[test]
    fn links_are_sorted() {
        let mut topo = Topology::new();
        for d in [3, 1, 2] {
            add(&mut topo, d, 3);
        }
        cable(&mut topo, ep(3, 1), ep(2, 1));
        cable(&mut topo, ep(2, 2), ep(1, 1));
        let srcs: Vec<Endpoint> = topo.links().map(|l| l.src).collect();
        assert_eq!(srcs, vec![ep(1, 1), ep(2, 1), ep(2, 2), ep(3, 1)]);
        assert_eq!(topo.switches().map(|s| s.dpid).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn link_discovery_forgets_hosts_learned_at_fabric_ports() {
        let mut topo = Topology::new();
        add(&mut topo, 1, 2);
        add(&mut topo, 2, 2);
        // Before discovery, a frame forwarded by switch 2 looks like a host at 1:1.
        topo.learn_host(H1, ip(1), ep(1, 1), 0);
        let events = topo.link_seen(ep(2, 1), ep(1, 1), 1);
        assert_eq!(events.last(), Some(&TopologyEvent::HostRemoved { mac: H1 }));
        assert!(topo.host(H1).is_none() && topo.host_by_ip(ip(1).unwrap()).is_none());
    }

    #[test]
    fn host_is_learned_at_an_edge_port() {
        let mut topo = pair();
        let events = topo.learn_host(H1, ip(1), ep(1, 1), 7);
        let host = Host { mac: H1, ips: ip(1).into_iter().collect(), at: ep(1, 1), last_seen_ms: 7 };
        assert_eq!(events, vec![TopologyEvent::HostAdded { host: host.clone() }]);
        assert_eq!(topo.host(H1), Some(&host));
        assert_eq!(topo.host_by_ip(ip(1).unwrap()), Some(&host));
        assert_eq!(topo.hosts().count(), 1);
    }

    #[test]
    fn host_at_a_link_port_is_ignored() {
        let mut topo = pair();
        assert!(topo.learn_host(H1, ip(1), ep(1, 3), 0).is_empty());
        assert!(topo.host(H1).is_none());
    }

    #[test]
    fn multicast_and_zero_macs_are_not_hosts() {
        let mut topo = pair();
        assert!(topo.learn_host([0; 6], None, ep(1, 1), 0).is_empty());
        assert!(topo.learn_host([0xff; 6], None, ep(1, 1), 0).is_empty());
        assert!(topo.learn_host([0x01, 0x00, 0x5e, 0, 0, 1], None, ep(1, 1), 0).is_empty());
    }

    #[test]
    fn host_at_unknown_or_down_port_is_ignored() {
        let mut topo = pair();
        assert!(topo.learn_host(H1, None, ep(9, 1), 0).is_empty());
        assert!(topo.learn_host(H1, None, ep(1, 9), 0).is_empty());
        topo.update_port(1, down(port(1)));
        assert!(topo.learn_host(H1, None, ep(1, 1), 0).is_empty());
    }

    #[test]
    fn unusable_ip_is_not_recorded() {
        let mut topo = pair();
        topo.learn_host(H1, Some(Ipv4Addr::UNSPECIFIED.into()), ep(1, 1), 0);
        topo.learn_host(H1, Some(Ipv4Addr::BROADCAST.into()), ep(1, 1), 0);
        assert!(topo.host(H1).unwrap().ips.is_empty());
    }

    #[test]
    fn host_seen_at_new_port_is_a_move() {
        let mut topo = pair();
        topo.learn_host(H1, ip(1), ep(1, 1), 0);
        let events = topo.learn_host(H1, None, ep(2, 1), 5);
        let host = Host { mac: H1, ips: ip(1).into_iter().collect(), at: ep(2, 1), last_seen_ms: 5 };
        assert_eq!(events, vec![TopologyEvent::HostMoved { host: host.clone(), from: ep(1, 1) }]);
        assert_eq!(topo.host(H1), Some(&host));
        // The old port no longer holds it: taking that port down forgets nothing.
        assert!(!topo.update_port(1, down(port(1))).contains(&TopologyEvent::HostRemoved { mac: H1 }));
    }

    #[test]
    fn host_refresh_is_silent_but_new_ip_is_a_change() {
        let mut topo = pair();
        topo.learn_host(H1, ip(1), ep(1, 1), 0);
        assert!(topo.learn_host(H1, ip(1), ep(1, 1), 9).is_empty());
        assert_eq!(topo.host(H1).unwrap().last_seen_ms, 9);
        let events = topo.learn_host(H1, ip(2), ep(1, 1), 10);
        let host = topo.host(H1).unwrap().clone();
        assert_eq!(events, vec![TopologyEvent::HostChanged { host: host.clone() }]);
        assert_eq!(host.ips, [ip(1).unwrap(), ip(2).unwrap()].into_iter().collect());
        assert_eq!(topo.host_by_ip(ip(2).unwrap()).map(|h| h.mac), Some(H1));
    }

    #[test]
    fn ip_moves_to_the_mac_that_last_claimed_it() {
        let mut topo = pair();
        topo.learn_host(H1, ip(1), ep(1, 1), 0);
        let events = topo.learn_host(H2, ip(1), ep(2, 1), 1);
        assert_eq!(events.len(), 2);
        assert!(matches!(&events[0], TopologyEvent::HostChanged { host } if host.mac == H1 && host.ips.is_empty()));
        assert!(matches!(&events[1], TopologyEvent::HostAdded { host } if host.mac == H2));
        assert_eq!(topo.host_by_ip(ip(1).unwrap()).map(|h| h.mac), Some(H2));
        // Forgetting the old owner does not lose the address's new owner.
        topo.remove_host(H1);
        assert_eq!(topo.host_by_ip(ip(1).unwrap()).map(|h| h.mac), Some(H2));
    }

    #[test]
    fn hosts_age_out() {
        let mut topo = pair();
        topo.learn_host(H1, ip(1), ep(1, 1), 0);
        topo.learn_host(H2, ip(2), ep(2, 1), 500);
        assert_eq!(topo.expire_hosts(1_200, 1_000), vec![TopologyEvent::HostRemoved { mac: H1 }]);
        assert!(topo.host_by_ip(ip(1).unwrap()).is_none());
        assert!(topo.host(H2).is_some());
    }

    #[test]
    fn drain_is_announced_once_and_survives_reconnect() {
        let mut topo = pair();
        assert_eq!(topo.set_drained(1, true), vec![TopologyEvent::SwitchDrained { dpid: 1, drained: true }]);
        assert!(topo.set_drained(1, true).is_empty());
        assert!(topo.switch(1).unwrap().drained);
        topo.remove_switch(1);
        add(&mut topo, 1, 3);
        assert!(topo.switch(1).unwrap().drained);
        assert_eq!(topo.set_drained(1, false), vec![TopologyEvent::SwitchDrained { dpid: 1, drained: false }]);
        assert!(topo.set_drained(7, true).is_empty(), "unknown switch: remembered, not announced");
        add(&mut topo, 7, 1);
        assert!(topo.switch(7).unwrap().drained);
    }

    #[test]
    fn link_weight_override_survives_a_flap() {
        let mut topo = pair();
        let events = topo.set_link_weight(ep(1, 3), ep(2, 2), 50);
        assert_eq!(
            events,
            vec![TopologyEvent::LinkChanged { link: Link { src: ep(1, 3), dst: ep(2, 2), weight: 50 } }]
        );
        assert!(topo.set_link_weight(ep(1, 3), ep(2, 2), 50).is_empty());
        assert_eq!(topo.link_from(ep(2, 2)).unwrap().weight, 1, "only that direction");
        topo.update_port(1, down(port(3)));
        topo.update_port(1, port(3));
        topo.link_seen(ep(1, 3), ep(2, 2), 1);
        assert_eq!(topo.link_from(ep(1, 3)).unwrap().weight, 50);
    }

    #[test]
    fn weight_zero_restores_the_default() {
        let mut topo = pair();
        topo.set_link_weight(ep(1, 3), ep(2, 2), 50);
        let events = topo.set_link_weight(ep(1, 3), ep(2, 2), 0);
        assert_eq!(events, vec![TopologyEvent::LinkChanged { link: Link { src: ep(1, 3), dst: ep(2, 2), weight: 1 } }]);
    }

    #[test]
    fn subscribers_receive_every_event() {
        let mut topo = Topology::new();
        let mut rx = topo.subscribe();
        let mut sent = topo.add_switch(1, vec![port(1)]);
        sent.extend(topo.learn_host(H1, None, ep(1, 1), 0));
        sent.extend(topo.remove_switch(1));
        let mut received = Vec::new();
        while let Ok(event) = rx.try_recv() {
            received.push(event);
        }
        assert_eq!(received, sent);
    }

    #[test]
    fn mutations_without_subscribers_still_return_events() {
        let mut topo = Topology::new();
        drop(topo.subscribe());
        assert_eq!(topo.add_switch(1, vec![]), vec![TopologyEvent::SwitchAdded { dpid: 1 }]);
    }
}
