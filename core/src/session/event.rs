//! What the session reports to its caller.

use core::fmt;

use crate::hash::{ScriptHash, Status};
use crate::header::HEADER_SIZE;
use crate::json::JsonError;
use crate::rpc::{Method, ProtocolVersion};
use crate::session::response::HistoryItem;
use crate::session::stream::StreamError;

/// One thing that happened. Borrowed parts point into the line being processed and are valid
/// until the next call that takes `&mut` session.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event<'a> {
    /// Version negotiated and `server.features` checked: requests may be sent.
    Ready {
        /// The negotiated protocol version.
        version: ProtocolVersion,
    },
    /// A successful response.
    Response {
        /// Request id.
        id: u64,
        /// What was asked.
        method: Method,
        /// The caller's tag given with the request.
        tag: u32,
        /// The raw JSON of `result`; decode with [`crate::session::response`].
        result: &'a [u8],
    },
    /// The server answered with an error object (or, from old servers, a plain string).
    ServerError {
        /// Request id.
        id: u64,
        /// What was asked.
        method: Method,
        /// The caller's tag.
        tag: u32,
        /// The server's error, as sent.
        error: RpcError<'a>,
    },
    /// A request got no answer before its deadline; its id is now unknown.
    TimedOut {
        /// Request id.
        id: u64,
        /// What was asked.
        method: Method,
        /// The caller's tag.
        tag: u32,
    },
    /// The response to a request was longer than the session's line buffer: it was discarded
    /// (the `id` was read from the line's ends) and the request is over. Ask again with
    /// [`Session::request_streamed`](crate::session::Session::request_streamed) where the
    /// method streams (headers, histories), else with a larger line buffer.
    ResponseTooLarge {
        /// Request id.
        id: u64,
        /// What was asked.
        method: Method,
        /// The caller's tag.
        tag: u32,
        /// The line's length in bytes.
        len: usize,
    },
    /// A subscription notification.
    Notification(Notification<'a>),
    /// A header of a streamed `blockchain.block.headers` response (not yet verified).
    StreamHeader {
        /// Request id.
        id: u64,
        /// The caller's tag.
        tag: u32,
        /// Its height (start height plus position).
        height: u32,
        /// The header.
        header: [u8; HEADER_SIZE],
    },
    /// A row of a streamed history response (not yet verified).
    StreamHistoryItem {
        /// Request id.
        id: u64,
        /// The caller's tag.
        tag: u32,
        /// The row.
        item: HistoryItem,
    },
    /// A streamed response ended well.
    StreamEnd {
        /// Request id.
        id: u64,
        /// What was asked.
        method: Method,
        /// The caller's tag.
        tag: u32,
        /// Items streamed.
        items: u32,
    },
    /// The server sent something this client cannot accept; the session carries on.
    ProtocolError(ProtocolError),
    /// The session cannot go on (wrong network, no common version, …); open a new one.
    Failed(FatalError),
}

/// A server error as sent: code (`None` for a plain-string error) and the message's raw JSON
/// string contents (escapes not decoded: use [`unescape_into`](super::unescape_into)). The
/// message is the server's untrusted text.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RpcError<'a> {
    /// JSON-RPC error code (PROTOCOL.md §1.7), if the server sent one.
    pub code: Option<i64>,
    /// Raw message bytes.
    pub message: &'a [u8],
}

impl RpcError<'_> {
    /// ElectrumX's "excessive resource usage" (-101); the server disconnects next.
    pub fn is_excessive_usage(&self) -> bool {
        self.code == Some(-101)
    }

    /// ElectrumX's "server busy - request timed out" (-102).
    pub fn is_server_busy(&self) -> bool {
        self.code == Some(-102)
    }

    /// "history too large": ElectrumX 2.0 code 10001; ElectrumX < 2.0's code 1 "history too
    /// large"; esplora's 500-row limit (INTEROP row 7): Blockstream's "Too many history
    /// entries" (code 1 or a plain string) and mempool.space's "Too many history transactions
    /// (>500). Contact support…" (plain string).
    ///
    /// The servers' own texts are recognised here and only here (ASCII, case-insensitive).
    pub fn is_history_too_large(&self) -> bool {
        let says = |text: &[u8]| contains_ignore_case(self.message, text);
        match self.code {
            Some(10001) => true,
            Some(1) => says(b"history too large") || says(b"too many history entries"),
            None => says(b"too many history entries") || says(b"too many history transactions"),
            Some(_) => false,
        }
    }

    /// electrs while it builds its index (INTEROP row 3): -32603 "unavailable index". A
    /// transient condition: ask again later, the server is neither lying nor refusing.
    pub fn is_index_unavailable(&self) -> bool {
        self.code == Some(-32603) && contains_ignore_case(self.message, b"unavailable index")
    }

    /// -32601 "method not found": the server does not offer the method (at this protocol
    /// version, or at all: electrs has no `get_mempool`, esplora builds no `server.features`).
    pub fn is_method_not_found(&self) -> bool {
        self.code == Some(-32601)
    }
}

