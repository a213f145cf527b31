//! What an agency may see of its alerts: the views the CLI and the API
//! list, filtered; an alert that is not for the agency is simply absent.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;

use super::silences::{in_force, muted};
use crate::model::Agency;
use crate::reconcile::{RuleId, Severity};
use crate::store::alerts::{AlertRow, AlertState, SilenceRow};
use crate::store::{Store, StoreError};

/// An alert as one agency may see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    pub alert_id: String,
    pub rule: RuleId,
    pub severity: Severity,
    pub state: AlertState,
    pub episode: i64,
    pub as_of: NaiveDate,
    pub first_seen: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Who acknowledged the current episode, when and why; null until someone does.
    pub acknowledged: Option<Acknowledgement>,
    /// Whether a silence in force mutes its deliveries to this agency.
    pub silenced: bool,
    #[schema(value_type = crate::api::schemas::AlertSubject)]
    pub subject: Value,
    /// One Chinese sentence a clerk can act on.
    pub summary: String,
    #[schema(value_type = crate::api::schemas::AlertFacts)]
    pub facts: Value,
    pub sources: Vec<crate::reconcile::SourceRef>,
    /// The actions taken on the alert's project in its year that the
    /// agency may see (filled from the store by the listings and the API);
    /// absent when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub actions: Vec<crate::action::view::ActionView>,
}

/// An acknowledgement of an alert's episode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Acknowledgement {
    pub at: DateTime<Utc>,
    /// `agency:person`.
    pub by: Option<String>,
    pub note: Option<String>,
}

/// The alert as `agency` may see it, or nothing when it is not for them.
pub fn view_for(alert: &AlertRow, agency: Agency, silences: &[SilenceRow]) -> Option<AlertView> {
    let finding = &alert.finding;
    let view = finding.view_for(agency)?;
    Some(AlertView {
        alert_id: alert.id.clone(),
        rule: alert.rule,
        severity: alert.severity,
        state: alert.state,
        episode: alert.episode,
        as_of: alert.as_of,
        first_seen: alert.first_seen,
        changed_at: alert.changed_at,
        resolved_at: alert.resolved_at,
        acknowledged: alert.acked_at.map(|at| Acknowledgement {
            at,
            by: alert.acked_by.clone(),
            note: alert.ack_note.clone(),
        }),
        silenced: muted(silences, finding, agency),
        subject: view.subject.clone(),
        summary: view.summary.clone(),
        facts: view.facts.clone(),
        sources: view.sources.clone(),
        actions: Vec::new(),
    })
}

/// Fills in the actions taken on each view's project (in its year) that
/// `agency` may see.
pub fn add_actions(
    views: &mut [AlertView],
    alerts: &[&AlertRow],
    actions: &[crate::model::Action],
    agency: Agency,
) {
    for (v, a) in views.iter_mut().zip(alerts) {
        if let Some(project) = a.project_code.as_deref() {
            v.actions = crate::action::view::on_project(actions, project, a.as_of.year(), agency);
        }
    }
}

/// Rule ids for CLI and API validation.
pub fn known_rule(s: &str) -> bool {
    RuleId::parse(s).is_some()
}

/// Which states an alert listing shows: one state, or `active` (firing or
/// escalated). A word outside these is refused where it is read (the CLI's
/// argument, the API's query): it would match no alert, and an empty list
/// would read as "all clear".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum StateFilter {
    Firing,
    Escalated,
    Resolved,
    /// Firing or escalated.
    Active,
}

impl StateFilter {
    pub fn admits(self, state: AlertState) -> bool {
        match self {
            StateFilter::Active => state.is_active(),
            StateFilter::Firing => state == AlertState::Firing,
            StateFilter::Escalated => state == AlertState::Escalated,
            StateFilter::Resolved => state == AlertState::Resolved,
        }
    }
}

/// Filters of alert listings (CLI and API).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertFilter {
    /// `firing`, `escalated`, `resolved`, or `active` (firing or
    /// escalated); another word is refused (400).
    pub state: Option<StateFilter>,
    /// A rule id; another word matches nothing.
    #[param(value_type = Option<RuleId>)]
    pub rule: Option<String>,
    /// `warning` or `critical`; another word is refused (400).
    pub severity: Option<Severity>,
    /// The unit the alert concerns (as its facts name it).
    pub unit: Option<String>,
    /// The project the alert concerns (as its facts name it).
    pub project: Option<String>,
    /// Only alerts this agency also receives.
    pub agency: Option<Agency>,
}

impl AlertFilter {
    pub fn matches(&self, v: &AlertView, recipients: &[Agency]) -> bool {
        let field = |key: &str| v.facts.get(key).and_then(|x| x.as_str());
        self.state.is_none_or(|s| s.admits(v.state))
            && self.rule.as_ref().is_none_or(|r| v.rule.as_str() == r)
            && self.severity.is_none_or(|s| v.severity == s)
            && self
                .unit
                .as_deref()
                .is_none_or(|u| field("unit").or(field("unit_code")) == Some(u))
            && self.project.as_deref().is_none_or(|p| {
                field("project") == Some(p)
                    || v.facts
                        .get("projects")
                        .and_then(|x| x.as_array())
                        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(p)))
            })
            && self.agency.is_none_or(|a| recipients.contains(&a))
    }
}

/// Every alert `agency` may see, filtered.
pub async fn visible(
    store: &dyn Store,
    agency: Agency,
    filter: &AlertFilter,
    now: DateTime<Utc>,
) -> Result<Vec<AlertView>, StoreError> {
    let silences = in_force(store.silences().await?, now);
    let alerts = store.alerts().await?;
    let (rows, mut views): (Vec<&AlertRow>, Vec<AlertView>) = alerts
        .iter()
        .filter_map(|a| {
            let v = view_for(a, agency, &silences)?;
            filter.matches(&v, a.recipients()).then_some((a, v))
        })
        .unzip();
    add_actions(&mut views, &rows, &store.actions(None).await?, agency);
    Ok(views)
}
