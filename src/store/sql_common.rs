// The store implementation shared by both backends.
//
// This file is compiled twice, `include!`d by `sqlite.rs` and `postgres.rs`,
// each of which first defines `Db` (its sqlx driver), `BACKEND`, `MIGRATIONS`,
// `connect_pool` and `begin_write`. Both backends accept the same SQL here
// (`$n` placeholders, `ON CONFLICT`, `RETURNING`, `TRUE`/`FALSE`); what they
// do not share lives in their own files and migrations.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use sqlx::query_builder::Separated;
use sqlx::{AssertSqlSafe, Pool, QueryBuilder, Row};

use super::alerts::{
    AlertRow, AlertStore, AlertTx, NewEvent, OutboxCounts, OutboxRow, SilenceRow, SilenceScope,
};
use super::chain::{GENESIS, content_hash, link_hash};
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
            _guard: guard,
        })
    }

    /// The connection pool, for the stages that query their own tables.
    pub fn pool(&self) -> &Pool<Db> {
        &self.pool
    }
}

/// What the store holds for a key before the batch.
struct Current {
    hash: String,
    version: i64,
    deleted: bool,
}

/// The final write of one key in a batch.
enum RowWrite {
    /// The full row, from a record in this batch.
    Full {
        key: String,
        hash: String,
        version: i64,
        deleted: bool,
        values: Vec<Value>,
    },
    /// Mark a stored record deleted; its typed columns keep their last values.
    Tombstone { key: String, version: i64 },
}

impl RowWrite {
    fn key(&self) -> &str {
        match self {
            RowWrite::Full { key, .. } | RowWrite::Tombstone { key, .. } => key,
        }
    }
}

/// A version to append to the stream's chain.
struct NewVersion {
    key: String,
    version: i64,
    deleted: bool,
    content: Option<String>,
    content_hash: String,
}

fn push_value(sep: &mut Separated<'_, Db, &'static str>, value: Value) {
    match value {
        Value::Text(v) => sep.push_bind(v),
        Value::Int(v) => sep.push_bind(v),
        Value::Bool(v) => sep.push_bind(v),
        Value::Date(v) => sep.push_bind(v),
    };
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

async fn load_current(
    tx: &mut Tx,
    table: &str,
    keys: &[&str],
) -> Result<HashMap<String, Current>, StoreError> {
    let mut current = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(rows_per_statement(1)) {
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT key, hash, version, deleted FROM {table} WHERE key IN ("
        ));
        let mut sep = qb.separated(", ");
        for key in chunk {
            sep.push_bind(key.to_string());
        }
        qb.push(")");
        let rows = qb.build().fetch_all(&mut **tx).await?;
        for row in rows {
            current.insert(
                row.try_get("key")?,
                Current {
                    hash: row.try_get("hash")?,
                    version: row.try_get("version")?,
                    deleted: row.try_get("deleted")?,
                },
            );
        }
    }
    Ok(current)
}

async fn write_full_rows(
    tx: &mut Tx,
    collection: Collection,
    rows: Vec<RowWrite>,
    batch: &Batch,
) -> Result<(), StoreError> {
    let table = schema::table(collection);
    let columns = schema::columns(collection);
    let head = format!(
        "INSERT INTO {table} (key, hash, version, deleted, first_seen, last_seen, seen_run, {}) ",
        columns.join(", ")
    );
    let updates: Vec<String> = ["hash", "version", "deleted", "last_seen", "seen_run"]
        .iter()
        .chain(columns)
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let tail = format!(" ON CONFLICT (key) DO UPDATE SET {}", updates.join(", "));
    let per_statement = rows_per_statement(7 + columns.len());
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<RowWrite> = rows.by_ref().take(per_statement).collect();
        let mut qb = QueryBuilder::<Db>::new(head.as_str());
        qb.push_values(chunk, |mut sep, row| {
            if let RowWrite::Full {
                key,
                hash,
                version,
                deleted,
                values,
            } = row
            {
                sep.push_bind(key)
                    .push_bind(hash)
                    .push_bind(version)
                    .push_bind(deleted)
                    .push_bind(batch.at)
                    .push_bind(batch.at)
                    .push_bind(batch.run.0);
                for value in values {
                    push_value(&mut sep, value);
                }
            }
        });
        qb.push(tail.as_str());
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}

