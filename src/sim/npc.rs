//! The people's congress budget supervision system (`SYSTEMS.md` §2): an API
//! key, page-number paging over full snapshots, Chinese field names, dashed
//! project codes, 万元 strings with 6 places and China wall-clock times.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

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
    match collection.as_str() {
        "budgets" => page_response(&ds.budgets, page, start, size, budget_wire),
        "execution" => page_response(&ds.execution, page, start, size, execution_wire),
        _ => not_found(),
    }
}

/// One page of a snapshot as npc sends it.
#[derive(Serialize)]
struct Page<W> {
    total: usize,
    page: u64,
    rows: Vec<W>,
}

fn page_response<'a, T, W: Serialize>(
    rows: &'a [T],
    page: u64,
    start: usize,
    size: usize,
    to_wire: fn(&'a T) -> W,
) -> Response {
    let end = start.saturating_add(size).min(rows.len());
    let served = rows.get(start..end).unwrap_or(&[]);
    Json(Page {
        total: rows.len(),
        page,
        rows: served.iter().map(to_wire).collect(),
    })
    .into_response()
}

#[derive(Serialize)]
struct BudgetWire {
    #[serde(rename = "项目编码")]
    project_code: String,
    #[serde(rename = "年度")]
    year: i32,
    #[serde(rename = "批准数")]
    approved: String,
    #[serde(rename = "调整数")]
    adjustment: String,
    #[serde(rename = "批准日期")]
    approved_on: String,
    #[serde(rename = "更新时间")]
    updated_at: String,
}

fn budget_wire(r: &ApprovedBudget) -> BudgetWire {
    BudgetWire {
        project_code: npc_code(&r.project_code),
        year: r.year,
        approved: r.approved.to_wan(),
        adjustment: r.adjustment.to_wan(),
        approved_on: iso_date(r.approved_on),
        updated_at: npc_time(r.updated_at),
    }
}

#[derive(Serialize)]
struct ExecutionWire {
    #[serde(rename = "项目编码")]
    project_code: String,
    #[serde(rename = "年度")]
    year: i32,
    #[serde(rename = "截至日期")]
    as_of: String,
    #[serde(rename = "累计支出")]
    cumulative: String,
    #[serde(rename = "更新时间")]
    updated_at: String,
}

fn execution_wire(r: &ExecutionMirror) -> ExecutionWire {
    ExecutionWire {
        project_code: npc_code(&r.project_code),
        year: r.year,
        as_of: iso_date(r.as_of),
        cumulative: r.cumulative.to_wan(),
        updated_at: npc_time(r.updated_at),
    }
}
