//! The SQLite backend: the embedded default, one file in WAL mode.
//!
//! Writers take the database lock at the start of their transaction
//! (`BEGIN IMMEDIATE`), so two writers queue on the busy timeout instead of
//! failing when a read lock cannot be upgraded.

use std::collections::HashSet;
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

/// The run's temporary table of the stored rows its snapshots saw, by
/// rowid: a record table's rowid never changes (an upsert updates the row
/// in place, a deletion keeps it as a tombstone). SQLite keeps a temporary
/// table across transactions of its connection, so each write transaction
/// that needs it empties it first.
///
/// Rowids, not keys: the marks of a snapshot take a fifth of the room, so
/// at scale 1 (1.26 million npc rows, 10 MB against 50) they stay in the
/// temporary database's cache. With text keys spilling out of that cache,
/// SQLite's page caches, which share one pool in this build
/// (`SQLITE_ENABLE_MEMORY_MANAGEMENT`), kept almost none of the writer's
/// unpinned pages: a no-change npc sync read the same interior pages of
/// the key index from the file 2.5 million times (README, Benchmark,
/// "The writer's cache and the seen keys").
const SEEN_SETUP: &[&str] = &[
    "CREATE TEMP TABLE IF NOT EXISTS seen_rows (stream_id INTEGER NOT NULL, row INTEGER NOT NULL, \
     PRIMARY KEY (stream_id, row)) WITHOUT ROWID",
    "DELETE FROM seen_rows",
];

/// A record `t` of stream `$1` marked as seen.
const SEEN_MARK: &str = "SELECT 1 FROM seen_rows s WHERE s.stream_id = $1 AND s.row = t.rowid";

/// The key, to be ordered as its bytes are (the order of a batch's
/// entries): SQLite's default.
const KEY_COLUMN: &str = "key";

/// How a rule query's plan is asked for (`liankong bench --explain`).
const EXPLAIN_PREFIX: &str = "EXPLAIN QUERY PLAN ";

/// `EXPLAIN QUERY PLAN`'s rows (id, parent, notused, detail) as an indented
/// tree, a step per line.
fn plan_text(rows: &[sqlx::sqlite::SqliteRow]) -> Result<String, StoreError> {
    use sqlx::Row;
    let mut depth: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    let mut text = String::new();
    for row in rows {
        let id: i64 = row.try_get(0)?;
        let parent: i64 = row.try_get(1)?;
        let detail: String = row.try_get(3)?;
        let level = depth.get(&parent).map_or(0, |d| d + 1);
        depth.insert(id, level);
        text.push_str(&"  ".repeat(level));
        text.push_str(&detail);
        text.push('\n');
    }
    Ok(text)
}

/// SQLite plans the rules' queries well without statistics.
const ANALYZE_AFTER: Option<u64> = None;

/// SQLite has no visibility map: its covering indexes are read alone
/// without one.
const VACUUM_AFTER: Option<u64> = None;

/// A date as SQLite stores it (`YYYY-MM-DD`, what sqlx writes and reads),
/// formatted by hand: chrono's formatter parses its format string for every
/// value, which cost a tenth of a sync's main thread.
fn date_bind(d: Option<chrono::NaiveDate>) -> Option<String> {
    use chrono::Datelike;
    d.map(|d| {
        let (y, m, day) = (d.year(), d.month(), d.day());
        if !(0..=9999).contains(&y) {
            return d.format("%F").to_string();
        }
        let mut s = String::with_capacity(10);
        for digit in [y / 1000, y / 100 % 10, y / 10 % 10, y % 10] {
            s.push(char::from(b'0' + digit as u8));
        }
        s.push('-');
        s.push(char::from(b'0' + (m / 10) as u8));
        s.push(char::from(b'0' + (m % 10) as u8));
        s.push('-');
        s.push(char::from(b'0' + (day / 10) as u8));
        s.push(char::from(b'0' + (day % 10) as u8));
        s
    })
}

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
    (
        8,
        "current rows and batch chain",
        include_str!("migrations/sqlite/0008_current_rows_and_batch_chain.sql"),
    ),
    (
        9,
        "actions",
        include_str!("migrations/sqlite/0009_actions.sql"),
    ),
    (
        10,
        "alert views",
        include_str!("migrations/sqlite/0010_alert_views.sql"),
    ),
    (
        11,
        "checkpoints",
        include_str!("migrations/sqlite/0011_checkpoints.sql"),
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
        // Larger pages hold more of a record's row per page: fewer pages
        // and B-tree levels per write. Takes effect when the file is made.
        .page_size(PAGE_SIZE)
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
        .connect_with(
            options
                .statement_cache_capacity(WRITER_STATEMENTS)
                .pragma("cache_size", format!("-{}", writer_cache_kib()))
                // The run's seen marks live in a temporary file, never in
                // this process's memory, whatever the size of a snapshot.
                .pragma("temp_store", "FILE")
                .pragma("temp.cache_size", format!("-{}", temp_cache_kib()))
                .pragma("mmap_size", (writer_mmap_mib() << 20).to_string()),
        )
        .await?;
    Ok((readers, writer))
}

