//! The PostgreSQL backend, for production and for several daemon replicas.

use std::str::FromStr;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

type Db = sqlx::Postgres;

const BACKEND: &str = "postgres";

/// PostgreSQL runs writers concurrently; row locks order them.
const SERIALIZE_WRITERS: bool = false;

/// Replicas evaluate one at a time: a transaction-scoped advisory lock.
const SERIALIZE_EVALUATIONS: Option<&str> = Some("SELECT pg_advisory_xact_lock(7142001)");

/// Replicas claim outbox rows without waiting for each other.
const CLAIM_LOCK: &str = "FOR UPDATE OF o SKIP LOCKED";

/// Embedded migrations: (version, description, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("migrations/postgres/0001_init.sql")),
    (
        2,
        "links and lookups",
        include_str!("migrations/postgres/0002_links_and_lookups.sql"),
    ),
    (
        3,
        "alerts and outbox",
        include_str!("migrations/postgres/0003_alerts_and_outbox.sql"),
    ),
    (
        4,
        "adapters and agency silences",
        include_str!("migrations/postgres/0004_adapters_and_agency_silences.sql"),
    ),
    (
        5,
        "leases",
        include_str!("migrations/postgres/0005_leases.sql"),
    ),
    (
        6,
        "covering payments index",
        include_str!("migrations/postgres/0006_covering_payments_index.sql"),
    ),
    (
        7,
        "quarantine lifecycle and held deletions",
        include_str!("migrations/postgres/0007_quarantine_lifecycle_and_held_deletions.sql"),
    ),
    // 8 is the store's new layout (issue 11), landing from another branch.
    (
        9,
        "actions",
        include_str!("migrations/postgres/0009_actions.sql"),
    ),
];

/// The URL's connection settings, without connecting.
pub fn connect_options(url: &StoreUrl) -> Result<PgConnectOptions, StoreError> {
    Ok(PgConnectOptions::from_str(url.expose())?
        .log_slow_statements(super::SLOW_STATEMENT_LOG, super::SLOW_STATEMENT))
}

/// One pool for reads and writes alike.
///
/// One connection is made first, on its own: a pool retries a failing
/// connect until its acquire timeout (30 s) and then reports only that it
/// timed out, where this says at once what went wrong ("Connection
/// refused", a wrong password, an unknown database).
async fn connect_pools(url: &StoreUrl) -> Result<(Pool<Db>, Pool<Db>), StoreError> {
    let options = connect_options(url)?;
    let first = tokio::time::timeout(super::CONNECT_TIMEOUT, options.connect())
        .await
        .map_err(|_| StoreError::NoAnswer(super::CONNECT_TIMEOUT))??;
    // The probe has done its work; a failure to say goodbye is not the
    // store's problem.
    let _ = sqlx::Connection::close(first).await;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    Ok((pool.clone(), pool))
}

async fn begin_write(pool: &Pool<Db>) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    pool.begin().await
}

include!("sql_common.rs");
include!("sql_report.rs");
include!("sql_actions.rs");
