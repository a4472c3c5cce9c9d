//! OpenFlow 1.0 messages.
//!
//! The subset a reactive controller (and the cbench benchmark) needs, typed;
//! the rest kept opaque so it still round-trips. [`parse`] turns one complete
//! frame into a [`Message`]; [`Message::emit`] writes it back, header included.
//! Lengths are computed on emit, padding is written as zeros, so canonical input
//! round-trips byte for byte. Field names follow the specification and Ryu's
//! JSON (`buffer_id`, `in_port`, `total_len`, `wildcards`, `dl_src`, ...).
//!
//! [`WireError`]s produced here carry OpenFlow 1.3 numbering, like everywhere
//! else in the codec; [`error_for`] translates them to OpenFlow 1.0's.

pub mod action;
pub mod match_;

use nom::number::complete::{be_u16, be_u32, be_u64, be_u8};

pub use action::{Action, NX_VENDOR_ID};
pub use match_::*;

use crate::wire::error::WireError;
use crate::wire::of13::port::{fixed_str, str_of};
use crate::wire::{finish, len_since, many_to_end, skip, take_n, Header, PResult, Put, HEADER_LEN, OFP10};

/// Message type numbers (`ofp_type`).
pub mod msg_type {
    pub const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const ECHO_REQUEST: u8 = 2;
    pub const ECHO_REPLY: u8 = 3;
    pub const VENDOR: u8 = 4;
    pub const FEATURES_REQUEST: u8 = 5;
    pub const FEATURES_REPLY: u8 = 6;
    pub const GET_CONFIG_REQUEST: u8 = 7;
    pub const GET_CONFIG_REPLY: u8 = 8;
    pub const SET_CONFIG: u8 = 9;
    pub const PACKET_IN: u8 = 10;
    pub const FLOW_REMOVED: u8 = 11;
    pub const PORT_STATUS: u8 = 12;
    pub const PACKET_OUT: u8 = 13;
    pub const FLOW_MOD: u8 = 14;
    pub const PORT_MOD: u8 = 15;
    pub const STATS_REQUEST: u8 = 16;
    pub const STATS_REPLY: u8 = 17;
    pub const BARRIER_REQUEST: u8 = 18;
    pub const BARRIER_REPLY: u8 = 19;
    pub const QUEUE_GET_CONFIG_REQUEST: u8 = 20;
    pub const QUEUE_GET_CONFIG_REPLY: u8 = 21;
}

/// Highest physical port number.
pub const OFPP_MAX: u16 = 0xff00;
/// Send the packet out the port it came in on.
pub const OFPP_IN_PORT: u16 = 0xfff8;
/// Submit the packet to the flow table (packet out only).
pub const OFPP_TABLE: u16 = 0xfff9;
/// Traditional L2/L3 processing.
pub const OFPP_NORMAL: u16 = 0xfffa;
/// All physical ports except the input port and those with flooding disabled.
pub const OFPP_FLOOD: u16 = 0xfffb;
/// All physical ports except the input port.
pub const OFPP_ALL: u16 = 0xfffc;
/// Send to the controller.
pub const OFPP_CONTROLLER: u16 = 0xfffd;
/// The switch's local networking stack.
pub const OFPP_LOCAL: u16 = 0xfffe;
/// No port (wildcard `out_port`, packet-out from the controller).
pub const OFPP_NONE: u16 = 0xffff;

/// The `OFPP_*` numbers under short names (`port::FLOOD`), as [`of13::action::port_no`](crate::wire::of13::action::port_no).
pub mod port {
    pub const MAX: u16 = super::OFPP_MAX;
    pub const IN_PORT: u16 = super::OFPP_IN_PORT;
    pub const TABLE: u16 = super::OFPP_TABLE;
    pub const NORMAL: u16 = super::OFPP_NORMAL;
    pub const FLOOD: u16 = super::OFPP_FLOOD;
    pub const ALL: u16 = super::OFPP_ALL;
    pub const CONTROLLER: u16 = super::OFPP_CONTROLLER;
    pub const LOCAL: u16 = super::OFPP_LOCAL;
    pub const NONE: u16 = super::OFPP_NONE;
}

/// `-1`: the packet is not buffered on the switch.
pub const NO_BUFFER: u32 = 0xffff_ffff;

/// Flow mod commands (`ofp_flow_mod_command`).
pub mod flow_command {
    pub const ADD: u16 = 0;
    pub const MODIFY: u16 = 1;
    pub const MODIFY_STRICT: u16 = 2;
    pub const DELETE: u16 = 3;
    pub const DELETE_STRICT: u16 = 4;
}

/// Flow mod flags (`ofp_flow_mod_flags`).
pub mod flow_mod_flags {
    pub const SEND_FLOW_REM: u16 = 1 << 0;
    pub const CHECK_OVERLAP: u16 = 1 << 1;
    pub const EMERG: u16 = 1 << 2;
}

/// `ofp_packet_in_reason`.
pub mod packet_in_reason {
    pub const NO_MATCH: u8 = 0;
    pub const ACTION: u8 = 1;
}

/// `ofp_flow_removed_reason`.
pub mod flow_removed_reason {
    pub const IDLE_TIMEOUT: u8 = 0;
    pub const HARD_TIMEOUT: u8 = 1;
    pub const DELETE: u8 = 2;
}

/// `ofp_port_reason`.
pub mod port_reason {
    pub const ADD: u8 = 0;
    pub const DELETE: u8 = 1;
    pub const MODIFY: u8 = 2;
}

/// `OFPPC_*` port config bits.
pub mod port_config {
    pub const PORT_DOWN: u32 = 1 << 0;
    pub const NO_STP: u32 = 1 << 1;
    pub const NO_RECV: u32 = 1 << 2;
    pub const NO_RECV_STP: u32 = 1 << 3;
    pub const NO_FLOOD: u32 = 1 << 4;
    pub const NO_FWD: u32 = 1 << 5;
    pub const NO_PACKET_IN: u32 = 1 << 6;
}

/// `OFPPS_*` port state bits.
pub mod port_state {
    pub const LINK_DOWN: u32 = 1 << 0;
    pub const STP_LISTEN: u32 = 0 << 8;
    pub const STP_LEARN: u32 = 1 << 8;
    pub const STP_FORWARD: u32 = 2 << 8;
    pub const STP_BLOCK: u32 = 3 << 8;
    pub const STP_MASK: u32 = 3 << 8;
}

/// `ofp_config_flags` (fragment handling) for SET_CONFIG / GET_CONFIG_REPLY.
pub mod config_flags {
    pub const FRAG_NORMAL: u16 = 0;
    pub const FRAG_DROP: u16 = 1;
    pub const FRAG_REASM: u16 = 2;
    pub const FRAG_MASK: u16 = 3;
}

/// `ofp_stats_types`.
pub mod stats_type {
    pub const DESC: u16 = 0;
    pub const FLOW: u16 = 1;
    pub const AGGREGATE: u16 = 2;
    pub const TABLE: u16 = 3;
    pub const PORT: u16 = 4;
    pub const QUEUE: u16 = 5;
    pub const VENDOR: u16 = 0xffff;
}

/// `OFPSF_REPLY_MORE`: more stats replies follow.
pub const STATS_REPLY_MORE: u16 = 1;

