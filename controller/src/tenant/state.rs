//! The desired state as netapi's change feed describes it: networks, subnets, ports,
//! port bindings, security groups and their rules, parsed from the feed's JSON into
//! the few fields the compiler needs. Pure: no I/O.
//!
//! Objects that fail to parse are kept out (and reported), so one bad object never
//! stops the rest of the state from being compiled.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde_json::Value;

/// An Ethernet address.
pub type Mac = [u8; 6];

/// A tenant network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub id: String,
    pub project_id: String,
    /// The VLAN id (1..4094) on fabric links, also the network's number in metadata.
    pub segment: u16,
    pub mtu: Option<u16>,
}

/// An IPv4 subnet (IPv6 subnets are kept out: tenant mode forwards IPv4 and ARP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub network_id: String,
    pub cidr: (Ipv4Addr, u8),
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    /// Host routes: destination network, prefix length, next hop.
    pub routes: Vec<(Ipv4Addr, u8, Ipv4Addr)>,
    pub enable_dhcp: bool,
}

/// A tenant port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub id: String,
    pub project_id: String,
    pub network_id: String,
    pub mac: Mac,
    /// (subnet id, address), IPv4 only.
    pub ips: Vec<(String, Ipv4Addr)>,
    pub security_groups: Vec<String>,
    pub port_security: bool,
    pub admin_up: bool,
    /// Allowed address pairs: extra (MAC, IPv4 prefix) a port may send from.
    pub address_pairs: Vec<(Mac, Ipv4Addr, u8)>,
    /// Creation time as netapi wrote it (orders conntrack zone allocation).
    pub created_at: String,
}

/// Where a port is plugged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub port_id: String,
    pub host: String,
    pub active: bool,
    pub dpid: Option<u64>,
    pub interface: String,
}

/// A security group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroup {
    pub id: String,
    pub project_id: String,
    pub stateful: bool,
}

/// Direction of a security-group rule, seen from the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    /// Traffic to the port.
    Ingress,
    /// Traffic from the port.
    Egress,
}

/// A security-group rule (IPv4 only; IPv6 rules are kept out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub group_id: String,
    pub direction: Direction,
    /// IP protocol number; `None` = any.
    pub protocol: Option<u8>,
    /// L4 port range (TCP/UDP/SCTP), or ICMP type (min) and code (max).
    pub port_min: Option<u16>,
    pub port_max: Option<u16>,
    pub remote_ip: Option<(Ipv4Addr, u8)>,
    pub remote_group: Option<String>,
}

/// An IPS instance: the port traffic enters it by and the port it leaves by (the same
/// port for a one-armed appliance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPair {
    pub id: String,
    pub ingress: String,
    pub egress: String,
}

/// Equivalent instances; flows are spread over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPairGroup {
    pub id: String,
    pub port_pairs: Vec<String>,
}

/// Traffic a chain takes (IPv4 only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowClassifier {
    pub id: String,
    pub protocol: Option<u8>,
    pub source_ports: Option<(u16, u16)>,
    pub destination_ports: Option<(u16, u16)>,
    pub source_prefix: Option<(Ipv4Addr, u8)>,
    pub destination_prefix: Option<(Ipv4Addr, u8)>,
    pub logical_source_port: Option<String>,
    pub logical_destination_port: Option<String>,
}

/// A chain: classified traffic passes the groups in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortChain {
    pub id: String,
    pub project_id: String,
    pub groups: Vec<String>,
    pub classifiers: Vec<String>,
    /// Return traffic passes the same instances backwards.
    pub symmetric: bool,
    /// With no live instance in a group: pass the hop by (true) or drop (false, default).
    pub fail_open: bool,
}

/// The whole desired state.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// The last revision applied.
    pub revision: i64,
    pub networks: BTreeMap<String, Network>,
    pub subnets: BTreeMap<String, Subnet>,
    pub ports: BTreeMap<String, Port>,
    /// By "<port id>/<host>".
    pub bindings: BTreeMap<String, Binding>,
    pub groups: BTreeMap<String, SecurityGroup>,
    pub rules: BTreeMap<String, Rule>,
    pub port_pairs: BTreeMap<String, PortPair>,
    pub port_pair_groups: BTreeMap<String, PortPairGroup>,
    pub flow_classifiers: BTreeMap<String, FlowClassifier>,
    pub port_chains: BTreeMap<String, PortChain>,
}

