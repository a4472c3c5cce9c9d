//! Multipart (statistics) requests and replies (OpenFlow 1.3.x section 7.3.5),
//! and queue descriptions (`ofp_packet_queue`, section 7.3.6).
//!
//! Every multipart type of OpenFlow 1.3 is typed; experimenter bodies stay
//! opaque. As elsewhere in the codec, lengths are computed on emit and padding
//! is written as zeros, so canonical input round-trips byte for byte.
//!
//! Every variable-length record checks its own length field against its fixed
//! part and the bytes available before reading further, so no input can make a
//! parser loop or read out of bounds. Bodies that are too short or carry
//! trailing bytes yield `BAD_REQUEST`/`BAD_LEN`; unknown multipart types yield
//! `BAD_REQUEST`/`BAD_MULTIPART`.

use nom::number::complete::{be_u16, be_u32, be_u64, be_u8};

use super::action::{emit_instructions, parse_instructions, Instruction};
use super::group_meter::{emit_bands, emit_buckets, parse_bands, parse_buckets, Bucket, MeterBand};
use super::oxm::{self, FieldInfo, Match};
use super::port::{fixed_str, str_of, Port};
use crate::wire::error::WireError;
use crate::wire::{len_since, many_to_end, pad8, skip, take_n, PResult, Put};

/// Multipart types (`ofp_multipart_type`).
pub mod multipart_type {
    pub const DESC: u16 = 0;
    pub const FLOW: u16 = 1;
    pub const AGGREGATE: u16 = 2;
    pub const TABLE: u16 = 3;
    pub const PORT_STATS: u16 = 4;
    pub const QUEUE: u16 = 5;
    pub const GROUP: u16 = 6;
    pub const GROUP_DESC: u16 = 7;
    pub const GROUP_FEATURES: u16 = 8;
    pub const METER: u16 = 9;
    pub const METER_CONFIG: u16 = 10;
    pub const METER_FEATURES: u16 = 11;
    pub const TABLE_FEATURES: u16 = 12;
    pub const PORT_DESC: u16 = 13;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// Table feature property types (`ofp_table_feature_prop_type`).
pub mod table_feature_prop_type {
    pub const INSTRUCTIONS: u16 = 0;
    pub const INSTRUCTIONS_MISS: u16 = 1;
    pub const NEXT_TABLES: u16 = 2;
    pub const NEXT_TABLES_MISS: u16 = 3;
    pub const WRITE_ACTIONS: u16 = 4;
    pub const WRITE_ACTIONS_MISS: u16 = 5;
    pub const APPLY_ACTIONS: u16 = 6;
    pub const APPLY_ACTIONS_MISS: u16 = 7;
    pub const MATCH: u16 = 8;
    pub const WILDCARDS: u16 = 10;
    pub const WRITE_SETFIELD: u16 = 12;
    pub const WRITE_SETFIELD_MISS: u16 = 13;
    pub const APPLY_SETFIELD: u16 = 14;
    pub const APPLY_SETFIELD_MISS: u16 = 15;
    pub const EXPERIMENTER: u16 = 0xfffe;
    pub const EXPERIMENTER_MISS: u16 = 0xffff;
}

/// Queue property types (`ofp_queue_properties`).
pub mod queue_prop_type {
    pub const MIN_RATE: u16 = 1;
    pub const MAX_RATE: u16 = 2;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// Length of `ofp_desc`.
pub const DESC_LEN: usize = 1056;
/// Length of `ofp_flow_stats_request` / `ofp_aggregate_stats_request` before the match.
pub const FLOW_STATS_REQUEST_LEN: usize = 32;
/// Length of `ofp_flow_stats` before the match.
pub const FLOW_STATS_LEN: usize = 48;
/// Length of `ofp_aggregate_stats_reply`.
pub const AGGREGATE_STATS_LEN: usize = 24;
/// Length of `ofp_table_stats`.
pub const TABLE_STATS_LEN: usize = 24;
/// Length of `ofp_port_stats`.
pub const PORT_STATS_LEN: usize = 112;
/// Length of `ofp_queue_stats`.
pub const QUEUE_STATS_LEN: usize = 40;
/// Length of `ofp_group_stats` before its bucket counters.
pub const GROUP_STATS_LEN: usize = 40;
/// Length of `ofp_bucket_counter` and of `ofp_meter_band_stats`.
pub const COUNTER_LEN: usize = 16;
/// Length of `ofp_group_desc` before its buckets.
pub const GROUP_DESC_LEN: usize = 8;
/// Length of `ofp_group_features`.
pub const GROUP_FEATURES_LEN: usize = 40;
/// Length of `ofp_meter_stats` before its band counters.
pub const METER_STATS_LEN: usize = 40;
/// Length of `ofp_meter_config` before its bands.
pub const METER_CONFIG_LEN: usize = 8;
/// Length of `ofp_meter_features`.
pub const METER_FEATURES_LEN: usize = 16;
/// Length of `ofp_table_features` before its properties.
pub const TABLE_FEATURES_LEN: usize = 64;
/// Length of `ofp_packet_queue` before its properties.
pub const PACKET_QUEUE_LEN: usize = 16;
/// Length of `ofp_queue_prop_header`.
pub const QUEUE_PROP_HEADER_LEN: usize = 8;

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/// Fails unless the multipart body was consumed exactly.
fn done<T>(rest: &[u8], v: T) -> Result<T, nom::Err<WireError>> {
    if rest.is_empty() {
        Ok(v)
    } else {
        WireError::bad_len("trailing bytes after multipart body").fail()
    }
}

/// Splits one record off `input` whose u16 length field sits `len_at` bytes in,
/// after checking that the length covers the record's fixed part (`min`, which
/// includes the length field) and lies within `input`.
fn split_record<'a>(input: &'a [u8], len_at: usize, min: usize, what: &'static str) -> PResult<'a, &'a [u8]> {
    let (at_len, _) = take_n(input, len_at, what)?;
    let (_, len) = be_u16(at_len)?;
    let len = usize::from(len);
    if len < min.max(len_at + 2) {
        return WireError::bad_len(what).fail();
    }
    take_n(input, len, what)
}

/// Takes a fixed-size byte array (a NUL-padded string field, say).
fn array<'a, const N: usize>(input: &'a [u8], what: &'static str) -> PResult<'a, [u8; N]> {
    let (r, b) = take_n(input, N, what)?;
    Ok((r, fixed_str(b)))
}

/// Reads four big-endian u32s.
fn u32x4(input: &[u8]) -> PResult<'_, [u32; 4]> {
    let mut out = [0u32; 4];
    let mut input = input;
    for slot in &mut out {
        let (r, v) = be_u32(input)?;
        *slot = v;
        input = r;
    }
    Ok((input, out))
}

/// Reads `N` big-endian u64s.
fn u64s<const N: usize>(input: &[u8]) -> PResult<'_, [u64; N]> {
    let mut out = [0u64; N];
    let mut input = input;
    for slot in &mut out {
        let (r, v) = be_u64(input)?;
        *slot = v;
        input = r;
    }
    Ok((input, out))
}

/// Parses an experimenter body (`experimenter`, `exp_type`, opaque data).
fn parse_experimenter(body: &[u8]) -> Result<(u32, u32, Vec<u8>), nom::Err<WireError>> {
    let (r, experimenter) = be_u32(body)?;
    let (r, exp_type) = be_u32(r)?;
    Ok((experimenter, exp_type, r.to_vec()))
}

fn emit_experimenter(experimenter: u32, exp_type: u32, data: &[u8], out: &mut Vec<u8>) {
    out.put_u32(experimenter);
    out.put_u32(exp_type);
    out.extend_from_slice(data);
}

/// A request body that carries only a u32 id and 4 bytes of padding.
fn parse_id_pad4(body: &[u8]) -> Result<u32, nom::Err<WireError>> {
    let (r, id) = be_u32(body)?;
    let (r, ()) = skip(r, 4)?;
    done(r, id)
}

// ---------------------------------------------------------------------------
// DESC
// ---------------------------------------------------------------------------

/// `ofp_desc`: the switch's description (reply to `OFPMP_DESC`).
///
/// The strings are kept as the NUL-padded arrays on the wire so they re-emit
/// byte-identical; the methods of the same names give them as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescStats {
    /// Manufacturer description.
    pub mfr_desc: [u8; 256],
    /// Hardware description.
    pub hw_desc: [u8; 256],
    /// Software description.
    pub sw_desc: [u8; 256],
    /// Serial number.
    pub serial_num: [u8; 32],
    /// Human-readable description of the datapath.
    pub dp_desc: [u8; 256],
}

