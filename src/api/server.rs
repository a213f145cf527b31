//! The routes, and serving them until the shutdown: plain HTTP, or TLS
//! terminated here ([`serve_tls`]). The console (`/ui`) shares the
//! listener; `/` leads to it.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use axum::response::Redirect;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::state::ApiState;

use crate::config::Config;

/// The API and the console over plain HTTP.
pub fn router(state: ApiState) -> Router {
    app(state, false)
}

/// The API (each route served as [`super::doc`] describes it) and the
/// console; `tls` when liankong itself terminates TLS (the console's cookie
/// is then `Secure`).
fn app(state: ApiState, tls: bool) -> Router {
    let (api, _) = super::doc::api_routes().split_for_parts();
    api.route("/", get(|| async { Redirect::to("/ui") }))
        .with_state(state.clone())
        .merge(crate::console::router(state, tls))
}

/// Serves plain HTTP until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}

/// A client gets this long to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves TLS until `shutdown`; connections still open then are closed.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
    state: ApiState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = app(state, true);
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        let Ok((stream, peer)) = accepted else {
            // A failed accept (e.g. too many open files) is the client's
            // to retry; the server keeps listening.
            continue;
        };
        let acceptor = acceptor.clone();
        let service =
            TowerToHyperService::new(app.clone().layer(axum::Extension(ConnectInfo(peer))));
        connections.spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
            else {
                return;
            };
            let _closed = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
    connections.shutdown().await;
    Ok(())
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
