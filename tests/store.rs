//! The shared store on both backends: versions, hash chains, snapshots,
//! quarantine, atomic batches, and the `verify` / `store stats` commands.

mod support;

use liankong::model::{Collection, PaymentKind, Record};
use liankong::store::Store as _;
use liankong::store::{
    Batch, BatchOutcome, Item, QuarantineState, Quarantined, Refetch, RunId, StreamState,
};
use support::*;

const P1: &str = "3701002021000123";
const P2: &str = "3701002021000124";

fn batch(collection: Collection, run: RunId, when: &str, items: Vec<Item>) -> Batch {
    let mut b = Batch::new(collection, run, at(when));
    b.items = items;
    b
}

fn up(r: Record) -> Item {
    Item::from(r)
}

#[tokio::test]
async fn unchanged_records_write_no_version_and_changes_do() {
    on_both(|t| async move {
        let s = &t.store;
        let run = s
            .begin_run(
                "test",
                liankong::model::Agency::Finance,
                at("2021-07-01T00:00:00Z"),
            )
            .await
            .unwrap();
        let first = vec![
            up(payment(
                "PAY-1",
                P1,
                PaymentKind::Allocation,
                125_000_000,
                "2021-03-01",
            )),
            up(payment(
                "PAY-2",
                P1,
                PaymentKind::Expenditure,
                4_250_001,
                "2021-03-15",
            )),
        ];
        let o = s
            .apply(&batch(
                Collection::Payments,
                run,
                "2021-07-01T00:00:00Z",
                first.clone(),
            ))
            .await
            .unwrap();
        assert_eq!(
            o,
            BatchOutcome {
                new: 2,
                ..Default::default()
            },
            "{}",
            t.backend
        );

        // The same records again: nothing new in the history.
        let o = s
            .apply(&batch(
                Collection::Payments,
                run,
                "2021-07-02T00:00:00Z",
                first,
            ))
            .await
            .unwrap();
        assert_eq!(
            o,
            BatchOutcome {
                unchanged: 2,
                ..Default::default()
            }
        );
        assert_eq!(
            s.history(Collection::Payments, "PAY-1")
                .await
                .unwrap()
                .len(),
            1
        );

        // A changed amount is a second version.
        let o = s
            .apply(&batch(
                Collection::Payments,
                run,
                "2021-07-03T00:00:00Z",
                vec![up(payment(
                    "PAY-2",
                    P1,
                    PaymentKind::Expenditure,
                    4_250_000,
                    "2021-03-15",
                ))],
            ))
            .await
            .unwrap();
        assert_eq!(
            o,
            BatchOutcome {
                changed: 1,
                ..Default::default()
            }
        );
        let got = s.get(Collection::Payments, "PAY-2").await.unwrap().unwrap();
        assert_eq!(got.version, 2);
        assert_eq!(got.first_seen, at("2021-07-01T00:00:00Z"));
        assert_eq!(got.last_seen, at("2021-07-03T00:00:00Z"));
        assert_eq!(
            got.record,
            payment(
                "PAY-2",
                P1,
                PaymentKind::Expenditure,
                4_250_000,
                "2021-03-15"
            )
        );
        assert_eq!(
            t.raw
                .count("SELECT amount FROM finance_payments WHERE key = 'PAY-2'")
                .await,
            4_250_000
        );

        // A deletion is a version too, and deleting it again changes nothing.
        let o = s
            .apply(&batch(
                Collection::Payments,
                run,
                "2021-07-04T00:00:00Z",
                vec![Item::Delete("PAY-1".into())],
            ))
            .await
            .unwrap();
        assert_eq!(
            o,
            BatchOutcome {
                deleted: 1,
                ..Default::default()
            }
        );
        let o = s
            .apply(&batch(
                Collection::Payments,
                run,
                "2021-07-05T00:00:00Z",
                vec![Item::Delete("PAY-1".into())],
            ))
            .await
            .unwrap();
        assert_eq!(o, BatchOutcome::default());
        let history = s.history(Collection::Payments, "PAY-1").await.unwrap();
        assert_eq!(history.len(), 2);
        assert!(history[1].deleted && history[1].content.is_none());
        let deleted = s.get(Collection::Payments, "PAY-1").await.unwrap().unwrap();
        assert!(deleted.deleted);

        // The same content reappearing after its deletion is a new version.
        let o = s
            .apply(&batch(
                Collection::Payments,
                run,
                "2021-07-06T00:00:00Z",
                vec![up(payment(
                    "PAY-1",
                    P1,
                    PaymentKind::Allocation,
                    125_000_000,
                    "2021-03-01",
                ))],
            ))
            .await
            .unwrap();
        assert_eq!(
            o,
            BatchOutcome {
                changed: 1,
                ..Default::default()
            }
        );
        assert_eq!(
            s.history(Collection::Payments, "PAY-1")
                .await
                .unwrap()
                .len(),
            3
        );

        let report = s.verify().await.unwrap();
        assert!(report.is_intact(), "{:?}", report.damage);
        assert_eq!((report.chains, report.versions, report.records), (1, 5, 2));

        let stats = s.stats().await.unwrap();
        let payments = stats
            .iter()
            .find(|c| c.source.as_str() == "finance" && c.collection == "payments")
            .unwrap();
        assert_eq!(
            (payments.live, payments.deleted, payments.versions),
            (2, 0, 5)
        );
    })
    .await;
}

#[tokio::test]
async fn a_key_twice_in_one_batch_keeps_its_last_state() {
    on_both(|t| async move {
        let s = &t.store;
        let run = RunId(1);
        let o = s
            .apply(&batch(
                Collection::Payments,
                run,
                "2021-07-01T00:00:00Z",
                vec![
                    up(payment(
                        "PAY-9",
                        P1,
                        PaymentKind::Allocation,
                        100,
                        "2021-03-01",
                    )),
                    up(payment(
                        "PAY-9",
                        P1,
                        PaymentKind::Allocation,
                        200,
                        "2021-03-01",
                    )),
                    up(payment(
                        "PAY-8",
                        P1,
                        PaymentKind::Allocation,
                        300,
                        "2021-03-01",
                    )),
                    Item::Delete("PAY-8".into()),
                ],
            ))
            .await
            .unwrap();
        assert_eq!(
            o,
            BatchOutcome {
                new: 2,
                changed: 1,
                deleted: 1,
                ..Default::default()
            }
        );
        let nine = s.get(Collection::Payments, "PAY-9").await.unwrap().unwrap();
        assert_eq!((nine.version, nine.deleted), (2, false));
        assert_eq!(
            t.raw
                .count("SELECT amount FROM finance_payments WHERE key = 'PAY-9'")
                .await,
            200
        );
        let eight = s.get(Collection::Payments, "PAY-8").await.unwrap().unwrap();
        assert_eq!((eight.version, eight.deleted), (2, true));
        assert!(s.verify().await.unwrap().is_intact());
    })
    .await;
}

