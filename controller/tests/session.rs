//! Switch sessions against a scripted peer on loopback.
//!
//! The peer here is a test double of a switch (named as such): it lets each test
//! send exactly the bytes a behaviour needs, including malformed ones that real
//! Open vSwitch never sends. The same controller runs against real OVS in
//! `tests/tests/learning_mininet.rs`.

use std::sync::Arc;
use std::time::Duration;

use tenet_controller::learning::Learning;
use tenet_controller::session::{AppFactory, Controller, NoApp, Registry, SessionConfig};
use tenet_controller::wire::of13::{self, HelloElem, Message, MultipartReply, MultipartRequest};
use tenet_controller::wire::{of10, split_frame, Header, OFP10, OFP13};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(5);

struct Running {
    addr: String,
    registry: Registry,
    _stop: tokio::sync::watch::Sender<bool>,
}

async fn controller(config: SessionConfig, apps: Arc<dyn AppFactory>) -> Running {
    let ctl = Controller::new(config, apps);
    let registry = ctl.registry.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(ctl.serve(listener, rx));
    Running { addr, registry, _stop: stop }
}

/// A scripted switch: a TCP stream plus frame reassembly.
struct FakeSwitch {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl FakeSwitch {
    async fn connect(addr: &str) -> FakeSwitch {
        FakeSwitch { stream: TcpStream::connect(addr).await.expect("connect"), buf: Vec::new() }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next frame, or None when the controller closed the connection.
    async fn frame(&mut self) -> Option<(Header, Vec<u8>)> {
        loop {
            if let Some((h, len)) = split_frame(&self.buf).expect("controller framing is valid") {
                let f: Vec<u8> = self.buf.drain(..len).collect();
                return Some((h, f));
            }
            let mut chunk = [0u8; 4096];
            let n =
                tokio::time::timeout(WAIT, self.stream.read(&mut chunk)).await.expect("controller silent").unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn msg13(&mut self) -> (u32, Message) {
        let (h, f) = self.frame().await.expect("a message, not a close");
        let (_, m) = of13::parse(&f).unwrap_or_else(|e| panic!("controller sent undecodable {f:?}: {e}"));
        (h.xid, m)
    }

    /// Reads until a message satisfying `pick` arrives.
    async fn until13<T>(&mut self, mut pick: impl FnMut(u32, &Message) -> Option<T>) -> T {
        loop {
            let (xid, m) = self.msg13().await;
            if let Some(v) = pick(xid, &m) {
                return v;
            }
        }
    }

    async fn closed(&mut self) -> bool {
        loop {
            match self.frame().await {
                None => return true,
                Some(_) => continue,
            }
        }
    }

    /// Completes an OpenFlow 1.3 handshake as datapath `dpid`.
    async fn handshake13(&mut self, dpid: u64) {
        self.send(&Message::Hello(vec![HelloElem::versions(&[OFP13])]).to_bytes(1).expect("message fits in 64 KiB"))
            .await;
        let (_, hello) = self.msg13().await;
        assert!(matches!(hello, Message::Hello(_)), "controller speaks first with HELLO, got {hello:?}");
        let xid = self.until13(|x, m| matches!(m, Message::FeaturesRequest).then_some(x)).await;
        let features = of13::SwitchFeatures {
            datapath_id: dpid,
            n_buffers: 256,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: 0x4f,
            reserved: 0,
        };
        self.send(&Message::FeaturesReply(features).to_bytes(xid).expect("message fits in 64 KiB")).await;
    }
}

async fn wait_registered(registry: &Registry, dpid: u64) {
    for _ in 0..100 {
        if registry.get(dpid).is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("switch {dpid:x} never registered");
}

fn frame13(msg_type: u8, xid: u32, body: &[u8]) -> Vec<u8> {
    let mut f = vec![OFP13, msg_type, 0, 0];
    f.extend_from_slice(&xid.to_be_bytes());
    f.extend_from_slice(body);
    let len = f.len() as u16;
    f[2..4].copy_from_slice(&len.to_be_bytes());
    f
}

#[tokio::test]
async fn handshake_negotiates_13_and_asks_for_ports() {
    let c = controller(SessionConfig::default(), Arc::new(NoApp)).await;
    let mut sw = FakeSwitch::connect(&c.addr).await;
    sw.handshake13(0x42).await;
    let asked = sw
        .until13(|_, m| matches!(m, Message::MultipartRequest { body: MultipartRequest::PortDesc, .. }).then_some(()))
        .await;
    assert_eq!(asked, ());
    wait_registered(&c.registry, 0x42).await;
    assert_eq!(c.registry.get(0x42).map(|h| h.info.version), Some(OFP13));
}

#[tokio::test]
async fn openflow_10_switch_is_accepted() {
    let c = controller(SessionConfig::default(), Arc::new(NoApp)).await;
    let mut sw = FakeSwitch::connect(&c.addr).await;
    sw.send(&[OFP10, 0, 0, 8, 0, 0, 0, 1]).await;
    loop {
        let (h, f) = sw.frame().await.expect("message");
        if h.version == OFP10 && h.msg_type == of10::msg_type::FEATURES_REQUEST {
            assert_eq!(f.len(), 8);
            break;
        }
    }
}

#[tokio::test]
async fn no_common_version_gets_hello_failed_and_close() {
    let c = controller(SessionConfig::default(), Arc::new(NoApp)).await;
    let mut sw = FakeSwitch::connect(&c.addr).await;
    // Speaks only version 6 (OpenFlow 1.5).
    let mut hello = Message::Hello(vec![HelloElem::versions(&[6])]).to_bytes(9).expect("message fits in 64 KiB");
    hello[0] = 6;
    sw.send(&hello).await;
    let mut saw_error = false;
    while let Some((h, f)) = sw.frame().await {
        if h.msg_type == of13::msg_type::ERROR {
            assert_eq!(&f[8..12], &[0, 0, 0, 0], "HELLO_FAILED / INCOMPATIBLE");
            saw_error = true;
        }
    }
    assert!(saw_error, "no HELLO_FAILED before close");
}

#[tokio::test]
async fn undecodable_message_gets_error_with_offending_bytes_and_session_goes_on() {
    let c = controller(SessionConfig::default(), Arc::new(NoApp)).await;
    let mut sw = FakeSwitch::connect(&c.addr).await;
    sw.handshake13(7).await;
    // A PACKET_IN whose match claims 200 bytes.
    let mut body = vec![0xff, 0xff, 0xff, 0xff, 0, 64, 0, 0];
    body.extend_from_slice(&[0; 8]);
    body.extend_from_slice(&[0, 1, 0, 200, 0x80, 0, 0, 4, 0, 0, 0, 1]);
    let bad = frame13(of13::msg_type::PACKET_IN, 77, &body);
    sw.send(&bad).await;
    let (err_type, code, data) = sw
        .until13(|x, m| match m {
            Message::Error { err_type, code, data } if x == 77 => Some((*err_type, *code, data.clone())),
            _ => None,
        })
        .await;
    assert_eq!((err_type, code), (4, 1), "BAD_MATCH / BAD_LEN");
    assert_eq!(data, bad, "the offending message comes back");

    sw.send(&Message::EchoRequest(b"still there".to_vec()).to_bytes(78).expect("message fits in 64 KiB")).await;
    let echoed = sw.until13(|x, m| match m {
        Message::EchoReply(d) if x == 78 => Some(d.clone()),
        _ => None,
    });
    assert_eq!(echoed.await, b"still there");
}

#[tokio::test]
async fn unknown_message_type_gets_bad_type() {
    let c = controller(SessionConfig::default(), Arc::new(NoApp)).await;
    let mut sw = FakeSwitch::connect(&c.addr).await;
    sw.handshake13(8).await;
    sw.send(&frame13(99, 5, &[1, 2, 3])).await;
    let got = sw
        .until13(|x, m| match m {
            Message::Error { err_type, code, .. } if x == 5 => Some((*err_type, *code)),
            _ => None,
        })
        .await;
    assert_eq!(got, (1, 1), "BAD_REQUEST / BAD_TYPE");
}

#[tokio::test]
async fn broken_framing_closes_only_that_session() {
    let c = controller(SessionConfig::default(), Arc::new(NoApp)).await;
    let mut bad = FakeSwitch::connect(&c.addr).await;
    bad.handshake13(9).await;
    wait_registered(&c.registry, 9).await;
    bad.send(&[OFP13, 2, 0, 4, 0, 0, 0, 1]).await; // length 4 < header
    assert!(bad.closed().await);
    for _ in 0..100 {
        if c.registry.get(9).is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(c.registry.get(9).is_none(), "closed session left its switch registered");

    let mut good = FakeSwitch::connect(&c.addr).await;
    good.handshake13(10).await;
    wait_registered(&c.registry, 10).await;
}

#[tokio::test]
async fn silent_switch_is_probed_then_disconnected() {
    let config = SessionConfig {
        echo_interval: Duration::from_millis(300),
        dead_after: Duration::from_millis(1500),
        ..SessionConfig::default()
    };
    let c = controller(config, Arc::new(NoApp)).await;
    let mut sw = FakeSwitch::connect(&c.addr).await;
    sw.handshake13(11).await;
    sw.until13(|_, m| matches!(m, Message::EchoRequest(_)).then_some(())).await;
    assert!(sw.closed().await, "dead peer was not disconnected");
}

#[tokio::test]
async fn multipart_reply_more_is_reassembled() {
    let c = controller(SessionConfig::default(), Arc::new(NoApp)).await;
    let mut sw = FakeSwitch::connect(&c.addr).await;
    sw.handshake13(12).await;
    wait_registered(&c.registry, 12).await;
    let handle = c.registry.get(12).expect("registered");
    let req = tokio::spawn(async move {
        handle.request(Message::MultipartRequest { flags: 0, body: MultipartRequest::PortDesc }, WAIT).await
    });
    // Skip the handshake's own PORT_DESC request: answer the second one.
    let mut seen = 0;
    let xid = sw
        .until13(|x, m| {
            if matches!(m, Message::MultipartRequest { body: MultipartRequest::PortDesc, .. }) {
                seen += 1;
                (seen == 2).then_some(x)
            } else {
                None
            }
        })
        .await;
    let port = |n: u32| of13::Port {
        port_no: n,
        hw_addr: [0, 0, 0, 0, 0, n as u8],
        name_bytes: [0; 16],
        config: 0,
        state: 0,
        curr: 0,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 0,
        max_speed: 0,
    };
    let part1 = Message::MultipartReply { flags: of13::MULTIPART_MORE, body: MultipartReply::PortDesc(vec![port(1)]) };
    let part2 = Message::MultipartReply { flags: 0, body: MultipartReply::PortDesc(vec![port(2), port(3)]) };
    sw.send(&part1.to_bytes(xid).expect("message fits in 64 KiB")).await;
    sw.send(&part2.to_bytes(xid).expect("message fits in 64 KiB")).await;
    let parts = req.await.expect("join").expect("reply");
    assert_eq!(parts, vec![part1, part2]);
}

#[tokio::test]
async fn barrier_and_role_requests_are_tracked_by_xid() {
    let c = controller(SessionConfig::default(), Arc::new(NoApp)).await;
    let mut sw = FakeSwitch::connect(&c.addr).await;
    sw.handshake13(13).await;
    wait_registered(&c.registry, 13).await;
    let h = c.registry.get(13).expect("registered");
    let h2 = h.clone();
    let barrier = tokio::spawn(async move { h2.barrier(WAIT).await });
    let xid = sw.until13(|x, m| matches!(m, Message::BarrierRequest).then_some(x)).await;
    sw.send(&Message::BarrierReply.to_bytes(xid).expect("message fits in 64 KiB")).await;
    barrier.await.expect("join").expect("barrier answered");

    let role = tokio::spawn(async move { h.set_role(of13::role::MASTER, 1, WAIT).await });
    let (xid, gen) = sw
        .until13(|x, m| match m {
            Message::RoleRequest { role, generation_id } if *role == of13::role::MASTER => Some((x, *generation_id)),
            _ => None,
        })
        .await;
    sw.send(
        &Message::RoleReply { role: of13::role::MASTER, generation_id: gen }
            .to_bytes(xid)
            .expect("message fits in 64 KiB"),
    )
    .await;
    assert_eq!(role.await.expect("join"), Ok(of13::role::MASTER));
}

#[tokio::test]
async fn learning_answers_a_buffered_packet_in_with_one_flow_mod() {
    let c = controller(SessionConfig::default(), Arc::new(Learning::default())).await;
    let mut sw = FakeSwitch::connect(&c.addr).await;
    sw.handshake13(14).await;
    // The table-miss flow comes first.
    sw.until13(|_, m| match m {
        Message::FlowMod(f) if f.priority == 0 => Some(()),
        _ => None,
    })
    .await;
    let a = [0, 0, 0, 0, 0, 0xa];
    let b = [0, 0, 0, 0, 0, 0xb];
    let eth = |dst: [u8; 6], src: [u8; 6]| {
        let mut f = dst.to_vec();
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x08, 0x00]);
        f.resize(64, 0);
        f
    };
    let pin = |buffer_id: u32, in_port: u32, data: Vec<u8>| {
        Message::PacketIn(of13::PacketIn {
            buffer_id,
            total_len: 64,
            reason: 0,
            table_id: 0,
            cookie: 0,
            match_: of13::Match::new(vec![of13::Oxm::in_port(in_port)]),
            data,
        })
    };
    // b on port 2 announces itself (flooded), then a on port 1 sends to b.
    sw.send(&pin(1, 2, eth([0xff; 6], b)).to_bytes(100).expect("message fits in 64 KiB")).await;
    let flooded = sw
        .until13(|_, m| match m {
            Message::PacketOut(p) => Some(p.actions.clone()),
            _ => None,
        })
        .await;
    assert_eq!(flooded, vec![of13::Action::Output { port: of13::action::port_no::FLOOD, max_len: 0 }]);
    sw.send(&pin(2, 1, eth(b, a)).to_bytes(101).expect("message fits in 64 KiB")).await;
    let (_, m) = sw.msg13().await;
    let Message::FlowMod(fm) = m else { panic!("expected one FLOW_MOD, got {m:?}") };
    assert_eq!(fm.buffer_id, 2, "the flow releases the buffered packet");
    assert_eq!(fm.match_.in_port(), Some(1));
    assert_eq!(
        fm.instructions,
        vec![of13::Instruction::ApplyActions(vec![of13::Action::Output { port: 2, max_len: 0 }])]
    );
    // Nothing else answers that packet-in: an echo round-trip comes next.
    sw.send(&Message::EchoRequest(vec![]).to_bytes(102).expect("message fits in 64 KiB")).await;
    let (xid, m) = sw.msg13().await;
    assert_eq!((xid, m), (102, Message::EchoReply(vec![])));
}

#[tokio::test]
async fn a_switch_that_stops_reading_only_slows_itself() {
    let c = controller(SessionConfig::default(), Arc::new(Learning::default())).await;
    // The stalled switch floods buffered PACKET_INs for a known destination and never reads the
    // FLOW_MODs they cause: its session must stop reading (backpressure) rather than buffer without bound.
    let mut stalled = FakeSwitch::connect(&c.addr).await;
    stalled.handshake13(20).await;
    let mut frame = vec![0u8; 64];
    frame[..6].copy_from_slice(&[0, 0, 0, 0, 0, 0xb]);
    frame[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0xa]);
    let learn = Message::PacketIn(of13::PacketIn {
        buffer_id: of13::NO_BUFFER,
        total_len: 64,
        reason: 0,
        table_id: 0,
        cookie: 0,
        match_: of13::Match::new(vec![of13::Oxm::in_port(2)]),
        data: {
            let mut f = frame.clone();
            f[..6].copy_from_slice(&[0xff; 6]);
            f[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0xb]);
            f
        },
    });
    stalled.send(&learn.to_bytes(1).expect("message fits in 64 KiB")).await;
    let probe = Message::PacketIn(of13::PacketIn {
        buffer_id: 7,
        total_len: 64,
        reason: 0,
        table_id: 0,
        cookie: 0,
        match_: of13::Match::new(vec![of13::Oxm::in_port(1)]),
        data: frame,
    })
    .to_bytes(2)
    .expect("message fits in 64 KiB");
    let burst: Vec<u8> = probe.iter().copied().cycle().take(probe.len() * 4096).collect();
    let mut writer = stalled.stream;
    let flood = tokio::spawn(async move {
        // Stops when the controller stops reading and the socket buffers fill: that is the point.
        loop {
            if tokio::time::timeout(Duration::from_secs(2), writer.write_all(&burst)).await.is_err() {
                return writer;
            }
        }
    });

    // Meanwhile another switch is served as usual.
    let mut healthy = FakeSwitch::connect(&c.addr).await;
    healthy.handshake13(21).await;
    for i in 0..20u32 {
        healthy.send(&Message::EchoRequest(i.to_be_bytes().to_vec()).to_bytes(1000 + i).expect("fits")).await;
        let got = healthy
            .until13(|x, m| match m {
                Message::EchoReply(d) if x == 1000 + i => Some(d.clone()),
                _ => None,
            })
            .await;
        assert_eq!(got, i.to_be_bytes());
    }
    let writer = flood.await.expect("flood task");
    // The stalled switch's session is still there: backpressure, not a disconnect.
    assert!(c.registry.get(20).is_some(), "stalled switch was dropped instead of slowed");
    drop(writer);
}
