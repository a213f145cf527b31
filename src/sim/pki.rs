//! The discipline commission's private PKI, made fresh for every simulator:
//! a CA, a server certificate for `localhost` / `127.0.0.1`, and a client
//! certificate for the daemon, all as PEM. Tests call [`Pki::generate`] again
//! for an unrelated CA whose client certificate the server must refuse.

use std::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::error::SimError;

/// A CA with one server and one client certificate, as PEM strings.
#[derive(Clone)]
pub struct Pki {
    pub ca_cert_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Private keys stay out of logs and assertion messages.
        f.debug_struct("Pki")
            .field("ca_cert_pem", &self.ca_cert_pem)
            .finish_non_exhaustive()
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "纪检监察监督系统 (simulated)");
    dn.push(DnType::CommonName, common_name);
    dn
}

impl Pki {
    /// A new CA (P-256 keys) and its two leaf certificates.
    pub fn generate() -> Result<Pki, SimError> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = name("liankong simulator discipline CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut server_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        server_params.distinguished_name = name("localhost");
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.use_authority_key_identifier_extension = true;
        let server_key = KeyPair::generate()?;
        let server_cert = server_params.signed_by(&server_key, &issuer)?;

        let mut client_params = CertificateParams::new(Vec::<String>::new())?;
        client_params.distinguished_name = name("liankong daemon");
        client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client_params.use_authority_key_identifier_extension = true;
        let client_key = KeyPair::generate()?;
        let client_cert = client_params.signed_by(&client_key, &issuer)?;

        Ok(Pki {
            ca_cert_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        })
    }

    /// The client certificate and key in one PEM, as `reqwest::Identity`
    /// and most TLS clients take them.
    pub fn client_identity_pem(&self) -> String {
        format!("{}{}", self.client_cert_pem, self.client_key_pem)
    }

    pub(crate) fn ca_der(&self) -> Result<CertificateDer<'static>, SimError> {
        CertificateDer::from_pem_slice(self.ca_cert_pem.as_bytes()).map_err(|e| SimError::Pem {
            what: "the CA certificate",
            reason: e.to_string(),
        })
    }

    pub(crate) fn server_chain(&self) -> Result<Vec<CertificateDer<'static>>, SimError> {
        let cert =
            CertificateDer::from_pem_slice(self.server_cert_pem.as_bytes()).map_err(|e| {
                SimError::Pem {
                    what: "the server certificate",
                    reason: e.to_string(),
                }
            })?;
        Ok(vec![cert])
    }

    pub(crate) fn server_key(&self) -> Result<PrivateKeyDer<'static>, SimError> {
        PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes()).map_err(|e| SimError::Pem {
            what: "the server key",
            reason: e.to_string(),
        })
    }
}
