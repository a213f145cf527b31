//! The discipline supervision system (`SYSTEMS.md` §4): confidential
//! referrals behind mutual TLS and a bearer token, paged by offset and
//! filtered by `changed_after`.
//!
//! The server refuses, during the handshake, any client without a
//! certificate issued by the simulator's CA. TLS uses the aws-lc-rs provider
//! named explicitly, so no process-wide default is needed or changed.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::data::SimDataHandle;
use super::error::SimError;
use super::format::{iso_date, origin_word, referral_status_word, rfc3339_china};
use super::http::{CREDENTIALS, bearer, error_response, int_param, time_param, to_usize};
use super::pki::Pki;
use crate::model::Referral;

/// The discipline routes, without the fault middleware.
pub(crate) fn router(data: SimDataHandle) -> Router {
    Router::new()
        .route("/v1/referrals", get(referrals))
        .with_state(data)
}

async fn referrals(
    State(data): State<SimDataHandle>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if bearer(&headers) != Some(CREDENTIALS.discipline_token) {
        return error_response(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        );
    }
    let offset = match int_param(&query, "offset", 0, 0..=u64::MAX) {
        Ok(o) => to_usize(o),
        Err(bad) => return bad.into_response(),
    };
    let limit = match int_param(&query, "limit", 50, 1..=200) {
        Ok(l) => to_usize(l),
        Err(bad) => return bad.into_response(),
    };
    let after = match time_param(&query, "changed_after") {
        Ok(a) => a,
        Err(bad) => return bad.into_response(),
    };
    let data = data.read();
    let rows = &data.dataset().referrals;
    // Strictly after: rows are kept in `changed_at` order.
    let first = after.map_or(0, |a| rows.partition_point(|r| r.changed_at <= a));
    let changed = rows.get(first..).unwrap_or(&[]);
    let end = offset.saturating_add(limit).min(changed.len());
    let items: Vec<Value> = changed
        .get(offset..end)
        .unwrap_or(&[])
        .iter()
        .map(referral_json)
        .collect();
    let has_more = end < changed.len();
    drop(data);
    Json(json!({ "items": items, "has_more": has_more })).into_response()
}

fn referral_json(r: &Referral) -> Value {
    json!({
        "referral_id": r.referral_id,
        "unit_code": r.unit_code.as_str(),
        "project_code": r.project_code.as_ref().map(|c| c.as_str()),
        "received_on": iso_date(r.received_on),
        "status": referral_status_word(r.status),
        "freeze": r.freeze,
        "freeze_from": r.freeze_from.map(iso_date),
        "origin": origin_word(r.origin),
        "changed_at": rfc3339_china(r.changed_at),
    })
}

/// The server's TLS configuration: its certificate, and a verifier that
/// requires a client certificate issued by the same CA.
pub(crate) fn tls_acceptor(pki: &Pki) -> Result<TlsAcceptor, SimError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der()?)?;
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(pki.server_chain()?, pki.server_key()?)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TLS connections and serves `app` on each until cancelled; open
/// connections are dropped with the loop.
pub(crate) async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    cancel: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        let Ok((stream, _peer)) = accepted else {
            // A failed accept (e.g. too many open files) is the client's
            // problem to retry; the server keeps listening.
            continue;
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        connections.spawn(async move {
            // A client without an acceptable certificate fails here.
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let _closed = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
    connections.shutdown().await;
}
