//! Isolation proof over installed flows: for every ordered pair of tenant networks,
//! no packet entering at an edge port of one can leave at an edge port of the other.
//!
//! This is the pure engine behind `tenet-controller verify`: its input is what the
//! switches actually hold (flows and groups read back), the fabric links between
//! them and the edge ports with their networks; its output is a [`Report`] with a
//! concrete counterexample packet and the flows it hits for every leaking pair.
//!
//! # How
//!
//! A packet enters at every edge port with a symbolic header: every header field is
//! a variable the attacker chooses; metadata, registers and conntrack fields start
//! at zero. At each table the flows are taken by descending priority and the packet
//! space is split lazily: "matches this flow" (its fields become positive ternary
//! constraints) and "matches none so far" (a negative clause per skipped flow: not
//! all of its fields hold). Writes (set_field, push/pop VLAN, write_metadata) make a
//! field concrete; ct makes `ct_state` a variable over the tracker's possible answers.
//! Every branch keeps a witness assignment; when new constraints break it a small
//! exact search (bit-splitting per variable, one falsified literal per clause)
//! finds a new one or proves there is none. Outputs follow fabric links (the packet
//! restarts in table 0 of the peer, with metadata, registers and ct reset) or reach
//! edge ports. Results are memoised per branch state (a 128-bit fingerprint of
//! switch, table, in_port, header values and the constraints that still bear on
//! them), so a state reached from many sources is explored once (two states sharing
//! a fingerprint by chance, odds about n²/2¹²⁸, is the one way a result could be
//! wrong). A second, guided pass per leaking pair replays one path to produce the
//! counterexample.
//!
//! # Over-approximations (may report a leak that cannot happen, never hide one)
//!
//! - The connection tracker may answer anything: after `ct` the packet is any of
//!   +trk+new, +trk+est, +trk+rel, +trk+inv, +trk+est+rpl, +trk+rel+rpl (and also
//!   untracked after `ct` without `table=`); ct_mark, ct_label and the ct tuple
//!   fields become arbitrary. As in Open vSwitch, `ct(table=N)` forks: the tracked
//!   copy continues in table N, the original continues the action list untracked.
//! - Flows of equal priority may all apply; all buckets of every group type apply.
//! - Output to FLOOD, ALL or NORMAL reaches every known port of the switch but the
//!   input port.
//! - Pushing a VLAN onto an unknown tag, popping the attacker's own tag (beneath it
//!   may lie further attacker tags), and masked writes onto unknown values give
//!   arbitrary values; match prerequisites are ignored.
//! - Fields that cannot be modelled (values over 16 bytes, masks of the wrong length)
//!   are wildcards in matches, and a flow matching on one is never assumed skipped.
//! - When the constraint solver's budget runs out, the branch is assumed feasible.
//!
//! # Not modelled (documented limits)
//!
//! Nicira actions other than `ct` and `ct_clear` (resubmit, learn, reg_move ...),
//! MPLS/PBB push and pop, tunnels other than the given fabric links, packets the
//! controller injects. Branches longer than [`MAX_VISITS`] table visits are cut and
//! the report says `truncated`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::rc::Rc;

use serde::Serialize;

use super::flows::{Group, SwitchFlows};
use crate::wire::of13::action::port_no;
use crate::wire::of13::nx::{self, Ct};
use crate::wire::of13::oxm::{class, ofb, OxmBytes, BASIC_FIELDS, ONF_EXPERIMENTER};
use crate::wire::of13::{Action, Instruction, Oxm};

/// Table visits (gotos, recirculations, link crossings) one branch may make.
pub const MAX_VISITS: u32 = 64;
/// Nesting of groups within group buckets.
const MAX_GROUP_DEPTH: u32 = 8;
/// Search nodes the constraint solver may spend on one question.
const SOLVER_BUDGET: u32 = 20_000;

/// A switch port bound to a tenant port: where a network's traffic enters and leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgePort {
    /// Datapath id of the switch.
    pub dpid: u64,
    /// OpenFlow port number on that switch.
    pub port: u32,
    /// The network the port belongs to.
    pub network: String,
    /// The tenant port bound there.
    pub port_id: String,
}

/// The links between switches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Fabric {
    /// Directed: a packet output at `.0` (dpid, port) arrives at `.1`.
    pub links: Vec<((u64, u32), (u64, u32))>,
}

/// Everything the proof looks at.
///
/// Not `Serialize`: [`SwitchFlows`] is not.
#[derive(Debug, Clone, Default)]
pub struct VerifyInput {
    /// Flows and groups installed on each switch, by dpid.
    pub switches: BTreeMap<u64, SwitchFlows>,
    pub fabric: Fabric,
    /// Edge ports with their networks; a (dpid, port) listed twice counts once.
    pub edges: Vec<EdgePort>,
}

/// One flow a counterexample packet hits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    pub dpid: u64,
    pub table: u8,
    pub priority: u16,
    /// Names the object that made the flow (see `tenant::flows::cookie`).
    pub cookie: u64,
}

/// A packet that leaves one network's edge port at another network's edge port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counterexample {
    /// Where the packet enters.
    pub from: EdgePort,
    /// Where it leaves.
    pub to: EdgePort,
    /// The packet as sent, ovs-ofctl-like: `in_port=1,eth_src=..,eth_dst=..,eth_type=0x0800,vlan_vid=none,...`
    /// (fields the path does not constrain get arbitrary values; `inner_vlan_vid` is
    /// a second 802.1Q tag beneath the first).
    pub packet: String,
    /// The flows it hits, in order, across switches. Empty only when the replay of a
    /// leak found by the proof was cut by the hop bound.
    pub path: Vec<Hop>,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Distinct networks among the edge ports.
    pub networks: usize,
    /// Ordered pairs of distinct networks, each proven isolated or reported.
    pub pairs_checked: usize,
    /// Edge ports given.
    pub edge_ports: usize,
    /// Flows installed over all switches (each is considered).
    pub flows_examined: usize,
    /// At most one per (from network, to network), at most `max_counterexamples` in all.
    pub counterexamples: Vec<Counterexample>,
    /// Some branch was cut (hop or group-nesting bound), or more leaking pairs existed
    /// than `max_counterexamples`: an empty `counterexamples` is then no proof.
    pub truncated: bool,
}

/// Proves or refutes isolation between every pair of networks (see the module doc).
pub fn verify(input: &VerifyInput, max_counterexamples: usize) -> Report {
    let net = Net::build(input);
    let mut ex = Explorer::new(&net);
    let mut report = Report {
        networks: net.networks.len(),
        pairs_checked: net.networks.len() * net.networks.len().saturating_sub(1),
        edge_ports: input.edges.len(),
        flows_examined: input.switches.values().map(|s| s.flows.len()).sum(),
        ..Report::default()
    };
    let mut reported: BTreeSet<(u32, u32)> = BTreeSet::new();
    for (src, edge) in net.edges.iter().enumerate() {
        let from = edge.net;
        let reach = ex.reach(src);
        for &to in &reach.nets {
            if to == from || reported.contains(&(from, to)) {
                continue;
            }
            if report.counterexamples.len() >= max_counterexamples {
                report.truncated = true;
                continue;
            }
            reported.insert((from, to));
            let cx = ex.find(src, to).unwrap_or_else(|| net.bare_counterexample(src, to));
            report.counterexamples.push(cx);
        }
    }
    report.truncated |= ex.cuts > 0;
    report
}

// ---------------------------------------------------------------------------
// Fields and literals

/// A match or set field, named generically (class, number, experimenter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct FieldId {
    class: u16,
    field: u8,
    experimenter: Option<u32>,
    /// ONF experimenter fields: the 2-byte type that leads the value.
    sub: u16,
}

impl FieldId {
    const fn basic(field: u8) -> Self {
        FieldId { class: class::OPENFLOW_BASIC, field, experimenter: None, sub: 0 }
    }
    const fn nxm1(field: u8) -> Self {
        FieldId { class: class::NXM_1, field, experimenter: None, sub: 0 }
    }
    /// Pipeline state rather than header: zero when a packet enters a switch.
    fn starts_zero(&self) -> bool {
        match self.class {
            class::OPENFLOW_BASIC => self.field == ofb::METADATA,
            // reg0..reg15, pkt_mark, the conntrack fields.
            class::NXM_1 => self.field < 16 || self.field == NXM_PKT_MARK || CT_FIELDS.contains(&self.field),
            PACKET_REGS => true,
            _ => false,
        }
    }
}

const METADATA: FieldId = FieldId::basic(ofb::METADATA);
const CT_STATE: FieldId = FieldId::nxm1(nx::NXM_CT_STATE);
const CT_ZONE: FieldId = FieldId::nxm1(nx::NXM_CT_ZONE);
/// NXM_1 numbers of ct_state, ct_zone, ct_mark, ct_label and the ct tuple fields.
const CT_FIELDS: std::ops::RangeInclusive<u8> = 105..=115;
const NXM_PKT_MARK: u8 = 33;
/// OXM class of the OVS packet registers (xreg).
const PACKET_REGS: u16 = 0x8001;
const OFPVID_PRESENT: u128 = 0x1000;
const VID_BITS: u128 = 0x1fff;
const VLAN_WIDTH: u128 = 0xffff;
/// What the connection tracker may answer: +trk with new, est, rel, inv, est+rpl, rel+rpl.
const CT_ANSWERS: [u128; 6] = [0x21, 0x22, 0x24, 0x2a, 0x2c, 0x30];

/// Where a matched or written field lives in the packet state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Slot {
    InPort,
    /// The outermost VLAN tag (`vlan_vid` as an OXM value: 0 untagged, 0x1000|vid tagged).
    Vlan,
    Field(FieldId),
}

/// One field of a flow's match: `field & m == v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct PLit {
    slot: Slot,
    v: u128,
    m: u128,
    /// All-ones over the field's bits.
    width: u128,
}

fn width_of(len: usize) -> u128 {
    if len >= 16 {
        u128::MAX
    } else {
        (1u128 << (8 * len)) - 1
    }
}

fn be(bytes: &[u8]) -> u128 {
    bytes.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b))
}

