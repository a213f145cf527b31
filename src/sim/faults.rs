//! Fault injection and the request log, shared by the three HTTP servers.
//!
//! One middleware sits in front of every route of every server (the finance
//! token endpoint included). Per request it records what was asked and what
//! was answered, and decides from a seeded generator whether to delay, refuse
//! (503), throttle (429 with `Retry-After`) or cut the body in half. It draws
//! the same three numbers for every request whatever the settings, so one
//! seed and one request sequence give one run. Early token expiry is the one
//! fault the finance server applies itself, since only it knows its tokens.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::http::error_response;

/// What the servers get wrong, on purpose. The default is nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Fraction of requests answered `503 Service Unavailable`.
    pub error_rate: f64,
    /// Fraction of requests answered `429 Too Many Requests`.
    pub rate_limit_rate: f64,
    /// The `Retry-After` a 429 carries, in seconds.
    pub retry_after_secs: u64,
    /// Added before every answer.
    pub latency: Duration,
    /// Fraction of `200` answers whose body is cut in half (still `200`).
    pub truncate_rate: f64,
    /// Finance tokens stop working this long after issue, although the token
    /// answer still says `expires_in: 3600`.
    pub token_ttl: Option<Duration>,
    /// Any request whose `path?query` contains one of these gets a 503.
    pub always_fail: Vec<String>,
    /// Rows served garbled: what a source's data-entry mistake looks like.
    pub garble: Vec<Garble>,
}

/// In every answer to a request whose `path?query` contains `path`, each
/// row (an object in an array of the JSON body) whose field `when` is the
/// string `equals` gets its field `set` replaced by `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct Garble {
    pub path: String,
    pub when: String,
    pub equals: String,
    pub set: String,
    pub to: serde_json::Value,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            retry_after_secs: 1,
            latency: Duration::ZERO,
            truncate_rate: 0.0,
            token_ttl: None,
            always_fail: Vec::new(),
            garble: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct FaultState {
    faults: Faults,
    rng: fastrand::Rng,
}

/// The live fault settings, changeable while the servers run.
#[derive(Debug, Clone)]
pub struct FaultHandle {
    inner: Arc<Mutex<FaultState>>,
}

/// What the middleware does with one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decision {
    pub latency: Duration,
    pub outcome: Outcome,
    pub truncate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Pass,
    Unavailable,
    RateLimited { retry_after_secs: u64 },
}

