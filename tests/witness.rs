//! Witnessed history: the signing key, checkpoints issued, served and
//! delivered, `verify --checkpoint` against a rewritten store, a restored
//! store noticed, and proofs checked by the verifier agencies run without
//! liankong (deploy/verify-checkpoint.py).

mod support;

use std::path::Path;

fn liankong(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"))
        .args(args)
        .current_dir(dir)
        .env_remove("LIANKONG_CONFIG")
        .env_remove("LIANKONG_STORE_URL")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn keygen_writes_a_private_key_once_and_key_prints_only_its_public_half() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = liankong(dir.path(), &["checkpoint", "keygen", "k.pem"]);
    assert_eq!(code, Some(0), "{err}");
    let private = std::fs::read_to_string(dir.path().join("k.pem")).unwrap();
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let mode = std::fs::metadata(dir.path().join("k.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let key = liankong::witness::SigningKey::from_pem(&private)
        .unwrap()
        .public();
    assert!(out.contains(&format!("key_id {}\n", key.key_id())), "{out}");
    assert!(out.contains(&key.pem()), "{out}");
    assert!(out.contains("[witness]\nkey = \"file:k.pem\""), "{out}");

    // Never over an existing key.
    let (code, _, err) = liankong(dir.path(), &["checkpoint", "keygen", "k.pem"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cannot write a new key to k.pem"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("k.pem")).unwrap(),
        private
    );

    let retired = liankong::witness::SigningKey::from_pem(
        &liankong::witness::SigningKey::generate_pem().unwrap(),
    )
    .unwrap()
    .public();
    std::fs::write(
        dir.path().join("c.toml"),
        format!(
            "[witness]\nkey = \"file:k.pem\"\nretired_keys = [{:?}]\n",
            retired.base64()
        ),
    )
    .unwrap();
    let (code, out, err) = liankong(dir.path(), &["--config", "c.toml", "checkpoint", "key"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        format!(
            "key_id {}\nbase64 {}\n{}retired key_id {} base64 {}\n",
            key.key_id(),
            key.base64(),
            key.pem(),
            retired.key_id(),
            retired.base64()
        )
    );
    let secret_line = private.lines().nth(1).unwrap();
    assert!(!out.contains(secret_line) && !err.contains(secret_line));

    let (code, out, err) = liankong(dir.path(), &["--config", "c.toml", "check"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(&format!(
            "\nwitness: checkpoints signed by key {} at most every 3600 s (1 retired keys); newest kept in last-checkpoint.json\n",
            key.key_id()
        )),
        "{out}"
    );
    std::fs::write(
        dir.path().join("bad.toml"),
        "[witness]\nkey = \"file:c.toml\"\n",
    )
    .unwrap();
    let (code, _, err) = liankong(dir.path(), &["--config", "bad.toml", "check"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("c.toml: not a PKCS#8 PEM private key"),
        "{err}"
    );

    std::fs::write(dir.path().join("none.toml"), "").unwrap();
    let (code, _, err) = liankong(dir.path(), &["--config", "none.toml", "checkpoint", "key"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no witness.key in the config"), "{err}");
}

use std::sync::Arc;

use liankong::model::{Agency, Collection, PaymentKind};
use liankong::store::{Batch, Item, RunId, Store};
use liankong::witness::{Audience, Checkpoint, Issued, SigningKey, Witness, issue_due};
use serde_json::Value;
use support::*;

const P1: &str = "3701002021000123";

const SECRETS: [(Agency, &str); 3] = [
    (Agency::Finance, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    (
        Agency::Npc,
        "whsec_bnBjLW5wYy1ucGMtbnBjLW5wYy1ucGMtbnBjIQ==",
    ),
    (
        Agency::Discipline,
        "whsec_ZGlzY2lwbGluZS1kaXNjaXBsaW5lLWRpc2M=",
    ),
];

/// A signer with a new key, checkpoints at most hourly.
fn new_witness(dir: &Path) -> Witness {
    let key = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
    std::fs::write(dir.join("public.pem"), key.public().pem()).unwrap();
    Witness {
        keys: vec![key.public()],
        key,
        interval: std::time::Duration::from_secs(3600),
        state_file: dir.join("last-checkpoint.json"),
    }
}

async fn write(store: &dyn Store, collection: Collection, when: &str, items: Vec<Item>) {
    let mut b = Batch::new(collection, RunId(1), at(when));
    b.items = items;
    store.apply(&b).await.unwrap();
}

fn pay(id: &str, fen: i64) -> Item {
    Item::from(payment(id, P1, PaymentKind::Allocation, fen, "2021-03-01"))
}

/// Runs deploy/verify-checkpoint.py in `dir`.
fn script(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/verify-checkpoint.py"
        ))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("python3 runs (CI installs it and the cryptography package)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[tokio::test]
async fn checkpoints_come_at_most_once_an_interval_and_every_subscriber_gets_each_once() {
    on_both(|t| async move {
        let dir = tempfile::tempdir().unwrap();
        let witness = new_witness(dir.path());
        let mut receivers = Vec::new();
        let mut subs = Vec::new();
        for (agency, secret) in SECRETS {
            let r = Receiver::start().await;
            subs.push(liankong::deliver::Subscriber::with_keys(
                &format!("{agency}-hook"),
                agency,
                &r.url,
                vec![liankong::deliver::signature::decode_secret(secret).unwrap()],
            ));
            receivers.push((agency, secret, r));
        }
        let store = t.store.as_ref();
        let issue = |now: &str| issue_due(store, &witness, &subs, at(now));

        // Nothing written yet: nothing to witness.
        assert_eq!(
            issue("2021-07-01T00:00:00Z").await.unwrap(),
            Issued::Unchanged
        );
        write(
            store,
            Collection::Payments,
            "2021-07-01T00:00:00Z",
            vec![pay("PAY-1", 100), pay("PAY-2", 50)],
        )
        .await;
        write(
            store,
            Collection::Referrals,
            "2021-07-01T00:00:00Z",
            vec![Item::from(referral("XS-1", "370101", Some(P1)))],
        )
        .await;
        assert_eq!(
            issue("2021-07-01T01:00:00Z").await.unwrap(),
            Issued::Issued {
                id: 1,
                streams: 2,
                events: 3
            }
        );
        // Nothing new since: none; new history within the hour waits for its end.
        assert_eq!(
            issue("2021-07-01T01:05:00Z").await.unwrap(),
            Issued::Unchanged
        );
        write(
            store,
            Collection::Payments,
            "2021-07-01T01:10:00Z",
            vec![pay("PAY-1", 101)],
        )
        .await;
        write(
            store,
            Collection::Payments,
            "2021-07-01T01:20:00Z",
            vec![pay("PAY-3", 7)],
        )
        .await;
        assert_eq!(
            issue("2021-07-01T01:30:00Z").await.unwrap(),
            Issued::NotDue {
                due_at: at("2021-07-01T02:00:00Z")
            }
        );
        assert_eq!(
            issue("2021-07-01T02:00:00Z").await.unwrap(),
            Issued::Issued {
                id: 2,
                streams: 2,
                events: 3
            }
        );

        // Stored for both audiences; discipline's stream only in discipline's.
        let all = t.store.checkpoints(Audience::All, None, 10).await.unwrap();
        let shared = t
            .store
            .checkpoints(Audience::Shared, None, 10)
            .await
            .unwrap();
        assert_eq!(
            all.iter().map(|c| c.checkpoint_id).collect::<Vec<_>>(),
            [2, 1]
        );
        assert_eq!(
            shared.iter().map(|c| c.checkpoint_id).collect::<Vec<_>>(),
            [2, 1]
        );
        let names = |c: &Checkpoint| {
            c.streams
                .iter()
                .map(|s| s.stream.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&all[0]), ["discipline.referrals", "finance.payments"]);
        assert_eq!(names(&shared[0]), ["finance.payments"]);
        let payments = all[0].stream("finance.payments").unwrap();
        assert_eq!((payments.batches, payments.versions), (3, 4));
        assert_eq!(shared[0].stream("finance.payments"), Some(payments));
        for c in all.iter().chain(&shared) {
            assert_eq!(c.check(&witness.keys), Ok(()));
        }

        // Delivered, each subscriber each checkpoint once, in order.
        let deliverer =
            liankong::deliver::Deliverer::new(subs.clone(), &Default::default()).unwrap();
        let clock = liankong::clock::FixedClock(at("2021-07-01T02:00:05Z"));
        for _ in 0..3 {
            deliverer.deliver_due(store, &clock).await.unwrap();
        }
        for (agency, secret, r) in &receivers {
            let got = r.received();
            assert_eq!(got.len(), 2, "{agency}");
            let mut ids: Vec<&str> = got.iter().map(|g| g.id.as_str()).collect();
            ids.dedup();
            assert_eq!(ids.len(), 2, "{agency}: one webhook-id per checkpoint");
            let mut kept = Vec::new();
            for g in &got {
                verify_webhook(secret, g, clock.0).unwrap();
                let body: Value = serde_json::from_str(&g.body).unwrap();
                assert_eq!(body["type"], "store.checkpoint");
                kept.push(body["data"].clone());
            }
            assert_eq!(
                kept.iter()
                    .map(|k| k["checkpoint_id"].as_i64().unwrap())
                    .collect::<Vec<_>>(),
                [1, 2]
            );
            let want = if *agency == Agency::Discipline {
                "all"
            } else {
                "shared"
            };
            assert!(kept.iter().all(|k| k["audience"] == want), "{agency}");
            assert_eq!(
                g_contains(&got, "discipline.referrals"),
                *agency == Agency::Discipline,
                "{agency}"
            );
            // The agency checks what it kept with the pinned public key alone.
            let file = dir.path().join(format!("{agency}.jsonl"));
            std::fs::write(
                &file,
                kept.iter().map(|k| format!("{k}\n")).collect::<String>(),
            )
            .unwrap();
            let (code, out) = script(dir.path(), &["--key", "public.pem", file.to_str().unwrap()]);
            assert_eq!(
                (code, out.as_str()),
                (Some(0), "ok: 2 checkpoint(s)\n"),
                "{agency}"
            );
        }
        assert_eq!(
            deliverer
                .deliver_due(store, &clock)
                .await
                .unwrap()
                .attempted,
            0
        );
    })
    .await;
}

fn g_contains(got: &[Received], text: &str) -> bool {
    got.iter().any(|g| g.body.contains(text))
}

#[tokio::test]
async fn the_api_serves_each_agency_its_audience_s_checkpoints_newest_first() {
    on_both(|t| async move {
        let dir = tempfile::tempdir().unwrap();
        let witness = new_witness(dir.path());
        let store = t.store.as_ref();
        write(
            store,
            Collection::Payments,
            "2021-07-01T00:00:00Z",
            vec![pay("PAY-1", 100)],
        )
        .await;
        write(
            store,
            Collection::Referrals,
            "2021-07-01T00:00:00Z",
            vec![Item::from(referral("XS-1", "370101", Some(P1)))],
        )
        .await;
        issue_due(store, &witness, &[], at("2021-07-01T01:00:00Z"))
            .await
            .unwrap();
        write(
            store,
            Collection::Payments,
            "2021-07-01T02:00:00Z",
            vec![pay("PAY-2", 100)],
        )
        .await;
        issue_due(store, &witness, &[], at("2021-07-01T02:00:00Z"))
            .await
            .unwrap();

        let mut text = String::from("[api]\nlisten = \"127.0.0.1:0\"\n");
        for (name, agency) in [("fin-token", "finance"), ("dis-token", "discipline")] {
            text.push_str(&format!(
                "[[api.tokens]]\nname = \"{name}\"\nagency = \"{agency}\"\nsha256 = \"{}\"\n",
                liankong::api::token_hash(name)
            ));
        }
        let config = liankong::config::Config::parse(&text).unwrap();
        let running = liankong::api::RunningConfig::new(Arc::new(config), &[]);
        let (_tx, rx) = tokio::sync::watch::channel(Arc::new(running));
        let state = liankong::api::ApiState {
            store: t.store.clone(),
            config: rx,
            metrics: Default::default(),
            clock: Arc::new(liankong::clock::FixedClock(at("2021-07-01T03:00:00Z"))),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(liankong::api::serve(listener, state, stop.clone()));
        let http = reqwest::Client::new();
        let get =
            |path: &str, token: &str| http.get(format!("{base}{path}")).bearer_auth(token).send();

        let finance: Vec<Checkpoint> = get("/v1/checkpoints", "fin-token")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            finance
                .iter()
                .map(|c| (c.checkpoint_id, c.audience))
                .collect::<Vec<_>>(),
            [(2, Audience::Shared), (1, Audience::Shared)]
        );
        let text = get("/v1/checkpoints", "fin-token")
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!text.contains("discipline"), "{text}");
        let discipline: Vec<Checkpoint> = get("/v1/checkpoints?limit=1", "dis-token")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(discipline.len(), 1);
        assert_eq!(
            (discipline[0].checkpoint_id, discipline[0].audience),
            (2, Audience::All)
        );
        assert!(discipline[0].stream("discipline.referrals").is_some());
        let one: Checkpoint = get("/v1/checkpoints/1", "fin-token")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(one, finance[1]);
        let by_id: Vec<Checkpoint> = get("/v1/checkpoints?id=1", "dis-token")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!((by_id.len(), by_id[0].audience), (1, Audience::All));
        let older: Vec<Checkpoint> = get("/v1/checkpoints?before=2", "fin-token")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(older, finance[1..]);
        assert_eq!(
            get("/v1/checkpoints/3", "fin-token")
                .await
                .unwrap()
                .status(),
            404
        );
        assert_eq!(
            http.get(format!("{base}/v1/checkpoints"))
                .send()
                .await
                .unwrap()
                .status(),
            401
        );
        stop.cancel();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test]
async fn two_postgresql_replicas_issue_one_checkpoint_at_a_time_in_one_sequence() {
    if skip_pg() {
        eprintln!("SKIPPED PostgreSQL: {SKIP_PG_ENV}=1");
        return;
    }
    let (name, url) = create_pg_database().await;
    let url = liankong::store::StoreUrl::new(url);
    let a = liankong::store::open(&url).await.unwrap();
    let b = liankong::store::open(&url).await.unwrap();
    let (ma, mb) = tokio::join!(a.migrate(), b.migrate());
    ma.unwrap();
    mb.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let witness = new_witness(dir.path());
    let start = at("2021-07-01T00:00:00Z");
    for round in 1..=6i64 {
        let now = start + chrono::Duration::hours(round);
        let writer = if round % 2 == 0 { &a } else { &b };
        write(
            writer.as_ref(),
            Collection::Payments,
            &liankong::clock::rfc3339(now),
            vec![pay(&format!("PAY-{round}"), round)],
        )
        .await;
        // Both replicas, twice each, at the same moment.
        let (r1, r2, r3, r4) = tokio::join!(
            issue_due(a.as_ref(), &witness, &[], now),
            issue_due(b.as_ref(), &witness, &[], now),
            issue_due(a.as_ref(), &witness, &[], now),
            issue_due(b.as_ref(), &witness, &[], now),
        );
        let results: Vec<Issued> = [r1, r2, r3, r4].into_iter().map(|r| r.unwrap()).collect();
        let issued: Vec<&Issued> = results
            .iter()
            .filter(|r| matches!(r, Issued::Issued { .. }))
            .collect();
        assert_eq!(issued.len(), 1, "round {round}: {results:?}");
        assert!(
            matches!(issued[0], Issued::Issued { id, .. } if *id == round),
            "{results:?}"
        );
        assert_eq!(
            results.iter().filter(|r| **r == Issued::Unchanged).count(),
            3,
            "{results:?}"
        );
    }
    for audience in [Audience::All, Audience::Shared] {
        let ids: Vec<i64> = a
            .checkpoints(audience, None, 100)
            .await
            .unwrap()
            .iter()
            .map(|c| c.checkpoint_id)
            .collect();
        assert_eq!(ids, [6, 5, 4, 3, 2, 1]);
    }
    a.close().await;
    b.close().await;
    drop_pg_database(&name).await;
}

/// A store of the same backend as `t`, fresh: its URL, and the PostgreSQL
/// database to drop after.
async fn another_store(t: &TestStore, dir: &Path) -> (liankong::store::StoreUrl, Option<String>) {
    if t.backend == "sqlite" {
        let url = format!("sqlite:{}", dir.join("rebuilt.db").display());
        (liankong::store::StoreUrl::new(url), None)
    } else {
        let (name, url) = create_pg_database().await;
        (liankong::store::StoreUrl::new(url), Some(name))
    }
}

/// `liankong verify [--checkpoint FILE…]` on the store at `url`, with the
/// config in `dir`.
fn verify(dir: &Path, url: &liankong::store::StoreUrl, files: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["--config", "liankong.toml", "verify"];
    if !files.is_empty() {
        args.push("--checkpoint");
        args.extend(files);
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"))
        .args(&args)
        .current_dir(dir)
        .env("LIANKONG_STORE_URL", url.expose())
        .output()
        .unwrap();
    // What it found is on stdout; logs (PostgreSQL's notices) on stderr.
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(" ERROR "),
        "{out:?}"
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A key in `dir`, and the config naming it.
fn keyed_config(dir: &Path) -> Witness {
    std::fs::write(dir.join("key.pem"), SigningKey::generate_pem().unwrap()).unwrap();
    std::fs::write(
        dir.join("liankong.toml"),
        "[witness]\nkey = \"file:key.pem\"\nstate_file = \"state.json\"\n",
    )
    .unwrap();
    let c = liankong::witness::WitnessConfig {
        key: Some(liankong::config::SecretRef::File(dir.join("key.pem"))),
        state_file: dir.join("state.json"),
        ..Default::default()
    };
    Witness::load(&c).unwrap().unwrap()
}

fn keep(dir: &Path, name: &str, checkpoints: &[Checkpoint]) {
    std::fs::write(dir.join(name), serde_json::to_string(checkpoints).unwrap()).unwrap();
}

#[tokio::test]
async fn a_full_rewrite_is_caught_by_a_kept_checkpoint_and_an_untouched_store_passes_every_one() {
    on_both(|t| async move {
        let dir = tempfile::tempdir().unwrap();
        let witness = keyed_config(dir.path());
        let env = start(&t).await;
        sync_all(&t, &env).await;
        let issued = issue_due(t.store.as_ref(), &witness, &[], at("2021-09-30T01:00:00Z")).await.unwrap();
        assert!(matches!(issued, Issued::Issued { id: 1, .. }), "{issued:?}");
        // Finance keeps the checkpoint it received.
        let kept = t.store.checkpoint(1, Audience::Shared).await.unwrap().unwrap();
        keep(dir.path(), "finance-kept.json", std::slice::from_ref(&kept));

        // Whoever holds the store rebuilds it from the same sources, one
        // payment's amount changed: every link of the new store is
        // consistent again.
        let (url, db) = another_store(&t, dir.path()).await;
        let rebuilt = liankong::store::open(&url).await.unwrap();
        rebuilt.migrate().await.unwrap();
        let mut p = env.sim.data().snapshot().payments[7].clone();
        p.amount = liankong::money::Fen(p.amount.0 + 100_000);
        env.sim.data().upsert(liankong::model::Record::Payment(p));
        let forged = TestStore { backend: t.backend, url: url.clone(), store: rebuilt.clone(), raw: match &t.raw {
            Raw::Sqlite(_) => Raw::Sqlite(sqlx::SqlitePool::connect(url.expose()).await.unwrap()),
            Raw::Postgres(_) => Raw::Postgres(sqlx::PgPool::connect(url.expose()).await.unwrap()),
        }};
        sync_all(&forged, &env).await;
        rebuilt.close().await;
        let (code, out) = verify(dir.path(), &url, &[]);
        assert_eq!(code, Some(0), "{out}");
        assert!(out.starts_with("intact: "), "{out}");
        let (code, out) = verify(dir.path(), &url, &["finance-kept.json"]);
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains("NOT WITNESSED: of 1 checkpoints checked, the store extends 0\n"), "{out}");
        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("  ")).collect();
        assert_eq!(
            lines,
            [format!(
                "  stream finance.payments no longer extends checkpoint 1: its first {} batches ({} versions) are not the history the checkpoint signed",
                kept.stream("finance.payments").unwrap().batches,
                kept.stream("finance.payments").unwrap().versions
            )],
            "{out}"
        );
        if let Some(db) = db {
            drop_pg_database(&db).await;
        }

        // The untouched store grows and passes against every checkpoint it
        // issued, of either audience.
        let mut p = env.sim.data().snapshot().payments[3].clone();
        p.amount = liankong::money::Fen(p.amount.0 + 1);
        p.updated_at = at("2021-10-01T09:00:00+08:00");
        env.sim.data().upsert(liankong::model::Record::Payment(p));
        assert!(sync(&t, &env, "finance").await.ok());
        let issued = issue_due(t.store.as_ref(), &witness, &[], at("2021-09-30T02:00:00Z")).await.unwrap();
        assert!(matches!(issued, Issued::Issued { id: 2, .. }), "{issued:?}");
        let mut every = t.store.checkpoints(Audience::All, None, 10).await.unwrap();
        every.extend(t.store.checkpoints(Audience::Shared, None, 10).await.unwrap());
        keep(dir.path(), "every.json", &every);
        let (code, out) = verify(dir.path(), &t.url, &["every.json", "finance-kept.json"]);
        assert_eq!(code, Some(0), "{out}");
        assert!(out.ends_with("witnessed: the store extends all 5 checkpoints checked\n"), "{out}");
        // Without files, against its own newest.
        let (code, out) = verify(dir.path(), &t.url, &[]);
        assert_eq!(code, Some(0), "{out}");
        assert!(out.ends_with("witnessed: the store extends all 1 checkpoints checked\n"), "{out}");

        // A checkpoint whose signature does not verify is rejected as such,
        // and so is one signed by a key that is not the deployment's.
        let mut bad = every[0].clone();
        bad.signature = bad.signature.replacen(|c: char| c.is_ascii_alphabetic(), "A", 1).replacen('A', "B", 1);
        let other = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
        let foreign = Checkpoint::sign(&other, 9, at("2021-09-30T03:00:00Z"), Audience::Shared, every[0].streams.clone());
        keep(dir.path(), "bad.json", &[bad, foreign.clone()]);
        let (code, out) = verify(dir.path(), &t.url, &["bad.json"]);
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains("  checkpoint 2: the signature does not verify (it was altered, or is a forgery)\n"), "{out}");
        assert!(out.contains(&format!("  checkpoint 9: signed by key {}, which is not one of this deployment's\n", other.public().key_id())), "{out}");
        env.sim.shutdown().await;
    })
    .await;
}

// The simulator serves on this runtime while the test waits for the
// binary: two threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_restored_from_an_older_backup_is_refused_at_start_until_accepted() {
    use liankong::sim::{GenParams, SimOptions, Simulator};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sim = Simulator::start(SimOptions::new(GenParams::small(), d.join("sim")))
        .await
        .unwrap();
    sim.write_files().unwrap();
    let store = d.join("store.db");
    let text = liankong::demo::sim_config(
        &sim,
        &liankong::demo::SimConfigOptions {
            store_url: format!("sqlite:{}", store.display()),
            manifests: liankong::demo::shipped_manifests(),
            quick_retries: true,
        },
    )
    .unwrap();
    std::fs::write(d.join("key.pem"), SigningKey::generate_pem().unwrap()).unwrap();
    let config = sim.dir().join("liankong.toml");
    std::fs::write(
        &config,
        format!(
            "{text}\n[witness]\nkey = \"file:{}\"\ncheckpoint_interval_secs = 0\nstate_file = \"{}\"\n",
            d.join("key.pem").display(),
            d.join("state.json").display()
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--config", cfg];
        all.extend(args);
        liankong(d, &all)
    };
    let newest = || async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", store.display()))
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT MAX(id) FROM checkpoints")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    };

    let (code, out, err) = run(&["once", "--as-of", "2021-09-30"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("\ncheckpoint 1 issued: "), "{out}");
    // The backup, as deploy/README.md takes it while the daemon runs.
    let backup = d.join("backup.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", store.display()))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "VACUUM INTO '{}'",
        backup.display()
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let mut p = sim.data().snapshot().payments[5].clone();
    p.amount = liankong::money::Fen(p.amount.0 + 1);
    p.updated_at = at("2021-10-01T09:00:00+08:00");
    sim.data().upsert(liankong::model::Record::Payment(p));
    let (code, out, err) = run(&["once", "--as-of", "2021-09-30"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("\ncheckpoint 2 issued: "), "{out}");
    let state: Checkpoint =
        serde_json::from_str(&std::fs::read_to_string(d.join("state.json")).unwrap()).unwrap();
    assert_eq!((state.checkpoint_id, state.audience), (2, Audience::All));
    let payments = state.stream("finance.payments").unwrap().clone();

    // The store comes back from the backup.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", store.display()));
    }
    std::fs::copy(&backup, &store).unwrap();
    let behind = format!(
        "stream finance.payments is behind checkpoint 2: the store holds {} batches ({} versions) where the checkpoint states {} ({}), 1 batches and 1 versions behind",
        payments.batches - 1,
        payments.versions - 1,
        payments.batches,
        payments.versions
    );
    let (code, out, err) = run(&["once", "--as-of", "2021-09-30"]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("the store does not extend checkpoint 2, the newest this machine saw"),
        "{err}"
    );
    assert!(err.contains(&behind), "{err}");
    assert!(err.contains("liankong checkpoint accept-restore"), "{err}");
    assert_eq!(out, "", "nothing ran");
    assert_eq!(newest().await, 1);
    let (code, out, _) = run(&["verify"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("intact: "), "{out}");
    assert!(
        out.contains("this machine's newest checkpoint: 2 ("),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "NOT WITNESSED: of 2 checkpoints checked, the store extends 1\n  {behind}\n"
        )),
        "{out}"
    );

    // The operator decides: accepted, the next checkpoint takes a new number.
    let (code, out, err) = run(&["checkpoint", "accept-restore"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with(&format!(
            "restore accepted: the store no longer extends checkpoint 2\n  {behind}\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(
            "the next checkpoint is numbered after 2; checkpoint 1 is this machine's newest now."
        ),
        "{out}"
    );
    let (code, out, err) = run(&["once", "--as-of", "2021-09-30"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("\ncheckpoint 3 issued: "), "{out}");
    let (code, out, _) = run(&["verify"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out, _) = run(&["checkpoint", "accept-restore"]);
    assert_eq!(
        (code, out.as_str()),
        (
            Some(0),
            "the store extends the newest checkpoint this machine saw: nothing to accept\n"
        )
    );

    // A chain rewritten under the signer, its copy gone too: `once` signs
    // nothing over it, says why, and still delivers.
    std::fs::remove_file(d.join("state.json")).unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", store.display()))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE chain SET root = X'{}' WHERE batch = 1 AND stream_id = (SELECT id FROM streams WHERE name = 'finance.payments')",
        "00".repeat(32)
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let (code, out, err) = run(&["once", "--as-of", "2021-09-30"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains(
            "\ncheckpoint: FAILED: stream finance.payments no longer extends checkpoint 3"
        ),
        "{out}"
    );
    assert!(out.contains("\ndeliveries: "), "{out}");
    assert_eq!(newest().await, 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn proofs_are_given_for_what_the_agency_may_see_and_the_standalone_verifier_accepts_them() {
    use liankong::model::{ProjectCategory, QuotaKind};
    on_both(|t| async move {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let witness = new_witness(d);
        let s = t.store.as_ref();
        let mut w = World::default();
        w.add(project(P1, "370101", ProjectCategory::Basic, false))
            .add(quota("Q-1", P1, 2021, QuotaKind::Initial, 100_000_000, "2021-01-15"));
        w.write(s).await;
        write(s, Collection::Payments, "2021-07-01T00:00:00Z", vec![pay("PAY-1", 100), pay("PAY-2", 50), pay("PAY-4", 9)]).await;
        write(s, Collection::Referrals, "2021-07-01T00:00:00Z", vec![Item::from(referral("XS-1", "370101", Some(P1)))]).await;
        issue_due(s, &witness, &[], at("2021-07-01T01:00:00Z")).await.unwrap();
        write(s, Collection::Payments, "2021-07-01T01:30:00Z", vec![pay("PAY-1", 101), pay("PAY-3", 7)]).await;
        let mut reclaim = ask(ActionKind::Reclaim, P1, "2021-07-01");
        reclaim.amount = Some("1000.00".into());
        let action = act(s, Agency::Finance, &reclaim, "2021-07-01T01:40:00Z").await;
        issue_due(s, &witness, &[], at("2021-07-01T02:00:00Z")).await.unwrap();
        for i in 0..5 {
            write(s, Collection::Payments, &format!("2021-07-01T02:1{i}:00Z"), vec![pay(&format!("PAY-1{i}"), i)]).await;
        }
        issue_due(s, &witness, &[], at("2021-07-01T03:00:00Z")).await.unwrap();
        for audience in [Audience::All, Audience::Shared] {
            keep(d, &format!("{}.json", audience.as_str()), &t.store.checkpoints(audience, None, 10).await.unwrap());
        }

        let mut text = String::from("[api]\nlisten = \"127.0.0.1:0\"\n");
        for agency in ["finance", "discipline", "npc", "orgdept"] {
            text.push_str(&format!(
                "[[api.tokens]]\nname = \"{agency}\"\nagency = \"{agency}\"\nsha256 = \"{}\"\n",
                liankong::api::token_hash(agency)
            ));
        }
        let config = liankong::config::Config::parse(&text).unwrap();
        let running = liankong::api::RunningConfig::new(Arc::new(config), &[]);
        let (_tx, rx) = tokio::sync::watch::channel(Arc::new(running));
        let state = liankong::api::ApiState {
            store: t.store.clone(),
            config: rx,
            metrics: Default::default(),
            clock: Arc::new(liankong::clock::FixedClock(at("2021-07-01T04:00:00Z"))),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(liankong::api::serve(listener, state, stop.clone()));
        let http = reqwest::Client::new();
        // (status, body); a 200's body is also written to `file` for the script.
        let get = |path: String, token: &'static str, file: &'static str| {
            let r = http.get(format!("{base}{path}")).bearer_auth(token).send();
            async move {
                let r = r.await.unwrap();
                let status = r.status().as_u16();
                let body = r.text().await.unwrap();
                if status == 200 {
                    std::fs::write(d.join(file), &body).unwrap();
                }
                (status, body)
            }
        };
        let checked = |audience: &str, option: &str| {
            script(d, &["--key", "public.pem", &format!("{audience}.json"), option, "proof.json"])
        };

        // A version proved in the newest checkpoint and in the first.
        for query in ["stream=finance.payments&key=PAY-1&version=1", "stream=finance.payments&key=PAY-1&version=1&checkpoint=1"] {
            let (status, body) = get(format!("/v1/proofs?{query}"), "finance", "proof.json").await;
            assert_eq!(status, 200, "{body}");
            let (code, out) = checked("shared", "--proof");
            assert_eq!((code, out.as_str()), (Some(0), "ok: 3 checkpoint(s), and the proof\n"), "{query}: {body}");
        }
        let (_, body) = get("/v1/proofs?stream=finance.payments&key=PAY-1".into(), "finance", "proof.json").await;
        let proof: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((proof["version"].as_i64(), proof["checkpoint_id"].as_i64(), proof["batch"].as_i64()), (Some(2), Some(3), Some(2)), "{body}");
        assert!(proof["content"].as_str().unwrap().contains("\"amount\":101"), "{body}");
        // One that joined after checkpoint 1 is not in it.
        let (status, body) = get("/v1/proofs?stream=finance.payments&key=PAY-3&version=1&checkpoint=1".into(), "finance", "x").await;
        assert_eq!(status, 409, "{body}");
        assert!(body.contains("joined the history after checkpoint 1"), "{body}");
        // Discipline's records only to discipline; to others as if absent.
        let referral = "/v1/proofs?stream=discipline.referrals&key=XS-1&version=1";
        let (hidden, hidden_body) = get(referral.into(), "finance", "x").await;
        let (absent, absent_body) = get("/v1/proofs?stream=finance.payments&key=PAY-404&version=1".into(), "finance", "x").await;
        assert_eq!((hidden, &hidden_body), (absent, &absent_body));
        assert_eq!(hidden, 404);
        let (status, body) = get(referral.into(), "discipline", "proof.json").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(checked("all", "--proof").0, Some(0));
        // An action only to the agencies it was delivered to.
        let reclaim = format!("/v1/proofs?stream=liankong.actions&key={action}&version=1");
        assert_eq!(get(reclaim.clone(), "orgdept", "x").await.0, 404);
        let (status, body) = get(reclaim, "npc", "proof.json").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(checked("shared", "--proof").0, Some(0));
        assert_eq!(get("/v1/proofs?stream=finance.nothing&key=x".into(), "npc", "x").await.0, 400);

        // Each later checkpoint extends each earlier one.
        for (from, to) in [(1, 3), (2, 3), (1, 2), (3, 3)] {
            for (token, audience) in [("finance", "shared"), ("discipline", "all")] {
                let (status, body) = get(format!("/v1/proofs/consistency?from={from}&to={to}"), token, "proof.json").await;
                assert_eq!(status, 200, "{body}");
                let (code, out) = checked(audience, "--consistency");
                assert_eq!((code, out.as_str()), (Some(0), "ok: 3 checkpoint(s), and the consistency proof\n"), "{from}..{to} {audience}: {body}");
            }
        }
        assert_eq!(get("/v1/proofs/consistency?from=3&to=1".into(), "finance", "x").await.0, 400);
        assert_eq!(get("/v1/proofs/consistency?from=1&to=9".into(), "finance", "x").await.0, 404);

        // A store rewritten underneath gives no proof against what it signed.
        let blob = if t.backend == "sqlite" { format!("X'{}'", "00".repeat(32)) } else { format!("'\\x{}'::bytea", "00".repeat(32)) };
        t.raw.exec(&format!("UPDATE chain SET root = {blob} WHERE batch = 1 AND stream_id = (SELECT id FROM streams WHERE name = 'finance.payments')")).await;
        let (status, body) = get("/v1/proofs?stream=finance.payments&key=PAY-1&version=2".into(), "finance", "x").await;
        assert_eq!(status, 409, "{body}");
        assert!(body.contains("stream finance.payments no longer extends checkpoint 3"), "{body}");
        stop.cancel();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test]
async fn the_daemon_issues_a_checkpoint_after_a_run_and_covers_later_runs_when_the_interval_ends() {
    use std::time::Duration;
    // The worker's logic is the same on both backends; SQLite alone here.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sim = liankong::sim::Simulator::start(liankong::sim::SimOptions::new(
        liankong::sim::GenParams::small(),
        d.join("sim"),
    ))
    .await
    .unwrap();
    sim.write_files().unwrap();
    let receiver = Receiver::start().await;
    let (_, secret) = SECRETS[0];
    std::fs::write(d.join("hook.secret"), secret).unwrap();
    std::fs::write(d.join("key.pem"), SigningKey::generate_pem().unwrap()).unwrap();
    let text = liankong::demo::sim_config(
        &sim,
        &liankong::demo::SimConfigOptions {
            store_url: format!("sqlite:{}", d.join("store.db").display()),
            manifests: liankong::demo::shipped_manifests(),
            quick_retries: true,
        },
    )
    .unwrap()
    .replace("schedule = \"*/5 * * * *\"", "schedule = \"*/2 * * * * *\"");
    let config = d.join("daemon.toml");
    std::fs::write(
        &config,
        format!(
            "{text}\n[api]\nenabled = false\n\n[subscribers.finance_main]\nagency = \"finance\"\nurl = \"{}\"\nsecrets = [\"file:{}\"]\n\n\
             [witness]\nkey = \"file:{}\"\ncheckpoint_interval_secs = 6\nstate_file = \"{}\"\n",
            receiver.url,
            d.join("hook.secret").display(),
            d.join("key.pem").display(),
            d.join("state.json").display()
        ),
    )
    .unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"));
    command
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("RUST_LOG", "info");
    let mut daemon = Spawned::start(command, d.join("daemon.log"));
    let checkpoints = |r: &Receiver| -> Vec<Checkpoint> {
        r.received()
            .iter()
            .filter_map(|g| serde_json::from_str::<Value>(&g.body).ok())
            .filter(|b| b["type"] == "store.checkpoint")
            .map(|b| serde_json::from_value(b["data"].clone()).unwrap())
            .collect()
    };
    let wait_for = |n: usize| {
        let receiver = &receiver;
        let daemon = &daemon;
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while checkpoints(receiver).len() < n {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no checkpoint {n}; the log:\n{}",
                    daemon.log()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_for(1).await;
    // One payment changes at once: the run that lands it, within the
    // interval, is covered when the interval is over, by the worker alone.
    let mut p = sim.data().snapshot().payments[2].clone();
    p.amount = liankong::money::Fen(p.amount.0 + 1);
    p.updated_at = at("2021-10-01T09:00:00+08:00");
    sim.data().upsert(liankong::model::Record::Payment(p));
    wait_for(2).await;
    // The runs that follow change nothing: no checkpoint.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let got = checkpoints(&receiver);
    assert_eq!(got.len(), 2, "{}", daemon.log());
    assert_eq!(
        got.iter().map(|c| c.checkpoint_id).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(
        got[1].issued_at - got[0].issued_at >= chrono::Duration::seconds(6),
        "{got:?}"
    );
    assert!(got.iter().all(|c| c.audience == Audience::Shared));
    assert!(
        got[1].stream("finance.payments").unwrap().versions
            > got[0].stream("finance.payments").unwrap().versions
    );
    let state: Checkpoint =
        serde_json::from_str(&std::fs::read_to_string(d.join("state.json")).unwrap()).unwrap();
    assert_eq!((state.checkpoint_id, state.audience), (2, Audience::All));
    daemon.signal("-TERM");
    let status = daemon.exit_status(Duration::from_secs(120)).await;
    assert!(status.success(), "{status:?}\n{}", daemon.log());
    sim.shutdown().await;
}

#[tokio::test]
async fn after_a_rotation_the_retired_key_s_checkpoints_still_verify() {
    use liankong::witness::verify::{Problem, check_kept};
    on_both(|t| async move {
        let dir = tempfile::tempdir().unwrap();
        let old = new_witness(dir.path());
        let s = t.store.as_ref();
        write(
            s,
            Collection::Payments,
            "2021-07-01T00:00:00Z",
            vec![pay("PAY-1", 100)],
        )
        .await;
        issue_due(s, &old, &[], at("2021-07-01T01:00:00Z"))
            .await
            .unwrap();
        // The new key signs from now on; the old one's public half is retired.
        let new = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
        let rotated = Witness {
            keys: vec![new.public(), old.key.public()],
            key: new,
            interval: old.interval,
            state_file: old.state_file.clone(),
        };
        write(
            s,
            Collection::Payments,
            "2021-07-01T01:30:00Z",
            vec![pay("PAY-2", 100)],
        )
        .await;
        let issued = issue_due(s, &rotated, &[], at("2021-07-01T02:00:00Z"))
            .await
            .unwrap();
        assert!(matches!(issued, Issued::Issued { id: 2, .. }), "{issued:?}");
        let kept = t
            .store
            .checkpoints(Audience::Shared, None, 10)
            .await
            .unwrap();
        assert_eq!(kept[0].key_id, rotated.key.public().key_id());
        assert_eq!(kept[1].key_id, old.key.public().key_id());
        let report = check_kept(s, &kept, &rotated.keys).await.unwrap();
        assert_eq!(
            (report.checked, report.extended, report.problems.len()),
            (2, 2, 0)
        );
        // Without the retired key, the old checkpoint is refused as such.
        let report = check_kept(s, &kept, &rotated.keys[..1]).await.unwrap();
        assert_eq!(report.extended, 1);
        assert!(
            matches!(&report.problems[..], [Problem::Refused(_)]),
            "{:?}",
            report.problems
        );
        assert_eq!(
            report.problems[0].to_string(),
            format!(
                "checkpoint 1: signed by key {}, which is not one of this deployment's",
                old.key.public().key_id()
            )
        );
        // A state file of the old key's time, checked at start without it.
        let forgot = Witness {
            keys: rotated.keys[..1].to_vec(),
            key: SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap(),
            interval: old.interval,
            state_file: dir.path().join("old-state.json"),
        };
        std::fs::write(&forgot.state_file, serde_json::to_string(&kept[1]).unwrap()).unwrap();
        let e = liankong::witness::state::check_at_start(s, &forgot)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("after a rotation, list the key that signed it in witness.retired_keys"),
            "{e}"
        );
    })
    .await;
}
