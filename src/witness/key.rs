//! The deployment's Ed25519 signing key, with which it signs checkpoints.
//!
//! The key is a PKCS#8 PEM file (`liankong checkpoint keygen FILE`,
//! or `openssl genpkey -algorithm ed25519`), read through a secret
//! reference so that systemd can hand it over as a credential. The private
//! half is never printed, logged or sent; agencies pin the public half, which
//! `liankong checkpoint key` prints as a PEM and as its `key_id`.

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the
/// algorithm identifier 1.3.101.112 and the bit string's header.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Why a signing key cannot be used. Never shows the key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)")]
    NotPem,
    #[error("not an Ed25519 key: {0}")]
    NotEd25519(String),
    #[error("no secure random source")]
    Random,
    #[error("{0:?} is not an Ed25519 public key (a PEM, or base64 of its 32 bytes)")]
    NotAPublicKey(String),
}

/// The signing key. Its `Debug` shows the public half only.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.public().key_id())
    }
}

impl SigningKey {
    /// Reads a PKCS#8 PEM (v1, as OpenSSL writes it, or v2).
    pub fn from_pem(pem: &str) -> Result<SigningKey, KeyError> {
        let der = match PrivateKeyDer::from_pem_slice(pem.as_bytes()) {
            Ok(PrivateKeyDer::Pkcs8(der)) => der,
            _ => return Err(KeyError::NotPem),
        };
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_pkcs8_der())
            .map_err(|e| KeyError::NotEd25519(e.to_string()))?;
        Ok(SigningKey { pair })
    }

    /// A new key, as PKCS#8 PEM text.
    pub fn generate_pem() -> Result<String, KeyError> {
        let doc =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Random)?;
        Ok(pem("PRIVATE KEY", doc.as_ref()))
    }

    pub fn public(&self) -> PublicKey {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(bytes)
    }

    /// The 64-byte Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut sig = [0u8; 64];
        sig.copy_from_slice(self.pair.sign(message).as_ref());
        sig
    }
}

/// An Ed25519 public key: what agencies pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// A public key from a PEM (SubjectPublicKeyInfo) or base64 of its 32
    /// bytes.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let bad = || KeyError::NotAPublicKey(text.chars().take(80).collect());
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        let bytes = STANDARD.decode(body.trim()).map_err(|_| bad())?;
        let raw = match bytes.len() {
            32 => &bytes[..],
            44 if bytes[..12] == SPKI_PREFIX => &bytes[12..],
            _ => return Err(bad()),
        };
        let mut key = [0u8; 32];
        key.copy_from_slice(raw);
        Ok(PublicKey(key))
    }

    /// The first 16 hex digits of the sha-256 of the key: how a checkpoint
    /// names the key that signed it.
    pub fn key_id(&self) -> String {
        hex::encode(&Sha256::digest(self.0)[..8])
    }

    pub fn base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// The key as a PEM SubjectPublicKeyInfo, as OpenSSL and Python's
    /// `cryptography` read it.
    pub fn pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.0);
        pem("PUBLIC KEY", &der)
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, self.0)
            .verify(message, signature)
            .is_ok()
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_what_its_public_half_verifies_and_nothing_else() {
        let pem = SigningKey::generate_pem().unwrap();
        let key = SigningKey::from_pem(&pem).unwrap();
        let public = key.public();
        let sig = key.sign(b"liankong checkpoint v1\n");
        assert!(public.verify(b"liankong checkpoint v1\n", &sig));
        assert!(!public.verify(b"liankong checkpoint v2\n", &sig));
        let other = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
        assert!(!other.public().verify(b"liankong checkpoint v1\n", &sig));
        // Both printed forms read back; the Debug form shows no secret.
        assert_eq!(PublicKey::parse(&public.pem()).unwrap(), public);
        assert_eq!(PublicKey::parse(&public.base64()).unwrap(), public);
        assert_eq!(
            format!("{key:?}"),
            format!("SigningKey({})", public.key_id())
        );
        assert_eq!(public.key_id().len(), 16);
        assert!(matches!(
            SigningKey::from_pem("hunter2"),
            Err(KeyError::NotPem)
        ));
        assert!(PublicKey::parse("AAAA").is_err());
    }

    #[test]
    fn an_openssl_key_is_read() {
        // `openssl genpkey -algorithm ed25519` (PKCS#8 v1, no public key),
        // and the public key `openssl pkey -pubout` printed for it.
        let pem = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEIAgiKH59LEnU7c+ZCnoT+be46JnIyy/VveoYOrTIJIRL\n\
                   -----END PRIVATE KEY-----\n";
        let key = SigningKey::from_pem(pem).unwrap();
        let public = key.public();
        assert!(public.verify(b"x", &key.sign(b"x")));
        assert_eq!(
            public.pem(),
            "-----BEGIN PUBLIC KEY-----\n\
             MCowBQYDK2VwAyEAwRKmaozB8Vr6ieu0lYjx68uJCpMsLsnFHBIT+yqibeE=\n\
             -----END PUBLIC KEY-----\n"
        );
    }
}
