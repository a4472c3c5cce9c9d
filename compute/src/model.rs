//! Flavors, images, servers and hosts as the API service stores them, and the rules of a
//! server's life: Nova's `vm_state` / `task_state` / `power_state` and the status the API
//! shows for them.
//!
//! Pure: no I/O. The API service keeps each object as JSON (these types) in its database.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::protocol::{Action, FlavorSpec, MigrationKind, MigrationStatus, NicRequest, PortInfo, Power};

/// A flavor: the size of a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    /// MB.
    pub ram: u64,
    /// GB.
    pub disk: u64,
    pub is_public: bool,
    pub description: Option<String>,
}

impl Flavor {
    /// What an agent and the scheduler need of it.
    pub fn spec(&self) -> FlavorSpec {
        FlavorSpec { id: self.id.clone(), vcpus: self.vcpus, ram_mb: self.ram, disk_gb: self.disk }
    }
}

/// The flavors a new deployment starts with (id, name, RAM MB, vCPUs, disk GB), as devstack's.
pub const DEFAULT_FLAVORS: &[(&str, &str, u64, u32, u64)] = &[
    ("42", "m1.nano", 64, 1, 0),
    ("1", "m1.tiny", 512, 1, 1),
    ("2", "m1.small", 2048, 1, 20),
    ("3", "m1.medium", 4096, 2, 40),
];

/// An image (Glance v2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    /// The owning project.
    pub owner: String,
    /// `public`, `private`, `shared` or `community`.
    pub visibility: String,
    /// `queued`, `saving`, `active`.
    pub status: String,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub size: Option<u64>,
    /// MD5 of the data, hex.
    pub checksum: Option<String>,
    /// SHA-512 of the data, hex.
    pub os_hash_value: Option<String>,
    pub min_disk: u64,
    pub min_ram: u64,
    pub protected: bool,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Additional properties the client set (shown at the top level, as Glance does).
    pub properties: Map<String, Value>,
}

impl Image {
    /// Whether a caller of `project` (admin or not) may see it.
    pub fn visible_to(&self, project: &str, admin: bool) -> bool {
        admin || self.owner == project || matches!(self.visibility.as_str(), "public" | "community")
    }
}

/// Nova's `vm_state`: what the server is, stably.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VmState {
    Building,
    Active,
    Paused,
    Suspended,
    Stopped,
    Error,
    Deleted,
}

impl VmState {
    pub fn name(self) -> &'static str {
        match self {
            VmState::Building => "building",
            VmState::Active => "active",
            VmState::Paused => "paused",
            VmState::Suspended => "suspended",
            VmState::Stopped => "stopped",
            VmState::Error => "error",
            VmState::Deleted => "deleted",
        }
    }

    /// The status the API shows (`BUILD`, `ACTIVE`, ...).
    pub fn status(self) -> &'static str {
        match self {
            VmState::Building => "BUILD",
            VmState::Active => "ACTIVE",
            VmState::Paused => "PAUSED",
            VmState::Suspended => "SUSPENDED",
            VmState::Stopped => "SHUTOFF",
            VmState::Error => "ERROR",
            VmState::Deleted => "DELETED",
        }
    }
}

/// Nova's `task_state`: what is being done to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    Scheduling,
    Spawning,
    Pausing,
    Unpausing,
    Suspending,
    Resuming,
    Deleting,
    /// Live migration (status `MIGRATING` while ACTIVE).
    Migrating,
}

impl TaskState {
    pub fn name(self) -> &'static str {
        match self {
            TaskState::Scheduling => "scheduling",
            TaskState::Spawning => "spawning",
            TaskState::Pausing => "pausing",
            TaskState::Unpausing => "unpausing",
            TaskState::Suspending => "suspending",
            TaskState::Resuming => "resuming",
            TaskState::Deleting => "deleting",
            TaskState::Migrating => "migrating",
        }
    }
}

/// Nova's power state numbers.
pub fn power_state_code(p: Option<Power>) -> u8 {
    match p {
        None => 0,
        Some(Power::Running) => 1,
        Some(Power::Paused) => 3,
        Some(Power::Shutdown) | Some(Power::Gone) => 4,
        Some(Power::Suspended) => 7,
    }
}

/// Why a server is in ERROR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub code: u16,
    pub message: String,
    pub created: i64,
}