async fn write_tombstone(
    tx: &mut Tx,
    table: &str,
    key: &str,
    version: i64,
    batch: &Batch,
) -> Result<(), StoreError> {
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE {table} SET deleted = TRUE, version = $1, last_seen = $2, seen_run = $3 WHERE key = $4"
    )))
    .bind(version)
    .bind(batch.at)
    .bind(batch.run.0)
    .bind(key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn mark_seen(
    tx: &mut Tx,
    table: &str,
    keys: &[String],
    batch: &Batch,
) -> Result<(), StoreError> {
    for chunk in keys.chunks(rows_per_statement(1)) {
        let mut qb = QueryBuilder::<Db>::new(format!("UPDATE {table} SET last_seen = "));
        qb.push_bind(batch.at);
        qb.push(", seen_run = ");
        qb.push_bind(batch.run.0);
        qb.push(" WHERE key IN (");
        let mut sep = qb.separated(", ");
        for key in chunk {
            sep.push_bind(key.as_str());
        }
        qb.push(")");
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}

async fn append_versions(
    tx: &mut Tx,
    stream: &str,
    versions: Vec<NewVersion>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if versions.is_empty() {
        return Ok(());
    }
    let head: Option<(i64, String)> = sqlx::query_as(
        "SELECT seq, link FROM versions WHERE stream = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(stream)
    .fetch_optional(&mut **tx)
    .await?;
    let (mut seq, mut prev) = head.unwrap_or((0, GENESIS.to_owned()));
    let per_statement = rows_per_statement(9);
    let mut versions = versions.into_iter().peekable();
    while versions.peek().is_some() {
        let chunk: Vec<NewVersion> = versions.by_ref().take(per_statement).collect();
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO versions (stream, seq, key, version, deleted, content, content_hash, link, recorded_at) ",
        );
        qb.push_values(chunk, |mut sep, v| {
            seq += 1;
            let link = link_hash(
                &prev,
                stream,
                seq,
                &v.key,
                v.version,
                v.deleted,
                &v.content_hash,
            );
            sep.push_bind(stream.to_owned())
                .push_bind(seq)
                .push_bind(v.key)
                .push_bind(v.version)
                .push_bind(v.deleted)
                .push_bind(v.content)
                .push_bind(v.content_hash)
                .push_bind(link.clone())
                .push_bind(at);
            prev = link;
        });
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Applies a batch inside `tx`; the caller commits.
async fn apply_in(tx: &mut Tx, batch: &Batch) -> Result<BatchOutcome, StoreError> {
    let collection = batch.collection;
    let stream = collection.to_string();
    let table = schema::table(collection);
    let mut outcome = BatchOutcome::default();

    let keys: Vec<String> = batch
        .items
        .iter()
        .map(|item| match item {
            Item::Upsert(r) => r.key(),
            Item::Delete(k) => k.clone(),
        })
        .collect();
    // Quarantined rows that name their record are looked up too: that
    // record counts as seen and keeps its last good version.
    let key_refs: Vec<&str> = keys
        .iter()
        .map(String::as_str)
        .chain(batch.quarantine.iter().filter_map(|q| q.key.as_deref()))
        .collect();
    let mut current = load_current(tx, table, &key_refs).await?;
    let mut kept: HashMap<&str, i64> = HashMap::new();
    for q in &batch.quarantine {
        if let Some(key) = q.key.as_deref()
            && let Some(c) = current.get(key).filter(|c| !c.deleted)
        {
            kept.insert(key, c.version);
        }
    }

    // The final write per key (a key may occur more than once in a batch),
    // in the order keys first occur.
    let mut writes: Vec<RowWrite> = Vec::new();
    let mut write_at: HashMap<String, usize> = HashMap::new();
    let mut seen: Vec<String> = Vec::new();
    let mut versions: Vec<NewVersion> = Vec::new();

    for (item, key) in batch.items.iter().zip(keys) {
        match item {
            Item::Upsert(record) => {
                let content = record.content();
                let hash = content_hash(&content);
                let version = match current.get(&key) {
                    Some(c) if !c.deleted && c.hash == hash => {
                        outcome.unchanged += 1;
                        seen.push(key);
                        continue;
                    }
                    Some(c) => {
                        outcome.changed += 1;
                        c.version + 1
                    }
                    None => {
                        outcome.new += 1;
                        1
                    }
                };
                current.insert(
                    key.clone(),
                    Current {
                        hash: hash.clone(),
                        version,
                        deleted: false,
                    },
                );
                versions.push(NewVersion {
                    key: key.clone(),
                    version,
                    deleted: false,
                    content: Some(content),
                    content_hash: hash.clone(),
                });
                let write = RowWrite::Full {
                    key: key.clone(),
                    hash,
                    version,
                    deleted: false,
                    values: schema::values(record),
                };
                match write_at.get(&key) {
                    Some(&i) => writes[i] = write,
                    None => {
                        write_at.insert(key, writes.len());
                        writes.push(write);
                    }
                }
            }
            Item::Delete(_) => {
                let Some(c) = current.get_mut(&key).filter(|c| !c.deleted) else {
                    continue; // deleting what is absent or already deleted changes nothing
                };
                c.deleted = true;
                c.version += 1;
                let version = c.version;
                outcome.deleted += 1;
                versions.push(NewVersion {
                    key: key.clone(),
                    version,
                    deleted: true,
                    content: None,
                    content_hash: String::new(),
                });
                match write_at.get(&key) {
                    Some(&i) => match &mut writes[i] {
                        RowWrite::Full {
                            version: v,
                            deleted: d,
                            ..
                        } => {
                            *v = version;
                            *d = true;
                        }
                        RowWrite::Tombstone { version: v, .. } => *v = version,
                    },
                    None => {
                        write_at.insert(key.clone(), writes.len());
                        writes.push(RowWrite::Tombstone { key, version });
                    }
                }
            }
        }
    }

    let (mut full, tombstones): (Vec<RowWrite>, Vec<RowWrite>) = writes
        .into_iter()
        .partition(|w| matches!(w, RowWrite::Full { .. }));
    // In key order, a large batch meets each page of the table and its
    // indexes once, in the order they lie, instead of at random.
    full.sort_unstable_by(|a, b| a.key().cmp(b.key()));
    write_full_rows(tx, collection, full, batch).await?;
    for t in tombstones {
        if let RowWrite::Tombstone { key, version } = t {
            write_tombstone(tx, table, &key, version, batch).await?;
        }
    }
    seen.extend(
        kept.keys()
            .filter(|k| !write_at.contains_key(**k))
            .map(|k| (*k).to_owned()),
    );
    mark_seen(tx, table, &seen, batch).await?;

    if batch.complete_snapshot {
        let unseen: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT key, version FROM {table} \
             WHERE deleted = FALSE AND (seen_run IS NULL OR seen_run <> $1) ORDER BY key"
        )))
        .bind(batch.run.0)
        .fetch_all(&mut **tx)
        .await?;
        for (key, version) in unseen {
            write_tombstone(tx, table, &key, version + 1, batch).await?;
            outcome.deleted += 1;
            versions.push(NewVersion {
                key,
                version: version + 1,
                deleted: true,
                content: None,
                content_hash: String::new(),
            });
        }
    }

    // The batch's versions join the chain in key order, for the same reason;
    // a key's own versions keep their order.
    versions.sort_by(|a, b| (a.key.as_str(), a.version).cmp(&(b.key.as_str(), b.version)));
    append_versions(tx, &stream, versions, batch.at).await?;

    if !batch.quarantine.is_empty() {
        write_quarantine(tx, &stream, batch, &kept).await?;
        outcome.quarantined = batch.quarantine.len() as u64;
    }
    if let Some(covered) = batch.covered {
        resolve_quarantine(tx, &stream, batch, covered).await?;
    }

    if let Some(state) = &batch.state {
        sqlx::query(
            "INSERT INTO stream_state \
             (stream, cursor, last_complete, run, updated_at, held_deletions, held_since) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor, \
             last_complete = excluded.last_complete, run = excluded.run, \
             updated_at = excluded.updated_at, held_deletions = excluded.held_deletions, \
             held_since = excluded.held_since",
        )
        .bind(stream.as_str())
        .bind(state.cursor.as_deref())
        .bind(state.last_complete)
        .bind(state.run.map(|r| r.0))
        .bind(batch.at)
        .bind(state.held.map(|h| h.deletions as i64))
        .bind(state.held.map(|h| h.since))
        .execute(&mut **tx)
        .await?;
    }
    Ok(outcome)
}

/// What identifies a quarantined row from one sighting to the next: the key
/// of its record, or a digest of the row when it names none.
fn quarantine_ident(q: &Quarantined) -> String {
    match &q.key {
        Some(key) => format!("key:{key}"),
        None => format!("raw:{}", content_hash(&q.raw)),
    }
}

/// An instant as the quarantine stores a hold: microseconds since the epoch,
/// which both backends order as numbers.
fn hold_micros(refetch: Option<Refetch>) -> (bool, Option<i64>) {
    match refetch {
        None => (false, None),
        Some(Refetch::Start) => (true, None),
        Some(Refetch::From(t)) => (true, Some(t.timestamp_micros())),
    }
}

/// Files a batch's quarantined rows: a row met again while still open is
/// updated (reason, raw row, hold, last run, one more sighting), any other
/// is a new open entry.
async fn write_quarantine(
    tx: &mut Tx,
    stream: &str,
    batch: &Batch,
    kept: &HashMap<&str, i64>,
) -> Result<(), StoreError> {
    // The last sighting of an ident in the batch is the one that counts;
    // new entries are filed in the order they came.
    let mut last: Vec<(String, &Quarantined)> = Vec::with_capacity(batch.quarantine.len());
    let mut at: HashMap<String, usize> = HashMap::with_capacity(batch.quarantine.len());
    for q in &batch.quarantine {
        let ident = quarantine_ident(q);
        match at.get(&ident) {
            Some(&i) => last[i].1 = q,
            None => {
                at.insert(ident.clone(), last.len());
                last.push((ident, q));
            }
        }
    }
    let mut open: HashMap<String, i64> = HashMap::new();
    let idents: Vec<&String> = last.iter().map(|(ident, _)| ident).collect();
    for chunk in idents.chunks(rows_per_statement(1)) {
        let mut qb = QueryBuilder::<Db>::new("SELECT ident, id FROM quarantine WHERE stream = ");
        qb.push_bind(stream);
        qb.push(" AND state = 'open' AND ident IN (");
        let mut sep = qb.separated(", ");
        for ident in chunk {
            sep.push_bind(ident.as_str());
        }
        qb.push(")");
        for row in qb.build().fetch_all(&mut **tx).await? {
            open.insert(row.try_get("ident")?, row.try_get("id")?);
        }
    }
    let mut fresh = Vec::new();
    for (ident, q) in &last {
        let (holds, hold_from) = hold_micros(q.refetch);
        let kept_version = q.key.as_deref().and_then(|k| kept.get(k).copied());
        match open.get(ident) {
            Some(id) => {
                sqlx::query(
                    "UPDATE quarantine SET reason = $1, raw = $2, holds = $3, hold_from = $4, \
                     last_run = $5, sightings = sightings + 1, kept_version = $6 WHERE id = $7",
                )
                .bind(q.reason.as_str())
                .bind(q.raw.as_str())
                .bind(holds)
                .bind(hold_from)
                .bind(batch.run.0)
                .bind(kept_version)
                .bind(*id)
                .execute(&mut **tx)
                .await?;
            }
            None => fresh.push((ident, *q, holds, hold_from, kept_version)),
        }
    }
    for chunk in fresh.chunks(rows_per_statement(11)) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO quarantine (stream, run, last_run, reason, raw, received_at, key, ident, \
             holds, hold_from, kept_version) ",
        );
        qb.push_values(
            chunk,
            |mut sep, (ident, q, holds, hold_from, kept_version)| {
                sep.push_bind(stream)
                    .push_bind(batch.run.0)
                    .push_bind(batch.run.0)
                    .push_bind(q.reason.as_str())
                    .push_bind(q.raw.as_str())
                    .push_bind(batch.at)
                    .push_bind(q.key.as_deref())
                    .push_bind(ident.as_str())
                    .push_bind(*holds)
                    .push_bind(*hold_from)
                    .push_bind(*kept_version);
            },
        );
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// At the end of a complete pull: every open row of the stream that the pull
/// covered and did not meet again is resolved (it landed, or the source no
/// longer has it).
async fn resolve_quarantine(
    tx: &mut Tx,
    stream: &str,
    batch: &Batch,
    covered: Covered,
) -> Result<(), StoreError> {
    let mut qb = QueryBuilder::<Db>::new("UPDATE quarantine SET state = 'resolved', closed_at = ");
    qb.push_bind(batch.at);
    qb.push(" WHERE stream = ");
    qb.push_bind(stream);
    qb.push(" AND state = 'open' AND (last_run IS NULL OR last_run <> ");
    qb.push_bind(batch.run.0);
    qb.push(")");
    match covered {
        Covered::All => {}
        // A pull from the start covers every row that holds the stream.
        Covered::From(Refetch::Start) => {
            qb.push(" AND holds");
        }
        Covered::From(Refetch::From(t)) => {
            qb.push(" AND holds AND hold_from IS NOT NULL AND hold_from >= ");
            qb.push_bind(t.timestamp_micros());
        }
    }
    qb.build().execute(&mut **tx).await?;
    Ok(())
}

/// Walks one stream's chain and returns its length and its first broken link.
async fn verify_chain(tx: &mut Tx, stream: &str) -> Result<(u64, Option<Damage>), StoreError> {
    let mut rows = sqlx::query(
        "SELECT seq, key, version, deleted, content, content_hash, link \
         FROM versions WHERE stream = $1 ORDER BY seq",
    )
    .bind(stream)
    .fetch(&mut **tx);
    let mut prev = GENESIS.to_owned();
    let mut expected_seq = 0i64;
    let mut count = 0u64;
    while let Some(row) = rows.try_next().await? {
        count += 1;
        expected_seq += 1;
        let seq: i64 = row.try_get("seq")?;
        let key: String = row.try_get("key")?;
        let version: i64 = row.try_get("version")?;
        let deleted: bool = row.try_get("deleted")?;
        let content: Option<String> = row.try_get("content")?;
        let stored_hash: String = row.try_get("content_hash")?;
        let link: String = row.try_get("link")?;
        let problem = if seq != expected_seq {
            Some(format!(
                "sequence number {seq} where {expected_seq} was expected: a version is missing"
            ))
        } else {
            let recomputed = match (&content, deleted) {
                (Some(c), false) => Some(content_hash(c)),
                (None, true) => Some(String::new()),
                _ => None,
            };
            match recomputed {
                None => Some("content does not match the deletion flag".to_owned()),
                Some(h) if h != stored_hash => {
                    Some("content does not match its stored hash".to_owned())
                }
                Some(_) => {
                    let expected =
                        link_hash(&prev, stream, seq, &key, version, deleted, &stored_hash);
                    (expected != link).then(|| {
                        "link hash does not match the previous version and this one".to_owned()
                    })
                }
            }
        };
        if let Some(problem) = problem {
            return Ok((
                count,
                Some(Damage {
                    collection: stream.to_owned(),
                    key,
                    version,
                    problem,
                }),
            ));
        }
        prev = link;
    }
    Ok((count, None))
}

/// Checks every current record of a collection against its newest version,
/// typed columns included. Returns the number of records checked.
async fn verify_current(
    tx: &mut Tx,
    collection: Collection,
    damage: &mut Vec<Damage>,
) -> Result<u64, StoreError> {
    let stream = collection.to_string();
    let table = schema::table(collection);
    let columns = schema::columns(collection);
    let typed: Vec<String> = columns.iter().map(|c| format!("t.{c}")).collect();
    let mut rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT t.key, t.hash, t.version, t.deleted, v.deleted AS v_deleted, \
         v.content AS v_content, v.content_hash AS v_hash, {} \
         FROM {table} t LEFT JOIN versions v \
         ON v.stream = $1 AND v.key = t.key AND v.version = t.version ORDER BY t.key",
        typed.join(", ")
    )))
    .bind(stream.as_str())
    .fetch(&mut **tx);
    let mut count = 0u64;
    let mut found = 0usize;
    while let Some(row) = rows.try_next().await? {
        count += 1;
        if found >= MAX_DAMAGE_PER_COLLECTION {
            continue;
        }
        let key: String = row.try_get("key")?;
        let version: i64 = row.try_get("version")?;
        let deleted: bool = row.try_get("deleted")?;
        let problem = match row.try_get::<Option<bool>, _>("v_deleted")? {
            None => Some(format!("the history has no version {version}")),
            Some(v_deleted) if v_deleted != deleted => {
                Some("deletion flag differs from the history".to_owned())
            }
            Some(_) if deleted => None,
            Some(_) => {
                let hash: String = row.try_get("hash")?;
                let v_hash: String = row.try_get("v_hash")?;
                let content: Option<String> = row.try_get("v_content")?;
                if hash != v_hash {
                    Some("content hash differs from the history".to_owned())
                } else {
                    let record = content
                        .as_deref()
                        .map(|c| Record::from_content(collection, c));
                    match record {
                        Some(Ok(record)) => {
                            let mut differs = None;
                            for (column, expected) in columns.iter().zip(schema::values(&record)) {
                                if read_value(&row, column, &expected)? != expected {
                                    differs = Some(format!(
                                        "column {column} differs from the recorded content"
                                    ));
                                    break;
                                }
                            }
                            differs
                        }
                        _ => Some("recorded content cannot be read".to_owned()),
                    }
                }
            }
        };
        if let Some(problem) = problem {
            found += 1;
            damage.push(Damage {
                collection: stream.clone(),
                key,
                version,
                problem,
            });
        }
    }
    drop(rows);

    let orphans: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT v.key, MAX(v.version) FROM versions v WHERE v.stream = $1 \
         AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.key = v.key) \
         GROUP BY v.key ORDER BY v.key LIMIT {MAX_DAMAGE_PER_COLLECTION}"
    )))
    .bind(stream.as_str())
    .fetch_all(&mut **tx)
    .await?;
    for (key, version) in orphans {
        damage.push(Damage {
            collection: stream.clone(),
            key,
            version,
            problem: "the record has a history but is missing from its table".to_owned(),
        });
    }
    Ok(count)
}

