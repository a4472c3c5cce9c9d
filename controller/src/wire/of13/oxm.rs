//! OXM TLVs (`ofp_oxm`) and the flow match (`ofp_match`).
//!
//! Every OpenFlow-basic field (class 0x8000) is known by name, length and
//! maskability and is checked on parse. Nicira (NXM) and experimenter fields are
//! kept as typed opaque values: class, field and bytes, re-emitted byte-identical.

use nom::number::complete::{be_u16, be_u32};

use crate::wire::error::WireError;
use crate::wire::{len_since, many_to_end, take_n, PResult, Put};

/// OXM classes.
pub mod class {
    pub const NXM_0: u16 = 0x0000;
    pub const NXM_1: u16 = 0x0001;
    pub const OPENFLOW_BASIC: u16 = 0x8000;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// Codes of `OFPET_BAD_MATCH`.
pub mod bad_match {
    pub const BAD_TYPE: u16 = 0;
    pub const BAD_LEN: u16 = 1;
    pub const BAD_FIELD: u16 = 6;
    pub const BAD_MASK: u16 = 8;
}

/// OpenFlow-basic field numbers (`oxm_ofb_match_fields`).
pub mod ofb {
    pub const IN_PORT: u8 = 0;
    pub const IN_PHY_PORT: u8 = 1;
    pub const METADATA: u8 = 2;
    pub const ETH_DST: u8 = 3;
    pub const ETH_SRC: u8 = 4;
    pub const ETH_TYPE: u8 = 5;
    pub const VLAN_VID: u8 = 6;
    pub const VLAN_PCP: u8 = 7;
    pub const IP_DSCP: u8 = 8;
    pub const IP_ECN: u8 = 9;
    pub const IP_PROTO: u8 = 10;
    pub const IPV4_SRC: u8 = 11;
    pub const IPV4_DST: u8 = 12;
    pub const TCP_SRC: u8 = 13;
    pub const TCP_DST: u8 = 14;
    pub const UDP_SRC: u8 = 15;
    pub const UDP_DST: u8 = 16;
    pub const SCTP_SRC: u8 = 17;
    pub const SCTP_DST: u8 = 18;
    pub const ICMPV4_TYPE: u8 = 19;
    pub const ICMPV4_CODE: u8 = 20;
    pub const ARP_OP: u8 = 21;
    pub const ARP_SPA: u8 = 22;
    pub const ARP_TPA: u8 = 23;
    pub const ARP_SHA: u8 = 24;
    pub const ARP_THA: u8 = 25;
    pub const IPV6_SRC: u8 = 26;
    pub const IPV6_DST: u8 = 27;
    pub const IPV6_FLABEL: u8 = 28;
    pub const ICMPV6_TYPE: u8 = 29;
    pub const ICMPV6_CODE: u8 = 30;
    pub const IPV6_ND_TARGET: u8 = 31;
    pub const IPV6_ND_SLL: u8 = 32;
    pub const IPV6_ND_TLL: u8 = 33;
    pub const MPLS_LABEL: u8 = 34;
    pub const MPLS_TC: u8 = 35;
    pub const MPLS_BOS: u8 = 36;
    pub const PBB_ISID: u8 = 37;
    pub const TUNNEL_ID: u8 = 38;
    pub const IPV6_EXTHDR: u8 = 39;
}

/// How a field's value reads: decides its printed form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Unsigned big-endian integer.
    Int,
    /// Ethernet address.
    Mac,
    /// IPv4 address.
    Ipv4,
    /// IPv6 address.
    Ipv6,
}

/// Description of a known field.
#[derive(Debug, Clone, Copy)]
pub struct FieldInfo {
    pub name: &'static str,
    /// Length of the value (the mask has the same length).
    pub len: u8,
    pub maskable: bool,
    pub kind: ValueKind,
}

const fn fi(name: &'static str, len: u8, maskable: bool, kind: ValueKind) -> FieldInfo {
    FieldInfo { name, len, maskable, kind }
}

use ValueKind::{Int, Ipv4, Ipv6, Mac};

