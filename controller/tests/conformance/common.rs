//! Helpers shared by the OpenFlow 1.3 and 1.0 converters: value formatting in Ryu's JSON
//! style, the projection of experimenter content, the decoding of Ryu's packet-library form,
//! and a structural JSON diff that names every differing path.

use std::net::{Ipv4Addr, Ipv6Addr};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// `{"ClassName": {fields}}`, Ryu's to_jsondict() form.
pub fn class(name: &str, fields: Value) -> Value {
    let mut m = Map::new();
    m.insert(name.to_owned(), fields);
    Value::Object(m)
}

/// Bytes as Ryu prints them: standard base64.
pub fn b64(bytes: &[u8]) -> Value {
    Value::String(STANDARD.encode(bytes))
}

/// "aa:bb:cc:dd:ee:ff".
pub fn mac(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

pub fn ipv4(bytes: &[u8]) -> Option<String> {
    let a: [u8; 4] = bytes.try_into().ok()?;
    Some(Ipv4Addr::from(a).to_string())
}

pub fn ipv6(bytes: &[u8]) -> Option<String> {
    let a: [u8; 16] = bytes.try_into().ok()?;
    Some(Ipv6Addr::from(a).to_string())
}

/// A big-endian unsigned integer as a JSON number (a decimal string past 64 bits, which
/// serde_json cannot hold without arbitrary precision; no corpus value is that wide).
pub fn uint(bytes: &[u8]) -> Value {
    if bytes.len() > 16 {
        return Value::String(bytes.iter().map(|b| format!("{b:02x}")).collect());
    }
    let v = bytes.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    match u64::try_from(v) {
        Ok(v) => json!(v),
        Err(_) => Value::String(v.to_string()),
    }
}

/// The indices of the set bits of a bitmap given as 32-bit words (bit `n` of word `w` is `32 * w + n`).
pub fn bits_of(words: &[u32]) -> Vec<u32> {
    let mut out = Vec::new();
    for (w, word) in words.iter().enumerate() {
        for b in 0..32 {
            if word & (1 << b) != 0 {
                out.push(32 * w as u32 + b);
            }
        }
    }
    out
}

/// Experimenter content is kept opaque and byte-identical by design (the byte round trip is
/// checked separately), so for Ryu's Nicira/ONF classes and unknown experimenter actions only
/// the standard envelope is compared: type, len, experimenter (vendor in 1.0) and, for Nicira
/// actions, the subtype our model carries; for ONF multipart messages the multipart header
/// (type, flags) and the experimenter id and type. Everything Ryu decodes inside them
/// (NXActionLearn specs, NXActionCT nested actions, ONF flow monitor requests ...) is dropped
/// from the expected JSON here.
pub fn project_experimenter(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(project_experimenter).collect()),
        Value::Object(m) => {
            if m.len() == 1 {
                let (name, inner) = m.iter().next().expect("one entry");
                if let (Some(keep), Value::Object(fields)) = (kept_keys(name), inner) {
                    let projected: Map<String, Value> = fields
                        .iter()
                        .filter(|(k, _)| keep.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    return class(name, Value::Object(projected));
                }
            }
            Value::Object(m.iter().map(|(k, v)| (k.clone(), project_experimenter(v))).collect())
        }
        other => other.clone(),
    }
}

/// The fields of an experimenter class that are compared, or None for a standard class.
fn kept_keys(class_name: &str) -> Option<&'static [&'static str]> {
    if class_name.starts_with("NXAction") {
        Some(&["type", "len", "experimenter", "subtype", "vendor"])
    } else if class_name == "OFPActionExperimenterUnknown" {
        Some(&["type", "len", "experimenter"])
    } else if class_name.starts_with("ONF")
        && (class_name.ends_with("StatsRequest") || class_name.ends_with("StatsReply"))
    {
        Some(&["type", "flags", "experimenter", "exp_type"])
    } else {
        None
    }
}

/// Ryu's packet library shows some `data` fields decoded (`{"Packet": {"protocols": [...]}}`)
/// where our model keeps bytes. Wherever the expected JSON has that form and ours has a
/// base64 string, decode our bytes the same way (Ethernet / IPv4 / ICMP echo, the layers the
/// corpus uses) so the comparison still covers every byte.
pub fn map_packet_library(expected: &Value, actual: &mut Value) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                if let Some(av) = a.get_mut(k) {
                    if is_packet(ev) {
                        if let Value::String(s) = av {
                            if let Ok(bytes) = STANDARD.decode(s.as_bytes()) {
                                *av = decode_packet(&bytes);
                            }
                        }
                    } else {
                        map_packet_library(ev, av);
                    }
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for (ev, av) in e.iter().zip(a.iter_mut()) {
                map_packet_library(ev, av);
            }
        }
        _ => {}
    }
}

