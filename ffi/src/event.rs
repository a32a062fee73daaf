//! Events: what the session reports, as one plain C struct, and the method ids they carry.

use core::ffi::{c_char, c_int};
use core::ptr;

use electrum_spv_core::rpc::{Method, ProtocolVersion};
use electrum_spv_core::session::{Event, FatalError, Notification, ProtocolError};

use crate::ptr::{Out, try_status};
use crate::session::{EspvSession, EspvVersion, session_or_return};
use crate::status::{ESPV_ERR_RESPONSE_TOO_LARGE, ESPV_NONE, ESPV_OK, fatal_error, protocol_error};

// ----- event kinds -----

/// Version negotiated and the server's genesis checked: requests may be sent. `version` is set.
pub const ESPV_EVENT_READY: u32 = 1;
/// A successful response: `id`, `method`, `tag`, and `data`/`data_len` the raw JSON of its
/// `result` (decode it with `espv_decode_*`).
pub const ESPV_EVENT_RESPONSE: u32 = 2;
/// The server answered a request with an error: `id`, `method`, `tag`, `code` (if
/// `has_code`) and `data`/`data_len` the raw message (JSON string contents, escapes not
/// decoded; the server's untrusted text).
pub const ESPV_EVENT_SERVER_ERROR: u32 = 3;
/// A request got no answer before its deadline (`id`, `method`, `tag`); it is forgotten.
pub const ESPV_EVENT_TIMED_OUT: u32 = 4;
/// A new tip was announced (`blockchain.headers.subscribe`): `height`, `header`. Not verified.
pub const ESPV_EVENT_HEADER_NOTIFICATION: u32 = 5;
/// A script's status changed: `hash` is its script hash (internal byte order), `status` the
/// new status if `has_status` (none: empty history). Not verified: fetch the history.
pub const ESPV_EVENT_SCRIPT_NOTIFICATION: u32 = 6;
/// An outpoint's status changed (1.7): `data`/`data_len` the raw JSON params.
pub const ESPV_EVENT_OUTPOINT_NOTIFICATION: u32 = 7;
/// A header of a streamed `blockchain.block.headers` reply (`id`, `tag`, `height`, `header`).
/// Not verified: push it into an `espv_verifier`.
pub const ESPV_EVENT_STREAM_HEADER: u32 = 8;
/// A row of a streamed history reply (`id`, `tag`, `hash` = txid in internal byte order,
/// `height` = block height, 0 or -1 for the mempool, `fee` if `has_fee`). Not verified.
pub const ESPV_EVENT_STREAM_HISTORY_ITEM: u32 = 9;
/// A streamed reply ended well (`id`, `method`, `tag`, `items` streamed).
pub const ESPV_EVENT_STREAM_END: u32 = 10;
/// Input the session refused (`reason`: an `ESPV_ERR_*` code of the protocol group; `id` for
/// `ESPV_ERR_UNKNOWN_ID`, `ESPV_ERR_RESULT_ERROR_MISMATCH` and `ESPV_ERR_STREAM_FAILED` (that
/// streamed request is over); `code` is the line length for `ESPV_ERR_OVERSIZE_LINE`). The
/// session carries on.
pub const ESPV_EVENT_PROTOCOL_ERROR: u32 = 11;
/// The session cannot go on (`reason`: e.g. `ESPV_ERR_WRONG_GENESIS`; `code` is the server's
/// error code for `ESPV_ERR_VERSION_REFUSED` if `has_code`; `version` what the server chose
/// for `ESPV_ERR_VERSION_OUT_OF_RANGE`). Close the connection; start a new session.
pub const ESPV_EVENT_FAILED: u32 = 12;
/// The reply to a request (`id`, `method`, `tag`) was longer than the session's line buffer:
/// it was discarded, its `id` read from the line's ends, and the request is over (`reason` is
/// `ESPV_ERR_RESPONSE_TOO_LARGE`, `code` the line's length). Ask again streamed
/// (`espv_request_block_headers_streamed`, `espv_request_script_history_streamed`) or with
/// a larger session. A too long line whose `id` cannot be read is reported as
/// `ESPV_EVENT_PROTOCOL_ERROR` with `ESPV_ERR_OVERSIZE_LINE` instead, and its request times
/// out.
pub const ESPV_EVENT_RESPONSE_TOO_LARGE: u32 = 13;

