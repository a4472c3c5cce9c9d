//! Table 20, steer, and 21, steer-select: IPS steering (networking-sfc port chains).
//!
//! A chain's flow classifiers pick IPv4 traffic of its network; the traffic passes the
//! chain's port pair groups in order, one instance (port pair) per group chosen by a
//! hash both directions of a connection share (OVS `multipath` with `symmetric_l4`), so
//! a symmetric chain's return traffic passes the same instances backwards: into an
//! instance's egress port and out of its ingress port.
//!
//! | table | priority | match | actions |
//! |---|---|---|---|
//! | 20 | 300 | in_port=an instance's egress port (IPv4 back from it) | next group (forward), or goto 30 |
//! | 20 | 300 | in_port=an instance's ingress port (back from it, symmetric) | previous group (reverse), or goto 30 |
//! | 20 | 200 | metadata=segment, a classifier's fields (eth_src of its logical source port ...) | first group |
//! | 20 | 200 | metadata=segment, the classifier reversed (symmetric chains) | last group, reverse |
//! | 20 | 0 | anything | goto 30 |
//! | 21 | 100 | metadata=selection, reg0=i | the i-th live instance of the group |
//!
//! "A group" is: no live instance: fail-open chains pass the hop by, fail-closed ones
//! drop; one: deliver; more: `multipath` into reg0, the selection's number into
//! metadata bits 48-62, goto 21. Delivering to an instance port on this switch is an
//! output; on another switch the frame is sent towards it tagged with the port's own
//! VLAN id (4000-4094, which netapi never gives a network) instead of the network's, so
//! the frame does not grow, and the port's switch pops the tag and outputs (table 0,
//! see [`classify`](super::classify)).
//!
//! Instance ports are not tenant endpoints: no anti-spoofing, no security groups, no
//! floods; table 0 takes only IPv4 (and the controller's health probes) from them.
//! A chain is compiled only when all its instance ports and classifier ports are on one
//! network (problems are reported in the status).

use std::collections::{BTreeMap, BTreeSet};

use crate::tenant::flows::{cookie, table, SwitchFlows};
use crate::tenant::state::{FlowClassifier, State};
use crate::wire::of13::nx;
use crate::wire::of13::oxm::ofb;
use crate::wire::of13::{Action, Instruction, Oxm};

use super::rules::{ip_proto, ipv4, range_masks, u16_field, ETH_IPV4};
use super::{Placement, Plan, METADATA_MASK};

pub const PRIO_RETURN: u16 = 300;
pub const PRIO_CLASSIFIER: u16 = 200;
pub const PRIO_SELECT: u16 = 100;

/// Metadata bits 48-62: which group selection table 21 is choosing for.
pub const SELECT_SHIFT: u32 = 48;
pub const SELECT_MASK: u64 = 0x7fff << SELECT_SHIFT;
/// The register `multipath` writes the chosen instance into.
pub const SELECT_REG: u8 = 0;
/// Fabric VLAN ids that carry a frame to an instance port: netapi gives networks
/// segments below this, so 95 instance ports can be reached across the fabric.
pub const FIRST_VID: u16 = 4000;
pub const LAST_VID: u16 = 4094;

/// An instance (port pair) whose ports are both placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub pair_id: String,
    pub ingress: (String, Placement),
    pub egress: (String, Placement),
}

/// A chain resolved against where ports are and which instances are alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub id: String,
    pub network_id: String,
    pub segment: u16,
    pub symmetric: bool,
    pub fail_open: bool,
    /// Live, placed instances per group, in chain order.
    pub hops: Vec<Vec<Instance>>,
    /// Every instance of every group, alive or not, placed (return flows, probes).
    pub all: Vec<(usize, Instance)>,
    pub classifiers: Vec<FlowClassifier>,
    /// Numbers this chain's group selections start from (2 per hop: forward, reverse).
    pub select_base: u16,
}

