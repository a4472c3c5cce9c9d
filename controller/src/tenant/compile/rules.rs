//! Security-group rules as match fields, shared by the two ACL tables, plus the
//! match-building helpers every table uses.

use std::net::Ipv4Addr;

use crate::tenant::state::{Direction, Port, Rule, State};
use crate::wire::of13::oxm::ofb;
use crate::wire::of13::Oxm;

use super::Plan;

pub const ETH_IPV4: u16 = 0x0800;
pub const ETH_ARP: u16 = 0x0806;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_SCTP: u8 = 132;

pub fn ip_proto(p: u8) -> Oxm {
    Oxm::basic(ofb::IP_PROTO, &[p])
}

/// An IPv4 prefix on `field` (no mask for /32; nothing for /0).
pub fn ipv4(field: u8, addr: Ipv4Addr, len: u8) -> Option<Oxm> {
    match len {
        0 => None,
        32 => Some(Oxm::basic(field, &addr.octets())),
        _ => {
            let mask = u32::MAX << (32 - u32::from(len.min(32)));
            let value = u32::from(addr) & mask;
            Some(Oxm::basic_masked(field, &value.to_be_bytes(), &mask.to_be_bytes()))
        }
    }
}

/// A 16-bit field with an optional mask (no mask when it is all ones).
pub fn u16_field(field: u8, value: u16, mask: u16) -> Oxm {
    if mask == u16::MAX {
        Oxm::basic(field, &value.to_be_bytes())
    } else {
        Oxm::basic_masked(field, &value.to_be_bytes(), &mask.to_be_bytes())
    }
}

/// The (value, mask) pairs that together cover exactly `lo..=hi`.
pub fn range_masks(lo: u16, hi: u16) -> Vec<(u16, u16)> {
    let (mut lo, hi) = (u32::from(lo), u32::from(hi));
    let mut out = Vec::new();
    while lo <= hi {
        // The largest aligned block starting at lo that stays within hi.
        let mut size = if lo == 0 { 1 << 16 } else { 1u32 << lo.trailing_zeros() };
        while lo + size - 1 > hi {
            size >>= 1;
        }
        out.push((lo as u16, !(size - 1) as u16));
        lo += size;
    }
    out
}

/// Whether the port's filtering is stateful (Neutron: a port's groups are all
/// stateful or all stateless; a group we do not know counts as stateful).
pub fn stateful(state: &State, port: &Port) -> bool {
    port.security_groups.iter().any(|g| state.groups.get(g).map_or(true, |g| g.stateful))
}

/// The rules of the port's groups in `direction`.
pub fn port_rules<'a>(state: &'a State, port: &'a Port, direction: Direction) -> impl Iterator<Item = &'a Rule> + 'a {
    state.rules.values().filter(move |r| r.direction == direction && port.security_groups.contains(&r.group_id))
}

/// One alternative of a rule: match fields, plus metadata bits (value, mask) that must
/// be set (a remote group's membership bit from the remote-group table).
pub type RuleMatch = (Vec<Oxm>, u64);

/// The match fields of one rule, as alternatives (port ranges expand into several, and
/// so do remote groups without a membership bit). `direction` decides which address is
/// the remote one.
pub fn rule_matches(rule: &Rule, plan: &Plan, bits: &super::remote::GroupBits) -> Vec<RuleMatch> {
    let remote_field = match rule.direction {
        Direction::Ingress => ofb::IPV4_SRC,
        Direction::Egress => ofb::IPV4_DST,
    };
    let remotes: Vec<(Option<Oxm>, u64)> = match (&rule.remote_group, rule.remote_ip) {
        (Some(g), _) => match bits.get(g) {
            Some(bit) => vec![(None, *bit)],
            None => plan.members.get(g).into_iter().flatten().map(|(_, ip)| (ipv4(remote_field, *ip, 32), 0)).collect(),
        },
        (None, Some((addr, len))) => vec![(ipv4(remote_field, addr, len), 0)],
        (None, None) => vec![(None, 0)],
    };
    let l4: Vec<Vec<Oxm>> = match rule.protocol {
        Some(p @ (PROTO_TCP | PROTO_UDP | PROTO_SCTP)) => {
            let field = match p {
                PROTO_TCP => ofb::TCP_DST,
                PROTO_UDP => ofb::UDP_DST,
                _ => ofb::SCTP_DST,
            };
            match (rule.port_min, rule.port_max) {
                (None, None) => vec![vec![]],
                (lo, hi) => {
                    let lo = lo.unwrap_or(0);
                    let hi = hi.unwrap_or(u16::MAX).max(lo);
                    if lo == 0 && hi == u16::MAX {
                        vec![vec![]]
                    } else {
                        range_masks(lo, hi).into_iter().map(|(v, m)| vec![u16_field(field, v, m)]).collect()
                    }
                }
            }
        }
        Some(PROTO_ICMP) => {
            let mut f = Vec::new();
            if let Some(t) = rule.port_min.and_then(|t| u8::try_from(t).ok()) {
                f.push(Oxm::basic(ofb::ICMPV4_TYPE, &[t]));
                if let Some(c) = rule.port_max.and_then(|c| u8::try_from(c).ok()) {
                    f.push(Oxm::basic(ofb::ICMPV4_CODE, &[c]));
                }
            }
            vec![f]
        }
        _ => vec![vec![]],
    };
    let mut out = Vec::new();
    for (remote, bit) in &remotes {
        for l4 in &l4 {
            let mut fields = vec![Oxm::eth_type(ETH_IPV4)];
            if let Some(p) = rule.protocol {
                fields.push(ip_proto(p));
            }
            fields.extend(remote.iter().cloned());
            fields.extend(l4.iter().cloned());
            out.push((fields, *bit));
        }
    }
    out
}

/// A metadata match of `value`/`mask` merged with group bits, or nothing when both are empty.
pub fn metadata_with(value: u64, mask: u64, bits: u64) -> Option<Oxm> {
    let (v, m) = (value | bits, mask | bits);
    (m != 0).then(|| Oxm::metadata(v, Some(m)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(parts: &[(u16, u16)]) -> Vec<u16> {
        (0..=u16::MAX).filter(|p| parts.iter().any(|(v, m)| p & m == *v)).collect()
    }

    #[test]
    fn ranges_become_exact_mask_covers() {
        assert_eq!(range_masks(22, 22), vec![(22, 0xffff)]);
        assert_eq!(range_masks(0, 65535), vec![(0, 0)]);
        for (lo, hi) in [(1, 1023), (1000, 2000), (8080, 8089), (0, 0), (65535, 65535), (1, 65535)] {
            let parts = range_masks(lo, hi);
            assert_eq!(covered(&parts), (lo..=hi).collect::<Vec<_>>(), "{lo}-{hi}");
            // No overlaps: the blocks' sizes add up to the range.
            let total: u32 = parts.iter().map(|(_, m)| u32::from(!m) + 1).sum();
            assert_eq!(total, u32::from(hi - lo) + 1);
        }
    }

    #[test]
    fn prefixes_drop_host_bits_and_full_masks() {
        assert_eq!(ipv4(ofb::IPV4_SRC, Ipv4Addr::new(10, 1, 2, 3), 0), None);
        assert_eq!(ipv4(ofb::IPV4_SRC, Ipv4Addr::new(10, 1, 2, 3), 32).map(|o| o.mask.is_none()), Some(true));
        let o = ipv4(ofb::IPV4_SRC, Ipv4Addr::new(10, 1, 2, 3), 16).expect("masked");
        assert_eq!(o.to_string(), "ipv4_src=10.1.0.0/255.255.0.0");
    }
}
