//! The witnessed history's routes: the checkpoints the deployment signed,
//! each agency seeing only its audience's (discipline's streams only in
//! discipline's). Request and answer types are plain serde structs.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::ApiState;
use super::auth::Caller;
use super::routes::ApiError;
use crate::model::Agency;
use crate::witness::Audience;

/// The checkpoints `agency` receives: every stream for discipline, every
/// stream but discipline's for the others.
pub fn audience_of(agency: Agency) -> Audience {
    if agency.is_confidential() {
        Audience::All
    } else {
        Audience::Shared
    }
}

/// `GET /v1/checkpoints`.
#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointQuery {
    /// Only this checkpoint.
    pub id: Option<i64>,
    /// Only checkpoints numbered below this (paging back).
    pub before: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// `GET /v1/checkpoints`: the caller's audience's checkpoints, newest
/// first, each as delivered in `store.checkpoint` events.
pub async fn list_checkpoints(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    Query(q): Query<CheckpointQuery>,
) -> Result<Response, ApiError> {
    let audience = audience_of(agency);
    let list = match q.id {
        Some(id) => s
            .store
            .checkpoint(id, audience)
            .await?
            .into_iter()
            .collect(),
        None => {
            s.store
                .checkpoints(audience, q.before, q.limit.unwrap_or(100).clamp(1, 1000))
                .await?
        }
    };
    Ok(Json(list).into_response())
}

/// `GET /v1/checkpoints/{id}`: one checkpoint of the caller's audience.
pub async fn get_checkpoint(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let checkpoint = s
        .store
        .checkpoint(id, audience_of(agency))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(checkpoint).into_response())
}
