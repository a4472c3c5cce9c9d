//! Helpers for the compute end-to-end tests: a `tenet-compute api` process beside a
//! [`NetApi`](crate::netapi::NetApi) whose catalog points at it, and a stand-in agent
//! (a tiny HTTP server that accepts every request with 202 and records it) for tests
//! of the API's side of the agent protocol without a hypervisor.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use serde_json::Value;
use tenet_netapi::client::{Method, Rest, StatusCode};

use crate::netapi::NetApi;
use crate::unique_prefix;

/// A running `tenet-compute api` on a temp SQLite database; stopped on drop.
pub struct ComputeApi {
    child: Option<Child>,
    dir: PathBuf,
    /// `http://ADDR`.
    pub url: String,
    /// netapi's URL and the service user (user, password, project).
    identity: (String, String, String, String),
}

impl ComputeApi {
    /// Starts the API on `addr` (the address the netapi catalog names) with the admin's
    /// credentials as its service user.
    pub fn start_on(netapi: &NetApi, addr: &str) -> anyhow::Result<ComputeApi> {
        let env =
            |k: &str| netapi.admin_env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
        ComputeApi::start(netapi, addr, &env("OS_USERNAME"), &env("OS_PASSWORD"), &env("OS_PROJECT_NAME"))
    }

    /// Starts the API on `addr` (the address the netapi catalog names), authenticating
    /// as the service user `user` / `password` of project `project` against `netapi`.
    pub fn start(netapi: &NetApi, addr: &str, user: &str, password: &str, project: &str) -> anyhow::Result<ComputeApi> {
        let dir = std::env::temp_dir().join(format!("tenet-compute-e2e-{}-{}", std::process::id(), unique_prefix()));
        std::fs::create_dir_all(&dir).context("creating the temp dir")?;
        let bin = crate::workspace_binary("tenet-compute", "tenet-compute")?;
        let log = std::fs::File::create(dir.join("compute.log")).context("compute log")?;
        let db = format!("sqlite://{}", dir.join("compute.db").display());
        let mut child = Command::new(bin)
            .args(["api", "--db", &db, "--http", addr, "--identity", &netapi.url])
            .env("OS_USERNAME", user)
            .env("OS_PASSWORD", password)
            .env("OS_PROJECT_NAME", project)
            .env("RUST_LOG", "info,sqlx=warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting tenet-compute api")?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("compute stdout")?;
        let _ = BufReader::new(stdout).read_line(&mut line);
        let Some(local) = line.trim().strip_prefix("listening on ").map(str::to_string) else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.join("compute.log")).unwrap_or_default();
            bail!("tenet-compute api did not start: {line:?}\n{log}");
        };
        let identity = (netapi.url.clone(), user.to_string(), password.to_string(), project.to_string());
        Ok(ComputeApi { child: Some(child), dir, url: format!("http://{local}"), identity })
    }

    /// The registered hosts (`GET /internal/v1/hosts` as the service user): each with
    /// `report`, `alive`, `used`, `servers`. Not for use inside an async runtime.
    pub fn hosts(&self) -> anyhow::Result<Vec<Value>> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let (netapi, user, password, project) = &self.identity;
            let token = Rest::new(netapi).password_token(user, password, project).await?;
            let body = Rest::new(&self.url)
                .expect(StatusCode::OK, Method::GET, "/internal/v1/hosts", Some(&token), None)
                .await?;
            Ok(body["hosts"].as_array().cloned().unwrap_or_default())
        })
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("compute.log")).unwrap_or_default()
    }
}

impl Drop for ComputeApi {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One request a [`StandInAgent`] received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub body: Value,
}

/// NOT the real agent: a stand-in that answers 202 to every request and records it, so
/// that tests can drive the API's half of the agent protocol (spawn and action requests
/// out; reports, sent by the test itself, in).
pub struct StandInAgent {
    /// `http://ADDR`.
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl StandInAgent {
    /// Listens on an ephemeral loopback port (a thread per connection, for the test's life).
    pub fn start() -> anyhow::Result<StandInAgent> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the stand-in agent")?;
        let url = format!("http://{}", listener.local_addr()?);
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = serve_connection(stream, &log);
                });
            }
        });
        Ok(StandInAgent { url, received })
    }

    /// What it received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// Serves keep-alive HTTP/1.1 requests on one connection.
fn serve_connection(stream: std::net::TcpStream, log: &Mutex<Vec<Received>>) -> anyhow::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if let Ok(mut l) = log.lock() {
            l.push(Received { method, path, body });
        }
        writer.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")?;
    }
}
