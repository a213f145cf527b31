//! The console's routes under `/ui`, with their shared state.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::clerk::Console;
use super::layout::secure_headers;
use super::session::Sessions;
use super::{actions, adapters, alert, alerts, deliveries, report, signin, views};
use crate::api::ApiState;

/// The console's one stylesheet.
const STYLE: &str = include_str!("style.css");

async fn style() -> Response {
    let mut r = STYLE.into_response();
    secure_headers(&mut r);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

async fn unknown() -> Response {
    super::layout::problem(None, StatusCode::NOT_FOUND, "未找到页面", "没有这个页面。")
}

/// The console; `tls` when liankong terminates TLS itself. Its sessions
/// live as long as the router.
pub fn router(api: ApiState, tls: bool) -> Router {
    let state = Console {
        api,
        sessions: Arc::new(Sessions::default()),
        tls,
    };
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/alerts") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/alerts") }))
        .route("/ui/style.css", get(style))
        .route("/ui/signin", get(signin::show).post(signin::submit))
        .route("/ui/signout", post(signin::signout))
        .route("/ui/alerts", get(alerts::list))
        .route("/ui/alerts.csv", get(alerts::csv))
        .route("/ui/alerts/{id}", get(alert::show))
        .route("/ui/alerts/{id}/ack", post(alert::ack))
        .route("/ui/alerts/{id}/silence", post(alert::silence))
        .route("/ui/alerts/{id}/act", post(actions::act))
        .route("/ui/adapters", get(adapters::show))
        .route("/ui/report", get(report::show))
        .route("/ui/report.csv", get(report::csv))
        .route("/ui/deliveries", get(deliveries::list))
        .route("/ui/deliveries.csv", get(deliveries::csv))
        .route("/ui/deliveries/{id}/redrive", post(deliveries::redrive))
        .route("/ui/views", get(views::list))
        .route("/ui/{*rest}", get(unknown))
        .with_state(state)
}
