//! The command line: every verb of the `liankong` binary, as library code so
//! that tests can run it. Output meant for people goes to stdout; logs go to
//! stderr.
//!
//! Exit codes: 0 success, 1 the command ran and found a problem (e.g. `verify`
//! found damage), 2 the command could not run (bad config, store unreachable).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use chrono::NaiveDate;

use crate::adapter::{self, Adapter, SyncOptions, SyncReport, run_adapter};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, LogFormat};
use crate::daemon;
use crate::deliver::subscribers;
use crate::pipeline::Context as Ctx;
use crate::store::{self, Store};

mod act;
mod alerts;
mod bench;
mod check;
mod demo;
mod quarantine;
mod sim;
mod witness;

pub use demo::{DEMO_LISTEN, DemoStore, demo_store};

#[derive(Debug, Parser)]
#[command(
    name = "liankong",
    version,
    about = "Five-party joint supervision of public budgets"
)]
pub struct Cli {
    /// The daemon's config file [default: config/liankong.toml when it
    /// exists, else /etc/liankong/liankong.toml]. demo, sim, token and bench
    /// read none unless one is given, and then only its [log].
    #[arg(long, global = true, env = "LIANKONG_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The whole cycle against the built-in simulator with planted anomalies:
    /// sync, reconcile, signed webhooks to local receivers; about a minute.
    Demo {
        #[command(flatten)]
        sim: sim::SimArgs,
        /// Where to keep the demo's store and config (default: a new
        /// directory under the system's temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Serve the five simulated agency systems on loopback and write a
    /// config that reaches them, until Ctrl-C.
    Sim {
        #[command(flatten)]
        sim: sim::SimArgs,
        /// Where the exchange folders, PKI, secrets and config go.
        #[arg(long, default_value = "sim")]
        dir: PathBuf,
        #[arg(long, default_value_t = 18081)]
        finance_port: u16,
        #[arg(long, default_value_t = 18082)]
        npc_port: u16,
        #[arg(long, default_value_t = 18443)]
        discipline_port: u16,
    },
    /// Time a province-year from the simulator: full sync + reconcile,
    /// again with nothing changed, reconcile alone, peak memory, against
    /// the sqlite3 shell on the same data (README, "Benchmark").
    Bench {
        #[command(flatten)]
        bench: bench::BenchArgs,
    },
    /// Run the daemon: every enabled adapter on its schedule, until SIGTERM
    /// or Ctrl-C.
    Run,
    /// Run adapters once now and print what each stream did.
    Sync {
        /// Only this adapter (as named in the config).
        #[arg(long)]
        adapter: Option<String>,
        /// Ignore stored high-water marks and pull everything again.
        #[arg(long)]
        full: bool,
        /// Apply the deletions that the mass-deletion guard held for this
        /// adapter's snapshots, once, if the snapshot pulled now still
        /// deletes no more than were held.
        #[arg(long, requires = "adapter")]
        accept_deletions: bool,
    },
    /// List the rows adapters could not map, or give up on some.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Validate the config and the manifests without touching the network;
    /// with --connect, also reach each source and say what worked.
    Check {
        #[arg(long)]
        connect: bool,
    },
    /// Sync every enabled adapter, reconcile, deliver what is due, exit;
    /// prints a summary.
    Once {
        /// The day to judge (YYYY-MM-DD); today (China time) by default.
        #[arg(long)]
        as_of: Option<NaiveDate>,
    },
    /// Evaluate the rules over the store and update the alerts and outbox.
    Reconcile {
        /// The day to judge (YYYY-MM-DD); today (China time) by default.
        #[arg(long)]
        as_of: Option<NaiveDate>,
    },
    /// List, show, acknowledge and silence alerts.
    Alerts {
        #[command(subcommand)]
        command: alerts::AlertsCommand,
    },
    /// Take an action as an agency (RULES.md § Actions): warn, freeze,
    /// unfreeze, reclaim, revive or withdraw. Prints `action ID recorded`
    /// first; a refusal exits 1 with its reason and figures.
    Act(act::ActArgs),
    /// List the actions an agency may see.
    Actions {
        #[command(subcommand)]
        command: act::ActionsCommand,
    },
    /// List webhook deliveries and re-drive dead letters.
    Deliveries {
        #[command(subcommand)]
        command: alerts::DeliveriesCommand,
    },
    /// Make an API token for an agency: prints the token (give it to the
    /// agency) and the config lines that keep only its sha-256.
    Token {
        #[arg(long)]
        agency: crate::model::Agency,
        /// Who holds it, for the log.
        #[arg(long)]
        name: String,
    },
    /// The monthly report: per unit the three common indicators beside time
    /// progress, ranks and open alerts, as of the month's last day.
    Report {
        /// YYYY-MM.
        #[arg(long, value_parser = parse_month)]
        month: NaiveDate,
        /// md, csv or html.
        #[arg(long, default_value = "md")]
        format: crate::report::Format,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The checkpoints that witness the history: the signing key's public
    /// half for the agencies to pin, a new key.
    Checkpoint {
        #[command(subcommand)]
        command: witness::CheckpointCommand,
    },
    /// Apply the store's pending migrations.
    Migrate,
    /// Walk every version chain and check the current records against it;
    /// exit 1 and name the first broken link if anything was altered. Also
    /// checks the store against the newest checkpoint it and this machine
    /// kept, and with --checkpoint against the checkpoints in the files.
    Verify {
        /// Files of checkpoints an agency kept (each one checkpoint as
        /// delivered, a JSON array of them, or one per line): exit 1 naming
        /// each stream and checkpoint the store does not extend, or a
        /// checkpoint whose signature does not verify.
        #[arg(long = "checkpoint", value_name = "FILE", num_args = 1..)]
        checkpoints: Vec<PathBuf>,
    },
    /// Inspect the store.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// Quarantined rows, newest first: open ones unless --all.
    List {
        /// Only this stream, e.g. finance.payments.
        #[arg(long, value_parser = parse_stream)]
        stream: Option<crate::model::Collection>,
        /// Resolved and dropped rows too.
        #[arg(long)]
        all: bool,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Show the raw rows and keys of discipline's streams too (hidden by
        /// default: they are confidential).
        #[arg(long)]
        confidential: bool,
    },
    /// Give up on open rows: they stop holding their stream's high-water
    /// mark back, and the next pull no longer asks for them again.
    Drop {
        /// One row, by the id `quarantine list` shows.
        #[arg(conflicts_with = "stream", required_unless_present = "stream")]
        id: Option<i64>,
        /// Every open row of this stream.
        #[arg(long, value_parser = parse_stream)]
        stream: Option<crate::model::Collection>,
    },
}

/// A `--stream` that names no stream.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a stream like finance.payments")]
struct NotAStream(String);

fn parse_stream(s: &str) -> Result<crate::model::Collection, NotAStream> {
    s.split_once('.')
        .and_then(|(agency, name)| {
            crate::model::Collection::parse(crate::model::Agency::parse(agency)?, name)
        })
        .ok_or_else(|| NotAStream(s.to_owned()))
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Record counts per agency and collection.
    Stats,
}

impl Command {
    /// Whether the command works on the deployment the config describes.
    /// The others (the simulator, the demo, the benchmark, making a token)
    /// run anywhere the binary is, with no config file at all.
    fn needs_config(&self) -> bool {
        !matches!(
            self,
            Command::Demo { .. }
                | Command::Sim { .. }
                | Command::Bench { .. }
                | Command::Token { .. }
        ) && !matches!(self, Command::Checkpoint { command } if !command.needs_config())
    }
}

/// The config a command runs with, and the file it came from.
fn load_config(cli: &Cli) -> Result<(Config, Option<PathBuf>), crate::config::ConfigError> {
    if !cli.command.needs_config() && cli.config.is_none() {
        return Ok((Config::default(), None));
    }
    let path = crate::config::locate(cli.config.as_deref(), &crate::config::DEFAULT_PATHS)?;
    Ok((Config::load(&path)?, Some(path)))
}

/// A `--month` that is not a month.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a month like 2021-09")]
struct NotAMonth(String);

fn parse_month(s: &str) -> Result<NaiveDate, NotAMonth> {
    NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").map_err(|_| NotAMonth(s.to_owned()))
}

/// Runs the command line to completion and returns the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    let (config, config_path) = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("liankong: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("liankong: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = match runtime.block_on(run(cli.command, config, config_path.as_deref())) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("liankong: {}", error_chain(&e));
            ExitCode::from(2)
        }
    };
    // Whatever is still running (a run abandoned at the shutdown deadline,
    // a file reader on a blocking thread) is not waited for without end:
    // its transaction rolls back when the process exits.
    runtime.shutdown_timeout(EXIT_GRACE);
    code
}

