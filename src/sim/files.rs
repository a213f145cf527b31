//! The two file-drop systems: the audit office's GBK CSV snapshot
//! (`SYSTEMS.md` §3) and the organisation department's quarterly workbooks
//! (§5). Every file is written under a `.part` name and renamed into place,
//! as the agencies do, so a reader never sees half a file unless a test
//! leaves one on purpose.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rust_xlsxwriter::Workbook;

use super::error::SimError;
use super::format::{audit_date, finding_status_word, grade_word, wan_2};
use crate::model::{AuditFinding, OrgdeptEvaluation};
use crate::money::format_fixed;

/// The audit CSV's header, exactly.
pub const AUDIT_HEADER: [&str; 8] = [
    "问题编号",
    "被审计单位",
    "项目编码",
    "问题类型",
    "涉及金额",
    "整改状态",
    "整改期限",
    "发现日期",
];

/// The orgdept sheet's name.
pub const ORGDEPT_SHEET: &str = "部门考评";

/// The orgdept sheet's header, exactly.
pub const ORGDEPT_HEADER: [&str; 7] = [
    "单位编码",
    "单位名称",
    "年度",
    "季度",
    "预算执行率",
    "考评得分",
    "等级",
];

/// `audit_findings_YYYYMMDD.csv`.
pub fn audit_file_name(date: NaiveDate) -> String {
    format!("audit_findings_{}.csv", date.format("%Y%m%d"))
}

/// `kaoping_YYYYQn.xlsx`.
pub fn orgdept_file_name(year: i32, quarter: u8) -> String {
    format!("kaoping_{year}Q{quarter}.xlsx")
}

/// The audit snapshot as the office writes it: CSV with CRLF line ends (it
/// comes from Windows), quoted where needed, encoded in GBK.
pub fn audit_csv(findings: &[AuditFinding]) -> Result<Vec<u8>, SimError> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer.write_record(AUDIT_HEADER)?;
    for f in findings {
        writer.write_record([
            f.finding_no.as_str(),
            f.unit_name.as_str(),
            f.project_code.as_ref().map_or("", |c| c.as_str()),
            f.category.as_str(),
            &wan_2(f.amount),
            finding_status_word(f.status),
            &audit_date(f.deadline),
            &audit_date(f.found_on),
        ])?;
    }
    let utf8 = writer
        .into_inner()
        .map_err(|e| SimError::Csv(e.into_error().into()))?;
    let text = String::from_utf8_lossy(&utf8);
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&text);
    if unmappable {
        // encoding_rs would have written HTML entities; name the culprit.
        let bad: String = text
            .chars()
            .filter(|c| {
                let mut buf = [0u8; 4];
                encoding_rs::GBK.encode(c.encode_utf8(&mut buf)).2
            })
            .collect();
        return Err(SimError::Gbk(bad));
    }
    Ok(gbk.into_owned())
}

/// Writes a complete audit snapshot `dir/name`, atomically.
pub fn write_audit_file(
    dir: &Path,
    name: &str,
    findings: &[AuditFinding],
) -> Result<PathBuf, SimError> {
    write_atomically(dir, name, &audit_csv(findings)?)
}

/// Leaves `dir/name.part` holding the first half of the snapshot: a file the
/// audit office is still writing, which readers must ignore.
pub fn write_partial_audit_file(
    dir: &Path,
    name: &str,
    findings: &[AuditFinding],
) -> Result<PathBuf, SimError> {
    let bytes = audit_csv(findings)?;
    let half = bytes.get(..bytes.len() / 2).unwrap_or(&[]);
    let path = dir.join(format!("{name}.part"));
    std::fs::write(&path, half).map_err(SimError::io(&path))?;
    Ok(path)
}

