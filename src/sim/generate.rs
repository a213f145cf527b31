//! The deterministic generator of one budget year as the five agencies see
//! it: finance's units, projects, quotas, payments, targets, evaluations and
//! rectification reports; the congress's approvals and execution mirror; the
//! audit findings; the discipline referrals; the organisation department's
//! quarterly evaluations.
//!
//! The data is consistent across agencies and clean: with the default
//! parameters no rule of `RULES.md` fires, so a test plants exactly the anomaly
//! it wants. To stay clean the year is planned whole (every project's
//! tranches and expenditures to December) and then cut at the as-of date, so
//! a later as-of date shows the same year further along. Same parameters, same
//! dataset: every random choice comes from one seeded generator per stage.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use fastrand::Rng;

use super::names;
use super::plant::{self, AnomalyShare, Plant, Planted};
use crate::model::{
    ApprovedBudget, AuditFinding, Centi, Collection, Evaluation, ExecutionMirror, FindingStatus,
    Grade, OrgdeptEvaluation, Payment, PaymentKind, Project, ProjectCategory, ProjectCode, Quota,
    QuotaKind, Record, Rectification, RectificationStatus, Referral, ReferralOrigin,
    ReferralStatus, Target, Unit, UnitCode,
};
use crate::money::Fen;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenParams {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of budget units (at most 600,000: codes have 6 digits).
    pub units: usize,
    /// Number of projects (at most 999,999: sequences have 6 digits).
    pub projects: usize,
    /// The fiscal year.
    pub year: i32,
    /// The simulated "today": nothing dated later exists yet.
    pub as_of: NaiveDate,
    /// Exactly this many audit findings, spread evenly over as many units
    /// as needed (benchmarks); `None`: one or two findings for an eighth of
    /// the units.
    pub audit_findings: Option<usize>,
    /// Exactly this many discipline referrals (benchmarks); `None`: about
    /// 1.5% of the projects.
    pub referrals: Option<usize>,
    /// Plants anomalies at province rates (benchmarks; see [`Planted`]),
    /// chosen from the seed, as of the as-of date and with the default
    /// thresholds of `RULES.md`. Of the projects, this share executes
    /// slowly: a quota raise nobody spends leaves spending at least 20 pp
    /// behind time, more where it lifts a small project to the rule's
    /// minimum quota (`execution.slow` fires, and from 1 October
    /// `yearend.unspendable` may too: on 31 December it does for each).
    /// A fifth of the share sits idle: fully spent at least 180 days ago,
    /// then raised by 1% (`funds.idle` alone). A twentieth of it (at least
    /// one) is a mismatch of 100 yuan, alternately in the congress's
    /// execution mirror (`execution.mirror_mismatch`, one row) and in its
    /// approved adjustment (`budget.approved_mismatch`). Slow projects are
    /// planted only from mid-March and idle ones only where the year
    /// allows, with the as-of date in the year. `None`: the clean year,
    /// draw for draw.
    pub anomalies: Option<AnomalyShare>,
}

impl GenParams {
    /// The dataset unit tests use: 12 units, 60 projects, 2021 as of 30
    /// September.
    pub fn small() -> GenParams {
        GenParams {
            seed: 7,
            units: 12,
            projects: 60,
            year: 2021,
            as_of: NaiveDate::from_ymd_opt(2021, 9, 30).unwrap_or_default(),
            audit_findings: None,
            referrals: None,
            anomalies: None,
        }
    }
}

/// The most units and projects the code formats allow.
const MAX_UNITS: usize = 600_000;
const MAX_PROJECTS: usize = 999_999;
/// The region part of every project code.
const REGION: &str = "370100";
/// Amounts are drawn in steps of 100 yuan, the budget office's rounding.
const STEP_100_YUAN: i64 = 10_000;
/// Fen per yuan.
const YUAN: i64 = 100;

/// Everything the five systems hold, one `Vec` per canonical collection.
/// Finance collections are ordered by (`updated_at`, key) as the finance API
/// serves them; the others by key (referrals by `changed_at`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dataset {
    pub units: Vec<Unit>,
    pub projects: Vec<Project>,
    pub quotas: Vec<Quota>,
    pub payments: Vec<Payment>,
    pub targets: Vec<Target>,
    pub evaluations: Vec<Evaluation>,
    pub rectifications: Vec<Rectification>,
    pub budgets: Vec<ApprovedBudget>,
    pub execution: Vec<ExecutionMirror>,
    pub findings: Vec<AuditFinding>,
    pub referrals: Vec<Referral>,
    pub orgdept: Vec<OrgdeptEvaluation>,
    /// What [`GenParams::anomalies`] planted (nothing by default).
    pub planted: Planted,
}

impl Dataset {
    /// Number of records in a collection.
    pub fn len(&self, c: Collection) -> usize {
        use Collection::*;
        match c {
            Units => self.units.len(),
            Projects => self.projects.len(),
            Quotas => self.quotas.len(),
            Payments => self.payments.len(),
            Targets => self.targets.len(),
            Evaluations => self.evaluations.len(),
            Rectifications => self.rectifications.len(),
            Budgets => self.budgets.len(),
            Execution => self.execution.len(),
            Findings => self.findings.len(),
            Referrals => self.referrals.len(),
            OrgdeptEvaluations => self.orgdept.len(),
            // Actions are taken in liankong, never served by an agency.
            Actions => 0,
        }
    }

