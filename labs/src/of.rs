//! The OpenFlow 1.0 / 1.3 wire format ofbench needs, written by hand with named offsets.
//!
//! Everything an emulated switch sends is built here: the HELLO, the replies to the controller's
//! requests and the PACKET_IN templates. The probe PACKET_IN is built once per switch as bytes
//! ([`PacketInTemplate`]) and only its xid, buffer_id and source MAC are patched per message,
//! as cbench does, so the generator stays cheap. Controller messages that count as responses
//! (FLOW_MOD, PACKET_OUT) are classified by [`flow_mod_info`] and [`packet_out_info`].

/// Length of the common OpenFlow header (version, type, length, xid).
pub const HEADER_LEN: usize = 8;
/// buffer_id meaning "the packet is not buffered, the data is all there".
pub const NO_BUFFER: u32 = 0xffff_ffff;
/// cbench's buffer id space: probe buffer ids count 1, 2, ... modulo this.
pub const NUM_BUFFER_IDS: u32 = 100_000;
/// Ethernet type of LLDP: a PACKET_OUT carrying it is not a response.
pub const ETH_TYPE_LLDP: u16 = 0x88cc;

/// Message types shared by OpenFlow 1.0 and 1.3 (same numbers in both).
pub mod ty {
    pub const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const ECHO_REQUEST: u8 = 2;
    pub const ECHO_REPLY: u8 = 3;
    /// VENDOR (1.0) / EXPERIMENTER (1.3).
    pub const VENDOR: u8 = 4;
    pub const FEATURES_REQUEST: u8 = 5;
    pub const FEATURES_REPLY: u8 = 6;
    pub const GET_CONFIG_REQUEST: u8 = 7;
    pub const GET_CONFIG_REPLY: u8 = 8;
    pub const SET_CONFIG: u8 = 9;
    pub const PACKET_IN: u8 = 10;
    pub const PACKET_OUT: u8 = 13;
    pub const FLOW_MOD: u8 = 14;
    /// OpenFlow 1.0 only.
    pub mod v10 {
        pub const STATS_REQUEST: u8 = 16;
        pub const STATS_REPLY: u8 = 17;
        pub const BARRIER_REQUEST: u8 = 18;
        pub const BARRIER_REPLY: u8 = 19;
    }
    /// OpenFlow 1.3 only.
    pub mod v13 {
        pub const MULTIPART_REQUEST: u8 = 18;
        pub const MULTIPART_REPLY: u8 = 19;
        pub const BARRIER_REQUEST: u8 = 20;
        pub const BARRIER_REPLY: u8 = 21;
        pub const ROLE_REQUEST: u8 = 24;
        pub const ROLE_REPLY: u8 = 25;
    }
}

/// Stats (1.0) / multipart (1.3) types ofbench answers with a body.
pub const STATS_DESC: u16 = 0;
pub const MULTIPART_PORT_DESC: u16 = 13;
pub const STATS_VENDOR: u16 = 0xffff;

/// ERROR type BAD_REQUEST and its code BAD_VENDOR (1.0) / BAD_EXPERIMENTER (1.3): same numbers.
pub const ERR_BAD_REQUEST: u16 = 1;
pub const ERR_BAD_VENDOR: u16 = 3;

/// FLOW_MOD commands that count as a response.
pub const FC_ADD: u16 = 0;
pub const FC_MODIFY_STRICT: u16 = 2;

/// The OpenFlow version an emulated switch speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V10,
    V13,
}

impl Version {
    /// The header version byte.
    pub fn wire(self) -> u8 {
        match self {
            Version::V10 => 1,
            Version::V13 => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Version::V10 => "1.0",
            Version::V13 => "1.3",
        }
    }

    pub fn barrier_request(self) -> u8 {
        match self {
            Version::V10 => ty::v10::BARRIER_REQUEST,
            Version::V13 => ty::v13::BARRIER_REQUEST,
        }
    }

    pub fn barrier_reply(self) -> u8 {
        match self {
            Version::V10 => ty::v10::BARRIER_REPLY,
            Version::V13 => ty::v13::BARRIER_REPLY,
        }
    }

    pub fn stats_request(self) -> u8 {
        match self {
            Version::V10 => ty::v10::STATS_REQUEST,
            Version::V13 => ty::v13::MULTIPART_REQUEST,
        }
    }

