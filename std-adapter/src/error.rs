//! The adapter's error type: one enum, every case typed, nothing stringly except what the
//! server itself said.

use std::fmt;

use electrum_spv_core::rpc::Method;
use electrum_spv_core::session::FatalError;

use crate::fault::Fault;
use crate::socks5::Socks5Error;

/// Everything a client call can fail with.
#[derive(Debug)]
pub enum Error {
    /// Connecting, reading or writing failed.
    Io(std::io::Error),
    /// The TCP connection (or the proxy's tunnel) was not up within the connect timeout.
    ConnectTimeout,
    /// The SOCKS5 proxy refused or failed.
    Socks5(Socks5Error),
    /// `.onion` servers need a SOCKS5 proxy (Tor); connecting directly would leak the name.
    OnionNeedsProxy,
    /// The TLS handshake failed (untrusted certificate, wrong name, protocol error).
    Tls(rustls::Error),
    /// The server's certificate is not the pinned one (`--tls-pin`).
    CertificatePinMismatch {
        /// SHA-256 of the certificate presented.
        presented: [u8; 32],
    },
    /// Trust on first use: the server presents another certificate than the one recorded.
    CertificateChanged {
        /// The server, as in the store.
        server: String,
        /// SHA-256 of the recorded certificate.
        stored: [u8; 32],
        /// SHA-256 of the certificate presented now.
        presented: [u8; 32],
    },
    /// The trust-on-first-use store could not be read or written, or is malformed.
    TofuStore(String),
    /// Version negotiation or the network check failed (wrong genesis, no common version...).
    Session(FatalError),
    /// The server answered with an error.
    Server {
        /// JSON-RPC error code, if sent.
        code: Option<i64>,
        /// The server's message (untrusted text).
        message: String,
    },
    /// ElectrumX's "excessive resource usage" (-101): the server is about to disconnect.
    ExcessiveUsage(String),
    /// ElectrumX's "server busy" (-102): retry later.
    ServerBusy(String),
    /// The script's history is larger than the server will send.
    HistoryTooLarge(String),
    /// No answer before the request's deadline.
    Timeout,
    /// The answer was longer than the client accepts in one line
    /// ([`MAX_LINE`](crate::connection::MAX_LINE)) and was discarded; the request is over.
    /// Script histories never end so: they are asked again streamed, without a size limit.
    /// Our limit, not the server's fault.
    ResponseTooLarge {
        /// What was asked.
        method: Method,
        /// The answer's length in bytes.
        len: usize,
    },
    /// The connection closed with the request in flight (or before it could be sent).
    Disconnected,
    /// The client was shut down.
    Closed,
    /// The result does not have the documented shape.
    BadResult(Method),
    /// The server's data failed verification: a proven fault, with the core rule that caught
    /// it.
    Verification(Fault),
    /// The server's answer to a broadcast is not a txid (some servers answer a warning page):
    /// whether the transaction was sent is unknown. Not a proven fault.
    UnknownBroadcastOutcome(String),
    /// The server names a block above the best chain verified here, even after syncing: our
    /// view lags (or the server is ahead of every other). Not a proven fault; ask again later.
    Lagging {
        /// The height the server named.
        height: u32,
        /// Our verified tip, if any header is held.
        tip: Option<u32>,
    },
    /// The method does not exist at the negotiated protocol version.
    NotAvailable(Method),
    /// More requests are waiting than the configured bound.
    TooManyPending,
    /// More subscriptions than the configured bound.
    TooManySubscriptions,
    /// A request argument was refused before sending.
    InvalidArgument(String),
    /// The header file is corrupt (not merely torn at its end, which is repaired).
    Store(String),
    /// The server cannot answer yet (electrs building its index: -32603 "unavailable
    /// index"). Transient: ask again later; not a refusal and not a lie.
    Unavailable(String),
    /// No P2P peer completed its handshake: each peer tried, with why it failed.
    NoPeerReady(Vec<(String, String)>),
    /// A P2P peer's headers broke a rule: a proven fault of that peer.
    P2pHeaders {
        /// The peer.
        peer: String,
        /// The rule, as core's P2P header sync reports it.
        fault: electrum_spv_core::p2p::HeadersFault,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "connection: {e}"),
            Error::ConnectTimeout => f.write_str("connect timed out"),
            Error::Socks5(e) => e.fmt(f),
            Error::OnionNeedsProxy => f.write_str(".onion servers need --proxy (Tor's SOCKS port)"),
            Error::Tls(e) => write!(f, "TLS: {e}"),
            Error::CertificatePinMismatch { presented } => write!(
                f,
                "server certificate {} does not match the pinned one",
                to_hex(presented)
            ),
            Error::CertificateChanged {
                server,
                stored,
                presented,
            } => write!(
                f,
                "certificate of {server} changed: recorded {}, presented {}",
                to_hex(stored),
                to_hex(presented)
            ),
            Error::TofuStore(e) => write!(f, "trust-on-first-use store: {e}"),
            Error::Session(e) => write!(f, "session: {e}"),
            Error::Server {
                code: Some(c),
                message,
            } => write!(f, "server error {c}: {message}"),
            Error::Server {
                code: None,
                message,
            } => write!(f, "server error: {message}"),
            Error::ExcessiveUsage(m) => write!(f, "server reports excessive resource usage: {m}"),
            Error::ServerBusy(m) => write!(f, "server busy: {m}"),
            Error::HistoryTooLarge(m) => write!(f, "history too large for the server: {m}"),
            Error::Timeout => f.write_str("request timed out"),
            Error::ResponseTooLarge { method, len } => write!(
                f,
                "answer to {method:?} of {len} bytes exceeds the client's line limit"
            ),
            Error::Disconnected => f.write_str("disconnected with the request in flight"),
            Error::Closed => f.write_str("client closed"),
            Error::BadResult(m) => write!(f, "malformed result for {m:?}"),
            Error::Verification(m) => write!(f, "verification failed: {m}"),
            Error::UnknownBroadcastOutcome(answer) => write!(
                f,
                "the server answered {answer:?} instead of a txid: unknown whether it was sent"
            ),
            Error::Lagging { height, tip } => write!(
                f,
                "the server names block {height}, above the verified tip {}",
                tip.map_or_else(|| "(none)".to_owned(), |t| t.to_string())
            ),
            Error::NotAvailable(m) => {
                write!(
                    f,
                    "{m:?} is not available at the negotiated protocol version"
                )
            }
            Error::TooManyPending => f.write_str("too many requests waiting"),
            Error::TooManySubscriptions => f.write_str("too many subscriptions"),
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::Store(m) => write!(f, "header store: {m}"),
            Error::Unavailable(m) => write!(f, "server not ready yet: {m}"),
            Error::NoPeerReady(tried) if tried.is_empty() => {
                f.write_str("no peer completed the handshake in time")
            }
            Error::P2pHeaders { peer, fault } => write!(f, "peer {peer}: {fault}"),
            Error::NoPeerReady(tried) => {
                f.write_str("no peer completed the handshake:")?;
                for (i, (peer, why)) in tried.iter().enumerate() {
                    let sep = if i == 0 { " " } else { "; " };
                    write!(f, "{sep}{peer}: {why}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Socks5(e) => Some(e),
            Error::Tls(e) => Some(e),
            Error::Session(e) => Some(e),
            Error::Verification(e) => Some(e),
            _ => None,
        }
    }
}

impl Error {
    /// Whether the error proves the server said something false (a forged proof, a wrong
    /// status, an invalid header, an omission shown by another server): the only reason to
    /// stop using a server. Timeouts, refusals, our own limits and lag are not.
    pub fn is_server_fault(&self) -> bool {
        matches!(self, Error::Verification(_))
    }

    /// Whether the error is the connection's (the server may answer after a reconnect).
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            Error::Io(_)
                | Error::Disconnected
                | Error::Timeout
                | Error::ConnectTimeout
                | Error::Closed
        )
    }

    /// Whether asking again later may succeed: the server is busy or not ready yet
    /// ([`Error::Unavailable`], [`Error::ServerBusy`]), or the request or connection was lost
    /// ([`Error::Timeout`], [`Error::Disconnected`], [`Error::ConnectTimeout`],
    /// [`Error::Io`]). None of these says anything about the server's honesty.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Unavailable(_)
                | Error::ServerBusy(_)
                | Error::Timeout
                | Error::Disconnected
                | Error::ConnectTimeout
                | Error::Io(_)
        )
    }
}

impl From<Fault> for Error {
    fn from(f: Fault) -> Self {
        Error::Verification(f)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<Socks5Error> for Error {
    fn from(e: Socks5Error) -> Self {
        Error::Socks5(e)
    }
}

/// Lowercase hex of `bytes` (in the order given), with the core's encoder.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    // The output is exactly twice the input: the encoder cannot refuse it.
    let _ = electrum_spv_core::hex::encode_to_slice(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}