/// OpenFlow-basic fields, indexed by field number. L4 ports are maskable as Open vSwitch allows
/// (OpenFlow 1.3 itself does not): security-group port ranges become masked matches.
pub const BASIC_FIELDS: [FieldInfo; 40] = [
    fi("in_port", 4, false, Int),
    fi("in_phy_port", 4, false, Int),
    fi("metadata", 8, true, Int),
    fi("eth_dst", 6, true, Mac),
    fi("eth_src", 6, true, Mac),
    fi("eth_type", 2, false, Int),
    fi("vlan_vid", 2, true, Int),
    fi("vlan_pcp", 1, false, Int),
    fi("ip_dscp", 1, false, Int),
    fi("ip_ecn", 1, false, Int),
    fi("ip_proto", 1, false, Int),
    fi("ipv4_src", 4, true, Ipv4),
    fi("ipv4_dst", 4, true, Ipv4),
    fi("tcp_src", 2, true, Int),
    fi("tcp_dst", 2, true, Int),
    fi("udp_src", 2, true, Int),
    fi("udp_dst", 2, true, Int),
    fi("sctp_src", 2, true, Int),
    fi("sctp_dst", 2, true, Int),
    fi("icmpv4_type", 1, false, Int),
    fi("icmpv4_code", 1, false, Int),
    fi("arp_op", 2, false, Int),
    fi("arp_spa", 4, true, Ipv4),
    fi("arp_tpa", 4, true, Ipv4),
    fi("arp_sha", 6, true, Mac),
    fi("arp_tha", 6, true, Mac),
    fi("ipv6_src", 16, true, Ipv6),
    fi("ipv6_dst", 16, true, Ipv6),
    fi("ipv6_flabel", 4, true, Int),
    fi("icmpv6_type", 1, false, Int),
    fi("icmpv6_code", 1, false, Int),
    fi("ipv6_nd_target", 16, false, Ipv6),
    fi("ipv6_nd_sll", 6, false, Mac),
    fi("ipv6_nd_tll", 6, false, Mac),
    fi("mpls_label", 4, false, Int),
    fi("mpls_tc", 1, false, Int),
    fi("mpls_bos", 1, false, Int),
    fi("pbb_isid", 3, true, Int),
    fi("tunnel_id", 8, true, Int),
    fi("ipv6_exthdr", 2, true, Int),
];

/// Nicira extension fields tenet uses or meets (class NXM_1 unless noted).
const NXM1_FIELDS: &[(u8, FieldInfo)] = &[
    (31, fi("tun_ipv4_src", 4, true, Ipv4)),
    (32, fi("tun_ipv4_dst", 4, true, Ipv4)),
    (33, fi("pkt_mark", 4, true, Int)),
    (37, fi("conj_id", 4, false, Int)),
    (105, fi("ct_state", 4, true, Int)),
    (106, fi("ct_zone", 2, false, Int)),
    (107, fi("ct_mark", 4, true, Int)),
    (108, fi("ct_label", 16, true, Int)),
];

const REG_NAMES: [&str; 16] = [
    "reg0", "reg1", "reg2", "reg3", "reg4", "reg5", "reg6", "reg7", "reg8", "reg9", "reg10", "reg11", "reg12", "reg13",
    "reg14", "reg15",
];

/// ONF experimenter id (`0x4f4e4600`), used for `pbb_uca` in OpenFlow 1.3.
pub const ONF_EXPERIMENTER: u32 = 0x4f4e_4600;
/// ONF experimenter field type of `pbb_uca`.
pub const ONF_ET_PBB_UCA: u16 = 2560;

/// Up to 16 bytes inline, more on the heap: field values and masks.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum OxmBytes {
    Inline { len: u8, buf: [u8; 16] },
    Heap(Box<[u8]>),
}

impl OxmBytes {
    pub fn new(bytes: &[u8]) -> Self {
        if bytes.len() <= 16 {
            let mut buf = [0u8; 16];
            buf[..bytes.len()].copy_from_slice(bytes);
            OxmBytes::Inline { len: bytes.len() as u8, buf }
        } else {
            OxmBytes::Heap(bytes.into())
        }
    }
    pub fn as_slice(&self) -> &[u8] {
        match self {
            OxmBytes::Inline { len, buf } => &buf[..usize::from(*len)],
            OxmBytes::Heap(b) => b,
        }
    }
    /// The value as a big-endian unsigned integer (values over 16 bytes keep their last 16).
    pub fn to_u128(&self) -> u128 {
        self.as_slice().iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b))
    }
}

