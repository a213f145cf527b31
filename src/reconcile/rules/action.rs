//! `action.*`: the actions agencies took, followed through in finance's
//! data (`RULES.md` § Actions). Judged as of `D`: only actions taken on or
//! before `D` count, a withdrawn one not from its withdrawal's day, and
//! only finance's records dated on or before `D`. The subject of each
//! finding is (rule, action); its facts hold the action's id, day and
//! amount beside what finance's data shows.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use async_trait::async_trait;
use chrono::{Duration, NaiveDate};
use serde_json::{Value, json};

use super::shared::{open_finding, yuan};
use crate::action::ledger::{self, FreezeWindow};
use crate::action::view::audience;
use crate::model::{Action, ActionKind, Agency, ProjectCode, QuotaKind, Source};
use crate::money::Fen;
use crate::reconcile::config::rule_settings;
use crate::reconcile::finding::{Finding, RuleId, Severity, SourceRef, View};
use crate::reconcile::rule::{Facts, Reads, Rule};
use crate::store::StoreError;
use crate::store::actions::{PaymentFact, QuotaMove};

rule_settings! {
    /// `action.freeze_breach`.
    FreezeBreach {}
}

rule_settings! {
    /// `action.reclaim_unapplied`.
    ReclaimUnapplied {
        /// Days after a reclaim is taken that finance has to show it in its
        /// quota rows.
        apply_days: i64 = 15,
    }
}

rule_settings! {
    /// `action.revive_unapplied`.
    ReviveUnapplied {
        /// Days after a revive is taken that finance has to show it as an
        /// adjustment of the receiving project.
        apply_days: i64 = 15,
    }
}

rule_settings! {
    /// `action.warn_unanswered`.
    WarnUnanswered {
        /// Days past the deadline after which it is critical.
        critical_days: i64 = 30,
    }
}

fn subject(rule: RuleId, action: &Action) -> Value {
    json!({"rule": rule.as_str(), "action": action.action_id})
}

fn action_source(action: &Action) -> SourceRef {
    SourceRef::new(Source::Liankong, "actions", &action.action_id)
}

/// The unit of each project with actions in the year.
async fn units(facts: &Facts<'_>) -> Result<BTreeMap<String, String>, StoreError> {
    Ok(facts
        .store
        .action_projects(facts.query.year)
        .await?
        .into_iter()
        .filter_map(|p| Some((p.project_code, p.unit_code?)))
        .collect())
}

/// The projects that counted actions of `kind` name, in code order.
fn projects_of(counted: &[&Action], kind: ActionKind) -> BTreeSet<ProjectCode> {
    counted
        .iter()
        .filter(|a| a.kind == kind)
        .map(|a| a.project_code.clone())
        .collect()
}

