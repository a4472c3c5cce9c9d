//! Paths between switches and hosts, and the spanning tree for flooding.
//!
//! Costs are compared lexicographically: first the number of drained switches
//! a path passes through (not counting its ends), then the sum of its link
//! weights. So drained switches are avoided whenever another path exists, and
//! used only when they are the only way. [`Path::cost`] reports the weight sum.
//!
//! Every result is deterministic: it depends on the topology's content, never
//! on the order in which it was learned.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::ops::Add;

use petgraph::stable_graph::NodeIndex;
use petgraph::visit::{EdgeRef, NodeIndexable};
use petgraph::Direction;
use serde::{Deserialize, Serialize};

use crate::model::{dpid_serde, Dpid, Endpoint, Host, Link, LinkState, PortNo, SpanningTree, Topology, OFPP_MAX};

/// One switch on a path, with the ports a packet enters and leaves by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Hop {
    /// The switch.
    #[serde(with = "dpid_serde")]
    pub dpid: Dpid,
    /// Port the packet enters by: `None` on the first switch of a path
    /// between switches.
    pub in_port: Option<PortNo>,
    /// Port the packet leaves by: `None` on the last switch of a path
    /// between switches.
    pub out_port: Option<PortNo>,
}

/// A path through the fabric, first switch first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Path {
    /// The switches in order.
    pub hops: Vec<Hop>,
    /// Sum of the weights of its links.
    pub cost: u64,
}

impl Path {
    /// The path from a switch to itself.
    fn local(dpid: Dpid) -> Self {
        Self { hops: vec![Hop { dpid, in_port: None, out_port: None }], cost: 0 }
    }

    /// The path starting at `src` along `links` (each starting where the
    /// previous one ends).
    fn along(src: Dpid, links: &[Link]) -> Self {
        let mut hops = Vec::with_capacity(links.len() + 1);
        let mut hop = Hop { dpid: src, in_port: None, out_port: None };
        for link in links {
            hop.out_port = Some(link.src.port);
            hops.push(hop);
            hop = Hop { dpid: link.dst.dpid, in_port: Some(link.dst.port), out_port: None };
        }
        hops.push(hop);
        Self { hops, cost: links.iter().map(|l| u64::from(l.weight)).sum() }
    }

    /// The switches on the path, in order.
    pub fn dpids(&self) -> impl Iterator<Item = Dpid> + '_ {
        self.hops.iter().map(|h| h.dpid)
    }
}

/// Path cost: drained switches passed through, then weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Cost {
    drained: u32,
    weight: u64,
}

impl Cost {
    const ZERO: Cost = Cost { drained: 0, weight: 0 };
}

impl Add for Cost {
    type Output = Cost;
    fn add(self, rhs: Cost) -> Cost {
        Cost { drained: self.drained + rhs.drained, weight: self.weight + rhs.weight }
    }
}

impl Topology {
    /// Cost of taking `state`'s link towards `to` on a path from `src` to
    /// `dst`: its weight, plus a drained transit when `to` is drained and not
    /// an end of the path.
    fn step(&self, state: &LinkState, to: NodeIndex, src: NodeIndex, dst: NodeIndex) -> Cost {
        let drained = to != src && to != dst && self.graph[to].drained;
        Cost { drained: u32::from(drained), weight: u64::from(state.link.weight) }
    }

    /// Dijkstra from `src`, stopping once `dst` is settled. Every node whose
    /// distance is below `dst`'s is final, which is all the shortest-path
    /// DAG towards `dst` needs (weights are at least 1).
    fn distances(&self, src: NodeIndex, dst: NodeIndex) -> Vec<Option<Cost>> {
        let mut dist = vec![None; self.graph.node_bound()];
        let mut heap = BinaryHeap::new();
        dist[src.index()] = Some(Cost::ZERO);
        heap.push(Reverse((Cost::ZERO, src)));
        while let Some(Reverse((d, u))) = heap.pop() {
            if dist[u.index()].is_some_and(|best| best < d) {
                continue;
            }
            if u == dst {
                break;
            }
            for e in self.graph.edges(u) {
                let v = e.target();
                let c = d + self.step(e.weight(), v, src, dst);
                if dist[v.index()].map_or(true, |best| c < best) {
                    dist[v.index()] = Some(c);
                    heap.push(Reverse((c, v)));
                }
            }
        }
        dist
    }

    /// The cheapest path from switch `src` to switch `dst` (see the module
    /// doc for how drained switches count). Among equal-cost paths, the first
    /// of [`Topology::ecmp_paths`]. A switch's path to itself is one hop with
    /// no ports.
    pub fn shortest_path(&self, src: Dpid, dst: Dpid) -> Option<Path> {
        self.ecmp_paths(src, dst, 1).pop()
    }

