//! The namespace driver's live migration between two "hosts" on one kernel (two driver
//! instances with their own state dirs and OVS bridges): ownership (a host never deletes
//! another's namespace or touches interfaces on another bridge), prepare on the
//! destination, the make-before-break move with `--ns-migration-pause-ms`, the hand-over,
//! and a failed move that leaves the VM as it was. Needs root and Open vSwitch (run
//! labs/setup-host.sh first); it fails without them.

use std::process::Command;
use std::time::{Duration, Instant};

use tenet_compute::driver::namespace::NamespaceDriver;
use tenet_compute::driver::{Driver, Incoming, Machine, MovingNic, Nic, Outgoing, Prepared};
use tenet_compute::protocol::Power;

const SETUP: &str = "run labs/setup-host.sh first";

fn sh(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd).args(args).output().map_err(|e| format!("{cmd}: {e} ({SETUP})"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{tag}{:x}{:04x}", std::process::id() & 0xfff, nanos & 0xffff)
}

/// What the test made, removed on drop (also when it fails).
struct Lab {
    bridges: Vec<String>,
    dir: std::path::PathBuf,
    namespace: String,
    links: Vec<String>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = sh("ip", &["netns", "del", &self.namespace]);
        for l in &self.links {
            let _ = sh("ip", &["link", "del", l]);
        }
        for b in &self.bridges {
            let _ = sh("ovs-vsctl", &["--if-exists", "del-br", b]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn port_bridge(iface: &str) -> Option<String> {
    sh("ovs-vsctl", &["--timeout=10", "port-to-br", iface]).ok()
}

fn exists(link: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(link).exists()
}

/// `ip -n NS ...` output.
fn in_ns(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    sh("ip", &all).unwrap_or_default()
}

#[test]
fn a_namespace_vm_moves_its_nic_between_two_hosts_on_one_kernel() {
    assert!(sh("id", &["-u"]).is_ok_and(|u| u == "0"), "this test needs root: {SETUP}");
    sh("ovs-vsctl", &["--timeout=5", "show"]).unwrap_or_else(|e| panic!("this test needs Open vSwitch ({e}): {SETUP}"));
    let id = uuid::Uuid::new_v4().to_string();
    let (tap, tmv) = (format!("tap{}", &id[..11]), format!("tmv{}", &id[..11]));
    let tag = unique("tnd");
    let lab = Lab {
        bridges: vec![format!("{tag}a"), format!("{tag}b")],
        dir: std::env::temp_dir().join(format!("tenet-nsdrv-{tag}")),
        namespace: format!("tvm-{id}"),
        links: vec![tap.clone(), tmv.clone()],
    };
    for b in &lab.bridges {
        sh("ovs-vsctl", &["add-br", b, "--", "set", "bridge", b, "datapath_type=netdev"]).expect("add-br");
    }
    let (bra, brb) = (lab.bridges[0].as_str(), lab.bridges[1].as_str());
    let pause = Duration::from_millis(300);
    let a = NamespaceDriver::new(&lab.dir.join("a"), pause).unwrap_or_else(|e| panic!("{e}: {SETUP}"));
    let b = NamespaceDriver::new(&lab.dir.join("b"), Duration::ZERO).expect("driver b");
    let mac = "fa:16:3e:0d:00:05";
    let machine = Machine {
        server_id: id.clone(),
        name: "mover".into(),
        vcpus: 1,
        ram_mb: 64,
        image_path: None,
        nics: vec![Nic { interface: tap.clone(), mac: mac.into(), port_id: Some(id.clone()), ip: None }],
    };
    a.spawn(&machine, bra).expect("spawn on a");
    let ns = lab.namespace.clone();
    sh("ip", &["-n", &ns, "addr", "add", "10.77.0.5/24", "dev", "eth0"]).expect("address");
    sh("ip", &["-n", &ns, "route", "add", "default", "via", "10.77.0.1"]).expect("default route");

    // Ownership: b neither lists it nor deletes anything of a's.
    assert!(a.list().contains(&id) && !b.list().contains(&id));
    b.destroy(&id, brb).expect("b's destroy of a server it does not run");
    assert!(std::path::Path::new("/run/netns").join(&ns).exists(), "b deleted a's namespace");
    assert_eq!(port_bridge(&tap).as_deref(), Some(bra), "b touched a's interface");

    // b prepares: the new interface on its bridge with Nova's external ids, the inner end waiting.
    let nics = vec![MovingNic {
        port_id: id.clone(),
        mac: mac.into(),
        source_interface: tap.clone(),
        dest_interface: tmv.clone(),
    }];
    let incoming =
        Incoming { server_id: id.clone(), name: "mover".into(), block: false, disk_size: None, nics: nics.clone() };
    b.prepare_incoming(&incoming, brb).expect("prepare on b");
    assert_eq!(port_bridge(&tmv).as_deref(), Some(brb));
    let ids = sh("ovs-vsctl", &["get", "interface", &tmv, "external_ids"]).expect("external_ids");
    for want in [format!("iface-id=\"{id}\""), format!("vm-id=\"{id}\""), format!("attached-mac=\"{mac}\"")] {
        assert!(ids.contains(&want), "{want} missing from {ids}");
    }
    assert!(exists(&format!("{tmv}g")), "the inner end waits in the root namespace");

    // a moves it (both NICs down for the configured pause), then hands over.
    let out = Outgoing {
        server_id: id.clone(),
        block: false,
        nics: nics.clone(),
        source_bridge: bra.into(),
        dest_bridge: brb.into(),
        dest_uri: String::new(),
        prepared: Prepared::default(),
        power: Power::Running,
    };
    let t = Instant::now();
    a.migrate(&out).expect("migrate");
    assert!(t.elapsed() >= pause, "the pause was not kept: {:?}", t.elapsed());
    // One NIC: the new one, under its own name with `eth0` as alternative name (renaming
    // would need it down: a gap).
    let links = in_ns(&ns, &["-o", "link", "show"]);
    assert_eq!(links.lines().filter(|l| !l.contains(": lo:")).count(), 1, "{links}");
    let eth0 = in_ns(&ns, &["link", "show", "eth0"]);
    assert!(eth0.contains(mac) && eth0.contains(",UP") && eth0.contains(&format!("{tmv}g")), "{eth0}");
    assert!(in_ns(&ns, &["-4", "addr", "show", "dev", "eth0"]).contains("10.77.0.5/24"));
    let routes = in_ns(&ns, &["route", "show", "dev", "eth0"]);
    assert!(routes.contains("default via 10.77.0.1"), "{routes}");
    assert!(!exists(&tap) && port_bridge(&tap).is_none(), "the old veth is left");
    assert!(!exists(&format!("{tmv}g")), "the inner end moved in");
    b.finish_incoming(&incoming, brb).expect("finish");
    a.cleanup_after_outgoing(&out).expect("cleanup");
    assert!(b.list().contains(&id) && !a.list().contains(&id), "ownership moved");

    // Back to a, which fails (a name clash in the guest): nothing changes for the VM.
    let back_nics = vec![MovingNic {
        port_id: id.clone(),
        mac: mac.into(),
        source_interface: tmv.clone(),
        dest_interface: tap.clone(),
    }];
    let back_in = Incoming { nics: back_nics.clone(), ..incoming.clone() };
    a.prepare_incoming(&back_in, bra).expect("prepare on a");
    let clash = format!("{tap}g");
    sh("ip", &["-n", &ns, "link", "add", &clash, "type", "veth", "peer", "name", "clashpeer"]).expect("clash");
    let back = Outgoing { nics: back_nics, source_bridge: brb.into(), dest_bridge: bra.into(), ..out };
    let err = b.migrate(&back).expect_err("the clash makes it fail");
    assert!(err.to_string().contains(&clash), "{err}");
    a.abort_incoming(&back_in, bra).expect("abort");
    assert!(!exists(&tap) && port_bridge(&tap).is_none(), "a's prepared interface is left");
    assert_eq!(port_bridge(&tmv).as_deref(), Some(brb), "the VM's interface moved");
    assert!(in_ns(&ns, &["-4", "addr", "show", "dev", "eth0"]).contains("10.77.0.5/24"));
    assert!(in_ns(&ns, &["route", "show", "dev", "eth0"]).contains("default via 10.77.0.1"));
    sh("ip", &["-n", &ns, "link", "del", &clash]).expect("clash goes");

    // The owner deletes it all.
    a.destroy(&id, bra).expect("a's destroy");
    assert!(std::path::Path::new("/run/netns").join(&ns).exists(), "a deleted b's namespace");
    b.destroy(&id, brb).expect("b's destroy");
    assert!(!std::path::Path::new("/run/netns").join(&ns).exists(), "the namespace is left");
    assert!(!exists(&tmv) && port_bridge(&tmv).is_none(), "{tmv} is left");
}
