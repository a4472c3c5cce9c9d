//! The topology API over gRPC (`--grpc ADDR`): service `tenet.topology.v1.Topology` of
//! `proto/topology.proto`.
//!
//! The same queries as the REST API ([`crate::api`]), answered by the same code
//! ([`crate::query`]) from the live [`Network`](crate::network::Network) and
//! [`Registry`](crate::session::Registry), with typed messages; plus `Watch`, the topology's
//! events as they happen ([`Topology::subscribe`](tenet_topology::Topology::subscribe)).
//! Unknown switches and hosts are `NOT_FOUND`, malformed arguments `INVALID_ARGUMENT`.

use std::pin::Pin;

use futures_util::Stream;
use tenet_topology::{fmt_dpid, fmt_mac, Dpid, Endpoint, Host, Link, Path, PortInfo, TopologyEvent};
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::api::ApiState;
use crate::query::{self, QueryError, SwitchView};

/// Code generated from `proto/topology.proto`: messages, the server trait
/// ([`pb::topology_server::Topology`]) and a client ([`pb::topology_client::TopologyClient`]).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("tenet.topology.v1");
}

use pb::topology_event::Event;

/// The `Topology` service over the controller's state.
#[derive(Clone)]
pub struct TopologyService {
    state: ApiState,
    shutdown: watch::Receiver<bool>,
}

impl TopologyService {
    /// A service answering from `state`; `Watch` streams end when `shutdown` turns true.
    pub fn new(state: ApiState, shutdown: watch::Receiver<bool>) -> Self {
        TopologyService { state, shutdown }
    }
}

/// Serves the service on `listener` until `shutdown` turns true (open `Watch` streams end then too).
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: watch::Receiver<bool>,
) -> Result<(), tonic::transport::Error> {
    let svc = pb::topology_server::TopologyServer::new(TopologyService::new(state, shutdown.clone()));
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder().add_service(svc).serve_with_incoming_shutdown(incoming, stopped(shutdown)).await
}

/// Resolves when `shutdown` turns true or its sender is gone.
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn status(e: QueryError) -> Status {
    match e {
        QueryError::Invalid(msg) => Status::invalid_argument(msg),
        QueryError::NotFound(msg) => Status::not_found(msg),
    }
}

fn port_pb(p: &PortInfo) -> pb::Port {
    pb::Port {
        port_no: p.port_no,
        name: p.name.clone(),
        hw_addr: fmt_mac(&p.hw_addr),
        up: p.up,
        curr_speed_kbps: p.curr_speed_kbps,
    }
}

fn switch_pb(v: &SwitchView) -> pb::Switch {
    let handle = v.handle.as_ref();
    pb::Switch {
        dpid: v.dpid,
        dpid_hex: fmt_dpid(v.dpid),
        ports: v.switch.as_ref().map(|s| s.ports.values().map(port_pb).collect()).unwrap_or_default(),
        drained: v.drained(),
        connected: handle.is_some(),
        connection: handle.map(|h| pb::Connection {
            peer: h.info.peer.to_string(),
            version: query::version_name(h.info.version).into(),
        }),
        features: handle.map(|h| pb::Features {
            n_buffers: h.info.n_buffers,
            n_tables: u32::from(h.info.n_tables),
            capabilities: h.info.capabilities,
        }),
        role: query::role_name(v.role()).into(),
    }
}

fn endpoint_pb(e: Endpoint) -> pb::Endpoint {
    pb::Endpoint { dpid: e.dpid, dpid_hex: fmt_dpid(e.dpid), port: e.port }
}

fn link_pb(l: &Link) -> pb::Link {
    pb::Link { src: Some(endpoint_pb(l.src)), dst: Some(endpoint_pb(l.dst)), weight: l.weight }
}

fn host_pb(h: &Host) -> pb::Host {
    pb::Host {
        mac: fmt_mac(&h.mac),
        ips: h.ips.iter().map(ToString::to_string).collect(),
        at: Some(endpoint_pb(h.at)),
        last_seen_ms: h.last_seen_ms,
    }
}

