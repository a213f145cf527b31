//! What an adapter run did: one summary that `sync` and `once` print, the
//! store keeps as JSON with its run, and the metrics and the API read back
//! as this type (never by key, so a renamed field cannot silently zero a
//! metric).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{BatchOutcome, RunId};

/// What one stream did in a run.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamReport {
    pub collection: String,
    pub fetched: u64,
    #[serde(flatten)]
    pub outcome: BatchOutcome,
    /// Whether the pull was complete: every page as announced, or at least
    /// one file.
    pub complete: bool,
    /// Quarantined rows whose key could not be read: a snapshot with any
    /// deletes nothing, since it cannot tell which records they are.
    #[serde(default)]
    pub unkeyed: u64,
    /// The deletions of a complete snapshot held by the mass-deletion guard
    /// (none were applied), and the live records they would have left.
    #[serde(default)]
    pub held: Option<HeldReport>,
    /// An accepted hold whose snapshot now deletes more than was held.
    #[serde(default)]
    pub accepted: Option<u64>,
}

/// Deletions a snapshot held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeldReport {
    pub deletions: u64,
    pub live: u64,
}

impl StreamReport {
    /// The stream's outcome in words, as `sync` and `once` print it.
    pub fn status(&self, adapter: &str) -> String {
        let q = self.outcome.quarantined;
        if let Some(h) = self.held {
            let more = match self.accepted {
                Some(n) => format!(", more than the {n} accepted"),
                None => String::new(),
            };
            return format!(
                "HELD: would delete {} of {} live records{more}; nothing deleted \
                 (if the source really deleted them: liankong sync --adapter {adapter} --accept-deletions)",
                h.deletions, h.live
            );
        }
        if !self.complete {
            return "incomplete: nothing deleted".into();
        }
        match (q, self.unkeyed) {
            (0, _) => "ok".into(),
            (q, 0) => format!("ok, complete with {q} quarantined"),
            (q, u) => format!(
                "complete with {q} quarantined, {u} without a readable key: nothing deleted"
            ),
        }
    }
}

/// What one run did. When `error` is set nothing of the run was kept.
///
/// The one summary of a run: the store keeps it as JSON with the run, and
/// the metrics and the API read it back as this type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncReport {
    pub adapter: String,
    pub run: Option<RunId>,
    pub started: DateTime<Utc>,
    pub seconds: f64,
    pub streams: Vec<StreamReport>,
    pub links_changed: u64,
    pub error: Option<String>,
    /// Another replica held this adapter's lease: nothing was pulled.
    #[serde(default)]
    pub skipped: bool,
}

impl SyncReport {
    /// A summary as the store keeps it with its run.
    pub fn from_stored(text: &str) -> serde_json::Result<SyncReport> {
        serde_json::from_str(text)
    }

    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// Whether a stream's deletions were held back for an operator.
    pub fn held(&self) -> bool {
        self.streams.iter().any(|s| s.held.is_some())
    }

    pub fn totals(&self) -> (u64, BatchOutcome) {
        let mut fetched = 0;
        let mut total = BatchOutcome::default();
        for s in &self.streams {
            fetched += s.fetched;
            total += s.outcome;
        }
        (fetched, total)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::store::{BatchOutcome, RunId};

    #[test]
    fn a_run_summary_reads_back_as_it_was_written_and_older_ones_still_read() {
        let report = SyncReport {
            adapter: "audit".into(),
            run: Some(RunId(7)),
            started: DateTime::parse_from_rfc3339("2021-10-01T00:00:00Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap(),
            seconds: 1.5,
            streams: vec![StreamReport {
                collection: "audit.findings".into(),
                fetched: 3,
                outcome: BatchOutcome {
                    new: 1,
                    changed: 1,
                    unchanged: 0,
                    deleted: 0,
                    quarantined: 1,
                },
                complete: true,
                unkeyed: 0,
                held: Some(HeldReport {
                    deletions: 40,
                    live: 42,
                }),
                accepted: None,
            }],
            links_changed: 2,
            error: None,
            skipped: false,
        };
        let text = serde_json::to_string(&report).unwrap();
        let back = SyncReport::from_stored(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        assert_eq!(back.totals(), (3, report.streams[0].outcome));
        assert!(back.held());

        // A summary stored before the held and unkeyed counts existed.
        let old = r#"{"adapter":"npc","run":3,"started":"2021-10-01T00:00:00Z","seconds":2.0,
            "streams":[{"collection":"npc.budgets","fetched":5,"new":5,"changed":0,
            "unchanged":0,"deleted":0,"quarantined":0,"complete":true}],
            "links_changed":0,"error":null,"skipped":false}"#;
        let back = SyncReport::from_stored(old).unwrap();
        assert_eq!((back.totals().0, back.streams[0].held), (5, None));
    }
}
