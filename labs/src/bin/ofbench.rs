//! ofbench: a cbench-compatible OpenFlow 1.0 / 1.3 controller benchmark.

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use tenet_labs::bench::{self, Config};
use tenet_labs::of::Version;

const AFTER_HELP: &str = "\
What counts as a response (as cbench): every FLOW_MOD with command ADD or MODIFY_STRICT, and every
PACKET_OUT whose data is not an LLDP frame (ethertype 0x88cc). There is no xid matching: a
controller answering one PACKET_IN with a FLOW_MOD and a PACKET_OUT is counted twice (use
--count-by-type to see how a controller answers).

Each emulated switch connects (staggered by --connect-delay-ms), sends HELLO, answers
FEATURES_REQUEST (dpid = offset + i, 256 buffers, ports 1..4; OpenFlow 1.3: PORT_DESC multipart),
ECHO, BARRIER, GET_CONFIG, DESC stats, ROLE_REQUEST (1.3), other stats/multipart requests with an
empty reply, VENDOR/EXPERIMENTER with ERROR BAD_REQUEST; then sends one learn PACKET_IN (a
gratuitous ARP from 80:00:00:00:00:<id>, in_port 2, unbuffered) unless --no-learn.

Probe PACKET_INs: buffer_id 1, 2, ... (mod 100000), in_port 1, 64-byte IPv4 frame to
80:00:00:00:00:<id> from a source MAC cycling through --macs values.
Latency mode (default): one outstanding PACKET_IN per switch, the next one after each response.
Throughput mode (-t): each switch writes PACKET_INs as fast as its socket accepts.

Each test lasts --ms-per-test, then 100 ms of drain whose replies are not counted. One line per
test, then
  RESULT: N switches K tests min/max/avg/stdev = a/b/c/d responses/s
over the K = loops - warmup measured tests (population stdev, as cbench).";

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Of {
    #[value(name = "1.0")]
    V10,
    #[value(name = "1.3")]
    V13,
}

/// cbench-compatible OpenFlow controller benchmark: emulated switches send PACKET_INs and the
/// controller's FLOW_MOD / PACKET_OUT answers are counted.
#[derive(Parser, Debug)]
#[command(name = "ofbench", version, after_help = AFTER_HELP)]
struct Args {
    /// Controller to connect to.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:6653")]
    controller: String,

    /// OpenFlow version the emulated switches speak (1.3: HELLO carries a version bitmap naming 1.3 only).
    #[arg(long = "of", value_enum, default_value = "1.0")]
    of: Of,

    /// Number of emulated switches (one TCP connection each).
    #[arg(short = 's', long, value_name = "N", default_value_t = 16)]
    switches: usize,

    /// Distinct source MAC addresses per switch; probe PACKET_INs cycle through them.
    #[arg(short = 'M', long, value_name = "M", default_value_t = 100_000)]
    macs: u32,

    /// Number of tests (loops), warm-up loops included.
    #[arg(short = 'l', long, value_name = "L", default_value_t = 16)]
    loops: usize,

    /// Length of each test in milliseconds (followed by 100 ms of uncounted drain).
    #[arg(short = 'm', long = "ms-per-test", value_name = "MS", default_value_t = 1000)]
    ms_per_test: u64,

    /// Leading tests left out of the RESULT line.
    #[arg(short = 'w', long, value_name = "W", default_value_t = 1)]
    warmup: usize,

    /// Throughput mode: keep every switch's socket full of PACKET_INs (default: latency mode,
    /// one outstanding PACKET_IN per switch).
    #[arg(short = 't', long)]
    throughput: bool,

    /// Skip the learn step (the gratuitous-ARP PACKET_IN that teaches the destination MAC).
    #[arg(long)]
    no_learn: bool,

    /// Delay between successive switch connects, in milliseconds (ovs-testcontroller drops
    /// connections that do not finish HELLO within 1 s, so do not connect all at once).
    #[arg(long, value_name = "MS", default_value_t = 10)]
    connect_delay_ms: u64,

    /// Datapath id of the first switch; switch i has dpid offset + i.
    #[arg(long, value_name = "N", default_value_t = 1)]
    dpid_offset: u64,

    /// At the end, print COUNT-BY-TYPE lines: FLOW_MOD and PACKET_OUT counts separately (with/without
    /// buffer id, LLDP), per PACKET_IN ratios and all received message types.
    #[arg(long)]
    count_by_type: bool,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let cfg = Config {
        controller: a.controller,
        switches: a.switches,
        macs: a.macs,
        loops: a.loops,
        ms_per_test: a.ms_per_test,
        warmup: a.warmup,
        throughput: a.throughput,
        learn: !a.no_learn,
        connect_delay_ms: a.connect_delay_ms,
        dpid_offset: a.dpid_offset,
        version: match a.of {
            Of::V10 => Version::V10,
            Of::V13 => Version::V13,
        },
        count_by_type: a.count_by_type,
    };
    let switches = cfg.switches;
    match bench::run(cfg) {
        Ok(s) if s.dropped < switches => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!("ofbench: every switch lost its connection");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("ofbench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
