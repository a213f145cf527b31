//! A configuration's generation: everything a config builds (adapters,
//! subscribers, the checkpoint signer), checked before it replaces the running one on SIGHUP.

use std::path::Path;
use std::sync::Arc;

use super::systemd::notify_state;
use crate::adapter::{Adapter, AdapterError};
use crate::api::RunningConfig;
use crate::config::{Config, ConfigError};
use crate::deliver::Subscriber;
use crate::deliver::subscribers::SubscriberError;
use crate::witness::{Witness, WitnessError};

/// Everything a configuration builds: checked before it replaces the running one.
pub(super) struct Generation {
    pub config: Arc<Config>,
    pub adapters: Vec<Adapter>,
    pub subscribers: Arc<Vec<Subscriber>>,
    /// The checkpoint signer, when the config has a key.
    pub witness: Option<Arc<Witness>>,
}

impl Generation {
    /// What the API answers from while this generation runs.
    pub fn running(&self) -> Arc<RunningConfig> {
        Arc::new(
            RunningConfig::new(self.config.clone(), &self.adapters)
                .with_subscribers(self.subscribers.clone()),
        )
    }
}

/// A config that cannot run: every reason, not just the first.
#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Adapters(Vec<AdapterError>),
    #[error(transparent)]
    Subscribers(#[from] SubscriberError),
    #[error(transparent)]
    Witness(#[from] WitnessError),
}

pub(super) fn build_generation(config: Config) -> Result<Generation, GenerationError> {
    let adapters = crate::adapter::build_all(&config).map_err(GenerationError::Adapters)?;
    let subscribers = crate::deliver::subscribers::build_all(&config)?;
    let witness = Witness::load(&config.witness)?.map(Arc::new);
    Ok(Generation {
        config: Arc::new(config),
        adapters,
        subscribers: Arc::new(subscribers),
        witness,
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
        .map_err(GenerationError::from)
        .and_then(build_generation)
    {
        Ok(next) => {
            if next.config.store.url != current.config.store.url
                || next.config.api.listen != current.config.api.listen
                || next.config.api.tls_cert != current.config.api.tls_cert
                || next.config.api.tls_key != current.config.api.tls_key
            {
                tracing::warn!(
                    "store.url, api.listen and api.tls_cert/tls_key take effect at the next restart"
                );
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