/// The slot and value length of a field; `None` when it cannot be modelled.
fn slot_of(oxm: &Oxm) -> Option<(Slot, usize)> {
    let payload = oxm.payload();
    if payload.is_empty() || payload.len() > 16 {
        return None;
    }
    let in_port = (oxm.class == class::OPENFLOW_BASIC && (oxm.field == ofb::IN_PORT || oxm.field == ofb::IN_PHY_PORT))
        || (oxm.class == class::NXM_0 && oxm.field == 0);
    if in_port {
        return Some((Slot::InPort, payload.len()));
    }
    if oxm.is_basic(ofb::VLAN_VID) {
        return (payload.len() == 2).then_some((Slot::Vlan, 2));
    }
    let sub = match (oxm.class, oxm.experimenter, oxm.value.as_slice()) {
        (class::EXPERIMENTER, Some(ONF_EXPERIMENTER), [a, b, ..]) => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    let id = FieldId { class: oxm.class, field: oxm.field, experimenter: oxm.experimenter, sub };
    Some((Slot::Field(id), payload.len()))
}

/// A match field as a literal; `None` when it cannot be modelled.
fn plit(oxm: &Oxm) -> Option<PLit> {
    let (slot, len) = slot_of(oxm)?;
    let width = width_of(len);
    let m = match &oxm.mask {
        None => width,
        Some(mask) if mask.as_slice().len() == len => be(mask.as_slice()),
        Some(_) => return None,
    };
    Some(PLit { slot, v: be(oxm.payload()) & m, m, width })
}

// ---------------------------------------------------------------------------
// Symbolic values and constraints

/// A variable: an input header field chosen by the sender, or an unknown produced
/// inside the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum VarKey {
    /// A header field of the packet as sent.
    Orig(FieldId),
    /// The n-th VLAN tag of the packet as sent (0 outermost), as an OXM `vlan_vid` value.
    Tag(u8),
    /// An unknown made by the pipeline (conntrack answer, write onto an unknown).
    Fresh(u32),
}

/// A field's current value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Val {
    Const(u128),
    Var(VarKey),
}

/// `var & m == v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Lit {
    var: VarKey,
    v: u128,
    m: u128,
}

/// What is known of one variable: inside `width`, matching the positive ternary,
/// matching none of the negative ternaries; or one of a finite `domain`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct VarInfo {
    width: u128,
    pos_v: u128,
    pos_m: u128,
    negs: Vec<(u128, u128)>,
    domain: Option<Vec<u128>>,
}

impl VarInfo {
    fn free(width: u128) -> Self {
        VarInfo { width, pos_v: 0, pos_m: 0, negs: Vec::new(), domain: None }
    }

    /// A VLAN tag slot: untagged (0) or 0x1000|vid; nothing else.
    fn vlan() -> Self {
        // Bits above the 13 are zero; without OFPVID_PRESENT the vid bits are zero.
        let negs = (0..12).map(|i| (1u128 << i, OFPVID_PRESENT | (1u128 << i))).collect();
        VarInfo { width: VLAN_WIDTH, pos_v: 0, pos_m: VLAN_WIDTH & !VID_BITS, negs, domain: None }
    }

    fn default_for(var: VarKey, width: u128) -> Self {
        match var {
            VarKey::Tag(_) => VarInfo::vlan(),
            _ => VarInfo::free(width),
        }
    }

    /// Bits whose value is fixed: the positive mask and everything outside the width.
    fn fixed(&self) -> u128 {
        self.pos_m | !self.width
    }

    fn admits(&self, x: u128) -> bool {
        if x & !self.width != 0 {
            return false;
        }
        match &self.domain {
            Some(d) => d.contains(&x),
            None => (x ^ self.pos_v) & self.pos_m == 0 && self.negs.iter().all(|&(v, m)| x & m != v),
        }
    }

    /// Every admitted value has `x & m == v` (conservative: false when unsure).
    fn implies(&self, v: u128, m: u128) -> bool {
        match &self.domain {
            Some(d) => d.iter().all(|x| x & m == v),
            None => m & !self.fixed() == 0 && (self.pos_v ^ v) & m == 0,
        }
    }

    /// No admitted value has `x & m == v` (conservative: false when unsure).
    fn excludes(&self, v: u128, m: u128) -> bool {
        match &self.domain {
            Some(d) => d.iter().all(|x| x & m != v),
            None => {
                (self.pos_v ^ v) & m & self.fixed() != 0
                    || self.negs.iter().any(|&(nv, nm)| nm & !m == 0 && (nv ^ v) & nm == 0)
            }
        }
    }

    /// The only admitted value, when the constraints pin it.
    fn known(&self) -> Option<u128> {
        match &self.domain {
            Some(d) if d.len() == 1 => d.first().copied(),
            Some(_) => None,
            None => (self.fixed() == u128::MAX).then_some(self.pos_v),
        }
    }
}

/// The constraints of one branch on its variables, and a witness satisfying them.
#[derive(Debug, Clone, Default)]
struct Cons {
    vars: BTreeMap<VarKey, VarInfo>,
    /// Each clause: not all of its literals hold (the branch skipped a flow).
    clauses: BTreeSet<Vec<Lit>>,
    /// An assignment satisfying everything (kept to answer most checks at once).
    witness: BTreeMap<VarKey, u128>,
}

enum Solved {
    Sat(BTreeMap<VarKey, u128>),
    Unsat,
    /// Budget exhausted: treated as satisfiable; the assignment is a best effort.
    Unknown(BTreeMap<VarKey, u128>),
}

enum Found {
    Val(u128),
    Empty,
    Unknown,
}

impl Cons {
    fn info_mut(&mut self, var: VarKey, width: u128) -> &mut VarInfo {
        self.vars.entry(var).or_insert_with(|| VarInfo::default_for(var, width))
    }

    /// Adds `var & m == v`; false when that is plainly impossible.
    fn add_pos(&mut self, l: Lit, width: u128) -> bool {
        let info = self.info_mut(l.var, width);
        if let Some(d) = &mut info.domain {
            d.retain(|x| x & l.m == l.v);
            return !d.is_empty();
        }
        if l.v & !info.width != 0 || (info.pos_v ^ l.v) & l.m & info.pos_m != 0 {
            return false;
        }
        info.pos_v = (info.pos_v & !l.m) | l.v;
        info.pos_m |= l.m & info.width;
        let (pv, fm) = (info.pos_v, info.fixed());
        info.negs.retain(|&(v, m)| (v ^ pv) & m & fm == 0);
        !info.negs.iter().any(|&(_, m)| m & !fm == 0)
    }

    /// Adds `var & m != v`; false when that is plainly impossible.
    fn add_neg(&mut self, l: Lit, width: u128) -> bool {
        let info = self.info_mut(l.var, width);
        if let Some(d) = &mut info.domain {
            d.retain(|x| x & l.m != l.v);
            return !d.is_empty();
        }
        if info.excludes(l.v, l.m) {
            return true;
        }
        if info.implies(l.v, l.m) {
            return false;
        }
        // Drop negatives the new one covers.
        info.negs.retain(|&(v, m)| !(l.m & !m == 0 && (v ^ l.v) & l.m == 0));
        info.negs.push((l.v, l.m));
        info.negs.sort_unstable();
        true
    }

    /// Adds "not all of `lits`"; false when that is plainly impossible.
    fn add_clause(&mut self, lits: Vec<(Lit, u128)>) -> bool {
        match lits.as_slice() {
            [] => false,
            [(l, w)] => self.add_neg(*l, *w),
            _ => {
                let mut clause: Vec<Lit> = lits
                    .into_iter()
                    .map(|(l, w)| {
                        self.info_mut(l.var, w);
                        l
                    })
                    .collect();
                clause.sort_unstable();
                clause.dedup();
                self.clauses.insert(clause);
                true
            }
        }
    }

    /// Simplifies clauses against what is known of their variables, turning clauses
    /// of one literal into negatives; false when some clause can no longer hold.
    fn normalize(&mut self) -> bool {
        loop {
            let mut units = Vec::new();
            for clause in std::mem::take(&mut self.clauses) {
                let mut keep = Vec::with_capacity(clause.len());
                let mut satisfied = false;
                for l in clause {
                    match self.vars.get(&l.var) {
                        Some(i) if i.excludes(l.v, l.m) => {
                            satisfied = true;
                            break;
                        }
                        Some(i) if i.implies(l.v, l.m) => {}
                        None if l.m == 0 => {}
                        _ => keep.push(l),
                    }
                }
                match keep.len() {
                    _ if satisfied => {}
                    0 => return false,
                    1 => units.extend(keep),
                    _ => {
                        self.clauses.insert(keep);
                    }
                }
            }
            if units.is_empty() {
                return true;
            }
            for u in units {
                if !self.add_neg(u, u128::MAX) {
                    return false;
                }
            }
        }
    }

    fn value(&self, var: VarKey) -> Option<u128> {
        self.witness.get(&var).copied()
    }

    fn witness_holds(&self) -> bool {
        self.vars.iter().all(|(k, i)| self.value(*k).is_some_and(|x| i.admits(x)))
            && self.clauses.iter().all(|c| c.iter().any(|l| self.value(l.var).is_some_and(|x| x & l.m != l.v)))
    }

    /// Whether the constraints can hold (budget exhaustion counts as yes, in `unknown`).
    fn check(&mut self, unknown: &mut usize) -> bool {
        if self.witness_holds() {
            return true;
        }
        match self.solve() {
            Solved::Sat(w) => {
                self.witness = w;
                true
            }
            Solved::Unsat => false,
            Solved::Unknown(w) => {
                *unknown += 1;
                self.witness = w;
                true
            }
        }
    }

    /// Finds an assignment: per variable by bit-splitting, per clause by choosing the
    /// literal to falsify, backtracking. `Unsat` only after an exhaustive search.
    fn solve(&self) -> Solved {
        let mut budget = SOLVER_BUDGET;
        let mut values = BTreeMap::new();
        let mut unknown = false;
        for (k, info) in &self.vars {
            let hint = self.value(*k).unwrap_or_else(|| default_value(*k));
            match find_value(info, &[], hint, &mut budget) {
                Found::Val(x) => {
                    values.insert(*k, x);
                }
                Found::Empty => return Solved::Unsat,
                Found::Unknown => {
                    unknown = true;
                    values.insert(*k, info.pos_v);
                }
            }
        }
        if unknown {
            return Solved::Unknown(values);
        }
        let clauses: Vec<&Vec<Lit>> = self.clauses.iter().collect();
        let holds = |values: &BTreeMap<VarKey, u128>, c: &Vec<Lit>| {
            c.iter().any(|l| values.get(&l.var).is_some_and(|x| x & l.m != l.v))
        };
        if clauses.iter().all(|c| holds(&values, c)) {
            return Solved::Sat(values);
        }
        let mut extra: BTreeMap<VarKey, Vec<(u128, u128)>> = BTreeMap::new();
        match self.search(&clauses, &mut values, &mut extra, &mut budget) {
            Some(true) => Solved::Sat(values),
            Some(false) => Solved::Unsat,
            None => Solved::Unknown(values),
        }
    }