/// Prepared statements the writer keeps. A batch's statements bind every
/// row and key of the batch, a few hundred kilobytes each once prepared,
/// and each batch size a stream ends on is a statement of its own: sqlx's
/// default of 100 held 76 MiB of them at scale 4 (README, Benchmark). A run
/// writes one stream at a time, with a handful of statements.
const WRITER_STATEMENTS: usize = 32;

/// How long a writer waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(300);

/// The writer's page cache. A sync's inserts land in key order in the
/// narrow indexes (the key, the covering payments index), which at scale 1
/// are a few hundred megabytes: with the 64 MiB of before, every batch read
/// most of their pages back from the file (a scale-1 first sync took 216 s
/// against 156 s with 256 MiB, whose peak was 506 MiB). Since a first load
/// builds the covering index after its rows are in, only the key index
/// takes inserts all over: at scale 1, 128 MiB ran as fast as 192 in the
/// same hour ((a)/(e) 8.42 against 7.91, (b)/(e) 1.24 against 1.26, one
/// run each) and peaked at 458 MiB against 553. Readers keep the default,
/// so memory stays bounded.
const WRITER_CACHE_KIB: u64 = 128 * 1024;

/// The page size of a new store file.
const PAGE_SIZE: u32 = 16 * 1024;

/// The page cache of the temporary tables: the run's seen marks and a
/// batch's staged keys.
const TEMP_CACHE_KIB: u64 = 16 * 1024;

