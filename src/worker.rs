//! Background workers: named tasks that do one unit of work at a time
//! (garage's `Worker` is the model). An error never ends a worker: it is
//! counted, logged and throttled, and the worker goes on. Each worker's
//! state (last success, errors in a row, last error) is kept in
//! [`Workers`], which `/v1/adapters` and the metrics read, and the
//! [`Supervisor`] that stops them names those that miss the deadline.
//!
//! A worker must never log a finding's content in its errors: they reach
//! the log, the metrics and (for an adapter's own agency) the API.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;

/// What a unit of work leaves to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// There is more to do now: work again at once.
    Busy,
    /// Nothing more for now: wait for work.
    Idle,
    /// The worker has nothing more to do, ever.
    Done,
}

/// A named background task.
#[async_trait]
pub trait Worker: Send {
    type Error: fmt::Display + Send;

    /// The name the log, `/v1/adapters` and the metrics know it by.
    fn name(&self) -> String;

    /// Does one unit of work. A unit in hand when the daemon stops is let
    /// finish (within the shutdown deadline); it is never cut in two.
    async fn work(&mut self) -> Result<Next, Self::Error>;

    /// Waits until there may be work (a schedule's next firing, a poll
    /// interval). The supervisor stops waiting at shutdown.
    async fn wait_for_work(&mut self);

    /// Whether the worker waits for work before its first unit (a
    /// scheduled worker), instead of working at once.
    fn waits_first(&self) -> bool {
        false
    }

    /// How long to hold off after `consecutive` errors in a row (1 after
    /// the first), before waiting for work again.
    fn throttle(&self, consecutive: u32) -> Duration {
        doubling(Duration::from_secs(1), consecutive, MAX_THROTTLE)
    }
}

/// The delivery worker's name.
pub const DELIVERY: &str = "delivery";

/// The checkpoint worker's name.
pub const CHECKPOINT: &str = "checkpoint";

/// The name of the worker that runs the adapter `adapter`.
pub fn adapter(adapter: &str) -> String {
    format!("adapter:{adapter}")
}

/// The longest a worker holds off after errors.
pub const MAX_THROTTLE: Duration = Duration::from_secs(300);

/// `base` doubled for every error in a row after the first, capped.
pub fn doubling(base: Duration, consecutive: u32, cap: Duration) -> Duration {
    let factor = 2u32.saturating_pow(consecutive.saturating_sub(1).min(30));
    base.saturating_mul(factor).min(cap)
}

/// What a worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// Doing a unit of work.
    Working,
    /// Waiting for work.
    #[default]
    Idle,
    /// Holding off after an error.
    Throttled,
    /// Stopped (or done).
    Stopped,
}

/// A worker's state as the API and the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
#[schema(as = Worker)]
pub struct WorkerStatus {
    pub activity: Activity,
    /// When a unit of work last ended without an error.
    pub last_success: Option<DateTime<Utc>>,
    /// Errors since the last success.
    pub consecutive_errors: u32,
    /// Errors since this process started.
    pub errors: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// The state of every worker of this process, by name. A worker that
/// comes back under the same name (after a reload) keeps its history.
#[derive(Debug, Clone, Default)]
pub struct Workers(Arc<Mutex<BTreeMap<String, WorkerStatus>>>);

impl Workers {
    pub fn get(&self, name: &str) -> Option<WorkerStatus> {
        self.lock().get(name).cloned()
    }

    /// Every worker's state, by name.
    pub fn all(&self) -> BTreeMap<String, WorkerStatus> {
        self.lock().clone()
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut WorkerStatus)) {
        f(self.lock().entry(name.to_owned()).or_default());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, WorkerStatus>> {
        // A panic while holding it leaves a status half-updated at worst.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs `worker` until `stop`: work, then wait for work; after an error,
/// hold off by its throttle first.
pub async fn run<W: Worker>(
    mut worker: W,
    workers: Workers,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
) {
    let name = worker.name();
    let set = |activity: Activity| workers.update(&name, |s| s.activity = activity);
    set(Activity::Idle);
    let mut wait = worker.waits_first();
    loop {
        if wait {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = worker.wait_for_work() => {}
            }
        }
        if stop.is_cancelled() {
            break;
        }
        set(Activity::Working);
        match worker.work().await {
            Ok(next) => {
                let now = clock.now();
                workers.update(&name, |s| {
                    s.last_success = Some(now);
                    s.consecutive_errors = 0;
                });
                if next == Next::Done {
                    break;
                }
                wait = next == Next::Idle;
            }
            Err(e) => {
                let now = clock.now();
                let mut consecutive = 0;
                workers.update(&name, |s| {
                    s.consecutive_errors = s.consecutive_errors.saturating_add(1);
                    s.errors += 1;
                    s.last_error = Some(e.to_string());
                    s.last_error_at = Some(now);
                    s.activity = Activity::Throttled;
                    consecutive = s.consecutive_errors;
                });
                let pause = worker.throttle(consecutive);
                tracing::error!(
                    worker = %name, error = %e, consecutive,
                    throttle_secs = pause.as_secs_f64(), "work failed"
                );
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(pause) => {}
                }
                wait = true;
            }
        }
        set(Activity::Idle);
    }
    set(Activity::Stopped);
    tracing::info!(worker = %name, "worker stopped");
}

/// Owns a set of named workers: starts them, tells them to stop, and waits
/// for them within a deadline.
pub struct Supervisor {
    tracker: TaskTracker,
    workers: Workers,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
}

impl Supervisor {
    /// Workers report into `workers`; they stop when `stop` is cancelled.
    pub fn new(workers: Workers, clock: Arc<dyn Clock>, stop: CancellationToken) -> Supervisor {
        Supervisor {
            tracker: TaskTracker::new(),
            workers,
            clock,
            stop,
        }
    }