#[tokio::test]
async fn a_complete_snapshot_deletes_what_it_no_longer_holds() {
    on_both(|t| async move {
        let s = &t.store;
        let agency = liankong::model::Agency::Npc;
        let first = s
            .begin_run("test", agency, at("2021-07-01T00:00:00Z"))
            .await
            .unwrap();
        let mut b = batch(
            Collection::Budgets,
            first,
            "2021-07-01T00:00:00Z",
            vec![
                up(budget(P1, 2021, 125_000_000, 0)),
                up(budget(P2, 2021, 50_000_000, -1)),
            ],
        );
        b.complete_snapshot = true;
        assert_eq!(s.apply(&b).await.unwrap().new, 2);

        // A second run whose snapshot is not complete deletes nothing.
        let second = s
            .begin_run("test", agency, at("2021-07-02T00:00:00Z"))
            .await
            .unwrap();
        let partial = batch(
            Collection::Budgets,
            second,
            "2021-07-02T00:00:00Z",
            vec![up(budget(P1, 2021, 125_000_000, 0))],
        );
        assert_eq!(
            s.apply(&partial).await.unwrap(),
            BatchOutcome {
                unchanged: 1,
                ..Default::default()
            }
        );
        assert!(
            !s.get(Collection::Budgets, &format!("{P2}/2021"))
                .await
                .unwrap()
                .unwrap()
                .deleted
        );

        // The third run completes its snapshot without P2: P2 is deleted.
        let third = s
            .begin_run("test", agency, at("2021-07-03T00:00:00Z"))
            .await
            .unwrap();
        let mut complete = batch(
            Collection::Budgets,
            third,
            "2021-07-03T00:00:00Z",
            vec![up(budget(P1, 2021, 125_000_000, 0))],
        );
        complete.complete_snapshot = true;
        assert_eq!(
            s.apply(&complete).await.unwrap(),
            BatchOutcome {
                unchanged: 1,
                deleted: 1,
                ..Default::default()
            }
        );
        assert!(
            s.get(Collection::Budgets, &format!("{P2}/2021"))
                .await
                .unwrap()
                .unwrap()
                .deleted
        );
        assert!(
            !s.get(Collection::Budgets, &format!("{P1}/2021"))
                .await
                .unwrap()
                .unwrap()
                .deleted
        );
        assert!(s.verify().await.unwrap().is_intact());
    })
    .await;
}

