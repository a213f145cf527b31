//! `yearend.*`: money that will not be spent by the end of the year.

use chrono::NaiveDate;
use serde_json::json;

use super::shared::{active_from, on_project, percent, yuan};
use crate::model::Agency;
use crate::money::Fen;
use crate::reconcile::config::{Hundredths, MonthDay, Yuan, rule_settings};
use crate::reconcile::finding::{Finding, RuleId, Severity};
use crate::reconcile::rule::ProjectRule;
use crate::store::facts::{FactsQuery, ProjectFacts};

rule_settings! {
    /// `yearend.unspendable`.
    Unspendable {
        /// Judged from this day of the year on (`MM-DD`).
        from: MonthDay = MonthDay { month: 10, day: 1 },
        /// Projects with a smaller quota are not judged.
        min_quota: Yuan = Yuan(Fen(10_000_000)),
        /// Fires when the projected unspent share of the quota exceeds this percentage.
        unspent_percent: Hundredths = Hundredths(1000),
        /// The spending pace is measured over this many days before the as-of
        /// date (every project rule's facts are taken with this lookback).
        lookback_days: i64 = 90,
    }
}

impl ProjectRule for Unspendable {
    /// `yearend.unspendable`.
    fn judge_projects(&self, q: &FactsQuery, projects: &[ProjectFacts]) -> Vec<Finding> {
        let Some(from) = self.from.in_year(q.year) else {
            return vec![];
        };
        let Some(year_end) = NaiveDate::from_ymd_opt(q.year, 12, 31) else {
            return vec![];
        };
        if q.as_of < from || self.lookback_days <= 0 {
            return vec![];
        }
        let days_left = (year_end - q.as_of).num_days() as i128;
        let lookback = self.lookback_days as i128;
        let mut out = Vec::new();
        for p in active_from(projects, self.min_quota.0) {
            let (quota, exp) = (p.quota.0 as i128, p.exp.0 as i128);
            // projected·L = L·exp + (exp − exp_lookback)·days_left
            let projected_l = lookback * exp + (exp - p.exp_lookback.0 as i128) * days_left;
            // unspent > u% of quota: 10000·(L·quota − projected·L) > u·L·quota
            let unspent_l = lookback * quota - projected_l;
            if 10_000 * unspent_l <= self.unspent_percent.0 as i128 * lookback * quota {
                continue;
            }
            let projected = Fen((projected_l / lookback) as i64);
            let unspent = p.quota - projected;
            out.push(on_project(
                RuleId::Unspendable,
                q.year,
                p,
                Severity::Warning,
                vec![Agency::Finance, Agency::Npc],
                format!(
                    "按近{}天支出进度测算，项目{}年底预计支出{}元，将结余{}元（占指标{}%），建议财政局提前收回统筹使用。",
                    self.lookback_days,
                    p.project_code,
                    projected,
                    unspent,
                    percent(unspent_l, lookback * quota)
                ),
                json!({
                    "project": p.project_code, "year": q.year, "as_of": q.as_of,
                    "quota": yuan(p.quota), "expenditure": yuan(p.exp),
                    "expenditure_lookback": yuan(p.exp_lookback), "lookback_days": self.lookback_days,
                    "days_left": days_left as i64, "projected_year_end": yuan(projected),
                    "amount_to_reclaim": yuan(unspent),
                }),
            ));
        }
        out
    }
}
