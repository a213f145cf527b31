//! `liankong run`: the API, the workers of the running config, reloads and
//! the stop.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::reload::{GenerationError, build_generation, reload};
use super::systemd::{notify_state, pet_watchdog};
use super::workers::run_schedules;
use crate::clock::Clock;
use crate::config::Config;
use crate::deliver::ClientError;
use crate::pipeline::Context;
use crate::store::Store;

/// Why the daemon could not start (or go on).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Generation(#[from] GenerationError),
    #[error("cannot handle signals: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Tls(#[from] crate::api::TlsError),
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
) -> Result<(), DaemonError> {
    let mut current = build_generation(config)?;
    let metrics: crate::metrics::SharedMetrics = Default::default();
    let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
    let (config_tx, config_rx) = tokio::sync::watch::channel(current.running());
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();

    if let Some(listener) = api {
        let tls = match (&current.config.api.tls_cert, &current.config.api.tls_key) {
            (Some(cert), Some(key)) => Some(crate::api::acceptor(cert, key)?),
            _ => None,
        };
        let state = crate::api::ApiState {
            store: store.clone(),
            config: config_rx.clone(),
            metrics: metrics.clone(),
            clock: clock.clone(),
        };
        let stop = shutdown.clone();
        tracing::info!(listen = %current.config.api.listen, tls = tls.is_some(), "API and console listening");
        tasks.spawn(async move {
            let served = match tls {
                Some(acceptor) => crate::api::serve_tls(listener, acceptor, state, stop).await,
                None => crate::api::serve(listener, state, stop).await,
            };
            if let Err(e) = served {
                tracing::error!(error = %e, "API server stopped");
            }
        });
    }
    let mut hangup = unix_signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut terminate = unix_signal(tokio::signal::unix::SignalKind::terminate())?;
    notify_state(&[sd_notify::NotifyState::Ready]).await;
    // Pets begin once the start is done, so READY is always told first.
    if let Some(interval) = sd_notify::watchdog_enabled() {
        tasks.spawn(pet_watchdog(interval, shutdown.clone()));
    }

    tracing::info!(adapters = current.adapters.len(), store = %current.config.store_url(), "liankong running");

    loop {
        let generation_stop = shutdown.child_token();
        let ctx = Context::new(
            store.clone(),
            current.config.clone(),
            current.subscribers.clone(),
            clock.clone(),
        )
        .with_witness(current.witness.clone());
        let deliverer = ctx.deliverer()?.with_metrics(metrics.clone());
        let adapters = std::mem::take(&mut current.adapters);
        let workers = tokio::spawn(run_schedules(
            ctx,
            adapters,
            deliverer,
            metrics.workers.clone(),
            generation_stop.clone(),
            deadline,
        ));
        // Wait for a reload that is accepted, or for the end.
        let stop = loop {
            tokio::select! {
                _ = hangup.recv() => {
                    if let Some(next) = reload(&config_path, &current).await {
                        config_tx.send_replace(next.running());
                        current = next;
                        break false;
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
) -> Result<tokio::signal::unix::Signal, DaemonError> {
    tokio::signal::unix::signal(kind).map_err(DaemonError::Signals)
}