/// One quarter's workbook. `预算执行率` is a number cell in odd data rows and
/// a text cell (`"47.50"`) in even ones, as units fill it in both ways; codes,
/// names and grades are text; year, quarter and score are numbers.
pub fn orgdept_workbook(rows: &[OrgdeptEvaluation]) -> Result<Vec<u8>, SimError> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name(ORGDEPT_SHEET)?;
    for (col, title) in (0u16..).zip(ORGDEPT_HEADER) {
        sheet.write_string(0, col, title)?;
    }
    for (row, r) in (1u32..).zip(rows) {
        sheet.write_string(row, 0, r.unit_code.as_str())?;
        sheet.write_string(row, 1, &r.unit_name)?;
        sheet.write_number(row, 2, f64::from(r.year))?;
        sheet.write_number(row, 3, f64::from(r.quarter))?;
        if row % 2 == 1 {
            sheet.write_number(row, 4, hundredths(r.reported_rate.0))?;
        } else {
            sheet.write_string(row, 4, format_fixed(r.reported_rate.0, 2))?;
        }
        sheet.write_number(row, 5, hundredths(r.score.0))?;
        sheet.write_string(row, 6, grade_word(r.grade))?;
    }
    Ok(workbook.save_to_buffer()?)
}

/// A rate or score in hundredths as the spreadsheet number it is.
fn hundredths(value: i64) -> f64 {
    // Rates and scores, never money; far below 2^53.
    #[allow(clippy::cast_precision_loss)]
    let v = value as f64;
    v / 100.0
}

/// Writes `dir/name` as one quarter's workbook, atomically.
pub fn write_orgdept_file(
    dir: &Path,
    name: &str,
    rows: &[OrgdeptEvaluation],
) -> Result<PathBuf, SimError> {
    write_atomically(dir, name, &orgdept_workbook(rows)?)
}

/// Writes one workbook per (year, quarter) present in `rows`, each named
/// `kaoping_YYYYQn.xlsx`; returns their paths.
pub fn write_orgdept_files(
    dir: &Path,
    rows: &[OrgdeptEvaluation],
) -> Result<Vec<PathBuf>, SimError> {
    let mut quarters: BTreeMap<(i32, u8), Vec<OrgdeptEvaluation>> = BTreeMap::new();
    for r in rows {
        quarters
            .entry((r.year, r.quarter))
            .or_default()
            .push(r.clone());
    }
    quarters
        .into_iter()
        .map(|((year, quarter), mut rows)| {
            rows.sort_by(|a, b| a.unit_code.cmp(&b.unit_code));
            write_orgdept_file(dir, &orgdept_file_name(year, quarter), &rows)
        })
        .collect()
}

