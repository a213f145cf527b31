//! The daemon's workers ([`crate::worker`]): one per adapter, each
//! waiting for its cron schedule to fire, then running its adapter once and
//! the pipeline after it; and the delivery worker. A failing adapter is
//! logged and tried again at its next firing; it never stops the others.
//!
//! One shutdown token stops every worker; a run in hand is allowed to finish
//! within the shutdown deadline, after which it is abandoned (its transaction
//! rolls back, so nothing is half-written) and named in the log.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::adapter::{Adapter, SyncOptions, run_adapter};
use crate::deliver::{Deliverer, DeliveryWorker};
use crate::pipeline::Context;
use crate::store::StoreError;
use crate::worker::{self, Next, Supervisor, Worker, Workers};

/// How long a stopping daemon waits for runs in hand.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(60);

/// Runs every adapter on its schedule (with the pipeline after each
/// successful run) and the delivery worker until `shutdown` is cancelled,
/// then waits for the work in hand up to `deadline`. Returns the workers
/// that did not finish in time.
pub async fn run_schedules(
    ctx: Context,
    adapters: Vec<Adapter>,
    deliverer: Deliverer,
    workers: Workers,
    shutdown: CancellationToken,
    deadline: Duration,
) -> Vec<String> {
    let supervisor = Supervisor::new(workers, ctx.clock.clone(), shutdown.clone());
    // One evaluation at a time in this process (the store serialises replicas).
    let reconciling = Arc::new(Mutex::new(()));
    for adapter in adapters {
        supervisor.spawn(AdapterWorker {
            ctx: ctx.clone(),
            adapter,
            reconciling: reconciling.clone(),
            shutdown: shutdown.clone(),
        });
    }
    if ctx.witness.is_some() {
        supervisor.spawn(crate::witness::CheckpointWorker::new(ctx.clone()));
    }
    supervisor.spawn(DeliveryWorker::new(
        deliverer,
        ctx.store.clone(),
        ctx.clock.clone(),
    ));
    supervisor.stopped(deadline).await
}

/// Why a scheduled run counts as failed.
#[derive(Debug, thiserror::Error)]
pub enum AdapterWorkError {
    /// The run failed after its retries (its reason is the run's).
    #[error("{0}")]
    Sync(String),
    #[error("reconciliation failed; it runs again after the next sync: {0}")]
    Reconcile(#[from] StoreError),
}

/// One adapter on its schedule.
struct AdapterWorker {
    ctx: Context,
    adapter: Adapter,
    reconciling: Arc<Mutex<()>>,
    shutdown: CancellationToken,
}

#[async_trait]
impl Worker for AdapterWorker {
    type Error = AdapterWorkError;

    fn name(&self) -> String {
        worker::adapter(&self.adapter.name)
    }

    fn waits_first(&self) -> bool {
        true
    }

    /// Its schedule spaces its runs: a failed run is tried again at the
    /// next firing, as any other.
    fn throttle(&self, _consecutive: u32) -> Duration {
        Duration::ZERO
    }

    async fn work(&mut self) -> Result<Next, AdapterWorkError> {
        let ctx = &self.ctx;
        let report = run_adapter(
            ctx.store.as_ref(),
            &self.adapter,
            ctx.clock.as_ref(),
            &SyncOptions::default(),
        )
        .await;
        if let Some(e) = &report.error {
            return Err(AdapterWorkError::Sync(e.clone()));
        }
        if self.shutdown.is_cancelled() {
            return Ok(Next::Idle);
        }
        ctx.after_sync(&report, &self.reconciling).await?;
        Ok(Next::Idle)
    }

    async fn wait_for_work(&mut self) {
        let now = self.ctx.clock.now();
        let Some(next) = self.adapter.schedule.next_after(now) else {
            tracing::warn!(adapter = %self.adapter.name, "schedule fires no more");
            return std::future::pending().await;
        };
        let wait = (next - now).to_std().unwrap_or_default();
        tracing::debug!(adapter = %self.adapter.name, next = %next, "waiting for the schedule");
        tokio::time::sleep(wait).await;
    }
}
