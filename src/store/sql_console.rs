// The console's part of the store, shared by both backends: `include!`d by
// `sqlite.rs` and `postgres.rs` after `sql_common.rs`, whose imports and
// `OUTBOX_COLUMNS` it uses.

use super::console::{AlertViewRow, ConsoleStore, NewAlertView};

#[async_trait]
impl ConsoleStore for SqlStore {
    async fn log_alert_view(&self, view: &NewAlertView<'_>) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO alert_views (alert_id, rule, agency, token, channel, viewed_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(view.alert_id)
        .bind(view.rule.as_str())
        .bind(view.agency.as_str())
        .bind(view.token)
        .bind(view.channel)
        .bind(view.at)
        .execute(&mut *tx.tx)
        .await?;
        tx.tx.commit().await?;
        Ok(())
    }

    async fn alert_views(&self, limit: i64, offset: i64) -> Result<Vec<AlertViewRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, alert_id, rule, agency, token, channel, viewed_at FROM alert_views \
             ORDER BY id DESC LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn agency_deliveries(
        &self,
        agency: Agency,
        state: Option<&str>,
        subject: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE agency = $1 \
             AND ($2 IS NULL OR state = $2) AND ($3 IS NULL OR alert_id = $3) \
             ORDER BY id DESC LIMIT $4 OFFSET $5"
        )))
        .bind(agency.as_str())
        .bind(state)
        .bind(subject)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?)
    }
}
