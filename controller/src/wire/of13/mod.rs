//! OpenFlow 1.3 messages.
//!
//! [`parse`] turns one complete frame into a [`Message`]; [`Message::emit`]
//! writes it back, header included. Lengths are computed on emit, padding is
//! written as zeros, so canonical input round-trips byte for byte.

pub mod action;
pub mod group_meter;
pub mod multipart;
pub mod nx;
pub mod oxm;
pub mod port;

use nom::number::complete::{be_u16, be_u32, be_u64, be_u8};

pub use action::{Action, Instruction};
pub use group_meter::{Bucket, GroupMod, MeterBand, MeterMod};
pub use multipart::{MultipartReply, MultipartRequest, PacketQueue};
pub use oxm::{Match, Oxm};
pub use port::{Port, PortMod, PortStatus};

use crate::wire::error::{error_type, WireError};
use crate::wire::{finish, len_since, skip, take_n, Header, PResult, Put, HEADER_LEN, OFP13};

/// Message type numbers (`ofp_type`).
pub mod msg_type {
    pub const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const ECHO_REQUEST: u8 = 2;
    pub const ECHO_REPLY: u8 = 3;
    pub const EXPERIMENTER: u8 = 4;
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
    pub const GROUP_MOD: u8 = 15;
    pub const PORT_MOD: u8 = 16;
    pub const TABLE_MOD: u8 = 17;
    pub const MULTIPART_REQUEST: u8 = 18;
    pub const MULTIPART_REPLY: u8 = 19;
    pub const BARRIER_REQUEST: u8 = 20;
    pub const BARRIER_REPLY: u8 = 21;
    pub const QUEUE_GET_CONFIG_REQUEST: u8 = 22;
    pub const QUEUE_GET_CONFIG_REPLY: u8 = 23;
    pub const ROLE_REQUEST: u8 = 24;
    pub const ROLE_REPLY: u8 = 25;
    pub const GET_ASYNC_REQUEST: u8 = 26;
    pub const GET_ASYNC_REPLY: u8 = 27;
    pub const SET_ASYNC: u8 = 28;
    pub const METER_MOD: u8 = 29;
}

/// `OFPTT_ALL`: every table (flow deletes and stats requests).
pub const ALL_TABLES: u8 = 0xff;

/// `OFP_NO_BUFFER`.
pub const NO_BUFFER: u32 = 0xffff_ffff;

/// Flow mod commands (`ofp_flow_mod_command`).
pub mod flow_command {
    pub const ADD: u8 = 0;
    pub const MODIFY: u8 = 1;
    pub const MODIFY_STRICT: u8 = 2;
    pub const DELETE: u8 = 3;
    pub const DELETE_STRICT: u8 = 4;
}

/// Controller roles (`ofp_controller_role`).
pub mod role {
    pub const NOCHANGE: u32 = 0;
    pub const EQUAL: u32 = 1;
    pub const MASTER: u32 = 2;
    pub const SLAVE: u32 = 3;
}

/// `OFPHET_VERSIONBITMAP`.
pub const HELLO_ELEM_VERSIONBITMAP: u16 = 1;

/// One element of a HELLO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloElem {
    /// Bit `n` of the bitmap set means version `n` is supported.
    VersionBitmap(Vec<u32>),
    Unknown {
        elem_type: u16,
        data: Vec<u8>,
    },
}

impl HelloElem {
    /// A bitmap naming the given version bytes.
    pub fn versions(versions: &[u8]) -> Self {
        let max = versions.iter().copied().max().unwrap_or(0);
        let mut words = vec![0u32; usize::from(max / 32) + 1];
        for v in versions {
            words[usize::from(v / 32)] |= 1 << (v % 32);
        }
        HelloElem::VersionBitmap(words)
    }
}

