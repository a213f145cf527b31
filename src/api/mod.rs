//! The daemon's HTTP API (axum, loopback by default).
//!
//! `/healthz`, `/readyz`, `/metrics` and the OpenAPI document
//! (`/v1/openapi.json`, [`doc`]) are open; every other `/v1` route needs a
//! bearer token from the config, kept there only as its sha-256. A token
//! belongs to one agency, and every answer is what that agency may see: an
//! alert it does not receive, and a confidential alert it may not see, are
//! both simply "not found", so their existence is not revealed either.

mod adapters;
mod auth;
pub mod doc;
mod error;
mod routes;
pub mod schemas;
mod server;
pub mod shared;
mod state;
#[cfg(test)]
mod tests;
mod tls;
mod witness;

pub use auth::token_hash;
pub(crate) use auth::{configured, configured_hash, same};
pub use doc::document;
pub use server::{bind, router, serve, serve_tls};
pub use state::{ApiState, RunningConfig};
pub use tls::{TlsError, acceptor};
