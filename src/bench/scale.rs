//! One scale of the benchmark: the simulator in a child process, and the
//! phases of the daemon's side timed and measured.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use serde::Serialize;

use crate::adapter::{self, SyncOptions, SyncReport, run_adapter};
use crate::alert::EvaluationOutcome;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::pipeline::Context;
use crate::sim::{AnomalyShare, Planted};
use crate::store::{self, Store, StoreError, StoreUrl};

use super::baseline::run_baseline;
use super::delivery::{Delivery, Receivers, deliver_all};
use super::summary::{show, show_delivery};

/// A province-year at scale 1 (`README.md`, "Benchmark").
pub const UNITS: f64 = 10_000.0;
pub const PROJECTS: f64 = 100_000.0;
pub const AUDIT_FINDINGS: f64 = 20_000.0;
pub const REFERRALS: f64 = 2_000.0;

/// The line `liankong sim` prints once it serves and its files are written.
pub const SIM_READY: &str = "Ctrl-C stops the simulator.";
/// The line before it that says what `--anomalies` planted, as JSON.
pub const SIM_PLANTED: &str = "planted: ";

/// The targets (issue 11), printed next to the figures: each a ratio to
/// the baseline of the same run.
pub const TARGET_FULL_OVER_BASELINE: f64 = 3.0;
/// PostgreSQL's (a) over the baseline.
pub const TARGET_FULL_OVER_BASELINE_POSTGRES: f64 = 5.0;
pub const TARGET_UNCHANGED_OVER_BASELINE: f64 = 0.5;
pub const TARGET_RECONCILE_OVER_BASELINE: f64 = 1.0;
/// (f), a day's changes synced and reconciled, over the baseline.
pub const TARGET_DAY_OVER_BASELINE: f64 = 0.2;
/// (g): from (a)'s reconciliation's end to the last webhook of the alerts
/// it raised, over the baseline.
pub const TARGET_DELIVERY_OVER_BASELINE: f64 = 1.0;
pub const TARGET_WAL_BYTES: u64 = 1024 * 1024 * 1024;
pub const TARGET_PEAK_BYTES: u64 = 512 * 1024 * 1024;
/// Memory counts as flat when the largest scale's peak is within this factor
/// of the smallest's.
pub const FLAT_FACTOR: f64 = 1.25;

/// Why a benchmark could not run. Timings never fail it.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("the simulator: {0}")]
    Sim(String),
    #[error("the config the simulator wrote: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("adapter {adapter} failed: {error}")]
    Sync { adapter: String, error: String },
    #[error("the baseline: {0}")]
    Baseline(String),
    #[error("{0}")]
    Usage(String),
}

pub(super) fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> BenchError {
    move |e| BenchError::Io(what.to_string(), e)
}

/// What the simulator generates at a scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Volumes {
    pub units: usize,
    pub projects: usize,
    pub audit_findings: usize,
    pub referrals: usize,
}

impl Volumes {
    /// Scale 1 is 10,000 units, 100,000 projects, 20,000 audit findings and
    /// 2,000 referrals; payments (~20 per project), quotas, the npc mirror
    /// (one row per project and month-end) and orgdept rows (one per unit
    /// and quarter) follow from those.
    pub fn at(scale: f64) -> Volumes {
        let n = |base: f64| -> usize {
            let v = (base * scale).round();
            // Saturating float-to-int conversion; negative scales are refused earlier.
            if v >= 1.0 { v as usize } else { 1 }
        };
        Volumes {
            units: n(UNITS),
            projects: n(PROJECTS),
            audit_findings: n(AUDIT_FINDINGS),
            referrals: n(REFERRALS),
        }
    }
}

