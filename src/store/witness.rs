//! What the store keeps and reads for witnessed history: the checkpoints
//! the deployment signed, every stream's chain folded into its Merkle tree
//! (now, and at the sizes kept checkpoints state), and the leaves of the
//! proofs. The witness stage (`crate::witness`) decides and signs; the store
//! keeps rows and reads them in transactions.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use super::alerts::NewEvent;
use crate::model::Collection;
use crate::witness::merkle::Hash;
use crate::witness::{Audience, Checkpoint, StreamHead};

/// One stream's chain, as it stands and as it stood after some of its
/// batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainState {
    /// The stream's head now (0 batches: never written).
    pub now: StreamHead,
    /// Its head after each size asked for that the chain reaches, in the
    /// order of the sizes asked.
    pub at: Vec<StreamHead>,
}

/// The sizes (in batches) at which each stream's chain is wanted, by name.
pub type Sizes = BTreeMap<String, Vec<u64>>;

/// The batch one record version joined, with that batch's entries in the
/// order of its tree: what an inclusion proof is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEntries {
    pub batch: u64,
    /// The version's place among `entries`.
    pub index: usize,
    pub entries: Vec<Hash>,
}

/// Reads of witnessed history. Every method is one read transaction.
#[async_trait]
pub trait WitnessStore: Send + Sync {
    /// Opens the transaction a checkpoint is decided and recorded in:
    /// checkpoints are issued one at a time, by one replica at a time.
    async fn begin_checkpoint(&self) -> Result<Box<dyn CheckpointTx>, StoreError>;

    /// The stored checkpoints of `audience`, newest first: at most `limit`,
    /// of ids below `before` when given.
    async fn checkpoints(
        &self,
        audience: Audience,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Checkpoint>, StoreError>;

    async fn checkpoint(
        &self,
        id: i64,
        audience: Audience,
    ) -> Result<Option<Checkpoint>, StoreError>;

    /// Every stream's chain now and at `sizes`, in one consistent read.
    async fn chains(&self, sizes: &Sizes) -> Result<Vec<ChainState>, StoreError>;

    /// The roots of the first `upto` batches of `stream`, in batch order
    /// (fewer when it holds fewer).
    async fn batch_roots(&self, stream: &str, upto: u64) -> Result<Vec<Hash>, StoreError>;

    /// The batch of one version of a record, and its entries.
    async fn batch_entries(
        &self,
        collection: Collection,
        key: &str,
        version: i64,
    ) -> Result<Option<BatchEntries>, StoreError>;

    /// Numbers the next checkpoint after `id` at least: after a restore
    /// from an older backup was accepted, the numbers the lost checkpoints
    /// had are never signed again.
    async fn raise_checkpoint_floor(&self, id: i64) -> Result<(), StoreError>;
}

/// The transaction of one checkpoint. Dropping it records nothing.
#[async_trait]
pub trait CheckpointTx: Send {
    /// The newest checkpoint, as its `all` audience has it.
    async fn newest(&mut self) -> Result<Option<Checkpoint>, StoreError>;

    /// The number the next checkpoint takes.
    async fn next_id(&mut self) -> Result<i64, StoreError>;

    /// Every stream's chain now and at `sizes`.
    async fn chains(&mut self, sizes: &Sizes) -> Result<Vec<ChainState>, StoreError>;

    /// Keeps the checkpoints of one number (one per audience) and their
    /// outbox events.
    async fn record(
        &mut self,
        checkpoints: &[Checkpoint],
        events: &[NewEvent],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}