    pub fn stats_reply(self) -> u8 {
        match self {
            Version::V10 => ty::v10::STATS_REPLY,
            Version::V13 => ty::v13::MULTIPART_REPLY,
        }
    }

    /// Human name of a message type in this version (for the by-type statistics).
    pub fn type_name(self, t: u8) -> &'static str {
        const COMMON: [&str; 15] = [
            "HELLO",
            "ERROR",
            "ECHO_REQUEST",
            "ECHO_REPLY",
            "VENDOR",
            "FEATURES_REQUEST",
            "FEATURES_REPLY",
            "GET_CONFIG_REQUEST",
            "GET_CONFIG_REPLY",
            "SET_CONFIG",
            "PACKET_IN",
            "FLOW_REMOVED",
            "PORT_STATUS",
            "PACKET_OUT",
            "FLOW_MOD",
        ];
        if let Some(n) = COMMON.get(t as usize) {
            if t == ty::VENDOR && self == Version::V13 {
                return "EXPERIMENTER";
            }
            return n;
        }
        match (self, t) {
            (Version::V10, 15) => "PORT_MOD",
            (Version::V10, 16) => "STATS_REQUEST",
            (Version::V10, 17) => "STATS_REPLY",
            (Version::V10, 18) => "BARRIER_REQUEST",
            (Version::V10, 19) => "BARRIER_REPLY",
            (Version::V10, 20) => "QUEUE_GET_CONFIG_REQUEST",
            (Version::V10, 21) => "QUEUE_GET_CONFIG_REPLY",
            (Version::V13, 15) => "GROUP_MOD",
            (Version::V13, 16) => "PORT_MOD",
            (Version::V13, 17) => "TABLE_MOD",
            (Version::V13, 18) => "MULTIPART_REQUEST",
            (Version::V13, 19) => "MULTIPART_REPLY",
            (Version::V13, 20) => "BARRIER_REQUEST",
            (Version::V13, 21) => "BARRIER_REPLY",
            (Version::V13, 22) => "QUEUE_GET_CONFIG_REQUEST",
            (Version::V13, 23) => "QUEUE_GET_CONFIG_REPLY",
            (Version::V13, 24) => "ROLE_REQUEST",
            (Version::V13, 25) => "ROLE_REPLY",
            (Version::V13, 26) => "GET_ASYNC_REQUEST",
            (Version::V13, 27) => "GET_ASYNC_REPLY",
            (Version::V13, 28) => "SET_ASYNC",
            (Version::V13, 29) => "METER_MOD",
            _ => "UNKNOWN",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Small byte helpers

pub fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

pub fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Header fields of a complete message: (version, type, length, xid).
pub fn header(msg: &[u8]) -> (u8, u8, u16, u32) {
    (msg[0], msg[1], be16(msg, 2), be32(msg, 4))
}

/// Start a message in `out`; returns its start offset for [`finish`].
fn begin(out: &mut Vec<u8>, v: Version, t: u8, xid: u32) -> usize {
    let start = out.len();
    out.push(v.wire());
    out.push(t);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&xid.to_be_bytes());
    start
}

/// Patch the length field of the message started at `start`.
fn finish(out: &mut [u8], start: usize) {
    let len = out.len() - start;
    assert!(len <= u16::MAX as usize, "OpenFlow message too long");
    out[start + 2..start + 4].copy_from_slice(&(len as u16).to_be_bytes());
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn zeros(out: &mut Vec<u8>, n: usize) {
    out.resize(out.len() + n, 0);
}

/// A NUL-padded fixed-size string field.
fn put_str(out: &mut Vec<u8>, s: &str, size: usize) {
    let b = s.as_bytes();
    let n = b.len().min(size - 1);
    out.extend_from_slice(&b[..n]);
    zeros(out, size - n);
}

/// The low byte of the datapath id: cbench's "switch id" in MACs and IP addresses.
pub fn id_byte(dpid: u64) -> u8 {
    (dpid & 0xff) as u8
}

// ---------------------------------------------------------------------------------------------
// Messages the emulated switch sends

/// HELLO with xid 1. For 1.3 it carries a version bitmap element naming 1.3 only.
pub fn hello(out: &mut Vec<u8>, v: Version) {
    let s = begin(out, v, ty::HELLO, 1);
    if v == Version::V13 {
        put16(out, 1); // OFPHET_VERSIONBITMAP
        put16(out, 8); // element length
        put32(out, 1 << 4); // bit 4 = wire version 4 = OpenFlow 1.3
    }
    finish(out, s);
}

const N_PORTS: u16 = 4;

fn port_mac(dpid: u64, port: u16) -> [u8; 6] {
    [0x0a, 0, 0, 0, id_byte(dpid), port as u8]
}

/// FEATURES_REPLY: dpid, 256 buffers, 2 tables (1.3: 254), and (1.0 only) 4 ports 1..4.
pub fn features_reply(out: &mut Vec<u8>, v: Version, xid: u32, dpid: u64) {
    let s = begin(out, v, ty::FEATURES_REPLY, xid);
    put64(out, dpid);
    put32(out, 256); // n_buffers
    match v {
        Version::V10 => {
            out.push(2); // n_tables
            zeros(out, 3);
            put32(out, 0x87); // FLOW_STATS | TABLE_STATS | PORT_STATS | ARP_MATCH_IP
            put32(out, 0xfff); // every OpenFlow 1.0 action
            for p in 1..=N_PORTS {
                // ofp_phy_port, 48 bytes
                put16(out, p);
                out.extend_from_slice(&port_mac(dpid, p));
                put_str(out, &format!("s{dpid}-eth{p}"), 16);
                put32(out, 0); // config
                put32(out, 0); // state: link up
                let feat = (1 << 5) | (1 << 7); // 1GB_FD | COPPER
                put32(out, feat); // curr
                put32(out, feat); // advertised
                put32(out, feat); // supported
                put32(out, 0); // peer
            }
        }
        Version::V13 => {
            out.push(254); // n_tables
            out.push(0); // auxiliary_id
            zeros(out, 2);
            put32(out, 0x07); // FLOW_STATS | TABLE_STATS | PORT_STATS
            put32(out, 0); // reserved
        }
    }
    finish(out, s);
}

/// OpenFlow 1.3 PORT_DESC multipart reply with 4 ports 1..4.
pub fn port_desc_reply(out: &mut Vec<u8>, xid: u32, dpid: u64) {
    let s = begin(out, Version::V13, ty::v13::MULTIPART_REPLY, xid);
    put16(out, MULTIPART_PORT_DESC);
    put16(out, 0); // flags
    zeros(out, 4);
    for p in 1..=N_PORTS {
        // ofp_port, 64 bytes
        put32(out, p as u32);
        zeros(out, 4);
        out.extend_from_slice(&port_mac(dpid, p));
        zeros(out, 2);
        put_str(out, &format!("s{dpid}-eth{p}"), 16);
        put32(out, 0); // config
        put32(out, 0); // state
        let feat = (1 << 5) | (1 << 11); // 1GB_FD | COPPER
        put32(out, feat); // curr
        put32(out, feat); // advertised
        put32(out, feat); // supported
        put32(out, 0); // peer
        put32(out, 1_000_000); // curr_speed, kbps
        put32(out, 1_000_000); // max_speed
    }
    finish(out, s);
}

/// DESC stats (1.0) / multipart (1.3) reply.
pub fn desc_reply(out: &mut Vec<u8>, v: Version, xid: u32, dpid: u64) {
    let s = begin(out, v, v.stats_reply(), xid);
    put16(out, STATS_DESC);
    put16(out, 0);
    if v == Version::V13 {
        zeros(out, 4);
    }
    put_str(out, "tenet labs", 256);
    put_str(out, "ofbench emulated switch", 256);
    put_str(out, concat!("ofbench ", env!("CARGO_PKG_VERSION")), 256);
    put_str(out, "None", 32);
    put_str(out, &format!("ofbench switch dpid {dpid}"), 256);
    finish(out, s);
}

/// A stats / multipart reply of type `stats_type` with no body.
pub fn empty_stats_reply(out: &mut Vec<u8>, v: Version, xid: u32, stats_type: u16) {
    let s = begin(out, v, v.stats_reply(), xid);
    put16(out, stats_type);
    put16(out, 0);
    if v == Version::V13 {
        zeros(out, 4);
    }
    finish(out, s);
}

/// GET_CONFIG_REPLY with the stored SET_CONFIG values.
pub fn get_config_reply(out: &mut Vec<u8>, v: Version, xid: u32, flags: u16, miss_send_len: u16) {
    let s = begin(out, v, ty::GET_CONFIG_REPLY, xid);
    put16(out, flags);
    put16(out, miss_send_len);
    finish(out, s);
}

/// Copy `req` (a complete message) with its type changed: ECHO_REPLY, BARRIER_REPLY.
pub fn mirror(out: &mut Vec<u8>, req: &[u8], new_type: u8) {
    let s = out.len();
    out.extend_from_slice(req);
    out[s + 1] = new_type;
}

/// OpenFlow 1.3 ROLE_REPLY.
pub fn role_reply(out: &mut Vec<u8>, xid: u32, role: u32, generation_id: u64) {
    let s = begin(out, Version::V13, ty::v13::ROLE_REPLY, xid);
    put32(out, role);
    zeros(out, 4);
    put64(out, generation_id);
    finish(out, s);
}

/// ERROR of `err_type`/`code` carrying (up to 64 bytes of) the offending request.
pub fn error(out: &mut Vec<u8>, v: Version, xid: u32, err_type: u16, code: u16, req: &[u8]) {
    let s = begin(out, v, ty::ERROR, xid);
    put16(out, err_type);
    put16(out, code);
    out.extend_from_slice(&req[..req.len().min(64)]);
    finish(out, s);
}

/// A PACKET_IN with the given frame; returns the offset of the frame inside the message.
pub fn packet_in(out: &mut Vec<u8>, v: Version, xid: u32, buffer_id: u32, in_port: u16, frame: &[u8]) -> usize {
    let s = begin(out, v, ty::PACKET_IN, xid);
    put32(out, buffer_id);
    put16(out, frame.len() as u16); // total_len
    match v {
        Version::V10 => {
            put16(out, in_port);
            out.push(0); // reason NO_MATCH
            out.push(0); // pad
        }
        Version::V13 => {
            out.push(0); // reason NO_MATCH
            out.push(0); // table_id
            put64(out, 0); // cookie
                           // ofp_match: OXM, one field IN_PORT, 4 + 8 bytes, padded to 16
            put16(out, 1); // OFPMT_OXM
            put16(out, 12);
            put32(out, 0x8000_0004); // OFPXMC_OPENFLOW_BASIC, field IN_PORT, no mask, 4 bytes
            put32(out, in_port as u32);
            zeros(out, 4); // match padding
            zeros(out, 2); // pad before data
        }
    }
    let data_off = out.len() - s;
    out.extend_from_slice(frame);
    finish(out, s);
    data_off
}

/// Offsets in a PACKET_IN message (from the start of the message).
pub const PI_OFF_XID: usize = 4;
pub const PI_OFF_BUFFER_ID: usize = 8;
/// Offset of the frame in a 1.0 PACKET_IN.
pub const PI10_OFF_DATA: usize = 18;
/// Offset of the frame in a 1.3 PACKET_IN with a 16-byte {in_port} match.
pub const PI13_OFF_DATA: usize = 42;
/// Offset of the Ethernet source inside the frame.
pub const ETH_OFF_SRC: usize = 6;

/// Internet checksum of an IPv4 header (checksum field included as given).
pub fn ip_checksum(hdr: &[u8]) -> u16 {
    let mut sum: u32 = hdr.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// cbench's 64-byte probe frame: dst 80:00:00:00:00:<id>, src 00:00:00:00:00:<id> (bytes 1..4
/// are patched with the MAC counter), IPv4 192.168.0.40 -> 192.168.1.40, protocol 255, TTL 64.
pub fn probe_frame(id: u8) -> [u8; 64] {
    let mut f = [0u8; 64];
    f[0..6].copy_from_slice(&[0x80, 0, 0, 0, 0, id]);
    f[6..12].copy_from_slice(&[0, 0, 0, 0, 0, id]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = [
        0x45, 0x00, 0x00, 0x32, // version/IHL, TOS, total length 50
        0x00, 0x00, 0x00, 0x00, // id, flags/fragment
        0x40, 0xff, 0x00, 0x00, // TTL 64, protocol 255, checksum
        0xc0, 0xa8, 0x00, 0x28, // 192.168.0.40
        0xc0, 0xa8, 0x01, 0x28, // 192.168.1.40
    ];
    f[14..34].copy_from_slice(&ip);
    let csum = ip_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&csum.to_be_bytes());
    // cbench's payload bytes
    f[34..64].copy_from_slice(&[
        0x7a, 0x18, 0x58, 0x6b, 0x11, 0x08, 0x97, 0xf5, 0x19, 0xe2, 0x65, 0x7e, 0x07, 0xcc, 0x31, 0xc3, 0x11, 0xc7,
        0xc4, 0x0c, 0x8b, 0x95, 0x51, 0x51, 0x33, 0x54, 0x51, 0xd5, 0x00, 0x36,
    ]);
    f
}

/// The learn step's frame: a gratuitous ARP reply from 80:00:00:00:00:<id> / 192.168.<id>.40.
pub fn learn_frame(id: u8) -> [u8; 42] {
    let mac = [0x80, 0, 0, 0, 0, id];
    let ip = [192, 168, id, 40];
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02]); // Ethernet/IPv4, reply
    f[22..28].copy_from_slice(&mac); // sender MAC
    f[28..32].copy_from_slice(&ip); // sender IP
    f[32..38].copy_from_slice(&mac); // target MAC (gratuitous: same)
    f[38..42].copy_from_slice(&ip); // target IP
    f
}

/// The learn step's PACKET_IN: buffer_id NO_BUFFER, in_port 2, reason NO_MATCH.
pub fn learn_packet_in(out: &mut Vec<u8>, v: Version, xid: u32, dpid: u64) {
    packet_in(out, v, xid, NO_BUFFER, 2, &learn_frame(id_byte(dpid)));
}

/// A probe PACKET_IN precomputed as bytes; [`PacketInTemplate::append`] copies it and patches
/// xid, buffer_id and the source MAC in place.
#[derive(Clone, Debug)]
pub struct PacketInTemplate {
    bytes: Vec<u8>,
    /// Offset of the Ethernet source MAC inside the message.
    src_off: usize,
}

impl PacketInTemplate {
    /// The probe of switch `dpid`: in_port 1, reason NO_MATCH, total_len 64.
    pub fn probe(v: Version, dpid: u64) -> Self {
        let mut bytes = Vec::with_capacity(128);
        let data_off = packet_in(&mut bytes, v, 0, 0, 1, &probe_frame(id_byte(dpid)));
        PacketInTemplate { bytes, src_off: data_off + ETH_OFF_SRC }
    }

