//! The topology gRPC API against a controller in learning mode with two scripted switches.
//!
//! The switches are test doubles (as in `session.rs`): each completes the OpenFlow 1.3
//! handshake, describes two ports, and is cabled to the other through the test: a PACKET_OUT
//! out of its cable port (the controller's LLDP, and floods) comes in at the other switch's
//! cable port as a PACKET_IN. So discovery finds a real link, and every answer checked here
//! comes from the same machinery that runs against Open vSwitch.

use std::sync::Arc;
use std::time::Duration;

use tenet_controller::api::ApiState;
use tenet_controller::grpc::{self, pb};
use tenet_controller::learning::Learning;
use tenet_controller::network::{self, DiscoveryConfig, Network};
use tenet_controller::session::{Controller, SessionConfig};
use tenet_controller::wire::of13::{self, Action, HelloElem, Match, Message, MultipartReply, MultipartRequest, Oxm};
use tenet_controller::wire::{split_frame, OFP13};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tonic::transport::Channel;
use tonic::{Code, Streaming};

const WAIT: Duration = Duration::from_secs(10);

type Client = pb::topology_client::TopologyClient<Channel>;

struct Platform {
    of_addr: String,
    network: Arc<Network>,
    client: Client,
    stop: tokio::sync::watch::Sender<bool>,
}

/// A controller as `tenet-controller` runs it (learning mode, discovery, gRPC on an ephemeral port).
async fn start() -> Platform {
    let network = Network::new(DiscoveryConfig { interval: Duration::from_millis(200), missed_rounds: 5 });
    let ctl = Controller::new(SessionConfig::default(), Arc::new(Learning::with_network(network.clone())));
    let registry = ctl.registry.clone();
    let of = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let grpc_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let of_addr = of.local_addr().expect("addr").to_string();
    let grpc_addr = grpc_l.local_addr().expect("addr");
    let (stop, rx) = tokio::sync::watch::channel(false);
    let state = ApiState { network: network.clone(), registry: registry.clone(), tenant: None };
    tokio::spawn(grpc::serve(grpc_l, state, rx.clone()));
    tokio::spawn(network::run(network.clone(), registry, rx.clone()));
    tokio::spawn(ctl.serve(of, rx));
    let client = Client::connect(format!("http://{grpc_addr}")).await.expect("gRPC connect");
    Platform { of_addr, network, client, stop }
}

fn port(n: u32) -> of13::Port {
    of13::Port {
        port_no: n,
        hw_addr: [2, 0, 0, 0, 0, n as u8],
        name_bytes: *b"eth\0\0\0\0\0\0\0\0\0\0\0\0\0",
        config: 0,
        state: 0,
        curr: 0,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 10_000_000,
        max_speed: 0,
    }
}

/// A frame to show the switch as if received at a port.
type Arrival = (u32, Vec<u8>);

/// Runs a scripted OpenFlow 1.3 switch with ports 1 and 2: handshake, PORT_DESC, echo replies;
/// frames sent to `arrivals` become PACKET_INs; PACKET_OUTs out of `cable_port` go to `peer`
/// (the other switch's arrivals, already naming its cable port).
async fn fake_switch(
    addr: String,
    dpid: u64,
    cable_port: u32,
    mut arrivals: mpsc::Receiver<Arrival>,
    peer: mpsc::Sender<Arrival>,
    peer_port: u32,
) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let hello = Message::Hello(vec![HelloElem::versions(&[OFP13])]).to_bytes(1).expect("encode");
    stream.write_all(&hello).await.expect("write");
    let mut buf = Vec::new();
    loop {
        // Whole frames first, then more bytes or an arrival.
        while let Some((h, len)) = split_frame(&buf).expect("controller framing is valid") {
            let frame: Vec<u8> = buf.drain(..len).collect();
            let (_, msg) = of13::parse(&frame).unwrap_or_else(|e| panic!("undecodable {frame:?}: {e}"));
            let answer = match msg {
                Message::FeaturesRequest => Some(Message::FeaturesReply(of13::SwitchFeatures {
                    datapath_id: dpid,
                    n_buffers: 0,
                    n_tables: 254,
                    auxiliary_id: 0,
                    capabilities: 0x4f,
                    reserved: 0,
                })),
                Message::MultipartRequest { body: MultipartRequest::PortDesc, .. } => {
                    Some(Message::MultipartReply { flags: 0, body: MultipartReply::PortDesc(vec![port(1), port(2)]) })
                }
                Message::EchoRequest(data) => Some(Message::EchoReply(data)),
                Message::PacketOut(po) => {
                    if po.actions.iter().any(|a| matches!(a, Action::Output { port, .. } if *port == cable_port)) {
                        let _ = peer.send((peer_port, po.data)).await;
                    }
                    None
                }
                _ => None,
            };
            if let Some(m) = answer {
                stream.write_all(&m.to_bytes(h.xid).expect("encode")).await.expect("write");
            }
        }
        let mut chunk = [0u8; 8192];
        tokio::select! {
            n = stream.read(&mut chunk) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            },
            Some((in_port, data)) = arrivals.recv() => {
                let pi = Message::PacketIn(of13::PacketIn {
                    buffer_id: of13::NO_BUFFER,
                    total_len: u16::try_from(data.len()).expect("small frame"),
                    reason: 0,
                    table_id: 0,
                    cookie: 0,
                    match_: Match::new(vec![Oxm::in_port(in_port)]),
                    data,
                });
                stream.write_all(&pi.to_bytes(0).expect("encode")).await.expect("write");
            }
        }
    }
}