/// `LIANKONG_SQLITE_TEMP_CACHE_MIB` overrides the temporary database's
/// page cache (for measuring; see README, Benchmark).
fn temp_cache_kib() -> u64 {
    std::env::var("LIANKONG_SQLITE_TEMP_CACHE_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(TEMP_CACHE_KIB, |mib| mib * 1024)
}

/// `LIANKONG_SQLITE_CACHE_MIB` overrides the writer's page cache (for
/// measuring; see README, Benchmark).
fn writer_cache_kib() -> u64 {
    std::env::var("LIANKONG_SQLITE_CACHE_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(WRITER_CACHE_KIB, |mib| mib * 1024)
}

/// `LIANKONG_SQLITE_MMAP_MIB` maps that much of the file into the writer
/// (0, the default: none, so resident memory stays the page cache's).
fn writer_mmap_mib() -> u64 {
    std::env::var("LIANKONG_SQLITE_MMAP_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
}

async fn begin_write(pool: &Pool<Db>) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// Writes whole current rows (new or replaced), in key order.
async fn write_full_rows(
    tx: &mut Tx,
    collection: Collection,
    rows: Vec<(String, Current)>,
    first_seen: i64,
) -> Result<(), StoreError> {
    insert_full_rows(tx, collection, rows, first_seen).await
}

/// The current rows of `keys` (sorted, distinct).
async fn load_current(
    tx: &mut Tx,
    table: &str,
    keys: &[&str],
) -> Result<HashMap<String, Current>, StoreError> {
    load_current_listed(tx, table, keys).await
}

/// Marks the rows of `keys` that were stored before this transaction
/// wrote to the stream (`start`) as seen by a snapshot of it.
async fn record_seen(
    tx: &mut Tx,
    stream_id: i64,
    start: StreamStart,
    table: &str,
    keys: &[&str],
) -> Result<(), StoreError> {
    for chunk in keys.chunks(rows_per_statement(1)) {
        let mut qb = QueryBuilder::<Db>::new(format!(
            "INSERT INTO seen_rows (stream_id, row) SELECT {stream_id}, rowid FROM {table} \
             WHERE COALESCE(batch, 0) <= {} AND key IN (",
            start.batches
        ));
        let mut sep = qb.separated(", ");
        for key in chunk {
            sep.push_bind(*key);
        }
        qb.push(") ON CONFLICT DO NOTHING");
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// The batch's keys and contents, staged on the database side for
/// [`load_differing`]; emptied and refilled for each batch.
const INCOMING_SETUP: &[&str] = &[
    "CREATE TEMP TABLE IF NOT EXISTS incoming (key TEXT PRIMARY KEY, content TEXT) WITHOUT ROWID",
    "DELETE FROM incoming",
];

/// Compares `rows` (sorted, distinct keys, each with its new content, or
/// `None` to read the stored row whatever it holds) with the stored rows
/// inside SQLite: only the rows that differ, and the keys not stored at
/// all, come back over sqlx's channel, so an unchanged record costs one
/// bound row in and nothing out.
async fn load_differing(
    tx: &mut Tx,
    table: &str,
    rows: &[(&str, Option<&str>)],
) -> Result<Differing, StoreError> {
    for sql in INCOMING_SETUP {
        sqlx::query(*sql).execute(&mut **tx).await?;
    }
    for chunk in rows.chunks(rows_per_statement(2)) {
        let mut qb = QueryBuilder::<Db>::new("INSERT INTO incoming (key, content) ");
        qb.push_values(chunk, |mut sep, (key, content)| {
            sep.push_bind(*key).push_bind(*content);
        });
        qb.build().execute(&mut **tx).await?;
    }
    let stored: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM incoming i JOIN {table} t ON t.key = i.key"
    )))
    .fetch_one(&mut **tx)
    .await?;
    let absent = if stored == 0 {
        rows.iter().map(|(key, _)| (*key).to_owned()).collect()
    } else if stored as usize == rows.len() {
        HashSet::new()
    } else {
        sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT key FROM incoming i WHERE NOT EXISTS \
             (SELECT 1 FROM {table} t WHERE t.key = i.key)"
        )))
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect()
    };
    let mut current = HashMap::new();
    if stored > 0 {
        let found = sqlx::query(AssertSqlSafe(differing_rows(table, "incoming i")))
            .fetch_all(&mut **tx)
            .await?;
        for row in found {
            let (key, row) = current_of(&row, table)?;
            current.insert(key, row);
        }
    }
    Ok(Differing { current, absent })
}

/// The rows of the batch [`load_differing`] staged that were stored before
/// this transaction wrote to the stream (`start`), as seen: one join of
/// the staged keys, on pages the comparison has just read. `CROSS JOIN`
/// keeps the staged keys outside: with the condition on the batch, and no
/// statistics of the temporary table, SQLite otherwise chose to scan the
/// whole record table for each batch (63 times at scale 1).
async fn record_seen_differing(
    tx: &mut Tx,
    stream_id: i64,
    start: StreamStart,
    table: &str,
    _keys: &[&str],
) -> Result<(), StoreError> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO seen_rows (stream_id, row) SELECT $1, t.rowid \
         FROM incoming i CROSS JOIN {table} t ON t.key = i.key \
         WHERE COALESCE(t.batch, 0) <= {} ON CONFLICT DO NOTHING",
        start.batches
    )))
    .bind(stream_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The secondary indexes of a record table (name, `CREATE INDEX` text)
/// that its first load builds only once its rows are in: one sort of the
/// finished table, instead of an insert per record into an index whose keys
/// arrive in no order (finance sends payments by update time). Dropping an
/// index is part of the transaction: a run that fails or is killed leaves
/// the index as it was. The key's unique index (SQLite's automatic one,
/// which has no text) stays: the load looks keys up in it.
async fn deferrable_indexes(tx: &mut Tx, table: &str) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = $1 \
         AND sql IS NOT NULL ORDER BY name",
    )
    .bind(table)
    .fetch_all(&mut **tx)
    .await?)
}

