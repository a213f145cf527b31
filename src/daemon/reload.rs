//! A configuration's generation: everything a config builds (adapters,
//! subscribers), checked before it replaces the running one on SIGHUP.

use std::path::Path;
use std::sync::Arc;

use super::systemd::notify_state;
use crate::adapter::Adapter;
use crate::api::RunningConfig;
use crate::config::Config;
use crate::deliver::Subscriber;

/// Everything a configuration builds: checked before it replaces the running one.
pub(super) struct Generation {
    pub config: Arc<Config>,
    pub adapters: Vec<Adapter>,
    pub subscribers: Arc<Vec<Subscriber>>,
}

impl Generation {
    /// What the API answers from while this generation runs.
    pub fn running(&self) -> Arc<RunningConfig> {
        Arc::new(RunningConfig::new(self.config.clone(), &self.adapters))
    }
}

pub(super) fn build_generation(config: Config) -> Result<Generation, String> {
    let adapters = crate::adapter::build_all(&config).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let subscribers = crate::deliver::subscribers::build_all(&config)?;
    Ok(Generation {
        config: Arc::new(config),
        adapters,
        subscribers: Arc::new(subscribers),
    })
}

/// A reload (SIGHUP): tells systemd, then loads and builds the config at
/// `path`. The new generation when it is good; when it is not, the running
/// one stays (logged, and systemd told READY again).
pub(super) async fn reload(path: &Path, current: &Generation) -> Option<Generation> {
    let mut states = vec![sd_notify::NotifyState::Reloading];
    if let Ok(m) = sd_notify::NotifyState::monotonic_usec_now() {
        states.push(m);
    }
    notify_state(&states).await;
    match Config::load(path)
        .map_err(|e| e.to_string())
        .and_then(build_generation)
    {
        Ok(next) => {
            if next.config.store.url != current.config.store.url
                || next.config.api.listen != current.config.api.listen
            {
                tracing::warn!("store.url and api.listen take effect at the next restart");
            }
            tracing::info!(adapters = next.adapters.len(), "reloading the config");
            Some(next)
        }
        Err(e) => {
            tracing::error!(error = %e, "reload rejected: keeping the running config");
            notify_state(&[sd_notify::NotifyState::Ready]).await;
            None
        }
    }
}
