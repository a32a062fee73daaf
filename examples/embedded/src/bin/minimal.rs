//! # electrum-spv-minimal
//!
//! The flash probe: what a hardware wallet links to talk to an Electrum server and verify what
//! it says, and nothing else. `electrum-spv-firmware` (`src/main.rs`) is the thorough test; this
//! one is the size figure of issue 14 ("session + header verification + merkle, without the
//! test data and harness"), so it has no test harness and no formatting machinery: output is
//! fixed strings over raw semihosting writes (`core::fmt` is not linked; `scripts/core-size.sh`
//! checks), the verdict is the semihosting exit status, and the panic and fault handlers only
//! exit.
//!
//! It still verifies real data, and exits non-zero if anything fails:
//!
//! 1. a [`Session`] in caller-owned statics ([`Session::EMPTY`] put in place, then
//!    [`Session::start`]ed), driven through the caller's loop over four lines of the recorded
//!    ElectrumX 2.0 exchange (`build.rs` cuts them from `data/electrumx_1_6.json`): the session
//!    must write the recorded requests byte for byte; it negotiates 1.6 and checks the regtest
//!    genesis, then the answer to `blockchain.block.headers(100, 14, cp_height=113)` is verified
//!    as a chain ([`HeaderVerifier`]) and tied by its `cp_height` proof to a pinned root, and
//!    the answer to `blockchain.transaction.get_merkle` is verified against the verified header
//!    111 (and must fail at the sibling position);
//! 2. mainnet headers 822528..=822543 are verified from the compiled-in checkpoint anchor (so
//!    the mainnet checkpoint table is linked, as in a mainnet wallet); a corrupted copy of the
//!    last must be rejected.
//!
//! It prints `stack_peak_bytes=N` (from the top of RAM, by stack painting), `session_size_bytes=N`
//! (the session's own state: the size of the [`Session::EMPTY`] image in `.rodata`) and
//! `minimal ok` last when everything passed.

#![no_std]
#![no_main]

#[path = "../qemu.rs"]
mod qemu;
#[path = "../recording.rs"]
mod recording;
#[allow(dead_code)] // `used_now` is the big firmware's
#[path = "../stack.rs"]
mod stack;

use core::mem::{MaybeUninit, size_of};
use core::panic::PanicInfo;

use cortex_m_rt::{ExceptionFrame, entry, exception};
use cortex_m_semihosting::hio;
use electrum_spv_core::accumulator::HeaderProofFolder;
use electrum_spv_core::chain::{
    Anchor, Checkpoint, HeaderErrorKind, HeaderVerifier, MAINNET, Params, REGTEST,
};
use electrum_spv_core::header::{HEADER_SIZE, Header};
use electrum_spv_core::merkle::BranchFolder;
use electrum_spv_core::rpc::ProtocolVersion;
use electrum_spv_core::session::response::{self, Branch};
use electrum_spv_core::session::{Config, Event, PendingSlot, Request, Session, SessionStorage};
use electrum_spv_core::time::{Duration, Instant};
use electrum_spv_core::{BlockHash, MerkleNode};
use qemu::exit;
use recording::{CHUNK_LEN, CHUNK_START, CP_ROOT_113, TIP_113, TX_HEIGHT, TXID};

// `CLIENT_LEN` and `SERVER_LEN`, written by build.rs.
include!(concat!(env!("OUT_DIR"), "/minimal_script.rs"));

/// The recorded requests, ids renumbered 0..=3 (test data: `core-size.sh` counts it apart).
static CLIENT: [u8; CLIENT_LEN] = *include_bytes!(concat!(env!("OUT_DIR"), "/minimal_client.bin"));
/// The recorded answers to them (test data).
static SERVER: [u8; SERVER_LEN] = *include_bytes!(concat!(env!("OUT_DIR"), "/minimal_server.bin"));

