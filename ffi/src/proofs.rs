//! Merkle proofs: a transaction's branch into a block, a header's `cp_height` branch into a
//! checkpoint root. Branches are `n` hashes of 32 bytes, back to back, deepest first, each in
//! internal byte order (as `espv_decode_merkle` and `espv_decode_block_header_proof` write
//! them).

use core::ffi::c_int;

use electrum_spv_core::accumulator::verify_header_proof;
use electrum_spv_core::merkle::{merkle_root, verify_tx_branch};
use electrum_spv_core::{BlockHash, MerkleNode, Txid};

use crate::ptr::{array, hashes, put_array, try_status};
use crate::status::{ESPV_ERR_NULL, ESPV_OK, merkle_error, merkle_root_error, proof_error};

/// The nodes of a branch read from C: core's verifiers take them as they are.
fn nodes(branch: &[[u8; 32]]) -> impl ExactSizeIterator<Item = MerkleNode> + '_ {
    branch.iter().copied().map(MerkleNode::from_byte_array)
}

/// Verifies that the transaction `txid` is at position `pos` of the block whose header's
/// merkle root is `root` (`espv_header_merkle_root` of a header you verified), hardened: at
/// most 30 levels, the position fully consumed, no inner node that is a 64-byte transaction
/// (CVE-2017-12842), no duplicated right sibling (CVE-2012-2459). The rules are core's
/// `verify_tx_branch`, the same the session's verified sync applies.
///
/// Returns `ESPV_OK`, an `ESPV_ERR_MERKLE_*` code, `ESPV_ERR_NULL`, or
/// `ESPV_ERR_INVALID_ARGUMENT` for an `n` whose byte size `32 * n` overflows.
///
/// # Safety
/// `txid` and `root` point at 32 readable bytes; `branch_in` at `32 * n` readable bytes (NULL
/// only with `n` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_verify_merkle(
    txid: *const u8,
    pos: u32,
    branch_in: *const u8,
    n: usize,
    root: *const u8,
) -> c_int {
    // SAFETY: the caller promises 32 readable bytes at `txid` and at `root`.
    let (Some(txid), Some(root)) = (unsafe { array::<32>(txid) }, unsafe { array::<32>(root) })
    else {
        return ESPV_ERR_NULL;
    };
    // SAFETY: forwarded contract.
    let branch = try_status!(unsafe { hashes(branch_in, n) });
    let txid = Txid::from_byte_array(txid);
    match verify_tx_branch(
        &txid,
        pos,
        nodes(branch),
        &MerkleNode::from_byte_array(root),
    ) {
        Ok(_) => ESPV_OK,
        Err(e) => merkle_error(e),
    }
}

/// Verifies a `cp_height` proof: the header hashing to `header_hash` (`espv_header_hash`) is
/// at `height` of the chain whose block hashes `0..=cp_height` have merkle root `root`.
/// `root` must be one you trust for this very `cp_height` (a root shipped with the firmware,
/// or computed over headers you verified): a root taken from the server proves nothing. The
/// rules are core's `verify_header_proof`.
///
/// Returns `ESPV_OK`, an `ESPV_ERR_PROOF_*` code, `ESPV_ERR_NULL`, or
/// `ESPV_ERR_INVALID_ARGUMENT` for an `n` whose byte size `32 * n` overflows.
///
/// # Safety
/// `header_hash` and `root` point at 32 readable bytes; `branch_in` at `32 * n` readable
/// bytes (NULL only with `n` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_verify_header_proof(
    header_hash: *const u8,
    height: u32,
    cp_height: u32,
    branch_in: *const u8,
    n: usize,
    root: *const u8,
) -> c_int {
    // SAFETY: the caller promises 32 readable bytes at `header_hash` and at `root`.
    let (Some(hash), Some(root)) = (unsafe { array::<32>(header_hash) }, unsafe {
        array::<32>(root)
    }) else {
        return ESPV_ERR_NULL;
    };
    // SAFETY: forwarded contract.
    let branch = try_status!(unsafe { hashes(branch_in, n) });
    let hash = BlockHash::from_byte_array(hash);
    let root = MerkleNode::from_byte_array(root);
    match verify_header_proof(&hash, height, cp_height, nodes(branch), &root) {
        Ok(()) => ESPV_OK,
        Err(e) => proof_error(e),
    }
}

/// The Bitcoin merkle root of `n` leaves (`leaves`: `32 * n` bytes, internal byte order) in
/// O(log n) memory (about 1 KiB of stack): over the block hashes of heights `0..=cp_height`
/// of headers you verified, it is the root a `cp_height` proof must reach; over a block's
/// txids, its header's merkle root.
///
/// A list with two equal sibling subtrees, such as `[a, b, c, c]`, has the same root as a
/// shorter list (`[a, b, c]`): it is refused with `ESPV_ERR_MERKLE_MUTATED`, as Bitcoin Core
/// refuses such a block (CVE-2012-2459), and `out` is untouched.
///
/// Returns `ESPV_OK` with the root in `out`, `ESPV_NONE` for `n` 0 (no root; `out`
/// untouched), `ESPV_ERR_MERKLE_MUTATED`, `ESPV_ERR_INVALID_ARGUMENT` for more than 2^32 - 1
/// leaves, or `ESPV_ERR_NULL`.
///
/// # Safety
/// `leaves` points at `32 * n` readable bytes (NULL only with `n` 0); `out` at 32 writable
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_merkle_root(leaves: *const u8, n: usize, out: *mut u8) -> c_int {
    if out.is_null() {
        return ESPV_ERR_NULL;
    }
    // SAFETY: forwarded contract.
    let leaves = try_status!(unsafe { hashes(leaves, n) });
    match merkle_root(leaves) {
        Ok(root) => {
            // SAFETY: non-NULL; the caller promises 32 writable bytes at `out`.
            unsafe { put_array(out, root.as_byte_array()) };
            ESPV_OK
        }
        Err(e) => merkle_root_error(e),
    }
}
