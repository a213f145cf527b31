//! One alert: its summary, facts, sources, its episodes and events as this
//! agency's outbox holds them (with their deliveries), the actions on its
//! project, and the forms to acknowledge it, silence it and act on it.
//! What the page shows is what `GET /v1/alerts/{id}` shows the agency
//! (the same function), and a confidential alert's view is logged.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Datelike, NaiveDate, TimeZone};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::actions::{Refused, action_forms, actions_taken};
use super::clerk::{Clerk, Console, Posted};
use super::layout::{self, page, respond, rule_name, severity_name, state_name, when};
use super::session::random_token;
use crate::alert::AlertView;
use crate::api::shared::{self, Acked, Viewer};
use crate::store::alerts::OutboxRow;

/// What the page says above the alert after a form.
pub enum Notice {
    Done(String),
    Refused(Refused),
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Shown {
    done: Option<String>,
}

pub async fn show(
    State(c): State<Console>,
    clerk: Clerk,
    Path(id): Path<String>,
    Query(q): Query<Shown>,
) -> Response {
    let notice = q.done.map(|d| Notice::Done(done_text(&d)));
    render(&c, &clerk, &id, notice, StatusCode::OK).await
}

fn done_text(d: &str) -> String {
    match d {
        "ack" => "已确认该告警。".to_owned(),
        "silence" => "已设置静默：本机构在到期前不再收到该范围告警的推送。".to_owned(),
        other => match other.strip_prefix("action:") {
            Some(id) => format!("已记录行动 {id}。"),
            None => "已完成。".to_owned(),
        },
    }
}

/// The alert's page, or the one "no alert" page.
pub async fn render(
    c: &Console,
    clerk: &Clerk,
    id: &str,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let store = c.api.store.as_ref();
    let now = c.api.clock.now();
    let viewer = Viewer {
        agency: clerk.agency,
        token: &clerk.name,
        channel: "console",
    };
    let view = match shared::view_alert(store, &viewer, id, now).await {
        Ok(Some(v)) => v,
        Ok(None) => return layout::no_alert(clerk),
        Err(e) => return layout::internal(Some(clerk), &e),
    };
    let events = match store
        .agency_deliveries(clerk.agency, None, Some(&view.alert_id), 1000, 0)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return layout::internal(Some(clerk), &e),
    };
    let key = random_token().unwrap_or_default();
    let body = html! {
        @match &notice {
            Some(Notice::Done(text)) => p.notice.done role="status" { (text) },
            Some(Notice::Refused(r)) => (r.markup()),
            None => {},
        }
        h1 { (view.summary) }
        div.badges {
            span.badge.(view.severity.as_str()) { (severity_name(view.severity)) }
            span.badge { (state_name(view.state)) }
            @if view.silenced { span.badge { "已静默" } }
        }
        dl.fields {
            dt { "规则" } dd { (rule_name(view.rule)) " " code { (view.rule.as_str()) } }
            dt { "告警编号" } dd.id { (view.alert_id) }
            dt { "截至日期" } dd { (view.as_of) }
            dt { "第几次发生" } dd { (view.episode) }
            dt { "首次发现" } dd { (when(view.first_seen)) }
            dt { "最近变化" } dd { (when(view.changed_at)) }
            @if let Some(t) = view.resolved_at { dt { "解除时间" } dd { (when(t)) } }
            @if let Some(a) = &view.acknowledged {
                dt { "确认" }
                dd { (a.by.as_deref().unwrap_or("—")) " · " (when(a.at)) @if let Some(n) = a.note.as_deref().filter(|n| !n.is_empty()) { " · " (n) } }
            }
        }
        h2 { "事实" }
        (value(&view.facts))
        h2 { "数据来源" }
        ul.sources {
            @for s in &view.sources {
                li { code { (s.agency.as_str()) "." (s.collection) } " " span.id { (s.key) } }
            }
        }
        h2 { "历次发生与推送" }
        (episodes(&events))
        h2 { "项目上的行动" }
        (actions_taken(&view.actions))
        @if view.state.is_active() {
            h2 { "处理" }
            (ack_form(clerk, &view))
            (silence_form(clerk, &view))
            (action_forms(clerk, &view, &key))
        }
    };
    respond(status, page(Some(clerk), &view.summary, body))
}

/// A JSON value as text (strings without their quotes).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Facts as nested lists; every key and value is escaped text.
pub fn value(v: &Value) -> Markup {
    html! {
        @match v {
            Value::Object(map) => dl.facts {
                @for (k, v) in map { dt { code { (k) } } dd { (value(v)) } }
            },
            Value::Array(items) => ul.facts {
                @for v in items { li { (value(v)) } }
            },
            other => span { (text(other)) },
        }
    }
}

/// This agency's events of the alert, by episode, each with its deliveries.
fn episodes(rows: &[OutboxRow]) -> Markup {
    let mut by_episode: BTreeMap<i64, Vec<&OutboxRow>> = BTreeMap::new();
    for r in rows.iter().rev() {
        let episode = serde_json::from_str::<Value>(&r.body)
            .ok()
            .and_then(|b| b["data"]["episode"].as_i64())
            .unwrap_or(0);
        by_episode.entry(episode).or_default().push(r);
    }
    html! {
        @if by_episode.is_empty() { p { "尚无推送给本机构的事件（本机构没有订阅者，或事件尚未生成）。" } }
        @for (episode, events) in by_episode.iter().rev() {
            section.episode {
                h3 { "第 " (episode) " 次" }
                ul.events {
                    @for e in events {
                        li {
                            code { (e.event_type.as_str()) } " · " (when(e.created_at))
                            " → " (e.subscriber) " · " (delivery_state(&e.state))
                            " · 尝试 " (e.attempts) " 次"
                            @if let Some(t) = e.delivered_at { " · 送达 " (when(t)) }
                            @if let Some(err) = &e.last_error { " · " span.error { (err) } }
                        }
                    }
                }
            }
        }
    }
}