    /// Satisfies the clauses by adding, per clause, one falsified literal as a
    /// negative of its variable, backtracking (with an explicit stack: clauses may be
    /// many). `None`: budget exhausted.
    fn search(
        &self,
        clauses: &[&Vec<Lit>],
        values: &mut BTreeMap<VarKey, u128>,
        extra: &mut BTreeMap<VarKey, Vec<(u128, u128)>>,
        budget: &mut u32,
    ) -> Option<bool> {
        struct Level {
            order: Vec<Lit>,
            next: usize,
            /// The literal tried last at this level: its variable and former value.
            tried: Option<(VarKey, u128)>,
        }
        // Literals the current values already falsify first.
        let level = |clause: &Vec<Lit>, values: &BTreeMap<VarKey, u128>| {
            let mut order = clause.clone();
            order.sort_by_key(|l| values.get(&l.var).is_some_and(|x| x & l.m == l.v));
            Level { order, next: 0, tried: None }
        };
        let Some(first) = clauses.first() else { return Some(true) };
        let mut stack = vec![level(first, values)];
        let free = VarInfo::free(u128::MAX);
        while let Some(top) = stack.last_mut() {
            if let Some((var, old)) = top.tried.take() {
                if let Some(negs) = extra.get_mut(&var) {
                    negs.pop();
                }
                values.insert(var, old);
            }
            let Some(l) = top.order.get(top.next).copied() else {
                stack.pop();
                continue;
            };
            top.next += 1;
            if *budget == 0 {
                return None;
            }
            *budget -= 1;
            let info = self.vars.get(&l.var).unwrap_or(&free);
            let old = values.get(&l.var).copied().unwrap_or(info.pos_v);
            let negs = extra.entry(l.var).or_default();
            negs.push((l.v, l.m));
            match find_value(info, negs, old, budget) {
                Found::Val(x) => {
                    values.insert(l.var, x);
                    top.tried = Some((l.var, old));
                    match clauses.get(stack.len()) {
                        Some(next) => {
                            let next = level(next, values);
                            stack.push(next);
                        }
                        None => return Some(true),
                    }
                }
                Found::Empty => {
                    negs.pop();
                }
                Found::Unknown => return None,
            }
        }
        Some(false)
    }
}

/// A value for one variable that also avoids `extra`, as close to `hint` as cheap.
fn find_value(info: &VarInfo, extra: &[(u128, u128)], hint: u128, budget: &mut u32) -> Found {
    let avoids = |x: u128| extra.iter().all(|&(v, m)| x & m != v);
    if let Some(d) = &info.domain {
        if d.contains(&hint) && avoids(hint) {
            return Found::Val(hint);
        }
        return d.iter().copied().find(|x| avoids(*x)).map_or(Found::Empty, Found::Val);
    }
    if info.admits(hint) && avoids(hint) {
        return Found::Val(hint);
    }
    let negs: Vec<(u128, u128)> = info.negs.iter().chain(extra).copied().collect();
    region(info.pos_v, info.fixed(), &negs, hint, budget)
}

/// A value `x` with `x & m == v` (bits outside `m` free) matching none of `negs`.
fn region(v: u128, m: u128, negs: &[(u128, u128)], pref: u128, budget: &mut u32) -> Found {
    let live: Vec<(u128, u128)> = negs.iter().copied().filter(|&(nv, nm)| (nv ^ v) & nm & m == 0).collect();
    if live.iter().any(|&(_, nm)| nm & !m == 0) {
        return Found::Empty;
    }
    let candidate = v | (pref & !m);
    if live.iter().all(|&(nv, nm)| candidate & nm != nv) {
        return Found::Val(candidate);
    }
    let Some(&(nv, nm)) = live.first() else { return Found::Val(candidate) };
    if *budget == 0 {
        return Found::Unknown;
    }
    *budget -= 1;
    let free = nm & !m;
    let bit = free & free.wrapping_neg();
    // First the half that escapes this negative.
    for b in [(nv & bit) ^ bit, nv & bit] {
        match region(v | b, m | bit, &live, pref, budget) {
            Found::Empty => {}
            other => return other,
        }
    }
    Found::Empty
}

/// Plausible values for unconstrained header fields (any value would do).
fn default_value(var: VarKey) -> u128 {
    match var {
        VarKey::Orig(f) if f.class == class::OPENFLOW_BASIC => match f.field {
            ofb::ETH_SRC => 0x0200_0000_0001,
            ofb::ETH_DST => 0x0200_0000_0002,
            ofb::ETH_TYPE => 0x0800,
            ofb::IPV4_SRC => 0x0a00_0001,
            ofb::IPV4_DST => 0x0a00_0002,
            _ => 0,
        },
        _ => 0,
    }
}

// ---------------------------------------------------------------------------
// The packet of one branch

#[derive(Debug, Clone)]
struct Pkt {
    dpid: u64,
    in_port: u32,
    /// Fields with a value other than their default (header fields: the sender's
    /// variable; pipeline fields: zero).
    fields: BTreeMap<FieldId, Val>,
    /// VLAN tags, outermost first; never empty (`Const(0)` alone: untagged).
    vlans: Vec<Val>,
    /// Sender tags may lie beneath `vlans`.
    tags_below: bool,
    /// Sender tags made variables so far, beyond the outermost.
    tag_depth: u8,
    /// The OpenFlow action set (Write-Actions).
    action_set: Vec<Action>,
    /// Shared until a branch changes it.
    cons: Rc<Cons>,
    fresh: u32,
}

enum Term {
    True,
    False,
    /// Cannot be modelled: may or may not hold.
    Opaque,
    Lit(Lit, u128),
}

enum Matched {
    Never,
    Always,
    Maybe(Box<Pkt>),
}

impl Pkt {
    fn entering(dpid: u64, in_port: u32) -> Self {
        Pkt {
            dpid,
            in_port,
            fields: BTreeMap::new(),
            vlans: vec![Val::Var(VarKey::Tag(0))],
            tags_below: true,
            tag_depth: 0,
            action_set: Vec::new(),
            cons: Rc::default(),
            fresh: 0,
        }
    }

    /// The packet as it arrives at `(dpid, in_port)` over a link.
    fn crossing(&self, dpid: u64, in_port: u32) -> Self {
        let mut p = self.clone();
        p.dpid = dpid;
        p.in_port = in_port;
        p.fields.retain(|f, _| !f.starts_zero());
        p.action_set.clear();
        p
    }

    fn get(&self, f: FieldId) -> Val {
        match self.fields.get(&f) {
            Some(v) => *v,
            None if f.starts_zero() => Val::Const(0),
            None => Val::Var(VarKey::Orig(f)),
        }
    }

    fn top(&self) -> Val {
        self.vlans.first().copied().unwrap_or(Val::Const(0))
    }

    fn known(&self, v: Val) -> Option<u128> {
        match v {
            Val::Const(c) => Some(c),
            Val::Var(k) => self.cons.vars.get(&k).and_then(VarInfo::known),
        }
    }

    fn slot_value(&self, slot: Slot) -> Val {
        match slot {
            Slot::InPort => Val::Const(u128::from(self.in_port)),
            Slot::Vlan => self.top(),
            Slot::Field(f) => self.get(f),
        }
    }

    /// The value of `mask`'s bits of a slot, when every possible packet agrees on them.
    fn known_bits(&self, slot: Slot, mask: u128) -> Option<u128> {
        match self.slot_value(slot) {
            Val::Const(c) => Some(c & mask),
            Val::Var(k) => {
                let info = self.cons.vars.get(&k)?;
                match &info.domain {
                    Some(d) => {
                        let first = d.first()? & mask;
                        d.iter().all(|x| x & mask == first).then_some(first)
                    }
                    None => (mask & !info.fixed() == 0).then_some(info.pos_v & mask),
                }
            }
        }
    }

    fn term(&self, l: &Option<PLit>) -> Term {
        let Some(l) = l else { return Term::Opaque };
        match self.slot_value(l.slot) {
            Val::Const(c) if c & l.m == l.v => Term::True,
            Val::Const(_) => Term::False,
            Val::Var(var) => Term::Lit(Lit { var, v: l.v, m: l.m }, l.width),
        }
    }

    fn cons_mut(&mut self) -> &mut Cons {
        Rc::make_mut(&mut self.cons)
    }

    /// Whether the branch's constraints can hold (see [`Cons::check`]).
    fn feasible(&mut self, unknown: &mut usize) -> bool {
        self.cons.witness_holds() || self.cons_mut().check(unknown)
    }

    fn new_var(&mut self, info: Option<VarInfo>) -> Val {
        let k = VarKey::Fresh(self.fresh);
        self.fresh = self.fresh.wrapping_add(1);
        if let Some(i) = info {
            self.cons_mut().vars.insert(k, i);
        }
        Val::Var(k)
    }

    /// Can the packet match `flow`, and under which constraints.
    fn try_match(&self, flow: &FlowRef<'_>, unknown: &mut usize) -> Matched {
        let mut lits = Vec::new();
        let mut opaque = false;
        for l in &flow.lits {
            match self.term(l) {
                Term::False => return Matched::Never,
                Term::True => {}
                Term::Opaque => opaque = true,
                Term::Lit(l, w) => lits.push((l, w)),
            }
        }
        let implied = lits.iter().all(|(l, _)| self.cons.vars.get(&l.var).map_or(l.m == 0, |i| i.implies(l.v, l.m)));
        if implied && !opaque {
            return Matched::Always;
        }
        let mut p = self.clone();
        for (l, w) in lits {
            if !p.cons_mut().add_pos(l, w) {
                return Matched::Never;
            }
        }
        if !p.cons_mut().normalize() || !p.feasible(unknown) {
            return Matched::Never;
        }
        Matched::Maybe(Box::new(p))
    }

    /// Constrains the packet not to match `flow`; false when it must match it.
    fn skip(&mut self, flow: &FlowRef<'_>) -> bool {
        let mut lits = Vec::new();
        for l in &flow.lits {
            match self.term(l) {
                // Cannot match, or cannot say what not matching means: nothing to add.
                Term::False | Term::Opaque => return true,
                Term::True => {}
                Term::Lit(l, w) => lits.push((l, w)),
            }
        }
        self.cons_mut().add_clause(lits)
    }

    fn push_vlan(&mut self) {
        let top = self.top();
        let new = match self.known(top) {
            Some(0) => Val::Const(OFPVID_PRESENT),
            // A second tag copies the VID of the first.
            Some(t) => Val::Const((t & VID_BITS) | OFPVID_PRESENT),
            None => {
                let info = VarInfo { pos_v: OFPVID_PRESENT, pos_m: VLAN_WIDTH & !0x0fff, ..VarInfo::free(VLAN_WIDTH) };
                self.new_var(Some(info))
            }
        };
        if self.known(top) == Some(0) {
            self.vlans = vec![new];
            self.tags_below = false;
        } else {
            self.vlans.insert(0, new);
        }
    }

    fn pop_vlan(&mut self) {
        if self.known(self.top()) == Some(0) {
            return;
        }
        if !self.vlans.is_empty() {
            self.vlans.remove(0);
        }
        if self.vlans.is_empty() {
            let next = if !self.tags_below {
                Val::Const(0)
            } else if self.tag_depth < u8::MAX {
                self.tag_depth += 1;
                Val::Var(VarKey::Tag(self.tag_depth))
            } else {
                self.new_var(Some(VarInfo::vlan()))
            };
            self.vlans.push(next);
        }
    }

