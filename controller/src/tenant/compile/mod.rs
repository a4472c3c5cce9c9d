//! The compiler: (desired state, topology) -> the flows and groups of one switch.
//! A pure function, one module per pipeline table (see ARCHITECTURE.md):
//!
//! - [`classify`] (table 0): LLDP to the controller, anti-spoofing on edge ports,
//!   network number into metadata, VLAN off fabric ports.
//! - [`ingress_acl`] (tables 10, 11): security groups of the sending port.
//! - [`steer`] (table 20): IPS steering (passes everything on for now).
//! - [`forward`] (table 30): ARP/DHCP to the controller, unicast by destination MAC
//!   (locally or tagged towards the destination's switch), broadcast to groups.
//! - [`egress_acl`] (tables 40, 41): security groups of the receiving port, output.
//!
//! [`Plan`] is what every switch's compilation shares (where ports are, how
//! switches reach each other, conntrack zones); it is built once per batch of changes.

pub mod classify;
pub mod egress_acl;
pub mod forward;
pub mod ingress_acl;
pub mod remote;
pub mod rules;
pub mod steer;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tenet_topology::Topology;

use super::flows::SwitchFlows;
use super::state::{self, Port, State};

/// OpenFlow's view of one switch's ports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwitchPorts {
    /// Port numbers by interface name.
    pub by_name: HashMap<String, u32>,
    /// Ports with a link to another switch.
    pub link_ports: BTreeSet<u32>,
    /// Link ports on the spanning tree (floods go out of these).
    pub tree_ports: BTreeSet<u32>,
}

/// The switches and how they reach each other.
#[derive(Debug, Clone, Default)]
pub struct Fabric {
    pub switches: BTreeMap<u64, SwitchPorts>,
    /// (from, to) -> the port of `from` on the path to `to`.
    pub next_hop: HashMap<(u64, u64), u32>,
}

impl Fabric {
    /// Reads the fabric off the topology (paths are the topology's shortest paths).
    pub fn from_topology(topo: &Topology) -> Fabric {
        let tree = topo.spanning_tree();
        let mut switches = BTreeMap::new();
        for sw in topo.switches() {
            let mut ports = SwitchPorts::default();
            for p in sw.ports.values() {
                ports.by_name.insert(p.name.clone(), p.port_no);
                if topo.is_link_port(tenet_topology::Endpoint::new(sw.dpid, p.port_no)) {
                    ports.link_ports.insert(p.port_no);
                }
            }
            ports.tree_ports = tree.get(&sw.dpid).cloned().unwrap_or_default();
            switches.insert(sw.dpid, ports);
        }
        let dpids: Vec<u64> = switches.keys().copied().collect();
        let mut next_hop = HashMap::new();
        for &a in &dpids {
            for &b in &dpids {
                if a == b {
                    continue;
                }
                if let Some(port) = topo.shortest_path(a, b).and_then(|p| p.hops.first().and_then(|h| h.out_port)) {
                    next_hop.insert((a, b), port);
                }
            }
        }
        Fabric { switches, next_hop }
    }

    /// The switches a packet from `a` to `b` passes, both ends included (just `a`
    /// when there is no path).
    pub fn path(&self, a: u64, b: u64, peers: &HashMap<(u64, u32), u64>) -> Vec<u64> {
        let mut path = vec![a];
        let mut at = a;
        while at != b && path.len() <= self.switches.len() {
            let Some(next) = self.next_hop.get(&(at, b)).and_then(|port| peers.get(&(at, *port))) else {
                break;
            };
            at = *next;
            path.push(at);
        }
        path
    }
}

/// A port that is bound, on a switch we know, at a port number we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Placement {
    pub dpid: u64,
    pub ofport: u32,
}