fn path_pb(p: &Path) -> pb::Path {
    pb::Path {
        hops: p
            .hops
            .iter()
            .map(|h| pb::Hop { dpid: h.dpid, dpid_hex: fmt_dpid(h.dpid), in_port: h.in_port, out_port: h.out_port })
            .collect(),
        cost: p.cost,
    }
}

fn switch_event(dpid: Dpid, drained: bool) -> Event {
    Event::Switch(pb::SwitchEvent { dpid, dpid_hex: fmt_dpid(dpid), drained })
}

fn port_event(dpid: Dpid, port_no: u32, port: Option<&PortInfo>) -> Event {
    Event::Port(pb::PortEvent { dpid, dpid_hex: fmt_dpid(dpid), port_no, port: port.map(port_pb) })
}

fn link_event(link: &Link, reason: &str) -> Event {
    Event::Link(pb::LinkEvent { link: Some(link_pb(link)), reason: reason.into() })
}

fn host_event(host: &Host, from: Option<Endpoint>) -> Event {
    Event::Host(pb::HostEvent { mac: fmt_mac(&host.mac), host: Some(host_pb(host)), from: from.map(endpoint_pb) })
}

/// A topology event as sent by `Watch`; `kind` is the event's serde tag (as in the REST feed).
pub fn event_pb(ev: &TopologyEvent) -> pb::TopologyEvent {
    let (kind, event) = match ev {
        TopologyEvent::SwitchAdded { dpid } => ("switch_added", switch_event(*dpid, false)),
        TopologyEvent::SwitchRemoved { dpid } => ("switch_removed", switch_event(*dpid, false)),
        TopologyEvent::SwitchDrained { dpid, drained } => ("switch_drained", switch_event(*dpid, *drained)),
        TopologyEvent::PortAdded { dpid, port } => ("port_added", port_event(*dpid, port.port_no, Some(port))),
        TopologyEvent::PortChanged { dpid, port } => ("port_changed", port_event(*dpid, port.port_no, Some(port))),
        TopologyEvent::PortRemoved { dpid, port_no } => ("port_removed", port_event(*dpid, *port_no, None)),
        TopologyEvent::LinkAdded { link } => ("link_added", link_event(link, "")),
        TopologyEvent::LinkChanged { link } => ("link_changed", link_event(link, "")),
        TopologyEvent::LinkRemoved { link, reason } => ("link_removed", link_event(link, reason)),
        TopologyEvent::HostAdded { host } => ("host_added", host_event(host, None)),
        TopologyEvent::HostMoved { host, from } => ("host_moved", host_event(host, Some(*from))),
        TopologyEvent::HostChanged { host } => ("host_changed", host_event(host, None)),
        TopologyEvent::HostRemoved { mac } => {
            ("host_removed", Event::Host(pb::HostEvent { mac: fmt_mac(mac), host: None, from: None }))
        }
    };
    pb::TopologyEvent { kind: kind.into(), event: Some(event) }
}

fn lagged_pb(missed: u64) -> pb::TopologyEvent {
    pb::TopologyEvent { kind: "lagged".into(), event: Some(Event::Lagged(pb::Lagged { missed })) }
}

