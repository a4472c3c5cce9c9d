//! Tables 10 and 11, ingress ACL: the security groups of the port a packet comes
//! from (its *egress* rules), stateful through conntrack in the port's zone.
//!
//! | table | priority | match | actions |
//! |---|---|---|---|
//! | 10 | 100 | in_port, DHCP client -> server | goto 20 |
//! | 10 | 90 | in_port, ARP | goto 20 |
//! | 10 | 80 | in_port, IPv4 (stateful port) | ct(zone=port) -> table 11 |
//! | 10 | 80 | in_port (no port security) | goto 20 |
//! | 10 | 50 | in_port, rule (stateless port) | goto 20 |
//! | 11 | 110 | in_port, ct_state=+trk+inv | drop |
//! | 11 | 100 | in_port, ct_state=+trk+est or +trk+rel | goto 20 |
//! | 11 | 50 | in_port, ct_state=+trk+new, rule | ct(commit, zone=port), goto 20 |
//! | 10, 11 | 0 | anything else | drop |

use crate::tenant::flows::{cookie, table, SwitchFlows};
use crate::tenant::state::{Direction, State};
use crate::wire::of13::nx::{ct_state, ct_state_match, Ct};
use crate::wire::of13::oxm::ofb;
use crate::wire::of13::{Instruction, Oxm};

use super::rules::{ip_proto, port_rules, rule_matches, stateful, u16_field, ETH_ARP, ETH_IPV4, PROTO_UDP};
use super::Plan;

pub const PRIO_DHCP: u16 = 100;
pub const PRIO_ARP: u16 = 90;
pub const PRIO_TRACK: u16 = 80;
pub const PRIO_INVALID: u16 = 110;
pub const PRIO_ESTABLISHED: u16 = 100;
pub const PRIO_RULE: u16 = 50;

/// ct_state matches for the tracked states that pass without a rule.
pub fn established() -> [u32; 2] {
    [ct_state::EST, ct_state::REL]
}

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

pub fn compile(state: &State, plan: &Plan, dpid: u64, out: &mut SwitchFlows) {
    let infra = cookie::of(cookie::INFRA, "pipeline");
    out.add(table::INGRESS_ACL, 0, vec![], infra, vec![]);
    out.add(table::INGRESS_ACL_CT, 0, vec![], infra, vec![]);
    let pass = || vec![Instruction::GotoTable(table::STEER)];
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
        let rules: Vec<Vec<Oxm>> =
            port_rules(state, port, Direction::Egress).flat_map(|r| rule_matches(r, plan)).collect();
        if !stateful(state, port) {
            for r in rules {
                let mut f = inp();
                f.extend(r);
                out.add(table::INGRESS_ACL, PRIO_RULE, f, c, pass());
            }
            continue;
        }
        let Some(&zone) = plan.zones.get(&port.id) else { continue };
        out.add(
            table::INGRESS_ACL,
            PRIO_TRACK,
            vec![Oxm::in_port(at.ofport), Oxm::eth_type(ETH_IPV4)],
            c,
            vec![Instruction::ApplyActions(vec![Ct { commit: false, zone, table: Some(table::INGRESS_ACL_CT) }
                .to_action()])],
        );
        out.add(table::INGRESS_ACL_CT, PRIO_INVALID, vec![Oxm::in_port(at.ofport), tracked(ct_state::INV)], c, vec![]);
        for bit in established() {
            out.add(table::INGRESS_ACL_CT, PRIO_ESTABLISHED, vec![Oxm::in_port(at.ofport), tracked(bit)], c, pass());
        }
        for r in rules {
            let mut f = vec![Oxm::in_port(at.ofport), tracked(ct_state::NEW)];
            f.extend(r);
            out.add(
                table::INGRESS_ACL_CT,
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