impl DescStats {
    /// A description from text (each string truncated to its field).
    pub fn new(mfr_desc: &str, hw_desc: &str, sw_desc: &str, serial_num: &str, dp_desc: &str) -> Self {
        DescStats {
            mfr_desc: fixed_str(mfr_desc.as_bytes()),
            hw_desc: fixed_str(hw_desc.as_bytes()),
            sw_desc: fixed_str(sw_desc.as_bytes()),
            serial_num: fixed_str(serial_num.as_bytes()),
            dp_desc: fixed_str(dp_desc.as_bytes()),
        }
    }
    /// Manufacturer description as text (up to the first NUL).
    pub fn mfr_desc(&self) -> String {
        str_of(&self.mfr_desc)
    }
    /// Hardware description as text.
    pub fn hw_desc(&self) -> String {
        str_of(&self.hw_desc)
    }
    /// Software description as text.
    pub fn sw_desc(&self) -> String {
        str_of(&self.sw_desc)
    }
    /// Serial number as text.
    pub fn serial_num(&self) -> String {
        str_of(&self.serial_num)
    }
    /// Datapath description as text.
    pub fn dp_desc(&self) -> String {
        str_of(&self.dp_desc)
    }

    pub fn parse(input: &[u8]) -> PResult<'_, DescStats> {
        let (r, mfr_desc) = array(input, "mfr_desc")?;
        let (r, hw_desc) = array(r, "hw_desc")?;
        let (r, sw_desc) = array(r, "sw_desc")?;
        let (r, serial_num) = array(r, "serial_num")?;
        let (r, dp_desc) = array(r, "dp_desc")?;
        Ok((r, DescStats { mfr_desc, hw_desc, sw_desc, serial_num, dp_desc }))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.mfr_desc);
        out.extend_from_slice(&self.hw_desc);
        out.extend_from_slice(&self.sw_desc);
        out.extend_from_slice(&self.serial_num);
        out.extend_from_slice(&self.dp_desc);
    }
}

// ---------------------------------------------------------------------------
// FLOW / AGGREGATE
// ---------------------------------------------------------------------------

/// `ofp_flow_stats_request`, also the body of `ofp_aggregate_stats_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStatsRequest {
    /// Table to read, or `OFPTT_ALL` (0xff).
    pub table_id: u8,
    /// Require an output action to this port (`OFPP_ANY` for no restriction).
    pub out_port: u32,
    /// Require a group action to this group (`OFPG_ANY` for no restriction).
    pub out_group: u32,
    pub cookie: u64,
    /// Which bits of `cookie` must match (0: any cookie).
    pub cookie_mask: u64,
    /// Fields to match (a flow matches when it is at least as specific).
    pub match_: Match,
}

impl Default for FlowStatsRequest {
    /// Every flow of every table.
    fn default() -> Self {
        FlowStatsRequest {
            table_id: 0xff,
            out_port: super::action::port_no::ANY,
            out_group: 0xffff_ffff,
            cookie: 0,
            cookie_mask: 0,
            match_: Match::default(),
        }
    }
}

impl FlowStatsRequest {
    pub fn parse(input: &[u8]) -> PResult<'_, FlowStatsRequest> {
        let (r, table_id) = be_u8(input)?;
        let (r, ()) = skip(r, 3)?;
        let (r, out_port) = be_u32(r)?;
        let (r, out_group) = be_u32(r)?;
        let (r, ()) = skip(r, 4)?;
        let (r, cookie) = be_u64(r)?;
        let (r, cookie_mask) = be_u64(r)?;
        let (r, match_) = Match::parse(r)?;
        Ok((r, FlowStatsRequest { table_id, out_port, out_group, cookie, cookie_mask, match_ }))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u8(self.table_id);
        out.put_zeros(3);
        out.put_u32(self.out_port);
        out.put_u32(self.out_group);
        out.put_zeros(4);
        out.put_u64(self.cookie);
        out.put_u64(self.cookie_mask);
        self.match_.emit(out);
    }
}

/// `ofp_flow_stats`: one flow entry (reply to `OFPMP_FLOW`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStats {
    pub table_id: u8,
    /// Time the flow has been alive, in seconds ...
    pub duration_sec: u32,
    /// ... and nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
    pub priority: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    /// `OFPFF_*` flags.
    pub flags: u16,
    pub cookie: u64,
    pub packet_count: u64,
    pub byte_count: u64,
    pub match_: Match,
    pub instructions: Vec<Instruction>,
}

impl FlowStats {
    pub fn parse(input: &[u8]) -> PResult<'_, FlowStats> {
        let (rest, whole) = split_record(input, 0, FLOW_STATS_LEN, "flow_stats length out of bounds")?;
        let (b, _length) = be_u16(whole)?;
        let (b, table_id) = be_u8(b)?;
        let (b, ()) = skip(b, 1)?;
        let (b, duration_sec) = be_u32(b)?;
        let (b, duration_nsec) = be_u32(b)?;
        let (b, priority) = be_u16(b)?;
        let (b, idle_timeout) = be_u16(b)?;
        let (b, hard_timeout) = be_u16(b)?;
        let (b, flags) = be_u16(b)?;
        let (b, ()) = skip(b, 4)?;
        let (b, cookie) = be_u64(b)?;
        let (b, packet_count) = be_u64(b)?;
        let (b, byte_count) = be_u64(b)?;
        let (b, match_) = Match::parse(b)?;
        let instructions = parse_instructions(b)?;
        Ok((
            rest,
            FlowStats {
                table_id,
                duration_sec,
                duration_nsec,
                priority,
                idle_timeout,
                hard_timeout,
                flags,
                cookie,
                packet_count,
                byte_count,
                match_,
                instructions,
            },
        ))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_u8(self.table_id);
        out.put_zeros(1);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
        out.put_u16(self.priority);
        out.put_u16(self.idle_timeout);
        out.put_u16(self.hard_timeout);
        out.put_u16(self.flags);
        out.put_zeros(4);
        out.put_u64(self.cookie);
        out.put_u64(self.packet_count);
        out.put_u64(self.byte_count);
        self.match_.emit(out);
        emit_instructions(&self.instructions, out);
        let len = len_since(out, start);
        out.patch_u16(start, len);
    }
}

/// `ofp_aggregate_stats_reply`: totals over the flows a request matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AggregateStats {
    pub packet_count: u64,
    pub byte_count: u64,
    pub flow_count: u32,
}

impl AggregateStats {
    pub fn parse(input: &[u8]) -> PResult<'_, AggregateStats> {
        let (r, packet_count) = be_u64(input)?;
        let (r, byte_count) = be_u64(r)?;
        let (r, flow_count) = be_u32(r)?;
        let (r, ()) = skip(r, 4)?;
        Ok((r, AggregateStats { packet_count, byte_count, flow_count }))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u64(self.packet_count);
        out.put_u64(self.byte_count);
        out.put_u32(self.flow_count);
        out.put_zeros(4);
    }
}

// ---------------------------------------------------------------------------
// TABLE / PORT_STATS / QUEUE
// ---------------------------------------------------------------------------

/// `ofp_table_stats`: one table's counters (reply to `OFPMP_TABLE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableStats {
    pub table_id: u8,
    /// Active entries.
    pub active_count: u32,
    /// Packets looked up in the table.
    pub lookup_count: u64,
    /// Packets that hit the table.
    pub matched_count: u64,
}

impl TableStats {
    pub fn parse(input: &[u8]) -> PResult<'_, TableStats> {
        let (r, table_id) = be_u8(input)?;
        let (r, ()) = skip(r, 3)?;
        let (r, active_count) = be_u32(r)?;
        let (r, lookup_count) = be_u64(r)?;
        let (r, matched_count) = be_u64(r)?;
        Ok((r, TableStats { table_id, active_count, lookup_count, matched_count }))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u8(self.table_id);
        out.put_zeros(3);
        out.put_u32(self.active_count);
        out.put_u64(self.lookup_count);
        out.put_u64(self.matched_count);
    }
}

/// `ofp_port_stats`: one port's counters (reply to `OFPMP_PORT_STATS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    pub port_no: u32,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_frame_err: u64,
    pub rx_over_err: u64,
    pub rx_crc_err: u64,
    pub collisions: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
}

impl PortStats {
    pub fn parse(input: &[u8]) -> PResult<'_, PortStats> {
        let (r, port_no) = be_u32(input)?;
        let (r, ()) = skip(r, 4)?;
        let (r, c) = u64s::<12>(r)?;
        let (r, duration_sec) = be_u32(r)?;
        let (r, duration_nsec) = be_u32(r)?;
        Ok((
            r,
            PortStats {
                port_no,
                rx_packets: c[0],
                tx_packets: c[1],
                rx_bytes: c[2],
                tx_bytes: c[3],
                rx_dropped: c[4],
                tx_dropped: c[5],
                rx_errors: c[6],
                tx_errors: c[7],
                rx_frame_err: c[8],
                rx_over_err: c[9],
                rx_crc_err: c[10],
                collisions: c[11],
                duration_sec,
                duration_nsec,
            },
        ))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.port_no);
        out.put_zeros(4);
        for v in [
            self.rx_packets,
            self.tx_packets,
            self.rx_bytes,
            self.tx_bytes,
            self.rx_dropped,
            self.tx_dropped,
            self.rx_errors,
            self.tx_errors,
            self.rx_frame_err,
            self.rx_over_err,
            self.rx_crc_err,
            self.collisions,
        ] {
            out.put_u64(v);
        }
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
    }
}

