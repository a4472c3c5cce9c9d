//! Decoding errors, and the OpenFlow ERROR types and codes that answer them.

use core::fmt;

/// OpenFlow 1.3 error types (`ofp_error_type`).
pub mod error_type {
    pub const HELLO_FAILED: u16 = 0;
    pub const BAD_REQUEST: u16 = 1;
    pub const BAD_ACTION: u16 = 2;
    pub const BAD_INSTRUCTION: u16 = 3;
    pub const BAD_MATCH: u16 = 4;
    pub const FLOW_MOD_FAILED: u16 = 5;
    pub const GROUP_MOD_FAILED: u16 = 6;
    pub const PORT_MOD_FAILED: u16 = 7;
    pub const TABLE_MOD_FAILED: u16 = 8;
    pub const QUEUE_OP_FAILED: u16 = 9;
    pub const SWITCH_CONFIG_FAILED: u16 = 10;
    pub const ROLE_REQUEST_FAILED: u16 = 11;
    pub const METER_MOD_FAILED: u16 = 12;
    pub const TABLE_FEATURES_FAILED: u16 = 13;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// Codes of `OFPET_BAD_REQUEST`.
pub mod bad_request {
    pub const BAD_VERSION: u16 = 0;
    pub const BAD_TYPE: u16 = 1;
    pub const BAD_MULTIPART: u16 = 2;
    pub const BAD_EXPERIMENTER: u16 = 3;
    pub const BAD_EXP_TYPE: u16 = 4;
    pub const EPERM: u16 = 5;
    pub const BAD_LEN: u16 = 6;
    pub const BUFFER_EMPTY: u16 = 7;
    pub const BUFFER_UNKNOWN: u16 = 8;
    pub const BAD_TABLE_ID: u16 = 9;
    pub const IS_SLAVE: u16 = 10;
    pub const BAD_PORT: u16 = 11;
    pub const BAD_PACKET: u16 = 12;
    pub const MULTIPART_BUFFER_OVERFLOW: u16 = 13;
}

const HELLO_FAILED: &[&str] = &["INCOMPATIBLE", "EPERM"];
const BAD_REQUEST: &[&str] = &[
    "BAD_VERSION",
    "BAD_TYPE",
    "BAD_MULTIPART",
    "BAD_EXPERIMENTER",
    "BAD_EXP_TYPE",
    "EPERM",
    "BAD_LEN",
    "BUFFER_EMPTY",
    "BUFFER_UNKNOWN",
    "BAD_TABLE_ID",
    "IS_SLAVE",
    "BAD_PORT",
    "BAD_PACKET",
    "MULTIPART_BUFFER_OVERFLOW",
];
const BAD_ACTION: &[&str] = &[
    "BAD_TYPE",
    "BAD_LEN",
    "BAD_EXPERIMENTER",
    "BAD_EXP_TYPE",
    "BAD_OUT_PORT",
    "BAD_ARGUMENT",
    "EPERM",
    "TOO_MANY",
    "BAD_QUEUE",
    "BAD_OUT_GROUP",
    "MATCH_INCONSISTENT",
    "UNSUPPORTED_ORDER",
    "BAD_TAG",
    "BAD_SET_TYPE",
    "BAD_SET_LEN",
    "BAD_SET_ARGUMENT",
];
const BAD_INSTRUCTION: &[&str] = &[
    "UNKNOWN_INST",
    "UNSUP_INST",
    "BAD_TABLE_ID",
    "UNSUP_METADATA",
    "UNSUP_METADATA_MASK",
    "BAD_EXPERIMENTER",
    "BAD_EXP_TYPE",
    "BAD_LEN",
    "EPERM",
];
const BAD_MATCH: &[&str] = &[
    "BAD_TYPE",
    "BAD_LEN",
    "BAD_TAG",
    "BAD_DL_ADDR_MASK",
    "BAD_NW_ADDR_MASK",
    "BAD_WILDCARDS",
    "BAD_FIELD",
    "BAD_VALUE",
    "BAD_MASK",
    "BAD_PREREQ",
    "DUP_FIELD",
    "EPERM",
];
const FLOW_MOD_FAILED: &[&str] =
    &["UNKNOWN", "TABLE_FULL", "BAD_TABLE_ID", "OVERLAP", "EPERM", "BAD_TIMEOUT", "BAD_COMMAND", "BAD_FLAGS"];
const GROUP_MOD_FAILED: &[&str] = &[
    "GROUP_EXISTS",
    "INVALID_GROUP",
    "WEIGHT_UNSUPPORTED",
    "OUT_OF_GROUPS",
    "OUT_OF_BUCKETS",
    "CHAINING_UNSUPPORTED",
    "WATCH_UNSUPPORTED",
    "LOOP",
    "UNKNOWN_GROUP",
    "CHAINED_GROUP",
    "BAD_TYPE",
    "BAD_COMMAND",
    "BAD_BUCKET",
    "BAD_WATCH",
    "EPERM",
];
const PORT_MOD_FAILED: &[&str] = &["BAD_PORT", "BAD_HW_ADDR", "BAD_CONFIG", "BAD_ADVERTISE", "EPERM"];
const TABLE_MOD_FAILED: &[&str] = &["BAD_TABLE", "BAD_CONFIG", "EPERM"];
const QUEUE_OP_FAILED: &[&str] = &["BAD_PORT", "BAD_QUEUE", "EPERM"];
const SWITCH_CONFIG_FAILED: &[&str] = &["BAD_FLAGS", "BAD_LEN", "EPERM"];
const ROLE_REQUEST_FAILED: &[&str] = &["STALE", "UNSUP", "BAD_ROLE"];
const METER_MOD_FAILED: &[&str] = &[
    "UNKNOWN",
    "METER_EXISTS",
    "INVALID_METER",
    "UNKNOWN_METER",
    "BAD_COMMAND",
    "BAD_FLAGS",
    "BAD_RATE",
    "BAD_BURST",
    "BAD_BAND",
    "BAD_BAND_VALUE",
    "OUT_OF_METERS",
    "OUT_OF_BANDS",
];
const TABLE_FEATURES_FAILED: &[&str] = &["BAD_TABLE", "BAD_METADATA", "BAD_TYPE", "BAD_LEN", "BAD_ARGUMENT", "EPERM"];

/// The names of an OpenFlow 1.3 error type and code, for logs (`("BAD_REQUEST", "BAD_LEN")`).
pub fn describe(err_type: u16, code: u16) -> (&'static str, &'static str) {
    let (name, codes): (&str, &[&str]) = match err_type {
        error_type::HELLO_FAILED => ("HELLO_FAILED", HELLO_FAILED),
        error_type::BAD_REQUEST => ("BAD_REQUEST", BAD_REQUEST),
        error_type::BAD_ACTION => ("BAD_ACTION", BAD_ACTION),
        error_type::BAD_INSTRUCTION => ("BAD_INSTRUCTION", BAD_INSTRUCTION),
        error_type::BAD_MATCH => ("BAD_MATCH", BAD_MATCH),
        error_type::FLOW_MOD_FAILED => ("FLOW_MOD_FAILED", FLOW_MOD_FAILED),
        error_type::GROUP_MOD_FAILED => ("GROUP_MOD_FAILED", GROUP_MOD_FAILED),
        error_type::PORT_MOD_FAILED => ("PORT_MOD_FAILED", PORT_MOD_FAILED),
        error_type::TABLE_MOD_FAILED => ("TABLE_MOD_FAILED", TABLE_MOD_FAILED),
        error_type::QUEUE_OP_FAILED => ("QUEUE_OP_FAILED", QUEUE_OP_FAILED),
        error_type::SWITCH_CONFIG_FAILED => ("SWITCH_CONFIG_FAILED", SWITCH_CONFIG_FAILED),
        error_type::ROLE_REQUEST_FAILED => ("ROLE_REQUEST_FAILED", ROLE_REQUEST_FAILED),
        error_type::METER_MOD_FAILED => ("METER_MOD_FAILED", METER_MOD_FAILED),
        error_type::TABLE_FEATURES_FAILED => ("TABLE_FEATURES_FAILED", TABLE_FEATURES_FAILED),
        error_type::EXPERIMENTER => return ("EXPERIMENTER", "EXPERIMENTER"),
        _ => return ("UNKNOWN_TYPE", "UNKNOWN_CODE"),
    };
    (name, codes.get(usize::from(code)).copied().unwrap_or("UNKNOWN_CODE"))
}

/// Why a message could not be decoded, with the OpenFlow ERROR that answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireError {
    /// `ofp_error_type` to report to the peer.
    pub err_type: u16,
    /// Code within that type.
    pub code: u16,
    /// What was wrong, for logs.
    pub what: &'static str,
}

