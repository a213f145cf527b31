//! The PostgreSQL backend, for production and for several daemon replicas.

use std::collections::HashSet;
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

/// The run's temporary table of the keys its snapshots saw: one per
/// session, emptied at every commit (and by a rollback, of what it added).
const SEEN_SETUP: &[&str] = &[
    "CREATE TEMP TABLE IF NOT EXISTS seen_keys (stream_id BIGINT NOT NULL, key TEXT NOT NULL, \
     PRIMARY KEY (stream_id, key)) ON COMMIT DELETE ROWS",
    "DELETE FROM seen_keys",
];

/// A record `t` of stream `$1` marked as seen.
const SEEN_MARK: &str = "SELECT 1 FROM seen_keys s WHERE s.stream_id = $1 AND s.key = t.key";

/// The key, to be ordered as its bytes are (the order of a batch's
/// entries) whatever the database's collation.
const KEY_COLUMN: &str = "key COLLATE \"C\" AS key";

/// How a rule query's plan is asked for (`liankong bench --explain`).
const EXPLAIN_PREFIX: &str = "EXPLAIN ";

/// `EXPLAIN`'s lines as PostgreSQL writes them.
fn plan_text(rows: &[sqlx::postgres::PgRow]) -> Result<String, StoreError> {
    use sqlx::Row;
    let mut text = String::new();
    for row in rows {
        let line: String = row.try_get(0)?;
        text.push_str(&line);
        text.push('\n');
    }
    Ok(text)
}

/// A run that wrote this many versions to a table analyses it before it
/// commits.
const ANALYZE_AFTER: Option<u64> = Some(10_000);

/// PostgreSQL takes dates as dates.
fn date_bind(d: Option<chrono::NaiveDate>) -> Option<chrono::NaiveDate> {
    d
}

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
    (
        8,
        "current rows and batch chain",
        include_str!("migrations/postgres/0008_current_rows_and_batch_chain.sql"),
    ),
    (
        9,
        "actions",
        include_str!("migrations/postgres/0009_actions.sql"),
    ),
    (
        10,
        "alert views",
        include_str!("migrations/postgres/0010_alert_views.sql"),
    ),
    (
        11,
        "checkpoints",
        include_str!("migrations/postgres/0011_checkpoints.sql"),
    ),
    (
        12,
        "rule sum indexes",
        include_str!("migrations/postgres/0012_rule_sum_indexes.sql"),
    ),
];

/// The URL's connection settings, without connecting.
///
/// Every session runs with `jit = off`. The rules' queries join the outputs
/// of aggregates, which PostgreSQL has no statistics for, so it estimates
/// billions of rows and compiles each query: at a quarter province that
/// cost 1 to 2.5 s per run of the project facts and the unit quarters,
/// whose plans take a few hundred milliseconds to run.
pub fn connect_options(url: &StoreUrl) -> Result<PgConnectOptions, StoreError> {
    Ok(PgConnectOptions::from_str(url.expose())?
        .options([("jit", "off")])
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

/// Batches of at least this many rows land through `COPY` into a staging
/// table and one set-based merge instead of multi-row `INSERT`s: twice as
/// fast to land (and far fewer bound parameters to parse).
const COPY_MIN_ROWS: usize = 500;

/// Writes whole current rows (new or replaced).
async fn write_full_rows(
    tx: &mut Tx,
    collection: Collection,
    rows: Vec<(String, Current)>,
    first_seen: i64,
) -> Result<(), StoreError> {
    if rows.len() < COPY_MIN_ROWS {
        return insert_full_rows(tx, collection, rows, first_seen).await;
    }
    let table = schema::table(collection);
    let columns: Vec<&str> = [
        "key",
        "version",
        "deleted",
        "batch",
        "entry",
        "first_seen",
        "last_seen",
        "content",
    ]
    .into_iter()
    .chain(schema::columns(collection).iter().copied())
    .collect();
    let stage = format!("stage_{table}");
    // A session's staging table, emptied at every commit and after each
    // merge.
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table}) ON COMMIT DELETE ROWS"
    )))
    .execute(&mut **tx)
    .await?;
    let list = columns.join(", ");
    let mut copy = tx
        .copy_in_raw(&format!("COPY {stage} ({list}) FROM STDIN"))
        .await?;
    let mut buf = String::with_capacity(1 << 20);
    for (key, c) in rows {
        copy_text(&mut buf, Some(&key));
        buf.push('\t');
        buf.push_str(&c.version.to_string());
        buf.push('\t');
        buf.push(if c.deleted { 't' } else { 'f' });
        buf.push('\t');
        buf.push_str(&c.batch.to_string());
        buf.push_str("\t\\\\x");
        buf.push_str(&hex::encode(c.entry));
        buf.push('\t');
        buf.push_str(&first_seen.to_string());
        buf.push('\t');
        buf.push_str(&c.recorded.to_string());
        buf.push('\t');
        copy_text(&mut buf, c.content.as_deref());
        for value in c.values.unwrap_or_default() {
            buf.push('\t');
            match value {
                Value::Text(v) => copy_text(&mut buf, v.as_deref()),
                Value::Int(v) => copy_text(&mut buf, v.map(|v| v.to_string()).as_deref()),
                Value::Bool(v) => copy_text(&mut buf, v.map(|v| if v { "t" } else { "f" })),
                Value::Date(v) => copy_text(&mut buf, v.map(|v| v.to_string()).as_deref()),
            }
        }
        buf.push('\n');
        if buf.len() >= 1 << 20 {
            copy.send(std::mem::take(&mut buf).into_bytes()).await?;
            buf.reserve(1 << 20);
        }
    }
    if !buf.is_empty() {
        copy.send(buf.into_bytes()).await?;
    }
    copy.finish().await?;
    let updates: Vec<String> = columns
        .iter()
        .filter(|c| !matches!(**c, "key" | "first_seen"))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {table} ({list}) SELECT {list} FROM {stage} \
         ON CONFLICT (key) DO UPDATE SET {}",
        updates.join(", ")
    )))
    .execute(&mut **tx)
    .await?;
    sqlx::query(AssertSqlSafe(format!("TRUNCATE {stage}")))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One field of `COPY`'s text format: `\N` for NULL, and the four
