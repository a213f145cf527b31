//! TLS terminated by liankong itself (`[api] tls_cert`, `tls_key`): the
//! certificate chain and key are read from PEM files once, at start, with
//! the aws-lc-rs provider named explicitly (no process-wide default), and
//! every connection is served over it.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// A certificate or key that cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("api.tls_cert {path}: {message}")]
    Cert { path: String, message: String },
    #[error("api.tls_key {path}: {message}")]
    Key { path: String, message: String },
    #[error("api TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// The acceptor of the certificate chain in `cert` and its key in `key`.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let cert_error = |message: String| TlsError::Cert {
        path: cert.display().to_string(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no certificate in the file".into()));
    }
    // The key's own error never carries the key.
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