/// OpenFlow 1.0 error types (`ofp_error_type`); they differ from 1.3's.
pub mod error_type {
    pub const HELLO_FAILED: u16 = 0;
    pub const BAD_REQUEST: u16 = 1;
    pub const BAD_ACTION: u16 = 2;
    pub const FLOW_MOD_FAILED: u16 = 3;
    pub const PORT_MOD_FAILED: u16 = 4;
    pub const QUEUE_OP_FAILED: u16 = 5;
}

/// Codes of `OFPET_HELLO_FAILED`.
pub mod hello_failed {
    pub const INCOMPATIBLE: u16 = 0;
    pub const EPERM: u16 = 1;
}

/// Codes of `OFPET_BAD_REQUEST`.
pub mod bad_request {
    pub const BAD_VERSION: u16 = 0;
    pub const BAD_TYPE: u16 = 1;
    pub const BAD_STAT: u16 = 2;
    pub const BAD_VENDOR: u16 = 3;
    pub const BAD_SUBTYPE: u16 = 4;
    pub const EPERM: u16 = 5;
    pub const BAD_LEN: u16 = 6;
    pub const BUFFER_EMPTY: u16 = 7;
    pub const BUFFER_UNKNOWN: u16 = 8;
}

/// Codes of `OFPET_BAD_ACTION`.
pub mod bad_action {
    pub const BAD_TYPE: u16 = 0;
    pub const BAD_LEN: u16 = 1;
    pub const BAD_VENDOR: u16 = 2;
    pub const BAD_VENDOR_TYPE: u16 = 3;
    pub const BAD_OUT_PORT: u16 = 4;
    pub const BAD_ARGUMENT: u16 = 5;
    pub const EPERM: u16 = 6;
    pub const TOO_MANY: u16 = 7;
    pub const BAD_QUEUE: u16 = 8;
}

/// Codes of `OFPET_FLOW_MOD_FAILED`.
pub mod flow_mod_failed {
    pub const ALL_TABLES_FULL: u16 = 0;
    pub const OVERLAP: u16 = 1;
    pub const EPERM: u16 = 2;
    pub const BAD_EMERG_TIMEOUT: u16 = 3;
    pub const BAD_COMMAND: u16 = 4;
    pub const UNSUPPORTED: u16 = 5;
}

/// Codes of `OFPET_PORT_MOD_FAILED`.
pub mod port_mod_failed {
    pub const BAD_PORT: u16 = 0;
    pub const BAD_HW_ADDR: u16 = 1;
}

/// Codes of `OFPET_QUEUE_OP_FAILED`.
pub mod queue_op_failed {
    pub const BAD_PORT: u16 = 0;
    pub const BAD_QUEUE: u16 = 1;
    pub const EPERM: u16 = 2;
}

/// The names of an OpenFlow 1.0 error type and code, for logs.
pub fn describe_error(err_type: u16, code: u16) -> (&'static str, &'static str) {
    let (name, codes): (&str, &[&str]) = match err_type {
        error_type::HELLO_FAILED => ("HELLO_FAILED", &["INCOMPATIBLE", "EPERM"]),
        error_type::BAD_REQUEST => (
            "BAD_REQUEST",
            &[
                "BAD_VERSION",
                "BAD_TYPE",
                "BAD_STAT",
                "BAD_VENDOR",
                "BAD_SUBTYPE",
                "EPERM",
                "BAD_LEN",
                "BUFFER_EMPTY",
                "BUFFER_UNKNOWN",
            ],
        ),
        error_type::BAD_ACTION => (
            "BAD_ACTION",
            &[
                "BAD_TYPE",
                "BAD_LEN",
                "BAD_VENDOR",
                "BAD_VENDOR_TYPE",
                "BAD_OUT_PORT",
                "BAD_ARGUMENT",
                "EPERM",
                "TOO_MANY",
                "BAD_QUEUE",
            ],
        ),
        error_type::FLOW_MOD_FAILED => (
            "FLOW_MOD_FAILED",
            &["ALL_TABLES_FULL", "OVERLAP", "EPERM", "BAD_EMERG_TIMEOUT", "BAD_COMMAND", "UNSUPPORTED"],
        ),
        error_type::PORT_MOD_FAILED => ("PORT_MOD_FAILED", &["BAD_PORT", "BAD_HW_ADDR"]),
        error_type::QUEUE_OP_FAILED => ("QUEUE_OP_FAILED", &["BAD_PORT", "BAD_QUEUE", "EPERM"]),
        _ => return ("UNKNOWN_TYPE", "UNKNOWN_CODE"),
    };
    (name, codes.get(usize::from(code)).copied().unwrap_or("UNKNOWN_CODE"))
}

/// Translates an OpenFlow 1.3 error (type, code), as carried by [`WireError`],
/// to the nearest OpenFlow 1.0 (type, code).
pub fn of10_error_code(err_type: u16, code: u16) -> (u16, u16) {
    use crate::wire::error::{bad_request as rq13, error_type as t13};
    const BAD_LEN: (u16, u16) = (error_type::BAD_REQUEST, bad_request::BAD_LEN);
    const EPERM: (u16, u16) = (error_type::BAD_REQUEST, bad_request::EPERM);
    match err_type {
        t13::HELLO_FAILED => (error_type::HELLO_FAILED, code),
        t13::BAD_REQUEST => match code {
            // BAD_VERSION..BUFFER_UNKNOWN share their numbers (BAD_MULTIPART is
            // BAD_STAT, BAD_EXPERIMENTER is BAD_VENDOR, BAD_EXP_TYPE is BAD_SUBTYPE).
            0..=8 => (error_type::BAD_REQUEST, code),
            rq13::IS_SLAVE => EPERM,
            _ => BAD_LEN,
        },
        t13::BAD_ACTION => {
            let c = match code {
                0..=8 => code,
                9 => bad_action::BAD_OUT_PORT, // BAD_OUT_GROUP
                13 => bad_action::BAD_TYPE,    // BAD_SET_TYPE
                14 => bad_action::BAD_LEN,     // BAD_SET_LEN
                _ => bad_action::BAD_ARGUMENT, // MATCH_INCONSISTENT, UNSUPPORTED_ORDER, BAD_TAG, BAD_SET_ARGUMENT
            };
            (error_type::BAD_ACTION, c)
        }
        t13::BAD_INSTRUCTION if code == 8 => EPERM,
        t13::BAD_MATCH if code == 11 => EPERM,
        t13::BAD_INSTRUCTION | t13::BAD_MATCH => BAD_LEN,
        t13::FLOW_MOD_FAILED => {
            use flow_mod_failed as f;
            let c = match code {
                1 => f::ALL_TABLES_FULL,
                3 => f::OVERLAP,
                4 => f::EPERM,
                5 => f::BAD_EMERG_TIMEOUT,
                6 => f::BAD_COMMAND,
                _ => f::UNSUPPORTED, // UNKNOWN, BAD_TABLE_ID, BAD_FLAGS
            };
            (error_type::FLOW_MOD_FAILED, c)
        }
        t13::PORT_MOD_FAILED => match code {
            0 | 1 => (error_type::PORT_MOD_FAILED, code),
            4 => EPERM,
            _ => (error_type::PORT_MOD_FAILED, port_mod_failed::BAD_PORT),
        },
        t13::QUEUE_OP_FAILED => (error_type::QUEUE_OP_FAILED, code),
        t13::SWITCH_CONFIG_FAILED if code == 2 => EPERM,
        t13::SWITCH_CONFIG_FAILED => BAD_LEN,
        t13::EXPERIMENTER => (error_type::BAD_REQUEST, bad_request::BAD_VENDOR),
        // Group, table, meter, role and table-features messages do not exist in 1.0.
        _ => (error_type::BAD_REQUEST, bad_request::BAD_TYPE),
    }
}

