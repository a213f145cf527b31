// Ingest: a batch of one stream applied inside a run's write transaction.
//
// `include!`d after `sql_common.rs` by both backends. A record's current
// version lives in its collection's row (content, entry hash, batch and the
// typed columns); an earlier version moves to `superseded` only when a newer
// one replaces it. An unchanged record is compared by its content bytes and
// not written at all: in memory, or for a snapshot of a stream already
// stored on the database side (`load_differing`), so that unchanged rows
// are never read back. What a complete snapshot deletes is the stream's
// live records that this transaction neither wrote nor marked as seen: a
// record it writes is seen by its batch number, and a stored one that a
// snapshot names without changing it gets a mark in the run's temporary
// table of seen rows (`SEEN_SETUP`), which is what its deletions are
// computed against.

/// A stream's id and chain head, read at the start of each write.
struct StreamHead {
    id: i64,
    name: String,
    batches: i64,
    versions: i64,
    head: Digest32,
}

async fn stream_head(tx: &mut Tx, stream: &str) -> Result<StreamHead, StoreError> {
    let select = "SELECT id, batches, versions, head FROM streams WHERE name = $1";
    let mut row: Option<(i64, i64, i64, Option<Vec<u8>>)> = sqlx::query_as(select)
        .bind(stream)
        .fetch_optional(&mut **tx)
        .await?;
    if row.is_none() {
        sqlx::query("INSERT INTO streams (name) VALUES ($1)")
            .bind(stream)
            .execute(&mut **tx)
            .await?;
        row = sqlx::query_as(select)
            .bind(stream)
            .fetch_optional(&mut **tx)
            .await?;
    }
    let (id, batches, versions, head) =
        row.ok_or_else(|| StoreError::Corrupt(format!("stream {stream} cannot be registered")))?;
    let head = match head {
        None => GENESIS,
        Some(bytes) => digest(&bytes)
            .ok_or_else(|| StoreError::Corrupt(format!("the head of stream {stream}")))?,
    };
    Ok(StreamHead {
        id,
        name: stream.to_owned(),
        batches,
        versions,
        head,
    })
}

