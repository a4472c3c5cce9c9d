//! The SQL store: one code path for SQLite and PostgreSQL through sqlx's `Any` driver.
//!
//! Every API write runs in one [`WriteTx`]: the transaction first bumps the global
//! revision (which also serialises writers on both engines, so check-then-insert
//! logic such as IP allocation is race-free), then logs every object it writes in
//! the `changes` table under that revision. Dropping a `WriteTx` without
//! [`WriteTx::commit`] rolls everything back, revision included.
//!
//! Resource tables keep searchable columns plus the whole API object as JSON text
//! in `body`; the SQL is written with `$N` placeholders, which both engines accept.
//!
//! The change feed reads from here too: [`Store::snapshot`] (every network object,
//! consistent at one revision, read in one transaction), [`Store::changes_after`],
//! and [`Store::subscribe`], which wakes when a write transaction commits.
//!
//! SQLite runs in WAL mode with `synchronous = NORMAL` by default: a commit is in the
//! WAL file (the OS page cache) when `COMMIT` returns, so it survives the process being
//! killed (`kill -9`); only an OS crash or power loss can lose the last commits, never
//! leaving a partial one. `StoreOptions::sqlite_synchronous_full` makes every commit
//! reach the disk. All writes go through one dedicated connection behind an async mutex
//! (writers queue in order instead of polling SQLite's busy handler), opened on the
//! writer thread ([`crate::writer`]) where write requests run.

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};
use std::time::{SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use serde_json::Value;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Row, Transaction};
use tokio::sync::{watch, Mutex, OwnedMutexGuard};

use crate::auth::TokenCache;
use crate::writer::WriterThread;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a statement.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// The schema migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored JSON body does not parse.
    #[error("stored {table} object {id} is not valid JSON: {source}")]
    Corrupt {
        /// Table holding the object.
        table: &'static str,
        /// The object's id.
        id: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The SQLite writer thread could not start.
    #[error("cannot start the writer thread: {0}")]
    Writer(std::io::Error),
    /// The SQLite writer thread is gone (the store is shutting down) or a task on it panicked.
    #[error("the writer thread is gone")]
    WriterGone,
    /// The database URL names an engine we do not support.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER:PASSWORD@HOST/DB")]
    UnsupportedUrl(String),
}

impl StoreError {
    /// True when the database rejected a write for breaking a UNIQUE or PRIMARY KEY constraint.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    /// True when the database rejected a write for breaking a FOREIGN KEY constraint.
    pub fn is_foreign_key_violation(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(e)) if e.is_foreign_key_violation())
    }
}

/// The migrations, embedded in the binary. Each works on SQLite and PostgreSQL.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (2, "bindings feed", include_str!("../migrations/0002_bindings_feed.sql")),
];

/// The object kinds of the desired state, with their tables, in the order a snapshot
/// lists them (what an object refers to comes before it). Port bindings follow the ports.
pub const STATE_KINDS: &[(&str, &str)] = &[
    ("network", "networks"),
    ("subnet", "subnets"),
    ("security_group", "security_groups"),
    ("security_group_rule", "security_group_rules"),
    ("port", "ports"),
    ("port_pair", "port_pairs"),
    ("port_pair_group", "port_pair_groups"),
    ("flow_classifier", "flow_classifiers"),
    ("port_chain", "port_chains"),
];

/// Which database engine a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// SQLite (one file, one process).
    Sqlite,
    /// PostgreSQL (possibly shared by several netapi replicas).
    Postgres,
}

