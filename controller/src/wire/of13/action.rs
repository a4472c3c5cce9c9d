//! Actions (`ofp_action_*`).
//!
//! Standard actions are typed. Nicira actions keep their subtype and body as an
//! opaque, byte-identical payload; other experimenters keep their whole body.

use nom::number::complete::{be_u16, be_u32, be_u8};

use super::oxm::Oxm;
use crate::wire::error::WireError;
use crate::wire::{finish_tlv8, many_to_end, skip, split_tlv8, PResult, Put};

/// Action type numbers (`ofp_action_type`).
pub mod action_type {
    pub const OUTPUT: u16 = 0;
    pub const COPY_TTL_OUT: u16 = 11;
    pub const COPY_TTL_IN: u16 = 12;
    pub const SET_MPLS_TTL: u16 = 15;
    pub const DEC_MPLS_TTL: u16 = 16;
    pub const PUSH_VLAN: u16 = 17;
    pub const POP_VLAN: u16 = 18;
    pub const PUSH_MPLS: u16 = 19;
    pub const POP_MPLS: u16 = 20;
    pub const SET_QUEUE: u16 = 21;
    pub const GROUP: u16 = 22;
    pub const SET_NW_TTL: u16 = 23;
    pub const DEC_NW_TTL: u16 = 24;
    pub const SET_FIELD: u16 = 25;
    pub const PUSH_PBB: u16 = 26;
    pub const POP_PBB: u16 = 27;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// Codes of `OFPET_BAD_ACTION`.
pub mod bad_action {
    pub const BAD_TYPE: u16 = 0;
    pub const BAD_LEN: u16 = 1;
}

/// Nicira's experimenter id.
pub const NX_EXPERIMENTER: u32 = 0x0000_2320;

/// Reserved port numbers (`ofp_port_no`).
pub mod port_no {
    pub const MAX: u32 = 0xffff_ff00;
    pub const IN_PORT: u32 = 0xffff_fff8;
    pub const TABLE: u32 = 0xffff_fff9;
    pub const NORMAL: u32 = 0xffff_fffa;
    pub const FLOOD: u32 = 0xffff_fffb;
    pub const ALL: u32 = 0xffff_fffc;
    pub const CONTROLLER: u32 = 0xffff_fffd;
    pub const LOCAL: u32 = 0xffff_fffe;
    pub const ANY: u32 = 0xffff_ffff;
}

/// `OFPCML_NO_BUFFER`: send the whole packet to the controller.
pub const CML_NO_BUFFER: u16 = 0xffff;

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    Output {
        port: u32,
        max_len: u16,
    },
    CopyTtlOut,
    CopyTtlIn,
    SetMplsTtl(u8),
    DecMplsTtl,
    PushVlan(u16),
    PopVlan,
    PushMpls(u16),
    PopMpls(u16),
    SetQueue(u32),
    Group(u32),
    SetNwTtl(u8),
    DecNwTtl,
    SetField(Oxm),
    PushPbb(u16),
    PopPbb,
    /// A Nicira extension action: `subtype` and the bytes after it, kept as they came.
    Nicira {
        subtype: u16,
        body: Vec<u8>,
    },
    /// Any other experimenter action: the bytes after the experimenter id.
    Experimenter {
        experimenter: u32,
        data: Vec<u8>,
    },
}

impl Action {
    /// Output to `port`, sending whole packets when `port` is the controller.
    pub fn output(port: u32) -> Self {
        Action::Output { port, max_len: CML_NO_BUFFER }
    }

    /// The action type on the wire.
    pub fn action_type(&self) -> u16 {
        use action_type as t;
        match self {
            Action::Output { .. } => t::OUTPUT,
            Action::CopyTtlOut => t::COPY_TTL_OUT,
            Action::CopyTtlIn => t::COPY_TTL_IN,
            Action::SetMplsTtl(_) => t::SET_MPLS_TTL,
            Action::DecMplsTtl => t::DEC_MPLS_TTL,
            Action::PushVlan(_) => t::PUSH_VLAN,
            Action::PopVlan => t::POP_VLAN,
            Action::PushMpls(_) => t::PUSH_MPLS,
            Action::PopMpls(_) => t::POP_MPLS,
            Action::SetQueue(_) => t::SET_QUEUE,
            Action::Group(_) => t::GROUP,
            Action::SetNwTtl(_) => t::SET_NW_TTL,
            Action::DecNwTtl => t::DEC_NW_TTL,
            Action::SetField(_) => t::SET_FIELD,
            Action::PushPbb(_) => t::PUSH_PBB,
            Action::PopPbb => t::POP_PBB,
            Action::Nicira { .. } | Action::Experimenter { .. } => t::EXPERIMENTER,
        }
    }