    /// All cheapest paths from `src` to `dst`, at most `max` of them, in
    /// order of their out ports hop by hop (so the same topology always gives
    /// the same list). Enumeration stops at `max`, so a topology with very
    /// many equal paths costs only what is asked for.
    pub fn ecmp_paths(&self, src: Dpid, dst: Dpid, max: usize) -> Vec<Path> {
        let (Some(&s), Some(&t)) = (self.nodes.get(&src), self.nodes.get(&dst)) else {
            return Vec::new();
        };
        if max == 0 {
            return Vec::new();
        }
        if s == t {
            return vec![Path::local(src)];
        }
        let dist = self.distances(s, t);
        let Some(dist_t) = dist[t.index()] else {
            return Vec::new();
        };
        // A link u -> v is on some cheapest path when it is tight.
        let tight = |state: &LinkState, u: NodeIndex, v: NodeIndex| match (dist[u.index()], dist[v.index()]) {
            (Some(du), Some(dv)) => du + self.step(state, v, s, t) == dv && dv <= dist_t,
            _ => false,
        };
        // Nodes from which a tight path leads to dst.
        let mut to_dst = vec![false; dist.len()];
        to_dst[t.index()] = true;
        let mut stack = vec![t];
        while let Some(v) = stack.pop() {
            for e in self.graph.edges_directed(v, Direction::Incoming) {
                let u = e.source();
                if !to_dst[u.index()] && tight(e.weight(), u, v) {
                    to_dst[u.index()] = true;
                    stack.push(u);
                }
            }
        }
        let next = |u: NodeIndex| {
            let mut links: Vec<(Link, NodeIndex)> = self
                .graph
                .edges(u)
                .filter(|e| to_dst[e.target().index()] && tight(e.weight(), u, e.target()))
                .map(|e| (e.weight().link, e.target()))
                .collect();
            links.sort();
            links
        };
        // Depth-first over the tight DAG; every branch reaches dst.
        let mut paths = Vec::new();
        let mut prefix: Vec<Link> = Vec::new();
        let mut frames = vec![(next(s), 0usize)];
        while let Some((choices, i)) = frames.last_mut() {
            let Some(&(link, v)) = choices.get(*i) else {
                frames.pop();
                prefix.pop();
                continue;
            };
            *i += 1;
            prefix.push(link);
            if v == t {
                paths.push(Path::along(src, &prefix));
                if paths.len() == max {
                    break;
                }
                prefix.pop();
            } else {
                frames.push((next(v), 0));
            }
        }
        paths
    }

    /// Up to `k` paths from `src` to `dst` that share no cable: a path using
    /// a -> b excludes b -> a for the others too. Exact, not greedy: a
    /// minimum-cost flow of `k` units (successive shortest paths with
    /// potentials, Suurballe's method generalised to any `k`), so it finds
    /// the disjoint paths that taking the shortest path first would block,
    /// and their total cost is the least possible. Cheapest path first.
    pub fn disjoint_paths(&self, src: Dpid, dst: Dpid, k: usize) -> Vec<Path> {
        let (Some(&s), Some(&t)) = (self.nodes.get(&src), self.nodes.get(&dst)) else {
            return Vec::new();
        };
        if k == 0 {
            return Vec::new();
        }
        if s == t {
            return vec![Path::local(src)];
        }
        let mut net = FlowNet::new(self, s, t);
        let units = net.augment(k);
        net.cancel_opposite_flows();
        let mut paths: Vec<Path> = (0..units).filter_map(|_| net.take_path()).map(|l| Path::along(src, &l)).collect();
        paths.sort_by(|a, b| (a.cost, &a.hops).cmp(&(b.cost, &b.hops)));
        paths
    }

    /// The path between two hosts: the first hop enters at `a`'s port, the
    /// last leaves at `b`'s. Hosts on one switch give one hop.
    pub fn host_path(&self, a: &Host, b: &Host) -> Option<Path> {
        let mut path = self.shortest_path(a.at.dpid, b.at.dpid)?;
        path.hops.first_mut()?.in_port = Some(a.at.port);
        path.hops.last_mut()?.out_port = Some(b.at.port);
        Some(path)
    }

    /// For every switch, its link ports that belong to the spanning forest:
    /// Prim's algorithm from the lowest dpid of each component, over cables
    /// known in both directions, preferring cables that touch no drained
    /// switch, then low weight (the heavier direction counts). Flooding out
    /// of these ports and of edge ports never loops. Cached until the fabric
    /// changes.
    pub fn spanning_tree(&self) -> &BTreeMap<Dpid, BTreeSet<PortNo>> {
        self.tree.get_or_init(|| self.compute_spanning_tree())
    }

