//! The OpenFlow 1.0 flow match (`ofp_match`, fixed 40 bytes).

use nom::number::complete::{be_u16, be_u32, be_u8};

use crate::wire::of13::port::fixed_str;
use crate::wire::{skip, take_n, PResult, Put};

/// Length of `ofp_match` on the wire.
pub const MATCH_LEN: usize = 40;

/// Switch input port.
pub const OFPFW_IN_PORT: u32 = 1 << 0;
/// VLAN id.
pub const OFPFW_DL_VLAN: u32 = 1 << 1;
/// Ethernet source address.
pub const OFPFW_DL_SRC: u32 = 1 << 2;
/// Ethernet destination address.
pub const OFPFW_DL_DST: u32 = 1 << 3;
/// Ethernet frame type.
pub const OFPFW_DL_TYPE: u32 = 1 << 4;
/// IP protocol.
pub const OFPFW_NW_PROTO: u32 = 1 << 5;
/// TCP/UDP source port.
pub const OFPFW_TP_SRC: u32 = 1 << 6;
/// TCP/UDP destination port.
pub const OFPFW_TP_DST: u32 = 1 << 7;
/// Shift of the 6-bit count of wildcarded low bits of the IP source address.
pub const OFPFW_NW_SRC_SHIFT: u32 = 8;
pub const OFPFW_NW_SRC_BITS: u32 = 6;
pub const OFPFW_NW_SRC_MASK: u32 = ((1 << OFPFW_NW_SRC_BITS) - 1) << OFPFW_NW_SRC_SHIFT;
/// The whole IP source address wildcarded.
pub const OFPFW_NW_SRC_ALL: u32 = 32 << OFPFW_NW_SRC_SHIFT;
/// Shift of the 6-bit count of wildcarded low bits of the IP destination address.
pub const OFPFW_NW_DST_SHIFT: u32 = 14;
pub const OFPFW_NW_DST_BITS: u32 = 6;
pub const OFPFW_NW_DST_MASK: u32 = ((1 << OFPFW_NW_DST_BITS) - 1) << OFPFW_NW_DST_SHIFT;
/// The whole IP destination address wildcarded.
pub const OFPFW_NW_DST_ALL: u32 = 32 << OFPFW_NW_DST_SHIFT;
/// VLAN priority.
pub const OFPFW_DL_VLAN_PCP: u32 = 1 << 20;
/// IP ToS (DSCP field, 6 bits).
pub const OFPFW_NW_TOS: u32 = 1 << 21;
/// Every field wildcarded.
pub const OFPFW_ALL: u32 = (1 << 22) - 1;

/// `ofp_match`. Field names follow the specification (and Ryu's JSON).
///
/// `Default` is the match-everything wildcard ([`Match::all`]), not all zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Match {
    pub wildcards: u32,
    pub in_port: u16,
    pub dl_src: [u8; 6],
    pub dl_dst: [u8; 6],
    pub dl_vlan: u16,
    pub dl_vlan_pcp: u8,
    pub dl_type: u16,
    pub nw_tos: u8,
    pub nw_proto: u8,
    pub nw_src: u32,
    pub nw_dst: u32,
    pub tp_src: u16,
    pub tp_dst: u16,
}

impl Default for Match {
    fn default() -> Self {
        Match::all()
    }
}

impl Match {
    /// Matches every packet: all fields wildcarded, values zero.
    pub const fn all() -> Self {
        Match {
            wildcards: OFPFW_ALL,
            in_port: 0,
            dl_src: [0; 6],
            dl_dst: [0; 6],
            dl_vlan: 0,
            dl_vlan_pcp: 0,
            dl_type: 0,
            nw_tos: 0,
            nw_proto: 0,
            nw_src: 0,
            nw_dst: 0,
            tp_src: 0,
            tp_dst: 0,
        }
    }

    /// Exact on input port and Ethernet destination, everything else wildcarded.
    pub const fn in_port_dl_dst(in_port: u16, dl_dst: [u8; 6]) -> Self {
        let mut m = Match::all();
        m.wildcards = OFPFW_ALL & !(OFPFW_IN_PORT | OFPFW_DL_DST);
        m.in_port = in_port;
        m.dl_dst = dl_dst;
        m
    }

