//! `execution.*`: how the year's spending goes, and whether finance reports
//! it to the congress as it is.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::Datelike;
use serde_json::json;

use super::shared::{
    active_from, days_in_year, hundredths, on_project, open_finding, percent, project_subject, yuan,
};
use crate::model::Agency;
use crate::money::Fen;
use crate::reconcile::config::{Hundredths, MonthDay, Yuan, rule_settings};
use crate::reconcile::finding::{Finding, RuleId, Severity, SourceRef, View};
use crate::reconcile::rule::{Facts, ProjectRule, Rule};
use crate::store::StoreError;
use crate::store::facts::{FactsQuery, MirrorFact, ProjectFacts};

rule_settings! {
    /// `execution.mirror_mismatch`.
    MirrorMismatch {
        /// Differences up to this many yuan are not reported.
        tolerance: Yuan = Yuan(Fen(0)),
    }
}

#[async_trait]
impl Rule for MirrorMismatch {
    // The whole year in one query (a slice of it would scan the
    // execution table again); only the differing rows come back.
    async fn judge(&self, facts: &Facts<'_>) -> Result<Vec<Finding>, StoreError> {
        let rows = facts
            .store
            .mirror_mismatches(&facts.query, self.tolerance.0)
            .await?;
        Ok(mirror_mismatch(&facts.query, &rows))
    }
}

/// `execution.mirror_mismatch`: one finding per project-year, showing the
/// newest month-end that differs.
pub fn mirror_mismatch(q: &FactsQuery, rows: &[MirrorFact]) -> Vec<Finding> {
    let rule = RuleId::MirrorMismatch;
    let mut by_project: BTreeMap<&str, Vec<&MirrorFact>> = BTreeMap::new();
    for r in rows {
        by_project.entry(&r.project_code).or_default().push(r);
    }
    by_project
        .into_iter()
        .filter_map(|(project, rows)| {
            let last = rows.iter().max_by_key(|r| r.as_of)?;
            let diff = last.reported - last.exp;
            Some(open_finding(
                rule,
                Severity::Warning,
                vec![Agency::Npc, Agency::Finance],
                last.unit_code.as_deref(),
                Some(project),
                View {
                    subject: project_subject(rule, project, q.year),
                    summary: format!(
                        "项目{project}截至{}报送人大的累计支出{}元与财政支付记录{}元不一致，相差{}元，请财政局核实后更正报送数据。",
                        last.as_of,
                        last.reported,
                        last.exp,
                        diff.abs()
                    ),
                    facts: json!({
                        "project": project, "year": q.year, "as_of": last.as_of,
                        "npc_reported": yuan(last.reported), "finance_expenditure": yuan(last.exp),
                        "difference": yuan(diff), "months_differing": rows.len(),
                    }),
                    sources: rows
                        .iter()
                        .map(|r| SourceRef::new(Agency::Npc, "execution", &r.key))
                        .chain([SourceRef::new(Agency::Finance, "projects", project)])
                        .collect(),
                },
            ))
        })
        .collect()
}

rule_settings! {
    /// `execution.slow`.
    Slow {
        /// Projects with a smaller quota are not judged.
        min_quota: Yuan = Yuan(Fen(10_000_000)),
        /// Not judged before this day of the year (`MM-DD`).
        start: MonthDay = MonthDay { month: 3, day: 1 },
        /// Warning when time progress leads execution progress by this many pp…
        warning_gap_pp: Hundredths = Hundredths(1500),
        /// …critical from this many.
        critical_gap_pp: Hundredths = Hundredths(3000),
    }
}

impl ProjectRule for Slow {
    /// `execution.slow`.
    fn judge_projects(&self, q: &FactsQuery, projects: &[ProjectFacts]) -> Vec<Finding> {
        let Some(start) = self.start.in_year(q.year) else {
            return vec![];
        };
        if q.as_of < start {
            return vec![];
        }
        let doy = q.as_of.ordinal() as i128;
        let diy = days_in_year(q.year);
        let mut out = Vec::new();
        for p in active_from(projects, self.min_quota.0) {
            let (quota, exp) = (p.quota.0 as i128, p.exp.0 as i128);
            // gap (pp) = 100·(doy/diy − exp/quota); compare gap ≥ T/100 exactly:
            // 10000·(doy·quota − exp·diy) ≥ T·diy·quota.
            let lead = 10_000 * (doy * quota - exp * diy);
            let reaches = |t: Hundredths| lead >= t.0 as i128 * diy * quota;
            let severity = if reaches(self.critical_gap_pp) {
                Severity::Critical
            } else if reaches(self.warning_gap_pp) {
                Severity::Warning
            } else {
                continue;
            };
            let recipients = match severity {
                Severity::Critical => vec![Agency::Finance, Agency::Npc, Agency::Orgdept],
                Severity::Warning => vec![Agency::Finance],
            };
            let gap = hundredths(lead, diy * quota);
            let exec = percent(exp, quota);
            let time = percent(doy, diy);
            out.push(on_project(
                RuleId::Slow,
                q.year,
                p,
                severity,
                recipients,
                format!(
                    "项目{}截至{}预算执行进度{exec}%，落后时间进度{time}%达{gap}个百分点，请预算单位加快支出进度。",
                    p.project_code, q.as_of
                ),
                json!({
                    "project": p.project_code, "year": q.year, "as_of": q.as_of,
                    "quota": yuan(p.quota), "expenditure": yuan(p.exp),
                    "execution_progress_pct": exec, "time_progress_pct": time, "gap_pp": gap,
                }),
            ));
        }
        out
    }
}
