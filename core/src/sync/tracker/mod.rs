//! The script tracker: verified history of a set of scripts. This is what "verified history"
//! means for every layer (DESIGN.md, "What is verified"); the adapter, the pool, the CLI and
//! the apps drive this engine and add only I/O.
//!
//! For each script: subscribe; when the status changes, fetch the history, recompute the
//! status from it (the server's order, and at 1.6+ the canonical mempool order), refuse a txid
//! listed twice, and accept it only if it matches what the server announced (a mismatch right
//! after a block may be the server's status cache racing its index, as Fulcrum's does: the
//! history is asked again on the next status notification, or with its status after
//! [`STATUS_RETRY`]; a mismatch explained by a status announced during the fetch, a busy
//! address, is asked again at once and not counted, up to [`STATUS_RACES`] in a row; only
//! [`STATUS_ATTEMPTS`] counted mismatches in a row are a lie). Then, for every new transaction:
//! its block header (a `cp_height` proof against a root the caller trusts, or a header the
//! caller verified in its own chain, [`ScriptTracker::provide_header`]), its merkle branch
//! against that header (hardened), its raw bytes against its txid, and that it involves the
//! script: an output pays it, or an input spends an output of the same history that paid it
//! ([`TxScan`](crate::tx::TxScan), streamed: no buffer of the transaction's size). Only then is it reported:
//! [`TrackerEvent::Confirmed`] (with height and block hash; its position in the block is
//! [`ScriptTracker::chain_position`]) or [`TrackerEvent::Unconfirmed`]; transactions that
//! leave a history are reported [`TrackerEvent::Removed`]. Nothing unverified is reported.
//!
//! Memory is the caller's ([`Slots`]): one slot per script, and in the transaction table one
//! slot per transaction of every history plus one per output paying a tracked script (a
//! typical wallet: about two per transaction). Fixed storage reports [`TrackerEvent::Full`]
//! when it runs out; a `Vec` grows. Requests carry tags in
//! [`TAG_BASE`]`..`[`TAG_BASE`]` + 0x00FF_FFFF`.

use core::fmt;

use crate::accumulator::HeaderProofError;
use crate::hash::{BlockHash, MerkleNode, ScriptHash, Status, Txid};
use crate::header::{HEADER_SIZE, Header};
use crate::history::{ChainPosition, HistoryFault};
use crate::merkle::MerkleError;
use crate::rpc::ProtocolVersion;
use crate::script::{TxHeight, script_hash};
use crate::session::response::HistoryItem;
use crate::session::{Event, Notification, Request, RequestError, response};
use crate::sync::{RequestSink, Slots};
use crate::time::{Duration, Instant};
use crate::tx::TxError;

mod answers;
mod slots;

pub use slots::{ScriptSlot, TxSlot};
use slots::{ScriptState, Slot, Tracked, TxEntry, TxState, due, entry, entry_mut, unfetched};

/// Longest scriptPubKey tracked (an uncompressed P2PK is 67 bytes).
pub const MAX_SCRIPT_LEN: usize = 80;
/// Tags of the tracker's requests: `TAG_BASE | kind << 20 | slot`.
pub const TAG_BASE: u32 = 0x5400_0000;
/// Slots a tag can name: the tables hold at most this many scripts and transactions.
pub const MAX_SLOTS: usize = 0x0010_0000;
/// Requests the tracker keeps in flight by default (it leaves room for other engines); see
/// [`ScriptTracker::set_max_in_flight`]. ElectrumX holds small replies up to ~1 s, so this
/// bounds throughput to about this many requests per second.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;
/// Histories asked in a row whose status does not match before the mismatch is a lie.
pub const STATUS_ATTEMPTS: u8 = 3;
/// Mismatches in a row that a status change during the fetch explains (a busy address), asked
/// again at once and not counted; beyond this they count as [`STATUS_ATTEMPTS`] do, so a
/// server cannot keep a false history unnamed by announcing statuses.
pub const STATUS_RACES: u8 = 16;
/// Longest wait before a history whose status did not match is asked again,
/// unless the server announces the script's status sooner (Fulcrum refreshes its cached
/// statuses every 500 ms).
pub const STATUS_RETRY: Duration = Duration::from_secs(1);
/// Deepest merkle branch kept while its header is being verified.
const MAX_BRANCH: usize = crate::merkle::MAX_MERKLE_DEPTH;

const KIND_SUBSCRIBE: u32 = 1;
const KIND_HISTORY: u32 = 2;
const KIND_HEADER: u32 = 3;
const KIND_MERKLE: u32 = 4;
const KIND_TX: u32 = 5;