    fn replace_top(&mut self, new: Val) {
        if self.known(self.top()) == Some(0) {
            self.vlans = vec![new];
            self.tags_below = false;
        } else if let Some(t) = self.vlans.first_mut() {
            *t = new;
        } else {
            self.vlans.push(new);
        }
    }

    fn set_field(&mut self, oxm: &Oxm) {
        let Some(l) = plit(oxm) else { return };
        match l.slot {
            Slot::InPort => self.in_port = l.v as u32,
            Slot::Vlan if l.m != l.width => {
                let v = self.new_var(Some(VarInfo::vlan()));
                self.replace_top(v);
            }
            Slot::Vlan if l.v & OFPVID_PRESENT != 0 => self.replace_top(Val::Const(l.v & VID_BITS)),
            // Clearing OFPVID_PRESENT removes the tag.
            Slot::Vlan => self.pop_vlan(),
            Slot::Field(f) => self.write(f, l.v, l.m, l.width),
        }
    }

    /// `f` takes a value the analysis does not follow (a hash, a pushed label).
    fn havoc(&mut self, f: FieldId, width: u128) {
        let v = self.new_var(Some(VarInfo::free(width)));
        self.fields.insert(f, v);
    }

    /// `f = (f & !m) | v`.
    fn write(&mut self, f: FieldId, v: u128, m: u128, width: u128) {
        let new = match self.get(f) {
            Val::Const(c) => Val::Const((c & !m) | (v & m)),
            Val::Var(_) if m & width == width => Val::Const(v & width),
            Val::Var(_) => {
                let info = VarInfo { pos_v: v & m & width, pos_m: m & width, ..VarInfo::free(width) };
                self.new_var(Some(info))
            }
        };
        self.fields.insert(f, new);
    }

    /// After the connection tracker: any of its answers (and untracked, if asked).
    fn ct_track(&mut self, zone: Option<u16>, untracked_too: bool) {
        let mut domain = CT_ANSWERS.to_vec();
        if untracked_too {
            domain.insert(0, 0);
        }
        let state = self.new_var(Some(VarInfo { domain: Some(domain), ..VarInfo::free(0xffff_ffff) }));
        self.fields.insert(CT_STATE, state);
        for f in CT_FIELDS.filter(|f| *f != nx::NXM_CT_STATE) {
            let v = self.new_var(None);
            self.fields.insert(FieldId::nxm1(f), v);
        }
        if let Some(z) = zone {
            self.fields.insert(CT_ZONE, Val::Const(u128::from(z)));
        }
    }

    fn ct_clear(&mut self) {
        self.fields.retain(|f, _| !(f.class == class::NXM_1 && CT_FIELDS.contains(&f.field)));
    }

    /// A 128-bit digest of everything that decides where the packet can go from
    /// `table`: constraints on variables no field refers to any more (directly or
    /// through clauses) are left out, they only restrict the past.
    fn fingerprint(&self, table: u8) -> u128 {
        let mut live: BTreeSet<VarKey> = self
            .fields
            .values()
            .chain(self.vlans.iter())
            .filter_map(|v| match v {
                Val::Var(k) => Some(*k),
                Val::Const(_) => None,
            })
            .collect();
        // Header fields never written still hold the sender's variable.
        live.extend(self.cons.vars.keys().filter(|k| matches!(k, VarKey::Orig(f) if !self.fields.contains_key(f))));
        loop {
            let mut grew = false;
            for c in &self.cons.clauses {
                if c.iter().any(|l| live.contains(&l.var)) {
                    for l in c {
                        grew |= live.insert(l.var);
                    }
                }
            }
            if !grew {
                break;
            }
        }
        let mut h = Fp::new();
        (self.dpid, table, self.in_port).hash(&mut h);
        self.fields.hash(&mut h);
        self.vlans.hash(&mut h);
        (self.tags_below, self.tag_depth).hash(&mut h);
        self.action_set.hash(&mut h);
        for k in &live {
            (k, self.cons.vars.get(k)).hash(&mut h);
        }
        for c in &self.cons.clauses {
            if c.iter().any(|l| live.contains(&l.var)) {
                c.hash(&mut h);
            }
        }
        h.finish128()
    }

    /// The packet as sent, under the witness assignment.
    fn describe(&self, in_port: u32) -> String {
        let mut cons = Cons::clone(&self.cons);
        let values = match cons.solve() {
            Solved::Sat(w) | Solved::Unknown(w) => w,
            Solved::Unsat => std::mem::take(&mut cons.witness),
        };
        let value = |k: VarKey| values.get(&k).copied().unwrap_or_else(|| default_value(k));
        let basic = |f: u8| VarKey::Orig(FieldId::basic(f));
        let mut out = vec![format!("in_port={in_port}")];
        let mut shown: BTreeSet<VarKey> = BTreeSet::new();
        for f in [ofb::ETH_SRC, ofb::ETH_DST, ofb::ETH_TYPE] {
            out.push(show_field(FieldId::basic(f), value(basic(f)), &self.cons));
            shown.insert(basic(f));
        }
        let tags: Vec<u8> = self
            .cons
            .vars
            .keys()
            .filter_map(|k| match k {
                VarKey::Tag(n) if *n > 0 => Some(*n),
                _ => None,
            })
            .collect();
        for n in std::iter::once(0).chain(tags) {
            let name = match n {
                0 => "vlan_vid".to_string(),
                1 => "inner_vlan_vid".to_string(),
                _ => format!("inner{n}_vlan_vid"),
            };
            let t = value(VarKey::Tag(n));
            if t & OFPVID_PRESENT == 0 {
                out.push(format!("{name}=none"));
            } else {
                out.push(format!("{name}={}", t & 0x0fff));
            }
        }
        let mut rest: BTreeSet<FieldId> = self
            .cons
            .vars
            .keys()
            .filter_map(|k| match k {
                VarKey::Orig(f) if !shown.contains(k) => Some(*f),
                _ => None,
            })
            .collect();
        if value(basic(ofb::ETH_TYPE)) == 0x0800 {
            rest.insert(FieldId::basic(ofb::IPV4_SRC));
            rest.insert(FieldId::basic(ofb::IPV4_DST));
        }
        for f in rest {
            out.push(show_field(f, value(VarKey::Orig(f)), &self.cons));
        }
        out.join(",")
    }
}

/// `name=value` the way `Oxm`'s Display writes it (eth_type in hex).
fn show_field(f: FieldId, x: u128, cons: &Cons) -> String {
    if f == FieldId::basic(ofb::ETH_TYPE) {
        return format!("eth_type={x:#06x}");
    }
    let len = match BASIC_FIELDS.get(usize::from(f.field)) {
        Some(i) if f.class == class::OPENFLOW_BASIC => usize::from(i.len),
        _ => {
            let width = cons.vars.get(&VarKey::Orig(f)).map_or(u128::MAX, |i| i.width);
            (128 - width.leading_zeros() as usize).div_ceil(8).max(1)
        }
    };
    let bytes = x.to_be_bytes();
    let mut value = Vec::with_capacity(len + 2);
    if f.experimenter == Some(ONF_EXPERIMENTER) {
        value.extend_from_slice(&f.sub.to_be_bytes());
    }
    value.extend_from_slice(&bytes[16usize.saturating_sub(len)..]);
    let oxm =
        Oxm { class: f.class, field: f.field, experimenter: f.experimenter, value: OxmBytes::new(&value), mask: None };
    oxm.to_string()
}

/// Two independently seeded aHash streams: a 128-bit fingerprint.
struct Fp(ahash::AHasher, ahash::AHasher);

impl Fp {
    fn new() -> Self {
        let a = ahash::RandomState::with_seeds(0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344, 0xa409_3822, 0x299f_31d0);
        let b = ahash::RandomState::with_seeds(0x082e_fa98_ec4e_6c89, 0x4528_21e6_38d0_1377, 0xbe54_66cf, 0x34e9_0c6c);
        Fp(a.build_hasher(), b.build_hasher())
    }
    fn finish128(&self) -> u128 {
        (u128::from(self.0.finish()) << 64) | u128::from(self.1.finish())
    }
}

impl Hasher for Fp {
    fn finish(&self) -> u64 {
        self.0.finish()
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
        self.1.write(bytes);
    }
    fn write_u8(&mut self, i: u8) {
        self.0.write_u8(i);
        self.1.write_u8(i);
    }
    fn write_u16(&mut self, i: u16) {
        self.0.write_u16(i);
        self.1.write_u16(i);
    }
    fn write_u32(&mut self, i: u32) {
        self.0.write_u32(i);
        self.1.write_u32(i);
    }
    fn write_u64(&mut self, i: u64) {
        self.0.write_u64(i);
        self.1.write_u64(i);
    }
    fn write_u128(&mut self, i: u128) {
        self.0.write_u128(i);
        self.1.write_u128(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.0.write_usize(i);
        self.1.write_usize(i);
    }
}

/// Hashes fingerprints (already uniform) by taking their low bits.
#[derive(Default)]
struct FpHasher(u64);

impl Hasher for FpHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, i: u128) {
        self.0 ^= i as u64;
    }
}

type FpMap<V> = HashMap<u128, V, BuildHasherDefault<FpHasher>>;
type FpSet = HashSet<u128, BuildHasherDefault<FpHasher>>;

// ---------------------------------------------------------------------------
// The network, indexed

struct FlowRef<'a> {
    table: u8,
    priority: u16,
    cookie: u64,
    /// `None`: a field that cannot be modelled.
    lits: Vec<Option<PLit>>,
    instructions: &'a [Instruction],
}

/// An index of a table on the bits `mask` of one field.
struct FieldIndex {
    slot: Slot,
    mask: u128,
    /// Flows whose match fixes every bit of `mask`, by the value of those bits.
    exact: HashMap<u128, Vec<u32>>,
    /// The other flows.
    rest: Vec<u32>,
}

struct Table<'a> {
    /// By descending priority.
    flows: Vec<FlowRef<'a>>,
    index: Vec<FieldIndex>,
}

