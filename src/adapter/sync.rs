//! One run of one adapter: pull every stream, map and validate each row,
//! write batches with the stream's state, resolve links, commit.
//!
//! A run is one store transaction: it lands whole or not at all, so a run
//! that fails (after its retries) or a process killed in the middle leaves the
//! store and every cursor as they were, and the next run starts from there.
//! Rows that cannot be mapped are quarantined with their reason; they never
//! stop the rows around them, and they never cost a record:
//! - a quarantined row whose key can be read counts as seen, so its record
//!   keeps its last good version and is not deleted by the snapshot; only a
//!   row whose key cannot be read holds the snapshot's deletions back;
//! - an incremental stream is pulled again from before its earliest open
//!   quarantined row until that row lands or an operator drops it;
//! - a snapshot that would delete too many records (the adapter's
//!   [`DeleteGuard`], or any snapshot of no rows) holds its deletions until
//!   an operator accepts them;
//! - a run in which every row of a stream was quarantined fails.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::file::SourceRow;
use super::holder::Holder;
use super::http::{FetchError, Pager};
use super::manifest::Sync as SyncMode;
use super::mapping::{Mapper, parse_rfc3339, utc_string};
use super::report::{HeldReport, StreamReport, SyncReport};
use super::{Adapter, DeleteGuard, Source, StreamSpec};
use crate::clock::Clock;
use crate::model::Collection;
use crate::store::{
    Batch, BatchOutcome, Covered, Held, Item, Quarantined, Refetch, RunId, Store, StoreError,
    StreamState, SyncTx,
};

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Ignore stored high-water marks and pull everything.
    pub full: bool,
    /// Stop with an error after this many batches, before committing: what a
    /// crash between two batches does (tests use it).
    pub stop_after_batches: Option<usize>,
    /// Apply the deletions a snapshot's guard held, once: if the snapshot
    /// pulled now still deletes no more than were held.
    pub accept_deletions: bool,
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stopped after {0} batches as asked")]
    Stopped(usize),
    #[error("lost the adapter's lease to another replica")]
    LeaseLost,
    #[error(
        "every one of the {rows} rows of {stream} was quarantined (the first because {reason}); \
         nothing of this run was kept: check the manifest's fields against what the source sends"
    )]
    AllQuarantined {
        stream: Collection,
        rows: u64,
        reason: String,
    },
}

/// Who this process is, for leases (see [`Holder`]).
pub fn holder_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| Holder::this_process().to_string())
}

/// Takes the lease `name`; when another holds it, takes it over if that
/// holder is a dead process of this machine (a crashed predecessor), rather
/// than waiting for its lease to expire.
async fn take_lease(
    store: &dyn Store,
    name: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if store.try_lease(name, holder_id(), now, until).await? {
        return Ok(true);
    }
    match store.lease_holder(name).await? {
        Some(gone) if Holder::this_process().is_gone(&gone) => {
            let taken = store
                .hand_over_lease(name, &gone, holder_id(), until)
                .await?;
            if taken {
                tracing::warn!(lease = name, gone = %gone, "took over the lease of a process of this machine that is gone");
            }
            Ok(taken)
        }
        _ => Ok(false),
    }
}

/// The lease a run holds, checked in its transaction before it commits.
struct LeaseHeld<'a> {
    name: &'a str,
    ttl: chrono::Duration,
}

