//! The sixteen rules of `RULES.md`, each a pure function from the store's
//! facts and the rule's settings to findings. Every comparison is exact
//! integer arithmetic (fen, days, and percentages cross-multiplied in
//! `i128`); rounding happens only when a number is shown.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};
use serde_json::{Value, json};

use super::config::*;
use super::finding::{Finding, RuleId, Severity, SourceRef, View};
use crate::model::{
    Agency, FindingStatus, ProjectCategory, RectificationStatus, normalize_unit_name,
};
use crate::money::{Fen, format_fixed};
use crate::store::facts::*;

/// Money as facts show it: yuan with 2 places.
pub fn yuan(fen: Fen) -> Value {
    Value::String(fen.to_yuan())
}

/// `num / den` as a percentage with 2 places, rounded half away from zero.
pub fn percent(num: i128, den: i128) -> String {
    hundredths(num * 10_000, den)
}

/// `num / den` in hundredths, shown with 2 places.
fn hundredths(num: i128, den: i128) -> String {
    if den == 0 {
        return "0.00".into();
    }
    let (num, den) = if den < 0 { (-num, -den) } else { (num, den) };
    let half = den / 2;
    let rounded = if num >= 0 {
        (num + half) / den
    } else {
        -((-num + half) / den)
    };
    format_fixed(rounded.clamp(i64::MIN as i128, i64::MAX as i128) as i64, 2)
}

fn days_in_year(year: i32) -> i128 {
    if NaiveDate::from_ymd_opt(year, 2, 29).is_some() {
        366
    } else {
        365
    }
}

fn project_subject(rule: RuleId, project: &str, year: i32) -> Value {
    json!({"rule": rule.as_str(), "project": project, "year": year})
}

fn project_sources(p: &ProjectFacts) -> Vec<SourceRef> {
    vec![SourceRef::new(Agency::Finance, "projects", &p.project_code)]
}

fn is_active(p: &ProjectFacts) -> bool {
    p.in_finance && p.quota > Fen::ZERO && p.category != Some(ProjectCategory::Reserve)
}

/// A finding that every recipient sees whole.
fn open_finding(
    rule: RuleId,
    severity: Severity,
    recipients: Vec<Agency>,
    unit: Option<&str>,
    project: Option<&str>,
    view: View,
) -> Finding {
    Finding {
        rule,
        severity,
        recipients,
        unit_code: unit.map(str::to_owned),
        project_code: project.map(str::to_owned),
        confidential: false,
        view,
        redacted: None,
    }
}

/// `budget.approved_mismatch`.
pub fn approved_mismatch(
    c: &ApprovedMismatch,
    q: &FactsQuery,
    projects: &[ProjectFacts],
) -> Vec<Finding> {
    let rule = RuleId::ApprovedMismatch;
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
        if !one_side_missing && diff.abs() <= c.tolerance.0 {
            continue;
        }
        let larger = npc
            .unwrap_or_default()
            .abs()
            .max(fin.unwrap_or_default().abs())
            .0 as i128;
        let critical = (diff.abs().0 as i128) * 10_000 >= larger * c.critical_percent.0 as i128
            || diff.abs() >= c.critical_amount.0;
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
        let mut sources = Vec::new();
        if let Some(k) = &p.npc_key {
            sources.push(SourceRef::new(Agency::Npc, "budgets", k));
        }
        if p.in_finance {
            sources.extend(project_sources(p));
        }
        out.push(open_finding(
            rule,
            severity,
            vec![Agency::Npc, Agency::Finance],
            p.unit_code.as_deref(),
            Some(&p.project_code),
            View {
                subject: project_subject(rule, &p.project_code, q.year),
                summary,
                facts: json!({
                    "project": p.project_code, "year": q.year,
                    "npc_approved": shown(npc), "finance_quota": shown(fin),
                    "difference": yuan(diff),
                }),
                sources,
            },
        ));
    }
    out
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

