//! The shared store: the only state the stages share.
//!
//! One [`Store`] trait, one implementation per backend ([`sqlite`], the
//! embedded default, and [`postgres`]), chosen once from the URL scheme by
//! [`open`]. Both implementations compile the same code (`sql_common.rs`,
//! and the report's query in `sql_report.rs`) against their own `sqlx`
//! driver and run their own migrations.
//!
//! For every canonical record the store keeps its key, its current content
//! and typed columns (for the rules) in one row, when it was first seen and
//! when its current version was recorded, and every earlier version; each
//! version has a 32-byte entry hash, and the versions each write adds form
//! one batch of the stream's hash chain (`chain.rs`). A [`Batch`] and the
//! stream's new [`StreamState`] commit in one transaction, so a crash at any
//! point leaves either all of a batch or none of it.

pub mod actions;
pub mod alerts;
mod chain;
mod columns;
pub mod console;
pub mod facts;
pub mod postgres;
pub mod report;
mod schema;
pub mod sqlite;
pub mod witness;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Agency, Collection, Record, Source};

pub use chain::{
    BatchRoot, Digest32, FlatRoot, GENESIS, batch_link, content_hash, entry_hash, legacy,
    stream_leaf,
};

/// A store failure. Database errors keep their cause; nothing here carries a
/// record's content, so an error is always safe to log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported store URL {0}: use sqlite:PATH or postgres://…")]
    UnsupportedUrl(StoreUrl),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a batch for {batch} holds a record of {record}")]
    WrongCollection {
        batch: Collection,
        record: Collection,
    },
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("cannot write a value as JSON: {0}")]
    Encode(serde_json::Error),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("no answer from the database within {0:?}")]
    NoAnswer(std::time::Duration),
    #[error("the directory {0} does not exist (SQLite creates the file, not its directory)")]
    NoDirectory(std::path::PathBuf),
}

/// How long opening a PostgreSQL store waits for the server's first answer
/// (a refusal comes at once; this bounds a server that never answers).
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// sqlx reports statements slower than this, with their whole SQL. At the
/// default WARN a large sync floods the log with them; at DEBUG they are
/// there for whoever asks (`RUST_LOG=info,sqlx::query=debug`).
const SLOW_STATEMENT: std::time::Duration = std::time::Duration::from_secs(1);
const SLOW_STATEMENT_LOG: log::LevelFilter = log::LevelFilter::Debug;

/// The one place a database error becomes a store error: a row a query
/// required and did not find is `NotFound`, whatever the backend.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound("a row the query required".into()),
            other => StoreError::Database(other),
        }
    }
}

/// A store URL. Its `Debug` and `Display` hide any password it carries.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreUrl(String);

impl StoreUrl {
    pub fn new(url: impl Into<String>) -> StoreUrl {
        StoreUrl(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_sqlite(&self) -> bool {
        self.0.starts_with("sqlite:")
    }

    pub fn is_postgres(&self) -> bool {
        self.0.starts_with("postgres://") || self.0.starts_with("postgresql://")
    }

    /// The URL with the password of its authority, if any, replaced by `***`.
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else {
            return self.0.clone();
        };
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
                None => self.0.clone(),
            },
            None => self.0.clone(),
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({:?})", self.redacted())
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The id of one adapter run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RunId(pub i64);

/// One change a source reported.
// Nearly every item is an upsert, and boxing the record would cost an
// allocation per record of a province's sync.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// The record as the source has it now.
    Upsert(Upsert),
    /// The source deleted (or voided) the record with this key.
    Delete(String),
}

impl From<Record> for Item {
    fn from(record: Record) -> Item {
        Item::Upsert(Upsert::new(record))
    }
}

/// A record with its key and canonical content, computed once where the
/// item is made: during a sync, on the thread that maps the source's rows,
/// so that the thread writing to the store only compares and writes them.
#[derive(Debug, Clone, PartialEq)]
pub struct Upsert {
    record: Record,
    key: String,
    content: String,
}

impl Upsert {
    pub fn new(record: Record) -> Upsert {
        Upsert {
            key: record.key(),
            content: record.content(),
            record,
        }
    }

