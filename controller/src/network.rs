//! The controller's live view of the network: discovery (LLDP), host tracking,
//! and the topology model from `tenet-topology` that paths and flooding use.
//!
//! Sessions feed it inline (ports, PORT_STATUS, LLDP and host packet-ins); a
//! background task ([`run`]) sends LLDP rounds, ages links out, and when links
//! change removes every learned flow so that traffic is re-learned along the new
//! topology.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tenet_topology::{lldp, Endpoint, PortInfo, Topology, TopologyEvent};
use tokio::sync::watch;

use crate::session::Registry;
use crate::wire::of13::{self, action::port_no, Action, FlowMod};
use crate::wire::{of10, OFP10};

/// Cookie of every flow the learning switch installs (so they can be removed exactly).
pub const LEARNED_COOKIE: u64 = 0x7e7e_0000_0000_0001;

/// Discovery tunables.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Time between LLDP rounds.
    pub interval: Duration,
    /// A link not confirmed by this many rounds in a row ages out.
    pub missed_rounds: u32,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig { interval: Duration::from_secs(1), missed_rounds: 3 }
    }
}

/// Shared network state.
pub struct Network {
    topo: Mutex<Topology>,
    /// Identifies this controller instance in its LLDP frames.
    pub nonce: u64,
    /// Bumped whenever links change: learned forwarding state must be dropped.
    generation: AtomicU64,
    /// Wakes [`run`] at once when the generation moves, so flows are flushed without waiting a round.
    changed: tokio::sync::Notify,
    /// Asks [`run`] for an LLDP round on every switch now (a switch joined: its neighbours'
    /// earlier LLDP may have reached it before it listened to us).
    lldp_now: tokio::sync::Notify,
    start: Instant,
    pub config: DiscoveryConfig,
    /// Ports known not to face another switch (IPS appliance ports): no LLDP goes there.
    quiet: Mutex<std::collections::HashSet<(u64, u32)>>,
}

impl Network {
    pub fn new(config: DiscoveryConfig) -> Arc<Network> {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ (u64::from(std::process::id()) << 32);
        Arc::new(Network {
            topo: Mutex::new(Topology::new()),
            nonce: seed | 1,
            generation: AtomicU64::new(0),
            changed: tokio::sync::Notify::new(),
            lldp_now: tokio::sync::Notify::new(),
            start: Instant::now(),
            config,
            quiet: Mutex::new(std::collections::HashSet::new()),
        })
    }

