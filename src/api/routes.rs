//! The handlers. Each `/v1` handler takes the caller's agency first and
//! answers only with what that agency may see.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Caller, Person};
use super::{ApiState, shared};
use crate::alert::{self, AlertFilter};

/// An error answer; the store's errors are logged, not shown.
pub enum ApiError {
    NotFound,
    BadRequest(String),
    Conflict(String),
    Internal(String),
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not found".to_owned()),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "API request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_owned(),
                )
            }
        };
        (status, Json(json!({"error": message}))).into_response()
    }
}

type Answer = Result<Response, ApiError>;

fn ok(v: impl serde::Serialize) -> Answer {
    Ok(Json(v).into_response())
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(s): State<ApiState>) -> Response {
    match s.store.readiness().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reason": e.to_string()})),
        )
            .into_response(),
    }
}

pub async fn metrics(State(s): State<ApiState>) -> Answer {
    let text = crate::metrics::render(s.store.as_ref(), &s.metrics).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

pub async fn list_alerts(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    Query(filter): Query<AlertFilter>,
) -> Answer {
    ok(alert::visible(s.store.as_ref(), agency, &filter, s.clock.now()).await?)
}

/// A confidential alert's view is logged (who, when), as in the console.
pub async fn get_alert(
    person: Person,
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Answer {
    let viewer = shared::Viewer {
        agency: person.agency,
        token: &person.token,
        channel: "api",
    };
    let view = shared::view_alert(s.store.as_ref(), &viewer, &id, s.clock.now()).await?;
    ok(view.ok_or(ApiError::NotFound)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    by: String,
    #[serde(default)]
    note: String,
}

pub async fn ack_alert(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Json(ack): Json<Ack>,
) -> Answer {
    let store = s.store.as_ref();
    match shared::acknowledge(store, agency, &id, &ack.by, &ack.note, s.clock.now()).await? {
        shared::Acked::Done(view) => ok(view),
        shared::Acked::NotFound => Err(ApiError::NotFound),
        shared::Acked::Resolved => Err(ApiError::Conflict("the alert is resolved".into())),
    }
}

/// The silences an agency sees: the operator's and its own.
pub async fn list_silences(Caller(agency): Caller, State(s): State<ApiState>) -> Answer {
    let mine: Vec<_> = s
        .store
        .silences()
        .await?
        .into_iter()
        .filter(|x| x.agency.is_none_or(|a| a == agency))
        .collect();
    ok(mine)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// `rule`, `unit` or `project`.
    scope: String,
    value: String,
    until: DateTime<Utc>,
    reason: String,
    by: String,
}

/// Silences set through the API mute the caller's own deliveries only.
pub async fn add_silence(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    Json(n): Json<NewSilence>,
) -> Answer {
    let now = s.clock.now();
    let scope = shared::check_silence(&n.scope, &n.value, n.until, &n.reason, now)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let by = format!("{agency}:{}", n.by);
    let id = s
        .store
        .add_silence(scope, &n.value, Some(agency), n.until, &n.reason, &by, now)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))).into_response())
}

pub async fn lift_silence(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    Path(id): Path<i64>,
) -> Answer {
    let own = s
        .store
        .silences()
        .await?
        .into_iter()
        .any(|x| x.id == id && x.agency == Some(agency));
    if !own {
        return Err(ApiError::NotFound);
    }
    if !s.store.lift_silence(id, s.clock.now()).await? {
        return Err(ApiError::Conflict("the silence is already lifted".into()));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryQuery {
    state: Option<String>,
    limit: Option<i64>,
}

/// The caller's own deliveries, without bodies.
pub async fn list_deliveries(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    Query(q): Query<DeliveryQuery>,
) -> Answer {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = shared::deliveries(s.store.as_ref(), agency, q.state.as_deref(), limit, 0).await?;
    let mine: Vec<Value> = rows
        .into_iter()
        .map(|d| {
            json!({
                "id": d.id, "webhook_id": d.event_id, "alert_id": d.alert_id,
                "subscriber": d.subscriber, "type": d.event_type, "state": d.state,
                "attempts": d.attempts, "created_at": d.created_at,
                "next_attempt_at": d.next_attempt_at, "last_error": d.last_error,
                "delivered_at": d.delivered_at,
            })
        })
        .collect();
    ok(mine)
}

pub async fn redrive(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    Path(id): Path<i64>,
) -> Answer {
    if !shared::redrive(s.store.as_ref(), agency, id, s.clock.now()).await? {
        return Err(ApiError::NotFound);
    }
    ok(json!({"redriven": id}))
}

/// Each configured adapter: schedule, next run, newest run. Other agencies
/// see that the discipline adapter runs, never how much it fetched.
pub async fn adapters(Caller(agency): Caller, State(s): State<ApiState>) -> Answer {
    ok(shared::adapters(&s, agency).await?)
}

/// The longest `Idempotency-Key` kept.
const MAX_IDEMPOTENCY_KEY: usize = 255;

fn refusal(r: &crate::action::Refusal) -> Response {
    let status = StatusCode::from_u16(r.status.code()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    (status, Json(r.body())).into_response()
}

/// `POST /v1/actions`: 201 and the action, or the refusal's status and
/// reason with its figures. Under an `Idempotency-Key` the agency gave
/// within 24 hours, the first answer again (`Idempotent-Replayed: true`).
pub async fn take_action(
    person: Person,
    State(s): State<ApiState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if !k.trim().is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY => {
            Some(k.trim().to_owned())
        }
        Some(_) => {
            return ApiError::BadRequest(format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible characters"
            ))
            .into_response();
        }
    };
    let req: crate::action::ActionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(
                    json!({"error": format!("the request is not an action: {e}"),
                            "reason": "not_an_action", "figures": {}}),
                ),
            )
                .into_response();
        }
    };
    let config = s.config.borrow().clone();
    let actor = crate::action::Actor {
        agency: person.agency,
        token: person.token,
    };
    match crate::action::take(
        s.store.as_ref(),
        config.subscribers(),
        &actor,
        &req,
        key.as_deref(),
        s.clock.now(),
    )
    .await
    {
        Ok(taken) => {
            let mut r = (StatusCode::CREATED, Json(taken.answer)).into_response();
            if taken.replayed {
                r.headers_mut().insert(
                    "idempotent-replayed",
                    axum::http::HeaderValue::from_static("true"),
                );
            }
            r
        }
        Err(crate::action::TakeError::Refused(r)) => refusal(&r),
        Err(crate::action::TakeError::Store(e)) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ActionQuery {
    project: Option<String>,
    kind: Option<crate::model::ActionKind>,
    year: Option<i32>,
}

/// `GET /v1/actions`: the actions the caller's agency may see.
pub async fn list_actions(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    Query(q): Query<ActionQuery>,
) -> Answer {
    ok(crate::action::visible(
        s.store.as_ref(),
        agency,
        q.project.as_deref(),
        q.kind,
        q.year,
    )
    .await?)
}
