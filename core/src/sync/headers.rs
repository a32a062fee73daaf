//! Verified header sync: from an [`Anchor`] to the server's tip, then following it.
//!
//! # What it does
//! 1. `blockchain.headers.subscribe` learns the server's tip and subscribes to new tips.
//! 2. `blockchain.block.headers(start, count)` fetches the headers from the verifier's next
//!    height to that tip, in chunks of at most [`MAX_HEADERS_PER_REQUEST`] aligned to the
//!    2016-block difficulty periods, one chunk in flight at a time. Each header goes through the
//!    [`HeaderVerifier`] (links, proof of work, retarget, median time past, checkpoints).
//!    Chunks arrive buffered ([`Event::Response`]; the session's `LINE` must then hold a
//!    [`PADDED_FULL_CHUNK_LINE`] reply, or see [`HeaderSync::with_chunk_limit`]) or, with
//!    [`HeaderSync::with_streaming`], header by header ([`Event::StreamHeader`]) in a session
//!    of a few KiB.
//! 3. A header notification at the next height is verified directly; one further ahead is a
//!    gap and is fetched; one that does not link to the tip starts a reorg check.
//! 4. Requests are paced by a token bucket ([`Pacing`]) modelled on ElectrumX's cost
//!    accounting (PROTOCOL.md §1.5), so that a default server neither slows nor drops us.
//!
//! # Reorgs
//! The verifier is constant-memory, so the engine keeps, besides it, [`SNAPSHOTS`] verifier
//! snapshots taken every [`SNAPSHOT_INTERVAL`] heights and the hashes of the last
//! [`HASH_RING`] headers. When the server's headers stop linking to our tip, the engine
//! fetches the server's branch from just above the oldest snapshot, verifies it on a copy of
//! that snapshot (the candidate), finds the fork height as the first height whose hash differs
//! from ours, and switches as soon as the candidate has strictly more cumulative work
//! ([`choose_branch`]). A branch that ends (reaches the server's tip) without more work is
//! rejected ([`SyncEvent::ForkRejected`]). Reorgs up to [`MAX_REORG_DEPTH`] blocks below the
//! tip are always handled (up to `HASH_RING - 1` sometimes); a server whose branch does not
//! link to the oldest snapshot forks deeper: [`SyncEvent::ReorgTooDeep`], and the engine halts.
//!
//! # `cp_height` roots
//! When the anchor is genesis, the engine also keeps a [`MerkleAccumulator`] of every verified
//! block hash, so [`HeaderSync::cp_root`] gives the root a server's `cp_height = tip` proofs
//! must reach. From a checkpoint anchor the hashes below the anchor are unknown: `cp_height`
//! proofs then need a root shipped with the application (PROTOCOL.md §4.5).
//!
//! # Tags
//! Requests carry tags in `TAG_BASE..TAG_BASE + TAG_SPAN`; other users of the session must not
//! use that range ([`HeaderSync::owns_tag`]).
//!
//! # Bounds (DoS)
//! State is fixed: `size_of::<HeaderSync>()` is at most [`HEADER_SYNC_MAX_SIZE`] (tested); no
//! input makes it grow. Per response, work is bounded by the response's header count, itself
//! at most what was asked ([`MAX_HEADERS_PER_REQUEST`]); more is a [`Lie::WrongCount`].

use core::fmt;

use crate::accumulator::MerkleAccumulator;
use crate::chain::{
    Anchor, Branch, ChainTip, DIFFICULTY_ADJUSTMENT_INTERVAL, HeaderError, HeaderErrorKind,
    HeaderVerifier, Params, choose_branch,
};
use crate::hash::{BlockHash, MerkleNode, sha256d};
use crate::header::HEADER_SIZE;
use crate::rpc::Method;
use crate::session::{
    Event, MAX_HEADERS_PER_REQUEST, Notification, ProtocolError, Request, RequestError, Session,
    response,
};
use crate::time::{Duration, Instant, UnixTime};

/// Heights between two verifier snapshots.
pub const SNAPSHOT_INTERVAL: u32 = 32;
/// Verifier snapshots kept (the most recent ones, at multiples of [`SNAPSHOT_INTERVAL`]).
pub const SNAPSHOTS: usize = 2;
/// Reorgs whose fork is at most this many blocks below the tip are always handled: the oldest
/// snapshot is at least this far below the tip.
pub const MAX_REORG_DEPTH: u32 = SNAPSHOT_INTERVAL * (SNAPSHOTS as u32 - 1);
/// Hashes of the last this many verified headers are kept ([`HeaderSync::hash_at`]); it covers
/// every height above the oldest snapshot.
pub const HASH_RING: usize = SNAPSHOT_INTERVAL as usize * SNAPSHOTS;

/// First tag of the range the header sync uses for its requests.
pub const TAG_BASE: u32 = 0x4853_0000;
/// Size of the reserved tag range (`TAG_BASE..TAG_BASE + TAG_SPAN`).
pub const TAG_SPAN: u32 = 0x100;
const TAG_SUBSCRIBE: u32 = TAG_BASE;
const TAG_CHUNK: u32 = TAG_BASE + 1;
const TAG_REORG: u32 = TAG_BASE + 2;

