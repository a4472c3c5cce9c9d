//! The libvirt driver: a server is a persistent QEMU domain `tenet-<server id>` under
//! software emulation (`<domain type='qemu'>`, TCG: hardware virtualisation is not
//! relied on). It boots the tenet guest's kernel and initramfs directly
//! (`labs/guest/build-image.sh`) with `tenet.hostname=<name>` on the command line, on a
//! per-server qcow2 overlay (over the server's image when it is a qcow2 or raw disk,
//! else over the guest's blank `disk.qcow2`). Each NIC is an `<interface type='bridge'>`
//! on the host's OVS bridge whose tap gets the name the agent chose (`<target dev=.../>`),
//! so the binding netapi records names it; libvirt adds it to the bridge with
//! external ids attached-mac, iface-id, vm-id, and removes it when the domain stops.
//! The guest runs its own DHCP client, so [`Driver::after_ports`] has nothing to do.
//!
//! Power: Paused is `virDomainSuspend` (in memory), Suspended a managed save (to disk;
//! the domain must be persistent), Running resumes or restores (starting a domain
//! that has a managed save restores it), Shutdown destroys the domain but keeps it
//! defined.
//!
//! Files under the state dir, per server: `tenet-<id>.qcow2` (the overlay) and
//! `tenet-<id>.console.log` (the serial console). Deleting a server deletes the disk its
//! domain XML names (a server that came by shared-storage migration keeps its disk in
//! the first host's state dir) as well as these.
//!
//! Live migration (`virDomainMigrate3` from the source's connection to the destination's
//! libvirt URI, flags LIVE | PERSIST_DEST | UNDEFINE_SOURCE):
//! - block migration adds NON_SHARED_DISK: the destination pre-creates an empty qcow2 of
//!   the disk's virtual size in its state dir ([`Driver::prepare_incoming`]) and QEMU
//!   copies the whole disk into it; the source's overlay is deleted afterwards;
//! - shared-storage migration adds UNSAFE (a local file system is not "shared" to
//!   libvirt): the disk path stays the same and the disk is left in place.
//!
//! The destination XML is the domain's migratable XML with each interface's tap
//! renamed to its destination name, the bridge to the destination's, and the console
//! log (and, for block migration, the disk) moved to the destination's state dir.
//! While a migration comes in, the destination watches (every 5 ms) for its taps to
//! appear and raises their `txqueuelen` to 10000 (and turns tx checksum offload off):
//! during the switch-over the network delivers the VM's traffic to both hosts, and the
//! destination QEMU reads its tap only once the guest resumes there, so packets must
//! queue rather than drop (tun's default queue is 500).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use virt::connect::Connect;
use virt::domain::{Domain, DomainState, MigrateParameters};
use virt::enumutil::Enum;
use virt::error::ErrorNumber;

use super::{Driver, DriverError, Incoming, Machine, Outgoing, Prepared};
use crate::protocol::Power;

/// Domain name prefix.
pub const PREFIX: &str = "tenet-";

/// Guests get at least this much memory (the kernel and initramfs need it).
pub const MIN_RAM_MB: u64 = 128;

/// The transmit queue length of an incoming migration's taps.
pub const MIGRATION_TXQUEUELEN: u32 = 10_000;

/// How long the destination watches for an incoming migration's taps at most.
const TAP_WATCH_LIMIT: Duration = Duration::from_secs(600);

/// How the driver is set up.
#[derive(Debug, Clone)]
pub struct LibvirtConfig {
    /// `qemu:///system` (or `test:///default` for tests without a daemon).
    pub uri: String,
    /// The guest's kernel and initramfs (direct kernel boot).
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The disk a server's overlay is made on when its image is not a disk image.
    pub disk: PathBuf,
    /// Where overlays and console logs go.
    pub state_dir: PathBuf,
}

/// One NIC of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicSpec {
    /// The tap's name (what the port's binding names).
    pub interface: String,
    pub mac: String,
    pub bridge: String,
    /// The Neutron port id, when known (becomes the interface's `external_ids:iface-id`).
    pub port_id: Option<String>,
}