/// `ofp_queue_stats`: one queue's counters (reply to `OFPMP_QUEUE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    pub port_no: u32,
    pub queue_id: u32,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
}

impl QueueStats {
    pub fn parse(input: &[u8]) -> PResult<'_, QueueStats> {
        let (r, port_no) = be_u32(input)?;
        let (r, queue_id) = be_u32(r)?;
        let (r, tx_bytes) = be_u64(r)?;
        let (r, tx_packets) = be_u64(r)?;
        let (r, tx_errors) = be_u64(r)?;
        let (r, duration_sec) = be_u32(r)?;
        let (r, duration_nsec) = be_u32(r)?;
        Ok((r, QueueStats { port_no, queue_id, tx_bytes, tx_packets, tx_errors, duration_sec, duration_nsec }))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.port_no);
        out.put_u32(self.queue_id);
        out.put_u64(self.tx_bytes);
        out.put_u64(self.tx_packets);
        out.put_u64(self.tx_errors);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
    }
}

// ---------------------------------------------------------------------------
// GROUP / GROUP_DESC / GROUP_FEATURES
// ---------------------------------------------------------------------------

/// `ofp_bucket_counter`: one bucket's counters within [`GroupStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BucketCounter {
    pub packet_count: u64,
    pub byte_count: u64,
}

impl BucketCounter {
    pub fn parse(input: &[u8]) -> PResult<'_, BucketCounter> {
        let (r, packet_count) = be_u64(input)?;
        let (r, byte_count) = be_u64(r)?;
        Ok((r, BucketCounter { packet_count, byte_count }))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u64(self.packet_count);
        out.put_u64(self.byte_count);
    }
}

/// `ofp_group_stats`: one group's counters (reply to `OFPMP_GROUP`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupStats {
    pub group_id: u32,
    /// Flows or groups that forward to this group.
    pub ref_count: u32,
    pub packet_count: u64,
    pub byte_count: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub bucket_stats: Vec<BucketCounter>,
}

impl GroupStats {
    pub fn parse(input: &[u8]) -> PResult<'_, GroupStats> {
        let (rest, whole) = split_record(input, 0, GROUP_STATS_LEN, "group_stats length out of bounds")?;
        let (b, _length) = be_u16(whole)?;
        let (b, ()) = skip(b, 2)?;
        let (b, group_id) = be_u32(b)?;
        let (b, ref_count) = be_u32(b)?;
        let (b, ()) = skip(b, 4)?;
        let (b, packet_count) = be_u64(b)?;
        let (b, byte_count) = be_u64(b)?;
        let (b, duration_sec) = be_u32(b)?;
        let (b, duration_nsec) = be_u32(b)?;
        if b.len() % COUNTER_LEN != 0 {
            return WireError::bad_len("group_stats bucket counters not a multiple of 16").fail();
        }
        let bucket_stats = many_to_end(b, BucketCounter::parse)?;
        Ok((
            rest,
            GroupStats { group_id, ref_count, packet_count, byte_count, duration_sec, duration_nsec, bucket_stats },
        ))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_zeros(2);
        out.put_u32(self.group_id);
        out.put_u32(self.ref_count);
        out.put_zeros(4);
        out.put_u64(self.packet_count);
        out.put_u64(self.byte_count);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
        for c in &self.bucket_stats {
            c.emit(out);
        }
        let len = len_since(out, start);
        out.patch_u16(start, len);
    }
}

/// `ofp_group_desc`: one group's configuration (reply to `OFPMP_GROUP_DESC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDesc {
    /// `OFPGT_*` (the spec's `type`).
    pub group_type: u8,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

impl GroupDesc {
    pub fn parse(input: &[u8]) -> PResult<'_, GroupDesc> {
        let (rest, whole) = split_record(input, 0, GROUP_DESC_LEN, "group_desc length out of bounds")?;
        let (b, _length) = be_u16(whole)?;
        let (b, group_type) = be_u8(b)?;
        let (b, ()) = skip(b, 1)?;
        let (b, group_id) = be_u32(b)?;
        let buckets = parse_buckets(b)?;
        Ok((rest, GroupDesc { group_type, group_id, buckets }))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_u8(self.group_type);
        out.put_zeros(1);
        out.put_u32(self.group_id);
        emit_buckets(&self.buckets, out);
        let len = len_since(out, start);
        out.patch_u16(start, len);
    }
}

/// `ofp_group_features` (reply to `OFPMP_GROUP_FEATURES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupFeatures {
    /// Bitmap of `OFPGT_*` types supported.
    pub types: u32,
    /// Bitmap of `OFPGFC_*` capabilities.
    pub capabilities: u32,
    /// Maximum number of groups of each type.
    pub max_groups: [u32; 4],
    /// Bitmaps of `OFPAT_*` actions supported by each type.
    pub actions: [u32; 4],
}

impl GroupFeatures {
    pub fn parse(input: &[u8]) -> PResult<'_, GroupFeatures> {
        let (r, types) = be_u32(input)?;
        let (r, capabilities) = be_u32(r)?;
        let (r, max_groups) = u32x4(r)?;
        let (r, actions) = u32x4(r)?;
        Ok((r, GroupFeatures { types, capabilities, max_groups, actions }))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.types);
        out.put_u32(self.capabilities);
        for v in self.max_groups.iter().chain(&self.actions) {
            out.put_u32(*v);
        }
    }
}

// ---------------------------------------------------------------------------
// METER / METER_CONFIG / METER_FEATURES
// ---------------------------------------------------------------------------

/// `ofp_meter_band_stats`: one band's counters within [`MeterStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MeterBandStats {
    pub packet_band_count: u64,
    pub byte_band_count: u64,
}

impl MeterBandStats {
    pub fn parse(input: &[u8]) -> PResult<'_, MeterBandStats> {
        let (r, packet_band_count) = be_u64(input)?;
        let (r, byte_band_count) = be_u64(r)?;
        Ok((r, MeterBandStats { packet_band_count, byte_band_count }))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u64(self.packet_band_count);
        out.put_u64(self.byte_band_count);
    }
}

/// `ofp_meter_stats`: one meter's counters (reply to `OFPMP_METER`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MeterStats {
    pub meter_id: u32,
    /// Flows bound to the meter.
    pub flow_count: u32,
    pub packet_in_count: u64,
    pub byte_in_count: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub band_stats: Vec<MeterBandStats>,
}

impl MeterStats {
    pub fn parse(input: &[u8]) -> PResult<'_, MeterStats> {
        let (rest, whole) = split_record(input, 4, METER_STATS_LEN, "meter_stats length out of bounds")?;
        let (b, meter_id) = be_u32(whole)?;
        let (b, _len) = be_u16(b)?;
        let (b, ()) = skip(b, 6)?;
        let (b, flow_count) = be_u32(b)?;
        let (b, packet_in_count) = be_u64(b)?;
        let (b, byte_in_count) = be_u64(b)?;
        let (b, duration_sec) = be_u32(b)?;
        let (b, duration_nsec) = be_u32(b)?;
        if b.len() % COUNTER_LEN != 0 {
            return WireError::bad_len("meter_stats band counters not a multiple of 16").fail();
        }
        let band_stats = many_to_end(b, MeterBandStats::parse)?;
        Ok((
            rest,
            MeterStats {
                meter_id,
                flow_count,
                packet_in_count,
                byte_in_count,
                duration_sec,
                duration_nsec,
                band_stats,
            },
        ))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u32(self.meter_id);
        out.put_u16(0);
        out.put_zeros(6);
        out.put_u32(self.flow_count);
        out.put_u64(self.packet_in_count);
        out.put_u64(self.byte_in_count);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
        for b in &self.band_stats {
            b.emit(out);
        }
        let len = len_since(out, start);
        out.patch_u16(start + 4, len);
    }
}

/// `ofp_meter_config`: one meter's configuration (reply to `OFPMP_METER_CONFIG`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterConfig {
    /// `OFPMF_*` flags.
    pub flags: u16,
    pub meter_id: u32,
    pub bands: Vec<MeterBand>,
}

impl MeterConfig {
    pub fn parse(input: &[u8]) -> PResult<'_, MeterConfig> {
        let (rest, whole) = split_record(input, 0, METER_CONFIG_LEN, "meter_config length out of bounds")?;
        let (b, _length) = be_u16(whole)?;
        let (b, flags) = be_u16(b)?;
        let (b, meter_id) = be_u32(b)?;
        let bands = parse_bands(b)?;
        Ok((rest, MeterConfig { flags, meter_id, bands }))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_u16(self.flags);
        out.put_u32(self.meter_id);
        emit_bands(&self.bands, out);
        let len = len_since(out, start);
        out.patch_u16(start, len);
    }
}

/// `ofp_meter_features` (reply to `OFPMP_METER_FEATURES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MeterFeatures {
    /// Maximum number of meters.
    pub max_meter: u32,
    /// Bitmap of `1 << OFPMBT_*` band types supported.
    pub band_types: u32,
    /// Bitmap of `OFPMF_*` flags supported.
    pub capabilities: u32,
    /// Maximum bands per meter.
    pub max_bands: u8,
    /// Maximum colour value.
    pub max_color: u8,
}