    /// The topology, locked. Keep the guard short: sessions share it.
    pub fn topology(&self) -> MutexGuard<'_, Topology> {
        self.topo.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Milliseconds since this controller started (the topology's clock).
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The current topology generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Bumps the generation if `events` change how packets may travel.
    pub fn note(&self, events: &[TopologyEvent]) {
        let moves_paths = events.iter().any(|e| {
            matches!(
                e,
                TopologyEvent::LinkAdded { .. }
                    | TopologyEvent::LinkRemoved { .. }
                    | TopologyEvent::SwitchRemoved { .. }
                    | TopologyEvent::PortRemoved { .. }
                    | TopologyEvent::SwitchDrained { .. }
            )
        });
        if moves_paths {
            self.generation.fetch_add(1, Ordering::AcqRel);
            self.changed.notify_one();
        }
    }

    /// Records a switch's ports, and asks for an LLDP round everywhere so that links
    /// to the newcomer are found without waiting for the next periodic round.
    pub fn switch_ports(&self, dpid: u64, ports: &[of13::Port]) {
        let events = self.topology().add_switch(dpid, ports.iter().map(port_info).collect());
        self.note(&events);
        self.lldp_now.notify_one();
    }

    /// Records a PORT_STATUS.
    pub fn port_status(&self, dpid: u64, reason: u8, port: &of13::Port) {
        let events = if reason == of13::port::port_reason::DELETE {
            self.topology().remove_port(dpid, port.port_no)
        } else {
            self.topology().update_port(dpid, port_info(port))
        };
        self.note(&events);
    }

    /// A session's ports arrived: records them and sends LLDP out of every one at once
    /// (links are found without waiting for the next round).
    pub fn ports_arrived(&self, ctx: &mut crate::session::Ctx<'_>, ports: &[of13::Port]) {
        self.switch_ports(ctx.info.dpid, ports);
        let mut out = Vec::new();
        self.lldp_packet_outs(ctx.info.dpid, ctx.info.version, ports, &mut out);
        ctx.send_raw(&out);
    }

    /// A session's PORT_STATUS: records it, and sends LLDP out of a port that is up.
    pub fn port_status_arrived(&self, ctx: &mut crate::session::Ctx<'_>, reason: u8, port: &of13::Port) {
        self.port_status(ctx.info.dpid, reason, port);
        if reason != of13::port::port_reason::DELETE && port.is_up() {
            let mut out = Vec::new();
            self.lldp_packet_outs(ctx.info.dpid, ctx.info.version, std::slice::from_ref(port), &mut out);
            ctx.send_raw(&out);
        }
    }

    /// Forgets a disconnected switch.
    pub fn switch_gone(&self, dpid: u64) {
        let events = self.topology().remove_switch(dpid);
        self.note(&events);
    }

    /// Handles an LLDP frame received at `at`; returns whether it was ours (a link).
    pub fn lldp_in(&self, at: Endpoint, frame: &[u8]) -> bool {
        let Ok(l) = lldp::parse(frame) else { return false };
        let Some(t) = l.tenet else { return false };
        if t.nonce != self.nonce {
            return false; // another controller's LLDP: not evidence of our links
        }
        if t.dpid == at.dpid {
            // It left this switch and came back into it (through a bridging appliance such
            // as an inline IPS, or a hairpin): not a link between switches.
            return false;
        }
        let now = self.now_ms();
        let events = self.topology().link_seen(Endpoint { dpid: t.dpid, port: t.port }, at, now);
        self.note(&events);
        true
    }

    /// Learns a host seen at an edge port (link ports are ignored by the topology).
    pub fn host_seen(&self, mac: [u8; 6], ip: Option<IpAddr>, at: Endpoint) {
        let now = self.now_ms();
        let _ = self.topology().learn_host(mac, ip, at, now);
    }

    /// The ports to flood a packet that entered `dpid` at `in_port` on (spanning tree
    /// plus edge ports), or None when the switch's ports are not known yet.
    pub fn flood_ports(&self, dpid: u64, in_port: u32) -> Option<Vec<u32>> {
        let topo = self.topology();
        topo.switch(dpid)?;
        Some(topo.flood_ports(dpid, in_port))
    }

    /// Sets the ports that never face another switch (tenant mode: IPS appliance ports,
    /// which would pass LLDP through): discovery sends them no LLDP.
    pub fn set_quiet_ports(&self, ports: std::collections::HashSet<(u64, u32)>) {
        if let Ok(mut q) = self.quiet.lock() {
            *q = ports;
        }
    }

    /// LLDP PACKET_OUTs for every up port of a switch, encoded for its version.
    pub fn lldp_packet_outs(&self, dpid: u64, version: u8, ports: &[of13::Port], out: &mut Vec<u8>) {
        let quiet = self.quiet.lock().map(|q| q.clone()).unwrap_or_default();
        for p in ports.iter().filter(|p| p.port_no < port_no::MAX && p.is_up() && !quiet.contains(&(dpid, p.port_no))) {
            let frame = lldp::build(dpid, p.port_no, p.hw_addr, self.ttl_secs(), self.nonce);
            let bytes = if version == OFP10 {
                of10::Message::PacketOut(of10::PacketOut {
                    buffer_id: of10::NO_BUFFER,
                    in_port: of10::OFPP_NONE,
                    actions: vec![of10::action::Action::Output { port: p.port_no as u16, max_len: 0 }],
                    data: frame,
                })
                .to_bytes(0)
            } else {
                of13::Message::PacketOut(of13::PacketOut {
                    buffer_id: of13::NO_BUFFER,
                    in_port: port_no::CONTROLLER,
                    actions: vec![Action::Output { port: p.port_no, max_len: 0 }],
                    data: frame,
                })
                .to_bytes(0)
            };
            if let Ok(b) = bytes {
                out.extend_from_slice(&b);
            }
        }
    }

    fn ttl_secs(&self) -> u16 {
        let secs = self.config.interval.as_secs().max(1) * u64::from(self.config.missed_rounds.max(1));
        u16::try_from(secs).unwrap_or(u16::MAX)
    }
}

/// The sender's IPv4 address of an ARP or IPv4 frame (what a host claims to be).
pub(crate) fn sender_ip(frame: &[u8]) -> Option<IpAddr> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let at = match ethertype {
        0x0806 => 28,
        0x0800 => 26,
        _ => return None,
    };
    let b = frame.get(at..at + 4)?;
    let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    (!ip.is_unspecified()).then_some(IpAddr::V4(ip))
}

