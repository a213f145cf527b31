//! Rules, alerts and webhooks. Every rule of RULES.md on both backends: a case that fires with its exact
//! severity, recipients and facts, the boundary just short of its threshold,
//! and its resolution once the source data is corrected.

mod support;

use chrono::{DateTime, Utc};
use liankong::alert::{AlertState, EvaluationOutcome, Lifecycle, apply_findings};
use liankong::clock::SystemClock;
use liankong::model::*;
use liankong::money::Fen;
use liankong::reconcile::{Finding, RuleId, RulesConfig, Severity, evaluate};
use serde_json::{Value, json};
use support::*;

const U1: &str = "370101";
const P1: &str = "3701002021000001";
const P2: &str = "3701002021000002";

use Agency::{Audit, Discipline, Finance, Npc, Orgdept};

async fn eval_with(t: &TestStore, as_of: &str, c: &RulesConfig, rule: RuleId) -> Vec<Finding> {
    evaluate(t.store.as_ref(), day(as_of), c)
        .await
        .unwrap()
        .into_iter()
        .filter(|f| f.rule == rule)
        .collect()
}

async fn eval(t: &TestStore, as_of: &str, rule: RuleId) -> Vec<Finding> {
    eval_with(t, as_of, &RulesConfig::default(), rule).await
}

/// The rules config with every rule but `rule` switched off.
fn only(rule: RuleId) -> RulesConfig {
    only_rules(&[rule])
}

/// The rules config with only these rules switched on.
fn only_rules(rules: &[RuleId]) -> RulesConfig {
    let toml: String = RuleId::ALL
        .iter()
        .filter(|r| !rules.contains(r))
        .map(|r| format!("[rules.\"{r}\"]\nenabled = false\n"))
        .collect();
    liankong::config::Config::parse(&toml).unwrap().rules
}

/// Evaluates one rule and applies its findings to the alerts (no subscribers).
async fn cycle(t: &TestStore, rule: RuleId, as_of: &str, now: &str) -> EvaluationOutcome {
    let findings = evaluate(t.store.as_ref(), day(as_of), &only(rule))
        .await
        .unwrap();
    let lifecycle = Lifecycle {
        repeat_interval: chrono::Duration::days(7),
    };
    apply_findings(
        t.store.as_ref(),
        &findings,
        day(as_of),
        at(now),
        lifecycle,
        &[],
    )
    .await
    .unwrap()
}

/// (state, severity, episode) of the alerts of a rule.
async fn alerts_of(t: &TestStore, rule: RuleId) -> Vec<(AlertState, Severity, i64)> {
    let mut v: Vec<_> = t
        .store
        .alerts()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.rule == rule)
        .map(|a| (a.state, a.severity, a.episode))
        .collect();
    v.sort();
    v
}

fn one(fs: &[Finding]) -> &Finding {
    assert_eq!(fs.len(), 1, "expected one finding, got {fs:#?}");
    &fs[0]
}

fn facts(f: &Finding) -> &Value {
    &f.view.facts
}

/// A basic project of unit U1 with an initial quota approved on 15 January.
fn funded(w: &mut World, code: &str, fen: i64) {
    w.add(project(code, U1, ProjectCategory::Basic, false))
        .add(quota(
            &format!("Q-{code}"),
            code,
            2021,
            QuotaKind::Initial,
            fen,
            "2021-01-15",
        ));
}

fn pay(w: &mut World, id: &str, code: &str, kind: PaymentKind, fen: i64, on: &str) {
    w.add(payment(id, code, kind, fen, on));
}

fn spend(w: &mut World, id: &str, code: &str, fen: i64, on: &str) {
    pay(w, id, code, PaymentKind::Expenditure, fen, on);
}

fn allocate(w: &mut World, id: &str, code: &str, fen: i64, on: &str) {
    pay(w, id, code, PaymentKind::Allocation, fen, on);
}

/// A finding's severity and recipients: how a rule judged.
fn judged(f: &Finding) -> (Severity, Vec<Agency>) {
    (f.severity, f.recipients.clone())
}

#[tokio::test]
async fn budget_approved_mismatch() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        w.add(budget(P1, 2021, 100_000_001, 0));
        w.add(project(P2, U1, ProjectCategory::Basic, false))
            .add(quota(
                "Q-P2",
                P2,
                2021,
                QuotaKind::Initial,
                500_000,
                "2021-01-15",
            ));
        w.write(s).await;

        let fs = eval(&t, "2021-06-30", RuleId::ApprovedMismatch).await;
        assert_eq!(fs.len(), 2);
        let f = &fs[0];
        assert_eq!(judged(f), (Severity::Warning, vec![Npc, Finance]));
        assert_eq!(
            f.view.subject,
            json!({"rule": "budget.approved_mismatch", "project": P1, "year": 2021})
        );
        assert_eq!(
            facts(f),
            &json!({"project": P1, "year": 2021, "npc_approved": "1000000.01",
                    "finance_quota": "1000000.00", "difference": "0.01"})
        );
        assert!(f.view.summary.contains("相差0.01元"), "{}", f.view.summary);
        // A finance quota with no approval at all is critical.
        let missing = &fs[1];
        assert_eq!(missing.severity, Severity::Critical);
        assert_eq!(facts(missing)["npc_approved"], Value::Null);
        assert_eq!(facts(missing)["finance_quota"], "5000.00");

        // Just inside the tolerance: nothing.
        let mut c = RulesConfig::default();
        c.approved_mismatch.tolerance = liankong::reconcile::config::Yuan(liankong::money::Fen(1));
        assert_eq!(
            eval_with(&t, "2021-06-30", &c, RuleId::ApprovedMismatch)
                .await
                .len(),
            1
        );

        // 0.99% of the larger side is a warning, 1% is critical.
        w.add(budget(P1, 2021, 101_000_000, 0));
        w.write(s).await;
        assert_eq!(
            eval(&t, "2021-06-30", RuleId::ApprovedMismatch).await[0].severity,
            Severity::Warning
        );
        w.add(budget(P1, 2021, 99_000_000, 0));
        w.write(s).await;
        assert_eq!(
            eval(&t, "2021-06-30", RuleId::ApprovedMismatch).await[0].severity,
            Severity::Critical
        );

        cycle(
            &t,
            RuleId::ApprovedMismatch,
            "2021-06-30",
            "2021-06-30T10:00:00Z",
        )
        .await;
        assert_eq!(alerts_of(&t, RuleId::ApprovedMismatch).await.len(), 2);
        // Corrected on both: resolved.
        w.add(budget(P1, 2021, 100_000_000, 0))
            .add(budget(P2, 2021, 400_000, 100_000));
        w.write(s).await;
        let o = cycle(
            &t,
            RuleId::ApprovedMismatch,
            "2021-07-01",
            "2021-07-01T10:00:00Z",
        )
        .await;
        assert_eq!(o.resolved, 2);
        assert!(
            alerts_of(&t, RuleId::ApprovedMismatch)
                .await
                .iter()
                .all(|a| a.0 == AlertState::Resolved)
        );
    })
    .await;
}

#[tokio::test]
async fn execution_mirror_mismatch() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        spend(&mut w, "E1", P1, 1_000_000, "2021-03-10");
        spend(&mut w, "E2", P1, 500_000, "2021-04-10");
        w.add(execution(P1, "2021-03-31", 1_000_000))
            .add(execution(P1, "2021-04-30", 1_500_001))
            // Dated after the as-of date: not yet judged.
            .add(execution(P1, "2021-07-31", 9));
        w.write(s).await;

        let f = eval(&t, "2021-06-30", RuleId::MirrorMismatch).await;
        let f = one(&f);
        assert_eq!(judged(f), (Severity::Warning, vec![Npc, Finance]));
        assert_eq!(f.unit_code.as_deref(), Some(U1), "the project's unit");
        assert_eq!(
            facts(f),
            &json!({"project": P1, "year": 2021, "as_of": "2021-04-30", "npc_reported": "15000.01",
                    "finance_expenditure": "15000.00", "difference": "0.01", "months_differing": 1})
        );
        cycle(
            &t,
            RuleId::MirrorMismatch,
            "2021-06-30",
            "2021-06-30T10:00:00Z",
        )
        .await;

        w.add(execution(P1, "2021-04-30", 1_500_000));
        w.write(s).await;
        assert!(
            eval(&t, "2021-06-30", RuleId::MirrorMismatch)
                .await
                .is_empty()
        );
        cycle(
            &t,
            RuleId::MirrorMismatch,
            "2021-06-30",
            "2021-06-30T11:00:00Z",
        )
        .await;
        assert_eq!(
            alerts_of(&t, RuleId::MirrorMismatch).await,
            vec![(AlertState::Resolved, Severity::Warning, 1)]
        );
    })
    .await;
}

#[tokio::test]
async fn execution_slow_with_escalation() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        // 365,000.00 yuan: one day of the year is exactly 1,000.00 yuan.
        funded(&mut w, P1, 36_500_000);
        spend(&mut w, "E1", P1, 12_828_650, "2021-06-01");
        w.write(s).await;
        // 2 July is day 183: time progress 50.14%; 14.99 pp behind: nothing.
        assert!(eval(&t, "2021-07-02", RuleId::Slow).await.is_empty());

        spend(&mut w, "E1", P1, 12_825_000, "2021-06-01");
        w.write(s).await;
        let f = eval(&t, "2021-07-02", RuleId::Slow).await;
        let f = one(&f);
        assert_eq!(judged(f), (Severity::Warning, vec![Finance]));
        assert_eq!(
            facts(f),
            &json!({"project": P1, "year": 2021, "as_of": "2021-07-02", "quota": "365000.00",
                    "expenditure": "128250.00", "execution_progress_pct": "35.14",
                    "time_progress_pct": "50.14", "gap_pp": "15.00"})
        );
        // Not judged before 1 March.
        assert!(eval(&t, "2021-02-28", RuleId::Slow).await.is_empty());
        let o = cycle(&t, RuleId::Slow, "2021-07-02", "2021-07-02T10:00:00Z").await;
        assert_eq!(o.firing, 1);

        // 30 pp behind: critical, to npc and orgdept as well; the alert escalates.
        spend(&mut w, "E1", P1, 7_350_000, "2021-06-01");
        w.write(s).await;
        let f = eval(&t, "2021-07-02", RuleId::Slow).await;
        assert_eq!(
            judged(one(&f)),
            (Severity::Critical, vec![Finance, Npc, Orgdept])
        );
        assert_eq!(facts(one(&f))["gap_pp"], "30.00");
        let o = cycle(&t, RuleId::Slow, "2021-07-02", "2021-07-02T11:00:00Z").await;
        assert_eq!(o.escalated, 1);
        assert_eq!(
            alerts_of(&t, RuleId::Slow).await,
            vec![(AlertState::Escalated, Severity::Critical, 1)]
        );

        // Spending catches up: resolved. Below the minimum quota: never judged.
        spend(&mut w, "E2", P1, 20_000_000, "2021-07-01");
        w.write(s).await;
        let o = cycle(&t, RuleId::Slow, "2021-07-02", "2021-07-02T12:00:00Z").await;
        assert_eq!(o.resolved, 1);
        funded(&mut w, P2, 9_999_999);
        w.write(s).await;
        assert!(eval(&t, "2021-07-02", RuleId::Slow).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn funds_idle() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        spend(&mut w, "E1", P1, 1_000_000, "2021-01-10");
        // P2 has never spent: its first initial quota dates it.
        w.add(project(P2, U1, ProjectCategory::Basic, false))
            .add(quota("Q-P2", P2, 2021, QuotaKind::Initial, 100_000_000, "2021-01-10"));
        w.write(s).await;
        assert!(eval(&t, "2021-07-08", RuleId::Idle).await.is_empty(), "179 days");
        let fs = eval(&t, "2021-07-09", RuleId::Idle).await;
        assert_eq!(fs.len(), 2);
        let f = &fs[0];
        assert_eq!(judged(f), (Severity::Warning, vec![Finance, Audit]));
        assert_eq!(
            facts(f),
            &json!({"project": P1, "year": 2021, "as_of": "2021-07-09", "quota": "1000000.00",
                    "expenditure": "10000.00", "balance": "990000.00",
                    "last_expenditure_on": "2021-01-10", "idle_since": "2021-01-10", "idle_days": 180})
        );
        assert_eq!(facts(&fs[1])["last_expenditure_on"], Value::Null);
        cycle(&t, RuleId::Idle, "2021-07-09", "2021-07-09T10:00:00Z").await;
        spend(&mut w, "E2", P1, 1_000_000, "2021-07-01");
        w.write(s).await;
        let o = cycle(&t, RuleId::Idle, "2021-07-09", "2021-07-09T11:00:00Z").await;
        assert_eq!(o.resolved, 1);
    })
    .await;
}

#[tokio::test]
async fn disbursement_lump_sum() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        w.add(project(P1, U1, ProjectCategory::Basic, true))
            .add(quota(
                "Q1",
                P1,
                2021,
                QuotaKind::Initial,
                500_000_000,
                "2021-01-15",
            ));
        allocate(&mut w, "A1", P1, 250_000_000, "2021-02-01");
        allocate(&mut w, "A2", P1, 250_000_000, "2021-03-01");
        // The same, with a quota one fen short of 5,000,000.00 yuan.
        w.add(project(P2, U1, ProjectCategory::Basic, true))
            .add(quota(
                "Q2",
                P2,
                2021,
                QuotaKind::Initial,
                499_999_999,
                "2021-01-15",
            ));
        allocate(&mut w, "B1", P2, 499_999_999, "2021-02-01");
        w.write(s).await;
        let f = eval(&t, "2021-06-30", RuleId::LumpSum).await;
        let f = one(&f);
        assert_eq!(judged(f), (Severity::Warning, vec![Finance]));
        assert_eq!(
            facts(f),
            &json!({"project": P1, "year": 2021, "quota": "5000000.00", "allocated": "5000000.00",
                    "tranches": 2, "min_tranches": 3})
        );
        cycle(&t, RuleId::LumpSum, "2021-06-30", "2021-06-30T10:00:00Z").await;
        // Paid in three tranches instead: resolved.
        allocate(&mut w, "A2", P1, 125_000_000, "2021-03-01");
        allocate(&mut w, "A3", P1, 125_000_000, "2021-04-01");
        w.write(s).await;
        assert_eq!(
            cycle(&t, RuleId::LumpSum, "2021-06-30", "2021-06-30T11:00:00Z")
                .await
                .resolved,
            1
        );
    })
    .await;
}

#[tokio::test]
async fn disbursement_tranche_unsettled() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        allocate(&mut w, "A1", P1, 50_000_000, "2021-03-01");
        allocate(&mut w, "A2", P1, 50_000_000, "2021-04-01");
        spend(&mut w, "E1", P1, 10_000_000, "2021-03-15");
        w.write(s).await;
        assert!(eval(&t, "2021-05-30", RuleId::TrancheUnsettled).await.is_empty(), "day 90");
        let f = eval(&t, "2021-05-31", RuleId::TrancheUnsettled).await;
        let f = one(&f);
        assert_eq!(judged(f), (Severity::Warning, vec![Finance]));
        assert_eq!(
            facts(f),
            &json!({"project": P1, "year": 2021, "as_of": "2021-05-31", "payment_id": "A1",
                    "paid_on": "2021-03-01", "tranche_amount": "500000.00",
                    "allocated_to_date": "500000.00", "expenditure": "100000.00", "settle_by": "2021-05-30"})
        );
        cycle(&t, RuleId::TrancheUnsettled, "2021-05-31", "2021-05-31T10:00:00Z").await;
        spend(&mut w, "E2", P1, 40_000_000, "2021-05-20");
        w.write(s).await;
        assert_eq!(cycle(&t, RuleId::TrancheUnsettled, "2021-05-31", "2021-05-31T11:00:00Z").await.resolved, 1);
    })
    .await;
}

