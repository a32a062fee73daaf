//! The script tracker: verified history of a set of scripts.
//!
//! For each script: subscribe; when the status changes, fetch the history, recompute the
//! status from it (the server's order, and at 1.6+ the canonical mempool order) and accept it
//! only if it matches what the server announced; then, for every new transaction, fetch and
//! verify its block header (`cp_height` proof against a root the caller trusts), its merkle
//! branch against that header, and its raw bytes against its txid. Only then is it reported:
//! [`TrackerEvent::Confirmed`] (with height and block hash) or [`TrackerEvent::Unconfirmed`];
//! transactions that leave a history are reported [`TrackerEvent::Removed`]. Nothing
//! unverified is reported as confirmed.
//!
//! Memory is fixed: `S` scripts and `T` transactions in all (const generics; see the bounds
//! below). Requests carry tags in [`TAG_BASE`]`..`[`TAG_BASE`]` + 0x00FF_FFFF`.

use core::fmt;

use crate::accumulator::{HeaderProofError, verify_header_proof};
use crate::hash::{BlockHash, MerkleNode, ScriptHash, Status, Txid};
use crate::header::Header;
use crate::history::{ChainPosition, HistoryCheck};
use crate::merkle::{MerkleError, verify_tx_branch};
use crate::rpc::ProtocolVersion;
use crate::script::{TxHeight, script_hash};
use crate::session::{Event, Notification, Request, RequestError, Session, response};
use crate::tx::TxidHasher;

/// Longest scriptPubKey tracked (an uncompressed P2PK is 67 bytes).
pub const MAX_SCRIPT_LEN: usize = 80;
/// Tags of the tracker's requests: `TAG_BASE | kind << 20 | slot`.
pub const TAG_BASE: u32 = 0x5400_0000;
/// Requests the tracker keeps in flight by default (it leaves room for other engines); see
/// [`ScriptTracker::set_max_in_flight`]. ElectrumX holds small replies up to ~1 s, so this
/// bounds throughput to about this many requests per second.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;
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
    /// raw bytes checked.
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
    /// A mempool transaction whose raw bytes hash to its txid.
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
    /// `cp_height` proofs (electrs): give the tracker the verified header at `height` from
    /// the caller's header chain ([`ScriptTracker::provide_header`]). Not a lie.
    HeaderWanted {
        /// The block height.
        height: u32,
    },
    /// The server said something false; stop trusting it.
    ServerLied {
        /// Script index.
        script: usize,
        /// What was false.
        lie: TrackerLie,
    },
    /// A fixed-size table is full: the bound of `T` (or `S`) was reached; or a response for
    /// the script (its history, or a transaction or proof of it) was longer than the
    /// session's line buffer ([`Event::ResponseTooLarge`]): that item is not asked again (a
    /// history is, at the script's next status change).
    Full {
        /// Script index.
        script: usize,
    },
}

/// A server lie the tracker caught.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TrackerLie {
    /// The history does not hash to the status the server announced (twice in a row).
    StatusMismatch,
    /// At 1.6+ the mempool part is not in canonical order.
    NotCanonical,
    /// A history, header, branch or transaction that could not be decoded.
    Malformed,
    /// The header proof does not reach the trusted root.
    HeaderProof(HeaderProofError),
    /// The merkle branch does not reach the header's merkle root.
    Merkle(MerkleError),
    /// The raw transaction does not hash to the txid.
    TxidMismatch,
    /// The server returned an error for a transaction in its own history.
    Refused,
    /// The history lists the same transaction twice.
    DuplicateTxid,
}

/// Why a script could not be added.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TrackerError {
    /// All `S` script slots are used.
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

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ScriptState {
    /// Subscribe next.
    New,
    Subscribing,
    /// Status differs from the verified one: fetch the history.
    NeedHistory,
    FetchingHistory,
    Idle,
}

