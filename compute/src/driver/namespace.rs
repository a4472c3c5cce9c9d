//! The namespace driver, for Mininet-scale labs: a "VM" is a network namespace
//! (`tvm-<server id>`) whose `eth0` is one end of a veth pair; the other end (the
//! interface name the agent chose, `tap<port id prefix>`) is plugged into the host's OVS
//! bridge with Nova's external ids. The guest asks DHCP (busybox `udhcpc`, as the small
//! guest image does) once its port is registered.
//!
//! A namespace has no CPU state to freeze, so pause and suspend are modelled by taking
//! the guest's NIC down (the VM stops answering, as a paused or suspended VM does) and
//! resume by bringing it up again with its address kept.
//!
//! Two "hosts" of a lab share one kernel, so every host sees every namespace: a host
//! only ever touches the interfaces on its own bridge, and only deletes a namespace it
//! owns (a marker file `owned/<server id>` in its state directory, written when it builds
//! the server or receives it by migration, removed when it deletes or migrates it away).
//!
//! Live migration (the namespace is visible from both hosts, so only the NICs move),
//! make-before-break per NIC:
//! - destination ([`Driver::prepare_incoming`]): a veth pair whose host end (the NIC's
//!   destination interface name) is plugged into the destination bridge with Nova's
//!   external ids (attached-mac, vm-id, iface-id = the port id) and whose inner end
//!   (`<dest interface>g`) stays in the root namespace, down;
//! - source ([`Driver::migrate`]), first for every NIC ("make"): the inner end moves into
//!   the VM's namespace, takes the NIC's MAC and the IPv4 addresses of the old `ethN`,
//!   comes up, and the routes through `ethN` (default, others) are moved onto it; then
//!   for every NIC ("break"): the old `ethN` is deleted (its host end leaves the source
//!   bridge), the new one takes `ethN` as an alternative name (renaming would need it
//!   down, which drops its routes: a gap), and a gratuitous ARP per address (busybox
//!   `arping -U`) tells the network where the VM is now. `--ns-migration-pause-ms` takes
//!   the old NICs down that long before the new ones come up, to emulate the pause of a
//!   real VM's switch-over. A failure while making undoes everything (the new inner ends
//!   are deleted, the old NICs and routes restored).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::{Driver, DriverError, Incoming, Machine, Outgoing, Prepared};
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
    script: PathBuf,
    /// Marker files of the servers this host owns.
    owned: PathBuf,
    /// How long the old NICs are down before the new ones come up in a migration.
    migration_pause: Duration,
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

/// The name of a veth's inner end while it is created: the host end's name (at most 14
/// characters of it) and `g`.
fn inner_name(interface: &str) -> String {
    format!("{}g", interface.chars().take(14).collect::<String>())
}

/// Whether a network interface of this name exists in the root namespace.
fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// The interface names of `ip -o link show` output (without the `@peer` suffix).
fn link_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

/// The IPv4 addresses with prefix length of `ip -4 -o addr show` output.
pub fn ipv4_addresses(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next().map(str::to_string)
        })
        .collect()
}