#[async_trait]
impl Rule for FreezeBreach {
    async fn judge(&self, facts: &Facts<'_>) -> Result<Vec<Finding>, StoreError> {
        let q = facts.query;
        let actions = facts.actions().await?;
        let counted = ledger::counted(actions, q.as_of);
        if !counted.iter().any(|a| a.kind == ActionKind::Freeze) {
            return Ok(Vec::new());
        }
        let payments = facts.store.frozen_project_payments(q.year, q.as_of).await?;
        let units = units(facts).await?;
        let mut out = Vec::new();
        for project in projects_of(&counted, ActionKind::Freeze) {
            let paid: Vec<&PaymentFact> = payments
                .iter()
                .filter(|p| p.project_code == project.as_str())
                .collect();
            for window in ledger::freeze_windows(&counted, &project, q.year) {
                let breaches: Vec<&PaymentFact> = paid
                    .iter()
                    .copied()
                    .filter(|p| window.contains(p.paid_on))
                    .collect();
                if !breaches.is_empty() {
                    out.push(freeze_breach(
                        &window,
                        &breaches,
                        units.get(project.as_str()),
                        q.as_of,
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// `action.freeze_breach`: one finding per freeze, every breaching payment.
fn freeze_breach(
    w: &FreezeWindow<'_>,
    breaches: &[&PaymentFact],
    unit: Option<&String>,
    as_of: NaiveDate,
) -> Finding {
    let rule = RuleId::ActionFreezeBreach;
    let f = w.freeze;
    let total: Fen = breaches.iter().map(|p| p.amount).sum();
    let payments: Vec<Value> = breaches
        .iter()
        .map(|p| json!({"payment_id": p.payment_id, "kind": p.kind, "amount": yuan(p.amount), "paid_on": p.paid_on}))
        .collect();
    let view = View {
        subject: subject(rule, f),
        summary: format!(
            "财政局已于{}冻结项目{}（操作{}），但冻结期间仍发生支付{}笔共{}元，请财政局立即停止支付并核查。",
            w.from,
            f.project_code,
            f.action_id,
            breaches.len(),
            total
        ),
        facts: json!({
            "action_id": f.action_id, "project": f.project_code, "year": f.year,
            "taken_on": f.taken_on, "effective_on": w.from, "frozen_until": w.until,
            "payments": payments, "payment_count": breaches.len(), "total": yuan(total),
            "as_of": as_of,
        }),
        sources: std::iter::once(action_source(f))
            .chain(
                breaches
                    .iter()
                    .map(|p| SourceRef::new(Agency::Finance, "payments", &p.payment_id)),
            )
            .collect(),
    };
    use Agency::*;
    open_finding(
        rule,
        Severity::Critical,
        vec![Finance, Npc, Audit, Discipline],
        unit.map(String::as_str),
        Some(f.project_code.as_str()),
        view,
    )
}

/// Finance's rows that show reclaims of a project (its `reclaim` quota
/// rows) or revives into it (its positive `adjustment` rows).
fn rows(moves: &[QuotaMove], project: &ProjectCode, kind: ActionKind) -> Vec<(NaiveDate, Fen)> {
    moves
        .iter()
        .filter(|m| m.project_code == project.as_str())
        .filter(|m| match kind {
            ActionKind::Reclaim => m.kind == QuotaKind::Reclaim,
            _ => m.kind == QuotaKind::Adjustment && m.amount > Fen::ZERO,
        })
        .map(|m| (m.approved_on, m.amount))
        .collect()
}

/// `action.reclaim_unapplied` and `action.revive_unapplied`: every action
/// of `kind` not applied as of `D` more than `apply_days` after it was taken.
async fn unapplied(
    facts: &Facts<'_>,
    rule: RuleId,
    kind: ActionKind,
    apply_days: i64,
) -> Result<Vec<Finding>, StoreError> {
    let q = facts.query;
    let actions = facts.actions().await?;
    let counted = ledger::counted(actions, q.as_of);
    let projects = projects_of(&counted, kind);
    if projects.is_empty() {
        return Ok(Vec::new());
    }
    let moves = facts.store.action_quota_moves(q.year).await?;
    let units = units(facts).await?;
    let mut out = Vec::new();
    for project in projects {
        let of_kind: Vec<&Action> = counted
            .iter()
            .copied()
            .filter(|a| a.kind == kind && a.project_code == project && a.year == q.year)
            .collect();
        let shown = rows(&moves, &project, kind);
        let application = ledger::application(&of_kind, &shown, q.as_of);
        for step in application.steps.iter().filter(|s| !s.applied) {
            let a = step.action;
            let due_by = a.taken_on + Duration::days(apply_days);
            if q.as_of <= due_by {
                continue;
            }
            let amount = a.amount.unwrap_or(Fen::ZERO);
            let (what, shows) = match kind {
                ActionKind::Reclaim => ("收回", "收回"),
                _ => ("盘活调入", "调增"),
            };
            let view = View {
                subject: subject(rule, a),
                summary: format!(
                    "财政局于{}{}项目{}指标{}元（操作{}），截至{}财政指标数据仅显示{}{}元，累计应{}元，已超过{}天未落实，请财政局核实。",
                    a.taken_on,
                    what,
                    a.project_code,
                    amount,
                    a.action_id,
                    q.as_of,
                    shows,
                    application.shown,
                    step.cumulative,
                    apply_days
                ),
                facts: json!({
                    "action_id": a.action_id, "kind": a.kind, "project": a.project_code,
                    "year": a.year, "taken_on": a.taken_on, "amount": yuan(amount),
                    "cumulative_due": yuan(step.cumulative), "shown": yuan(application.shown),
                    "apply_days": apply_days, "as_of": q.as_of,
                }),
                sources: vec![action_source(a)],
            };
            out.push(open_finding(
                rule,
                Severity::Warning,
                vec![Agency::Finance, Agency::Npc],
                units.get(project.as_str()).map(String::as_str),
                Some(project.as_str()),
                view,
            ));
        }
    }
    Ok(out)
}

#[async_trait]
impl Rule for ReclaimUnapplied {
    async fn judge(&self, facts: &Facts<'_>) -> Result<Vec<Finding>, StoreError> {
        unapplied(
            facts,
            RuleId::ReclaimUnapplied,
            ActionKind::Reclaim,
            self.apply_days,
        )
        .await
    }
}

#[async_trait]
impl Rule for ReviveUnapplied {
    async fn judge(&self, facts: &Facts<'_>) -> Result<Vec<Finding>, StoreError> {
        unapplied(
            facts,
            RuleId::ReviveUnapplied,
            ActionKind::Revive,
            self.apply_days,
        )
        .await
    }
}

#[async_trait]
impl Rule for WarnUnanswered {
    /// Whether a warning's alert is firing as of `D` is whether this
    /// evaluation found its subject again.
    fn reads(&self) -> Reads {
        Reads::Findings
    }

    async fn judge(&self, facts: &Facts<'_>) -> Result<Vec<Finding>, StoreError> {
        let q = facts.query;
        let actions = facts.actions().await?;
        let counted = ledger::counted(actions, q.as_of);
        let overdue: Vec<&Action> = counted
            .iter()
            .copied()
            .filter(|a| a.kind == ActionKind::Warn && a.deadline.is_some_and(|d| q.as_of > d))
            .collect();
        if overdue.is_empty() {
            return Ok(Vec::new());
        }
        let firing: HashSet<String> = facts
            .others()
            .iter()
            .map(|f| f.subject().to_string())
            .collect();
        let warned: BTreeMap<String, _> = facts
            .store
            .warned_alerts(q.year)
            .await?
            .into_iter()
            .map(|a| (a.alert_id.clone(), a))
            .collect();
        let units = units(facts).await?;
        let rule = RuleId::WarnUnanswered;
        let mut out = Vec::new();
        for w in overdue {
            let (Some(deadline), Some(alert)) = (
                w.deadline,
                w.alert_id.as_ref().and_then(|id| warned.get(id)),
            ) else {
                continue;
            };
            if !firing.contains(&alert.subject) {
                continue;
            }
            let late = (q.as_of - deadline).num_days();
            let severity = if late > self.critical_days {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let mut recipients = vec![w.agency, Agency::Finance, Agency::Orgdept];
            recipients.sort();
            recipients.dedup();
            let view = View {
                subject: subject(rule, w),
                summary: format!(
                    "{}于{}就项目{}发出预警函（操作{}），要求{}前整改，已逾期{}天，所涉预警仍未消除，请组织部门督促整改。",
                    agency_name(w.agency),
                    w.taken_on,
                    w.project_code,
                    w.action_id,
                    deadline,
                    late
                ),
                facts: json!({
                    "action_id": w.action_id, "agency": w.agency, "project": w.project_code,
                    "year": w.year, "taken_on": w.taken_on, "deadline": deadline,
                    "days_overdue": late, "alert_id": alert.alert_id, "alert_rule": alert.rule,
                    "as_of": q.as_of,
                }),
                sources: vec![action_source(w)],
            };
            out.push(open_finding(
                rule,
                severity,
                recipients,
                units.get(w.project_code.as_str()).map(String::as_str),
                Some(w.project_code.as_str()),
                view,
            ));
        }
        Ok(out)
    }
}

fn agency_name(a: Agency) -> &'static str {
    match a {
        Agency::Npc => "人大预算工委",
        Agency::Finance => "财政局",
        Agency::Audit => "审计局",
        Agency::Discipline => "纪委监委",
        Agency::Orgdept => "组织部",
    }
}

/// Shows on each finding about a project (not a confidential one, not one
/// about an action) the actions taken on it in its year that count as of
/// `as_of` and that every recipient of the finding may see: no agency
/// learns through an alert of an action not delivered to it.
pub fn show_actions(findings: &mut [Finding], actions: &[Action], as_of: NaiveDate) {
    if actions.is_empty() {
        return;
    }
    let counted = ledger::counted(actions, as_of);
    for f in findings.iter_mut() {
        if f.confidential || f.rule.as_str().starts_with("action.") {
            continue;
        }
        let Some(project) = f.project_code.as_deref() else {
            continue;
        };
        let year = f.view.subject.get("year").and_then(Value::as_i64);
        let shown: Vec<Value> = counted
            .iter()
            .filter(|a| a.project_code.as_str() == project)
            .filter(|a| year.is_none_or(|y| i64::from(a.year) == y))
            .filter(|a| {
                let told = audience(a, None);
                f.recipients.iter().all(|r| told.contains(r))
            })
            .map(|a| {
                json!({"action_id": a.action_id, "kind": a.kind, "agency": a.agency,
                       "taken_on": a.taken_on, "effective_on": a.effective_on,
                       "amount": a.amount.map(yuan), "deadline": a.deadline})
            })
            .collect();
        if !shown.is_empty()
            && let Some(map) = f.view.facts.as_object_mut()
        {
            map.insert("actions".into(), Value::Array(shown));
        }
    }
}
