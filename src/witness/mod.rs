//! Witnessed history: what lets every agency hold proof that the shared
//! record was never rewritten, even by whoever runs the server.
//!
//! A hash chain only shows that nobody edited history *without* recomputing
//! the links. So the deployment signs checkpoints — every stream's chain head,
//! its length and the Merkle root over its batches — with its own Ed25519 key
//! and sends them to the agencies, which keep them; a store that no longer
//! extends a checkpoint an agency kept is caught however consistent its own
//! links are. The Merkle trees (RFC 9162) let an agency also ask for a proof
//! that one record version is in the history, and that a later checkpoint
//! extends an earlier one.

pub mod checkpoint;
pub mod config;
pub mod issue;
pub mod key;
pub mod merkle;
pub mod proof;
pub mod state;
pub mod verify;
pub mod worker;

pub use checkpoint::{Audience, Checkpoint, Refused, StreamHead};
pub use config::{Witness, WitnessConfig, WitnessError};
pub use issue::{IssueError, Issued, issue_due};
pub use key::{KeyError, PublicKey, SigningKey};
pub use worker::CheckpointWorker;

#[cfg(test)]
mod tests {
    //! The verifier agencies run without liankong (deploy/verify-checkpoint.py)
    //! checks what this code signs and proves: an implementation of RFC 9162
    //! and Ed25519 that is not ours.

    use chrono::{DateTime, Utc};
    use serde_json::json;

    use super::merkle::{Hash, inclusion_path, leaf_hash, root};
    use super::*;