/// Adds one batch of versions to the chain: `entries` are the batch's
/// (key, version, entry), any order. Returns nothing; the head moves on.
async fn append_chain(
    tx: &mut Tx,
    head: &mut StreamHead,
    mut entries: Vec<(&str, i64, Digest32)>,
    at: i64,
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    entries.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut root = BatchRoot::default();
    for (_, _, entry) in &entries {
        root.push(entry);
    }
    let versions = root.versions();
    let root = root.finish();
    let batch = head.batches + 1;
    let link = batch_link(&head.head, &head.name, batch, versions, &root);
    sqlx::query(
        "INSERT INTO chain (stream_id, batch, versions, root, link, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(head.id)
    .bind(batch)
    .bind(versions)
    .bind(root.as_slice())
    .bind(link.as_slice())
    .bind(at)
    .execute(&mut **tx)
    .await?;
    head.batches = batch;
    head.versions += versions;
    head.head = link;
    sqlx::query("UPDATE streams SET batches = $1, versions = $2, head = $3 WHERE id = $4")
        .bind(head.batches)
        .bind(head.versions)
        .bind(head.head.as_slice())
        .bind(head.id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A record's current version, as stored or as this batch leaves it.
struct Current {
    version: i64,
    deleted: bool,
    content: Option<String>,
    entry: Digest32,
    batch: i64,
    /// When this version was recorded (microseconds since the epoch).
    recorded: i64,
    /// The typed column values, when this batch wrote the record.
    values: Option<Vec<Value>>,
    /// Whether this batch changed it.
    touched: bool,
}

impl Current {
    /// This version as a row of `superseded`, once a newer one replaces it;
    /// its content moves out.
    fn supersede(&mut self, key: &str) -> Superseded {
        Superseded {
            key: key.to_owned(),
            version: self.version,
            batch: self.batch,
            deleted: self.deleted,
            content: self.content.take(),
            entry: self.entry,
            recorded: self.recorded,
        }
    }
}

struct Superseded {
    key: String,
    version: i64,
    batch: i64,
    deleted: bool,
    content: Option<String>,
    entry: Digest32,
    recorded: i64,
}

fn push_value(sep: &mut Separated<'_, Db, &'static str>, value: Value) {
    match value {
        Value::Text(v) => sep.push_bind(v),
        Value::Int(v) => sep.push_bind(v),
        Value::Bool(v) => sep.push_bind(v),
        Value::Date(v) => sep.push_bind(date_bind(v)),
    };
}

fn stored_entry(bytes: Option<Vec<u8>>, table: &str, key: &str) -> Result<Digest32, StoreError> {
    bytes
        .as_deref()
        .and_then(digest)
        .ok_or_else(|| StoreError::Corrupt(format!("{table} {key:?} has no entry hash")))
}

/// The current rows of `keys` (sorted, distinct), read in key order, by
/// lists of bound keys (PostgreSQL binds one array instead).
#[allow(dead_code)]
async fn load_current_listed(
    tx: &mut Tx,
    table: &str,
    keys: &[&str],
) -> Result<HashMap<String, Current>, StoreError> {
    let mut current = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(rows_per_statement(1)) {
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT key, version, deleted, content, entry, batch, last_seen FROM {table} \
             WHERE key IN ("
        ));
        let mut sep = qb.separated(", ");
        for key in chunk {
            sep.push_bind(*key);
        }
        qb.push(")");
        let rows = qb.build().fetch_all(&mut **tx).await?;
        for row in rows {
            let (key, row) = current_of(&row, table)?;
            current.insert(key, row);
        }
    }
    Ok(current)
}

/// What [`load_differing`] found of a batch: the stored rows that it may
/// change, and its keys that are not stored at all. A key in neither is
/// stored, live and unchanged.
struct Differing {
    current: HashMap<String, Current>,
    absent: HashSet<String>,
}

/// The stored rows a staged batch (`incoming`, aliased `i`, with columns
/// `key` and `content`) may change: those it names without content (a
/// deletion, a quarantined row), deleted ones, and those whose content
/// differs from the batch's.
fn differing_rows(table: &str, incoming: &str) -> String {
    format!(
        "SELECT t.key, t.version, t.deleted, t.content, t.entry, t.batch, t.last_seen \
         FROM {incoming} JOIN {table} t ON t.key = i.key \
         WHERE i.content IS NULL OR t.deleted OR t.content IS DISTINCT FROM i.content"
    )
}

/// A current row as the ingest compares it: its key and what it holds,
/// from `SELECT key, version, deleted, content, entry, batch, last_seen`.
fn current_of(
    row: &<Db as sqlx::Database>::Row,
    table: &str,
) -> Result<(String, Current), StoreError> {
    let key: String = row.try_get("key")?;
    let entry = stored_entry(row.try_get("entry")?, table, &key)?;
    let current = Current {
        version: row.try_get("version")?,
        deleted: row.try_get("deleted")?,
        content: row.try_get("content")?,
        entry,
        batch: row.try_get::<Option<i64>, _>("batch")?.unwrap_or(0),
        recorded: row.try_get("last_seen")?,
        values: None,
        touched: false,
    };
    Ok((key, current))
}

/// Writes whole current rows (new or replaced), in key order, as multi-row
/// `INSERT … ON CONFLICT` statements.
async fn insert_full_rows(
    tx: &mut Tx,
    collection: Collection,
    rows: Vec<(String, Current)>,
    first_seen: i64,
) -> Result<(), StoreError> {
    let table = schema::table(collection);
    let columns = schema::columns(collection);
    let head = format!(
        "INSERT INTO {table} (key, version, deleted, batch, entry, first_seen, last_seen, content, {}) ",
        columns.join(", ")
    );
    let updates: Vec<String> = [
        "version",
        "deleted",
        "batch",
        "entry",
        "last_seen",
        "content",
    ]
    .iter()
    .chain(columns)
    .map(|c| format!("{c} = excluded.{c}"))
    .collect();
    let tail = format!(" ON CONFLICT (key) DO UPDATE SET {}", updates.join(", "));
    let per_statement = rows_per_statement(8 + columns.len());
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<(String, Current)> = rows.by_ref().take(per_statement).collect();
        let mut qb = QueryBuilder::<Db>::new(head.as_str());
        qb.push_values(chunk, |mut sep, (key, c)| {
            sep.push_bind(key)
                .push_bind(c.version)
                .push_bind(c.deleted)
                .push_bind(c.batch)
                .push_bind(c.entry.to_vec())
                .push_bind(first_seen)
                .push_bind(c.recorded)
                .push_bind(c.content);
            for value in c.values.unwrap_or_default() {
                push_value(&mut sep, value);
            }
        });
        qb.push(tail.as_str());
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Marks a stored record deleted; its typed columns keep their last values.
async fn write_tombstone(
    tx: &mut Tx,
    table: &str,
    key: &str,
    c: &Current,
) -> Result<(), StoreError> {
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE {table} SET deleted = TRUE, version = $1, batch = $2, entry = $3, last_seen = $4, \
         content = NULL WHERE key = $5"
    )))
    .bind(c.version)
    .bind(c.batch)
    .bind(c.entry.as_slice())
    .bind(c.recorded)
    .bind(key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn write_superseded(
    tx: &mut Tx,
    stream_id: i64,
    mut rows: Vec<Superseded>,
) -> Result<(), StoreError> {
    rows.sort_unstable_by(|a, b| (a.key.as_str(), a.version).cmp(&(b.key.as_str(), b.version)));
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Superseded> = rows.by_ref().take(rows_per_statement(8)).collect();
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO superseded (stream_id, key, version, batch, deleted, content, entry, \
             recorded_at) ",
        );
        qb.push_values(chunk, |mut sep, s| {
            sep.push_bind(stream_id)
                .push_bind(s.key)
                .push_bind(s.version)
                .push_bind(s.batch)
                .push_bind(s.deleted)
                .push_bind(s.content)
                .push_bind(s.entry.to_vec())
                .push_bind(s.recorded);
        });
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// What a write transaction's snapshots have seen, beside the marks in
/// its temporary table.
#[derive(Default)]
struct Seen {
    /// Whether the table of marks is ready.
    ready: bool,
    /// Each stream (by id) as this transaction first found it.
    start: HashMap<i64, StreamStart>,
}

/// A stream as a transaction first found it.
#[derive(Debug, Clone, Copy)]
struct StreamStart {
    /// Its chain's batches: a current row of a later batch was written by
    /// this transaction.
    batches: i64,
    /// Whether it held no version at all: then every record it holds was
    /// written by this transaction, and its snapshots need no mark.
    empty: bool,
}

impl Seen {
    /// The stream as this transaction first found it (now, if this is the
    /// first time it asks).
    fn start_of(&mut self, head: &StreamHead) -> StreamStart {
        *self.start.entry(head.id).or_insert(StreamStart {
            batches: head.batches,
            empty: head.versions == 0,
        })
    }
}

/// Makes (and empties) the run's temporary table of seen marks the first
/// time a transaction needs it. It lives on the database side (a temporary
/// file on SQLite, never the WAL), so a snapshot's size costs this process
/// no memory.
async fn ensure_seen(tx: &mut Tx, seen: &mut Seen) -> Result<(), StoreError> {
    if !seen.ready {
        for sql in SEEN_SETUP {
            sqlx::query(*sql).execute(&mut **tx).await?;
        }
        seen.ready = true;
    }
    Ok(())
}

/// Live records of the stream (`$1`, the table aliased `t`) that this
/// transaction neither wrote (their batch is after `start`) nor saw in a
/// snapshot batch (`SEEN_MARK`).
fn unseen(start: StreamStart) -> String {
    format!(
        "deleted = FALSE AND COALESCE(t.batch, 0) <= {} AND NOT EXISTS ({SEEN_MARK})",
        start.batches
    )
}

/// Deletions a complete snapshot makes per chain batch: what is held in
/// memory at once stays bounded however many there are.
const DELETIONS_PER_BATCH: i64 = 5_000;

/// Deletes every live record of the stream that this transaction's
/// snapshot batches did not see, a bounded chunk at a time, each chunk one
/// batch of the chain. Returns how many.
async fn delete_unseen(
    tx: &mut Tx,
    head: &mut StreamHead,
    start: StreamStart,
    table: &str,
    at: i64,
) -> Result<u64, StoreError> {
    let unseen = unseen(start);
    let mut deleted = 0u64;
    // Each chunk goes on after the last key of the one before, so a large
    // deletion reads the table once.
    let mut after = String::new();
    loop {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT key, version, content, entry, batch, last_seen FROM {table} t \
             WHERE {unseen} AND key > $2 ORDER BY key LIMIT {DELETIONS_PER_BATCH}"
        )))
        .bind(head.id)
        .bind(after.as_str())
        .fetch_all(&mut **tx)
        .await?;
        if rows.is_empty() {
            return Ok(deleted);
        }
        let number = head.batches + 1;
        let mut superseded = Vec::with_capacity(rows.len());
        let mut tombstones = Vec::with_capacity(rows.len());
        for row in rows {
            let key: String = row.try_get("key")?;
            let mut c = Current {
                version: row.try_get("version")?,
                deleted: false,
                content: row.try_get("content")?,
                entry: stored_entry(row.try_get("entry")?, table, &key)?,
                batch: row.try_get::<Option<i64>, _>("batch")?.unwrap_or(0),
                recorded: row.try_get("last_seen")?,
                values: None,
                touched: true,
            };
            superseded.push(c.supersede(&key));
            c.version += 1;
            c.deleted = true;
            c.entry = entry_hash(&head.name, &key, c.version, true, None);
            c.batch = number;
            c.recorded = at;
            tombstones.push((key, c));
        }
        deleted += tombstones.len() as u64;
        if let Some((key, _)) = tombstones.last() {
            after.clone_from(key);
        }
        write_superseded(tx, head.id, superseded).await?;
        for (key, c) in &tombstones {
            write_tombstone(tx, table, key, c).await?;
        }
        let entries = tombstones
            .iter()
            .map(|(k, c)| (k.as_str(), c.version, c.entry))
            .collect();
        append_chain(tx, head, entries, at).await?;
    }
}