// ----- method ids (`espv_event.method`) -----

/// No method (events that answer no request).
pub const ESPV_METHOD_NONE: u32 = 0;
/// `server.version`.
pub const ESPV_METHOD_SERVER_VERSION: u32 = 1;
/// `server.features`.
pub const ESPV_METHOD_SERVER_FEATURES: u32 = 2;
/// `server.banner`.
pub const ESPV_METHOD_SERVER_BANNER: u32 = 3;
/// `server.donation_address`.
pub const ESPV_METHOD_SERVER_DONATION_ADDRESS: u32 = 4;
/// `server.peers.subscribe`.
pub const ESPV_METHOD_SERVER_PEERS_SUBSCRIBE: u32 = 5;
/// `server.add_peer`.
pub const ESPV_METHOD_SERVER_ADD_PEER: u32 = 6;
/// `server.ping`.
pub const ESPV_METHOD_SERVER_PING: u32 = 7;
/// `blockchain.headers.subscribe`.
pub const ESPV_METHOD_HEADERS_SUBSCRIBE: u32 = 8;
/// `blockchain.block.header`.
pub const ESPV_METHOD_BLOCK_HEADER: u32 = 9;
/// `blockchain.block.headers`.
pub const ESPV_METHOD_BLOCK_HEADERS: u32 = 10;
/// `blockchain.estimatefee`.
pub const ESPV_METHOD_ESTIMATE_FEE: u32 = 11;
/// `blockchain.relayfee`.
pub const ESPV_METHOD_RELAY_FEE: u32 = 12;
/// `blockchain.scripthash.get_balance` (`scriptpubkey` at 1.7).
pub const ESPV_METHOD_SCRIPT_GET_BALANCE: u32 = 13;
/// `blockchain.scripthash.get_history` (`scriptpubkey` at 1.7).
pub const ESPV_METHOD_SCRIPT_GET_HISTORY: u32 = 14;
/// `blockchain.scripthash.get_mempool` (`scriptpubkey` at 1.7).
pub const ESPV_METHOD_SCRIPT_GET_MEMPOOL: u32 = 15;
/// `blockchain.scripthash.listunspent` (`scriptpubkey` at 1.7).
pub const ESPV_METHOD_SCRIPT_LIST_UNSPENT: u32 = 16;
/// `blockchain.scripthash.subscribe` (`scriptpubkey` at 1.7).
pub const ESPV_METHOD_SCRIPT_SUBSCRIBE: u32 = 17;
/// `blockchain.scripthash.unsubscribe` (`scriptpubkey` at 1.7).
pub const ESPV_METHOD_SCRIPT_UNSUBSCRIBE: u32 = 18;
/// `blockchain.outpoint.subscribe`.
pub const ESPV_METHOD_OUTPOINT_SUBSCRIBE: u32 = 19;
/// `blockchain.outpoint.get_status`.
pub const ESPV_METHOD_OUTPOINT_GET_STATUS: u32 = 20;
/// `blockchain.outpoint.unsubscribe`.
pub const ESPV_METHOD_OUTPOINT_UNSUBSCRIBE: u32 = 21;
/// `blockchain.transaction.broadcast`.
pub const ESPV_METHOD_TRANSACTION_BROADCAST: u32 = 22;
/// `blockchain.transaction.broadcast_package`.
pub const ESPV_METHOD_TRANSACTION_BROADCAST_PACKAGE: u32 = 23;
/// `blockchain.transaction.testmempoolaccept`.
pub const ESPV_METHOD_TRANSACTION_TEST_MEMPOOL_ACCEPT: u32 = 24;
/// `blockchain.transaction.get`.
pub const ESPV_METHOD_TRANSACTION_GET: u32 = 25;
/// `blockchain.transaction.get_merkle`.
pub const ESPV_METHOD_TRANSACTION_GET_MERKLE: u32 = 26;
/// `blockchain.transaction.id_from_pos`.
pub const ESPV_METHOD_TRANSACTION_ID_FROM_POS: u32 = 27;
/// `mempool.get_fee_histogram`.
pub const ESPV_METHOD_MEMPOOL_GET_FEE_HISTOGRAM: u32 = 28;
/// `mempool.get_info`.
pub const ESPV_METHOD_MEMPOOL_GET_INFO: u32 = 29;
/// `mempool.recent`.
pub const ESPV_METHOD_MEMPOOL_RECENT: u32 = 30;

