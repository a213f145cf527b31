// The store implementation shared by both backends.
//
// This file is compiled twice, `include!`d by `sqlite.rs` and `postgres.rs`,
// each of which first defines `Db` (its sqlx driver), `BACKEND`, `MIGRATIONS`,
// `connect_pool` and `begin_write`. Both backends accept the same SQL here
// (`$n` placeholders, `ON CONFLICT`, `RETURNING`, `TRUE`/`FALSE`); what they
// do not share lives in their own files and migrations.
//
// The rest of the implementation is split by concern, each file
// `include!`d after this one: `sql_facts.rs` (the rules' facts),
// `sql_alerts.rs` (alerts, silences, the outbox), `sql_store.rs` (runs,
// leases, records, statistics: the `Store` trait), `sql_ingest.rs` (batches
// and the chain), `sql_quarantine.rs`, `sql_verify.rs`, `sql_upgrade.rs` (the
// re-hashes that migrations 0008 and 0011 leave to the program),
// `sql_report.rs`, `sql_actions.rs`, `sql_console.rs` (the view log) and
// `sql_witness.rs` (checkpoints and proofs' leaves).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use sqlx::query_builder::Separated;
use sqlx::{AssertSqlSafe, Pool, QueryBuilder, Row};

use super::alerts::{
    AlertRow, AlertStore, AlertTx, NewEvent, OutboxCounts, OutboxRow, SilenceRow, SilenceScope,
};
use super::chain::{
    BatchRoot, Digest32, FlatRoot, GENESIS, batch_link, content_hash, digest, entry_hash, legacy,
    stream_leaf,
};
use super::facts::{
    FactStore, FactsQuery, FindingFact, FreezeFact, MirrorFact, OrgdeptFact, ProjectFacts,
    ProjectRange, RectificationFact, TrancheFact, UnitQuarterFact, UnknownProjectFact,
};
use super::schema::{self, Value};
use super::{
    AdapterRunRow, Batch, BatchOutcome, CollectionStats, Covered, Damage, Held, Item,
    QuarantineEntry, QuarantineSelection, QuarantineState, Quarantined, Refetch, RunId, Store,
    StoreError, StoreUrl, StoredRecord, StreamState, SyncTx, Unseen, VerifyReport, Version,
};
use crate::model::{Agency, Collection, Record};
use crate::money::Fen;

/// Binds per statement stay below both backends' limits (SQLite 32766,
/// PostgreSQL 65535).
const MAX_BIND_PARAMS: usize = 30_000;

/// At most this many current-state problems are listed per collection.
const MAX_DAMAGE_PER_COLLECTION: usize = 20;

/// The `sqlx` store for this backend.
pub struct SqlStore {
    pool: Pool<Db>,
    /// Where write transactions run: the same pool, or (SQLite) its one
    /// writer's connection.
    writer: Pool<Db>,
    /// Held by every write transaction where the backend has one writer.
    write_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl SqlStore {
    pub async fn connect(url: &StoreUrl) -> Result<SqlStore, StoreError> {
        let (pool, writer) = connect_pools(url).await?;
        Ok(SqlStore {
            pool,
            writer,
            write_lock: Default::default(),
        })
    }

    async fn write_tx(&self) -> Result<SqlSyncTx, StoreError> {
        let guard = if SERIALIZE_WRITERS {
            Some(self.write_lock.clone().lock_owned().await)
        } else {
            None
        };
        Ok(SqlSyncTx {
            tx: begin_write(&self.writer).await?,
            writer: self.writer.clone(),
            seen: Seen::default(),
            written: HashMap::new(),
            loaded: Default::default(),
            deferred: Vec::new(),
            _guard: guard,
        })
    }

    /// Applies this backend's migrations up to and including `last`, and
    /// none of the upgrades they leave to the program: how the tests build a
    /// store of an older layout. [`Store::migrate`] is the real thing.
    #[doc(hidden)]
    pub async fn migrate_until(&self, last: i64) -> Result<(), StoreError> {
        migrator(|version| version <= last).run(&self.pool).await?;
        Ok(())
    }

    /// The connection pool, for the stages that query their own tables.
    pub fn pool(&self) -> &Pool<Db> {
        &self.pool
    }
}

/// Reads a typed column as the same kind of value that `expected` is.
fn read_value(
    row: &<Db as sqlx::Database>::Row,
    column: &str,
    expected: &Value,
) -> Result<Value, sqlx::Error> {
    Ok(match expected {
        Value::Text(_) => Value::Text(row.try_get::<Option<String>, _>(column)?),
        Value::Int(_) => Value::Int(row.try_get::<Option<i64>, _>(column)?),
        Value::Bool(_) => Value::Bool(row.try_get::<Option<bool>, _>(column)?),
        Value::Date(_) => Value::Date(row.try_get::<Option<NaiveDate>, _>(column)?),
    })
}

fn rows_per_statement(columns: usize) -> usize {
    (MAX_BIND_PARAMS / columns.max(1)).max(1)
}

type Tx = sqlx::Transaction<'static, Db>;

/// A stored instant of the record tables and the chain (microseconds since
/// the Unix epoch).
fn micros(us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| StoreError::Corrupt(format!("instant {us}")))
}

/// A write transaction, with the writer's turn where the backend needs one.
pub struct SqlSyncTx {
    tx: Tx,
    /// Where the transaction came from, for what must run after it.
    writer: Pool<Db>,
    /// What this transaction's snapshots have seen.
    seen: Seen,
    /// Versions this transaction wrote, per collection table.
    written: HashMap<&'static str, u64>,
    /// The record tables this transaction has written to, and the indexes
    /// their first loads dropped, to be built before anything else reads
    /// (see `deferrable_indexes`).
    loaded: std::collections::HashSet<&'static str>,
    deferred: Vec<(String, String)>,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

fn check_collections(batch: &Batch) -> Result<(), StoreError> {
    for item in &batch.items {
        if let Item::Upsert(u) = item
            && let r = u.record()
            && r.collection() != batch.collection
        {
            return Err(StoreError::WrongCollection {
                batch: batch.collection,
                record: r.collection(),
            });
        }
    }
    Ok(())
}

/// See [`Store::hand_over_lease`].
async fn hand_over_lease(
    tx: &mut Tx,
    name: &str,
    from: &str,
    to: &str,
    until: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let handed = sqlx::query(
        "UPDATE leases SET holder = $3, expires_at = $4 WHERE name = $1 AND holder = $2",
    )
    .bind(name)
    .bind(from)
    .bind(to)
    .bind(until)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(handed == 1)
}