/// An OFPT_ERROR answering `offending` (a complete frame we could not handle),
/// numbered for OpenFlow 1.0 and carrying its first 64 bytes.
pub fn error_for(err: &WireError, offending: &[u8]) -> Message {
    let (err_type, code) = of10_error_code(err.err_type, err.code);
    let n = offending.len().min(64);
    Message::Error { err_type, code, data: offending[..n].to_vec() }
}

/// Widens an OpenFlow 1.0 port number to 1.3's: physical ports keep their number,
/// reserved ones (`OFPP_MAX` and up) map to `0xffff_ff00 | low byte`.
pub fn port_to_of13(port: u16) -> u32 {
    if port >= OFPP_MAX {
        0xffff_ff00 | u32::from(port & 0xff)
    } else {
        u32::from(port)
    }
}

/// Narrows an OpenFlow 1.3 port number to 1.0's; `None` for a physical port above `OFPP_MAX`
/// or a reserved number 1.0 lacks (`ANY` maps to `OFPP_NONE`).
pub fn port_from_of13(port: u32) -> Option<u16> {
    match port {
        0..0xff00 => u16::try_from(port).ok(),
        0xffff_ff00.. => Some(0xff00 | (port & 0xff) as u16),
        _ => None,
    }
}

/// `OFPT_PORT_STATUS` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStatus {
    /// One of [`port_reason`].
    pub reason: u8,
    pub desc: PhyPort,
}

/// Length of `ofp_phy_port` on the wire.
pub const PHY_PORT_LEN: usize = 48;

/// `ofp_phy_port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhyPort {
    pub port_no: u16,
    pub hw_addr: [u8; 6],
    /// The name as on the wire: NUL-padded bytes (see [`PhyPort::name_str`]).
    pub name: [u8; 16],
    pub config: u32,
    pub state: u32,
    pub curr: u32,
    pub advertised: u32,
    pub supported: u32,
    pub peer: u32,
}

impl PhyPort {
    /// The port's name (up to the first NUL).
    pub fn name_str(&self) -> String {
        str_of(&self.name)
    }

    /// Whether the link is up and the port not administratively down.
    pub fn is_up(&self) -> bool {
        self.state & port_state::LINK_DOWN == 0 && self.config & port_config::PORT_DOWN == 0
    }

    /// The same port as an OpenFlow 1.3 `ofp_port`: reserved numbers (`OFPP_*` from
    /// `OFPP_MAX` up) widen to their 32-bit counterparts, speeds are unknown (0).
    pub fn to_of13(&self) -> crate::wire::of13::Port {
        crate::wire::of13::Port {
            port_no: port_to_of13(self.port_no),
            hw_addr: self.hw_addr,
            name_bytes: self.name,
            config: self.config,
            state: self.state,
            curr: self.curr,
            advertised: self.advertised,
            supported: self.supported,
            peer: self.peer,
            curr_speed: 0,
            max_speed: 0,
        }
    }

    pub fn parse(input: &[u8]) -> PResult<'_, PhyPort> {
        let (input, port_no) = be_u16(input)?;
        let (input, hw) = take_n(input, 6, "phy_port hw_addr")?;
        let (input, name) = take_n(input, 16, "phy_port name")?;
        let (input, config) = be_u32(input)?;
        let (input, state) = be_u32(input)?;
        let (input, curr) = be_u32(input)?;
        let (input, advertised) = be_u32(input)?;
        let (input, supported) = be_u32(input)?;
        let (input, peer) = be_u32(input)?;
        Ok((
            input,
            PhyPort {
                port_no,
                hw_addr: fixed_str(hw),
                name: fixed_str(name),
                config,
                state,
                curr,
                advertised,
                supported,
                peer,
            },
        ))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u16(self.port_no);
        out.extend_from_slice(&self.hw_addr);
        out.extend_from_slice(&self.name);
        for v in [self.config, self.state, self.curr, self.advertised, self.supported, self.peer] {
            out.put_u32(v);
        }
    }
}

/// `OFPT_FEATURES_REPLY` body (`ofp_switch_features`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchFeatures {
    pub datapath_id: u64,
    pub n_buffers: u32,
    pub n_tables: u8,
    pub capabilities: u32,
    /// Bitmap of supported `ofp_action_type`s.
    pub actions: u32,
    pub ports: Vec<PhyPort>,
}

/// `OFPT_PACKET_IN` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketIn {
    pub buffer_id: u32,
    pub total_len: u16,
    pub in_port: u16,
    pub reason: u8,
    pub data: Vec<u8>,
}

/// `OFPT_FLOW_REMOVED` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRemoved {
    pub match_: Match,
    pub cookie: u64,
    pub priority: u16,
    pub reason: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub idle_timeout: u16,
    pub packet_count: u64,
    pub byte_count: u64,
}

/// `OFPT_PACKET_OUT` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOut {
    pub buffer_id: u32,
    pub in_port: u16,
    pub actions: Vec<Action>,
    pub data: Vec<u8>,
}

/// `OFPT_FLOW_MOD` body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowMod {
    pub match_: Match,
    pub cookie: u64,
    pub command: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub priority: u16,
    pub buffer_id: u32,
    pub out_port: u16,
    pub flags: u16,
    pub actions: Vec<Action>,
}

/// OpenFlow 1.0's default flow priority (`OFP_DEFAULT_PRIORITY`).
pub const DEFAULT_PRIORITY: u16 = 0x8000;

impl Default for FlowMod {
    /// An ADD of a match-all flow at the default priority, no buffer, wildcard out port.
    fn default() -> Self {
        FlowMod {
            match_: Match::all(),
            cookie: 0,
            command: flow_command::ADD,
            idle_timeout: 0,
            hard_timeout: 0,
            priority: DEFAULT_PRIORITY,
            buffer_id: NO_BUFFER,
            out_port: OFPP_NONE,
            flags: 0,
            actions: Vec::new(),
        }
    }
}

/// `OFPT_PORT_MOD` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMod {
    pub port_no: u16,
    pub hw_addr: [u8; 6],
    pub config: u32,
    pub mask: u32,
    pub advertise: u32,
}

/// `ofp_flow_stats_request` (also the layout of the aggregate request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStatsRequest {
    pub match_: Match,
    /// 0xff for all tables.
    pub table_id: u8,
    /// `OFPP_NONE` for no restriction.
    pub out_port: u16,
}

/// `ofp_desc_stats` has the same layout in OpenFlow 1.0 and 1.3: one type serves both.
pub use crate::wire::of13::multipart::DescStats;

/// Length of `ofp_desc_stats`.
pub const DESC_STATS_LEN: usize = 256 * 4 + 32;

/// Fixed part of `ofp_flow_stats`, before the actions.
pub const FLOW_STATS_LEN: usize = 88;

/// `ofp_flow_stats` (its `length` is computed on emit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStats {
    pub table_id: u8,
    pub match_: Match,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub priority: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub cookie: u64,
    pub packet_count: u64,
    pub byte_count: u64,
    pub actions: Vec<Action>,
}

