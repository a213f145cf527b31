//! Anomalies planted into the generated year at province rates
//! (`GenParams::anomalies`, `liankong sim --anomalies`, `liankong bench
//! --anomalies`): which projects break which rule, chosen from the seed.
//!
//! Each kind is planted so that exactly its rules fire for the project as of
//! the as-of date, with the default thresholds of `RULES.md`, and no other:
//! the year's payments are never touched, only a quota raise that nobody
//! spends, or one figure the congress holds. Without a share nothing here
//! runs and the year is the clean one, draw for draw.

use chrono::{Datelike, NaiveDate};
use fastrand::Rng;
use serde::{Deserialize, Serialize};

use super::generate::{Calendar, YearPlan};
use crate::model::{PaymentKind, ProjectCategory, QuotaKind};

/// `execution.slow`'s default `min_quota`: 100,000.00 yuan in fen.
const MIN_QUOTA: i64 = 10_000_000;
/// `funds.idle`'s default `idle_days`.
const IDLE_DAYS: i64 = 180;
/// A planted slow project lags time by at least this many percent points
/// (the rule fires from 15; from 30 it is critical, as it is for the small
/// projects whose raise must also reach the rule's minimum quota).
const SLOW_GAP_PP: i64 = 20;
/// Amounts move in steps of 100 yuan, the budget office's rounding.
const STEP: i64 = 10_000;

/// A share of the projects, exact in parts per million so that the
/// parameters stay comparable and the choice deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnomalyShare(u32);

impl AnomalyShare {
    /// `share` of the projects, more than 0 and at most 1.
    pub fn new(share: f64) -> Option<AnomalyShare> {
        let ppm = (share * 1_000_000.0).round();
        // Saturating float-to-int conversion of a checked range.
        (share.is_finite() && share > 0.0 && share <= 1.0 && ppm >= 1.0)
            .then_some(AnomalyShare(ppm as u32))
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 1_000_000.0
    }

    /// The share of `n` divided by `divisor`, rounded half up.
    pub fn of(self, n: usize, divisor: usize) -> usize {
        let den = 1_000_000 * divisor.max(1) as u128;
        ((n as u128 * u128::from(self.0) * 2 + den) / (2 * den)) as usize
    }
}

/// How many projects each kind of anomaly was planted in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planted {
    /// `execution.slow` (and, on 31 December, `yearend.unspendable`).
    pub slow: usize,
    /// `funds.idle`.
    pub idle: usize,
    /// `execution.mirror_mismatch`: one npc execution row each.
    pub mirror: usize,
    /// `budget.approved_mismatch`.
    pub approved: usize,
}

impl Planted {
    /// What a share asks for among `projects`: the share slow, a fifth of
    /// it idle, a twentieth of it mismatched (at least one, the mirror
    /// first, then the approvals, alternately).
    pub fn wanted(share: AnomalyShare, projects: usize) -> Planted {
        let mismatches = share.of(projects, 20).max(1);
        Planted {
            slow: share.of(projects, 1),
            idle: share.of(projects, 5),
            mirror: mismatches.div_ceil(2),
            approved: mismatches / 2,
        }
    }

    pub fn total(&self) -> usize {
        self.slow + self.idle + self.mirror + self.approved
    }
}

/// What one project gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plant {
    /// A positive adjustment of its quota, never allocated (slow and idle
    /// projects alike; only the amount differs), already in its plan.
    Raise,
    /// Its last execution row reports 100 yuan more than finance paid.
    Mirror,
    /// The congress's adjustment is 100 yuan more than finance's quota.
    Approved,
}

/// A project's year as planned, cut at the as-of date.
struct Cut {
    quota: i64,
    spent: i64,
    last_spent: Option<NaiveDate>,
    approved_on: NaiveDate,
}

fn cut(cal: &Calendar, plan: &YearPlan) -> Option<Cut> {
    let mut quota = 0;
    let mut approved_on = None;
    for (kind, amount, day) in plan.quotas.iter().filter(|q| cal.visible(q.2)) {
        quota += match kind {
            QuotaKind::Reclaim => -amount,
            _ => *amount,
        };
        if *kind == QuotaKind::Initial {
            approved_on = approved_on.min(Some(*day)).or(Some(*day));
        }
    }
    let spent_rows = plan
        .payments
        .iter()
        .filter(|p| p.0 == PaymentKind::Expenditure && cal.visible(p.2));
    let (spent, last_spent) = spent_rows.fold((0, None), |(s, l), p| (s + p.1, l.max(Some(p.2))));
    Some(Cut {
        quota,
        spent,
        last_spent,
        approved_on: approved_on?,
    })
}

