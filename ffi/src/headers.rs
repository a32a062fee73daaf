//! Header chain verification: a whole segment in one call, or header by header in an
//! `espv_verifier` (for streamed chunks), plus a header's hash and merkle root.

use core::ffi::c_int;

use electrum_spv_core::chain::{Anchor, ChainTip, HeaderVerifier};
use electrum_spv_core::header::{HEADER_SIZE, Header};
use electrum_spv_core::time::UnixTime;

use crate::network;
use crate::ptr::{Out, array, bytes, put_array, try_status};
use crate::state;
use crate::status::{
    ESPV_ERR_INVALID_ARGUMENT, ESPV_ERR_NULL, ESPV_NONE, ESPV_OK, anchor_error, header_error,
};

/// The last verified header of a chain segment.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EspvTip {
    /// Height of the tip.
    pub height: u32,
    /// Its block hash, internal byte order.
    pub hash: [u8; 32],
    /// Its timestamp (seconds since the Unix epoch).
    pub time: u32,
    /// Its compact difficulty target (`nBits`).
    pub bits: u32,
    /// Cumulative work up to and including the tip, a 256-bit big-endian number: from genesis
    /// if `work_is_absolute`, else counted from the segment's start.
    pub chainwork: [u8; 32],
    /// Whether `chainwork` counts from genesis.
    pub work_is_absolute: bool,
}

impl EspvTip {
    fn new(tip: &ChainTip, work_is_absolute: bool) -> EspvTip {
        EspvTip {
            height: tip.height,
            hash: tip.hash.to_byte_array(),
            time: tip.time,
            bits: tip.bits.0,
            chainwork: tip.chainwork.0.to_be_bytes(),
            work_is_absolute,
        }
    }
}

/// Words of an `espv_verifier`.
pub const ESPV_VERIFIER_WORDS: usize = 56;

/// A header chain verifier in caller memory (448 bytes; declare it anywhere, e.g. on the
/// stack or in a static), for headers that arrive one at a time (streamed chunks). Start it
/// with `espv_verifier_init`. It holds no pointers into itself: it may be copied with
/// `memcpy` (a copy at a fork point verifies a second branch).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EspvVerifier {
    /// Opaque state.
    pub opaque: [u64; ESPV_VERIFIER_WORDS],
}

/// Marks an initialized verifier ("espvverf").
const VERIFIER_MAGIC: u64 = 0x6573_7076_7665_7266;

/// The verifier anchored at `start_height`, or the status code saying why there is none.
fn verifier(network: u32, start_height: u32) -> Result<HeaderVerifier, c_int> {
    let params = network::params(network).ok_or(ESPV_ERR_INVALID_ARGUMENT)?;
    let anchor = Anchor::at_height(params, start_height).map_err(anchor_error)?;
    Ok(HeaderVerifier::new(params, anchor))
}

/// Verifies `count` raw 80-byte headers (`headers`: `80 * count` bytes) of `network`
/// (`ESPV_NETWORK_*`), the first at `start_height`: links, proof of work, retargets, median
/// time past, version floors and compiled-in checkpoints. `start_height` must be 0 (genesis)
/// or a multiple of 2016 covered by a compiled-in checkpoint, which anchors the segment.
/// Uses about 2 KiB of stack, nothing else.
///
/// Returns `ESPV_OK` and the last header in `*tip` (if not NULL); `ESPV_NONE` for `count` 0;
/// or the first broken rule (`ESPV_ERR_PREV_HASH_MISMATCH`, `ESPV_ERR_INSUFFICIENT_POW`, ...)
/// with its height in `*bad_height` (if not NULL); `ESPV_ERR_NO_ANCHOR`,
/// `ESPV_ERR_INVALID_ARGUMENT` (unknown network), `ESPV_ERR_NULL`, or `ESPV_ERR_MISALIGNED`
/// (`tip` or `bad_height` not aligned; nothing verified).
///
/// # Safety
/// `headers` points at `80 * count` readable bytes; `tip` and `bad_height` are NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_verify_headers(
    network: u32,
    start_height: u32,
    headers: *const u8,
    count: usize,
    tip: *mut EspvTip,
    bad_height: *mut u32,
) -> c_int {
    let (tip, bad_height) = (
        try_status!(Out::optional(tip)),
        try_status!(Out::optional(bad_height)),
    );
    let mut v = try_status!(verifier(network, start_height));
    let Some(len) = count.checked_mul(HEADER_SIZE) else {
        return ESPV_ERR_INVALID_ARGUMENT;
    };
    // SAFETY: the caller promises `80 * count` readable bytes at `headers`.
    let Some(all) = (unsafe { bytes(headers, len) }) else {
        return ESPV_ERR_NULL;
    };
    for header in all.chunks_exact(HEADER_SIZE) {
        if let Err(e) = v.push_slice(header) {
            // SAFETY: the caller promises `bad_height` is NULL or writable.
            unsafe { bad_height.put(e.height) };
            return header_error(e.kind);
        }
    }
    let Some(last) = v.tip() else {
        return ESPV_NONE;
    };
    // SAFETY: the caller promises `tip` is NULL or writable.
    unsafe { tip.put(EspvTip::new(last, v.work_is_absolute())) };
    ESPV_OK
}

