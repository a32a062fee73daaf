//! Steps 3 and 4: the sans-IO [`Session`] driven through the caller's loop over a scripted byte
//! stream, the way firmware drives it over a UART or a TCP socket.
//!
//! The script is a real exchange with ElectrumX 2.0 (protocol 1.6) over the test kit's regtest
//! chain, recorded by `testkit/tests/record_transcripts.rs` and compiled into flash (see
//! [`transcript`](crate::transcript)). [`replay`] plays the server's side:
//!
//! * everything the session writes (`poll_transmit`, through a 64-byte transmit buffer) must
//!   be the recorded request bytes, and must have been written before the recorded reads that
//!   followed it;
//! * the server's bytes go to `handle_input` in deliberately awkward reads, cycling through
//!   [`READS`]: single bytes, reads that end mid-line, reads that hold several lines; after
//!   each, `poll_event` is drained and `handle_timeout` called with a simulated clock;
//! * the session negotiates 1.6, checks `server.features`' genesis against regtest's, then
//!   sends the recording's 16 requests, and every answer is decoded and checked: headers
//!   100..=113 verified as a chain (links, proof of work, median time) and tied by their
//!   `cp_height` proof to a pinned checkpoint root, as is header 111; the merkle proof of a
//!   transaction checked against that verified header 111 and its raw bytes hashed to its
//!   txid; the address status recomputed from the history; the balance summed from the
//!   unspent outputs; the new-block notification verified onto the chain;
//! * then, with the script over, the simulated clock runs on: `poll_timeout` gives the
//!   keep-alive time, `handle_timeout` sends `server.ping`, and a request the silent server
//!   never answers is reported `TimedOut` at its deadline (its late answer is refused).
//!
//! [`hostile`] then feeds bad bytes to fresh sessions: an over-long line, an answer to an id
//! never sent and invalid JSON before the real negotiation (each refused with its typed error,
//! the session negotiating normally afterwards), and a mainnet session talking to the regtest
//! server (refused with [`FatalError::WrongGenesis`], requests then refused too).
//!
//! # Memory
//!
//! The session and its buffers live in `static`s (in `.bss`), so their RAM is reserved at link
//! time and both steps reuse it. The buffers are lent to the session ([`SessionStorage`]) and
//! never move; `Session::new` returns only the session's own state by value
//! ([`SESSION_SIZE`] bytes), which the compiler builds on the stack before copying it into the
//! static. [`replay`] measures that peak on its own ([`Replayed::init_stack_peak`]) and then
//! repaints the stack, so its own figure is what driving the session takes.

use crate::recording::{CHUNK_LEN, CHUNK_START, CP_ROOT_113, TIP_113, TX_HEIGHT, TXID};
use core::cell::UnsafeCell;
use core::mem::{MaybeUninit, size_of};
use core::sync::atomic::{AtomicBool, Ordering};

use electrum_spv_core::accumulator::HeaderProofFolder;
use electrum_spv_core::chain::{ChainTip, HeaderVerifier, MAINNET, Params, REGTEST};
use electrum_spv_core::header::{HEADER_SIZE, Header};
use electrum_spv_core::merkle::BranchFolder;
use electrum_spv_core::rpc::{Method, ProtocolVersion, VersionRange};
use electrum_spv_core::script::{CanonicalOrder, StatusHasher, TxHeight, script_hash};
use electrum_spv_core::session::response::{self, Balance, Branch};
use electrum_spv_core::session::{
    Config, DEFAULT_PING_INTERVAL, DEFAULT_REQUEST_TIMEOUT, Event, FatalError, FeeMode,
    Notification, PendingSlot, ProtocolError, Request, RequestError, Session, SessionStorage,
};
use electrum_spv_core::time::{Duration, Instant};
use electrum_spv_core::tx::TxidHasher;
use electrum_spv_core::{BlockHash, MerkleNode, ScriptHash, Status, Txid};

use crate::transcript::{Dir, Stream};
use crate::{Failure, stack};

/// Line buffer: the longest line of the script is the answer to
/// `blockchain.block.headers(100, 14, cp_height=113)`, 3,334 bytes with its newline. It must be
/// buffered whole (only requests without `cp_height` can be streamed), and ElectrumX pads small
/// answers to 1 KiB, so 1,024 is the floor for any session.
pub const LINE: usize = 4096;
/// Outgoing queue: the caller transmits after queueing each request, so it holds one at a
/// time (plus a keep-alive ping); the longest request here is 153 bytes.
pub const OUT: usize = 256;
/// Requests in flight: the recording sends its 16 requests before the first answer, and
/// ElectrumX answers out of order (the last one, a ping, comes back second).
pub const PENDING: usize = 16;
/// The session type of both steps: its buffers are statics too.
pub type ScriptSession = Session<'static>;

/// Sizes of the successive reads, cycled: single bytes, a 512-byte read (several short lines,
/// or part of a padded one), and odd sizes that end mid-line.
pub const READS: [usize; 10] = [1, 512, 2, 301, 1, 1, 97, 512, 13, 700];
/// The read buffer (a small MCU's socket or DMA buffer).
const RX: usize = 512;
/// The transmit buffer: requests leave in pieces, as through a small UART FIFO.
const TX: usize = 64;
/// Simulated time at the start (any origin will do).
const START: Instant = Instant::from_millis(1_000_000);
/// Simulated time each read takes.
const READ: Duration = Duration::from_millis(3);

