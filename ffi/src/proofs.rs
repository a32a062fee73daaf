//! Merkle proofs: a transaction's branch into a block, a header's `cp_height` branch into a
//! checkpoint root. Branches are `n` hashes of 32 bytes, back to back, deepest first, each in
//! internal byte order (as `espv_decode_merkle` and `espv_decode_block_header_proof` write
//! them).

use core::ffi::c_int;

use electrum_spv_core::accumulator::{HeaderProofError, HeaderProofFolder, MerkleAccumulator};
use electrum_spv_core::merkle::{BranchFolder, MAX_MERKLE_DEPTH, MerkleError};
use electrum_spv_core::{BlockHash, MerkleNode, Txid};

use crate::ptr::{array, bytes, put_array};
use crate::status::{
    ESPV_ERR_INVALID_ARGUMENT, ESPV_ERR_NULL, ESPV_NONE, ESPV_OK, merkle_error, proof_error,
};

/// The `n` hashes of a branch, or the status code saying why they cannot be read.
///
/// # Safety
/// `branch` points at `32 * n` readable bytes (NULL only with `n` 0).
unsafe fn branch<'a>(branch: *const u8, n: usize) -> Result<&'a [u8], c_int> {
    let len = n.checked_mul(32).ok_or(ESPV_ERR_INVALID_ARGUMENT)?;
    // SAFETY: forwarded contract.
    unsafe { bytes(branch, len) }.ok_or(ESPV_ERR_NULL)
}

/// The hash at the start of a 32-byte chunk.
fn node(chunk: &[u8]) -> MerkleNode {
    let mut b = [0u8; 32];
    b.copy_from_slice(chunk);
    MerkleNode::from_byte_array(b)
}

/// Verifies that the transaction `txid` is at position `pos` of the block whose header's
/// merkle root is `root` (`espv_header_merkle_root` of a header you verified), hardened: at
/// most 30 levels, the position fully consumed, no inner node that is a 64-byte transaction
/// (CVE-2017-12842), no duplicated right sibling (CVE-2012-2459).
///
/// Returns `ESPV_OK`, an `ESPV_ERR_MERKLE_*` code, or `ESPV_ERR_NULL`.
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
    if n > MAX_MERKLE_DEPTH {
        return merkle_error(MerkleError::TooDeep);
    }
    // SAFETY: forwarded contract.
    let siblings = match unsafe { branch(branch_in, n) } {
        Ok(b) => b,
        Err(code) => return code,
    };
    let mut folder = BranchFolder::new(Txid::from_byte_array(txid), pos);
    for chunk in siblings.chunks_exact(32) {
        if let Err(e) = folder.push(&node(chunk)) {
            return merkle_error(e);
        }
    }
    match folder.finish(&MerkleNode::from_byte_array(root)) {
        Ok(_) => ESPV_OK,
        Err(e) => merkle_error(e),
    }
}

/// Verifies a `cp_height` proof: the header hashing to `header_hash` (`espv_header_hash`) is
/// at `height` of the chain whose block hashes `0..=cp_height` have merkle root `root`.
/// `root` must be one you trust for this very `cp_height` (a root shipped with the firmware,
/// or computed over headers you verified): a root taken from the server proves nothing.
///
/// Returns `ESPV_OK`, an `ESPV_ERR_PROOF_*` code, or `ESPV_ERR_NULL`.
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
    let mut folder =
        match HeaderProofFolder::new(&BlockHash::from_byte_array(hash), height, cp_height) {
            Ok(f) => f,
            Err(e) => return proof_error(e),
        };
    if n != folder.expected_len() {
        return proof_error(HeaderProofError::BranchLength {
            expected: folder.expected_len(),
            got: n,
        });
    }
    // SAFETY: forwarded contract.
    let siblings = match unsafe { branch(branch_in, n) } {
        Ok(b) => b,
        Err(code) => return code,
    };
    for chunk in siblings.chunks_exact(32) {
        if let Err(e) = folder.push(&node(chunk)) {
            return proof_error(e);
        }
    }
    match folder.finish(&MerkleNode::from_byte_array(root)) {
        Ok(()) => ESPV_OK,
        Err(e) => proof_error(e),
    }
}

/// The Bitcoin merkle root of `n` leaves (`leaves`: `32 * n` bytes, internal byte order) in
/// O(log n) memory (about 1 KiB of stack): over the block hashes of heights `0..=cp_height`
/// of headers you verified, it is the root a `cp_height` proof must reach; over a block's
/// txids, its header's merkle root.
///
/// Returns `ESPV_OK` with the root in `out`, `ESPV_NONE` for `n` 0 (no root; `out`
/// untouched), `ESPV_ERR_INVALID_ARGUMENT` for more than 2^32 - 1 leaves, or `ESPV_ERR_NULL`.
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
    let all = match unsafe { branch(leaves, n) } {
        Ok(b) => b,
        Err(code) => return code,
    };
    let mut acc = MerkleAccumulator::new();
    for chunk in all.chunks_exact(32) {
        let mut leaf = [0u8; 32];
        leaf.copy_from_slice(chunk);
        if acc.push(leaf).is_err() {
            return ESPV_ERR_INVALID_ARGUMENT;
        }
    }
    match acc.root() {
        Some(root) => {
            // SAFETY: non-NULL; the caller promises 32 writable bytes at `out`.
            unsafe { put_array(out, root.as_byte_array()) };
            ESPV_OK
        }
        None => ESPV_NONE,
    }
}
