//! The daemon's configuration file: `--config PATH` or `$LIANKONG_CONFIG`,
//! else the first of [`DEFAULT_PATHS`] that exists.
//!
//! Every key has a default, so an empty file is a valid configuration; unknown
//! keys are errors, so a typo never silently falls back to a default. The
//! comments on these fields are the operator's manual, and the shipped
//! `config/liankong.toml` shows every key with its default.
//!
//! The files a config names (manifests, exchange directories, TLS files,
//! `file:` secrets) are found relative to the config file's own directory
//! when their paths are relative, so a config means the same whoever reads
//! it from wherever: `check` run by hand and the daemon under systemd see
//! the same files. The store's `sqlite:PATH` is the exception: it is where
//! the daemon keeps its state, relative to the working directory (the unit's
//! `StateDirectory`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{FixedOffset, Offset, Utc};
use serde::Deserialize;

use crate::store::StoreUrl;

/// The environment variable that overrides `store.url`, so that tests and
/// systemd units can point at a database without editing the file.
pub const STORE_URL_ENV: &str = "LIANKONG_STORE_URL";

/// Config text that does not describe a deployment: the first problem, in
/// the words an operator reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Where a config is looked for when neither `--config` nor
/// `$LIANKONG_CONFIG` names one, in this order: a checkout's (relative to
/// the working directory), then an installation's.
pub const DEFAULT_PATHS: [&str; 2] = ["config/liankong.toml", "/etc/liankong/liankong.toml"];

/// The config file to read: `given` when there is one, else the first of
/// `candidates` that is a file.
pub fn locate(given: Option<&Path>, candidates: &[&str]) -> Result<PathBuf, ConfigError> {
    if let Some(path) = given {
        return Ok(path.to_owned());
    }
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| ConfigError::NotFound {
            looked: candidates.join(" nor "),
        })
}

/// A configuration that cannot be used, with the file it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no config file: neither {looked} exists (give one with --config PATH or LIANKONG_CONFIG)"
    )]
    NotFound { looked: String },
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
    /// How adapter runs behave.
    #[serde(default)]
    pub sync: SyncConfig,
    /// One table per adapter, named by the adapter (`[adapters.finance]`).
    #[serde(default)]
    pub adapters: BTreeMap<String, AdapterConfig>,
    /// The rules' switches, thresholds and recipients.
    #[serde(default)]
    pub rules: crate::reconcile::RulesConfig,
    /// The alert lifecycle.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Webhook subscribers, one table each (`[subscribers.finance_main]`).
    #[serde(default)]
    pub subscribers: BTreeMap<String, SubscriberConfig>,
    /// How webhooks are delivered.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// The HTTP API of the daemon.
    #[serde(default)]
    pub api: ApiConfig,
    /// Witnessed history: the checkpoint signing key and its schedule.
    #[serde(default)]
    pub witness: crate::witness::WitnessConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Whether `liankong run` serves the API.
    pub enabled: bool,
    /// Address and port; loopback by default. Put a TLS-terminating proxy in
    /// front before listening anywhere else.
    pub listen: String,
    /// Bearer tokens, each belonging to one agency, which sees only what it
    /// may see. Only the sha-256 of a token is kept here (`liankong token`
    /// makes one). Tokens are personal: the console signs a clerk in with
    /// one, and the store records its name with every action taken.
    pub tokens: Vec<ApiToken>,
    /// PEM certificate chain: with `tls_key`, liankong terminates TLS
    /// itself (API and console) and the console's cookie is `Secure`.
    /// Relative to the config file's directory.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert` (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// Addresses of reverse proxies in front of liankong. From these peers
    /// alone the console believes `X-Forwarded-For` (the client address that
    /// failed sign-ins are counted against) and `X-Forwarded-Proto: https`
    /// (which makes its cookie `Secure`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// A console session ends after this many minutes without a request.
    pub session_idle_minutes: u64,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            enabled: true,
            listen: "127.0.0.1:8470".into(),
            tokens: Vec::new(),
            tls_cert: None,
            tls_key: None,
            trusted_proxies: Vec::new(),
            session_idle_minutes: 30,
        }
    }
}

impl ApiConfig {
    /// Whether liankong terminates TLS itself.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }
}

/// One API token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who holds it, for the log.
    pub name: String,
    pub agency: crate::model::Agency,
    /// sha-256 of the token, 64 hex digits.
    pub sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// A firing alert that nobody acknowledged is sent again this often.
    pub repeat_interval_hours: u64,
}

impl Default for AlertsConfig {
    fn default() -> AlertsConfig {
        AlertsConfig {
            repeat_interval_hours: 7 * 24,
        }
    }
}

