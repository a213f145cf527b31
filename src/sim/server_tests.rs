//! Tests of the running simulator as a client sees it: the three servers on
//! loopback through reqwest, the files in its directory, faults and the
//! request log.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use super::*;
use crate::model::{Collection, Payment, PaymentKind, Record};
use crate::money::Fen;

async fn start() -> (Simulator, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions::new(GenParams::small(), dir.path()))
        .await
        .unwrap();
    (sim, dir)
}

async fn token(sim: &Simulator) -> String {
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/oauth/token", sim.finance_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CREDENTIALS.finance_client_id),
            ("client_secret", CREDENTIALS.finance_client_secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 3600);
    answer["access_token"].as_str().unwrap().to_owned()
}

async fn finance_get(sim: &Simulator, token: &str, path_and_query: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path_and_query}", sim.finance_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Every record of a finance collection, page by page, from `since`.
async fn pull(
    sim: &Simulator,
    token: &str,
    collection: &str,
    since: Option<&str>,
    limit: usize,
) -> Vec<Value> {
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(s) = since {
            query.push(("updated_since", s.to_owned()));
        }
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let page: Value = client
            .get(format!("{}/api/v1/{collection}", sim.finance_url()))
            .bearer_auth(token)
            .query(&query)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        out.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

fn stamp(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v["updated_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test]
async fn finance_serves_every_collection_in_pages_ordered_by_updated_at() {
    let (sim, _dir) = start().await;
    let token = token(&sim).await;
    let data = sim.data().read().dataset().clone();

    let units = pull(&sim, &token, "units", None, 5).await;
    assert_eq!(units.len(), data.units.len());
    assert_eq!(units[0]["unit_code"], data.units[0].unit_code.as_str());
    assert!(units.windows(2).all(|w| stamp(&w[0]) <= stamp(&w[1])));
    assert!(units[0]["updated_at"].as_str().unwrap().ends_with("+08:00"));
    let keys: Vec<_> = units[0].as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        ["parent_code", "unit_code", "unit_name", "updated_at"]
    );

    let payments = pull(&sim, &token, "payments", None, 1000).await;
    assert_eq!(payments.len(), data.payments.len());
    let p = &payments[7];
    let q = &data.payments[7];
    assert_eq!(p["payment_id"], q.payment_id.as_str());
    assert_eq!(p["amount"], q.amount.to_yuan().as_str());
    assert_eq!(
        p["paid_on"],
        q.paid_on.format("%Y-%m-%d").to_string().as_str()
    );
    assert_eq!(p["voided"], false);
    assert!(
        p["amount"]
            .as_str()
            .unwrap()
            .split_once('.')
            .unwrap()
            .1
            .len()
            == 2
    );

    for (name, c) in [
        ("projects", Collection::Projects),
        ("quotas", Collection::Quotas),
        ("targets", Collection::Targets),
        ("evaluations", Collection::Evaluations),
        ("rectifications", Collection::Rectifications),
    ] {
        let rows = pull(&sim, &token, name, None, 37).await;
        assert_eq!(rows.len(), data.len(c), "{name}");
    }
    let projects = pull(&sim, &token, "projects", None, 1000).await;
    assert_eq!(projects[0]["deleted"], false);
    assert!(projects[0]["category"].is_string());
    let evaluations = pull(&sim, &token, "evaluations", None, 1000).await;
    assert!(evaluations.iter().all(|e| e["score"].is_number()));
    assert!(
        evaluations
            .iter()
            .all(|e| ["优", "良", "中", "差"].contains(&e["grade"].as_str().unwrap()))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn finance_increments_see_changes_and_deletions() {
    let (sim, _dir) = start().await;
    let token = token(&sim).await;
    let all = pull(&sim, &token, "payments", None, 1000).await;

    // updated_since is inclusive.
    let mid = &all[all.len() / 2];
    let since = mid["updated_at"].as_str().unwrap().to_owned();
    let tail = pull(&sim, &token, "payments", Some(&since), 100).await;
    assert_eq!(tail[0]["updated_at"], since.as_str());
    assert!(tail.iter().all(|p| stamp(p) >= stamp(mid)));
    let last = all.last().unwrap()["updated_at"]
        .as_str()
        .unwrap()
        .to_owned();

    // A new payment, a voided one and a deleted project appear after `last`.
    let later = stamp(all.last().unwrap()) + TimeDelta::hours(1);
    let template = sim.data().read().dataset().payments[0].clone();
    sim.data().upsert(Record::Payment(Payment {
        payment_id: "ZF-PLANTED-1".to_owned(),
        amount: Fen(1_234_567),
        kind: PaymentKind::Expenditure,
        updated_at: later,
        ..template
    }));
    let voided = all[3]["payment_id"].as_str().unwrap().to_owned();
    assert!(sim.data().delete(Collection::Payments, &voided));
    assert!(!sim.data().delete(Collection::Payments, "no-such-payment"));
    let changed = pull(&sim, &token, "payments", Some(&last), 100).await;
    let ids: Vec<&str> = changed
        .iter()
        .map(|p| p["payment_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"ZF-PLANTED-1"));
    let planted = changed
        .iter()
        .find(|p| p["payment_id"] == "ZF-PLANTED-1")
        .unwrap();
    assert_eq!(planted["amount"], "12345.67");
    let v = changed
        .iter()
        .find(|p| p["payment_id"] == voided.as_str())
        .unwrap();
    assert_eq!(v["voided"], true);
    assert!(stamp(v) > stamp(planted), "a deletion is the latest change");
    assert_eq!(
        sim.data().records(Collection::Payments).len(),
        all.len(),
        "one added, one voided"
    );

    let project = sim.data().read().dataset().projects[0].project_code.clone();
    sim.data().delete(Collection::Projects, project.as_str());
    let projects = pull(&sim, &token, "projects", None, 1000).await;
    let p = projects.last().unwrap();
    assert_eq!(p["project_code"], project.as_str());
    assert_eq!(p["deleted"], true);
    sim.shutdown().await;
}

#[tokio::test]
async fn finance_refuses_bad_tokens_and_bad_parameters() {
    let (sim, _dir) = start().await;
    let client = reqwest::Client::new();
    let no_token = client
        .get(format!("{}/api/v1/units", sim.finance_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    assert_eq!(
        finance_get(&sim, "forged", "/api/v1/units").await.status(),
        401
    );
    let wrong_secret = client
        .post(format!("{}/oauth/token", sim.finance_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CREDENTIALS.finance_client_id),
            ("client_secret", "guess"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_secret.status(), 401);

    let token = token(&sim).await;
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=ten",
        "cursor=xyz",
        "updated_since=2021-06-30",
    ] {
        let r = finance_get(&sim, &token, &format!("/api/v1/units?{bad}")).await;
        assert_eq!(r.status(), 400, "{bad}");
    }
    // An unencoded '+' arrives as a space: a client bug the server reports.
    let r = finance_get(
        &sim,
        &token,
        "/api/v1/units?updated_since=2021-06-30T16:20:00+08:00",
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = finance_get(
        &sim,
        &token,
        "/api/v1/units?updated_since=2021-06-30T16:20:00%2B08:00&limit=1000",
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        finance_get(&sim, &token, "/api/v1/bribes").await.status(),
        404
    );

    // Tokens die early when the fault says so; a new one works.
    sim.faults().set_token_ttl(Some(Duration::from_millis(50)));
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(
        finance_get(&sim, &token, "/api/v1/units").await.status(),
        401
    );
    // A new one works (with a lifetime that a loaded machine cannot outrun
    // between issuing and using it).
    sim.faults().set_token_ttl(Some(Duration::from_secs(30)));
    let fresh = self::token(&sim).await;
    assert_eq!(
        finance_get(&sim, &fresh, "/api/v1/units").await.status(),
        200
    );
    sim.shutdown().await;
}

async fn npc_page(sim: &Simulator, collection: &str, page: u64, size: u64) -> Value {
    reqwest::Client::new()
        .get(format!("{}/npc/{collection}", sim.npc_url()))
        .header("X-Api-Key", CREDENTIALS.npc_api_key)
        .query(&[("page", page), ("page_size", size)])
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn npc_pages_full_snapshots_in_its_own_dialect() {
    let (sim, _dir) = start().await;
    let data = sim.data().read().dataset().clone();
    let first = npc_page(&sim, "budgets", 1, 7).await;
    assert_eq!(first["total"], data.budgets.len());
    assert_eq!(first["page"], 1);
    let row = &first["rows"][0];
    let b = &data.budgets[0];
    let code = b.project_code.as_str();
    assert_eq!(
        row["项目编码"],
        format!("{}-{}-{}", &code[..6], &code[6..10], &code[10..]).as_str()
    );
    assert_eq!(row["批准数"], b.approved.to_wan().as_str());
    assert_eq!(row["调整数"], b.adjustment.to_wan().as_str());
    assert_eq!(row["年度"], b.year);
    assert_eq!(row["批准日期"].as_str().unwrap().len(), 10);
    let updated = row["更新时间"].as_str().unwrap();
    assert_eq!(updated.len(), 19);
    assert_eq!(&updated[10..11], " ");
    assert!(
        row["批准数"]
            .as_str()
            .unwrap()
            .split_once('.')
            .unwrap()
            .1
            .len()
            == 6,
        "万元 with 6 places"
    );

    // Paging reaches every row, and a page past the end is empty.
    let size = 500;
    let pages = data.execution.len().div_ceil(size);
    let mut rows = 0;
    for page in 1..=pages as u64 {
        rows += npc_page(&sim, "execution", page, size as u64).await["rows"]
            .as_array()
            .unwrap()
            .len();
    }
    assert_eq!(rows, data.execution.len());
    let past = npc_page(&sim, "execution", pages as u64 + 1, size as u64).await;
    assert_eq!(past["rows"], Value::Array(Vec::new()));
    assert_eq!(past["total"], data.execution.len());
    let e = &npc_page(&sim, "execution", 1, 1).await["rows"][0];
    assert_eq!(
        e["累计支出"],
        data.execution[0].cumulative.to_wan().as_str()
    );
    assert!(e["截至日期"].is_string());

    let client = reqwest::Client::new();
    let wrong = client
        .get(format!("{}/npc/budgets", sim.npc_url()))
        .header("X-Api-Key", "guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let too_big = client
        .get(format!("{}/npc/budgets?page_size=501", sim.npc_url()))
        .header("X-Api-Key", CREDENTIALS.npc_api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 400);
    sim.shutdown().await;
}

fn discipline_client(ca_pem: &str, identity: Option<String>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()]);
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn discipline_requires_the_commission_client_certificate() {
    let (sim, _dir) = start().await;
    let url = format!("{}/v1/referrals", sim.discipline_url());
    let pki = sim.pki();

    let anonymous = discipline_client(&pki.ca_cert_pem, None);
    assert!(
        anonymous
            .get(&url)
            .bearer_auth(CREDENTIALS.discipline_token)
            .send()
            .await
            .is_err(),
        "no client certificate, no connection"
    );
    let stranger = Pki::generate().unwrap();
    let impostor = discipline_client(&pki.ca_cert_pem, Some(stranger.client_identity_pem()));
    assert!(
        impostor
            .get(&url)
            .bearer_auth(CREDENTIALS.discipline_token)
            .send()
            .await
            .is_err(),
        "a certificate from another CA is refused"
    );

    let daemon = discipline_client(&pki.ca_cert_pem, Some(pki.client_identity_pem()));
    let no_token = daemon.get(&url).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    let all: Value = daemon
        .get(&url)
        .bearer_auth(CREDENTIALS.discipline_token)
        .query(&[("limit", 200)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let referrals = sim.data().read().dataset().referrals.clone();
    assert_eq!(all["items"].as_array().unwrap().len(), referrals.len());
    assert_eq!(all["has_more"], false);
    let item = &all["items"][0];
    assert_eq!(item["referral_id"], referrals[0].referral_id.as_str());
    for field in [
        "unit_code",
        "project_code",
        "received_on",
        "status",
        "freeze",
        "freeze_from",
        "origin",
        "changed_at",
    ] {
        assert!(item.get(field).is_some(), "{field}");
    }

    // Offset paging, and changed_after is strict.
    let first: Value = daemon
        .get(&url)
        .bearer_auth(CREDENTIALS.discipline_token)
        .query(&[("offset", "0"), ("limit", "1")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["has_more"], true);
    let after = item["changed_at"].as_str().unwrap().to_owned();
    let later: Value = daemon
        .get(&url)
        .bearer_auth(CREDENTIALS.discipline_token)
        .query(&[("changed_after", after.as_str()), ("limit", "200")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        later["items"].as_array().unwrap().len(),
        referrals
            .iter()
            .filter(|r| r.changed_at > referrals[0].changed_at)
            .count()
    );

    // The files a daemon config points at.
    for name in ["ca.pem", "client.pem", "client.key"] {
        assert!(sim.pki_dir().join(name).is_file(), "{name}");
    }
    assert_eq!(
        std::fs::read_to_string(sim.pki_dir().join("ca.pem")).unwrap(),
        pki.ca_cert_pem
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(sim.pki_dir().join("client.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_are_injected_and_every_request_is_logged() {
    let (sim, _dir) = start().await;
    let token = token(&sim).await;
    sim.clear_requests();

    sim.faults().set_error_rate(1.0);
    assert_eq!(
        finance_get(&sim, &token, "/api/v1/units").await.status(),
        503
    );
    sim.faults().clear();
    sim.faults().set_rate_limit(1.0, 7);
    let limited = finance_get(&sim, &token, "/api/v1/units").await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "7");
    sim.faults().clear();
    sim.faults().set_truncate_rate(1.0);
    let cut = finance_get(&sim, &token, "/api/v1/units?limit=3").await;
    assert_eq!(cut.status(), 200);
    let body = cut.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
    sim.faults().clear();
    sim.faults().add_always_fail("limit=13");
    assert_eq!(
        finance_get(&sim, &token, "/api/v1/units?limit=13")
            .await
            .status(),
        503
    );
    assert_eq!(
        finance_get(&sim, &token, "/api/v1/units?limit=12")
            .await
            .status(),
        200
    );
    sim.faults().clear();
    sim.faults().set_latency(Duration::from_millis(120));
    let started = std::time::Instant::now();
    npc_page(&sim, "budgets", 1, 1).await;
    assert!(started.elapsed() >= Duration::from_millis(120));
    sim.faults().clear();

    let log = sim.requests();
    let statuses: Vec<(&str, u16)> = log.iter().map(|r| (r.system, r.status)).collect();
    assert_eq!(
        statuses,
        [
            ("finance", 503),
            ("finance", 429),
            ("finance", 200),
            ("finance", 503),
            ("finance", 200),
            ("npc", 200)
        ]
    );
    assert_eq!(log[3].path, "/api/v1/units");
    assert_eq!(log[3].query, "limit=13");
    assert_eq!(log[3].method, "GET");
    assert_eq!(log[5].query, "page=1&page_size=1");
    sim.clear_requests();
    assert!(sim.requests().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn the_exchange_files_are_written_at_start_and_on_demand() {
    let (sim, _dir) = start().await;
    let audit = sim.audit_dir().join("audit_findings_20210930.csv");
    let bytes = std::fs::read(&audit).unwrap();
    let (text, _, bad) = encoding_rs::GBK.decode(&bytes);
    assert!(!bad);
    let findings = sim.data().read().dataset().findings.len();
    assert_eq!(text.trim_end().split("\r\n").count(), findings + 1);
    for q in 1..=3 {
        assert!(
            sim.orgdept_dir()
                .join(format!("kaoping_2021Q{q}.xlsx"))
                .is_file()
        );
    }
    assert!(!sim.orgdept_dir().join("kaoping_2021Q4.xlsx").exists());

    let gone = sim.data().read().dataset().findings[0].finding_no.clone();
    sim.data().delete(Collection::Findings, &gone);
    sim.write_files().unwrap();
    let bytes = std::fs::read(&audit).unwrap();
    let (text, _, _) = encoding_rs::GBK.decode(&bytes);
    assert!(!text.contains(gone.as_str()));

    let old = sim
        .write_audit_file("audit_findings_20210630.csv", &[])
        .unwrap();
    assert!(old.is_file());
    let part = sim
        .write_partial_audit_file("audit_findings_20211031.csv", &[])
        .unwrap();
    assert!(part.is_file());
    sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_the_ports() {
    let (sim, _dir) = start().await;
    let url = sim.npc_url();
    sim.shutdown().await;
    let refused = reqwest::Client::new()
        .get(format!("{url}/npc/budgets"))
        .send()
        .await;
    assert!(refused.is_err());
}

/// Start-up and paging at benchmark scale.
/// `cargo test --release --lib sim::server_tests::benchmark_start -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn benchmark_start() {
    let dir = tempfile::tempdir().unwrap();
    let params = GenParams {
        units: 10_000,
        projects: 100_000,
        as_of: chrono::NaiveDate::from_ymd_opt(2021, 12, 31).unwrap(),
        ..GenParams::small()
    };
    let started = std::time::Instant::now();
    let sim = Simulator::start(SimOptions::new(params, dir.path()))
        .await
        .unwrap();
    println!("started in {:?}", started.elapsed());
    let token = token(&sim).await;
    let started = std::time::Instant::now();
    let rows = pull(&sim, &token, "payments", None, 1000).await;
    println!("pulled {} payments in {:?}", rows.len(), started.elapsed());
    sim.shutdown().await;
}
