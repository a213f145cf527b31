//! `referral.*`: discipline's freezes against finance's payments. The one
//! confidential family: its findings rest on discipline data, which only
//! discipline sees whole; finance sees a redacted view.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::shared::yuan;
use crate::model::Agency;
use crate::money::Fen;
use crate::reconcile::config::rule_settings;
use crate::reconcile::finding::{Finding, RuleId, Severity, SourceRef, View};
use crate::reconcile::rule::{Allowed, Facts, Rule};
use crate::store::StoreError;
use crate::store::facts::{FactsQuery, FreezeFact};

rule_settings! {
    /// `referral.freeze_breach`.
    FreezeBreach {}
}

#[async_trait]
impl Rule for FreezeBreach {
    fn allowed(&self) -> Option<Allowed> {
        Some(Allowed {
            agencies: &[Agency::Discipline, Agency::Finance],
            described: "only discipline, and finance redacted",
        })
    }

    async fn judge(&self, facts: &Facts<'_>) -> Result<Vec<Finding>, StoreError> {
        let rows = facts.store.freeze_breaches(facts.query.as_of).await?;
        Ok(freeze_breach(&facts.query, &rows))
    }
}

/// `referral.freeze_breach`: discipline sees everything; finance sees only
/// the project codes, payment ids, amounts, dates and the freeze date.
pub fn freeze_breach(q: &FactsQuery, rows: &[FreezeFact]) -> Vec<Finding> {
    let rule = RuleId::FreezeBreach;
    let mut by_referral: BTreeMap<&str, Vec<&FreezeFact>> = BTreeMap::new();
    for r in rows {
        by_referral.entry(&r.referral_id).or_default().push(r);
    }
    let mut out = Vec::new();
    for (referral, payments) in by_referral {
        let Some(first) = payments.first() else {
            continue;
        };
        let total: Fen = payments.iter().map(|p| p.amount).sum();
        let mut projects: Vec<&str> = payments
            .iter()
            .map(|p| p.payment_project.as_str())
            .collect();
        projects.sort_unstable();
        projects.dedup();
        let full_payments: Vec<Value> = payments
            .iter()
            .map(|p| {
                json!({"payment_id": p.payment_id, "project": p.payment_project, "kind": p.kind,
                       "amount": yuan(p.amount), "paid_on": p.paid_on})
            })
            .collect();
        let bare_payments: Vec<Value> = payments
            .iter()
            .map(|p| {
                json!({"payment_id": p.payment_id, "project": p.payment_project,
                       "amount": yuan(p.amount), "paid_on": p.paid_on})
            })
            .collect();
        let payment_sources: Vec<SourceRef> = payments
            .iter()
            .map(|p| SourceRef::new(Agency::Finance, "payments", &p.payment_id))
            .collect();
        let scope = match &first.referral_project {
            Some(p) => format!("项目{p}"),
            None => format!("单位{}的全部项目", first.unit_code),
        };
        let view = View {
            subject: json!({"rule": rule.as_str(), "referral": referral}),
            summary: format!(
                "问题线索{referral}涉及的{scope}自{}起已冻结，但此后仍发生支付{}笔共{}元，请纪委监委核查并督促财政局停止支付。",
                first.freeze_from,
                payments.len(),
                total
            ),
            facts: json!({
                "referral_id": referral, "unit_code": first.unit_code,
                "project": first.referral_project, "status": first.status,
                "received_on": first.received_on, "origin": first.origin,
                "freeze_from": first.freeze_from, "payments": full_payments,
                "payment_count": payments.len(), "total": yuan(total), "as_of": q.as_of,
            }),
            sources: std::iter::once(SourceRef::new(Agency::Discipline, "referrals", referral))
                .chain(payment_sources.clone())
                .collect(),
        };
        let redacted = View {
            subject: json!({"rule": rule.as_str(), "projects": projects}),
            summary: format!(
                "项目{}的资金自{}起已冻结，但此后仍发生支付{}笔共{}元，请财政局立即停止支付并核查。",
                projects.join("、"),
                first.freeze_from,
                payments.len(),
                total
            ),
            facts: json!({
                "projects": projects, "freeze_from": first.freeze_from,
                "payments": bare_payments, "total": yuan(total),
            }),
            sources: payment_sources,
        };
        out.push(Finding {
            rule,
            severity: Severity::Critical,
            recipients: vec![Agency::Discipline, Agency::Finance],
            unit_code: Some(first.unit_code.clone()),
            project_code: first.referral_project.clone(),
            confidential: true,
            view,
            redacted: Some(redacted),
        });
    }
    out
}
