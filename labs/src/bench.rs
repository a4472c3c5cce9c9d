//! The cbench-compatible benchmark: N emulated switches driven by one edge-triggered epoll loop.
//!
//! Semantics follow cbench (`oflops/cbench`): each switch says HELLO, answers the controller's
//! handshake and housekeeping requests, optionally sends one "learn" PACKET_IN, then during each
//! test sends probe PACKET_INs (latency mode: one outstanding per switch; throughput mode: as
//! many as the socket accepts) and counts responses: FLOW_MOD ADD/MODIFY_STRICT and non-LLDP
//! PACKET_OUT. Each test lasts `ms_per_test`, followed by a 100 ms drain whose replies are read
//! but not counted.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::framing::RxBuf;
use crate::of::{self, ty, PacketInTemplate, Version};

/// After each test, replies are read for this long but not counted (cbench's 100 ms sleep).
pub const DRAIN: Duration = Duration::from_millis(100);
/// Throughput mode keeps this many bytes of PACKET_INs queued per switch in user space
/// (cbench's 64 KiB msgbuf) and writes as much of it as the socket accepts.
const FILL_TARGET: usize = 64 * 1024;
/// Throughput mode: fill rounds per wake-up before giving the other switches a turn.
const MAX_PUMP_ROUNDS: usize = 8;
/// How long to wait for every switch to get its FEATURES_REQUEST before the first test.
const HANDSHAKE_WAIT: Duration = Duration::from_secs(5);
/// Report at most this many controller ERROR messages per switch on stderr.
const MAX_ERRORS_REPORTED: u32 = 3;

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    pub controller: String,
    pub switches: usize,
    pub macs: u32,
    pub loops: usize,
    pub ms_per_test: u64,
    pub warmup: usize,
    pub throughput: bool,
    pub learn: bool,
    pub connect_delay_ms: u64,
    pub dpid_offset: u64,
    pub version: Version,
    pub count_by_type: bool,
}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Responses per second of each measured (non-warm-up) test.
    pub results: Vec<f64>,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    pub stdev: f64,
    /// Switches whose connection dropped during the run.
    pub dropped: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Connecting and handshaking: no probes.
    Setup,
    /// A test: probes go out, responses are counted.
    Test { measured: bool },
    /// The 100 ms after a test (and the final settle): replies read, not counted.
    Drain,
}

/// What a switch needs to know about the run when it handles I/O.
#[derive(Clone, Copy)]
struct Ctx {
    version: Version,
    throughput: bool,
    learn: bool,
    macs: u32,
    phase: Phase,
}

impl Ctx {
    fn testing(&self) -> bool {
        matches!(self.phase, Phase::Test { .. })
    }

    fn measured(&self) -> bool {
        self.phase == Phase::Test { measured: true }
    }
}

/// Message counts, for `--count-by-type`.
#[derive(Clone)]
pub struct Counters {
    /// Received messages by type.
    pub rx: [u64; 256],
    pub flow_mod_counted: u64,
    pub flow_mod_buffered: u64,
    pub packet_out_counted: u64,
    pub packet_out_buffered: u64,
    pub packet_out_data: u64,
    pub packet_out_lldp: u64,
    /// Probe PACKET_INs sent.
    pub packet_in: u64,
    /// Learn-step PACKET_INs sent.
    pub learn_packet_in: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            rx: [0; 256],
            flow_mod_counted: 0,
            flow_mod_buffered: 0,
            packet_out_counted: 0,
            packet_out_buffered: 0,
            packet_out_data: 0,
            packet_out_lldp: 0,
            packet_in: 0,
            learn_packet_in: 0,
        }
    }
}

impl Counters {
    fn add(&mut self, o: &Counters) {
        for (a, b) in self.rx.iter_mut().zip(o.rx.iter()) {
            *a += b;
        }
        self.flow_mod_counted += o.flow_mod_counted;
        self.flow_mod_buffered += o.flow_mod_buffered;
        self.packet_out_counted += o.packet_out_counted;
        self.packet_out_buffered += o.packet_out_buffered;
        self.packet_out_data += o.packet_out_data;
        self.packet_out_lldp += o.packet_out_lldp;
        self.packet_in += o.packet_in;
        self.learn_packet_in += o.learn_packet_in;
    }

