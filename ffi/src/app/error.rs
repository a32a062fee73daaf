//! The errors apps catch: one exception type per thing an app would handle differently.

use std::fmt;

use electrum_spv::{Error, to_hex};

/// Why a call failed. In Kotlin and Python these are exceptions (`ElectrumException.Timeout`,
/// ...), in Swift `throws`.
///
/// Its readable message (the kind, then the detail, as `Display` writes it) is
/// `displayMessage()` / `display_message()`, and Kotlin's `toString()` and Swift's
/// `description`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Error)]
#[uniffi::export(Display)]
pub enum ElectrumError {
    /// No server could be reached, or the connection was lost with the request in flight.
    Connection {
        /// What happened (network error text).
        detail: String,
    },
    /// No answer before the request deadline.
    Timeout,
    /// The TLS handshake failed: untrusted certificate, wrong name, protocol error.
    Tls {
        /// What the TLS library said.
        detail: String,
    },
    /// The server's certificate is not the pinned one.
    CertificateMismatch {
        /// SHA-256 (hex) of the certificate the server presented.
        presented: String,
    },
    /// The SOCKS5 proxy (Tor) refused or failed, or a `.onion` server was given without one.
    Proxy {
        /// What went wrong.
        detail: String,
    },
    /// The server is on another network, or speaks no protocol version in common.
    WrongServer {
        /// What did not match.
        detail: String,
    },
    /// The server answered with an error (for a broadcast: the node's rejection reason).
    Server {
        /// JSON-RPC error code, if sent.
        code: Option<i64>,
        /// The server's message (untrusted text).
        detail: String,
    },
    /// The server refuses for now (busy, or the history is too large for it).
    ServerLimit {
        /// The server's message.
        detail: String,
    },
    /// The server's data failed verification: headers, a merkle proof, a status, a
    /// transaction's hash. The server is dropped from the pool.
    Verification {
        /// Which check failed.
        detail: String,
    },
    /// An argument was refused before anything was sent: a bad address, txid, server or pin.
    InvalidArgument {
        /// What was wrong.
        detail: String,
    },
    /// The method is not available at the negotiated protocol version.
    NotAvailable {
        /// Which method.
        detail: String,
    },
    /// Too many requests or subscriptions at once.
    TooBusy {
        /// Which bound was hit.
        detail: String,
    },
    /// The client was closed.
    Closed,
}

impl fmt::Display for ElectrumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElectrumError::Connection { detail } => write!(f, "connection: {detail}"),
            ElectrumError::Timeout => f.write_str("request timed out"),
            ElectrumError::Tls { detail } => write!(f, "TLS: {detail}"),
            ElectrumError::CertificateMismatch { presented } => {
                write!(f, "server certificate {presented} is not the pinned one")
            }
            ElectrumError::Proxy { detail } => write!(f, "proxy: {detail}"),
            ElectrumError::WrongServer { detail } => write!(f, "wrong server: {detail}"),
            ElectrumError::Server {
                code: Some(code),
                detail,
            } => write!(f, "server error {code}: {detail}"),
            ElectrumError::Server { code: None, detail } => write!(f, "server error: {detail}"),
            ElectrumError::ServerLimit { detail } => write!(f, "server limit: {detail}"),
            ElectrumError::Verification { detail } => write!(f, "verification failed: {detail}"),
            ElectrumError::InvalidArgument { detail } => write!(f, "invalid argument: {detail}"),
            ElectrumError::NotAvailable { detail } => write!(f, "not available: {detail}"),
            ElectrumError::TooBusy { detail } => write!(f, "too busy: {detail}"),
            ElectrumError::Closed => f.write_str("client closed"),
        }
    }
}

impl std::error::Error for ElectrumError {}

#[uniffi::export]
impl ElectrumError {
    /// The readable message: the kind, then the detail, as `Display` writes it (Kotlin's
    /// `toString()` and Swift's `description` give it too; Python's `str()` shows the
    /// fields).
    pub fn display_message(&self) -> String {
        self.to_string()
    }
}

impl From<Error> for ElectrumError {
    fn from(e: Error) -> Self {
        // The adapter's own text where the error carries one (this type's Display adds the
        // kind), its full Display otherwise.
        let detail = e.to_string();
        match e {
            Error::Io(_) | Error::ConnectTimeout | Error::Disconnected | Error::NoPeerReady(_) => {
                ElectrumError::Connection { detail }
            }
            Error::Timeout => ElectrumError::Timeout,
            Error::Tls(_) | Error::CertificateChanged { .. } | Error::TofuStore(_) => {
                ElectrumError::Tls { detail }
            }
            Error::CertificatePinMismatch { presented } => ElectrumError::CertificateMismatch {
                presented: to_hex(&presented),
            },
            Error::Socks5(_) | Error::OnionNeedsProxy => ElectrumError::Proxy { detail },
            Error::Session(_) => ElectrumError::WrongServer { detail },
            Error::Server { code, message } => ElectrumError::Server {
                code,
                detail: message,
            },
            Error::ExcessiveUsage(m) | Error::ServerBusy(m) | Error::HistoryTooLarge(m) => {
                ElectrumError::ServerLimit { detail: m }
            }
            Error::Verification(_) | Error::P2pHeaders { .. } => {
                ElectrumError::Verification { detail }
            }
            // Whether it was sent is unknown: the server's own answer, not a proven lie.
            Error::UnknownBroadcastOutcome(answer) => ElectrumError::Server {
                code: None,
                detail: answer,
            },
            // The server names a block not verified here yet: ask again later.
            Error::Lagging { .. } => ElectrumError::NotAvailable { detail },
            Error::BadResult(_) => ElectrumError::Verification { detail },
            Error::InvalidArgument(m) => ElectrumError::InvalidArgument { detail: m },
            Error::Store(_) => ElectrumError::InvalidArgument { detail },
            Error::NotAvailable(_) => ElectrumError::NotAvailable { detail },
            // An answer longer than the client's line limit: our limit, not the server's.
            Error::ResponseTooLarge { .. } => ElectrumError::NotAvailable { detail },
            Error::TooManyPending | Error::TooManySubscriptions => {
                ElectrumError::TooBusy { detail }
            }
            Error::Closed => ElectrumError::Closed,
            // electrs still indexing: transient, like a busy server.
            Error::Unavailable(m) => ElectrumError::ServerLimit { detail: m },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapter_errors_map_to_what_apps_handle() {
        assert_eq!(ElectrumError::from(Error::Timeout), ElectrumError::Timeout);
        assert!(matches!(
            ElectrumError::from(Error::Verification(electrum_spv::Fault::MissingHeaders { height: 7 })),
            ElectrumError::Verification { detail } if detail.contains("height 7")
        ));
        assert_eq!(
            ElectrumError::from(Error::CertificatePinMismatch {
                presented: [0xab; 32]
            }),
            ElectrumError::CertificateMismatch {
                presented: "ab".repeat(32)
            }
        );
        assert!(matches!(
            ElectrumError::from(Error::Server { code: Some(1), message: "bad tx".into() }),
            ElectrumError::Server { code: Some(1), detail } if detail == "bad tx"
        ));
    }
}
