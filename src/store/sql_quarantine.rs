// Quarantine: rows that could not become records, filed with their
// lifecycle (open, resolved, dropped). `include!`d after `sql_common.rs` by
// both backends; the listing and dropping are in `sql_store.rs`.

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