impl FlowStats {
    fn parse(input: &[u8]) -> PResult<'_, FlowStats> {
        let (_, length) = be_u16(input)?;
        let length = usize::from(length);
        if length < FLOW_STATS_LEN {
            return WireError::bad_len("flow stats shorter than its fixed part").fail();
        }
        let (rest, whole) = take_n(input, length, "flow stats")?;
        let (b, ()) = skip(whole, 2)?;
        let (b, table_id) = be_u8(b)?;
        let (b, ()) = skip(b, 1)?;
        let (b, match_) = Match::parse(b)?;
        let (b, duration_sec) = be_u32(b)?;
        let (b, duration_nsec) = be_u32(b)?;
        let (b, priority) = be_u16(b)?;
        let (b, idle_timeout) = be_u16(b)?;
        let (b, hard_timeout) = be_u16(b)?;
        let (b, ()) = skip(b, 6)?;
        let (b, cookie) = be_u64(b)?;
        let (b, packet_count) = be_u64(b)?;
        let (b, byte_count) = be_u64(b)?;
        let actions = action::parse_actions(b)?;
        Ok((
            rest,
            FlowStats {
                table_id,
                match_,
                duration_sec,
                duration_nsec,
                priority,
                idle_timeout,
                hard_timeout,
                cookie,
                packet_count,
                byte_count,
                actions,
            },
        ))
    }

    fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_u8(self.table_id);
        out.put_zeros(1);
        self.match_.emit(out);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
        out.put_u16(self.priority);
        out.put_u16(self.idle_timeout);
        out.put_u16(self.hard_timeout);
        out.put_zeros(6);
        out.put_u64(self.cookie);
        out.put_u64(self.packet_count);
        out.put_u64(self.byte_count);
        action::emit_actions(&self.actions, out);
        let len = len_since(out, start);
        out.patch_u16(start, len);
    }
}

/// Body of an `OFPT_STATS_REQUEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsRequest {
    Desc,
    Flow(FlowStatsRequest),
    /// Any other stats type, body kept as it came.
    Other {
        stats_type: u16,
        body: Vec<u8>,
    },
}

impl StatsRequest {
    pub fn stats_type(&self) -> u16 {
        match self {
            StatsRequest::Desc => stats_type::DESC,
            StatsRequest::Flow(_) => stats_type::FLOW,
            StatsRequest::Other { stats_type, .. } => *stats_type,
        }
    }

    fn parse(ty: u16, body: &[u8]) -> Result<Self, nom::Err<WireError>> {
        Ok(match ty {
            stats_type::DESC => done(body, StatsRequest::Desc)?,
            stats_type::FLOW => {
                let (r, match_) = Match::parse(body)?;
                let (r, table_id) = be_u8(r)?;
                let (r, ()) = skip(r, 1)?;
                let (r, out_port) = be_u16(r)?;
                done(r, StatsRequest::Flow(FlowStatsRequest { match_, table_id, out_port }))?
            }
            _ => StatsRequest::Other { stats_type: ty, body: body.to_vec() },
        })
    }

    fn emit(&self, out: &mut Vec<u8>) {
        match self {
            StatsRequest::Desc => {}
            StatsRequest::Flow(f) => {
                f.match_.emit(out);
                out.put_u8(f.table_id);
                out.put_zeros(1);
                out.put_u16(f.out_port);
            }
            StatsRequest::Other { body, .. } => out.extend_from_slice(body),
        }
    }
}

/// Body of an `OFPT_STATS_REPLY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsReply {
    Desc(Box<DescStats>),
    Flow(Vec<FlowStats>),
    /// Any other stats type, body kept as it came.
    Other {
        stats_type: u16,
        body: Vec<u8>,
    },
}

impl StatsReply {
    pub fn stats_type(&self) -> u16 {
        match self {
            StatsReply::Desc(_) => stats_type::DESC,
            StatsReply::Flow(_) => stats_type::FLOW,
            StatsReply::Other { stats_type, .. } => *stats_type,
        }
    }

    fn parse(ty: u16, body: &[u8]) -> Result<Self, nom::Err<WireError>> {
        Ok(match ty {
            stats_type::DESC => {
                let (r, d) = DescStats::parse(body)?;
                done(r, StatsReply::Desc(Box::new(d)))?
            }
            stats_type::FLOW => StatsReply::Flow(many_to_end(body, FlowStats::parse)?),
            _ => StatsReply::Other { stats_type: ty, body: body.to_vec() },
        })
    }

    fn emit(&self, out: &mut Vec<u8>) {
        match self {
            StatsReply::Desc(d) => d.emit(out),
            StatsReply::Flow(flows) => {
                for f in flows {
                    f.emit(out);
                }
            }
            StatsReply::Other { body, .. } => out.extend_from_slice(body),
        }
    }
}

/// An OpenFlow 1.0 message (header aside: the xid travels beside it).
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// HELLO; any body is kept opaque.
    Hello(Vec<u8>),
    Error {
        err_type: u16,
        code: u16,
        data: Vec<u8>,
    },
    EchoRequest(Vec<u8>),
    EchoReply(Vec<u8>),
    Vendor {
        vendor: u32,
        data: Vec<u8>,
    },
    FeaturesRequest,
    FeaturesReply(SwitchFeatures),
    GetConfigRequest,
    GetConfigReply {
        flags: u16,
        miss_send_len: u16,
    },
    SetConfig {
        flags: u16,
        miss_send_len: u16,
    },
    PacketIn(PacketIn),
    FlowRemoved(FlowRemoved),
    PortStatus(PortStatus),
    PacketOut(PacketOut),
    FlowMod(FlowMod),
    PortMod(PortMod),
    StatsRequest {
        flags: u16,
        body: StatsRequest,
    },
    StatsReply {
        flags: u16,
        body: StatsReply,
    },
    BarrierRequest,
    BarrierReply,
    QueueGetConfigRequest {
        port: u16,
    },
    /// QUEUE_GET_CONFIG_REPLY; the `ofp_packet_queue` list is kept opaque.
    QueueGetConfigReply {
        port: u16,
        queues: Vec<u8>,
    },
}

impl Message {
    /// The `ofp_type` of this message.
    pub fn msg_type(&self) -> u8 {
        use msg_type as t;
        match self {
            Message::Hello(_) => t::HELLO,
            Message::Error { .. } => t::ERROR,
            Message::EchoRequest(_) => t::ECHO_REQUEST,
            Message::EchoReply(_) => t::ECHO_REPLY,
            Message::Vendor { .. } => t::VENDOR,
            Message::FeaturesRequest => t::FEATURES_REQUEST,
            Message::FeaturesReply(_) => t::FEATURES_REPLY,
            Message::GetConfigRequest => t::GET_CONFIG_REQUEST,
            Message::GetConfigReply { .. } => t::GET_CONFIG_REPLY,
            Message::SetConfig { .. } => t::SET_CONFIG,
            Message::PacketIn(_) => t::PACKET_IN,
            Message::FlowRemoved(_) => t::FLOW_REMOVED,
            Message::PortStatus(_) => t::PORT_STATUS,
            Message::PacketOut(_) => t::PACKET_OUT,
            Message::FlowMod(_) => t::FLOW_MOD,
            Message::PortMod(_) => t::PORT_MOD,
            Message::StatsRequest { .. } => t::STATS_REQUEST,
            Message::StatsReply { .. } => t::STATS_REPLY,
            Message::BarrierRequest => t::BARRIER_REQUEST,
            Message::BarrierReply => t::BARRIER_REPLY,
            Message::QueueGetConfigRequest { .. } => t::QUEUE_GET_CONFIG_REQUEST,
            Message::QueueGetConfigReply { .. } => t::QUEUE_GET_CONFIG_REPLY,
        }
    }

