//! Incremental merkle root over a growing list of leaves, and `cp_height` header proofs.
//!
//! [`MerkleAccumulator`] keeps one "peak" per set bit of the leaf count: the root of the
//! perfect subtree covering that bit's leaves. Appending a leaf merges equal-size peaks like a
//! binary counter, and [`root`](MerkleAccumulator::root) folds the peaks with Bitcoin's rule
//! (the last node of an odd level is paired with itself). State is at most 32 peaks plus the
//! count: 1 KiB whatever the number of leaves. Pushing the block hashes of heights `0..=C`
//! yields the root a server proves `cp_height = C` headers against (PROTOCOL.md §4.5); pushing
//! a block's txids yields its header's merkle root
//! ([`crate::merkle::merkle_root`] does that and refuses a mutated list).
//!
//! [`verify_header_proof`] and [`HeaderProofFolder`] check a `cp_height` proof. Because the
//! leaf count (`cp_height + 1`) is known, the tree's shape is too: the branch length must be
//! exact and a sibling equal to the running node is required exactly where the tree duplicates
//! the last node of an odd level, and refused everywhere else.

use core::borrow::Borrow;
use core::fmt;

use crate::hash::{BlockHash, MerkleNode, Txid, sha256d_pair};

/// Most peaks the accumulator holds: one per bit of its `u32` leaf count.
pub const MAX_PEAKS: usize = 32;

/// Longest `cp_height` branch: `cp_height` is a `u32`, so the tree has at most 2^32 leaves.
pub const MAX_HEADER_PROOF_DEPTH: usize = 32;

/// Why a leaf could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccumulatorError {
    /// The accumulator already holds `u32::MAX` leaves.
    Full,
}

impl fmt::Display for AccumulatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccumulatorError::Full => write!(f, "merkle accumulator holds {} leaves", u32::MAX),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for AccumulatorError {}

/// Incremental Bitcoin merkle root with O(log n) state.
///
/// `size_of::<MerkleAccumulator>()` is 1032 bytes (tested).
#[derive(Clone, PartialEq, Eq)]
pub struct MerkleAccumulator {
    /// `peaks[level]` is meaningful when bit `level` of `count` is set: the root of the
    /// perfect subtree of `2^level` leaves that bit stands for.
    peaks: [[u8; 32]; MAX_PEAKS],
    count: u32,
    mutated: bool,
}

impl Default for MerkleAccumulator {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MerkleAccumulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerkleAccumulator")
            .field("len", &self.count)
            .field("root", &self.root())
            .finish()
    }
}

impl MerkleAccumulator {
    /// An accumulator without leaves.
    pub const fn new() -> Self {
        MerkleAccumulator {
            peaks: [[0; 32]; MAX_PEAKS],
            count: 0,
            mutated: false,
        }
    }

    /// Appends a leaf in internal byte order. O(log n) hashes, amortized O(1).
    pub fn push(&mut self, leaf: [u8; 32]) -> Result<(), AccumulatorError> {
        if self.count == u32::MAX {
            return Err(AccumulatorError::Full);
        }
        let mut node = leaf;
        let mut level = 0;
        // Each set low bit is a finished peak of the same size as `node`: merge and carry.
        while self.count & (1 << level) != 0 {
            let Some(peak) = self.peaks.get(level) else {
                break;
            };
            // Two equal siblings make a tree whose root equals a shorter list's (CVE-2012-2459);
            // Core calls such a block "mutated".
            self.mutated |= *peak == node;
            node = sha256d_pair(peak, &node);
            level += 1;
        }
        if let Some(slot) = self.peaks.get_mut(level) {
            *slot = node;
        }
        self.count += 1;
        Ok(())
    }

    /// Appends a block hash (for `cp_height` roots: push heights `0..=cp_height` in order).
    pub fn push_block_hash(&mut self, hash: &BlockHash) -> Result<(), AccumulatorError> {
        self.push(hash.to_byte_array())
    }

    /// Appends a txid (push a block's txids in order to get its merkle root).
    pub fn push_txid(&mut self, txid: &Txid) -> Result<(), AccumulatorError> {
        self.push(txid.to_byte_array())
    }

    /// Number of leaves.
    pub const fn len(&self) -> u32 {
        self.count
    }

