//! A checkpoint: what the store's history was at one moment, signed, so that
//! an agency that keeps it can later prove the store still extends it.
//!
//! What is signed is a short text, one line per fact, that the checkpoint
//! carries verbatim (`signed`) beside its Ed25519 signature: a verifier checks
//! the signature over those bytes with the pinned public key alone, then reads
//! the values from the text (or checks the JSON fields against it). Nothing
//! about canonical JSON has to be agreed on.
//!
//! ```text
//! liankong checkpoint v1
//! id 42
//! issued_at 2026-12-02T03:00:00Z
//! key 3f2a9c0d1e7b4a55
//! audience all
//! stream finance.payments batches 12 versions 1987866 head <hex> root <hex>
//! …
//! ```
//!
//! `head` is the stream's last chain link, `root` the RFC 9162 Merkle root
//! over its batch roots (one leaf per batch), `batches` the tree's size.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::key::{PublicKey, SigningKey};
use super::merkle::Hash;

/// The first line of every signed checkpoint text.
pub const MAGIC: &str = "liankong checkpoint v1";

/// Who a checkpoint is for: discipline's streams are in discipline's alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Every stream: the checkpoint sent to discipline.
    All,
    /// Every stream but discipline's: the one the other agencies receive.
    Shared,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::All => "all",
            Audience::Shared => "shared",
        }
    }
}

/// One stream's place in its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamHead {
    pub stream: String,
    pub batches: u64,
    pub versions: u64,
    /// The last batch's chain link, 64 hex digits.
    #[serde(with = "hex_hash")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub head: Hash,
    /// The RFC 9162 root of the stream's tree of batch roots, 64 hex digits.
    #[serde(with = "hex_hash")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub root: Hash,
}

/// A signed checkpoint, as stored, served and delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Checkpoint {
    pub checkpoint_id: i64,
    pub issued_at: DateTime<Utc>,
    pub key_id: String,
    pub audience: Audience,
    pub streams: Vec<StreamHead>,
    /// The exact text the signature covers.
    pub signed: String,
    /// Base64 of the 64-byte Ed25519 signature of `signed`.
    pub signature: String,
}

/// Why a checkpoint is not one this deployment signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("checkpoint {id}: signed by key {key_id}, which is not one of this deployment's")]
    UnknownKey { id: i64, key_id: String },
    #[error("checkpoint {id}: the signature does not verify (it was altered, or is a forgery)")]
    BadSignature { id: i64 },
    #[error("checkpoint {id}: its fields do not match the text its signature covers")]
    Mismatch { id: i64 },
}

/// The text a checkpoint's signature covers.
pub fn signed_text(
    id: i64,
    issued_at: DateTime<Utc>,
    key_id: &str,
    audience: Audience,
    streams: &[StreamHead],
) -> String {
    let mut text = format!(
        "{MAGIC}\nid {id}\nissued_at {}\nkey {key_id}\naudience {}\n",
        crate::clock::rfc3339(issued_at),
        audience.as_str()
    );
    for s in streams {
        text.push_str(&format!(
            "stream {} batches {} versions {} head {} root {}\n",
            s.stream,
            s.batches,
            s.versions,
            hex::encode(s.head),
            hex::encode(s.root)
        ));
    }
    text
}

impl Checkpoint {
    /// Signs the heads of `streams` (sorted by name) as checkpoint `id`.
    pub fn sign(
        key: &SigningKey,
        id: i64,
        issued_at: DateTime<Utc>,
        audience: Audience,
        mut streams: Vec<StreamHead>,
    ) -> Checkpoint {
        streams.sort_by(|a, b| a.stream.cmp(&b.stream));
        let key_id = key.public().key_id();
        let signed = signed_text(id, issued_at, &key_id, audience, &streams);
        let signature = STANDARD.encode(key.sign(signed.as_bytes()));
        Checkpoint {
            checkpoint_id: id,
            issued_at,
            key_id,
            audience,
            streams,
            signed,
            signature,
        }
    }

    /// Checks the signature with one of `keys` (the current key and the
    /// retired ones), and that the fields are what was signed.
    pub fn check(&self, keys: &[PublicKey]) -> Result<(), Refused> {
        let id = self.checkpoint_id;
        let key = keys
            .iter()
            .find(|k| k.key_id() == self.key_id)
            .ok_or_else(|| Refused::UnknownKey {
                id,
                key_id: self.key_id.clone(),
            })?;
        let signature = STANDARD
            .decode(&self.signature)
            .map_err(|_| Refused::BadSignature { id })?;
        if !key.verify(self.signed.as_bytes(), &signature) {
            return Err(Refused::BadSignature { id });
        }
        let expected = signed_text(
            id,
            self.issued_at,
            &self.key_id,
            self.audience,
            &self.streams,
        );
        if expected != self.signed {
            return Err(Refused::Mismatch { id });
        }
        Ok(())
    }

    /// The head of one stream, if the checkpoint covers it.
    pub fn stream(&self, name: &str) -> Option<&StreamHead> {
        self.streams.iter().find(|s| s.stream == name)
    }
}

mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(hash: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a hash is 32 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::witness::merkle::leaf_hash;

    fn heads() -> Vec<StreamHead> {
        vec![
            StreamHead {
                stream: "npc.budgets".into(),
                batches: 3,
                versions: 122_158,
                head: leaf_hash(b"h1"),
                root: leaf_hash(b"r1"),
            },
            StreamHead {
                stream: "finance.payments".into(),
                batches: 100,
                versions: 1_987_866,
                head: leaf_hash(b"h2"),
                root: leaf_hash(b"r2"),
            },
        ]
    }

    #[test]
    fn a_checkpoint_verifies_with_its_key_alone_and_any_change_is_refused() {
        let key = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
        let at = DateTime::parse_from_rfc3339("2026-12-02T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = Checkpoint::sign(&key, 42, at, Audience::Shared, heads());
        assert_eq!(c.streams[0].stream, "finance.payments", "sorted by name");
        assert!(c.signed.starts_with(&format!(
            "liankong checkpoint v1\nid 42\nissued_at 2026-12-02T03:00:00Z\nkey {}\naudience shared\nstream finance.payments batches 100 versions 1987866 head ",
            key.public().key_id()
        )));
        assert_eq!(c.check(&[key.public()]), Ok(()));

        // Through JSON and back, as an agency keeps it.
        let kept: Checkpoint = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(kept, c);

        let mut forged = c.clone();
        forged.streams[0].versions += 1;
        assert_eq!(
            forged.check(&[key.public()]),
            Err(Refused::Mismatch { id: 42 })
        );
        let mut forged = c.clone();
        forged.signed = forged.signed.replace("1987866", "1987867");
        assert_eq!(
            forged.check(&[key.public()]),
            Err(Refused::BadSignature { id: 42 })
        );
        let other = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
        assert_eq!(
            c.check(&[other.public()]),
            Err(Refused::UnknownKey {
                id: 42,
                key_id: key.public().key_id()
            })
        );
        // A retired key still verifies what it signed.
        assert_eq!(c.check(&[other.public(), key.public()]), Ok(()));
    }
}
