//! `liankong bench`: the rerunnable benchmark of `README.md` ("Benchmark").
//! The work is in [`crate::bench`]; this only reads the arguments, runs the
//! scales one after the other and prints the summary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::Args;

use crate::bench::{BenchOptions, default_dir, print_summary, run_scale};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Size of the province-year: 1 is 10,000 units, 100,000 projects
    /// (about 2,000,000 payments and 1,100,000 npc execution rows), 20,000
    /// audit findings and 2,000 referrals. Several, comma-separated
    /// (`1,4`), run one after the other and compare their memory.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub scale: Vec<f64>,
    /// Where the stores, exchange files and CSV files go, one directory per
    /// scale (default: a new directory under the system's temporary
    /// directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the directory afterwards (it is removed otherwise).
    #[arg(long)]
    pub keep: bool,
    /// The sqlite3 shell of the baseline.
    #[arg(long, default_value = "sqlite3")]
    pub sqlite3: PathBuf,
    /// Runs against PostgreSQL instead of a SQLite file: the URL of a
    /// server database whose user may create databases
    /// (`postgres://postgres@127.0.0.1/postgres`). Each scale gets a fresh
    /// database, dropped afterwards; the baseline stays the sqlite3 shell.
    #[arg(long)]
    pub store: Option<String>,
    /// The simulated today and the reconciliation date.
    #[arg(long, default_value = "2021-12-31")]
    pub as_of: NaiveDate,
    /// Also print each rule query's plan on the backend it runs on, right
    /// after the first load (`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on
    /// PostgreSQL).
    #[arg(long)]
    pub explain: bool,
    /// Plants anomalies at province rates (this share of the projects
    /// executing slowly, a fifth of it idle, a twentieth of it npc mismatches,
    /// e.g. 0.05) and adds phase (g): every event of the alerts (a) raised,
    /// delivered to a local receiver per agency.
    #[arg(long, value_parser = super::sim::parse_share)]
    pub anomalies: Option<crate::sim::AnomalyShare>,
}

/// Runs the benchmark; exit 0 when every scale ran, whatever the figures.
pub async fn bench(
    out: &mut dyn Write,
    args: BenchArgs,
    config_path: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe()?;
    let dir = args.dir.clone().unwrap_or_else(default_dir);
    let options = BenchOptions {
        dir: dir.clone(),
        exe,
        config: config_path.map(std::path::absolute).transpose()?,
        sqlite3: args.sqlite3.clone(),
        as_of: args.as_of,
        manifests: None,
        postgres: args.store.clone(),
        explain: args.explain,
        anomalies: args.anomalies,
    };
    writeln!(
        out,
        "liankong bench: scale {} as of {}{}, in {}",
        args.scale
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        args.as_of,
        args.anomalies
            .map(|s| format!(", anomalies {}", s.as_f64()))
            .unwrap_or_default(),
        dir.display()
    )?;
    // Only what the benchmark made is removed afterwards.
    let made_dir = !dir.exists();
    let mut reports = Vec::new();
    let mut failed = None;
    // Ctrl-C or SIGTERM ends the run in hand: it is dropped, and with it the
    // simulator's process, which is killed rather than left serving.
    let stop = interrupted();
    tokio::pin!(stop);
    let mut stopped = false;
    for &scale in &args.scale {
        let outcome = tokio::select! {
            r = run_scale(&options, scale, out) => Some(r),
            () = &mut stop => None,
        };
        match outcome {
            Some(Ok(r)) => reports.push(r),
            Some(Err(e)) => {
                failed = Some(e);
                break;
            }
            None => {
                stopped = true;
                break;
            }
        }
    }
    if stopped {
        if made_dir && !args.keep {
            std::fs::remove_dir_all(&dir)?;
        }
        anyhow::bail!("interrupted: the simulator is stopped and no figure is printed");
    }
    print_summary(out, &reports)?;
    if args.keep {
        writeln!(out, "\nkept {}", dir.display())?;
    } else {
        for r in &reports {
            std::fs::remove_dir_all(&r.dir)?;
        }
        if made_dir && failed.is_none() {
            std::fs::remove_dir_all(&dir)?;
        }
    }
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn interrupted() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match terminate.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
