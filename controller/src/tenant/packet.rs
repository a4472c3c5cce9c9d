//! ARP and DHCP frames the controller answers itself.
//!
//! In tenant mode the network API knows every port's MAC and IP address, so
//! the controller answers ARP requests and runs the DHCP server instead of
//! flooding those broadcasts. This module is the pure half of that: it parses
//! the Ethernet frames carried by PACKET_INs and builds the reply frames that
//! go back out in PACKET_OUTs. It does no I/O.
//!
//! Parsing never panics and never trusts a length field: every malformed,
//! truncated or unsupported frame gives `None`. Frames may carry one 802.1Q
//! tag, which parsing skips; replies are always untagged (the switch pushes
//! the tag back if the port needs one).
//!
//! Field offsets are named in a private module per header (`arp_field`,
//! `bootp_field`, ...), following smoltcp's `wire` modules.

use std::net::Ipv4Addr;

/// An Ethernet (MAC-48) address.
pub type Mac = [u8; 6];

/// The Ethernet broadcast address.
pub const BROADCAST_MAC: Mac = [0xff; 6];
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType (TPID) of an 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// UDP port of DHCP servers (and relay agents).
pub const DHCP_SERVER_PORT: u16 = 67;
/// UDP port of DHCP clients.
pub const DHCP_CLIENT_PORT: u16 = 68;
/// ARP operation code of a request.
pub const ARP_OP_REQUEST: u16 = 1;
/// ARP operation code of a reply.
pub const ARP_OP_REPLY: u16 = 2;

const ETH_HEADER_LEN: usize = 14;
const VLAN_TAG_LEN: usize = 4;
/// Shortest Ethernet frame without its FCS; shorter frames are padded.
const ETH_MIN_FRAME_LEN: usize = 60;
const IPV4_HEADER_LEN: usize = 20;
const IP_PROTO_UDP: u8 = 17;
const UDP_HEADER_LEN: usize = 8;
const REPLY_TTL: u8 = 64;

mod eth_field {
    pub const DST: usize = 0;
    pub const SRC: usize = 6;
    pub const ETHERTYPE: usize = 12;
    /// Tag control information, when the EtherType field holds the VLAN TPID.
    pub const VLAN_TCI: usize = 14;
    pub const INNER_ETHERTYPE: usize = 16;
}

mod arp_field {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
    pub const LEN: usize = 28;
}

mod ipv4_field {
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: usize = 2;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

mod udp_field {
    pub const DST_PORT: usize = 2;
    pub const LEN: usize = 4;
    pub const CHECKSUM: usize = 6;
}

mod bootp_field {
    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const HOPS: usize = 3;
    pub const XID: usize = 4;
    pub const FLAGS: usize = 10;
    pub const CIADDR: usize = 12;
    pub const GIADDR: usize = 24;
    pub const CHADDR: usize = 28;
    pub const CHADDR_LEN: usize = 16;
    /// `sname` (64 bytes) and `file` (128 bytes), unused by us.
    pub const SNAME_FILE_LEN: usize = 192;
    pub const COOKIE: usize = 236;
    pub const OPTIONS: usize = 240;
}

const BOOTREQUEST: u8 = 1;
const BOOTREPLY: u8 = 2;
const HTYPE_ETHERNET: u8 = 1;
const DHCP_MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// The BROADCAST bit of the BOOTP `flags` field (RFC 2131 figure 2).
pub const DHCP_FLAG_BROADCAST: u16 = 0x8000;
/// Some clients drop BOOTP messages shorter than the original BOOTP minimum.
const MIN_BOOTP_LEN: usize = 300;

mod dhcp_option {
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const ROUTER: u8 = 3;
    pub const DNS: u8 = 6;
    pub const DOMAIN_NAME: u8 = 15;
    pub const INTERFACE_MTU: u8 = 26;
    pub const REQUESTED_IP: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const RENEWAL_TIME: u8 = 58;
    pub const REBINDING_TIME: u8 = 59;
    pub const CLASSLESS_ROUTES: u8 = 121;
    pub const END: u8 = 255;
}

// ---------------------------------------------------------------------------
// Byte access: every read is bounds-checked and returns `None` past the end.

fn byte(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}

fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    array(b, at).map(u16::from_be_bytes)
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    array(b, at).map(u32::from_be_bytes)
}

fn read_ipv4(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    array::<4>(b, at).map(Ipv4Addr::from)
}

// ---------------------------------------------------------------------------
// Ethernet

/// An Ethernet frame's header, with at most one 802.1Q tag removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<'a> {
    /// Destination MAC.
    pub dst: Mac,
    /// Source MAC.
    pub src: Mac,
    /// VLAN ID of the 802.1Q tag, if the frame had one.
    pub vlan: Option<u16>,
    /// EtherType of the payload (after the tag, if any).
    pub ethertype: u16,
    /// Everything after the header, including any trailing Ethernet padding.
    pub payload: &'a [u8],
}

/// Parses an Ethernet header, skipping one 802.1Q tag. `None` if truncated.
pub fn parse_ethernet(frame: &[u8]) -> Option<EthernetFrame<'_>> {
    let dst = array(frame, eth_field::DST)?;
    let src = array(frame, eth_field::SRC)?;
    let outer = read_u16(frame, eth_field::ETHERTYPE)?;
    let (vlan, ethertype, header_len) = if outer == ETHERTYPE_VLAN {
        let tci = read_u16(frame, eth_field::VLAN_TCI)?;
        (Some(tci & 0x0fff), read_u16(frame, eth_field::INNER_ETHERTYPE)?, ETH_HEADER_LEN + VLAN_TAG_LEN)
    } else {
        (None, outer, ETH_HEADER_LEN)
    };
    Some(EthernetFrame { dst, src, vlan, ethertype, payload: frame.get(header_len..)? })
}

fn push_ethernet_header(out: &mut Vec<u8>, dst: Mac, src: Mac, ethertype: u16) {
    out.extend_from_slice(&dst);
    out.extend_from_slice(&src);
    out.extend_from_slice(&ethertype.to_be_bytes());
}

// ---------------------------------------------------------------------------
// ARP

/// An Ethernet/IPv4 ARP packet (RFC 826), any operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// Operation: [`ARP_OP_REQUEST`], [`ARP_OP_REPLY`], or anything else.
    pub op: u16,
    /// Sender hardware address.
    pub sha: Mac,
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address (zero in requests).
    pub tha: Mac,
    /// Target protocol address: the address being resolved in a request.
    pub tpa: Ipv4Addr,
}

/// Parses an Ethernet/IPv4 ARP packet from an Ethernet frame (optionally
/// VLAN-tagged). `None` for other EtherTypes, hardware or protocol types,
/// and truncated packets.
pub fn parse_arp(frame: &[u8]) -> Option<Arp> {
    let eth = parse_ethernet(frame)?;
    if eth.ethertype != ETHERTYPE_ARP {
        return None;
    }
    parse_arp_payload(eth.payload)
}

fn parse_arp_payload(p: &[u8]) -> Option<Arp> {
    if p.len() < arp_field::LEN
        || read_u16(p, arp_field::HTYPE)? != u16::from(HTYPE_ETHERNET)
        || read_u16(p, arp_field::PTYPE)? != ETHERTYPE_IPV4
        || byte(p, arp_field::HLEN)? != 6
        || byte(p, arp_field::PLEN)? != 4
    {
        return None;
    }
    Some(Arp {
        op: read_u16(p, arp_field::OPER)?,
        sha: array(p, arp_field::SHA)?,
        spa: read_ipv4(p, arp_field::SPA)?,
        tha: array(p, arp_field::THA)?,
        tpa: read_ipv4(p, arp_field::TPA)?,
    })
}

/// An ARP request the controller may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRequest {
    /// The requester's hardware address, from the ARP payload.
    pub sender_mac: Mac,
    /// The requester's IPv4 address (0.0.0.0 for an address probe, RFC 5227).
    pub sender_ip: Ipv4Addr,
    /// The address being resolved.
    pub target_ip: Ipv4Addr,
    /// The Ethernet source of the frame that carried the request.
    pub eth_src: Mac,
}

impl ArpRequest {
    /// A gratuitous ARP announces the sender's own address; nobody should answer it.
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip == self.target_ip
    }
}