/// How long the process waits, once its command is done, for the store's
/// connections to close and for work still running to stop.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// An error and its causes on one line, skipping a cause whose text its
/// parent already includes (sqlx and migrate errors repeat their source).
fn error_chain(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match config.log.format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests calling `main` twice) is harmless.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Opens the configured store and brings its schema up to date.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.store_url();
    let store = store::open(&url)
        .await
        .with_context(|| format!("cannot open the store at {url}"))?;
    store
        .migrate()
        .await
        .with_context(|| format!("cannot migrate the store at {url}"))?;
    Ok(store)
}

/// Builds the configured adapters, or says everything that is wrong.
fn adapters(config: &Config) -> anyhow::Result<Vec<Adapter>> {
    adapter::build_all(config).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        anyhow::anyhow!("the config has adapter errors:\n{}", lines.join("\n"))
    })
}

/// Runs one command with the config read from `config_path` (`None` for the
/// commands that need none and were given none).
pub async fn run(
    command: Command,
    config: Config,
    config_path: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Check { connect } => return check::check(&config, connect).await,
        Command::Token { agency, name } => {
            let token = format!("lk_{}", crate::console::session::random_token()?);
            writeln!(
                out,
                "token (give it to {name} of {agency}; it is not stored anywhere):\n  {token}\n"
            )?;
            writeln!(
                out,
                "add to the config:\n[[api.tokens]]\nname = {name:?}\nagency = \"{agency}\"\nsha256 = \"{}\"",
                crate::api::token_hash(&token)
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Checkpoint { command } if !command.needs_store() => {
            return witness::checkpoint(&mut out, &config, None, command).await;
        }
        Command::Demo { sim, dir } => return demo::demo(&mut out, sim, dir).await,
        Command::Bench { bench } => return bench::bench(&mut out, bench, config_path).await,
        Command::Sim {
            sim,
            dir,
            finance_port,
            npc_port,
            discipline_port,
        } => {
            return sim::sim(
                &mut out,
                sim,
                dir,
                (finance_port, npc_port, discipline_port),
            )
            .await;
        }
        _ => {}
    }
    drop(out);
    let config_path = config_path.context("this command needs a config file")?;
    // What `check` refuses stops these before they open the store.
    if matches!(command, Command::Once { .. } | Command::Run) {
        check::refuse(&check::config_problems(&config).2)?;
    }
    // The daemon's address is taken before the store is opened: one in use
    // stops the start before anything is migrated.
    let api = match &command {
        Command::Run if config.api.enabled => Some(
            crate::api::bind(&config)
                .await
                .with_context(|| format!("cannot listen on {}", config.api.listen))?,
        ),
        _ => None,
    };
    let store = open_store(&config).await?;
    // A store restored from an older backup is not run on until an
    // operator accepts it.
    if matches!(command, Command::Once { .. } | Command::Run)
        && let Some(w) = crate::witness::Witness::load(&config.witness)?
        && let Err(e) = crate::witness::state::check_at_start(store.as_ref(), &w).await
    {
        store.close().await;
        return Err(e.into());
    }
    let code = run_with_store(command, &config, config_path, store.clone(), api).await;
    // Closing waits for every connection to come back; one held by work
    // abandoned at the shutdown deadline must not keep the process alive.
    if tokio::time::timeout(EXIT_GRACE, store.close())
        .await
        .is_err()
    {
        tracing::warn!("the store's connections did not close in time; leaving them to the exit");
    }
    code
}

/// Prints the reports of adapter runs as a table.
pub fn print_reports(out: &mut dyn Write, reports: &[SyncReport]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<12}{:<26}{:>9}{:>8}{:>8}{:>10}{:>8}{:>12}  status",
        "adapter", "stream", "fetched", "new", "changed", "unchanged", "deleted", "quarantined"
    )?;
    for r in reports {
        if r.skipped {
            writeln!(
                out,
                "{:<12}{:<26}{:>65}  skipped: another replica holds the lease",
                r.adapter, "-", ""
            )?;
            continue;
        }
        if let Some(e) = &r.error {
            writeln!(out, "{:<12}{:<26}{:>65}  FAILED: {e}", r.adapter, "-", "")?;
            continue;
        }
        for s in &r.streams {
            let o = s.outcome;
            writeln!(
                out,
                "{:<12}{:<26}{:>9}{:>8}{:>8}{:>10}{:>8}{:>12}  {}",
                r.adapter,
                s.collection,
                s.fetched,
                o.new,
                o.changed,
                o.unchanged,
                o.deleted,
                o.quarantined,
                s.status(&r.adapter)
            )?;
        }
    }
    for r in reports.iter().filter(|r| r.held()) {
        for s in r.streams.iter().filter(|s| s.held.is_some()) {
            writeln!(
                out,
                "\n{}: deletions HELD. Its new and changed records landed, but the snapshot would \
                 delete {} of its {} live records, more than the guard allows \
                 (adapters.{}.max_delete_share and max_delete_min). Look at the source first; \
                 if it really deleted them, apply the deletions once with:\n  \
                 liankong sync --adapter {} --accept-deletions",
                s.collection,
                s.held.map_or(0, |h| h.deletions),
                s.held.map_or(0, |h| h.live),
                r.adapter,
                r.adapter
            )?;
        }
    }
    Ok(())
}