    /// A collection's records as canonical [`Record`]s, in serving order.
    pub fn records(&self, c: Collection) -> Vec<Record> {
        use Collection::*;
        fn wrap<T: Clone>(rows: &[T], f: fn(T) -> Record) -> Vec<Record> {
            rows.iter().cloned().map(f).collect()
        }
        match c {
            Units => wrap(&self.units, Record::Unit),
            Projects => wrap(&self.projects, Record::Project),
            Quotas => wrap(&self.quotas, Record::Quota),
            Payments => wrap(&self.payments, Record::Payment),
            Targets => wrap(&self.targets, Record::Target),
            Evaluations => wrap(&self.evaluations, Record::Evaluation),
            Rectifications => wrap(&self.rectifications, Record::Rectification),
            Budgets => wrap(&self.budgets, Record::ApprovedBudget),
            Execution => wrap(&self.execution, Record::ExecutionMirror),
            Findings => wrap(&self.findings, Record::AuditFinding),
            Referrals => wrap(&self.referrals, Record::Referral),
            OrgdeptEvaluations => wrap(&self.orgdept, Record::OrgdeptEvaluation),
            Actions => Vec::new(),
        }
    }
}

/// Generates the dataset for `params`. Deterministic; sized for benchmarks
/// (10,000 units, 100,000 projects, about 2,000,000 payments in a full year).
pub fn generate(params: &GenParams) -> Dataset {
    let mut g = Generator::new(params);
    g.units();
    g.projects();
    g.money();
    g.targets();
    g.audit();
    g.referrals();
    g.orgdept();
    let mut ds = g.ds;
    ds.sort_for_serving();
    ds
}

/// The fiscal year's calendar, cut at the as-of date.
pub(super) struct Calendar {
    pub(super) year: i32,
    jan1: NaiveDate,
    dec31: NaiveDate,
    pub(super) as_of: NaiveDate,
    /// The last day anything of year `year` has happened: the as-of date or
    /// 31 December, whichever is earlier.
    pub(super) last_day: NaiveDate,
    pub(super) days_in_year: i64,
}

impl Calendar {
    fn new(year: i32, as_of: NaiveDate) -> Calendar {
        let jan1 = NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or_default();
        let dec31 = NaiveDate::from_ymd_opt(year, 12, 31).unwrap_or(jan1);
        Calendar {
            year,
            jan1,
            dec31,
            as_of,
            last_day: as_of.min(dec31),
            days_in_year: (dec31 - jan1).num_days() + 1,
        }
    }

    /// Day `n` (0 = 1 January) of the year, never past 31 December.
    pub(super) fn day(&self, n: i64) -> NaiveDate {
        add_days(self.jan1, n).min(self.dec31)
    }

    /// Day `n` of the previous year.
    fn prev_year_day(&self, n: i64) -> NaiveDate {
        let jan1 = NaiveDate::from_ymd_opt(self.year - 1, 1, 1).unwrap_or(self.jan1);
        add_days(jan1, n)
    }

    /// The day index of a date of this year.
    pub(super) fn index(&self, d: NaiveDate) -> i64 {
        (d - self.jan1).num_days()
    }

    /// Whether a date has happened by the as-of date.
    pub(super) fn visible(&self, d: NaiveDate) -> bool {
        d <= self.as_of
    }

    /// A random day between day indexes `from` and `to` (inclusive), cut at
    /// the last day; `None` when nothing of that range has happened yet.
    fn random_day(&self, rng: &mut Rng, from: i64, to: i64) -> Option<NaiveDate> {
        let to = to.min(self.index(self.last_day));
        (from <= to).then(|| self.day(rng.i64(from..=to)))
    }

    /// The end of quarter `q` (1–4).
    fn quarter_end(&self, q: u8) -> NaiveDate {
        let month = u32::from(q) * 3;
        month_end(self.year, month).unwrap_or(self.dec31)
    }

    /// Month-ends of the year that have passed by the last day.
    pub(super) fn month_ends(&self) -> Vec<NaiveDate> {
        (1..=12)
            .filter_map(|m| month_end(self.year, m))
            .filter(|d| *d <= self.last_day)
            .collect()
    }
}

fn add_days(d: NaiveDate, n: i64) -> NaiveDate {
    d.checked_add_signed(TimeDelta::days(n)).unwrap_or(d)
}

fn month_end(year: i32, month: u32) -> Option<NaiveDate> {
    let (y, m) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)?.pred_opt()
}

/// A random instant during office hours (08:00–18:00 China time) of `date`.
fn office_time(rng: &mut Rng, date: NaiveDate) -> DateTime<Utc> {
    china_time(date, rng.u32(8 * 3600..18 * 3600))
}

/// `secs` seconds after midnight China time (UTC+8) on `date`, as UTC.
pub(crate) fn china_time(date: NaiveDate, secs: u32) -> DateTime<Utc> {
    let time = NaiveTime::from_num_seconds_from_midnight_opt(secs, 0).unwrap_or_default();
    let local = date.and_time(time);
    local
        .checked_sub_signed(TimeDelta::hours(8))
        .unwrap_or(local)
        .and_utc()
}

