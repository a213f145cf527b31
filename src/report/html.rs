//! The report as one standalone HTML page: the table and an inline SVG bar
//! chart of execution progress against time progress.
//!
//! The page must open anywhere, offline, from a file or a mail attachment:
//! no external resource, no script, UTF-8, and a content security policy
//! that forbids loading anything. All text is escaped. The chart's geometry
//! is integer arithmetic in tenths of a pixel.

use std::fmt::Write;

use super::build::{Report, UnitReport};
use super::ratio::round_div;
use super::render::{COLUMNS, NOTES, UNDEFINED, as_of_line, cells, revived_line, title};

const STYLE: &str = "body{font-family:\"Noto Sans CJK SC\",\"Microsoft YaHei\",\"PingFang SC\",sans-serif;\
margin:2em;color:#1a202c}\
h1{font-size:1.5em}\
table{border-collapse:collapse;margin:1.5em 0;font-size:0.9em}\
th,td{border:1px solid #cbd5e0;padding:0.3em 0.6em}\
th{background:#edf2f7}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
figure{margin:1em 0}\
svg.chart{max-width:100%;height:auto}\
figcaption,.notes{color:#4a5568;font-size:0.85em}";

/// The whole page.
pub(super) fn page(report: &Report) -> String {
    let title = escape(&title(report));
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" \
         content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
    );
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = write!(
        out,
        "<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n<p>{}</p>\n<p>{}</p>\n",
        escape(&as_of_line(report)),
        escape(&revived_line(report))
    );
    out.push_str(&body(report));
    out.push_str("</body>\n</html>\n");
    out
}

/// The chart, the table and the notes: the page's body after its headings,
/// which the console shows inside its own page. Every text in it is
/// escaped here.
pub(super) fn body(report: &Report) -> String {
    let mut out = String::from("<figure>\n");
    out.push_str(&chart(report));
    let _ = write!(
        out,
        "<figcaption>条形为各单位预算执行进度，红色虚线为序时进度 {}%；低于序时进度的单位以橙色标出。</figcaption>\n</figure>\n",
        report.time_progress.percent()
    );
    out.push_str("<div class=\"scroll\">\n");
    out.push_str(&table(report));
    out.push_str("</div>\n<ul class=\"notes\">\n");
    for note in NOTES {
        let _ = writeln!(out, "<li>{}</li>", escape(note));
    }
    out.push_str("</ul>\n");
    out
}

