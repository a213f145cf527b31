//! The finance bureau's budget management platform (`SYSTEMS.md` §1): OAuth2
//! client credentials, cursor paging ordered by `updated_at`, yuan strings,
//! RFC 3339 times with `+08:00`, and deletions as `deleted` / `voided` flags.
//!
//! The cursor is the (`updated_at`, key) of the last record served, so a
//! record changed while a client pages shows up again at the end of the feed,
//! as with a real change-data feed; it is hex so clients treat it as opaque.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::data::{FinanceRow, SimData, SimDataHandle};
use super::faults::FaultHandle;
use super::format::{
    category_word, grade_word, iso_date, payment_kind_word, quota_kind_word, rectification_word,
    rfc3339_china,
};
use super::http::{
    BadParam, CREDENTIALS, bearer, error_response, int_param, not_found, time_param, to_usize,
};
use crate::model::{Collection, Evaluation, Payment, Project, Quota, Rectification, Target, Unit};

/// What the token answer promises.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

#[derive(Debug)]
struct Tokens {
    issued: HashMap<String, Instant>,
    rng: fastrand::Rng,
}

#[derive(Debug, Clone)]
struct FinanceState {
    data: SimDataHandle,
    faults: FaultHandle,
    tokens: Arc<Mutex<Tokens>>,
}

/// The finance routes, without the fault middleware.
pub(crate) fn router(data: SimDataHandle, faults: FaultHandle, seed: u64) -> Router {
    let state = FinanceState {
        data,
        faults,
        tokens: Arc::new(Mutex::new(Tokens {
            issued: HashMap::new(),
            rng: fastrand::Rng::with_seed(seed),
        })),
    };
    Router::new()
        .route("/oauth/token", post(token))
        .route("/api/v1/{collection}", get(list))
        .with_state(state)
}

async fn token(
    State(s): State<FinanceState>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("grant_type") != Some("client_credentials") {
        return error_response(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    if field("client_id") != Some(CREDENTIALS.finance_client_id)
        || field("client_secret") != Some(CREDENTIALS.finance_client_secret)
    {
        return error_response(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
        );
    }
    let token = {
        let mut tokens = s.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let token = format!("{:016x}{:016x}", tokens.rng.u64(..), tokens.rng.u64(..));
        tokens.issued.insert(token.clone(), Instant::now());
        token
    };
    Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME.as_secs(),
    }))
    .into_response()
}

impl FinanceState {
    /// Whether the request carries a token that still works. Tokens die at
    /// the promised hour, or earlier when the `token_ttl` fault is set.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = bearer(headers) else {
            return false;
        };
        let lifetime = self
            .faults
            .token_ttl()
            .map_or(TOKEN_LIFETIME, |ttl| ttl.min(TOKEN_LIFETIME));
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens
            .issued
            .get(token)
            .is_some_and(|issued| issued.elapsed() < lifetime)
    }
}

async fn list(
    State(s): State<FinanceState>,
    Path(collection): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if !s.authorized(&headers) {
        let mut response = error_response(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token is missing, unknown or expired",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        return response;
    }
    let Some(c) = Collection::parse(crate::model::Agency::Finance, &collection) else {
        return not_found();
    };
    let request = match PageRequest::parse(&query) {
        Ok(r) => r,
        Err(bad) => return bad.into_response(),
    };
    let data = s.data.read();
    page_response(&data, c, &request)
}

/// One page request, validated.
struct PageRequest {
    since: Option<DateTime<Utc>>,
    after: Option<(DateTime<Utc>, String)>,
    limit: usize,
}

impl PageRequest {
    fn parse(query: &HashMap<String, String>) -> Result<PageRequest, BadParam> {
        let limit = to_usize(int_param(query, "limit", 100, 1..=1000)?);
        let since = time_param(query, "updated_since")?;
        let after = match query.get("cursor") {
            None => None,
            Some(c) => Some(decode_cursor(c).ok_or_else(|| BadParam("unknown cursor".to_owned()))?),
        };
        Ok(PageRequest {
            since,
            after,
            limit,
        })
    }
}

fn encode_cursor(at: DateTime<Utc>, key: &str) -> String {
    hex::encode(format!(
        "{}.{:09}|{key}",
        at.timestamp(),
        at.timestamp_subsec_nanos()
    ))
}

fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, String)> {
    let text = String::from_utf8(hex::decode(cursor).ok()?).ok()?;
    let (stamp, key) = text.split_once('|')?;
    let (secs, nanos) = stamp.split_once('.')?;
    let at = DateTime::from_timestamp(secs.parse().ok()?, nanos.parse().ok()?)?;
    Some((at, key.to_owned()))
}