/// A script to track: the scriptPubKey (works at every version) or only its hash (below 1.7).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ScriptRef<'a> {
    /// The scriptPubKey.
    Script(&'a [u8]),
    /// Only the Electrum script hash.
    Hash(ScriptHash),
}

/// A transaction of a verified history ([`ScriptTracker::history`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The transaction.
    pub txid: Txid,
    /// Confirmed height or mempool class.
    pub height: TxHeight,
    /// For a confirmed transaction: the verified block it is proven into.
    pub block: Option<ProvenIn>,
}

/// The verified block a confirmed transaction is proven into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProvenIn {
    /// The block's hash (of the verified header).
    pub hash: BlockHash,
    /// The transaction's position in the block, fixed by the merkle proof.
    pub pos: u32,
    /// The verified header's time field (seconds since 1970, as the miner set it).
    pub time: u32,
}

/// What the tracker reports. `script` is the index [`ScriptTracker::add`] returned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TrackerEvent {
    /// A history whose recomputed status equals the server's; its transactions follow as they
    /// are verified.
    StatusVerified {
        /// Script index.
        script: usize,
        /// The status (`None`: empty history).
        status: Option<Status>,
    },
    /// A transaction verified in a block: header proven, merkle branch checked, txid of the
    /// raw bytes checked, involvement shown.
    Confirmed {
        /// Script index.
        script: usize,
        /// The transaction.
        txid: Txid,
        /// Block height.
        height: u32,
        /// Block hash (of the proven header).
        block_hash: BlockHash,
    },
    /// A mempool transaction whose raw bytes hash to its txid and that involves the script.
    Unconfirmed {
        /// Script index.
        script: usize,
        /// The transaction.
        txid: Txid,
        /// 0 or -1 (unconfirmed parents).
        height: TxHeight,
    },
    /// A transaction no longer in the script's history (reorged out, evicted, replaced).
    Removed {
        /// Script index.
        script: usize,
        /// The transaction.
        txid: Txid,
    },
    /// A confirmed transaction waits for its block header, and the server serves no
    /// `cp_height` proofs (electrs) or no checkpoint is set: give the tracker the verified
    /// header at `height` from the caller's header chain ([`ScriptTracker::provide_header`]).
    /// Not a lie.
    HeaderWanted {
        /// The block height.
        height: u32,
    },
    /// The server said something false; stop trusting it.
    ServerLied {
        /// Script index.
        script: usize,
        /// The transaction concerned, when the lie is about one.
        txid: Option<Txid>,
        /// What was false.
        lie: TrackerLie,
    },
    /// The caller's fixed storage is full (see the [module documentation](self) for what
    /// takes a slot): a history that did not fit is not accepted (asked again at the script's
    /// next status change); a transaction whose funding outputs did not fit waits for the next
    /// accepted history.
    Full {
        /// Script index.
        script: usize,
    },
    /// A response for the script (its history, or a proof or transaction of it) was longer
    /// than the session's line buffer ([`Event::ResponseTooLarge`]). A history waits for the
    /// caller's streamed copy ([`ScriptTracker::handle_history`], with this `tag`) or the
    /// script's next status change; a proof or transaction waits for the next accepted
    /// history.
    TooLarge {
        /// Script index.
        script: usize,
        /// The tag of the request.
        tag: u32,
    },
}

/// A server lie the tracker caught.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TrackerLie {
    /// The history is false in itself: its status does not match ([`STATUS_ATTEMPTS`]
    /// times in a row), it is not in canonical order at 1.6+, or it lists a txid twice.
    History(HistoryFault),
    /// A history, header, branch or transaction that could not be decoded.
    Malformed,
    /// A merkle proof for another height than the one asked.
    ProofHeight {
        /// The height the proof claims.
        claimed: u32,
    },
    /// The header proof does not reach the trusted root.
    HeaderProof(HeaderProofError),
    /// The merkle branch does not reach the header's merkle root.
    Merkle(MerkleError),
    /// The raw bytes are not a transaction.
    Tx(TxError),
    /// The raw transaction hashes to another txid.
    TxidMismatch {
        /// What the bytes hash to.
        got: Txid,
    },
    /// The transaction neither pays the script nor spends an output of its history that did.
    Unrelated,
    /// The server returned an error for a transaction in its own history.
    Refused,
}

/// Why a script could not be added.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TrackerError {
    /// The script table is full.
    Full,
    /// The script is longer than [`MAX_SCRIPT_LEN`].
    ScriptTooLong,
}

impl fmt::Display for TrackerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrackerError::Full => "no free script slot",
            TrackerError::ScriptTooLong => "script longer than the tracker's bound",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TrackerError {}

