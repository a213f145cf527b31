//! The handlers. Each `/v1` handler takes the caller's agency first and
//! answers only with what that agency may see. Each carries its
//! `#[utoipa::path]`: the OpenAPI document ([`super::doc`]) is made of
//! these, and the router serves exactly the handlers the document lists.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::auth::{Caller, Person};
use super::error::{
    ApiError, BodyRejections, ErrorBody, JsonBody, PathParam, QueryParams, QueryRejection,
};
use super::shared;
use crate::action::view::ActionView;
use crate::alert::{self, AlertFilter, AlertView, SilenceScope};
use crate::store::alerts::{EventType, SilenceRow};

type Answer = Result<Response, ApiError>;

fn ok(v: impl serde::Serialize) -> Answer {
    Ok(Json(v).into_response())
}

/// The process answers.
#[utoipa::path(
    get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "`ok` and a newline.", body = String, content_type = "text/plain"))
)]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Whether the daemon can serve: its store answers and every migration is applied.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, or `not ready` (with the reason).
    #[schema(value_type = ReadinessStatus)]
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub reason: Option<String>,
}

/// The words of [`Readiness::status`], for the document.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ReadinessStatus {
    Ready,
    #[schema(rename = "not ready")]
    NotReady,
}

/// The store answers and every migration is applied.
#[utoipa::path(
    get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "Ready.", body = Readiness),
        (status = 503, description = "Not ready: the store does not answer or a migration is missing.", body = Readiness),
    )
)]
pub async fn readyz(State(s): State<ApiState>) -> Response {
    match s.store.readiness().await {
        Ok(()) => (
            StatusCode::OK,
            Json(Readiness {
                status: "ready",
                reason: None,
            }),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                status: "not ready",
                reason: Some(e.to_string()),
            }),
        )
            .into_response(),
    }
}

/// Prometheus text: adapters' runs, alerts by rule, severity and state
/// (confidential alerts not counted), the outbox, delivery latency, and
/// this process's workers.
#[utoipa::path(
    get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "The Prometheus text format, version 0.0.4.", body = String, content_type = "text/plain"))
)]
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

/// The caller's view of its alerts, filtered.
#[utoipa::path(
    get, path = "/v1/alerts", tag = "alerts",
    params(AlertFilter),
    responses(
        (status = 200, description = "The alerts the caller's agency receives, as it may see them.", body = Vec<AlertView>),
        QueryRejection,
    )
)]
pub async fn list_alerts(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    QueryParams(filter): QueryParams<AlertFilter>,
) -> Answer {
    ok(alert::visible(s.store.as_ref(), agency, &filter, s.clock.now()).await?)
}

/// One alert, as the caller's agency may see it. A confidential alert's
/// view is logged (who, when), as in the console.
#[utoipa::path(
    get, path = "/v1/alerts/{id}", tag = "alerts",
    params(("id" = String, Path, description = "The alert's id (64 hex digits).")),
    responses(
        (status = 200, description = "The alert.", body = AlertView),
        (status = 404, description = "No such alert, or one the caller may not see: the two are not told apart.", body = ErrorBody),
    )
)]
pub async fn get_alert(
    person: Person,
    State(s): State<ApiState>,
    PathParam(id): PathParam<String>,
) -> Answer {
    let viewer = shared::Viewer {
        agency: person.agency,
        token: &person.token,
        channel: "api",
    };
    let view = shared::view_alert(s.store.as_ref(), &viewer, &id, s.clock.now()).await?;
    ok(view.ok_or(ApiError::NotFound)?)
}

/// An acknowledgement: who (recorded as `agency:by`) and why.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"by": "王科长", "note": "已督办"}))]
pub struct Ack {
    /// The person acknowledging.
    by: String,
    #[serde(default)]
    #[schema(required = false)]
    note: String,
}

/// Acknowledges the alert's current episode.
#[utoipa::path(
    post, path = "/v1/alerts/{id}/ack", tag = "alerts",
    params(("id" = String, Path, description = "The alert's id (64 hex digits).")),
    request_body = Ack,
    responses(
        (status = 200, description = "The alert, acknowledged.", body = AlertView),
        (status = 404, description = "No such alert, or one the caller may not see.", body = ErrorBody),
        (status = 409, description = "The alert is resolved.", body = ErrorBody),
        BodyRejections,
    )
)]
pub async fn ack_alert(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    PathParam(id): PathParam<String>,
    JsonBody(ack): JsonBody<Ack>,
) -> Answer {
    let store = s.store.as_ref();
    match shared::acknowledge(store, agency, &id, &ack.by, &ack.note, s.clock.now()).await? {
        shared::Acked::Done(view) => ok(view),
        shared::Acked::NotFound => Err(ApiError::NotFound),
        shared::Acked::Resolved => Err(ApiError::Conflict("the alert is resolved".into())),
    }
}