/// The first mainnet period whose checkpoint this device carries.
const FIRST_CHECKPOINT: u32 = 404;
/// Checkpoints of periods 404..=407, copied out of core's table at compile time: a device
/// carries the few it anchors at (144 bytes), not the 473-entry table (17,028 bytes), which is
/// not linked because nothing refers to core's `MAINNET` at run time.
static CHECKPOINTS: [Checkpoint; 4] = match MAINNET.checkpoints_from::<4>(FIRST_CHECKPOINT) {
    Some(table) => table,
    None => panic!("mainnet checkpoints 404..=407 are compiled into core"),
};
/// Mainnet's rules with [`CHECKPOINTS`].
static DEVICE_MAINNET: Params = MAINNET.with_checkpoints(FIRST_CHECKPOINT, &CHECKPOINTS);

/// Mainnet headers verified from the checkpoint anchor.
const MAINNET_COUNT: usize = 16;
/// Height of the first: mainnet checkpoint 407's period starts here.
const MAINNET_START: u32 = 822_528;
/// Headers 822528..=822543 (test data), cut at compile time from the big firmware's period
/// file; only these 1,280 bytes reach flash.
static MAINNET_HEADERS: [u8; MAINNET_COUNT * HEADER_SIZE] = {
    const PERIOD: &[u8] = include_bytes!("../../data/mainnet_822528_824543.bin");
    let mut headers = [0u8; MAINNET_COUNT * HEADER_SIZE];
    let mut i = 0;
    while i < headers.len() {
        headers[i] = PERIOD[i];
        i += 1;
    }
    headers
};
/// Hash of block 822543.
const HASH_822543: BlockHash = BlockHash::from_display_hex_const(
    "00000000000000000001e196f2873cbe00af72c087e4e947521da0f579b42dc2",
);

/// The session's buffers: the headers answer (with its proof) is a 3,334-byte line; one request
/// is queued at a time; two are in flight.
const LINE: usize = 4096;
const OUT: usize = 256;
const PENDING: usize = 2;
/// Transmit and receive buffers of the caller's loop (a UART FIFO, a socket read).
const TX: usize = 64;
const RX: usize = 256;

const CP_HEIGHT: u32 = 113;

/// The requests sent once the session is ready; their tags are their indices.
const REQUESTS: [Request<'static>; 2] = [
    Request::BlockHeaders {
        start_height: CHUNK_START,
        count: CHUNK_LEN,
        cp_height: CP_HEIGHT,
    },
    Request::TransactionGetMerkle {
        txid: TXID,
        height: TX_HEIGHT,
    },
];