    fn compute_spanning_tree(&self) -> SpanningTree {
        // Order key of a cable: drained ends, weight, then its ends for
        // determinism.
        type Key = (u8, u32, Endpoint, Endpoint);
        let mut cables: BTreeMap<Dpid, Vec<Key>> = BTreeMap::new();
        for link in self.links() {
            let Some(back) = self.link_from(link.dst).filter(|b| b.dst == link.src) else {
                continue;
            };
            if link.src.dpid == link.dst.dpid {
                continue;
            }
            let drained = [link.src.dpid, link.dst.dpid].iter().filter(|&&d| self.is_drained(d)).count() as u8;
            let weight = link.weight.max(back.weight);
            // Each direction is listed at its sending switch.
            cables.entry(link.src.dpid).or_default().push((drained, weight, link.src, link.dst));
        }
        let mut tree: SpanningTree = self.nodes.keys().map(|&d| (d, BTreeSet::new())).collect();
        let mut reached = BTreeSet::new();
        for &root in self.nodes.keys() {
            if !reached.insert(root) {
                continue;
            }
            let mut heap: BinaryHeap<Reverse<Key>> =
                cables.get(&root).into_iter().flatten().copied().map(Reverse).collect();
            while let Some(Reverse((_, _, from, to))) = heap.pop() {
                if !reached.insert(to.dpid) {
                    continue;
                }
                tree.entry(from.dpid).or_default().insert(from.port);
                tree.entry(to.dpid).or_default().insert(to.port);
                heap.extend(cables.get(&to.dpid).into_iter().flatten().copied().map(Reverse));
            }
        }
        tree
    }

    fn is_drained(&self, dpid: Dpid) -> bool {
        self.switch(dpid).is_some_and(|s| s.drained)
    }

    /// Ports of `dpid` a packet that came in at `in_port` is flooded to: its
    /// spanning-tree link ports and its edge ports (up, not a link port, not
    /// an OpenFlow reserved port), minus `in_port`, sorted. Empty when
    /// `in_port` is a link port outside the tree: that copy went around a
    /// loop and is dropped.
    pub fn flood_ports(&self, dpid: Dpid, in_port: PortNo) -> Vec<PortNo> {
        let Some(sw) = self.switch(dpid) else {
            return Vec::new();
        };
        let empty = BTreeSet::new();
        let tree = self.spanning_tree().get(&dpid).unwrap_or(&empty);
        if !tree.contains(&in_port) && self.is_link_port(Endpoint::new(dpid, in_port)) {
            return Vec::new();
        }
        sw.ports
            .values()
            .filter(|p| p.port_no != in_port && p.port_no < OFPP_MAX && p.up)
            .filter(|p| tree.contains(&p.port_no) || !self.is_link_port(Endpoint::new(dpid, p.port_no)))
            .map(|p| p.port_no)
            .collect()
    }
}

/// Residual network for [`Topology::disjoint_paths`]: one arc per link with
/// capacity 1, each paired with its reverse residual arc (index ^ 1). Nodes
/// are numbered in dpid order and arcs added in link order, so ties break
/// the same way for the same topology.
struct FlowNet {
    /// Per node, its arcs (forward and residual), in insertion order.
    out: Vec<Vec<usize>>,
    arcs: Vec<Arc>,
    /// Forward arc of the link leaving each sending port.
    by_src: BTreeMap<Endpoint, usize>,
    src: usize,
    dst: usize,
}

struct Arc {
    to: usize,
    cost: i128,
    cap: u8,
    /// The link, on forward arcs.
    link: Option<Link>,
}

/// Cost of one drained transit: more than any sum of weights.
const DRAINED_PENALTY: i128 = 1 << 64;

impl FlowNet {
    fn new(topo: &Topology, s: NodeIndex, t: NodeIndex) -> Self {
        let mut compact = vec![usize::MAX; topo.graph.node_bound()];
        for (i, &n) in topo.nodes.values().enumerate() {
            compact[n.index()] = i;
        }
        let mut net = FlowNet {
            out: vec![Vec::new(); topo.nodes.len()],
            arcs: Vec::new(),
            by_src: BTreeMap::new(),
            src: compact[s.index()],
            dst: compact[t.index()],
        };
        for (&src_ep, &e) in &topo.links_by_src {
            let Some((u, v)) = topo.graph.edge_endpoints(e) else { continue };
            let state = &topo.graph[e];
            let step = topo.step(state, v, s, t);
            let cost = i128::from(step.weight) + i128::from(step.drained) * DRAINED_PENALTY;
            let (a, b) = (compact[u.index()], compact[v.index()]);
            net.by_src.insert(src_ep, net.arcs.len());
            net.out[a].push(net.arcs.len());
            net.arcs.push(Arc { to: b, cost, cap: 1, link: Some(state.link) });
            net.out[b].push(net.arcs.len());
            net.arcs.push(Arc { to: a, cost: -cost, cap: 0, link: None });
        }
        net
    }

