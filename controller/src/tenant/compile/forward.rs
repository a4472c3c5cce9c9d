//! Table 30, forward: the network's switching, spread over the fabric.
//!
//! | priority | match | actions |
//! |---|---|---|
//! | 900 | broadcast ARP request | output CONTROLLER (answered from netapi's knowledge) |
//! | 900 | DHCP client -> server | output CONTROLLER (answered from IPAM) |
//! | 110 | metadata=segment+copy bit, eth_dst=MAC of a migrating port | a place of it here (second or primary): goto 40; else push VLAN segment with priority 7, output towards the second place |
//! | 105 | in_port=the fabric port towards a migrating port's second place, metadata=segment, eth_dst=its MAC (on its primary switch) | the marked copy out of IN_PORT, goto 40 |
//! | 100 | metadata=segment, eth_dst=MAC of a port on this switch | (migrating: a marked copy towards its second place, see below) goto 40 |
//! | 100 | metadata=segment, eth_dst=MAC of a port elsewhere (this switch on the network's span) | push VLAN segment, output the port towards its switch |
//! | 60 | in_port=fabric port off the spanning tree, eth_dst multicast | drop (a loop's copy) |
//! | 50 | metadata=segment, eth_dst multicast | group segment |
//! | 0 | anything else (unknown unicast) | drop |
//!
//! Migration: while a port has two bindings whose interfaces exist (the VM's old and new
//! place), traffic to it goes to its primary place as usual, and the primary place's
//! switch also sends a copy, tagged with VLAN priority 7 (the copy mark), towards the
//! second place; switches on the way classify marked frames with the copy bit in
//! metadata and forward them by the 110 flows only, so a copy is never copied again and
//! cannot loop. Egress outputs to every place a port has on the switch.
//!
//! Unicast ARP requests (a host re-checking a neighbour it knows) are forwarded like any
//! unicast and answered by their target, so they do not depend on the controller.
//!
//! Group `segment` (ALL) per network, on every switch: one bucket per local port of
//! the network, one per spanning-tree fabric port (push VLAN segment, output).
//! OpenFlow never sends a packet back out of its input port, so a flood does not
//! return where it came from.

use crate::tenant::flows::{cookie, table, Group, SwitchFlows};
use crate::tenant::state::State;
use crate::wire::of13::action::port_no;
use crate::wire::of13::group_meter::group_type;
use crate::wire::of13::oxm::ofb;
use crate::wire::of13::{Action, Bucket, Instruction, Oxm};

use super::classify::VLAN_PRESENT;
use super::ingress_acl::dhcp_client;
use super::rules::ETH_ARP;
use super::{Plan, SwitchPorts, COPY_BIT, COPY_PCP, METADATA_MASK};

pub const PRIO_CONTROLLER: u16 = 900;
pub const PRIO_UNICAST: u16 = 100;
/// A copy of a migrating port's traffic on its way to the port's second place.
pub const PRIO_COPY: u16 = 110;
/// Traffic for a migrating port that came in by the fabric port its copy leaves by.
pub const PRIO_COPY_BACK: u16 = 105;
pub const PRIO_LOOP: u16 = 60;
pub const PRIO_FLOOD: u16 = 50;
const MULTICAST: [u8; 6] = [1, 0, 0, 0, 0, 0];

/// Tag with the network's VLAN and send out of `port`.
pub fn tagged_output(segment: u16, port: u32) -> Vec<Action> {
    vec![
        Action::PushVlan(0x8100),
        Action::SetField(Oxm::vlan_vid(VLAN_PRESENT | segment)),
        Action::Output { port, max_len: 0 },
    ]
}

/// Out of a fabric port tagged with the network's segment and marked as a copy.
pub fn copy_output(segment: u16, port: u32) -> Vec<Action> {
    let mut actions = tagged_output(segment, port);
    actions.insert(2, Action::SetField(Oxm::basic(ofb::VLAN_PCP, &[COPY_PCP])));
    actions
}

pub fn multicast_dst() -> Oxm {
    Oxm::basic_masked(ofb::ETH_DST, &MULTICAST, &MULTICAST)
}

