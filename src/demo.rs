//! Pointing a daemon at the built-in simulator: the config that reaches all
//! five simulated systems, with its secret files, for `liankong sim`,
//! `liankong demo` and the tests.

use std::path::{Path, PathBuf};

use crate::sim::{CREDENTIALS, Simulator};

/// How the generated config should pull.
#[derive(Debug, Clone)]
pub struct SimConfigOptions {
    /// The store URL to write into the config.
    pub store_url: String,
    /// Where the shipped manifests are (the repository's `adapters/`).
    pub manifests: PathBuf,
    /// Fast retries for tests; the defaults otherwise.
    pub quick_retries: bool,
}

/// The repository's `adapters/` directory, as built (for tests: an
/// installed binary may run where it does not exist, see [`MANIFESTS`]).
pub fn shipped_manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters")
}

/// The five shipped manifests (name, text), built into the binary so that
/// `demo` and `sim` run wherever it is installed.
pub const MANIFESTS: [(&str, &str); 5] = [
    ("audit", include_str!("../adapters/audit.toml")),
    ("discipline", include_str!("../adapters/discipline.toml")),
    ("finance", include_str!("../adapters/finance.toml")),
    ("npc", include_str!("../adapters/npc.toml")),
    ("orgdept", include_str!("../adapters/orgdept.toml")),
];

