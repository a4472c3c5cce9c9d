//! OpenFlow 1.0 messages (STUB: being written).

use crate::wire::error::WireError;
use crate::wire::Header;

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Hello,
}

pub fn parse(frame: &[u8]) -> Result<(Header, Message), WireError> {
    let _ = frame;
    Err(WireError::bad_type("OpenFlow 1.0 not yet supported"))
}