    /// No leaf was pushed.
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Two equal adjacent subtrees were merged: the leaf list has the duplicated-tail shape of
    /// CVE-2012-2459, whose root equals that of a shorter list. A block like this is invalid
    /// even when its root matches.
    pub const fn is_mutated(&self) -> bool {
        self.mutated
    }

    /// The Bitcoin merkle root of all leaves so far, `None` without leaves. O(log n) hashes.
    pub fn root(&self) -> Option<MerkleNode> {
        if self.count == 0 {
            return None;
        }
        // Walk up from the lowest peak as Core's `MerkleComputation` does. `count` is widened
        // so that padding it to the next level cannot overflow.
        let mut count = u64::from(self.count);
        let mut level = self.count.trailing_zeros() as usize;
        let mut node = *self.peaks.get(level)?;
        while count != 1 << level {
            // `node` is the last node of an odd level: pair it with itself, as if a copy of the
            // same size followed, and merge with any peaks that completes.
            node = sha256d_pair(&node, &node);
            count += 1 << level;
            level += 1;
            while count & (1 << level) == 0 {
                node = sha256d_pair(self.peaks.get(level)?, &node);
                level += 1;
            }
        }
        Some(MerkleNode::from_byte_array(node))
    }
}

/// Number of siblings in a `cp_height` branch: ceil(log2(cp_height + 1)).
pub const fn header_branch_len(cp_height: u32) -> usize {
    (u32::BITS - cp_height.leading_zeros()) as usize
}

/// Why a `cp_height` header proof was rejected. `level` is 0 for the leaf's sibling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProofError {
    /// The proven height is above the checkpoint height.
    HeightAboveCheckpoint {
        /// Height of the header.
        height: u32,
        /// Checkpoint height.
        cp_height: u32,
    },
    /// The branch length is not [`header_branch_len`]`(cp_height)`.
    BranchLength {
        /// Required length.
        expected: usize,
        /// Length received (for a streamed branch that ran long: as many as were seen when the
        /// excess was detected).
        got: usize,
    },
    /// Where the tree pairs the last node of an odd level with itself, the sibling is not that
    /// node.
    MissingDuplicate {
        /// Level of the offending sibling.
        level: u8,
    },
    /// A sibling equals the running node where the tree has two distinct nodes
    /// (CVE-2012-2459 shape).
    UnexpectedDuplicate {
        /// Level of the offending sibling.
        level: u8,
    },
    /// The folded branch does not reach the checkpoint root.
    RootMismatch,
}

