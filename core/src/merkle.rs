//! Hardened verification of transaction merkle branches (`blockchain.transaction.get_merkle`).
//!
//! The server sends a txid, its position `pos` in the block and the sibling hashes from the
//! leaf upward (PROTOCOL.md §4.4). Folding them must reproduce the merkle root of a header the
//! client verified. Folding alone is not enough; [`BranchFolder`] also enforces:
//!
//! * a depth bound ([`MAX_MERKLE_DEPTH`]), so work per proof is bounded;
//! * the position fully consumed (`pos < 2^depth`), so one branch cannot be replayed for many
//!   positions;
//! * no inner node whose 64-byte preimage is a transaction (CVE-2017-12842): otherwise half of a
//!   64-byte transaction could be "proven" as a txid one level deeper;
//! * no right child equal to its left sibling (CVE-2012-2459): Bitcoin pairs the last node of an
//!   odd level with itself, so a node equal to its sibling must be that last, *left* node; as a
//!   right child it proves a position that does not exist;
//! * optionally the depth pinned by the block's coinbase branch
//!   ([`verify_coinbase_branch`], [`verify_tx_branch_pinned`]): every leaf of a block's tree is
//!   at the same depth, which defeats the 64-byte attack without relying on the shape check.
//!
//! [`BranchFolder`] takes siblings one at a time, so a session can verify a branch while the
//! JSON array arrives, holding about 100 bytes. [`verify_tx_branch`] takes a whole branch: a
//! slice of [`MerkleNode`]s, or 32-byte nodes back to back through [`nodes_from_bytes`] (as a
//! C caller holds them).
//!
//! [`merkle_root`] computes a block's merkle root from its txids and refuses a list mutated by
//! duplication (CVE-2012-2459), as Bitcoin Core's `ComputeMerkleRoot` flags it.

use core::borrow::Borrow;
use core::fmt;

use crate::accumulator::MerkleAccumulator;
use crate::hash::{MerkleNode, Txid, sha256d};
use crate::tx::is_transaction_shaped;

/// Longest transaction branch accepted (Electrum's `verifier.py` bound).
///
/// A block's witness-free size is at most 1,000,000 bytes and a transaction at least 60, so a
/// real tree has at most 16,667 leaves: depth 15. Thirty keeps Electrum's limit (accepting all
/// it accepts) while bounding the work of a hostile branch to 30 hashes.
pub const MAX_MERKLE_DEPTH: usize = 30;

/// Depth of a transaction merkle tree: the number of siblings in each of its branches,
/// at most [`MAX_MERKLE_DEPTH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TreeDepth(u8);

impl TreeDepth {
    /// A depth of `levels`, if it is at most [`MAX_MERKLE_DEPTH`].
    pub const fn new(levels: usize) -> Option<TreeDepth> {
        if levels <= MAX_MERKLE_DEPTH {
            Some(TreeDepth(levels as u8))
        } else {
            None
        }
    }

    /// The number of levels below the root.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for TreeDepth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a transaction merkle branch was rejected. `level` is 0 for the leaf's sibling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MerkleError {
    /// More than [`MAX_MERKLE_DEPTH`] siblings.
    TooDeep,
    /// The position has bits above the branch length (`pos >= 2^depth`).
    IndexNotConsumed,
    /// An inner node's 64-byte preimage parses as a transaction (CVE-2017-12842).
    InnerNodeIsTransaction {
        /// Level of the offending sibling.
        level: u8,
    },
    /// A right child equal to its left sibling: a duplicated last node presented as a new
    /// position (CVE-2012-2459).
    LeftSiblingDuplicate {
        /// Level of the offending sibling.
        level: u8,
    },
    /// The branch length differs from the depth pinned by the coinbase branch.
    DepthMismatch {
        /// Pinned depth.
        expected: u8,
        /// Siblings received (for a streamed branch that ran long: as many as were seen when
        /// the excess was detected).
        got: u8,
    },
    /// The folded branch does not reach the header's merkle root.
    RootMismatch,
}

