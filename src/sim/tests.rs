//! Tests of the generator's promises: determinism, agreement between the
//! agencies, and a clean year (no rule of `RULES.md` fires on default data).
//! Server tests live in `server_tests.rs`, file format tests in `files.rs`.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Datelike, NaiveDate, TimeDelta};

use super::*;
use crate::model::{
    Collection, FindingStatus, PaymentKind, ProjectCategory, QuotaKind, RectificationStatus,
    ReferralStatus, normalize_unit_name,
};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn params(seed: u64, units: usize, projects: usize, as_of: NaiveDate) -> GenParams {
    GenParams {
        seed,
        units,
        projects,
        year: 2021,
        as_of,
        ..GenParams::small()
    }
}

/// quota(p, y) per (project code, year), as `RULES.md` defines it.
fn quotas(ds: &Dataset) -> BTreeMap<(String, i32), i64> {
    let mut q = BTreeMap::new();
    for r in &ds.quotas {
        let signed = match r.kind {
            QuotaKind::Reclaim => -r.amount.0,
            _ => r.amount.0,
        };
        *q.entry((r.project_code.to_string(), r.fiscal_year))
            .or_insert(0) += signed;
    }
    q
}

/// Every rule of `RULES.md`, with its default thresholds, over a dataset as
/// of `d`: one line per finding.
fn anomalies(ds: &Dataset, d: NaiveDate) -> Vec<String> {
    let y = d.year();
    let mut out = Vec::new();
    let quota = quotas(ds);
    let q = |p: &str, year: i32| quota.get(&(p.to_owned(), year)).copied().unwrap_or(0);
    let mut pays: HashMap<&str, Vec<(NaiveDate, PaymentKind, i64)>> = HashMap::new();
    for p in ds.payments.iter().filter(|p| p.paid_on.year() == y) {
        pays.entry(p.project_code.as_str())
            .or_default()
            .push((p.paid_on, p.kind, p.amount.0));
    }
    let sum = |p: &str, kind: PaymentKind, until: NaiveDate| -> i64 {
        pays.get(p).map_or(0, |v| {
            v.iter()
                .filter(|x| x.1 == kind && x.0 <= until)
                .map(|x| x.2)
                .sum()
        })
    };
    let exp = |p: &str, until| sum(p, PaymentKind::Expenditure, until);
    let alloc = |p: &str, until| sum(p, PaymentKind::Allocation, until);
    let codes: HashSet<&str> = ds
        .projects
        .iter()
        .map(|p| p.project_code.as_str())
        .collect();
    let active: Vec<_> = ds
        .projects
        .iter()
        .filter(|p| q(p.project_code.as_str(), y) > 0 && p.category != ProjectCategory::Reserve)
        .collect();
    let diy = i128::from(if date(y, 12, 31).ordinal() == 366 {
        366
    } else {
        365
    });
    let doy = i128::from(d.ordinal());

    // budget.approved_mismatch
    let mut npc: HashMap<(String, i32), i64> = HashMap::new();
    for b in &ds.budgets {
        npc.insert(
            (b.project_code.to_string(), b.year),
            b.approved.0 + b.adjustment.0,
        );
    }
    for ((p, year), amount) in &quota {
        if *amount > 0 && npc.get(&(p.clone(), *year)) != Some(amount) {
            out.push(format!("budget.approved_mismatch {p} {year}"));
        }
    }
    for (p, year) in npc.keys() {
        if !quota.contains_key(&(p.clone(), *year)) {
            out.push(format!("budget.approved_mismatch (no quota) {p} {year}"));
        }
    }
    // execution.mirror_mismatch
    for e in &ds.execution {
        if e.cumulative.0 != exp(e.project_code.as_str(), e.as_of) {
            out.push(format!(
                "execution.mirror_mismatch {} {}",
                e.project_code, e.as_of
            ));
        }
    }
    let min_quota = 10_000_000; // 100,000.00 yuan
    for p in &active {
        let code = p.project_code.as_str();
        let quota = q(code, y);
        let spent = exp(code, d);
        // execution.slow: time − exec ≥ 15 pp, exactly.
        if quota >= min_quota && d >= date(y, 3, 1) {
            let gap = 100 * (doy * i128::from(quota) - i128::from(spent) * diy);
            if gap >= 15 * diy * i128::from(quota) {
                out.push(format!(
                    "execution.slow {code} exec {:.3} time {:.3}",
                    spent as f64 / quota as f64,
                    doy as f64 / diy as f64
                ));
            }
        }
        // funds.idle
        let last = pays.get(code).and_then(|v| {
            v.iter()
                .filter(|x| x.1 == PaymentKind::Expenditure && x.0 <= d)
                .map(|x| x.0)
                .max()
        });
        let since = last.or_else(|| {
            ds.quotas
                .iter()
                .filter(|r| {
                    r.project_code.as_str() == code
                        && r.fiscal_year == y
                        && r.kind == QuotaKind::Initial
                })
                .map(|r| r.approved_on)
                .min()
        });
        if quota - spent > 0 && since.is_some_and(|s| s + TimeDelta::days(180) <= d) {
            out.push(format!("funds.idle {code}"));
        }
        // disbursement.lump_sum
        let allocs: Vec<_> = pays.get(code).map_or(Vec::new(), |v| {
            v.iter()
                .filter(|x| x.1 == PaymentKind::Allocation && x.0 <= d)
                .cloned()
                .collect()
        });
        if p.full_year && quota >= 500_000_000 && alloc(code, d) >= quota && allocs.len() < 3 {
            out.push(format!("disbursement.lump_sum {code}"));
        }
        // disbursement.tranche_unsettled
        for a in &allocs {
            if d > a.0 + TimeDelta::days(90) && spent < alloc(code, a.0) {
                out.push(format!("disbursement.tranche_unsettled {code} {}", a.0));
                break;
            }
        }
        // target.missing
        if p.category == ProjectCategory::Special
            && !ds
                .targets
                .iter()
                .any(|t| t.project_code == p.project_code && t.fiscal_year == y)
        {
            out.push(format!("target.missing {code}"));
        }
        // yearend.unspendable
        if d >= date(y, 10, 1) && quota >= min_quota {
            let left = i128::from((date(y, 12, 31) - d).num_days());
            let before = exp(code, d - TimeDelta::days(90));
            let projected90 = 90 * i128::from(spent) + i128::from(spent - before) * left;
            // unspent > 10%: quota − projected > quota / 10
            if 10 * (90 * i128::from(quota) - projected90) > 90 * i128::from(quota) {
                out.push(format!("yearend.unspendable {code}"));
            }
        }
        // payment.over_quota
        if spent > quota || alloc(code, d) > quota {
            out.push(format!("payment.over_quota {code}"));
        }
    }
    // evaluation.result_unapplied
    for e in ds.evaluations.iter().filter(|e| e.fiscal_year == y - 1) {
        let code = e.project_code.as_str();
        let initial: i64 = ds
            .quotas
            .iter()
            .filter(|r| {
                r.project_code.as_str() == code
                    && r.fiscal_year == y
                    && r.kind == QuotaKind::Initial
            })
            .map(|r| r.amount.0)
            .sum();
        if e.score.0 < 8000 && 10 * i128::from(initial) > 9 * i128::from(q(code, y - 1)) {
            out.push(format!("evaluation.result_unapplied {code}"));
        }
    }
    // audit.status_mismatch and audit.overdue
    let audit: HashMap<&str, FindingStatus> = ds
        .findings
        .iter()
        .map(|f| (f.finding_no.as_str(), f.status))
        .collect();
    for r in &ds.rectifications {
        if r.status == RectificationStatus::Rectified
            && r.reported_on + TimeDelta::days(30) <= d
            && matches!(
                audit.get(r.finding_no.as_str()),
                Some(FindingStatus::Open | FindingStatus::InProgress)
            )
        {
            out.push(format!("audit.status_mismatch {}", r.finding_no));
        }
    }
    for f in &ds.findings {
        if f.status != FindingStatus::Rectified && f.deadline < d {
            out.push(format!("audit.overdue {}", f.finding_no));
        }
    }
    // referral.freeze_breach
    for r in &ds.referrals {
        let (true, Some(from)) = (r.freeze, r.freeze_from) else {
            continue;
        };
        if r.status == ReferralStatus::Closed {
            continue;
        }
        let covered: Vec<&str> = match &r.project_code {
            Some(c) => vec![c.as_str()],
            None => ds
                .projects
                .iter()
                .filter(|p| p.unit_code == r.unit_code)
                .map(|p| p.project_code.as_str())
                .collect(),
        };
        let breach = ds
            .payments
            .iter()
            .any(|p| covered.contains(&p.project_code.as_str()) && p.paid_on >= from);
        if breach {
            out.push(format!("referral.freeze_breach {}", r.referral_id));
        }
    }
    // orgdept.rate_mismatch
    for o in &ds.orgdept {
        let e = date(o.year, u32::from(o.quarter) * 3, 1)
            .checked_add_months(chrono::Months::new(1))
            .unwrap()
            .pred_opt()
            .unwrap();
        let (mut spent, mut quota_e) = (0i128, 0i128);
        for p in active.iter().filter(|p| p.unit_code == o.unit_code) {
            let code = p.project_code.as_str();
            spent += i128::from(exp(code, e));
            quota_e += ds
                .quotas
                .iter()
                .filter(|r| {
                    r.project_code.as_str() == code && r.fiscal_year == y && r.approved_on <= e
                })
                .map(|r| {
                    i128::from(match r.kind {
                        QuotaKind::Reclaim => -r.amount.0,
                        _ => r.amount.0,
                    })
                })
                .sum::<i128>();
        }
        if quota_e != 0
            && (i128::from(o.reported_rate.0) * quota_e - 10_000 * spent).abs() > 100 * quota_e
        {
            out.push(format!(
                "orgdept.rate_mismatch {} Q{}",
                o.unit_code, o.quarter
            ));
        }
    }
    // link.unknown_project
    let named = ds
        .quotas
        .iter()
        .map(|r| &r.project_code)
        .chain(ds.payments.iter().map(|r| &r.project_code))
        .chain(ds.targets.iter().map(|r| &r.project_code))
        .chain(ds.evaluations.iter().map(|r| &r.project_code))
        .chain(ds.budgets.iter().map(|r| &r.project_code))
        .chain(ds.execution.iter().map(|r| &r.project_code))
        .chain(ds.findings.iter().filter_map(|r| r.project_code.as_ref()))
        .chain(ds.referrals.iter().filter_map(|r| r.project_code.as_ref()));
    for code in named {
        if !codes.contains(code.as_str()) {
            out.push(format!("link.unknown_project {code}"));
        }
    }
    // link.unresolved_unit (and ambiguity, which would be as bad)
    let mut names: HashMap<String, usize> = HashMap::new();
    for u in &ds.units {
        *names.entry(normalize_unit_name(&u.unit_name)).or_default() += 1;
    }
    for f in &ds.findings {
        if names.get(&normalize_unit_name(&f.unit_name)) != Some(&1) {
            out.push(format!("link.unresolved_unit {}", f.unit_name));
        }
    }
    out
}

