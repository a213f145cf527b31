//! `disbursement.*`: how finance pays a quota out, and whether units spend
//! what they were paid.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::Duration;
use serde_json::json;

use super::shared::{is_active, on_project, yuan};
use crate::model::Agency;
use crate::money::Fen;
use crate::reconcile::config::{Yuan, rule_settings};
use crate::reconcile::finding::{Finding, RuleId, Severity, SourceRef};
use crate::reconcile::rule::{Facts, ProjectRule, Reads, Rule};
use crate::store::StoreError;
use crate::store::facts::{FactsQuery, ProjectFacts, TrancheFact};

rule_settings! {
    /// `disbursement.lump_sum`.
    LumpSum {
        /// Full-year projects from this quota on must be paid in tranches.
        large_quota: Yuan = Yuan(Fen(500_000_000)),
        /// The fewest tranches that may reach the quota.
        min_tranches: i64 = 3,
    }
}

impl ProjectRule for LumpSum {
    /// `disbursement.lump_sum`.
    fn judge_projects(&self, q: &FactsQuery, projects: &[ProjectFacts]) -> Vec<Finding> {
        projects
            .iter()
            .filter(|p| {
                is_active(p)
                    && p.full_year
                    && p.quota >= self.large_quota.0
                    && p.alloc >= p.quota
                    && p.nalloc < self.min_tranches
            })
            .map(|p| {
                on_project(
                    RuleId::LumpSum,
                    q.year,
                    p,
                    Severity::Warning,
                    vec![Agency::Finance],
                    format!(
                        "全年项目{}指标{}元已分{}笔拨付{}元，少于三三制要求的{}笔，请财政局按进度分批拨款。",
                        p.project_code, p.quota, p.nalloc, p.alloc, self.min_tranches
                    ),
                    json!({
                        "project": p.project_code, "year": q.year,
                        "quota": yuan(p.quota), "allocated": yuan(p.alloc), "tranches": p.nalloc,
                        "min_tranches": self.min_tranches,
                    }),
                )
            })
            .collect()
    }
}

rule_settings! {
    /// `disbursement.tranche_unsettled`.
    TrancheUnsettled {
        /// Days a unit has to spend a tranche.
        settle_days: i64 = 90,
    }
}

#[async_trait]
impl Rule for TrancheUnsettled {
    fn reads(&self) -> Reads {
        Reads::Projects
    }

    async fn judge(&self, facts: &Facts<'_>) -> Result<Vec<Finding>, StoreError> {
        let q = &facts.query;
        let before = q.as_of - Duration::days(self.settle_days + 1);
        let rows = facts
            .store
            .unsettled_tranches(q, before, &facts.range)
            .await?;
        let projects: BTreeMap<&str, &ProjectFacts> = facts
            .projects()
            .iter()
            .map(|p| (p.project_code.as_str(), p))
            .collect();
        Ok(tranche_unsettled(self, q, &rows, &projects))
    }
}

/// `disbursement.tranche_unsettled`: the oldest unsettled tranche per project.
pub fn tranche_unsettled(
    c: &TrancheUnsettled,
    q: &FactsQuery,
    tranches: &[TrancheFact],
    projects: &BTreeMap<&str, &ProjectFacts>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut last: Option<&str> = None;
    for t in tranches {
        if last == Some(t.project_code.as_str()) {
            continue; // oldest first: the first row of a project is the one
        }
        let Some(p) = projects
            .get(t.project_code.as_str())
            .filter(|p| is_active(p))
        else {
            continue;
        };
        last = Some(&t.project_code);
        let deadline = t.paid_on + Duration::days(c.settle_days);
        let mut finding = on_project(
            RuleId::TrancheUnsettled,
            q.year,
            p,
            Severity::Warning,
            vec![Agency::Finance],
            format!(
                "项目{}于{}拨付的一笔{}元款项超过{}天仍未支出完毕（累计拨款{}元，累计支出{}元），请预算单位尽快使用。",
                t.project_code, t.paid_on, t.amount, c.settle_days, t.cumulative, t.exp
            ),
            json!({
                "project": t.project_code, "year": q.year, "as_of": q.as_of,
                "payment_id": t.payment_id, "paid_on": t.paid_on, "tranche_amount": yuan(t.amount),
                "allocated_to_date": yuan(t.cumulative), "expenditure": yuan(t.exp),
                "settle_by": deadline,
            }),
        );
        finding.view.sources.insert(
            0,
            SourceRef::new(Agency::Finance, "payments", &t.payment_id),
        );
        out.push(finding);
    }
    out
}