/// A snapshot of a stream already stored is compared on the database side
/// (only what differs comes back): every kind of row it may hold still
/// counts and lands exactly as when it was compared in memory.
#[tokio::test]
async fn a_snapshot_compared_in_the_store_counts_every_kind_of_row() {
    on_both(|t| async move {
        let s = &t.store;
        let agency = liankong::model::Agency::Npc;
        let code = |n: u32| format!("3701002021000{n}");
        let key = |n: u32| format!("{}/2021", code(n));
        let first = s
            .begin_run("test", agency, at("2021-07-01T00:00:00Z"))
            .await
            .unwrap();
        let mut b = batch(
            Collection::Budgets,
            first,
            "2021-07-01T00:00:00Z",
            (201..=205)
                .map(|n| up(budget(&code(n), 2021, 1_000_000 + i64::from(n), 0)))
                .collect(),
        );
        b.snapshot = true;
        assert_eq!(s.apply(&b).await.unwrap().new, 5);
        let gone = batch(
            Collection::Budgets,
            first,
            "2021-07-01T01:00:00Z",
            vec![Item::Delete(key(203))],
        );
        assert_eq!(s.apply(&gone).await.unwrap().deleted, 1);

        let second = s
            .begin_run("test", agency, at("2021-07-02T00:00:00Z"))
            .await
            .unwrap();
        let mut b = batch(
            Collection::Budgets,
            second,
            "2021-07-02T00:00:00Z",
            vec![
                up(budget(&code(201), 2021, 1_000_201, 0)), // unchanged
                up(budget(&code(202), 2021, 2_000_202, 0)), // changed
                up(budget(&code(203), 2021, 1_000_203, 0)), // revived
                Item::Delete(key(204)),                     // deleted
                Item::Delete(key(207)),                     // never stored
                up(budget(&code(206), 2021, 1_000_206, 0)), // new
            ],
        );
        b.quarantine.push(Quarantined {
            reason: "approved: \"1,0x\" is not an amount in wan".into(),
            raw: format!(r#"{{"project_code":"{}","approved":"1,0x"}}"#, code(205)),
            key: Some(key(205)),
            refetch: None,
        });
        b.snapshot = true;
        b.complete_snapshot = true;
        assert_eq!(
            s.apply(&b).await.unwrap(),
            BatchOutcome {
                new: 1,
                changed: 2,
                unchanged: 1,
                deleted: 1,
                quarantined: 1,
            },
            "{}",
            t.backend
        );
        let state = |n: u32| {
            let key = key(n);
            async move {
                let r = s.get(Collection::Budgets, &key).await.unwrap().unwrap();
                (r.version, r.deleted)
            }
        };
        assert_eq!(state(201).await, (1, false));
        assert_eq!(state(202).await, (2, false));
        assert_eq!(state(203).await, (3, false));
        assert_eq!(state(204).await, (2, true));
        // Quarantined, and seen: it keeps its last good version.
        assert_eq!(state(205).await, (1, false));
        assert_eq!(state(206).await, (1, false));
        assert!(
            s.get(Collection::Budgets, &key(207))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            t.raw
                .count(&format!(
                    "SELECT approved FROM npc_budgets WHERE key = '{}'",
                    key(202)
                ))
                .await,
            2_000_202
        );
        assert!(s.verify().await.unwrap().is_intact());
    })
    .await;
}

#[tokio::test]
async fn bad_rows_are_quarantined_and_the_rest_lands_with_its_state() {
    on_both(|t| async move {
        let s = &t.store;
        let run = s
            .begin_run(
                "test",
                liankong::model::Agency::Finance,
                at("2021-07-01T00:00:00Z"),
            )
            .await
            .unwrap();
        let mut b = batch(
            Collection::Payments,
            run,
            "2021-07-01T00:00:00Z",
            vec![up(payment(
                "PAY-1",
                P1,
                PaymentKind::Allocation,
                1,
                "2021-03-01",
            ))],
        );
        b.quarantine.push(Quarantined {
            reason: "amount: \"12,34.5x\" is not an amount in yuan".into(),
            raw: r#"{"payment_id":"PAY-2","amount":"12,34.5x"}"#.into(),
            key: Some("PAY-2".into()),
            refetch: Some(Refetch::From(at("2021-06-30T08:00:00Z"))),
        });
        b.state = Some(StreamState {
            cursor: Some("2021-06-30T16:20:00+08:00".into()),
            last_complete: Some(at("2021-07-01T00:00:00Z")),
            run: Some(run),
            ..Default::default()
        });
        let o = s.apply(&b).await.unwrap();
        assert_eq!(
            o,
            BatchOutcome {
                new: 1,
                quarantined: 1,
                ..Default::default()
            }
        );
        let q = s
            .quarantined(Some(Collection::Payments), true, 10)
            .await
            .unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].collection, "finance.payments");
        assert!(q[0].reason.contains("12,34.5x"));
        assert!(q[0].raw.contains("PAY-2"));
        assert_eq!(q[0].run, Some(run.0));
        assert_eq!(
            (q[0].key.as_deref(), q[0].holds, q[0].state, q[0].sightings),
            (Some("PAY-2"), true, QuarantineState::Open, 1)
        );
        // The stream is pulled again from the open row's instant.
        let mut state = b.state.clone().unwrap();
        state.refetch = Some(Refetch::From(at("2021-06-30T08:00:00Z")));
        state.open_quarantined = 1;
        assert_eq!(
            s.stream_state(Collection::Payments).await.unwrap(),
            Some(state)
        );
        assert_eq!(s.stream_state(Collection::Quotas).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn a_rolled_back_batch_changes_neither_records_nor_state() {
    on_both(|t| async move {
        let s = &t.store;
        let run = RunId(1);
        let mut b = batch(
            Collection::Payments,
            run,
            "2021-07-01T00:00:00Z",
            vec![up(payment("PAY-1", P1, PaymentKind::Allocation, 1, "2021-03-01"))],
        );
        b.state = Some(StreamState { cursor: Some("A".into()), ..Default::default() });
        s.apply(&b).await.unwrap();

        // Make the last statement of the next batch (its state) fail, after
        // its records, versions and quarantine rows were written.
        if t.backend == "sqlite" {
            t.raw
                .exec("CREATE TRIGGER fail_state BEFORE UPDATE ON stream_state BEGIN SELECT RAISE(ABORT, 'injected failure'); END;")
                .await;
        } else {
            t.raw
                .exec(
                    "CREATE FUNCTION fail_state() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql;
                     CREATE TRIGGER fail_state BEFORE UPDATE ON stream_state FOR EACH ROW EXECUTE FUNCTION fail_state();",
                )
                .await;
        }
        let mut next = batch(
            Collection::Payments,
            run,
            "2021-07-02T00:00:00Z",
            vec![
                up(payment("PAY-1", P1, PaymentKind::Allocation, 2, "2021-03-01")),
                up(payment("PAY-2", P1, PaymentKind::Expenditure, 3, "2021-03-02")),
            ],
        );
        next.quarantine.push(Quarantined::unkeyed("r".into(), "x".into()));
        next.state = Some(StreamState { cursor: Some("B".into()), ..Default::default() });
        let err = s.apply(&next).await.unwrap_err();
        assert!(err.to_string().contains("injected failure"), "{err}");

        assert!(s.get(Collection::Payments, "PAY-2").await.unwrap().is_none());
        let one = s.get(Collection::Payments, "PAY-1").await.unwrap().unwrap();
        assert_eq!((one.version, one.record.clone()), (1, payment("PAY-1", P1, PaymentKind::Allocation, 1, "2021-03-01")));
        assert_eq!(s.history(Collection::Payments, "PAY-1").await.unwrap().len(), 1);
        assert_eq!(s.stream_state(Collection::Payments).await.unwrap().unwrap().cursor.as_deref(), Some("A"));
        assert!(s.quarantined(None, false, 10).await.unwrap().is_empty());
        assert!(s.verify().await.unwrap().is_intact());
    })
    .await;
}

#[tokio::test]
async fn a_batch_with_a_record_of_another_collection_is_refused() {
    on_both(|t| async move {
        let b = batch(
            Collection::Payments,
            RunId(1),
            "2021-07-01T00:00:00Z",
            vec![up(unit("370101", "市财政局"))],
        );
        let err = t.store.apply(&b).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "a batch for finance.payments holds a record of finance.units"
        );
        assert!(
            t.store
                .get(Collection::Units, "370101")
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}

async fn seeded(t: &TestStore) {
    let s = &t.store;
    for (i, when) in ["2021-07-01T00:00:00Z", "2021-07-02T00:00:00Z"]
        .into_iter()
        .enumerate()
    {
        let items = vec![
            up(payment(
                "PAY-1",
                P1,
                PaymentKind::Allocation,
                100 + i as i64,
                "2021-03-01",
            )),
            up(payment(
                "PAY-2",
                P1,
                PaymentKind::Expenditure,
                50,
                "2021-03-02",
            )),
        ];
        s.apply(&batch(Collection::Payments, RunId(1), when, items))
            .await
            .unwrap();
    }
    s.apply(&batch(
        Collection::Referrals,
        RunId(2),
        "2021-07-02T00:00:00Z",
        vec![up(referral("XS-1", "370101", Some(P1)))],
    ))
    .await
    .unwrap();
    assert!(s.verify().await.unwrap().is_intact());
}

#[tokio::test]
async fn verify_names_a_version_altered_by_direct_sql() {
    on_both(|t| async move {
        seeded(&t).await;
        // Someone edits the first version of PAY-1 in place.
        t.raw
            .exec("UPDATE superseded SET content = REPLACE(content, '\"amount\":100', '\"amount\":900') WHERE key = 'PAY-1' AND version = 1")
            .await;
        let report = t.store.verify().await.unwrap();
        assert!(!report.is_intact());
        let d = &report.damage[0];
        assert_eq!((d.collection.as_str(), d.key.as_str(), d.version), ("finance.payments", "PAY-1", 1));
        assert_eq!(d.problem, "content does not match its stored hash");
        // The other chain is unharmed and not reported.
        assert!(report.damage.iter().all(|d| d.collection == "finance.payments"));
    })
    .await;
}

#[tokio::test]
async fn verify_catches_a_rehashed_version_and_an_edited_typed_column() {
    on_both(|t| async move {
        seeded(&t).await;
        // A careful forger recomputes the entry hash too: the root of its
        // batch no longer matches, and the batch is named.
        let forged = r#"{"payment_id":"PAY-2","project_code":"3701002021000123","kind":"expenditure","amount":1,"paid_on":"2021-03-02","updated_at":"2021-06-30T08:20:00Z"}"#;
        let entry = hex::encode(liankong::store::entry_hash("finance.payments", "PAY-2", 1, false, Some(forged)));
        let blob = if t.backend == "sqlite" { format!("X'{entry}'") } else { format!("'\\x{entry}'::bytea") };
        t.raw
            .exec(&format!("UPDATE finance_payments SET content = '{forged}', entry = {blob} WHERE key = 'PAY-2'"))
            .await;
        let report = t.store.verify().await.unwrap();
        let d = &report.damage[0];
        assert_eq!((d.key.as_str(), d.batch), ("", Some(1)), "{d:?}");
        assert_eq!(d.problem, "the versions of batch 1 do not match its recorded root");
        assert_eq!(d.to_string(), "finance.payments: the versions of batch 1 do not match its recorded root");
        // The forged row also disagrees with its typed columns.
        assert!(report.damage.iter().any(|d| d.key == "PAY-2" && d.problem == "column amount differs from the recorded content"), "{:?}", report.damage);

        // An amount edited in the table the rules read is named as well.
        t.raw.exec("UPDATE discipline_referrals SET frozen = FALSE WHERE key = 'XS-1'").await;
        let report = t.store.verify().await.unwrap();
        let d = report.damage.iter().find(|d| d.collection == "discipline.referrals").unwrap();
        assert_eq!((d.key.as_str(), d.problem.as_str()), ("XS-1", "column frozen differs from the recorded content"));
    })
    .await;
}

#[tokio::test]
async fn verify_command_exits_non_zero_and_names_the_record() {
    on_both(|t| async move {
        seeded(&t).await;
        let run = |url: &str| {
            std::process::Command::new(env!("CARGO_BIN_EXE_liankong"))
                .args([
                    "--config",
                    concat!(env!("CARGO_MANIFEST_DIR"), "/config/liankong.toml"),
                    "verify",
                ])
                .env("LIANKONG_STORE_URL", url)
                .output()
                .unwrap()
        };
        let ok = run(t.url.expose());
        assert_eq!(
            ok.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&ok.stdout),
            "intact: 2 chains, 4 versions, 3 records\n"
        );

        t.raw
            .exec("DELETE FROM superseded WHERE key = 'PAY-1' AND version = 1")
            .await;
        let bad = run(t.url.expose());
        assert_eq!(bad.status.code(), Some(1));
        let out = String::from_utf8_lossy(&bad.stdout);
        assert!(
            out.contains(
                "finance.payments \"PAY-1\" version 1: version 1 is missing from the history"
            ),
            "{out}"
        );

        let stats = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"))
            .args([
                "--config",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config/liankong.toml"),
                "store",
                "stats",
            ])
            .env("LIANKONG_STORE_URL", t.url.expose())
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&stats.stdout);
        let line = |agency: &str, collection: &str| {
            out.lines()
                .find(|l| l.split_whitespace().take(2).eq([agency, collection]))
                .map(|l| l.split_whitespace().skip(2).collect::<Vec<_>>().join(" "))
        };
        assert_eq!(
            line("finance", "payments").as_deref(),
            Some("2 0 2 0"),
            "{out}"
        );
        assert_eq!(
            line("discipline", "referrals").as_deref(),
            Some("1 0 1 0"),
            "{out}"
        );
    })
    .await;
}

#[tokio::test]
async fn bad_store_urls_and_configs_are_clear_errors() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"))
        .args(["--config", "/nonexistent/liankong.toml", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot read config file /nonexistent/liankong.toml")
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"))
        .args([
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/liankong.toml"),
            "store",
            "stats",
        ])
        .env("LIANKONG_STORE_URL", "mysql://root@127.0.0.1/x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unsupported store URL mysql://root@127.0.0.1/x"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_postgresql_is_named_within_seconds() {
    let stats = |url: String| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"));
        command
            .args([
                "--config",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config/liankong.toml"),
                "store",
                "stats",
            ])
            .env("LIANKONG_STORE_URL", url);
        async move {
            let started = std::time::Instant::now();
            let out = tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap();
            (out, started.elapsed())
        }
    };
    // Nobody listens: refused at once, and said so (not a pool timeout 30 s
    // later).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (out, took) = stats(format!("postgres://postgres@127.0.0.1:{port}/x")).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim_end(),
        format!(
            "liankong: cannot open the store at postgres://postgres@127.0.0.1:{port}/x: \
             database error: error communicating with database: Connection refused (os error 111)"
        )
    );
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");

    // Something accepts the connection and never answers: bounded.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let (out, took) = stats(format!("postgres://postgres@127.0.0.1:{port}/x")).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no answer from the database within 10s"),
        "{err}"
    );
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    drop(silent);
}

/// Everything logged while it is the thread's subscriber, as text.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn slow_statements_are_logged_at_debug_not_warn() {
    if skip_pg() {
        eprintln!("SKIPPED PostgreSQL: {SKIP_PG_ENV}=1");
        return;
    }
    // tracing caches each callsite's interest for the whole process, and
    // other tests' threads race this one's scoped subscriber for it: the
    // test runs alone, in a process of its own.
    const ALONE: &str = "LIANKONG_TEST_SLOW_ALONE";
    if std::env::var_os(ALONE).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "slow_statements_are_logged_at_debug_not_warn",
                "--exact",
                "--nocapture",
            ])
            .env(ALONE, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("1 passed"), "{text}");
        return;
    }
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test's runtime has one thread, on which PostgreSQL's statements
    // run and are logged.
    let _guard = tracing::subscriber::set_default(subscriber);
    let url = liankong::store::StoreUrl::new(pg_admin_url());
    let store = liankong::store::postgres::SqlStore::connect(&url)
        .await
        .unwrap();
    sqlx::query("SELECT pg_sleep(1.2), 'lk-slow-marker'")
        .execute(store.pool())
        .await
        .unwrap();
    store.pool().close().await;
    let text = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    // On a loaded machine the connection's own setup may be slow too: the
    // marker's statement is logged once, and every slow line at debug.
    let slow: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("slow statement"))
        .collect();
    assert_eq!(
        slow.iter().filter(|l| l.contains("lk-slow-marker")).count(),
        1,
        "{text}"
    );
    assert!(
        slow.iter().all(|l| l.contains("DEBUG sqlx::query")),
        "{slow:?}"
    );
    assert!(!text.contains(" WARN "), "{text}");
}

