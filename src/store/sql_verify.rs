// Verify: every stream's history walked against its chain, and every current
// row against its content. `include!`d after `sql_common.rs` by both
// backends.

/// What the walk of one stream's versions found.
#[derive(Default)]
struct Walk {
    versions: u64,
    /// The entries of each batch, in (key, version) order as walked.
    roots: HashMap<i64, BatchRoot>,
    /// The first problem of a version or record.
    damage: Option<Damage>,
}

impl Walk {
    fn found(&mut self, stream: &str, key: &str, version: i64, batch: i64, problem: String) {
        if self.damage.is_none() {
            self.damage = Some(Damage {
                collection: stream.to_owned(),
                key: key.to_owned(),
                version,
                batch: Some(batch),
                problem,
            });
        }
    }
}

/// Walks every version of a stream in (key, version) order: each entry is
/// recomputed from what it covers, each record's versions run 1, 2, … up to
/// its current row, and each entry joins its batch's root.
async fn walk_versions(tx: &mut Tx, stream: &StreamHead, table: &str) -> Result<Walk, StoreError> {
    let mut rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {KEY_COLUMN}, version, batch, deleted, content, entry, 0 AS cur FROM superseded \
         WHERE stream_id = $1 \
         UNION ALL SELECT {KEY_COLUMN}, version, batch, deleted, content, entry, 1 AS cur \
         FROM {table} ORDER BY key, version, cur"
    )))
    .bind(stream.id)
    .fetch(&mut **tx);
    let mut walk = Walk::default();
    // The record in hand: its key, the version expected next, whether its
    // current row came.
    let mut record: Option<(String, i64, bool)> = None;
    let name = stream.name.as_str();
    while let Some(row) = rows.try_next().await? {
        walk.versions += 1;
        let key: String = row.try_get("key")?;
        let version: i64 = row.try_get("version")?;
        let batch: i64 = row.try_get::<Option<i64>, _>("batch")?.unwrap_or(0);
        let deleted: bool = row.try_get("deleted")?;
        let content: Option<String> = row.try_get("content")?;
        let stored: Option<Vec<u8>> = row.try_get("entry")?;
        let current = row.try_get::<i32, _>("cur")? == 1;
        match &mut record {
            Some((k, expected, had_current)) if *k == key => {
                if *had_current {
                    walk.found(
                        name,
                        &key,
                        version,
                        batch,
                        "a superseded version is newer than the current one".to_owned(),
                    );
                } else if version != *expected {
                    walk.found(
                        name,
                        &key,
                        *expected,
                        batch,
                        format!("version {expected} is missing from the history"),
                    );
                }
                *expected = version + 1;
                *had_current = current;
            }
            _ => {
                if let Some((k, expected, false)) = &record {
                    walk.found(
                        name,
                        k,
                        *expected - 1,
                        0,
                        "the record has a history but is missing from its table".to_owned(),
                    );
                }
                if version != 1 {
                    walk.found(
                        name,
                        &key,
                        1,
                        batch,
                        "version 1 is missing from the history".to_owned(),
                    );
                }
                record = Some((key.clone(), version + 1, current));
            }
        }
        let stored = stored.as_deref().and_then(digest);
        let problem = match (&content, deleted, stored) {
            (_, _, None) => Some("the version has no entry hash"),
            (Some(_), true, _) | (None, false, _) => {
                Some("content does not match the deletion flag")
            }
            (_, _, Some(entry)) => (entry_hash(name, &key, version, deleted, content.as_deref())
                != entry)
                .then_some("content does not match its stored hash"),
        };
        if let Some(problem) = problem {
            walk.found(name, &key, version, batch, problem.to_owned());
        }
        walk.roots
            .entry(batch)
            .or_default()
            .push(&stored.unwrap_or(GENESIS));
    }
    if let Some((k, expected, false)) = &record {
        walk.found(
            name,
            k,
            *expected - 1,
            0,
            "the record has a history but is missing from its table".to_owned(),
        );
    }
    Ok(walk)
}