/// scriptPubKey of the subscribed address (P2WPKH, the kit's wallet `BOB`):
/// `0014c5df7876a0e5de88b9882f827ed6b19c37287e1c`.
const SPK: [u8; 22] = [
    0x00, 0x14, 0xc5, 0xdf, 0x78, 0x76, 0xa0, 0xe5, 0xde, 0x88, 0xb9, 0x88, 0x2f, 0x82, 0x7e, 0xd6,
    0xb1, 0x9c, 0x37, 0x28, 0x7e, 0x1c,
];
/// Its Electrum script hash, as the session sends it at 1.6.
const SCRIPT_HASH: ScriptHash = ScriptHash::from_display_hex_const(
    "0c355f0db94f0eecc077f30c0fa66ef53ff93afd18bfb62f868b9f719ad275dd",
);
/// Depth of block 111's transaction tree (6 transactions: 3 levels).
const TX_DEPTH: u8 = 3;
/// The server's tip when the requests were answered, and the `cp_height` of both proofs.
const TIP_HEIGHT: u32 = 113;
/// Hash of block 114, announced by notification after the kit mined it.
const TIP_114: BlockHash = BlockHash::from_display_hex_const(
    "080604b9b5e8297bc01ef9572213ee2807dfdc6adf80ad8b41ead1f53d6e0665",
);
/// Hash of block 111.
const HASH_111: BlockHash = BlockHash::from_display_hex_const(
    "02b8375ef219361d901608bcc309f5dff92af4cea04b3645d3a34f036b873578",
);
/// Hash of block 5 (fetched without a proof: only its hash and proof of work are checked).
const HASH_5: BlockHash = BlockHash::from_display_hex_const(
    "6b3c6ad4c3b0f4532782d2fcbbd52dc432705d0a303ec34871fba7070bf946b5",
);
/// The address status at tip 113 (hex as sent: not reversed).
const STATUS_113: &[u8] = b"81856b7df0968bf6f39ce82458dcea9a56d493108e4fc4f94b22e845edb604bc";
/// The address status notified after block 114.
const STATUS_114: &[u8] = b"76a2340264f653e3406c137b6b12f4612a106f0861533a8171f4ecb2fd7064fb";
/// Rows of the address history: 3 confirmed, 4 in the mempool.
const HISTORY_ROWS: u32 = 7;
/// Rows of the address mempool.
const MEMPOOL_ROWS: u32 = 4;
/// The balance, in satoshis.
const BALANCE: Balance = Balance {
    confirmed: 569_999_689,
    unconfirmed: 110_000_008,
};
/// The server's answer to the out-of-range header request.
const OUT_OF_RANGE: &[u8] = b"height 100,000 out of range";
/// The keep-alive ping the session sends after the script, at 240 s without traffic.
const KEEPALIVE: &[u8] =
    b"{\"jsonrpc\":\"2.0\",\"id\":18,\"method\":\"server.ping\",\"params\":[]}\n";
/// The request left unanswered after the script.
const UNANSWERED: &[u8] =
    b"{\"jsonrpc\":\"2.0\",\"id\":19,\"method\":\"blockchain.headers.subscribe\",\"params\":[]}\n";
/// Its tag.
const UNANSWERED_TAG: u32 = REQUESTS.len() as u32;

/// The recording's requests (its `requests` member), sent as soon as `Ready` is reported with
/// their index as tag; the session numbers them 2..=17 after its own `server.version` (0) and
/// `server.features` (1).
pub const REQUESTS: [Request<'static>; 16] = [
    Request::Features,
    Request::HeadersSubscribe,
    Request::BlockHeader {
        height: 5,
        cp_height: 0,
    },
    Request::BlockHeader {
        height: TX_HEIGHT,
        cp_height: TIP_HEIGHT,
    },
    Request::BlockHeaders {
        start_height: CHUNK_START,
        count: CHUNK_LEN,
        cp_height: TIP_HEIGHT,
    },
    Request::BlockHeader {
        height: 100_000,
        cp_height: 0,
    },
    Request::ScriptGetHistory(&SPK),
    Request::ScriptSubscribe(&SPK),
    Request::ScriptListUnspent(&SPK),
    Request::ScriptGetBalance(&SPK),
    Request::ScriptGetMempool(&SPK),
    Request::TransactionGet(TXID),
    Request::TransactionGetMerkle {
        txid: TXID,
        height: TX_HEIGHT,
    },
    Request::EstimateFee {
        blocks: 2,
        mode: Some(FeeMode::Conservative),
    },
    Request::MempoolInfo,
    Request::Ping { pong_len: 4 },
];

/// The session's configuration as recorded: client name `electrum-spv`, versions 1.4 to 1.6,
/// default timeouts, on the network of `params`.
///
/// The parameters are named statically ([`REGTEST`], [`MAINNET`]) rather than through
/// [`Network::params`](electrum_spv_core::chain::Network::params): a `Network` chosen at run
/// time links every network's checkpoint table (testnet3's alone is 89 KB of flash).
fn config(params: &'static Params) -> Config {
    let mut config = Config::new(params);
    config.versions = VersionRange::DEFAULT;
    config
}

// ----- the session's memory -----

/// Memory for one session, reserved at link time in `.bss` (zero-initialised: no flash).
struct Slot {
    busy: AtomicBool,
    memory: UnsafeCell<MaybeUninit<ScriptSession>>,
    line: UnsafeCell<MaybeUninit<[u8; LINE]>>,
    out: UnsafeCell<MaybeUninit<[u8; OUT]>>,
    pending: UnsafeCell<MaybeUninit<[PendingSlot; PENDING]>>,
}

// SAFETY: `memory` and the buffers are only reached through `Slot::take`, whose `busy` flag
// hands out at most one `Taken` at a time (and the firmware runs on one core without
// interrupts).
unsafe impl Sync for Slot {}

/// The steps' session.
static SLOT: Slot = Slot {
    busy: AtomicBool::new(false),
    memory: UnsafeCell::new(MaybeUninit::uninit()),
    line: UnsafeCell::new(MaybeUninit::uninit()),
    out: UnsafeCell::new(MaybeUninit::uninit()),
    pending: UnsafeCell::new(MaybeUninit::uninit()),
};