impl fmt::Display for HeaderProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HeaderProofError::HeightAboveCheckpoint { height, cp_height } => {
                write!(f, "header height {height} is above cp_height {cp_height}")
            }
            HeaderProofError::BranchLength { expected, got } => {
                write!(f, "cp_height branch has {got} hashes, expected {expected}")
            }
            HeaderProofError::MissingDuplicate { level } => {
                write!(
                    f,
                    "cp_height branch level {level} should duplicate the node"
                )
            }
            HeaderProofError::UnexpectedDuplicate { level } => {
                write!(f, "cp_height branch level {level} duplicates the node")
            }
            HeaderProofError::RootMismatch => {
                f.write_str("cp_height branch does not reach the root")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HeaderProofError {}

/// Folds a `cp_height` header branch one sibling at a time.
///
/// `size_of::<HeaderProofFolder>()` is at most 80 bytes on 64-bit targets (tested). After an error every further
/// call returns that error.
#[derive(Debug, Clone)]
pub struct HeaderProofFolder {
    /// The running node, internal byte order.
    node: [u8; 32],
    /// Position of the running node within its level.
    index: u32,
    /// Position of the last node of the current level; 0 once the root is reached.
    last: u32,
    level: u8,
    expected_len: u8,
    failed: Option<HeaderProofError>,
}

impl HeaderProofFolder {
    /// Starts a proof that the header hashing to `header_hash` is at `height` in the tree over
    /// heights `0..=cp_height`.
    pub fn new(
        header_hash: &BlockHash,
        height: u32,
        cp_height: u32,
    ) -> Result<Self, HeaderProofError> {
        if height > cp_height {
            return Err(HeaderProofError::HeightAboveCheckpoint { height, cp_height });
        }
        Ok(HeaderProofFolder {
            node: header_hash.to_byte_array(),
            index: height,
            last: cp_height,
            level: 0,
            expected_len: header_branch_len(cp_height) as u8,
            failed: None,
        })
    }

    /// Number of siblings the branch must have.
    pub fn expected_len(&self) -> usize {
        usize::from(self.expected_len)
    }

    /// Folds the next sibling (display-order hex already decoded into a [`MerkleNode`]).
    pub fn push(&mut self, sibling: &MerkleNode) -> Result<(), HeaderProofError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let result = self.fold(sibling.as_byte_array());
        if let Err(e) = result {
            self.failed = Some(e);
        }
        result
    }

    fn fold(&mut self, sibling: &[u8; 32]) -> Result<(), HeaderProofError> {
        let level = self.level;
        if self.last == 0 {
            let expected = self.expected_len();
            return Err(HeaderProofError::BranchLength {
                expected,
                got: expected + 1,
            });
        }
        // The tree pairs a node with itself exactly when it is the last node of its level and
        // has no right neighbour, i.e. it is the last node and sits at an even position.
        let duplicated_here = self.index == self.last && self.index & 1 == 0;
        let equal = *sibling == self.node;
        if duplicated_here && !equal {
            return Err(HeaderProofError::MissingDuplicate { level });
        }
        if !duplicated_here && equal {
            return Err(HeaderProofError::UnexpectedDuplicate { level });
        }
        self.node = if self.index & 1 == 1 {
            sha256d_pair(sibling, &self.node)
        } else {
            sha256d_pair(&self.node, sibling)
        };
        self.index >>= 1;
        self.last >>= 1;
        self.level += 1;
        Ok(())
    }

    /// Checks the branch is complete and reaches `root` (the checkpoint root).
    pub fn finish(self, root: &MerkleNode) -> Result<(), HeaderProofError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.last != 0 {
            return Err(HeaderProofError::BranchLength {
                expected: self.expected_len(),
                got: usize::from(self.level),
            });
        }
        if self.node != *root.as_byte_array() {
            return Err(HeaderProofError::RootMismatch);
        }
        Ok(())
    }
}