/// ElectrumX cost of one requested header, in thousandths of a cost unit: `count / 50` for
/// the request (charged on the requested count) plus about 163 bytes of hex per header in the
/// reply at 5,000 bytes per unit (PROTOCOL.md §1.5): 20 + 33.
pub const COST_PER_HEADER_MILLI: u64 = 53;
/// Cost of any request besides its headers (envelope bytes, small handler costs), thousandths.
pub const COST_PER_REQUEST_MILLI: u64 = 500;
/// Cost of a full 2016-header chunk in thousandths of a unit (about 107 units).
pub const FULL_CHUNK_COST_MILLI: u64 =
    MAX_HEADERS_PER_REQUEST as u64 * COST_PER_HEADER_MILLI + COST_PER_REQUEST_MILLI;
/// Default burst: 900 units, which with the 5 a new ElectrumX session starts at stays under
/// the 1,000-unit soft limit; about 8 full chunks.
pub const DEFAULT_BURST_MILLI: u64 = 900_000;
/// Default refill: ElectrumX's decay of about 1 unit per second; one full chunk per ~107 s.
pub const DEFAULT_REFILL_MILLI_PER_S: u64 = 1_000;
/// Wait after a failed or timed-out request before asking again.
pub const RETRY_DELAY: Duration = Duration::from_secs(5);

/// Length of ElectrumX 2.0's reply line to a full 2016-header request: it pads every reply
/// to a power of two (the line plus its newline), so the ~331 KB of a full chunk arrive as
/// 524,287 bytes. A session that buffers whole lines needs `LINE` at least this large, or a
/// smaller [`HeaderSync::with_chunk_limit`] (up to 1,596 headers fit in 262,143 bytes).
pub const PADDED_FULL_CHUNK_LINE: usize = 524_287;

/// Upper bound on `size_of::<HeaderSync>()` on 64-bit targets (checked by a test).
pub const HEADER_SYNC_MAX_SIZE: usize = 14 * 1024;

/// The ElectrumX cost, in thousandths of a unit, of asking for `count` headers.
pub const fn request_cost_milli(count: u32) -> u64 {
    count as u64 * COST_PER_HEADER_MILLI + COST_PER_REQUEST_MILLI
}

/// Token-bucket pacing of requests, in thousandths of an ElectrumX cost unit.
///
/// A request is sent when the bucket holds its cost ([`request_cost_milli`]; a request costing
/// more than the whole bucket waits for a full bucket). The bucket starts full and refills at
/// `refill_milli_per_s`. It is kept across [`HeaderSync::reset_connection`]: ElectrumX keeps a
/// disconnected session's cost for its IP group.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Pacing {
    /// Bucket size (burst).
    pub burst_milli: u64,
    /// Refill per second; 0 never refills.
    pub refill_milli_per_s: u64,
}

impl Pacing {
    /// For a default-configured ElectrumX: [`DEFAULT_BURST_MILLI`],
    /// [`DEFAULT_REFILL_MILLI_PER_S`]: a burst of 8 full chunks, then one per ~107 s.
    pub const ELECTRUMX_DEFAULT: Pacing = Pacing {
        burst_milli: DEFAULT_BURST_MILLI,
        refill_milli_per_s: DEFAULT_REFILL_MILLI_PER_S,
    };
    /// No pacing (own or local servers).
    pub const UNLIMITED: Pacing = Pacing {
        burst_milli: u64::MAX / 2,
        refill_milli_per_s: u64::MAX / 2,
    };
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing::ELECTRUMX_DEFAULT
    }
}

/// How a server was caught lying about headers. The engine halts on any of these.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lie {
    /// A header broke a consensus rule (at `HeaderError::height`); no header after it was
    /// accepted.
    InvalidHeader(HeaderError),
    /// A result did not have the documented shape, or a header was not 80 bytes of hex.
    Malformed {
        /// What was asked.
        method: Method,
    },
    /// More headers than asked for, or a `count` that disagrees with the headers sent.
    WrongCount {
        /// Headers asked for.
        asked: u32,
        /// Headers claimed or sent.
        got: u32,
    },
}

impl fmt::Display for Lie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lie::InvalidHeader(e) => write!(f, "invalid header: {e}"),
            Lie::Malformed { method } => write!(f, "malformed {method} result"),
            Lie::WrongCount { asked, got } => {
                write!(f, "asked for {asked} headers, got {got}")
            }
        }
    }
}

/// Why [`HeaderSync::poll`] could not go on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SyncError {
    /// The server lied; the engine is halted until [`HeaderSync::reset_connection`].
    ServerLied(Lie),
    /// The server's chain forks below the oldest snapshot; halted until reset.
    ReorgTooDeep {
        /// The fork is below this height.
        below: u32,
    },
    /// The session refused a request for a reason that waiting does not cure (closed, method
    /// not available). Transient refusals (not ready, pending table or output full) are retried
    /// on the next poll.
    Request(RequestError),
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncError::ServerLied(l) => write!(f, "server lied: {l}"),
            SyncError::ReorgTooDeep { below } => {
                write!(
                    f,
                    "server's chain forks below height {below}, deeper than kept"
                )
            }
            SyncError::Request(e) => write!(f, "request refused: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SyncError {}

/// What a handled event changed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SyncEvent {
    /// New headers were verified; the tip is now at `height`, below the server's tip.
    Progress {
        /// Height of the verified tip.
        height: u32,
    },
    /// The verified tip is the server's announced tip.
    Synced {
        /// The tip.
        tip: ChainTip,
    },
    /// The server's branch had more work: headers from `fork_height` up were replaced.
    /// [`HeaderSync::is_synced`] tells whether `new_tip` is also the server's tip.
    Reorg {
        /// First height whose block changed.
        fork_height: u32,
        /// The new verified tip.
        new_tip: ChainTip,
    },
    /// The server announced a branch that does not carry more work than ours (or forks below
    /// what can be compared): ours is kept, and nothing is fetched until the next announcement.
    ForkRejected {
        /// Height the server announced.
        server_height: u32,
    },
    /// The server lied; the engine halted (see [`SyncError::ServerLied`]).
    ServerLied(Lie),
    /// The server's chain forks below the oldest snapshot; the engine halted.
    ReorgTooDeep {
        /// The fork is below this height.
        below: u32,
    },
    /// A request failed (server error, or `code: None` for a timeout); retried after
    /// [`RETRY_DELAY`].
    RequestFailed {
        /// What was asked.
        method: Method,
        /// The server's error code, `None` for a timeout.
        code: Option<i64>,
    },
}

