//! The hashes that make the stored history tamper-evident.
//!
//! Every version of every record has a 32-byte *entry* hash that covers its
//! stream, key, version number, deletion flag and content. The versions a
//! write adds to a stream form one *batch* of its chain: the batch's root
//! covers its entries in (key, version) order, and its link covers the
//! previous batch's link, the stream, the batch's number, how many versions
//! it holds and its root. Changing, removing or inserting any version breaks
//! its entry, its batch's root or a link, which `verify` reports; a stream's
//! head (its last link) and its length in versions are what a checkpoint
//! states, and the entries in chain order are the leaves an inclusion proof
//! is built over.
//!
//! Every field is length-prefixed or of fixed size, and each hash starts with
//! its own tag, so no two different inputs of the three kinds hash alike.

use sha2::{Digest, Sha256};

/// A 32-byte sha-256 digest.
pub type Digest32 = [u8; 32];

/// The link before the first batch of every chain.
pub const GENESIS: Digest32 = [0u8; 32];

/// sha-256 of a text, hex: the digest by which a quarantined row without a
/// key is known from one sighting to the next.
pub fn content_hash(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// The entry hash of one version. A deletion has no content.
pub fn entry_hash(
    stream: &str,
    key: &str,
    version: i64,
    deleted: bool,
    content: Option<&str>,
) -> Digest32 {
    let mut h = Sha256::new();
    h.update(b"liankong.entry.1\n");
    field(&mut h, stream.as_bytes());
    field(&mut h, key.as_bytes());
    h.update(version.to_be_bytes());
    h.update([u8::from(deleted)]);
    if let Some(content) = content {
        field(&mut h, content.as_bytes());
    }
    h.finalize().into()
}

/// The root of one batch, built entry by entry in (key, version) order.
#[derive(Clone)]
pub struct BatchRoot {
    hasher: Sha256,
    versions: i64,
}

impl Default for BatchRoot {
    fn default() -> BatchRoot {
        let mut hasher = Sha256::new();
        hasher.update(b"liankong.batch.1\n");
        BatchRoot {
            hasher,
            versions: 0,
        }
    }
}

impl BatchRoot {
    pub fn push(&mut self, entry: &Digest32) {
        self.hasher.update(entry);
        self.versions += 1;
    }

    pub fn versions(&self) -> i64 {
        self.versions
    }

    pub fn finish(self) -> Digest32 {
        self.hasher.finalize().into()
    }
}

/// The link of batch `batch` of `stream`, which holds `versions` versions.
pub fn batch_link(
    prev: &Digest32,
    stream: &str,
    batch: i64,
    versions: i64,
    root: &Digest32,
) -> Digest32 {
    let mut h = Sha256::new();
    h.update(b"liankong.link.1\n");
    h.update(prev);
    field(&mut h, stream.as_bytes());
    h.update(batch.to_be_bytes());
    h.update(versions.to_be_bytes());
    h.update(root);
    h.finalize().into()
}

/// A stored digest as 32 bytes, if it is one.
pub fn digest(bytes: &[u8]) -> Option<Digest32> {
    bytes.try_into().ok()
}

/// The chain of stores before migration 0008: one link per version, hex,
/// over newline-separated fields. Only the upgrade reads it, to check the
/// old history before re-hashing it into batches (so a history altered
/// before the upgrade is not laundered by it).
pub mod legacy {
    use sha2::{Digest, Sha256};

    /// The link before the first version of every legacy chain.
    pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    pub fn link_hash(
        prev: &str,
        stream: &str,
        seq: i64,
        key: &str,
        version: i64,
        deleted: bool,
        content_hash: &str,
    ) -> String {
        let mut h = Sha256::new();
        for part in [
            prev,
            stream,
            &seq.to_string(),
            key,
            &version.to_string(),
            if deleted { "1" } else { "0" },
            content_hash,
        ] {
            h.update(part.as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_depend_on_every_field() {
        let base = entry_hash("finance.units", "370101", 1, false, Some("{}"));
        for other in [
            entry_hash("finance.units", "370101", 1, true, None),
            entry_hash("finance.units", "370101", 2, false, Some("{}")),
            entry_hash("finance.units", "370102", 1, false, Some("{}")),
            entry_hash("finance.projects", "370101", 1, false, Some("{}")),
            entry_hash("finance.units", "370101", 1, false, Some("{ }")),
            entry_hash("finance.units", "370101", 1, false, Some("")),
            // The length prefixes keep a field from borrowing its neighbour's
            // bytes.
            entry_hash("finance.units3", "70101", 1, false, Some("{}")),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn links_depend_on_every_field() {
        let mut root = BatchRoot::default();
        root.push(&entry_hash("s", "k", 1, false, Some("x")));
        assert_eq!(root.versions(), 1);
        let root = root.finish();
        let base = batch_link(&GENESIS, "s", 1, 1, &root);
        assert_ne!(base, batch_link(&base, "s", 1, 1, &root));
        assert_ne!(base, batch_link(&GENESIS, "t", 1, 1, &root));
        assert_ne!(base, batch_link(&GENESIS, "s", 2, 1, &root));
        assert_ne!(base, batch_link(&GENESIS, "s", 1, 2, &root));
        assert_ne!(base, batch_link(&GENESIS, "s", 1, 1, &GENESIS));
        assert_ne!(root, BatchRoot::default().finish());
    }
}