/// Writes `bytes` to `dir/name.part`, then renames it to `dir/name`.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, SimError> {
    std::fs::create_dir_all(dir).map_err(SimError::io(dir))?;
    let part = dir.join(format!("{name}.part"));
    let path = dir.join(name);
    std::fs::write(&part, bytes).map_err(SimError::io(&part))?;
    std::fs::rename(&part, &path).map_err(SimError::io(&path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Centi, FindingStatus, Grade, ProjectCode, UnitCode};
    use crate::money::Fen;
    use calamine::{Data, Reader, Xlsx, open_workbook};

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn findings() -> Vec<AuditFinding> {
        vec![
            AuditFinding {
                finding_no: "SJ-2021-0042".to_owned(),
                unit_name: "济南市教育局(本级)".to_owned(),
                project_code: Some(ProjectCode::parse("3701002021000123").unwrap()),
                category: "项目管理不规范,资料不全".to_owned(),
                amount: Fen(125_000_000),
                status: FindingStatus::InProgress,
                deadline: date(2021, 12, 1),
                found_on: date(2021, 3, 5),
            },
            AuditFinding {
                finding_no: "SJ-2021-0043".to_owned(),
                unit_name: "历下区 民政局".to_owned(),
                project_code: None,
                category: "未执行\"三重一大\"决策制度".to_owned(),
                amount: Fen(10_000),
                status: FindingStatus::Rectified,
                deadline: date(2021, 10, 31),
                found_on: date(2020, 11, 12),
            },
        ]
    }

    #[test]
    fn the_audit_csv_is_gbk_with_the_exact_header() {
        let bytes = audit_csv(&findings()).unwrap();
        assert!(std::str::from_utf8(&bytes).is_err(), "not UTF-8");
        let (text, _, bad) = encoding_rs::GBK.decode(&bytes);
        assert!(!bad);
        let mut lines = text.split("\r\n");
        assert_eq!(
            lines.next().unwrap(),
            "问题编号,被审计单位,项目编码,问题类型,涉及金额,整改状态,整改期限,发现日期"
        );
        assert_eq!(
            lines.next().unwrap(),
            "SJ-2021-0042,济南市教育局(本级),3701002021000123,\"项目管理不规范,资料不全\",125.00,整改中,2021/12/1,2021/3/5"
        );
        assert_eq!(
            lines.next().unwrap(),
            "SJ-2021-0043,历下区 民政局,,\"未执行\"\"三重一大\"\"决策制度\",0.01,已整改,2021/10/31,2020/11/12"
        );
        // And a CSV reader gets the fields back.
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(&rows[1][3], "未执行\"三重一大\"决策制度");
        assert_eq!(&rows[1][2], "");
    }

    #[test]
    fn audit_files_appear_whole_or_as_part_files() {
        let dir = tempfile::tempdir().unwrap();
        let name = audit_file_name(date(2021, 9, 30));
        assert_eq!(name, "audit_findings_20210930.csv");
        let path = write_audit_file(dir.path(), &name, &findings()).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            audit_csv(&findings()).unwrap()
        );
        let part = write_partial_audit_file(dir.path(), "audit_findings_20211031.csv", &findings())
            .unwrap();
        assert!(
            part.to_string_lossy()
                .ends_with("audit_findings_20211031.csv.part")
        );
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "audit_findings_20210930.csv",
                "audit_findings_20211031.csv.part"
            ]
        );
    }

    #[test]
    fn gbk_refuses_what_it_cannot_encode() {
        let mut f = findings();
        f[0].unit_name = "단위".to_owned();
        assert!(matches!(audit_csv(&f), Err(SimError::Gbk(s)) if s == "단위"));
    }

    #[test]
    fn orgdept_workbooks_mix_number_and_text_rates() {
        let row = |unit: &str, rate: i64| OrgdeptEvaluation {
            unit_code: UnitCode::parse(unit).unwrap(),
            unit_name: format!("单位{unit}"),
            year: 2021,
            quarter: 2,
            reported_rate: Centi(rate),
            score: Centi(8750),
            grade: Grade::Good,
        };
        let rows = vec![row("370001", 4750), row("370002", 5012), row("370003", 0)];
        let dir = tempfile::tempdir().unwrap();
        let paths = write_orgdept_files(dir.path(), &rows).unwrap();
        assert_eq!(paths, [dir.path().join("kaoping_2021Q2.xlsx")]);
        let mut book: Xlsx<_> = open_workbook(&paths[0]).unwrap();
        assert_eq!(book.sheet_names(), [ORGDEPT_SHEET]);
        let range = book.worksheet_range(ORGDEPT_SHEET).unwrap();
        let cells: Vec<Vec<Data>> = range.rows().map(<[Data]>::to_vec).collect();
        let header: Vec<String> = cells[0].iter().map(ToString::to_string).collect();
        assert_eq!(header, ORGDEPT_HEADER);
        assert_eq!(cells[1][0], Data::String("370001".to_owned()));
        assert_eq!(cells[1][2], Data::Float(2021.0));
        assert_eq!(cells[1][3], Data::Float(2.0));
        assert_eq!(cells[1][4], Data::Float(47.5));
        assert_eq!(cells[2][4], Data::String("50.12".to_owned()));
        assert_eq!(cells[3][4], Data::Float(0.0));
        assert_eq!(cells[1][5], Data::Float(87.5));
        assert_eq!(cells[1][6], Data::String("良".to_owned()));
        assert_eq!(cells.len(), 4);
    }
}
