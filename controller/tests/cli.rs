//! The `tenet-controller` binary as a user meets it: help, bad options, metrics.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tenet-controller");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

#[test]
fn help_explains_every_option() {
    let out = Command::new(BIN).arg("--help").output().expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--listen",
        "--mode",
        "--log-format",
        "--metrics",
        "--echo-interval",
        "--dead-after",
        "--grpc",
        "--threads",
        "--api",
        "--lldp-interval",
        "learning",
    ] {
        assert!(text.contains(opt), "--help does not mention {opt}:\n{text}");
    }
}

#[test]
fn listen_address_in_use_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = Command::new(BIN)
        .args(["--listen", &addr, "--api", "127.0.0.1:0", "--grpc", "127.0.0.1:0"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen on"), "stderr: {err}");
}

#[test]
fn malformed_listen_address_is_rejected_with_usage() {
    let out = Command::new(BIN).args(["--listen", "not-an-address"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
}

#[test]
fn metrics_endpoint_serves_prometheus_text() {
    let (of_port, metrics_port) = (free_port(), free_port());
    let mut child = Command::new(BIN)
        .args(["--listen", &format!("127.0.0.1:{of_port}"), "--metrics", &format!("127.0.0.1:{metrics_port}")])
        .args(["--api", "127.0.0.1:0", "--grpc", "127.0.0.1:0"])
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", metrics_port)) {
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
            let mut body = String::new();
            s.read_to_string(&mut body).expect("read");
            break body;
        }
        assert!(Instant::now() < deadline, "metrics endpoint never came up");
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    assert!(body.contains("# TYPE tenet_switches_connected gauge"));
    assert!(body.contains("tenet_packet_ins_total 0"));
}