impl MeterFeatures {
    pub fn parse(input: &[u8]) -> PResult<'_, MeterFeatures> {
        let (r, max_meter) = be_u32(input)?;
        let (r, band_types) = be_u32(r)?;
        let (r, capabilities) = be_u32(r)?;
        let (r, max_bands) = be_u8(r)?;
        let (r, max_color) = be_u8(r)?;
        let (r, ()) = skip(r, 2)?;
        Ok((r, MeterFeatures { max_meter, band_types, capabilities, max_bands, max_color }))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.max_meter);
        out.put_u32(self.band_types);
        out.put_u32(self.capabilities);
        out.put_u8(self.max_bands);
        out.put_u8(self.max_color);
        out.put_zeros(2);
    }
}

// ---------------------------------------------------------------------------
// TABLE_FEATURES
// ---------------------------------------------------------------------------

/// An instruction id in a table feature property: the instruction's type, and
/// for experimenter instructions the bytes after the 4-byte header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstructionId {
    /// `OFPIT_*` (the spec's `type`).
    pub instruction_type: u16,
    /// Bytes after `type` and `len` (empty for standard instructions).
    pub data: Vec<u8>,
}

impl InstructionId {
    /// A standard instruction id (4 bytes on the wire).
    pub fn new(instruction_type: u16) -> Self {
        InstructionId { instruction_type, data: Vec::new() }
    }

    pub fn parse(input: &[u8]) -> PResult<'_, InstructionId> {
        let (_, instruction_type) = be_u16(input)?;
        let (rest, whole) = split_record(input, 2, 4, "instruction id length out of bounds")?;
        let (data, _) = take_n(whole, 4, "instruction id")?;
        Ok((rest, InstructionId { instruction_type, data: data.to_vec() }))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(self.instruction_type);
        out.put_u16(0);
        out.extend_from_slice(&self.data);
        let len = len_since(out, start);
        out.patch_u16(start + 2, len);
    }
}

/// An action id in a table feature property: the action's type, and for
/// experimenter actions the bytes after the 4-byte header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActionId {
    /// `OFPAT_*` (the spec's `type`).
    pub action_type: u16,
    /// Bytes after `type` and `len` (empty for standard actions).
    pub data: Vec<u8>,
}

impl ActionId {
    /// A standard action id (4 bytes on the wire).
    pub fn new(action_type: u16) -> Self {
        ActionId { action_type, data: Vec::new() }
    }

    pub fn parse(input: &[u8]) -> PResult<'_, ActionId> {
        let (_, action_type) = be_u16(input)?;
        let (rest, whole) = split_record(input, 2, 4, "action id length out of bounds")?;
        let (data, _) = take_n(whole, 4, "action id")?;
        Ok((rest, ActionId { action_type, data: data.to_vec() }))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(self.action_type);
        out.put_u16(0);
        out.extend_from_slice(&self.data);
        let len = len_since(out, start);
        out.patch_u16(start + 2, len);
    }
}

/// An OXM id (an OXM header without a value) in a table feature property.
///
/// Ids of class `OFPXMC_EXPERIMENTER` (0xffff) carry the experimenter id after
/// the header; `experimenter` is `Some` exactly for those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OxmId {
    pub class: u16,
    /// Field number within the class (7 bits).
    pub field: u8,
    pub hasmask: bool,
    /// The header's length byte, as sent (often 0 in ids).
    pub length: u8,
    pub experimenter: Option<u32>,
}

impl OxmId {
    /// An OpenFlow-basic field id, with the field's value length (doubled when masked).
    pub fn basic(field: u8, hasmask: bool) -> Self {
        let len = oxm::BASIC_FIELDS.get(usize::from(field)).map_or(0, |i| i.len);
        OxmId {
            class: oxm::class::OPENFLOW_BASIC,
            field,
            hasmask,
            length: if hasmask { len.saturating_mul(2) } else { len },
            experimenter: None,
        }
    }

    /// The field's name and layout, for OpenFlow-basic fields.
    pub fn info(&self) -> Option<FieldInfo> {
        if self.class == oxm::class::OPENFLOW_BASIC {
            oxm::BASIC_FIELDS.get(usize::from(self.field)).copied()
        } else {
            None
        }
    }

    pub fn parse(input: &[u8]) -> PResult<'_, OxmId> {
        let (r, class) = be_u16(input)?;
        let (r, fh) = be_u8(r)?;
        let (r, length) = be_u8(r)?;
        let (r, experimenter) = if class == oxm::class::EXPERIMENTER {
            let (r, e) = be_u32(r)?;
            (r, Some(e))
        } else {
            (r, None)
        };
        Ok((r, OxmId { class, field: fh >> 1, hasmask: fh & 1 == 1, length, experimenter }))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u16(self.class);
        out.put_u8((self.field << 1) | u8::from(self.hasmask));
        out.put_u8(self.length);
        if let Some(e) = self.experimenter {
            out.put_u32(e);
        }
    }
}

/// One table feature property (`ofp_table_feature_prop_*`).
///
/// Each variant keeps the property type (`prop_type`, a
/// [`table_feature_prop_type`] constant) so that, for instance, `INSTRUCTIONS`
/// and `INSTRUCTIONS_MISS` share a variant and re-emit exactly. On the wire
/// every property is padded to a multiple of 8; its length excludes the padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableFeatureProp {
    /// `INSTRUCTIONS` or `INSTRUCTIONS_MISS`.
    Instructions { prop_type: u16, instruction_ids: Vec<InstructionId> },
    /// `NEXT_TABLES` or `NEXT_TABLES_MISS`.
    NextTables { prop_type: u16, table_ids: Vec<u8> },
    /// `WRITE_ACTIONS`, `APPLY_ACTIONS` or their `_MISS` forms.
    Actions { prop_type: u16, action_ids: Vec<ActionId> },
    /// `MATCH`, `WILDCARDS`, `WRITE_SETFIELD`, `APPLY_SETFIELD` or their `_MISS` forms.
    Oxm { prop_type: u16, oxm_ids: Vec<OxmId> },
    /// `EXPERIMENTER` or `EXPERIMENTER_MISS`.
    Experimenter { prop_type: u16, experimenter: u32, exp_type: u32, data: Vec<u8> },
    /// A property type OpenFlow 1.3 does not define: the bytes after the header.
    Unknown { prop_type: u16, data: Vec<u8> },
}

impl TableFeatureProp {
    /// The property type on the wire.
    pub fn prop_type(&self) -> u16 {
        match self {
            TableFeatureProp::Instructions { prop_type, .. }
            | TableFeatureProp::NextTables { prop_type, .. }
            | TableFeatureProp::Actions { prop_type, .. }
            | TableFeatureProp::Oxm { prop_type, .. }
            | TableFeatureProp::Experimenter { prop_type, .. }
            | TableFeatureProp::Unknown { prop_type, .. } => *prop_type,
        }
    }

    pub fn parse(input: &[u8]) -> PResult<'_, TableFeatureProp> {
        use table_feature_prop_type as t;
        let (_, prop_type) = be_u16(input)?;
        let (rest, whole) = split_record(input, 2, 4, "table feature property length out of bounds")?;
        let (rest, _) = take_n(rest, pad8(whole.len()) - whole.len(), "table feature property padding")?;
        let (body, _) = take_n(whole, 4, "table feature property")?;
        let prop = match prop_type {
            t::INSTRUCTIONS | t::INSTRUCTIONS_MISS => {
                TableFeatureProp::Instructions { prop_type, instruction_ids: many_to_end(body, InstructionId::parse)? }
            }
            t::NEXT_TABLES | t::NEXT_TABLES_MISS => {
                TableFeatureProp::NextTables { prop_type, table_ids: body.to_vec() }
            }
            t::WRITE_ACTIONS | t::WRITE_ACTIONS_MISS | t::APPLY_ACTIONS | t::APPLY_ACTIONS_MISS => {
                TableFeatureProp::Actions { prop_type, action_ids: many_to_end(body, ActionId::parse)? }
            }
            t::MATCH
            | t::WILDCARDS
            | t::WRITE_SETFIELD
            | t::WRITE_SETFIELD_MISS
            | t::APPLY_SETFIELD
            | t::APPLY_SETFIELD_MISS => TableFeatureProp::Oxm { prop_type, oxm_ids: many_to_end(body, OxmId::parse)? },
            t::EXPERIMENTER | t::EXPERIMENTER_MISS => {
                let (experimenter, exp_type, data) = parse_experimenter(body)?;
                TableFeatureProp::Experimenter { prop_type, experimenter, exp_type, data }
            }
            _ => TableFeatureProp::Unknown { prop_type, data: body.to_vec() },
        };
        Ok((rest, prop))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(self.prop_type());
        out.put_u16(0);
        match self {
            TableFeatureProp::Instructions { instruction_ids, .. } => instruction_ids.iter().for_each(|i| i.emit(out)),
            TableFeatureProp::NextTables { table_ids, .. } => out.extend_from_slice(table_ids),
            TableFeatureProp::Actions { action_ids, .. } => action_ids.iter().for_each(|a| a.emit(out)),
            TableFeatureProp::Oxm { oxm_ids, .. } => oxm_ids.iter().for_each(|o| o.emit(out)),
            TableFeatureProp::Experimenter { experimenter, exp_type, data, .. } => {
                emit_experimenter(*experimenter, *exp_type, data, out)
            }
            TableFeatureProp::Unknown { data, .. } => out.extend_from_slice(data),
        }
        let len = len_since(out, start);
        out.patch_u16(start + 2, len);
        out.pad8_from(start);
    }
}