/// Starts switches 1 and 2, cabled 1:2 <-> 2:1 (port 1 of switch 1 and port 2 of switch 2 are
/// edge ports). Returns what injects frames into switch 1.
fn cable_two_switches(of_addr: &str) -> mpsc::Sender<Arrival> {
    let (a_tx, a_rx) = mpsc::channel(256);
    let (b_tx, b_rx) = mpsc::channel(256);
    tokio::spawn(fake_switch(of_addr.to_string(), 1, 2, a_rx, b_tx.clone(), 1));
    tokio::spawn(fake_switch(of_addr.to_string(), 2, 1, b_rx, a_tx.clone(), 2));
    a_tx
}

/// An ARP request from `mac` claiming 10.0.0.1.
fn arp_from(mac: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[10, 0, 0, 1]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[10, 0, 0, 2]);
    f
}

async fn next_event(stream: &mut Streaming<pb::TopologyEvent>) -> pb::TopologyEvent {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("an event in time")
        .expect("stream ok")
        .expect("stream not ended")
}

/// Reads events until one satisfies `want`; returns every event read.
async fn events_until(
    stream: &mut Streaming<pb::TopologyEvent>,
    mut want: impl FnMut(&[pb::TopologyEvent]) -> bool,
) -> Vec<pb::TopologyEvent> {
    let mut seen = Vec::new();
    while !want(&seen) {
        seen.push(next_event(stream).await);
    }
    seen
}

fn switch_req(dpid: &str) -> pb::SwitchRequest {
    pb::SwitchRequest { dpid: dpid.into() }
}

fn paths_req(src: &str, dst: &str, mode: pb::PathMode, k: u32) -> pb::GetPathsRequest {
    pb::GetPathsRequest { src: src.into(), dst: dst.into(), mode: mode.into(), k }
}

fn link_ends(l: &pb::Link) -> (u64, u32, u64, u32) {
    let (s, d) = (l.src.clone().unwrap_or_default(), l.dst.clone().unwrap_or_default());
    (s.dpid, s.port, d.dpid, d.port)
}

fn is_link(e: &pb::TopologyEvent, ends: (u64, u32, u64, u32)) -> bool {
    matches!(&e.event, Some(pb::topology_event::Event::Link(l)) if e.kind == "link_added"
        && l.link.as_ref().map(link_ends) == Some(ends))
}

fn is_switch_added(e: &pb::TopologyEvent, dpid: u64) -> bool {
    matches!(&e.event, Some(pb::topology_event::Event::Switch(s)) if e.kind == "switch_added" && s.dpid == dpid)
}