/// Steering resolved for a state, a placement and the instances' health.
#[derive(Debug, Clone, Default)]
pub struct Steering {
    /// Ports of IPS instances (not tenant endpoints).
    pub ports: BTreeSet<String>,
    /// The fabric VLAN id that carries a frame to an instance port.
    pub vids: BTreeMap<String, u16>,
    pub chains: Vec<Chain>,
    /// Why chains were not compiled.
    pub problems: Vec<String>,
}

impl Steering {
    /// Resolves every chain. `placed`: where ports are; `dead`: port pairs whose health
    /// probes stopped coming back.
    pub fn new(
        state: &State,
        placed: &BTreeMap<String, Placement>,
        dead: &BTreeSet<String>,
        segment_of: impl Fn(&str) -> Option<u16>,
    ) -> Steering {
        let mut s = Steering::default();
        for pair in state.port_pairs.values() {
            s.ports.insert(pair.ingress.clone());
            s.ports.insert(pair.egress.clone());
        }
        for (vid, id) in (FIRST_VID..=LAST_VID).zip(s.ports.iter()) {
            s.vids.insert(id.clone(), vid);
        }
        if s.ports.len() > s.vids.len() {
            s.problems.push(format!(
                "{} IPS instance ports, only {} can be reached across the fabric (VLAN ids {FIRST_VID}-{LAST_VID})",
                s.ports.len(),
                s.vids.len()
            ));
        }
        for (index, chain) in state.port_chains.values().enumerate() {
            match resolve(state, chain, placed, dead, &segment_of, index) {
                Ok(c) => s.chains.push(c),
                Err(why) => s.problems.push(format!("port chain {}: {why}", chain.id)),
            }
        }
        s
    }

    /// Every instance of every chain (for health probes).
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.chains.iter().flat_map(|c| c.all.iter().map(|(_, i)| i))
    }
}

fn resolve(
    state: &State,
    chain: &crate::tenant::state::PortChain,
    placed: &BTreeMap<String, Placement>,
    dead: &BTreeSet<String>,
    segment_of: &impl Fn(&str) -> Option<u16>,
    index: usize,
) -> Result<Chain, String> {
    let mut network: Option<String> = None;
    let mut same_network = |port_id: &str| -> Result<(), String> {
        let port = state.ports.get(port_id).ok_or_else(|| format!("port {port_id} does not exist"))?;
        match &network {
            Some(n) if *n != port.network_id => {
                Err(format!("port {port_id} is on network {}, the chain's is {n}", port.network_id))
            }
            _ => {
                network = Some(port.network_id.clone());
                Ok(())
            }
        }
    };
    let mut hops = Vec::new();
    let mut all = Vec::new();
    for (h, gid) in chain.groups.iter().enumerate() {
        let group = state.port_pair_groups.get(gid).ok_or_else(|| format!("port pair group {gid} does not exist"))?;
        let mut live = Vec::new();
        for pid in &group.port_pairs {
            let pair = state.port_pairs.get(pid).ok_or_else(|| format!("port pair {pid} does not exist"))?;
            same_network(&pair.ingress)?;
            same_network(&pair.egress)?;
            let (Some(i), Some(e)) = (placed.get(&pair.ingress), placed.get(&pair.egress)) else { continue };
            let inst = Instance {
                pair_id: pid.clone(),
                ingress: (pair.ingress.clone(), *i),
                egress: (pair.egress.clone(), *e),
            };
            if !dead.contains(pid) {
                live.push(inst.clone());
            }
            all.push((h, inst));
        }
        hops.push(live);
    }
    let mut classifiers = Vec::new();
    for fid in &chain.classifiers {
        let fc = state.flow_classifiers.get(fid).ok_or_else(|| format!("flow classifier {fid} does not exist"))?;
        for p in fc.logical_source_port.iter().chain(&fc.logical_destination_port) {
            same_network(p)?;
        }
        classifiers.push(fc.clone());
    }
    let network_id = network.ok_or("it has no port pairs")?;
    let segment = segment_of(&network_id).ok_or_else(|| format!("network {network_id} is unknown"))?;
    Ok(Chain {
        id: chain.id.clone(),
        network_id,
        segment,
        symmetric: chain.symmetric,
        fail_open: chain.fail_open,
        hops,
        all,
        classifiers,
        select_base: 1 + (index as u16).saturating_mul(64),
    })
}

