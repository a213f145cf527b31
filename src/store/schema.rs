//! Where each collection lives and which typed columns the rules query.
//!
//! Every collection has its own table (`finance_payments`, `npc_budgets`, …)
//! with the same bookkeeping columns (`key`, `hash`, `version`, `deleted`,
//! `first_seen`, `last_seen`, `seen_run`) followed by the typed columns below;
//! liankong's own actions (`liankong_actions`) are kept the same way.
//! The canonical content itself lives in the version history; the typed
//! columns are a projection of the newest version that `verify` re-derives.

use chrono::NaiveDate;
use serde::Serialize;

use crate::model::{Collection, Record, normalize_unit_name};

/// A typed column value, bound the same way on both backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(Option<bool>),
    Date(Option<NaiveDate>),
}

pub fn table(c: Collection) -> &'static str {
    use Collection::*;
    match c {
        Units => "finance_units",
        Projects => "finance_projects",
        Quotas => "finance_quotas",
        Payments => "finance_payments",
        Targets => "finance_targets",
        Evaluations => "finance_evaluations",
        Rectifications => "finance_rectifications",
        Budgets => "npc_budgets",
        Execution => "npc_execution",
        Findings => "audit_findings",
        Referrals => "discipline_referrals",
        OrgdeptEvaluations => "orgdept_evaluations",
        Actions => "liankong_actions",
    }
}

/// The typed columns of a collection's table, in the order of [`values`].
pub fn columns(c: Collection) -> &'static [&'static str] {
    use Collection::*;
    match c {
        Units => &["unit_code", "unit_name", "name_norm", "parent_code"],
        Projects => &[
            "project_code",
            "unit_code",
            "project_name",
            "category",
            "full_year",
            "start_year",
            "end_year",
        ],
        Quotas => &[
            "project_code",
            "fiscal_year",
            "kind",
            "amount",
            "approved_on",
        ],
        Payments => &["project_code", "kind", "amount", "paid_on"],
        Targets => &["project_code", "fiscal_year", "indicator"],
        Evaluations => &["project_code", "fiscal_year", "score", "grade"],
        Rectifications => &["finding_no", "status", "reported_on"],
        Budgets => &[
            "project_code",
            "year",
            "approved",
            "adjustment",
            "approved_on",
        ],
        Execution => &["project_code", "year", "as_of", "cumulative"],
        Findings => &[
            "unit_name",
            "unit_name_norm",
            "project_code",
            "category",
            "amount",
            "status",
            "deadline",
            "found_on",
        ],
        Referrals => &[
            "unit_code",
            "project_code",
            "received_on",
            "status",
            "frozen",
            "freeze_from",
            "origin",
        ],
        OrgdeptEvaluations => &[
            "unit_code",
            "year",
            "quarter",
            "reported_rate",
            "score",
            "grade",
        ],
        Actions => ACTION_COLUMNS,
    }
}

/// Every field of an action is a typed column: the store reads actions
/// back from their table alone (`verify` holds the columns to the newest
/// version). `by` and `from` are SQL words, hence `by_name` and `from_ids`.
pub const ACTION_COLUMNS: &[&str] = &[
    "action_id",
    "kind",
    "agency",
    "token",
    "by_name",
    "recorded_at",
    "taken_on",
    "project_code",
    "year",
    "alert_id",
    "deadline",
    "effective_on",
    "amount",
    "from_ids",
    "withdraws",
    "reason",
];

/// An action's `recorded_at` as its column keeps it: RFC 3339 in UTC with
/// microseconds, so that text order is time order.
pub fn recorded_at_text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn text(s: impl ToString) -> Value {
    Value::Text(Some(s.to_string()))
}

fn opt_text(s: Option<impl ToString>) -> Value {
    Value::Text(s.map(|s| s.to_string()))
}

fn int(i: impl Into<i64>) -> Value {
    Value::Int(Some(i.into()))
}

fn date(d: NaiveDate) -> Value {
    Value::Date(Some(d))
}

/// An enumeration as its serde word (`allocation`, `in_progress`, …).
fn word<T: Serialize>(v: T) -> Value {
    Value::Text(
        serde_json::to_value(v)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned)),
    )
}

