//! Tables 40 to 43, egress ACL: the security groups of the port a packet goes to (its
//! *ingress* rules), stateful through conntrack in that port's zone, and the output to
//! the port. Table 42 (the remote-group membership of the source address) is built by
//! [`super::remote`].
//!
//! | table | priority | match | actions |
//! |---|---|---|---|
//! | 40 | 100 | metadata=segment, eth_dst=port MAC, IPv4 (stateful port) | ct(zone=port, table=41) |
//! | 40 | 90 | metadata=segment, eth_dst=port MAC, ARP (everything without port security) | output port |
//! | 40 | 50 | metadata=segment, eth_dst=port MAC, rule (stateless port) | output port |
//! | 41 | 110 | metadata, eth_dst, ct_state=+trk+inv | drop |
//! | 41 | 100 | metadata, eth_dst, ct_state=+trk+est or +trk+rel | output port |
//! | 41 | 50 | ct_state=+trk+new | goto 42 |
//! | 43 | 50 | metadata (+ remote group bit), eth_dst, rule | ct(commit, zone=port), output port |
//! | 40, 41, 43 | 0 | anything else | drop |

use crate::tenant::flows::{cookie, table, SwitchFlows};
use crate::tenant::state::{Direction, State};
use crate::wire::of13::nx::{ct_state, Ct};
use crate::wire::of13::{Action, Instruction, Oxm};

use super::ingress_acl::{established, tracked, PRIO_ESTABLISHED, PRIO_INVALID, PRIO_NEW, PRIO_RULE};
use super::remote::{self, GroupBits};
use super::rules::{metadata_with, port_rules, rule_matches, stateful, ETH_ARP, ETH_IPV4};
use super::{Plan, METADATA_MASK};

pub const PRIO_TRACK: u16 = 100;
pub const PRIO_PASS: u16 = 90;

pub fn compile(state: &State, plan: &Plan, dpid: u64, bits: &GroupBits, out: &mut SwitchFlows) {
    let infra = cookie::of(cookie::INFRA, "pipeline");
    out.add(table::EGRESS_ACL, 0, vec![], infra, vec![]);
    out.add(table::EGRESS_ACL_CT, 0, vec![], infra, vec![]);
    out.add(table::EGRESS_ACL_RULES, 0, vec![], infra, vec![]);
    out.add(
        table::EGRESS_ACL_CT,
        PRIO_NEW,
        vec![tracked(ct_state::NEW)],
        infra,
        vec![Instruction::GotoTable(table::EGRESS_ACL_REMOTE)],
    );
    remote::compile(
        state,
        plan,
        bits,
        table::EGRESS_ACL_REMOTE,
        remote::remote_field(true),
        table::EGRESS_ACL_RULES,
        out,
    );
    for (port, ofports) in plan.local_outputs(state, dpid) {
        let Some(net) = state.networks.get(&port.network_id) else { continue };
        let c = cookie::of(cookie::ACL, &port.id);
        let seg = u64::from(net.segment);
        let to = || vec![Oxm::metadata(seg, Some(METADATA_MASK)), Oxm::eth_dst(port.mac)];
        let output = || {
            vec![Instruction::ApplyActions(ofports.iter().map(|&port| Action::Output { port, max_len: 0 }).collect())]
        };
        if !port.port_security {
            out.add(table::EGRESS_ACL, PRIO_PASS, to(), c, output());
            continue;
        }
        let mut arp = to();
        arp.push(Oxm::eth_type(ETH_ARP));
        out.add(table::EGRESS_ACL, PRIO_PASS, arp, c, output());
        if !stateful(state, port) {
            for r in port_rules(state, port, Direction::Ingress) {
                for (fields, _) in rule_matches(r, plan, &GroupBits::new()) {
                    let mut f = to();
                    f.extend(fields);
                    out.add(table::EGRESS_ACL, PRIO_RULE, f, c, output());
                }
            }
            continue;
        }
        let Some(&zone) = plan.zones.get(&port.id) else { continue };
        let mut ip = to();
        ip.push(Oxm::eth_type(ETH_IPV4));
        out.add(
            table::EGRESS_ACL,
            PRIO_TRACK,
            ip,
            c,
            vec![Instruction::ApplyActions(vec![
                Ct { commit: false, zone, table: Some(table::EGRESS_ACL_CT) }.to_action()
            ])],
        );
        let mut inv = to();
        inv.push(tracked(ct_state::INV));
        out.add(table::EGRESS_ACL_CT, PRIO_INVALID, inv, c, vec![]);
        for bit in established() {
            let mut f = to();
            f.push(tracked(bit));
            out.add(table::EGRESS_ACL_CT, PRIO_ESTABLISHED, f, c, output());
        }
        for r in port_rules(state, port, Direction::Ingress) {
            for (fields, group_bit) in rule_matches(r, plan, bits) {
                let mut f: Vec<Oxm> = metadata_with(seg, METADATA_MASK, group_bit).into_iter().collect();
                f.push(Oxm::eth_dst(port.mac));
                f.extend(fields);
                out.add(
                    table::EGRESS_ACL_RULES,
                    PRIO_RULE,
                    f,
                    c,
                    vec![Instruction::ApplyActions(
                        std::iter::once(Ct { commit: true, zone, table: None }.to_action())
                            .chain(ofports.iter().map(|&port| Action::Output { port, max_len: 0 }))
                            .collect(),
                    )],
                );
            }
        }
    }
}
