//! What the compiler produces and the reconciler and verifier consume: the flows and
//! groups one switch should hold, keyed the way OpenFlow identifies them.

use std::collections::{BTreeMap, HashMap};

use crate::wire::of13::{Bucket, Instruction, Match, Oxm};

/// Tables of the tenant pipeline (see ARCHITECTURE.md).
pub mod table {
    /// Classify: LLDP, anti-spoofing, network id into metadata, VLAN off fabric ports.
    pub const CLASSIFY: u8 = 0;
    /// Ingress ACL: security groups of the sending port (its egress rules).
    pub const INGRESS_ACL: u8 = 10;
    /// Ingress ACL after connection tracking: invalid, established, new.
    pub const INGRESS_ACL_CT: u8 = 11;
    /// Ingress ACL: which remote groups the destination address belongs to (metadata bits).
    pub const INGRESS_ACL_REMOTE: u8 = 12;
    /// Ingress ACL: the sending port's rules for new connections.
    pub const INGRESS_ACL_RULES: u8 = 13;
    /// Steering: classified traffic to IPS instances, traffic back from them on.
    pub const STEER: u8 = 20;
    /// Steering: the instance a group's hash chose (reg0), per selection (metadata).
    pub const STEER_SELECT: u8 = 21;
    /// Forward: ARP/DHCP to the controller, unicast by eth_dst, broadcast to groups.
    pub const FORWARD: u8 = 30;
    /// Egress ACL: security groups of the receiving port (its ingress rules).
    pub const EGRESS_ACL: u8 = 40;
    /// Egress ACL after connection tracking: invalid, established (output), new.
    pub const EGRESS_ACL_CT: u8 = 41;
    /// Egress ACL: which remote groups the source address belongs to (metadata bits).
    pub const EGRESS_ACL_REMOTE: u8 = 42;
    /// Egress ACL: the receiving port's rules for new connections; outputs to the port.
    pub const EGRESS_ACL_RULES: u8 = 43;
    /// Every table, in order.
    pub const ALL: [u8; 12] = [
        CLASSIFY,
        INGRESS_ACL,
        INGRESS_ACL_CT,
        INGRESS_ACL_REMOTE,
        INGRESS_ACL_RULES,
        STEER,
        STEER_SELECT,
        FORWARD,
        EGRESS_ACL,
        EGRESS_ACL_CT,
        EGRESS_ACL_REMOTE,
        EGRESS_ACL_RULES,
    ];
}

/// How OpenFlow names a flow: table, priority and match (fields in canonical order).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub table: u8,
    pub priority: u16,
    pub match_: Match,
}

impl FlowKey {
    /// A key with the match's fields put in canonical order (class, then field number),
    /// which is also an order that satisfies OpenFlow prerequisites.
    pub fn new(table: u8, priority: u16, mut fields: Vec<Oxm>) -> Self {
        canonical(&mut fields);
        FlowKey { table, priority, match_: Match::new(fields) }
    }
}

/// Sorts match fields canonically.
pub fn canonical(fields: &mut [Oxm]) {
    fields.sort_by_key(|f| (f.class, f.field));
}

/// What a flow does, and who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowBody {
    /// Names the producing object (see [`cookie`]).
    pub cookie: u64,
    pub instructions: Vec<Instruction>,
}

/// One group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `of13::group_type`.
    pub group_type: u8,
    pub buckets: Vec<Bucket>,
}

/// Everything one switch should hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwitchFlows {
    /// aHash: flows are hashed a lot (every reconciliation looks up every flow).
    pub flows: HashMap<FlowKey, FlowBody, ahash::RandomState>,
    pub groups: BTreeMap<u32, Group>,
}

impl SwitchFlows {
    /// Adds a flow (a later flow with the same key replaces an earlier one).
    pub fn add(&mut self, table: u8, priority: u16, fields: Vec<Oxm>, cookie: u64, instructions: Vec<Instruction>) {
        self.flows.insert(FlowKey::new(table, priority, fields), FlowBody { cookie, instructions });
    }
}

/// Cookies: the top byte names the kind of producer, the rest a hash of its id, so
/// a flow on a switch says what made it.
pub mod cookie {
    /// Pipeline skeleton (table-miss, LLDP, ARP/DHCP to the controller).
    pub const INFRA: u8 = 0x71;
    /// A network (forwarding, flooding, fabric classification).
    pub const NETWORK: u8 = 0x72;
    /// A tenant port (classification, anti-spoofing, delivery).
    pub const PORT: u8 = 0x73;
    /// A port's security-group rules.
    pub const ACL: u8 = 0x74;
    /// A port chain (steering) or an IPS instance's ports.
    pub const STEER: u8 = 0x75;

    /// The cookie of `kind` for the object `id`.
    pub fn of(kind: u8, id: &str) -> u64 {
        // FNV-1a, 56 bits: stable across runs and builds.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in id.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        (u64::from(kind) << 56) | (h & 0x00ff_ffff_ffff_ffff)
    }

    /// The kind byte of a cookie.
    pub fn kind(cookie: u64) -> u8 {
        (cookie >> 56) as u8
    }

    /// Whether tenant mode made the flow.
    pub fn is_tenant(cookie: u64) -> bool {
        matches!(kind(cookie), INFRA | NETWORK | PORT | ACL | STEER)
    }
}