/// Runs one adapter once. Never panics and never returns early: every
/// outcome, failure included, is in the report and in the store's run log.
pub async fn run_adapter(
    store: &dyn Store,
    adapter: &Adapter,
    clock: &dyn Clock,
    options: &SyncOptions,
) -> SyncReport {
    let started = clock.now();
    let timer = Instant::now();
    let mut report = SyncReport {
        adapter: adapter.name.clone(),
        run: None,
        started,
        seconds: 0.0,
        streams: Vec::new(),
        links_changed: 0,
        error: None,
        skipped: false,
    };
    // One replica pulls a source at a time; a holder that dies loses the
    // lease when it expires.
    let lease = format!("adapter:{}", adapter.name);
    let ttl = chrono::Duration::from_std(adapter.lease).unwrap_or(chrono::Duration::minutes(5));
    match take_lease(store, &lease, started, started + ttl).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(adapter = %adapter.name, "another replica is pulling this source; skipped");
            report.skipped = true;
            return report;
        }
        Err(e) => {
            report.error = Some(format!("cannot take the adapter's lease: {e}"));
            tracing::error!(adapter = %adapter.name, error = %e, "cannot take the adapter's lease");
            return report;
        }
    }
    let result = match store
        .begin_run(&adapter.name, adapter.manifest.agency, started)
        .await
    {
        Ok(run) => {
            report.run = Some(run);
            let result = {
                let held = LeaseHeld { name: &lease, ttl };
                let work = run_streams(store, adapter, run, clock, options, &held, &mut report);
                // Renewed beside the work, never in its place: on SQLite a
                // renewal waits for the write lock that this very run holds
                // until it commits (nobody else can write meanwhile, so
                // nobody can take the lease either). A renewal that finds
                // the lease gone stops renewing and lets the run go on: the
                // run checks its lease inside its own transaction before it
                // commits, and rolls back if another holder has it. Cutting
                // the run short here could cut it inside its commit.
                let renewals = async {
                    let mut renew = tokio::time::interval(adapter.lease / 3);
                    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    renew.tick().await;
                    loop {
                        renew.tick().await;
                        let now = clock.now();
                        match store
                            .hand_over_lease(&lease, holder_id(), holder_id(), now + ttl)
                            .await
                        {
                            Ok(true) => {}
                            Ok(false) => {
                                tracing::warn!(adapter = %adapter.name, "another replica took this source's lease; the run will not commit");
                                break;
                            }
                            Err(e) => {
                                tracing::warn!(adapter = %adapter.name, error = %e, "cannot renew the adapter's lease");
                            }
                        }
                    }
                    std::future::pending::<()>().await;
                };
                tokio::select! {
                    r = work => r,
                    () = renewals => unreachable!("renewals never end"),
                }
            };
            if let Err(e) = &result {
                // Nothing of a failed run was kept; its counts would mislead.
                report.streams.clear();
                report.links_changed = 0;
                report.error = Some(e.to_string());
            }
            report.seconds = timer.elapsed().as_secs_f64();
            let summary = serde_json::to_string(&report).unwrap_or_else(|e| {
                tracing::warn!(adapter = %adapter.name, error = %e, "cannot summarise the run");
                String::new()
            });
            if let Err(e) = store
                .finish_run(run, clock.now(), result.is_ok(), &summary)
                .await
            {
                tracing::warn!(adapter = %adapter.name, error = %e, "cannot record the end of the run");
            }
            result
        }
        Err(e) => Err(RunError::Store(e)),
    };
    if let Err(e) = store.release_lease(&lease, holder_id()).await {
        tracing::warn!(adapter = %adapter.name, error = %e, "cannot release the adapter's lease; it expires");
    }
    report.seconds = timer.elapsed().as_secs_f64();
    match result {
        Ok(()) => {
            let (fetched, t) = report.totals();
            tracing::info!(
                adapter = %adapter.name, fetched, new = t.new, changed = t.changed,
                unchanged = t.unchanged, deleted = t.deleted, quarantined = t.quarantined,
                seconds = report.seconds, "sync finished"
            );
        }
        Err(e) => {
            report.error = Some(e.to_string());
            tracing::error!(adapter = %adapter.name, error = %e, "sync failed; nothing of this run was kept");
        }
    }
    crate::memory::give_back();
    report
}