/// One webhook endpoint of one agency.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriberConfig {
    /// The agency whose alerts it receives (and whose view of them).
    pub agency: crate::model::Agency,
    /// Where events are POSTed.
    pub url: String,
    /// Signing secrets, each `whsec_` + base64, as references. Every event
    /// is signed with each of them, so a receiver can rotate: add the new
    /// secret first, remove the old one once the receiver has switched.
    pub secrets: Vec<SecretRef>,
    /// Event types to send (`alert.firing`, `alert.escalated`,
    /// `alert.reminder`, `alert.resolved`); all when absent.
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Timeout of one POST.
    pub timeout_secs: u64,
    /// The first retry comes after about this long; each later one waits
    /// twice as long, with equal jitter (at least half of it, so a receiver
    /// that is down is never hammered)…
    pub min_delay_secs: u64,
    /// …but never longer than this.
    pub max_delay_secs: u64,
    /// An event still undelivered this long after it was written is dead.
    pub max_age_hours: u64,
    /// How often the delivery worker looks for due events. While the store
    /// fails, it holds off longer after each failure in a row: this,
    /// doubled each time, up to 5 minutes.
    pub poll_secs: u64,
    /// Events claimed per round.
    pub batch: i64,
}

impl Default for DeliveryConfig {
    fn default() -> DeliveryConfig {
        DeliveryConfig {
            timeout_secs: 10,
            min_delay_secs: 5,
            max_delay_secs: 3600,
            max_age_hours: 24,
            poll_secs: 2,
            batch: 100,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Records written per batch: pages and file chunks are gathered until
    /// a batch holds this many, and the store writes a batch in key order,
    /// so a larger batch meets each page of a table once rather than at
    /// random (memory grows with it: about 5 KiB per record in flight).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Attempts per request, the first included, before the run fails.
    #[serde(default = "default_attempts")]
    pub retry_attempts: usize,
    /// The first retry waits up to this long (exponential, full jitter).
    #[serde(default = "default_min_delay")]
    pub retry_min_delay_ms: u64,
    /// No retry waits longer than this, whatever the exponent says.
    #[serde(default = "default_max_delay")]
    pub retry_max_delay_ms: u64,
    /// A `Retry-After` (seconds or an HTTP date) longer than this fails the
    /// run at once, saying so, instead of waiting; the next scheduled run
    /// tries again.
    #[serde(default = "default_max_retry_after")]
    pub max_retry_after_secs: u64,
    /// An adapter run holds a lease so that one replica pulls a source at a
    /// time; the holder renews it every third of this. A replica that dies
    /// loses it this long after its last renewal; a process on the same
    /// machine takes a dead predecessor's lease over at once
    /// (`adapter::holder`).
    #[serde(default = "default_lease")]
    pub lease_secs: u64,
}

fn default_lease() -> u64 {
    120
}

fn default_batch_size() -> usize {
    20_000
}
fn default_attempts() -> usize {
    6
}
fn default_min_delay() -> u64 {
    500
}
fn default_max_delay() -> u64 {
    30_000
}
fn default_max_retry_after() -> u64 {
    300
}

impl Default for SyncConfig {
    fn default() -> SyncConfig {
        SyncConfig {
            batch_size: default_batch_size(),
            retry_attempts: default_attempts(),
            retry_min_delay_ms: default_min_delay(),
            retry_max_delay_ms: default_max_delay(),
            max_retry_after_secs: default_max_retry_after(),
            lease_secs: default_lease(),
        }
    }
}

/// One adapter: which manifest, where its system is, when to pull, and the
/// secrets the manifest asks for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterConfig {
    /// The manifest file (a relative path is relative to the config file's
    /// directory).
    pub manifest: PathBuf,
    /// A disabled adapter is checked but never run.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// When to pull, as a cron expression in China time (UTC+8): five fields
    /// (`min hour day month weekday`) or six with seconds first. Use names
    /// for weekdays (`Mon-Fri`). A schedule that never fires is an error.
    pub schedule: Schedule,
    /// Base URL of an HTTP system, e.g. `https://czj.example.gov.cn`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Exchange directory of a file system (relative: to the config file's
    /// directory).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Secret name (as the manifest's auth names it) → where to read it:
    /// `env:VAR`, `file:/path` (a relative path is relative to the config
    /// file's directory), or `credential:NAME` (a systemd credential, read
    /// from `$CREDENTIALS_DIRECTORY/NAME`). Never the secret itself.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretRef>,
    /// TLS material for systems with a private CA or mutual TLS.
    #[serde(default)]
    pub tls: TlsConfig,
    /// The mass-deletion guard. A complete snapshot that would delete more
    /// than this share (0 to 1) of a stream's live records *and* more than
    /// `max_delete_min` records lands its new and changed records but holds
    /// its deletions until an operator accepts them with
    /// `liankong sync --adapter NAME --accept-deletions`; so does a snapshot
    /// of no rows at all while the stream has live records. Default 0.1:
    /// an export cut short or taken from the wrong year loses far more than
    /// a tenth, an ordinary correction far less.
    #[serde(default = "default_max_delete_share")]
    pub max_delete_share: f64,
    /// See `max_delete_share`. Default 10: a small stream losing one of its
    /// nine records is an ordinary correction, not a mass deletion.
    #[serde(default = "default_max_delete_min")]
    pub max_delete_min: u64,
}

fn yes() -> bool {
    true
}

fn default_max_delete_share() -> f64 {
    0.1
}

fn default_max_delete_min() -> u64 {
    10
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM bundle of the CA(s) that sign the server's certificate; when set,
    /// no other root is trusted. (Relative paths here and in `client_cert`
    /// are relative to the config file's directory.)
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM), as a secret reference.
    #[serde(default)]
    pub client_key: Option<SecretRef>,
}

