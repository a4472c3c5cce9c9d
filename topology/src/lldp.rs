//! LLDP frames (IEEE 802.1AB) for link discovery.
//!
//! The controller sends one out of every port ([`build`]); when one comes
//! back in a PACKET_IN on another switch, [`parse`] it: a [`TenetTlv`] names
//! the sending switch and port, and its nonce the controller instance that
//! sent it, so LLDP from another tenet instance or another controller is told
//! apart. A frame without it is foreign (another controller, a server's
//! lldpd) and says nothing about our links.
//!
//! Frame: Ethernet header (optionally one 802.1Q tag), then TLVs, each a
//! 16-bit header (7 bits type, 9 bits length) and its value.

use crate::model::{Dpid, Mac, PortNo};

/// Ethertype of LLDP.
pub const ETHERTYPE_LLDP: u16 = 0x88cc;
/// Ethertype of an 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// Nearest-bridge multicast address: no bridge forwards it.
pub const LLDP_MULTICAST: Mac = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e];
/// OUI of tenet's organisation-specific TLV: locally administered
/// (0x02), then "tn".
pub const TENET_OUI: [u8; 3] = [0x02, 0x74, 0x6e];
/// Subtype of tenet's discovery TLV.
pub const TENET_SUBTYPE: u8 = 1;
/// Shortest Ethernet frame without its FCS; shorter frames are padded.
pub const MIN_FRAME_LEN: usize = 60;

/// Field offsets of the Ethernet header.
mod field {
    use std::ops::Range;

    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    /// Ethertype after one 802.1Q tag.
    pub const INNER_ETHERTYPE: Range<usize> = 16..18;
    pub const PAYLOAD: usize = 14;
    pub const TAGGED_PAYLOAD: usize = 18;
}

/// TLV types.
mod tlv {
    pub const END: u8 = 0;
    pub const CHASSIS_ID: u8 = 1;
    pub const PORT_ID: u8 = 2;
    pub const TTL: u8 = 3;
    pub const ORG_SPECIFIC: u8 = 127;
    /// Chassis ID and Port ID subtype "locally assigned".
    pub const SUBTYPE_LOCAL: u8 = 7;
    /// Length of tenet's TLV: OUI, subtype, dpid, port, nonce.
    pub const TENET_LEN: usize = 3 + 1 + 8 + 4 + 8;
}

/// tenet's organisation-specific TLV: which switch and port sent the frame,
/// and which controller instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TenetTlv {
    /// Sending switch.
    pub dpid: Dpid,
    /// Sending port.
    pub port: PortNo,
    /// Id of the controller instance that built the frame.
    pub nonce: u64,
}

/// A parsed LLDP frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lldp {
    /// Chassis ID subtype (7: locally assigned, 4: MAC address, ...).
    pub chassis_subtype: u8,
    /// Chassis ID value (for tenet: `"dpid:"` and 16 hex digits).
    pub chassis: Vec<u8>,
    /// Port ID subtype (7: locally assigned, 3: MAC address, ...).
    pub port_id_subtype: u8,
    /// Port ID value (for tenet: the port number in decimal ASCII).
    pub port_id: Vec<u8>,
    /// Time to live, seconds.
    pub ttl: u16,
    /// tenet's TLV, when the frame carries one.
    pub tenet: Option<TenetTlv>,
}

/// Why a frame is not a usable LLDP frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LldpError {
    /// Not an Ethernet frame of ethertype LLDP.
    #[error("not an LLDP frame")]
    NotLldp,
    /// A TLV runs past the end of the frame.
    #[error("LLDP frame truncated")]
    Truncated,
    /// A mandatory TLV has an impossible length.
    #[error("LLDP TLV type {tlv_type} has bad length {len}")]
    BadTlv {
        /// TLV type.
        tlv_type: u8,
        /// Its length.
        len: usize,
    },
    /// A mandatory TLV is absent.
    #[error("LLDP frame has no {0} TLV")]
    MissingTlv(&'static str),
    /// A TLV with tenet's OUI and subtype has the wrong length.
    #[error("tenet LLDP TLV has bad length {0}")]
    BadTenetTlv(usize),
}