    /// Pushes up to `k` units from src to dst along cheapest augmenting
    /// paths; returns how many went through.
    fn augment(&mut self, k: usize) -> usize {
        let n = self.out.len();
        // All costs start non-negative, so zero potentials are feasible.
        let mut potential = vec![0i128; n];
        for unit in 0..k {
            let mut dist: Vec<Option<i128>> = vec![None; n];
            let mut via = vec![usize::MAX; n];
            let mut heap = BinaryHeap::new();
            dist[self.src] = Some(0);
            heap.push(Reverse((0i128, self.src)));
            while let Some(Reverse((d, u))) = heap.pop() {
                if dist[u].is_some_and(|best| best < d) {
                    continue;
                }
                for &a in &self.out[u] {
                    let arc = &self.arcs[a];
                    if arc.cap == 0 {
                        continue;
                    }
                    // Reduced cost, non-negative thanks to the potentials.
                    let c = d + arc.cost + potential[u] - potential[arc.to];
                    if dist[arc.to].map_or(true, |best| c < best) {
                        dist[arc.to] = Some(c);
                        via[arc.to] = a;
                        heap.push(Reverse((c, arc.to)));
                    }
                }
            }
            if dist[self.dst].is_none() {
                return unit;
            }
            // Nodes unreachable now stay unreachable: new residual arcs only
            // join nodes on the augmenting path.
            for (p, d) in potential.iter_mut().zip(&dist) {
                if let Some(d) = d {
                    *p += d;
                }
            }
            let mut v = self.dst;
            while v != self.src {
                let a = via[v];
                self.arcs[a].cap -= 1;
                self.arcs[a ^ 1].cap += 1;
                v = self.arcs[a ^ 1].to;
            }
        }
        k
    }

    fn flows(&self, arc: usize) -> bool {
        self.arcs[arc].link.is_some() && self.arcs[arc].cap == 0
    }

    /// A minimum-cost flow never carries both directions of a cable (undoing
    /// both would be cheaper); cancel any such pair anyway, so the paths
    /// share no cable by construction.
    fn cancel_opposite_flows(&mut self) {
        for a in (0..self.arcs.len()).step_by(2) {
            let Some(link) = self.arcs[a].link else { continue };
            let Some(&b) = self.by_src.get(&link.dst) else { continue };
            let back = self.arcs[b].link.is_some_and(|l| l.dst == link.src);
            if back && a != b && self.flows(a) && self.flows(b) {
                for arc in [a, b] {
                    self.arcs[arc].cap = 1;
                    self.arcs[arc ^ 1].cap = 0;
                }
            }
        }
    }