impl<'a> Table<'a> {
    fn new(mut flows: Vec<FlowRef<'a>>) -> Self {
        flows.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.cookie.cmp(&b.cookie)).then(a.lits.cmp(&b.lits)));
        if flows.len() < 8 {
            return Table { flows, index: Vec::new() };
        }
        let covers = |l: &PLit, slot: Slot, mask: u128| l.slot == slot && l.m & mask == mask;
        // Candidate indexes: every (field, mask) some flow matches on, scored by the
        // flows whose match fixes those bits; the best mask per field.
        let masks: BTreeSet<(Slot, u128)> =
            flows.iter().flat_map(|f| f.lits.iter().flatten().filter(|l| l.m != 0).map(|l| (l.slot, l.m))).collect();
        let mut best: BTreeMap<Slot, (usize, u128)> = BTreeMap::new();
        for &(slot, mask) in &masks {
            let n = flows.iter().filter(|f| f.lits.iter().flatten().any(|l| covers(l, slot, mask))).count();
            let e = best.entry(slot).or_insert((0, mask));
            if n > e.0 {
                *e = (n, mask);
            }
        }
        let mut chosen: Vec<(usize, Slot, u128)> =
            best.into_iter().filter(|(_, (n, _))| n * 4 >= flows.len()).map(|(s, (n, m))| (n, s, m)).collect();
        chosen.sort_by(|a, b| b.cmp(a));
        let index = chosen
            .into_iter()
            .take(3)
            .map(|(_, slot, mask)| {
                let mut ix = FieldIndex { slot, mask, exact: HashMap::new(), rest: Vec::new() };
                for (i, f) in flows.iter().enumerate() {
                    let i = i as u32;
                    match f.lits.iter().flatten().find(|l| covers(l, slot, mask)) {
                        Some(l) => ix.exact.entry(l.v & mask).or_default().push(i),
                        None => ix.rest.push(i),
                    }
                }
                ix
            })
            .collect();
        Table { flows, index }
    }

    /// Positions of the flows the packet might match, ascending (by priority).
    fn candidates(&self, p: &Pkt) -> Vec<u32> {
        let mut best: Option<(&[u32], &[u32])> = None;
        for ix in &self.index {
            let Some(k) = p.known_bits(ix.slot, ix.mask) else { continue };
            let a = ix.exact.get(&k).map_or(&[][..], Vec::as_slice);
            let better = match best {
                Some((x, y)) => a.len() + ix.rest.len() < x.len() + y.len(),
                None => true,
            };
            if better {
                best = Some((a, &ix.rest));
            }
        }
        let Some((a, b)) = best else { return (0..self.flows.len() as u32).collect() };
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
            if x < y {
                out.push(x);
                i += 1;
            } else {
                out.push(y);
                j += 1;
            }
        }
        out.extend_from_slice(a.get(i..).unwrap_or(&[]));
        out.extend_from_slice(b.get(j..).unwrap_or(&[]));
        out
    }
}

struct Edge {
    /// Index into `VerifyInput::edges`.
    input: usize,
    net: u32,
}

struct Net<'a> {
    input: &'a VerifyInput,
    tables: HashMap<(u64, u8), Table<'a>>,
    groups: HashMap<(u64, u32), &'a Group>,
    edges: Vec<Edge>,
    edge_at: HashMap<(u64, u32), usize>,
    links: HashMap<(u64, u32), Vec<(u64, u32)>>,
    /// Every port a FLOOD may reach, per switch.
    ports: HashMap<u64, Vec<u32>>,
    networks: Vec<String>,
}

impl<'a> Net<'a> {
    fn build(input: &'a VerifyInput) -> Self {
        let networks: Vec<String> =
            input.edges.iter().map(|e| e.network.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let mut edges = Vec::new();
        let mut edge_at = HashMap::new();
        let mut ports: HashMap<u64, BTreeSet<u32>> = HashMap::new();
        for (i, e) in input.edges.iter().enumerate() {
            if edge_at.contains_key(&(e.dpid, e.port)) {
                continue;
            }
            let net = networks.binary_search(&e.network).unwrap_or(0) as u32;
            edge_at.insert((e.dpid, e.port), edges.len());
            edges.push(Edge { input: i, net });
            ports.entry(e.dpid).or_default().insert(e.port);
        }
        let mut links: HashMap<(u64, u32), Vec<(u64, u32)>> = HashMap::new();
        for &(a, b) in &input.fabric.links {
            let to = links.entry(a).or_default();
            if !to.contains(&b) {
                to.push(b);
            }
            ports.entry(a.0).or_default().insert(a.1);
        }
        let mut by_table: HashMap<(u64, u8), Vec<FlowRef<'a>>> = HashMap::new();
        let mut groups = HashMap::new();
        for (&dpid, sw) in &input.switches {
            for (key, body) in &sw.flows {
                by_table.entry((dpid, key.table)).or_default().push(FlowRef {
                    table: key.table,
                    priority: key.priority,
                    cookie: body.cookie,
                    lits: key.match_.fields.iter().map(plit).collect(),
                    instructions: &body.instructions,
                });
            }
            for (&id, g) in &sw.groups {
                groups.insert((dpid, id), g);
            }
        }
        Net {
            input,
            tables: by_table.into_iter().map(|(k, flows)| (k, Table::new(flows))).collect(),
            groups,
            edges,
            edge_at,
            links,
            ports: ports.into_iter().map(|(d, p)| (d, p.into_iter().collect())).collect(),
            networks,
        }
    }

    fn edge_port(&self, edge: usize) -> EdgePort {
        let i = self.edges.get(edge).map_or(0, |e| e.input);
        self.input.edges.get(i).cloned().unwrap_or(EdgePort {
            dpid: 0,
            port: 0,
            network: String::new(),
            port_id: String::new(),
        })
    }

    /// A leak the proof found but whose replay was cut: reported without a path.
    fn bare_counterexample(&self, src: usize, to: u32) -> Counterexample {
        let from = self.edge_port(src);
        let dst = self.edges.iter().position(|e| e.net == to).unwrap_or(0);
        Counterexample { packet: format!("in_port={}", from.port), from, to: self.edge_port(dst), path: Vec::new() }
    }
}

// ---------------------------------------------------------------------------
// Exploration

/// Networks a branch can deliver to; `partial` when a cycle or bound cut it short.
#[derive(Debug, Default)]
struct Reach {
    nets: Vec<u32>,
    partial: bool,
}

impl Reach {
    fn partial() -> Self {
        Reach { nets: Vec::new(), partial: true }
    }
    fn join(&mut self, other: Reach) {
        self.partial |= other.partial;
        for n in other.nets {
            if let Err(i) = self.nets.binary_search(&n) {
                self.nets.insert(i, n);
            }
        }
    }
}

/// The guided replay: reach `target` from edge `src`.
struct Find {
    src: usize,
    target: u32,
    /// Fingerprint -> shallowest depth explored.
    seen: FpMap<u32>,
}

struct Explorer<'n, 'a> {
    net: &'n Net<'a>,
    /// Complete results, shared by all sources: an index into `sets`.
    memo: FpMap<u32>,
    /// Distinct sets of networks, interned.
    sets: Vec<Rc<[u32]>>,
    set_ids: HashMap<Rc<[u32]>, u32>,
    /// States on the current path.
    busy: FpSet,
    /// States of the current source explored with a partial result.
    partial: FpSet,
    find: Option<Find>,
    path: Vec<Hop>,
    found: Option<Counterexample>,
    cuts: usize,
    unknown: usize,
}

impl<'n, 'a> Explorer<'n, 'a> {
    fn new(net: &'n Net<'a>) -> Self {
        Explorer {
            net,
            memo: FpMap::default(),
            sets: Vec::new(),
            set_ids: HashMap::new(),
            busy: FpSet::default(),
            partial: FpSet::default(),
            find: None,
            path: Vec::new(),
            found: None,
            cuts: 0,
            unknown: 0,
        }
    }

    fn intern(&mut self, nets: &[u32]) -> u32 {
        if let Some(&id) = self.set_ids.get(nets) {
            return id;
        }
        let id = self.sets.len() as u32;
        let set: Rc<[u32]> = nets.into();
        self.sets.push(set.clone());
        self.set_ids.insert(set, id);
        id
    }

    fn entry(&self, src: usize) -> Option<Pkt> {
        let e = self.net.input.edges.get(self.net.edges.get(src)?.input)?;
        Some(Pkt::entering(e.dpid, e.port))
    }

    /// Every network a packet entering at edge `src` can reach.
    fn reach(&mut self, src: usize) -> Reach {
        self.partial.clear();
        self.find = None;
        match self.entry(src) {
            Some(p) => self.visit(p, 0, 0),
            None => Reach::default(),
        }
    }

    /// A counterexample from edge `src` into network `target`.
    fn find(&mut self, src: usize, target: u32) -> Option<Counterexample> {
        self.find = Some(Find { src, target, seen: FpMap::default() });
        self.path.clear();
        self.found = None;
        if let Some(p) = self.entry(src) {
            self.visit(p, 0, 0);
        }
        self.find = None;
        self.path.clear();
        self.found.take()
    }

    fn visit(&mut self, pkt: Pkt, table: u8, depth: u32) -> Reach {
        if self.found.is_some() {
            return Reach::default();
        }
        if depth >= MAX_VISITS {
            if self.find.is_none() {
                self.cuts += 1;
            }
            return Reach::partial();
        }
        let fp = pkt.fingerprint(table);
        if let Some(f) = &mut self.find {
            let known = self.memo.get(&fp).and_then(|&i| self.sets.get(i as usize));
            if known.is_some_and(|nets| nets.binary_search(&f.target).is_err()) {
                return Reach::default();
            }
            match f.seen.get(&fp) {
                Some(&d) if d <= depth => return Reach::default(),
                _ => {
                    f.seen.insert(fp, depth);
                }
            }
            return self.table(pkt, table, depth);
        }
        if let Some(nets) = self.memo.get(&fp).and_then(|&i| self.sets.get(i as usize)) {
            return Reach { nets: nets.to_vec(), partial: false };
        }
        if self.busy.contains(&fp) || self.partial.contains(&fp) {
            return Reach::partial();
        }
        self.busy.insert(fp);
        let r = self.table(pkt, table, depth);
        self.busy.remove(&fp);
        if r.partial {
            self.partial.insert(fp);
        } else {
            let id = self.intern(&r.nets);
            self.memo.insert(fp, id);
        }
        r
    }

    /// One table: flows by descending priority, splitting the packet space.
    fn table(&mut self, mut rest: Pkt, table: u8, depth: u32) -> Reach {
        let mut out = Reach::default();
        let net = self.net;
        let Some(t) = net.tables.get(&(rest.dpid, table)) else { return out };
        let cands = t.candidates(&rest);
        let mut i = 0;
        while i < cands.len() {
            let Some(prio) = cands.get(i).and_then(|&c| t.flows.get(c as usize)).map(|f| f.priority) else { break };
            let mut j = i;
            let mut always = false;
            let mut maybe = Vec::new();
            while let Some(flow) = cands.get(j).and_then(|&c| t.flows.get(c as usize)) {
                if flow.priority != prio {
                    break;
                }
                j += 1;
                match rest.try_match(flow, &mut self.unknown) {
                    Matched::Never => {}
                    Matched::Always => {
                        always = true;
                        out.join(self.apply(rest.clone(), flow, depth));
                    }
                    Matched::Maybe(p) => {
                        maybe.push(flow);
                        out.join(self.apply(*p, flow, depth));
                    }
                }
                if self.found.is_some() {
                    return out;
                }
            }
            if always {
                return out;
            }
            if !maybe.is_empty() {
                for flow in maybe {
                    if !rest.skip(flow) {
                        return out;
                    }
                }
                if !rest.cons_mut().normalize() || !rest.feasible(&mut self.unknown) {
                    return out;
                }
            }
            i = j;
        }
        out
    }

