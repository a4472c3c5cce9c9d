//! Helpers for the netapi end-to-end tests: a `tenet-netapi` server on an ephemeral
//! loopback port with a temporary SQLite database, and the real `openstack` CLI
//! (python-openstackclient, openstacksdk, python-neutronclient) in a venv under
//! `target/netapi-venv`, created on first use and reused afterwards.
//!
//! Needs nothing but `python3` with the venv module (Debian: `python3-venv`, which
//! `labs/setup-host.sh` installs) and PyPI for the first run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;

use anyhow::{bail, Context};
use serde_json::Value;

use crate::{repo_root, unique_prefix};

/// The client versions the reference trace was recorded with.
pub const CLIENT_PACKAGES: &[&str] = &[
    "python-openstackclient==10.5.0",
    "openstacksdk==4.22.0",
    "python-neutronclient==14.0.0",
    "keystoneauth1==5.18.1",
];

static VENV_LOCK: Mutex<()> = Mutex::new(());

/// The venv holding the OpenStack clients, created (once) if missing. Returns its `bin/`.
pub fn openstack_venv() -> anyhow::Result<PathBuf> {
    let _guard = VENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = repo_root().join("target").join("netapi-venv");
    let ready = dir.join(".tenet-ready");
    let bin = dir.join("bin");
    let wanted = CLIENT_PACKAGES.join(" ");
    if std::fs::read_to_string(&ready).map(|s| s.trim() == wanted).unwrap_or(false) && bin.join("openstack").exists() {
        return Ok(bin);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let status = Command::new("python3").args(["-m", "venv"]).arg(&dir).status().context("running python3 -m venv")?;
    if !status.success() {
        bail!("python3 -m venv {} failed: install python3-venv (labs/setup-host.sh does)", dir.display());
    }
    let out = Command::new(bin.join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(CLIENT_PACKAGES)
        .output()
        .context("running pip install")?;
    if !out.status.success() {
        bail!("pip install {wanted} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    std::fs::write(&ready, &wanted).context("marking the venv ready")?;
    Ok(bin)
}

/// The `tenet-netapi` binary, built if needed.
fn netapi_binary() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "tenet-netapi", "--bin", "tenet-netapi"])
        .current_dir(repo_root())
        .status()
        .context("building tenet-netapi")?;
    if !status.success() {
        bail!("cargo build -p tenet-netapi failed");
    }
    // target/debug/deps/<test> -> target/debug/tenet-netapi
    let exe = std::env::current_exe().context("locating the test binary")?;
    let profile_dir = exe.parent().and_then(Path::parent).context("test binary has no target directory")?;
    let bin = profile_dir.join("tenet-netapi");
    if !bin.exists() {
        bail!("{} not found after building", bin.display());
    }
    Ok(bin)
}

/// A running `tenet-netapi serve` with a bootstrapped admin; stopped (and its
/// database removed) on drop.
pub struct NetApi {
    child: Child,
    dir: PathBuf,
    /// The server's base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The admin's openrc as (name, value) pairs.
    pub admin_env: Vec<(String, String)>,
}

impl NetApi {
    /// Starts a server on an ephemeral port with a new SQLite database and bootstraps
    /// the admin (password `adminpw`, project `admin`).
    pub fn start() -> anyhow::Result<NetApi> {
        let bin = netapi_binary()?;
        let dir = std::env::temp_dir().join(format!("tenet-netapi-e2e-{}-{}", std::process::id(), unique_prefix()));
        std::fs::create_dir_all(&dir).context("creating the temp dir")?;
        let db = format!("sqlite://{}", dir.join("netapi.db").display());
        let mut child = Command::new(&bin)
            .args(["serve", "--db", &db, "--http", "127.0.0.1:0"])
            .env("RUST_LOG", "info,sqlx=warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("server.log")).context("server log")?)
            .spawn()
            .context("starting tenet-netapi serve")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).context("reading the server's address")?;
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            bail!("tenet-netapi did not start: {line:?}\n{log}");
        };
        let url = format!("http://{addr}");
        let mut server = NetApi { child, dir, url, admin_env: Vec::new() };
        let out = Command::new(&bin)
            .args(["bootstrap", "--db", &db, "--password", "adminpw", "--public-url", &server.url])
            .output()
            .context("running tenet-netapi bootstrap")?;
        if !out.status.success() {
            bail!("bootstrap failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        server.admin_env = parse_openrc(&String::from_utf8_lossy(&out.stdout));
        Ok(server)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// A CLI acting as the admin.
    pub fn admin_cli(&self) -> anyhow::Result<Cli> {
        Ok(Cli { bin: openstack_venv()?, env: self.admin_env.clone() })
    }

    /// A CLI acting as `user` (password `password`) in `project`.
    pub fn cli_as(&self, user: &str, password: &str, project: &str) -> anyhow::Result<Cli> {
        let mut env: Vec<(String, String)> = self
            .admin_env
            .iter()
            .filter(|(k, _)| !["OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME"].contains(&k.as_str()))
            .cloned()
            .collect();
        env.push(("OS_USERNAME".into(), user.into()));
        env.push(("OS_PASSWORD".into(), password.into()));
        env.push(("OS_PROJECT_NAME".into(), project.into()));
        Ok(Cli { bin: openstack_venv()?, env })
    }
}

impl Drop for NetApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `export K='V'` lines to pairs.
pub fn parse_openrc(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect()
}

/// The `openstack` CLI with one identity.
pub struct Cli {
    bin: PathBuf,
    env: Vec<(String, String)>,
}

impl Cli {
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        for (k, _) in std::env::vars() {
            if k.starts_with("OS_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }

    /// Runs `openstack ARGS` and returns its output, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.command("openstack").args(args).output().with_context(|| format!("running openstack {}", args.join(" ")))
    }

    /// Runs `openstack ARGS -f json`, which must succeed, and parses its output.
    pub fn json(&self, args: &[&str]) -> anyhow::Result<Value> {
        let mut all = args.to_vec();
        all.extend(["-f", "json"]);
        let out = self.run(&all)?;
        if !out.status.success() {
            bail!("openstack {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!("openstack {} printed no JSON: {}", args.join(" "), String::from_utf8_lossy(&out.stdout))
        })
    }

    /// Runs `openstack ARGS`, which must succeed.
    pub fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.run(args)?;
        if !out.status.success() {
            bail!("openstack {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `openstack ARGS`, which must fail, and returns its stderr.
    pub fn fails(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.run(args)?;
        if out.status.success() {
            bail!(
                "openstack {} succeeded but should have failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout)
            );
        }
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Runs a Python script with the venv's interpreter (openstacksdk reads the same OS_* variables).
    pub fn python(&self, script: &str, args: &[&str]) -> anyhow::Result<String> {
        let out = self.command("python").arg("-c").arg(script).args(args).output().context("running python")?;
        if !out.status.success() {
            bail!("python script failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}
