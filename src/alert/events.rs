//! The outbox events of one evaluation: one per subscriber of each agency
//! that may hear of an alert's change, each with the view of the finding
//! that agency may see.

use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::clock::rfc3339;
use crate::deliver::Subscriber;
use crate::model::Agency;
use crate::reconcile::{Finding, View};
use crate::store::alerts::{AlertRow, EventType, NewEvent};

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
        "timestamp": rfc3339(at),
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
            "first_seen": rfc3339(alert.first_seen),
            "episode": alert.episode,
        }
    });
    body.to_string()
}

/// The events an evaluation writes, numbered in the order written: two
/// events of one alert, subscriber and instant still get distinct ids.
pub(super) struct Outbox<'a> {
    subscribers: &'a [Subscriber],
    pub events: Vec<NewEvent>,
    sequence: u64,
}

impl<'a> Outbox<'a> {
    pub fn new(subscribers: &'a [Subscriber]) -> Outbox<'a> {
        Outbox {
            subscribers,
            events: Vec::new(),
            sequence: 0,
        }
    }

    /// Writes one event per subscriber of each agency of `audience` that
    /// wants `event_type`, each with the view its agency may see of the
    /// alert's finding. Returns how many were written.
    pub fn write(
        &mut self,
        event_type: EventType,
        now: DateTime<Utc>,
        alert: &AlertRow,
        audience: &[Agency],
    ) -> u64 {
        let finding = &alert.finding;
        let mut written = 0;
        for agency in audience {
            let Some(view) = finding.view_for(*agency) else {
                continue;
            };
            let body = event_body(event_type, now, alert, finding, view);
            for s in self
                .subscribers
                .iter()
                .filter(|s| s.agency == *agency && s.wants(event_type))
            {
                self.sequence += 1;
                let mut h = Sha256::new();
                for part in [
                    alert.id.as_str(),
                    &alert.episode.to_string(),
                    event_type.as_str(),
                    &s.name,
                    &now.timestamp_nanos_opt().unwrap_or_default().to_string(),
                    &self.sequence.to_string(),
                ] {
                    h.update(part.as_bytes());
                    h.update(b"\n");
                }
                self.events.push(NewEvent {
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
}
