//! What a rule yields: a finding, with the view each recipient may see.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Agency, Source};

pub use super::registry::RuleId;

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RuleId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RuleId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RuleId, D::Error> {
        let s = String::deserialize(d)?;
        RuleId::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown rule {s:?}")))
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A source record a finding rests on: an agency's, or (`liankong`) an
/// action's.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct SourceRef {
    pub agency: Source,
    pub collection: String,
    pub key: String,
}

impl SourceRef {
    pub fn new(agency: impl Into<Source>, collection: &str, key: impl Into<String>) -> SourceRef {
        SourceRef {
            agency: agency.into(),
            collection: collection.to_owned(),
            key: key.into(),
        }
    }
}

/// What one recipient sees of a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub subject: Value,
    /// One Chinese sentence a clerk can act on.
    pub summary: String,
    /// The numbers that prove it; money as yuan strings with 2 places.
    pub facts: Value,
    pub sources: Vec<SourceRef>,
}

impl View {
    /// A view resting on one source record (a rule adds any others).
    pub fn new(subject: Value, summary: String, facts: Value, source: SourceRef) -> View {
        View {
            subject,
            summary,
            facts,
            sources: vec![source],
        }
    }
}

/// One condition found by one rule as of a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: RuleId,
    pub severity: Severity,
    pub recipients: Vec<Agency>,
    /// The unit and project it concerns, for silences and filters.
    pub unit_code: Option<String>,
    pub project_code: Option<String>,
    /// Whether it rests on discipline data.
    pub confidential: bool,
    /// The whole finding: what discipline sees of a confidential one, what
    /// every recipient sees of any other.
    pub view: View,
    /// What recipients other than discipline see of a confidential finding;
    /// without it, they are not recipients.
    pub redacted: Option<View>,
}

impl Finding {
    /// The subject whose hash is the alert's identity.
    pub fn subject(&self) -> &Value {
        &self.view.subject
    }

    /// What `agency` may see, or nothing when it is not a recipient.
    pub fn view_for(&self, agency: Agency) -> Option<&View> {
        if !self.recipients.contains(&agency) {
            return None;
        }
        if self.confidential && agency != Agency::Discipline {
            self.redacted.as_ref()
        } else {
            Some(&self.view)
        }
    }
}
