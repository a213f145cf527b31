//! Shared test support: real databases for every store test, and fixtures.
//!
//! Every store test runs against both backends: a fresh SQLite file in a
//! temporary directory, and a fresh PostgreSQL database created on the server
//! at `LIANKONG_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! and dropped afterwards. A PostgreSQL server that cannot be reached fails the
//! test; `LIANKONG_TEST_SKIP_PG=1` skips PostgreSQL instead and says so on
//! stderr, which `.ci/run` refuses.

#![allow(dead_code)]

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::FutureExt;
use liankong::model::*;
use liankong::money::Fen;
use liankong::store::{self, Store, StoreUrl};
use sqlx::Connection;

pub const SKIP_PG_ENV: &str = "LIANKONG_TEST_SKIP_PG";

pub fn pg_admin_url() -> String {
    std::env::var("LIANKONG_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Direct SQL on the test database, for what the store's API must not allow
/// (tampering, failing triggers).
pub enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Raw {
    pub async fn exec(&self, sql: &str) {
        match self {
            Raw::Sqlite(p) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(p)
                    .await
                    .unwrap();
            }
            Raw::Postgres(p) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(p)
                    .await
                    .unwrap();
            }
        }
    }

    pub async fn count(&self, sql: &str) -> i64 {
        match self {
            Raw::Sqlite(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(p)
                .await
                .unwrap(),
            Raw::Postgres(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(p)
                .await
                .unwrap(),
        }
    }
}

/// A migrated store on a fresh database, with direct SQL beside it.
pub struct TestStore {
    pub backend: &'static str,
    pub url: StoreUrl,
    pub store: Arc<dyn Store>,
    pub raw: Raw,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique_name() -> String {
    let nanos = liankong::clock::Clock::now(&liankong::clock::SystemClock).timestamp_subsec_nanos();
    format!(
        "lk_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        nanos
    )
}

async fn open(url: StoreUrl, backend: &'static str) -> TestStore {
    let store = store::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    let raw = if backend == "sqlite" {
        Raw::Sqlite(sqlx::SqlitePool::connect(url.expose()).await.unwrap())
    } else {
        Raw::Postgres(sqlx::PgPool::connect(url.expose()).await.unwrap())
    };
    TestStore {
        backend,
        url,
        store,
        raw,
    }
}

/// A fresh PostgreSQL database; returns its URL. Panics when the server is
/// unreachable: a skipped PostgreSQL test must be asked for.
pub async fn create_pg_database() -> (String, String) {
    let admin = pg_admin_url();
    let name = unique_name();
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL at {admin} is unreachable ({e}); set {SKIP_PG_ENV}=1 to skip")
        });
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    (name.clone(), format!("{base}/{name}"))
}

pub async fn drop_pg_database(name: &str) {
    let mut conn = sqlx::PgConnection::connect(&pg_admin_url()).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}

pub fn skip_pg() -> bool {
    std::env::var(SKIP_PG_ENV).is_ok_and(|v| v == "1")
}

/// Runs `test` against a fresh SQLite store, then a fresh PostgreSQL store.
pub async fn on_both<F, Fut>(test: F)
where
    F: Fn(TestStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = StoreUrl::new(format!("sqlite:{}", dir.path().join("store.db").display()));
    let ts = open(url, "sqlite").await;
    within_deadline("sqlite", test(ts)).await;

    if skip_pg() {
        eprintln!("SKIPPED PostgreSQL: {SKIP_PG_ENV}=1");
        return;
    }
    let (name, url) = create_pg_database().await;
    let ts = open(StoreUrl::new(url), "postgres").await;
    let result = AssertUnwindSafe(async {
        let store = ts.store.clone();
        within_deadline("postgres", test(ts)).await;
        store.close().await;
    })
    .catch_unwind()
    .await;
    drop_pg_database(&name).await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// No test runs longer than this on one backend: one that hangs fails with
/// a message instead of holding CI until its own deadline.
pub const TEST_DEADLINE: Duration = Duration::from_secs(600);

async fn within_deadline(backend: &str, test: impl Future<Output = ()>) {
    if tokio::time::timeout(TEST_DEADLINE, test).await.is_err() {
        panic!("the test did not finish within {TEST_DEADLINE:?} on {backend}");
    }
}

/// A `liankong` process a test started, with its stderr in a log file.
/// Dropped, it is killed (SIGKILL) and reaped: a test that fails never leaves
/// a daemon behind.
pub struct Spawned {
    child: Option<std::process::Child>,
    log: PathBuf,
}

impl Spawned {
    /// Starts `command` with stdout discarded and stderr written to `log`.
    pub fn start(mut command: std::process::Command, log: PathBuf) -> Spawned {
        let stderr = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Spawned {
            child: Some(child),
            log,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, std::process::Child::id)
    }

    /// What the process has written to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `sig` (as `kill` names it: "-TERM", "-HUP").
    pub fn signal(&self, sig: &str) {
        let status = std::process::Command::new("kill")
            .args([sig, &self.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {sig} {}", self.id());
    }

    /// SIGKILL, and reaped.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the process to exit on its own; panics with its log if it
    /// is still running after `within`.
    pub async fn exit_status(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + within;
        loop {
            let child = self.child.as_mut().expect("the process was killed");
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            if std::time::Instant::now() > deadline {
                let log = self.log();
                self.kill();
                panic!("the process did not exit within {within:?}; its log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---- fixtures ----

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

pub fn unit(code: &str, name: &str) -> Record {
    Record::Unit(Unit {
        unit_code: UnitCode::parse(code).unwrap(),
        unit_name: name.to_owned(),
        parent_code: None,
        updated_at: at("2021-01-05T09:00:00+08:00"),
    })
}

pub fn payment(id: &str, project: &str, kind: PaymentKind, fen: i64, paid_on: &str) -> Record {
    Record::Payment(Payment {
        payment_id: id.to_owned(),
        project_code: ProjectCode::parse(project).unwrap(),
        kind,
        amount: Fen(fen),
        paid_on: day(paid_on),
        updated_at: at("2021-06-30T16:20:00+08:00"),
    })
}

pub fn budget(project: &str, year: i32, approved: i64, adjustment: i64) -> Record {
    Record::ApprovedBudget(ApprovedBudget {
        project_code: ProjectCode::parse(project).unwrap(),
        year,
        approved: Fen(approved),
        adjustment: Fen(adjustment),
        approved_on: day("2021-01-20"),
        updated_at: at("2021-01-20T10:00:00+08:00"),
    })
}

pub fn referral(id: &str, unit: &str, project: Option<&str>) -> Record {
    Record::Referral(Referral {
        referral_id: id.to_owned(),
        unit_code: UnitCode::parse(unit).unwrap(),
        project_code: project.map(|p| ProjectCode::parse(p).unwrap()),
        received_on: day("2021-05-01"),
        status: ReferralStatus::Verifying,
        freeze: true,
        freeze_from: Some(day("2021-05-10")),
        origin: ReferralOrigin::Audit,
        changed_at: at("2021-05-10T08:00:00Z"),
    })
}

// ---- a small world of records for the rule tests ----

/// Collects records per collection and writes them as one batch each.
#[derive(Default)]
pub struct World {
    pub items: std::collections::BTreeMap<Collection, Vec<liankong::store::Item>>,
}

impl World {
    pub fn add(&mut self, r: Record) -> &mut Self {
        self.items
            .entry(r.collection())
            .or_default()
            .push(liankong::store::Item::from(r));
        self
    }

    pub fn delete(&mut self, c: Collection, key: &str) -> &mut Self {
        self.items
            .entry(c)
            .or_default()
            .push(liankong::store::Item::Delete(key.to_owned()));
        self
    }

    /// Writes everything added so far and empties the world.
    pub async fn write(&mut self, store: &dyn Store) {
        for (c, items) in std::mem::take(&mut self.items) {
            let mut b = liankong::store::Batch::new(
                c,
                liankong::store::RunId(1),
                at("2021-12-31T00:00:00Z"),
            );
            b.items = items;
            store.apply(&b).await.unwrap();
        }
        let mut tx = store.begin_sync().await.unwrap();
        tx.relink_units().await.unwrap();
        tx.commit().await.unwrap();
    }
}

pub fn project(code: &str, unit: &str, category: ProjectCategory, full_year: bool) -> Record {
    Record::Project(Project {
        project_code: ProjectCode::parse(code).unwrap(),
        unit_code: UnitCode::parse(unit).unwrap(),
        project_name: format!("项目{code}"),
        category,
        full_year,
        start_year: 2021,
        end_year: None,
        updated_at: at("2021-01-05T09:00:00+08:00"),
    })
}

pub fn quota(
    id: &str,
    project: &str,
    year: i32,
    kind: QuotaKind,
    fen: i64,
    approved_on: &str,
) -> Record {
    Record::Quota(Quota {
        quota_id: id.to_owned(),
        project_code: ProjectCode::parse(project).unwrap(),
        fiscal_year: year,
        kind,
        amount: Fen(fen),
        approved_on: day(approved_on),
        updated_at: at("2021-01-05T09:00:00+08:00"),
    })
}

pub fn target(id: &str, project: &str, year: i32) -> Record {
    Record::Target(Target {
        target_id: id.to_owned(),
        project_code: ProjectCode::parse(project).unwrap(),
        fiscal_year: year,
        indicator: "覆盖人数".into(),
        target_value: "≥1000".into(),
        updated_at: at("2021-01-05T09:00:00+08:00"),
    })
}

pub fn evaluation(id: &str, project: &str, year: i32, score: i64, grade: Grade) -> Record {
    Record::Evaluation(Evaluation {
        evaluation_id: id.to_owned(),
        project_code: ProjectCode::parse(project).unwrap(),
        fiscal_year: year,
        score: Centi(score),
        grade,
        updated_at: at("2021-01-05T09:00:00+08:00"),
    })
}

pub fn rectification(
    id: &str,
    finding: &str,
    status: RectificationStatus,
    reported_on: &str,
) -> Record {
    Record::Rectification(Rectification {
        report_id: id.to_owned(),
        finding_no: finding.to_owned(),
        status,
        reported_on: day(reported_on),
        updated_at: at("2021-01-05T09:00:00+08:00"),
    })
}

pub fn execution(project: &str, as_of: &str, fen: i64) -> Record {
    Record::ExecutionMirror(ExecutionMirror {
        project_code: ProjectCode::parse(project).unwrap(),
        year: 2021,
        as_of: day(as_of),
        cumulative: Fen(fen),
        updated_at: at("2021-07-01T10:00:00+08:00"),
    })
}

pub fn finding(
    no: &str,
    unit_name: &str,
    project: Option<&str>,
    status: FindingStatus,
    deadline: &str,
) -> Record {
    Record::AuditFinding(AuditFinding {
        finding_no: no.to_owned(),
        unit_name: unit_name.to_owned(),
        project_code: project.map(|p| ProjectCode::parse(p).unwrap()),
        category: "挤占挪用".into(),
        amount: Fen(12_500_000),
        status,
        deadline: day(deadline),
        found_on: day("2021-03-15"),
    })
}

pub fn orgdept(unit: &str, quarter: u8, rate: i64) -> Record {
    Record::OrgdeptEvaluation(OrgdeptEvaluation {
        unit_code: UnitCode::parse(unit).unwrap(),
        unit_name: "市财政局".into(),
        year: 2021,
        quarter,
        reported_rate: Centi(rate),
        score: Centi(8800),
        grade: Grade::Good,
    })
}

// ---- a webhook receiver and a clock for the delivery tests ----

/// A clock the test moves by hand.
pub struct ManualClock(pub std::sync::Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: &str) -> Arc<ManualClock> {
        Arc::new(ManualClock(std::sync::Mutex::new(at(start))))
    }
    pub fn advance(&self, d: chrono::Duration) {
        let mut t = self.0.lock().unwrap();
        *t += d;
    }
}

impl liankong::clock::Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    /// The status the receiver answered with.
    pub status: u16,
}

#[derive(Default)]
pub struct ReceiverState {
    pub status: u16,
    pub received: Vec<Received>,
}

/// A webhook receiver on loopback answering with a settable status.
pub struct Receiver {
    pub url: String,
    pub state: Arc<std::sync::Mutex<ReceiverState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        use axum::extract::State;
        use axum::http::{HeaderMap, StatusCode};
        let state = Arc::new(std::sync::Mutex::new(ReceiverState {
            status: 200,
            received: Vec::new(),
        }));
        async fn hook(
            State(state): State<Arc<std::sync::Mutex<ReceiverState>>>,
            headers: HeaderMap,
            body: String,
        ) -> StatusCode {
            let h = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let mut s = state.lock().unwrap();
            let status = s.status;
            s.received.push(Received {
                id: h("webhook-id"),
                timestamp: h("webhook-timestamp"),
                signature: h("webhook-signature"),
                body,
                status,
            });
            StatusCode::from_u16(status).unwrap()
        }
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { url, state, task }
    }

    pub fn set_status(&self, status: u16) {
        self.state.lock().unwrap().status = status;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Verifies a webhook as a receiver would, computing the HMAC itself:
/// the signature over "{id}.{timestamp}.{body}" with the secret's bytes,
/// and the timestamp within five minutes of `now`.
pub fn verify_webhook(secret: &str, r: &Received, now: DateTime<Utc>) -> Result<(), String> {
    use base64::Engine;
    use hmac::Mac;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").ok_or("not whsec_")?)
        .map_err(|e| e.to_string())?;
    let ts: i64 = r.timestamp.parse().map_err(|_| "bad timestamp")?;
    if (now.timestamp() - ts).abs() > 300 {
        return Err("timestamp outside the tolerance".into());
    }
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    if r.signature.split(' ').any(|s| s == expected) {
        Ok(())
    } else {
        Err("no signature matches".into())
    }
}

// ---- the simulator ----

use liankong::adapter::{Adapter, SyncOptions, SyncReport, run_adapter};
use liankong::clock::SystemClock;
use liankong::config::Config;
use liankong::demo::{SimConfigOptions, shipped_manifests, sim_config};
use liankong::sim::{GenParams, SimOptions, Simulator};

pub struct Env {
    pub sim: Simulator,
    pub config: Config,
    _dir: tempfile::TempDir,
}

/// A simulator of the small dataset and a config reaching it.
pub async fn start(t: &TestStore) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions::new(GenParams::small(), dir.path().join("sim")))
        .await
        .unwrap();
    sim.write_files().unwrap();
    let text = sim_config(
        &sim,
        &SimConfigOptions {
            store_url: t.url.expose().to_owned(),
            manifests: shipped_manifests(),
            quick_retries: true,
        },
    )
    .unwrap();
    Env {
        config: Config::parse(&text).unwrap(),
        sim,
        _dir: dir,
    }
}

pub fn adapter(env: &Env, name: &str) -> Adapter {
    Adapter::build(name, &env.config.adapters[name], &env.config).unwrap()
}

pub async fn sync(t: &TestStore, env: &Env, name: &str) -> SyncReport {
    sync_with(t, &adapter(env, name), &SyncOptions::default()).await
}

pub async fn sync_with(t: &TestStore, a: &Adapter, options: &SyncOptions) -> SyncReport {
    run_adapter(t.store.as_ref(), a, &SystemClock, options).await
}

pub async fn sync_all(t: &TestStore, env: &Env) {
    for name in ["finance", "npc", "audit", "discipline", "orgdept"] {
        let r = sync(t, env, name).await;
        assert!(r.ok(), "{name}: {:?}", r.error);
    }
}

// ---- actions ----

pub use liankong::action::{ActionRequest, Actor, TakeError};
pub use liankong::model::ActionKind;
pub use liankong::store::actions::ActionFacts;

pub fn actor(agency: Agency) -> Actor {
    Actor {
        agency,
        token: format!("{agency}-token"),
    }
}

/// A request of `kind` for (project, 2021), taken on `taken_on`.
pub fn ask(kind: ActionKind, project: &str, taken_on: &str) -> ActionRequest {
    let mut r = ActionRequest::new(kind, "王科长", "测试");
    r.project = Some(project.to_owned());
    r.year = Some(2021);
    r.taken_on = Some(day(taken_on));
    r
}

/// A withdrawal of `id`, taken on `taken_on`.
pub fn ask_withdraw(id: &str, taken_on: &str) -> ActionRequest {
    let mut r = ActionRequest::new(ActionKind::Withdraw, "王科长", "误操作");
    r.action = Some(id.to_owned());
    r.taken_on = Some(day(taken_on));
    r
}

/// Takes an action as `agency` at `now` with these subscribers; the id.
pub async fn act_with(
    store: &dyn Store,
    subscribers: &[liankong::deliver::Subscriber],
    agency: Agency,
    req: &ActionRequest,
    now: &str,
) -> Result<String, TakeError> {
    liankong::action::take(store, subscribers, &actor(agency), req, None, at(now))
        .await
        .map(|t| t.action_id)
}

/// Takes an action that must be recorded; its id.
pub async fn act(store: &dyn Store, agency: Agency, req: &ActionRequest, now: &str) -> String {
    act_with(store, &[], agency, req, now).await.unwrap()
}

/// Takes an action that must be refused; (HTTP status, reason, figures).
pub async fn refused(
    store: &dyn Store,
    agency: Agency,
    req: &ActionRequest,
    now: &str,
) -> (u16, &'static str, serde_json::Value) {
    let before = store.actions(None).await.unwrap().len();
    match act_with(store, &[], agency, req, now).await {
        Err(TakeError::Refused(r)) => {
            assert_eq!(
                store.actions(None).await.unwrap().len(),
                before,
                "a refusal records nothing"
            );
            (r.status.code(), r.reason, r.figures)
        }
        other => panic!("expected a refusal of {req:?}, got {other:?}"),
    }
}