/// `execution.slow`.
pub fn slow(c: &Slow, q: &FactsQuery, projects: &[ProjectFacts]) -> Vec<Finding> {
    let rule = RuleId::Slow;
    let Some(start) = c.start.in_year(q.year) else {
        return vec![];
    };
    if q.as_of < start {
        return vec![];
    }
    let doy = q.as_of.ordinal() as i128;
    let diy = days_in_year(q.year);
    let mut out = Vec::new();
    for p in projects
        .iter()
        .filter(|p| is_active(p) && p.quota >= c.min_quota.0)
    {
        let quota = p.quota.0 as i128;
        let exp = p.exp.0 as i128;
        // gap (pp) = 100·(doy/diy − exp/quota); compare gap ≥ T/100 exactly:
        // 10000·(doy·quota − exp·diy) ≥ T·diy·quota.
        let lead = 10_000 * (doy * quota - exp * diy);
        let reaches = |t: Hundredths| lead >= t.0 as i128 * diy * quota;
        let severity = if reaches(c.critical_gap_pp) {
            Severity::Critical
        } else if reaches(c.warning_gap_pp) {
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
        out.push(open_finding(
            rule,
            severity,
            recipients,
            p.unit_code.as_deref(),
            Some(&p.project_code),
            View {
                subject: project_subject(rule, &p.project_code, q.year),
                summary: format!(
                    "项目{}截至{}预算执行进度{exec}%，落后时间进度{time}%达{gap}个百分点，请预算单位加快支出进度。",
                    p.project_code, q.as_of
                ),
                facts: json!({
                    "project": p.project_code, "year": q.year, "as_of": q.as_of,
                    "quota": yuan(p.quota), "expenditure": yuan(p.exp),
                    "execution_progress_pct": exec, "time_progress_pct": time, "gap_pp": gap,
                }),
                sources: project_sources(p),
            },
        ));
    }
    out
}

/// `funds.idle`.
pub fn idle(c: &Idle, q: &FactsQuery, projects: &[ProjectFacts]) -> Vec<Finding> {
    let rule = RuleId::Idle;
    let mut out = Vec::new();
    for p in projects
        .iter()
        .filter(|p| is_active(p) && p.quota - p.exp > Fen::ZERO)
    {
        let Some(since) = p.last_exp_on.or(p.first_initial_on) else {
            continue;
        };
        let days = (q.as_of - since).num_days();
        if days < c.idle_days {
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
        out.push(open_finding(
            rule,
            Severity::Warning,
            vec![Agency::Finance, Agency::Audit],
            p.unit_code.as_deref(),
            Some(&p.project_code),
            View {
                subject: project_subject(rule, &p.project_code, q.year),
                summary,
                facts: json!({
                    "project": p.project_code, "year": q.year, "as_of": q.as_of,
                    "quota": yuan(p.quota), "expenditure": yuan(p.exp), "balance": yuan(p.quota - p.exp),
                    "last_expenditure_on": p.last_exp_on, "idle_since": since, "idle_days": days,
                }),
                sources: project_sources(p),
            },
        ));
    }
    out
}

/// `disbursement.lump_sum`.
pub fn lump_sum(c: &LumpSum, q: &FactsQuery, projects: &[ProjectFacts]) -> Vec<Finding> {
    let rule = RuleId::LumpSum;
    projects
        .iter()
        .filter(|p| {
            is_active(p)
                && p.full_year
                && p.quota >= c.large_quota.0
                && p.alloc >= p.quota
                && p.nalloc < c.min_tranches
        })
        .map(|p| {
            open_finding(
                rule,
                Severity::Warning,
                vec![Agency::Finance],
                p.unit_code.as_deref(),
                Some(&p.project_code),
                View {
                    subject: project_subject(rule, &p.project_code, q.year),
                    summary: format!(
                        "全年项目{}指标{}元已分{}笔拨付{}元，少于三三制要求的{}笔，请财政局按进度分批拨款。",
                        p.project_code, p.quota, p.nalloc, p.alloc, c.min_tranches
                    ),
                    facts: json!({
                        "project": p.project_code, "year": q.year,
                        "quota": yuan(p.quota), "allocated": yuan(p.alloc), "tranches": p.nalloc,
                        "min_tranches": c.min_tranches,
                    }),
                    sources: project_sources(p),
                },
            )
        })
        .collect()
}

/// `disbursement.tranche_unsettled`: the oldest unsettled tranche per project.
pub fn tranche_unsettled(
    c: &TrancheUnsettled,
    q: &FactsQuery,
    tranches: &[TrancheFact],
    projects: &BTreeMap<&str, &ProjectFacts>,
) -> Vec<Finding> {
    let rule = RuleId::TrancheUnsettled;
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
        out.push(open_finding(
            rule,
            Severity::Warning,
            vec![Agency::Finance],
            p.unit_code.as_deref(),
            Some(&t.project_code),
            View {
                subject: project_subject(rule, &t.project_code, q.year),
                summary: format!(
                    "项目{}于{}拨付的一笔{}元款项超过{}天仍未支出完毕（累计拨款{}元，累计支出{}元），请预算单位尽快使用。",
                    t.project_code, t.paid_on, t.amount, c.settle_days, t.cumulative, t.exp
                ),
                facts: json!({
                    "project": t.project_code, "year": q.year, "as_of": q.as_of,
                    "payment_id": t.payment_id, "paid_on": t.paid_on, "tranche_amount": yuan(t.amount),
                    "allocated_to_date": yuan(t.cumulative), "expenditure": yuan(t.exp),
                    "settle_by": deadline,
                }),
                sources: vec![
                    SourceRef::new(Agency::Finance, "payments", &t.payment_id),
                    SourceRef::new(Agency::Finance, "projects", &t.project_code),
                ],
            },
        ));
    }
    out
}

/// `target.missing`.
pub fn target_missing(q: &FactsQuery, projects: &[ProjectFacts]) -> Vec<Finding> {
    let rule = RuleId::TargetMissing;
    projects
        .iter()
        .filter(|p| {
            is_active(p) && p.category == Some(ProjectCategory::Special) && p.targets == 0
        })
        .map(|p| {
            open_finding(
                rule,
                Severity::Warning,
                vec![Agency::Finance, Agency::Npc],
                p.unit_code.as_deref(),
                Some(&p.project_code),
                View {
                    subject: project_subject(rule, &p.project_code, q.year),
                    summary: format!(
                        "专项资金项目{}（{}年度）已下达指标{}元但没有绩效目标，请财政局督促预算单位补报绩效目标。",
                        p.project_code, q.year, p.quota
                    ),
                    facts: json!({
                        "project": p.project_code, "year": q.year, "category": "special",
                        "quota": yuan(p.quota), "targets": 0,
                    }),
                    sources: project_sources(p),
                },
            )
        })
        .collect()
}

/// `evaluation.result_unapplied`.
pub fn result_unapplied(
    c: &ResultUnapplied,
    q: &FactsQuery,
    projects: &[ProjectFacts],
) -> Vec<Finding> {
    let rule = RuleId::ResultUnapplied;
    let mut out = Vec::new();
    for p in projects {
        let (Some(score), Some(evaluation)) = (p.prev_score, p.prev_evaluation.as_deref()) else {
            continue;
        };
        if score.0 >= c.below_score.0 || p.quota_prev <= Fen::ZERO {
            continue;
        }
        // initial > (1 − cut) · quota_prev, cut in hundredths of a percent:
        // 10000·initial > (10000 − cut)·quota_prev.
        let keep = 10_000 - c.cut_percent.0 as i128;
        if (p.initial.0 as i128) * 10_000 <= keep * p.quota_prev.0 as i128 {
            continue;
        }
        let ceiling = Fen((keep * p.quota_prev.0 as i128 / 10_000) as i64);
        let cut = format_fixed(c.cut_percent.0, 2);
        out.push(open_finding(
            rule,
            Severity::Warning,
            vec![Agency::Finance, Agency::Npc],
            p.unit_code.as_deref(),
            Some(&p.project_code),
            View {
                subject: project_subject(rule, &p.project_code, q.year),
                summary: format!(
                    "项目{}上年绩效评价{}分（低于良），本年初始指标{}元未按规定比上年{}元压减{cut}%，请财政局落实评价结果。",
                    p.project_code, score, p.initial, p.quota_prev
                ),
                facts: json!({
                    "project": p.project_code, "year": q.year, "evaluated_year": q.year - 1,
                    "evaluation_id": evaluation, "score": score.to_string(),
                    "previous_quota": yuan(p.quota_prev), "initial_quota": yuan(p.initial),
                    "cut_percent": cut, "ceiling": yuan(ceiling),
                }),
                sources: vec![
                    SourceRef::new(Agency::Finance, "evaluations", evaluation),
                    SourceRef::new(Agency::Finance, "projects", &p.project_code),
                ],
            },
        ));
    }
    out
}

fn finding_subject(rule: RuleId, finding: &str) -> Value {
    json!({"rule": rule.as_str(), "finding": finding})
}

fn audit_status_word(status: FindingStatus) -> &'static str {
    match status {
        FindingStatus::Open => "未整改",
        FindingStatus::InProgress => "整改中",
        FindingStatus::Rectified => "已整改",
    }
}