/// Applies a batch inside `tx`; the caller commits. `seen` is what the
/// transaction's snapshots have seen so far.
async fn apply_in(tx: &mut Tx, seen: &mut Seen, batch: &Batch) -> Result<BatchOutcome, StoreError> {
    let collection = batch.collection;
    let table = schema::table(collection);
    let at = batch.at.timestamp_micros();
    let mut outcome = BatchOutcome::default();
    let mut head = stream_head(tx, &collection.to_string()).await?;
    let start = seen.start_of(&head);
    let number = head.batches + 1;

    let keys: Vec<&str> = batch
        .items
        .iter()
        .map(|item| match item {
            Item::Upsert(u) => u.key(),
            Item::Delete(k) => k.as_str(),
        })
        .collect();
    // Quarantined rows that name their record are looked up too: that
    // record counts as seen and keeps its last good version.
    let mut lookup: Vec<&str> = keys
        .iter()
        .copied()
        .chain(batch.quarantine.iter().filter_map(|q| q.key.as_deref()))
        .collect();
    // In key order, a batch meets each page of the table once, in the order
    // they lie, instead of at random.
    lookup.sort_unstable();
    lookup.dedup();
    // A snapshot of a stream already stored is mostly unchanged: it is
    // compared on the database side, so that an unchanged record is never
    // read back. A batch that repeats a key (the last row wins, each
    // version in turn) and a stream's first batch are compared here.
    let compare_stored = (batch.snapshot || batch.complete_snapshot)
        && head.versions > 0
        && lookup.len() == keys.len() + batch.quarantine.iter().filter(|q| q.key.is_some()).count();
    let (mut current, absent) = if compare_stored {
        let mut rows: Vec<(&str, Option<&str>)> = (batch.items.iter())
            .map(|item| match item {
                Item::Upsert(u) => (u.key(), Some(u.content())),
                Item::Delete(k) => (k.as_str(), None),
            })
            .chain(
                (batch.quarantine.iter())
                    .filter_map(|q| q.key.as_deref())
                    .map(|key| (key, None)),
            )
            .collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let differing = load_differing(tx, table, &rows).await?;
        (differing.current, Some(differing.absent))
    } else {
        (load_current(tx, table, &lookup).await?, None)
    };
    let mut kept: HashMap<&str, i64> = HashMap::new();
    for q in &batch.quarantine {
        if let Some(key) = q.key.as_deref()
            && let Some(c) = current.get(key).filter(|c| !c.deleted)
        {
            kept.insert(key, c.version);
        }
    }

    let mut superseded: Vec<Superseded> = Vec::new();
    let mut entries: Vec<(&str, i64, Digest32)> = Vec::new();
    let stream = head.name.clone();
    for (item, &key) in batch.items.iter().zip(&keys) {
        match item {
            Item::Upsert(u) => {
                let content = u.content();
                let version = match current.get_mut(key) {
                    Some(c) if !c.deleted && c.content.as_deref() == Some(content) => {
                        outcome.unchanged += 1;
                        continue;
                    }
                    Some(c) => {
                        outcome.changed += 1;
                        superseded.push(c.supersede(key));
                        c.version + 1
                    }
                    // Compared on the database side and found the same.
                    None if absent.as_ref().is_some_and(|a| !a.contains(key)) => {
                        outcome.unchanged += 1;
                        continue;
                    }
                    None => {
                        outcome.new += 1;
                        1
                    }
                };
                let entry = entry_hash(&stream, key, version, false, Some(content));
                entries.push((key, version, entry));
                current.insert(
                    key.to_owned(),
                    Current {
                        version,
                        deleted: false,
                        content: Some(content.to_owned()),
                        entry,
                        batch: number,
                        recorded: at,
                        values: Some(schema::values(u.record())),
                        touched: true,
                    },
                );
            }
            Item::Delete(_) => {
                let Some(c) = current.get_mut(key).filter(|c| !c.deleted) else {
                    continue; // deleting what is absent or already deleted changes nothing
                };
                outcome.deleted += 1;
                superseded.push(c.supersede(key));
                c.version += 1;
                c.deleted = true;
                c.entry = entry_hash(&stream, key, c.version, true, None);
                c.batch = number;
                c.recorded = at;
                c.touched = true;
                entries.push((key, c.version, c.entry));
            }
        }
    }

    if !entries.is_empty() {
        let mut full = Vec::new();
        let mut tombstones = Vec::new();
        for (key, c) in current.into_iter().filter(|(_, c)| c.touched) {
            if c.values.is_some() {
                full.push((key, c));
            } else {
                tombstones.push((key, c));
            }
        }
        full.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        write_full_rows(tx, collection, full, at).await?;
        for (key, c) in &tombstones {
            write_tombstone(tx, table, key, c).await?;
        }
        write_superseded(tx, head.id, superseded).await?;
        append_chain(tx, &mut head, entries, at).await?;
    }

    if batch.snapshot || batch.complete_snapshot {
        ensure_seen(tx, seen).await?;
        // What this transaction wrote is seen by its batch number: only
        // what was stored before it needs a mark, and a stream that was
        // empty (a first load) has nothing to mark.
        if !start.empty {
            if compare_stored {
                record_seen_differing(tx, head.id, start, table, &lookup).await?;
            } else {
                record_seen(tx, head.id, start, table, &lookup).await?;
            }
        }
    }
    if batch.complete_snapshot {
        outcome.deleted += delete_unseen(tx, &mut head, start, table, at).await?;
    }

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

/// How many live records of the stream this transaction's snapshot batches
/// have not seen, and how many are live.
async fn unseen_in(
    tx: &mut Tx,
    seen: &mut Seen,
    collection: Collection,
) -> Result<Unseen, StoreError> {
    ensure_seen(tx, seen).await?;
    let head = stream_head(tx, &collection.to_string()).await?;
    let unseen_sql = unseen(seen.start_of(&head));
    let table = schema::table(collection);
    let live: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {table} WHERE deleted = FALSE"
    )))
    .fetch_one(&mut **tx)
    .await?;
    let unseen: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {table} t WHERE {unseen_sql}"
    )))
    .bind(head.id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Unseen {
        unseen: unseen as u64,
        live: live as u64,
    })
}

