//! Shared helpers for tenet's end-to-end tests against real Open vSwitch and Mininet.
//!
//! These tests need root and a running Open vSwitch (`labs/setup-host.sh` installs
//! and starts it). They say so and fail when either is missing; they are never
//! skipped. Every lab gets a unique name prefix so runs never collide, and every
//! lab is stopped (its bridges and namespaces removed) when its [`Lab`] is dropped,
//! also when the test fails.

pub mod compute;
pub mod ips;
pub mod netapi;
pub mod tenant;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

/// Serialises the labs of one test binary: two Mininet labs at once on two cores only slow each other.
pub static LAB_LOCK: Mutex<()> = Mutex::new(());

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Fails the test with a clear message unless we are root and Open vSwitch answers.
pub fn require_root_and_ovs() {
    let uid = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    assert_eq!(
        uid.as_deref().unwrap_or(""),
        "0",
        "this test needs root (it creates OVS bridges and namespaces); run it as root, as CI does"
    );
    let ovs = Command::new("ovs-vsctl").args(["--timeout=5", "show"]).output();
    assert!(
        ovs.map(|o| o.status.success()).unwrap_or(false),
        "this test needs a running Open vSwitch: run labs/setup-host.sh first"
    );
}

/// A short prefix unique to this process and call (`t3a7` ...), for bridge and host names.
pub fn unique_prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let salt = std::process::id().wrapping_mul(2_654_435_761).wrapping_add(n.wrapping_mul(40_503));
    format!("t{:03x}", salt & 0xfff)
}

/// A running Mininet lab (`labs/mininet_lab.py --steps`), stopped on drop.
pub struct Lab {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Lines the lab printed, read by a thread so that a hung lab becomes a timeout, not a hang.
    lines: mpsc::Receiver<String>,
    pub prefix: String,
}

/// How long a lab may take to come up (Mininet occasionally hangs creating a node's shell).
const LAB_START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one step may take (a pingall over a fat-tree is the slowest).
const LAB_STEP_TIMEOUT: Duration = Duration::from_secs(600);

fn read_lines(stdout: ChildStdout, tx: mpsc::Sender<String>) {
    let mut r = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if tx.send(line.clone()).is_err() {
                    return;
                }
            }
        }
    }
}

impl Lab {
    /// Starts a lab of `topo` (e.g. `linear,4`) whose switches connect to `controller` (HOST:PORT).
    /// A lab that does not come up in time is torn down and started once more.
    pub fn start(topo: &str, controller: &str, protocols: &str) -> anyhow::Result<Lab> {
        Lab::start_with(topo, controller, protocols, &[])
    }

    /// Like [`Lab::start`], with more `labs/mininet_lab.py` options (e.g. `--fail-mode secure`).
    pub fn start_with(topo: &str, controller: &str, protocols: &str, extra: &[&str]) -> anyhow::Result<Lab> {
        match Lab::start_once(topo, controller, protocols, extra) {
            Ok(lab) => Ok(lab),
            Err(e) => {
                eprintln!("lab {topo} did not start ({e:#}); trying once more");
                Lab::start_once(topo, controller, protocols, extra)
            }
        }
    }

