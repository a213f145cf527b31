//! Checking a store against checkpoints an agency kept: each one's
//! signature with the deployment's keys (the current and the retired), then
//! that the store still extends it — every stream's chain, folded again
//! from the store, reaches at the checkpoint's length the head, root and
//! version count it signed. A history rewritten however consistently fails
//! here; a store restored from an older backup is *behind*, by so many
//! batches and versions.

use std::fmt;

use super::checkpoint::{Checkpoint, Refused, StreamHead};
use super::key::PublicKey;
use crate::store::witness::{ChainState, Sizes};
use crate::store::{Store, StoreError};

/// Why the store does not extend a kept checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not a checkpoint of this deployment's, or altered.
    Refused(Refused),
    /// The stream's history up to the checkpoint is not what it signed.
    Rewritten {
        stream: String,
        checkpoint: i64,
        batches: u64,
        versions: u64,
    },
    /// The store holds less of the stream than the checkpoint states.
    Behind {
        stream: String,
        checkpoint: i64,
        /// What the checkpoint states.
        batches: u64,
        versions: u64,
        /// What the store holds.
        held_batches: u64,
        held_versions: u64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Refused(r) => write!(f, "{r}"),
            Problem::Rewritten {
                stream,
                checkpoint,
                batches,
                versions,
            } => write!(
                f,
                "stream {stream} no longer extends checkpoint {checkpoint}: its first {batches} \
                 batches ({versions} versions) are not the history the checkpoint signed"
            ),
            Problem::Behind {
                stream,
                checkpoint,
                batches,
                versions,
                held_batches,
                held_versions,
            } => write!(
                f,
                "stream {stream} is behind checkpoint {checkpoint}: the store holds {held_batches} \
                 batches ({held_versions} versions) where the checkpoint states {batches} \
                 ({versions}), {} batches and {} versions behind",
                batches - held_batches,
                versions.saturating_sub(*held_versions)
            ),
        }
    }
}

/// A file of kept checkpoints that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("not checkpoints as delivered (one, a JSON array, or one per line): {0}")]
pub struct NotCheckpoints(#[from] serde_json::Error);

/// The checkpoints in a kept file: one checkpoint (or the whole
/// `store.checkpoint` webhook body), a JSON array of them, or one per line.
pub fn read_checkpoints(text: &str) -> Result<Vec<Checkpoint>, NotCheckpoints> {
    fn one(v: serde_json::Value) -> Result<Checkpoint, serde_json::Error> {
        match v {
            serde_json::Value::Object(mut o)
                if o.get("type").is_some_and(|t| t == "store.checkpoint") =>
            {
                serde_json::from_value(o.remove("data").unwrap_or_default())
            }
            v => serde_json::from_value(v),
        }
    }
    let text = text.trim();
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Array(items)) => {
            Ok(items.into_iter().map(one).collect::<Result<_, _>>()?)
        }
        Ok(v) => Ok(vec![one(v)?]),
        Err(_) => Ok(text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).and_then(one))
            .collect::<Result<_, _>>()?),
    }
}

/// The sizes at which each stream's chain must be folded to check `kept`.
pub fn sizes_of<'a>(kept: impl IntoIterator<Item = &'a Checkpoint>) -> Sizes {
    let mut sizes = Sizes::new();
    for c in kept {
        for s in &c.streams {
            sizes.entry(s.stream.clone()).or_default().push(s.batches);
        }
    }
    sizes
}

/// How the store's chains stand to one checkpoint (its signature already
/// checked): empty when it extends it.
pub fn compare(kept: &Checkpoint, chains: &[ChainState]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for signed in &kept.streams {
        let chain = chains.iter().find(|c| c.now.stream == signed.stream);
        let (held_batches, held_versions) =
            chain.map_or((0, 0), |c| (c.now.batches, c.now.versions));
        if held_batches < signed.batches {
            problems.push(Problem::Behind {
                stream: signed.stream.clone(),
                checkpoint: kept.checkpoint_id,
                batches: signed.batches,
                versions: signed.versions,
                held_batches,
                held_versions,
            });
            continue;
        }
        let at: Option<&StreamHead> =
            chain.and_then(|c| c.at.iter().find(|h| h.batches == signed.batches));
        if at != Some(signed) {
            problems.push(Problem::Rewritten {
                stream: signed.stream.clone(),
                checkpoint: kept.checkpoint_id,
                batches: signed.batches,
                versions: signed.versions,
            });
        }
    }
    problems
}

/// What checking a store against kept checkpoints found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub checked: usize,
    /// Every checkpoint whose signature verified and that the store extends.
    pub extended: usize,
    pub problems: Vec<Problem>,
}

/// Checks `kept` with `keys`, then the store against each one that verifies.
pub async fn check_kept(
    store: &dyn Store,
    kept: &[Checkpoint],
    keys: &[PublicKey],
) -> Result<Report, StoreError> {
    let mut report = Report {
        checked: kept.len(),
        ..Report::default()
    };
    let mut valid = Vec::new();
    for c in kept {
        match c.check(keys) {
            Ok(()) => valid.push(c),
            Err(r) => report.problems.push(Problem::Refused(r)),
        }
    }
    let chains = store.chains(&sizes_of(valid.iter().copied())).await?;
    for c in valid {
        let problems = compare(c, &chains);
        if problems.is_empty() {
            report.extended += 1;
        }
        report.problems.extend(problems);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::witness::merkle::leaf_hash;
    use crate::witness::{Audience, SigningKey};

    fn head(batches: u64, versions: u64, tag: &str) -> StreamHead {
        StreamHead {
            stream: "finance.payments".into(),
            batches,
            versions,
            head: leaf_hash(format!("head {tag}").as_bytes()),
            root: leaf_hash(format!("root {tag}").as_bytes()),
        }
    }

    #[test]
    fn a_store_extends_what_it_grew_from_and_nothing_else() {
        let key = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
        let at = chrono::DateTime::UNIX_EPOCH;
        let kept = Checkpoint::sign(&key, 7, at, Audience::Shared, vec![head(3, 40, "3")]);
        let grown = ChainState {
            now: head(5, 60, "5"),
            at: vec![head(3, 40, "3")],
        };
        assert_eq!(compare(&kept, &[grown]), []);
        let rewritten = ChainState {
            now: head(5, 60, "5"),
            at: vec![head(3, 40, "other")],
        };
        assert_eq!(
            compare(&kept, &[rewritten])[0].to_string(),
            "stream finance.payments no longer extends checkpoint 7: its first 3 batches (40 versions) are not the history the checkpoint signed"
        );
        let restored = ChainState {
            now: head(2, 25, "2"),
            at: vec![],
        };
        assert_eq!(
            compare(&kept, &[restored])[0].to_string(),
            "stream finance.payments is behind checkpoint 7: the store holds 2 batches (25 versions) where the checkpoint states 3 (40), 1 batches and 15 versions behind"
        );
        assert!(matches!(
            compare(&kept, &[])[0],
            Problem::Behind {
                held_batches: 0,
                ..
            }
        ));

        // One, an array, lines, or a webhook body.
        let one = serde_json::to_string(&kept).unwrap();
        let body = serde_json::json!({"type": "store.checkpoint", "timestamp": "x", "data": kept})
            .to_string();
        for text in [
            one.clone(),
            format!("[{one},{one}]"),
            format!("{one}\n\n{body}\n"),
        ] {
            let read = read_checkpoints(&text).unwrap();
            assert!(
                !read.is_empty() && read.iter().all(|c| *c == kept),
                "{text}"
            );
        }
        assert!(read_checkpoints("{\"checkpoint_id\": 1}").is_err());
    }
}