/// What a change touched, so that only the affected switches are recompiled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// Networks whose forwarding changed.
    pub networks: BTreeSet<String>,
    /// Security groups whose rules or members changed.
    pub groups: BTreeSet<String>,
    /// Datapaths that gained or lost a bound port.
    pub dpids: BTreeSet<u64>,
    /// Something changed that may touch every switch.
    pub everything: bool,
}

impl Touched {
    pub fn is_empty(&self) -> bool {
        !self.everything && self.networks.is_empty() && self.groups.is_empty() && self.dpids.is_empty()
    }
    pub fn merge(&mut self, other: Touched) {
        self.networks.extend(other.networks);
        self.groups.extend(other.groups);
        self.dpids.extend(other.dpids);
        self.everything |= other.everything;
    }
}

/// Why an object was not taken in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {id}: {reason}")]
pub struct Rejected {
    pub kind: String,
    pub id: String,
    pub reason: String,
}

fn s(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn b(v: &Value, key: &str, default: bool) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(default)
}

fn strs(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Parses `a.b.c.d/len` (a bare address is /32).
pub fn parse_prefix(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, l.parse::<u8>().ok()?),
        None => (text, 32),
    };
    let addr: Ipv4Addr = addr.parse().ok()?;
    (len <= 32).then_some((addr, len))
}

/// Protocol numbers for the names Neutron accepts.
fn protocol_number(v: &Value) -> Result<Option<u8>, String> {
    let text = match v {
        Value::Null => return Ok(None),
        Value::String(t) => t.to_ascii_lowercase(),
        Value::Number(n) => n.to_string(),
        _ => return Err("protocol is neither a name nor a number".into()),
    };
    let n = match text.as_str() {
        "" | "any" => return Ok(None),
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "ipip" => 4,
        "ospf" => 89,
        "pgm" => 113,
        "rsvp" => 46,
        "sctp" => 132,
        "vrrp" => 112,
        "dccp" => 33,
        "udplite" => 136,
        other => other.parse::<u8>().map_err(|_| format!("unknown protocol {other:?}"))?,
    };
    Ok(Some(n))
}

fn port_bound(v: &Value, key: &str) -> Result<Option<u16>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => {
            x.as_u64().and_then(|n| u16::try_from(n).ok()).map(Some).ok_or_else(|| format!("{key} is not 0..65535"))
        }
    }
}

impl State {
    /// Forgets everything (a snapshot follows).
    pub fn clear(&mut self) {
        *self = State::default();
    }

