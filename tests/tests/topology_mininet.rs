//! Discovery and the topology API against real Open vSwitch (userspace datapath) in Mininet.
//!
//! Needs root and a running OVS (labs/setup-host.sh); fails, never skips, without them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tenet_controller::api::{self, ApiState};
use tenet_controller::learning::Learning;
use tenet_controller::network::{self, DiscoveryConfig, Network};
use tenet_controller::session::{Controller, SessionConfig};
use tenet_tests::{http_get, http_post, require_root_and_ovs, wait_until, Lab, LAB_LOCK};

struct Platform {
    _rt: tokio::runtime::Runtime,
    of_addr: String,
    api: String,
    _stop: tokio::sync::watch::Sender<bool>,
}

/// The controller in learning mode with discovery and the topology API, on loopback.
fn start() -> Platform {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let net = Network::new(DiscoveryConfig::default());
    let ctl = Controller::new(SessionConfig::default(), Arc::new(Learning::with_network(net.clone())));
    let registry = ctl.registry.clone();
    let of = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let api_l = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let of_addr = of.local_addr().expect("addr").to_string();
    let api = api_l.local_addr().expect("addr").to_string();
    let (stop, rx) = tokio::sync::watch::channel(false);
    rt.spawn(api::serve(
        api_l,
        ApiState { network: net.clone(), registry: registry.clone(), tenant: None },
        rx.clone(),
    ));
    rt.spawn(network::run(net, registry, rx.clone()));
    rt.spawn(ctl.serve(of, rx));
    Platform { _rt: rt, of_addr, api, _stop: stop }
}

type LinkSet = BTreeSet<(String, u64, String, u64)>;

/// Directed links as Mininet built them, by dpid.
fn lab_links(lab: &mut Lab) -> LinkSet {
    let sw = lab.step("switches").expect("switches");
    let dpid_of = |name: &str| -> String {
        sw["switches"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == name))
            .and_then(|s| s["dpid"].as_str())
            .map(str::to_string)
            .unwrap_or_default()
    };
    let v = lab.step("links").expect("links");
    let mut set = LinkSet::new();
    for l in v["links"].as_array().cloned().unwrap_or_default() {
        let (a, pa, b, pb) =
            (dpid_of(l[0].as_str().unwrap_or("")), l[1].as_u64(), dpid_of(l[2].as_str().unwrap_or("")), l[3].as_u64());
        let (Some(pa), Some(pb)) = (pa, pb) else { continue };
        set.insert((a.clone(), pa, b.clone(), pb));
        set.insert((b, pb, a, pa));
    }
    set
}

/// Directed links as the API reports them.
fn api_links(api: &str) -> LinkSet {
    let Ok((200, Value::Array(links))) = http_get(api, "/v1/links") else { return LinkSet::new() };
    links
        .iter()
        .filter_map(|l| {
            Some((
                l["src"]["dpid"].as_str()?.to_string(),
                l["src"]["port"].as_u64()?,
                l["dst"]["dpid"].as_str()?.to_string(),
                l["dst"]["port"].as_u64()?,
            ))
        })
        .collect()
}

/// Brings up `topo`, waits for discovery, and checks links and hosts against Mininet exactly.
fn discover(topo: &str) -> (Platform, Lab, Duration) {
    require_root_and_ovs();
    let p = start();
    let t0 = Instant::now();
    let mut lab = Lab::start(topo, &p.of_addr, "OpenFlow13").expect("lab starts");
    let want = lab_links(&mut lab);
    assert!(!want.is_empty() || topo.starts_with("linear,1"), "lab has no links");
    let found = wait_until(Duration::from_secs(60), || api_links(&p.api) == want);
    let took = t0.elapsed();
    let got = api_links(&p.api);
    assert!(
        found,
        "links differ from Mininet's after 60 s.\nmissing: {:?}\nextra: {:?}",
        want.difference(&got),
        got.difference(&want)
    );
    eprintln!("{topo}: {} directed links discovered {took:?} after the lab started", want.len());
    // Links must stay exactly right for a few LLDP rounds (no flapping, nothing aged out wrongly).
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(api_links(&p.api), want, "links changed without a cause");
    (p, lab, took)
}

/// Every host is found at the switch and port Mininet attached it to (after traffic).
fn hosts_are_where_mininet_put_them(p: &Platform, lab: &mut Lab) {
    let r = lab.step("pingall").expect("pingall");
    assert_eq!(r["dropped_pct"].as_f64(), Some(0.0), "pingall: {r}");
    let sw = lab.step("switches").expect("switches");
    let hosts = lab.step("hosts").expect("hosts");
    let (status, api_hosts) = http_get(&p.api, "/v1/hosts").expect("GET /v1/hosts");
    assert_eq!(status, 200);
    for h in hosts["hosts"].as_array().cloned().unwrap_or_default() {
        let dpid = sw["switches"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == h["switch"]))
            .and_then(|s| s["dpid"].as_str())
            .unwrap_or_default()
            .to_string();
        let found = api_hosts.as_array().and_then(|a| a.iter().find(|x| x["mac"] == h["mac"]));
        let Some(found) = found else { panic!("host {} ({}) not in /v1/hosts", h["name"], h["mac"]) };
        assert_eq!(found["at"]["dpid"].as_str(), Some(dpid.as_str()), "host {} switch", h["name"]);
        assert_eq!(found["at"]["port"], h["port"], "host {} port", h["name"]);
        let ips: Vec<&str> =
            found["ips"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        assert!(ips.contains(&h["ip"].as_str().unwrap_or("?")), "host {} ips {ips:?}", h["name"]);
    }
}

