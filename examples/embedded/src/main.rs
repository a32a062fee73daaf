//! # electrum-spv-firmware
//!
//! Runs the `electrum-spv-core` verifier on a Cortex-M4 (QEMU `mps2-an386`) against real mainnet
//! data, and measures what an embedded integrator pays for it:
//!
//! 1. verifies one whole difficulty period (headers 822528..=824543) from the compiled-in
//!    checkpoint anchor and checks the tip hash; corrupted headers must fail with the right
//!    error kind;
//! 2. verifies real merkle proofs of block 830000 against its header, and rejects a forged
//!    position (CVE-2012-2459);
//! 3. drives an Electrum protocol [`Session`](electrum_spv_core::session::Session) through the
//!    caller's loop over a scripted byte stream: a real ElectrumX 2.0 exchange compiled into
//!    flash, fed in awkward reads with a simulated clock; every answer is decoded and verified
//!    (header chain, `cp_height` proofs, a merkle proof, a txid, the address status), then the
//!    keep-alive and a request timeout run on the simulated clock (see [`scripted`]);
//! 4. feeds hostile bytes to fresh sessions (an over-long line, an unknown id, invalid JSON, a
//!    server on another network) and checks each typed error;
//! 5. reports the peak stack use of each step and overall (stack painting, see [`stack`]).
//!
//! Output and the exit status go to the host through semihosting, so `cargo run --release`
//! passes or fails with the firmware. `scripts/embedded-test.sh` and `scripts/core-size.sh` run it.

#![no_std]
#![no_main]

mod qemu;
mod recording;
mod scripted;
mod stack;
mod transcript;
mod vectors;

use core::fmt;
use core::panic::PanicInfo;

use cortex_m_rt::{ExceptionFrame, entry, exception};
use cortex_m_semihosting::hprintln;
use electrum_spv_core::chain::{
    Anchor, AnchorError, HeaderError, HeaderErrorKind, HeaderVerifier, MAINNET,
};
use electrum_spv_core::header::{HEADER_SIZE, Header, HeaderParseError};
use electrum_spv_core::hex::HexError;
use electrum_spv_core::merkle::{MerkleError, verify_tx_branch};
use electrum_spv_core::rpc::Method;
use electrum_spv_core::script::OrderError;
use electrum_spv_core::session::{FatalError, ProtocolError, RequestError};
use electrum_spv_core::tx::TxError;
use electrum_spv_core::{BlockHash, HeaderProofError, MerkleNode, Txid};

use qemu::exit;
use vectors::{DEPTH_830000, PERIOD_HEADERS, PERIOD_LEN, PERIOD_START, Proof};