async fn run_streams(
    store: &dyn Store,
    adapter: &Adapter,
    run: RunId,
    clock: &dyn Clock,
    options: &SyncOptions,
    lease: &LeaseHeld<'_>,
    report: &mut SyncReport,
) -> Result<(), RunError> {
    let mut tx = store.begin_sync().await?;
    let mut writer = Writer {
        tx: tx.as_mut(),
        run,
        clock,
        batches: 0,
        stop_after: options.stop_after_batches,
    };
    let mode = &adapter.manifest.sync;
    for spec in &adapter.streams {
        let state = store.stream_state(spec.collection).await?;
        let from = match (mode, options.full) {
            (SyncMode::Incremental { .. }, false) => pull_from(state.as_ref()),
            _ => Refetch::Start,
        };
        let stream = match &adapter.source {
            Source::Http(http) => {
                let since = match (mode, from) {
                    (SyncMode::Incremental { since_param, .. }, Refetch::From(t)) => {
                        vec![(since_param.clone(), utc_string(t))]
                    }
                    _ => Vec::new(),
                };
                let path = spec.path.as_deref().unwrap_or_default();
                let mut pager = Pager::new(http, &adapter.manifest.paging, path, since);
                let mut progress = StreamProgress::new(spec, mode, state, adapter, options, from);
                // The next pages are fetched and mapped while the store
                // writes the last ones: up to a batch of them, since a
                // batch is written only once that many rows are in, and a
                // shorter queue would leave the fetch idle for most of each
                // write. A fetch that fails is handed on in turn, so a
                // write in progress is never cut short; a write that fails
                // drops the fetch at once.
                let depth = pages_per_batch(&adapter.manifest.paging, adapter.batch_size);
                let (sender, mut receiver) = mpsc::channel::<Result<Mapping, RunError>>(depth);
                let pages = &mut pager;
                let mapping = Arc::new(Semaphore::new(MAPPING_THREADS));
                let fetch = async move {
                    loop {
                        let next = match pages.next_page().await {
                            Ok(Some(rows)) => {
                                let rows = rows.into_iter().map(SourceRow::from_json).collect();
                                let permit = Arc::clone(&mapping).acquire_owned().await.ok();
                                Ok(map_rows_apart(spec, mode, from, rows, permit))
                            }
                            Ok(None) => break,
                            Err(e) => Err(e.into()),
                        };
                        let failed = next.is_err();
                        if sender.send(next).await.is_err() || failed {
                            break;
                        }
                    }
                    Ok::<(), RunError>(())
                };
                let write = async {
                    while let Some(mapping) = receiver.recv().await {
                        progress.write(&mut writer, mapped(mapping?).await?).await?;
                    }
                    Ok::<(), RunError>(())
                };
                tokio::try_join!(fetch, write)?;
                progress.complete = pager.complete();
                progress.finish(&mut writer).await?
            }
            Source::File(files) => {
                let paths = files.select()?;
                let mut progress = StreamProgress::new(spec, mode, state, adapter, options, from);
                let seen = fingerprint(&paths).await?;
                if !options.full && !paths.is_empty() && progress.cursor.as_ref() == Some(&seen) {
                    // The very files the last clean, complete read took:
                    // the store holds them whole. Not read again, and not a
                    // snapshot either: nothing is deleted, nothing written.
                    tracing::info!(
                        stream = %spec.collection,
                        files = paths.len(),
                        "files unchanged since their last complete read: not read again"
                    );
                    progress.unchanged_files()
                } else {
                    // Names and digests only once the read is clean and
                    // complete (see `finish`); the names alone until then.
                    progress.fingerprint = Some(seen);
                    progress.cursor = Some(
                        paths
                            .iter()
                            .filter_map(|p| p.file_name().and_then(|n| n.to_str()))
                            .collect::<Vec<_>>()
                            .join(","),
                    );
                    // An empty exchange directory is no evidence that
                    // everything was deleted: only files delete.
                    progress.complete = !paths.is_empty();
                    for path in paths {
                        let (sender, mut receiver) =
                            mpsc::channel(adapter.batch_size.div_ceil(FILE_CHUNK_ROWS).max(2));
                        let reader = files.clone();
                        let task = tokio::task::spawn_blocking(move || {
                            reader.read(&path, FILE_CHUNK_ROWS, &sender)
                        });
                        // One chunk is mapped while the one before is
                        // written.
                        let mut mapping: Option<Mapping> = None;
                        while let Some(rows) = receiver.recv().await {
                            let next = map_rows_apart(spec, mode, from, rows?, None);
                            if let Some(last) = mapping.replace(next) {
                                progress.write(&mut writer, mapped(last).await?).await?;
                            }
                        }
                        if let Some(last) = mapping {
                            progress.write(&mut writer, mapped(last).await?).await?;
                        }
                        task.await.map_err(|e| {
                            FetchError::File(format!("the file reader stopped: {e}"))
                        })?;
                    }
                    progress.finish(&mut writer).await?
                }
            }
        };
        report.streams.push(stream);
    }
    report.links_changed = writer.tx.relink_units().await?;
    let until = clock.now() + lease.ttl;
    if !tx.hold_lease(lease.name, holder_id(), until).await? {
        return Err(RunError::LeaseLost);
    }
    tx.commit().await?;
    Ok(())
}

