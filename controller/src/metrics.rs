//! Controller counters, served in the Prometheus text format.
//!
//! Counters are plain atomics bumped on the hot path; `--metrics ADDR` serves
//! them over a deliberately tiny HTTP/1.1 responder (GET only, one response per
//! connection), which is all a Prometheus scraper or `curl` needs.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Everything the controller counts.
#[derive(Debug, Default)]
pub struct Metrics {
    pub connections_accepted: AtomicU64,
    pub switches_connected: AtomicU64,
    pub disconnects: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub packet_ins: AtomicU64,
    pub flow_mods_sent: AtomicU64,
    pub packet_outs_sent: AtomicU64,
    pub errors_sent: AtomicU64,
    pub errors_received: AtomicU64,
    pub decode_errors: AtomicU64,
    pub echo_timeouts: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
}

/// Per-session counts of the busy counters, folded into [`Metrics`] once per
/// batch so the hot path never contends on shared cache lines.
#[derive(Debug, Default)]
pub struct Counts {
    pub messages_received: u64,
    pub messages_sent: u64,
    pub packet_ins: u64,
    pub flow_mods_sent: u64,
    pub packet_outs_sent: u64,
    pub errors_sent: u64,
    pub errors_received: u64,
    pub decode_errors: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
}

impl Metrics {
    /// Adds a session's counts to the shared counters and zeroes them.
    pub fn absorb(&self, c: &mut Counts) {
        let pairs = [
            (&self.messages_received, &mut c.messages_received),
            (&self.messages_sent, &mut c.messages_sent),
            (&self.packet_ins, &mut c.packet_ins),
            (&self.flow_mods_sent, &mut c.flow_mods_sent),
            (&self.packet_outs_sent, &mut c.packet_outs_sent),
            (&self.errors_sent, &mut c.errors_sent),
            (&self.errors_received, &mut c.errors_received),
            (&self.decode_errors, &mut c.decode_errors),
            (&self.bytes_received, &mut c.bytes_received),
            (&self.bytes_sent, &mut c.bytes_sent),
        ];
        for (shared, local) in pairs {
            if *local != 0 {
                shared.fetch_add(std::mem::take(local), Relaxed);
            }
        }
    }

    /// Adds one to a counter.
    #[inline]
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }

    /// Renders all counters in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &str, &AtomicU64); 14] = [
            ("tenet_connections_accepted_total", "counter", "TCP connections accepted", &self.connections_accepted),
            ("tenet_switches_connected", "gauge", "switches with a completed handshake", &self.switches_connected),
            ("tenet_disconnects_total", "counter", "switch sessions ended", &self.disconnects),
            ("tenet_messages_received_total", "counter", "OpenFlow messages received", &self.messages_received),
            ("tenet_messages_sent_total", "counter", "OpenFlow messages sent", &self.messages_sent),
            ("tenet_packet_ins_total", "counter", "PACKET_IN messages received", &self.packet_ins),
            ("tenet_flow_mods_sent_total", "counter", "FLOW_MOD messages sent", &self.flow_mods_sent),
            ("tenet_packet_outs_sent_total", "counter", "PACKET_OUT messages sent", &self.packet_outs_sent),
            ("tenet_errors_sent_total", "counter", "OFPT_ERROR messages sent to switches", &self.errors_sent),
            ("tenet_errors_received_total", "counter", "OFPT_ERROR messages from switches", &self.errors_received),
            ("tenet_decode_errors_total", "counter", "messages that could not be decoded", &self.decode_errors),
            ("tenet_echo_timeouts_total", "counter", "sessions closed as dead peers", &self.echo_timeouts),
            ("tenet_bytes_received_total", "counter", "bytes read from switches", &self.bytes_received),
            ("tenet_bytes_sent_total", "counter", "bytes written to switches", &self.bytes_sent),
        ];
        let mut out = String::with_capacity(2048);
        for (name, kind, help, v) in rows {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}", v.load(Relaxed));
        }
        out
    }
}

/// Serves `GET /metrics` (any path, in fact) on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics listening");
    }
    loop {
        let (mut sock, _) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut req = [0u8; 1024];
            // One read is enough for a GET line; the request body is never used.
            let n = sock.read(&mut req).await.unwrap_or(0);
            let (status, body) = if req[..n].starts_with(b"GET ") {
                ("200 OK", metrics.render())
            } else {
                ("405 Method Not Allowed", "only GET is served\n".to_string())
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        });
    }
}