/// How to run a benchmark.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// One directory per scale is made under it.
    pub dir: PathBuf,
    /// The `liankong` binary that runs the simulator (normally this one).
    pub exe: PathBuf,
    /// The config file the simulator child is started with, if any (it
    /// reads none of it but its log settings).
    pub config: Option<PathBuf>,
    /// The `sqlite3` shell of the baseline.
    pub sqlite3: PathBuf,
    /// The simulated today and the reconciliation date.
    pub as_of: NaiveDate,
    /// The adapter manifests the simulator's config points at.
    pub manifests: Option<PathBuf>,
    /// A PostgreSQL server (`postgres://…/DATABASE` of a user who may
    /// create databases): each scale runs in a fresh database made on it
    /// and dropped afterwards. `None`: a fresh SQLite file.
    pub postgres: Option<String>,
    /// Print each rule query's plan on the backend, right after the first
    /// load (`--explain`).
    pub explain: bool,
    /// Plant anomalies at this share (`--anomalies`, see
    /// [`crate::sim::GenParams::anomalies`]) and time their delivery, phase
    /// (g). `None`: the clean year, and no (g).
    pub anomalies: Option<AnomalyShare>,
}

/// One timed phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Phase {
    pub seconds: f64,
    pub sync_seconds: f64,
    pub reconcile_seconds: f64,
    /// Peak resident memory of this process during the phase (`VmHWM`).
    pub peak_kib: u64,
    /// The same during its sync alone (reset again before the reconcile).
    pub sync_peak_kib: u64,
    /// Rows fetched and records written (new, changed or deleted).
    pub fetched: u64,
    pub written: u64,
    pub findings: u64,
    /// Alerts the reconciliation raised, and the outbox events it wrote.
    pub alerts_raised: u64,
    pub events: u64,
    /// SQLite: the largest size the write-ahead log reached during the
    /// phase; PostgreSQL: the WAL the server wrote during it.
    pub wal_bytes: u64,
}

/// The baseline's run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baseline {
    pub seconds: f64,
    pub import_seconds: f64,
    pub query_seconds: f64,
    /// Projects with an execution progress figure.
    pub progress_rows: u64,
    /// npc execution rows that differ from finance's payments.
    pub mirror_mismatches: u64,
    /// Project-years where approved and quota differ.
    pub approved_mismatches: u64,
}

/// Everything one scale measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScaleReport {
    pub scale: f64,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    pub volumes: Volumes,
    pub dir: PathBuf,
    /// Rows fetched per stream in the full sync.
    pub streams: Vec<(String, u64)>,
    pub simulator_start_seconds: f64,
    pub full: Phase,
    pub unchanged: Phase,
    pub reconcile: Phase,
    /// (f): what the simulator changed in a day, and its sync + reconcile.
    pub day_changes: crate::sim::DayChanges,
    pub day: Phase,
    pub baseline: Baseline,
    /// What the simulator planted (`--anomalies`), and (g) their delivery.
    pub planted: Option<Planted>,
    pub delivery: Option<Delivery>,
    /// Whether the peak could be reset per phase (`/proc/self/clear_refs`);
    /// if not, each phase's peak is the process's peak so far.
    pub peak_per_phase: bool,
}

impl ScaleReport {
    /// The largest of the phases' peaks.
    pub fn peak_kib(&self) -> u64 {
        self.full
            .peak_kib
            .max(self.unchanged.peak_kib)
            .max(self.reconcile.peak_kib)
            .max(self.day.peak_kib)
            .max(self.delivery.as_ref().map_or(0, |d| d.peak_kib))
    }

    pub fn full_over_baseline(&self) -> f64 {
        ratio(self.full.seconds, self.baseline.seconds)
    }

    pub fn unchanged_over_baseline(&self) -> f64 {
        ratio(self.unchanged.seconds, self.baseline.seconds)
    }

    pub fn reconcile_over_baseline(&self) -> f64 {
        ratio(self.reconcile.seconds, self.baseline.seconds)
    }

    pub fn day_over_baseline(&self) -> f64 {
        ratio(self.day.seconds, self.baseline.seconds)
    }

    /// (g): from the reconciliation's end to the last webhook, over (e).
    pub fn delivery_over_baseline(&self) -> Option<f64> {
        self.delivery
            .as_ref()
            .map(|d| ratio(d.after_reconcile_seconds, self.baseline.seconds))
    }

    pub fn wal_bytes(&self) -> u64 {
        self.full
            .wal_bytes
            .max(self.unchanged.wal_bytes)
            .max(self.reconcile.wal_bytes)
            .max(self.day.wal_bytes)
    }
}

pub(super) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::INFINITY }
}