impl SqlSyncTx {
    /// A first load (the table holds no row yet) writes without the
    /// table's secondary indexes where the backend allows it; they are
    /// built, as they were, before the transaction next reads or commits.
    async fn defer_indexes_of_empty(&mut self, table: &'static str) -> Result<(), StoreError> {
        let indexes = deferrable_indexes(&mut self.tx, table).await?;
        if indexes.is_empty() {
            return Ok(());
        }
        let stored: bool = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM {table})"
        )))
        .fetch_one(&mut *self.tx)
        .await?;
        if stored {
            return Ok(());
        }
        for (name, sql) in indexes {
            sqlx::query(AssertSqlSafe(format!("DROP INDEX {name}")))
                .execute(&mut *self.tx)
                .await?;
            self.deferred.push((name, sql));
        }
        Ok(())
    }

    async fn build_deferred(&mut self) -> Result<(), StoreError> {
        let deferred = std::mem::take(&mut self.deferred);
        if deferred.is_empty() {
            return Ok(());
        }
        build_indexes(&mut self.tx, deferred).await
    }
}

#[async_trait]
impl SyncTx for SqlSyncTx {
    async fn apply(&mut self, batch: &Batch) -> Result<BatchOutcome, StoreError> {
        check_collections(batch)?;
        let table = schema::table(batch.collection);
        if !batch.items.is_empty() && self.loaded.insert(table) {
            self.defer_indexes_of_empty(table).await?;
        }
        let outcome = apply_in(&mut self.tx, &mut self.seen, batch).await?;
        *self
            .written
            .entry(schema::table(batch.collection))
            .or_default() += outcome.new + outcome.changed + outcome.deleted;
        Ok(outcome)
    }