    pub fn record(&self) -> &Record {
        &self.record
    }

    /// [`Record::key`].
    pub fn key(&self) -> &str {
        &self.key
    }

    /// [`Record::content`].
    pub fn content(&self) -> &str {
        &self.content
    }
}

/// A source row that could not become a canonical record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    /// Why it was rejected, for an operator to act on.
    pub reason: String,
    /// The row as received (JSON text, a CSV line, a worksheet row).
    pub raw: String,
    /// The key of the record the row is about, when its key fields can be
    /// read: that record counts as seen and keeps its last good version.
    pub key: Option<String>,
    /// Incremental streams: where a later pull must start so that this row
    /// comes again; `None` for snapshots, which send every row every time.
    pub refetch: Option<Refetch>,
}

impl Quarantined {
    /// A row of a snapshot that names no key it can be filed under.
    pub fn unkeyed(reason: String, raw: String) -> Quarantined {
        Quarantined {
            reason,
            raw,
            key: None,
            refetch: None,
        }
    }
}

/// Where an incremental pull must start to fetch a quarantined row again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Refetch {
    /// From the beginning: the row's place in the stream is unknown and the
    /// run that met it asked for everything.
    Start,
    /// From this instant on (sources send rows updated at or after it).
    From(DateTime<Utc>),
}

/// A quarantined row's place in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineState {
    /// Still bad at its last sighting; an incremental stream's high-water
    /// mark does not pass it.
    Open,
    /// A complete pull that covered it no longer sent it bad: it landed, or
    /// the source withdrew it.
    Resolved,
    /// An operator gave up on it (`liankong quarantine drop`).
    Dropped,
}

impl QuarantineState {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineState::Open => "open",
            QuarantineState::Resolved => "resolved",
            QuarantineState::Dropped => "dropped",
        }
    }

    pub fn parse(s: &str) -> Option<QuarantineState> {
        [
            QuarantineState::Open,
            QuarantineState::Resolved,
            QuarantineState::Dropped,
        ]
        .into_iter()
        .find(|q| q.as_str() == s)
    }
}

/// Which open quarantined rows an operator drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuarantineSelection {
    Id(i64),
    Stream(Collection),
}

/// What the end of a complete pull settles about the stream's quarantine:
/// every open row it covered and did not meet again is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Covered {
    /// A snapshot: every row of the stream.
    All,
    /// An incremental pull from this point: the rows it would have sent.
    From(Refetch),
}

/// A complete snapshot's deletions before they are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Unseen {
    /// Live records of the stream this run has not seen.
    pub unseen: u64,
    /// Live records of the stream, seen or not.
    pub live: u64,
}

/// Per-stream sync bookkeeping, committed together with the batch it follows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct StreamState {
    /// The incremental high-water mark, or the name of the last file taken.
    pub cursor: Option<String>,
    /// When the stream last finished a complete pull (snapshot or incremental).
    pub last_complete: Option<DateTime<Utc>>,
    /// The run that last wrote this state.
    pub run: Option<RunId>,
    /// Deletions the newest complete snapshot would have made and did not,
    /// because there were too many (the mass-deletion guard), and since when.
    pub held: Option<Held>,
    /// Read, never written: where the next incremental pull must start so
    /// that the stream's open quarantined rows come again.
    #[serde(skip)]
    pub refetch: Option<Refetch>,
    /// Read, never written: the stream's open quarantined rows.
    #[serde(skip)]
    pub open_quarantined: u64,
}

/// A snapshot's deletions held back for an operator to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Held {
    pub deletions: u64,
    pub since: DateTime<Utc>,
}

