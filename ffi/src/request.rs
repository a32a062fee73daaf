//! Request helpers: what a wallet device asks a server. `server.version` and
//! `server.features` are sent by the session itself.
//!
//! Every helper takes the caller's clock (`now_ms`, for the request's deadline) and a `tag`
//! that comes back in the events answering it (any value but `0xFFFFFFFF`, which the session
//! keeps for its own requests), writes the request's id to `*id` (if not NULL), and returns
//! `ESPV_OK` or an error (`ESPV_ERR_NOT_READY`, `ESPV_ERR_CLOSED`, `ESPV_ERR_NOT_AVAILABLE`,
//! `ESPV_ERR_INVALID_ARGUMENT`, `ESPV_ERR_TOO_MANY_IN_FLIGHT`, `ESPV_ERR_BUSY`,
//! `ESPV_ERR_OUTPUT_FULL`, `ESPV_ERR_NULL`, `ESPV_ERR_NOT_INITIALIZED`, `ESPV_ERR_MISALIGNED`
//! for a session or an `id` not aligned), in which case nothing was queued. Then take the
//! output and send it.
//!
//! Txids are 32 bytes in internal byte order (the double SHA-256 of the transaction as
//! computed, not the reversed hex shown by explorers).

use core::ffi::c_int;

use electrum_spv_core::Txid;
use electrum_spv_core::session::Request;
use electrum_spv_core::time::Instant;

use crate::ptr::{Out, array, bytes, try_status};
use crate::session::{EspvSession, session_or_return};
use crate::status::{ESPV_ERR_NULL, ESPV_OK, request_error};

/// Queues `request` (streamed or buffered) on the session at `s`.
///
/// # Safety
/// `s` is an initialized session; `id` is NULL or writable.
unsafe fn send(
    s: *mut EspvSession,
    now_ms: u64,
    request: &Request<'_>,
    streamed: bool,
    tag: u32,
    id: *mut u64,
) -> c_int {
    let s = session_or_return!(s);
    // Checked before the request is queued: a misaligned `id` leaves nothing half done.
    let id = try_status!(Out::optional(id));
    let now = Instant::from_millis(now_ms);
    let sent = match streamed {
        true => s.core.request_streamed(now, request, tag),
        false => s.core.request(now, request, tag),
    };
    match sent {
        Ok(n) => {
            // SAFETY: the caller promises `id` is NULL or writable.
            unsafe { id.put(n) };
            ESPV_OK
        }
        Err(e) => request_error(e),
    }
}

/// Queues the request `make` builds from the `len` bytes at `data` (a script, a raw
/// transaction).
///
/// # Safety
/// `s` is an initialized session; `data` points at `len` readable bytes (NULL only with `len`
/// 0); `id` is NULL or writable.
#[allow(clippy::too_many_arguments)]
unsafe fn send_bytes<'a>(
    s: *mut EspvSession,
    now_ms: u64,
    data: *const u8,
    len: usize,
    make: fn(&'a [u8]) -> Request<'a>,
    streamed: bool,
    tag: u32,
    id: *mut u64,
) -> c_int {
    // SAFETY: the caller promises `len` readable bytes at `data`.
    let Some(data) = (unsafe { bytes(data, len) }) else {
        return ESPV_ERR_NULL;
    };
    // SAFETY: forwarded contract.
    unsafe { send(s, now_ms, &make(data), streamed, tag, id) }
}

/// Queues the request `make` builds from the txid at `txid` (32 bytes, internal byte order).
///
/// # Safety
/// `s` is an initialized session; `txid` points at 32 readable bytes; `id` is NULL or
/// writable.
unsafe fn send_txid(
    s: *mut EspvSession,
    now_ms: u64,
    txid: *const u8,
    make: impl FnOnce(Txid) -> Request<'static>,
    tag: u32,
    id: *mut u64,
) -> c_int {
    // SAFETY: the caller promises 32 readable bytes at `txid`.
    let Some(txid) = (unsafe { array::<32>(txid) }) else {
        return ESPV_ERR_NULL;
    };
    let request = make(Txid::from_byte_array(txid));
    // SAFETY: forwarded contract.
    unsafe { send(s, now_ms, &request, false, tag, id) }
}

