//! Decoding a response's raw JSON result (`espv_event.data`/`data_len` of an
//! `ESPV_EVENT_RESPONSE`) into bytes and structs. Nothing here verifies: pass what comes out
//! to the `espv_verify_*` functions. Hashes come out in internal byte order.
//!
//! A decoder that fills a caller array of `cap` elements writes at most `cap`, sets the count
//! to the full number in the result, and returns `ESPV_ERR_BUFFER_TOO_SMALL` when that is
//! larger than `cap`. Every decoder returns `ESPV_ERR_BAD_RESULT` for a result of another
//! shape, `ESPV_ERR_NULL` for a NULL pointer it needs, and `ESPV_ERR_MISALIGNED` (before
//! reading the result) for a typed out pointer not aligned for its type.

use core::ffi::c_int;

use electrum_spv_core::header::HEADER_SIZE;
use electrum_spv_core::hex;
use electrum_spv_core::session::response::{self, BadResult, Branch};

use crate::ptr::{Out, OutSlice, bytes, bytes_mut, put_array};
use crate::script::EspvHistoryItem;
use crate::status::{
    ESPV_ERR_BAD_RESULT, ESPV_ERR_BUFFER_TOO_SMALL, ESPV_ERR_NULL, ESPV_NONE, ESPV_OK,
};

/// The result bytes, or `ESPV_ERR_NULL`.
///
/// # Safety
/// `result` points at `len` readable bytes (NULL only with `len` 0).
unsafe fn input<'a>(result: *const u8, len: usize) -> Result<&'a [u8], c_int> {
    // SAFETY: forwarded contract.
    unsafe { bytes(result, len) }.ok_or(ESPV_ERR_NULL)
}

/// Runs a decoder body, turning `Err(code)` into the returned status.
fn status(f: impl FnOnce() -> Result<c_int, c_int>) -> c_int {
    f().unwrap_or_else(|code| code)
}

fn bad(_: BadResult) -> c_int {
    ESPV_ERR_BAD_RESULT
}

/// Writes `N` bytes to a required out array.
///
/// # Safety
/// `p` is NULL or points at `N` writable bytes.
unsafe fn must_put_array<const N: usize>(p: *mut u8, value: &[u8; N]) -> Result<(), c_int> {
    // SAFETY: forwarded contract.
    match unsafe { put_array(p, value) } {
        true => Ok(()),
        false => Err(ESPV_ERR_NULL),
    }
}

/// `ESPV_OK` if all `total` items fitted in `cap`, `ESPV_ERR_BUFFER_TOO_SMALL` otherwise.
fn fitted(total: usize, cap: usize) -> Result<c_int, c_int> {
    Ok(match total > cap {
        true => ESPV_ERR_BUFFER_TOO_SMALL,
        false => ESPV_OK,
    })
}

/// Copies a branch into `out` (`cap` hashes of 32 bytes) in one pass over its JSON, every
/// hash checked (also those past `cap`, so that a too-small buffer is the only error left),
/// and sets `*n` to its length.
///
/// # Safety
/// `out` points at `32 * cap` writable bytes (NULL only with `cap` 0); `n` was checked and is
/// writable.
unsafe fn write_branch(
    branch: &Branch<'_>,
    out: *mut u8,
    cap: usize,
    n: Out<usize>,
) -> Result<c_int, c_int> {
    // SAFETY: the caller promises `32 * cap` writable bytes at `out`.
    let dst = unsafe { bytes_mut(out, cap.saturating_mul(32)) }.ok_or(ESPV_ERR_NULL)?;
    let mut slots = dst.as_chunks_mut::<32>().0.iter_mut();
    let mut total = 0usize;
    for node in branch.iter() {
        let node = node.map_err(bad)?;
        if let Some(slot) = slots.next() {
            *slot = node.to_byte_array();
        }
        total += 1;
    }
    // SAFETY: forwarded contract.
    unsafe { n.put(total) };
    fitted(total, cap)
}

/// `blockchain.block.header` without `cp_height` -> the 80-byte header (`out`).
///
/// # Safety
/// `result` points at `len` readable bytes; `out` at 80 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_decode_block_header(
    result: *const u8,
    len: usize,
    out: *mut u8,
) -> c_int {
    status(|| {
        // SAFETY: forwarded contract.
        let header = response::block_header(unsafe { input(result, len) }?).map_err(bad)?;
        // SAFETY: the caller promises 80 writable bytes at `out`.
        unsafe { must_put_array(out, &header) }?;
        Ok(ESPV_OK)
    })
}

