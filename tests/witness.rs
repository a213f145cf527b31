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
    Item::Upsert(payment(id, P1, PaymentKind::Allocation, fen, "2021-03-01"))
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
            vec![Item::Upsert(referral("XS-1", "370101", Some(P1)))],
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
            vec![Item::Upsert(referral("XS-1", "370101", Some(P1)))],
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