fn check_collections(batch: &Batch) -> Result<(), StoreError> {
    for item in &batch.items {
        if let Item::Upsert(r) = item
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

/// A write transaction, with the writer's turn where the backend needs one.
pub struct SqlSyncTx {
    tx: Tx,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

#[async_trait]
impl SyncTx for SqlSyncTx {
    async fn apply(&mut self, batch: &Batch) -> Result<BatchOutcome, StoreError> {
        check_collections(batch)?;
        apply_in(&mut self.tx, batch).await
    }

    async fn unseen(&mut self, collection: Collection, run: RunId) -> Result<Unseen, StoreError> {
        let (unseen, live): (i64, i64) = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT COALESCE(SUM(CASE WHEN seen_run IS NULL OR seen_run <> $1 THEN 1 ELSE 0 END), 0), \
             COUNT(*) FROM {} WHERE deleted = FALSE",
            schema::table(collection)
        )))
        .bind(run.0)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(Unseen {
            unseen: unseen as u64,
            live: live as u64,
        })
    }

    async fn relink_units(&mut self) -> Result<u64, StoreError> {
        let resolved = "(SELECT CASE WHEN COUNT(*) = 1 THEN MIN(u.unit_code) END \
             FROM finance_units u \
             WHERE u.name_norm = audit_findings.unit_name_norm AND u.deleted = FALSE)";
        let result = sqlx::query(AssertSqlSafe(format!(
            "UPDATE audit_findings SET unit_code = {resolved} \
             WHERE unit_code IS DISTINCT FROM {resolved}"
        )))
        .execute(&mut *self.tx)
        .await?;
        Ok(result.rows_affected())
    }

    async fn hold_lease(
        &mut self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(hand_over_lease(&mut self.tx, name, holder, holder, until).await?)
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
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

fn sum_by_stream(rows: Vec<(String, i64)>) -> HashMap<String, i64> {
    rows.into_iter().collect()
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let migrations = MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                sqlx::migrate::Migration::new(
                    *version,
                    std::borrow::Cow::Borrowed(*description),
                    sqlx::migrate::MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(AssertSqlSafe(*sql)),
                    false,
                )
            })
            .collect();
        sqlx::migrate::Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn begin_run(
        &self,
        adapter: &str,
        agency: Agency,
        at: DateTime<Utc>,
    ) -> Result<RunId, StoreError> {
        // Every write takes the writer's turn, so that a writer blocked by
        // the database lock never holds a pooled connection another needs.
        let mut tx = self.write_tx().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sync_runs (adapter, agency, started_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(adapter)
        .bind(agency.as_str())
        .bind(at)
        .fetch_one(&mut *tx.tx)
        .await?;
        tx.tx.commit().await?;
        Ok(RunId(id))
    }

    async fn adapter_runs(&self) -> Result<Vec<AdapterRunRow>, StoreError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "WITH newest AS (SELECT adapter, MAX(id) AS id FROM sync_runs \
               WHERE adapter IS NOT NULL GROUP BY adapter), \
             good AS (SELECT adapter, MAX(finished_at) AS last_success FROM sync_runs \
               WHERE ok = TRUE GROUP BY adapter), \
             counts AS (SELECT adapter, COUNT(*) AS runs, {failures} AS failures \
               FROM sync_runs GROUP BY adapter) \
             SELECT r.adapter, r.agency, r.started_at, r.finished_at, r.ok, r.report, \
               good.last_success, counts.runs, counts.failures \
             FROM newest JOIN sync_runs r ON r.id = newest.id \
             LEFT JOIN good ON good.adapter = r.adapter \
             JOIN counts ON counts.adapter = r.adapter ORDER BY r.adapter",
            failures = sum("CASE WHEN ok = FALSE THEN 1 ELSE 0 END")
        )))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let taken = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        tx.tx.commit().await?;
        Ok(taken == 1)
    }

    async fn hand_over_lease(
        &self,
        name: &str,
        from: &str,
        to: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let handed = hand_over_lease(&mut tx.tx, name, from, to, until).await?;
        tx.tx.commit().await?;
        Ok(handed)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&mut *tx.tx)
            .await?;
        tx.tx.commit().await?;
        Ok(())
    }

    async fn data_generation(&self) -> Result<i64, StoreError> {
        // One indexed look-up per stream, not a scan of the history.
        let newest: Vec<String> = Collection::ALL
            .iter()
            .map(|c| format!("COALESCE((SELECT MAX(seq) FROM versions WHERE stream = '{c}'), 0)"))
            .collect();
        let sql = format!("SELECT CAST({} AS BIGINT)", newest.join(" + "));
        Ok(sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&self.pool)
            .await?)
    }

    async fn lease_holder(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT holder FROM leases WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn readiness(&self) -> Result<(), StoreError> {
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(&self.pool)
                .await?;
        if applied < MIGRATIONS.len() as i64 {
            return Err(StoreError::Corrupt(format!(
                "{applied} of {} migrations applied: run liankong migrate",
                MIGRATIONS.len()
            )));
        }
        Ok(())
    }

    async fn finish_run(
        &self,
        run: RunId,
        at: DateTime<Utc>,
        ok: bool,
        report: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE sync_runs SET finished_at = $1, ok = $2, report = $3 WHERE id = $4")
            .bind(at)
            .bind(ok)
            .bind(report)
            .bind(run.0)
            .execute(&mut *tx.tx)
            .await?;
        tx.tx.commit().await?;
        Ok(())
    }

    async fn apply(&self, batch: &Batch) -> Result<BatchOutcome, StoreError> {
        check_collections(batch)?;
        let mut tx = self.write_tx().await?;
        let outcome = apply_in(&mut tx.tx, batch).await?;
        tx.tx.commit().await?;
        Ok(outcome)
    }

    async fn begin_sync(&self) -> Result<Box<dyn SyncTx>, StoreError> {
        Ok(Box::new(self.write_tx().await?))
    }

    async fn stream_state(
        &self,
        collection: Collection,
    ) -> Result<Option<StreamState>, StoreError> {
        let stream = collection.to_string();
        let row = sqlx::query(
            "SELECT cursor, last_complete, run, held_deletions, held_since \
             FROM stream_state WHERE stream = $1",
        )
        .bind(stream.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        // The earliest place an open quarantined row must be fetched from.
        let (open, holding, from_start, earliest): (i64, i64, i64, Option<i64>) =
            sqlx::query_as(
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN holds THEN 1 ELSE 0 END), 0), \
                 COALESCE(SUM(CASE WHEN holds AND hold_from IS NULL THEN 1 ELSE 0 END), 0), \
                 MIN(CASE WHEN holds THEN hold_from END) \
                 FROM quarantine WHERE stream = $1 AND state = 'open'",
            )
            .bind(stream.as_str())
            .fetch_one(&self.pool)
            .await?;
        let refetch = match (holding, from_start, earliest) {
            (0, _, _) => None,
            (_, 0, Some(micros)) => Some(Refetch::From(
                DateTime::from_timestamp_micros(micros)
                    .ok_or_else(|| StoreError::Corrupt(format!("hold_from {micros}")))?,
            )),
            _ => Some(Refetch::Start),
        };
        let held = match (
            row.try_get::<Option<i64>, _>("held_deletions")?,
            row.try_get::<Option<DateTime<Utc>>, _>("held_since")?,
        ) {
            (Some(deletions), Some(since)) => Some(Held {
                deletions: deletions as u64,
                since,
            }),
            _ => None,
        };
        Ok(Some(StreamState {
            cursor: row.try_get("cursor")?,
            last_complete: row.try_get("last_complete")?,
            run: row.try_get::<Option<i64>, _>("run")?.map(RunId),
            held,
            refetch,
            open_quarantined: open as u64,
        }))
    }

    async fn held_deletions(&self) -> Result<Vec<(String, Held)>, StoreError> {
        let rows: Vec<(String, i64, DateTime<Utc>)> = sqlx::query_as(
            "SELECT stream, held_deletions, held_since FROM stream_state \
             WHERE held_deletions IS NOT NULL AND held_since IS NOT NULL ORDER BY stream",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(stream, deletions, since)| {
                (
                    stream,
                    Held {
                        deletions: deletions as u64,
                        since,
                    },
                )
            })
            .collect())
    }

    async fn drop_quarantined(
        &self,
        which: QuarantineSelection,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let _guard = if SERIALIZE_WRITERS {
            Some(self.write_lock.clone().lock_owned().await)
        } else {
            None
        };
        let mut tx = begin_write(&self.writer).await?;
        let mut qb =
            QueryBuilder::<Db>::new("UPDATE quarantine SET state = 'dropped', closed_at = ");
        qb.push_bind(at);
        qb.push(" WHERE state = 'open' AND ");
        match which {
            QuarantineSelection::Id(id) => {
                qb.push("id = ");
                qb.push_bind(id);
            }
            QuarantineSelection::Stream(c) => {
                qb.push("stream = ");
                qb.push_bind(c.to_string());
            }
        }
        let dropped = qb.build().execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(dropped)
    }

    async fn get(
        &self,
        collection: Collection,
        key: &str,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let table = schema::table(collection);
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT t.key, t.hash, t.version, t.deleted, t.first_seen, t.last_seen, \
             (SELECT v.content FROM versions v WHERE v.stream = $1 AND v.key = t.key \
              AND v.content IS NOT NULL ORDER BY v.version DESC LIMIT 1) AS content \
             FROM {table} t WHERE t.key = $2"
        )))
        .bind(collection.to_string())
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let content: Option<String> = row.try_get("content")?;
        let content = content.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{collection} {key:?} has no content in its history"
            ))
        })?;
        let record = Record::from_content(collection, &content)
            .map_err(|e| StoreError::Corrupt(format!("{collection} {key:?}: {e}")))?;
        Ok(Some(StoredRecord {
            collection,
            key: row.try_get("key")?,
            hash: row.try_get("hash")?,
            version: row.try_get("version")?,
            deleted: row.try_get("deleted")?,
            first_seen: row.try_get("first_seen")?,
            last_seen: row.try_get("last_seen")?,
            record,
        }))
    }

    async fn history(&self, collection: Collection, key: &str) -> Result<Vec<Version>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, version, deleted, content, content_hash, link, recorded_at \
             FROM versions WHERE stream = $1 AND key = $2 ORDER BY version",
        )
        .bind(collection.to_string())
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(Version {
                    seq: row.try_get("seq")?,
                    version: row.try_get("version")?,
                    deleted: row.try_get("deleted")?,
                    content: row.try_get("content")?,
                    content_hash: row.try_get("content_hash")?,
                    link: row.try_get("link")?,
                    recorded_at: row.try_get("recorded_at")?,
                })
            })
            .collect()
    }

    async fn quarantined(
        &self,
        collection: Option<Collection>,
        open_only: bool,
        limit: i64,
    ) -> Result<Vec<QuarantineEntry>, StoreError> {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT id, stream, run, last_run, sightings, reason, raw, key, kept_version, holds, \
             state, received_at, closed_at FROM quarantine WHERE TRUE",
        );
        if let Some(c) = collection {
            qb.push(" AND stream = ");
            qb.push_bind(c.to_string());
        }
        if open_only {
            qb.push(" AND state = 'open'");
        }
        qb.push(" ORDER BY id DESC LIMIT ");
        qb.push_bind(limit);
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|row| {
                let state: String = row.try_get("state")?;
                Ok(QuarantineEntry {
                    id: row.try_get("id")?,
                    collection: row.try_get("stream")?,
                    run: row.try_get("run")?,
                    last_run: row.try_get("last_run")?,
                    sightings: row.try_get("sightings")?,
                    reason: row.try_get("reason")?,
                    raw: row.try_get("raw")?,
                    key: row.try_get("key")?,
                    kept_version: row.try_get("kept_version")?,
                    holds: row.try_get("holds")?,
                    state: QuarantineState::parse(&state).ok_or_else(|| {
                        StoreError::Corrupt(format!("quarantine state {state:?}"))
                    })?,
                    received_at: row.try_get("received_at")?,
                    closed_at: row.try_get("closed_at")?,
                })
            })
            .collect()
    }

    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        // One transaction: the walk sees one consistent state even while
        // adapters keep writing.
        let mut tx = self.pool.begin().await?;
        for collection in Collection::ALL {
            let stream = collection.to_string();
            let (versions, broken) = verify_chain(&mut tx, &stream).await?;
            if versions > 0 {
                report.chains += 1;
            }
            report.versions += versions;
            report.damage.extend(broken);
            report.records += verify_current(&mut tx, collection, &mut report.damage).await?;
        }
        tx.rollback().await?;
        Ok(report)
    }

    async fn stats(&self) -> Result<Vec<CollectionStats>, StoreError> {
        let versions = sum_by_stream(
            sqlx::query_as("SELECT stream, COUNT(*) FROM versions GROUP BY stream")
                .fetch_all(&self.pool)
                .await?,
        );
        let quarantined = sum_by_stream(
            sqlx::query_as(
                "SELECT stream, COUNT(*) FROM quarantine WHERE state = 'open' GROUP BY stream",
            )
            .fetch_all(&self.pool)
            .await?,
        );
        let mut stats = Vec::with_capacity(Collection::ALL.len());
        for collection in Collection::ALL {
            let (live, deleted): (i64, i64) = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT COALESCE(SUM(CASE WHEN deleted THEN 0 ELSE 1 END), 0), \
                 COALESCE(SUM(CASE WHEN deleted THEN 1 ELSE 0 END), 0) FROM {}",
                schema::table(collection)
            )))
            .fetch_one(&self.pool)
            .await?;
            let stream = collection.to_string();
            stats.push(CollectionStats {
                source: collection.source(),
                collection: collection.name(),
                live,
                deleted,
                versions: versions.get(&stream).copied().unwrap_or(0),
                quarantined: quarantined.get(&stream).copied().unwrap_or(0),
            });
        }
        Ok(stats)
    }

    async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

