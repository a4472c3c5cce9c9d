//! Switch sessions: one tokio task per TCP connection.
//!
//! A session owns the framing (a read buffer that may hold many messages or
//! part of one, and a write buffer that batches every answer produced by one
//! read into a single write), the OpenFlow handshake (HELLO with version
//! negotiation, FEATURES, PORT_DESC), echo keepalive with dead-peer detection,
//! and xid-tracked requests (barrier, role, multipart with REPLY_MORE
//! reassembly). The application logic runs inline on the session task through
//! [`DatapathApp`], so a PACKET_IN is answered without a hop between tasks.
//!
//! Backpressure: a session does not read again until everything it owes the
//! switch has been written, so a slow switch only ever slows itself.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::metrics::{Counts, Metrics};
use crate::wire::error::{error_type, WireError};
use crate::wire::of13::{self, multipart::MultipartRequest, HelloElem};
use crate::wire::{of10, split_frame, Header, OFP10, OFP13};

/// Versions this controller speaks, in preference order is by value (highest wins).
pub const SUPPORTED_VERSIONS: [u8; 2] = [OFP10, OFP13];

/// Tunables of every session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Idle time after which an ECHO_REQUEST is sent.
    pub echo_interval: Duration,
    /// Silence after which the peer is declared dead and the session closed.
    pub dead_after: Duration,
    /// Time allowed for HELLO and FEATURES to complete.
    pub handshake_timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            echo_interval: Duration::from_secs(5),
            dead_after: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// What the session knows about its switch once the handshake is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchInfo {
    pub dpid: u64,
    pub version: u8,
    pub n_buffers: u32,
    pub n_tables: u8,
    pub capabilities: u32,
    pub peer: SocketAddr,
}

/// A PACKET_IN of either version, borrowed from the decoded message.
#[derive(Debug, Clone, Copy)]
pub struct PacketInRef<'a> {
    pub buffer_id: u32,
    pub in_port: u32,
    pub total_len: u16,
    pub reason: u8,
    pub table_id: u8,
    pub cookie: u64,
    pub data: &'a [u8],
}

/// The application's window onto the switch during a callback.
pub struct Ctx<'a> {
    pub info: &'a SwitchInfo,
    out: &'a mut Vec<u8>,
    next_xid: &'a mut u32,
    counts: &'a mut Counts,
}

impl Ctx<'_> {
    fn xid(&mut self) -> u32 {
        *self.next_xid = self.next_xid.wrapping_add(1).max(1);
        *self.next_xid
    }

    /// Queues an OpenFlow 1.3 message (flushed after the current batch).
    pub fn send13(&mut self, msg: &of13::Message) {
        let xid = self.xid();
        queue13(self.out, self.counts, msg, xid);
    }

    /// Queues an OpenFlow 1.0 message (flushed after the current batch).
    pub fn send10(&mut self, msg: &of10::Message) {
        let xid = self.xid();
        queue10(self.out, self.counts, msg, xid);
    }

    /// Queues already-encoded messages (their xids are kept).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }
}

/// Appends an OpenFlow 1.3 message to a session's write buffer and counts it.
fn queue13(out: &mut Vec<u8>, counts: &mut Counts, msg: &of13::Message, xid: u32) {
    match msg.emit(xid, out) {
        Ok(()) => count_sent(counts, msg.msg_type(), OFP13),
        Err(e) => tracing::error!(msg_type = msg.msg_type(), error = %e, "message not sent"),
    }
}

/// Appends an OpenFlow 1.0 message to a session's write buffer and counts it.
fn queue10(out: &mut Vec<u8>, counts: &mut Counts, msg: &of10::Message, xid: u32) {
    match msg.emit(xid, out) {
        Ok(()) => count_sent(counts, msg.msg_type(), OFP10),
        Err(e) => tracing::error!(msg_type = msg.msg_type(), error = %e, "message not sent"),
    }
}

fn count_sent(c: &mut Counts, msg_type: u8, version: u8) {
    c.messages_sent += 1;
    let (flow_mod, packet_out) = if version == OFP13 {
        (of13::msg_type::FLOW_MOD, of13::msg_type::PACKET_OUT)
    } else {
        (of10::msg_type::FLOW_MOD, of10::msg_type::PACKET_OUT)
    };
    if msg_type == flow_mod {
        c.flow_mods_sent += 1;
    } else if msg_type == packet_out {
        c.packet_outs_sent += 1;
    } else if msg_type == of13::msg_type::ERROR {
        c.errors_sent += 1;
    }
}

