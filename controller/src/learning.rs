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
//! With a [`Network`] (the default for the binary), the switch also takes part in
//! discovery: our own LLDP frames become links, hosts seen at edge ports are
//! tracked, and floods follow the topology's spanning tree (plus edge ports), so
//! networks with loops (rings, fat-trees) neither storm nor black-hole. When the
//! links change, every switch forgets what it learned and its learned flows are
//! removed, so traffic is re-learned along the remaining paths. Without a
//! network (benchmarks of the bare switch) floods use OFPP_FLOOD.

use std::collections::HashMap;

use std::net::IpAddr;
use std::sync::Arc;

use tenet_topology::Endpoint;

use crate::network::{sender_ip, Network, LEARNED_COOKIE};
use crate::session::{AppFactory, Ctx, DatapathApp, PacketInRef, SwitchInfo};
use crate::wire::of13::{self, action::port_no, Action, FlowMod, Instruction, Match, Oxm};
use crate::wire::{of10, OFP10};

/// Idle timeout of learned flows, seconds.
pub const IDLE_TIMEOUT: u16 = 60;
/// Priority of learned flows (the OpenFlow 1.3 table-miss flow has 0).
pub const LEARNED_PRIORITY: u16 = 1;
const ETHERTYPE_LLDP: u16 = 0x88cc;

/// Makes a [`LearningSwitch`] per connection.
#[derive(Default)]
pub struct Learning {
    /// Discovery and topology-aware flooding; `None` floods with OFPP_FLOOD.
    pub network: Option<Arc<Network>>,
}

impl Learning {
    /// Learning switches that take part in discovery through `network`.
    pub fn with_network(network: Arc<Network>) -> Self {
        Learning { network: Some(network) }
    }
}

impl AppFactory for Learning {
    fn make(&self) -> Box<dyn DatapathApp> {
        Box::new(LearningSwitch { network: self.network.clone(), ..LearningSwitch::default() })
    }
}

/// One datapath's MAC table. Keys come from the network, so the hash is keyed
/// per table (aHash's random state): cheap, and no hash-flooding by crafted MACs.
#[derive(Default)]
pub struct LearningSwitch {
    /// Where each MAC was learned, and the IP it last claimed (so the topology hears of
    /// a host only when something about it changes).
    macs: HashMap<[u8; 6], (u32, Option<IpAddr>), ahash::RandomState>,
    dpid: u64,
    network: Option<Arc<Network>>,
    /// The topology generation the table was learned in.
    generation: u64,
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
            let ip = sender_ip(frame);
            let before = self.macs.get(&src).copied();
            let ip = ip.or(before.and_then(|(_, ip)| ip));
            if before != Some((in_port, ip)) {
                self.macs.insert(src, (in_port, ip));
                if let Some(net) = &self.network {
                    // New, moved or a new address: tell the topology (it ignores link ports).
                    net.host_seen(src, ip, Endpoint { dpid: self.dpid, port: in_port });
                }
            }
        }
        let decision = match self.macs.get(&dst).map(|(port, _)| port) {
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
        self.dpid = ctx.info.dpid;
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

    fn on_ports(&mut self, ctx: &mut Ctx<'_>, ports: &[of13::Port]) {
        if let Some(net) = &self.network {
            net.ports_arrived(ctx, ports);
        }
    }

    fn on_port_status(&mut self, ctx: &mut Ctx<'_>, reason: u8, port: &of13::Port) {
        if let Some(net) = &self.network {
            net.port_status_arrived(ctx, reason, port);
        }
    }

    fn on_disconnect(&mut self, info: &SwitchInfo) {
        if let Some(net) = &self.network {
            net.switch_gone(info.dpid);
        }
    }

    fn on_packet_in(&mut self, ctx: &mut Ctx<'_>, pi: PacketInRef<'_>) {
        if let Some(net) = &self.network {
            let generation = net.generation();
            if generation != self.generation {
                // The links changed: what was learned may point the wrong way now.
                self.generation = generation;
                self.macs.clear();
            }
            if is_lldp(pi.data) {
                net.lldp_in(Endpoint { dpid: ctx.info.dpid, port: pi.in_port }, pi.data);
                return;
            }
        }
        let Some((decision, dst, src)) = self.learn(pi.in_port, pi.data) else {
            return;
        };
        let out_ports = match decision {
            Decision::Drop => return,
            Decision::Forward { port } => Out::Learned(port),
            Decision::Flood => match self.network.as_ref().and_then(|n| n.flood_ports(ctx.info.dpid, pi.in_port)) {
                Some(ports) if ports.is_empty() => return, // arrived on a link outside the tree: a loop
                Some(ports) => Out::Ports(ports),
                None => Out::Flood,
            },
        };
        if ctx.info.version == OFP10 {
            answer10(ctx, &pi, &out_ports, src, dst);
        } else {
            answer13(ctx, &pi, &out_ports, src, dst);
        }
    }
}