/// The routes of `ip -4 route show dev X` output that the kernel did not make for an
/// address (those come with the address), as arguments for `ip route replace ... dev Y`:
/// state flags (`linkdown`, `dead`, ...) dropped.
pub fn movable_routes(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("proto kernel"))
        .map(|l| {
            l.split_whitespace()
                .filter(|w| !matches!(*w, "linkdown" | "dead" | "offload" | "trap" | "rt_offload" | "rt_trap"))
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// One NIC's state during a migration on the source.
struct Moving {
    /// The guest's interface (`ethN`) and the inner end that replaces it.
    guest: String,
    inner: String,
    addresses: Vec<String>,
    routes: Vec<Vec<String>>,
    /// How far it got: moved into the namespace, old NIC taken down, routes moved.
    moved: bool,
    old_down: bool,
    routes_moved: bool,
}

impl NamespaceDriver {
    /// Checks the tools it needs (`ip`, `ovs-vsctl`, `udhcpc`) and writes the DHCP hook;
    /// `migration_pause` is `--ns-migration-pause-ms`.
    pub fn new(state_dir: &std::path::Path, migration_pause: Duration) -> Result<NamespaceDriver, DriverError> {
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
        let owned = state_dir.join("owned");
        std::fs::create_dir_all(&owned).map_err(|e| DriverError(format!("{}: {e}", owned.display())))?;
        Ok(NamespaceDriver { script, owned, migration_pause })
    }

    fn marker(&self, server_id: &str) -> PathBuf {
        self.owned.join(server_id)
    }

    fn own(&self, server_id: &str) -> Result<(), DriverError> {
        let m = self.marker(server_id);
        std::fs::write(&m, b"").map_err(|e| DriverError(format!("{}: {e}", m.display())))
    }

    fn disown(&self, server_id: &str) {
        let _ = std::fs::remove_file(self.marker(server_id));
    }

    fn owns(&self, server_id: &str) -> bool {
        self.marker(server_id).exists()
    }

    /// The interfaces of a server's namespace on `bridge` (never another host's).
    fn host_interfaces(server_id: &str, bridge: &str) -> Vec<String> {
        let on_bridge: Vec<String> =
            run("ovs-vsctl", &["list-ports", bridge]).unwrap_or_default().lines().map(str::to_string).collect();
        let q = format!("external_ids:vm-id={server_id}");
        run("ovs-vsctl", &["--columns=name", "--format=csv", "--no-headings", "find", "interface", &q])
            .unwrap_or_default()
            .lines()
            .map(|l| l.trim().trim_matches('"').to_string())
            .filter(|l| !l.is_empty() && on_bridge.contains(l))
            .collect()
    }

    /// Plugs `interface` (a veth end in the root namespace) into `bridge` with Nova's
    /// external ids.
    fn add_port(
        bridge: &str,
        interface: &str,
        mac: &str,
        server_id: &str,
        port_id: Option<&str>,
    ) -> Result<(), DriverError> {
        let mut args = vec![
            "--may-exist".to_string(),
            "add-port".into(),
            bridge.into(),
            interface.into(),
            "--".into(),
            "set".into(),
            "interface".into(),
            interface.into(),
            format!("external_ids:attached-mac=\"{mac}\""),
            format!("external_ids:vm-id={server_id}"),
            "external_ids:iface-status=active".into(),
        ];
        if let Some(p) = port_id {
            args.push(format!("external_ids:iface-id={p}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run("ovs-vsctl", &args)?;
        Ok(())
    }

    fn plug(&self, m: &Machine, bridge: &str, ns: &str, index: usize, nic: &super::Nic) -> Result<(), DriverError> {
        let inner = inner_name(&nic.interface);
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
        Self::add_port(bridge, &nic.interface, &nic.mac, &m.server_id, nic.port_id.as_deref())
    }

    /// The guest interface (`ethN`) of namespace `ns` whose MAC is `mac`.
    fn guest_interface(ns: &str, mac: &str) -> Result<String, DriverError> {
        let links = run("ip", &["-n", ns, "-o", "link", "show"])?;
        for line in links.lines() {
            let name = link_names(line).pop().unwrap_or_default();
            if name != "lo" && line.to_ascii_lowercase().contains(&format!("link/ether {}", mac.to_ascii_lowercase())) {
                return Ok(name);
            }
        }
        Err(DriverError(format!("namespace {ns} has no interface with MAC {mac}")))
    }

    /// Moves every NIC's new inner end into the namespace and onto the network
    /// (make); on error undoes it all.
    fn make(&self, ns: &str, m: &Outgoing) -> Result<Vec<Moving>, DriverError> {
        let mut moving: Vec<Moving> = Vec::new();
        let result = (|| {
            for nic in &m.nics {
                let guest = Self::guest_interface(ns, &nic.mac)?;
                let addresses = ipv4_addresses(&run("ip", &["-n", ns, "-4", "-o", "addr", "show", "dev", &guest])?);
                let routes = movable_routes(&run("ip", &["-n", ns, "-4", "route", "show", "dev", &guest])?);
                let inner = inner_name(&nic.dest_interface);
                if !link_exists(&inner) {
                    return Err(DriverError(format!("the destination's interface {inner} is not there")));
                }
                moving.push(Moving {
                    guest,
                    inner: inner.clone(),
                    addresses,
                    routes,
                    moved: false,
                    old_down: false,
                    routes_moved: false,
                });
                let mv = moving.last_mut().ok_or_else(|| DriverError("no NIC".into()))?;
                run("ip", &["link", "set", &inner, "netns", ns])?;
                mv.moved = true;
                run("ip", &["-n", ns, "link", "set", &inner, "address", &nic.mac])?;
                let _ = run("ip", &["netns", "exec", ns, "ethtool", "-K", &inner, "tx", "off"]);
                for a in &mv.addresses {
                    run("ip", &["-n", ns, "addr", "add", a, "dev", &inner])?;
                }
            }
            if !self.migration_pause.is_zero() {
                for mv in &mut moving {
                    run("ip", &["-n", ns, "link", "set", &mv.guest, "down"])?;
                    mv.old_down = true;
                }
                std::thread::sleep(self.migration_pause);
            }
            for mv in &mut moving {
                run("ip", &["-n", ns, "link", "set", &mv.inner, "up"])?;
                mv.routes_moved = true;
                for r in &mv.routes {
                    let mut args: Vec<&str> = vec!["-n", ns, "route", "replace"];
                    args.extend(r.iter().map(String::as_str));
                    args.extend(["dev", mv.inner.as_str()]);
                    run("ip", &args)?;
                }
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(moving),
            Err(e) => {
                Self::unmake(ns, &moving);
                Err(e)
            }
        }
    }

    /// Undoes [`NamespaceDriver::make`]: the new inner ends go (with their host ends on
    /// the destination bridge), the old NICs come back up with their routes.
    fn unmake(ns: &str, moving: &[Moving]) {
        for mv in moving {
            if mv.moved {
                let _ = run("ip", &["-n", ns, "link", "del", &mv.inner]);
            } else {
                let _ = run("ip", &["link", "del", &mv.inner]);
            }
            if mv.old_down {
                let _ = run("ip", &["-n", ns, "link", "set", &mv.guest, "up"]);
            }
            if mv.routes_moved || mv.old_down {
                for r in &mv.routes {
                    let mut args: Vec<&str> = vec!["-n", ns, "route", "replace"];
                    args.extend(r.iter().map(String::as_str));
                    args.extend(["dev", mv.guest.as_str()]);
                    let _ = run("ip", &args);
                }
            }
        }
    }

    /// Retires the old NICs (break): from here the machine is at the destination, so a
    /// failure is logged, not undone.
    fn retire(ns: &str, source_bridge: &str, m: &Outgoing, moving: &[Moving]) {
        for (mv, nic) in moving.iter().zip(&m.nics) {
            // The guest's name for the NIC (`ethN`): the old NIC's name, or its alternative
            // name when it came by an earlier migration.
            let canonical = if mv.guest.starts_with("eth") {
                mv.guest.clone()
            } else {
                run("ip", &["-n", ns, "-o", "link", "show", "dev", &mv.guest])
                    .ok()
                    .and_then(|l| l.split_whitespace().skip_while(|w| *w != "altname").nth(1).map(str::to_string))
                    .unwrap_or_else(|| mv.guest.clone())
            };
            if let Err(e) = run("ip", &["-n", ns, "link", "del", &mv.guest]) {
                tracing::warn!(server = %m.server_id, interface = %mv.guest, error = %e, "cannot delete the old NIC");
            }
            let _ = run("ovs-vsctl", &["--if-exists", "del-port", source_bridge, &nic.source_interface]);
            // Renaming needs the interface down, which drops its routes and neighbours: a
            // gap. The new NIC keeps its name and takes the old one as an alternative name
            // (`ip ... dev ethN` still finds it).
            if let Err(e) = run("ip", &["-n", ns, "link", "property", "add", "dev", &mv.inner, "altname", &canonical]) {
                tracing::warn!(server = %m.server_id, interface = %mv.inner, error = %e, "cannot give the new NIC its old name");
            }
            for a in &mv.addresses {
                let addr = a.split('/').next().unwrap_or(a);
                if let Err(e) = gratuitous_arp(ns, &mv.inner, addr) {
                    tracing::warn!(server = %m.server_id, interface = %mv.inner, error = %e, "gratuitous ARP failed");
                }
            }
        }
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

/// Sends one gratuitous ARP (an unsolicited reply: `arping -U`) for `addr` from `dev` in
/// namespace `ns`, with busybox's arping (iputils' as a fallback).
fn gratuitous_arp(ns: &str, dev: &str, addr: &str) -> Result<(), DriverError> {
    match run("ip", &["netns", "exec", ns, "busybox", "arping", "-U", "-c", "1", "-I", dev, addr]) {
        Ok(_) => Ok(()),
        Err(e) => run("ip", &["netns", "exec", ns, "arping", "-U", "-c", "1", "-I", dev, addr])
            .map(|_| ())
            .map_err(|e2| DriverError(format!("{e}; {e2}"))),
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
            self.own(&m.server_id)?;
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
            if name != "lo" {
                run("ip", &["netns", "exec", &ns, "ip", "link", "set", name, state])?;
            }
        }
        Ok(())
    }

    fn destroy(&self, server_id: &str, bridge: &str) -> Result<(), DriverError> {
        for iface in Self::host_interfaces(server_id, bridge) {
            let _ = run("ovs-vsctl", &["--if-exists", "del-port", bridge, &iface]);
            let _ = run("ip", &["link", "del", &iface]);
        }
        let ns = ns_of(server_id);
        // Another host on this kernel may run it now (migrated): only the owner deletes it.
        if self.owns(server_id) && self.exists(server_id) {
            // Processes of the guest (its DHCP client) go with it.
            if let Ok(pids) = run("ip", &["netns", "pids", &ns]) {
                for pid in pids.split_whitespace() {
                    let _ = run("kill", &[pid]);
                }
            }
            run("ip", &["netns", "del", &ns])?;
        }
        self.disown(server_id);
        Ok(())
    }

    fn list(&self) -> Vec<String> {
        Self::namespaces().into_iter().filter(|s| self.owns(s)).collect()
    }

    fn prepare_incoming(&self, m: &Incoming, bridge: &str) -> Result<Prepared, DriverError> {
        if !self.exists(&m.server_id) {
            return Err(DriverError(format!("namespace {} is not on this machine", ns_of(&m.server_id))));
        }
        let result = (|| {
            for nic in &m.nics {
                let inner = inner_name(&nic.dest_interface);
                run("ip", &["link", "add", &nic.dest_interface, "type", "veth", "peer", "name", &inner])?;
                let _ = run("ethtool", &["-K", &nic.dest_interface, "tx", "off"]);
                run("ip", &["link", "set", &nic.dest_interface, "up"])?;
                Self::add_port(bridge, &nic.dest_interface, &nic.mac, &m.server_id, Some(&nic.port_id))?;
            }
            Ok(Prepared::default())
        })();
        if result.is_err() {
            let _ = self.abort_incoming(m, bridge);
        }
        result
    }

    fn migrate(&self, m: &Outgoing) -> Result<(), DriverError> {
        let ns = ns_of(&m.server_id);
        if !self.exists(&m.server_id) {
            return Err(DriverError(format!("namespace {ns} does not exist")));
        }
        let moving = self.make(&ns, m)?;
        Self::retire(&ns, &m.source_bridge, m, &moving);
        if m.power != Power::Running {
            self.set_power(&m.server_id, m.power)?;
        }
        Ok(())
    }

    fn finish_incoming(&self, m: &Incoming, _bridge: &str) -> Result<(), DriverError> {
        self.own(&m.server_id)
    }

    fn abort_incoming(&self, m: &Incoming, bridge: &str) -> Result<(), DriverError> {
        for nic in &m.nics {
            let _ = run("ovs-vsctl", &["--if-exists", "del-port", bridge, &nic.dest_interface]);
            if link_exists(&nic.dest_interface) {
                run("ip", &["link", "del", &nic.dest_interface])?;
            }
        }
        Ok(())
    }

    fn cleanup_after_outgoing(&self, m: &Outgoing) -> Result<(), DriverError> {
        for nic in &m.nics {
            let _ = run("ovs-vsctl", &["--if-exists", "del-port", &m.source_bridge, &nic.source_interface]);
            if link_exists(&nic.source_interface) {
                let _ = run("ip", &["link", "del", &nic.source_interface]);
            }
        }
        self.disown(&m.server_id);
        Ok(())
    }
}

impl NamespaceDriver {
    /// Every VM namespace on the machine (any host's).
    fn namespaces() -> Vec<String> {
        run("ip", &["netns", "list"])
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter_map(|n| n.strip_prefix(PREFIX))
            .map(str::to_string)
            .collect()
    }

    fn exists(&self, server_id: &str) -> bool {
        std::path::Path::new("/run/netns").join(ns_of(server_id)).exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_routes_are_read_from_ip_output() {
        let addrs = "2: eth0    inet 10.7.0.5/24 brd 10.7.0.255 scope global eth0\\       valid_lft forever preferred_lft forever\n";
        assert_eq!(ipv4_addresses(addrs), vec!["10.7.0.5/24".to_string()]);
        let routes = "default via 10.7.0.1 \n10.7.0.0/24 proto kernel scope link src 10.7.0.5 \n10.9.0.0/16 via 10.7.0.9 linkdown \n";
        assert_eq!(
            movable_routes(routes),
            vec![vec!["default", "via", "10.7.0.1"], vec!["10.9.0.0/16", "via", "10.7.0.9"]]
        );
        assert_eq!(link_names("5: eth0@if6: <BROADCAST> mtu 1500"), vec!["eth0".to_string()]);
        assert_eq!(inner_name("tmv0123456789a"), "tmv0123456789ag");
    }
}