/// A failed check: the message printed before exiting non-zero.
struct Fail(&'static [u8]);

#[entry]
fn main() -> ! {
    // The session's memory, caller-owned statics (cortex-m-rt hands them out as `&'static mut`).
    static mut SESSION: MaybeUninit<Session<'static>> = MaybeUninit::uninit();
    static mut LINE_BUF: [u8; LINE] = [0; LINE];
    static mut OUT_BUF: [u8; OUT] = [0; OUT];
    static mut PENDING_SLOTS: [PendingSlot; PENDING] = [PendingSlot::EMPTY; PENDING];

    stack::paint();
    let storage = SessionStorage::new(LINE_BUF, OUT_BUF, PENDING_SLOTS);
    let result = session(SESSION, storage).and_then(|()| mainnet_headers());
    let peak = stack::peak_bytes();
    match result {
        Ok(()) => {
            say(b"minimal: session negotiated 1.6 with the recorded ElectrumX (regtest genesis checked)\n");
            say(b"minimal: regtest headers 100..=113 verified and proven (cp_height 113); merkle proof verified in block 111\n");
            say(b"minimal: mainnet headers 822528..=822543 verified from the checkpoint anchor; a corrupted one rejected\n");
            say(b"stack_peak_bytes=");
            say(decimal(&mut [0; 10], peak.unwrap_or(0)));
            say(b"\nsession_size_bytes=");
            say(decimal(&mut [0; 10], size_of::<Session<'_>>()));
            say(b"\nminimal ok\n");
            exit(peak.is_some())
        }
        Err(Fail(what)) => {
            say(b"FAIL: ");
            say(what);
            say(b"\n");
            exit(false)
        }
    }
}

/// The caller's loop over the recorded exchange: starts the session in `memory`, writes what it
/// queues (checked against [`CLIENT`]), feeds [`SERVER`] in reads of up to [`RX`] bytes, drains
/// the events, and sends [`REQUESTS`] once it is ready.
#[inline(never)]
fn session(
    memory: &'static mut MaybeUninit<Session<'static>>,
    storage: SessionStorage<'static>,
) -> Result<(), Fail> {
    let mut now = Instant::from_millis(1_000_000);
    let session = memory.write(Session::EMPTY);
    session.start(storage, Config::new(&REGTEST), now);
    let mut written = 0;
    let mut checks = Checks::default();
    transmit(session, &mut written)?;
    for read in SERVER.chunks(RX) {
        now += Duration::from_millis(3);
        let mut rest = read;
        while !rest.is_empty() {
            let used = session.handle_input(now, rest);
            rest = rest.get(used..).unwrap_or(&[]);
            let mut ready = false;
            while let Some(event) = session.poll_event() {
                ready |= checks.on_event(event)?;
            }
            if ready {
                for (tag, request) in (0..).zip(&REQUESTS) {
                    session
                        .request(now, request, tag)
                        .map_err(|_| Fail(b"a request was refused"))?;
                    transmit(session, &mut written)?;
                }
            }
            transmit(session, &mut written)?;
        }
        session.handle_timeout(now);
    }
    if written != CLIENT.len() || !checks.chain_proven || !checks.merkle_verified {
        return Err(Fail(b"the exchange did not complete"));
    }
    Ok(())
}

/// Writes what the session queued; every byte must be the recorded one.
fn transmit(session: &mut Session<'_>, written: &mut usize) -> Result<(), Fail> {
    let mut tx = [0u8; TX];
    loop {
        let n = session.poll_transmit(&mut tx);
        if n == 0 {
            return Ok(());
        }
        let sent = tx.get(..n).unwrap_or(&[]);
        let expected = CLIENT.get(*written..*written + n);
        if expected != Some(sent) {
            return Err(Fail(
                b"the session wrote something other than the recorded request",
            ));
        }
        *written += n;
    }
}

/// What the answers showed so far.
#[derive(Default)]
struct Checks {
    ready: bool,
    /// Merkle root of the verified header 111.
    root_111: Option<MerkleNode>,
    chain_proven: bool,
    merkle_verified: bool,
}

impl Checks {
    /// Checks one event; `true` for `Ready`.
    fn on_event(&mut self, event: Event<'_>) -> Result<bool, Fail> {
        match event {
            Event::Ready { version } if version == ProtocolVersion::V1_6 && !self.ready => {
                self.ready = true;
                Ok(true)
            }
            Event::Response { tag: 0, result, .. } => self.headers(result).map(|()| false),
            Event::Response { tag: 1, result, .. } => self.merkle(result).map(|()| false),
            _ => Err(Fail(b"unexpected event")),
        }
    }

    /// Verifies the header chunk as a chain and ties its tip to the pinned root.
    fn headers(&mut self, result: &[u8]) -> Result<(), Fail> {
        let bad = Fail(b"block.headers: bad result");
        let chunk = response::block_headers(result).map_err(|_| bad)?;
        let mut headers = chunk.headers();
        let first = headers
            .next()
            .and_then(Result::ok)
            .ok_or(Fail(b"block.headers: no first header"))?;
        // The chunk starts mid-chain: its first header is taken on trust (its own proof of work
        // is checked); the `cp_height` proof ties the chain's tip to the pinned root.
        let mut chain = HeaderVerifier::trusting_first(&REGTEST, CHUNK_START, &first)
            .map_err(|_| Fail(b"block.headers: first header"))?;
        for (height, header) in (CHUNK_START + 1..).zip(headers) {
            let header = header.map_err(|_| Fail(b"block.headers: bad header"))?;
            chain
                .push(&header)
                .map_err(|_| Fail(b"block.headers: header rejected"))?;
            if height == TX_HEIGHT {
                self.root_111 = Some(Header::from_bytes(&header).merkle_root);
            }
        }
        let tip = chain.tip().ok_or(Fail(b"block.headers: no tip"))?;
        if tip.height != CP_HEIGHT || tip.hash != TIP_113 {
            return Err(Fail(b"block.headers: chain does not end at block 113"));
        }
        let (branch, _server_root) = chunk.proof.ok_or(Fail(b"block.headers: no proof"))?;
        let mut folder = HeaderProofFolder::new(&tip.hash, tip.height, CP_HEIGHT)
            .map_err(|_| Fail(b"cp_height proof: heights"))?;
        for sibling in branch.iter() {
            let sibling = sibling.map_err(|_| Fail(b"cp_height proof: bad hash"))?;
            folder
                .push(&sibling)
                .map_err(|_| Fail(b"cp_height proof: rejected"))?;
        }
        folder
            .finish(&CP_ROOT_113)
            .map_err(|_| Fail(b"cp_height proof: not the pinned root"))?;
        self.chain_proven = true;
        Ok(())
    }

    /// Verifies the transaction's merkle proof against the verified header 111; the same
    /// branch at the sibling position must fail.
    fn merkle(&mut self, result: &[u8]) -> Result<(), Fail> {
        let proof = response::merkle_proof(result).map_err(|_| Fail(b"get_merkle: bad result"))?;
        let root = self
            .root_111
            .ok_or(Fail(b"get_merkle: header 111 not verified"))?;
        if proof.block_height != TX_HEIGHT
            || fold(proof.pos, proof.branch, &root).is_none()
            || fold(proof.pos ^ 1, proof.branch, &root).is_some()
        {
            return Err(Fail(b"get_merkle: proof not verified"));
        }
        self.merkle_verified = true;
        Ok(())
    }
}

/// Folds [`TXID`] at `pos` up `branch`; `Some` if it reaches `root`.
fn fold(pos: u32, branch: Branch<'_>, root: &MerkleNode) -> Option<()> {
    let mut folder = BranchFolder::new(TXID, pos);
    for sibling in branch.iter() {
        folder.push(&sibling.ok()?).ok()?;
    }
    folder.finish(root).ok().map(|_| ())
}

/// Verifies [`MAINNET_HEADERS`] from the checkpoint anchor at their first height; a copy of the
/// last with its nonce changed must miss its target.
#[inline(never)]
fn mainnet_headers() -> Result<(), Fail> {
    let anchor = Anchor::at_height(&DEVICE_MAINNET, MAINNET_START)
        .map_err(|_| Fail(b"mainnet: no checkpoint anchor"))?;
    let mut chain = HeaderVerifier::new(&DEVICE_MAINNET, anchor);
    let (body, last) = MAINNET_HEADERS
        .split_last_chunk::<HEADER_SIZE>()
        .ok_or(Fail(b"mainnet: no headers"))?;
    for header in body.chunks_exact(HEADER_SIZE) {
        chain
            .push_slice(header)
            .map_err(|_| Fail(b"mainnet: header rejected"))?;
    }
    let mut forged = *last;
    forged[79] ^= 0x80;
    match chain.push(&forged) {
        Err(e) if e.kind == HeaderErrorKind::InsufficientProofOfWork => {}
        _ => return Err(Fail(b"mainnet: a corrupted header was not rejected")),
    }
    match chain.push(last) {
        Ok(hash) if hash == HASH_822543 => Ok(()),
        _ => Err(Fail(b"mainnet: last header rejected or not block 822543")),
    }
}

/// Writes `bytes` to the host's stdout (raw semihosting, no formatting).
fn say(bytes: &[u8]) {
    if let Ok(mut out) = hio::hstdout() {
        // Nothing to do if the host refuses: the exit status carries the verdict.
        let _ = out.write_all(bytes);
    }
}

/// `n` in decimal, written at the end of `buf`.
fn decimal(buf: &mut [u8; 10], mut n: usize) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || at == 0 {
            return &buf[at..];
        }
    }
}

/// A panic fails the run. Nothing is formatted: the message's `Debug` code would link
/// `core::fmt`, the very thing this firmware leaves out.
#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    say(b"FAIL: panic\n");
    exit(false)
}

/// A fault fails the run too (cortex-m-rt's default handler would spin).
#[exception]
unsafe fn HardFault(_: &ExceptionFrame) -> ! {
    say(b"FAIL: hard fault\n");
    exit(false)
}
