//! What the store keeps of alerts, silences and the delivery outbox, as
//! typed rows. The alert and delivery stages own the logic; the store only
//! keeps the rows and hands them out in transactions.
//!
//! The words an alert's state, an event's type and a silence's scope are
//! stored as are spelled here, and only here ([`text_enum!`]); the finding
//! is kept as JSON text and read back into its type (a row that does not
//! read back is an error, never an alert left out).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::StoreError;
use super::columns::text_enum;
use crate::model::Agency;
use crate::reconcile::{Finding, RuleId, Severity};

text_enum! {
    /// Where an alert stands. The alert stage's lifecycle moves it; the
    /// store keeps it.
    pub enum AlertState {
        /// Found by the newest evaluation at the severity it first had, or
        /// lower again after an escalation.
        Firing = "firing",
        /// Found at a higher severity than before.
        Escalated = "escalated",
        /// No longer found: the episode is over.
        Resolved = "resolved",
    }
}

impl AlertState {
    /// Firing or escalated.
    pub fn is_active(self) -> bool {
        self != AlertState::Resolved
    }
}

text_enum! {
    /// What an outbox event tells its subscriber: the webhook's `type`.
    pub enum EventType {
        Firing = "alert.firing",
        Escalated = "alert.escalated",
        Reminder = "alert.reminder",
        Resolved = "alert.resolved",
        /// An action was recorded (`RULES.md` § Actions): one type per kind.
        ActionWarn = "action.warn",
        ActionFreeze = "action.freeze",
        ActionUnfreeze = "action.unfreeze",
        ActionReclaim = "action.reclaim",
        ActionRevive = "action.revive",
        ActionWithdraw = "action.withdraw",
        /// A checkpoint of the store's history was signed (README,
        /// "Witnessed history").
        Checkpoint = "store.checkpoint",
    }
}

impl EventType {
    /// The event that announces an action of this kind.
    pub fn of_action(kind: crate::model::ActionKind) -> EventType {
        use crate::model::ActionKind::*;
        match kind {
            Warn => EventType::ActionWarn,
            Freeze => EventType::ActionFreeze,
            Unfreeze => EventType::ActionUnfreeze,
            Reclaim => EventType::ActionReclaim,
            Revive => EventType::ActionRevive,
            Withdraw => EventType::ActionWithdraw,
        }
    }
}

text_enum! {
    /// What a silence covers.
    pub enum SilenceScope {
        Rule = "rule",
        Unit = "unit",
        Project = "project",
    }
}

/// An alert as stored: one row per identity, reused by every episode.
/// The store also keeps its recipients and the sha-256 of its finding, for
/// SQL's sake; both are the finding's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AlertRow {
    pub id: String,
    pub rule: RuleId,
    /// Canonical JSON of the subject (confidential for confidential rules).
    pub subject: String,
    pub confidential: bool,
    pub severity: Severity,
    pub state: AlertState,
    pub episode: i64,
    pub unit_code: Option<String>,
    pub project_code: Option<String>,
    /// The newest finding, views included.
    pub finding: Finding,
    pub as_of: NaiveDate,
    pub first_seen: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub acked_at: Option<DateTime<Utc>>,
    pub acked_by: Option<String>,
    pub ack_note: Option<String>,
    /// The episode and state the recipients were last told about.
    pub notified_episode: Option<i64>,
    pub notified_state: Option<AlertState>,
    pub notified_at: Option<DateTime<Utc>>,
}

impl AlertRow {
    /// Who receives it: its finding's recipients.
    pub fn recipients(&self) -> &[Agency] {
        &self.finding.recipients
    }
}

/// A silence of a rule, a unit or a project until a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = Silence)]
pub struct SilenceRow {
    pub id: i64,
    pub scope: SilenceScope,
    pub value: String,
    pub until: DateTime<Utc>,
    pub reason: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub lifted_at: Option<DateTime<Utc>>,
    /// The agency whose deliveries it mutes; every recipient's when None.
    pub agency: Option<Agency>,
}