/// Writes [`MANIFESTS`] as `dir/NAME.toml` and returns `dir`.
pub fn write_manifests(dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in MANIFESTS {
        std::fs::write(dir.join(format!("{name}.toml")), text)?;
    }
    Ok(dir.to_owned())
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Writes the simulator's secrets as files under `<sim dir>/secrets/` and
/// returns the text of a daemon config that reaches all five systems.
pub fn sim_config(sim: &Simulator, options: &SimConfigOptions) -> std::io::Result<String> {
    let secrets = sim.dir().join("secrets");
    std::fs::create_dir_all(&secrets)?;
    let secret = |name: &str, value: &str| -> std::io::Result<String> {
        let path = secrets.join(name);
        std::fs::write(&path, value)?;
        Ok(toml_str(&format!("file:{}", path.display())))
    };
    let finance_id = secret("finance_client_id", CREDENTIALS.finance_client_id)?;
    let finance_secret = secret("finance_client_secret", CREDENTIALS.finance_client_secret)?;
    let npc_key = secret("npc_api_key", CREDENTIALS.npc_api_key)?;
    let discipline_token = secret("discipline_token", CREDENTIALS.discipline_token)?;
    let pki = sim.pki_dir();
    let client_key = toml_str(&format!("file:{}", pki.join("client.key").display()));
    let manifest = |name: &str| toml_str(&options.manifests.join(name).display().to_string());
    let path = |p: PathBuf| toml_str(&p.display().to_string());
    let retries = if options.quick_retries {
        "[sync]\nretry_attempts = 5\nretry_min_delay_ms = 10\nretry_max_delay_ms = 200\n\n"
    } else {
        ""
    };
    Ok(format!(
        "# Generated for the built-in simulator in {dir}.\n\
         [store]\nurl = {store}\n\n{retries}\
         [adapters.finance]\nmanifest = {fm}\nschedule = \"*/5 * * * *\"\nbase_url = {fu}\n\
         secrets = {{ client_id = {finance_id}, client_secret = {finance_secret} }}\n\n\
         [adapters.npc]\nmanifest = {nm}\nschedule = \"*/5 * * * *\"\nbase_url = {nu}\n\
         secrets = {{ api_key = {npc_key} }}\n\n\
         [adapters.audit]\nmanifest = {am}\nschedule = \"*/5 * * * *\"\ndir = {ad}\n\n\
         [adapters.discipline]\nmanifest = {dm}\nschedule = \"*/5 * * * *\"\nbase_url = {du}\n\
         secrets = {{ token = {discipline_token} }}\n\
         tls = {{ ca = {ca}, client_cert = {cert}, client_key = {client_key} }}\n\n\
         [adapters.orgdept]\nmanifest = {om}\nschedule = \"*/5 * * * *\"\ndir = {od}\n",
        dir = sim.dir().display(),
        store = toml_str(&options.store_url),
        fm = manifest("finance.toml"),
        fu = toml_str(&sim.finance_url()),
        nm = manifest("npc.toml"),
        nu = toml_str(&sim.npc_url()),
        am = manifest("audit.toml"),
        ad = path(sim.audit_dir()),
        dm = manifest("discipline.toml"),
        du = toml_str(&sim.discipline_url()),
        ca = path(pki.join("ca.pem")),
        cert = path(pki.join("client.pem")),
        om = manifest("orgdept.toml"),
        od = path(sim.orgdept_dir()),
    ))
}

/// The unit that holds every planted anomaly.
pub const PLANTED_UNIT: &str = "379901";
pub const PLANTED_UNIT_NAME: &str = "市联控演示中心（本级）";

/// The planted projects, each made to break one rule as of 30 September 2021
/// (and a few more as of 15 October, once the year-end rule applies).
pub mod planted {
    pub const SLOW: &str = "3701002021990001";
    pub const IDLE: &str = "3701002021990002";
    pub const LUMP: &str = "3701002021990003";
    pub const TRANCHE: &str = "3701002021990004";
    pub const TARGET: &str = "3701002021990005";
    pub const EVAL: &str = "3701002021990006";
    pub const OVER: &str = "3701002021990007";
    pub const NPC: &str = "3701002021990008";
    pub const MIRROR: &str = "3701002021990009";
    /// Named by the congress only.
    pub const UNKNOWN: &str = "3701002021990099";
    pub const REFERRAL: &str = "XS-2021-9901";
    pub const FINDING_RECTIFIED: &str = "SJ-2021-9901";
    pub const FINDING_OVERDUE: &str = "SJ-2021-9902";
    pub const FINDING_UNRESOLVED: &str = "SJ-2021-9903";
}

/// Plants one anomaly per rule into the simulator's data (year 2021), and
/// returns what a reconciliation as of 30 September 2021 should raise:
/// (rule, the project, finding, referral or unit it concerns).
pub fn plant_anomalies(data: &crate::sim::SimDataHandle) -> Vec<(&'static str, &'static str)> {
    use planted::*;
    match planted_records() {
        Ok(records) => {
            for r in records {
                data.upsert(r);
            }
        }
        Err(e) => {
            // The planted codes are literals; this would be a bug here.
            tracing::error!(error = %e, "cannot plant the demo's anomalies");
            return Vec::new();
        }
    }
    vec![
        ("budget.approved_mismatch", NPC),
        ("execution.mirror_mismatch", MIRROR),
        ("execution.slow", SLOW),
        ("funds.idle", IDLE),
        ("disbursement.lump_sum", LUMP),
        ("disbursement.tranche_unsettled", TRANCHE),
        ("target.missing", TARGET),
        ("evaluation.result_unapplied", EVAL),
        ("audit.status_mismatch", FINDING_RECTIFIED),
        ("audit.overdue", FINDING_OVERDUE),
        ("referral.freeze_breach", REFERRAL),
        ("orgdept.rate_mismatch", PLANTED_UNIT),
        ("payment.over_quota", OVER),
        ("link.unknown_project", UNKNOWN),
        // The congress approved a project finance never sent: a mismatch too.
        ("budget.approved_mismatch", UNKNOWN),
        ("link.unresolved_unit", FINDING_UNRESOLVED),
    ]
}

fn planted_records() -> Result<Vec<crate::model::Record>, crate::model::ModelError> {
    use crate::model::*;
    use crate::money::Fen;
    use chrono::{DateTime, NaiveDate, Utc};
    use planted::*;

    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default();
    let t = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    };
    let stamp = t("2021-09-30T18:00:00+08:00");
    let pc = ProjectCode::parse;
    let unit = UnitCode::parse(PLANTED_UNIT)?;
    let mut records: Vec<Record> = vec![Record::Unit(Unit {
        unit_code: unit.clone(),
        unit_name: PLANTED_UNIT_NAME.into(),
        parent_code: None,
        updated_at: stamp,
    })];
    let mut project = |c: &str,
                       category: ProjectCategory,
                       full_year: bool,
                       quota_yuan: i64,
                       year: i32|
     -> Result<(), ModelError> {
        records.push(Record::Project(Project {
            project_code: pc(c)?,
            unit_code: unit.clone(),
            project_name: format!("演示项目{}", c.get(10..).unwrap_or(c)),
            category,
            full_year,
            start_year: year,
            end_year: None,
            updated_at: stamp,
        }));
        records.push(Record::Quota(Quota {
            quota_id: format!("ZB-{c}-{year}"),
            project_code: pc(c)?,
            fiscal_year: year,
            kind: QuotaKind::Initial,
            amount: Fen(quota_yuan * 100),
            approved_on: d(&format!("{year}-01-15")),
            updated_at: stamp,
        }));
        Ok(())
    };
    project(SLOW, ProjectCategory::Basic, false, 1_000_000, 2021)?;
    project(IDLE, ProjectCategory::Basic, false, 500_000, 2021)?;
    project(LUMP, ProjectCategory::Basic, true, 6_000_000, 2021)?;
    project(TRANCHE, ProjectCategory::Basic, false, 1_000_000, 2021)?;
    project(TARGET, ProjectCategory::Special, false, 300_000, 2021)?;
    project(EVAL, ProjectCategory::Basic, false, 1_000_000, 2021)?;
    project(OVER, ProjectCategory::Basic, false, 100_000, 2021)?;
    project(NPC, ProjectCategory::Basic, false, 1_000_000, 2021)?;
    project(MIRROR, ProjectCategory::Basic, false, 1_000_000, 2021)?;
    // Last year's quota of EVAL, and its poor evaluation.
    records.push(Record::Quota(Quota {
        quota_id: format!("ZB-{EVAL}-2020"),
        project_code: pc(EVAL)?,
        fiscal_year: 2020,
        kind: QuotaKind::Initial,
        amount: Fen(100_000_000),
        approved_on: d("2020-01-15"),
        updated_at: stamp,
    }));
    records.push(Record::Evaluation(Evaluation {
        evaluation_id: format!("PJ-{EVAL}-2020"),
        project_code: pc(EVAL)?,
        fiscal_year: 2020,
        score: Centi(7000),
        grade: Grade::Fair,
        updated_at: stamp,
    }));
    let mut n = 0;
    let mut pay = |c: &str, kind: PaymentKind, yuan_fen: i64, on: &str| -> Result<(), ModelError> {
        n += 1;
        records.push(Record::Payment(Payment {
            payment_id: format!("ZF-9901-{n:04}"),
            project_code: pc(c)?,
            kind,
            amount: Fen(yuan_fen),
            paid_on: d(on),
            updated_at: stamp,
        }));
        Ok(())
    };
    use PaymentKind::{Allocation, Expenditure};
    pay(SLOW, Expenditure, 20_000_000, "2021-09-20")?;
    pay(IDLE, Expenditure, 40_000_000, "2021-03-01")?;
    pay(LUMP, Allocation, 300_000_000, "2021-08-01")?;
    pay(LUMP, Allocation, 300_000_000, "2021-09-01")?;
    pay(LUMP, Expenditure, 450_000_000, "2021-09-25")?;
    pay(TRANCHE, Allocation, 80_000_000, "2021-05-01")?;
    pay(TRANCHE, Expenditure, 75_000_000, "2021-09-25")?;
    pay(TARGET, Expenditure, 23_000_000, "2021-09-25")?;
    pay(EVAL, Expenditure, 75_000_000, "2021-09-25")?;
    pay(OVER, Allocation, 10_000_001, "2021-09-01")?;
    pay(OVER, Expenditure, 7_500_000, "2021-09-25")?;
    pay(NPC, Expenditure, 75_000_000, "2021-09-25")?;
    pay(MIRROR, Expenditure, 75_000_000, "2021-06-15")?;
    // The congress: approvals that match, but one, and one for a project
    // finance never sent; one execution figure off by a fen.
    for c in [
        SLOW, IDLE, LUMP, TRANCHE, TARGET, EVAL, OVER, MIRROR, NPC, UNKNOWN,
    ] {
        let quota_fen = match c {
            IDLE => 50_000_000,
            LUMP => 600_000_000,
            TARGET => 30_000_000,
            OVER => 10_000_000,
            NPC => 100_010_000,
            UNKNOWN => 5_000_000,
            _ => 100_000_000,
        };
        records.push(Record::ApprovedBudget(ApprovedBudget {
            project_code: pc(c)?,
            year: 2021,
            approved: Fen(quota_fen),
            adjustment: Fen(0),
            approved_on: d("2021-01-20"),
            updated_at: stamp,
        }));
    }
    records.push(Record::ExecutionMirror(ExecutionMirror {
        project_code: pc(MIRROR)?,
        year: 2021,
        as_of: d("2021-06-30"),
        cumulative: Fen(75_000_001),
        updated_at: stamp,
    }));
    // Discipline froze SLOW from 1 September; finance paid on 20 September.
    records.push(Record::Referral(Referral {
        referral_id: REFERRAL.into(),
        unit_code: unit.clone(),
        project_code: Some(pc(SLOW)?),
        received_on: d("2021-08-20"),
        status: ReferralStatus::Verifying,
        freeze: true,
        freeze_from: Some(d("2021-09-01")),
        origin: ReferralOrigin::Audit,
        changed_at: stamp,
    }));
    // Audit: a finding finance says is rectified, one overdue, one whose
    // unit nobody knows.
    let finding = |no: &str, name: &str, status: FindingStatus, deadline: &str| {
        Record::AuditFinding(AuditFinding {
            finding_no: no.into(),
            unit_name: name.into(),
            project_code: None,
            category: "演示问题".into(),
            amount: Fen(1_000_000),
            status,
            deadline: d(deadline),
            found_on: d("2021-03-01"),
        })
    };
    records.push(finding(
        FINDING_RECTIFIED,
        "市联控演示中心(本级)",
        FindingStatus::InProgress,
        "2021-12-31",
    ));
    records.push(finding(
        FINDING_OVERDUE,
        "市联控演示中心 （本级）",
        FindingStatus::Open,
        "2021-07-15",
    ));
    records.push(finding(
        FINDING_UNRESOLVED,
        "市联控演示中心分部",
        FindingStatus::InProgress,
        "2021-12-31",
    ));
    records.push(Record::Rectification(Rectification {
        report_id: "ZG-9901".into(),
        finding_no: FINDING_RECTIFIED.into(),
        status: RectificationStatus::Rectified,
        reported_on: d("2021-08-01"),
        updated_at: stamp,
    }));
    // The organization department: a rate the unit could not have reached.
    records.push(Record::OrgdeptEvaluation(OrgdeptEvaluation {
        unit_code: unit,
        unit_name: PLANTED_UNIT_NAME.into(),
        year: 2021,
        quarter: 3,
        reported_rate: Centi(9900),
        score: Centi(9500),
        grade: Grade::Excellent,
    }));
    Ok(records)
}

