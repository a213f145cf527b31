// The upgrade that migration 0008 leaves to the program: the old history
// (one hex link per version, kept as `legacy_versions`) is checked link by
// link and re-hashed into the batch chain, in one transaction, at the first
// `migrate` after the migration. `include!`d after `sql_common.rs`.

const REHASH: &str = "rehash-0008";

/// Legacy versions re-hashed per batch of the new chain.
const REHASH_CHUNK: i64 = 5_000;

/// Runs the upgrades a migration left pending; does nothing once they ran.
async fn finish_upgrades(store: &SqlStore) -> Result<(), StoreError> {
    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM store_upgrades WHERE name = $1")
        .bind(REHASH)
        .fetch_one(&store.pool)
        .await?;
    if pending == 0 {
        return Ok(());
    }
    let mut tx = store.write_tx().await?;
    // Whoever deletes the marker does the work; a second replica waits on
    // its row and then finds nothing left to do.
    let mine = sqlx::query("DELETE FROM store_upgrades WHERE name = $1")
        .bind(REHASH)
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
    if mine == 0 {
        return Ok(());
    }
    for collection in Collection::ALL {
        rehash_stream(&mut tx.tx, collection).await?;
    }
    sqlx::query("DROP TABLE legacy_versions")
        .execute(&mut *tx.tx)
        .await?;
    tx.tx.commit().await?;
    Ok(())
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
