// The store's own rows: runs and leases, stream state, quarantine lists,
// records and their history, statistics, and the Store trait that ties them
// to ingest (`sql_ingest.rs`), verify (`sql_verify.rs`) and the upgrade
// (`sql_upgrade.rs`). `include!`d after `sql_common.rs` by both backends.

/// The migrator of this backend's migrations that `keep` selects.
fn migrator(keep: impl Fn(i64) -> bool) -> sqlx::migrate::Migrator {
    let migrations = MIGRATIONS
        .iter()
        .filter(|(version, _, _)| keep(*version))
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
        migrator(|_| true).run(&self.pool).await?;
        finish_upgrades(self).await
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
        // Every stream's length in versions, kept with its head.
        Ok(
            sqlx::query_scalar("SELECT CAST(COALESCE(SUM(versions), 0) AS BIGINT) FROM streams")
                .fetch_one(&self.pool)
                .await?,
        )
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
        let outcome = apply_in(&mut tx.tx, &mut tx.seen, batch).await?;
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
        let (open, holding, from_start, earliest): (i64, i64, i64, Option<i64>) = sqlx::query_as(
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
        // A deleted record's last content is that of the version before.
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT t.key, t.version, t.deleted, t.first_seen, t.last_seen, \
             COALESCE(t.content, (SELECT v.content FROM superseded v \
              JOIN streams s ON s.id = v.stream_id WHERE s.name = $1 AND v.key = t.key \
              AND v.content IS NOT NULL ORDER BY v.version DESC LIMIT 1)) AS content \
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
            hash: content_hash(&content),
            version: row.try_get("version")?,
            deleted: row.try_get("deleted")?,
            first_seen: micros(row.try_get("first_seen")?)?,
            last_seen: micros(row.try_get("last_seen")?)?,
            record,
        }))
    }

    async fn history(&self, collection: Collection, key: &str) -> Result<Vec<Version>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT v.version, v.batch, v.deleted, v.content, v.entry, v.recorded_at \
             FROM superseded v JOIN streams s ON s.id = v.stream_id \
             WHERE s.name = $1 AND v.key = $2 \
             UNION ALL SELECT version, batch, deleted, content, entry, last_seen \
             FROM {} WHERE key = $2 ORDER BY version",
            schema::table(collection)
        )))
        .bind(collection.to_string())
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let entry: Option<Vec<u8>> = row.try_get("entry")?;
                Ok(Version {
                    batch: row.try_get::<Option<i64>, _>("batch")?.unwrap_or(0),
                    version: row.try_get("version")?,
                    deleted: row.try_get("deleted")?,
                    content: row.try_get("content")?,
                    entry: entry.map(hex::encode).unwrap_or_default(),
                    recorded_at: micros(row.try_get("recorded_at")?)?,
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
        verify_all(&self.pool).await
    }

    async fn stats(&self) -> Result<Vec<CollectionStats>, StoreError> {
        // Versions as stored: the superseded ones, and each record's current
        // one in its row.
        let superseded = sum_by_stream(
            sqlx::query_as(
                "SELECT s.name, COUNT(*) FROM superseded v JOIN streams s ON s.id = v.stream_id \
                 GROUP BY s.name",
            )
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
                versions: live + deleted + superseded.get(&stream).copied().unwrap_or(0),
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