pub fn delivery_state(s: &str) -> &str {
    match s {
        "pending" => "待推送",
        "delivered" => "已送达",
        "dead" => "失败（死信）",
        other => other,
    }
}

fn ack_form(clerk: &Clerk, v: &AlertView) -> Markup {
    html! {
        details.act.ack open[v.acknowledged.is_none()] {
            summary { "确认告警" }
            form.ack method="post" action={ "/ui/alerts/" (v.alert_id) "/ack" } {
                input type="hidden" name="csrf" value=(clerk.csrf);
                label { "确认人" input type="text" name="by" value=(clerk.name) required; }
                label { "备注" input type="text" name="note"; }
                button type="submit" { "确认" }
            }
        }
    }
}

fn silence_form(clerk: &Clerk, v: &AlertView) -> Markup {
    let mut targets = vec![(
        format!("rule:{}", v.rule.as_str()),
        format!("规则：{}", rule_name(v.rule)),
    )];
    for (key, scope, label) in [("project", "project", "项目"), ("unit", "unit", "单位")] {
        if let Some(x) = v.facts[key].as_str() {
            targets.push((format!("{scope}:{x}"), format!("{label}：{x}")));
        }
    }
    html! {
        details.act {
            summary { "静默" }
            form.silence method="post" action={ "/ui/alerts/" (v.alert_id) "/silence" } {
                input type="hidden" name="csrf" value=(clerk.csrf);
                fieldset {
                    legend { "静默范围（仅停止向本机构推送，告警照常显示）" }
                    @for (i, (value, label)) in targets.iter().enumerate() {
                        label.choice { input type="radio" name="target" value=(value) checked[i == 0]; (label) }
                    }
                }
                label { "到期日（当日零时止）" input type="date" name="until" required; }
                label { "原因" input type="text" name="reason" required; }
                label { "操作人" input type="text" name="by" value=(clerk.name) required; }
                button type="submit" { "静默" }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct AckForm {
    #[serde(default)]
    by: String,
    #[serde(default)]
    note: String,
}

pub async fn ack(State(c): State<Console>, Path(id): Path<String>, p: Posted<AckForm>) -> Response {
    let store = c.api.store.as_ref();
    let by = p.form.by.trim();
    let by = if by.is_empty() {
        p.clerk.name.as_str()
    } else {
        by
    };
    let now = c.api.clock.now();
    match shared::acknowledge(store, p.clerk.agency, &id, by, &p.form.note, now).await {
        Ok(Acked::Done(_)) => Redirect::to(&format!("/ui/alerts/{id}?done=ack")).into_response(),
        Ok(Acked::NotFound) => layout::no_alert(&p.clerk),
        Ok(Acked::Resolved) => {
            let r = Refused::plain(409, "the alert is resolved", "该告警已解除，无需确认。");
            render(
                &c,
                &p.clerk,
                &id,
                Some(Notice::Refused(r)),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(e) => layout::internal(Some(&p.clerk), &e),
    }
}

#[derive(Deserialize)]
pub struct SilenceForm {
    #[serde(default)]
    target: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    by: String,
}

/// The start of a day in China time.
pub fn china_midnight(day: NaiveDate) -> Option<chrono::DateTime<chrono::Utc>> {
    crate::config::china_time()
        .from_local_datetime(&day.and_hms_opt(0, 0, 0)?)
        .single()
        .map(|t| t.with_timezone(&chrono::Utc))
}

pub async fn silence(
    State(c): State<Console>,
    Path(id): Path<String>,
    p: Posted<SilenceForm>,
) -> Response {
    let store = c.api.store.as_ref();
    let now = c.api.clock.now();
    match shared::alert(store, p.clerk.agency, &id, now).await {
        Ok(Some(_)) => {}
        Ok(None) => return layout::no_alert(&p.clerk),
        Err(e) => return layout::internal(Some(&p.clerk), &e),
    }
    let f = &p.form;
    let (scope, value) = f.target.split_once(':').unwrap_or((&f.target, ""));
    let until = NaiveDate::parse_from_str(f.until.trim(), "%Y-%m-%d")
        .ok()
        .and_then(china_midnight);
    let refuse = |message: String| Refused::plain(400, "bad_silence", &message);
    let checked = match until {
        None => Err(refuse("请填写有效的到期日。".into())),
        Some(until) => shared::check_silence(scope, value, until, &f.reason, now)
            .map(|scope| (scope, until))
            .map_err(|e| refuse(e.to_string())),
    };
    let (scope, until) = match checked {
        Ok(x) => x,
        Err(r) => {
            return render(
                &c,
                &p.clerk,
                &id,
                Some(Notice::Refused(r)),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    let by = if f.by.trim().is_empty() {
        &p.clerk.name
    } else {
        f.by.trim()
    };
    let by = format!("{}:{by}", p.clerk.agency);
    let agency = Some(p.clerk.agency);
    match store
        .add_silence(scope, value, agency, until, f.reason.trim(), &by, now)
        .await
    {
        Ok(_) => Redirect::to(&format!("/ui/alerts/{id}?done=silence")).into_response(),
        Err(e) => layout::internal(Some(&p.clerk), &e),
    }
}

/// The year an alert's actions are taken in: its subject's, else its as-of.
pub fn alert_year(v: &AlertView) -> i32 {
    v.subject["year"]
        .as_i64()
        .and_then(|y| i32::try_from(y).ok())
        .unwrap_or_else(|| v.as_of.year())
}
