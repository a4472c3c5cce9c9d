//! Group buckets (`ofp_bucket`), group mod, meter bands and meter mod.

use nom::number::complete::{be_u16, be_u32, be_u8};

use super::action::{emit_actions, parse_actions, Action};
use crate::wire::error::{error_type, WireError};
use crate::wire::{len_since, many_to_end, skip, take_n, PResult, Put};

/// Group types (`ofp_group_type`).
pub mod group_type {
    pub const ALL: u8 = 0;
    pub const SELECT: u8 = 1;
    pub const INDIRECT: u8 = 2;
    pub const FAST_FAILOVER: u8 = 3;
}

/// Group mod commands.
pub mod group_command {
    pub const ADD: u16 = 0;
    pub const MODIFY: u16 = 1;
    pub const DELETE: u16 = 2;
}

/// `ofp_bucket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub weight: u16,
    pub watch_port: u32,
    pub watch_group: u32,
    pub actions: Vec<Action>,
}

impl Bucket {
    pub fn parse(input: &[u8]) -> PResult<'_, Bucket> {
        let (_, len) = be_u16(input)?;
        let len = usize::from(len);
        if len < 16 {
            return WireError::new(error_type::GROUP_MOD_FAILED, 12, "bucket shorter than its header").fail();
        }
        let (rest, whole) = take_n(input, len, "bucket")?;
        let b = &whole[2..];
        let (b, weight) = be_u16(b)?;
        let (b, watch_port) = be_u32(b)?;
        let (b, watch_group) = be_u32(b)?;
        let (b, ()) = skip(b, 4)?;
        let actions = parse_actions(b)?;
        Ok((rest, Bucket { weight, watch_port, watch_group, actions }))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_u16(self.weight);
        out.put_u32(self.watch_port);
        out.put_u32(self.watch_group);
        out.put_zeros(4);
        emit_actions(&self.actions, out);
        let len = len_since(out, start);
        out.patch_u16(start, len);
    }
}

/// Parses buckets filling `input`.
pub fn parse_buckets(input: &[u8]) -> Result<Vec<Bucket>, nom::Err<WireError>> {
    many_to_end(input, Bucket::parse)
}

/// Emits buckets back to back.
pub fn emit_buckets(buckets: &[Bucket], out: &mut Vec<u8>) {
    for b in buckets {
        b.emit(out);
    }
}

/// `OFPT_GROUP_MOD` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMod {
    pub command: u16,
    pub group_type: u8,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

impl GroupMod {
    pub(crate) fn parse(input: &[u8]) -> PResult<'_, GroupMod> {
        let (input, command) = be_u16(input)?;
        let (input, group_type) = be_u8(input)?;
        let (input, ()) = skip(input, 1)?;
        let (input, group_id) = be_u32(input)?;
        let buckets = parse_buckets(input)?;
        Ok((&[], GroupMod { command, group_type, group_id, buckets }))
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u16(self.command);
        out.put_u8(self.group_type);
        out.put_zeros(1);
        out.put_u32(self.group_id);
        emit_buckets(&self.buckets, out);
    }
}

/// Meter band types.
pub mod band_type {
    pub const DROP: u16 = 1;
    pub const DSCP_REMARK: u16 = 2;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// A meter band.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeterBand {
    Drop { rate: u32, burst_size: u32 },
    DscpRemark { rate: u32, burst_size: u32, prec_level: u8 },
    Experimenter { rate: u32, burst_size: u32, experimenter: u32, data: Vec<u8> },
}

impl MeterBand {
    pub fn parse(input: &[u8]) -> PResult<'_, MeterBand> {
        let (_, ty) = be_u16(input)?;
        let (_, len) = be_u16(&input[2..])?;
        let len = usize::from(len);
        if len < 16 {
            return WireError::new(error_type::METER_MOD_FAILED, 8, "meter band shorter than 16 bytes").fail();
        }
        let (rest, whole) = take_n(input, len, "meter band")?;
        let (b, rate) = be_u32(&whole[4..])?;
        let (b, burst_size) = be_u32(b)?;
        if ty != band_type::EXPERIMENTER && len != 16 {
            return WireError::new(error_type::METER_MOD_FAILED, 8, "drop and dscp_remark bands are 16 bytes").fail();
        }
        let band = match ty {
            band_type::DROP => MeterBand::Drop { rate, burst_size },
            band_type::DSCP_REMARK => MeterBand::DscpRemark { rate, burst_size, prec_level: be_u8(b)?.1 },
            band_type::EXPERIMENTER => {
                let (b, experimenter) = be_u32(b)?;
                MeterBand::Experimenter { rate, burst_size, experimenter, data: b.to_vec() }
            }
            _ => return WireError::new(error_type::METER_MOD_FAILED, 8, "unknown meter band type").fail(),
        };
        Ok((rest, band))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let (ty, rate, burst) = match self {
            MeterBand::Drop { rate, burst_size } => (band_type::DROP, rate, burst_size),
            MeterBand::DscpRemark { rate, burst_size, .. } => (band_type::DSCP_REMARK, rate, burst_size),
            MeterBand::Experimenter { rate, burst_size, .. } => (band_type::EXPERIMENTER, rate, burst_size),
        };
        out.put_u16(ty);
        out.put_u16(0);
        out.put_u32(*rate);
        out.put_u32(*burst);
        match self {
            MeterBand::Drop { .. } => out.put_zeros(4),
            MeterBand::DscpRemark { prec_level, .. } => {
                out.put_u8(*prec_level);
                out.put_zeros(3);
            }
            MeterBand::Experimenter { experimenter, data, .. } => {
                out.put_u32(*experimenter);
                out.extend_from_slice(data);
            }
        }
        let len = len_since(out, start);
        out.patch_u16(start + 2, len);
    }
}

/// Parses meter bands filling `input`.
pub fn parse_bands(input: &[u8]) -> Result<Vec<MeterBand>, nom::Err<WireError>> {
    many_to_end(input, MeterBand::parse)
}

/// Emits meter bands back to back.
pub fn emit_bands(bands: &[MeterBand], out: &mut Vec<u8>) {
    for b in bands {
        b.emit(out);
    }
}

/// `OFPT_METER_MOD` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterMod {
    pub command: u16,
    pub flags: u16,
    pub meter_id: u32,
    pub bands: Vec<MeterBand>,
}

impl MeterMod {
    pub(crate) fn parse(input: &[u8]) -> PResult<'_, MeterMod> {
        let (input, command) = be_u16(input)?;
        let (input, flags) = be_u16(input)?;
        let (input, meter_id) = be_u32(input)?;
        let bands = parse_bands(input)?;
        Ok((&[], MeterMod { command, flags, meter_id, bands }))
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u16(self.command);
        out.put_u16(self.flags);
        out.put_u32(self.meter_id);
        emit_bands(&self.bands, out);
    }
}
