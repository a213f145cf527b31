//! `liankong demo`: the whole cycle on the built-in simulator with one
//! anomaly planted per rule, and the demo's store for the console's tests
//! ([`demo_store`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use crate::adapter::SyncOptions;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::deliver::Subscriber;
use crate::model::Agency;
use crate::pipeline::Context;
use crate::sim::Simulator;

use super::sim::{SimArgs, start_sim, write_config};

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

/// The demo's store as steps 1 to 3 leave it (synced, reconciled, acted on),
/// with the simulator still serving and the config that reaches it.
struct Built {
    sim: Simulator,
    config_path: PathBuf,
    store: Arc<dyn crate::store::Store>,
    ctx: Context,
    reports: Vec<crate::adapter::SyncReport>,
}

/// Steps 1 to 3 of the demo into `dir`: the simulator with the planted
/// anomalies (and whatever `extra` adds to its data), one sync, a
/// reconciliation as of the simulated day, and the demo's actions.
async fn build(
    out: &mut dyn Write,
    args: &SimArgs,
    dir: &Path,
    subscribers: Vec<Subscriber>,
    extra: &dyn Fn(&crate::sim::SimDataHandle),
) -> anyhow::Result<Built> {
    let as_of = args.params().as_of;
    let sim = start_sim(args, dir, (0, 0, 0)).await?;
    extra(sim.data());
    sim.write_files()?;
    // The demo's own checkpoint key; its public half beside it, as the
    // agencies would pin it.
    let key_path = dir.join("checkpoint-key.pem");
    super::witness::write_private(&key_path, &crate::witness::SigningKey::generate_pem()?)?;
    let witness_section = format!(
        "\n[witness]\nkey = \"file:{}\"\ncheckpoint_interval_secs = 0\nstate_file = \"{}\"\n",
        key_path.display(),
        dir.join("last-checkpoint.json").display()
    );
    let (config_path, text) = write_config(&sim, args, dir, &witness_section)?;
    let config = Config::parse(&text).map_err(|e| anyhow::anyhow!(e))?;
    let witness = crate::witness::Witness::load(&config.witness)?;
    let public_path = dir.join("checkpoint-public.pem");
    if let Some(w) = &witness {
        std::fs::write(&public_path, w.key.public().pem())?;
    }
    let store = super::open_store(&config).await?;
    let ctx = Context::new(
        store.clone(),
        Arc::new(config.clone()),
        Arc::new(subscribers),
        Arc::new(SystemClock),
    )
    .with_witness(witness.map(Arc::new));

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
        "\n3. act: one of each action on the planted alerts, then finance's data catches up"
    )?;
    demo_actions(out, &ctx, &sim, &adapters, as_of).await?;
    Ok(Built {
        sim,
        config_path,
        store,
        ctx,
        reports,
    })
}

/// The demo's store, built and closed, for the console's tests and anyone
/// who wants one without the rest of the demo.
#[derive(Debug, Clone)]
pub struct DemoStore {
    /// The directory the demo wrote to.
    pub dir: PathBuf,
    /// `sqlite:…` of its store.
    pub store_url: String,
    /// A config that serves the API and the console on the store and
    /// pulls nothing (the simulator is gone): `liankong --config … run`.
    pub console_config: PathBuf,
    /// A token for each agency, as `console_config` knows them.
    pub tokens: BTreeMap<Agency, String>,
}

/// The address the demo's console config listens on.
pub const DEMO_LISTEN: &str = "127.0.0.1:8470";

/// Writes the demo's console config: the demo's own (`config`), its adapters
/// disabled (the console shows their runs; the simulator they pull from is
/// gone), the API on [`DEMO_LISTEN`], and one new token per agency
/// (returned; the config keeps their hashes).
fn write_console_config(
    dir: &Path,
    config: &str,
) -> anyhow::Result<(PathBuf, BTreeMap<Agency, String>)> {
    let path = dir.join("console.toml");
    let mut text = format!(
        "# The console on the demo's store: `liankong --config {} run`,\n\
         # then http://{DEMO_LISTEN}/ui. It pulls nothing: the simulator is gone.\n",
        path.display(),
    );
    for line in config.lines() {
        text.push_str(line);
        text.push('\n');
        if line.starts_with("[adapters.") {
            text.push_str("enabled = false\n");
        }
    }
    text.push_str(&format!("\n[api]\nlisten = \"{DEMO_LISTEN}\"\n"));
    let mut tokens = BTreeMap::new();
    for agency in Agency::ALL {
        let token = format!("lk_{}", crate::console::session::random_token()?);
        text.push_str(&format!(
            "\n[[api.tokens]]\nname = \"演示-{agency}\"\nagency = \"{agency}\"\nsha256 = \"{}\"\n",
            crate::api::token_hash(&token)
        ));
        tokens.insert(agency, token);
    }
    std::fs::write(&path, text)?;
    Ok((path, tokens))
}