/// An event to deliver to one subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    /// The `webhook-id`: the same on every attempt.
    pub event_id: String,
    /// What the event is about: an alert's id, or an action's (a
    /// withdrawal's events go with the action withdrawn). One subscriber
    /// gets the events of one subject in order.
    pub alert_id: String,
    pub subscriber: String,
    pub agency: Agency,
    pub event_type: EventType,
    /// The exact body signed and sent.
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A new outbox event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub event_id: String,
    pub alert_id: String,
    pub subscriber: String,
    pub agency: Agency,
    pub event_type: EventType,
    pub body: String,
}

/// Counts of the outbox by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct OutboxCounts {
    pub pending: i64,
    /// Pending events that have failed at least once.
    pub retrying: i64,
    pub delivered: i64,
    pub dead: i64,
}

/// The transaction of one evaluation: alert changes and their events
/// commit together.
#[async_trait]
pub trait AlertTx: Send {
    /// The random salt of alert ids, created on first use.
    async fn salt(&mut self) -> Result<String, StoreError>;
    /// Alerts in state `firing` or `escalated`.
    async fn active_alerts(&mut self) -> Result<Vec<AlertRow>, StoreError>;
    async fn alert(&mut self, id: &str) -> Result<Option<AlertRow>, StoreError>;
    async fn put_alert(&mut self, alert: &AlertRow) -> Result<(), StoreError>;
    async fn active_silences(&mut self, now: DateTime<Utc>) -> Result<Vec<SilenceRow>, StoreError>;
    async fn add_events(
        &mut self,
        events: &[NewEvent],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn record_run(
        &mut self,
        as_of: NaiveDate,
        started: DateTime<Utc>,
        finished: DateTime<Utc>,
        report: &str,
    ) -> Result<(), StoreError>;
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Alerts, silences and the outbox.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Starts an evaluation; evaluations are serialised.
    async fn begin_alerts(&self) -> Result<Box<dyn AlertTx>, StoreError>;

    /// Every alert, newest change first (filters are the caller's).
    async fn alerts(&self) -> Result<Vec<AlertRow>, StoreError>;
    async fn get_alert(&self, id: &str) -> Result<Option<AlertRow>, StoreError>;
    /// Acknowledges an active alert; false if there is none with that id.
    async fn ack_alert(
        &self,
        id: &str,
        by: &str,
        note: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    #[allow(clippy::too_many_arguments)]
    async fn add_silence(
        &self,
        scope: SilenceScope,
        value: &str,
        agency: Option<Agency>,
        until: DateTime<Utc>,
        reason: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError>;
    async fn lift_silence(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError>;
    async fn silences(&self) -> Result<Vec<SilenceRow>, StoreError>;

    /// Claims up to `limit` events that are due, the oldest pending event of
    /// each (alert, subscriber) only, so that one subscriber gets one
    /// alert's events in order. A claim lasts until `lease_until`.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError>;
    /// Records the events of a round that were delivered, all in one
    /// write: a round of hundreds costs one transaction, not one each.
    async fn mark_delivered(&self, ids: &[i64], at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Records a failed attempt: retried at `next`, or dead when `next` is None.
    async fn mark_failed(
        &self,
        id: i64,
        at: DateTime<Utc>,
        error: &str,
        next: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
    /// Outbox events, newest first; `state` filters.
    async fn deliveries(
        &self,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError>;
    /// Puts dead events (one, or all when `id` is None) back to pending now.
    async fn redrive(&self, id: Option<i64>, at: DateTime<Utc>) -> Result<u64, StoreError>;
    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_words_are_the_wire_words() {
        // The webhook body, the API and the columns spell them alike.
        assert_eq!(
            serde_json::to_value(AlertState::Escalated).unwrap(),
            "escalated"
        );
        assert_eq!(
            serde_json::to_value(EventType::Reminder).unwrap(),
            "alert.reminder"
        );
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
            let back: EventType = serde_json::from_value(serde_json::to_value(t).unwrap()).unwrap();
            assert_eq!(back, *t);
        }
        assert_eq!(format!("{:<8}|", AlertState::Firing), "firing  |");
        let err = serde_json::from_str::<SilenceScope>("\"agency\"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"agency\" is not a SilenceScope (rule, unit, project)"
        );
    }
}