impl core::fmt::Debug for OxmBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "0x")?;
        for b in self.as_slice() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// One OXM TLV.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Oxm {
    pub class: u16,
    /// Field number within the class (7 bits).
    pub field: u8,
    /// For class EXPERIMENTER: the experimenter id that leads the payload.
    pub experimenter: Option<u32>,
    pub value: OxmBytes,
    pub mask: Option<OxmBytes>,
}

impl Oxm {
    /// An OpenFlow-basic field with an exact value.
    pub fn basic(field: u8, value: &[u8]) -> Self {
        Oxm { class: class::OPENFLOW_BASIC, field, experimenter: None, value: OxmBytes::new(value), mask: None }
    }
    /// An OpenFlow-basic field with a value and mask.
    pub fn basic_masked(field: u8, value: &[u8], mask: &[u8]) -> Self {
        Oxm { mask: Some(OxmBytes::new(mask)), ..Oxm::basic(field, value) }
    }
    pub fn in_port(port: u32) -> Self {
        Oxm::basic(ofb::IN_PORT, &port.to_be_bytes())
    }
    pub fn eth_dst(mac: [u8; 6]) -> Self {
        Oxm::basic(ofb::ETH_DST, &mac)
    }
    pub fn eth_src(mac: [u8; 6]) -> Self {
        Oxm::basic(ofb::ETH_SRC, &mac)
    }
    pub fn eth_type(ethertype: u16) -> Self {
        Oxm::basic(ofb::ETH_TYPE, &ethertype.to_be_bytes())
    }
    /// `vid` is the full OXM value, i.e. including `OFPVID_PRESENT` (0x1000) where wanted.
    pub fn vlan_vid(vid: u16) -> Self {
        Oxm::basic(ofb::VLAN_VID, &vid.to_be_bytes())
    }
    pub fn metadata(value: u64, mask: Option<u64>) -> Self {
        match mask {
            Some(m) => Oxm::basic_masked(ofb::METADATA, &value.to_be_bytes(), &m.to_be_bytes()),
            None => Oxm::basic(ofb::METADATA, &value.to_be_bytes()),
        }
    }

    /// Whether this is the OpenFlow-basic field `field`.
    pub fn is_basic(&self, field: u8) -> bool {
        self.class == class::OPENFLOW_BASIC && self.field == field
    }

    /// The field's name and layout, where known (`"eth_dst"`, `"reg0"`, `"pbb_uca"` ...).
    pub fn info(&self) -> Option<FieldInfo> {
        match self.class {
            class::OPENFLOW_BASIC => BASIC_FIELDS.get(usize::from(self.field)).copied(),
            class::NXM_1 => {
                if usize::from(self.field) < REG_NAMES.len() {
                    return Some(fi(REG_NAMES[usize::from(self.field)], 4, true, Int));
                }
                NXM1_FIELDS.iter().find(|(f, _)| *f == self.field).map(|(_, i)| *i)
            }
            class::EXPERIMENTER if self.experimenter == Some(ONF_EXPERIMENTER) => {
                let v = self.value.as_slice();
                (v.len() >= 2 && u16::from_be_bytes([v[0], v[1]]) == ONF_ET_PBB_UCA)
                    .then_some(fi("pbb_uca", 1, false, Int))
            }
            _ => None,
        }
    }

    /// The field value without any experimenter sub-type prefix (for ONF fields, the
    /// 2-byte experimenter type that precedes the value is stripped).
    pub fn payload(&self) -> &[u8] {
        let v = self.value.as_slice();
        if self.class == class::EXPERIMENTER && self.experimenter == Some(ONF_EXPERIMENTER) && v.len() >= 2 {
            &v[2..]
        } else {
            v
        }
    }

    /// Length of the TLV on the wire, header included.
    pub fn wire_len(&self) -> usize {
        4 + self.payload_len()
    }

    fn payload_len(&self) -> usize {
        self.experimenter.map_or(0, |_| 4)
            + self.value.as_slice().len()
            + self.mask.as_ref().map_or(0, |m| m.as_slice().len())
    }

