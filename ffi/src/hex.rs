//! Hashes between internal byte order (what this ABI takes and gives) and the reversed hex
//! the protocol and explorers show (txids, block hashes, script hashes).

use core::ffi::{c_char, c_int};

use electrum_spv_core::hex::{decode_reversed_to_slice, encode_reversed_to_slice};

use crate::ptr::{array, bytes, put_array};
use crate::status::{ESPV_ERR_BAD_HEX, ESPV_ERR_NULL, ESPV_OK};

/// Writes the display hex of a 32-byte hash (internal byte order; the hex is reversed, as
/// txids and block hashes are shown) to `out`: 64 lowercase digits and a NUL, 65 bytes.
///
/// Returns `ESPV_OK` or `ESPV_ERR_NULL`.
///
/// # Safety
/// `hash` points at 32 readable bytes; `out` at 65 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_hash_to_hex(hash: *const u8, out: *mut c_char) -> c_int {
    // SAFETY: the caller promises 32 readable bytes at `hash`.
    let Some(hash) = (unsafe { array::<32>(hash) }) else {
        return ESPV_ERR_NULL;
    };
    let mut text = [0u8; 65];
    if encode_reversed_to_slice(&hash, &mut text[..64]).is_err() {
        return ESPV_ERR_NULL;
    }
    // SAFETY: the caller promises 65 writable bytes at `out`.
    match unsafe { put_array(out.cast::<u8>(), &text) } {
        true => ESPV_OK,
        false => ESPV_ERR_NULL,
    }
}

/// Reads a hash from its display hex (`hex`: exactly 64 digits, either case, no NUL needed)
/// into `out` (32 bytes, internal byte order).
///
/// Returns `ESPV_OK`, `ESPV_ERR_BAD_HEX` (`out` unspecified) or `ESPV_ERR_NULL`.
///
/// # Safety
/// `hex` points at `len` readable bytes (NULL only with `len` 0); `out` at 32 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_hash_from_hex(hex: *const c_char, len: usize, out: *mut u8) -> c_int {
    // SAFETY: the caller promises `len` readable bytes at `hex`.
    let Some(digits) = (unsafe { bytes(hex.cast::<u8>(), len) }) else {
        return ESPV_ERR_NULL;
    };
    let mut hash = [0u8; 32];
    if decode_reversed_to_slice(digits, &mut hash).is_err() {
        return ESPV_ERR_BAD_HEX;
    }
    // SAFETY: the caller promises 32 writable bytes at `out`.
    match unsafe { put_array(out, &hash) } {
        true => ESPV_OK,
        false => ESPV_ERR_NULL,
    }
}