/// Where a secret comes from. Its `Debug` names the source, never the value.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
    Credential(String),
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(v) => write!(f, "env:{v}"),
            SecretRef::File(p) => write!(f, "file:{}", p.display()),
            SecretRef::Credential(n) => write!(f, "credential:{n}"),
        }
    }
}

/// A secret written where a reference belongs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a secret must be a reference: env:VAR, file:/path or credential:NAME (never the secret itself)"
)]
pub struct NotAReference;

impl TryFrom<String> for SecretRef {
    type Error = NotAReference;
    fn try_from(s: String) -> Result<SecretRef, NotAReference> {
        let (kind, rest) = s.split_once(':').ok_or(NotAReference)?;
        if rest.is_empty() {
            return Err(NotAReference);
        }
        match kind {
            "env" => Ok(SecretRef::Env(rest.to_owned())),
            "file" => Ok(SecretRef::File(PathBuf::from(rest))),
            "credential" => Ok(SecretRef::Credential(rest.to_owned())),
            _ => Err(NotAReference),
        }
    }
}

/// A secret value. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A secret that cannot be read. Names the reference, never a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {reference}: environment variable {var} is not set")]
    Unset { reference: String, var: String },
    #[error("cannot read secret {reference}: {source}")]
    File {
        reference: String,
        source: std::io::Error,
    },
    #[error(
        "secret {reference}: CREDENTIALS_DIRECTORY is not set (not run by systemd with LoadCredential=?)"
    )]
    NoCredentials { reference: String },
}

impl SecretRef {
    /// Reads the secret now. A file's trailing newline is not part of it.
    pub fn read(&self) -> Result<Secret, SecretError> {
        let reference = || self.to_string();
        let from_file = |path: &Path| {
            std::fs::read_to_string(path)
                .map(|s| Secret(s.trim_end_matches(['\n', '\r']).to_owned()))
                .map_err(|source| SecretError::File {
                    reference: reference(),
                    source,
                })
        };
        match self {
            SecretRef::Env(var) => std::env::var(var)
                .map(Secret)
                .map_err(|_| SecretError::Unset {
                    reference: reference(),
                    var: var.clone(),
                }),
            SecretRef::File(path) => from_file(path),
            SecretRef::Credential(name) => {
                let dir = std::env::var("CREDENTIALS_DIRECTORY").map_err(|_| {
                    SecretError::NoCredentials {
                        reference: reference(),
                    }
                })?;
                from_file(&Path::new(&dir).join(name))
            }
        }
    }
}

/// China time, in which schedules are read (China has no daylight saving).
pub fn china_time() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or(Utc.fix())
}

/// A cron schedule that fires at least once.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Schedule {
    text: String,
    cron: cron::Schedule,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.text)
    }
}

/// A schedule that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule {text:?} is not a cron expression: {reason}")]
    NotCron { text: String, reason: String },
    #[error("schedule {0:?} never fires")]
    NeverFires(String),
}

impl TryFrom<String> for Schedule {
    type Error = ScheduleError;
    fn try_from(text: String) -> Result<Schedule, ScheduleError> {
        let fields = text.split_whitespace().count();
        // The cron crate wants seconds first; operators write five fields.
        let expr = if fields == 5 {
            format!("0 {text}")
        } else {
            text.clone()
        };
        let cron = cron::Schedule::from_str(&expr).map_err(|e| ScheduleError::NotCron {
            text: text.clone(),
            reason: e.to_string(),
        })?;
        if cron.upcoming(china_time()).next().is_none() {
            return Err(ScheduleError::NeverFires(text));
        }
        Ok(Schedule { text, cron })
    }
}

