//! OpenFlow wire codec.
//!
//! Two views, as in smoltcp: every message has a plain `Repr`-style value (the
//! enums and structs in [`of13`] and [`of10`]) that is parsed from bytes with nom
//! and emitted by hand into a growable buffer. Every message round-trips:
//! `emit(parse(bytes)) == bytes` for the conformance corpus in `../shared/conformance`.
//!
//! Parsing never panics. Input that cannot be understood yields a [`WireError`]
//! that already names the OpenFlow ERROR type and code to answer it with.

pub mod error;
pub mod of10;
pub mod of13;

pub use error::WireError;

use nom::number::complete::{be_u16, be_u32, be_u8};

/// Length of the common OpenFlow header.
pub const HEADER_LEN: usize = 8;
/// OpenFlow 1.0 version byte.
pub const OFP10: u8 = 0x01;
/// OpenFlow 1.3 version byte.
pub const OFP13: u8 = 0x04;

/// nom result with our error type.
pub type PResult<'a, T> = nom::IResult<&'a [u8], T, WireError>;

/// Byte offsets of the common header (smoltcp style).
mod field {
    use core::ops::Range;
    pub const VERSION: usize = 0;
    pub const TYPE: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const XID: Range<usize> = 4..8;
}

/// The common 8-byte header of every OpenFlow message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub msg_type: u8,
    /// Total message length, header included.
    pub length: u16,
    pub xid: u32,
}

impl Header {
    /// Reads a header from the first 8 bytes of `buf`, if there are 8 bytes.
    pub fn peek(buf: &[u8]) -> Option<Header> {
        if buf.len() < HEADER_LEN {
            return None;
        }
        Some(Header {
            version: buf[field::VERSION],
            msg_type: buf[field::TYPE],
            length: u16::from_be_bytes([buf[field::LENGTH.start], buf[field::LENGTH.start + 1]]),
            xid: u32::from_be_bytes([
                buf[field::XID.start],
                buf[field::XID.start + 1],
                buf[field::XID.start + 2],
                buf[field::XID.start + 3],
            ]),
        })
    }

    pub(crate) fn parse(input: &[u8]) -> PResult<'_, Header> {
        let (input, version) = be_u8(input)?;
        let (input, msg_type) = be_u8(input)?;
        let (input, length) = be_u16(input)?;
        let (input, xid) = be_u32(input)?;
        Ok((input, Header { version, msg_type, length, xid }))
    }
}

/// Splits one complete message off the front of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, and an error when the
/// framing itself is broken (a length below the header size), after which the
/// stream cannot be resynchronised.
pub fn split_frame(buf: &[u8]) -> Result<Option<(Header, usize)>, WireError> {
    let Some(header) = Header::peek(buf) else {
        return Ok(None);
    };
    let len = header.length as usize;
    if len < HEADER_LEN {
        return Err(WireError::bad_len("message length below header size"));
    }
    if buf.len() < len {
        return Ok(None);
    }
    Ok(Some((header, len)))
}

/// Writes big-endian integers into a growable buffer and patches lengths.
pub(crate) trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_zeros(&mut self, n: usize);
    /// Overwrites a big-endian u16 at `at` (used to fill in lengths after emitting a body).
    fn patch_u16(&mut self, at: usize, v: u16);
    /// Pads with zeros up to a multiple of 8 counted from `start`.
    fn pad8_from(&mut self, start: usize);
}