#[derive(Clone, Debug)]
struct Snapshot {
    verifier: HeaderVerifier,
    acc: Option<MerkleAccumulator>,
}

/// A verified chain: the verifier, its snapshots, recent hashes and (from genesis) the
/// accumulator.
#[derive(Clone, Debug)]
struct Tracked {
    verifier: HeaderVerifier,
    acc: Option<MerkleAccumulator>,
    snapshots: [Option<Snapshot>; SNAPSHOTS],
    hashes: [BlockHash; HASH_RING],
}

impl Tracked {
    fn new(params: &'static Params, anchor: Anchor) -> Tracked {
        let verifier = HeaderVerifier::new(params, anchor);
        let acc = (anchor.height == 0).then(MerkleAccumulator::new);
        let mut snapshots = [const { None }; SNAPSHOTS];
        snapshots[0] = Some(Snapshot {
            verifier: verifier.clone(),
            acc: acc.clone(),
        });
        Tracked {
            verifier,
            acc,
            snapshots,
            hashes: [BlockHash::from_byte_array([0; 32]); HASH_RING],
        }
    }

    fn tip(&self) -> Option<&ChainTip> {
        self.verifier.tip()
    }

    fn push(&mut self, header: &[u8; HEADER_SIZE]) -> Result<BlockHash, HeaderError> {
        let hash = self.verifier.push(header)?;
        let height = self.verifier.next_height().wrapping_sub(1);
        if let Some(acc) = &mut self.acc
            && acc.push_block_hash(&hash).is_err()
        {
            // Only at 2^32 leaves; the root is then unavailable rather than wrong.
            self.acc = None;
        }
        self.hashes[height as usize % HASH_RING] = hash;
        if height.is_multiple_of(SNAPSHOT_INTERVAL) {
            let snap = Snapshot {
                verifier: self.verifier.clone(),
                acc: self.acc.clone(),
            };
            let slot = self.oldest_slot();
            self.snapshots[slot] = Some(snap);
        }
        Ok(hash)
    }

    /// Index of an empty slot, else of the oldest snapshot.
    fn oldest_slot(&self) -> usize {
        let mut best = 0;
        let mut best_key = u64::MAX;
        for (i, s) in self.snapshots.iter().enumerate() {
            let key = s
                .as_ref()
                .map_or(0, |s| u64::from(s.verifier.next_height()) + 1);
            if key < best_key {
                best = i;
                best_key = key;
            }
        }
        best
    }

    fn oldest(&self) -> Option<&Snapshot> {
        self.snapshots
            .iter()
            .flatten()
            .min_by_key(|s| s.verifier.next_height())
    }

    /// A chain at the oldest snapshot, sharing the hashes below it.
    fn rewound(&self) -> Option<Tracked> {
        let snap = self.oldest()?.clone();
        let mut snapshots = [const { None }; SNAPSHOTS];
        let (verifier, acc) = (snap.verifier.clone(), snap.acc.clone());
        snapshots[0] = Some(snap);
        Some(Tracked {
            verifier,
            acc,
            snapshots,
            hashes: self.hashes,
        })
    }

    fn hash_at(&self, height: u32) -> Option<BlockHash> {
        let tip = self.tip()?;
        if height > tip.height
            || height < self.verifier.anchor().height
            || tip.height - height >= HASH_RING as u32
        {
            return None;
        }
        Some(self.hashes[height as usize % HASH_RING])
    }
}

/// A server branch being verified from the oldest snapshot.
#[derive(Clone, Debug)]
struct Candidate {
    chain: Tracked,
    /// Height of its first header.
    start: u32,
    /// First height whose hash differs from the main chain's.
    fork: Option<u32>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Subscribe,
    Chunk,
    Reorg,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct InFlight {
    id: u64,
    kind: Kind,
    start: u32,
    count: u32,
    /// Sent with [`Session::request_streamed`].
    streamed: bool,
    /// Headers handled so far.
    got: u32,
    /// The rest of the response is ignored (stale, reorg check wanted, or a halt).
    stop: bool,
    /// The main chain grew.
    progressed: bool,
    /// A reorg fetch switched to the server's branch...
    switched: bool,
    /// ...replacing blocks from this height.
    reorged: Option<u32>,
}

/// What to ask for next.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Plan {
    Nothing,
    Subscribe,
    Headers { kind: Kind, start: u32, count: u32 },
}