    /// Follows flow-carrying arcs from src to dst, using them up.
    fn take_path(&mut self) -> Option<Vec<Link>> {
        let mut links = Vec::new();
        let mut u = self.src;
        while u != self.dst {
            // A flow is acyclic here, so a path never exceeds the arc count.
            if links.len() > self.arcs.len() {
                return None;
            }
            let &a = self.out[u].iter().find(|&&a| self.flows(a))?;
            links.push(self.arcs[a].link?);
            self.arcs[a].cap = 1; // used up
            u = self.arcs[a].to;
        }
        Some(links)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{add, cable, ep, fat_tree_k4, linear, ring};
    use std::collections::VecDeque;

    fn dpids(path: &Path) -> Vec<Dpid> {
        path.dpids().collect()
    }

    /// Cables a path uses, each as its lower endpoint first.
    fn cables(path: &Path) -> Vec<(Endpoint, Endpoint)> {
        path.hops
            .windows(2)
            .map(|w| {
                let a = ep(w[0].dpid, w[0].out_port.unwrap());
                let b = ep(w[1].dpid, w[1].in_port.unwrap());
                (a.min(b), a.max(b))
            })
            .collect()
    }

    /// Checks that every hop leaves by a link that arrives where the next hop enters.
    fn assert_follows_links(topo: &Topology, path: &Path) {
        for w in path.hops.windows(2) {
            let link = topo.link_from(ep(w[0].dpid, w[0].out_port.unwrap())).expect("hop leaves by a link");
            assert_eq!(link.dst, ep(w[1].dpid, w[1].in_port.unwrap()));
        }
    }

    /// Floods a broadcast entering `dpid` at edge port `in_port` through the
    /// fabric as switches would with [`Topology::flood_ports`]; returns how
    /// many copies each switch received. Gives up after 10_000 copies (a storm).
    fn flood(topo: &Topology, dpid: Dpid, in_port: PortNo) -> BTreeMap<Dpid, usize> {
        let mut received = BTreeMap::new();
        let mut queue = VecDeque::from([(dpid, in_port)]);
        let mut copies = 0;
        while let Some((d, p)) = queue.pop_front() {
            copies += 1;
            assert!(copies < 10_000, "broadcast storm");
            if topo.is_link_port(ep(d, p)) && !topo.spanning_tree()[&d].contains(&p) {
                assert!(topo.flood_ports(d, p).is_empty());
                continue; // dropped
            }
            *received.entry(d).or_insert(0) += 1;
            for port in topo.flood_ports(d, p) {
                if let Some(link) = topo.link_from(ep(d, port)) {
                    queue.push_back((link.dst.dpid, link.dst.port));
                }
            }
        }
        received
    }

    #[test]
    fn linear_path_visits_every_switch_in_order() {
        let topo = linear(4);
        let path = topo.shortest_path(1, 4).unwrap();
        assert_eq!(
            path.hops,
            vec![
                Hop { dpid: 1, in_port: None, out_port: Some(3) },
                Hop { dpid: 2, in_port: Some(2), out_port: Some(3) },
                Hop { dpid: 3, in_port: Some(2), out_port: Some(3) },
                Hop { dpid: 4, in_port: Some(2), out_port: None },
            ]
        );
        assert_eq!(path.cost, 3);
        assert_eq!(dpids(&topo.shortest_path(4, 1).unwrap()), vec![4, 3, 2, 1]);
    }

    #[test]
    fn path_to_self_is_one_hop_without_ports() {
        let topo = linear(2);
        let path = topo.shortest_path(2, 2).unwrap();
        assert_eq!(path, Path { hops: vec![Hop { dpid: 2, in_port: None, out_port: None }], cost: 0 });
        assert_eq!(topo.ecmp_paths(2, 2, 4), vec![path.clone()]);
        assert_eq!(topo.disjoint_paths(2, 2, 4), vec![path]);
    }

    #[test]
    fn unknown_or_disconnected_switches_have_no_path() {
        let mut topo = linear(2);
        add(&mut topo, 3, 1);
        assert_eq!(topo.shortest_path(1, 9), None);
        assert_eq!(topo.shortest_path(9, 1), None);
        assert_eq!(topo.shortest_path(1, 3), None);
        assert!(topo.ecmp_paths(1, 3, 4).is_empty());
        assert!(topo.disjoint_paths(1, 3, 2).is_empty());
        assert!(topo.ecmp_paths(1, 2, 0).is_empty());
    }

    #[test]
    fn one_way_link_is_used_only_in_its_direction() {
        let mut topo = Topology::new();
        add(&mut topo, 1, 1);
        add(&mut topo, 2, 1);
        topo.link_seen(ep(1, 1), ep(2, 1), 0);
        assert!(topo.shortest_path(1, 2).is_some());
        assert_eq!(topo.shortest_path(2, 1), None);
    }

    #[test]
    fn shortest_path_prefers_lower_weight() {
        // Square 1-2-3-4-1: from 1 to 3 both ways are two links; make one slow.
        let mut topo = ring(4);
        topo.set_link_weight(ep(1, 3), ep(2, 2), 10);
        assert_eq!(dpids(&topo.shortest_path(1, 3).unwrap()), vec![1, 4, 3]);
        assert_eq!(topo.shortest_path(1, 3).unwrap().cost, 2);
        // Weights are per direction: the way back is still a tie, broken by port order.
        assert_eq!(topo.ecmp_paths(3, 1, 8).len(), 2);
    }

    #[test]
    fn ring_shortest_path_takes_the_short_way() {
        let topo = ring(6);
        assert_eq!(dpids(&topo.shortest_path(1, 5).unwrap()), vec![1, 6, 5]);
        assert_eq!(dpids(&topo.shortest_path(1, 3).unwrap()), vec![1, 2, 3]);
        assert_eq!(topo.ecmp_paths(1, 4, 8).len(), 2, "opposite side: two equal ways");
    }

    #[test]
    fn drained_switch_is_avoided() {
        let mut topo = ring(6);
        topo.set_drained(2, true);
        let path = topo.shortest_path(1, 3).unwrap();
        assert_eq!(dpids(&path), vec![1, 6, 5, 4, 3]);
        assert_eq!(path.cost, 4);
        assert_eq!(topo.ecmp_paths(1, 3, 8).len(), 1);
    }

    #[test]
    fn drained_switch_is_used_when_it_is_the_only_way() {
        let mut topo = linear(3);
        topo.set_drained(2, true);
        assert_eq!(dpids(&topo.shortest_path(1, 3).unwrap()), vec![1, 2, 3]);
    }

    #[test]
    fn drained_ends_of_a_path_are_allowed() {
        let mut topo = ring(6);
        topo.set_drained(1, true);
        topo.set_drained(3, true);
        assert_eq!(dpids(&topo.shortest_path(1, 3).unwrap()), vec![1, 2, 3]);
    }

    #[test]
    fn fat_tree_k4_has_ecmp_paths() {
        let ft = fat_tree_k4();
        let (a, b) = (ft.edge[0][0], ft.edge[3][1]);
        let paths = ft.topo.ecmp_paths(a, b, 16);
        assert_eq!(paths.len(), 4);
        for path in &paths {
            assert_eq!(path.hops.len(), 5);
            assert_eq!(path.cost, 4);
            assert_follows_links(&ft.topo, path);
        }
        let distinct: BTreeSet<Vec<Dpid>> = paths.iter().map(dpids).collect();
        assert_eq!(distinct.len(), 4);
        assert!(paths.iter().all(|p| ft.agg[0].contains(&p.hops[1].dpid) && ft.agg[3].contains(&p.hops[3].dpid)));
        let cores: BTreeSet<Dpid> = paths.iter().map(|p| p.hops[2].dpid).collect();
        assert_eq!(cores, ft.core.iter().copied().collect());
        assert_eq!(ft.topo.shortest_path(a, b).unwrap().hops.len(), 5);
    }

    #[test]
    fn fat_tree_k4_within_a_pod_has_two_ecmp_paths() {
        let ft = fat_tree_k4();
        let paths = ft.topo.ecmp_paths(ft.edge[1][0], ft.edge[1][1], 16);
        assert_eq!(paths.len(), 2);
        assert!(paths.iter().all(|p| p.hops.len() == 3));
    }

    #[test]
    fn ecmp_paths_are_ordered_capped_and_start_with_the_shortest_path() {
        let ft = fat_tree_k4();
        let (a, b) = (ft.edge[0][0], ft.edge[2][0]);
        let all = ft.topo.ecmp_paths(a, b, 16);
        assert_eq!(ft.topo.ecmp_paths(a, b, 2), all[..2]);
        assert_eq!(ft.topo.shortest_path(a, b).as_ref(), all.first());
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted, "ordered by out ports hop by hop");
    }