/// Builds the indexes a first load deferred, with the writer's page cache
/// cut to `INDEX_BUILD_CACHE_KIB` meanwhile. SQLite sorts an index's
/// entries in memory up to the size of the connection's cache before it
/// writes sorted runs to a temporary file and merges them, so with the
/// writer's large cache, already full of the load's pages, the build of
/// finance's payments index held both: 134 MiB of sort buffer beside 128
/// MiB of pages at scale 4 (README, Benchmark). Cutting the cache also
/// gives its pages back; it grows again from the file as the writer reads.
///
/// The two `PRAGMA`s are prepared afresh each time (not from sqlx's
/// statement cache): SQLite sets a pragma's value when it prepares the
/// statement, so a cached one that nothing expired would set nothing.
async fn build_indexes(tx: &mut Tx, indexes: Vec<(String, String)>) -> Result<(), StoreError> {
    let cache = |kib: u64| format!("PRAGMA cache_size = -{kib}");
    sqlx::query(AssertSqlSafe(cache(INDEX_BUILD_CACHE_KIB)))
        .persistent(false)
        .execute(&mut **tx)
        .await?;
    let mut built = Ok(());
    for (name, sql) in indexes {
        tracing::debug!(index = %name, "building an index after a first load");
        built = sqlx::query(AssertSqlSafe(sql))
            .execute(&mut **tx)
            .await
            .map(drop);
        if built.is_err() {
            break;
        }
    }
    let restored = sqlx::query(AssertSqlSafe(cache(writer_cache_kib())))
        .persistent(false)
        .execute(&mut **tx)
        .await;
    // A failed build's error is the one to report.
    built?;
    restored?;
    Ok(())
}