impl fmt::Display for MerkleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MerkleError::TooDeep => write!(f, "merkle branch longer than {MAX_MERKLE_DEPTH}"),
            MerkleError::IndexNotConsumed => f.write_str("position beyond the merkle branch"),
            MerkleError::InnerNodeIsTransaction { level } => {
                write!(
                    f,
                    "inner merkle node at level {level} is a 64-byte transaction"
                )
            }
            MerkleError::LeftSiblingDuplicate { level } => {
                write!(
                    f,
                    "right merkle node at level {level} duplicates its left sibling"
                )
            }
            MerkleError::DepthMismatch { expected, got } => {
                write!(
                    f,
                    "merkle branch has {got} levels, the block's tree has {expected}"
                )
            }
            MerkleError::RootMismatch => f.write_str("merkle branch does not reach the root"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for MerkleError {}

/// Folds a transaction merkle branch one sibling at a time.
///
/// `size_of::<BranchFolder>()` is under 48 bytes (tested). After an error every further call
/// returns that error.
#[derive(Debug, Clone)]
pub struct BranchFolder {
    /// The running node, internal byte order.
    node: [u8; 32],
    /// The position within the current level.
    index: u32,
    depth: u8,
    expected_depth: Option<TreeDepth>,
    failed: Option<MerkleError>,
}

impl BranchFolder {
    /// Starts at the transaction `leaf` in position `pos` of its block.
    pub fn new(leaf: Txid, pos: u32) -> Self {
        BranchFolder {
            node: leaf.to_byte_array(),
            index: pos,
            depth: 0,
            expected_depth: None,
            failed: None,
        }
    }

    /// Like [`new`](Self::new), and the branch must have exactly `depth` siblings (the depth of
    /// the block's coinbase branch).
    pub fn with_expected_depth(leaf: Txid, pos: u32, depth: TreeDepth) -> Self {
        BranchFolder {
            expected_depth: Some(depth),
            ..Self::new(leaf, pos)
        }
    }

    /// Siblings folded so far.
    pub fn depth(&self) -> TreeDepth {
        TreeDepth(self.depth)
    }

    /// Folds the next sibling (display-order hex already decoded into a [`MerkleNode`]).
    pub fn push(&mut self, sibling: &MerkleNode) -> Result<(), MerkleError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let result = self.fold(sibling.as_byte_array());
        if let Err(e) = result {
            self.failed = Some(e);
        }
        result
    }

    fn fold(&mut self, sibling: &[u8; 32]) -> Result<(), MerkleError> {
        let level = self.depth;
        if usize::from(level) >= MAX_MERKLE_DEPTH {
            return Err(MerkleError::TooDeep);
        }
        if let Some(expected) = self.expected_depth
            && level >= expected.0
        {
            return Err(MerkleError::DepthMismatch {
                expected: expected.0,
                got: level + 1,
            });
        }
        let is_right = self.index & 1 == 1;
        if is_right && *sibling == self.node {
            return Err(MerkleError::LeftSiblingDuplicate { level });
        }
        let preimage = if is_right {
            concat(sibling, &self.node)
        } else {
            concat(&self.node, sibling)
        };
        if is_transaction_shaped(&preimage) {
            return Err(MerkleError::InnerNodeIsTransaction { level });
        }
        self.node = sha256d(&preimage);
        self.index >>= 1;
        self.depth += 1;
        Ok(())
    }

    /// Checks the branch is complete and reaches `root` (the header's merkle root); returns the
    /// branch's depth.
    pub fn finish(self, root: &MerkleNode) -> Result<TreeDepth, MerkleError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if let Some(expected) = self.expected_depth
            && expected.0 != self.depth
        {
            return Err(MerkleError::DepthMismatch {
                expected: expected.0,
                got: self.depth,
            });
        }
        if self.index != 0 {
            return Err(MerkleError::IndexNotConsumed);
        }
        if self.node != *root.as_byte_array() {
            return Err(MerkleError::RootMismatch);
        }
        Ok(TreeDepth(self.depth))
    }
}

fn concat(left: &[u8; 32], right: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(left);
    out[32..].copy_from_slice(right);
    out
}

/// Folds a whole branch given up front. Its length is known before any hashing, so an
/// over-long branch is refused without hashing any of it.
fn fold_all<B>(
    mut folder: BranchFolder,
    branch: B,
    root: &MerkleNode,
) -> Result<TreeDepth, MerkleError>
where
    B: IntoIterator,
    B::Item: Borrow<MerkleNode>,
    B::IntoIter: ExactSizeIterator,
{
    let branch = branch.into_iter();
    if branch.len() > MAX_MERKLE_DEPTH {
        return Err(MerkleError::TooDeep);
    }
    for sibling in branch {
        folder.push(sibling.borrow())?;
    }
    folder.finish(root)
}

