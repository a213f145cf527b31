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

use crate::config::{Config, LogFormat};
use crate::store::{self, Store};

#[derive(Debug, Parser)]
#[command(
    name = "liankong",
    version,
    about = "Five-party joint supervision of public budgets"
)]
pub struct Cli {
    /// The daemon's config file.
    #[arg(
        long,
        global = true,
        env = "LIANKONG_CONFIG",
        default_value = "config/liankong.toml"
    )]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the store's pending migrations.
    Migrate,
    /// Walk every version chain and check the current records against it;
    /// exit 1 and name the first broken link if anything was altered.
    Verify,
    /// Inspect the store.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Record counts per agency and collection.
    Stats,
}

/// Runs the command line to completion and returns the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    let config = match Config::load(&cli.config) {
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
    match runtime.block_on(run(cli.command, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("liankong: {}", error_chain(&e));
            ExitCode::from(2)
        }
    }
}

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

/// Runs one command.
pub async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    let store = open_store(&config).await?;
    let mut out = std::io::stdout().lock();
    let code = match command {
        Command::Migrate => {
            writeln!(out, "store at {} is up to date", config.store_url())?;
            ExitCode::SUCCESS
        }
        Command::Verify => {
            let report = store.verify().await?;
            if report.is_intact() {
                writeln!(
                    out,
                    "intact: {} chains, {} versions, {} records",
                    report.chains, report.versions, report.records
                )?;
                ExitCode::SUCCESS
            } else {
                writeln!(out, "DAMAGED: the stored history was altered")?;
                for d in &report.damage {
                    writeln!(out, "  {d}")?;
                }
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
                "agency", "collection", "live", "deleted", "versions", "quarantined"
            )?;
            for s in stats {
                writeln!(
                    out,
                    "{:<11}{:<16}{:>10}{:>10}{:>10}{:>13}",
                    s.agency.as_str(),
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
    store.close().await;
    Ok(code)
}
