//! The API against its document: the router serves exactly the routes the
//! document describes, every schema is typed, and what the handlers answer
//! to malformed requests is JSON of the documented status. Real SQLite
//! stores and real HTTP on loopback.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use super::{ApiState, RunningConfig};
use crate::clock::FixedClock;
use crate::config::Config;
use crate::store::StoreUrl;

/// The token of the tests' finance clerk.
const FINANCE: &str = "fin-token";

/// Paths the router serves that are not the API's: the console's pages
/// (HTML forms for people, `DESIGN.md` § The console) are not described by
/// the document.
fn outside_the_document(path: &str) -> bool {
    path == "/" || path == "/ui" || path.starts_with("/ui/")
}

async fn state(dir: &std::path::Path) -> ApiState {
    let url = StoreUrl::new(format!("sqlite:{}", dir.join("api.db").display()));
    let store = crate::store::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    let text = format!(
        "[api]\nlisten = \"127.0.0.1:0\"\n[[api.tokens]]\nname = \"clerk\"\nagency = \"finance\"\nsha256 = \"{}\"\n",
        super::token_hash(FINANCE)
    );
    let config = Arc::new(Config::parse(&text).unwrap());
    let (_tx, rx) = tokio::sync::watch::channel(Arc::new(RunningConfig::new(config, &[])));
    ApiState {
        store,
        config: rx,
        metrics: Default::default(),
        clock: Arc::new(FixedClock("2021-09-30T12:00:00Z".parse().unwrap())),
    }
}

/// Serves the API on loopback until the returned token is cancelled.
async fn serve(state: ApiState) -> (String, tokio_util::sync::CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(super::serve(listener, state, stop.clone()));
    (base, stop)
}

/// The paths an axum router serves, read from its `Debug` form (axum
/// lists them there; it has no other way to enumerate them).
fn served_paths(router: &axum::Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    // The routes' own paths, not the fallback router's.
    let routes = debug.split("fallback_router").next().unwrap();
    let mut paths = BTreeSet::new();
    for node in routes.split("paths: {").skip(1) {
        // `RouteId(3): "/v1/alerts/{id}", …}`: the quoted strings up to
        // the closing brace outside them.
        let mut quoted = false;
        let mut current = String::new();
        for c in node.chars() {
            match (quoted, c) {
                (false, '}') => break,
                (false, '"') => quoted = true,
                (true, '"') => {
                    paths.insert(std::mem::take(&mut current));
                    quoted = false;
                }
                (true, c) => current.push(c),
                _ => {}
            }
        }
    }
    paths
}

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// A concrete URL path for a templated one.
fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
}

#[tokio::test]
async fn the_document_describes_exactly_the_routes_the_router_serves() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path()).await;
    let doc: Value = serde_json::to_value(super::document()).unwrap();
    let described: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();

    let router = super::router(state.clone());
    let served: BTreeSet<String> = served_paths(&router)
        .into_iter()
        .filter(|p| !outside_the_document(p))
        .collect();
    assert!(
        served.contains("/v1/alerts/{id}/ack"),
        "paths read: {served:?}"
    );
    assert_eq!(served, described, "served and described paths differ");

    // Each path answers exactly the methods described (axum says 405 to the
    // others). Without a token nothing is done: each /v1 route refuses.
    let (base, stop) = serve(state).await;
    let http = reqwest::Client::new();
    for path in &described {
        for method in METHODS {
            let documented = doc["paths"][path].get(method).is_some();
            let r = http
                .request(
                    method.to_uppercase().parse().unwrap(),
                    format!("{base}{}", concrete(path)),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status() != 405,
                documented,
                "{method} {path}: {} but {}described",
                r.status(),
                if documented { "" } else { "not " }
            );
            let open = doc["paths"][path][method]["security"] == serde_json::json!([{}]);
            if documented && !open {
                assert_eq!(r.status(), 401, "{method} {path} without a token");
            }
        }
    }
    stop.cancel();
}

