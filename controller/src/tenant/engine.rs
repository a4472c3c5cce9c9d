//! The engine: one task that owns the desired state, follows the feed and the
//! topology, recompiles the switches a change touches and reconciles them.
//!
//! A switch is reconciled only once (a) the feed's snapshot is complete and (b) the
//! switch has been connected for the settle time, so that discovery has found its
//! links: a restarted controller then computes exactly what the switches already hold
//! and sends nothing, and no packet is lost. Its first reconciliation reads the flows
//! and groups it holds; later ones diff against what was last installed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, watch};

use crate::network::Network;
use crate::session::Registry;

use super::compile::steer::PROBE_SRC;
use super::compile::{compile_switch, Fabric, Placement, Plan, Runtime};
use super::feed::FeedMsg;
use super::flows::SwitchFlows;
use super::packet;
use super::reconcile;
use super::state::{Mac, State, Touched};
use crate::wire::of13::{self, action::port_no, Action};

/// Tenant-mode tunables.
#[derive(Debug, Clone)]
pub struct TenantConfig {
    /// How long a switch must have been connected before it is reconciled.
    pub settle: Duration,
    /// Timeout of flow reads and barriers.
    pub request_timeout: Duration,
    /// How often every switch's flows are read back and reconciled again (drift from
    /// flows changed behind the controller's back); None: never.
    pub audit: Option<Duration>,
    /// How often a health probe is sent through every IPS instance; an instance is dead
    /// after [`PROBE_MISSES`] probes in a row did not come back.
    pub probe_interval: Duration,
}

/// Probes in a row an IPS instance may lose before it counts as dead.
pub const PROBE_MISSES: u32 = 3;

impl Default for TenantConfig {
    fn default() -> Self {
        TenantConfig {
            settle: Duration::from_millis(1500),
            request_timeout: Duration::from_secs(10),
            audit: Some(Duration::from_secs(60)),
            probe_interval: Duration::from_millis(200),
        }
    }
}

/// What packet-in handlers need, swapped whole after every recompilation.
#[derive(Debug, Default)]
pub struct View {
    pub state: State,
    /// (dpid, OpenFlow port) -> tenant port id (both places of a migrating port).
    pub edges: HashMap<(u64, u32), String>,
    /// The second places of migrating ports: a VM announcing itself there has moved.
    pub copies: std::collections::HashSet<(u64, u32)>,
    /// (network id, IPv4) -> MAC.
    pub addresses: HashMap<(String, Ipv4Addr), Mac>,
}

/// Reconciliation status of one switch (for the API and tests).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SwitchStatus {
    /// Reconciled at least once since it connected.
    pub ready: bool,
    pub flows: usize,
    pub groups: usize,
    /// The feed revision its flows reflect.
    pub revision: i64,
    /// Totals since it connected.
    pub flow_mods: u64,
    pub reconciliations: u64,
}

/// Tenant mode's status.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// The feed's snapshot has been received.
    pub synced: bool,
    /// The last revision applied to the desired state.
    pub revision: i64,
    /// Objects the feed carried that could not be taken in.
    pub rejected: Vec<String>,
    pub switches: BTreeMap<String, SwitchStatus>,
    /// IPS steering: instance (port pair) health, and chains that cannot be compiled.
    pub steering: SteeringStatus,
    /// The last 32 changes from the feed: how long from their arrival until every switch
    /// they touched was reconciled (barriers answered).
    pub recent_applies: std::collections::VecDeque<Applied>,
}

/// One batch of feed changes applied.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Applied {
    pub revision: i64,
    pub switches: usize,
    pub ms: f64,
}

/// IPS steering's status.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SteeringStatus {
    /// Port pair id -> whether its health probes come back.
    pub instances: BTreeMap<String, bool>,
    pub problems: Vec<String>,
}

/// Switch events the sessions report to the engine.
#[derive(Debug)]
pub enum SwitchEvent {
    Up(u64),
    Down(u64),
    Settled(u64),
    /// A VM announced itself (RARP or gratuitous ARP) at (dpid, OpenFlow port), the
    /// second place of a migrating port: it runs there now.
    Announced(u64, u32),
    /// A health probe came back through the IPS instance (port pair) named.
    ProbeReturned(String),
}

