//! The people's congress budget supervision system (`SYSTEMS.md` §2): an API
//! key, page-number paging over full snapshots, Chinese field names, dashed
//! project codes, 万元 strings with 6 places and China wall-clock times.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::data::SimDataHandle;
use super::format::{iso_date, npc_code, npc_time};
use super::http::{CREDENTIALS, error_response, int_param, not_found, to_usize};
use crate::model::{ApprovedBudget, ExecutionMirror};

/// The npc routes, without the fault middleware.
pub(crate) fn router(data: SimDataHandle) -> Router {
    Router::new()
        .route("/npc/{collection}", get(list))
        .with_state(data)
}

async fn list(
    State(data): State<SimDataHandle>,
    Path(collection): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    if key != Some(CREDENTIALS.npc_api_key) {
        return error_response(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong X-Api-Key",
        );
    }
    let page = match int_param(&query, "page", 1, 1..=u64::MAX) {
        Ok(p) => p,
        Err(bad) => return bad.into_response(),
    };
    let size = match int_param(&query, "page_size", 100, 1..=500) {
        Ok(s) => to_usize(s),
        Err(bad) => return bad.into_response(),
    };
    // A page so far out that its offset overflows is simply past the end.
    let start = to_usize(page - 1).saturating_mul(size);
    let data = data.read();
    let ds = data.dataset();
    let body = match collection.as_str() {
        "budgets" => page_json(&ds.budgets, page, start, size, budget_json),
        "execution" => page_json(&ds.execution, page, start, size, execution_json),
        _ => return not_found(),
    };
    drop(data);
    Json(body).into_response()
}

fn page_json<T>(
    rows: &[T],
    page: u64,
    start: usize,
    size: usize,
    to_json: fn(&T) -> Value,
) -> Value {
    let end = start.saturating_add(size).min(rows.len());
    let served = rows.get(start..end).unwrap_or(&[]);
    json!({
        "total": rows.len(),
        "page": page,
        "rows": served.iter().map(to_json).collect::<Vec<_>>(),
    })
}

fn budget_json(r: &ApprovedBudget) -> Value {
    json!({
        "项目编码": npc_code(&r.project_code),
        "年度": r.year,
        "批准数": r.approved.to_wan(),
        "调整数": r.adjustment.to_wan(),
        "批准日期": iso_date(r.approved_on),
        "更新时间": npc_time(r.updated_at),
    })
}

fn execution_json(r: &ExecutionMirror) -> Value {
    json!({
        "项目编码": npc_code(&r.project_code),
        "年度": r.year,
        "截至日期": iso_date(r.as_of),
        "累计支出": r.cumulative.to_wan(),
        "更新时间": npc_time(r.updated_at),
    })
}