fn table(report: &Report) -> String {
    let mut out = String::from("<table>\n<thead>\n<tr>");
    for (heading, _) in COLUMNS {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape(heading));
    }
    out.push_str("</tr>\n</thead>\n<tbody>\n");
    for u in &report.units {
        out.push_str("<tr>");
        for c in cells(report, u) {
            let class = if c.is_numeric() { " class=\"num\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", escape(&c.shown()));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

// Chart layout, in pixels.
const PAD: i64 = 16;
const PLOT_WIDTH: i64 = 560;
/// Room right of the plot for a bar's value.
const VALUE_WIDTH: i64 = 84;
/// Title, legend and the time-progress label above the plot.
const TOP: i64 = 76;
const ROW: i64 = 30;
const BAR: i64 = 18;
/// Tick labels and the axis title under the plot.
const BOTTOM: i64 = 48;
/// Unit names longer than this many characters are shortened with `…`.
const NAME_CHARS: usize = 16;
/// Pixels per character of a name: CJK glyphs at 13px are about this wide.
const CHAR_WIDTH: i64 = 14;

/// The axis runs from 0 to 100% or, when a unit has spent more than its
/// quota, further in steps of 20 up to 200%; longer bars are cut at the end
/// of the axis and keep their true value beside them.
const AXIS_MIN: i128 = 10_000;
const AXIS_MAX: i128 = 20_000;
const TICK: i128 = 2_000;

const ON_TRACK: &str = "#2b6cb0";
const LAGGING: &str = "#dd6b20";
const TIME_LINE: &str = "#c53030";

/// The inline SVG bar chart.
fn chart(report: &Report) -> String {
    let names: Vec<String> = report.units.iter().map(short_name).collect();
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let label_width = (i64::try_from(longest).unwrap_or(0) * CHAR_WIDTH + 24).clamp(96, 300);
    let plot_x = PAD + label_width;
    let rows = i64::try_from(report.units.len().max(1)).unwrap_or(1);
    let plot_bottom = TOP + rows * ROW;
    let width = plot_x + PLOT_WIDTH + VALUE_WIDTH + PAD;
    let height = plot_bottom + BOTTOM + PAD;

    // The axis in hundredths of a percent.
    let time = report.time_progress.scaled(10_000);
    let highest = report
        .units
        .iter()
        .filter_map(|u| u.execution_progress)
        .map(|r| r.scaled(10_000))
        .chain([time, AXIS_MIN])
        .max()
        .unwrap_or(AXIS_MIN);
    let axis = round_up(highest, TICK).clamp(AXIS_MIN, AXIS_MAX);
    // x of a value in hundredths of a percent, in tenths of a pixel.
    let x_of = |v: i128| {
        i128::from(plot_x) * 10 + round_div(v.clamp(0, axis) * i128::from(PLOT_WIDTH) * 10, axis)
    };

    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" \
         role=\"img\" aria-labelledby=\"chart-title\" font-size=\"13\">"
    );
    let _ = writeln!(
        s,
        "<title id=\"chart-title\">各单位预算执行进度与序时进度（截至 {}）</title>",
        report.as_of
    );
    let _ = writeln!(
        s,
        "<text x=\"{PAD}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">各单位预算执行进度（截至 {}）</text>",
        report.as_of
    );
    legend(&mut s, plot_x);

    // Grid and tick labels.
    let mut tick = 0;
    while tick <= axis {
        let x = tenths(x_of(tick));
        let _ = writeln!(
            s,
            "<line x1=\"{x}\" y1=\"{TOP}\" x2=\"{x}\" y2=\"{plot_bottom}\" stroke=\"#e2e8f0\"/>\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" fill=\"#4a5568\">{}%</text>",
            plot_bottom + 18,
            tick / 100
        );
        tick += TICK;
    }
    let _ = writeln!(
        s,
        "<line x1=\"{plot_x}\" y1=\"{plot_bottom}\" x2=\"{}\" y2=\"{plot_bottom}\" stroke=\"#4a5568\"/>\
         <line x1=\"{plot_x}\" y1=\"{TOP}\" x2=\"{plot_x}\" y2=\"{plot_bottom}\" stroke=\"#4a5568\"/>",
        plot_x + PLOT_WIDTH
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#2d3748\">预算执行进度（%）</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#2d3748\">单位</text>",
        plot_x + PLOT_WIDTH / 2,
        plot_bottom + 38,
        plot_x - 8,
        TOP - 8
    );

    if report.units.is_empty() {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"#4a5568\">无单位</text>",
            plot_x + 8,
            TOP + ROW / 2 + 4
        );
    }
    for (i, (u, name)) in report.units.iter().zip(&names).enumerate() {
        let top = TOP + i64::try_from(i).unwrap_or(0) * ROW;
        bar(&mut s, report, u, name, top, plot_x, &x_of);
    }

    // The time-progress line, drawn last so that no bar hides it; its label
    // leans away from the ends of the axis so that it stays inside.
    let anchor = if time * 100 < axis * 15 {
        "start"
    } else if time * 100 > axis * 85 {
        "end"
    } else {
        "middle"
    };
    let x = tenths(x_of(time));
    let _ = writeln!(
        s,
        "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{plot_bottom}\" stroke=\"{TIME_LINE}\" \
         stroke-width=\"2\" stroke-dasharray=\"6 4\"/>\
         <text x=\"{x}\" y=\"{}\" text-anchor=\"{anchor}\" fill=\"{TIME_LINE}\">序时进度 {}%</text>",
        TOP - 4,
        TOP - 8,
        report.time_progress.percent()
    );
    s.push_str("</svg>\n");
    s
}

fn legend(s: &mut String, plot_x: i64) {
    let y = 44;
    let items = [(ON_TRACK, "不低于序时进度"), (LAGGING, "低于序时进度")];
    let mut x = plot_x;
    for (colour, label) in items {
        let _ = writeln!(
            s,
            "<rect x=\"{x}\" y=\"{}\" width=\"14\" height=\"12\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"{y}\" fill=\"#2d3748\">{label}</text>",
            y - 10,
            x + 20
        );
        x += 140;
    }
    let _ = writeln!(
        s,
        "<line x1=\"{x}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{TIME_LINE}\" stroke-width=\"2\" \
         stroke-dasharray=\"6 4\"/><text x=\"{}\" y=\"{y}\" fill=\"#2d3748\">序时进度</text>",
        y - 4,
        x + 24,
        y - 4,
        x + 30
    );
}