/// Shared by the engine and the per-switch apps.
pub struct Tenant {
    pub network: Arc<Network>,
    pub config: TenantConfig,
    /// IPS alerts shipped by instances, attributed to ports.
    pub alerts: super::alerts::Alerts,
    view: RwLock<Arc<View>>,
    status: Mutex<Status>,
    events: mpsc::UnboundedSender<SwitchEvent>,
    events_rx: Mutex<Option<mpsc::UnboundedReceiver<SwitchEvent>>>,
}

impl Tenant {
    pub fn new(network: Arc<Network>, config: TenantConfig) -> Arc<Tenant> {
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(Tenant {
            network,
            config,
            alerts: super::alerts::Alerts::default(),
            view: RwLock::new(Arc::new(View::default())),
            status: Mutex::new(Status::default()),
            events: tx,
            events_rx: Mutex::new(Some(rx)),
        })
    }

    /// The current view for answering packet-ins.
    pub fn view(&self) -> Arc<View> {
        self.view.read().map(|v| v.clone()).unwrap_or_default()
    }

    /// A copy of the status.
    pub fn status(&self) -> Status {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn switch_event(&self, e: SwitchEvent) {
        let _ = self.events.send(e);
    }

    fn set_view(&self, v: View) {
        if let Ok(mut g) = self.view.write() {
            *g = Arc::new(v);
        }
    }

    fn update_status(&self, f: impl FnOnce(&mut Status)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }
}

struct Sw {
    /// What the switch holds (read at settle, then what we installed); None until settled.
    installed: Option<SwitchFlows>,
}

/// Runs the engine until `shutdown`.
pub async fn run(
    tenant: Arc<Tenant>,
    registry: Registry,
    mut feed: mpsc::Receiver<FeedMsg>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(mut events) = tenant.events_rx.lock().ok().and_then(|mut r| r.take()) else {
        tracing::error!("tenant engine started twice");
        return;
    };
    let mut topo_events = tenant.network.topology().subscribe();
    let mut e = Engine {
        tenant: tenant.clone(),
        registry,
        state: State::default(),
        pending: None,
        synced: false,
        switches: HashMap::new(),
        plan: Plan::default(),
        fabric_dirty: true,
        ports_dirty: false,
        touched: Touched::default(),
        dirty: BTreeSet::new(),
        rt: Runtime::default(),
        misses: HashMap::new(),
        change_seen: None,
    };
    let mut probe = tokio::time::interval(tenant.config.probe_interval);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut audit = tokio::time::interval(tenant.config.audit.unwrap_or(Duration::from_secs(86_400 * 365)));
    audit.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    audit.tick().await;
    loop {
        tokio::select! {
            m = feed.recv() => match m {
                Some(m) => e.feed(m),
                None => return,
            },
            _ = audit.tick(), if tenant.config.audit.is_some() => {
                let ready: Vec<u64> = e.switches.iter().filter(|(_, s)| s.installed.is_some()).map(|(d, _)| *d).collect();
                for dpid in ready {
                    e.switch_event(SwitchEvent::Settled(dpid)).await;
                }
            },
            Some(ev) = events.recv() => e.switch_event(ev).await,
            _ = probe.tick() => e.probe().await,
            r = topo_events.recv() => e.topology_event(r),
            _ = shutdown.changed() => return,
        }
        // Take everything already waiting before compiling: a burst is one compilation.
        loop {
            if let Ok(m) = feed.try_recv() {
                e.feed(m);
            } else if let Ok(ev) = events.try_recv() {
                e.switch_event(ev).await;
            } else {
                match topo_events.try_recv() {
                    Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => break,
                    r => e.topology_event(r.map_err(|_| broadcast::error::RecvError::Lagged(0))),
                }
            }
        }
        e.process().await;
    }
}

struct Engine {
    tenant: Arc<Tenant>,
    registry: Registry,
    state: State,
    /// A snapshot being received.
    pending: Option<State>,
    synced: bool,
    switches: HashMap<u64, Sw>,
    plan: Plan,
    /// Links or switches changed: paths and the tree may have moved, every switch is recompiled.
    fabric_dirty: bool,
    /// Ports changed: the fabric is re-read, and switches recompiled where placements moved.
    ports_dirty: bool,
    touched: Touched,
    /// Switches to reconcile whatever the change set says (newly settled ones).
    dirty: BTreeSet<u64>,
    /// Announced migrations and dead IPS instances.
    rt: Runtime,
    /// When the oldest feed change not yet reconciled arrived.
    change_seen: Option<Instant>,
    /// IPS instances: health probes sent since one last came back.
    misses: HashMap<String, u32>,
}

impl Engine {
    fn feed(&mut self, m: FeedMsg) {
        match m {
            FeedMsg::SnapshotBegin(rev) => {
                tracing::info!(revision = rev, "netapi snapshot begins");
                self.pending = Some(State::default());
            }
            FeedMsg::Objects(objects) => {
                let Some(p) = self.pending.as_mut() else { return };
                for o in objects {
                    if let Err(r) = p.apply(&o.kind, &o.id, false, &o.json) {
                        tracing::warn!(error = %r, "object not taken in");
                        self.tenant.update_status(|s| s.rejected.push(r.to_string()));
                    }
                }
            }
            FeedMsg::SnapshotEnd(rev) => {
                if let Some(mut p) = self.pending.take() {
                    p.revision = rev;
                    self.state = p;
                    self.synced = true;
                    self.touched.everything = true;
                    tracing::info!(
                        revision = rev,
                        networks = self.state.networks.len(),
                        ports = self.state.ports.len(),
                        "netapi snapshot complete"
                    );
                    self.tenant.update_status(|s| {
                        s.synced = true;
                        s.revision = rev;
                    });
                }
            }
            FeedMsg::Changes(c) => {
                self.change_seen.get_or_insert_with(Instant::now);
                let target = self.pending.as_mut().unwrap_or(&mut self.state);
                for ch in c.changes {
                    match target.apply(&ch.kind, &ch.id, ch.op == "delete", &ch.json) {
                        Ok(t) => self.touched.merge(t),
                        Err(r) => {
                            tracing::warn!(revision = c.revision, error = %r, "change not taken in");
                            self.tenant.update_status(|s| s.rejected.push(r.to_string()));
                        }
                    }
                }
                target.revision = c.revision;
                if self.pending.is_none() {
                    self.tenant.update_status(|s| s.revision = c.revision);
                }
            }
        }
    }