    fn script(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
        let out = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/deploy/verify-checkpoint.py"
            ))
            .args(args)
            .current_dir(dir)
            .output()
            .expect("python3 runs (CI installs it and the cryptography package)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    }

    #[test]
    fn the_standalone_verifier_accepts_what_is_signed_and_proved_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.public().pem()).unwrap();

        // A stream of five batches of entries, as the store hashes them;
        // the version proved is the fifth of the fourth batch.
        let content = r#"{"amount":1}"#;
        let proved = crate::store::entry_hash("finance.payments", "PAY-1", 2, false, Some(content));
        let batches: Vec<Vec<Hash>> = (0..5u8)
            .map(|b| {
                (0..(3 + 2 * b))
                    .map(|e| {
                        if (b, e) == (3, 4) {
                            proved
                        } else {
                            leaf_hash(&[b, e])
                        }
                    })
                    .collect()
            })
            .collect();
        let entries: Vec<Vec<Hash>> = batches
            .iter()
            .map(|b| b.iter().map(|e| leaf_hash(e)).collect())
            .collect();
        let batch_roots: Vec<Hash> = entries.iter().map(|l| root(l)).collect();
        let stream_leaves: Vec<Hash> = batch_roots.iter().map(|r| leaf_hash(r)).collect();
        let head = StreamHead {
            stream: "finance.payments".into(),
            batches: 5,
            versions: batches.iter().map(|b| b.len() as u64).sum(),
            head: leaf_hash(b"the last link"),
            root: root(&stream_leaves),
        };
        let at = DateTime::parse_from_rfc3339("2026-12-02T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let cp = Checkpoint::sign(&key, 7, at, Audience::Shared, vec![head]);
        std::fs::write(
            dir.path().join("cp.json"),
            serde_json::to_string(&cp).unwrap(),
        )
        .unwrap();
        let (b, i) = (3usize, 4usize);
        let proof = json!({
            "checkpoint_id": 7, "stream": "finance.payments", "key": "PAY-1", "version": 2,
            "deleted": false, "content": content,
            "entry": hex::encode(batches[b][i]),
            "batch": b + 1, "index_in_batch": i, "batch_size": batches[b].len(),
            "batch_root": hex::encode(batch_roots[b]),
            "batch_path": inclusion_path(&entries[b], i).unwrap().iter().map(hex::encode).collect::<Vec<_>>(),
            "stream_path": inclusion_path(&stream_leaves, b).unwrap().iter().map(hex::encode).collect::<Vec<_>>(),
        });
        std::fs::write(dir.path().join("proof.json"), proof.to_string()).unwrap();
        let (code, out) = script(
            dir.path(),
            &["--key", "key.pem", "cp.json", "--proof", "proof.json"],
        );
        assert_eq!(
            (code, out.as_str()),
            (Some(0), "ok: 1 checkpoint(s), and the proof\n")
        );

        // Other content than the entry's, a version that is not there, an
        // altered checkpoint, another key.
        let mut wrong = proof.clone();
        wrong["content"] = json!(r#"{"amount":2}"#);
        std::fs::write(dir.path().join("wrong.json"), wrong.to_string()).unwrap();
        let (code, out) = script(
            dir.path(),
            &["--key", "key.pem", "cp.json", "--proof", "wrong.json"],
        );
        assert_eq!(code, Some(1), "{out}");
        assert!(
            out.contains("its content is not the entry the proof is about"),
            "{out}"
        );
        let rewritten = r#"{"amount":2}"#;
        wrong["entry"] = json!(hex::encode(crate::store::entry_hash(
            "finance.payments",
            "PAY-1",
            2,
            false,
            Some(rewritten)
        )));
        std::fs::write(dir.path().join("wrong.json"), wrong.to_string()).unwrap();
        let (code, out) = script(
            dir.path(),
            &["--key", "key.pem", "cp.json", "--proof", "wrong.json"],
        );
        assert_eq!(code, Some(1), "{out}");
        assert!(
            out.contains("not in the history checkpoint 7 states"),
            "{out}"
        );
        let mut altered = cp.clone();
        altered.streams[0].versions += 1;
        std::fs::write(
            dir.path().join("altered.json"),
            serde_json::to_string(&[&cp, &altered]).unwrap(),
        )
        .unwrap();
        let (code, out) = script(dir.path(), &["--key", "key.pem", "altered.json"]);
        assert_eq!(code, Some(1), "{out}");
        assert!(
            out.contains("stream finance.payments does not match the signed text"),
            "{out}"
        );
        let other = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
        std::fs::write(dir.path().join("other.pem"), other.public().pem()).unwrap();
        let (code, out) = script(dir.path(), &["--key", "other.pem", "cp.json"]);
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains("which is not pinned"), "{out}");
        // With the other key pinned too (a rotation), it verifies.
        let (code, out) = script(
            dir.path(),
            &["--key", "other.pem", "--key", "key.pem", "cp.json"],
        );
        assert_eq!((code, out.as_str()), (Some(0), "ok: 1 checkpoint(s)\n"));
        let mut forged = cp.clone();
        forged.signature = other_signature(&other, &cp);
        std::fs::write(
            dir.path().join("forged.json"),
            serde_json::to_string(&forged).unwrap(),
        )
        .unwrap();
        let (code, out) = script(dir.path(), &["--key", "key.pem", "forged.json"]);
        assert_eq!(code, Some(1), "{out}");
        assert!(
            out.contains("checkpoint 7: the signature does not verify"),
            "{out}"
        );
    }

    /// Another key's signature of the same text.
    fn other_signature(key: &SigningKey, cp: &Checkpoint) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(key.sign(cp.signed.as_bytes()))
    }

    #[test]
    fn the_standalone_verifier_checks_consistency_proofs() {
        use super::merkle::consistency_proof;
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.public().pem()).unwrap();
        let leaves: Vec<Hash> = (0..11u8).map(|i| leaf_hash(&[i])).collect();
        let at = DateTime::parse_from_rfc3339("2026-12-02T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let head = |n: usize, leaves: &[Hash]| StreamHead {
            stream: "npc.budgets".into(),
            batches: n as u64,
            versions: 10 * n as u64,
            head: leaf_hash(&[n as u8]),
            root: root(&leaves[..n]),
        };
        let early = Checkpoint::sign(&key, 3, at, Audience::Shared, vec![head(6, &leaves)]);
        let late = Checkpoint::sign(&key, 5, at, Audience::Shared, vec![head(11, &leaves)]);
        std::fs::write(
            dir.path().join("cps.json"),
            serde_json::to_string(&[&early, &late]).unwrap(),
        )
        .unwrap();
        let proof = |p: Vec<Hash>| {
            json!({"from": 3, "to": 5, "streams": [{"stream": "npc.budgets", "from_batches": 6,
                   "to_batches": 11, "proof": p.iter().map(hex::encode).collect::<Vec<_>>()}]})
        };
        let good = proof(consistency_proof(&leaves, 6).unwrap());
        std::fs::write(dir.path().join("c.json"), good.to_string()).unwrap();
        let args = ["--key", "key.pem", "cps.json", "--consistency", "c.json"];
        let (code, out) = script(dir.path(), &args);
        assert_eq!(
            (code, out.as_str()),
            (Some(0), "ok: 2 checkpoint(s), and the consistency proof\n")
        );
        // A later checkpoint over a rewritten sixth batch is not consistent.
        let mut forged = leaves.clone();
        forged[5] = leaf_hash(b"rewritten");
        let rewritten = Checkpoint::sign(&key, 5, at, Audience::Shared, vec![head(11, &forged)]);
        std::fs::write(
            dir.path().join("cps.json"),
            serde_json::to_string(&[&early, &rewritten]).unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("c.json"),
            proof(consistency_proof(&forged, 6).unwrap()).to_string(),
        )
        .unwrap();
        let (code, out) = script(dir.path(), &args);
        assert_eq!(code, Some(1), "{out}");
        assert!(
            out.contains("stream npc.budgets: checkpoint 5 does not extend checkpoint 3"),
            "{out}"
        );
    }
}