/// Parses an Ethernet/IPv4 ARP request (operation 1). Gratuitous requests
/// (sender IP == target IP) are returned too; see [`ArpRequest::is_gratuitous`].
pub fn parse_arp_request(frame: &[u8]) -> Option<ArpRequest> {
    let eth = parse_ethernet(frame)?;
    if eth.ethertype != ETHERTYPE_ARP {
        return None;
    }
    let arp = parse_arp_payload(eth.payload)?;
    if arp.op != ARP_OP_REQUEST {
        return None;
    }
    Some(ArpRequest { sender_mac: arp.sha, sender_ip: arp.spa, target_ip: arp.tpa, eth_src: eth.src })
}

/// Builds the untagged ARP reply to `req`, saying `req.target_ip` is at
/// `answer_mac`. The frame goes from `answer_mac` to the requester's Ethernet
/// source and is padded to the 60-byte Ethernet minimum.
pub fn arp_reply(req: &ArpRequest, answer_mac: Mac) -> Vec<u8> {
    let mut out = Vec::with_capacity(ETH_MIN_FRAME_LEN);
    push_ethernet_header(&mut out, req.eth_src, answer_mac, ETHERTYPE_ARP);
    out.extend_from_slice(&u16::from(HTYPE_ETHERNET).to_be_bytes());
    out.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    out.extend_from_slice(&[6, 4]);
    out.extend_from_slice(&ARP_OP_REPLY.to_be_bytes());
    out.extend_from_slice(&answer_mac);
    out.extend_from_slice(&req.target_ip.octets());
    out.extend_from_slice(&req.sender_mac);
    out.extend_from_slice(&req.sender_ip.octets());
    out.resize(ETH_MIN_FRAME_LEN, 0);
    out
}

// ---------------------------------------------------------------------------
// IPv4 and UDP

/// The parts of an IPv4 packet we use.
struct Ipv4Packet<'a> {
    src: Ipv4Addr,
    protocol: u8,
    /// The payload, cut at the header's total length (drops Ethernet padding).
    payload: &'a [u8],
}

/// Parses an unfragmented IPv4 packet with any header length. The header
/// checksum is not verified: the frame came from a switch, not a wire.
fn parse_ipv4(p: &[u8]) -> Option<Ipv4Packet<'_>> {
    let ver_ihl = byte(p, ipv4_field::VER_IHL)?;
    let header_len = usize::from(ver_ihl & 0x0f) * 4;
    let total_len = usize::from(read_u16(p, ipv4_field::TOTAL_LEN)?);
    // MF flag (0x2000) or a nonzero fragment offset: a fragment.
    let fragment = read_u16(p, ipv4_field::FLAGS_FRAG)? & 0x3fff != 0;
    if ver_ihl >> 4 != 4 || header_len < IPV4_HEADER_LEN || total_len < header_len || fragment {
        return None;
    }
    Some(Ipv4Packet {
        src: read_ipv4(p, ipv4_field::SRC)?,
        protocol: byte(p, ipv4_field::PROTOCOL)?,
        payload: p.get(header_len..total_len)?,
    })
}

/// The parts of a UDP datagram we use.
struct UdpDatagram<'a> {
    dst_port: u16,
    payload: &'a [u8],
}

/// Parses a UDP datagram, cut at its length field. The checksum is not verified.
fn parse_udp(d: &[u8]) -> Option<UdpDatagram<'_>> {
    let len = usize::from(read_u16(d, udp_field::LEN)?);
    if len < UDP_HEADER_LEN {
        return None;
    }
    Some(UdpDatagram { dst_port: read_u16(d, udp_field::DST_PORT)?, payload: d.get(UDP_HEADER_LEN..len)? })
}

/// The Ethernet frame, IPv4 packet and UDP datagram, if the frame carries UDP over IPv4.
fn parse_ipv4_udp(frame: &[u8]) -> Option<(EthernetFrame<'_>, Ipv4Packet<'_>, UdpDatagram<'_>)> {
    let eth = parse_ethernet(frame)?;
    if eth.ethertype != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = parse_ipv4(eth.payload)?;
    if ip.protocol != IP_PROTO_UDP {
        return None;
    }
    let udp = parse_udp(ip.payload)?;
    Some((eth, ip, udp))
}

/// Adds `data` as big-endian 16-bit words to a one's-complement running sum
/// (an odd last byte is padded with zero, RFC 1071).
fn ones_complement_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut words = data.chunks_exact(2);
    for word in &mut words {
        let value = word.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
        sum = fold_carries(sum + value);
    }
    if let Some(last) = words.remainder().first() {
        sum = fold_carries(sum + (u32::from(*last) << 8));
    }
    sum
}

fn fold_carries(mut sum: u32) -> u32 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

/// The Internet checksum (RFC 1071) of an IPv4 header: the value to store in
/// its checksum field when computed with that field zeroed. Over a header
/// whose checksum is already correct it returns 0.
pub fn ipv4_checksum(header: &[u8]) -> u16 {
    // `fold_carries` keeps the sum within 16 bits, so the cast loses nothing.
    !(ones_complement_add(0, header) as u16)
}

/// The UDP checksum (RFC 768) of `segment` (header with a zero checksum
/// field, then payload) inside an IPv4 packet from `src` to `dst`.
fn udp_checksum(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) -> u16 {
    let mut sum = ones_complement_add(0, &src.octets());
    sum = ones_complement_add(sum, &dst.octets());
    sum = ones_complement_add(sum, &[0, IP_PROTO_UDP]);
    // Our segments are far below 64 KiB; the length wraps rather than panics.
    sum = ones_complement_add(sum, &(segment.len() as u16).to_be_bytes());
    sum = ones_complement_add(sum, segment);
    match !(sum as u16) {
        // A computed zero is sent as all ones; zero means "no checksum".
        0 => 0xffff,
        checksum => checksum,
    }
}

/// Where a frame goes: Ethernet and IP destination and UDP port.
struct Destination {
    mac: Mac,
    ip: Ipv4Addr,
    port: u16,
}

/// Builds an untagged Ethernet/IPv4/UDP frame with both checksums filled in.
fn ipv4_udp_frame(src_mac: Mac, src_ip: Ipv4Addr, src_port: u16, dst: &Destination, payload: &[u8]) -> Vec<u8> {
    let udp_len = UDP_HEADER_LEN + payload.len();
    let total_len = IPV4_HEADER_LEN + udp_len;
    let mut out = Vec::with_capacity(ETH_HEADER_LEN + total_len);
    push_ethernet_header(&mut out, dst.mac, src_mac, ETHERTYPE_IPV4);

    let mut ip = [0u8; IPV4_HEADER_LEN];
    ip[ipv4_field::VER_IHL] = 0x45;
    // Callers build DHCP messages of a few hundred bytes; the lengths fit in u16.
    ip[ipv4_field::TOTAL_LEN..][..2].copy_from_slice(&(total_len as u16).to_be_bytes());
    ip[ipv4_field::TTL] = REPLY_TTL;
    ip[ipv4_field::PROTOCOL] = IP_PROTO_UDP;
    ip[ipv4_field::SRC..][..4].copy_from_slice(&src_ip.octets());
    ip[ipv4_field::DST..][..4].copy_from_slice(&dst.ip.octets());
    let checksum = ipv4_checksum(&ip);
    ip[ipv4_field::CHECKSUM..][..2].copy_from_slice(&checksum.to_be_bytes());
    out.extend_from_slice(&ip);

    let mut udp = Vec::with_capacity(udp_len);
    udp.extend_from_slice(&src_port.to_be_bytes());
    udp.extend_from_slice(&dst.port.to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let checksum = udp_checksum(src_ip, dst.ip, &udp);
    udp[udp_field::CHECKSUM..][..2].copy_from_slice(&checksum.to_be_bytes());
    out.extend_from_slice(&udp);
    out
}

/// The UDP port of the controller's health probes through IPS instances.
pub const PROBE_PORT: u16 = 7;
const PROBE_MAGIC: &[u8] = b"tenet-probe ";

/// A health probe for IPS instance `pair_id`: a UDP datagram from `src_mac` (link-local
/// addresses), which an inline appliance passes like any traffic.
pub fn probe_frame(src_mac: Mac, pair_id: &str) -> Vec<u8> {
    let dst = Destination { mac: [0x02, 0x74, 0x6e, 0, 0, 3], ip: Ipv4Addr::new(169, 254, 0, 2), port: PROBE_PORT };
    let mut payload = PROBE_MAGIC.to_vec();
    payload.extend_from_slice(pair_id.as_bytes());
    ipv4_udp_frame(src_mac, Ipv4Addr::new(169, 254, 0, 1), PROBE_PORT, &dst, &payload)
}

/// The instance a probe that came back was sent through.
pub fn parse_probe(frame: &[u8]) -> Option<String> {
    let (_, _, udp) = parse_ipv4_udp(frame)?;
    let id = udp.payload.strip_prefix(PROBE_MAGIC).filter(|_| udp.dst_port == PROBE_PORT)?;
    String::from_utf8(id.to_vec()).ok()
}

/// The netmask of a prefix length (`/24` -> 255.255.255.0); lengths above 32 mean 32.
pub fn prefix_to_mask(len: u8) -> Ipv4Addr {
    let len = u32::from(len.min(32));
    Ipv4Addr::from(u32::MAX.checked_shl(32 - len).unwrap_or(0))
}

// ---------------------------------------------------------------------------
// DHCP

/// The DHCP message type (option 53, RFC 2132 9.6); the discriminants are the option's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DhcpMessageType {
    /// A client looks for servers.
    Discover = 1,
    /// A server offers an address.
    Offer = 2,
    /// A client asks for an offered address, or to confirm or extend its lease.
    Request = 3,
    /// A client found the address already in use.
    Decline = 4,
    /// A server confirms a lease.
    Ack = 5,
    /// A server refuses a request (wrong address or subnet, lease expired).
    Nak = 6,
    /// A client gives its address up.
    Release = 7,
    /// A client with an address asks only for configuration.
    Inform = 8,
}