#[derive(Clone, Copy, Debug)]
struct Tracked {
    script: [u8; MAX_SCRIPT_LEN],
    script_len: u8,
    hash: ScriptHash,
    state: ScriptState,
    /// Status last announced by the server.
    announced: Option<Option<Status>>,
    /// Status of the last verified history.
    verified: Option<Option<Status>>,
    mismatches: u8,
    /// Generation of the last accepted history, to find transactions that left it.
    generation: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TxState {
    /// Confirmed: fetch and verify the header first.
    NeedHeader,
    /// A `cp_height` proof asked against this checkpoint (kept: the checkpoint may move while
    /// the request is in flight, and the old root is still a verified one).
    FetchingHeader {
        cp_height: u32,
        root: MerkleNode,
    },
    /// Header verified: fetch the merkle branch.
    NeedMerkle {
        merkle_root: MerkleNode,
        block_hash: BlockHash,
    },
    FetchingMerkle {
        merkle_root: MerkleNode,
        block_hash: BlockHash,
    },
    /// Fetch the raw transaction.
    NeedTx {
        block_hash: Option<BlockHash>,
    },
    FetchingTx {
        block_hash: Option<BlockHash>,
    },
    /// Reported.
    Done {
        block_hash: Option<BlockHash>,
    },
}

#[derive(Clone, Copy, Debug)]
struct TxEntry {
    script: u16,
    txid: Txid,
    height: TxHeight,
    state: TxState,
    generation: u32,
    /// Reported to the caller at least once, so its disappearance must be reported too.
    reported: bool,
    /// Position in its block, fixed by the verified merkle proof (0 until then).
    pos: u32,
}

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

/// Tracks up to `S` scripts and `T` transactions in all.
pub struct ScriptTracker<const S: usize, const T: usize> {
    scripts: [Option<Tracked>; S],
    txs: [Option<TxEntry>; T],
    checkpoint: Option<(u32, MerkleNode)>,
    /// The server refused a `cp_height` proof: headers come from the caller.
    no_header_proofs: bool,
    in_flight: usize,
    max_in_flight: usize,
}

impl<const S: usize, const T: usize> Default for ScriptTracker<S, T> {
    fn default() -> Self {
        Self::new()
    }
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

impl<const S: usize, const T: usize> ScriptTracker<S, T> {
    /// An empty tracker.
    pub fn new() -> Self {
        ScriptTracker {
            scripts: [None; S],
            txs: [None; T],
            checkpoint: None,
            no_header_proofs: false,
            in_flight: 0,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }

    /// How many requests the tracker keeps in flight (at least 1; the session's `PENDING`
    /// bounds it too).
    pub fn set_max_in_flight(&mut self, n: usize) {
        self.max_in_flight = n.max(1);
    }

    /// Starts tracking a script; returns its index.
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
        let (i, slot) = self
            .scripts
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.is_none())
            .ok_or(TrackerError::Full)?;
        *slot = Some(Tracked {
            script: bytes,
            script_len: len,
            hash,
            state: ScriptState::New,
            announced: None,
            verified: None,
            mismatches: 0,
            generation: 0,
        });
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
    pub fn provide_header(&mut self, height: u32, header: &[u8; crate::header::HEADER_SIZE]) {
        let parsed = Header::from_bytes(header);
        let block_hash = parsed.block_hash();
        for t in self.txs.iter_mut().flatten() {
            if t.height == TxHeight::Confirmed(height) && t.state == TxState::NeedHeader {
                t.state = TxState::NeedMerkle {
                    merkle_root: parsed.merkle_root,
                    block_hash,
                };
            }
        }
    }

    /// The lowest height whose header the tracker waits for from the caller (see
    /// [`ScriptTracker::provide_header`]): when the server refused `cp_height` proofs, or no
    /// checkpoint is set.
    pub fn header_wanted(&self) -> Option<u32> {
        if !self.no_header_proofs && self.checkpoint.is_some() {
            return None;
        }
        self.txs
            .iter()
            .flatten()
            .filter(|t| t.state == TxState::NeedHeader)
            .filter_map(|t| match t.height {
                TxHeight::Confirmed(h) => Some(h),
                _ => None,
            })
            .min()
    }