/// Chooses the planted projects and what each gets; `plans[i]` is project
/// `i`'s year (with the generator it goes on drawing from), `None` when it
/// has no quota planned.
/// Raises are added to the plans; the rest is for the emitter to apply.
pub(super) fn choose(
    share: AnomalyShare,
    cal: &Calendar,
    rng: &mut Rng,
    categories: &[Option<ProjectCategory>],
    plans: &mut [Option<(Rng, YearPlan)>],
) -> (Vec<Option<Plant>>, Planted) {
    let wanted = Planted::wanted(share, plans.len());
    let mut planted = Planted::default();
    let mut plants = vec![None; plans.len()];
    let mut order: Vec<usize> = (0..plans.len()).collect();
    rng.shuffle(&mut order);
    // Only a day of the year itself is judged against that year.
    let d = cal.last_day;
    let in_year = cal.as_of == d;
    let doy = i128::from(d.ordinal());
    let diy = i128::from(cal.days_in_year);
    let slow_possible = in_year
        && d >= NaiveDate::from_ymd_opt(cal.year, 3, 1).unwrap_or(d)
        && 100 * doy > i128::from(SLOW_GAP_PP) * diy;
    for i in order {
        if planted == wanted {
            break;
        }
        let (Some(Some((_, plan))), Some(slot)) = (plans.get_mut(i), plants.get_mut(i)) else {
            continue;
        };
        if categories.get(i).copied().flatten() == Some(ProjectCategory::Reserve) {
            continue;
        }
        let Some(c) = cut(cal, plan) else { continue };
        if c.quota <= 0 {
            continue;
        }
        let since = c.last_spent.unwrap_or(c.approved_on);
        let idle_now = (d - since).num_days() >= IDLE_DAYS;
        let first_raise = cal.index(c.approved_on) + 1;
        if planted.slow < wanted.slow && slow_possible && !idle_now {
            // The quota T at which spending lags time by SLOW_GAP_PP:
            // exp ÷ T ≤ doy ÷ diy − gap ÷ 100, so T ≥ 100·exp·diy ÷ (100·doy − gap·diy).
            let den = 100 * doy - i128::from(SLOW_GAP_PP) * diy;
            let needed = (100 * i128::from(c.spent) * diy + den - 1) / den;
            let target = i64::try_from(needed)
                .unwrap_or(i64::MAX)
                .max(MIN_QUOTA)
                .max(c.quota + STEP);
            let raise = target - c.quota;
            let amount = raise + (STEP - raise.rem_euclid(STEP)) % STEP;
            let day = cal
                .day(rng.i64(first_raise..=cal.index(d).max(first_raise)))
                .min(d);
            plan.quotas.push((QuotaKind::Adjustment, amount, day));
            *slot = Some(Plant::Raise);
            planted.slow += 1;
        } else if planted.idle < wanted.idle && in_year && idle_now && c.spent == c.quota {
            // 1% more quota, at least 100 yuan: idle, never slow, and the
            // year-end projection still spends 99% of it.
            let amount = (c.quota / 100 - (c.quota / 100).rem_euclid(STEP)).max(STEP);
            let after = cal.index(since) + rng.i64(1..=10);
            let day = cal.day(after.max(first_raise)).min(d);
            plan.quotas.push((QuotaKind::Adjustment, amount, day));
            *slot = Some(Plant::Raise);
            planted.idle += 1;
        } else if planted.mirror < wanted.mirror && has_mirror_row(cal, c.approved_on) {
            *slot = Some(Plant::Mirror);
            planted.mirror += 1;
        } else if planted.approved < wanted.approved {
            *slot = Some(Plant::Approved);
            planted.approved += 1;
        }
    }
    (plants, planted)
}

/// Whether finance has reported to the congress on a project approved on
/// `approved_on` by the as-of date (a month-end since).
fn has_mirror_row(cal: &Calendar, approved_on: NaiveDate) -> bool {
    cal.month_ends().iter().any(|e| *e >= approved_on)
}

/// The 100 yuan of a planted mismatch.
pub(super) const MISMATCH: i64 = STEP;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_round_half_up_and_mismatches_are_at_least_one() {
        let s = AnomalyShare::new(0.05).unwrap();
        assert_eq!(s.of(100_000, 1), 5_000);
        assert_eq!(s.of(100_000, 5), 1_000);
        assert_eq!(s.of(100_000, 20), 250);
        assert_eq!(
            Planted::wanted(s, 200),
            Planted {
                slow: 10,
                idle: 2,
                mirror: 1,
                approved: 0
            }
        );
        assert_eq!(AnomalyShare::new(0.0), None);
        assert_eq!(AnomalyShare::new(1.5), None);
        assert_eq!(AnomalyShare::new(f64::NAN), None);
    }
}
