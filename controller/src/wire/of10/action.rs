//! OpenFlow 1.0 actions (`ofp_action_*`).
//!
//! Standard actions are typed. Nicira vendor actions keep their subtype and
//! body as an opaque, byte-identical payload; other vendors keep their whole body.

use nom::number::complete::{be_u16, be_u32, be_u8};

use super::bad_action;
use crate::wire::error::WireError;
use crate::wire::of13::port::fixed_str;
use crate::wire::{finish_tlv8, many_to_end, skip, split_tlv8, take_n, PResult, Put};

/// Action type numbers (`ofp_action_type`).
pub mod action_type {
    pub const OUTPUT: u16 = 0;
    pub const SET_VLAN_VID: u16 = 1;
    pub const SET_VLAN_PCP: u16 = 2;
    pub const STRIP_VLAN: u16 = 3;
    pub const SET_DL_SRC: u16 = 4;
    pub const SET_DL_DST: u16 = 5;
    pub const SET_NW_SRC: u16 = 6;
    pub const SET_NW_DST: u16 = 7;
    pub const SET_NW_TOS: u16 = 8;
    pub const SET_TP_SRC: u16 = 9;
    pub const SET_TP_DST: u16 = 10;
    pub const ENQUEUE: u16 = 11;
    pub const VENDOR: u16 = 0xffff;
}

/// Nicira's vendor id.
pub const NX_VENDOR_ID: u32 = 0x0000_2320;

/// One action. Field names follow Ryu's `OFPAction*` classes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    /// Output to `port`; `max_len` bytes go to the controller when `port` is `OFPP_CONTROLLER`.
    Output {
        port: u16,
        max_len: u16,
    },
    SetVlanVid {
        vlan_vid: u16,
    },
    SetVlanPcp {
        vlan_pcp: u8,
    },
    StripVlan,
    SetDlSrc {
        dl_addr: [u8; 6],
    },
    SetDlDst {
        dl_addr: [u8; 6],
    },
    SetNwSrc {
        nw_addr: u32,
    },
    SetNwDst {
        nw_addr: u32,
    },
    SetNwTos {
        tos: u8,
    },
    SetTpSrc {
        tp: u16,
    },
    SetTpDst {
        tp: u16,
    },
    Enqueue {
        port: u16,
        queue_id: u32,
    },
    /// A Nicira extension action: `subtype` and the bytes after it, kept as they came.
    Nicira {
        subtype: u16,
        body: Vec<u8>,
    },
    /// Any other vendor action: the bytes after the vendor id (emit pads the action to 8 bytes).
    Vendor {
        vendor: u32,
        data: Vec<u8>,
    },
}

impl Action {
    /// Output to `port`, sending whole packets (up to 65535 bytes) when `port` is the controller.
    pub fn output(port: u16) -> Self {
        Action::Output { port, max_len: 0xffff }
    }

