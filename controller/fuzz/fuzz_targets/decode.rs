//! Feeds arbitrary bytes to every decoder entry point. Any panic is a bug:
//! switches may send anything. What decodes must re-encode to bytes that decode
//! to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenet_controller::wire::{of10, of13, parse_any, split_frame};

fuzz_target!(|data: &[u8]| {
    let _ = split_frame(data);
    let _ = parse_any(data);
    if let Ok((h, m)) = of13::parse(data) {
        let again = m.to_bytes(h.xid).expect("message fits in 64 KiB");
        let (_, m2) = of13::parse(&again).expect("re-emitted 1.3 message must parse");
        assert_eq!(m, m2);
    }
    if let Ok((h, m)) = of10::parse(data) {
        let again = m.to_bytes(h.xid).expect("message fits in 64 KiB");
        let (_, m2) = of10::parse(&again).expect("re-emitted 1.0 message must parse");
        assert_eq!(m, m2);
    }
});