/// Which way through the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Forward,
    Reverse,
}

/// Compiles tables 20 and 21 of `dpid`.
pub fn compile(state: &State, plan: &Plan, dpid: u64, out: &mut SwitchFlows) {
    let infra = cookie::of(cookie::INFRA, "pipeline");
    out.add(table::STEER, 0, vec![], infra, vec![Instruction::GotoTable(table::FORWARD)]);
    for chain in &plan.steering.chains {
        let c = cookie::of(cookie::STEER, &chain.id);
        let mut ctx = Ctx { plan, dpid, chain, cookie: c, out: &mut *out };
        // Back from an instance: on through the chain.
        for (h, inst) in &chain.all {
            if inst.egress.1.dpid == dpid {
                let next = ctx.after(*h, Dir::Forward);
                ctx.add(table::STEER, PRIO_RETURN, vec![Oxm::in_port(inst.egress.1.ofport)], next);
            }
            if inst.ingress.0 != inst.egress.0 && inst.ingress.1.dpid == dpid {
                let next = if chain.symmetric {
                    ctx.after(*h, Dir::Reverse)
                } else {
                    vec![Instruction::GotoTable(table::FORWARD)]
                };
                ctx.add(table::STEER, PRIO_RETURN, vec![Oxm::in_port(inst.ingress.1.ofport)], next);
            }
        }
        // Classified traffic entering the network here.
        let here = plan.local_ports(state, dpid).any(|(p, _)| p.network_id == chain.network_id);
        if !here {
            continue;
        }
        let meta = Oxm::metadata(u64::from(chain.segment), Some(METADATA_MASK));
        for fc in &chain.classifiers {
            let mac = |id: &Option<String>| id.as_ref().and_then(|p| state.ports.get(p)).map(|p| p.mac);
            let (src_mac, dst_mac) = (mac(&fc.logical_source_port), mac(&fc.logical_destination_port));
            if fc.logical_source_port.is_some() && src_mac.is_none() {
                continue;
            }
            let first = ctx.hop(0, Dir::Forward);
            for fields in l3_l4(fc, false) {
                let mut fwd = vec![meta.clone()];
                fwd.extend(src_mac.map(Oxm::eth_src));
                fwd.extend(dst_mac.map(Oxm::eth_dst));
                fwd.extend(fields);
                ctx.add(table::STEER, PRIO_CLASSIFIER, fwd, first.clone());
            }
            if chain.symmetric {
                let last = ctx.hop(chain.hops.len().saturating_sub(1), Dir::Reverse);
                for fields in l3_l4(fc, true) {
                    let mut rev = vec![meta.clone()];
                    rev.extend(dst_mac.map(Oxm::eth_src));
                    rev.extend(src_mac.map(Oxm::eth_dst));
                    rev.extend(fields);
                    ctx.add(table::STEER, PRIO_CLASSIFIER, rev, last.clone());
                }
            }
        }
    }
}

