//! What the three HTTP servers share: the fixed test credentials, JSON error
//! answers, and strict parsing of query parameters and bearer tokens. A
//! malformed parameter is a 400, never a guess: the simulator is there to
//! catch clients that build their URLs wrong.

use std::collections::HashMap;
use std::fmt;
use std::ops::RangeInclusive;

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

/// The credentials the simulated systems accept. Fixed, so manifests and
/// test configs can name them.
pub struct Credentials {
    /// finance OAuth2 `client_id`.
    pub finance_client_id: &'static str,
    /// finance OAuth2 `client_secret`.
    pub finance_client_secret: &'static str,
    /// npc `X-Api-Key`.
    pub npc_api_key: &'static str,
    /// discipline `Authorization: Bearer` token.
    pub discipline_token: &'static str,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("finance_client_id", &self.finance_client_id)
            .finish_non_exhaustive()
    }
}

pub const CREDENTIALS: Credentials = Credentials {
    finance_client_id: "liankong-sim",
    finance_client_secret: "finance-secret-2021",
    npc_api_key: "npc-key-2021",
    discipline_token: "discipline-token-2021",
};

/// A JSON error answer: `{"error": code, "message": message}`.
pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": code, "message": message })),
    )
        .into_response()
}

pub(crate) fn bad_request(message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, "invalid_request", message)
}

pub(crate) fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not_found", "no such collection")
}

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A malformed query parameter: answered 400 with its message.
#[derive(Debug)]
pub(crate) struct BadParam(pub String);

impl IntoResponse for BadParam {
    fn into_response(self) -> Response {
        bad_request(&self.0)
    }
}

/// An integer parameter within `range`, `default` when absent.
pub(crate) fn int_param(
    query: &HashMap<String, String>,
    name: &str,
    default: u64,
    range: RangeInclusive<u64>,
) -> Result<u64, BadParam> {
    let Some(raw) = query.get(name) else {
        return Ok(default);
    };
    match raw.parse::<u64>() {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(BadParam(format!(
            "{name} must be an integer from {} to {}",
            range.start(),
            range.end()
        ))),
    }
}

/// An RFC 3339 parameter, `None` when absent.
pub(crate) fn time_param(
    query: &HashMap<String, String>,
    name: &str,
) -> Result<Option<DateTime<Utc>>, BadParam> {
    let Some(raw) = query.get(name) else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(raw)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| {
            BadParam(format!(
                "{name} must be an RFC 3339 time with an offset (a '+' must be sent as %2B)"
            ))
        })
}

/// `usize` from a parameter already checked against its range.
pub(crate) fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}
