//! `tenet-controller verify`: asks a running controller's topology API for the
//! isolation proof (`GET /v1/verify`) and prints it.

use std::io::{Read, Write};
use std::process::ExitCode;

/// Runs the subcommand: 0 = isolated, 1 = a counterexample, 2 = could not ask.
pub fn main(api: &str, json: bool) -> ExitCode {
    match fetch(api) {
        Ok(report) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                print_report(&report);
            }
            let leaks = report.get("counterexamples").and_then(|c| c.as_array()).map_or(0, Vec::len);
            if leaks == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("tenet-controller verify: {e}");
            ExitCode::from(2)
        }
    }
}

fn print_report(r: &serde_json::Value) {
    let n = |k: &str| r.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    let cex = r.get("counterexamples").and_then(|c| c.as_array()).cloned().unwrap_or_default();
    println!(
        "{} networks, {} edge ports, {} ordered network pairs, {} flows examined",
        n("networks"),
        n("edge_ports"),
        n("pairs_checked"),
        n("flows_examined")
    );
    if r.get("truncated").and_then(|t| t.as_bool()).unwrap_or(false) {
        println!("note: some branches were cut (loops or search budget); cut branches count as unproven");
    }
    if cex.is_empty() {
        println!("isolated: no packet from a port of one network reaches a port of another");
        return;
    }
    println!("NOT isolated: {} counterexample(s)", cex.len());
    for c in cex {
        let port = |k: &str| {
            let p = &c[k];
            format!(
                "port {} (network {}) at {:016x}:{}",
                p["port_id"].as_str().unwrap_or("?"),
                p["network"].as_str().unwrap_or("?"),
                p["dpid"].as_u64().unwrap_or(0),
                p["port"]
            )
        };
        println!("- from {} to {}", port("from"), port("to"));
        println!("  packet: {}", c["packet"].as_str().unwrap_or("?"));
        for h in c["path"].as_array().into_iter().flatten() {
            println!(
                "  hop: dpid {} table {} priority {} cookie {}",
                h["dpid"], h["table"], h["priority"], h["cookie"]
            );
        }
    }
}

/// GET {api}/v1/verify over plain HTTP/1.1.
fn fetch(api: &str) -> Result<serde_json::Value, String> {
    call(api, "GET", "/v1/verify", None)
}

/// One request to the controller's API over plain HTTP/1.1; the JSON answer of a 200.
pub fn call(api: &str, method: &str, path: &str, body: Option<&str>) -> Result<serde_json::Value, String> {
    let rest = api.strip_prefix("http://").ok_or_else(|| format!("{api}: only http:// URLs are supported"))?;
    let hostport = rest.trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(hostport)
        .map_err(|e| format!("cannot reach the controller at {hostport}: {e}"))?;
    let body = body.unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("malformed HTTP answer")?;
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_string() };
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("answer is not JSON ({e}): {body}"))?;
    if status != "200" {
        return Err(format!("HTTP {status}: {}", v.get("error").and_then(|e| e.as_str()).unwrap_or(&body)));
    }
    Ok(v)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}
