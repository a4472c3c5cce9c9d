//! Shared by the integration tests: a database per test, SQLite or PostgreSQL, removed or
//! dropped with its [`Db`].
//!
//! PostgreSQL must answer on 127.0.0.1:5432 with the role `tenet`/`tenet` allowed to
//! create databases (`labs/setup-host.sh` sets that up; `TENET_TEST_POSTGRES` overrides
//! the admin URL).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

const DEFAULT_PG: &str = "postgres://tenet:tenet@127.0.0.1:5432/postgres";

/// The PostgreSQL admin URL tests create their databases with.
pub fn pg_admin_url() -> String {
    std::env::var("TENET_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_PG.to_string())
}

/// A name unique to this process and call.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}_{}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), nanos % 100_000)
}

/// A database for one test; dropped (file removed / database dropped) with the value.
pub struct Db {
    /// The database URL.
    pub url: String,
    file: Option<std::path::PathBuf>,
    pg_name: Option<String>,
}

impl Db {
    /// A new SQLite file.
    pub fn sqlite() -> Db {
        let dir = std::env::temp_dir().join("tenet-netapi-tests");
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join(format!("{}.db", unique("store")));
        Db { url: format!("sqlite://{}", file.display()), file: Some(file), pg_name: None }
    }

    /// A new PostgreSQL database.
    pub async fn postgres() -> Db {
        let admin = pg_admin_url();
        let name = unique("tenet_test");
        sqlx::any::install_default_drivers();
        let pool = match sqlx::AnyPool::connect(&admin).await {
            Ok(p) => p,
            Err(e) => panic!(
                "PostgreSQL is not reachable at {admin} ({e}): run labs/setup-host.sh (it installs PostgreSQL and \
                 starts it on 127.0.0.1:5432 with the role tenet/tenet), or set TENET_TEST_POSTGRES"
            ),
        };
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&pool).await.expect("CREATE DATABASE");
        pool.close().await;
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin.clone());
        Db { url: format!("{base}/{name}"), file: None, pg_name: Some(name) }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(f) = &self.file {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", f.display()));
            }
        }
        if let Some(name) = self.pg_name.take() {
            // Dropped from a fresh runtime on its own thread: Drop cannot await.
            let admin = pg_admin_url();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                rt.block_on(async {
                    let pool = sqlx::AnyPool::connect(&admin).await.ok()?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&pool).await.ok()?;
                    pool.close().await;
                    Some(())
                })
            })
            .join();
        }
    }
}