/// How to open a store.
#[derive(Clone, Debug, Default)]
pub struct StoreOptions {
    /// SQLite: `synchronous = FULL` (every commit fsynced) instead of `NORMAL`.
    pub sqlite_synchronous_full: bool,
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Formats Unix seconds as an ISO 8601 UTC timestamp (`2026-11-25T07:07:00Z`).
pub fn iso8601(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// SQLite's writer: the dedicated connection every write transaction uses, and the
/// thread that opened it and runs write requests ([`crate::writer`]).
#[derive(Debug)]
struct Writer {
    conn: Arc<Mutex<WriterConn>>,
    thread: WriterThread,
}

/// The writer connection and whether a transaction is open on it (one dropped without
/// commit is rolled back before the next one begins).
#[derive(Debug)]
pub struct WriterConn {
    conn: AnyConnection,
    open: bool,
}

impl WriterConn {
    async fn rollback_if_open(&mut self) -> Result<(), StoreError> {
        if self.open {
            self.conn.execute("ROLLBACK").await?;
            self.open = false;
        }
        Ok(())
    }
}

/// A handle on the database (cheap to clone).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    /// SQLite only: the one writer.
    writer: Option<Arc<Writer>>,
    /// The highest revision committed through this store (feed subscribers wait on it).
    committed: Arc<watch::Sender<i64>>,
    /// Recently resolved tokens.
    tokens: Arc<TokenCache>,
}

impl Store {
    /// Connects to `url` (`sqlite://PATH`, created if missing, or `postgres://...`) and
    /// applies the migrations that are not yet applied.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, &StoreOptions::default()).await
    }