/// Checks a stream's batches against the walk's roots, and its links and
/// head. Returns the first problem.
async fn check_batches(
    tx: &mut Tx,
    stream: &StreamHead,
    walk: &mut Walk,
) -> Result<Option<Damage>, StoreError> {
    let name = stream.name.as_str();
    let damage = |batch: i64, problem: String| {
        Some(Damage {
            collection: name.to_owned(),
            key: String::new(),
            version: 0,
            batch: Some(batch),
            problem,
        })
    };
    let batches: Vec<(i64, i64, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT batch, versions, root, link FROM chain WHERE stream_id = $1 ORDER BY batch",
    )
    .bind(stream.id)
    .fetch_all(&mut **tx)
    .await?;
    let mut prev = GENESIS;
    let mut total = 0i64;
    for (i, (batch, versions, root, link)) in batches.into_iter().enumerate() {
        let expected = i as i64 + 1;
        if batch != expected {
            return Ok(damage(
                expected,
                format!("batch {expected} is missing from the chain"),
            ));
        }
        let (Some(root), Some(link)) = (digest(&root), digest(&link)) else {
            return Ok(damage(
                batch,
                format!("batch {batch} has no readable root or link"),
            ));
        };
        let walked = walk.roots.remove(&batch).unwrap_or_default();
        if walked.versions() != versions {
            return Ok(damage(
                batch,
                format!(
                    "batch {batch} recorded {versions} versions where the history holds {}: \
                     a version was removed or inserted",
                    walked.versions()
                ),
            ));
        }
        if walked.finish() != root {
            return Ok(damage(
                batch,
                format!("the versions of batch {batch} do not match its recorded root"),
            ));
        }
        if batch_link(&prev, name, batch, versions, &root) != link {
            return Ok(damage(
                batch,
                format!("the link of batch {batch} does not match the previous batch and this one"),
            ));
        }
        prev = link;
        total += versions;
    }
    if let Some(batch) = walk.roots.keys().min().copied() {
        return Ok(damage(
            batch,
            format!("versions are recorded in batch {batch}, which the chain does not hold"),
        ));
    }
    if stream.head != prev || stream.versions != total {
        return Ok(damage(
            stream.batches,
            "the stream's head and length do not match its chain".to_owned(),
        ));
    }
    Ok(None)
}

/// Checks every current row of a collection against its own content, typed
/// columns included. Returns the number of records checked.
async fn verify_current(
    tx: &mut Tx,
    collection: Collection,
    damage: &mut Vec<Damage>,
) -> Result<u64, StoreError> {
    let stream = collection.to_string();
    let table = schema::table(collection);
    let columns = schema::columns(collection);
    let mut rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT key, version, batch, deleted, content, {} FROM {table} ORDER BY key",
        columns.join(", ")
    )))
    .fetch(&mut **tx);
    let mut count = 0u64;
    let mut found = 0usize;
    while let Some(row) = rows.try_next().await? {
        count += 1;
        if found >= MAX_DAMAGE_PER_COLLECTION || row.try_get::<bool, _>("deleted")? {
            continue;
        }
        let content: Option<String> = row.try_get("content")?;
        let problem = match content
            .as_deref()
            .map(|c| Record::from_content(collection, c))
        {
            Some(Ok(record)) => {
                let mut differs = None;
                for (column, expected) in columns.iter().zip(schema::values(&record)) {
                    if read_value(&row, column, &expected)? != expected {
                        differs =
                            Some(format!("column {column} differs from the recorded content"));
                        break;
                    }
                }
                differs
            }
            // A live record without content is the walk's finding.
            None => None,
            Some(Err(_)) => Some("recorded content cannot be read".to_owned()),
        };
        if let Some(problem) = problem {
            found += 1;
            damage.push(Damage {
                collection: stream.clone(),
                key: row.try_get("key")?,
                version: row.try_get("version")?,
                batch: row.try_get("batch")?,
                problem,
            });
        }
    }
    Ok(count)
}

/// Walks every chain and checks every current record, in one read
/// transaction.
async fn verify_all(pool: &Pool<Db>) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport::default();
    // One transaction: the walk sees one consistent state even while
    // adapters keep writing.
    let mut tx = pool.begin().await?;
    for collection in Collection::ALL {
        let stream = collection.to_string();
        let head: Option<(i64, i64, i64, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT id, batches, versions, head FROM streams WHERE name = $1")
                .bind(stream.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let head = match head {
            Some((id, batches, versions, head)) => StreamHead {
                id,
                name: stream.clone(),
                batches,
                versions,
                head: head.as_deref().and_then(digest).unwrap_or(GENESIS),
            },
            // Never written: no history, and no row may claim one.
            None => StreamHead {
                id: -1,
                name: stream.clone(),
                batches: 0,
                versions: 0,
                head: GENESIS,
            },
        };
        let table = schema::table(collection);
        let mut walk = walk_versions(&mut tx, &head, table).await?;
        if walk.versions > 0 {
            report.chains += 1;
        }
        report.versions += walk.versions;
        let broken = match walk.damage.take() {
            Some(d) => Some(d),
            None => check_batches(&mut tx, &head, &mut walk).await?,
        };
        report.damage.extend(broken);
        report.records += verify_current(&mut tx, collection, &mut report.damage).await?;
    }
    tx.rollback().await?;
    Ok(report)
}