/// Progress counters of a tracker.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TrackerStats {
    /// Scripts whose history is not verified at the announced status.
    pub scripts_pending: usize,
    /// Transactions verified and reported.
    pub txs_done: usize,
    /// Transactions being verified.
    pub txs_pending: usize,
    /// Confirmed transactions above the checkpoint, waiting for a newer one.
    pub txs_waiting_for_checkpoint: usize,
    /// Tracker requests in flight.
    pub in_flight: usize,
    /// The checkpoint height set, if any.
    pub checkpoint_height: Option<u32>,
    /// Lowest height waiting for a newer checkpoint.
    pub lowest_waiting_height: Option<u32>,
}

/// Tracks scripts in the script table `S` and their transactions in the table `T`, both lent
/// by the caller ([`Slots`]: `[ScriptSlot; N]`, `&mut [TxSlot]`, or a growing `Vec`).
pub struct ScriptTracker<S, T> {
    scripts: S,
    txs: T,
    checkpoint: Option<(u32, MerkleNode)>,
    /// The server refused a `cp_height` proof: headers come from the caller.
    no_header_proofs: bool,
    in_flight: usize,
    max_in_flight: usize,
    /// Where the next poll starts looking for due transactions, so a long table is not
    /// scanned from its start for every request.
    cursor: usize,
    /// Transactions in [`TxState::Unproven`].
    unproven: usize,
    /// No transaction slot below this index is empty: where the search for one starts.
    free_from: usize,
    /// A history was accepted since [`Self::poll_event`] last found nothing to remove: only
    /// then is the table scanned for transactions that left their history.
    removals_due: bool,
}

