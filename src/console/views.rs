//! The log of views of confidential alerts, for discipline alone: every
//! other agency gets the console's "not found" page.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::clerk::{Clerk, Console};
use super::layout::{self, agency_name, page, respond, rule_name, when};
use crate::model::Agency;

const PAGE: i64 = 100;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ViewsQuery {
    page: Option<String>,
}

pub async fn list(State(c): State<Console>, clerk: Clerk, Query(q): Query<ViewsQuery>) -> Response {
    if clerk.agency != Agency::Discipline {
        return layout::problem(
            Some(&clerk),
            StatusCode::NOT_FOUND,
            "未找到页面",
            "没有这个页面。",
        );
    }
    let page_no = layout::page_number(q.page.as_deref());
    let mut rows = match c
        .api
        .store
        .alert_views(PAGE + 1, (page_no - 1) * PAGE)
        .await
    {
        Ok(r) => r,
        Err(e) => return layout::internal(Some(&clerk), &e),
    };
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let body = html! {
        h1 { "涉密告警查阅记录" }
        p.meta { "每次打开涉密告警（控制台页面或 API）都记录在此，仅纪委监委可见。" }
        @if rows.is_empty() { p { "暂无查阅记录。" } }
        ol.cards {
            @for v in &rows {
                li.card {
                    div { strong { (agency_name(v.agency)) " · " (v.token) } " · " (when(v.viewed_at)) " · " (if v.channel == "api" { "API" } else { "控制台" }) }
                    div.meta { (rule_name(v.rule)) " · " a.id href={ "/ui/alerts/" (v.alert_id) } { (v.alert_id) } }
                }
            }
        }
        nav.pages {
            @if page_no > 1 { a href={ "/ui/views?page=" (page_no - 1) } { "上一页" } }
            @if more { a href={ "/ui/views?page=" (page_no + 1) } { "下一页" } }
        }
    };
    respond(StatusCode::OK, page(Some(&clerk), "查阅记录", body))
}
