//! The libvirt driver.
//!
//! - The domain XML is a pure function, checked as text.
//! - The lifecycle (define, start, pause, resume, managed save, restore, shut down,
//!   destroy, list) runs on libvirt's in-process `test:///default` driver (no daemon;
//!   it accepts bridge interfaces but plugs nothing anywhere).
//! - `real_guest_boots_on_ovs` boots the tenet guest (labs/guest/build-image.sh) on
//!   `qemu:///system` under TCG with one NIC on a fresh OVS netdev bridge, and checks its
//!   serial console, the tap on the bridge, the power changes and the clean-up. It needs
//!   root, Open vSwitch and libvirtd: run labs/setup-host.sh first (it fails without them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tenet_compute::driver::libvirt::{
    disk_format, domain_xml, interface_names, DomainSpec, LibvirtConfig, LibvirtDriver, NicSpec,
};
use tenet_compute::driver::{Driver, Machine, Nic};
use tenet_compute::protocol::Power;
use virt::connect::Connect;
use virt::domain::DomainState;
use virt::enumutil::Enum;

const SETUP: &str = "run labs/setup-host.sh first";

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{tag}{:x}{:05x}", std::process::id(), nanos & 0xfffff)
}

fn sh(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd).args(args).output().map_err(|e| format!("{cmd}: {e} ({SETUP})"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// A scratch directory (readable by QEMU's user), removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(unique(&format!("tenet-lv-{tag}-")));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        sh("chmod", &["0755", &dir.to_string_lossy()]).expect("chmod");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn qcow2(path: &Path, size: &str) {
    sh("qemu-img", &["create", "-q", "-f", "qcow2", &path.to_string_lossy(), size])
        .unwrap_or_else(|e| panic!("qemu-img (qemu-utils) is needed: {e}; {SETUP}"));
}

#[test]
fn domain_xml_has_direct_boot_disk_nics_and_console() {
    let spec = DomainSpec {
        name: "tenet-abc".into(),
        uuid: Some("0b9b1c5e-7d36-4a5e-9f39-8f1d2f0e1a11".into()),
        vcpus: 2,
        ram_mb: 64,
        kernel: "/g/vmlinuz".into(),
        initrd: "/g/initrd.img".into(),
        cmdline: "console=ttyS0 quiet tenet.hostname=a&b".into(),
        disk: Some("/s/tenet-abc.qcow2".into()),
        console_log: Some("/s/tenet-abc.console.log".into()),
        nics: vec![
            NicSpec {
                interface: "tap0123456789a".into(),
                mac: "fa:16:3e:00:00:01".into(),
                bridge: "br-int".into(),
                port_id: Some("0123456789ab-port".into()),
            },
            NicSpec {
                interface: "tapbbbbbbbbbbb".into(),
                mac: "fa:16:3e:00:00:02".into(),
                bridge: "br-int".into(),
                port_id: None,
            },
        ],
    };
    let x = domain_xml(&spec);
    for want in [
        "<domain type='qemu'>",
        "<name>tenet-abc</name>",
        "<uuid>0b9b1c5e-7d36-4a5e-9f39-8f1d2f0e1a11</uuid>",
        "<memory unit='MiB'>128</memory>", // clamped up from 64
        "<vcpu>2</vcpu>",
        "<kernel>/g/vmlinuz</kernel>",
        "<initrd>/g/initrd.img</initrd>",
        "<cmdline>console=ttyS0 quiet tenet.hostname=a&amp;b</cmdline>",
        "<driver name='qemu' type='qcow2'/>",
        "<source file='/s/tenet-abc.qcow2'/>",
        "<target dev='vda' bus='virtio'/>",
        "<interface type='bridge'>",
        "<mac address='fa:16:3e:00:00:01'/>",
        "<source bridge='br-int'/>",
        "<parameters interfaceid='0123456789ab-port'/>",
        "<virtualport type='openvswitch'/>",
        "<target dev='tap0123456789a'/>",
        "<model type='virtio'/>",
        "<serial type='file'>",
        "<source path='/s/tenet-abc.console.log'/>",
    ] {
        assert!(x.contains(want), "missing {want:?} in\n{x}");
    }
    assert_eq!(x.matches("<interface type='bridge'>").count(), 2);
    assert_eq!(interface_names(&x), vec!["tap0123456789a".to_string(), "tapbbbbbbbbbbb".to_string()]);

    let bare = domain_xml(&DomainSpec { disk: None, console_log: None, nics: vec![], uuid: None, ..spec });
    assert!(!bare.contains("<disk") && !bare.contains("<interface") && !bare.contains("<serial"), "{bare}");
    assert!(!bare.contains("<uuid>"));
    assert!(interface_names(&bare).is_empty());
}

#[test]
fn disk_formats_are_recognised() {
    let dir = Scratch::new("fmt");
    let q = dir.0.join("a.qcow2");
    qcow2(&q, "1M");
    assert_eq!(disk_format(&q), Some("qcow2"));
    let raw = dir.0.join("b.raw");
    std::fs::write(&raw, vec![0u8; 4096]).expect("write");
    assert_eq!(disk_format(&raw), Some("raw"));
    let text = dir.0.join("c.txt");
    std::fs::write(&text, "not a disk").expect("write");
    assert_eq!(disk_format(&text), None);
    assert_eq!(disk_format(&dir.0.join("missing")), None);
}

fn state(conn: &Connect, name: &str) -> Option<DomainState> {
    let dom = conn.lookup_domain_by_name(name).ok()?;
    match dom.state() {
        Ok((Enum::Known(s), _)) => Some(s),
        other => panic!("state of {name}: {other:?}"),
    }
}

/// The whole lifecycle on libvirt's in-process test driver.
#[test]
fn lifecycle_on_the_test_driver() {
    let dir = Scratch::new("test");
    let (kernel, initrd, disk, image) =
        (dir.0.join("vmlinuz"), dir.0.join("initrd.img"), dir.0.join("disk.qcow2"), dir.0.join("image.qcow2"));
    std::fs::write(&kernel, b"kernel").expect("write");
    std::fs::write(&initrd, b"initrd").expect("write");
    qcow2(&disk, "1M");
    qcow2(&image, "2M");
    let driver = LibvirtDriver::new(LibvirtConfig {
        uri: "test:///default".into(),
        kernel,
        initrd,
        disk: disk.clone(),
        state_dir: dir.0.join("state"),
    })
    .expect("test:///default driver");
    assert_eq!(driver.name(), "libvirt");
    // A second connection to the same in-process state, to look from outside.
    let conn = Connect::open(Some("test:///default")).expect("test:///default");

    let a = unique("a");
    let b = unique("b");
    let machine = |id: &str, image: Option<PathBuf>| Machine {
        server_id: id.into(),
        name: format!("vm {id}"),
        vcpus: 1,
        ram_mb: 64,
        image_path: image,
        nics: vec![Nic {
            interface: format!("tap{}", &id[..id.len().min(11)]),
            mac: "fa:16:3e:00:00:0a".into(),
            port_id: None,
            ip: None,
        }],
    };
    driver.spawn(&machine(&a, None), "br-none").expect("spawn a");
    driver.spawn(&machine(&b, Some(image.clone())), "br-none").expect("spawn b");
    let (na, nb) = (format!("tenet-{a}"), format!("tenet-{b}"));
    assert_eq!(state(&conn, &na), Some(DomainState::Running));
    let listed = driver.list();
    assert!(listed.contains(&a) && listed.contains(&b), "{listed:?}");
    assert!(!listed.iter().any(|s| s == "test"), "the test driver's own domain is not ours: {listed:?}");
    assert!(driver.spawn(&machine(&a, None), "br-none").is_err(), "a second spawn of the same server fails");
    assert_eq!(state(&conn, &na), Some(DomainState::Running), "and leaves the first alone");

    // Overlays: on the guest disk, or on the server's own qcow2 image.
    let info = |id: &str| sh("qemu-img", &["info", "--output=json", &driver.disk_path(id).to_string_lossy()]);
    let ia = info(&a).expect("overlay of a");
    assert!(ia.contains(&disk.to_string_lossy().to_string()), "{ia}");
    let ib = info(&b).expect("overlay of b");
    assert!(ib.contains(&image.to_string_lossy().to_string()), "{ib}");

    // Domain XML as defined: memory clamped, hostname on the command line.
    let xml = conn.lookup_domain_by_name(&na).and_then(|d| d.xml_desc(0)).expect("xml");
    assert!(xml.contains(&format!("tenet.hostname=vm-{a}")), "{xml}");
    assert!(xml.contains("<memory unit='KiB'>131072</memory>"), "{xml}");
    assert_eq!(interface_names(&xml), vec![format!("tap{}", &a[..a.len().min(11)])], "{xml}");
    assert!(xml.contains("<source bridge='br-none'/>") && xml.contains("<mac address='fa:16:3e:00:00:0a'/>"), "{xml}");

    driver.set_power(&a, Power::Paused).expect("pause");
    assert_eq!(state(&conn, &na), Some(DomainState::Paused));
    driver.set_power(&a, Power::Paused).expect("pause twice");
    driver.set_power(&a, Power::Running).expect("unpause");
    assert_eq!(state(&conn, &na), Some(DomainState::Running));

    driver.set_power(&a, Power::Suspended).expect("suspend (managed save)");
    assert_eq!(state(&conn, &na), Some(DomainState::Shutoff));
    assert!(conn.lookup_domain_by_name(&na).and_then(|d| d.has_managed_save(0)).expect("managed save?"));
    driver.set_power(&a, Power::Running).expect("resume (restore)");
    assert_eq!(state(&conn, &na), Some(DomainState::Running));
    assert!(!conn.lookup_domain_by_name(&na).and_then(|d| d.has_managed_save(0)).expect("managed save?"));

    // Suspend from paused, then delete while saved.
    driver.set_power(&b, Power::Paused).expect("pause b");
    driver.set_power(&b, Power::Suspended).expect("suspend b");
    assert_eq!(state(&conn, &nb), Some(DomainState::Shutoff));

    driver.set_power(&a, Power::Shutdown).expect("shut down");
    assert_eq!(state(&conn, &na), Some(DomainState::Shutoff), "still defined");
    assert!(driver.list().contains(&a));
    assert!(driver.set_power(&a, Power::Paused).is_err(), "a stopped domain cannot be paused");
    driver.set_power(&a, Power::Running).expect("start again");
    assert_eq!(state(&conn, &na), Some(DomainState::Running));

    for id in [&a, &b] {
        driver.destroy(id, "br-none").expect("destroy");
        driver.destroy(id, "br-none").expect("destroy is idempotent");
        assert!(!driver.disk_path(id).exists(), "overlay removed");
    }
    assert_eq!(state(&conn, &na), None);
    assert_eq!(state(&conn, &nb), None);
    let listed = driver.list();
    assert!(!listed.contains(&a) && !listed.contains(&b), "{listed:?}");
    assert!(driver.set_power(&a, Power::Running).is_err(), "no such domain any more");

    // A failed spawn leaves nothing (the image's overlay cannot be made).
    let c = unique("c");
    let bad = LibvirtDriver::new(LibvirtConfig {
        uri: "test:///default".into(),
        kernel: dir.0.join("vmlinuz"),
        initrd: dir.0.join("initrd.img"),
        disk: dir.0.join("initrd.img"), // not a disk image: qemu-img refuses it as a backing file
        state_dir: dir.0.join("state"),
    })
    .expect("driver");
    assert!(bad.spawn(&machine(&c, None), "br-none").is_err());
    assert_eq!(state(&conn, &format!("tenet-{c}")), None);
    assert!(!bad.disk_path(&c).exists());
}

// --- the real thing ----------------------------------------------------------------

struct Bridge(String);

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = sh("ovs-vsctl", &["--timeout=10", "--if-exists", "del-br", &self.0]);
    }
}

