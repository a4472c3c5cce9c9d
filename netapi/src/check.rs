//! A consistency check of a netapi database (`tenet-netapi check --db URL`): the
//! invariants every committed write transaction keeps, read in one transaction. After a
//! crash (the process killed mid-write), a clean report shows that no partially written
//! transaction survived.
//!
//! Checked:
//! - the revision is at least the highest logged revision;
//! - every object of the desired state has a change log entry that is its last one, a
//!   `put` with exactly the stored body, and every object whose last entry is a `put`
//!   exists (whose last entry is a `delete`, does not) - unless pruned below the floor;
//! - the same for port bindings, whose status and placement columns match their body;
//! - a port's address allocations, security group rows and active binding match its body;
//!   at most one binding per port is ACTIVE;
//! - a subnet's network exists and lists it, a network lists only existing subnets;
//! - a network's segment column matches its body.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use crate::store::{parse_body, Store, StoreError, STATE_KINDS};

/// At most this many problems are listed.
const MAX_PROBLEMS: usize = 200;

/// What [`check`] found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckReport {
    /// The global revision.
    pub revision: i64,
    /// The highest revision in the change log (0 when empty).
    pub max_change_revision: i64,
    /// The change log's floor (pruned at or below).
    pub log_floor: i64,
    /// Rows in the change log.
    pub changes: i64,
    /// Objects per kind.
    pub objects: HashMap<String, usize>,
    /// Port bindings.
    pub bindings: usize,
    /// Address allocations.
    pub ip_allocations: usize,
    /// Broken invariants (empty when consistent); at most 200 are listed.
    pub problems: Vec<String>,
}

impl CheckReport {
    /// True when no invariant is broken.
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }
}

/// The last change logged for one object.
struct Last {
    revision: i64,
    op: String,
    body: Value,
}

fn str_set(v: &Value, key: &str) -> BTreeSet<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