#[tokio::test]
async fn run_refuses_an_address_in_use_before_it_touches_the_store() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let config = dir.path().join("liankong.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"sqlite:{}\"\n\n[api]\nlisten = \"{addr}\"\n",
            db.display()
        ),
    )
    .unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"));
    command
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env_remove("RUST_LOG");
    let mut daemon = Spawned::start(command, dir.path().join("run.log"));
    let status = daemon.exit_status(std::time::Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(2), "{}", daemon.log());
    assert_eq!(
        daemon.log().trim_end(),
        format!("liankong: cannot listen on {addr}: Address already in use (os error 98)")
    );
    assert!(
        !db.exists(),
        "the store was not created, let alone migrated"
    );
    drop(taken);
}

// ---- actions: records of liankong.actions ----

use liankong::model::{Agency, ProjectCategory, QuotaKind};

const U1: &str = "370101";

/// P1 with a quota of 1,000,000.00 yuan, 200,000.00 spent on 1 March;
/// P2 funded alike.
async fn funded_projects(s: &dyn liankong::store::Store) {
    let mut w = World::default();
    for p in [P1, P2] {
        w.add(project(p, U1, ProjectCategory::Basic, false))
            .add(quota(
                &format!("Q-{p}"),
                p,
                2021,
                QuotaKind::Initial,
                100_000_000,
                "2021-01-15",
            ));
    }
    w.add(payment(
        "PAY-1",
        P1,
        PaymentKind::Expenditure,
        20_000_000,
        "2021-03-01",
    ));
    w.write(s).await;
}

#[tokio::test]
async fn an_action_is_a_chained_record_and_verify_names_one_altered() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        funded_projects(s).await;
        let mut freeze = ask(ActionKind::Freeze, P1, "2021-06-01");
        freeze.effective_on = Some(day("2021-06-05"));
        let id = act(s, Agency::Finance, &freeze, "2021-06-01T02:00:00Z").await;
        let mut reclaim = ask(ActionKind::Reclaim, P2, "2021-06-01");
        reclaim.amount = Some("1000.00".into());
        let other = act(s, Agency::Finance, &reclaim, "2021-06-01T02:00:01Z").await;

        let stored = s.get(Collection::Actions, &id).await.unwrap().unwrap();
        assert_eq!(stored.version, 1);
        let Record::Action(a) = &stored.record else {
            panic!("not an action: {stored:?}")
        };
        assert_eq!(
            (a.kind, a.agency, a.token.as_str(), a.by.as_str()),
            (ActionKind::Freeze, Agency::Finance, "finance-token", "王科长")
        );
        assert_eq!((a.taken_on, a.effective_on), (day("2021-06-01"), Some(day("2021-06-05"))));
        assert_eq!(s.history(Collection::Actions, &id).await.unwrap().len(), 1);
        let stats = s.stats().await.unwrap();
        let actions = stats.iter().find(|c| c.source.as_str() == "liankong").unwrap();
        assert_eq!((actions.collection, actions.live, actions.versions), ("actions", 2, 2));
        let report = s.verify().await.unwrap();
        assert!(report.is_intact(), "{:?}", report.damage);

        // A typed column changed behind the store's back.
        t.raw
            .exec(&format!("UPDATE liankong_actions SET effective_on = '2021-07-01' WHERE key = '{id}'"))
            .await;
        let report = s.verify().await.unwrap();
        assert_eq!(report.damage.len(), 1, "{:?}", report.damage);
        assert_eq!(
            report.damage[0].to_string(),
            format!("liankong.actions {id:?} version 1: column effective_on differs from the recorded content")
        );
        // The recorded content itself rewritten: its chain breaks there.
        t.raw
            .exec(&format!(
                "UPDATE liankong_actions SET content = REPLACE(content, '100000', '200000') \
                 WHERE key = '{other}'"
            ))
            .await;
        let report = s.verify().await.unwrap();
        let chain = report
            .damage
            .iter()
            .find(|d| d.key == other)
            .expect("the altered reclaim is named");
        assert_eq!(chain.collection, "liankong.actions");
        // An action removed from its table is missed too. (Verify names the
        // first problem of each stream, so the reclaim is put back first.)
        t.raw
            .exec(&format!(
                "UPDATE liankong_actions SET content = REPLACE(content, '200000', '100000') \
                 WHERE key = '{other}'"
            ))
            .await;
        t.raw.exec(&format!("DELETE FROM liankong_actions WHERE key = '{id}'")).await;
        let report = s.verify().await.unwrap();
        // Its only version lived in the table: its batch is short of one.
        assert!(
            report.damage.iter().any(|d| d.collection == "liankong.actions"
                && d.problem == "batch 1 recorded 1 versions where the history holds 0: a version was removed or inserted"),
            "{:?}",
            report.damage
        );
    })
    .await;
}