/// The grade of a score: 优 ≥ 90, 良 ≥ 80, 中 ≥ 60, 差 < 60.
pub fn grade_of(score: Centi) -> Grade {
    match score.0 {
        9000.. => Grade::Excellent,
        8000..=8999 => Grade::Good,
        6000..=7999 => Grade::Fair,
        _ => Grade::Poor,
    }
}

/// A score between `lo` and `hi` hundredths, sometimes with fewer decimals.
fn score(rng: &mut Rng, lo: i64, hi: i64) -> Centi {
    let raw = rng.i64(lo..=hi);
    let value = match rng.u32(0..10) {
        0..=3 => raw - raw % 100,
        4..=6 => raw - raw % 10,
        _ => raw,
    };
    Centi(value.max(lo))
}

/// `amount × num ÷ den`, rounded down to `step`; exact in integers.
fn share(amount: i64, num: i64, den: i64, step: i64) -> i64 {
    if den == 0 || step == 0 {
        return 0;
    }
    let raw = i128::from(amount) * i128::from(num) / i128::from(den);
    let raw = i64::try_from(raw).unwrap_or(0);
    raw - raw.rem_euclid(step)
}

/// One project's year as the generator planned it, cut at the as-of date.
#[derive(Debug, Clone, Default)]
struct Facts {
    unit: usize,
    category: Option<ProjectCategory>,
    full_year: bool,
    start_year: i32,
    code: Option<ProjectCode>,
    /// Day index of the initial quota's approval (planned, maybe future).
    approved_day: i64,
    /// Whether the project has a quota for the year by the as-of date.
    has_quota: bool,
    /// quota(p, Y) as of the as-of date.
    quota: i64,
    /// Per quarter: quota(p, Y, quarter end) and exp(p, quarter end).
    quarter_quota: [i64; 4],
    quarter_exp: [i64; 4],
    /// The last payment by the as-of date.
    last_paid: Option<NaiveDate>,
    /// Whether every planned payment of the year has happened.
    complete: bool,
}

impl Facts {
    /// Active in the sense of `RULES.md`: a positive quota and not reserve.
    fn active(&self) -> bool {
        self.has_quota && self.quota > 0 && self.category != Some(ProjectCategory::Reserve)
    }
}

struct Generator<'a> {
    params: &'a GenParams,
    cal: Calendar,
    ds: Dataset,
    facts: Vec<Facts>,
    unit_codes: Vec<UnitCode>,
}