/// Sans-IO verified header sync over a caller's [`Session`]. See the [module docs](self).
///
/// Methods: getters, then [`Self::poll`] (issue requests), [`Self::handle_event`] (consume
/// responses and notifications), [`Self::poll_timeout`] (when to poll again).
#[derive(Clone, Debug)]
pub struct HeaderSync {
    main: Tracked,
    candidate: Option<Candidate>,
    pacing: Pacing,
    chunk_limit: u32,
    streaming: bool,
    tokens: u64,
    refilled_at: Option<Instant>,
    in_flight: Option<InFlight>,
    subscribed: bool,
    session_ready: bool,
    /// Height and hash of the tip the server last announced.
    server_tip: Option<(u32, BlockHash)>,
    /// Compare the server's branch from the oldest snapshot.
    reorg_wanted: bool,
    /// Nothing to fetch until the server announces a new tip.
    idle: bool,
    halted: Option<SyncError>,
    retry_at: Instant,
    last_synced: Option<BlockHash>,
    clock: Option<UnixTime>,
}

impl HeaderSync {
    /// An engine that verifies headers from `anchor` (genesis: [`Anchor::genesis`]; a
    /// checkpointed period start: [`Anchor::at_height`]), paced by
    /// [`Pacing::ELECTRUMX_DEFAULT`].
    pub fn new(params: &'static Params, anchor: Anchor) -> HeaderSync {
        HeaderSync::with_pacing(params, anchor, Pacing::ELECTRUMX_DEFAULT)
    }

    /// As [`Self::new`], with the given pacing.
    pub fn with_pacing(params: &'static Params, anchor: Anchor, pacing: Pacing) -> HeaderSync {
        HeaderSync {
            main: Tracked::new(params, anchor),
            candidate: None,
            pacing,
            chunk_limit: MAX_HEADERS_PER_REQUEST,
            streaming: false,
            tokens: pacing.burst_milli,
            refilled_at: None,
            in_flight: None,
            subscribed: false,
            session_ready: false,
            server_tip: None,
            reorg_wanted: false,
            idle: false,
            halted: None,
            retry_at: Instant::ZERO,
            last_synced: None,
            clock: None,
        }
    }

    /// Asks for at most `limit` headers per request (clamped to `1..=2016`; default 2016),
    /// for sessions that buffer whole lines in less than [`PADDED_FULL_CHUNK_LINE`] bytes.
    /// Requests still never cross a difficulty period boundary.
    #[must_use]
    pub fn with_chunk_limit(mut self, limit: u32) -> HeaderSync {
        self.chunk_limit = limit.clamp(1, MAX_HEADERS_PER_REQUEST);
        self
    }

    /// Fetches headers with [`Session::request_streamed`]: each header is verified as it
    /// arrives ([`Event::StreamHeader`]), so the session's line buffer need not hold a chunk
    /// (a `Session<1024, 1024, 4>` will do). A streamed request must be alone in flight:
    /// while other requests are pending, the chunk waits (polled again later).
    #[must_use]
    pub fn with_streaming(mut self) -> HeaderSync {
        self.streaming = true;
        self
    }

    // ----- getters -----

    /// The verified tip, if any header was verified.
    pub fn tip(&self) -> Option<&ChainTip> {
        self.main.tip()
    }

    /// Height the next verified header will have.
    pub fn next_height(&self) -> u32 {
        self.main.verifier.next_height()
    }

    /// The verifier of the current branch (anchor, work, parameters).
    pub fn verifier(&self) -> &HeaderVerifier {
        &self.main.verifier
    }

    /// Hash of the verified block at `height`, for the last [`HASH_RING`] heights.
    pub fn hash_at(&self, height: u32) -> Option<BlockHash> {
        self.main.hash_at(height)
    }

    /// `(cp_height, root)`: the `cp_height` merkle root at the tip, when anchored at genesis.
    pub fn cp_root(&self) -> Option<(u32, MerkleNode)> {
        let tip = self.main.tip()?;
        Some((tip.height, self.main.acc.as_ref()?.root()?))
    }

    /// The tip the server last announced (unverified): height and hash.
    pub fn server_tip(&self) -> Option<(u32, BlockHash)> {
        self.server_tip
    }

    /// Whether the server's announced tip is verified and on our branch (it may be below our
    /// tip), with no reorg check pending.
    pub fn is_synced(&self) -> bool {
        match self.server_tip {
            Some((h, hash)) => {
                self.candidate.is_none() && !self.reorg_wanted && self.main.hash_at(h) == Some(hash)
            }
            None => false,
        }
    }

    /// Why the engine halted, if it did.
    pub fn halted(&self) -> Option<SyncError> {
        self.halted
    }

    /// Whether `tag` is in the range this engine uses.
    pub const fn owns_tag(tag: u32) -> bool {
        tag.wrapping_sub(TAG_BASE) < TAG_SPAN
    }

    // ----- commands -----

    /// Enables the verifier's "at most two hours in the future" rule against `now`, the
    /// caller's wall-clock time (see [`HeaderVerifier::set_clock`](crate::chain::HeaderVerifier::set_clock)).
    pub fn set_clock(&mut self, now: UnixTime) {
        self.clock = Some(now);
        self.main.verifier.set_clock(now);
        if let Some(c) = &mut self.candidate {
            c.chain.verifier.set_clock(now);
        }
    }

    /// Forgets everything about the connection (in-flight request, subscription, the server's
    /// tip, a halt) but keeps the verified chain and the pacing bucket. Call it when the
    /// session is replaced (a reconnect, another server). [`Event::Ready`] and
    /// [`Event::Failed`] do the same except for a halt, which only this clears.
    pub fn reset_connection(&mut self) {
        self.halted = None;
        self.forget_connection();
    }