/// `VmHWM` of this process in KiB: its peak resident set size.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        line.strip_prefix("VmHWM:")?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// Resets `VmHWM` to the current resident set size (Linux ≥ 4.0).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The simulator child; killed (by its id) when dropped.
struct SimChild {
    child: Child,
    /// Its commands (`--changes-on-stdin`).
    stdin: Option<ChildStdin>,
    /// Its answers; held open so that the child never writes into a closed
    /// pipe.
    stdout: Option<BufReader<ChildStdout>>,
}

impl SimChild {
    /// Has the simulator apply a day of changes; returns when it has.
    async fn a_day_passes(&mut self) -> Result<crate::sim::DayChanges, BenchError> {
        let (Some(mut stdin), Some(mut stdout)) = (self.stdin.take(), self.stdout.take()) else {
            return Err(BenchError::Sim("its pipes are gone".into()));
        };
        let answered = tokio::task::spawn_blocking(move || {
            stdin.write_all(b"day\n")?;
            stdin.flush()?;
            let mut line = String::new();
            loop {
                line.clear();
                if stdout.read_line(&mut line)? == 0 {
                    return Err(std::io::Error::other("it stopped"));
                }
                if let Some(counts) = line.trim_end().strip_prefix("changed: ") {
                    return Ok((stdin, stdout, counts.to_owned()));
                }
            }
        })
        .await
        .map_err(|e| BenchError::Sim(e.to_string()))?
        .map_err(|e| BenchError::Sim(format!("a day of changes: {e}")))?;
        let (stdin, stdout, counts) = answered;
        self.stdin = Some(stdin);
        self.stdout = Some(stdout);
        serde_json::from_str(&counts)
            .map_err(|e| BenchError::Sim(format!("unreadable answer {counts:?}: {e}")))
    }
}

impl Drop for SimChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `liankong sim` for the volumes and waits until it serves.
async fn start_simulator(
    options: &BenchOptions,
    volumes: &Volumes,
    dir: &Path,
) -> Result<(SimChild, Option<Planted>), BenchError> {
    let log_path = dir.join("sim.log");
    let log = std::fs::File::create(&log_path).map_err(io(log_path.display()))?;
    let mut command = Command::new(&options.exe);
    if let Some(config) = &options.config {
        command.arg("--config").arg(config);
    }
    command
        .arg("sim")
        .arg("--dir")
        .arg(dir.join("sim"))
        .args(["--units", &volumes.units.to_string()])
        .args(["--projects", &volumes.projects.to_string()])
        .args(["--audit-findings", &volumes.audit_findings.to_string()])
        .args(["--referrals", &volumes.referrals.to_string()])
        .args(["--as-of", &options.as_of.to_string()])
        .args([
            "--year",
            &chrono::Datelike::year(&options.as_of).to_string(),
        ])
        .arg("--export-csv")
        .arg(dir.join("csv"))
        .arg("--changes-on-stdin")
        .args([
            "--finance-port",
            "0",
            "--npc-port",
            "0",
            "--discipline-port",
            "0",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    if let Some(m) = &options.manifests {
        command.arg("--manifests").arg(m);
    }
    if let Some(share) = options.anomalies {
        command.args(["--anomalies", &share.as_f64().to_string()]);
    }
    let mut child = command
        .spawn()
        .map_err(io(format!("cannot start {}", options.exe.display())))?;
    let stdout = child.stdout.take();
    let mut sim = SimChild {
        stdin: child.stdin.take(),
        child,
        stdout: None,
    };
    let Some(stdout) = stdout else {
        return Err(BenchError::Sim("no stdout".into()));
    };
    let waited = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let mut planted = None;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => return Err(None),
                Ok(_) if line.trim_end() == SIM_READY => return Ok((reader, planted)),
                Ok(_) => {
                    if let Some(counts) = line.trim_end().strip_prefix(SIM_PLANTED) {
                        planted = serde_json::from_str::<Planted>(counts).ok();
                    }
                }
                Err(e) => return Err(Some(e)),
            }
        }
    })
    .await
    .map_err(|e| BenchError::Sim(e.to_string()))?;
    match waited {
        Ok((reader, planted)) => {
            sim.stdout = Some(reader);
            Ok((sim, planted))
        }
        Err(e) => {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Err(BenchError::Sim(format!(
                "stopped before it was ready{}; {}: {}",
                e.map(|e| format!(" ({e})")).unwrap_or_default(),
                log_path.display(),
                tail.join(" | ")
            )))
        }
    }
}

