//! `evaluation.*`: whether a poor evaluation leads to a smaller quota.

use serde_json::json;

use super::shared::{on_project, yuan};
use crate::model::Agency;
use crate::money::{Fen, format_fixed};
use crate::reconcile::config::{Hundredths, rule_settings};
use crate::reconcile::finding::{Finding, RuleId, Severity, SourceRef};
use crate::reconcile::rule::ProjectRule;
use crate::store::facts::{FactsQuery, ProjectFacts};

rule_settings! {
    /// `evaluation.result_unapplied`.
    ResultUnapplied {
        /// Evaluation scores below this must lead to a cut.
        below_score: Hundredths = Hundredths(8000),
        /// The cut, in percent of last year's quota.
        cut_percent: Hundredths = Hundredths(1000),
    }
}

impl ProjectRule for ResultUnapplied {
    /// `evaluation.result_unapplied`.
    fn judge_projects(&self, q: &FactsQuery, projects: &[ProjectFacts]) -> Vec<Finding> {
        let mut out = Vec::new();
        for p in projects {
            let (Some(score), Some(evaluation)) = (p.prev_score, p.prev_evaluation.as_deref())
            else {
                continue;
            };
            if score.0 >= self.below_score.0 || p.quota_prev <= Fen::ZERO {
                continue;
            }
            // initial > (1 − cut) · quota_prev, cut in hundredths of a percent:
            // 10000·initial > (10000 − cut)·quota_prev.
            let keep = 10_000 - self.cut_percent.0 as i128;
            if (p.initial.0 as i128) * 10_000 <= keep * p.quota_prev.0 as i128 {
                continue;
            }
            let ceiling = Fen((keep * p.quota_prev.0 as i128 / 10_000) as i64);
            let cut = format_fixed(self.cut_percent.0, 2);
            let mut finding = on_project(
                RuleId::ResultUnapplied,
                q.year,
                p,
                Severity::Warning,
                vec![Agency::Finance, Agency::Npc],
                format!(
                    "项目{}上年绩效评价{}分（低于良），本年初始指标{}元未按规定比上年{}元压减{cut}%，请财政局落实评价结果。",
                    p.project_code, score, p.initial, p.quota_prev
                ),
                json!({
                    "project": p.project_code, "year": q.year, "evaluated_year": q.year - 1,
                    "evaluation_id": evaluation, "score": score.to_string(),
                    "previous_quota": yuan(p.quota_prev), "initial_quota": yuan(p.initial),
                    "cut_percent": cut, "ceiling": yuan(ceiling),
                }),
            );
            finding.view.sources.insert(
                0,
                SourceRef::new(Agency::Finance, "evaluations", evaluation),
            );
            out.push(finding);
        }
        out
    }
}