/// Changes of one stream, applied atomically with its new state.
#[derive(Debug, Clone)]
pub struct Batch {
    pub collection: Collection,
    pub run: RunId,
    /// The time the batch is recorded at (the clock is a parameter).
    pub at: DateTime<Utc>,
    pub items: Vec<Item>,
    pub quarantine: Vec<Quarantined>,
    /// This batch is part of a snapshot pull: its keys (and those of its
    /// quarantined rows) count as seen for the snapshot's deletions and for
    /// [`SyncTx::unseen`], within the transaction it is applied in.
    pub snapshot: bool,
    /// This batch ends a complete snapshot whose deletions are to be
    /// applied: every live record of the stream that no snapshot batch of
    /// this transaction (this one included) has seen is deleted.
    pub complete_snapshot: bool,
    /// This batch ends a complete pull: the stream's open quarantined rows
    /// it covered and did not meet again are resolved.
    pub covered: Option<Covered>,
    /// The stream's state after this batch; `None` leaves it as it is.
    pub state: Option<StreamState>,
}

impl Batch {
    pub fn new(collection: Collection, run: RunId, at: DateTime<Utc>) -> Batch {
        Batch {
            collection,
            run,
            at,
            items: Vec::new(),
            quarantine: Vec::new(),
            snapshot: false,
            complete_snapshot: false,
            covered: None,
            state: None,
        }
    }
}

/// What a batch did, record by record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchOutcome {
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub quarantined: u64,
}

impl std::ops::AddAssign for BatchOutcome {
    fn add_assign(&mut self, o: BatchOutcome) {
        self.new += o.new;
        self.changed += o.changed;
        self.unchanged += o.unchanged;
        self.deleted += o.deleted;
        self.quarantined += o.quarantined;
    }
}

/// A record as the store holds it now.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub collection: Collection,
    pub key: String,
    /// sha-256 of the last content, hex.
    pub hash: String,
    pub version: i64,
    pub deleted: bool,
    pub first_seen: DateTime<Utc>,
    /// When the current version was recorded: an unchanged record is not
    /// written again, so this is the last change, not the last sighting.
    pub last_seen: DateTime<Utc>,
    /// The last content the source sent (also for a deleted record).
    pub record: Record,
}

/// One entry of a record's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The batch of the stream's chain this version joined.
    pub batch: i64,
    pub version: i64,
    pub deleted: bool,
    pub content: Option<String>,
    /// The version's entry hash, hex.
    pub entry: String,
    pub recorded_at: DateTime<Utc>,
}

/// A quarantined row as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantineEntry {
    pub id: i64,
    pub collection: String,
    /// The run that first met it, and the one that met it last.
    pub run: Option<i64>,
    pub last_run: Option<i64>,
    /// How many runs met it bad.
    pub sightings: i64,
    pub reason: String,
    pub raw: String,
    /// The record it is about, when its key could be read.
    pub key: Option<String>,
    /// The version of that record the store kept when the row was last met
    /// (its last good version), if the store holds it.
    pub kept_version: Option<i64>,
    /// Whether it holds its incremental stream's high-water mark back.
    pub holds: bool,
    pub state: QuarantineState,
    pub received_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// One finding of `verify`: where the history or the current state does not
/// match its hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Damage {
    pub collection: String,
    /// The record, or empty when the damage is a batch's as a whole (a
    /// version removed or inserted, a root or link that does not match).
    pub key: String,
    pub version: i64,
    /// The batch of the chain concerned, when known.
    pub batch: Option<i64>,
    pub problem: String,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.collection, self.problem)
        } else {
            write!(
                f,
                "{} {:?} version {}: {}",
                self.collection, self.key, self.version, self.problem
            )
        }
    }
}

/// The result of walking every chain.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct VerifyReport {
    pub chains: u64,
    pub versions: u64,
    pub records: u64,
    /// The first broken link of each damaged chain, then any current record
    /// that disagrees with its newest version.
    pub damage: Vec<Damage>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.damage.is_empty()
    }
}

