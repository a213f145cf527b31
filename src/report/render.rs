//! Renders a built report as Markdown, CSV or a standalone HTML page.
//!
//! Rendering only formats: every number was fixed by `build`, percentages
//! are rounded here for display and nowhere else. Text from the sources
//! (unit names) is escaped for each format.

use std::fmt;
use std::str::FromStr;

use super::build::{Report, UnitReport};
use super::html;
use super::ratio::Ratio;

/// An output format of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Markdown,
    Csv,
    Html,
}

impl Format {
    /// The usual file extension, which is also the name `FromStr` takes.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Markdown => "md",
            Format::Csv => "csv",
            Format::Html => "html",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// A format name that is not `md`, `csv` or `html`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown report format {0:?}: use md, csv or html")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        match s {
            "md" | "markdown" => Ok(Format::Markdown),
            "csv" => Ok(Format::Csv),
            "html" => Ok(Format::Html),
            other => Err(UnknownFormat(other.to_owned())),
        }
    }
}

/// The report as text in `format`.
/// The HTML page's chart, table and notes, for a page of its own around
/// them (the console's): markup whose every text is already escaped.
pub fn html_body(report: &Report) -> String {
    html::body(report)
}

pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Markdown => markdown(report),
        Format::Csv => csv(report),
        Format::Html => html::page(report),
    }
}

/// The table's columns: the heading shown (Markdown, HTML) and the CSV
/// heading.
pub(super) const COLUMNS: [(&str, &str); 19] = [
    ("单位编码", "unit_code"),
    ("单位名称", "unit_name"),
    ("预算执行进度", "execution_progress_pct"),
    ("序时进度", "time_progress_pct"),
    ("支出率", "expenditure_rate_pct"),
    ("预算到项目率", "budget_to_project_rate_pct"),
    ("排名", "rank"),
    ("严重预警", "open_critical_alerts"),
    ("警告预警", "open_warning_alerts"),
    ("指标(元)", "quota_yuan"),
    ("支出(元)", "expenditure_yuan"),
    ("本月预警", "warnings_month"),
    ("累计预警", "warnings_ytd"),
    ("本月冻结", "freezes_month"),
    ("累计冻结", "freezes_ytd"),
    ("本月收回(元)", "reclaimed_month_yuan"),
    ("累计收回(元)", "reclaimed_ytd_yuan"),
    ("本月盘活(元)", "revived_month_yuan"),
    ("累计盘活(元)", "revived_ytd_yuan"),
];

/// Shown for an undefined indicator or a unit without a rank.
pub(super) const UNDEFINED: &str = "—";

/// One cell of the table.
pub(super) enum Cell {
    Text(String),
    Number(String),
    Percent(Option<Ratio>),
    Rank(Option<usize>),
}

impl Cell {
    /// For reading: percentages with `%`, undefined as `—`.
    pub(super) fn shown(&self) -> String {
        match self {
            Cell::Text(s) | Cell::Number(s) => s.clone(),
            Cell::Percent(Some(r)) => format!("{}%", r.percent()),
            Cell::Rank(Some(r)) => r.to_string(),
            Cell::Percent(None) | Cell::Rank(None) => UNDEFINED.to_owned(),
        }
    }

    /// For machines: bare numbers, undefined as an empty field.
    fn plain(&self) -> String {
        match self {
            Cell::Text(s) | Cell::Number(s) => s.clone(),
            Cell::Percent(Some(r)) => r.percent(),
            Cell::Rank(Some(r)) => r.to_string(),
            Cell::Percent(None) | Cell::Rank(None) => String::new(),
        }
    }

    pub(super) fn is_numeric(&self) -> bool {
        !matches!(self, Cell::Text(_))
    }
}

/// A unit's cells, in the order of [`COLUMNS`].
pub(super) fn cells(report: &Report, u: &UnitReport) -> [Cell; 19] {
    let (m, y) = (&u.month_actions, &u.year_actions);
    [
        Cell::Text(u.unit_code.clone()),
        Cell::Text(u.unit_name.clone()),
        Cell::Percent(u.execution_progress),
        Cell::Percent(Some(report.time_progress)),
        Cell::Percent(u.expenditure_rate),
        Cell::Percent(u.budget_to_project_rate),
        Cell::Rank(u.rank),
        Cell::Number(u.open_alerts.critical.to_string()),
        Cell::Number(u.open_alerts.warning.to_string()),
        Cell::Number(u.quota.to_yuan()),
        Cell::Number(u.expenditure.to_yuan()),
        Cell::Number(m.warnings.to_string()),
        Cell::Number(y.warnings.to_string()),
        Cell::Number(m.freezes.to_string()),
        Cell::Number(y.freezes.to_string()),
        Cell::Number(m.reclaimed.to_yuan()),
        Cell::Number(y.reclaimed.to_yuan()),
        Cell::Number(m.revived.to_yuan()),
        Cell::Number(y.revived.to_yuan()),
    ]
}

/// The year's money put back to use, under the title.
pub(super) fn revived_line(report: &Report) -> String {
    format!(
        "本年度盘活（复活）资金：{}元，财政指标已落实{}元。",
        report.revived, report.revived_applied
    )
}

/// `预算执行月报 2021年9月`.
pub(super) fn title(report: &Report) -> String {
    format!("预算执行月报 {}年{}月", report.year, report.month)
}