impl DhcpMessageType {
    /// The message type of an option-53 value, `None` if unknown.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Discover,
            2 => Self::Offer,
            3 => Self::Request,
            4 => Self::Decline,
            5 => Self::Ack,
            6 => Self::Nak,
            7 => Self::Release,
            8 => Self::Inform,
            _ => return None,
        })
    }

    /// The option-53 value.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// A DHCP message from a client (or relayed by a relay agent), as the server needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpRequest {
    /// Transaction ID, echoed in the reply.
    pub xid: u32,
    /// The client's hardware address.
    pub chaddr: Mac,
    /// Option 53.
    pub msg_type: DhcpMessageType,
    /// Option 50: the address the client asks for (SELECTING, INIT-REBOOT).
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54: the server the client chose (SELECTING).
    pub server_id: Option<Ipv4Addr>,
    /// The client's current address (RENEWING, REBINDING, INFORM), else 0.0.0.0.
    pub ciaddr: Ipv4Addr,
    /// BOOTP flags; see [`DHCP_FLAG_BROADCAST`].
    pub flags: u16,
    /// Ethernet source of the frame (the client, or the relay agent).
    pub eth_src: Mac,
    /// IP source of the packet (0.0.0.0 from clients without an address).
    pub ip_src: Ipv4Addr,
    /// Relay hops.
    pub hops: u8,
    /// The relay agent's address, 0.0.0.0 when not relayed.
    pub giaddr: Ipv4Addr,
}

/// Calls `f(code, data)` for every option in a DHCP options field, skipping
/// pads and stopping at the end option (or the end of the field, for senders
/// that omit it). `None` if an option runs past the end of the field.
fn for_each_option<'a>(mut opts: &'a [u8], mut f: impl FnMut(u8, &'a [u8])) -> Option<()> {
    while let Some((&code, rest)) = opts.split_first() {
        match code {
            dhcp_option::PAD => opts = rest,
            dhcp_option::END => break,
            _ => {
                let (&len, rest) = rest.split_first()?;
                let data = rest.get(..usize::from(len))?;
                f(code, data);
                opts = rest.get(usize::from(len)..)?;
            }
        }
    }
    Some(())
}

/// Parses a DHCP message sent to a server: Ethernet (optionally VLAN-tagged),
/// unfragmented IPv4, UDP to port 67, a BOOTREQUEST for an Ethernet address
/// with the DHCP magic cookie, and a known message type (option 53). Options
/// 50 and 54 must be 4 bytes long if present. Option overload (52) is not
/// supported: `sname` and `file` are ignored. `None` for anything else.
pub fn parse_dhcp(frame: &[u8]) -> Option<DhcpRequest> {
    let (eth, ip, udp) = parse_ipv4_udp(frame)?;
    if udp.dst_port != DHCP_SERVER_PORT {
        return None;
    }
    let b = udp.payload;
    if byte(b, bootp_field::OP)? != BOOTREQUEST
        || byte(b, bootp_field::HTYPE)? != HTYPE_ETHERNET
        || byte(b, bootp_field::HLEN)? != 6
        || array::<4>(b, bootp_field::COOKIE)? != DHCP_MAGIC_COOKIE
    {
        return None;
    }

    let mut msg_type = None;
    let mut requested_ip = None;
    let mut server_id = None;
    let mut well_formed = true;
    let addr = |data: &[u8]| <[u8; 4]>::try_from(data).ok().map(Ipv4Addr::from);
    for_each_option(b.get(bootp_field::OPTIONS..)?, |code, data| match code {
        dhcp_option::MESSAGE_TYPE => {
            msg_type = match data {
                [value] => DhcpMessageType::from_code(*value),
                _ => None,
            };
        }
        dhcp_option::REQUESTED_IP => {
            requested_ip = addr(data);
            well_formed &= requested_ip.is_some();
        }
        dhcp_option::SERVER_ID => {
            server_id = addr(data);
            well_formed &= server_id.is_some();
        }
        _ => {}
    })?;
    if !well_formed {
        return None;
    }

    Some(DhcpRequest {
        xid: read_u32(b, bootp_field::XID)?,
        chaddr: array(b, bootp_field::CHADDR)?,
        msg_type: msg_type?,
        requested_ip,
        server_id,
        ciaddr: read_ipv4(b, bootp_field::CIADDR)?,
        flags: read_u16(b, bootp_field::FLAGS)?,
        eth_src: eth.src,
        ip_src: ip.src,
        hops: byte(b, bootp_field::HOPS)?,
        giaddr: read_ipv4(b, bootp_field::GIADDR)?,
    })
}

/// What the server hands a client: its address and network configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The client's address (`yiaddr`).
    pub your_ip: Ipv4Addr,
    /// The server's address: IP source, `siaddr` and server identifier (option 54).
    pub server_ip: Ipv4Addr,
    /// The server's MAC, the Ethernet source of replies.
    pub server_mac: Mac,
    /// Option 1.
    pub subnet_mask: Ipv4Addr,
    /// Option 3, the default gateway.
    pub router: Option<Ipv4Addr>,
    /// Option 6, omitted when empty.
    pub dns: Vec<Ipv4Addr>,
    /// Option 121 (RFC 3442): (destination network, prefix length, next hop).
    /// Routes with a prefix length above 32 are skipped.
    pub routes: Vec<(Ipv4Addr, u8, Ipv4Addr)>,
    /// Option 26.
    pub mtu: Option<u16>,
    /// Option 51, seconds (`u32::MAX` means infinite).
    pub lease_secs: u32,
    /// Option 15, omitted when `None` or empty.
    pub domain_name: Option<String>,
}