/// `audit.status_mismatch`.
pub fn status_mismatch(
    c: &StatusMismatch,
    q: &FactsQuery,
    findings: &[FindingFact],
    reports: &[RectificationFact],
) -> Vec<Finding> {
    let rule = RuleId::StatusMismatch;
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
        out.push(open_finding(
            rule,
            Severity::Warning,
            vec![Agency::Audit, Agency::Finance],
            f.unit_code.as_deref(),
            f.project_code.as_deref(),
            View {
                subject: finding_subject(rule, &f.finding_no),
                summary: format!(
                    "审计问题{}已于{}向财政报告整改完成，但审计局最新台账仍为“{}”，请审计局与财政局核对整改情况。",
                    f.finding_no,
                    r.reported_on,
                    audit_status_word(f.status)
                ),
                facts: json!({
                    "finding_no": f.finding_no, "audit_status": f.status,
                    "report_id": r.report_id, "reported_on": r.reported_on,
                    "grace_days": c.grace_days, "as_of": q.as_of,
                }),
                sources: vec![
                    SourceRef::new(Agency::Audit, "findings", &f.finding_no),
                    SourceRef::new(Agency::Finance, "rectifications", &r.report_id),
                ],
            },
        ));
    }
    out
}

/// `audit.overdue`.
pub fn overdue(c: &Overdue, q: &FactsQuery, findings: &[FindingFact]) -> Vec<Finding> {
    let rule = RuleId::Overdue;
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
            open_finding(
                rule,
                severity,
                recipients,
                f.unit_code.as_deref(),
                f.project_code.as_deref(),
                View {
                    subject: finding_subject(rule, &f.finding_no),
                    summary: format!(
                        "{}的审计问题{}（涉及{}元）整改期限{}已过{days}天仍为“{}”，请督促被审计单位整改到位。",
                        f.unit_name,
                        f.finding_no,
                        f.amount,
                        f.deadline,
                        audit_status_word(f.status)
                    ),
                    facts: json!({
                        "finding_no": f.finding_no, "unit_name": f.unit_name, "unit_code": f.unit_code,
                        "project": f.project_code, "amount": yuan(f.amount), "status": f.status,
                        "deadline": f.deadline, "days_overdue": days, "as_of": q.as_of,
                    }),
                    sources: vec![SourceRef::new(Agency::Audit, "findings", &f.finding_no)],
                },
            )
        })
        .collect()
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