    /// A flow's instructions, in OpenFlow's order.
    fn apply(&mut self, mut pkt: Pkt, flow: &FlowRef<'_>, depth: u32) -> Reach {
        let mut out = Reach::default();
        self.path.push(Hop { dpid: pkt.dpid, table: flow.table, priority: flow.priority, cookie: flow.cookie });
        for ins in flow.instructions {
            if let Instruction::ApplyActions(actions) = ins {
                out.join(self.exec(&mut pkt, actions, depth, 0));
            }
        }
        let mut goto = None;
        for ins in flow.instructions {
            if matches!(ins, Instruction::ClearActions) {
                pkt.action_set.clear();
            }
        }
        for ins in flow.instructions {
            match ins {
                Instruction::WriteActions(actions) => pkt.action_set.extend(actions.iter().cloned()),
                Instruction::WriteMetadata { metadata, mask } => {
                    pkt.write(METADATA, u128::from(*metadata), u128::from(*mask), u128::from(u64::MAX))
                }
                Instruction::GotoTable(t) => goto = Some(*t),
                _ => {}
            }
        }
        if let Some(t) = goto {
            out.join(self.visit(pkt, t, depth + 1));
        } else if !pkt.action_set.is_empty() {
            let mut set = std::mem::take(&mut pkt.action_set);
            set.sort_by_key(action_set_rank);
            out.join(self.exec(&mut pkt, &set, depth, 0));
        }
        self.path.pop();
        out
    }

    fn exec(&mut self, pkt: &mut Pkt, actions: &[Action], depth: u32, groups: u32) -> Reach {
        let mut out = Reach::default();
        for a in actions {
            if self.found.is_some() {
                return out;
            }
            match a {
                Action::Output { port, .. } => out.join(self.output(pkt, *port, depth)),
                Action::Group(id) => out.join(self.group(pkt, *id, depth, groups)),
                Action::PushVlan(_) => pkt.push_vlan(),
                Action::PopVlan => pkt.pop_vlan(),
                Action::SetField(oxm) => pkt.set_field(oxm),
                Action::Nicira { subtype: nx::NXAST_CT, body } => {
                    // Read the recirculation table even when the zone comes from a field.
                    let zone = Ct::from_action(a).map(|ct| ct.zone);
                    match body.get(8).copied().filter(|t| *t != nx::CT_RECIRC_NONE) {
                        Some(t) => {
                            let mut tracked = pkt.clone();
                            tracked.ct_track(zone, false);
                            out.join(self.visit(tracked, t, depth + 1));
                            pkt.ct_clear();
                        }
                        None => pkt.ct_track(zone, true),
                    }
                }
                Action::Nicira { subtype: nx::NXAST_CT_CLEAR, .. } => pkt.ct_clear(),
                Action::Nicira { subtype: nx::NXAST_MULTIPATH, .. } => {
                    if let Some(reg) = nx::multipath_reg(a) {
                        pkt.havoc(FieldId::nxm1(reg), u128::from(u32::MAX));
                    }
                }
                // The label stack is one entry deep: push sets the type and a label the
                // following set_field fixes; pop restores the inner type.
                Action::PushMpls(ethertype) | Action::PopMpls(ethertype) => {
                    if matches!(a, Action::PushMpls(_)) {
                        pkt.havoc(FieldId::basic(ofb::MPLS_LABEL), 0x000f_ffff);
                    }
                    pkt.write(FieldId::basic(ofb::ETH_TYPE), u128::from(*ethertype), 0xffff, 0xffff);
                }
                _ => {}
            }
        }
        out
    }

    fn group(&mut self, pkt: &Pkt, id: u32, depth: u32, groups: u32) -> Reach {
        if groups >= MAX_GROUP_DEPTH {
            if self.find.is_none() {
                self.cuts += 1;
            }
            return Reach::partial();
        }
        let mut out = Reach::default();
        let Some(g) = self.net.groups.get(&(pkt.dpid, id)).copied() else { return out };
        for b in &g.buckets {
            let mut copy = pkt.clone();
            out.join(self.exec(&mut copy, &b.actions, depth, groups + 1));
        }
        out
    }

    fn output(&mut self, pkt: &Pkt, port: u32, depth: u32) -> Reach {
        let net = self.net;
        match port {
            port_no::IN_PORT => self.emit(pkt, pkt.in_port, depth),
            port_no::ALL | port_no::FLOOD | port_no::NORMAL => {
                let mut out = Reach::default();
                for &p in net.ports.get(&pkt.dpid).map_or(&[][..], Vec::as_slice) {
                    if p != pkt.in_port {
                        out.join(self.emit(pkt, p, depth));
                    }
                }
                out
            }
            // OpenFlow drops output to the input port unless it is named IN_PORT.
            p if p == pkt.in_port => Reach::default(),
            p if p > port_no::MAX => Reach::default(),
            p => self.emit(pkt, p, depth),
        }
    }

    fn emit(&mut self, pkt: &Pkt, port: u32, depth: u32) -> Reach {
        let net = self.net;
        let mut out = Reach::default();
        if let Some(&e) = net.edge_at.get(&(pkt.dpid, port)) {
            out.join(self.deliver(pkt, e));
        }
        for &(dpid, to) in net.links.get(&(pkt.dpid, port)).map_or(&[][..], Vec::as_slice) {
            out.join(self.visit(pkt.crossing(dpid, to), 0, depth + 1));
        }
        out
    }