    #[test]
    fn paths_do_not_depend_on_discovery_order() {
        let ft = fat_tree_k4();
        let mut shuffled = Topology::new();
        for sw in ft.topo.switches().collect::<Vec<_>>().into_iter().rev() {
            shuffled.add_switch(sw.dpid, sw.ports.values().cloned().collect());
        }
        for link in ft.topo.links().collect::<Vec<_>>().into_iter().rev() {
            shuffled.link_seen(link.src, link.dst, 0);
        }
        let (a, b) = (ft.edge[0][1], ft.edge[3][0]);
        assert_eq!(shuffled.ecmp_paths(a, b, 16), ft.topo.ecmp_paths(a, b, 16));
        assert_eq!(shuffled.disjoint_paths(a, b, 4), ft.topo.disjoint_paths(a, b, 4));
        assert_eq!(shuffled.spanning_tree(), ft.topo.spanning_tree());
    }

    #[test]
    fn disjoint_paths_on_a_ring_are_two() {
        let topo = ring(6);
        let paths = topo.disjoint_paths(1, 3, 4);
        assert_eq!(paths.len(), 2);
        assert_eq!(dpids(&paths[0]), vec![1, 2, 3]);
        assert_eq!(dpids(&paths[1]), vec![1, 6, 5, 4, 3]);
        assert_eq!(topo.disjoint_paths(1, 3, 1).len(), 1);
        assert!(topo.disjoint_paths(1, 3, 0).is_empty());
    }

