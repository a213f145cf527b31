//! `payment.*`: payments beyond what the quota allows.

use serde_json::json;

use super::shared::{on_project, yuan};
use crate::model::Agency;
use crate::reconcile::config::rule_settings;
use crate::reconcile::finding::{Finding, RuleId, Severity};
use crate::reconcile::rule::ProjectRule;
use crate::store::facts::{FactsQuery, ProjectFacts};

rule_settings! {
    /// `payment.over_quota`.
    OverQuota {}
}

impl ProjectRule for OverQuota {
    /// `payment.over_quota`.
    fn judge_projects(&self, q: &FactsQuery, projects: &[ProjectFacts]) -> Vec<Finding> {
        projects
            .iter()
            .filter(|p| p.exp > p.quota || p.alloc > p.quota)
            .map(|p| {
                let excess = p.exp.max(p.alloc) - p.quota;
                on_project(
                    RuleId::OverQuota,
                    q.year,
                    p,
                    Severity::Critical,
                    vec![Agency::Finance, Agency::Npc, Agency::Audit],
                    format!(
                        "项目{}（{}年度）指标{}元，已拨款{}元、已支出{}元，超出指标{}元，请财政局立即核查并纠正。",
                        p.project_code, q.year, p.quota, p.alloc, p.exp, excess
                    ),
                    json!({
                        "project": p.project_code, "year": q.year, "as_of": q.as_of,
                        "quota": yuan(p.quota), "allocated": yuan(p.alloc), "expenditure": yuan(p.exp),
                        "excess": yuan(excess),
                    }),
                )
            })
            .collect()
    }
}