#[test]
fn same_params_same_dataset() {
    let p = GenParams::small();
    let a = generate(&p);
    assert_eq!(a, generate(&p));
    let other = generate(&GenParams { seed: 8, ..p });
    assert_ne!(a.payments, other.payments);
}

#[test]
fn the_small_dataset_has_every_kind_of_record() {
    let ds = generate(&GenParams::small());
    for c in Collection::FROM_AGENCIES {
        assert!(ds.len(c) > 0, "{c} is empty");
        assert_eq!(ds.records(c).len(), ds.len(c));
    }
    assert_eq!(ds.units.len(), 12);
    assert_eq!(ds.projects.len(), 60);
    assert!(ds.units.iter().any(|u| u.unit_name.ends_with("（本级）")));
    assert!(ds.units.iter().any(|u| u.parent_code.is_some()));
    assert!(ds.quotas.iter().any(|q| q.kind == QuotaKind::Adjustment));
    assert!(ds.findings.iter().any(|f| f.project_code.is_none()));
    assert!(
        ds.findings.iter().any(|f| f.unit_name.contains("(本级)")),
        "the audit office's half-width brackets"
    );
    assert!(ds.findings.iter().any(|f| f.project_code.is_some()));
    // Orgdept: one row per unit per ended quarter (Q1–Q3 as of 30 September).
    assert_eq!(ds.orgdept.len(), 12 * 3);
}