    async fn switch_event(&mut self, ev: SwitchEvent) {
        match ev {
            SwitchEvent::Up(dpid) => {
                self.switches.insert(dpid, Sw { installed: None });
                self.tenant.update_status(|s| {
                    s.switches.insert(tenet_topology::fmt_dpid(dpid), SwitchStatus::default());
                });
                let tx = self.tenant.events.clone();
                let settle = self.tenant.config.settle;
                tokio::spawn(async move {
                    tokio::time::sleep(settle).await;
                    let _ = tx.send(SwitchEvent::Settled(dpid));
                });
            }
            SwitchEvent::Down(dpid) => {
                self.switches.remove(&dpid);
                self.tenant.update_status(|s| {
                    s.switches.remove(&tenet_topology::fmt_dpid(dpid));
                });
            }
            SwitchEvent::Announced(dpid, ofport) => {
                let at = Placement { dpid, ofport };
                let Some((id, _)) = self.plan.copies.iter().find(|(_, p)| **p == at) else { return };
                if self.rt.announced.get(id) == Some(&dpid) {
                    return;
                }
                tracing::info!(port = %id, dpid = %tenet_topology::fmt_dpid(dpid), ofport, "migrated VM announced itself; its traffic goes to its new place");
                self.rt.announced.insert(id.clone(), dpid);
                self.touched.dpids.insert(dpid);
                self.touched.networks.extend(self.state.ports.get(id).map(|p| p.network_id.clone()));
            }
            SwitchEvent::ProbeReturned(pair) => {
                self.misses.insert(pair.clone(), 0);
                if self.rt.dead_pairs.remove(&pair) {
                    tracing::info!(port_pair = %pair, "IPS instance answers again; steering through it");
                    self.touched.everything = true;
                }
            }
            SwitchEvent::Settled(dpid) => {
                let (Some(sw), Some(handle)) = (self.switches.get_mut(&dpid), self.registry.get(dpid)) else { return };
                match reconcile::read(&handle, self.tenant.config.request_timeout).await {
                    Ok(have) => {
                        match &sw.installed {
                            None => {
                                tracing::info!(dpid = %tenet_topology::fmt_dpid(dpid), flows = have.flows.len(), groups = have.groups.len(), "switch settled; read its flows")
                            }
                            Some(before) if *before != have => {
                                let c = reconcile::diff(before, &have);
                                tracing::warn!(dpid = %tenet_topology::fmt_dpid(dpid), missing = c.flows_added, foreign = c.flows_deleted, groups = c.groups_changed, "audit: the switch's flows drifted from what was installed; reconciling");
                            }
                            Some(_) => {}
                        }
                        sw.installed = Some(have);
                        self.dirty.insert(dpid);
                    }
                    Err(e) => {
                        tracing::warn!(dpid = %tenet_topology::fmt_dpid(dpid), error = %e, "reading flows failed; retrying");
                        let tx = self.tenant.events.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            let _ = tx.send(SwitchEvent::Settled(dpid));
                        });
                    }
                }
            }
        }
    }

    fn topology_event(&mut self, r: Result<tenet_topology::TopologyEvent, broadcast::error::RecvError>) {
        use tenet_topology::TopologyEvent as T;
        match r {
            Ok(T::HostAdded { .. } | T::HostMoved { .. } | T::HostChanged { .. } | T::HostRemoved { .. }) => {}
            // An edge port appearing or going: only the ports it places (or unplaces) matter.
            Ok(T::PortAdded { .. } | T::PortChanged { .. } | T::PortRemoved { .. }) => self.ports_dirty = true,
            _ => self.fabric_dirty = true,
        }
    }

    /// Recompiles and reconciles what changed.
    async fn process(&mut self) {
        if !self.synced || (!self.fabric_dirty && !self.ports_dirty && self.touched.is_empty() && self.dirty.is_empty())
        {
            if self.synced {
                self.change_seen = None; // changes that touched nothing
            }
            return;
        }
        let started = Instant::now();
        let mut touched = std::mem::take(&mut self.touched);
        let fabric_dirty = std::mem::replace(&mut self.fabric_dirty, false);
        let ports_dirty = std::mem::replace(&mut self.ports_dirty, false);
        let replan = fabric_dirty || ports_dirty || !touched.is_empty();
        let mut dirty = std::mem::take(&mut self.dirty);
        let mut first = BTreeSet::new();
        if replan {
            let (fabric, peers) = {
                let topo = self.tenant.network.topology();
                let fabric =
                    if fabric_dirty || ports_dirty { Fabric::from_topology(&topo) } else { self.plan.fabric.clone() };
                let peers: HashMap<(u64, u32), u64> =
                    topo.links().map(|l| ((l.src.dpid, l.src.port), l.dst.dpid)).collect();
                (fabric, peers)
            };
            let plan = Plan::new(&self.state, fabric, &peers, &self.rt);
            self.rt.announced.retain(|id, _| plan.copies.contains_key(id));
            self.update_steering_status(&plan);
            // Ports placed, moved or unplaced (a binding resolved to a port number, or an
            // interface came or went) touch their networks. A new place (a migration's
            // destination, a port's new primary place) is reconciled before the rest, so
            // that traffic is never sent towards flows that do not exist yet.
            let places = |p: &Plan| -> BTreeSet<(String, Placement, bool)> {
                let primary = p.placed.iter().map(|(id, at)| (id.clone(), *at, true));
                primary.chain(p.copies.iter().map(|(id, at)| (id.clone(), *at, false))).collect()
            };
            let (before, after) = (places(&self.plan), places(&plan));
            for (id, at, primary) in before.symmetric_difference(&after) {
                touched.dpids.insert(at.dpid);
                touched.networks.extend(self.state.ports.get(id).map(|p| p.network_id.clone()));
                if after.contains(&(id.clone(), *at, *primary)) && (*primary || !self.plan.copies.contains_key(id)) {
                    first.insert(at.dpid);
                }
            }
            if fabric_dirty || touched.everything {
                dirty.extend(self.switches.keys().copied());
            } else {
                dirty.extend(affected(&touched, &self.state, &self.plan, &plan, self.switches.keys().copied()));
            }
            self.plan = plan;
            self.tenant.set_view(view_of(&self.state, &self.plan));
            let quiet = self.plan.steering.ports.iter().filter_map(|id| self.plan.placed.get(id));
            self.tenant.network.set_quiet_ports(quiet.map(|at| (at.dpid, at.ofport)).collect());
        }
        let revision = self.state.revision;
        let timeout = self.tenant.config.request_timeout;
        // Compile and diff on every core (a pure function of state and plan), then send.
        let work: Vec<(u64, &SwitchFlows, crate::session::SwitchHandle)> = dirty
            .into_iter()
            .filter_map(|dpid| {
                let have = self.switches.get(&dpid)?.installed.as_ref()?;
                Some((dpid, have, self.registry.get(dpid)?))
            })
            .collect();
        let compiled = compile_all(&self.state, &self.plan, &work);
        let (mut early, mut late) = (Vec::new(), Vec::new());
        for ((dpid, _, handle), (want, changes)) in work.into_iter().zip(compiled) {
            let job = async move {
                let r = reconcile::apply(&handle, &changes, timeout).await;
                (dpid, want, changes, r)
            };
            if first.contains(&dpid) {
                early.push(job)
            } else {
                late.push(job)
            }
        }
        let n = early.len() + late.len();
        let mut results = futures_util::future::join_all(early).await;
        results.extend(futures_util::future::join_all(late).await);
        for (dpid, want, changes, r) in results {
            let name = tenet_topology::fmt_dpid(dpid);
            match r {
                Ok(()) => {
                    if !changes.is_empty() {
                        tracing::debug!(dpid = %name, added = changes.flows_added, deleted = changes.flows_deleted, groups = changes.groups_changed, "reconciled");
                    }
                    let (flows, groups) = (want.flows.len(), want.groups.len());
                    if let Some(sw) = self.switches.get_mut(&dpid) {
                        sw.installed = Some(want);
                    }
                    self.tenant.update_status(|s| {
                        let st = s.switches.entry(name).or_default();
                        st.ready = true;
                        st.flows = flows;
                        st.groups = groups;
                        st.revision = revision;
                        st.flow_mods += (changes.flows_added + changes.flows_deleted) as u64;
                        st.reconciliations += 1;
                    });
                }
                Err(e) => {
                    tracing::warn!(dpid = %name, error = %e, "reconciliation failed; the switch will be read again");
                    if let Some(sw) = self.switches.get_mut(&dpid) {
                        sw.installed = None;
                    }
                    let tx = self.tenant.events.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        let _ = tx.send(SwitchEvent::Settled(dpid));
                    });
                }
            }
        }
        if n > 0 {
            tracing::debug!(switches = n, elapsed_us = started.elapsed().as_micros() as u64, revision, "compiled");
        }
        if let Some(seen) = self.change_seen.take() {
            let applied = Applied { revision, switches: n, ms: seen.elapsed().as_secs_f64() * 1000.0 };
            self.tenant.update_status(|s| {
                s.recent_applies.push_back(applied);
                while s.recent_applies.len() > 32 {
                    s.recent_applies.pop_front();
                }
            });
        }
    }
}