/// The silences an agency sees: the operator's and its own.
#[utoipa::path(
    get, path = "/v1/silences", tag = "silences",
    responses((status = 200, description = "Every silence that mutes the caller's deliveries, lifted and expired ones too.", body = Vec<SilenceRow>))
)]
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

/// A silence to set: it mutes the caller's own deliveries of what it covers.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"scope": "rule", "value": "funds.idle",
    "until": "2099-01-01T00:00:00Z", "reason": "年中调整", "by": "王科长"}))]
pub struct NewSilence {
    #[schema(value_type = SilenceScope)]
    scope: String,
    /// A rule id, a unit's 6-digit code or a project's 16-digit code.
    value: String,
    /// Until when; in the future.
    until: DateTime<Utc>,
    /// Why; not empty.
    reason: String,
    /// The person setting it (recorded as `agency:by`).
    by: String,
}

/// The id of a silence set.
#[derive(Serialize, ToSchema)]
pub struct SilenceCreated {
    pub id: i64,
}

/// Sets a silence of the caller's own deliveries.
#[utoipa::path(
    post, path = "/v1/silences", tag = "silences",
    request_body = NewSilence,
    responses(
        (status = 201, description = "Set.", body = SilenceCreated),
        BodyRejections,
        (status = 400, description = "The body is not JSON, or not a silence that can be set: an unknown scope or rule, `until` not in the future or after the year 9999, an empty reason.", body = ErrorBody),
    )
)]
pub async fn add_silence(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    JsonBody(n): JsonBody<NewSilence>,
) -> Answer {
    let now = s.clock.now();
    let scope = shared::check_silence(&n.scope, &n.value, n.until, &n.reason, now)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let by = format!("{agency}:{}", n.by);
    let id = s
        .store
        .add_silence(scope, &n.value, Some(agency), n.until, &n.reason, &by, now)
        .await?;
    Ok((StatusCode::CREATED, Json(SilenceCreated { id })).into_response())
}

/// Lifts one of the caller's own silences.
#[utoipa::path(
    delete, path = "/v1/silences/{id}", tag = "silences",
    params(("id" = i64, Path, description = "The silence's id.")),
    responses(
        (status = 204, description = "Lifted."),
        (status = 400, description = "The id is not an integer.", body = ErrorBody),
        (status = 404, description = "No such silence of the caller's agency (the operator's cannot be lifted through the API).", body = ErrorBody),
        (status = 409, description = "The silence is already lifted.", body = ErrorBody),
    )
)]
pub async fn lift_silence(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    PathParam(id): PathParam<i64>,
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

/// Where a delivery stands.
#[derive(Deserialize, Serialize, ToSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Not delivered yet (retrying when it has failed before).
    Pending,
    Delivered,
    /// Given up after 24 hours of retries; an operator may redrive it.
    Dead,
}

impl DeliveryState {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }
}

#[derive(Deserialize, Default, IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only deliveries in this state.
    state: Option<DeliveryState>,
    /// At most this many, newest first (1 to 1000; others are clamped).
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<i64>,
}

/// One event for one subscriber of the caller's agency, without its body.
#[derive(Serialize, ToSchema)]
pub struct Delivery {
    pub id: i64,
    /// The `webhook-id` header: the same on every attempt.
    pub webhook_id: String,
    /// What the event is about: an alert's id, or an action's.
    pub alert_id: String,
    pub subscriber: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    #[schema(value_type = DeliveryState)]
    pub state: String,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The caller's own deliveries, newest first, without bodies.
#[utoipa::path(
    get, path = "/v1/deliveries", tag = "deliveries",
    params(DeliveryQuery),
    responses(
        (status = 200, description = "The caller's deliveries.", body = Vec<Delivery>),
        QueryRejection,
    )
)]
pub async fn list_deliveries(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    QueryParams(q): QueryParams<DeliveryQuery>,
) -> Answer {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let state = q.state.map(DeliveryState::as_str);
    let rows = shared::deliveries(s.store.as_ref(), agency, state, limit, 0).await?;
    let mine: Vec<Delivery> = rows
        .into_iter()
        .map(|d| Delivery {
            id: d.id,
            webhook_id: d.event_id,
            alert_id: d.alert_id,
            subscriber: d.subscriber,
            event_type: d.event_type,
            state: d.state,
            attempts: d.attempts,
            created_at: d.created_at,
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error,
            delivered_at: d.delivered_at,
        })
        .collect();
    ok(mine)
}

