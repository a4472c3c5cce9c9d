//! Port description (`ofp_port`), port status and port mod.

use nom::number::complete::{be_u32, be_u8};

use crate::wire::{skip, take_n, PResult, Put};

/// `OFPPC_*` port config bits.
pub mod port_config {
    pub const PORT_DOWN: u32 = 1 << 0;
    pub const NO_RECV: u32 = 1 << 2;
    pub const NO_FWD: u32 = 1 << 5;
    pub const NO_PACKET_IN: u32 = 1 << 6;
}

/// `OFPPS_*` port state bits.
pub mod port_state {
    pub const LINK_DOWN: u32 = 1 << 0;
    pub const BLOCKED: u32 = 1 << 1;
    pub const LIVE: u32 = 1 << 2;
}

/// `OFPPR_*` port status reasons.
pub mod port_reason {
    pub const ADD: u8 = 0;
    pub const DELETE: u8 = 1;
    pub const MODIFY: u8 = 2;
}

/// Length of `ofp_port` on the wire.
pub const PORT_LEN: usize = 64;

/// `ofp_port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Port {
    pub port_no: u32,
    pub hw_addr: [u8; 6],
    /// The name as on the wire: NUL-padded bytes (see [`Port::name`]).
    pub name_bytes: [u8; 16],
    pub config: u32,
    pub state: u32,
    pub curr: u32,
    pub advertised: u32,
    pub supported: u32,
    pub peer: u32,
    pub curr_speed: u32,
    pub max_speed: u32,
}

/// Copies a NUL-padded fixed-size string field.
pub(crate) fn fixed_str<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = bytes.len().min(N);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

/// The text of a NUL-padded field, lossy where it is not UTF-8.
pub fn str_of(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl Port {
    /// The port's name (up to the first NUL).
    pub fn name(&self) -> String {
        str_of(&self.name_bytes)
    }

    /// Whether the link is up and the port not administratively down.
    pub fn is_up(&self) -> bool {
        self.state & port_state::LINK_DOWN == 0 && self.config & port_config::PORT_DOWN == 0
    }

    pub fn parse(input: &[u8]) -> PResult<'_, Port> {
        let (input, port_no) = be_u32(input)?;
        let (input, ()) = skip(input, 4)?;
        let (input, hw) = take_n(input, 6, "port hw_addr")?;
        let (input, ()) = skip(input, 2)?;
        let (input, name) = take_n(input, 16, "port name")?;
        let (input, config) = be_u32(input)?;
        let (input, state) = be_u32(input)?;
        let (input, curr) = be_u32(input)?;
        let (input, advertised) = be_u32(input)?;
        let (input, supported) = be_u32(input)?;
        let (input, peer) = be_u32(input)?;
        let (input, curr_speed) = be_u32(input)?;
        let (input, max_speed) = be_u32(input)?;
        Ok((
            input,
            Port {
                port_no,
                hw_addr: fixed_str(hw),
                name_bytes: fixed_str(name),
                config,
                state,
                curr,
                advertised,
                supported,
                peer,
                curr_speed,
                max_speed,
            },
        ))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.port_no);
        out.put_zeros(4);
        out.extend_from_slice(&self.hw_addr);
        out.put_zeros(2);
        out.extend_from_slice(&self.name_bytes);
        for v in [
            self.config,
            self.state,
            self.curr,
            self.advertised,
            self.supported,
            self.peer,
            self.curr_speed,
            self.max_speed,
        ] {
            out.put_u32(v);
        }
    }
}

/// `OFPT_PORT_STATUS` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStatus {
    pub reason: u8,
    pub desc: Port,
}

impl PortStatus {
    pub(crate) fn parse(input: &[u8]) -> PResult<'_, PortStatus> {
        let (input, reason) = be_u8(input)?;
        let (input, ()) = skip(input, 7)?;
        let (input, desc) = Port::parse(input)?;
        Ok((input, PortStatus { reason, desc }))
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u8(self.reason);
        out.put_zeros(7);
        self.desc.emit(out);
    }
}

/// `OFPT_PORT_MOD` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMod {
    pub port_no: u32,
    pub hw_addr: [u8; 6],
    pub config: u32,
    pub mask: u32,
    pub advertise: u32,
}

impl PortMod {
    pub(crate) fn parse(input: &[u8]) -> PResult<'_, PortMod> {
        let (input, port_no) = be_u32(input)?;
        let (input, ()) = skip(input, 4)?;
        let (input, hw) = take_n(input, 6, "port_mod hw_addr")?;
        let (input, ()) = skip(input, 2)?;
        let (input, config) = be_u32(input)?;
        let (input, mask) = be_u32(input)?;
        let (input, advertise) = be_u32(input)?;
        let (input, ()) = skip(input, 4)?;
        Ok((input, PortMod { port_no, hw_addr: fixed_str(hw), config, mask, advertise }))
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.port_no);
        out.put_zeros(4);
        out.extend_from_slice(&self.hw_addr);
        out.put_zeros(2);
        out.put_u32(self.config);
        out.put_u32(self.mask);
        out.put_u32(self.advertise);
        out.put_zeros(4);
    }
}