/// `CAST(COALESCE(SUM(expr), 0) AS BIGINT)`: PostgreSQL sums BIGINTs as
/// NUMERIC; both backends then hand back an `i64`.
fn sum(expr: &str) -> String {
    format!("CAST(COALESCE(SUM({expr}), 0) AS BIGINT)")
}

/// A quota row's contribution to quota(p, Y): reclaims subtract.
const SIGNED_QUOTA: &str = "CASE WHEN kind = 'reclaim' THEN -amount ELSE amount END";

/// ` AND {column} > $n AND {column} <= $m` for the ends `range` has, its
/// parameters numbered from `first`; [`bind_range`] binds them in order.
fn range_condition(column: &str, range: &ProjectRange, first: usize) -> String {
    let mut sql = String::new();
    let mut n = first;
    if range.after.is_some() {
        sql.push_str(&format!(" AND {column} > ${n}"));
        n += 1;
    }
    if range.up_to.is_some() {
        sql.push_str(&format!(" AND {column} <= ${n}"));
    }
    sql
}

type RangeQuery<'q, O> = sqlx::query::QueryAs<'q, Db, O, <Db as sqlx::Database>::Arguments>;

fn bind_range<'q, O>(mut query: RangeQuery<'q, O>, range: &ProjectRange) -> RangeQuery<'q, O> {
    if let Some(after) = &range.after {
        query = query.bind(after.clone());
    }
    if let Some(up_to) = &range.up_to {
        query = query.bind(up_to.clone());
    }
    query
}