/// Whether `haystack` holds `needle` (ASCII letters compared case-insensitively).
fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// A notification the session understood.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Notification<'a> {
    /// A new tip (`blockchain.headers.subscribe`). Not yet verified: feed it to a header sync.
    Header {
        /// Height the server claims.
        height: u32,
        /// The raw header.
        header: [u8; HEADER_SIZE],
    },
    /// A script's new status. Not yet verified: fetch and recompute the history.
    ScriptStatus {
        /// Which script (by hash, also at 1.7).
        script_hash: ScriptHash,
        /// The status; `None` is JSON `null` (empty history, or dropped as too large).
        status: Option<Status>,
    },
    /// An outpoint status change (1.7): raw `params` (`[tx_hash, txout_idx, status]`).
    Outpoint {
        /// Raw JSON params.
        params: &'a [u8],
    },
}

/// Input the session refused; the rest of the stream is still processed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ProtocolError {
    /// A line longer than the session's line buffer was discarded.
    OversizeLine {
        /// Its length.
        len: usize,
    },
    /// Not valid JSON, or nested too deeply.
    Json(JsonError),
    /// A message that is neither a response nor a notification.
    NotJsonRpc,
    /// A response whose id is not an integer we could have sent.
    BadId,
    /// A response to an id not in flight: never sent, already answered (duplicate) or timed out.
    UnknownId(u64),
    /// A response with neither `result` nor `error`, or with both.
    ResultAndErrorMismatch {
        /// Its id.
        id: u64,
    },
    /// A notification for a known method with malformed params.
    BadNotification,
    /// The server sent a request (with id and method); clients answer none.
    UnexpectedRequest,
    /// A streamed response was malformed or of the wrong shape; the request is over.
    StreamFailed {
        /// Its id.
        id: u64,
        /// What was wrong.
        error: StreamError,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::OversizeLine { len } => {
                write!(f, "line of {len} bytes exceeds the limit")
            }
            ProtocolError::Json(e) => write!(f, "invalid JSON: {e}"),
            ProtocolError::NotJsonRpc => f.write_str("not a JSON-RPC response or notification"),
            ProtocolError::BadId => f.write_str("response id is not one this client sends"),
            ProtocolError::UnknownId(id) => {
                write!(f, "response to id {id}, which is not in flight")
            }
            ProtocolError::ResultAndErrorMismatch { id } => {
                write!(f, "response {id} needs exactly one of result and error")
            }
            ProtocolError::BadNotification => f.write_str("malformed notification"),
            ProtocolError::UnexpectedRequest => f.write_str("server sent a request"),
            ProtocolError::StreamFailed { id, error } => {
                write!(f, "streamed response {id} refused: {error:?}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ProtocolError {}

/// Why a session stopped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FatalError {
    /// The server refused `server.version` (no common version); its error code.
    VersionRefused {
        /// The server's error code, if any.
        code: Option<i64>,
    },
    /// The `server.version` reply is not `[software, version]` with a readable version.
    BadVersionReply,
    /// The negotiated version is outside the range asked for.
    VersionOutOfRange {
        /// What the server answered.
        got: ProtocolVersion,
    },
    /// `server.features` could not be read or has no `genesis_hash`; or, where the server
    /// refused `server.features`, `blockchain.block.header(0)` could not be read either.
    BadFeatures,
    /// The server is on another network: its genesis hash differs.
    WrongGenesis,
    /// `server.version` or `server.features` got no answer in time.
    NegotiationTimedOut,
    /// The outgoing buffer (`OUT`) cannot hold the negotiation requests.
    OutputTooSmall,
}

impl fmt::Display for FatalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FatalError::VersionRefused { code: Some(c) } => {
                write!(f, "server refused the protocol versions (code {c})")
            }
            FatalError::VersionRefused { code: None } => {
                f.write_str("server refused the protocol versions")
            }
            FatalError::BadVersionReply => f.write_str("malformed server.version reply"),
            FatalError::VersionOutOfRange { got } => {
                write!(f, "server negotiated {got}, outside the range asked for")
            }
            FatalError::BadFeatures => f.write_str("malformed server.features reply"),
            FatalError::WrongGenesis => {
                f.write_str("server is on another network (genesis hash differs)")
            }
            FatalError::NegotiationTimedOut => f.write_str("version negotiation timed out"),
            FatalError::OutputTooSmall => f.write_str("outgoing buffer too small for negotiation"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FatalError {}