#[tokio::test]
async fn finance_s_actions_are_refused_exactly_as_the_rules_say() {
    use Agency::{Audit, Finance, Npc};
    on_both(|t| async move {
        let s = t.store.as_ref();
        funded_projects(s).await;
        let now = "2021-06-10T02:00:00Z";
        const UNKNOWN: &str = "3701002021999999";

        // Who may take which kind.
        for kind in [ActionKind::Freeze, ActionKind::Unfreeze, ActionKind::Reclaim, ActionKind::Revive] {
            let (status, reason, _) = refused(s, Npc, &ask(kind, P1, "2021-06-10"), now).await;
            assert_eq!((status, reason), (403, "kind_not_allowed"), "{kind}");
        }
        // A project finance never sent; a day in the future.
        let (status, reason, figures) = refused(s, Finance, &ask(ActionKind::Freeze, UNKNOWN, "2021-06-10"), now).await;
        assert_eq!((status, reason), (422, "unknown_project"));
        assert_eq!(figures, serde_json::json!({"project": UNKNOWN}));
        let (status, reason, _) = refused(s, Finance, &ask(ActionKind::Freeze, P1, "2021-06-11"), now).await;
        assert_eq!((status, reason), (422, "taken_in_future"));
        // China time: 2021-06-10T17:00Z is already the 11th there.
        act(s, Finance, &ask(ActionKind::Freeze, P2, "2021-06-11"), "2021-06-10T17:00:00Z").await;
        let lifted = act(s, Finance, &{
            let mut u = ask(ActionKind::Unfreeze, P2, "2021-06-11");
            u.effective_on = Some(day("2021-06-12"));
            u
        }, "2021-06-10T17:00:01Z").await;
        assert!(lifted.starts_with("act_") && lifted.len() == 36, "{lifted}");

        // Freeze and unfreeze.
        let mut early = ask(ActionKind::Freeze, P1, "2021-06-10");
        early.effective_on = Some(day("2021-06-09"));
        assert_eq!(refused(s, Finance, &early, now).await.1, "effective_before_taken");
        let (status, reason, _) = refused(s, Finance, &ask(ActionKind::Unfreeze, P1, "2021-06-10"), now).await;
        assert_eq!((status, reason), (409, "not_frozen"));
        let mut freeze = ask(ActionKind::Freeze, P1, "2021-06-10");
        freeze.effective_on = Some(day("2021-06-15"));
        let f = act(s, Finance, &freeze, now).await;
        // Frozen from the 15th: another freeze on the 20th is a double
        // freeze, one effective on the 12th is not refused.
        let mut again = ask(ActionKind::Freeze, P1, "2021-06-10");
        again.effective_on = Some(day("2021-06-20"));
        let (status, reason, figures) = refused(s, Finance, &again, now).await;
        assert_eq!((status, reason), (409, "already_frozen"));
        assert_eq!(figures["freeze"], f.as_str());
        let mut unfreeze = ask(ActionKind::Unfreeze, P1, "2021-06-10");
        unfreeze.effective_on = Some(day("2021-06-14"));
        assert_eq!(refused(s, Finance, &unfreeze, now).await.1, "not_frozen");
        unfreeze.effective_on = Some(day("2021-06-15"));
        assert_eq!(refused(s, Finance, &unfreeze, now).await.1, "unfreeze_on_freeze_day");
        unfreeze.effective_on = Some(day("2021-06-30"));
        let u = act(s, Finance, &unfreeze, now).await;
        assert_eq!(refused(s, Finance, &unfreeze, now).await.0, 409, "not frozen on the 30th any more");

        // Reclaims: the balance on t is quota(p, Y, t) − exp(p, t) − the
        // reclaims finance has not applied yet.
        let mut reclaim = ask(ActionKind::Reclaim, P1, "2021-06-10");
        reclaim.amount = Some("800000.01".into());
        let (status, reason, figures) = refused(s, Finance, &reclaim, now).await;
        assert_eq!((status, reason), (422, "reclaim_above_balance"));
        assert_eq!(
            figures,
            serde_json::json!({"amount": "800000.01", "balance": "800000.00", "quota": "1000000.00",
                               "spent": "200000.00", "unapplied_reclaims": "0.00", "on": "2021-06-10"})
        );
        reclaim.amount = Some("0.00".into());
        assert_eq!(refused(s, Finance, &reclaim, now).await.1, "amount_not_positive");
        reclaim.amount = Some("1.234".into());
        assert_eq!(refused(s, Finance, &reclaim, now).await.1, "bad_amount");
        reclaim.amount = Some("500000.00".into());
        let r1 = act(s, Finance, &reclaim, now).await;
        reclaim.amount = Some("300000.01".into());
        let (_, reason, figures) = refused(s, Finance, &reclaim, now).await;
        assert_eq!(reason, "reclaim_above_balance");
        assert_eq!((figures["balance"].as_str(), figures["unapplied_reclaims"].as_str()), (Some("300000.00"), Some("500000.00")));
        // Finance's reclaim row lands: applied, the quota is smaller, the
        // balance the same.
        let mut w = World::default();
        w.add(quota("Q-R1", P1, 2021, QuotaKind::Reclaim, 50_000_000, "2021-06-10"));
        w.write(s).await;
        let (_, _, figures) = refused(s, Finance, &reclaim, now).await;
        assert_eq!((figures["quota"].as_str(), figures["unapplied_reclaims"].as_str()), (Some("500000.00"), Some("0.00")));

        // Revives draw on reclaims of other projects of the year.
        let mut revive = ask(ActionKind::Revive, P2, "2021-06-10");
        revive.amount = Some("400000.00".into());
        revive.from = Some(vec!["act_nothing".into()]);
        let (status, reason, _) = refused(s, Finance, &revive, now).await;
        assert_eq!((status, reason), (404, "no_such_action"));
        revive.from = Some(vec![f.clone()]);
        assert_eq!(refused(s, Finance, &revive, now).await.1, "from_not_reclaim");
        let mut own = revive.clone();
        own.project = Some(P1.into());
        own.from = Some(vec![r1.clone()]);
        assert_eq!(refused(s, Finance, &own, now).await.1, "from_own_project");
        let mut other_year = revive.clone();
        other_year.year = Some(2022);
        other_year.from = Some(vec![r1.clone()]);
        assert_eq!(refused(s, Finance, &other_year, now).await.1, "from_other_year");
        let mut before = revive.clone();
        before.taken_on = Some(day("2021-06-09"));
        before.from = Some(vec![r1.clone()]);
        assert_eq!(refused(s, Finance, &before, now).await.1, "from_after_taken");
        revive.from = Some(vec![r1.clone()]);
        revive.amount = Some("500000.01".into());
        let (status, reason, figures) = refused(s, Finance, &revive, now).await;
        assert_eq!((status, reason), (422, "revive_above_held"));
        assert_eq!(figures["held"], "500000.00");
        revive.amount = Some("400000.00".into());
        act(s, Finance, &revive, now).await;
        revive.amount = Some("100000.01".into());
        let (_, _, figures) = refused(s, Finance, &revive, now).await;
        assert_eq!(figures["from"], serde_json::json!([{"action_id": r1, "holds": "100000.00"}]));

        // Withdrawals: only the agency that took it, once.
        let (status, reason, _) = refused(s, Npc, &ask_withdraw(&u, "2021-06-10"), now).await;
        assert_eq!((status, reason), (403, "not_your_action"));
        let (status, reason, _) = refused(s, Finance, &ask_withdraw("act_none", "2021-06-10"), now).await;
        assert_eq!((status, reason), (404, "no_such_action"));
        let w = act(s, Finance, &ask_withdraw(&u, "2021-06-10"), now).await;
        let (status, reason, _) = refused(s, Finance, &ask_withdraw(&u, "2021-06-10"), now).await;
        assert_eq!((status, reason), (409, "already_withdrawn"));
        assert_eq!(refused(s, Finance, &ask_withdraw(&w, "2021-06-10"), now).await.1, "withdraw_of_withdrawal");
        // The unfreeze withdrawn, P1 is frozen on the 30th again.
        assert_eq!(refused(s, Finance, &again, now).await.1, "already_frozen");
        // Audit sees freezes: a withdrawal of finance's is forbidden, not
        // unknown, to it.
        assert_eq!(refused(s, Audit, &ask_withdraw(&f, "2021-06-10"), now).await.0, 403);
        let recorded = s.actions(None).await.unwrap();
        assert_eq!(recorded.len(), 7);
        assert!(s.verify().await.unwrap().is_intact());
    })
    .await;
}