    /// Exact on input port and both Ethernet addresses, everything else wildcarded
    /// (what a learning switch installs).
    pub const fn in_port_dl_src_dst(in_port: u16, dl_src: [u8; 6], dl_dst: [u8; 6]) -> Self {
        let mut m = Match::in_port_dl_dst(in_port, dl_dst);
        m.wildcards &= !OFPFW_DL_SRC;
        m.dl_src = dl_src;
        m
    }

    /// Whether every bit of `flags` (`OFPFW_*`) is wildcarded.
    pub const fn is_wildcarded(&self, flags: u32) -> bool {
        self.wildcards & flags == flags
    }

    pub fn parse(input: &[u8]) -> PResult<'_, Match> {
        let (input, wildcards) = be_u32(input)?;
        let (input, in_port) = be_u16(input)?;
        let (input, dl_src) = take_n(input, 6, "match dl_src")?;
        let (input, dl_dst) = take_n(input, 6, "match dl_dst")?;
        let (input, dl_vlan) = be_u16(input)?;
        let (input, dl_vlan_pcp) = be_u8(input)?;
        let (input, ()) = skip(input, 1)?;
        let (input, dl_type) = be_u16(input)?;
        let (input, nw_tos) = be_u8(input)?;
        let (input, nw_proto) = be_u8(input)?;
        let (input, ()) = skip(input, 2)?;
        let (input, nw_src) = be_u32(input)?;
        let (input, nw_dst) = be_u32(input)?;
        let (input, tp_src) = be_u16(input)?;
        let (input, tp_dst) = be_u16(input)?;
        Ok((
            input,
            Match {
                wildcards,
                in_port,
                dl_src: fixed_str(dl_src),
                dl_dst: fixed_str(dl_dst),
                dl_vlan,
                dl_vlan_pcp,
                dl_type,
                nw_tos,
                nw_proto,
                nw_src,
                nw_dst,
                tp_src,
                tp_dst,
            },
        ))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.wildcards);
        out.put_u16(self.in_port);
        out.extend_from_slice(&self.dl_src);
        out.extend_from_slice(&self.dl_dst);
        out.put_u16(self.dl_vlan);
        out.put_u8(self.dl_vlan_pcp);
        out.put_zeros(1);
        out.put_u16(self.dl_type);
        out.put_u8(self.nw_tos);
        out.put_u8(self.nw_proto);
        out.put_zeros(2);
        out.put_u32(self.nw_src);
        out.put_u32(self.nw_dst);
        out.put_u16(self.tp_src);
        out.put_u16(self.tp_dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The match of Ryu's `1-2-ofp_flow_mod.packet`: exact dl_dst only.
    static DL_DST_ONLY: [u8; 40] = [
        0x00, 0x3f, 0xff, 0xf7, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf2, 0x0b, 0xa4, 0x7d, 0xf8, 0xea,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn match_parses() {
        let (rest, m) = Match::parse(&DL_DST_ONLY).expect("parses");
        assert!(rest.is_empty());
        assert_eq!(m.wildcards, 4_194_295);
        assert_eq!(m.wildcards, OFPFW_ALL & !OFPFW_DL_DST);
        assert_eq!(m.dl_dst, [0xf2, 0x0b, 0xa4, 0x7d, 0xf8, 0xea]);
        assert!(m.is_wildcarded(OFPFW_IN_PORT | OFPFW_NW_SRC_ALL));
        assert!(!m.is_wildcarded(OFPFW_DL_DST));
    }

    #[test]
    fn match_emits_same_bytes() {
        let mut m = Match::all();
        m.wildcards &= !OFPFW_DL_DST;
        m.dl_dst = [0xf2, 0x0b, 0xa4, 0x7d, 0xf8, 0xea];
        let mut out = Vec::new();
        m.emit(&mut out);
        assert_eq!(out, DL_DST_ONLY);
    }

    #[test]
    fn exact_constructors_clear_only_their_wildcards() {
        let m = Match::in_port_dl_src_dst(3, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        assert_eq!(m.wildcards, OFPFW_ALL & !(OFPFW_IN_PORT | OFPFW_DL_SRC | OFPFW_DL_DST));
        let mut out = Vec::new();
        m.emit(&mut out);
        assert_eq!(out.len(), MATCH_LEN);
        assert_eq!(Match::parse(&out).expect("parses").1, m);
        assert_eq!(Match::default(), Match::all());
    }

    #[test]
    fn short_match_is_an_error() {
        assert!(Match::parse(&DL_DST_ONLY[..39]).is_err());
    }
}
