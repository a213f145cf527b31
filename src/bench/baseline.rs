//! The baseline: the `sqlite3` shell importing the simulator's data as CSV
//! and computing the core of the reconciliation in SQL, timed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use chrono::NaiveDate;
use serde::Serialize;

use super::scale::{Baseline, BenchError, BenchOptions, io};
use crate::model::Collection;
use crate::sim::SimData;

/// The sqlite3 shell's part: import the CSVs, then the SQL, each timed.
pub(super) async fn run_baseline(
    options: &BenchOptions,
    dir: &Path,
) -> Result<Baseline, BenchError> {
    let csv = dir.join("csv");
    let db = dir.join("baseline.db");
    let (import, query) = baseline_sql(&csv, options.as_of);
    let run = |sql: String, name: &'static str| {
        let sqlite3 = options.sqlite3.clone();
        let db = db.clone();
        let script = dir.join(name);
        async move {
            std::fs::write(&script, &sql).map_err(io(script.display()))?;
            tokio::task::spawn_blocking(move || {
                let input = std::fs::File::open(&script).map_err(io(script.display()))?;
                let started = Instant::now();
                let output = Command::new(&sqlite3)
                    .arg(&db)
                    .stdin(Stdio::from(input))
                    .output()
                    .map_err(io(format!("cannot run {}", sqlite3.display())))?;
                let took = started.elapsed();
                if !output.status.success() || !output.stderr.is_empty() {
                    return Err(BenchError::Baseline(format!(
                        "{} {} < {}: {}{}",
                        sqlite3.display(),
                        db.display(),
                        script.display(),
                        output.status,
                        String::from_utf8_lossy(&output.stderr)
                    )));
                }
                Ok((took, String::from_utf8_lossy(&output.stdout).into_owned()))
            })
            .await
            .map_err(|e| BenchError::Baseline(e.to_string()))?
        }
    };
    let (import_took, _) = run(import, "baseline_import.sql").await?;
    let (query_took, printed) = run(query, "baseline_query.sql").await?;
    let count = |name: &str| -> Result<u64, BenchError> {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('|')?.trim().parse().ok())
            .ok_or_else(|| BenchError::Baseline(format!("no {name} count in {printed:?}")))
    };
    Ok(Baseline {
        seconds: (import_took + query_took).as_secs_f64(),
        import_seconds: import_took.as_secs_f64(),
        query_seconds: query_took.as_secs_f64(),
        progress_rows: count("progress")?,
        mirror_mismatches: count("mirror_mismatch")?,
        approved_mismatches: count("approved_mismatch")?,
    })
}

/// The CSV files the baseline imports, as written by [`export_csv`].
pub const CSV_FILES: [&str; 5] = [
    "projects.csv",
    "quotas.csv",
    "payments.csv",
    "npc_budgets.csv",
    "npc_execution.csv",
];

/// The baseline's two scripts: the import, then the SQL. Written as an
/// analyst would with the shell: typed tables, `.import`, one index on
/// payments for the month-end lookups, and plain SQL. Money is integer fen,
/// as in the CSV.
pub fn baseline_sql(csv: &Path, as_of: NaiveDate) -> (String, String) {
    let year = chrono::Datelike::year(&as_of);
    let file = |name: &str| sql_quote(&csv.join(name).display().to_string());
    let import = format!(
        "CREATE TABLE projects (project_code TEXT PRIMARY KEY, unit_code TEXT, category TEXT, full_year INTEGER, start_year INTEGER);\n\
         CREATE TABLE quotas (quota_id TEXT, project_code TEXT, fiscal_year INTEGER, kind TEXT, amount INTEGER, approved_on TEXT);\n\
         CREATE TABLE payments (payment_id TEXT, project_code TEXT, kind TEXT, amount INTEGER, paid_on TEXT);\n\
         CREATE TABLE npc_budgets (project_code TEXT, year INTEGER, approved INTEGER, adjustment INTEGER, approved_on TEXT);\n\
         CREATE TABLE npc_execution (project_code TEXT, year INTEGER, as_of TEXT, cumulative INTEGER);\n\
         .import --csv --skip 1 {} projects\n\
         .import --csv --skip 1 {} quotas\n\
         .import --csv --skip 1 {} payments\n\
         .import --csv --skip 1 {} npc_budgets\n\
         .import --csv --skip 1 {} npc_execution\n",
        file("projects.csv"),
        file("quotas.csv"),
        file("payments.csv"),
        file("npc_budgets.csv"),
        file("npc_execution.csv"),
    );
    let query = format!(
        "CREATE INDEX payments_by_project ON payments (project_code, kind, paid_on, amount);\n\
         CREATE TABLE quota (project_code TEXT PRIMARY KEY, quota INTEGER);\n\
         INSERT INTO quota SELECT project_code, \
           SUM(CASE WHEN kind = 'reclaim' THEN -amount ELSE amount END) \
           FROM quotas WHERE fiscal_year = {year} GROUP BY project_code;\n\
         CREATE TABLE approved (project_code TEXT PRIMARY KEY, approved INTEGER);\n\
         INSERT INTO approved SELECT project_code, SUM(approved + adjustment) FROM npc_budgets \
           WHERE year = {year} GROUP BY project_code;\n\
         CREATE TABLE spent (project_code TEXT PRIMARY KEY, spent INTEGER);\n\
         INSERT INTO spent SELECT project_code, SUM(amount) FROM payments \
           WHERE kind = 'expenditure' AND paid_on BETWEEN '{year}-01-01' AND '{as_of}' \
           GROUP BY project_code;\n\
         -- Execution progress per project: expenditure to date over net quota.\n\
         CREATE TABLE progress AS SELECT p.project_code, q.quota, COALESCE(s.spent, 0) AS spent, \
           CASE WHEN q.quota <> 0 THEN 1.0 * COALESCE(s.spent, 0) / q.quota END AS progress \
           FROM projects p JOIN quota q ON q.project_code = p.project_code \
           LEFT JOIN spent s ON s.project_code = p.project_code;\n\
         -- The congress's approvals against finance's net quotas, either side missing included.\n\
         CREATE TABLE approved_mismatch AS \
           SELECT a.project_code, a.approved, q.quota FROM approved a \
             LEFT JOIN quota q ON q.project_code = a.project_code \
             WHERE q.quota IS NULL OR a.approved <> q.quota \
           UNION ALL SELECT q.project_code, NULL, q.quota FROM quota q WHERE q.quota > 0 \
             AND NOT EXISTS (SELECT 1 FROM approved a WHERE a.project_code = q.project_code);\n\
         -- The execution mirror against finance's cumulative expenditure to each date.\n\
         CREATE TABLE mirror_mismatch AS SELECT * FROM (SELECT x.project_code, x.as_of, x.cumulative, \
           (SELECT COALESCE(SUM(f.amount), 0) FROM payments f WHERE f.project_code = x.project_code \
             AND f.kind = 'expenditure' AND f.paid_on BETWEEN '{year}-01-01' AND x.as_of) AS spent \
           FROM npc_execution x WHERE x.year = {year} AND x.as_of <= '{as_of}') WHERE cumulative <> spent;\n\
         SELECT 'progress', COUNT(*) FROM progress;\n\
         SELECT 'approved_mismatch', COUNT(*) FROM approved_mismatch;\n\
         SELECT 'mirror_mismatch', COUNT(*) FROM mirror_mismatch;\n"
    );
    (import, query)
}