/// Every schema position of `v` (a schema), with where it is.
fn check_schema(
    v: &Value,
    at: &str,
    schemas: &serde_json::Map<String, Value>,
    bad: &mut Vec<String>,
) {
    let Some(o) = v.as_object() else {
        bad.push(format!("{at}: not a schema object: {v}"));
        return;
    };
    if let Some(r) = o.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
        if !schemas.contains_key(name) {
            bad.push(format!("{at}: dangling {r}"));
        }
        return;
    }
    let composed = ["oneOf", "anyOf", "allOf"];
    for key in composed {
        for (i, item) in o
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            check_schema(item, &format!("{at}/{key}/{i}"), schemas, bad);
        }
    }
    let types: Vec<&str> = match o.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types.is_empty() && !composed.iter().any(|k| o.contains_key(*k)) {
        bad.push(format!("{at}: no type: {v}"));
    }
    if types.contains(&"object") {
        let properties = o.get("properties").and_then(Value::as_object);
        let additional = o.get("additionalProperties");
        let typed_map = additional
            .is_some_and(|a| a.is_object() && a.as_object().is_some_and(|m| !m.is_empty()));
        if properties.is_none_or(|p| p.is_empty()) && !typed_map {
            bad.push(format!("{at}: a bare object: {v}"));
        }
    }
    if types.contains(&"array") {
        match o.get("items") {
            Some(items) => check_schema(items, &format!("{at}/items"), schemas, bad),
            None => bad.push(format!("{at}: an array of anything")),
        }
    }
    for (name, p) in o
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        check_schema(p, &format!("{at}/properties/{name}"), schemas, bad);
    }
    if let Some(a) = o.get("additionalProperties").filter(|a| a.is_object()) {
        check_schema(a, &format!("{at}/additionalProperties"), schemas, bad);
    }
}

#[test]
fn every_schema_of_the_document_is_typed() {
    let doc: Value = serde_json::to_value(super::document()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemas = doc["components"]["schemas"].as_object().unwrap().clone();
    let mut bad = Vec::new();
    for (name, s) in &schemas {
        check_schema(
            s,
            &format!("#/components/schemas/{name}"),
            &schemas,
            &mut bad,
        );
    }
    let mut bodies = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            for (i, p) in op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                check_schema(
                    &p["schema"],
                    &format!("{at} parameter {i}"),
                    &schemas,
                    &mut bad,
                );
            }
            let mut contents: Vec<(String, &Value)> = Vec::new();
            for (t, c) in op["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flatten()
            {
                contents.push((format!("{at} request {t}"), c));
            }
            for (status, r) in op["responses"].as_object().unwrap() {
                for (t, c) in r["content"].as_object().into_iter().flatten() {
                    contents.push((format!("{at} {status} {t}"), c));
                }
            }
            for (where_, c) in contents {
                bodies += 1;
                check_schema(&c["schema"], &where_, &schemas, &mut bad);
            }
            assert!(
                op["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .any(|s| s.starts_with('2')),
                "{at}: no success"
            );
        }
    }
    assert!(bodies > 40, "only {bodies} bodies checked");
    assert!(bad.is_empty(), "untyped schemas:\n{}", bad.join("\n"));
}

/// The checker finds what it is there to find.
#[test]
fn a_bare_object_or_an_untyped_value_is_found() {
    let schemas = serde_json::Map::new();
    for (schema, found) in [
        (serde_json::json!({"type": "object"}), true),
        (serde_json::json!({}), true),
        (
            serde_json::json!({"type": "object", "additionalProperties": true}),
            true,
        ),
        (
            serde_json::json!({"type": "object", "properties": {"facts": {}}}),
            true,
        ),
        (serde_json::json!({"type": "array"}), true),
        (
            serde_json::json!({"$ref": "#/components/schemas/Nowhere"}),
            true,
        ),
        (
            serde_json::json!({"type": "object", "properties": {"n": {"type": "integer"}}}),
            false,
        ),
        (
            serde_json::json!({"type": "object", "additionalProperties": {"type": "string"}}),
            false,
        ),
    ] {
        let mut bad = Vec::new();
        check_schema(&schema, "s", &schemas, &mut bad);
        assert_eq!(!bad.is_empty(), found, "{schema}: {bad:?}");
    }
}

