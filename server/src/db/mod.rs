//! The database: SQLite by default (a file under the data folder, WAL,
//! `synchronous=FULL`), PostgreSQL for a `postgres://` URL (DESIGN §6).
//!
//! One code path serves both through sqlx's `Any` driver: every query is
//! written once with `$1`-style parameters, which SQLite reads by number too,
//! and only portable types cross the boundary (text, 64-bit integers, bytes).
//! Times are milliseconds since the Unix epoch; dates are ISO 8601 text.

pub mod accounts;
pub mod blobs;
pub mod documents;
pub mod reference;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor};

/// A database failure; the cause is for the log, never for the client.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database could not be reached or refused a statement.
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names no database this server supports.
    #[error("{0}")]
    Url(String),
    /// The data folder could not be made.
    #[error("data folder {path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A stored value does not read back as what it should be.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Rows appeared under a statement that the transaction's lock should
    /// have kept out (the transaction is rolled back and may be retried).
    #[error("concurrent write: {0}")]
    Raced(String),
    /// A fault a test put in the writer's way (see
    /// [`crate::sync::writer::CommitFaults`]).
    #[error("injected fault: {0}")]
    Injected(String),
}

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbKind {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The connection pool and what it is connected to.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    kind: DbKind,
    url: std::sync::Arc<str>,
}

/// A transaction on either database.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// The parameters of a statement built at run time (a multi-row insert), in
/// the order they are bound: `$1, $2, ...` on PostgreSQL, a bare `?` on
/// SQLite, whose parser and binder look each `$n` up by name in a list (so a
/// statement of a thousand parameters cost a million string comparisons to
/// prepare) but take a bare `?` as simply the next one.
#[derive(Debug)]
pub(crate) struct Params {
    numbered: bool,
    next: usize,
}

impl Params {
    /// The parameters of a statement to run in `tx`.
    pub(crate) fn of(tx: &Tx) -> Params {
        Params {
            numbered: tx.backend_name() != "SQLite",
            next: 1,
        }
    }

    /// Appends `n` parameters to `sql`, separated by commas.
    pub(crate) fn list(&mut self, sql: &mut String, n: usize) {
        use std::fmt::Write;
        for i in 0..n {
            if i > 0 {
                sql.push_str(", ");
            }
            if self.numbered {
                let _ = write!(sql, "${}", self.next);
            } else {
                sql.push('?');
            }
            self.next += 1;
        }
    }

    /// Appends `rows` rows of `per_row` parameters, `(.., ..), (.., ..)`.
    pub(crate) fn rows(&mut self, sql: &mut String, rows: usize, per_row: usize) {
        for i in 0..rows {
            sql.push_str(if i == 0 { "(" } else { ", (" });
            self.list(sql, per_row);
            sql.push(')');
        }
    }
}

