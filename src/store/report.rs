//! The per-unit sums the monthly report asks the store for, as plain types.
//!
//! As with the rules' facts, the database does the sums: the report never
//! loads payments. Everything follows the shared definitions of `RULES.md`:
//! money in fen, deleted and voided records left out, reclaims subtracted,
//! payments counted from 1 January of the year up to the as-of date. The
//! report stage turns the sums into indicators; nothing here divides.

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::Serialize;

use super::StoreError;

/// What the report reads. Every method is one query.
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// [`UnitSums`] of every live finance unit for year `year` as of `as_of`,
    /// ordered by unit code; a unit without projects has all sums 0.
    async fn unit_sums(&self, year: i32, as_of: NaiveDate) -> Result<Vec<UnitSums>, StoreError>;
}

/// One live finance unit's sums over its live projects, for year `Y` as of
/// the date `D`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct UnitSums {
    pub unit_code: String,
    pub unit_name: String,
    /// How many of its projects are active in `Y` (quota(p, Y) > 0, not
    /// `reserve`).
    pub active_projects: i64,
    /// Σ quota(p, Y) over its active projects.
    pub active_quota: i64,
    /// Σ exp(p, D) over its active projects.
    pub exp: i64,
    /// Σ alloc(p, D) over its active projects.
    pub alloc: i64,
    /// Σ quota(p, Y) over its `reserve` projects.
    pub reserve_quota: i64,
    /// Σ quota(p, Y) over all its projects with quota rows in `Y`.
    pub total_quota: i64,
}
