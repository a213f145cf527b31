//! The simulator's one error type: everything that can stop it from starting
//! or from writing its exchange files.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot generate the test PKI: {0}")]
    Pki(#[from] rcgen::Error),
    #[error("cannot read PEM for {what}: {reason}")]
    Pem { what: &'static str, reason: String },
    #[error("cannot configure TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot configure client certificate verification: {0}")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
    #[error("cannot bind the {system} server to 127.0.0.1:{port}: {source}")]
    Bind {
        system: &'static str,
        port: u16,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the audit CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("cannot write the orgdept workbook: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("{0:?} cannot be encoded in GBK")]
    Gbk(String),
    #[error("the generator task failed: {0}")]
    Task(String),
}

impl SimError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SimError {
        let path = path.into();
        move |source| SimError::Io { path, source }
    }
}