/// Verifies a `cp_height` proof (PROTOCOL.md §4.5): the header hashing to `header_hash` is at
/// `height` of the chain whose block hashes `0..=cp_height` have merkle root `root`.
///
/// `root` must be the trusted root *for this `cp_height`*: a shipped checkpoint or
/// [`MerkleAccumulator::root`] over verified headers. The branch itself does not commit to
/// `cp_height` (a neighbouring `cp_height` can give the tree the same shape along the path), so
/// a root taken from the server, or for another `cp_height`, proves nothing.
///
/// `branch` is the siblings from the leaf upward: a slice (`&[MerkleNode]`, `&Vec<_>`, an
/// array) or any iterator of known length, such as [`crate::merkle::nodes_from_bytes`] over a
/// branch kept as 32-byte nodes back to back. Its length is checked before any hashing.
pub fn verify_header_proof<B>(
    header_hash: &BlockHash,
    height: u32,
    cp_height: u32,
    branch: B,
    root: &MerkleNode,
) -> Result<(), HeaderProofError>
where
    B: IntoIterator,
    B::Item: Borrow<MerkleNode>,
    B::IntoIter: ExactSizeIterator,
{
    let mut folder = HeaderProofFolder::new(header_hash, height, cp_height)?;
    let branch = branch.into_iter();
    if branch.len() != folder.expected_len() {
        return Err(HeaderProofError::BranchLength {
            expected: folder.expected_len(),
            got: branch.len(),
        });
    }
    for sibling in branch {
        folder.push(sibling.borrow())?;
    }
    folder.finish(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256d;
    use proptest::prelude::*;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::hash::BuildHasherDefault;

    fn leaf(i: u32) -> [u8; 32] {
        sha256d(&i.to_le_bytes())
    }

    /// Keys are hash outputs, so their first bytes are already a good hash.
    #[derive(Default)]
    struct FirstBytes(u64);

    impl std::hash::Hasher for FirstBytes {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes.iter().take(8) {
                self.0 = (self.0 << 8) | u64::from(*b);
            }
        }
    }

    type PairCache = HashMap<([u8; 32], [u8; 32]), [u8; 32], BuildHasherDefault<FirstBytes>>;

    thread_local! {
        static PAIRS: RefCell<PairCache> = RefCell::default();
    }

    /// `sha256d_pair`, remembered: the naive trees below rebuild the same nodes for every
    /// leaf count, and unoptimized SHA-256 would make the exhaustive test take a minute.
    fn pair(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
        PAIRS.with_borrow_mut(|cache| {
            *cache
                .entry((*left, *right))
                .or_insert_with(|| sha256d_pair(left, right))
        })
    }

    /// Every level of the tree, built the obvious way: pad odd levels, hash pairs.
    fn naive_levels(leaves: &[[u8; 32]]) -> Vec<Vec<[u8; 32]>> {
        let mut levels = vec![leaves.to_vec()];
        while levels.last().unwrap().len() > 1 {
            let mut level = levels.last().unwrap().clone();
            if level.len() % 2 == 1 {
                level.push(*level.last().unwrap());
            }
            levels.push(level.chunks(2).map(|p| pair(&p[0], &p[1])).collect());
        }
        levels
    }

    fn naive_root(leaves: &[[u8; 32]]) -> [u8; 32] {
        naive_levels(leaves).last().unwrap()[0]
    }

    fn naive_branch(leaves: &[[u8; 32]], index: usize) -> Vec<MerkleNode> {
        let levels = naive_levels(leaves);
        let mut idx = index;
        let mut branch = Vec::new();
        for level in &levels[..levels.len() - 1] {
            let sibling = level.get(idx ^ 1).unwrap_or(&level[idx]);
            branch.push(MerkleNode::from_byte_array(*sibling));
            idx /= 2;
        }
        branch
    }

    #[test]
    fn root_matches_naive_for_every_count_up_to_3000() {
        let leaves = leaves(3000);
        let mut acc = MerkleAccumulator::new();
        assert_eq!(acc.root(), None);
        for n in 1..=leaves.len() {
            acc.push(leaves[n - 1]).unwrap();
            assert_eq!(acc.len() as usize, n);
            assert_eq!(
                acc.root().unwrap().to_byte_array(),
                naive_root(&leaves[..n]),
                "n = {n}"
            );
            assert!(!acc.is_mutated());
        }
    }

    #[test]
    fn duplicated_tail_is_flagged_as_mutated() {
        let mut acc = MerkleAccumulator::new();
        for l in [leaf(0), leaf(1), leaf(2), leaf(2)] {
            acc.push(l).unwrap();
        }
        assert!(acc.is_mutated());
        let mut short = MerkleAccumulator::new();
        for l in [leaf(0), leaf(1), leaf(2)] {
            short.push(l).unwrap();
        }
        assert_eq!(acc.root(), short.root(), "the attack the flag exists for");
    }

    #[test]
    fn full_after_u32_max_leaves() {
        let mut acc = MerkleAccumulator::new();
        acc.count = u32::MAX;
        assert_eq!(acc.push([0; 32]), Err(AccumulatorError::Full));
        assert!(acc.root().is_some());
        acc.count = u32::MAX - 1;
        acc.push([0; 32]).unwrap();
        assert_eq!(acc.len(), u32::MAX);
    }

    #[test]
    fn branch_lengths() {
        for (cp, len) in [
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 2),
            (4, 3),
            (7, 3),
            (8, 4),
            (u32::MAX, 32),
        ] {
            assert_eq!(header_branch_len(cp), len, "cp_height {cp}");
        }
    }

    #[test]
    fn single_leaf_tree() {
        let h = BlockHash::from_byte_array(leaf(0));
        let root = MerkleNode::from_byte_array(leaf(0));
        assert_eq!(
            verify_header_proof(&h, 0, 0, core::iter::empty::<MerkleNode>(), &root),
            Ok(())
        );
        assert_eq!(
            verify_header_proof(&h, 1, 0, core::iter::empty::<MerkleNode>(), &root),
            Err(HeaderProofError::HeightAboveCheckpoint {
                height: 1,
                cp_height: 0
            })
        );
        let mut folder = HeaderProofFolder::new(&h, 0, 0).unwrap();
        assert_eq!(
            folder.push(&root),
            Err(HeaderProofError::BranchLength {
                expected: 0,
                got: 1
            })
        );
    }

    #[test]
    fn duplication_is_required_exactly_where_the_tree_has_it() {
        let leaves: Vec<[u8; 32]> = (0..5).map(leaf).collect();
        let root = MerkleNode::from_byte_array(naive_root(&leaves));
        let hash = BlockHash::from_byte_array(leaves[4]);
        let branch = naive_branch(&leaves, 4);
        assert_eq!(verify_header_proof(&hash, 4, 4, &branch, &root), Ok(()));
        let mut wrong = branch.clone();
        wrong[0] = MerkleNode::from_byte_array(leaves[3]);
        assert_eq!(
            verify_header_proof(&hash, 4, 4, &wrong, &root),
            Err(HeaderProofError::MissingDuplicate { level: 0 })
        );
        // Leaf 3 with its left sibling replaced by itself.
        let mut dup = naive_branch(&leaves, 3);
        dup[0] = MerkleNode::from_byte_array(leaves[3]);
        assert_eq!(
            verify_header_proof(&BlockHash::from_byte_array(leaves[3]), 3, 4, &dup, &root),
            Err(HeaderProofError::UnexpectedDuplicate { level: 0 })
        );
    }

    #[test]
    fn state_is_small() {
        std::println!(
            "size_of::<MerkleAccumulator>() = {}",
            core::mem::size_of::<MerkleAccumulator>()
        );
        std::println!(
            "size_of::<HeaderProofFolder>() = {}",
            core::mem::size_of::<HeaderProofFolder>()
        );
        assert_eq!(core::mem::size_of::<MerkleAccumulator>(), 1032);
        assert!(core::mem::size_of::<HeaderProofFolder>() <= 80);
    }

    /// The first `n` leaves (sha256d of the index), computed once per test thread.
    fn leaves(n: u32) -> Vec<[u8; 32]> {
        thread_local! {
            static LEAVES: Vec<[u8; 32]> = (0..3000).map(leaf).collect();
        }
        LEAVES.with(|all| all[..n as usize].to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn naive_proofs_verify_and_tampered_ones_fail(
            n in 1u32..=3000,
            index_seed in any::<u32>(),
            bit in 0usize..256,
            wrong_seed in 1u32..3000,
        ) {
            let leaves = leaves(n);
            let index = index_seed % n;
            let cp_height = n - 1;
            // The accumulator's root is checked against this one for every n above.
            let root = MerkleNode::from_byte_array(naive_root(&leaves));
            let hash = BlockHash::from_byte_array(leaves[index as usize]);
            let branch = naive_branch(&leaves, index as usize);
            prop_assert_eq!(branch.len(), header_branch_len(cp_height));
            prop_assert_eq!(verify_header_proof(&hash, index, cp_height, &branch, &root), Ok(()));

            // A flipped bit in the header hash, the branch or the root.
            let mut bad_hash = hash.to_byte_array();
            bad_hash[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(verify_header_proof(
                &BlockHash::from_byte_array(bad_hash), index, cp_height, &branch, &root
            ).is_err());
            if !branch.is_empty() {
                let mut bad_branch = branch.clone();
                let at = bit % bad_branch.len();
                let mut b = bad_branch[at].to_byte_array();
                b[bit / 8] ^= 1 << (bit % 8);
                bad_branch[at] = MerkleNode::from_byte_array(b);
                prop_assert!(verify_header_proof(&hash, index, cp_height, &bad_branch, &root).is_err());
                prop_assert!(verify_header_proof(
                    &hash, index, cp_height, &branch[..branch.len() - 1], &root
                ).is_err());
            }
            let mut bad_root = root.to_byte_array();
            bad_root[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(verify_header_proof(
                &hash, index, cp_height, &branch, &MerkleNode::from_byte_array(bad_root)
            ).is_err());

            // The same proof claimed for another height.
            let wrong = (index + wrong_seed) % n;
            if wrong != index {
                prop_assert!(verify_header_proof(&hash, wrong, cp_height, &branch, &root).is_err());
            }
        }
    }
}