/// The id of a dead letter put back to pending.
#[derive(Serialize, ToSchema)]
pub struct Redriven {
    pub redriven: i64,
}

/// Puts one of the caller's dead letters back to pending, to be sent now.
#[utoipa::path(
    post, path = "/v1/deliveries/{id}/redrive", tag = "deliveries",
    params(("id" = i64, Path, description = "The delivery's id.")),
    responses(
        (status = 200, description = "Pending again.", body = Redriven),
        (status = 400, description = "The id is not an integer.", body = ErrorBody),
        (status = 404, description = "No dead delivery of the caller's agency with this id.", body = ErrorBody),
    )
)]
pub async fn redrive(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    PathParam(id): PathParam<i64>,
) -> Answer {
    if !shared::redrive(s.store.as_ref(), agency, id, s.clock.now()).await? {
        return Err(ApiError::NotFound);
    }
    ok(Redriven { redriven: id })
}

/// The longest `Idempotency-Key` kept.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// A refused action: nothing was recorded.
#[derive(Serialize, ToSchema)]
#[schema(as = Refusal)]
pub struct RefusalBody {
    /// The sentence a person reads, with the figures.
    pub error: String,
    /// A word a program can match (README § Actions lists them), such as
    /// `reclaim_above_balance` or `not_an_action`.
    pub reason: String,
    #[schema(value_type = super::schemas::RefusalFigures)]
    pub figures: serde_json::Value,
}

fn refusal(status: StatusCode, body: RefusalBody) -> Response {
    (status, Json(body)).into_response()
}

/// Takes an action as the token's agency and person. Under an
/// `Idempotency-Key` the agency gave within 24 hours, the first answer
/// again (`Idempotent-Replayed: true`), and nothing recorded.
#[utoipa::path(
    post, path = "/v1/actions", tag = "actions",
    params((
        "Idempotency-Key" = Option<String>, Header, nullable = false,
        description = "1 to 255 visible characters; the same key from the same agency within 24 hours gets the first answer again.",
        min_length = 1, max_length = 255,
    )),
    request_body = crate::action::ActionRequest,
    responses(
        (status = 201, description = "Recorded (or, replayed, recorded before).", body = ActionView,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the first answer again."))),
        (status = 400, description = "The Idempotency-Key is empty, too long or not visible characters.", body = ErrorBody),
        (status = 403, description = "Refused: the agency may not take this kind (`kind_not_allowed`) or withdraw that action (`not_your_action`).", body = RefusalBody),
        (status = 404, description = "Refused: no such alert (`no_such_alert`) or action (`no_such_action`) the caller may see.", body = RefusalBody),
        (status = 409, description = "Refused: the project's or the alert's state forbids it now (`already_frozen`, `not_frozen`, `alert_not_firing`, `already_withdrawn`).", body = RefusalBody),
        (status = 422, description = "Refused: the body is not an action (`not_an_action`), or its own figures or days are wrong (`reclaim_above_balance`, `missing_field`, …).", body = RefusalBody),
    )
)]
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
            return refusal(
                StatusCode::UNPROCESSABLE_ENTITY,
                RefusalBody {
                    error: format!("the request is not an action: {e}"),
                    reason: "not_an_action".into(),
                    figures: serde_json::json!({}),
                },
            );
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
        Err(crate::action::TakeError::Refused(r)) => refusal(
            StatusCode::from_u16(r.status.code()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
            RefusalBody {
                error: r.message,
                reason: r.reason.to_owned(),
                figures: r.figures,
            },
        ),
        Err(crate::action::TakeError::Store(e)) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize, Default, IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActionQuery {
    /// Only the actions on this project (16 digits).
    project: Option<String>,
    /// Only actions of this kind.
    kind: Option<crate::model::ActionKind>,
    /// Only actions of this budget year.
    year: Option<i32>,
}

/// The actions the caller's agency may see (those delivered to it), in
/// the order taken; a withdrawn one carries `withdrawn_by`.
#[utoipa::path(
    get, path = "/v1/actions", tag = "actions",
    params(ActionQuery),
    responses(
        (status = 200, description = "The actions.", body = Vec<ActionView>),
        QueryRejection,
    )
)]
pub async fn list_actions(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    QueryParams(q): QueryParams<ActionQuery>,
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