/// Everything the domain XML says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSpec {
    pub name: String,
    /// The domain's UUID (the server id when it is one; else libvirt picks one).
    pub uuid: Option<String>,
    pub vcpus: u32,
    pub ram_mb: u64,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
    /// The overlay disk (qcow2); `None` for no disk.
    pub disk: Option<PathBuf>,
    /// The serial console's log file; `None` for no serial port.
    pub console_log: Option<PathBuf>,
    pub nics: Vec<NicSpec>,
}

/// Escapes text for an XML attribute or element.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn esc_path(p: &Path) -> String {
    esc(&p.to_string_lossy())
}

/// The domain XML for `spec` (pure: no I/O).
pub fn domain_xml(spec: &DomainSpec) -> String {
    let mut x = String::new();
    x.push_str("<domain type='qemu'>\n");
    x.push_str(&format!("  <name>{}</name>\n", esc(&spec.name)));
    if let Some(u) = &spec.uuid {
        x.push_str(&format!("  <uuid>{}</uuid>\n", esc(u)));
    }
    x.push_str(&format!("  <memory unit='MiB'>{}</memory>\n", spec.ram_mb.max(MIN_RAM_MB)));
    x.push_str(&format!("  <vcpu>{}</vcpu>\n", spec.vcpus.max(1)));
    x.push_str("  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n");
    x.push_str(&format!("    <kernel>{}</kernel>\n", esc_path(&spec.kernel)));
    x.push_str(&format!("    <initrd>{}</initrd>\n", esc_path(&spec.initrd)));
    x.push_str(&format!("    <cmdline>{}</cmdline>\n", esc(&spec.cmdline)));
    x.push_str("  </os>\n");
    x.push_str(
        "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n",
    );
    x.push_str("  <devices>\n");
    if let Some(disk) = &spec.disk {
        x.push_str("    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n");
        x.push_str(&format!("      <source file='{}'/>\n", esc_path(disk)));
        x.push_str("      <target dev='vda' bus='virtio'/>\n    </disk>\n");
    }
    for nic in &spec.nics {
        x.push_str("    <interface type='bridge'>\n");
        x.push_str(&format!("      <mac address='{}'/>\n", esc(&nic.mac)));
        x.push_str(&format!("      <source bridge='{}'/>\n", esc(&nic.bridge)));
        match &nic.port_id {
            Some(p) => x.push_str(&format!(
                "      <virtualport type='openvswitch'>\n        <parameters interfaceid='{}'/>\n      </virtualport>\n",
                esc(p)
            )),
            None => x.push_str("      <virtualport type='openvswitch'/>\n"),
        }
        x.push_str(&format!("      <target dev='{}'/>\n", esc(&nic.interface)));
        x.push_str("      <model type='virtio'/>\n    </interface>\n");
    }
    if let Some(log) = &spec.console_log {
        x.push_str("    <serial type='file'>\n");
        x.push_str(&format!("      <source path='{}'/>\n", esc_path(log)));
        x.push_str("      <target port='0'/>\n    </serial>\n");
    }
    x.push_str("  </devices>\n</domain>\n");
    x
}

/// The tap names of a domain's interfaces, from its XML (`<target dev='X'/>` inside
/// `<interface>`).
pub fn interface_names(xml: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<interface") {
        let after = &rest[start..];
        let end = after.find("</interface>").unwrap_or(after.len());
        let block = &after[..end];
        if let Some(t) = block.find("<target dev=") {
            let v = &block[t + "<target dev=".len()..];
            if let Some(q) = v.chars().next().filter(|c| *c == '\'' || *c == '"') {
                if let Some(close) = v[1..].find(q) {
                    names.push(v[1..1 + close].to_string());
                }
            }
        }
        rest = &after[end..];
        if end == 0 {
            break;
        }
    }
    names
}

/// The file of the first `<disk>` of a domain XML (`<source file='X'/>`).
pub fn disk_source(xml: &str) -> Option<String> {
    let start = xml.find("<disk")?;
    let block = &xml[start..start + xml[start..].find("</disk>")?];
    attribute(block, "<source file=")
}

/// The value of the first `NAME=` attribute (`<source file=` ...) in `text`, unescaped.
fn attribute(text: &str, prefix: &str) -> Option<String> {
    let v = &text[text.find(prefix)? + prefix.len()..];
    let q = v.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let close = v[1..].find(q)?;
    Some(unesc(&v[1..1 + close]))
}