    pub fn parse(input: &[u8]) -> PResult<'_, Action> {
        use action_type as t;
        let bad_len = WireError::bad_action(bad_action::BAD_LEN, "action length not a multiple of 8 within bounds");
        let (rest, (ty, whole)) = split_tlv8(input, bad_len)?;
        let len = whole.len();
        let body = &whole[4..];
        let exact = |want: usize| -> Result<(), nom::Err<WireError>> {
            if len != want {
                return WireError::bad_action(bad_action::BAD_LEN, "action of wrong length for its type").fail();
            }
            Ok(())
        };
        let action = match ty {
            t::OUTPUT => {
                exact(16)?;
                let (b, port) = be_u32(body)?;
                let (_, max_len) = be_u16(b)?;
                Action::Output { port, max_len }
            }
            t::COPY_TTL_OUT => exact(8).map(|_| Action::CopyTtlOut)?,
            t::COPY_TTL_IN => exact(8).map(|_| Action::CopyTtlIn)?,
            t::DEC_MPLS_TTL => exact(8).map(|_| Action::DecMplsTtl)?,
            t::POP_VLAN => exact(8).map(|_| Action::PopVlan)?,
            t::DEC_NW_TTL => exact(8).map(|_| Action::DecNwTtl)?,
            t::POP_PBB => exact(8).map(|_| Action::PopPbb)?,
            t::SET_MPLS_TTL | t::SET_NW_TTL => {
                exact(8)?;
                let (_, ttl) = be_u8(body)?;
                if ty == t::SET_MPLS_TTL {
                    Action::SetMplsTtl(ttl)
                } else {
                    Action::SetNwTtl(ttl)
                }
            }
            t::PUSH_VLAN | t::PUSH_MPLS | t::POP_MPLS | t::PUSH_PBB => {
                exact(8)?;
                let (_, ethertype) = be_u16(body)?;
                match ty {
                    t::PUSH_VLAN => Action::PushVlan(ethertype),
                    t::PUSH_MPLS => Action::PushMpls(ethertype),
                    t::POP_MPLS => Action::PopMpls(ethertype),
                    _ => Action::PushPbb(ethertype),
                }
            }
            t::SET_QUEUE | t::GROUP => {
                exact(8)?;
                let (_, v) = be_u32(body)?;
                if ty == t::SET_QUEUE {
                    Action::SetQueue(v)
                } else {
                    Action::Group(v)
                }
            }
            t::SET_FIELD => {
                let (_, oxm) = Oxm::parse(body)?;
                if crate::wire::pad8(4 + oxm.wire_len()) != len {
                    return WireError::bad_action(bad_action::BAD_LEN, "set_field length does not fit its field")
                        .fail();
                }
                Action::SetField(oxm)
            }
            t::EXPERIMENTER => {
                let (b, experimenter) = be_u32(body)?;
                if experimenter == NX_EXPERIMENTER && b.len() >= 2 {
                    let (b, subtype) = be_u16(b)?;
                    Action::Nicira { subtype, body: b.to_vec() }
                } else {
                    Action::Experimenter { experimenter, data: b.to_vec() }
                }
            }
            _ => return WireError::bad_action(bad_action::BAD_TYPE, "unknown action type").fail(),
        };
        Ok((rest, action))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(self.action_type());
        out.put_u16(0);
        match self {
            Action::Output { port, max_len } => {
                out.put_u32(*port);
                out.put_u16(*max_len);
                out.put_zeros(6);
            }
            Action::CopyTtlOut
            | Action::CopyTtlIn
            | Action::DecMplsTtl
            | Action::PopVlan
            | Action::DecNwTtl
            | Action::PopPbb => out.put_zeros(4),
            Action::SetMplsTtl(ttl) | Action::SetNwTtl(ttl) => {
                out.put_u8(*ttl);
                out.put_zeros(3);
            }
            Action::PushVlan(e) | Action::PushMpls(e) | Action::PopMpls(e) | Action::PushPbb(e) => {
                out.put_u16(*e);
                out.put_zeros(2);
            }
            Action::SetQueue(v) | Action::Group(v) => out.put_u32(*v),
            Action::SetField(oxm) => oxm.emit(out),
            Action::Nicira { subtype, body } => {
                out.put_u32(NX_EXPERIMENTER);
                out.put_u16(*subtype);
                out.extend_from_slice(body);
            }
            Action::Experimenter { experimenter, data } => {
                out.put_u32(*experimenter);
                out.extend_from_slice(data);
            }
        }
        finish_tlv8(out, start);
    }
}

