//! The handlers. Each `/v1` handler takes the caller's agency first and
//! answers only with what that agency may see.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::{Caller, Person};
use crate::alert::{self, AlertFilter, SilenceScope};
use crate::model::Agency;

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

/// The alert if `agency` may see it; otherwise not found, whether it exists or not.
async fn visible_alert(
    s: &ApiState,
    agency: Agency,
    id: &str,
) -> Result<alert::AlertView, ApiError> {
    let a = s.store.get_alert(id).await?.ok_or(ApiError::NotFound)?;
    let silences = alert::in_force(s.store.silences().await?, s.clock.now());
    let mut view = alert::view_for(&a, agency, &silences).ok_or(ApiError::NotFound)?;
    let actions = s.store.actions(None).await?;
    alert::view::add_actions(std::slice::from_mut(&mut view), &[&a], &actions, agency);
    Ok(view)
}

pub async fn get_alert(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Answer {
    ok(visible_alert(&s, agency, &id).await?)
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
    visible_alert(&s, agency, &id).await?;
    let by = format!("{agency}:{}", ack.by);
    if !s
        .store
        .ack_alert(&id, &by, &ack.note, s.clock.now())
        .await?
    {
        return Err(ApiError::Conflict("the alert is resolved".into()));
    }
    ok(visible_alert(&s, agency, &id).await?)
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
    let Some(scope) = SilenceScope::parse(&n.scope) else {
        return Err(ApiError::BadRequest(
            "scope must be rule, unit or project".into(),
        ));
    };
    if scope == SilenceScope::Rule && !alert::known_rule(&n.value) {
        return Err(ApiError::BadRequest(format!("unknown rule {:?}", n.value)));
    }
    if n.until <= now {
        return Err(ApiError::BadRequest("until is in the past".into()));
    }
    if n.reason.trim().is_empty() {
        return Err(ApiError::BadRequest("a silence needs a reason".into()));
    }
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
    let rows = s
        .store
        .deliveries(
            q.state.as_deref(),
            q.limit.unwrap_or(100).clamp(1, 1000) * 10,
        )
        .await?;
    let mine: Vec<Value> = rows
        .into_iter()
        .filter(|d| d.agency == agency)
        .take(q.limit.unwrap_or(100).clamp(1, 1000) as usize)
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
    let rows = s.store.deliveries(Some("dead"), 100_000).await?;
    if !rows.iter().any(|d| d.id == id && d.agency == agency) {
        return Err(ApiError::NotFound);
    }
    s.store.redrive(Some(id), s.clock.now()).await?;
    ok(json!({"redriven": id}))
}

/// Each configured adapter: schedule, next run, newest run. Other agencies
/// see that the discipline adapter runs, never how much it fetched.
pub async fn adapters(Caller(agency): Caller, State(s): State<ApiState>) -> Answer {
    let config = s.config.borrow().clone();
    let runs = s.store.adapter_runs().await?;
    let held = s.store.held_deletions().await?;
    let now = s.clock.now();
    let mut out = Vec::new();
    for (name, c) in &config.adapters {
        let manifest_agency = config.agency(name);
        let confidential =
            manifest_agency.is_some_and(|a| a.is_confidential()) && agency != Agency::Discipline;
        let run = runs.iter().find(|r| &r.adapter == name);
        let worker = s
            .metrics
            .workers
            .get(&crate::worker::adapter(name))
            .map(|w| {
                json!({
                    "activity": w.activity, "last_success": w.last_success,
                    "consecutive_errors": w.consecutive_errors, "errors": w.errors,
                    "last_error": if confidential { None } else { w.last_error },
                    "last_error_at": w.last_error_at,
                })
            });
        let report = run
            .and_then(|r| r.report.as_deref())
            .and_then(|t| crate::adapter::SyncReport::from_stored(t).ok());
        out.push(json!({
            "adapter": name,
            "agency": manifest_agency,
            "enabled": c.enabled,
            "schedule": c.schedule.as_str(),
            "next_run": c.schedule.next_after(now),
            "last_run": run.map(|r| json!({
                "started_at": r.started_at, "finished_at": r.finished_at, "ok": r.ok,
                "seconds": report.as_ref().map(|x| x.seconds),
            })),
            "last_success": run.and_then(|r| r.last_success),
            "runs": run.map(|r| r.runs),
            "failures": run.map(|r| r.failures),
            "streams": if confidential { None } else { report.as_ref().map(|x| &x.streams) },
            "last_error": if confidential { None } else { report.as_ref().and_then(|x| x.error.as_ref()) },
            // Snapshots whose deletions wait for an operator's word.
            "held": if confidential { Value::Null } else {
                let prefix = manifest_agency.map(|a| format!("{a}."));
                Value::Array(held.iter()
                    .filter(|(stream, _)| prefix.as_deref().is_some_and(|p| stream.starts_with(p)))
                    .map(|(stream, h)| json!({
                        "stream": stream, "deletions": h.deletions, "since": h.since,
                        "accept": format!("liankong sync --adapter {name} --accept-deletions"),
                    }))
                    .collect())
            },
            "worker": worker,
        }));
    }
    ok(out)
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