    fn forget_connection(&mut self) {
        self.in_flight = None;
        self.subscribed = false;
        self.session_ready = false;
        self.server_tip = None;
        self.candidate = None;
        self.reorg_wanted = false;
        self.idle = false;
        self.retry_at = Instant::ZERO;
        self.last_synced = None;
    }

    // ----- poll_* -----

    /// Issues the next request when one is due and paced: the subscription first, then header
    /// chunks to the server's tip, or a reorg check. At most one request is in flight.
    pub fn poll(&mut self, now: Instant, session: &mut Session<'_>) -> Result<(), SyncError> {
        if let Some(e) = self.halted {
            return Err(e);
        }
        self.refill(now);
        if !session.is_ready() {
            if session.failure().is_some() {
                return Err(SyncError::Request(RequestError::Closed));
            }
            return Ok(());
        }
        self.session_ready = true;
        if self.in_flight.is_some() || now < self.retry_at {
            return Ok(());
        }
        let (request, kind, start, count) = match self.plan() {
            Plan::Nothing => return Ok(()),
            Plan::Subscribe => (Request::HeadersSubscribe, Kind::Subscribe, 0, 0),
            Plan::Headers { kind, start, count } => (
                Request::BlockHeaders {
                    start_height: start,
                    count,
                    cp_height: 0,
                },
                kind,
                start,
                count,
            ),
        };
        let cost = self.cost(count);
        if self.tokens < cost {
            return Ok(());
        }
        if kind == Kind::Reorg && self.candidate.is_none() {
            self.start_candidate();
        }
        let tag = match kind {
            Kind::Subscribe => TAG_SUBSCRIBE,
            Kind::Chunk => TAG_CHUNK,
            Kind::Reorg => TAG_REORG,
        };
        let streamed = self.streaming && kind != Kind::Subscribe;
        let sent = if streamed {
            session.request_streamed(now, &request, tag)
        } else {
            session.request(now, &request, tag)
        };
        match sent {
            Ok(id) => {
                self.tokens -= cost;
                self.in_flight = Some(InFlight {
                    id,
                    kind,
                    start,
                    count,
                    streamed,
                    got: 0,
                    stop: false,
                    progressed: false,
                    switched: false,
                    reorged: None,
                });
                Ok(())
            }
            Err(
                RequestError::NotReady
                | RequestError::TooManyInFlight
                | RequestError::Busy
                | RequestError::OutputFull(_),
            ) => Ok(()),
            Err(e) => Err(SyncError::Request(e)),
        }
    }