    /// [`Store::open`] with options.
    pub async fn open_with(url: &str, opts: &StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (url, max, engine) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let sep = if rest.contains('?') { '&' } else { '?' };
            let url = if rest.contains("mode=") { url.to_string() } else { format!("{url}{sep}mode=rwc") };
            (url, 4, Engine::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (url.to_string(), 8, Engine::Postgres)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let options: AnyConnectOptions = url.parse()?;
        let mut pool_options = AnyPoolOptions::new().max_connections(max);
        if engine == Engine::Sqlite {
            // A local file: no connection to go stale, so no ping (one thread hand-off) per acquire.
            pool_options = pool_options.test_before_acquire(false);
            // WAL is a property of the file: set it once, on one connection, before the pool opens more.
            let mut conn = AnyConnection::connect_with(&options).await?;
            conn.execute("PRAGMA journal_mode = WAL").await?;
            conn.close().await?;
            let sync =
                if opts.sqlite_synchronous_full { "PRAGMA synchronous = FULL" } else { "PRAGMA synchronous = NORMAL" };
            pool_options = pool_options.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    conn.execute(sync).await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options.connect_with(options.clone()).await?;
        let (committed, _) = watch::channel(0);
        let mut store = Store {
            pool,
            engine,
            writer: None,
            committed: Arc::new(committed),
            tokens: Arc::new(TokenCache::default()),
        };
        store.migrate().await?;
        if engine == Engine::Sqlite {
            let thread = WriterThread::start().map_err(StoreError::Writer)?;
            let sync_full = opts.sqlite_synchronous_full;
            // Opened on the writer thread, so that the connection's own thread shares its CPU.
            let conn = thread
                .run(async move {
                    let mut conn = AnyConnection::connect_with(&options).await?;
                    conn.execute(if sync_full { "PRAGMA synchronous = FULL" } else { "PRAGMA synchronous = NORMAL" })
                        .await?;
                    Ok::<_, sqlx::Error>(conn)
                })
                .await
                .ok_or(StoreError::WriterGone)??;
            tracing::debug!(cpu = ?thread.cpu(), "SQLite writer ready");
            store.writer =
                Some(Arc::new(Writer { conn: Arc::new(Mutex::new(WriterConn { conn, open: false })), thread }));
        }
        let revision = store.revision().await?;
        store.committed.send_replace(revision);
        tracing::debug!(?engine, revision, "store opened");
        Ok(store)
    }

    /// The engine this store runs on.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The cache of resolved tokens ([`crate::auth::resolve_token`]).
    pub fn token_cache(&self) -> &TokenCache {
        &self.tokens
    }

    /// Applies the embedded migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrations = MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(*version, Cow::Borrowed(*description), MigrationType::Simple, Cow::Borrowed(*sql), false)
            })
            .collect::<Vec<_>>();
        let migrator =
            Migrator { migrations: Cow::Owned(migrations), ignore_missing: false, locking: true, no_tx: false };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// The connection pool, for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs `fut` where write requests run: on SQLite the writer thread (see
    /// [`crate::writer`]), on PostgreSQL right here.
    pub async fn on_writer<F>(&self, fut: F) -> Result<F::Output, StoreError>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.writer {
            Some(w) => w.thread.run(fut).await.ok_or(StoreError::WriterGone),
            None => Ok(fut.await),
        }
    }

    /// True when write requests should move to the writer thread ([`Store::on_writer`]).
    pub fn has_writer_thread(&self) -> bool {
        self.writer.is_some()
    }

    /// Starts a transaction for a write that is not an API object change (issuing a token,
    /// pruning the log): no revision, no log. On SQLite it takes the one writer connection.
    pub async fn begin_plain_write(&self) -> Result<PlainTx, StoreError> {
        let (conn, janitor, _) = self.begin_tx(false).await?;
        Ok(PlainTx { conn, janitor })
    }

    /// Begins a transaction; with `bump`, also takes the next revision (returned).
    async fn begin_tx(&self, bump: bool) -> Result<(TxConn, Janitor, i64), StoreError> {
        const BUMP: &str = "UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value";
        match &self.writer {
            Some(w) => {
                let mut guard = w.conn.clone().lock_owned().await;
                guard.rollback_if_open().await?;
                let janitor = Janitor { writer: Some((w.conn.clone(), w.thread.handle().clone())) };
                guard.open = true;
                // SQLite runs both statements of one query: a thread hand-off saved per transaction.
                let revision = if bump {
                    let rows = sqlx::query(&format!("BEGIN; {BUMP}")).fetch_all(&mut guard.conn).await?;
                    rows.first().ok_or(sqlx::Error::RowNotFound)?.try_get(0)?
                } else {
                    guard.conn.execute("BEGIN").await?;
                    0
                };
                Ok((TxConn::Writer(guard), janitor, revision))
            }
            None => {
                let mut tx = self.pool.begin().await?;
                let revision = if bump { sqlx::query(BUMP).fetch_one(&mut *tx).await?.try_get(0)? } else { 0 };
                Ok((TxConn::Pool(tx), Janitor { writer: None }, revision))
            }
        }
    }

    /// Starts a write transaction: bumps the global revision first.
    ///
    /// The bump also orders commits: the next writer cannot take its revision before this
    /// transaction ends (SQLite: the one writer connection and the database lock;
    /// PostgreSQL: the lock on the revision row), so revisions commit in increasing order
    /// and a reader that sees revision `r` committed sees every revision below it too.
    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let (conn, janitor, revision) = self.begin_tx(true).await?;
        Ok(WriteTx { conn, janitor, revision, seq: 0, now: now_unix(), committed: self.committed.clone() })
    }

    /// A receiver of the highest revision committed through this store; it changes after
    /// every commit. (Writes by other replicas sharing a PostgreSQL database do not show
    /// here: feed readers also poll.)
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.committed.subscribe()
    }

    /// Revisions at or below this may have been pruned from the change log.
    pub async fn log_floor(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT value FROM change_log_floor WHERE id = 1").fetch_one(&self.pool).await?.try_get(0)?)
    }

    /// Prunes the change log up to `revision` (clamped to the current revision) and raises
    /// the floor to it, atomically. Returns the number of change rows removed.
    pub async fn compact_changes(&self, revision: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin_plain_write().await?;
        // Locks the revision row (PostgreSQL): no writer takes a revision meanwhile.
        let current: i64 = sqlx::query("UPDATE revision SET value = value WHERE id = 1 RETURNING value")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let upto = revision.min(current);
        let removed =
            sqlx::query("DELETE FROM changes WHERE revision <= $1").bind(upto).execute(&mut *tx).await?.rows_affected();
        sqlx::query("UPDATE change_log_floor SET value = $1 WHERE id = 1 AND value < $1")
            .bind(upto)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(upto, removed, "change log compacted");
        Ok(removed)
    }

    /// Starts a read-only transaction whose statements all see one snapshot of the database
    /// (PostgreSQL: REPEATABLE READ; SQLite: a WAL read transaction already is one).
    pub async fn begin_read(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.engine == Engine::Postgres {
            tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
        }
        Ok(tx)
    }

    /// Every object of the desired state ([`STATE_KINDS`] and port bindings), read in one
    /// transaction, with the revision it is consistent at.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut tx = self.begin_read().await?;
        let revision: i64 =
            sqlx::query("SELECT value FROM revision WHERE id = 1").fetch_one(&mut *tx).await?.try_get(0)?;
        let mut objects = Vec::new();
        for (kind, table) in STATE_KINDS {
            let sql = format!("SELECT id, project_id, body FROM {table} ORDER BY rev, id");
            for r in sqlx::query(&sql).fetch_all(&mut *tx).await? {
                objects.push(StateObject {
                    kind: (*kind).to_string(),
                    id: r.try_get(0)?,
                    project_id: r.try_get(1)?,
                    body: r.try_get(2)?,
                });
            }
            if *kind == "port" {
                let rows = sqlx::query(
                    "SELECT b.port_id, b.host, p.project_id, b.body FROM port_bindings b \
                     JOIN ports p ON p.id = b.port_id ORDER BY b.port_id, b.host",
                )
                .fetch_all(&mut *tx)
                .await?;
                for r in rows {
                    let port_id: String = r.try_get(0)?;
                    let host: String = r.try_get(1)?;
                    let id = format!("{port_id}/{host}");
                    let mut body = parse_body("port_bindings", &id, r.try_get(3)?)?;
                    body["port_id"] = Value::String(port_id);
                    objects.push(StateObject {
                        kind: "port_binding".into(),
                        id,
                        project_id: r.try_get(2)?,
                        body: body.to_string(),
                    });
                }
            }
        }
        tx.commit().await?;
        Ok(Snapshot { revision, objects })
    }

    /// The changes of the revisions after `revision`, oldest first, whole revisions only:
    /// about `limit` rows (more when one revision alone has more).
    pub async fn changes_after(&self, revision: i64, limit: i64) -> Result<Vec<RawChange>, StoreError> {
        const COLS: &str = "SELECT revision, seq, kind, op, id, project_id, body FROM changes";
        let limit = limit.max(1);
        let sql = format!("{COLS} WHERE revision > $1 ORDER BY revision, seq LIMIT $2");
        let mut out = raw_changes(sqlx::query(&sql).bind(revision).bind(limit).fetch_all(&self.pool).await?)?;
        if out.len() as i64 == limit {
            // The last revision may continue beyond the limit.
            let last = out.last().map(|c| c.revision).unwrap_or(revision);
            if out.first().map(|c| c.revision) == Some(last) {
                let sql = format!("{COLS} WHERE revision = $1 ORDER BY seq");
                out = raw_changes(sqlx::query(&sql).bind(last).fetch_all(&self.pool).await?)?;
            } else {
                out.retain(|c| c.revision != last);
            }
        }
        Ok(out)
    }

    /// The current global revision.
    pub async fn revision(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT value FROM revision WHERE id = 1").fetch_one(&self.pool).await?.try_get(0)?)
    }

    /// The changes logged after `revision`, oldest first.
    pub async fn changes_since(&self, revision: i64) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(
            "SELECT revision, kind, op, id, project_id, body FROM changes WHERE revision > $1 ORDER BY revision, seq",
        )
        .bind(revision)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get(3)?;
                let body: String = r.try_get(5)?;
                let body = serde_json::from_str(&body).map_err(|source| StoreError::Corrupt {
                    table: "changes",
                    id: id.clone(),
                    source,
                })?;
                Ok(Change {
                    revision: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    op: r.try_get(2)?,
                    id,
                    project_id: r.try_get(4)?,
                    body,
                })
            })
            .collect()
    }
}