/// Exclusive use of [`SLOT`] until dropped.
struct Taken(&'static Slot);

impl Slot {
    fn take(&'static self) -> Result<Taken, Failure> {
        if self.busy.swap(true, Ordering::Acquire) {
            return Err(Failure::Check("the session slot is already in use"));
        }
        Ok(Taken(self))
    }
}

impl Taken {
    /// Puts a new session in the slot over the slot's buffers (the old session, if any, is
    /// plain data: nothing to drop, and it is never used again).
    ///
    /// Not inlined, so that the stack `Session::new` needs (the session's state is built on the
    /// stack and then copied here, see the README) is released before the work starts.
    #[inline(never)]
    fn init(&mut self, params: &'static Params, now: Instant) -> &mut ScriptSession {
        let slot = self.0;
        // SAFETY: the `busy` flag makes this `Taken` the only path to the slot's memory and
        // buffers, and `&mut self` makes this the only session using them: the one it
        // replaces is overwritten and never used again.
        let (memory, line, out, pending) = unsafe {
            (
                &mut *slot.memory.get(),
                &mut *slot.line.get(),
                &mut *slot.out.get(),
                &mut *slot.pending.get(),
            )
        };
        // Buffers are written before use (the slots by the session, the bytes by `write`s):
        // zeroing them here keeps them in `.bss` and costs only a memset.
        let line = line.write([0; LINE]);
        let out = out.write([0; OUT]);
        let pending = pending.write([PendingSlot::EMPTY; PENDING]);
        let storage = SessionStorage::new(line, out, pending);
        // The session's state is put in place as the constant it starts from, then started
        // there: no session is built on the stack.
        let session = memory.write(ScriptSession::EMPTY);
        session.start(storage, config(params), now);
        session
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        SLOT.busy.store(false, Ordering::Release);
    }
}

/// `size_of::<ScriptSession>()` on this target.
pub const SESSION_SIZE: usize = size_of::<ScriptSession>();

// ----- replay -----

/// How the server's bytes were cut into reads.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reads {
    /// Reads fed to `handle_input`.
    pub count: u32,
    /// Bytes fed.
    pub bytes: u32,
    /// Reads of a single byte.
    pub one_byte: u32,
    /// Reads ending inside a line.
    pub mid_line: u32,
    /// Reads holding two or more line ends.
    pub several_lines: u32,
}

/// What [`replay`] found.
#[derive(Clone, Copy, Debug)]
pub struct Replayed {
    /// The negotiated version.
    pub version: ProtocolVersion,
    /// Requests answered (a response or the expected server error each).
    pub answered: u32,
    /// The verified tip after the new-block notification.
    pub tip: ChainTip,
    /// Rows of the history whose status was recomputed.
    pub history_rows: u32,
    /// Depth of the verified transaction merkle proof.
    pub tx_depth: u8,
    /// The reads.
    pub reads: Reads,
    /// Bytes the session wrote during the script (all as recorded).
    pub written: u32,
    /// Simulated time of the keep-alive ping, in ms after the last request.
    pub ping_after_ms: u64,
    /// Simulated time of the unanswered request's timeout, in ms after it was sent.
    pub timeout_after_ms: u64,
    /// Stack peak while creating the session in its static (counted from the top of RAM).
    pub init_stack_peak: usize,
    /// Stack the creation itself took: the peak less what was in use at the call.
    pub init_stack_own: usize,
}

/// Replays the recorded exchange through a session and checks every answer; see the module
/// docs.
#[inline(never)]
pub fn replay() -> Result<Replayed, Failure> {
    let mut slot = SLOT.take()?;
    let in_use = stack::used_now();
    let session = slot.init(&REGTEST, START);
    // What creating the session took, then a fresh paint for what driving it takes.
    let init_stack_peak =
        stack::peak_bytes().ok_or(Failure::Check("the stack reached the statics"))?;
    stack::paint();
    let mut driver = Driver {
        session,
        now: START,
        wire: Stream::new(Dir::Out).map_err(|_| Failure::Recording)?,
        written: 0,
        requested_at: None,
        reads: Reads::default(),
    };
    let mut checks = Checks::default();
    let mut incoming = Stream::new(Dir::In).map_err(|_| Failure::Recording)?;

    driver.transmit()?; // server.version, queued by `new`
    while let Some((index, _)) = incoming.position().map_err(|_| Failure::Recording)? {
        driver.expect_written_before(index)?;
        driver.feed_run(&mut checks, &mut incoming)?;
    }
    if driver
        .wire
        .position()
        .map_err(|_| Failure::Recording)?
        .is_some()
    {
        return Err(Failure::Check(
            "the session did not write everything the recording has",
        ));
    }
    let summary = checks.finish(driver.session)?;
    let (ping_after_ms, timeout_after_ms) = driver.after_the_script()?;
    Ok(Replayed {
        init_stack_peak,
        init_stack_own: init_stack_peak.saturating_sub(in_use),
        ping_after_ms,
        timeout_after_ms,
        reads: driver.reads,
        written: driver.written,
        ..summary
    })
}

/// The caller's side of the loop: the session, the simulated clock, and the recorded bytes the
/// session must write.
struct Driver<'s> {
    session: &'s mut ScriptSession,
    now: Instant,
    /// What the client wrote in the recording, still to be matched.
    wire: Stream,
    /// Bytes the session wrote so far.
    written: u32,
    /// When the requests were queued.
    requested_at: Option<Instant>,
    reads: Reads,
}