/// Runs every adapter once, concurrently, as `liankong sync` does; fails on
/// the first adapter that failed.
async fn sync_all(
    store: &dyn Store,
    adapters: &[adapter::Adapter],
) -> Result<Vec<SyncReport>, BenchError> {
    let options = SyncOptions::default();
    let reports: Vec<SyncReport> = futures_util::future::join_all(
        adapters
            .iter()
            .map(|a| run_adapter(store, a, &SystemClock, &options)),
    )
    .await;
    if let Some(r) = reports.iter().find(|r| !r.ok()) {
        return Err(BenchError::Sync {
            adapter: r.adapter.clone(),
            error: r.error.clone().unwrap_or_default(),
        });
    }
    Ok(reports)
}

/// How the WAL of the store under test is watched.
enum Wal {
    /// The SQLite store's `-wal` file, whose size is sampled.
    File(PathBuf),
    /// A PostgreSQL server, whose WAL position is read before and after.
    Server(sqlx::PgPool),
}

impl Wal {
    async fn position(&self) -> u64 {
        match self {
            Wal::File(_) => 0,
            Wal::Server(pool) => {
                sqlx::query_scalar::<_, i64>("SELECT CAST(pg_current_wal_lsn() - '0/0' AS BIGINT)")
                    .fetch_one(pool)
                    .await
                    .map_or(0, |p| p.max(0) as u64)
            }
        }
    }
}

/// Samples the size of a file every 100 ms until `stop`; returns the largest.
async fn largest_size(path: &Path, stop: tokio::sync::oneshot::Receiver<()>) -> u64 {
    tokio::pin!(stop);
    let mut largest = 0;
    loop {
        largest = largest.max(std::fs::metadata(path).map_or(0, |m| m.len()));
        tokio::select! {
            _ = &mut stop => return largest,
            () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
        }
    }
}

/// One timed phase: a sync (unless `sync` is false) and a reconciliation.
/// Returns the phase, its sync's reports and the instant its reconciliation
/// ended.
async fn phase(
    ctx: &Context,
    adapters: &[adapter::Adapter],
    as_of: NaiveDate,
    sync: bool,
    wal: &Wal,
) -> Result<(Phase, Vec<SyncReport>, Instant), BenchError> {
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let sampler = match wal {
        Wal::File(path) => {
            let path = path.clone();
            Some(tokio::spawn(
                async move { largest_size(&path, stopped).await },
            ))
        }
        Wal::Server(_) => None,
    };
    let wal_start = wal.position().await;
    let measured = timed_phase(ctx, adapters, as_of, sync).await;
    let wal_end = wal.position().await;
    let _ = stop.send(());
    let largest = match sampler {
        Some(task) => task.await.unwrap_or(0),
        None => wal_end.saturating_sub(wal_start),
    };
    let (mut phase, reports, ended) = measured?;
    phase.wal_bytes = largest;
    Ok((phase, reports, ended))
}

async fn timed_phase(
    ctx: &Context,
    adapters: &[adapter::Adapter],
    as_of: NaiveDate,
    sync: bool,
) -> Result<(Phase, Vec<SyncReport>, Instant), BenchError> {
    reset_peak_rss();
    let started = Instant::now();
    let reports = if sync {
        sync_all(ctx.store.as_ref(), adapters).await?
    } else {
        Vec::new()
    };
    let synced = started.elapsed();
    let sync_peak_kib = peak_rss_kib().unwrap_or(0);
    reset_peak_rss();
    let outcome: EvaluationOutcome = ctx.reconcile(as_of).await?;
    let ended = Instant::now();
    let total = ended - started;
    let (mut fetched, mut written) = (0, 0);
    for r in &reports {
        let (f, o) = r.totals();
        fetched += f;
        written += o.new + o.changed + o.deleted;
    }
    Ok((
        Phase {
            seconds: total.as_secs_f64(),
            sync_seconds: synced.as_secs_f64(),
            reconcile_seconds: (total - synced).as_secs_f64(),
            peak_kib: peak_rss_kib().unwrap_or(0).max(sync_peak_kib),
            sync_peak_kib,
            fetched,
            written,
            findings: outcome.findings,
            alerts_raised: outcome.firing,
            events: outcome.events,
            wal_bytes: 0,
        },
        reports,
        ended,
    ))
}

