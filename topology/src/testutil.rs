//! Topologies for tests: linear, ring and a k=4 fat-tree.

use crate::{Dpid, Endpoint, PortInfo, PortNo, Topology};

/// An up 10 Gb/s port.
pub fn port(port_no: PortNo) -> PortInfo {
    PortInfo {
        port_no,
        name: format!("p{port_no}"),
        hw_addr: [0x02, 0, 0, 0, (port_no >> 8) as u8, port_no as u8],
        up: true,
        curr_speed_kbps: 10_000_000,
    }
}

/// Port `port` of switch `dpid`.
pub fn ep(dpid: Dpid, port: PortNo) -> Endpoint {
    Endpoint::new(dpid, port)
}

/// Adds switch `dpid` with ports 1..=`ports`.
pub fn add(topo: &mut Topology, dpid: Dpid, ports: PortNo) {
    topo.add_switch(dpid, (1..=ports).map(port).collect());
}

/// Discovers both directions of the cable between `a` and `b` at time 0.
pub fn cable(topo: &mut Topology, a: Endpoint, b: Endpoint) {
    topo.link_seen(a, b, 0);
    topo.link_seen(b, a, 0);
}

/// Switches 1..=n in a line; port 1 is for hosts, port 2 faces the previous
/// switch, port 3 the next.
pub fn linear(n: Dpid) -> Topology {
    let mut topo = Topology::new();
    for d in 1..=n {
        add(&mut topo, d, 3);
    }
    for d in 1..n {
        cable(&mut topo, ep(d, 3), ep(d + 1, 2));
    }
    topo
}

/// [`linear`] with the last switch cabled back to the first.
pub fn ring(n: Dpid) -> Topology {
    let mut topo = linear(n);
    cable(&mut topo, ep(n, 3), ep(1, 2));
    topo
}

/// A k=4 fat-tree: 4 core, 8 aggregation, 8 edge switches, 4 ports each.
pub struct FatTree {
    pub topo: Topology,
    pub core: Vec<Dpid>,
    /// Per pod, its two aggregation switches.
    pub agg: Vec<Vec<Dpid>>,
    /// Per pod, its two edge switches (ports 1 and 2 are for hosts).
    pub edge: Vec<Vec<Dpid>>,
}

pub fn fat_tree_k4() -> FatTree {
    let core_of = |c: u64| 0x100 + c;
    let agg_of = |pod: u64, i: u64| 0x200 + 2 * pod + i;
    let edge_of = |pod: u64, i: u64| 0x300 + 2 * pod + i;
    let core: Vec<Dpid> = (0..4).map(core_of).collect();
    let agg: Vec<Vec<Dpid>> = (0..4).map(|p| (0..2).map(|i| agg_of(p, i)).collect()).collect();
    let edge: Vec<Vec<Dpid>> = (0..4).map(|p| (0..2).map(|i| edge_of(p, i)).collect()).collect();
    let mut topo = Topology::new();
    for &d in core.iter().chain(agg.iter().flatten()).chain(edge.iter().flatten()) {
        add(&mut topo, d, 4);
    }
    let port = |n: u64| n as PortNo;
    for p in 0..4 {
        for i in 0..2 {
            for j in 0..2 {
                // edge(p, i) port 3+j <-> agg(p, j) port 1+i
                cable(&mut topo, ep(edge_of(p, i), port(3 + j)), ep(agg_of(p, j), port(1 + i)));
                // agg(p, i) port 3+j <-> core(2i+j) port 1+p
                cable(&mut topo, ep(agg_of(p, i), port(3 + j)), ep(core_of(2 * i + j), port(1 + p)));
            }
        }
    }
    FatTree { topo, core, agg, edge }
}