impl Driver<'_> {
    /// Before the read that starts entry `index`, the session must have written exactly what
    /// the recording wrote before it: everything of earlier entries, nothing of later ones.
    fn expect_written_before(&mut self, index: usize) -> Result<(), Failure> {
        match self.wire.position().map_err(|_| Failure::Recording)? {
            None => Ok(()),
            Some((next, true)) if next > index => Ok(()),
            Some((next, _)) => Err(Failure::Replay {
                what: "written bytes out of step with the recording, at transcript entry",
                at: next as u64,
            }),
        }
    }

    /// Feeds one run of recorded reads in reads of the [`READS`] sizes.
    fn feed_run(&mut self, checks: &mut Checks, incoming: &mut Stream) -> Result<(), Failure> {
        let mut rx = [0u8; RX];
        loop {
            let want = READS[self.reads.count as usize % READS.len()].min(RX);
            let mut n = 0;
            while n < want {
                match incoming.next_in_run().map_err(|_| Failure::Recording)? {
                    Some(b) => rx[n] = b,
                    None => break,
                }
                n += 1;
            }
            if n == 0 {
                return Ok(());
            }
            let read = &rx[..n];
            self.count_read(read);
            self.now += READ;
            self.input(checks, read)?;
            // The loop's timer step: nothing is due during the script, and nothing may fire.
            self.session.handle_timeout(self.now);
            self.drain(checks)?;
        }
    }

    fn count_read(&mut self, read: &[u8]) {
        let r = &mut self.reads;
        r.count += 1;
        r.bytes += read.len() as u32;
        r.one_byte += u32::from(read.len() == 1);
        r.mid_line += u32::from(read.last() != Some(&b'\n'));
        r.several_lines += u32::from(read.iter().filter(|&&b| b == b'\n').count() >= 2);
    }

    /// `handle_input` stops after each complete line: drain the events, then feed the rest.
    fn input(&mut self, checks: &mut Checks, read: &[u8]) -> Result<(), Failure> {
        let mut rest = read;
        while !rest.is_empty() {
            let used = self.session.handle_input(self.now, rest);
            rest = rest.get(used..).unwrap_or(&[]);
            self.drain(checks)?;
            if used == 0 && !rest.is_empty() {
                return Err(Failure::Check("handle_input made no progress"));
            }
        }
        Ok(())
    }

    /// Drains the events, sends the requests once `Ready` came, and transmits.
    fn drain(&mut self, checks: &mut Checks) -> Result<(), Failure> {
        let mut ready = false;
        while let Some(event) = self.session.poll_event() {
            ready |= checks.on_event(event)?;
        }
        if ready {
            self.requested_at = Some(self.now);
            for (tag, request) in REQUESTS.iter().enumerate() {
                let id = self
                    .session
                    .request(self.now, request, tag as u32)
                    .map_err(Failure::Request)?;
                if id != tag as u64 + 2 {
                    return Err(Failure::Replay {
                        what: "request got an unexpected id, tag",
                        at: tag as u64,
                    });
                }
                // OUT holds one request: write it before queueing the next.
                self.transmit()?;
            }
        }
        self.transmit()
    }

    /// Writes what the session has queued, each byte checked against the recording.
    fn transmit(&mut self) -> Result<(), Failure> {
        let mut tx = [0u8; TX];
        loop {
            let n = self.session.poll_transmit(&mut tx);
            if n == 0 {
                return Ok(());
            }
            for &b in tx.get(..n).unwrap_or(&[]) {
                let expected = self.wire.next_byte().map_err(|_| Failure::Recording)?;
                if expected != Some(b) {
                    return Err(Failure::Replay {
                        what: "the session wrote a byte the recording does not have, at offset",
                        at: u64::from(self.written),
                    });
                }
                self.written += 1;
            }
        }
    }

    /// After the script the server falls silent; the simulated clock runs on. Returns when the
    /// keep-alive ping went out (after the last request) and when the unanswered request
    /// timed out (after it was sent).
    fn after_the_script(&mut self) -> Result<(u64, u64), Failure> {
        let last_send = self
            .requested_at
            .ok_or(Failure::Check("no requests were sent"))?;
        let ping_at = self
            .session
            .poll_timeout()
            .ok_or(Failure::Check("no keep-alive time after the script"))?;
        if ping_at != last_send + DEFAULT_PING_INTERVAL {
            return Err(Failure::Check(
                "poll_timeout is not the keep-alive time 240 s after the last request",
            ));
        }
        // Just before: nothing.
        self.tick(ping_at - Duration::from_millis(1))?;
        expect_transmit(self.session, b"")?;
        // At the time: a `server.ping`.
        self.tick(ping_at)?;
        expect_transmit(self.session, KEEPALIVE)?;

        // A request the silent server never answers.
        let sent_at = self.now;
        let id = self
            .session
            .request(sent_at, &Request::HeadersSubscribe, UNANSWERED_TAG)
            .map_err(Failure::Request)?;
        expect_transmit(self.session, UNANSWERED)?;
        let deadline = self
            .session
            .poll_timeout()
            .ok_or(Failure::Check("no deadline for the unanswered request"))?;
        if deadline != sent_at + DEFAULT_REQUEST_TIMEOUT {
            return Err(Failure::Check(
                "poll_timeout is not the request deadline 40 s after sending",
            ));
        }
        self.tick(deadline - Duration::from_millis(1))?;
        if self.session.poll_event().is_some() {
            return Err(Failure::Check("an event before the request deadline"));
        }
        self.tick(deadline)?;
        match self.session.poll_event() {
            Some(Event::TimedOut {
                id: got,
                method: Method::HeadersSubscribe,
                tag: UNANSWERED_TAG,
            }) if got == id => {}
            _ => return Err(Failure::Check("the unanswered request did not time out")),
        }
        // The keep-alive ping expired silently with it: nothing is in flight any more.
        if self.session.poll_event().is_some() || self.session.in_flight() != 0 {
            return Err(Failure::Check("requests left in flight after the deadline"));
        }
        // Its answer, arriving late, is refused rather than taken for another request's.
        let late = b"{\"jsonrpc\":\"2.0\",\"result\":null,\"id\":19}\n";
        expect_single(
            self.session,
            self.now,
            late,
            |e| matches!(e, Event::ProtocolError(ProtocolError::UnknownId(19))),
            "a late answer was not refused as an unknown id",
        )?;
        if !self.session.is_ready() {
            return Err(Failure::Check("the session did not survive the timeout"));
        }
        Ok((
            (ping_at - last_send).millis(),
            (deadline - sent_at).millis(),
        ))
    }

    /// Advances the simulated clock to `now` and runs the session's timers.
    fn tick(&mut self, now: Instant) -> Result<(), Failure> {
        if now < self.now {
            return Err(Failure::Check("the simulated clock ran backwards"));
        }
        self.now = now;
        self.session.handle_timeout(now);
        Ok(())
    }
}