/// Runs one scale in `options.dir/scale-<scale>`, which must not exist yet.
pub async fn run_scale(
    options: &BenchOptions,
    scale: f64,
    out: &mut dyn Write,
) -> Result<ScaleReport, BenchError> {
    if !(scale.is_finite() && scale > 0.0) {
        return Err(BenchError::Usage(format!(
            "scale {scale} is not a positive number"
        )));
    }
    let volumes = Volumes::at(scale);
    let dir = options.dir.join(format!("scale-{scale}"));
    if dir.exists() {
        return Err(BenchError::Usage(format!(
            "{} already exists: give another --dir",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir).map_err(io(dir.display()))?;
    let dir = std::path::absolute(&dir).map_err(io(dir.display()))?;
    let say = |out: &mut dyn Write, text: String| {
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    };
    say(
        out,
        format!(
            "scale {scale}: {} units, {} projects, {} audit findings, {} referrals, as of {} (in {})",
            volumes.units,
            volumes.projects,
            volumes.audit_findings,
            volumes.referrals,
            options.as_of,
            dir.display()
        ),
    );

    let started = Instant::now();
    let (mut sim, planted) = start_simulator(options, &volumes, &dir).await?;
    let simulator_start_seconds = started.elapsed().as_secs_f64();
    say(
        out,
        format!("  simulator ready in its own process after {simulator_start_seconds:.1} s"),
    );
    if let Some(p) = &planted {
        say(
            out,
            format!(
                "  planted: {} slow projects, {} idle, {} npc mirror and {} approval mismatches",
                p.slow, p.idle, p.mirror, p.approved
            ),
        );
    }

    let mut config_path = dir.join("sim").join("liankong.toml");
    // With anomalies, every agency subscribes with a receiver of its own.
    let receivers = match options.anomalies {
        None => None,
        Some(_) => {
            let receivers = Receivers::start(scale.to_bits()).await?;
            let mut text =
                std::fs::read_to_string(&config_path).map_err(io(config_path.display()))?;
            text.push_str(&receivers.config(&dir.join("webhooks"))?);
            config_path = dir.join("liankong.toml");
            std::fs::write(&config_path, text).map_err(io(config_path.display()))?;
            Some(receivers)
        }
    };
    let config = Config::load(&config_path).map_err(|e| BenchError::Config(e.to_string()))?;
    let subscribers = crate::deliver::subscribers::build_all(&config)
        .map_err(|e| BenchError::Config(e.to_string()))?;
    let adapters = adapter::build_all(&config).map_err(|errors| {
        BenchError::Config(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    // Always the benchmark's own store, whatever LIANKONG_STORE_URL says.
    let db_path = dir.join("sim").join("liankong.db");
    let (url, wal, fresh) = match &options.postgres {
        None => (
            StoreUrl::new(format!("sqlite:{}", db_path.display())),
            Wal::File(PathBuf::from(format!("{}-wal", db_path.display()))),
            None,
        ),
        Some(server) => {
            let fresh = FreshDatabase::create(server, scale).await?;
            let pool = sqlx::PgPool::connect(&fresh.url)
                .await
                .map_err(|e| BenchError::Store(e.into()))?;
            (
                StoreUrl::new(fresh.url.clone()),
                Wal::Server(pool),
                Some(fresh),
            )
        }
    };
    let store = store::open(&url).await?;
    store.migrate().await?;
    let ctx = Context::new(
        store.clone(),
        Arc::new(config),
        Arc::new(subscribers),
        Arc::new(SystemClock),
    );
    let peak_per_phase = reset_peak_rss();

    let (full, reports, reconciled) = phase(&ctx, &adapters, options.as_of, true, &wal).await?;
    let mut streams = Vec::new();
    for r in &reports {
        for s in &r.streams {
            streams.push((s.collection.clone(), s.fetched));
        }
    }
    streams.sort();
    say(
        out,
        format!("  (a) full sync + reconcile   {}", show(&full)),
    );
    // (g) right away, as the daemon's worker would, before anything else
    // takes the machine.
    let delivery = match &receivers {
        None => None,
        Some(receivers) => {
            let d =
                deliver_all(&ctx, receivers, reconciled, full.alerts_raised, full.events).await?;
            say(
                out,
                format!("  (g) delivery of (a)'s alerts {}", show_delivery(&d)),
            );
            Some(d)
        }
    };
    if options.explain {
        let lookback = ctx.config.rules.unspendable.lookback_days;
        let plans = store
            .explain(&crate::store::facts::FactsQuery::new(
                options.as_of,
                lookback,
            ))
            .await?;
        for (name, plan) in plans {
            say(out, format!("  plan of {name} on {}:", store.backend()));
            for line in plan.lines() {
                say(out, format!("    {line}"));
            }
        }
    }
    let (unchanged, _, _) = phase(&ctx, &adapters, options.as_of, true, &wal).await?;
    say(
        out,
        format!("  (b) nothing changed         {}", show(&unchanged)),
    );
    // The rules themselves, not the findings (b) could reuse.
    *ctx.last_findings.lock().await = None;
    let (reconcile, _, _) = phase(&ctx, &adapters, options.as_of, false, &wal).await?;
    say(
        out,
        format!("  (c) reconcile alone         {}", show(&reconcile)),
    );
    let day_changes = sim.a_day_passes().await?;
    let (day, _, _) = phase(&ctx, &adapters, options.as_of, true, &wal).await?;
    say(
        out,
        format!(
            "  (f) a day's changes         {} ({} new payments, {} quotas and {} npc budget lines changed)",
            show(&day),
            day_changes.new_payments,
            day_changes.changed_quotas,
            day_changes.changed_budgets
        ),
    );
    store.close().await;
    if let Wal::Server(pool) = wal {
        pool.close().await;
    }
    if let Some(fresh) = fresh {
        fresh.drop_database().await?;
    }
    drop(sim);
    drop(receivers);

    let baseline = run_baseline(options, &dir).await?;
    say(
        out,
        format!(
            "  (e) sqlite3 shell baseline  {:7.1} s (import {:.1} s, SQL {:.1} s; {} projects with a progress figure, {} mirror and {} approval mismatches)",
            baseline.seconds,
            baseline.import_seconds,
            baseline.query_seconds,
            baseline.progress_rows,
            baseline.mirror_mismatches,
            baseline.approved_mismatches
        ),
    );
    Ok(ScaleReport {
        scale,
        backend: if options.postgres.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
        volumes,
        dir,
        streams,
        simulator_start_seconds,
        full,
        unchanged,
        reconcile,
        day_changes,
        day,
        baseline,
        planted,
        delivery,
        peak_per_phase,
    })
}

/// A database made for one scale on the PostgreSQL server of `--store`.
struct FreshDatabase {
    admin: String,
    name: String,
    url: String,
}

impl FreshDatabase {
    async fn create(server: &str, scale: f64) -> Result<FreshDatabase, BenchError> {
        use sqlx::Connection;
        // Two runs of one process (two tests at once) get two databases.
        static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!(
            "liankong_bench_{}_{run}_{}",
            std::process::id(),
            scale.to_string().replace('.', "_")
        );
        let mut conn = sqlx::PgConnection::connect(server)
            .await
            .map_err(|e| BenchError::Store(e.into()))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .map_err(|e| BenchError::Store(e.into()))?;
        // The same server and parameters, the new database.
        let (scheme, rest) = server.split_once("://").unwrap_or(("postgres", server));
        let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let query = tail
            .split_once('?')
            .map(|(_, q)| format!("?{q}"))
            .unwrap_or_default();
        let url = format!("{scheme}://{authority}/{name}{query}");
        Ok(FreshDatabase {
            admin: server.to_owned(),
            name,
            url,
        })
    }

    async fn drop_database(self) -> Result<(), BenchError> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.admin)
            .await
            .map_err(|e| BenchError::Store(e.into()))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut conn)
        .await
        .map_err(|e| BenchError::Store(e.into()))?;
        Ok(())
    }
}

/// A new directory under the system's temporary directory.
pub fn default_dir() -> PathBuf {
    std::env::temp_dir().join(format!("liankong-bench-{}", std::process::id()))
}
