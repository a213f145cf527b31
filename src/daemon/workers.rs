//! The daemon's workers: one per adapter, each sleeping until its cron
//! schedule fires and then running its adapter once, and the delivery
//! worker. A failing adapter is logged and tried again at its next firing;
//! it never stops the others.
//!
//! One shutdown token stops every worker; a run in hand is allowed to finish
//! within the shutdown deadline, after which it is abandoned (its transaction
//! rolls back, so nothing is half-written).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::adapter::{Adapter, SyncOptions, run_adapter};
use crate::deliver::Deliverer;
use crate::pipeline::Context;

/// How long a stopping daemon waits for runs in hand.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(60);

/// Runs every adapter on its schedule (reconciling after each successful
/// run) and the delivery worker until `shutdown` is cancelled, then waits
/// for the work in hand up to `deadline`.
pub async fn run_schedules(
    ctx: Context,
    adapters: Vec<Adapter>,
    deliverer: Deliverer,
    shutdown: CancellationToken,
    deadline: Duration,
) {
    let tracker = TaskTracker::new();
    // One evaluation at a time in this process (the store serialises replicas).
    let reconciling = Arc::new(tokio::sync::Mutex::new(()));
    for adapter in adapters {
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        let reconciling = reconciling.clone();
        tracker.spawn(async move {
            let name = adapter.name.clone();
            adapter_worker(&ctx, &adapter, &reconciling, &shutdown).await;
            tracing::info!(adapter = %name, "worker stopped");
        });
    }
    {
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            deliverer
                .run(ctx.store.as_ref(), ctx.clock.as_ref(), &shutdown)
                .await;
            tracing::info!("delivery worker stopped");
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
    ctx: &Context,
    adapter: &Adapter,
    reconciling: &tokio::sync::Mutex<()>,
    shutdown: &CancellationToken,
) {
    let store = ctx.store.as_ref();
    let clock = ctx.clock.as_ref();
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
        if !report.ok() || report.skipped {
            // A failure is logged with its reason and the next firing tries
            // again; a skipped run left the work to the replica holding it.
            continue;
        }
        let _turn = reconciling.lock().await;
        if let Err(e) = ctx.reconcile(ctx.today()).await {
            tracing::error!(error = %e, "reconciliation failed; it runs again after the next sync");
        }
    }
}