/// The `ESPV_METHOD_*` id of a method: its position in the core catalogue, plus one (the
/// catalogue lists the methods in declaration order: checked at compile time below).
pub(crate) const fn method_id(m: Method) -> u32 {
    m as u32 + 1
}

const _: () = {
    let mut i = 0;
    while i < Method::ALL.len() {
        assert!(
            Method::ALL[i] as usize == i,
            "Method::ALL is not in declaration order"
        );
        i += 1;
    }
};

/// Wire names below 1.7, NUL-terminated, in catalogue order.
const METHOD_NAMES: [&core::ffi::CStr; 30] = [
    c"server.version",
    c"server.features",
    c"server.banner",
    c"server.donation_address",
    c"server.peers.subscribe",
    c"server.add_peer",
    c"server.ping",
    c"blockchain.headers.subscribe",
    c"blockchain.block.header",
    c"blockchain.block.headers",
    c"blockchain.estimatefee",
    c"blockchain.relayfee",
    c"blockchain.scripthash.get_balance",
    c"blockchain.scripthash.get_history",
    c"blockchain.scripthash.get_mempool",
    c"blockchain.scripthash.listunspent",
    c"blockchain.scripthash.subscribe",
    c"blockchain.scripthash.unsubscribe",
    c"blockchain.outpoint.subscribe",
    c"blockchain.outpoint.get_status",
    c"blockchain.outpoint.unsubscribe",
    c"blockchain.transaction.broadcast",
    c"blockchain.transaction.broadcast_package",
    c"blockchain.transaction.testmempoolaccept",
    c"blockchain.transaction.get",
    c"blockchain.transaction.get_merkle",
    c"blockchain.transaction.id_from_pos",
    c"mempool.get_fee_histogram",
    c"mempool.get_info",
    c"mempool.recent",
];

/// The wire name of an `ESPV_METHOD_*` id as a static NUL-terminated string (script methods
/// by their `blockchain.scripthash.*` name; at 1.7 the session sends
/// `blockchain.scriptpubkey.*`); `"unknown"` for `ESPV_METHOD_NONE` or an unknown id. Never
/// NULL.
#[unsafe(no_mangle)]
pub extern "C" fn espv_method_name(method: u32) -> *const c_char {
    let name = (method as usize)
        .checked_sub(1)
        .and_then(|i| METHOD_NAMES.get(i))
        .copied()
        .unwrap_or(c"unknown");
    name.as_ptr()
}

/// One event. Which fields mean something depends on `kind` (see the `ESPV_EVENT_*`
/// constants); the others are zero. Hashes are in internal byte order (as hashed; the hex
/// the protocol shows is reversed: `espv_hash_to_hex`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EspvEvent {
    /// `ESPV_EVENT_*`.
    pub kind: u32,
    /// `ESPV_METHOD_*` of the request answered, or `ESPV_METHOD_NONE`.
    pub method: u32,
    /// Id of the request (as returned by the `espv_request_*` call).
    pub id: u64,
    /// The caller's tag given with the request.
    pub tag: u32,
    /// For `ESPV_EVENT_PROTOCOL_ERROR`, `ESPV_EVENT_FAILED` and
    /// `ESPV_EVENT_RESPONSE_TOO_LARGE`: the `ESPV_ERR_*` reason.
    pub reason: c_int,
    /// Raw bytes (result JSON, error message or notification params). They point into the
    /// session memory and stay valid only until the next call that takes the session.
    pub data: *const u8,
    /// Length of `data`.
    pub data_len: usize,
    /// Server error code, or a number qualifying `reason`; meaningful if `has_code`.
    pub code: i64,
    /// Whether `code` is set.
    pub has_code: bool,
    /// Header height (header events) or history height (block height; 0 or -1: mempool).
    pub height: i64,
    /// The raw 80-byte header (header events).
    pub header: [u8; 80],
    /// Script hash (script notification) or txid (history item), internal byte order.
    pub hash: [u8; 32],
    /// A script's status (script notification), if `has_status`.
    pub status: [u8; 32],
    /// Whether `status` is set (otherwise the history is empty: JSON `null`).
    pub has_status: bool,
    /// Fee in satoshis of a mempool history row, if `has_fee`.
    pub fee: u64,
    /// Whether `fee` is set.
    pub has_fee: bool,
    /// Items of a streamed reply (`ESPV_EVENT_STREAM_END`).
    pub items: u32,
    /// The negotiated version (`ESPV_EVENT_READY`), or the server's (version out of range).
    pub version: EspvVersion,
}