    #[test]
    fn disjoint_paths_never_share_a_cable() {
        let ft = fat_tree_k4();
        let paths = ft.topo.disjoint_paths(ft.edge[0][0], ft.edge[3][1], 4);
        assert_eq!(paths.len(), 2, "an edge switch has two uplinks");
        let mut used = BTreeSet::new();
        for path in &paths {
            assert_follows_links(&ft.topo, path);
            for c in cables(path) {
                assert!(used.insert(c), "cable {c:?} used twice");
            }
        }
        let core_paths = ft.topo.disjoint_paths(ft.core[0], ft.core[3], 8);
        assert_eq!(core_paths.len(), 4, "a core switch has one cable per pod");
    }

    #[test]
    fn disjoint_paths_find_the_pair_greedy_misses() {
        // s=1, a=2, b=3, t=4. Cheapest 1-2-3-4 blocks both others if taken
        // first; the optimum is 1-2-4 and 1-3-4.
        let mut topo = Topology::new();
        for d in 1..=4 {
            add(&mut topo, d, 3);
        }
        cable(&mut topo, ep(1, 1), ep(2, 1));
        cable(&mut topo, ep(2, 2), ep(3, 1));
        cable(&mut topo, ep(3, 2), ep(4, 1));
        cable(&mut topo, ep(1, 2), ep(3, 3));
        cable(&mut topo, ep(2, 3), ep(4, 2));
        for (a, b) in [(ep(1, 2), ep(3, 3)), (ep(2, 3), ep(4, 2))] {
            topo.set_link_weight(a, b, 3);
            topo.set_link_weight(b, a, 3);
        }
        assert_eq!(dpids(&topo.shortest_path(1, 4).unwrap()), vec![1, 2, 3, 4]);
        let paths = topo.disjoint_paths(1, 4, 2);
        assert_eq!(paths.iter().map(dpids).collect::<Vec<_>>(), vec![vec![1, 2, 4], vec![1, 3, 4]]);
        assert_eq!(paths.iter().map(|p| p.cost).sum::<u64>(), 8);
    }

    #[test]
    fn disjoint_paths_avoid_drained_switches_when_they_can() {
        let mut topo = ring(6);
        topo.set_drained(5, true);
        assert_eq!(topo.disjoint_paths(1, 3, 1).len(), 1);
        assert_eq!(dpids(&topo.disjoint_paths(1, 3, 1)[0]), vec![1, 2, 3]);
        assert_eq!(topo.disjoint_paths(1, 3, 2).len(), 2, "the second path has to cross it");
    }

    #[test]
    fn host_path_uses_host_ports_at_both_ends() {
        let mut topo = linear(3);
        topo.learn_host([2, 0, 0, 0, 0, 1], None, ep(1, 1), 0);
        topo.learn_host([2, 0, 0, 0, 0, 3], None, ep(3, 1), 0);
        let a = topo.host([2, 0, 0, 0, 0, 1]).unwrap();
        let b = topo.host([2, 0, 0, 0, 0, 3]).unwrap();
        let path = topo.host_path(a, b).unwrap();
        assert_eq!(path.hops.first(), Some(&Hop { dpid: 1, in_port: Some(1), out_port: Some(3) }));
        assert_eq!(path.hops.last(), Some(&Hop { dpid: 3, in_port: Some(2), out_port: Some(1) }));
        assert_eq!(path.hops.len(), 3);
    }

    #[test]
    fn host_path_on_one_switch_is_one_hop() {
        let mut topo = linear(1);
        topo.add_switch(1, (1..=4).map(crate::testutil::port).collect());
        topo.learn_host([2, 0, 0, 0, 0, 1], None, ep(1, 1), 0);
        topo.learn_host([2, 0, 0, 0, 0, 2], None, ep(1, 4), 0);
        let a = topo.host([2, 0, 0, 0, 0, 1]).unwrap();
        let b = topo.host([2, 0, 0, 0, 0, 2]).unwrap();
        let path = topo.host_path(a, b).unwrap();
        assert_eq!(path, Path { hops: vec![Hop { dpid: 1, in_port: Some(1), out_port: Some(4) }], cost: 0 });
    }

    fn tree_cables(topo: &Topology) -> usize {
        topo.spanning_tree().values().map(BTreeSet::len).sum::<usize>() / 2
    }

    #[test]
    fn ring_spanning_tree_leaves_one_cable_out() {
        let topo = ring(6);
        assert_eq!(tree_cables(&topo), 5);
        let tree = topo.spanning_tree();
        assert_eq!(tree.len(), 6, "every switch has an entry");
        // Every tree port's link comes back to a tree port: whole cables only.
        for (&d, ports) in tree {
            for &p in ports {
                let link = topo.link_from(ep(d, p)).unwrap();
                assert!(tree[&link.dst.dpid].contains(&link.dst.port));
            }
        }
    }

