//! The daemon: one named worker per adapter, each sleeping until its cron
//! schedule fires and then running its adapter once. A failing adapter is
//! logged and tried again at its next firing; it never stops the others.
//!
//! One shutdown token stops every worker; a run in hand is allowed to finish
//! within the shutdown deadline, after which it is abandoned (its transaction
//! rolls back, so nothing is half-written).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::adapter::{Adapter, SyncOptions, run_adapter};
use crate::clock::Clock;
use crate::store::Store;

/// How long a stopping daemon waits for runs in hand.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(60);

/// Runs every adapter on its schedule until `shutdown` is cancelled,
/// then waits for the runs in hand up to `deadline`.
pub async fn run_schedules(
    store: Arc<dyn Store>,
    adapters: Vec<Adapter>,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    deadline: Duration,
) {
    let tracker = TaskTracker::new();
    for adapter in adapters {
        let store = store.clone();
        let clock = clock.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let name = adapter.name.clone();
            adapter_worker(store.as_ref(), &adapter, clock.as_ref(), &shutdown).await;
            tracing::info!(adapter = %name, "worker stopped");
        });
    }
    tracker.close();
    shutdown.cancelled().await;
    tracing::info!("stopping: waiting for runs in hand");
    if tokio::time::timeout(deadline, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            unfinished = tracker.len(),
            "shutdown deadline passed; unfinished runs are abandoned and roll back"
        );
    }
}

async fn adapter_worker(
    store: &dyn Store,
    adapter: &Adapter,
    clock: &dyn Clock,
    shutdown: &CancellationToken,
) {
    loop {
        let now = clock.now();
        let Some(next) = adapter.schedule.next_after(now) else {
            tracing::warn!(adapter = %adapter.name, "schedule fires no more");
            return;
        };
        let wait = (next - now).to_std().unwrap_or_default();
        tracing::debug!(adapter = %adapter.name, next = %next, "waiting for the schedule");
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let report = run_adapter(store, adapter, clock, &SyncOptions::default()).await;
        if shutdown.is_cancelled() {
            return;
        }
        if !report.ok() {
            // Already logged with its reason; the next firing tries again.
            continue;
        }
    }
}