/// The classifier's IPv4 matches (several when a port range is not one aligned block),
/// source and destination swapped for `reverse`.
fn l3_l4(fc: &FlowClassifier, reverse: bool) -> Vec<Vec<Oxm>> {
    let mut base = vec![Oxm::eth_type(ETH_IPV4)];
    let (src_prefix, dst_prefix, src_ports, dst_ports) = if reverse {
        (fc.destination_prefix, fc.source_prefix, fc.destination_ports, fc.source_ports)
    } else {
        (fc.source_prefix, fc.destination_prefix, fc.source_ports, fc.destination_ports)
    };
    if let Some((ip, len)) = src_prefix {
        base.extend(ipv4(ofb::IPV4_SRC, ip, len));
    }
    if let Some((ip, len)) = dst_prefix {
        base.extend(ipv4(ofb::IPV4_DST, ip, len));
    }
    let Some(proto) = fc.protocol else { return vec![base] };
    base.push(ip_proto(proto));
    let (s, d) = match proto {
        6 => (ofb::TCP_SRC, ofb::TCP_DST),
        17 => (ofb::UDP_SRC, ofb::UDP_DST),
        _ => return vec![base],
    };
    let blocks = |field: u8, range: Option<(u16, u16)>| -> Vec<Option<Oxm>> {
        match range {
            None | Some((0, u16::MAX)) => vec![None],
            Some((lo, hi)) => range_masks(lo, hi).into_iter().map(|(v, m)| Some(u16_field(field, v, m))).collect(),
        }
    };
    let mut out = Vec::new();
    for sp in blocks(s, src_ports) {
        for dp in blocks(d, dst_ports) {
            let mut f = base.clone();
            f.extend(sp.clone());
            f.extend(dp);
            out.push(f);
        }
    }
    out
}

struct Ctx<'a> {
    plan: &'a Plan,
    dpid: u64,
    chain: &'a Chain,
    cookie: u64,
    out: &'a mut SwitchFlows,
}

impl Ctx<'_> {
    fn add(&mut self, t: u8, prio: u16, fields: Vec<Oxm>, instructions: Vec<Instruction>) {
        self.out.add(t, prio, fields, self.cookie, instructions);
    }

    /// What follows hop `h` in direction `dir`: the next hop, or forwarding.
    fn after(&mut self, h: usize, dir: Dir) -> Vec<Instruction> {
        match dir {
            Dir::Forward if h + 1 < self.chain.hops.len() => self.hop(h + 1, dir),
            Dir::Reverse if h > 0 => self.hop(h - 1, dir),
            _ => vec![Instruction::GotoTable(table::FORWARD)],
        }
    }

    /// Sends the packet into hop `h`'s group.
    fn hop(&mut self, h: usize, dir: Dir) -> Vec<Instruction> {
        let Some(live) = self.chain.hops.get(h) else { return vec![] };
        let target = |i: &Instance| if dir == Dir::Forward { i.ingress.clone() } else { i.egress.clone() };
        match live.len() {
            0 if self.chain.fail_open => self.after(h, dir),
            0 => vec![],
            1 => self.deliver(&target(&live[0])),
            n => {
                let select = self.chain.select_base + (h as u16) * 2 + u16::from(dir == Dir::Reverse);
                let meta = u64::from(select) << SELECT_SHIFT;
                for (i, inst) in live.iter().enumerate() {
                    let deliver = self.deliver(&target(inst));
                    self.add(
                        table::STEER_SELECT,
                        PRIO_SELECT,
                        vec![nx::reg_match(SELECT_REG, i as u32), Oxm::metadata(meta, Some(SELECT_MASK))],
                        deliver,
                    );
                }
                vec![
                    Instruction::ApplyActions(vec![nx::multipath_symmetric(n as u16, SELECT_REG)]),
                    Instruction::WriteMetadata { metadata: meta, mask: SELECT_MASK },
                    Instruction::GotoTable(table::STEER_SELECT),
                ]
            }
        }
    }

    /// Into an instance port: output here, or tagged with its VLAN id towards its switch.
    fn deliver(&self, (port_id, at): &(String, Placement)) -> Vec<Instruction> {
        if at.dpid == self.dpid {
            return vec![Instruction::ApplyActions(vec![Action::Output { port: at.ofport, max_len: 0 }])];
        }
        let (Some(&next), Some(&vid)) =
            (self.plan.fabric.next_hop.get(&(self.dpid, at.dpid)), self.plan.steering.vids.get(port_id))
        else {
            return vec![];
        };
        vec![Instruction::ApplyActions(super::forward::tagged_output(vid, next))]
    }
}

