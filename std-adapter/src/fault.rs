//! What a server can be proven to have said falsely: the typed reason of
//! [`Error::Verification`](crate::Error::Verification). Each case wraps the core rule that
//! caught it, so a caller (the pool, an app) decides by the case, never by text.

use std::fmt;

use electrum_spv_core::accumulator::HeaderProofError;
use electrum_spv_core::chain::HeaderError;
use electrum_spv_core::hash::{ScriptHash, Txid};
use electrum_spv_core::history::HistoryFault;
use electrum_spv_core::merkle::MerkleError;
use electrum_spv_core::tx::TxError;

/// Why a server's data failed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A header breaks a consensus rule or a checkpoint (core's [`HeaderError`] names the
    /// height and the rule).
    Header(HeaderError),
    /// The server announced a tip but sent no header for `height`.
    MissingHeaders {
        /// The first height it did not send.
        height: u32,
    },
    /// After a reorg, the server's chain has no more work than the chain verified before.
    LessWork {
        /// The server's tip height.
        tip: u32,
    },
    /// A transaction's merkle branch does not reach its block's merkle root.
    Merkle {
        /// The transaction.
        txid: Txid,
        /// The height it was claimed at.
        height: u32,
        /// The rule broken.
        error: MerkleError,
    },
    /// A `cp_height` header proof does not reach the trusted root.
    HeaderProof {
        /// The header's height.
        height: u32,
        /// The rule broken.
        error: HeaderProofError,
    },
    /// A merkle proof for another height than the one asked.
    ProofHeight {
        /// The transaction.
        txid: Txid,
        /// The height asked.
        asked: u32,
        /// The height the proof claims.
        claimed: u32,
    },
    /// A history list that is false in itself (status, order, duplicates).
    History {
        /// The script.
        script: ScriptHash,
        /// What is wrong.
        fault: HistoryFault,
    },
    /// The bytes sent for a transaction are not a transaction.
    MalformedTx {
        /// The transaction asked for.
        txid: Txid,
        /// Why the bytes do not parse.
        error: TxError,
    },
    /// The bytes sent for a transaction hash to another txid.
    TxidMismatch {
        /// The transaction asked for.
        asked: Txid,
        /// What the bytes hash to.
        got: Txid,
    },
    /// A history lists a transaction that neither pays the script nor spends an output that
    /// paid it.
    Unrelated {
        /// The script.
        script: ScriptHash,
        /// The transaction.
        txid: Txid,
    },
    /// An unspent output the funding transaction does not have, or that pays another script.
    NotAnOutputOfScript {
        /// The funding transaction.
        txid: Txid,
        /// The output index.
        vout: u32,
    },
    /// The same unspent output listed twice.
    DuplicateOutpoint {
        /// The funding transaction.
        txid: Txid,
        /// The output index.
        vout: u32,
    },
    /// A confirmed transaction another server proved is missing from this server's history,
    /// at a height this server has reached.
    Omission {
        /// The script.
        script: ScriptHash,
        /// The transaction left out.
        txid: Txid,
        /// Its proven height.
        height: u32,
    },
    /// A broadcast answered with another transaction's txid.
    BroadcastTxid {
        /// The txid of the transaction sent.
        sent: Txid,
        /// The txid the server answered.
        answered: Txid,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Header(e) => write!(f, "header {e}"),
            Fault::MissingHeaders { height } => {
                write!(f, "the server sent no header at height {height}")
            }
            Fault::LessWork { tip } => write!(
                f,
                "the server's chain (tip {tip}) has less work than the chain verified before"
            ),
            Fault::Merkle {
                txid,
                height,
                error,
            } => write!(f, "merkle proof of {txid} at height {height}: {error:?}"),
            Fault::HeaderProof { height, error } => {
                write!(f, "header proof at height {height}: {error:?}")
            }
            Fault::ProofHeight {
                txid,
                asked,
                claimed,
            } => write!(
                f,
                "merkle proof of {txid} is for height {claimed}, not {asked}"
            ),
            Fault::History { script, fault } => write!(f, "history of {script}: {fault}"),
            Fault::MalformedTx { txid, error } => {
                write!(
                    f,
                    "the bytes sent for {txid} are not a transaction: {error}"
                )
            }
            Fault::TxidMismatch { asked, got } => {
                write!(f, "the bytes sent for {asked} are transaction {got}")
            }
            Fault::Unrelated { script, txid } => write!(
                f,
                "transaction {txid} in the history of {script} neither pays nor spends it"
            ),
            Fault::NotAnOutputOfScript { txid, vout } => {
                write!(f, "output {txid}:{vout} does not pay this script")
            }
            Fault::DuplicateOutpoint { txid, vout } => {
                write!(f, "unspent output {txid}:{vout} listed twice")
            }
            Fault::Omission {
                script,
                txid,
                height,
            } => write!(
                f,
                "the history of {script} leaves out {txid}, proven at height {height} by another server"
            ),
            Fault::BroadcastTxid { sent, answered } => {
                write!(f, "broadcast of {sent} answered with txid {answered}")
            }
        }
    }
}

impl std::error::Error for Fault {}