/// The name [`query::paths`] takes for a path mode, or None for a value the proto does not define.
fn mode_name(mode: i32) -> Option<&'static str> {
    match pb::PathMode::try_from(mode).ok()? {
        pb::PathMode::Unspecified | pb::PathMode::Shortest => Some("shortest"),
        pb::PathMode::Ecmp => Some("ecmp"),
        pb::PathMode::Disjoint => Some("disjoint"),
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::TopologyEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::topology_server::Topology for TopologyService {
    async fn get_topology(&self, _req: Request<pb::GetTopologyRequest>) -> Result<Response<pb::TopologyReply>, Status> {
        let topo = self.state.network.topology();
        let switches = query::switches(&topo, &self.state.registry).iter().map(switch_pb).collect();
        let links = topo.links().map(link_pb).collect();
        let hosts = topo.hosts().map(host_pb).collect();
        Ok(Response::new(pb::TopologyReply { switches, links, hosts }))
    }

    async fn list_switches(
        &self,
        _req: Request<pb::ListSwitchesRequest>,
    ) -> Result<Response<pb::ListSwitchesReply>, Status> {
        let views = query::switches(&self.state.network.topology(), &self.state.registry);
        Ok(Response::new(pb::ListSwitchesReply { switches: views.iter().map(switch_pb).collect() }))
    }

    async fn get_switch(&self, req: Request<pb::SwitchRequest>) -> Result<Response<pb::Switch>, Status> {
        let dpid = query::dpid_arg(&req.get_ref().dpid).map_err(status)?;
        let view = query::switch(&self.state.network.topology(), &self.state.registry, dpid).map_err(status)?;
        Ok(Response::new(switch_pb(&view)))
    }

    async fn list_links(&self, _req: Request<pb::ListLinksRequest>) -> Result<Response<pb::ListLinksReply>, Status> {
        let links = self.state.network.topology().links().map(link_pb).collect();
        Ok(Response::new(pb::ListLinksReply { links }))
    }

    async fn list_hosts(&self, _req: Request<pb::ListHostsRequest>) -> Result<Response<pb::ListHostsReply>, Status> {
        let hosts = self.state.network.topology().hosts().map(host_pb).collect();
        Ok(Response::new(pb::ListHostsReply { hosts }))
    }

    async fn get_paths(&self, req: Request<pb::GetPathsRequest>) -> Result<Response<pb::GetPathsReply>, Status> {
        let req = req.into_inner();
        if req.src.is_empty() || req.dst.is_empty() {
            return Err(Status::invalid_argument("both src and dst are required (host MAC or IP, or a dpid)"));
        }
        let mode = mode_name(req.mode).ok_or_else(|| {
            Status::invalid_argument(format!(
                "unknown mode {}: PATH_MODE_SHORTEST, PATH_MODE_ECMP or PATH_MODE_DISJOINT",
                req.mode
            ))
        })?;
        // 0 is proto3's "not set": the REST default. Too large for usize is out of range anyway.
        let k = (req.k != 0).then(|| usize::try_from(req.k).unwrap_or(usize::MAX));
        let found = query::paths(&self.state.network.topology(), &req.src, &req.dst, Some(mode), k).map_err(status)?;
        Ok(Response::new(pb::GetPathsReply { paths: found.iter().map(path_pb).collect() }))
    }

    async fn drain(&self, req: Request<pb::SwitchRequest>) -> Result<Response<pb::Switch>, Status> {
        Ok(Response::new(self.set_drained(&req.get_ref().dpid, true).map_err(status)?))
    }

    async fn undrain(&self, req: Request<pb::SwitchRequest>) -> Result<Response<pb::Switch>, Status> {
        Ok(Response::new(self.set_drained(&req.get_ref().dpid, false).map_err(status)?))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, _req: Request<pb::WatchRequest>) -> Result<Response<WatchStream>, Status> {
        // Subscribed before the reply goes out: a client sees every event after its call returns.
        let rx = self.state.network.topology().subscribe();
        let stream = futures_util::stream::unfold((rx, self.shutdown.clone()), |(mut rx, mut shutdown)| async move {
            let ev = tokio::select! {
                r = rx.recv() => match r {
                    Ok(ev) => event_pb(&ev),
                    // A slow reader missed events: say so, and go on.
                    Err(RecvError::Lagged(n)) => lagged_pb(n),
                    Err(RecvError::Closed) => return None,
                },
                _ = shutdown.wait_for(|stop| *stop) => return None,
            };
            Some((Ok(ev), (rx, shutdown)))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

impl TopologyService {
    fn set_drained(&self, dpid: &str, drained: bool) -> Result<pb::Switch, QueryError> {
        let dpid = query::dpid_arg(dpid)?;
        let view = query::set_drained(&self.state.network, &self.state.registry, dpid, drained)?;
        Ok(switch_pb(&view))
    }
}
