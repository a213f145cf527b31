//! The sums and joins the rules ask the store for, as plain types.
//!
//! The database does the sums (a province's two million payments are never
//! loaded); the reconcile stage judges the results with exact integer
//! arithmetic. Money is fen, everything is as of the query's date, deleted
//! and voided records are left out.

use async_trait::async_trait;
use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;

use super::StoreError;
use crate::model::{
    Agency, Centi, FindingStatus, PaymentKind, ProjectCategory, RectificationStatus,
    ReferralOrigin, ReferralStatus,
};
use crate::money::Fen;

/// What the rules read. Every method is one query; what actions and the
/// rules that follow them through read is [`ActionFacts`](super::actions::ActionFacts).
#[async_trait]
pub trait FactStore: super::actions::ActionFacts + Send + Sync {
    /// Slices of project codes in code order, each holding about `size` of
    /// finance's live projects, that together cover every code (finance's or
    /// not) exactly once: the project rules walk a province one slice at a
    /// time, so what they hold does not grow with its size.
    async fn project_slices(&self, size: usize) -> Result<Vec<ProjectRange>, StoreError>;

    /// [`ProjectFacts`] of every project in `range` concerned by year `Y`.
    async fn project_facts(
        &self,
        q: &FactsQuery,
        range: &ProjectRange,
    ) -> Result<Vec<ProjectFacts>, StoreError>;

    /// npc execution rows of `Y` dated up to `D` that differ from finance's
    /// expenditures by more than `tolerance` fen.
    async fn mirror_mismatches(
        &self,
        q: &FactsQuery,
        tolerance: Fen,
    ) -> Result<Vec<MirrorFact>, StoreError>;

    /// Allocations of `Y` in `range` paid on or before `paid_on_or_before`
    /// whose cumulative allocations exceed the project's expenditures to
    /// `D`, oldest first per project.
    async fn unsettled_tranches(
        &self,
        q: &FactsQuery,
        paid_on_or_before: NaiveDate,
        range: &ProjectRange,
    ) -> Result<Vec<TrancheFact>, StoreError>;

    async fn audit_findings(&self) -> Result<Vec<FindingFact>, StoreError>;

    async fn rectifications(&self) -> Result<Vec<RectificationFact>, StoreError>;

    /// Payments up to `as_of` made on or after the freeze of an open
    /// referral, on its project or (for a unit-wide referral) on any project
    /// of its unit.
    async fn freeze_breaches(&self, as_of: NaiveDate) -> Result<Vec<FreezeFact>, StoreError>;

    /// For each end `e` of `quarter_ends`, in that order: per unit,
    /// Σ quota(p, Y, e) and Σ exp(p, e) over its active projects. One pass
    /// over the year's quotas and payments serves every end.
    async fn unit_quarters(
        &self,
        year: i32,
        quarter_ends: &[NaiveDate],
    ) -> Result<Vec<Vec<UnitQuarterFact>>, StoreError>;

    async fn orgdept_rows(&self, year: i32) -> Result<Vec<OrgdeptFact>, StoreError>;

    /// Live records of any source naming a project finance never sent.
    async fn unknown_projects(&self) -> Result<Vec<UnknownProjectFact>, StoreError>;

    /// Each rule query's name and its plan on this backend, with the
    /// arguments a reconciliation as of `q` gives it (`liankong bench
    /// --explain`).
    async fn explain(&self, q: &FactsQuery) -> Result<Vec<(String, String)>, StoreError>;
}

/// The project codes after `after` up to and including `up_to`; an end
/// that is `None` is open, so the default range holds every code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectRange {
    pub after: Option<String>,
    pub up_to: Option<String>,
}

impl ProjectRange {
    /// The ranges between consecutive `bounds` (ascending), with the open
    /// ones before the first and after the last.
    pub fn between(bounds: Vec<String>) -> Vec<ProjectRange> {
        let mut ranges = Vec::with_capacity(bounds.len() + 1);
        let mut after = None;
        for bound in bounds {
            ranges.push(ProjectRange {
                after: after.replace(bound.clone()),
                up_to: Some(bound),
            });
        }
        ranges.push(ProjectRange { after, up_to: None });
        ranges
    }
}

/// The dates a reconciliation asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactsQuery {
    /// The fiscal year `Y`: the as-of date's year.
    pub year: i32,
    /// The as-of date `D`.
    pub as_of: NaiveDate,
    /// `D − lookback` for the year-end projection.
    pub lookback: NaiveDate,
}

