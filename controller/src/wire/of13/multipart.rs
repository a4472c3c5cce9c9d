//! Multipart (statistics) requests and replies, and queue descriptions.
//!
//! STUB: being completed (every multipart type of OpenFlow 1.3).

use nom::number::complete::{be_u16, be_u32};

use crate::wire::error::WireError;
use crate::wire::{take_n, PResult, Put};

/// Multipart types (`ofp_multipart_type`).
pub mod multipart_type {
    pub const DESC: u16 = 0;
    pub const PORT_DESC: u16 = 13;
    pub const EXPERIMENTER: u16 = 0xffff;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartRequest {
    Desc,
    PortDesc,
    Experimenter { experimenter: u32, exp_type: u32, data: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartReply {
    PortDesc(Vec<super::Port>),
    Experimenter { experimenter: u32, exp_type: u32, data: Vec<u8> },
}

impl MultipartRequest {
    pub fn multipart_type(&self) -> u16 {
        match self {
            MultipartRequest::Desc => multipart_type::DESC,
            MultipartRequest::PortDesc => multipart_type::PORT_DESC,
            MultipartRequest::Experimenter { .. } => multipart_type::EXPERIMENTER,
        }
    }
    pub fn parse(ty: u16, body: &[u8]) -> Result<Self, nom::Err<WireError>> {
        Ok(match ty {
            multipart_type::DESC => MultipartRequest::Desc,
            multipart_type::PORT_DESC => MultipartRequest::PortDesc,
            multipart_type::EXPERIMENTER => {
                let (r, experimenter) = be_u32(body)?;
                let (r, exp_type) = be_u32(r)?;
                MultipartRequest::Experimenter { experimenter, exp_type, data: r.to_vec() }
            }
            _ => return WireError::bad_multipart("unknown multipart type").fail(),
        })
    }
    pub fn emit(&self, out: &mut Vec<u8>) {
        if let MultipartRequest::Experimenter { experimenter, exp_type, data } = self {
            out.put_u32(*experimenter);
            out.put_u32(*exp_type);
            out.extend_from_slice(data);
        }
    }
}

impl MultipartReply {
    pub fn multipart_type(&self) -> u16 {
        match self {
            MultipartReply::PortDesc(_) => multipart_type::PORT_DESC,
            MultipartReply::Experimenter { .. } => multipart_type::EXPERIMENTER,
        }
    }
    pub fn parse(ty: u16, body: &[u8]) -> Result<Self, nom::Err<WireError>> {
        Ok(match ty {
            multipart_type::PORT_DESC => MultipartReply::PortDesc(crate::wire::many_to_end(body, super::Port::parse)?),
            multipart_type::EXPERIMENTER => {
                let (r, experimenter) = be_u32(body)?;
                let (r, exp_type) = be_u32(r)?;
                MultipartReply::Experimenter { experimenter, exp_type, data: r.to_vec() }
            }
            _ => return WireError::bad_multipart("unknown multipart type").fail(),
        })
    }
    pub fn emit(&self, out: &mut Vec<u8>) {
        match self {
            MultipartReply::PortDesc(ports) => ports.iter().for_each(|p| p.emit(out)),
            MultipartReply::Experimenter { experimenter, exp_type, data } => {
                out.put_u32(*experimenter);
                out.put_u32(*exp_type);
                out.extend_from_slice(data);
            }
        }
    }
}

/// `ofp_packet_queue` (STUB: properties opaque).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketQueue {
    pub queue_id: u32,
    pub port: u32,
    pub properties: Vec<u8>,
}

impl PacketQueue {
    pub fn parse(input: &[u8]) -> PResult<'_, PacketQueue> {
        let (r, queue_id) = be_u32(input)?;
        let (r, port) = be_u32(r)?;
        let (_, len) = be_u16(r)?;
        let (rest, whole) = take_n(input, usize::from(len).max(16), "queue")?;
        Ok((rest, PacketQueue { queue_id, port, properties: whole[16..].to_vec() }))
    }
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u32(self.queue_id);
        out.put_u32(self.port);
        out.put_u16(0);
        out.put_zeros(6);
        out.extend_from_slice(&self.properties);
        let len = crate::wire::len_since(out, start);
        out.patch_u16(start + 8, len);
    }
}