/// `ofp_table_features`: one table's capabilities (body of both the request
/// and the reply of `OFPMP_TABLE_FEATURES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFeatures {
    pub table_id: u8,
    /// The table's name as on the wire: NUL-padded bytes (see [`TableFeatures::name`]).
    pub name: [u8; 32],
    /// Bits of metadata the table can match.
    pub metadata_match: u64,
    /// Bits of metadata the table can write.
    pub metadata_write: u64,
    /// `OFPTC_*` config bits.
    pub config: u32,
    /// Maximum number of entries supported.
    pub max_entries: u32,
    pub properties: Vec<TableFeatureProp>,
}

impl TableFeatures {
    /// The table's name as text (up to the first NUL, lossy where not UTF-8).
    pub fn name(&self) -> String {
        str_of(&self.name)
    }

    pub fn parse(input: &[u8]) -> PResult<'_, TableFeatures> {
        let (rest, whole) = split_record(input, 0, TABLE_FEATURES_LEN, "table_features length out of bounds")?;
        let (b, _length) = be_u16(whole)?;
        let (b, table_id) = be_u8(b)?;
        let (b, ()) = skip(b, 5)?;
        let (b, name) = array(b, "table name")?;
        let (b, metadata_match) = be_u64(b)?;
        let (b, metadata_write) = be_u64(b)?;
        let (b, config) = be_u32(b)?;
        let (b, max_entries) = be_u32(b)?;
        let properties = many_to_end(b, TableFeatureProp::parse)?;
        Ok((rest, TableFeatures { table_id, name, metadata_match, metadata_write, config, max_entries, properties }))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_u8(self.table_id);
        out.put_zeros(5);
        out.extend_from_slice(&self.name);
        out.put_u64(self.metadata_match);
        out.put_u64(self.metadata_write);
        out.put_u32(self.config);
        out.put_u32(self.max_entries);
        for p in &self.properties {
            p.emit(out);
        }
        let len = len_since(out, start);
        out.patch_u16(start, len);
    }
}

// ---------------------------------------------------------------------------
// Requests and replies
// ---------------------------------------------------------------------------

/// The body of an `OFPT_MULTIPART_REQUEST`, by multipart type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartRequest {
    /// `OFPMP_DESC` (empty body).
    Desc,
    /// `OFPMP_FLOW`.
    Flow(FlowStatsRequest),
    /// `OFPMP_AGGREGATE`.
    Aggregate(FlowStatsRequest),
    /// `OFPMP_TABLE` (empty body).
    Table,
    /// `OFPMP_PORT_STATS`: one port, or `OFPP_ANY` for all.
    PortStats { port_no: u32 },
    /// `OFPMP_QUEUE`: `OFPP_ANY` / `OFPQ_ALL` for all.
    Queue { port_no: u32, queue_id: u32 },
    /// `OFPMP_GROUP`: one group, or `OFPG_ALL`.
    Group { group_id: u32 },
    /// `OFPMP_GROUP_DESC` (empty body).
    GroupDesc,
    /// `OFPMP_GROUP_FEATURES` (empty body).
    GroupFeatures,
    /// `OFPMP_METER`: one meter, or `OFPM_ALL`.
    Meter { meter_id: u32 },
    /// `OFPMP_METER_CONFIG`: one meter, or `OFPM_ALL`.
    MeterConfig { meter_id: u32 },
    /// `OFPMP_METER_FEATURES` (empty body).
    MeterFeatures,
    /// `OFPMP_TABLE_FEATURES`: empty to read, or the tables to set.
    TableFeatures(Vec<TableFeatures>),
    /// `OFPMP_PORT_DESC` (empty body).
    PortDesc,
    /// `OFPMP_EXPERIMENTER`: opaque data after the experimenter header.
    Experimenter { experimenter: u32, exp_type: u32, data: Vec<u8> },
}

/// The body of an `OFPT_MULTIPART_REPLY`, by multipart type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartReply {
    /// `OFPMP_DESC` (boxed: the description is over 1 KiB).
    Desc(Box<DescStats>),
    /// `OFPMP_FLOW`.
    Flow(Vec<FlowStats>),
    /// `OFPMP_AGGREGATE`.
    Aggregate(AggregateStats),
    /// `OFPMP_TABLE`.
    Table(Vec<TableStats>),
    /// `OFPMP_PORT_STATS`.
    PortStats(Vec<PortStats>),
    /// `OFPMP_QUEUE`.
    Queue(Vec<QueueStats>),
    /// `OFPMP_GROUP`.
    Group(Vec<GroupStats>),
    /// `OFPMP_GROUP_DESC`.
    GroupDesc(Vec<GroupDesc>),
    /// `OFPMP_GROUP_FEATURES`.
    GroupFeatures(GroupFeatures),
    /// `OFPMP_METER`.
    Meter(Vec<MeterStats>),
    /// `OFPMP_METER_CONFIG`.
    MeterConfig(Vec<MeterConfig>),
    /// `OFPMP_METER_FEATURES`.
    MeterFeatures(MeterFeatures),
    /// `OFPMP_TABLE_FEATURES`.
    TableFeatures(Vec<TableFeatures>),
    /// `OFPMP_PORT_DESC`.
    PortDesc(Vec<Port>),
    /// `OFPMP_EXPERIMENTER`: opaque data after the experimenter header.
    Experimenter { experimenter: u32, exp_type: u32, data: Vec<u8> },
}

impl MultipartRequest {
    /// The `ofp_multipart_type` of this request.
    pub fn multipart_type(&self) -> u16 {
        use multipart_type as t;
        match self {
            MultipartRequest::Desc => t::DESC,
            MultipartRequest::Flow(_) => t::FLOW,
            MultipartRequest::Aggregate(_) => t::AGGREGATE,
            MultipartRequest::Table => t::TABLE,
            MultipartRequest::PortStats { .. } => t::PORT_STATS,
            MultipartRequest::Queue { .. } => t::QUEUE,
            MultipartRequest::Group { .. } => t::GROUP,
            MultipartRequest::GroupDesc => t::GROUP_DESC,
            MultipartRequest::GroupFeatures => t::GROUP_FEATURES,
            MultipartRequest::Meter { .. } => t::METER,
            MultipartRequest::MeterConfig { .. } => t::METER_CONFIG,
            MultipartRequest::MeterFeatures => t::METER_FEATURES,
            MultipartRequest::TableFeatures(_) => t::TABLE_FEATURES,
            MultipartRequest::PortDesc => t::PORT_DESC,
            MultipartRequest::Experimenter { .. } => t::EXPERIMENTER,
        }
    }

    /// Parses the body (after the multipart header) of a request of type `ty`.
    pub fn parse(ty: u16, body: &[u8]) -> Result<Self, nom::Err<WireError>> {
        use multipart_type as t;
        Ok(match ty {
            t::DESC => done(body, MultipartRequest::Desc)?,
            t::FLOW | t::AGGREGATE => {
                let (r, req) = FlowStatsRequest::parse(body)?;
                done(r, if ty == t::FLOW { MultipartRequest::Flow(req) } else { MultipartRequest::Aggregate(req) })?
            }
            t::TABLE => done(body, MultipartRequest::Table)?,
            t::PORT_STATS => MultipartRequest::PortStats { port_no: parse_id_pad4(body)? },
            t::QUEUE => {
                let (r, port_no) = be_u32(body)?;
                let (r, queue_id) = be_u32(r)?;
                done(r, MultipartRequest::Queue { port_no, queue_id })?
            }
            t::GROUP => MultipartRequest::Group { group_id: parse_id_pad4(body)? },
            t::GROUP_DESC => done(body, MultipartRequest::GroupDesc)?,
            t::GROUP_FEATURES => done(body, MultipartRequest::GroupFeatures)?,
            t::METER => MultipartRequest::Meter { meter_id: parse_id_pad4(body)? },
            t::METER_CONFIG => MultipartRequest::MeterConfig { meter_id: parse_id_pad4(body)? },
            t::METER_FEATURES => done(body, MultipartRequest::MeterFeatures)?,
            t::TABLE_FEATURES => MultipartRequest::TableFeatures(many_to_end(body, TableFeatures::parse)?),
            t::PORT_DESC => done(body, MultipartRequest::PortDesc)?,
            t::EXPERIMENTER => {
                let (experimenter, exp_type, data) = parse_experimenter(body)?;
                MultipartRequest::Experimenter { experimenter, exp_type, data }
            }
            _ => return WireError::bad_multipart("unknown multipart type").fail(),
        })
    }

