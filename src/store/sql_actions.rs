// The store's part of actions, shared by both backends.
//
// Like `sql_report.rs`, this file is compiled twice, `include!`d by
// `sqlite.rs` and `postgres.rs` after `sql_common.rs`, whose imports and
// helpers (`apply_in`, `sum()`, `SIGNED_QUOTA`, `SqlSyncTx`) it uses. An
// action is written by `apply_in` like any batch, so it follows whatever
// layout the collection tables and the chain have; only this file's reads
// name `liankong_actions`' columns.

use super::actions::{
    ActionFacts, ActionProject, ActionStore, ActionTx, PaymentFact, ProjectPosition, QuotaMove,
    Remembered, WarnedAlert,
};
use crate::model::{Action, ActionKind, ProjectCode};

/// Takers of actions queue on this (PostgreSQL; SQLite's one writer
/// already serialises them).
const ACTION_LOCK: &str = "SELECT pg_advisory_xact_lock(7142002)";

/// The action of a row of `liankong_actions`, from its typed columns.
fn action_of(row: &<Db as sqlx::Database>::Row) -> Result<Action, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("liankong.actions: {what}"));
    let kind: String = row.try_get("kind")?;
    let agency: String = row.try_get("agency")?;
    let recorded_at: String = row.try_get("recorded_at")?;
    let project: String = row.try_get("project_code")?;
    let from: String = row.try_get("from_ids")?;
    Ok(Action {
        action_id: row.try_get("action_id")?,
        kind: ActionKind::parse(&kind).ok_or_else(|| corrupt("an unknown kind"))?,
        agency: Agency::parse(&agency).ok_or_else(|| corrupt("an unknown agency"))?,
        token: row.try_get("token")?,
        by: row.try_get("by_name")?,
        recorded_at: DateTime::parse_from_rfc3339(&recorded_at)
            .map_err(|_| corrupt("an unreadable recorded_at"))?
            .with_timezone(&Utc),
        taken_on: row.try_get("taken_on")?,
        project_code: ProjectCode::parse(&project).map_err(|_| corrupt("a bad project code"))?,
        year: i32::try_from(row.try_get::<i64, _>("year")?).map_err(|_| corrupt("a bad year"))?,
        alert_id: row.try_get("alert_id")?,
        deadline: row.try_get("deadline")?,
        effective_on: row.try_get("effective_on")?,
        amount: row.try_get::<Option<i64>, _>("amount")?.map(Fen),
        from: serde_json::from_str(&from).map_err(|_| corrupt("unreadable from_ids"))?,
        withdraws: row.try_get("withdraws")?,
        reason: row.try_get("reason")?,
    })
}