/// One logged change: an object written (`op` = "put") or deleted ("delete") under `revision`.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The global revision of the transaction that made the change.
    pub revision: i64,
    /// The object's kind (`network`, `port`, ...).
    pub kind: String,
    /// `put` or `delete`.
    pub op: String,
    /// The object's id.
    pub id: String,
    /// The project owning the object.
    pub project_id: String,
    /// The object as the API shows it (the last state, for a delete).
    pub body: Value,
}

/// One logged change with its body as stored (JSON text), for the change feed.
#[derive(Clone, Debug, PartialEq)]
pub struct RawChange {
    /// The global revision of the transaction that made the change.
    pub revision: i64,
    /// Order within the revision.
    pub seq: i64,
    /// The object's kind.
    pub kind: String,
    /// `put` or `delete`.
    pub op: String,
    /// The object's id.
    pub id: String,
    /// The project owning the object.
    pub project_id: String,
    /// The object as JSON text.
    pub body: String,
}

fn raw_changes(rows: Vec<sqlx::any::AnyRow>) -> Result<Vec<RawChange>, StoreError> {
    rows.iter()
        .map(|r| {
            Ok(RawChange {
                revision: r.try_get(0)?,
                seq: r.try_get(1)?,
                kind: r.try_get(2)?,
                op: r.try_get(3)?,
                id: r.try_get(4)?,
                project_id: r.try_get(5)?,
                body: r.try_get(6)?,
            })
        })
        .collect()
}

