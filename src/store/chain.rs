//! The hashes that make the stored history tamper-evident.
//!
//! Each stream (`agency.collection`) has one chain: version `n` of the chain
//! links to version `n-1` by including its link hash. Changing any stored
//! version (content, content hash, key, version number, deletion flag or link)
//! breaks the chain at that version, which `verify` reports.

use sha2::{Digest, Sha256};

/// The link before the first version of every chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// sha-256 of a record's canonical content, hex. A deletion has no content
/// and the empty string as its content hash.
pub fn content_hash(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// The link hash of one version: it covers the previous link and everything
/// that identifies this version. The fields are newline-separated; none of
/// them can contain a newline (keys are codes and ids, hashes are hex).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_depend_on_every_field() {
        let base = link_hash(GENESIS, "finance.units", 1, "370101", 1, false, "ab");
        assert_ne!(
            base,
            link_hash(GENESIS, "finance.units", 1, "370101", 1, true, "ab")
        );
        assert_ne!(
            base,
            link_hash(GENESIS, "finance.units", 2, "370101", 1, false, "ab")
        );
        assert_ne!(
            base,
            link_hash(GENESIS, "finance.units", 1, "370102", 1, false, "ab")
        );
        assert_ne!(
            base,
            link_hash(&base, "finance.units", 1, "370101", 1, false, "ab")
        );
        assert_eq!(base.len(), 64);
    }
}