/// The writer's page cache, and so its sort buffer, while it builds a
/// first load's indexes.
const INDEX_BUILD_CACHE_KIB: u64 = 16 * 1024;

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

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    #[test]
    fn dates_are_bound_as_sqlx_writes_them() {
        for (y, m, d) in [
            (2021, 3, 1),
            (1999, 12, 31),
            (5, 1, 9),
            (10000, 1, 1),
            (-1, 6, 15),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(
                super::date_bind(Some(date)),
                Some(date.format("%F").to_string())
            );
        }
        assert_eq!(super::date_bind(None), None);
    }

    /// Prepared afresh each time: SQLite reads a pragma's value when it
    /// prepares the statement.
    async fn cache_size(tx: &mut super::Tx) -> i64 {
        sqlx::query_scalar("PRAGMA cache_size")
            .persistent(false)
            .fetch_one(&mut **tx)
            .await
            .unwrap()
    }

    /// A first load's indexes are built with the small cache, and the
    /// writer gets its own back afterwards, also when a build fails.
    #[tokio::test]
    async fn indexes_build_with_a_small_cache_and_give_the_writers_back() {
        let writers = -(super::writer_cache_kib() as i64);
        assert_ne!(writers, -(super::INDEX_BUILD_CACHE_KIB as i64));
        let dir = tempfile::tempdir().unwrap();
        let url = super::StoreUrl::new(format!("sqlite:{}", dir.path().join("s.db").display()));
        let (_, writer) = super::connect_pools(&url).await.unwrap();
        let mut tx = super::begin_write(&writer).await.unwrap();
        sqlx::query("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t (v) VALUES ('b'), ('a'), ('c')")
            .execute(&mut *tx)
            .await
            .unwrap();
        assert_eq!(cache_size(&mut tx).await, writers);
        super::build_indexes(
            &mut tx,
            vec![("t_v".into(), "CREATE INDEX t_v ON t (v)".into())],
        )
        .await
        .unwrap();
        assert_eq!(cache_size(&mut tx).await, writers);
        let indexed: Vec<String> = sqlx::query_scalar("SELECT v FROM t INDEXED BY t_v ORDER BY v")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert_eq!(indexed, ["a", "b", "c"]);
        let failed = super::build_indexes(
            &mut tx,
            vec![(
                "t_w".into(),
                "CREATE INDEX t_w ON t (no_such_column)".into(),
            )],
        )
        .await;
        assert!(failed.is_err());
        assert_eq!(cache_size(&mut tx).await, writers);
    }

    /// The keys of the npc budgets marked as seen in this transaction.
    async fn marks(tx: &mut super::Tx) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT t.key FROM seen_rows s JOIN npc_budgets t ON t.rowid = s.row ORDER BY t.key",
        )
        .fetch_all(&mut **tx)
        .await
        .unwrap()
    }

    /// One npc run in one transaction: a snapshot batch of `first`, then a
    /// complete one of `last`. Returns both outcomes and the marks the run
    /// made, read before it commits.
    async fn snapshot_run(
        store: &super::SqlStore,
        first: Vec<crate::store::Item>,
        last: Vec<crate::store::Item>,
    ) -> (
        crate::store::BatchOutcome,
        crate::store::BatchOutcome,
        Vec<String>,
    ) {
        use crate::model::{Agency, Collection};
        use crate::store::{Batch, Store as _, SyncTx as _};
        use chrono::{TimeZone, Utc};

        let when = Utc.with_ymd_and_hms(2021, 7, 1, 0, 0, 0).unwrap();
        let run = store.begin_run("test", Agency::Npc, when).await.unwrap();
        let mut tx = store.write_tx().await.unwrap();
        let mut snapshot = Batch::new(Collection::Budgets, run, when);
        snapshot.items = first;
        snapshot.snapshot = true;
        let mut complete = Batch::new(Collection::Budgets, run, when);
        complete.items = last;
        complete.complete_snapshot = true;
        let first = tx.apply(&snapshot).await.unwrap();
        let last = tx.apply(&complete).await.unwrap();
        let marks = marks(&mut tx.tx).await;
        Box::new(tx).commit().await.unwrap();
        (first, last, marks)
    }

    /// The keys of the live npc budgets.
    async fn live(store: &super::SqlStore) -> Vec<String> {
        sqlx::query_scalar("SELECT key FROM npc_budgets WHERE deleted = FALSE ORDER BY key")
            .fetch_all(&store.pool)
            .await
            .unwrap()
    }

    /// A snapshot marks, by rowid, only the rows stored before its run that
    /// it names and leaves as they are: a first load marks nothing, and a
    /// record the run writes is seen by its batch. What the run neither
    /// wrote nor marked is what its complete snapshot deletes.
    #[tokio::test]
    async fn a_snapshot_marks_only_the_unchanged_rows_stored_before_its_run() {
        use crate::model::{ApprovedBudget, ProjectCode, Record};
        use crate::money::Fen;
        use crate::store::{Item, Store as _};
        use chrono::{TimeZone, Utc};

        let budget = |code: &str, approved: i64| {
            Item::from(Record::ApprovedBudget(ApprovedBudget {
                project_code: ProjectCode::parse(code).unwrap(),
                year: 2021,
                approved: Fen(approved),
                adjustment: Fen(0),
                approved_on: NaiveDate::from_ymd_opt(2021, 1, 20).unwrap(),
                updated_at: Utc.with_ymd_and_hms(2021, 1, 20, 2, 0, 0).unwrap(),
            }))
        };
        let keys =
            |codes: &[&str]| -> Vec<String> { codes.iter().map(|p| format!("{p}/2021")).collect() };
        let [p1, p2, p3, p4] = [
            "3701002021000001",
            "3701002021000002",
            "3701002021000003",
            "3701002021000004",
        ];
        let dir = tempfile::tempdir().unwrap();
        let url = super::StoreUrl::new(format!("sqlite:{}", dir.path().join("s.db").display()));
        let store = super::SqlStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();

        // A first load in two batches: nothing to mark, nothing deleted.
        let (first, last, marked) = snapshot_run(
            &store,
            vec![budget(p1, 100), budget(p2, 200)],
            vec![budget(p4, 400)],
        )
        .await;
        assert_eq!(first.new, 2);
        assert_eq!((last.new, last.deleted), (1, 0));
        assert!(marked.is_empty());

        // The next run: p1 unchanged, p3 new, p2 changed, p4 gone.
        let (first, last, marked) = snapshot_run(
            &store,
            vec![budget(p1, 100), budget(p3, 300)],
            vec![budget(p2, 201)],
        )
        .await;
        assert_eq!((first.unchanged, first.new), (1, 1));
        assert_eq!((last.changed, last.deleted), (1, 1));
        assert_eq!(marked, keys(&[p1]));
        assert_eq!(live(&store).await, keys(&[p1, p2, p3]));

        // A batch that names a key twice is compared in memory and marks
        // by key; the last batch marks by the staged keys: p2 is gone.
        let (first, last, marked) = snapshot_run(
            &store,
            vec![budget(p3, 300), budget(p3, 300)],
            vec![budget(p1, 100)],
        )
        .await;
        assert_eq!(first.unchanged, 2);
        assert_eq!((last.unchanged, last.deleted), (1, 1));
        assert_eq!(marked, keys(&[p1, p3]));
        assert_eq!(live(&store).await, keys(&[p1, p3]));
    }
}
