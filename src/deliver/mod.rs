//! Delivery: POSTs outbox events to their subscribers with Standard Webhooks
//! headers, retries failures with exponential backoff and jitter (honouring
//! `Retry-After`) for up to a day, then leaves a dead letter to re-drive.
//!
//! Every attempt's outcome is written to the store before the next, so a
//! restart resumes exactly where delivery stood; a receiver may see an event
//! twice (at-least-once) but always with the same `webhook-id`. Events of one
//! alert reach one subscriber in order: the store hands out only the oldest
//! pending event of each alert and subscriber. Requests are signed as
//! Standard Webhooks ([`signature`]) with each [`Subscriber`]'s keys.

pub mod signature;
pub mod subscribers;
pub mod worker;

pub use subscribers::Subscriber;
pub use worker::DeliveryWorker;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use reqwest::header::CONTENT_TYPE;
use serde::Serialize;

use crate::clock::Clock;
use crate::config::DeliveryConfig;
use crate::store::alerts::OutboxRow;
use crate::store::{Store, StoreError};

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryStats {
    pub attempted: u64,
    pub delivered: u64,
    pub retrying: u64,
    pub dead: u64,
}

impl std::ops::AddAssign for DeliveryStats {
    fn add_assign(&mut self, o: DeliveryStats) {
        self.attempted += o.attempted;
        self.delivered += o.delivered;
        self.retrying += o.retrying;
        self.dead += o.dead;
    }
}

enum Attempt {
    Delivered,
    Failed {
        error: String,
        retry_after: Option<Duration>,
    },
}

pub struct Deliverer {
    client: reqwest::Client,
    subscribers: HashMap<String, Subscriber>,
    config: DeliveryConfig,
    /// Attempts in flight at once.
    concurrency: usize,
    metrics: Option<crate::metrics::SharedMetrics>,
}

/// The webhook client could not be built (the TLS stack refused).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook client: {0}")]
pub struct ClientError(#[from] reqwest::Error);

impl Deliverer {
    pub fn new(
        subscribers: Vec<Subscriber>,
        config: &DeliveryConfig,
    ) -> Result<Deliverer, ClientError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .connect_timeout(Duration::from_secs(config.timeout_secs.min(10)))
            .user_agent(concat!("liankong/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Deliverer {
            client,
            subscribers: subscribers
                .into_iter()
                .map(|s| (s.name.clone(), s))
                .collect(),
            config: config.clone(),
            concurrency: 8,
            metrics: None,
        })
    }

    /// Records delivery latencies into the process metrics.
    pub fn with_metrics(mut self, metrics: crate::metrics::SharedMetrics) -> Deliverer {
        self.metrics = Some(metrics);
        self
    }

    /// The wait before attempt `n + 1` after `n` failed attempts: the shared
    /// schedule from `min_delay_secs` to `max_delay_secs`, with equal jitter
    /// so that retries neither stampede nor spin.
    fn backoff(&self, failed: i64) -> Duration {
        let schedule = crate::backoff::Backoff {
            min: Duration::from_secs(self.config.min_delay_secs.max(1)),
            max: Duration::from_secs(self.config.max_delay_secs.max(1)),
        };
        let n = u32::try_from(failed.max(0)).unwrap_or(u32::MAX);
        schedule.equal_jitter(n, &mut fastrand::Rng::new())
    }

    /// When a failed event is tried next, or `None` when it is dead.
    fn next_attempt(
        &self,
        row: &OutboxRow,
        now: DateTime<Utc>,
        retry_after: Option<Duration>,
    ) -> Option<DateTime<Utc>> {
        let deadline = row.created_at + chrono::Duration::hours(self.config.max_age_hours as i64);
        if now >= deadline {
            return None;
        }
        let mut wait = self.backoff(row.attempts + 1);
        if let Some(server) = retry_after {
            wait = wait.max(server.min(Duration::from_secs(self.config.max_delay_secs)));
        }
        let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
        Some(next.min(deadline))
    }

    async fn attempt(
        &self,
        row: &OutboxRow,
        subscriber: &Subscriber,
        now: DateTime<Utc>,
    ) -> Attempt {
        let timestamp = now.timestamp();
        let response = self
            .client
            .post(&subscriber.url)
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", &row.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                subscriber.signature(&row.event_id, timestamp, &row.body),
            )
            .body(row.body.clone())
            .send()
            .await;
        match response {
            Ok(r) if r.status().is_success() => Attempt::Delivered,
            Ok(r) => Attempt::Failed {
                error: format!("HTTP {}", r.status().as_u16()),
                retry_after: crate::backoff::retry_after(r.headers(), now),
            },
            Err(e) => Attempt::Failed {
                error: if e.is_timeout() {
                    "timed out".into()
                } else {
                    format!("cannot reach the subscriber: {e}")
                },
                retry_after: None,
            },
        }
    }

    /// One round: claims the due events and attempts each once.
    pub async fn deliver_due(
        &self,
        store: &dyn Store,
        clock: &dyn Clock,
    ) -> Result<DeliveryStats, StoreError> {
        let now = clock.now();
        // A claim outlives the attempts it covers; a replica that dies with
        // claims in hand loses them when they expire.
        let lease = now + chrono::Duration::seconds(self.config.timeout_secs as i64 * 2 + 5);
        let rows = store.claim_due(now, lease, self.config.batch).await?;
        let mut stats = DeliveryStats::default();
        let results: Vec<(OutboxRow, Attempt)> = futures_util::stream::iter(rows)
            .map(|row| async move {
                let outcome = match self.subscribers.get(&row.subscriber) {
                    Some(s) => self.attempt(&row, s, now).await,
                    None => Attempt::Failed {
                        error: format!("subscriber {} is no longer configured", row.subscriber),
                        retry_after: None,
                    },
                };
                (row, outcome)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        // The round's deliveries are recorded first, in one write (a replica
        // that dies before it sends them again: at least once), then each
        // failure with its own next attempt.
        let at = clock.now();
        stats.attempted = results.len() as u64;
        let mut delivered = Vec::new();
        let mut failed = Vec::new();
        for (row, outcome) in results {
            match outcome {
                Attempt::Delivered => delivered.push(row),
                Attempt::Failed { error, retry_after } => failed.push((row, error, retry_after)),
            }
        }
        let ids: Vec<i64> = delivered.iter().map(|row| row.id).collect();
        store.mark_delivered(&ids, at).await?;
        stats.delivered = ids.len() as u64;
        if let Some(m) = &self.metrics {
            for row in &delivered {
                let seconds = (at - row.created_at).num_milliseconds().max(0) as f64 / 1000.0;
                m.delivery_latency.observe(seconds);
            }
        }
        for (row, error, retry_after) in failed {
            let next = if self.subscribers.contains_key(&row.subscriber) {
                self.next_attempt(&row, at, retry_after)
            } else {
                None
            };
            if next.is_some() {
                stats.retrying += 1;
            } else {
                stats.dead += 1;
                tracing::warn!(event = %row.event_id, subscriber = %row.subscriber, error = %error, "dead letter");
            }
            store.mark_failed(row.id, at, &error, next).await?;
        }
        if stats.attempted > 0 {
            tracing::info!(
                attempted = stats.attempted,
                delivered = stats.delivered,
                retrying = stats.retrying,
                dead = stats.dead,
                "delivery round"
            );
        }
        Ok(stats)
    }
}
