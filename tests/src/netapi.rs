//! Helpers for the netapi end-to-end tests: a `tenet-netapi` server on an ephemeral
//! loopback port with a temporary SQLite database, and the real `openstack` CLI
//! (python-openstackclient, openstacksdk, python-neutronclient) in a venv under
//! `target/netapi-venv`, created on first use and reused afterwards.
//!
//! Needs nothing but `python3` with the venv module (Debian: `python3-venv`, which
//! `labs/setup-host.sh` installs) and PyPI for the first run.
//!
//! The servers also serve gRPC ([`NetApi::grpc_url`]), can be killed hard and restarted
//! on the same database (crash tests), and can run on PostgreSQL ([`NetApi::start_postgres`],
//! a new database per server, created and dropped with `psql`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tenet_netapi::client::{Method, Rest, StatusCode};

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
    crate::workspace_binary("tenet-netapi", "tenet-netapi")
}

/// The PostgreSQL server tests use: `TENET_TEST_POSTGRES` (an admin URL whose role may
/// create databases), by default the one `labs/setup-host.sh` sets up.
pub fn postgres_admin_url() -> String {
    std::env::var("TENET_TEST_POSTGRES").unwrap_or_else(|_| "postgres://tenet:tenet@127.0.0.1:5432/postgres".into())
}