    /// When [`Self::poll`] may next issue a request (pacing or retry delay), if it is waiting
    /// for time rather than for a response or an announcement.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.halted.is_some() || self.in_flight.is_some() || !self.session_ready {
            return None;
        }
        let count = match self.plan() {
            Plan::Nothing => return None,
            Plan::Subscribe => 0,
            Plan::Headers { count, .. } => count,
        };
        let base = self.refilled_at.unwrap_or(Instant::ZERO);
        let cost = self.cost(count);
        let paced = if self.tokens >= cost {
            base
        } else {
            let rate = self.pacing.refill_milli_per_s;
            if rate == 0 {
                return None;
            }
            let missing = cost - self.tokens;
            base + Duration::from_millis(missing.saturating_mul(1000).div_ceil(rate))
        };
        Some(paced.max(self.retry_at))
    }

    // ----- handle_* -----

    /// Consumes an event from the session: responses to this engine's requests (by tag and
    /// id), header notifications, readiness and failure. Every other event is ignored, so all
    /// events may be passed. Returns what changed, if anything worth reporting; poll again
    /// afterwards.
    pub fn handle_event(&mut self, now: Instant, event: &Event<'_>) -> Option<SyncEvent> {
        match *event {
            Event::Ready { .. } => {
                self.forget_connection();
                self.session_ready = true;
                None
            }
            Event::Failed(_) => {
                self.forget_connection();
                None
            }
            _ if self.halted.is_some() => None,
            Event::Response {
                id, tag, result, ..
            } => {
                let f = self.take_in_flight(id, tag)?;
                self.on_response(f, result)
            }
            Event::ServerError { id, tag, error, .. } => {
                let f = self.take_in_flight(id, tag)?;
                self.retry_at = now + RETRY_DELAY;
                Some(SyncEvent::RequestFailed {
                    method: method_of(f.kind),
                    code: error.code,
                })
            }
            Event::TimedOut { id, tag, .. } | Event::ResponseTooLarge { id, tag, .. } => {
                let f = self.take_in_flight(id, tag)?;
                self.retry_at = now + RETRY_DELAY;
                Some(SyncEvent::RequestFailed {
                    method: method_of(f.kind),
                    code: None,
                })
            }
            Event::Notification(Notification::Header { height, header }) => {
                self.on_announce(height, &header)
            }
            Event::StreamHeader {
                id,
                tag,
                height,
                header,
            } => {
                let mut f = self
                    .in_flight
                    .filter(|f| f.id == id && f.streamed && tag == f_tag(f))?;
                let ev = if !f.stop && height != f.start.wrapping_add(f.got) {
                    f.stop = true;
                    self.lie(Lie::Malformed {
                        method: Method::BlockHeaders,
                    })
                } else {
                    self.on_header(&mut f, &header)
                };
                if self.in_flight.is_some() {
                    self.in_flight = Some(f);
                }
                ev
            }
            Event::StreamEnd { id, tag, items, .. } => {
                let f = self.take_in_flight(id, tag)?;
                self.on_end(f, items)
            }
            Event::ProtocolError(ProtocolError::StreamFailed { id, .. }) => {
                let f = self.in_flight.filter(|f| f.id == id && f.streamed)?;
                self.in_flight = None;
                self.lie(Lie::Malformed {
                    method: method_of(f.kind),
                })
            }
            _ => None,
        }
    }

    // ----- internals -----

    fn take_in_flight(&mut self, id: u64, tag: u32) -> Option<InFlight> {
        if !Self::owns_tag(tag) {
            return None;
        }
        match self.in_flight {
            Some(f) if f.id == id => {
                self.in_flight = None;
                Some(f)
            }
            // A reply to a request of an earlier connection state: stale.
            _ => None,
        }
    }

    fn cost(&self, count: u32) -> u64 {
        request_cost_milli(count).min(self.pacing.burst_milli)
    }

    fn refill(&mut self, now: Instant) {
        let last = *self.refilled_at.get_or_insert(now);
        if now > last {
            let elapsed = now - last;
            let add = elapsed
                .millis()
                .saturating_mul(self.pacing.refill_milli_per_s)
                / 1000;
            self.tokens = self.tokens.saturating_add(add).min(self.pacing.burst_milli);
            self.refilled_at = Some(now);
        }
    }

    fn plan(&self) -> Plan {
        if !self.subscribed {
            return Plan::Subscribe;
        }
        let Some((server_height, _)) = self.server_tip else {
            return Plan::Nothing;
        };
        if let Some(c) = &self.candidate {
            let start = c.chain.verifier.next_height();
            return fetch(Kind::Reorg, start, server_height, self.chunk_limit, false);
        }
        if self.idle {
            return Plan::Nothing;
        }
        if self.reorg_wanted {
            return match self.main.oldest() {
                Some(s) => fetch(
                    Kind::Reorg,
                    s.verifier.next_height(),
                    server_height,
                    self.chunk_limit,
                    false,
                ),
                None => Plan::Nothing,
            };
        }
        let start = self.next_height();
        fetch(Kind::Chunk, start, server_height, self.chunk_limit, true)
    }

    fn start_candidate(&mut self) {
        self.reorg_wanted = false;
        if let Some(mut chain) = self.main.rewound() {
            if let Some(t) = self.clock {
                chain.verifier.set_clock(t);
            }
            let start = chain.verifier.next_height();
            self.candidate = Some(Candidate {
                chain,
                start,
                fork: None,
            });
        }
    }

    fn halt(&mut self, e: SyncError) -> Option<SyncEvent> {
        self.halted = Some(e);
        self.candidate = None;
        Some(match e {
            SyncError::ServerLied(l) => SyncEvent::ServerLied(l),
            SyncError::ReorgTooDeep { below } => SyncEvent::ReorgTooDeep { below },
            // Not produced by event handling.
            SyncError::Request(_) => return None,
        })
    }

    fn lie(&mut self, lie: Lie) -> Option<SyncEvent> {
        self.halt(SyncError::ServerLied(lie))
    }

    /// Synced, progress, or nothing, after the main chain may have grown.
    fn status(&mut self, progressed: bool) -> Option<SyncEvent> {
        let tip = *self.main.tip()?;
        if self.is_synced() {
            if self.last_synced != Some(tip.hash) {
                self.last_synced = Some(tip.hash);
                return Some(SyncEvent::Synced { tip });
            }
            return None;
        }
        progressed.then_some(SyncEvent::Progress { height: tip.height })
    }

    fn on_response(&mut self, mut f: InFlight, result: &[u8]) -> Option<SyncEvent> {
        match f.kind {
            Kind::Subscribe => match response::headers_subscribe(result) {
                Ok((height, header)) => {
                    self.subscribed = true;
                    self.on_announce(height, &header)
                }
                Err(_) => self.lie(Lie::Malformed {
                    method: Method::HeadersSubscribe,
                }),
            },
            Kind::Chunk | Kind::Reorg => {
                let Ok(chunk) = response::block_headers(result) else {
                    return self.lie(Lie::Malformed {
                        method: Method::BlockHeaders,
                    });
                };
                if chunk.count > f.count {
                    return self.lie(Lie::WrongCount {
                        asked: f.count,
                        got: chunk.count,
                    });
                }
                let mut n = 0u32;
                for header in chunk.headers() {
                    let Ok(header) = header else {
                        return self.lie(Lie::Malformed {
                            method: Method::BlockHeaders,
                        });
                    };
                    n = n.saturating_add(1);
                    if n > chunk.count {
                        return self.lie(Lie::WrongCount {
                            asked: chunk.count,
                            got: n,
                        });
                    }
                    if let Some(ev) = self.on_header(&mut f, &header) {
                        return Some(ev);
                    }
                    if f.stop {
                        break;
                    }
                }
                if !f.stop && n != chunk.count {
                    return self.lie(Lie::WrongCount {
                        asked: chunk.count,
                        got: n,
                    });
                }
                self.on_end(f, chunk.count)
            }
        }
    }

    /// One header of the in-flight chunk or reorg fetch (buffered or streamed). Returns an
    /// event only when the engine halts; sets `f.stop` when the rest is to be ignored.
    fn on_header(&mut self, f: &mut InFlight, header: &[u8; HEADER_SIZE]) -> Option<SyncEvent> {
        if f.stop {
            return None;
        }
        f.got = f.got.saturating_add(1);
        if f.got > f.count {
            f.stop = true;
            return self.lie(Lie::WrongCount {
                asked: f.count,
                got: f.got,
            });
        }
        let first = f.got == 1;
        match f.kind {
            Kind::Subscribe => None,
            Kind::Chunk => {
                if first && f.start != self.next_height() {
                    // The tip moved since the request (a reconnect): stale, ignored.
                    f.stop = true;
                    return None;
                }
                let had_tip = self.main.tip().is_some();
                match self.main.push(header) {
                    Ok(_) => {
                        f.progressed = true;
                        None
                    }
                    Err(e) if first && had_tip && e.kind == HeaderErrorKind::PrevHashMismatch => {
                        // Our tip is not on the server's chain: compare branches.
                        self.reorg_wanted = true;
                        f.stop = true;
                        None
                    }
                    Err(e) => {
                        f.stop = true;
                        self.lie(Lie::InvalidHeader(e))
                    }
                }
            }
            Kind::Reorg => self.reorg_header(f, first, header),
        }
    }

    fn reorg_header(
        &mut self,
        f: &mut InFlight,
        first: bool,
        header: &[u8; HEADER_SIZE],
    ) -> Option<SyncEvent> {
        if f.switched {
            // Already on the server's branch: plain growth.
            return match self.main.push(header) {
                Ok(_) => None,
                Err(e) => {
                    f.stop = true;
                    self.lie(Lie::InvalidHeader(e))
                }
            };
        }
        let main = &mut self.main;
        let Some(cand) = self.candidate.as_mut() else {
            f.stop = true;
            return None;
        };
        let height = cand.chain.verifier.next_height();
        if first && f.start != height {
            f.stop = true;
            return None;
        }
        let oldest_is_anchor = cand.chain.tip().is_none();
        let halt = match cand.chain.push(header) {
            Ok(hash) => {
                if cand.fork.is_none() && main.hash_at(height) != Some(hash) {
                    cand.fork = Some(height);
                }
                if matches!(
                    choose_branch(&main.verifier, &cand.chain.verifier),
                    Ok(Branch::Candidate)
                ) {
                    let old_tip = main.tip().map(|t| t.height);
                    f.reorged = match (cand.fork, old_tip) {
                        (Some(fork), Some(old)) if fork <= old => Some(fork),
                        _ => None,
                    };
                    core::mem::swap(main, &mut cand.chain);
                    self.candidate = None;
                    f.switched = true;
                }
                return None;
            }
            Err(e) => {
                let link = matches!(
                    e.kind,
                    HeaderErrorKind::PrevHashMismatch
                        | HeaderErrorKind::CheckpointMismatch
                        | HeaderErrorKind::GenesisMismatch
                );
                if height == cand.start && link && !oldest_is_anchor {
                    SyncError::ReorgTooDeep { below: cand.start }
                } else {
                    SyncError::ServerLied(Lie::InvalidHeader(e))
                }
            }
        };
        f.stop = true;
        self.halt(halt)
    }

    /// The in-flight chunk or reorg fetch ended after `count` headers.
    fn on_end(&mut self, f: InFlight, count: u32) -> Option<SyncEvent> {
        if self.halted.is_some() || f.stop {
            return None;
        }
        if f.got != count {
            return self.lie(Lie::WrongCount {
                asked: count,
                got: f.got,
            });
        }
        match f.kind {
            Kind::Subscribe => None,
            Kind::Chunk => {
                if count < f.count {
                    // The server has fewer headers than its announced tip: wait for the next.
                    self.idle = true;
                }
                self.after_growth(f.progressed)
            }
            Kind::Reorg if f.switched => {
                // The server's branch is ours now; what remains is ordinary sync.
                let event = self.after_growth(true);
                match (f.reorged, self.main.tip()) {
                    (Some(fork_height), Some(&new_tip)) => {
                        if self.is_synced() {
                            self.last_synced = Some(new_tip.hash);
                        }
                        Some(SyncEvent::Reorg {
                            fork_height,
                            new_tip,
                        })
                    }
                    _ => event,
                }
            }
            Kind::Reorg => {
                let server_height = self.server_tip.map_or(0, |(h, _)| h);
                let next = self
                    .candidate
                    .as_ref()
                    .map_or(u32::MAX, |c| c.chain.verifier.next_height());
                if count < f.count || next > server_height {
                    self.candidate = None;
                    self.idle = true;
                    Some(SyncEvent::ForkRejected { server_height })
                } else {
                    None
                }
            }
        }
    }

    /// After the main chain grew to or past the server's announced height: a different hash
    /// there means the server's tip changed under us; check for a reorg.
    fn after_growth(&mut self, progressed: bool) -> Option<SyncEvent> {
        if let (Some((h, hash)), Some(tip)) = (self.server_tip, self.main.tip())
            && h <= tip.height
            && self.main.hash_at(h) != Some(hash)
        {
            self.reorg_wanted = true;
        }
        self.status(progressed)
    }

    /// A tip from the subscription result or a notification.
    fn on_announce(&mut self, height: u32, header: &[u8; HEADER_SIZE]) -> Option<SyncEvent> {
        if self.halted.is_some() {
            return None;
        }
        let hash = BlockHash::from_byte_array(sha256d(header));
        self.server_tip = Some((height, hash));
        self.idle = false;
        if self.in_flight.is_some() || self.candidate.is_some() || self.reorg_wanted {
            // The running fetch continues towards the new tip.
            return None;
        }
        let next = self.next_height();
        let tip_height = self.main.tip().map(|t| t.height);
        if height == next {
            return match self.main.push(header) {
                Ok(_) => self.status(true),
                Err(e) if tip_height.is_some() && e.kind == HeaderErrorKind::PrevHashMismatch => {
                    self.reorg_wanted = true;
                    None
                }
                Err(e) => self.lie(Lie::InvalidHeader(e)),
            };
        }
        match tip_height {
            Some(t) if height <= t => {
                if self.main.hash_at(height) == Some(hash) {
                    return self.status(false);
                }
                let window = self.main.oldest().map_or(0, |s| s.verifier.next_height());
                if height < window {
                    self.idle = true;
                    return Some(SyncEvent::ForkRejected {
                        server_height: height,
                    });
                }
                self.reorg_wanted = true;
                None
            }
            // Below the anchor: nothing we can compare.
            None if height < next => {
                self.idle = true;
                Some(SyncEvent::ForkRejected {
                    server_height: height,
                })
            }
            // A gap: fetched by poll.
            _ => None,
        }
    }
}