/// The highest version both sides name, given the peer's HELLO.
///
/// Without a bitmap, the version in the peer's header is the highest it speaks
/// (OpenFlow 1.3 section 6.3.1), so the answer is the highest of ours not above it.
pub fn negotiate(header_version: u8, elems: &[HelloElem], ours: &[u8]) -> Option<u8> {
    let bitmap = elems.iter().find_map(|e| match e {
        HelloElem::VersionBitmap(w) => Some(w),
        HelloElem::Unknown { .. } => None,
    });
    ours.iter()
        .copied()
        .filter(|v| match bitmap {
            Some(words) => words.get(usize::from(v / 32)).is_some_and(|w| w & (1 << (v % 32)) != 0),
            None => *v <= header_version,
        })
        .max()
}

/// `OFPT_FEATURES_REPLY` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchFeatures {
    pub datapath_id: u64,
    pub n_buffers: u32,
    pub n_tables: u8,
    pub auxiliary_id: u8,
    pub capabilities: u32,
    pub reserved: u32,
}

/// `OFPT_PACKET_IN` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketIn {
    pub buffer_id: u32,
    pub total_len: u16,
    pub reason: u8,
    pub table_id: u8,
    pub cookie: u64,
    pub match_: Match,
    pub data: Vec<u8>,
}

/// `OFPT_FLOW_REMOVED` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRemoved {
    pub cookie: u64,
    pub priority: u16,
    pub reason: u8,
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub packet_count: u64,
    pub byte_count: u64,
    pub match_: Match,
}

/// `OFPT_PACKET_OUT` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOut {
    pub buffer_id: u32,
    pub in_port: u32,
    pub actions: Vec<Action>,
    pub data: Vec<u8>,
}

/// `OFPT_FLOW_MOD` body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowMod {
    pub cookie: u64,
    pub cookie_mask: u64,
    pub table_id: u8,
    pub command: u8,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub priority: u16,
    pub buffer_id: u32,
    pub out_port: u32,
    pub out_group: u32,
    pub flags: u16,
    pub match_: Match,
    pub instructions: Vec<Instruction>,
}

impl Default for FlowMod {
    /// An ADD into table 0 with no buffer and wildcard out port/group.
    fn default() -> Self {
        FlowMod {
            cookie: 0,
            cookie_mask: 0,
            table_id: 0,
            command: flow_command::ADD,
            idle_timeout: 0,
            hard_timeout: 0,
            priority: 0,
            buffer_id: NO_BUFFER,
            out_port: action::port_no::ANY,
            out_group: 0xffff_ffff,
            flags: 0,
            match_: Match::default(),
            instructions: Vec::new(),
        }
    }
}

/// `OFPT_GET_ASYNC_REPLY` / `OFPT_SET_ASYNC` body: [master/equal, slave] masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AsyncConfig {
    pub packet_in_mask: [u32; 2],
    pub port_status_mask: [u32; 2],
    pub flow_removed_mask: [u32; 2],
}

/// An OpenFlow 1.3 message (header aside: the xid travels beside it).
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Hello(Vec<HelloElem>),
    Error { err_type: u16, code: u16, data: Vec<u8> },
    ErrorExperimenter { exp_type: u16, experimenter: u32, data: Vec<u8> },
    EchoRequest(Vec<u8>),
    EchoReply(Vec<u8>),
    Experimenter { experimenter: u32, exp_type: u32, data: Vec<u8> },
    FeaturesRequest,
    FeaturesReply(SwitchFeatures),
    GetConfigRequest,
    GetConfigReply { flags: u16, miss_send_len: u16 },
    SetConfig { flags: u16, miss_send_len: u16 },
    PacketIn(PacketIn),
    FlowRemoved(FlowRemoved),
    PortStatus(PortStatus),
    PacketOut(PacketOut),
    FlowMod(FlowMod),
    GroupMod(GroupMod),
    PortMod(PortMod),
    TableMod { table_id: u8, config: u32 },
    MultipartRequest { flags: u16, body: MultipartRequest },
    MultipartReply { flags: u16, body: MultipartReply },
    BarrierRequest,
    BarrierReply,
    QueueGetConfigRequest { port: u32 },
    QueueGetConfigReply { port: u32, queues: Vec<PacketQueue> },
    RoleRequest { role: u32, generation_id: u64 },
    RoleReply { role: u32, generation_id: u64 },
    GetAsyncRequest,
    GetAsyncReply(AsyncConfig),
    SetAsync(AsyncConfig),
    MeterMod(MeterMod),
}

