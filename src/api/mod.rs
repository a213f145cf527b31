//! The daemon's HTTP API (axum, loopback by default).
//!
//! `/healthz`, `/readyz` and `/metrics` are open; every `/v1` route needs a
//! bearer token from the config, kept there only as its sha-256. A token
//! belongs to one agency, and every answer is what that agency may see: an
//! alert it does not receive, and a confidential alert it may not see, are
//! both simply "not found", so their existence is not revealed either.

mod auth;
mod routes;
mod server;
mod state;
mod witness;

pub use auth::token_hash;
pub use server::{bind, router, serve};
pub use state::{ApiState, RunningConfig};
