//! The tracker's tables: what a slot of the script table and of the transaction table holds,
//! and the states a transaction goes through until it is reported.

use crate::hash::{BlockHash, MerkleNode, ScriptHash, Status, Txid};
use crate::script::TxHeight;
use crate::session::Request;
use crate::time::Instant;
use crate::tx_parts::OutPoint;

use super::{KIND_HEADER, KIND_MERKLE, KIND_TX, MAX_SCRIPT_LEN};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum ScriptState {
    /// Subscribe next.
    New,
    Subscribing,
    /// Status differs from the verified one: fetch the history.
    NeedHistory,
    FetchingHistory,
    /// The last history did not match its status: its history is asked again at the next
    /// status notification, or its status and history [`STATUS_RETRY`] after `since` (set
    /// at the next poll).
    Backoff {
        since: Option<Instant>,
    },
    /// The history's answer was longer than the session's line: waiting for the caller's
    /// streamed copy ([`super::ScriptTracker::handle_history`]), or the next status change.
    AwaitingStream,
    Idle,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Tracked {
    pub(super) script: [u8; MAX_SCRIPT_LEN],
    pub(super) script_len: u8,
    pub(super) hash: ScriptHash,
    pub(super) state: ScriptState,
    /// Status last announced by the server.
    pub(super) announced: Option<Option<Status>>,
    /// Status of the last verified history.
    pub(super) verified: Option<Option<Status>>,
    pub(super) mismatches: u8,
    /// The status changed while the history was being fetched (a mismatch it explains is
    /// not counted, up to [`super::STATUS_RACES`] in a row).
    pub(super) raced: bool,
    /// Mismatches in a row explained by such a change.
    pub(super) races: u8,
    /// Generation of the last accepted history, to find transactions that left it.
    pub(super) generation: u32,
    /// Scratch of one poll: every transaction of its history was read.
    pub(super) all_read: bool,
}

/// A slot of the script table (see [`Slots`](crate::sync::Slots)); [`ScriptSlot::EMPTY`] or `Default` to lend one.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScriptSlot(pub(super) Option<Tracked>);

impl ScriptSlot {
    /// An unused slot.
    pub const EMPTY: ScriptSlot = ScriptSlot(None);
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum TxState {
    /// Confirmed: fetch and verify the header first.
    NeedHeader,
    /// A `cp_height` proof asked against this checkpoint (kept: the checkpoint may move while
    /// the request is in flight, and the old root is still a verified one).
    FetchingHeader { cp_height: u32, root: MerkleNode },
    /// Header verified: fetch the merkle branch.
    NeedMerkle {
        merkle_root: MerkleNode,
        block_hash: BlockHash,
    },
    FetchingMerkle {
        merkle_root: MerkleNode,
        block_hash: BlockHash,
    },
    /// Fetch the raw transaction. `last_look`: every other transaction of the history has
    /// been read, so an input that spends none of its funding outputs never will.
    NeedTx {
        block_hash: Option<BlockHash>,
        last_look: bool,
    },
    FetchingTx {
        block_hash: Option<BlockHash>,
        last_look: bool,
    },
    /// Read, hashed to its txid, but neither paying the script nor spending a funding output
    /// known yet (its parent may be read later): looked at again once every transaction of
    /// the history has been read.
    Unproven { block_hash: Option<BlockHash> },
    /// The table had no room for its funding outputs: read again when the history is next
    /// accepted.
    Parked,
    /// Reported.
    Done { block_hash: Option<BlockHash> },
}

impl TxEntry {
    /// Puts the entry in `state`; a request in flight for it is answered in vain (its answer
    /// belongs to the state left).
    pub(super) fn reset(&mut self, state: TxState) {
        self.stale_answer |= self.state.is_fetching();
        self.state = state;
    }
}

impl TxState {
    /// Whether a request for the entry is in flight.
    pub(super) fn is_fetching(self) -> bool {
        matches!(
            self,
            TxState::FetchingHeader { .. }
                | TxState::FetchingMerkle { .. }
                | TxState::FetchingTx { .. }
        )
    }

    /// Whether the transaction's bytes were read (its funding outputs recorded).
    pub(super) fn was_read(self) -> bool {
        matches!(
            self,
            TxState::Unproven { .. }
                | TxState::Done { .. }
                | TxState::NeedTx {
                    last_look: true,
                    ..
                }
                | TxState::FetchingTx {
                    last_look: true,
                    ..
                }
        )
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) struct TxEntry {
    pub(super) script: u16,
    pub(super) txid: Txid,
    pub(super) height: TxHeight,
    pub(super) state: TxState,
    pub(super) generation: u32,
    /// Reported to the caller at least once, so its disappearance must be reported too.
    pub(super) reported: bool,
    /// Put in the table by the merge under way: freed if the merge is rolled back.
    pub(super) added: bool,
    /// Position in its block, fixed by the verified merkle proof (0 until then).
    pub(super) pos: u32,
    /// The time field of its verified block header (0 until the header is verified).
    pub(super) block_time: u32,
    /// Its bytes were read before: funding outputs of it may be in the table already.
    pub(super) read_before: bool,
    /// It was reset (a reorg, a new height) while a request for it was in flight: that
    /// request's answer is dropped when it comes, and nothing new is asked before.
    pub(super) stale_answer: bool,
}

#[derive(Clone, Copy, Debug, Default)]
pub(super) enum Slot {
    #[default]
    Empty,
    Tx(TxEntry),
    /// An output paying script `script`, read from a transaction of its history.
    Funded {
        script: u16,
        outpoint: OutPoint,
    },
    /// A transaction removed while a request for it was in flight: the slot is free once the
    /// answer (or its failure) arrives, so the answer is never taken for another entry's.
    Retired,
}

/// A slot of the transaction table (see [`Slots`](crate::sync::Slots)); [`TxSlot::EMPTY`] or `Default` to lend
/// one.
#[derive(Clone, Copy, Debug, Default)]
pub struct TxSlot(pub(super) Slot);

impl TxSlot {
    /// An unused slot.
    pub const EMPTY: TxSlot = TxSlot(Slot::Empty);
}

pub(super) fn entry(slot: &TxSlot) -> Option<&TxEntry> {
    match &slot.0 {
        Slot::Tx(t) => Some(t),
        _ => None,
    }
}

pub(super) fn entry_mut(slot: &mut TxSlot) -> Option<&mut TxEntry> {
    match &mut slot.0 {
        Slot::Tx(t) => Some(t),
        _ => None,
    }
}

/// The state of a transaction (re)entering a history at `height`.
pub(super) fn fresh(height: TxHeight) -> TxState {
    match height {
        TxHeight::Confirmed(_) => TxState::NeedHeader,
        _ => TxState::NeedTx {
            block_hash: None,
            last_look: false,
        },
    }
}

/// The request due for `t`, its kind and the state it puts `t` in.
pub(super) fn due(
    t: &TxEntry,
    checkpoint: Option<(u32, MerkleNode)>,
    no_header_proofs: bool,
) -> Option<(Request<'static>, u32, TxState)> {
    if t.stale_answer {
        return None;
    }
    Some(match t.state {
        TxState::NeedHeader => {
            let (TxHeight::Confirmed(height), Some((cp, root))) = (t.height, checkpoint) else {
                return None;
            };
            if height > cp || no_header_proofs {
                return None;
            }
            (
                Request::BlockHeader {
                    height,
                    cp_height: cp,
                },
                KIND_HEADER,
                TxState::FetchingHeader {
                    cp_height: cp,
                    root,
                },
            )
        }
        TxState::NeedMerkle {
            merkle_root,
            block_hash,
        } => {
            let TxHeight::Confirmed(height) = t.height else {
                return None;
            };
            (
                Request::TransactionGetMerkle {
                    txid: t.txid,
                    height,
                },
                KIND_MERKLE,
                TxState::FetchingMerkle {
                    merkle_root,
                    block_hash,
                },
            )
        }
        TxState::NeedTx {
            block_hash,
            last_look,
        } => (
            Request::TransactionGet(t.txid),
            KIND_TX,
            TxState::FetchingTx {
                block_hash,
                last_look,
            },
        ),
        _ => return None,
    })
}

/// The state before the request `state` is waiting for was sent.
pub(super) fn unfetched(state: TxState) -> TxState {
    match state {
        TxState::FetchingHeader { .. } => TxState::NeedHeader,
        TxState::FetchingMerkle {
            merkle_root,
            block_hash,
        } => TxState::NeedMerkle {
            merkle_root,
            block_hash,
        },
        TxState::FetchingTx {
            block_hash,
            last_look,
        } => TxState::NeedTx {
            block_hash,
            last_look,
        },
        other => other,
    }
}
