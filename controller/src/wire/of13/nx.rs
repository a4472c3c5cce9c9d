//! The Nicira extensions tenet emits: connection tracking (`ct`) and the fields it
//! sets (`ct_state`, `ct_zone`). Open vSwitch's layouts (`nx_action_conntrack`,
//! NXM_NX_CT_STATE); the codec keeps Nicira actions as `Action::Nicira` with their
//! body, and this module builds and reads those bodies.

use super::action::Action;
use super::oxm::{class, Oxm, OxmBytes};

/// `NXAST_CT`.
pub const NXAST_CT: u16 = 35;
/// `NXAST_CT_CLEAR`.
pub const NXAST_CT_CLEAR: u16 = 43;
/// `NX_CT_RECIRC_NONE`: `ct` without `table=`.
pub const CT_RECIRC_NONE: u8 = 0xff;
/// `NX_CT_F_COMMIT`.
pub const CT_F_COMMIT: u16 = 1;
/// NXM_1 field number of `ct_state`.
pub const NXM_CT_STATE: u8 = 105;
/// NXM_1 field number of `ct_zone`.
pub const NXM_CT_ZONE: u8 = 106;

/// Bits of `ct_state`.
pub mod ct_state {
    pub const NEW: u32 = 0x01;
    pub const EST: u32 = 0x02;
    pub const REL: u32 = 0x04;
    pub const RPL: u32 = 0x08;
    pub const INV: u32 = 0x10;
    pub const TRK: u32 = 0x20;
}

/// A `ct` action: send the packet through the connection tracker in `zone`,
/// optionally committing the connection, optionally continuing in `table`
/// (recirculation) with `ct_state` set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ct {
    pub commit: bool,
    pub zone: u16,
    /// `Some(t)`: the packet continues in table `t` after tracking.
    pub table: Option<u8>,
}

impl Ct {
    /// The action.
    pub fn to_action(&self) -> Action {
        let mut body = Vec::with_capacity(14);
        body.extend_from_slice(&(if self.commit { CT_F_COMMIT } else { 0 }).to_be_bytes());
        body.extend_from_slice(&0u32.to_be_bytes()); // zone_src: immediate
        body.extend_from_slice(&self.zone.to_be_bytes());
        body.push(self.table.unwrap_or(CT_RECIRC_NONE));
        body.extend_from_slice(&[0; 3]);
        body.extend_from_slice(&0u16.to_be_bytes()); // alg
        Action::Nicira { subtype: NXAST_CT, body }
    }

    /// Reads a `ct` action with an immediate zone; `None` for anything else.
    pub fn from_action(action: &Action) -> Option<Ct> {
        let Action::Nicira { subtype: NXAST_CT, body } = action else { return None };
        let b = body.get(..14)?;
        let flags = u16::from_be_bytes([b[0], b[1]]);
        let zone_src = u32::from_be_bytes([b[2], b[3], b[4], b[5]]);
        if zone_src != 0 {
            return None;
        }
        let table = b[8];
        Some(Ct {
            commit: flags & CT_F_COMMIT != 0,
            zone: u16::from_be_bytes([b[6], b[7]]),
            table: (table != CT_RECIRC_NONE).then_some(table),
        })
    }
}

/// Nicira `multipath` action subtype.
pub const NXAST_MULTIPATH: u16 = 10;
/// `multipath` hash over L2-L4 fields that gives both directions of a flow one value.
pub const NX_HASH_FIELDS_SYMMETRIC_L4: u16 = 1;
/// `multipath` link choice: hash modulo the number of links.
pub const NX_MP_ALG_MODULO_N: u16 = 0;

/// The NXM header of register `n` (4 bytes wide).
pub fn reg_header(n: u8) -> u32 {
    (u32::from(class::NXM_1) << 16) | (u32::from(n) << 9) | 4
}

/// A match on register `n`.
pub fn reg_match(n: u8, value: u32) -> Oxm {
    Oxm { class: class::NXM_1, field: n, experimenter: None, value: OxmBytes::new(&value.to_be_bytes()), mask: None }
}

/// `multipath(symmetric_l4, 0, modulo_n, links - 1, 0, reg<n>[0..16])`: one of `links`
/// choices by a hash both directions of a connection share, into register `reg`.
pub fn multipath_symmetric(links: u16, reg: u8) -> Action {
    let mut body = Vec::with_capacity(22);
    body.extend_from_slice(&NX_HASH_FIELDS_SYMMETRIC_L4.to_be_bytes());
    body.extend_from_slice(&0u16.to_be_bytes()); // basis
    body.extend_from_slice(&[0; 2]);
    body.extend_from_slice(&NX_MP_ALG_MODULO_N.to_be_bytes());
    body.extend_from_slice(&links.saturating_sub(1).to_be_bytes()); // max_link
    body.extend_from_slice(&0u32.to_be_bytes()); // arg
    body.extend_from_slice(&[0; 2]);
    body.extend_from_slice(&15u16.to_be_bytes()); // ofs 0, 16 bits
    body.extend_from_slice(&reg_header(reg).to_be_bytes());
    Action::Nicira { subtype: NXAST_MULTIPATH, body }
}

/// The destination register of a `multipath` action made by [`multipath_symmetric`].
pub fn multipath_reg(action: &Action) -> Option<u8> {
    let Action::Nicira { subtype: NXAST_MULTIPATH, body } = action else { return None };
    let dst = u32::from_be_bytes(body.get(18..22)?.try_into().ok()?);
    (dst >> 16 == u32::from(class::NXM_1)).then_some(((dst >> 9) & 0x7f) as u8)
}

/// `ct_clear`.
pub fn ct_clear() -> Action {
    Action::Nicira { subtype: NXAST_CT_CLEAR, body: vec![0; 4] }
}

/// A `ct_state` match: the bits of `mask` must equal those of `value`.
pub fn ct_state_match(value: u32, mask: u32) -> Oxm {
    Oxm {
        class: class::NXM_1,
        field: NXM_CT_STATE,
        experimenter: None,
        value: OxmBytes::new(&value.to_be_bytes()),
        mask: Some(OxmBytes::new(&mask.to_be_bytes())),
    }
}

/// The `ct_state` value and mask of a match field, if it is one.
pub fn ct_state_of(oxm: &Oxm) -> Option<(u32, u32)> {
    if oxm.class != class::NXM_1 || oxm.field != NXM_CT_STATE {
        return None;
    }
    let v = oxm.value.to_u128() as u32;
    let m = oxm.mask.as_ref().map_or(u32::MAX, |m| m.to_u128() as u32);
    Some((v, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_round_trips_through_the_codec() {
        for ct in [Ct { commit: true, zone: 7, table: None }, Ct { commit: false, zone: 65535, table: Some(11) }] {
            let a = ct.to_action();
            let mut bytes = Vec::new();
            a.emit(&mut bytes);
            // nx_action_conntrack without nested actions is 24 bytes.
            assert_eq!(bytes.len(), 24);
            let (rest, back) = Action::parse(&bytes).expect("parses");
            assert!(rest.is_empty());
            assert_eq!(Ct::from_action(&back), Some(ct));
        }
        let mut bytes = Vec::new();
        ct_clear().emit(&mut bytes);
        assert_eq!(bytes.len(), 16);
    }

    #[test]
    fn ct_state_field_reads_back() {
        let f = ct_state_match(ct_state::TRK | ct_state::EST, ct_state::TRK | ct_state::EST);
        assert_eq!(ct_state_of(&f), Some((0x22, 0x22)));
        assert_eq!(f.to_string(), "ct_state=34/34");
    }
}