/// `blockchain.block.header` with `cp_height` -> the header (`header`, 80 bytes), the proof's
/// branch (`branch`: room for `cap` hashes of 32 bytes; `*n` gets the branch length) and the
/// server's root (`root`, 32 bytes: compare it with a root you trust, then verify with
/// `espv_verify_header_proof`).
///
/// # Safety
/// `result` points at `len` readable bytes; `header` at 80 and `root` at 32 writable bytes;
/// `branch` at `32 * cap` writable bytes (NULL only with `cap` 0); `n` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_decode_block_header_proof(
    result: *const u8,
    len: usize,
    header: *mut u8,
    branch: *mut u8,
    cap: usize,
    n: *mut usize,
    root: *mut u8,
) -> c_int {
    status(|| {
        let n = Out::required(n)?;
        // SAFETY: forwarded contract.
        let proof = response::block_header_proof(unsafe { input(result, len) }?).map_err(bad)?;
        let got = proof.header.ok_or(ESPV_ERR_BAD_RESULT)?;
        // SAFETY: the caller promises 80 writable bytes at `header`, 32 at `root`.
        unsafe { must_put_array(header, &got) }?;
        // SAFETY: as above.
        unsafe { must_put_array(root, proof.root.as_byte_array()) }?;
        // SAFETY: forwarded contract for `branch`, `cap` and `n`.
        unsafe { write_branch(&proof.branch, branch, cap, n) }
    })
}

/// `blockchain.headers.subscribe` (the reply) -> the server's tip height (`*height`) and
/// header (`header`, 80 bytes). Not verified.
///
/// # Safety
/// `result` points at `len` readable bytes; `height` is writable; `header` points at 80
/// writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_decode_headers_subscribe(
    result: *const u8,
    len: usize,
    height: *mut u32,
    header: *mut u8,
) -> c_int {
    status(|| {
        let height = Out::required(height)?;
        // SAFETY: forwarded contract.
        let (h, raw) = response::headers_subscribe(unsafe { input(result, len) }?).map_err(bad)?;
        // SAFETY: the caller promises 80 writable bytes at `header`.
        unsafe { must_put_array(header, &raw) }?;
        // SAFETY: the caller promises a writable `height`.
        unsafe { height.put(h) };
        Ok(ESPV_OK)
    })
}

/// `blockchain.block.headers` (either the `hex` or the `headers` form) -> the headers, 80
/// bytes each, back to back in `out` (room for `cap` headers); `*count` gets how many the
/// result has. Verify them with `espv_verify_headers`.
///
/// # Safety
/// `result` points at `len` readable bytes; `out` at `80 * cap` writable bytes (NULL only
/// with `cap` 0); `count` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_decode_block_headers(
    result: *const u8,
    len: usize,
    out: *mut u8,
    cap: usize,
    count: *mut usize,
) -> c_int {
    status(|| {
        let count = Out::required(count)?;
        // SAFETY: forwarded contract.
        let headers = response::block_headers(unsafe { input(result, len) }?).map_err(bad)?;
        let total = headers.count as usize;
        // SAFETY: the caller promises `80 * cap` writable bytes at `out`.
        let dst =
            unsafe { bytes_mut(out, cap.saturating_mul(HEADER_SIZE)) }.ok_or(ESPV_ERR_NULL)?;
        let mut slots = dst.chunks_exact_mut(HEADER_SIZE);
        for header in headers.headers() {
            let header = header.map_err(bad)?;
            if let Some(slot) = slots.next() {
                slot.copy_from_slice(&header);
            }
        }
        // SAFETY: the caller promises a writable `count`.
        unsafe { count.put(total) };
        fitted(total, cap)
    })
}

/// A script history (`get_history`; a list, or `{"history": [...]}` at 1.7) -> its rows in
/// `items` (room for `cap`); `*count` gets how many the result has. Check them with
/// `espv_status_hash`.
///
/// # Safety
/// `result` points at `len` readable bytes; `items` at `cap` writable rows (NULL only with
/// `cap` 0); `count` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_decode_history(
    result: *const u8,
    len: usize,
    items: *mut EspvHistoryItem,
    cap: usize,
    count: *mut usize,
) -> c_int {
    status(|| {
        let items = OutSlice::new(items, cap)?;
        let count = Out::required(count)?;
        // SAFETY: forwarded contract.
        let rows = response::history(unsafe { input(result, len) }?).map_err(bad)?;
        let mut total = 0usize;
        for row in rows {
            let row = row.map_err(bad)?;
            let item = EspvHistoryItem {
                txid: row.txid.to_byte_array(),
                height: row.height.to_i64(),
                fee: row.fee.unwrap_or(0),
                has_fee: row.fee.is_some(),
            };
            // SAFETY: the caller promises `cap` writable rows; `put` writes only below `cap`.
            unsafe { items.put(total, item) };
            total += 1;
        }
        // SAFETY: the caller promises a writable `count`.
        unsafe { count.put(total) };
        fitted(total, cap)
    })
}