/// Verifies that `txid` is at position `pos` of the block whose header has merkle root `root`;
/// returns the branch's depth.
///
/// `branch` is the siblings from the leaf upward: a slice (`&[MerkleNode]`, `&Vec<_>`, an
/// array) or any iterator of known length, such as [`nodes_from_bytes`] over a branch kept as
/// 32-byte nodes back to back.
pub fn verify_tx_branch<B>(
    txid: &Txid,
    pos: u32,
    branch: B,
    root: &MerkleNode,
) -> Result<TreeDepth, MerkleError>
where
    B: IntoIterator,
    B::Item: Borrow<MerkleNode>,
    B::IntoIter: ExactSizeIterator,
{
    fold_all(BranchFolder::new(*txid, pos), branch, root)
}

/// Verifies the coinbase (position 0) branch of a block and returns the depth of the block's
/// tree, to pin the depth of the block's other branches with [`verify_tx_branch_pinned`].
/// `branch` as in [`verify_tx_branch`].
pub fn verify_coinbase_branch<B>(
    coinbase_txid: &Txid,
    branch: B,
    root: &MerkleNode,
) -> Result<TreeDepth, MerkleError>
where
    B: IntoIterator,
    B::Item: Borrow<MerkleNode>,
    B::IntoIter: ExactSizeIterator,
{
    verify_tx_branch(coinbase_txid, 0, branch, root)
}

/// Like [`verify_tx_branch`], and the branch must have exactly `depth` siblings.
pub fn verify_tx_branch_pinned<B>(
    txid: &Txid,
    pos: u32,
    branch: B,
    root: &MerkleNode,
    depth: TreeDepth,
) -> Result<TreeDepth, MerkleError>
where
    B: IntoIterator,
    B::Item: Borrow<MerkleNode>,
    B::IntoIter: ExactSizeIterator,
{
    let branch = branch.into_iter();
    if branch.len() != usize::from(depth.0) {
        let got = u8::try_from(branch.len()).unwrap_or(u8::MAX);
        return Err(MerkleError::DepthMismatch {
            expected: depth.0,
            got,
        });
    }
    fold_all(
        BranchFolder::with_expected_depth(*txid, pos, depth),
        branch,
        root,
    )
}

/// The nodes of a branch (or of a leaf list) kept as 32-byte hashes back to back, each in
/// internal byte order: what a C caller or a fixed buffer holds. `None` if `bytes.len()` is
/// not a multiple of 32. Pass the result to [`verify_tx_branch`],
/// [`crate::accumulator::verify_header_proof`] or [`merkle_root`].
pub fn nodes_from_bytes(
    bytes: &[u8],
) -> Option<impl ExactSizeIterator<Item = MerkleNode> + Clone + '_> {
    let (nodes, rest) = bytes.as_chunks::<32>();
    if !rest.is_empty() {
        return None;
    }
    Some(nodes.iter().map(|n| MerkleNode::from_byte_array(*n)))
}

/// Why a list of leaves has no acceptable merkle root ([`merkle_root`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MerkleRootError {
    /// No leaves: a block has at least its coinbase.
    Empty,
    /// More than `u32::MAX` leaves.
    TooMany,
    /// Two equal sibling subtrees (CVE-2012-2459): the list ends in a duplicated run, like
    /// `[a, b, c, c]`, and has the same root as a shorter list (`[a, b, c]`). Bitcoin Core's
    /// `ComputeMerkleRoot` flags such a list as "mutated"; a block with it is invalid even
    /// when its root matches.
    Mutated,
}