impl Schedule {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first firing strictly after `after`.
    pub fn next_after(&self, after: chrono::DateTime<Utc>) -> Option<chrono::DateTime<Utc>> {
        self.cron
            .after(&after.with_timezone(&china_time()))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }
}

impl SyncConfig {
    pub fn retry_min_delay(&self) -> Duration {
        Duration::from_millis(self.retry_min_delay_ms)
    }
    pub fn retry_max_delay(&self) -> Duration {
        Duration::from_millis(self.retry_max_delay_ms)
    }
    pub fn max_retry_after(&self) -> Duration {
        Duration::from_secs(self.max_retry_after_secs)
    }
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
    /// `RUST_LOG` overrides it. Statements slower than 1 s are logged at
    /// debug (`info,sqlx::query=debug` shows them).
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
    /// Reads and validates a config file, resolves the relative paths of the
    /// files it names against its own directory, then applies environment
    /// overrides.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message: message.0,
        })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            config.resolve_paths(dir);
        }
        if let Ok(url) = std::env::var(STORE_URL_ENV)
            && !url.is_empty()
        {
            config.store.url = url;
        }
        Ok(config)
    }

    /// Parses config text without touching the environment.
    pub fn parse(text: &str) -> Result<Config, Invalid> {
        let config: Config = toml::from_str(text).map_err(|e| Invalid(e.to_string()))?;
        crate::reconcile::check_recipients(&config.rules).map_err(|e| Invalid(e.to_string()))?;
        if config.api.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(Invalid(format!(
                "api.listen {:?} is not an address like 127.0.0.1:8470",
                config.api.listen
            )));
        }
        if config.api.tls_cert.is_some() != config.api.tls_key.is_some() {
            return Err(Invalid(
                "api.tls_cert and api.tls_key go together: give both or neither".into(),
            ));
        }
        if config.api.session_idle_minutes == 0 {
            return Err(Invalid(
                "api.session_idle_minutes must be at least 1".into(),
            ));
        }
        for t in &config.api.tokens {
            if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Invalid(format!(
                    "api token {:?}: sha256 must be 64 hex digits (the hash, never the token)",
                    t.name
                )));
            }
        }
        for (name, s) in &config.subscribers {
            if !(s.url.starts_with("http://") || s.url.starts_with("https://")) {
                return Err(Invalid(format!("subscribers.{name}.url must be http(s)")));
            }
            if s.secrets.is_empty() {
                return Err(Invalid(format!(
                    "subscribers.{name} needs at least one secret"
                )));
            }
            for e in s.events.iter().flatten() {
                if crate::alert::EventType::parse(e).is_none() {
                    return Err(Invalid(format!(
                        "subscribers.{name}: unknown event type {e:?}"
                    )));
                }
            }
        }
        for (name, a) in &config.adapters {
            if !(0.0..=1.0).contains(&a.max_delete_share) {
                return Err(Invalid(format!(
                    "adapters.{name}.max_delete_share must be between 0 and 1 (a share, not a percentage)"
                )));
            }
        }
        if config.sync.batch_size == 0 || config.sync.retry_attempts == 0 {
            return Err(Invalid(
                "sync.batch_size and sync.retry_attempts must be at least 1".into(),
            ));
        }
        let url = config.store_url();
        if !url.is_sqlite() && !url.is_postgres() {
            return Err(Invalid(format!(
                "store.url {url} is not sqlite:PATH or postgres://…"
            )));
        }
        Ok(config)
    }

    pub fn store_url(&self) -> StoreUrl {
        StoreUrl::new(self.store.url.clone())
    }

    /// Makes every relative path of a file the config names relative to
    /// `dir` (the config file's directory). The store URL is left alone.
    fn resolve_paths(&mut self, dir: &Path) {
        let path = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        let secret = |s: &mut SecretRef| {
            if let SecretRef::File(p) = s {
                path(p);
            }
        };
        for a in self.adapters.values_mut() {
            path(&mut a.manifest);
            a.dir.iter_mut().for_each(path);
            a.tls.ca.iter_mut().for_each(path);
            a.tls.client_cert.iter_mut().for_each(path);
            a.tls.client_key.iter_mut().for_each(secret);
            a.secrets.values_mut().for_each(secret);
        }
        for s in self.subscribers.values_mut() {
            s.secrets.iter_mut().for_each(secret);
        }
        self.api.tls_cert.iter_mut().for_each(path);
        self.api.tls_key.iter_mut().for_each(path);
        self.witness.resolve_paths(dir);
    }
}

#[cfg(test)]
mod tests;