/// Runs one SQL statement on the PostgreSQL admin database with `psql`.
fn psql(sql: &str) -> anyhow::Result<()> {
    let admin = postgres_admin_url();
    let out = Command::new("psql")
        .args([admin.as_str(), "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .context("running psql (Debian: postgresql-client; labs/setup-host.sh installs PostgreSQL)")?;
    if !out.status.success() {
        bail!(
            "psql {sql:?} on {admin} failed: {} (run labs/setup-host.sh, or set TENET_TEST_POSTGRES)",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A running `tenet-netapi serve` (REST and gRPC on ephemeral loopback ports) with a
/// bootstrapped admin; stopped (and its database removed) on drop.
pub struct NetApi {
    child: Option<Child>,
    dir: PathBuf,
    db: String,
    pg_name: Option<String>,
    /// The server's base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The gRPC endpoint (`http://127.0.0.1:PORT`).
    pub grpc_url: String,
    /// The admin's openrc as (name, value) pairs.
    pub admin_env: Vec<(String, String)>,
    /// Extra `serve` options (the catalog's compute and image endpoints).
    serve_args: Vec<String>,
}

/// The admin's password on every test server.
pub const ADMIN_PASSWORD: &str = "adminpw";

impl NetApi {
    /// Starts a server on ephemeral ports with a new SQLite database and bootstraps the
    /// admin (password `adminpw`, project `admin`).
    pub fn start() -> anyhow::Result<NetApi> {
        let dir = NetApi::temp_dir()?;
        let db = format!("sqlite://{}", dir.join("netapi.db").display());
        NetApi::start_on(dir, db, None, Vec::new())
    }

    /// Like [`NetApi::start`], with the catalog's compute and image endpoints at
    /// `compute_url` (`http://ADDR/compute/v2.1`) and `image_url` (`http://ADDR/image`).
    pub fn start_with_catalog(compute_url: &str, image_url: &str) -> anyhow::Result<NetApi> {
        let dir = NetApi::temp_dir()?;
        let db = format!("sqlite://{}", dir.join("netapi.db").display());
        let args = vec!["--compute-url".into(), compute_url.into(), "--image-url".into(), image_url.into()];
        NetApi::start_on(dir, db, None, args)
    }

    /// Like [`NetApi::start`] on a new PostgreSQL database (dropped on drop).
    pub fn start_postgres() -> anyhow::Result<NetApi> {
        let dir = NetApi::temp_dir()?;
        let name = format!("tenet_e2e_{}_{}", std::process::id(), unique_prefix());
        psql(&format!("CREATE DATABASE {name}"))?;
        let admin = postgres_admin_url();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin.clone());
        NetApi::start_on(dir, format!("{base}/{name}"), Some(name), Vec::new())
    }

    fn temp_dir() -> anyhow::Result<PathBuf> {
        let dir = std::env::temp_dir().join(format!("tenet-netapi-e2e-{}-{}", std::process::id(), unique_prefix()));
        std::fs::create_dir_all(&dir).context("creating the temp dir")?;
        Ok(dir)
    }

    fn start_on(dir: PathBuf, db: String, pg_name: Option<String>, serve_args: Vec<String>) -> anyhow::Result<NetApi> {
        let mut server = NetApi {
            child: None,
            dir,
            db,
            pg_name,
            url: String::new(),
            grpc_url: String::new(),
            admin_env: Vec::new(),
            serve_args,
        };
        server.launch(false)?;
        let bin = netapi_binary()?;
        let out = Command::new(&bin)
            .args(["bootstrap", "--db", &server.db, "--password", ADMIN_PASSWORD, "--public-url", &server.url])
            .output()
            .context("running tenet-netapi bootstrap")?;
        if !out.status.success() {
            bail!("bootstrap failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        server.admin_env = parse_openrc(&String::from_utf8_lossy(&out.stdout));
        Ok(server)
    }

    /// Starts the server process on this server's database (its log appended to `server.log`).
    /// With `same_ports`, on the addresses it had before (a restart clients can follow).
    fn launch(&mut self, same_ports: bool) -> anyhow::Result<()> {
        let (http, grpc) = if same_ports {
            (
                self.url.trim_start_matches("http://").to_string(),
                self.grpc_url.trim_start_matches("http://").to_string(),
            )
        } else {
            ("127.0.0.1:0".to_string(), "127.0.0.1:0".to_string())
        };
        let bin = netapi_binary()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .context("server log")?;
        let mut child = Command::new(&bin)
            .args(["serve", "--db", &self.db, "--http", &http, "--grpc", &grpc])
            .args(&self.serve_args)
            .env("RUST_LOG", "info,sqlx=warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting tenet-netapi serve")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut reader = BufReader::new(stdout);
        let mut addrs = Vec::new();
        for prefix in ["listening on ", "grpc listening on "] {
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            match line.trim().strip_prefix(prefix) {
                Some(addr) => addrs.push(format!("http://{addr}")),
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("tenet-netapi did not start: {line:?}\n{}", self.log());
                }
            }
        }
        self.grpc_url = addrs.pop().unwrap_or_default();
        self.url = addrs.pop().unwrap_or_default();
        self.child = Some(child);
        Ok(())
    }

    /// Kills the server with SIGKILL (`kill -9`: no shutdown, no flush) and reaps it.
    pub fn kill_hard(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("killing tenet-netapi")?;
            child.wait().context("reaping tenet-netapi")?;
        }
        Ok(())
    }

    /// Starts the server again on the same database (new ports; no bootstrap).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill_hard()?;
        self.launch(false)
    }

    /// Kills the server (SIGKILL) and starts it again on the same database and the same
    /// addresses, as a service manager would.
    pub fn restart_same_ports(&mut self) -> anyhow::Result<()> {
        self.kill_hard()?;
        self.launch(true)
    }

    /// The database URL (`sqlite://...` or `postgres://...`).
    pub fn db_url(&self) -> &str {
        &self.db
    }

    /// Runs `tenet-netapi check` on the database; returns its JSON report, consistent or not.
    pub fn check(&self) -> anyhow::Result<Value> {
        let out = Command::new(netapi_binary()?)
            .args(["check", "--db", &self.db])
            .output()
            .context("running tenet-netapi check")?;
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "tenet-netapi check printed no report: {} {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// A REST client for this server (build it inside the async runtime that uses it).
    pub fn rest(&self) -> Rest {
        Rest::new(&self.url)
    }

    /// A token of the admin in project `admin`.
    pub async fn admin_token(&self) -> anyhow::Result<String> {
        Ok(self.rest().password_token("admin", ADMIN_PASSWORD, "admin").await?)
    }

    /// Creates user `name` (password `pw`) holding `role` on the admin project; returns a
    /// token of theirs scoped to it.
    pub async fn user_with_role(&self, admin_token: &str, name: &str, role: &str) -> anyhow::Result<String> {
        let rest = self.rest();
        let projects =
            rest.expect(StatusCode::OK, Method::GET, "/v3/projects?name=admin", Some(admin_token), None).await?;
        let pid = projects["projects"][0]["id"].as_str().context("admin project id")?.to_string();
        let user = rest
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/v3/users",
                Some(admin_token),
                Some(&json!({"user": {"name": name, "password": "pw", "default_project_id": pid}})),
            )
            .await?;
        let uid = user["user"]["id"].as_str().context("user id")?.to_string();
        rest.expect(
            StatusCode::NO_CONTENT,
            Method::PUT,
            &format!("/v3/projects/{pid}/users/{uid}/roles/{role}"),
            Some(admin_token),
            None,
        )
        .await?;
        Ok(rest.password_token(name, "pw", "admin").await?)
    }

    /// Creates a network with one IPv4 subnet of `cidr`; returns (network id, subnet id).
    pub async fn network_with_subnet(&self, token: &str, name: &str, cidr: &str) -> anyhow::Result<(String, String)> {
        let rest = self.rest();
        let net = rest
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/v2.0/networks",
                Some(token),
                Some(&json!({"network": {"name": name}})),
            )
            .await?;
        let net_id = net["network"]["id"].as_str().context("network id")?.to_string();
        let sub = rest
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/v2.0/subnets",
                Some(token),
                Some(&json!({"subnet": {"network_id": net_id, "cidr": cidr, "ip_version": 4, "name": format!("{name}-v4")}})),
            )
            .await?;
        let sub_id = sub["subnet"]["id"].as_str().context("subnet id")?.to_string();
        Ok((net_id, sub_id))
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
        let _ = self.kill_hard();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(name) = self.pg_name.take() {
            let _ = psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
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
