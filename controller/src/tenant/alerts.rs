//! IPS alerts attributed to tenant ports. An IPS instance (port pair) ships its
//! Suricata EVE JSON events to `POST /v1/ips/events?port_pair=ID` (`tenet-controller
//! ips-ship` follows an eve.json and does that); alert and drop events are matched to
//! the chain the instance serves and to the ports of its network that own the source
//! and destination addresses, and kept (the newest [`KEEP`]) for
//! `GET /v1/ips/alerts?project_id=&port_id=`.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use super::state::State;

/// Alerts kept.
pub const KEEP: usize = 10_000;

/// One IPS event, attributed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// Suricata's timestamp.
    pub timestamp: String,
    /// `alert` or `drop`.
    pub event_type: String,
    /// What the IPS did: `blocked`, `allowed` (alerts), or `drop`.
    pub action: String,
    pub signature_id: Option<u64>,
    pub signature: Option<String>,
    pub proto: Option<String>,
    pub src_ip: String,
    pub src_port: Option<u64>,
    pub dest_ip: String,
    pub dest_port: Option<u64>,
    pub port_pair: String,
    pub port_chain: Option<String>,
    pub network_id: Option<String>,
    /// The project of the chain (whose tenant's log this is).
    pub project_id: Option<String>,
    /// The tenant ports that own the addresses, when on the chain's network.
    pub src_port_id: Option<String>,
    pub dest_port_id: Option<String>,
}

/// What an upload did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ingested {
    /// Alert and drop events kept.
    pub alerts: usize,
    /// Other event types (stats, flow ...), ignored.
    pub ignored: usize,
    /// Lines that are not JSON objects.
    pub malformed: usize,
}

/// The kept alerts.
#[derive(Debug, Default)]
pub struct Alerts {
    kept: Mutex<VecDeque<Alert>>,
}

impl Alerts {
    /// Attributes and keeps the alert/drop events among `lines` (EVE JSON, one per line)
    /// from instance `pair`.
    pub fn ingest(&self, state: &State, pair: &str, lines: &str) -> Ingested {
        let mut done = Ingested::default();
        let mut new = Vec::new();
        for line in lines.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                done.malformed += 1;
                continue;
            };
            if !v.is_object() {
                done.malformed += 1;
                continue;
            }
            match attribute(state, pair, &v) {
                Some(a) => new.push(a),
                None => done.ignored += 1,
            }
        }
        done.alerts = new.len();
        if let Ok(mut kept) = self.kept.lock() {
            kept.extend(new);
            while kept.len() > KEEP {
                kept.pop_front();
            }
        }
        done
    }

    /// Kept alerts, oldest first, of `project` and/or involving `port`.
    pub fn list(&self, project: Option<&str>, port: Option<&str>) -> Vec<Alert> {
        let Ok(kept) = self.kept.lock() else { return vec![] };
        kept.iter()
            .filter(|a| project.map_or(true, |p| a.project_id.as_deref() == Some(p)))
            .filter(|a| {
                port.map_or(true, |p| a.src_port_id.as_deref() == Some(p) || a.dest_port_id.as_deref() == Some(p))
            })
            .cloned()
            .collect()
    }
}

/// An alert for an EVE `alert` or `drop` event; None for other events.
fn attribute(state: &State, pair: &str, v: &Value) -> Option<Alert> {
    let event_type = v.get("event_type")?.as_str()?;
    if event_type != "alert" && event_type != "drop" {
        return None;
    }
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let num = |k: &str| v.get(k).and_then(Value::as_u64);
    let alert = v.get("alert");
    let chain = state.port_chains.values().find(|c| {
        c.groups.iter().filter_map(|g| state.port_pair_groups.get(g)).any(|g| g.port_pairs.iter().any(|p| p == pair))
    });
    let network = state.port_pairs.get(pair).and_then(|p| state.ports.get(&p.ingress)).map(|p| p.network_id.clone());
    let owner = |ip: &str| -> Option<String> {
        let ip: Ipv4Addr = ip.parse().ok()?;
        let net = network.as_ref()?;
        state.ports.values().find(|p| &p.network_id == net && p.ips.iter().any(|(_, a)| *a == ip)).map(|p| p.id.clone())
    };
    let (src_ip, dest_ip) = (text("src_ip").unwrap_or_default(), text("dest_ip").unwrap_or_default());
    Some(Alert {
        timestamp: text("timestamp").unwrap_or_default(),
        event_type: event_type.to_string(),
        action: alert
            .and_then(|a| a.get("action"))
            .and_then(Value::as_str)
            .map_or_else(|| event_type.to_string(), str::to_string),
        signature_id: alert.and_then(|a| a.get("signature_id")).and_then(Value::as_u64),
        signature: alert.and_then(|a| a.get("signature")).and_then(Value::as_str).map(str::to_string),
        proto: text("proto"),
        src_port: num("src_port"),
        dest_port: num("dest_port"),
        port_pair: pair.to_string(),
        port_chain: chain.map(|c| c.id.clone()),
        network_id: network.clone(),
        project_id: chain.map(|c| c.project_id.clone()),
        src_port_id: owner(&src_ip),
        dest_port_id: owner(&dest_ip),
        src_ip,
        dest_ip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::compile::test_support::world;

    #[test]
    fn alerts_are_attributed_to_the_chain_project_and_ports_of_its_network() {
        let (mut st, _) = world();
        st.apply("port", "ips", false, r#"{"network_id":"red","mac_address":"fa:16:3e:00:09:01","fixed_ips":[]}"#)
            .expect("port");
        st.apply("port_pair", "pp", false, r#"{"ingress":"ips","egress":"ips"}"#).expect("pair");
        st.apply("port_pair_group", "g", false, r#"{"port_pairs":["pp"]}"#).expect("group");
        st.apply("port_chain", "c", false, r#"{"project_id":"p-red","port_pair_groups":["g"]}"#).expect("chain");
        let alerts = Alerts::default();
        // Red's 10.0.0.5 is r1 and 10.0.0.6 is r2; blue has the same addresses.
        let eve = r#"{"timestamp":"t1","event_type":"alert","src_ip":"10.0.0.5","src_port":40000,"dest_ip":"10.0.0.6","dest_port":80,"proto":"TCP","alert":{"action":"blocked","signature_id":1000001,"signature":"tenet test"}}
{"timestamp":"t2","event_type":"stats","stats":{}}
not json
{"timestamp":"t3","event_type":"drop","src_ip":"10.0.0.6","dest_ip":"10.0.0.99","proto":"TCP"}"#;
        let done = alerts.ingest(&st, "pp", eve);
        assert_eq!(done, Ingested { alerts: 2, ignored: 1, malformed: 1 });
        let a = alerts.list(Some("p-red"), Some("r1"));
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].src_port_id.as_deref(), a[0].dest_port_id.as_deref(), a[0].action.as_str()),
            (Some("r1"), Some("r2"), "blocked")
        );
        assert_eq!((a[0].signature_id, a[0].port_chain.as_deref()), (Some(1_000_001), Some("c")));
        let d = alerts.list(None, Some("r2"));
        assert_eq!(d.len(), 2);
        assert_eq!((d[1].action.as_str(), d[1].dest_port_id.as_deref()), ("drop", None));
        assert!(alerts.list(Some("p-blue"), None).is_empty());
    }
}