/// `OFPMPF_REPLY_MORE` / `OFPMPF_REQ_MORE`.
pub const MULTIPART_MORE: u16 = 1;

impl Message {
    /// The `ofp_type` of this message.
    pub fn msg_type(&self) -> u8 {
        use msg_type as t;
        match self {
            Message::Hello(_) => t::HELLO,
            Message::Error { .. } | Message::ErrorExperimenter { .. } => t::ERROR,
            Message::EchoRequest(_) => t::ECHO_REQUEST,
            Message::EchoReply(_) => t::ECHO_REPLY,
            Message::Experimenter { .. } => t::EXPERIMENTER,
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
            Message::GroupMod(_) => t::GROUP_MOD,
            Message::PortMod(_) => t::PORT_MOD,
            Message::TableMod { .. } => t::TABLE_MOD,
            Message::MultipartRequest { .. } => t::MULTIPART_REQUEST,
            Message::MultipartReply { .. } => t::MULTIPART_REPLY,
            Message::BarrierRequest => t::BARRIER_REQUEST,
            Message::BarrierReply => t::BARRIER_REPLY,
            Message::QueueGetConfigRequest { .. } => t::QUEUE_GET_CONFIG_REQUEST,
            Message::QueueGetConfigReply { .. } => t::QUEUE_GET_CONFIG_REPLY,
            Message::RoleRequest { .. } => t::ROLE_REQUEST,
            Message::RoleReply { .. } => t::ROLE_REPLY,
            Message::GetAsyncRequest => t::GET_ASYNC_REQUEST,
            Message::GetAsyncReply(_) => t::GET_ASYNC_REPLY,
            Message::SetAsync(_) => t::SET_ASYNC,
            Message::MeterMod(_) => t::METER_MOD,
        }
    }

    /// Appends the whole message, header included, to `out`.
    pub fn emit(&self, xid: u32, out: &mut Vec<u8>) -> Result<(), WireError> {
        crate::wire::emit_message(OFP13, self.msg_type(), xid, out, |o| self.emit_body(o))
    }