/// A run's exit code: 1 when an adapter failed or a snapshot's deletions
/// were held for an operator, 0 otherwise.
fn sync_exit_code(reports: &[SyncReport]) -> ExitCode {
    if reports.iter().all(|r| r.ok() && !r.held()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Runs the adapters once, concurrently (on SQLite their writes queue).
pub async fn sync_once(
    store: &dyn Store,
    adapters: &[Adapter],
    clock: &dyn Clock,
    options: &SyncOptions,
) -> Vec<SyncReport> {
    futures_util::future::join_all(
        adapters
            .iter()
            .map(|a| run_adapter(store, a, clock, options)),
    )
    .await
}

/// The stages' context for a command.
fn context(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<Ctx> {
    let subscribers = subscribers::build_all(config)?;
    let witness = crate::witness::Witness::load(&config.witness)?.map(Arc::new);
    Ok(Ctx::new(
        store,
        Arc::new(config.clone()),
        Arc::new(subscribers),
        Arc::new(SystemClock),
    )
    .with_witness(witness))
}

/// Prints what an evaluation changed.
fn print_outcome(
    out: &mut dyn Write,
    as_of: NaiveDate,
    o: &crate::alert::EvaluationOutcome,
) -> std::io::Result<()> {
    writeln!(
        out,
        "reconciled as of {as_of}: {} findings; {} firing, {} escalated, {} resolved, {} reminders, {} silenced; {} events queued",
        o.findings, o.firing, o.escalated, o.resolved, o.reminders, o.silenced, o.events
    )
}

/// Delivers due events round after round until nothing is due now.
pub async fn deliver_now(ctx: &Ctx) -> anyhow::Result<crate::deliver::DeliveryStats> {
    let deliverer = ctx.deliverer()?;
    let mut total = crate::deliver::DeliveryStats::default();
    loop {
        let round = deliverer
            .deliver_due(ctx.store.as_ref(), ctx.clock.as_ref())
            .await?;
        total += round;
        if round.attempted == 0 || round.delivered == 0 {
            return Ok(total);
        }
    }
}

async fn run_with_store(
    command: Command,
    config: &Config,
    config_path: &std::path::Path,
    store: Arc<dyn Store>,
    api: Option<tokio::net::TcpListener>,
) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let code = match command {
        Command::Checkpoint { command } => {
            witness::checkpoint(&mut out, config, Some(store.as_ref()), command).await?
        }
        Command::Check { .. }
        | Command::Demo { .. }
        | Command::Sim { .. }
        | Command::Bench { .. }
        | Command::Token { .. } => ExitCode::SUCCESS,
        Command::Alerts { command } => {
            alerts::alerts(&mut out, store.as_ref(), &SystemClock, command).await?
        }
        Command::Deliveries { command } => {
            alerts::deliveries(&mut out, store.as_ref(), &SystemClock, command).await?
        }
        Command::Act(args) => {
            let subscribers = subscribers::build_all(config)?;
            act::act(&mut out, store.as_ref(), &subscribers, &SystemClock, args).await?
        }
        Command::Actions { command } => act::actions(&mut out, store.as_ref(), command).await?,
        Command::Report {
            month,
            format,
            out: file,
        } => {
            let report = crate::report::build(store.as_ref(), month).await?;
            let text = crate::report::render(&report, format);
            match file {
                Some(path) => {
                    std::fs::write(&path, text)?;
                    writeln!(
                        out,
                        "report for {} written to {}",
                        report.as_of,
                        path.display()
                    )?;
                }
                None => out.write_all(text.as_bytes())?,
            }
            ExitCode::SUCCESS
        }
        Command::Reconcile { as_of } => {
            let ctx = context(config, store.clone())?;
            let as_of = as_of.unwrap_or_else(|| ctx.today());
            let outcome = ctx.reconcile(as_of).await?;
            print_outcome(&mut out, as_of, &outcome)?;
            ExitCode::SUCCESS
        }
        Command::Once { as_of } => {
            let ctx = context(config, store.clone())?;
            let as_of = as_of.unwrap_or_else(|| ctx.today());
            let adapters = adapters(config)?;
            let reports = sync_once(
                store.as_ref(),
                &adapters,
                &SystemClock,
                &SyncOptions::default(),
            )
            .await;
            print_reports(&mut out, &reports)?;
            let outcome = ctx.reconcile(as_of).await?;
            writeln!(out)?;
            print_outcome(&mut out, as_of, &outcome)?;
            alerts::print_alert_summary(&mut out, store.as_ref()).await?;
            // A checkpoint that cannot be signed holds no alert back.
            let witnessed = match ctx.checkpoint().await {
                Ok(issued) => {
                    witness::print_issued(&mut out, issued)?;
                    true
                }
                Err(e) => {
                    writeln!(out, "\ncheckpoint: FAILED: {e}")?;
                    false
                }
            };
            let sent = deliver_now(&ctx).await?;
            let counts = store.outbox_counts().await?;
            writeln!(
                out,
                "\ndeliveries: {} sent now; outbox {} delivered, {} pending ({} retrying), {} dead",
                sent.delivered, counts.delivered, counts.pending, counts.retrying, counts.dead
            )?;
            if witnessed {
                sync_exit_code(&reports)
            } else {
                ExitCode::from(1)
            }
        }
        Command::Run => {
            daemon::run_daemon(
                config_path.to_owned(),
                config.clone(),
                store.clone(),
                api,
                daemon::SHUTDOWN_DEADLINE,
            )
            .await?;
            ExitCode::SUCCESS
        }
        Command::Sync {
            adapter,
            full,
            accept_deletions,
        } => {
            let mut adapters = adapters(config)?;
            if let Some(name) = &adapter {
                adapters.retain(|a| &a.name == name);
                if adapters.is_empty() {
                    match config.adapters.get(name) {
                        Some(_) => anyhow::bail!("adapter {name:?} is disabled in the config"),
                        None => anyhow::bail!("no adapter named {name:?} in the config"),
                    }
                }
            }
            let options = SyncOptions {
                full,
                accept_deletions,
                ..Default::default()
            };
            let reports = sync_once(store.as_ref(), &adapters, &SystemClock, &options).await;
            print_reports(&mut out, &reports)?;
            sync_exit_code(&reports)
        }
        Command::Quarantine { command } => {
            quarantine::quarantine(&mut out, store.as_ref(), command).await?
        }
        Command::Migrate => {
            writeln!(out, "store at {} is up to date", config.store_url())?;
            ExitCode::SUCCESS
        }
        Command::Verify { checkpoints } => {
            let report = store.verify().await?;
            let intact = if report.is_intact() {
                writeln!(
                    out,
                    "intact: {} chains, {} versions, {} records",
                    report.chains, report.versions, report.records
                )?;
                true
            } else {
                writeln!(out, "DAMAGED: the stored history was altered")?;
                for d in &report.damage {
                    writeln!(out, "  {d}")?;
                }
                false
            };
            let witnessed =
                witness::verify_witnessed(&mut out, store.as_ref(), config, &checkpoints).await?;
            if intact && witnessed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Store {
            command: StoreCommand::Stats,
        } => {
            let stats = store.stats().await?;
            writeln!(
                out,
                "{:<11}{:<16}{:>10}{:>10}{:>10}{:>13}",
                "source", "collection", "live", "deleted", "versions", "quarantined"
            )?;
            for s in stats {
                writeln!(
                    out,
                    "{:<11}{:<16}{:>10}{:>10}{:>10}{:>13}",
                    s.source.as_str(),
                    s.collection,
                    s.live,
                    s.deleted,
                    s.versions,
                    s.quarantined
                )?;
            }
            ExitCode::SUCCESS
        }
    };
    Ok(code)
}