/// Rows a file reader hands over at a time; batches gather several.
const FILE_CHUNK_ROWS: usize = 1000;

/// How many pages make a batch of `batch_rows`, with one to spare: the
/// depth of the queue between a stream's fetch and its writes, so that the
/// rows read ahead stay within about one batch however large the source.
fn pages_per_batch(paging: &super::manifest::Paging, batch_rows: usize) -> usize {
    use super::manifest::Paging;
    let page = match paging {
        Paging::None => return 2,
        Paging::Cursor { limit, .. } | Paging::Offset { limit, .. } => *limit,
        Paging::PageNumber { size, .. } => *size,
    };
    batch_rows.div_ceil((page as usize).max(1)).clamp(1, 64) + 1
}

/// What identifies the files of a run: each name with its size and sha-256.
/// Read on a blocking thread; the files are read again if they are taken.
async fn fingerprint(paths: &[std::path::PathBuf]) -> Result<String, RunError> {
    let paths = paths.to_vec();
    let parts = tokio::task::spawn_blocking(move || {
        paths
            .iter()
            .map(|path| {
                let unreadable =
                    |e: std::io::Error| FetchError::File(format!("{}: {e}", path.display()));
                // Streamed through the digest: a file is never held whole.
                let mut digest = Sha256::new();
                let size = std::fs::File::open(path)
                    .and_then(|mut file| std::io::copy(&mut file, &mut digest))
                    .map_err(unreadable)?;
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Ok(format!(
                    "{name} {size} sha256:{}",
                    hex::encode(digest.finalize())
                ))
            })
            .collect::<Result<Vec<String>, FetchError>>()
    })
    .await
    .map_err(|e| FetchError::File(format!("the file reader stopped: {e}")))??;
    Ok(parts.join(","))
}

/// Where an incremental pull starts: its high-water mark, or earlier where
/// an open quarantined row must come again.
fn pull_from(state: Option<&StreamState>) -> Refetch {
    let Some(state) = state else {
        return Refetch::Start;
    };
    let mark = match state.cursor.as_deref().map(parse_rfc3339) {
        None => Refetch::Start,
        Some(Some(t)) => Refetch::From(t),
        // A mark this version cannot read: everything again, never less.
        Some(None) => Refetch::Start,
    };
    match state.refetch {
        Some(r) => mark.min(r),
        None => mark,
    }
}

/// One page or chunk, mapped: the canonical changes and the rows that are
/// not, with the newest instant the rows carry.
struct Mapped {
    fetched: u64,
    items: Vec<Item>,
    quarantine: Vec<Quarantined>,
    high_water: Option<DateTime<Utc>>,
}

/// Maps rows as the stream's manifest says; never fails: a row that is not
/// a record is quarantined with its reason.
///
/// A quarantined row keeps the key it names, if it can be read, and (for an
/// incremental stream) where a later pull must start to bring it again: its
/// own instant, or where this pull started when it has none.
/// [`map_rows`] on a blocking thread, so that the next page is mapped (and
/// the last one's parsed values freed) while this task's thread prepares
/// and awaits the store's writes: on two cores the work of a run is spread
/// over the mapping, this task and the database's own thread.
///
/// The mapping starts at once; the caller awaits [`mapped`] when it needs
/// the rows, so that the next page is fetched while this one is mapped.
/// `permit`, when given, is held until the page is mapped.
fn map_rows_apart(
    spec: &StreamSpec,
    mode: &SyncMode,
    from: Refetch,
    rows: Vec<SourceRow>,
    permit: Option<OwnedSemaphorePermit>,
) -> Mapping {
    let mapper = spec.mapper.clone();
    let mode = mode.clone();
    tokio::task::spawn_blocking(move || {
        let mapped = map_rows(&mapper, &mode, from, rows.into_iter());
        drop(permit);
        mapped
    })
}