/// Headers `start..=server_height`, at most `limit` (1 to 2016); `aligned` ends the request at
/// the end of `start`'s difficulty period.
fn fetch(kind: Kind, start: u32, server_height: u32, limit: u32, aligned: bool) -> Plan {
    if start > server_height {
        return Plan::Nothing;
    }
    let limit = limit.clamp(1, MAX_HEADERS_PER_REQUEST);
    let mut end = server_height.min(start.saturating_add(limit - 1));
    if aligned {
        let period_end = (start - start % DIFFICULTY_ADJUSTMENT_INTERVAL)
            .saturating_add(DIFFICULTY_ADJUSTMENT_INTERVAL - 1);
        end = end.min(period_end);
    }
    Plan::Headers {
        kind,
        start,
        count: end - start + 1,
    }
}

fn f_tag(f: &InFlight) -> u32 {
    match f.kind {
        Kind::Subscribe => TAG_SUBSCRIBE,
        Kind::Chunk => TAG_CHUNK,
        Kind::Reorg => TAG_REORG,
    }
}

fn method_of(kind: Kind) -> Method {
    match kind {
        Kind::Subscribe => Method::HeadersSubscribe,
        Kind::Chunk | Kind::Reorg => Method::BlockHeaders,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::REGTEST;

    /// The documented bound: the whole engine, with its two chains, fits in a fixed size.
    #[test]
    fn state_is_small_and_fixed() {
        let size = core::mem::size_of::<HeaderSync>();
        std::println!("size_of::<HeaderSync>() = {size}");
        assert!(size <= HEADER_SYNC_MAX_SIZE, "HeaderSync is {size} bytes");
    }

    #[test]
    fn default_pacing_allows_eight_full_chunks_then_one_per_107_s() {
        let p = Pacing::ELECTRUMX_DEFAULT;
        assert_eq!(p.burst_milli / FULL_CHUNK_COST_MILLI, 8);
        let refill_s = FULL_CHUNK_COST_MILLI.div_ceil(p.refill_milli_per_s);
        assert!((100..=110).contains(&refill_s), "{refill_s}");
        // Eight chunks plus a new session's 5 units stay below ElectrumX's soft limit.
        const { assert!(8 * FULL_CHUNK_COST_MILLI + 5_000 < 1_000_000) };
    }

    #[test]
    fn chunks_are_aligned_and_bounded() {
        assert_eq!(
            fetch(Kind::Chunk, 0, 5000, 2016, true),
            Plan::Headers {
                kind: Kind::Chunk,
                start: 0,
                count: 2016
            }
        );
        assert_eq!(
            fetch(Kind::Chunk, 2000, 5000, 2016, true),
            Plan::Headers {
                kind: Kind::Chunk,
                start: 2000,
                count: 16
            }
        );
        assert_eq!(
            fetch(Kind::Reorg, 2000, 5000, 2016, false),
            Plan::Headers {
                kind: Kind::Reorg,
                start: 2000,
                count: 2016
            }
        );
        assert_eq!(fetch(Kind::Chunk, 10, 9, 2016, true), Plan::Nothing);
        assert_eq!(
            fetch(Kind::Chunk, 1008, 5000, 1000, true),
            Plan::Headers {
                kind: Kind::Chunk,
                start: 1008,
                count: 1000
            }
        );
        assert_eq!(
            fetch(Kind::Chunk, 2008, 5000, 1000, true),
            Plan::Headers {
                kind: Kind::Chunk,
                start: 2008,
                count: 8
            }
        );
        assert_eq!(
            fetch(Kind::Chunk, u32::MAX, u32::MAX, 0, true),
            Plan::Headers {
                kind: Kind::Chunk,
                start: u32::MAX,
                count: 1
            }
        );
    }

    #[test]
    fn tags_are_in_the_documented_range() {
        for t in [TAG_SUBSCRIBE, TAG_CHUNK, TAG_REORG] {
            assert!(HeaderSync::owns_tag(t));
        }
        assert!(!HeaderSync::owns_tag(TAG_BASE - 1));
        assert!(!HeaderSync::owns_tag(TAG_BASE + TAG_SPAN));
        assert!(!HeaderSync::owns_tag(u32::MAX));
        let s = HeaderSync::new(&REGTEST, Anchor::genesis(&REGTEST));
        assert_eq!(s.next_height(), 0);
        assert_eq!(s.poll_timeout(), None);
    }
}