/// Starts a verifier for `network` whose first header will be at `start_height` (0, or a
/// multiple of 2016 covered by a compiled-in checkpoint).
///
/// Returns `ESPV_OK`, `ESPV_ERR_NO_ANCHOR`, `ESPV_ERR_INVALID_ARGUMENT` (unknown network),
/// `ESPV_ERR_NULL` or `ESPV_ERR_MISALIGNED`.
///
/// # Safety
/// `v` is NULL or points at a writable `espv_verifier`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_verifier_init(
    v: *mut EspvVerifier,
    network: u32,
    start_height: u32,
) -> c_int {
    let value = match verifier(network, start_height) {
        Ok(value) => value,
        Err(code) => {
            // SAFETY: the caller promises `v` is NULL or a writable verifier.
            unsafe { state::clear(v) };
            return code;
        }
    };
    // SAFETY: forwarded contract.
    match unsafe { state::init(v, VERIFIER_MAGIC, value) } {
        Ok(()) => ESPV_OK,
        Err(code) => code,
    }
}

/// Enables the "not more than two hours in the future" rule against the caller's clock
/// (`now_unix_s`, seconds since the Unix epoch). Without it the rule is off.
///
/// Returns `ESPV_OK`, `ESPV_ERR_NULL` or `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `v` is NULL or points at an `espv_verifier`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_verifier_set_clock(v: *mut EspvVerifier, now_unix_s: u32) -> c_int {
    // SAFETY: forwarded contract.
    match unsafe { state::get::<_, HeaderVerifier>(v, VERIFIER_MAGIC) } {
        Ok(v) => {
            v.set_clock(UnixTime::from_secs(now_unix_s));
            ESPV_OK
        }
        Err(code) => code,
    }
}

/// Verifies the next header (80 bytes) and, if it follows every rule, makes it the tip; its
/// block hash goes to `hash_out` (if not NULL). A rejected header changes nothing.
///
/// Returns `ESPV_OK`, the broken rule's `ESPV_ERR_*` code, `ESPV_ERR_NULL` or
/// `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `v` is NULL or points at an `espv_verifier`; `header` points at 80 readable bytes;
/// `hash_out` is NULL or points at 32 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_verifier_push(
    v: *mut EspvVerifier,
    header: *const u8,
    hash_out: *mut u8,
) -> c_int {
    // SAFETY: forwarded contract.
    let v = match unsafe { state::get::<_, HeaderVerifier>(v, VERIFIER_MAGIC) } {
        Ok(v) => v,
        Err(code) => return code,
    };
    // SAFETY: the caller promises 80 readable bytes at `header`.
    let Some(header) = (unsafe { array::<HEADER_SIZE>(header) }) else {
        return ESPV_ERR_NULL;
    };
    match v.push(&header) {
        Ok(hash) => {
            // SAFETY: the caller promises `hash_out` is NULL or 32 writable bytes.
            unsafe { put_array(hash_out, hash.as_byte_array()) };
            ESPV_OK
        }
        Err(e) => header_error(e.kind),
    }
}

/// The last header the verifier accepted: writes it to `*tip` and returns `ESPV_OK`, or
/// returns `ESPV_NONE` before the first header. `*next_height` (if not NULL) gets the height
/// the next header must have.
///
/// # Safety
/// `v` is NULL or points at an `espv_verifier`; `tip` and `next_height` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_verifier_tip(
    v: *mut EspvVerifier,
    tip: *mut EspvTip,
    next_height: *mut u32,
) -> c_int {
    // SAFETY: forwarded contract.
    let v = try_status!(unsafe { state::get::<_, HeaderVerifier>(v, VERIFIER_MAGIC) });
    let (tip, next_height) = (
        try_status!(Out::optional(tip)),
        try_status!(Out::optional(next_height)),
    );
    // SAFETY: the caller promises `next_height` is NULL or writable.
    unsafe { next_height.put(v.next_height()) };
    match v.tip() {
        Some(last) => {
            // SAFETY: the caller promises `tip` is NULL or writable.
            unsafe { tip.put(EspvTip::new(last, v.work_is_absolute())) };
            ESPV_OK
        }
        None => ESPV_NONE,
    }
}

/// The block hash (double SHA-256, internal byte order) of an 80-byte header.
///
/// Returns `ESPV_OK` or `ESPV_ERR_NULL`.
///
/// # Safety
/// `header` points at 80 readable bytes; `out` at 32 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_header_hash(header: *const u8, out: *mut u8) -> c_int {
    // SAFETY: the caller promises 80 readable bytes at `header`.
    let Some(header) = (unsafe { array::<HEADER_SIZE>(header) }) else {
        return ESPV_ERR_NULL;
    };
    let hash = Header::from_bytes(&header).block_hash();
    // SAFETY: the caller promises 32 writable bytes at `out`.
    match unsafe { put_array(out, hash.as_byte_array()) } {
        true => ESPV_OK,
        false => ESPV_ERR_NULL,
    }
}

/// The merkle root field of an 80-byte header (internal byte order): what
/// `espv_verify_merkle` checks a transaction's branch against.
///
/// Returns `ESPV_OK` or `ESPV_ERR_NULL`.
///
/// # Safety
/// `header` points at 80 readable bytes; `out` at 32 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_header_merkle_root(header: *const u8, out: *mut u8) -> c_int {
    // SAFETY: the caller promises 80 readable bytes at `header`.
    let Some(header) = (unsafe { array::<HEADER_SIZE>(header) }) else {
        return ESPV_ERR_NULL;
    };
    let root = Header::from_bytes(&header).merkle_root;
    // SAFETY: the caller promises 32 writable bytes at `out`.
    match unsafe { put_array(out, root.as_byte_array()) } {
        true => ESPV_OK,
        false => ESPV_ERR_NULL,
    }
}