/// One object of a [`Snapshot`].
#[derive(Clone, Debug, PartialEq)]
pub struct StateObject {
    /// The object's kind (as in the change log).
    pub kind: String,
    /// The object's id.
    pub id: String,
    /// The project owning it.
    pub project_id: String,
    /// The object as JSON text.
    pub body: String,
}

/// The whole desired state at one revision.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The revision the objects are consistent at.
    pub revision: i64,
    /// The objects, in [`STATE_KINDS`] order.
    pub objects: Vec<StateObject>,
}

/// The value of an extra column of a resource row.
#[derive(Clone, Debug)]
pub enum Col {
    /// A TEXT column.
    Text(String),
    /// A BIGINT column.
    Int(i64),
}

/// The connection of a write transaction.
enum TxConn {
    /// A pooled connection in a sqlx transaction (PostgreSQL; rolled back when dropped).
    Pool(Transaction<'static, Any>),
    /// The SQLite writer connection, with `BEGIN` issued.
    Writer(OwnedMutexGuard<WriterConn>),
}

impl TxConn {
    fn conn(&mut self) -> &mut AnyConnection {
        match self {
            TxConn::Pool(tx) => tx,
            TxConn::Writer(guard) => &mut guard.conn,
        }
    }

    fn conn_ref(&self) -> &AnyConnection {
        match self {
            TxConn::Pool(tx) => tx,
            TxConn::Writer(guard) => &guard.conn,
        }
    }

    async fn commit(self, janitor: &mut Janitor) -> Result<(), StoreError> {
        match self {
            TxConn::Pool(tx) => tx.commit().await?,
            TxConn::Writer(mut guard) => {
                guard.conn.execute("COMMIT").await?;
                guard.open = false;
                janitor.writer = None;
            }
        }
        Ok(())
    }
}

/// Rolls back, soon, a writer transaction dropped without commit (an error answered
/// mid-transaction), so the database lock is not held until the next write comes.
struct Janitor {
    writer: Option<(Arc<Mutex<WriterConn>>, tokio::runtime::Handle)>,
}

impl Drop for Janitor {
    fn drop(&mut self) {
        if let Some((conn, handle)) = self.writer.take() {
            handle.spawn(async move {
                if let Err(e) = conn.lock().await.rollback_if_open().await {
                    tracing::error!(error = %e, "rolling back an abandoned write transaction failed");
                }
            });
        }
    }
}

/// A write transaction that is not an object change ([`Store::begin_plain_write`]);
/// dropped without [`PlainTx::commit`], it rolls back.
pub struct PlainTx {
    conn: TxConn,
    janitor: Janitor,
}

impl PlainTx {
    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), StoreError> {
        let PlainTx { conn, mut janitor } = self;
        conn.commit(&mut janitor).await
    }
}

