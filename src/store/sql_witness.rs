// The store's part of witnessed history (`witness.rs`), shared by both
// backends: the checkpoints table, every stream's chain folded into its
// Merkle tree, and the leaves of proofs. `include!`d after `sql_common.rs`.

use super::witness::{BatchEntries, ChainState, CheckpointTx, Sizes, WitnessStore};
use crate::witness::merkle::{Hash, TreeBuilder};
use crate::witness::{Audience, Checkpoint, StreamHead as SignedHead};

/// Issuers of checkpoints queue on this (PostgreSQL; SQLite's one writer
/// already serialises them), so replicas form one sequence.
const CHECKPOINT_LOCK: &str = "SELECT pg_advisory_xact_lock(7142003)";

/// The settings key of the lowest number a checkpoint may take next.
const CHECKPOINT_FLOOR: &str = "checkpoint_floor";

fn checkpoint_of(body: &str) -> Result<Checkpoint, StoreError> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::Corrupt(format!("a stored checkpoint cannot be read: {e}")))
}

/// Folds one stream's chain, batch by batch, into its tree: the head now,
/// and at each size of `wanted` the chain reaches. A chain that does not
/// end where its stream's head says is refused (nothing is signed over it).
async fn fold_chain(
    tx: &mut Tx,
    id: i64,
    name: &str,
    (batches, versions, head): (i64, i64, Digest32),
    wanted: &std::collections::BTreeSet<u64>,
) -> Result<ChainState, StoreError> {
    let corrupt = |what: String| {
        StoreError::Corrupt(format!(
            "the chain of {name} {what}: `liankong verify` says more"
        ))
    };
    let mut rows = sqlx::query_as::<_, (i64, i64, Vec<u8>, Vec<u8>)>(
        "SELECT batch, versions, root, link FROM chain WHERE stream_id = $1 AND batch <= $2 \
         ORDER BY batch",
    )
    .bind(id)
    .bind(batches)
    .fetch(&mut **tx);
    let mut tree = TreeBuilder::default();
    let (mut total, mut last) = (0i64, GENESIS);
    let mut at = Vec::new();
    while let Some((batch, n, root, link)) = rows.try_next().await? {
        let expected = tree.leaves() + 1;
        if u64::try_from(batch).ok() != Some(expected) {
            return Err(corrupt(format!("misses batch {expected}")));
        }
        let (Some(root), Some(link)) = (digest(&root), digest(&link)) else {
            return Err(corrupt(format!(
                "has no readable root or link at batch {batch}"
            )));
        };
        tree.push(stream_leaf(&root));
        total += n;
        last = link;
        if wanted.contains(&tree.leaves()) {
            at.push(SignedHead {
                stream: name.to_owned(),
                batches: tree.leaves(),
                versions: u64::try_from(total).unwrap_or(0),
                head: last,
                root: tree.root(),
            });
        }
    }
    if i64::try_from(tree.leaves()).ok() != Some(batches) || total != versions || last != head {
        return Err(corrupt(
            "does not end at the stream's head and length".to_owned(),
        ));
    }
    Ok(ChainState {
        now: SignedHead {
            stream: name.to_owned(),
            batches: tree.leaves(),
            versions: u64::try_from(total).unwrap_or(0),
            head: last,
            root: tree.root(),
        },
        at,
    })
}

/// A row of `streams`: id, name, batches, versions, head.
type StreamRow = (i64, String, i64, i64, Option<Vec<u8>>);

async fn chains_in(tx: &mut Tx, sizes: &Sizes) -> Result<Vec<ChainState>, StoreError> {
    let streams: Vec<StreamRow> =
        sqlx::query_as("SELECT id, name, batches, versions, head FROM streams ORDER BY name")
            .fetch_all(&mut **tx)
            .await?;
    let mut out = Vec::with_capacity(streams.len());
    for (id, name, batches, versions, head) in streams {
        let wanted = sizes
            .get(&name)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        let head = head.as_deref().and_then(digest).unwrap_or(GENESIS);
        out.push(fold_chain(tx, id, &name, (batches, versions, head), &wanted).await?);
    }
    Ok(out)
}

/// The transaction of one checkpoint: a write transaction, holding the
/// issuers' turn.
pub struct SqlCheckpointTx(SqlSyncTx);

