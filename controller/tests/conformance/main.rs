//! Conformance against Ryu's OpenFlow test corpus (`../shared/conformance`, see its README).
//!
//! For every `.packet` of `ryu-of13/` and `ryu-of10/`:
//! 1. it decodes (the one truncated message must instead fail cleanly with BAD_REQUEST/BAD_LEN);
//! 2. re-emitting the decoded value gives the identical bytes;
//! 3. the decoded fields, converted to Ryu's `{"OFPClass": {field: value}}` JSON form
//!    (`ryu13.rs`, `mp13.rs`, `ryu10.rs`), equal the JSON beside it. Experimenter content is
//!    opaque in our model by design, so only its standard envelope is compared
//!    (`common::project_experimenter`).
//!
//! Every file is checked and every failure collected; the test fails at the end listing all
//! of them, so one run shows everything. A missing or empty corpus is a failure, not a skip.

mod common;
mod mp13;
mod ryu10;
mod ryu13;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tenet_controller::wire::error::{bad_request, error_type};
use tenet_controller::wire::{self, of10, of13, AnyMessage, WireError};

fn corpus_root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/conformance")).to_path_buf()
}

/// One version's corpus: its packet files and the JSON files that have no packet.
struct Corpus {
    dir: PathBuf,
    packets: Vec<PathBuf>,
    orphan_json: Vec<String>,
}

fn sorted_names(dir: &Path) -> Vec<String> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| {
        panic!(
            "conformance corpus directory {} is missing or unreadable ({e}); it must exist (see README)",
            dir.display()
        )
    });
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The JSON beside a packet: `NAME.packet` -> `json/NAME.packet.json`, and for the truncated
/// sample `NAME.truncated64` -> `json/NAME.packet.truncated64.json`.
fn json_name(packet: &str) -> String {
    match packet.rsplit_once('.') {
        Some((stem, ext)) if ext != "packet" => format!("{stem}.packet.{ext}.json"),
        _ => format!("{packet}.json"),
    }
}

fn load(version_dir: &str) -> Corpus {
    let dir = corpus_root().join(version_dir);
    let packet_names = sorted_names(&dir.join("packets"));
    assert!(
        !packet_names.is_empty(),
        "conformance corpus {} has no packets: the corpus must be present, this test never skips",
        dir.join("packets").display()
    );
    let json_names = sorted_names(&dir.join("json"));
    let wanted: Vec<String> = packet_names.iter().map(|p| json_name(p)).collect();
    let orphan_json = json_names.into_iter().filter(|j| !wanted.contains(j)).collect();
    Corpus { packets: packet_names.iter().map(|p| dir.join("packets").join(p)).collect(), dir, orphan_json }
}

fn is_truncated_sample(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(_, ext)| ext.starts_with("truncated"))
}