/// One unit's row: its name, its bar and its value.
fn bar(
    s: &mut String,
    report: &Report,
    u: &UnitReport,
    name: &str,
    top: i64,
    plot_x: i64,
    x_of: &dyn Fn(i128) -> i128,
) {
    let text_y = top + ROW / 2 + 5;
    let value = u
        .execution_progress
        .map_or_else(|| UNDEFINED.to_owned(), |r| format!("{}%", r.percent()));
    let rank = u
        .rank
        .map_or_else(|| UNDEFINED.to_owned(), |r| r.to_string());
    let _ = write!(
        s,
        "<g><title>{}（{}）：预算执行进度 {}，排名 {}</title>\
         <text x=\"{}\" y=\"{text_y}\" text-anchor=\"end\">{}</text>",
        escape(&u.unit_name),
        escape(&u.unit_code),
        escape(&value),
        escape(&rank),
        plot_x - 8,
        escape(name)
    );
    match u.execution_progress {
        Some(progress) => {
            let end = x_of(progress.scaled(10_000));
            let colour = if progress < report.time_progress {
                LAGGING
            } else {
                ON_TRACK
            };
            let _ = write!(
                s,
                "<rect x=\"{plot_x}\" y=\"{}\" width=\"{}\" height=\"{BAR}\" fill=\"{colour}\"/>\
                 <text x=\"{}\" y=\"{text_y}\">{}</text>",
                top + (ROW - BAR) / 2,
                tenths(end - i128::from(plot_x) * 10),
                tenths(end + 60),
                escape(&value)
            );
        }
        None => {
            let _ = write!(
                s,
                "<text x=\"{}\" y=\"{text_y}\" fill=\"#718096\">{UNDEFINED}（无有效项目）</text>",
                plot_x + 6
            );
        }
    }
    s.push_str("</g>\n");
}

/// A name short enough for the label column.
fn short_name(u: &UnitReport) -> String {
    let name = if u.unit_name.is_empty() {
        &u.unit_code
    } else {
        &u.unit_name
    };
    if name.chars().count() > NAME_CHARS {
        let mut short: String = name.chars().take(NAME_CHARS - 1).collect();
        short.push('…');
        short
    } else {
        name.clone()
    }
}

/// `v` rounded up to a multiple of `step` (both non-negative).
fn round_up(v: i128, step: i128) -> i128 {
    if v <= 0 {
        return 0;
    }
    (v + step - 1) / step * step
}

/// Tenths of a pixel as an SVG length, e.g. `123.4`.
fn tenths(v: i128) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let m = v.unsigned_abs();
    format!("{sign}{}.{}", m / 10, m % 10)
}

/// Escapes text for HTML content and double- or single-quoted attributes.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Fen;
    use crate::report::OpenAlerts;
    use crate::report::Ratio;
    use chrono::NaiveDate;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    fn report_with(progress: &[(i64, i64)], time: Ratio) -> Report {
        let units = progress
            .iter()
            .enumerate()
            .map(|(i, (num, den))| UnitReport {
                unit_code: format!("37010{i}"),
                unit_name: format!("单位{i}"),
                active_projects: 1,
                quota: Fen(*den),
                expenditure: Fen(*num),
                allocation: Fen(*den),
                reserve_quota: Fen(0),
                total_quota: Fen(*den),
                execution_progress: Ratio::new(*num, *den),
                expenditure_rate: Ratio::new(*num, *den),
                budget_to_project_rate: Ratio::new(1, 1),
                rank: Some(i + 1),
                open_alerts: OpenAlerts::default(),
                month_actions: Default::default(),
                year_actions: Default::default(),
            })
            .collect();
        Report {
            year: 2021,
            month: 1,
            as_of: NaiveDate::from_ymd_opt(2021, 1, 31).unwrap(),
            time_progress: time,
            units,
            revived: Fen(0),
            revived_applied: Fen(0),
        }
    }

    #[test]
    fn the_axis_grows_past_100_percent_and_stops_at_200() {
        let january = Ratio::new(31, 365).unwrap();
        let svg = chart(&report_with(&[(3, 2), (1, 2)], january));
        assert!(
            svg.contains(">160%</text>") && !svg.contains(">180%</text>"),
            "{svg}"
        );
        // 150% of a 160% axis of 560 px.
        assert!(svg.contains("width=\"525.0\""), "{svg}");
        // Early in the year the time label starts at its line.
        assert!(
            svg.contains("text-anchor=\"start\" fill=\"#c53030\">序时进度 8.49%"),
            "{svg}"
        );

        let svg = chart(&report_with(&[(5, 1)], january));
        assert!(
            svg.contains(">200%</text>") && !svg.contains(">220%</text>"),
            "{svg}"
        );
        // Cut at the end of the axis, labelled with its true value.
        assert!(
            svg.contains("width=\"560.0\"") && svg.contains(">500.00%</text>"),
            "{svg}"
        );
    }

    #[test]
    fn an_empty_report_still_draws_its_axes() {
        let svg = chart(&report_with(&[], Ratio::new(1, 2).unwrap()));
        assert!(
            svg.contains("无单位") && svg.contains(">100%</text>"),
            "{svg}"
        );
    }

    #[test]
    fn geometry_helpers() {
        assert_eq!(round_up(7_479, 2_000), 8_000);
        assert_eq!(round_up(8_000, 2_000), 8_000);
        assert_eq!(round_up(-5, 2_000), 0);
        assert_eq!(tenths(1234), "123.4");
        assert_eq!(tenths(-5), "-0.5");
        assert_eq!(tenths(0), "0.0");
    }
}
