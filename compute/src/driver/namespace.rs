//! The namespace driver, for Mininet-scale labs: a "VM" is a network namespace
//! (`tvm-<server id>`) whose `eth0` is one end of a veth pair; the other end (the
//! interface name the agent chose, `tap<port id prefix>`) is plugged into the host's OVS
//! bridge with Nova's external ids. The guest asks DHCP (busybox `udhcpc`, as the small
//! guest image does) once its port is registered.
//!
//! A namespace has no CPU state to freeze, so pause and suspend are modelled by taking
//! the guest's NIC down (the VM stops answering, as a paused or suspended VM does) and
//! resume by bringing it up again with its address kept.

use std::process::Command;

use super::{Driver, DriverError, Machine};
use crate::protocol::Power;

/// Namespace name prefix.
pub const PREFIX: &str = "tvm-";

/// busybox udhcpc hook: applies a lease to the interface only.
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
deconfig) ip -4 addr flush dev "$interface" ;;
bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    ;;
esac
exit 0
"#;

pub struct NamespaceDriver {
    script: std::path::PathBuf,
}

fn run(cmd: &str, args: &[&str]) -> Result<String, DriverError> {
    let out = Command::new(cmd).args(args).output().map_err(|e| DriverError(format!("{cmd}: {e}")))?;
    if !out.status.success() {
        return Err(DriverError(format!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ns_of(server_id: &str) -> String {
    format!("{PREFIX}{server_id}")
}

impl NamespaceDriver {
    /// Checks the tools it needs (`ip`, `ovs-vsctl`, `udhcpc`) and writes the DHCP hook.
    pub fn new(state_dir: &std::path::Path) -> Result<NamespaceDriver, DriverError> {
        for tool in ["ip", "ovs-vsctl", "udhcpc"] {
            if Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .map_or(true, |o| !o.status.success())
            {
                return Err(DriverError(format!(
                    "the namespace driver needs `{tool}` (labs/setup-host.sh installs it)"
                )));
            }
        }
        std::fs::create_dir_all(state_dir).map_err(|e| DriverError(format!("{}: {e}", state_dir.display())))?;
        let script = state_dir.join("udhcpc-script.sh");
        std::fs::write(&script, UDHCPC_SCRIPT).map_err(|e| DriverError(format!("{}: {e}", script.display())))?;
        let _ = run("chmod", &["0755", &script.to_string_lossy()]);
        Ok(NamespaceDriver { script })
    }

    /// The interfaces of a server's namespace on the bridge.
    fn host_interfaces(server_id: &str) -> Vec<String> {
        let q = format!("external_ids:vm-id={server_id}");
        run("ovs-vsctl", &["--columns=name", "--format=csv", "--no-headings", "find", "interface", &q])
            .unwrap_or_default()
            .lines()
            .map(|l| l.trim().trim_matches('"').to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }

    fn plug(&self, m: &Machine, bridge: &str, ns: &str, index: usize, nic: &super::Nic) -> Result<(), DriverError> {
        let inner = format!("{}g", nic.interface.chars().take(14).collect::<String>());
        run("ip", &["link", "add", &nic.interface, "type", "veth", "peer", "name", &inner])?;
        run("ip", &["link", "set", &inner, "netns", ns])?;
        let guest = format!("eth{index}");
        run("ip", &["netns", "exec", ns, "ip", "link", "set", &inner, "name", &guest])?;
        run("ip", &["netns", "exec", ns, "ip", "link", "set", &guest, "address", &nic.mac])?;
        run("ip", &["netns", "exec", ns, "ip", "link", "set", &guest, "up"])?;
        // TCP over the userspace datapath needs transmit checksum offload off (both ends).
        let _ = run("ip", &["netns", "exec", ns, "ethtool", "-K", &guest, "tx", "off"]);
        let _ = run("ethtool", &["-K", &nic.interface, "tx", "off"]);
        run("ip", &["link", "set", &nic.interface, "up"])?;
        run(
            "ovs-vsctl",
            &[
                "--may-exist",
                "add-port",
                bridge,
                &nic.interface,
                "--",
                "set",
                "interface",
                &nic.interface,
                &format!("external_ids:attached-mac=\"{}\"", nic.mac),
                &format!("external_ids:vm-id={}", m.server_id),
                "external_ids:iface-status=active",
            ],
        )?;
        Ok(())
    }

    /// Starts the guest's DHCP client on every NIC (in the background: it retries until
    /// the controller answers, then exits with the lease applied).
    pub fn ask_dhcp(&self, server_id: &str, nics: usize) -> Result<(), DriverError> {
        let ns = ns_of(server_id);
        for i in 0..nics {
            let iface = format!("eth{i}");
            Command::new("ip")
                .args([
                    "netns", "exec", &ns, "udhcpc", "-i", &iface, "-f", "-q", "-n", "-t", "60", "-T", "1", "-A", "1",
                ])
                .arg("-s")
                .arg(&self.script)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| DriverError(format!("udhcpc: {e}")))?;
        }
        Ok(())
    }
}

impl Driver for NamespaceDriver {
    fn name(&self) -> &'static str {
        "namespace"
    }

    fn spawn(&self, m: &Machine, bridge: &str) -> Result<(), DriverError> {
        let ns = ns_of(&m.server_id);
        run("ip", &["netns", "add", &ns])?;
        let result = (|| {
            run("ip", &["netns", "exec", &ns, "ip", "link", "set", "lo", "up"])?;
            for (i, nic) in m.nics.iter().enumerate() {
                self.plug(m, bridge, &ns, i, nic)?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = self.destroy(&m.server_id, bridge);
        }
        result
    }

    fn after_ports(&self, server_id: &str, nics: usize) -> Result<(), DriverError> {
        self.ask_dhcp(server_id, nics)
    }

    fn set_power(&self, server_id: &str, power: Power) -> Result<(), DriverError> {
        let ns = ns_of(server_id);
        let state = match power {
            Power::Running => "up",
            Power::Paused | Power::Suspended | Power::Shutdown => "down",
            Power::Gone => return Err(DriverError("use destroy".into())),
        };
        let links = run("ip", &["netns", "exec", &ns, "ip", "-o", "link", "show"])?;
        for name in links.lines().filter_map(|l| l.split(':').nth(1)).map(|n| n.trim().split('@').next().unwrap_or(""))
        {
            if name.starts_with("eth") {
                run("ip", &["netns", "exec", &ns, "ip", "link", "set", name, state])?;
            }
        }
        Ok(())
    }

    fn destroy(&self, server_id: &str, bridge: &str) -> Result<(), DriverError> {
        for iface in Self::host_interfaces(server_id) {
            let _ = run("ovs-vsctl", &["--if-exists", "del-port", bridge, &iface]);
            let _ = run("ip", &["link", "del", &iface]);
        }
        let ns = ns_of(server_id);
        if self.list().iter().any(|s| s == server_id) {
            // Processes of the guest (its DHCP client) go with it.
            if let Ok(pids) = run("ip", &["netns", "pids", &ns]) {
                for pid in pids.split_whitespace() {
                    let _ = run("kill", &[pid]);
                }
            }
            run("ip", &["netns", "del", &ns])?;
        }
        Ok(())
    }

    fn list(&self) -> Vec<String> {
        run("ip", &["netns", "list"])
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter_map(|n| n.strip_prefix(PREFIX))
            .map(str::to_string)
            .collect()
    }
}