/// What finance's and the congress's systems show after the demo's actions
/// (`liankong demo`, step 3): finance's reclaim row for the first reclaim on
/// MIRROR, approved three days after it was taken, and the congress's
/// approval of that reduction (so that `budget.approved_mismatch` stays as
/// planted). The second reclaim and the revive are shown by nothing: the
/// rules that follow actions through fire for them.
pub fn action_followups(
    first_reclaim_on: chrono::NaiveDate,
) -> Result<Vec<crate::model::Record>, crate::model::ModelError> {
    use crate::model::*;
    use crate::money::Fen;
    use chrono::{DateTime, Duration, NaiveDate, Utc};
    use planted::*;
    // Later than everything planted, so that incremental pulls take them.
    let stamp = DateTime::parse_from_rfc3339("2021-09-30T19:00:00+08:00")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    Ok(vec![
        Record::Quota(Quota {
            quota_id: format!("ZB-{MIRROR}-SH1"),
            project_code: ProjectCode::parse(MIRROR)?,
            fiscal_year: 2021,
            kind: QuotaKind::Reclaim,
            amount: Fen(DEMO_RECLAIM_APPLIED),
            approved_on: first_reclaim_on + Duration::days(3),
            updated_at: stamp,
        }),
        Record::ApprovedBudget(ApprovedBudget {
            project_code: ProjectCode::parse(MIRROR)?,
            year: 2021,
            approved: Fen(100_000_000),
            adjustment: Fen(-DEMO_RECLAIM_APPLIED),
            approved_on: NaiveDate::from_ymd_opt(2021, 1, 20).unwrap_or_default(),
            updated_at: stamp,
        }),
    ])
}

/// The demo's first reclaim on MIRROR, which finance then applies (fen).
pub const DEMO_RECLAIM_APPLIED: i64 = 1_000_000;
