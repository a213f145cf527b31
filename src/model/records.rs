//! The records of the five systems, one type per collection, and
//! [`Record`], any of them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Action, Centi, Collection, FindingStatus, Grade, PaymentKind, ProjectCategory, ProjectCode,
    QuotaKind, RectificationStatus, ReferralOrigin, ReferralStatus, UnitCode,
};
use crate::money::Fen;

/// finance `units`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub unit_code: UnitCode,
    pub unit_name: String,
    pub parent_code: Option<UnitCode>,
    pub updated_at: DateTime<Utc>,
}

/// finance `projects`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub project_code: ProjectCode,
    pub unit_code: UnitCode,
    pub project_name: String,
    pub category: ProjectCategory,
    pub full_year: bool,
    pub start_year: i32,
    pub end_year: Option<i32>,
    pub updated_at: DateTime<Utc>,
}

/// finance `quotas`: one line of a project's budget quota.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub quota_id: String,
    pub project_code: ProjectCode,
    pub fiscal_year: i32,
    pub kind: QuotaKind,
    /// As the source sends it: positive for initial and reclaim (a reclaim
    /// subtracts), either sign for an adjustment.
    pub amount: Fen,
    pub approved_on: NaiveDate,
    pub updated_at: DateTime<Utc>,
}

/// finance `payments`: an allocation to a unit or a unit's expenditure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub payment_id: String,
    pub project_code: ProjectCode,
    pub kind: PaymentKind,
    pub amount: Fen,
    pub paid_on: NaiveDate,
    pub updated_at: DateTime<Utc>,
}

/// finance `targets`: a declared performance indicator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub target_id: String,
    pub project_code: ProjectCode,
    pub fiscal_year: i32,
    pub indicator: String,
    pub target_value: String,
    pub updated_at: DateTime<Utc>,
}

/// finance `evaluations`: the performance evaluation of a project-year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    pub evaluation_id: String,
    pub project_code: ProjectCode,
    pub fiscal_year: i32,
    pub score: Centi,
    pub grade: Grade,
    pub updated_at: DateTime<Utc>,
}

/// finance `rectifications`: a unit's report on an audit finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rectification {
    pub report_id: String,
    pub finding_no: String,
    pub status: RectificationStatus,
    pub reported_on: NaiveDate,
    pub updated_at: DateTime<Utc>,
}

/// npc `budgets`: what the congress approved for a project-year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovedBudget {
    pub project_code: ProjectCode,
    pub year: i32,
    pub approved: Fen,
    /// Net approved adjustments; may be negative.
    pub adjustment: Fen,
    pub approved_on: NaiveDate,
    pub updated_at: DateTime<Utc>,
}

/// npc `execution`: the cumulative expenditure finance reported to the
/// congress for a project as of a month-end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionMirror {
    pub project_code: ProjectCode,
    pub year: i32,
    pub as_of: NaiveDate,
    pub cumulative: Fen,
    pub updated_at: DateTime<Utc>,
}

/// audit `findings`: one row of the audit office's snapshot. The unit is as
/// the audit office named it; the store resolves it to a unit code separately.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFinding {
    pub finding_no: String,
    pub unit_name: String,
    pub project_code: Option<ProjectCode>,
    pub category: String,
    pub amount: Fen,
    pub status: FindingStatus,
    pub deadline: NaiveDate,
    pub found_on: NaiveDate,
}

/// discipline `referrals`: confidential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    pub referral_id: String,
    pub unit_code: UnitCode,
    /// `None`: the referral concerns the whole unit.
    pub project_code: Option<ProjectCode>,
    pub received_on: NaiveDate,
    pub status: ReferralStatus,
    pub freeze: bool,
    pub freeze_from: Option<NaiveDate>,
    pub origin: ReferralOrigin,
    pub changed_at: DateTime<Utc>,
}

/// orgdept `evaluations`: a unit's quarterly evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgdeptEvaluation {
    pub unit_code: UnitCode,
    pub unit_name: String,
    pub year: i32,
    pub quarter: u8,
    /// The execution rate the unit reported, in hundredths of a percent point.
    pub reported_rate: Centi,
    pub score: Centi,
    pub grade: Grade,
}

/// Any canonical record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Unit(Unit),
    Project(Project),
    Quota(Quota),
    Payment(Payment),
    Target(Target),
    Evaluation(Evaluation),
    Rectification(Rectification),
    ApprovedBudget(ApprovedBudget),
    ExecutionMirror(ExecutionMirror),
    AuditFinding(AuditFinding),
    Referral(Referral),
    OrgdeptEvaluation(OrgdeptEvaluation),
    Action(Action),
}

