//! The monthly report (预算执行月报): per unit, the three common indicators
//! of the five-party mechanism (execution progress, expenditure rate,
//! budget-to-project rate) beside time progress, the units' ranking, and
//! their open alerts, as of the last day of a month.
//!
//! [`build`] asks the store for per-unit sums (the database does the sums)
//! and divides them exactly; [`render`] formats the result as Markdown, CSV
//! or a standalone HTML page with an inline SVG chart. A report goes to
//! every agency, so it must never carry discipline data: confidential
//! alerts are left out before anything is counted.

mod build;
mod html;
mod ratio;
mod render;

pub use build::{ActionCounts, OpenAlerts, Report, UnitReport, build, month_end, time_progress};
pub use ratio::Ratio;
pub use render::{Format, UnknownFormat, html_body, render};