/// Builds the discovery frame sent out of `port_no` of switch `dpid`, whose
/// MAC is `src_mac`, by the controller instance `nonce`.
pub fn build(dpid: Dpid, port_no: PortNo, src_mac: Mac, ttl_secs: u16, nonce: u64) -> Vec<u8> {
    let mut frame = Vec::with_capacity(80);
    frame.extend_from_slice(&LLDP_MULTICAST);
    frame.extend_from_slice(&src_mac);
    frame.extend_from_slice(&ETHERTYPE_LLDP.to_be_bytes());
    let chassis = format!("dpid:{dpid:016x}");
    push_tlv(&mut frame, tlv::CHASSIS_ID, &[&[tlv::SUBTYPE_LOCAL], chassis.as_bytes()]);
    push_tlv(&mut frame, tlv::PORT_ID, &[&[tlv::SUBTYPE_LOCAL], port_no.to_string().as_bytes()]);
    push_tlv(&mut frame, tlv::TTL, &[&ttl_secs.to_be_bytes()]);
    push_tlv(
        &mut frame,
        tlv::ORG_SPECIFIC,
        &[&TENET_OUI, &[TENET_SUBTYPE], &dpid.to_be_bytes(), &port_no.to_be_bytes(), &nonce.to_be_bytes()],
    );
    push_tlv(&mut frame, tlv::END, &[]);
    if frame.len() < MIN_FRAME_LEN {
        frame.resize(MIN_FRAME_LEN, 0);
    }
    frame
}

/// Appends a TLV whose value is the concatenation of `parts` (at most 511
/// bytes, which every caller here is far below).
fn push_tlv(frame: &mut Vec<u8>, tlv_type: u8, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    debug_assert!(len <= 0x1ff);
    let header = (u16::from(tlv_type) << 9) | (len as u16 & 0x1ff);
    frame.extend_from_slice(&header.to_be_bytes());
    for part in parts {
        frame.extend_from_slice(part);
    }
}

/// Where the LLDP payload starts, if the frame is LLDP (untagged or behind
/// one 802.1Q tag).
fn lldp_payload(frame: &[u8]) -> Option<&[u8]> {
    let ethertype = |r: std::ops::Range<usize>| frame.get(r).map(|b| u16::from_be_bytes([b[0], b[1]]));
    match ethertype(field::ETHERTYPE)? {
        ETHERTYPE_LLDP => frame.get(field::PAYLOAD..),
        ETHERTYPE_VLAN if ethertype(field::INNER_ETHERTYPE)? == ETHERTYPE_LLDP => frame.get(field::TAGGED_PAYLOAD..),
        _ => None,
    }
}

/// Whether the Ethernet frame is LLDP (also behind one 802.1Q tag).
pub fn is_lldp(frame: &[u8]) -> bool {
    lldp_payload(frame).is_some()
}

/// The frame's destination MAC, if it has an Ethernet header.
pub fn dst_mac(frame: &[u8]) -> Option<Mac> {
    frame.get(field::DST)?.try_into().ok()
}

/// The frame's source MAC, if it has an Ethernet header.
pub fn src_mac(frame: &[u8]) -> Option<Mac> {
    frame.get(field::SRC)?.try_into().ok()
}