/// Pages of one stream mapped at the same time, beside the fetch and the
/// writes. Measured at scale 1 (`liankong bench`, README): one at a time
/// was faster than two and kept the peak memory where it was; two raised
/// it by 45 MiB, each thread growing its own allocator arena.
const MAPPING_THREADS: usize = 1;

/// A page's rows being mapped on a blocking thread.
type Mapping = tokio::task::JoinHandle<Mapped>;

/// The rows a [`Mapping`] made.
async fn mapped(mapping: Mapping) -> Result<Mapped, RunError> {
    mapping
        .await
        .map_err(|e| RunError::from(FetchError::Transport(format!("the mapping stopped: {e}"))))
}

fn map_rows(
    mapper: &Mapper,
    mode: &SyncMode,
    from: Refetch,
    rows: impl ExactSizeIterator<Item = SourceRow>,
) -> Mapped {
    let mut mapped = Mapped {
        fetched: 0,
        items: Vec::with_capacity(rows.len()),
        quarantine: Vec::new(),
        high_water: None,
    };
    let incremental = matches!(mode, SyncMode::Incremental { .. });
    for row in rows {
        mapped.fetched += 1;
        match row {
            SourceRow::Ok(row) => {
                let instant = match mode {
                    SyncMode::Incremental { high_water, .. } => mapper.instant(&row, high_water),
                    SyncMode::Snapshot => None,
                };
                mapped.high_water = mapped.high_water.max(instant);
                match mapper.map(&row) {
                    Ok(item) => mapped.items.push(item),
                    Err(reason) => mapped.quarantine.push(Quarantined {
                        reason: reason.to_string(),
                        raw: serde_json::Value::Object(row.clone()).to_string(),
                        key: mapper.key(&row),
                        refetch: incremental.then(|| instant.map_or(from, Refetch::From)),
                    }),
                }
            }
            SourceRow::Bad { reason, raw } => mapped.quarantine.push(Quarantined {
                reason,
                raw,
                key: None,
                refetch: incremental.then_some(from),
            }),
        }
    }
    mapped
}

/// Batches a run writes between two calls of [`crate::memory::give_back`]:
/// what the mapping threads freed meanwhile goes back to the system during
/// a long first load, not only at its end.
const GIVE_BACK_EVERY: usize = 32;

/// Writes batches into the run's transaction and counts them.
struct Writer<'a> {
    tx: &'a mut dyn SyncTx,
    run: RunId,
    clock: &'a dyn Clock,
    batches: usize,
    stop_after: Option<usize>,
}

impl Writer<'_> {
    async fn apply(&mut self, batch: &Batch) -> Result<BatchOutcome, RunError> {
        if self.stop_after.is_some_and(|n| self.batches >= n) {
            return Err(RunError::Stopped(self.batches));
        }
        let outcome = self.tx.apply(batch).await?;
        self.batches += 1;
        if self.batches.is_multiple_of(GIVE_BACK_EVERY) {
            crate::memory::give_back();
        }
        Ok(outcome)
    }
}

