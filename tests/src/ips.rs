//! An inline IPS appliance (Suricata in its own namespace, `labs/ips-appliance.sh`) plugged
//! into an OVS bridge through two ports: what OVS sends into `in_if` leaves through `out_if`
//! and the other way round, unless a `drop` rule matches. Stopped (Suricata, namespace, veths,
//! OVS ports) when dropped, also when the test panics.
//!
//! The default rules drop any TCP payload containing [`FORBIDDEN_PAYLOAD`] (signature
//! [`FORBIDDEN_PAYLOAD_SID`]; UDP: [`FORBIDDEN_PAYLOAD_UDP_SID`]) in either direction and pass
//! everything else.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use serde_json::Value;

/// The payload the default rules drop.
pub const FORBIDDEN_PAYLOAD: &str = "EVIL-PAYLOAD";
/// The signature id of the default rule that drops [`FORBIDDEN_PAYLOAD`] over TCP.
pub const FORBIDDEN_PAYLOAD_SID: u64 = 1_000_001;
/// The signature id of the default rule that drops [`FORBIDDEN_PAYLOAD`] over UDP.
pub const FORBIDDEN_PAYLOAD_UDP_SID: u64 = 1_000_002;

/// How an appliance is started beyond its names (`labs/ips-appliance.sh start` options).
#[derive(Debug, Clone, Default)]
pub struct IpsOptions {
    /// A Suricata rules file instead of the default rules.
    pub rules: Option<PathBuf>,
    /// MAC address of the appliance's NIC behind `in_if`.
    pub mac_in: Option<String>,
    /// MAC address of the appliance's NIC behind `out_if`.
    pub mac_out: Option<String>,
}

/// A running appliance; see the module documentation.
#[derive(Debug)]
pub struct IpsAppliance {
    /// The appliance's name: its network namespace and state directory.
    pub name: String,
    /// The OVS bridge its two ports are on.
    pub bridge: String,
    /// Host end (OVS port) of the appliance's ingress side.
    pub in_if: String,
    /// Host end (OVS port) of the appliance's egress side.
    pub out_if: String,
    eve: PathBuf,
    stopped: bool,
}

/// `labs/ips-appliance.sh`.
pub fn script() -> PathBuf {
    crate::repo_root().join("labs/ips-appliance.sh")
}

/// Runs `labs/ips-appliance.sh ARGS`; its stdout, or an error with both outputs.
fn appliance_cmd(args: &[&str]) -> anyhow::Result<String> {
    let out =
        Command::new(script()).args(args).output().with_context(|| format!("running ips-appliance.sh {args:?}"))?;
    if !out.status.success() {
        bail!(
            "ips-appliance.sh {} failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl IpsAppliance {
    /// Starts appliance `name` with the default rules between ports `in_if` and `out_if`
    /// (created, at most 15 characters each) of OVS bridge `bridge`; returns once Suricata
    /// forwards. Pick names with [`crate::unique_prefix`] so runs never collide.
    pub fn start(name: &str, bridge: &str, in_if: &str, out_if: &str) -> anyhow::Result<IpsAppliance> {
        IpsAppliance::start_with(name, bridge, in_if, out_if, &IpsOptions::default())
    }

    /// Like [`IpsAppliance::start`], with other rules or MAC addresses.
    pub fn start_with(
        name: &str,
        bridge: &str,
        in_if: &str,
        out_if: &str,
        opts: &IpsOptions,
    ) -> anyhow::Result<IpsAppliance> {
        let mut args = vec!["start".to_string(), name.into(), bridge.into(), in_if.into(), out_if.into()];
        if let Some(r) = &opts.rules {
            args.extend(["--rules".into(), r.display().to_string()]);
        }
        if let Some(m) = &opts.mac_in {
            args.extend(["--mac-in".into(), m.clone()]);
        }
        if let Some(m) = &opts.mac_out {
            args.extend(["--mac-out".into(), m.clone()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // A failed start removes what it made itself; nothing to stop here.
        appliance_cmd(&args)?;
        let mut ips = IpsAppliance {
            name: name.into(),
            bridge: bridge.into(),
            in_if: in_if.into(),
            out_if: out_if.into(),
            eve: PathBuf::new(),
            stopped: false,
        };
        // From here on, Drop stops the appliance whatever happens.
        ips.eve = PathBuf::from(appliance_cmd(&["eve", name])?.trim());
        Ok(ips)
    }

    /// SIGKILLs Suricata only (a dead appliance): the ports stay on the bridge, so
    /// traffic steered into them is lost.
    pub fn kill(&self) -> anyhow::Result<()> {
        appliance_cmd(&["kill", &self.name])?;
        Ok(())
    }

    /// Starts Suricata again in the existing namespace (stopping it first if it runs);
    /// returns once it forwards.
    pub fn restart(&self) -> anyhow::Result<()> {
        appliance_cmd(&["restart", &self.name])?;
        Ok(())
    }

    /// Whether the appliance's Suricata runs.
    pub fn is_running(&self) -> bool {
        Command::new(script()).args(["status", &self.name]).output().map(|o| o.status.success()).unwrap_or(false)
    }

    /// The appliance's eve.json (Suricata's JSON event log).
    pub fn eve_path(&self) -> &Path {
        &self.eve
    }

    /// The events in eve.json so far, oldest first (none when there is no log yet; a line
    /// Suricata is still writing is left out).
    pub fn eve_events(&self) -> Vec<Value> {
        let Ok(text) = std::fs::read_to_string(self.eve_path()) else {
            return Vec::new();
        };
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// The `alert` events of signature `sid`.
    pub fn alerts_with_sid(&self, sid: u64) -> Vec<Value> {
        self.eve_events()
            .into_iter()
            .filter(|e| e["event_type"] == "alert" && e["alert"]["signature_id"].as_u64() == Some(sid))
            .collect()
    }

    /// Frames that entered the appliance so far: through `in_if` and through `out_if`
    /// (the tx counters of the host ends; 0 for an interface that cannot be read).
    pub fn packet_counts(&self) -> (u64, u64) {
        (tx_packets(&self.in_if), tx_packets(&self.out_if))
    }

    /// Stops Suricata and removes the namespace, veths and OVS ports (done on drop too).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        self.stopped = true;
        appliance_cmd(&["stop", &self.name])?;
        Ok(())
    }
}

fn tx_packets(iface: &str) -> u64 {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/statistics/tx_packets"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

impl Drop for IpsAppliance {
    fn drop(&mut self) {
        if !self.stopped {
            if let Err(e) = self.stop() {
                eprintln!("stopping IPS appliance {}: {e:#}", self.name);
            }
        }
    }
}
