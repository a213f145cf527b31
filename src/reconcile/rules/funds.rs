//! `funds.*`: money given out and left lying.

use serde_json::json;

use super::shared::{is_active, on_project, yuan};
use crate::model::Agency;
use crate::money::Fen;
use crate::reconcile::config::rule_settings;
use crate::reconcile::finding::{Finding, RuleId, Severity};
use crate::reconcile::rule::ProjectRule;
use crate::store::facts::{FactsQuery, ProjectFacts};

rule_settings! {
    /// `funds.idle`.
    Idle {
        /// Days without expenditure (while a balance remains) before it fires.
        idle_days: i64 = 180,
    }
}

impl ProjectRule for Idle {
    /// `funds.idle`.
    fn judge_projects(&self, q: &FactsQuery, projects: &[ProjectFacts]) -> Vec<Finding> {
        let mut out = Vec::new();
        for p in projects
            .iter()
            .filter(|p| is_active(p) && p.quota - p.exp > Fen::ZERO)
        {
            let Some(since) = p.last_exp_on.or(p.first_initial_on) else {
                continue;
            };
            let days = (q.as_of - since).num_days();
            if days < self.idle_days {
                continue;
            }
            let summary = match p.last_exp_on {
                Some(last) => format!(
                    "项目{}自{last}以来已{days}天没有支出，尚有余额{}元，请财政局督促使用或按规定收回。",
                    p.project_code,
                    p.quota - p.exp
                ),
                None => format!(
                    "项目{}指标自{since}下达以来已{days}天没有任何支出，余额{}元，请财政局督促使用或按规定收回。",
                    p.project_code,
                    p.quota - p.exp
                ),
            };
            out.push(on_project(
                RuleId::Idle,
                q.year,
                p,
                Severity::Warning,
                vec![Agency::Finance, Agency::Audit],
                summary,
                json!({
                    "project": p.project_code, "year": q.year, "as_of": q.as_of,
                    "quota": yuan(p.quota), "expenditure": yuan(p.exp), "balance": yuan(p.quota - p.exp),
                    "last_expenditure_on": p.last_exp_on, "idle_since": since, "idle_days": days,
                }),
            ));
        }
        out
    }
}