/// The simulator's arguments of the demo.
fn demo_args() -> SimArgs {
    SimArgs {
        seed: 7,
        units: 12,
        projects: 60,
        year: 2021,
        as_of: None,
        plant: true,
        manifests: None,
        audit_findings: None,
        referrals: None,
        anomalies: None,
        export_csv: None,
        changes_on_stdin: false,
    }
}

/// Steps 1 to 3 of `liankong demo` into `dir` (which must hold no demo
/// yet), quietly: the planted anomalies and what `extra` adds to the
/// simulated systems' data, synced, reconciled and acted on, with every
/// event pending in the outbox for a subscriber per agency (`AGENCY_desk`,
/// which nothing serves), and the console's config beside them. The simulator is shut down and the store
/// closed before it returns.
pub async fn demo_store(
    dir: &Path,
    extra: &dyn Fn(&crate::sim::SimDataHandle),
) -> anyhow::Result<DemoStore> {
    std::fs::create_dir_all(dir)?;
    let dir = std::path::absolute(dir)?;
    // A subscriber per agency that nothing serves: every event stays in the
    // outbox, pending, for the console's deliveries to show.
    let subscribers = Agency::ALL
        .iter()
        .map(|a| {
            let url = format!("http://127.0.0.1:9/{a}");
            Subscriber::with_keys(&format!("{a}_desk"), *a, &url, vec![b"demo".to_vec()])
        })
        .collect();
    let built = build(&mut std::io::sink(), &demo_args(), &dir, subscribers, extra).await?;
    let failed: Vec<&str> = built
        .reports
        .iter()
        .filter(|r| !r.ok())
        .map(|r| r.adapter.as_str())
        .collect();
    let failed = failed.join(", ");
    built.store.close().await;
    built.sim.shutdown().await;
    if !failed.is_empty() {
        anyhow::bail!("the demo's sync failed for {failed}");
    }
    let store_url = format!("sqlite:{}", dir.join("liankong.db").display());
    let config = std::fs::read_to_string(&built.config_path)?;
    let (console_config, tokens) = write_console_config(&dir, &config)?;
    Ok(DemoStore {
        dir,
        store_url,
        console_config,
        tokens,
    })
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

    let key = b"liankong-demo-webhook-key".to_vec();
    let (subscribers, inboxes) = receivers(&key).await?;
    let Built {
        sim,
        config_path,
        store,
        ctx,
        reports,
    } = build(out, &args, &dir, subscribers, &|_| {}).await?;

    writeln!(
        out,
        "\n4. deliver: a signed checkpoint of the history, and signed webhooks to a local \
         receiver per agency"
    )?;
    if let Some(crate::witness::Issued::Issued { id, streams, .. }) = ctx.checkpoint().await? {
        writeln!(
            out,
            "  checkpoint {id}: {streams} streams signed (discipline's only in discipline's)"
        )?;
    }
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
    // What finance kept of the checkpoints, checked against the store.
    let kept = store
        .checkpoints(crate::witness::Audience::Shared, None, 10)
        .await?;
    let kept_path = dir.join("finance-checkpoints.json");
    std::fs::write(&kept_path, serde_json::to_string(&kept)?)?;
    let keys = crate::witness::config::public_keys(&ctx.config.witness)?;
    let public_path = dir.join("checkpoint-public.pem");
    let witnessed = crate::witness::verify::check_kept(store.as_ref(), &kept, &keys).await?;
    writeln!(
        out,
        "\n5. verify: {} ({} chains, {} versions, {} records); the store extends {} of {} \
         checkpoints finance kept",
        if report.is_intact() {
            "intact"
        } else {
            "DAMAGED"
        },
        report.chains,
        report.versions,
        report.records,
        witnessed.extended,
        witnessed.checked
    )?;
    let monthly = crate::report::build(store.as_ref(), as_of).await?;
    let report_path = dir.join(format!("report-{}.html", as_of.format("%Y-%m")));
    std::fs::write(
        &report_path,
        crate::report::render(&monthly, crate::report::Format::Html),
    )?;
    writeln!(
        out,
        "\n6. report: {} units ranked by execution progress, written to {}",
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
    writeln!(
        out,
        "  liankong --config {} verify --checkpoint {}",
        config_path.display(),
        kept_path.display()
    )?;
    writeln!(
        out,
        "  python3 deploy/verify-checkpoint.py --key {} {}",
        public_path.display(),
        kept_path.display()
    )?;
    let (console, tokens) = write_console_config(&dir, &std::fs::read_to_string(&config_path)?)?;
    writeln!(
        out,
        "\nthe console on this store (its config pulls nothing: the simulator stops with the demo):"
    )?;
    writeln!(out, "  liankong --config {} run", console.display())?;
    writeln!(
        out,
        "  then open http://{DEMO_LISTEN}/ui and sign in as finance with the token"
    )?;
    if let Some(t) = tokens.get(&Agency::Finance) {
        writeln!(out, "  {t}")?;
    }
    writeln!(out, "  (the other agencies' tokens:)")?;
    for (agency, t) in tokens.iter().filter(|(a, _)| **a != Agency::Finance) {
        writeln!(out, "  {:<11}{t}", agency.as_str())?;
    }
    store.close().await;
    sim.shutdown().await;
    let ok = reports.iter().all(|r| r.ok())
        && report.is_intact()
        && witnessed.problems.is_empty()
        && !kept.is_empty()
        && counts.pending == 0
        && counts.dead == 0;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The demo's actions (step 3): npc warns about the slow project with a
/// deadline already past, finance freezes it (a payment after the freeze
/// breaches it) and lifts the freeze from tomorrow, reclaims twice from
/// MIRROR (finance's data then shows the first only), revives part of the
/// first into TARGET (shown by nothing), and warns about OVER by mistake and
/// withdraws it. Then finance and npc are pulled again and the rules judge.
async fn demo_actions(
    out: &mut dyn Write,
    ctx: &Context,
    sim: &crate::sim::Simulator,
    adapters: &[crate::adapter::Adapter],
    as_of: chrono::NaiveDate,
) -> anyhow::Result<()> {
    use crate::action::{ActionRequest, Actor, take};
    use crate::demo::planted::*;
    use crate::model::{ActionKind, Agency};
    use chrono::{Datelike, Duration, TimeZone};

    let store = ctx.store.as_ref();
    let alerts = store.alerts().await?;
    let alert_on = |rule: &str, project: &str| {
        alerts
            .iter()
            .find(|a| a.rule.as_str() == rule && a.project_code.as_deref() == Some(project))
            .map(|a| a.id.clone())
    };
    let day = |days: i64| as_of - Duration::days(days);
    // The demo acts on the day it judges, at noon China time.
    let noon = crate::config::china_time()
        .from_local_datetime(&as_of.and_hms_opt(12, 0, 0).unwrap_or_default())
        .single()
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| ctx.clock.now());
    let ask = |kind: ActionKind, project: &str, taken: chrono::NaiveDate, reason: &str| {
        let mut r = ActionRequest::new(kind, "演示", reason);
        r.project = Some(project.to_owned());
        r.year = Some(as_of.year());
        r.taken_on = Some(taken);
        r
    };
    let mut taken: Vec<(String, String)> = Vec::new();
    let mut act =
        async |agency: Agency, req: ActionRequest, what: String| -> anyhow::Result<String> {
            let actor = Actor {
                agency,
                token: "demo".into(),
            };
            let t = take(store, &ctx.subscribers, &actor, &req, None, noon)
                .await
                .map_err(|e| anyhow::anyhow!("the demo's {} was refused: {e}", req.kind))?;
            writeln!(out, "  action {} recorded: {agency} {what}", t.action_id)?;
            taken.push((t.action_id.clone(), what));
            Ok(t.action_id)
        };

    let mut warn = ask(
        ActionKind::Warn,
        SLOW,
        day(15),
        "执行进度严重滞后，限期说明",
    );
    warn.alert = alert_on("execution.slow", SLOW);
    warn.deadline = Some(day(5));
    act(
        Agency::Npc,
        warn,
        format!("warns about {SLOW}, answer due {}", day(5)),
    )
    .await?;
    let mut freeze = ask(ActionKind::Freeze, SLOW, day(15), "暂停支付，核查进度");
    freeze.effective_on = Some(day(15));
    act(
        Agency::Finance,
        freeze,
        format!("freezes {SLOW} from {}", day(15)),
    )
    .await?;
    let mut unfreeze = ask(ActionKind::Unfreeze, SLOW, as_of, "核查完毕");
    unfreeze.effective_on = Some(as_of + Duration::days(1));
    act(
        Agency::Finance,
        unfreeze,
        format!("lifts it from {}", as_of + Duration::days(1)),
    )
    .await?;
    let mut reclaim = ask(ActionKind::Reclaim, MIRROR, day(25), "收回结余资金");
    reclaim.amount = Some(crate::money::Fen(crate::demo::DEMO_RECLAIM_APPLIED).to_yuan());
    let first = act(
        Agency::Finance,
        reclaim.clone(),
        format!("reclaims 10000.00 yuan from {MIRROR}"),
    )
    .await?;
    reclaim.amount = Some("20000.00".into());
    reclaim.taken_on = Some(day(20));
    act(
        Agency::Finance,
        reclaim,
        format!("reclaims 20000.00 yuan more from {MIRROR}"),
    )
    .await?;
    let mut revive = ask(ActionKind::Revive, TARGET, day(18), "急需资金");
    revive.amount = Some("8000.00".into());
    revive.from = Some(vec![first]);
    act(
        Agency::Finance,
        revive,
        format!("revives 8000.00 yuan of it into {TARGET}"),
    )
    .await?;
    let mut mistaken = ask(ActionKind::Warn, OVER, as_of, "超指标支付");
    mistaken.alert = alert_on("payment.over_quota", OVER);
    mistaken.deadline = Some(as_of + Duration::days(15));
    let wrong = act(Agency::Finance, mistaken, format!("warns about {OVER}")).await?;
    let mut withdraw = ActionRequest::new(ActionKind::Withdraw, "演示", "误发");
    withdraw.action = Some(wrong);
    withdraw.taken_on = Some(as_of);
    act(Agency::Finance, withdraw, "withdraws that warning".into()).await?;

    for r in crate::demo::action_followups(day(25))? {
        sim.data().upsert(r);
    }
    sim.write_files()?;
    for a in adapters
        .iter()
        .filter(|a| matches!(a.manifest.agency, Agency::Finance | Agency::Npc))
    {
        let r = crate::adapter::run_adapter(store, a, ctx.clock.as_ref(), &SyncOptions::default())
            .await;
        if !r.ok() {
            anyhow::bail!(
                "the demo's second pull of {} failed: {:?}",
                r.adapter,
                r.error
            );
        }
    }
    writeln!(
        out,
        "  finance's quota rows show the first reclaim (approved {}), npc approves it: nothing fires for it",
        day(22)
    )?;
    let outcome = ctx.reconcile(as_of).await?;
    super::print_outcome(out, as_of, &outcome)?;
    let alerts = store.alerts().await?;
    for rule in crate::reconcile::RuleId::ALL
        .iter()
        .filter(|r| r.as_str().starts_with("action."))
    {
        let fired: Vec<&str> = alerts
            .iter()
            .filter(|a| a.rule == *rule && a.state.is_active())
            .filter_map(|a| {
                a.finding
                    .view
                    .facts
                    .get("action_id")
                    .and_then(|v| v.as_str())
            })
            .collect();
        let about: Vec<&str> = fired
            .iter()
            .filter_map(|id| {
                taken
                    .iter()
                    .find(|(t, _)| t == id)
                    .map(|(_, what)| what.as_str())
            })
            .collect();
        writeln!(
            out,
            "  {:<26}{} firing: {}",
            rule.as_str(),
            fired.len(),
            about.join("; ")
        )?;
    }
    Ok(())
}
