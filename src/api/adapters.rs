//! `GET /v1/adapters`: each configured adapter's schedule, runs and worker.
//! Other agencies see that the discipline adapter runs, never how much it
//! fetched nor what went wrong with it.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiState;
use super::auth::Caller;
use super::error::ApiError;
use crate::adapter::report::StreamReport;
use crate::model::Agency;
use crate::store::StoreError;
use crate::worker::WorkerStatus;

/// One configured adapter as the caller's agency may see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdapterView {
    /// Its name in the config.
    pub adapter: String,
    /// The agency its manifest serves; null when the manifest did not load.
    pub agency: Option<Agency>,
    pub enabled: bool,
    /// The cron expression it runs by (China time).
    pub schedule: String,
    pub next_run: Option<DateTime<Utc>>,
    /// Its newest run, if it ever ran.
    pub last_run: Option<LastRun>,
    pub last_success: Option<DateTime<Utc>>,
    /// Runs and failed runs so far (null if it never ran).
    pub runs: Option<i64>,
    pub failures: Option<i64>,
    /// What each stream did in the newest run; null for discipline's
    /// adapter unless the caller is discipline.
    pub streams: Option<Vec<StreamReport>>,
    /// Why the newest run failed; null when it did not, and for
    /// discipline's adapter unless the caller is discipline.
    pub last_error: Option<String>,
    /// Snapshots whose deletions wait for an operator's word; null for
    /// discipline's adapter unless the caller is discipline.
    pub held: Option<Vec<HeldSnapshot>>,
    /// Its worker in this process, if it has one.
    pub worker: Option<WorkerStatus>,
}

/// The newest run of an adapter.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastRun {
    pub started_at: DateTime<Utc>,
    /// Null while it runs.
    pub finished_at: Option<DateTime<Utc>>,
    /// Null while it runs.
    pub ok: Option<bool>,
    pub seconds: Option<f64>,
}

/// A stream's snapshot whose deletions are held.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeldSnapshot {
    pub stream: String,
    pub deletions: u64,
    pub since: DateTime<Utc>,
    /// The command that accepts them.
    pub accept: String,
}

/// Each configured adapter: schedule, next and last run, counts, last
/// error, held snapshots and the state of its worker in this process.
#[utoipa::path(
    get, path = "/v1/adapters", tag = "adapters",
    responses((status = 200, description = "The configured adapters.", body = Vec<AdapterView>))
)]
pub async fn adapters(
    Caller(agency): Caller,
    State(s): State<ApiState>,
) -> Result<Response, ApiError> {
    Ok(Json(views(&s, agency).await?).into_response())
}

/// Each configured adapter as `agency` may see it: the API's answer and the
/// console's page.
pub async fn views(s: &ApiState, agency: Agency) -> Result<Vec<AdapterView>, StoreError> {
    let config = s.config.borrow().clone();
    let runs = s.store.adapter_runs().await?;
    let held = s.store.held_deletions().await?;
    let now = s.clock.now();
    let mut out = Vec::new();
    for (name, c) in &config.adapters {
        let manifest_agency = config.agency(name);
        let confidential =
            manifest_agency.is_some_and(|a| a.is_confidential()) && agency != Agency::Discipline;
        let run = runs.iter().find(|r| &r.adapter == name);
        let worker = s
            .metrics
            .workers
            .get(&crate::worker::adapter(name))
            .map(|mut w| {
                if confidential {
                    w.last_error = None;
                }
                w
            });
        let report = run
            .and_then(|r| r.report.as_deref())
            .and_then(|t| crate::adapter::SyncReport::from_stored(t).ok());
        let prefix = manifest_agency.map(|a| format!("{a}."));
        out.push(AdapterView {
            adapter: name.clone(),
            agency: manifest_agency,
            enabled: c.enabled,
            schedule: c.schedule.as_str().to_owned(),
            next_run: c.schedule.next_after(now),
            last_run: run.map(|r| LastRun {
                started_at: r.started_at,
                finished_at: r.finished_at,
                ok: r.ok,
                seconds: report.as_ref().map(|x| x.seconds),
            }),
            last_success: run.and_then(|r| r.last_success),
            runs: run.map(|r| r.runs),
            failures: run.map(|r| r.failures),
            streams: if confidential {
                None
            } else {
                report.as_ref().map(|x| x.streams.clone())
            },
            last_error: if confidential {
                None
            } else {
                report.as_ref().and_then(|x| x.error.clone())
            },
            held: (!confidential).then(|| {
                held.iter()
                    .filter(|(stream, _)| prefix.as_deref().is_some_and(|p| stream.starts_with(p)))
                    .map(|(stream, h)| HeldSnapshot {
                        stream: stream.clone(),
                        deletions: h.deletions,
                        since: h.since,
                        accept: format!("liankong sync --adapter {name} --accept-deletions"),
                    })
                    .collect()
            }),
            worker,
        });
    }
    Ok(out)
}
