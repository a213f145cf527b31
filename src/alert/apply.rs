//! One evaluation's findings applied to the store: the alert of every
//! identity takes its [`step`], and the events its recipients must hear go
//! to the outbox, in one transaction with the alerts.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::events::Outbox;
use super::lifecycle::{Change, Found, Lifecycle, Step, step, told};
use super::silences::audience;
use crate::deliver::Subscriber;
use crate::reconcile::Finding;
use crate::store::alerts::{AlertRow, SilenceRow};
use crate::store::{Store, StoreError};

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

impl EvaluationOutcome {
    fn count(&mut self, change: Change) {
        match change {
            Change::Fired => self.firing += 1,
            Change::Escalated => self.escalated += 1,
            Change::Reminded => self.reminders += 1,
            Change::Resolved => self.resolved += 1,
            Change::Kept => {}
        }
    }
}

/// The alert id of a subject.
pub fn alert_id(salt: &str, subject: &Value) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(b"\n");
    h.update(subject.to_string().as_bytes());
    hex::encode(h.finalize())
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
    let mut outbox = Outbox::new(subscribers);
    let mut seen: HashSet<String> = HashSet::new();

    for finding in findings {
        let id = alert_id(&salt, finding.subject());
        if !seen.insert(id.clone()) {
            continue; // two findings, one subject: the first stands
        }
        let previous = match active.remove(&id) {
            Some(a) => Some(a),
            None => tx.alert(&id).await?,
        };
        let found = Found {
            id: &id,
            finding,
            as_of,
        };
        if let Some(s) = step(previous.as_ref(), Some(found), now, lifecycle) {
            let alert = tell(s, now, &silences, &mut outbox, &mut outcome);
            tx.put_alert(&alert).await?;
        }
    }

    // Whatever was active and was not found again is resolved.
    let mut gone: Vec<AlertRow> = active.into_values().collect();
    gone.sort_by(|a, b| a.id.cmp(&b.id));
    for a in gone {
        if let Some(s) = step(Some(&a), None, now, lifecycle) {
            let alert = tell(s, now, &silences, &mut outbox, &mut outcome);
            tx.put_alert(&alert).await?;
        }
    }

    tx.add_events(&outbox.events, now).await?;
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

/// Counts a step and writes its event for the recipients not silenced;
/// returns the alert to store, marked as told when someone was.
fn tell(
    s: Step,
    now: DateTime<Utc>,
    silences: &[SilenceRow],
    outbox: &mut Outbox<'_>,
    outcome: &mut EvaluationOutcome,
) -> AlertRow {
    outcome.count(s.change);
    let Some(event) = s.event else {
        return s.alert;
    };
    let audience = audience(silences, &s.alert.finding);
    if audience.is_empty() {
        outcome.silenced += 1;
        return s.alert;
    }
    outcome.events += outbox.write(event, now, &s.alert, &audience);
    told(s.alert, now)
}