/// Parses an LLDP frame. Chassis ID, Port ID and TTL are required (in any
/// order); unknown TLVs are skipped; parsing stops at End or at the end of
/// the frame; padding after End is ignored. Never panics.
pub fn parse(frame: &[u8]) -> Result<Lldp, LldpError> {
    let mut rest = lldp_payload(frame).ok_or(LldpError::NotLldp)?;
    let mut chassis: Option<(u8, Vec<u8>)> = None;
    let mut port_id: Option<(u8, Vec<u8>)> = None;
    let mut ttl = None;
    let mut tenet = None;
    while !rest.is_empty() {
        let (header, after) = rest.split_at_checked(2).ok_or(LldpError::Truncated)?;
        let header = u16::from_be_bytes([header[0], header[1]]);
        let tlv_type = (header >> 9) as u8;
        let len = usize::from(header & 0x1ff);
        let (value, after) = after.split_at_checked(len).ok_or(LldpError::Truncated)?;
        rest = after;
        let bad = || LldpError::BadTlv { tlv_type, len };
        match tlv_type {
            tlv::END => break,
            tlv::CHASSIS_ID | tlv::PORT_ID => {
                // Subtype and at least one byte of id; at most 255 bytes of id.
                let (&subtype, id) = value.split_first().ok_or_else(bad)?;
                if id.is_empty() || id.len() > 255 {
                    return Err(bad());
                }
                let slot = if tlv_type == tlv::CHASSIS_ID { &mut chassis } else { &mut port_id };
                slot.get_or_insert_with(|| (subtype, id.to_vec()));
            }
            tlv::TTL => {
                let secs: [u8; 2] = value.try_into().map_err(|_| bad())?;
                ttl.get_or_insert(u16::from_be_bytes(secs));
            }
            tlv::ORG_SPECIFIC if value.get(..3) == Some(&TENET_OUI) && value.get(3) == Some(&TENET_SUBTYPE) => {
                if value.len() != tlv::TENET_LEN {
                    return Err(LldpError::BadTenetTlv(value.len()));
                }
                let be64 =
                    |r: std::ops::Range<usize>| value.get(r).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
                let be32 =
                    |r: std::ops::Range<usize>| value.get(r).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
                if let (Some(dpid), Some(port), Some(nonce)) = (be64(4..12), be32(12..16), be64(16..24)) {
                    tenet.get_or_insert(TenetTlv { dpid, port, nonce });
                }
            }
            _ => {}
        }
    }
    let (chassis_subtype, chassis) = chassis.ok_or(LldpError::MissingTlv("Chassis ID"))?;
    let (port_id_subtype, port_id) = port_id.ok_or(LldpError::MissingTlv("Port ID"))?;
    let ttl = ttl.ok_or(LldpError::MissingTlv("TTL"))?;
    Ok(Lldp { chassis_subtype, chassis, port_id_subtype, port_id, ttl, tenet })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];

    /// `build(1, 2, MAC, 120, 0x0102030405060708)`, written out by hand.
    static FRAME_BYTES: [u8; 74] = [
        0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src
        0x88, 0xcc, // ethertype
        0x02, 0x16, 0x07, b'd', b'p', b'i', b'd', b':', b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'0',
        b'0', b'0', b'0', b'0', b'0', b'1', // chassis id, locally assigned
        0x04, 0x02, 0x07, b'2', // port id, locally assigned
        0x06, 0x02, 0x00, 0x78, // ttl 120
        0xfe, 0x18, 0x02, 0x74, 0x6e, 0x01, // tenet tlv: oui, subtype
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, // dpid
        0x00, 0x00, 0x00, 0x02, // port
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // nonce
        0x00, 0x00, // end
    ];

    /// What Ryu's switches app sends: port id as a 4-byte port component,
    /// no tenet TLV; plus an IEEE 802.1 TLV (port VLAN id) to skip.
    static FOREIGN_BYTES: [u8; 60] = [
        0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e, 0x02, 0x00, 0x00, 0x00, 0x00, 0x09, 0x88, 0xcc, //
        0x02, 0x16, 0x07, b'd', b'p', b'i', b'd', b':', b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'0',
        b'0', b'0', b'0', b'0', b'0', b'9', // chassis id
        0x04, 0x05, 0x02, 0x00, 0x00, 0x00, 0x03, // port id, port component, binary
        0x06, 0x02, 0x00, 0x78, // ttl
        0xfe, 0x06, 0x00, 0x80, 0xc2, 0x01, 0x00, 0x0a, // port vlan id 10
        0x00, 0x00, // end
        0x00, // padding
    ];

    #[test]
    fn built_frame_matches_reference_bytes() {
        assert_eq!(build(1, 2, MAC, 120, 0x0102030405060708), FRAME_BYTES);
    }

    #[test]
    fn reference_frame_parses() {
        let lldp = parse(&FRAME_BYTES).unwrap();
        assert_eq!(lldp.chassis_subtype, 7);
        assert_eq!(lldp.chassis, b"dpid:0000000000000001");
        assert_eq!(lldp.port_id_subtype, 7);
        assert_eq!(lldp.port_id, b"2");
        assert_eq!(lldp.ttl, 120);
        assert_eq!(lldp.tenet, Some(TenetTlv { dpid: 1, port: 2, nonce: 0x0102030405060708 }));
    }

    #[test]
    fn lldp_round_trips() {
        let frame = build(0xdead_beef_0000_0042, 0xffff_fffe, [0x0a, 0xbb, 0xcc, 0xdd, 0xee, 0xff], 3, u64::MAX);
        let lldp = parse(&frame).unwrap();
        assert_eq!(lldp.tenet, Some(TenetTlv { dpid: 0xdead_beef_0000_0042, port: 0xffff_fffe, nonce: u64::MAX }));
        assert_eq!(lldp.chassis, b"dpid:deadbeef00000042");
        assert_eq!(lldp.port_id, b"4294967294");
        assert_eq!(lldp.ttl, 3);
    }

    #[test]
    fn built_frame_goes_to_nearest_bridge_from_port_mac() {
        let frame = build(7, 1, MAC, 120, 0);
        assert!(frame.len() >= MIN_FRAME_LEN);
        assert_eq!(dst_mac(&frame), Some(LLDP_MULTICAST));
        assert_eq!(src_mac(&frame), Some(MAC));
        assert!(is_lldp(&frame));
    }

    #[test]
    fn foreign_lldp_has_no_tenet_tlv() {
        let lldp = parse(&FOREIGN_BYTES).unwrap();
        assert_eq!(lldp.tenet, None);
        assert_eq!(lldp.chassis, b"dpid:0000000000000009");
        assert_eq!((lldp.port_id_subtype, lldp.port_id.as_slice()), (2, &[0, 0, 0, 3][..]));
        assert_eq!(lldp.ttl, 120);
    }

    #[test]
    fn our_oui_with_another_subtype_is_not_ours() {
        let mut frame = FRAME_BYTES.to_vec();
        frame[51] = 2; // tenet TLV subtype
        assert_eq!(parse(&frame).unwrap().tenet, None);
    }

    #[test]
    fn malformed_tenet_tlv_is_an_error() {
        // Shorten the tenet TLV by one byte (length 23), dropping the last nonce byte.
        let mut frame = FRAME_BYTES.to_vec();
        frame[47] = 0x17;
        frame.remove(71);
        assert_eq!(parse(&frame), Err(LldpError::BadTenetTlv(23)));
    }

    #[test]
    fn vlan_tagged_lldp_is_recognised() {
        let mut frame = FRAME_BYTES.to_vec();
        frame.splice(12..12, [0x81, 0x00, 0x00, 0x0a]);
        assert!(is_lldp(&frame));
        assert_eq!(parse(&frame).unwrap().tenet.map(|t| t.port), Some(2));
    }

    #[test]
    fn non_lldp_frames_are_rejected() {
        let mut arp = FRAME_BYTES.to_vec();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!is_lldp(&arp));
        assert_eq!(parse(&arp), Err(LldpError::NotLldp));
        let mut tagged_ip = FRAME_BYTES.to_vec();
        tagged_ip.splice(12..14, [0x81, 0x00, 0x00, 0x0a, 0x08, 0x00]);
        assert!(!is_lldp(&tagged_ip));
        assert!(!is_lldp(&[]));
        assert!(!is_lldp(&FRAME_BYTES[..13]));
    }

    #[test]
    fn truncated_frame_is_an_error() {
        assert_eq!(parse(&FRAME_BYTES[..40]), Err(LldpError::Truncated));
        assert_eq!(parse(&FRAME_BYTES[..15]), Err(LldpError::Truncated));
    }

    #[test]
    fn missing_mandatory_tlv_is_an_error() {
        assert_eq!(parse(&FRAME_BYTES[..14]), Err(LldpError::MissingTlv("Chassis ID")));
        assert_eq!(parse(&FRAME_BYTES[..38]), Err(LldpError::MissingTlv("Port ID")));
        assert_eq!(parse(&FRAME_BYTES[..42]), Err(LldpError::MissingTlv("TTL")));
    }

    #[test]
    fn bad_ttl_length_is_an_error() {
        let mut frame = FRAME_BYTES.to_vec();
        frame[43] = 0x01; // TTL length 1
        assert_eq!(parse(&frame), Err(LldpError::BadTlv { tlv_type: 3, len: 1 }));
    }

    #[test]
    fn padding_after_end_is_ignored() {
        let mut frame = FRAME_BYTES.to_vec();
        frame.extend_from_slice(&[0xff; 10]);
        assert_eq!(parse(&frame), parse(&FRAME_BYTES));
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
            let _ = is_lldp(&bytes);
        }

        #[test]
        fn parse_never_panics_on_lldp_with_random_tlvs(tlvs in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut frame = FRAME_BYTES[..14].to_vec();
            frame.extend_from_slice(&tlvs);
            let _ = parse(&frame);
        }

        #[test]
        fn parse_never_panics_on_mutated_frames(
            edits in proptest::collection::vec((0usize..74, any::<u8>()), 1..8),
            cut in 0usize..=74,
        ) {
            let mut frame = FRAME_BYTES.to_vec();
            for (at, byte) in edits {
                frame[at] = byte;
            }
            frame.truncate(cut);
            let _ = parse(&frame);
        }

        #[test]
        fn any_built_frame_round_trips(dpid: u64, port: u32, mac: [u8; 6], ttl: u16, nonce: u64) {
            let lldp = parse(&build(dpid, port, mac, ttl, nonce)).unwrap();
            prop_assert_eq!(lldp.tenet, Some(TenetTlv { dpid, port, nonce }));
            prop_assert_eq!(lldp.ttl, ttl);
            prop_assert_eq!(lldp.port_id, port.to_string().into_bytes());
        }
    }
}
