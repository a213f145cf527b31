//! Builds the monthly report from the store: the per-unit sums the database
//! computes, the indicators divided exactly, the ranking, and the count of
//! open alerts.
//!
//! Confidential alerts (those that rest on discipline data) never enter a
//! report, not even as a count: a count per unit would tell every reader
//! which units discipline inspection is looking at.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

use super::ratio::Ratio;
use crate::action::ledger;
use crate::model::{Action, ActionKind, ProjectCode, QuotaKind};
use crate::money::Fen;
use crate::reconcile::Severity;
use crate::store::alerts::AlertRow;
use crate::store::report::UnitSums;
use crate::store::{Store, StoreError};

/// The report of one month, as of its last day `D`, for fiscal year `Y`
/// (`D`'s year).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `Y`.
    pub year: i32,
    /// The month, 1–12.
    pub month: u32,
    /// `D`: the last day of the month.
    pub as_of: NaiveDate,
    /// day-of-year(D) ÷ days-in-year(Y).
    pub time_progress: Ratio,
    /// Every live finance unit: the ranked ones by rank (ties by unit code),
    /// then the unranked ones by unit code.
    pub units: Vec<UnitReport>,
    /// The money put back to use in `Y` up to `D`: Σ revive actions.
    pub revived: Fen,
    /// How much of it finance's adjustments of the receiving projects show.
    pub revived_applied: Fen,
}

/// One unit's line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitReport {
    pub unit_code: String,
    pub unit_name: String,
    /// Its projects active in `Y`.
    pub active_projects: i64,
    /// Σ quota(p, Y) over its active projects (指标).
    pub quota: Fen,
    /// Σ exp(p, D) over its active projects (支出).
    pub expenditure: Fen,
    /// Σ alloc(p, D) over its active projects (拨款).
    pub allocation: Fen,
    /// Σ quota(p, Y) of its `reserve` projects.
    pub reserve_quota: Fen,
    /// Σ quota(p, Y) of all its projects with quota in `Y`.
    pub total_quota: Fen,
    /// expenditure ÷ quota; `None` without an active project.
    pub execution_progress: Option<Ratio>,
    /// expenditure ÷ allocation; `None` without an allocation.
    pub expenditure_rate: Option<Ratio>,
    /// 1 − reserve quota ÷ total quota; `None` without a positive total.
    pub budget_to_project_rate: Option<Ratio>,
    /// 1 for the highest execution progress; equal progress shares a rank
    /// and the next rank skips ("1224"). `None` when the progress is
    /// undefined.
    pub rank: Option<usize>,
    /// Its open non-confidential alerts.
    pub open_alerts: OpenAlerts,
    /// The actions on its projects taken in the month.
    pub month_actions: ActionCounts,
    /// The same from 1 January of `Y` to `D`.
    pub year_actions: ActionCounts,
}

/// What was done about a unit's projects (`RULES.md` § Actions): actions of
/// `Y` that count as of `D` (a withdrawn one does not); a revive counts
/// under the receiving project's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ActionCounts {
    pub warnings: u64,
    pub freezes: u64,
    pub reclaimed: Fen,
    pub revived: Fen,
}

impl ActionCounts {
    fn add(&mut self, a: &Action) {
        let amount = a.amount.unwrap_or(Fen::ZERO);
        match a.kind {
            ActionKind::Warn => self.warnings += 1,
            ActionKind::Freeze => self.freezes += 1,
            ActionKind::Reclaim => self.reclaimed = self.reclaimed + amount,
            ActionKind::Revive => self.revived = self.revived + amount,
            ActionKind::Unfreeze | ActionKind::Withdraw => {}
        }
    }
}