#[async_trait]
impl CheckpointTx for SqlCheckpointTx {
    async fn newest(&mut self) -> Result<Option<Checkpoint>, StoreError> {
        let body: Option<String> = sqlx::query_scalar(
            "SELECT body FROM checkpoints WHERE audience = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(Audience::All.as_str())
        .fetch_optional(&mut *self.0.tx)
        .await?;
        body.as_deref().map(checkpoint_of).transpose()
    }

    async fn next_id(&mut self) -> Result<i64, StoreError> {
        let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM checkpoints")
            .fetch_one(&mut *self.0.tx)
            .await?;
        let floor: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(CHECKPOINT_FLOOR)
            .fetch_optional(&mut *self.0.tx)
            .await?;
        let floor = floor.and_then(|f| f.parse::<i64>().ok()).unwrap_or(0);
        Ok(newest.unwrap_or(0).max(floor) + 1)
    }

    async fn chains(&mut self, sizes: &Sizes) -> Result<Vec<ChainState>, StoreError> {
        chains_in(&mut self.0.tx, sizes).await
    }

    async fn record(
        &mut self,
        checkpoints: &[Checkpoint],
        events: &[NewEvent],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for c in checkpoints {
            let body = serde_json::to_string(c).map_err(StoreError::Encode)?;
            sqlx::query(
                "INSERT INTO checkpoints (id, audience, issued_at, body) VALUES ($1, $2, $3, $4)",
            )
            .bind(c.checkpoint_id)
            .bind(c.audience.as_str())
            .bind(c.issued_at.timestamp_micros())
            .bind(body)
            .execute(&mut *self.0.tx)
            .await?;
        }
        AlertTx::add_events(&mut self.0, events, at).await
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.0.tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl WitnessStore for SqlStore {
    async fn begin_checkpoint(&self) -> Result<Box<dyn CheckpointTx>, StoreError> {
        let mut tx = self.write_tx().await?;
        if BACKEND == "postgres" {
            sqlx::query(CHECKPOINT_LOCK).execute(&mut *tx.tx).await?;
        }
        Ok(Box::new(SqlCheckpointTx(tx)))
    }

    async fn checkpoints(
        &self,
        audience: Audience,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        let bodies: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM checkpoints WHERE audience = $1 AND ($2 IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(audience.as_str())
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        bodies.iter().map(|b| checkpoint_of(b)).collect()
    }

    async fn checkpoint(
        &self,
        id: i64,
        audience: Audience,
    ) -> Result<Option<Checkpoint>, StoreError> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM checkpoints WHERE id = $1 AND audience = $2")
                .bind(id)
                .bind(audience.as_str())
                .fetch_optional(&self.pool)
                .await?;
        body.as_deref().map(checkpoint_of).transpose()
    }

    async fn chains(&self, sizes: &Sizes) -> Result<Vec<ChainState>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let chains = chains_in(&mut tx, sizes).await?;
        tx.rollback().await?;
        Ok(chains)
    }

    async fn batch_roots(&self, stream: &str, upto: u64) -> Result<Vec<Hash>, StoreError> {
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT c.root FROM chain c JOIN streams s ON s.id = c.stream_id \
             WHERE s.name = $1 AND c.batch <= $2 ORDER BY c.batch",
        )
        .bind(stream)
        .bind(i64::try_from(upto).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| digest(r).ok_or_else(|| StoreError::Corrupt(format!("a root of {stream}"))))
            .collect()
    }

    async fn batch_entries(
        &self,
        collection: Collection,
        key: &str,
        version: i64,
    ) -> Result<Option<BatchEntries>, StoreError> {
        let stream = collection.to_string();
        let table = schema::table(collection);
        let mut tx = self.pool.begin().await?;
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM streams WHERE name = $1")
            .bind(stream.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(id) = id else {
            return Ok(None);
        };
        let batch: Option<Option<i64>> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT batch FROM superseded WHERE stream_id = $1 AND key = $2 AND version = $3 \
             UNION ALL SELECT batch FROM {table} WHERE key = $2 AND version = $3"
        )))
        .bind(id)
        .bind(key)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(batch) = batch.flatten() else {
            return Ok(None);
        };
        // The batch's entries in the order its root was built in. (No index
        // leads to one batch's rows: a proof reads the stream's table once,
        // which the write path is spared.)
        let rows: Vec<(String, i64, Vec<u8>)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {KEY_COLUMN}, version, entry FROM superseded WHERE stream_id = $1 AND batch = $2 \
             UNION ALL SELECT {KEY_COLUMN}, version, entry FROM {table} WHERE batch = $2 \
             ORDER BY key, version"
        )))
        .bind(id)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
        tx.rollback().await?;
        let mut index = None;
        let mut entries = Vec::with_capacity(rows.len());
        for (i, (k, v, entry)) in rows.iter().enumerate() {
            if k == key && *v == version {
                index = Some(i);
            }
            entries.push(digest(entry).ok_or_else(|| {
                StoreError::Corrupt(format!("{stream} {k:?} version {v} has no entry hash"))
            })?);
        }
        let (Some(index), Ok(batch)) = (index, u64::try_from(batch)) else {
            return Ok(None);
        };
        Ok(Some(BatchEntries {
            batch,
            index,
            entries,
        }))
    }

    async fn raise_checkpoint_floor(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let floor: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(CHECKPOINT_FLOOR)
            .fetch_optional(&mut *tx.tx)
            .await?;
        if floor.and_then(|f| f.parse::<i64>().ok()).unwrap_or(0) < id {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(CHECKPOINT_FLOOR)
            .bind(id.to_string())
            .execute(&mut *tx.tx)
            .await?;
        }
        tx.tx.commit().await?;
        Ok(())
    }
}