#[test]
fn codes_ids_and_dates_are_well_formed() {
    let p = GenParams::small();
    let ds = generate(&p);
    let mut ids = HashSet::new();
    for pay in &ds.payments {
        assert!(
            ids.insert(pay.payment_id.clone()),
            "duplicate {}",
            pay.payment_id
        );
        assert!(pay.paid_on <= p.as_of && pay.paid_on.year() == p.year);
        assert!(pay.amount.0 > 0);
    }
    let quota_ids: HashSet<_> = ds.quotas.iter().map(|q| &q.quota_id).collect();
    assert_eq!(quota_ids.len(), ds.quotas.len());
    for q in &ds.quotas {
        assert!(q.approved_on <= p.as_of);
        if q.kind == QuotaKind::Initial && q.fiscal_year == p.year {
            assert!((5_000_000..=2_000_000_000).contains(&q.amount.0));
            assert!(q.approved_on.month() <= 2);
        }
        if q.kind == QuotaKind::Reclaim {
            assert!(q.amount.0 > 0);
        }
    }
    for pr in &ds.projects {
        let code = pr.project_code.as_str();
        assert!(code.starts_with("370100"));
        assert_eq!(code[6..10], pr.start_year.to_string());
        assert!(pr.start_year <= p.year);
        assert!(pr.end_year.is_none_or(|e| e >= p.year));
    }
    for e in &ds.evaluations {
        assert_eq!(e.grade, grade_of(e.score));
        assert!((0..=10_000).contains(&e.score.0));
    }
    for f in &ds.findings {
        assert!(f.finding_no.starts_with("SJ-2021-"));
    }
    let unit_codes: HashSet<_> = ds.units.iter().map(|u| u.unit_code.clone()).collect();
    for u in &ds.units {
        assert!(
            u.parent_code
                .as_ref()
                .is_none_or(|c| unit_codes.contains(c))
        );
    }
}