fn sql_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Writes the baseline's CSV files (see [`CSV_FILES`]) from the simulator's
/// data: canonical values (codes without dashes, money in fen, ISO dates),
/// live records only. Returns the number of rows of each file.
pub fn export_csv(data: &SimData, dir: &Path) -> Result<Vec<(&'static str, usize)>, BenchError> {
    std::fs::create_dir_all(dir).map_err(io(dir.display()))?;
    let ds = data.dataset();
    let mut counts = Vec::new();
    let mut write = |name: &'static str,
                     header: &[&str],
                     rows: &mut dyn Iterator<Item = Vec<String>>|
     -> Result<(), BenchError> {
        let path = dir.join(name);
        let fail = |e: csv::Error| BenchError::Io(path.display().to_string(), e.into());
        let mut w = csv::Writer::from_path(&path).map_err(fail)?;
        w.write_record(header).map_err(fail)?;
        let mut n = 0;
        for row in rows {
            w.write_record(&row).map_err(fail)?;
            n += 1;
        }
        w.flush().map_err(io(path.display()))?;
        counts.push((name, n));
        Ok(())
    };
    write(
        "projects.csv",
        &[
            "project_code",
            "unit_code",
            "category",
            "full_year",
            "start_year",
        ],
        &mut ds
            .projects
            .iter()
            .filter(|p| !data.is_deleted(Collection::Projects, p.project_code.as_str()))
            .map(|p| {
                vec![
                    p.project_code.to_string(),
                    p.unit_code.to_string(),
                    word(&p.category),
                    u8::from(p.full_year).to_string(),
                    p.start_year.to_string(),
                ]
            }),
    )?;
    write(
        "quotas.csv",
        &[
            "quota_id",
            "project_code",
            "fiscal_year",
            "kind",
            "amount",
            "approved_on",
        ],
        &mut ds.quotas.iter().map(|q| {
            vec![
                q.quota_id.clone(),
                q.project_code.to_string(),
                q.fiscal_year.to_string(),
                word(&q.kind),
                q.amount.0.to_string(),
                q.approved_on.to_string(),
            ]
        }),
    )?;
    write(
        "payments.csv",
        &["payment_id", "project_code", "kind", "amount", "paid_on"],
        &mut ds
            .payments
            .iter()
            .filter(|p| !data.is_deleted(Collection::Payments, &p.payment_id))
            .map(|p| {
                vec![
                    p.payment_id.clone(),
                    p.project_code.to_string(),
                    word(&p.kind),
                    p.amount.0.to_string(),
                    p.paid_on.to_string(),
                ]
            }),
    )?;
    write(
        "npc_budgets.csv",
        &[
            "project_code",
            "year",
            "approved",
            "adjustment",
            "approved_on",
        ],
        &mut ds.budgets.iter().map(|b| {
            vec![
                b.project_code.to_string(),
                b.year.to_string(),
                b.approved.0.to_string(),
                b.adjustment.0.to_string(),
                b.approved_on.to_string(),
            ]
        }),
    )?;
    write(
        "npc_execution.csv",
        &["project_code", "year", "as_of", "cumulative"],
        &mut ds.execution.iter().map(|x| {
            vec![
                x.project_code.to_string(),
                x.year.to_string(),
                x.as_of.to_string(),
                x.cumulative.0.to_string(),
            ]
        }),
    )?;
    Ok(counts)
}

/// An enumeration's serde word (`expenditure`, `reclaim`, …).
fn word<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