    /// Appends the body (after the multipart header).
    pub fn emit(&self, out: &mut Vec<u8>) {
        match self {
            MultipartRequest::Desc
            | MultipartRequest::Table
            | MultipartRequest::GroupDesc
            | MultipartRequest::GroupFeatures
            | MultipartRequest::MeterFeatures
            | MultipartRequest::PortDesc => {}
            MultipartRequest::Flow(req) | MultipartRequest::Aggregate(req) => req.emit(out),
            MultipartRequest::PortStats { port_no: id }
            | MultipartRequest::Group { group_id: id }
            | MultipartRequest::Meter { meter_id: id }
            | MultipartRequest::MeterConfig { meter_id: id } => {
                out.put_u32(*id);
                out.put_zeros(4);
            }
            MultipartRequest::Queue { port_no, queue_id } => {
                out.put_u32(*port_no);
                out.put_u32(*queue_id);
            }
            MultipartRequest::TableFeatures(tables) => tables.iter().for_each(|t| t.emit(out)),
            MultipartRequest::Experimenter { experimenter, exp_type, data } => {
                emit_experimenter(*experimenter, *exp_type, data, out)
            }
        }
    }
}

impl MultipartReply {
    /// The `ofp_multipart_type` of this reply.
    pub fn multipart_type(&self) -> u16 {
        use multipart_type as t;
        match self {
            MultipartReply::Desc(_) => t::DESC,
            MultipartReply::Flow(_) => t::FLOW,
            MultipartReply::Aggregate(_) => t::AGGREGATE,
            MultipartReply::Table(_) => t::TABLE,
            MultipartReply::PortStats(_) => t::PORT_STATS,
            MultipartReply::Queue(_) => t::QUEUE,
            MultipartReply::Group(_) => t::GROUP,
            MultipartReply::GroupDesc(_) => t::GROUP_DESC,
            MultipartReply::GroupFeatures(_) => t::GROUP_FEATURES,
            MultipartReply::Meter(_) => t::METER,
            MultipartReply::MeterConfig(_) => t::METER_CONFIG,
            MultipartReply::MeterFeatures(_) => t::METER_FEATURES,
            MultipartReply::TableFeatures(_) => t::TABLE_FEATURES,
            MultipartReply::PortDesc(_) => t::PORT_DESC,
            MultipartReply::Experimenter { .. } => t::EXPERIMENTER,
        }
    }

    /// Parses the body (after the multipart header) of a reply of type `ty`.
    pub fn parse(ty: u16, body: &[u8]) -> Result<Self, nom::Err<WireError>> {
        use multipart_type as t;
        Ok(match ty {
            t::DESC => {
                let (r, d) = DescStats::parse(body)?;
                done(r, MultipartReply::Desc(Box::new(d)))?
            }
            t::FLOW => MultipartReply::Flow(many_to_end(body, FlowStats::parse)?),
            t::AGGREGATE => {
                let (r, a) = AggregateStats::parse(body)?;
                done(r, MultipartReply::Aggregate(a))?
            }
            t::TABLE => MultipartReply::Table(many_to_end(body, TableStats::parse)?),
            t::PORT_STATS => MultipartReply::PortStats(many_to_end(body, PortStats::parse)?),
            t::QUEUE => MultipartReply::Queue(many_to_end(body, QueueStats::parse)?),
            t::GROUP => MultipartReply::Group(many_to_end(body, GroupStats::parse)?),
            t::GROUP_DESC => MultipartReply::GroupDesc(many_to_end(body, GroupDesc::parse)?),
            t::GROUP_FEATURES => {
                let (r, g) = GroupFeatures::parse(body)?;
                done(r, MultipartReply::GroupFeatures(g))?
            }
            t::METER => MultipartReply::Meter(many_to_end(body, MeterStats::parse)?),
            t::METER_CONFIG => MultipartReply::MeterConfig(many_to_end(body, MeterConfig::parse)?),
            t::METER_FEATURES => {
                let (r, m) = MeterFeatures::parse(body)?;
                done(r, MultipartReply::MeterFeatures(m))?
            }
            t::TABLE_FEATURES => MultipartReply::TableFeatures(many_to_end(body, TableFeatures::parse)?),
            t::PORT_DESC => MultipartReply::PortDesc(many_to_end(body, Port::parse)?),
            t::EXPERIMENTER => {
                let (experimenter, exp_type, data) = parse_experimenter(body)?;
                MultipartReply::Experimenter { experimenter, exp_type, data }
            }
            _ => return WireError::bad_multipart("unknown multipart type").fail(),
        })
    }