    pub fn parse(input: &[u8]) -> PResult<'_, Oxm> {
        if input.len() < 4 {
            return WireError::bad_match(bad_match::BAD_LEN, "oxm header runs past match").fail();
        }
        let (input, oxm_class) = be_u16(input)?;
        let (input, fh) = take_n(input, 2, "oxm header")?;
        let field = fh[0] >> 1;
        let has_mask = fh[0] & 1 == 1;
        let len = usize::from(fh[1]);
        let (rest, mut body) = match take_n(input, len, "oxm value") {
            Ok(v) => v,
            Err(_) => return WireError::bad_match(bad_match::BAD_LEN, "oxm runs past match").fail(),
        };
        let mut experimenter = None;
        if oxm_class == class::EXPERIMENTER {
            let (b, exp) = be_u32::<_, WireError>(body)
                .map_err(|_| nom::Err::Error(WireError::bad_match(bad_match::BAD_LEN, "experimenter oxm too short")))?;
            experimenter = Some(exp);
            body = b;
        }
        // ONF fields lead with a 2-byte experimenter type that belongs to the value only.
        let prefix = if experimenter == Some(ONF_EXPERIMENTER) { 2.min(body.len()) } else { 0 };
        let maskable = body.len() - prefix;
        if has_mask && maskable % 2 != 0 {
            return WireError::bad_match(bad_match::BAD_LEN, "masked oxm of odd length").fail();
        }
        let vlen = prefix + if has_mask { maskable / 2 } else { maskable };
        let oxm = Oxm {
            class: oxm_class,
            field,
            experimenter,
            value: OxmBytes::new(&body[..vlen]),
            mask: has_mask.then(|| OxmBytes::new(&body[vlen..])),
        };
        if oxm_class == class::OPENFLOW_BASIC {
            if let Some(info) = BASIC_FIELDS.get(usize::from(field)) {
                if vlen != usize::from(info.len) {
                    return WireError::bad_match(bad_match::BAD_LEN, "oxm value of wrong length for its field").fail();
                }
                if has_mask && !info.maskable {
                    return WireError::bad_match(bad_match::BAD_MASK, "mask on a field that cannot be masked").fail();
                }
            }
        }
        Ok((rest, oxm))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u16(self.class);
        out.put_u8((self.field << 1) | u8::from(self.mask.is_some()));
        out.put_u8(u8::try_from(self.payload_len()).unwrap_or(u8::MAX));
        if let Some(e) = self.experimenter {
            out.put_u32(e);
        }
        out.extend_from_slice(self.value.as_slice());
        if let Some(m) = &self.mask {
            out.extend_from_slice(m.as_slice());
        }
    }
}

/// Writes a value the way humans read it: MACs and addresses in their notation, integers in decimal.
fn fmt_value(f: &mut core::fmt::Formatter<'_>, kind: ValueKind, v: &[u8]) -> core::fmt::Result {
    match (kind, v.len()) {
        (ValueKind::Mac, 6) => {
            write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", v[0], v[1], v[2], v[3], v[4], v[5])
        }
        (ValueKind::Ipv4, 4) => write!(f, "{}.{}.{}.{}", v[0], v[1], v[2], v[3]),
        (ValueKind::Ipv6, 16) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(v);
            write!(f, "{}", std::net::Ipv6Addr::from(a))
        }
        _ if v.len() <= 16 => write!(f, "{}", OxmBytes::new(v).to_u128()),
        _ => write!(f, "{:?}", OxmBytes::new(v)),
    }
}

impl core::fmt::Display for Oxm {
    /// `name=value` or `name=value/mask` (`eth_dst=00:00:00:00:00:01`, `ipv4_src=10.0.0.0/255.0.0.0`);
    /// unknown fields as `oxm(class,field)=0x..`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let Some(info) = self.info() else {
            write!(f, "oxm({:#06x},{})={:?}", self.class, self.field, self.value)?;
            if let Some(m) = &self.mask {
                write!(f, "/{m:?}")?;
            }
            return Ok(());
        };
        write!(f, "{}=", info.name)?;
        fmt_value(f, info.kind, self.payload())?;
        if let Some(m) = &self.mask {
            write!(f, "/")?;
            fmt_value(f, info.kind, m.as_slice())?;
        }
        Ok(())
    }
}

/// `ofp_match` of type OXM: a list of fields, padded to 8 bytes on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Match {
    pub fields: Vec<Oxm>,
}

/// `OFPMT_OXM`.
pub const OFPMT_OXM: u16 = 1;

impl Match {
    pub fn new(fields: Vec<Oxm>) -> Self {
        Match { fields }
    }