    /// Appends the whole message, header included, to `out`.
    pub fn emit(&self, xid: u32, out: &mut Vec<u8>) -> Result<(), WireError> {
        crate::wire::emit_message(OFP10, self.msg_type(), xid, out, |o| self.emit_body(o))
    }

    /// The message as a fresh buffer.
    pub fn to_bytes(&self, xid: u32) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(64);
        self.emit(xid, &mut out)?;
        Ok(out)
    }

    fn emit_body(&self, out: &mut Vec<u8>) {
        match self {
            Message::Hello(d) | Message::EchoRequest(d) | Message::EchoReply(d) => out.extend_from_slice(d),
            Message::Error { err_type, code, data } => {
                out.put_u16(*err_type);
                out.put_u16(*code);
                out.extend_from_slice(data);
            }
            Message::Vendor { vendor, data } => {
                out.put_u32(*vendor);
                out.extend_from_slice(data);
            }
            Message::FeaturesRequest | Message::GetConfigRequest | Message::BarrierRequest | Message::BarrierReply => {}
            Message::FeaturesReply(f) => {
                out.put_u64(f.datapath_id);
                out.put_u32(f.n_buffers);
                out.put_u8(f.n_tables);
                out.put_zeros(3);
                out.put_u32(f.capabilities);
                out.put_u32(f.actions);
                for p in &f.ports {
                    p.emit(out);
                }
            }
            Message::GetConfigReply { flags, miss_send_len } | Message::SetConfig { flags, miss_send_len } => {
                out.put_u16(*flags);
                out.put_u16(*miss_send_len);
            }
            Message::PacketIn(p) => {
                out.put_u32(p.buffer_id);
                out.put_u16(p.total_len);
                out.put_u16(p.in_port);
                out.put_u8(p.reason);
                out.put_zeros(1);
                out.extend_from_slice(&p.data);
            }
            Message::FlowRemoved(f) => {
                f.match_.emit(out);
                out.put_u64(f.cookie);
                out.put_u16(f.priority);
                out.put_u8(f.reason);
                out.put_zeros(1);
                out.put_u32(f.duration_sec);
                out.put_u32(f.duration_nsec);
                out.put_u16(f.idle_timeout);
                out.put_zeros(2);
                out.put_u64(f.packet_count);
                out.put_u64(f.byte_count);
            }
            Message::PortStatus(p) => {
                out.put_u8(p.reason);
                out.put_zeros(7);
                p.desc.emit(out);
            }
            Message::PacketOut(p) => {
                out.put_u32(p.buffer_id);
                out.put_u16(p.in_port);
                let len_at = out.len();
                out.put_u16(0);
                let actions_start = out.len();
                action::emit_actions(&p.actions, out);
                let alen = len_since(out, actions_start);
                out.patch_u16(len_at, alen);
                out.extend_from_slice(&p.data);
            }
            Message::FlowMod(f) => {
                f.match_.emit(out);
                out.put_u64(f.cookie);
                out.put_u16(f.command);
                out.put_u16(f.idle_timeout);
                out.put_u16(f.hard_timeout);
                out.put_u16(f.priority);
                out.put_u32(f.buffer_id);
                out.put_u16(f.out_port);
                out.put_u16(f.flags);
                action::emit_actions(&f.actions, out);
            }
            Message::PortMod(p) => {
                out.put_u16(p.port_no);
                out.extend_from_slice(&p.hw_addr);
                out.put_u32(p.config);
                out.put_u32(p.mask);
                out.put_u32(p.advertise);
                out.put_zeros(4);
            }
            Message::StatsRequest { flags, body } => {
                out.put_u16(body.stats_type());
                out.put_u16(*flags);
                body.emit(out);
            }
            Message::StatsReply { flags, body } => {
                out.put_u16(body.stats_type());
                out.put_u16(*flags);
                body.emit(out);
            }
            Message::QueueGetConfigRequest { port } => {
                out.put_u16(*port);
                out.put_zeros(2);
            }
            Message::QueueGetConfigReply { port, queues } => {
                out.put_u16(*port);
                out.put_zeros(6);
                out.extend_from_slice(queues);
            }
        }
    }
}

/// Parses one complete OpenFlow 1.0 frame (header included, exactly `length` bytes).
pub fn parse(frame: &[u8]) -> Result<(Header, Message), WireError> {
    let (body, header) = finish(Header::parse(frame))?;
    if header.version != OFP10 {
        return Err(WireError::bad_version(header.version));
    }
    if usize::from(header.length) != frame.len() {
        return Err(WireError::bad_len("header length differs from frame length"));
    }
    let msg = finish(parse_body(header.msg_type, body))?;
    Ok((header, msg))
}

/// Fails unless the body was consumed exactly.
fn done<T>(rest: &[u8], v: T) -> Result<T, nom::Err<WireError>> {
    if rest.is_empty() {
        Ok(v)
    } else {
        WireError::bad_len("trailing bytes after message body").fail()
    }
}