/// The last day of quarter `q` of `year`.
pub fn quarter_end(year: i32, q: i64) -> Option<NaiveDate> {
    let month = u32::try_from(q).ok().filter(|q| (1..=4).contains(q))? * 3;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    next.map(|d| d - Duration::days(1))
}

/// `orgdept.rate_mismatch` for one quarter.
pub fn rate_mismatch(
    c: &RateMismatch,
    year: i32,
    quarter: i64,
    rows: &[&OrgdeptFact],
    units: &[UnitQuarterFact],
) -> Vec<Finding> {
    let rule = RuleId::RateMismatch;
    let Some(end) = quarter_end(year, quarter) else {
        return vec![];
    };
    let sums: BTreeMap<&str, &UnitQuarterFact> =
        units.iter().map(|u| (u.unit_code.as_str(), u)).collect();
    let mut out = Vec::new();
    for r in rows {
        let (quota_fen, exp_fen) = sums
            .get(r.unit_code.as_str())
            .map_or((Fen::ZERO, Fen::ZERO), |u| (u.quota, u.exp));
        if quota_fen <= Fen::ZERO {
            continue; // the computed rate is undefined
        }
        let (quota, exp) = (quota_fen.0 as i128, exp_fen.0 as i128);
        // |r/100 − 100·exp/quota| > t/100 (r, t in hundredths of pp):
        // |r·quota − 10000·exp| > t·quota.
        let lhs = (r.reported_rate.0 as i128 * quota - 10_000 * exp).abs();
        if lhs <= c.tolerance_pp.0 as i128 * quota {
            continue;
        }
        let computed = percent(exp, quota);
        let reported = r.reported_rate.to_string();
        let gap = hundredths(lhs, quota);
        out.push(open_finding(
            rule,
            Severity::Warning,
            vec![Agency::Orgdept, Agency::Finance],
            Some(&r.unit_code),
            None,
            View {
                subject: json!({"rule": rule.as_str(), "unit": r.unit_code, "year": year, "quarter": quarter}),
                summary: format!(
                    "单位{}{year}年第{quarter}季度自报预算执行率{reported}%，按财政数据计算为{computed}%，相差{gap}个百分点，请组织部与财政局核实考评数据。",
                    r.unit_code
                ),
                facts: json!({
                    "unit": r.unit_code, "year": year, "quarter": quarter, "quarter_end": end,
                    "reported_rate_pct": reported, "computed_rate_pct": computed, "gap_pp": gap,
                    "quota_to_quarter_end": yuan(quota_fen), "expenditure_to_quarter_end": yuan(exp_fen),
                }),
                sources: vec![SourceRef::new(Agency::Orgdept, "evaluations", &r.key)],
            },
        ));
    }
    out
}