/// Per-switch application logic, run inline on the session task.
pub trait DatapathApp: Send {
    /// The handshake finished: install whatever the switch needs.
    fn on_ready(&mut self, _ctx: &mut Ctx<'_>) {}
    /// A PACKET_IN arrived.
    fn on_packet_in(&mut self, _ctx: &mut Ctx<'_>, _pi: PacketInRef<'_>) {}
    /// The switch's ports, all of them (PORT_DESC in 1.3, FEATURES_REPLY in 1.0; 1.3 form).
    fn on_ports(&mut self, _ctx: &mut Ctx<'_>, _ports: &[of13::Port]) {}
    /// A port was added, removed (`of13::port::port_reason`) or changed (1.3 form; 1.0 is converted).
    fn on_port_status(&mut self, _ctx: &mut Ctx<'_>, _reason: u8, _port: &of13::Port) {}
    /// The session ended (after a completed handshake).
    fn on_disconnect(&mut self, _info: &SwitchInfo) {}
}

/// Makes one [`DatapathApp`] per connection.
pub trait AppFactory: Send + Sync + 'static {
    fn make(&self) -> Box<dyn DatapathApp>;
}

/// An application that does nothing (switches are only connected and watched).
pub struct NoApp;
impl DatapathApp for NoApp {}
impl AppFactory for NoApp {
    fn make(&self) -> Box<dyn DatapathApp> {
        Box::new(NoApp)
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("switch answered with OFPT_ERROR {0}/{1}")]
    Switch(u16, u16),
    #[error("session closed before the reply")]
    Closed,
    #[error("request needs OpenFlow 1.3; the switch speaks version {0}")]
    WrongVersion(u8),
    #[error("no reply within the timeout")]
    Timeout,
}

enum Command {
    /// Send a 1.3 message and collect every reply with its xid until the last part.
    Request13 { msg: of13::Message, reply: oneshot::Sender<Result<Vec<of13::Message>, RequestError>> },
    /// Send raw, already-encoded messages.
    Send(Vec<u8>),
}

/// A handle on a connected switch, usable from any task.
#[derive(Clone)]
pub struct SwitchHandle {
    pub info: SwitchInfo,
    /// Ports as last reported (PORT_DESC, then PORT_STATUS); OpenFlow 1.3 form.
    pub ports: Arc<Mutex<HashMap<u32, of13::Port>>>,
    /// The role the switch last confirmed for us (`of13::role`; EQUAL until asked).
    role: Arc<std::sync::atomic::AtomicU32>,
    commands: mpsc::Sender<Command>,
}

impl SwitchHandle {
    /// Sends a request and waits for its whole reply (all multipart parts).
    pub async fn request(&self, msg: of13::Message, timeout: Duration) -> Result<Vec<of13::Message>, RequestError> {
        if self.info.version != OFP13 {
            return Err(RequestError::WrongVersion(self.info.version));
        }
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Request13 { msg, reply: tx }).await.map_err(|_| RequestError::Closed)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(RequestError::Closed),
            Err(_) => Err(RequestError::Timeout),
        }
    }

    /// Sends a barrier and waits for its reply.
    pub async fn barrier(&self, timeout: Duration) -> Result<(), RequestError> {
        self.request(of13::Message::BarrierRequest, timeout).await.map(|_| ())
    }

    /// Asks for a controller role (MASTER/SLAVE/EQUAL) and returns the switch's answer.
    pub async fn set_role(&self, role: u32, generation_id: u64, timeout: Duration) -> Result<u32, RequestError> {
        let replies = self.request(of13::Message::RoleRequest { role, generation_id }, timeout).await?;
        let granted = replies
            .into_iter()
            .find_map(|m| match m {
                of13::Message::RoleReply { role, .. } => Some(role),
                _ => None,
            })
            .ok_or(RequestError::Closed)?;
        self.role.store(granted, std::sync::atomic::Ordering::Relaxed);
        Ok(granted)
    }