    /// The first field with this class and number.
    pub fn get(&self, class: u16, field: u8) -> Option<&Oxm> {
        self.fields.iter().find(|f| f.class == class && f.field == field)
    }

    /// `in_port`, when present.
    pub fn in_port(&self) -> Option<u32> {
        self.get(class::OPENFLOW_BASIC, ofb::IN_PORT).map(|o| o.value.to_u128() as u32)
    }

    /// The `length` field on the wire: header plus fields, without the padding.
    pub fn wire_len(&self) -> usize {
        4 + self.fields.iter().map(Oxm::wire_len).sum::<usize>()
    }

    pub fn parse(input: &[u8]) -> PResult<'_, Match> {
        let (input, ty) = be_u16(input)?;
        let (input, length) = be_u16(input)?;
        if ty != OFPMT_OXM {
            return WireError::bad_match(bad_match::BAD_TYPE, "match type is not OXM").fail();
        }
        let length = usize::from(length);
        if length < 4 {
            return WireError::bad_match(bad_match::BAD_LEN, "match length below 4").fail();
        }
        let padded = crate::wire::pad8(length);
        if input.len() < padded - 4 {
            return WireError::bad_match(bad_match::BAD_LEN, "match runs past message").fail();
        }
        let body = &input[..length - 4];
        let fields = many_to_end(body, Oxm::parse)?;
        Ok((&input[padded - 4..], Match { fields }))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(OFPMT_OXM);
        out.put_u16(0);
        for f in &self.fields {
            f.emit(out);
        }
        let len = len_since(out, start);
        out.patch_u16(start + 2, len);
        out.pad8_from(start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static MATCH_BYTES: [u8; 24] = [
        0x00, 0x01, 0x00, 0x16, // OXM, length 22
        0x80, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x06, // in_port 6
        0x80, 0x00, 0x06, 0x06, 0xf2, 0x0b, 0xa4, 0x7d, 0xf8, 0xea, // eth_dst
        0x00, 0x00, // padding
    ];

    #[test]
    fn match_parses() {
        let (rest, m) = Match::parse(&MATCH_BYTES).expect("parses");
        assert!(rest.is_empty());
        assert_eq!(m.in_port(), Some(6));
        assert_eq!(m.fields[1].info().map(|i| i.name), Some("eth_dst"));
    }

    #[test]
    fn match_emits_same_bytes() {
        let m = Match::new(vec![Oxm::in_port(6), Oxm::eth_dst([0xf2, 0x0b, 0xa4, 0x7d, 0xf8, 0xea])]);
        let mut out = Vec::new();
        m.emit(&mut out);
        assert_eq!(out, MATCH_BYTES);
    }

    #[test]
    fn masked_onf_field_keeps_its_type_out_of_the_mask() {
        // class 0xffff, field 0 with mask, length 4+2+1+1: ONF, exp_type 0x0a00, value 0xaa, mask 0xbb.
        let bytes = [0xff, 0xff, 0x01, 0x08, 0x4f, 0x4e, 0x46, 0x00, 0x0a, 0x00, 0xaa, 0xbb];
        let (rest, oxm) = Oxm::parse(&bytes).expect("parses");
        assert!(rest.is_empty());
        assert_eq!(oxm.payload(), &[0xaa]);
        assert_eq!(oxm.mask.as_ref().map(OxmBytes::as_slice), Some(&[0xbb][..]));
        let mut out = Vec::new();
        oxm.emit(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn wrong_length_for_known_field_is_bad_len() {
        let bytes = [0x00, 0x01, 0x00, 0x08, 0x80, 0x00, 0x00, 0x00];
        let err = Match::parse(&bytes).expect_err("in_port of length 0");
        let nom::Err::Error(e) = err else { panic!("not an error") };
        assert_eq!((e.err_type, e.code), (4, bad_match::BAD_LEN));
    }

    #[test]
    fn mask_on_unmaskable_field_is_bad_mask() {
        let bytes = [0x00, 0x01, 0x00, 0x0c, 0x80, 0x00, 0x0b, 0x04, 0, 6, 0xff, 0xff];
        let nom::Err::Error(e) = Match::parse(&[&bytes[..], &[0u8; 4]].concat()).expect_err("masked eth_type") else {
            panic!("not an error")
        };
        assert_eq!((e.err_type, e.code), (4, bad_match::BAD_MASK));
    }
}
