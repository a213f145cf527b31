//! Bearer tokens: the config holds only their sha-256; a request's token is
//! hashed and compared in constant time.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::ApiState;
use crate::model::Agency;

/// sha-256 of a token, hex: what the config keeps.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The agency a request speaks for.
pub struct Caller(pub Agency);

/// The agency a request speaks for and the name of its token: tokens are
/// personal, so an action records who took it.
pub struct Person {
    pub agency: Agency,
    pub token: String,
}

/// The configured token a request carries, if any.
fn token_of(parts: &Parts, state: &ApiState) -> Option<crate::config::ApiToken> {
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())?;
    let config = state.config.borrow().clone();
    configured(&config, token)
}

/// The configured token whose hash `token` has, if any (compared in
/// constant time): what a bearer token and a console sign-in are both
/// checked against.
pub(crate) fn configured(
    config: &crate::config::Config,
    token: &str,
) -> Option<crate::config::ApiToken> {
    configured_hash(config, &token_hash(token))
}

/// The configured token of this sha-256 (hex), if it is still configured:
/// a console session ends when its token is taken out of the config.
pub(crate) fn configured_hash(
    config: &crate::config::Config,
    hash: &str,
) -> Option<crate::config::ApiToken> {
    config
        .api
        .tokens
        .iter()
        .find(|t| same(t.sha256.to_ascii_lowercase().as_bytes(), hash.as_bytes()))
        .cloned()
}

impl FromRequestParts<ApiState> for Person {
    type Rejection = Unauthorized;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Person, Unauthorized> {
        token_of(parts, state)
            .map(|t| Person {
                agency: t.agency,
                token: t.name,
            })
            .ok_or(Unauthorized)
    }
}

pub struct Unauthorized;

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            axum::Json(super::error::ErrorBody {
                error: "a valid bearer token is required".into(),
            }),
        )
            .into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = Unauthorized;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Caller, Unauthorized> {
        token_of(parts, state)
            .map(|t| Caller(t.agency))
            .ok_or(Unauthorized)
    }
}
