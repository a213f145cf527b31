//! Reconciliation: the rules of `RULES.md` over the store as of a date.
//!
//! [`evaluate`] asks the store for its sums (`store::facts`) and runs every
//! enabled rule over them; it writes nothing. The alert stage turns the
//! findings into alerts and events. Nothing here logs a finding's content:
//! findings of confidential rules carry discipline data.

pub mod config;
pub mod finding;
pub mod rules;

use std::collections::BTreeMap;

use chrono::NaiveDate;

pub use config::RulesConfig;
pub use finding::{Finding, RuleId, Severity, SourceRef, View};

use crate::model::Agency;
use crate::store::StoreError;
use crate::store::facts::{FactStore, FactsQuery};

/// Who may receive each rule's findings when the config overrides
/// recipients: a confidential rule never beyond `RULES.md`.
pub fn check_recipients(rules: &RulesConfig) -> Result<(), String> {
    if let Some(r) = &rules.freeze_breach.recipients
        && let Some(bad) = r
            .iter()
            .find(|a| !matches!(a, Agency::Discipline | Agency::Finance))
    {
        return Err(format!(
            "rules.\"referral.freeze_breach\": {bad} may not receive discipline data (only discipline, and finance redacted)"
        ));
    }
    Ok(())
}

/// Finance projects the project rules judge at a time. A slice's facts
/// take about a kilobyte a project, so a province is walked in about ten
/// megabytes whatever its size.
pub const PROJECT_SLICE: usize = 10_000;

/// Runs every enabled rule as of `as_of` (fiscal year = its year).
pub async fn evaluate(
    store: &dyn FactStore,
    as_of: NaiveDate,
    c: &RulesConfig,
) -> Result<Vec<Finding>, StoreError> {
    evaluate_in_slices(store, as_of, c, PROJECT_SLICE).await
}