impl Engine {
    /// Sends a health probe through every IPS instance (into its ingress port; it comes
    /// back out of the egress port to the controller) and declares dead those whose
    /// last probes did not come back.
    async fn probe(&mut self) {
        if !self.synced {
            return;
        }
        let mut changed = false;
        let mut live = BTreeSet::new();
        for inst in self.plan.steering.instances() {
            live.insert(inst.pair_id.clone());
            let missed = self.misses.entry(inst.pair_id.clone()).or_insert(0);
            if *missed >= PROBE_MISSES && self.rt.dead_pairs.insert(inst.pair_id.clone()) {
                tracing::warn!(port_pair = %inst.pair_id, missed = *missed, "IPS instance does not pass probes; its chains fail open or closed");
                changed = true;
            }
            *missed = missed.saturating_add(1);
            let (_, at) = &inst.ingress;
            let Some(handle) = self.registry.get(at.dpid) else { continue };
            let msg = of13::Message::PacketOut(of13::PacketOut {
                buffer_id: of13::NO_BUFFER,
                in_port: port_no::CONTROLLER,
                actions: vec![Action::Output { port: at.ofport, max_len: 0 }],
                data: packet::probe_frame(PROBE_SRC, &inst.pair_id),
            });
            let mut bytes = Vec::new();
            if msg.emit(0, &mut bytes).is_ok() {
                let _ = handle.send_raw(bytes).await;
            }
        }
        self.misses.retain(|id, _| live.contains(id));
        let before = self.rt.dead_pairs.len();
        self.rt.dead_pairs.retain(|id| live.contains(id));
        if changed || before != self.rt.dead_pairs.len() {
            self.touched.everything = true;
        }
    }

