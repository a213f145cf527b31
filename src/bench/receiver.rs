//! The agencies' side of delivery in the benchmark's phase (g): one
//! loopback HTTP server per agency, as each agency would run it. It checks
//! every request's Standard Webhooks signature against its own secret (so an
//! event meant for another agency fails), answers 204 to a good one and 401
//! to a bad one, and counts what it received and when the last one came.
//!
//! Its check is written from the specification, not with
//! [`crate::deliver::signature`]: a mistake in the signing would otherwise be
//! made twice and pass.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::scale::{BenchError, io};
use crate::model::Agency;

/// What one receiver counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Received {
    /// Requests whose signature was good: each an event, counted once
    /// however often it came (`webhook-id`).
    pub events: u64,
    /// Good requests for an event already received (at-least-once).
    pub duplicates: u64,
    /// Requests refused: no signature of this agency's secret.
    pub bad_signatures: u64,
}

#[derive(Default)]
struct Tally {
    received: Received,
    ids: HashSet<String>,
    last: Option<Instant>,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    pub agency: Agency,
    pub url: String,
    /// `whsec_` + base64 of its key, for the subscriber's config.
    pub secret: String,
    tally: Arc<Mutex<Tally>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

struct Shared {
    key: Vec<u8>,
    tally: Arc<Mutex<Tally>>,
}

impl Receiver {
    /// Starts one on `127.0.0.1` on a port of the system's choosing.
    pub async fn start(agency: Agency, rng: &mut fastrand::Rng) -> Result<Receiver, BenchError> {
        let key: Vec<u8> = (0..32).map(|_| rng.u8(..)).collect();
        let secret = format!("whsec_{}", STANDARD.encode(&key));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let shared = Arc::new(Shared {
            key,
            tally: tally.clone(),
        });
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(io("a webhook receiver's port"))?;
        let addr = listener
            .local_addr()
            .map_err(io("a webhook receiver's port"))?;
        let app = axum::Router::new()
            .route("/hooks", post(receive))
            .with_state(shared);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "a benchmark webhook receiver stopped");
            }
        });
        Ok(Receiver {
            agency,
            url: format!("http://{addr}/hooks"),
            secret,
            tally,
            stop: Some(stop),
        })
    }

    pub fn received(&self) -> Received {
        self.lock().received.clone()
    }

    /// When the last event (not a duplicate) arrived.
    pub fn last(&self) -> Option<Instant> {
        self.lock().last
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signatures)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return refuse(&shared);
    };
    if !signed(&shared.key, id, timestamp, &body, signatures) {
        return refuse(&shared);
    }
    let mut tally = shared.tally.lock().unwrap_or_else(PoisonError::into_inner);
    if tally.ids.insert(id.to_owned()) {
        tally.received.events += 1;
        tally.last = Some(Instant::now());
    } else {
        tally.received.duplicates += 1;
    }
    StatusCode::NO_CONTENT
}

fn refuse(shared: &Shared) -> StatusCode {
    let mut tally = shared.tally.lock().unwrap_or_else(PoisonError::into_inner);
    tally.received.bad_signatures += 1;
    StatusCode::UNAUTHORIZED
}

/// Whether one of the space-separated `v1,<base64>` signatures is
/// HMAC-SHA256(key, "{id}.{timestamp}.{body}"), compared in constant time.
fn signed(key: &[u8], id: &str, timestamp: &str, body: &[u8], signatures: &str) -> bool {
    signatures.split(' ').any(|s| {
        let Some(sig) = s.strip_prefix("v1,").and_then(|b| STANDARD.decode(b).ok()) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
            return false;
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&sig).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_is_the_standard_webhooks_example() {
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let (id, ts, body) = (
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            br#"{"test": 2432232314}"#,
        );
        let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert!(signed(&key, id, ts, body, good));
        assert!(signed(&key, id, ts, body, &format!("v1,bm9wZQ== {good}")));
        assert!(!signed(&key, id, "1614265331", body, good));
        assert!(!signed(&key[1..], id, ts, body, good));
    }
}