impl<'a> Generator<'a> {
    fn new(params: &'a GenParams) -> Generator<'a> {
        Generator {
            params,
            cal: Calendar::new(params.year, params.as_of),
            ds: Dataset::default(),
            facts: Vec::new(),
            unit_codes: Vec::new(),
        }
    }

    /// A generator for one stage, so that changing one stage's draws leaves
    /// the others' data alone.
    fn rng(&self, stage: u64) -> Rng {
        Rng::with_seed(
            self.params
                .seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(stage),
        )
    }

    fn units(&mut self) {
        let mut rng = self.rng(1);
        let n = self.params.units.clamp(1, MAX_UNITS);
        let top = names::top_level_count(n);
        let stamp_day = self.cal.prev_year_day(334).min(self.cal.as_of);
        for i in 0..n {
            // 370001.. stays 6 digits for every allowed count.
            let Ok(code) = UnitCode::parse(&format!("{:06}", 370_001 + i)) else {
                continue;
            };
            let (name, parent) = names::unit_name(i, top);
            let day = add_days(stamp_day, rng.i64(0..=27)).min(self.cal.as_of);
            self.ds.units.push(Unit {
                unit_code: code.clone(),
                unit_name: name,
                // A parent always has a smaller index, so its code is known.
                parent_code: parent.and_then(|p| self.unit_codes.get(p).cloned()),
                updated_at: office_time(&mut rng, day),
            });
            self.unit_codes.push(code);
        }
    }

    fn projects(&mut self) {
        let mut rng = self.rng(2);
        let n = self.params.projects.min(MAX_PROJECTS);
        let units = self.unit_codes.len().max(1);
        let year = self.cal.year;
        for i in 0..n {
            // Every unit gets a project before any gets a second.
            let unit = if i < units { i } else { rng.usize(0..units) };
            let category = match rng.u32(0..100) {
                0..30 => ProjectCategory::Special,
                30..90 => ProjectCategory::Basic,
                _ => ProjectCategory::Reserve,
            };
            let start_year = if rng.u32(0..100) < 30 {
                year - rng.i32(1..=3)
            } else {
                year
            };
            let full_year = match category {
                ProjectCategory::Special => rng.u32(0..100) < 40,
                ProjectCategory::Basic => rng.u32(0..100) < 75,
                ProjectCategory::Reserve => false,
            };
            let end_year = match category {
                ProjectCategory::Reserve => Some(year),
                ProjectCategory::Special => Some(year + rng.i32(0..=3)),
                ProjectCategory::Basic => (rng.u32(0..100) < 30).then(|| year + rng.i32(0..=2)),
            };
            let topic = match category {
                ProjectCategory::Special => {
                    names::SPECIAL_TOPICS[rng.usize(0..names::SPECIAL_TOPICS.len())]
                }
                ProjectCategory::Basic => {
                    names::BASIC_TOPICS[rng.usize(0..names::BASIC_TOPICS.len())]
                }
                ProjectCategory::Reserve => {
                    names::RESERVE_TOPICS[rng.usize(0..names::RESERVE_TOPICS.len())]
                }
            };
            let code = project_code(start_year, i + 1);
            let created = if start_year < year {
                self.cal.prev_year_day(rng.i64(334..=361))
            } else {
                self.cal.day(rng.i64(1..=9))
            };
            let Some(unit_code) = self.unit_codes.get(unit).cloned() else {
                continue;
            };
            let Some(code) = code else { continue };
            self.ds.projects.push(Project {
                project_code: code.clone(),
                unit_code,
                project_name: format!("{start_year}年度{topic}"),
                category,
                full_year,
                start_year,
                end_year,
                updated_at: office_time(&mut rng, created.min(self.cal.as_of)),
            });
            self.facts.push(Facts {
                unit,
                category: Some(category),
                full_year,
                start_year,
                code: Some(code),
                ..Facts::default()
            });
        }
    }

    /// Quotas, payments, the congress's budgets and execution mirror, and the
    /// previous year's quotas and evaluations, project by project.
    fn money(&mut self) {
        let month_ends = self.cal.month_ends();
        let mut facts = std::mem::take(&mut self.facts);
        // Every year is planned before any is emitted, so that the planted
        // anomalies can be chosen among them; each project's generator goes
        // on from its plan into its rows, as if in one go.
        let mut plans: Vec<Option<(Rng, YearPlan)>> = facts
            .iter()
            .enumerate()
            .map(|(i, f)| {
                f.code.as_ref()?;
                // One generator per project and purpose: a project's year does
                // not depend on its neighbours' or on the as-of date.
                let mut rng = self.project_rng(3, i);
                let has_initial =
                    f.category != Some(ProjectCategory::Reserve) || rng.u32(0..100) < 50;
                has_initial.then(|| {
                    let plan = plan_year(&mut rng, &self.cal, f.category, f.full_year);
                    (rng, plan)
                })
            })
            .collect();
        let mut plants = Vec::new();
        if let Some(share) = self.params.anomalies {
            let categories: Vec<_> = facts.iter().map(|f| f.category).collect();
            let mut rng = self.rng(8);
            (plants, self.ds.planted) =
                plant::choose(share, &self.cal, &mut rng, &categories, &mut plans);
        }
        for (i, (f, planned)) in facts.iter_mut().zip(plans).enumerate() {
            let (Some(code), Some((mut rng, plan))) = (f.code.clone(), planned) else {
                continue;
            };
            f.approved_day = plan.approved_day;
            let planted = plants.get(i).copied().flatten();
            self.emit_year(&mut rng, i + 1, f, &code, &plan, &month_ends, planted);
            if f.start_year < self.cal.year && f.category != Some(ProjectCategory::Reserve) {
                let mut rng = self.project_rng(4, i);
                self.emit_previous_year(&mut rng, i + 1, &code, plan.initial);
            }
        }
        self.facts = facts;
    }

    fn project_rng(&self, stage: u64, project: usize) -> Rng {
        let index = u64::try_from(project).unwrap_or(u64::MAX);
        Rng::with_seed(
            self.rng(stage)
                .u64(..)
                .wrapping_add(index.wrapping_mul(0xD1B5_4A32_D192_ED03)),
        )
    }

    /// Emits one project's quotas, payments, approval and mirror for the
    /// year, with the congress's side of a planted mismatch.
    #[allow(clippy::too_many_arguments)]
    fn emit_year(
        &mut self,
        rng: &mut Rng,
        seq: usize,
        f: &mut Facts,
        code: &ProjectCode,
        plan: &YearPlan,
        month_ends: &[NaiveDate],
        planted: Option<Plant>,
    ) {
        let cal = &self.cal;
        // Stamps are drawn for every planned row, seen or not yet, so the
        // as-of date never shifts the draws.
        let mut visible_quotas: Vec<&(QuotaKind, i64, NaiveDate)> = Vec::new();
        for (k, row) in plan.quotas.iter().enumerate() {
            let (kind, amount, approved_on) = row;
            let updated_at = office_time(rng, *approved_on);
            if !cal.visible(*approved_on) {
                continue;
            }
            visible_quotas.push(row);
            self.ds.quotas.push(Quota {
                quota_id: format!("ZB{}{seq:06}{k:02}", cal.year),
                project_code: code.clone(),
                fiscal_year: cal.year,
                kind: *kind,
                amount: Fen(*amount),
                approved_on: *approved_on,
                updated_at,
            });
        }
        if visible_quotas.is_empty() {
            return;
        }
        let signed = |kind: QuotaKind, amount: i64| match kind {
            QuotaKind::Reclaim => -amount,
            _ => amount,
        };
        f.has_quota = true;
        f.quota = visible_quotas.iter().map(|q| signed(q.0, q.1)).sum();

        // The congress approved the initial budget and every adjustment.
        let initial: i64 = visible_quotas
            .iter()
            .filter(|q| q.0 == QuotaKind::Initial)
            .map(|q| q.1)
            .sum();
        let approved_on = visible_quotas
            .iter()
            .filter(|q| q.0 == QuotaKind::Initial)
            .map(|q| q.2)
            .min()
            .unwrap_or(cal.jan1);
        let latest = visible_quotas
            .iter()
            .map(|q| q.2)
            .max()
            .unwrap_or(approved_on);
        self.ds.budgets.push(ApprovedBudget {
            project_code: code.clone(),
            year: cal.year,
            approved: Fen(initial),
            adjustment: Fen(f.quota - initial
                + if planted == Some(Plant::Approved) {
                    plant::MISMATCH
                } else {
                    0
                }),
            approved_on,
            updated_at: office_time(rng, latest),
        });

        let mut complete = true;
        let mut expenditures: Vec<(NaiveDate, i64)> = Vec::new();
        for (k, (kind, amount, paid_on)) in plan.payments.iter().enumerate() {
            let updated_at = office_time(rng, *paid_on);
            if !cal.visible(*paid_on) {
                complete = false;
                continue;
            }
            self.ds.payments.push(Payment {
                payment_id: format!("ZF{}{seq:06}{k:03}", cal.year),
                project_code: code.clone(),
                kind: *kind,
                amount: Fen(*amount),
                paid_on: *paid_on,
                updated_at,
            });
            f.last_paid = f.last_paid.max(Some(*paid_on));
            if *kind == PaymentKind::Expenditure {
                expenditures.push((*paid_on, *amount));
            }
        }
        f.complete = complete;
        let spent_by =
            |d: NaiveDate| -> i64 { expenditures.iter().filter(|e| e.0 <= d).map(|e| e.1).sum() };

        for q in 1..=4u8 {
            let end = cal.quarter_end(q);
            if end > cal.last_day {
                break;
            }
            let idx = usize::from(q - 1);
            if let (Some(qq), Some(qe)) = (f.quarter_quota.get_mut(idx), f.quarter_exp.get_mut(idx))
            {
                *qq = visible_quotas
                    .iter()
                    .filter(|r| r.2 <= end)
                    .map(|r| signed(r.0, r.1))
                    .sum();
                *qe = spent_by(end);
            }
        }

        // Finance reports to the congress every month-end once the project
        // has a budget; the report lands the next morning.
        let reports = month_ends.iter().filter(|e| **e >= approved_on);
        let last_report = reports.clone().max().copied();
        for end in reports {
            let reported = add_days(*end, 1).min(cal.as_of);
            let typo = planted == Some(Plant::Mirror) && Some(*end) == last_report;
            self.ds.execution.push(ExecutionMirror {
                project_code: code.clone(),
                year: cal.year,
                as_of: *end,
                cumulative: Fen(spent_by(*end) + if typo { plant::MISMATCH } else { 0 }),
                updated_at: china_time(reported, rng.u32(7 * 3600..9 * 3600)),
            });
        }
    }

    /// A continuing project's previous-year quota, its approval, and the
    /// evaluation of that year. A result below 良 was applied: this year's
    /// initial quota is at least 10% below last year's.
    fn emit_previous_year(&mut self, rng: &mut Rng, seq: usize, code: &ProjectCode, initial: i64) {
        let cal = &self.cal;
        let prev = cal.year - 1;
        let score = score(rng, 5500, 10_000);
        let factor = if score.0 < 8000 {
            rng.i64(113..=140)
        } else {
            rng.i64(80..=120)
        };
        // Rounded up, so a cut result stays cut by at least 10% exactly.
        let raw = share(initial, factor, 100, 1);
        let amount = raw + (STEP_100_YUAN - raw.rem_euclid(STEP_100_YUAN)) % STEP_100_YUAN;
        let approved_on = cal.prev_year_day(rng.i64(3..=35));
        self.ds.quotas.push(Quota {
            quota_id: format!("ZB{prev}{seq:06}00"),
            project_code: code.clone(),
            fiscal_year: prev,
            kind: QuotaKind::Initial,
            amount: Fen(amount),
            approved_on,
            updated_at: office_time(rng, approved_on),
        });
        self.ds.budgets.push(ApprovedBudget {
            project_code: code.clone(),
            year: prev,
            approved: Fen(amount),
            adjustment: Fen::ZERO,
            approved_on,
            updated_at: office_time(rng, approved_on),
        });
        let evaluated_on = cal.day(rng.i64(59..=119));
        if cal.visible(evaluated_on) {
            self.ds.evaluations.push(Evaluation {
                evaluation_id: format!("PJ{prev}{seq:06}"),
                project_code: code.clone(),
                fiscal_year: prev,
                score,
                grade: grade_of(score),
                updated_at: office_time(rng, evaluated_on),
            });
        }
    }

    /// Targets for every special fund (no target, no budget) and some
    /// others, declared before the quota is approved.
    fn targets(&mut self) {
        for (i, f) in self.facts.iter().enumerate() {
            let Some(code) = &f.code else { continue };
            let mut rng = self.project_rng(5, i);
            let count = match f.category {
                Some(ProjectCategory::Special) => rng.usize(1..=3),
                Some(ProjectCategory::Basic) if rng.u32(0..100) < 30 => 1,
                _ => 0,
            };
            if count == 0 || f.approved_day == 0 {
                continue;
            }
            let day = self.cal.day(rng.i64(1..=f.approved_day));
            let first = rng.usize(0..names::INDICATORS.len());
            for k in 0..count {
                let Some((indicator, value)) =
                    names::INDICATORS.get((first + k) % names::INDICATORS.len())
                else {
                    continue;
                };
                let updated_at = office_time(&mut rng, day);
                if !self.cal.visible(day) {
                    continue;
                }
                self.ds.targets.push(Target {
                    target_id: format!("MB{}{:06}{k}", self.cal.year, i + 1),
                    project_code: code.clone(),
                    fiscal_year: self.cal.year,
                    indicator: (*indicator).to_owned(),
                    target_value: (*value).to_owned(),
                    updated_at,
                });
            }
        }
    }

    /// Findings for a few units, named as the audit office spells them, and
    /// the units' reports to finance on rectifying them.
    fn audit(&mut self) {
        let mut rng = self.rng(5);
        let cal = &self.cal;
        let units = self.ds.units.len();
        let mut order: Vec<usize> = (0..units).collect();
        rng.shuffle(&mut order);
        // The first audited unit is one written with full-width brackets, so
        // even a small file shows the half-width respelling.
        if let Some(pos) = order.iter().position(|&u| {
            self.ds
                .units
                .get(u)
                .is_some_and(|unit| unit.unit_name.contains('（'))
        }) {
            order.swap(0, pos);
        }
        let wanted = self.params.audit_findings;
        let audited = match wanted {
            None => (units / 8).max(3).min(units),
            Some(n) => n.min(units),
        };
        let by_unit = self.projects_by_unit();
        // Found between July of last year and 40 days before the last day.
        let found_from = cal.index(cal.prev_year_day(181));
        let found_to = cal.index(cal.last_day) - 40;
        let mut finding_seq = 0u32;
        let mut report_seq = 0u32;
        for (position, &u) in order.iter().take(audited).enumerate() {
            let Some(unit) = self.ds.units.get(u) else {
                continue;
            };
            let count = match wanted {
                None => rng.usize(1..=2),
                // `audited` is not 0 here: the loop runs over that many units.
                Some(n) => n / audited + usize::from(position < n % audited),
            };
            for _ in 0..count {
                if found_from > found_to {
                    break;
                }
                finding_seq += 1;
                let found_on = add_days(cal.jan1, rng.i64(found_from..=found_to));
                let status = match rng.u32(0..100) {
                    0..40 => FindingStatus::Rectified,
                    40..75 => FindingStatus::InProgress,
                    _ => FindingStatus::Open,
                };
                let mut deadline = add_days(found_on, rng.i64(90..=180));
                if status != FindingStatus::Rectified && deadline < cal.as_of {
                    deadline = add_days(cal.as_of, rng.i64(15..=120));
                }
                let candidates = by_unit.get(u).map(Vec::as_slice).unwrap_or(&[]);
                // Every third finding concerns the unit as a whole.
                let project_code = if !candidates.is_empty() && !finding_seq.is_multiple_of(3) {
                    candidates
                        .get(rng.usize(0..candidates.len()))
                        .and_then(|&p| self.facts.get(p))
                        .and_then(|f| f.code.clone())
                } else {
                    None
                };
                let finding_no = format!("SJ-{}-{finding_seq:04}", cal.year);
                self.ds.findings.push(AuditFinding {
                    finding_no: finding_no.clone(),
                    unit_name: if finding_seq == 1 {
                        half_width(&unit.unit_name)
                    } else {
                        audit_spelling(&mut rng, &unit.unit_name)
                    },
                    project_code,
                    category: names::AUDIT_PROBLEMS[rng.usize(0..names::AUDIT_PROBLEMS.len())]
                        .to_owned(),
                    amount: Fen(rng.i64(100..=50_000) * STEP_100_YUAN),
                    status,
                    deadline,
                    found_on,
                });
                let report = match status {
                    FindingStatus::Rectified => Some(RectificationStatus::Rectified),
                    FindingStatus::InProgress => Some(RectificationStatus::InProgress),
                    FindingStatus::Open => None,
                };
                if let Some(report) = report {
                    let from = cal.index(found_on) + 10;
                    let to = cal.index(cal.last_day) - 1;
                    let reported_on = add_days(cal.jan1, rng.i64(from..=to.max(from)));
                    report_seq += 1;
                    self.ds.rectifications.push(Rectification {
                        report_id: format!("ZG{}{report_seq:05}", cal.year),
                        finding_no,
                        status: report,
                        reported_on,
                        updated_at: office_time(&mut rng, reported_on),
                    });
                }
            }
        }
    }

    /// Referrals for about 1.5% of projects. A freeze that is still in force
    /// only sits on a project whose payments are all done, so the clean
    /// dataset has no breach.
    fn referrals(&mut self) {
        let mut rng = self.rng(6);
        let cal = &self.cal;
        let active: Vec<usize> = (0..self.facts.len())
            .filter(|&i| self.facts.get(i).is_some_and(Facts::active))
            .collect();
        if active.is_empty() {
            return;
        }
        let count = self
            .params
            .referrals
            .unwrap_or((self.facts.len() * 15 / 1000).max(2));
        for n in 1..=count {
            let Some(f) = active
                .get(rng.usize(0..active.len()))
                .and_then(|&i| self.facts.get(i))
            else {
                continue;
            };
            let Some(unit_code) = self.unit_codes.get(f.unit).cloned() else {
                continue;
            };
            let whole_unit = rng.u32(0..100) < 25;
            let Some(received_on) = cal.random_day(&mut rng, 14, 364) else {
                continue;
            };
            let status = match rng.u32(0..100) {
                0..30 => ReferralStatus::Received,
                30..70 => ReferralStatus::Verifying,
                _ => ReferralStatus::Closed,
            };
            let origin = match rng.u32(0..4) {
                0 => ReferralOrigin::Audit,
                1 => ReferralOrigin::Finance,
                2 => ReferralOrigin::Npc,
                _ => ReferralOrigin::Public,
            };
            let wants_freeze = rng.u32(0..100) < 60;
            let freeze_from = match status {
                ReferralStatus::Closed if wants_freeze => {
                    Some(add_days(received_on, rng.i64(1..=20)).min(cal.last_day))
                }
                ReferralStatus::Closed => None,
                _ if wants_freeze && !whole_unit && f.complete => {
                    let after_last = f.last_paid.map(|d| add_days(d, 1));
                    Some(after_last.map_or(received_on, |d| d.max(received_on)))
                }
                _ => None,
            };
            let changed_on = add_days(received_on, rng.i64(0..=10)).min(cal.last_day);
            self.ds.referrals.push(Referral {
                referral_id: format!("XS{}{n:05}", cal.year),
                unit_code,
                project_code: if whole_unit { None } else { f.code.clone() },
                received_on,
                status,
                freeze: freeze_from.is_some(),
                freeze_from,
                origin,
                changed_at: office_time(&mut rng, changed_on),
            });
        }
    }

    /// One evaluation per unit per ended quarter. The rate the unit reports is
    /// the true one: Σ expenditures ÷ Σ quota over its active projects at the
    /// quarter's end, to hundredths of a percent.
    fn orgdept(&mut self) {
        let mut rng = self.rng(7);
        let units = self.ds.units.len();
        for q in 1..=4u8 {
            let end = self.cal.quarter_end(q);
            if end > self.cal.last_day {
                break;
            }
            let idx = usize::from(q - 1);
            let mut spent = vec![0i64; units];
            let mut quota = vec![0i64; units];
            for f in self.facts.iter().filter(|f| f.active()) {
                if let (Some(s), Some(qt)) = (spent.get_mut(f.unit), quota.get_mut(f.unit)) {
                    *s += f.quarter_exp.get(idx).copied().unwrap_or(0);
                    *qt += f.quarter_quota.get(idx).copied().unwrap_or(0);
                }
            }
            for (u, unit) in self.ds.units.iter().enumerate() {
                let s = spent.get(u).copied().unwrap_or(0);
                let qt = quota.get(u).copied().unwrap_or(0);
                let rate = if qt > 0 {
                    // Half up: (2 × 10000 × s + qt) ÷ (2 × qt).
                    let num = 20_000 * i128::from(s) + i128::from(qt);
                    i64::try_from(num / (2 * i128::from(qt))).unwrap_or(0)
                } else {
                    0
                };
                let score = score(&mut rng, 6000, 10_000);
                self.ds.orgdept.push(OrgdeptEvaluation {
                    unit_code: unit.unit_code.clone(),
                    unit_name: unit.unit_name.clone(),
                    year: self.cal.year,
                    quarter: q,
                    reported_rate: Centi(rate),
                    score,
                    grade: grade_of(score),
                });
            }
        }
    }

    /// Indexes of each unit's projects that have a quota this year.
    fn projects_by_unit(&self) -> Vec<Vec<usize>> {
        let mut by_unit = vec![Vec::new(); self.unit_codes.len()];
        for (i, f) in self.facts.iter().enumerate() {
            if f.has_quota
                && let Some(list) = by_unit.get_mut(f.unit)
            {
                list.push(i);
            }
        }
        by_unit
    }
}

fn project_code(start_year: i32, seq: usize) -> Option<ProjectCode> {
    ProjectCode::parse(&format!("{REGION}{start_year:04}{seq:06}")).ok()
}

/// The name with half-width brackets, as the audit office often types it.
fn half_width(name: &str) -> String {
    name.replace('（', "(").replace('）', ")")
}

/// The unit name as the audit office writes it: the finance name, with
/// brackets sometimes half-width and sometimes stray spaces.
fn audit_spelling(rng: &mut Rng, name: &str) -> String {
    match rng.u32(0..5) {
        0 | 1 if name.contains('（') => half_width(name),
        2 => {
            // A space after the district, where a clerk would put one.
            let cut = name
                .char_indices()
                .find(|(_, c)| matches!(c, '市' | '区' | '县'))
                .map(|(i, c)| i + c.len_utf8());
            match cut.and_then(|i| name.split_at_checked(i)) {
                Some((head, tail)) if !tail.is_empty() => format!("{head} {tail}"),
                _ => format!("{name} "),
            }
        }
        3 => format!("{name}\u{3000}"),
        _ => name.to_owned(),
    }
}

/// A project's year, planned to December before the as-of cut.
pub(super) struct YearPlan {
    approved_day: i64,
    initial: i64,
    /// (kind, amount as finance sends it, approved_on).
    pub(super) quotas: Vec<(QuotaKind, i64, NaiveDate)>,
    /// (kind, amount, paid_on), in date order per tranche.
    pub(super) payments: Vec<(PaymentKind, i64, NaiveDate)>,
}

/// Plans one project's quota and payments for the whole year.
///
/// The shape keeps every execution rule quiet. Allocations come in 1–4
/// tranches (3–4, 65–75 days apart, for full-year projects, so no lump sum);
/// tranche `k` pays for the year up to ten days past the next release, so
/// spending keeps pace with time; each tranche is spent over the days up to
/// just past the next release but within 80 days, before the three-month
/// settlement limit, so the unit neither idles nor lags going into the last
/// quarter; the last tranche is spent by mid-December.
fn plan_year(
    rng: &mut Rng,
    cal: &Calendar,
    category: Option<ProjectCategory>,
    full_year: bool,
) -> YearPlan {
    let initial = match rng.u32(0..100) {
        0..40 => rng.i64(500..=5_000),
        40..80 => rng.i64(5_000..=50_000),
        _ => rng.i64(50_000..=200_000),
    } * STEP_100_YUAN;
    let approved_day = rng.i64(3..=31);
    let approved_on = cal.day(approved_day);
    let spends = category != Some(ProjectCategory::Reserve);

    let n: i64 = if full_year {
        rng.i64(3..=4)
    } else {
        rng.i64(1..=2)
    };
    let first = approved_day + rng.i64(2..=7);
    let interval = if full_year {
        rng.i64(65..=75)
    } else {
        rng.i64(80..=140)
    };
    let days: Vec<i64> = (0..n)
        .map(|k| {
            let jitter = if k == 0 { 0 } else { rng.i64(-3..=3) };
            first + k * interval + jitter
        })
        .collect();

    let mut quotas = vec![(QuotaKind::Initial, initial, approved_on)];
    let change = rng.u32(0..100);
    let pct_up = rng.i64(5..=20);
    let pct_down = rng.i64(5..=10);
    let pct_reclaim = rng.i64(3..=8);
    let last_release = days.last().copied().unwrap_or(first);
    // A cut lands within 150 days of the last release: until it lands, the
    // money it will take sits unspent, and longer would be idle funds.
    let cut_by = last_release + 150;
    match change {
        // A rise comes before the last tranche, which is large enough to
        // carry it: no earlier allocation may exceed the quota of its day.
        0..8 if days.len() >= 2 && spends => {
            let day = cal.day(rng.i64(59..=(last_release - 1).max(59)));
            quotas.push((
                QuotaKind::Adjustment,
                share(initial, pct_up, 100, STEP_100_YUAN),
                day,
            ));
        }
        0..13 => {
            let day = cal.day(rng.i64(59..=cut_by.min(242)));
            quotas.push((
                QuotaKind::Adjustment,
                -share(initial, pct_down, 100, STEP_100_YUAN),
                day,
            ));
        }
        13..18 => {
            let day = cal.day(rng.i64(151..=cut_by.min(272)));
            quotas.push((
                QuotaKind::Reclaim,
                share(initial, pct_reclaim, 100, STEP_100_YUAN),
                day,
            ));
        }
        _ => {}
    }
    quotas.retain(|q| q.1 != 0);
    let total: i64 = quotas
        .iter()
        .map(|q| match q.0 {
            QuotaKind::Reclaim => -q.1,
            _ => q.1,
        })
        .sum();

    let mut payments = Vec::new();
    if spends && total > 0 {
        let mut covered = 0i64;
        let mut allocated = 0i64;
        for (k, &day) in days.iter().enumerate() {
            let next = days.get(k + 1).copied();
            let upto = next.map_or(cal.days_in_year, |next| (next + 10).min(cal.days_in_year));
            let amount = if next.is_none() {
                total - allocated
            } else {
                share(total, upto - covered, cal.days_in_year, YUAN)
            };
            covered = upto;
            allocated += amount;
            // Spending runs on until just past the next release, so the unit
            // is never idle long, but always ends within 80 days.
            let span = match next {
                Some(next) => (next - day + 5).clamp(45, 78),
                None => rng.i64(60..=78),
            };
            if amount <= 0 {
                continue;
            }
            payments.push((PaymentKind::Allocation, amount, cal.day(day)));
            spend_tranche(rng, cal, day, span, amount, &mut payments);
        }
    }
    YearPlan {
        approved_day,
        initial,
        quotas,
        payments,
    }
}

/// Splits a tranche into 4–10 expenditures over the `span` days after its
/// release, the first within three days.
fn spend_tranche(
    rng: &mut Rng,
    cal: &Calendar,
    released: i64,
    span: i64,
    amount: i64,
    out: &mut Vec<(PaymentKind, i64, NaiveDate)>,
) {
    let m = rng.i64(4..=10);
    let weights: Vec<i64> = (0..m).map(|_| rng.i64(1..=3)).collect();
    let total_weight: i64 = weights.iter().sum();
    let mut spent = 0i64;
    for (j, w) in (0i64..).zip(&weights) {
        let part = if j + 1 == m {
            amount - spent
        } else {
            share(amount, *w, total_weight, YUAN)
        };
        spent += part;
        let day = (released + 1 + span * j / m + rng.i64(0..=2)).min(353);
        if part > 0 {
            out.push((PaymentKind::Expenditure, part, cal.day(day)));
        }
    }
}