    /// The action type on the wire.
    pub fn action_type(&self) -> u16 {
        use action_type as t;
        match self {
            Action::Output { .. } => t::OUTPUT,
            Action::SetVlanVid { .. } => t::SET_VLAN_VID,
            Action::SetVlanPcp { .. } => t::SET_VLAN_PCP,
            Action::StripVlan => t::STRIP_VLAN,
            Action::SetDlSrc { .. } => t::SET_DL_SRC,
            Action::SetDlDst { .. } => t::SET_DL_DST,
            Action::SetNwSrc { .. } => t::SET_NW_SRC,
            Action::SetNwDst { .. } => t::SET_NW_DST,
            Action::SetNwTos { .. } => t::SET_NW_TOS,
            Action::SetTpSrc { .. } => t::SET_TP_SRC,
            Action::SetTpDst { .. } => t::SET_TP_DST,
            Action::Enqueue { .. } => t::ENQUEUE,
            Action::Nicira { .. } | Action::Vendor { .. } => t::VENDOR,
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
                exact(8)?;
                let (b, port) = be_u16(body)?;
                let (_, max_len) = be_u16(b)?;
                Action::Output { port, max_len }
            }
            t::SET_VLAN_VID => {
                exact(8)?;
                Action::SetVlanVid { vlan_vid: be_u16(body)?.1 }
            }
            t::SET_VLAN_PCP => {
                exact(8)?;
                Action::SetVlanPcp { vlan_pcp: be_u8(body)?.1 }
            }
            t::STRIP_VLAN => {
                exact(8)?;
                Action::StripVlan
            }
            t::SET_DL_SRC | t::SET_DL_DST => {
                exact(16)?;
                let (_, addr) = take_n(body, 6, "dl_addr")?;
                let dl_addr = fixed_str(addr);
                if ty == t::SET_DL_SRC {
                    Action::SetDlSrc { dl_addr }
                } else {
                    Action::SetDlDst { dl_addr }
                }
            }
            t::SET_NW_SRC | t::SET_NW_DST => {
                exact(8)?;
                let (_, nw_addr) = be_u32(body)?;
                if ty == t::SET_NW_SRC {
                    Action::SetNwSrc { nw_addr }
                } else {
                    Action::SetNwDst { nw_addr }
                }
            }
            t::SET_NW_TOS => {
                exact(8)?;
                Action::SetNwTos { tos: be_u8(body)?.1 }
            }
            t::SET_TP_SRC | t::SET_TP_DST => {
                exact(8)?;
                let (_, tp) = be_u16(body)?;
                if ty == t::SET_TP_SRC {
                    Action::SetTpSrc { tp }
                } else {
                    Action::SetTpDst { tp }
                }
            }
            t::ENQUEUE => {
                exact(16)?;
                let (b, port) = be_u16(body)?;
                let (b, ()) = skip(b, 6)?;
                let (_, queue_id) = be_u32(b)?;
                Action::Enqueue { port, queue_id }
            }
            t::VENDOR => {
                let (b, vendor) = be_u32(body)?;
                if vendor == NX_VENDOR_ID && b.len() >= 2 {
                    let (b, subtype) = be_u16(b)?;
                    Action::Nicira { subtype, body: b.to_vec() }
                } else {
                    Action::Vendor { vendor, data: b.to_vec() }
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
                out.put_u16(*port);
                out.put_u16(*max_len);
            }
            Action::SetVlanVid { vlan_vid: v } | Action::SetTpSrc { tp: v } | Action::SetTpDst { tp: v } => {
                out.put_u16(*v);
                out.put_zeros(2);
            }
            Action::SetVlanPcp { vlan_pcp: v } | Action::SetNwTos { tos: v } => {
                out.put_u8(*v);
                out.put_zeros(3);
            }
            Action::StripVlan => out.put_zeros(4),
            Action::SetDlSrc { dl_addr } | Action::SetDlDst { dl_addr } => {
                out.extend_from_slice(dl_addr);
                out.put_zeros(6);
            }
            Action::SetNwSrc { nw_addr } | Action::SetNwDst { nw_addr } => out.put_u32(*nw_addr),
            Action::Enqueue { port, queue_id } => {
                out.put_u16(*port);
                out.put_zeros(6);
                out.put_u32(*queue_id);
            }
            Action::Nicira { subtype, body } => {
                out.put_u32(NX_VENDOR_ID);
                out.put_u16(*subtype);
                out.extend_from_slice(body);
            }
            Action::Vendor { vendor, data } => {
                out.put_u32(*vendor);
                out.extend_from_slice(data);
            }
        }
        finish_tlv8(out, start);
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

#[cfg(test)]
mod tests {
    use super::*;

    static OUTPUT_BYTES: [u8; 8] = [0, 0, 0, 8, 0, 6, 0xff, 0xff];
    static SET_DL_DST_BYTES: [u8; 16] = [0, 5, 0, 16, 2, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0];
    static ENQUEUE_BYTES: [u8; 16] = [0, 11, 0, 16, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    /// `NXActionDecTtl` from ovs-ofctl: Nicira subtype 18, six zero bytes.
    static NX_DEC_TTL_BYTES: [u8; 16] = [0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 18, 0, 0, 0, 0, 0, 0];

    fn round_trip(bytes: &[u8], want: Action) {
        let (rest, a) = Action::parse(bytes).expect("parses");
        assert!(rest.is_empty());
        assert_eq!(a, want);
        let mut out = Vec::new();
        a.emit(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn output_round_trips() {
        round_trip(&OUTPUT_BYTES, Action::output(6));
    }

    #[test]
    fn set_dl_dst_round_trips() {
        round_trip(&SET_DL_DST_BYTES, Action::SetDlDst { dl_addr: [2, 0, 0, 0, 0, 9] });
    }

    #[test]
    fn enqueue_round_trips() {
        round_trip(&ENQUEUE_BYTES, Action::Enqueue { port: 3, queue_id: 7 });
    }

    #[test]
    fn nicira_round_trips_opaque() {
        round_trip(&NX_DEC_TTL_BYTES, Action::Nicira { subtype: 18, body: vec![0; 6] });
    }

    #[test]
    fn every_small_action_round_trips() {
        let all = vec![
            Action::SetVlanVid { vlan_vid: 10 },
            Action::SetVlanPcp { vlan_pcp: 3 },
            Action::StripVlan,
            Action::SetDlSrc { dl_addr: [1, 2, 3, 4, 5, 6] },
            Action::SetNwSrc { nw_addr: 0x0a00_0001 },
            Action::SetNwDst { nw_addr: 0x0a00_0002 },
            Action::SetNwTos { tos: 0x10 },
            Action::SetTpSrc { tp: 80 },
            Action::SetTpDst { tp: 443 },
            Action::Vendor { vendor: 0x00ab_cdef, data: vec![1, 2, 3, 4, 5, 6, 7, 8] },
        ];
        let mut out = Vec::new();
        emit_actions(&all, &mut out);
        assert_eq!(out.len() % 8, 0);
        assert_eq!(parse_actions(&out).expect("parses"), all);
    }

    #[test]
    fn unknown_action_type_is_bad_type() {
        let bytes = [0, 99, 0, 8, 0, 0, 0, 0];
        let Err(nom::Err::Error(e)) = Action::parse(&bytes) else { panic!("accepted type 99") };
        assert_eq!((e.err_type, e.code), (2, bad_action::BAD_TYPE));
    }

    #[test]
    fn wrong_action_length_is_bad_len() {
        for bytes in [&[0u8, 0, 0, 12, 0, 6, 0, 0, 0, 0, 0, 0][..], &[0, 0, 0, 16, 0, 6, 0, 0], &[0, 0, 0, 0]] {
            let Err(nom::Err::Error(e)) = Action::parse(bytes) else { panic!("accepted {bytes:?}") };
            assert_eq!((e.err_type, e.code), (2, bad_action::BAD_LEN));
        }
        // OUTPUT is exactly 8 bytes in OpenFlow 1.0.
        let Err(nom::Err::Error(e)) = Action::parse(&[0, 0, 0, 16, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) else {
            panic!("accepted a 16-byte output")
        };
        assert_eq!((e.err_type, e.code), (2, bad_action::BAD_LEN));
    }
}