/// The typed column values of a record, in the order of [`columns`].
pub fn values(record: &Record) -> Vec<Value> {
    match record {
        Record::Unit(r) => vec![
            text(&r.unit_code),
            text(&r.unit_name),
            text(normalize_unit_name(&r.unit_name)),
            opt_text(r.parent_code.as_ref()),
        ],
        Record::Project(r) => vec![
            text(&r.project_code),
            text(&r.unit_code),
            text(&r.project_name),
            word(r.category),
            Value::Bool(Some(r.full_year)),
            int(r.start_year),
            Value::Int(r.end_year.map(i64::from)),
        ],
        Record::Quota(r) => vec![
            text(&r.project_code),
            int(r.fiscal_year),
            word(r.kind),
            int(r.amount.0),
            date(r.approved_on),
        ],
        Record::Payment(r) => vec![
            text(&r.project_code),
            word(r.kind),
            int(r.amount.0),
            date(r.paid_on),
        ],
        Record::Target(r) => vec![
            text(&r.project_code),
            int(r.fiscal_year),
            text(&r.indicator),
        ],
        Record::Evaluation(r) => vec![
            text(&r.project_code),
            int(r.fiscal_year),
            int(r.score.0),
            word(r.grade),
        ],
        Record::Rectification(r) => vec![text(&r.finding_no), word(r.status), date(r.reported_on)],
        Record::ApprovedBudget(r) => vec![
            text(&r.project_code),
            int(r.year),
            int(r.approved.0),
            int(r.adjustment.0),
            date(r.approved_on),
        ],
        Record::ExecutionMirror(r) => vec![
            text(&r.project_code),
            int(r.year),
            date(r.as_of),
            int(r.cumulative.0),
        ],
        Record::AuditFinding(r) => vec![
            text(&r.unit_name),
            text(normalize_unit_name(&r.unit_name)),
            opt_text(r.project_code.as_ref()),
            text(&r.category),
            int(r.amount.0),
            word(r.status),
            date(r.deadline),
            date(r.found_on),
        ],
        Record::Referral(r) => vec![
            text(&r.unit_code),
            opt_text(r.project_code.as_ref()),
            date(r.received_on),
            word(r.status),
            Value::Bool(Some(r.freeze)),
            Value::Date(r.freeze_from),
            word(r.origin),
        ],
        Record::OrgdeptEvaluation(r) => vec![
            text(&r.unit_code),
            int(r.year),
            int(r.quarter),
            int(r.reported_rate.0),
            int(r.score.0),
            word(r.grade),
        ],
        Record::Action(r) => vec![
            text(&r.action_id),
            word(r.kind),
            word(r.agency),
            text(&r.token),
            text(&r.by),
            text(recorded_at_text(r.recorded_at)),
            date(r.taken_on),
            text(&r.project_code),
            int(r.year),
            opt_text(r.alert_id.as_ref()),
            Value::Date(r.deadline),
            Value::Date(r.effective_on),
            Value::Int(r.amount.map(|a| a.0)),
            text(serde_json::to_string(&r.from).unwrap_or_default()),
            opt_text(r.withdraws.as_ref()),
            text(&r.reason),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use chrono::{DateTime, Utc};

    #[test]
    fn every_collection_has_as_many_values_as_columns() {
        let at: DateTime<Utc> = DateTime::UNIX_EPOCH;
        let d = NaiveDate::from_ymd_opt(2021, 1, 1).unwrap();
        let p = ProjectCode::parse("3701002021000123").unwrap();
        let u = UnitCode::parse("370101").unwrap();
        let records = [
            Record::Unit(Unit {
                unit_code: u.clone(),
                unit_name: "x".into(),
                parent_code: None,
                updated_at: at,
            }),
            Record::Payment(Payment {
                payment_id: "1".into(),
                project_code: p.clone(),
                kind: PaymentKind::Allocation,
                amount: crate::money::Fen(1),
                paid_on: d,
                updated_at: at,
            }),
            Record::Referral(Referral {
                referral_id: "r".into(),
                unit_code: u,
                project_code: Some(p),
                received_on: d,
                status: ReferralStatus::Verifying,
                freeze: true,
                freeze_from: Some(d),
                origin: ReferralOrigin::Audit,
                changed_at: at,
            }),
        ];
        for r in &records {
            assert_eq!(values(r).len(), columns(r.collection()).len());
        }
        assert_eq!(
            values(&records[2])[3],
            Value::Text(Some("verifying".into()))
        );
    }
}