impl core::fmt::Display for Action {
    /// ovs-ofctl-like text: `output:2`, `push_vlan:0x8100`, `set_field:vlan_vid=4097`, `nicira(35)`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Action::Output { port, .. } => match *port {
                port_no::CONTROLLER => write!(f, "output:controller"),
                port_no::FLOOD => write!(f, "output:flood"),
                port_no::ALL => write!(f, "output:all"),
                port_no::IN_PORT => write!(f, "output:in_port"),
                port_no::LOCAL => write!(f, "output:local"),
                port_no::NORMAL => write!(f, "output:normal"),
                p => write!(f, "output:{p}"),
            },
            Action::CopyTtlOut => write!(f, "copy_ttl_out"),
            Action::CopyTtlIn => write!(f, "copy_ttl_in"),
            Action::SetMplsTtl(t) => write!(f, "set_mpls_ttl:{t}"),
            Action::DecMplsTtl => write!(f, "dec_mpls_ttl"),
            Action::PushVlan(e) => write!(f, "push_vlan:{e:#06x}"),
            Action::PopVlan => write!(f, "pop_vlan"),
            Action::PushMpls(e) => write!(f, "push_mpls:{e:#06x}"),
            Action::PopMpls(e) => write!(f, "pop_mpls:{e:#06x}"),
            Action::SetQueue(q) => write!(f, "set_queue:{q}"),
            Action::Group(g) => write!(f, "group:{g}"),
            Action::SetNwTtl(t) => write!(f, "set_nw_ttl:{t}"),
            Action::DecNwTtl => write!(f, "dec_nw_ttl"),
            Action::SetField(o) => write!(f, "set_field:{o}"),
            Action::PushPbb(e) => write!(f, "push_pbb:{e:#06x}"),
            Action::PopPbb => write!(f, "pop_pbb"),
            Action::Nicira { subtype, .. } => write!(f, "nicira({subtype})"),
            Action::Experimenter { experimenter, .. } => write!(f, "experimenter({experimenter:#x})"),
        }
    }
}

impl core::fmt::Display for Instruction {
    /// `goto_table:1`, `apply_actions(output:2,pop_vlan)`, `write_metadata:0x1/0xff`, `meter:3`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let list = |f: &mut core::fmt::Formatter<'_>, name: &str, a: &[Action]| {
            write!(f, "{name}(")?;
            for (i, x) in a.iter().enumerate() {
                write!(f, "{}{x}", if i > 0 { "," } else { "" })?;
            }
            write!(f, ")")
        };
        match self {
            Instruction::GotoTable(t) => write!(f, "goto_table:{t}"),
            Instruction::WriteMetadata { metadata, mask } => write!(f, "write_metadata:{metadata:#x}/{mask:#x}"),
            Instruction::WriteActions(a) => list(f, "write_actions", a),
            Instruction::ApplyActions(a) => list(f, "apply_actions", a),
            Instruction::ClearActions => write!(f, "clear_actions"),
            Instruction::Meter(m) => write!(f, "meter:{m}"),
            Instruction::Experimenter { experimenter, .. } => write!(f, "experimenter({experimenter:#x})"),
        }
    }
}

/// Parses actions filling `input` exactly.
pub fn parse_actions(input: &[u8]) -> Result<Vec<Action>, nom::Err<WireError>> {
    many_to_end(input, Action::parse)
}

/// Emits a list of actions back to back.
pub fn emit_actions(actions: &[Action], out: &mut Vec<u8>) {
    for a in actions {
        a.emit(out);
    }
}

/// Instruction type numbers (`ofp_instruction_type`).
pub mod instruction_type {
    pub const GOTO_TABLE: u16 = 1;
    pub const WRITE_METADATA: u16 = 2;
    pub const WRITE_ACTIONS: u16 = 3;
    pub const APPLY_ACTIONS: u16 = 4;
    pub const CLEAR_ACTIONS: u16 = 5;
    pub const METER: u16 = 6;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// Codes of `OFPET_BAD_INSTRUCTION`.
pub mod bad_instruction {
    pub const UNKNOWN_INST: u16 = 0;
    pub const BAD_LEN: u16 = 7;
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Instruction {
    GotoTable(u8),
    WriteMetadata { metadata: u64, mask: u64 },
    WriteActions(Vec<Action>),
    ApplyActions(Vec<Action>),
    ClearActions,
    Meter(u32),
    Experimenter { experimenter: u32, data: Vec<u8> },
}

impl Instruction {
    pub fn instruction_type(&self) -> u16 {
        use instruction_type as t;
        match self {
            Instruction::GotoTable(_) => t::GOTO_TABLE,
            Instruction::WriteMetadata { .. } => t::WRITE_METADATA,
            Instruction::WriteActions(_) => t::WRITE_ACTIONS,
            Instruction::ApplyActions(_) => t::APPLY_ACTIONS,
            Instruction::ClearActions => t::CLEAR_ACTIONS,
            Instruction::Meter(_) => t::METER,
            Instruction::Experimenter { .. } => t::EXPERIMENTER,
        }
    }