    /// `key=value` summary of the responses.
    fn summary(&self) -> String {
        let fm = self.rx[ty::FLOW_MOD as usize];
        let po = self.rx[ty::PACKET_OUT as usize];
        let mut s = format!(
            "packet_in={} flow_mod={fm} flow_mod_counted={} flow_mod_buffered={} packet_out={po} \
             packet_out_counted={} packet_out_buffered={} packet_out_data={} packet_out_lldp={} responses={}",
            self.packet_in,
            self.flow_mod_counted,
            self.flow_mod_buffered,
            self.packet_out_counted,
            self.packet_out_buffered,
            self.packet_out_data,
            self.packet_out_lldp,
            self.flow_mod_counted + self.packet_out_counted,
        );
        if self.packet_in > 0 {
            let pi = self.packet_in as f64;
            s += &format!(
                " flow_mod_per_packet_in={:.3} packet_out_per_packet_in={:.3} responses_per_packet_in={:.3}",
                fm as f64 / pi,
                po as f64 / pi,
                (self.flow_mod_counted + self.packet_out_counted) as f64 / pi
            );
        }
        s
    }
}

/// One emulated switch's protocol state and output queue.
struct SwState {
    idx: usize,
    dpid: u64,
    /// Bytes to send; `wbuf[wpos..]` is not written yet.
    wbuf: Vec<u8>,
    wpos: usize,
    /// The last write hit EAGAIN: wait for the writable event.
    write_blocked: bool,
    /// FEATURES_REQUEST answered: probes may go out.
    ready: bool,
    /// The learn PACKET_IN is due but not sent yet (OpenFlow 1.3, see [`SwState::send_learn`]).
    learn_pending: bool,
    /// Latency mode: probes not answered yet (cbench's probe_state).
    outstanding: u32,
    xid: u32,
    buffer_id: u32,
    mac: u32,
    probe: PacketInTemplate,
    /// Responses in the current test.
    count: u64,
    config_flags: u16,
    miss_send_len: u16,
    role: u32,
    /// Everything since the connect.
    run: Counters,
    /// Only during measured tests.
    measured: Counters,
    rx_total: u64,
    warned_version: bool,
    errors_reported: u32,
}

impl SwState {
    fn new(idx: usize, dpid: u64, version: Version) -> Self {
        SwState {
            idx,
            dpid,
            wbuf: Vec::with_capacity(FILL_TARGET + 4096),
            wpos: 0,
            write_blocked: false,
            ready: false,
            learn_pending: false,
            outstanding: 0,
            xid: 1,
            buffer_id: 0,
            mac: 0,
            probe: PacketInTemplate::probe(version, dpid),
            count: 0,
            config_flags: 0,
            miss_send_len: 128,
            role: 1, // EQUAL
            run: Counters::default(),
            measured: Counters::default(),
            rx_total: 0,
            warned_version: false,
            errors_reported: 0,
        }
    }

    /// Queue the next probe PACKET_IN (cbench: MAC and buffer id advance first, so both start at 1).
    #[inline]
    fn push_probe(&mut self, ctx: &Ctx) {
        self.mac = (self.mac + 1) % ctx.macs;
        self.buffer_id = (self.buffer_id + 1) % of::NUM_BUFFER_IDS;
        self.probe.append(&mut self.wbuf, self.xid, self.buffer_id, self.mac);
        self.xid = self.xid.wrapping_add(1);
        self.run.packet_in += 1;
        if ctx.measured() {
            self.measured.packet_in += 1;
        }
    }

    /// A response arrived (cbench: count++, probe_state--).
    #[inline]
    fn response(&mut self, ctx: &Ctx) {
        if ctx.testing() {
            self.count += 1;
        }
        self.outstanding = self.outstanding.saturating_sub(1);
    }

