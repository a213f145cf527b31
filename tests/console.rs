//! The agencies' console, end to end: the daemon's router on a real
//! listener over a copy of the demo's SQLite store, driven by a real
//! headless Chromium through WebDriver (Debian's `chromium-driver`), and by
//! plain HTTP where a browser adds nothing (sign-in slowing, CSRF, TLS).
//!
//! WebDriver is spoken with `reqwest` and `serde_json` here (a dozen
//! endpoints): a client crate would add a tree of its own for no more.
//! Without `chromedriver` on the PATH the browser tests say
//! `SKIPPED console browser tests` and pass; `.ci/run` installs it and
//! refuses that line.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use liankong::api::{ApiState, RunningConfig};
use liankong::cli::DemoStore;
use liankong::clock::Clock;
use liankong::config::Config;
use liankong::model::{Agency, AuditFinding, FindingStatus, Record, Unit, UnitCode};
use liankong::money::Fen;
use liankong::reconcile::RuleId;
use liankong::store::{self, Store, StoreUrl};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

// ---- the fixture: the demo's store, with XSS canaries planted ----

/// Unit names an audit CSV brings: each would run script if it were markup.
const CANARY_SCRIPT: &str = "<script>window.__lk_xss='script'</script>市某局";
const CANARY_IMG: &str = "\"><img src=x onerror=\"window.__lk_xss='img'\">市某局";
/// A finance unit's name (it reaches the monthly report).
const CANARY_UNIT: &str = "<svg onload=\"window.__lk_xss='svg'\"></svg>市某中心";

fn plant_canaries(data: &liankong::sim::SimDataHandle) {
    for (no, name) in [
        ("SJ-2021-XSS1", CANARY_SCRIPT),
        ("SJ-2021-XSS2", CANARY_IMG),
    ] {
        data.upsert(Record::AuditFinding(AuditFinding {
            finding_no: no.into(),
            unit_name: name.into(),
            project_code: None,
            category: "演示问题".into(),
            amount: Fen(1_000_000),
            status: FindingStatus::Open,
            deadline: chrono::NaiveDate::from_ymd_opt(2021, 12, 31).unwrap(),
            found_on: chrono::NaiveDate::from_ymd_opt(2021, 3, 1).unwrap(),
        }));
    }
    data.upsert(Record::Unit(Unit {
        unit_code: UnitCode::parse("379988").unwrap(),
        unit_name: CANARY_UNIT.into(),
        parent_code: None,
        updated_at: "2021-09-30T10:00:00Z".parse().unwrap(),
    }));
}

/// The demo's store, built once for this binary (in a runtime of its own,
/// since each test has its own) and copied by every test.
fn demo() -> &'static DemoStore {
    static DEMO: OnceLock<DemoStore> = OnceLock::new();
    DEMO.get_or_init(|| {
        std::thread::spawn(|| {
            let dir = tempfile::tempdir().unwrap().keep();
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(liankong::cli::demo_store(
                    &dir.join("demo"),
                    &plant_canaries,
                ))
                .unwrap()
        })
        .join()
        .unwrap()
    })
}

/// A clock the tests move.
struct TestClock(Mutex<DateTime<Utc>>);

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

impl TestClock {
    fn advance(&self, d: chrono::Duration) {
        *self.0.lock().unwrap() += d;
    }
}

/// The console on a copy of the demo's store.
struct Console {
    base: String,
    store: Arc<dyn Store>,
    tokens: BTreeMap<Agency, String>,
    clock: Arc<TestClock>,
    config: tokio::sync::watch::Sender<Arc<RunningConfig>>,
    config_text: String,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Console {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The demo's day, in the afternoon (China time).
fn demo_now() -> DateTime<Utc> {
    "2021-09-30T06:00:00Z".parse().unwrap()
}

async fn console_with(extra_config: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> Console {
    let demo = demo();
    let dir = tempfile::tempdir().unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let from = demo.dir.join(format!("liankong.db{suffix}"));
        if from.exists() {
            std::fs::copy(&from, dir.path().join(format!("liankong.db{suffix}"))).unwrap();
        }
    }
    let url = format!("sqlite:{}", dir.path().join("liankong.db").display());
    let store = store::open(&StoreUrl::new(url.clone())).await.unwrap();
    store.migrate().await.unwrap();
    let text = std::fs::read_to_string(&demo.console_config).unwrap();
    let text = text
        .replace(&demo.store_url, &url)
        .replace("[api]\n", &format!("[api]\n{extra_config}"));
    let config = Config::parse(&text).unwrap();
    let running = RunningConfig::new(Arc::new(config), &[]);
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(running));
    let clock = Arc::new(TestClock(Mutex::new(demo_now())));
    let state = ApiState {
        store: store.clone(),
        config: rx,
        metrics: Default::default(),
        clock: clock.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let scheme = if tls.is_some() { "https" } else { "http" };
    match tls {
        Some(acceptor) => {
            tokio::spawn(liankong::api::serve_tls(
                listener,
                acceptor,
                state,
                stop.clone(),
            ));
        }
        None => {
            tokio::spawn(liankong::api::serve(listener, state, stop.clone()));
        }
    }
    Console {
        base: format!("{scheme}://{addr}"),
        store,
        tokens: demo.tokens.clone(),
        clock,
        config: tx,
        config_text: text,
        stop,
        _dir: dir,
    }
}

async fn console() -> Console {
    console_with("", None).await
}

impl Console {
    /// The id of the one alert of `rule` (on `project`, when given).
    async fn alert(&self, rule: RuleId, project: Option<&str>) -> String {
        let alerts = self.store.alerts().await.unwrap();
        let found: Vec<_> = alerts
            .iter()
            .filter(|a| {
                a.rule == rule && project.is_none_or(|p| a.project_code.as_deref() == Some(p))
            })
            .collect();
        assert_eq!(found.len(), 1, "one {rule} alert");
        found[0].id.clone()
    }
}

// ---- plain HTTP ----

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of cookie `name` among a response's `Set-Cookie` headers, and
/// the whole header.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<(String, String)> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let value = v[name.len() + 1..].split(';').next().unwrap().to_owned();
            (value, v.to_owned())
        })
}