impl FaultHandle {
    pub(crate) fn new(seed: u64) -> FaultHandle {
        FaultHandle {
            inner: Arc::new(Mutex::new(FaultState {
                faults: Faults::default(),
                rng: fastrand::Rng::with_seed(seed),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current settings.
    pub fn get(&self) -> Faults {
        self.lock().faults.clone()
    }

    /// Replaces every setting.
    pub fn set(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// Changes some settings.
    pub fn update(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.lock().faults);
    }

    /// Back to no faults at all.
    pub fn clear(&self) {
        self.set(Faults::default());
    }

    pub fn set_error_rate(&self, rate: f64) {
        self.update(|f| f.error_rate = rate);
    }

    pub fn set_rate_limit(&self, rate: f64, retry_after_secs: u64) {
        self.update(|f| {
            f.rate_limit_rate = rate;
            f.retry_after_secs = retry_after_secs;
        });
    }

    pub fn set_latency(&self, latency: Duration) {
        self.update(|f| f.latency = latency);
    }

    pub fn set_truncate_rate(&self, rate: f64) {
        self.update(|f| f.truncate_rate = rate);
    }

    pub fn set_token_ttl(&self, ttl: Option<Duration>) {
        self.update(|f| f.token_ttl = ttl);
    }

    /// Makes every request whose `path?query` contains `pattern` fail.
    pub fn add_always_fail(&self, pattern: &str) {
        self.update(|f| f.always_fail.push(pattern.to_owned()));
    }

    /// Serves the rows that `garble` picks garbled, until cleared.
    pub fn add_garble(&self, garble: Garble) {
        self.update(|f| f.garble.push(garble));
    }

    /// The garbles that apply to a request for `target`.
    fn garbles(&self, target: &str) -> Vec<Garble> {
        let state = self.lock();
        state
            .faults
            .garble
            .iter()
            .filter(|g| target.contains(g.path.as_str()))
            .cloned()
            .collect()
    }

    pub(crate) fn token_ttl(&self) -> Option<Duration> {
        self.lock().faults.token_ttl
    }

    /// Decides the fate of a request for `target` (`path?query`).
    pub(crate) fn decide(&self, target: &str) -> Decision {
        let mut state = self.lock();
        let (e, r, t) = (state.rng.f64(), state.rng.f64(), state.rng.f64());
        let f = &state.faults;
        let outcome =
            if f.always_fail.iter().any(|p| target.contains(p.as_str())) || e < f.error_rate {
                Outcome::Unavailable
            } else if r < f.rate_limit_rate {
                Outcome::RateLimited {
                    retry_after_secs: f.retry_after_secs,
                }
            } else {
                Outcome::Pass
            };
        Decision {
            latency: f.latency,
            outcome,
            truncate: t < f.truncate_rate,
        }
    }
}

/// One request as a server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `finance`, `npc` or `discipline`.
    pub system: &'static str,
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`; empty when there is none.
    pub query: String,
    /// The status actually answered, injected faults included.
    pub status: u16,
}

/// Every request to every server, in the order the answers were sent.
#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    inner: Arc<Mutex<Vec<RequestRecord>>>,
}

impl RequestLog {
    pub fn all(&self) -> Vec<RequestRecord> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn clear(&self) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn push(&self, record: RequestRecord) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record);
    }
}

/// The middleware's state: which server it guards.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    pub system: &'static str,
    pub faults: FaultHandle,
    pub log: RequestLog,
}

/// The middleware: log, delay, refuse, throttle or truncate.
pub(crate) async fn guard(State(g): State<Guard>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let target = if query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{query}")
    };
    let decision = g.faults.decide(&target);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    let response = match decision.outcome {
        Outcome::Unavailable => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the service is temporarily unavailable",
        ),
        Outcome::RateLimited { retry_after_secs } => {
            let mut response = error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        Outcome::Pass => {
            let garbles = g.faults.garbles(&target);
            let mut response = next.run(request).await;
            if !garbles.is_empty() && response.status() == StatusCode::OK {
                response = garble(response, &garbles).await;
            }
            if decision.truncate && response.status() == StatusCode::OK {
                truncate(response).await
            } else {
                response
            }
        }
    };
    g.log.push(RequestRecord {
        system: g.system,
        method,
        path,
        query,
        status: response.status().as_u16(),
    });
    response
}

/// The body with the rows the garbles pick rewritten.
async fn garble(response: Response, garbles: &[Garble]) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes)).into_response();
    };
    fn walk(value: &mut serde_json::Value, garbles: &[Garble]) {
        match value {
            serde_json::Value::Array(rows) => {
                for row in rows.iter_mut() {
                    if let serde_json::Value::Object(fields) = row {
                        for g in garbles {
                            if fields.get(&g.when).and_then(|v| v.as_str()) == Some(&g.equals) {
                                fields.insert(g.set.clone(), g.to.clone());
                            }
                        }
                    }
                }
            }
            serde_json::Value::Object(fields) => {
                for v in fields.values_mut() {
                    walk(v, garbles);
                }
            }
            _ => {}
        }
    }
    walk(&mut value, garbles);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(value.to_string())).into_response()
}

/// The first half of the body, still with status 200.
async fn truncate(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(half)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_reproducible_and_follow_the_settings() {
        let a = FaultHandle::new(42);
        let b = FaultHandle::new(42);
        for h in [&a, &b] {
            h.set_error_rate(0.3);
            h.set_rate_limit(0.3, 7);
        }
        let da: Vec<_> = (0..50).map(|_| a.decide("/x")).collect();
        let db: Vec<_> = (0..50).map(|_| b.decide("/x")).collect();
        assert_eq!(da, db);
        assert!(da.iter().any(|d| d.outcome == Outcome::Unavailable));
        assert!(da.iter().any(|d| d.outcome
            == Outcome::RateLimited {
                retry_after_secs: 7
            }));
        assert!(da.iter().any(|d| d.outcome == Outcome::Pass));

        a.clear();
        a.add_always_fail("cursor=abc");
        assert_eq!(
            a.decide("/api/v1/units?cursor=abc").outcome,
            Outcome::Unavailable
        );
        assert_eq!(a.decide("/api/v1/units").outcome, Outcome::Pass);
    }
}