fn unesc(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&apos;", "'").replace("&quot;", "\"").replace("&amp;", "&")
}

/// Replaces the value `from` of attribute `attr` (`attr='from'` or `attr="from"`) by `to`
/// everywhere in `xml`.
pub fn replace_attribute(xml: &str, attr: &str, from: &str, to: &str) -> String {
    let (from, to) = (esc(from), esc(to));
    xml.replace(&format!("{attr}='{from}'"), &format!("{attr}='{to}'"))
        .replace(&format!("{attr}=\"{from}\""), &format!("{attr}=\"{to}\""))
}

/// What changes in a domain's XML when it moves to another host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relocation {
    /// Tap names: (source, destination).
    pub taps: Vec<(String, String)>,
    /// Bridge names: (source, destination).
    pub bridge: Option<(String, String)>,
    /// Disk file: (source, destination), block migration only.
    pub disk: Option<(String, String)>,
    /// Serial console log: (source, destination).
    pub console: Option<(String, String)>,
}

/// The domain XML at the destination (pure).
pub fn relocate(xml: &str, r: &Relocation) -> String {
    let mut x = xml.to_string();
    for (from, to) in &r.taps {
        x = replace_attribute(&x, "dev", from, to);
    }
    if let Some((from, to)) = &r.bridge {
        x = replace_attribute(&x, "bridge", from, to);
    }
    if let Some((from, to)) = &r.disk {
        x = replace_attribute(&x, "file", from, to);
    }
    if let Some((from, to)) = &r.console {
        x = replace_attribute(&x, "path", from, to);
    }
    x
}

/// The kind of disk image a file holds, from its first bytes: `qcow2`, `raw` (a
/// non-empty multiple of 512 bytes without a known header) or `None`.
pub fn disk_format(path: &Path) -> Option<&'static str> {
    use std::io::Read;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() == 0 {
        return None;
    }
    let mut head = [0u8; 4];
    let mut f = std::fs::File::open(path).ok()?;
    if f.read_exact(&mut head).is_ok() && head == *b"QFI\xfb" {
        return Some("qcow2");
    }
    (meta.len() % 512 == 0).then_some("raw")
}

