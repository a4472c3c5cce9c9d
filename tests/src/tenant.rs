//! A `tenet-controller --mode tenant` process for the end-to-end tests: loopback ports
//! picked at start, netapi credentials from a [`NetApi`]'s admin openrc, its log in a
//! file; restartable; stopped (SIGTERM, then SIGKILL) on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;

use crate::netapi::NetApi;
use crate::{free_addr, http_get, unique_prefix, wait_until, workspace_binary};

pub struct TenantController {
    child: Option<Child>,
    bin: PathBuf,
    env: Vec<(String, String)>,
    grpc_netapi: String,
    /// Where switches connect (HOST:PORT).
    pub of_addr: String,
    /// The topology API (HOST:PORT).
    pub api_addr: String,
    grpc_addr: String,
    log: PathBuf,
    extra: Vec<String>,
}

impl TenantController {
    /// Starts a controller in tenant mode following `netapi`.
    pub fn start(netapi: &NetApi, extra: &[&str]) -> anyhow::Result<TenantController> {
        let log = std::env::temp_dir().join(format!("tenet-ctl-{}-{}.log", std::process::id(), unique_prefix()));
        let mut c = TenantController {
            child: None,
            bin: workspace_binary("tenet-controller", "tenet-controller")?,
            env: netapi.admin_env.clone(),
            grpc_netapi: netapi.grpc_url.clone(),
            of_addr: free_addr()?,
            api_addr: free_addr()?,
            grpc_addr: free_addr()?,
            log,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        c.launch()?;
        Ok(c)
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).context("controller log")?;
        let child = Command::new(&self.bin)
            .args(["--mode", "tenant", "--netapi", &self.grpc_netapi, "--listen", &self.of_addr])
            .args(["--api", &self.api_addr, "--grpc", &self.grpc_addr, "--lldp-interval", "300", "--settle", "1000"])
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "info,tenet_controller=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting tenet-controller")?;
        self.child = Some(child);
        if !wait_until(Duration::from_secs(20), || http_get(&self.api_addr, "/v1/tenant").is_ok()) {
            bail!("tenet-controller's API did not come up\n{}", self.log());
        }
        Ok(())
    }

    /// The tenant status (`GET /v1/tenant`).
    pub fn status(&self) -> anyhow::Result<Value> {
        let (code, v) = http_get(&self.api_addr, "/v1/tenant")?;
        if code != 200 {
            bail!("GET /v1/tenant: {code} {v}");
        }
        Ok(v)
    }

    /// Waits until the feed has reached `revision` and `switches` switches are
    /// reconciled at it.
    pub fn wait_applied(&self, revision: i64, switches: usize, timeout: Duration) -> anyhow::Result<()> {
        let ok = wait_until(timeout, || {
            let Ok(s) = self.status() else { return false };
            let sw = s["switches"].as_object().cloned().unwrap_or_default();
            s["revision"].as_i64().unwrap_or(0) >= revision
                && sw.len() >= switches
                && sw
                    .values()
                    .all(|v| v["ready"] == Value::Bool(true) && v["revision"].as_i64().unwrap_or(0) >= revision)
        });
        if !ok {
            bail!(
                "controller did not apply revision {revision} on {switches} switches: {:?}\n{}",
                self.status(),
                self.log_tail()
            );
        }
        Ok(())
    }

    /// Stops the process: SIGTERM, then SIGKILL after 5 s.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            if !wait_until(Duration::from_secs(5), || matches!(child.try_wait(), Ok(Some(_)))) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    /// Stops and starts again on the same ports.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.launch()
    }

    /// The whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last 60 lines of the log.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// Runs `tenet-controller verify` against this controller: (exit code, stdout).
    pub fn verify(&self) -> anyhow::Result<(i32, String)> {
        let out = Command::new(&self.bin)
            .args(["verify", "--api", &format!("http://{}", self.api_addr)])
            .output()
            .context("running tenet-controller verify")?;
        Ok((out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned()))
    }
}

impl Drop for TenantController {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- tenet-controller log (tail) ---\n{}", self.log_tail());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}
