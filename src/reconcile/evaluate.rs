//! An evaluation: every enabled rule of the registry over the store's facts
//! as of a date. The project rules walk finance's projects a slice at a
//! time; the others run once, those that read the others' findings last.
//! A finding about a project then shows the actions taken on it. Nothing is
//! written.

use chrono::NaiveDate;

use super::RulesConfig;
use super::finding::Finding;
use super::rule::{Facts, Reads, Rule};
use crate::model::Agency;
use crate::store::StoreError;
use crate::store::facts::{FactStore, FactsQuery};

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
    // The project facts carry exp(p, D − lookback) for the year-end
    // projection, whose lookback is that rule's setting.
    let q = FactsQuery::new(as_of, c.unspendable.lookback_days);
    let (of_projects, rest): (Vec<&dyn Rule>, Vec<&dyn Rule>) = c
        .rules()
        .into_iter()
        .filter(|r| r.enabled())
        .partition(|r| r.reads() == Reads::Projects);
    let (of_store, after): (Vec<&dyn Rule>, Vec<&dyn Rule>) =
        rest.into_iter().partition(|r| r.reads() == Reads::Store);

    let mut all: Vec<Finding> = Vec::new();
    let slices = if of_projects.is_empty() {
        Vec::new()
    } else {
        store.project_slices(slice).await?
    };
    for range in &slices {
        let projects = store.project_facts(&q, range).await?;
        let facts = Facts::of_slice(store, q, range, &projects);
        for rule in &of_projects {
            all.extend(addressed(*rule, rule.judge(&facts).await?));
        }
        // What the slice's facts took goes back before the next is read.
        drop(facts);
        drop(projects);
        crate::memory::give_back();
    }
    let facts = Facts::of_store(store, q);
    for rule in &of_store {
        all.extend(addressed(*rule, rule.judge(&facts).await?));
    }
    if !after.is_empty() {
        let before = all.clone();
        let facts = Facts::of_store(store, q).with_findings(&before);
        for rule in &after {
            all.extend(addressed(*rule, rule.judge(&facts).await?));
        }
    }
    let actions = store.actions(Some(q.year)).await?;
    crate::reconcile::rules::action::show_actions(&mut all, &actions, as_of);
    all.sort_by_cached_key(|f| (f.rule, f.subject().to_string()));
    Ok(all)
}

/// A rule's findings with the recipients its config gives them, if any.
fn addressed(rule: &dyn Rule, mut findings: Vec<Finding>) -> Vec<Finding> {
    if let Some(recipients) = rule.recipients() {
        for f in &mut findings {
            override_recipients(f, recipients);
        }
    }
    findings
}

/// Applies a configured recipient list. A finding resting on discipline data
/// keeps discipline-only findings with discipline, whatever the config says.
fn override_recipients(f: &mut Finding, recipients: &[Agency]) {
    if f.confidential && f.redacted.is_none() {
        return;
    }
    f.recipients = recipients.to_vec();
}