/// What every switch's compilation shares.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub fabric: Fabric,
    /// Bound ports by port id: where the port's traffic goes (its ACTIVE binding, or
    /// where a migrating VM announced itself, or the only binding whose interface exists).
    pub placed: BTreeMap<String, Placement>,
    /// A migrating port's second place (its other binding, once that interface exists):
    /// the VM's traffic is delivered to both until one binding is gone. Duplicates are
    /// harmless; a packet sent only to the place the VM just left would be lost.
    pub copies: BTreeMap<String, Placement>,
    /// Port ids by network id (placed ones only), sorted.
    pub by_network: BTreeMap<String, Vec<String>>,
    /// Switches that carry each network's unicast traffic: those with its ports and
    /// those on the paths between them.
    pub span: BTreeMap<String, BTreeSet<u64>>,
    /// Conntrack zone of each port (unique on the machine: all bridges of one
    /// ovs-vswitchd share one connection tracker).
    pub zones: HashMap<String, u16>,
    /// Security group id -> (network id, IPv4 address) of its member ports.
    pub members: HashMap<String, Vec<(String, std::net::Ipv4Addr)>>,
    /// IPS steering.
    pub steering: steer::Steering,
}

/// What the engine learns at run time that placement depends on.
#[derive(Debug, Clone, Default)]
pub struct Runtime {
    /// Migrating ports whose VM announced itself (RARP or gratuitous ARP) at the datapath
    /// of its second binding, which then carries its traffic before netapi says so.
    pub announced: HashMap<String, u64>,
    /// Port pairs (IPS instances) whose health probes stopped coming back.
    pub dead_pairs: BTreeSet<String>,
}

/// FNV-1a over a string, for stable zone hashing.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Conntrack zones: each port gets hash(id) (1..=65535), probing upwards on collision,
/// ports taken in creation order, so a new port never moves an older one and a
/// restarted controller computes the same zones.
pub fn allocate_zones(state: &State) -> HashMap<String, u16> {
    let mut ports: Vec<&Port> = state.ports.values().collect();
    ports.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    let mut used = vec![false; 65536];
    let mut zones = HashMap::with_capacity(ports.len());
    for p in ports.into_iter().take(65535) {
        let mut z = (fnv(&p.id) % 65535) as usize + 1;
        while used[z] {
            z = if z == 65535 { 1 } else { z + 1 };
        }
        used[z] = true;
        zones.insert(p.id.clone(), z as u16);
    }
    zones
}

impl Plan {
    /// Places every bound port, computes spans, zones, group members and steering.
    pub fn new(state: &State, fabric: Fabric, link_peers: &HashMap<(u64, u32), u64>, rt: &Runtime) -> Plan {
        let announced = &rt.announced;
        let mut placed = BTreeMap::new();
        let mut copies = BTreeMap::new();
        let mut by_network: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for port in state.ports.values() {
            if !port.admin_up || !state.networks.contains_key(&port.network_id) {
                continue;
            }
            // Every binding whose interface exists on a switch we know, ACTIVE first.
            let mut places: Vec<(bool, Placement)> = state
                .bindings_of(&port.id)
                .filter_map(|b| {
                    let dpid = b.dpid?;
                    let ofport = *fabric.switches.get(&dpid)?.by_name.get(&b.interface)?;
                    Some((b.active, Placement { dpid, ofport }))
                })
                .collect();
            places.sort_by_key(|(active, at)| (!*active, at.dpid, at.ofport));
            let mut seen = BTreeSet::new();
            places.retain(|(_, at)| seen.insert((at.dpid, at.ofport)));
            if let Some(i) = announced.get(&port.id).and_then(|d| places.iter().position(|(_, at)| at.dpid == *d)) {
                places.swap(0, i);
            }
            let mut places = places.into_iter().map(|(_, at)| at);
            let Some(primary) = places.next() else { continue };
            placed.insert(port.id.clone(), primary);
            if let Some(copy) = places.next() {
                copies.insert(port.id.clone(), copy);
            }
            by_network.entry(port.network_id.clone()).or_default().push(port.id.clone());
        }
        let mut span = BTreeMap::new();
        for (net, ports) in &by_network {
            let at: BTreeSet<u64> = ports
                .iter()
                .flat_map(|p| placed.get(p).into_iter().chain(copies.get(p)))
                .map(|p: &Placement| p.dpid)
                .collect();
            let mut s = at.clone();
            for &a in &at {
                for &b in &at {
                    if a != b {
                        s.extend(fabric.path(a, b, link_peers));
                    }
                }
            }
            span.insert(net.clone(), s);
        }
        let mut members: HashMap<String, Vec<(String, std::net::Ipv4Addr)>> = HashMap::new();
        for port in state.ports.values() {
            for g in &port.security_groups {
                members
                    .entry(g.clone())
                    .or_default()
                    .extend(port.ips.iter().map(|(_, ip)| (port.network_id.clone(), *ip)));
            }
        }
        for ips in members.values_mut() {
            ips.sort();
            ips.dedup();
        }
        let segment_of = |net: &str| state.networks.get(net).map(|n| n.segment);
        let steering = steer::Steering::new(state, &placed, &rt.dead_pairs, segment_of);
        Plan { fabric, placed, copies, by_network, span, zones: allocate_zones(state), members, steering }
    }