#[async_trait]
impl ActionFacts for SqlStore {
    async fn actions(&self, year: Option<i32>) -> Result<Vec<Action>, StoreError> {
        let columns = schema::columns(Collection::Actions).join(", ");
        let filter = if year.is_some() { " AND year = $1" } else { "" };
        let sql = format!(
            "SELECT {columns} FROM liankong_actions WHERE deleted = FALSE{filter} \
             ORDER BY taken_on, recorded_at, action_id"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if let Some(y) = year {
            query = query.bind(i64::from(y));
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(action_of).collect()
    }

    async fn project_position(
        &self,
        project: &str,
        year: i32,
        on: NaiveDate,
    ) -> Result<ProjectPosition, StoreError> {
        let projects: Vec<(bool, Option<String>)> =
            sqlx::query_as("SELECT deleted, unit_code FROM finance_projects WHERE key = $1")
                .bind(project)
                .fetch_all(&self.pool)
                .await?;
        let quota: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT {} FROM finance_quotas WHERE deleted = FALSE AND project_code = $1 \
             AND fiscal_year = $2 AND approved_on <= $3",
            sum(SIGNED_QUOTA)
        )))
        .bind(project)
        .bind(i64::from(year))
        .bind(on)
        .fetch_one(&self.pool)
        .await?;
        let year_start = NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or(on);
        let exp: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT {} FROM finance_payments WHERE deleted = FALSE AND project_code = $1 \
             AND kind = 'expenditure' AND paid_on >= $2 AND paid_on <= $3",
            sum("amount")
        )))
        .bind(project)
        .bind(year_start)
        .bind(on)
        .fetch_one(&self.pool)
        .await?;
        let moves: Vec<QuotaMove> = sqlx::query_as(
            "SELECT project_code, kind, amount, approved_on FROM finance_quotas \
             WHERE deleted = FALSE AND project_code = $1 AND fiscal_year = $2 \
             AND kind IN ('reclaim', 'adjustment') ORDER BY approved_on, key",
        )
        .bind(project)
        .bind(i64::from(year))
        .fetch_all(&self.pool)
        .await?;
        Ok(ProjectPosition {
            sent: !projects.is_empty(),
            unit_code: projects
                .into_iter()
                .find(|(deleted, _)| !deleted)
                .and_then(|(_, unit)| unit),
            quota: Fen(quota),
            exp: Fen(exp),
            moves,
        })
    }

    async fn action_quota_moves(&self, year: i32) -> Result<Vec<QuotaMove>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT q.project_code, q.kind, q.amount, q.approved_on FROM finance_quotas q \
             WHERE q.deleted = FALSE AND q.fiscal_year = $1 \
               AND q.kind IN ('reclaim', 'adjustment') \
               AND q.project_code IN (SELECT a.project_code FROM liankong_actions a \
                 WHERE a.deleted = FALSE AND a.year = $1 AND a.kind IN ('reclaim', 'revive')) \
             ORDER BY q.project_code, q.approved_on, q.key",
        )
        .bind(i64::from(year))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn frozen_project_payments(
        &self,
        year: i32,
        as_of: NaiveDate,
    ) -> Result<Vec<PaymentFact>, StoreError> {
        let year_start = NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or(as_of);
        Ok(sqlx::query_as(
            "SELECT f.key AS payment_id, f.project_code, f.kind, f.amount, f.paid_on \
             FROM finance_payments f \
             WHERE f.deleted = FALSE AND f.paid_on >= $1 AND f.paid_on <= $2 \
               AND f.project_code IN (SELECT a.project_code FROM liankong_actions a \
                 WHERE a.deleted = FALSE AND a.year = $3 AND a.kind = 'freeze') \
             ORDER BY f.project_code, f.paid_on, f.key",
        )
        .bind(year_start)
        .bind(as_of)
        .bind(i64::from(year))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn action_projects(&self, year: i32) -> Result<Vec<ActionProject>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT a.project_code, MAX(p.unit_code) AS unit_code FROM liankong_actions a \
             LEFT JOIN finance_projects p ON p.key = a.project_code AND p.deleted = FALSE \
             WHERE a.deleted = FALSE AND a.year = $1 GROUP BY a.project_code ORDER BY a.project_code",
        )
        .bind(i64::from(year))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn warned_alerts(&self, year: i32) -> Result<Vec<WarnedAlert>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT al.id AS alert_id, al.rule, al.subject, al.state FROM alerts al \
             WHERE al.id IN (SELECT a.alert_id FROM liankong_actions a \
               WHERE a.deleted = FALSE AND a.year = $1 AND a.kind = 'warn') \
             ORDER BY al.id",
        )
        .bind(i64::from(year))
        .fetch_all(&self.pool)
        .await?)
    }
}

/// The transaction of one action: the run's write transaction, holding the
/// takers' turn.
pub struct SqlActionTx(SqlSyncTx);

#[async_trait]
impl ActionTx for SqlActionTx {
    async fn record(
        &mut self,
        batch: &Batch,
        events: &[NewEvent],
        answer: Option<&Remembered>,
    ) -> Result<BatchOutcome, StoreError> {
        check_collections(batch)?;
        if batch.collection != Collection::Actions {
            return Err(StoreError::WrongCollection {
                batch: batch.collection,
                record: Collection::Actions,
            });
        }
        let outcome = apply_in(&mut self.0.tx, &mut self.0.seen, batch).await?;
        AlertTx::add_events(&mut self.0, events, batch.at).await?;
        if let Some(a) = answer {
            sqlx::query("DELETE FROM action_requests WHERE agency = $1 AND idempotency_key = $2")
                .bind(a.agency)
                .bind(a.key.as_str())
                .execute(&mut *self.0.tx)
                .await?;
            sqlx::query(
                "INSERT INTO action_requests \
                 (agency, idempotency_key, request_hash, action_id, answer, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(a.agency)
            .bind(a.key.as_str())
            .bind(a.request_hash.as_str())
            .bind(a.action_id.as_str())
            .bind(a.answer.as_str())
            .bind(a.created_at)
            .execute(&mut *self.0.tx)
            .await?;
        }
        Ok(outcome)
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.0.tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl ActionStore for SqlStore {
    async fn begin_action(&self) -> Result<Box<dyn ActionTx>, StoreError> {
        let mut tx = self.write_tx().await?;
        if BACKEND == "postgres" {
            sqlx::query(ACTION_LOCK).execute(&mut *tx.tx).await?;
        }
        Ok(Box::new(SqlActionTx(tx)))
    }

    async fn remembered(
        &self,
        agency: Agency,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<Remembered>, StoreError> {
        let row: Option<(String, String, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT request_hash, action_id, answer, created_at FROM action_requests \
             WHERE agency = $1 AND idempotency_key = $2 AND created_at > $3",
        )
        .bind(agency)
        .bind(key)
        .bind(since)
        .fetch_optional(&self.pool)
        .await?;
        Ok(
            row.map(|(request_hash, action_id, answer, created_at)| Remembered {
                agency,
                key: key.to_owned(),
                request_hash,
                action_id,
                answer,
                created_at,
            }),
        )
    }
}