    /// cbench's hack for controllers that block on config/desc/vendor: in latency mode a
    /// probe outstanding at that point is forgotten so the next one goes out.
    fn reset_probe(&mut self, ctx: &Ctx) {
        if !ctx.throughput && self.outstanding == 1 {
            self.outstanding = 0;
        }
    }

    fn on_hello(&mut self, msg: &[u8], v: Version) {
        let their = msg[0];
        // A version bitmap element, if present, is authoritative.
        let mut bitmap = None;
        let mut off = of::HEADER_LEN;
        while off + 4 <= msg.len() {
            let (et, el) = (of::be16(msg, off), of::be16(msg, off + 2) as usize);
            if el < 4 || off + el > msg.len() {
                break;
            }
            if et == 1 && el >= 8 {
                bitmap = Some(of::be32(msg, off + 4));
            }
            off += el.div_ceil(8) * 8;
        }
        let ok = match bitmap {
            Some(b) => v.wire() < 32 && b & (1 << v.wire()) != 0,
            None => their >= v.wire(),
        };
        if !ok {
            eprintln!(
                "ofbench: switch {} (dpid {}): controller HELLO (version {their}{}) does not offer OpenFlow {}; \
                 version negotiation fails",
                self.idx,
                self.dpid,
                bitmap.map(|b| format!(", bitmap {b:#x}")).unwrap_or_default(),
                v.name()
            );
        }
    }

    /// Handle one complete message from the controller.
    fn handle(&mut self, msg: &[u8], ctx: &Ctx) {
        let v = ctx.version;
        let (ver, t, _len, xid) = of::header(msg);
        self.rx_total += 1;
        self.run.rx[t as usize] += 1;
        if ctx.measured() {
            self.measured.rx[t as usize] += 1;
        }
        if t == ty::HELLO {
            self.on_hello(msg, v);
            return;
        }
        if ver != v.wire() {
            if !self.warned_version {
                self.warned_version = true;
                eprintln!(
                    "ofbench: switch {} (dpid {}): ignoring controller messages of version {ver} (we speak OpenFlow {})",
                    self.idx,
                    self.dpid,
                    v.name()
                );
            }
            return;
        }
        match t {
            ty::FLOW_MOD => {
                if let Some(fm) = of::flow_mod_info(v, msg) {
                    if fm.buffered {
                        self.run.flow_mod_buffered += 1;
                        if ctx.measured() {
                            self.measured.flow_mod_buffered += 1;
                        }
                    }
                    if fm.counted {
                        self.run.flow_mod_counted += 1;
                        if ctx.measured() {
                            self.measured.flow_mod_counted += 1;
                        }
                        self.response(ctx);
                    }
                }
            }
            ty::PACKET_OUT => {
                if let Some(po) = of::packet_out_info(v, msg) {
                    for c in [&mut self.run, &mut self.measured] {
                        c.packet_out_buffered += u64::from(po.buffered);
                        c.packet_out_data += u64::from(po.has_data);
                        c.packet_out_lldp += u64::from(po.lldp);
                        c.packet_out_counted += u64::from(!po.lldp);
                        if !ctx.measured() {
                            break;
                        }
                    }
                    if !po.lldp {
                        self.response(ctx);
                    }
                }
            }
            ty::FEATURES_REQUEST => {
                of::features_reply(&mut self.wbuf, v, xid, self.dpid);
                if !self.ready {
                    self.ready = true;
                    if ctx.learn {
                        self.learn_pending = true;
                        if v == Version::V10 {
                            self.send_learn(v); // cbench: right after the FEATURES_REPLY
                        }
                    }
                }
            }
            ty::ECHO_REQUEST => of::mirror(&mut self.wbuf, msg, ty::ECHO_REPLY),
            ty::SET_CONFIG if msg.len() >= 12 => {
                self.config_flags = of::be16(msg, 8);
                self.miss_send_len = of::be16(msg, 10);
            }
            ty::GET_CONFIG_REQUEST => {
                of::get_config_reply(&mut self.wbuf, v, xid, self.config_flags, self.miss_send_len);
                self.reset_probe(ctx);
            }
            ty::VENDOR => {
                of::error(&mut self.wbuf, v, xid, of::ERR_BAD_REQUEST, of::ERR_BAD_VENDOR, msg);
                // cbench: "nox ignores packet_in until this msg is sent"
                if !ctx.throughput {
                    self.outstanding = 0;
                }
            }
            ty::ERROR if self.errors_reported < MAX_ERRORS_REPORTED && msg.len() >= 12 => {
                self.errors_reported += 1;
                eprintln!(
                    "ofbench: switch {} (dpid {}): controller sent ERROR type {} code {}{}",
                    self.idx,
                    self.dpid,
                    of::be16(msg, 8),
                    of::be16(msg, 10),
                    if self.errors_reported == MAX_ERRORS_REPORTED { " (further errors not shown)" } else { "" }
                );
            }
            t if t == v.barrier_request() => of::mirror(&mut self.wbuf, msg, v.barrier_reply()),
            t if t == v.stats_request() => {
                let min = if v == Version::V13 { 16 } else { 12 };
                if msg.len() < min {
                    return;
                }
                match of::be16(msg, 8) {
                    of::STATS_DESC => {
                        of::desc_reply(&mut self.wbuf, v, xid, self.dpid);
                        self.reset_probe(ctx);
                    }
                    of::MULTIPART_PORT_DESC if v == Version::V13 => {
                        of::port_desc_reply(&mut self.wbuf, xid, self.dpid);
                        self.send_learn(v);
                    }
                    of::STATS_VENDOR => of::error(&mut self.wbuf, v, xid, of::ERR_BAD_REQUEST, of::ERR_BAD_VENDOR, msg),
                    st => of::empty_stats_reply(&mut self.wbuf, v, xid, st),
                }
            }
            ty::v13::ROLE_REQUEST if v == Version::V13 && msg.len() >= 24 => {
                let role = of::be32(msg, 8);
                if role != 0 {
                    self.role = role; // not NOCHANGE
                }
                let gen = u64::from_be_bytes(msg[16..24].try_into().unwrap());
                of::role_reply(&mut self.wbuf, xid, self.role, gen);
            }
            _ => {} // anything else: ignored (counted in the by-type statistics)
        }
    }