/// `blockchain.headers.subscribe`: the server's tip now (decode the result with
/// `espv_decode_headers_subscribe`), then `ESPV_EVENT_HEADER_NOTIFICATION` for each new tip.
///
/// # Safety
/// `s` is an initialized session; `id` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_request_headers_subscribe(
    s: *mut EspvSession,
    now_ms: u64,
    tag: u32,
    id: *mut u64,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { send(s, now_ms, &Request::HeadersSubscribe, false, tag, id) }
}

/// `blockchain.block.header(height, cp_height)`: one header; with `cp_height` not 0 also a
/// proof that it is in the chain up to `cp_height` (decode with
/// `espv_decode_block_header_proof`, check with `espv_verify_header_proof` against a root you
/// trust). Decode a reply without proof with `espv_decode_block_header`.
///
/// # Safety
/// `s` is an initialized session; `id` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_request_block_header(
    s: *mut EspvSession,
    now_ms: u64,
    height: u32,
    cp_height: u32,
    tag: u32,
    id: *mut u64,
) -> c_int {
    let request = Request::BlockHeader { height, cp_height };
    // SAFETY: forwarded contract.
    unsafe { send(s, now_ms, &request, false, tag, id) }
}

/// `blockchain.block.headers(start, count, cp_height)`, buffered: at most 2016 headers, but the
/// reply must fit the session's line (`ESPV_LINE_CAPACITY`: up to 99 headers; a longer reply is
/// dropped as `ESPV_ERR_OVERSIZE_LINE`). Decode with `espv_decode_block_headers`. For whole
/// 2016-header chunks use `espv_request_block_headers_streamed`.
///
/// # Safety
/// `s` is an initialized session; `id` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_request_block_headers(
    s: *mut EspvSession,
    now_ms: u64,
    start_height: u32,
    count: u32,
    cp_height: u32,
    tag: u32,
    id: *mut u64,
) -> c_int {
    let request = Request::BlockHeaders {
        start_height,
        count,
        cp_height,
    };
    // SAFETY: forwarded contract.
    unsafe { send(s, now_ms, &request, false, tag, id) }
}

/// `blockchain.block.headers(start, count)`, streamed: each header arrives as its own
/// `ESPV_EVENT_STREAM_HEADER` as the bytes come in, then `ESPV_EVENT_STREAM_END`, so a
/// 2016-header chunk (322 KB of JSON) needs no line buffer of its size. It must be the only
/// request in flight (`ESPV_ERR_BUSY` otherwise), and no other request is accepted until it
/// ends.
///
/// # Safety
/// `s` is an initialized session; `id` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_request_block_headers_streamed(
    s: *mut EspvSession,
    now_ms: u64,
    start_height: u32,
    count: u32,
    tag: u32,
    id: *mut u64,
) -> c_int {
    let request = Request::BlockHeaders {
        start_height,
        count,
        cp_height: 0,
    };
    // SAFETY: forwarded contract.
    unsafe { send(s, now_ms, &request, true, tag, id) }
}

/// The history of a script (`script`: the scriptPubKey bytes; below 1.7 the session sends its
/// script hash), buffered: decode with `espv_decode_history` and check it against the
/// script's status with `espv_status_hash`. A history over about 150 rows does not fit the
/// line: use `espv_request_script_history_streamed`.
///
/// # Safety
/// `s` is an initialized session; `script` points at `len` readable bytes (NULL only with
/// `len` 0); `id` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_request_script_history(
    s: *mut EspvSession,
    now_ms: u64,
    script: *const u8,
    len: usize,
    tag: u32,
    id: *mut u64,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        send_bytes(
            s,
            now_ms,
            script,
            len,
            Request::ScriptGetHistory,
            false,
            tag,
            id,
        )
    }
}

