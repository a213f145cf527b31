//! The deliveries page: this agency's outbox, newest first, by state and
//! paged, the redrive of its dead letters, and its CSV: the same rows as
//! `GET /v1/deliveries`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::alert::delivery_state;
use super::clerk::{Clerk, Console, Posted};
use super::export::csv_answer;
use super::layout::{self, page, respond, when};
use super::signin::Nothing;
use crate::api::shared;
use crate::store::alerts::OutboxRow;

/// Rows on one page.
const PAGE: i64 = 50;
/// The most a CSV export holds.
const CSV_ROWS: i64 = 100_000;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct OutboxQuery {
    state: Option<String>,
    page: Option<String>,
    done: Option<String>,
}

impl OutboxQuery {
    fn state(&self) -> Option<&str> {
        self.state
            .as_deref()
            .filter(|s| ["pending", "delivered", "dead"].contains(s))
    }

    fn page(&self) -> i64 {
        layout::page_number(self.page.as_deref())
    }
}

async fn rows(
    c: &Console,
    clerk: &Clerk,
    state: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<OutboxRow>, Response> {
    shared::deliveries(c.api.store.as_ref(), clerk.agency, state, limit, offset)
        .await
        .map_err(|e| layout::internal(Some(clerk), &e))
}

pub async fn list(
    State(c): State<Console>,
    clerk: Clerk,
    Query(q): Query<OutboxQuery>,
) -> Response {
    let page_no = q.page();
    // One row more than a page says whether there is a next one.
    let mut rows = match rows(&c, &clerk, q.state(), PAGE + 1, (page_no - 1) * PAGE).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let state = q.state().unwrap_or_default();
    let link = |p: i64| format!("/ui/deliveries?state={state}&page={p}");
    let body = html! {
        h1 { "推送" }
        @if let Some(id) = &q.done { p.notice.done role="status" { "已重新排队推送 #" (id) "。" } }
        form.filters method="get" action="/ui/deliveries" {
            label { "状态"
                select name="state" {
                    @for (v, l) in [("", "全部"), ("pending", "待推送"), ("delivered", "已送达"), ("dead", "失败（死信）")] {
                        option value=(v) selected[state == v] { (l) }
                    }
                }
            }
            button type="submit" { "筛选" }
        }
        p.meta { "第 " (page_no) " 页 · " a href={ "/ui/deliveries.csv?state=" (state) } { "导出 CSV" } }
        @if rows.is_empty() { p { "没有推送记录。" } }
        ol.cards {
            @for d in &rows {
                li.card {
                    div { code { (d.event_type.as_str()) } " → " (d.subscriber) " · " strong { (delivery_state(&d.state)) } }
                    div.meta {
                        "#" (d.id) " · 生成 " (when(d.created_at)) " · 尝试 " (d.attempts) " 次"
                        @if let Some(t) = d.delivered_at { " · 送达 " (when(t)) }
                        @if d.state == "pending" { " · 下次 " (when(d.next_attempt_at)) }
                    }
                    div.meta { "关于 " span.id { (d.alert_id) } }
                    @if let Some(e) = &d.last_error { div.error { (e) } }
                    @if d.state == "dead" {
                        form method="post" action={ "/ui/deliveries/" (d.id) "/redrive" } {
                            input type="hidden" name="csrf" value=(clerk.csrf);
                            button type="submit" { "重新推送" }
                        }
                    }
                }
            }
        }
        nav.pages {
            @if page_no > 1 { a href=(link(page_no - 1)) { "上一页" } }
            @if more { a href=(link(page_no + 1)) { "下一页" } }
        }
    };
    respond(StatusCode::OK, page(Some(&clerk), "推送", body))
}

pub async fn redrive(
    State(c): State<Console>,
    Path(id): Path<i64>,
    p: Posted<Nothing>,
) -> Response {
    let now = c.api.clock.now();
    match shared::redrive(c.api.store.as_ref(), p.clerk.agency, id, now).await {
        Ok(true) => {
            Redirect::to(&format!("/ui/deliveries?state=pending&done={id}")).into_response()
        }
        Ok(false) => layout::problem(
            Some(&p.clerk),
            StatusCode::NOT_FOUND,
            "未找到死信",
            "本机构没有这条失败的推送。",
        ),
        Err(e) => layout::internal(Some(&p.clerk), &e),
    }
}

pub async fn csv(State(c): State<Console>, clerk: Clerk, Query(q): Query<OutboxQuery>) -> Response {
    let rows = match rows(&c, &clerk, q.state(), CSV_ROWS, 0).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let header = [
        "id",
        "webhook_id",
        "subject_id",
        "subscriber",
        "type",
        "state",
        "attempts",
        "created_at",
        "next_attempt_at",
        "delivered_at",
        "last_error",
    ];
    let t =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map(crate::clock::rfc3339).unwrap_or_default();
    let rows = rows.into_iter().map(|d| {
        vec![
            d.id.to_string(),
            d.event_id,
            d.alert_id,
            d.subscriber,
            d.event_type.as_str().to_owned(),
            d.state,
            d.attempts.to_string(),
            t(Some(d.created_at)),
            t(Some(d.next_attempt_at)),
            t(d.delivered_at),
            d.last_error.unwrap_or_default(),
        ]
    });
    csv_answer(&clerk, "deliveries.csv", &header, rows)
}