/// The source MAC of the controller's health probes through IPS instances.
pub const PROBE_SRC: [u8; 6] = [0x02, 0x74, 0x6e, 0x00, 0x00, 0x02];
pub const PRIO_PROBE: u16 = 1000;
pub const PRIO_LABEL: u16 = 120;

/// Table 0 for steering: what instance ports may send (IPv4 into table 20; probes to
/// the controller), and frames tagged with an instance port's VLAN id from fabric ports
/// towards that port.
pub fn classify(state: &State, plan: &Plan, dpid: u64, ports: &super::SwitchPorts, out: &mut SwitchFlows) {
    for port_id in &plan.steering.ports {
        let (Some(port), Some(at)) = (state.ports.get(port_id), plan.placed.get(port_id)) else { continue };
        let Some(net) = state.networks.get(&port.network_id) else { continue };
        let c = cookie::of(cookie::STEER, port_id);
        if at.dpid == dpid {
            out.add(
                table::CLASSIFY,
                PRIO_PROBE,
                vec![Oxm::in_port(at.ofport), Oxm::eth_src(PROBE_SRC)],
                c,
                vec![Instruction::ApplyActions(vec![Action::output(crate::wire::of13::action::port_no::CONTROLLER)])],
            );
            out.add(
                table::CLASSIFY,
                super::classify::PRIO_PORT,
                vec![Oxm::in_port(at.ofport), Oxm::vlan_vid(super::classify::VLAN_NONE), Oxm::eth_type(ETH_IPV4)],
                c,
                super::classify::enter(net.segment, table::STEER),
            );
        }
        let Some(&vid) = plan.steering.vids.get(port_id) else { continue };
        let onward = if at.dpid == dpid {
            vec![Action::PopVlan, Action::Output { port: at.ofport, max_len: 0 }]
        } else if let Some(&next) = plan.fabric.next_hop.get(&(dpid, at.dpid)) {
            vec![Action::Output { port: next, max_len: 0 }]
        } else {
            continue;
        };
        for &link in &ports.link_ports {
            if link == onward_port(&onward) {
                continue; // never back where it came from
            }
            out.add(
                table::CLASSIFY,
                PRIO_LABEL,
                vec![Oxm::in_port(link), Oxm::vlan_vid(super::classify::VLAN_PRESENT | vid)],
                c,
                vec![Instruction::ApplyActions(onward.clone())],
            );
        }
    }
}

