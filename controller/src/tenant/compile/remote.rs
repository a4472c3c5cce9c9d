//! Tables 12 and 42, remote groups: which of the security groups that rules on this
//! switch name as `remote_group_id` the packet's remote address belongs to, as bits in
//! metadata (bits 16..47; bits 0..15 hold the network). The rule tables then match one
//! bit instead of one flow per member address and port, so a group of N members used
//! by M ports costs N + M flows, not N x M.
//!
//! | table | priority | match | actions |
//! |---|---|---|---|
//! | 12 / 42 | 100 | metadata=segment, IPv4 dst (12) / src (42) = a member's address | metadata bits of its groups, goto 13 / 43 |
//! | 12 / 42 | 0 | anything | clear the group bits, goto 13 / 43 |
//!
//! A switch whose ports name more than 32 remote groups gets bits for the first 32
//! (by id); rules naming the others fall back to one flow per member address.

use std::collections::{BTreeMap, BTreeSet};

use crate::tenant::flows::{cookie, SwitchFlows};
use crate::tenant::state::{Direction, State};
use crate::wire::of13::oxm::ofb;
use crate::wire::of13::{Instruction, Oxm};

use super::rules::{ipv4, ETH_IPV4};
use super::{Plan, METADATA_MASK};

/// Metadata bits that carry group membership.
pub const GROUP_BITS_MASK: u64 = 0x0000_ffff_ffff_0000;
const FIRST_BIT: u32 = 16;
const MAX_GROUPS: usize = 32;

/// Group id -> metadata bit value, for the remote groups rules of this switch's ports name.
pub type GroupBits = BTreeMap<String, u64>;

/// The bits of the remote groups that `direction` rules of this switch's ports name (each
/// direction has its own table, so each has its own 32 bits).
pub fn group_bits(state: &State, plan: &Plan, dpid: u64, direction: Direction) -> GroupBits {
    let mut used = BTreeSet::new();
    for (port, _) in plan.local_outputs(state, dpid) {
        for r in state.rules.values().filter(|r| r.direction == direction) {
            if let Some(g) = &r.remote_group {
                if port.security_groups.contains(&r.group_id) {
                    used.insert(g.clone());
                }
            }
        }
    }
    used.into_iter().take(MAX_GROUPS).enumerate().map(|(i, g)| (g, 1u64 << (FIRST_BIT + i as u32))).collect()
}

/// The membership table `table` (matching the remote address in `field`), continuing in `next`.
pub fn compile(state: &State, plan: &Plan, bits: &GroupBits, table: u8, field: u8, next: u8, out: &mut SwitchFlows) {
    let infra = cookie::of(cookie::INFRA, "pipeline");
    out.add(
        table,
        0,
        vec![],
        infra,
        vec![Instruction::WriteMetadata { metadata: 0, mask: GROUP_BITS_MASK }, Instruction::GotoTable(next)],
    );
    // (segment, address) -> bits of every used group it is a member of.
    let mut members: BTreeMap<(u16, std::net::Ipv4Addr), u64> = BTreeMap::new();
    for (group, bit) in bits {
        for (net, ip) in plan.members.get(group).into_iter().flatten() {
            if let Some(n) = state.networks.get(net) {
                *members.entry((n.segment, *ip)).or_default() |= bit;
            }
        }
    }
    for ((segment, ip), b) in members {
        let mut fields = vec![Oxm::metadata(u64::from(segment), Some(METADATA_MASK)), Oxm::eth_type(ETH_IPV4)];
        fields.extend(ipv4(field, ip, 32));
        out.add(
            table,
            100,
            fields,
            infra,
            vec![Instruction::WriteMetadata { metadata: b, mask: GROUP_BITS_MASK }, Instruction::GotoTable(next)],
        );
    }
}

/// The address field a direction's remote end is in.
pub fn remote_field(ingress: bool) -> u8 {
    if ingress {
        ofb::IPV4_SRC
    } else {
        ofb::IPV4_DST
    }
}