#[tokio::test]
async fn topology_queries_paths_drain_and_watch() {
    let mut p = start().await;
    let mut watch = p.client.watch(pb::WatchRequest {}).await.expect("watch").into_inner();
    let inject = cable_two_switches(&p.of_addr);

    // Watch: both switches come, then both directions of the cable.
    let seen = events_until(&mut watch, |seen| {
        [1, 2].iter().all(|&d| seen.iter().any(|e| is_switch_added(e, d)))
            && seen.iter().any(|e| is_link(e, (1, 2, 2, 1)))
            && seen.iter().any(|e| is_link(e, (2, 1, 1, 2)))
    })
    .await;
    let ports_added = seen.iter().filter(|e| e.kind == "port_added").count();
    assert_eq!(ports_added, 4, "two ports per switch: {seen:?}");
    let first = seen.iter().find(|e| is_switch_added(e, 1)).expect("seen");
    assert!(matches!(&first.event, Some(pb::topology_event::Event::Switch(s)) if s.dpid_hex == "0000000000000001"));

    // Switches, with their ports and connection.
    let switches = p.client.list_switches(pb::ListSwitchesRequest {}).await.expect("list").into_inner().switches;
    assert_eq!(switches.iter().map(|s| s.dpid).collect::<Vec<_>>(), vec![1, 2]);
    for s in &switches {
        assert_eq!(s.ports.iter().map(|p| p.port_no).collect::<Vec<_>>(), vec![1, 2], "{s:?}");
        assert!(s.ports.iter().all(|p| p.up && p.name == "eth" && p.curr_speed_kbps == 10_000_000));
        assert_eq!(s.ports[1].hw_addr, "02:00:00:00:00:02");
        assert!(s.connected && !s.drained, "{s:?}");
        assert_eq!(s.connection.as_ref().map(|c| c.version.as_str()), Some("1.3"));
        assert_eq!(s.features.as_ref().map(|f| f.n_tables), Some(254));
        assert_eq!(s.role, "equal");
    }
    let one = p.client.get_switch(switch_req("0000000000000002")).await.expect("get").into_inner();
    assert_eq!((one.dpid, one.dpid_hex.as_str()), (2, "0000000000000002"));

    // Links: the cable, both ways, weighted by the 10 Gb/s ports.
    let links = p.client.list_links(pb::ListLinksRequest {}).await.expect("links").into_inner().links;
    let mut ends: Vec<_> = links.iter().map(link_ends).collect();
    ends.sort_unstable();
    assert_eq!(ends, vec![(1, 2, 2, 1), (2, 1, 1, 2)]);
    assert!(links.iter().all(|l| l.weight == 1));

    // Paths between the two switches: two hops across the cable.
    let paths = p.client.get_paths(paths_req("1", "2", pb::PathMode::Unspecified, 0)).await.expect("paths");
    let paths = paths.into_inner().paths;
    assert_eq!(paths.len(), 1);
    let hops: Vec<_> = paths[0].hops.iter().map(|h| (h.dpid, h.in_port, h.out_port)).collect();
    assert_eq!(hops, vec![(1, None, Some(2)), (2, Some(1), None)]);
    assert_eq!(paths[0].cost, 1);
    for mode in [pb::PathMode::Ecmp, pb::PathMode::Disjoint] {
        let r = p.client.get_paths(paths_req("0000000000000002", "0x1", mode, 4)).await.expect("paths");
        let found = r.into_inner().paths;
        assert_eq!(found.len(), 1, "{mode:?}: one cable, one path");
        assert_eq!(found[0].hops.iter().map(|h| h.dpid).collect::<Vec<_>>(), vec![2, 1]);
    }

    // A host at the edge port of switch 1: learned from its ARP, reachable by MAC and IP.
    let mac = [2, 0, 0, 0, 0, 0xaa];
    inject.send((1, arp_from(mac))).await.expect("inject");
    let seen = events_until(&mut watch, |seen| seen.iter().any(|e| e.kind == "host_added")).await;
    let host_ev = seen.last().expect("host_added");
    let Some(pb::topology_event::Event::Host(h)) = &host_ev.event else { panic!("{host_ev:?}") };
    assert_eq!(h.mac, "02:00:00:00:00:aa");
    let hosts = p.client.list_hosts(pb::ListHostsRequest {}).await.expect("hosts").into_inner().hosts;
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].ips, vec!["10.0.0.1".to_string()]);
    assert_eq!(hosts[0].at.as_ref().map(|e| (e.dpid, e.port)), Some((1, 1)));
    for src in ["02:00:00:00:00:aa", "10.0.0.1"] {
        let r = p.client.get_paths(paths_req(src, "2", pb::PathMode::Shortest, 0)).await.expect("host path");
        let hops: Vec<_> = r.into_inner().paths[0].hops.iter().map(|h| (h.dpid, h.in_port, h.out_port)).collect();
        assert_eq!(hops, vec![(1, Some(1), Some(2)), (2, Some(1), None)], "from {src}: enters at the host's port");
    }
    let topo = p.client.get_topology(pb::GetTopologyRequest {}).await.expect("topology").into_inner();
    assert_eq!((topo.switches.len(), topo.links.len(), topo.hosts.len()), (2, 2, 1));

    // Drain and undrain: the switch as it is now, and an event.
    let drained = p.client.drain(switch_req("1")).await.expect("drain").into_inner();
    assert!(drained.drained && drained.dpid == 1, "{drained:?}");
    let seen = events_until(&mut watch, |seen| seen.iter().any(|e| e.kind == "switch_drained")).await;
    let ev = seen.last().expect("switch_drained");
    assert!(matches!(&ev.event, Some(pb::topology_event::Event::Switch(s)) if s.dpid == 1 && s.drained), "{ev:?}");
    let listed = p.client.get_switch(switch_req("1")).await.expect("get").into_inner();
    assert!(listed.drained);
    let undrained = p.client.undrain(switch_req("1")).await.expect("undrain").into_inner();
    assert!(!undrained.drained);
}

