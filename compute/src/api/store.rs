//! The database: sqlx `Any` over SQLite (the same SQL runs on PostgreSQL). Each table
//! keeps an object's id, the column it is searched by (`owner`: a project or a host) and
//! the whole object as JSON text (`body`), as netapi does.
//!
//! Writes are serialised by the caller ([`super::AppState::write`]): every
//! read-modify-write of an object happens under that lock.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};

/// The migrations, embedded in the binary.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/0001_init.sql")),
    (2, "migrations", include_str!("../../migrations/0002_migrations.sql")),
];

/// The tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Flavors,
    Images,
    Servers,
    Hosts,
    /// Live migrations, by UUID (owner: the server).
    Migrations,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Flavors => "flavors",
            Table::Images => "images",
            Table::Servers => "servers",
            Table::Hosts => "hosts",
            Table::Migrations => "migrations",
        }
    }
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored {table} object {id} is not valid: {source}")]
    Corrupt { table: &'static str, id: String, source: serde_json::Error },
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
}

impl From<StoreError> for super::error::ApiError {
    fn from(e: StoreError) -> Self {
        super::error::ApiError::internal(e)
    }
}

/// A handle on the database (cheap to clone).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
}

impl Store {
    /// Opens (creating a SQLite file if missing) and migrates.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let url = if let Some(rest) = url.strip_prefix("sqlite:") {
            let sep = if rest.contains('?') { '&' } else { '?' };
            if rest.contains("mode=") {
                url.to_string()
            } else {
                format!("{url}{sep}mode=rwc")
            }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            url.to_string()
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let options: AnyConnectOptions = url.parse()?;
        if url.starts_with("sqlite:") {
            let mut conn = AnyConnection::connect_with(&options).await?;
            conn.execute("PRAGMA journal_mode = WAL").await?;
            conn.close().await?;
        }
        let pool = AnyPoolOptions::new().max_connections(4).connect_with(options).await?;
        let migrations = MIGRATIONS
            .iter()
            .map(|(v, d, sql)| Migration::new(*v, Cow::Borrowed(*d), MigrationType::Simple, Cow::Borrowed(*sql), false))
            .collect::<Vec<_>>();
        let migrator =
            Migrator { migrations: Cow::Owned(migrations), ignore_missing: false, locking: true, no_tx: false };
        migrator.run(&pool).await?;
        Ok(Store { pool })
    }

    /// The object `id` of `table`.
    pub async fn get<T: DeserializeOwned>(&self, table: Table, id: &str) -> Result<Option<T>, StoreError> {
        let row = sqlx::query(&format!("SELECT body FROM {} WHERE id = $1", table.name()))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(parse(table, id, &r.try_get::<String, _>(0)?)?)),
            None => Ok(None),
        }
    }

    /// Every object of `table` (of `owner` when given), oldest first.
    pub async fn list<T: DeserializeOwned>(&self, table: Table, owner: Option<&str>) -> Result<Vec<T>, StoreError> {
        let rows = match owner {
            Some(o) => {
                sqlx::query(&format!("SELECT id, body FROM {} WHERE owner = $1 ORDER BY seq", table.name()))
                    .bind(o.to_string())
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(&format!("SELECT id, body FROM {} ORDER BY seq", table.name()))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter()
            .map(|r| {
                let id: String = r.try_get(0)?;
                let body: String = r.try_get(1)?;
                parse(table, &id, &body)
            })
            .collect()
    }

    /// Inserts or replaces object `id`.
    pub async fn put<T: Serialize>(&self, table: Table, id: &str, owner: &str, obj: &T) -> Result<(), StoreError> {
        let body = serde_json::to_string(obj).map_err(|source| StoreError::Corrupt {
            table: table.name(),
            id: id.to_string(),
            source,
        })?;
        let t = table.name();
        let updated = sqlx::query(&format!("UPDATE {t} SET owner = $1, body = $2 WHERE id = $3"))
            .bind(owner.to_string())
            .bind(body.clone())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        if updated.rows_affected() == 0 {
            sqlx::query(&format!(
                "INSERT INTO {t} (id, owner, body, seq) VALUES ($1, $2, $3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM {t}))"
            ))
            .bind(id.to_string())
            .bind(owner.to_string())
            .bind(body)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Removes object `id`; true if it was there.
    pub async fn delete(&self, table: Table, id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query(&format!("DELETE FROM {} WHERE id = $1", table.name()))
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn parse<T: DeserializeOwned>(table: Table, id: &str, body: &str) -> Result<T, StoreError> {
    serde_json::from_str(body).map_err(|source| StoreError::Corrupt { table: table.name(), id: id.to_string(), source })
}