/// A full session is back-pressure (try again after responses), not an error.
fn sent(r: Result<u64, RequestError>) -> Result<bool, RequestError> {
    match r {
        Ok(_) => Ok(true),
        Err(RequestError::TooManyInFlight | RequestError::OutputFull(_) | RequestError::Busy) => {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

fn tag(kind: u32, slot: usize) -> u32 {
    TAG_BASE | (kind << 20) | (slot as u32 & 0x000F_FFFF)
}

fn untag(tag: u32) -> Option<(u32, usize)> {
    (tag & 0xFF00_0000 == TAG_BASE).then_some(((tag >> 20) & 0xF, (tag & 0x000F_FFFF) as usize))
}

fn lied(script: usize, txid: Option<Txid>, lie: TrackerLie) -> Option<TrackerEvent> {
    Some(TrackerEvent::ServerLied { script, txid, lie })
}

impl<S: Slots<ScriptSlot>, T: Slots<TxSlot>> ScriptTracker<S, T> {
    /// A tracker over the caller's tables (unused slots: [`ScriptSlot::EMPTY`],
    /// [`TxSlot::EMPTY`]). Only the first [`MAX_SLOTS`] slots of each are used.
    pub fn new(scripts: S, txs: T) -> Self {
        ScriptTracker {
            scripts,
            txs,
            checkpoint: None,
            no_header_proofs: false,
            in_flight: 0,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            cursor: 0,
            unproven: 0,
            free_from: 0,
            removals_due: false,
        }
    }

    /// How many requests the tracker keeps in flight (at least 1; the session's `PENDING`
    /// bounds it too).
    pub fn set_max_in_flight(&mut self, n: usize) {
        self.max_in_flight = n.max(1);
    }

    fn script_table(&self) -> &[ScriptSlot] {
        let s = self.scripts.slots();
        s.get(..MAX_SLOTS).unwrap_or(s)
    }

    fn tx_table(&self) -> &[TxSlot] {
        let t = self.txs.slots();
        t.get(..MAX_SLOTS).unwrap_or(t)
    }

    fn tx_table_mut(&mut self) -> &mut [TxSlot] {
        let t = self.txs.slots_mut();
        let n = t.len().min(MAX_SLOTS);
        &mut t[..n]
    }

    fn tracked(&self, i: usize) -> Option<&Tracked> {
        self.script_table().get(i)?.0.as_ref()
    }

    fn tracked_mut(&mut self, i: usize) -> Option<&mut Tracked> {
        if i >= MAX_SLOTS {
            return None;
        }
        self.scripts.slots_mut().get_mut(i)?.0.as_mut()
    }

    fn entries(&self) -> impl Iterator<Item = &TxEntry> {
        self.tx_table().iter().filter_map(entry)
    }

    fn entries_mut(&mut self) -> impl Iterator<Item = &mut TxEntry> {
        self.tx_table_mut().iter_mut().filter_map(entry_mut)
    }

    /// A free transaction slot (the storage grown if it can); its index.
    fn free_tx_slot(&mut self) -> Option<usize> {
        let from = self.free_from;
        let free = self.tx_table().get(from..).and_then(|rest| {
            rest.iter()
                .position(|s| matches!(s.0, Slot::Empty))
                .map(|j| from + j)
        });
        if let Some(j) = free {
            // The caller fills it at once.
            self.free_from = j;
            return Some(j);
        }
        let n = self.txs.slots().len();
        let grown = (n < MAX_SLOTS && self.txs.grow()).then_some(n);
        if grown.is_some() {
            self.free_from = n;
        }
        grown
    }

    /// Starts tracking a script; returns its index.
    ///
    /// # Errors
    /// [`TrackerError::Full`] when the script table is full and cannot grow;
    /// [`TrackerError::ScriptTooLong`] above [`MAX_SCRIPT_LEN`].
    pub fn add(&mut self, script: ScriptRef<'_>) -> Result<usize, TrackerError> {
        let (bytes, len, hash) = match script {
            ScriptRef::Script(s) => {
                let len = u8::try_from(s.len())
                    .ok()
                    .filter(|l| usize::from(*l) <= MAX_SCRIPT_LEN);
                let len = len.ok_or(TrackerError::ScriptTooLong)?;
                let mut b = [0u8; MAX_SCRIPT_LEN];
                b[..s.len()].copy_from_slice(s);
                (b, len, script_hash(s))
            }
            ScriptRef::Hash(h) => ([0u8; MAX_SCRIPT_LEN], 0, h),
        };
        // Script indices are kept in a u16 by every transaction slot.
        let limit = MAX_SLOTS.min(usize::from(u16::MAX) + 1);
        let free = self.script_table().iter().position(|s| s.0.is_none());
        let i = match free {
            Some(i) if i < limit => i,
            _ => {
                let n = self.scripts.slots().len();
                if n >= limit || !self.scripts.grow() {
                    return Err(TrackerError::Full);
                }
                n
            }
        };
        let slot = self
            .scripts
            .slots_mut()
            .get_mut(i)
            .ok_or(TrackerError::Full)?;
        *slot = ScriptSlot(Some(Tracked {
            script: bytes,
            script_len: len,
            hash,
            state: ScriptState::New,
            announced: None,
            verified: None,
            mismatches: 0,
            raced: false,
            races: 0,
            generation: 0,
            all_read: false,
        }));
        Ok(i)
    }

    /// Sets the checkpoint that header proofs must reach: `root` of the block hashes
    /// `0..=cp_height` (from [`crate::accumulator::MerkleAccumulator`] over verified headers,
    /// or a root shipped with the application). Confirmed transactions above `cp_height` wait.
    pub fn set_checkpoint(&mut self, cp_height: u32, root: MerkleNode) {
        self.checkpoint = Some((cp_height, root));
    }

    /// A header the caller verified (from its header chain, e.g. [`super::headers::HeaderSync`]
    /// or a period checked between checkpoints): every transaction confirmed at `height` that
    /// waits for its header is proven against it, without a `cp_height` proof. This is how
    /// the tracker works with servers that have no `cp_height` (electrs), and below a
    /// checkpoint the caller trusts.
    pub fn provide_header(&mut self, height: u32, header: &[u8; HEADER_SIZE]) {
        let parsed = Header::from_bytes(header);
        let block_hash = parsed.block_hash();
        for t in self.entries_mut() {
            if t.height == TxHeight::Confirmed(height) && t.state == TxState::NeedHeader {
                t.state = TxState::NeedMerkle {
                    merkle_root: parsed.merkle_root,
                    block_hash,
                };
                t.block_time = parsed.time;
            }
        }
    }

    /// The lowest height whose header the tracker waits for from the caller (see
    /// [`ScriptTracker::provide_header`]): when the server refused `cp_height` proofs, or no
    /// checkpoint is set.
    pub fn header_wanted(&self) -> Option<u32> {
        self.headers_wanted().min()
    }

    /// Every height whose header the tracker waits for from the caller, as
    /// [`ScriptTracker::header_wanted`], once per transaction waiting (unsorted): to fetch
    /// them together.
    pub fn headers_wanted(&self) -> impl Iterator<Item = u32> + '_ {
        let from_caller = self.no_header_proofs || self.checkpoint.is_none();
        self.entries()
            .filter(move |t| from_caller && t.state == TxState::NeedHeader)
            .filter_map(|t| match t.height {
                TxHeight::Confirmed(h) => Some(h),
                _ => None,
            })
    }

    /// The chain reorganised from `fork_height` (the first height whose block changed; a
    /// header sync reports it): every transaction confirmed at or above it is verified again
    /// against the new blocks — its status may not change at all if it was mined again at the
    /// same height — and reported again. Set the new checkpoint first.
    pub fn reorg(&mut self, fork_height: u32) {
        let mut unproven = self.unproven;
        for t in self.entries_mut() {
            if matches!(t.height, TxHeight::Confirmed(h) if h >= fork_height) {
                if matches!(t.state, TxState::Unproven { .. }) {
                    unproven -= 1;
                }
                t.reset(TxState::NeedHeader);
            }
        }
        self.unproven = unproven;
    }

    /// The connection is gone: requests in flight will never be answered. Every script is
    /// subscribed again on the next session (a history matching the verified status is not
    /// fetched again), everything in flight is asked again, and the next server is asked for
    /// `cp_height` proofs again.
    pub fn reset_connection(&mut self) {
        self.in_flight = 0;
        self.no_header_proofs = false;
        let n = self.script_table().len();
        for i in 0..n {
            if let Some(s) = self.tracked_mut(i) {
                s.state = ScriptState::New;
            }
        }
        for slot in self.tx_table_mut() {
            match &mut slot.0 {
                Slot::Retired => slot.0 = Slot::Empty,
                Slot::Tx(t) => {
                    t.state = unfetched(t.state);
                    t.stale_answer = false;
                }
                _ => {}
            }
        }
        self.free_from = 0;
    }

    /// Status notifications were lost (a reader too slow for its queue): every script's
    /// status is asked again, and a history fetched where it changed.
    pub fn statuses_missed(&mut self) {
        let n = self.script_table().len();
        for i in 0..n {
            if let Some(s) = self.tracked_mut(i)
                && matches!(
                    s.state,
                    ScriptState::Idle | ScriptState::Backoff { .. } | ScriptState::AwaitingStream
                )
            {
                s.state = ScriptState::New;
            }
        }
    }

    /// The script hash of script `i`.
    pub fn script_hash(&self, i: usize) -> Option<ScriptHash> {
        self.tracked(i).map(|s| s.hash)
    }

    /// The last verified status of script `i` (`Some(None)`: verified empty).
    pub fn verified_status(&self, i: usize) -> Option<Option<Status>> {
        self.tracked(i).and_then(|s| s.verified)
    }

    /// Where a verified transaction of script `i` stands in the chain: for a confirmed one,
    /// its height and the position in its block fixed by the merkle proof. Sort a history by
    /// it to show it in chain order (a parent before its child in the same block); `None` for
    /// a mempool or unverified one.
    pub fn chain_position(&self, i: usize, txid: &Txid) -> Option<ChainPosition> {
        let t = self
            .entries()
            .find(|t| usize::from(t.script) == i && t.txid == *txid)?;
        match (t.height, t.state) {
            (
                TxHeight::Confirmed(height),
                TxState::Done {
                    block_hash: Some(_),
                },
            ) => Some(ChainPosition::Confirmed { height, pos: t.pos }),
            _ => None,
        }
    }

    /// Reported transactions of script `i`: txid, height and, when confirmed, the verified
    /// block it is proven into ([`ProvenIn`]), in table order (see [`ScriptTracker::chain_position`] for chain order).
    pub fn history(&self, i: usize) -> impl Iterator<Item = HistoryEntry> + '_ {
        self.entries()
            .filter(move |t| usize::from(t.script) == i)
            .filter_map(|t| match t.state {
                TxState::Done { block_hash } => Some(HistoryEntry {
                    txid: t.txid,
                    height: t.height,
                    block: block_hash.map(|hash| ProvenIn {
                        hash,
                        pos: t.pos,
                        time: t.block_time,
                    }),
                }),
                _ => None,
            })
    }

    /// Progress counters.
    pub fn stats(&self) -> TrackerStats {
        let cp = self.checkpoint.map(|(h, _)| h);
        let mut st = TrackerStats {
            in_flight: self.in_flight,
            checkpoint_height: cp,
            ..TrackerStats::default()
        };
        st.scripts_pending = self
            .script_table()
            .iter()
            .filter_map(|s| s.0.as_ref())
            .filter(|s| s.state != ScriptState::Idle || s.verified != s.announced)
            .count();
        for t in self.entries() {
            match (t.state, t.height) {
                (TxState::Done { .. }, _) => st.txs_done += 1,
                (TxState::NeedHeader, TxHeight::Confirmed(h)) if cp.is_none_or(|cp| h > cp) => {
                    st.txs_waiting_for_checkpoint += 1;
                    st.lowest_waiting_height =
                        Some(st.lowest_waiting_height.map_or(h, |l| l.min(h)));
                }
                _ => st.txs_pending += 1,
            }
        }
        st
    }

    /// Whether every script's verified status equals its announced one and every transaction
    /// is reported.
    pub fn is_synced(&self) -> bool {
        self.script_table()
            .iter()
            .filter_map(|s| s.0.as_ref())
            .all(|s| s.state == ScriptState::Idle && s.verified == s.announced)
            && self
                .entries()
                .all(|t| matches!(t.state, TxState::Done { .. }))
    }

    /// The earliest time (on the caller's clock) [`Self::poll`] has something to do that
    /// no answer will trigger: a history asked again after a status mismatch.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.script_table()
            .iter()
            .filter_map(|s| match s.0.as_ref()?.state {
                ScriptState::Backoff { since: Some(t) } => Some(t + STATUS_RETRY),
                _ => None,
            })
            .min()
    }

    /// Queues what is due on `sink` (subscriptions, histories, proofs, transactions). Stops
    /// early, without error, when the sink has no room; call again after answers.
    ///
    /// # Errors
    /// An error of the sink other than back-pressure (see [`RequestSink::request`]).
    pub fn poll(&mut self, now: Instant, sink: &mut impl RequestSink) -> Result<(), RequestError> {
        if !sink.is_ready() {
            return Ok(());
        }
        self.poll_scripts(now, sink)?;
        self.release_unproven();
        self.poll_txs(now, sink)
    }

    fn poll_scripts(
        &mut self,
        now: Instant,
        sink: &mut impl RequestSink,
    ) -> Result<(), RequestError> {
        let n = self.script_table().len();
        for i in 0..n {
            let full = self.in_flight >= self.max_in_flight;
            let Some(s) = self.tracked_mut(i) else {
                continue;
            };
            // The retry timer moves even when the window is full, so a deadline the caller
            // sleeps to is never left in the past.
            if let ScriptState::Backoff { since } = s.state {
                match since {
                    None => s.state = ScriptState::Backoff { since: Some(now) },
                    // The status announced may be the stale one: both are asked again.
                    Some(t) if now - t >= STATUS_RETRY => {
                        s.state = ScriptState::New;
                    }
                    Some(_) => {}
                }
            }
            if full {
                continue;
            }
            let (kind, next) = match s.state {
                ScriptState::New => (KIND_SUBSCRIBE, ScriptState::Subscribing),
                ScriptState::NeedHistory => (KIND_HISTORY, ScriptState::FetchingHistory),
                _ => continue,
            };
            let spk = &s.script[..usize::from(s.script_len)];
            let request = match (kind, s.script_len) {
                (KIND_SUBSCRIBE, 0) => Request::ScriptHashSubscribe(s.hash),
                (KIND_SUBSCRIBE, _) => Request::ScriptSubscribe(spk),
                (_, 0) => Request::ScriptHashGetHistory(s.hash),
                _ => Request::ScriptGetHistory(spk),
            };
            if !sent(sink.request(now, &request, tag(kind, i)))? {
                return Ok(());
            }
            s.raced = false;
            s.state = next;
            self.in_flight += 1;
        }
        Ok(())
    }

    fn poll_txs(&mut self, now: Instant, sink: &mut impl RequestSink) -> Result<(), RequestError> {
        let checkpoint = self.checkpoint;
        let no_header_proofs = self.no_header_proofs;
        let n = self.tx_table().len();
        // The cursor moves as requests are sent; the scan goes once round from where it was.
        let start = self.cursor;
        for k in 0..n {
            if self.in_flight >= self.max_in_flight {
                return Ok(());
            }
            let j = (start + k) % n;
            let Some(t) = self.tx_table_mut().get_mut(j).and_then(entry_mut) else {
                continue;
            };
            let Some((request, kind, next)) = due(t, checkpoint, no_header_proofs) else {
                continue;
            };
            if !sent(sink.request(now, &request, tag(kind, j)))? {
                return Ok(());
            }
            t.state = next;
            self.in_flight += 1;
            self.cursor = j + 1;
        }
        Ok(())
    }

    /// Every transaction of a history was read: those that spent no funding output known when
    /// they were read are looked at once more, now that all are known.
    fn release_unproven(&mut self) {
        if self.unproven == 0 {
            return;
        }
        // One pass marks the scripts with a transaction not read yet, one releases the rest.
        let scripts = self.script_table().len();
        for i in 0..scripts {
            if let Some(s) = self.tracked_mut(i) {
                s.all_read = true;
            }
        }
        let n = self.tx_table().len();
        for j in 0..n {
            let Some(t) = self.tx_table().get(j).and_then(entry).copied() else {
                continue;
            };
            if let Some(s) = self.tracked_mut(usize::from(t.script))
                && t.generation == s.generation
                && !t.state.was_read()
            {
                s.all_read = false;
            }
        }
        for j in 0..n {
            let Some(t) = self.tx_table().get(j).and_then(entry).copied() else {
                continue;
            };
            let TxState::Unproven { block_hash } = t.state else {
                continue;
            };
            let all_read = self
                .tracked(usize::from(t.script))
                .is_some_and(|s| s.all_read);
            if all_read && let Some(t) = self.tx_table_mut().get_mut(j).and_then(entry_mut) {
                t.state = TxState::NeedTx {
                    block_hash,
                    last_look: true,
                };
                self.unproven -= 1;
            }
        }
    }

    /// Consumes an event if it belongs to the tracker (its tags, or a script notification) and
    /// returns what it verified, if anything. `version` is the session's negotiated version.
    /// Transactions that left a history are reported by [`Self::poll_event`]: drain it after
    /// each event.
    pub fn handle_event(
        &mut self,
        version: ProtocolVersion,
        event: &Event<'_>,
    ) -> Option<TrackerEvent> {
        match *event {
            Event::Notification(Notification::ScriptStatus {
                script_hash,
                status,
            }) => {
                // Every slot of the script (it may have been added twice).
                let n = self.script_table().len();
                for i in 0..n {
                    let Some(s) = self.tracked_mut(i).filter(|s| s.hash == script_hash) else {
                        continue;
                    };
                    s.announced = Some(status);
                    s.raced |= s.state == ScriptState::FetchingHistory;
                    let waiting = matches!(
                        s.state,
                        ScriptState::Idle
                            | ScriptState::Backoff { .. }
                            | ScriptState::AwaitingStream
                    );
                    if s.verified != Some(status) && waiting {
                        s.state = ScriptState::NeedHistory;
                    }
                }
                None
            }
            Event::Response { tag, result, .. } => {
                let (kind, slot) = self.answered(tag)?;
                match kind {
                    KIND_SUBSCRIBE => self.on_subscribed(slot, result),
                    KIND_HISTORY => {
                        if response::history(result).is_err() {
                            return lied(slot, None, TrackerLie::Malformed);
                        }
                        let items = || {
                            response::history(result)
                                .into_iter()
                                .flatten()
                                .map(|i| i.map(|i| (i.txid, i.height)).map_err(drop))
                        };
                        self.on_history(version, slot, items)
                    }
                    KIND_HEADER => self.on_header(slot, result),
                    KIND_MERKLE => self.on_merkle(slot, result),
                    KIND_TX => self.on_tx(slot, result),
                    _ => None,
                }
            }
            // Longer than the session's line buffer: asking again would fetch the same bytes
            // again. A history waits for the caller's streamed copy or the next status change;
            // a transaction's proof or bytes wait for the next accepted history.
            Event::ResponseTooLarge { tag, .. } => {
                let (kind, slot) = self.answered(tag)?;
                let script = match kind {
                    KIND_SUBSCRIBE | KIND_HISTORY => {
                        let s = self.tracked_mut(slot)?;
                        s.state = if kind == KIND_HISTORY {
                            ScriptState::AwaitingStream
                        } else {
                            ScriptState::Idle
                        };
                        slot
                    }
                    _ => {
                        let t = self.tx_table_mut().get_mut(slot).and_then(entry_mut)?;
                        t.state = TxState::Parked;
                        usize::from(t.script)
                    }
                };
                Some(TrackerEvent::TooLarge { script, tag })
            }
            Event::ServerError { tag, .. } | Event::TimedOut { tag, .. } => {
                let (kind, slot) = self.answered(tag)?;
                let timed_out = matches!(event, Event::TimedOut { .. });
                self.on_failure(kind, slot, timed_out)
            }
            _ => None,
        }
    }

    /// The answer to the tracker's history request `tag`, fetched another way (streamed, by a
    /// caller whose line buffer it did not fit: [`TrackerEvent::TooLarge`]); checked exactly
    /// as a history answered on the session.
    pub fn handle_history(
        &mut self,
        version: ProtocolVersion,
        tag: u32,
        items: &[HistoryItem],
    ) -> Option<TrackerEvent> {
        let (kind, slot) = untag(tag)?;
        if kind != KIND_HISTORY {
            return None;
        }
        let s = self.tracked_mut(slot)?;
        match s.state {
            // Asked and answered another way: the request is over.
            ScriptState::FetchingHistory => self.in_flight = self.in_flight.saturating_sub(1),
            // Its answer was too large and counted then.
            ScriptState::AwaitingStream => s.state = ScriptState::FetchingHistory,
            _ => return None,
        }
        self.on_history(version, slot, || {
            items.iter().map(|i| Ok((i.txid, i.height)))
        })
    }

    /// Counts an answer to one of the tracker's requests; frees a retired slot. The kind and
    /// slot of a live request.
    fn answered(&mut self, tag: u32) -> Option<(u32, usize)> {
        let (kind, slot) = untag(tag)?;
        self.in_flight = self.in_flight.saturating_sub(1);
        if kind >= KIND_HEADER {
            // The answered entry is usually due next (branch after header, bytes after
            // branch): the next poll looks there first.
            self.cursor = slot;
            if let Some(t) = self.tx_table_mut().get_mut(slot).and_then(entry_mut)
                && t.stale_answer
            {
                t.stale_answer = false;
                return None;
            }
        }
        if kind >= KIND_HEADER
            && let Some(s) = self.tx_table_mut().get_mut(slot)
            && matches!(s.0, Slot::Retired)
        {
            s.0 = Slot::Empty;
            self.free_from = self.free_from.min(slot);
            return None;
        }
        Some((kind, slot))
    }

    fn on_failure(&mut self, kind: u32, slot: usize, timed_out: bool) -> Option<TrackerEvent> {
        match kind {
            KIND_SUBSCRIBE | KIND_HISTORY => {
                let s = self.tracked_mut(slot)?;
                s.state = if kind == KIND_SUBSCRIBE {
                    ScriptState::New
                } else {
                    ScriptState::NeedHistory
                };
                None
            }
            // A refused `cp_height` proof is an optional method missing (electrs), never a
            // lie: headers come from the caller from now on.
            KIND_HEADER => {
                let t = self.tx_table_mut().get_mut(slot).and_then(entry_mut)?;
                if !t.state.is_fetching() {
                    return None;
                }
                t.state = TxState::NeedHeader;
                let height = t.height;
                if timed_out {
                    return None;
                }
                self.no_header_proofs = true;
                match height {
                    TxHeight::Confirmed(height) => Some(TrackerEvent::HeaderWanted { height }),
                    _ => None,
                }
            }
            // A timeout is asked again. An error for a confirmed transaction of the server's
            // own history is a refusal to prove it; a mempool transaction may have been
            // evicted or replaced since the history was sent: it waits for the next history.
            _ => {
                let t = self.tx_table_mut().get_mut(slot).and_then(entry_mut)?;
                if !t.state.is_fetching() {
                    return None;
                }
                if timed_out {
                    t.state = unfetched(t.state);
                    return None;
                }
                if !matches!(t.height, TxHeight::Confirmed(_)) {
                    t.state = TxState::Parked;
                    return None;
                }
                lied(usize::from(t.script), Some(t.txid), TrackerLie::Refused)
            }
        }
    }

    /// Removals found while accepting a history, one at a time.
    pub fn poll_event(&mut self) -> Option<TrackerEvent> {
        if !self.removals_due {
            return None;
        }
        let n = self.tx_table().len();
        for j in 0..n {
            let Some(t) = self.tx_table().get(j).and_then(entry).copied() else {
                continue;
            };
            let current = self.tracked(usize::from(t.script));
            let gone = current.is_none_or(|s| t.generation != s.generation);
            if !gone {
                continue;
            }
            self.remove(j);
            if t.reported {
                return Some(TrackerEvent::Removed {
                    script: usize::from(t.script),
                    txid: t.txid,
                });
            }
        }
        self.removals_due = false;
        None
    }

    /// Frees transaction slot `j` (retired if a request for it is in flight) and the funding
    /// outputs read from it.
    fn remove(&mut self, j: usize) {
        let Some(slot) = self.tx_table_mut().get_mut(j) else {
            return;
        };
        let Slot::Tx(t) = slot.0 else {
            return;
        };
        let retired = t.state.is_fetching() || t.stale_answer;
        slot.0 = if retired { Slot::Retired } else { Slot::Empty };
        if !retired {
            self.free_from = self.free_from.min(j);
        }
        if matches!(t.state, TxState::Unproven { .. }) {
            self.unproven -= 1;
        }
        self.forget_funding(t.script, &t.txid);
    }

    fn forget_funding(&mut self, script: u16, txid: &Txid) {
        for slot in self.tx_table_mut() {
            if let Slot::Funded {
                script: s,
                outpoint,
            } = slot.0
                && s == script
                && outpoint.txid == *txid
            {
                slot.0 = Slot::Empty;
            }
        }
        self.free_from = 0;
    }
}
