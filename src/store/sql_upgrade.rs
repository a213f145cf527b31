// The upgrades that migrations leave to the program, at the first `migrate`
// after them, each in one transaction:
//
// - `rehash-0008`: the old history (one hex link per version, kept as
//   `legacy_versions`) is checked link by link and re-hashed into the batch
//   chain;
// - `merkle-0011`: the flat batch roots of migrations 0008 to 0010 are
//   checked batch by batch and re-hashed as Merkle roots, and every link
//   after them, before any checkpoint exists.
//
// A store of the layout before 0008 gets both at once: its re-hash already
// writes Merkle roots. `include!`d after `sql_common.rs`.

const REHASH: &str = "rehash-0008";
const MERKLE: &str = "merkle-0011";

/// Legacy versions re-hashed per batch of the new chain.
const REHASH_CHUNK: i64 = 5_000;

/// Runs the upgrades migrations left pending; does nothing once they ran.
async fn finish_upgrades(store: &SqlStore) -> Result<(), StoreError> {
    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM store_upgrades")
        .fetch_one(&store.pool)
        .await?;
    if pending == 0 {
        return Ok(());
    }
    let mut tx = store.write_tx().await?;
    // Whoever deletes a marker does its work; a second replica waits on its
    // row and then finds nothing left to do.
    let mut mine = [false; 2];
    for (i, name) in [REHASH, MERKLE].into_iter().enumerate() {
        mine[i] = sqlx::query("DELETE FROM store_upgrades WHERE name = $1")
            .bind(name)
            .execute(&mut *tx.tx)
            .await?
            .rows_affected()
            == 1;
    }
    let [rehash, merkle] = mine;
    if rehash {
        for collection in Collection::ALL {
            rehash_stream(&mut tx.tx, collection).await?;
        }
        sqlx::query("DROP TABLE legacy_versions")
            .execute(&mut *tx.tx)
            .await?;
    } else if merkle {
        // Checkpoints sign the Merkle roots: a re-hash after one was issued
        // would make every agency's copy fail. Migration 0011 makes the
        // table and this marker together, so none can exist yet.
        let issued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM checkpoints")
            .fetch_one(&mut *tx.tx)
            .await?;
        if issued > 0 {
            return Err(StoreError::Corrupt(format!(
                "the store has {issued} checkpoints but flat batch roots: it cannot be re-hashed"
            )));
        }
        for collection in Collection::ALL {
            merkle_stream(&mut tx.tx, collection).await?;
        }
    }
    tx.tx.commit().await?;
    Ok(())
}