/// The bookkeeping of one stream during a run.
struct StreamProgress<'a> {
    spec: &'a StreamSpec,
    mode: &'a SyncMode,
    guard: DeleteGuard,
    accept_deletions: bool,
    /// Where this pull started (for an incremental stream).
    from: Refetch,
    /// The deletions held before this run, kept unless it decides anew.
    held: Option<Held>,
    /// Why the first quarantined row was quarantined.
    first_reason: Option<String>,
    /// Rows of the stream still quarantined before this run: pulled again
    /// alone, they are no sign that the manifest is wrong.
    open_quarantined: u64,
    report: StreamReport,
    /// The cursor to store: the high-water mark so far, or the file names.
    cursor: Option<String>,
    /// The files' names, sizes and digests: the cursor once they were read
    /// completely and cleanly.
    fingerprint: Option<String>,
    high_water: Option<DateTime<Utc>>,
    complete: bool,
    /// When the stream last completed, kept when this run does not complete.
    last_complete: Option<DateTime<Utc>>,
    /// Mapped rows not written yet: written once they fill a batch, which is
    /// sorted by key in the store so that it touches its pages in order.
    pending: Vec<Item>,
    pending_quarantine: Vec<Quarantined>,
    batch_rows: usize,
    /// Rows quarantined in this run, written or pending.
    quarantined: u64,
}

