//! The per-switch side of tenant mode: discovery input (ports, PORT_STATUS, LLDP) and
//! the packet-in services: ARP answered from netapi's addresses and DHCP answered from
//! IPAM, both without flooding. Flows are the engine's business.

use std::net::Ipv4Addr;
use std::sync::Arc;

use tenet_topology::Endpoint;

use crate::session::{AppFactory, Ctx, DatapathApp, PacketInRef, SwitchInfo};
use crate::wire::of13::action::port_no;
use crate::wire::of13::{self, Action, FlowMod, Instruction, Oxm};
use crate::wire::OFP13;

use super::compile::classify::{ETH_RARP, PRIO_LLDP};
use super::compile::steer::PROBE_SRC;
use super::engine::{SwitchEvent, Tenant, View};
use super::flows::{cookie, table};
use super::packet::{self, Lease};

/// The MAC the controller's DHCP server answers from (locally administered).
pub const DHCP_SERVER_MAC: [u8; 6] = [0x02, 0x74, 0x6e, 0x00, 0x00, 0x01];
/// DHCP lease time, seconds.
pub const LEASE_SECS: u32 = 86_400;

/// Makes a [`TenantSwitch`] per connection.
pub struct TenantApps(pub Arc<Tenant>);

impl AppFactory for TenantApps {
    fn make(&self) -> Box<dyn DatapathApp> {
        Box::new(TenantSwitch { tenant: self.0.clone() })
    }
}

pub struct TenantSwitch {
    tenant: Arc<Tenant>,
}

impl DatapathApp for TenantSwitch {
    fn on_ready(&mut self, ctx: &mut Ctx<'_>) {
        if ctx.info.version != OFP13 {
            tracing::warn!(dpid = %tenet_topology::fmt_dpid(ctx.info.dpid), "tenant mode needs OpenFlow 1.3; switch ignored");
            return;
        }
        // LLDP must reach us before the pipeline is reconciled (discovery decides the
        // paths). The same flow the compiler makes, so reconciliation leaves it alone.
        ctx.send13(&of13::Message::FlowMod(FlowMod {
            cookie: cookie::of(cookie::INFRA, "pipeline"),
            table_id: table::CLASSIFY,
            priority: PRIO_LLDP,
            match_: of13::Match::new(vec![Oxm::eth_type(0x88cc)]),
            instructions: vec![Instruction::ApplyActions(vec![Action::output(port_no::CONTROLLER)])],
            ..FlowMod::default()
        }));
    }

    fn on_ports(&mut self, ctx: &mut Ctx<'_>, ports: &[of13::Port]) {
        if ctx.info.version != OFP13 {
            return;
        }
        self.tenant.network.ports_arrived(ctx, ports);
        self.tenant.switch_event(SwitchEvent::Up(ctx.info.dpid));
    }

    fn on_port_status(&mut self, ctx: &mut Ctx<'_>, reason: u8, port: &of13::Port) {
        self.tenant.network.port_status_arrived(ctx, reason, port);
    }

    /// A switch that loses its controller keeps forwarding (fail mode secure): the fabric
    /// keeps it and its links, which age out as LLDP stops confirming them (or go at once
    /// when a neighbour reports its port down). A switch that reconnects within that time
    /// changes nothing; one that does not is routed around.
    fn on_disconnect(&mut self, info: &SwitchInfo) {
        self.tenant.switch_event(SwitchEvent::Down(info.dpid));
    }

    fn on_packet_in(&mut self, ctx: &mut Ctx<'_>, pi: PacketInRef<'_>) {
        let frame = pi.data;
        let Some(eth) = packet::parse_ethernet(frame) else { return };
        if eth.ethertype == 0x88cc {
            self.tenant.network.lldp_in(Endpoint { dpid: ctx.info.dpid, port: pi.in_port }, frame);
            return;
        }
        if eth.src == PROBE_SRC {
            if let Some(pair) = packet::parse_probe(frame) {
                self.tenant.switch_event(SwitchEvent::ProbeReturned(pair));
            }
            return;
        }
        let view = self.tenant.view();
        if view.copies.contains(&(ctx.info.dpid, pi.in_port)) && announces(eth.ethertype, frame) {
            self.tenant.switch_event(SwitchEvent::Announced(ctx.info.dpid, pi.in_port));
        }
        let reply = if eth.ethertype == packet::ETHERTYPE_ARP {
            answer_arp(&view, ctx.info.dpid, pi.in_port, frame)
        } else {
            answer_dhcp(&view, ctx.info.dpid, pi.in_port, frame)
        };
        if let Some(data) = reply {
            ctx.send13(&of13::Message::PacketOut(of13::PacketOut {
                buffer_id: of13::NO_BUFFER,
                in_port: port_no::CONTROLLER,
                actions: vec![Action::Output { port: pi.in_port, max_len: 0 }],
                data,
            }));
        }
    }
}

/// Whether a frame is a VM announcing where it is: QEMU's RARP after a migration, or
/// the guest's gratuitous ARP.
fn announces(ethertype: u16, frame: &[u8]) -> bool {
    ethertype == ETH_RARP
        || (ethertype == packet::ETHERTYPE_ARP && packet::parse_arp_request(frame).is_some_and(|r| r.is_gratuitous()))
}

/// An ARP reply for a request that came in at (dpid, in_port), if the target is a
/// port of the same network.
pub fn answer_arp(view: &View, dpid: u64, in_port: u32, frame: &[u8]) -> Option<Vec<u8>> {
    let req = packet::parse_arp_request(frame)?;
    if req.is_gratuitous() {
        return None;
    }
    let port = view.state.ports.get(view.edges.get(&(dpid, in_port))?)?;
    let mac = view.addresses.get(&(port.network_id.clone(), req.target_ip))?;
    Some(packet::arp_reply(&req, *mac))
}

/// A DHCP answer for a request from the port at (dpid, in_port), from its fixed IPv4
/// address and subnet.
pub fn answer_dhcp(view: &View, dpid: u64, in_port: u32, frame: &[u8]) -> Option<Vec<u8>> {
    let req = packet::parse_dhcp(frame)?;
    let port = view.state.ports.get(view.edges.get(&(dpid, in_port))?)?;
    if req.chaddr != port.mac {
        return None;
    }
    let (subnet, ip) =
        port.ips.iter().find_map(|(s, ip)| view.state.subnets.get(s).filter(|s| s.enable_dhcp).map(|s| (s, *ip)))?;
    let (net_addr, len) = subnet.cidr;
    let mask = packet::prefix_to_mask(len);
    // The server's address: the gateway, or else the subnet's last usable address.
    let server_ip = subnet.gateway.unwrap_or_else(|| {
        let host_bits = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
        Ipv4Addr::from((u32::from(net_addr) | host_bits).saturating_sub(1))
    });
    let lease = Lease {
        your_ip: ip,
        server_ip,
        server_mac: DHCP_SERVER_MAC,
        subnet_mask: mask,
        router: subnet.gateway,
        dns: subnet.dns.clone(),
        routes: subnet.routes.clone(),
        mtu: view.state.networks.get(&port.network_id).and_then(|n| n.mtu),
        lease_secs: LEASE_SECS,
        domain_name: None,
    };
    packet::dhcp_answer(&req, &lease).map(|(_, frame)| frame)
}