impl Db {
    /// Connects to `url` (`sqlite://...` or `postgres://...`), creating a
    /// SQLite file and its folder if they do not exist.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let kind = if url.starts_with("sqlite:") {
            DbKind::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            DbKind::Postgres
        } else {
            return Err(DbError::Url(format!(
                "The database URL must start with sqlite: or postgres:// (got '{}').",
                url.split(':').next().unwrap_or_default()
            )));
        };
        let mut url = url.to_owned();
        if kind == DbKind::Sqlite {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:")
                .split('?')
                .next()
                .unwrap_or_default()
                .to_owned();
            if let Some(parent) = Path::new(&path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent).map_err(|source| DbError::Folder {
                    path: parent.display().to_string(),
                    source,
                })?;
            }
            if !url.contains("mode=") {
                url.push_str(if url.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
        }
        let options = AnyConnectOptions::from_str(&url)?;
        let url: std::sync::Arc<str> = url.into();
        let pool = AnyPoolOptions::new()
            .max_connections(match kind {
                DbKind::Sqlite => 8,
                DbKind::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            // A SQLite connection is a file in this process: it does not go
            // stale, and pinging it costs every transaction a round trip to
            // its thread (on a live edit's path, one of several).
            .test_before_acquire(kind == DbKind::Postgres)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if kind == DbKind::Sqlite {
                        // Durability first: every commit reaches the disk before it is acknowledged.
                        // Checkpoints run beside the commits (see `checkpoints`), not
                        // inside whichever commit fills the log. Statement journals
                        // (a multi-row insert keeps one in case it must undo itself)
                        // stay in memory rather than in a temporary file. Each
                        // connection caches 512 KiB of pages: with SQLite's default
                        // of 2 MiB, all eight filled theirs reading documents through
                        // a mass reconnect, 8 MiB more at the server's peak, and
                        // saved no measurable CPU (the system's file cache holds the rest).
                        conn.execute(sqlx::raw_sql(
                            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; \
                             PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000; \
                             PRAGMA wal_autocheckpoint=0; PRAGMA temp_store=MEMORY; \
                             PRAGMA cache_size=-512;",
                        ))
                        .await?;
                    } else {
                        // Durability first here too: a commit is acknowledged once
                        // it is on disk, whatever the database's or the role's
                        // default says (`ALTER DATABASE ... SET synchronous_commit
                        // = off` would otherwise lose acknowledged changes in a crash).
                        conn.execute("SET synchronous_commit = on").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        if kind == DbKind::Sqlite {
            tokio::spawn(checkpoints(pool.clone()));
        }
        Ok(Db { pool, kind, url })
    }

    /// Which database this is.
    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// The URL it was opened with (for connections outside the pool: LISTEN).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The pool, for queries outside a transaction.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a transaction.
    pub async fn begin(&self) -> Result<Tx, DbError> {
        Ok(self.pool.begin().await?)
    }

    /// Applies every migration not yet applied (embedded in the binary).
    pub async fn migrate(&self) -> Result<(), DbError> {
        self.migrate_through(i64::MAX).await
    }

    /// Applies the migrations not yet applied up to and including `version`:
    /// a database as an older `sqm` left it (tests of upgrades).
    pub async fn migrate_through(&self, version: i64) -> Result<(), DbError> {
        let files: &[(i64, &str, &'static str)] = match self.kind {
            DbKind::Sqlite => &[
                (
                    1,
                    "reference",
                    include_str!("../../../migrations/sqlite/0001_reference.sql"),
                ),
                (
                    2,
                    "documents",
                    include_str!("../../../migrations/sqlite/0002_documents.sql"),
                ),
                (
                    3,
                    "blobs",
                    include_str!("../../../migrations/sqlite/0003_blobs.sql"),
                ),
                (
                    4,
                    "receipts unindexed",
                    include_str!("../../../migrations/sqlite/0004_receipts_unindexed.sql"),
                ),
                (
                    5,
                    "account maker",
                    include_str!("../../../migrations/sqlite/0005_account_maker.sql"),
                ),
                (
                    6,
                    "blob holders",
                    include_str!("../../../migrations/sqlite/0006_blob_holders.sql"),
                ),
                (
                    7,
                    "contested values",
                    include_str!("../../../migrations/sqlite/0007_contested_values.sql"),
                ),
                (
                    8,
                    "search",
                    include_str!("../../../migrations/sqlite/0008_search.sql"),
                ),
                (
                    9,
                    "due rules",
                    include_str!("../../../migrations/sqlite/0009_due_rules.sql"),
                ),
                (
                    10,
                    "checklist rules",
                    include_str!("../../../migrations/sqlite/0010_checklist_rules.sql"),
                ),
                (
                    11,
                    "contested values of any document",
                    include_str!("../../../migrations/sqlite/0011_contested_any_document.sql"),
                ),
            ],
            DbKind::Postgres => &[
                (
                    1,
                    "reference",
                    include_str!("../../../migrations/postgres/0001_reference.sql"),
                ),
                (
                    2,
                    "documents",
                    include_str!("../../../migrations/postgres/0002_documents.sql"),
                ),
                (
                    3,
                    "blobs",
                    include_str!("../../../migrations/postgres/0003_blobs.sql"),
                ),
                (
                    4,
                    "receipts unindexed",
                    include_str!("../../../migrations/postgres/0004_receipts_unindexed.sql"),
                ),
                (
                    5,
                    "account maker",
                    include_str!("../../../migrations/postgres/0005_account_maker.sql"),
                ),
                (
                    6,
                    "blob holders",
                    include_str!("../../../migrations/postgres/0006_blob_holders.sql"),
                ),
                (
                    7,
                    "contested values",
                    include_str!("../../../migrations/postgres/0007_contested_values.sql"),
                ),
                (
                    8,
                    "search",
                    include_str!("../../../migrations/postgres/0008_search.sql"),
                ),
                (
                    9,
                    "due rules",
                    include_str!("../../../migrations/postgres/0009_due_rules.sql"),
                ),
                (
                    10,
                    "checklist rules",
                    include_str!("../../../migrations/postgres/0010_checklist_rules.sql"),
                ),
                (
                    11,
                    "contested values of any document",
                    include_str!("../../../migrations/postgres/0011_contested_any_document.sql"),
                ),
            ],
        };
        let migrations = files
            .iter()
            .filter(|(v, _, _)| *v <= version)
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    (*name).into(),
                    MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(*sql),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection (waits for those in use).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// How often the SQLite log is copied into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Copies SQLite's write-ahead log into the database file while the pool
/// is open. A passive checkpoint waits for no reader or writer, so commits
/// never pay for it (with SQLite's automatic checkpoints, the commit that
/// fills the log copies it, which made one commit in a hundred slow). Each
/// commit is durable in the log already: this only keeps the log short.
async fn checkpoints(pool: AnyPool) {
    while !pool.is_closed() {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = pool.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
            tracing::debug!(cause = %e, "checkpoint skipped");
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Reads a stored text column back into its type, or reports the row as corrupt.
pub(crate) fn parse_col<T>(what: &str, text: &str) -> Result<T, DbError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e| DbError::Corrupt(format!("{what} '{text}': {e}")))
}

#[cfg(test)]
mod tests {
    use super::accounts::hex;

    #[test]
    fn hex_spells_every_byte_as_two_lowercase_digits() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff, 0x5c]), "000fa0ff5c");
    }
}