    /// The role the switch last confirmed (`of13::role`).
    pub fn role(&self) -> u32 {
        self.role.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Queues already-encoded messages for the switch.
    pub async fn send_raw(&self, bytes: Vec<u8>) -> Result<(), RequestError> {
        self.commands.send(Command::Send(bytes)).await.map_err(|_| RequestError::Closed)
    }
}

/// Connected switches by datapath id.
#[derive(Default, Clone)]
pub struct Registry {
    inner: Arc<Mutex<HashMap<u64, SwitchHandle>>>,
}

impl Registry {
    /// All connected switches.
    pub fn switches(&self) -> Vec<SwitchHandle> {
        self.inner.lock().map(|m| m.values().cloned().collect()).unwrap_or_default()
    }
    /// One switch by datapath id.
    pub fn get(&self, dpid: u64) -> Option<SwitchHandle> {
        self.inner.lock().ok().and_then(|m| m.get(&dpid).cloned())
    }
    fn insert(&self, h: SwitchHandle) {
        if let Ok(mut m) = self.inner.lock() {
            m.insert(h.info.dpid, h);
        }
    }
    fn remove_if(&self, dpid: u64, commands: &mpsc::Sender<Command>) {
        if let Ok(mut m) = self.inner.lock() {
            // A reconnected switch may already have replaced this session's entry.
            if m.get(&dpid).is_some_and(|h| h.commands.same_channel(commands)) {
                m.remove(&dpid);
            }
        }
    }
}

/// The controller's shared state: what every session needs.
#[derive(Clone)]
pub struct Controller {
    pub config: SessionConfig,
    pub metrics: Arc<Metrics>,
    pub registry: Registry,
    pub apps: Arc<dyn AppFactory>,
}

impl Controller {
    pub fn new(config: SessionConfig, apps: Arc<dyn AppFactory>) -> Self {
        Controller { config, metrics: Arc::new(Metrics::default()), registry: Registry::default(), apps }
    }

    /// Accepts switches until `shutdown` turns true.
    pub async fn serve(self, listener: TcpListener, mut shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(v) => v,
                        Err(e) => {
                            // Out of file descriptors and the like: keep serving the others.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    Metrics::inc(&self.metrics.connections_accepted);
                    let _ = stream.set_nodelay(true);
                    let ctl = self.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move { ctl.run_session(stream, peer, shutdown).await });
                }
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }

    async fn run_session(self, stream: TcpStream, peer: SocketAddr, shutdown: watch::Receiver<bool>) {
        let (tx, rx) = mpsc::channel(256);
        let mut session = Session::new(self.clone(), peer, tx.clone());
        let result = session.run(stream, rx, shutdown).await;
        self.metrics.absorb(&mut session.counts);
        if let Some(info) = &session.info {
            session.app.on_disconnect(info);
        }
        let dpid = session.info.as_ref().map(|i| i.dpid);
        if let Some(d) = dpid {
            self.registry.remove_if(d, &tx);
            self.metrics.switches_connected.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        Metrics::inc(&self.metrics.disconnects);
        let dpid_s = dpid.map(|d| format!("{d:016x}")).unwrap_or_else(|| "unknown".into());
        match result {
            Ok(reason) => tracing::info!(dpid = %dpid_s, %peer, reason, "switch disconnected"),
            Err(reason) => tracing::warn!(dpid = %dpid_s, %peer, %reason, "switch session closed"),
        }
    }
}

struct Pending {
    parts: Vec<of13::Message>,
    reply: oneshot::Sender<Result<Vec<of13::Message>, RequestError>>,
}

enum State {
    AwaitHello,
    AwaitFeatures,
    Ready,
}

struct Session {
    ctl: Controller,
    peer: SocketAddr,
    commands_tx: mpsc::Sender<Command>,
    state: State,
    version: u8,
    info: Option<SwitchInfo>,
    ports: Arc<Mutex<HashMap<u32, of13::Port>>>,
    app: Box<dyn DatapathApp>,
    out: Vec<u8>,
    next_xid: u32,
    pending: HashMap<u32, Pending>,
    /// When the switch was last heard, to the precision of the session's tick (reading the
    /// clock once per tick, not once per read, keeps it off the hot path).
    last_heard: Instant,
    heard_since_tick: bool,
    echo_outstanding: bool,
    counts: Counts,
}

/// How a session ended: a clean reason, or an error reason.
type Ending = Result<&'static str, String>;

impl Session {
    fn new(ctl: Controller, peer: SocketAddr, commands_tx: mpsc::Sender<Command>) -> Self {
        let app = ctl.apps.make();
        Session {
            ctl,
            peer,
            commands_tx,
            state: State::AwaitHello,
            version: OFP13,
            info: None,
            ports: Arc::default(),
            app,
            out: Vec::with_capacity(64 * 1024),
            next_xid: 0,
            pending: HashMap::new(),
            last_heard: Instant::now(),
            heard_since_tick: false,
            echo_outstanding: false,
            counts: Counts::default(),
        }
    }

