//! What the rules' judging shares: how numbers are shown, the subject and
//! sources of a project finding, and the finding every recipient sees whole.

use chrono::NaiveDate;
use serde_json::{Value, json};

use crate::model::{Agency, ProjectCategory};
use crate::money::{Fen, format_fixed};
use crate::reconcile::finding::{Finding, RuleId, Severity, SourceRef, View};
use crate::store::facts::{FindingFact, ProjectFacts};

/// Money as facts show it: yuan with 2 places.
pub fn yuan(fen: Fen) -> Value {
    Value::String(fen.to_yuan())
}

/// `num / den` as a percentage with 2 places, rounded half away from zero.
pub fn percent(num: i128, den: i128) -> String {
    hundredths(num * 10_000, den)
}

/// `num / den` in hundredths, shown with 2 places.
pub(super) fn hundredths(num: i128, den: i128) -> String {
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

pub(super) fn days_in_year(year: i32) -> i128 {
    if NaiveDate::from_ymd_opt(year, 2, 29).is_some() {
        366
    } else {
        365
    }
}

pub(super) fn project_subject(rule: RuleId, project: &str, year: i32) -> Value {
    json!({"rule": rule.as_str(), "project": project, "year": year})
}

/// A project is active in `Y` when finance holds it, its quota is positive
/// and it is not a reserve.
pub(super) fn is_active(p: &ProjectFacts) -> bool {
    p.in_finance && p.quota > Fen::ZERO && p.category != Some(ProjectCategory::Reserve)
}

/// The active projects with at least `min_quota`: those a rule with a
/// minimum quota judges.
pub(super) fn active_from(
    projects: &[ProjectFacts],
    min_quota: Fen,
) -> impl Iterator<Item = &ProjectFacts> {
    projects
        .iter()
        .filter(move |p| is_active(p) && p.quota >= min_quota)
}

/// A finding that every recipient sees whole.
pub(super) fn open_finding(
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

/// The finding of a project rule about project `p` in `year`: seen whole by
/// every recipient, resting on finance's project record (a rule resting on
/// more records sets `view.sources` itself).
pub(super) fn on_project(
    rule: RuleId,
    year: i32,
    p: &ProjectFacts,
    severity: Severity,
    recipients: Vec<Agency>,
    summary: String,
    facts: Value,
) -> Finding {
    let code = p.project_code.as_str();
    let subject = project_subject(rule, code, year);
    let source = SourceRef::new(Agency::Finance, "projects", code);
    let view = View::new(subject, summary, facts, source);
    let unit = p.unit_code.as_deref();
    open_finding(rule, severity, recipients, unit, Some(code), view)
}

/// The finding of an audit rule about audit finding `f`: seen whole by
/// every recipient, resting on audit's record of it.
pub(super) fn on_audit_finding(
    rule: RuleId,
    f: &FindingFact,
    severity: Severity,
    recipients: Vec<Agency>,
    summary: String,
    facts: Value,
) -> Finding {
    let subject = json!({"rule": rule.as_str(), "finding": f.finding_no});
    let source = SourceRef::new(Agency::Audit, "findings", &f.finding_no);
    let view = View::new(subject, summary, facts, source);
    let (unit, project) = (f.unit_code.as_deref(), f.project_code.as_deref());
    open_finding(rule, severity, recipients, unit, project, view)
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
}