/// Checks the database behind `store`.
pub async fn check(store: &Store) -> Result<CheckReport, StoreError> {
    let mut tx = store.begin_read().await?;
    let mut r = CheckReport {
        revision: sqlx::query("SELECT value FROM revision WHERE id = 1").fetch_one(&mut *tx).await?.try_get(0)?,
        log_floor: sqlx::query("SELECT value FROM change_log_floor WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?,
        ..CheckReport::default()
    };

    // The last change of every object.
    let mut last: HashMap<(String, String), Last> = HashMap::new();
    let rows = sqlx::query("SELECT revision, kind, op, id, body FROM changes ORDER BY revision, seq")
        .fetch_all(&mut *tx)
        .await?;
    r.changes = rows.len() as i64;
    for row in rows {
        let revision: i64 = row.try_get(0)?;
        let kind: String = row.try_get(1)?;
        let op: String = row.try_get(2)?;
        let id: String = row.try_get(3)?;
        let body: String = row.try_get(4)?;
        r.max_change_revision = r.max_change_revision.max(revision);
        match serde_json::from_str(&body) {
            Ok(body) => {
                last.insert((kind, id), Last { revision, op, body });
            }
            Err(e) => r.problem(format!("change {kind} {id} at revision {revision} has a body that is not JSON: {e}")),
        }
    }
    if r.revision < r.max_change_revision {
        r.problem(format!("revision {} is below the highest logged revision {}", r.revision, r.max_change_revision));
    }

    // Objects against their last change.
    let mut stored: HashMap<(String, String), Value> = HashMap::new();
    for (kind, table) in STATE_KINDS {
        let sql = format!("SELECT id, body FROM {table}");
        let rows = sqlx::query(&sql).fetch_all(&mut *tx).await?;
        r.objects.insert((*kind).to_string(), rows.len());
        for row in rows {
            let id: String = row.try_get(0)?;
            let body = parse_body(table, &id, row.try_get(1)?)?;
            stored.insert(((*kind).to_string(), id), body);
        }
    }
    let bindings = sqlx::query(
        "SELECT port_id, host, status, datapath_id, interface_name, body FROM port_bindings ORDER BY port_id, host",
    )
    .fetch_all(&mut *tx)
    .await?;
    r.bindings = bindings.len();
    let mut active_host: HashMap<String, Vec<String>> = HashMap::new();
    let mut binding_ports: Vec<String> = Vec::new();
    for row in bindings {
        let port_id: String = row.try_get(0)?;
        let host: String = row.try_get(1)?;
        let status: String = row.try_get(2)?;
        let dpid: String = row.try_get(3)?;
        let ifname: String = row.try_get(4)?;
        let id = format!("{port_id}/{host}");
        let mut body = parse_body("port_bindings", &id, row.try_get(5)?)?;
        if body["status"].as_str() != Some(status.as_str()) {
            r.problem(format!("binding {id}: status column {status} but body {}", body["status"]));
        }
        if body["datapath_id"].as_str().unwrap_or_default() != dpid
            || body["interface_name"].as_str().unwrap_or_default() != ifname
        {
            r.problem(format!("binding {id}: placement columns ({dpid}, {ifname}) differ from its body"));
        }
        if status == "ACTIVE" {
            active_host.entry(port_id.clone()).or_default().push(host.clone());
        }
        body["port_id"] = Value::String(port_id.clone());
        binding_ports.push(port_id);
        stored.insert(("port_binding".into(), id), body);
    }
    for ((kind, id), body) in &stored {
        match last.get(&(kind.clone(), id.clone())) {
            None if r.log_floor > 0 => {}
            None => r.problem(format!("{kind} {id} exists but the change log never mentions it")),
            Some(l) if l.op != "put" => {
                r.problem(format!("{kind} {id} exists but its last change (revision {}) is a {}", l.revision, l.op))
            }
            Some(l) if &l.body != body => r.problem(format!(
                "{kind} {id} differs from its last logged state (revision {}): a write was not logged whole",
                l.revision
            )),
            Some(_) => {}
        }
    }
    let state_kinds: BTreeSet<&str> = STATE_KINDS.iter().map(|(k, _)| *k).chain(["port_binding"]).collect();
    for ((kind, id), l) in &last {
        if !state_kinds.contains(kind.as_str()) {
            continue;
        }
        let exists = stored.contains_key(&(kind.clone(), id.clone()));
        if l.op == "put" && !exists {
            r.problem(format!("{kind} {id} was logged at revision {} but does not exist", l.revision));
        }
        if l.op == "delete" && exists {
            r.problem(format!("{kind} {id} was logged deleted at revision {} but exists", l.revision));
        }
    }
    for port_id in binding_ports {
        if !stored.contains_key(&("port".to_string(), port_id.clone())) {
            r.problem(format!("a binding refers to the missing port {port_id}"));
        }
    }

    // Ports against their allocations, groups and bindings.
    let mut allocations: HashMap<String, BTreeSet<(String, String)>> = HashMap::new();
    let rows = sqlx::query("SELECT port_id, subnet_id, ip_address FROM ip_allocations").fetch_all(&mut *tx).await?;
    r.ip_allocations = rows.len();
    for row in rows {
        allocations.entry(row.try_get(0)?).or_default().insert((row.try_get(1)?, row.try_get(2)?));
    }
    let mut groups: HashMap<String, BTreeSet<String>> = HashMap::new();
    for row in sqlx::query("SELECT port_id, security_group_id FROM port_security_groups").fetch_all(&mut *tx).await? {
        groups.entry(row.try_get(0)?).or_default().insert(row.try_get(1)?);
    }
    for ((kind, id), body) in &stored {
        if kind != "port" {
            continue;
        }
        let want: BTreeSet<(String, String)> = body["fixed_ips"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|ip| {
                        let s = |k: &str| ip[k].as_str().unwrap_or_default().to_string();
                        (s("subnet_id"), s("ip_address"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if allocations.remove(id).unwrap_or_default() != want {
            r.problem(format!("port {id}: its address allocations differ from its fixed_ips"));
        }
        if groups.remove(id).unwrap_or_default() != str_set(body, "security_groups") {
            r.problem(format!("port {id}: its security group rows differ from its security_groups"));
        }
        let hosts = active_host.remove(id).unwrap_or_default();
        if hosts.len() > 1 {
            r.problem(format!("port {id} has {} ACTIVE bindings", hosts.len()));
        }
        let shown = body["binding:host_id"].as_str().unwrap_or_default();
        if hosts.first().map(String::as_str).unwrap_or_default() != shown {
            r.problem(format!("port {id}: binding:host_id {shown:?} is not its ACTIVE binding's host {hosts:?}"));
        }
    }
    for port in allocations.keys() {
        r.problem(format!("addresses are allocated to the missing port {port}"));
    }
    for port in groups.keys() {
        r.problem(format!("security group rows refer to the missing port {port}"));
    }

    // Subnets and networks.
    for ((kind, id), body) in &stored {
        if kind == "subnet" {
            let net = body["network_id"].as_str().unwrap_or_default().to_string();
            match stored.get(&("network".to_string(), net.clone())) {
                None => r.problem(format!("subnet {id} is on the missing network {net}")),
                Some(n) if !str_set(n, "subnets").contains(id) => {
                    r.problem(format!("network {net} does not list its subnet {id}"))
                }
                Some(_) => {}
            }
        }
        if kind == "network" {
            for s in str_set(body, "subnets") {
                if !stored.contains_key(&("subnet".to_string(), s.clone())) {
                    r.problem(format!("network {id} lists the missing subnet {s}"));
                }
            }
        }
    }
    for row in sqlx::query("SELECT id, segmentation_id FROM networks").fetch_all(&mut *tx).await? {
        let id: String = row.try_get(0)?;
        let seg: Option<i64> = row.try_get(1)?;
        let shown =
            stored.get(&("network".to_string(), id.clone())).and_then(|b| b["provider:segmentation_id"].as_i64());
        if seg != shown {
            r.problem(format!("network {id}: segment column {seg:?} but body {shown:?}"));
        }
    }
    tx.commit().await?;
    Ok(r)
}