impl EspvEvent {
    const EMPTY: EspvEvent = EspvEvent {
        kind: 0,
        method: ESPV_METHOD_NONE,
        id: 0,
        tag: 0,
        reason: ESPV_OK,
        data: ptr::null(),
        data_len: 0,
        code: 0,
        has_code: false,
        height: 0,
        header: [0; 80],
        hash: [0; 32],
        status: [0; 32],
        has_status: false,
        fee: 0,
        has_fee: false,
        items: 0,
        version: EspvVersion::from_core(ProtocolVersion::new(0, 0, 0)),
    };

    fn with_data(mut self, data: &[u8]) -> EspvEvent {
        self.data = data.as_ptr();
        self.data_len = data.len();
        self
    }

    fn with_code(mut self, code: Option<i64>) -> EspvEvent {
        if let Some(c) = code {
            self.code = c;
            self.has_code = true;
        }
        self
    }

    fn request(kind: u32, id: u64, method: Method, tag: u32) -> EspvEvent {
        EspvEvent {
            kind,
            id,
            method: method_id(method),
            tag,
            ..EspvEvent::EMPTY
        }
    }

    /// The C form of a core event; borrowed bytes keep pointing into the session's line.
    pub(crate) fn from_core(event: &Event<'_>) -> EspvEvent {
        let e = EspvEvent::EMPTY;
        match *event {
            Event::Ready { version } => EspvEvent {
                kind: ESPV_EVENT_READY,
                version: EspvVersion::from_core(version),
                ..e
            },
            Event::Response {
                id,
                method,
                tag,
                result,
            } => EspvEvent::request(ESPV_EVENT_RESPONSE, id, method, tag).with_data(result),
            Event::ServerError {
                id,
                method,
                tag,
                error,
            } => EspvEvent::request(ESPV_EVENT_SERVER_ERROR, id, method, tag)
                .with_data(error.message)
                .with_code(error.code),
            Event::TimedOut { id, method, tag } => {
                EspvEvent::request(ESPV_EVENT_TIMED_OUT, id, method, tag)
            }
            Event::ResponseTooLarge {
                id,
                method,
                tag,
                len,
            } => EspvEvent {
                reason: ESPV_ERR_RESPONSE_TOO_LARGE,
                ..EspvEvent::request(ESPV_EVENT_RESPONSE_TOO_LARGE, id, method, tag)
            }
            .with_code(i64::try_from(len).ok()),
            Event::Notification(Notification::Header { height, header }) => EspvEvent {
                kind: ESPV_EVENT_HEADER_NOTIFICATION,
                height: i64::from(height),
                header,
                ..e
            },
            Event::Notification(Notification::ScriptStatus {
                script_hash,
                status,
            }) => EspvEvent {
                kind: ESPV_EVENT_SCRIPT_NOTIFICATION,
                hash: script_hash.to_byte_array(),
                status: status.map_or([0; 32], |s| s.to_byte_array()),
                has_status: status.is_some(),
                ..e
            },
            Event::Notification(Notification::Outpoint { params }) => EspvEvent {
                kind: ESPV_EVENT_OUTPOINT_NOTIFICATION,
                ..e
            }
            .with_data(params),
            Event::StreamHeader {
                id,
                tag,
                height,
                header,
            } => EspvEvent {
                kind: ESPV_EVENT_STREAM_HEADER,
                method: ESPV_METHOD_BLOCK_HEADERS,
                id,
                tag,
                height: i64::from(height),
                header,
                ..e
            },
            Event::StreamHistoryItem { id, tag, item } => EspvEvent {
                kind: ESPV_EVENT_STREAM_HISTORY_ITEM,
                method: ESPV_METHOD_SCRIPT_GET_HISTORY,
                id,
                tag,
                hash: item.txid.to_byte_array(),
                height: item.height.to_i64(),
                fee: item.fee.unwrap_or(0),
                has_fee: item.fee.is_some(),
                ..e
            },
            Event::StreamEnd {
                id,
                method,
                tag,
                items,
            } => EspvEvent {
                items,
                ..EspvEvent::request(ESPV_EVENT_STREAM_END, id, method, tag)
            },
            Event::ProtocolError(p) => {
                let id = match p {
                    ProtocolError::UnknownId(id)
                    | ProtocolError::ResultAndErrorMismatch { id }
                    | ProtocolError::StreamFailed { id, .. } => id,
                    _ => 0,
                };
                let code = match p {
                    ProtocolError::OversizeLine { len } => i64::try_from(len).ok(),
                    _ => None,
                };
                EspvEvent {
                    kind: ESPV_EVENT_PROTOCOL_ERROR,
                    reason: protocol_error(p),
                    id,
                    ..e
                }
                .with_code(code)
            }
            Event::Failed(f) => {
                let (code, version) = match f {
                    FatalError::VersionRefused { code } => (code, e.version),
                    FatalError::VersionOutOfRange { got } => (None, EspvVersion::from_core(got)),
                    _ => (None, e.version),
                };
                EspvEvent {
                    kind: ESPV_EVENT_FAILED,
                    reason: fatal_error(f),
                    version,
                    ..e
                }
                .with_code(code)
            }
        }
    }
}

