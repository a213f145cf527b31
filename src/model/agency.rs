//! Who: the five agencies, the sources records come from, and the
//! collections each owns.

use std::fmt;

use serde::{Deserialize, Serialize};

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
