//! The SQLite backend: the embedded default, one file in WAL mode.
//!
//! Writers take the database lock at the start of their transaction
//! (`BEGIN IMMEDIATE`), so two writers queue on the busy timeout instead of
//! failing when a read lock cannot be upgraded.

use std::str::FromStr;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

type Db = sqlx::Sqlite;

const BACKEND: &str = "sqlite";

/// One writer at a time: SQLite has one write lock, and queueing here is
/// fairer than spinning on its busy timeout.
const SERIALIZE_WRITERS: bool = true;

/// SQLite's write lock already serialises evaluations.
const SERIALIZE_EVALUATIONS: Option<&str> = None;

/// SQLite has no row locks; its single writer makes claims exclusive.
const CLAIM_LOCK: &str = "";

/// Embedded migrations: (version, description, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("migrations/sqlite/0001_init.sql")),
    (
        2,
        "links and lookups",
        include_str!("migrations/sqlite/0002_links_and_lookups.sql"),
    ),
    (
        3,
        "alerts and outbox",
        include_str!("migrations/sqlite/0003_alerts_and_outbox.sql"),
    ),
    (
        4,
        "adapters and agency silences",
        include_str!("migrations/sqlite/0004_adapters_and_agency_silences.sql"),
    ),
    (
        5,
        "leases",
        include_str!("migrations/sqlite/0005_leases.sql"),
    ),
    (
        6,
        "covering payments index",
        include_str!("migrations/sqlite/0006_covering_payments_index.sql"),
    ),
    (
        7,
        "quarantine lifecycle and held deletions",
        include_str!("migrations/sqlite/0007_quarantine_lifecycle_and_held_deletions.sql"),
    ),
    // 8 is the store's new layout (issue 11), landing from another branch.
    (
        9,
        "actions",
        include_str!("migrations/sqlite/0009_actions.sql"),
    ),
];

/// The URL's connection settings, without opening the file.
pub fn connect_options(url: &StoreUrl) -> Result<SqliteConnectOptions, StoreError> {
    Ok(SqliteConnectOptions::from_str(url.expose())?
        .log_slow_statements(super::SLOW_STATEMENT_LOG, super::SLOW_STATEMENT))
}

/// Readers share a pool; writes run on one connection of their own, the only
/// one with a large page cache (`WRITER_CACHE_KIB`).
async fn connect_pools(url: &StoreUrl) -> Result<(Pool<Db>, Pool<Db>), StoreError> {
    let options = connect_options(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // In WAL mode NORMAL loses no committed transaction on a process
        // crash; only a power loss may roll back the last commits.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    let readers = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options.clone())
        .await?;
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        // Writers queue on the store's write lock first, so this
        // connection is normally free when one asks for it. A write cut off
        // mid-statement gives it back only once that statement ends, which
        // may be a `BEGIN IMMEDIATE` on the busy timeout: wait as long.
        .acquire_timeout(BUSY_TIMEOUT)
        .connect_with(options.pragma("cache_size", format!("-{WRITER_CACHE_KIB}")))
        .await?;
    Ok((readers, writer))
}

/// How long a writer waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(300);

/// The writer's page cache. A run's random inserts into the covering
/// indexes of millions of payments otherwise spill dirty pages to the WAL and
/// read them back all the time (at 500,000 payments, twice the time with the
/// 2 MiB default); readers keep the default, so memory stays bounded.
const WRITER_CACHE_KIB: u32 = 64 * 1024;

async fn begin_write(pool: &Pool<Db>) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

include!("sql_common.rs");
include!("sql_report.rs");
include!("sql_actions.rs");