fn parse_body(ty: u8, b: &[u8]) -> Result<Message, nom::Err<WireError>> {
    use msg_type as t;
    let msg = match ty {
        t::HELLO => Message::Hello(b.to_vec()),
        t::ERROR => {
            let (r, err_type) = be_u16(b)?;
            let (r, code) = be_u16(r)?;
            Message::Error { err_type, code, data: r.to_vec() }
        }
        t::ECHO_REQUEST => Message::EchoRequest(b.to_vec()),
        t::ECHO_REPLY => Message::EchoReply(b.to_vec()),
        t::VENDOR => {
            let (r, vendor) = be_u32(b)?;
            Message::Vendor { vendor, data: r.to_vec() }
        }
        t::FEATURES_REQUEST => done(b, Message::FeaturesRequest)?,
        t::FEATURES_REPLY => {
            let (r, datapath_id) = be_u64(b)?;
            let (r, n_buffers) = be_u32(r)?;
            let (r, n_tables) = be_u8(r)?;
            let (r, ()) = skip(r, 3)?;
            let (r, capabilities) = be_u32(r)?;
            let (r, actions) = be_u32(r)?;
            if r.len() % PHY_PORT_LEN != 0 {
                return WireError::bad_len("features reply ports not a multiple of 48 bytes").fail();
            }
            let ports = many_to_end(r, PhyPort::parse)?;
            Message::FeaturesReply(SwitchFeatures { datapath_id, n_buffers, n_tables, capabilities, actions, ports })
        }
        t::GET_CONFIG_REQUEST => done(b, Message::GetConfigRequest)?,
        t::GET_CONFIG_REPLY | t::SET_CONFIG => {
            let (r, flags) = be_u16(b)?;
            let (r, miss_send_len) = be_u16(r)?;
            let m = if ty == t::SET_CONFIG {
                Message::SetConfig { flags, miss_send_len }
            } else {
                Message::GetConfigReply { flags, miss_send_len }
            };
            done(r, m)?
        }
        t::PACKET_IN => {
            let (r, buffer_id) = be_u32(b)?;
            let (r, total_len) = be_u16(r)?;
            let (r, in_port) = be_u16(r)?;
            let (r, reason) = be_u8(r)?;
            let (r, ()) = skip(r, 1)?;
            Message::PacketIn(PacketIn { buffer_id, total_len, in_port, reason, data: r.to_vec() })
        }
        t::FLOW_REMOVED => {
            let (r, match_) = Match::parse(b)?;
            let (r, cookie) = be_u64(r)?;
            let (r, priority) = be_u16(r)?;
            let (r, reason) = be_u8(r)?;
            let (r, ()) = skip(r, 1)?;
            let (r, duration_sec) = be_u32(r)?;
            let (r, duration_nsec) = be_u32(r)?;
            let (r, idle_timeout) = be_u16(r)?;
            let (r, ()) = skip(r, 2)?;
            let (r, packet_count) = be_u64(r)?;
            let (r, byte_count) = be_u64(r)?;
            done(
                r,
                Message::FlowRemoved(FlowRemoved {
                    match_,
                    cookie,
                    priority,
                    reason,
                    duration_sec,
                    duration_nsec,
                    idle_timeout,
                    packet_count,
                    byte_count,
                }),
            )?
        }
        t::PORT_STATUS => {
            let (r, reason) = be_u8(b)?;
            let (r, ()) = skip(r, 7)?;
            let (r, desc) = PhyPort::parse(r)?;
            done(r, Message::PortStatus(PortStatus { reason, desc }))?
        }
        t::PACKET_OUT => {
            let (r, buffer_id) = be_u32(b)?;
            let (r, in_port) = be_u16(r)?;
            let (r, actions_len) = be_u16(r)?;
            let (data, actions) = take_n(r, usize::from(actions_len), "packet_out actions")?;
            let actions = action::parse_actions(actions)?;
            Message::PacketOut(PacketOut { buffer_id, in_port, actions, data: data.to_vec() })
        }
        t::FLOW_MOD => {
            let (r, match_) = Match::parse(b)?;
            let (r, cookie) = be_u64(r)?;
            let (r, command) = be_u16(r)?;
            let (r, idle_timeout) = be_u16(r)?;
            let (r, hard_timeout) = be_u16(r)?;
            let (r, priority) = be_u16(r)?;
            let (r, buffer_id) = be_u32(r)?;
            let (r, out_port) = be_u16(r)?;
            let (r, flags) = be_u16(r)?;
            let actions = action::parse_actions(r)?;
            Message::FlowMod(FlowMod {
                match_,
                cookie,
                command,
                idle_timeout,
                hard_timeout,
                priority,
                buffer_id,
                out_port,
                flags,
                actions,
            })
        }
        t::PORT_MOD => {
            let (r, port_no) = be_u16(b)?;
            let (r, hw) = take_n(r, 6, "port_mod hw_addr")?;
            let (r, config) = be_u32(r)?;
            let (r, mask) = be_u32(r)?;
            let (r, advertise) = be_u32(r)?;
            let (r, ()) = skip(r, 4)?;
            done(r, Message::PortMod(PortMod { port_no, hw_addr: fixed_str(hw), config, mask, advertise }))?
        }
        t::STATS_REQUEST | t::STATS_REPLY => {
            let (r, st) = be_u16(b)?;
            let (r, flags) = be_u16(r)?;
            if ty == t::STATS_REQUEST {
                Message::StatsRequest { flags, body: StatsRequest::parse(st, r)? }
            } else {
                Message::StatsReply { flags, body: StatsReply::parse(st, r)? }
            }
        }
        t::BARRIER_REQUEST => done(b, Message::BarrierRequest)?,
        t::BARRIER_REPLY => done(b, Message::BarrierReply)?,
        t::QUEUE_GET_CONFIG_REQUEST => {
            let (r, port) = be_u16(b)?;
            let (r, ()) = skip(r, 2)?;
            done(r, Message::QueueGetConfigRequest { port })?
        }
        t::QUEUE_GET_CONFIG_REPLY => {
            let (r, port) = be_u16(b)?;
            let (r, ()) = skip(r, 6)?;
            Message::QueueGetConfigReply { port, queues: r.to_vec() }
        }
        _ => return WireError::bad_type("unknown message type").fail(),
    };
    Ok(msg)
}

/// Size of an empty message of this version: the common header.
pub const MIN_LEN: usize = HEADER_LEN;

#[cfg(test)]
mod tests {
    use super::*;

    /// Ryu `1-4-ofp_packet_in.packet`: an ARP request, buffer 2, port 99, reason ACTION.
    static PACKET_IN_BYTES: [u8; 60] = [
        0x01, 0x0a, 0x00, 0x3c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x2a, 0x00, 0x63, 0x01, 0x00,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf2, 0x0b, 0xa4, 0x7d, 0xf8, 0xea, 0x08, 0x06, 0x00, 0x01, 0x08, 0x00,
        0x06, 0x04, 0x00, 0x01, 0xf2, 0x0b, 0xa4, 0x7d, 0xf8, 0xea, 0x0a, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x0a, 0x00, 0x00, 0x03,
    ];

    /// Ryu `1-2-ofp_flow_mod.packet`: exact dl_dst, priority 123, output to port 6.
    static FLOW_MOD_BYTES: [u8; 80] = [
        0x01, 0x0e, 0x00, 0x50, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0xff, 0xf7, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0xf2, 0x0b, 0xa4, 0x7d, 0xf8, 0xea, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7b, 0x00, 0x00, 0xff, 0xff, 0xff, 0xfc, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x08, 0x00, 0x06, 0xff, 0xff,
    ];

    /// A packet-out of a buffered packet, flooding (as a learning switch sends it).
    static PACKET_OUT_BYTES: [u8; 24] = [
        0x01, 0x0d, 0x00, 0x18, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x01, 0x00, 0x00, 0x02, 0x00, 0x08, 0x00, 0x00,
        0x00, 0x08, 0xff, 0xfb, 0x00, 0x00,
    ];

    static HELLO_BYTES: [u8; 8] = [0x01, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x05];

    static SET_CONFIG_BYTES: [u8; 12] = [0x01, 0x09, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x80];

    fn dl_dst_match() -> Match {
        Match { wildcards: OFPFW_ALL & !OFPFW_DL_DST, dl_dst: [0xf2, 0x0b, 0xa4, 0x7d, 0xf8, 0xea], ..Match::all() }
    }

    #[test]
    fn hello_round_trips() {
        let (h, m) = parse(&HELLO_BYTES).expect("parses");
        assert_eq!((h.version, h.msg_type, h.xid), (OFP10, msg_type::HELLO, 5));
        assert_eq!(m, Message::Hello(Vec::new()));
        assert_eq!(m.to_bytes(5).expect("message fits in 64 KiB"), HELLO_BYTES);
    }

    #[test]
    fn set_config_round_trips() {
        let (_, m) = parse(&SET_CONFIG_BYTES).expect("parses");
        assert_eq!(m, Message::SetConfig { flags: config_flags::FRAG_NORMAL, miss_send_len: 128 });
        assert_eq!(m.to_bytes(3).expect("message fits in 64 KiB"), SET_CONFIG_BYTES);
    }

    #[test]
    fn packet_in_parses() {
        let (h, m) = parse(&PACKET_IN_BYTES).expect("parses");
        assert_eq!(h.xid, 0);
        let Message::PacketIn(p) = m else { panic!("not a packet-in: {m:?}") };
        assert_eq!((p.buffer_id, p.total_len, p.in_port, p.reason), (2, 42, 99, packet_in_reason::ACTION));
        assert_eq!(p.data, PACKET_IN_BYTES[18..]);
    }