/// `yearend.unspendable`.
pub fn unspendable(c: &Unspendable, q: &FactsQuery, projects: &[ProjectFacts]) -> Vec<Finding> {
    let rule = RuleId::Unspendable;
    let Some(from) = c.from.in_year(q.year) else {
        return vec![];
    };
    let Some(year_end) = NaiveDate::from_ymd_opt(q.year, 12, 31) else {
        return vec![];
    };
    if q.as_of < from || c.lookback_days <= 0 {
        return vec![];
    }
    let days_left = (year_end - q.as_of).num_days() as i128;
    let lookback = c.lookback_days as i128;
    let mut out = Vec::new();
    for p in projects
        .iter()
        .filter(|p| is_active(p) && p.quota >= c.min_quota.0)
    {
        let quota = p.quota.0 as i128;
        let exp = p.exp.0 as i128;
        // projected·L = L·exp + (exp − exp_lookback)·days_left
        let projected_l = lookback * exp + (exp - p.exp_lookback.0 as i128) * days_left;
        // unspent > u% of quota: 10000·(L·quota − projected·L) > u·L·quota
        let unspent_l = lookback * quota - projected_l;
        if 10_000 * unspent_l <= c.unspent_percent.0 as i128 * lookback * quota {
            continue;
        }
        let projected = Fen((projected_l / lookback) as i64);
        let unspent = p.quota - projected;
        out.push(open_finding(
            rule,
            Severity::Warning,
            vec![Agency::Finance, Agency::Npc],
            p.unit_code.as_deref(),
            Some(&p.project_code),
            View {
                subject: project_subject(rule, &p.project_code, q.year),
                summary: format!(
                    "按近{}天支出进度测算，项目{}年底预计支出{}元，将结余{}元（占指标{}%），建议财政局提前收回统筹使用。",
                    c.lookback_days,
                    p.project_code,
                    projected,
                    unspent,
                    percent(unspent_l, lookback * quota)
                ),
                facts: json!({
                    "project": p.project_code, "year": q.year, "as_of": q.as_of,
                    "quota": yuan(p.quota), "expenditure": yuan(p.exp),
                    "expenditure_lookback": yuan(p.exp_lookback), "lookback_days": c.lookback_days,
                    "days_left": days_left as i64, "projected_year_end": yuan(projected),
                    "amount_to_reclaim": yuan(unspent),
                }),
                sources: project_sources(p),
            },
        ));
    }
    out
}

/// `payment.over_quota`.
pub fn over_quota(q: &FactsQuery, projects: &[ProjectFacts]) -> Vec<Finding> {
    let rule = RuleId::OverQuota;
    projects
        .iter()
        .filter(|p| p.exp > p.quota || p.alloc > p.quota)
        .map(|p| {
            let excess = p.exp.max(p.alloc) - p.quota;
            open_finding(
                rule,
                Severity::Critical,
                vec![Agency::Finance, Agency::Npc, Agency::Audit],
                p.unit_code.as_deref(),
                Some(&p.project_code),
                View {
                    subject: project_subject(rule, &p.project_code, q.year),
                    summary: format!(
                        "项目{}（{}年度）指标{}元，已拨款{}元、已支出{}元，超出指标{}元，请财政局立即核查并纠正。",
                        p.project_code, q.year, p.quota, p.alloc, p.exp, excess
                    ),
                    facts: json!({
                        "project": p.project_code, "year": q.year, "as_of": q.as_of,
                        "quota": yuan(p.quota), "allocated": yuan(p.alloc), "expenditure": yuan(p.exp),
                        "excess": yuan(excess),
                    }),
                    sources: project_sources(p),
                },
            )
        })
        .collect()
}