impl FactsQuery {
    pub fn new(as_of: NaiveDate, lookback_days: i64) -> FactsQuery {
        FactsQuery {
            year: as_of.year(),
            as_of,
            lookback: as_of - Duration::days(lookback_days),
        }
    }

    /// 1 January of `Y`.
    pub fn year_start(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, 1, 1).unwrap_or(self.as_of)
    }
}

/// Everything the project rules need about one project in year `Y`, for
/// every project that finance holds, or that has quotas or payments in `Y`,
/// or that the congress approved for `Y`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ProjectFacts {
    pub project_code: String,
    /// Finance holds a live project record for it.
    pub in_finance: bool,
    pub unit_code: Option<String>,
    pub category: Option<ProjectCategory>,
    pub full_year: bool,
    /// quota(p, Y): Σ initial + Σ adjustment − Σ reclaim.
    pub quota: Fen,
    /// Finance quota rows of (p, Y).
    pub quota_rows: i64,
    /// Σ initial quota of (p, Y).
    pub initial: Fen,
    /// The earliest `approved_on` of an initial quota of (p, Y).
    pub first_initial_on: Option<NaiveDate>,
    /// quota(p, Y − 1).
    pub quota_prev: Fen,
    /// exp(p, D).
    pub exp: Fen,
    /// exp(p, D − lookback).
    pub exp_lookback: Fen,
    /// The newest expenditure date in `Y` up to `D`.
    pub last_exp_on: Option<NaiveDate>,
    /// alloc(p, D) and nalloc(p, D).
    pub alloc: Fen,
    pub nalloc: i64,
    /// npc 批准数 + 调整数 for (p, Y), when the congress has the project-year.
    pub npc_approved: Option<Fen>,
    pub npc_key: Option<String>,
    /// Finance performance targets of (p, Y).
    pub targets: i64,
    /// The lowest finance evaluation score of (p, Y − 1), with that
    /// evaluation's id.
    pub prev_score: Option<Centi>,
    pub prev_evaluation: Option<String>,
}

/// An npc execution row whose cumulative expenditure differs from finance's
/// by more than the tolerance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct MirrorFact {
    pub key: String,
    pub project_code: String,
    /// The unit of the project, when finance holds it.
    pub unit_code: Option<String>,
    pub as_of: NaiveDate,
    /// What finance reported to the congress (npc 累计支出).
    pub reported: Fen,
    /// exp(p, as_of) from finance's own payments.
    pub exp: Fen,
}

/// An allocation paid before the settle deadline whose cumulative
/// allocations (to its date) exceed the project's expenditures to `D`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TrancheFact {
    pub project_code: String,
    pub payment_id: String,
    pub paid_on: NaiveDate,
    pub amount: Fen,
    /// alloc(p, paid_on).
    pub cumulative: Fen,
    /// exp(p, D).
    pub exp: Fen,
}

/// A live audit finding, with the finance unit its name resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct FindingFact {
    pub finding_no: String,
    pub unit_name: String,
    pub unit_code: Option<String>,
    pub project_code: Option<String>,
    pub status: FindingStatus,
    pub amount: Fen,
    pub deadline: NaiveDate,
    pub found_on: NaiveDate,
}

/// A live finance rectification report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RectificationFact {
    pub report_id: String,
    pub finding_no: String,
    pub status: RectificationStatus,
    pub reported_on: NaiveDate,
}

/// A payment made on or after the start of a freeze it breaches.
/// Confidential: the referral's fields are discipline data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct FreezeFact {
    pub referral_id: String,
    pub unit_code: String,
    pub referral_project: Option<String>,
    pub received_on: NaiveDate,
    pub status: ReferralStatus,
    pub origin: ReferralOrigin,
    pub freeze_from: NaiveDate,
    pub payment_id: String,
    pub payment_project: String,
    pub kind: PaymentKind,
    pub amount: Fen,
    pub paid_on: NaiveDate,
}

/// A unit's sums over its active projects as of a quarter's last day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct UnitQuarterFact {
    pub unit_code: String,
    /// Σ quota(p, Y, e).
    pub quota: Fen,
    /// Σ exp(p, e).
    pub exp: Fen,
}

/// An orgdept evaluation row of year `Y`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OrgdeptFact {
    pub key: String,
    pub unit_code: String,
    pub quarter: i64,
    /// In percent points.
    pub reported_rate: Centi,
}

/// A live record naming a project code that finance has never sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct UnknownProjectFact {
    pub agency: Agency,
    pub collection: String,
    pub key: String,
    pub project_code: String,
}