#[tokio::test]
async fn target_missing() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        w.add(project(P1, U1, ProjectCategory::Special, false))
            .add(quota("Q1", P1, 2021, QuotaKind::Initial, 100_000_000, "2021-01-15"))
            .add(target("T-2020", P1, 2020));
        funded(&mut w, P2, 100_000_000); // basic: needs no target
        w.write(s).await;
        let f = eval(&t, "2021-06-30", RuleId::TargetMissing).await;
        let f = one(&f);
        assert_eq!(judged(f), (Severity::Warning, vec![Finance, Npc]));
        assert_eq!(
            facts(f),
            &json!({"project": P1, "year": 2021, "category": "special", "quota": "1000000.00", "targets": 0})
        );
        cycle(&t, RuleId::TargetMissing, "2021-06-30", "2021-06-30T10:00:00Z").await;
        w.add(target("T-2021", P1, 2021));
        w.write(s).await;
        assert_eq!(cycle(&t, RuleId::TargetMissing, "2021-06-30", "2021-06-30T11:00:00Z").await.resolved, 1);
    })
    .await;
}

#[tokio::test]
async fn evaluation_result_unapplied() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        w.add(project(P1, U1, ProjectCategory::Basic, false))
            .add(quota(
                "Q20",
                P1,
                2020,
                QuotaKind::Initial,
                100_000_000,
                "2020-01-15",
            ))
            .add(evaluation("EV20", P1, 2020, 7999, Grade::Fair))
            // A cut of exactly 10%: applied.
            .add(quota(
                "Q21",
                P1,
                2021,
                QuotaKind::Initial,
                90_000_000,
                "2021-01-15",
            ));
        w.write(s).await;
        assert!(
            eval(&t, "2021-06-30", RuleId::ResultUnapplied)
                .await
                .is_empty()
        );

        w.add(quota(
            "Q21",
            P1,
            2021,
            QuotaKind::Initial,
            90_000_001,
            "2021-01-15",
        ));
        w.write(s).await;
        let f = eval(&t, "2021-06-30", RuleId::ResultUnapplied).await;
        let f = one(&f);
        assert_eq!(judged(f), (Severity::Warning, vec![Finance, Npc]));
        assert_eq!(
            facts(f),
            &json!({"project": P1, "year": 2021, "evaluated_year": 2020, "evaluation_id": "EV20",
                    "score": "79.99", "previous_quota": "1000000.00", "initial_quota": "900000.01",
                    "cut_percent": "10.00", "ceiling": "900000.00"})
        );
        cycle(
            &t,
            RuleId::ResultUnapplied,
            "2021-06-30",
            "2021-06-30T10:00:00Z",
        )
        .await;
        // A score of exactly 80 asks for no cut.
        w.add(evaluation("EV20", P1, 2020, 8000, Grade::Good));
        w.write(s).await;
        assert!(
            eval(&t, "2021-06-30", RuleId::ResultUnapplied)
                .await
                .is_empty()
        );
        assert_eq!(
            cycle(
                &t,
                RuleId::ResultUnapplied,
                "2021-06-30",
                "2021-06-30T11:00:00Z"
            )
            .await
            .resolved,
            1
        );
    })
    .await;
}

#[tokio::test]
async fn audit_status_mismatch() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        w.add(unit(U1, "市教育局"))
            .add(finding(
                "SJ-2021-0001",
                "市教育局",
                None,
                FindingStatus::InProgress,
                "2021-12-31",
            ))
            .add(rectification(
                "R1",
                "SJ-2021-0001",
                RectificationStatus::Rectified,
                "2021-06-01",
            ));
        w.write(s).await;
        assert!(
            eval(&t, "2021-06-30", RuleId::StatusMismatch)
                .await
                .is_empty(),
            "29 days of grace"
        );
        let f = eval(&t, "2021-07-01", RuleId::StatusMismatch).await;
        let f = one(&f);
        assert_eq!(judged(f), (Severity::Warning, vec![Audit, Finance]));
        assert_eq!(
            f.view.subject,
            json!({"rule": "audit.status_mismatch", "finding": "SJ-2021-0001"})
        );
        assert_eq!(
            facts(f),
            &json!({"finding_no": "SJ-2021-0001", "audit_status": "in_progress", "report_id": "R1",
                    "reported_on": "2021-06-01", "grace_days": 30, "as_of": "2021-07-01"})
        );
        cycle(
            &t,
            RuleId::StatusMismatch,
            "2021-07-01",
            "2021-07-01T10:00:00Z",
        )
        .await;
        w.add(finding(
            "SJ-2021-0001",
            "市教育局",
            None,
            FindingStatus::Rectified,
            "2021-12-31",
        ));
        w.write(s).await;
        assert_eq!(
            cycle(
                &t,
                RuleId::StatusMismatch,
                "2021-07-01",
                "2021-07-01T11:00:00Z"
            )
            .await
            .resolved,
            1
        );
    })
    .await;
}

#[tokio::test]
async fn audit_overdue_escalates_to_discipline() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        w.add(unit(U1, "市教育局"))
            .add(finding("SJ-2021-0002", "市教育局", Some(P1), FindingStatus::Open, "2021-06-30"));
        w.write(s).await;
        assert!(eval(&t, "2021-06-30", RuleId::Overdue).await.is_empty());
        let f = eval(&t, "2021-07-01", RuleId::Overdue).await;
        let f = one(&f);
        assert_eq!(judged(f), (Severity::Warning, vec![Audit, Finance]));
        assert_eq!(
            facts(f),
            &json!({"finding_no": "SJ-2021-0002", "unit_name": "市教育局", "unit_code": U1, "project": P1,
                    "amount": "125000.00", "status": "open", "deadline": "2021-06-30",
                    "days_overdue": 1, "as_of": "2021-07-01"})
        );
        cycle(&t, RuleId::Overdue, "2021-07-01", "2021-07-01T10:00:00Z").await;
        let f = eval(&t, "2021-09-28", RuleId::Overdue).await;
        assert_eq!((one(&f).severity, facts(one(&f))["days_overdue"].clone()), (Severity::Warning, json!(90)));
        let f = eval(&t, "2021-09-29", RuleId::Overdue).await;
        assert_eq!(judged(one(&f)), (Severity::Critical, vec![Audit, Finance, Discipline]));
        assert_eq!(cycle(&t, RuleId::Overdue, "2021-09-29", "2021-09-29T10:00:00Z").await.escalated, 1);
        w.add(finding("SJ-2021-0002", "市教育局", Some(P1), FindingStatus::Rectified, "2021-06-30"));
        w.write(s).await;
        assert_eq!(cycle(&t, RuleId::Overdue, "2021-09-29", "2021-09-29T11:00:00Z").await.resolved, 1);
    })
    .await;
}

#[tokio::test]
async fn referral_freeze_breach_is_redacted_for_finance() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        spend(&mut w, "PAY-EARLY", P1, 1_000_000, "2021-05-09");
        w.add(referral("XS-2021-0099", U1, Some(P1)));
        w.write(s).await;
        assert!(eval(&t, "2021-06-30", RuleId::FreezeBreach).await.is_empty(), "paid the day before the freeze");

        allocate(&mut w, "PAY-9", P1, 3_000_000, "2021-05-10");
        w.write(s).await;
        let fs = eval(&t, "2021-06-30", RuleId::FreezeBreach).await;
        let f = one(&fs);
        assert_eq!((f.severity, f.recipients.clone(), f.confidential), (Severity::Critical, vec![Discipline, Finance], true));
        let discipline = f.view_for(Discipline).unwrap();
        assert_eq!(
            discipline.facts,
            json!({"referral_id": "XS-2021-0099", "unit_code": U1, "project": P1, "status": "verifying",
                   "received_on": "2021-05-01", "origin": "audit", "freeze_from": "2021-05-10",
                   "payments": [{"payment_id": "PAY-9", "project": P1, "kind": "allocation",
                                 "amount": "30000.00", "paid_on": "2021-05-10"}],
                   "payment_count": 1, "total": "30000.00", "as_of": "2021-06-30"})
        );
        let finance = f.view_for(Finance).unwrap();
        assert_eq!(
            finance.facts,
            json!({"projects": [P1], "freeze_from": "2021-05-10",
                   "payments": [{"payment_id": "PAY-9", "project": P1, "amount": "30000.00", "paid_on": "2021-05-10"}],
                   "total": "30000.00"})
        );
        let shown = serde_json::to_string(finance).unwrap();
        for secret in ["XS-2021-0099", "verifying", "2021-05-01", "\"audit\"", "referral_id", "origin", "received_on", "status"] {
            assert!(!shown.contains(secret), "finance sees {secret}: {shown}");
        }
        assert!(f.view_for(Npc).is_none());
        cycle(&t, RuleId::FreezeBreach, "2021-06-30", "2021-06-30T10:00:00Z").await;

        // Closed: resolved. A unit-wide freeze catches a payment on any project of the unit.
        let mut closed = referral("XS-2021-0099", U1, Some(P1));
        if let Record::Referral(r) = &mut closed {
            r.status = ReferralStatus::Closed;
        }
        w.add(closed).add(referral("XS-2021-0100", U1, None));
        funded(&mut w, P2, 100_000_000);
        spend(&mut w, "PAY-10", P2, 100, "2021-06-01");
        w.write(s).await;
        let fs = eval(&t, "2021-06-30", RuleId::FreezeBreach).await;
        assert_eq!(fs.len(), 1);
        assert_eq!(fs[0].view.subject["referral"], "XS-2021-0100");
        assert_eq!(fs[0].view_for(Finance).unwrap().facts["projects"], json!([P1, P2]));
        let o = cycle(&t, RuleId::FreezeBreach, "2021-06-30", "2021-06-30T11:00:00Z").await;
        assert_eq!((o.resolved, o.firing), (1, 1));
    })
    .await;
}

#[tokio::test]
async fn orgdept_rate_mismatch() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        spend(&mut w, "E1", P1, 50_000_000, "2021-06-30");
        w.add(orgdept(U1, 2, 5100));
        w.write(s).await;
        assert!(eval(&t, "2021-06-30", RuleId::RateMismatch).await.is_empty(), "1.00 pp is within");
        w.add(orgdept(U1, 2, 5101));
        w.write(s).await;
        assert!(eval(&t, "2021-06-29", RuleId::RateMismatch).await.is_empty(), "quarter not over");
        let f = eval(&t, "2021-06-30", RuleId::RateMismatch).await;
        let f = one(&f);
        assert_eq!(judged(f), (Severity::Warning, vec![Orgdept, Finance]));
        assert_eq!(f.view.subject, json!({"rule": "orgdept.rate_mismatch", "unit": U1, "year": 2021, "quarter": 2}));
        assert_eq!(
            facts(f),
            &json!({"unit": U1, "year": 2021, "quarter": 2, "quarter_end": "2021-06-30",
                    "reported_rate_pct": "51.01", "computed_rate_pct": "50.00", "gap_pp": "1.01",
                    "quota_to_quarter_end": "1000000.00", "expenditure_to_quarter_end": "500000.00"})
        );
        cycle(&t, RuleId::RateMismatch, "2021-06-30", "2021-06-30T10:00:00Z").await;
        w.add(orgdept(U1, 2, 5000));
        w.write(s).await;
        assert_eq!(cycle(&t, RuleId::RateMismatch, "2021-06-30", "2021-06-30T11:00:00Z").await.resolved, 1);
    })
    .await;
}

/// Several quarters are summed in one pass, each to its own end: a quota
/// adjustment and a payment of the second quarter count for it alone.
#[tokio::test]
async fn orgdept_rates_of_several_quarters_are_judged_each_on_its_own_sums() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        spend(&mut w, "E1", P1, 20_000_000, "2021-03-15");
        // The second quarter: the quota grows to 1,250,000.00 yuan, spending
        // to 750,000.00 (60.00%).
        w.add(quota("Q-P1-ADJ", P1, 2021, QuotaKind::Adjustment, 25_000_000, "2021-04-20"));
        spend(&mut w, "E2", P1, 55_000_000, "2021-05-01");
        // The first quarter reported right (20.00%), the second stale.
        w.add(orgdept(U1, 1, 2000)).add(orgdept(U1, 2, 2000));
        w.write(s).await;
        let f = eval(&t, "2021-06-30", RuleId::RateMismatch).await;
        let f = one(&f);
        assert_eq!(f.view.subject["quarter"], 2);
        assert_eq!(
            facts(f),
            &json!({"unit": U1, "year": 2021, "quarter": 2, "quarter_end": "2021-06-30",
                    "reported_rate_pct": "20.00", "computed_rate_pct": "60.00", "gap_pp": "40.00",
                    "quota_to_quarter_end": "1250000.00", "expenditure_to_quarter_end": "750000.00"})
        );
    })
    .await;
}

#[tokio::test]
async fn yearend_unspendable() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        // Nothing spent in the 90 days to 1 October: the projection is flat
        // at 90% of the quota, exactly 10% unspent.
        spend(&mut w, "E1", P1, 90_000_000, "2021-07-01");
        w.write(s).await;
        assert!(eval(&t, "2021-10-01", RuleId::Unspendable).await.is_empty());

        spend(&mut w, "E1", P1, 40_000_000, "2021-07-01");
        spend(&mut w, "E2", P1, 10_000_000, "2021-09-01");
        w.write(s).await;
        assert!(eval(&t, "2021-09-30", RuleId::Unspendable).await.is_empty(), "before 1 October");
        let f = eval(&t, "2021-10-01", RuleId::Unspendable).await;
        let f = one(&f);
        assert_eq!(judged(f), (Severity::Warning, vec![Finance, Npc]));
        // 500,000.00 spent, 100,000.00 of it in the last 90 days; 91 days left:
        // 500,000.00 + 100,000.00 / 90 × 91 = 601,111.11 projected.
        assert_eq!(
            facts(f),
            &json!({"project": P1, "year": 2021, "as_of": "2021-10-01", "quota": "1000000.00",
                    "expenditure": "500000.00", "expenditure_lookback": "400000.00", "lookback_days": 90,
                    "days_left": 91, "projected_year_end": "601111.11", "amount_to_reclaim": "398888.89"})
        );
        cycle(&t, RuleId::Unspendable, "2021-10-01", "2021-10-01T10:00:00Z").await;
        spend(&mut w, "E3", P1, 50_000_000, "2021-09-30");
        w.write(s).await;
        assert_eq!(cycle(&t, RuleId::Unspendable, "2021-10-01", "2021-10-01T11:00:00Z").await.resolved, 1);
    })
    .await;
}

#[tokio::test]
async fn payment_over_quota() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        allocate(&mut w, "A1", P1, 100_000_000, "2021-02-01");
        w.write(s).await;
        assert!(
            eval(&t, "2021-06-30", RuleId::OverQuota).await.is_empty(),
            "exactly the quota"
        );
        allocate(&mut w, "A2", P1, 1, "2021-02-02");
        w.write(s).await;
        let f = eval(&t, "2021-06-30", RuleId::OverQuota).await;
        let f = one(&f);
        assert_eq!(judged(f), (Severity::Critical, vec![Finance, Npc, Audit]));
        assert_eq!(
            facts(f),
            &json!({"project": P1, "year": 2021, "as_of": "2021-06-30", "quota": "1000000.00",
                    "allocated": "1000000.01", "expenditure": "0.00", "excess": "0.01"})
        );
        cycle(&t, RuleId::OverQuota, "2021-06-30", "2021-06-30T10:00:00Z").await;
        w.delete(Collection::Payments, "A2");
        w.write(s).await;
        assert_eq!(
            cycle(&t, RuleId::OverQuota, "2021-06-30", "2021-06-30T11:00:00Z")
                .await
                .resolved,
            1
        );
    })
    .await;
}