/// Serialises one page while the caller holds the read lock.
fn page_response(data: &SimData, c: Collection, request: &PageRequest) -> Response {
    let ds = data.dataset();
    match c {
        Collection::Units => page(&ds.units, request, unit_wire),
        Collection::Projects => page(&ds.projects, request, |r| {
            project_wire(r, data.is_deleted(c, r.project_code.as_str()))
        }),
        Collection::Quotas => page(&ds.quotas, request, quota_wire),
        Collection::Payments => page(&ds.payments, request, |r| {
            payment_wire(r, data.is_deleted(c, &r.payment_id))
        }),
        Collection::Targets => page(&ds.targets, request, target_wire),
        Collection::Evaluations => page(&ds.evaluations, request, evaluation_wire),
        Collection::Rectifications => page(&ds.rectifications, request, rectification_wire),
        _ => not_found(),
    }
}

/// One page of the feed as finance sends it.
#[derive(Serialize)]
struct Page<W> {
    data: Vec<W>,
    next_cursor: Option<String>,
}

/// The page after the cursor (or from `updated_since`, inclusive): binary
/// searches over rows kept in (`updated_at`, key) order.
fn page<'a, T: FinanceRow, W: Serialize>(
    rows: &'a [T],
    request: &PageRequest,
    to_wire: impl Fn(&'a T) -> W,
) -> Response {
    let mut start = match request.since {
        Some(since) => rows.partition_point(|r| r.updated_at() < since),
        None => 0,
    };
    if let Some((at, key)) = &request.after {
        let past =
            rows.partition_point(|r| (r.updated_at(), r.key().as_ref()) <= (*at, key.as_str()));
        start = start.max(past);
    }
    let end = start.saturating_add(request.limit).min(rows.len());
    let served = rows.get(start..end).unwrap_or(&[]);
    let next_cursor = match served.last() {
        Some(last) if end < rows.len() => Some(encode_cursor(last.updated_at(), &last.key())),
        _ => None,
    };
    Json(Page {
        data: served.iter().map(to_wire).collect(),
        next_cursor,
    })
    .into_response()
}

#[derive(Serialize)]
struct UnitWire<'a> {
    unit_code: &'a str,
    unit_name: &'a str,
    parent_code: Option<&'a str>,
    updated_at: String,
}

fn unit_wire(r: &Unit) -> UnitWire<'_> {
    UnitWire {
        unit_code: r.unit_code.as_str(),
        unit_name: &r.unit_name,
        parent_code: r.parent_code.as_ref().map(|c| c.as_str()),
        updated_at: rfc3339_china(r.updated_at),
    }
}

#[derive(Serialize)]
struct ProjectWire<'a> {
    project_code: &'a str,
    unit_code: &'a str,
    project_name: &'a str,
    category: &'static str,
    full_year: bool,
    start_year: i32,
    end_year: Option<i32>,
    deleted: bool,
    updated_at: String,
}

fn project_wire(r: &Project, deleted: bool) -> ProjectWire<'_> {
    ProjectWire {
        project_code: r.project_code.as_str(),
        unit_code: r.unit_code.as_str(),
        project_name: &r.project_name,
        category: category_word(r.category),
        full_year: r.full_year,
        start_year: r.start_year,
        end_year: r.end_year,
        deleted,
        updated_at: rfc3339_china(r.updated_at),
    }
}

#[derive(Serialize)]
struct QuotaWire<'a> {
    quota_id: &'a str,
    project_code: &'a str,
    fiscal_year: i32,
    kind: &'static str,
    amount: String,
    approved_on: String,
    updated_at: String,
}

