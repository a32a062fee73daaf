//! Scripts and their histories: script hash, address status (whole or streamed), txid of a
//! raw transaction.

use core::ffi::c_int;

use electrum_spv_core::script::{StatusHasher, TxHeight, script_hash};
use electrum_spv_core::{Txid, tx};

use crate::ptr::{array, bytes, put_array, slice, try_status};
use crate::state;
use crate::status::{
    ESPV_ERR_BAD_TRANSACTION, ESPV_ERR_INVALID_ARGUMENT, ESPV_ERR_NULL, ESPV_NONE, ESPV_OK,
};

/// One row of a script's history.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EspvHistoryItem {
    /// The transaction's txid, internal byte order.
    pub txid: [u8; 32],
    /// Block height; 0: in the mempool; -1: in the mempool with an unconfirmed parent.
    pub height: i64,
    /// Fee in satoshis (mempool rows), if `has_fee`.
    pub fee: u64,
    /// Whether `fee` is set.
    pub has_fee: bool,
}

/// The Electrum script hash of a scriptPubKey (`script`, `len` bytes): its single SHA-256, in
/// the byte order it is computed in (the protocol shows it reversed, like a txid:
/// `espv_hash_to_hex` gives that form).
///
/// Returns `ESPV_OK` or `ESPV_ERR_NULL`.
///
/// # Safety
/// `script` points at `len` readable bytes (NULL only with `len` 0); `out` at 32 writable
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_script_hash(script: *const u8, len: usize, out: *mut u8) -> c_int {
    // SAFETY: the caller promises `len` readable bytes at `script`.
    let Some(script) = (unsafe { bytes(script, len) }) else {
        return ESPV_ERR_NULL;
    };
    let hash = script_hash(script).to_byte_array();
    // SAFETY: the caller promises 32 writable bytes at `out`.
    match unsafe { put_array(out, &hash) } {
        true => ESPV_OK,
        false => ESPV_ERR_NULL,
    }
}

/// The protocol height of a C row, or `ESPV_ERR_INVALID_ARGUMENT`.
fn height(h: i64) -> Result<TxHeight, c_int> {
    TxHeight::from_i64(h).map_err(|_| ESPV_ERR_INVALID_ARGUMENT)
}

/// The status of a history (`items`, `n` rows in the server's order): SHA-256 of
/// `"txid:height:"` for each row. Compare it with the status from `espv_decode_status` or a
/// script notification: equal means the server's history is the one its status commits to.
///
/// Returns `ESPV_OK` with the status in `out`; `ESPV_NONE` for an empty history (status
/// `null`; `out` untouched); `ESPV_ERR_INVALID_ARGUMENT` for a height below -1 or above
/// 2^32 - 1; `ESPV_ERR_NULL`.
///
/// # Safety
/// `items` points at `n` readable rows (NULL only with `n` 0); `out` at 32 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_status_hash(
    items: *const EspvHistoryItem,
    n: usize,
    out: *mut u8,
) -> c_int {
    if out.is_null() {
        return ESPV_ERR_NULL;
    }
    // SAFETY: the caller promises `n` readable rows at `items`.
    let rows = try_status!(unsafe { slice(items, n) });
    let mut hasher = StatusHasher::new();
    for row in rows {
        match height(row.height) {
            Ok(h) => hasher.push(&Txid::from_byte_array(row.txid), h),
            Err(code) => return code,
        }
    }
    match hasher.finish() {
        Some(status) => {
            // SAFETY: non-NULL; the caller promises 32 writable bytes.
            unsafe { put_array(out, &status.to_byte_array()) };
            ESPV_OK
        }
        None => ESPV_NONE,
    }
}

/// Words of an `espv_status_hasher`.
pub const ESPV_STATUS_HASHER_WORDS: usize = 24;

/// A status computation in caller memory (192 bytes), for history rows that arrive one at a
/// time (streamed history). Start it with `espv_status_hasher_init`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EspvStatusHasher {
    /// Opaque state.
    pub opaque: [u64; ESPV_STATUS_HASHER_WORDS],
}

