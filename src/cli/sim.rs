//! `liankong sim` (the simulated agency systems, for trying a config) and
//! `liankong demo` (the whole cycle against them, in a minute).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::Args;

use crate::demo::{SimConfigOptions, plant_anomalies, sim_config, write_manifests};
use crate::sim::{AnomalyShare, GenParams, SimOptions, Simulator};

/// What to simulate.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Seed of the generated budget year.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    #[arg(long, default_value_t = 12)]
    pub units: usize,
    #[arg(long, default_value_t = 60)]
    pub projects: usize,
    #[arg(long, default_value_t = 2021)]
    pub year: i32,
    /// The simulated today (default: 30 September of --year).
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// Plant one anomaly per rule into the generated data.
    #[arg(long)]
    pub plant: bool,
    /// The manifests to point the generated config at.
    #[arg(long)]
    pub manifests: Option<PathBuf>,
    /// Exactly this many audit findings (default: one or two for an eighth
    /// of the units).
    #[arg(long)]
    pub audit_findings: Option<usize>,
    /// Exactly this many discipline referrals (default: about 1.5% of the
    /// projects).
    #[arg(long)]
    pub referrals: Option<usize>,
    /// Plants anomalies at province rates, chosen from the seed: this share
    /// of the projects executing slowly, a fifth of it idle, and a
    /// twentieth of it (at least one) npc-versus-finance mismatches (see
    /// `GenParams::anomalies`). Default: the clean year.
    #[arg(long, value_parser = parse_share)]
    pub anomalies: Option<AnomalyShare>,
    /// Also write projects, quotas, payments and the npc budgets and
    /// execution as CSV into this directory (`liankong bench` imports them
    /// into the sqlite3 shell).
    #[arg(long)]
    pub export_csv: Option<PathBuf>,
    /// Reads commands from standard input while serving: `day` applies a
    /// day of changes (1% new payments, 0.1% of quotas and npc budget lines
    /// changed) and answers with one line, `changed: ` and their counts as
    /// JSON (`liankong bench`'s phase (f)).
    #[arg(long)]
    pub changes_on_stdin: bool,
}

impl SimArgs {
    pub(super) fn params(&self) -> GenParams {
        GenParams {
            seed: self.seed,
            units: self.units,
            projects: self.projects,
            year: self.year,
            as_of: self
                .as_of
                .or_else(|| NaiveDate::from_ymd_opt(self.year, 9, 30))
                .unwrap_or_default(),
            audit_findings: self.audit_findings,
            referrals: self.referrals,
            anomalies: self.anomalies,
        }
    }

    /// `--manifests`, else `adapters/` in the working directory when it
    /// holds them (a checkout, whose manifests may be being edited), else
    /// the copies built into this binary, written to `dir/adapters`: an
    /// installed binary has no checkout beside it.
    fn manifests(&self, dir: &Path) -> std::io::Result<PathBuf> {
        if let Some(given) = &self.manifests {
            return Ok(given.clone());
        }
        let local = PathBuf::from("adapters");
        if local.join("finance.toml").is_file() {
            return Ok(local);
        }
        write_manifests(&dir.join("adapters"))
    }
}

pub(super) async fn start_sim(
    args: &SimArgs,
    dir: &Path,
    ports: (u16, u16, u16),
) -> anyhow::Result<Simulator> {
    let mut options = SimOptions::new(args.params(), dir.join("sim"));
    (
        options.finance_port,
        options.npc_port,
        options.discipline_port,
    ) = ports;
    let sim = Simulator::start(options).await?;
    if args.plant {
        plant_anomalies(sim.data());
    }
    sim.write_files()?;
    Ok(sim)
}

pub(super) fn write_config(
    sim: &Simulator,
    args: &SimArgs,
    dir: &Path,
    extra: &str,
) -> anyhow::Result<(PathBuf, String)> {
    let store = format!("sqlite:{}", dir.join("liankong.db").display());
    let mut text = sim_config(
        sim,
        &SimConfigOptions {
            store_url: store,
            manifests: std::path::absolute(args.manifests(dir)?)?,
            quick_retries: false,
        },
    )?;
    text.push_str(extra);
    let path = dir.join("liankong.toml");
    std::fs::write(&path, &text)?;
    Ok((path, text))
}

/// A share of the projects: a number above 0 and at most 1.
pub(crate) fn parse_share(s: &str) -> Result<AnomalyShare, String> {
    s.parse::<f64>()
        .ok()
        .and_then(AnomalyShare::new)
        .ok_or_else(|| format!("{s:?} is not a share above 0 and at most 1 (0.05 is 5%)"))
}

/// `liankong sim`: serves until Ctrl-C.
pub async fn sim(
    out: &mut dyn Write,
    args: SimArgs,
    dir: PathBuf,
    ports: (u16, u16, u16),
) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&dir)?;
    let dir = std::path::absolute(&dir)?;
    let sim = start_sim(&args, &dir, ports).await?;
    let (config, _) = write_config(&sim, &args, &dir, "")?;
    if let Some(csv) = &args.export_csv {
        let counts = crate::bench::export_csv(&sim.data().read(), csv)?;
        let counts: Vec<String> = counts.iter().map(|(f, n)| format!("{f} {n}")).collect();
        writeln!(out, "CSV in {}: {}", csv.display(), counts.join(", "))?;
    }
    writeln!(
        out,
        "simulating {} units, {} projects, {} as of {}",
        args.units,
        args.projects,
        args.year,
        args.params().as_of
    )?;
    writeln!(out, "  finance     {}  (OAuth2)", sim.finance_url())?;
    writeln!(out, "  npc         {}  (X-Api-Key)", sim.npc_url())?;
    writeln!(
        out,
        "  discipline  {}  (mutual TLS, CA in {})",
        sim.discipline_url(),
        sim.pki_dir().display()
    )?;
    writeln!(out, "  audit       {}", sim.audit_dir().display())?;
    writeln!(out, "  orgdept     {}", sim.orgdept_dir().display())?;
    if args.anomalies.is_some() {
        let planted = sim.data().read().dataset().planted;
        writeln!(
            out,
            "{}{}",
            crate::bench::SIM_PLANTED,
            serde_json::to_string(&planted)?
        )?;
    }
    writeln!(out, "a config that reaches all five: {}", config.display())?;
    writeln!(
        out,
        "  liankong --config {} once --as-of {}",
        config.display(),
        args.params().as_of
    )?;
    writeln!(out, "Ctrl-C stops the simulator.")?;
    out.flush()?;
    if args.changes_on_stdin {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                line = lines.next_line() => match line?.as_deref().map(str::trim) {
                    None => break,
                    Some("day") => {
                        let c = sim.data().edit(crate::sim::a_days_changes);
                        writeln!(out, "changed: {}", serde_json::to_string(&c)?)?;
                        out.flush()?;
                    }
                    Some(other) => anyhow::bail!("unknown simulator command {other:?} (day)"),
                },
            }
        }
    } else {
        let _ = tokio::signal::ctrl_c().await;
    }
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
