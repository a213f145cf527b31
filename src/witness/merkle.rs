//! Merkle trees as RFC 9162 (Certificate Transparency 2.0) defines them: a
//! leaf hashes as `SHA-256(0x00 || data)`, a node as
//! `SHA-256(0x01 || left || right)`, a tree of `n` leaves splits at the
//! largest power of two below `n`. Inclusion and consistency proofs are the
//! RFC's `PATH` and `PROOF`, and their checks its §2.1.3.2 and §2.1.4.2
//! algorithms, so that any implementation of the RFC checks what this one
//! proves.
//!
//! Every function takes *leaf hashes* (already hashed with the 0x00 prefix)
//! and never holds more than the leaves it is given; [`TreeBuilder`] folds a
//! stream of leaves into its root in O(log n) memory.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The hash of one leaf's data.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an inner node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of a tree of no leaves: the hash of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n` (`n` ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The root of the tree over `leaves` (leaf hashes).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// Folds leaves, one at a time, into the root of the tree over all of them:
/// a stack of the roots of perfect subtrees, combined right to left at the
/// end, which is the RFC's tree whatever the number of leaves.
#[derive(Debug, Clone, Default)]
pub struct TreeBuilder {
    /// (number of leaves, root) of each perfect subtree, largest first.
    stack: Vec<(u64, Hash)>,
    leaves: u64,
}

impl TreeBuilder {
    /// Adds one leaf, given as its leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut size = 1u64;
        let mut hash = leaf;
        while let Some(&(top, left)) = self.stack.last() {
            if top != size {
                break;
            }
            self.stack.pop();
            hash = node_hash(&left, &hash);
            size += top;
        }
        self.stack.push((size, hash));
        self.leaves += 1;
    }

    pub fn leaves(&self) -> u64 {
        self.leaves
    }

    /// The root of the tree over every leaf pushed so far.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.stack.iter().rev();
        let Some(&(_, mut hash)) = subtrees.next() else {
            return empty_root();
        };
        for (_, left) in subtrees {
            hash = node_hash(left, &hash);
        }
        hash
    }
}

/// The audit path of leaf `index` in the tree over `leaves`: RFC 9162's
/// `PATH(m, D[n])`, nearest sibling first.
pub fn inclusion_path(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    path_into(leaves, index, &mut path);
    Some(path)
}

fn path_into(leaves: &[Hash], m: usize, path: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path_into(&leaves[..k], m, path);
        path.push(root(&leaves[k..]));
    } else {
        path_into(&leaves[k..], m - k, path);
        path.push(root(&leaves[..k]));
    }
}

/// The proof that the tree over the first `m` of `leaves` is a prefix of the
/// tree over all of them: RFC 9162's `PROOF(m, D[n])`.
pub fn consistency_proof(leaves: &[Hash], m: usize) -> Option<Vec<Hash>> {
    if m == 0 || m > leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    subproof(leaves, m, true, &mut proof);
    Some(proof)
}

fn subproof(leaves: &[Hash], m: usize, complete: bool, proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            proof.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(&leaves[..k], m, complete, proof);
        proof.push(root(&leaves[k..]));
    } else {
        subproof(&leaves[k..], m - k, false, proof);
        proof.push(root(&leaves[..k]));
    }
}

/// Whether `path` proves leaf `index` (a leaf hash) in a tree of `size`
/// leaves whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && &r == root
}

/// Whether `proof` shows the tree of `first` leaves with root `first_root`
/// is a prefix of the tree of `second` leaves with root `second_root`
/// (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first == 0 || first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    let mut proof = proof.to_vec();
    if first.is_power_of_two() {
        proof.insert(0, *first_root);
    }
    let Some((first_hash, rest)) = proof.split_first() else {
        return false;
    };
    let (mut f_n, mut s_n) = (first - 1, second - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut f_r, mut s_r) = (*first_hash, *first_hash);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    &f_r == first_root && &s_r == second_root && s_n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
            .collect()
    }

    #[test]
    fn roots_follow_the_rfc_and_the_builder_agrees_at_every_size() {
        // RFC 9162's examples split 7 leaves as (4, (2, 1)).
        let l = leaves(7);
        let by_hand = node_hash(
            &node_hash(&node_hash(&l[0], &l[1]), &node_hash(&l[2], &l[3])),
            &node_hash(&node_hash(&l[4], &l[5]), &l[6]),
        );
        assert_eq!(root(&l), by_hand);
        assert_eq!(root(&[]), empty_root());
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let all = leaves(70);
        let mut builder = TreeBuilder::default();
        assert_eq!(builder.root(), empty_root());
        for (n, leaf) in all.iter().enumerate() {
            builder.push(*leaf);
            assert_eq!(builder.root(), root(&all[..=n]), "{} leaves", n + 1);
        }
        assert_eq!(builder.leaves(), 70);
    }

    #[test]
    fn every_leaf_proves_and_nothing_else_does() {
        for n in 1..=33 {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..n {
                let path = inclusion_path(&l, i).unwrap();
                assert!(
                    verify_inclusion(&l[i], i as u64, n as u64, &path, &r),
                    "{i}/{n}"
                );
                // Another leaf, another index or a changed path proves
                // nothing. (The size is bound by the signed root it is
                // checked against, not by the path alone.)
                let other = leaf_hash(b"not in the tree");
                assert!(!verify_inclusion(&other, i as u64, n as u64, &path, &r));
                if n > 1 {
                    assert!(!verify_inclusion(
                        &l[i],
                        ((i + 1) % n) as u64,
                        n as u64,
                        &path,
                        &r
                    ));
                    let mut bent = path.clone();
                    bent[0][0] ^= 1;
                    assert!(!verify_inclusion(&l[i], i as u64, n as u64, &bent, &r));
                }
            }
            assert!(inclusion_path(&l, n).is_none());
        }
    }

    #[test]
    fn every_prefix_is_consistent_and_a_rewritten_one_is_not() {
        for n in 1..=33 {
            let l = leaves(n);
            for m in 1..=n {
                let proof = consistency_proof(&l, m).unwrap();
                let (rm, rn) = (root(&l[..m]), root(&l));
                assert!(
                    verify_consistency(m as u64, n as u64, &rm, &rn, &proof),
                    "{m}/{n}"
                );
                // The same sizes over a history with one leaf rewritten.
                let mut forged = l.clone();
                forged[m - 1] = leaf_hash(b"rewritten");
                let fm = root(&forged[..m]);
                assert!(!verify_consistency(m as u64, n as u64, &fm, &rn, &proof));
                if m < n {
                    assert!(!verify_consistency(
                        m as u64,
                        n as u64,
                        &rm,
                        &root(&forged),
                        &proof
                    ));
                }
            }
        }
    }
}