    fn xid(&mut self) -> u32 {
        self.next_xid = self.next_xid.wrapping_add(1).max(1);
        self.next_xid
    }

    fn send13(&mut self, msg: &of13::Message) -> u32 {
        let xid = self.xid();
        self.send13_xid(msg, xid);
        xid
    }

    fn send13_xid(&mut self, msg: &of13::Message, xid: u32) {
        queue13(&mut self.out, &mut self.counts, msg, xid);
    }

    fn send10(&mut self, msg: &of10::Message) -> u32 {
        let xid = self.xid();
        self.send10_xid(msg, xid);
        xid
    }

    fn send10_xid(&mut self, msg: &of10::Message, xid: u32) {
        queue10(&mut self.out, &mut self.counts, msg, xid);
    }

    /// Answers an undecodable message with OFPT_ERROR in the session's version.
    fn send_error(&mut self, err: &WireError, xid: u32, frame: &[u8]) {
        self.counts.decode_errors += 1;
        if self.version == OFP10 {
            self.send10_xid(&of10::error_for(err, frame), xid);
        } else {
            self.send13_xid(&of13::error_for(err, frame), xid);
        }
    }

    async fn run(
        &mut self,
        mut stream: TcpStream,
        mut commands: mpsc::Receiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Ending {
        // Our HELLO names every version we speak; its header carries the highest.
        self.send13_xid(&of13::Message::Hello(vec![HelloElem::versions(&SUPPORTED_VERSIONS)]), 0);
        let mut rbuf = ReadBuf::new();
        let handshake_deadline = Instant::now() + self.ctl.config.handshake_timeout;
        let mut tick = tokio::time::interval(self.ctl.config.echo_interval.min(Duration::from_secs(1)));
        loop {
            if !self.out.is_empty() {
                self.counts.bytes_sent += self.out.len() as u64;
                stream.write_all(&self.out).await.map_err(|e| format!("write failed: {e}"))?;
                self.out.clear();
            }
            tokio::select! {
                biased;
                r = stream.readable() => {
                    r.map_err(|e| format!("read failed: {e}"))?;
                    let n = match rbuf.read_from(&stream) {
                        Ok(0) => return Ok("connection closed by switch"),
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(e) => return Err(format!("read failed: {e}")),
                    };
                    self.counts.bytes_received += n as u64;
                    self.heard_since_tick = true;
                    self.echo_outstanding = false;
                    match self.handle_bytes(rbuf.filled()) {
                        Ok(used) => rbuf.consume(used),
                        Err(reason) => {
                            // Best effort: the switch should see the ERROR that explains the close.
                            let _ = stream.write_all(&self.out).await;
                            return Err(reason);
                        }
                    }
                }
                cmd = commands.recv() => match cmd {
                    Some(c) => self.handle_command(c),
                    None => return Ok("controller dropped the session"),
                },
                _ = tick.tick() => {
                    // Counters reach the shared metrics once per tick (and when the session ends).
                    self.ctl.metrics.absorb(&mut self.counts);
                    let now = Instant::now();
                    if std::mem::take(&mut self.heard_since_tick) {
                        self.last_heard = now;
                    }
                    if !matches!(self.state, State::Ready) && now > handshake_deadline {
                        return Err("handshake did not complete in time".into());
                    }
                    if now.duration_since(self.last_heard) >= self.ctl.config.dead_after {
                        Metrics::inc(&self.ctl.metrics.echo_timeouts);
                        return Err(format!("dead peer: silent for {:?}", now.duration_since(self.last_heard)));
                    }
                    if now.duration_since(self.last_heard) >= self.ctl.config.echo_interval && !self.echo_outstanding {
                        self.echo_outstanding = true;
                        if self.version == OFP10 {
                            self.send10(&of10::Message::EchoRequest(Vec::new()));
                        } else {
                            self.send13(&of13::Message::EchoRequest(Vec::new()));
                        }
                    }
                }
                _ = shutdown.changed() => return Ok("controller shutting down"),
            }
        }
    }

    /// Handles every complete frame in `buf`; returns how many bytes were used.
    fn handle_bytes(&mut self, buf: &[u8]) -> Result<usize, String> {
        let mut used = 0;
        loop {
            match split_frame(&buf[used..]) {
                Ok(Some((header, len))) => {
                    let frame = &buf[used..used + len];
                    used += len;
                    self.counts.messages_received += 1;
                    self.handle_frame(header, frame)?;
                }
                Ok(None) => return Ok(used),
                Err(e) => return Err(format!("broken framing: {e}")),
            }
        }
    }

    fn handle_frame(&mut self, header: Header, frame: &[u8]) -> Result<(), String> {
        if let State::AwaitHello = self.state {
            return self.handle_hello(header, frame);
        }
        if header.version != self.version {
            let e = WireError::bad_version(header.version);
            self.send_error(&e, header.xid, frame);
            return Ok(());
        }
        if self.version == OFP13 {
            match of13::parse(frame) {
                Ok((h, msg)) => self.handle13(h.xid, msg),
                Err(e) => {
                    self.log_decode_error(&e, header);
                    self.send_error(&e, header.xid, frame);
                    Ok(())
                }
            }
        } else {
            match of10::parse(frame) {
                Ok((h, msg)) => self.handle10(h.xid, msg),
                Err(e) => {
                    self.log_decode_error(&e, header);
                    self.send_error(&e, header.xid, frame);
                    Ok(())
                }
            }
        }
    }

    fn log_decode_error(&self, e: &WireError, header: Header) {
        tracing::warn!(
            dpid = %self.dpid_str(), msg_type = header.msg_type, xid = header.xid, error = %e,
            "undecodable message answered with OFPT_ERROR"
        );
    }

    fn dpid_str(&self) -> String {
        self.info.as_ref().map(|i| format!("{:016x}", i.dpid)).unwrap_or_else(|| "unknown".into())
    }

    fn handle_hello(&mut self, header: Header, frame: &[u8]) -> Result<(), String> {
        if header.msg_type != of13::msg_type::HELLO {
            return Err(format!("expected HELLO, got message type {}", header.msg_type));
        }
        // Elements are only defined from 1.3 on; an older HELLO's body is ignored.
        let elems = if header.version >= OFP13 {
            let mut as13 = frame.to_vec();
            as13[0] = OFP13;
            match of13::parse(&as13) {
                Ok((_, of13::Message::Hello(elems))) => elems,
                _ => Vec::new(),
            }
        } else {
            Vec::new()
        };
        let Some(version) = of13::negotiate(header.version, &elems, &SUPPORTED_VERSIONS) else {
            let data = b"no common OpenFlow version: tenet speaks 1.0 and 1.3".to_vec();
            let err = of13::Message::Error { err_type: error_type::HELLO_FAILED, code: 0, data };
            self.version = header.version.min(OFP13);
            // Answer in the switch's own version (at most ours), so it can read the reason.
            let start = self.out.len();
            self.send13_xid(&err, header.xid);
            if let Some(v) = self.out.get_mut(start) {
                *v = self.version;
            }
            return Err(format!("no common version (switch offers up to {})", header.version));
        };
        self.version = version;
        self.state = State::AwaitFeatures;
        if version == OFP10 {
            self.send10(&of10::Message::FeaturesRequest);
        } else {
            self.send13(&of13::Message::FeaturesRequest);
        }
        Ok(())
    }

    fn become_ready(&mut self, info: SwitchInfo) {
        tracing::info!(dpid = %format!("{:016x}", info.dpid), peer = %self.peer, version = info.version, "switch connected");
        self.info = Some(info.clone());
        self.state = State::Ready;
        self.ctl.metrics.switches_connected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.ctl.registry.insert(SwitchHandle {
            info: info.clone(),
            ports: self.ports.clone(),
            role: Arc::new(std::sync::atomic::AtomicU32::new(of13::role::EQUAL)),
            commands: self.commands_tx.clone(),
        });
        let mut ctx = Ctx { info: &info, out: &mut self.out, next_xid: &mut self.next_xid, counts: &mut self.counts };
        self.app.on_ready(&mut ctx);
    }

    /// A full port list arrived: remember it and tell the application.
    fn ports_known(&mut self, list: &[of13::Port]) {
        if let Ok(mut ports) = self.ports.lock() {
            ports.extend(list.iter().map(|p| (p.port_no, p.clone())));
        }
        if let Some(info) = &self.info {
            let mut ctx = Ctx { info, out: &mut self.out, next_xid: &mut self.next_xid, counts: &mut self.counts };
            self.app.on_ports(&mut ctx, list);
        }
    }

    /// One port changed: remember it and tell the application.
    fn port_status(&mut self, reason: u8, port: of13::Port) {
        if let Ok(mut ports) = self.ports.lock() {
            if reason == of13::port::port_reason::DELETE {
                ports.remove(&port.port_no);
            } else {
                ports.insert(port.port_no, port.clone());
            }
        }
        if let Some(info) = &self.info {
            let mut ctx = Ctx { info, out: &mut self.out, next_xid: &mut self.next_xid, counts: &mut self.counts };
            self.app.on_port_status(&mut ctx, reason, &port);
        }
    }

    fn handle13(&mut self, xid: u32, msg: of13::Message) -> Result<(), String> {
        use of13::Message as M;
        match msg {
            M::EchoRequest(data) => self.send13_xid(&M::EchoReply(data), xid),
            M::EchoReply(_) => {}
            M::Hello(_) => {}
            M::FeaturesReply(f) if matches!(self.state, State::AwaitFeatures) => {
                let info = SwitchInfo {
                    dpid: f.datapath_id,
                    version: OFP13,
                    n_buffers: f.n_buffers,
                    n_tables: f.n_tables,
                    capabilities: f.capabilities,
                    peer: self.peer,
                };
                // Ports arrive with PORT_DESC; the reply is handled as an untracked multipart.
                self.send13(&M::MultipartRequest { flags: 0, body: MultipartRequest::PortDesc });
                self.send13(&M::SetConfig { flags: 0, miss_send_len: 0xffff });
                self.become_ready(info);
            }
            M::PacketIn(p) => {
                self.counts.packet_ins += 1;
                if let Some(info) = &self.info {
                    let pi = PacketInRef {
                        buffer_id: p.buffer_id,
                        in_port: p.match_.in_port().unwrap_or(0),
                        total_len: p.total_len,
                        reason: p.reason,
                        table_id: p.table_id,
                        cookie: p.cookie,
                        data: &p.data,
                    };
                    let mut ctx =
                        Ctx { info, out: &mut self.out, next_xid: &mut self.next_xid, counts: &mut self.counts };
                    self.app.on_packet_in(&mut ctx, pi);
                }
            }
            M::PortStatus(ps) => self.port_status(ps.reason, ps.desc),
            M::Error { err_type, code, ref data } => {
                self.counts.errors_received += 1;
                if let Some(p) = self.pending.remove(&xid) {
                    let _ = p.reply.send(Err(RequestError::Switch(err_type, code)));
                } else {
                    let (t, c) = crate::wire::error::describe(err_type, code);
                    tracing::warn!(dpid = %self.dpid_str(), xid, err_type = t, code = c, offending_len = data.len(), "switch reported an error");
                }
            }
            M::MultipartReply { flags, body } => {
                if let of13::MultipartReply::PortDesc(list) = &body {
                    self.ports_known(list);
                }
                self.complete(xid, M::MultipartReply { flags, body }, flags & of13::MULTIPART_MORE != 0);
            }
            M::BarrierReply | M::RoleReply { .. } | M::GetConfigReply { .. } | M::GetAsyncReply(_) => {
                self.complete(xid, msg, false)
            }
            M::QueueGetConfigReply { .. } | M::Experimenter { .. } | M::ErrorExperimenter { .. } => {
                self.complete(xid, msg, false)
            }
            M::FlowRemoved(_) => {}
            other => {
                // A controller-to-switch message sent to us: the switch is confused; tell it.
                let e = WireError::bad_type("message type not expected from a switch");
                tracing::debug!(dpid = %self.dpid_str(), msg_type = other.msg_type(), "unexpected message from switch");
                self.send13_xid(&of13::error_for(&e, &other.to_bytes(xid).unwrap_or_default()), xid);
            }
        }
        Ok(())
    }

    /// Adds a reply part to the request with this xid; finishes it unless more parts follow.
    fn complete(&mut self, xid: u32, msg: of13::Message, more: bool) {
        if let Some(p) = self.pending.get_mut(&xid) {
            p.parts.push(msg);
            if !more {
                if let Some(p) = self.pending.remove(&xid) {
                    let _ = p.reply.send(Ok(p.parts));
                }
            }
        }
    }

    fn handle10(&mut self, xid: u32, msg: of10::Message) -> Result<(), String> {
        use of10::Message as M;
        match msg {
            M::EchoRequest(data) => self.send10_xid(&M::EchoReply(data), xid),
            M::FeaturesReply(f) if matches!(self.state, State::AwaitFeatures) => {
                let ports: Vec<of13::Port> = f.ports.iter().map(port_from_of10).collect();
                let info = SwitchInfo {
                    dpid: f.datapath_id,
                    version: OFP10,
                    n_buffers: f.n_buffers,
                    n_tables: f.n_tables,
                    capabilities: f.capabilities,
                    peer: self.peer,
                };
                self.send10(&M::SetConfig { flags: 0, miss_send_len: 0xffff });
                self.become_ready(info);
                self.ports_known(&ports);
            }
            M::PacketIn(p) => {
                self.counts.packet_ins += 1;
                if let Some(info) = &self.info {
                    let pi = PacketInRef {
                        buffer_id: p.buffer_id,
                        in_port: u32::from(p.in_port),
                        total_len: p.total_len,
                        reason: p.reason,
                        table_id: 0,
                        cookie: 0,
                        data: &p.data,
                    };
                    let mut ctx =
                        Ctx { info, out: &mut self.out, next_xid: &mut self.next_xid, counts: &mut self.counts };
                    self.app.on_packet_in(&mut ctx, pi);
                }
            }
            M::PortStatus(of10::PortStatus { reason, desc }) => self.port_status(reason, port_from_of10(&desc)),
            M::Error { err_type, code, .. } => {
                self.counts.errors_received += 1;
                tracing::warn!(dpid = %self.dpid_str(), xid, err_type, code, "switch reported an error (OpenFlow 1.0)");
            }
            _ => {}
        }
        Ok(())
    }

    fn handle_command(&mut self, cmd: Command) {
        match cmd {
            Command::Send(bytes) => self.out.extend_from_slice(&bytes),
            Command::Request13 { msg, reply } => {
                if self.version != OFP13 {
                    let _ = reply.send(Err(RequestError::WrongVersion(self.version)));
                    return;
                }
                let xid = self.send13(&msg);
                self.pending.insert(xid, Pending { parts: Vec::new(), reply });
            }
        }
    }
}

/// A session's read buffer: fixed size, so one read takes at most `READ_BUF` bytes
/// (bounding the work and the answers produced per read), and always room for a
/// whole frame (at most 64 KiB) after compaction.
struct ReadBuf {
    data: Box<[u8]>,
    start: usize,
    end: usize,
}

/// Size of a session's read buffer.
const READ_BUF: usize = 256 * 1024;

impl ReadBuf {
    fn new() -> Self {
        ReadBuf { data: vec![0; READ_BUF].into_boxed_slice(), start: 0, end: 0 }
    }

