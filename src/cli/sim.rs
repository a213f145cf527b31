//! `liankong sim` (the simulated agency systems, for trying a config) and
//! `liankong demo` (the whole cycle against them, in a minute).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use clap::Args;

use crate::adapter::SyncOptions;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::deliver::Subscriber;
use crate::demo::{SimConfigOptions, plant_anomalies, sim_config, write_manifests};
use crate::model::Agency;
use crate::pipeline::Context;
use crate::sim::{GenParams, SimOptions, Simulator};

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
    /// Also write projects, quotas, payments and the npc budgets and
    /// execution as CSV into this directory (`liankong bench` imports them
    /// into the sqlite3 shell).
    #[arg(long)]
    pub export_csv: Option<PathBuf>,
}

impl SimArgs {
    fn params(&self) -> GenParams {
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

async fn start_sim(
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

fn write_config(
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
    writeln!(out, "a config that reaches all five: {}", config.display())?;
    writeln!(
        out,
        "  liankong --config {} once --as-of {}",
        config.display(),
        args.params().as_of
    )?;
    writeln!(out, "Ctrl-C stops the simulator.")?;
    out.flush()?;
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Counts what one demo receiver got and whether it verified.
#[derive(Default)]
struct Inbox {
    by_type: BTreeMap<String, u64>,
    bad_signatures: u64,
}

/// A webhook receiver per agency on loopback, verifying each signature.
async fn receivers(
    key: &[u8],
) -> anyhow::Result<(Vec<Subscriber>, BTreeMap<Agency, Arc<Mutex<Inbox>>>)> {
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    type Shared = (Arc<Mutex<Inbox>>, Vec<u8>);
    async fn hook(
        State((inbox, key)): State<Shared>,
        headers: HeaderMap,
        body: String,
    ) -> StatusCode {
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let ts = h("webhook-timestamp").parse::<i64>().unwrap_or_default();
        let expected = crate::deliver::signature::sign(&[key], &h("webhook-id"), ts, &body);
        let mut inbox = inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if h("webhook-signature") != expected {
            inbox.bad_signatures += 1;
            return StatusCode::UNAUTHORIZED;
        }
        let kind = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|b| b["type"].as_str().map(str::to_owned))
            .unwrap_or_default();
        *inbox.by_type.entry(kind).or_default() += 1;
        StatusCode::NO_CONTENT
    }
    let mut subscribers = Vec::new();
    let mut inboxes = BTreeMap::new();
    for agency in Agency::ALL {
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state((inbox.clone(), key.to_vec()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        subscribers.push(Subscriber::with_keys(
            &format!("{agency}_demo"),
            agency,
            &url,
            vec![key.to_vec()],
        ));
        inboxes.insert(agency, inbox);
    }
    Ok((subscribers, inboxes))
}

/// `liankong demo`: the simulator, one full cycle into a fresh SQLite store,
/// local webhook receivers, and what an operator would look at.
pub async fn demo(
    out: &mut dyn Write,
    mut args: SimArgs,
    dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    args.plant = true;
    let dir = match dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("liankong-demo-{}", std::process::id())),
    };
    if dir.join("liankong.db").exists() {
        anyhow::bail!("{} already holds a demo; give another --dir", dir.display());
    }
    std::fs::create_dir_all(&dir)?;
    let dir = std::path::absolute(&dir)?;
    let as_of = args.params().as_of;
    writeln!(out, "liankong demo in {}\n", dir.display())?;

    let sim = start_sim(&args, &dir, (0, 0, 0)).await?;
    let key = b"liankong-demo-webhook-key".to_vec();
    let (subscribers, inboxes) = receivers(&key).await?;
    let (config_path, text) = write_config(&sim, &args, &dir, "")?;
    let config = Config::parse(&text).map_err(|e| anyhow::anyhow!(e))?;
    let store = super::open_store(&config).await?;
    let ctx = Context::new(
        store.clone(),
        Arc::new(config.clone()),
        Arc::new(subscribers),
        Arc::new(SystemClock),
    );

    writeln!(
        out,
        "1. sync: the five agency systems into {}",
        config.store_url()
    )?;
    let adapters = super::adapters(&config)?;
    let reports = super::sync_once(
        store.as_ref(),
        &adapters,
        &SystemClock,
        &SyncOptions::default(),
    )
    .await;
    super::print_reports(out, &reports)?;

    writeln!(out, "\n2. reconcile as of {as_of}")?;
    let outcome = ctx.reconcile(as_of).await?;
    super::print_outcome(out, as_of, &outcome)?;
    super::alerts::print_alert_summary(out, store.as_ref()).await?;

    writeln!(
        out,
        "\n3. deliver: signed webhooks to a local receiver per agency"
    )?;
    let sent = super::deliver_now(&ctx).await?;
    for (agency, inbox) in &inboxes {
        let inbox = inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let kinds: Vec<String> = inbox
            .by_type
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        writeln!(
            out,
            "  {agency:<11}{} (signatures verified{})",
            if kinds.is_empty() {
                "nothing".to_owned()
            } else {
                kinds.join(", ")
            },
            if inbox.bad_signatures > 0 {
                format!("; {} FAILED", inbox.bad_signatures)
            } else {
                String::new()
            }
        )?;
    }
    let counts = store.outbox_counts().await?;
    writeln!(
        out,
        "  {} delivered now; {} pending, {} dead",
        sent.delivered, counts.pending, counts.dead
    )?;

    let report = store.verify().await?;
    writeln!(
        out,
        "\n4. verify: {} ({} chains, {} versions, {} records)",
        if report.is_intact() {
            "intact"
        } else {
            "DAMAGED"
        },
        report.chains,
        report.versions,
        report.records
    )?;
    let monthly = crate::report::build(store.as_ref(), as_of).await?;
    let report_path = dir.join(format!("report-{}.html", as_of.format("%Y-%m")));
    std::fs::write(
        &report_path,
        crate::report::render(&monthly, crate::report::Format::Html),
    )?;
    writeln!(
        out,
        "\n5. report: {} units ranked by execution progress, written to {}",
        monthly.units.len(),
        report_path.display()
    )?;
    writeln!(
        out,
        "\nthe store and its config stay in {}; for example:",
        dir.display()
    )?;
    writeln!(
        out,
        "  liankong --config {} report --month {} --format md",
        config_path.display(),
        as_of.format("%Y-%m")
    )?;
    writeln!(
        out,
        "  liankong --config {} alerts list --agency finance",
        config_path.display()
    )?;
    writeln!(
        out,
        "  liankong --config {} store stats",
        config_path.display()
    )?;
    store.close().await;
    sim.shutdown().await;
    let ok = reports.iter().all(|r| r.ok())
        && report.is_intact()
        && counts.pending == 0
        && counts.dead == 0;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