    /// Length of one message.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Append one probe to `out`. Like cbench, the 4 bytes of `mac` (little-endian) go into
    /// source MAC bytes 1..=4; byte 0 stays 00 and byte 5 stays the switch id.
    #[inline]
    pub fn append(&self, out: &mut Vec<u8>, xid: u32, buffer_id: u32, mac: u32) {
        let s = out.len();
        out.extend_from_slice(&self.bytes);
        let m = &mut out[s..];
        m[PI_OFF_XID..PI_OFF_XID + 4].copy_from_slice(&xid.to_be_bytes());
        m[PI_OFF_BUFFER_ID..PI_OFF_BUFFER_ID + 4].copy_from_slice(&buffer_id.to_be_bytes());
        m[self.src_off + 1..self.src_off + 5].copy_from_slice(&mac.to_le_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// Classifying the controller's answers

/// What a FLOW_MOD is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowModInfo {
    /// Command ADD or MODIFY_STRICT: counts as a response.
    pub counted: bool,
    /// Carries a buffer id (the switch would release the buffered packet).
    pub buffered: bool,
}

/// Classify a complete FLOW_MOD message (None if truncated).
pub fn flow_mod_info(v: Version, msg: &[u8]) -> Option<FlowModInfo> {
    let (cmd, buffer_id) = match v {
        // header 8, match 40, cookie 8, command 2, idle 2, hard 2, priority 2, buffer_id 4
        Version::V10 if msg.len() >= 72 => (be16(msg, 56), be32(msg, 64)),
        // header 8, cookie 8, cookie_mask 8, table_id 1, command 1, idle 2, hard 2,
        // priority 2, buffer_id 4
        Version::V13 if msg.len() >= 48 => (u16::from(msg[25]), be32(msg, 32)),
        _ => return None,
    };
    Some(FlowModInfo { counted: cmd == FC_ADD || cmd == FC_MODIFY_STRICT, buffered: buffer_id != NO_BUFFER })
}

/// What a PACKET_OUT is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketOutInfo {
    /// Its data is an LLDP frame: not a response.
    pub lldp: bool,
    /// Carries a buffer id.
    pub buffered: bool,
    /// Carries packet data.
    pub has_data: bool,
}

/// Classify a complete PACKET_OUT message (None if truncated).
pub fn packet_out_info(v: Version, msg: &[u8]) -> Option<PacketOutInfo> {
    let (actions_off, actions_len) = match v {
        // header 8, buffer_id 4, in_port 2, actions_len 2
        Version::V10 if msg.len() >= 16 => (16, be16(msg, 14) as usize),
        // header 8, buffer_id 4, in_port 4, actions_len 2, pad 6
        Version::V13 if msg.len() >= 24 => (24, be16(msg, 16) as usize),
        _ => return None,
    };
    let data = msg.get(actions_off + actions_len..).unwrap_or(&[]);
    let lldp = data.len() >= 14 && be16(data, 12) == ETH_TYPE_LLDP;
    Some(PacketOutInfo { lldp, buffered: be32(msg, 8) != NO_BUFFER, has_data: !data.is_empty() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_common_probe(msg: &[u8], v: Version, data_off: usize, dpid: u64, xid: u32, buf: u32, mac: u32) {
        let (ver, t, len, x) = header(msg);
        assert_eq!(ver, v.wire());
        assert_eq!(t, ty::PACKET_IN);
        assert_eq!(len as usize, msg.len(), "length field equals the message length");
        assert_eq!(x, xid);
        assert_eq!(be32(msg, 8), buf);
        assert_eq!(be16(msg, 12), 64, "total_len");
        let data = &msg[data_off..];
        assert_eq!(data.len(), 64, "total_len equals the carried frame");
        let id = id_byte(dpid);
        assert_eq!(&data[0..6], &[0x80, 0, 0, 0, 0, id]);
        let m = mac.to_le_bytes();
        assert_eq!(&data[6..12], &[0, m[0], m[1], m[2], m[3], id]);
        assert_eq!(be16(data, 12), 0x0800);
        let ip = &data[14..34];
        assert_eq!(ip[0], 0x45);
        assert_eq!(be16(ip, 2) as usize, 64 - 14, "IP total length");
        assert_eq!(ip[8], 64, "TTL");
        assert_eq!(ip[9], 255, "protocol");
        assert_eq!(&ip[12..16], &[192, 168, 0, 40]);
        assert_eq!(&ip[16..20], &[192, 168, 1, 40]);
        assert_eq!(ip_checksum(ip), 0, "valid IPv4 header checksum");
    }

    #[test]
    fn of10_probe_template_patches_in_place() {
        let t = PacketInTemplate::probe(Version::V10, 7);
        assert_eq!(t.len(), 82);
        let mut out = vec![0xaa; 3]; // appending after other bytes must not disturb them
        t.append(&mut out, 42, 99_999, 0x0102_0304);
        t.append(&mut out, 43, 1, 5);
        assert_eq!(&out[..3], &[0xaa; 3]);
        let m1 = &out[3..85];
        let m2 = &out[85..];
        check_common_probe(m1, Version::V10, PI10_OFF_DATA, 7, 42, 99_999, 0x0102_0304);
        check_common_probe(m2, Version::V10, PI10_OFF_DATA, 7, 43, 1, 5);
        assert_eq!(be16(m1, 14), 1, "in_port");
        assert_eq!(m1[16], 0, "reason NO_MATCH");
    }

    #[test]
    fn of13_probe_template_patches_in_place() {
        let t = PacketInTemplate::probe(Version::V13, 0x1_0000_0010);
        assert_eq!(t.len(), 106);
        let mut out = Vec::new();
        t.append(&mut out, 1, 2, 3);
        check_common_probe(&out, Version::V13, PI13_OFF_DATA, 0x1_0000_0010, 1, 2, 3);
        assert_eq!(out[14], 0, "reason NO_MATCH");
        assert_eq!(out[15], 0, "table_id");
        assert_eq!(&out[16..24], &[0; 8], "cookie");
        assert_eq!(be16(&out, 24), 1, "OFPMT_OXM");
        let match_len = be16(&out, 26) as usize;
        assert_eq!(match_len, 12);
        assert_eq!(be32(&out, 28), 0x8000_0004, "OXM in_port header");
        assert_eq!(be32(&out, 32), 1, "in_port");
        // match padded to a multiple of 8, then 2 pad bytes, then the frame
        assert_eq!(24 + match_len.div_ceil(8) * 8 + 2, PI13_OFF_DATA);
    }

    #[test]
    fn learn_packet_in_is_well_formed() {
        for (v, off) in [(Version::V10, PI10_OFF_DATA), (Version::V13, PI13_OFF_DATA)] {
            let mut out = Vec::new();
            learn_packet_in(&mut out, v, 0, 3);
            assert_eq!(be16(&out, 2) as usize, out.len());
            assert_eq!(be32(&out, 8), NO_BUFFER);
            assert_eq!(be16(&out, 12), 42);
            let f = &out[off..];
            assert_eq!(f.len(), 42);
            assert_eq!(&f[6..12], &[0x80, 0, 0, 0, 0, 3]);
            assert_eq!(be16(f, 12), 0x0806);
            assert_eq!(&f[28..32], &[192, 168, 3, 40]);
            match v {
                Version::V10 => assert_eq!(be16(&out, 14), 2),
                Version::V13 => assert_eq!(be32(&out, 32), 2),
            }
        }
    }

    #[test]
    fn replies_have_the_right_lengths() {
        let mut out = Vec::new();
        features_reply(&mut out, Version::V10, 5, 1);
        assert_eq!(out.len(), 32 + 4 * 48);
        assert_eq!(be16(&out, 2) as usize, out.len());
        out.clear();
        features_reply(&mut out, Version::V13, 5, 1);
        assert_eq!(out.len(), 32);
        out.clear();
        port_desc_reply(&mut out, 5, 1);
        assert_eq!(out.len(), 16 + 4 * 64);
        assert_eq!(be16(&out, 2) as usize, out.len());
        out.clear();
        desc_reply(&mut out, Version::V10, 5, 1);
        assert_eq!(out.len(), 12 + 1056);
        out.clear();
        desc_reply(&mut out, Version::V13, 5, 1);
        assert_eq!(out.len(), 16 + 1056);
        out.clear();
        hello(&mut out, Version::V13);
        assert_eq!(out, [4, 0, 0, 16, 0, 0, 0, 1, 0, 1, 0, 8, 0, 0, 0, 0x10]);
        out.clear();
        hello(&mut out, Version::V10);
        assert_eq!(out, [1, 0, 0, 8, 0, 0, 0, 1]);
    }

    #[test]
    fn classifies_responses() {
        // OF1.0 FLOW_MOD ADD with a buffer id
        let mut fm = vec![0u8; 72];
        fm[0] = 1;
        fm[1] = ty::FLOW_MOD;
        fm[64..68].copy_from_slice(&7u32.to_be_bytes());
        assert_eq!(flow_mod_info(Version::V10, &fm), Some(FlowModInfo { counted: true, buffered: true }));
        fm[57] = 3; // DELETE
        assert!(!flow_mod_info(Version::V10, &fm).unwrap().counted);
        // OF1.3 FLOW_MOD MODIFY_STRICT without buffer
        let mut fm = vec![0u8; 56];
        fm[25] = 2;
        fm[32..36].copy_from_slice(&NO_BUFFER.to_be_bytes());
        assert_eq!(flow_mod_info(Version::V13, &fm), Some(FlowModInfo { counted: true, buffered: false }));
        // OF1.0 PACKET_OUT with 8 bytes of actions and an LLDP frame
        let mut po = vec![0u8; 16 + 8 + 60];
        po[14..16].copy_from_slice(&8u16.to_be_bytes());
        po[8..12].copy_from_slice(&NO_BUFFER.to_be_bytes());
        po[24 + 12] = 0x88;
        po[24 + 13] = 0xcc;
        let i = packet_out_info(Version::V10, &po).unwrap();
        assert!(i.lldp && i.has_data && !i.buffered);
        // OF1.3 PACKET_OUT, buffered, no data
        let mut po = vec![0u8; 24 + 16];
        po[16..18].copy_from_slice(&16u16.to_be_bytes());
        let i = packet_out_info(Version::V13, &po).unwrap();
        assert!(!i.lldp && !i.has_data && i.buffered);
    }
}
