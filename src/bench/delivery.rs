//! Phase (g): the alerts that (a)'s reconciliation raised over planted
//! anomalies (`--anomalies`), delivered to one receiver per agency by the
//! daemon's own [`crate::deliver::Deliverer`], round after round as its
//! delivery worker would, until no event is due.
//!
//! The subscribers are configured as an operator would: a
//! `[subscribers.…]` table per agency in the config file, each with its own
//! `whsec_` secret in a file, read by [`crate::config::Config::load`].

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::receiver::{Received, Receiver};
use super::scale::{BenchError, io, peak_rss_kib, reset_peak_rss};
use crate::clock::SystemClock;
use crate::deliver::DeliveryStats;
use crate::model::Agency;
use crate::pipeline::Context;

/// What phase (g) measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    /// Alerts (a)'s reconciliation raised.
    pub alerts_raised: u64,
    /// The outbox events it wrote (events × subscribers).
    pub outbox_events: u64,
    /// What each agency's receiver counted.
    pub received: Vec<(Agency, Received)>,
    /// The deliverer's own count, over every round.
    pub stats: DeliveryStats,
    /// Outbox events not delivered when no more were due (pending or dead).
    pub undelivered: u64,
    /// Rounds of the deliverer (a batch each).
    pub rounds: u64,
    /// From the first round's start to the last event received.
    pub seconds: f64,
    /// From (a)'s reconciliation's end to the last event received.
    pub after_reconcile_seconds: f64,
    /// Peak resident memory of this process during the phase.
    pub peak_kib: u64,
}

impl Delivery {
    /// Events received, each once.
    pub fn events_received(&self) -> u64 {
        self.received.iter().map(|(_, r)| r.events).sum()
    }

    pub fn bad_signatures(&self) -> u64 {
        self.received.iter().map(|(_, r)| r.bad_signatures).sum()
    }

    pub fn webhooks_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.events_received() as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// One receiver per agency, each with its own secret.
pub struct Receivers(Vec<Receiver>);

impl Receivers {
    pub async fn start(seed: u64) -> Result<Receivers, BenchError> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut all = Vec::new();
        for agency in Agency::ALL {
            all.push(Receiver::start(agency, &mut rng).await?);
        }
        Ok(Receivers(all))
    }

    /// The config tables of their subscribers (`bench_<agency>`), their
    /// secrets written as files under `dir`.
    pub fn config(&self, dir: &Path) -> Result<String, BenchError> {
        std::fs::create_dir_all(dir).map_err(io(dir.display()))?;
        let mut text = String::from("\n# The benchmark's receivers, one per agency.\n");
        for r in &self.0 {
            let agency = r.agency.as_str();
            let secret = dir.join(format!("{agency}.whsec"));
            std::fs::write(&secret, &r.secret).map_err(io(secret.display()))?;
            let reference = toml::Value::String(format!("file:{}", secret.display()));
            let _ = write!(
                text,
                "\n[subscribers.bench_{agency}]\nagency = \"{agency}\"\nurl = \"{}\"\nsecrets = [{reference}]\n",
                r.url
            );
        }
        Ok(text)
    }

    fn last(&self) -> Option<Instant> {
        self.0.iter().filter_map(Receiver::last).max()
    }
}

/// Delivers every due event, a round at a time, until a round finds none.
pub async fn deliver_all(
    ctx: &Context,
    receivers: &Receivers,
    reconciled: Instant,
    alerts_raised: u64,
    outbox_events: u64,
) -> Result<Delivery, BenchError> {
    let deliverer = ctx
        .deliverer()
        .map_err(|e| BenchError::Config(e.to_string()))?;
    reset_peak_rss();
    let started = Instant::now();
    let mut stats = DeliveryStats::default();
    let mut rounds = 0;
    loop {
        let round = deliverer
            .deliver_due(ctx.store.as_ref(), &SystemClock)
            .await?;
        if round.attempted == 0 {
            break;
        }
        rounds += 1;
        stats += round;
    }
    let counts = ctx.store.outbox_counts().await?;
    let last = receivers.last().unwrap_or(started);
    Ok(Delivery {
        alerts_raised,
        outbox_events,
        received: receivers
            .0
            .iter()
            .map(|r| (r.agency, r.received()))
            .collect(),
        stats,
        undelivered: u64::try_from(counts.pending + counts.dead).unwrap_or(0),
        rounds,
        seconds: last.saturating_duration_since(started).as_secs_f64(),
        after_reconcile_seconds: last.saturating_duration_since(reconciled).as_secs_f64(),
        peak_kib: peak_rss_kib().unwrap_or(0),
    })
}
