//! The alert lifecycle: findings of an evaluation become alerts that fire,
//! escalate, remind and resolve, and every change the recipients must hear
//! of becomes one outbox event per subscriber, in the same transaction.
//!
//! An alert's identity is the sha-256 of a per-store salt and its subject:
//! one condition is one alert however often it is evaluated, and an id shown
//! to finance cannot be turned back into a referral number by guessing.
//! Each recipient gets the view of the finding it may see
//! ([`Finding::view_for`]); a silenced alert is kept and listed but not
//! delivered. Logs carry counts and ids only, never a finding's content.

pub mod subscribers;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::model::Agency;
use crate::reconcile::{Finding, RuleId, Severity, View};
use crate::store::alerts::{AlertRow, NewEvent, SilenceRow};
pub use crate::store::alerts::{AlertState, EventType, SilenceScope};
use crate::store::{Store, StoreError};
pub use subscribers::Subscriber;

/// What one evaluation changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EvaluationOutcome {
    pub findings: u64,
    pub firing: u64,
    pub escalated: u64,
    pub resolved: u64,
    pub reminders: u64,
    /// Events not written because the alert is silenced.
    pub silenced: u64,
    /// Outbox rows written (events × subscribers).
    pub events: u64,
}

/// The alert id of a subject.
pub fn alert_id(salt: &str, subject: &Value) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(b"\n");
    h.update(subject.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// Whether an active silence mutes this finding for `agency`: a silence of
/// its rule, unit or project, set by the operator or by that agency.
fn muted(silences: &[SilenceRow], f: &Finding, agency: Agency) -> bool {
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
fn audience(silences: &[SilenceRow], f: &Finding) -> Vec<Agency> {
    f.recipients
        .iter()
        .copied()
        .filter(|a| !muted(silences, f, *a))
        .collect()
}

/// The webhook body of an event for one recipient's view.
pub fn event_body(
    event_type: EventType,
    at: DateTime<Utc>,
    alert: &AlertRow,
    finding: &Finding,
    view: &View,
) -> String {
    let body = json!({
        "type": event_type,
        "timestamp": crate::adapter::mapping::utc_string(at),
        "data": {
            "alert_id": alert.id,
            "rule": finding.rule,
            "severity": finding.severity,
            "state": alert.state,
            "subject": view.subject,
            "summary": view.summary,
            "facts": view.facts,
            "sources": view.sources,
            "as_of": alert.as_of,
            "first_seen": crate::adapter::mapping::utc_string(alert.first_seen),
            "episode": alert.episode,
        }
    });
    body.to_string()
}

/// Settings of the lifecycle.
#[derive(Debug, Clone, Copy)]
pub struct Lifecycle {
    /// A firing alert is sent again this often (unless acknowledged).
    pub repeat_interval: Duration,
}

/// Applies one evaluation's findings: alert changes and events commit
/// together, or nothing does.
pub async fn apply_findings(
    store: &dyn Store,
    findings: &[Finding],
    as_of: NaiveDate,
    now: DateTime<Utc>,
    lifecycle: Lifecycle,
    subscribers: &[Subscriber],
) -> Result<EvaluationOutcome, StoreError> {
    let mut tx = store.begin_alerts().await?;
    let salt = tx.salt().await?;
    let silences = tx.active_silences(now).await?;
    let mut active: HashMap<String, AlertRow> = tx
        .active_alerts()
        .await?
        .into_iter()
        .map(|a| (a.id.clone(), a))
        .collect();
    let mut outcome = EvaluationOutcome {
        findings: findings.len() as u64,
        ..Default::default()
    };
    let mut events: Vec<NewEvent> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut sequence = 0u64;

    for f in findings {
        let id = alert_id(&salt, f.subject());
        if !seen.insert(id.clone()) {
            continue; // two findings, one subject: the first stands
        }
        let previous = match active.remove(&id) {
            Some(a) => Some(a),
            None => tx.alert(&id).await?,
        };
        let (mut alert, event) = match previous {
            Some(prev) if prev.state.is_active() => {
                let rose = f.severity > prev.severity;
                let fell = f.severity < prev.severity;
                let mut a = prev.clone();
                a.severity = f.severity;
                a.recipients = f.recipients.clone();
                a.finding = f.clone();
                a.as_of = as_of;
                a.unit_code = f.unit_code.clone();
                a.project_code = f.project_code.clone();
                let event = if rose {
                    a.state = AlertState::Escalated;
                    outcome.escalated += 1;
                    Some(EventType::Escalated)
                } else {
                    if fell {
                        a.state = AlertState::Firing;
                    }
                    let told = a.notified_episode == Some(a.episode);
                    let due = a
                        .notified_at
                        .is_some_and(|t| now - t >= lifecycle.repeat_interval);
                    if !told {
                        // Fired while silenced: say so once it may be said.
                        Some(if a.state == AlertState::Escalated {
                            EventType::Escalated
                        } else {
                            EventType::Firing
                        })
                    } else if due && a.acked_at.is_none() {
                        outcome.reminders += 1;
                        Some(EventType::Reminder)
                    } else {
                        None
                    }
                };
                if a != prev || event.is_some() {
                    a.changed_at = now;
                }
                (a, event)
            }
            previous => {
                outcome.firing += 1;
                let a = AlertRow {
                    id: id.clone(),
                    rule: f.rule,
                    subject: f.subject().to_string(),
                    confidential: f.confidential,
                    severity: f.severity,
                    state: AlertState::Firing,
                    episode: previous.as_ref().map_or(1, |p| p.episode + 1),
                    unit_code: f.unit_code.clone(),
                    project_code: f.project_code.clone(),
                    recipients: f.recipients.clone(),
                    finding: f.clone(),
                    as_of,
                    first_seen: now,
                    changed_at: now,
                    resolved_at: None,
                    acked_at: None,
                    acked_by: None,
                    ack_note: None,
                    notified_episode: previous.as_ref().and_then(|p| p.notified_episode),
                    notified_state: previous.as_ref().and_then(|p| p.notified_state),
                    notified_at: previous.as_ref().and_then(|p| p.notified_at),
                };
                (a, Some(EventType::Firing))
            }
        };
        if let Some(event_type) = event {
            let audience = audience(&silences, f);
            if audience.is_empty() {
                outcome.silenced += 1;
            } else {
                let written = route(
                    &mut events,
                    &mut sequence,
                    event_type,
                    now,
                    &alert,
                    f,
                    &audience,
                    subscribers,
                );
                outcome.events += written;
                alert.notified_episode = Some(alert.episode);
                alert.notified_state = Some(alert.state);
                alert.notified_at = Some(now);
            }
        }
        tx.put_alert(&alert).await?;
    }

    // Whatever was active and was not found again is resolved.
    let mut gone: Vec<AlertRow> = active.into_values().collect();
    gone.sort_by(|a, b| a.id.cmp(&b.id));
    for mut a in gone {
        a.state = AlertState::Resolved;
        a.resolved_at = Some(now);
        a.changed_at = now;
        outcome.resolved += 1;
        let told = a.notified_episode == Some(a.episode);
        if told {
            let f = a.finding.clone();
            let audience = audience(&silences, &f);
            if audience.is_empty() {
                outcome.silenced += 1;
            } else {
                outcome.events += route(
                    &mut events,
                    &mut sequence,
                    EventType::Resolved,
                    now,
                    &a,
                    &f,
                    &audience,
                    subscribers,
                );
                a.notified_state = Some(AlertState::Resolved);
                a.notified_at = Some(now);
            }
        }
        tx.put_alert(&a).await?;
    }

    tx.add_events(&events, now).await?;
    let report = serde_json::to_string(&outcome).map_err(StoreError::Encode)?;
    tx.record_run(as_of, now, now, &report).await?;
    tx.commit().await?;
    tracing::info!(
        as_of = %as_of, findings = outcome.findings, firing = outcome.firing,
        escalated = outcome.escalated, resolved = outcome.resolved, reminders = outcome.reminders,
        silenced = outcome.silenced, events = outcome.events, "alerts updated"
    );
    Ok(outcome)
}

/// Writes one event per subscriber of each agency of `audience`, each with
/// the view its agency may see. Returns how many were written.
#[allow(clippy::too_many_arguments)]
fn route(
    events: &mut Vec<NewEvent>,
    sequence: &mut u64,
    event_type: EventType,
    now: DateTime<Utc>,
    alert: &AlertRow,
    finding: &Finding,
    audience: &[Agency],
    subscribers: &[Subscriber],
) -> u64 {
    let mut written = 0;
    for agency in audience {
        let Some(view) = finding.view_for(*agency) else {
            continue;
        };
        let body = event_body(event_type, now, alert, finding, view);
        for s in subscribers
            .iter()
            .filter(|s| s.agency == *agency && s.wants(event_type))
        {
            *sequence += 1;
            let mut h = Sha256::new();
            for part in [
                alert.id.as_str(),
                &alert.episode.to_string(),
                event_type.as_str(),
                &s.name,
                &now.timestamp_nanos_opt().unwrap_or_default().to_string(),
                &sequence.to_string(),
            ] {
                h.update(part.as_bytes());
                h.update(b"\n");
            }
            events.push(NewEvent {
                event_id: format!("msg_{}", &hex::encode(h.finalize())[..32]),
                alert_id: alert.id.clone(),
                subscriber: s.name.clone(),
                agency: *agency,
                event_type,
                body: body.clone(),
            });
            written += 1;
        }
    }
    written
}

/// An alert as one agency may see it.
#[derive(Debug, Clone, Serialize)]
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
    pub acknowledged: Option<Value>,
    pub silenced: bool,
    pub subject: Value,
    pub summary: String,
    pub facts: Value,
    pub sources: Vec<crate::reconcile::SourceRef>,
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
        acknowledged: alert
            .acked_at
            .map(|t| json!({"at": t, "by": alert.acked_by, "note": alert.ack_note})),
        silenced: muted(silences, finding, agency),
        subject: view.subject.clone(),
        summary: view.summary.clone(),
        facts: view.facts.clone(),
        sources: view.sources.clone(),
    })
}