fn run(cmd: &str, args: &[&str]) -> Result<String, DriverError> {
    let out = Command::new(cmd).args(args).output().map_err(|e| DriverError(format!("{cmd}: {e}")))?;
    if !out.status.success() {
        return Err(DriverError(format!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn lv(what: &str, e: virt::error::Error) -> DriverError {
    DriverError(format!("{what}: {}", e.message()))
}

fn no_domain(e: &virt::error::Error) -> bool {
    matches!(e.code(), Enum::Known(ErrorNumber::NoDomain))
}

fn domain_name(server_id: &str) -> String {
    format!("{PREFIX}{server_id}")
}

fn absolute(p: &Path) -> Result<PathBuf, DriverError> {
    std::fs::canonicalize(p).map_err(|e| {
        DriverError(format!("{}: {e} (labs/guest/build-image.sh builds the guest into target/guest/)", p.display()))
    })
}

static QUIET: Once = Once::new();

pub struct LibvirtDriver {
    config: LibvirtConfig,
    conn: Mutex<Connect>,
    /// Incoming migrations: the stop flag of their tap watcher, by server id.
    incoming: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// Incoming block migrations: the disk made for them, by server id.
    incoming_disks: Mutex<HashMap<String, PathBuf>>,
    /// Outgoing migrations: the disk the domain had here, by server id (deleted after a
    /// block migration).
    outgoing: Mutex<HashMap<String, PathBuf>>,
}

impl LibvirtDriver {
    /// Connects to libvirt and checks the guest's files (paths are made absolute).
    pub fn new(config: LibvirtConfig) -> Result<LibvirtDriver, DriverError> {
        QUIET.call_once(virt::error::clear_error_callback);
        let mut config = config;
        config.kernel = absolute(&config.kernel)?;
        config.initrd = absolute(&config.initrd)?;
        config.disk = absolute(&config.disk)?;
        std::fs::create_dir_all(&config.state_dir)
            .map_err(|e| DriverError(format!("{}: {e}", config.state_dir.display())))?;
        config.state_dir = absolute(&config.state_dir)?;
        let conn = Connect::open(Some(&config.uri)).map_err(|e| {
            DriverError(format!(
                "connecting to libvirt at {}: {} (labs/setup-host.sh installs and starts libvirtd)",
                config.uri,
                e.message()
            ))
        })?;
        Ok(LibvirtDriver {
            config,
            conn: Mutex::new(conn),
            incoming: Mutex::new(HashMap::new()),
            incoming_disks: Mutex::new(HashMap::new()),
            outgoing: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &LibvirtConfig {
        &self.config
    }

    /// The connection (reopened when libvirtd went away).
    fn conn(&self) -> Result<Connect, DriverError> {
        let mut c = self.conn.lock().map_err(|_| DriverError("libvirt connection lock poisoned".into()))?;
        if !c.is_alive().unwrap_or(false) {
            *c = Connect::open(Some(&self.config.uri))
                .map_err(|e| DriverError(format!("reconnecting to libvirt at {}: {}", self.config.uri, e.message())))?;
        }
        Ok(c.clone())
    }

    fn lookup(&self, server_id: &str) -> Result<Option<Domain>, DriverError> {
        let name = domain_name(server_id);
        match self.conn()?.lookup_domain_by_name(&name) {
            Ok(d) => Ok(Some(d)),
            Err(e) if no_domain(&e) => Ok(None),
            Err(e) => Err(lv(&format!("looking up domain {name}"), e)),
        }
    }

    /// The overlay disk of a server.
    pub fn disk_path(&self, server_id: &str) -> PathBuf {
        self.config.state_dir.join(format!("{}.qcow2", domain_name(server_id)))
    }

    /// The serial console log of a server.
    pub fn console_path(&self, server_id: &str) -> PathBuf {
        self.config.state_dir.join(format!("{}.console.log", domain_name(server_id)))
    }

    /// The domain XML for a machine on `bridge`.
    pub fn spec(&self, m: &Machine, bridge: &str) -> DomainSpec {
        DomainSpec {
            name: domain_name(&m.server_id),
            uuid: uuid::Uuid::parse_str(&m.server_id).ok().map(|u| u.hyphenated().to_string()),
            vcpus: m.vcpus,
            ram_mb: m.ram_mb.max(MIN_RAM_MB),
            kernel: self.config.kernel.clone(),
            initrd: self.config.initrd.clone(),
            cmdline: format!("console=ttyS0 quiet tenet.hostname={}", hostname(&m.name)),
            disk: Some(self.disk_path(&m.server_id)),
            console_log: Some(self.console_path(&m.server_id)),
            nics: m
                .nics
                .iter()
                .map(|n| NicSpec {
                    interface: n.interface.clone(),
                    mac: n.mac.clone(),
                    bridge: bridge.to_string(),
                    port_id: n.port_id.clone(),
                })
                .collect(),
        }
    }

    /// Creates the server's overlay on its image (qcow2 or raw) or on the guest's disk.
    fn make_disk(&self, m: &Machine) -> Result<PathBuf, DriverError> {
        let (base, format) = match m.image_path.as_deref().and_then(|p| disk_format(p).map(|f| (p, f))) {
            Some((p, f)) => (absolute(p)?, f),
            None => (self.config.disk.clone(), disk_format(&self.config.disk).unwrap_or("qcow2")),
        };
        let disk = self.disk_path(&m.server_id);
        let _ = std::fs::remove_file(&disk);
        run(
            "qemu-img",
            &["create", "-q", "-f", "qcow2", "-F", format, "-b", &base.to_string_lossy(), &disk.to_string_lossy()],
        )?;
        Ok(disk)
    }

    /// Transmit checksum offload off on the domain's taps (TCP over the OVS userspace
    /// datapath needs it); taps exist only while the domain runs.
    fn taps_tx_off(&self, dom: &Domain) {
        let Ok(xml) = dom.xml_desc(0) else { return };
        for tap in interface_names(&xml) {
            if Path::new("/sys/class/net").join(&tap).exists() {
                if let Err(e) = run("ethtool", &["-K", &tap, "tx", "off"]) {
                    tracing::warn!(interface = %tap, error = %e, "cannot turn off tx checksum offload");
                }
            }
        }
    }

    fn build(&self, m: &Machine, bridge: &str) -> Result<(), DriverError> {
        let name = domain_name(&m.server_id);
        self.make_disk(m)?;
        let log = self.console_path(&m.server_id);
        let _ = std::fs::remove_file(&log);
        let xml = domain_xml(&self.spec(m, bridge));
        let conn = self.conn()?;
        let dom = conn.define_domain_xml(&xml).map_err(|e| lv(&format!("defining domain {name}"), e))?;
        dom.create().map_err(|e| lv(&format!("starting domain {name}"), e))?;
        self.taps_tx_off(&dom);
        Ok(())
    }

    /// The disk file the domain's XML names, if the domain is here and has one.
    fn domain_disk(&self, server_id: &str) -> Result<Option<PathBuf>, DriverError> {
        let Some(dom) = self.lookup(server_id)? else { return Ok(None) };
        let xml = dom.xml_desc(0).map_err(|e| lv(&format!("XML of domain {}", domain_name(server_id)), e))?;
        Ok(disk_source(&xml).map(PathBuf::from))
    }

    /// Stops the tap watcher of an incoming migration.
    fn stop_watching(&self, server_id: &str) {
        if let Ok(mut w) = self.incoming.lock() {
            if let Some(stop) = w.remove(server_id) {
                stop.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Watches (every 5 ms) for `taps` to appear and sets their queue length and offload.
    fn watch_taps(&self, server_id: &str, taps: Vec<String>) {
        let stop = Arc::new(AtomicBool::new(false));
        if let Ok(mut w) = self.incoming.lock() {
            if let Some(old) = w.insert(server_id.to_string(), stop.clone()) {
                old.store(true, Ordering::Relaxed);
            }
        }
        let server = server_id.to_string();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut waiting = taps;
            while !waiting.is_empty() && !stop.load(Ordering::Relaxed) && started.elapsed() < TAP_WATCH_LIMIT {
                waiting.retain(|tap| {
                    if !Path::new("/sys/class/net").join(tap).exists() {
                        return true;
                    }
                    let qlen = MIGRATION_TXQUEUELEN.to_string();
                    if let Err(e) = run("ip", &["link", "set", tap, "txqueuelen", &qlen]) {
                        tracing::warn!(server = %server, interface = %tap, error = %e, "cannot raise txqueuelen");
                    }
                    let _ = run("ethtool", &["-K", tap, "tx", "off"]);
                    tracing::info!(server = %server, interface = %tap, after_ms = started.elapsed().as_millis() as u64, "incoming tap prepared");
                    false
                });
                std::thread::sleep(Duration::from_millis(5));
            }
        });
    }

    /// The domain's state.
    fn state(dom: &Domain, name: &str) -> Result<Enum<DomainState, virt::sys::virDomainState>, DriverError> {
        dom.state().map(|(s, _)| s).map_err(|e| lv(&format!("state of domain {name}"), e))
    }
}

/// A hostname from a server name: letters, digits and `-` (others become `-`), at most 63.
fn hostname(name: &str) -> String {
    let h: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .take(63)
        .collect::<String>()
        .trim_matches('-')
        .to_string();
    if h.is_empty() {
        "guest".into()
    } else {
        h
    }
}

impl Driver for LibvirtDriver {
    fn name(&self) -> &'static str {
        "libvirt"
    }

    fn spawn(&self, m: &Machine, bridge: &str) -> Result<(), DriverError> {
        // Never touch (nor clean up) a machine that is already there.
        if self.lookup(&m.server_id)?.is_some() {
            return Err(DriverError(format!("domain {} already exists", domain_name(&m.server_id))));
        }
        let result = self.build(m, bridge);
        if result.is_err() {
            let _ = self.destroy(&m.server_id, bridge);
        }
        result
    }

    fn set_power(&self, server_id: &str, power: Power) -> Result<(), DriverError> {
        let name = domain_name(server_id);
        let dom = self.lookup(server_id)?.ok_or_else(|| DriverError(format!("no domain {name}")))?;
        let state = Self::state(&dom, &name)?;
        let known = match state {
            Enum::Known(s) => s,
            Enum::Unknown(n) => return Err(DriverError(format!("domain {name} is in an unknown state {n}"))),
        };
        let active = !matches!(known, DomainState::Shutoff | DomainState::Crashed | DomainState::NoState);
        match power {
            Power::Paused => match known {
                DomainState::Paused => Ok(()),
                DomainState::Running | DomainState::Blocked => {
                    dom.suspend().map_err(|e| lv(&format!("pausing domain {name}"), e))
                }
                other => Err(DriverError(format!("cannot pause domain {name}: it is {other:?}"))),
            },
            Power::Running => match known {
                DomainState::Running | DomainState::Blocked => Ok(()),
                DomainState::Paused => dom.resume().map_err(|e| lv(&format!("resuming domain {name}"), e)),
                _ if !active => {
                    // Restores the managed save when there is one, else boots.
                    dom.create().map_err(|e| lv(&format!("starting domain {name}"), e))?;
                    self.taps_tx_off(&dom);
                    Ok(())
                }
                other => Err(DriverError(format!("cannot resume domain {name}: it is {other:?}"))),
            },
            Power::Suspended => {
                if active {
                    dom.managed_save(0).map_err(|e| lv(&format!("saving domain {name}"), e))
                } else if dom.has_managed_save(0).unwrap_or(false) {
                    Ok(())
                } else {
                    Err(DriverError(format!("cannot suspend domain {name}: it is not running")))
                }
            }
            Power::Shutdown => {
                if active {
                    match dom.destroy() {
                        Ok(()) => Ok(()),
                        Err(e) if no_domain(&e) => Ok(()),
                        Err(e) => Err(lv(&format!("stopping domain {name}"), e)),
                    }
                } else {
                    Ok(())
                }
            }
            Power::Gone => Err(DriverError("use destroy".into())),
        }
    }

    fn destroy(&self, server_id: &str, bridge: &str) -> Result<(), DriverError> {
        let name = domain_name(server_id);
        let mut taps = Vec::new();
        let mut files = vec![self.disk_path(server_id), self.console_path(server_id)];
        if let Some(dom) = self.lookup(server_id)? {
            if let Ok(xml) = dom.xml_desc(0) {
                taps = interface_names(&xml);
                // The disk it really uses (after a shared-storage migration: another host's path).
                files.extend(disk_source(&xml).map(PathBuf::from));
                files.extend(
                    attribute(&xml[xml.find("<serial").unwrap_or(xml.len())..], "<source path=").map(PathBuf::from),
                );
            }
            let ignore_gone = |r: Result<(), virt::error::Error>, what: &str| match r {
                Ok(()) => Ok(()),
                Err(e) if no_domain(&e) => Ok(()),
                Err(e) => Err(lv(&format!("{what} domain {name}"), e)),
            };
            if dom.is_active().unwrap_or(false) {
                ignore_gone(dom.destroy(), "stopping")?;
            }
            if dom.has_managed_save(0).unwrap_or(false) {
                ignore_gone(dom.managed_save_remove(0), "removing the saved state of")?;
            }
            if dom.is_persistent().unwrap_or(true) {
                ignore_gone(dom.undefine_flags(virt::sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE), "undefining")?;
            }
        }
        // libvirt removes the taps from the bridge when the domain stops; make sure.
        for tap in taps {
            let _ = run("ovs-vsctl", &["--timeout=5", "--if-exists", "del-port", bridge, &tap]);
        }
        for f in files {
            match std::fs::remove_file(&f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(DriverError(format!("{}: {e}", f.display()))),
            }
        }
        Ok(())
    }

    fn list(&self) -> Vec<String> {
        let Ok(conn) = self.conn() else { return vec![] };
        conn.list_all_domains(0)
            .unwrap_or_default()
            .iter()
            .filter_map(|d| d.name().ok())
            .filter_map(|n| n.strip_prefix(PREFIX).map(str::to_string))
            .collect()
    }

    fn disk_size(&self, server_id: &str) -> Result<Option<u64>, DriverError> {
        let Some(disk) = self.domain_disk(server_id)? else { return Ok(None) };
        // -U: the disk is in use by the running guest.
        let info = run("qemu-img", &["info", "-U", "--output=json", &disk.to_string_lossy()])?;
        let v: serde_json::Value =
            serde_json::from_str(&info).map_err(|e| DriverError(format!("qemu-img info {}: {e}", disk.display())))?;
        v["virtual-size"]
            .as_u64()
            .map(Some)
            .ok_or_else(|| DriverError(format!("qemu-img info {}: no virtual-size", disk.display())))
    }

    fn prepare_incoming(&self, m: &Incoming, _bridge: &str) -> Result<Prepared, DriverError> {
        if self.lookup(&m.server_id)?.is_some() {
            return Err(DriverError(format!("domain {} already exists here", domain_name(&m.server_id))));
        }
        let mut prepared = Prepared { disk_path: None, console_path: Some(self.console_path(&m.server_id)) };
        if m.block {
            let size = m.disk_size.ok_or_else(|| DriverError("block migration of a server without a disk".into()))?;
            // A server that came here by shared-storage migration and goes back may still use
            // this host's usual path: never overwrite an existing disk.
            let mut disk = self.disk_path(&m.server_id);
            if disk.exists() {
                let tag = uuid::Uuid::new_v4().simple().to_string();
                disk = self.config.state_dir.join(format!("{}.{}.qcow2", domain_name(&m.server_id), &tag[..8]));
            }
            run("qemu-img", &["create", "-q", "-f", "qcow2", &disk.to_string_lossy(), &size.to_string()])?;
            if let Ok(mut d) = self.incoming_disks.lock() {
                d.insert(m.server_id.clone(), disk.clone());
            }
            prepared.disk_path = Some(disk);
        }
        self.watch_taps(&m.server_id, m.nics.iter().map(|n| n.dest_interface.clone()).collect());
        Ok(prepared)
    }

    fn migrate(&self, m: &Outgoing) -> Result<(), DriverError> {
        let name = domain_name(&m.server_id);
        let dom = self.lookup(&m.server_id)?.ok_or_else(|| DriverError(format!("no domain {name}")))?;
        let live = dom
            .xml_desc(virt::sys::VIR_DOMAIN_XML_MIGRATABLE)
            .map_err(|e| lv(&format!("migratable XML of domain {name}"), e))?;
        let persistent = dom
            .xml_desc(virt::sys::VIR_DOMAIN_XML_MIGRATABLE | virt::sys::VIR_DOMAIN_XML_INACTIVE)
            .map_err(|e| lv(&format!("inactive XML of domain {name}"), e))?;
        let disk = disk_source(&live);
        let mut r = Relocation {
            taps: m.nics.iter().map(|n| (n.source_interface.clone(), n.dest_interface.clone())).collect(),
            bridge: Some((m.source_bridge.clone(), m.dest_bridge.clone())),
            disk: None,
            console: None,
        };
        if let (Some(from), Some(to)) =
            (attribute(&live[live.find("<serial").unwrap_or(live.len())..], "<source path="), &m.prepared.console_path)
        {
            r.console = Some((from, to.to_string_lossy().into_owned()));
        }
        if m.block {
            let (Some(from), Some(to)) = (&disk, &m.prepared.disk_path) else {
                return Err(DriverError("block migration: the disk or its destination is unknown".into()));
            };
            r.disk = Some((from.clone(), to.to_string_lossy().into_owned()));
        }
        let params = MigrateParameters {
            dest_xml: Some(relocate(&live, &r)),
            persist_xml: Some(relocate(&persistent, &r)),
            ..MigrateParameters::default()
        };
        let mut flags =
            virt::sys::VIR_MIGRATE_LIVE | virt::sys::VIR_MIGRATE_PERSIST_DEST | virt::sys::VIR_MIGRATE_UNDEFINE_SOURCE;
        flags |= if m.block { virt::sys::VIR_MIGRATE_NON_SHARED_DISK } else { virt::sys::VIR_MIGRATE_UNSAFE };
        let dconn = Connect::open(Some(&m.dest_uri)).map_err(|e| {
            DriverError(format!("connecting to the destination's libvirt at {}: {}", m.dest_uri, e.message()))
        })?;
        if let Some(d) = &disk {
            if let Ok(mut o) = self.outgoing.lock() {
                o.insert(m.server_id.clone(), PathBuf::from(d));
            }
        }
        let started = Instant::now();
        let result = dom.migrate3(&dconn, params, flags);
        drop(dconn);
        match result {
            Ok(_) => {
                tracing::info!(server = %m.server_id, block = m.block, ms = started.elapsed().as_millis() as u64, "domain migrated");
                Ok(())
            }
            Err(e) => Err(lv(&format!("migrating domain {name} to {}", m.dest_uri), e)),
        }
    }

    fn finish_incoming(&self, m: &Incoming, _bridge: &str) -> Result<(), DriverError> {
        self.stop_watching(&m.server_id);
        if let Ok(mut d) = self.incoming_disks.lock() {
            d.remove(&m.server_id);
        }
        if let Some(dom) = self.lookup(&m.server_id)? {
            self.taps_tx_off(&dom);
        }
        Ok(())
    }

    fn abort_incoming(&self, m: &Incoming, bridge: &str) -> Result<(), DriverError> {
        self.stop_watching(&m.server_id);
        // libvirt removes a failed incoming domain itself; the disk made for it goes too
        // (never a shared disk: that one is the source's).
        if m.block && self.lookup(&m.server_id)?.is_none() {
            if let Some(disk) = self.incoming_disks.lock().ok().and_then(|mut d| d.remove(&m.server_id)) {
                let _ = std::fs::remove_file(disk);
            }
        }
        for nic in &m.nics {
            let _ = run("ovs-vsctl", &["--timeout=5", "--if-exists", "del-port", bridge, &nic.dest_interface]);
        }
        Ok(())
    }

    fn cleanup_after_outgoing(&self, m: &Outgoing) -> Result<(), DriverError> {
        for nic in &m.nics {
            let _ =
                run("ovs-vsctl", &["--timeout=5", "--if-exists", "del-port", &m.source_bridge, &nic.source_interface]);
        }
        let disk = self.outgoing.lock().ok().and_then(|mut o| o.remove(&m.server_id));
        if m.block {
            // The copy runs at the destination now; the source's overlay goes.
            for f in disk.into_iter().chain([self.disk_path(&m.server_id)]) {
                let _ = std::fs::remove_file(f);
            }
        }
        let _ = std::fs::remove_file(self.console_path(&m.server_id));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: &str = "<domain type='qemu'>\n  <devices>\n    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n      <source file='/s/a/tenet-x.qcow2'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n    <interface type='bridge'>\n      <source bridge='br-a'/>\n      <target dev='tap0123456789a'/>\n    </interface>\n    <serial type='file'>\n      <source path='/s/a/tenet-x.console.log'/>\n    </serial>\n  </devices>\n</domain>\n";

    #[test]
    fn the_destination_xml_renames_taps_bridge_disk_and_console() {
        assert_eq!(disk_source(LIVE).as_deref(), Some("/s/a/tenet-x.qcow2"));
        let r = Relocation {
            taps: vec![("tap0123456789a".into(), "tmv0123456789a".into())],
            bridge: Some(("br-a".into(), "br-b".into())),
            disk: Some(("/s/a/tenet-x.qcow2".into(), "/s/b/tenet-x.qcow2".into())),
            console: Some(("/s/a/tenet-x.console.log".into(), "/s/b/tenet-x.console.log".into())),
        };
        let x = relocate(LIVE, &r);
        assert_eq!(interface_names(&x), vec!["tmv0123456789a".to_string()]);
        for want in ["bridge='br-b'", "file='/s/b/tenet-x.qcow2'", "path='/s/b/tenet-x.console.log'", "dev='vda'"] {
            assert!(x.contains(want), "{want} missing from {x}");
        }
        // Shared storage: the disk stays.
        let x = relocate(LIVE, &Relocation { disk: None, ..r });
        assert!(x.contains("file='/s/a/tenet-x.qcow2'"), "{x}");
        assert_eq!(replace_attribute("<a dev=\"t&amp;1\"/>", "dev", "t&1", "u"), "<a dev=\"u\"/>");
    }
}