/// The newest run of one adapter.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AdapterRunRow {
    pub adapter: String,
    pub agency: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// None while the run is in progress.
    pub ok: Option<bool>,
    /// The run's JSON summary (counts per stream, the error).
    pub report: Option<String>,
    pub last_success: Option<DateTime<Utc>>,
    pub runs: i64,
    pub failures: i64,
}

/// Counts for one collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectionStats {
    pub source: Source,
    pub collection: &'static str,
    pub live: i64,
    pub deleted: i64,
    pub versions: i64,
    /// Open quarantined rows (still bad at their last sighting).
    pub quarantined: i64,
}

/// The shared store. Every method is one transaction or one read.
#[async_trait]
pub trait Store:
    facts::FactStore
    + alerts::AlertStore
    + report::ReportStore
    + actions::ActionStore
    + console::ConsoleStore
    + witness::WitnessStore
    + Send
    + Sync
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Applies the pending migrations of this backend.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Starts a run of the named adapter and returns its id.
    async fn begin_run(
        &self,
        adapter: &str,
        agency: Agency,
        at: DateTime<Utc>,
    ) -> Result<RunId, StoreError>;

    /// The newest run of every adapter, with its run and failure counts.
    async fn adapter_runs(&self) -> Result<Vec<AdapterRunRow>, StoreError>;

    /// Takes or renews the lease `name` for `holder` until `until`; false when
    /// another holder's lease has not expired at `now`.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Gives the lease `name`, if `from` still holds it (expired or not),
    /// to `to` until `until`: `from == to` renews it, another `to` takes it
    /// over from a holder known to be dead. False when `from` does not hold
    /// it.
    async fn hand_over_lease(
        &self,
        name: &str,
        from: &str,
        to: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Gives a lease up (if `holder` still has it).
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// A number that grows whenever any canonical record is written (new,
    /// changed or deleted): the newest version of every stream, summed.
    async fn data_generation(&self) -> Result<i64, StoreError>;

    /// Who holds the lease `name`, expired or not.
    async fn lease_holder(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Whether the store answers and its migrations are all applied.
    async fn readiness(&self) -> Result<(), StoreError>;

    /// Records how a run ended; `report` is a short JSON summary.
    async fn finish_run(
        &self,
        run: RunId,
        at: DateTime<Utc>,
        ok: bool,
        report: &str,
    ) -> Result<(), StoreError>;

    /// Applies a batch and its stream state in one transaction.
    async fn apply(&self, batch: &Batch) -> Result<BatchOutcome, StoreError>;

    /// Opens the write transaction of one adapter run: its batches commit
    /// together or not at all. On SQLite, runs in one process queue for it.
    async fn begin_sync(&self) -> Result<Box<dyn SyncTx>, StoreError>;

    async fn stream_state(&self, collection: Collection)
    -> Result<Option<StreamState>, StoreError>;

    /// The current record with this key, deleted or not.
    async fn get(
        &self,
        collection: Collection,
        key: &str,
    ) -> Result<Option<StoredRecord>, StoreError>;

    /// Every version of a record, oldest first.
    async fn history(&self, collection: Collection, key: &str) -> Result<Vec<Version>, StoreError>;

    /// Quarantined rows, newest first; only the open ones if asked.
    async fn quarantined(
        &self,
        collection: Option<Collection>,
        open_only: bool,
        limit: i64,
    ) -> Result<Vec<QuarantineEntry>, StoreError>;

    /// An operator gives up on open quarantined rows: they no longer hold
    /// their stream's high-water mark. Returns how many were dropped.
    async fn drop_quarantined(
        &self,
        which: QuarantineSelection,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Every stream whose newest complete snapshot's deletions are held.
    async fn held_deletions(&self) -> Result<Vec<(String, Held)>, StoreError>;

    /// Walks every version chain and checks the current records against it.
    async fn verify(&self) -> Result<VerifyReport, StoreError>;

    /// Counts per agency and collection.
    async fn stats(&self) -> Result<Vec<CollectionStats>, StoreError>;

    /// Closes the connection pool.
    async fn close(&self);
}

/// The open write transaction of an adapter run. Dropping it without
/// [`SyncTx::commit`] rolls everything back.
#[async_trait]
pub trait SyncTx: Send {
    /// Applies one batch inside the run's transaction.
    async fn apply(&mut self, batch: &Batch) -> Result<BatchOutcome, StoreError>;

    /// How many live records of the stream the snapshot batches of this
    /// run's transaction have not seen (so far): what a complete snapshot
    /// would delete.
    async fn unseen(&mut self, collection: Collection, run: RunId) -> Result<Unseen, StoreError>;

    /// The link step: resolves every audit finding's unit name to the one live
    /// finance unit whose normalised name matches, or to nothing. Whatever
    /// order adapters run in, the result depends only on what is stored.
    /// Returns how many findings changed their link.
    async fn relink_units(&mut self) -> Result<u64, StoreError>;

    /// Inside the run's transaction, just before it commits: extends the
    /// lease `name` to `until` if `holder` still holds it, and says whether
    /// it does. On PostgreSQL the row stays locked until the commit, so no
    /// other replica can take the lease between this check and the commit.
    async fn hold_lease(
        &mut self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Opens the store the URL names: `sqlite:PATH` (created if missing) or
/// `postgres://…`. Does not migrate.
pub async fn open(url: &StoreUrl) -> Result<Arc<dyn Store>, StoreError> {
    if url.is_sqlite() {
        Ok(Arc::new(sqlite::SqlStore::connect(url).await?))
    } else if url.is_postgres() {
        Ok(Arc::new(postgres::SqlStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.clone()))
    }
}

/// Checks what can be checked of a store URL without connecting: that the
/// backend can read it, and for SQLite that the file's directory exists.
pub fn check_url(url: &StoreUrl) -> Result<(), StoreError> {
    if url.is_postgres() {
        postgres::connect_options(url)?;
        return Ok(());
    }
    let file = sqlite_file(url)?;
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
            Err(StoreError::NoDirectory(dir.to_owned()))
        }
        _ => Ok(()),
    }
}

/// The file a `sqlite:` URL names.
pub fn sqlite_file(url: &StoreUrl) -> Result<std::path::PathBuf, StoreError> {
    if !url.is_sqlite() {
        return Err(StoreError::UnsupportedUrl(url.clone()));
    }
    Ok(sqlite::connect_options(url)?.get_filename().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_without_connecting() {
        assert!(check_url(&StoreUrl::new("sqlite:liankong.db")).is_ok());
        let e = check_url(&StoreUrl::new("sqlite:/nonexistent/dir/liankong.db")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the directory /nonexistent/dir does not exist (SQLite creates the file, not its directory)"
        );
        assert!(check_url(&StoreUrl::new("postgres://u@db.example:5432/liankong")).is_ok());
        assert!(check_url(&StoreUrl::new("postgres://u@db.example:notaport/liankong")).is_err());
    }

    #[test]
    fn a_missing_row_is_not_found_and_other_database_errors_stay_what_they_are() {
        assert!(matches!(
            StoreError::from(sqlx::Error::RowNotFound),
            StoreError::NotFound(_)
        ));
        assert!(matches!(
            StoreError::from(sqlx::Error::PoolTimedOut),
            StoreError::Database(sqlx::Error::PoolTimedOut)
        ));
    }

    #[test]
    fn urls_hide_passwords() {
        let u = StoreUrl::new("postgres://liankong:s3cret@db.example:5432/liankong");
        assert_eq!(
            u.redacted(),
            "postgres://liankong:***@db.example:5432/liankong"
        );
        assert!(!format!("{u:?}").contains("s3cret"));
        assert_eq!(
            StoreUrl::new("sqlite:/var/lib/liankong/liankong.db").redacted(),
            "sqlite:/var/lib/liankong/liankong.db"
        );
    }
}
