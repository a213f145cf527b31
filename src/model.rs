//! The canonical model: one typed record per collection of the five agency
//! systems (`SYSTEMS.md`), after the adapters have translated each source's
//! conventions away. Money is [`Fen`], dates are `NaiveDate`, instants are UTC,
//! codes are validated newtypes. A record that exists is valid.
//!
//! The serialised form of a record (serde JSON, fields in declaration order) is
//! its *canonical content*: the store hashes exactly these bytes, so changing a
//! field's name or order here changes every hash and needs a migration.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::money::{DecimalError, Fen, format_fixed, parse_fixed};

/// The five agencies of the joint supervision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Agency {
    Npc,
    Finance,
    Audit,
    Discipline,
    Orgdept,
}

impl Agency {
    pub const ALL: [Agency; 5] = [
        Agency::Npc,
        Agency::Finance,
        Agency::Audit,
        Agency::Discipline,
        Agency::Orgdept,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Agency::Npc => "npc",
            Agency::Finance => "finance",
            Agency::Audit => "audit",
            Agency::Discipline => "discipline",
            Agency::Orgdept => "orgdept",
        }
    }

    pub fn parse(s: &str) -> Option<Agency> {
        Agency::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Whether this agency's data is confidential (`SYSTEMS.md` §4).
    pub fn is_confidential(self) -> bool {
        self == Agency::Discipline
    }
}

/// A word that names no agency.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an agency (npc, finance, audit, discipline, orgdept)")]
pub struct UnknownAgency(pub String);

impl std::str::FromStr for Agency {
    type Err = UnknownAgency;
    fn from_str(s: &str) -> Result<Agency, UnknownAgency> {
        Agency::parse(s).ok_or_else(|| UnknownAgency(s.to_owned()))
    }
}

impl fmt::Display for Agency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Who a collection's records come from: one of the five agencies'
/// systems, or liankong itself (`liankong`: the actions its users take).
/// Not an [`Agency`]: liankong receives nothing, is no recipient and has no
/// confidentiality of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Agency(Agency),
    Liankong,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Agency(a) => a.as_str(),
            Source::Liankong => "liankong",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        match s {
            "liankong" => Some(Source::Liankong),
            other => Agency::parse(other).map(Source::Agency),
        }
    }

    /// The agency, when the source is one.
    pub fn agency(self) -> Option<Agency> {
        match self {
            Source::Agency(a) => Some(a),
            Source::Liankong => None,
        }
    }
}

impl From<Agency> for Source {
    fn from(a: Agency) -> Source {
        Source::Agency(a)
    }
}

impl PartialEq<Agency> for Source {
    fn eq(&self, a: &Agency) -> bool {
        *self == Source::Agency(*a)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Source, D::Error> {
        let s = String::deserialize(d)?;
        Source::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{s:?} is not a source (npc, finance, audit, discipline, orgdept, liankong)"
            ))
        })
    }
}

/// Every canonical collection, each owned by one [`Source`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Collection {
    Units,
    Projects,
    Quotas,
    Payments,
    Targets,
    Evaluations,
    Rectifications,
    Budgets,
    Execution,
    Findings,
    Referrals,
    OrgdeptEvaluations,
    /// liankong's own: the actions agencies take (`RULES.md` § Actions).
    Actions,
}

impl Collection {
    /// Every collection the store keeps, liankong's own included: what
    /// `verify`, the counts and the data generation walk.
    pub const ALL: [Collection; 13] = [
        Collection::Units,
        Collection::Projects,
        Collection::Quotas,
        Collection::Payments,
        Collection::Targets,
        Collection::Evaluations,
        Collection::Rectifications,
        Collection::Budgets,
        Collection::Execution,
        Collection::Findings,
        Collection::Referrals,
        Collection::OrgdeptEvaluations,
        Collection::Actions,
    ];

    /// The collections the five agencies' systems send (what adapters and
    /// the simulator fill).
    pub const FROM_AGENCIES: [Collection; 12] = [
        Collection::Units,
        Collection::Projects,
        Collection::Quotas,
        Collection::Payments,
        Collection::Targets,
        Collection::Evaluations,
        Collection::Rectifications,
        Collection::Budgets,
        Collection::Execution,
        Collection::Findings,
        Collection::Referrals,
        Collection::OrgdeptEvaluations,
    ];