/// Ryu's JSON for a packet, or why there is none.
fn read_json(corpus: &Corpus, packet: &str) -> Result<Value, String> {
    let path = corpus.dir.join("json").join(json_name(packet));
    let text = fs::read_to_string(&path).map_err(|e| format!("no JSON at {} ({e})", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("JSON {} does not parse: {e}", path.display()))
}

/// What one file's checks found.
#[derive(Default)]
struct Outcome {
    errors: Vec<String>,
    notes: Vec<String>,
}

/// Checks a truncated sample: a clean BAD_LEN from every entry point, and Ryu agreeing it is truncated.
fn check_truncated(
    bytes: &[u8],
    json: Result<Value, String>,
    parse: impl Fn(&[u8]) -> Result<(), WireError>,
    out: &mut Outcome,
) {
    let is_bad_len = |e: &WireError| e.err_type == error_type::BAD_REQUEST && e.code == bad_request::BAD_LEN;
    match parse(bytes) {
        Ok(()) => out.errors.push("truncated message decoded instead of failing with BAD_LEN".into()),
        Err(e) if !is_bad_len(&e) => out.errors.push(format!(
            "truncated message failed with {e} (type {} code {}), want BAD_REQUEST/BAD_LEN",
            e.err_type, e.code
        )),
        Err(_) => {}
    }
    match wire::parse_any(bytes) {
        Ok(_) => out.errors.push("parse_any decoded the truncated message".into()),
        Err(e) if !is_bad_len(&e) => {
            out.errors.push(format!("parse_any: truncated message failed with {e}, want BAD_LEN"))
        }
        Err(_) => {}
    }
    match wire::split_frame(bytes) {
        Ok(None) => {}
        other => out.errors.push(format!("split_frame on a truncated frame should ask for more bytes, got {other:?}")),
    }
    // With its header length patched to the bytes present, the body itself is cut short and
    // must still fail cleanly rather than decode.
    if bytes.len() >= wire::HEADER_LEN {
        let mut patched = bytes.to_vec();
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        patched[2..4].copy_from_slice(&len.to_be_bytes());
        if parse(&patched).is_ok() {
            out.errors.push("the truncated body decodes once its header length is patched".into());
        }
    }
    match json {
        Ok(v) => {
            if v.as_object().and_then(|m| m.keys().next()).map(String::as_str) != Some("OFPTruncatedMessage") {
                out.errors.push("its JSON does not say OFPTruncatedMessage".into());
            }
        }
        Err(e) => out.errors.push(e),
    }
}

/// Compares our JSON with Ryu's (experimenter content projected away, packet-library data mapped).
fn compare_json(expected: Result<Value, String>, mut actual: Value, out: &mut Outcome) {
    match expected {
        Ok(raw) => {
            let expected = common::project_experimenter(&raw);
            common::map_packet_library(&expected, &mut actual);
            for d in common::diff(&expected, &actual) {
                out.errors.push(format!("field {d}"));
            }
        }
        Err(e) => out.notes.push(format!("{e}: fields not compared")),
    }
}

/// The framing every packet must pass: one whole frame, as long as its header says.
fn check_framing(bytes: &[u8], out: &mut Outcome) {
    match wire::split_frame(bytes) {
        Ok(Some((h, len))) if len == bytes.len() && usize::from(h.length) == len => {}
        other => {
            out.errors.push(format!("split_frame should yield the whole {}-byte frame, got {other:?}", bytes.len()))
        }
    }
}

fn check_of13(corpus: &Corpus, name: &str, bytes: &[u8]) -> Outcome {
    let mut out = Outcome::default();
    let json = read_json(corpus, name);
    if is_truncated_sample(name) {
        check_truncated(bytes, json, |b| of13::parse(b).map(|_| ()), &mut out);
        return out;
    }
    check_framing(bytes, &mut out);
    let (header, msg) = match of13::parse(bytes) {
        Ok(v) => v,
        Err(e) => {
            out.errors.push(format!("does not decode: {e} (type {} code {})", e.err_type, e.code));
            return out;
        }
    };
    let mut buf = Vec::new();
    msg.emit(header.xid, &mut buf).expect("message fits in 64 KiB");
    if buf != bytes {
        out.errors.push(common::first_difference(bytes, &buf));
    }
    if msg.to_bytes(header.xid).expect("message fits in 64 KiB") != buf {
        out.errors.push("to_bytes differs from emit".into());
    }
    match wire::parse_any(bytes) {
        Ok((h, AnyMessage::V13(m))) if h == header && m == msg => {}
        Ok((_, other)) => out.errors.push(format!("parse_any decoded differently: {other:?}")),
        Err(e) => out.errors.push(format!("parse_any failed: {e}")),
    }
    compare_json(json, ryu13::message(&msg), &mut out);
    out
}

fn check_of10(corpus: &Corpus, name: &str, bytes: &[u8]) -> Outcome {
    let mut out = Outcome::default();
    let json = read_json(corpus, name);
    if is_truncated_sample(name) {
        check_truncated(bytes, json, |b| of10::parse(b).map(|_| ()), &mut out);
        return out;
    }
    check_framing(bytes, &mut out);
    let (header, msg) = match of10::parse(bytes) {
        Ok(v) => v,
        Err(e) => {
            out.errors.push(format!("does not decode: {e} (type {} code {})", e.err_type, e.code));
            return out;
        }
    };
    let buf = ryu10::emit(&msg, header.xid);
    if buf != bytes {
        out.errors.push(common::first_difference(bytes, &buf));
    }
    match wire::parse_any(bytes) {
        Ok((h, AnyMessage::V10(m))) if h == header && m == msg => {}
        Ok((_, other)) => out.errors.push(format!("parse_any decoded differently: {other:?}")),
        Err(e) => out.errors.push(format!("parse_any failed: {e}")),
    }
    compare_json(json, ryu10::message(&msg), &mut out);
    out
}

/// Runs `check` over a corpus, prints a per-file table, and fails listing every failure.
fn run(version_dir: &str, check: fn(&Corpus, &str, &[u8]) -> Outcome) {
    use std::fmt::Write as _;
    let corpus = load(version_dir);
    let mut failures = Vec::new();
    let mut passed = 0usize;
    // Built whole and printed once, so the two versions' tables do not interleave.
    let mut report = String::new();
    let _ = writeln!(report, "== {version_dir}: {} packet files", corpus.packets.len());
    for path in &corpus.packets {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let outcome = match fs::read(path) {
            Ok(bytes) => check(&corpus, &name, &bytes),
            Err(e) => Outcome { errors: vec![format!("cannot read: {e}")], notes: vec![] },
        };
        if outcome.errors.is_empty() {
            passed += 1;
            let _ = writeln!(report, "PASS {name}");
        } else {
            let _ = writeln!(report, "FAIL {name}");
            for e in &outcome.errors {
                let _ = writeln!(report, "     {e}");
                failures.push(format!("{version_dir}/{name}: {e}"));
            }
        }
        for n in &outcome.notes {
            let _ = writeln!(report, "     note: {n}");
        }
    }
    // JSON files without a packet (lib-ofctl-* describe requests built by Ryu's ofctl helpers,
    // with no captured bytes): nothing to decode, only noted.
    for j in &corpus.orphan_json {
        let _ = writeln!(report, "NOTE json/{j} has no packet: not checked");
    }
    let failed_files = corpus.packets.len() - passed;
    let _ = writeln!(
        report,
        "== {version_dir}: {passed} passed, {failed_files} failed, {} JSON files without a packet",
        corpus.orphan_json.len()
    );
    println!("{report}");
    assert!(
        failures.is_empty(),
        "{version_dir}: {failed_files} of {} files fail conformance:\n{}",
        corpus.packets.len(),
        failures.join("\n")
    );
}

#[test]
fn ryu_of13_corpus() {
    run("ryu-of13", check_of13);
}

#[test]
fn ryu_of10_corpus() {
    run("ryu-of10", check_of10);
}

/// The harness itself: a converted corpus message matches its JSON, and any changed field,
/// including the envelope of an opaque experimenter action, is reported by path.
#[test]
fn harness_reports_changed_fields() {
    let corpus = load("ryu-of13");
    let check = |packet: &str| {
        let bytes = fs::read(corpus.dir.join("packets").join(packet)).expect("corpus packet");
        let expected = common::project_experimenter(&read_json(&corpus, packet).expect("corpus JSON"));
        let (_, msg) = of13::parse(&bytes).expect("decodes");
        (expected, ryu13::message(&msg))
    };

    let (expected, mut actual) = check("4-2-ofp_flow_mod.packet");
    assert!(common::diff(&expected, &actual).is_empty());
    actual["OFPFlowMod"]["priority"] = serde_json::json!(124);
    let oxm = &mut actual["OFPFlowMod"]["match"]["OFPMatch"]["oxm_fields"][0]["OXMTlv"];
    oxm["value"] = serde_json::json!("f2:0b:a4:7d:f8:eb");
    assert_eq!(
        common::diff(&expected, &actual),
        [
            "OFPFlowMod.match.OFPMatch.oxm_fields[0].OXMTlv.value: expected \"f2:0b:a4:7d:f8:ea\", decoded \"f2:0b:a4:7d:f8:eb\"",
            "OFPFlowMod.priority: expected 123, decoded 124",
        ]
    );

    let (expected, mut actual) = check("ovs-ofctl-of13-action_learn.packet");
    assert!(common::diff(&expected, &actual).is_empty());
    let learn = &mut actual["OFPFlowMod"]["instructions"][0]["OFPInstructionActions"]["actions"][2];
    assert!(learn.get("NXActionLearn").is_some(), "{learn}");
    learn["NXActionLearn"]["subtype"] = serde_json::json!(17);
    assert_eq!(common::diff(&expected, &actual).len(), 1);
}