impl<'a> StreamProgress<'a> {
    fn new(
        spec: &'a StreamSpec,
        mode: &'a SyncMode,
        state: Option<StreamState>,
        adapter: &Adapter,
        options: &SyncOptions,
        from: Refetch,
    ) -> StreamProgress<'a> {
        let (previous, last_complete, held, open_quarantined) = state
            .map(|s| (s.cursor, s.last_complete, s.held, s.open_quarantined))
            .unwrap_or_default();
        StreamProgress {
            spec,
            mode,
            guard: adapter.delete_guard,
            accept_deletions: options.accept_deletions,
            from,
            held,
            first_reason: None,
            open_quarantined,
            report: StreamReport {
                collection: spec.collection.to_string(),
                fetched: 0,
                outcome: BatchOutcome::default(),
                complete: false,
                unkeyed: 0,
                held: None,
                accepted: None,
            },
            high_water: match mode {
                SyncMode::Incremental { .. } => previous.as_deref().and_then(parse_rfc3339),
                SyncMode::Snapshot => None,
            },
            cursor: previous,
            fingerprint: None,
            complete: false,
            last_complete,
            pending: Vec::new(),
            pending_quarantine: Vec::new(),
            batch_rows: adapter.batch_size.max(1),
            quarantined: 0,
        }
    }

    fn collection(&self) -> Collection {
        self.spec.collection
    }

    /// Takes mapped rows; writes a batch once enough are pending.
    async fn write(&mut self, writer: &mut Writer<'_>, mapped: Mapped) -> Result<(), RunError> {
        self.report.fetched += mapped.fetched;
        self.high_water = self.high_water.max(mapped.high_water);
        self.quarantined += mapped.quarantine.len() as u64;
        self.report.unkeyed += mapped.quarantine.iter().filter(|q| q.key.is_none()).count() as u64;
        if self.first_reason.is_none() {
            self.first_reason = mapped.quarantine.first().map(|q| q.reason.clone());
        }
        self.pending.extend(mapped.items);
        self.pending_quarantine.extend(mapped.quarantine);
        if self.pending.len() + self.pending_quarantine.len() >= self.batch_rows {
            let batch = self.batch(writer);
            let outcome = writer.apply(&batch).await?;
            self.report.outcome += outcome;
        }
        Ok(())
    }

    /// The pending rows as a batch, with the stream's state after it.
    fn batch(&mut self, writer: &Writer<'_>) -> Batch {
        let mut batch = Batch::new(self.collection(), writer.run, writer.clock.now());
        batch.items = std::mem::take(&mut self.pending);
        batch.quarantine = std::mem::take(&mut self.pending_quarantine);
        batch.snapshot = matches!(self.mode, SyncMode::Snapshot);
        if let Some(t) = self.high_water {
            self.cursor = Some(utc_string(t));
        }
        batch.state = Some(self.state(writer.run, self.last_complete));
        batch
    }

    fn state(&self, run: RunId, last_complete: Option<DateTime<Utc>>) -> StreamState {
        StreamState {
            cursor: self.cursor.clone(),
            last_complete,
            run: Some(run),
            held: self.held,
            refetch: None,
            open_quarantined: 0,
        }
    }

    /// The report of a stream whose files were not read again: complete,
    /// since the store already holds them whole, with nothing fetched.
    fn unchanged_files(mut self) -> StreamReport {
        self.report.complete = true;
        self.report
    }

    /// The end of the stream: what is still pending, then — for a complete
    /// snapshot — its deletions unless a row without a readable key or the
    /// mass-deletion guard holds them, and the state marking the pull
    /// complete.
    async fn finish(mut self, writer: &mut Writer<'_>) -> Result<StreamReport, RunError> {
        // Every row bad, and more rows than were bad already: a manifest
        // that reads the wrong fields, not a row or two the source garbled.
        if self.report.fetched > self.open_quarantined && self.quarantined == self.report.fetched {
            return Err(RunError::AllQuarantined {
                stream: self.collection(),
                rows: self.report.fetched,
                reason: self.first_reason.take().unwrap_or_default(),
            });
        }
        let snapshot = matches!(self.mode, SyncMode::Snapshot);
        let mut delete = false;
        if self.complete && snapshot && self.report.unkeyed == 0 {
            // What the snapshot deletes is known once all its rows are in.
            let batch = self.batch(writer);
            self.report.outcome += writer.apply(&batch).await?;
            let unseen = writer.tx.unseen(self.collection(), writer.run).await?;
            let trips = self
                .guard
                .trips(unseen.unseen, unseen.live, self.report.fetched);
            let accepted = self
                .held
                .filter(|h| self.accept_deletions && unseen.unseen <= h.deletions);
            if trips && accepted.is_none() {
                self.report.held = Some(HeldReport {
                    deletions: unseen.unseen,
                    live: unseen.live,
                });
                if self.accept_deletions {
                    self.report.accepted = self.held.map(|h| h.deletions);
                }
                self.held = Some(Held {
                    deletions: unseen.unseen,
                    since: self.held.map_or(writer.clock.now(), |h| h.since),
                });
            } else {
                delete = true;
                self.held = None;
            }
        }
        // The files' digests mark them taken only once everything in them
        // was applied; until then they are read again at every run.
        let applied = self.complete && (!snapshot || delete);
        if applied && let Some(fingerprint) = self.fingerprint.take() {
            self.cursor = Some(fingerprint);
        }
        if self.complete {
            self.last_complete = Some(writer.clock.now());
        }
        let mut batch = self.batch(writer);
        batch.complete_snapshot = delete;
        if self.complete {
            batch.covered = Some(if snapshot {
                Covered::All
            } else {
                Covered::From(self.from)
            });
        }
        self.report.outcome += writer.apply(&batch).await?;
        self.report.complete = self.complete;
        if let Some(h) = self.report.held {
            tracing::error!(
                stream = %self.collection(),
                would_delete = h.deletions,
                live = h.live,
                "snapshot deletions HELD: too many to apply unasked; accept them with sync --adapter NAME --accept-deletions"
            );
        } else if snapshot && !delete {
            tracing::warn!(
                stream = %self.collection(),
                complete = self.complete,
                quarantined = self.quarantined,
                without_key = self.report.unkeyed,
                "snapshot not applied whole: nothing deleted this run"
            );
        }
        Ok(self.report)
    }
}

#[cfg(test)]
mod tests {
    use super::pages_per_batch;
    use crate::adapter::manifest::Paging;

    #[test]
    fn the_fetch_reads_ahead_one_batch_of_pages_and_no_more() {
        let cursor = |limit| Paging::Cursor {
            records: "data".into(),
            cursor_param: "cursor".into(),
            next_cursor: "next_cursor".into(),
            limit_param: "limit".into(),
            limit,
        };
        // 20 pages make a batch: the queue holds them and one more.
        assert_eq!(pages_per_batch(&cursor(1000), 20_000), 21);
        assert_eq!(pages_per_batch(&cursor(1000), 20_001), 22);
        // Pages larger than a batch: one ahead, as before.
        assert_eq!(pages_per_batch(&cursor(50_000), 20_000), 2);
        // Tiny pages: bounded.
        assert_eq!(pages_per_batch(&cursor(1), 20_000), 65);
        assert_eq!(pages_per_batch(&cursor(0), 20_000), 65);
        assert_eq!(pages_per_batch(&Paging::None, 20_000), 2);
    }
}