    /// Whose records these are.
    pub fn source(self) -> Source {
        use Collection::*;
        match self {
            Units | Projects | Quotas | Payments | Targets | Evaluations | Rectifications => {
                Source::Agency(Agency::Finance)
            }
            Budgets | Execution => Source::Agency(Agency::Npc),
            Findings => Source::Agency(Agency::Audit),
            Referrals => Source::Agency(Agency::Discipline),
            OrgdeptEvaluations => Source::Agency(Agency::Orgdept),
            Actions => Source::Liankong,
        }
    }

    /// The agency whose system sends them; `None` for liankong's own.
    pub fn agency(self) -> Option<Agency> {
        self.source().agency()
    }

    /// The collection's name within its agency, as manifests and the CLI spell it.
    pub fn name(self) -> &'static str {
        use Collection::*;
        match self {
            Units => "units",
            Projects => "projects",
            Quotas => "quotas",
            Payments => "payments",
            Targets => "targets",
            Evaluations | OrgdeptEvaluations => "evaluations",
            Rectifications => "rectifications",
            Budgets => "budgets",
            Execution => "execution",
            Findings => "findings",
            Referrals => "referrals",
            Actions => "actions",
        }
    }

    /// The canonical fields a record's key is made of (see [`Record::key`]).
    pub fn key_fields(self) -> &'static [&'static str] {
        use Collection::*;
        match self {
            Units => &["unit_code"],
            Projects => &["project_code"],
            Quotas => &["quota_id"],
            Payments => &["payment_id"],
            Targets => &["target_id"],
            Evaluations => &["evaluation_id"],
            Rectifications => &["report_id"],
            Budgets => &["project_code", "year"],
            Execution => &["project_code", "as_of"],
            Findings => &["finding_no"],
            Referrals => &["referral_id"],
            OrgdeptEvaluations => &["unit_code", "year", "quarter"],
            Actions => &["action_id"],
        }
    }

    pub fn parse(agency: Agency, name: &str) -> Option<Collection> {
        Collection::ALL
            .into_iter()
            .find(|c| c.agency() == Some(agency) && c.name() == name)
    }
}

impl fmt::Display for Collection {
    /// `source.collection`, e.g. `finance.payments`, `liankong.actions`:
    /// the stream's name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.source(), self.name())
    }
}

