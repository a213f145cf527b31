//! The alerts page: counts by rule and severity, the list with the API's
//! filters (state, rule, severity, unit, project), paged, and its CSV.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::clerk::{Clerk, Console};
use super::export::csv_answer;
use super::layout::{self, agency_name, page, respond, rule_name, severity_name, state_name, when};
use crate::alert::{AlertFilter, AlertView, StateFilter};
use crate::model::Agency;
use crate::reconcile::{RuleId, Severity};
use crate::store::alerts::AlertState;

/// Alerts on one page.
pub const PAGE: usize = 50;

/// The list's query: the API's filters (all strings, an empty one absent)
/// and the page. `state` is `active` unless asked (`all` for every state).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    pub state: Option<String>,
    pub rule: Option<String>,
    pub severity: Option<String>,
    pub unit: Option<String>,
    pub project: Option<String>,
    /// Only alerts this agency also receives.
    pub agency: Option<String>,
    pub page: Option<String>,
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl ListQuery {
    /// The API's filter of these words; a state or severity that is none
    /// is refused as the API refuses it.
    pub fn filter(&self) -> Result<AlertFilter, BadFilter> {
        let state = match given(&self.state).as_deref() {
            None => Some(StateFilter::Active),
            Some("all") => None,
            Some(s) => Some(
                <StateFilter as clap::ValueEnum>::from_str(s, false)
                    .map_err(|_| BadFilter::State(s.to_owned()))?,
            ),
        };
        let severity = match given(&self.severity) {
            None => None,
            Some(s) => Some(Severity::parse(&s).ok_or(BadFilter::Severity(s))?),
        };
        Ok(AlertFilter {
            state,
            rule: given(&self.rule),
            severity,
            unit: given(&self.unit),
            project: given(&self.project),
            agency: given(&self.agency).and_then(|a| Agency::parse(&a)),
        })
    }

    fn page(&self) -> usize {
        usize::try_from(layout::page_number(self.page.as_deref())).unwrap_or(1)
    }

    /// The query string of these filters on another page.
    fn link(&self, page: usize) -> String {
        let pairs: Vec<(&str, String)> = [
            ("state", given(&self.state)),
            ("rule", given(&self.rule)),
            ("severity", given(&self.severity)),
            ("unit", given(&self.unit)),
            ("project", given(&self.project)),
            ("agency", given(&self.agency)),
            ("page", Some(page.to_string())),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

/// A filter word the console cannot read (a clerk reads the message).
#[derive(Debug, thiserror::Error)]
pub enum BadFilter {
    #[error("没有这种状态：{0}")]
    State(String),
    #[error("没有这种级别：{0}")]
    Severity(String),
}

async fn listed(c: &Console, clerk: &Clerk, q: &ListQuery) -> Result<Vec<AlertView>, Response> {
    let store = c.api.store.as_ref();
    let filter = q.filter().map_err(|e| {
        layout::problem(
            Some(clerk),
            StatusCode::BAD_REQUEST,
            "筛选条件有误",
            &e.to_string(),
        )
    })?;
    crate::alert::visible(store, clerk.agency, &filter, c.api.clock.now())
        .await
        .map_err(|e| layout::internal(Some(clerk), &e))
}

pub async fn list(State(c): State<Console>, clerk: Clerk, Query(q): Query<ListQuery>) -> Response {
    let alerts = match listed(&c, &clerk, &q).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let pages = alerts.len().div_ceil(PAGE).max(1);
    let current = q.page().min(pages);
    let shown = alerts.iter().skip((current - 1) * PAGE).take(PAGE);
    let body = html! {
        h1 { "告警" }
        (filters(&q))
        (counts(&alerts))
        p.meta {
            "共 " (alerts.len()) " 条，第 " (current) " / " (pages) " 页 · "
            a href={ "/ui/alerts.csv?" (q.link(current)) } { "导出 CSV" }
        }
        @if alerts.is_empty() {
            p { "没有符合条件的告警。" }
        }
        ol.cards {
            @for a in shown {
                li.card.(a.severity.as_str()) {
                    a.summary href={ "/ui/alerts/" (a.alert_id) } { (a.summary) }
                    div.badges {
                        span.badge.(a.severity.as_str()) { (severity_name(a.severity)) }
                        span.badge { (state_name(a.state)) }
                        @if a.acknowledged.is_some() { span.badge { "已确认" } }
                        @if a.silenced { span.badge { "已静默" } }
                    }
                    div.meta {
                        (rule_name(a.rule)) " · " code { (a.rule.as_str()) }
                        " · 截至 " (a.as_of) " · 首次 " (when(a.first_seen))
                    }
                }
            }
        }
        nav.pages {
            @if current > 1 {
                a href={ "/ui/alerts?" (q.link(current - 1)) } { "上一页" }
            }
            @if current < pages {
                a href={ "/ui/alerts?" (q.link(current + 1)) } { "下一页" }
            }
        }
    };
    respond(StatusCode::OK, page(Some(&clerk), "告警", body))
}

fn filters(q: &ListQuery) -> Markup {
    let state = given(&q.state).unwrap_or_else(|| "active".into());
    let rule = given(&q.rule).unwrap_or_default();
    let severity = given(&q.severity).unwrap_or_default();
    let agency = given(&q.agency).unwrap_or_default();
    let word = |s: StateFilter| {
        clap::ValueEnum::to_possible_value(&s).map_or_else(String::new, |v| v.get_name().to_owned())
    };
    let states = [
        (word(StateFilter::Active), "未解除"),
        (word(StateFilter::Firing), state_name(AlertState::Firing)),
        (
            word(StateFilter::Escalated),
            state_name(AlertState::Escalated),
        ),
        (
            word(StateFilter::Resolved),
            state_name(AlertState::Resolved),
        ),
        ("all".to_owned(), "全部"),
    ];
    html! {
        form.filters method="get" action="/ui/alerts" {
            label { "状态"
                select name="state" {
                    @for (v, l) in states {
                        option value=(v) selected[state == v] { (l) }
                    }
                }
            }
            label { "规则"
                select name="rule" {
                    option value="" { "全部" }
                    @for r in RuleId::ALL {
                        option value=(r.as_str()) selected[rule == r.as_str()] { (rule_name(r)) }
                    }
                }
            }
            label { "严重程度"
                select name="severity" {
                    option value="" { "全部" }
                    @for s in [Severity::Critical, Severity::Warning] {
                        option value=(s.as_str()) selected[severity == s.as_str()] { (severity_name(s)) }
                    }
                }
            }
            label { "单位编码" input type="text" name="unit" value=(given(&q.unit).unwrap_or_default()); }
            label { "项目编码" input type="text" name="project" value=(given(&q.project).unwrap_or_default()); }
            label { "同时推送给"
                select name="agency" {
                    option value="" { "不限" }
                    @for a in Agency::ALL {
                        option value=(a.as_str()) selected[agency == a.as_str()] { (agency_name(a)) }
                    }
                }
            }
            button type="submit" { "筛选" }
        }
    }
}

fn counts(alerts: &[AlertView]) -> Markup {
    let mut by_rule: BTreeMap<&str, (RuleId, usize, usize)> = BTreeMap::new();
    for a in alerts {
        let e = by_rule.entry(a.rule.as_str()).or_insert((a.rule, 0, 0));
        match a.severity {
            Severity::Critical => e.1 += 1,
            Severity::Warning => e.2 += 1,
        }
    }
    let critical: usize = by_rule.values().map(|e| e.1).sum();
    let warning: usize = by_rule.values().map(|e| e.2).sum();
    html! {
        details.counts {
            summary { "按规则和严重程度统计：严重 " (critical) " 条，一般 " (warning) " 条" }
            div.scroll { table.counts {
                thead { tr { th scope="col" { "规则" } th scope="col" { "严重" } th scope="col" { "一般" } } }
                tbody {
                    @for (rule, c, w) in by_rule.values() {
                        tr {
                            td { (rule_name(*rule)) }
                            td.num { (c) }
                            td.num { (w) }
                        }
                    }
                }
                tfoot { tr { th scope="row" { "合计" } td.num { (critical) } td.num { (warning) } } }
            } }
        }
    }
}

pub async fn csv(State(c): State<Console>, clerk: Clerk, Query(q): Query<ListQuery>) -> Response {
    let alerts = match listed(&c, &clerk, &q).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let header = [
        "alert_id",
        "rule",
        "规则",
        "severity",
        "state",
        "episode",
        "as_of",
        "first_seen",
        "changed_at",
        "acknowledged_by",
        "silenced",
        "summary",
    ];
    let rows = alerts.iter().map(|a| {
        vec![
            a.alert_id.clone(),
            a.rule.as_str().to_owned(),
            rule_name(a.rule).to_owned(),
            a.severity.as_str().to_owned(),
            a.state.as_str().to_owned(),
            a.episode.to_string(),
            a.as_of.to_string(),
            crate::clock::rfc3339(a.first_seen),
            crate::clock::rfc3339(a.changed_at),
            a.acknowledged
                .as_ref()
                .and_then(|v| v.by.clone())
                .unwrap_or_default(),
            a.silenced.to_string(),
            a.summary.clone(),
        ]
    });
    csv_answer(&clerk, "alerts.csv", &header, rows)
}