#[tokio::test]
async fn a_stored_alert_that_does_not_read_back_is_an_error_not_an_absence() {
    on_both(|t| async move {
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        allocate(&mut w, "A1", P1, 100_000_001, "2021-02-01");
        w.write(t.store.as_ref()).await;
        cycle(&t, RuleId::OverQuota, "2021-06-30", "2021-06-30T10:00:00Z").await;
        assert_eq!(
            alerts_of(&t, RuleId::OverQuota).await,
            vec![(AlertState::Firing, Severity::Critical, 1)]
        );
        let id = t.store.alerts().await.unwrap()[0].id.clone();

        // A state the lifecycle does not know.
        t.raw.exec("UPDATE alerts SET state = 'dormant'").await;
        let e = t.store.alerts().await.unwrap_err().to_string();
        assert!(e.contains("\"dormant\" is not a stored AlertState"), "{e}");
        // A finding that is not one: an error, where it used to drop out of every view.
        t.raw
            .exec("UPDATE alerts SET state = 'firing', finding = '{}'")
            .await;
        let e = t.store.get_alert(&id).await.unwrap_err().to_string();
        assert!(e.contains("finding"), "{e}");
    })
    .await;
}

#[tokio::test]
async fn link_unknown_project() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        w.add(budget(P1, 2021, 100_000_000, 0))
            .add(budget(P2, 2021, 5_000, 0));
        w.add(referral("XS-2021-0200", U1, Some("3701002021009999")));
        w.write(s).await;
        let fs = eval(&t, "2021-06-30", RuleId::UnknownProject).await;
        assert_eq!(fs.len(), 2);
        let discipline = fs
            .iter()
            .find(|f| f.view.subject["agency"] == "discipline")
            .unwrap();
        assert_eq!(
            (discipline.recipients.clone(), discipline.confidential),
            (vec![Discipline], true)
        );
        assert!(discipline.view_for(Finance).is_none());
        let npc = fs
            .iter()
            .find(|f| f.view.subject["agency"] == "npc")
            .unwrap();
        assert_eq!(judged(npc), (Severity::Warning, vec![Npc, Finance]));
        assert_eq!(
            facts(npc),
            &json!({"project": P2, "agency": "npc", "records": 1, "collections": ["budgets"],
                    "keys": [format!("{P2}/2021")]})
        );
        cycle(
            &t,
            RuleId::UnknownProject,
            "2021-06-30",
            "2021-06-30T10:00:00Z",
        )
        .await;
        w.add(project(P2, U1, ProjectCategory::Basic, false));
        w.write(s).await;
        assert_eq!(
            cycle(
                &t,
                RuleId::UnknownProject,
                "2021-06-30",
                "2021-06-30T11:00:00Z"
            )
            .await
            .resolved,
            1
        );
    })
    .await;
}

#[tokio::test]
async fn link_unresolved_unit() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        // The audit office writes before finance has sent the unit.
        w.add(finding("SJ-1", "市教育局 (本级) ", None, FindingStatus::Open, "2021-12-31"))
            .add(finding("SJ-2", "市不存在局", None, FindingStatus::Open, "2021-12-31"));
        w.write(s).await;
        assert_eq!(eval(&t, "2021-06-30", RuleId::UnresolvedUnit).await.len(), 2);
        cycle(&t, RuleId::UnresolvedUnit, "2021-06-30", "2021-06-30T10:00:00Z").await;

        w.add(unit(U1, "市教育局（本级）"));
        w.write(s).await;
        let fs = eval(&t, "2021-06-30", RuleId::UnresolvedUnit).await;
        let f = one(&fs);
        assert_eq!(judged(f), (Severity::Warning, vec![Audit]));
        assert_eq!(
            facts(f),
            &json!({"finding_no": "SJ-2", "unit_name": "市不存在局", "normalized_name": "市不存在局"})
        );
        let o = cycle(&t, RuleId::UnresolvedUnit, "2021-06-30", "2021-06-30T11:00:00Z").await;
        assert_eq!(o.resolved, 1, "SJ-1 now resolves to {U1}");
        let linked = t.raw.count("SELECT COUNT(*) FROM audit_findings WHERE unit_code = '370101'").await;
        assert_eq!(linked, 1);
    })
    .await;
}

#[tokio::test]
async fn reminders_acknowledgement_silences_and_episodes() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        allocate(&mut w, "A1", P1, 100_000_001, "2021-02-01");
        w.write(s).await;
        let first = cycle(&t, RuleId::OverQuota, "2021-06-30", "2021-06-30T10:00:00Z").await;
        assert_eq!(first.firing, 1);
        assert_eq!(
            cycle(&t, RuleId::OverQuota, "2021-07-06", "2021-07-06T10:00:00Z")
                .await
                .reminders,
            0,
            "6 days"
        );
        assert_eq!(
            cycle(&t, RuleId::OverQuota, "2021-07-07", "2021-07-07T10:00:00Z")
                .await
                .reminders,
            1,
            "7 days"
        );

        let id = t
            .store
            .alerts()
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.rule == RuleId::OverQuota)
            .unwrap()
            .id;
        assert!(
            t.store
                .ack_alert(&id, "王科长", "已通知单位", at("2021-07-08T00:00:00Z"))
                .await
                .unwrap()
        );
        assert_eq!(
            cycle(&t, RuleId::OverQuota, "2021-07-20", "2021-07-20T10:00:00Z")
                .await
                .reminders,
            0,
            "acknowledged"
        );

        // Resolved, then the same condition again: episode 2, not acknowledged.
        w.delete(Collection::Payments, "A1");
        w.write(s).await;
        assert_eq!(
            cycle(&t, RuleId::OverQuota, "2021-07-21", "2021-07-21T10:00:00Z")
                .await
                .resolved,
            1
        );
        t.store
            .add_silence(
                liankong::alert::SilenceScope::Project,
                P1,
                None,
                at("2021-08-01T00:00:00Z"),
                "核查中",
                "ops",
                at("2021-07-21T00:00:00Z"),
            )
            .await
            .unwrap();
        allocate(&mut w, "A1", P1, 100_000_001, "2021-02-01");
        w.write(s).await;
        let o = cycle(&t, RuleId::OverQuota, "2021-07-22", "2021-07-22T10:00:00Z").await;
        assert_eq!((o.firing, o.silenced), (1, 1));
        let a = t.store.get_alert(&id).await.unwrap().unwrap();
        assert_eq!(
            (a.episode, a.state, a.acked_at),
            (2, AlertState::Firing, None)
        );
        assert_eq!(a.notified_episode, Some(1), "silenced: not told yet");
        // After the silence ends, the firing of episode 2 is told once.
        let o = cycle(&t, RuleId::OverQuota, "2021-08-02", "2021-08-02T10:00:00Z").await;
        assert_eq!((o.silenced, o.reminders), (0, 0));
        let a = t.store.get_alert(&id).await.unwrap().unwrap();
        assert_eq!(a.notified_episode, Some(2));
        let _: DateTime<Utc> = a.first_seen;
    })
    .await;
}

// ---- webhooks ----

const FIN_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const FIN_OLD_SECRET: &str = "whsec_b2xkLW9sZC1vbGQtb2xkLW9sZC1vbGQtb2xkIQ==";
const NPC_SECRET: &str = "whsec_bnBjLW5wYy1ucGMtbnBjLW5wYy1ucGMtbnBjIQ==";

fn subscribers(fin: &Receiver, npc: &Receiver) -> Vec<liankong::deliver::Subscriber> {
    use liankong::deliver::signature::decode_secret;
    vec![
        // Mid-rotation: signed with the new and the old secret.
        liankong::deliver::Subscriber::with_keys(
            "fin",
            Finance,
            &fin.url,
            vec![
                decode_secret(FIN_SECRET).unwrap(),
                decode_secret(FIN_OLD_SECRET).unwrap(),
            ],
        ),
        liankong::deliver::Subscriber::with_keys(
            "npc",
            Npc,
            &npc.url,
            vec![decode_secret(NPC_SECRET).unwrap()],
        ),
    ]
}

async fn apply_at(
    t: &TestStore,
    subs: &[liankong::deliver::Subscriber],
    as_of: &str,
    now: DateTime<Utc>,
) -> EvaluationOutcome {
    let findings = evaluate(t.store.as_ref(), day(as_of), &RulesConfig::default())
        .await
        .unwrap();
    let lifecycle = Lifecycle {
        repeat_interval: chrono::Duration::days(7),
    };
    apply_findings(
        t.store.as_ref(),
        &findings,
        day(as_of),
        now,
        lifecycle,
        subs,
    )
    .await
    .unwrap()
}

fn delivery_config() -> liankong::config::DeliveryConfig {
    liankong::config::DeliveryConfig {
        timeout_secs: 5,
        ..Default::default()
    }
}

