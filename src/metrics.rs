//! Prometheus metrics. What the store knows (adapter runs, alerts, the
//! outbox) is read from it at each scrape, so every replica reports the
//! same numbers; what only this process sees (delivery latency, its
//! workers' state) is kept in memory. Confidential alerts are not counted: a count of discipline
//! alerts is itself discipline data.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::adapter::SyncReport;
use crate::store::{Store, StoreError};
use crate::worker::Workers;

type Labels = Vec<(String, String)>;

/// What this process measures itself.
#[derive(Clone)]
pub struct ProcessMetrics {
    /// Seconds from an event's creation to its delivery.
    pub delivery_latency: Histogram,
    /// The state of this process's workers.
    pub workers: Workers,
}

impl Default for ProcessMetrics {
    fn default() -> ProcessMetrics {
        ProcessMetrics {
            delivery_latency: Histogram::new(exponential_buckets(0.5, 4.0, 10)),
            workers: Workers::default(),
        }
    }
}

fn gauge_f64(registry: &mut Registry, name: &str, help: &str, values: Vec<(Labels, f64)>) {
    let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    for (labels, v) in values {
        family.get_or_create(&labels).set(v);
    }
    registry.register(name, help, family);
}

fn gauge_i64(registry: &mut Registry, name: &str, help: &str, values: Vec<(Labels, i64)>) {
    let family = Family::<Labels, Gauge>::default();
    for (labels, v) in values {
        family.get_or_create(&labels).set(v);
    }
    registry.register(name, help, family);
}

/// A counter read from the store: its value is the store's count.
fn counter(registry: &mut Registry, name: &str, help: &str, values: Vec<(Labels, i64)>) {
    let family = Family::<Labels, Counter>::default();
    for (labels, v) in values {
        family.get_or_create(&labels).inc_by(v.max(0) as u64);
    }
    registry.register(name, help, family);
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The Prometheus text of every metric.
pub async fn render(store: &dyn Store, process: &ProcessMetrics) -> Result<String, StoreError> {
    let mut registry = Registry::with_prefix("liankong");

    let runs = store.adapter_runs().await?;
    let mut last_success = Vec::new();
    let mut duration = Vec::new();
    let mut records = Vec::new();
    for r in &runs {
        let a = r.adapter.as_str();
        if let Some(t) = r.last_success {
            last_success.push((
                labels(&[("adapter", a)]),
                t.timestamp_millis() as f64 / 1000.0,
            ));
        }
        let Some(report) = r
            .report
            .as_deref()
            .and_then(|s| SyncReport::from_stored(s).ok())
        else {
            continue;
        };
        duration.push((labels(&[("adapter", a)]), report.seconds));
        let (fetched, o) = report.totals();
        for (outcome, n) in [
            ("fetched", fetched),
            ("new", o.new),
            ("changed", o.changed),
            ("unchanged", o.unchanged),
            ("deleted", o.deleted),
            ("quarantined", o.quarantined),
        ] {
            records.push((labels(&[("adapter", a), ("outcome", outcome)]), n as i64));
        }
    }
    gauge_f64(
        &mut registry,
        "adapter_last_success_timestamp_seconds",
        "When each adapter last finished a run successfully (Unix time)",
        last_success,
    );
    gauge_f64(
        &mut registry,
        "adapter_last_run_duration_seconds",
        "How long each adapter's newest run took",
        duration,
    );
    gauge_i64(
        &mut registry,
        "adapter_last_run_records",
        "Records of each adapter's newest run, by outcome",
        records,
    );
    counter(
        &mut registry,
        "adapter_runs",
        "Adapter runs started",
        runs.iter()
            .map(|r| (labels(&[("adapter", &r.adapter)]), r.runs))
            .collect(),
    );
    counter(
        &mut registry,
        "adapter_errors",
        "Adapter runs that failed (nothing of them was kept)",
        runs.iter()
            .map(|r| (labels(&[("adapter", &r.adapter)]), r.failures))
            .collect(),
    );

    // Discipline's streams are left out: even a count of its records is
    // confidential.
    gauge_i64(
        &mut registry,
        "stream_held_deletions",
        "Deletions of a stream's newest complete snapshot held by the mass-deletion guard, \
         waiting for an operator (sync --adapter NAME --accept-deletions)",
        store
            .held_deletions()
            .await?
            .into_iter()
            .filter(|(stream, _)| !stream.starts_with("discipline."))
            .map(|(stream, h)| (labels(&[("stream", &stream)]), h.deletions as i64))
            .collect(),
    );

    let mut by_state: std::collections::BTreeMap<(&str, &str, &str), i64> = Default::default();
    let alerts = store.alerts().await?;
    for a in alerts.iter().filter(|a| !a.confidential) {
        *by_state
            .entry((a.rule.as_str(), a.severity.as_str(), a.state.as_str()))
            .or_default() += 1;
    }
    gauge_i64(
        &mut registry,
        "alerts",
        "Alerts by rule, severity and state (confidential alerts are not counted)",
        by_state
            .into_iter()
            .map(|((rule, severity, state), n)| {
                (
                    labels(&[("rule", rule), ("severity", severity), ("state", state)]),
                    n,
                )
            })
            .collect(),
    );

    let outbox = store.outbox_counts().await?;
    gauge_i64(
        &mut registry,
        "outbox_events",
        "Webhook events in the outbox by state (retrying: pending after a failed attempt)",
        vec![
            (labels(&[("state", "pending")]), outbox.pending),
            (labels(&[("state", "retrying")]), outbox.retrying),
            (labels(&[("state", "delivered")]), outbox.delivered),
            (labels(&[("state", "dead")]), outbox.dead),
        ],
    );
    let workers = process.workers.all();
    let by_worker = |v: &dyn Fn(&crate::worker::WorkerStatus) -> Option<i64>| {
        workers
            .iter()
            .filter_map(|(name, s)| Some((labels(&[("worker", name)]), v(s)?)))
            .collect::<Vec<_>>()
    };
    gauge_i64(
        &mut registry,
        "worker_consecutive_errors",
        "Errors in a row of each worker of this process (0 after a success)",
        by_worker(&|s| Some(i64::from(s.consecutive_errors))),
    );
    counter(
        &mut registry,
        "worker_errors",
        "Units of work of each worker of this process that failed",
        by_worker(&|s| i64::try_from(s.errors).ok()),
    );
    gauge_f64(
        &mut registry,
        "worker_last_success_timestamp_seconds",
        "When each worker of this process last ended a unit of work without an error (Unix time)",
        workers
            .iter()
            .filter_map(|(name, s)| {
                let t = s.last_success?;
                Some((
                    labels(&[("worker", name)]),
                    t.timestamp_millis() as f64 / 1000.0,
                ))
            })
            .collect(),
    );
    registry.register(
        "delivery_latency_seconds",
        "Seconds from an event's creation to its delivery, as seen by this process",
        process.delivery_latency.clone(),
    );

    let mut text = String::new();
    encode(&mut text, &registry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(text)
}

/// Shared handle for the daemon's stages.
pub type SharedMetrics = Arc<ProcessMetrics>;