/// Rule ids for CLI and API validation.
pub fn known_rule(s: &str) -> bool {
    RuleId::parse(s).is_some()
}

/// Filters of alert listings (CLI and API).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertFilter {
    /// `firing`, `escalated`, `resolved`, or `active` (firing or escalated).
    pub state: Option<String>,
    pub rule: Option<String>,
    pub severity: Option<String>,
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
        let state_ok = match self.state.as_deref() {
            None => true,
            Some("active") => v.state.is_active(),
            Some(s) => v.state.as_str() == s,
        };
        state_ok
            && self.rule.as_ref().is_none_or(|r| v.rule.as_str() == r)
            && self
                .severity
                .as_ref()
                .is_none_or(|s| v.severity.as_str() == s)
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

/// Silences in force at `now`.
pub fn in_force(silences: Vec<SilenceRow>, now: DateTime<Utc>) -> Vec<SilenceRow> {
    silences
        .into_iter()
        .filter(|s| s.lifted_at.is_none() && s.until > now)
        .collect()
}

/// Every alert `agency` may see, filtered.
pub async fn visible(
    store: &dyn Store,
    agency: Agency,
    filter: &AlertFilter,
    now: DateTime<Utc>,
) -> Result<Vec<AlertView>, StoreError> {
    let silences = in_force(store.silences().await?, now);
    Ok(store
        .alerts()
        .await?
        .iter()
        .filter_map(|a| {
            let v = view_for(a, agency, &silences)?;
            filter.matches(&v, &a.recipients).then_some(v)
        })
        .collect())
}