    /// The chain reorganised from `fork_height` (the first height whose block changed; a
    /// header sync reports it): every transaction confirmed at or above it is verified again
    /// against the new blocks — its status may not change at all if it was mined again at the
    /// same height — and reported again. Set the new checkpoint first.
    pub fn reorg(&mut self, fork_height: u32) {
        for t in self.txs.iter_mut().flatten() {
            if matches!(t.height, TxHeight::Confirmed(h) if h >= fork_height) {
                t.state = TxState::NeedHeader;
            }
        }
    }

    /// The script hash of script `i`.
    pub fn script_hash(&self, i: usize) -> Option<ScriptHash> {
        self.scripts.get(i).copied().flatten().map(|s| s.hash)
    }

    /// The last verified status of script `i` (`Some(None)`: verified empty).
    pub fn verified_status(&self, i: usize) -> Option<Option<Status>> {
        self.scripts
            .get(i)
            .copied()
            .flatten()
            .and_then(|s| s.verified)
    }

    /// Where a verified transaction of script `i` stands in the chain: for a confirmed one,
    /// its height and the position in its block fixed by the merkle proof. Sort a history by
    /// it to show it in chain order (a parent before its child in the same block); `None` for
    /// a mempool or unverified one.
    pub fn chain_position(&self, i: usize, txid: &Txid) -> Option<ChainPosition> {
        let t = self
            .txs
            .iter()
            .flatten()
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

    /// Reported transactions of script `i`: txid, height and (confirmed) block hash, in table
    /// order (see [`ScriptTracker::chain_position`] for chain order).
    pub fn history(
        &self,
        i: usize,
    ) -> impl Iterator<Item = (Txid, TxHeight, Option<BlockHash>)> + '_ {
        self.txs
            .iter()
            .flatten()
            .filter(move |t| usize::from(t.script) == i)
            .filter_map(|t| match t.state {
                TxState::Done { block_hash } => Some((t.txid, t.height, block_hash)),
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
            .scripts
            .iter()
            .flatten()
            .filter(|s| s.state != ScriptState::Idle || s.verified != s.announced)
            .count();
        for t in self.txs.iter().flatten() {
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
        self.scripts
            .iter()
            .flatten()
            .all(|s| s.state == ScriptState::Idle && s.verified == s.announced)
            && self
                .txs
                .iter()
                .flatten()
                .all(|t| matches!(t.state, TxState::Done { .. }))
    }

    /// Queues what is due on the session (subscriptions, histories, proofs, transactions).
    /// Stops early, without error, when the session has no room; call again after responses.
    pub fn poll<const L: usize, const O: usize, const P: usize>(
        &mut self,
        now: u64,
        session: &mut Session<L, O, P>,
    ) -> Result<(), RequestError> {
        if !session.is_ready() {
            return Ok(());
        }
        for i in 0..S {
            if self.in_flight >= self.max_in_flight {
                return Ok(());
            }
            let Some(s) = self.scripts[i] else { continue };
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
            if !sent(session.request(now, &request, tag(kind, i)))? {
                return Ok(());
            }
            self.in_flight += 1;
            if let Some(s) = &mut self.scripts[i] {
                s.state = next;
            }
        }
        for j in 0..T {
            if self.in_flight >= self.max_in_flight {
                return Ok(());
            }
            let Some(t) = self.txs[j] else { continue };
            let (request, kind, next) = match t.state {
                TxState::NeedHeader => {
                    let (TxHeight::Confirmed(height), Some((cp, root))) =
                        (t.height, self.checkpoint)
                    else {
                        continue;
                    };
                    if height > cp || self.no_header_proofs {
                        continue;
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
                        continue;
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
                TxState::NeedTx { block_hash } => (
                    Request::TransactionGet(t.txid),
                    KIND_TX,
                    TxState::FetchingTx { block_hash },
                ),
                _ => continue,
            };
            if !sent(session.request(now, &request, tag(kind, j)))? {
                return Ok(());
            }
            self.in_flight += 1;
            if let Some(t) = &mut self.txs[j] {
                t.state = next;
            }
        }
        Ok(())
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
                let s = self
                    .scripts
                    .iter_mut()
                    .flatten()
                    .find(|s| s.hash == script_hash)?;
                s.announced = Some(status);
                if s.verified != Some(status) && s.state == ScriptState::Idle {
                    s.state = ScriptState::NeedHistory;
                }
                None
            }
            Event::Response { tag, result, .. } => {
                let (kind, slot) = untag(tag)?;
                self.in_flight = self.in_flight.saturating_sub(1);
                match kind {
                    KIND_SUBSCRIBE => self.on_subscribed(slot, result),
                    KIND_HISTORY => self.on_history(version, slot, result),
                    KIND_HEADER => self.on_header(slot, result),
                    KIND_MERKLE => self.on_merkle(slot, result),
                    KIND_TX => self.on_tx(slot, result),
                    _ => None,
                }
            }
            // Longer than the session's line buffer: asking again would fetch the same bytes
            // again, so the item is left as it is and the bound reported.
            Event::ResponseTooLarge { tag, .. } => {
                let (kind, slot) = untag(tag)?;
                self.in_flight = self.in_flight.saturating_sub(1);
                let script = match kind {
                    KIND_SUBSCRIBE | KIND_HISTORY => {
                        let s = self.scripts.get_mut(slot)?.as_mut()?;
                        s.state = ScriptState::Idle;
                        slot
                    }
                    _ => usize::from(self.txs.get(slot)?.as_ref()?.script),
                };
                Some(TrackerEvent::Full { script })
            }
            Event::ServerError { tag, .. } | Event::TimedOut { tag, .. } => {
                let (kind, slot) = untag(tag)?;
                self.in_flight = self.in_flight.saturating_sub(1);
                let timed_out = matches!(event, Event::TimedOut { .. });
                match kind {
                    KIND_SUBSCRIBE | KIND_HISTORY => {
                        let s = self.scripts.get_mut(slot)?.as_mut()?;
                        s.state = if kind == KIND_SUBSCRIBE {
                            ScriptState::New
                        } else {
                            ScriptState::NeedHistory
                        };
                        None
                    }
                    // A refused `cp_height` proof is an optional method missing (electrs),
                    // never a lie: headers come from the caller from now on.
                    KIND_HEADER => {
                        let t = self.txs.get_mut(slot)?.as_mut()?;
                        t.state = TxState::NeedHeader;
                        if timed_out {
                            return None;
                        }
                        self.no_header_proofs = true;
                        match t.height {
                            TxHeight::Confirmed(height) => {
                                Some(TrackerEvent::HeaderWanted { height })
                            }
                            _ => None,
                        }
                    }
                    // A timeout is asked again; an error for a transaction of the server's
                    // own history is a refusal to prove it.
                    _ => {
                        let t = self.txs.get_mut(slot)?.as_mut()?;
                        if timed_out {
                            t.state = match t.state {
                                TxState::FetchingMerkle {
                                    merkle_root,
                                    block_hash,
                                } => TxState::NeedMerkle {
                                    merkle_root,
                                    block_hash,
                                },
                                TxState::FetchingTx { block_hash } => {
                                    TxState::NeedTx { block_hash }
                                }
                                other => other,
                            };
                            return None;
                        }
                        Some(TrackerEvent::ServerLied {
                            script: usize::from(t.script),
                            lie: TrackerLie::Refused,
                        })
                    }
                }
            }
            _ => None,
        }
    }

    /// Removals and overflows found while accepting a history, one at a time.
    pub fn poll_event(&mut self) -> Option<TrackerEvent> {
        for j in 0..T {
            let Some(t) = self.txs[j] else { continue };
            let Some(s) = self.scripts.get(usize::from(t.script)).copied().flatten() else {
                self.txs[j] = None;
                continue;
            };
            if t.generation != s.generation && s.state != ScriptState::FetchingHistory {
                self.txs[j] = None;
                if t.reported {
                    return Some(TrackerEvent::Removed {
                        script: usize::from(t.script),
                        txid: t.txid,
                    });
                }
            }
        }
        None
    }

    fn on_subscribed(&mut self, slot: usize, result: &[u8]) -> Option<TrackerEvent> {
        let s = self.scripts.get_mut(slot)?.as_mut()?;
        match response::subscribe_status(result) {
            Ok(status) => {
                s.announced = Some(status);
                s.state = ScriptState::NeedHistory;
                None
            }
            Err(_) => Some(TrackerEvent::ServerLied {
                script: slot,
                lie: TrackerLie::Malformed,
            }),
        }
    }

    fn on_history(
        &mut self,
        version: ProtocolVersion,
        slot: usize,
        result: &[u8],
    ) -> Option<TrackerEvent> {
        let s = self.scripts.get_mut(slot)?.as_mut()?;
        let lie = |lie| Some(TrackerEvent::ServerLied { script: slot, lie });
        let Ok(items) = response::history(result) else {
            return lie(TrackerLie::Malformed);
        };
        let mut check = HistoryCheck::new(version >= ProtocolVersion::V1_6);
        let mut canonical = true;
        for item in items {
            let Ok(item) = item else {
                return lie(TrackerLie::Malformed);
            };
            canonical &= check.push(&item.txid, item.height).is_ok();
        }
        let verified = s.announced.and_then(|a| check.finish(a).ok());
        let Some(status) = verified else {
            // A new block or transaction may have raced the request: ask again, and call it a
            // lie only if it happens twice in a row.
            s.mismatches += 1;
            s.state = ScriptState::NeedHistory;
            return if s.mismatches >= 2 {
                lie(TrackerLie::StatusMismatch)
            } else {
                None
            };
        };
        if !canonical {
            s.state = ScriptState::Idle;
            return lie(TrackerLie::NotCanonical);
        }
        s.mismatches = 0;
        s.verified = Some(status);
        s.state = ScriptState::Idle;
        s.generation = s.generation.wrapping_add(1);
        let generation = s.generation;
        // Merge: keep verified entries whose height is unchanged, (re)verify the rest.
        let Ok(items) = response::history(result) else {
            return lie(TrackerLie::Malformed);
        };
        let mut full = false;
        let mut duplicate = false;
        for item in items.flatten() {
            let existing = self
                .txs
                .iter_mut()
                .flatten()
                .find(|t| usize::from(t.script) == slot && t.txid == item.txid);
            let state = match item.height {
                TxHeight::Confirmed(_) => TxState::NeedHeader,
                _ => TxState::NeedTx { block_hash: None },
            };
            match existing {
                // Seen already in this very history: listed twice.
                Some(t) if t.generation == generation => {
                    duplicate = true;
                    break;
                }
                Some(t) => {
                    if t.height != item.height {
                        t.height = item.height;
                        t.state = state;
                    }
                    t.generation = generation;
                }
                None => match self.txs.iter_mut().find(|t| t.is_none()) {
                    Some(free) => {
                        *free = Some(TxEntry {
                            script: slot as u16,
                            txid: item.txid,
                            height: item.height,
                            state,
                            generation,
                            reported: false,
                            pos: 0,
                        });
                    }
                    None => full = true,
                },
            }
        }
        if duplicate {
            return lie(TrackerLie::DuplicateTxid);
        }
        if full {
            return Some(TrackerEvent::Full { script: slot });
        }
        Some(TrackerEvent::StatusVerified {
            script: slot,
            status,
        })
    }

    fn on_header(&mut self, slot: usize, result: &[u8]) -> Option<TrackerEvent> {
        let t = self.txs.get_mut(slot)?.as_mut()?;
        // A response to a request made before a reorg reset the entry is stale: ignored.
        let TxState::FetchingHeader {
            cp_height: cp,
            root,
        } = t.state
        else {
            return None;
        };
        let script = usize::from(t.script);
        let TxHeight::Confirmed(height) = t.height else {
            return None;
        };
        let lie = |lie| Some(TrackerEvent::ServerLied { script, lie });
        let Ok(proof) = response::block_header_proof(result) else {
            return lie(TrackerLie::Malformed);
        };
        let Some(header) = proof.header else {
            return lie(TrackerLie::Malformed);
        };
        let mut branch = [MerkleNode::default(); MAX_BRANCH + 2];
        let mut n = 0;
        for node in proof.branch.iter() {
            let (Ok(node), Some(dst)) = (node, branch.get_mut(n)) else {
                return lie(TrackerLie::Malformed);
            };
            *dst = node;
            n += 1;
        }
        let parsed = Header::from_bytes(&header);
        let block_hash = parsed.block_hash();
        if proof.root != root {
            return lie(TrackerLie::HeaderProof(HeaderProofError::RootMismatch));
        }
        if let Err(e) = verify_header_proof(&block_hash, height, cp, &branch[..n], &root) {
            return lie(TrackerLie::HeaderProof(e));
        }
        t.state = TxState::NeedMerkle {
            merkle_root: parsed.merkle_root,
            block_hash,
        };
        None
    }

    fn on_merkle(&mut self, slot: usize, result: &[u8]) -> Option<TrackerEvent> {
        let t = self.txs.get_mut(slot)?.as_mut()?;
        let script = usize::from(t.script);
        let TxState::FetchingMerkle {
            merkle_root,
            block_hash,
        } = t.state
        else {
            return None;
        };
        let lie = |lie| Some(TrackerEvent::ServerLied { script, lie });
        let Ok(proof) = response::merkle_proof(result) else {
            return lie(TrackerLie::Malformed);
        };
        let mut branch = [MerkleNode::default(); MAX_BRANCH + 1];
        let mut n = 0;
        for node in proof.branch.iter() {
            let (Ok(node), Some(dst)) = (node, branch.get_mut(n)) else {
                return lie(TrackerLie::Malformed);
            };
            *dst = node;
            n += 1;
        }
        if TxHeight::Confirmed(proof.block_height) != t.height {
            return lie(TrackerLie::Malformed);
        }
        if let Err(e) = verify_tx_branch(&t.txid, proof.pos, &branch[..n], &merkle_root) {
            return lie(TrackerLie::Merkle(e));
        }
        t.pos = proof.pos;
        t.state = TxState::NeedTx {
            block_hash: Some(block_hash),
        };
        None
    }

    fn on_tx(&mut self, slot: usize, result: &[u8]) -> Option<TrackerEvent> {
        let t = self.txs.get_mut(slot)?.as_mut()?;
        let script = usize::from(t.script);
        let TxState::FetchingTx { block_hash } = t.state else {
            return None;
        };
        let lie = |lie| Some(TrackerEvent::ServerLied { script, lie });
        let Ok(hex) = response::transaction_hex(result) else {
            return lie(TrackerLie::Malformed);
        };
        // Hash the transaction as its hex is decoded, 64 bytes at a time: no buffer of its size.
        let mut hasher = TxidHasher::new();
        let mut buf = [0u8; 64];
        for chunk in hex.chunks(128) {
            let out = &mut buf[..chunk.len() / 2];
            if crate::hex::decode_to_slice(chunk, out).is_err()
                || hasher.feed(out).map(|n| n != out.len()).unwrap_or(true)
            {
                return lie(TrackerLie::TxidMismatch);
            }
        }
        if hasher.finish().ok() != Some(t.txid) {
            return lie(TrackerLie::TxidMismatch);
        }
        t.state = TxState::Done { block_hash };
        t.reported = true;
        Some(match (t.height, block_hash) {
            (TxHeight::Confirmed(height), Some(block_hash)) => TrackerEvent::Confirmed {
                script,
                txid: t.txid,
                height,
                block_hash,
            },
            (height, _) => TrackerEvent::Unconfirmed {
                script,
                txid: t.txid,
                height,
            },
        })
    }
}