    fn deliver(&mut self, pkt: &Pkt, edge: usize) -> Reach {
        let Some(to) = self.net.edges.get(edge).map(|e| e.net) else { return Reach::default() };
        let Some(f) = &self.find else { return Reach { nets: vec![to], partial: false } };
        if to == f.target && self.found.is_none() {
            let from = self.net.edge_port(f.src);
            self.found = Some(Counterexample {
                packet: pkt.describe(from.port),
                from,
                to: self.net.edge_port(edge),
                path: self.path.clone(),
            });
        }
        Reach::default()
    }
}

/// Execution order of the action set (OpenFlow 1.3, 5.10), output and group last.
fn action_set_rank(a: &Action) -> u8 {
    match a {
        Action::CopyTtlIn => 0,
        Action::PopVlan | Action::PopMpls(_) | Action::PopPbb => 1,
        Action::PushMpls(_) => 2,
        Action::PushPbb(_) => 3,
        Action::PushVlan(_) => 4,
        Action::CopyTtlOut => 5,
        Action::DecMplsTtl | Action::DecNwTtl => 6,
        Action::SetField(_) | Action::SetMplsTtl(_) | Action::SetNwTtl(_) => 7,
        Action::SetQueue(_) => 8,
        Action::Group(_) => 9,
        Action::Output { .. } => 10,
        Action::Nicira { .. } | Action::Experimenter { .. } => 11,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::flows::table;
    use crate::wire::of13::group_meter::group_type;
    use crate::wire::of13::nx::{ct_state, ct_state_match};
    use crate::wire::of13::Bucket;

    const A: &str = "net-a";
    const B: &str = "net-b";
    const FABRIC: u32 = 10;
    const BCAST_BIT: [u8; 6] = [0x01, 0, 0, 0, 0, 0];

    fn mac(sw: u64, port: u32) -> [u8; 6] {
        [0x02, 0, 0, 0, sw as u8, port as u8]
    }

    fn net_of(port: u32) -> (&'static str, u64, u16) {
        // (network, metadata, vlan)
        if port == 1 {
            (A, 1, 101)
        } else {
            (B, 2, 102)
        }
    }

    fn edges() -> Vec<EdgePort> {
        let mut v = Vec::new();
        for sw in [1u64, 2] {
            for port in [1u32, 2] {
                let (network, ..) = net_of(port);
                v.push(EdgePort { dpid: sw, port, network: network.into(), port_id: format!("p{sw}-{port}") });
            }
        }
        v
    }

    fn fabric() -> Fabric {
        Fabric { links: vec![((1, FABRIC), (2, FABRIC)), ((2, FABRIC), (1, FABRIC))] }
    }

    fn tagged(vlan: u16) -> Vec<Action> {
        vec![Action::PushVlan(0x8100), Action::SetField(Oxm::vlan_vid(0x1000 | vlan)), Action::output(FABRIC)]
    }

    /// Two switches, networks A (port 1, metadata 1, VLAN 101) and B (port 2, 2, 102)
    /// on each; classify, forward (unicast + multicast flood group) tables.
    fn switch(sw: u64, classify_first: u8) -> SwitchFlows {
        let other = 3 - sw;
        let mut s = SwitchFlows::default();
        for port in [1u32, 2] {
            let (_, md, vlan) = net_of(port);
            s.add(
                table::CLASSIFY,
                100,
                vec![Oxm::in_port(port), Oxm::vlan_vid(0)],
                1,
                vec![
                    Instruction::WriteMetadata { metadata: md, mask: u64::MAX },
                    Instruction::GotoTable(classify_first),
                ],
            );
            s.add(
                table::CLASSIFY,
                100,
                vec![Oxm::in_port(FABRIC), Oxm::vlan_vid(0x1000 | vlan)],
                2,
                vec![
                    Instruction::ApplyActions(vec![Action::PopVlan]),
                    Instruction::WriteMetadata { metadata: md, mask: u64::MAX },
                    Instruction::GotoTable(classify_first),
                ],
            );
            s.add(
                table::FORWARD,
                20,
                vec![Oxm::metadata(md, None), Oxm::eth_dst(mac(sw, port))],
                3,
                vec![Instruction::ApplyActions(vec![Action::output(port)])],
            );
            s.add(
                table::FORWARD,
                20,
                vec![Oxm::metadata(md, None), Oxm::eth_dst(mac(other, port))],
                4,
                vec![Instruction::ApplyActions(tagged(vlan))],
            );
            s.add(
                table::FORWARD,
                10,
                vec![Oxm::metadata(md, None), Oxm::basic_masked(ofb::ETH_DST, &BCAST_BIT, &BCAST_BIT)],
                5,
                vec![Instruction::ApplyActions(vec![Action::Group(port)])],
            );
            s.groups.insert(
                port,
                Group {
                    group_type: group_type::ALL,
                    buckets: vec![bucket(vec![Action::output(port)]), bucket(tagged(vlan))],
                },
            );
        }
        s.add(table::CLASSIFY, 0, vec![], 9, vec![]);
        s
    }

    fn bucket(actions: Vec<Action>) -> Bucket {
        Bucket { weight: 0, watch_port: port_no::ANY, watch_group: port_no::ANY, actions }
    }

    fn input(s1: SwitchFlows, s2: SwitchFlows) -> VerifyInput {
        VerifyInput { switches: BTreeMap::from([(1, s1), (2, s2)]), fabric: fabric(), edges: edges() }
    }

    fn correct() -> VerifyInput {
        input(switch(1, table::FORWARD), switch(2, table::FORWARD))
    }

    fn pairs(r: &Report) -> Vec<(String, String)> {
        r.counterexamples.iter().map(|c| (c.from.network.clone(), c.to.network.clone())).collect()
    }

    #[test]
    fn correct_tagging_isolates_networks() {
        let r = verify(&correct(), 10);
        assert_eq!(r.counterexamples, vec![]);
        assert!(!r.truncated);
        assert_eq!((r.networks, r.pairs_checked, r.edge_ports), (2, 2, 4));
        assert_eq!(r.flows_examined, 2 * 11);
    }

    #[test]
    fn fabric_vlan_mapped_into_wrong_network_is_reported() {
        let mut s2 = switch(2, table::FORWARD);
        // VLAN 101 (network A) classified into network B's metadata.
        s2.add(
            table::CLASSIFY,
            100,
            vec![Oxm::in_port(FABRIC), Oxm::vlan_vid(0x1000 | 101)],
            2,
            vec![
                Instruction::ApplyActions(vec![Action::PopVlan]),
                Instruction::WriteMetadata { metadata: 2, mask: u64::MAX },
                Instruction::GotoTable(table::FORWARD),
            ],
        );
        let r = verify(&input(switch(1, table::FORWARD), s2), 10);
        assert_eq!(pairs(&r), vec![(A.to_string(), B.to_string())]);
        let cx = &r.counterexamples[0];
        assert_eq!((cx.from.dpid, cx.from.port, cx.to.dpid, cx.to.port), (1, 1, 2, 2));
        assert!(cx.packet.starts_with("in_port=1,"), "{}", cx.packet);
        assert!(cx.packet.contains("vlan_vid=none"), "{}", cx.packet);
        // Only multicast reaches switch 2 as network B: the flood group.
        let dst = cx.packet.split(',').find_map(|f| f.strip_prefix("eth_dst=")).expect("eth_dst shown");
        assert!(u8::from_str_radix(&dst[..2], 16).expect("hex") & 1 == 1, "{}", cx.packet);
        let hops: Vec<(u64, u8)> = cx.path.iter().map(|h| (h.dpid, h.table)).collect();
        assert_eq!(hops, vec![(1, 0), (1, 30), (2, 0), (2, 30)]);
        assert_eq!(cx.path[3].cookie, 5);
    }

    #[test]
    fn flood_group_with_a_foreign_port_is_reported() {
        let mut s1 = switch(1, table::FORWARD);
        s1.groups.insert(
            1,
            Group {
                group_type: group_type::ALL,
                buckets: vec![bucket(vec![Action::output(1)]), bucket(vec![Action::output(2)]), bucket(tagged(101))],
            },
        );
        let r = verify(&input(s1, switch(2, table::FORWARD)), 10);
        assert_eq!(pairs(&r), vec![(A.to_string(), B.to_string())]);
        let cx = &r.counterexamples[0];
        assert_eq!((cx.to.dpid, cx.to.port), (1, 2));
        assert_eq!(cx.path.iter().map(|h| h.table).collect::<Vec<_>>(), vec![0, 30]);
    }

    /// Switch 1 classifies into table 10, which sends through conntrack to table 11.
    fn with_ct(extra: Option<(u32, u32, Vec<Action>)>) -> VerifyInput {
        let mut s1 = switch(1, table::INGRESS_ACL);
        let ct = Ct { commit: false, zone: 1, table: Some(table::INGRESS_ACL_CT) }.to_action();
        s1.add(table::INGRESS_ACL, 0, vec![], 20, vec![Instruction::ApplyActions(vec![ct])]);
        let est = ct_state::TRK | ct_state::EST;
        s1.add(
            table::INGRESS_ACL_CT,
            10,
            vec![ct_state_match(est, est)],
            21,
            vec![Instruction::GotoTable(table::FORWARD)],
        );
        if let Some((value, mask, actions)) = extra {
            s1.add(
                table::INGRESS_ACL_CT,
                20,
                vec![ct_state_match(value, mask)],
                22,
                vec![Instruction::ApplyActions(actions)],
            );
        }
        input(s1, switch(2, table::FORWARD))
    }

    #[test]
    fn ct_recirculation_forwarding_only_established_is_isolated() {
        let r = verify(&with_ct(None), 10);
        assert_eq!(r.counterexamples, vec![]);
        assert!(!r.truncated);
    }

    #[test]
    fn ct_new_connection_sent_to_a_foreign_port_is_reported() {
        let new = ct_state::TRK | ct_state::NEW;
        let r = verify(&with_ct(Some((new, new, vec![Action::output(2)]))), 10);
        assert_eq!(pairs(&r), vec![(A.to_string(), B.to_string())]);
        let cx = &r.counterexamples[0];
        assert_eq!(cx.path.iter().map(|h| h.table).collect::<Vec<_>>(), vec![0, 10, 11]);
        assert_eq!(cx.path[2].cookie, 22);
        // Output to port 2 from port 2 is dropped: only network A leaks.
        assert_eq!((cx.from.dpid, cx.from.port), (1, 1));
    }

    #[test]
    fn ct_invalid_state_that_the_tracker_never_combines_is_not_reported() {
        // +new+est together is no answer of the tracker.
        let both = ct_state::TRK | ct_state::NEW | ct_state::EST;
        let r = verify(&with_ct(Some((both, both, vec![Action::output(2)]))), 10);
        assert_eq!(r.counterexamples, vec![]);
    }

    fn bouncing(push_each_time: bool) -> VerifyInput {
        let mut s1 = SwitchFlows::default();
        s1.add(0, 10, vec![Oxm::in_port(1)], 1, vec![Instruction::ApplyActions(vec![Action::output(FABRIC)])]);
        let mut back = vec![Action::output(port_no::IN_PORT)];
        if push_each_time {
            back.insert(0, Action::PushVlan(0x8100));
        }
        s1.add(0, 10, vec![Oxm::in_port(FABRIC)], 2, vec![Instruction::ApplyActions(back.clone())]);
        let mut s2 = SwitchFlows::default();
        s2.add(0, 10, vec![Oxm::in_port(FABRIC)], 3, vec![Instruction::ApplyActions(back)]);
        input(s1, s2)
    }

    #[test]
    fn forwarding_loop_terminates() {
        let r = verify(&bouncing(false), 10);
        assert_eq!(r.counterexamples, vec![]);
        // The same state comes round again: a cycle, nothing is lost.
        assert!(!r.truncated);
        // Growing the tag stack each round never repeats a state: the hop bound cuts it.
        let r = verify(&bouncing(true), 10);
        assert_eq!(r.counterexamples, vec![]);
        assert!(r.truncated);
    }

    /// One switch: port 1 (network A) classified to metadata 1, then `forward` flows.
    fn one_switch(forward: &[(u16, Oxm, u32)]) -> VerifyInput {
        let mut s = SwitchFlows::default();
        s.add(
            0,
            100,
            vec![Oxm::in_port(1)],
            1,
            vec![Instruction::WriteMetadata { metadata: 1, mask: u64::MAX }, Instruction::GotoTable(table::FORWARD)],
        );
        for (i, (prio, dst, port)) in forward.iter().enumerate() {
            s.add(
                table::FORWARD,
                *prio,
                vec![Oxm::metadata(1, None), dst.clone()],
                100 + i as u64,
                vec![Instruction::ApplyActions(vec![Action::output(*port)])],
            );
        }
        let edges = vec![
            EdgePort { dpid: 1, port: 1, network: A.into(), port_id: "a".into() },
            EdgePort { dpid: 1, port: 2, network: B.into(), port_id: "b".into() },
            EdgePort { dpid: 1, port: 3, network: A.into(), port_id: "a2".into() },
        ];
        VerifyInput { switches: BTreeMap::from([(1, s)]), fabric: Fabric::default(), edges }
    }

    #[test]
    fn multicast_below_broadcast_leaks_only_other_multicast() {
        let multicast = Oxm::basic_masked(ofb::ETH_DST, &BCAST_BIT, &BCAST_BIT);
        let r = verify(&one_switch(&[(20, Oxm::eth_dst([0xff; 6]), 3), (10, multicast, 2)]), 10);
        assert_eq!(pairs(&r), vec![(A.to_string(), B.to_string())]);
        let cx = &r.counterexamples[0];
        assert_eq!(cx.path.last().map(|h| h.priority), Some(10));
        let dst = cx.packet.split(',').find_map(|f| f.strip_prefix("eth_dst=")).expect("eth_dst shown");
        assert_ne!(dst, "ff:ff:ff:ff:ff:ff", "the broadcast takes the higher flow");
        assert!(dst.starts_with("01") || u8::from_str_radix(&dst[..2], 16).expect("hex") & 1 == 1, "{dst}");
    }

    #[test]
    fn flow_shadowed_by_a_higher_one_is_unreachable() {
        let multicast = Oxm::basic_masked(ofb::ETH_DST, &BCAST_BIT, &BCAST_BIT);
        // Every packet for 01:00:5e:00:00:fb matches the multicast flow above it first.
        let mdns = Oxm::eth_dst([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
        let r = verify(&one_switch(&[(20, multicast.clone(), 3), (10, mdns, 2)]), 10);
        assert_eq!(r.counterexamples, vec![]);
        // Swapped priorities, the exact flow wins: reported with exactly that address.
        let mdns = Oxm::eth_dst([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
        let r = verify(&one_switch(&[(10, multicast, 3), (20, mdns, 2)]), 10);
        assert_eq!(pairs(&r), vec![(A.to_string(), B.to_string())]);
        assert!(r.counterexamples[0].packet.contains("eth_dst=01:00:5e:00:00:fb"), "{}", r.counterexamples[0].packet);
    }

    #[test]
    fn skipped_flows_of_several_fields_still_leave_the_rest() {
        // eth_type=0x0800 AND eth_dst=X goes home; everything else with eth_dst=X leaks:
        // only non-IPv4 packets to X do.
        let x = [0x02, 0, 0, 0, 0, 0x42];
        let mut input = one_switch(&[(10, Oxm::eth_dst(x), 2)]);
        if let Some(s) = input.switches.get_mut(&1) {
            s.add(
                table::FORWARD,
                20,
                vec![Oxm::metadata(1, None), Oxm::eth_type(0x0800), Oxm::eth_dst(x)],
                7,
                vec![Instruction::ApplyActions(vec![Action::output(3)])],
            );
        }
        let r = verify(&input, 10);
        assert_eq!(pairs(&r), vec![(A.to_string(), B.to_string())]);
        let p = &r.counterexamples[0].packet;
        assert!(p.contains("eth_dst=02:00:00:00:00:42") && !p.contains("eth_type=0x0800"), "{p}");
    }

    #[test]
    fn max_counterexamples_limits_the_list_and_says_so() {
        let r = verify(&one_switch(&[(10, Oxm::eth_dst([2, 0, 0, 0, 0, 1]), 2)]), 0);
        assert_eq!(r.counterexamples, vec![]);
        assert!(r.truncated);
    }

    #[test]
    fn report_serializes_to_json() {
        let r = verify(&one_switch(&[(10, Oxm::eth_dst([2, 0, 0, 0, 0, 1]), 2)]), 10);
        let json = serde_json::to_value(&r).expect("serializes");
        assert_eq!(json["counterexamples"][0]["to"]["network"], B);
        assert_eq!(json["counterexamples"][0]["path"][1]["table"], 30);
    }

    #[test]
    fn sender_tag_beneath_ours_reappears_after_pop() {
        // Switch 1 tags network A's traffic with 101 without checking the sender's own
        // tag; switch 2 pops 101 and then trusts whatever tag is left.
        let build = |untagged_only: bool| {
            let mut s1 = SwitchFlows::default();
            let mut m = vec![Oxm::in_port(1)];
            if untagged_only {
                m.push(Oxm::vlan_vid(0));
            }
            s1.add(0, 10, m, 1, vec![Instruction::ApplyActions(tagged(101))]);
            let mut s2 = SwitchFlows::default();
            s2.add(
                0,
                10,
                vec![Oxm::in_port(FABRIC), Oxm::vlan_vid(0x1000 | 101)],
                2,
                vec![Instruction::ApplyActions(vec![Action::PopVlan]), Instruction::GotoTable(1)],
            );
            s2.add(
                1,
                10,
                vec![Oxm::vlan_vid(0x1000 | 102)],
                3,
                vec![Instruction::ApplyActions(vec![Action::output(2)])],
            );
            s2.add(1, 5, vec![], 4, vec![Instruction::ApplyActions(vec![Action::output(1)])]);
            input(s1, s2)
        };
        let r = verify(&build(false), 10);
        assert_eq!(pairs(&r), vec![(A.to_string(), B.to_string())]);
        assert!(r.counterexamples[0].packet.contains("vlan_vid=102"), "{}", r.counterexamples[0].packet);
        assert_eq!(verify(&build(true), 10).counterexamples, vec![]);
    }

    #[test]
    fn solver_proves_unsat_and_finds_witnesses() {
        let tag = VarKey::Tag(0);
        // Neither untagged nor tagged: no VLAN value is left.
        let mut c = Cons::default();
        assert!(c.add_neg(Lit { var: tag, v: 0, m: 0xffff }, VLAN_WIDTH));
        assert!(c.add_neg(Lit { var: tag, v: 0x1000, m: 0x1000 }, VLAN_WIDTH));
        assert!(matches!(c.solve(), Solved::Unsat));
        // Two one-bit variables, three of four combinations excluded by clauses.
        let (a, b) = (VarKey::Fresh(0), VarKey::Fresh(1));
        let lit = |var, v| (Lit { var, v, m: 1 }, 1);
        let mut c = Cons::default();
        assert!(c.add_clause(vec![lit(a, 0), lit(b, 0)]));
        assert!(c.add_clause(vec![lit(a, 1), lit(b, 0)]));
        assert!(c.add_clause(vec![lit(a, 1), lit(b, 1)]));
        let Solved::Sat(w) = c.solve() else { panic!("satisfiable") };
        assert_eq!((w.get(&a), w.get(&b)), (Some(&0), Some(&1)));
        assert!(c.add_clause(vec![lit(a, 0), lit(b, 1)]));
        assert!(matches!(c.solve(), Solved::Unsat));
        // 48-bit address avoiding many exact values and a masked one.
        let dst = VarKey::Orig(FieldId::basic(ofb::ETH_DST));
        let mut c = Cons::default();
        let width = width_of(6);
        assert!(c.add_neg(Lit { var: dst, v: 1 << 40, m: 1 << 40 }, width));
        for i in 0..100u128 {
            assert!(c.add_neg(Lit { var: dst, v: 0x0200_0000_0000 | i, m: width }, width));
        }
        let Solved::Sat(w) = c.solve() else { panic!("satisfiable") };
        let x = w.get(&dst).copied().unwrap_or_default();
        assert!(x & (1 << 40) == 0 && !(0x0200_0000_0000..0x0200_0000_0064).contains(&x), "{x:#x}");
    }

    /// 20 switches in a full mesh, 50 networks, 1,000 edge ports (one per network per
    /// switch), anti-spoofing, ingress and egress ACLs through conntrack, unicast and
    /// flood forwarding: about 45,000 flows. `leak` adds one wrong flood bucket.
    fn datacenter(leak: bool) -> VerifyInput {
        const SWITCHES: u64 = 20;
        const NETS: u32 = 50;
        const FROM_FABRIC: u64 = 1 << 32;
        let reg0 = |p: u32| Oxm {
            class: class::NXM_1,
            field: 0,
            experimenter: None,
            value: OxmBytes::new(&p.to_be_bytes()),
            mask: None,
        };
        let host = |sw: u64, n: u32| [0x02, 0, 0, sw as u8, 0, n as u8];
        let fabric_port = |to: u64| 100 + to as u32;
        let vlan = |n: u32| 0x1000 | (100 + n as u16);
        let est = ct_state::TRK | ct_state::EST;
        let new = ct_state::TRK | ct_state::NEW;
        let mut input = VerifyInput::default();
        for sw in 1..=SWITCHES {
            let mut s = SwitchFlows::default();
            s.add(table::CLASSIFY, 0, vec![], 9, vec![]);
            for n in 0..NETS {
                let p = n + 1;
                let md = u64::from(n) + 1;
                input.edges.push(EdgePort {
                    dpid: sw,
                    port: p,
                    network: format!("net{n}"),
                    port_id: format!("{sw}-{p}"),
                });
                s.add(
                    table::CLASSIFY,
                    100,
                    vec![Oxm::in_port(p), Oxm::eth_src(host(sw, n)), Oxm::vlan_vid(0)],
                    1,
                    vec![Instruction::WriteMetadata { metadata: md, mask: u64::MAX }, Instruction::GotoTable(10)],
                );
                for other in (1..=SWITCHES).filter(|o| *o != sw) {
                    s.add(
                        table::CLASSIFY,
                        100,
                        vec![Oxm::in_port(fabric_port(other)), Oxm::vlan_vid(vlan(n))],
                        2,
                        vec![
                            Instruction::ApplyActions(vec![Action::PopVlan]),
                            Instruction::WriteMetadata { metadata: md | FROM_FABRIC, mask: u64::MAX },
                            Instruction::GotoTable(30),
                        ],
                    );
                }
                let ct = |t: u8| Ct { commit: false, zone: n as u16, table: Some(t) }.to_action();
                let commit = Ct { commit: true, zone: n as u16, table: None }.to_action();
                s.add(10, 10, vec![Oxm::in_port(p)], 3, vec![Instruction::ApplyActions(vec![ct(11)])]);
                s.add(11, 20, vec![Oxm::in_port(p), ct_state_match(est, est)], 4, vec![Instruction::GotoTable(30)]);
                for (proto, dport) in [(6u8, 22u16), (6, 443), (17, 53)] {
                    let l4 = if proto == 6 { ofb::TCP_DST } else { ofb::UDP_DST };
                    s.add(
                        11,
                        15,
                        vec![
                            Oxm::in_port(p),
                            Oxm::eth_type(0x0800),
                            Oxm::basic(ofb::IP_PROTO, &[proto]),
                            Oxm::basic(l4, &dport.to_be_bytes()),
                            ct_state_match(new, new),
                        ],
                        5,
                        vec![Instruction::ApplyActions(vec![commit.clone()]), Instruction::GotoTable(30)],
                    );
                }
                let mut flood = vec![bucket(vec![Action::output(p)])];
                for other in 1..=SWITCHES {
                    let local = other == sw;
                    let actions = if local {
                        vec![Action::SetField(reg0(p)), Action::Nicira { subtype: 0xffff, body: vec![] }]
                    } else {
                        let mut a = tagged(vlan(n) & 0x0fff);
                        a.pop();
                        a.push(Action::output(fabric_port(other)));
                        a
                    };
                    let mut fields = vec![Oxm::metadata(md, Some(0xffff_ffff)), Oxm::eth_dst(host(other, n))];
                    crate::tenant::flows::canonical(&mut fields);
                    if local {
                        s.add(
                            30,
                            20,
                            fields,
                            6,
                            vec![
                                Instruction::ApplyActions(vec![Action::SetField(reg0(p))]),
                                Instruction::GotoTable(40),
                            ],
                        );
                    } else {
                        s.add(30, 20, fields, 6, vec![Instruction::ApplyActions(actions.clone())]);
                        flood.push(bucket(actions));
                    }
                }
                if leak && sw == 7 && n == 3 {
                    flood.push(bucket(vec![Action::output(p + 1)]));
                }
                s.groups.insert(p, Group { group_type: group_type::ALL, buckets: flood });
                s.add(
                    30,
                    10,
                    vec![Oxm::metadata(md, None), Oxm::basic_masked(ofb::ETH_DST, &BCAST_BIT, &BCAST_BIT)],
                    7,
                    vec![Instruction::ApplyActions(vec![Action::Group(p)])],
                );
                // Floods from the fabric only go to the local port.
                s.add(
                    30,
                    10,
                    vec![
                        Oxm::metadata(md | FROM_FABRIC, None),
                        Oxm::basic_masked(ofb::ETH_DST, &BCAST_BIT, &BCAST_BIT),
                    ],
                    7,
                    vec![Instruction::ApplyActions(vec![Action::SetField(reg0(p))]), Instruction::GotoTable(40)],
                );
                s.add(40, 10, vec![reg0(p)], 8, vec![Instruction::ApplyActions(vec![ct(41)])]);
                s.add(
                    41,
                    20,
                    vec![reg0(p), ct_state_match(est, est)],
                    8,
                    vec![Instruction::ApplyActions(vec![Action::output(p)])],
                );
                s.add(
                    41,
                    15,
                    vec![
                        reg0(p),
                        Oxm::eth_type(0x0800),
                        Oxm::basic(ofb::IP_PROTO, &[6]),
                        Oxm::basic(ofb::TCP_DST, &80u16.to_be_bytes()),
                        ct_state_match(new, new),
                    ],
                    8,
                    vec![Instruction::ApplyActions(vec![commit, Action::output(p)])],
                );
            }
            input.switches.insert(sw, s);
        }
        for a in 1..=SWITCHES {
            for b in (1..=SWITCHES).filter(|b| *b != a) {
                input.fabric.links.push(((a, fabric_port(b)), (b, fabric_port(a))));
            }
        }
        input
    }

    #[test]
    #[ignore = "scale benchmark: cargo test --release -- --ignored scale"]
    fn scale_thousand_ports_twenty_switches() {
        for leak in [false, true] {
            let input = datacenter(leak);
            let start = std::time::Instant::now();
            let r = verify(&input, 100);
            eprintln!(
                "leak={leak}: {} flows, {} ports, {} networks: {:?}, {} counterexamples, truncated {}",
                r.flows_examined,
                r.edge_ports,
                r.networks,
                start.elapsed(),
                r.counterexamples.len(),
                r.truncated
            );
            assert_eq!(r.counterexamples.len(), usize::from(leak));
            assert!(!r.truncated);
        }
    }
}