#[tokio::test]
async fn errors_are_not_found_or_invalid_argument() {
    let mut p = start().await;
    let _inject = cable_two_switches(&p.of_addr);
    // Wait for both switches' ports.
    for _ in 0..250 {
        let s = p.client.list_switches(pb::ListSwitchesRequest {}).await.expect("list").into_inner().switches;
        if s.len() == 2 && s.iter().all(|s| s.ports.len() == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let cases: Vec<(&str, Result<(), tonic::Status>, Code, &str)> = vec![
        (
            "unknown switch",
            p.client.get_switch(switch_req("00000000000000ff")).await.map(drop),
            Code::NotFound,
            "no switch",
        ),
        (
            "bad dpid",
            p.client.get_switch(switch_req("not-a-dpid")).await.map(drop),
            Code::InvalidArgument,
            "bad datapath id",
        ),
        ("drain unknown", p.client.drain(switch_req("255")).await.map(drop), Code::NotFound, "no switch"),
        ("drain bad", p.client.drain(switch_req("")).await.map(drop), Code::InvalidArgument, "bad datapath id"),
        ("undrain bad", p.client.undrain(switch_req("0xg")).await.map(drop), Code::InvalidArgument, "bad datapath id"),
        (
            "no dst",
            p.client.get_paths(paths_req("1", "", pb::PathMode::Shortest, 0)).await.map(drop),
            Code::InvalidArgument,
            "both src and dst",
        ),
        (
            "unknown host",
            p.client.get_paths(paths_req("00:00:00:00:00:01", "10.9.9.9", pb::PathMode::Shortest, 0)).await.map(drop),
            Code::NotFound,
            "no host with MAC",
        ),
        (
            "unknown dst switch",
            p.client.get_paths(paths_req("1", "9", pb::PathMode::Shortest, 0)).await.map(drop),
            Code::NotFound,
            "dst: no switch",
        ),
        (
            "garbage end",
            p.client.get_paths(paths_req("1", "switch-two", pb::PathMode::Shortest, 0)).await.map(drop),
            Code::InvalidArgument,
            "neither a MAC",
        ),
        (
            "k too big",
            p.client.get_paths(paths_req("1", "2", pb::PathMode::Ecmp, 65)).await.map(drop),
            Code::InvalidArgument,
            "k must be",
        ),
        (
            "unknown mode",
            p.client.get_paths(pb::GetPathsRequest { src: "1".into(), dst: "2".into(), mode: 9, k: 0 }).await.map(drop),
            Code::InvalidArgument,
            "unknown mode 9",
        ),
    ];
    for (what, got, code, text) in cases {
        let err = got.expect_err(what);
        assert_eq!(err.code(), code, "{what}: {err:?}");
        assert!(err.message().contains(text), "{what}: {:?} lacks {text:?}", err.message());
    }
    // A switch with no cable to the others: no path to it.
    let _ = p.network.topology().add_switch(9, vec![]);
    let err = p.client.get_paths(paths_req("1", "9", pb::PathMode::Shortest, 0)).await.expect_err("no path");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains("no path from 1 to 9"), "{err:?}");
}

#[tokio::test]
async fn a_lagging_watcher_is_told_how_much_it_missed() {
    let mut p = start().await;
    let mut watch = p.client.watch(pb::WatchRequest {}).await.expect("watch").into_inner();
    // More events than the channel holds, while the watch stream's task cannot run (this test's
    // runtime has one thread and nothing here yields).
    let n = tenet_topology::EVENT_CHANNEL_CAPACITY + 100;
    {
        let mut topo = p.network.topology();
        let _ = topo.add_switch(7, vec![]);
        for i in 0..n {
            let _ = topo.set_drained(7, i % 2 == 0);
        }
    }
    let ev = next_event(&mut watch).await;
    assert_eq!(ev.kind, "lagged", "{ev:?}");
    let Some(pb::topology_event::Event::Lagged(l)) = ev.event else { panic!("{ev:?}") };
    assert_eq!(l.missed, (n + 1 - tenet_topology::EVENT_CHANNEL_CAPACITY) as u64);
    // Then the events still held, in order.
    let ev = next_event(&mut watch).await;
    assert_eq!(ev.kind, "switch_drained", "{ev:?}");
}

#[tokio::test]
async fn watch_ends_when_the_controller_stops() {
    let mut p = start().await;
    let mut watch = p.client.watch(pb::WatchRequest {}).await.expect("watch").into_inner();
    let _ = p.network.topology().add_switch(3, vec![]);
    assert_eq!(next_event(&mut watch).await.kind, "switch_added");
    p.stop.send(true).expect("stop");
    let end = tokio::time::timeout(WAIT, watch.message()).await.expect("the stream ends in time");
    assert!(matches!(end, Ok(None)), "{end:?}");
}
