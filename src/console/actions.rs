//! The actions on an alert's page: what was taken on its project, the forms
//! of the actions this agency may take (`RULES.md` § Actions), and taking
//! one through [`crate::action::take`], as `POST /v1/actions` does. A
//! refusal is shown as the API states it: its status, its sentence, its
//! reason word and its figures. Each form carries an idempotency key of its
//! own, so a double click records one action.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::alert::{Notice, alert_year, render, value};
use super::clerk::{Clerk, Console, Posted};
use super::layout::{self, action_name, agency_name};
use crate::action::view::ActionView;
use crate::action::{ActionRequest, Actor, TakeError, may_take};
use crate::alert::AlertView;
use crate::model::ActionKind;

/// A refusal as the page shows it.
pub struct Refused {
    pub status: u16,
    pub reason: String,
    pub message: String,
    pub figures: Value,
}

impl Refused {
    pub fn plain(status: u16, reason: &str, message: &str) -> Refused {
        Refused {
            status,
            reason: reason.to_owned(),
            message: message.to_owned(),
            figures: json!({}),
        }
    }

    pub fn markup(&self) -> Markup {
        html! {
            div.notice.refused role="alert" {
                p { strong { "未执行（" (self.status) "）：" } (self.message) }
                p.meta { "原因代码 " code { (self.reason) } }
                @if self.figures.as_object().is_some_and(|m| !m.is_empty()) {
                    (value(&self.figures))
                }
            }
        }
    }
}

/// The actions taken on the alert's project that this agency may see.
pub fn actions_taken(actions: &[ActionView]) -> Markup {
    html! {
        @if actions.is_empty() { p { "暂无。" } }
        ul.actions {
            @for a in actions {
                li {
                    strong { (action_name(a.kind)) }
                    " · " (agency_name(a.agency)) " " (a.by)
                    " · " (a.taken_on)
                    @if let Some(amount) = &a.amount { " · " (amount) " 元" }
                    @if let Some(d) = a.effective_on { " · 自 " (d) " 起" }
                    @if let Some(d) = a.deadline { " · 答复期限 " (d) }
                    @if a.withdrawn_by.is_some() { " · " span.badge { "已撤销" } }
                    div.meta { span.id { (a.action_id) } " · " (a.reason) }
                }
            }
        }
    }
}

/// The project an alert is about, as the agency sees it.
fn project(v: &AlertView) -> Option<&str> {
    v.facts["project"].as_str()
}

/// The forms of every action `clerk`'s agency may take on the alert.
pub fn action_forms(clerk: &Clerk, v: &AlertView, key: &str) -> Markup {
    let Some(project) = project(v) else {
        return html! {};
    };
    let year = alert_year(v);
    let kinds = [
        ActionKind::Warn,
        ActionKind::Freeze,
        ActionKind::Unfreeze,
        ActionKind::Reclaim,
        ActionKind::Revive,
    ];
    let own: Vec<&ActionView> = v
        .actions
        .iter()
        .filter(|a| a.agency == clerk.agency && a.withdrawn_by.is_none())
        .collect();
    let form = |kind: ActionKind, fields: Markup| {
        html! {
            details.act {
                summary { (action_name(kind)) }
                form.(kind.as_str()) method="post" action={ "/ui/alerts/" (v.alert_id) "/act" } {
                    input type="hidden" name="csrf" value=(clerk.csrf);
                    input type="hidden" name="key" value={ (key) "-" (kind.as_str()) };
                    input type="hidden" name="kind" value=(kind.as_str());
                    input type="hidden" name="project" value=(project);
                    input type="hidden" name="year" value=(year);
                    (fields)
                    label { "执行日（默认今天）" input type="date" name="taken_on"; }
                    label { "原因" input type="text" name="reason" required; }
                    label { "经办人" input type="text" name="by" value=(clerk.name) required; }
                    button type="submit" { (action_name(kind)) }
                }
            }
        }
    };
    html! {
        @for kind in kinds.into_iter().filter(|k| may_take(clerk.agency, *k)) {
            (form(kind, match kind {
                ActionKind::Warn => html! {
                    input type="hidden" name="alert" value=(v.alert_id);
                    label { "答复期限" input type="date" name="deadline" required; }
                },
                ActionKind::Freeze | ActionKind::Unfreeze => html! {
                    label { "生效日（默认执行日）" input type="date" name="effective_on"; }
                },
                ActionKind::Reclaim => html! {
                    label { "金额（元）" input type="text" name="amount" inputmode="decimal" required; }
                },
                _ => html! {
                    label { "金额（元）" input type="text" name="amount" inputmode="decimal" required; }
                    label { "来源收回行动编号（多个以逗号分隔）" input type="text" name="from" required; }
                },
            }))
        }
        @for a in own {
            @let id = a.action_id.as_str();
            details.act {
                summary { "撤销 " (action_name(a.kind)) " " span.id { (id) } }
                form.withdraw method="post" action={ "/ui/alerts/" (v.alert_id) "/act" } {
                    input type="hidden" name="csrf" value=(clerk.csrf);
                    input type="hidden" name="key" value={ (key) "-withdraw-" (id) };
                    input type="hidden" name="kind" value="withdraw";
                    input type="hidden" name="action" value=(id);
                    label { "原因" input type="text" name="reason" required; }
                    label { "经办人" input type="text" name="by" value=(clerk.name) required; }
                    button type="submit" { "撤销" }
                }
            }
        }
    }
}

