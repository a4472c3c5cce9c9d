//! The decoders never panic, and whatever decodes re-emits to a fixed point.
//!
//! Inputs: (a) arbitrary bytes, (b) every conformance-corpus packet with random byte
//! mutations and truncations (with the header length optionally patched to the new size, so
//! the body parsers are reached), and (c) frames with a valid header for every message type
//! 0..=29 of both versions and a random body. Each goes through `of13::parse`, `of10::parse`,
//! `wire::parse_any` and `wire::split_frame`; anything that parses must satisfy
//! `parse(emit(parse(x))) == parse(x)` (and emitting again gives the same bytes).
//!
//! The seed is fixed so runs are reproducible; 2000 cases per property (see [`config`]).

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};
use tenet_controller::wire::{self, of10, of13, AnyMessage, HEADER_LEN};

/// 2000 cases from a fixed seed; `TENET_FUZZ_CASES` and `TENET_FUZZ_SEED` override them for
/// longer exploratory runs.
fn config() -> Config {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    Config {
        cases: env("TENET_FUZZ_CASES").map_or(2000, |c| u32::try_from(c).unwrap_or(u32::MAX)),
        rng_seed: RngSeed::Fixed(env("TENET_FUZZ_SEED").unwrap_or(0x7e2e_7c0f)),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Every `.packet` (and truncated sample) of the conformance corpus; a missing corpus fails.
fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/conformance"));
        let mut out = Vec::new();
        for dir in ["ryu-of13/packets", "ryu-of10/packets"] {
            let dir = root.join(dir);
            let entries = fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("conformance corpus {} is missing ({e}); it must exist", dir.display()));
            let mut paths: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                out.push(fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display())));
            }
        }
        assert!(!out.is_empty(), "conformance corpus under {} has no packets", root.display());
        out
    })
}

/// OpenFlow 1.3: no panic, and a decoded value is a fixed point of emit/parse.
fn check13(frame: &[u8]) -> Result<(), TestCaseError> {
    if let Ok((h, m)) = of13::parse(frame) {
        let bytes = m.to_bytes(h.xid).expect("message fits in 64 KiB");
        let (h2, m2) = of13::parse(&bytes).map_err(|e| {
            TestCaseError::fail(format!(
                "of13: re-emitted {m:?} does not parse: {e}\ninput {frame:02x?}\nemitted {bytes:02x?}"
            ))
        })?;
        prop_assert_eq!(h2.xid, h.xid);
        prop_assert_eq!(usize::from(h2.length), bytes.len());
        prop_assert_eq!(&m2, &m, "of13: parse(emit(parse(x))) != parse(x) for input {:02x?}", frame);
        prop_assert_eq!(m2.to_bytes(h.xid).expect("message fits in 64 KiB"), bytes, "of13: emit is not idempotent");
    }
    Ok(())
}

fn emit10(m: &of10::Message, xid: u32) -> Vec<u8> {
    let mut out = Vec::new();
    m.emit(xid, &mut out).expect("message fits in 64 KiB");
    out
}

/// OpenFlow 1.0: the same.
fn check10(frame: &[u8]) -> Result<(), TestCaseError> {
    if let Ok((h, m)) = of10::parse(frame) {
        let bytes = emit10(&m, h.xid);
        let (h2, m2) = of10::parse(&bytes).map_err(|e| {
            TestCaseError::fail(format!(
                "of10: re-emitted {m:?} does not parse: {e}\ninput {frame:02x?}\nemitted {bytes:02x?}"
            ))
        })?;
        prop_assert_eq!(h2.xid, h.xid);
        prop_assert_eq!(usize::from(h2.length), bytes.len());
        prop_assert_eq!(&m2, &m, "of10: parse(emit(parse(x))) != parse(x) for input {:02x?}", frame);
        prop_assert_eq!(emit10(&m2, h.xid), bytes, "of10: emit is not idempotent");
    }
    Ok(())
}

/// Every entry point on one input.
fn check_all(input: &[u8]) -> Result<(), TestCaseError> {
    check13(input)?;
    check10(input)?;
    match wire::parse_any(input) {
        Ok((h, AnyMessage::V13(m))) => prop_assert_eq!(of13::parse(input).ok(), Some((h, m))),
        Ok((h, AnyMessage::V10(m))) => prop_assert_eq!(of10::parse(input).ok(), Some((h, m))),
        Err(_) => {}
    }
    match wire::split_frame(input) {
        Ok(Some((h, len))) => {
            prop_assert!(len >= HEADER_LEN && len <= input.len());
            prop_assert_eq!(usize::from(h.length), len);
            // The split-off frame goes through the decoders as the session would pass it.
            check13(&input[..len])?;
            check10(&input[..len])?;
            let _ = wire::parse_any(&input[..len]);
        }
        Ok(None) => prop_assert!(
            input.len() < HEADER_LEN || usize::from(u16::from_be_bytes([input[2], input[3]])) > input.len()
        ),
        Err(_) => {}
    }
    Ok(())
}

/// A corpus packet with byte mutations, an optional truncation, and optionally the header
/// length patched to the resulting size.
fn mutated_corpus_packet() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<Index>(),
        prop::collection::vec((any::<Index>(), any::<u8>()), 0..6),
        prop::option::of(any::<Index>()),
        any::<bool>(),
    )
        .prop_map(|(which, mutations, truncate, fix_len)| {
            let packets = corpus();
            let mut p = packets[which.index(packets.len())].clone();
            for (at, byte) in mutations {
                if !p.is_empty() {
                    let i = at.index(p.len());
                    p[i] = byte;
                }
            }
            if let Some(t) = truncate {
                let n = t.index(p.len() + 1);
                p.truncate(n);
            }
            if fix_len && p.len() >= HEADER_LEN {
                let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
                p[2..4].copy_from_slice(&len.to_be_bytes());
            }
            p
        })
}

/// A frame with a valid header (version 1 or 4, type 0..=29, exact length) and a random body.
fn valid_header_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(wire::OFP10), Just(wire::OFP13)],
        0u8..=29,
        any::<u32>(),
        prop::collection::vec(any::<u8>(), 0..320),
    )
        .prop_map(|(version, ty, xid, body)| {
            let mut f = Vec::with_capacity(HEADER_LEN + body.len());
            f.push(version);
            f.push(ty);
            f.extend_from_slice(&u16::try_from(HEADER_LEN + body.len()).unwrap_or(u16::MAX).to_be_bytes());
            f.extend_from_slice(&xid.to_be_bytes());
            f.extend_from_slice(&body);
            f
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..400)) {
        check_all(&input)?;
    }

    #[test]
    fn mutated_corpus_packets_never_panic(input in mutated_corpus_packet()) {
        check_all(&input)?;
    }

    #[test]
    fn valid_header_frames_never_panic(input in valid_header_frame()) {
        check_all(&input)?;
    }
}

/// Every corpus packet, unmutated, is already a fixed point (cheap guard that the properties
/// above start from inputs that decode).
#[test]
fn corpus_packets_are_fixed_points() {
    let mut decoded = 0;
    for p in corpus() {
        check_all(p).unwrap_or_else(|e| panic!("{e}"));
        decoded += usize::from(wire::parse_any(p).is_ok());
    }
    assert!(decoded > 0, "no corpus packet decodes");
}