    /// Appends the body (after the multipart header).
    pub fn emit(&self, out: &mut Vec<u8>) {
        match self {
            MultipartReply::Desc(d) => d.emit(out),
            MultipartReply::Flow(v) => v.iter().for_each(|s| s.emit(out)),
            MultipartReply::Aggregate(a) => a.emit(out),
            MultipartReply::Table(v) => v.iter().for_each(|s| s.emit(out)),
            MultipartReply::PortStats(v) => v.iter().for_each(|s| s.emit(out)),
            MultipartReply::Queue(v) => v.iter().for_each(|s| s.emit(out)),
            MultipartReply::Group(v) => v.iter().for_each(|s| s.emit(out)),
            MultipartReply::GroupDesc(v) => v.iter().for_each(|s| s.emit(out)),
            MultipartReply::GroupFeatures(g) => g.emit(out),
            MultipartReply::Meter(v) => v.iter().for_each(|s| s.emit(out)),
            MultipartReply::MeterConfig(v) => v.iter().for_each(|s| s.emit(out)),
            MultipartReply::MeterFeatures(m) => m.emit(out),
            MultipartReply::TableFeatures(v) => v.iter().for_each(|s| s.emit(out)),
            MultipartReply::PortDesc(ports) => ports.iter().for_each(|p| p.emit(out)),
            MultipartReply::Experimenter { experimenter, exp_type, data } => {
                emit_experimenter(*experimenter, *exp_type, data, out)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Queue descriptions (OFPT_QUEUE_GET_CONFIG_REPLY)
// ---------------------------------------------------------------------------

/// One queue property (`ofp_queue_prop_*`).
///
/// Properties are not padded beyond their length on the wire: an experimenter
/// property's length covers exactly its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueProp {
    /// `OFPQT_MIN_RATE`: guaranteed rate in 1/10 of a percent (> 1000: disabled).
    MinRate { rate: u16 },
    /// `OFPQT_MAX_RATE`: maximum rate in 1/10 of a percent (> 1000: disabled).
    MaxRate { rate: u16 },
    /// `OFPQT_EXPERIMENTER`.
    Experimenter { experimenter: u32, data: Vec<u8> },
    /// A property type OpenFlow 1.3 does not define: the bytes after the 8-byte header.
    Unknown { property: u16, data: Vec<u8> },
}

impl QueueProp {
    /// The property type on the wire (the spec's `property`).
    pub fn property(&self) -> u16 {
        match self {
            QueueProp::MinRate { .. } => queue_prop_type::MIN_RATE,
            QueueProp::MaxRate { .. } => queue_prop_type::MAX_RATE,
            QueueProp::Experimenter { .. } => queue_prop_type::EXPERIMENTER,
            QueueProp::Unknown { property, .. } => *property,
        }
    }

    pub fn parse(input: &[u8]) -> PResult<'_, QueueProp> {
        let (_, property) = be_u16(input)?;
        let (rest, whole) = split_record(input, 2, QUEUE_PROP_HEADER_LEN, "queue property length out of bounds")?;
        let (body, _) = take_n(whole, QUEUE_PROP_HEADER_LEN, "queue property header")?;
        let prop = match property {
            queue_prop_type::MIN_RATE | queue_prop_type::MAX_RATE => {
                let (b, rate) = be_u16(body)?;
                let (b, ()) = skip(b, 6)?;
                if !b.is_empty() {
                    return WireError::bad_len("queue rate property longer than 16").fail();
                }
                if property == queue_prop_type::MIN_RATE {
                    QueueProp::MinRate { rate }
                } else {
                    QueueProp::MaxRate { rate }
                }
            }
            queue_prop_type::EXPERIMENTER => {
                let (b, experimenter) = be_u32(body)?;
                let (b, ()) = skip(b, 4)?;
                QueueProp::Experimenter { experimenter, data: b.to_vec() }
            }
            _ => QueueProp::Unknown { property, data: body.to_vec() },
        };
        Ok((rest, prop))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(self.property());
        out.put_u16(0);
        out.put_zeros(4);
        match self {
            QueueProp::MinRate { rate } | QueueProp::MaxRate { rate } => {
                out.put_u16(*rate);
                out.put_zeros(6);
            }
            QueueProp::Experimenter { experimenter, data } => {
                out.put_u32(*experimenter);
                out.put_zeros(4);
                out.extend_from_slice(data);
            }
            QueueProp::Unknown { data, .. } => out.extend_from_slice(data),
        }
        let len = len_since(out, start);
        out.patch_u16(start + 2, len);
    }
}

/// `ofp_packet_queue`: one queue of a port (in `OFPT_QUEUE_GET_CONFIG_REPLY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketQueue {
    pub queue_id: u32,
    /// Port the queue is attached to.
    pub port: u32,
    pub properties: Vec<QueueProp>,
}

impl PacketQueue {
    pub fn parse(input: &[u8]) -> PResult<'_, PacketQueue> {
        let (rest, whole) = split_record(input, 8, PACKET_QUEUE_LEN, "packet_queue length out of bounds")?;
        let (b, queue_id) = be_u32(whole)?;
        let (b, port) = be_u32(b)?;
        let (b, _len) = be_u16(b)?;
        let (b, ()) = skip(b, 6)?;
        let properties = many_to_end(b, QueueProp::parse)?;
        Ok((rest, PacketQueue { queue_id, port, properties }))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u32(self.queue_id);
        out.put_u32(self.port);
        out.put_u16(0);
        out.put_zeros(6);
        for p in &self.properties {
            p.emit(out);
        }
        let len = len_since(out, start);
        out.patch_u16(start + 8, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::error::bad_request;
    use crate::wire::of13::{self, Message};

    /// `OFPMP_TABLE` reply body (from Ryu's `4-28-ofp_table_stats_reply.packet`).
    static TABLE_STATS_BYTES: [u8; 48] = [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, // table 0, active 4
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, // lookup
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, // matched
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, // table 1, active 4
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, // lookup
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, // matched
    ];

    fn table_stats_repr() -> MultipartReply {
        let t = |table_id| TableStats { table_id, active_count: 4, lookup_count: 4, matched_count: 4 };
        MultipartReply::Table(vec![t(0), t(1)])
    }

    #[test]
    fn table_stats_reply_parses() {
        assert_eq!(MultipartReply::parse(multipart_type::TABLE, &TABLE_STATS_BYTES), Ok(table_stats_repr()));
    }

    #[test]
    fn table_stats_reply_emits_same_bytes() {
        let mut out = Vec::new();
        table_stats_repr().emit(&mut out);
        assert_eq!(out, TABLE_STATS_BYTES);
    }

    /// `OFPMP_GROUP_DESC` reply body (from Ryu's `4-34-ofp_group_desc_reply.packet`).
    static GROUP_DESC_BYTES: [u8; 40] = [
        0x00, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, // length 40, ALL, group 1
        0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, // bucket: len 32, weight 1, watch_port 1
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, // watch_group 1
        0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x02, // output port 2
        0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // max_len 0xffff
    ];

    fn group_desc_repr() -> MultipartReply {
        MultipartReply::GroupDesc(vec![GroupDesc {
            group_type: 0,
            group_id: 1,
            buckets: vec![Bucket {
                weight: 1,
                watch_port: 1,
                watch_group: 1,
                actions: vec![super::super::Action::output(2)],
            }],
        }])
    }

    #[test]
    fn group_desc_reply_parses() {
        assert_eq!(MultipartReply::parse(multipart_type::GROUP_DESC, &GROUP_DESC_BYTES), Ok(group_desc_repr()));
    }

    #[test]
    fn group_desc_reply_emits_same_bytes() {
        let mut out = Vec::new();
        group_desc_repr().emit(&mut out);
        assert_eq!(out, GROUP_DESC_BYTES);
    }

    /// `OFPMP_METER` reply body (from Ryu's `4-50-ofp_meter_stats_reply.packet`).
    static METER_STATS_BYTES: [u8; 56] = [
        0x00, 0x00, 0x00, 0x64, 0x00, 0x38, 0x00, 0x00, // meter 100, len 56
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // pad, flow_count 0
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // packet_in_count
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // byte_in_count
        0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x53, 0x00, // duration 0 s 480000 ns
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // band 0 packets
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // band 0 bytes
    ];

    fn meter_stats_repr() -> MultipartReply {
        MultipartReply::Meter(vec![MeterStats {
            meter_id: 100,
            duration_nsec: 480_000,
            band_stats: vec![MeterBandStats::default()],
            ..MeterStats::default()
        }])
    }

    #[test]
    fn meter_stats_reply_parses() {
        assert_eq!(MultipartReply::parse(multipart_type::METER, &METER_STATS_BYTES), Ok(meter_stats_repr()));
    }

    #[test]
    fn meter_stats_reply_emits_same_bytes() {
        let mut out = Vec::new();
        meter_stats_repr().emit(&mut out);
        assert_eq!(out, METER_STATS_BYTES);
    }

    /// One `ofp_packet_queue` with a min rate and an unpadded 1-byte experimenter property.
    static PACKET_QUEUE_BYTES: [u8; 49] = [
        0x00, 0x00, 0x00, 0x58, 0x00, 0x00, 0x00, 0x4d, // queue 88, port 77
        0x00, 0x31, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // len 49
        0x00, 0x01, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, // MIN_RATE, len 16
        0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // rate 100
        0xff, 0xff, 0x00, 0x11, 0x00, 0x00, 0x00, 0x00, // EXPERIMENTER, len 17
        0x00, 0x00, 0x03, 0xe7, 0x00, 0x00, 0x00, 0x00, // experimenter 999
        0x01, // data
    ];

    fn packet_queue_repr() -> PacketQueue {
        PacketQueue {
            queue_id: 88,
            port: 77,
            properties: vec![
                QueueProp::MinRate { rate: 100 },
                QueueProp::Experimenter { experimenter: 999, data: vec![1] },
            ],
        }
    }

    #[test]
    fn packet_queue_parses() {
        assert_eq!(PacketQueue::parse(&PACKET_QUEUE_BYTES), Ok((&[][..], packet_queue_repr())));
    }

    #[test]
    fn packet_queue_emits_same_bytes() {
        let mut out = Vec::new();
        packet_queue_repr().emit(&mut out);
        assert_eq!(out, PACKET_QUEUE_BYTES);
    }

    #[test]
    fn table_features_round_trip_with_padded_properties() {
        use table_feature_prop_type as t;
        let tf = TableFeatures {
            table_id: 3,
            name: fixed_str(b"acl"),
            metadata_match: u64::MAX,
            metadata_write: 0xff,
            config: 0,
            max_entries: 1024,
            properties: vec![
                TableFeatureProp::Instructions {
                    prop_type: t::INSTRUCTIONS_MISS,
                    instruction_ids: vec![InstructionId::new(1), InstructionId::new(4)],
                },
                TableFeatureProp::NextTables { prop_type: t::NEXT_TABLES, table_ids: vec![4, 5, 6] },
                TableFeatureProp::Actions {
                    prop_type: t::APPLY_ACTIONS,
                    action_ids: vec![ActionId::new(0), ActionId { action_type: 0xffff, data: vec![0, 0, 0x23, 0x20] }],
                },
                TableFeatureProp::Oxm {
                    prop_type: t::MATCH,
                    oxm_ids: vec![
                        OxmId::basic(oxm::ofb::ETH_DST, true),
                        OxmId { class: 0xffff, field: 1, hasmask: false, length: 4, experimenter: Some(0x4f4e_4600) },
                    ],
                },
                TableFeatureProp::Experimenter {
                    prop_type: t::EXPERIMENTER_MISS,
                    experimenter: 101,
                    exp_type: 2,
                    data: vec![9],
                },
            ],
        };
        let body = MultipartReply::TableFeatures(vec![tf.clone()]);
        let mut out = Vec::new();
        body.emit(&mut out);
        // 64 fixed + props 12->16, 7->8, 12->16, 16, 13->16.
        assert_eq!(out.len(), 64 + 16 + 8 + 16 + 16 + 16);
        assert_eq!(&out[0..2], &[0, 136]);
        // The next-tables property's length excludes its padding.
        assert_eq!(&out[80..84], &[0, 2, 0, 7]);
        assert_eq!(tf.name(), "acl");
        assert_eq!(tf.properties[3].prop_type(), t::MATCH);
        assert_eq!(MultipartReply::parse(multipart_type::TABLE_FEATURES, &out), Ok(body));
    }

    #[test]
    fn desc_reply_round_trips_and_reads_as_text() {
        let d = DescStats::new("tenet", "hw", "sw", "0001", "dp");
        let mut out = Vec::new();
        MultipartReply::Desc(Box::new(d.clone())).emit(&mut out);
        assert_eq!(out.len(), DESC_LEN);
        let Ok(MultipartReply::Desc(back)) = MultipartReply::parse(multipart_type::DESC, &out) else {
            panic!("desc reply did not parse")
        };
        assert_eq!(*back, d);
        assert_eq!((back.mfr_desc(), back.serial_num(), back.dp_desc()), ("tenet".into(), "0001".into(), "dp".into()));
    }

    #[test]
    fn requests_round_trip() {
        let reqs = [
            MultipartRequest::Desc,
            MultipartRequest::Flow(FlowStatsRequest::default()),
            MultipartRequest::Aggregate(FlowStatsRequest {
                table_id: 1,
                cookie: 7,
                cookie_mask: u64::MAX,
                match_: Match::new(vec![super::super::Oxm::in_port(3)]),
                ..FlowStatsRequest::default()
            }),
            MultipartRequest::Table,
            MultipartRequest::PortStats { port_no: 0xffff_ffff },
            MultipartRequest::Queue { port_no: 1, queue_id: 0xffff_ffff },
            MultipartRequest::Group { group_id: 0xffff_fffc },
            MultipartRequest::GroupDesc,
            MultipartRequest::GroupFeatures,
            MultipartRequest::Meter { meter_id: 1 },
            MultipartRequest::MeterConfig { meter_id: 0xffff_ffff },
            MultipartRequest::MeterFeatures,
            MultipartRequest::TableFeatures(vec![]),
            MultipartRequest::PortDesc,
            MultipartRequest::Experimenter { experimenter: 1, exp_type: 2, data: vec![3] },
        ];
        for req in reqs {
            let mut out = Vec::new();
            req.emit(&mut out);
            assert_eq!(MultipartRequest::parse(req.multipart_type(), &out), Ok(req));
        }
    }

    fn err_of<T: core::fmt::Debug>(r: Result<T, nom::Err<WireError>>) -> (u16, u16) {
        match r {
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => (e.err_type, e.code),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    const BAD_LEN: (u16, u16) = (1, bad_request::BAD_LEN);

    #[test]
    fn unknown_multipart_type_is_bad_multipart() {
        assert_eq!(err_of(MultipartRequest::parse(14, &[])), (1, bad_request::BAD_MULTIPART));
        assert_eq!(err_of(MultipartReply::parse(0xfffe, &[])), (1, bad_request::BAD_MULTIPART));
    }

    #[test]
    fn trailing_or_short_bodies_are_bad_len() {
        assert_eq!(err_of(MultipartRequest::parse(multipart_type::DESC, &[0])), BAD_LEN);
        assert_eq!(err_of(MultipartRequest::parse(multipart_type::PORT_STATS, &[0, 0, 0, 1])), BAD_LEN);
        assert_eq!(err_of(MultipartRequest::parse(multipart_type::METER, &[0; 9])), BAD_LEN);
        assert_eq!(err_of(MultipartReply::parse(multipart_type::AGGREGATE, &[0; 23])), BAD_LEN);
        assert_eq!(err_of(MultipartReply::parse(multipart_type::AGGREGATE, &[0; 25])), BAD_LEN);
        assert_eq!(err_of(MultipartReply::parse(multipart_type::TABLE, &TABLE_STATS_BYTES[..40])), BAD_LEN);
        assert_eq!(err_of(MultipartReply::parse(multipart_type::EXPERIMENTER, &[0; 7])), BAD_LEN);
    }

    #[test]
    fn zero_or_short_record_lengths_are_bad_len() {
        // Records whose length field is 0 or below their fixed part must not loop.
        assert_eq!(err_of(MultipartReply::parse(multipart_type::FLOW, &[0; 56])), BAD_LEN);
        assert_eq!(err_of(MultipartReply::parse(multipart_type::GROUP, &[0; 40])), BAD_LEN);
        assert_eq!(err_of(MultipartReply::parse(multipart_type::GROUP_DESC, &[0, 4, 0, 0, 0, 0, 0, 0])), BAD_LEN);
        assert_eq!(err_of(MultipartReply::parse(multipart_type::METER, &[0; 40])), BAD_LEN);
        assert_eq!(err_of(MultipartReply::parse(multipart_type::METER_CONFIG, &[0; 8])), BAD_LEN);
        assert_eq!(err_of(MultipartReply::parse(multipart_type::TABLE_FEATURES, &[0; 64])), BAD_LEN);
        assert_eq!(err_of(PacketQueue::parse(&[0; 16])), BAD_LEN);
        // A table feature property of length 0, and an instruction id of length 0.
        assert_eq!(err_of(TableFeatureProp::parse(&[0, 0, 0, 0, 0, 0, 0, 0])), BAD_LEN);
        assert_eq!(err_of(TableFeatureProp::parse(&[0, 0, 0, 8, 0, 1, 0, 0])), BAD_LEN);
        // A queue property shorter than its header, and a rate property too long.
        assert_eq!(err_of(QueueProp::parse(&[0, 1, 0, 4, 0, 0, 0, 0])), BAD_LEN);
        assert_eq!(
            err_of(QueueProp::parse(&[0, 1, 0, 24].iter().chain(&[0; 20]).copied().collect::<Vec<_>>())),
            BAD_LEN
        );
        // Length past the end of the body.
        let mut g = GROUP_DESC_BYTES;
        g[1] = 48;
        assert_eq!(err_of(MultipartReply::parse(multipart_type::GROUP_DESC, &g)), BAD_LEN);
        // Group counters that are not whole.
        let mut m = METER_STATS_BYTES.to_vec();
        m.truncate(48);
        m[5] = 48;
        assert_eq!(err_of(MultipartReply::parse(multipart_type::METER, &m)), BAD_LEN);
    }

    /// The OpenFlow 1.3 packets of the conformance corpus that carry multipart or queue-config bodies.
    fn corpus() -> Vec<(String, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/ryu-of13/packets");
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("conformance corpus missing at {}: {e}", dir.display()));
        let mut files: Vec<(String, Vec<u8>)> = entries
            .map(|e| {
                let path = e.expect("directory entry").path();
                let bytes = std::fs::read(&path).expect("readable corpus file");
                (path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), bytes)
            })
            .filter(|(_, b)| {
                b.len() >= 8
                    && b[0] == crate::wire::OFP13
                    && matches!(
                        b[1],
                        of13::msg_type::MULTIPART_REQUEST
                            | of13::msg_type::MULTIPART_REPLY
                            | of13::msg_type::QUEUE_GET_CONFIG_REQUEST
                            | of13::msg_type::QUEUE_GET_CONFIG_REPLY
                    )
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn corpus_multipart_and_queue_config_round_trip() {
        let files = corpus();
        assert!(files.len() >= 30, "expected the multipart corpus, found {} files", files.len());
        let mut failures = Vec::new();
        for (name, bytes) in &files {
            match of13::parse(bytes) {
                Ok((h, msg)) => {
                    let out = msg.to_bytes(h.xid).expect("message fits in 64 KiB");
                    if &out != bytes {
                        failures.push(format!("{name}: re-emitted bytes differ"));
                    }
                }
                Err(e) => failures.push(format!("{name}: {e}")),
            }
        }
        assert!(failures.is_empty(), "corpus failures:\n{}", failures.join("\n"));
    }

    #[test]
    fn corpus_typed_bodies_spot_check() {
        let files = corpus();
        let get = |suffix: &str| {
            let (_, b) = files.iter().find(|(n, _)| n.ends_with(suffix)).expect("corpus file present");
            of13::parse(b).expect("parses").1
        };
        let Message::MultipartReply { body: MultipartReply::Desc(d), .. } = get("ofp_desc_reply.packet") else {
            panic!("not a desc reply")
        };
        assert_eq!((d.mfr_desc(), d.serial_num()), ("mfr".into(), "serial".into()));
        let Message::MultipartReply { flags: 1, body: MultipartReply::TableFeatures(t) } =
            get("ofp_table_features_reply.packet")
        else {
            panic!("not a table features reply")
        };
        assert_eq!(t.len(), 10);
        assert_eq!(t[0].name(), "私のテーブル");
        assert_eq!((t[0].max_entries, t[0].metadata_match), (16_777_216, u64::MAX));
        assert_eq!(t[0].properties.len(), 11);
        let Message::QueueGetConfigReply { queues, .. } = get("ofp_queue_get_config_reply.packet") else {
            panic!("not a queue config reply")
        };
        assert_eq!(queues.len(), 3);
        assert_eq!(queues[2].properties[2], QueueProp::Experimenter { experimenter: 999, data: vec![1, 2] });
    }

    /// Truncated and corrupted corpus bodies fail cleanly: no panic, no hang.
    #[test]
    fn corrupted_corpus_bodies_never_panic() {
        for (_, bytes) in corpus() {
            let (ty, body) = (bytes[1], &bytes[8..]);
            let parse = |b: &[u8]| {
                let mut frame = bytes[..8].to_vec();
                frame.extend_from_slice(b);
                let len = u16::try_from(frame.len()).unwrap_or(u16::MAX);
                frame[2..4].copy_from_slice(&len.to_be_bytes());
                let _ = of13::parse(&frame);
            };
            let step = if body.len() > 2048 { 7 } else { 1 };
            for n in (0..body.len()).step_by(step) {
                parse(&body[..n]);
                for v in [0x00, 0xff, 0x01] {
                    let mut b = body.to_vec();
                    b[n] = v;
                    parse(&b);
                }
            }
            let _ = ty;
        }
    }
}