#[tokio::test]
async fn webhooks_are_signed_and_verify_independently() {
    on_both(|t| async move {
        let (fin, npc) = (Receiver::start().await, Receiver::start().await);
        let subs = subscribers(&fin, &npc);
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        allocate(&mut w, "A1", P1, 100_000_001, "2021-02-01");
        w.write(t.store.as_ref()).await;
        let clock = ManualClock::new("2021-06-30T10:00:00Z");
        let now = liankong::clock::Clock::now(clock.as_ref());
        let o = apply_at(&t, &subs, "2021-06-30", now).await;
        assert!(o.events >= 2);
        let deliverer =
            liankong::deliver::Deliverer::new(subs.clone(), &delivery_config()).unwrap();
        let stats = deliverer
            .deliver_due(t.store.as_ref(), clock.as_ref())
            .await
            .unwrap();
        assert_eq!(stats.delivered, o.events);
        // The round recorded every delivery (in one write), each attempted
        // once, at the round's time, its claim given back.
        let recorded = "SELECT COUNT(*) FROM outbox WHERE state = 'delivered' AND attempts = 1 \
             AND delivered_at = last_attempt_at AND claimed_until IS NULL AND last_error IS NULL";
        assert_eq!(t.raw.count(recorded).await as u64, o.events);
        assert_eq!(
            t.raw.count("SELECT COUNT(*) FROM outbox").await as u64,
            o.events
        );
        let again = deliverer
            .deliver_due(t.store.as_ref(), clock.as_ref())
            .await
            .unwrap();
        assert_eq!(again.attempted, 0);

        let got = fin.received();
        let over = got
            .iter()
            .find(|r| r.body.contains("payment.over_quota"))
            .expect("finance got the over-quota alert");
        verify_webhook(FIN_SECRET, over, now).unwrap();
        verify_webhook(FIN_OLD_SECRET, over, now).unwrap();
        assert!(verify_webhook(NPC_SECRET, over, now).is_err());
        let body: Value = serde_json::from_str(&over.body).unwrap();
        assert_eq!(body["type"], "alert.firing");
        assert_eq!(body["timestamp"], "2021-06-30T10:00:00Z");
        let data = &body["data"];
        let mut keys: Vec<&str> = data
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "alert_id",
                "as_of",
                "episode",
                "facts",
                "first_seen",
                "rule",
                "severity",
                "sources",
                "state",
                "subject",
                "summary"
            ]
        );
        assert_eq!(
            (
                data["severity"].clone(),
                data["state"].clone(),
                data["episode"].clone()
            ),
            (json!("critical"), json!("firing"), json!(1))
        );
        assert_eq!(data["facts"]["excess"], "0.01");
        assert_eq!(over.id.len(), 36);
        assert!(over.id.starts_with("msg_"));

        // A tampered body or a stale (or future) timestamp fails.
        let mut tampered = over.clone();
        tampered.body = tampered.body.replace("0.01", "0.00");
        assert!(verify_webhook(FIN_SECRET, &tampered, now).is_err());
        assert!(verify_webhook(FIN_SECRET, over, now + chrono::Duration::minutes(6)).is_err());
        assert!(verify_webhook(FIN_SECRET, over, now - chrono::Duration::minutes(6)).is_err());
        assert!(verify_webhook(FIN_SECRET, over, now + chrono::Duration::minutes(4)).is_ok());
        for r in npc.received() {
            verify_webhook(NPC_SECRET, &r, now).unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn a_receiver_down_for_most_of_a_day_gets_every_event_in_order() {
    on_both(|t| async move {
        let (fin, npc) = (Receiver::start().await, Receiver::start().await);
        fin.set_status(503);
        npc.set_status(500);
        let subs = subscribers(&fin, &npc);
        let mut w = World::default();
        funded(&mut w, P1, 36_500_000);
        funded(&mut w, P2, 100_000_000);
        spend(&mut w, "E1", P1, 12_825_000, "2021-06-01");
        allocate(&mut w, "A1", P2, 100_000_001, "2021-02-01");
        w.write(t.store.as_ref()).await;

        let clock = ManualClock::new("2021-07-02T08:00:00Z");
        let now = || liankong::clock::Clock::now(clock.as_ref());
        apply_at(&t, &subs, "2021-07-02", now()).await;
        let mut store = t.store.clone();
        let mut deliverer =
            liankong::deliver::Deliverer::new(subs.clone(), &delivery_config()).unwrap();
        let step = chrono::Duration::minutes(7);
        let mut steps = 0;
        while now() < at("2021-07-03T07:00:00Z") {
            deliverer
                .deliver_due(store.as_ref(), clock.as_ref())
                .await
                .unwrap();
            clock.advance(step);
            steps += 1;
            if steps == 20 {
                // Execution falls further behind: escalated; the over-quota is corrected.
                spend(&mut w, "E1", P1, 7_350_000, "2021-06-01");
                w.delete(Collection::Payments, "A1");
                w.write(store.as_ref()).await;
                apply_at(&t, &subs, "2021-07-02", now()).await;
            }
            if steps == 60 {
                // The daemon restarts: a new store handle, a new deliverer.
                store.close().await;
                store = liankong::store::open(&t.url).await.unwrap();
                store.migrate().await.unwrap();
                deliverer =
                    liankong::deliver::Deliverer::new(subs.clone(), &delivery_config()).unwrap();
            }
        }
        let counts = store.outbox_counts().await.unwrap();
        assert_eq!((counts.delivered, counts.dead), (0, 0));
        assert!(counts.retrying > 0);

        fin.set_status(200);
        npc.set_status(204);
        for _ in 0..200 {
            if store.outbox_counts().await.unwrap().pending == 0 {
                break;
            }
            deliverer
                .deliver_due(store.as_ref(), clock.as_ref())
                .await
                .unwrap();
            clock.advance(chrono::Duration::minutes(10));
        }
        let counts = store.outbox_counts().await.unwrap();
        assert_eq!((counts.pending, counts.dead), (0, 0));

        let outbox = store.deliveries(None, 1000).await.unwrap();
        for (receiver, subscriber) in [(&fin, "fin"), (&npc, "npc")] {
            let accepted: Vec<Received> = receiver
                .received()
                .into_iter()
                .filter(|r| r.status < 300)
                .collect();
            let mut ids: Vec<&str> = accepted.iter().map(|r| r.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            let mut expected: Vec<&str> = outbox
                .iter()
                .filter(|o| o.subscriber == subscriber)
                .map(|o| o.event_id.as_str())
                .collect();
            expected.sort_unstable();
            assert_eq!(
                ids, expected,
                "{subscriber}: every event once after de-duplication"
            );
            // Per alert, accepted in the order the outbox wrote them.
            let mut by_alert: std::collections::BTreeMap<&str, Vec<i64>> = Default::default();
            for r in &accepted {
                let o = outbox.iter().find(|o| o.event_id == r.id).unwrap();
                by_alert.entry(o.alert_id.as_str()).or_default().push(o.id);
            }
            for (alert, order) in by_alert {
                let mut sorted = order.clone();
                sorted.sort_unstable();
                assert_eq!(order, sorted, "{subscriber} got alert {alert} out of order");
            }
        }
        let fin_types: Vec<String> = fin
            .received()
            .iter()
            .filter(|r| r.status < 300)
            .map(|r| {
                serde_json::from_str::<Value>(&r.body).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        for ty in ["alert.firing", "alert.escalated", "alert.resolved"] {
            assert!(
                fin_types.iter().any(|t| t == ty),
                "finance never got {ty}: {fin_types:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn undeliverable_events_become_dead_letters_and_can_be_redriven() {
    on_both(|t| async move {
        let (fin, npc) = (Receiver::start().await, Receiver::start().await);
        fin.set_status(500);
        npc.set_status(500);
        let subs = subscribers(&fin, &npc);
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        allocate(&mut w, "A1", P1, 100_000_001, "2021-02-01");
        w.write(t.store.as_ref()).await;
        let clock = ManualClock::new("2021-06-30T10:00:00Z");
        let o = apply_at(
            &t,
            &subs,
            "2021-06-30",
            liankong::clock::Clock::now(clock.as_ref()),
        )
        .await;
        let deliverer = liankong::deliver::Deliverer::new(subs, &delivery_config()).unwrap();
        for _ in 0..(26 * 6) {
            deliverer
                .deliver_due(t.store.as_ref(), clock.as_ref())
                .await
                .unwrap();
            clock.advance(chrono::Duration::minutes(10));
        }
        let counts = t.store.outbox_counts().await.unwrap();
        assert_eq!((counts.dead, counts.pending), (o.events as i64, 0));
        let dead = t.store.deliveries(Some("dead"), 10).await.unwrap();
        assert_eq!(dead[0].last_error.as_deref(), Some("HTTP 500"));
        assert!(dead[0].attempts > 10);

        fin.set_status(200);
        npc.set_status(200);
        assert_eq!(
            t.store
                .redrive(None, liankong::clock::Clock::now(clock.as_ref()))
                .await
                .unwrap(),
            o.events
        );
        let stats = deliverer
            .deliver_due(t.store.as_ref(), clock.as_ref())
            .await
            .unwrap();
        assert_eq!(stats.delivered, o.events);
    })
    .await;
}

// ---- confidentiality ----

const CANARY_ID: &str = "XS-CANARY-7731";
const CANARY_PROJECT: &str = "3701002099997731";

/// Runs the binary on a blocking thread, so that the receivers in this
/// test's runtime keep answering.
async fn liankong(config: &std::path::Path, url: &str, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"));
    command
        .arg("--config")
        .arg(config)
        .args(args)
        .env("LIANKONG_STORE_URL", url)
        .env("RUST_LOG", "debug")
        .env("LK_WHSEC", FIN_SECRET);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn canary_discipline_data_reaches_only_discipline() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let receivers = [
            (Npc, Receiver::start().await),
            (Finance, Receiver::start().await),
            (Audit, Receiver::start().await),
            (Discipline, Receiver::start().await),
            (Orgdept, Receiver::start().await),
        ];
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        spend(&mut w, "PAY-7731", P1, 1_000_000, "2021-05-20");
        let mut canary = referral(CANARY_ID, U1, Some(P1));
        if let Record::Referral(r) = &mut canary {
            r.received_on = day("2020-02-29");
            r.origin = ReferralOrigin::Public;
        }
        w.add(canary);
        // A discipline record naming a project finance never sent.
        w.add(referral("XS-CANARY-7732", U1, Some(CANARY_PROJECT)));
        w.add(finding("SJ-1", "市不存在局", Some(CANARY_PROJECT.replace("7731", "0001").as_str()), FindingStatus::Open, "2021-01-31"));
        w.write(s).await;

        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("liankong.toml");
        let mut text = String::new();
        for (agency, r) in &receivers {
            text.push_str(&format!(
                "[subscribers.{agency}]\nagency = \"{agency}\"\nurl = \"{}\"\nsecrets = [\"env:LK_WHSEC\"]\n",
                r.url
            ));
        }
        std::fs::write(&config, text).unwrap();
        let once = liankong(&config, t.url.expose(), &["once", "--as-of", "2021-06-30"]).await;
        assert_eq!(once.status.code(), Some(0), "{}", String::from_utf8_lossy(&once.stderr));
        let logs = format!("{}{}", String::from_utf8_lossy(&once.stdout), String::from_utf8_lossy(&once.stderr));

        let secrets = [CANARY_ID, "XS-CANARY-7732", "2020-02-29", "\"public\"", CANARY_PROJECT];
        for (agency, r) in &receivers {
            let bodies: String = r.received().iter().map(|x| x.body.clone()).collect();
            if *agency == Discipline {
                // The canary is live: discipline gets it all.
                for s in [CANARY_ID, "XS-CANARY-7732", "2020-02-29", CANARY_PROJECT] {
                    assert!(bodies.contains(s), "discipline lacks {s}");
                }
                continue;
            }
            for s in secrets {
                assert!(!bodies.contains(s), "{agency} received {s}");
            }
            let list = liankong(&config, t.url.expose(), &["alerts", "list", "--agency", agency.as_str(), "--state", "firing"]).await;
            let shown = String::from_utf8_lossy(&list.stdout);
            for s in secrets {
                assert!(!shown.contains(s), "alerts list for {agency} shows {s}:\n{shown}");
            }
        }
        let finance = receivers[1].1.received();
        assert!(
            finance.iter().any(|r| r.body.contains("referral.freeze_breach") && r.body.contains("PAY-7731")),
            "finance got the redacted freeze breach"
        );
        for s in secrets {
            assert!(!logs.contains(s), "the logs contain {s}");
        }
        // Another agency asking for the confidential alert by id hears that
        // there is no such alert, as for any unknown id.
        let alerts = t.store.alerts().await.unwrap();
        let hidden = alerts.iter().find(|a| a.rule == RuleId::UnknownProject && a.subject.contains("discipline")).unwrap();
        let show = liankong(&config, t.url.expose(), &["alerts", "show", &hidden.id, "--agency", "finance"]).await;
        assert_eq!(show.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&show.stderr).contains("no alert"));
        let show = liankong(&config, t.url.expose(), &["alerts", "show", &hidden.id, "--agency", "discipline"]).await;
        assert!(String::from_utf8_lossy(&show.stdout).contains(CANARY_PROJECT));
    })
    .await;
}

// ---- a scenario over the simulator ----

/// (rule, what the subject names) of the active alerts.
async fn active_set(t: &TestStore) -> std::collections::BTreeSet<(String, String)> {
    t.store
        .alerts()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.state.is_active())
        .map(|a| {
            (
                a.rule.to_string(),
                subject_id(&serde_json::from_str(&a.subject).unwrap()),
            )
        })
        .collect()
}

/// What a subject names: its project, finding, referral or unit.
fn subject_id(subject: &Value) -> String {
    ["project", "finding", "referral", "unit"]
        .iter()
        .find_map(|k| subject.get(*k).and_then(|v| v.as_str()))
        .unwrap()
        .to_owned()
}

fn event_types(r: &Receiver) -> Vec<(String, String)> {
    r.received()
        .iter()
        .map(|x| {
            let b: Value = serde_json::from_str(&x.body).unwrap();
            (
                b["type"].as_str().unwrap().to_owned(),
                b["data"]["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_planted_scenario_over_two_dates() {
    use liankong::demo::planted::*;
    on_both(|t| async move {
        let env = start(&t).await;
        let expected = liankong::demo::plant_anomalies(env.sim.data());
        env.sim.write_files().unwrap();
        sync_all(&t, &env).await;

        let receivers: Vec<(Agency, Receiver)> = vec![
            (Npc, Receiver::start().await),
            (Finance, Receiver::start().await),
            (Audit, Receiver::start().await),
            (Discipline, Receiver::start().await),
            (Orgdept, Receiver::start().await),
        ];
        let subs: Vec<_> = receivers
            .iter()
            .map(|(a, r)| {
                liankong::deliver::Subscriber::with_keys(
                    a.as_str(),
                    *a,
                    &r.url,
                    vec![b"0123456789abcdef".to_vec()],
                )
            })
            .collect();
        let deliverer =
            liankong::deliver::Deliverer::new(subs.clone(), &delivery_config()).unwrap();
        let receiver = |a: Agency| &receivers.iter().find(|(x, _)| *x == a).unwrap().1;

        // As of 30 September: exactly the planted alerts, all firing.
        let o = apply_at(&t, &subs, "2021-09-30", at("2021-09-30T12:00:00Z")).await;
        let want: std::collections::BTreeSet<(String, String)> = expected
            .iter()
            .map(|(r, s)| (r.to_string(), s.to_string()))
            .collect();
        assert_eq!(active_set(&t).await, want);
        assert_eq!((o.firing, o.escalated, o.resolved), (16, 0, 0));
        deliverer
            .deliver_due(t.store.as_ref(), &SystemClock)
            .await
            .unwrap();
        assert!(
            event_types(receiver(Npc))
                .contains(&("alert.firing".into(), "budget.approved_mismatch".into()))
        );
        assert!(
            !event_types(receiver(Discipline))
                .iter()
                .any(|(_, r)| r == "audit.overdue")
        );

        // Corrections: the congress fixes its approval, finance its report.
        let data = env.sim.data();
        let mut fix = data
            .snapshot()
            .budgets
            .into_iter()
            .find(|b| b.project_code.as_str() == NPC)
            .unwrap();
        fix.approved = Fen(100_000_000);
        data.upsert(Record::ApprovedBudget(fix));
        let mut fix = data
            .snapshot()
            .execution
            .into_iter()
            .find(|e| e.project_code.as_str() == MIRROR)
            .unwrap();
        fix.cumulative = Fen(75_000_000);
        data.upsert(Record::ExecutionMirror(fix));
        sync_all(&t, &env).await;

        // As of 15 October: two resolved, the overdue finding escalated past
        // 90 days, and the year-end rule now applies.
        let o = apply_at(&t, &subs, "2021-10-15", at("2021-10-15T12:00:00Z")).await;
        let mut want2 = want.clone();
        want2.remove(&("budget.approved_mismatch".into(), NPC.into()));
        want2.remove(&("execution.mirror_mismatch".into(), MIRROR.into()));
        for p in [SLOW, IDLE, MIRROR] {
            want2.insert(("yearend.unspendable".into(), p.into()));
        }
        assert_eq!(active_set(&t).await, want2);
        assert_eq!((o.firing, o.escalated, o.resolved), (3, 1, 2));
        deliverer
            .deliver_due(t.store.as_ref(), &SystemClock)
            .await
            .unwrap();
        assert!(
            event_types(receiver(Npc))
                .contains(&("alert.resolved".into(), "budget.approved_mismatch".into()))
        );
        assert!(
            event_types(receiver(Npc))
                .contains(&("alert.resolved".into(), "execution.mirror_mismatch".into()))
        );
        // Escalated past 90 days, the overdue finding now reaches discipline.
        assert!(
            event_types(receiver(Discipline))
                .contains(&("alert.escalated".into(), "audit.overdue".into()))
        );
        assert!(
            event_types(receiver(Finance))
                .contains(&("alert.firing".into(), "yearend.unspendable".into()))
        );
        env.sim.shutdown().await;
    })
    .await;
}

// ---- the HTTP API and metrics ----

fn api_tokens() -> String {
    let mut t = String::from("[api]\nlisten = \"127.0.0.1:0\"\n");
    for (name, agency) in [
        ("fin-token", "finance"),
        ("dis-token", "discipline"),
        ("npc-token", "npc"),
    ] {
        t.push_str(&format!(
            "[[api.tokens]]\nname = \"{name}\"\nagency = \"{agency}\"\nsha256 = \"{}\"\n",
            liankong::api::token_hash(name)
        ));
    }
    t
}

#[tokio::test]
async fn the_api_answers_each_agency_with_what_it_may_see() {
    use liankong::demo::planted::*;
    on_both(|t| async move {
        let env = start(&t).await;
        liankong::demo::plant_anomalies(env.sim.data());
        // A discipline record naming a project finance never sent: an alert for discipline alone.
        let mut r = env.sim.data().snapshot().referrals[0].clone();
        r.referral_id = "XS-2021-API1".into();
        r.project_code = Some(liankong::model::ProjectCode::parse("3701002021997777").unwrap());
        r.changed_at = at("2021-09-30T20:00:00+08:00");
        env.sim.data().upsert(Record::Referral(r));
        env.sim.write_files().unwrap();
        sync_all(&t, &env).await;
        apply_at(&t, &[], "2021-09-30", at("2021-09-30T12:00:00Z")).await;

        let mut config = env.config.clone();
        config.api = liankong::config::Config::parse(&api_tokens()).unwrap().api;
        let adapters = liankong::adapter::build_all(&config).unwrap();
        let running = liankong::api::RunningConfig::new(std::sync::Arc::new(config), &adapters);
        let (_tx, rx) = tokio::sync::watch::channel(std::sync::Arc::new(running));
        let metrics: liankong::metrics::SharedMetrics = Default::default();
        // Two adapters' workers of this process have failed once.
        let stop_workers = tokio_util::sync::CancellationToken::new();
        for name in ["finance", "discipline"] {
            tokio::spawn(liankong::worker::run(
                FailsOnce { name: liankong::worker::adapter(name), error: Some(format!("{name}: HTTP 503")) },
                metrics.workers.clone(),
                std::sync::Arc::new(liankong::clock::FixedClock(at("2021-09-30T12:30:00Z"))),
                stop_workers.clone(),
            ));
        }
        while metrics.workers.all().values().map(|w| w.errors).sum::<u64>() < 2 {
            tokio::task::yield_now().await;
        }
        let state = liankong::api::ApiState {
            store: t.store.clone(),
            config: rx,
            metrics: metrics.clone(),
            clock: std::sync::Arc::new(liankong::clock::FixedClock(at("2021-09-30T13:00:00Z"))),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(liankong::api::serve(listener, state, stop.clone()));
        let http = reqwest::Client::new();
        let get = |path: &str, token: Option<&str>| {
            let mut r = http.get(format!("{base}{path}"));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            r.send()
        };

        assert_eq!(get("/healthz", None).await.unwrap().status(), 200);
        assert_eq!(get("/readyz", None).await.unwrap().status(), 200);
        let anonymous = get("/v1/alerts", None).await.unwrap();
        assert_eq!(anonymous.status(), 401);
        assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
        assert_eq!(get("/v1/alerts", Some("not-a-token")).await.unwrap().status(), 401);

        let finance = get("/v1/alerts?state=active", Some("fin-token")).await.unwrap().text().await.unwrap();
        let discipline = get("/v1/alerts?state=active", Some("dis-token")).await.unwrap().text().await.unwrap();
        for secret in [REFERRAL, "XS-2021-API1", "received_on", "\"origin\"", "3701002021997777"] {
            assert!(!finance.contains(secret), "finance sees {secret}");
        }
        assert!(discipline.contains(REFERRAL) && discipline.contains("XS-2021-API1"));
        let finance: Vec<Value> = serde_json::from_str(&finance).unwrap();
        let freeze = finance.iter().find(|a| a["rule"] == "referral.freeze_breach").expect("finance gets the redacted breach");
        assert_eq!(freeze["facts"]["projects"], json!([SLOW]));

        // Another agency's confidential alert is not found, like any unknown id.
        let alerts = t.store.alerts().await.unwrap();
        let hidden = alerts.iter().find(|a| a.rule == RuleId::UnknownProject && a.subject.contains("discipline")).unwrap();
        assert_eq!(get(&format!("/v1/alerts/{}", hidden.id), Some("fin-token")).await.unwrap().status(), 404);
        assert_eq!(get(&format!("/v1/alerts/{}", hidden.id), Some("dis-token")).await.unwrap().status(), 200);
        let breach = alerts.iter().find(|a| a.rule == RuleId::FreezeBreach).unwrap();
        assert_eq!(get(&format!("/v1/alerts/{}", breach.id), Some("npc-token")).await.unwrap().status(), 404);
        assert_eq!(get(&format!("/v1/alerts/{}", "0".repeat(64)), Some("npc-token")).await.unwrap().status(), 404);

        // Filters, acknowledgement and an agency's own silence.
        let slow: Vec<Value> = get(&format!("/v1/alerts?rule=execution.slow&project={SLOW}"), Some("fin-token"))
            .await.unwrap().json().await.unwrap();
        assert_eq!(slow.len(), 1);
        // A filter word that names no state or severity is refused, not
        // answered with an empty list that reads as "all clear".
        for query in ["state=bogus", "severity=high"] {
            let r = get(&format!("/v1/alerts?{query}"), Some("fin-token")).await.unwrap();
            assert_eq!(r.status(), 400, "{query}");
        }
        let id = slow[0]["alert_id"].as_str().unwrap().to_owned();
        let acked: Value = http
            .post(format!("{base}/v1/alerts/{id}/ack"))
            .bearer_auth("fin-token")
            .json(&json!({"by": "王科长", "note": "已督办"}))
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(acked["acknowledged"]["by"], "finance:王科长");
        let created = http
            .post(format!("{base}/v1/silences"))
            .bearer_auth("fin-token")
            .json(&json!({"scope": "rule", "value": "funds.idle", "until": "2021-10-30T00:00:00Z", "reason": "年中调整", "by": "王科长"}))
            .send().await.unwrap();
        assert_eq!(created.status(), 201);
        let npc_silences: Vec<Value> = get("/v1/silences", Some("npc-token")).await.unwrap().json().await.unwrap();
        assert!(npc_silences.is_empty(), "npc does not see finance's silence");

        // Adapters: discipline's volumes are for discipline only.
        let fin_adapters: Vec<Value> = get("/v1/adapters", Some("fin-token")).await.unwrap().json().await.unwrap();
        let dis_adapters: Vec<Value> = get("/v1/adapters", Some("dis-token")).await.unwrap().json().await.unwrap();
        let pick = |v: &[Value], name: &str| v.iter().find(|a| a["adapter"] == name).unwrap().clone();
        assert_eq!(pick(&fin_adapters, "discipline")["streams"], Value::Null);
        assert!(pick(&dis_adapters, "discipline")["streams"].is_array());
        assert!(pick(&fin_adapters, "finance")["streams"].is_array());
        assert_eq!(pick(&fin_adapters, "finance")["schedule"], "*/5 * * * *");
        // The workers' state; what went wrong with discipline's is for discipline.
        let worker = |v: &[Value], name: &str| {
            let w = pick(v, name)["worker"].clone();
            (w["consecutive_errors"].clone(), w["last_error"].clone(), w["last_error_at"].clone())
        };
        assert_eq!(
            worker(&fin_adapters, "finance"),
            (json!(1), json!("finance: HTTP 503"), json!("2021-09-30T12:30:00Z"))
        );
        assert_eq!(worker(&fin_adapters, "discipline"), (json!(1), Value::Null, json!("2021-09-30T12:30:00Z")));
        assert_eq!(worker(&dis_adapters, "discipline").1, json!("discipline: HTTP 503"));
        assert_eq!(pick(&fin_adapters, "npc")["worker"], Value::Null, "no npc worker in this process");

        // Metrics agree with the store; confidential alerts are not counted.
        let metrics = get("/metrics", None).await.unwrap().text().await.unwrap();
        let value = |series: &str| -> f64 {
            metrics
                .lines()
                .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
                .unwrap_or_else(|| panic!("{series} missing from\n{metrics}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let counts = t.store.outbox_counts().await.unwrap();
        assert_eq!(value("liankong_outbox_events{state=\"pending\"}"), counts.pending as f64);
        assert_eq!(value("liankong_alerts{rule=\"execution.slow\",severity=\"critical\",state=\"firing\"}"), 1.0);
        assert_eq!(value("liankong_alerts{rule=\"payment.over_quota\",severity=\"critical\",state=\"firing\"}"), 1.0);
        assert!(!metrics.contains("referral.freeze_breach"));
        let runs = t.store.adapter_runs().await.unwrap();
        let finance_run = runs.iter().find(|r| r.adapter == "finance").unwrap();
        assert_eq!(
            value("liankong_adapter_last_success_timestamp_seconds{adapter=\"finance\"}"),
            finance_run.last_success.unwrap().timestamp_millis() as f64 / 1000.0
        );
        assert_eq!(value("liankong_adapter_runs_total{adapter=\"finance\"}"), finance_run.runs as f64);
        let payments = env.sim.data().snapshot().payments.len() as f64;
        assert!(value("liankong_adapter_last_run_records{adapter=\"finance\",outcome=\"fetched\"}") >= payments);
        assert!(metrics.contains("liankong_delivery_latency_seconds_count"));
        assert_eq!(value("liankong_worker_consecutive_errors{worker=\"adapter:finance\"}"), 1.0);
        assert_eq!(value("liankong_worker_errors_total{worker=\"adapter:discipline\"}"), 1.0);
        assert!(!metrics.contains("HTTP 503"), "error texts stay out of the metrics");
        stop_workers.cancel();
        stop.cancel();
        server.await.unwrap().unwrap();
        env.sim.shutdown().await;
    })
    .await;
}

/// A worker that fails once, with `error`, then waits for ever.
struct FailsOnce {
    name: String,
    error: Option<String>,
}

#[async_trait::async_trait]
impl liankong::worker::Worker for FailsOnce {
    type Error = String;

    fn name(&self) -> String {
        self.name.clone()
    }

    async fn work(&mut self) -> Result<liankong::worker::Next, String> {
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(liankong::worker::Next::Idle),
        }
    }

    async fn wait_for_work(&mut self) {
        std::future::pending::<()>().await
    }

    fn throttle(&self, _: u32) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

// ---- the monthly report ----

const RA: &str = "370101";
const RB: &str = "370102";
const RC: &str = "370103";
const RD: &str = "370104";
/// A name that needs escaping in every format.
const RD_NAME: &str = "市机关事务管理局（本级）& <后勤> | \"A\", B";
const PA1: &str = "3701002021000101";
const PA2: &str = "3701002021000102";
const PA_RESERVE: &str = "3701002021000103";
const PA_ZERO: &str = "3701002021000104";
const PA_DELETED: &str = "3701002021000105";
const PB1: &str = "3701002021000201";
const PB2: &str = "3701002021000202";
const PC1: &str = "3701002021000301";
const PD_RESERVE: &str = "3701002021000401";
const REPORT_REFERRAL: &str = "XS-2021-0300";

/// The report's rows as Markdown, by rank.
const REPORT_MD_ROWS: [&str; 4] = [
    "| 370102 | 市卫生健康委员会 | 47.50% | 74.79% | — | 100.00% | 1 | 1 | 0 | 400000.00 | 190000.00 |",
    "| 370103 | 市体育局 | 47.50% | 74.79% | 95.00% | 100.00% | 1 | 0 | 0 | 20000.00 | 9500.00 |",
    "| 370101 | 市教育局 | 46.88% | 74.79% | 65.22% | 80.00% | 3 | 1 | 1 | 1600000.00 | 750000.00 |",
    "| 370104 | 市机关事务管理局（本级）\\& \\<后勤\\> \\| \"A\", B | — | 74.79% | — | 0.00% | — | 0 | 0 | 0.00 | 0.00 |",
];

/// The same rows as CSV fields: undefined values are empty.
const REPORT_CSV_ROWS: [[&str; 11]; 4] = [
    [
        RB,
        "市卫生健康委员会",
        "47.50",
        "74.79",
        "",
        "100.00",
        "1",
        "1",
        "0",
        "400000.00",
        "190000.00",
    ],
    [
        RC,
        "市体育局",
        "47.50",
        "74.79",
        "95.00",
        "100.00",
        "1",
        "0",
        "0",
        "20000.00",
        "9500.00",
    ],
    [
        RA,
        "市教育局",
        "46.88",
        "74.79",
        "65.22",
        "80.00",
        "3",
        "1",
        "1",
        "1600000.00",
        "750000.00",
    ],
    [
        RD, RD_NAME, "", "74.79", "", "0.00", "", "0", "0", "0.00", "0.00",
    ],
];

fn q(w: &mut World, id: &str, code: &str, year: i32, kind: QuotaKind, fen: i64, on: &str) {
    w.add(quota(id, code, year, kind, fen, on));
}

/// Four units as of 30 September 2021 (D), hand-picked so that every term
/// of the shared definitions counts or is left out once.
fn report_world(w: &mut World) {
    use PaymentKind::{Allocation, Expenditure};
    use QuotaKind::{Adjustment, Initial, Reclaim};
    w.add(unit(RA, "市教育局"))
        .add(unit(RB, "市卫生健康委员会"))
        .add(unit(RC, "市体育局"))
        .add(unit(RD, RD_NAME))
        .add(unit("370199", "市已撤销局"));

    // Unit A.
    w.add(project(PA1, RA, ProjectCategory::Basic, true));
    q(w, "QA1-I", PA1, 2021, Initial, 100_000_000, "2021-01-15");
    q(w, "QA1-A", PA1, 2021, Adjustment, 20_000_000, "2021-03-01");
    q(w, "QA1-R", PA1, 2021, Reclaim, 10_000_000, "2021-08-01");
    pay(w, "PA1-A1", PA1, Allocation, 60_000_000, "2021-02-01");
    pay(w, "PA1-A2", PA1, Allocation, 30_000_000, "2021-06-01");
    pay(w, "PA1-E1", PA1, Expenditure, 40_000_000, "2021-03-10");
    pay(w, "PA1-E2", PA1, Expenditure, 15_000_000, "2021-09-30");
    pay(w, "PA1-AFTER", PA1, Expenditure, 7_000_000, "2021-10-01");
    pay(w, "PA1-PREV", PA1, Expenditure, 9_000_000, "2020-12-31");
    pay(w, "PA1-VOID", PA1, Expenditure, 5_000_000, "2021-05-05");
    w.add(project(PA2, RA, ProjectCategory::Special, false));
    q(w, "QA2-I", PA2, 2021, Initial, 50_000_000, "2021-01-15");
    q(w, "QA2-PREV", PA2, 2020, Initial, 99_999_900, "2020-01-15");
    pay(w, "PA2-A1", PA2, Allocation, 25_000_000, "2021-03-01");
    pay(w, "PA2-E1", PA2, Expenditure, 20_000_000, "2021-04-01");
    w.add(project(PA_RESERVE, RA, ProjectCategory::Reserve, false));
    q(
        w,
        "QAR-I",
        PA_RESERVE,
        2021,
        Initial,
        40_000_000,
        "2021-01-15",
    );
    pay(w, "PAR-A1", PA_RESERVE, Allocation, 3_000_000, "2021-05-01");
    pay(
        w,
        "PAR-E1",
        PA_RESERVE,
        Expenditure,
        1_000_000,
        "2021-05-02",
    );
    w.add(project(PA_ZERO, RA, ProjectCategory::Basic, false));
    q(w, "QAZ-I", PA_ZERO, 2021, Initial, 10_000_000, "2021-01-15");
    q(w, "QAZ-R", PA_ZERO, 2021, Reclaim, 10_000_000, "2021-04-01");
    pay(w, "PAZ-E1", PA_ZERO, Expenditure, 2_000_000, "2021-02-01");
    w.add(project(PA_DELETED, RA, ProjectCategory::Basic, false));
    q(
        w,
        "QAD-I",
        PA_DELETED,
        2021,
        Initial,
        30_000_000,
        "2021-01-15",
    );
    pay(
        w,
        "PAD-E1",
        PA_DELETED,
        Expenditure,
        30_000_000,
        "2021-02-01",
    );

    // Unit B: no allocation at all.
    w.add(project(PB1, RB, ProjectCategory::Basic, true));
    q(w, "QB1-I", PB1, 2021, Initial, 30_000_000, "2021-01-15");
    pay(w, "PB1-E1", PB1, Expenditure, 18_000_000, "2021-07-15");
    w.add(project(PB2, RB, ProjectCategory::Basic, false));
    q(w, "QB2-I", PB2, 2021, Initial, 10_000_000, "2021-01-15");
    pay(w, "PB2-E1", PB2, Expenditure, 1_000_000, "2021-06-15");

    // Unit C: as far along as B.
    w.add(project(PC1, RC, ProjectCategory::Basic, false));
    q(w, "QC1-I", PC1, 2021, Initial, 2_000_000, "2021-01-15");
    pay(w, "PC1-A1", PC1, Allocation, 1_000_000, "2021-08-01");
    pay(w, "PC1-E1", PC1, Expenditure, 950_000, "2021-09-01");

    // Unit D: nothing but money not yet assigned to a project.
    w.add(project(PD_RESERVE, RD, ProjectCategory::Reserve, false));
    q(
        w,
        "QDR-I",
        PD_RESERVE,
        2021,
        Initial,
        5_000_000,
        "2021-01-15",
    );
}

#[tokio::test]
async fn report_indicators_ranks_and_confidentiality() {
    use liankong::report::{Format, Ratio, build, render};
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        report_world(&mut w);
        w.write(s).await;
        // Voided (a deletion of its key), a deleted project, a deleted unit.
        w.delete(Collection::Payments, "PA1-VOID")
            .delete(Collection::Projects, PA_DELETED)
            .delete(Collection::Units, "370199");
        // A freeze on C's project, breached by both its payments: a
        // confidential critical alert on unit C.
        w.add(referral(REPORT_REFERRAL, RC, Some(PC1)));
        w.write(s).await;

        let rules = only_rules(&[RuleId::Slow, RuleId::FreezeBreach]);
        let findings = evaluate(s, day("2021-09-30"), &rules).await.unwrap();
        let lifecycle = Lifecycle {
            repeat_interval: chrono::Duration::days(7),
        };
        apply_findings(
            s,
            &findings,
            day("2021-09-30"),
            at("2021-10-01T08:00:00Z"),
            lifecycle,
            &[],
        )
        .await
        .unwrap();
        // The alerts as stored: execution.slow on PA1 (50.00% against 74.79%:
        // 24.79 pp, warning), PA2 (40.00%: 34.79 pp, critical) and PB2
        // (10.00%, critical; PB1 at 60.00% is within 15 pp, PC1 is below the
        // minimum quota), and the confidential freeze breach on unit C.
        let mut open: Vec<(Option<String>, String, String, bool)> = s
            .alerts()
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.state.is_active())
            .map(|a| {
                (
                    a.unit_code,
                    a.rule.to_string(),
                    a.severity.to_string(),
                    a.confidential,
                )
            })
            .collect();
        open.sort();
        let o =
            |u: &str, r: &str, sev: &str, c| (Some(u.to_owned()), r.to_owned(), sev.to_owned(), c);
        assert_eq!(
            open,
            vec![
                o(RA, "execution.slow", "critical", false),
                o(RA, "execution.slow", "warning", false),
                o(RB, "execution.slow", "critical", false),
                o(RC, "referral.freeze_breach", "critical", true),
            ]
        );

        // Any day of September gives the report as of its last day.
        let report = build(s, day("2021-09-14")).await.unwrap();
        assert_eq!(
            (report.year, report.month, report.as_of),
            (2021, 9, day("2021-09-30"))
        );
        // 30 September is day 273 of 365.
        assert_eq!(report.time_progress, Ratio::new(273, 365).unwrap());
        assert_eq!(report.time_progress.percent(), "74.79");

        let codes: Vec<(&str, Option<usize>)> = report
            .units
            .iter()
            .map(|u| (u.unit_code.as_str(), u.rank))
            .collect();
        // B and C tie at 47.50% and share rank 1; A comes third (1, 1, 3); D
        // has no active project, so no progress and no rank; the deleted unit
        // is gone.
        assert_eq!(
            codes,
            vec![(RB, Some(1)), (RC, Some(1)), (RA, Some(3)), (RD, None)]
        );
        let get = |code: &str| report.units.iter().find(|u| u.unit_code == code).unwrap();
        let exact = |r: Option<Ratio>| r.map(|r| (r.num(), r.den(), r.percent()));

        // Unit A. Active: PA1 and PA2 (the reserve, the zero-quota and the
        // deleted project are not).
        //   quota(PA1) = 1,000,000.00 + 200,000.00 − 100,000.00 = 1,100,000.00
        //   quota(PA2) = 500,000.00 (its 2020 quota is another year)
        //   Σ quota = 1,600,000.00
        //   exp(PA1) = 400,000.00 + 150,000.00 (paid on D) = 550,000.00; the
        //     payment after D, the one of 2020 and the voided one are left out
        //   exp(PA2) = 200,000.00 → Σ exp = 750,000.00
        //   alloc = 600,000.00 + 300,000.00 + 250,000.00 = 1,150,000.00
        //   execution progress = 750,000.00 ÷ 1,600,000.00 = 46.875% → 46.88
        //   expenditure rate = 750,000.00 ÷ 1,150,000.00 = 65.2173…% → 65.22
        //   total quota = 1,100,000.00 + 500,000.00 + 400,000.00 (reserve)
        //     + 0.00 (reclaimed to zero) = 2,000,000.00
        //   budget-to-project = 1 − 400,000.00 ÷ 2,000,000.00 = 80.00%
        let a = get(RA);
        assert_eq!(a.unit_name, "市教育局");
        assert_eq!(a.active_projects, 2);
        assert_eq!(
            (
                a.quota,
                a.expenditure,
                a.allocation,
                a.reserve_quota,
                a.total_quota
            ),
            (
                Fen(160_000_000),
                Fen(75_000_000),
                Fen(115_000_000),
                Fen(40_000_000),
                Fen(200_000_000)
            )
        );
        assert_eq!(
            exact(a.execution_progress),
            Some((75_000_000, 160_000_000, "46.88".into()))
        );
        assert_eq!(
            exact(a.expenditure_rate),
            Some((75_000_000, 115_000_000, "65.22".into()))
        );
        assert_eq!(
            exact(a.budget_to_project_rate),
            Some((160_000_000, 200_000_000, "80.00".into()))
        );
        assert_eq!((a.open_alerts.critical, a.open_alerts.warning), (1, 1));

        // Unit B: Σ quota = 300,000.00 + 100,000.00 = 400,000.00;
        //   Σ exp = 180,000.00 + 10,000.00 = 190,000.00 → 47.50%;
        //   no allocation: the expenditure rate is undefined;
        //   no reserve: budget-to-project = 100.00%.
        let b = get(RB);
        assert_eq!(
            (b.quota, b.expenditure, b.allocation),
            (Fen(40_000_000), Fen(19_000_000), Fen(0))
        );
        assert_eq!(
            exact(b.execution_progress),
            Some((19_000_000, 40_000_000, "47.50".into()))
        );
        assert_eq!(b.expenditure_rate, None);
        assert_eq!(
            exact(b.budget_to_project_rate),
            Some((40_000_000, 40_000_000, "100.00".into()))
        );
        assert_eq!((b.open_alerts.critical, b.open_alerts.warning), (1, 0));

        // Unit C: 9,500.00 ÷ 20,000.00 = 47.50% (ties with B exactly);
        //   9,500.00 ÷ 10,000.00 = 95.00%; 100.00%. Its only open alert is
        //   confidential: it counts nothing.
        let c = get(RC);
        assert_eq!(
            exact(c.execution_progress),
            Some((950_000, 2_000_000, "47.50".into()))
        );
        assert_eq!(c.execution_progress, b.execution_progress);
        assert_eq!(
            exact(c.expenditure_rate),
            Some((950_000, 1_000_000, "95.00".into()))
        );
        assert_eq!((c.open_alerts.critical, c.open_alerts.warning), (0, 0));

        // Unit D: its only project is a reserve: no active quota, so no
        //   progress, no expenditure rate, and 1 − 50,000.00 ÷ 50,000.00 = 0.00%.
        let d = get(RD);
        assert_eq!(d.unit_name, RD_NAME);
        assert_eq!(
            (d.active_projects, d.quota, d.reserve_quota, d.total_quota),
            (0, Fen(0), Fen(5_000_000), Fen(5_000_000))
        );
        assert_eq!((d.execution_progress, d.expenditure_rate), (None, None));
        assert_eq!(
            exact(d.budget_to_project_rate),
            Some((0, 5_000_000, "0.00".into()))
        );

        let md = render(&report, Format::Markdown);
        let csv_text = render(&report, Format::Csv);
        let html = render(&report, Format::Html);

        assert!(md.starts_with("# 预算执行月报 2021年9月\n"), "{md}");
        assert!(md.contains("2021-09-30") && md.contains("74.79%"), "{md}");
        for row in REPORT_MD_ROWS {
            assert!(md.contains(row), "no row {row} in\n{md}");
        }

        // The CSV parses back, names and all.
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        assert_eq!(reader.headers().unwrap().len(), 19);
        let records: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        // No action was taken: the action columns are all zero.
        for r in &records {
            assert_eq!(
                r[11..],
                ["0", "0", "0", "0", "0.00", "0.00", "0.00", "0.00"]
            );
        }
        let rows: Vec<Vec<String>> = records.into_iter().map(|r| r[..11].to_vec()).collect();
        assert_eq!(
            rows,
            REPORT_CSV_ROWS
                .map(|r| r.map(String::from).to_vec())
                .to_vec()
        );

        // A standalone page: a chart, nothing fetched, everything escaped.
        assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("<svg") && html.contains("</svg>"));
        for banned in [
            "http://", "https://", "<script", "src=", "href=", "url(", "@import",
        ] {
            assert!(!html.contains(banned), "the page contains {banned}");
        }
        assert!(html.contains("市机关事务管理局（本级）&amp; &lt;后勤&gt; | &quot;A&quot;, B"));
        assert!(!html.contains("<后勤>"));
        assert!(html.contains("序时进度 74.79%") && html.contains("46.88%"));
        for name in ["市教育局", "市卫生健康委员会", "市体育局"] {
            assert!(
                html.contains(&format!(">{name}</text>")),
                "the chart names {name}"
            );
        }

        // Nothing of the confidential alert in any format. The headings of
        // the freeze columns count finance's own freeze actions, not
        // discipline's: they alone may say so.
        let headings = ["本月冻结", "累计冻结", "freezes_month", "freezes_ytd"];
        let strip = |t: &str| headings.iter().fold(t.to_owned(), |t, h| t.replace(h, ""));
        let (md, csv_text, html) = (strip(&md), strip(&csv_text), strip(&html));
        for (format, text) in [("md", &md), ("csv", &csv_text), ("html", &html)] {
            for secret in [
                REPORT_REFERRAL,
                "freeze",
                "referral",
                "冻结",
                "discipline",
                "纪",
            ] {
                assert!(!text.contains(secret), "the {format} report shows {secret}");
            }
        }
    })
    .await;
}

/// A context reuses its last findings only while no record changed and the
/// date is the same: a value changed behind the store's back (no version)
/// is not seen, a record written through the store is, and so is a
/// deletion or another date.
#[tokio::test]
async fn findings_are_reused_only_while_no_record_changed() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        allocate(&mut w, "A1", P1, 100_000_000, "2021-02-01");
        w.write(s).await;
        let mut config = liankong::config::Config::parse("").unwrap();
        config.rules = only(RuleId::OverQuota);
        let ctx = liankong::pipeline::Context::new(
            t.store.clone(),
            std::sync::Arc::new(config),
            std::sync::Arc::new(Vec::new()),
            std::sync::Arc::new(SystemClock),
        );
        let over = |o: EvaluationOutcome| (o.findings, o.firing, o.resolved);
        let as_of = day("2021-06-30");
        let quiet = over(ctx.reconcile(as_of).await.unwrap());
        assert_eq!(quiet, (0, 0, 0), "exactly the quota");
        let generation = s.data_generation().await.unwrap();
        // Over the quota, but written without a version: the generation is
        // the same, so the findings stand.
        t.raw
            .exec("UPDATE finance_payments SET amount = amount + 1 WHERE key = 'A1'")
            .await;
        assert_eq!(s.data_generation().await.unwrap(), generation);
        assert_eq!(over(ctx.reconcile(as_of).await.unwrap()), quiet);
        // Another date is evaluated afresh, and so sees it.
        let other = over(ctx.reconcile(day("2021-07-01")).await.unwrap());
        assert_eq!(other.1, 1, "{other:?}");
        t.raw
            .exec("UPDATE finance_payments SET amount = amount - 1 WHERE key = 'A1'")
            .await;
        // A payment written through the store is a new generation.
        allocate(&mut w, "A2", P1, 1, "2021-02-02");
        w.write(s).await;
        assert!(s.data_generation().await.unwrap() > generation);
        let fired = over(ctx.reconcile(day("2021-07-01")).await.unwrap());
        assert_eq!(fired, (1, 0, 0), "still firing, nothing new");
        assert_eq!(over(ctx.reconcile(as_of).await.unwrap()), (1, 0, 0));
        // So is a deletion.
        w.delete(Collection::Payments, "A2");
        w.write(s).await;
        assert_eq!(over(ctx.reconcile(as_of).await.unwrap()), (0, 0, 1));
    })
    .await;
}

/// The project rules walk finance's projects a slice at a time, so that a
/// province's reconciliation holds a slice, never the whole year. Every
/// project lies in exactly one slice, unknown ones included, and the
/// findings are the planted ones whatever the slice.
#[tokio::test]
async fn findings_are_the_same_whatever_the_project_slice() {
    on_both(|t| async move {
        let env = start(&t).await;
        let expected = liankong::demo::plant_anomalies(env.sim.data());
        env.sim.write_files().unwrap();
        sync_all(&t, &env).await;
        let s = t.store.as_ref();
        let projects = t
            .raw
            .count("SELECT COUNT(*) FROM finance_projects WHERE deleted = FALSE")
            .await as usize;
        assert!(projects > 20, "{projects}");
        let rules = RulesConfig::default();
        let as_of = day("2021-09-30");
        let whole = liankong::reconcile::evaluate_in_slices(s, as_of, &rules, usize::MAX)
            .await
            .unwrap();
        let planted: std::collections::BTreeSet<(String, String)> = expected
            .iter()
            .map(|(r, s)| (r.to_string(), s.to_string()))
            .collect();
        let found: std::collections::BTreeSet<(String, String)> = whole
            .iter()
            .map(|f| (f.rule.to_string(), subject_id(f.subject())))
            .collect();
        assert_eq!(found, planted);
        for slice in [
            1,
            2,
            7,
            projects - 1,
            projects,
            liankong::reconcile::PROJECT_SLICE,
        ] {
            let ranges = s.project_slices(slice).await.unwrap();
            assert_eq!(ranges.len(), projects / slice + 1, "slices of {slice}");
            let sliced = liankong::reconcile::evaluate_in_slices(s, as_of, &rules, slice)
                .await
                .unwrap();
            assert_eq!(sliced, whole, "slices of {slice}");
        }
        env.sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn listing_filters_outside_their_words_are_errors_not_empty_lists() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("store.db").display());
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_liankong"))
            .args([
                "--config",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config/liankong.toml"),
            ])
            .args(args)
            .env("LIANKONG_STORE_URL", &url)
            .output()
            .unwrap()
    };
    let ok = run(&[
        "alerts", "list", "--agency", "finance", "--state", "resolved",
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    for (args, wanted) in [
        (
            &["alerts", "list", "--agency", "finance", "--state", "bogus"][..],
            "invalid value 'bogus' for '--state <STATE>'\n  [possible values: firing, escalated, resolved, active]",
        ),
        (
            &[
                "alerts",
                "list",
                "--agency",
                "finance",
                "--severity",
                "high",
            ][..],
            "invalid value 'high' for '--severity <SEVERITY>'\n  [possible values: warning, critical]",
        ),
        (
            &["deliveries", "list", "--state", "retrying"][..],
            "invalid value 'retrying' for '--state <STATE>'\n  [possible values: pending, delivered, dead]",
        ),
        (
            &[
                "alerts",
                "list",
                "--agency",
                "finance",
                "--rule",
                "payment.overquota",
            ][..],
            "liankong: unknown rule \"payment.overquota\"",
        ),
    ] {
        let out = run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(wanted), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: no listing");
    }
    // A silence from the command line is checked as the API checks one.
    let silence = |until: &str, reason: &str| {
        run(&[
            "alerts",
            "silence",
            "--rule",
            "funds.idle",
            "--until",
            until,
            "--reason",
            reason,
            "--by",
            "运维",
        ])
    };
    let out = silence("2099-01-01", " ");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "liankong: a silence needs a reason"
    );
    let out = silence("2000-01-01", "年中调整");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "liankong: until is in the past"
    );
}

// ---- actions through the API, the CLI and webhooks ----

const P3: &str = "3701002021000003";
const SECRETS: [(Agency, &str); 5] = [
    (Npc, "whsec_bnBjLW5wYy1ucGMtbnBjLW5wYy1ucGMtbnBjIQ=="),
    (Finance, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    (Audit, "whsec_YXVkaXQtYXVkaXQtYXVkaXQtYXVkaXQtYXU="),
    (Discipline, "whsec_ZGlzY2lwbGluZS1kaXNjaXBsaW5lLWRpc2M="),
    (Orgdept, "whsec_b3JnZGVwdC1vcmdkZXB0LW9yZ2RlcHQtb3I="),
];

/// P1 and P2 of U1 with 1,000,000.00 yuan each, 200,000.00 spent on P1 in
/// March; P2 over its quota (an alert for finance, npc and audit);
/// discipline's referral freezing P1 from 10 May and a payment after it (a
/// confidential alert); a referral naming a project finance never sent (an
/// alert for discipline alone).
async fn acting_world(t: &TestStore) {
    let mut w = World::default();
    funded(&mut w, P1, 100_000_000);
    funded(&mut w, P2, 100_000_000);
    funded(&mut w, P3, 100_000_000);
    spend(&mut w, "E1", P1, 20_000_000, "2021-03-01");
    spend(&mut w, "E2", P1, 1_000_000, "2021-05-20");
    allocate(&mut w, "A2", P2, 100_000_001, "2021-04-01");
    w.add(referral("XS-1", U1, Some(P1)));
    w.add(referral("XS-2", U1, Some("3701002021997777")));
    w.write(t.store.as_ref()).await;
}

fn action_tokens() -> String {
    let mut t = String::from("[api]\nlisten = \"127.0.0.1:0\"\n");
    for a in Agency::ALL {
        t.push_str(&format!(
            "[[api.tokens]]\nname = \"{a}-clerk\"\nagency = \"{a}\"\nsha256 = \"{}\"\n",
            liankong::api::token_hash(&format!("{a}-token"))
        ));
    }
    t
}

#[tokio::test]
async fn actions_through_the_api_reach_exactly_their_agencies_signed() {
    on_both(|t| async move {
        acting_world(&t).await;
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
        apply_at(&t, &[], "2021-06-30", at("2021-06-30T10:00:00Z")).await;
        let alerts = t.store.alerts().await.unwrap();
        let over = alerts.iter().find(|a| a.rule == RuleId::OverQuota).unwrap().id.clone();
        let breach = alerts.iter().find(|a| a.rule == RuleId::FreezeBreach).unwrap().id.clone();
        let unknown = alerts.iter().find(|a| a.rule == RuleId::UnknownProject).unwrap().id.clone();

        let config = liankong::config::Config::parse(&action_tokens()).unwrap();
        let running = liankong::api::RunningConfig::new(std::sync::Arc::new(config), &[])
            .with_subscribers(std::sync::Arc::new(subs.clone()));
        let (_tx, rx) = tokio::sync::watch::channel(std::sync::Arc::new(running));
        let clock = ManualClock::new("2021-07-01T02:00:00Z");
        let state = liankong::api::ApiState {
            store: t.store.clone(),
            config: rx,
            metrics: Default::default(),
            clock: clock.clone(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(liankong::api::serve(listener, state, stop.clone()));
        let http = reqwest::Client::new();
        let post = |agency: Agency, body: Value, key: Option<&str>| {
            let mut r = http
                .post(format!("{base}/v1/actions"))
                .bearer_auth(format!("{agency}-token"))
                .json(&body);
            if let Some(k) = key {
                r = r.header("Idempotency-Key", k);
            }
            async move {
                let r = r.send().await.unwrap();
                let replayed = r.headers().contains_key("idempotent-replayed");
                (r.status().as_u16(), r.json::<Value>().await.unwrap(), replayed)
            }
        };
        let count = || async { t.store.actions(None).await.unwrap().len() };

        // A warning by audit about the over-quota alert of P2.
        let warn = json!({"kind": "warn", "by": "李审计", "project": P2, "year": 2021, "alert": over,
                          "deadline": "2021-07-31", "reason": "超指标支付，限期说明"});
        let (status, w, _) = post(Audit, warn.clone(), None).await;
        assert_eq!(status, 201, "{w}");
        assert_eq!(
            (&w["kind"], &w["agency"], &w["token"], &w["by"], &w["taken_on"], &w["alert_id"], &w["deadline"]),
            (&json!("warn"), &json!("audit"), &json!("audit-clerk"), &json!("李审计"), &json!("2021-07-01"),
             &json!(over), &json!("2021-07-31"))
        );
        // The same 404 for a confidential alert, one the caller does not
        // receive, and no alert at all; only the id given differs.
        let not_found = |body: &Value, id: &str| body.to_string().replace(id, "ID");
        let mut answers = Vec::new();
        for (agency, id) in [(Audit, breach.as_str()), (Finance, breach.as_str()), (Finance, unknown.as_str()),
                             (Orgdept, over.as_str()), (Npc, "0000")] {
            let mut b = warn.clone();
            b["alert"] = json!(id);
            let (status, body, _) = post(agency, b, None).await;
            assert_eq!(status, 404, "{agency} {body}");
            answers.push(not_found(&body, id));
        }
        answers.dedup();
        assert_eq!(answers, vec![r#"{"error":"no alert ID","figures":{"alert":"ID"},"reason":"no_such_alert"}"#]);
        let mut late = warn.clone();
        late["deadline"] = json!("2021-07-01");
        assert_eq!(post(Npc, late, None).await.1["reason"], "deadline_not_after_taken");
        let (status, body, _) = post(Discipline, warn.clone(), None).await;
        assert_eq!((status, body["reason"].clone()), (403, json!("kind_not_allowed")));

        // finance freezes P1 from today, lifts it on the 10th, reclaims,
        // revives; a double freeze is refused.
        let freeze = json!({"kind": "freeze", "by": "王科长", "project": P1, "year": 2021, "reason": "线索核查"});
        let (status, f, _) = post(Finance, freeze.clone(), None).await;
        assert_eq!((status, &f["effective_on"]), (201, &json!("2021-07-01")));
        let (status, body, _) = post(Finance, freeze, None).await;
        assert_eq!((status, &body["reason"]), (409, &json!("already_frozen")));
        let (status, u, _) = post(Finance, json!({"kind": "unfreeze", "by": "王科长", "project": P1, "year": 2021,
            "effective_on": "2021-07-10", "reason": "核查完毕"}), None).await;
        assert_eq!(status, 201, "{u}");
        let reclaim = json!({"kind": "reclaim", "by": "王科长", "project": P1, "year": 2021, "amount": "100000.00",
                             "reason": "收回闲置资金"});
        let (status, r, replayed) = post(Finance, reclaim.clone(), Some("click-1")).await;
        assert_eq!((status, replayed), (201, false));
        assert_eq!(r["amount"], "100000.00");
        // A double click: the first answer, nothing recorded.
        let before = count().await;
        let (status, again, replayed) = post(Finance, reclaim.clone(), Some("click-1")).await;
        assert_eq!((status, replayed, &again), (201, true, &r));
        assert_eq!(count().await, before);
        let mut other = reclaim.clone();
        other["amount"] = json!("1.00");
        let (status, body, _) = post(Finance, other.clone(), Some("click-1")).await;
        assert_eq!((status, &body["reason"]), (422, &json!("idempotency_key_reused")));
        // The key is finance's: npc's own key of that name is another.
        assert_eq!(post(Npc, other.clone(), Some("click-1")).await.0, 403);
        // After 24 hours the key records anew.
        clock.advance(chrono::Duration::hours(24) + chrono::Duration::seconds(1));
        let (status, r2, replayed) = post(Finance, other, Some("click-1")).await;
        assert_eq!((status, replayed), (201, false));
        assert_ne!(r2["action_id"], r["action_id"]);
        let mut too_much = reclaim.clone();
        too_much["amount"] = json!("700000.00");
        let (status, body, _) = post(Finance, too_much, None).await;
        assert_eq!((status, &body["reason"]), (422, &json!("reclaim_above_balance")));
        assert_eq!(body["figures"]["balance"], "689999.00");
        assert!(body["error"].as_str().unwrap().contains("689999.00"), "{body}");
        let (status, v, _) = post(Finance, json!({"kind": "revive", "by": "王科长", "project": P3, "year": 2021,
            "amount": "60000.00", "from": [r["action_id"]], "reason": "急需"}), None).await;
        assert_eq!(status, 201, "{v}");
        assert_eq!(v["from"], json!([r["action_id"]]));
        let (status, x, _) = post(Audit, json!({"kind": "withdraw", "by": "李审计", "action": w["action_id"],
            "reason": "误发"}), None).await;
        assert_eq!((status, &x["withdraws"], &x["withdrawn_kind"]), (201, &w["action_id"], &json!("warn")));
        let (status, body, _) = post(Finance, json!({"kind": "freeze", "by": "王", "project": P1, "year": 2021,
            "amount": "1.00", "reason": "x"}), None).await;
        assert_eq!((status, &body["reason"]), (422, &json!("field_not_for_kind")));
        let (status, body, _) = post(Finance, json!({"kind": "freeze", "amount": 1}), None).await;
        assert_eq!((status, &body["reason"]), (422, &json!("not_an_action")));
        assert_eq!(count().await, 7);

        // Each agency lists what it may see.
        let list = |agency: Agency, query: &str| {
            let r = http.get(format!("{base}/v1/actions{query}")).bearer_auth(format!("{agency}-token")).send();
            async move { r.await.unwrap().json::<Vec<Value>>().await.unwrap() }
        };
        let kinds = |v: &[Value]| v.iter().map(|a| a["kind"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
        assert_eq!(kinds(&list(Discipline, "").await), ["freeze", "unfreeze"]);
        assert_eq!(kinds(&list(Orgdept, "").await), ["warn", "withdraw"]);
        assert_eq!(kinds(&list(Audit, "").await), ["warn", "freeze", "unfreeze", "reclaim", "reclaim", "withdraw"]);
        assert_eq!(kinds(&list(Finance, &format!("?kind=reclaim&project={P1}&year=2021")).await), ["reclaim", "reclaim"]);
        assert!(list(Finance, "?year=2022").await.is_empty());
        assert_eq!(list(Audit, "").await[0]["withdrawn_by"]["action_id"], x["action_id"]);
        // The alert about P2 shows the warning (withdrawn) to finance.
        let shown: Value = http.get(format!("{base}/v1/alerts/{over}")).bearer_auth("finance-token")
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(shown["actions"][0]["action_id"], w["action_id"]);
        assert_eq!(shown["actions"][0]["withdrawn_by"]["action_id"], x["action_id"]);

        // Every event: signed, to exactly the agencies of RULES.md, each
        // subscriber once.
        let deliverer = liankong::deliver::Deliverer::new(subs.clone(), &delivery_config()).unwrap();
        // A withdrawal goes after the action it withdraws: a second round.
        let mut delivered = Vec::new();
        loop {
            let stats = deliverer.deliver_due(t.store.as_ref(), clock.as_ref()).await.unwrap();
            if stats.attempted == 0 {
                break;
            }
            delivered.push(stats.delivered);
        }
        assert_eq!(delivered, vec![4 + 4 + 4 + 3 + 3 + 2, 4]);
        let now = liankong::clock::Clock::now(clock.as_ref());
        let id = |v: &Value| v["action_id"].as_str().unwrap().to_owned();
        let expect: Vec<(String, &str, Vec<Agency>)> = vec![
            (id(&w), "action.warn", vec![Npc, Finance, Audit, Orgdept]),
            (id(&f), "action.freeze", vec![Npc, Finance, Audit, Discipline]),
            (id(&u), "action.unfreeze", vec![Npc, Finance, Audit, Discipline]),
            (id(&r), "action.reclaim", vec![Npc, Finance, Audit]),
            (id(&r2), "action.reclaim", vec![Npc, Finance, Audit]),
            (id(&v), "action.revive", vec![Npc, Finance]),
            (id(&x), "action.withdraw", vec![Npc, Finance, Audit, Orgdept]),
        ];
        for (action, event_type, agencies) in expect {
            let mut reached = Vec::new();
            for (agency, secret, receiver) in &receivers {
                let got: Vec<Received> = receiver.received().into_iter()
                    .filter(|m| m.body.contains(&format!("\"action_id\":\"{action}\""))).collect();
                for m in &got {
                    verify_webhook(secret, m, now).unwrap();
                    let body: Value = serde_json::from_str(&m.body).unwrap();
                    assert_eq!(body["type"], event_type);
                    assert_eq!(body["data"]["action_id"], action.as_str());
                }
                if !got.is_empty() {
                    assert_eq!(got.len(), 1, "{agency} got {action} once");
                    reached.push(*agency);
                }
            }
            assert_eq!(reached, agencies, "{event_type} {action}");
        }
        // Nothing of discipline's reached anyone else through actions.
        for (agency, _, receiver) in &receivers {
            if *agency != Discipline {
                for m in receiver.received() {
                    assert!(!m.body.contains("XS-"), "{agency}: {}", m.body);
                }
            }
        }
        stop.cancel();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test]
async fn every_kind_is_taken_and_refused_through_the_cli() {
    on_both(|t| async move {
        acting_world(&t).await;
        apply_at(&t, &[], "2021-06-30", at("2021-06-30T10:00:00Z")).await;
        let alerts = t.store.alerts().await.unwrap();
        let over = alerts.iter().find(|a| a.rule == RuleId::OverQuota).unwrap().id.clone();
        let breach = alerts.iter().find(|a| a.rule == RuleId::FreezeBreach).unwrap().id.clone();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("liankong.toml");
        let receiver = Receiver::start().await;
        std::fs::write(
            &config,
            format!("[subscribers.fin]\nagency = \"finance\"\nurl = \"{}\"\nsecrets = [\"env:LK_WHSEC\"]\n", receiver.url),
        )
        .unwrap();
        let run = |args: Vec<String>| {
            let config = config.clone();
            let url = t.url.expose().to_owned();
            async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = liankong(&config, &url, &args).await;
                (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(),
                 String::from_utf8_lossy(&out.stderr).into_owned())
            }
        };
        let args = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<String>>();
        let recorded = |(code, stdout, stderr): (Option<i32>, String, String)| {
            assert_eq!(code, Some(0), "{stdout}{stderr}");
            let first = stdout.lines().next().unwrap().to_owned();
            let id = first.strip_prefix("action ").and_then(|l| l.strip_suffix(" recorded"))
                .unwrap_or_else(|| panic!("first line {first:?}")).to_owned();
            assert!(id.starts_with("act_"), "{first}");
            id
        };
        let taken = " --by 王科长 --year 2021 --taken-on 2021-07-01 --reason 测试";
        let w = recorded(run(args(&format!(
            "act warn --agency npc --project {P2} --alert {over} --deadline 2021-07-31{taken}"))).await);
        let f = recorded(run(args(&format!("act freeze --agency finance --project {P1}{taken}"))).await);
        recorded(run(args(&format!(
            "act unfreeze --agency finance --project {P1} --effective-on 2021-07-05{taken}"))).await);
        let r = recorded(run(args(&format!("act reclaim --agency finance --project {P1} --amount 1000.00{taken}"))).await);
        let r2 = recorded(run(args(&format!("act reclaim --agency finance --project {P2} --amount 500.00{taken}"))).await);
        recorded(run(args(&format!(
            "act revive --agency finance --project {P3} --amount 1200.00 --from {r},{r2}{taken}"))).await);
        recorded(run(args(&format!("act withdraw --agency finance --action {f} --by 王科长 --taken-on 2021-07-02 --reason 误操作"))).await);

        for (command, status_reason) in [
            (format!("act reclaim --agency finance --project {P1} --amount 790000.00{taken}"), "422 reclaim_above_balance"),
            (format!("act revive --agency finance --project {P3} --amount 300.01 --from {r},{r2}{taken}"), "422 revive_above_held"),
            (format!("act freeze --agency npc --project {P1}{taken}"), "403 kind_not_allowed"),
            (format!("act warn --agency finance --project {P1} --alert {breach} --deadline 2021-07-31{taken}"), "404 no_such_alert"),
            (format!("act warn --agency npc --project {P2} --alert {over} --deadline 2021-06-30{taken}"), "422 deadline_not_after_taken"),
            (format!("act unfreeze --agency finance --project {P3}{taken}"), "409 not_frozen"),
            (format!("act withdraw --agency orgdept --action {f} --by 王 --reason x"), "404 no_such_action"),
            (format!("act withdraw --agency npc --action {f} --by 王 --reason x"), "403 not_your_action"),
            (format!("act withdraw --agency finance --action {f} --by 王 --reason x"), "409 already_withdrawn"),
            (format!("act freeze --agency finance --project 3701002021999999{taken}"), "422 unknown_project"),
            (format!("act freeze --agency finance --project {P3} --by 王 --year 2021 --taken-on 2099-01-01 --reason x"), "422 taken_in_future"),
        ] {
            let (code, stdout, stderr) = run(args(&command)).await;
            assert_eq!(code, Some(1), "{command}: {stdout}{stderr}");
            assert!(stderr.contains(&format!("liankong: refused ({status_reason}): ")), "{command}: {stderr}");
            assert!(stdout.is_empty(), "{stdout}");
        }
        assert_eq!(t.store.actions(None).await.unwrap().len(), 7);
        let (code, stdout, _) = run(args("actions list --agency orgdept")).await;
        assert_eq!(code, Some(0));
        let listed: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0]["action_id"].as_str(), listed[0]["token"].as_str()), (Some(w.as_str()), Some("cli")));
        // The finance subscriber's events were queued with each action.
        let finance_events = t.raw.count("SELECT COUNT(*) FROM outbox WHERE event_type LIKE 'action.%'").await;
        assert_eq!(finance_events, 7);
    })
    .await;
}

// ---- the rules that follow actions through ----

fn freeze_on(project: &str, taken: &str, effective: &str) -> ActionRequest {
    let mut r = ask(ActionKind::Freeze, project, taken);
    r.effective_on = Some(day(effective));
    r
}

#[tokio::test]
async fn action_freeze_breach() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        spend(&mut w, "E-BEFORE", P1, 100_000, "2021-06-09");
        spend(&mut w, "E-IN", P1, 500_000, "2021-06-10");
        allocate(&mut w, "A-LATER", P1, 100_000, "2021-06-20");
        w.write(s).await;
        let f = act(s, Finance, &freeze_on(P1, "2021-06-01", "2021-06-10"), "2021-06-01T02:00:00Z").await;

        // The day before effective_on is not a breach; a payment dated after D is not seen.
        let fs = eval(&t, "2021-06-15", RuleId::ActionFreezeBreach).await;
        let found = one(&fs);
        assert_eq!(judged(found), (Severity::Critical, vec![Finance, Npc, Audit, Discipline]));
        assert_eq!(found.view.subject, json!({"rule": "action.freeze_breach", "action": f}));
        assert_eq!(
            facts(found),
            &json!({"action_id": f, "project": P1, "year": 2021, "taken_on": "2021-06-01",
                    "effective_on": "2021-06-10", "frozen_until": null,
                    "payments": [{"payment_id": "E-IN", "kind": "expenditure", "amount": "5000.00", "paid_on": "2021-06-10"}],
                    "payment_count": 1, "total": "5000.00", "as_of": "2021-06-15"})
        );
        assert_eq!(found.view.sources[0], liankong::reconcile::SourceRef::new(Source::Liankong, "actions", &f));
        assert!(eval(&t, "2021-06-09", RuleId::ActionFreezeBreach).await.is_empty());
        assert_eq!(facts(one(&eval(&t, "2021-06-30", RuleId::ActionFreezeBreach).await))["total"], "6000.00");

        // Lifted from the 20th: the allocation of that day is no breach.
        let mut lift = ask(ActionKind::Unfreeze, P1, "2021-06-15");
        lift.effective_on = Some(day("2021-06-20"));
        act(s, Finance, &lift, "2021-06-15T02:00:00Z").await;
        let found = eval(&t, "2021-06-30", RuleId::ActionFreezeBreach).await;
        assert_eq!((facts(one(&found))["total"].clone(), facts(one(&found))["frozen_until"].clone()),
                   (json!("5000.00"), json!("2021-06-19")));
        // As of before the unfreeze was taken, the window was still open.
        assert_eq!(facts(one(&eval(&t, "2021-06-14", RuleId::ActionFreezeBreach).await))["frozen_until"], Value::Null);

        // The alert fires; the breaching payment voided, it resolves.
        cycle(&t, RuleId::ActionFreezeBreach, "2021-06-30", "2021-06-30T10:00:00Z").await;
        assert_eq!(alerts_of(&t, RuleId::ActionFreezeBreach).await, vec![(AlertState::Firing, Severity::Critical, 1)]);
        w.delete(Collection::Payments, "E-IN");
        w.write(s).await;
        let o = cycle(&t, RuleId::ActionFreezeBreach, "2021-06-30", "2021-07-01T10:00:00Z").await;
        assert_eq!(o.resolved, 1);

        // A withdrawn freeze makes later payments no breaches, from the
        // withdrawal's day on.
        spend(&mut w, "E-AGAIN", P1, 200_000, "2021-06-12");
        w.write(s).await;
        assert_eq!(eval(&t, "2021-06-30", RuleId::ActionFreezeBreach).await.len(), 1);
        act(s, Finance, &ask_withdraw(&f, "2021-07-01"), "2021-07-01T02:00:00Z").await;
        assert!(eval(&t, "2021-07-01", RuleId::ActionFreezeBreach).await.is_empty());
        assert_eq!(eval(&t, "2021-06-30", RuleId::ActionFreezeBreach).await.len(), 1, "a replay before the withdrawal");
    })
    .await;
}

#[tokio::test]
async fn action_reclaim_unapplied() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        // A reclaim row from before the action is not its application.
        w.add(quota("Q-OLD", P1, 2021, QuotaKind::Reclaim, 10_000_000, "2021-05-31"));
        w.write(s).await;
        let mut r = ask(ActionKind::Reclaim, P1, "2021-06-01");
        r.amount = Some("100000.00".into());
        let id = act(s, Finance, &r, "2021-06-01T02:00:00Z").await;

        assert!(eval(&t, "2021-06-16", RuleId::ReclaimUnapplied).await.is_empty(), "apply_days not yet over");
        let fs = eval(&t, "2021-06-17", RuleId::ReclaimUnapplied).await;
        let found = one(&fs);
        assert_eq!(judged(found), (Severity::Warning, vec![Finance, Npc]));
        assert_eq!(found.view.subject, json!({"rule": "action.reclaim_unapplied", "action": id}));
        assert_eq!(
            facts(found),
            &json!({"action_id": id, "kind": "reclaim", "project": P1, "year": 2021, "taken_on": "2021-06-01",
                    "amount": "100000.00", "cumulative_due": "100000.00", "shown": "0.00",
                    "apply_days": 15, "as_of": "2021-06-17"})
        );
        cycle(&t, RuleId::ReclaimUnapplied, "2021-06-17", "2021-06-17T10:00:00Z").await;
        // Finance's reclaim row lands on the 18th: applied, resolved.
        w.add(quota("Q-R", P1, 2021, QuotaKind::Reclaim, 10_000_000, "2021-06-18"));
        w.write(s).await;
        assert!(eval(&t, "2021-06-20", RuleId::ReclaimUnapplied).await.is_empty());
        assert_eq!(eval(&t, "2021-06-17", RuleId::ReclaimUnapplied).await.len(), 1, "a replay sees the 17th");
        let o = cycle(&t, RuleId::ReclaimUnapplied, "2021-06-20", "2021-06-20T10:00:00Z").await;
        assert_eq!(o.resolved, 1);
        // A second reclaim beyond what finance shows: only it is unapplied.
        r.amount = Some("50000.00".into());
        r.taken_on = Some(day("2021-06-20"));
        let second = act(s, Finance, &r, "2021-06-20T02:00:00Z").await;
        let found = eval(&t, "2021-07-06", RuleId::ReclaimUnapplied).await;
        assert_eq!(facts(one(&found))["action_id"], second.as_str());
        assert_eq!((facts(one(&found))["cumulative_due"].clone(), facts(one(&found))["shown"].clone()),
                   (json!("150000.00"), json!("100000.00")));
    })
    .await;
}

#[tokio::test]
async fn action_revive_unapplied() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        funded(&mut w, P1, 100_000_000);
        funded(&mut w, P2, 100_000_000);
        w.write(s).await;
        let mut r = ask(ActionKind::Reclaim, P1, "2021-06-01");
        r.amount = Some("100000.00".into());
        let reclaim = act(s, Finance, &r, "2021-06-01T02:00:00Z").await;
        let mut v = ask(ActionKind::Revive, P2, "2021-06-01");
        v.amount = Some("50000.00".into());
        v.from = Some(vec![reclaim.clone()]);
        let id = act(s, Finance, &v, "2021-06-01T02:00:01Z").await;
        // A negative adjustment is not a revive's application.
        w.add(quota("Q-NEG", P2, 2021, QuotaKind::Adjustment, -5_000_000, "2021-06-05"));
        w.write(s).await;

        assert!(eval(&t, "2021-06-16", RuleId::ReviveUnapplied).await.is_empty());
        let fs = eval(&t, "2021-06-17", RuleId::ReviveUnapplied).await;
        let found = one(&fs);
        assert_eq!(judged(found), (Severity::Warning, vec![Finance, Npc]));
        assert_eq!(
            facts(found),
            &json!({"action_id": id, "kind": "revive", "project": P2, "year": 2021, "taken_on": "2021-06-01",
                    "amount": "50000.00", "cumulative_due": "50000.00", "shown": "0.00",
                    "apply_days": 15, "as_of": "2021-06-17"})
        );
        w.add(quota("Q-ADJ", P2, 2021, QuotaKind::Adjustment, 5_000_000, "2021-06-10"));
        w.write(s).await;
        assert!(eval(&t, "2021-06-17", RuleId::ReviveUnapplied).await.is_empty());
        // The reclaim it drew on is still unapplied: that rule's own alert.
        assert_eq!(eval(&t, "2021-06-17", RuleId::ReclaimUnapplied).await.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn action_warn_unanswered() {
    on_both(|t| async move {
        let s = t.store.as_ref();
        let mut w = World::default();
        funded(&mut w, P2, 100_000_000);
        allocate(&mut w, "A2", P2, 100_000_001, "2021-04-01");
        w.write(s).await;
        apply_at(&t, &[], "2021-06-30", at("2021-06-30T10:00:00Z")).await;
        let over = t.store.alerts().await.unwrap().into_iter().find(|a| a.rule == RuleId::OverQuota).unwrap();
        let mut warn = ask(ActionKind::Warn, P2, "2021-07-01");
        warn.alert = Some(over.id.clone());
        warn.deadline = Some(day("2021-07-10"));
        let id = act(s, Audit, &warn, "2021-07-01T02:00:00Z").await;

        assert!(eval(&t, "2021-07-10", RuleId::WarnUnanswered).await.is_empty(), "the day of the deadline");
        let fs = eval(&t, "2021-07-11", RuleId::WarnUnanswered).await;
        let found = one(&fs);
        assert_eq!(judged(found), (Severity::Warning, vec![Finance, Audit, Orgdept]));
        assert_eq!(found.view.subject, json!({"rule": "action.warn_unanswered", "action": id}));
        assert_eq!(
            facts(found),
            &json!({"action_id": id, "agency": "audit", "project": P2, "year": 2021, "taken_on": "2021-07-01",
                    "deadline": "2021-07-10", "days_overdue": 1, "alert_id": over.id,
                    "alert_rule": "payment.over_quota", "as_of": "2021-07-11"})
        );
        assert_eq!(one(&eval(&t, "2021-08-09", RuleId::WarnUnanswered).await).severity, Severity::Warning);
        assert_eq!(one(&eval(&t, "2021-08-10", RuleId::WarnUnanswered).await).severity, Severity::Critical);
        // The alert about P2 shows the warning taken on it; the warning
        // alone changed nothing else of it.
        let over_now = eval(&t, "2021-07-11", RuleId::OverQuota).await;
        assert_eq!(facts(one(&over_now))["actions"][0]["action_id"], id.as_str());
        assert_eq!(facts(one(&over_now))["excess"], "0.01");
        // The unit answers: the excess payment is voided, the alert stops
        // firing, the warning is answered.
        w.delete(Collection::Payments, "A2");
        w.write(s).await;
        assert!(eval(&t, "2021-07-11", RuleId::WarnUnanswered).await.is_empty());
        // Its alert resolved, a new warning about it is a conflict.
        cycle(&t, RuleId::OverQuota, "2021-07-11", "2021-07-11T10:00:00Z").await;
        warn.taken_on = Some(day("2021-07-11"));
        warn.deadline = Some(day("2021-07-20"));
        let (status, reason, figures) = refused(s, Audit, &warn, "2021-07-11T10:00:00Z").await;
        assert_eq!((status, reason, figures["state"].clone()), (409, "alert_not_firing", json!("resolved")));
    })
    .await;
}

#[tokio::test]
async fn the_report_counts_each_unit_s_actions_and_the_money_put_back_to_use() {
    use liankong::report::{Format, build, render};
    on_both(|t| async move {
        let s = t.store.as_ref();
        const U2: &str = "370102";
        let mut w = World::default();
        w.add(unit(U1, "市教育局")).add(unit(U2, "市卫健委"));
        funded(&mut w, P1, 100_000_000);
        funded(&mut w, P3, 100_000_000);
        allocate(&mut w, "A3", P3, 100_000_001, "2021-04-01");
        w.add(project(P2, U2, ProjectCategory::Basic, false))
            .add(quota(
                "Q-P2",
                P2,
                2021,
                QuotaKind::Initial,
                100_000_000,
                "2021-01-15",
            ))
            .add(quota(
                "Q-ADJ",
                P2,
                2021,
                QuotaKind::Adjustment,
                10_000_000,
                "2021-09-20",
            ));
        w.write(s).await;
        apply_at(&t, &[], "2021-08-31", at("2021-08-31T10:00:00Z")).await;
        let over = t
            .store
            .alerts()
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.rule == RuleId::OverQuota)
            .unwrap();

        let mut r = ask(ActionKind::Reclaim, P1, "2021-08-10");
        r.amount = Some("100000.00".into());
        let r1 = act(s, Finance, &r, "2021-09-10T02:00:00Z").await;
        r.amount = Some("50000.00".into());
        r.taken_on = Some(day("2021-09-02"));
        let r2 = act(s, Finance, &r, "2021-09-10T02:00:01Z").await;
        act(
            s,
            Finance,
            &freeze_on(P1, "2021-09-05", "2021-09-05"),
            "2021-09-10T02:00:02Z",
        )
        .await;
        let mistaken = act(
            s,
            Finance,
            &freeze_on(P2, "2021-09-05", "2021-09-05"),
            "2021-09-10T02:00:03Z",
        )
        .await;
        act(
            s,
            Finance,
            &ask_withdraw(&mistaken, "2021-09-06"),
            "2021-09-10T02:00:04Z",
        )
        .await;
        let mut v = ask(ActionKind::Revive, P2, "2021-09-08");
        v.amount = Some("120000.00".into());
        v.from = Some(vec![r1, r2]);
        act(s, Finance, &v, "2021-09-10T02:00:05Z").await;
        let mut warn = ask(ActionKind::Warn, P3, "2021-09-09");
        warn.alert = Some(over.id.clone());
        warn.deadline = Some(day("2021-09-30"));
        act(s, Npc, &warn, "2021-09-10T02:00:06Z").await;

        let september = build(s, day("2021-09-01")).await.unwrap();
        let of = |code: &str| {
            september
                .units
                .iter()
                .find(|u| u.unit_code == code)
                .unwrap()
                .clone()
        };
        let counts =
            |c: &liankong::report::ActionCounts| (c.warnings, c.freezes, c.reclaimed, c.revived);
        assert_eq!(
            counts(&of(U1).month_actions),
            (1, 1, Fen(5_000_000), Fen(0))
        );
        assert_eq!(
            counts(&of(U1).year_actions),
            (1, 1, Fen(15_000_000), Fen(0))
        );
        assert_eq!(
            counts(&of(U2).month_actions),
            (0, 0, Fen(0), Fen(12_000_000)),
            "the withdrawn freeze counts nowhere"
        );
        assert_eq!(
            (september.revived, september.revived_applied),
            (Fen(12_000_000), Fen(10_000_000))
        );
        let md = render(&september, Format::Markdown);
        assert!(
            md.contains("本年度盘活（复活）资金：120000.00元，财政指标已落实100000.00元。"),
            "{md}"
        );
        let csv = render(&september, Format::Csv);
        let mut rows = csv::Reader::from_reader(csv.as_bytes());
        let headers: Vec<String> = rows.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(
            &headers[11..],
            [
                "warnings_month",
                "warnings_ytd",
                "freezes_month",
                "freezes_ytd",
                "reclaimed_month_yuan",
                "reclaimed_ytd_yuan",
                "revived_month_yuan",
                "revived_ytd_yuan"
            ]
        );
        let u1 = rows
            .records()
            .map(Result::unwrap)
            .find(|r| &r[0] == U1)
            .unwrap();
        assert_eq!(
            u1.iter().skip(11).collect::<Vec<_>>(),
            ["1", "1", "1", "1", "50000.00", "150000.00", "0.00", "0.00"]
        );
        // August: only the first reclaim; none of September's actions.
        let august = build(s, day("2021-08-01")).await.unwrap();
        let u1 = august.units.iter().find(|u| u.unit_code == U1).unwrap();
        assert_eq!(counts(&u1.month_actions), (0, 0, Fen(10_000_000), Fen(0)));
        assert_eq!((august.revived, august.revived_applied), (Fen(0), Fen(0)));
    })
    .await;
}