    /// Queue the learn-step PACKET_IN if it is due.
    ///
    /// OpenFlow 1.0 (cbench): right after the FEATURES_REPLY. OpenFlow 1.3 controllers often
    /// finish their handshake only once they have the port list (os-ken ignores PACKET_INs
    /// until its PORT_DESC request is answered), so there it goes right after the PORT_DESC
    /// reply, or, if the controller never asks for ports, just before the first probe.
    fn send_learn(&mut self, v: Version) {
        if self.learn_pending {
            self.learn_pending = false;
            of::learn_packet_in(&mut self.wbuf, v, 0, self.dpid);
            self.run.learn_packet_in += 1;
        }
    }

    /// Write queued bytes until done or the socket is full.
    fn flush(&mut self, stream: &mut TcpStream) -> Result<(), String> {
        if self.write_blocked {
            return Ok(());
        }
        while self.wpos < self.wbuf.len() {
            match stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err("connection closed (write returned 0)".into()),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.write_blocked = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write failed: {e}")),
            }
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        Ok(())
    }

    /// Throughput mode: keep the queue topped up and write until the socket pushes back.
    /// Returns true if the switch should be pumped again (socket still accepting).
    fn pump(&mut self, stream: &mut TcpStream, ctx: &Ctx) -> Result<bool, String> {
        for _ in 0..MAX_PUMP_ROUNDS {
            if self.write_blocked {
                return Ok(false);
            }
            if self.wpos > 0 {
                self.wbuf.drain(..self.wpos);
                self.wpos = 0;
            }
            while self.wbuf.len() + self.probe.len() <= FILL_TARGET {
                self.push_probe(ctx);
            }
            self.flush(stream)?;
        }
        Ok(!self.write_blocked)
    }

