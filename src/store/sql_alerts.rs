// Alerts, silences and the outbox (`AlertStore`, `AlertTx`). `include!`d
// after `sql_common.rs` by both backends.

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

    async fn mark_delivered(&self, ids: &[i64], at: DateTime<Utc>) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for chunk in ids.chunks(MAX_BIND_PARAMS - 2) {
            let mut qb =
                QueryBuilder::<Db>::new("UPDATE outbox SET state = 'delivered', delivered_at = ");
            qb.push_bind(at).push(", last_attempt_at = ").push_bind(at).push(
                ", attempts = attempts + 1, claimed_until = NULL, last_error = NULL WHERE id IN (",
            );
            let mut ids = qb.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            qb.push(")");
            qb.build().execute(&mut *tx.tx).await?;
        }
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