    fn update_steering_status(&self, plan: &Plan) {
        let instances =
            plan.steering.instances().map(|i| (i.pair_id.clone(), !self.rt.dead_pairs.contains(&i.pair_id))).collect();
        let problems = plan.steering.problems.clone();
        for p in &problems {
            if !self.tenant.status().steering.problems.contains(p) {
                tracing::warn!(problem = %p, "steering");
            }
        }
        self.tenant.update_status(|s| s.steering = SteeringStatus { instances, problems });
    }
}

/// Compiles and diffs `work` on all cores.
fn compile_all(
    state: &State,
    plan: &Plan,
    work: &[(u64, &SwitchFlows, crate::session::SwitchHandle)],
) -> Vec<(SwitchFlows, reconcile::Changes)> {
    let one = |(dpid, have, _): &(u64, &SwitchFlows, crate::session::SwitchHandle)| {
        let want = compile_switch(state, plan, *dpid);
        let changes = reconcile::diff(&want, have);
        (want, changes)
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(work.len());
    if threads <= 1 {
        return work.iter().map(one).collect();
    }
    let chunk = work.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> =
            work.chunks(chunk).map(|c| s.spawn(move || c.iter().map(one).collect::<Vec<_>>())).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

/// The switches a change set touches: where the touched networks run (before and
/// after), where touched ports are bound, and where ports filtered by touched groups
/// (or by rules naming them as remote group) sit. A network that gains its first or
/// loses its last placed port touches every switch (fabric classification and flood
/// groups live everywhere).
fn affected(touched: &Touched, state: &State, old: &Plan, new: &Plan, all: impl Iterator<Item = u64>) -> BTreeSet<u64> {
    let mut out: BTreeSet<u64> = touched.dpids.clone();
    for net in &touched.networks {
        if old.by_network.contains_key(net) != new.by_network.contains_key(net) {
            return all.collect();
        }
        for plan in [old, new] {
            out.extend(plan.span.get(net).into_iter().flatten().copied());
        }
    }
    if !touched.groups.is_empty() {
        let referencing: BTreeSet<&String> = state
            .rules
            .values()
            .filter(|r| r.remote_group.as_ref().is_some_and(|g| touched.groups.contains(g)))
            .map(|r| &r.group_id)
            .collect();
        for plan in [old, new] {
            for (port_id, at) in plan.placed.iter().chain(&plan.copies) {
                let Some(port) = state.ports.get(port_id) else {
                    out.insert(at.dpid);
                    continue;
                };
                if port.security_groups.iter().any(|g| touched.groups.contains(g) || referencing.contains(g)) {
                    out.insert(at.dpid);
                }
            }
        }
    }
    out
}

fn view_of(state: &State, plan: &Plan) -> View {
    let mut edges = HashMap::new();
    for (id, at) in plan.placed.iter().chain(&plan.copies) {
        edges.insert((at.dpid, at.ofport), id.clone());
    }
    let copies = plan.copies.values().map(|at| (at.dpid, at.ofport)).collect();
    let mut addresses = HashMap::new();
    for p in state.ports.values() {
        for (_, ip) in &p.ips {
            addresses.insert((p.network_id.clone(), *ip), p.mac);
        }
    }
    View { state: state.clone(), edges, copies, addresses }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::compile::test_support::world;

    #[test]
    fn a_port_change_touches_its_networks_span_only() {
        let (st, plan) = world();
        let mut t = Touched::default();
        t.networks.insert("red".into());
        let a = affected(&t, &st, &plan, &plan, [1, 2, 3].into_iter());
        assert_eq!(a, BTreeSet::from([1, 2]));
        // A group change touches the switches of its members.
        let mut t = Touched::default();
        t.groups.insert("sg-blue".into());
        let a = affected(&t, &st, &plan, &plan, [1, 2, 3].into_iter());
        assert_eq!(a, BTreeSet::from([1, 2]));
        let mut t = Touched::default();
        t.groups.insert("sg-none".into());
        assert!(affected(&t, &st, &plan, &plan, [1, 2, 3].into_iter()).is_empty());
    }

    #[test]
    fn the_view_answers_addresses_per_network() {
        let (st, plan) = world();
        let v = view_of(&st, &plan);
        assert_eq!(v.edges[&(1, 1)], "r1");
        assert_eq!(v.addresses[&("blue".to_string(), Ipv4Addr::new(10, 0, 0, 5))], [0xfa, 0x16, 0x3e, 0, 0, 1]);
    }
}