#[tokio::test]
async fn the_daemon_serves_the_document_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let (base, stop) = serve(state(dir.path()).await).await;
    let r = reqwest::get(format!("{base}/v1/openapi.json"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let served: Value = r.json().await.unwrap();
    assert_eq!(served, serde_json::to_value(super::document()).unwrap());
    assert_eq!(
        served["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(served["security"], serde_json::json!([{"bearer": []}]));
    assert_eq!(
        served["paths"]["/v1/alerts"]["get"]["security"],
        serde_json::json!([{"bearer": []}])
    );
    assert_eq!(
        served["paths"]["/healthz"]["get"]["security"],
        serde_json::json!([{}])
    );
    stop.cancel();
}

/// What the handlers answer to requests the extractors cannot read: JSON
/// of the documented status, not axum's plain text.
#[tokio::test]
async fn a_malformed_request_gets_a_json_error_of_the_documented_status() {
    let dir = tempfile::tempdir().unwrap();
    let (base, stop) = serve(state(dir.path()).await).await;
    let http = reqwest::Client::new();
    let doc: Value = serde_json::to_value(super::document()).unwrap();
    let cases = [
        (
            http.get(format!("{base}/v1/alerts?colour=red")),
            "/v1/alerts",
            "get",
            400,
        ),
        (
            http.get(format!("{base}/v1/deliveries?state=lost")),
            "/v1/deliveries",
            "get",
            400,
        ),
        (
            http.get(format!("{base}/v1/actions?year=soon")),
            "/v1/actions",
            "get",
            400,
        ),
        (
            http.delete(format!("{base}/v1/silences/abc")),
            "/v1/silences/{id}",
            "delete",
            400,
        ),
        (
            http.post(format!("{base}/v1/deliveries/abc/redrive")),
            "/v1/deliveries/{id}/redrive",
            "post",
            400,
        ),
        (
            http.post(format!("{base}/v1/alerts/x/ack")).body("{}"),
            "/v1/alerts/{id}/ack",
            "post",
            415,
        ),
        (
            http.post(format!("{base}/v1/alerts/x/ack"))
                .header("content-type", "application/json")
                .body("{"),
            "/v1/alerts/{id}/ack",
            "post",
            400,
        ),
        (
            http.post(format!("{base}/v1/silences"))
                .json(&serde_json::json!({"scope": "rule"})),
            "/v1/silences",
            "post",
            422,
        ),
    ];
    for (request, path, method, status) in cases {
        let r = request.bearer_auth(FINANCE).send().await.unwrap();
        assert_eq!(r.status(), status, "{method} {path}");
        assert_eq!(
            r.headers()["content-type"],
            "application/json",
            "{method} {path}"
        );
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
        assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
        let documented = &doc["paths"][path][method]["responses"][status.to_string()];
        assert_eq!(
            documented["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error",
            "{method} {path} {status} is documented"
        );
    }
    stop.cancel();
}

/// A day the API could not write as RFC 3339 (a year past 9999, or before
/// 0) is refused, not recorded: the fuzzer recorded a freeze effective on
/// `+262142-12-31`, whose answer broke the document's `format: date`.
#[tokio::test]
async fn a_day_past_the_year_9999_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (base, stop) = serve(state(dir.path()).await).await;
    let http = reqwest::Client::new();
    for (field, day) in [
        ("effective_on", "+262142-12-31"),
        ("taken_on", "-0001-01-01"),
    ] {
        let mut body = serde_json::json!({
            "kind": "freeze", "by": "王", "project": "3701002021000001", "year": 2021, "reason": "r",
        });
        body[field] = day.into();
        let r = http
            .post(format!("{base}/v1/actions"))
            .bearer_auth(FINANCE)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{field}");
        let refusal: Value = r.json().await.unwrap();
        assert_eq!(refusal["reason"], "day_out_of_range", "{refusal}");
        assert_eq!(
            refusal["figures"],
            serde_json::json!({"field": field, "day": day})
        );
    }
    let silence = serde_json::json!({
        "scope": "rule", "value": "funds.idle", "until": "+262142-01-01T00:00:00Z", "reason": "r", "by": "王",
    });
    let r = http
        .post(format!("{base}/v1/silences"))
        .bearer_auth(FINANCE)
        .json(&silence)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let listed: Value = http
        .get(format!("{base}/v1/silences"))
        .bearer_auth(FINANCE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, serde_json::json!([]));
    stop.cancel();
}