impl Deref for PlainTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        self.conn.conn_ref()
    }
}

impl DerefMut for PlainTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn.conn()
    }
}

/// A write transaction holding the next global revision.
pub struct WriteTx {
    conn: TxConn,
    janitor: Janitor,
    revision: i64,
    seq: i64,
    now: i64,
    committed: Arc<watch::Sender<i64>>,
}

impl Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        self.conn.conn_ref()
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn.conn()
    }
}

impl WriteTx {
    /// The revision this transaction writes.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The transaction's clock (Unix seconds).
    pub fn now(&self) -> i64 {
        self.now
    }

    /// Commits every write of the transaction and wakes the feed's subscribers.
    pub async fn commit(self) -> Result<(), StoreError> {
        let WriteTx { conn, mut janitor, revision, committed, .. } = self;
        conn.commit(&mut janitor).await?;
        committed.send_if_modified(|v| {
            let newer = *v < revision;
            if newer {
                *v = revision;
            }
            newer
        });
        Ok(())
    }

    /// Logs a change of object `id` under this transaction's revision.
    pub async fn record(
        &mut self,
        kind: &str,
        op: &str,
        id: &str,
        project_id: &str,
        body: &Value,
    ) -> Result<(), StoreError> {
        self.seq += 1;
        sqlx::query(
            "INSERT INTO changes (revision, seq, kind, op, id, project_id, body) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(self.revision)
        .bind(self.seq)
        .bind(kind.to_string())
        .bind(op.to_string())
        .bind(id.to_string())
        .bind(project_id.to_string())
        .bind(body.to_string())
        .execute(self.conn.conn())
        .await?;
        Ok(())
    }

    /// Inserts a resource row (`id`, `project_id`, `name`, `rev`, `body` plus `extra`
    /// columns) into `table` and logs it as `kind`.
    pub async fn insert(
        &mut self,
        table: &'static str,
        kind: &str,
        body: &Value,
        extra: &[(&'static str, Col)],
    ) -> Result<(), StoreError> {
        self.insert_unlogged(table, body, extra).await?;
        let (id, project, _) = identity_of(body);
        self.record(kind, "put", &id, &project, body).await
    }

    /// Inserts a resource row like [`WriteTx::insert`] without logging it: for an object
    /// completed later in the same transaction and logged then by [`WriteTx::update`].
    pub async fn insert_unlogged(
        &mut self,
        table: &'static str,
        body: &Value,
        extra: &[(&'static str, Col)],
    ) -> Result<(), StoreError> {
        self.insert_row(table, body, extra, false).await.map(|_| ())
    }

    /// Like [`WriteTx::insert_unlogged`], but a row breaking a UNIQUE constraint is not
    /// inserted and not an error (`INSERT ... ON CONFLICT DO NOTHING`): returns whether the
    /// row went in. One statement instead of a check and an insert.
    pub async fn insert_unlogged_if_absent(
        &mut self,
        table: &'static str,
        body: &Value,
        extra: &[(&'static str, Col)],
    ) -> Result<bool, StoreError> {
        self.insert_row(table, body, extra, true).await
    }

    async fn insert_row(
        &mut self,
        table: &'static str,
        body: &Value,
        extra: &[(&'static str, Col)],
        if_absent: bool,
    ) -> Result<bool, StoreError> {
        let (id, project, name) = identity_of(body);
        let mut columns = String::from("id, project_id, name, rev, body");
        let mut values = String::from("$1, $2, $3, $4, $5");
        for (i, (col, _)) in extra.iter().enumerate() {
            columns.push_str(", ");
            columns.push_str(col);
            values.push_str(&format!(", ${}", i + 6));
        }
        let conflict = if if_absent { " ON CONFLICT DO NOTHING" } else { "" };
        let sql = format!("INSERT INTO {table} ({columns}) VALUES ({values}){conflict}");
        let mut q = sqlx::query(&sql)
            .bind(id.clone())
            .bind(project.clone())
            .bind(name)
            .bind(self.revision)
            .bind(body.to_string());
        for (_, v) in extra {
            q = match v {
                Col::Text(t) => q.bind(t.clone()),
                Col::Int(i) => q.bind(*i),
            };
        }
        Ok(q.execute(self.conn.conn()).await?.rows_affected() > 0)
    }

    /// Replaces a resource row's name and body and logs it.
    pub async fn update(&mut self, table: &'static str, kind: &str, body: &Value) -> Result<(), StoreError> {
        let (id, project, name) = identity_of(body);
        if let TxConn::Writer(guard) = &mut self.conn {
            // SQLite runs both statements of one query, binding `$N` by number across them:
            // one thread hand-off instead of two for the most common write.
            self.seq += 1;
            let sql = format!(
                "UPDATE {table} SET name = $1, body = $2 WHERE id = $3; \
                 INSERT INTO changes (revision, seq, kind, op, id, project_id, body) VALUES ($4, $5, $6, 'put', $3, $7, $2)"
            );
            sqlx::query(&sql)
                .bind(name)
                .bind(body.to_string())
                .bind(id)
                .bind(self.revision)
                .bind(self.seq)
                .bind(kind.to_string())
                .bind(project)
                .execute(&mut guard.conn)
                .await?;
            return Ok(());
        }
        let sql = format!("UPDATE {table} SET name = $1, body = $2 WHERE id = $3");
        sqlx::query(&sql).bind(name).bind(body.to_string()).bind(id.clone()).execute(self.conn.conn()).await?;
        self.record(kind, "put", &id, &project, body).await
    }

    /// Deletes a resource row and logs its last state.
    pub async fn delete(&mut self, table: &'static str, kind: &str, body: &Value) -> Result<(), StoreError> {
        let (id, project, _) = identity_of(body);
        let sql = format!("DELETE FROM {table} WHERE id = $1");
        sqlx::query(&sql).bind(id.clone()).execute(self.conn.conn()).await?;
        self.record(kind, "delete", &id, &project, body).await
    }
}

/// `id`, `project_id` and `name` of an API object (empty strings when absent).
fn identity_of(body: &Value) -> (String, String, String) {
    let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    (s("id"), s("project_id"), s("name"))
}

/// Reads the JSON body of the row of `table` whose `id` is `id`.
pub async fn get_body(conn: &mut AnyConnection, table: &'static str, id: &str) -> Result<Option<Value>, StoreError> {
    let sql = format!("SELECT body FROM {table} WHERE id = $1");
    let row = sqlx::query(&sql).bind(id.to_string()).fetch_optional(conn).await?;
    row.map(|r| parse_body(table, id, r.try_get(0)?)).transpose()
}

/// Reads the JSON bodies of `table`'s rows where `column` equals `value` (every row when
/// `column` is `None`), oldest first.
pub async fn list_bodies(
    conn: &mut AnyConnection,
    table: &'static str,
    filter: Option<(&'static str, &str)>,
) -> Result<Vec<Value>, StoreError> {
    let rows = match filter {
        Some((column, value)) => {
            let sql = format!("SELECT id, body FROM {table} WHERE {column} = $1 ORDER BY rev, id");
            sqlx::query(&sql).bind(value.to_string()).fetch_all(conn).await?
        }
        None => {
            let sql = format!("SELECT id, body FROM {table} ORDER BY rev, id");
            sqlx::query(&sql).fetch_all(conn).await?
        }
    };
    rows.iter().map(|r| parse_body(table, &r.try_get::<String, _>(0)?, r.try_get(1)?)).collect()
}

/// Parses a stored JSON body.
pub fn parse_body(table: &'static str, id: &str, body: String) -> Result<Value, StoreError> {
    serde_json::from_str(&body).map_err(|source| StoreError::Corrupt { table, id: id.to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_formats_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_790_000_000), "2026-09-21T14:13:20Z");
    }
}
