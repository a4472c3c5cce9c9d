//! Learning mode: a reactive L2 learning switch per datapath.
//!
//! Each PACKET_IN teaches the switch's table where its source MAC lives. A
//! packet for a known destination gets a FLOW_MOD (priority 1, match in_port +
//! eth_src + eth_dst, idle timeout) that carries the packet's buffer id, so the
//! switch forwards the buffered packet itself and one message answers one
//! PACKET_IN. When the switch did not buffer the packet (OVS never does), a
//! PACKET_OUT with the data follows. Unknown and broadcast destinations are
//! flooded with a PACKET_OUT. Link-local frames (LLDP, STP: 01:80:c2:00:00:0x)
//! are never forwarded.
//!
//! Flooding uses OFPP_FLOOD, so learning mode expects a loop-free topology;
//! loops need the topology's spanning tree (a later issue).

use std::collections::HashMap;

use crate::session::{AppFactory, Ctx, DatapathApp, PacketInRef};
use crate::wire::of13::{self, action::port_no, Action, FlowMod, Instruction, Match, Oxm};
use crate::wire::{of10, OFP10};

/// Idle timeout of learned flows, seconds.
pub const IDLE_TIMEOUT: u16 = 60;
/// Priority of learned flows (the OpenFlow 1.3 table-miss flow has 0).
pub const LEARNED_PRIORITY: u16 = 1;
const ETHERTYPE_LLDP: u16 = 0x88cc;

/// Makes a [`LearningSwitch`] per connection.
pub struct Learning;

impl AppFactory for Learning {
    fn make(&self) -> Box<dyn DatapathApp> {
        Box::new(LearningSwitch::default())
    }
}

/// One datapath's MAC table. Keys come from the network, so the hash is keyed
/// per table (aHash's random state): cheap, and no hash-flooding by crafted MACs.
#[derive(Default)]
pub struct LearningSwitch {
    macs: HashMap<[u8; 6], u32, ahash::RandomState>,
}

/// What to do with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Not forwarded at all (link-local control frames, or hairpin to the input port).
    Drop,
    /// Destination unknown or broadcast: flood.
    Flood,
    /// Destination learned on `port`: install a flow and forward.
    Forward { port: u32 },
}

fn mac(b: &[u8]) -> [u8; 6] {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[..6]);
    m
}

impl LearningSwitch {
    /// Learns from the frame and decides where it goes. `None` for frames too short to be Ethernet.
    pub fn learn(&mut self, in_port: u32, frame: &[u8]) -> Option<(Decision, [u8; 6], [u8; 6])> {
        if frame.len() < 14 {
            return None;
        }
        let (dst, src) = (mac(&frame[0..6]), mac(&frame[6..12]));
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        if ethertype == ETHERTYPE_LLDP || (dst[..5] == [0x01, 0x80, 0xc2, 0x00, 0x00] && dst[5] <= 0x0f) {
            return Some((Decision::Drop, dst, src));
        }
        if src[0] & 1 == 0 {
            self.macs.insert(src, in_port);
        }
        let decision = match self.macs.get(&dst) {
            _ if dst[0] & 1 == 1 => Decision::Flood,
            Some(&p) if p == in_port => Decision::Drop,
            Some(&p) => Decision::Forward { port: p },
            None => Decision::Flood,
        };
        Some((decision, dst, src))
    }

    /// Number of MACs learned.
    pub fn len(&self) -> usize {
        self.macs.len()
    }

    /// Whether nothing has been learned yet.
    pub fn is_empty(&self) -> bool {
        self.macs.is_empty()
    }
}

impl DatapathApp for LearningSwitch {
    fn on_ready(&mut self, ctx: &mut Ctx<'_>) {
        if ctx.info.version == OFP10 {
            return; // OpenFlow 1.0 sends table misses to the controller by default.
        }
        // OpenFlow 1.3 drops table misses unless told otherwise.
        ctx.send13(&of13::Message::FlowMod(FlowMod {
            priority: 0,
            instructions: vec![Instruction::ApplyActions(vec![Action::output(port_no::CONTROLLER)])],
            ..FlowMod::default()
        }));
    }

    fn on_packet_in(&mut self, ctx: &mut Ctx<'_>, pi: PacketInRef<'_>) {
        let Some((decision, dst, src)) = self.learn(pi.in_port, pi.data) else {
            return;
        };
        let out_port = match decision {
            Decision::Drop => return,
            Decision::Flood => None,
            Decision::Forward { port } => Some(port),
        };
        if ctx.info.version == OFP10 {
            answer10(ctx, &pi, out_port, src, dst);
        } else {
            answer13(ctx, &pi, out_port, src, dst);
        }
    }
}