/// Marks an initialized status hasher ("espvstat").
const HASHER_MAGIC: u64 = 0x6573_7076_7374_6174;

/// Starts a status computation for an empty history.
///
/// Returns `ESPV_OK`, `ESPV_ERR_NULL` or `ESPV_ERR_MISALIGNED`.
///
/// # Safety
/// `h` is NULL or points at a writable `espv_status_hasher`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_status_hasher_init(h: *mut EspvStatusHasher) -> c_int {
    // SAFETY: forwarded contract.
    match unsafe { state::init(h, HASHER_MAGIC, StatusHasher::new()) } {
        Ok(()) => ESPV_OK,
        Err(code) => code,
    }
}

/// Adds the next history row (txid in internal byte order, protocol height), in the server's
/// order.
///
/// Returns `ESPV_OK`, `ESPV_ERR_INVALID_ARGUMENT` (height below -1 or too large),
/// `ESPV_ERR_NULL` or `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `h` is NULL or points at an `espv_status_hasher`; `txid` points at 32 readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_status_hasher_push(
    h: *mut EspvStatusHasher,
    txid: *const u8,
    height_in: i64,
) -> c_int {
    // SAFETY: forwarded contract.
    let hasher = match unsafe { state::get::<_, StatusHasher>(h, HASHER_MAGIC) } {
        Ok(x) => x,
        Err(code) => return code,
    };
    // SAFETY: the caller promises 32 readable bytes at `txid`.
    let Some(txid) = (unsafe { array::<32>(txid) }) else {
        return ESPV_ERR_NULL;
    };
    match height(height_in) {
        Ok(h) => {
            hasher.push(&Txid::from_byte_array(txid), h);
            ESPV_OK
        }
        Err(code) => code,
    }
}

/// Finishes the computation: `ESPV_OK` with the status in `out`, or `ESPV_NONE` if no row
/// was added (status `null`). The hasher is then uninitialized (init it again to reuse it).
///
/// # Safety
/// `h` is NULL or points at an `espv_status_hasher`; `out` at 32 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_status_hasher_finish(
    h: *mut EspvStatusHasher,
    out: *mut u8,
) -> c_int {
    if out.is_null() {
        return ESPV_ERR_NULL;
    }
    // SAFETY: forwarded contract.
    let hasher = match unsafe { state::get::<_, StatusHasher>(h, HASHER_MAGIC) } {
        Ok(x) => x.clone(),
        Err(code) => return code,
    };
    // SAFETY: `h` was just read as an initialized hasher, so it is a writable blob.
    unsafe { state::clear(h) };
    match hasher.finish() {
        Some(status) => {
            // SAFETY: non-NULL; the caller promises 32 writable bytes.
            unsafe { put_array(out, &status.to_byte_array()) };
            ESPV_OK
        }
        None => ESPV_NONE,
    }
}

/// The txid (internal byte order) of a raw transaction (`raw`, exactly one serialized
/// transaction, with or without witness data; the witness is not hashed).
///
/// Returns `ESPV_OK`, `ESPV_ERR_BAD_TRANSACTION` or `ESPV_ERR_NULL`.
///
/// # Safety
/// `raw` points at `len` readable bytes (NULL only with `len` 0); `out` at 32 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_txid(raw: *const u8, len: usize, out: *mut u8) -> c_int {
    // SAFETY: the caller promises `len` readable bytes at `raw`.
    let Some(raw) = (unsafe { bytes(raw, len) }) else {
        return ESPV_ERR_NULL;
    };
    if out.is_null() {
        return ESPV_ERR_NULL;
    }
    match tx::txid(raw) {
        Ok(txid) => {
            // SAFETY: non-NULL; the caller promises 32 writable bytes.
            unsafe { put_array(out, txid.as_byte_array()) };
            ESPV_OK
        }
        Err(_) => ESPV_ERR_BAD_TRANSACTION,
    }
}