/// Writes the next event to `*out` and returns `ESPV_OK`, or returns `ESPV_NONE` when there
/// is none. Call it until `ESPV_NONE` after every `espv_session_feed` and
/// `espv_session_handle_timeout`. `out->data` points into the session memory and is valid
/// until the next call that takes the session.
///
/// Returns `ESPV_ERR_NULL` / `ESPV_ERR_MISALIGNED` / `ESPV_ERR_NOT_INITIALIZED` without
/// consuming an event.
///
/// # Safety
/// `s` is an initialized session; `out` is NULL or points at a writable `espv_event`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_session_poll_event(
    s: *mut EspvSession,
    out: *mut EspvEvent,
) -> c_int {
    let s = session_or_return!(s);
    let out = try_status!(Out::required(out));
    let Some(event) = s.core.poll_event() else {
        return ESPV_NONE;
    };
    let event = EspvEvent::from_core(&event);
    // SAFETY: the caller promises `out` points at a writable event.
    unsafe { out.put(event) };
    ESPV_OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ffi::CStr;

    #[test]
    fn method_ids_follow_the_catalogue() {
        use electrum_spv_core::rpc::ProtocolVersion;
        for (i, m) in Method::ALL.iter().enumerate() {
            let id = method_id(*m);
            assert_eq!(id as usize, i + 1);
            // SAFETY: espv_method_name returns a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(espv_method_name(id)) };
            assert_eq!(name.to_str().unwrap(), m.wire_name(ProtocolVersion::V1_6));
        }
        assert_eq!(method_id(Method::BlockHeader), ESPV_METHOD_BLOCK_HEADER);
        assert_eq!(
            method_id(Method::ScriptGetHistory),
            ESPV_METHOD_SCRIPT_GET_HISTORY
        );
        assert_eq!(method_id(Method::MempoolRecent), ESPV_METHOD_MEMPOOL_RECENT);
        // SAFETY: as above.
        let none = unsafe { CStr::from_ptr(espv_method_name(ESPV_METHOD_NONE)) };
        assert_eq!(none.to_str().unwrap(), "unknown");
    }

    #[test]
    fn a_reply_too_large_is_its_own_kind_with_the_request() {
        let ev = EspvEvent::from_core(&Event::ResponseTooLarge {
            id: 9,
            method: Method::ScriptGetHistory,
            tag: 77,
            len: 3 << 20,
        });
        assert_eq!(ev.kind, ESPV_EVENT_RESPONSE_TOO_LARGE);
        assert_eq!(ev.reason, ESPV_ERR_RESPONSE_TOO_LARGE);
        assert_eq!((ev.id, ev.tag), (9, 77));
        assert_eq!(ev.method, ESPV_METHOD_SCRIPT_GET_HISTORY);
        assert!(ev.has_code && ev.code == 3 << 20);
    }
}
