//! `orgdept.*`: the execution rates units report to the organization
//! department against finance's own figures.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{Duration, NaiveDate};
use serde_json::json;

use super::shared::{hundredths, open_finding, percent, yuan};
use crate::model::Agency;
use crate::money::Fen;
use crate::reconcile::config::{Hundredths, rule_settings};
use crate::reconcile::finding::{Finding, RuleId, Severity, SourceRef, View};
use crate::reconcile::rule::{Facts, Rule};
use crate::store::StoreError;
use crate::store::facts::{OrgdeptFact, UnitQuarterFact};

rule_settings! {
    /// `orgdept.rate_mismatch`.
    RateMismatch {
        /// Reported and computed rates may differ by this many pp.
        tolerance_pp: Hundredths = Hundredths(100),
    }
}

#[async_trait]
impl Rule for RateMismatch {
    async fn judge(&self, facts: &Facts<'_>) -> Result<Vec<Finding>, StoreError> {
        let q = &facts.query;
        let rows = facts.store.orgdept_rows(q.year).await?;
        // The quarters ended by the as-of date that orgdept rated, summed in
        // one pass.
        let quarters: Vec<(i64, NaiveDate)> = (1..=4)
            .filter_map(|quarter| Some((quarter, quarter_end(q.year, quarter)?)))
            .take_while(|(_, end)| *end <= q.as_of)
            .filter(|(quarter, _)| rows.iter().any(|r| r.quarter == *quarter))
            .collect();
        let ends: Vec<NaiveDate> = quarters.iter().map(|(_, end)| *end).collect();
        let sums = if ends.is_empty() {
            Vec::new()
        } else {
            facts.store.unit_quarters(q.year, &ends).await?
        };
        let mut all = Vec::new();
        for ((quarter, _), units) in quarters.iter().zip(&sums) {
            let of_quarter: Vec<_> = rows.iter().filter(|r| r.quarter == *quarter).collect();
            all.extend(rate_mismatch(self, q.year, *quarter, &of_quarter, units));
        }
        Ok(all)
    }
}

/// The last day of quarter `q` of `year`.
pub fn quarter_end(year: i32, q: i64) -> Option<NaiveDate> {
    let month = u32::try_from(q).ok().filter(|q| (1..=4).contains(q))? * 3;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    next.map(|d| d - Duration::days(1))
}

/// `orgdept.rate_mismatch` for one quarter.
pub fn rate_mismatch(
    c: &RateMismatch,
    year: i32,
    quarter: i64,
    rows: &[&OrgdeptFact],
    units: &[UnitQuarterFact],
) -> Vec<Finding> {
    let rule = RuleId::RateMismatch;
    let Some(end) = quarter_end(year, quarter) else {
        return vec![];
    };
    let sums: BTreeMap<&str, &UnitQuarterFact> =
        units.iter().map(|u| (u.unit_code.as_str(), u)).collect();
    let mut out = Vec::new();
    for r in rows {
        let (quota_fen, exp_fen) = sums
            .get(r.unit_code.as_str())
            .map_or((Fen::ZERO, Fen::ZERO), |u| (u.quota, u.exp));
        if quota_fen <= Fen::ZERO {
            continue; // the computed rate is undefined
        }
        let (quota, exp) = (quota_fen.0 as i128, exp_fen.0 as i128);
        // |r/100 − 100·exp/quota| > t/100 (r, t in hundredths of pp):
        // |r·quota − 10000·exp| > t·quota.
        let lhs = (r.reported_rate.0 as i128 * quota - 10_000 * exp).abs();
        if lhs <= c.tolerance_pp.0 as i128 * quota {
            continue;
        }
        let computed = percent(exp, quota);
        let reported = r.reported_rate.to_string();
        let gap = hundredths(lhs, quota);
        out.push(open_finding(
            rule,
            Severity::Warning,
            vec![Agency::Orgdept, Agency::Finance],
            Some(&r.unit_code),
            None,
            View {
                subject: json!({"rule": rule.as_str(), "unit": r.unit_code, "year": year, "quarter": quarter}),
                summary: format!(
                    "单位{}{year}年第{quarter}季度自报预算执行率{reported}%，按财政数据计算为{computed}%，相差{gap}个百分点，请组织部与财政局核实考评数据。",
                    r.unit_code
                ),
                facts: json!({
                    "unit": r.unit_code, "year": year, "quarter": quarter, "quarter_end": end,
                    "reported_rate_pct": reported, "computed_rate_pct": computed, "gap_pp": gap,
                    "quota_to_quarter_end": yuan(quota_fen), "expenditure_to_quarter_end": yuan(exp_fen),
                }),
                sources: vec![SourceRef::new(Agency::Orgdept, "evaluations", &r.key)],
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarter_ends() {
        assert_eq!(quarter_end(2021, 1), NaiveDate::from_ymd_opt(2021, 3, 31));
        assert_eq!(quarter_end(2024, 4), NaiveDate::from_ymd_opt(2024, 12, 31));
        assert_eq!(quarter_end(2021, 5), None);
    }
}