    /// After reading (or on a writable event / test start): send what the mode calls for.
    fn after_io(&mut self, stream: &mut TcpStream, ctx: &Ctx) -> Result<bool, String> {
        if ctx.testing() && self.ready {
            self.send_learn(ctx.version);
            if ctx.throughput {
                return self.pump(stream, ctx);
            }
            if self.outstanding == 0 {
                self.push_probe(ctx);
                self.outstanding = 1;
            }
        }
        self.flush(stream)?;
        Ok(false)
    }
}

struct Switch {
    stream: Option<TcpStream>,
    rx: RxBuf,
    st: SwState,
}

/// Read everything available and handle each complete message.
///
/// The sockets are edge-triggered; a read that does not fill the buffer drained the socket
/// (data arriving later raises a new edge), so it ends the loop without a read that returns
/// EAGAIN. When the peer closed (`closed`), read on until end of stream to notice it.
fn read_all(stream: &mut TcpStream, rx: &mut RxBuf, st: &mut SwState, ctx: &Ctx, closed: bool) -> Result<(), String> {
    loop {
        let spare = rx.spare();
        let room = spare.len();
        match stream.read(spare) {
            Ok(0) => return Err("connection closed by the controller".into()),
            Ok(n) => {
                rx.commit(n);
                while let Some(r) = rx.next_frame().map_err(|e| e.to_string())? {
                    st.handle(&rx.bytes()[r], ctx);
                }
                if n < room && !closed {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
}

#[derive(Clone, Copy)]
struct Ev {
    idx: usize,
    readable: bool,
    writable: bool,
    closed: bool,
}

struct Bench {
    cfg: Config,
    addr: SocketAddr,
    poll: Poll,
    events: Events,
    evq: Vec<Ev>,
    sw: Vec<Switch>,
    phase: Phase,
    again: Vec<usize>,
    again_spare: Vec<usize>,
}

impl Bench {
    fn new(cfg: Config) -> Result<Self> {
        let addr = cfg
            .controller
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve controller address {:?}", cfg.controller))?
            .next()
            .ok_or_else(|| anyhow!("controller address {:?} resolves to nothing", cfg.controller))?;
        let sw = (0..cfg.switches)
            .map(|i| Switch {
                stream: None,
                rx: RxBuf::new(),
                st: SwState::new(i, cfg.dpid_offset + i as u64, cfg.version),
            })
            .collect();
        Ok(Bench {
            addr,
            poll: Poll::new().context("epoll")?,
            events: Events::with_capacity(1024),
            evq: Vec::with_capacity(1024),
            sw,
            phase: Phase::Setup,
            again: Vec::new(),
            again_spare: Vec::new(),
            cfg,
        })
    }

    fn ctx(&self) -> Ctx {
        Ctx {
            version: self.cfg.version,
            throughput: self.cfg.throughput,
            learn: self.cfg.learn,
            macs: self.cfg.macs,
            phase: self.phase,
        }
    }

    fn alive(&self) -> usize {
        self.sw.iter().filter(|s| s.stream.is_some()).count()
    }

    fn dropped(&self) -> usize {
        self.sw.iter().filter(|s| s.stream.is_none()).count()
    }

    fn connect(&mut self, idx: usize) -> Result<(), String> {
        let s = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
            .map_err(|e| format!("connect to {} failed: {e}", self.addr))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        let mut s = TcpStream::from_std(s);
        self.poll
            .registry()
            .register(&mut s, Token(idx), Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| e.to_string())?;
        let sw = &mut self.sw[idx];
        of::hello(&mut sw.st.wbuf, self.cfg.version);
        sw.stream = Some(s);
        self.service(idx, false, false, false);
        Ok(())
    }

    fn drop_switch(&mut self, idx: usize, why: &str) {
        let dpid = self.sw[idx].st.dpid;
        if let Some(mut s) = self.sw[idx].stream.take() {
            let _ = self.poll.registry().deregister(&mut s);
            eprintln!(
                "ofbench: switch {idx} (dpid {dpid}): {why}; continuing with the other {} switches",
                self.alive()
            );
        }
    }

    /// Handle I/O on one switch; a failure drops its connection.
    fn service(&mut self, idx: usize, readable: bool, writable: bool, closed: bool) {
        let ctx = self.ctx();
        let Switch { stream, rx, st } = &mut self.sw[idx];
        let Some(stream) = stream.as_mut() else { return };
        let mut res = Ok(false);
        if readable {
            res = read_all(stream, rx, st, &ctx, closed).map(|_| false);
        }
        if writable {
            st.write_blocked = false;
        }
        if res.is_ok() {
            res = st.after_io(stream, &ctx);
        }
        match res {
            Ok(true) => self.again.push(idx),
            Ok(false) => {}
            Err(why) => self.drop_switch(idx, &why),
        }
    }

    /// Run the event loop until `deadline` (polls at least once).
    fn run_until(&mut self, deadline: Instant) -> Result<()> {
        loop {
            let now = Instant::now();
            let timeout = if !self.again.is_empty() { Duration::ZERO } else { deadline.saturating_duration_since(now) };
            match self.poll.poll(&mut self.events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("epoll_wait"),
            }
            self.evq.clear();
            for ev in self.events.iter() {
                let closed = ev.is_read_closed() || ev.is_error();
                self.evq.push(Ev {
                    idx: ev.token().0,
                    readable: ev.is_readable() || closed,
                    writable: ev.is_writable() || ev.is_write_closed(),
                    closed,
                });
            }
            for i in 0..self.evq.len() {
                let e = self.evq[i];
                self.service(e.idx, e.readable, e.writable, e.closed);
            }
            if !self.again.is_empty() {
                std::mem::swap(&mut self.again, &mut self.again_spare);
                for i in 0..self.again_spare.len() {
                    let idx = self.again_spare[i];
                    self.service(idx, false, false, false);
                }
                self.again_spare.clear();
            }
            if Instant::now() >= deadline {
                return Ok(());
            }
        }
    }

    fn run_for(&mut self, d: Duration) -> Result<()> {
        self.run_until(Instant::now() + d)
    }

    /// Start sending on every switch (test start).
    fn kick_all(&mut self) {
        for idx in 0..self.sw.len() {
            self.service(idx, false, false, false);
        }
    }

    fn rx_total(&self) -> u64 {
        self.sw.iter().map(|s| s.st.rx_total).sum()
    }
}

fn stats(v: &[f64]) -> (f64, f64, f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0, 0.0, 0.0);
    }
    let n = v.len() as f64;
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let avg = v.iter().sum::<f64>() / n;
    // cbench: population standard deviation
    let stdev = (v.iter().map(|x| (x - avg).powi(2)).sum::<f64>() / n).sqrt();
    (min, max, avg, stdev)
}

/// Run the benchmark, printing cbench-style output on stdout.
pub fn run(cfg: Config) -> Result<Summary> {
    if cfg.switches == 0 || cfg.macs == 0 || cfg.ms_per_test == 0 {
        bail!("switches, macs and ms-per-test must be at least 1");
    }
    if cfg.loops <= cfg.warmup {
        bail!("loops ({}) must be greater than warm-up loops ({})", cfg.loops, cfg.warmup);
    }
    let n = cfg.switches;
    println!("ofbench: controller benchmarking tool (cbench-compatible)");
    println!("   running in mode '{}'", if cfg.throughput { "throughput" } else { "latency" });
    println!("   connecting to controller at {} (OpenFlow {})", cfg.controller, cfg.version.name());
    println!(
        "   faking {n} switches offset {} :: {} tests each; {} ms per test",
        cfg.dpid_offset, cfg.loops, cfg.ms_per_test
    );
    println!("   with {} unique source MACs per switch", cfg.macs);
    println!(
        "   {}",
        if cfg.learn { "learning destination mac addresses before the test" } else { "NOT learning destination macs" }
    );
    println!("   ignoring first {} \"warmup\" and last 0 \"cooldown\" loops", cfg.warmup);
    println!("   connection delay of {}ms per 1 switch(es)", cfg.connect_delay_ms);

    let count_by_type = cfg.count_by_type;
    let version = cfg.version;
    let ms = cfg.ms_per_test;
    let mut b = Bench::new(cfg)?;

    // Connect, staggered; the loop keeps serving the switches already connected meanwhile.
    for i in 0..n {
        if let Err(e) = b.connect(i) {
            if b.alive() == 0 && i == 0 {
                bail!("{e}");
            }
            eprintln!("ofbench: switch {i} (dpid {}): {e}; continuing with the others", b.sw[i].st.dpid);
        }
        b.run_for(Duration::from_millis(b.cfg.connect_delay_ms))?;
    }
    let t0 = Instant::now();
    while b.alive() > 0 && b.sw.iter().any(|s| s.stream.is_some() && !s.st.ready) && t0.elapsed() < HANDSHAKE_WAIT {
        b.run_for(Duration::from_millis(10))?;
    }
    if b.alive() == 0 {
        bail!("no switch is connected to the controller");
    }
    let unready = b.sw.iter().filter(|s| s.stream.is_some() && !s.st.ready).count();
    if unready > 0 {
        eprintln!(
            "ofbench: {unready} of {n} switches got no FEATURES_REQUEST within {} s; they send no PACKET_IN until they do",
            HANDSHAKE_WAIT.as_secs()
        );
    }

    let mut results = Vec::new();
    let loops = b.cfg.loops;
    let warmup = b.cfg.warmup;
    for j in 0..loops {
        let measured = j >= warmup;
        b.phase = Phase::Test { measured };
        let start = Instant::now();
        b.kick_all();
        b.run_until(start + Duration::from_millis(ms))?;
        b.phase = Phase::Drain;
        b.run_for(DRAIN)?;
        let mut line = format!("{n:<3} switches: flows/sec:  ");
        let mut sum = 0u64;
        for s in &mut b.sw {
            line += &format!("{}  ", s.st.count);
            sum += s.st.count;
            s.st.count = 0;
            s.st.outstanding = 0; // replies to the last probes were drained
        }
        let per_ms = sum as f64 / ms as f64;
        println!("{line} total = {per_ms:.6} per ms ");
        if measured {
            results.push(per_ms * 1000.0);
        }
        if b.alive() == 0 {
            eprintln!("ofbench: every switch lost its connection; stopping");
            break;
        }
    }

    if count_by_type {
        // Let the controller's answers to the last packet-ins arrive (up to 3 s).
        b.phase = Phase::Drain;
        let t = Instant::now();
        loop {
            let before = b.rx_total();
            b.run_for(Duration::from_millis(200))?;
            if b.rx_total() == before || t.elapsed() > Duration::from_secs(3) {
                break;
            }
        }
        let quiet = t.elapsed() <= Duration::from_secs(3);
        let mut run = Counters::default();
        let mut meas = Counters::default();
        for s in &b.sw {
            run.add(&s.st.run);
            meas.add(&s.st.measured);
        }
        println!("COUNT-BY-TYPE measured: {}", meas.summary());
        println!(
            "COUNT-BY-TYPE run: {} learn_packet_in={} settled={}",
            run.summary(),
            run.learn_packet_in,
            if quiet { "yes" } else { "no (controller still answering a backlog after 3 s)" }
        );
        let by_type: Vec<String> = run
            .rx
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(t, c)| format!("{}={c}", version.type_name(t as u8)))
            .collect();
        println!("COUNT-BY-TYPE run rx: {}", by_type.join(" "));
    }

    let (min, max, avg, stdev) = stats(&results);
    println!(
        "RESULT: {n} switches {} tests min/max/avg/stdev = {min:.2}/{max:.2}/{avg:.2}/{stdev:.2} responses/s",
        results.len()
    );
    Ok(Summary { results, min, max, avg, stdev, dropped: b.dropped() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_stdev_like_cbench() {
        let (min, max, avg, sd) = stats(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!((min, max, avg, sd), (2.0, 9.0, 5.0, 2.0));
    }
}
