//! Issuing checkpoints: whether one is due ([`decide`], pure), and the one
//! transaction that signs it for both audiences, keeps it and writes its
//! `store.checkpoint` event for every subscriber ([`issue_due`]).
//!
//! A checkpoint is never signed over a history that does not extend the
//! previous one: a store rewritten or restored underneath the signer stops
//! the checkpoints (and says which stream) instead of being blessed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::checkpoint::{Audience, Checkpoint, StreamHead};
use super::config::Witness;
use crate::clock::rfc3339;
use crate::deliver::Subscriber;
use crate::model::Agency;
use crate::store::alerts::{EventType, NewEvent};
use crate::store::witness::Sizes;
use crate::store::{Store, StoreError};

/// Whether a checkpoint is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing was written since the newest checkpoint (or ever).
    Unchanged,
    /// History grew, and the interval since the newest checkpoint ends then.
    NotDue {
        due_at: DateTime<Utc>,
    },
    Due,
}

/// What one attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    Unchanged,
    NotDue {
        due_at: DateTime<Utc>,
    },
    /// Checkpoint `id`, and its events.
    Issued {
        id: i64,
        streams: usize,
        events: usize,
    },
}

/// Why no checkpoint could be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] super::state::StateError),
    #[error(
        "stream {stream} no longer extends checkpoint {checkpoint}, which this deployment \
         signed: no checkpoint is issued until an operator looks (liankong verify --checkpoint)"
    )]
    Diverged { stream: String, checkpoint: i64 },
}

/// The stream heads that go into a checkpoint: every stream ever written.
pub fn heads_of(chains: &[crate::store::witness::ChainState]) -> Vec<StreamHead> {
    chains
        .iter()
        .filter(|c| c.now.batches > 0)
        .map(|c| c.now.clone())
        .collect()
}