impl WireError {
    pub const fn new(err_type: u16, code: u16, what: &'static str) -> Self {
        WireError { err_type, code, what }
    }
    pub const fn bad_len(what: &'static str) -> Self {
        Self::new(error_type::BAD_REQUEST, bad_request::BAD_LEN, what)
    }
    pub const fn bad_version(_v: u8) -> Self {
        Self::new(error_type::BAD_REQUEST, bad_request::BAD_VERSION, "unsupported OpenFlow version")
    }
    pub const fn bad_type(what: &'static str) -> Self {
        Self::new(error_type::BAD_REQUEST, bad_request::BAD_TYPE, what)
    }
    pub const fn bad_multipart(what: &'static str) -> Self {
        Self::new(error_type::BAD_REQUEST, bad_request::BAD_MULTIPART, what)
    }
    pub const fn bad_action(code: u16, what: &'static str) -> Self {
        Self::new(error_type::BAD_ACTION, code, what)
    }
    pub const fn bad_instruction(code: u16, what: &'static str) -> Self {
        Self::new(error_type::BAD_INSTRUCTION, code, what)
    }
    pub const fn bad_match(code: u16, what: &'static str) -> Self {
        Self::new(error_type::BAD_MATCH, code, what)
    }
    /// As a nom error, for use inside parsers.
    pub(crate) fn fail<T>(self) -> Result<T, nom::Err<WireError>> {
        Err(nom::Err::Error(self))
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (t, c) = describe(self.err_type, self.code);
        write!(f, "{} ({t}/{c})", self.what)
    }
}

impl std::error::Error for WireError {}

impl<'a> nom::error::ParseError<&'a [u8]> for WireError {
    fn from_error_kind(_input: &'a [u8], _kind: nom::error::ErrorKind) -> Self {
        WireError::bad_len("truncated")
    }
    fn append(_input: &'a [u8], _kind: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_every_bad_request_code() {
        assert_eq!(describe(1, 6), ("BAD_REQUEST", "BAD_LEN"));
        assert_eq!(describe(4, 10), ("BAD_MATCH", "DUP_FIELD"));
        assert_eq!(describe(13, 5), ("TABLE_FEATURES_FAILED", "EPERM"));
        assert_eq!(describe(77, 0), ("UNKNOWN_TYPE", "UNKNOWN_CODE"));
        assert_eq!(describe(1, 99), ("BAD_REQUEST", "UNKNOWN_CODE"));
    }
}
