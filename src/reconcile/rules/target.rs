//! `target.*`: performance targets that special funds must have.

use serde_json::json;

use super::shared::{is_active, on_project, yuan};
use crate::model::{Agency, ProjectCategory};
use crate::reconcile::config::rule_settings;
use crate::reconcile::finding::{Finding, RuleId, Severity};
use crate::reconcile::rule::ProjectRule;
use crate::store::facts::{FactsQuery, ProjectFacts};

rule_settings! {
    /// `target.missing`.
    TargetMissing {}
}

impl ProjectRule for TargetMissing {
    /// `target.missing`.
    fn judge_projects(&self, q: &FactsQuery, projects: &[ProjectFacts]) -> Vec<Finding> {
        projects
            .iter()
            .filter(|p| {
                is_active(p) && p.category == Some(ProjectCategory::Special) && p.targets == 0
            })
            .map(|p| {
                on_project(
                    RuleId::TargetMissing,
                    q.year,
                    p,
                    Severity::Warning,
                    vec![Agency::Finance, Agency::Npc],
                    format!(
                        "专项资金项目{}（{}年度）已下达指标{}元但没有绩效目标，请财政局督促预算单位补报绩效目标。",
                        p.project_code, q.year, p.quota
                    ),
                    json!({
                        "project": p.project_code, "year": q.year, "category": "special",
                        "quota": yuan(p.quota), "targets": 0,
                    }),
                )
            })
            .collect()
    }
}