/// A store of the layout before migration 0008 (one hex link per version),
/// written by hand: two payments, one changed, one deleted.
async fn legacy_store(backend: &str, url: &str, tamper: bool) -> liankong::store::StoreError {
    use liankong::store::legacy::{GENESIS, link_hash};
    let raw = |sql: String| {
        let url = url.to_owned();
        let backend = backend.to_owned();
        async move {
            if backend == "sqlite" {
                let p = sqlx::SqlitePool::connect(&url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&p)
                    .await
                    .unwrap();
                p.close().await;
            } else {
                let p = sqlx::PgPool::connect(&url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&p)
                    .await
                    .unwrap();
                p.close().await;
            }
        }
    };
    let stream = "finance.payments";
    let versions = [
        (
            "PAY-1",
            1,
            Some(payment(
                "PAY-1",
                P1,
                PaymentKind::Allocation,
                100,
                "2021-03-01",
            )),
            "2021-07-01T00:00:00+00:00",
        ),
        (
            "PAY-2",
            1,
            Some(payment(
                "PAY-2",
                P1,
                PaymentKind::Expenditure,
                50,
                "2021-03-02",
            )),
            "2021-07-01T00:00:00+00:00",
        ),
        (
            "PAY-1",
            2,
            Some(payment(
                "PAY-1",
                P1,
                PaymentKind::Allocation,
                101,
                "2021-03-01",
            )),
            "2021-07-02T00:00:00+00:00",
        ),
        ("PAY-2", 2, None, "2021-07-03T00:00:00+00:00"),
    ];
    let mut prev = GENESIS.to_owned();
    let mut sql = String::new();
    for (i, (key, version, record, when)) in versions.iter().enumerate() {
        let seq = i as i64 + 1;
        let content = record.as_ref().map(|r| r.content());
        let hash = content
            .as_deref()
            .map(liankong::store::content_hash)
            .unwrap_or_default();
        let link = link_hash(&prev, stream, seq, key, *version, content.is_none(), &hash);
        let stored = match (&content, tamper && seq == 1) {
            (Some(c), true) => format!("'{}'", c.replace("100", "900")),
            (Some(c), false) => format!("'{c}'"),
            (None, _) => "NULL".to_owned(),
        };
        sql.push_str(&format!(
            "INSERT INTO versions (stream, seq, key, version, deleted, content, content_hash, link, recorded_at) \
             VALUES ('{stream}', {seq}, '{key}', {version}, {}, {stored}, '{hash}', '{link}', '{when}');\n",
            if content.is_none() { "TRUE" } else { "FALSE" }
        ));
        prev = link;
    }
    sql.push_str(&format!(
        "INSERT INTO finance_payments (key, hash, version, deleted, first_seen, last_seen, seen_run, project_code, kind, amount, paid_on) VALUES \
         ('PAY-1', 'x', 2, FALSE, '2021-07-01T00:00:00+00:00', '2021-07-04T00:00:00+00:00', 1, '{P1}', 'allocation', 101, '2021-03-01'), \
         ('PAY-2', 'x', 2, TRUE, '2021-07-01T00:00:00+00:00', '2021-07-03T00:00:00+00:00', 1, '{P1}', 'expenditure', 50, '2021-03-02');\n"
    ));
    if backend == "sqlite" {
        let s = liankong::store::sqlite::SqlStore::connect(&liankong::store::StoreUrl::new(url))
            .await
            .unwrap();
        s.migrate_until(7).await.unwrap();
        s.close().await;
    } else {
        let s = liankong::store::postgres::SqlStore::connect(&liankong::store::StoreUrl::new(url))
            .await
            .unwrap();
        s.migrate_until(7).await.unwrap();
        s.close().await;
    }
    raw(sql).await;
    let store = liankong::store::open(&liankong::store::StoreUrl::new(url))
        .await
        .unwrap();
    let result = store.migrate().await;
    if tamper {
        store.close().await;
        return result.unwrap_err();
    }
    result.unwrap();
    let report = store.verify().await.unwrap();
    assert!(report.is_intact(), "{backend}: {:?}", report.damage);
    assert_eq!(
        (report.chains, report.versions, report.records),
        (1, 4, 2),
        "{backend}"
    );
    let history = store.history(Collection::Payments, "PAY-1").await.unwrap();
    assert_eq!(
        history.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(
        history[0]
            .content
            .as_deref()
            .unwrap()
            .contains("\"amount\":100")
    );
    let got = store
        .get(Collection::Payments, "PAY-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got.record,
        payment("PAY-1", P1, PaymentKind::Allocation, 101, "2021-03-01")
    );
    // The current version's time, no longer the last sighting's.
    assert_eq!(
        (got.first_seen, got.last_seen),
        (at("2021-07-01T00:00:00Z"), at("2021-07-02T00:00:00Z"))
    );
    let gone = store
        .get(Collection::Payments, "PAY-2")
        .await
        .unwrap()
        .unwrap();
    assert!(gone.deleted);
    assert_eq!(
        gone.record,
        payment("PAY-2", P1, PaymentKind::Expenditure, 50, "2021-03-02")
    );
    // The upgraded store takes new versions on the same chain.
    let o = store
        .apply(&batch(
            Collection::Payments,
            RunId(2),
            "2021-07-05T00:00:00Z",
            vec![up(payment(
                "PAY-1",
                P1,
                PaymentKind::Allocation,
                102,
                "2021-03-01",
            ))],
        ))
        .await
        .unwrap();
    assert_eq!(o.changed, 1);
    let report = store.verify().await.unwrap();
    assert!(report.is_intact(), "{backend}: {:?}", report.damage);
    assert_eq!(report.versions, 5);
    // Opening again does not re-hash anything.
    store.migrate().await.unwrap();
    assert!(store.verify().await.unwrap().is_intact());
    store.close().await;
    liankong::store::StoreError::NotFound("upgraded".into())
}

#[tokio::test]
async fn a_store_of_the_old_layout_is_rehashed_once_and_a_tampered_one_is_refused() {
    for tamper in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}?mode=rwc", dir.path().join("old.db").display());
        let e = legacy_store("sqlite", &url, tamper).await;
        if tamper {
            assert!(
                e.to_string()
                    .contains("the history of finance.payments is broken at \"PAY-1\" version 1"),
                "{e}"
            );
        }
        if skip_pg() {
            continue;
        }
        let (name, url) = create_pg_database().await;
        let e = legacy_store("postgres", &url, tamper).await;
        drop_pg_database(&name).await;
        if tamper {
            assert!(
                e.to_string().contains("broken at \"PAY-1\" version 1"),
                "{e}"
            );
        }
    }
}