    /// The message as a fresh buffer.
    pub fn to_bytes(&self, xid: u32) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(64);
        self.emit(xid, &mut out)?;
        Ok(out)
    }

    fn emit_body(&self, out: &mut Vec<u8>) {
        match self {
            Message::Hello(elems) => {
                for e in elems {
                    let start = out.len();
                    match e {
                        HelloElem::VersionBitmap(words) => {
                            out.put_u16(HELLO_ELEM_VERSIONBITMAP);
                            out.put_u16(0);
                            for w in words {
                                out.put_u32(*w);
                            }
                        }
                        HelloElem::Unknown { elem_type, data } => {
                            out.put_u16(*elem_type);
                            out.put_u16(0);
                            out.extend_from_slice(data);
                        }
                    }
                    let len = len_since(out, start);
                    out.patch_u16(start + 2, len);
                    out.pad8_from(start);
                }
            }
            Message::Error { err_type, code, data } => {
                out.put_u16(*err_type);
                out.put_u16(*code);
                out.extend_from_slice(data);
            }
            Message::ErrorExperimenter { exp_type, experimenter, data } => {
                out.put_u16(error_type::EXPERIMENTER);
                out.put_u16(*exp_type);
                out.put_u32(*experimenter);
                out.extend_from_slice(data);
            }
            Message::EchoRequest(d) | Message::EchoReply(d) => out.extend_from_slice(d),
            Message::Experimenter { experimenter, exp_type, data } => {
                out.put_u32(*experimenter);
                out.put_u32(*exp_type);
                out.extend_from_slice(data);
            }
            Message::FeaturesRequest
            | Message::GetConfigRequest
            | Message::BarrierRequest
            | Message::BarrierReply
            | Message::GetAsyncRequest => {}
            Message::FeaturesReply(f) => {
                out.put_u64(f.datapath_id);
                out.put_u32(f.n_buffers);
                out.put_u8(f.n_tables);
                out.put_u8(f.auxiliary_id);
                out.put_zeros(2);
                out.put_u32(f.capabilities);
                out.put_u32(f.reserved);
            }
            Message::GetConfigReply { flags, miss_send_len } | Message::SetConfig { flags, miss_send_len } => {
                out.put_u16(*flags);
                out.put_u16(*miss_send_len);
            }
            Message::PacketIn(p) => {
                out.put_u32(p.buffer_id);
                out.put_u16(p.total_len);
                out.put_u8(p.reason);
                out.put_u8(p.table_id);
                out.put_u64(p.cookie);
                p.match_.emit(out);
                out.put_zeros(2);
                out.extend_from_slice(&p.data);
            }
            Message::FlowRemoved(f) => {
                out.put_u64(f.cookie);
                out.put_u16(f.priority);
                out.put_u8(f.reason);
                out.put_u8(f.table_id);
                out.put_u32(f.duration_sec);
                out.put_u32(f.duration_nsec);
                out.put_u16(f.idle_timeout);
                out.put_u16(f.hard_timeout);
                out.put_u64(f.packet_count);
                out.put_u64(f.byte_count);
                f.match_.emit(out);
            }
            Message::PortStatus(p) => p.emit(out),
            Message::PacketOut(p) => {
                out.put_u32(p.buffer_id);
                out.put_u32(p.in_port);
                let len_at = out.len();
                out.put_u16(0);
                out.put_zeros(6);
                let actions_start = out.len();
                action::emit_actions(&p.actions, out);
                let alen = len_since(out, actions_start);
                out.patch_u16(len_at, alen);
                out.extend_from_slice(&p.data);
            }
            Message::FlowMod(f) => emit_flow_mod(f, out),
            Message::GroupMod(g) => g.emit(out),
            Message::PortMod(p) => p.emit(out),
            Message::TableMod { table_id, config } => {
                out.put_u8(*table_id);
                out.put_zeros(3);
                out.put_u32(*config);
            }
            Message::MultipartRequest { flags, body } => {
                out.put_u16(body.multipart_type());
                out.put_u16(*flags);
                out.put_zeros(4);
                body.emit(out);
            }
            Message::MultipartReply { flags, body } => {
                out.put_u16(body.multipart_type());
                out.put_u16(*flags);
                out.put_zeros(4);
                body.emit(out);
            }
            Message::QueueGetConfigRequest { port } => {
                out.put_u32(*port);
                out.put_zeros(4);
            }
            Message::QueueGetConfigReply { port, queues } => {
                out.put_u32(*port);
                out.put_zeros(4);
                for q in queues {
                    q.emit(out);
                }
            }
            Message::RoleRequest { role, generation_id } | Message::RoleReply { role, generation_id } => {
                out.put_u32(*role);
                out.put_zeros(4);
                out.put_u64(*generation_id);
            }
            Message::GetAsyncReply(a) | Message::SetAsync(a) => {
                for m in a.packet_in_mask.iter().chain(&a.port_status_mask).chain(&a.flow_removed_mask) {
                    out.put_u32(*m);
                }
            }
            Message::MeterMod(m) => m.emit(out),
        }
    }
}

fn emit_flow_mod(f: &FlowMod, out: &mut Vec<u8>) {
    out.put_u64(f.cookie);
    out.put_u64(f.cookie_mask);
    out.put_u8(f.table_id);
    out.put_u8(f.command);
    out.put_u16(f.idle_timeout);
    out.put_u16(f.hard_timeout);
    out.put_u16(f.priority);
    out.put_u32(f.buffer_id);
    out.put_u32(f.out_port);
    out.put_u32(f.out_group);
    out.put_u16(f.flags);
    out.put_zeros(2);
    f.match_.emit(out);
    action::emit_instructions(&f.instructions, out);
}

