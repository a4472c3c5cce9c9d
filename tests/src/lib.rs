//! Shared helpers for tenet's end-to-end tests against real Open vSwitch and Mininet.
//!
//! These tests need root and a running Open vSwitch (`labs/setup-host.sh` installs
//! and starts it). They say so and fail when either is missing; they are never
//! skipped. Every lab gets a unique name prefix so runs never collide, and every
//! lab is stopped (its bridges and namespaces removed) when its [`Lab`] is dropped,
//! also when the test fails.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
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
    stdout: BufReader<ChildStdout>,
    pub prefix: String,
}

impl Lab {
    /// Starts a lab of `topo` (e.g. `linear,4`) whose switches connect to `controller` (HOST:PORT).
    pub fn start(topo: &str, controller: &str, protocols: &str) -> anyhow::Result<Lab> {
        let prefix = unique_prefix();
        let script = repo_root().join("labs/mininet_lab.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .args(["--steps", "--topo", topo, "--controller", controller, "--protocols", protocols, "--prefix"])
            .arg(&prefix)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", script.display()))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().context("lab stdout")?);
        let mut lab = Lab { child, stdin, stdout, prefix };
        let ready = lab.read_answer()?;
        if ready.get("ready") != Some(&Value::Bool(true)) {
            bail!("lab did not start: {ready}");
        }
        Ok(lab)
    }

    fn read_answer(&mut self) -> anyhow::Result<Value> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line)? == 0 {
                bail!("lab exited early (see its stderr above)");
            }
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
        let v = self.read_answer()?;
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
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The lab could not stop itself: remove its bridges by name (never `mn -c`).
        if let Ok(out) = Command::new("ovs-vsctl").arg("list-br").output() {
            for br in String::from_utf8_lossy(&out.stdout).lines().filter(|b| b.starts_with(&self.prefix)) {
                let _ = Command::new("ovs-vsctl").args(["--if-exists", "del-br", br]).status();
            }
        }
    }
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