/// The topology's view of an OpenFlow port.
pub fn port_info(p: &of13::Port) -> PortInfo {
    PortInfo { port_no: p.port_no, name: p.name(), hw_addr: p.hw_addr, up: p.is_up(), curr_speed_kbps: p.curr_speed }
}

/// Deletes every learned flow on a switch (cookie-exact in 1.3; everything in 1.0, which has
/// no table-miss flow of ours to keep).
fn flush_learned(version: u8) -> Option<Vec<u8>> {
    if version == OFP10 {
        of10::Message::FlowMod(of10::FlowMod { command: of10::flow_command::DELETE, ..of10::FlowMod::default() })
            .to_bytes(0)
            .ok()
    } else {
        of13::Message::FlowMod(FlowMod {
            cookie: LEARNED_COOKIE,
            cookie_mask: u64::MAX,
            table_id: of13::ALL_TABLES,
            command: of13::flow_command::DELETE,
            ..FlowMod::default()
        })
        .to_bytes(0)
        .ok()
    }
}

/// Runs discovery until `shutdown`: LLDP rounds, link aging, and removal of learned
/// flows everywhere whenever the links change.
pub async fn run(network: Arc<Network>, registry: Registry, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(network.config.interval);
    let mut flushed_generation = network.generation();
    let max_age = network.config.interval.as_millis() as u64 * u64::from(network.config.missed_rounds.max(1));
    loop {
        let lldp_round = tokio::select! {
            _ = tick.tick() => true,
            _ = network.changed.notified() => false,
            _ = network.lldp_now.notified() => {
                // Switches of a lab connect in a burst: one round for the burst.
                tokio::time::sleep(Duration::from_millis(20)).await;
                true
            }
            _ = shutdown.changed() => return,
        };
        let events = network.topology().expire_links(network.now_ms(), max_age);
        network.note(&events);
        for e in &events {
            tracing::info!(event = ?e, "link aged out");
        }
        let generation = network.generation();
        for sw in registry.switches() {
            let ports: Vec<of13::Port> = sw.ports.lock().map(|p| p.values().cloned().collect()).unwrap_or_default();
            let mut out = Vec::new();
            if generation != flushed_generation {
                out.extend(flush_learned(sw.info.version).unwrap_or_default());
            }
            if lldp_round {
                network.lldp_packet_outs(sw.info.dpid, sw.info.version, &ports, &mut out);
            }
            if !out.is_empty() {
                let _ = sw.send_raw(out).await;
            }
        }
        flushed_generation = generation;
    }
}

/// Removes learned flows on one switch now (used by sessions that notice a new generation).
pub fn flush_learned_bytes(version: u8) -> Vec<u8> {
    flush_learned(version).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lldp_back_into_its_own_switch_is_not_a_link() {
        let net = Network::new(DiscoveryConfig::default());
        let nonce = net.nonce;
        // Left switch 1 by port 4 and came back by port 5 (an inline appliance bridges them).
        let frame = lldp::build(1, 4, [2, 0, 0, 0, 0, 4], 120, nonce);
        assert!(!net.lldp_in(Endpoint { dpid: 1, port: 5 }, &frame));
        assert_eq!(net.topology().links().count(), 0);
        // The same frame arriving at another switch is evidence of a link.
        assert!(net.lldp_in(Endpoint { dpid: 2, port: 5 }, &frame));
    }
}