fn onward_port(actions: &[Action]) -> u32 {
    match actions {
        [Action::Output { port, .. }] => *port,
        _ => u32::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{bind, fabric, world};
    use super::super::Runtime;
    use super::*;
    use crate::tenant::flows::FlowKey;

    const R1: [u8; 6] = [0xfa, 0x16, 0x3e, 0, 0, 0];

    /// Red gets IPS instance `name` with ports `<name>-in`/`<name>-out` on switch 2
    /// (interfaces s2-eth<n>, s2-eth<n+1>), one group `g` of the given instances, a
    /// classifier r1 -> tcp/80 and a chain over them.
    fn with_chain(st: &mut State, instances: &[(&str, u32)], symmetric: bool, fail_mode: &str) {
        let mut pairs = Vec::new();
        for (name, n) in instances {
            for (side, k) in [("in", *n), ("out", n + 1)] {
                let id = format!("{name}-{side}");
                st.apply(
                    "port",
                    &id,
                    false,
                    &format!(
                        r#"{{"network_id":"red","project_id":"p-red","mac_address":"fa:16:3e:00:01:{k:02x}","fixed_ips":[],"port_security_enabled":false}}"#
                    ),
                )
                .expect("port");
                bind(st, &id, "h2", 2, &format!("s2-eth{k}"), true);
            }
            st.apply("port_pair", name, false, &format!(r#"{{"ingress":"{name}-in","egress":"{name}-out"}}"#))
                .expect("pair");
            pairs.push(format!("\"{name}\""));
        }
        st.apply("port_pair_group", "g", false, &format!(r#"{{"port_pairs":[{}]}}"#, pairs.join(","))).expect("group");
        st.apply(
            "flow_classifier",
            "fc",
            false,
            r#"{"ethertype":"IPv4","protocol":"tcp","destination_port_range_min":80,"destination_port_range_max":80,"logical_source_port":"r1"}"#,
        )
        .expect("classifier");
        st.apply(
            "port_chain",
            "c",
            false,
            &format!(
                r#"{{"port_pair_groups":["g"],"flow_classifiers":["fc"],"chain_parameters":{{"symmetric":{symmetric},"fail_mode":"{fail_mode}"}}}}"#
            ),
        )
        .expect("chain");
    }

    fn plan(st: &State, dead: &[&str]) -> Plan {
        let (f, peers) = fabric();
        let rt = Runtime { dead_pairs: dead.iter().map(|d| d.to_string()).collect(), ..Runtime::default() };
        Plan::new(st, f, &peers, &rt)
    }

    fn flow(out: &SwitchFlows, t: u8, prio: u16, fields: Vec<Oxm>) -> Option<&Vec<Instruction>> {
        out.flows.get(&FlowKey::new(t, prio, fields)).map(|f| &f.instructions)
    }

    fn forward_fields() -> Vec<Oxm> {
        vec![
            Oxm::metadata(101, Some(METADATA_MASK)),
            Oxm::eth_src(R1),
            Oxm::eth_type(ETH_IPV4),
            ip_proto(6),
            Oxm::basic(ofb::TCP_DST, &80u16.to_be_bytes()),
        ]
    }

    #[test]
    fn classified_traffic_goes_to_the_instance_across_the_fabric_and_back_on() {
        let (mut st, _) = world();
        with_chain(&mut st, &[("ips", 4)], true, "closed");
        let p = plan(&st, &[]);
        assert!(p.steering.problems.is_empty(), "{:?}", p.steering.problems);
        let (l_in, l_out) = (p.steering.vids["ips-in"], p.steering.vids["ips-out"]);
        let s1 = super::super::compile_switch(&st, &p, 1);
        // Forward: r1's tcp/80 leaves switch 1 tagged for the instance's ingress port.
        assert_eq!(
            flow(&s1, table::STEER, PRIO_CLASSIFIER, forward_fields()),
            Some(&vec![Instruction::ApplyActions(super::super::forward::tagged_output(l_in, 10))])
        );
        // Reverse (symmetric): replies to r1 from port 80 go into the egress port.
        let rev = vec![
            Oxm::metadata(101, Some(METADATA_MASK)),
            Oxm::eth_dst(R1),
            Oxm::eth_type(ETH_IPV4),
            ip_proto(6),
            Oxm::basic(ofb::TCP_SRC, &80u16.to_be_bytes()),
        ];
        assert_eq!(
            flow(&s1, table::STEER, PRIO_CLASSIFIER, rev),
            Some(&vec![Instruction::ApplyActions(super::super::forward::tagged_output(l_out, 10))])
        );
        // Switch 2 pops the tag into the port, takes IPv4 back from the instance into
        // table 20 and sends it on to forwarding; instance ports get no floods.
        let s2 = super::super::compile_switch(&st, &p, 2);
        let label = |l: u16| vec![Oxm::in_port(10), Oxm::vlan_vid(super::super::classify::VLAN_PRESENT | l)];
        assert_eq!(
            flow(&s2, table::CLASSIFY, PRIO_LABEL, label(l_in)),
            Some(&vec![Instruction::ApplyActions(vec![Action::PopVlan, Action::Output { port: 4, max_len: 0 }])])
        );
        let back = vec![Oxm::in_port(5), Oxm::vlan_vid(super::super::classify::VLAN_NONE), Oxm::eth_type(ETH_IPV4)];
        assert_eq!(
            flow(&s2, table::CLASSIFY, super::super::classify::PRIO_PORT, back),
            Some(&super::super::classify::enter(101, table::STEER))
        );
        for port in [4, 5] {
            assert_eq!(
                flow(&s2, table::STEER, PRIO_RETURN, vec![Oxm::in_port(port)]),
                Some(&vec![Instruction::GotoTable(table::FORWARD)])
            );
            assert!(flow(&s2, table::CLASSIFY, PRIO_PROBE, vec![Oxm::in_port(port), Oxm::eth_src(PROBE_SRC)]).is_some());
        }
        let flood = &s2.groups[&101];
        assert!(flood.buckets.iter().all(|b| !b.actions.contains(&Action::Output { port: 4, max_len: 0 })));
        // No anti-spoofing or ACL flows for instance ports.
        assert!(s2
            .flows
            .keys()
            .filter(|k| k.table != table::CLASSIFY && k.table != table::STEER)
            .all(|k| !k.match_.fields.contains(&Oxm::in_port(4))));
    }

    #[test]
    fn a_group_spreads_by_a_symmetric_hash_and_dead_instances_fail_open_or_closed() {
        let (mut st, _) = world();
        with_chain(&mut st, &[("a", 4), ("b", 6)], false, "closed");
        let p = plan(&st, &[]);
        let s1 = super::super::compile_switch(&st, &p, 1);
        let first = flow(&s1, table::STEER, PRIO_CLASSIFIER, forward_fields()).expect("classifier flow");
        assert_eq!(first[0], Instruction::ApplyActions(vec![nx::multipath_symmetric(2, SELECT_REG)]));
        assert_eq!(first[2], Instruction::GotoTable(table::STEER_SELECT));
        let selects: Vec<_> = s1.flows.keys().filter(|k| k.table == table::STEER_SELECT).collect();
        assert_eq!(selects.len(), 2);
        // One dead: straight to the other.
        let p = plan(&st, &["a"]);
        let s1 = super::super::compile_switch(&st, &p, 1);
        assert_eq!(
            flow(&s1, table::STEER, PRIO_CLASSIFIER, forward_fields()),
            Some(&vec![Instruction::ApplyActions(super::super::forward::tagged_output(p.steering.vids["b-in"], 10))])
        );
        // Both dead: fail-closed drops, fail-open forwards as if there were no chain.
        let p = plan(&st, &["a", "b"]);
        let s1 = super::super::compile_switch(&st, &p, 1);
        assert_eq!(flow(&s1, table::STEER, PRIO_CLASSIFIER, forward_fields()), Some(&vec![]));
        let (mut st, _) = world();
        with_chain(&mut st, &[("a", 4), ("b", 6)], false, "open");
        let p = plan(&st, &["a", "b"]);
        let s1 = super::super::compile_switch(&st, &p, 1);
        assert_eq!(
            flow(&s1, table::STEER, PRIO_CLASSIFIER, forward_fields()),
            Some(&vec![Instruction::GotoTable(table::FORWARD)])
        );
    }

    #[test]
    fn a_chain_across_networks_is_reported_not_compiled() {
        let (mut st, _) = world();
        with_chain(&mut st, &[("ips", 4)], true, "closed");
        // The classifier's source port is on blue.
        st.apply("flow_classifier", "fc", false, r#"{"protocol":"tcp","logical_source_port":"b1"}"#).expect("fc");
        let p = plan(&st, &[]);
        assert!(p.steering.chains.is_empty());
        assert!(p.steering.problems[0].contains("b1"), "{:?}", p.steering.problems);
        assert!(st.apply("port_chain", "x", false, r#"{"chain_parameters":{"fail_mode":"sometimes"}}"#).is_err());
    }
}
