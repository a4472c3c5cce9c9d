//! Table 0, classify: where a packet comes from decides what it is.
//!
//! | priority | match | actions |
//! |---|---|---|
//! | 1000 | eth_type=LLDP | output CONTROLLER |
//! | 110 | in_port=edge, vlan none, eth_src=port MAC, RARP | output CONTROLLER (a migrated VM announcing itself) |
//! | 110 | in_port=fabric, vlan=segment, priority 7 (a network with a migrating port) | pop VLAN, metadata=segment+copy bit, goto 30 |
//! | 1000 | in_port=IPS instance port, eth_src=probe MAC | output CONTROLLER (health probe came through) |
//! | 120 | in_port=fabric, VLAN id of an IPS instance port (4000-4094) | pop VLAN, output the port (or on towards its switch) |
//! | 100 | in_port=IPS instance port, vlan none, IPv4 | metadata=segment, goto 20 |
//! | 100 | in_port=edge, vlan none, eth_src=port MAC, IPv4 src=port IP (or an allowed address pair) | metadata=segment, goto 10 |
//! | 100 | in_port=edge, vlan none, ARP with sha=port MAC, spa=port IP | metadata=segment, goto 10 |
//! | 100 | in_port=edge, vlan none, eth_src=port MAC, 0.0.0.0:68 -> :67 (DHCP) | metadata=segment, goto 10 |
//! | 100 | in_port=edge (port security off), vlan none | metadata=segment, goto 10 |
//! | 100 | in_port=fabric, vlan=segment | pop VLAN, metadata=segment, goto 30 |
//! | 0 | anything else (spoofed, tagged by a VM, unknown port) | drop |

use std::net::Ipv4Addr;

use crate::tenant::flows::{cookie, table, SwitchFlows};
use crate::tenant::state::{Port, State};
use crate::wire::of13::action::port_no;
use crate::wire::of13::oxm::ofb;
use crate::wire::of13::{Action, Instruction, Oxm};

use super::rules::{ip_proto, ipv4, u16_field, ETH_ARP, ETH_IPV4, PROTO_UDP};
use super::{Plan, SwitchPorts, COPY_BIT, COPY_PCP, METADATA_MASK};

const ETH_LLDP: u16 = 0x88cc;
pub const ETH_RARP: u16 = 0x8035;
/// `OFPVID_NONE` as a match value: no VLAN tag.
pub const VLAN_NONE: u16 = 0x0000;
/// `OFPVID_PRESENT`.
pub const VLAN_PRESENT: u16 = 0x1000;

pub const PRIO_LLDP: u16 = 1000;
pub const PRIO_PORT: u16 = 100;
/// Above [`PRIO_PORT`]: copies marked for a migrating port's second place; a VM's RARP.
pub const PRIO_MARKED: u16 = 110;

/// Write the network's number, continue in `next`.
pub fn enter(segment: u16, next: u8) -> Vec<Instruction> {
    vec![Instruction::WriteMetadata { metadata: u64::from(segment), mask: METADATA_MASK }, Instruction::GotoTable(next)]
}

pub fn compile(state: &State, plan: &Plan, dpid: u64, ports: &SwitchPorts, out: &mut SwitchFlows) {
    let infra = cookie::of(cookie::INFRA, "pipeline");
    out.add(
        table::CLASSIFY,
        PRIO_LLDP,
        vec![Oxm::eth_type(ETH_LLDP)],
        infra,
        vec![Instruction::ApplyActions(vec![Action::output(port_no::CONTROLLER)])],
    );
    out.add(table::CLASSIFY, 0, vec![], infra, vec![]);

    for (port, at) in plan.local_ports(state, dpid) {
        let Some(net) = state.networks.get(&port.network_id) else { continue };
        let c = cookie::of(cookie::PORT, &port.id);
        for fields in edge_matches(port, at.ofport) {
            out.add(table::CLASSIFY, PRIO_PORT, fields, c, enter(net.segment, table::INGRESS_ACL));
        }
        // A migrated VM announces itself (QEMU sends RARP): the controller hears it.
        out.add(
            table::CLASSIFY,
            PRIO_MARKED,
            vec![Oxm::in_port(at.ofport), Oxm::vlan_vid(VLAN_NONE), Oxm::eth_src(port.mac), Oxm::eth_type(ETH_RARP)],
            c,
            vec![Instruction::ApplyActions(vec![Action::output(port_no::CONTROLLER)])],
        );
    }
    super::steer::classify(state, plan, dpid, ports, out);
    let copying: std::collections::BTreeSet<&str> =
        plan.copies.keys().filter_map(|id| state.ports.get(id)).map(|p| p.network_id.as_str()).collect();

    // Fabric ports: every network with ports anywhere may arrive tagged (unicast on
    // its span, floods along the tree).
    for (net_id, _) in plan.by_network.iter() {
        let Some(net) = state.networks.get(net_id) else { continue };
        let c = cookie::of(cookie::NETWORK, net_id);
        for &link in &ports.link_ports {
            let mut instructions = vec![Instruction::ApplyActions(vec![Action::PopVlan])];
            instructions.extend(enter(net.segment, table::FORWARD));
            out.add(
                table::CLASSIFY,
                PRIO_PORT,
                vec![Oxm::in_port(link), Oxm::vlan_vid(VLAN_PRESENT | net.segment)],
                c,
                instructions,
            );
            if copying.contains(net_id.as_str()) {
                out.add(
                    table::CLASSIFY,
                    PRIO_MARKED,
                    vec![
                        Oxm::in_port(link),
                        Oxm::vlan_vid(VLAN_PRESENT | net.segment),
                        Oxm::basic(ofb::VLAN_PCP, &[COPY_PCP]),
                    ],
                    c,
                    vec![
                        Instruction::ApplyActions(vec![Action::PopVlan]),
                        Instruction::WriteMetadata {
                            metadata: u64::from(net.segment) | COPY_BIT,
                            mask: METADATA_MASK | COPY_BIT,
                        },
                        Instruction::GotoTable(table::FORWARD),
                    ],
                );
            }
        }
    }
}

