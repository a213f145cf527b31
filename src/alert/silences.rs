//! Silences: an alert that a silence covers is evaluated and listed, but
//! not delivered to the agencies it mutes.

use chrono::{DateTime, Utc};

use crate::model::Agency;
use crate::reconcile::Finding;
use crate::store::alerts::{SilenceRow, SilenceScope};

/// Whether an active silence mutes this finding for `agency`: a silence of
/// its rule, unit or project, set by the operator or by that agency.
pub fn muted(silences: &[SilenceRow], f: &Finding, agency: Agency) -> bool {
    silences.iter().any(|s| {
        let covers = match s.scope {
            SilenceScope::Rule => s.value == f.rule.as_str(),
            SilenceScope::Unit => f.unit_code.as_deref() == Some(s.value.as_str()),
            SilenceScope::Project => f.project_code.as_deref() == Some(s.value.as_str()),
        };
        covers && s.agency.is_none_or(|a| a == agency)
    })
}

/// The recipients not muted for this finding.
pub fn audience(silences: &[SilenceRow], f: &Finding) -> Vec<Agency> {
    f.recipients
        .iter()
        .copied()
        .filter(|a| !muted(silences, f, *a))
        .collect()
}

/// Silences in force at `now`.
pub fn in_force(silences: Vec<SilenceRow>, now: DateTime<Utc>) -> Vec<SilenceRow> {
    silences
        .into_iter()
        .filter(|s| s.lifted_at.is_none() && s.until > now)
        .collect()
}
