//! The monthly report with its chart, for any month: the report module's
//! own chart and table (the same as `liankong report --format html`)
//! inside the console's page, and its CSV. The report carries no
//! discipline data, so every agency sees the same one.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Datelike, NaiveDate};
use maud::{PreEscaped, html};
use serde::Deserialize;

use super::clerk::{Clerk, Console};
use super::export::csv_answer;
use super::layout::{self, page, respond};
use crate::report::{Format, render};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct MonthQuery {
    month: Option<String>,
}

/// The month asked for, else that of the newest evaluation, else this one.
async fn month(c: &Console, q: &MonthQuery) -> Result<NaiveDate, crate::store::StoreError> {
    if let Some(m) = q.month.as_deref().map(str::trim).filter(|m| !m.is_empty())
        && let Ok(d) = NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d")
    {
        return Ok(d);
    }
    let newest = c.api.store.alerts().await?.iter().map(|a| a.as_of).max();
    let day = newest.unwrap_or_else(|| {
        c.api
            .clock
            .now()
            .with_timezone(&crate::config::china_time())
            .date_naive()
    });
    Ok(day.with_day(1).unwrap_or(day))
}

async fn built(
    c: &Console,
    clerk: &Clerk,
    q: &MonthQuery,
) -> Result<crate::report::Report, Response> {
    let first = month(c, q)
        .await
        .map_err(|e| layout::internal(Some(clerk), &e))?;
    crate::report::build(c.api.store.as_ref(), first)
        .await
        .map_err(|e| layout::internal(Some(clerk), &e))
}

pub async fn show(State(c): State<Console>, clerk: Clerk, Query(q): Query<MonthQuery>) -> Response {
    let report = match built(&c, &clerk, &q).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let month = format!("{}-{:02}", report.year, report.month);
    let body = html! {
        h1 { (report.year) " 年 " (report.month) " 月预算执行月报" }
        form.filters method="get" action="/ui/report" {
            label { "月份" input type="month" name="month" value=(month); }
            button type="submit" { "查看" }
        }
        p.meta { "截至 " (report.as_of) " · " a href={ "/ui/report.csv?month=" (month) } { "导出 CSV" } }
        // The report module's own markup: it escapes every text it holds
        // (src/report/html.rs), and the XSS tests read it in a browser.
        div.report { (PreEscaped(crate::report::html_body(&report))) }
    };
    respond(StatusCode::OK, page(Some(&clerk), "月报", body))
}

pub async fn csv(State(c): State<Console>, clerk: Clerk, Query(q): Query<MonthQuery>) -> Response {
    let report = match built(&c, &clerk, &q).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let text = render(&report, Format::Csv);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map(|h| h.iter().map(str::to_owned).collect())
        .unwrap_or_default();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = reader
        .records()
        .filter_map(Result::ok)
        .map(|r| r.iter().map(str::to_owned).collect())
        .collect();
    let name = format!("report-{}-{:02}.csv", report.year, report.month);
    csv_answer(&clerk, &name, &header, rows.into_iter())
}
