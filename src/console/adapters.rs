//! The adapters page: each configured adapter's schedule, next and last run,
//! counts per stream, last error and held snapshots, from the same function
//! as `GET /v1/adapters` (so discipline's counts and errors stay hidden from
//! the other agencies here too).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde_json::Value;

use super::clerk::{Clerk, Console};
use super::layout::{self, agency_name, page, respond, when_json};
use crate::model::Agency;

fn count(v: &Value) -> String {
    v.as_u64().map_or_else(|| "—".to_owned(), |n| n.to_string())
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
            @let agency = a["agency"].as_str().and_then(Agency::parse);
            section.card {
                h2 { (agency.map_or("未知机构", agency_name)) " · " code { (a["adapter"].as_str().unwrap_or_default()) } }
                dl.fields {
                    dt { "启用" } dd { @if a["enabled"].as_bool() == Some(true) { "是" } @else { "否" } }
                    dt { "计划" } dd { code { (a["schedule"].as_str().unwrap_or_default()) } }
                    dt { "下次运行" } dd { (when_json(&a["next_run"])) }
                    dt { "上次运行" } dd {
                        (when_json(&a["last_run"]["started_at"]))
                        @match a["last_run"]["ok"].as_bool() {
                            Some(true) => " · 成功",
                            Some(false) => " · 失败",
                            None => "",
                        }
                    }
                    dt { "上次成功" } dd { (when_json(&a["last_success"])) }
                    dt { "运行 / 失败次数" } dd { (count(&a["runs"])) " / " (count(&a["failures"])) }
                    @if let Some(e) = a["last_error"].as_str() {
                        dt { "最近错误" } dd.error { (e) }
                    }
                    @if let Some(e) = a["worker"]["last_error"].as_str() {
                        dt { "本进程最近错误" } dd.error { (e) " · " (when_json(&a["worker"]["last_error_at"])) }
                    }
                }
                @if let Some(streams) = a["streams"].as_array() {
                    div.scroll {
                        table {
                            thead { tr {
                                th scope="col" { "数据流" } th scope="col" { "取得" } th scope="col" { "新增" }
                                th scope="col" { "变更" } th scope="col" { "未变" } th scope="col" { "删除" } th scope="col" { "隔离" }
                            } }
                            tbody {
                                @for s in streams {
                                    tr {
                                        td { code { (s["collection"].as_str().unwrap_or_default()) } }
                                        td.num { (count(&s["fetched"])) }
                                        td.num { (count(&s["new"])) }
                                        td.num { (count(&s["changed"])) }
                                        td.num { (count(&s["unchanged"])) }
                                        td.num { (count(&s["deleted"])) }
                                        td.num { (count(&s["quarantined"])) }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(held) = a["held"].as_array().filter(|h| !h.is_empty()) {
                    h3 { "待确认的删除" }
                    ul {
                        @for h in held {
                            li {
                                code { (h["stream"].as_str().unwrap_or_default()) } "：" (count(&h["deletions"])) " 条，自 " (when_json(&h["since"]))
                                " · 运维确认命令 " code { (h["accept"].as_str().unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        }
    };
    respond(StatusCode::OK, page(Some(&clerk), "数据源", body))
}