    fn filled(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.data.len() - self.end < 64 * 1024 {
            self.data.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
    }

    /// Reads what the socket holds. A read that does not fill the free space has
    /// drained the socket, so tokio is told the socket is no longer readable
    /// (edge-triggered epoll reports new data anyway): this saves the second,
    /// empty read per wake-up that would otherwise find that out.
    fn read_from(&mut self, stream: &TcpStream) -> std::io::Result<usize> {
        use std::os::fd::AsFd;
        let space = self.data.len() - self.end;
        let mut got = 0;
        let fd = stream.as_fd();
        let buf = &mut self.data[self.end..];
        let r = stream.try_io(tokio::io::Interest::READABLE, || {
            got = rustix::io::read(fd, &mut *buf).map_err(std::io::Error::from)?;
            if got > 0 && got < space {
                Err(std::io::ErrorKind::WouldBlock.into())
            } else {
                Ok(got)
            }
        });
        let n = match r {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && got > 0 => got,
            Err(e) => return Err(e),
        };
        self.end += n;
        Ok(n)
    }
}

/// An OpenFlow 1.0 port in the 1.3 form the rest of the controller uses
/// (reserved port numbers 0xff00.. become 0xffffff00..).
fn port_from_of10(p: &of10::PhyPort) -> of13::Port {
    let port_no = if p.port_no >= of10::OFPP_MAX { 0xffff_0000 | u32::from(p.port_no) } else { u32::from(p.port_no) };
    of13::Port {
        port_no,
        hw_addr: p.hw_addr,
        name_bytes: p.name,
        config: p.config,
        state: p.state,
        curr: p.curr,
        advertised: p.advertised,
        supported: p.supported,
        peer: p.peer,
        curr_speed: 0,
        max_speed: 0,
    }
}