/// The line under the title.
pub(super) fn as_of_line(report: &Report) -> String {
    format!(
        "截至日期：{}（{} 年度）；序时进度：{}%",
        report.as_of,
        report.year,
        report.time_progress.percent()
    )
}

/// How to read the table, under it.
pub(super) const NOTES: [&str; 5] = [
    "预算执行进度 = 支出 ÷ 指标，按单位的有效项目（年度指标大于 0 且非待分配）汇总；支出含当年截至日期的支出，已作废、已删除的记录不计。",
    "支出率 = 支出 ÷ 拨款；预算到项目率 = 1 − 待分配项目指标 ÷ 全部项目指标。",
    "“—”表示分母为 0、无法计算；预算执行进度无法计算的单位不参与排名，并列者名次相同。",
    "严重、警告预警为生成报告时尚未关闭（触发或升级）的预警数。",
    "本月、累计各列为各单位项目在本月及本年度截至日期采取的操作（已撤销的不计）；盘活计入调入项目所属单位；“已落实”为财政指标调增已反映的盘活金额。",
];

fn markdown(report: &Report) -> String {
    let mut out = format!(
        "# {}\n\n{}\n\n{}\n\n",
        title(report),
        as_of_line(report),
        revived_line(report)
    );
    let headings: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
    out.push_str(&format!("| {} |\n", headings.join(" | ")));
    // Alignment follows the first row's cells; every row has the same kinds.
    let numeric: Vec<bool> = match report.units.first() {
        Some(u) => cells(report, u).iter().map(Cell::is_numeric).collect(),
        None => vec![false; COLUMNS.len()],
    };
    let rule: Vec<&str> = numeric
        .iter()
        .map(|n| if *n { "---:" } else { "---" })
        .collect();
    out.push_str(&format!("|{}|\n", rule.join("|")));
    for u in &report.units {
        let row: Vec<String> = cells(report, u)
            .iter()
            .map(|c| markdown_escape(&c.shown()))
            .collect();
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out.push('\n');
    for note in NOTES {
        out.push_str(&format!("- {note}\n"));
    }
    out
}

/// Escapes what Markdown (and the HTML it may pass through) would read as
/// syntax inside a table cell; a line break would end the row.
fn markdown_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '|' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '#' | '!' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn csv(report: &Report) -> String {
    // Writing into memory cannot fail, so the empty fallback is never seen.
    csv_bytes(report)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn csv_bytes(report: &Report) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(COLUMNS.iter().map(|c| c.1))?;
    for u in &report.units {
        w.write_record(cells(report, u).iter().map(Cell::plain))?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Fen;
    use crate::report::build::OpenAlerts;
    use chrono::NaiveDate;

    fn report() -> Report {
        let unit = |code: &str, name: &str, progress: Option<Ratio>, rank| UnitReport {
            unit_code: code.into(),
            unit_name: name.into(),
            active_projects: 1,
            quota: Fen(100_000_000),
            expenditure: Fen(50_000_000),
            allocation: Fen(60_000_000),
            reserve_quota: Fen(0),
            total_quota: Fen(100_000_000),
            execution_progress: progress,
            expenditure_rate: Ratio::new(5, 6),
            budget_to_project_rate: None,
            rank,
            open_alerts: OpenAlerts {
                critical: 1,
                warning: 2,
            },
            month_actions: Default::default(),
            year_actions: Default::default(),
        };
        Report {
            year: 2021,
            month: 9,
            as_of: NaiveDate::from_ymd_opt(2021, 9, 30).unwrap(),
            time_progress: Ratio::new(273, 365).unwrap(),
            units: vec![
                unit("370101", "市教育局", Ratio::new(1, 2), Some(1)),
                unit("370102", "a|b, \"c\"\n<script>", None, None),
            ],
            revived: Fen(0),
            revived_applied: Fen(0),
        }
    }

    #[test]
    fn formats_parse_by_name() {
        assert_eq!("md".parse(), Ok(Format::Markdown));
        assert_eq!("csv".parse(), Ok(Format::Csv));
        assert_eq!("html".parse(), Ok(Format::Html));
        assert_eq!("pdf".parse::<Format>(), Err(UnknownFormat("pdf".into())));
        for f in [Format::Markdown, Format::Csv, Format::Html] {
            assert_eq!(f.to_string().parse(), Ok(f));
        }
    }

    #[test]
    fn markdown_escapes_cells() {
        let md = render(&report(), Format::Markdown);
        assert!(md.starts_with("# 预算执行月报 2021年9月\n"), "{md}");
        assert!(md.contains("序时进度：74.79%"), "{md}");
        assert!(
            md.contains(
                "| 370101 | 市教育局 | 50.00% | 74.79% | 83.33% | — | 1 | 1 | 2 | 1000000.00 | 500000.00 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| 370102 | a\\|b, \"c\" \\<script\\> | — |"),
            "{md}"
        );
    }

    #[test]
    fn csv_quotes_and_leaves_undefined_empty() {
        let text = render(&report(), Format::Csv);
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let headers: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(headers[0], "unit_code");
        assert_eq!(headers.len(), COLUMNS.len());
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[0][2], "50.00");
        assert_eq!(&rows[1][1], "a|b, \"c\"\n<script>");
        assert_eq!(&rows[1][2], "");
        assert_eq!(&rows[1][6], "");
    }
}