    pub fn spawn<W: Worker + 'static>(&self, worker: W) {
        self.tracker.spawn(run(
            worker,
            self.workers.clone(),
            self.clock.clone(),
            self.stop.clone(),
        ));
    }

    /// Waits for `stop`, then up to `deadline` for every worker to finish
    /// its unit in hand. Returns the names of those that did not (they are
    /// abandoned: their transactions roll back), and logs them.
    pub async fn stopped(self, deadline: Duration) -> Vec<String> {
        self.tracker.close();
        self.stop.cancelled().await;
        tracing::info!("stopping: waiting for runs in hand");
        if tokio::time::timeout(deadline, self.tracker.wait())
            .await
            .is_ok()
        {
            return Vec::new();
        }
        let unfinished: Vec<String> = self
            .workers
            .all()
            .into_iter()
            .filter(|(_, s)| s.activity != Activity::Stopped)
            .map(|(name, _)| name)
            .collect();
        tracing::warn!(
            unfinished = %unfinished.join(", "),
            "shutdown deadline passed; unfinished runs are abandoned and roll back"
        );
        unfinished
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    /// Fails `failures` times, then succeeds; polls every second.
    struct Flaky {
        failures: u32,
        calls: Arc<Mutex<u32>>,
    }

    #[async_trait]
    impl Worker for Flaky {
        type Error = std::io::Error;

        fn name(&self) -> String {
            "flaky".into()
        }

        async fn work(&mut self) -> Result<Next, std::io::Error> {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            if *calls <= self.failures {
                Err(std::io::Error::other(format!("failure {calls}")))
            } else {
                Ok(Next::Idle)
            }
        }

        async fn wait_for_work(&mut self) {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_632_960_000 + secs, 0).unwrap()
    }

    #[test]
    fn throttles_double_up_to_their_cap() {
        let s = Duration::from_secs;
        let got: Vec<Duration> = (1..=11).map(|n| doubling(s(2), n, MAX_THROTTLE)).collect();
        assert_eq!(got, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300].map(s));
        assert_eq!(doubling(s(2), u32::MAX, MAX_THROTTLE), MAX_THROTTLE);
    }

    #[tokio::test(start_paused = true)]
    async fn errors_throttle_the_worker_and_a_success_clears_them() {
        let calls = Arc::new(Mutex::new(0));
        let workers = Workers::default();
        let stop = CancellationToken::new();
        let worker = Flaky {
            failures: 4,
            calls: calls.clone(),
        };
        let task = tokio::spawn(run(
            worker,
            workers.clone(),
            Arc::new(FixedClock(at(0))),
            stop.clone(),
        ));
        // Errors at 0 s, then after 1 + 1, 2 + 1 and 4 + 1 s of throttle and
        // poll: the fourth at 10 s, held off until 18 s; the fifth call, at
        // 19 s, succeeds.
        tokio::time::sleep(Duration::from_millis(17_500)).await;
        let s = workers.get("flaky").unwrap();
        assert_eq!(*calls.lock().unwrap(), 4);
        assert_eq!(
            (
                s.activity,
                s.consecutive_errors,
                s.errors,
                s.last_error.as_deref()
            ),
            (Activity::Throttled, 4, 4, Some("failure 4"))
        );
        assert_eq!(s.last_success, None);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let s = workers.get("flaky").unwrap();
        assert_eq!(*calls.lock().unwrap(), 5);
        assert_eq!(
            (s.activity, s.consecutive_errors, s.errors, s.last_success),
            (Activity::Idle, 0, 4, Some(at(0)))
        );
        stop.cancel();
        task.await.unwrap();
        assert_eq!(workers.get("flaky").unwrap().activity, Activity::Stopped);
    }

    /// Ignores the stop while its unit of work lasts an hour.
    struct Stuck;

    #[async_trait]
    impl Worker for Stuck {
        type Error = std::io::Error;

        fn name(&self) -> String {
            "adapter:stuck".into()
        }

        async fn work(&mut self) -> Result<Next, std::io::Error> {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(Next::Idle)
        }

        async fn wait_for_work(&mut self) {}
    }

    #[tokio::test(start_paused = true)]
    async fn the_supervisor_names_the_workers_that_miss_the_deadline() {
        let workers = Workers::default();
        let stop = CancellationToken::new();
        let supervisor =
            Supervisor::new(workers.clone(), Arc::new(FixedClock(at(0))), stop.clone());
        supervisor.spawn(Stuck);
        supervisor.spawn(Flaky {
            failures: 0,
            calls: Arc::default(),
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        stop.cancel();
        let unfinished = supervisor.stopped(Duration::from_secs(60)).await;
        assert_eq!(unfinished, vec!["adapter:stuck".to_owned()]);
        assert_eq!(workers.get("flaky").unwrap().activity, Activity::Stopped);
        assert_eq!(
            workers.get("adapter:stuck").unwrap().activity,
            Activity::Working
        );
    }
}
