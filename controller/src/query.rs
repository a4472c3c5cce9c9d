//! Topology queries shared by the REST ([`crate::api`]) and gRPC ([`crate::grpc`]) APIs, so both
//! answer the same question the same way: argument parsing, switches as the topology and the
//! session registry see them together, path queries (a MAC, an IP or a dpid resolved to a place)
//! and drain.
//!
//! Errors are [`QueryError`]s, which each API maps to its own status (400/404,
//! INVALID_ARGUMENT/NOT_FOUND) with the message unchanged.

use std::net::IpAddr;

use tenet_topology::{fmt_dpid, parse_dpid, parse_mac, Dpid, Host, Path, Switch, Topology};

use crate::network::Network;
use crate::session::{Registry, SwitchHandle};
use crate::wire::of13::role;
use crate::wire::OFP13;

/// Why a query has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A malformed argument (REST 400, gRPC INVALID_ARGUMENT).
    #[error("{0}")]
    Invalid(String),
    /// An unknown switch or host, or no path (REST 404, gRPC NOT_FOUND).
    #[error("{0}")]
    NotFound(String),
}

/// Parses a datapath id given as an argument.
pub fn dpid_arg(text: &str) -> Result<Dpid, QueryError> {
    parse_dpid(text).map_err(|e| QueryError::Invalid(format!("bad datapath id {text:?}: {e}")))
}

/// The name of a controller role (`of13::role`): "master", "slave" or "equal".
pub fn role_name(r: u32) -> &'static str {
    match r {
        role::MASTER => "master",
        role::SLAVE => "slave",
        _ => "equal",
    }
}

/// The name of a negotiated OpenFlow version: "1.3" or "1.0".
pub fn version_name(version: u8) -> &'static str {
    if version == OFP13 {
        "1.3"
    } else {
        "1.0"
    }
}

/// A switch as the topology (ports, drain state) and the session registry (connection) know it.
/// At least one of the two is present.
#[derive(Clone)]
pub struct SwitchView {
    /// Datapath id.
    pub dpid: Dpid,
    /// The topology's switch: absent until the switch has described its ports.
    pub switch: Option<Switch>,
    /// Its session: absent when not connected (a drained switch stays in the topology's drain
    /// set across reconnects, but its ports go when it disconnects).
    pub handle: Option<SwitchHandle>,
}

impl SwitchView {
    fn of(topo: &Topology, dpid: Dpid, handle: Option<SwitchHandle>) -> Self {
        SwitchView { dpid, switch: topo.switch(dpid).cloned(), handle }
    }

    /// Whether the switch is drained.
    pub fn drained(&self) -> bool {
        self.switch.as_ref().is_some_and(|s| s.drained)
    }

    /// The role the switch last confirmed for us (`of13::role`; EQUAL when not connected).
    pub fn role(&self) -> u32 {
        self.handle.as_ref().map_or(role::EQUAL, SwitchHandle::role)
    }
}

/// Every switch, connected or known to the topology, by datapath id.
pub fn switches(topo: &Topology, registry: &Registry) -> Vec<SwitchView> {
    let mut handles = registry.switches();
    let mut dpids: Vec<Dpid> = topo.switches().map(|s| s.dpid).chain(handles.iter().map(|h| h.info.dpid)).collect();
    dpids.sort_unstable();
    dpids.dedup();
    dpids
        .into_iter()
        .map(|d| {
            let handle = handles.iter().position(|h| h.info.dpid == d).map(|i| handles.swap_remove(i));
            SwitchView::of(topo, d, handle)
        })
        .collect()
}

/// One switch, connected or known to the topology.
pub fn switch(topo: &Topology, registry: &Registry, dpid: Dpid) -> Result<SwitchView, QueryError> {
    let handle = registry.get(dpid);
    if topo.switch(dpid).is_none() && handle.is_none() {
        return Err(QueryError::NotFound(format!("no switch {}", fmt_dpid(dpid))));
    }
    Ok(SwitchView::of(topo, dpid, handle))
}