    #[test]
    fn packet_in_emits_same_bytes() {
        let p = PacketIn {
            buffer_id: 2,
            total_len: 42,
            in_port: 99,
            reason: packet_in_reason::ACTION,
            data: PACKET_IN_BYTES[18..].to_vec(),
        };
        assert_eq!(Message::PacketIn(p).to_bytes(0).expect("message fits in 64 KiB"), PACKET_IN_BYTES);
    }

    #[test]
    fn flow_mod_parses() {
        let (_, m) = parse(&FLOW_MOD_BYTES).expect("parses");
        let Message::FlowMod(f) = m else { panic!("not a flow mod: {m:?}") };
        assert_eq!(f.match_, dl_dst_match());
        assert_eq!((f.command, f.priority, f.buffer_id, f.out_port), (flow_command::ADD, 123, 0xffff, OFPP_ALL));
        assert_eq!(f.actions, vec![Action::output(6)]);
    }

    #[test]
    fn flow_mod_emits_same_bytes() {
        let f = FlowMod {
            match_: dl_dst_match(),
            priority: 123,
            buffer_id: 0xffff,
            out_port: OFPP_ALL,
            actions: vec![Action::output(6)],
            ..FlowMod::default()
        };
        assert_eq!(Message::FlowMod(f).to_bytes(0).expect("message fits in 64 KiB"), FLOW_MOD_BYTES);
    }

    #[test]
    fn packet_out_round_trips() {
        let po = PacketOut {
            buffer_id: 0x100,
            in_port: 2,
            actions: vec![Action::Output { port: OFPP_FLOOD, max_len: 0 }],
            data: vec![],
        };
        let (h, m) = parse(&PACKET_OUT_BYTES).expect("parses");
        assert_eq!(h.xid, 9);
        assert_eq!(m, Message::PacketOut(po.clone()));
        assert_eq!(Message::PacketOut(po).to_bytes(9).expect("message fits in 64 KiB"), PACKET_OUT_BYTES);
    }

    #[test]
    fn packet_out_actions_len_past_end_is_bad_len() {
        let mut bytes = PACKET_OUT_BYTES;
        bytes[15] = 0x10;
        let e = parse(&bytes).expect_err("actions_len 16 of 8");
        assert_eq!((e.err_type, e.code), (1, bad_request::BAD_LEN));
    }

    #[test]
    fn features_reply_round_trips() {
        let port = |n: u16, name: &str| PhyPort {
            port_no: n,
            hw_addr: [2, 0, 0, 0, 0, n as u8],
            name: fixed_str(name.as_bytes()),
            config: 0,
            state: port_state::STP_FORWARD,
            curr: 0x288,
            advertised: 0x280,
            supported: 0x288,
            peer: 0x288,
        };
        let f = SwitchFeatures {
            datapath_id: 0xff_1234_5678,
            n_buffers: 256,
            n_tables: 1,
            capabilities: 0xc7,
            actions: 0xfff,
            ports: vec![port(1, "s1-eth1"), port(OFPP_LOCAL, "s1")],
        };
        let bytes = Message::FeaturesReply(f.clone()).to_bytes(77).expect("message fits in 64 KiB");
        assert_eq!(bytes.len(), 32 + 2 * PHY_PORT_LEN);
        let (h, back) = parse(&bytes).expect("parses");
        assert_eq!((h.msg_type, h.length as usize), (msg_type::FEATURES_REPLY, bytes.len()));
        assert_eq!(back, Message::FeaturesReply(f));
        let Message::FeaturesReply(back) = back else { unreachable!() };
        assert_eq!(back.ports[0].name_str(), "s1-eth1");
        assert!(back.ports[0].is_up());
    }

    #[test]
    fn port_numbers_widen_and_narrow() {
        use crate::wire::of13::action::port_no;
        assert_eq!(port_to_of13(7), 7);
        assert_eq!(port_to_of13(OFPP_FLOOD), port_no::FLOOD);
        assert_eq!(port_to_of13(OFPP_CONTROLLER), port_no::CONTROLLER);
        assert_eq!(port_to_of13(OFPP_NONE), port_no::ANY);
        assert_eq!(port_from_of13(port_no::LOCAL), Some(OFPP_LOCAL));
        assert_eq!(port_from_of13(port_no::ANY), Some(OFPP_NONE));
        assert_eq!(port_from_of13(3), Some(3));
        assert_eq!(port_from_of13(0x1_0000), None);
        let p = PhyPort {
            port_no: OFPP_LOCAL,
            hw_addr: [2, 0, 0, 0, 0, 1],
            name: fixed_str(b"br0"),
            config: 0,
            state: port_state::LINK_DOWN,
            curr: 1,
            advertised: 2,
            supported: 3,
            peer: 4,
        };
        let q = p.to_of13();
        assert_eq!((q.port_no, q.name(), q.is_up(), q.peer), (port_no::LOCAL, "br0".to_string(), false, 4));
    }

    #[test]
    fn features_reply_with_partial_port_is_bad_len() {
        let f =
            SwitchFeatures { datapath_id: 1, n_buffers: 0, n_tables: 1, capabilities: 0, actions: 0, ports: vec![] };
        let mut bytes = Message::FeaturesReply(f).to_bytes(0).expect("message fits in 64 KiB");
        bytes.extend_from_slice(&[0; 20]);
        bytes[3] = bytes.len() as u8;
        let e = parse(&bytes).expect_err("20-byte port");
        assert_eq!((e.err_type, e.code), (1, bad_request::BAD_LEN));
    }