/// A server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    pub image_id: String,
    /// The flavor as it was when the server was created.
    pub flavor: Flavor,
    pub nics: Vec<NicRequest>,
    /// Security group ids or names as requested.
    pub security_groups: Vec<String>,
    pub vm_state: VmState,
    pub task_state: Option<TaskState>,
    pub power: Option<Power>,
    /// Where it was placed.
    pub host: Option<String>,
    /// The host the request asked for.
    pub requested_host: Option<String>,
    pub fault: Option<Fault>,
    pub ports: Vec<PortInfo>,
    pub created: i64,
    pub updated: i64,
}

/// Why an action is refused: Nova's "Cannot 'pause' instance X while it is in vm_state paused".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Cannot '{action}' instance {id} while it is in {what} {state}")]
pub struct InvalidState {
    pub action: &'static str,
    pub id: String,
    /// `vm_state` or `task_state`.
    pub what: &'static str,
    pub state: &'static str,
}

/// The Nova name of an action.
pub fn action_name(a: Action) -> &'static str {
    match a {
        Action::Pause => "pause",
        Action::Unpause => "unpause",
        Action::Suspend => "suspend",
        Action::Resume => "resume",
        Action::Delete => "delete",
    }
}

impl Server {
    /// The status the API shows: the vm_state's, except `MIGRATING` for an active server
    /// being live-migrated (as Nova maps them; a paused one stays `PAUSED`).
    pub fn status(&self) -> &'static str {
        if self.vm_state == VmState::Active && self.task_state == Some(TaskState::Migrating) {
            return "MIGRATING";
        }
        self.vm_state.status()
    }

    /// Checks that a live migration may start now (ACTIVE or PAUSED, nothing else going on).
    pub fn begin_live_migration(&self) -> Result<(), InvalidState> {
        let refuse = |what: &'static str, state: &'static str| InvalidState {
            action: "os-migrateLive",
            id: self.id.clone(),
            what,
            state,
        };
        if let Some(t) = self.task_state {
            return Err(refuse("task_state", t.name()));
        }
        match self.vm_state {
            VmState::Active | VmState::Paused => Ok(()),
            other => Err(refuse("vm_state", other.name())),
        }
    }

    /// Applies the source agent's word on a live migration to `dest` (progress reports
    /// change nothing here). `completed`: the server is at `host` (the destination) with
    /// `ports`; `error` without `fault`: it still runs at `host` (the source) as before,
    /// with a fault saying why; `error` with `fault`: it failed after the switch-over and
    /// is in ERROR at `host`.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_migration(
        &mut self,
        dest: &str,
        status: MigrationStatus,
        error: Option<&str>,
        host: &str,
        power: Option<Power>,
        fault: Option<String>,
        ports: Vec<PortInfo>,
        now: i64,
    ) {
        if status.in_progress() || self.task_state != Some(TaskState::Migrating) {
            return;
        }
        self.updated = now;
        self.host = Some(host.to_string());
        if !ports.is_empty() {
            self.ports = ports;
        }
        if let Some(p) = power {
            self.power = Some(p);
        }
        self.task_state = None;
        if let Some(message) = fault {
            self.vm_state = VmState::Error;
            self.fault = Some(Fault { code: 500, message, created: now });
            return;
        }
        self.vm_state = match self.power {
            Some(Power::Paused) => VmState::Paused,
            _ => VmState::Active,
        };
        self.fault = match status {
            MigrationStatus::Completed => None,
            _ => Some(Fault {
                code: 500,
                message: format!("Live migration to {dest} failed: {}", error.unwrap_or("unknown error")),
                created: now,
            }),
        };
    }

    /// Checks that `action` is allowed now and returns the task state it starts.
    pub fn begin(&self, action: Action) -> Result<TaskState, InvalidState> {
        let refuse = |what: &'static str, state: &'static str| InvalidState {
            action: action_name(action),
            id: self.id.clone(),
            what,
            state,
        };
        if let Some(t) = self.task_state {
            if action != Action::Delete || matches!(t, TaskState::Deleting | TaskState::Migrating) {
                return Err(refuse("task_state", t.name()));
            }
        }
        let (allowed, task): (&[VmState], TaskState) = match action {
            Action::Pause => (&[VmState::Active], TaskState::Pausing),
            Action::Unpause => (&[VmState::Paused], TaskState::Unpausing),
            Action::Suspend => (&[VmState::Active], TaskState::Suspending),
            Action::Resume => (&[VmState::Suspended], TaskState::Resuming),
            Action::Delete => (
                &[
                    VmState::Building,
                    VmState::Active,
                    VmState::Paused,
                    VmState::Suspended,
                    VmState::Stopped,
                    VmState::Error,
                ],
                TaskState::Deleting,
            ),
        };
        if allowed.contains(&self.vm_state) {
            Ok(task)
        } else {
            Err(refuse("vm_state", self.vm_state.name()))
        }
    }

    /// Applies an agent's report; returns false when the server is gone (to be removed).
    pub fn apply_report(&mut self, host: &str, power: Option<Power>, fault: Option<String>, now: i64) -> bool {
        self.host = Some(host.to_string());
        self.updated = now;
        if let Some(message) = fault {
            self.vm_state = VmState::Error;
            if self.task_state != Some(TaskState::Deleting) {
                self.task_state = None;
            }
            self.fault = Some(Fault { code: 500, message, created: now });
            if power.is_some() {
                self.power = power;
            }
            return power != Some(Power::Gone);
        }
        self.power = power;
        let vm = match power {
            None => {
                self.task_state = Some(TaskState::Spawning);
                return true;
            }
            Some(Power::Gone) => return false,
            Some(Power::Running) => VmState::Active,
            Some(Power::Paused) => VmState::Paused,
            Some(Power::Suspended) => VmState::Suspended,
            Some(Power::Shutdown) => VmState::Stopped,
        };
        self.vm_state = vm;
        self.fault = None;
        if self.task_state != Some(TaskState::Deleting) {
            self.task_state = None;
        }
        true
    }
}

