//! Receive-side framing of an OpenFlow byte stream.
//!
//! A TCP read may end in the middle of a message or carry many messages; [`RxBuf`] keeps the
//! bytes and hands out only complete messages (by the header's length field).

use std::ops::Range;

use crate::of::{be16, HEADER_LEN};

/// Total buffer size. A message is at most 64 KiB, so after compaction there is always at
/// least `CAPACITY - 64 KiB` of room for the next read.
const CAPACITY: usize = 256 * 1024;
/// Compact (move the partial message to the front) when less room than this is left.
const MIN_SPARE: usize = 64 * 1024;

/// The stream carried a header whose length field is below the header size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLength(pub u16);

impl std::fmt::Display for BadLength {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid OpenFlow message length {} (framing lost)", self.0)
    }
}

impl std::error::Error for BadLength {}

pub struct RxBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Default for RxBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl RxBuf {
    pub fn new() -> Self {
        RxBuf { buf: vec![0; CAPACITY], start: 0, end: 0 }
    }

    /// Room to read into (at least `MIN_SPARE` bytes); call [`RxBuf::commit`] with what was read.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.buf.len() - self.end < MIN_SPARE {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into [`RxBuf::spare`].
    pub fn commit(&mut self, n: usize) {
        assert!(self.end + n <= self.buf.len());
        self.end += n;
    }

    /// The next complete message as a range of [`RxBuf::bytes`], or None if it is not all here.
    pub fn next_frame(&mut self) -> Result<Option<Range<usize>>, BadLength> {
        let avail = self.end - self.start;
        if avail < HEADER_LEN {
            return Ok(None);
        }
        let len = be16(&self.buf, self.start + 2);
        if (len as usize) < HEADER_LEN {
            return Err(BadLength(len));
        }
        if avail < len as usize {
            return Ok(None);
        }
        let r = self.start..self.start + len as usize;
        self.start = r.end;
        Ok(Some(r))
    }

    /// The buffer the ranges of [`RxBuf::next_frame`] index.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes of an incomplete message kept for the next read.
    pub fn pending(&self) -> usize {
        self.end - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(t: u8, body_len: usize, fill: u8) -> Vec<u8> {
        let len = (HEADER_LEN + body_len) as u16;
        let mut m = vec![1, t];
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, t]);
        m.extend_from_slice(&vec![fill; body_len]);
        m
    }

    /// Feed `stream` in chunks of `chunk` bytes; return the complete messages seen.
    fn feed(stream: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let mut rx = RxBuf::new();
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            let spare = rx.spare();
            spare[..piece.len()].copy_from_slice(piece);
            rx.commit(piece.len());
            while let Some(r) = rx.next_frame().unwrap() {
                got.push(rx.bytes()[r].to_vec());
            }
        }
        assert_eq!(rx.pending(), 0, "nothing left over");
        got
    }

    #[test]
    fn messages_split_across_reads_and_many_per_read() {
        let msgs = vec![
            msg(0, 0, 0),
            msg(14, 64, 0x11),
            msg(13, 100, 0x22),
            msg(2, 3, 0x33),
            msg(14, 65_535 - HEADER_LEN, 0x44), // the largest possible message
            msg(19, 1, 0x55),
        ];
        let stream: Vec<u8> = msgs.concat();
        // every chunk size from byte-by-byte to everything-at-once
        for chunk in [1, 2, 3, 7, 8, 9, 63, 64, 65, 1000, 65_536, 70_000, stream.len()] {
            assert_eq!(feed(&stream, chunk), msgs, "chunk size {chunk}");
        }
    }

    #[test]
    fn long_streams_wrap_the_buffer() {
        // many more bytes than the buffer holds, in reads that never align with messages
        let one: Vec<u8> = [msg(14, 72, 1), msg(13, 9, 2), msg(3, 0, 3)].concat();
        let stream: Vec<u8> = one.repeat(10_000);
        let got = feed(&stream, 4093);
        assert_eq!(got.len(), 30_000);
        assert_eq!(got.concat(), stream);
    }

    #[test]
    fn a_length_below_the_header_is_an_error() {
        let mut rx = RxBuf::new();
        let bad = [1, 0, 0, 4, 0, 0, 0, 0];
        rx.spare()[..8].copy_from_slice(&bad);
        rx.commit(8);
        assert_eq!(rx.next_frame(), Err(BadLength(4)));
    }
}