/// [`evaluate`], with the project rules walking `slice` finance projects at
/// a time. Every project rule judges a project on its own facts, so the
/// findings are the same whatever the slice.
pub async fn evaluate_in_slices(
    store: &dyn FactStore,
    as_of: NaiveDate,
    c: &RulesConfig,
    slice: usize,
) -> Result<Vec<Finding>, StoreError> {
    let q = FactsQuery::new(as_of, c.unspendable.lookback_days);
    let needs_projects = c.approved_mismatch.enabled
        || c.slow.enabled
        || c.idle.enabled
        || c.lump_sum.enabled
        || c.tranche_unsettled.enabled
        || c.target_missing.enabled
        || c.result_unapplied.enabled
        || c.unspendable.enabled
        || c.over_quota.enabled;
    let slices = if needs_projects {
        store.project_slices(slice).await?
    } else {
        Vec::new()
    };

    let mut findings: Vec<(Vec<Finding>, &Option<Vec<Agency>>)> = Vec::new();
    for range in &slices {
        let projects = store.project_facts(&q, range).await?;
        let by_code: BTreeMap<&str, &crate::store::facts::ProjectFacts> = projects
            .iter()
            .map(|p| (p.project_code.as_str(), p))
            .collect();
        if c.approved_mismatch.enabled {
            findings.push((
                rules::approved_mismatch(&c.approved_mismatch, &q, &projects),
                &c.approved_mismatch.recipients,
            ));
        }
        if c.slow.enabled {
            findings.push((rules::slow(&c.slow, &q, &projects), &c.slow.recipients));
        }
        if c.idle.enabled {
            findings.push((rules::idle(&c.idle, &q, &projects), &c.idle.recipients));
        }
        if c.lump_sum.enabled {
            findings.push((
                rules::lump_sum(&c.lump_sum, &q, &projects),
                &c.lump_sum.recipients,
            ));
        }
        if c.tranche_unsettled.enabled {
            let before = as_of - chrono::Duration::days(c.tranche_unsettled.settle_days + 1);
            let rows = store.unsettled_tranches(&q, before, range).await?;
            findings.push((
                rules::tranche_unsettled(&c.tranche_unsettled, &q, &rows, &by_code),
                &c.tranche_unsettled.recipients,
            ));
        }
        if c.target_missing.enabled {
            findings.push((
                rules::target_missing(&q, &projects),
                &c.target_missing.recipients,
            ));
        }
        if c.result_unapplied.enabled {
            findings.push((
                rules::result_unapplied(&c.result_unapplied, &q, &projects),
                &c.result_unapplied.recipients,
            ));
        }
        if c.unspendable.enabled {
            findings.push((
                rules::unspendable(&c.unspendable, &q, &projects),
                &c.unspendable.recipients,
            ));
        }
        if c.over_quota.enabled {
            findings.push((rules::over_quota(&q, &projects), &c.over_quota.recipients));
        }
    }
    if c.mirror_mismatch.enabled {
        // The whole year in one query (a slice of it would scan the
        // execution table again); only the differing rows come back.
        let rows = store
            .mirror_mismatches(&q, c.mirror_mismatch.tolerance.0)
            .await?;
        findings.push((
            rules::mirror_mismatch(&q, &rows),
            &c.mirror_mismatch.recipients,
        ));
    }
    let audit = if c.status_mismatch.enabled || c.overdue.enabled || c.unresolved_unit.enabled {
        store.audit_findings().await?
    } else {
        Vec::new()
    };
    if c.status_mismatch.enabled {
        let reports = store.rectifications().await?;
        findings.push((
            rules::status_mismatch(&c.status_mismatch, &q, &audit, &reports),
            &c.status_mismatch.recipients,
        ));
    }
    if c.overdue.enabled {
        findings.push((
            rules::overdue(&c.overdue, &q, &audit),
            &c.overdue.recipients,
        ));
    }
    if c.freeze_breach.enabled {
        let rows = store.freeze_breaches(as_of).await?;
        findings.push((rules::freeze_breach(&q, &rows), &c.freeze_breach.recipients));
    }
    if c.rate_mismatch.enabled {
        let rows = store.orgdept_rows(q.year).await?;
        // The quarters ended by `as_of` that orgdept rated, summed in one pass.
        let quarters: Vec<(i64, NaiveDate)> = (1..=4)
            .filter_map(|quarter| Some((quarter, rules::quarter_end(q.year, quarter)?)))
            .take_while(|(_, end)| *end <= as_of)
            .filter(|(quarter, _)| rows.iter().any(|r| r.quarter == *quarter))
            .collect();
        let ends: Vec<NaiveDate> = quarters.iter().map(|(_, end)| *end).collect();
        let sums = if ends.is_empty() {
            Vec::new()
        } else {
            store.unit_quarters(q.year, &ends).await?
        };
        let mut all = Vec::new();
        for ((quarter, _), units) in quarters.iter().zip(&sums) {
            let of_quarter: Vec<_> = rows.iter().filter(|r| r.quarter == *quarter).collect();
            all.extend(rules::rate_mismatch(
                &c.rate_mismatch,
                q.year,
                *quarter,
                &of_quarter,
                units,
            ));
        }
        findings.push((all, &c.rate_mismatch.recipients));
    }
    if c.unknown_project.enabled {
        let rows = store.unknown_projects().await?;
        findings.push((rules::unknown_project(&rows), &c.unknown_project.recipients));
    }
    if c.unresolved_unit.enabled {
        findings.push((
            rules::unresolved_unit(&audit),
            &c.unresolved_unit.recipients,
        ));
    }

    let mut all: Vec<Finding> = Vec::new();
    for (batch, recipients) in findings {
        for mut f in batch {
            if let Some(r) = recipients {
                override_recipients(&mut f, r);
            }
            all.push(f);
        }
    }
    all.sort_by_cached_key(|f| (f.rule, f.subject().to_string()));
    Ok(all)
}

/// Applies a configured recipient list. A finding resting on discipline data
/// keeps discipline-only findings with discipline, whatever the config says.
fn override_recipients(f: &mut Finding, recipients: &[Agency]) {
    if f.confidential && f.redacted.is_none() {
        return;
    }
    f.recipients = recipients.to_vec();
}
