//! Learning mode against real Open vSwitch (userspace datapath) in Mininet labs.
//!
//! Needs root and a running OVS (labs/setup-host.sh); fails, never skips, without them.

use std::sync::Arc;
use std::time::Duration;

use tenet_controller::learning::Learning;
use tenet_controller::network::{self, DiscoveryConfig, Network};
use tenet_controller::session::{Controller, Registry, SessionConfig};
use tenet_tests::{ovs_controller_connected, require_root_and_ovs, wait_until, Lab, LAB_LOCK};

/// Starts an in-process controller in learning mode on an ephemeral loopback port.
fn start_controller() -> (tokio::runtime::Runtime, Registry, String, tokio::sync::watch::Sender<bool>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let net = Network::new(DiscoveryConfig::default());
    let ctl = Controller::new(SessionConfig::default(), Arc::new(Learning::with_network(net.clone())));
    let registry = ctl.registry.clone();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind loopback");
    let addr = listener.local_addr().expect("local addr").to_string();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    rt.spawn(network::run(net, registry.clone(), stop_rx.clone()));
    rt.spawn(ctl.serve(listener, stop_rx));
    (rt, registry, addr, stop_tx)
}

fn pingall_is_lossless(topo: &str, protocols: &str, expected_switches: usize) {
    require_root_and_ovs();
    let _serial = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (_rt, registry, addr, _stop) = start_controller();
    let mut lab = Lab::start(topo, &addr, protocols).expect("lab starts");

    let connected = wait_until(Duration::from_secs(30), || registry.switches().len() == expected_switches);
    assert!(connected, "{} of {expected_switches} switches completed the handshake", registry.switches().len());
    let want_version = if protocols.contains("13") { 4 } else { 1 };
    for sw in registry.switches() {
        assert_eq!(sw.info.version, want_version, "negotiated version of {:016x}", sw.info.dpid);
    }

    let result = lab.step("pingall").expect("pingall");
    assert_eq!(result["dropped_pct"].as_f64(), Some(0.0), "pingall over {topo} ({protocols}): {result}");

    // OVS's own view lags the handshake by seconds (machine-facts), so poll it.
    for br in lab.bridges().expect("bridges") {
        assert!(wait_until(Duration::from_secs(20), || ovs_controller_connected(&br)), "ovs-vsctl: {br} not connected");
    }
}

#[test]
fn learning_linear_4_of13_pingall_loses_nothing() {
    pingall_is_lossless("linear,4", "OpenFlow13", 4);
}

#[test]
fn learning_tree_2_3_of13_pingall_loses_nothing() {
    pingall_is_lossless("tree,2,3", "OpenFlow13", 4);
}

#[test]
fn learning_linear_3_of10_pingall_loses_nothing() {
    pingall_is_lossless("linear,3", "OpenFlow10", 3);
}

#[test]
fn learning_tree_2_2_of10_pingall_loses_nothing() {
    pingall_is_lossless("tree,2,2", "OpenFlow10", 3);
}