/// An action form as posted: every field a string, empty when not given.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ActionForm {
    key: String,
    kind: String,
    by: String,
    project: String,
    year: String,
    taken_on: String,
    alert: String,
    amount: String,
    from: String,
    effective_on: String,
    deadline: String,
    action: String,
    reason: String,
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

fn day(field: &str, s: &str) -> Result<Option<NaiveDate>, Refused> {
    match opt(s) {
        None => Ok(None),
        Some(d) => NaiveDate::parse_from_str(&d, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| Refused::plain(422, "not_an_action", &format!("{field} 不是有效日期"))),
    }
}

impl ActionForm {
    fn request(&self, clerk: &Clerk) -> Result<ActionRequest, Refused> {
        let kind = ActionKind::parse(self.kind.trim())
            .ok_or_else(|| Refused::plain(422, "not_an_action", "未知的行动类型"))?;
        let by = opt(&self.by).unwrap_or_else(|| clerk.name.clone());
        let mut r = ActionRequest::new(kind, &by, self.reason.trim());
        r.project = opt(&self.project);
        r.year = match opt(&self.year) {
            None => None,
            Some(y) => Some(
                y.parse()
                    .map_err(|_| Refused::plain(422, "not_an_action", "年度有误"))?,
            ),
        };
        r.taken_on = day("执行日", &self.taken_on)?;
        r.alert = opt(&self.alert);
        r.amount = opt(&self.amount);
        r.from = opt(&self.from).map(|f| {
            f.split([',', '，', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        });
        r.effective_on = day("生效日", &self.effective_on)?;
        r.deadline = day("答复期限", &self.deadline)?;
        r.action = opt(&self.action);
        if kind == ActionKind::Withdraw {
            r.project = None;
            r.year = None;
        }
        Ok(r)
    }
}

pub async fn act(
    State(c): State<Console>,
    Path(id): Path<String>,
    p: Posted<ActionForm>,
) -> Response {
    let store = c.api.store.as_ref();
    let now = c.api.clock.now();
    match crate::api::shared::alert(store, p.clerk.agency, &id, now).await {
        Ok(Some(_)) => {}
        Ok(None) => return layout::no_alert(&p.clerk),
        Err(e) => return layout::internal(Some(&p.clerk), &e),
    }
    let refused = |r: Refused| {
        let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
        render(&c, &p.clerk, &id, Some(Notice::Refused(r)), status)
    };
    let req = match p.form.request(&p.clerk) {
        Ok(r) => r,
        Err(r) => return refused(r).await,
    };
    let actor = Actor {
        agency: p.clerk.agency,
        token: p.clerk.name.clone(),
    };
    let config = c.api.config.borrow().clone();
    let key = opt(&p.form.key);
    match crate::action::take(
        store,
        config.subscribers(),
        &actor,
        &req,
        key.as_deref(),
        now,
    )
    .await
    {
        Ok(taken) => Redirect::to(&format!("/ui/alerts/{id}?done=action:{}", taken.action_id))
            .into_response(),
        Err(TakeError::Refused(r)) => {
            refused(Refused {
                status: r.status.code(),
                reason: r.reason.to_owned(),
                message: r.message,
                figures: r.figures,
            })
            .await
        }
        Err(TakeError::Store(e)) => layout::internal(Some(&p.clerk), &e),
    }
}
