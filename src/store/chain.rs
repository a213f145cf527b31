//! The hashes that make the stored history tamper-evident.
//!
//! Every version of every record has a 32-byte *entry* hash that covers its
//! stream, key, version number, deletion flag and content. The versions a
//! write adds to a stream form one *batch* of its chain: the batch's root is
//! the RFC 9162 Merkle tree hash over its entries in (key, version) order
//! (each entry one leaf), and its link covers the previous batch's link, the
//! stream, the batch's number, how many versions it holds and its root.
//! Changing, removing or inserting any version breaks its entry, its batch's
//! root or a link, which `verify` reports.
//!
//! A stream's *tree* is the Merkle tree over its batch roots in batch order
//! (each root one leaf): what a checkpoint signs beside the stream's head
//! (its last link) and length, so that an agency can be given a proof that
//! one version is in the history (its entry in its batch's tree, the batch's
//! root in the stream's tree) and that a later checkpoint extends an earlier
//! one (`crate::witness::merkle`).
//!
//! Every field is length-prefixed or of fixed size, and each hash starts with
//! its own tag (the Merkle trees their RFC 9162 prefixes), so no two
//! different inputs of the kinds here hash alike.

use sha2::{Digest, Sha256};

use crate::witness::merkle::{TreeBuilder, leaf_hash};

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

/// The root of one batch: the Merkle tree hash over its entries, pushed in
/// (key, version) order, built in O(log n) memory.
#[derive(Debug, Clone, Default)]
pub struct BatchRoot {
    tree: TreeBuilder,
}

impl BatchRoot {
    pub fn push(&mut self, entry: &Digest32) {
        self.tree.push(leaf_hash(entry));
    }

    pub fn versions(&self) -> i64 {
        i64::try_from(self.tree.leaves()).unwrap_or(i64::MAX)
    }

    pub fn finish(self) -> Digest32 {
        self.tree.root()
    }
}

/// The leaf of a batch in its stream's tree.
pub fn stream_leaf(batch_root: &Digest32) -> Digest32 {
    leaf_hash(batch_root)
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

/// The batch roots of stores between migrations 0008 and 0011: one sha-256
/// over the batch's entries in (key, version) order. Only the upgrade reads
/// them, to check each batch before its root is re-hashed as a Merkle tree.
#[derive(Clone)]
pub struct FlatRoot {
    hasher: Sha256,
    versions: i64,
}

impl Default for FlatRoot {
    fn default() -> FlatRoot {
        let mut hasher = Sha256::new();
        hasher.update(b"liankong.batch.1\n");
        FlatRoot {
            hasher,
            versions: 0,
        }
    }
}

impl FlatRoot {
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

    #[test]
    fn a_batch_root_is_the_merkle_root_of_its_entries() {
        use crate::witness::merkle::{node_hash, root};
        let entries: Vec<Digest32> = (0..5i64)
            .map(|v| entry_hash("s", "k", v + 1, false, Some("x")))
            .collect();
        let mut batch = BatchRoot::default();
        for e in &entries {
            batch.push(e);
        }
        let leaves: Vec<Digest32> = entries.iter().map(|e| leaf_hash(e)).collect();
        // Five leaves split (4, 1), as RFC 9162 says.
        let by_hand = node_hash(
            &node_hash(
                &node_hash(&leaves[0], &leaves[1]),
                &node_hash(&leaves[2], &leaves[3]),
            ),
            &leaves[4],
        );
        assert_eq!(batch.versions(), 5);
        assert_eq!(batch.finish(), by_hand);
        assert_eq!(root(&leaves), by_hand);
        // The flat root of before is another hash altogether.
        let mut flat = FlatRoot::default();
        entries.iter().for_each(|e| flat.push(e));
        assert_ne!(flat.finish(), by_hand);
    }
}