pub fn compile(state: &State, plan: &Plan, dpid: u64, ports: &SwitchPorts, out: &mut SwitchFlows) {
    let infra = cookie::of(cookie::INFRA, "pipeline");
    let to_controller = || vec![Instruction::ApplyActions(vec![Action::output(port_no::CONTROLLER)])];
    out.add(table::FORWARD, 0, vec![], infra, vec![]);
    out.add(
        table::FORWARD,
        PRIO_CONTROLLER,
        vec![Oxm::eth_dst([0xff; 6]), Oxm::eth_type(ETH_ARP), Oxm::basic(ofb::ARP_OP, &1u16.to_be_bytes())],
        infra,
        to_controller(),
    );
    out.add(table::FORWARD, PRIO_CONTROLLER, dhcp_client(), infra, to_controller());
    for &link in ports.link_ports.difference(&ports.tree_ports) {
        out.add(table::FORWARD, PRIO_LOOP, vec![Oxm::in_port(link), multicast_dst()], infra, vec![]);
    }

    for (net_id, members) in &plan.by_network {
        let Some(net) = state.networks.get(net_id) else { continue };
        let meta = || Oxm::metadata(u64::from(net.segment), Some(METADATA_MASK));
        let mut buckets = Vec::new();
        let on_span = plan.in_span(net_id, dpid);
        for port_id in members {
            let (Some(port), Some(at)) = (state.ports.get(port_id), plan.placed.get(port_id)) else { continue };
            if plan.steering.ports.contains(port_id) {
                continue; // an IPS instance's port: only steered traffic goes there
            }
            let copy = plan.copies.get(port_id);
            let c = cookie::of(cookie::PORT, port_id);
            for place in plan.places(port_id).filter(|p| p.dpid == dpid) {
                buckets.push(bucket(vec![Action::Output { port: place.ofport, max_len: 0 }]));
            }
            // Towards the second place of a migrating port, marked as a copy so that it is
            // delivered there and not copied again.
            let copy_hop = copy.filter(|c| c.dpid != dpid).and_then(|c| plan.fabric.next_hop.get(&(dpid, c.dpid)));
            let instructions = if at.dpid == dpid {
                let mut i = Vec::new();
                if let Some(&next) = copy_hop {
                    let mut actions = copy_output(net.segment, next);
                    actions.push(Action::PopVlan);
                    i.push(Instruction::ApplyActions(actions));
                }
                i.push(Instruction::GotoTable(table::EGRESS_ACL));
                i
            } else if let Some(&next) = plan.fabric.next_hop.get(&(dpid, at.dpid)).filter(|_| on_span) {
                vec![Instruction::ApplyActions(tagged_output(net.segment, next))]
            } else {
                vec![]
            };
            if !instructions.is_empty() {
                out.add(table::FORWARD, PRIO_UNICAST, vec![meta(), Oxm::eth_dst(port.mac)], c, instructions);
            }
            // A packet that came in by the port its copy must leave by: OpenFlow drops an
            // output to the input port unless it is named IN_PORT.
            if let (true, Some(&next)) = (at.dpid == dpid, copy_hop) {
                let mut actions = copy_output(net.segment, port_no::IN_PORT);
                actions.push(Action::PopVlan);
                out.add(
                    table::FORWARD,
                    PRIO_COPY_BACK,
                    vec![Oxm::in_port(next), meta(), Oxm::eth_dst(port.mac)],
                    c,
                    vec![Instruction::ApplyActions(actions), Instruction::GotoTable(table::EGRESS_ACL)],
                );
            }
            let Some(copy) = copy.filter(|_| on_span) else { continue };
            // A copy is delivered wherever the port has a place: also on its primary switch,
            // which a copy can reach while the primary moves (flows change switch by switch).
            let marked = if copy.dpid == dpid || at.dpid == dpid {
                vec![Instruction::GotoTable(table::EGRESS_ACL)]
            } else if let Some(&next) = copy_hop {
                vec![Instruction::ApplyActions(copy_output(net.segment, next))]
            } else {
                continue;
            };
            out.add(
                table::FORWARD,
                PRIO_COPY,
                vec![
                    Oxm::metadata(u64::from(net.segment) | COPY_BIT, Some(METADATA_MASK | COPY_BIT)),
                    Oxm::eth_dst(port.mac),
                ],
                c,
                marked,
            );
        }
        for &tree in &ports.tree_ports {
            buckets.push(bucket(tagged_output(net.segment, tree)));
        }
        out.groups.insert(u32::from(net.segment), Group { group_type: group_type::ALL, buckets });
        out.add(
            table::FORWARD,
            PRIO_FLOOD,
            vec![meta(), multicast_dst()],
            cookie::of(cookie::NETWORK, net_id),
            vec![Instruction::ApplyActions(vec![Action::Group(u32::from(net.segment))])],
        );
    }
}

fn bucket(actions: Vec<Action>) -> Bucket {
    Bucket { weight: 0, watch_port: port_no::ANY, watch_group: port_no::ANY, actions }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::world;
    use super::*;
    use crate::tenant::flows::FlowKey;

    #[test]
    fn local_destinations_go_to_the_acl_and_remote_ones_are_tagged() {
        let (st, plan) = world();
        let mut out = SwitchFlows::default();
        forward_of(&st, &plan, 1, &mut out);
        let meta = Oxm::metadata(101, Some(METADATA_MASK));
        // r1 (mac :00) is local on switch 1, r2 (mac :02) is on switch 2 behind port 10.
        let local =
            FlowKey::new(table::FORWARD, PRIO_UNICAST, vec![meta.clone(), Oxm::eth_dst([0xfa, 0x16, 0x3e, 0, 0, 0])]);
        assert_eq!(out.flows[&local].instructions, vec![Instruction::GotoTable(table::EGRESS_ACL)]);
        let remote = FlowKey::new(table::FORWARD, PRIO_UNICAST, vec![meta, Oxm::eth_dst([0xfa, 0x16, 0x3e, 0, 0, 2])]);
        assert_eq!(out.flows[&remote].instructions, vec![Instruction::ApplyActions(tagged_output(101, 10))]);
        // The red flood group: local r1 (port 1) and the tree port, tagged.
        let g = &out.groups[&101];
        assert_eq!(g.buckets.len(), 2);
        assert_eq!(g.buckets[0].actions, vec![Action::Output { port: 1, max_len: 0 }]);
    }

    fn forward_of(st: &State, plan: &Plan, dpid: u64, out: &mut SwitchFlows) {
        compile(st, plan, dpid, &plan.fabric.switches[&dpid], out);
    }
}