fn quota_wire(r: &Quota) -> QuotaWire<'_> {
    QuotaWire {
        quota_id: &r.quota_id,
        project_code: r.project_code.as_str(),
        fiscal_year: r.fiscal_year,
        kind: quota_kind_word(r.kind),
        amount: r.amount.to_yuan(),
        approved_on: iso_date(r.approved_on),
        updated_at: rfc3339_china(r.updated_at),
    }
}

#[derive(Serialize)]
struct PaymentWire<'a> {
    payment_id: &'a str,
    project_code: &'a str,
    kind: &'static str,
    amount: String,
    paid_on: String,
    voided: bool,
    updated_at: String,
}

fn payment_wire(r: &Payment, voided: bool) -> PaymentWire<'_> {
    PaymentWire {
        payment_id: &r.payment_id,
        project_code: r.project_code.as_str(),
        kind: payment_kind_word(r.kind),
        amount: r.amount.to_yuan(),
        paid_on: iso_date(r.paid_on),
        voided,
        updated_at: rfc3339_china(r.updated_at),
    }
}

#[derive(Serialize)]
struct TargetWire<'a> {
    target_id: &'a str,
    project_code: &'a str,
    fiscal_year: i32,
    indicator: &'a str,
    target_value: &'a str,
    updated_at: String,
}

fn target_wire(r: &Target) -> TargetWire<'_> {
    TargetWire {
        target_id: &r.target_id,
        project_code: r.project_code.as_str(),
        fiscal_year: r.fiscal_year,
        indicator: &r.indicator,
        target_value: &r.target_value,
        updated_at: rfc3339_china(r.updated_at),
    }
}

#[derive(Serialize)]
struct EvaluationWire<'a> {
    evaluation_id: &'a str,
    project_code: &'a str,
    fiscal_year: i32,
    score: Value,
    grade: &'static str,
    updated_at: String,
}

fn evaluation_wire(r: &Evaluation) -> EvaluationWire<'_> {
    EvaluationWire {
        evaluation_id: &r.evaluation_id,
        project_code: r.project_code.as_str(),
        fiscal_year: r.fiscal_year,
        score: score_number(r.score.0),
        grade: grade_word(r.grade),
        updated_at: rfc3339_china(r.updated_at),
    }
}

#[derive(Serialize)]
struct RectificationWire<'a> {
    report_id: &'a str,
    finding_no: &'a str,
    status: &'static str,
    reported_on: String,
    updated_at: String,
}

fn rectification_wire(r: &Rectification) -> RectificationWire<'_> {
    RectificationWire {
        report_id: &r.report_id,
        finding_no: &r.finding_no,
        status: rectification_word(r.status),
        reported_on: iso_date(r.reported_on),
        updated_at: rfc3339_china(r.updated_at),
    }
}

/// A score as a JSON number: whole scores as integers (`85`), others as the
/// shortest decimal that reads back to the same hundredths (`79.99`).
fn score_number(hundredths: i64) -> Value {
    if hundredths % 100 == 0 {
        Value::from(hundredths / 100)
    } else {
        // A rate, not money: the shortest round-trip form of n/100 is the
        // exact 2-place decimal.
        #[allow(clippy::cast_precision_loss)]
        let value = hundredths as f64 / 100.0;
        Value::from(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let at = DateTime::from_timestamp(1_625_000_000, 5).unwrap();
        let c = encode_cursor(at, "ZF202100000042");
        assert_eq!(decode_cursor(&c), Some((at, "ZF202100000042".to_owned())));
        assert_eq!(decode_cursor("zz"), None);
        assert_eq!(decode_cursor(&hex::encode("no separator")), None);
    }

    #[test]
    fn scores_are_exact_numbers() {
        assert_eq!(score_number(8500).to_string(), "85");
        assert_eq!(score_number(7999).to_string(), "79.99");
        assert_eq!(score_number(7).to_string(), "0.07");
        assert_eq!(score_number(9050).to_string(), "90.5");
    }
}
