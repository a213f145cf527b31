//! Error answers: every one is JSON, `{"error": sentence}` (a refusal of
//! an action adds its reason and figures, [`crate::action::Refusal`]).
//! The extractors here stand in for axum's `Json`, `Query` and `Path`, whose
//! own rejections answer in plain text: a malformed request gets the same
//! status from them, as JSON.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};

/// The body of every error answer but a refused action's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What was wrong, for a person to read.
    pub error: String,
}

/// An error answer; the store's errors are logged, not shown.
#[derive(Debug)]
pub enum ApiError {
    NotFound,
    BadRequest(String),
    Conflict(String),
    /// A request the extractors could not read: their status, our JSON.
    Rejected(StatusCode, String),
    Internal(String),
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error) = match self {
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not found".to_owned()),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::Rejected(status, m) => (status, m),
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "API request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_owned(),
                )
            }
        };
        (status, axum::Json(ErrorBody { error })).into_response()
    }
}

/// A JSON request body (`Content-Type: application/json`).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<JsonBody<T>, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(e) => Err(ApiError::Rejected(e.status(), e.body_text())),
        }
    }
}

/// The query string.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<QueryParams<T>, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(QueryParams(v)),
            Err(e) => Err(ApiError::Rejected(e.status(), e.body_text())),
        }
    }
}

/// The path's parameters.
pub struct PathParam<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParam<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathParam<T>, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(PathParam(v)),
            Err(e) => Err(ApiError::Rejected(e.status(), e.body_text())),
        }
    }
}

/// An error response of the document: `description`, with an [`ErrorBody`].
pub fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("Error"))),
        )
        .into()
}

/// The answers of [`JsonBody`] to a body it cannot read, for the document.
pub struct BodyRejections;

impl utoipa::IntoResponses for BodyRejections {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        [
            ("400", "The body is not JSON."),
            ("413", "The body is larger than 2 MiB."),
            ("415", "The body is not sent as `application/json`."),
            (
                "422",
                "The body is JSON but not of this schema (a field missing, unknown or of the wrong type).",
            ),
        ]
        .into_iter()
        .map(|(status, description)| (status.to_owned(), error_response(description)))
        .collect()
    }
}

/// The answer of [`QueryParams`] to a query it cannot read, for the document.
pub struct QueryRejection;

impl utoipa::IntoResponses for QueryRejection {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        BTreeMap::from([(
            "400".to_owned(),
            error_response(
                "A query parameter is unknown, or its value is not of the parameter's schema.",
            ),
        )])
    }
}