/// characters it gives a meaning escaped.
fn copy_text(buf: &mut String, value: Option<&str>) {
    let Some(value) = value else {
        buf.push_str("\\N");
        return;
    };
    for ch in value.chars() {
        match ch {
            '\\' => buf.push_str("\\\\"),
            '\t' => buf.push_str("\\t"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            ch => buf.push(ch),
        }
    }
}

/// The current rows of `keys`, by one bound array.
async fn load_current(
    tx: &mut Tx,
    table: &str,
    keys: &[&str],
) -> Result<HashMap<String, Current>, StoreError> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT key, version, deleted, content, entry, batch, last_seen FROM {table} \
         WHERE key = ANY($1)"
    )))
    .bind(keys)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter().map(|row| current_of(row, table)).collect()
}

/// The keys a snapshot batch saw, by one bound array.
async fn record_seen(
    tx: &mut Tx,
    stream_id: i64,
    _start: StreamStart,
    _table: &str,
    keys: &[&str],
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO seen_keys (stream_id, key) SELECT $1, k FROM UNNEST($2::text[]) AS k \
         ON CONFLICT DO NOTHING",
    )
    .bind(stream_id)
    .bind(keys)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Compares `rows` (sorted, distinct keys, each with its new content, or
/// `None` to read the stored row whatever it holds) with the stored rows
/// on the server, by two bound arrays: only the rows that differ, and the
/// keys not stored at all, come back.
async fn load_differing(
    tx: &mut Tx,
    table: &str,
    rows: &[(&str, Option<&str>)],
) -> Result<Differing, StoreError> {
    let keys: Vec<&str> = rows.iter().map(|(key, _)| *key).collect();
    let contents: Vec<Option<&str>> = rows.iter().map(|(_, content)| *content).collect();
    let found = sqlx::query(AssertSqlSafe(differing_rows(
        table,
        "UNNEST($1::text[], $2::text[]) AS i(key, content)",
    )))
    .bind(&keys)
    .bind(&contents)
    .fetch_all(&mut **tx)
    .await?;
    let mut current = HashMap::with_capacity(found.len());
    for row in found {
        let (key, row) = current_of(&row, table)?;
        current.insert(key, row);
    }
    let absent: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT i.key FROM UNNEST($1::text[]) AS i(key) WHERE NOT EXISTS \
         (SELECT 1 FROM {table} t WHERE t.key = i.key)"
    )))
    .bind(&keys)
    .fetch_all(&mut **tx)
    .await?;
    Ok(Differing {
        current,
        absent: absent.into_iter().collect(),
    })
}

/// The keys of a batch compared by [`load_differing`], as seen.
async fn record_seen_differing(
    tx: &mut Tx,
    stream_id: i64,
    start: StreamStart,
    table: &str,
    keys: &[&str],
) -> Result<(), StoreError> {
    record_seen(tx, stream_id, start, table, keys).await
}

/// A run that wrote this much to a table is followed by a `VACUUM` of the
/// table (see [`SqlSyncTx::commit`]).
const VACUUM_AFTER: Option<u64> = ANALYZE_AFTER;

/// None: on PostgreSQL, `DROP INDEX` locks its table against every reader
/// until the run commits, so a first load keeps its indexes and inserts
/// into them as it goes (see SQLite's).
async fn deferrable_indexes(
    _tx: &mut Tx,
    _table: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(Vec::new())
}

/// Never called: PostgreSQL defers no index (see `deferrable_indexes`);
/// it is here so that the shared ingest code builds for both backends.
async fn build_indexes(tx: &mut Tx, indexes: Vec<(String, String)>) -> Result<(), StoreError> {
    for (_, sql) in indexes {
        sqlx::query(AssertSqlSafe(sql)).execute(&mut **tx).await?;
    }
    Ok(())
}

include!("sql_common.rs");
include!("sql_facts.rs");
include!("sql_alerts.rs");
include!("sql_store.rs");
include!("sql_ingest.rs");
include!("sql_quarantine.rs");
include!("sql_verify.rs");
include!("sql_upgrade.rs");
include!("sql_report.rs");
include!("sql_actions.rs");
include!("sql_console.rs");
include!("sql_witness.rs");
