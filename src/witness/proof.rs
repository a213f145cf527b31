//! Proofs an agency checks against checkpoints it kept, with any RFC 9162
//! implementation (`deploy/verify-checkpoint.py` is one):
//!
//! - an [`InclusionProof`]: one record version's entry (recomputed by the
//!   verifier from the version's stream, key, number, deletion flag and
//!   content) is leaf `index_in_batch` of its batch's tree, and that batch's
//!   root is leaf `batch - 1` of the stream's tree whose size and root the
//!   checkpoint signed;
//! - a [`ConsistencyProof`]: for every stream of an earlier checkpoint, its
//!   tree then is a prefix of its tree at a later one.
//!
//! Proofs are built from the store and checked against the checkpoint
//! before they are given: a store that no longer extends the checkpoint
//! gives none.

use serde::{Deserialize, Serialize};

use super::checkpoint::Checkpoint;
use super::merkle::{self, Hash, consistency_proof, inclusion_path, leaf_hash};
use crate::model::Collection;
use crate::store::{Store, StoreError, stream_leaf};

/// That one record version is in the history a checkpoint states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InclusionProof {
    pub checkpoint_id: i64,
    pub stream: String,
    pub key: String,
    pub version: i64,
    pub deleted: bool,
    /// The version's canonical content (none for a deletion), from which
    /// its entry is recomputed.
    pub content: Option<String>,
    /// The version's entry hash, hex.
    pub entry: String,
    /// The batch of the stream's chain it joined (from 1).
    pub batch: u64,
    /// Its leaf in the batch's tree (from 0), and the tree's size.
    pub index_in_batch: u64,
    pub batch_size: u64,
    pub batch_root: String,
    /// RFC 9162 audit paths, nearest sibling first, hex.
    pub batch_path: Vec<String>,
    pub stream_path: Vec<String>,
}

/// That a later checkpoint extends an earlier one, stream by stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsistencyProof {
    pub from: i64,
    pub to: i64,
    pub streams: Vec<StreamConsistency>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamConsistency {
    pub stream: String,
    pub from_batches: u64,
    pub to_batches: u64,
    /// RFC 9162 `PROOF(from_batches, D[to_batches])`, hex.
    pub proof: Vec<String>,
}

/// Why no proof is given.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such version, or its stream is not in the checkpoint.
    #[error("not found")]
    NotFound,
    #[error("the version joined the history after checkpoint {0}: ask again after the next one")]
    NotYet(i64),
    #[error("checkpoint {to} is older than checkpoint {from}")]
    Backwards { from: i64, to: i64 },
    #[error(
        "stream {stream} no longer extends checkpoint {checkpoint}: no proof can be given \
         (the operator is told by liankong verify)"
    )]
    NotExtended { stream: String, checkpoint: i64 },
}

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

/// The leaves of a stream's tree over the first `batches` batch roots,
/// checked against what `checkpoint` signed.
async fn stream_leaves(
    store: &dyn Store,
    checkpoint: &Checkpoint,
    stream: &str,
) -> Result<(Vec<Hash>, Vec<Hash>), ProofError> {
    let head = checkpoint.stream(stream).ok_or(ProofError::NotFound)?;
    let roots = store.batch_roots(stream, head.batches).await?;
    let leaves: Vec<Hash> = roots.iter().map(stream_leaf).collect();
    if leaves.len() as u64 != head.batches || merkle::root(&leaves) != head.root {
        return Err(ProofError::NotExtended {
            stream: stream.to_owned(),
            checkpoint: checkpoint.checkpoint_id,
        });
    }
    Ok((roots, leaves))
}

/// The proof that `version` of `key` is in `checkpoint`'s history.
pub async fn inclusion(
    store: &dyn Store,
    checkpoint: &Checkpoint,
    collection: Collection,
    key: &str,
    version: i64,
) -> Result<InclusionProof, ProofError> {
    let stream = collection.to_string();
    let head = checkpoint.stream(&stream).ok_or(ProofError::NotFound)?;
    let found = store
        .batch_entries(collection, key, version)
        .await?
        .ok_or(ProofError::NotFound)?;
    if found.batch > head.batches {
        return Err(ProofError::NotYet(checkpoint.checkpoint_id));
    }
    let (roots, leaves) = stream_leaves(store, checkpoint, &stream).await?;
    let batch_leaves: Vec<Hash> = found.entries.iter().map(|e| leaf_hash(e)).collect();
    let batch_root = merkle::root(&batch_leaves);
    let at = usize::try_from(found.batch - 1).unwrap_or(usize::MAX);
    let not_extended = || ProofError::NotExtended {
        stream: stream.clone(),
        checkpoint: checkpoint.checkpoint_id,
    };
    if roots.get(at) != Some(&batch_root) {
        return Err(not_extended());
    }
    let batch_path = inclusion_path(&batch_leaves, found.index).ok_or_else(not_extended)?;
    let stream_path = inclusion_path(&leaves, at).ok_or_else(not_extended)?;
    let v = store
        .history(collection, key)
        .await?
        .into_iter()
        .find(|v| v.version == version)
        .ok_or(ProofError::NotFound)?;
    Ok(InclusionProof {
        checkpoint_id: checkpoint.checkpoint_id,
        stream,
        key: key.to_owned(),
        version,
        deleted: v.deleted,
        content: v.content,
        entry: hex::encode(found.entries[found.index]),
        batch: found.batch,
        index_in_batch: found.index as u64,
        batch_size: found.entries.len() as u64,
        batch_root: hex::encode(batch_root),
        batch_path: hexes(&batch_path),
        stream_path: hexes(&stream_path),
    })
}

/// The proof that `to` extends `from`, for every stream of `from`.
pub async fn consistency(
    store: &dyn Store,
    from: &Checkpoint,
    to: &Checkpoint,
) -> Result<ConsistencyProof, ProofError> {
    if to.checkpoint_id < from.checkpoint_id {
        return Err(ProofError::Backwards {
            from: from.checkpoint_id,
            to: to.checkpoint_id,
        });
    }
    let mut streams = Vec::new();
    for earlier in &from.streams {
        let later = to
            .stream(&earlier.stream)
            .ok_or_else(|| ProofError::NotExtended {
                stream: earlier.stream.clone(),
                checkpoint: from.checkpoint_id,
            })?;
        let (_, leaves) = stream_leaves(store, to, &earlier.stream).await?;
        let m = usize::try_from(earlier.batches).unwrap_or(usize::MAX);
        let not_extended = || ProofError::NotExtended {
            stream: earlier.stream.clone(),
            checkpoint: from.checkpoint_id,
        };
        if m > leaves.len() || merkle::root(&leaves[..m]) != earlier.root {
            return Err(not_extended());
        }
        let proof = consistency_proof(&leaves, m).ok_or_else(not_extended)?;
        streams.push(StreamConsistency {
            stream: earlier.stream.clone(),
            from_batches: earlier.batches,
            to_batches: later.batches,
            proof: hexes(&proof),
        });
    }
    Ok(ConsistencyProof {
        from: from.checkpoint_id,
        to: to.checkpoint_id,
        streams,
    })
}