/// Appends option `code` with `data`, split into several instances when
/// longer than 255 bytes (RFC 3396; the client concatenates them).
fn push_option(out: &mut Vec<u8>, code: u8, data: &[u8]) {
    if data.is_empty() {
        out.extend_from_slice(&[code, 0]);
    }
    for chunk in data.chunks(usize::from(u8::MAX)) {
        out.push(code);
        // `chunks(255)` bounds the length.
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
}

/// Encodes classless static routes as option 121's value (RFC 3442): per
/// route the prefix length, the significant octets of the destination
/// (`ceil(len / 8)`, host bits cleared), then the next hop. With
/// `default_via`, a default route through it is appended unless `routes`
/// already has one, because clients ignore option 3 when option 121 is present.
fn encode_classless_routes(routes: &[(Ipv4Addr, u8, Ipv4Addr)], default_via: Option<Ipv4Addr>) -> Vec<u8> {
    let has_default = routes.iter().any(|&(_, len, _)| len == 0);
    let default = default_via.filter(|_| !has_default).map(|gw| (Ipv4Addr::UNSPECIFIED, 0, gw));
    let mut out = Vec::new();
    for (dest, len, next_hop) in routes.iter().copied().chain(default) {
        if len > 32 {
            continue;
        }
        let dest = u32::from(dest) & u32::from(prefix_to_mask(len));
        let significant = usize::from(len).div_ceil(8);
        out.push(len);
        out.extend(dest.to_be_bytes().iter().take(significant));
        out.extend_from_slice(&next_hop.octets());
    }
    out
}

/// Builds the server's reply to `req`: an untagged Ethernet/IPv4/UDP frame
/// from `lease.server_mac`/`lease.server_ip` port 67 carrying a BOOTREPLY of
/// type `msg_type` (meant for `Offer`, `Ack` or `Nak`).
///
/// The reply echoes `xid`, `flags`, `chaddr` and `giaddr`; `yiaddr` is
/// `lease.your_ip` (0.0.0.0 in a NAK and in the ACK to an INFORM), `siaddr`
/// the server (0.0.0.0 in a NAK), and an ACK copies `ciaddr`. Options: 53,
/// 54, then unless NAK: 51/58/59 (not for INFORM), 1, 3, 6, 15, 26, 121.
///
/// Addressing follows RFC 2131 4.1: through a relay (`giaddr` set) to the
/// relay's port 67 (NAKs get the broadcast bit); else NAKs and requests with
/// the broadcast bit are broadcast; else to `ciaddr` if set, else to
/// `yiaddr` at `chaddr`.
pub fn dhcp_reply(req: &DhcpRequest, msg_type: DhcpMessageType, lease: &Lease) -> Vec<u8> {
    let nak = msg_type == DhcpMessageType::Nak;
    let inform = req.msg_type == DhcpMessageType::Inform;
    let relayed = !req.giaddr.is_unspecified();
    let yiaddr = if nak || inform { Ipv4Addr::UNSPECIFIED } else { lease.your_ip };
    let ciaddr = if msg_type == DhcpMessageType::Ack { req.ciaddr } else { Ipv4Addr::UNSPECIFIED };
    let siaddr = if nak { Ipv4Addr::UNSPECIFIED } else { lease.server_ip };
    // RFC 2131 4.3.2: a NAK through a relay asks it to broadcast to the client.
    let flags = if nak && relayed { req.flags | DHCP_FLAG_BROADCAST } else { req.flags };

    let mut bootp = Vec::with_capacity(MIN_BOOTP_LEN + 64);
    bootp.extend_from_slice(&[BOOTREPLY, HTYPE_ETHERNET, 6, 0]);
    bootp.extend_from_slice(&req.xid.to_be_bytes());
    bootp.extend_from_slice(&[0, 0]); // secs
    bootp.extend_from_slice(&flags.to_be_bytes());
    for addr in [ciaddr, yiaddr, siaddr, req.giaddr] {
        bootp.extend_from_slice(&addr.octets());
    }
    bootp.extend_from_slice(&req.chaddr);
    bootp.resize(bootp_field::CHADDR + bootp_field::CHADDR_LEN + bootp_field::SNAME_FILE_LEN, 0);
    bootp.extend_from_slice(&DHCP_MAGIC_COOKIE);

    push_option(&mut bootp, dhcp_option::MESSAGE_TYPE, &[msg_type.code()]);
    push_option(&mut bootp, dhcp_option::SERVER_ID, &lease.server_ip.octets());
    if !nak {
        if !inform {
            let (t1, t2) = match lease.lease_secs {
                u32::MAX => (u32::MAX, u32::MAX),
                secs => (secs / 2, (u64::from(secs) * 7 / 8) as u32),
            };
            push_option(&mut bootp, dhcp_option::LEASE_TIME, &lease.lease_secs.to_be_bytes());
            push_option(&mut bootp, dhcp_option::RENEWAL_TIME, &t1.to_be_bytes());
            push_option(&mut bootp, dhcp_option::REBINDING_TIME, &t2.to_be_bytes());
        }
        push_option(&mut bootp, dhcp_option::SUBNET_MASK, &lease.subnet_mask.octets());
        if let Some(router) = lease.router {
            push_option(&mut bootp, dhcp_option::ROUTER, &router.octets());
        }
        if !lease.dns.is_empty() {
            let dns: Vec<u8> = lease.dns.iter().flat_map(|ip| ip.octets()).collect();
            push_option(&mut bootp, dhcp_option::DNS, &dns);
        }
        if let Some(domain) = lease.domain_name.as_deref().filter(|d| !d.is_empty()) {
            push_option(&mut bootp, dhcp_option::DOMAIN_NAME, domain.as_bytes());
        }
        if let Some(mtu) = lease.mtu {
            push_option(&mut bootp, dhcp_option::INTERFACE_MTU, &mtu.to_be_bytes());
        }
        let routes = encode_classless_routes(&lease.routes, lease.router);
        if !lease.routes.is_empty() && !routes.is_empty() {
            push_option(&mut bootp, dhcp_option::CLASSLESS_ROUTES, &routes);
        }
    }
    bootp.push(dhcp_option::END);
    if bootp.len() < MIN_BOOTP_LEN {
        bootp.resize(MIN_BOOTP_LEN, 0);
    }

    let dst = if relayed {
        // The request came from the relay, so its Ethernet source is the relay.
        Destination { mac: req.eth_src, ip: req.giaddr, port: DHCP_SERVER_PORT }
    } else if nak || flags & DHCP_FLAG_BROADCAST != 0 {
        Destination { mac: BROADCAST_MAC, ip: Ipv4Addr::BROADCAST, port: DHCP_CLIENT_PORT }
    } else if !req.ciaddr.is_unspecified() {
        Destination { mac: req.chaddr, ip: req.ciaddr, port: DHCP_CLIENT_PORT }
    } else if !yiaddr.is_unspecified() {
        Destination { mac: req.chaddr, ip: yiaddr, port: DHCP_CLIENT_PORT }
    } else {
        Destination { mac: BROADCAST_MAC, ip: Ipv4Addr::BROADCAST, port: DHCP_CLIENT_PORT }
    };
    ipv4_udp_frame(lease.server_mac, lease.server_ip, DHCP_SERVER_PORT, &dst, &bootp)
}

/// The server's decision on `req`, and the reply frame if it answers:
///
/// - DISCOVER: OFFER `lease.your_ip`.
/// - REQUEST naming another server (option 54): `None`, the client chose it.
/// - REQUEST otherwise: ACK if the address it asks for (option 50, else
///   `ciaddr`) is `lease.your_ip` or it asks for none, else NAK (e.g. an
///   INIT-REBOOT client that moved from another subnet).
/// - INFORM: ACK with configuration only.
/// - DECLINE, RELEASE (and server messages): `None`.
pub fn dhcp_answer(req: &DhcpRequest, lease: &Lease) -> Option<(DhcpMessageType, Vec<u8>)> {
    let reply_type = match req.msg_type {
        DhcpMessageType::Discover => DhcpMessageType::Offer,
        DhcpMessageType::Request => {
            if req.server_id.is_some_and(|id| id != lease.server_ip) {
                return None;
            }
            let ciaddr = Some(req.ciaddr).filter(|ip| !ip.is_unspecified());
            match req.requested_ip.filter(|ip| !ip.is_unspecified()).or(ciaddr) {
                Some(asked) if asked != lease.your_ip => DhcpMessageType::Nak,
                _ => DhcpMessageType::Ack,
            }
        }
        DhcpMessageType::Inform => DhcpMessageType::Ack,
        DhcpMessageType::Decline
        | DhcpMessageType::Release
        | DhcpMessageType::Offer
        | DhcpMessageType::Ack
        | DhcpMessageType::Nak => return None,
    };
    Some((reply_type, dhcp_reply(req, reply_type, lease)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT_MAC: Mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    const SERVER_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
    const RELAY_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0xfe];
    const XID: u32 = 0x3903_f326;

    fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
        Ipv4Addr::new(a, b, c, d)
    }

    // --- ARP -----------------------------------------------------------------

    /// An ARP request as Linux sends it: "who has 10.0.0.1? tell 10.0.0.2".
    fn arp_request_frame(vlan: Option<u16>) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&BROADCAST_MAC);
        f.extend_from_slice(&CLIENT_MAC);
        if let Some(vid) = vlan {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]);
        f.extend_from_slice(&CLIENT_MAC);
        f.extend_from_slice(&[10, 0, 0, 2]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&[10, 0, 0, 1]);
        f.resize(60, 0);
        f
    }

    #[test]
    fn probes_round_trip_and_other_frames_are_not_probes() {
        let f = probe_frame([2, 0x74, 0x6e, 0, 0, 2], "pair-1");
        assert_eq!(parse_probe(&f).as_deref(), Some("pair-1"));
        assert_eq!(parse_probe(&arp_request_frame(None)), None);
        for cut in 0..f.len() {
            let _ = parse_probe(&f[..cut]);
        }
    }

    #[test]
    fn arp_request_parses() {
        let req = parse_arp_request(&arp_request_frame(None));
        assert_eq!(
            req,
            Some(ArpRequest {
                sender_mac: CLIENT_MAC,
                sender_ip: ip(10, 0, 0, 2),
                target_ip: ip(10, 0, 0, 1),
                eth_src: CLIENT_MAC
            })
        );
        assert!(!req.is_some_and(|r| r.is_gratuitous()));
    }

    #[test]
    fn arp_request_parses_behind_vlan_tag() {
        let frame = arp_request_frame(Some(0x2064));
        assert_eq!(parse_ethernet(&frame).map(|e| e.vlan), Some(Some(0x064)));
        let req = parse_arp_request(&frame);
        assert_eq!(req.map(|r| (r.sender_ip, r.target_ip)), Some((ip(10, 0, 0, 2), ip(10, 0, 0, 1))));
    }

    #[test]
    fn gratuitous_arp_is_returned_and_marked() {
        let mut frame = arp_request_frame(None);
        frame[38..42].copy_from_slice(&[10, 0, 0, 2]);
        assert!(parse_arp_request(&frame).is_some_and(|r| r.is_gratuitous()));
    }

    #[test]
    fn arp_other_than_ethernet_ipv4_request_is_ignored() {
        let mut reply = arp_request_frame(None);
        reply[21] = 2;
        assert_eq!(parse_arp_request(&reply), None);
        assert_eq!(parse_arp(&reply).map(|a| a.op), Some(ARP_OP_REPLY));
        let mut ipv6_ptype = arp_request_frame(None);
        ipv6_ptype[16..18].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(parse_arp(&ipv6_ptype), None);
        let mut not_arp = arp_request_frame(None);
        not_arp[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(parse_arp(&not_arp), None);
    }

    #[test]
    fn arp_reply_fields() {
        let req = parse_arp_request(&arp_request_frame(Some(7))).expect("valid request");
        let answer: Mac = [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
        let f = arp_reply(&req, answer);
        assert_eq!(f.len(), 60);
        assert_eq!(f[0..6], CLIENT_MAC, "eth dst: the requester");
        assert_eq!(f[6..12], answer, "eth src: the answer");
        assert_eq!(f[12..14], [0x08, 0x06], "untagged ARP");
        assert_eq!(f[14..16], [0, 1], "htype Ethernet");
        assert_eq!(f[16..18], [0x08, 0x00], "ptype IPv4");
        assert_eq!(f[18..20], [6, 4], "hlen, plen");
        assert_eq!(f[20..22], [0, 2], "op reply");
        assert_eq!(f[22..28], answer, "sha");
        assert_eq!(f[28..32], [10, 0, 0, 1], "spa: the resolved address");
        assert_eq!(f[32..38], CLIENT_MAC, "tha");
        assert_eq!(f[38..42], [10, 0, 0, 2], "tpa");
        assert!(f[42..].iter().all(|&b| b == 0), "zero padding");
        assert_eq!(
            parse_arp(&f),
            Some(Arp { op: 2, sha: answer, spa: ip(10, 0, 0, 1), tha: CLIENT_MAC, tpa: ip(10, 0, 0, 2) })
        );
    }

    #[test]
    fn every_truncated_arp_frame_is_rejected() {
        for vlan in [None, Some(5)] {
            let frame = arp_request_frame(vlan);
            let header = if vlan.is_some() { 18 } else { 14 };
            for len in 0..=frame.len() {
                let parsed = parse_arp_request(&frame[..len]);
                assert_eq!(parsed.is_some(), len >= header + 28, "prefix of {len} bytes");
                assert_eq!(parse_arp(&frame[..len]).is_some(), len >= header + 28);
            }
        }
    }

    // --- DHCP requests ---------------------------------------------------------

    /// A client message shaped like ISC dhclient's: broadcast from 0.0.0.0,
    /// options 53, 50/54 when set, 61, 12, 55 and padding to 300 bytes.
    struct ClientMessage {
        msg_type: u8,
        vlan: Option<u16>,
        /// Extra 32-bit words of IP options (router alert).
        ip_option_words: u8,
        requested_ip: Option<Ipv4Addr>,
        server_id: Option<Ipv4Addr>,
        ciaddr: Ipv4Addr,
        giaddr: Ipv4Addr,
        flags: u16,
        hops: u8,
    }

    impl Default for ClientMessage {
        fn default() -> Self {
            Self {
                msg_type: 1,
                vlan: None,
                ip_option_words: 0,
                requested_ip: None,
                server_id: None,
                ciaddr: Ipv4Addr::UNSPECIFIED,
                giaddr: Ipv4Addr::UNSPECIFIED,
                flags: 0,
                hops: 0,
            }
        }
    }

    fn client_bootp(m: &ClientMessage) -> Vec<u8> {
        let mut b = vec![1, 1, 6, m.hops];
        b.extend_from_slice(&XID.to_be_bytes());
        b.extend_from_slice(&[0, 3]); // secs
        b.extend_from_slice(&m.flags.to_be_bytes());
        for addr in [m.ciaddr, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, m.giaddr] {
            b.extend_from_slice(&addr.octets());
        }
        b.extend_from_slice(&CLIENT_MAC);
        b.resize(236, 0);
        b.extend_from_slice(&[99, 130, 83, 99]);
        b.extend_from_slice(&[53, 1, m.msg_type]);
        if let Some(r) = m.requested_ip {
            b.extend_from_slice(&[50, 4]);
            b.extend_from_slice(&r.octets());
        }
        if let Some(s) = m.server_id {
            b.extend_from_slice(&[54, 4]);
            b.extend_from_slice(&s.octets());
        }
        b.extend_from_slice(&[61, 7, 1]);
        b.extend_from_slice(&CLIENT_MAC);
        b.extend_from_slice(&[0, 0]); // pads between options
        b.extend_from_slice(&[12, 4, b'h', b'o', b's', b't']);
        b.extend_from_slice(&[55, 7, 1, 28, 2, 3, 15, 6, 121]);
        b.push(255);
        b.resize(300, 0);
        b
    }

    fn client_frame(m: &ClientMessage) -> Vec<u8> {
        let bootp = client_bootp(m);
        let src_ip = if m.giaddr.is_unspecified() { m.ciaddr } else { m.giaddr };
        let src_port: u16 = if m.giaddr.is_unspecified() { 68 } else { 67 };
        let dst_ip = if m.giaddr.is_unspecified() { Ipv4Addr::BROADCAST } else { ip(10, 0, 0, 254) };
        let ihl = 5 + m.ip_option_words;
        let udp_len = 8 + bootp.len();
        let total = usize::from(ihl) * 4 + udp_len;

        let mut f = Vec::new();
        f.extend_from_slice(&BROADCAST_MAC);
        f.extend_from_slice(if m.giaddr.is_unspecified() { &CLIENT_MAC } else { &RELAY_MAC });
        if let Some(vid) = m.vlan {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let ip_start = f.len();
        f.push(0x40 | ihl);
        f.push(0x10);
        f.extend_from_slice(&(total as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0, 128, 17, 0, 0]);
        f.extend_from_slice(&src_ip.octets());
        f.extend_from_slice(&dst_ip.octets());
        for _ in 0..m.ip_option_words {
            f.extend_from_slice(&[0x94, 0x04, 0x00, 0x00]);
        }
        let checksum = ipv4_checksum(&f[ip_start..]);
        f[ip_start + 10..ip_start + 12].copy_from_slice(&checksum.to_be_bytes());
        f.extend_from_slice(&src_port.to_be_bytes());
        f.extend_from_slice(&67u16.to_be_bytes());
        f.extend_from_slice(&(udp_len as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]); // no UDP checksum, as IPv4 allows
        f.extend_from_slice(&bootp);
        f
    }

    fn discover() -> DhcpRequest {
        parse_dhcp(&client_frame(&ClientMessage::default())).expect("valid DISCOVER")
    }

    fn request(requested_ip: Option<Ipv4Addr>, server_id: Option<Ipv4Addr>, ciaddr: Ipv4Addr) -> DhcpRequest {
        let m = ClientMessage { msg_type: 3, requested_ip, server_id, ciaddr, ..Default::default() };
        parse_dhcp(&client_frame(&m)).expect("valid REQUEST")
    }

    fn lease() -> Lease {
        Lease {
            your_ip: ip(10, 0, 0, 5),
            server_ip: ip(10, 0, 0, 1),
            server_mac: SERVER_MAC,
            subnet_mask: ip(255, 255, 255, 0),
            router: Some(ip(10, 0, 0, 1)),
            dns: vec![ip(10, 0, 0, 2), ip(10, 0, 0, 3)],
            routes: vec![(ip(172, 16, 0, 0), 12, ip(10, 0, 0, 9))],
            mtu: Some(1442),
            lease_secs: 86_400,
            domain_name: Some("tenant.example".into()),
        }
    }

    #[test]
    fn discover_parses() {
        assert_eq!(
            discover(),
            DhcpRequest {
                xid: XID,
                chaddr: CLIENT_MAC,
                msg_type: DhcpMessageType::Discover,
                requested_ip: None,
                server_id: None,
                ciaddr: Ipv4Addr::UNSPECIFIED,
                flags: 0,
                eth_src: CLIENT_MAC,
                ip_src: Ipv4Addr::UNSPECIFIED,
                hops: 0,
                giaddr: Ipv4Addr::UNSPECIFIED,
            }
        );
    }

    #[test]
    fn dhcp_parses_behind_vlan_tag_and_ip_options() {
        let m = ClientMessage {
            msg_type: 3,
            vlan: Some(100),
            ip_option_words: 1,
            requested_ip: Some(ip(10, 0, 0, 5)),
            server_id: Some(ip(10, 0, 0, 1)),
            flags: DHCP_FLAG_BROADCAST,
            ..Default::default()
        };
        let req = parse_dhcp(&client_frame(&m)).expect("valid REQUEST");
        assert_eq!(req.msg_type, DhcpMessageType::Request);
        assert_eq!(req.requested_ip, Some(ip(10, 0, 0, 5)));
        assert_eq!(req.server_id, Some(ip(10, 0, 0, 1)));
        assert_eq!(req.flags, DHCP_FLAG_BROADCAST);
    }

    #[test]
    fn relayed_dhcp_parses() {
        let m = ClientMessage { giaddr: ip(10, 0, 0, 254), hops: 1, ..Default::default() };
        let req = parse_dhcp(&client_frame(&m)).expect("valid relayed DISCOVER");
        assert_eq!((req.giaddr, req.hops, req.eth_src, req.ip_src), (ip(10, 0, 0, 254), 1, RELAY_MAC, m.giaddr));
    }

    #[test]
    fn dhcp_ignores_ethernet_padding() {
        let mut frame = client_frame(&ClientMessage::default());
        frame.extend_from_slice(&[0xde, 0xad]);
        assert_eq!(parse_dhcp(&frame), Some(discover()));
    }

    #[test]
    fn non_dhcp_packets_are_rejected() {
        let good = client_frame(&ClientMessage::default());
        let bootp = 14 + 20 + 8;
        let cases: [(&str, usize, u8); 8] = [
            ("IPv6 version", 14, 0x65),
            ("IHL below 5", 14, 0x44),
            ("more fragments", 14 + 6, 0x20),
            ("TCP", 14 + 9, 6),
            ("UDP to port 68", 14 + 20 + 3, 68),
            ("BOOTREPLY", bootp, 2),
            ("htype", bootp + 1, 6),
            ("broken cookie", bootp + 236, 98),
        ];
        for (what, at, value) in cases {
            let mut f = good.clone();
            f[at] = value;
            assert_eq!(parse_dhcp(&f), None, "{what}");
        }
        let mut no_type = good.clone();
        no_type[bootp + 240] = 52; // option 53 becomes 52 (overload), leaving no type
        assert_eq!(parse_dhcp(&no_type), None, "BOOTP without message type");
        let mut unknown_type = good.clone();
        unknown_type[bootp + 242] = 9;
        assert_eq!(parse_dhcp(&unknown_type), None, "unknown message type");
        let mut option_overrun = good.clone();
        option_overrun[bootp + 243] = 61; // option 0 (pad) becomes 61 with a huge length
        option_overrun[bootp + 244] = 200;
        option_overrun.truncate(bootp + 250);
        let udp_len = (option_overrun.len() - 34) as u16;
        option_overrun[38..40].copy_from_slice(&udp_len.to_be_bytes());
        let total = (option_overrun.len() - 14) as u16;
        option_overrun[16..18].copy_from_slice(&total.to_be_bytes());
        assert_eq!(parse_dhcp(&option_overrun), None, "option running past the end");
    }

    #[test]
    fn short_requested_ip_option_is_rejected() {
        let m = ClientMessage { msg_type: 3, requested_ip: Some(ip(10, 0, 0, 5)), ..Default::default() };
        let mut f = client_frame(&m);
        let opts = 14 + 20 + 8 + 240;
        assert_eq!(f[opts + 3..opts + 5], [50, 4]);
        f[opts + 4] = 3; // 50 len 3, the fourth byte becomes a pad
        assert_eq!(parse_dhcp(&f), None);
    }

    #[test]
    fn every_truncated_dhcp_frame_is_rejected() {
        for vlan in [None, Some(3)] {
            let frame = client_frame(&ClientMessage { vlan, ..Default::default() });
            assert!(parse_dhcp(&frame).is_some());
            for len in 0..frame.len() {
                assert_eq!(parse_dhcp(&frame[..len]), None, "prefix of {len} bytes");
                // Other parsers must survive the same prefixes.
                let _ = parse_arp(&frame[..len]);
                let _ = parse_ethernet(&frame[..len]);
            }
        }
    }

    /// Truncated inner lengths (IP total length, UDP length) rather than a truncated frame.
    #[test]
    fn every_short_length_field_is_survived() {
        let frame = client_frame(&ClientMessage { msg_type: 3, ..Default::default() });
        for len in 0..=u16::MAX {
            let mut f = frame.clone();
            f[16..18].copy_from_slice(&len.to_be_bytes());
            let _ = parse_dhcp(&f);
            let mut f = frame.clone();
            f[38..40].copy_from_slice(&len.to_be_bytes());
            let _ = parse_dhcp(&f);
        }
    }

    // --- DHCP replies ----------------------------------------------------------

    /// A reply frame taken apart, its checksums verified independently.
    struct Reply {
        eth_dst: Mac,
        eth_src: Mac,
        ip_src: Ipv4Addr,
        ip_dst: Ipv4Addr,
        ttl: u8,
        src_port: u16,
        dst_port: u16,
        bootp: Vec<u8>,
        options: Vec<(u8, Vec<u8>)>,
    }

    impl Reply {
        /// The concatenation of all instances of option `code` (RFC 3396).
        fn option(&self, code: u8) -> Option<Vec<u8>> {
            let parts: Vec<&(u8, Vec<u8>)> = self.options.iter().filter(|(c, _)| *c == code).collect();
            (!parts.is_empty()).then(|| parts.iter().flat_map(|(_, d)| d.clone()).collect())
        }

        fn codes(&self) -> Vec<u8> {
            self.options.iter().map(|(c, _)| *c).collect()
        }

        fn addr(&self, at: usize) -> Ipv4Addr {
            Ipv4Addr::new(self.bootp[at], self.bootp[at + 1], self.bootp[at + 2], self.bootp[at + 3])
        }

        fn yiaddr(&self) -> Ipv4Addr {
            self.addr(16)
        }
    }

    /// Sum of big-endian 16-bit words, carries folded: written apart from
    /// the module's own checksum code so it can check it.
    fn folded_sum(parts: &[&[u8]]) -> u16 {
        let bytes: Vec<u8> = parts.concat();
        let mut sum: u64 = 0;
        for pair in bytes.chunks(2) {
            let hi = u64::from(pair[0]) << 8;
            let lo = pair.get(1).map_or(0, |&b| u64::from(b));
            sum += hi | lo;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    fn inspect(frame: &[u8]) -> Reply {
        assert_eq!(frame[12..14], [0x08, 0x00], "untagged IPv4");
        let ip_header = &frame[14..34];
        assert_eq!(ip_header[0], 0x45);
        assert_eq!(folded_sum(&[ip_header]), 0xffff, "IPv4 header checksum");
        assert_eq!(ipv4_checksum(ip_header), 0);
        assert_eq!(usize::from(u16::from_be_bytes([ip_header[2], ip_header[3]])), frame.len() - 14);
        assert_eq!(ip_header[9], 17);
        let udp = &frame[34..];
        assert_eq!(usize::from(u16::from_be_bytes([udp[4], udp[5]])), udp.len());
        assert_ne!(udp[6..8], [0, 0], "UDP checksum present");
        let pseudo = [&ip_header[12..20], &[0, 17], &(udp.len() as u16).to_be_bytes()[..]].concat();
        assert_eq!(folded_sum(&[&pseudo, udp]), 0xffff, "UDP checksum");
        let bootp = udp[8..].to_vec();
        assert!(bootp.len() >= 300, "BOOTP padded to 300 bytes");
        assert_eq!(bootp[..4], [2, 1, 6, 0], "BOOTREPLY, Ethernet, hops 0");
        assert_eq!(bootp[236..240], [99, 130, 83, 99]);
        let mut options = Vec::new();
        let end = for_each_option(&bootp[240..], |code, data| options.push((code, data.to_vec())));
        assert_eq!(end, Some(()));
        let end_at = 240 + options.iter().map(|(_, d)| d.len() + 2).sum::<usize>();
        assert_eq!(bootp[end_at], 255, "options end with 255 (reply has no pads)");
        Reply {
            eth_dst: frame[0..6].try_into().unwrap(),
            eth_src: frame[6..12].try_into().unwrap(),
            ip_src: Ipv4Addr::new(ip_header[12], ip_header[13], ip_header[14], ip_header[15]),
            ip_dst: Ipv4Addr::new(ip_header[16], ip_header[17], ip_header[18], ip_header[19]),
            ttl: ip_header[8],
            src_port: u16::from_be_bytes([udp[0], udp[1]]),
            dst_port: u16::from_be_bytes([udp[2], udp[3]]),
            bootp,
            options,
        }
    }

    #[test]
    fn ipv4_checksum_matches_known_header() {
        // The worked example from Wikipedia's "IPv4 header checksum".
        let mut header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        assert_eq!(ipv4_checksum(&header), 0xb861);
        header[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(ipv4_checksum(&header), 0);
    }

    #[test]
    fn prefix_lengths_become_masks() {
        assert_eq!(prefix_to_mask(0), ip(0, 0, 0, 0));
        assert_eq!(prefix_to_mask(1), ip(128, 0, 0, 0));
        assert_eq!(prefix_to_mask(12), ip(255, 240, 0, 0));
        assert_eq!(prefix_to_mask(24), ip(255, 255, 255, 0));
        assert_eq!(prefix_to_mask(32), ip(255, 255, 255, 255));
        assert_eq!(prefix_to_mask(200), ip(255, 255, 255, 255));
    }

    #[test]
    fn offer_carries_lease_and_configuration() {
        let (kind, frame) = dhcp_answer(&discover(), &lease()).expect("answered");
        assert_eq!(kind, DhcpMessageType::Offer);
        let r = inspect(&frame);
        assert_eq!((r.eth_dst, r.eth_src), (CLIENT_MAC, SERVER_MAC), "unicast to chaddr");
        assert_eq!((r.ip_src, r.ip_dst, r.ttl), (ip(10, 0, 0, 1), ip(10, 0, 0, 5), 64));
        assert_eq!((r.src_port, r.dst_port), (67, 68));
        assert_eq!(r.bootp[4..8], XID.to_be_bytes());
        assert_eq!(r.bootp[10..12], [0, 0], "flags echoed");
        assert_eq!(r.addr(12), Ipv4Addr::UNSPECIFIED, "ciaddr");
        assert_eq!(r.yiaddr(), ip(10, 0, 0, 5));
        assert_eq!(r.addr(20), ip(10, 0, 0, 1), "siaddr");
        assert_eq!(r.addr(24), Ipv4Addr::UNSPECIFIED, "giaddr");
        assert_eq!(r.bootp[28..34], CLIENT_MAC);
        assert!(r.bootp[34..236].iter().all(|&b| b == 0), "chaddr padding, sname, file");
        assert_eq!(r.codes(), [53, 54, 51, 58, 59, 1, 3, 6, 15, 26, 121]);
        assert_eq!(r.option(53), Some(vec![2]));
        assert_eq!(r.option(54), Some(vec![10, 0, 0, 1]));
        assert_eq!(r.option(51), Some(86_400u32.to_be_bytes().to_vec()));
        assert_eq!(r.option(58), Some(43_200u32.to_be_bytes().to_vec()));
        assert_eq!(r.option(59), Some(75_600u32.to_be_bytes().to_vec()));
        assert_eq!(r.option(1), Some(vec![255, 255, 255, 0]));
        assert_eq!(r.option(3), Some(vec![10, 0, 0, 1]));
        assert_eq!(r.option(6), Some(vec![10, 0, 0, 2, 10, 0, 0, 3]));
        assert_eq!(r.option(15), Some(b"tenant.example".to_vec()));
        assert_eq!(r.option(26), Some(1442u16.to_be_bytes().to_vec()));
        // 172.16.0.0/12 via 10.0.0.9, then the default route via the router.
        assert_eq!(r.option(121), Some(vec![12, 172, 16, 10, 0, 0, 9, 0, 10, 0, 0, 1]));
    }

    #[test]
    fn ack_confirms_requested_address() {
        let req = request(Some(ip(10, 0, 0, 5)), Some(ip(10, 0, 0, 1)), Ipv4Addr::UNSPECIFIED);
        let (kind, frame) = dhcp_answer(&req, &lease()).expect("answered");
        assert_eq!(kind, DhcpMessageType::Ack);
        let r = inspect(&frame);
        assert_eq!(r.option(53), Some(vec![5]));
        assert_eq!(r.yiaddr(), ip(10, 0, 0, 5));
        assert_eq!((r.eth_dst, r.ip_dst), (CLIENT_MAC, ip(10, 0, 0, 5)));
    }

    #[test]
    fn renewal_ack_goes_to_ciaddr_and_copies_it() {
        let req = request(None, None, ip(10, 0, 0, 5));
        let (kind, frame) = dhcp_answer(&req, &lease()).expect("answered");
        assert_eq!(kind, DhcpMessageType::Ack);
        let r = inspect(&frame);
        assert_eq!(r.addr(12), ip(10, 0, 0, 5), "ciaddr copied");
        assert_eq!((r.eth_dst, r.ip_dst, r.dst_port), (CLIENT_MAC, ip(10, 0, 0, 5), 68));
    }

    #[test]
    fn request_without_address_is_acked() {
        let req = request(None, None, Ipv4Addr::UNSPECIFIED);
        assert_eq!(dhcp_answer(&req, &lease()).map(|(k, _)| k), Some(DhcpMessageType::Ack));
    }

    #[test]
    fn request_for_wrong_address_is_naked() {
        let selecting = request(Some(ip(10, 0, 0, 6)), Some(ip(10, 0, 0, 1)), Ipv4Addr::UNSPECIFIED);
        let init_reboot = request(Some(ip(192, 168, 1, 20)), None, Ipv4Addr::UNSPECIFIED);
        let renewing = request(None, None, ip(10, 0, 0, 77));
        for req in [selecting, init_reboot, renewing] {
            assert_eq!(dhcp_answer(&req, &lease()).map(|(k, _)| k), Some(DhcpMessageType::Nak), "{req:?}");
        }
    }

    #[test]
    fn request_for_another_server_is_ignored() {
        let req = request(Some(ip(10, 0, 0, 5)), Some(ip(10, 0, 0, 99)), Ipv4Addr::UNSPECIFIED);
        assert_eq!(dhcp_answer(&req, &lease()), None);
    }

    #[test]
    fn release_and_decline_are_not_answered() {
        for msg_type in [4, 7] {
            let m = ClientMessage { msg_type, server_id: Some(ip(10, 0, 0, 1)), ..Default::default() };
            let req = parse_dhcp(&client_frame(&m)).expect("valid");
            assert_eq!(dhcp_answer(&req, &lease()), None);
        }
    }

    #[test]
    fn nak_is_broadcast_with_only_type_and_server() {
        let req = request(Some(ip(10, 0, 0, 6)), None, Ipv4Addr::UNSPECIFIED);
        let (_, frame) = dhcp_answer(&req, &lease()).expect("answered");
        let r = inspect(&frame);
        assert_eq!((r.eth_dst, r.ip_dst, r.dst_port), (BROADCAST_MAC, Ipv4Addr::BROADCAST, 68));
        assert_eq!(r.codes(), [53, 54]);
        assert_eq!(r.option(53), Some(vec![6]));
        assert_eq!(r.yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(r.addr(20), Ipv4Addr::UNSPECIFIED, "siaddr");
    }

    #[test]
    fn inform_is_acked_without_lease_times() {
        let m = ClientMessage { msg_type: 8, ciaddr: ip(10, 0, 0, 5), ..Default::default() };
        let req = parse_dhcp(&client_frame(&m)).expect("valid INFORM");
        let (kind, frame) = dhcp_answer(&req, &lease()).expect("answered");
        assert_eq!(kind, DhcpMessageType::Ack);
        let r = inspect(&frame);
        assert_eq!(r.yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(r.codes(), [53, 54, 1, 3, 6, 15, 26, 121]);
        assert_eq!((r.eth_dst, r.ip_dst), (CLIENT_MAC, ip(10, 0, 0, 5)));
    }

    #[test]
    fn broadcast_flag_makes_reply_broadcast() {
        let m = ClientMessage { flags: DHCP_FLAG_BROADCAST, ..Default::default() };
        let req = parse_dhcp(&client_frame(&m)).expect("valid");
        let r = inspect(&dhcp_reply(&req, DhcpMessageType::Offer, &lease()));
        assert_eq!((r.eth_dst, r.ip_dst, r.dst_port), (BROADCAST_MAC, Ipv4Addr::BROADCAST, 68));
        assert_eq!(r.bootp[10..12], [0x80, 0], "flags echoed");
        assert_eq!(r.yiaddr(), ip(10, 0, 0, 5));
    }

    #[test]
    fn relayed_replies_go_to_the_relay() {
        let m = ClientMessage { giaddr: ip(10, 0, 0, 254), flags: DHCP_FLAG_BROADCAST, hops: 1, ..Default::default() };
        let req = parse_dhcp(&client_frame(&m)).expect("valid");
        let r = inspect(&dhcp_reply(&req, DhcpMessageType::Offer, &lease()));
        assert_eq!((r.eth_dst, r.ip_dst, r.src_port, r.dst_port), (RELAY_MAC, ip(10, 0, 0, 254), 67, 67));
        assert_eq!(r.addr(24), ip(10, 0, 0, 254), "giaddr echoed");

        let m = ClientMessage { msg_type: 3, requested_ip: Some(ip(1, 2, 3, 4)), ..m };
        let req = parse_dhcp(&client_frame(&ClientMessage { flags: 0, ..m })).expect("valid");
        let (kind, frame) = dhcp_answer(&req, &lease()).expect("answered");
        assert_eq!(kind, DhcpMessageType::Nak);
        let r = inspect(&frame);
        assert_eq!((r.eth_dst, r.ip_dst, r.dst_port), (RELAY_MAC, ip(10, 0, 0, 254), 67));
        assert_eq!(r.bootp[10..12], [0x80, 0], "relay told to broadcast the NAK");
    }

    #[test]
    fn classless_routes_follow_rfc3442_examples() {
        let gw = ip(10, 0, 0, 1);
        let cases: [((Ipv4Addr, u8), &[u8]); 7] = [
            ((ip(0, 0, 0, 0), 0), &[0]),
            ((ip(10, 0, 0, 0), 8), &[8, 10]),
            ((ip(10, 17, 0, 0), 16), &[16, 10, 17]),
            ((ip(10, 27, 129, 0), 24), &[24, 10, 27, 129]),
            ((ip(10, 229, 0, 128), 25), &[25, 10, 229, 0, 128]),
            ((ip(10, 198, 122, 47), 32), &[32, 10, 198, 122, 47]),
            // Host bits beyond the prefix are cleared.
            ((ip(10, 1, 2, 3), 9), &[9, 10, 0]),
        ];
        for ((dest, len), prefix) in cases {
            let expected = [prefix, &gw.octets()].concat();
            assert_eq!(encode_classless_routes(&[(dest, len, gw)], None), expected, "{dest}/{len}");
        }
        assert_eq!(encode_classless_routes(&[(ip(1, 0, 0, 0), 33, gw)], None), Vec::<u8>::new());
    }

    #[test]
    fn default_route_is_added_to_classless_routes_once() {
        let gw = ip(10, 0, 0, 1);
        let routes = [(ip(10, 0, 0, 0), 8, ip(10, 0, 0, 9))];
        assert_eq!(encode_classless_routes(&routes, Some(gw)), [8, 10, 10, 0, 0, 9, 0, 10, 0, 0, 1]);
        let with_default = [(Ipv4Addr::UNSPECIFIED, 0, ip(10, 0, 0, 2))];
        assert_eq!(encode_classless_routes(&with_default, Some(gw)), [0, 10, 0, 0, 2]);
    }

    #[test]
    fn minimal_lease_has_no_optional_options() {
        let bare = Lease { router: None, dns: vec![], routes: vec![], mtu: None, domain_name: None, ..lease() };
        let r = inspect(&dhcp_reply(&discover(), DhcpMessageType::Offer, &bare));
        assert_eq!(r.codes(), [53, 54, 51, 58, 59, 1]);
        let routerless = Lease { routes: vec![], ..lease() };
        let r = inspect(&dhcp_reply(&discover(), DhcpMessageType::Offer, &routerless));
        assert_eq!(r.option(121), None, "no option 121 without routes");
        assert_eq!(r.option(3), Some(vec![10, 0, 0, 1]));
    }

    #[test]
    fn long_options_are_split() {
        let many = Lease { dns: (0..100).map(|i| ip(10, 1, 0, i)).collect(), ..lease() };
        let r = inspect(&dhcp_reply(&discover(), DhcpMessageType::Offer, &many));
        let instances: Vec<usize> = r.options.iter().filter(|(c, _)| *c == 6).map(|(_, d)| d.len()).collect();
        assert_eq!(instances, [255, 145]);
        assert_eq!(r.option(6), Some(many.dns.iter().flat_map(|a| a.octets()).collect()));
    }

    #[test]
    fn infinite_lease_keeps_infinite_timers() {
        let forever = Lease { lease_secs: u32::MAX, ..lease() };
        let r = inspect(&dhcp_reply(&discover(), DhcpMessageType::Offer, &forever));
        for code in [51, 58, 59] {
            assert_eq!(r.option(code), Some(vec![0xff; 4]));
        }
    }

    // --- Robustness ------------------------------------------------------------

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn parse_everything(frame: &[u8]) {
        let _ = parse_ethernet(frame);
        let _ = parse_arp(frame);
        if let Some(req) = parse_arp_request(frame) {
            assert_eq!(arp_reply(&req, SERVER_MAC).len(), 60);
        }
        if let Some(req) = parse_dhcp(frame) {
            if let Some((_, reply)) = dhcp_answer(&req, &lease()) {
                inspect(&reply);
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..5_000 {
            let len = rng.below(400);
            let mut frame: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Steer a share of the inputs past the EtherType check.
            if frame.len() >= 14 && rng.below(2) == 0 {
                let ethertype: &[u8] = if rng.below(2) == 0 { &[0x08, 0x00] } else { &[0x08, 0x06] };
                frame[12..14].copy_from_slice(ethertype);
            }
            parse_everything(&frame);
        }
    }

    #[test]
    fn mutated_frames_never_panic() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let seeds = [
            client_frame(&ClientMessage::default()),
            client_frame(&ClientMessage {
                msg_type: 3,
                vlan: Some(9),
                ip_option_words: 2,
                requested_ip: Some(ip(10, 0, 0, 5)),
                server_id: Some(ip(10, 0, 0, 1)),
                ..Default::default()
            }),
            arp_request_frame(Some(1)),
        ];
        for i in 0..5_000 {
            let mut frame = seeds[i % seeds.len()].clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(frame.len());
                frame[at] = rng.next() as u8;
            }
            if rng.below(4) == 0 {
                frame.truncate(rng.below(frame.len() + 1));
            }
            parse_everything(&frame);
        }
    }
}
