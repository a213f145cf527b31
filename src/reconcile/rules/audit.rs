//! `audit.*`: whether audit findings are rectified, and whether audit's
//! ledger says what finance was told.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::Duration;
use serde_json::json;

use super::shared::{on_audit_finding, yuan};
use crate::model::{Agency, FindingStatus, RectificationStatus};
use crate::reconcile::config::rule_settings;
use crate::reconcile::finding::{Finding, RuleId, Severity, SourceRef};
use crate::reconcile::rule::{Facts, Rule};
use crate::store::StoreError;
use crate::store::facts::{FactsQuery, FindingFact, RectificationFact};

/// How a clerk reads audit's status of a finding.
fn status_word(status: FindingStatus) -> &'static str {
    match status {
        FindingStatus::Open => "未整改",
        FindingStatus::InProgress => "整改中",
        FindingStatus::Rectified => "已整改",
    }
}

rule_settings! {
    /// `audit.status_mismatch`.
    StatusMismatch {
        /// Days the audit office has to confirm a rectification finance recorded.
        grace_days: i64 = 30,
    }
}

#[async_trait]
impl Rule for StatusMismatch {
    async fn judge(&self, facts: &Facts<'_>) -> Result<Vec<Finding>, StoreError> {
        let findings = facts.audit_findings().await?;
        let reports = facts.store.rectifications().await?;
        Ok(status_mismatch(self, &facts.query, findings, &reports))
    }
}

/// `audit.status_mismatch`.
pub fn status_mismatch(
    c: &StatusMismatch,
    q: &FactsQuery,
    findings: &[FindingFact],
    reports: &[RectificationFact],
) -> Vec<Finding> {
    let cutoff = q.as_of - Duration::days(c.grace_days);
    let open: BTreeMap<&str, &FindingFact> = findings
        .iter()
        .filter(|f| f.status != FindingStatus::Rectified)
        .map(|f| (f.finding_no.as_str(), f))
        .collect();
    let mut out = Vec::new();
    let mut done: Option<&str> = None;
    // Reports come ordered by finding and date: the earliest qualifying one
    // per finding is named.
    for r in reports
        .iter()
        .filter(|r| r.status == RectificationStatus::Rectified && r.reported_on <= cutoff)
    {
        if done == Some(r.finding_no.as_str()) {
            continue;
        }
        let Some(f) = open.get(r.finding_no.as_str()) else {
            continue;
        };
        done = Some(&r.finding_no);
        let mut finding = on_audit_finding(
            RuleId::StatusMismatch,
            f,
            Severity::Warning,
            vec![Agency::Audit, Agency::Finance],
            format!(
                "审计问题{}已于{}向财政报告整改完成，但审计局最新台账仍为“{}”，请审计局与财政局核对整改情况。",
                f.finding_no,
                r.reported_on,
                status_word(f.status)
            ),
            json!({
                "finding_no": f.finding_no, "audit_status": f.status,
                "report_id": r.report_id, "reported_on": r.reported_on,
                "grace_days": c.grace_days, "as_of": q.as_of,
            }),
        );
        finding.view.sources.push(SourceRef::new(
            Agency::Finance,
            "rectifications",
            &r.report_id,
        ));
        out.push(finding);
    }
    out
}

rule_settings! {
    /// `audit.overdue`.
    Overdue {
        /// Critical (and sent to discipline) when more than this many days overdue.
        critical_after_days: i64 = 90,
    }
}

#[async_trait]
impl Rule for Overdue {
    async fn judge(&self, facts: &Facts<'_>) -> Result<Vec<Finding>, StoreError> {
        Ok(overdue(self, &facts.query, facts.audit_findings().await?))
    }
}

/// `audit.overdue`.
pub fn overdue(c: &Overdue, q: &FactsQuery, findings: &[FindingFact]) -> Vec<Finding> {
    findings
        .iter()
        .filter(|f| f.status != FindingStatus::Rectified && f.deadline < q.as_of)
        .map(|f| {
            let days = (q.as_of - f.deadline).num_days();
            let critical = days > c.critical_after_days;
            let (severity, recipients) = if critical {
                (Severity::Critical, vec![Agency::Audit, Agency::Finance, Agency::Discipline])
            } else {
                (Severity::Warning, vec![Agency::Audit, Agency::Finance])
            };
            on_audit_finding(
                RuleId::Overdue,
                f,
                severity,
                recipients,
                format!(
                    "{}的审计问题{}（涉及{}元）整改期限{}已过{days}天仍为“{}”，请督促被审计单位整改到位。",
                    f.unit_name,
                    f.finding_no,
                    f.amount,
                    f.deadline,
                    status_word(f.status)
                ),
                json!({
                    "finding_no": f.finding_no, "unit_name": f.unit_name, "unit_code": f.unit_code,
                    "project": f.project_code, "amount": yuan(f.amount), "status": f.status,
                    "deadline": f.deadline, "days_overdue": days, "as_of": q.as_of,
                }),
            )
        })
        .collect()
}