/// A `...subscribe` reply (a script's status) -> the status in `out` (32 bytes) and `ESPV_OK`,
/// or `ESPV_NONE` for `null` (no history).
///
/// # Safety
/// `result` points at `len` readable bytes; `out` at 32 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_decode_status(result: *const u8, len: usize, out: *mut u8) -> c_int {
    status(|| {
        // SAFETY: forwarded contract.
        match response::subscribe_status(unsafe { input(result, len) }?).map_err(bad)? {
            Some(s) => {
                // SAFETY: the caller promises 32 writable bytes at `out`.
                unsafe { must_put_array(out, &s.to_byte_array()) }?;
                Ok(ESPV_OK)
            }
            None => Ok(ESPV_NONE),
        }
    })
}

/// `blockchain.transaction.get_merkle` -> the block height the server used (`*block_height`),
/// the transaction's position (`*pos`) and its branch (`branch`: room for `cap` hashes of 32
/// bytes, `*n` its length). Verify with `espv_verify_merkle`.
///
/// # Safety
/// `result` points at `len` readable bytes; `block_height`, `pos` and `n` are writable;
/// `branch` points at `32 * cap` writable bytes (NULL only with `cap` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_decode_merkle(
    result: *const u8,
    len: usize,
    block_height: *mut u32,
    pos: *mut u32,
    branch: *mut u8,
    cap: usize,
    n: *mut usize,
) -> c_int {
    status(|| {
        let (block_height, pos) = (Out::required(block_height)?, Out::required(pos)?);
        let n = Out::required(n)?;
        // SAFETY: forwarded contract.
        let proof = response::merkle_proof(unsafe { input(result, len) }?).map_err(bad)?;
        // SAFETY: the caller promises writable `block_height` and `pos`.
        unsafe { block_height.put(proof.block_height) };
        // SAFETY: as above.
        unsafe { pos.put(proof.pos) };
        // SAFETY: forwarded contract for `branch`, `cap` and `n`.
        unsafe { write_branch(&proof.branch, branch, cap, n) }
    })
}

/// `blockchain.transaction.get` (raw form) -> the transaction's bytes in `out` (room for
/// `cap`); `*written` gets its length (also when it is larger than `cap`). Check it with
/// `espv_txid`.
///
/// # Safety
/// `result` points at `len` readable bytes; `out` at `cap` writable bytes (NULL only with
/// `cap` 0); `written` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_decode_transaction(
    result: *const u8,
    len: usize,
    out: *mut u8,
    cap: usize,
    written: *mut usize,
) -> c_int {
    status(|| {
        let written = Out::required(written)?;
        // SAFETY: forwarded contract.
        let digits = response::transaction_hex(unsafe { input(result, len) }?).map_err(bad)?;
        let size = digits.len() / 2;
        // SAFETY: the caller promises a writable `written`.
        unsafe { written.put(size) };
        if size > cap {
            return Ok(ESPV_ERR_BUFFER_TOO_SMALL);
        }
        // SAFETY: the caller promises `cap >= size` writable bytes at `out`.
        let dst = unsafe { bytes_mut(out, size) }.ok_or(ESPV_ERR_NULL)?;
        hex::decode_to_slice(digits, dst).map_err(|_| ESPV_ERR_BAD_RESULT)?;
        Ok(ESPV_OK)
    })
}

/// A txid result (`blockchain.transaction.broadcast`, `id_from_pos`) -> the txid in `out`
/// (32 bytes, internal byte order). A broadcast answered with anything else (some servers
/// send a warning text) is `ESPV_ERR_BAD_RESULT`.
///
/// # Safety
/// `result` points at `len` readable bytes; `out` at 32 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_decode_txid(result: *const u8, len: usize, out: *mut u8) -> c_int {
    status(|| {
        // SAFETY: forwarded contract.
        let txid = response::broadcast_txid(unsafe { input(result, len) }?).map_err(bad)?;
        // SAFETY: the caller promises 32 writable bytes at `out`.
        unsafe { must_put_array(out, txid.as_byte_array()) }?;
        Ok(ESPV_OK)
    })
}

/// `blockchain.estimatefee` / `relayfee` -> the rate in BTC per kvB in `*btc_per_kvb` and
/// `ESPV_OK`, or `ESPV_NONE` when the server has no estimate (`-1`).
///
/// # Safety
/// `result` points at `len` readable bytes; `btc_per_kvb` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_decode_fee_rate(
    result: *const u8,
    len: usize,
    btc_per_kvb: *mut f64,
) -> c_int {
    status(|| {
        let btc_per_kvb = Out::required(btc_per_kvb)?;
        // SAFETY: forwarded contract.
        match response::fee_rate(unsafe { input(result, len) }?).map_err(bad)? {
            Some(rate) => {
                // SAFETY: the caller promises a writable `btc_per_kvb`.
                unsafe { btc_per_kvb.put(rate) };
                Ok(ESPV_OK)
            }
            None => Ok(ESPV_NONE),
        }
    })
}