/// Why the firmware failed; printed before exiting with failure.
enum Failure {
    /// No anchor at the segment start (the checkpoint list changed?).
    Anchor(AnchorError),
    /// A real header was rejected.
    Header(HeaderError),
    /// A corrupted header was accepted or rejected for the wrong reason.
    WrongRejection {
        /// What the corruption should have triggered.
        expected: HeaderErrorKind,
        /// What the verifier returned.
        got: Result<BlockHash, HeaderError>,
    },
    /// Embedded hex did not parse.
    Hex(HexError),
    /// The embedded header did not parse.
    HeaderParse(HeaderParseError),
    /// A real merkle proof was rejected.
    Merkle(MerkleError),
    /// A forged merkle proof was accepted or rejected for the wrong reason.
    WrongMerkleRejection(Result<u8, MerkleError>),
    /// The compiled-in ElectrumX recording does not have the expected layout.
    Recording,
    /// The scripted exchange went differently from the recording.
    Replay {
        /// What happened.
        what: &'static str,
        /// Where: an entry, offset or tag, as `what` says.
        at: u64,
    },
    /// The session refused a request.
    Request(RequestError),
    /// The session refused server input that it should have accepted.
    Protocol(ProtocolError),
    /// The session stopped, or stopped for the wrong reason.
    Fatal(FatalError),
    /// A result did not decode.
    BadResult(Method),
    /// A `cp_height` header proof was rejected.
    HeaderProof(HeaderProofError),
    /// A raw transaction did not parse.
    Tx(TxError),
    /// A history was not in canonical order.
    Order(OrderError),
    /// Any other check; the text says which.
    Check(&'static str),
}

// Only `Display` is used for reporting: `Debug` formatting would pull a few KiB of
// core::fmt builders into `.text` and blur what the size probe measures.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Anchor(e) => write!(f, "anchor: {e}"),
            Failure::Header(e) => write!(f, "real header rejected: {e}"),
            Failure::WrongRejection { expected, got } => {
                write!(f, "corrupted header: expected \"{expected}\", got ")?;
                match got {
                    Ok(hash) => write!(f, "accepted as {hash}"),
                    Err(e) => write!(f, "\"{e}\""),
                }
            }
            Failure::Hex(e) => write!(f, "embedded hex: {e}"),
            Failure::HeaderParse(e) => write!(f, "embedded header: {e}"),
            Failure::Merkle(e) => write!(f, "real merkle proof rejected: {e}"),
            Failure::WrongMerkleRejection(got) => {
                f.write_str("forged merkle proof: expected a duplicated left sibling, got ")?;
                match got {
                    Ok(depth) => write!(f, "accepted at depth {depth}"),
                    Err(e) => write!(f, "\"{e}\""),
                }
            }
            Failure::Recording => f.write_str("embedded ElectrumX recording: unexpected layout"),
            Failure::Replay { what, at } => write!(f, "scripted session: {what} {at}"),
            Failure::Request(e) => write!(f, "request refused: {e}"),
            Failure::Protocol(e) => write!(f, "server input refused: {e}"),
            Failure::Fatal(e) => write!(f, "session failed: {e}"),
            Failure::BadResult(method) => write!(f, "{method}: result does not decode"),
            Failure::HeaderProof(e) => write!(f, "cp_height proof rejected: {e}"),
            Failure::Tx(e) => write!(f, "raw transaction: {e}"),
            Failure::Order(e) => write!(f, "history order: {e}"),
            Failure::Check(what) => f.write_str(what),
        }
    }
}

#[entry]
fn main() -> ! {
    match run() {
        Ok(peak) => {
            hprintln!("stack_peak_bytes={}", peak);
            hprintln!("firmware ok");
            exit(true)
        }
        Err(failure) => {
            hprintln!("FAIL: {}", failure);
            exit(false)
        }
    }
}

/// Runs the checks, each on a freshly painted stack, prints their results and returns the
/// largest stack peak.
///
/// Printing happens after each measurement, so the figures are what verification needs (plus
/// the frames of `main`, `run` and `measured` above it), not what semihosting output needs.
fn run() -> Result<usize, Failure> {
    let (tip, headers_peak) = measured(verify_period)?;
    hprintln!("corrupted headers rejected: PrevHashMismatch, InsufficientProofOfWork");
    hprintln!("headers ok {} tip={}", PERIOD_LEN, tip);
    hprintln!("stack_peak_headers_bytes={}", headers_peak);

    let (depth, merkle_peak) = measured(verify_merkle)?;
    hprintln!("forged merkle position rejected: LeftSiblingDuplicate");
    hprintln!("merkle ok depth={}", depth);
    hprintln!("stack_peak_merkle_bytes={}", merkle_peak);

    let session_peak = session_steps()?;
    Ok(headers_peak.max(merkle_peak).max(session_peak))
}

/// Steps 3 and 4: the scripted session and the hostile input; returns the largest stack peak
/// (creating the session included). Not inlined, so that its locals stay out of `run`'s frame
/// and thus out of the figures of steps 1 and 2.
#[inline(never)]
fn session_steps() -> Result<usize, Failure> {
    let (replayed, session_peak) = measured(scripted::replay)?;
    report_replay(&replayed, session_peak);
    let (refused, hostile_peak) = measured(scripted::hostile)?;
    report_hostile(&refused, hostile_peak);
    Ok(replayed.init_stack_peak.max(session_peak).max(hostile_peak))
}