    /// Every place of a port: where its traffic goes, then its second place if it migrates.
    pub fn places<'a>(&'a self, port_id: &str) -> impl Iterator<Item = Placement> + 'a {
        self.placed.get(port_id).into_iter().chain(self.copies.get(port_id)).copied()
    }

    /// Tenant endpoints placed on `dpid`, with their placement (a port migrating between
    /// two interfaces of one switch comes twice). IPS instance ports are not endpoints.
    pub fn local_ports<'a>(&'a self, state: &'a State, dpid: u64) -> impl Iterator<Item = (&'a Port, Placement)> + 'a {
        self.placed
            .iter()
            .chain(self.copies.iter())
            .filter(move |(id, p)| p.dpid == dpid && !self.steering.ports.contains(*id))
            .filter_map(|(id, p)| Some((state.ports.get(id)?, *p)))
    }

    /// Ports with a place on `dpid`, each once, with the OpenFlow ports it has there.
    pub fn local_outputs<'a>(&'a self, state: &'a State, dpid: u64) -> Vec<(&'a Port, Vec<u32>)> {
        let mut out: BTreeMap<&str, (&Port, Vec<u32>)> = BTreeMap::new();
        for (port, at) in self.local_ports(state, dpid) {
            out.entry(port.id.as_str()).or_insert((port, vec![])).1.push(at.ofport);
        }
        out.into_values().collect()
    }

    /// Whether `dpid` carries the unicast traffic of `network`.
    pub fn in_span(&self, network: &str, dpid: u64) -> bool {
        self.span.get(network).is_some_and(|s| s.contains(&dpid))
    }
}

/// Compiles everything `dpid` should hold.
pub fn compile_switch(state: &State, plan: &Plan, dpid: u64) -> SwitchFlows {
    let mut out = SwitchFlows::default();
    let Some(ports) = plan.fabric.switches.get(&dpid) else { return out };
    // The ingress ACL checks the sender's egress rules, the egress ACL the receiver's ingress rules.
    let sender_bits = remote::group_bits(state, plan, dpid, state::Direction::Egress);
    let receiver_bits = remote::group_bits(state, plan, dpid, state::Direction::Ingress);
    classify::compile(state, plan, dpid, ports, &mut out);
    ingress_acl::compile(state, plan, dpid, &sender_bits, &mut out);
    steer::compile(state, plan, dpid, &mut out);
    forward::compile(state, plan, dpid, ports, &mut out);
    egress_acl::compile(state, plan, dpid, &receiver_bits, &mut out);
    out
}

/// Metadata carries the network's segment number.
pub const METADATA_MASK: u64 = 0xffff;

/// Metadata bit of a copy of a migrating port's traffic on its way to the port's
/// second place (carried between switches as VLAN priority [`COPY_PCP`]).
pub const COPY_BIT: u64 = 1 << 63;
/// VLAN priority that marks a copy on fabric links.
pub const COPY_PCP: u8 = 7;