fn is_packet(v: &Value) -> bool {
    v.as_object().is_some_and(|m| m.len() == 1 && m.contains_key("Packet"))
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Decodes Ethernet, then IPv4, then ICMP (echo request/reply bodies) into Ryu's packet-library
/// JSON; unknown or short layers end the protocol list with the remaining bytes as base64.
pub fn decode_packet(bytes: &[u8]) -> Value {
    let mut protocols = Vec::new();
    let mut rest = bytes;
    'layers: {
        if rest.len() < 14 {
            break 'layers;
        }
        let ethertype = be16(rest, 12);
        protocols
            .push(json!({"ethernet": {"dst": mac(&rest[0..6]), "src": mac(&rest[6..12]), "ethertype": ethertype}}));
        rest = &rest[14..];
        if ethertype != 0x0800 || rest.len() < 20 {
            break 'layers;
        }
        let ihl = usize::from(rest[0] & 0x0f);
        let header_len = ihl * 4;
        if header_len < 20 || rest.len() < header_len {
            break 'layers;
        }
        let flags_off = be16(rest, 6);
        let proto = rest[9];
        let option = if header_len > 20 { b64(&rest[20..header_len]) } else { Value::Null };
        protocols.push(json!({"ipv4": {
            "version": rest[0] >> 4,
            "header_length": ihl,
            "tos": rest[1],
            "total_length": be16(rest, 2),
            "identification": be16(rest, 4),
            "flags": flags_off >> 13,
            "offset": flags_off & 0x1fff,
            "ttl": rest[8],
            "proto": proto,
            "csum": be16(rest, 10),
            "src": ipv4(&rest[12..16]),
            "dst": ipv4(&rest[16..20]),
            "option": option,
        }}));
        rest = &rest[header_len..];
        if proto != 1 || rest.len() < 4 {
            break 'layers;
        }
        let (ty, code, csum) = (rest[0], rest[1], be16(rest, 2));
        let body = &rest[4..];
        let data = if (ty == 0 || ty == 8) && body.len() >= 4 {
            json!({"echo": {"id": be16(body, 0), "seq": be16(body, 2), "data": b64(&body[4..])}})
        } else {
            b64(body)
        };
        protocols.push(json!({"icmp": {"type": ty, "code": code, "csum": csum, "data": data}}));
        rest = &[];
    }
    if !rest.is_empty() {
        protocols.push(b64(rest));
    }
    json!({"Packet": {"protocols": protocols}})
}

/// Every path where `actual` differs from `expected`, as "path: expected X, decoded Y".
pub fn diff(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_at("", expected, actual, &mut out);
    out
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 160 {
        let mut cut = 160;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}...", &s[..cut])
    } else {
        s
    }
}

fn diff_at(path: &str, e: &Value, a: &Value, out: &mut Vec<String>) {
    match (e, a) {
        (Value::Object(em), Value::Object(am)) => {
            for (k, ev) in em {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match am.get(k) {
                    Some(av) => diff_at(&p, ev, av, out),
                    None => out.push(format!("{p}: expected {}, missing from our decoding", short(ev))),
                }
            }
            for (k, av) in am {
                if !em.contains_key(k) {
                    let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    out.push(format!("{p}: not in Ryu's JSON, we decoded {}", short(av)));
                }
            }
        }
        (Value::Array(ev), Value::Array(av)) => {
            if ev.len() != av.len() {
                out.push(format!("{path}: expected {} items, decoded {}", ev.len(), av.len()));
            }
            for (i, (x, y)) in ev.iter().zip(av).enumerate() {
                diff_at(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ => {
            if e != a {
                out.push(format!("{path}: expected {}, decoded {}", short(e), short(a)));
            }
        }
    }
}

/// Where two byte strings first differ, for round-trip failures.
pub fn first_difference(want: &[u8], got: &[u8]) -> String {
    let at = want.iter().zip(got).position(|(a, b)| a != b).unwrap_or(want.len().min(got.len()));
    let window = |b: &[u8]| {
        let end = (at + 8).min(b.len());
        b.get(at..end).map(|s| s.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")).unwrap_or_default()
    };
    format!(
        "re-emitted {} bytes for {} read; first difference at offset {at}: want [{}], got [{}]",
        got.len(),
        want.len(),
        window(want),
        window(got)
    )
}