    /// Counts against the keys this transaction's snapshot batches saw: a
    /// run is one transaction, so `_run` is the run of this transaction.
    async fn unseen(&mut self, collection: Collection, _run: RunId) -> Result<Unseen, StoreError> {
        self.build_deferred().await?;
        unseen_in(&mut self.tx, &mut self.seen, collection).await
    }

    async fn relink_units(&mut self) -> Result<u64, StoreError> {
        self.build_deferred().await?;
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

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.build_deferred().await?;
        let changed_much = |threshold: u64| {
            let mut tables: Vec<&str> = (self.written.iter())
                .filter(|(_, n)| **n >= threshold)
                .map(|(t, _)| *t)
                .collect();
            if !tables.is_empty() {
                tables.sort_unstable();
                tables.extend(["superseded", "chain"]);
            }
            tables
        };
        // The planner's statistics follow a run that changed much: without
        // them, PostgreSQL's first reconciliation after a province's load
        // took over ten minutes. Inside the transaction, ANALYZE counts its
        // own rows, and the statistics commit with the data.
        let analyze = ANALYZE_AFTER.map(changed_much).unwrap_or_default();
        if !analyze.is_empty() {
            sqlx::query(AssertSqlSafe(format!("ANALYZE {}", analyze.join(", "))))
                .execute(&mut *self.tx)
                .await?;
        }
        let vacuum = VACUUM_AFTER.map(changed_much).unwrap_or_default();
        let SqlSyncTx { tx, writer, .. } = *self;
        tx.commit().await?;
        // Then a VACUUM, which cannot run in a transaction: it marks the new
        // rows' pages all-visible, without which PostgreSQL reads every
        // covering index entry's row from the table too (the npc mirror:
        // 3.5 million heap fetches at a quarter province, 2.1 s against
        // 1.35 s after it), or plans a scan of the table instead. The run
        // has landed by now, so a VACUUM that fails is only logged;
        // autovacuum comes round to it later.
        if !vacuum.is_empty() {
            let sql = format!("VACUUM {}", vacuum.join(", "));
            if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&writer).await {
                tracing::warn!(error = %e, tables = %vacuum.join(", "), "VACUUM after a large run failed");
            }
        }
        Ok(())
    }
}