#[async_trait]
impl FactStore for SqlStore {
    async fn project_slices(&self, size: usize) -> Result<Vec<ProjectRange>, StoreError> {
        // Every size-th live project code bounds a slice; the codes beyond
        // the last bound (and those finance does not hold) fall in the open
        // ends.
        let bounds: Vec<String> = sqlx::query_scalar(
            "SELECT key FROM ( \
               SELECT key, ROW_NUMBER() OVER (ORDER BY key) AS n \
               FROM finance_projects WHERE deleted = FALSE) numbered \
             WHERE n % $1 = 0 ORDER BY key",
        )
        .bind(i64::try_from(size.max(1)).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(ProjectRange::between(bounds))
    }

    async fn project_facts(
        &self,
        q: &FactsQuery,
        range: &ProjectRange,
    ) -> Result<Vec<ProjectFacts>, StoreError> {
        let in_range = |column: &str| range_condition(column, range, 6);
        let sql = format!(
            "WITH q AS ( \
               SELECT project_code, \
                 {quota} AS quota, \
                 {quota_rows} AS quota_rows, \
                 {initial} AS initial, \
                 MIN(CASE WHEN fiscal_year = $1 AND kind = 'initial' THEN approved_on END) AS first_initial_on, \
                 {quota_prev} AS quota_prev \
               FROM finance_quotas WHERE deleted = FALSE AND fiscal_year IN ($1, $2){quotas_in} \
               GROUP BY project_code), \
             pay AS ( \
               SELECT project_code, \
                 {exp} AS exp, \
                 {exp_lookback} AS exp_lookback, \
                 MAX(CASE WHEN kind = 'expenditure' THEN paid_on END) AS last_exp_on, \
                 {alloc} AS alloc, \
                 {nalloc} AS nalloc \
               FROM finance_payments WHERE deleted = FALSE AND paid_on >= $3 AND paid_on <= $4{payments_in} \
               GROUP BY project_code), \
             npc AS ( \
               SELECT project_code, {approved} AS approved, MIN(key) AS npc_key \
               FROM npc_budgets WHERE deleted = FALSE AND year = $1{budgets_in} GROUP BY project_code), \
             keys AS ( \
               SELECT key AS project_code FROM finance_projects WHERE deleted = FALSE{projects_in} \
               UNION SELECT project_code FROM q UNION SELECT project_code FROM pay \
               UNION SELECT project_code FROM npc) \
             SELECT k.project_code, p.key IS NOT NULL AS in_finance, p.unit_code, p.category, \
               COALESCE(p.full_year, FALSE) AS full_year, \
               COALESCE(q.quota, 0) AS quota, COALESCE(q.quota_rows, 0) AS quota_rows, \
               COALESCE(q.initial, 0) AS initial, q.first_initial_on, \
               COALESCE(q.quota_prev, 0) AS quota_prev, \
               COALESCE(pay.exp, 0) AS exp, COALESCE(pay.exp_lookback, 0) AS exp_lookback, \
               pay.last_exp_on, COALESCE(pay.alloc, 0) AS alloc, COALESCE(pay.nalloc, 0) AS nalloc, \
               npc.approved AS npc_approved, npc.npc_key, \
               (SELECT COUNT(*) FROM finance_targets t WHERE t.deleted = FALSE \
                  AND t.project_code = k.project_code AND t.fiscal_year = $1) AS targets, \
               (SELECT e.score FROM finance_evaluations e WHERE e.deleted = FALSE \
                  AND e.project_code = k.project_code AND e.fiscal_year = $2 \
                  ORDER BY e.score, e.key LIMIT 1) AS prev_score, \
               (SELECT e.key FROM finance_evaluations e WHERE e.deleted = FALSE \
                  AND e.project_code = k.project_code AND e.fiscal_year = $2 \
                  ORDER BY e.score, e.key LIMIT 1) AS prev_evaluation \
             FROM keys k \
             LEFT JOIN finance_projects p ON p.key = k.project_code AND p.deleted = FALSE \
             LEFT JOIN q ON q.project_code = k.project_code \
             LEFT JOIN pay ON pay.project_code = k.project_code \
             LEFT JOIN npc ON npc.project_code = k.project_code \
             ORDER BY k.project_code",
            quota = sum(&format!(
                "CASE WHEN fiscal_year = $1 THEN {SIGNED_QUOTA} ELSE 0 END"
            )),
            quota_rows = sum("CASE WHEN fiscal_year = $1 THEN 1 ELSE 0 END"),
            initial = sum("CASE WHEN fiscal_year = $1 AND kind = 'initial' THEN amount ELSE 0 END"),
            quota_prev = sum(&format!(
                "CASE WHEN fiscal_year = $2 THEN {SIGNED_QUOTA} ELSE 0 END"
            )),
            exp = sum("CASE WHEN kind = 'expenditure' THEN amount ELSE 0 END"),
            exp_lookback =
                sum("CASE WHEN kind = 'expenditure' AND paid_on <= $5 THEN amount ELSE 0 END"),
            alloc = sum("CASE WHEN kind = 'allocation' THEN amount ELSE 0 END"),
            nalloc = sum("CASE WHEN kind = 'allocation' THEN 1 ELSE 0 END"),
            approved = sum("approved + adjustment"),
            quotas_in = in_range("project_code"),
            payments_in = in_range("project_code"),
            budgets_in = in_range("project_code"),
            projects_in = in_range("key"),
        );
        let query = sqlx::query_as(AssertSqlSafe(sql))
            .bind(i64::from(q.year))
            .bind(i64::from(q.year) - 1)
            .bind(q.year_start())
            .bind(q.as_of)
            .bind(q.lookback);
        Ok(bind_range(query, range).fetch_all(&self.pool).await?)
    }

    async fn mirror_mismatches(
        &self,
        q: &FactsQuery,
        tolerance: Fen,
    ) -> Result<Vec<MirrorFact>, StoreError> {
        // Each execution row's figure is one range of the covering payments
        // index (project, kind, date): measured at a quarter province, 1.3 s
        // against 4.7 s for both sides streamed in project order and merged
        // here, whose rows each cross from the database to this process.
        // Only the rows that differ come back.
        let sql = format!(
            "SELECT m.key, m.project_code, p.unit_code, m.as_of, m.reported, m.exp FROM ( \
               SELECT x.key, x.project_code, x.as_of, x.cumulative AS reported, \
                 (SELECT {amount} FROM finance_payments f \
                   WHERE f.project_code = x.project_code AND f.kind = 'expenditure' \
                     AND f.paid_on >= $1 AND f.paid_on <= x.as_of AND f.deleted = FALSE) AS exp \
               FROM npc_execution x \
               WHERE x.deleted = FALSE AND x.year = $3 AND x.as_of <= $2) m \
             LEFT JOIN finance_projects p ON p.key = m.project_code AND p.deleted = FALSE \
             WHERE ABS(m.reported - m.exp) > $4 \
             ORDER BY m.project_code, m.as_of, m.key",
            amount = sum("f.amount")
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(q.year_start())
            .bind(q.as_of)
            .bind(i64::from(q.year))
            .bind(tolerance)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn unsettled_tranches(
        &self,
        q: &FactsQuery,
        paid_on_or_before: NaiveDate,
        range: &ProjectRange,
    ) -> Result<Vec<TrancheFact>, StoreError> {
        let in_range = range_condition("project_code", range, 4);
        let sql = format!(
            "WITH e AS ( \
               SELECT project_code, {exp} AS exp FROM finance_payments \
               WHERE deleted = FALSE AND kind = 'expenditure' AND paid_on >= $1 AND paid_on <= $2{in_range} \
               GROUP BY project_code), \
             w AS ( \
               SELECT project_code, key, paid_on, amount, \
                 CAST(SUM(amount) OVER (PARTITION BY project_code ORDER BY paid_on \
                   RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS cumulative \
               FROM finance_payments \
               WHERE deleted = FALSE AND kind = 'allocation' AND paid_on >= $1 AND paid_on <= $2{in_range}) \
             SELECT w.project_code, w.key AS payment_id, w.paid_on, w.amount, w.cumulative, \
               COALESCE(e.exp, 0) AS exp \
             FROM w LEFT JOIN e ON e.project_code = w.project_code \
             WHERE w.paid_on <= $3 AND w.cumulative > COALESCE(e.exp, 0) \
             ORDER BY w.project_code, w.paid_on, w.key",
            exp = sum("amount")
        );
        let query = sqlx::query_as(AssertSqlSafe(sql))
            .bind(q.year_start())
            .bind(q.as_of)
            .bind(paid_on_or_before);
        Ok(bind_range(query, range).fetch_all(&self.pool).await?)
    }

    async fn audit_findings(&self) -> Result<Vec<FindingFact>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key AS finding_no, unit_name, unit_code, project_code, status, amount, \
             deadline, found_on FROM audit_findings WHERE deleted = FALSE ORDER BY key",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn rectifications(&self) -> Result<Vec<RectificationFact>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key AS report_id, finding_no, status, reported_on FROM finance_rectifications \
             WHERE deleted = FALSE ORDER BY finding_no, reported_on, key",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn freeze_breaches(&self, as_of: NaiveDate) -> Result<Vec<FreezeFact>, StoreError> {
        let columns = "r.key AS referral_id, r.unit_code, r.project_code AS referral_project, \
             r.received_on, r.status, r.origin, r.freeze_from, f.key AS payment_id, \
             f.project_code AS payment_project, f.kind, f.amount, f.paid_on";
        let live = "r.deleted = FALSE AND r.frozen = TRUE AND r.status <> 'closed' \
             AND r.freeze_from IS NOT NULL";
        let sql = format!(
            "SELECT {columns} FROM discipline_referrals r \
               JOIN finance_payments f ON f.project_code = r.project_code \
             WHERE {live} AND f.deleted = FALSE AND f.paid_on >= r.freeze_from AND f.paid_on <= $1 \
             UNION ALL \
             SELECT {columns} FROM discipline_referrals r \
               JOIN finance_projects p ON p.unit_code = r.unit_code AND p.deleted = FALSE \
               JOIN finance_payments f ON f.project_code = p.key \
             WHERE {live} AND r.project_code IS NULL \
               AND f.deleted = FALSE AND f.paid_on >= r.freeze_from AND f.paid_on <= $1 \
             ORDER BY 1, 12, 8"
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(as_of)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn unit_quarters(
        &self,
        year: i32,
        quarter_ends: &[NaiveDate],
    ) -> Result<Vec<Vec<UnitQuarterFact>>, StoreError> {
        let Some(last) = quarter_ends.iter().max().copied() else {
            return Ok(Vec::new());
        };
        // End i is parameter $(i + 4); $3 is the latest, bounding the scans.
        let columns = |f: &dyn Fn(usize) -> String| {
            (0..quarter_ends.len())
                .map(f)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let sql = format!(
            "WITH active AS ( \
               SELECT project_code FROM finance_quotas \
               WHERE deleted = FALSE AND fiscal_year = $1 GROUP BY project_code \
               HAVING SUM({SIGNED_QUOTA}) > 0), \
             qe AS ( \
               SELECT project_code, {quotas} FROM finance_quotas \
               WHERE deleted = FALSE AND fiscal_year = $1 AND approved_on <= $3 \
               GROUP BY project_code), \
             ee AS ( \
               SELECT project_code, {exps} FROM finance_payments \
               WHERE deleted = FALSE AND kind = 'expenditure' AND paid_on >= $2 AND paid_on <= $3 \
               GROUP BY project_code) \
             SELECT p.unit_code, {unit_sums} \
             FROM active a \
             JOIN finance_projects p ON p.key = a.project_code AND p.deleted = FALSE \
               AND p.category <> 'reserve' \
             LEFT JOIN qe ON qe.project_code = a.project_code \
             LEFT JOIN ee ON ee.project_code = a.project_code \
             GROUP BY p.unit_code ORDER BY p.unit_code",
            quotas = columns(&|i| format!(
                "{} AS quota_{i}",
                sum(&format!(
                    "CASE WHEN approved_on <= ${} THEN {SIGNED_QUOTA} ELSE 0 END",
                    i + 4
                ))
            )),
            exps = columns(&|i| format!(
                "{} AS exp_{i}",
                sum(&format!(
                    "CASE WHEN paid_on <= ${} THEN amount ELSE 0 END",
                    i + 4
                ))
            )),
            unit_sums = columns(&|i| format!(
                "{} AS quota_{i}, {} AS exp_{i}",
                sum(&format!("COALESCE(qe.quota_{i}, 0)")),
                sum(&format!("COALESCE(ee.exp_{i}, 0)"))
            )),
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(i64::from(year))
            .bind(NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or(last))
            .bind(last);
        for end in quarter_ends {
            query = query.bind(*end);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut out: Vec<Vec<UnitQuarterFact>> =
            vec![Vec::with_capacity(rows.len()); quarter_ends.len()];
        for row in &rows {
            let unit_code: String = row.try_get("unit_code")?;
            for (i, of_end) in out.iter_mut().enumerate() {
                of_end.push(UnitQuarterFact {
                    unit_code: unit_code.clone(),
                    quota: row.try_get(format!("quota_{i}").as_str())?,
                    exp: row.try_get(format!("exp_{i}").as_str())?,
                });
            }
        }
        Ok(out)
    }

    async fn orgdept_rows(&self, year: i32) -> Result<Vec<OrgdeptFact>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key, unit_code, quarter, reported_rate FROM orgdept_evaluations \
             WHERE deleted = FALSE AND year = $1 ORDER BY key",
        )
        .bind(i64::from(year))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn unknown_projects(&self) -> Result<Vec<UnknownProjectFact>, StoreError> {
        // The codes a table names are few next to its rows: find the unknown
        // codes first, then the rows naming them (not one lookup per row).
        let part = |agency: &str, collection: &str, table: &str| {
            format!(
                "SELECT '{agency}' AS agency, '{collection}' AS collection, x.key, x.project_code \
                 FROM {table} x WHERE x.deleted = FALSE AND x.project_code IN ( \
                   SELECT d.project_code FROM (SELECT DISTINCT project_code FROM {table} \
                     WHERE project_code IS NOT NULL) d \
                   WHERE NOT EXISTS (SELECT 1 FROM finance_projects p WHERE p.key = d.project_code))"
            )
        };
        let sql = [
            part("finance", "quotas", "finance_quotas"),
            part("finance", "payments", "finance_payments"),
            part("finance", "targets", "finance_targets"),
            part("finance", "evaluations", "finance_evaluations"),
            part("npc", "budgets", "npc_budgets"),
            part("npc", "execution", "npc_execution"),
            part("audit", "findings", "audit_findings"),
            part("discipline", "referrals", "discipline_referrals"),
        ]
        .join(" UNION ALL ")
            + " ORDER BY 1, 4, 2, 3";
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?)
    }
}

const ALERT_COLUMNS: &str = "id, rule, subject, confidential, severity, state, episode, unit_code, \
     project_code, recipients, finding, finding_hash, as_of, first_seen, changed_at, resolved_at, \
     acked_at, acked_by, ack_note, notified_episode, notified_state, notified_at";

/// The text of what an alert row keeps as JSON: its finding, the
/// finding's sha-256 and its recipients.
fn alert_json(a: &AlertRow) -> Result<(String, String, String), StoreError> {
    let finding = serde_json::to_string(&a.finding).map_err(StoreError::Encode)?;
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(finding.as_bytes()));
    let recipients = serde_json::to_string(a.recipients()).map_err(StoreError::Encode)?;
    Ok((finding, hash, recipients))
}

const OUTBOX_COLUMNS: &str = "id, event_id, alert_id, subscriber, agency, event_type, body, \
     created_at, state, attempts, next_attempt_at, last_error, last_attempt_at, delivered_at";

/// A random salt from the TLS stack's secure random source.
fn new_salt() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| StoreError::Corrupt("no secure random source".into()))?;
    Ok(hex::encode(bytes))
}

#[async_trait]
impl AlertTx for SqlSyncTx {
    async fn salt(&mut self) -> Result<String, StoreError> {
        let existing: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'alert_id_salt'")
                .fetch_optional(&mut *self.tx)
                .await?;
        if let Some(salt) = existing {
            return Ok(salt);
        }
        let salt = new_salt()?;
        sqlx::query("INSERT INTO settings (key, value) VALUES ('alert_id_salt', $1)")
            .bind(&salt)
            .execute(&mut *self.tx)
            .await?;
        Ok(salt)
    }

    async fn active_alerts(&mut self) -> Result<Vec<AlertRow>, StoreError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE state <> 'resolved' ORDER BY id"
        )))
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn alert(&mut self, id: &str) -> Result<Option<AlertRow>, StoreError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    async fn put_alert(&mut self, a: &AlertRow) -> Result<(), StoreError> {
        let (finding, finding_hash, recipients) = alert_json(a)?;
        let updates: Vec<String> = ALERT_COLUMNS
            .split(", ")
            .skip(1)
            .map(|c| format!("{0} = excluded.{0}", c.trim()))
            .collect();
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO alerts ({ALERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) \
             ON CONFLICT (id) DO UPDATE SET {}",
            updates.join(", ")
        )))
        .bind(&a.id)
        .bind(a.rule)
        .bind(&a.subject)
        .bind(a.confidential)
        .bind(a.severity)
        .bind(a.state)
        .bind(a.episode)
        .bind(&a.unit_code)
        .bind(&a.project_code)
        .bind(recipients)
        .bind(finding)
        .bind(finding_hash)
        .bind(a.as_of)
        .bind(a.first_seen)
        .bind(a.changed_at)
        .bind(a.resolved_at)
        .bind(a.acked_at)
        .bind(&a.acked_by)
        .bind(&a.ack_note)
        .bind(a.notified_episode)
        .bind(a.notified_state)
        .bind(a.notified_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn active_silences(&mut self, now: DateTime<Utc>) -> Result<Vec<SilenceRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, scope, value, until, reason, created_by, created_at, lifted_at, agency \
             FROM silences WHERE lifted_at IS NULL AND until > $1 ORDER BY id",
        )
        .bind(now)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn add_events(
        &mut self,
        events: &[NewEvent],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for chunk in events.chunks(rows_per_statement(10)) {
            let mut qb = QueryBuilder::<Db>::new(
                "INSERT INTO outbox (event_id, alert_id, subscriber, agency, event_type, body, \
                 created_at, state, attempts, next_attempt_at) ",
            );
            qb.push_values(chunk, |mut sep, e| {
                sep.push_bind(e.event_id.as_str())
                    .push_bind(e.alert_id.as_str())
                    .push_bind(e.subscriber.as_str())
                    .push_bind(e.agency)
                    .push_bind(e.event_type)
                    .push_bind(e.body.as_str())
                    .push_bind(now)
                    .push_bind("pending")
                    .push_bind(0i64)
                    .push_bind(now);
            });
            qb.build().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn record_run(
        &mut self,
        as_of: NaiveDate,
        started: DateTime<Utc>,
        finished: DateTime<Utc>,
        report: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO reconcile_runs (as_of, started_at, finished_at, report) VALUES ($1, $2, $3, $4)",
        )
        .bind(as_of)
        .bind(started)
        .bind(finished)
        .bind(report)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl AlertStore for SqlStore {
    async fn begin_alerts(&self) -> Result<Box<dyn AlertTx>, StoreError> {
        let mut tx = self.write_tx().await?;
        if let Some(lock) = SERIALIZE_EVALUATIONS {
            sqlx::query(lock).execute(&mut *tx.tx).await?;
        }
        Ok(Box::new(tx))
    }

    async fn alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts ORDER BY changed_at DESC, id"
        )))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn get_alert(&self, id: &str) -> Result<Option<AlertRow>, StoreError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn ack_alert(
        &self,
        id: &str,
        by: &str,
        note: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE alerts SET acked_at = $1, acked_by = $2, ack_note = $3 \
             WHERE id = $4 AND state <> 'resolved'",
        )
        .bind(at)
        .bind(by)
        .bind(note)
        .bind(id)
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        tx.tx.commit().await?;
        Ok(done == 1)
    }

    async fn add_silence(
        &self,
        scope: SilenceScope,
        value: &str,
        agency: Option<Agency>,
        until: DateTime<Utc>,
        reason: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.write_tx().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO silences (scope, value, agency, until, reason, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(scope)
        .bind(value)
        .bind(agency)
        .bind(until)
        .bind(reason)
        .bind(by)
        .bind(at)
        .fetch_one(&mut *tx.tx)
        .await?;
        tx.tx.commit().await?;
        Ok(id)
    }

    async fn lift_silence(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let done =
            sqlx::query("UPDATE silences SET lifted_at = $1 WHERE id = $2 AND lifted_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(&mut *tx.tx)
                .await?
                .rows_affected();
        tx.tx.commit().await?;
        Ok(done == 1)
    }

    async fn silences(&self) -> Result<Vec<SilenceRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, scope, value, until, reason, created_by, created_at, lifted_at, agency \
             FROM silences ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut tx = self.write_tx().await?;
        let rows: Vec<OutboxRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox o \
             WHERE o.state = 'pending' AND o.next_attempt_at <= $1 \
               AND (o.claimed_until IS NULL OR o.claimed_until <= $1) \
               AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.alert_id = o.alert_id \
                   AND e.subscriber = o.subscriber AND e.state = 'pending' AND e.id < o.id) \
             ORDER BY o.id LIMIT $2 {CLAIM_LOCK}"
        )))
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx.tx)
        .await?;
        for chunk in rows.chunks(rows_per_statement(1)) {
            let mut qb = QueryBuilder::<Db>::new("UPDATE outbox SET claimed_until = ");
            qb.push_bind(lease_until);
            qb.push(" WHERE id IN (");
            let mut sep = qb.separated(", ");
            for r in chunk {
                sep.push_bind(r.id);
            }
            qb.push(")");
            qb.build().execute(&mut *tx.tx).await?;
        }
        tx.tx.commit().await?;
        Ok(rows)
    }

    async fn mark_delivered(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE outbox SET state = 'delivered', delivered_at = $1, last_attempt_at = $1, \
             attempts = attempts + 1, claimed_until = NULL, last_error = NULL WHERE id = $2",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *tx.tx)
        .await?;
        tx.tx.commit().await?;
        Ok(())
    }

    async fn mark_failed(
        &self,
        id: i64,
        at: DateTime<Utc>,
        error: &str,
        next: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE outbox SET state = $1, last_attempt_at = $2, attempts = attempts + 1, \
             claimed_until = NULL, last_error = $3, next_attempt_at = COALESCE($4, next_attempt_at) \
             WHERE id = $5",
        )
        .bind(if next.is_some() { "pending" } else { "dead" })
        .bind(at)
        .bind(error)
        .bind(next)
        .bind(id)
        .execute(&mut *tx.tx)
        .await?;
        tx.tx.commit().await?;
        Ok(())
    }

    async fn deliveries(
        &self,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ($1 IS NULL OR state = $1) \
             ORDER BY id DESC LIMIT $2"
        )))
        .bind(state)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn redrive(&self, id: Option<i64>, at: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE outbox SET state = 'pending', next_attempt_at = $1, claimed_until = NULL \
             WHERE state = 'dead' AND ($2 IS NULL OR id = $2)",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        tx.tx.commit().await?;
        Ok(done)
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        let (pending, retrying, delivered, dead): (i64, i64, i64, i64) =
            sqlx::query_as(AssertSqlSafe(format!(
                "SELECT {}, {}, {}, {} FROM outbox",
                sum("CASE WHEN state = 'pending' THEN 1 ELSE 0 END"),
                sum("CASE WHEN state = 'pending' AND attempts > 0 THEN 1 ELSE 0 END"),
                sum("CASE WHEN state = 'delivered' THEN 1 ELSE 0 END"),
                sum("CASE WHEN state = 'dead' THEN 1 ELSE 0 END"),
            )))
            .fetch_one(&self.pool)
            .await?;
        Ok(OutboxCounts {
            pending,
            retrying,
            delivered,
            dead,
        })
    }
}