#[cfg(test)]
pub(crate) mod test_support {
    //! A small two-switch world for the table modules' tests.
    use super::*;
    use crate::tenant::state::State;

    /// Networks "red" (segment 101) and "blue" (segment 102), ports r1/b1 on switch 1
    /// (ports 1, 2), r2/b2 on switch 2 (ports 1, 2), switches linked by port 10 <-> 10.
    pub fn world() -> (State, Plan) {
        let mut st = State::default();
        for (net, seg) in [("red", 101), ("blue", 102)] {
            st.apply("network", net, false, &format!(r#"{{"project_id":"p-{net}","provider:segmentation_id":{seg}}}"#))
                .expect("network");
            st.apply(
                "subnet",
                &format!("s-{net}"),
                false,
                &format!(r#"{{"network_id":"{net}","ip_version":4,"cidr":"10.0.0.0/24","gateway_ip":"10.0.0.1"}}"#),
            )
            .expect("subnet");
        }
        let ports = [
            ("r1", "red", 1u64, "s1-eth1", 5),
            ("b1", "blue", 1, "s1-eth2", 5),
            ("r2", "red", 2, "s2-eth1", 6),
            ("b2", "blue", 2, "s2-eth2", 6),
        ];
        for (i, (id, net, dpid, iface, ip)) in ports.iter().enumerate() {
            st.apply(
                "port",
                id,
                false,
                &format!(
                    r#"{{"network_id":"{net}","project_id":"p-{net}","mac_address":"fa:16:3e:00:00:0{i}",
                        "fixed_ips":[{{"subnet_id":"s-{net}","ip_address":"10.0.0.{ip}"}}],"security_groups":["sg-{net}"],
                        "created_at":"2026-01-01T00:00:0{i}Z"}}"#
                ),
            )
            .expect("port");
            st.apply(
                "port_binding",
                &format!("{id}/h{dpid}"),
                false,
                &format!(
                    r#"{{"port_id":"{id}","host":"h{dpid}","status":"ACTIVE","datapath_id":"{dpid:016x}","interface_name":"{iface}"}}"#
                ),
            )
            .expect("binding");
        }
        let (fabric, peers) = fabric();
        let plan = Plan::new(&st, fabric, &peers, &Runtime::default());
        (st, plan)
    }

    /// The two switches of [`world`] (ports 1-7 each, linked by port 10).
    pub fn fabric() -> (Fabric, HashMap<(u64, u32), u64>) {
        let mut fabric = Fabric::default();
        for dpid in [1u64, 2] {
            let mut sp = SwitchPorts::default();
            for n in [1, 2, 3, 4, 5, 6, 7, 10] {
                sp.by_name.insert(format!("s{dpid}-eth{n}"), n);
            }
            sp.link_ports.insert(10);
            sp.tree_ports.insert(10);
            fabric.switches.insert(dpid, sp);
        }
        fabric.next_hop.insert((1, 2), 10);
        fabric.next_hop.insert((2, 1), 10);
        let peers: HashMap<(u64, u32), u64> = [((1, 10), 2), ((2, 10), 1)].into_iter().collect();
        (fabric, peers)
    }

    /// Binds port `id` on host `host` (switch `dpid`, interface `iface`).
    pub fn bind(st: &mut State, id: &str, host: &str, dpid: u64, iface: &str, active: bool) {
        let status = if active { "ACTIVE" } else { "INACTIVE" };
        st.apply(
            "port_binding",
            &format!("{id}/{host}"),
            false,
            &format!(
                r#"{{"port_id":"{id}","host":"{host}","status":"{status}","datapath_id":"{dpid:016x}","interface_name":"{iface}"}}"#
            ),
        )
        .expect("binding");
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::world;
    use super::*;

    #[test]
    fn ports_are_placed_and_spans_cover_paths() {
        let (st, plan) = world();
        assert_eq!(plan.placed["r1"], Placement { dpid: 1, ofport: 1 });
        assert_eq!(plan.placed["b2"], Placement { dpid: 2, ofport: 2 });
        assert_eq!(plan.span["red"], BTreeSet::from([1, 2]));
        let zones: BTreeSet<u16> = plan.zones.values().copied().collect();
        assert_eq!(zones.len(), 4, "zones are unique");
        assert_eq!(allocate_zones(&st), plan.zones, "zones are a function of the state");
    }

    #[test]
    fn a_new_port_never_moves_an_older_ports_zone() {
        let (mut st, _) = world();
        let before = allocate_zones(&st);
        for i in 0..300 {
            st.apply(
                "port",
                &format!("x{i}"),
                false,
                &format!(
                    r#"{{"network_id":"red","mac_address":"fa:16:3e:01:00:{:02x}","created_at":"2027-{i:05}"}}"#,
                    i % 256
                ),
            )
            .expect("port");
        }
        let after = allocate_zones(&st);
        for (id, z) in before {
            assert_eq!(after[&id], z);
        }
        let distinct: BTreeSet<u16> = after.values().copied().collect();
        assert_eq!(distinct.len(), after.len());
    }

    use super::test_support::{bind, fabric};
    use crate::tenant::flows::{table, FlowKey};
    use crate::wire::of13::{Action, Instruction, Oxm};

    const R1: [u8; 6] = [0xfa, 0x16, 0x3e, 0, 0, 0];

    fn replan(st: &State, announced: &[(&str, u64)]) -> Plan {
        let (f, peers) = fabric();
        let rt =
            Runtime { announced: announced.iter().map(|(id, d)| (id.to_string(), *d)).collect(), ..Runtime::default() };
        Plan::new(st, f, &peers, &rt)
    }

    fn instructions(flows: &SwitchFlows, t: u8, prio: u16, fields: Vec<Oxm>) -> Option<&Vec<Instruction>> {
        flows.flows.get(&FlowKey::new(t, prio, fields)).map(|f| &f.instructions)
    }

    #[test]
    fn a_migrating_port_has_two_places_and_its_traffic_is_copied_from_the_primary() {
        let (mut st, _) = world();
        // r1 (switch 1 port 1) gets an INACTIVE binding on switch 2 whose interface exists.
        bind(&mut st, "r1", "h2", 2, "s2-eth3", false);
        let plan = replan(&st, &[]);
        assert_eq!(plan.placed["r1"], Placement { dpid: 1, ofport: 1 });
        assert_eq!(plan.copies["r1"], Placement { dpid: 2, ofport: 3 });
        let meta = Oxm::metadata(101, Some(METADATA_MASK));
        let marked = Oxm::metadata(101 | COPY_BIT, Some(METADATA_MASK | COPY_BIT));
        // Switch 1 delivers locally and sends a marked copy towards switch 2.
        let s1 = compile_switch(&st, &plan, 1);
        let mut copy = forward::copy_output(101, 10);
        copy.push(Action::PopVlan);
        assert_eq!(
            instructions(&s1, table::FORWARD, forward::PRIO_UNICAST, vec![meta.clone(), Oxm::eth_dst(R1)]),
            Some(&vec![Instruction::ApplyActions(copy), Instruction::GotoTable(table::EGRESS_ACL)])
        );
        // What came from switch 2 goes back there by IN_PORT (an output to the input port
        // is otherwise dropped).
        let mut back = forward::copy_output(101, crate::wire::of13::action::port_no::IN_PORT);
        back.push(Action::PopVlan);
        assert_eq!(
            instructions(
                &s1,
                table::FORWARD,
                forward::PRIO_COPY_BACK,
                vec![Oxm::in_port(10), meta.clone(), Oxm::eth_dst(R1)]
            ),
            Some(&vec![Instruction::ApplyActions(back), Instruction::GotoTable(table::EGRESS_ACL)])
        );
        // Switch 2: unmarked traffic goes to the primary place; copies are delivered here,
        // never copied again; its new port is classified (anti-spoofing) already.
        let s2 = compile_switch(&st, &plan, 2);
        assert_eq!(
            instructions(&s2, table::FORWARD, forward::PRIO_UNICAST, vec![meta, Oxm::eth_dst(R1)]),
            Some(&vec![Instruction::ApplyActions(forward::tagged_output(101, 10))])
        );
        assert_eq!(
            instructions(&s2, table::FORWARD, forward::PRIO_COPY, vec![marked, Oxm::eth_dst(R1)]),
            Some(&vec![Instruction::GotoTable(table::EGRESS_ACL)])
        );
        let fabric_copy = vec![
            Oxm::in_port(10),
            Oxm::vlan_vid(classify::VLAN_PRESENT | 101),
            Oxm::basic(crate::wire::of13::oxm::ofb::VLAN_PCP, &[COPY_PCP]),
        ];
        assert!(instructions(&s2, table::CLASSIFY, classify::PRIO_MARKED, fabric_copy).is_some());
        let rarp = vec![
            Oxm::in_port(3),
            Oxm::vlan_vid(classify::VLAN_NONE),
            Oxm::eth_src(R1),
            Oxm::eth_type(classify::ETH_RARP),
        ];
        assert!(instructions(&s2, table::CLASSIFY, classify::PRIO_MARKED, rarp).is_some());
        assert!(s2.flows.keys().any(|k| k.table == table::CLASSIFY && k.match_.fields.contains(&Oxm::in_port(3))));
        let outputs_to_3 = s2.flows.values().any(|f| {
            f.instructions.iter().any(
                |i| matches!(i, Instruction::ApplyActions(a) if a.contains(&Action::Output { port: 3, max_len: 0 })),
            )
        });
        assert!(outputs_to_3, "the egress ACL delivers to the new place");
        // A copy that reaches the primary switch (the primary moved while it travelled) is
        // delivered there, not sent back.
        assert_eq!(
            instructions(
                &s1,
                table::FORWARD,
                forward::PRIO_COPY,
                vec![Oxm::metadata(101 | COPY_BIT, Some(METADATA_MASK | COPY_BIT)), Oxm::eth_dst(R1)]
            ),
            Some(&vec![Instruction::GotoTable(table::EGRESS_ACL)])
        );
        // Neither switch sends blue's traffic anywhere new.
        assert!(s2.flows.keys().all(|k| !k.match_.fields.contains(&Oxm::metadata(102 | COPY_BIT, None))));
    }

    #[test]
    fn activation_announcement_and_a_vanished_interface_move_the_primary() {
        let (mut st, _) = world();
        bind(&mut st, "r1", "h2", 2, "s2-eth3", false);
        // The VM announced itself at its new place before netapi activated the binding.
        let plan = replan(&st, &[("r1", 2)]);
        assert_eq!(plan.placed["r1"], Placement { dpid: 2, ofport: 3 });
        assert_eq!(plan.copies["r1"], Placement { dpid: 1, ofport: 1 });
        // Activation: the new binding is ACTIVE, the old one INACTIVE until deleted.
        bind(&mut st, "r1", "h2", 2, "s2-eth3", true);
        bind(&mut st, "r1", "h1", 1, "s1-eth1", false);
        let plan = replan(&st, &[]);
        assert_eq!(plan.placed["r1"], Placement { dpid: 2, ofport: 3 });
        assert_eq!(plan.copies["r1"], Placement { dpid: 1, ofport: 1 });
        // The source binding goes: one place again.
        st.apply("port_binding", "r1/h1", true, "{}").expect("delete");
        let plan = replan(&st, &[]);
        assert_eq!(plan.placed["r1"], Placement { dpid: 2, ofport: 3 });
        assert!(plan.copies.is_empty());
        // An INACTIVE binding alone whose interface exists while the ACTIVE one's does not
        // (the source VM is gone before netapi heard): traffic goes where the VM can be.
        let (mut st, _) = world();
        bind(&mut st, "r1", "h1", 1, "s1-gone", true);
        bind(&mut st, "r1", "h2", 2, "s2-eth3", false);
        assert_eq!(replan(&st, &[]).placed["r1"], Placement { dpid: 2, ofport: 3 });
    }

    #[test]
    fn compilation_is_deterministic() {
        let (st, plan) = world();
        assert_eq!(compile_switch(&st, &plan, 1), compile_switch(&st, &plan, 1));
        assert!(compile_switch(&st, &plan, 99).flows.is_empty());
    }
}

#[cfg(test)]
mod scale {
    use super::*;
    use crate::tenant::reconcile::diff;

    /// `cargo test --release -p tenet-controller --lib compile::scale -- --ignored --nocapture`:
    /// compile and diff cost for 1,000 ports over 20 switches in a ring.
    #[test]
    #[ignore]
    fn thousand_ports_twenty_switches() {
        let mut st = State::default();
        for (net, seg) in [("red", 101), ("blue", 102)] {
            st.apply("network", net, false, &format!(r#"{{"project_id":"p-{net}","provider:segmentation_id":{seg}}}"#))
                .expect("network");
            st.apply(
                "security_group_rule",
                &format!("in-{net}"),
                false,
                &format!(r#"{{"ethertype":"IPv4","direction":"ingress","security_group_id":"sg-{net}","remote_group_id":"sg-{net}"}}"#),
            )
            .expect("rule");
            st.apply(
                "security_group_rule",
                &format!("out-{net}"),
                false,
                &format!(r#"{{"ethertype":"IPv4","direction":"egress","security_group_id":"sg-{net}"}}"#),
            )
            .expect("rule");
        }
        let n = 20u64;
        let mut fabric = Fabric::default();
        for d in 1..=n {
            let mut sp = SwitchPorts::default();
            sp.link_ports.extend([1000, 1001]);
            sp.tree_ports.insert(1000);
            for p in 0..50 {
                sp.by_name.insert(format!("s{d}p{p}"), p + 1);
            }
            fabric.switches.insert(d, sp);
            for e in 1..=n {
                if e != d {
                    fabric.next_hop.insert((d, e), 1000);
                }
            }
        }
        for i in 0..1000u64 {
            let net = if i % 2 == 0 { "red" } else { "blue" };
            let (d, p) = (i % n + 1, i / n);
            st.apply(
                "port",
                &format!("port{i}"),
                false,
                &format!(
                    r#"{{"network_id":"{net}","mac_address":"fa:16:3e:00:{:02x}:{:02x}","fixed_ips":[{{"subnet_id":"s","ip_address":"10.0.{}.{}"}}],"security_groups":["sg-{net}"],"created_at":"{i:06}"}}"#,
                    i >> 8,
                    i & 255,
                    i >> 8,
                    i & 255
                ),
            )
            .expect("port");
            st.apply(
                "port_binding",
                &format!("port{i}/h"),
                false,
                &format!(r#"{{"port_id":"port{i}","host":"h","status":"ACTIVE","datapath_id":"{d:016x}","interface_name":"s{d}p{p}"}}"#),
            )
            .expect("binding");
        }
        let peers: HashMap<(u64, u32), u64> = (1..=n).map(|d| ((d, 1000), d % n + 1)).collect();
        let t = std::time::Instant::now();
        let plan = Plan::new(&st, fabric, &peers, &Runtime::default());
        let t_plan = t.elapsed();
        let t = std::time::Instant::now();
        let all: Vec<SwitchFlows> = (1..=n).map(|d| compile_switch(&st, &plan, d)).collect();
        let t_compile = t.elapsed();
        let t = std::time::Instant::now();
        let changes: usize = all.iter().map(|f| diff(f, f).messages.len()).sum();
        let t_diff = t.elapsed();
        let flows: usize = all.iter().map(|f| f.flows.len()).sum();
        eprintln!(
            "plan {t_plan:?}, compile 20 switches {t_compile:?} ({flows} flows), diff {t_diff:?} ({changes} changes)"
        );
        assert_eq!(changes, 0);
    }
}