    #[test]
    fn other_messages_round_trip() {
        let port = PhyPort {
            port_no: 3,
            hw_addr: [2, 0, 0, 0, 0, 3],
            name: fixed_str(b"eth3"),
            config: port_config::PORT_DOWN,
            state: port_state::LINK_DOWN,
            curr: 0,
            advertised: 0,
            supported: 0,
            peer: 0,
        };
        let msgs = vec![
            Message::Error { err_type: 1, code: 6, data: vec![1, 0, 0, 8, 0, 0, 0, 1] },
            Message::EchoRequest(vec![1, 2, 3]),
            Message::EchoReply(vec![]),
            Message::Vendor { vendor: NX_VENDOR_ID, data: vec![0, 0, 0, 10, 0, 0, 0, 0] },
            Message::FeaturesRequest,
            Message::GetConfigRequest,
            Message::GetConfigReply { flags: 0, miss_send_len: 0xffff },
            Message::FlowRemoved(FlowRemoved {
                match_: Match::in_port_dl_src_dst(1, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]),
                cookie: 0xdead_beef,
                priority: 10,
                reason: flow_removed_reason::IDLE_TIMEOUT,
                duration_sec: 12,
                duration_nsec: 345,
                idle_timeout: 10,
                packet_count: 7,
                byte_count: 700,
            }),
            Message::PortStatus(PortStatus { reason: port_reason::MODIFY, desc: port.clone() }),
            Message::PortMod(PortMod {
                port_no: 3,
                hw_addr: port.hw_addr,
                config: port_config::NO_FLOOD,
                mask: port_config::NO_FLOOD,
                advertise: 0,
            }),
            Message::StatsRequest { flags: 0, body: StatsRequest::Desc },
            Message::StatsRequest {
                flags: 0,
                body: StatsRequest::Flow(FlowStatsRequest {
                    match_: Match::all(),
                    table_id: 0xff,
                    out_port: OFPP_NONE,
                }),
            },
            Message::StatsRequest {
                flags: 0,
                body: StatsRequest::Other { stats_type: stats_type::PORT, body: vec![0xff, 0xff, 0, 0, 0, 0, 0, 0] },
            },
            Message::StatsReply {
                flags: 0,
                body: StatsReply::Desc(Box::new(DescStats::new("tenet", "hw", "sw", "42", "dp"))),
            },
            Message::StatsReply {
                flags: STATS_REPLY_MORE,
                body: StatsReply::Flow(vec![
                    FlowStats {
                        table_id: 0,
                        match_: Match::in_port_dl_dst(1, [2, 0, 0, 0, 0, 2]),
                        duration_sec: 1,
                        duration_nsec: 2,
                        priority: 3,
                        idle_timeout: 4,
                        hard_timeout: 5,
                        cookie: 6,
                        packet_count: 7,
                        byte_count: 8,
                        actions: vec![Action::SetDlDst { dl_addr: [2, 0, 0, 0, 0, 9] }, Action::output(2)],
                    },
                    FlowStats {
                        table_id: 0,
                        match_: Match::all(),
                        duration_sec: 0,
                        duration_nsec: 0,
                        priority: 0,
                        idle_timeout: 0,
                        hard_timeout: 0,
                        cookie: 0,
                        packet_count: 0,
                        byte_count: 0,
                        actions: vec![],
                    },
                ]),
            },
            Message::StatsReply {
                flags: 0,
                body: StatsReply::Other { stats_type: stats_type::AGGREGATE, body: vec![0; 24] },
            },
            Message::BarrierRequest,
            Message::BarrierReply,
            Message::QueueGetConfigRequest { port: 1 },
            Message::QueueGetConfigReply { port: 1, queues: vec![0, 0, 0, 1, 0, 8, 0, 0] },
        ];
        for m in msgs {
            let bytes = m.to_bytes(0x0102_0304).expect("message fits in 64 KiB");
            let (h, back) = parse(&bytes).unwrap_or_else(|e| panic!("{m:?} does not parse back: {e}"));
            assert_eq!((h.msg_type, h.xid), (m.msg_type(), 0x0102_0304));
            assert_eq!(back, m);
            assert_eq!(back.to_bytes(0x0102_0304).expect("message fits in 64 KiB"), bytes);
        }
    }

    #[test]
    fn flow_stats_lengths_are_computed() {
        let body = StatsReply::Flow(vec![FlowStats {
            table_id: 0,
            match_: Match::all(),
            duration_sec: 0,
            duration_nsec: 0,
            priority: 0,
            idle_timeout: 0,
            hard_timeout: 0,
            cookie: 0,
            packet_count: 0,
            byte_count: 0,
            actions: vec![Action::output(1)],
        }]);
        let bytes = Message::StatsReply { flags: 0, body }.to_bytes(0).expect("message fits in 64 KiB");
        assert_eq!(bytes.len(), 12 + FLOW_STATS_LEN + 8);
        assert_eq!(u16::from_be_bytes([bytes[12], bytes[13]]) as usize, FLOW_STATS_LEN + 8);
    }

    #[test]
    fn desc_stats_are_1056_bytes() {
        let d = DescStats::new("Nicira, Inc.", "Open vSwitch", "2.17", "None", "s1");
        let bytes = Message::StatsReply { flags: 0, body: StatsReply::Desc(Box::new(d.clone())) }
            .to_bytes(0)
            .expect("message fits in 64 KiB");
        assert_eq!(bytes.len(), 12 + DESC_STATS_LEN);
        assert_eq!(str_of(&d.mfr_desc), "Nicira, Inc.");
    }

    #[test]
    fn unknown_type_is_bad_type() {
        let e = parse(&[1, 22, 0, 8, 0, 0, 0, 0]).expect_err("type 22");
        assert_eq!((e.err_type, e.code), (1, bad_request::BAD_TYPE));
    }

    #[test]
    fn wrong_version_and_length_are_refused() {
        let e = parse(&[4, 0, 0, 8, 0, 0, 0, 0]).expect_err("version 4");
        assert_eq!((e.err_type, e.code), (1, bad_request::BAD_VERSION));
        let e = parse(&[1, 0, 0, 9, 0, 0, 0, 0]).expect_err("length 9 of 8");
        assert_eq!((e.err_type, e.code), (1, bad_request::BAD_LEN));
        let e = parse(&[1, 5, 0, 9, 0, 0, 0, 0, 0]).expect_err("features request with a body");
        assert_eq!((e.err_type, e.code), (1, bad_request::BAD_LEN));
    }

    #[test]
    fn truncated_frames_never_panic() {
        for frame in [&PACKET_IN_BYTES[..], &FLOW_MOD_BYTES, &PACKET_OUT_BYTES, &SET_CONFIG_BYTES] {
            for n in 0..frame.len() {
                let mut cut = frame[..n].to_vec();
                if n >= 4 {
                    cut[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                }
                let _ = parse(&cut);
            }
        }
    }

    #[test]
    fn error_for_uses_of10_numbering_and_64_bytes() {
        use crate::wire::error::WireError as W;
        let offending = [0xabu8; 100];
        let m = error_for(&W::bad_multipart("x"), &offending);
        assert_eq!(m, Message::Error { err_type: 1, code: bad_request::BAD_STAT, data: vec![0xab; 64] });
        let Message::Error { err_type, code, data } = error_for(&W::bad_match(5, "x"), &offending[..10]) else {
            unreachable!()
        };
        assert_eq!((err_type, code, data.len()), (error_type::BAD_REQUEST, bad_request::BAD_LEN, 10));
        assert_eq!(of10_error_code(1, 6), (1, 6));
        assert_eq!(of10_error_code(1, 1), (1, 1));
        assert_eq!(of10_error_code(1, 10), (1, bad_request::EPERM));
        assert_eq!(of10_error_code(2, 1), (2, bad_action::BAD_LEN));
        assert_eq!(of10_error_code(2, 14), (2, bad_action::BAD_LEN));
        assert_eq!(of10_error_code(3, 0), (1, bad_request::BAD_LEN));
        assert_eq!(of10_error_code(5, 3), (error_type::FLOW_MOD_FAILED, flow_mod_failed::OVERLAP));
        assert_eq!(of10_error_code(7, 1), (error_type::PORT_MOD_FAILED, port_mod_failed::BAD_HW_ADDR));
        assert_eq!(of10_error_code(9, 1), (error_type::QUEUE_OP_FAILED, queue_op_failed::BAD_QUEUE));
        assert_eq!(of10_error_code(6, 0), (1, bad_request::BAD_TYPE));
        assert_eq!(describe_error(1, 2), ("BAD_REQUEST", "BAD_STAT"));
        assert_eq!(describe_error(3, 0), ("FLOW_MOD_FAILED", "ALL_TABLES_FULL"));
    }

    #[test]
    fn ryu_corpus_round_trips() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/conformance/ryu-of10/packets");
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("conformance corpus missing at {dir}: {e}"));
        let mut count = 0;
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("packet") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let (h, m) = parse(&bytes).unwrap_or_else(|e| panic!("{}: does not parse: {e}", path.display()));
            assert_eq!(
                m.to_bytes(h.xid).expect("message fits in 64 KiB"),
                bytes,
                "{}: emit differs from capture",
                path.display()
            );
            count += 1;
        }
        assert!(count > 0, "no .packet files in {dir}");
    }
}