/// The history of a script, streamed: one `ESPV_EVENT_STREAM_HISTORY_ITEM` per row, then
/// `ESPV_EVENT_STREAM_END`; hash the rows with an `espv_status_hasher` as they come. Like
/// every streamed request it must be the only one in flight.
///
/// # Safety
/// As `espv_request_script_history`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_request_script_history_streamed(
    s: *mut EspvSession,
    now_ms: u64,
    script: *const u8,
    len: usize,
    tag: u32,
    id: *mut u64,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        send_bytes(
            s,
            now_ms,
            script,
            len,
            Request::ScriptGetHistory,
            true,
            tag,
            id,
        )
    }
}

/// Subscribes to a script's status: the reply is the status now (decode with
/// `espv_decode_status`), then `ESPV_EVENT_SCRIPT_NOTIFICATION` on each change.
///
/// # Safety
/// As `espv_request_script_history`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_request_script_subscribe(
    s: *mut EspvSession,
    now_ms: u64,
    script: *const u8,
    len: usize,
    tag: u32,
    id: *mut u64,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        send_bytes(
            s,
            now_ms,
            script,
            len,
            Request::ScriptSubscribe,
            false,
            tag,
            id,
        )
    }
}

/// `blockchain.transaction.get_merkle(txid, height)`: the merkle branch of a confirmed
/// transaction (`txid`: 32 bytes, internal byte order). Decode with `espv_decode_merkle`,
/// check with `espv_verify_merkle` against the merkle root of a header you verified.
///
/// # Safety
/// `s` is an initialized session; `txid` points at 32 readable bytes; `id` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_request_merkle(
    s: *mut EspvSession,
    now_ms: u64,
    txid_in: *const u8,
    height: u32,
    tag: u32,
    id: *mut u64,
) -> c_int {
    let make = |txid| Request::TransactionGetMerkle { txid, height };
    // SAFETY: forwarded contract.
    unsafe { send_txid(s, now_ms, txid_in, make, tag, id) }
}

/// `blockchain.transaction.get(txid)`, raw form (`txid`: 32 bytes, internal byte order).
/// Decode with `espv_decode_transaction`, then check `espv_txid` of the bytes equals `txid`.
/// The reply must fit the line: transactions up to about 8 KB.
///
/// # Safety
/// As `espv_request_merkle`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_request_transaction(
    s: *mut EspvSession,
    now_ms: u64,
    txid_in: *const u8,
    tag: u32,
    id: *mut u64,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { send_txid(s, now_ms, txid_in, Request::TransactionGet, tag, id) }
}

/// `blockchain.transaction.broadcast(raw_tx)`: the result is the txid the server saw (decode
/// with `espv_decode_txid` and compare with `espv_txid` of `raw_tx`: some servers answer with
/// a warning text instead). The hex request must fit the outgoing queue
/// (`ESPV_OUTPUT_CAPACITY`): transactions up to about 2 KB.
///
/// # Safety
/// `s` is an initialized session; `raw_tx` points at `len` readable bytes; `id` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_request_broadcast(
    s: *mut EspvSession,
    now_ms: u64,
    raw_tx: *const u8,
    len: usize,
    tag: u32,
    id: *mut u64,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { send_bytes(s, now_ms, raw_tx, len, Request::Broadcast, false, tag, id) }
}

/// `blockchain.estimatefee(blocks)`: a fee rate estimate for confirmation within `blocks`
/// blocks (decode with `espv_decode_fee_rate`). Unverifiable: bound it on the device.
///
/// # Safety
/// `s` is an initialized session; `id` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_request_estimate_fee(
    s: *mut EspvSession,
    now_ms: u64,
    blocks: u32,
    tag: u32,
    id: *mut u64,
) -> c_int {
    let request = Request::EstimateFee { blocks, mode: None };
    // SAFETY: forwarded contract.
    unsafe { send(s, now_ms, &request, false, tag, id) }
}