#[test]
fn linear_10_links_and_hosts_match_mininet() {
    let _serial = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (p, mut lab, _) = discover("linear,10");
    hosts_are_where_mininet_put_them(&p, &mut lab);
}

#[test]
fn tree_2_3_links_and_hosts_match_mininet() {
    let _serial = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (p, mut lab, _) = discover("tree,2,3");
    hosts_are_where_mininet_put_them(&p, &mut lab);

    // Flows are read live from the switch: the table-miss flow and the learned ones are there.
    let (status, flows) = http_get(&p.api, "/v1/switches/0000000000000001/flows").expect("GET flows");
    assert_eq!(status, 200, "{flows}");
    let flows = flows.as_array().cloned().unwrap_or_default();
    let table_miss = flows.iter().find(|f| f["priority"] == 0).expect("table-miss flow on s1");
    assert_eq!(table_miss["instructions"][0], "apply_actions(output:controller)");
    assert!(
        flows.iter().any(|f| f["priority"] == 1 && f["cookie"] == "0x7e7e000000000001"),
        "no learned flow after pingall: {flows:?}"
    );
    let (status, sw) = http_get(&p.api, "/v1/switches/0x1").expect("GET switch");
    assert_eq!(status, 200);
    assert_eq!(sw["connection"]["version"], "1.3");
    assert_eq!(sw["ports"].as_array().map(Vec::len), Some(4), "s1 has 3 downlinks + LOCAL: {sw}");
}

#[test]
fn fat_tree_k4_links_and_hosts_match_mininet() {
    let _serial = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (p, mut lab, _) = discover("fattree,4");
    hosts_are_where_mininet_put_them(&p, &mut lab);
    // Edge switches in different pods: 4 equal-cost paths of 5 switches.
    let hosts = lab.step("hosts").expect("hosts");
    let hs = hosts["hosts"].as_array().cloned().unwrap_or_default();
    let (a, b) = (&hs[0], &hs[hs.len() - 1]);
    let q = format!(
        "/v1/paths?src={}&dst={}&mode=ecmp&k=8",
        a["mac"].as_str().unwrap_or(""),
        b["mac"].as_str().unwrap_or("")
    );
    let (status, paths) = http_get(&p.api, &q).expect("paths");
    assert_eq!(status, 200, "{paths}");
    let paths = paths.as_array().cloned().unwrap_or_default();
    assert_eq!(paths.len(), 4, "ECMP paths between pods: {paths:?}");
    for path in &paths {
        assert_eq!(path["hops"].as_array().map(Vec::len), Some(5));
        assert_eq!(path["hops"][0]["in_port"], a["port"]);
    }
}

#[test]
fn ring_survives_a_cut_link() {
    let _serial = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (p, mut lab, _) = discover("ring,4");
    hosts_are_where_mininet_put_them(&p, &mut lab);
    let names = lab.bridges().expect("bridges");
    let (s1, s2) = (&names[0], &names[1]);
    let before = api_links(&p.api).len();
    lab.step(&format!("link {s1} {s2} down")).expect("link down");
    // PORT_STATUS removes both directions of the cable at once.
    assert!(wait_until(Duration::from_secs(10), || api_links(&p.api).len() == before - 2), "cut link still reported");
    let r = lab.step("pingall").expect("pingall after the cut");
    assert_eq!(r["dropped_pct"].as_f64(), Some(0.0), "pingall after cutting {s1}-{s2}: {r}");
}

#[test]
fn api_errors_are_clear() {
    let _serial = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let p = start();
    let (s, v) = http_get(&p.api, "/v1/switches/00000000000000ff").expect("get");
    assert_eq!(s, 404);
    assert!(v["error"].as_str().unwrap_or("").contains("no switch"), "{v}");
    let (s, v) = http_get(&p.api, "/v1/switches/not-a-dpid").expect("get");
    assert_eq!(s, 400, "{v}");
    let (s, v) = http_get(&p.api, "/v1/paths?src=00:00:00:00:00:01").expect("get");
    assert_eq!(s, 400, "{v}");
    let (s, v) = http_get(&p.api, "/v1/paths?src=00:00:00:00:00:01&dst=10.9.9.9").expect("get");
    assert_eq!(s, 404, "{v}");
    let (s, _) = http_post(&p.api, "/v1/switches/1/drain").expect("post");
    assert_eq!(s, 404);
    let (s, doc) = http_get(&p.api, "/v1/openapi.json").expect("get");
    assert_eq!(s, 200);
    assert!(doc["paths"]["/v1/paths"].is_object());
}