/// A store as migrations 0008 to 0010 left it (flat batch roots), with two
/// batches of finance.payments; migrated, or the error of its migration.
/// `tamper` alters an entry first.
async fn flat_root_store(backend: &str, url: &str, tamper: bool) -> Result<(), String> {
    use liankong::store::{FlatRoot, GENESIS, batch_link, entry_hash};
    use liankong::witness::merkle::{leaf_hash, root};
    let store_url = liankong::store::StoreUrl::new(url);
    if backend == "sqlite" {
        let s = liankong::store::sqlite::SqlStore::connect(&store_url)
            .await
            .unwrap();
        s.migrate_until(9).await.unwrap();
        s.close().await;
    } else {
        let s = liankong::store::postgres::SqlStore::connect(&store_url)
            .await
            .unwrap();
        s.migrate_until(9).await.unwrap();
        s.close().await;
    }
    let raw = if backend == "sqlite" {
        Raw::Sqlite(sqlx::SqlitePool::connect(url).await.unwrap())
    } else {
        Raw::Postgres(sqlx::PgPool::connect(url).await.unwrap())
    };
    // What the first `migrate` after 0008 did with an empty old history.
    raw.exec("DELETE FROM store_upgrades; DROP TABLE legacy_versions")
        .await;
    let store = liankong::store::open(&store_url).await.unwrap();
    let records = [
        payment("PAY-2", P1, PaymentKind::Expenditure, 50, "2021-03-02"),
        payment("PAY-1", P1, PaymentKind::Allocation, 100, "2021-03-01"),
        payment("PAY-1", P1, PaymentKind::Allocation, 101, "2021-03-01"),
    ];
    let s = "finance.payments";
    store
        .apply(&batch(
            Collection::Payments,
            RunId(1),
            "2021-07-01T00:00:00Z",
            vec![up(records[0].clone()), up(records[1].clone())],
        ))
        .await
        .unwrap();
    store
        .apply(&batch(
            Collection::Payments,
            RunId(2),
            "2021-07-02T00:00:00Z",
            vec![up(records[2].clone())],
        ))
        .await
        .unwrap();
    store.close().await;
    // The batches' entries in (key, version) order, and their chain as the
    // flat roots of before made it.
    let e = |key: &str, version: i64, r: &Record| {
        entry_hash(s, key, version, false, Some(&r.content()))
    };
    let batches = [
        vec![e("PAY-1", 1, &records[1]), e("PAY-2", 1, &records[0])],
        vec![e("PAY-1", 2, &records[2])],
    ];
    let blob = |h: &[u8]| {
        if backend == "sqlite" {
            format!("X'{}'", hex::encode(h))
        } else {
            format!("'\\x{}'::bytea", hex::encode(h))
        }
    };
    let mut sql = String::new();
    let (mut flat_prev, mut merkle_prev) = (GENESIS, GENESIS);
    let mut merkle_roots = Vec::new();
    for (i, entries) in batches.iter().enumerate() {
        let mut flat = FlatRoot::default();
        entries.iter().for_each(|x| flat.push(x));
        let flat = flat.finish();
        let n = i as i64 + 1;
        flat_prev = batch_link(&flat_prev, s, n, entries.len() as i64, &flat);
        let merkle = root(&entries.iter().map(|x| leaf_hash(x)).collect::<Vec<_>>());
        merkle_prev = batch_link(&merkle_prev, s, n, entries.len() as i64, &merkle);
        merkle_roots.push(merkle);
        sql.push_str(&format!(
            "UPDATE chain SET root = {}, link = {} WHERE batch = {n} AND stream_id = (SELECT id FROM streams WHERE name = '{s}');\n",
            blob(&flat), blob(&flat_prev)
        ));
    }
    sql.push_str(&format!(
        "UPDATE streams SET head = {} WHERE name = '{s}';\n",
        blob(&flat_prev)
    ));
    if tamper {
        let forged = e("PAY-2", 1, &records[2]);
        sql.push_str(&format!(
            "UPDATE finance_payments SET entry = {} WHERE key = 'PAY-2';\n",
            blob(&forged)
        ));
    }
    raw.exec(&sql).await;

    let store = liankong::store::open(&store_url).await.unwrap();
    let migrated = store.migrate().await;
    if let Err(e) = migrated {
        store.close().await;
        return Err(e.to_string());
    }
    let report = store.verify().await.unwrap();
    assert!(report.is_intact(), "{backend}: {:?}", report.damage);
    assert_eq!((report.chains, report.versions), (1, 3), "{backend}");
    // The roots and links are now the Merkle roots and the links over them.
    for (i, r) in merkle_roots.iter().enumerate() {
        assert_eq!(
            raw.count(&format!(
                "SELECT COUNT(*) FROM chain WHERE batch = {} AND root = {}",
                i + 1,
                blob(r)
            ))
            .await,
            1,
            "{backend}: batch {}",
            i + 1
        );
    }
    assert_eq!(
        raw.count(&format!(
            "SELECT COUNT(*) FROM streams WHERE head = {}",
            blob(&merkle_prev)
        ))
        .await,
        1
    );
    // Opening again re-hashes nothing.
    store.migrate().await.unwrap();
    assert!(store.verify().await.unwrap().is_intact());
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn flat_batch_roots_are_rehashed_as_merkle_roots_once_and_a_tampered_store_is_refused() {
    for tamper in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}?mode=rwc", dir.path().join("flat.db").display());
        let sqlite = flat_root_store("sqlite", &url, tamper).await;
        let pg = if skip_pg() {
            None
        } else {
            let (name, url) = create_pg_database().await;
            let r = flat_root_store("postgres", &url, tamper).await;
            drop_pg_database(&name).await;
            Some(r)
        };
        for r in std::iter::once(sqlite).chain(pg) {
            match (tamper, r) {
                (false, r) => r.unwrap(),
                (true, Ok(())) => panic!("a tampered store was upgraded"),
                (true, Err(e)) => assert!(
                    e.contains("the history of finance.payments is broken at batch 1 (its versions do not match its root and link)"),
                    "{e}"
                ),
            }
        }
    }
}