/// Runs `$body` with `$r` bound to the inner record of any variant.
macro_rules! with_inner {
    ($record:expr, $r:ident => $body:expr) => {
        match $record {
            Record::Unit($r) => $body,
            Record::Project($r) => $body,
            Record::Quota($r) => $body,
            Record::Payment($r) => $body,
            Record::Target($r) => $body,
            Record::Evaluation($r) => $body,
            Record::Rectification($r) => $body,
            Record::ApprovedBudget($r) => $body,
            Record::ExecutionMirror($r) => $body,
            Record::AuditFinding($r) => $body,
            Record::Referral($r) => $body,
            Record::OrgdeptEvaluation($r) => $body,
            Record::Action($r) => $body,
        }
    };
}

/// Decodes into the record type of a collection: `$decode` is called with
/// the concrete type as `T`.
macro_rules! decode {
    ($collection:expr, |T| $decode:expr) => {{
        use Collection::*;
        Ok(match $collection {
            Units => Record::Unit({
                type T = Unit;
                $decode?
            }),
            Projects => Record::Project({
                type T = Project;
                $decode?
            }),
            Quotas => Record::Quota({
                type T = Quota;
                $decode?
            }),
            Payments => Record::Payment({
                type T = Payment;
                $decode?
            }),
            Targets => Record::Target({
                type T = Target;
                $decode?
            }),
            Evaluations => Record::Evaluation({
                type T = Evaluation;
                $decode?
            }),
            Rectifications => Record::Rectification({
                type T = Rectification;
                $decode?
            }),
            Budgets => Record::ApprovedBudget({
                type T = ApprovedBudget;
                $decode?
            }),
            Execution => Record::ExecutionMirror({
                type T = ExecutionMirror;
                $decode?
            }),
            Findings => Record::AuditFinding({
                type T = AuditFinding;
                $decode?
            }),
            Referrals => Record::Referral({
                type T = Referral;
                $decode?
            }),
            OrgdeptEvaluations => Record::OrgdeptEvaluation({
                type T = OrgdeptEvaluation;
                $decode?
            }),
            Actions => Record::Action({
                type T = Action;
                $decode?
            }),
        })
    }};
}

impl Record {
    pub fn collection(&self) -> Collection {
        match self {
            Record::Unit(_) => Collection::Units,
            Record::Project(_) => Collection::Projects,
            Record::Quota(_) => Collection::Quotas,
            Record::Payment(_) => Collection::Payments,
            Record::Target(_) => Collection::Targets,
            Record::Evaluation(_) => Collection::Evaluations,
            Record::Rectification(_) => Collection::Rectifications,
            Record::ApprovedBudget(_) => Collection::Budgets,
            Record::ExecutionMirror(_) => Collection::Execution,
            Record::AuditFinding(_) => Collection::Findings,
            Record::Referral(_) => Collection::Referrals,
            Record::OrgdeptEvaluation(_) => Collection::OrgdeptEvaluations,
            Record::Action(_) => Collection::Actions,
        }
    }

    /// The record's key within its collection. Composite keys join their
    /// parts with `/` (`3701002021000123/2021-06-30`).
    pub fn key(&self) -> String {
        match self {
            Record::Unit(r) => r.unit_code.to_string(),
            Record::Project(r) => r.project_code.to_string(),
            Record::Quota(r) => r.quota_id.clone(),
            Record::Payment(r) => r.payment_id.clone(),
            Record::Target(r) => r.target_id.clone(),
            Record::Evaluation(r) => r.evaluation_id.clone(),
            Record::Rectification(r) => r.report_id.clone(),
            Record::ApprovedBudget(r) => format!("{}/{}", r.project_code, r.year),
            Record::ExecutionMirror(r) => format!("{}/{}", r.project_code, r.as_of),
            Record::AuditFinding(r) => r.finding_no.clone(),
            Record::Referral(r) => r.referral_id.clone(),
            Record::OrgdeptEvaluation(r) => {
                format!("{}/{}/Q{}", r.unit_code, r.year, r.quarter)
            }
            Record::Action(r) => r.action_id.clone(),
        }
    }

