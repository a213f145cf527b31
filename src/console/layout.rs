//! The frame of every console page (head, navigation, the person signed in
//! and the sign-out form), the problem pages, and the Chinese words clerks
//! read for the program's enumerations. Every value is spliced by maud,
//! which escapes it; nothing here marks data as markup.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::clerk::Clerk;
use crate::alert::AlertState;
use crate::model::{ActionKind, Agency};
use crate::reconcile::{RuleId, Severity};

/// What the console's answers forbid the browser: loading anything from
/// elsewhere, inline script and style, being framed, sending forms away.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The navigation: (path, label).
const NAV: [(&str, &str); 4] = [
    ("/ui/alerts", "告警"),
    ("/ui/adapters", "数据源"),
    ("/ui/report", "月报"),
    ("/ui/deliveries", "推送"),
];

/// A whole page.
pub fn page(clerk: Option<&Clerk>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · 联控" }
                link rel="stylesheet" href="/ui/style.css";
            }
            body {
                header.top {
                    a.brand href="/ui/alerts" { "联控 · 五方联合监督" }
                    @if let Some(c) = clerk {
                        nav {
                            @for (path, label) in NAV {
                                a href=(path) { (label) }
                            }
                            @if c.agency == Agency::Discipline {
                                a href="/ui/views" { "查阅记录" }
                            }
                        }
                        div.who {
                            span { (agency_name(c.agency)) " · " (c.name) }
                            form method="post" action="/ui/signout" {
                                input type="hidden" name="csrf" value=(c.csrf);
                                button.link type="submit" { "退出" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page as an answer, with the console's headers.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut r = (status, Html(markup.into_string())).into_response();
    secure_headers(&mut r);
    r
}

/// The headers of every console answer: the content security policy, no
/// caching of what a clerk saw, no sniffing, no referrer outside.
pub fn secure_headers(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// A page that says what went wrong.
pub fn problem(clerk: Option<&Clerk>, status: StatusCode, title: &str, detail: &str) -> Response {
    respond(
        status,
        page(
            clerk,
            title,
            html! {
                h1 { (title) }
                p { (detail) }
                p { a href="/ui/alerts" { "返回告警列表" } }
            },
        ),
    )
}

/// The one answer for an alert that does not exist and for one the clerk's
/// agency may not see: the same page, word for word.
pub fn no_alert(clerk: &Clerk) -> Response {
    problem(
        Some(clerk),
        StatusCode::NOT_FOUND,
        "未找到告警",
        "没有这条告警。",
    )
}

/// The store failed: logged, and a page that says so without details.
pub fn internal(clerk: Option<&Clerk>, e: &crate::store::StoreError) -> Response {
    tracing::error!(error = %e, "console request failed");
    problem(
        clerk,
        StatusCode::INTERNAL_SERVER_ERROR,
        "系统错误",
        "请求未能完成，请稍后重试；问题持续时请联系系统管理员。",
    )
}

pub fn agency_name(a: Agency) -> &'static str {
    match a {
        Agency::Npc => "人大预算工委",
        Agency::Finance => "财政局",
        Agency::Audit => "审计局",
        Agency::Discipline => "纪委监委",
        Agency::Orgdept => "组织部",
    }
}

pub fn state_name(s: AlertState) -> &'static str {
    match s {
        AlertState::Firing => "告警中",
        AlertState::Escalated => "已升级",
        AlertState::Resolved => "已解除",
    }
}

pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Warning => "一般",
        Severity::Critical => "严重",
    }
}

pub fn action_name(k: ActionKind) -> &'static str {
    match k {
        ActionKind::Warn => "预警",
        ActionKind::Freeze => "冻结",
        ActionKind::Unfreeze => "解冻",
        ActionKind::Reclaim => "收回",
        ActionKind::Revive => "盘活",
        ActionKind::Withdraw => "撤销",
    }
}

/// What each rule watches, in a clerk's words.
pub fn rule_name(r: RuleId) -> &'static str {
    use RuleId::*;
    match r {
        ApprovedMismatch => "人大批准数与财政指标不符",
        MirrorMismatch => "报人大执行数与财政支付不符",
        Slow => "预算执行进度滞后",
        Idle => "资金长期趴账",
        LumpSum => "大额全年项目未分批拨付",
        TrancheUnsettled => "拨款三个月未支出",
        TargetMissing => "专项资金无绩效目标",
        ResultUnapplied => "绩效评价结果未应用",
        StatusMismatch => "审计整改状态不一致",
        Overdue => "审计整改逾期",
        FreezeBreach => "冻结期间仍有支付",
        RateMismatch => "组织部考评执行率不符",
        Unspendable => "年底预计无法支出",
        OverQuota => "支付超指标",
        UnknownProject => "项目代码财政无记录",
        UnresolvedUnit => "审计单位名称无法匹配",
        ActionFreezeBreach => "冻结后仍有支付",
        ReclaimUnapplied => "收回未在财政落实",
        ReviveUnapplied => "盘活未在财政落实",
        WarnUnanswered => "预警逾期未答复",
    }
}

/// A time as clerks read it: China time, to the minute.
pub fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&crate::config::china_time())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// The page a list's `page` parameter asks for: 1 unless a greater number.
pub fn page_number(p: Option<&str>) -> i64 {
    p.and_then(|p| p.trim().parse::<i64>().ok())
        .unwrap_or(1)
        .max(1)
}