#[tokio::test]
async fn a_large_run_leaves_postgresql_statistics_and_visibility_of_what_it_wrote() {
    on_both(|t| async move {
        if t.backend != "postgres" {
            return; // SQLite plans the rules without statistics
        }
        let estimate =
            "SELECT CAST(reltuples AS BIGINT) FROM pg_class WHERE relname = 'finance_payments'";
        // Never analysed: PostgreSQL says so with -1.
        assert_eq!(t.raw.count(estimate).await, -1);
        let mut tx = t.store.begin_sync().await.unwrap();
        let items = (0..10_000)
            .map(|i| {
                up(payment(
                    &format!("PAY-{i:05}"),
                    P1,
                    PaymentKind::Expenditure,
                    i,
                    "2021-03-01",
                ))
            })
            .collect();
        tx.apply(&batch(
            Collection::Payments,
            RunId(1),
            "2021-07-01T00:00:00Z",
            items,
        ))
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(t.raw.count(estimate).await, 10_000);
        // And a VACUUM after it has marked the new rows' pages all-visible,
        // so that the covering index is read alone.
        let visible = "SELECT CAST(relallvisible AS BIGINT) FROM pg_class \
             WHERE relname = 'finance_payments'";
        assert!(t.raw.count(visible).await > 0, "no page marked all-visible");
        // A small run leaves them as they are.
        let mut tx = t.store.begin_sync().await.unwrap();
        tx.apply(&batch(
            Collection::Payments,
            RunId(2),
            "2021-07-02T00:00:00Z",
            vec![up(payment(
                "PAY-X",
                P1,
                PaymentKind::Expenditure,
                1,
                "2021-03-01",
            ))],
        ))
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(t.raw.count(estimate).await, 10_000);

        // The store's sessions never compile a query (see `connect_options`).
        use sqlx::ConnectOptions as _;
        let options = liankong::store::postgres::connect_options(&t.url).unwrap();
        let mut session = options.connect().await.unwrap();
        let jit: String = sqlx::query_scalar("SHOW jit")
            .fetch_one(&mut session)
            .await
            .unwrap();
        assert_eq!(jit, "off");
    })
    .await;
}

/// A batch large enough for PostgreSQL's COPY path, with every character
/// COPY's text format gives a meaning in its text: each record comes back
/// as it went in, and the history verifies.
#[tokio::test]
async fn a_large_batch_keeps_tabs_backslashes_and_newlines() {
    on_both(|t| async move {
        let name = |i: usize| format!("单位\t{i}\\\n\r\"'{}", "路".repeat(i % 7));
        let items = (0..1_200)
            .map(|i| up(unit(&format!("{:06}", 370_000 + i), &name(i))))
            .collect();
        let o = t
            .store
            .apply(&batch(
                Collection::Units,
                RunId(1),
                "2021-07-01T00:00:00Z",
                items,
            ))
            .await
            .unwrap();
        assert_eq!(o.new, 1_200, "{}", t.backend);
        for i in [0, 1, 599, 1_199] {
            let got = t
                .store
                .get(Collection::Units, &format!("{:06}", 370_000 + i))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                got.record,
                unit(&format!("{:06}", 370_000 + i), &name(i)),
                "{}",
                t.backend
            );
        }
        let report = t.store.verify().await.unwrap();
        assert!(report.is_intact(), "{:?}", report.damage);
        assert_eq!((report.versions, report.records), (1_200, 1_200));
    })
    .await;
}

/// A complete snapshot that deletes more than one chunk of records: every
/// unseen record is deleted once, each chunk its own batch of the chain,
/// and the history verifies.
#[tokio::test]
async fn a_snapshot_deletes_many_records_in_chunks() {
    on_both(|t| async move {
        let code = |i: usize| format!("{:06}", 300_000 + i);
        let mut b = batch(
            Collection::Units,
            RunId(1),
            "2021-07-01T00:00:00Z",
            (0..12_001).map(|i| up(unit(&code(i), "单位"))).collect(),
        );
        b.complete_snapshot = true;
        assert_eq!(t.store.apply(&b).await.unwrap().new, 12_001);
        let mut b = batch(
            Collection::Units,
            RunId(2),
            "2021-07-02T00:00:00Z",
            vec![up(unit(&code(6_000), "单位"))],
        );
        b.complete_snapshot = true;
        let o = t.store.apply(&b).await.unwrap();
        assert_eq!((o.unchanged, o.deleted), (1, 12_000), "{}", t.backend);
        let live = t
            .raw
            .count("SELECT COUNT(*) FROM finance_units WHERE deleted = FALSE")
            .await;
        assert_eq!(live, 1);
        // The first load is one batch, the deletions three (5,000 at most each).
        assert_eq!(t.raw.count("SELECT COUNT(*) FROM chain").await, 4);
        let report = t.store.verify().await.unwrap();
        assert!(report.is_intact(), "{:?}", report.damage);
        assert_eq!((report.versions, report.records), (24_001, 12_001));
    })
    .await;
}

/// A first load writes its table without the secondary indexes where the
/// backend allows it (SQLite) and builds them before the run reads again or
/// commits: whatever the run, the table keeps exactly the indexes the
/// migrations made, and its rows are found through them.
#[tokio::test]
async fn a_first_load_leaves_the_indexes_as_the_migrations_made_them() {
    on_both(|t| async move {
        // SQLite: the key's unique index and the covering one, as 0006 made
        // it. PostgreSQL: those and 0012's two partial ones.
        let (index, expected) = if t.backend == "sqlite" {
            (
                "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'index' \
                 AND tbl_name = 'finance_payments' AND (sql IS NULL OR sql = \
                 'CREATE INDEX finance_payments_by_project \
                 ON finance_payments (project_code, kind, paid_on, deleted, amount)')",
                2,
            )
        } else {
            (
                "SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'finance_payments'",
                4,
            )
        };
        assert_eq!(t.raw.count(index).await, expected);
        let payments = |run: i64, n: i64| {
            let items = (0..n)
                .map(|i| {
                    let id = format!("PAY-{i:04}");
                    up(payment(
                        &id,
                        P1,
                        PaymentKind::Expenditure,
                        i + 1,
                        "2021-03-01",
                    ))
                })
                .collect();
            batch(
                Collection::Payments,
                RunId(run),
                "2021-07-01T00:00:00Z",
                items,
            )
        };

        // A first load given up half-way leaves the table as it was.
        let mut tx = t.store.begin_sync().await.unwrap();
        tx.apply(&payments(1, 300)).await.unwrap();
        drop(tx);
        assert_eq!(t.raw.count(index).await, expected);
        assert_eq!(
            t.raw.count("SELECT COUNT(*) FROM finance_payments").await,
            0
        );

        // One that lands, and reads in the middle of its run, builds them.
        let mut tx = t.store.begin_sync().await.unwrap();
        tx.apply(&payments(2, 300)).await.unwrap();
        tx.relink_units().await.unwrap();
        let again = payment("PAY-0000", P1, PaymentKind::Expenditure, 7, "2021-03-01");
        tx.apply(&batch(
            Collection::Payments,
            RunId(2),
            "2021-07-01T00:00:01Z",
            vec![up(again)],
        ))
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(t.raw.count(index).await, expected);
        let spent = "SELECT CAST(SUM(amount) AS BIGINT) FROM finance_payments \
             WHERE project_code = '3701002021000123' AND kind = 'expenditure' AND deleted = FALSE";
        assert_eq!(t.raw.count(spent).await, 300 * 301 / 2 - 1 + 7);
        let history = t
            .store
            .history(Collection::Payments, "PAY-0000")
            .await
            .unwrap();
        assert_eq!(history.len(), 2);
        assert!(t.store.verify().await.unwrap().is_intact());
    })
    .await;
}