/// Parses one complete OpenFlow 1.3 frame (header included, exactly `length` bytes).
pub fn parse(frame: &[u8]) -> Result<(Header, Message), WireError> {
    let (body, header) = finish(Header::parse(frame))?;
    if header.version != OFP13 {
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

fn parse_async(b: &[u8]) -> PResult<'_, AsyncConfig> {
    let mut m = [0u32; 6];
    let mut b = b;
    for slot in &mut m {
        let (r, v) = be_u32(b)?;
        *slot = v;
        b = r;
    }
    Ok((
        b,
        AsyncConfig { packet_in_mask: [m[0], m[1]], port_status_mask: [m[2], m[3]], flow_removed_mask: [m[4], m[5]] },
    ))
}

fn parse_hello_elems(mut b: &[u8]) -> Result<Vec<HelloElem>, nom::Err<WireError>> {
    let mut elems = Vec::new();
    while b.len() >= 4 {
        let (_, elem_type) = be_u16(b)?;
        let (_, len) = be_u16(&b[2..])?;
        let len = usize::from(len);
        if len < 4 {
            return WireError::new(error_type::HELLO_FAILED, 0, "hello element shorter than 4").fail();
        }
        let (_, whole) = take_n(b, len, "hello element")?;
        let data = &whole[4..];
        // A bitmap that is not whole 32-bit words is kept as it came, so it re-emits unchanged.
        elems.push(if elem_type == HELLO_ELEM_VERSIONBITMAP && data.len() % 4 == 0 {
            HelloElem::VersionBitmap(
                data.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect(),
            )
        } else {
            HelloElem::Unknown { elem_type, data: data.to_vec() }
        });
        let padded = crate::wire::pad8(len).min(b.len());
        b = &b[padded..];
    }
    Ok(elems)
}

fn parse_body(ty: u8, b: &[u8]) -> Result<Message, nom::Err<WireError>> {
    use msg_type as t;
    let msg = match ty {
        t::HELLO => Message::Hello(parse_hello_elems(b)?),
        t::ERROR => {
            let (r, err_type) = be_u16(b)?;
            if err_type == error_type::EXPERIMENTER {
                let (r, exp_type) = be_u16(r)?;
                let (r, experimenter) = be_u32(r)?;
                Message::ErrorExperimenter { exp_type, experimenter, data: r.to_vec() }
            } else {
                let (r, code) = be_u16(r)?;
                Message::Error { err_type, code, data: r.to_vec() }
            }
        }
        t::ECHO_REQUEST => Message::EchoRequest(b.to_vec()),
        t::ECHO_REPLY => Message::EchoReply(b.to_vec()),
        t::EXPERIMENTER => {
            let (r, experimenter) = be_u32(b)?;
            let (r, exp_type) = be_u32(r)?;
            Message::Experimenter { experimenter, exp_type, data: r.to_vec() }
        }
        t::FEATURES_REQUEST => done(b, Message::FeaturesRequest)?,
        t::FEATURES_REPLY => {
            let (r, datapath_id) = be_u64(b)?;
            let (r, n_buffers) = be_u32(r)?;
            let (r, n_tables) = be_u8(r)?;
            let (r, auxiliary_id) = be_u8(r)?;
            let (r, ()) = skip(r, 2)?;
            let (r, capabilities) = be_u32(r)?;
            let (r, reserved) = be_u32(r)?;
            done(
                r,
                Message::FeaturesReply(SwitchFeatures {
                    datapath_id,
                    n_buffers,
                    n_tables,
                    auxiliary_id,
                    capabilities,
                    reserved,
                }),
            )?
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
            let (r, reason) = be_u8(r)?;
            let (r, table_id) = be_u8(r)?;
            let (r, cookie) = be_u64(r)?;
            let (r, match_) = Match::parse(r)?;
            let (r, ()) = skip(r, 2)?;
            Message::PacketIn(PacketIn { buffer_id, total_len, reason, table_id, cookie, match_, data: r.to_vec() })
        }
        t::FLOW_REMOVED => {
            let (r, cookie) = be_u64(b)?;
            let (r, priority) = be_u16(r)?;
            let (r, reason) = be_u8(r)?;
            let (r, table_id) = be_u8(r)?;
            let (r, duration_sec) = be_u32(r)?;
            let (r, duration_nsec) = be_u32(r)?;
            let (r, idle_timeout) = be_u16(r)?;
            let (r, hard_timeout) = be_u16(r)?;
            let (r, packet_count) = be_u64(r)?;
            let (r, byte_count) = be_u64(r)?;
            let (r, match_) = Match::parse(r)?;
            done(
                r,
                Message::FlowRemoved(FlowRemoved {
                    cookie,
                    priority,
                    reason,
                    table_id,
                    duration_sec,
                    duration_nsec,
                    idle_timeout,
                    hard_timeout,
                    packet_count,
                    byte_count,
                    match_,
                }),
            )?
        }
        t::PORT_STATUS => {
            let (r, ps) = PortStatus::parse(b)?;
            done(r, Message::PortStatus(ps))?
        }
        t::PACKET_OUT => {
            let (r, buffer_id) = be_u32(b)?;
            let (r, in_port) = be_u32(r)?;
            let (r, actions_len) = be_u16(r)?;
            let (r, ()) = skip(r, 6)?;
            let (data, actions) = take_n(r, usize::from(actions_len), "packet_out actions")?;
            let actions = action::parse_actions(actions)?;
            Message::PacketOut(PacketOut { buffer_id, in_port, actions, data: data.to_vec() })
        }
        t::FLOW_MOD => Message::FlowMod(parse_flow_mod(b)?),
        t::GROUP_MOD => Message::GroupMod(GroupMod::parse(b)?.1),
        t::PORT_MOD => {
            let (r, pm) = PortMod::parse(b)?;
            done(r, Message::PortMod(pm))?
        }
        t::TABLE_MOD => {
            let (r, table_id) = be_u8(b)?;
            let (r, ()) = skip(r, 3)?;
            let (r, config) = be_u32(r)?;
            done(r, Message::TableMod { table_id, config })?
        }
        t::MULTIPART_REQUEST | t::MULTIPART_REPLY => {
            let (r, mp_type) = be_u16(b)?;
            let (r, flags) = be_u16(r)?;
            let (r, ()) = skip(r, 4)?;
            if ty == t::MULTIPART_REQUEST {
                Message::MultipartRequest { flags, body: MultipartRequest::parse(mp_type, r)? }
            } else {
                Message::MultipartReply { flags, body: MultipartReply::parse(mp_type, r)? }
            }
        }
        t::BARRIER_REQUEST => done(b, Message::BarrierRequest)?,
        t::BARRIER_REPLY => done(b, Message::BarrierReply)?,
        t::QUEUE_GET_CONFIG_REQUEST => {
            let (r, port) = be_u32(b)?;
            let (r, ()) = skip(r, 4)?;
            done(r, Message::QueueGetConfigRequest { port })?
        }
        t::QUEUE_GET_CONFIG_REPLY => {
            let (r, port) = be_u32(b)?;
            let (r, ()) = skip(r, 4)?;
            let queues = crate::wire::many_to_end(r, PacketQueue::parse)?;
            Message::QueueGetConfigReply { port, queues }
        }
        t::ROLE_REQUEST | t::ROLE_REPLY => {
            let (r, role) = be_u32(b)?;
            let (r, ()) = skip(r, 4)?;
            let (r, generation_id) = be_u64(r)?;
            let m = if ty == t::ROLE_REQUEST {
                Message::RoleRequest { role, generation_id }
            } else {
                Message::RoleReply { role, generation_id }
            };
            done(r, m)?
        }
        t::GET_ASYNC_REQUEST => done(b, Message::GetAsyncRequest)?,
        t::GET_ASYNC_REPLY | t::SET_ASYNC => {
            let (r, a) = parse_async(b)?;
            done(r, if ty == t::SET_ASYNC { Message::SetAsync(a) } else { Message::GetAsyncReply(a) })?
        }
        t::METER_MOD => Message::MeterMod(MeterMod::parse(b)?.1),
        _ => return WireError::bad_type("unknown message type").fail(),
    };
    Ok(msg)
}

fn parse_flow_mod(b: &[u8]) -> Result<FlowMod, nom::Err<WireError>> {
    let (r, cookie) = be_u64(b)?;
    let (r, cookie_mask) = be_u64(r)?;
    let (r, table_id) = be_u8(r)?;
    let (r, command) = be_u8(r)?;
    let (r, idle_timeout) = be_u16(r)?;
    let (r, hard_timeout) = be_u16(r)?;
    let (r, priority) = be_u16(r)?;
    let (r, buffer_id) = be_u32(r)?;
    let (r, out_port) = be_u32(r)?;
    let (r, out_group) = be_u32(r)?;
    let (r, flags) = be_u16(r)?;
    let (r, ()) = skip(r, 2)?;
    let (r, match_) = Match::parse(r)?;
    let instructions = action::parse_instructions(r)?;
    Ok(FlowMod {
        cookie,
        cookie_mask,
        table_id,
        command,
        idle_timeout,
        hard_timeout,
        priority,
        buffer_id,
        out_port,
        out_group,
        flags,
        match_,
        instructions,
    })
}

/// An OFPT_ERROR answering `offending` (a complete frame we could not handle):
/// carries at least its first 64 bytes, as the spec asks.
pub fn error_for(err: &WireError, offending: &[u8]) -> Message {
    let n = offending.len().min(64);
    Message::Error { err_type: err.err_type, code: err.code, data: offending[..n].to_vec() }
}

/// Size of an empty message of this version: the common header.
pub const MIN_LEN: usize = HEADER_LEN;

#[cfg(test)]
mod tests {
    use super::*;

    static HELLO_BYTES: [u8; 16] = [4, 0, 0, 16, 0, 0, 0, 1, 0, 1, 0, 8, 0, 0, 0, 0x12];

    #[test]
    fn hello_parses() {
        let (h, m) = parse(&HELLO_BYTES).expect("parses");
        assert_eq!(h.xid, 1);
        assert_eq!(m, Message::Hello(vec![HelloElem::versions(&[1, 4])]));
    }

    #[test]
    fn hello_emits_same_bytes() {
        assert_eq!(
            Message::Hello(vec![HelloElem::versions(&[1, 4])]).to_bytes(1).expect("message fits in 64 KiB"),
            HELLO_BYTES
        );
    }

    #[test]
    fn negotiation_prefers_13_and_accepts_10() {
        assert_eq!(negotiate(4, &[HelloElem::versions(&[1, 4])], &[1, 4]), Some(4));
        assert_eq!(negotiate(1, &[], &[1, 4]), Some(1));
        assert_eq!(negotiate(6, &[HelloElem::versions(&[1, 6])], &[1, 4]), Some(1));
        assert_eq!(negotiate(6, &[HelloElem::versions(&[6])], &[1, 4]), None);
        assert_eq!(negotiate(5, &[], &[1, 4]), Some(4));
    }

    #[test]
    fn unknown_type_is_bad_type() {
        let e = parse(&[4, 99, 0, 8, 0, 0, 0, 0]).expect_err("type 99");
        assert_eq!((e.err_type, e.code), (1, 1));
    }

    #[test]
    fn flow_mod_round_trips() {
        let fm = FlowMod {
            priority: 10,
            match_: Match::new(vec![Oxm::in_port(1), Oxm::eth_dst([2, 0, 0, 0, 0, 1])]),
            instructions: vec![Instruction::ApplyActions(vec![Action::output(2)])],
            ..FlowMod::default()
        };
        let bytes = Message::FlowMod(fm.clone()).to_bytes(7).expect("message fits in 64 KiB");
        let (h, back) = parse(&bytes).expect("parses");
        assert_eq!(h.xid, 7);
        assert_eq!(back, Message::FlowMod(fm));
    }
}