#[test]
fn npc_approvals_equal_finance_net_quotas() {
    let ds = generate(&GenParams::small());
    let quota = quotas(&ds);
    assert_eq!(quota.len(), ds.budgets.len());
    for b in &ds.budgets {
        let q = quota[&(b.project_code.to_string(), b.year)];
        assert_eq!(
            b.approved.0 + b.adjustment.0,
            q,
            "{} {}",
            b.project_code,
            b.year
        );
        // 万元 with 6 places is exact for any fen amount.
        assert_eq!(
            crate::money::Fen::from_wan(&b.approved.to_wan()).unwrap(),
            b.approved
        );
    }
}

#[test]
fn the_execution_mirror_is_what_finance_paid() {
    let ds = generate(&GenParams::small());
    for e in &ds.execution {
        let paid: i64 = ds
            .payments
            .iter()
            .filter(|p| {
                p.project_code == e.project_code
                    && p.kind == PaymentKind::Expenditure
                    && p.paid_on <= e.as_of
            })
            .map(|p| p.amount.0)
            .sum();
        assert_eq!(e.cumulative.0, paid);
        assert_eq!(e.as_of.succ_opt().unwrap().day(), 1, "a month-end");
    }
}

#[test]
fn spending_never_runs_ahead_of_money() {
    let ds = generate(&GenParams::small());
    let quota = quotas(&ds);
    let mut by_project: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for p in &ds.payments {
        by_project
            .entry(p.project_code.as_str())
            .or_default()
            .push(p);
    }
    for (code, mut pays) in by_project {
        pays.sort_by_key(|p| (p.paid_on, p.kind == PaymentKind::Expenditure));
        let (mut alloc, mut exp) = (0, 0);
        for p in pays {
            match p.kind {
                PaymentKind::Allocation => alloc += p.amount.0,
                PaymentKind::Expenditure => exp += p.amount.0,
            }
            assert!(exp <= alloc, "{code}: spent {exp} of {alloc}");
        }
        assert!(alloc <= quota[&(code.to_owned(), 2021)], "{code}");
    }
}