/// `link.unknown_project`: one finding per source agency and project code.
/// A discipline record's finding goes to discipline alone.
pub fn unknown_project(rows: &[UnknownProjectFact]) -> Vec<Finding> {
    let rule = RuleId::UnknownProject;
    let mut groups: BTreeMap<(Agency, &str), Vec<&UnknownProjectFact>> = BTreeMap::new();
    for r in rows {
        groups
            .entry((r.agency, &r.project_code))
            .or_default()
            .push(r);
    }
    let mut out = Vec::new();
    for ((source, project), records) in groups {
        let agency = source.as_str();
        let mut recipients = vec![source];
        if source != Agency::Finance && source != Agency::Discipline {
            recipients.push(Agency::Finance);
        }
        let mut collections: Vec<&str> = records.iter().map(|r| r.collection.as_str()).collect();
        collections.dedup();
        let keys: Vec<&str> = records.iter().take(10).map(|r| r.key.as_str()).collect();
        out.push(Finding {
            rule,
            severity: Severity::Warning,
            recipients,
            unit_code: None,
            project_code: Some(project.to_owned()),
            confidential: source == Agency::Discipline,
            view: View {
                subject: json!({"rule": rule.as_str(), "agency": agency, "project": project}),
                summary: format!(
                    "{}系统有{}条记录引用项目编码{project}，但财政局从未报送该项目，请核对项目编码。",
                    agency_name(source),
                    records.len()
                ),
                facts: json!({
                    "project": project, "agency": agency, "records": records.len(),
                    "collections": collections, "keys": keys,
                }),
                sources: records
                    .iter()
                    .take(10)
                    .map(|r| SourceRef::new(source, &r.collection, &r.key))
                    .collect(),
            },
            redacted: None,
        });
    }
    out
}

fn agency_name(a: Agency) -> &'static str {
    match a {
        Agency::Npc => "人大预算联网监督",
        Agency::Finance => "财政预算管理一体化",
        Agency::Audit => "审计监督",
        Agency::Discipline => "纪检监察监督",
        Agency::Orgdept => "政府绩效考评",
    }
}

/// `link.unresolved_unit`.
pub fn unresolved_unit(findings: &[FindingFact]) -> Vec<Finding> {
    let rule = RuleId::UnresolvedUnit;
    findings
        .iter()
        .filter(|f| f.unit_code.is_none())
        .map(|f| {
            open_finding(
                rule,
                Severity::Warning,
                vec![Agency::Audit],
                None,
                f.project_code.as_deref(),
                View {
                    subject: finding_subject(rule, &f.finding_no),
                    summary: format!(
                        "审计问题{}的被审计单位“{}”与财政单位名称无法对应，请审计局核对单位全称。",
                        f.finding_no, f.unit_name
                    ),
                    facts: json!({
                        "finding_no": f.finding_no, "unit_name": f.unit_name,
                        "normalized_name": normalize_unit_name(&f.unit_name),
                    }),
                    sources: vec![SourceRef::new(Agency::Audit, "findings", &f.finding_no)],
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_half_away_from_zero() {
        assert_eq!(percent(1, 3), "33.33");
        assert_eq!(percent(2, 3), "66.67");
        assert_eq!(hundredths(-5, 10), "-0.01");
        assert_eq!(hundredths(-4, 10), "0.00");
        assert_eq!(percent(0, 0), "0.00");
    }

    #[test]
    fn quarter_ends() {
        assert_eq!(quarter_end(2021, 1), NaiveDate::from_ymd_opt(2021, 3, 31));
        assert_eq!(quarter_end(2024, 4), NaiveDate::from_ymd_opt(2024, 12, 31));
        assert_eq!(quarter_end(2021, 5), None);
    }
}