/// The value of the hidden `csrf` field of a page.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..at + 64].to_owned()
}

/// A sign-in form: its cookie and its CSRF token.
async fn signin_form(http: &reqwest::Client, base: &str) -> (String, String) {
    let r = http.get(format!("{base}/ui/signin")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (cookie, _) = set_cookie(&r, "lk_signin").expect("the sign-in cookie");
    let csrf = csrf_of(&r.text().await.unwrap());
    assert_eq!(cookie, csrf, "double submit");
    (cookie, csrf)
}

async fn try_signin(http: &reqwest::Client, base: &str, token: &str) -> reqwest::Response {
    let (cookie, csrf) = signin_form(http, base).await;
    http.post(format!("{base}/ui/signin"))
        .header("cookie", format!("lk_signin={cookie}"))
        .form(&[("csrf", csrf.as_str()), ("token", token)])
        .send()
        .await
        .unwrap()
}

/// Signs in; returns the session cookie header value and the page CSRF.
async fn signin(http: &reqwest::Client, base: &str, token: &str) -> (String, String) {
    let r = try_signin(http, base, token).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/alerts");
    let (session, _) = set_cookie(&r, "lk_session").unwrap();
    let cookie = format!("lk_session={session}");
    let page = http
        .get(format!("{base}/ui/alerts"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    (cookie, csrf_of(&page.text().await.unwrap()))
}

#[tokio::test]
async fn failed_signins_from_an_address_wait_longer_each_time_then_get_429() {
    let c = console().await;
    let http = http();
    let finance = c.tokens[&Agency::Finance].clone();

    let r = try_signin(&http, &c.base, "lk_wrong").await;
    assert_eq!(r.status(), 401);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("令牌无效。请 1 秒后再试。")
    );
    // Too soon: refused whatever the token, even the right one.
    let r = try_signin(&http, &c.base, &finance).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(set_cookie(&r, "lk_session").is_none());

    c.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(try_signin(&http, &c.base, "lk_wrong").await.status(), 401);
    let r = try_signin(&http, &c.base, &finance).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    c.clock.advance(chrono::Duration::seconds(2));
    assert_eq!(try_signin(&http, &c.base, "lk_wrong").await.status(), 401);
    c.clock.advance(chrono::Duration::seconds(3));
    assert_eq!(try_signin(&http, &c.base, &finance).await.status(), 429);

    // Once waited out, the right token signs in and the count starts again.
    c.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(try_signin(&http, &c.base, &finance).await.status(), 303);
    assert_eq!(try_signin(&http, &c.base, "lk_wrong").await.status(), 401);
    c.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(try_signin(&http, &c.base, &finance).await.status(), 303);
}

#[tokio::test]
async fn every_post_needs_the_sessions_csrf_token() {
    let c = console().await;
    let http = http();
    let idle = c.alert(RuleId::Idle, None).await;

    // The sign-in form without its cookie.
    let (_, csrf) = signin_form(&http, &c.base).await;
    let r = http
        .post(format!("{}/ui/signin", c.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("token", c.tokens[&Agency::Finance].as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(set_cookie(&r, "lk_session").is_none());

    let (cookie, csrf) = signin(&http, &c.base, &c.tokens[&Agency::Finance]).await;
    let (_, other_csrf) = signin(&http, &c.base, &c.tokens[&Agency::Finance]).await;
    assert_ne!(csrf, other_csrf, "one CSRF token per session");
    let ack = |csrf: Option<&str>| {
        let mut form = vec![("by", "王科长"), ("note", "已督办")];
        if let Some(t) = csrf {
            form.push(("csrf", t));
        }
        http.post(format!("{}/ui/alerts/{idle}/ack", c.base))
            .header("cookie", &cookie)
            .form(&form)
            .send()
    };
    for bad in [
        None,
        Some("0".repeat(64).as_str()),
        Some(other_csrf.as_str()),
    ] {
        let r = ack(bad).await.unwrap();
        assert_eq!(r.status(), 403);
        assert!(r.text().await.unwrap().contains("CSRF 校验未通过"));
    }
    assert_eq!(
        c.store.get_alert(&idle).await.unwrap().unwrap().acked_by,
        None
    );

    let r = ack(Some(&csrf)).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("/ui/alerts/{idle}?done=ack")
    );
    let a = c.store.get_alert(&idle).await.unwrap().unwrap();
    assert_eq!(a.acked_by.as_deref(), Some("finance:王科长"));

    // Signing out is a form too.
    let out = |t: &str| {
        http.post(format!("{}/ui/signout", c.base))
            .header("cookie", &cookie)
            .form(&[("csrf", t)])
            .send()
    };
    assert_eq!(out(&other_csrf).await.unwrap().status(), 403);
    let r = out(&csrf).await.unwrap();
    assert_eq!(r.status(), 303);
    let (_, cleared) = set_cookie(&r, "lk_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let after = http
        .get(format!("{}/ui/alerts", c.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.headers()["location"], "/ui/signin");
}

#[tokio::test]
async fn sessions_end_when_idle_and_when_their_token_leaves_the_config() {
    let c = console_with("", None).await;
    let http = http();
    let (cookie, _) = signin(&http, &c.base, &c.tokens[&Agency::Finance]).await;
    let get = |path: &str| {
        http.get(format!("{}{path}", c.base))
            .header("cookie", &cookie)
            .send()
    };
    // Used at 29 minutes, idle from then on.
    c.clock.advance(chrono::Duration::minutes(29));
    assert_eq!(get("/ui/adapters").await.unwrap().status(), 200);
    c.clock.advance(chrono::Duration::minutes(29));
    assert_eq!(get("/ui/deliveries").await.unwrap().status(), 200);
    c.clock.advance(chrono::Duration::minutes(31));
    let r = get("/ui/alerts").await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/signin?expired=1");
    let page = http
        .get(format!("{}/ui/signin?expired=1", c.base))
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("会话已结束"));

    // A session whose token is taken out of the config ends at once.
    let (cookie, _) = signin(&http, &c.base, &c.tokens[&Agency::Audit]).await;
    let hash = liankong::api::token_hash(&c.tokens[&Agency::Audit]);
    let text: String = c.config_text.replace(&hash, &"0".repeat(64));
    let config = Config::parse(&text).unwrap();
    c.config
        .send_replace(Arc::new(RunningConfig::new(Arc::new(config), &[])));
    let r = http
        .get(format!("{}/ui/alerts", c.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/ui/signin");
}

#[tokio::test]
async fn an_alert_another_agency_may_not_see_answers_as_none_and_views_are_logged_for_discipline() {
    let c = console().await;
    let http = http();
    let breach = c.alert(RuleId::FreezeBreach, None).await;
    let get = |cookie: String, path: String| {
        let http = http.clone();
        let url = format!("{}{path}", c.base);
        async move {
            let r = http.get(url).header("cookie", cookie).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (audit, _) = signin(&http, &c.base, &c.tokens[&Agency::Audit]).await;
    let hidden = get(audit.clone(), format!("/ui/alerts/{breach}")).await;
    let none = get(audit.clone(), format!("/ui/alerts/{}", "0".repeat(64))).await;
    assert_eq!(hidden.0, 404);
    assert_eq!(hidden, none, "word for word the same page");
    let (_, list) = get(audit.clone(), "/ui/alerts?state=all".into()).await;
    let cards = &list[list.find("<ol class=\"cards\">").unwrap()..];
    assert!(
        cards.contains("link.unresolved_unit"),
        "audit's own alerts are listed"
    );
    assert!(!cards.contains("referral.freeze_breach") && !list.contains(&breach));
    let (_, csv) = get(audit.clone(), "/ui/alerts.csv?state=all".into()).await;
    assert!(csv.starts_with('\u{feff}') && !csv.contains("referral.freeze_breach"));
    assert_eq!(get(audit.clone(), "/ui/views".into()).await.0, 404);

    // Finance sees the redacted breach (a view logged), discipline all of it.
    let (finance, _) = signin(&http, &c.base, &c.tokens[&Agency::Finance]).await;
    let (status, page) = get(finance.clone(), format!("/ui/alerts/{breach}")).await;
    assert_eq!(status, 200);
    assert!(
        !page.contains(liankong::demo::planted::REFERRAL),
        "finance sees no referral id"
    );
    let (discipline, _) = signin(&http, &c.base, &c.tokens[&Agency::Discipline]).await;
    let (_, page) = get(discipline.clone(), format!("/ui/alerts/{breach}")).await;
    assert!(page.contains(liankong::demo::planted::REFERRAL));
    // And one view through the API.
    let api = http
        .get(format!("{}/v1/alerts/{breach}", c.base))
        .bearer_auth(&c.tokens[&Agency::Npc])
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404, "npc does not receive it: no view");
    let api = http
        .get(format!("{}/v1/alerts/{breach}", c.base))
        .bearer_auth(&c.tokens[&Agency::Finance])
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    // A plain alert's view is not logged.
    let idle = c.alert(RuleId::Idle, None).await;
    assert_eq!(
        get(finance.clone(), format!("/ui/alerts/{idle}")).await.0,
        200
    );

    let views = c.store.alert_views(10, 0).await.unwrap();
    let seen: Vec<(Agency, &str, &str)> = views
        .iter()
        .map(|v| (v.agency, v.token.as_str(), v.channel.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (Agency::Finance, "演示-finance", "api"),
            (Agency::Discipline, "演示-discipline", "console"),
            (Agency::Finance, "演示-finance", "console"),
        ]
    );
    assert!(
        views
            .iter()
            .all(|v| v.alert_id == breach && v.rule == RuleId::FreezeBreach)
    );
    assert!(views.iter().all(|v| v.viewed_at == demo_now()));
    let (status, page) = get(discipline, "/ui/views".into()).await;
    assert_eq!(status, 200);
    assert_eq!(page.matches("演示-finance").count(), 2, "{page}");
    assert_eq!(get(finance, "/ui/views".into()).await.0, 404);
}

#[tokio::test]
async fn the_console_store_logs_views_and_pages_an_agencys_outbox_on_both_backends() {
    use liankong::store::alerts::{EventType, NewEvent};
    use liankong::store::console::NewAlertView;
    support::on_both(|t| async move {
        let s = t.store.as_ref();
        let at: DateTime<Utc> = "2021-09-30T04:00:00Z".parse().unwrap();
        for (i, agency) in [Agency::Finance, Agency::Discipline, Agency::Finance]
            .iter()
            .enumerate()
        {
            s.log_alert_view(&NewAlertView {
                alert_id: &format!("a{i}"),
                rule: RuleId::FreezeBreach,
                agency: *agency,
                token: "王科长",
                channel: "console",
                at: at + chrono::Duration::minutes(i as i64),
            })
            .await
            .unwrap();
        }
        let views = s.alert_views(2, 0).await.unwrap();
        assert_eq!(
            views
                .iter()
                .map(|v| v.alert_id.as_str())
                .collect::<Vec<_>>(),
            ["a2", "a1"]
        );
        assert_eq!(views[1].agency, Agency::Discipline);
        assert_eq!(views[0].viewed_at, at + chrono::Duration::minutes(2));
        assert_eq!(s.alert_views(2, 2).await.unwrap().len(), 1);

        let mut tx = s.begin_alerts().await.unwrap();
        let events: Vec<NewEvent> = (0..5)
            .map(|i| NewEvent {
                event_id: format!("e{i}"),
                alert_id: if i < 3 { "x".into() } else { "y".into() },
                subscriber: "s".into(),
                agency: if i % 2 == 0 {
                    Agency::Finance
                } else {
                    Agency::Audit
                },
                event_type: EventType::Firing,
                body: "{}".into(),
            })
            .collect();
        tx.add_events(&events, at).await.unwrap();
        tx.commit().await.unwrap();
        let ids = |rows: Vec<liankong::store::alerts::OutboxRow>| {
            rows.into_iter().map(|r| r.event_id).collect::<Vec<_>>()
        };
        let all = s
            .agency_deliveries(Agency::Finance, None, None, 10, 0)
            .await
            .unwrap();
        assert_eq!(ids(all), ["e4", "e2", "e0"]);
        let page = s
            .agency_deliveries(Agency::Finance, None, None, 1, 1)
            .await
            .unwrap();
        assert_eq!(ids(page), ["e2"]);
        let of_x = s
            .agency_deliveries(Agency::Finance, Some("pending"), Some("x"), 10, 0)
            .await
            .unwrap();
        assert_eq!(ids(of_x), ["e2", "e0"]);
        assert!(
            s.agency_deliveries(Agency::Finance, Some("dead"), None, 10, 0)
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn an_agency_redrives_its_own_dead_letters_and_no_other() {
    let c = console().await;
    let http = http();
    let pending = |agency| {
        let s = c.store.clone();
        async move {
            s.agency_deliveries(agency, Some("pending"), None, 1, 0)
                .await
                .unwrap()[0]
                .clone()
        }
    };
    let mine = pending(Agency::Finance).await;
    let theirs = pending(Agency::Npc).await;
    for d in [&mine, &theirs] {
        c.store
            .mark_failed(d.id, demo_now(), "HTTP 500", None)
            .await
            .unwrap();
    }
    let (cookie, csrf) = signin(&http, &c.base, &c.tokens[&Agency::Finance]).await;
    let page = http
        .get(format!("{}/ui/deliveries?state=dead", c.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(page.matches("重新推送").count(), 1, "{page}");
    assert!(
        page.contains(&format!("/ui/deliveries/{}/redrive", mine.id)) && page.contains("HTTP 500")
    );
    let redrive = |id: i64| {
        http.post(format!("{}/ui/deliveries/{id}/redrive", c.base))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str())])
            .send()
    };
    assert_eq!(redrive(theirs.id).await.unwrap().status(), 404);
    let r = redrive(mine.id).await.unwrap();
    assert_eq!(r.status(), 303);
    let dead = c.store.deliveries(Some("dead"), 10).await.unwrap();
    assert_eq!(dead.iter().map(|d| d.id).collect::<Vec<_>>(), [theirs.id]);
    let csv = http
        .get(format!("{}/ui/deliveries.csv", c.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows = c
        .store
        .agency_deliveries(Agency::Finance, None, None, 100_000, 0)
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), rows.len() + 1);
    assert!(csv.lines().all(|l| !l.contains("npc_desk")));
}

#[tokio::test]
async fn the_alert_list_and_its_csv_are_the_apis_under_each_filter() {
    let c = console().await;
    let http = http();
    let (cookie, _) = signin(&http, &c.base, &c.tokens[&Agency::Finance]).await;
    for query in [
        "state=all",
        "state=active",
        "state=firing&severity=critical",
        "state=all&agency=npc",
        "state=all&rule=budget.approved_mismatch",
        "state=all&project=3701002021990001",
        "state=all&unit=379901",
    ] {
        let api: Vec<Value> = http
            .get(format!(
                "{}/v1/alerts?{}",
                c.base,
                query.replace("state=all&", "").replace("state=all", "")
            ))
            .bearer_auth(&c.tokens[&Agency::Finance])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let page = http
            .get(format!("{}/ui/alerts?{query}", c.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains(&format!("共 {} 条", api.len())),
            "{query}: {} in the API",
            api.len()
        );
        for a in &api {
            assert!(page.contains(a["alert_id"].as_str().unwrap()), "{query}");
        }
        let csv = http
            .get(format!("{}/ui/alerts.csv?{query}", c.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(csv.lines().count(), api.len() + 1, "{query}");
    }
}

/// What discipline's data leaves in text: the referral's id, and the keys
/// of the facts only discipline may see.
const DISCIPLINE_SECRETS: [&str; 4] = [
    liankong::demo::planted::REFERRAL,
    "received_on",
    "origin",
    "discipline.referrals",
];

#[tokio::test]
async fn no_page_of_the_console_shows_discipline_data_to_another_agency() {
    let c = console().await;
    let http = http();
    let alerts = c.store.alerts().await.unwrap();
    for agency in [Agency::Npc, Agency::Finance, Agency::Audit, Agency::Orgdept] {
        let (cookie, _) = signin(&http, &c.base, &c.tokens[&agency]).await;
        let mut paths: Vec<String> = [
            "/ui/alerts?state=all",
            "/ui/alerts.csv?state=all",
            "/ui/adapters",
            "/ui/report?month=2021-09",
            "/ui/report.csv?month=2021-09",
            "/ui/deliveries",
            "/ui/deliveries.csv",
            "/ui/views",
        ]
        .iter()
        .map(|p| p.to_string())
        .collect();
        paths.extend(alerts.iter().map(|a| format!("/ui/alerts/{}", a.id)));
        let mut shown = 0;
        for path in &paths {
            let r = http
                .get(format!("{}{path}", c.base))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            shown += usize::from(r.status() == 200);
            let text = r.text().await.unwrap();
            for secret in DISCIPLINE_SECRETS {
                assert!(!text.contains(secret), "{agency} sees {secret} at {path}");
            }
        }
        assert!(shown > 8, "{agency} saw {shown} pages");
    }
    // Discipline itself sees them.
    let (cookie, _) = signin(&http, &c.base, &c.tokens[&Agency::Discipline]).await;
    let breach = c.alert(RuleId::FreezeBreach, None).await;
    let page = http
        .get(format!("{}/ui/alerts/{breach}", c.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains(DISCIPLINE_SECRETS[0]) && page.contains("received_on"));
    let adapters = http
        .get(format!("{}/ui/adapters", c.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(
        adapters
            .text()
            .await
            .unwrap()
            .contains("discipline.referrals")
    );
}

#[tokio::test]
async fn the_demo_ends_by_saying_how_to_open_the_console_and_that_works() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let binary = env!("CARGO_BIN_EXE_liankong");
    let mut demo = std::process::Command::new(binary);
    demo.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["demo", "--dir"])
        .arg(&demo_dir)
        .env_remove("LIANKONG_CONFIG");
    let out = tokio::task::spawn_blocking(move || demo.output().unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("the console on this store"))
        .expect("the console's lines");
    let config = demo_dir.join("console.toml");
    assert_eq!(
        lines[at + 1],
        format!("  liankong --config {} run", config.display())
    );
    assert_eq!(
        lines[at + 2],
        "  then open http://127.0.0.1:8470/ui and sign in as finance with the token"
    );
    let token = lines[at + 3].trim();
    assert!(token.starts_with("lk_") && token.len() == 67, "{token}");
    assert_eq!(
        lines.len(),
        at + 9,
        "the demo ends with the four other tokens: {text}"
    );

    // Run it as printed, on a free port rather than 8470.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains("listen = \"127.0.0.1:8470\""));
    std::fs::write(
        &config,
        written.replace("127.0.0.1:8470", &format!("127.0.0.1:{port}")),
    )
    .unwrap();
    let mut command = std::process::Command::new(binary);
    command
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env_remove("LIANKONG_STORE_URL");
    let daemon = support::Spawned::start(command, dir.path().join("run.log"));
    let base = format!("http://127.0.0.1:{port}");
    let http = http();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while http.get(format!("{base}/readyz")).send().await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "no console: {}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (cookie, _) = signin(&http, &base, token).await;
    let page = http
        .get(format!("{base}/ui/alerts"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let page = page.text().await.unwrap();
    assert!(
        page.contains("财政局 · 演示-finance") && page.contains("资金长期趴账"),
        "{page}"
    );
    let adapters = http
        .get(format!("{base}/ui/adapters"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let adapters = adapters.text().await.unwrap();
    assert_eq!(
        adapters.matches("<section class=\"card\">").count(),
        5,
        "the demo's five adapters, disabled"
    );
    assert!(
        !daemon.log().contains("sync failed"),
        "it pulls nothing: {}",
        daemon.log()
    );
}

// ---- TLS ----

/// A self-signed certificate for 127.0.0.1, written as PEM files.
fn test_cert(dir: &Path) -> (PathBuf, PathBuf, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k, cert.pem())
}

#[tokio::test]
async fn check_refuses_a_certificate_or_key_that_cannot_serve() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = test_cert(dir.path());
    let config = dir.path().join("liankong.toml");
    let check = |text: String| {
        std::fs::write(&config, text).unwrap();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"));
        command
            .arg("--config")
            .arg(&config)
            .arg("check")
            .env_remove("LIANKONG_STORE_URL");
        command.current_dir(dir.path());
        command.output().unwrap()
    };
    let store = "[store]\nurl = \"sqlite:liankong.db\"\n";
    let good = check(format!(
        "{store}[api]\ntls_cert = \"cert.pem\"\ntls_key = {:?}\n",
        key.display().to_string()
    ));
    assert_eq!(
        good.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(
        String::from_utf8_lossy(&good.stdout).contains("\napi: 127.0.0.1:8470 (0 tokens, TLS)\n")
    );
    std::fs::write(dir.path().join("bad.pem"), "not a key").unwrap();
    let bad = check(format!(
        "{store}[api]\ntls_cert = {:?}\ntls_key = \"bad.pem\"\n",
        cert.display().to_string()
    ));
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains(&format!(
            "api.tls_key {}",
            dir.path().join("bad.pem").display()
        )),
        "{err}"
    );
    let half = check(format!("{store}[api]\ntls_cert = \"cert.pem\"\n"));
    assert_eq!(half.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&half.stderr).contains("api.tls_cert and api.tls_key go together")
    );
}

#[tokio::test]
async fn liankong_terminates_tls_itself_and_its_cookies_are_secure() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, pem) = test_cert(dir.path());
    let acceptor = liankong::api::acceptor(&cert, &key).unwrap();
    let c = console_with("", Some(acceptor)).await;
    assert!(c.base.starts_with("https://"));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let r = http
        .get(format!("{}/ui/signin", c.base))
        .send()
        .await
        .unwrap();
    let (_, header) = set_cookie(&r, "lk_signin").unwrap();
    assert!(header.ends_with("; Secure"), "{header}");
    let r = try_signin(&http, &c.base, &c.tokens[&Agency::Finance]).await;
    let (_, header) = set_cookie(&r, "lk_session").unwrap();
    assert_eq!(
        header.split("; ").skip(1).collect::<Vec<_>>(),
        ["Path=/ui", "HttpOnly", "SameSite=Strict", "Secure"]
    );
    // The API is served over the same TLS.
    let api = http
        .get(format!("{}/v1/alerts?rule=funds.idle", c.base))
        .bearer_auth(&c.tokens[&Agency::Finance])
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    assert_eq!(api.json::<Vec<Value>>().await.unwrap().len(), 1);
    // Plain HTTP to the TLS port gets no answer.
    let plain = http
        .get(c.base.replace("https://", "http://") + "/healthz")
        .send()
        .await;
    assert!(plain.is_err());

    // Without TLS the cookie is not Secure, unless a trusted proxy says
    // the client came over https.
    let plain = console_with("", None).await;
    let r = http
        .get(format!("{}/ui/signin", plain.base))
        .send()
        .await
        .unwrap();
    assert!(!set_cookie(&r, "lk_signin").unwrap().1.contains("Secure"));
    let r = http
        .get(format!("{}/ui/signin", plain.base))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(
        !set_cookie(&r, "lk_signin").unwrap().1.contains("Secure"),
        "an untrusted peer"
    );
    let proxied = console_with("trusted_proxies = [\"127.0.0.1\"]\n", None).await;
    let r = http
        .get(format!("{}/ui/signin", proxied.base))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(set_cookie(&r, "lk_signin").unwrap().1.ends_with("; Secure"));
    // Behind the proxy, failures count against the client's address.
    let try_from = |ip: &'static str, token: &'static str| {
        let http = http.clone();
        let base = proxied.base.clone();
        async move {
            let r = http.get(format!("{base}/ui/signin")).send().await.unwrap();
            let (cookie, _) = set_cookie(&r, "lk_signin").unwrap();
            let csrf = csrf_of(&r.text().await.unwrap());
            http.post(format!("{base}/ui/signin"))
                .header("cookie", format!("lk_signin={cookie}"))
                .header("x-forwarded-for", ip)
                .form(&[("csrf", csrf.as_str()), ("token", token)])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(try_from("198.51.100.1", "lk_wrong").await, 401);
    assert_eq!(try_from("198.51.100.1", "lk_wrong").await, 429);
    assert_eq!(
        try_from("198.51.100.2", "lk_wrong").await,
        401,
        "another client"
    );
}

// ---- the browser ----

/// Browser tests one at a time: each runs a Chromium, on two cores.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A WebDriver session of a headless Chromium, through `chromedriver`.
struct Browser {
    http: reqwest::Client,
    session: String,
    driver: std::process::Child,
}

fn chromedriver() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("chromedriver"))
        .find(|p| p.is_file())
}

fn chromium() -> Option<PathBuf> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// Where the screenshots go: `target/console-screenshots/`.
fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Browser {
    /// A browser, or `None` (said on stderr) where there is no chromedriver.
    async fn start(phone: bool) -> Option<Browser> {
        let (Some(driver), Some(binary)) = (chromedriver(), chromium()) else {
            eprintln!("SKIPPED console browser tests: chromedriver or chromium not found");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut options = json!({
            "binary": binary,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--lang=zh-CN", "--hide-scrollbars"],
        });
        if phone {
            options["mobileEmulation"] =
                json!({"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 1.0}});
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"));
        Some(Browser {
            http,
            session: format!("{base}/session/{session}"),
            driver: child,
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if v["value"].get("error").is_some() {
            panic!("WebDriver {path}: {v}");
        }
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Clicks what loads a new page (a link, a form's button), and waits
    /// until the new page has loaded.
    async fn click_to_load(&self, css: &str) {
        self.script("window.__lk_old_page = true;").await;
        self.click(css).await;
        for _ in 0..100 {
            let loaded = self
                .script("return window.__lk_old_page === undefined && document.readyState === 'complete';")
                .await;
            if loaded == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {css} loaded no page");
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Sets a field's value (date inputs read keys by locale).
    async fn set(&self, css: &str, value: &str) {
        let script = format!(
            "const e = document.querySelector({}); e.value = {}; return e.value;",
            json!(css),
            json!(value)
        );
        assert_eq!(self.script(&script).await, json!(value), "{css}");
    }

    async fn text(&self, css: &str) -> String {
        self.script(&format!(
            "return document.querySelector({}).innerText;",
            json!(css)
        ))
        .await
        .as_str()
        .unwrap()
        .to_owned()
    }

    async fn path(&self) -> String {
        self.script("return location.pathname + location.search;")
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::write(screenshots().join(format!("{name}.png")), bytes).unwrap();
    }

    async fn signin(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/ui/signin")).await;
        self.type_into("#token", token).await;
        self.click_to_load("main button[type=submit]").await;
        assert_eq!(self.path().await, "/ui/alerts");
    }

    async fn quit(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The texts of the DOM nodes `css` selects.
async fn texts(b: &Browser, css: &str) -> Vec<String> {
    let v = b
        .script(&format!(
            "return [...document.querySelectorAll({})].map(e => e.textContent);",
            json!(css)
        ))
        .await;
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn finance_signs_in_sees_its_alerts_acknowledges_silences_and_warns() {
    let _one = BROWSER.lock().await;
    let c = console().await;
    let Some(b) = Browser::start(false).await else {
        return;
    };
    b.goto(&format!("{}/", c.base)).await;
    assert_eq!(
        b.path().await,
        "/ui/signin",
        "/ leads to the console's sign-in"
    );
    b.screenshot("signin").await;
    b.signin(&c.base, &c.tokens[&Agency::Finance]).await;
    assert_eq!(b.text(".who span").await, "财政局 · 演示-finance");
    let expected = liankong::alert::visible(
        c.store.as_ref(),
        Agency::Finance,
        &liankong::alert::AlertFilter {
            state: Some(liankong::alert::StateFilter::Active),
            ..Default::default()
        },
        demo_now(),
    )
    .await
    .unwrap();
    let cards = texts(&b, "ol.cards li .summary").await;
    assert_eq!(cards.len(), expected.len());
    assert!(cards.contains(&expected[0].summary));
    let total: Vec<String> = texts(&b, "table.counts tfoot td").await;
    let critical = expected
        .iter()
        .filter(|a| a.severity.as_str() == "critical")
        .count();
    assert_eq!(
        total,
        [
            critical.to_string(),
            (expected.len() - critical).to_string()
        ]
    );
    b.screenshot("alerts").await;

    // Open the idle-funds alert from the filtered list, and acknowledge it.
    b.goto(&format!("{}/ui/alerts?rule=funds.idle", c.base))
        .await;
    assert_eq!(texts(&b, "ol.cards li").await.len(), 1);
    b.click_to_load("ol.cards li a.summary").await;
    let idle = c.alert(RuleId::Idle, None).await;
    assert_eq!(b.path().await, format!("/ui/alerts/{idle}"));
    b.set("form.ack input[name=note]", "已督办").await;
    b.click_to_load("form.ack button[type=submit]").await;
    assert_eq!(b.path().await, format!("/ui/alerts/{idle}?done=ack"));
    assert_eq!(b.text(".notice.done").await, "已确认该告警。");
    let a = c.store.get_alert(&idle).await.unwrap().unwrap();
    assert_eq!(a.acked_by.as_deref(), Some("finance:演示-finance"));
    assert_eq!(a.ack_note.as_deref(), Some("已督办"));

    // Warn about it: recorded with the person's token.
    b.script("document.querySelectorAll('details').forEach(d => d.open = true);")
        .await;
    b.set("form.warn input[name=deadline]", "2021-10-20").await;
    b.set("form.warn input[name=reason]", "资金闲置，限期说明")
        .await;
    b.click_to_load("form.warn button[type=submit]").await;
    assert!(b.text(".notice.done").await.starts_with("已记录行动"));
    let actions = c.store.actions(Some(2021)).await.unwrap();
    let warn = actions
        .iter()
        .find(|x| x.alert_id.as_deref() == Some(idle.as_str()))
        .expect("the warning");
    assert_eq!(
        (warn.agency, warn.token.as_str(), warn.by.as_str()),
        (Agency::Finance, "演示-finance", "演示-finance")
    );
    assert_eq!(warn.deadline, chrono::NaiveDate::from_ymd_opt(2021, 10, 20));
    let listed = texts(&b, "ul.actions li").await;
    assert!(
        listed
            .iter()
            .any(|l| l.contains("预警") && l.contains("答复期限 2021-10-20")),
        "{listed:?}"
    );
    b.screenshot("alert").await;

    // A freeze of a project frozen that day is refused as the API says it.
    let slow = c
        .alert(RuleId::Slow, Some(liankong::demo::planted::SLOW))
        .await;
    b.goto(&format!("{}/ui/alerts/{slow}", c.base)).await;
    b.script("document.querySelectorAll('details').forEach(d => d.open = true);")
        .await;
    b.set("form.freeze input[name=reason]", "再次冻结").await;
    b.click_to_load("form.freeze button[type=submit]").await;
    let refusal = b.text(".notice.refused").await;
    // The API's own answer to the same request.
    let api: Value = reqwest::Client::new()
        .post(format!("{}/v1/actions", c.base))
        .bearer_auth(&c.tokens[&Agency::Finance])
        .json(&json!({"kind": "freeze", "by": "演示-finance", "project": liankong::demo::planted::SLOW,
                      "year": 2021, "reason": "再次冻结"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api["reason"], "already_frozen");
    assert!(
        refusal.starts_with(&format!(
            "未执行（409）：{}",
            api["error"].as_str().unwrap()
        )),
        "{refusal}"
    );
    assert!(refusal.contains("原因代码 already_frozen"), "{refusal}");
    for (k, v) in api["figures"].as_object().unwrap() {
        let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        assert!(
            refusal.contains(k.as_str()) && refusal.contains(&v),
            "{k}: {v} in {refusal}"
        );
    }
    b.screenshot("alert-refused").await;
    assert_eq!(
        c.store.actions(Some(2021)).await.unwrap().len(),
        actions.len(),
        "nothing recorded"
    );

    // Silence the lump-sum rule for finance's deliveries.
    let lump = c.alert(RuleId::LumpSum, None).await;
    b.goto(&format!("{}/ui/alerts/{lump}", c.base)).await;
    b.script("document.querySelectorAll('details').forEach(d => d.open = true);")
        .await;
    b.set("form.silence input[name=until]", "2021-10-31").await;
    b.set("form.silence input[name=reason]", "已与单位沟通")
        .await;
    b.click_to_load("form.silence button[type=submit]").await;
    assert_eq!(b.path().await, format!("/ui/alerts/{lump}?done=silence"));
    let silences = c.store.silences().await.unwrap();
    assert_eq!(silences.len(), 1);
    let s = &silences[0];
    assert_eq!(
        (s.scope.as_str(), s.value.as_str(), s.agency),
        ("rule", "disbursement.lump_sum", Some(Agency::Finance))
    );
    assert_eq!(
        s.until,
        "2021-10-30T16:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(s.created_by, "finance:演示-finance");
    assert!(
        texts(&b, ".badges .badge")
            .await
            .contains(&"已静默".to_owned())
    );

    for (path, name, heading) in [
        ("/ui/adapters", "adapters", "数据源"),
        (
            "/ui/report?month=2021-09",
            "report",
            "2021 年 9 月预算执行月报",
        ),
        ("/ui/deliveries", "deliveries", "推送"),
    ] {
        b.goto(&format!("{}{path}", c.base)).await;
        assert_eq!(b.text("h1").await, heading);
        b.screenshot(name).await;
        if name == "report" {
            let chart = "return document.querySelectorAll('.report svg.chart g').length;";
            assert_eq!(b.script(chart).await, json!(14), "a bar per unit");
        }
    }
    b.quit().await;
}

/// What an injected element or script would leave behind.
const INJECTED: &str = "return { flag: window.__lk_xss === undefined ? null : String(window.__lk_xss), \
    scripts: document.scripts.length, img: document.querySelectorAll('img').length, \
    svg_onload: document.querySelectorAll('svg[onload]').length, \
    handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length };";

#[tokio::test]
async fn audit_does_not_see_the_referral_and_canaries_stay_text() {
    let _one = BROWSER.lock().await;
    let c = console().await;
    let Some(b) = Browser::start(false).await else {
        return;
    };
    b.signin(&c.base, &c.tokens[&Agency::Audit]).await;
    b.goto(&format!("{}/ui/alerts?state=all", c.base)).await;
    let rules = texts(&b, "ol.cards li .meta code").await;
    assert!(!rules.is_empty());
    assert!(
        !rules.contains(&"referral.freeze_breach".to_owned()),
        "{rules:?}"
    );
    let breach = c.alert(RuleId::FreezeBreach, None).await;
    b.goto(&format!("{}/ui/alerts/{breach}", c.base)).await;
    let hidden = (
        b.script("return document.title;").await,
        b.text("main").await,
    );
    b.goto(&format!("{}/ui/alerts/{}", c.base, "f".repeat(64)))
        .await;
    let none = (
        b.script("return document.title;").await,
        b.text("main").await,
    );
    assert_eq!(hidden, none);
    assert_eq!(none.1.lines().next(), Some("未找到告警"));

    // The canaries from the audit CSV: listed and shown as text.
    let clean = json!({"flag": null, "scripts": 0, "img": 0, "svg_onload": 0, "handlers": 0});
    b.goto(&format!("{}/ui/alerts?rule=link.unresolved_unit", c.base))
        .await;
    assert_eq!(b.script(INJECTED).await, clean);
    let body = b.text("main").await;
    for canary in [CANARY_SCRIPT, CANARY_IMG] {
        assert!(body.contains(canary), "{canary} not shown as text:\n{body}");
    }
    b.screenshot("alerts-canaries").await;
    let alerts = c.store.alerts().await.unwrap();
    for a in alerts.iter().filter(|a| a.rule == RuleId::UnresolvedUnit) {
        b.goto(&format!("{}/ui/alerts/{}", c.base, a.id)).await;
        assert_eq!(b.script(INJECTED).await, clean, "{}", a.id);
    }
    b.screenshot("alert-canary").await;
    // The finance unit's canary in the report's table and chart.
    b.goto(&format!("{}/ui/report?month=2021-09", c.base)).await;
    assert_eq!(b.script(INJECTED).await, clean);
    assert!(b.text(".report table").await.contains(CANARY_UNIT));
    b.quit().await;
}

#[tokio::test]
async fn no_page_scrolls_sideways_on_a_390_px_phone() {
    let _one = BROWSER.lock().await;
    let c = console().await;
    let Some(b) = Browser::start(true).await else {
        return;
    };
    let fits = "return [document.documentElement.scrollWidth, window.innerWidth];";
    b.goto(&format!("{}/ui/signin", c.base)).await;
    assert_eq!(b.script("return window.innerWidth;").await, json!(390));
    let [w, inner]: [u64; 2] = serde_json::from_value(b.script(fits).await).unwrap();
    assert!(w <= inner, "the sign-in page is {w} px wide");
    b.screenshot("phone-signin").await;
    let slow = c
        .alert(RuleId::Slow, Some(liankong::demo::planted::SLOW))
        .await;
    let canary = c
        .store
        .alerts()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.rule == RuleId::UnresolvedUnit)
        .unwrap()
        .id;
    for (agency, pages) in [
        (
            Agency::Finance,
            vec![
                ("/ui/alerts?state=all", "alerts"),
                (&*format!("/ui/alerts/{slow}"), "alert"),
                ("/ui/adapters", "adapters"),
                ("/ui/report?month=2021-09", "report"),
                ("/ui/deliveries", "deliveries"),
            ],
        ),
        (
            Agency::Discipline,
            vec![
                ("/ui/views", "views"),
                ("/ui/alerts?state=all", "alerts-discipline"),
            ],
        ),
        (
            Agency::Audit,
            vec![(&*format!("/ui/alerts/{canary}"), "alert-audit")],
        ),
    ] {
        b.signin(&c.base, &c.tokens[&agency]).await;
        for (path, name) in pages {
            b.goto(&format!("{}{path}", c.base)).await;
            b.script("document.querySelectorAll('details').forEach(d => d.open = true);")
                .await;
            let [w, inner]: [u64; 2] = serde_json::from_value(b.script(fits).await).unwrap();
            assert!(w <= inner, "{path} is {w} px wide on a {inner} px screen");
            b.screenshot(&format!("phone-{name}")).await;
        }
        b.click_to_load(".who button").await;
        assert_eq!(b.path().await, "/ui/signin");
    }
    b.quit().await;
}
