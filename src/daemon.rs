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

use chrono::NaiveDate;

use crate::adapter::{Adapter, SyncOptions, run_adapter};
use crate::alert::{self, EvaluationOutcome, Lifecycle, Subscriber};
use crate::clock::Clock;
use crate::config::{Config, china_time};
use crate::deliver::Deliverer;
use crate::reconcile;
use crate::store::{Store, StoreError};

/// What every stage needs: the store, the config, the subscribers, the clock.
/// A context's config never changes: a reload makes a new context.
#[derive(Clone)]
pub struct Context {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub subscribers: Arc<Vec<Subscriber>>,
    pub clock: Arc<dyn Clock>,
    /// The last evaluation's findings, reused while the store's records and
    /// the date are the same.
    pub last_findings: Arc<tokio::sync::Mutex<Option<LastFindings>>>,
}

/// Findings as of a date over the store at one data generation
/// ([`Store::data_generation`]).
pub struct LastFindings {
    as_of: NaiveDate,
    generation: i64,
    findings: Arc<Vec<reconcile::Finding>>,
}

impl Context {
    pub fn new(
        store: Arc<dyn Store>,
        config: Arc<Config>,
        subscribers: Arc<Vec<Subscriber>>,
        clock: Arc<dyn Clock>,
    ) -> Context {
        Context {
            store,
            config,
            subscribers,
            clock,
            last_findings: Arc::default(),
        }
    }

    /// The rules' findings as of `as_of`. The rules read nothing but the
    /// store's records, the date and this context's config, so when no
    /// record changed since the last evaluation (no stream has a new
    /// version: deletions and links follow records) its findings stand and
    /// the sums are not taken again. That is what keeps a sync that changed
    /// nothing cheap, on a province's data as on a county's.
    async fn findings(&self, as_of: NaiveDate) -> Result<Arc<Vec<reconcile::Finding>>, StoreError> {
        let mut last = self.last_findings.lock().await;
        // Read before the rules read: a change landing meanwhile makes the
        // next evaluation look again.
        let generation = self.store.data_generation().await?;
        if let Some(l) = last.as_ref()
            && l.as_of == as_of
            && l.generation == generation
        {
            tracing::debug!(%as_of, generation, "no record changed since the last evaluation: its findings stand");
            return Ok(l.findings.clone());
        }
        let findings =
            Arc::new(reconcile::evaluate(self.store.as_ref(), as_of, &self.config.rules).await?);
        *last = Some(LastFindings {
            as_of,
            generation,
            findings: findings.clone(),
        });
        Ok(findings)
    }
}

impl Context {
    /// Today in China time: the default as-of date.
    pub fn today(&self) -> NaiveDate {
        self.clock.now().with_timezone(&china_time()).date_naive()
    }

    /// Evaluates the rules as of `as_of` and applies the findings to the
    /// alerts and the outbox.
    pub async fn reconcile(&self, as_of: NaiveDate) -> Result<EvaluationOutcome, StoreError> {
        let findings = self.findings(as_of).await?;
        alert::apply_findings(
            self.store.as_ref(),
            &findings,
            as_of,
            self.clock.now(),
            Lifecycle {
                repeat_interval: chrono::Duration::hours(
                    self.config.alerts.repeat_interval_hours as i64,
                ),
            },
            &self.subscribers,
        )
        .await
    }

    pub fn deliverer(&self) -> Result<Deliverer, String> {
        Deliverer::new(self.subscribers.as_ref().clone(), &self.config.delivery)
    }
}

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

/// Tells systemd (when it started us with `NOTIFY_SOCKET`) how we are.
///
/// The datagram is sent without ever blocking a runtime thread (the
/// `sd_notify` crate's own send blocks): a service manager slow to read its
/// socket, whose queue holds only a few datagrams, delays this message by at
/// most `patience` and never stalls the adapters, the API or the delivery.
async fn notify(states: &[sd_notify::NotifyState<'_>], patience: Duration) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let message: String = states.iter().map(|s| format!("{s}\n")).collect();
    let send = async { notify_socket(&path)?.send(message.as_bytes()).await };
    tokio::time::timeout(patience, send).await.map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "systemd's notify socket stayed full",
        )
    })??;
    Ok(())
}

/// How long a change of state waits for room on systemd's socket.
const NOTIFY_PATIENCE: Duration = Duration::from_secs(10);

async fn notify_state(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = notify(states, NOTIFY_PATIENCE).await {
        let states: Vec<String> = states.iter().map(ToString::to_string).collect();
        tracing::warn!(error = %e, states = states.join(" "), "cannot notify systemd");
    }
}

/// A non-blocking datagram socket connected to `NOTIFY_SOCKET`: a path, or
/// an abstract name when it starts with `@`.
fn notify_socket(path: &std::ffi::OsStr) -> std::io::Result<tokio::net::UnixDatagram> {
    use std::os::unix::ffi::OsStrExt;
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    match path.as_bytes().strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            socket.connect_addr(&std::os::unix::net::SocketAddr::from_abstract_name(name)?)?;
        }
        None => socket.connect(path)?,
    }
    socket.set_nonblocking(true)?;
    tokio::net::UnixDatagram::from_std(socket)
}

