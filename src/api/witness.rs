//! The witnessed history's routes: the checkpoints the deployment signed,
//! each agency seeing only its audience's (discipline's streams only in
//! discipline's), and proofs against them. Request types are plain serde
//! structs here; the answers are `Checkpoint` and the proofs of
//! `crate::witness::proof`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody, PathParam, QueryParams, QueryRejection};
use crate::model::{Agency, Collection};
use crate::witness::proof::{self, ProofError};
use crate::witness::proof::{ConsistencyProof, InclusionProof};
use crate::witness::{Audience, Checkpoint};

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
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
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
#[utoipa::path(
    get, path = "/v1/checkpoints", tag = "witness",
    params(CheckpointQuery),
    responses(
        (status = 200, description = "The checkpoints of the caller's audience (discipline's streams only in discipline's), newest first.", body = Vec<Checkpoint>),
        QueryRejection,
    )
)]
pub async fn list_checkpoints(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    QueryParams(q): QueryParams<CheckpointQuery>,
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
#[utoipa::path(
    get, path = "/v1/checkpoints/{id}", tag = "witness",
    params(("id" = i64, Path, description = "The checkpoint's number.")),
    responses(
        (status = 200, description = "The checkpoint, as delivered to the caller's audience.", body = Checkpoint),
        (status = 400, description = "The id is not an integer.", body = ErrorBody),
        (status = 404, description = "No such checkpoint.", body = ErrorBody),
    )
)]
pub async fn get_checkpoint(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    PathParam(id): PathParam<i64>,
) -> Result<Response, ApiError> {
    let checkpoint = s
        .store
        .checkpoint(id, audience_of(agency))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(checkpoint).into_response())
}

/// `GET /v1/proofs`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProofQuery {
    /// The stream, e.g. `finance.payments`.
    pub stream: String,
    pub key: String,
    /// The version; the current one when absent.
    pub version: Option<i64>,
    /// The checkpoint to prove it against; the newest when absent.
    pub checkpoint: Option<i64>,
}

/// Whether `agency` may be given a proof (and the content) of a record of
/// `collection`: discipline's only to discipline, an action only to the
/// agencies it was delivered to.
async fn may_prove(
    s: &ApiState,
    agency: Agency,
    collection: Collection,
    key: &str,
) -> Result<bool, ApiError> {
    if collection
        .source()
        .agency()
        .is_some_and(|a| a.is_confidential())
    {
        return Ok(agency.is_confidential());
    }
    if collection == Collection::Actions {
        let actions = s.store.actions(None).await?;
        return Ok(actions
            .iter()
            .find(|a| a.action_id == key)
            .is_some_and(|a| crate::action::view::may_see(&actions, a, agency)));
    }
    Ok(true)
}

fn proof_error(e: ProofError) -> ApiError {
    match e {
        ProofError::Store(e) => e.into(),
        ProofError::NotFound => ApiError::NotFound,
        ProofError::Backwards { .. } => ApiError::BadRequest(e.to_string()),
        ProofError::NotYet(_) | ProofError::NotExtended { .. } => ApiError::Conflict(e.to_string()),
    }
}

/// The checkpoint `id` of the caller's audience, or its newest.
async fn checkpoint_for(
    s: &ApiState,
    audience: Audience,
    id: Option<i64>,
) -> Result<Checkpoint, ApiError> {
    let found = match id {
        Some(id) => s.store.checkpoint(id, audience).await?,
        None => s
            .store
            .checkpoints(audience, None, 1)
            .await?
            .into_iter()
            .next(),
    };
    found.ok_or(ApiError::NotFound)
}

/// `GET /v1/proofs?stream=&key=&version=&checkpoint=`: the inclusion proof
/// of one record version in a checkpoint of the caller's audience. A record
/// the caller may not see is not found, exactly as one that does not exist.
#[utoipa::path(
    get, path = "/v1/proofs", tag = "witness",
    params(ProofQuery),
    responses(
        (status = 200, description = "The version's entry in its batch's tree, and the batch in the stream's tree at the checkpoint.", body = InclusionProof),
        (status = 400, description = "No such stream.", body = ErrorBody),
        (status = 404, description = "No such record, version or checkpoint, or one the caller may not see: the two are not told apart.", body = ErrorBody),
        (status = 409, description = "The store no longer extends the checkpoint, or the version came after it.", body = ErrorBody),
        QueryRejection,
    )
)]
pub async fn inclusion_proof(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    QueryParams(q): QueryParams<ProofQuery>,
) -> Result<Response, ApiError> {
    let collection = Collection::ALL
        .into_iter()
        .find(|c| c.to_string() == q.stream)
        .ok_or_else(|| ApiError::BadRequest(format!("no stream {:?}", q.stream)))?;
    if !may_prove(&s, agency, collection, &q.key).await? {
        return Err(ApiError::NotFound);
    }
    let version = match q.version {
        Some(v) => v,
        None => {
            s.store
                .get(collection, &q.key)
                .await?
                .ok_or(ApiError::NotFound)?
                .version
        }
    };
    let checkpoint = checkpoint_for(&s, audience_of(agency), q.checkpoint).await?;
    let proof = proof::inclusion(s.store.as_ref(), &checkpoint, collection, &q.key, version)
        .await
        .map_err(proof_error)?;
    Ok(Json(proof).into_response())
}

/// `GET /v1/proofs/consistency`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The earlier checkpoint's number.
    pub from: i64,
    /// The later checkpoint's number.
    pub to: i64,
}

/// `GET /v1/proofs/consistency?from=&to=`: that checkpoint `to` extends
/// checkpoint `from`, for every stream of the caller's audience.
#[utoipa::path(
    get, path = "/v1/proofs/consistency", tag = "witness",
    params(ConsistencyQuery),
    responses(
        (status = 200, description = "For every stream of the caller's audience, that checkpoint `to` extends checkpoint `from` (RFC 9162 consistency proofs over batch roots).", body = ConsistencyProof),
        (status = 400, description = "`to` comes before `from`.", body = ErrorBody),
        (status = 404, description = "No such checkpoint.", body = ErrorBody),
        (status = 409, description = "The store no longer extends one of them.", body = ErrorBody),
        QueryRejection,
    )
)]
pub async fn consistency_proof(
    Caller(agency): Caller,
    State(s): State<ApiState>,
    QueryParams(q): QueryParams<ConsistencyQuery>,
) -> Result<Response, ApiError> {
    let audience = audience_of(agency);
    let from = checkpoint_for(&s, audience, Some(q.from)).await?;
    let to = checkpoint_for(&s, audience, Some(q.to)).await?;
    let proof = proof::consistency(s.store.as_ref(), &from, &to)
        .await
        .map_err(proof_error)?;
    Ok(Json(proof).into_response())
}