#[test]
fn audit_findings_name_exactly_one_unit_in_whole_hundreds_of_yuan() {
    let ds = generate(&GenParams {
        units: 80,
        projects: 300,
        ..GenParams::small()
    });
    assert!(ds.findings.len() >= 10);
    let names: Vec<String> = ds
        .units
        .iter()
        .map(|u| normalize_unit_name(&u.unit_name))
        .collect();
    let mut respelled = 0;
    for f in &ds.findings {
        assert_eq!(f.amount.0 % 10_000, 0, "{}", f.finding_no);
        let n = normalize_unit_name(&f.unit_name);
        assert_eq!(
            names.iter().filter(|m| **m == n).count(),
            1,
            "{}",
            f.unit_name
        );
        if !ds.units.iter().any(|u| u.unit_name == f.unit_name) {
            respelled += 1;
        }
    }
    assert!(
        respelled > 0,
        "some names are spelled the audit office's way"
    );
    let finding_nos: HashSet<_> = ds.findings.iter().map(|f| &f.finding_no).collect();
    for r in &ds.rectifications {
        assert!(finding_nos.contains(&r.finding_no));
    }
}

#[test]
fn the_default_year_is_clean_on_every_rule() {
    let found = anomalies(&generate(&GenParams::small()), GenParams::small().as_of);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn benchmark_densities_give_exact_counts_and_stay_clean() {
    let base = params(7, 40, 400, date(2021, 12, 31));
    let ds = generate(&GenParams {
        audit_findings: Some(90),
        referrals: Some(17),
        ..base.clone()
    });
    assert_eq!((ds.findings.len(), ds.referrals.len()), (90, 17));
    // Every unit is audited, two or three times each.
    let mut per_unit: HashMap<String, usize> = HashMap::new();
    for f in &ds.findings {
        *per_unit
            .entry(normalize_unit_name(&f.unit_name))
            .or_default() += 1;
    }
    assert_eq!(per_unit.len(), 40);
    assert!(
        per_unit.values().all(|n| (2..=3).contains(n)),
        "{per_unit:?}"
    );
    assert_eq!(anomalies(&ds, date(2021, 12, 31)), Vec::<String>::new());
    // The other collections are the default year's.
    let default = generate(&base);
    assert_eq!(ds.payments, default.payments);
    assert_eq!(ds.execution, default.execution);
    assert_eq!(ds.orgdept, default.orgdept);
}

#[test]
fn the_year_stays_clean_week_by_week() {
    for seed in [1, 2] {
        let mut d = date(2021, 1, 20);
        while d <= date(2021, 12, 31) {
            let ds = generate(&params(seed, 20, 150, d));
            let found = anomalies(&ds, d);
            assert!(found.is_empty(), "seed {seed} as of {d}: {found:#?}");
            d += TimeDelta::days(9);
        }
        let ds = generate(&params(seed, 20, 150, date(2022, 1, 10)));
        assert!(anomalies(&ds, date(2021, 12, 31)).is_empty());
    }
}

#[test]
fn a_later_as_of_shows_the_same_year_further_along() {
    let early = generate(&params(3, 12, 60, date(2021, 5, 31)));
    let late = generate(&params(3, 12, 60, date(2021, 9, 30)));
    let cut: Vec<_> = late
        .payments
        .iter()
        .filter(|p| p.paid_on <= date(2021, 5, 31))
        .map(|p| {
            (
                &p.project_code,
                p.kind == PaymentKind::Allocation,
                p.amount,
                p.paid_on,
            )
        })
        .collect();
    let mut early_pays: Vec<_> = early
        .payments
        .iter()
        .map(|p| {
            (
                &p.project_code,
                p.kind == PaymentKind::Allocation,
                p.amount,
                p.paid_on,
            )
        })
        .collect();
    let mut cut = cut;
    early_pays.sort();
    cut.sort();
    assert_eq!(early_pays, cut);
}

#[test]
fn planted_anomalies_are_seen_by_the_checker() {
    // The checker itself must not be blind: break the data and look.
    let p = GenParams::small();
    let mut ds = generate(&p);
    ds.budgets[0].approved.0 += 1;
    ds.findings[0].unit_name = "不存在的单位".to_owned();
    let found = anomalies(&ds, p.as_of);
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("budget.approved_mismatch"))
    );
    assert!(found.iter().any(|f| f.starts_with("link.unresolved_unit")));
}

