//! This machine's copy of the newest checkpoint it has seen
//! (`witness.state_file`), kept outside the store: a store restored from a
//! backup takes its own checkpoints back with it, the copy does not. At
//! start, `run` and `once` refuse a store that does not extend the copy
//! until an operator accepts the restore (`liankong checkpoint
//! accept-restore`), which numbers the next checkpoint after the lost ones.

use std::path::{Path, PathBuf};

use super::checkpoint::{Audience, Checkpoint};
use super::config::Witness;
use super::verify::{self, Problem};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read witness.state_file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write witness.state_file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("witness.state_file {path} is not a checkpoint: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "{problem} (witness.state_file {path}): after a rotation, list the key that signed it \
         in witness.retired_keys"
    )]
    Unverified { path: PathBuf, problem: Problem },
    #[error(
        "the store does not extend checkpoint {checkpoint}, the newest this machine saw \
         (witness.state_file {path}): it was restored from an older backup, or rewritten.\n  {}\n\
         Nothing was changed. If the restore is intended, `liankong checkpoint accept-restore` \
         accepts it (the agencies' checkpoints after the backup will no longer verify: tell them)",
        .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  ")
    )]
    Restored {
        checkpoint: i64,
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

/// The checkpoint in the state file, if there is one.
pub fn read(path: &Path) -> Result<Option<Checkpoint>, StateError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| StateError::Unreadable {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

/// Keeps `checkpoint` as the newest seen, unless the file already holds a
/// newer one. Written whole or not at all (a new file renamed over it).
pub fn remember(path: &Path, checkpoint: &Checkpoint) -> Result<(), StateError> {
    if read(path)?.is_some_and(|c| c.checkpoint_id >= checkpoint.checkpoint_id) {
        return Ok(());
    }
    replace(path, Some(checkpoint))
}

/// Writes `checkpoint` (or removes the file for `None`), whatever it held.
fn replace(path: &Path, checkpoint: Option<&Checkpoint>) -> Result<(), StateError> {
    let write = |source| StateError::Write {
        path: path.to_owned(),
        source,
    };
    let Some(checkpoint) = checkpoint else {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(write(e)),
            _ => Ok(()),
        };
    };
    let text = serde_json::to_string_pretty(checkpoint).map_err(|e| write(e.into()))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(write)?;
    std::fs::rename(&tmp, path).map_err(write)
}

/// The store's newest checkpoint, of every stream.
async fn newest(store: &dyn Store) -> Result<Option<Checkpoint>, StoreError> {
    Ok(store
        .checkpoints(Audience::All, None, 1)
        .await?
        .into_iter()
        .next())
}

/// Keeps the store's newest checkpoint in the state file (after this
/// process or another replica issued one).
pub async fn refresh(store: &dyn Store, witness: &Witness) -> Result<(), StateError> {
    if let Some(c) = newest(store).await? {
        remember(&witness.state_file, &c)?;
    }
    Ok(())
}

/// How the store stands to the state file's checkpoint: empty when it
/// extends it (or there is none).
pub async fn behind(
    store: &dyn Store,
    witness: &Witness,
) -> Result<(Option<Checkpoint>, Vec<Problem>), StateError> {
    let Some(kept) = read(&witness.state_file)? else {
        return Ok((None, Vec::new()));
    };
    let report = verify::check_kept(store, std::slice::from_ref(&kept), &witness.keys).await?;
    Ok((Some(kept), report.problems))
}

/// The check `run` and `once` make at start: refused while the store does
/// not extend the newest checkpoint this machine saw; otherwise the state
/// file is brought up to the store's newest.
pub async fn check_at_start(store: &dyn Store, witness: &Witness) -> Result<(), StateError> {
    let (kept, problems) = behind(store, witness).await?;
    if let Some(refused @ Problem::Refused(_)) = problems.first() {
        return Err(StateError::Unverified {
            path: witness.state_file.clone(),
            problem: refused.clone(),
        });
    }
    if let (Some(kept), false) = (&kept, problems.is_empty()) {
        return Err(StateError::Restored {
            checkpoint: kept.checkpoint_id,
            path: witness.state_file.clone(),
            problems,
        });
    }
    refresh(store, witness).await
}

/// What accepting a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The checkpoint the store no longer extends, and how.
    pub lost: Checkpoint,
    pub problems: Vec<Problem>,
    /// The store's own newest checkpoint, now the state file's.
    pub newest: Option<i64>,
}

/// Accepts that the store no longer extends the state file's checkpoint:
/// the next checkpoint is numbered after it, and the state file holds the
/// store's newest again. `None` when there is nothing to accept.
pub async fn accept_restore(
    store: &dyn Store,
    witness: &Witness,
) -> Result<Option<Accepted>, StateError> {
    let (Some(lost), problems) = behind(store, witness).await? else {
        return Ok(None);
    };
    if problems.is_empty() {
        return Ok(None);
    }
    store.raise_checkpoint_floor(lost.checkpoint_id).await?;
    let newest = newest(store).await?;
    replace(&witness.state_file, newest.as_ref())?;
    tracing::warn!(
        checkpoint = lost.checkpoint_id,
        "restore accepted: the store no longer extends this checkpoint"
    );
    Ok(Some(Accepted {
        lost,
        problems,
        newest: newest.map(|c| c.checkpoint_id),
    }))
}