/// Re-hashes the roots of one stream's batches as Merkle roots, and its
/// links after them, once each batch is found to be what its flat root and
/// link recorded.
async fn merkle_stream(tx: &mut Tx, collection: Collection) -> Result<(), StoreError> {
    let name = collection.to_string();
    let table = schema::table(collection);
    let Some((id, batches)) =
        sqlx::query_as::<_, (i64, i64)>("SELECT id, batches FROM streams WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&mut **tx)
            .await?
    else {
        return Ok(());
    };
    if batches == 0 {
        return Ok(());
    }
    let broken = |batch: i64, what: &str| {
        StoreError::Corrupt(format!(
            "the history of {name} is broken at batch {batch} ({what}): the store was not \
             upgraded; restore it from a backup or ask the previous release's `liankong verify`"
        ))
    };
    // In (key, version) order, each batch's entries come in the order its
    // roots were built in.
    let mut roots: HashMap<i64, (FlatRoot, BatchRoot)> = HashMap::new();
    {
        let mut rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {KEY_COLUMN}, version, batch, entry FROM superseded WHERE stream_id = $1 \
             UNION ALL SELECT {KEY_COLUMN}, version, batch, entry FROM {table} \
             ORDER BY key, version"
        )))
        .bind(id)
        .fetch(&mut **tx);
        while let Some(row) = rows.try_next().await? {
            let batch: i64 = row.try_get::<Option<i64>, _>("batch")?.unwrap_or(0);
            let entry = row
                .try_get::<Option<Vec<u8>>, _>("entry")?
                .as_deref()
                .and_then(digest)
                .ok_or_else(|| broken(batch, "a version without an entry hash"))?;
            let (flat, merkle) = roots.entry(batch).or_default();
            flat.push(&entry);
            merkle.push(&entry);
        }
    }
    let chain: Vec<(i64, i64, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT batch, versions, root, link FROM chain WHERE stream_id = $1 ORDER BY batch",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    let (mut old_prev, mut new_prev) = (GENESIS, GENESIS);
    for (i, (batch, versions, root, link)) in chain.into_iter().enumerate() {
        let (flat, merkle) = roots.remove(&batch).unwrap_or_default();
        let intact = batch == i as i64 + 1
            && flat.versions() == versions
            && digest(&root) == Some(flat.finish())
            && digest(&link)
                == Some(batch_link(
                    &old_prev,
                    &name,
                    batch,
                    versions,
                    &flat_root(&root),
                ));
        if !intact {
            return Err(broken(batch, "its versions do not match its root and link"));
        }
        old_prev = flat_root(&link);
        let root = merkle.finish();
        new_prev = batch_link(&new_prev, &name, batch, versions, &root);
        sqlx::query("UPDATE chain SET root = $1, link = $2 WHERE stream_id = $3 AND batch = $4")
            .bind(root.as_slice())
            .bind(new_prev.as_slice())
            .bind(id)
            .bind(batch)
            .execute(&mut **tx)
            .await?;
    }
    if let Some(batch) = roots.keys().min() {
        return Err(broken(
            *batch,
            "versions of a batch the chain does not hold",
        ));
    }
    sqlx::query("UPDATE streams SET head = $1 WHERE id = $2")
        .bind(new_prev.as_slice())
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A stored 32-byte digest, already found to be one.
fn flat_root(bytes: &[u8]) -> Digest32 {
    digest(bytes).unwrap_or(GENESIS)
}

type LegacyRow = (
    i64,
    String,
    i64,
    bool,
    Option<String>,
    String,
    String,
    DateTime<Utc>,
);

async fn rehash_stream(tx: &mut Tx, collection: Collection) -> Result<(), StoreError> {
    let name = collection.to_string();
    let table = schema::table(collection);
    let mut head = stream_head(tx, &name).await?;
    let mut prev = legacy::GENESIS.to_owned();
    let mut seq = 0i64;
    loop {
        let rows: Vec<LegacyRow> = sqlx::query_as(
            "SELECT seq, key, version, deleted, content, content_hash, link, recorded_at \
             FROM legacy_versions WHERE stream = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(name.as_str())
        .bind(seq)
        .bind(REHASH_CHUNK)
        .fetch_all(&mut **tx)
        .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut keys: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut current: HashMap<String, i64> = HashMap::new();
        for chunk in keys.chunks(rows_per_statement(1)) {
            let mut qb =
                QueryBuilder::<Db>::new(format!("SELECT key, version FROM {table} WHERE key IN ("));
            let mut sep = qb.separated(", ");
            for key in chunk {
                sep.push_bind(*key);
            }
            qb.push(")");
            for row in qb.build().fetch_all(&mut **tx).await? {
                current.insert(row.try_get("key")?, row.try_get("version")?);
            }
        }
        let number = head.batches + 1;
        let mut superseded = Vec::new();
        let mut entries = Vec::with_capacity(rows.len());
        let mut at = 0i64;
        for (s, key, version, deleted, content, content_digest, link, recorded_at) in &rows {
            seq += 1;
            let recomputed = match (content, deleted) {
                (Some(c), false) => Some(content_hash(c)),
                (None, true) => Some(String::new()),
                _ => None,
            };
            let intact = *s == seq
                && recomputed.as_ref() == Some(content_digest)
                && *link
                    == legacy::link_hash(&prev, &name, *s, key, *version, *deleted, content_digest);
            if !intact {
                return Err(StoreError::Corrupt(format!(
                    "the history of {name} is broken at {key:?} version {version} (sequence \
                     number {s}): the store was not upgraded; restore it from a backup or ask \
                     the previous release's `liankong verify`"
                )));
            }
            prev = link.clone();
            let entry = entry_hash(&name, key, *version, *deleted, content.as_deref());
            let recorded = recorded_at.timestamp_micros();
            at = at.max(recorded);
            entries.push((key.as_str(), *version, entry));
            if current.get(key) == Some(version) {
                sqlx::query(AssertSqlSafe(format!(
                    "UPDATE {table} SET content = $1, entry = $2, batch = $3, last_seen = $4 \
                     WHERE key = $5"
                )))
                .bind(content.as_deref())
                .bind(entry.as_slice())
                .bind(number)
                .bind(recorded)
                .bind(key.as_str())
                .execute(&mut **tx)
                .await?;
            } else {
                superseded.push(Superseded {
                    key: key.clone(),
                    version: *version,
                    batch: number,
                    deleted: *deleted,
                    content: content.clone(),
                    entry,
                    recorded,
                });
            }
        }
        write_superseded(tx, head.id, superseded).await?;
        append_chain(tx, &mut head, entries, at).await?;
    }
}
