//! What the store keeps of actions (`RULES.md` § Actions) beyond the
//! record itself: the reads that decide whether an action may be taken and
//! that the rules following actions through judge ([`ActionFacts`]), and
//! the one transaction an action is decided and recorded in ([`ActionTx`]).
//!
//! An action is a record of the collection [`Collection::Actions`], written
//! through [`apply`](super::Store::apply)'s own code as a [`Batch`]: it
//! joins the `liankong.actions` hash chain like any source record, and
//! `verify` covers it. The store never updates one in place.
//!
//! [`Collection::Actions`]: crate::model::Collection::Actions

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::alerts::{AlertState, NewEvent};
use super::{Batch, BatchOutcome, StoreError};
use crate::model::{Action, Agency, PaymentKind, QuotaKind};
use crate::money::Fen;
use crate::reconcile::RuleId;

/// What actions and the rules about them read. Every method is one read.
#[async_trait]
pub trait ActionFacts: Send + Sync {
    /// Every recorded action (of `year`, when given), withdrawals included,
    /// in the order taken, then recorded.
    async fn actions(&self, year: Option<i32>) -> Result<Vec<Action>, StoreError>;

    /// Where project `p` stands in year `Y` on day `on`, for the refusals.
    async fn project_position(
        &self,
        project: &str,
        year: i32,
        on: NaiveDate,
    ) -> Result<ProjectPosition, StoreError>;

    /// Finance's reclaim and adjustment quota rows of `Y`, whatever their
    /// date, of every project with a reclaim or revive action in `Y`.
    async fn action_quota_moves(&self, year: i32) -> Result<Vec<QuotaMove>, StoreError>;

    /// Live payments dated in `Y` up to `as_of` on every project with a
    /// freeze action in `Y`.
    async fn frozen_project_payments(
        &self,
        year: i32,
        as_of: NaiveDate,
    ) -> Result<Vec<PaymentFact>, StoreError>;

    /// The unit finance files each project with actions in `Y` under (none
    /// for a project finance no longer holds).
    async fn action_projects(&self, year: i32) -> Result<Vec<ActionProject>, StoreError>;

    /// The alerts the warnings of `Y` name, as stored.
    async fn warned_alerts(&self, year: i32) -> Result<Vec<WarnedAlert>, StoreError>;
}

/// A project's standing on a day, as the refusals of an action need it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ProjectPosition {
    /// Finance has ever sent the project (a deleted one included).
    pub sent: bool,
    /// Its unit, while finance holds it live.
    pub unit_code: Option<String>,
    /// quota(p, Y, on).
    pub quota: Fen,
    /// exp(p, on).
    pub exp: Fen,
    /// Its reclaim and adjustment quota rows of `Y`, every date.
    pub moves: Vec<QuotaMove>,
}

/// A finance quota row that moves a project's quota after its initial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct QuotaMove {
    pub project_code: String,
    pub kind: QuotaKind,
    pub amount: Fen,
    pub approved_on: NaiveDate,
}

/// A live finance payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PaymentFact {
    pub payment_id: String,
    pub project_code: String,
    pub kind: PaymentKind,
    pub amount: Fen,
    pub paid_on: NaiveDate,
}

/// A project that actions of a year name, with its unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ActionProject {
    pub project_code: String,
    pub unit_code: Option<String>,
}

/// An alert a warning names, as the newest evaluation left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct WarnedAlert {
    pub alert_id: String,
    pub rule: RuleId,
    /// Canonical JSON of the subject: what the alert's identity hashes.
    pub subject: String,
    pub state: AlertState,
}

/// The answer `POST /v1/actions` gave under an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    pub agency: Agency,
    pub key: String,
    /// sha-256 of the request body: a key sent again with another body is
    /// refused, not answered with the first action.
    pub request_hash: String,
    pub action_id: String,
    /// The JSON body of the first answer.
    pub answer: String,
    pub created_at: DateTime<Utc>,
}

/// Recording actions.
#[async_trait]
pub trait ActionStore: Send + Sync {
    /// Opens the transaction one action is decided and recorded in. Actions
    /// are taken one at a time, so what an action's refusals read cannot
    /// change before it commits.
    async fn begin_action(&self) -> Result<Box<dyn ActionTx>, StoreError>;

    /// The answer remembered for `key` from `agency`, if given after `since`.
    async fn remembered(
        &self,
        agency: Agency,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<Remembered>, StoreError>;
}

/// The transaction of one action. Dropping it without
/// [`ActionTx::commit`] records nothing.
#[async_trait]
pub trait ActionTx: Send {
    /// Appends the action's batch (a new record of `liankong.actions`), its
    /// outbox events and, under an `Idempotency-Key`, its answer (replacing
    /// one older than 24 hours under the same key).
    async fn record(
        &mut self,
        batch: &Batch,
        events: &[NewEvent],
        answer: Option<&Remembered>,
    ) -> Result<BatchOutcome, StoreError>;

    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}
