//! The routes, and serving them until the shutdown.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::{delete, get, post};
use tokio_util::sync::CancellationToken;

use super::state::ApiState;
use super::{routes, witness};
use crate::config::Config;

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route("/v1/alerts", get(routes::list_alerts))
        .route("/v1/alerts/{id}", get(routes::get_alert))
        .route("/v1/alerts/{id}/ack", post(routes::ack_alert))
        .route(
            "/v1/silences",
            get(routes::list_silences).post(routes::add_silence),
        )
        .route("/v1/silences/{id}", delete(routes::lift_silence))
        .route("/v1/deliveries", get(routes::list_deliveries))
        .route("/v1/deliveries/{id}/redrive", post(routes::redrive))
        .route("/v1/adapters", get(routes::adapters))
        .route(
            "/v1/actions",
            get(routes::list_actions).post(routes::take_action),
        )
        .route("/v1/checkpoints", get(witness::list_checkpoints))
        .route("/v1/checkpoints/{id}", get(witness::get_checkpoint))
        .route("/v1/proofs", get(witness::inclusion_proof))
        .route("/v1/proofs/consistency", get(witness::consistency_proof))
        .with_state(state)
}

/// Serves until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Binds the configured address.
pub async fn bind(config: &Config) -> std::io::Result<tokio::net::TcpListener> {
    let addr: SocketAddr = config
        .api
        .listen
        .parse()
        .map_err(|_| std::io::Error::other(format!("api.listen {:?}", config.api.listen)))?;
    tokio::net::TcpListener::bind(addr).await
}