/// Drains (`drained`) or undrains a switch the topology knows; returns it as it is now.
pub fn set_drained(
    network: &Network,
    registry: &Registry,
    dpid: Dpid,
    drained: bool,
) -> Result<SwitchView, QueryError> {
    let events = {
        let mut topo = network.topology();
        if topo.switch(dpid).is_none() {
            return Err(QueryError::NotFound(format!("no switch {}", fmt_dpid(dpid))));
        }
        topo.set_drained(dpid, drained)
    };
    network.note(&events);
    tracing::info!(dpid = %fmt_dpid(dpid), drained, "drain state set through the API");
    let topo = network.topology();
    Ok(SwitchView::of(&topo, dpid, registry.get(dpid)))
}

/// A path endpoint named in a query.
pub enum Place {
    /// A host: the path enters or leaves at its port.
    Host(Host),
    /// A switch.
    Switch(Dpid),
}

impl Place {
    /// The switch of the place.
    pub fn dpid(&self) -> Dpid {
        match self {
            Place::Host(h) => h.at.dpid,
            Place::Switch(d) => *d,
        }
    }
}

/// Resolves a MAC, an IP or a dpid. MACs and IPs name hosts; anything else must be a dpid.
/// `which` names the argument in messages ("src", "dst").
pub fn resolve(topo: &Topology, text: &str, which: &str) -> Result<Place, QueryError> {
    if let Ok(mac) = parse_mac(text) {
        return topo
            .host(mac)
            .cloned()
            .map(Place::Host)
            .ok_or_else(|| QueryError::NotFound(format!("{which}: no host with MAC {text}")));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return topo
            .host_by_ip(ip)
            .cloned()
            .map(Place::Host)
            .ok_or_else(|| QueryError::NotFound(format!("{which}: no host with IP {text}")));
    }
    let dpid = parse_dpid(text).map_err(|_| {
        QueryError::Invalid(format!("{which}={text:?} is neither a MAC, an IP address nor a datapath id"))
    })?;
    topo.switch(dpid)
        .map(|_| Place::Switch(dpid))
        .ok_or_else(|| QueryError::NotFound(format!("{which}: no switch {text}")))
}

/// Paths from `src` to `dst` (each a host MAC or IP, or a dpid). `mode` is "shortest" (the
/// default), "ecmp" or "disjoint"; `k` (default 2, at most 64) caps ECMP and disjoint paths.
/// Checks `k`, then the ends, then the mode; no path at all is [`QueryError::NotFound`].
pub fn paths(
    topo: &Topology,
    src: &str,
    dst: &str,
    mode: Option<&str>,
    k: Option<usize>,
) -> Result<Vec<Path>, QueryError> {
    let k = k.unwrap_or(2);
    if k == 0 || k > 64 {
        return Err(QueryError::Invalid("k must be between 1 and 64".into()));
    }
    let (a, b) = (resolve(topo, src, "src")?, resolve(topo, dst, "dst")?);
    let (sa, sb) = (a.dpid(), b.dpid());
    let mut found: Vec<Path> = match mode.unwrap_or("shortest") {
        "shortest" => match (&a, &b) {
            (Place::Host(ha), Place::Host(hb)) => topo.host_path(ha, hb).into_iter().collect(),
            _ => topo.shortest_path(sa, sb).into_iter().collect(),
        },
        "ecmp" => topo.ecmp_paths(sa, sb, k),
        "disjoint" => topo.disjoint_paths(sa, sb, k),
        other => return Err(QueryError::Invalid(format!("unknown mode {other:?}: shortest, ecmp or disjoint"))),
    };
    // Host ends: the path enters at the source host's port and leaves at the destination's.
    for p in &mut found {
        attach_hosts(p, &a, &b);
    }
    if found.is_empty() {
        return Err(QueryError::NotFound(format!("no path from {src} to {dst}")));
    }
    Ok(found)
}

fn attach_hosts(p: &mut Path, a: &Place, b: &Place) {
    if let (Some(first), Place::Host(h)) = (p.hops.first_mut(), a) {
        first.in_port = Some(h.at.port);
    }
    if let (Some(last), Place::Host(h)) = (p.hops.last_mut(), b) {
        last.out_port = Some(h.at.port);
    }
}