    /// Applies one object put (`delete == false`) or deletion, returning what it touched.
    pub fn apply(&mut self, kind: &str, id: &str, delete: bool, json: &str) -> Result<Touched, Rejected> {
        let reject = |reason: String| Rejected { kind: kind.to_string(), id: id.to_string(), reason };
        let mut touched = Touched::default();
        // Deletions first: they need nothing but the id (and what we held).
        if delete {
            self.remove(kind, id, &mut touched);
            return Ok(touched);
        }
        let v: Value = serde_json::from_str(json).map_err(|e| reject(format!("not JSON: {e}")))?;
        // A put replaces: take out the old object first, so its effects are recompiled too.
        self.remove(kind, id, &mut touched);
        match kind {
            "network" => {
                let seg = v.get("provider:segmentation_id").and_then(Value::as_u64).unwrap_or(0);
                let segment = u16::try_from(seg)
                    .ok()
                    .filter(|s| (1..super::compile::steer::FIRST_VID).contains(s))
                    .ok_or_else(|| {
                        reject(format!(
                            "segmentation id {seg} is not a VLAN id 1..{} (the rest carry IPS steering)",
                            super::compile::steer::FIRST_VID - 1
                        ))
                    })?;
                let mtu = v.get("mtu").and_then(Value::as_u64).and_then(|m| u16::try_from(m).ok());
                touched.networks.insert(id.to_string());
                self.networks.insert(
                    id.to_string(),
                    Network { id: id.to_string(), project_id: s(&v, "project_id"), segment, mtu },
                );
            }
            "subnet" => {
                if v.get("ip_version").and_then(Value::as_u64) != Some(4) {
                    return Ok(touched); // IPv6: not forwarded by tenant mode
                }
                let cidr = parse_prefix(&s(&v, "cidr")).ok_or_else(|| reject("cidr is not IPv4 a.b.c.d/n".into()))?;
                let gateway = v.get("gateway_ip").and_then(Value::as_str).and_then(|g| g.parse().ok());
                let dns = strs(&v, "dns_nameservers").iter().filter_map(|d| d.parse().ok()).collect();
                let routes = v
                    .get("host_routes")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|r| {
                                let (net, len) = parse_prefix(r.get("destination")?.as_str()?)?;
                                let hop: Ipv4Addr = r.get("nexthop")?.as_str()?.parse().ok()?;
                                Some((net, len, hop))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let subnet = Subnet {
                    id: id.to_string(),
                    network_id: s(&v, "network_id"),
                    cidr,
                    gateway,
                    dns,
                    routes,
                    enable_dhcp: b(&v, "enable_dhcp", true),
                };
                touched.networks.insert(subnet.network_id.clone());
                self.subnets.insert(id.to_string(), subnet);
            }
            "port" => {
                let mac = parse_mac(&s(&v, "mac_address")).ok_or_else(|| reject("mac_address malformed".into()))?;
                let ips = v
                    .get("fixed_ips")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|f| {
                                let ip: Ipv4Addr = f.get("ip_address")?.as_str()?.parse().ok()?;
                                Some((s(f, "subnet_id"), ip))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let address_pairs = v
                    .get("allowed_address_pairs")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|p| {
                                let (ip, len) = parse_prefix(p.get("ip_address")?.as_str()?)?;
                                let m = p.get("mac_address").and_then(Value::as_str).and_then(parse_mac).unwrap_or(mac);
                                Some((m, ip, len))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let port = Port {
                    id: id.to_string(),
                    project_id: s(&v, "project_id"),
                    network_id: s(&v, "network_id"),
                    mac,
                    ips,
                    security_groups: strs(&v, "security_groups"),
                    port_security: b(&v, "port_security_enabled", true),
                    admin_up: b(&v, "admin_state_up", true),
                    address_pairs,
                    created_at: s(&v, "created_at"),
                };
                self.port_touches(&port, &mut touched);
                self.ports.insert(id.to_string(), port);
            }
            "port_binding" => {
                let dpid = v.get("datapath_id").and_then(Value::as_str).and_then(|d| u64::from_str_radix(d, 16).ok());
                let binding = Binding {
                    port_id: s(&v, "port_id"),
                    host: s(&v, "host"),
                    active: s(&v, "status") == "ACTIVE",
                    dpid,
                    interface: s(&v, "interface_name"),
                };
                self.binding_touches(&binding, &mut touched);
                self.bindings.insert(id.to_string(), binding);
            }
            "security_group" => {
                touched.groups.insert(id.to_string());
                self.groups.insert(
                    id.to_string(),
                    SecurityGroup {
                        id: id.to_string(),
                        project_id: s(&v, "project_id"),
                        stateful: b(&v, "stateful", true),
                    },
                );
            }
            "security_group_rule" => {
                if s(&v, "ethertype") != "IPv4" {
                    return Ok(touched);
                }
                let direction = match s(&v, "direction").as_str() {
                    "ingress" => Direction::Ingress,
                    "egress" => Direction::Egress,
                    other => return Err(reject(format!("direction {other:?}"))),
                };
                let protocol = protocol_number(v.get("protocol").unwrap_or(&Value::Null)).map_err(reject)?;
                let remote_ip = match v.get("remote_ip_prefix").and_then(Value::as_str) {
                    Some(p) => Some(parse_prefix(p).ok_or_else(|| reject(format!("remote_ip_prefix {p:?}")))?),
                    None => None,
                };
                let rule = Rule {
                    id: id.to_string(),
                    group_id: s(&v, "security_group_id"),
                    direction,
                    protocol,
                    port_min: port_bound(&v, "port_range_min").map_err(reject)?,
                    port_max: port_bound(&v, "port_range_max").map_err(reject)?,
                    remote_ip,
                    remote_group: v.get("remote_group_id").and_then(Value::as_str).map(str::to_string),
                };
                touched.groups.insert(rule.group_id.clone());
                self.rules.insert(id.to_string(), rule);
            }
            "port_pair" => {
                touched.everything = true;
                let pair = PortPair { id: id.to_string(), ingress: s(&v, "ingress"), egress: s(&v, "egress") };
                self.port_pairs.insert(id.to_string(), pair);
            }
            "port_pair_group" => {
                touched.everything = true;
                let g = PortPairGroup { id: id.to_string(), port_pairs: strs(&v, "port_pairs") };
                self.port_pair_groups.insert(id.to_string(), g);
            }
            "flow_classifier" => {
                touched.everything = true;
                let range = |side: &str| -> Result<Option<(u16, u16)>, String> {
                    let lo = port_bound(&v, &format!("{side}_port_range_min"))?;
                    let hi = port_bound(&v, &format!("{side}_port_range_max"))?;
                    Ok(match (lo, hi) {
                        (None, None) => None,
                        (l, h) => Some((l.unwrap_or(0), h.or(l).unwrap_or(u16::MAX))),
                    })
                };
                let prefix = |key: &str| -> Result<Option<(Ipv4Addr, u8)>, String> {
                    match v.get(key).and_then(Value::as_str) {
                        None => Ok(None),
                        Some(p) => parse_prefix(p).map(Some).ok_or_else(|| format!("{key} {p:?} is not IPv4")),
                    }
                };
                let opt = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
                if v.get("ethertype").and_then(Value::as_str).is_some_and(|e| e != "IPv4") {
                    return Err(reject("only IPv4 traffic can be steered".into()));
                }
                let fc = FlowClassifier {
                    id: id.to_string(),
                    protocol: protocol_number(v.get("protocol").unwrap_or(&Value::Null)).map_err(reject)?,
                    source_ports: range("source").map_err(reject)?,
                    destination_ports: range("destination").map_err(reject)?,
                    source_prefix: prefix("source_ip_prefix").map_err(reject)?,
                    destination_prefix: prefix("destination_ip_prefix").map_err(reject)?,
                    logical_source_port: opt("logical_source_port"),
                    logical_destination_port: opt("logical_destination_port"),
                };
                self.flow_classifiers.insert(id.to_string(), fc);
            }
            "port_chain" => {
                touched.everything = true;
                let params = v.get("chain_parameters").cloned().unwrap_or(Value::Null);
                let fail_open = match params.get("fail_mode").and_then(Value::as_str) {
                    None | Some("closed") => false,
                    Some("open") => true,
                    Some(other) => return Err(reject(format!("fail_mode {other:?} is not open or closed"))),
                };
                let chain = PortChain {
                    id: id.to_string(),
                    project_id: s(&v, "project_id"),
                    groups: strs(&v, "port_pair_groups"),
                    classifiers: strs(&v, "flow_classifiers"),
                    symmetric: b(&params, "symmetric", false),
                    fail_open,
                };
                self.port_chains.insert(id.to_string(), chain);
            }
            _ => {} // identity kinds
        }
        Ok(touched)
    }

    fn remove(&mut self, kind: &str, id: &str, touched: &mut Touched) {
        match kind {
            "network" => touched.networks.extend(self.networks.remove(id).map(|_| id.to_string())),
            "subnet" => {
                if let Some(s) = self.subnets.remove(id) {
                    touched.networks.insert(s.network_id);
                }
            }
            "port" => {
                if let Some(p) = self.ports.remove(id) {
                    self.port_touches(&p, touched);
                }
            }
            "port_binding" => {
                if let Some(b) = self.bindings.remove(id) {
                    self.binding_touches(&b, touched);
                }
            }
            "security_group" => touched.groups.extend(self.groups.remove(id).map(|_| id.to_string())),
            "security_group_rule" => {
                if let Some(r) = self.rules.remove(id) {
                    touched.groups.insert(r.group_id);
                }
            }
            "port_pair" => touched.everything |= self.port_pairs.remove(id).is_some(),
            "port_pair_group" => touched.everything |= self.port_pair_groups.remove(id).is_some(),
            "flow_classifier" => touched.everything |= self.flow_classifiers.remove(id).is_some(),
            "port_chain" => touched.everything |= self.port_chains.remove(id).is_some(),
            _ => {}
        }
    }

    fn port_touches(&self, port: &Port, touched: &mut Touched) {
        touched.networks.insert(port.network_id.clone());
        touched.groups.extend(port.security_groups.iter().cloned());
        if let Some(b) = self.active_binding(&port.id) {
            touched.dpids.extend(b.dpid);
        }
    }

    fn binding_touches(&self, binding: &Binding, touched: &mut Touched) {
        touched.dpids.extend(binding.dpid);
        if let Some(p) = self.ports.get(&binding.port_id) {
            touched.networks.insert(p.network_id.clone());
            touched.groups.extend(p.security_groups.iter().cloned());
        }
    }

    /// The port's ACTIVE binding, if any.
    pub fn active_binding<'a>(&'a self, port_id: &'a str) -> Option<&'a Binding> {
        self.bindings_of(port_id).find(|b| b.active)
    }

    /// All of the port's bindings (two while it migrates: ACTIVE and INACTIVE).
    pub fn bindings_of<'a>(&'a self, port_id: &'a str) -> impl Iterator<Item = &'a Binding> + 'a {
        self.bindings
            .range(format!("{port_id}/")..)
            .take_while(move |(k, _)| k.starts_with(port_id))
            .map(|(_, b)| b)
            .filter(move |b| b.port_id == port_id)
    }

    /// The network of a port's subnet address, with the subnet.
    pub fn subnet_of(&self, subnet_id: &str) -> Option<&Subnet> {
        self.subnets.get(subnet_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_parse_and_touch_what_they_change() {
        let mut st = State::default();
        let t = st
            .apply("network", "n1", false, r#"{"project_id":"p","provider:segmentation_id":101,"mtu":1500}"#)
            .expect("network");
        assert!(t.networks.contains("n1"));
        st.apply(
            "subnet",
            "s1",
            false,
            r#"{"network_id":"n1","ip_version":4,"cidr":"10.0.0.0/24","gateway_ip":"10.0.0.1",
                "dns_nameservers":["10.0.0.2"],"host_routes":[{"destination":"10.9.0.0/16","nexthop":"10.0.0.9"}]}"#,
        )
        .expect("subnet");
        st.apply(
            "port",
            "p1",
            false,
            r#"{"network_id":"n1","project_id":"p","mac_address":"fa:16:3e:00:00:01",
                "fixed_ips":[{"subnet_id":"s1","ip_address":"10.0.0.5"}],"security_groups":["g"],
                "port_security_enabled":true,"admin_state_up":true}"#,
        )
        .expect("port");
        let t = st
            .apply(
                "port_binding",
                "p1/h1",
                false,
                r#"{"port_id":"p1","host":"h1","status":"ACTIVE","datapath_id":"000000000000000a","interface_name":"s1-eth1"}"#,
            )
            .expect("binding");
        assert!(t.dpids.contains(&10));
        assert!(t.groups.contains("g"));
        assert_eq!(st.active_binding("p1").and_then(|b| b.dpid), Some(10));
        assert_eq!(st.subnets["s1"].routes, vec![(Ipv4Addr::new(10, 9, 0, 0), 16, Ipv4Addr::new(10, 0, 0, 9))]);
        let t = st.apply("port_binding", "p1/h1", true, "{}").expect("delete");
        assert!(t.dpids.contains(&10));
        assert!(st.active_binding("p1").is_none());
    }

    #[test]
    fn bad_objects_are_rejected_without_touching_the_rest() {
        let mut st = State::default();
        assert!(st.apply("network", "n", false, r#"{"provider:segmentation_id":0}"#).is_err());
        assert!(st.apply("port", "p", false, r#"{"mac_address":"zz"}"#).is_err());
        assert!(st.apply("port", "p", false, "not json").is_err());
        assert!(st
            .apply(
                "security_group_rule",
                "r",
                false,
                r#"{"ethertype":"IPv4","direction":"up","security_group_id":"g"}"#
            )
            .is_err());
        assert!(st.networks.is_empty() && st.ports.is_empty() && st.rules.is_empty());
        let r = st
            .apply(
                "security_group_rule",
                "r",
                false,
                r#"{"ethertype":"IPv4","direction":"ingress","security_group_id":"g","protocol":"tcp",
                    "port_range_min":22,"port_range_max":22,"remote_group_id":"g2"}"#,
            )
            .expect("rule");
        assert!(r.groups.contains("g"));
        assert_eq!(st.rules["r"].protocol, Some(6));
        assert_eq!(st.rules["r"].remote_group.as_deref(), Some("g2"));
    }
}
