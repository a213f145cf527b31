//! What the store keeps for the agencies' console beyond what the API
//! already reads: the log of views of confidential alerts (who opened one,
//! when, through what), and one agency's slice of the outbox, paged, so a
//! listing never has to read other agencies' rows to fill a page.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreError;
use super::alerts::OutboxRow;
use crate::model::Agency;
use crate::reconcile::RuleId;

/// One view of a confidential alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AlertViewRow {
    pub id: i64,
    pub alert_id: String,
    pub rule: RuleId,
    pub agency: Agency,
    /// The name of the personal token the viewer signed in with.
    pub token: String,
    /// `console` or `api`.
    pub channel: String,
    pub viewed_at: DateTime<Utc>,
}

/// A view about to be logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlertView<'a> {
    pub alert_id: &'a str,
    pub rule: RuleId,
    pub agency: Agency,
    pub token: &'a str,
    pub channel: &'a str,
    pub at: DateTime<Utc>,
}

/// The console's reads and its one write.
#[async_trait]
pub trait ConsoleStore: Send + Sync {
    /// Logs one view of a confidential alert.
    async fn log_alert_view(&self, view: &NewAlertView<'_>) -> Result<(), StoreError>;

    /// Views of confidential alerts, newest first.
    async fn alert_views(&self, limit: i64, offset: i64) -> Result<Vec<AlertViewRow>, StoreError>;

    /// `agency`'s outbox events, newest first: of one state and one subject
    /// (an alert's or an action's id) when asked.
    async fn agency_deliveries(
        &self,
        agency: Agency,
        state: Option<&str>,
        subject: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<OutboxRow>, StoreError>;
}
