//! What a scan or sync can fail with.

use std::fmt;

use bitcoin::{OutPoint, Txid};

/// A scan, sync or broadcast failed. Typed: decide on the variant, never on the text.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The pool failed: no server could answer, or what they answered failed verification
    /// (see [`electrum_spv::Error::is_server_fault`] and its typed `Fault`).
    Client(electrum_spv::Error),
    /// A full scan reached [`crate::ScanOptions::max_scripts`] scripts of one keychain
    /// without meeting its stop gap.
    TooManyScripts {
        /// The limit reached.
        limit: usize,
    },
    /// No block of the wallet's chain tip is on the verified chain: the wallet is on another
    /// network, or its checkpoints all lie above a reorganised part of the chain.
    NoAgreement {
        /// The wallet's tip height.
        wallet_tip: u32,
        /// The verified tip height.
        verified_tip: u32,
    },
    /// Transaction bytes verified to hash to `txid` do not parse as a rust-bitcoin
    /// transaction.
    Transaction {
        /// The transaction.
        txid: Txid,
    },
    /// A transaction spends an output its parent does not have (`fetch_prev_txouts`).
    MissingOutput(OutPoint),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Client(e) => write!(f, "{e}"),
            Error::TooManyScripts { limit } => write!(
                f,
                "a full scan reached {limit} scripts of one keychain without meeting its stop gap"
            ),
            Error::NoAgreement {
                wallet_tip,
                verified_tip,
            } => write!(
                f,
                "no block of the wallet's chain (tip {wallet_tip}) is on the verified chain (tip {verified_tip})"
            ),
            Error::Transaction { txid } => {
                write!(f, "transaction {txid} does not parse")
            }
            Error::MissingOutput(outpoint) => {
                write!(f, "output {outpoint} does not exist")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Client(e) => Some(e),
            _ => None,
        }
    }
}

impl From<electrum_spv::Error> for Error {
    fn from(e: electrum_spv::Error) -> Self {
        Error::Client(e)
    }
}
