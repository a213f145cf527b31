//! Signing in with a personal token, and out. The sign-in form has its own
//! CSRF token in a cookie of its own (there is no session yet); a failed
//! sign-in makes its address wait longer before the next (see
//! [`super::session`]).

use axum::extract::{Form, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::clerk::{Clerk, Console, Posted};
use super::layout::{page, problem, respond};
use super::session::{SESSION_COOKIE, SIGNIN_COOKIE, client, cookie, random_token, set_cookie};

#[derive(Deserialize, Default)]
pub struct SigninQuery {
    #[serde(default)]
    expired: Option<String>,
}

fn form(csrf: &str, message: Option<&str>) -> Markup {
    html! {
        section.signin {
            h1 { "登录联控" }
            p { "请输入本人的访问令牌（由系统管理员用 " code { "liankong token" } " 发放）。" }
            @if let Some(m) = message {
                p.notice role="alert" { (m) }
            }
            form method="post" action="/ui/signin" {
                input type="hidden" name="csrf" value=(csrf);
                label for="token" { "访问令牌" }
                input #token type="password" name="token" autocomplete="off" required;
                button type="submit" { "登录" }
            }
        }
    }
}

/// The sign-in page with a fresh CSRF cookie.
fn signin_page(secure: bool, status: StatusCode, message: Option<&str>) -> Response {
    let csrf = match random_token() {
        Ok(t) => t,
        Err(_) => {
            return problem(
                None,
                StatusCode::SERVICE_UNAVAILABLE,
                "暂不能登录",
                "系统没有可用的安全随机数源。",
            );
        }
    };
    let mut r = respond(status, page(None, "登录", form(&csrf, message)));
    if let Ok(v) = HeaderValue::from_str(&set_cookie(SIGNIN_COOKIE, &csrf, secure, None)) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

pub async fn show(
    State(c): State<Console>,
    Query(q): Query<SigninQuery>,
    req: Request,
) -> Response {
    let (mut parts, _) = req.into_parts();
    if Clerk::from_request_parts(&mut parts, &c).await.is_ok() {
        return Redirect::to("/ui/alerts").into_response();
    }
    let (_, secure) = client(&parts, &c.api.config.borrow().api, c.tls);
    let message = q
        .expired
        .is_some()
        .then_some("长时间未操作，会话已结束，请重新登录。");
    signin_page(secure, StatusCode::OK, message)
}

#[derive(Deserialize)]
pub struct SigninForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

pub async fn submit(State(c): State<Console>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let config = c.api.config.borrow().clone();
    let (ip, secure) = client(&parts, &config.api, c.tls);
    let expected = cookie(&parts, SIGNIN_COOKIE).unwrap_or_default().to_owned();
    let Ok(Form(f)) = Form::<SigninForm>::from_request(Request::from_parts(parts, body), &c).await
    else {
        return signin_page(secure, StatusCode::BAD_REQUEST, Some("表单有误，请重试。"));
    };
    if expected.is_empty() || !crate::api::same(expected.as_bytes(), f.csrf.as_bytes()) {
        return signin_page(
            secure,
            StatusCode::FORBIDDEN,
            Some("登录表单已失效（CSRF 校验未通过），请重新输入。"),
        );
    }
    let now = c.api.clock.now();
    if let Err(wait) = c.sessions.may_try(ip, now) {
        let seconds = (wait.num_milliseconds() + 999) / 1000;
        let mut r = signin_page(
            secure,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!("登录失败次数过多，请 {seconds} 秒后再试。")),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        return r;
    }
    let Some(token) = crate::api::configured(&config, f.token.trim()) else {
        let wait = c.sessions.failed(ip, now);
        tracing::warn!(client = %ip, "console sign-in with an unknown token");
        return signin_page(
            secure,
            StatusCode::UNAUTHORIZED,
            Some(&format!(
                "令牌无效。请 {} 秒后再试。",
                wait.num_seconds().max(1)
            )),
        );
    };
    c.sessions.succeeded(ip);
    let id = match c.sessions.open(&token, now, c.idle()) {
        Ok(id) => id,
        Err(_) => return signin_page(secure, StatusCode::SERVICE_UNAVAILABLE, None),
    };
    tracing::info!(agency = %token.agency, token = %token.name, "console sign-in");
    let mut r = Redirect::to("/ui/alerts").into_response();
    for v in [
        set_cookie(SESSION_COOKIE, &id, secure, None),
        set_cookie(SIGNIN_COOKIE, "", secure, Some(0)),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

#[derive(Deserialize)]
pub struct Nothing {}

pub async fn signout(State(c): State<Console>, posted: Posted<Nothing>) -> Response {
    c.sessions.close(&posted.clerk.session);
    let mut r = Redirect::to("/ui/signin").into_response();
    let clear = set_cookie(SESSION_COOKIE, "", posted.clerk.secure, Some(0));
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}