/// A value that is not a valid canonical field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("{field}: {0}", field = .1)]
    Decimal(DecimalError, &'static str),
    #[error("{field}: {value:?} is not {expected}")]
    Invalid {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
}

macro_rules! digit_code {
    ($(#[$doc:meta])* $name:ident, $len:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, ModelError> {
                if s.len() == $len && s.bytes().all(|b| b.is_ascii_digit()) {
                    Ok($name(s.to_owned()))
                } else {
                    Err(ModelError::Invalid {
                        field: stringify!($name),
                        value: s.to_owned(),
                        expected: $what,
                    })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ModelError;
            fn try_from(s: String) -> Result<Self, ModelError> {
                $name::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(c: $name) -> String {
                c.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

digit_code!(
    /// Finance's 6-digit unit code.
    UnitCode,
    6,
    "a 6-digit unit code"
);
digit_code!(
    /// Finance's 16-digit project code (region, start year, sequence).
    ProjectCode,
    16,
    "a 16-digit project code"
);

/// A non-negative decimal with 2 places, kept as hundredths: evaluation
/// scores (0–100) and percentages reported by units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Centi(pub i64);

impl Centi {
    pub fn parse(s: &str) -> Result<Centi, DecimalError> {
        parse_fixed(s, 2, "a decimal with 2 places").map(Centi)
    }

    /// A score on the 0–100 scale.
    pub fn parse_score(s: &str) -> Result<Centi, ModelError> {
        let c = Centi::parse(s).map_err(|e| ModelError::Decimal(e, "score"))?;
        if (0..=10_000).contains(&c.0) {
            Ok(c)
        } else {
            Err(ModelError::Invalid {
                field: "score",
                value: s.to_owned(),
                expected: "a score between 0 and 100",
            })
        }
    }
}

impl fmt::Display for Centi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_fixed(self.0, 2))
    }
}

/// The grade of an evaluation: 优 ≥ 90, 良 ≥ 80, 中 ≥ 60, 差 < 60.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    Excellent,
    Good,
    Fair,
    Poor,
}

impl Grade {
    /// The grade from its Chinese word as every source writes it.
    pub fn from_word(s: &str) -> Option<Grade> {
        match s {
            "优" => Some(Grade::Excellent),
            "良" => Some(Grade::Good),
            "中" => Some(Grade::Fair),
            "差" => Some(Grade::Poor),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectCategory {
    Special,
    Basic,
    Reserve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaKind {
    Initial,
    Adjustment,
    Reclaim,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    Allocation,
    Expenditure,
}

/// A unit's report to finance on rectifying an audit finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RectificationStatus {
    Rectified,
    InProgress,
}

/// The audit office's view of a finding: 未整改 / 整改中 / 已整改.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    Open,
    InProgress,
    Rectified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralStatus {
    Received,
    Verifying,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralOrigin {
    Audit,
    Finance,
    Npc,
    Public,
}

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

/// What an agency did (`RULES.md` § Actions): the three buttons of execution
/// control and what goes with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// 预警: a formal warning to the unit about a firing alert.
    Warn,
    /// 冻结: no more payments on the project from a day.
    Freeze,
    /// Lifts a freeze from a day.
    Unfreeze,
    /// 收回: takes an amount of the project's quota back.
    Reclaim,
    /// 盘活、复活: puts reclaimed money to use in another project.
    Revive,
    /// 撤销: takes back a mistaken action.
    Withdraw,
}

impl ActionKind {
    pub const ALL: [ActionKind; 6] = [
        ActionKind::Warn,
        ActionKind::Freeze,
        ActionKind::Unfreeze,
        ActionKind::Reclaim,
        ActionKind::Revive,
        ActionKind::Withdraw,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Warn => "warn",
            ActionKind::Freeze => "freeze",
            ActionKind::Unfreeze => "unfreeze",
            ActionKind::Reclaim => "reclaim",
            ActionKind::Revive => "revive",
            ActionKind::Withdraw => "withdraw",
        }
    }

    pub fn parse(s: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A word that names no action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an action (warn, freeze, unfreeze, reclaim, revive, withdraw)")]
pub struct UnknownAction(pub String);

impl std::str::FromStr for ActionKind {
    type Err = UnknownAction;
    fn from_str(s: &str) -> Result<ActionKind, UnknownAction> {
        ActionKind::parse(s).ok_or_else(|| UnknownAction(s.to_owned()))
    }
}

/// liankong `actions`: one action an agency took, as recorded. Append-only:
/// an action is never changed, a mistaken one is withdrawn by another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub action_id: String,
    pub kind: ActionKind,
    /// The agency that took it (its token's).
    pub agency: Agency,
    /// The name of the token it came through (`cli` from the command line).
    pub token: String,
    /// The person the caller named.
    pub by: String,
    /// When liankong recorded it (whole microseconds).
    pub recorded_at: DateTime<Utc>,
    /// The day it was taken: never after the day it was recorded.
    pub taken_on: NaiveDate,
    /// The project and year it concerns; a withdrawal's are those of the
    /// action it withdraws.
    pub project_code: ProjectCode,
    pub year: i32,
    /// `warn`: the alert it is about, and the day it must be answered by.
    pub alert_id: Option<String>,
    pub deadline: Option<NaiveDate>,
    /// `freeze`, `unfreeze`: the day it takes effect.
    pub effective_on: Option<NaiveDate>,
    /// `reclaim`, `revive`: greater than zero.
    pub amount: Option<Fen>,
    /// `revive`: the reclaims it draws on, in the order it draws.
    pub from: Vec<String>,
    /// `withdraw`: the action it takes back.
    pub withdraws: Option<String>,
    pub reason: String,
}

/// A unit name as the link step compares it: full-width brackets made
/// half-width and all white space (ASCII and the ideographic space) removed.
/// The audit office writes names this loosely (`SYSTEMS.md` §3).
pub fn normalize_unit_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            other => other,
        })
        .collect()
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

    /// Builds a record from canonical JSON (what an adapter's mapping makes).
    /// Field types are checked here: codes, enums, dates and amounts that do
    /// not fit are errors naming the field.
    pub fn from_json(
        collection: Collection,
        value: serde_json::Value,
    ) -> serde_json::Result<Record> {
        decode!(collection, |T| serde_json::from_value::<T>(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