/// Per unit, the actions of the month and of the year to `as_of`; and the
/// year's revived money with what finance applied of it.
async fn actions_by_unit(
    store: &dyn Store,
    year: i32,
    as_of: NaiveDate,
) -> Result<(BTreeMap<String, (ActionCounts, ActionCounts)>, Fen, Fen), StoreError> {
    let actions = store.actions(Some(year)).await?;
    let counted = ledger::counted(&actions, as_of);
    let units: BTreeMap<String, String> = store
        .action_projects(year)
        .await?
        .into_iter()
        .filter_map(|p| Some((p.project_code, p.unit_code?)))
        .collect();
    let month_start = as_of.with_day(1).unwrap_or(as_of);
    let mut out: BTreeMap<String, (ActionCounts, ActionCounts)> = BTreeMap::new();
    for a in &counted {
        let Some(unit) = units.get(a.project_code.as_str()) else {
            continue;
        };
        let counts = out.entry(unit.clone()).or_default();
        counts.1.add(a);
        if a.taken_on >= month_start {
            counts.0.add(a);
        }
    }
    let moves = store.action_quota_moves(year).await?;
    let (mut revived, mut applied) = (Fen::ZERO, Fen::ZERO);
    let receiving: std::collections::BTreeSet<&ProjectCode> = counted
        .iter()
        .filter(|a| a.kind == ActionKind::Revive)
        .map(|a| &a.project_code)
        .collect();
    for q in receiving {
        let revives = ledger::revives(&counted, q, year);
        let rows: Vec<(NaiveDate, Fen)> = moves
            .iter()
            .filter(|m| m.project_code == q.as_str())
            .filter(|m| m.kind == QuotaKind::Adjustment && m.amount > Fen::ZERO)
            .map(|m| (m.approved_on, m.amount))
            .collect();
        let application = ledger::application(&revives, &rows, as_of);
        let asked: Fen = revives.iter().filter_map(|a| a.amount).sum();
        revived = revived + asked;
        applied = applied + asked - application.unapplied();
    }
    Ok((out, revived, applied))
}

/// Open (firing or escalated) alerts of a unit, by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenAlerts {
    pub critical: u64,
    pub warning: u64,
}

/// Builds the report of the month that contains `month` (any day of it).
pub async fn build(store: &dyn Store, month: NaiveDate) -> Result<Report, StoreError> {
    let as_of = month_end(month);
    let year = as_of.year();
    let sums = store.unit_sums(year, as_of).await?;
    let alerts = open_alerts(&store.alerts().await?);
    let (actions, revived, revived_applied) = actions_by_unit(store, year, as_of).await?;
    let units = rank(
        sums.into_iter()
            .map(|s| {
                let open = alerts.get(&s.unit_code).copied().unwrap_or_default();
                let (month, ytd) = actions.get(&s.unit_code).copied().unwrap_or_default();
                let mut u = unit_report(s, open);
                u.month_actions = month;
                u.year_actions = ytd;
                u
            })
            .collect(),
    );
    Ok(Report {
        year,
        month: as_of.month(),
        as_of,
        time_progress: time_progress(as_of),
        units,
        revived,
        revived_applied,
    })
}

/// The last day of the month that contains `day`.
pub fn month_end(day: NaiveDate) -> NaiveDate {
    let (y, m) = (day.year(), day.month());
    let end = if m == 12 {
        NaiveDate::from_ymd_opt(y, 12, 31)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1).and_then(|d| d.pred_opt())
    };
    // Both are valid dates whenever `day` is.
    end.unwrap_or(day)
}

/// day-of-year(D) ÷ days-in-year(D's year); leap years have 366 days.
pub fn time_progress(as_of: NaiveDate) -> Ratio {
    let days = NaiveDate::from_ymd_opt(as_of.year(), 12, 31).map_or(365, |d| d.ordinal());
    let (day, days) = (i64::from(as_of.ordinal()), i64::from(days));
    // `days` is 365 or 366, so the ratio always exists.
    Ratio::new(day, days).unwrap_or(Ratio::ZERO)
}

fn unit_report(s: UnitSums, open_alerts: OpenAlerts) -> UnitReport {
    let non_reserve = s.total_quota.checked_sub(s.reserve_quota);
    UnitReport {
        execution_progress: Ratio::new(s.exp, s.active_quota),
        expenditure_rate: Ratio::new(s.exp, s.alloc),
        budget_to_project_rate: non_reserve.and_then(|n| Ratio::new(n, s.total_quota)),
        rank: None,
        unit_code: s.unit_code,
        unit_name: s.unit_name,
        active_projects: s.active_projects,
        quota: Fen(s.active_quota),
        expenditure: Fen(s.exp),
        allocation: Fen(s.alloc),
        reserve_quota: Fen(s.reserve_quota),
        total_quota: Fen(s.total_quota),
        open_alerts,
        month_actions: ActionCounts::default(),
        year_actions: ActionCounts::default(),
    }
}

/// Open alerts per unit code, confidential ones left out.
fn open_alerts(alerts: &[AlertRow]) -> BTreeMap<String, OpenAlerts> {
    let mut out: BTreeMap<String, OpenAlerts> = BTreeMap::new();
    for a in alerts {
        if a.confidential || !a.state.is_active() {
            continue;
        }
        let Some(unit) = &a.unit_code else { continue };
        let counts = out.entry(unit.clone()).or_default();
        match a.severity {
            Severity::Critical => counts.critical += 1,
            Severity::Warning => counts.warning += 1,
        }
    }
    out
}