/// Destroys the server whatever happens to the test.
struct Server<'a> {
    driver: &'a LibvirtDriver,
    id: String,
    bridge: String,
}

impl Drop for Server<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.driver.destroy(&self.id, &self.bridge) {
            eprintln!("cleanup of {}: {e}", self.id);
        }
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn port_bridge(iface: &str) -> Option<String> {
    sh("ovs-vsctl", &["--timeout=10", "port-to-br", iface]).ok()
}

#[test]
fn real_guest_boots_on_ovs() {
    assert!(sh("id", &["-u"]).is_ok_and(|u| u == "0"), "this test needs root: {SETUP}");
    sh("ovs-vsctl", &["--timeout=5", "show"])
        .unwrap_or_else(|e| panic!("this test needs a running Open vSwitch ({e}): {SETUP}"));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let guest = repo.join("target/guest");
    sh("bash", &[&repo.join("labs/guest/build-image.sh").to_string_lossy(), &guest.to_string_lossy()])
        .unwrap_or_else(|e| panic!("building the guest failed: {e}; {SETUP}"));

    let dir = Scratch::new("real");
    let driver = LibvirtDriver::new(LibvirtConfig {
        uri: "qemu:///system".into(),
        kernel: guest.join("vmlinuz"),
        initrd: guest.join("initrd.img"),
        disk: guest.join("disk.qcow2"),
        state_dir: dir.0.join("state"),
    })
    .unwrap_or_else(|e| panic!("libvirtd is needed ({e}): {SETUP}"));
    sh("chmod", &["0755", &dir.0.join("state").to_string_lossy()]).expect("chmod");

    let br = Bridge(unique("tlv"));
    sh("ovs-vsctl", &["--timeout=10", "add-br", &br.0, "--", "set", "bridge", &br.0, "datapath_type=netdev"])
        .expect("add-br");

    let id = uuid::Uuid::new_v4().to_string();
    let tap = format!("tap{}", &id[..11]);
    let mac = "fa:16:3e:7e:57:01";
    let server = Server { driver: &driver, id: id.clone(), bridge: br.0.clone() };
    let machine = Machine {
        server_id: id.clone(),
        name: "lvtest".into(),
        vcpus: 1,
        ram_mb: 256,
        image_path: None,
        nics: vec![Nic { interface: tap.clone(), mac: mac.into(), port_id: Some(id.clone()), ip: None }],
    };
    driver.spawn(&machine, &br.0).expect("spawn");
    let conn = Connect::open(Some("qemu:///system")).expect("qemu:///system");
    let name = format!("tenet-{id}");
    assert_eq!(state(&conn, &name), Some(DomainState::Running));
    assert!(driver.list().contains(&id));

    // The tap has the agent's name, is on the bridge with the MAC, tx offload off.
    assert_eq!(port_bridge(&tap).as_deref(), Some(br.0.as_str()), "tap {tap} on {}", br.0);
    let ids = sh("ovs-vsctl", &["--timeout=10", "get", "interface", &tap, "external_ids"]).expect("external_ids");
    assert!(ids.contains(mac), "{ids}");
    let offload = sh("ethtool", &["-k", &tap]).expect("ethtool -k");
    assert!(offload.contains("tx-checksumming: off"), "{offload}");

    // The guest boots: its console says so (no DHCP server on this bridge: it gives up
    // waiting for a lease and comes up anyway).
    let console = driver.console_path(&id);
    let read = || std::fs::read_to_string(&console).unwrap_or_default();
    wait_for("the guest's console line `tenet-guest: up lvtest`", Duration::from_secs(120), || {
        read().contains("tenet-guest: up lvtest")
    });
    let log = read();
    assert!(log.contains("tenet-guest: eth0 tx checksum offload off"), "{log}");

    driver.set_power(&id, Power::Paused).expect("pause");
    assert_eq!(state(&conn, &name), Some(DomainState::Paused));
    driver.set_power(&id, Power::Running).expect("unpause");
    assert_eq!(state(&conn, &name), Some(DomainState::Running));

    driver.set_power(&id, Power::Suspended).expect("suspend");
    assert_eq!(state(&conn, &name), Some(DomainState::Shutoff));
    assert!(conn.lookup_domain_by_name(&name).and_then(|d| d.has_managed_save(0)).expect("managed save?"));
    assert_eq!(port_bridge(&tap), None, "the tap goes while the guest is saved");
    driver.set_power(&id, Power::Running).expect("resume");
    assert_eq!(state(&conn, &name), Some(DomainState::Running));
    assert_eq!(port_bridge(&tap).as_deref(), Some(br.0.as_str()), "the tap is back");
    let offload = sh("ethtool", &["-k", &tap]).expect("ethtool -k");
    assert!(offload.contains("tx-checksumming: off"), "after restore: {offload}");

    driver.set_power(&id, Power::Shutdown).expect("shut down");
    assert_eq!(state(&conn, &name), Some(DomainState::Shutoff));
    assert!(driver.list().contains(&id), "a shut-down server stays defined");

    drop(server);
    assert_eq!(state(&conn, &name), None, "domain undefined");
    assert!(!driver.list().contains(&id));
    assert_eq!(port_bridge(&tap), None, "no OVS port left");
    assert!(!driver.disk_path(&id).exists(), "overlay removed");
    driver.destroy(&id, &br.0).expect("destroy is idempotent");
}
