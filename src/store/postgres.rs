//! The PostgreSQL backend, for production and for several daemon replicas.

use sqlx::postgres::PgPoolOptions;

type Db = sqlx::Postgres;

const BACKEND: &str = "postgres";

/// PostgreSQL runs writers concurrently; row locks order them.
const SERIALIZE_WRITERS: bool = false;

/// Embedded migrations: (version, description, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("migrations/postgres/0001_init.sql")),
    (
        2,
        "links and lookups",
        include_str!("migrations/postgres/0002_links_and_lookups.sql"),
    ),
];

async fn connect_pool(url: &StoreUrl) -> Result<Pool<Db>, StoreError> {
    Ok(PgPoolOptions::new()
        .max_connections(8)
        .connect(url.expose())
        .await?)
}

async fn begin_write(pool: &Pool<Db>) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    pool.begin().await
}

include!("sql_common.rs");
