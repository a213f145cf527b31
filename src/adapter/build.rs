//! An adapter built: a manifest joined with its part of the daemon config
//! (where the system is, its secrets, its schedule, its deletion guard),
//! checked without the network, and its connection tried on demand.

use std::path::PathBuf;

use super::file::FileSource;
use super::http::{self, HttpSource};
use super::manifest::Manifest;
use super::mapping::Mapper;
use super::retry::RetryPolicy;
use crate::config::{AdapterConfig, Config, Schedule};
use crate::model::Collection;

/// An adapter that cannot be built, named.
#[derive(Debug, thiserror::Error)]
#[error("adapter {adapter}: {message}")]
pub struct AdapterError {
    pub adapter: String,
    pub message: String,
}

/// Why a source cannot be built from its manifest and config, in the words
/// an operator reads (the adapter's name is added by [`AdapterError`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unbuildable(pub String);

impl From<String> for Unbuildable {
    fn from(message: String) -> Unbuildable {
        Unbuildable(message)
    }
}

impl From<&str> for Unbuildable {
    fn from(message: &str) -> Unbuildable {
        Unbuildable(message.to_owned())
    }
}

impl From<crate::config::SecretError> for Unbuildable {
    fn from(e: crate::config::SecretError) -> Unbuildable {
        Unbuildable(e.to_string())
    }
}

/// One stream of an adapter, ready to map rows.
#[derive(Debug)]
pub struct StreamSpec {
    pub collection: Collection,
    pub path: Option<String>,
    /// Shared with the threads that map pages while the store writes.
    pub mapper: std::sync::Arc<Mapper>,
}

pub enum Source {
    Http(HttpSource),
    File(FileSource),
}

/// A manifest joined with its config: everything a run needs.
pub struct Adapter {
    pub name: String,
    pub manifest_path: PathBuf,
    pub manifest: Manifest,
    pub schedule: Schedule,
    pub batch_size: usize,
    /// How long a run's lease lasts between renewals.
    pub lease: std::time::Duration,
    pub source: Source,
    pub streams: Vec<StreamSpec>,
    /// When a snapshot's deletions are too many to apply unasked.
    pub delete_guard: DeleteGuard,
}

/// The mass-deletion guard of a snapshot (`max_delete_share`,
/// `max_delete_min` in the config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeleteGuard {
    pub max_share: f64,
    pub max_min: u64,
}

impl DeleteGuard {
    /// Whether deleting `unseen` of `live` records needs an operator's word:
    /// more than the share and more than the minimum, or any deletion by a
    /// snapshot that holds no row at all.
    pub fn trips(&self, unseen: u64, live: u64, rows: u64) -> bool {
        if unseen == 0 {
            return false;
        }
        if rows == 0 {
            return true;
        }
        // Exact: unseen / live > share, without dividing.
        let over_share = (unseen as f64) > self.max_share * (live as f64);
        over_share && unseen > self.max_min
    }
}

impl Adapter {
    /// Loads the manifest, checks it against the config, reads the secrets
    /// and builds the client. Touches no network.
    pub fn build(
        name: &str,
        config: &AdapterConfig,
        whole: &Config,
    ) -> Result<Adapter, AdapterError> {
        let err = |message: String| AdapterError {
            adapter: name.to_owned(),
            message,
        };
        let manifest = Manifest::load(&config.manifest).map_err(|e| err(e.to_string()))?;
        let retry = RetryPolicy::from_config(&whole.sync);
        let source = if manifest.is_http() {
            if config.dir.is_some() {
                return Err(err("dir is for file systems; this one is HTTP".into()));
            }
            Source::Http(
                HttpSource::new(&manifest.transport, &manifest.auth, config, retry)
                    .map_err(|e| err(e.0))?,
            )
        } else {
            if config.base_url.is_some() {
                return Err(err(
                    "base_url is for HTTP systems; this one drops files".into()
                ));
            }
            Source::File(
                FileSource::new(&manifest.transport, config.dir.as_deref())
                    .map_err(|e| err(e.0))?,
            )
        };
        let wanted: Vec<&str> = manifest.auth.secret_names();
        for given in config.secrets.keys() {
            if !wanted.contains(&given.as_str()) {
                return Err(err(format!(
                    "secret {given:?} is not one the manifest asks for ({wanted:?})"
                )));
            }
        }
        let streams = manifest
            .streams
            .iter()
            .zip(manifest.collections())
            .map(|(s, collection)| StreamSpec {
                collection,
                path: s.path.clone(),
                mapper: std::sync::Arc::new(Mapper::new(collection, s)),
            })
            .collect();
        Ok(Adapter {
            name: name.to_owned(),
            manifest_path: config.manifest.clone(),
            schedule: config.schedule.clone(),
            batch_size: whole.sync.batch_size,
            lease: std::time::Duration::from_secs(whole.sync.lease_secs.max(1)),
            manifest,
            source,
            streams,
            delete_guard: DeleteGuard {
                max_share: config.max_delete_share,
                max_min: config.max_delete_min,
            },
        })
    }

    /// Tries to reach the system: the first page of each stream, or the
    /// newest file's first rows. Returns one line per stream.
    pub async fn check_connection(&self) -> Vec<(String, Result<String, http::FetchError>)> {
        let mut lines = Vec::new();
        match &self.source {
            Source::Http(h) => {
                for s in &self.streams {
                    let path = s.path.as_deref().unwrap_or_default();
                    let mut pager = http::Pager::new(h, &self.manifest.paging, path, Vec::new());
                    let outcome = match pager.next_page().await {
                        Ok(Some(rows)) => Ok(format!(
                            "reached {path}: {} rows on the first page",
                            rows.len()
                        )),
                        Ok(None) => Ok(format!("reached {path}: no rows")),
                        Err(e) => Err(e),
                    };
                    lines.push((s.collection.to_string(), outcome));
                }
            }
            Source::File(f) => {
                let outcome = || match f.select() {
                    Ok(files) if files.is_empty() => Err(http::FetchError::File(format!(
                        "no file matching the manifest's pattern in {}",
                        f.dir().display()
                    ))),
                    Ok(files) => Ok(format!(
                        "{} file(s) in {}, newest {}",
                        files.len(),
                        f.dir().display(),
                        files
                            .last()
                            .and_then(|p| p.file_name())
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    )),
                    Err(e) => Err(e),
                };
                for s in &self.streams {
                    lines.push((s.collection.to_string(), outcome()));
                }
            }
        }
        lines
    }
}

/// Builds every enabled adapter and validates the manifests of the disabled
/// ones (whose secrets are not read); returns all errors, not just the first.
pub fn build_all(config: &Config) -> Result<Vec<Adapter>, Vec<AdapterError>> {
    let mut adapters = Vec::new();
    let mut errors = Vec::new();
    for (name, c) in &config.adapters {
        if !c.enabled {
            if let Err(e) = Manifest::load(&c.manifest) {
                errors.push(AdapterError {
                    adapter: name.clone(),
                    message: e.to_string(),
                });
            }
            continue;
        }
        match Adapter::build(name, c, config) {
            Ok(a) => adapters.push(a),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(adapters)
    } else {
        Err(errors)
    }
}