#[test]
fn planted_anomalies_are_found_exactly_and_nothing_else() {
    let share = AnomalyShare::new(0.05).unwrap();
    for (seed, as_of) in [
        (7, date(2021, 9, 30)),
        (7, date(2021, 12, 31)),
        (3, date(2021, 12, 31)),
    ] {
        let clean = params(seed, 40, 600, as_of);
        let ds = generate(&GenParams {
            anomalies: Some(share),
            ..clean.clone()
        });
        // 5% of 600 slow, 1% idle, 600 × 5% ÷ 20 = 1.5, so two mismatches.
        let p = ds.planted;
        assert_eq!(
            p,
            Planted {
                slow: 30,
                idle: 6,
                mirror: 1,
                approved: 1
            },
            "{as_of}"
        );
        let mut found: BTreeMap<String, usize> = BTreeMap::new();
        for f in anomalies(&ds, as_of) {
            let rule = f.split(' ').next().unwrap().to_owned();
            *found.entry(rule).or_default() += 1;
        }
        let mut wanted: BTreeMap<String, usize> = [
            ("execution.slow", p.slow),
            ("funds.idle", p.idle),
            ("execution.mirror_mismatch", p.mirror),
            ("budget.approved_mismatch", p.approved),
        ]
        .into_iter()
        .map(|(r, n)| (r.to_owned(), n))
        .collect();
        // On the last day of the year a slow project cannot spend its quota
        // in time either.
        if as_of == date(2021, 12, 31) {
            wanted.insert("yearend.unspendable".to_owned(), p.slow);
        }
        assert_eq!(found, wanted, "seed {seed} as of {as_of}");
        // Nothing but the plants differs: the same payments (stamped
        // differently, so served in another order), and the clean year
        // stays clean.
        let base = generate(&clean);
        assert_eq!(base.planted, Planted::default());
        assert!(anomalies(&base, as_of).is_empty());
        let paid = |ds: &Dataset| {
            let mut v: Vec<_> = ds
                .payments
                .iter()
                .map(|p| (p.payment_id.clone(), p.amount, p.paid_on))
                .collect();
            v.sort();
            v
        };
        assert!(paid(&ds) == paid(&base), "the payments changed");
        assert_eq!(ds.quotas.len(), base.quotas.len() + p.slow + p.idle);
        assert_eq!(ds.execution.len(), base.execution.len());
    }
}

/// The long version of the clean-year test: many seeds, every other day, a
/// leap year too. `cargo test --release --lib sim::tests::stress -- --ignored`.
#[test]
#[ignore]
fn stress_the_clean_year() {
    let mut bad = Vec::new();
    for year in [2020, 2021] {
        for seed in 10..22 {
            let mut d = date(year, 1, 2);
            while d <= date(year + 1, 1, 5) {
                let ds = generate(&GenParams {
                    year,
                    ..params(seed, 60, 600, d)
                });
                let found = anomalies(&ds, d.min(date(year, 12, 31)));
                if !found.is_empty() {
                    bad.push(format!("{year} seed {seed} as of {d}: {found:?}"));
                }
                d += TimeDelta::days(2);
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

/// Size and speed at benchmark scale.
/// `cargo test --release --lib sim::tests::benchmark_scale -- --ignored --nocapture`.
#[test]
#[ignore]
fn benchmark_scale() {
    let started = std::time::Instant::now();
    let ds = generate(&params(7, 10_000, 100_000, date(2021, 12, 31)));
    println!("generated in {:?}", started.elapsed());
    for c in Collection::FROM_AGENCIES {
        println!("{c}: {}", ds.len(c));
    }
    let names: HashSet<_> = ds
        .units
        .iter()
        .map(|u| normalize_unit_name(&u.unit_name))
        .collect();
    assert_eq!(names.len(), 10_000);
    let started = std::time::Instant::now();
    let data = SimData::new(ds);
    println!("indexed in {:?}", started.elapsed());
    assert!(data.len(Collection::Payments) > 1_500_000);
}