/// Everything a configuration builds: checked before it replaces the running one.
struct Generation {
    config: Arc<Config>,
    adapters: Vec<Adapter>,
    subscribers: Arc<Vec<Subscriber>>,
}

fn build_generation(config: Config) -> Result<Generation, String> {
    let adapters = crate::adapter::build_all(&config).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let subscribers = crate::alert::subscribers::build_all(&config)?;
    Ok(Generation {
        config: Arc::new(config),
        adapters,
        subscribers: Arc::new(subscribers),
    })
}

/// The daemon (`liankong run`): serves the API, runs the adapters on their
/// schedules with a reconciliation after each successful run, delivers
/// continuously. Tells systemd `READY=1` once config, store and migrations
/// are good, pets the watchdog at half its interval, reloads config and
/// manifests on SIGHUP (a bad new config is rejected and the old one kept),
/// and on SIGTERM or Ctrl-C says `STOPPING=1` and lets the work in hand
/// finish within `deadline`. `api` is the API's listener, bound by the
/// caller before it opened the store, so that an address in use stops the
/// start before anything is migrated; `None` serves no API.
pub async fn run_daemon(
    config_path: std::path::PathBuf,
    config: Config,
    store: Arc<dyn Store>,
    api: Option<tokio::net::TcpListener>,
    deadline: Duration,
) -> Result<(), String> {
    let mut current = build_generation(config)?;
    let metrics: crate::metrics::SharedMetrics = Default::default();
    let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
    let (config_tx, config_rx) = tokio::sync::watch::channel(current.config.clone());
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();

    if let Some(listener) = api {
        let state = crate::api::ApiState {
            store: store.clone(),
            config: config_rx.clone(),
            metrics: metrics.clone(),
            clock: clock.clone(),
        };
        let stop = shutdown.clone();
        tracing::info!(listen = %current.config.api.listen, "API listening");
        tasks.spawn(async move {
            if let Err(e) = crate::api::serve(listener, state, stop).await {
                tracing::error!(error = %e, "API server stopped");
            }
        });
    }
    let mut hangup = unix_signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut terminate = unix_signal(tokio::signal::unix::SignalKind::terminate())?;
    notify_state(&[sd_notify::NotifyState::Ready]).await;
    // Pets begin once the start is done, so READY is always told first.
    if let Some(interval) = sd_notify::watchdog_enabled() {
        let stop = shutdown.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(interval / 2);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    // A pet that finds no room is skipped; the next one
                    // follows at half the interval.
                    _ = tick.tick() => {
                        if let Err(e) = notify(&[sd_notify::NotifyState::Watchdog], interval / 2).await {
                            tracing::debug!(error = %e, "watchdog pet not sent");
                        }
                    }
                }
            }
        });
    }

    tracing::info!(adapters = current.adapters.len(), store = %current.config.store_url(), "liankong running");

    loop {
        let generation_stop = shutdown.child_token();
        let ctx = Context::new(
            store.clone(),
            current.config.clone(),
            current.subscribers.clone(),
            clock.clone(),
        );
        let deliverer = ctx.deliverer()?.with_metrics(metrics.clone());
        let adapters = std::mem::take(&mut current.adapters);
        let workers = tokio::spawn(run_schedules(
            ctx,
            adapters,
            deliverer,
            generation_stop.clone(),
            deadline,
        ));
        // Wait for a reload that is accepted, or for the end.
        let stop = loop {
            tokio::select! {
                _ = hangup.recv() => {
                    let monotonic = sd_notify::NotifyState::monotonic_usec_now();
                    let mut states = vec![sd_notify::NotifyState::Reloading];
                    if let Ok(m) = monotonic {
                        states.push(m);
                    }
                    notify_state(&states).await;
                    let candidate = Config::load(&config_path)
                        .map_err(|e| e.to_string())
                        .and_then(build_generation);
                    match candidate {
                        Ok(next) => {
                            if next.config.store.url != current.config.store.url
                                || next.config.api.listen != current.config.api.listen
                            {
                                tracing::warn!("store.url and api.listen take effect at the next restart");
                            }
                            tracing::info!(adapters = next.adapters.len(), "reloading the config");
                            config_tx.send_replace(next.config.clone());
                            current = next;
                            break false;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "reload rejected: keeping the running config");
                            notify_state(&[sd_notify::NotifyState::Ready]).await;
                        }
                    }
                }
                _ = terminate.recv() => break true,
                _ = tokio::signal::ctrl_c() => break true,
            }
        };
        if stop {
            notify_state(&[sd_notify::NotifyState::Stopping]).await;
        }
        generation_stop.cancel();
        if workers.await.is_err() {
            tracing::error!("the workers of the old config panicked");
        }
        if stop {
            break;
        }
        notify_state(&[sd_notify::NotifyState::Ready]).await;
        tracing::info!("reloaded");
    }
    shutdown.cancel();
    tasks.close();
    if tokio::time::timeout(Duration::from_secs(5), tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("the API did not stop in time");
    }
    tracing::info!("stopped");
    Ok(())
}

fn unix_signal(
    kind: tokio::signal::unix::SignalKind,
) -> Result<tokio::signal::unix::Signal, String> {
    tokio::signal::unix::signal(kind).map_err(|e| format!("cannot handle signals: {e}"))
}