/// Prints what the scripted session step found, and its stack figures. Not inlined, so that
/// the formatting's frame stays out of `session_steps` (and thus out of the steps' figures).
#[inline(never)]
fn report_replay(r: &scripted::Replayed, peak: usize) {
    hprintln!(
        "session: ElectrumX transcript replayed at {}: {} requests answered, {} bytes written as recorded",
        r.version,
        r.answered,
        r.written
    );
    hprintln!(
        "session: {} bytes read in {} reads ({} of 1 byte, {} ending mid-line, {} with several lines)",
        r.reads.bytes,
        r.reads.count,
        r.reads.one_byte,
        r.reads.mid_line,
        r.reads.several_lines
    );
    hprintln!(
        "session: regtest headers 100..=113 verified and proven (cp_height 113); block {} notified and verified: {}",
        r.tip.height,
        r.tip.hash
    );
    hprintln!(
        "session: merkle proof verified at depth {} in verified block 111, txid recomputed, status of {} history rows recomputed",
        r.tx_depth,
        r.history_rows
    );
    hprintln!(
        "session: simulated clock: keep-alive ping {} ms after the last request, unanswered request timed out after {} ms",
        r.ping_after_ms,
        r.timeout_after_ms
    );
    hprintln!("session_size_bytes={}", scripted::SESSION_SIZE);
    hprintln!("stack_peak_session_init_bytes={}", r.init_stack_peak);
    hprintln!("stack_session_init_own_bytes={}", r.init_stack_own);
    hprintln!("stack_peak_session_bytes={}", peak);
}

/// Prints what the hostile-input step saw refused, and its stack peak.
#[inline(never)]
fn report_hostile(h: &scripted::Refused, peak: usize) {
    hprintln!(
        "hostile: line of {} bytes -> OversizeLine, unknown id -> UnknownId, invalid JSON -> Json; then negotiated {}",
        h.oversize_len,
        h.version
    );
    hprintln!(
        "hostile: mainnet session on the regtest server -> \"{}\"; then requests -> \"{}\"",
        h.wrong_network,
        h.request_after
    );
    hprintln!("stack_peak_hostile_bytes={}", peak);
}

/// Runs `check` on a freshly painted stack; returns its result and its stack peak, counted from
/// the top of RAM. `check` must not be inlined here, so that its frames lie below the paint.
fn measured<T>(check: fn() -> Result<T, Failure>) -> Result<(T, usize), Failure> {
    stack::paint();
    let value = check()?;
    let peak = stack::peak_bytes().ok_or(Failure::Check("the stack reached the statics"))?;
    Ok((value, peak))
}

/// Verifies the embedded period from its checkpoint anchor; returns the tip hash.
#[inline(never)]
fn verify_period() -> Result<BlockHash, Failure> {
    let anchor = Anchor::at_height(&MAINNET, PERIOD_START).map_err(Failure::Anchor)?;
    let mut verifier = HeaderVerifier::new(&MAINNET, anchor);
    let (body, last) = PERIOD_HEADERS
        .split_last_chunk::<HEADER_SIZE>()
        .ok_or(Failure::Check("no header data"))?;
    for header in body.chunks_exact(HEADER_SIZE) {
        verifier.push_slice(header).map_err(Failure::Header)?;
    }

    // Before the last header, try corrupted copies of it. A rejected header must leave the
    // verifier where it was, so the real one is still accepted afterwards.
    let mut bad_link = *last;
    bad_link[4] ^= 1; // previous-block hash
    expect_rejection(&mut verifier, &bad_link, HeaderErrorKind::PrevHashMismatch)?;
    let mut bad_nonce = *last;
    bad_nonce[79] ^= 0x80; // nonce: the hash changes and misses the target
    expect_rejection(
        &mut verifier,
        &bad_nonce,
        HeaderErrorKind::InsufficientProofOfWork,
    )?;

    let hash = verifier.push(last).map_err(Failure::Header)?;
    let tip = verifier
        .tip()
        .ok_or(Failure::Check("no tip after 2016 headers"))?;
    if tip.height != PERIOD_START + PERIOD_LEN - 1 || tip.hash != hash {
        return Err(Failure::Check(
            "tip height or hash is not the last header's",
        ));
    }
    if hash != BlockHash::from_display_hex(vectors::TIP_824543.as_bytes()).map_err(Failure::Hex)? {
        return Err(Failure::Check("tip hash differs from block 824543"));
    }
    if !verifier.work_is_absolute() {
        return Err(Failure::Check(
            "mainnet anchor should give absolute chain work",
        ));
    }
    Ok(hash)
}