    /// The key a record of `collection` would have, from its canonical key
    /// fields alone ([`Collection::key_fields`]), exactly as [`Record::key`]
    /// spells it; `None` when a part is missing or not a valid value. This
    /// is how a row that cannot become a record still names the record it
    /// is about.
    pub fn key_of(
        collection: Collection,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<String> {
        use Collection::*;
        let text = |name: &str| fields.get(name)?.as_str().filter(|s| !s.is_empty());
        let year = || i32::try_from(fields.get("year")?.as_i64()?).ok();
        let unit = || UnitCode::parse(text("unit_code")?).ok();
        let project = || ProjectCode::parse(text("project_code")?).ok();
        Some(match collection {
            Units => unit()?.to_string(),
            Projects => project()?.to_string(),
            Quotas => text("quota_id")?.to_owned(),
            Payments => text("payment_id")?.to_owned(),
            Targets => text("target_id")?.to_owned(),
            Evaluations => text("evaluation_id")?.to_owned(),
            Rectifications => text("report_id")?.to_owned(),
            Budgets => format!("{}/{}", project()?, year()?),
            Execution => {
                let as_of = NaiveDate::parse_from_str(text("as_of")?, "%Y-%m-%d").ok()?;
                format!("{}/{as_of}", project()?)
            }
            Findings => text("finding_no")?.to_owned(),
            Referrals => text("referral_id")?.to_owned(),
            OrgdeptEvaluations => {
                let quarter = u8::try_from(fields.get("quarter")?.as_i64()?).ok()?;
                format!("{}/{}/Q{quarter}", unit()?, year()?)
            }
            Actions => text("action_id")?.to_owned(),
        })
    }

    /// The canonical content: the exact bytes the store hashes and keeps.
    pub fn content(&self) -> String {
        // Serialising these plain structs cannot fail: no maps with non-string
        // keys, no custom serialisers that error.
        with_inner!(self, r => serde_json::to_string(r).unwrap_or_default())
    }

    /// Rebuilds a record from its stored canonical content.
    pub fn from_content(collection: Collection, content: &str) -> serde_json::Result<Record> {
        decode!(collection, |T| serde_json::from_str::<T>(content))
    }

    /// Builds a record from its canonical fields, by name (what an
    /// adapter's mapping makes), without first gathering them into a JSON
    /// object. Field types are checked here: codes, enums, dates and
    /// amounts that do not fit are errors naming the field.
    pub fn from_fields<'a>(
        collection: Collection,
        fields: impl Iterator<Item = (&'a str, serde_json::Value)>,
    ) -> serde_json::Result<Record> {
        use serde::Deserialize;
        use serde::de::value::MapDeserializer;
        decode!(collection, |T| T::deserialize(MapDeserializer::<
            _,
            serde_json::Error,
        >::new(fields)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::normalize_unit_name;

    #[test]
    fn codes_are_validated() {
        assert!(ProjectCode::parse("3701002021000123").is_ok());
        assert!(ProjectCode::parse("370100-2021-000123").is_err());
        assert!(UnitCode::parse("37010").is_err());
        assert!(UnitCode::parse("370101").is_ok());
    }

    #[test]
    fn content_round_trips_and_keys_are_stable() {
        let r = Record::ExecutionMirror(ExecutionMirror {
            project_code: ProjectCode::parse("3701002021000123").unwrap(),
            year: 2021,
            as_of: NaiveDate::from_ymd_opt(2021, 6, 30).unwrap(),
            cumulative: Fen(125_000_000),
            updated_at: DateTime::parse_from_rfc3339("2021-07-01T10:00:00+08:00")
                .unwrap()
                .with_timezone(&Utc),
        });
        assert_eq!(r.key(), "3701002021000123/2021-06-30");
        assert_eq!(
            r.content(),
            r#"{"project_code":"3701002021000123","year":2021,"as_of":"2021-06-30","cumulative":125000000,"updated_at":"2021-07-01T02:00:00Z"}"#
        );
        assert_eq!(
            Record::from_content(Collection::Execution, &r.content()).unwrap(),
            r
        );
    }

    #[test]
    fn unit_names_normalise_brackets_and_spaces() {
        assert_eq!(
            normalize_unit_name(" 市教育局（本级） "),
            normalize_unit_name("市教育局 (本级)")
        );
        assert_eq!(normalize_unit_name("市\u{3000}卫健委"), "市卫健委");
    }

    #[test]
    fn scores_are_exact_hundredths() {
        assert_eq!(Centi::parse_score("79.99"), Ok(Centi(7999)));
        assert_eq!(Centi::parse_score("80"), Ok(Centi(8000)));
        assert!(Centi::parse_score("100.01").is_err());
        assert!(Centi::parse_score("-1").is_err());
    }
}