impl fmt::Display for MerkleRootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MerkleRootError::Empty => f.write_str("no leaves, no merkle root"),
            MerkleRootError::TooMany => write!(f, "more than {} merkle leaves", u32::MAX),
            MerkleRootError::Mutated => {
                f.write_str("merkle leaves are mutated: two equal siblings (CVE-2012-2459)")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for MerkleRootError {}

/// The Bitcoin merkle root of `leaves` (internal byte order, in order): over a block's txids
/// its header's merkle root; over the block hashes of heights `0..=cp_height` the root a
/// `cp_height` proof must reach.
///
/// Refuses a mutated list ([`MerkleRootError::Mutated`]) as Bitcoin Core does. Streams through
/// a [`MerkleAccumulator`]: about 1 KiB of state whatever the number of leaves, no buffer.
pub fn merkle_root<I>(leaves: I) -> Result<MerkleNode, MerkleRootError>
where
    I: IntoIterator,
    I::Item: Borrow<[u8; 32]>,
{
    let mut acc = MerkleAccumulator::new();
    for leaf in leaves {
        acc.push(*leaf.borrow())
            .map_err(|_| MerkleRootError::TooMany)?;
    }
    if acc.is_mutated() {
        return Err(MerkleRootError::Mutated);
    }
    acc.root().ok_or(MerkleRootError::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256d_pair;

    fn leaf(i: u8) -> [u8; 32] {
        sha256d(&[i])
    }

    /// Root and branch of a small tree built the obvious way.
    fn tree(n: usize, pos: usize) -> ([u8; 32], Vec<MerkleNode>) {
        let mut level: Vec<[u8; 32]> = (0..n as u8).map(leaf).collect();
        let mut idx = pos;
        let mut branch = Vec::new();
        while level.len() > 1 {
            if level.len() % 2 == 1 {
                level.push(*level.last().unwrap());
            }
            branch.push(MerkleNode::from_byte_array(level[idx ^ 1]));
            level = level
                .chunks(2)
                .map(|p| sha256d_pair(&p[0], &p[1]))
                .collect();
            idx /= 2;
        }
        (level[0], branch)
    }

    #[test]
    fn folds_every_position_of_small_trees() {
        for n in 1..=9 {
            let (root, _) = tree(n, 0);
            let root = MerkleNode::from_byte_array(root);
            let (_, coinbase) = tree(n, 0);
            let depth =
                verify_coinbase_branch(&Txid::from_byte_array(leaf(0)), &coinbase, &root).unwrap();
            for pos in 0..n {
                let (_, branch) = tree(n, pos);
                let txid = Txid::from_byte_array(leaf(pos as u8));
                assert_eq!(
                    verify_tx_branch(&txid, pos as u32, &branch, &root),
                    Ok(depth)
                );
                assert_eq!(
                    verify_tx_branch_pinned(&txid, pos as u32, &branch, &root, depth),
                    Ok(depth)
                );
            }
        }
    }

    #[test]
    fn duplicate_on_the_right_is_rejected_on_the_left_accepted() {
        // Three leaves: leaf 2 is paired with itself.
        let (root, branch) = tree(3, 2);
        let root = MerkleNode::from_byte_array(root);
        let txid = Txid::from_byte_array(leaf(2));
        assert!(verify_tx_branch(&txid, 2, &branch, &root).is_ok());
        assert_eq!(
            verify_tx_branch(&txid, 3, &branch, &root),
            Err(MerkleError::LeftSiblingDuplicate { level: 0 })
        );
    }

    #[test]
    fn index_must_be_consumed_and_depth_bounded() {
        let (root, branch) = tree(4, 1);
        let root = MerkleNode::from_byte_array(root);
        let txid = Txid::from_byte_array(leaf(1));
        assert_eq!(
            verify_tx_branch(&txid, 1 + 4, &branch, &root),
            Err(MerkleError::IndexNotConsumed)
        );
        let long = [MerkleNode::from_byte_array([7; 32]); MAX_MERKLE_DEPTH + 1];
        assert_eq!(
            verify_tx_branch(&txid, 1, long, &root),
            Err(MerkleError::TooDeep)
        );
        let mut folder = BranchFolder::new(txid, 1);
        for s in &long[..MAX_MERKLE_DEPTH] {
            folder.push(s).unwrap();
        }
        assert_eq!(folder.push(&long[0]), Err(MerkleError::TooDeep));
        assert_eq!(folder.finish(&root), Err(MerkleError::TooDeep));
    }

    #[test]
    fn pinned_depth_is_enforced_while_streaming() {
        let (root, branch) = tree(4, 1);
        let root = MerkleNode::from_byte_array(root);
        let txid = Txid::from_byte_array(leaf(1));
        let one = TreeDepth::new(1).unwrap();
        assert_eq!(
            verify_tx_branch_pinned(&txid, 1, &branch, &root, one),
            Err(MerkleError::DepthMismatch {
                expected: 1,
                got: 2
            })
        );
        let mut folder = BranchFolder::with_expected_depth(txid, 1, one);
        folder.push(&branch[0]).unwrap();
        assert_eq!(
            folder.push(&branch[1]),
            Err(MerkleError::DepthMismatch {
                expected: 1,
                got: 2
            })
        );
        let three = TreeDepth::new(3).unwrap();
        let mut folder = BranchFolder::with_expected_depth(txid, 1, three);
        for s in &branch {
            folder.push(s).unwrap();
        }
        assert_eq!(
            folder.finish(&root),
            Err(MerkleError::DepthMismatch {
                expected: 3,
                got: 2
            })
        );
        assert_eq!(TreeDepth::new(MAX_MERKLE_DEPTH + 1), None);
    }

    #[test]
    fn root_mismatch() {
        let (root, mut branch) = tree(5, 3);
        let root = MerkleNode::from_byte_array(root);
        branch[1] = MerkleNode::from_byte_array([9; 32]);
        let txid = Txid::from_byte_array(leaf(3));
        assert_eq!(
            verify_tx_branch(&txid, 3, &branch, &root),
            Err(MerkleError::RootMismatch)
        );
    }

    #[test]
    fn branches_given_as_bytes_verify_like_slices() {
        for pos in 0..5 {
            let (root, branch) = tree(5, pos);
            let root = MerkleNode::from_byte_array(root);
            let txid = Txid::from_byte_array(leaf(pos as u8));
            let bytes: Vec<u8> = branch.iter().flat_map(|n| n.to_byte_array()).collect();
            let nodes = nodes_from_bytes(&bytes).unwrap();
            assert_eq!(nodes.len(), branch.len());
            assert_eq!(
                verify_tx_branch(&txid, pos as u32, nodes, &root),
                verify_tx_branch(&txid, pos as u32, &branch, &root)
            );
            assert!(verify_tx_branch(&txid, pos as u32, branch.iter().copied(), &root).is_ok());
        }
        assert!(nodes_from_bytes(&[0; 33]).is_none());
        assert_eq!(nodes_from_bytes(&[]).map(|n| n.len()), Some(0));
        let long = [0u8; 32 * (MAX_MERKLE_DEPTH + 1)];
        let txid = Txid::from_byte_array([1; 32]);
        assert_eq!(
            verify_tx_branch(
                &txid,
                0,
                nodes_from_bytes(&long).unwrap(),
                &MerkleNode::default()
            ),
            Err(MerkleError::TooDeep)
        );
    }

    #[test]
    fn merkle_root_refuses_mutated_lists() {
        for n in 1..=9u8 {
            let leaves: Vec<[u8; 32]> = (0..n).map(leaf).collect();
            let (root, _) = tree(usize::from(n), 0);
            assert_eq!(merkle_root(&leaves), Ok(MerkleNode::from_byte_array(root)));
            // With n odd, [.., x, x] is mutated, and shares the root of [.., x] from n = 3 on
            // (one leaf is its own root; [x, x] hashes it once).
            // With n even, x is paired with its left neighbour, and [.., w, x, x] is an
            // ordinary list with another root.
            let mut dup = leaves.clone();
            dup.push(*leaves.last().unwrap());
            if n % 2 == 1 {
                let mut acc = MerkleAccumulator::new();
                for l in &dup {
                    acc.push(*l).unwrap();
                }
                if n > 1 {
                    assert_eq!(acc.root(), Some(MerkleNode::from_byte_array(root)));
                }
                assert_eq!(merkle_root(&dup), Err(MerkleRootError::Mutated), "n = {n}");
            } else {
                assert!(merkle_root(&dup).is_ok(), "n = {n}");
            }
        }
        // [a, b, c, d, c, d] has the root of [a, b, c, d, ...] padded at the second level.
        let leaves: Vec<[u8; 32]> = [0, 1, 2, 3, 4, 5, 4, 5].into_iter().map(leaf).collect();
        assert_eq!(merkle_root(&leaves), Err(MerkleRootError::Mutated));
        assert_eq!(
            merkle_root(&leaves[..6]),
            Ok(MerkleNode::from_byte_array(tree(6, 0).0))
        );
        assert_eq!(
            merkle_root(core::iter::empty::<[u8; 32]>()),
            Err(MerkleRootError::Empty)
        );
    }

    #[test]
    fn state_is_small() {
        std::println!(
            "size_of::<BranchFolder>() = {}",
            core::mem::size_of::<BranchFolder>()
        );
        assert!(core::mem::size_of::<BranchFolder>() <= 48);
    }
}
