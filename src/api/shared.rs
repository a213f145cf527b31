//! What the API's handlers and the console both answer from, so that a
//! clerk's page shows exactly what the API shows the same agency: one alert
//! (and the log of who viewed a confidential one), acknowledging, the
//! checks of a new silence, an agency's outbox and its redrive, and the
//! adapters' health.

use chrono::{DateTime, Datelike, Utc};

use super::ApiState;
pub use super::adapters::AdapterView;
use crate::alert::{self, AlertView, SilenceScope};
use crate::model::Agency;
use crate::store::alerts::{AlertRow, OutboxRow};
use crate::store::console::NewAlertView;
use crate::store::{Store, StoreError};

/// The alert as `agency` may see it, with the actions on its project; none
/// when it does not exist or is not for `agency` (the same answer).
async fn alert_and_row(
    store: &dyn Store,
    agency: Agency,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<(AlertRow, AlertView)>, StoreError> {
    let Some(a) = store.get_alert(id).await? else {
        return Ok(None);
    };
    let silences = alert::in_force(store.silences().await?, now);
    let Some(mut view) = alert::view_for(&a, agency, &silences) else {
        return Ok(None);
    };
    let actions = store.actions(None).await?;
    alert::view::add_actions(std::slice::from_mut(&mut view), &[&a], &actions, agency);
    Ok(Some((a, view)))
}

/// The alert as `agency` may see it, or none.
pub async fn alert(
    store: &dyn Store,
    agency: Agency,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<AlertView>, StoreError> {
    Ok(alert_and_row(store, agency, id, now).await?.map(|(_, v)| v))
}

/// Who looks at an alert, and through what (`console` or `api`).
pub struct Viewer<'a> {
    pub agency: Agency,
    /// The name of the viewer's personal token.
    pub token: &'a str,
    pub channel: &'a str,
}

/// The alert as the viewer's agency may see it, or none; a confidential
/// alert's view is logged (who, when) before it is shown.
pub async fn view_alert(
    store: &dyn Store,
    viewer: &Viewer<'_>,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<AlertView>, StoreError> {
    let Some((row, view)) = alert_and_row(store, viewer.agency, id, now).await? else {
        return Ok(None);
    };
    if row.confidential {
        store
            .log_alert_view(&NewAlertView {
                alert_id: &row.id,
                rule: row.rule,
                agency: viewer.agency,
                token: viewer.token,
                channel: viewer.channel,
                at: now,
            })
            .await?;
    }
    Ok(Some(view))
}

/// What acknowledging an alert came to.
pub enum Acked {
    /// The alert, acknowledged.
    Done(Box<AlertView>),
    /// No alert the agency may see.
    NotFound,
    /// It is resolved: there is nothing to acknowledge.
    Resolved,
}

/// Acknowledges an alert `agency` may see, by `by` of that agency.
pub async fn acknowledge(
    store: &dyn Store,
    agency: Agency,
    id: &str,
    by: &str,
    note: &str,
    now: DateTime<Utc>,
) -> Result<Acked, StoreError> {
    if alert(store, agency, id, now).await?.is_none() {
        return Ok(Acked::NotFound);
    }
    let by = format!("{agency}:{by}");
    if !store.ack_alert(id, &by, note, now).await? {
        return Ok(Acked::Resolved);
    }
    Ok(match alert(store, agency, id, now).await? {
        Some(v) => Acked::Done(Box::new(v)),
        None => Acked::NotFound,
    })
}

/// Why a new silence is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSilence {
    #[error("scope must be rule, unit or project")]
    Scope,
    #[error("unknown rule {0:?}")]
    Rule(String),
    #[error("until is in the past")]
    Past,
    #[error("until is after the year 9999")]
    TooLate,
    #[error("a silence needs a reason")]
    Reason,
}

/// Checks a new silence; its scope when it may be set.
pub fn check_silence(
    scope: &str,
    value: &str,
    until: DateTime<Utc>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<SilenceScope, BadSilence> {
    let scope = SilenceScope::parse(scope).ok_or(BadSilence::Scope)?;
    if scope == SilenceScope::Rule && !alert::known_rule(value) {
        return Err(BadSilence::Rule(value.to_owned()));
    }
    if until <= now {
        return Err(BadSilence::Past);
    }
    // RFC 3339 has four digits for the year: a later `until` could be kept
    // but not listed as the API describes it.
    if until.year() > 9999 {
        return Err(BadSilence::TooLate);
    }
    if reason.trim().is_empty() {
        return Err(BadSilence::Reason);
    }
    Ok(scope)
}

/// `agency`'s own outbox events, newest first.
pub async fn deliveries(
    store: &dyn Store,
    agency: Agency,
    state: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<OutboxRow>, StoreError> {
    store
        .agency_deliveries(agency, state, None, limit, offset)
        .await
}

/// Puts one of `agency`'s dead letters back to pending; false when it has
/// no dead letter with that id.
pub async fn redrive(
    store: &dyn Store,
    agency: Agency,
    id: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let dead = store
        .agency_deliveries(agency, Some("dead"), None, i64::MAX, 0)
        .await?;
    if !dead.iter().any(|d| d.id == id) {
        return Ok(false);
    }
    store.redrive(Some(id), now).await?;
    Ok(true)
}

/// Each configured adapter: schedule, next run, newest run. Other agencies
/// see that the discipline adapter runs, never how much it fetched.
pub async fn adapters(s: &ApiState, agency: Agency) -> Result<Vec<AdapterView>, StoreError> {
    super::adapters::views(s, agency).await
}
