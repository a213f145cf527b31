//! `budget.*`: what the congress approved against what finance gave out.

use serde_json::{Value, json};

use super::shared::{on_project, yuan};
use crate::model::Agency;
use crate::money::Fen;
use crate::reconcile::config::{Hundredths, Yuan, rule_settings};
use crate::reconcile::finding::{Finding, RuleId, Severity, SourceRef};
use crate::reconcile::rule::ProjectRule;
use crate::store::facts::{FactsQuery, ProjectFacts};

rule_settings! {
    /// `budget.approved_mismatch`.
    ApprovedMismatch {
        /// Differences up to this many yuan are not reported.
        tolerance: Yuan = Yuan(Fen(0)),
        /// Critical when the difference reaches this percentage of the larger side…
        critical_percent: Hundredths = Hundredths(100),
        /// …or this many yuan.
        critical_amount: Yuan = Yuan(Fen(100_000_000)),
    }
}

impl ProjectRule for ApprovedMismatch {
    /// `budget.approved_mismatch`.
    fn judge_projects(&self, q: &FactsQuery, projects: &[ProjectFacts]) -> Vec<Finding> {
        let mut out = Vec::new();
        for p in projects {
            let finance = (p.quota_rows > 0).then_some(p.quota);
            let (npc, fin) = match (p.npc_approved, finance) {
                (None, None) => continue,
                (None, Some(f)) if f <= Fen::ZERO => continue,
                pair => pair,
            };
            let diff = npc.unwrap_or_default() - fin.unwrap_or_default();
            let one_side_missing = npc.is_none() || fin.is_none();
            if !one_side_missing && diff.abs() <= self.tolerance.0 {
                continue;
            }
            let larger = npc
                .unwrap_or_default()
                .abs()
                .max(fin.unwrap_or_default().abs())
                .0 as i128;
            let critical = (diff.abs().0 as i128) * 10_000
                >= larger * self.critical_percent.0 as i128
                || diff.abs() >= self.critical_amount.0;
            let severity = if critical {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let shown = |v: Option<Fen>| v.map(yuan).unwrap_or(Value::Null);
            let summary = match (npc, fin) {
                (Some(a), None) => format!(
                    "项目{}（{}年度）人大已批准{a}元，但财政局没有下达该项目指标，请财政局与人大预算工委核对。",
                    p.project_code, q.year
                ),
                (None, Some(f)) => format!(
                    "项目{}（{}年度）财政局已下达指标{f}元，但人大没有该项目的批准数，请财政局与人大预算工委核对。",
                    p.project_code, q.year
                ),
                (Some(a), Some(f)) => format!(
                    "项目{}（{}年度）人大批准数{a}元与财政指标{f}元不一致，相差{}元，请财政局与人大预算工委核对。",
                    p.project_code,
                    q.year,
                    diff.abs()
                ),
                (None, None) => continue,
            };
            let mut finding = on_project(
                RuleId::ApprovedMismatch,
                q.year,
                p,
                severity,
                vec![Agency::Npc, Agency::Finance],
                summary,
                json!({
                    "project": p.project_code, "year": q.year,
                    "npc_approved": shown(npc), "finance_quota": shown(fin),
                    "difference": yuan(diff),
                }),
            );
            // The congress's record first; finance's only if finance holds one.
            let finance_source = finding.view.sources.pop().filter(|_| p.in_finance);
            finding.view.sources = p
                .npc_key
                .iter()
                .map(|k| SourceRef::new(Agency::Npc, "budgets", k))
                .chain(finance_source)
                .collect();
            out.push(finding);
        }
        out
    }
}