    pub fn parse(input: &[u8]) -> PResult<'_, Instruction> {
        use instruction_type as t;
        let bad_len = || WireError::bad_instruction(bad_instruction::BAD_LEN, "instruction length out of bounds");
        let (rest, (ty, whole)) = split_tlv8(input, bad_len())?;
        let len = whole.len();
        let body = &whole[4..];
        let exact = |want: usize| if len == want { Ok(()) } else { bad_len().fail() };
        let ins = match ty {
            t::GOTO_TABLE => {
                exact(8)?;
                Instruction::GotoTable(be_u8(body)?.1)
            }
            t::WRITE_METADATA => {
                exact(24)?;
                let (b, ()) = skip(body, 4)?;
                let (b, metadata) = nom::number::complete::be_u64(b)?;
                let (_, mask) = nom::number::complete::be_u64(b)?;
                Instruction::WriteMetadata { metadata, mask }
            }
            t::WRITE_ACTIONS | t::APPLY_ACTIONS => {
                let actions = parse_actions(&body[4..])?;
                if ty == t::WRITE_ACTIONS {
                    Instruction::WriteActions(actions)
                } else {
                    Instruction::ApplyActions(actions)
                }
            }
            t::CLEAR_ACTIONS => {
                exact(8)?;
                Instruction::ClearActions
            }
            t::METER => {
                exact(8)?;
                Instruction::Meter(be_u32(body)?.1)
            }
            t::EXPERIMENTER => {
                let (b, experimenter) = be_u32(body)?;
                Instruction::Experimenter { experimenter, data: b.to_vec() }
            }
            _ => return WireError::bad_instruction(bad_instruction::UNKNOWN_INST, "unknown instruction type").fail(),
        };
        Ok((rest, ins))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(self.instruction_type());
        out.put_u16(0);
        match self {
            Instruction::GotoTable(t) => {
                out.put_u8(*t);
                out.put_zeros(3);
            }
            Instruction::WriteMetadata { metadata, mask } => {
                out.put_zeros(4);
                out.put_u64(*metadata);
                out.put_u64(*mask);
            }
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
                out.put_zeros(4);
                emit_actions(a, out);
            }
            Instruction::ClearActions => out.put_zeros(4),
            Instruction::Meter(m) => out.put_u32(*m),
            Instruction::Experimenter { experimenter, data } => {
                out.put_u32(*experimenter);
                out.extend_from_slice(data);
            }
        }
        finish_tlv8(out, start);
    }
}

/// Parses instructions filling `input` exactly.
pub fn parse_instructions(input: &[u8]) -> Result<Vec<Instruction>, nom::Err<WireError>> {
    many_to_end(input, Instruction::parse)
}

/// Emits instructions back to back.
pub fn emit_instructions(ins: &[Instruction], out: &mut Vec<u8>) {
    for i in ins {
        i.emit(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static OUTPUT_BYTES: [u8; 16] = [0, 0, 0, 16, 0, 0, 0, 6, 0xff, 0xff, 0, 0, 0, 0, 0, 0];

    #[test]
    fn output_parses() {
        let (rest, a) = Action::parse(&OUTPUT_BYTES).expect("parses");
        assert!(rest.is_empty());
        assert_eq!(a, Action::output(6));
    }

    #[test]
    fn output_emits_same_bytes() {
        let mut out = Vec::new();
        Action::output(6).emit(&mut out);
        assert_eq!(out, OUTPUT_BYTES);
    }

    #[test]
    fn unknown_action_type_is_bad_type() {
        let bytes = [0, 99, 0, 8, 0, 0, 0, 0];
        let Err(nom::Err::Error(e)) = Action::parse(&bytes) else { panic!("accepted type 99") };
        assert_eq!((e.err_type, e.code), (2, bad_action::BAD_TYPE));
    }

    #[test]
    fn action_length_not_multiple_of_8_is_bad_len() {
        let bytes = [0, 0, 0, 12, 0, 0, 0, 6, 0, 0, 0, 0];
        let Err(nom::Err::Error(e)) = Action::parse(&bytes) else { panic!("accepted length 12") };
        assert_eq!((e.err_type, e.code), (2, bad_action::BAD_LEN));
    }

    #[test]
    fn instructions_read_like_ovs_ofctl() {
        let ins = Instruction::ApplyActions(vec![Action::PushVlan(0x8100), Action::output(3)]);
        assert_eq!(ins.to_string(), "apply_actions(push_vlan:0x8100,output:3)");
    }

    #[test]
    fn apply_actions_round_trips() {
        let ins = Instruction::ApplyActions(vec![Action::PushVlan(0x8100), Action::output(3)]);
        let mut out = Vec::new();
        ins.emit(&mut out);
        assert_eq!(out.len(), 8 + 8 + 16);
        let (rest, back) = Instruction::parse(&out).expect("parses");
        assert!(rest.is_empty());
        assert_eq!(back, ins);
    }
}