    fn start_once(topo: &str, controller: &str, protocols: &str, extra: &[&str]) -> anyhow::Result<Lab> {
        let prefix = unique_prefix();
        let script = repo_root().join("labs/mininet_lab.py");
        let mut child = Command::new("/usr/bin/python3")
            // Its own process group, so a hung lab and all its node shells can be killed together.
            .process_group(0)
            .arg(&script)
            .args(["--steps", "--topo", topo, "--controller", controller, "--protocols", protocols, "--prefix"])
            .arg(&prefix)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", script.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("lab stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || read_lines(stdout, tx));
        // From here on, Drop stops the lab and removes its bridges whatever happens.
        let mut lab = Lab { child, stdin, lines, prefix };
        let ready = lab.read_answer(LAB_START_TIMEOUT)?;
        if ready.get("ready") != Some(&Value::Bool(true)) {
            bail!("lab did not start: {ready}");
        }
        Ok(lab)
    }

    fn read_answer(&mut self, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(l) => l,
                Err(mpsc::RecvTimeoutError::Timeout) => bail!("lab gave no answer within {timeout:?}"),
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!("lab exited early (see its stderr above)"),
            };
            // Mininet may print its own lines; ours are JSON objects.
            if line.trim_start().starts_with('{') {
                return serde_json::from_str(&line).with_context(|| format!("lab answered {line:?}"));
            }
        }
    }

    /// Runs one step (see labs/mininet_lab.py) and returns its JSON answer.
    pub fn step(&mut self, cmd: &str) -> anyhow::Result<Value> {
        let stdin = self.stdin.as_mut().context("lab already stopped")?;
        writeln!(stdin, "{cmd}")?;
        stdin.flush()?;
        let v = self.read_answer(LAB_STEP_TIMEOUT)?;
        if let Some(e) = v.get("error") {
            bail!("lab step {cmd:?} failed: {e}");
        }
        Ok(v)
    }

    /// The OVS bridge names of the lab's switches.
    pub fn bridges(&mut self) -> anyhow::Result<Vec<String>> {
        let v = self.step("switches")?;
        Ok(v["switches"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s["name"].as_str().map(str::to_string)).collect())
            .unwrap_or_default())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "stop");
            let _ = stdin.flush();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // The lab could not stop itself: kill it with its node shells, then remove its bridges
        // and links by name (never `mn -c`, which would touch other people's labs).
        let _ = Command::new("kill").args(["-9", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.wait();
        if let Ok(out) = Command::new("ovs-vsctl").arg("list-br").output() {
            for br in String::from_utf8_lossy(&out.stdout).lines().filter(|b| b.starts_with(&self.prefix)) {
                let _ = Command::new("ovs-vsctl").args(["--if-exists", "del-br", br]).status();
            }
        }
        if let Ok(out) = Command::new("ip").args(["-o", "link", "show"]).output() {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let name = line.split(':').nth(1).map(str::trim).unwrap_or("");
                let name = name.split('@').next().unwrap_or("");
                if name.starts_with(&self.prefix) {
                    let _ = Command::new("ip").args(["link", "del", name]).status();
                }
            }
        }
    }
}

/// A binary of the workspace (`package`'s `name`), built if needed.
pub fn workspace_binary(package: &str, name: &str) -> anyhow::Result<PathBuf> {
    // target/<profile>/deps/<test> -> target/<profile>/<name>, built in the tests' profile.
    let exe = std::env::current_exe().context("locating the test binary")?;
    let profile_dir = exe.parent().and_then(std::path::Path::parent).context("test binary has no target directory")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "-p", package, "--bin", name]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.current_dir(repo_root()).status().with_context(|| format!("building {name}"))?;
    if !status.success() {
        bail!("cargo build -p {package} --bin {name} failed");
    }
    let bin = profile_dir.join(name);
    if !bin.exists() {
        bail!("{} not found after building", bin.display());
    }
    Ok(bin)
}

/// A loopback address with a port that was free a moment ago.
pub fn free_addr() -> anyhow::Result<String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("binding an ephemeral port")?;
    Ok(l.local_addr()?.to_string())
}

/// Polls `cond` every 100 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

/// Whether OVS reports bridge `br`'s controller as connected.
pub fn ovs_controller_connected(br: &str) -> bool {
    Command::new("ovs-vsctl")
        .args(["--timeout=5", "get", "controller", br, "is_connected"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
        .unwrap_or(false)
}

/// `GET path` on a local HTTP server; returns the status and the body parsed as JSON
/// (`Value::Null` when the body is not JSON).
pub fn http_get(addr: &str, path: &str) -> anyhow::Result<(u16, Value)> {
    http(addr, "GET", path)
}

/// `POST path` (empty body) on a local HTTP server.
pub fn http_post(addr: &str, path: &str) -> anyhow::Result<(u16, Value)> {
    http(addr, "POST", path)
}

fn http(addr: &str, method: &str, path: &str) -> anyhow::Result<(u16, Value)> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP header end")?;
    let status: u16 = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).context("no HTTP status")?;
    // The API answers with Content-Length bodies (no chunking) for JSON.
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}
