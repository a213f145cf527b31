//! The PostgreSQL backend, for production and for several daemon replicas.

use sqlx::postgres::PgPoolOptions;

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
];

/// One pool for reads and writes alike.
async fn connect_pools(url: &StoreUrl) -> Result<(Pool<Db>, Pool<Db>), StoreError> {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(url.expose())
        .await?;
    Ok((pool.clone(), pool))
}

async fn begin_write(pool: &Pool<Db>) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    pool.begin().await
}

include!("sql_common.rs");
include!("sql_report.rs");
