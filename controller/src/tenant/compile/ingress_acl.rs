//! Tables 10 to 13, ingress ACL: the security groups of the port a packet comes from
//! (its *egress* rules), stateful through conntrack in the port's zone. Table 12 (the
//! remote-group membership of the destination address) is built by [`super::remote`].
//!
//! | table | priority | match | actions |
//! |---|---|---|---|
//! | 10 | 100 | in_port, DHCP client -> server | goto 20 |
//! | 10 | 90 | in_port, ARP | goto 20 |
//! | 10 | 80 | in_port, IPv4 (stateful port) | ct(zone=port, table=11) |
//! | 10 | 80 | in_port (no port security) | goto 20 |
//! | 10 | 50 | in_port, rule (stateless port) | goto 20 |
//! | 11 | 110 | ct_state=+trk+inv | drop |
//! | 11 | 100 | ct_state=+trk+est or +trk+rel | goto 20 |
//! | 11 | 50 | ct_state=+trk+new | goto 12 |
//! | 13 | 50 | in_port, rule (remote group: its metadata bit) | ct(commit, zone=port), goto 20 |
//! | 10, 11, 13 | 0 | anything else | drop |

use crate::tenant::flows::{cookie, table, SwitchFlows};
use crate::tenant::state::{Direction, State};
use crate::wire::of13::nx::{ct_state, ct_state_match, Ct};
use crate::wire::of13::oxm::ofb;
use crate::wire::of13::{Instruction, Oxm};

use super::remote::{self, GroupBits};
use super::rules::{
    ip_proto, metadata_with, port_rules, rule_matches, stateful, u16_field, ETH_ARP, ETH_IPV4, PROTO_UDP,
};
use super::Plan;

pub const PRIO_DHCP: u16 = 100;
pub const PRIO_ARP: u16 = 90;
pub const PRIO_TRACK: u16 = 80;
pub const PRIO_INVALID: u16 = 110;
pub const PRIO_ESTABLISHED: u16 = 100;
pub const PRIO_NEW: u16 = 50;
pub const PRIO_RULE: u16 = 50;

/// ct_state bits of tracked states that pass without a rule.
pub fn established() -> [u32; 2] {
    [ct_state::EST, ct_state::REL]
}

/// Matches tracked packets with `bit` set.
pub fn tracked(bit: u32) -> Oxm {
    ct_state_match(ct_state::TRK | bit, ct_state::TRK | bit)
}

/// DHCP client -> server.
pub fn dhcp_client() -> Vec<Oxm> {
    vec![
        Oxm::eth_type(ETH_IPV4),
        ip_proto(PROTO_UDP),
        u16_field(ofb::UDP_SRC, 68, u16::MAX),
        u16_field(ofb::UDP_DST, 67, u16::MAX),
    ]
}

pub fn compile(state: &State, plan: &Plan, dpid: u64, bits: &GroupBits, out: &mut SwitchFlows) {
    let infra = cookie::of(cookie::INFRA, "pipeline");
    let pass = || vec![Instruction::GotoTable(table::STEER)];
    out.add(table::INGRESS_ACL, 0, vec![], infra, vec![]);
    out.add(table::INGRESS_ACL_CT, 0, vec![], infra, vec![]);
    out.add(table::INGRESS_ACL_RULES, 0, vec![], infra, vec![]);
    out.add(table::INGRESS_ACL_CT, PRIO_INVALID, vec![tracked(ct_state::INV)], infra, vec![]);
    for bit in established() {
        out.add(table::INGRESS_ACL_CT, PRIO_ESTABLISHED, vec![tracked(bit)], infra, pass());
    }
    out.add(
        table::INGRESS_ACL_CT,
        PRIO_NEW,
        vec![tracked(ct_state::NEW)],
        infra,
        vec![Instruction::GotoTable(table::INGRESS_ACL_REMOTE)],
    );
    remote::compile(
        state,
        plan,
        bits,
        table::INGRESS_ACL_REMOTE,
        remote::remote_field(false),
        table::INGRESS_ACL_RULES,
        out,
    );
    for (port, at) in plan.local_ports(state, dpid) {
        let c = cookie::of(cookie::ACL, &port.id);
        let inp = || vec![Oxm::in_port(at.ofport)];
        if !port.port_security {
            out.add(table::INGRESS_ACL, PRIO_TRACK, inp(), c, pass());
            continue;
        }
        let mut dhcp = inp();
        dhcp.extend(dhcp_client());
        out.add(table::INGRESS_ACL, PRIO_DHCP, dhcp, c, pass());
        out.add(table::INGRESS_ACL, PRIO_ARP, vec![Oxm::in_port(at.ofport), Oxm::eth_type(ETH_ARP)], c, pass());
        if !stateful(state, port) {
            for r in port_rules(state, port, Direction::Egress) {
                for (fields, _) in rule_matches(r, plan, &GroupBits::new()) {
                    let mut f = inp();
                    f.extend(fields);
                    out.add(table::INGRESS_ACL, PRIO_RULE, f, c, pass());
                }
            }
            continue;
        }
        let Some(&zone) = plan.zones.get(&port.id) else { continue };
        out.add(
            table::INGRESS_ACL,
            PRIO_TRACK,
            vec![Oxm::in_port(at.ofport), Oxm::eth_type(ETH_IPV4)],
            c,
            vec![Instruction::ApplyActions(vec![
                Ct { commit: false, zone, table: Some(table::INGRESS_ACL_CT) }.to_action()
            ])],
        );
        for r in port_rules(state, port, Direction::Egress) {
            for (fields, group_bit) in rule_matches(r, plan, bits) {
                let mut f = inp();
                f.extend(fields);
                f.extend(metadata_with(0, 0, group_bit));
                out.add(
                    table::INGRESS_ACL_RULES,
                    PRIO_RULE,
                    f,
                    c,
                    vec![
                        Instruction::ApplyActions(vec![Ct { commit: true, zone, table: None }.to_action()]),
                        Instruction::GotoTable(table::STEER),
                    ],
                );
            }
        }
    }
}
