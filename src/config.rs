//! The daemon's configuration file (`config/liankong.toml` by default).
//!
//! Every key has a default, so an empty file is a valid configuration; unknown
//! keys are errors, so a typo never silently falls back to a default. The
//! comments on these fields are the operator's manual, and the shipped
//! `config/liankong.toml` shows every key with its default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::store::StoreUrl;

/// The environment variable that overrides `store.url`, so that tests and
/// systemd units can point at a database without editing the file.
pub const STORE_URL_ENV: &str = "LIANKONG_STORE_URL";

/// A configuration that cannot be used, with the file it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is invalid: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the shared store lives.
    #[serde(default)]
    pub store: StoreConfig,
    /// How the daemon logs.
    #[serde(default)]
    pub log: LogConfig,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite:PATH` (the embedded default; a relative path is relative to the
    /// working directory, the file is created if missing) or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`. `LIANKONG_STORE_URL`
    /// overrides it.
    #[serde(default = "default_store_url")]
    pub url: String,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &StoreUrl::new(self.url.clone()))
            .finish()
    }
}

fn default_store_url() -> String {
    "sqlite:liankong.db".to_owned()
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            url: default_store_url(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human lines on a terminal, JSON otherwise (e.g. under systemd).
    #[default]
    Auto,
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `auto`, `human` or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `liankong=debug,sqlx=warn`;
    /// `RUST_LOG` overrides it.
    #[serde(default = "default_log_level")]
    pub level: String,
}

fn default_log_level() -> String {
    "info".to_owned()
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            format: LogFormat::Auto,
            level: default_log_level(),
        }
    }
}

impl Config {
    /// Reads and validates a config file, then applies environment overrides.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        if let Ok(url) = std::env::var(STORE_URL_ENV)
            && !url.is_empty()
        {
            config.store.url = url;
        }
        Ok(config)
    }

    /// Parses config text without touching the environment.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        let url = config.store_url();
        if !url.is_sqlite() && !url.is_postgres() {
            return Err(format!(
                "store.url {url} is not sqlite:PATH or postgres://…"
            ));
        }
        Ok(config)
    }

    pub fn store_url(&self) -> StoreUrl {
        StoreUrl::new(self.store.url.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_has_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.store.url, "sqlite:liankong.db");
        assert_eq!(c.log.format, LogFormat::Auto);
    }

    #[test]
    fn unknown_keys_and_bad_urls_are_errors() {
        let e = Config::parse("[store]\nurl = \"sqlite:x.db\"\npool = 3\n").unwrap_err();
        assert!(e.contains("unknown field `pool`"), "{e}");
        let e = Config::parse("[store]\nurl = \"mysql://x\"\n").unwrap_err();
        assert!(e.contains("is not sqlite:PATH"), "{e}");
    }

    #[test]
    fn the_shipped_config_parses() {
        let text = include_str!("../config/liankong.toml");
        Config::parse(text).unwrap();
    }

    #[test]
    fn debug_hides_the_store_password() {
        let c = Config::parse("[store]\nurl = \"postgres://u:hunter2@h/db\"\n").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