/// Where a packet goes.
enum Out {
    /// The port its destination was learned on: install a flow.
    Learned(u32),
    /// These ports (a spanning-tree flood).
    Ports(Vec<u32>),
    /// OFPP_FLOOD (no topology known).
    Flood,
}

impl Out {
    fn ports(&self) -> Vec<u32> {
        match self {
            Out::Learned(p) => vec![*p],
            Out::Ports(ps) => ps.clone(),
            Out::Flood => vec![port_no::FLOOD],
        }
    }
}

fn is_lldp(frame: &[u8]) -> bool {
    frame.len() >= 14 && u16::from_be_bytes([frame[12], frame[13]]) == ETHERTYPE_LLDP
}

fn answer13(ctx: &mut Ctx<'_>, pi: &PacketInRef<'_>, out: &Out, src: [u8; 6], dst: [u8; 6]) {
    let buffered = pi.buffer_id != of13::NO_BUFFER;
    if let Out::Learned(port) = out {
        ctx.send13(&of13::Message::FlowMod(FlowMod {
            cookie: LEARNED_COOKIE,
            idle_timeout: IDLE_TIMEOUT,
            priority: LEARNED_PRIORITY,
            buffer_id: pi.buffer_id,
            match_: Match::new(vec![Oxm::in_port(pi.in_port), Oxm::eth_src(src), Oxm::eth_dst(dst)]),
            instructions: vec![Instruction::ApplyActions(vec![Action::Output { port: *port, max_len: 0 }])],
            ..FlowMod::default()
        }));
        if buffered {
            return; // The switch forwards the buffered packet through the new flow.
        }
    }
    ctx.send13(&of13::Message::PacketOut(of13::PacketOut {
        buffer_id: pi.buffer_id,
        in_port: pi.in_port,
        actions: out.ports().into_iter().map(|port| Action::Output { port, max_len: 0 }).collect(),
        data: if buffered { Vec::new() } else { pi.data.to_vec() },
    }));
}

/// An OpenFlow 1.3 port number as 1.0's 16 bits (reserved ports map to their 1.0 values).
fn port10(p: u32) -> u16 {
    if p >= port_no::MAX {
        (p & 0xffff) as u16
    } else {
        u16::try_from(p).unwrap_or(of10::OFPP_NONE)
    }
}

fn answer10(ctx: &mut Ctx<'_>, pi: &PacketInRef<'_>, out: &Out, src: [u8; 6], dst: [u8; 6]) {
    let buffered = pi.buffer_id != of10::NO_BUFFER;
    let in_port = port10(pi.in_port);
    if let Out::Learned(port) = out {
        ctx.send10(&of10::Message::FlowMod(of10::FlowMod {
            match_: of10::match_::Match::in_port_dl_src_dst(in_port, src, dst),
            cookie: LEARNED_COOKIE,
            idle_timeout: IDLE_TIMEOUT,
            priority: LEARNED_PRIORITY,
            buffer_id: pi.buffer_id,
            actions: vec![of10::Action::Output { port: port10(*port), max_len: 0 }],
            ..of10::FlowMod::default()
        }));
        if buffered {
            return;
        }
    }
    ctx.send10(&of10::Message::PacketOut(of10::PacketOut {
        buffer_id: pi.buffer_id,
        in_port,
        actions: out.ports().into_iter().map(|p| of10::Action::Output { port: port10(p), max_len: 0 }).collect(),
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