    #[test]
    fn fat_tree_spanning_tree_has_19_cables() {
        let ft = fat_tree_k4();
        assert_eq!(tree_cables(&ft.topo), 19);
        let reached = flood(&ft.topo, ft.edge[0][0], 1);
        assert_eq!(reached.len(), 20, "the tree spans every switch");
    }

    #[test]
    fn spanning_tree_avoids_drained_transit() {
        let mut topo = ring(4);
        topo.set_drained(2, true);
        let tree = topo.spanning_tree();
        assert_eq!(tree[&2].len(), 1, "the drained switch is a leaf");
        assert_eq!(tree_cables(&topo), 3);
    }

    #[test]
    fn spanning_tree_ignores_one_way_links() {
        let mut topo = linear(2);
        add(&mut topo, 3, 3);
        topo.link_seen(ep(2, 3), ep(3, 2), 0);
        assert!(topo.spanning_tree()[&3].is_empty());
        assert_eq!(tree_cables(&topo), 1);
    }

    #[test]
    fn spanning_tree_follows_topology_changes() {
        let mut topo = ring(4);
        assert_eq!(tree_cables(&topo), 3);
        let before = topo.spanning_tree().clone();
        // Cut a tree cable: the cable left out before must take over.
        let (&d, ports) = before.iter().find(|(_, p)| !p.is_empty()).unwrap();
        let port = *ports.iter().next().unwrap();
        topo.remove_port(d, port);
        assert_eq!(tree_cables(&topo), 3);
        assert_ne!(topo.spanning_tree(), &before);
    }

    #[test]
    fn flood_ports_never_returns_a_non_tree_link_port() {
        let ft = fat_tree_k4();
        for topo in [&ft.topo, &ring(5), &linear(3)] {
            let tree = topo.spanning_tree();
            for sw in topo.switches() {
                for &in_port in sw.ports.keys() {
                    for out in topo.flood_ports(sw.dpid, in_port) {
                        let at = ep(sw.dpid, out);
                        assert!(!topo.is_link_port(at) || tree[&sw.dpid].contains(&out), "{at} floods off the tree");
                        assert_ne!(out, in_port);
                    }
                }
            }
        }
    }

    #[test]
    fn flood_from_a_blocked_link_port_is_dropped() {
        let topo = ring(4);
        let tree = topo.spanning_tree();
        let blocked: Vec<Endpoint> = topo.links().map(|l| l.src).filter(|s| !tree[&s.dpid].contains(&s.port)).collect();
        assert_eq!(blocked.len(), 2, "both ends of the one cable left out");
        for at in blocked {
            assert!(topo.flood_ports(at.dpid, at.port).is_empty());
        }
    }

    #[test]
    fn flood_goes_to_up_edge_ports_but_not_reserved_ones() {
        let mut topo = linear(2);
        topo.update_port(1, crate::testutil::port(4));
        topo.update_port(1, crate::testutil::port(0xffff_fffe));
        let mut down = crate::testutil::port(5);
        down.up = false;
        topo.update_port(1, down);
        // Port 2 of switch 1 faces no switch: an edge port.
        assert_eq!(topo.flood_ports(1, 1), vec![2, 3, 4]);
        assert_eq!(topo.flood_ports(1, 0xffff_fffe), vec![1, 2, 3, 4]);
        assert_eq!(topo.flood_ports(2, 2), vec![1, 3]);
        assert!(topo.flood_ports(9, 1).is_empty());
    }

    #[test]
    fn flooding_reaches_every_switch_exactly_once() {
        let ft = fat_tree_k4();
        for (topo, from) in [(&ring(6), 4), (&ft.topo, ft.edge[2][1]), (&linear(5), 3)] {
            let received = flood(topo, from, 1);
            assert_eq!(received.len(), topo.switches().count());
            assert!(received.values().all(|&n| n == 1), "{received:?}");
        }
    }

    #[test]
    #[ignore = "timing: run with --release --ignored --nocapture"]
    fn fat_tree_path_queries_take_microseconds() {
        let ft = fat_tree_k4();
        let (a, b) = (ft.edge[0][0], ft.edge[3][1]);
        let n = 10_000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(ft.topo.shortest_path(a, b));
        }
        let shortest = t.elapsed() / n;
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(ft.topo.ecmp_paths(a, b, 8));
        }
        let ecmp = t.elapsed() / n;
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(ft.topo.disjoint_paths(a, b, 2));
        }
        let disjoint = t.elapsed() / n;
        println!("shortest {shortest:?} ecmp {ecmp:?} disjoint {disjoint:?}");
    }
}
