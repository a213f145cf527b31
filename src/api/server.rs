//! The routes, and serving them until the shutdown.

use std::net::SocketAddr;

use axum::Router;
use tokio_util::sync::CancellationToken;

use super::state::ApiState;
use crate::config::Config;

/// The API's routes, each served as [`super::doc`] describes it.
pub fn router(state: ApiState) -> Router {
    let (router, _) = super::doc::api_routes().split_for_parts();
    router.with_state(state)
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