/// Pushes `header`, which must be rejected at the next height with exactly `expected`.
fn expect_rejection(
    verifier: &mut HeaderVerifier,
    header: &[u8; HEADER_SIZE],
    expected: HeaderErrorKind,
) -> Result<(), Failure> {
    let height = verifier.next_height();
    match verifier.push(header) {
        Err(e) if e.kind == expected && e.height == height => Ok(()),
        got => Err(Failure::WrongRejection { expected, got }),
    }
}

/// Verifies two real proofs of block 830000 against its header and rejects a forgery; returns
/// the tree depth.
#[inline(never)]
fn verify_merkle() -> Result<u8, Failure> {
    let header =
        Header::from_hex(vectors::HEADER_830000_HEX.as_bytes()).map_err(Failure::HeaderParse)?;
    let hash = header.block_hash();
    if hash != BlockHash::from_display_hex(vectors::HASH_830000.as_bytes()).map_err(Failure::Hex)? {
        return Err(Failure::Check("header 830000 hashes to the wrong block"));
    }
    let target = header
        .bits
        .to_target()
        .map_err(|_| Failure::Check("header 830000 bits"))?;
    if !target.is_met_by(&hash) {
        return Err(Failure::Check("header 830000 misses its target"));
    }
    let root = header.merkle_root;
    for proof in [&vectors::PROOF_925, &vectors::PROOF_1850] {
        let (txid, branch) = decode_proof(proof)?;
        let depth = verify_tx_branch(&txid, proof.pos, branch, &root).map_err(Failure::Merkle)?;
        if depth.get() != DEPTH_830000 {
            return Err(Failure::Check("merkle depth is not 11"));
        }
    }
    // The last leaf's first sibling is itself; at an odd position that duplicate would be the
    // left node, proving a transaction 1851 that does not exist.
    let (txid, branch) = decode_proof(&vectors::PROOF_1850)?;
    match verify_tx_branch(&txid, vectors::PROOF_1850.pos + 1, branch, &root) {
        Err(MerkleError::LeftSiblingDuplicate { level: 0 }) => {}
        got => return Err(Failure::WrongMerkleRejection(got.map(|d| d.get()))),
    }
    Ok(DEPTH_830000)
}

/// Decodes a proof's display hex as a client would decode a server's JSON strings.
fn decode_proof(proof: &Proof) -> Result<(Txid, [MerkleNode; DEPTH_830000 as usize]), Failure> {
    let txid = Txid::from_display_hex(proof.tx_hash.as_bytes()).map_err(Failure::Hex)?;
    let mut branch = [MerkleNode::default(); DEPTH_830000 as usize];
    for (node, hex) in branch.iter_mut().zip(proof.merkle) {
        *node = MerkleNode::from_display_hex(hex.as_bytes()).map_err(Failure::Hex)?;
    }
    Ok((txid, branch))
}

/// A panic is a failed run: report it and make QEMU exit non-zero instead of hanging.
///
/// Only the location is printed: formatting the message would link the `Debug` code of every
/// panic payload in libcore (about 3 KiB of `.text` and 1 KiB of `.rodata`), which the size
/// probe would then charge to the core. File and line identify the panic well enough.
#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    match info.location() {
        Some(at) => hprintln!("FAIL: panic at {}:{}", at.file(), at.line()),
        None => hprintln!("FAIL: panic"),
    }
    exit(false)
}

/// A fault (bad address, undefined instruction) is a failed run too; cortex-m-rt's default
/// handler would spin forever and leave the scripts waiting for their timeout.
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("FAIL: hard fault at pc={:#010x}", frame.pc());
    exit(false)
}