/// Orders the units by execution progress, highest first, and gives them
/// competition ranks; units whose progress is undefined go last, unranked.
fn rank(mut units: Vec<UnitReport>) -> Vec<UnitReport> {
    units.sort_by(|a, b| {
        // `None` sorts before `Some` ascending, so reversed it sorts last.
        b.execution_progress
            .cmp(&a.execution_progress)
            .then_with(|| a.unit_code.cmp(&b.unit_code))
    });
    let mut previous: Option<(Ratio, usize)> = None;
    for (i, u) in units.iter_mut().enumerate() {
        let Some(progress) = u.execution_progress else {
            break;
        };
        let rank = match previous {
            Some((p, r)) if p == progress => r,
            _ => i + 1,
        };
        u.rank = Some(rank);
        previous = Some((progress, rank));
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::RuleId;
    use crate::store::alerts::AlertState;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn month_ends() {
        assert_eq!(month_end(d(2021, 9, 14)), d(2021, 9, 30));
        assert_eq!(month_end(d(2021, 2, 1)), d(2021, 2, 28));
        assert_eq!(month_end(d(2024, 2, 29)), d(2024, 2, 29));
        assert_eq!(month_end(d(2021, 12, 1)), d(2021, 12, 31));
        assert_eq!(month_end(d(2021, 1, 31)), d(2021, 1, 31));
    }

    #[test]
    fn time_progress_counts_leap_days() {
        assert_eq!(time_progress(d(2021, 9, 30)).percent(), "74.79");
        assert_eq!(time_progress(d(2021, 9, 30)), Ratio::new(273, 365).unwrap());
        assert_eq!(time_progress(d(2024, 9, 30)), Ratio::new(274, 366).unwrap());
        assert_eq!(time_progress(d(2024, 12, 31)).percent(), "100.00");
    }

    fn unit(code: &str, exp: i64, quota: i64) -> UnitReport {
        unit_report(
            UnitSums {
                unit_code: code.into(),
                unit_name: format!("单位{code}"),
                active_projects: i64::from(quota > 0),
                active_quota: quota,
                exp,
                alloc: 0,
                reserve_quota: 0,
                total_quota: quota,
            },
            OpenAlerts::default(),
        )
    }

    #[test]
    fn ties_share_a_rank_and_undefined_goes_last() {
        let ranked = rank(vec![
            unit("000005", 0, 0),
            unit("000004", 1, 4),
            unit("000003", 2, 4),
            unit("000002", 1, 2),
            unit("000001", 9, 10),
            unit("000000", 0, 0),
        ]);
        let got: Vec<(&str, Option<usize>)> = ranked
            .iter()
            .map(|u| (u.unit_code.as_str(), u.rank))
            .collect();
        assert_eq!(
            got,
            [
                ("000001", Some(1)),
                ("000002", Some(2)),
                ("000003", Some(2)),
                ("000004", Some(4)),
                ("000000", None),
                ("000005", None),
            ]
        );
    }

    fn alert(unit: &str, severity: Severity, state: AlertState, confidential: bool) -> AlertRow {
        let t = chrono::DateTime::from_timestamp(0, 0).unwrap();
        let finding = crate::testing::finding(RuleId::Slow, severity, unit, "3701002021000001");
        AlertRow {
            id: format!("{unit}{severity}{state}{confidential}"),
            rule: RuleId::Slow,
            subject: finding.subject().to_string(),
            confidential,
            severity,
            state,
            episode: 1,
            unit_code: Some(unit.into()),
            project_code: None,
            finding,
            as_of: d(2021, 9, 30),
            first_seen: t,
            changed_at: t,
            resolved_at: None,
            acked_at: None,
            acked_by: None,
            ack_note: None,
            notified_episode: None,
            notified_state: None,
            notified_at: None,
        }
    }

    #[test]
    fn open_alerts_leave_out_confidential_and_resolved() {
        use AlertState::{Escalated, Firing, Resolved};
        use Severity::{Critical, Warning};
        let counts = open_alerts(&[
            alert("370101", Critical, Firing, false),
            alert("370101", Critical, Escalated, false),
            alert("370101", Warning, Firing, false),
            alert("370101", Critical, Resolved, false),
            alert("370101", Critical, Firing, true),
            alert("370102", Critical, Firing, true),
        ]);
        assert_eq!(
            counts.get("370101"),
            Some(&OpenAlerts {
                critical: 2,
                warning: 1
            })
        );
        assert_eq!(counts.get("370102"), None);
    }
}