fn answer13(ctx: &mut Ctx<'_>, pi: &PacketInRef<'_>, out_port: Option<u32>, src: [u8; 6], dst: [u8; 6]) {
    let buffered = pi.buffer_id != of13::NO_BUFFER;
    if let Some(port) = out_port {
        ctx.send13(&of13::Message::FlowMod(FlowMod {
            idle_timeout: IDLE_TIMEOUT,
            priority: LEARNED_PRIORITY,
            buffer_id: pi.buffer_id,
            match_: Match::new(vec![Oxm::in_port(pi.in_port), Oxm::eth_src(src), Oxm::eth_dst(dst)]),
            instructions: vec![Instruction::ApplyActions(vec![Action::Output { port, max_len: 0 }])],
            ..FlowMod::default()
        }));
        if buffered {
            return; // The switch forwards the buffered packet through the new flow.
        }
    }
    let port = out_port.unwrap_or(port_no::FLOOD);
    ctx.send13(&of13::Message::PacketOut(of13::PacketOut {
        buffer_id: pi.buffer_id,
        in_port: pi.in_port,
        actions: vec![Action::Output { port, max_len: 0 }],
        data: if buffered { Vec::new() } else { pi.data.to_vec() },
    }));
}

fn answer10(ctx: &mut Ctx<'_>, pi: &PacketInRef<'_>, out_port: Option<u32>, src: [u8; 6], dst: [u8; 6]) {
    let buffered = pi.buffer_id != of10::NO_BUFFER;
    // OpenFlow 1.0 port numbers are 16 bits; 1.3-style numbers from PacketInRef fit.
    let in_port = u16::try_from(pi.in_port).unwrap_or(of10::OFPP_NONE);
    if let Some(port) = out_port {
        let port = u16::try_from(port).unwrap_or(of10::OFPP_NONE);
        ctx.send10(&of10::Message::FlowMod(of10::FlowMod {
            match_: of10::match_::Match::in_port_dl_src_dst(in_port, src, dst),
            idle_timeout: IDLE_TIMEOUT,
            priority: LEARNED_PRIORITY,
            buffer_id: pi.buffer_id,
            actions: vec![of10::Action::Output { port, max_len: 0 }],
            ..of10::FlowMod::default()
        }));
        if buffered {
            return;
        }
    }
    let port = out_port.map_or(of10::OFPP_FLOOD, |p| u16::try_from(p).unwrap_or(of10::OFPP_NONE));
    ctx.send10(&of10::Message::PacketOut(of10::PacketOut {
        buffer_id: pi.buffer_id,
        in_port,
        actions: vec![of10::Action::Output { port, max_len: 0 }],
        data: if buffered { Vec::new() } else { pi.data.to_vec() },
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.resize(60, 0);
        f
    }

    const A: [u8; 6] = [0, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [0, 0, 0, 0, 0, 2];
    const BCAST: [u8; 6] = [0xff; 6];

    #[test]
    fn unknown_destination_floods_and_learns_source() {
        let mut sw = LearningSwitch::default();
        let (d, _, _) = sw.learn(1, &frame(B, A, 0x0800)).expect("ethernet");
        assert_eq!(d, Decision::Flood);
        assert_eq!(sw.len(), 1);
    }

    #[test]
    fn learned_destination_forwards_to_its_port() {
        let mut sw = LearningSwitch::default();
        sw.learn(1, &frame(BCAST, A, 0x0806));
        let (d, _, _) = sw.learn(2, &frame(A, B, 0x0800)).expect("ethernet");
        assert_eq!(d, Decision::Forward { port: 1 });
    }

    #[test]
    fn destination_on_input_port_is_dropped() {
        let mut sw = LearningSwitch::default();
        sw.learn(1, &frame(BCAST, A, 0x0806));
        let (d, _, _) = sw.learn(1, &frame(A, B, 0x0800)).expect("ethernet");
        assert_eq!(d, Decision::Drop);
    }

    #[test]
    fn lldp_is_never_forwarded() {
        let mut sw = LearningSwitch::default();
        let (d, _, _) = sw.learn(1, &frame([0x01, 0x80, 0xc2, 0, 0, 0x0e], A, ETHERTYPE_LLDP)).expect("ethernet");
        assert_eq!(d, Decision::Drop);
        assert!(sw.is_empty());
    }

    #[test]
    fn runt_frame_is_ignored() {
        assert_eq!(LearningSwitch::default().learn(1, &[0u8; 10]), None);
    }
}
