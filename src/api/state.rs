//! What the handlers share: the store, the running config (swapped on
//! reload), the process's metrics and the clock.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;

use tokio::sync::watch;

use crate::adapter::Adapter;
use crate::adapter::manifest::Manifest;
use crate::clock::Clock;
use crate::config::Config;
use crate::deliver::Subscriber;
use crate::metrics::SharedMetrics;
use crate::model::Agency;
use crate::store::Store;

/// The config the API answers from, with the agency of each of its
/// adapters: read from the manifests once, when the config is loaded, not
/// at every request.
#[derive(Debug)]
pub struct RunningConfig {
    config: Arc<Config>,
    agencies: BTreeMap<String, Agency>,
    /// Who hears of the actions taken through the API.
    subscribers: Arc<Vec<Subscriber>>,
}

impl RunningConfig {
    /// `adapters` are the config's built (enabled) adapters; the manifests
    /// of the disabled ones are read here.
    pub fn new(config: Arc<Config>, adapters: &[Adapter]) -> RunningConfig {
        let mut agencies: BTreeMap<String, Agency> = adapters
            .iter()
            .map(|a| (a.name.clone(), a.manifest.agency))
            .collect();
        for (name, c) in &config.adapters {
            if !agencies.contains_key(name)
                && let Ok(m) = Manifest::load(&c.manifest)
            {
                agencies.insert(name.clone(), m.agency);
            }
        }
        RunningConfig {
            config,
            agencies,
            subscribers: Arc::default(),
        }
    }

    /// The config's subscribers, built once with it (their secrets read).
    pub fn with_subscribers(mut self, subscribers: Arc<Vec<Subscriber>>) -> RunningConfig {
        self.subscribers = subscribers;
        self
    }

    pub fn subscribers(&self) -> &[Subscriber] {
        &self.subscribers
    }

    /// The agency an adapter's manifest serves, if its manifest loaded.
    pub fn agency(&self, adapter: &str) -> Option<Agency> {
        self.agencies.get(adapter).copied()
    }
}

impl Deref for RunningConfig {
    type Target = Config;
    fn deref(&self) -> &Config {
        &self.config
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    /// The current config (the daemon swaps it on reload).
    pub config: watch::Receiver<Arc<RunningConfig>>,
    pub metrics: SharedMetrics,
    pub clock: Arc<dyn Clock>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapters_agencies_are_read_once_with_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("discipline.toml");
        std::fs::write(&manifest, include_str!("../../adapters/discipline.toml")).unwrap();
        let text = format!(
            "[adapters.jw]\nmanifest = {:?}\nschedule = \"0 6 * * *\"\nenabled = false\n",
            manifest.display().to_string()
        );
        let config = Arc::new(Config::parse(&text).unwrap());
        let running = RunningConfig::new(config, &[]);
        // The API answers from what was read when the config was loaded,
        // whatever happens on disk until the next reload.
        std::fs::remove_file(&manifest).unwrap();
        assert_eq!(running.agency("jw"), Some(Agency::Discipline));
        assert_eq!(running.agency("none"), None);
        assert_eq!(running.adapters.len(), 1, "the config shows through");
    }
}
