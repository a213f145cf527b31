//! The OpenAPI 3.1 document of the API, made from the handlers' own
//! `#[utoipa::path]` annotations and types: [`api_routes`] registers each
//! handler once, and the router and the document are both split from it,
//! so a route is served exactly when it is described. The document itself
//! is open (`GET /v1/openapi.json` needs no token): it holds no data.
//!
//! A new route gets in by annotating its handler with `#[utoipa::path]`
//! (method, path, tag, params, request body, every response it gives) and
//! adding `routes!(handler)` to [`api_routes`]; the API's tests fail for a
//! route served but not described, or a schema left untyped.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{HeaderBuilder, OpenApi as Document, RefOr};
use utoipa::{OpenApi, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ErrorBody, error_response};
use super::state::ApiState;
use super::{adapters, routes, witness};

/// The name of the bearer scheme in the document.
const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "liankong",
        description = "The HTTP API of liankong (联控), the five-party joint supervision of public \
            budgets. Every `/v1` route but this document needs `Authorization: Bearer <token>`; a \
            token belongs to one agency and one person, and every answer is what that agency may \
            see: an alert or action it may not see is not found, exactly like one that does not \
            exist. Money is yuan as a string with two places. Errors are JSON: `{\"error\": …}`, \
            and a refused action adds `reason` and `figures`."
    ),
    components(schemas(ErrorBody, crate::alert::view::StateFilter)),
    tags(
        (name = "operations", description = "Health, readiness, metrics and this document: no token needed."),
        (name = "alerts", description = "Alerts the caller's agency receives."),
        (name = "silences", description = "Silences that mute the caller's deliveries."),
        (name = "deliveries", description = "The caller's webhook outbox."),
        (name = "actions", description = "Warn, freeze, unfreeze, reclaim, revive, withdraw (RULES.md § Actions)."),
        (name = "adapters", description = "The adapters' schedules, runs and workers."),
        (name = "witness", description = "Signed checkpoints of the shared history, and proofs against them (README § Witnessed history)."),
    )
)]
struct ApiDoc;

/// Every route of the API, each with its part of the document.
pub fn api_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::healthz))
        .routes(routes!(routes::readyz))
        .routes(routes!(routes::metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(routes::list_alerts))
        .routes(routes!(routes::get_alert))
        .routes(routes!(routes::ack_alert))
        .routes(routes!(routes::list_silences, routes::add_silence))
        .routes(routes!(routes::lift_silence))
        .routes(routes!(routes::list_deliveries))
        .routes(routes!(routes::redrive))
        .routes(routes!(routes::take_action, routes::list_actions))
        .routes(routes!(adapters::adapters))
        .routes(routes!(witness::list_checkpoints))
        .routes(routes!(witness::get_checkpoint))
        .routes(routes!(witness::inclusion_proof))
        .routes(routes!(witness::consistency_proof))
}

/// The document: the routes' parts, with what every route shares.
pub fn document() -> Document {
    let mut doc = api_routes().into_openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A token made by `liankong token --agency A --name WHO`; the config keeps its sha-256.",
                ))
                .build(),
        ),
    );
    let bearer = || SecurityRequirement::new(BEARER, Vec::<String>::new());
    doc.security = Some(vec![bearer()]);
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            // An operation that names no security of its own needs the token.
            if op.security.is_some() {
                continue;
            }
            op.security = Some(vec![bearer()]);
            let unauthorized = error_response(
                "No token, or one the config does not hold (`WWW-Authenticate: Bearer`).",
            );
            let unauthorized = match unauthorized {
                RefOr::T(mut r) => {
                    r.headers.insert(
                        "WWW-Authenticate".into(),
                        RefOr::T(
                            HeaderBuilder::new()
                                .schema(Some(String::schema()))
                                .description(Some("`Bearer`"))
                                .build(),
                        ),
                    );
                    RefOr::T(r)
                }
                other => other,
            };
            op.responses
                .responses
                .entry("401".into())
                .or_insert(unauthorized);
            op.responses
                .responses
                .entry("500".into())
                .or_insert_with(|| error_response("The store failed; the daemon's log says why."));
        }
    }
    doc
}

static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| document().to_json().unwrap_or_else(|e| e.to_string()));

/// This document, OpenAPI 3.1.
#[utoipa::path(
    get, path = "/v1/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", body = OpenApiDocument))
)]
pub async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}

/// The outline of an OpenAPI 3.1 document, as far as a client reading
/// this one needs it (the specification defines the rest).
pub struct OpenApiDocument;

fn string() -> RefOr<Schema> {
    String::schema()
}

fn object() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Object)
}

fn map_of(values: impl Into<RefOr<Schema>>) -> ObjectBuilder {
    object().additional_properties(Some(AdditionalProperties::RefOr(values.into())))
}

impl PartialSchema for OpenApiDocument {
    fn schema() -> RefOr<Schema> {
        let type_field = || {
            OneOfBuilder::new()
                .item(string())
                .item(ArrayBuilder::new().items(string()))
        };
        let json_schema: RefOr<Schema> = object()
            .property("type", type_field())
            .property("$ref", string())
            .property("description", string())
            .property(
                "properties",
                map_of(object().property("type", type_field())),
            )
            .description(Some("A JSON Schema (2020-12)."))
            .into();
        let parameter = object()
            .property("name", string())
            .property(
                "in",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["query", "header", "path", "cookie"])),
            )
            .property("required", bool::schema())
            .property("description", string())
            .property("schema", json_schema.clone())
            .required("name")
            .required("in");
        let media = || map_of(object().property("schema", json_schema.clone()));
        let response = object()
            .property("description", string())
            .property("content", media())
            .required("description");
        let operation = object()
            .property("summary", string())
            .property("description", string())
            .property("operationId", string())
            .property("tags", ArrayBuilder::new().items(string()))
            .property("parameters", ArrayBuilder::new().items(parameter))
            .property(
                "requestBody",
                object()
                    .property("content", media())
                    .property("required", bool::schema()),
            )
            .property("responses", map_of(response))
            .property(
                "security",
                ArrayBuilder::new().items(map_of(ArrayBuilder::new().items(string()))),
            )
            .required("responses");
        let operation: RefOr<Schema> = operation.into();
        let path_item = ["get", "put", "post", "delete", "patch"]
            .into_iter()
            .fold(object(), |o, m| o.property(m, operation.clone()));
        object()
            .description(Some(
                "An OpenAPI 3.1 document (https://spec.openapis.org/oas/v3.1.0).",
            ))
            .property(
                "openapi",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^3\.1\.[0-9]+$")),
            )
            .property(
                "info",
                object()
                    .property("title", string())
                    .property("version", string())
                    .property("description", string())
                    .required("title")
                    .required("version"),
            )
            .property("paths", map_of(path_item))
            .property(
                "components",
                object().property("schemas", map_of(json_schema)).property(
                    "securitySchemes",
                    map_of(
                        object()
                            .property("type", string())
                            .property("scheme", string()),
                    ),
                ),
            )
            .property(
                "tags",
                ArrayBuilder::new().items(
                    object()
                        .property("name", string())
                        .property("description", string())
                        .required("name"),
                ),
            )
            .property(
                "security",
                ArrayBuilder::new().items(map_of(ArrayBuilder::new().items(string()))),
            )
            .required("openapi")
            .required("info")
            .required("paths")
            .into()
    }
}

impl ToSchema for OpenApiDocument {}