impl Put for Vec<u8> {
    #[inline]
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    #[inline]
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    #[inline]
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    #[inline]
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    #[inline]
    fn put_zeros(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }
    #[inline]
    fn patch_u16(&mut self, at: usize, v: u16) {
        self[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }
    #[inline]
    fn pad8_from(&mut self, start: usize) {
        let used = self.len() - start;
        self.put_zeros(pad8(used) - used);
    }
}

/// Writes a header, then the body, then the length; refuses (and writes nothing) when the
/// whole message would exceed 65535 bytes. Every nested length is below the total, so only
/// the total can overflow.
pub(crate) fn emit_message(
    version: u8,
    msg_type: u8,
    xid: u32,
    out: &mut Vec<u8>,
    body: impl FnOnce(&mut Vec<u8>),
) -> Result<(), WireError> {
    let start = out.len();
    out.put_u8(version);
    out.put_u8(msg_type);
    out.put_u16(0);
    out.put_u32(xid);
    body(out);
    let Ok(len) = u16::try_from(out.len() - start) else {
        out.truncate(start);
        return Err(WireError::bad_len("message longer than 65535 bytes"));
    };
    out.patch_u16(start + 2, len);
    Ok(())
}

/// Rounds up to a multiple of 8.
#[inline]
pub(crate) fn pad8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Length of `out` since `start`, as a wire u16 for a nested structure. Saturates; the
/// message's own emit refuses totals over 65535, and every nested length is below the total.
#[inline]
pub(crate) fn len_since(out: &[u8], start: usize) -> u16 {
    u16::try_from(out.len() - start).unwrap_or(u16::MAX)
}

/// Takes `n` bytes or fails with BAD_LEN naming `what`.
pub(crate) fn take_n<'a>(input: &'a [u8], n: usize, what: &'static str) -> PResult<'a, &'a [u8]> {
    if input.len() < n {
        return Err(nom::Err::Error(WireError::bad_len(what)));
    }
    Ok((&input[n..], &input[..n]))
}

/// Splits one type-length record padded to 8 bytes (an action or instruction) off `input`:
/// returns its type and the whole record. `bad_len` answers a length below 8, not a multiple
/// of 8, or past the end of `input`.
pub(crate) fn split_tlv8(input: &[u8], bad_len: WireError) -> PResult<'_, (u16, &[u8])> {
    if input.len() < 4 {
        return bad_len.fail();
    }
    let ty = u16::from_be_bytes([input[0], input[1]]);
    let len = usize::from(u16::from_be_bytes([input[2], input[3]]));
    if len < 8 || len % 8 != 0 || len > input.len() {
        return bad_len.fail();
    }
    Ok((&input[len..], (ty, &input[..len])))
}

/// Closes a record opened at `start` as [`split_tlv8`] reads them: pads it to a multiple of
/// 8 and writes its length (padding included) after the 2-byte type.
pub(crate) fn finish_tlv8(out: &mut Vec<u8>, start: usize) {
    out.pad8_from(start);
    let len = len_since(out, start);
    out.patch_u16(start + 2, len);
}

/// Skips `n` padding bytes (their content is ignored on parse, zero on emit).
pub(crate) fn skip(input: &[u8], n: usize) -> PResult<'_, ()> {
    take_n(input, n, "padding").map(|(i, _)| (i, ()))
}

/// Parses a run of length-prefixed items until `input` is exhausted.
pub(crate) fn many_to_end<'a, T>(
    mut input: &'a [u8],
    mut item: impl FnMut(&'a [u8]) -> PResult<'a, T>,
) -> Result<Vec<T>, nom::Err<WireError>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (rest, v) = item(input)?;
        if rest.len() >= input.len() {
            return Err(nom::Err::Error(WireError::bad_len("item consumed no bytes")));
        }
        out.push(v);
        input = rest;
    }
    Ok(out)
}

/// Converts a nom error into a [`WireError`].
pub(crate) fn finish<T>(r: Result<T, nom::Err<WireError>>) -> Result<T, WireError> {
    r.map_err(|e| match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => e,
        nom::Err::Incomplete(_) => WireError::bad_len("truncated"),
    })
}

/// A message of either supported version.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyMessage {
    V13(of13::Message),
    V10(of10::Message),
}

/// Parses one complete message (header included) of either version.
pub fn parse_any(frame: &[u8]) -> Result<(Header, AnyMessage), WireError> {
    match frame.first() {
        Some(&OFP13) => of13::parse(frame).map(|(h, m)| (h, AnyMessage::V13(m))),
        Some(&OFP10) => of10::parse(frame).map(|(h, m)| (h, AnyMessage::V10(m))),
        Some(&v) => Err(WireError::bad_version(v)),
        None => Err(WireError::bad_len("empty message")),
    }
}