/// Everything the session writes now must be `expected`.
fn expect_transmit(session: &mut ScriptSession, expected: &[u8]) -> Result<(), Failure> {
    let mut tx = [0u8; TX];
    let mut rest = expected;
    loop {
        let n = session.poll_transmit(&mut tx);
        if n == 0 {
            break;
        }
        let got = tx.get(..n).unwrap_or(&[]);
        match rest.strip_prefix(got) {
            Some(r) => rest = r,
            None => return Err(Failure::Check("the session wrote unexpected bytes")),
        }
    }
    if rest.is_empty() {
        Ok(())
    } else {
        Err(Failure::Check(
            "the session did not write the expected bytes",
        ))
    }
}

/// Feeds `input` (whole lines) and expects exactly one event, which `is_it` accepts.
fn expect_single(
    session: &mut ScriptSession,
    now: Instant,
    input: &[u8],
    mut is_it: impl FnMut(&Event<'_>) -> bool,
    otherwise: &'static str,
) -> Result<(), Failure> {
    let mut rest = input;
    let mut seen = 0u32;
    while !rest.is_empty() {
        let used = session.handle_input(now, rest);
        rest = rest.get(used..).unwrap_or(&[]);
        while let Some(event) = session.poll_event() {
            if !is_it(&event) {
                return Err(Failure::Check(otherwise));
            }
            seen += 1;
        }
        if used == 0 && !rest.is_empty() {
            return Err(Failure::Check("handle_input made no progress"));
        }
    }
    if seen == 1 {
        Ok(())
    } else {
        Err(Failure::Check(otherwise))
    }
}

/// What the answers showed so far; every check that needs two answers runs when the second
/// arrives or in [`Checks::finish`].
#[derive(Default)]
struct Checks {
    version: Option<ProtocolVersion>,
    /// One bit per request tag.
    answered: u32,
    /// Headers 100..=113 verified, then 114 from the notification.
    chain: Option<HeaderVerifier>,
    /// Hash and merkle root of header 111 of the verified chunk.
    verified_111: Option<(BlockHash, MerkleNode)>,
    /// Hash of header 111 as proven by `blockchain.block.header(111, 113)`.
    proven_111: Option<BlockHash>,
    /// Tip announced by `blockchain.headers.subscribe`.
    subscribed_tip: Option<BlockHash>,
    /// The transaction's merkle branch, folded, waiting for the verified header 111.
    tx_branch: Option<BranchFolder>,
    txid_checked: bool,
    /// Status recomputed from the history, and the rows.
    history: Option<(Option<Status>, u32)>,
    subscribed_status: Option<Option<Status>>,
    /// Confirmed and mempool value of the unspent outputs.
    utxo_sums: Option<(u64, u64)>,
    balance: Option<Balance>,
    notified_tip: bool,
    notified_status: bool,
}

impl Checks {
    /// Checks one event; `true` for `Ready` (the caller then sends the requests).
    fn on_event(&mut self, event: Event<'_>) -> Result<bool, Failure> {
        match event {
            Event::Ready { version } => {
                if version != ProtocolVersion::V1_6 || self.version.is_some() {
                    return Err(Failure::Check("negotiated something other than 1.6, once"));
                }
                self.version = Some(version);
                return Ok(true);
            }
            Event::Response {
                method,
                tag,
                result,
                ..
            } => {
                self.answer(method, tag)?;
                self.response(tag, result)?;
            }
            Event::ServerError {
                method, tag, error, ..
            } => {
                self.answer(method, tag)?;
                // Only the header beyond the tip is refused (ElectrumX's "out of range").
                if tag != 5 || error.code != Some(1) || error.message != OUT_OF_RANGE {
                    return Err(Failure::Replay {
                        what: "unexpected server error for request",
                        at: u64::from(tag),
                    });
                }
            }
            Event::Notification(Notification::Header { height, header }) => {
                self.new_block(height, &header)?
            }
            Event::Notification(Notification::ScriptStatus {
                script_hash,
                status,
            }) => {
                let expected = Status::from_hex(STATUS_114).map_err(Failure::Hex)?;
                if script_hash != SCRIPT_HASH || status != Some(expected) || self.notified_status {
                    return Err(Failure::Check("unexpected script status notification"));
                }
                self.notified_status = true;
            }
            Event::ProtocolError(e) => return Err(Failure::Protocol(e)),
            Event::Failed(e) => return Err(Failure::Fatal(e)),
            Event::TimedOut { tag, .. } => {
                return Err(Failure::Replay {
                    what: "request timed out during the script, tag",
                    at: u64::from(tag),
                });
            }
            _ => return Err(Failure::Check("unexpected event during the script")),
        }
        Ok(false)
    }

    /// Marks request `tag` answered: once, and with the method it asked.
    fn answer(&mut self, method: Method, tag: u32) -> Result<(), Failure> {
        let known = REQUESTS.get(tag as usize).map(Request::method);
        let bit = 1u32.checked_shl(tag).unwrap_or(0);
        if known != Some(method) || self.answered & bit != 0 {
            return Err(Failure::Replay {
                what: "answer to an unknown or already answered request, tag",
                at: u64::from(tag),
            });
        }
        self.answered |= bit;
        Ok(())
    }

    /// Decodes and checks the result of request `tag`. Not inlined (nor is [`Checks::chunk`]):
    /// each answer's locals then take stack only while it is checked.
    #[inline(never)]
    fn response(&mut self, tag: u32, result: &[u8]) -> Result<(), Failure> {
        let request = REQUESTS
            .get(tag as usize)
            .ok_or(Failure::Check("a response to a request not in the script"))?;
        let bad = || Failure::BadResult(request.method());
        match *request {
            Request::Features => {
                let genesis = response::features_genesis(result).map_err(|_| bad())?;
                if genesis != REGTEST.genesis_hash {
                    return Err(Failure::Check("server.features: not regtest's genesis"));
                }
            }
            Request::HeadersSubscribe => {
                let (height, header) = response::headers_subscribe(result).map_err(|_| bad())?;
                let hash = Header::from_bytes(&header).block_hash();
                if height != TIP_HEIGHT || hash != TIP_113 {
                    return Err(Failure::Check("headers.subscribe: not tip 113"));
                }
                self.subscribed_tip = Some(hash);
            }
            Request::BlockHeader { cp_height: 0, .. } => {
                let header =
                    Header::from_bytes(&response::block_header(result).map_err(|_| bad())?);
                let hash = header.block_hash();
                let target = header
                    .bits
                    .to_target()
                    .map_err(|_| Failure::Check("header 5: invalid bits"))?;
                if hash != HASH_5 || !target.is_met_by(&hash) {
                    return Err(Failure::Check("header 5: wrong hash or no proof of work"));
                }
            }
            Request::BlockHeader { height, cp_height } => {
                let proof = response::block_header_proof(result).map_err(|_| bad())?;
                let header = proof.header.ok_or_else(bad)?;
                let hash = Header::from_bytes(&header).block_hash();
                prove(&hash, height, cp_height, proof.branch, &proof.root)?;
                self.proven_111 = Some(hash);
            }
            Request::BlockHeaders {
                start_height,
                count,
                cp_height,
            } => self.chunk(result, start_height, count, cp_height)?,
            Request::ScriptGetHistory(_) => {
                let mut status = StatusHasher::new();
                let mut order = CanonicalOrder::new();
                let mut rows = 0;
                let mut has_tx = false;
                for item in response::history(result).map_err(|_| bad())? {
                    let item = item.map_err(|_| bad())?;
                    order
                        .push(&item.txid, item.height)
                        .map_err(Failure::Order)?;
                    status.push(&item.txid, item.height);
                    has_tx |= item.txid == TXID && item.height == TxHeight::Confirmed(TX_HEIGHT);
                    rows += 1;
                }
                if !has_tx {
                    return Err(Failure::Check("history: the transaction is not at 111"));
                }
                self.history = Some((status.finish(), rows));
            }
            Request::ScriptSubscribe(_) => {
                self.subscribed_status =
                    Some(response::subscribe_status(result).map_err(|_| bad())?);
            }
            Request::ScriptListUnspent(_) => {
                let (mut confirmed, mut mempool) = (0u64, 0u64);
                for utxo in response::utxos(result).map_err(|_| bad())? {
                    let utxo = utxo.map_err(|_| bad())?;
                    let sum = if utxo.height > 0 {
                        &mut confirmed
                    } else {
                        &mut mempool
                    };
                    *sum = sum.saturating_add(utxo.value);
                }
                self.utxo_sums = Some((confirmed, mempool));
            }
            Request::ScriptGetBalance(_) => {
                self.balance = Some(response::balance(result).map_err(|_| bad())?);
            }
            Request::ScriptGetMempool(_) => {
                let mut rows = 0;
                for item in response::history(result).map_err(|_| bad())? {
                    let item = item.map_err(|_| bad())?;
                    if !item.height.is_mempool() || item.fee.is_none() {
                        return Err(Failure::Check("get_mempool: a confirmed or fee-less row"));
                    }
                    rows += 1;
                }
                if rows != MEMPOOL_ROWS {
                    return Err(Failure::Check("get_mempool: not 4 rows"));
                }
            }
            Request::TransactionGet(txid) => {
                let digits = response::transaction_hex(result).map_err(|_| bad())?;
                if txid_of_hex(digits)? != txid {
                    return Err(Failure::Check(
                        "transaction.get: bytes do not hash to the txid",
                    ));
                }
                self.txid_checked = true;
            }
            Request::TransactionGetMerkle { txid, height } => {
                let proof = response::merkle_proof(result).map_err(|_| bad())?;
                if proof.block_height != height {
                    return Err(Failure::Check("get_merkle: proof for another block"));
                }
                let mut folder = BranchFolder::new(txid, proof.pos);
                for sibling in proof.branch.iter() {
                    folder
                        .push(&sibling.map_err(|_| bad())?)
                        .map_err(Failure::Merkle)?;
                }
                self.tx_branch = Some(folder);
            }
            Request::EstimateFee { .. } => {
                // 2e-05 BTC/kvB in the recording (regtest's fallback fee). Compared as text:
                // `response::fee_rate` parses an f64, which links libcore's float parser
                // (about 13 KB of flash with its tables, 1.6 KB of stack) into the firmware.
                if result != b"2e-05" {
                    return Err(Failure::Check("estimatefee: not the recorded rate"));
                }
            }
            Request::MempoolInfo => {
                if !result.starts_with(b"{\"mempoolminfee\":") {
                    return Err(bad());
                }
            }
            Request::Ping { .. } => {
                // Below 1.7 a ping answers `null` (no padding).
                if result != b"null" {
                    return Err(bad());
                }
            }
            _ => return Err(Failure::Check("a response to a request not in the script")),
        }
        Ok(())
    }

    /// Verifies the header chunk as a chain from its first header, and ties its last header
    /// to the pinned checkpoint root by its `cp_height` proof.
    #[inline(never)]
    fn chunk(
        &mut self,
        result: &[u8],
        start: u32,
        count: u32,
        cp_height: u32,
    ) -> Result<(), Failure> {
        let bad = || Failure::BadResult(Method::BlockHeaders);
        let chunk = response::block_headers(result).map_err(|_| bad())?;
        if chunk.count != count {
            return Err(Failure::Check("block.headers: wrong count"));
        }
        let mut headers = chunk.headers();
        let first = headers.next().ok_or_else(bad)?.map_err(|_| bad())?;
        // The chunk starts mid-chain: its first header is taken on trust (only its own proof of
        // work is checked); the `cp_height` proof below ties the whole chunk to the pinned root.
        let chain = self.chain.insert(
            HeaderVerifier::trusting_first(&REGTEST, start, &first).map_err(Failure::Header)?,
        );
        for (height, header) in (start + 1..).zip(headers) {
            let header = header.map_err(|_| bad())?;
            let hash = chain.push(&header).map_err(Failure::Header)?;
            if height == TX_HEIGHT {
                self.verified_111 = Some((hash, Header::from_bytes(&header).merkle_root));
            }
        }
        let tip = chain.tip().copied().ok_or_else(bad)?;
        if tip.height != start + count - 1 || tip.hash != TIP_113 {
            return Err(Failure::Check(
                "block.headers: chain does not end at block 113",
            ));
        }
        let (branch, root) = chunk.proof.ok_or_else(bad)?;
        prove(&tip.hash, tip.height, cp_height, branch, &root)
    }

    /// The new-block notification: verified onto the chain.
    fn new_block(&mut self, height: u32, header: &[u8; HEADER_SIZE]) -> Result<(), Failure> {
        let chain = self
            .chain
            .as_mut()
            .ok_or(Failure::Check("a new block before the chain was verified"))?;
        if height != chain.next_height() || self.notified_tip {
            return Err(Failure::Check("new block at an unexpected height"));
        }
        if chain.push(header).map_err(Failure::Header)? != TIP_114 {
            return Err(Failure::Check("new block is not block 114"));
        }
        self.notified_tip = true;
        Ok(())
    }

    /// The checks that need several answers, once the script is over.
    fn finish(self, session: &ScriptSession) -> Result<Replayed, Failure> {
        if self.answered != (1 << REQUESTS.len()) - 1 || session.in_flight() != 0 {
            return Err(Failure::Check("not every request was answered"));
        }
        if session.dropped_events() != 0 {
            return Err(Failure::Check("the session dropped events"));
        }
        let (hash_111, root_111) = self
            .verified_111
            .ok_or(Failure::Check("no verified header 111"))?;
        if self.proven_111 != Some(hash_111) || hash_111 != HASH_111 {
            return Err(Failure::Check("header 111: proof and chain disagree"));
        }
        if self.subscribed_tip != Some(TIP_113) {
            return Err(Failure::Check("subscribed tip is not the verified one"));
        }
        // The transaction is in block 111 of the verified chain.
        let depth = self
            .tx_branch
            .ok_or(Failure::Check("no merkle proof"))?
            .finish(&root_111)
            .map_err(Failure::Merkle)?;
        if depth.get() != TX_DEPTH || !self.txid_checked {
            return Err(Failure::Check("merkle proof depth or raw transaction"));
        }
        let (status, rows) = self.history.ok_or(Failure::Check("no history"))?;
        let expected = Status::from_hex(STATUS_113).map_err(Failure::Hex)?;
        if rows != HISTORY_ROWS
            || status != Some(expected)
            || self.subscribed_status != Some(status)
        {
            return Err(Failure::Check(
                "status recomputed from the history differs from the server's",
            ));
        }
        if self.balance != Some(BALANCE)
            || self.utxo_sums != Some((BALANCE.confirmed, BALANCE.unconfirmed as u64))
        {
            return Err(Failure::Check(
                "balance is not the sum of the unspent outputs",
            ));
        }
        if script_hash(&SPK) != SCRIPT_HASH {
            return Err(Failure::Check("script hash of the address"));
        }
        let tip = self
            .chain
            .as_ref()
            .and_then(|v| v.tip().copied())
            .ok_or(Failure::Check("no chain"))?;
        if !self.notified_tip || !self.notified_status || tip.hash != TIP_114 {
            return Err(Failure::Check(
                "the new block and status were not both notified",
            ));
        }
        Ok(Replayed {
            version: self.version.ok_or(Failure::Check("never ready"))?,
            answered: self.answered.count_ones(),
            tip,
            history_rows: rows,
            tx_depth: depth.get(),
            reads: Reads::default(),
            written: 0,
            ping_after_ms: 0,
            timeout_after_ms: 0,
            init_stack_peak: 0,
            init_stack_own: 0,
        })
    }
}

/// Checks a `cp_height` proof against the pinned root; the server's root must be that root.
fn prove(
    hash: &BlockHash,
    height: u32,
    cp_height: u32,
    branch: Branch<'_>,
    server_root: &MerkleNode,
) -> Result<(), Failure> {
    if cp_height != TIP_HEIGHT || *server_root != CP_ROOT_113 {
        return Err(Failure::Check(
            "cp_height proof: not against the pinned root",
        ));
    }
    let mut folder =
        HeaderProofFolder::new(hash, height, cp_height).map_err(Failure::HeaderProof)?;
    for sibling in branch.iter() {
        let sibling = sibling.map_err(|_| Failure::Check("cp_height proof: bad hash"))?;
        folder.push(&sibling).map_err(Failure::HeaderProof)?;
    }
    folder.finish(&CP_ROOT_113).map_err(Failure::HeaderProof)
}

/// The txid of a raw transaction given as hex, hashed as the digits are decoded (32 bytes at a
/// time: the transaction is never held whole).
fn txid_of_hex(digits: &[u8]) -> Result<Txid, Failure> {
    let mut hasher = TxidHasher::new();
    let mut raw = [0u8; 32];
    for part in digits.chunks(64) {
        let raw = raw.get_mut(..part.len() / 2).unwrap_or(&mut []);
        electrum_spv_core::hex::decode_to_slice(part, raw)
            .map_err(|_| Failure::BadResult(Method::TransactionGet))?;
        if hasher.feed(raw).map_err(Failure::Tx)? != raw.len() {
            return Err(Failure::Check("bytes after the transaction"));
        }
    }
    hasher.finish().map_err(Failure::Tx)
}

// ----- hostile input -----

/// What [`hostile`] saw refused.
#[derive(Clone, Copy, Debug)]
pub struct Refused {
    /// Length of the over-long line, as reported.
    pub oversize_len: usize,
    /// The version negotiated after the bad input.
    pub version: ProtocolVersion,
    /// Why the mainnet session stopped.
    pub wrong_network: FatalError,
    /// What a request on it returned.
    pub request_after: RequestError,
}

/// A line of [`OVERSIZE_LEN`] bytes, fed in pieces of this.
const FILL: [u8; 64] = [b'x'; 64];
/// Length of the over-long line: longer than [`LINE`].
const OVERSIZE_LEN: usize = LINE + 1024;

/// Feeds hostile bytes to fresh sessions in the same memory; see the module docs.
#[inline(never)]
pub fn hostile() -> Result<Refused, Failure> {
    let mut slot = SLOT.take()?;
    let now = START;

    // 1. Garbage before the real negotiation: each refused, and the session carries on.
    let session = slot.init(&REGTEST, now);
    drain_transmit(session);
    for _ in 0..OVERSIZE_LEN / FILL.len() {
        if session.handle_input(now, &FILL) != FILL.len() || session.poll_event().is_some() {
            return Err(Failure::Check(
                "an over-long line was not discarded quietly",
            ));
        }
    }
    let mut oversize_len = 0;
    expect_single(
        session,
        now,
        b"\n",
        |e| match e {
            Event::ProtocolError(ProtocolError::OversizeLine { len }) => {
                oversize_len = *len;
                true
            }
            _ => false,
        },
        "an over-long line was not refused as OversizeLine",
    )?;
    if oversize_len != OVERSIZE_LEN {
        return Err(Failure::Check("OversizeLine reported the wrong length"));
    }
    expect_single(
        session,
        now,
        b"{\"jsonrpc\":\"2.0\",\"result\":[\"ElectrumX 2.0.0\",\"1.6\"],\"id\":7}\n",
        |e| matches!(e, Event::ProtocolError(ProtocolError::UnknownId(7))),
        "an answer to an id never sent was not refused as UnknownId",
    )?;
    expect_single(
        session,
        now,
        b"{\"jsonrpc\":\"2.0\",\"result\":\xff}\n",
        |e| matches!(e, Event::ProtocolError(ProtocolError::Json(_))),
        "invalid JSON was not refused as Json",
    )?;
    let version =
        negotiate(session, now)?.ok_or(Failure::Check("no negotiation after the bad input"))?;

    // 2. A mainnet wallet talking to the regtest server: the genesis check stops it.
    let session = slot.init(&MAINNET, now);
    drain_transmit(session);
    if negotiate(session, now)?.is_some() {
        return Err(Failure::Check(
            "a mainnet session accepted a regtest server",
        ));
    }
    let wrong_network = session
        .failure()
        .ok_or(Failure::Check("the mainnet session did not fail"))?;
    if wrong_network != FatalError::WrongGenesis {
        return Err(Failure::Fatal(wrong_network));
    }
    let request_after = match session.request(now, &Request::HeadersSubscribe, 0) {
        Err(e @ RequestError::Closed) => e,
        _ => return Err(Failure::Check("a failed session accepted a request")),
    };
    if session.poll_transmit(&mut [0u8; TX]) != 0 || session.poll_timeout().is_some() {
        return Err(Failure::Check("a failed session still writes or waits"));
    }
    Ok(Refused {
        oversize_len,
        version,
        wrong_network,
        request_after,
    })
}

/// Discards what the session queued (the `server.version` request).
fn drain_transmit(session: &mut ScriptSession) {
    let mut tx = [0u8; TX];
    while session.poll_transmit(&mut tx) != 0 {}
}

/// Feeds the recording's first two reads (the `server.version` and `server.features`
/// answers); returns the version if `Ready` came, `None` if the session failed.
fn negotiate(
    session: &mut ScriptSession,
    now: Instant,
) -> Result<Option<ProtocolVersion>, Failure> {
    let mut incoming = Stream::new(Dir::In).map_err(|_| Failure::Recording)?;
    let mut outcome = None;
    for _ in 0..2 {
        // One recorded read: the answer to the request just written.
        incoming.position().map_err(|_| Failure::Recording)?;
        let mut rx = [0u8; RX];
        loop {
            let mut n = 0;
            while n < RX {
                match incoming.next_in_run().map_err(|_| Failure::Recording)? {
                    Some(b) => rx[n] = b,
                    None => break,
                }
                n += 1;
            }
            if n == 0 {
                break;
            }
            let mut rest = rx.get(..n).unwrap_or(&[]);
            while !rest.is_empty() {
                let used = session.handle_input(now, rest);
                rest = rest.get(used..).unwrap_or(&[]);
                while let Some(event) = session.poll_event() {
                    outcome = match event {
                        Event::Ready { version } => Some(Some(version)),
                        Event::Failed(_) => Some(None),
                        _ => return Err(Failure::Check("unexpected event while negotiating")),
                    };
                }
                if used == 0 && !rest.is_empty() {
                    return Err(Failure::Check("handle_input made no progress"));
                }
            }
        }
        drain_transmit(session);
    }
    outcome.ok_or(Failure::Check("negotiation neither finished nor failed"))
}