/// What a port may send: the matches of its classify flows.
pub fn edge_matches(port: &Port, ofport: u32) -> Vec<Vec<Oxm>> {
    let base = || vec![Oxm::in_port(ofport), Oxm::vlan_vid(VLAN_NONE)];
    if !port.port_security {
        return vec![base()];
    }
    let mut sources: Vec<(crate::tenant::state::Mac, Ipv4Addr, u8)> =
        port.ips.iter().map(|(_, ip)| (port.mac, *ip, 32)).collect();
    sources.extend(port.address_pairs.iter().copied());
    let mut out = Vec::new();
    for (mac, ip, len) in sources {
        let mut f = base();
        f.extend([Oxm::eth_src(mac), Oxm::eth_type(ETH_IPV4)]);
        f.extend(ipv4(ofb::IPV4_SRC, ip, len));
        out.push(f);
        let mut f = base();
        f.extend([Oxm::eth_src(mac), Oxm::eth_type(ETH_ARP), Oxm::basic(ofb::ARP_SHA, &mac)]);
        f.extend(ipv4(ofb::ARP_SPA, ip, len));
        out.push(f);
    }
    // DHCP before the port has its address.
    let mut f = base();
    f.extend([
        Oxm::eth_src(port.mac),
        Oxm::eth_type(ETH_IPV4),
        Oxm::basic(ofb::IPV4_SRC, &[0, 0, 0, 0]),
        ip_proto(PROTO_UDP),
        u16_field(ofb::UDP_SRC, 68, u16::MAX),
        u16_field(ofb::UDP_DST, 67, u16::MAX),
    ]);
    out.push(f);
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::world;
    use super::*;
    use crate::tenant::flows::FlowKey;

    #[test]
    fn edge_ports_are_anti_spoofed_and_fabric_ports_untagged() {
        let (st, plan) = world();
        let mut out = SwitchFlows::default();
        compile(&st, &plan, 1, &plan.fabric.switches[&1], &mut out);
        // r1 is on port 1 with fa:16:3e:00:00:00 / 10.0.0.5 in red (segment 101).
        let ip = FlowKey::new(
            table::CLASSIFY,
            PRIO_PORT,
            vec![
                Oxm::in_port(1),
                Oxm::vlan_vid(VLAN_NONE),
                Oxm::eth_src([0xfa, 0x16, 0x3e, 0, 0, 0]),
                Oxm::eth_type(ETH_IPV4),
                Oxm::basic(ofb::IPV4_SRC, &[10, 0, 0, 5]),
            ],
        );
        assert_eq!(out.flows[&ip].instructions, enter(101, table::INGRESS_ACL));
        let fabric = FlowKey::new(table::CLASSIFY, PRIO_PORT, vec![Oxm::in_port(10), Oxm::vlan_vid(0x1000 | 102)]);
        assert_eq!(out.flows[&fabric].instructions[0], Instruction::ApplyActions(vec![Action::PopVlan]));
        // A source IP other than the port's has no flow: it hits the drop at priority 0.
        assert!(out.flows.keys().all(|k| !k.match_.fields.contains(&Oxm::basic(ofb::IPV4_SRC, &[10, 0, 0, 6]))));
        // 2 ports x (ip, arp, dhcp) + 2 networks x 1 link + LLDP + drop.
        assert_eq!(out.flows.len(), 2 * 4 + 2 + 2);
    }
}
