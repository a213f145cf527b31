//! The five shipped manifests against the simulator of SYSTEMS.md, on both
//! backends: exact landing, each quirk, incremental and snapshot semantics,
//! retries, TLS, quarantine, and crashes between batches.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use liankong::adapter::{Adapter, SyncOptions};

use liankong::demo::{SimConfigOptions, shipped_manifests, sim_config};
use liankong::model::*;
use liankong::money::Fen;

use support::*;

fn live(stats: &[liankong::store::CollectionStats], c: Collection) -> i64 {
    stats
        .iter()
        .find(|s| s.source == c.source() && s.collection == c.name())
        .unwrap()
        .live
}

/// Σ amount per project, as the store holds it.
async fn sums(t: &TestStore, table: &str) -> BTreeMap<String, i64> {
    let sql = format!(
        "SELECT project_code, CAST(SUM(amount) AS BIGINT) FROM {table} WHERE deleted = FALSE GROUP BY project_code"
    );
    match &t.raw {
        Raw::Sqlite(p) => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(p)
            .await
            .unwrap(),
        Raw::Postgres(p) => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(p)
            .await
            .unwrap(),
    }
    .into_iter()
    .collect()
}

#[tokio::test]
async fn a_full_sync_lands_exactly_the_generated_records() {
    on_both(|t| async move {
        let env = start(&t).await;
        sync_all(&t, &env).await;
        let ds = env.sim.data().snapshot();
        let stats = t.store.stats().await.unwrap();
        for c in Collection::FROM_AGENCIES {
            assert_eq!(live(&stats, c), ds.len(c) as i64, "{c}");
            assert!(ds.len(c) > 0, "the generator makes some {c}");
        }
        let mut payments: BTreeMap<String, i64> = BTreeMap::new();
        for p in &ds.payments {
            *payments.entry(p.project_code.to_string()).or_default() += p.amount.0;
        }
        assert_eq!(sums(&t, "finance_payments").await, payments);
        let mut quotas: BTreeMap<String, i64> = BTreeMap::new();
        for q in &ds.quotas {
            *quotas.entry(q.project_code.to_string()).or_default() += q.amount.0;
        }
        assert_eq!(sums(&t, "finance_quotas").await, quotas);
        // Every record is the generated one, field for field (万元 and dashed
        // codes included).
        for c in Collection::FROM_AGENCIES {
            for r in ds.records(c) {
                let got = t.store.get(c, &r.key()).await.unwrap().unwrap();
                assert_eq!(got.record, r, "{c} {}", r.key());
            }
        }
        let report = t.store.verify().await.unwrap();
        assert!(report.is_intact());
        // Every audit finding resolved to its unit, brackets and spaces notwithstanding.
        let unresolved = t
            .raw
            .count("SELECT COUNT(*) FROM audit_findings WHERE unit_code IS NULL")
            .await;
        assert_eq!(unresolved, 0);
        assert!(
            ds.findings
                .iter()
                .any(|f| !ds.units.iter().any(|u| u.unit_name == f.unit_name)),
            "the generator writes loose names"
        );
        env.sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_second_sync_writes_nothing_and_finance_pulls_from_its_mark() {
    on_both(|t| async move {
        let env = start(&t).await;
        sync_all(&t, &env).await;
        let versions = t.raw.count("SELECT COUNT(*) FROM versions").await;
        let mark = t
            .store
            .stream_state(Collection::Payments)
            .await
            .unwrap()
            .unwrap()
            .cursor
            .unwrap();
        env.sim.clear_requests();
        sync_all(&t, &env).await;
        assert_eq!(t.raw.count("SELECT COUNT(*) FROM versions").await, versions);
        let payments: Vec<_> = env
            .sim
            .requests()
            .into_iter()
            .filter(|r| r.path == "/api/v1/payments")
            .collect();
        let sent = payments[0]
            .query
            .split('&')
            .find_map(|kv| kv.strip_prefix("updated_since="))
            .expect("updated_since sent");
        assert_eq!(urlencoding_decode(sent), mark);

        // One changed payment is one new version.
        let mut p = env.sim.data().snapshot().payments[0].clone();
        p.amount = Fen(p.amount.0 + 1);
        p.updated_at = at("2021-10-01T09:00:00+08:00");
        let key = p.payment_id.clone();
        env.sim.data().upsert(Record::Payment(p));
        let r = sync(&t, &env, "finance").await;
        let (_, total) = r.totals();
        assert_eq!((total.changed, total.new), (1, 0));
        assert_eq!(
            t.store
                .history(Collection::Payments, &key)
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            t.raw.count("SELECT COUNT(*) FROM versions").await,
            versions + 1
        );

        // A voided payment arrives flagged and is a deletion.
        env.sim.data().delete(Collection::Payments, &key);
        let r = sync(&t, &env, "finance").await;
        assert_eq!(r.totals().1.deleted, 1);
        assert!(
            t.store
                .get(Collection::Payments, &key)
                .await
                .unwrap()
                .unwrap()
                .deleted
        );
        env.sim.shutdown().await;
    })
    .await;
}

fn urlencoding_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn audit_names_resolve_whatever_order_the_adapters_run_in() {
    on_both(|t| async move {
        let env = start(&t).await;
        // An unresolvable name stays stored, unresolved.
        let mut bogus = env.sim.data().snapshot().findings[0].clone();
        bogus.finding_no = "SJ-2021-9999".into();
        bogus.unit_name = "市不存在局（本级）".into();
        env.sim.data().upsert(Record::AuditFinding(bogus));
        env.sim.write_files().unwrap();
        let r = sync(&t, &env, "audit").await;
        assert!(r.ok(), "{:?}", r.error);
        let total = env.sim.data().snapshot().findings.len() as i64;
        assert_eq!(t.raw.count("SELECT COUNT(*) FROM audit_findings WHERE unit_code IS NULL").await, total);
        // Finance arrives later and fixes every link but the bogus one.
        sync(&t, &env, "finance").await;
        assert_eq!(t.raw.count("SELECT COUNT(*) FROM audit_findings WHERE unit_code IS NULL").await, 1);
        assert_eq!(
            t.raw.count("SELECT COUNT(*) FROM audit_findings WHERE unit_code IS NULL AND key = 'SJ-2021-9999'").await,
            1
        );
        // Each resolved finding names the unit whose normalised name matches.
        let ds = env.sim.data().snapshot();
        for f in ds.findings.iter().filter(|f| f.finding_no != "SJ-2021-9999") {
            let unit = ds
                .units
                .iter()
                .find(|u| normalize_unit_name(&u.unit_name) == normalize_unit_name(&f.unit_name))
                .unwrap();
            let sql = format!(
                "SELECT COUNT(*) FROM audit_findings WHERE key = '{}' AND unit_code = '{}'",
                f.finding_no, unit.unit_code
            );
            assert_eq!(t.raw.count(&sql).await, 1, "{}", f.finding_no);
        }
        env.sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn audit_files_newest_wins_part_ignored_deletions_and_quarantine() {
    on_both(|t| async move {
        let env = start(&t).await;
        let ds = env.sim.data().snapshot();
        let n = ds.findings.len() as i64;
        // An older snapshot with nothing in it and a newer one still being written.
        env.sim
            .write_audit_file("audit_findings_20200101.csv", &[])
            .unwrap();
        env.sim
            .write_partial_audit_file("audit_findings_20991231.csv", &ds.findings[..1])
            .unwrap();
        let r = sync(&t, &env, "audit").await;
        assert!(r.ok(), "{:?}", r.error);
        assert_eq!(r.totals().1.new, n as u64);
        assert!(r.streams[0].complete);

        // A newer snapshot without the first finding deletes it.
        env.sim
            .write_audit_file("audit_findings_20211001.csv", &ds.findings[1..])
            .unwrap();
        let r = sync(&t, &env, "audit").await;
        assert_eq!(
            (r.totals().1.deleted, r.totals().1.unchanged),
            (1, n as u64 - 1)
        );
        assert!(
            t.store
                .get(Collection::Findings, &ds.findings[0].finding_no)
                .await
                .unwrap()
                .unwrap()
                .deleted
        );

        // A malformed amount is quarantined with its reason; the other rows
        // land. The bad row names its key, so the snapshot is still whole:
        // every finding it no longer holds is deleted (few enough for the
        // mass-deletion guard of this small stream).
        let header =
            "问题编号,被审计单位,项目编码,问题类型,涉及金额,整改状态,整改期限,发现日期\r\n";
        let mut text = header.to_owned();
        text.push_str(
            "SJ-2021-7001,市教育局（本级）,,挤占挪用,\"12,34.5x\",未整改,2021/12/31,2021/3/5\r\n",
        );
        text.push_str(
            "SJ-2021-7002,市 教育局 (本级),,虚列支出,3.50,整改中,2021/12/31,2021/3/5\r\n",
        );
        let (gbk, _, _) = encoding_rs::GBK.encode(&text);
        std::fs::write(
            env.sim.audit_dir().join("audit_findings_20211002.csv"),
            &gbk,
        )
        .unwrap();
        let r = sync(&t, &env, "audit").await;
        assert!(r.ok());
        let o = r.totals().1;
        assert_eq!((o.new, o.quarantined, o.deleted), (1, 1, n as u64 - 1));
        assert!(r.streams[0].complete);
        assert_eq!(
            r.streams[0].status("audit"),
            "ok, complete with 1 quarantined"
        );
        let q = t
            .store
            .quarantined(Some(Collection::Findings), true, 5)
            .await
            .unwrap();
        assert!(
            q[0].reason
                .contains("\"12,34.5x\" is not an amount in 万元"),
            "{}",
            q[0].reason
        );
        assert!(q[0].raw.contains("SJ-2021-7001"));
        let landed = t
            .store
            .get(Collection::Findings, "SJ-2021-7002")
            .await
            .unwrap()
            .unwrap();
        let Record::AuditFinding(f) = landed.record else {
            panic!()
        };
        assert_eq!(
            (f.amount, f.status),
            (Fen(3_500_000), FindingStatus::InProgress)
        );
        env.sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn orgdept_workbooks_read_number_and_text_rate_cells() {
    on_both(|t| async move {
        let env = start(&t).await;
        let r = sync(&t, &env, "orgdept").await;
        assert!(r.ok(), "{:?}", r.error);
        let ds = env.sim.data().snapshot();
        assert_eq!(r.totals().1.new, ds.orgdept.len() as u64);
        for e in &ds.orgdept {
            let got = t
                .store
                .get(
                    Collection::OrgdeptEvaluations,
                    &Record::OrgdeptEvaluation(e.clone()).key(),
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got.record, Record::OrgdeptEvaluation(e.clone()));
        }
        env.sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_column_named_twice_refuses_the_whole_file_and_keeps_the_store() {
    on_both(|t| async move {
        let env = start(&t).await;
        let ds = env.sim.data().snapshot();
        let n = ds.findings.len() as i64;
        let live_findings = "SELECT COUNT(*) FROM audit_findings WHERE deleted = FALSE";
        let r = sync(&t, &env, "audit").await;
        assert!(r.ok(), "{:?}", r.error);
        assert_eq!(t.raw.count(live_findings).await, n);
        let cursor = t.store.stream_state(Collection::Findings).await.unwrap();

        // A newer snapshot whose export grew a second 问题编号 column with
        // other numbers in it. The second one used to win: every row landed
        // under a key of its own, and the clean snapshot deleted all n real
        // findings.
        let csv = liankong::sim::files::audit_csv(&ds.findings[1..]).unwrap();
        let (text, _, _) = encoding_rs::GBK.decode(&csv);
        let mut doubled = String::new();
        for (i, line) in text.split_terminator("\r\n").enumerate() {
            let again = match i {
                0 => "问题编号".to_owned(),
                i => format!("SJ-X-{i:05}"),
            };
            doubled.push_str(&format!("{line},{again}\r\n"));
        }
        let (gbk, _, _) = encoding_rs::GBK.encode(&doubled);
        let path = env.sim.audit_dir().join("audit_findings_20991231.csv");
        std::fs::write(&path, &gbk).unwrap();
        let r = sync(&t, &env, "audit").await;
        assert_eq!(t.raw.count(live_findings).await, n, "{:?}", r.totals());
        assert_eq!(t.raw.count("SELECT COUNT(*) FROM audit_findings").await, n);
        assert_eq!(
            r.error,
            Some(format!(
                "{}: column \"问题编号\" appears twice in the header (columns 1 and 9); \
                 the file is refused whole",
                path.display()
            ))
        );
        assert!(
            r.streams.is_empty(),
            "nothing of the run is reported as kept"
        );
        assert!(
            t.store
                .get(Collection::Findings, "SJ-X-00001")
                .await
                .unwrap()
                .is_none()
        );
        let first = t
            .store
            .get(Collection::Findings, &ds.findings[0].finding_no)
            .await;
        assert!(!first.unwrap().unwrap().deleted);
        assert_eq!(
            t.store.stream_state(Collection::Findings).await.unwrap(),
            cursor
        );
        assert!(
            t.store
                .quarantined(Some(Collection::Findings), false, 5)
                .await
                .unwrap()
                .is_empty()
        );

        // A workbook whose header names 单位编码 twice, beside the
        // quarters already read: refused, and the quarters stay.
        let r = sync(&t, &env, "orgdept").await;
        assert!(r.ok(), "{:?}", r.error);
        let m = ds.orgdept.len() as i64;
        let stats = t.store.stats().await.unwrap();
        assert_eq!(live(&stats, Collection::OrgdeptEvaluations), m);
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.set_name(liankong::sim::files::ORGDEPT_SHEET).unwrap();
        for (c, title) in (0u16..).zip(liankong::sim::files::ORGDEPT_HEADER) {
            sheet.write_string(0, c, title).unwrap();
        }
        sheet.write_string(0, 7, "单位编码").unwrap();
        let e = &ds.orgdept[0];
        sheet.write_string(1, 0, e.unit_code.as_str()).unwrap();
        sheet.write_string(1, 1, &e.unit_name).unwrap();
        sheet.write_number(1, 2, 2099).unwrap();
        sheet.write_number(1, 3, 4).unwrap();
        sheet.write_string(1, 4, "47.50").unwrap();
        sheet.write_number(1, 5, 90).unwrap();
        sheet.write_string(1, 6, "优").unwrap();
        sheet.write_string(1, 7, "999999").unwrap();
        let path = env.sim.orgdept_dir().join("kaoping_2099Q4.xlsx");
        std::fs::write(&path, workbook.save_to_buffer().unwrap()).unwrap();
        let r = sync(&t, &env, "orgdept").await;
        assert_eq!(
            r.error,
            Some(format!(
                "{}: column \"单位编码\" appears twice in the header (columns A and H); \
                 the file is refused whole",
                path.display()
            ))
        );
        let stats = t.store.stats().await.unwrap();
        assert_eq!(live(&stats, Collection::OrgdeptEvaluations), m);
        assert_eq!(live(&stats, Collection::Findings), n);

        // Once the files are fixed, the next runs go on from where the last
        // good ones left off.
        std::fs::remove_file(env.sim.audit_dir().join("audit_findings_20991231.csv")).unwrap();
        std::fs::remove_file(&path).unwrap();
        for name in ["audit", "orgdept"] {
            let r = sync(&t, &env, name).await;
            assert!(r.ok(), "{name}: {:?}", r.error);
            assert_eq!(r.totals().0, 0, "{name}: the files the store holds whole");
        }
        env.sim.shutdown().await;
    })
    .await;
}

/// The orgdept manifest with `max_inflated_bytes` set.
fn orgdept_limited(env: &Env, dir: &Path, limit: u64) -> Adapter {
    let text = std::fs::read_to_string(shipped_manifests().join("orgdept.toml"))
        .unwrap()
        .replace(
            "sheet = \"部门考评\"",
            &format!("sheet = \"部门考评\"\nmax_inflated_bytes = {limit}"),
        );
    assert!(text.contains("max_inflated_bytes"));
    let path = dir.join("orgdept-limited.toml");
    std::fs::write(&path, text).unwrap();
    let mut c = env.config.adapters["orgdept"].clone();
    c.manifest = path;
    Adapter::build("orgdept", &c, &env.config).unwrap()
}

/// What the parts of a workbook declare uncompressed: in all, and its
/// biggest part's name and size.
fn declared(path: &Path) -> (u64, String, u64) {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let sizes: Vec<(String, u64)> = (0..archive.len())
        .map(|i| {
            let f = archive.by_index(i).unwrap();
            (f.name().unwrap().into_owned(), f.size())
        })
        .collect();
    let (name, biggest) = sizes.iter().max_by_key(|(_, s)| *s).unwrap().clone();
    (sizes.iter().map(|(_, s)| s).sum(), name, biggest)
}

#[tokio::test]
async fn a_workbook_past_max_inflated_bytes_fails_its_adapter_alone() {
    on_both(|t| async move {
        let env = start(&t).await;
        let ds = env.sim.data().snapshot();
        // The limit is the largest of the quarters' workbooks: they are read.
        let mut quarters: Vec<_> = std::fs::read_dir(env.sim.orgdept_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        quarters.sort();
        assert!(quarters.len() > 1);
        let limit = quarters.iter().map(|q| declared(q).0).max().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let orgdept = orgdept_limited(&env, dir.path(), limit);
        let r = sync_with(&t, &orgdept, &SyncOptions::default()).await;
        assert!(r.ok(), "{:?}", r.error);
        let m = ds.orgdept.len() as i64;
        assert_eq!(r.totals().1.new, m as u64);
        let state = t
            .store
            .stream_state(Collection::OrgdeptEvaluations)
            .await
            .unwrap();

        // A workbook of shared strings that inflate past it: a bomb at the
        // scale of a test, which calamine would have held whole.
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.set_name(liankong::sim::files::ORGDEPT_SHEET).unwrap();
        for (c, title) in (0u16..).zip(liankong::sim::files::ORGDEPT_HEADER) {
            sheet.write_string(0, c, title).unwrap();
        }
        let filler = "考".repeat(10_000);
        for r in 1..=(limit / 30_000 + 2) as u32 {
            sheet.write_string(r, 1, format!("{r}{filler}")).unwrap();
        }
        let bomb = env.sim.orgdept_dir().join("kaoping_2099Q4.xlsx");
        std::fs::write(&bomb, workbook.save_to_buffer().unwrap()).unwrap();
        let (total, part, size) = declared(&bomb);
        assert!(total > limit && std::fs::metadata(&bomb).unwrap().len() < limit);
        let r = sync_with(&t, &orgdept, &SyncOptions::default()).await;
        assert_eq!(
            r.error,
            Some(format!(
                "{}: its parts declare {total} bytes uncompressed ({part}: {size}), over the \
                 limit of {limit} (max_inflated_bytes); the file is refused whole",
                bomb.display()
            ))
        );
        assert_eq!(part, "xl/sharedStrings.xml");
        let stats = t.store.stats().await.unwrap();
        assert_eq!(live(&stats, Collection::OrgdeptEvaluations), m);
        assert_eq!(
            t.store
                .stream_state(Collection::OrgdeptEvaluations)
                .await
                .unwrap(),
            state
        );

        // The other adapters of this process run on, and so does this one
        // once the bomb is gone.
        let r = sync(&t, &env, "audit").await;
        assert!(r.ok(), "{:?}", r.error);
        assert_eq!(r.totals().1.new, ds.findings.len() as u64);
        std::fs::remove_file(&bomb).unwrap();
        let r = sync_with(&t, &orgdept, &SyncOptions::default()).await;
        assert!(r.ok(), "{:?}", r.error);
        let stats = t.store.stats().await.unwrap();
        assert_eq!(live(&stats, Collection::OrgdeptEvaluations), m);
        env.sim.shutdown().await;
    })
    .await;
}

/// The npc manifest with small pages, so the snapshot spans several.
fn npc_small_pages(env: &Env, dir: &Path) -> Adapter {
    let text = std::fs::read_to_string(shipped_manifests().join("npc.toml"))
        .unwrap()
        .replace("size = 500", "size = 20");
    let path = dir.join("npc-small-pages.toml");
    std::fs::write(&path, text).unwrap();
    let mut c = env.config.adapters["npc"].clone();
    c.manifest = path;
    let mut npc = Adapter::build("npc", &c, &env.config).unwrap();
    // Small batches too, so that a run is several of them.
    npc.batch_size = 20;
    npc
}

#[tokio::test]
async fn npc_snapshots_delete_only_when_complete() {
    on_both(|t| async move {
        let env = start(&t).await;
        let dir = tempfile::tempdir().unwrap();
        let npc = npc_small_pages(&env, dir.path());
        let r = sync_with(&t, &npc, &SyncOptions::default()).await;
        assert!(r.ok(), "{:?}", r.error);
        let ds = env.sim.data().snapshot();
        assert!(ds.budgets.len() > 40, "several pages");
        let gone = Record::ApprovedBudget(ds.budgets[0].clone()).key();
        env.sim.data().delete(Collection::Budgets, &gone);

        // A page that keeps failing: the run fails and nothing is deleted.
        env.sim.faults().add_always_fail("npc/budgets?page=2&");
        let r = sync_with(&t, &npc, &SyncOptions::default()).await;
        assert!(!r.ok());
        assert!(
            r.error.as_deref().unwrap().contains("HTTP 503"),
            "{:?}",
            r.error
        );
        assert!(
            !t.store
                .get(Collection::Budgets, &gone)
                .await
                .unwrap()
                .unwrap()
                .deleted
        );

        env.sim.faults().clear();
        let r = sync_with(&t, &npc, &SyncOptions::default()).await;
        assert!(r.ok());
        assert_eq!(r.totals().1.deleted, 1);
        assert!(
            t.store
                .get(Collection::Budgets, &gone)
                .await
                .unwrap()
                .unwrap()
                .deleted
        );
        // Dashed codes were stripped and 万元 converted exactly.
        let b = &ds.budgets[1];
        let got = t
            .store
            .get(
                Collection::Budgets,
                &Record::ApprovedBudget(b.clone()).key(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.record, Record::ApprovedBudget(b.clone()));
        env.sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn finance_survives_an_early_token_expiry_and_rate_limits() {
    on_both(|t| async move {
        let env = start(&t).await;
        // Tokens die after 150 ms although they claim an hour; each answer
        // takes 40 ms, so the token dies mid-run.
        env.sim
            .faults()
            .set_token_ttl(Some(Duration::from_millis(150)));
        env.sim.faults().set_latency(Duration::from_millis(40));
        let r = sync(&t, &env, "finance").await;
        assert!(r.ok(), "{:?}", r.error);
        let log = env.sim.requests();
        let tokens = log.iter().filter(|r| r.path == "/oauth/token").count();
        let unauthorized = log.iter().filter(|r| r.status == 401).count();
        assert!(
            tokens >= 2 && unauthorized >= 1,
            "tokens {tokens}, 401s {unauthorized}"
        );

        // 429 with Retry-After: 1 is waited out, not hammered.
        env.sim.faults().set_token_ttl(None);
        env.sim.faults().set_latency(Duration::ZERO);
        env.sim.faults().set_rate_limit(0.5, 1);
        env.sim.clear_requests();
        let started = std::time::Instant::now();
        let r = sync_with(
            &t,
            &adapter(&env, "finance"),
            &SyncOptions {
                full: true,
                ..Default::default()
            },
        )
        .await;
        assert!(r.ok(), "{:?}", r.error);
        let limited = env
            .sim
            .requests()
            .iter()
            .filter(|r| r.status == 429)
            .count();
        assert!(limited >= 1, "the simulator rate-limited");
        assert!(
            started.elapsed() >= Duration::from_secs(limited as u64),
            "{limited} × Retry-After: 1"
        );
        env.sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn discipline_mutual_tls_is_required_and_the_ca_is_checked() {
    on_both(|t| async move {
        let env = start(&t).await;
        assert!(sync(&t, &env, "discipline").await.ok());

        // Without a client certificate the server refuses the handshake.
        let dir = tempfile::tempdir().unwrap();
        let manifest = std::fs::read_to_string(shipped_manifests().join("discipline.toml"))
            .unwrap()
            .replace("client_certificate = true", "client_certificate = false");
        let path = dir.path().join("discipline-no-client-cert.toml");
        std::fs::write(&path, manifest).unwrap();
        let mut c = env.config.adapters["discipline"].clone();
        c.manifest = path;
        c.tls.client_cert = None;
        c.tls.client_key = None;
        let a = Adapter::build("discipline", &c, &env.config).unwrap();
        let r = sync_with(&t, &a, &SyncOptions::default()).await;
        assert!(!r.ok());
        // The shipped manifest will not even build without one.
        let err = Adapter::build(
            "discipline",
            &{
                let mut c = env.config.adapters["discipline"].clone();
                c.tls.client_cert = None;
                c.tls.client_key = None;
                c
            },
            &env.config,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("requires mutual TLS"), "{err}");

        // A server whose certificate another CA signed is refused.
        let other = liankong::sim::Pki::generate().unwrap();
        let ca = dir.path().join("other-ca.pem");
        std::fs::write(&ca, &other.ca_cert_pem).unwrap();
        let mut c = env.config.adapters["discipline"].clone();
        c.tls.ca = Some(ca);
        let a = Adapter::build("discipline", &c, &env.config).unwrap();
        let r = sync_with(&t, &a, &SyncOptions::default()).await;
        let e = r.error.unwrap();
        assert!(
            e.contains("TLS") || e.to_lowercase().contains("certificate"),
            "{e}"
        );
        env.sim.shutdown().await;
    })
    .await;
}

/// A relay on loopback to `target` that counts the TCP connections it
/// accepts: what a client tried, whether or not its handshake got through.
async fn counting_relay(
    target: std::net::SocketAddr,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (port, count)
}

/// A CA certificate of another name than the simulator's CA.
fn unrelated_ca_pem() -> String {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "some other CA");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

#[tokio::test]
async fn tls_refusals_are_tried_once_and_named() {
    on_both(|t| async move {
        let env = start(&t).await;
        let dir = tempfile::tempdir().unwrap();
        let (port, connections) = counting_relay(env.sim.discipline_addr()).await;
        let relayed = |ca: Option<&str>| {
            let mut c = env.config.adapters["discipline"].clone();
            c.base_url = Some(format!("https://localhost:{port}"));
            if let Some(pem) = ca {
                let path = dir.path().join(format!("ca-{}.pem", pem.len()));
                std::fs::write(&path, pem).unwrap();
                c.tls.ca = Some(path);
            }
            Adapter::build("discipline", &c, &env.config).unwrap()
        };
        // Through the relay with the right CA, the run lands: the relay is
        // transparent.
        let r = sync_with(&t, &relayed(None), &SyncOptions::default()).await;
        assert!(r.ok(), "{:?}", r.error);
        let clean = connections.swap(0, std::sync::atomic::Ordering::SeqCst);
        assert!(clean >= 1);

        // Another simulator's CA carries the same name as this one's, with
        // another key: the server's certificate does not verify under it.
        let impostor = liankong::sim::Pki::generate().unwrap().ca_cert_pem;
        let unknown = unrelated_ca_pem();
        for (ca, words) in [(unknown, "UnknownIssuer"), (impostor, "BadSignature")] {
            let r = sync_with(&t, &relayed(Some(&ca)), &SyncOptions::default()).await;
            let e = r.error.unwrap();
            assert!(e.contains("TLS failure") && e.contains(words), "{e}");
            assert_eq!(
                connections.swap(0, std::sync::atomic::Ordering::SeqCst),
                1,
                "a TLS refusal is final: one attempt ({e})"
            );
        }
        // A client certificate the commission did not issue is refused by
        // the server, as finally.
        let other = liankong::sim::Pki::generate().unwrap();
        let cert = dir.path().join("other-client.pem");
        let key = dir.path().join("other-client.key");
        std::fs::write(&cert, &other.client_cert_pem).unwrap();
        std::fs::write(&key, &other.client_key_pem).unwrap();
        let mut c = env.config.adapters["discipline"].clone();
        c.base_url = Some(format!("https://localhost:{port}"));
        c.tls.client_cert = Some(cert);
        c.tls.client_key = Some(format!("file:{}", key.display()).try_into().unwrap());
        let a = Adapter::build("discipline", &c, &env.config).unwrap();
        let e = sync_with(&t, &a, &SyncOptions::default())
            .await
            .error
            .unwrap();
        assert!(
            e.contains("TLS failure") && e.contains("received fatal alert"),
            "{e}"
        );
        assert_eq!(
            connections.swap(0, std::sync::atomic::Ordering::SeqCst),
            1,
            "a refused client certificate is final: one attempt ({e})"
        );
        env.sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn refused_credentials_and_long_retry_afters_say_what_they_are_at_once() {
    on_both(|t| async move {
        let env = start(&t).await;
        let dir = tempfile::tempdir().unwrap();
        let wrong = dir.path().join("wrong");
        std::fs::write(&wrong, "not-the-key").unwrap();
        let with_wrong = |name: &str, secret: &str| {
            let mut c = env.config.adapters[name].clone();
            c.secrets.insert(
                secret.to_owned(),
                liankong::config::SecretRef::File(wrong.clone()),
            );
            Adapter::build(name, &c, &env.config).unwrap()
        };
        let requests = |system: &str| {
            let log = env.sim.requests();
            env.sim.clear_requests();
            log.iter()
                .filter(|r| r.system == system)
                .map(|r| r.status)
                .collect::<Vec<_>>()
        };

        // A wrong API key is a refused key, not an expired token, and one
        // request says so.
        env.sim.clear_requests();
        let e = sync_with(&t, &with_wrong("npc", "api_key"), &SyncOptions::default())
            .await
            .error
            .unwrap();
        assert!(
            e.ends_with(
                ": HTTP 401: the source refused the API key sent in X-Api-Key (secret \"api_key\")"
            ),
            "{e}"
        );
        assert_eq!(requests("npc"), [401]);

        // The token endpoint refusing the client secret names both secrets.
        let e = sync_with(
            &t,
            &with_wrong("finance", "client_secret"),
            &SyncOptions::default(),
        )
        .await
        .error
        .unwrap();
        assert!(
            e.ends_with(
                "/oauth/token: HTTP 401: the token endpoint refused the client credentials \
                 (secrets \"client_id\" and \"client_secret\")"
            ),
            "{e}"
        );
        assert_eq!(requests("finance"), [401]);

        // A Retry-After beyond sync.max_retry_after_secs (300 by default)
        // is not waited for, and the error says why.
        env.sim.faults().set_rate_limit(1.0, 600);
        let e = sync(&t, &env, "finance").await.error.unwrap();
        assert!(
            e.ends_with(
                ": HTTP 429 with Retry-After 600 s, longer than sync.max_retry_after_secs \
                 (300 s): not waiting; the next run tries again"
            ),
            "{e}"
        );
        assert_eq!(requests("finance"), [429]);
        env.sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_run_stopped_between_batches_leaves_nothing_and_the_next_lands_all() {
    on_both(|t| async move {
        let env = start(&t).await;
        let dir = tempfile::tempdir().unwrap();
        let npc = npc_small_pages(&env, dir.path());
        let stopped = sync_with(
            &t,
            &npc,
            &SyncOptions {
                stop_after_batches: Some(3),
                ..Default::default()
            },
        )
        .await;
        assert!(
            stopped
                .error
                .as_deref()
                .unwrap()
                .contains("stopped after 3 batches")
        );
        assert_eq!(t.raw.count("SELECT COUNT(*) FROM npc_budgets").await, 0);
        assert_eq!(t.raw.count("SELECT COUNT(*) FROM versions").await, 0);
        assert!(
            t.store
                .stream_state(Collection::Budgets)
                .await
                .unwrap()
                .is_none()
        );

        let r = sync_with(&t, &npc, &SyncOptions::default()).await;
        assert!(r.ok());
        let ds = env.sim.data().snapshot();
        let records = (ds.budgets.len() + ds.execution.len()) as i64;
        assert_eq!(
            t.raw.count("SELECT COUNT(*) FROM versions").await,
            records,
            "one version each, none doubled"
        );
        assert!(t.store.verify().await.unwrap().is_intact());
        env.sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn check_reports_each_adapter_and_the_cli_syncs() {
    on_both(|t| async move {
        let env = start(&t).await;
        let config = env.sim.dir().join("liankong.toml");
        let text = sim_config(
            &env.sim,
            &SimConfigOptions {
                store_url: t.url.expose().to_owned(),
                manifests: shipped_manifests(),
                quick_retries: true,
            },
        )
        .unwrap();
        std::fs::write(&config, text).unwrap();
        let run = |args: Vec<&'static str>| {
            let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"));
            c.arg("--config").arg(&config).args(args);
            tokio::task::spawn_blocking(move || c.output().unwrap())
        };
        let check = run(vec!["check", "--connect"]).await.unwrap();
        let out = String::from_utf8_lossy(&check.stdout);
        assert_eq!(
            check.status.code(),
            Some(0),
            "{out}{}",
            String::from_utf8_lossy(&check.stderr)
        );
        for line in [
            "ok     finance.payments",
            "ok     npc.budgets",
            "ok     audit.findings",
            "ok     discipline.referrals",
            "ok     orgdept.evaluations",
        ] {
            assert!(out.contains(line), "{line} missing from:\n{out}");
        }
        // --connect opens the store as well.
        assert!(
            out.ends_with(&format!(
                "\nstore: {}\n  ok     reached, every migration applied\n",
                t.url
            )),
            "{out}"
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"));
        c.arg("--config").arg(&config).args(["check", "--connect"]);
        c.env("LIANKONG_STORE_URL", format!("postgres://postgres@127.0.0.1:{port}/x"));
        let unreachable = tokio::task::spawn_blocking(move || c.output().unwrap()).await.unwrap();
        let out = String::from_utf8_lossy(&unreachable.stdout);
        assert_eq!(unreachable.status.code(), Some(1), "{out}");
        assert!(
            out.ends_with(
                "  FAILED database error: error communicating with database: Connection refused (os error 111)\n"
            ),
            "{out}"
        );
        let sync = run(vec!["sync"]).await.unwrap();
        let out = String::from_utf8_lossy(&sync.stdout);
        assert_eq!(sync.status.code(), Some(0), "{out}");
        assert!(out.contains("finance.payments"), "{out}");
        env.sim.faults().add_always_fail("/npc/");
        let sync = run(vec!["sync"]).await.unwrap();
        let out = String::from_utf8_lossy(&sync.stdout);
        assert_eq!(sync.status.code(), Some(1), "{out}");
        assert!(out.contains("npc") && out.contains("FAILED"), "{out}");
        assert!(
            out.contains("finance.payments"),
            "the other adapters still ran:\n{out}"
        );
        env.sim.shutdown().await;
    })
    .await;
}

/// Reads sd_notify datagrams until one contains `want`.
fn expect_notify(socket: &std::os::unix::net::UnixDatagram, want: &str, seen: &mut Vec<String>) {
    let mut buf = [0u8; 4096];
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while std::time::Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            seen.push(msg.clone());
            if msg.lines().any(|l| l == want) {
                return;
            }
        }
    }
    panic!("no {want} from the daemon; got {seen:?}");
}

#[tokio::test]
async fn the_daemon_speaks_sd_notify_reloads_and_stops() {
    on_both(|t| async move {
        let env = start(&t).await;
        liankong::demo::plant_anomalies(env.sim.data());
        env.sim.write_files().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let text = sim_config(
            &env.sim,
            &SimConfigOptions {
                store_url: t.url.expose().to_owned(),
                manifests: shipped_manifests(),
                quick_retries: true,
            },
        )
        .unwrap()
        // Every two seconds, so the test sees a cycle soon.
        .replace("schedule = \"*/5 * * * *\"", "schedule = \"*/2 * * * * *\"")
            + &format!("\n[api]\nlisten = \"127.0.0.1:{port}\"\n");
        let config = env.sim.dir().join("daemon.toml");
        std::fs::write(&config, &text).unwrap();
        let socket_path = env.sim.dir().join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"));
        command
            .arg("--config")
            .arg(&config)
            .arg("run")
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "400000")
            .env("RUST_LOG", "info");
        let mut daemon = Spawned::start(command, env.sim.dir().join("daemon.log"));
        let seen = tokio::task::spawn_blocking(move || {
            let mut seen = Vec::new();
            expect_notify(&socket, "READY=1", &mut seen);
            expect_notify(&socket, "WATCHDOG=1", &mut seen);
            (socket, seen)
        });
        let (socket, mut seen) = seen.await.unwrap();
        assert!(seen[0].contains("READY=1"), "READY comes first: {seen:?}");

        // Nobody reads the notify socket for a while, as when systemd is
        // busy: its queue (ten datagrams) fills with watchdog pets, and the
        // daemon must go on working all the same.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let before = t.raw.count("SELECT COUNT(*) FROM reconcile_runs").await;

        // The daemon syncs every adapter on schedule, reconciles after (as of
        // today, so whatever it finds), and serves the API. On a loaded
        // machine the first cycle may take a while.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut adapters = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            adapters = t
                .store
                .adapter_runs()
                .await
                .unwrap()
                .iter()
                // The newest run of each may be in progress: has it ever
                // finished well?
                .filter(|r| r.last_success.is_some())
                .count();
            let reconciled = t.raw.count("SELECT COUNT(*) FROM reconcile_runs").await;
            if adapters == 5 && reconciled > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let reconciled = t.raw.count("SELECT COUNT(*) FROM reconcile_runs").await;
        assert!(
            adapters == 5 && reconciled > before,
            "every adapter ran ({adapters} of 5) and the daemon went on reconciling \
             ({before} evaluations, then {reconciled}); its log:\n{}",
            daemon.log()
        );
        assert!(
            !t.store.alerts().await.unwrap().is_empty(),
            "the daemon reconciled after syncing"
        );
        let ready = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);

        // A good reload, then a bad one that is rejected while the daemon goes on.
        daemon.signal("-HUP");
        let socket = tokio::task::spawn_blocking(move || {
            expect_notify(&socket, "RELOADING=1", &mut seen);
            expect_notify(&socket, "READY=1", &mut seen);
            (socket, seen)
        });
        let (socket, seen) = socket.await.unwrap();
        std::fs::write(&config, "[store]\nurl = 42\n").unwrap();
        daemon.signal("-HUP");
        let socket = tokio::task::spawn_blocking(move || {
            let mut seen = seen;
            expect_notify(&socket, "RELOADING=1", &mut seen);
            expect_notify(&socket, "READY=1", &mut seen);
            (socket, seen)
        });
        let (socket, seen) = socket.await.unwrap();
        assert_eq!(
            http.get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );

        daemon.signal("-TERM");
        tokio::task::spawn_blocking(move || {
            let mut seen = seen;
            expect_notify(&socket, "STOPPING=1", &mut seen);
        })
        .await
        .unwrap();
        // The runs in hand finish within the shutdown deadline (60 s).
        let status = daemon.exit_status(Duration::from_secs(120)).await;
        let log = daemon.log();
        assert!(status.success(), "{status:?}\n{log}");
        assert!(log.contains("reload rejected"), "{log}");
        assert!(log.contains("stopped"), "{log}");
        env.sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn one_replica_at_a_time_pulls_a_source() {
    on_both(|t| async move {
        let env = start(&t).await;
        let now = liankong::clock::Clock::now(&liankong::clock::SystemClock);
        // Another replica holds finance's lease: this one skips and writes nothing.
        assert!(
            t.store
                .try_lease(
                    "adapter:finance",
                    "replica-b",
                    now,
                    now + chrono::Duration::hours(1)
                )
                .await
                .unwrap()
        );
        let r = sync(&t, &env, "finance").await;
        assert!(r.skipped && r.ok(), "{r:?}");
        assert_eq!(
            t.raw.count("SELECT COUNT(*) FROM finance_payments").await,
            0
        );
        assert!(
            !t.store
                .try_lease(
                    "adapter:finance",
                    "replica-c",
                    now,
                    now + chrono::Duration::hours(1)
                )
                .await
                .unwrap()
        );
        // Its holder died: once the lease expires, the source is pulled.
        assert!(
            t.store
                .try_lease(
                    "adapter:finance",
                    "replica-b",
                    now,
                    now - chrono::Duration::seconds(1)
                )
                .await
                .unwrap()
        );
        let r = sync(&t, &env, "finance").await;
        assert!(!r.skipped && r.ok(), "{r:?}");
        assert!(t.raw.count("SELECT COUNT(*) FROM finance_payments").await > 0);
        // The run gave its lease back.
        assert!(
            t.store
                .try_lease(
                    "adapter:finance",
                    "replica-c",
                    now,
                    now + chrono::Duration::hours(1)
                )
                .await
                .unwrap()
        );
        env.sim.shutdown().await;
    })
    .await;
}

/// A run that lasts several lease renewals finishes. On SQLite a renewal
/// waits for the write lock the run itself holds: it must never be awaited
/// in the run's place, or the run waits for ever.
#[tokio::test]
async fn a_run_longer_than_its_lease_renewals_finishes() {
    on_both(|t| async move {
        let env = start(&t).await;
        let dir = tempfile::tempdir().unwrap();
        let mut npc = npc_small_pages(&env, dir.path());
        npc.lease = Duration::from_millis(300);
        // Every page a little slow: the run spans many renewals.
        env.sim.faults().set_latency(Duration::from_millis(40));
        let options = SyncOptions::default();
        let run = sync_with(&t, &npc, &options);
        let r = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("the run finished");
        assert!(r.ok() && !r.skipped, "{r:?}");
        assert!(
            r.seconds > 1.0,
            "the run outlasted its renewals ({} s)",
            r.seconds
        );
        let ds = env.sim.data().snapshot();
        assert_eq!(
            r.totals().1.new,
            (ds.budgets.len() + ds.execution.len()) as u64
        );
        env.sim.shutdown().await;
    })
    .await;
}

/// On PostgreSQL, a run whose lease another replica took meanwhile does not
/// commit: it checks its lease inside its transaction before committing.
/// (On SQLite nobody can take it: the run holds the only write lock.)
#[tokio::test]
async fn a_run_whose_lease_was_taken_commits_nothing() {
    on_both(|t| async move {
        if t.backend != "postgres" {
            return;
        }
        let env = start(&t).await;
        let dir = tempfile::tempdir().unwrap();
        let npc = npc_small_pages(&env, dir.path());
        env.sim.faults().set_latency(Duration::from_millis(20));
        let options = SyncOptions::default();
        let run = sync_with(&t, &npc, &options);
        let steal = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            t.raw
                .exec("UPDATE leases SET holder = 'replica-b' WHERE name = 'adapter:npc'")
                .await;
        };
        let (r, ()) = tokio::join!(run, steal);
        assert_eq!(
            r.error.as_deref(),
            Some("lost the adapter's lease to another replica"),
            "{r:?}"
        );
        for table in ["npc_budgets", "npc_execution", "versions"] {
            let n = t.raw.count(&format!("SELECT COUNT(*) FROM {table}")).await;
            assert_eq!(n, 0, "{table}");
        }
        // The other replica's lease stands.
        let holder = t.store.lease_holder("adapter:npc").await.unwrap();
        assert_eq!(holder.as_deref(), Some("replica-b"));
        env.sim.shutdown().await;
    })
    .await;
}

/// Every record the simulator serves is in the store, once, with one version.
async fn assert_store_matches_simulator(t: &TestStore, env: &Env) {
    let ds = env.sim.data().snapshot();
    let mut live = 0i64;
    for c in Collection::FROM_AGENCIES {
        for r in ds.records(c) {
            let got = t
                .store
                .get(c, &r.key())
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{c} {} missing", r.key()));
            assert_eq!(got.record, r, "{c} {}", r.key());
            assert!(!got.deleted);
            live += 1;
        }
    }
    let stats = t.store.stats().await.unwrap();
    assert_eq!(stats.iter().map(|s| s.live).sum::<i64>(), live);
    assert_eq!(
        stats.iter().map(|s| s.versions).sum::<i64>(),
        live,
        "no version written twice"
    );
    let doubled = t
        .raw
        .count("SELECT COUNT(*) FROM (SELECT stream, key, version FROM versions GROUP BY stream, key, version HAVING COUNT(*) > 1) d")
        .await;
    assert_eq!(doubled, 0);
    assert!(t.store.verify().await.unwrap().is_intact());
}

#[tokio::test]
async fn many_cycles_of_5xx_latency_and_truncated_bodies_end_like_a_clean_run() {
    on_both(|t| async move {
        let env = start(&t).await;
        let expected = liankong::demo::plant_anomalies(env.sim.data());
        env.sim.write_files().unwrap();
        env.sim.faults().set_error_rate(0.2);
        env.sim.faults().set_truncate_rate(0.1);
        env.sim.faults().set_latency(Duration::from_millis(2));
        let names = ["finance", "npc", "audit", "discipline", "orgdept"];
        let mut succeeded = std::collections::BTreeSet::new();
        let mut failed = 0;
        for cycle in 0..20 {
            for name in names {
                let r = sync(&t, &env, name).await;
                if r.ok() {
                    succeeded.insert(name);
                } else {
                    failed += 1;
                }
            }
            if cycle >= 4 && succeeded.len() == names.len() {
                break;
            }
        }
        assert_eq!(
            succeeded.len(),
            names.len(),
            "every adapter got through at some point"
        );
        let injected = env
            .sim
            .requests()
            .iter()
            .filter(|r| r.status == 503)
            .count();
        assert!(
            injected > 10,
            "faults were injected ({injected} 503s, {failed} failed runs)"
        );
        assert_store_matches_simulator(&t, &env).await;
        // The same alerts as a clean run: exactly the planted ones.
        let findings =
            liankong::reconcile::evaluate(t.store.as_ref(), day("2021-09-30"), &Default::default())
                .await
                .unwrap();
        let mut got: Vec<(String, String)> = findings
            .iter()
            .map(|f| {
                let s = &f.view.subject;
                let id = ["project", "finding", "referral", "unit"]
                    .iter()
                    .find_map(|k| s.get(*k).and_then(|v| v.as_str()))
                    .unwrap();
                (f.rule.to_string(), id.to_owned())
            })
            .collect();
        got.sort();
        let mut want: Vec<(String, String)> = expected
            .iter()
            .map(|(r, s)| (r.to_string(), s.to_string()))
            .collect();
        want.sort();
        assert_eq!(got, want);
        env.sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn runs_dropped_at_twenty_random_moments_end_with_the_clean_records() {
    on_both(|t| async move {
        let env = start(&t).await;
        // Slow answers, so that a cut lands inside a run.
        env.sim.faults().set_latency(Duration::from_millis(30));
        let dir = tempfile::tempdir().unwrap();
        let adapters: Vec<Adapter> =
            vec![adapter(&env, "finance"), npc_small_pages(&env, dir.path())];
        let mut rng = fastrand::Rng::with_seed(20);
        let mut cut = 0;
        for i in 0..20 {
            let a = &adapters[i % adapters.len()];
            // Dropping a run in flight is what a crash does to it: its
            // transaction never commits.
            let limit = Duration::from_millis(rng.u64(5..250));
            if tokio::time::timeout(limit, sync_with(&t, a, &SyncOptions::default()))
                .await
                .is_err()
            {
                cut += 1;
            }
        }
        assert!(cut >= 15, "most runs were cut off ({cut})");
        env.sim.faults().set_latency(Duration::ZERO);
        for name in ["finance", "npc", "audit", "discipline", "orgdept"] {
            let r = sync(&t, &env, name).await;
            assert!(r.ok() && !r.skipped, "{r:?}");
        }
        assert_store_matches_simulator(&t, &env).await;
        env.sim.shutdown().await;
    })
    .await;
}

/// `liankong sync` killed with SIGKILL at twenty random moments of its run,
/// then run to the end: the store holds exactly the clean run's records,
/// each with one version, and its history verifies. Each restart takes over
/// the leases its dead predecessor held rather than sitting them out.
#[tokio::test]
async fn syncs_killed_at_twenty_random_moments_end_with_the_clean_records() {
    use std::process::{Command, Stdio};
    on_both(|t| async move {
        let env = start(&t).await;
        // Slow answers and small batches: a run is many pages and batches.
        env.sim.faults().set_latency(Duration::from_millis(10));
        let text = sim_config(
            &env.sim,
            &SimConfigOptions {
                store_url: t.url.expose().to_owned(),
                manifests: shipped_manifests(),
                quick_retries: true,
            },
        )
        .unwrap()
        .replace("[sync]\n", "[sync]\nbatch_size = 40\n");
        let config = env.sim.dir().join("kill.toml");
        std::fs::write(&config, &text).unwrap();
        let sync = |store: Option<&str>| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_liankong"));
            command
                .arg("--config")
                .arg(&config)
                .arg("sync")
                .env_remove("LIANKONG_STORE_URL")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            if let Some(url) = store {
                command.env("LIANKONG_STORE_URL", url);
            }
            command.spawn().unwrap()
        };
        // How long a whole run takes here, into a store of its own: the
        // kills are aimed inside its first half, since the machine may be
        // slower while it is measured than while it is killed.
        let scratch = format!("sqlite:{}", env.sim.dir().join("scratch.db").display());
        let started = std::time::Instant::now();
        let clean = sync(Some(&scratch));
        let clean = tokio::task::spawn_blocking(move || clean.wait_with_output().unwrap())
            .await
            .unwrap();
        assert!(
            clean.status.success(),
            "{}",
            String::from_utf8_lossy(&clean.stdout)
        );
        let span = started.elapsed().as_millis() as u64;

        let mut rng = fastrand::Rng::with_seed(9);
        let mut killed_running = 0;
        let mut span = span;
        for _ in 0..20 {
            let mut child = sync(None);
            tokio::time::sleep(Duration::from_millis(rng.u64(1..(span / 2).max(2)))).await;
            let finished = child.try_wait().unwrap().is_some();
            if !finished {
                killed_running += 1;
            }
            child.kill().unwrap(); // SIGKILL
            tokio::task::spawn_blocking(move || child.wait().unwrap())
                .await
                .unwrap();
            if finished {
                // A run got through: the runs after it only compare what
                // is stored, which takes less time. The next kills are
                // aimed inside a run of that kind.
                let started = std::time::Instant::now();
                let again = sync(None);
                let again = tokio::task::spawn_blocking(move || again.wait_with_output().unwrap())
                    .await
                    .unwrap();
                assert!(again.status.success());
                span = span.min(started.elapsed().as_millis() as u64);
            }
        }
        assert!(
            killed_running >= 15,
            "most kills found a run in flight ({killed_running})"
        );

        env.sim.faults().set_latency(Duration::ZERO);
        let last = sync(None);
        let last = tokio::task::spawn_blocking(move || last.wait_with_output().unwrap())
            .await
            .unwrap();
        let printed = String::from_utf8_lossy(&last.stdout);
        assert!(last.status.success(), "{printed}");
        assert!(
            !printed.contains("skipped"),
            "no lease was left to sit out:\n{printed}"
        );
        assert_store_matches_simulator(&t, &env).await;
        env.sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn two_replicas_one_killed_deliver_every_event_once_and_write_no_version_twice() {
    on_both(|t| async move {
        if t.backend != "postgres" {
            return; // replicas share a PostgreSQL store
        }
        let env = start(&t).await;
        liankong::demo::plant_anomalies(env.sim.data());
        env.sim.write_files().unwrap();
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let mut receivers = Vec::new();
        let mut text = sim_config(
            &env.sim,
            &SimConfigOptions { store_url: t.url.expose().to_owned(), manifests: shipped_manifests(), quick_retries: true },
        )
        .unwrap()
        .replace("schedule = \"*/5 * * * *\"", "schedule = \"*/2 * * * * *\"")
        .replace("[sync]\n", "[sync]\nlease_secs = 2\n");
        text.push_str("\n[api]\nenabled = false\n[delivery]\npoll_secs = 1\ntimeout_secs = 2\n");
        for agency in Agency::ALL {
            let r = Receiver::start().await;
            text.push_str(&format!(
                "[subscribers.{agency}]\nagency = \"{agency}\"\nurl = \"{}\"\nsecrets = [\"env:LK_WHSEC\"]\n",
                r.url
            ));
            receivers.push((agency, r));
        }
        let config = env.sim.dir().join("replicas.toml");
        std::fs::write(&config, &text).unwrap();
        let spawn = |name: &str| {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"));
            command.arg("--config").arg(&config).arg("run").env("LK_WHSEC", secret);
            Spawned::start(command, env.sim.dir().join(format!("{name}.log")))
        };
        let mut a = spawn("a");
        let mut b = spawn("b");
        let delivered = |t: &TestStore| {
            let store = t.store.clone();
            async move { store.outbox_counts().await.unwrap().delivered }
        };
        for _ in 0..100 {
            if delivered(&t).await > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(delivered(&t).await > 0, "the replicas delivered");
        a.kill(); // SIGKILL, mid-cycle
        // A change only the surviving replica can pick up: a finding resolves.
        env.sim.data().delete(Collection::Findings, liankong::demo::planted::FINDING_UNRESOLVED);
        env.sim.write_files().unwrap();
        for _ in 0..150 {
            let resolved = t.store.alerts().await.unwrap().iter().any(|x| x.state == liankong::alert::AlertState::Resolved);
            if resolved && t.store.outbox_counts().await.unwrap().pending == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        b.signal("-TERM");
        let status = b.exit_status(Duration::from_secs(120)).await;
        assert!(status.success(), "{status:?}\n{}", b.log());

        // Whatever a dead claim left behind is delivered once its claim expires.
        let subs: Vec<_> = receivers
            .iter()
            .map(|(agency, r)| {
                liankong::deliver::Subscriber::with_keys(
                    agency.as_str(),
                    *agency,
                    &r.url,
                    vec![liankong::deliver::signature::decode_secret(secret).unwrap()],
                )
            })
            .collect();
        let later = liankong::clock::FixedClock(
            liankong::clock::Clock::now(&liankong::clock::SystemClock) + chrono::Duration::minutes(10),
        );
        let deliverer = liankong::deliver::Deliverer::new(subs, &Default::default()).unwrap();
        for _ in 0..20 {
            if deliverer.deliver_due(t.store.as_ref(), &later).await.unwrap().attempted == 0 {
                break;
            }
        }
        let counts = t.store.outbox_counts().await.unwrap();
        assert_eq!((counts.pending, counts.dead), (0, 0));
        let outbox = t.store.deliveries(None, 100_000).await.unwrap();
        assert!(outbox.iter().any(|o| o.event_type == liankong::alert::EventType::Resolved), "the survivor reconciled the change");
        for (agency, r) in &receivers {
            let mut got: Vec<String> = r.received().into_iter().filter(|x| x.status < 300).map(|x| x.id).collect();
            got.sort();
            got.dedup();
            let mut want: Vec<String> = outbox.iter().filter(|o| o.agency == *agency).map(|o| o.event_id.clone()).collect();
            want.sort();
            assert_eq!(got, want, "{agency}: every event, once after de-duplication");
        }
        let doubled = t
            .raw
            .count("SELECT COUNT(*) FROM (SELECT stream, key, version FROM versions GROUP BY stream, key, version HAVING COUNT(*) > 1) d")
            .await;
        assert_eq!(doubled, 0);
        let versions = t.raw.count("SELECT COUNT(*) FROM versions").await;
        let recorded = t.store.stats().await.unwrap().iter().map(|s| s.versions).sum::<i64>();
        assert_eq!(versions, recorded);
        assert!(t.store.verify().await.unwrap().is_intact());
        env.sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn unchanged_files_are_not_read_again_and_delete_nothing() {
    on_both(|t| async move {
        let env = start(&t).await;
        let n = env.sim.data().snapshot().findings.len() as u64;
        let first = sync(&t, &env, "audit").await;
        assert_eq!(first.totals().1.new, n);
        let versions = t.raw.count("SELECT COUNT(*) FROM versions").await;

        // The same file again: not read, complete, and nothing deleted.
        let again = sync(&t, &env, "audit").await;
        assert!(again.ok(), "{:?}", again.error);
        assert_eq!(
            (again.streams[0].fetched, again.totals().1),
            (0, Default::default())
        );
        assert!(again.streams[0].complete);
        let live = "SELECT COUNT(*) FROM audit_findings WHERE deleted = FALSE";
        assert_eq!(t.raw.count(live).await, n as i64);
        assert_eq!(t.raw.count("SELECT COUNT(*) FROM versions").await, versions);
        let orgdept = sync(&t, &env, "orgdept").await;
        assert!(orgdept.totals().0 > 0);
        assert_eq!(sync(&t, &env, "orgdept").await.totals().0, 0);

        // `--full` reads it anyway.
        let full = SyncOptions {
            full: true,
            ..Default::default()
        };
        let r = sync_with(&t, &adapter(&env, "audit"), &full).await;
        assert_eq!((r.totals().0, r.totals().1.unchanged), (n, n));

        // The same name with other content is read: one finding gone.
        let ds = env.sim.data().snapshot();
        let name = liankong::sim::files::audit_file_name(liankong::sim::GenParams::small().as_of);
        env.sim.write_audit_file(&name, &ds.findings[1..]).unwrap();
        let r = sync(&t, &env, "audit").await;
        assert_eq!((r.totals().0, r.totals().1.deleted), (n - 1, 1));

        // A file with a row whose key cannot be read is read again each
        // time, and deletes nothing: that row may be any finding.
        let mut text =
            "问题编号,被审计单位,项目编码,问题类型,涉及金额,整改状态,整改期限,发现日期\r\n"
                .to_owned();
        text.push_str(",市教育局（本级）,,挤占挪用,x,未整改,2021/12/31,2021/3/5\r\n");
        text.push_str(
            "SJ-2021-7002,市 教育局 (本级),,虚列支出,3.50,整改中,2021/12/31,2021/3/5\r\n",
        );
        let (gbk, _, _) = encoding_rs::GBK.encode(&text);
        std::fs::write(
            env.sim.audit_dir().join("audit_findings_20991231.csv"),
            &gbk,
        )
        .unwrap();
        for _ in 0..2 {
            let r = sync(&t, &env, "audit").await;
            assert_eq!(
                (r.totals().0, r.totals().1.quarantined, r.totals().1.deleted),
                (2, 1, 0)
            );
            assert_eq!(
                r.streams[0].status("audit"),
                "complete with 1 quarantined, 1 without a readable key: nothing deleted"
            );
        }
        assert_eq!(t.raw.count(live).await, n as i64);
        env.sim.shutdown().await;
    })
    .await;
}

/// The benchmark's machinery at a tiny scale: the simulator in its own
/// process, the three timed phases, the sqlite3 shell's baseline. No time is
/// asserted, only that every part ran and agrees.
/// Stopped with SIGTERM mid-run, `liankong bench` stops its simulator's
/// process too instead of leaving it serving, and says it was interrupted.
#[tokio::test]
async fn a_benchmark_stopped_mid_run_leaves_no_simulator_behind() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "--config",
            "config/liankong.toml",
            "bench",
            "--scale",
            "0.02",
            "--dir",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let bench = child.id();
    let stdout = child.stdout.take().unwrap();
    let ready = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("simulator ready"))
    });
    assert!(
        tokio::time::timeout(Duration::from_secs(300), ready)
            .await
            .unwrap()
            .unwrap(),
        "the simulator came up"
    );
    let ours = |pid: &str| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(&*dir.path().to_string_lossy()))
            .unwrap_or(false)
    };
    let simulators = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|pid| pid.parse::<u32>().is_ok_and(|p| p != bench) && ours(pid))
            .collect()
    };
    assert_eq!(
        simulators().len(),
        1,
        "the simulator runs in its own process"
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &bench.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    // The simulator is killed and reaped with the run it served.
    assert_eq!(simulators(), Vec::<String>::new());
}

/// The benchmark's options for a tiny run in `dir`: this binary, the shipped
/// config and manifests, the year's last day; no plans, no anomalies.
fn tiny_options(dir: &Path, postgres: Option<String>) -> liankong::bench::BenchOptions {
    liankong::bench::BenchOptions {
        dir: dir.to_owned(),
        exe: env!("CARGO_BIN_EXE_liankong").into(),
        config: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/liankong.toml")),
        sqlite3: "sqlite3".into(),
        as_of: day("2021-12-31"),
        manifests: Some(shipped_manifests()),
        postgres,
        explain: false,
        anomalies: None,
    }
}

#[tokio::test]
async fn the_benchmark_runs_end_to_end_at_a_tiny_scale() {
    let mut servers = vec![None];
    if !skip_pg() {
        servers.push(Some(pg_admin_url()));
    }
    for postgres in servers {
        tiny_benchmark(postgres).await;
    }
}

async fn tiny_benchmark(postgres: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = if postgres.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let mut options = tiny_options(dir.path(), postgres);
    options.explain = true;
    let mut out = Vec::new();
    let r = liankong::bench::run_scale(&options, 0.002, &mut out)
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&out);
    assert_eq!(
        (r.volumes.units, r.volumes.projects),
        (20, 200),
        "{printed}"
    );
    let fetched = |stream: &str| r.streams.iter().find(|s| s.0 == stream).unwrap().1;
    assert_eq!(fetched("audit.findings"), 40);
    assert_eq!(fetched("discipline.referrals"), 4);
    assert_eq!(r.full.written, r.full.fetched);
    assert_eq!(r.unchanged.written, 0, "nothing changed, nothing written");
    assert!(
        r.unchanged.fetched >= fetched("npc.execution"),
        "npc is a full snapshot"
    );
    assert_eq!(
        (r.full.findings, r.reconcile.findings),
        (0, 0),
        "a clean year"
    );
    // --explain: every rule query's plan, on the backend it ran on.
    for name in [
        "project slices",
        "project facts",
        "npc mirror mismatches",
        "unsettled tranches",
        "audit findings",
        "rectifications",
        "freeze breaches",
        "orgdept rows",
        "unknown projects",
        "unit quarters",
    ] {
        let heading = format!("  plan of {name} on {backend}:\n    ");
        assert!(
            printed.contains(&heading),
            "{heading:?} missing from:\n{printed}"
        );
    }
    // The mirror's figure is one range of the covering payments index.
    let mirror = printed
        .split("  plan of npc mirror mismatches")
        .nth(1)
        .and_then(|rest| rest.split("  plan of ").next())
        .unwrap();
    assert!(mirror.contains("finance_payments"), "{mirror}");
    // A day's changes: exactly what the simulator changed is written, and
    // the year stays clean.
    let c = r.day_changes;
    assert_eq!(
        c.new_payments,
        fetched("finance.payments").div_ceil(100) as usize,
        "every 100th payment is split: {printed}"
    );
    assert!(c.changed_quotas > 0 && c.changed_budgets > 0, "{c:?}");
    // Each new payment is split off one that changes with it.
    assert_eq!(
        r.day.written as usize,
        2 * c.new_payments + c.changed_quotas + c.changed_budgets,
        "{printed}"
    );
    assert_eq!(r.day.findings, 0, "{printed}");
    assert_eq!((r.planted, r.delivery.as_ref()), (None, None), "no (g)");
    assert!(r.baseline.progress_rows > 100);
    assert_eq!(
        (r.baseline.mirror_mismatches, r.baseline.approved_mismatches),
        (0, 0)
    );
    assert!(r.full.peak_kib > 0);
    assert_eq!(r.backend, backend);
    // The first sync's transaction went through the WAL (SQLite's file, or
    // the server's log).
    assert!(r.full.wal_bytes > 0, "{printed}");
    let mut summary = Vec::new();
    liankong::bench::print_summary(&mut summary, std::slice::from_ref(&r)).unwrap();
    let summary = String::from_utf8(summary).unwrap();
    for line in [
        "(a) full sync + reconcile",
        if backend == "postgres" {
            "(a)/(e) ≤ 5"
        } else {
            "(a)/(e) ≤ 3"
        },
        "(b)/(e) ≤ 0.5",
        "(c)/(e) ≤ 1",
        "(f)/(e) ≤ 0.2",
        "WAL ≤ 1 GiB",
        "memory ≤ 512 MiB",
    ] {
        assert!(summary.contains(line), "{line} missing from:\n{summary}");
    }
    // The simulator child is gone: its ports no longer answer.
    let config = std::fs::read_to_string(r.dir.join("sim/liankong.toml")).unwrap();
    let url = config
        .lines()
        .find_map(|l| l.strip_prefix("base_url = "))
        .unwrap()
        .trim_matches('"');
    assert!(
        reqwest::get(format!("{url}/npc/budgets")).await.is_err(),
        "{url} still answers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_delivers_planted_anomalies_at_a_tiny_scale() {
    let mut servers = vec![None];
    if !skip_pg() {
        servers.push(Some(pg_admin_url()));
    }
    for postgres in servers {
        tiny_benchmark_with_anomalies(postgres).await;
    }
}

async fn tiny_benchmark_with_anomalies(postgres: Option<String>) {
    use liankong::model::Agency;
    use liankong::sim::{AnomalyShare, Planted};
    let dir = tempfile::tempdir().unwrap();
    let share = AnomalyShare::new(0.05).unwrap();
    let mut options = tiny_options(dir.path(), postgres.clone());
    options.anomalies = Some(share);
    let mut out = Vec::new();
    let r = liankong::bench::run_scale(&options, 0.002, &mut out)
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&out);
    // 200 projects: 10 slow, 2 idle, and 200 × 5% ÷ 20 rounded up, one
    // mirror mismatch.
    let p = r.planted.unwrap();
    assert_eq!(p, Planted::wanted(share, 200), "{printed}");
    assert_eq!(
        p,
        Planted {
            slow: 10,
            idle: 2,
            mirror: 1,
            approved: 0
        }
    );
    // On 31 December a slow project is also one that cannot spend its
    // quota by the year's end: one finding each, and every one raised.
    let findings = (2 * p.slow + p.idle + p.mirror + p.approved) as u64;
    assert_eq!(r.full.findings, findings, "{postgres:?}: {printed}");
    assert_eq!(r.full.alerts_raised, findings, "{printed}");
    // (c) judges again and finds the same, raising nothing new; nor does a
    // day's changes, whose sums are the same.
    assert_eq!((r.reconcile.findings, r.reconcile.events), (findings, 0));
    assert_eq!((r.day.findings, r.day.events), (findings, 0), "{printed}");
    // The baseline's SQL sees the planted mismatches too.
    assert_eq!(
        (r.baseline.mirror_mismatches, r.baseline.approved_mismatches),
        (p.mirror as u64, p.approved as u64)
    );
    // Every event written was received once, by the agency it was for,
    // signed with that agency's secret.
    let g = r.delivery.as_ref().unwrap();
    assert_eq!(g.alerts_raised, findings);
    assert!(
        g.outbox_events > findings,
        "every alert has a recipient, some two: {printed}"
    );
    assert_eq!(g.outbox_events, r.full.events);
    assert_eq!(g.events_received(), g.outbox_events, "{printed}");
    assert_eq!(g.stats.delivered, g.outbox_events, "{printed}");
    assert_eq!((g.bad_signatures(), g.undelivered), (0, 0), "{printed}");
    let received = |a: Agency| g.received.iter().find(|(x, _)| *x == a).unwrap().1.events;
    // Finance hears of everything; the congress of the year-end and
    // mismatch alerts, audit of the idle funds; discipline of nothing.
    assert!(received(Agency::Finance) >= findings, "{printed}");
    assert!(received(Agency::Npc) >= (p.slow + p.mirror + p.approved) as u64);
    assert_eq!(received(Agency::Audit), p.idle as u64, "{printed}");
    assert_eq!(received(Agency::Discipline), 0, "{printed}");
    assert!(g.after_reconcile_seconds >= g.seconds && g.seconds > 0.0);
    let mut summary = Vec::new();
    liankong::bench::print_summary(&mut summary, std::slice::from_ref(&r)).unwrap();
    let summary = String::from_utf8(summary).unwrap();
    for line in ["(g) its alerts' webhooks", "(g)/(e) ≤ 1", "(c)/(e) ≤ 1"] {
        assert!(summary.contains(line), "{line} missing from:\n{summary}");
    }
}

// ---- no source may cost a record ----

/// The config of `env` written to a file, for the binary.
fn config_file(t: &TestStore, env: &Env) -> std::path::PathBuf {
    let config = env.sim.dir().join("liankong.toml");
    let text = sim_config(
        &env.sim,
        &SimConfigOptions {
            store_url: t.url.expose().to_owned(),
            manifests: shipped_manifests(),
            quick_retries: true,
        },
    )
    .unwrap();
    std::fs::write(&config, text).unwrap();
    config
}

/// Runs the binary with that config; returns the exit code and stdout.
async fn cli(config: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"));
    c.arg("--config").arg(config).args(args);
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// From now on npc serves the budget rows of project `code` with `set`
/// replaced by `to`.
fn garble_npc_budget(env: &Env, code: &ProjectCode, set: &str, to: serde_json::Value) {
    env.sim.faults().add_garble(liankong::sim::Garble {
        path: "/npc/budgets".into(),
        when: "项目编码".into(),
        equals: liankong::sim::format::npc_code(code),
        set: set.into(),
        to,
    });
}

fn stream<'a>(
    r: &'a liankong::adapter::SyncReport,
    name: &str,
) -> &'a liankong::adapter::StreamReport {
    r.streams
        .iter()
        .find(|s| s.collection == name)
        .unwrap_or_else(|| panic!("no stream {name} in {r:?}"))
}

/// Budgets of projects with a single budget row, so that a garble by
/// project code touches exactly one row.
fn lone_budgets(ds: &liankong::sim::Dataset) -> Vec<ApprovedBudget> {
    ds.budgets
        .iter()
        .filter(|b| {
            ds.budgets
                .iter()
                .filter(|o| o.project_code == b.project_code)
                .count()
                == 1
        })
        .cloned()
        .collect()
}

fn budget_key(b: &ApprovedBudget) -> String {
    Record::ApprovedBudget(b.clone()).key()
}

/// npc garbles one field of one budget and withdraws another; then a sync.
async fn garble_withdraw_and_sync(
    t: &TestStore,
    env: &Env,
    npc: &Adapter,
    (garbled, set, to): (&ApprovedBudget, &str, serde_json::Value),
    withdrawn: &ApprovedBudget,
) -> liankong::adapter::SyncReport {
    garble_npc_budget(env, &garbled.project_code, set, to);
    assert!(
        env.sim
            .data()
            .delete(Collection::Budgets, &budget_key(withdrawn))
    );
    let r = sync_with(t, npc, &SyncOptions::default()).await;
    assert!(r.ok(), "{:?}", r.error);
    r
}

#[tokio::test]
async fn a_snapshot_with_a_quarantined_row_deletes_exactly_the_other_missing_keys() {
    on_both(|t| async move {
        let env = start(&t).await;
        let npc = adapter(&env, "npc");
        let r = sync_with(&t, &npc, &SyncOptions::default()).await;
        assert!(r.ok(), "{:?}", r.error);
        let ds = env.sim.data().snapshot();
        let lone = lone_budgets(&ds);
        assert!(lone.len() >= 4);
        let live = "SELECT COUNT(*) FROM npc_budgets WHERE deleted = FALSE";
        let before = t.raw.count(live).await;

        // 批准数 written in words: quarantined, but its key is readable. The
        // budget the congress withdrew the same day is deleted all the same,
        // and the garbled one keeps its last good version.
        let (garbled, withdrawn) = (&lone[0], &lone[1]);
        let r = garble_withdraw_and_sync(
            &t,
            &env,
            &npc,
            (garbled, "批准数", serde_json::json!("二百四十")),
            withdrawn,
        )
        .await;
        let s = stream(&r, "npc.budgets");
        assert_eq!(
            (
                s.outcome.quarantined,
                s.outcome.deleted,
                s.outcome.unchanged,
                s.outcome.new
            ),
            (1, 1, before as u64 - 2, 0)
        );
        assert_eq!(s.status("npc"), "ok, complete with 1 quarantined");
        assert_eq!(t.raw.count(live).await, before - 1);
        let kept = t
            .store
            .get(Collection::Budgets, &budget_key(garbled))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (kept.version, kept.deleted, kept.record),
            (1, false, Record::ApprovedBudget(garbled.clone()))
        );
        let gone = t
            .store
            .get(Collection::Budgets, &budget_key(withdrawn))
            .await
            .unwrap()
            .unwrap();
        assert!(gone.deleted);
        let q = t
            .store
            .quarantined(Some(Collection::Budgets), true, 10)
            .await
            .unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(
            (q[0].key.as_deref(), q[0].kept_version, q[0].holds),
            (Some(budget_key(garbled).as_str()), Some(1), false)
        );
        assert!(q[0].reason.contains("二百四十"), "{}", q[0].reason);

        // A row whose key itself cannot be read may be any budget: the
        // snapshot deletes nothing and says why.
        let (unreadable, withdrawn2) = (&lone[2], &lone[3]);
        let r = garble_withdraw_and_sync(
            &t,
            &env,
            &npc,
            (unreadable, "项目编码", serde_json::json!("37-01-00")),
            withdrawn2,
        )
        .await;
        let s = stream(&r, "npc.budgets");
        assert_eq!(
            (s.outcome.quarantined, s.outcome.deleted, s.unkeyed),
            (2, 0, 1)
        );
        assert_eq!(
            s.status("npc"),
            "complete with 2 quarantined, 1 without a readable key: nothing deleted"
        );
        assert_eq!(t.raw.count(live).await, before - 1);
        let q = t
            .store
            .quarantined(Some(Collection::Budgets), true, 10)
            .await
            .unwrap();
        assert_eq!(q.len(), 2, "{q:?}");
        let again = q.iter().find(|e| e.key.is_some()).unwrap();
        assert_eq!(again.sightings, 2);

        // Mended at the source: both land, the withdrawn budget goes, and
        // the quarantine is settled.
        env.sim.faults().clear();
        let r = sync_with(&t, &npc, &SyncOptions::default()).await;
        let s = stream(&r, "npc.budgets");
        assert_eq!((s.outcome.quarantined, s.outcome.deleted), (0, 1));
        assert_eq!(s.status("npc"), "ok");
        assert_eq!(t.raw.count(live).await, before - 2);
        assert!(
            t.store
                .quarantined(Some(Collection::Budgets), true, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let all = t
            .store
            .quarantined(Some(Collection::Budgets), false, 10)
            .await
            .unwrap();
        assert!(
            all.iter()
                .all(|e| e.state == liankong::store::QuarantineState::Resolved),
            "{all:?}"
        );
        assert!(t.store.verify().await.unwrap().is_intact());
        env.sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_empty_snapshot_or_a_mass_deletion_is_held_until_an_operator_accepts_it() {
    on_both(|t| async move {
        let env = start(&t).await;
        let config = config_file(&t, &env);
        let r = sync(&t, &env, "audit").await;
        assert!(r.ok(), "{:?}", r.error);
        let n = env.sim.data().snapshot().findings.len() as u64;
        let live = "SELECT COUNT(*) FROM audit_findings WHERE deleted = FALSE";
        assert_eq!(t.raw.count(live).await, n as i64);

        // A newer file with its header alone: nothing deleted, loudly.
        env.sim.write_audit_file("audit_findings_20991231.csv", &[]).unwrap();
        for _ in 0..2 {
            let r = sync(&t, &env, "audit").await;
            assert!(r.ok() && r.held(), "{r:?}");
            let s = &r.streams[0];
            assert_eq!(
                (s.outcome.deleted, s.held),
                (0, Some(liankong::adapter::HeldReport { deletions: n, live: n }))
            );
            assert_eq!(
                s.status("audit"),
                format!(
                    "HELD: would delete {n} of {n} live records; nothing deleted \
                     (if the source really deleted them: liankong sync --adapter audit --accept-deletions)"
                )
            );
            assert_eq!(t.raw.count(live).await, n as i64);
        }
        let held = t.store.held_deletions().await.unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!((held[0].0.as_str(), held[0].1.deletions), ("audit.findings", n));
        let metrics = liankong::metrics::render(t.store.as_ref(), &Default::default())
            .await
            .unwrap();
        assert!(
            metrics.contains(&format!("liankong_stream_held_deletions{{stream=\"audit.findings\"}} {n}")),
            "{metrics}"
        );

        // The API's adapters show it, to the agencies that may see it.
        let mut c = env.config.clone();
        let token = "[api]\nlisten = \"127.0.0.1:0\"\n[[api.tokens]]\nname = \"fin\"\nagency = \"finance\"\nsha256 = \"";
        c.api = liankong::config::Config::parse(&format!("{token}{}\"\n", liankong::api::token_hash("fin")))
            .unwrap()
            .api;
        let adapters = liankong::adapter::build_all(&c).unwrap();
        let running = liankong::api::RunningConfig::new(std::sync::Arc::new(c), &adapters);
        let (_tx, rx) = tokio::sync::watch::channel(std::sync::Arc::new(running));
        let state = liankong::api::ApiState {
            store: t.store.clone(),
            config: rx,
            metrics: Default::default(),
            clock: std::sync::Arc::new(liankong::clock::SystemClock),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(liankong::api::serve(listener, state, stop.clone()));
        let adapters: Vec<serde_json::Value> = reqwest::Client::new()
            .get(format!("{base}/v1/adapters"))
            .bearer_auth("fin")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let audit = adapters.iter().find(|a| a["adapter"] == "audit").unwrap();
        assert_eq!(audit["held"][0]["stream"], "audit.findings");
        assert_eq!(audit["held"][0]["deletions"], n);
        assert_eq!(audit["held"][0]["accept"], "liankong sync --adapter audit --accept-deletions");
        let npc = adapters.iter().find(|a| a["adapter"] == "npc").unwrap();
        assert_eq!(npc["held"], serde_json::json!([]));
        stop.cancel();
        server.await.unwrap().unwrap();

        // Accepted: applied once, and the hold is gone.
        let (code, out) = cli(&config, &["sync", "--adapter", "audit", "--accept-deletions"]).await;
        assert_eq!(code, Some(0), "{out}");
        assert_eq!(t.raw.count(live).await, 0);
        assert!(t.store.held_deletions().await.unwrap().is_empty());

        // npc withdraws a fifth of its budgets at once: held, and the
        // binary exits 1 saying how to accept.
        assert!(sync(&t, &env, "npc").await.ok());
        let budgets = env.sim.data().snapshot().budgets;
        let blive = "SELECT COUNT(*) FROM npc_budgets WHERE deleted = FALSE";
        let total = t.raw.count(blive).await;
        let k = (budgets.len() / 5).max(11);
        assert!(k as f64 > 0.1 * total as f64);
        for b in &budgets[..k] {
            env.sim.data().delete(Collection::Budgets, &budget_key(b));
        }
        let (code, out) = cli(&config, &["sync", "--adapter", "npc"]).await;
        assert_eq!(code, Some(1), "{out}");
        assert!(
            out.contains(&format!(
                "npc.budgets: deletions HELD. Its new and changed records landed, but the snapshot would delete {k} of its {total} live records"
            )),
            "{out}"
        );
        assert!(out.contains("  liankong sync --adapter npc --accept-deletions"), "{out}");
        assert_eq!(t.raw.count(blive).await, total);

        // Accepting re-checks against the snapshot of now: one more budget
        // gone since is more than was held, so it is held again.
        env.sim.data().delete(Collection::Budgets, &budget_key(&budgets[k]));
        let (code, out) = cli(&config, &["sync", "--adapter", "npc", "--accept-deletions"]).await;
        assert_eq!(code, Some(1), "{out}");
        assert!(
            out.contains(&format!("HELD: would delete {} of {total} live records, more than the {k} accepted", k + 1)),
            "{out}"
        );
        assert_eq!(t.raw.count(blive).await, total);
        let (code, out) = cli(&config, &["sync", "--adapter", "npc", "--accept-deletions"]).await;
        assert_eq!(code, Some(0), "{out}");
        assert_eq!(t.raw.count(blive).await, total - k as i64 - 1);

        // Accepting is for one named adapter.
        let (code, out) = cli(&config, &["sync", "--accept-deletions"]).await;
        assert_eq!(code, Some(2), "{out}");
        env.sim.shutdown().await;
    })
    .await;
}

/// The shipped finance manifest with one edit, as a new adapter.
fn finance_with(env: &Env, dir: &Path, from: &str, to: &str) -> Adapter {
    let text = std::fs::read_to_string(shipped_manifests().join("finance.toml")).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from}");
    let path = dir.join("finance-edited.toml");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    let mut c = env.config.adapters["finance"].clone();
    c.manifest = path;
    Adapter::build("finance", &c, &env.config).unwrap()
}

/// From now on finance serves payment `id` with `set` replaced by `to`.
fn garble_payment(env: &Env, id: &str, set: &str, to: serde_json::Value) {
    env.sim.faults().add_garble(liankong::sim::Garble {
        path: "/api/v1/payments".into(),
        when: "payment_id".into(),
        equals: id.to_owned(),
        set: set.into(),
        to,
    });
}

/// The `updated_since` of the newest payments request.
fn payments_since(env: &Env) -> Option<String> {
    env.sim
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/api/v1/payments")
        .unwrap()
        .query
        .split('&')
        .find_map(|kv| kv.strip_prefix("updated_since="))
        .map(urlencoding_decode)
}

#[tokio::test]
async fn the_high_water_mark_never_passes_a_quarantined_row() {
    on_both(|t| async move {
        let env = start(&t).await;
        let dir = tempfile::tempdir().unwrap();
        let live = "SELECT COUNT(*) FROM finance_payments WHERE deleted = FALSE";

        // A typo in the manifest quarantines every payment: the run fails
        // and keeps nothing, so no mark moves past them.
        let typo = finance_with(
            &env,
            dir.path(),
            "amount = { from = \"amount\", type = \"yuan\" }\npaid_on",
            "amount = { from = \"amountx\", type = \"yuan\" }\npaid_on",
        );
        let r = sync_with(&t, &typo, &SyncOptions::default()).await;
        let n = env.sim.data().snapshot().payments.len();
        assert!(!r.ok());
        assert_eq!(
            r.error.as_deref(),
            Some(format!(
                "every one of the {n} rows of finance.payments was quarantined (the first because \
                 amount (from \"amountx\"): missing); nothing of this run was kept: check the \
                 manifest's fields against what the source sends"
            ).as_str())
        );
        assert_eq!(t.raw.count(live).await, 0);
        assert_eq!(
            t.store.stream_state(Collection::Payments).await.unwrap(),
            None
        );

        // Mended, one plain sync lands every payment.
        let r = sync(&t, &env, "finance").await;
        assert!(r.ok(), "{:?}", r.error);
        let landed = t.raw.count(live).await;
        let expected = env.sim.data().records(Collection::Payments).len() as i64;
        assert_eq!(landed, expected);
        let mark = t
            .store
            .stream_state(Collection::Payments)
            .await
            .unwrap()
            .unwrap()
            .cursor
            .unwrap();

        // One changed payment arrives garbled, a later one clean: the mark
        // is the later one's, but the next pull asks again from the garbled
        // row, which keeps its last good version meanwhile.
        let ds = env.sim.data().snapshot();
        let mut bad = ds.payments[0].clone();
        bad.amount = Fen(bad.amount.0 + 100);
        bad.updated_at = at("2021-10-01T09:00:00+08:00");
        let mut good = ds.payments[1].clone();
        good.amount = Fen(good.amount.0 + 100);
        good.updated_at = at("2021-10-02T09:00:00+08:00");
        env.sim.data().upsert(Record::Payment(bad.clone()));
        env.sim.data().upsert(Record::Payment(good.clone()));
        garble_payment(
            &env,
            &bad.payment_id,
            "amount",
            serde_json::json!("12,34.5x"),
        );
        let r = sync(&t, &env, "finance").await;
        assert!(r.ok(), "{:?}", r.error);
        assert_eq!(payments_since(&env).as_deref(), Some(mark.as_str()));
        let s = stream(&r, "finance.payments");
        assert_eq!((s.outcome.quarantined, s.outcome.changed), (1, 1));
        assert_eq!(s.status("finance"), "ok, complete with 1 quarantined");
        let state = t
            .store
            .stream_state(Collection::Payments)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(state.cursor.as_deref(), Some("2021-10-02T01:00:00Z"));
        let kept = t
            .store
            .get(Collection::Payments, &bad.payment_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.version, 1);
        assert_eq!(kept.record, Record::Payment(ds.payments[0].clone()));
        for sighting in 1..=2 {
            let q = t
                .store
                .quarantined(Some(Collection::Payments), true, 10)
                .await
                .unwrap();
            assert_eq!(q.len(), 1);
            assert_eq!(
                (
                    q[0].key.as_deref(),
                    q[0].holds,
                    q[0].sightings,
                    q[0].kept_version
                ),
                (Some(bad.payment_id.as_str()), true, sighting, Some(1))
            );
            let r = sync(&t, &env, "finance").await;
            assert!(r.ok(), "{:?}", r.error);
            assert_eq!(
                payments_since(&env).as_deref(),
                Some("2021-10-01T01:00:00Z")
            );
        }

        // Mended at the source: it lands, the quarantine is settled, and
        // the pull after that starts from the mark again.
        env.sim.faults().clear();
        let r = sync(&t, &env, "finance").await;
        assert_eq!(
            payments_since(&env).as_deref(),
            Some("2021-10-01T01:00:00Z")
        );
        assert_eq!(stream(&r, "finance.payments").outcome.changed, 1);
        let landed = t
            .store
            .get(Collection::Payments, &bad.payment_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (landed.version, landed.record),
            (2, Record::Payment(bad.clone()))
        );
        assert!(
            t.store
                .quarantined(Some(Collection::Payments), true, 10)
                .await
                .unwrap()
                .is_empty()
        );
        sync(&t, &env, "finance").await;
        assert_eq!(
            payments_since(&env).as_deref(),
            Some("2021-10-02T01:00:00Z")
        );

        // An operator may give up on a row instead: dropped, it holds the
        // stream back no more.
        let mut bad2 = ds.payments[2].clone();
        bad2.updated_at = at("2021-10-03T09:00:00+08:00");
        let mut good2 = ds.payments[3].clone();
        good2.updated_at = at("2021-10-04T09:00:00+08:00");
        env.sim.data().upsert(Record::Payment(bad2.clone()));
        env.sim.data().upsert(Record::Payment(good2));
        garble_payment(
            &env,
            &bad2.payment_id,
            "paid_on",
            serde_json::json!("2021-13-45"),
        );
        sync(&t, &env, "finance").await;
        sync(&t, &env, "finance").await;
        assert_eq!(
            payments_since(&env).as_deref(),
            Some("2021-10-03T01:00:00Z")
        );
        let config = config_file(&t, &env);
        let (code, out) = cli(
            &config,
            &["quarantine", "list", "--stream", "finance.payments"],
        )
        .await;
        assert_eq!(code, Some(0), "{out}");
        assert!(
            out.contains(&format!(
                "key: {}; the record keeps version 1",
                bad2.payment_id
            )),
            "{out}"
        );
        assert!(out.contains("holds the stream's high-water mark"), "{out}");
        let (code, out) = cli(
            &config,
            &["quarantine", "drop", "--stream", "finance.payments"],
        )
        .await;
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("dropped 1 quarantined row(s)"), "{out}");
        sync(&t, &env, "finance").await;
        assert_eq!(
            payments_since(&env).as_deref(),
            Some("2021-10-04T01:00:00Z")
        );
        let (_, out) = cli(&config, &["quarantine", "list"]).await;
        assert!(out.contains("no open quarantined rows"), "{out}");

        // The newest row garbled: pulled again alone, it is one bad row,
        // not a manifest that reads nothing right, and the run is fine.
        let mut newest = ds.payments[4].clone();
        newest.updated_at = at("2021-10-05T09:00:00+08:00");
        env.sim.data().upsert(Record::Payment(newest.clone()));
        garble_payment(&env, &newest.payment_id, "amount", serde_json::json!(""));
        for _ in 0..2 {
            let r = sync(&t, &env, "finance").await;
            assert!(r.ok(), "{:?}", r.error);
            assert_eq!(
                stream(&r, "finance.payments").status("finance"),
                "ok, complete with 1 quarantined"
            );
        }
        assert_eq!(
            payments_since(&env).as_deref(),
            Some("2021-10-05T01:00:00Z")
        );
        env.sim.shutdown().await;
    })
    .await;
}

/// Runs the built binary in `cwd` with no config but what `args` give and
/// no environment but `env` beyond the inherited one, LIANKONG_* removed.
fn liankong_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"));
    command
        .current_dir(cwd)
        .args(args)
        .env_remove("LIANKONG_CONFIG")
        .env_remove("LIANKONG_STORE_URL")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

#[test]
fn check_refuses_what_once_and_run_would_and_names_each_part() {
    let dir = tempfile::tempdir().unwrap();
    // Finding 6 of issue 10: a subscriber's secret unset, or not whsec_,
    // passed check and then stopped once.
    let only = dir.path().join("subscriber-only.toml");
    std::fs::write(
        &only,
        "[store]\nurl = \"sqlite:lk.db\"\n\
         [subscribers.finance_main]\nagency = \"finance\"\nurl = \"https://hooks.example/lk\"\n\
         secrets = [\"env:LK_CHECK_SECRET\"]\n",
    )
    .unwrap();
    let only = only.to_str().unwrap();
    for (value, reason) in [
        (
            None,
            "secret env:LK_CHECK_SECRET: environment variable LK_CHECK_SECRET is not set",
        ),
        (
            Some("hunter2"),
            "env:LK_CHECK_SECRET: a webhook secret must start with whsec_",
        ),
    ] {
        let env: Vec<(&str, &str)> = value.map(|v| ("LK_CHECK_SECRET", v)).into_iter().collect();
        for command in ["check", "once"] {
            let out = liankong_in(dir.path(), &["--config", only, command], &env);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command}: {err}");
            assert!(
                err.contains(&format!("subscriber finance_main: {reason}")),
                "{command}: {err}"
            );
        }
    }
    assert!(
        !dir.path().join("lk.db").exists(),
        "once refused before opening the store"
    );

    let etc = dir.path().join("etc");
    std::fs::create_dir_all(etc.join("adapters")).unwrap();
    for name in ["discipline", "npc"] {
        std::fs::copy(
            shipped_manifests().join(format!("{name}.toml")),
            etc.join(format!("adapters/{name}.toml")),
        )
        .unwrap();
    }
    let pki = liankong::sim::Pki::generate().unwrap();
    let other = liankong::sim::Pki::generate().unwrap();
    std::fs::write(etc.join("empty-ca.pem"), "no certificate here\n").unwrap();
    std::fs::write(etc.join("ca.pem"), &pki.ca_cert_pem).unwrap();
    std::fs::write(etc.join("client.pem"), &pki.client_cert_pem).unwrap();
    std::fs::write(etc.join("other.key"), &other.client_key_pem).unwrap();
    // Relative paths are the config file's own: these name files in etc/,
    // whatever directory the command runs in.
    let config = format!(
        "[store]\nurl = \"sqlite:{state}/liankong.db\"\n\n\
         [adapters.npc]\nmanifest = \"adapters/npc.toml\"\nschedule = \"* * * * *\"\n\
         base_url = \"http://127.0.0.1:1\"\nsecrets = {{ api_key = \"env:LK_CHECK_KEY\" }}\n\
         tls = {{ ca = \"empty-ca.pem\" }}\n\n\
         [adapters.discipline]\nmanifest = \"adapters/discipline.toml\"\nschedule = \"* * * * *\"\n\
         base_url = \"https://127.0.0.1:1\"\nsecrets = {{ token = \"env:LK_CHECK_KEY\" }}\n\
         tls = {{ ca = \"ca.pem\", client_cert = \"client.pem\", client_key = \"file:other.key\" }}\n\n\
         [subscribers.finance_main]\nagency = \"finance\"\nurl = \"https://hooks.example/lk\"\n\
         secrets = [\"env:LK_CHECK_UNSET\"]\n\n\
         [subscribers.npc_main]\nagency = \"npc\"\nurl = \"https://hooks.example/lk\"\n\
         secrets = [\"env:LK_CHECK_NOT_WHSEC\"]\n",
        state = dir.path().join("no-such-dir").display()
    );
    std::fs::write(etc.join("liankong.toml"), &config).unwrap();
    let env = [
        ("LK_CHECK_KEY", "k"),
        ("LK_CHECK_NOT_WHSEC", "hunter2-but-longer"),
    ];
    let path = etc.join("liankong.toml");
    let path = path.to_str().unwrap();
    let check = liankong_in(dir.path(), &["--config", path, "check"], &env);
    let err = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(2), "{err}");
    let e = etc.display();
    assert_eq!(
        err,
        format!(
            "liankong: the config has errors:\n  \
             adapter discipline: the tls settings do not go together: TLS failure: builder error: \
             keys may not be consistent: KeyMismatch\n  \
             adapter npc: tls.ca {e}/empty-ca.pem: holds no PEM certificate\n  \
             subscriber finance_main: secret env:LK_CHECK_UNSET: environment variable \
             LK_CHECK_UNSET is not set\n  \
             subscriber npc_main: env:LK_CHECK_NOT_WHSEC: a webhook secret must start with whsec_\n  \
             store.url sqlite:{d}/no-such-dir/liankong.db: the directory {d}/no-such-dir does not \
             exist (SQLite creates the file, not its directory)\n",
            d = dir.path().display()
        )
    );
    assert!(check.stdout.is_empty());
    // `once` refuses the same config with the same words: check told the
    // truth.
    let once = liankong_in(dir.path(), &["--config", path, "once"], &env);
    assert_eq!(once.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&once.stderr), err);

    // Mended, check passes and says what it found; the secrets' values never
    // appear.
    let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    std::fs::write(etc.join("empty-ca.pem"), &pki.ca_cert_pem).unwrap();
    std::fs::write(etc.join("other.key"), &pki.client_key_pem).unwrap();
    std::fs::create_dir_all(dir.path().join("no-such-dir")).unwrap();
    let env = [
        ("LK_CHECK_KEY", "k"),
        ("LK_CHECK_NOT_WHSEC", whsec),
        ("LK_CHECK_UNSET", whsec),
    ];
    let check = liankong_in(&etc, &["--config", path, "check"], &env);
    let out = String::from_utf8_lossy(&check.stdout);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        out.starts_with("config: ok (2 adapters enabled, 0 disabled; 2 subscribers)\n"),
        "{out}"
    );
    assert!(
        out.contains("\nsubscriber npc_main: npc at https://hooks.example/lk\n"),
        "{out}"
    );
    assert!(out.contains("\napi: 127.0.0.1:8470 (0 tokens)\n"), "{out}");
    assert!(!out.contains(whsec) && !out.contains("MfKQ"), "{out}");
}

#[tokio::test]
async fn demo_sim_and_token_need_no_config_and_run_from_any_directory() {
    // Outside the repository, with no config anywhere near: an installed
    // binary, as deploy/README.md installs it.
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().to_owned();
    let run = |args: &'static [&'static str]| {
        let cwd = cwd.clone();
        tokio::task::spawn_blocking(move || liankong_in(&cwd, args, &[]))
    };

    let token = run(&["token", "--agency", "finance", "--name", "desk"])
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&token.stdout);
    assert_eq!(
        token.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    assert!(
        out.contains("\n  lk_") && out.contains("[[api.tokens]]\nname = \"desk\""),
        "{out}"
    );

    let demo = run(&["demo", "--dir", "demo"]).await.unwrap();
    let out = String::from_utf8_lossy(&demo.stdout);
    assert_eq!(
        demo.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    assert!(out.contains("\n5. verify: intact"), "{out}");
    assert!(
        out.contains("; the store extends 1 of 1 checkpoints finance kept\n"),
        "{out}"
    );
    assert!(
        out.contains("\n  checkpoint 1: 13 streams signed (discipline's only in discipline's)\n"),
        "{out}"
    );
    assert!(out.contains("1 store.checkpoint"), "{out}");
    // One of each action, and the rules that follow them through.
    for line in [
        "  action.freeze_breach      1 firing: freezes 3701002021990001 from 2021-09-15",
        "  action.reclaim_unapplied  1 firing: reclaims 20000.00 yuan more from 3701002021990009",
        "  action.revive_unapplied   1 firing: revives 8000.00 yuan of it into 3701002021990005",
        "  action.warn_unanswered    1 firing: warns about 3701002021990001, answer due 2021-09-25",
    ] {
        assert!(out.contains(line), "{line:?} in {out}");
    }
    assert_eq!(out.matches(" recorded: ").count(), 8, "{out}");
    // The manifests are the binary's own, written beside the demo's config.
    let manifest = dir.path().join("demo/adapters/finance.toml");
    assert_eq!(
        std::fs::read_to_string(&manifest).unwrap(),
        std::fs::read_to_string(shipped_manifests().join("finance.toml")).unwrap()
    );
    let config = std::fs::read_to_string(dir.path().join("demo/liankong.toml")).unwrap();
    assert!(
        config.contains(&format!("manifest = \"{}\"", manifest.display())),
        "{config}"
    );

    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"));
    command
        .current_dir(dir.path())
        .args([
            "sim",
            "--dir",
            "sim",
            "--finance-port",
            "0",
            "--npc-port",
            "0",
        ])
        .args(["--discipline-port", "0"])
        .env_remove("LIANKONG_CONFIG");
    let mut sim = Spawned::start(command, dir.path().join("sim.log"));
    let written = dir.path().join("sim/liankong.toml");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !written.is_file() {
        assert!(
            std::time::Instant::now() < deadline,
            "no config from sim: {}",
            sim.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The config it wrote reaches all five systems, from anywhere.
    let path = written.to_str().unwrap().to_owned();
    let cwd = dir.path().to_owned();
    let check = tokio::task::spawn_blocking(move || {
        liankong_in(&cwd, &["--config", &path, "check", "--connect"], &[])
    })
    .await
    .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    for agency in ["finance", "npc", "audit", "discipline", "orgdept"] {
        assert!(
            out.contains(&format!("\n{agency}: manifest ")),
            "{agency}:\n{out}"
        );
    }
    assert!(!out.contains("FAILED"), "{out}");
    // The store is not made by a check.
    assert!(
        out.ends_with(
            "liankong.db does not exist yet: the first command that opens the store creates it\n"
        ),
        "{out}"
    );
    assert!(!dir.path().join("sim/liankong.db").exists());
    assert!(dir.path().join("sim/adapters/orgdept.toml").is_file());
    sim.signal("-INT");
    assert_eq!(
        sim.exit_status(Duration::from_secs(30)).await.code(),
        Some(0),
        "{}",
        sim.log()
    );

    // A command that needs a config says where it looked.
    let verify = run(&["verify"]).await.unwrap();
    assert_eq!(verify.status.code(), Some(2));
    if !Path::new("/etc/liankong/liankong.toml").exists() {
        assert_eq!(
            String::from_utf8_lossy(&verify.stderr),
            "liankong: no config file: neither config/liankong.toml nor \
             /etc/liankong/liankong.toml exists (give one with --config PATH or LIANKONG_CONFIG)\n"
        );
    }
}
