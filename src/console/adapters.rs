//! The adapters page: each configured adapter's schedule, next and last run,
//! counts per stream, last error and held snapshots, from the same function
//! as `GET /v1/adapters` (so discipline's counts and errors stay hidden from
//! the other agencies here too).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::clerk::{Clerk, Console};
use super::layout::{self, agency_name, page, respond, when};

/// A time as clerks read it, or a dash.
fn at(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(|| "—".to_owned(), when)
}

/// A count, or a dash.
fn count<N: ToString>(n: Option<N>) -> String {
    n.map_or_else(|| "—".to_owned(), |n| n.to_string())
}

pub async fn show(State(c): State<Console>, clerk: Clerk) -> Response {
    let adapters = match crate::api::shared::adapters(&c.api, clerk.agency).await {
        Ok(a) => a,
        Err(e) => return layout::internal(Some(&clerk), &e),
    };
    let body = html! {
        h1 { "数据源" }
        @if adapters.is_empty() { p { "配置中没有数据源。" } }
        @for a in &adapters {
            section.card {
                h2 { (a.agency.map_or("未知机构", agency_name)) " · " code { (a.adapter) } }
                dl.fields {
                    dt { "启用" } dd { @if a.enabled { "是" } @else { "否" } }
                    dt { "计划" } dd { code { (a.schedule) } }
                    dt { "下次运行" } dd { (at(a.next_run)) }
                    dt { "上次运行" } dd {
                        (at(a.last_run.as_ref().map(|r| r.started_at)))
                        @match a.last_run.as_ref().and_then(|r| r.ok) {
                            Some(true) => " · 成功",
                            Some(false) => " · 失败",
                            None => "",
                        }
                    }
                    dt { "上次成功" } dd { (at(a.last_success)) }
                    dt { "运行 / 失败次数" } dd { (count(a.runs)) " / " (count(a.failures)) }
                    @if let Some(e) = &a.last_error {
                        dt { "最近错误" } dd.error { (e) }
                    }
                    @if let Some(w) = a.worker.as_ref().filter(|w| w.last_error.is_some()) {
                        dt { "本进程最近错误" } dd.error { (w.last_error.as_deref().unwrap_or_default()) " · " (at(w.last_error_at)) }
                    }
                }
                @if let Some(streams) = &a.streams {
                    div.scroll {
                        table {
                            thead { tr {
                                th scope="col" { "数据流" } th scope="col" { "取得" } th scope="col" { "新增" }
                                th scope="col" { "变更" } th scope="col" { "未变" } th scope="col" { "删除" } th scope="col" { "隔离" }
                            } }
                            tbody {
                                @for s in streams {
                                    tr {
                                        td { code { (s.collection) } }
                                        td.num { (s.fetched) }
                                        td.num { (s.outcome.new) }
                                        td.num { (s.outcome.changed) }
                                        td.num { (s.outcome.unchanged) }
                                        td.num { (s.outcome.deleted) }
                                        td.num { (s.outcome.quarantined) }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(held) = a.held.as_ref().filter(|h| !h.is_empty()) {
                    h3 { "待确认的删除" }
                    ul {
                        @for h in held {
                            li {
                                code { (h.stream) } "：" (h.deletions) " 条，自 " (when(h.since))
                                " · 运维确认命令 " code { (h.accept) }
                            }
                        }
                    }
                }
            }
        }
    };
    respond(StatusCode::OK, page(Some(&clerk), "数据源", body))
}
