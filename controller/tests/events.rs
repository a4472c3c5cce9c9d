//! `GET /v1/events`: topology changes as server-sent events.

use std::sync::Arc;
use std::time::Duration;

use tenet_controller::api::{self, ApiState};
use tenet_controller::learning::Learning;
use tenet_controller::network::{DiscoveryConfig, Network};
use tenet_controller::session::{Controller, SessionConfig};
use tenet_controller::wire::of13::{HelloElem, Message, SwitchFeatures};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn a_connecting_switch_is_announced_on_the_event_stream() {
    let net = Network::new(DiscoveryConfig::default());
    let ctl = Controller::new(SessionConfig::default(), Arc::new(Learning::with_network(net.clone())));
    let state = ApiState { network: net, registry: ctl.registry.clone(), tenant: None };
    let (of, api_l) =
        (TcpListener::bind("127.0.0.1:0").await.expect("bind"), TcpListener::bind("127.0.0.1:0").await.expect("bind"));
    let (of_addr, api_addr) = (of.local_addr().expect("addr"), api_l.local_addr().expect("addr"));
    let (_stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(api::serve(api_l, state, rx.clone()));
    tokio::spawn(ctl.serve(of, rx));

    let mut sse = TcpStream::connect(api_addr).await.expect("connect api");
    sse.write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n").await.expect("write");
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    // Wait for the response head before the switch connects, so no event is missed.
    while !got.contains("\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), sse.read(&mut buf)).await.expect("head").expect("read");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.to_ascii_lowercase().contains("content-type: text/event-stream"), "{got}");

    // A switch connects and reports its ports (here: none, as in FEATURES then an empty PORT_DESC).
    let mut sw = TcpStream::connect(of_addr).await.expect("connect of");
    sw.write_all(&Message::Hello(vec![HelloElem::versions(&[4])]).to_bytes(1).expect("fits")).await.expect("hello");
    let features = SwitchFeatures {
        datapath_id: 0xab,
        n_buffers: 0,
        n_tables: 254,
        auxiliary_id: 0,
        capabilities: 0,
        reserved: 0,
    };
    // The controller's FEATURES_REQUEST is its second message; answer whatever xid it used.
    let mut inbuf = Vec::new();
    let xid = loop {
        let n = sw.read(&mut buf).await.expect("read");
        assert!(n > 0, "controller closed");
        inbuf.extend_from_slice(&buf[..n]);
        if let Some(pos) = (0..inbuf.len().saturating_sub(7)).find(|&i| inbuf[i] == 4 && inbuf[i + 1] == 5) {
            break u32::from_be_bytes([inbuf[pos + 4], inbuf[pos + 5], inbuf[pos + 6], inbuf[pos + 7]]);
        }
    };
    sw.write_all(&Message::FeaturesReply(features).to_bytes(xid).expect("fits")).await.expect("features");
    let port_desc =
        Message::MultipartReply { flags: 0, body: tenet_controller::wire::of13::MultipartReply::PortDesc(Vec::new()) };
    sw.write_all(&port_desc.to_bytes(xid + 1).expect("fits")).await.expect("port desc");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !got.contains("\"switch_added\"") {
        let n =
            tokio::time::timeout_at(deadline, sse.read(&mut buf)).await.expect("an event within 10 s").expect("read");
        assert!(n > 0, "event stream closed");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(got.contains("data: {\"type\":\"switch_added\",\"dpid\":\"00000000000000ab\""), "{got}");
}