/// A live migration as the API records it (Nova's `migrations` row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    /// Nova's integer id (1, 2, ...).
    pub id: u64,
    pub uuid: String,
    pub server_id: String,
    pub project_id: String,
    pub user_id: String,
    pub source_host: String,
    pub dest_host: String,
    /// The destination agent's address (Nova's `dest_host` is an address).
    pub dest_address: String,
    pub kind: MigrationKind,
    pub status: MigrationStatus,
    /// Why it failed.
    pub error: Option<String>,
    pub flavor_id: String,
    pub created: i64,
    pub updated: i64,
}

impl Migration {
    /// Takes a progress or outcome report; progress never goes backwards and a finished
    /// migration stays finished.
    pub fn advance(&mut self, status: MigrationStatus, error: Option<String>, now: i64) {
        let rank = |s: MigrationStatus| match s {
            MigrationStatus::Queued => 0,
            MigrationStatus::Preparing => 1,
            MigrationStatus::Running => 2,
            _ => 3,
        };
        if !self.status.in_progress() || rank(status) < rank(self.status) {
            return;
        }
        self.status = status;
        if error.is_some() {
            self.error = error;
        }
        self.updated = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> Server {
        Server {
            id: "s1".into(),
            name: "vm".into(),
            project_id: "p".into(),
            user_id: "u".into(),
            image_id: "i".into(),
            flavor: Flavor {
                id: "1".into(),
                name: "m1.tiny".into(),
                vcpus: 1,
                ram: 512,
                disk: 1,
                is_public: true,
                description: None,
            },
            nics: vec![],
            security_groups: vec![],
            vm_state: VmState::Building,
            task_state: Some(TaskState::Scheduling),
            power: None,
            host: None,
            requested_host: None,
            fault: None,
            ports: vec![],
            created: 0,
            updated: 0,
        }
    }

    #[test]
    fn reports_drive_the_status() {
        let mut s = server();
        assert!(s.apply_report("h", None, None, 1));
        assert_eq!((s.status(), s.task_state), ("BUILD", Some(TaskState::Spawning)));
        assert!(s.apply_report("h", Some(Power::Running), None, 2));
        assert_eq!((s.status(), s.task_state, power_state_code(s.power)), ("ACTIVE", None, 1));
        assert!(s.apply_report("h", Some(Power::Paused), None, 3));
        assert_eq!((s.status(), power_state_code(s.power)), ("PAUSED", 3));
        assert!(s.apply_report("h", Some(Power::Suspended), None, 3));
        assert_eq!((s.status(), power_state_code(s.power)), ("SUSPENDED", 7));
        assert!(s.apply_report("h", None, Some("disk full".into()), 4));
        assert_eq!(s.status(), "ERROR");
        assert_eq!(s.fault.as_ref().map(|f| f.message.as_str()), Some("disk full"));
        assert!(!s.apply_report("h", Some(Power::Gone), None, 5));
    }

    #[test]
    fn actions_need_the_right_state() {
        let mut s = server();
        s.task_state = None;
        s.vm_state = VmState::Active;
        assert_eq!(s.begin(Action::Pause), Ok(TaskState::Pausing));
        assert_eq!(s.begin(Action::Suspend), Ok(TaskState::Suspending));
        let err = s.begin(Action::Unpause).expect_err("not paused");
        assert_eq!(err.to_string(), "Cannot 'unpause' instance s1 while it is in vm_state active");
        s.vm_state = VmState::Paused;
        assert!(s.begin(Action::Pause).is_err());
        assert_eq!(s.begin(Action::Unpause), Ok(TaskState::Unpausing));
        s.task_state = Some(TaskState::Unpausing);
        assert!(s.begin(Action::Unpause).is_err());
        assert_eq!(s.begin(Action::Delete), Ok(TaskState::Deleting));
        s.task_state = Some(TaskState::Deleting);
        assert!(s.begin(Action::Delete).is_err());
    }

    #[test]
    fn live_migration_moves_the_server_or_leaves_a_fault() {
        let mut s = server();
        s.task_state = None;
        s.vm_state = VmState::Suspended;
        assert_eq!(
            s.begin_live_migration().expect_err("suspended").to_string(),
            "Cannot 'os-migrateLive' instance s1 while it is in vm_state suspended"
        );
        s.vm_state = VmState::Active;
        s.host = Some("a".into());
        assert!(s.begin_live_migration().is_ok());
        s.task_state = Some(TaskState::Migrating);
        assert_eq!(s.status(), "MIGRATING");
        assert!(s.begin(Action::Pause).is_err() && s.begin(Action::Delete).is_err());
        s.apply_migration("b", MigrationStatus::Running, None, "a", Some(Power::Running), None, vec![], 1);
        assert_eq!((s.status(), s.host.as_deref()), ("MIGRATING", Some("a")));
        s.apply_migration("b", MigrationStatus::Error, Some("no room"), "a", Some(Power::Running), None, vec![], 2);
        assert_eq!((s.status(), s.host.as_deref(), s.task_state), ("ACTIVE", Some("a"), None));
        assert_eq!(s.fault.as_ref().map(|f| f.message.as_str()), Some("Live migration to b failed: no room"));
        s.task_state = Some(TaskState::Migrating);
        s.apply_migration("b", MigrationStatus::Completed, None, "b", Some(Power::Running), None, vec![], 3);
        assert_eq!((s.status(), s.host.as_deref(), s.fault.clone()), ("ACTIVE", Some("b"), None));
        s.task_state = Some(TaskState::Migrating);
        s.apply_migration("c", MigrationStatus::Error, Some("x"), "c", None, Some("after".into()), vec![], 4);
        assert_eq!((s.status(), s.host.as_deref()), ("ERROR", Some("c")));
    }

    #[test]
    fn migration_status_never_goes_back() {
        let mut m = Migration {
            id: 1,
            uuid: "u".into(),
            server_id: "s".into(),
            project_id: "p".into(),
            user_id: "u".into(),
            source_host: "a".into(),
            dest_host: "b".into(),
            dest_address: "127.0.0.1".into(),
            kind: MigrationKind::Block,
            status: MigrationStatus::Queued,
            error: None,
            flavor_id: "1".into(),
            created: 0,
            updated: 0,
        };
        m.advance(MigrationStatus::Running, None, 1);
        m.advance(MigrationStatus::Preparing, None, 2);
        assert_eq!(m.status, MigrationStatus::Running);
        m.advance(MigrationStatus::Error, Some("boom".into()), 3);
        m.advance(MigrationStatus::Completed, None, 4);
        assert_eq!((m.status, m.error.as_deref(), m.updated), (MigrationStatus::Error, Some("boom"), 3));
    }

    #[test]
    fn public_images_are_visible_to_all() {
        let mut i = Image {
            id: "i".into(),
            name: None,
            owner: "a".into(),
            visibility: "private".into(),
            status: "queued".into(),
            disk_format: None,
            container_format: None,
            size: None,
            checksum: None,
            os_hash_value: None,
            min_disk: 0,
            min_ram: 0,
            protected: false,
            tags: vec![],
            created_at: 0,
            updated_at: 0,
            properties: Map::new(),
        };
        assert!(i.visible_to("a", false) && !i.visible_to("b", false) && i.visible_to("b", true));
        i.visibility = "public".into();
        assert!(i.visible_to("b", false));
    }
}