/// Whether a checkpoint of `heads` is due at `now`.
pub fn decide(
    newest: Option<&Checkpoint>,
    heads: &[StreamHead],
    now: DateTime<Utc>,
    interval: Duration,
) -> Decision {
    let Some(newest) = newest else {
        return if heads.is_empty() {
            Decision::Unchanged
        } else {
            Decision::Due
        };
    };
    let mut signed = newest.streams.clone();
    signed.sort_by(|a, b| a.stream.cmp(&b.stream));
    let mut current = heads.to_vec();
    current.sort_by(|a, b| a.stream.cmp(&b.stream));
    if signed == current {
        return Decision::Unchanged;
    }
    // An interval past the calendar's end: never due again.
    let due_at = chrono::Duration::from_std(interval)
        .ok()
        .and_then(|d| newest.issued_at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    if now >= due_at {
        Decision::Due
    } else {
        Decision::NotDue { due_at }
    }
}

/// Whether a stream is seen by every agency: discipline's are not.
pub fn shared(stream: &str) -> bool {
    !stream
        .split('.')
        .next()
        .and_then(Agency::parse)
        .is_some_and(Agency::is_confidential)
}

/// The webhook body of a checkpoint: the checkpoint itself is `data`.
pub fn event_body(checkpoint: &Checkpoint) -> Result<String, serde_json::Error> {
    Ok(json!({
        "type": EventType::Checkpoint,
        "timestamp": rfc3339(checkpoint.issued_at),
        "data": serde_json::to_value(checkpoint)?,
    })
    .to_string())
}

/// One event per subscriber that wants checkpoints: discipline's get the
/// checkpoint of every stream, the others the one without discipline's.
pub fn events(
    all: &Checkpoint,
    shared: &Checkpoint,
    subscribers: &[Subscriber],
) -> Result<Vec<NewEvent>, serde_json::Error> {
    let bodies = [
        (Audience::All, event_body(all)?),
        (Audience::Shared, event_body(shared)?),
    ];
    let mut out = Vec::new();
    for s in subscribers
        .iter()
        .filter(|s| s.wants(EventType::Checkpoint))
    {
        let audience = if s.agency.is_confidential() {
            Audience::All
        } else {
            Audience::Shared
        };
        let body = bodies
            .iter()
            .find(|(a, _)| *a == audience)
            .map(|(_, b)| b.clone())
            .unwrap_or_default();
        let mut h = Sha256::new();
        for part in [
            "store.checkpoint",
            &all.checkpoint_id.to_string(),
            s.name.as_str(),
        ] {
            h.update(part.as_bytes());
            h.update(b"\n");
        }
        out.push(NewEvent {
            event_id: format!("msg_{}", &hex::encode(h.finalize())[..32]),
            // One subject: a subscriber receives checkpoints in order.
            alert_id: EventType::Checkpoint.as_str().to_owned(),
            subscriber: s.name.clone(),
            agency: s.agency,
            event_type: EventType::Checkpoint,
            body,
        });
    }
    Ok(out)
}

/// Issues a checkpoint if one is due at `now`: signs it for both
/// audiences, keeps both and writes their events, in one transaction (one
/// replica at a time).
pub async fn issue_due(
    store: &dyn Store,
    witness: &Witness,
    subscribers: &[Subscriber],
    now: DateTime<Utc>,
) -> Result<Issued, IssueError> {
    let mut tx = store.begin_checkpoint().await?;
    let newest = tx.newest().await?;
    let mut sizes = Sizes::new();
    for s in newest.iter().flat_map(|c| &c.streams) {
        sizes.entry(s.stream.clone()).or_default().push(s.batches);
    }
    let chains = tx.chains(&sizes).await?;
    if let Some(newest) = &newest {
        for signed in &newest.streams {
            let extends = chains
                .iter()
                .filter(|c| c.now.stream == signed.stream)
                .flat_map(|c| &c.at)
                .any(|at| at == signed);
            if !extends {
                return Err(IssueError::Diverged {
                    stream: signed.stream.clone(),
                    checkpoint: newest.checkpoint_id,
                });
            }
        }
    }
    let heads = heads_of(&chains);
    match decide(newest.as_ref(), &heads, now, witness.interval) {
        Decision::Unchanged => return Ok(Issued::Unchanged),
        Decision::NotDue { due_at } => return Ok(Issued::NotDue { due_at }),
        Decision::Due => {}
    }
    let id = tx.next_id().await?;
    let shared_heads: Vec<StreamHead> = heads
        .iter()
        .filter(|h| shared(&h.stream))
        .cloned()
        .collect();
    let all = Checkpoint::sign(&witness.key, id, now, Audience::All, heads);
    let shared = Checkpoint::sign(&witness.key, id, now, Audience::Shared, shared_heads);
    let events = events(&all, &shared, subscribers).map_err(StoreError::Encode)?;
    tx.record(&[all.clone(), shared], &events, now).await?;
    tx.commit().await?;
    tracing::info!(
        checkpoint = id,
        streams = all.streams.len(),
        events = events.len(),
        "checkpoint issued"
    );
    Ok(Issued::Issued {
        id,
        streams: all.streams.len(),
        events: events.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::witness::SigningKey;
    use crate::witness::merkle::leaf_hash;

    fn head(stream: &str, batches: u64) -> StreamHead {
        StreamHead {
            stream: stream.into(),
            batches,
            versions: batches * 10,
            head: leaf_hash(&batches.to_be_bytes()),
            root: leaf_hash(stream.as_bytes()),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_checkpoint_is_due_once_history_grew_and_the_interval_is_over() {
        let hour = Duration::from_secs(3600);
        let t0 = at("2026-12-02T03:00:00Z");
        assert_eq!(decide(None, &[], t0, hour), Decision::Unchanged);
        let first = vec![head("finance.payments", 3), head("npc.budgets", 1)];
        assert_eq!(decide(None, &first, t0, hour), Decision::Due);
        let key = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
        let cp = Checkpoint::sign(&key, 1, t0, Audience::All, first.clone());
        // The same heads in another order are the same history.
        let reordered: Vec<StreamHead> = first.iter().rev().cloned().collect();
        assert_eq!(
            decide(Some(&cp), &reordered, t0 + chrono::Duration::hours(5), hour),
            Decision::Unchanged
        );
        let grown = vec![head("finance.payments", 4), head("npc.budgets", 1)];
        assert_eq!(
            decide(Some(&cp), &grown, at("2026-12-02T03:20:00Z"), hour),
            Decision::NotDue {
                due_at: at("2026-12-02T04:00:00Z")
            }
        );
        assert_eq!(
            decide(Some(&cp), &grown, at("2026-12-02T04:00:00Z"), hour),
            Decision::Due
        );
        assert_eq!(decide(Some(&cp), &grown, t0, Duration::ZERO), Decision::Due);
        assert_eq!(
            decide(Some(&cp), &grown, t0, Duration::from_secs(u64::MAX)),
            Decision::NotDue {
                due_at: DateTime::<Utc>::MAX_UTC
            }
        );
    }

    #[test]
    fn discipline_s_streams_are_not_shared() {
        assert!(!shared("discipline.referrals"));
        assert!(shared("finance.payments"));
        assert!(shared("liankong.actions"));
    }
}
