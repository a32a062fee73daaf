//! The script tracker: core's verified history engine (`ScriptTracker`) in caller memory,
//! driving a C session. It is the same engine the Rust client, the pool and the apps use;
//! nothing here restates a rule.
//!
//! For each script: subscribe; when its status changes, fetch the history, recompute the
//! status from it and refuse a txid listed twice; then for every transaction its block
//! header (a `cp_height` proof against a root the caller trusts, `espv_tracker_set_checkpoint`,
//! or a header the caller verified, `espv_tracker_provide_header`), its merkle branch against
//! that header, its raw bytes hashed to its txid, and that it pays the script or spends an
//! output of the script's history. Only then is it reported.
//!
//! Memory: the tracker state (`espv_tracker_size()` bytes) and two tables the caller lends
//! (`espv_tracker_script_slot_size()` and `espv_tracker_tx_slot_size()` bytes a slot). A full
//! table is reported (`ESPV_TRACKER_EVENT_FULL`), never grown. The caller's loop and the
//! tables' sizing are documented at [`EspvTracker`] (so that they are in the C header too).
//!
//! Work: a call walks the tables a bounded number of times, but finding a transaction or a
//! funding output is a walk of the transaction table (the tables have no index), so reading
//! a history of n rows costs about n walks of the table (quadratic in the table's size);
//! `espv_tracker_history_get` walks the transaction table once per call.

use core::ffi::{c_char, c_int, c_void};
use core::mem::{align_of, size_of};
use core::ptr;
use core::slice;

use electrum_spv_core::history::HistoryFault;
use electrum_spv_core::rpc::ProtocolVersion;
use electrum_spv_core::script::TxHeight;
use electrum_spv_core::sync::tracker::{
    MAX_SCRIPT_LEN, MAX_SLOTS, ScriptRef, ScriptSlot, ScriptTracker, TAG_BASE, TrackerError,
    TrackerEvent, TrackerLie, TxSlot,
};
use electrum_spv_core::time::Instant;
use electrum_spv_core::{MerkleNode, ScriptHash};

use crate::event::EspvEvent;
use crate::ptr::{Out, array, bytes, checked, checked_non_null, put_array, try_status};
use crate::session::{EspvSession, session};
use crate::status::{
    ESPV_ERR_BAD_RESULT, ESPV_ERR_BAD_TRANSACTION, ESPV_ERR_BUFFER_TOO_SMALL,
    ESPV_ERR_INVALID_ARGUMENT, ESPV_ERR_NOT_INITIALIZED, ESPV_ERR_NULL, ESPV_ERR_SCRIPT_TOO_LONG,
    ESPV_ERR_TABLE_FULL, ESPV_NONE, ESPV_OK, merkle_error, proof_error, request_error,
};

// ----- memory -----

/// Bytes to reserve for a tracker on any target (an upper bound; `espv_tracker_size()` is the
/// exact figure for the target the library was built for).
pub const ESPV_TRACKER_SIZE: usize = 160;
/// Alignment to give tracker memory on any target (an upper bound of `espv_tracker_align()`).
pub const ESPV_TRACKER_ALIGN: usize = 8;
/// Bytes to reserve per script slot on any target (an upper bound of
/// `espv_tracker_script_slot_size()`), for static tables: `static uint8_t scripts[N *
/// ESPV_TRACKER_SCRIPT_SLOT_SIZE] __attribute__((aligned(ESPV_TRACKER_SLOT_ALIGN)));` holds
/// `N` slots (pass `N` to `espv_tracker_init`).
pub const ESPV_TRACKER_SCRIPT_SLOT_SIZE: usize = 224;
/// Bytes to reserve per transaction slot on any target (an upper bound of
/// `espv_tracker_tx_slot_size()`; see `ESPV_TRACKER_SCRIPT_SLOT_SIZE`).
pub const ESPV_TRACKER_TX_SLOT_SIZE: usize = 128;
/// Alignment to give both tables on any target (an upper bound of
/// `espv_tracker_script_slot_align()` and `espv_tracker_tx_slot_align()`).
pub const ESPV_TRACKER_SLOT_ALIGN: usize = 8;
/// Longest scriptPubKey `espv_tracker_add_script` takes (an uncompressed P2PK is 67 bytes).
pub const ESPV_TRACKER_MAX_SCRIPT_LEN: usize = 80;
/// Most scripts a tracker tracks, whatever the size of its script table (a transaction slot
/// names its script in 16 bits).
pub const ESPV_TRACKER_MAX_SCRIPTS: usize = 65536;
/// Most transaction slots a tracker uses; a longer table's tail is never touched.
pub const ESPV_TRACKER_MAX_TX_SLOTS: usize = 1048576;
/// The tracker's request tags: every tag `tag` with `(tag & ESPV_TRACKER_TAG_MASK) ==
/// ESPV_TRACKER_TAG_BASE` is the tracker's. Give your own requests other tags; events with
/// the tracker's tags are its business (`espv_session_poll_event_tracked` has handed them to
/// it already).
pub const ESPV_TRACKER_TAG_BASE: u32 = 0x5400_0000;
/// See `ESPV_TRACKER_TAG_BASE`.
pub const ESPV_TRACKER_TAG_MASK: u32 = 0xFF00_0000;

// ----- tracker events (`espv_tracker_event.kind`) -----

/// The tracker had nothing to report about this session event.
pub const ESPV_TRACKER_EVENT_NONE: u32 = 0;
/// A history whose recomputed status equals the server's (`script`; `status` if
/// `has_status`, none: empty history). Its transactions follow as they are verified.
pub const ESPV_TRACKER_EVENT_STATUS_VERIFIED: u32 = 1;
/// A transaction verified in a block (`script`, `txid`, `height`, `block_hash`, `pos`): its
/// header proven, its merkle branch checked against it, its raw bytes hashed to `txid`, and
/// it pays the script or spends an output of its history that did.
pub const ESPV_TRACKER_EVENT_CONFIRMED: u32 = 2;
/// A mempool transaction whose raw bytes hash to `txid` and that involves the script
/// (`script`, `txid`, `height` 0, or -1 for an unconfirmed parent).
pub const ESPV_TRACKER_EVENT_UNCONFIRMED: u32 = 3;
/// A reported transaction that left the script's history (`script`, `txid`): reorged out,
/// evicted, replaced. From `espv_tracker_poll_event`.
pub const ESPV_TRACKER_EVENT_REMOVED: u32 = 4;
/// The server refused a `cp_height` proof (it has none, as electrs): from now on the tracker
/// waits for headers from the caller, lowest first from `espv_tracker_header_wanted`
/// (`height`: this one). Not a lie.
pub const ESPV_TRACKER_EVENT_HEADER_WANTED: u32 = 5;
/// The server said something false about `script` (`lie`: `ESPV_LIE_*`, with `reason`,
/// `txid` if `has_txid`, `height` and `got` as the lie documents). Stop trusting the server.
pub const ESPV_TRACKER_EVENT_SERVER_LIED: u32 = 6;
/// A table is full (`script`): a history that did not fit is not accepted (asked again at the
/// script's next status change), a transaction whose funding outputs did not fit waits for the
/// next accepted history. Lend a larger table to a new tracker.
pub const ESPV_TRACKER_EVENT_FULL: u32 = 7;
/// An answer for `script` (its history, a proof or a transaction; the request's `tag`) was
/// longer than the session's line buffer: a history is asked again at the script's next status
/// change, a proof or transaction when the next history is accepted.
pub const ESPV_TRACKER_EVENT_TOO_LARGE: u32 = 8;

// ----- lies (`espv_tracker_event.lie`) -----

/// Not a lie (every event but `ESPV_TRACKER_EVENT_SERVER_LIED`).
pub const ESPV_LIE_NONE: u32 = 0;
/// The history does not hash to the status the server announced, three times in a row
/// (once could be a server's cache racing its index right after a block).
pub const ESPV_LIE_STATUS_MISMATCH: u32 = 1;
/// At protocol 1.6 or later, the history is not in canonical order.
pub const ESPV_LIE_NOT_CANONICAL: u32 = 2;
/// The history lists `txid` twice.
pub const ESPV_LIE_DUPLICATE_TXID: u32 = 3;
/// A history, header proof, merkle branch or transaction that could not be decoded
/// (`reason` `ESPV_ERR_BAD_RESULT`).
pub const ESPV_LIE_MALFORMED: u32 = 4;
/// The merkle proof of `txid` is for another height (`height`: the one it claims).
pub const ESPV_LIE_PROOF_HEIGHT: u32 = 5;
/// The `cp_height` proof of `txid`'s header does not reach the trusted root (`reason`:
/// `ESPV_ERR_PROOF_*`).
pub const ESPV_LIE_HEADER_PROOF: u32 = 6;
/// The merkle branch of `txid` does not reach its header's merkle root (`reason`:
/// `ESPV_ERR_MERKLE_*`).
pub const ESPV_LIE_MERKLE: u32 = 7;
/// The raw bytes given for `txid` are not a transaction (`reason` `ESPV_ERR_BAD_TRANSACTION`).
pub const ESPV_LIE_BAD_TRANSACTION: u32 = 8;
/// The raw bytes given for `txid` hash to another txid (`got`).
pub const ESPV_LIE_TXID_MISMATCH: u32 = 9;
/// `txid` neither pays the script nor spends an output of its history that did.
pub const ESPV_LIE_UNRELATED: u32 = 10;
/// The server returned an error for `txid`, a transaction of its own history.
pub const ESPV_LIE_REFUSED: u32 = 11;

/// The core tracker behind the ABI: both tables lent by the caller for as long as it lives.
pub(crate) type CoreTracker = ScriptTracker<&'static mut [ScriptSlot], &'static mut [TxSlot]>;

/// Marks memory initialized by `espv_tracker_init` ("espvtrak").
const TRACKER_MAGIC: u64 = 0x6573_7076_7472_616b;

/// A script tracker, living in memory the caller provides (opaque: reserve
/// `espv_tracker_size()` bytes aligned to `espv_tracker_align()`, initialize them with
/// `espv_tracker_init`, then use the memory's address as the `espv_tracker *`).
///
/// It keeps pointers to the two tables given to `espv_tracker_init`, and owns nothing else:
/// no teardown; forget it (and then its tables) or initialize it again. It is not
/// thread-safe: use it, its tables and its session from one thread at a time.
///
/// The loop, beside the session's:
/// ```c
/// espv_tracker_poll(t, s, now());                  // queue requests; send the output
/// ... read, espv_session_feed ...
/// espv_event ev; espv_tracker_event tev;
/// while (espv_session_poll_event_tracked(s, t, &ev, &tev) == ESPV_OK) {
///     if (tev.kind != ESPV_TRACKER_EVENT_NONE) on_tracker(&tev);     // verified, or a lie
///     if ((ev.tag & ESPV_TRACKER_TAG_MASK) != ESPV_TRACKER_TAG_BASE) handle(&ev);  // yours
/// }
/// while (espv_tracker_poll_event(t, &tev) == ESPV_OK) on_tracker(&tev);  // removals
/// uint32_t h;                                      // without cp_height: your headers
/// while (espv_tracker_header_wanted(t, &h) == ESPV_OK)
///     espv_tracker_provide_header(t, h, verified_header_at(h));
/// espv_tracker_poll(t, s, now());
/// // wait until min(espv_session_timeout, espv_tracker_poll_timeout) or input
/// ```
/// Memory: one script slot per script; in the transaction table one slot per transaction of
/// every history plus one per output paying a tracked script (about two per transaction). A
/// history and a raw transaction are asked buffered: each must fit the session's line
/// (`ESPV_LINE_CAPACITY`: a history of about 150 rows, a transaction of about 8 KB), or it is
/// reported `ESPV_TRACKER_EVENT_TOO_LARGE`.
pub struct EspvTracker {
    magic: u64,
    core: CoreTracker,
}

const _: () = {
    assert!(size_of::<EspvTracker>() <= ESPV_TRACKER_SIZE);
    assert!(align_of::<EspvTracker>() <= ESPV_TRACKER_ALIGN);
    assert!(size_of::<ScriptSlot>() <= ESPV_TRACKER_SCRIPT_SLOT_SIZE);
    assert!(size_of::<TxSlot>() <= ESPV_TRACKER_TX_SLOT_SIZE);
    assert!(align_of::<ScriptSlot>() <= ESPV_TRACKER_SLOT_ALIGN);
    assert!(align_of::<TxSlot>() <= ESPV_TRACKER_SLOT_ALIGN);
    assert!(ESPV_TRACKER_MAX_SCRIPT_LEN == MAX_SCRIPT_LEN);
    assert!(ESPV_TRACKER_MAX_TX_SLOTS == MAX_SLOTS);
    assert!(ESPV_TRACKER_MAX_SCRIPTS <= MAX_SLOTS);
    assert!(ESPV_TRACKER_TAG_BASE == TAG_BASE);
    assert!(TAG_BASE & !ESPV_TRACKER_TAG_MASK == 0);
};

/// One event of the tracker. Which fields mean something depends on `kind`
/// (`ESPV_TRACKER_EVENT_*`) and, for a lie, on `lie` (`ESPV_LIE_*`); the others are zero.
/// Hashes are in internal byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EspvTrackerEvent {
    /// `ESPV_TRACKER_EVENT_*`; `ESPV_TRACKER_EVENT_NONE` when there is nothing to report.
    pub kind: u32,
    /// The script's index (from `espv_tracker_add_script*`); every kind but `NONE` and
    /// `HEADER_WANTED`.
    pub script: u32,
    /// `ESPV_LIE_*` (`ESPV_TRACKER_EVENT_SERVER_LIED`), else `ESPV_LIE_NONE`.
    pub lie: u32,
    /// For a lie: the `ESPV_ERR_*` detail the lie documents, else `ESPV_OK`.
    pub reason: c_int,
    /// `CONFIRMED`: block height; `UNCONFIRMED`: 0 or -1; `HEADER_WANTED`: the height whose
    /// header is wanted; `ESPV_LIE_PROOF_HEIGHT`: the height the proof claims.
    pub height: i64,
    /// `CONFIRMED`: the transaction's position in its block (fixed by its merkle proof).
    pub pos: u32,
    /// `TOO_LARGE`: the tag of the request whose answer was too long.
    pub tag: u32,
    /// The transaction (`CONFIRMED`, `UNCONFIRMED`, `REMOVED`, and a lie about one), if
    /// `has_txid`.
    pub txid: [u8; 32],
    /// Whether `txid` is set.
    pub has_txid: bool,
    /// `CONFIRMED`: the hash of the proven block header.
    pub block_hash: [u8; 32],
    /// `STATUS_VERIFIED`: the verified status, if `has_status`.
    pub status: [u8; 32],
    /// Whether `status` is set (otherwise the history is empty).
    pub has_status: bool,
    /// `ESPV_LIE_TXID_MISMATCH`: the txid the served bytes hash to.
    pub got: [u8; 32],
}

impl EspvTrackerEvent {
    const EMPTY: EspvTrackerEvent = EspvTrackerEvent {
        kind: ESPV_TRACKER_EVENT_NONE,
        script: 0,
        lie: ESPV_LIE_NONE,
        reason: ESPV_OK,
        height: 0,
        pos: 0,
        tag: 0,
        txid: [0; 32],
        has_txid: false,
        block_hash: [0; 32],
        status: [0; 32],
        has_status: false,
        got: [0; 32],
    };

    fn with_txid(mut self, txid: Option<electrum_spv_core::Txid>) -> EspvTrackerEvent {
        if let Some(t) = txid {
            self.txid = t.to_byte_array();
            self.has_txid = true;
        }
        self
    }

    /// The C form of a tracker event (`tracker` gives a confirmed transaction's position).
    fn from_core(tracker: &CoreTracker, event: TrackerEvent) -> EspvTrackerEvent {
        let e = EspvTrackerEvent::EMPTY;
        let index = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
        match event {
            TrackerEvent::StatusVerified { script, status } => EspvTrackerEvent {
                kind: ESPV_TRACKER_EVENT_STATUS_VERIFIED,
                script: index(script),
                status: status.map_or([0; 32], |s| s.to_byte_array()),
                has_status: status.is_some(),
                ..e
            },
            TrackerEvent::Confirmed {
                script,
                txid,
                height,
                block_hash,
            } => {
                let pos = match tracker.chain_position(script, &txid) {
                    Some(electrum_spv_core::history::ChainPosition::Confirmed { pos, .. }) => pos,
                    _ => 0,
                };
                EspvTrackerEvent {
                    kind: ESPV_TRACKER_EVENT_CONFIRMED,
                    script: index(script),
                    height: i64::from(height),
                    pos,
                    block_hash: block_hash.to_byte_array(),
                    ..e
                }
                .with_txid(Some(txid))
            }
            TrackerEvent::Unconfirmed {
                script,
                txid,
                height,
            } => EspvTrackerEvent {
                kind: ESPV_TRACKER_EVENT_UNCONFIRMED,
                script: index(script),
                height: height.to_i64(),
                ..e
            }
            .with_txid(Some(txid)),
            TrackerEvent::Removed { script, txid } => EspvTrackerEvent {
                kind: ESPV_TRACKER_EVENT_REMOVED,
                script: index(script),
                ..e
            }
            .with_txid(Some(txid)),
            TrackerEvent::HeaderWanted { height } => EspvTrackerEvent {
                kind: ESPV_TRACKER_EVENT_HEADER_WANTED,
                height: i64::from(height),
                ..e
            },
            TrackerEvent::ServerLied { script, txid, lie } => {
                let base = EspvTrackerEvent {
                    kind: ESPV_TRACKER_EVENT_SERVER_LIED,
                    script: index(script),
                    ..e
                }
                .with_txid(txid);
                lie_fields(base, lie)
            }
            TrackerEvent::Full { script } => EspvTrackerEvent {
                kind: ESPV_TRACKER_EVENT_FULL,
                script: index(script),
                ..e
            },
            TrackerEvent::TooLarge { script, tag } => EspvTrackerEvent {
                kind: ESPV_TRACKER_EVENT_TOO_LARGE,
                script: index(script),
                tag,
                ..e
            },
        }
    }
}

/// `e` with the fields of `lie` filled in.
fn lie_fields(e: EspvTrackerEvent, lie: TrackerLie) -> EspvTrackerEvent {
    let (code, reason) = match lie {
        TrackerLie::History(HistoryFault::StatusMismatch) => (ESPV_LIE_STATUS_MISMATCH, ESPV_OK),
        TrackerLie::History(HistoryFault::NotCanonical(_)) => (ESPV_LIE_NOT_CANONICAL, ESPV_OK),
        TrackerLie::History(HistoryFault::DuplicateTxid(txid)) => {
            let e = EspvTrackerEvent {
                lie: ESPV_LIE_DUPLICATE_TXID,
                ..e
            };
            return e.with_txid(Some(txid));
        }
        TrackerLie::Malformed => (ESPV_LIE_MALFORMED, ESPV_ERR_BAD_RESULT),
        TrackerLie::ProofHeight { claimed } => {
            return EspvTrackerEvent {
                lie: ESPV_LIE_PROOF_HEIGHT,
                height: i64::from(claimed),
                ..e
            };
        }
        TrackerLie::HeaderProof(p) => (ESPV_LIE_HEADER_PROOF, proof_error(p)),
        TrackerLie::Merkle(m) => (ESPV_LIE_MERKLE, merkle_error(m)),
        TrackerLie::Tx(_) => (ESPV_LIE_BAD_TRANSACTION, ESPV_ERR_BAD_TRANSACTION),
        TrackerLie::TxidMismatch { got } => {
            return EspvTrackerEvent {
                lie: ESPV_LIE_TXID_MISMATCH,
                got: got.to_byte_array(),
                ..e
            };
        }
        TrackerLie::Unrelated => (ESPV_LIE_UNRELATED, ESPV_OK),
        TrackerLie::Refused => (ESPV_LIE_REFUSED, ESPV_OK),
    };
    EspvTrackerEvent {
        lie: code,
        reason,
        ..e
    }
}

/// Progress counters of a tracker (`espv_tracker_get_stats`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EspvTrackerStats {
    /// Scripts whose history is not verified at the status the server announced.
    pub scripts_pending: u32,
    /// Transactions verified and reported.
    pub txs_done: u32,
    /// Transactions being verified.
    pub txs_pending: u32,
    /// Confirmed transactions above the checkpoint (or with no checkpoint set), waiting for a
    /// newer checkpoint or a header from the caller.
    pub txs_waiting_for_checkpoint: u32,
    /// The tracker's requests in flight.
    pub in_flight: u32,
    /// The checkpoint height set, if `has_checkpoint`.
    pub checkpoint_height: u32,
    /// Whether a checkpoint is set.
    pub has_checkpoint: bool,
    /// The lowest height waiting, if `has_lowest_waiting_height`.
    pub lowest_waiting_height: u32,
    /// Whether `lowest_waiting_height` is set.
    pub has_lowest_waiting_height: bool,
}

/// One verified transaction of a script's history (`espv_tracker_history_get`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EspvTrackerTx {
    /// The transaction, internal byte order.
    pub txid: [u8; 32],
    /// Block height if `confirmed`, else 0 or -1 (mempool; -1: an unconfirmed parent).
    pub height: i64,
    /// Whether it is confirmed (then `block_hash`, `pos` and `block_time` are set).
    pub confirmed: bool,
    /// The hash of its proven block header.
    pub block_hash: [u8; 32],
    /// Its position in the block, fixed by its merkle proof: sort by (`height`, `pos`) for
    /// chain order.
    pub pos: u32,
    /// The time field of its proven block header (seconds since 1970, as the miner set it).
    pub block_time: u32,
}

// ----- sizes -----

/// Bytes of memory a tracker needs (`sizeof` the tracker state on this target; at most
/// `ESPV_TRACKER_SIZE`).
#[unsafe(no_mangle)]
pub extern "C" fn espv_tracker_size() -> usize {
    size_of::<EspvTracker>()
}

/// Alignment the tracker memory needs (at most `ESPV_TRACKER_ALIGN`).
#[unsafe(no_mangle)]
pub extern "C" fn espv_tracker_align() -> usize {
    align_of::<EspvTracker>()
}

/// Bytes of one slot of the script table (at most `ESPV_TRACKER_SCRIPT_SLOT_SIZE`).
#[unsafe(no_mangle)]
pub extern "C" fn espv_tracker_script_slot_size() -> usize {
    size_of::<ScriptSlot>()
}

/// Alignment of the script table (at most `ESPV_TRACKER_SLOT_ALIGN`).
#[unsafe(no_mangle)]
pub extern "C" fn espv_tracker_script_slot_align() -> usize {
    align_of::<ScriptSlot>()
}

/// Bytes of one slot of the transaction table (at most `ESPV_TRACKER_TX_SLOT_SIZE`).
#[unsafe(no_mangle)]
pub extern "C" fn espv_tracker_tx_slot_size() -> usize {
    size_of::<TxSlot>()
}

/// Alignment of the transaction table (at most `ESPV_TRACKER_SLOT_ALIGN`).
#[unsafe(no_mangle)]
pub extern "C" fn espv_tracker_tx_slot_align() -> usize {
    align_of::<TxSlot>()
}

// ----- init -----

/// A table of `n` slots of `X` at `p`, checked: `ESPV_ERR_NULL` for NULL with `n` > 0,
/// `ESPV_ERR_MISALIGNED`, `ESPV_ERR_INVALID_ARGUMENT` when its byte length overflows. Its
/// byte range.
fn table<X>(p: *mut c_void, n: usize) -> Result<(usize, usize), c_int> {
    let p = p.cast::<X>();
    match n {
        0 => checked(p)?,
        _ => checked_non_null(p)?,
    }
    let len = n
        .checked_mul(size_of::<X>())
        .filter(|&l| l <= isize::MAX as usize)
        .ok_or(ESPV_ERR_INVALID_ARGUMENT)?;
    let start = p as usize;
    let end = start.checked_add(len).ok_or(ESPV_ERR_INVALID_ARGUMENT)?;
    Ok((start, end))
}

/// Whether two byte ranges share a byte.
fn overlap(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Writes `value` into each of the `n` slots at `p` and lends them for the tracker's life.
///
/// # Safety
/// `p` is aligned for `X` and points at `n` writable `X` (or `n` is 0) that the caller lends
/// for as long as the tracker lives.
unsafe fn lend<X: Copy>(p: *mut c_void, n: usize, value: X) -> &'static mut [X] {
    if n == 0 {
        return &mut [];
    }
    let p = p.cast::<X>();
    for i in 0..n {
        // SAFETY: `i < n` slots, writable and aligned (contract); `write` reads nothing, so
        // the slots need not be initialized, and one slot is written at a time: no table is
        // built on the stack.
        unsafe { p.add(i).write(value) };
    }
    // SAFETY: non-NULL (n > 0), aligned, `n` initialized slots lent for `'static` by the
    // caller's contract (the memory outlives the tracker and is not used elsewhere).
    unsafe { slice::from_raw_parts_mut(p, n) }
}

/// Initializes a tracker in `mem` (`len` bytes, at least `espv_tracker_size()`, aligned to
/// `espv_tracker_align()`) over the caller's tables: `scripts`, `n_scripts` script slots
/// (`espv_tracker_script_slot_size()` bytes each, aligned to
/// `espv_tracker_script_slot_align()`), and `txs`, `n_txs` transaction slots
/// (`espv_tracker_tx_slot_size()` bytes each, aligned to `espv_tracker_tx_slot_align()`).
/// Every slot is set empty in place. Afterwards use `(espv_tracker *)mem`. Only the first
/// `ESPV_TRACKER_MAX_SCRIPTS` script slots and `ESPV_TRACKER_MAX_TX_SLOTS` transaction slots
/// are used.
///
/// The tracker keeps pointers to both tables: they must stay valid, unmoved and unused by
/// anything else for as long as the tracker is used (a static, or memory that outlives it).
/// Initializing the same memory again starts a new tracker (the old one is forgotten).
///
/// Stack: a few hundred bytes whatever the table sizes (measured by
/// `bindings/c/tests/test_stack.c`; bound 2 KiB).
///
/// Returns `ESPV_OK`; `ESPV_ERR_NULL` (`mem`, or a table with slots), `ESPV_ERR_BUFFER_TOO_SMALL`
/// (`len`), `ESPV_ERR_MISALIGNED` (`mem` or a table), or `ESPV_ERR_INVALID_ARGUMENT` (a table
/// whose byte length overflows, or two of the three regions overlapping), changing nothing.
///
/// # Safety
/// `mem` is NULL or points at `len` writable bytes; `scripts` and `txs` are NULL or point at
/// `n_scripts` and `n_txs` writable slots; all three obey the lifetime rule above.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_tracker_init(
    mem: *mut c_void,
    len: usize,
    scripts: *mut c_void,
    n_scripts: usize,
    txs: *mut c_void,
    n_txs: usize,
) -> c_int {
    if mem.is_null() {
        return ESPV_ERR_NULL;
    }
    if len < size_of::<EspvTracker>() {
        return ESPV_ERR_BUFFER_TOO_SMALL;
    }
    let target = mem.cast::<EspvTracker>();
    try_status!(checked(target));
    let state = (
        mem as usize,
        (mem as usize).saturating_add(size_of::<EspvTracker>()),
    );
    let script_range = try_status!(table::<ScriptSlot>(scripts, n_scripts));
    let tx_range = try_status!(table::<TxSlot>(txs, n_txs));
    if overlap(state, script_range) || overlap(state, tx_range) || overlap(script_range, tx_range) {
        return ESPV_ERR_INVALID_ARGUMENT;
    }
    // SAFETY: checked above (aligned, non-NULL when not empty, sizes in range, disjoint);
    // writable and lent for the tracker's life by the caller's contract.
    let (scripts, txs) = unsafe {
        (
            lend(scripts, n_scripts, ScriptSlot::EMPTY),
            lend(txs, n_txs, TxSlot::EMPTY),
        )
    };
    // SAFETY: `target` is non-NULL, aligned, and points at at least `size_of::<EspvTracker>()`
    // writable bytes; `write` does not read or drop the old contents; the magic is written
    // last.
    unsafe {
        ptr::addr_of_mut!((*target).core).write(ScriptTracker::new(scripts, txs));
        ptr::addr_of_mut!((*target).magic).write(TRACKER_MAGIC);
    }
    ESPV_OK
}

/// The tracker behind a C pointer, or the status code saying why there is none.
///
/// # Safety
/// `t` is NULL or points at memory given to `espv_tracker_init` (or at least at
/// `espv_tracker_size()` readable bytes aligned for a tracker), not used elsewhere during
/// `'a`.
unsafe fn tracker<'a>(t: *mut EspvTracker) -> Result<&'a mut EspvTracker, c_int> {
    checked_non_null(t)?;
    // SAFETY: non-NULL and aligned (checked); tracker-sized memory (contract). The magic is
    // read first so that memory `espv_tracker_init` never initialized is refused.
    let magic = unsafe { ptr::addr_of!((*t).magic).read() };
    if magic != TRACKER_MAGIC {
        return Err(ESPV_ERR_NOT_INITIALIZED);
    }
    // SAFETY: initialized by `espv_tracker_init` (magic checked) and not aliased (contract).
    Ok(unsafe { &mut *t })
}

/// Unwraps a tracker or returns its status code from the enclosing function.
macro_rules! tracker_or_return {
    ($t:expr) => {
        // SAFETY: every caller forwards its own `# Safety` contract for `t`.
        match unsafe { tracker($t) } {
            Ok(t) => t,
            Err(code) => return code,
        }
    };
}

/// A session and a tracker, both checked, or the first status code saying why not.
///
/// # Safety
/// As [`session`] and [`tracker`]; `s` and `t` are not the same memory.
unsafe fn both<'a>(
    s: *mut EspvSession,
    t: *mut EspvTracker,
) -> Result<(&'a mut EspvSession, &'a mut EspvTracker), c_int> {
    // Overlapping memory would be two `&mut` to the same bytes.
    let (s_at, t_at) = (s as usize, t as usize);
    let apart = s_at.saturating_add(size_of::<EspvSession>()) <= t_at
        || t_at.saturating_add(size_of::<EspvTracker>()) <= s_at;
    if !apart && !s.is_null() && !t.is_null() {
        return Err(ESPV_ERR_INVALID_ARGUMENT);
    }
    // SAFETY: forwarded contract.
    let s = unsafe { session(s) }?;
    // SAFETY: forwarded contract.
    let t = unsafe { tracker(t) }?;
    Ok((s, t))
}

// ----- scripts -----

/// The index of a newly added script, or its status code.
fn added(r: Result<usize, TrackerError>) -> Result<u32, c_int> {
    match r {
        Ok(i) => Ok(u32::try_from(i).unwrap_or(u32::MAX)),
        Err(TrackerError::Full) => Err(ESPV_ERR_TABLE_FULL),
        Err(TrackerError::ScriptTooLong) => Err(ESPV_ERR_SCRIPT_TOO_LONG),
    }
}

/// Starts tracking the scriptPubKey `script` (`len` bytes, at most
/// `ESPV_TRACKER_MAX_SCRIPT_LEN`; works at every protocol version); its index goes to
/// `*index` (if not NULL) and names it in events and queries. It is subscribed at the next
/// `espv_tracker_poll`. Adding a script twice tracks it twice.
///
/// Returns `ESPV_OK`, `ESPV_ERR_SCRIPT_TOO_LONG`, `ESPV_ERR_TABLE_FULL` (no free script slot),
/// `ESPV_ERR_NULL`, `ESPV_ERR_MISALIGNED` (`index`), `ESPV_ERR_NOT_INITIALIZED`; nothing is
/// added on error.
///
/// # Safety
/// `t` is an initialized tracker; `script` points at `len` readable bytes (NULL only with
/// `len` 0); `index` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_tracker_add_script(
    t: *mut EspvTracker,
    script: *const u8,
    len: usize,
    index: *mut u32,
) -> c_int {
    let t = tracker_or_return!(t);
    let index = try_status!(Out::optional(index));
    // SAFETY: the caller promises `len` readable bytes at `script`.
    let Some(script) = (unsafe { bytes(script, len) }) else {
        return ESPV_ERR_NULL;
    };
    let i = try_status!(added(t.core.add(ScriptRef::Script(script))));
    // SAFETY: the caller promises `index` is NULL or writable.
    unsafe { index.put(i) };
    ESPV_OK
}

/// Starts tracking a script known only by its Electrum script hash (`hash`: 32 bytes,
/// internal byte order, as `espv_script_hash` gives it). Only below protocol 1.7 (the
/// `scriptpubkey` methods need the script). Otherwise as `espv_tracker_add_script`.
///
/// Returns `ESPV_OK`, `ESPV_ERR_TABLE_FULL`, `ESPV_ERR_NULL`, `ESPV_ERR_MISALIGNED`,
/// `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `t` is an initialized tracker; `hash` points at 32 readable bytes; `index` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_tracker_add_script_hash(
    t: *mut EspvTracker,
    hash: *const u8,
    index: *mut u32,
) -> c_int {
    let t = tracker_or_return!(t);
    let index = try_status!(Out::optional(index));
    // SAFETY: the caller promises 32 readable bytes at `hash`.
    let Some(hash) = (unsafe { array::<32>(hash) }) else {
        return ESPV_ERR_NULL;
    };
    let script = ScriptRef::Hash(ScriptHash::from_byte_array(hash));
    let i = try_status!(added(t.core.add(script)));
    // SAFETY: the caller promises `index` is NULL or writable.
    unsafe { index.put(i) };
    ESPV_OK
}

/// Writes script `i`'s Electrum script hash (internal byte order) to `out`.
///
/// Returns `ESPV_OK`, `ESPV_ERR_INVALID_ARGUMENT` (no script `i`), `ESPV_ERR_NULL`,
/// `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `t` is an initialized tracker; `out` points at 32 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_tracker_script_hash(
    t: *mut EspvTracker,
    i: u32,
    out: *mut u8,
) -> c_int {
    let t = tracker_or_return!(t);
    if out.is_null() {
        return ESPV_ERR_NULL;
    }
    let Some(hash) = t.core.script_hash(i as usize) else {
        return ESPV_ERR_INVALID_ARGUMENT;
    };
    // SAFETY: the caller promises 32 writable bytes at `out`.
    unsafe { put_array(out, &hash.to_byte_array()) };
    ESPV_OK
}

// ----- headers -----

/// Sets the checkpoint `cp_height` proofs must reach: `root` (32 bytes, internal byte order)
/// is the merkle root of the block hashes `0..=cp_height`, from headers the caller verified
/// (`espv_verify_header_proof`'s root) or shipped with the application. Confirmed
/// transactions above `cp_height` wait for a newer checkpoint or a header from the caller.
///
/// Returns `ESPV_OK`, `ESPV_ERR_NULL`, `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `t` is an initialized tracker; `root` points at 32 readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_tracker_set_checkpoint(
    t: *mut EspvTracker,
    cp_height: u32,
    root: *const u8,
) -> c_int {
    let t = tracker_or_return!(t);
    // SAFETY: the caller promises 32 readable bytes at `root`.
    let Some(root) = (unsafe { array::<32>(root) }) else {
        return ESPV_ERR_NULL;
    };
    t.core
        .set_checkpoint(cp_height, MerkleNode::from_byte_array(root));
    ESPV_OK
}

/// Gives the tracker the header at `height` (80 bytes) from the caller's verified header
/// chain: every transaction confirmed at `height` that waits for its header is proven against
/// it (its merkle branch is asked next). The header is not checked here: give only headers
/// you verified (`espv_verify_headers`, `espv_verifier`).
///
/// Returns `ESPV_OK`, `ESPV_ERR_NULL`, `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `t` is an initialized tracker; `header` points at 80 readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_tracker_provide_header(
    t: *mut EspvTracker,
    height: u32,
    header: *const u8,
) -> c_int {
    let t = tracker_or_return!(t);
    // SAFETY: the caller promises 80 readable bytes at `header`.
    let Some(header) = (unsafe { array::<80>(header) }) else {
        return ESPV_ERR_NULL;
    };
    t.core.provide_header(height, &header);
    ESPV_OK
}

/// The lowest height whose header the tracker waits for from the caller (no checkpoint set,
/// or the server refused `cp_height` proofs): writes it to `*height` and returns `ESPV_OK`,
/// or returns `ESPV_NONE` when no header is wanted. Answer with `espv_tracker_provide_header`;
/// until then the same height is returned.
///
/// Returns `ESPV_ERR_NULL` / `ESPV_ERR_MISALIGNED` (`height`), `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `t` is an initialized tracker; `height` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_tracker_header_wanted(
    t: *mut EspvTracker,
    height: *mut u32,
) -> c_int {
    let t = tracker_or_return!(t);
    let height = try_status!(Out::required(height));
    match t.core.header_wanted() {
        Some(h) => {
            // SAFETY: the caller promises `height` is writable.
            unsafe { height.put(h) };
            ESPV_OK
        }
        None => ESPV_NONE,
    }
}

/// The chain reorganised from `fork_height` (the first height whose block changed): every
/// transaction confirmed at or above it is verified again against the new blocks and
/// reported again. Set the new checkpoint first.
///
/// Returns `ESPV_OK`, `ESPV_ERR_NULL`, `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `t` is an initialized tracker.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_tracker_reorg(t: *mut EspvTracker, fork_height: u32) -> c_int {
    let t = tracker_or_return!(t);
    t.core.reorg(fork_height);
    ESPV_OK
}

// ----- driving -----

/// Queues what is due on the session `s` (subscriptions, histories, header proofs, merkle
/// branches, transactions), with the tracker's tags. Stops without error when the session has
/// no room (pending slots, output queue) or is not ready yet: call it again after events.
/// Then take the session's output and send it.
///
/// Returns `ESPV_OK`; a request error other than back-pressure (`ESPV_ERR_CLOSED` when the
/// session failed, `ESPV_ERR_NOT_AVAILABLE` for a script known only by its hash at protocol
/// 1.7); `ESPV_ERR_NULL`, `ESPV_ERR_MISALIGNED`, `ESPV_ERR_NOT_INITIALIZED` for either state,
/// `ESPV_ERR_INVALID_ARGUMENT` if they are the same memory.
///
/// # Safety
/// `t` is an initialized tracker; `s` is an initialized session; not the same memory.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_tracker_poll(
    t: *mut EspvTracker,
    s: *mut EspvSession,
    now_ms: u64,
) -> c_int {
    // SAFETY: forwarded contract.
    let (s, t) = try_status!(unsafe { both(s, t) });
    match t.core.poll(Instant::from_millis(now_ms), &mut s.core) {
        Ok(()) => ESPV_OK,
        Err(e) => request_error(e),
    }
}

/// Writes the next event of the session `s` to `*out` and hands it to the tracker `t`, which
/// writes what it verified or caught to `*out_tracker` (`kind` `ESPV_TRACKER_EVENT_NONE` when
/// nothing); returns `ESPV_OK`, or `ESPV_NONE` when the session has no event. Use it instead
/// of `espv_session_poll_event` while a tracker runs on the session: every event still comes
/// out (`out->data` valid until the next call that takes the session); those whose tag has
/// the tracker's prefix (`ESPV_TRACKER_TAG_BASE`) and script notifications of tracked scripts
/// were the tracker's. After draining, drain `espv_tracker_poll_event`, then call
/// `espv_tracker_poll`.
///
/// Returns `ESPV_ERR_NULL` / `ESPV_ERR_MISALIGNED` / `ESPV_ERR_NOT_INITIALIZED` (either state
/// or out pointer) or `ESPV_ERR_INVALID_ARGUMENT` (same memory) without consuming an event.
///
/// # Safety
/// `s` is an initialized session and `t` an initialized tracker, not the same memory; `out`
/// and `out_tracker` are NULL or point at a writable `espv_event` and `espv_tracker_event`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_session_poll_event_tracked(
    s: *mut EspvSession,
    t: *mut EspvTracker,
    out: *mut EspvEvent,
    out_tracker: *mut EspvTrackerEvent,
) -> c_int {
    // SAFETY: forwarded contract.
    let (s, t) = try_status!(unsafe { both(s, t) });
    let out = try_status!(Out::required(out));
    let out_tracker = try_status!(Out::required(out_tracker));
    // Before negotiation ends no event is the tracker's: the version then does not matter.
    let version = s.core.version().unwrap_or(ProtocolVersion::V1_4);
    let Some(event) = s.core.poll_event() else {
        return ESPV_NONE;
    };
    let verdict = t
        .core
        .handle_event(version, &event)
        .map_or(EspvTrackerEvent::EMPTY, |e| {
            EspvTrackerEvent::from_core(&t.core, e)
        });
    let event = EspvEvent::from_core(&event);
    // SAFETY: the caller promises both out pointers point at writable structs.
    unsafe {
        out.put(event);
        out_tracker.put(verdict);
    }
    ESPV_OK
}

/// Writes the next transaction that left a history (`ESPV_TRACKER_EVENT_REMOVED`) to `*out`
/// and returns `ESPV_OK`, or returns `ESPV_NONE`. Drain it after the session's events.
///
/// Returns `ESPV_ERR_NULL` / `ESPV_ERR_MISALIGNED` (`out`), `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `t` is an initialized tracker; `out` is NULL or points at a writable
/// `espv_tracker_event`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_tracker_poll_event(
    t: *mut EspvTracker,
    out: *mut EspvTrackerEvent,
) -> c_int {
    let t = tracker_or_return!(t);
    let out = try_status!(Out::required(out));
    let Some(event) = t.core.poll_event() else {
        return ESPV_NONE;
    };
    let event = EspvTrackerEvent::from_core(&t.core, event);
    // SAFETY: the caller promises `out` points at a writable event.
    unsafe { out.put(event) };
    ESPV_OK
}

/// When `espv_tracker_poll` has something to do that no answer will trigger (a history asked
/// again after a status mismatch): writes the time (caller's ms clock) to `*deadline_ms` and
/// returns `ESPV_OK`, or returns `ESPV_NONE`.
///
/// Returns `ESPV_ERR_MISALIGNED` (`deadline_ms`), `ESPV_ERR_NULL` / `ESPV_ERR_NOT_INITIALIZED`
/// (`t`).
///
/// # Safety
/// `t` is an initialized tracker; `deadline_ms` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_tracker_poll_timeout(
    t: *mut EspvTracker,
    deadline_ms: *mut u64,
) -> c_int {
    let t = tracker_or_return!(t);
    let deadline_ms = try_status!(Out::optional(deadline_ms));
    match t.core.poll_timeout() {
        Some(at) => {
            // SAFETY: the caller promises `deadline_ms` is NULL or writable.
            unsafe { deadline_ms.put(at.millis()) };
            ESPV_OK
        }
        None => ESPV_NONE,
    }
}

/// The connection is gone: requests in flight will never be answered. Everything they asked
/// is asked again, subscriptions included, on the next session (initialize a new one, then
/// `espv_tracker_poll` with it). Verified histories are kept.
///
/// Returns `ESPV_OK`, `ESPV_ERR_NULL`, `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `t` is an initialized tracker.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_tracker_reset_connection(t: *mut EspvTracker) -> c_int {
    let t = tracker_or_return!(t);
    t.core.reset_connection();
    ESPV_OK
}

/// How many requests the tracker keeps in flight (at least 1; default 16; the session's
/// `ESPV_MAX_IN_FLIGHT` bounds it too). Lower it to leave pending slots for your own
/// requests.
///
/// Returns `ESPV_OK`, `ESPV_ERR_NULL`, `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `t` is an initialized tracker.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_tracker_set_max_in_flight(t: *mut EspvTracker, n: u32) -> c_int {
    let t = tracker_or_return!(t);
    t.core.set_max_in_flight(n as usize);
    ESPV_OK
}

// ----- queries -----

/// Whether every script's verified status equals the one the server announced and every
/// transaction is reported: writes it to `*synced`.
///
/// Returns `ESPV_OK`, `ESPV_ERR_NULL` / `ESPV_ERR_MISALIGNED` (`synced`),
/// `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `t` is an initialized tracker; `synced` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_tracker_is_synced(t: *mut EspvTracker, synced: *mut bool) -> c_int {
    let t = tracker_or_return!(t);
    let synced = try_status!(Out::required(synced));
    // SAFETY: the caller promises `synced` is writable.
    unsafe { synced.put(t.core.is_synced()) };
    ESPV_OK
}

/// Writes the tracker's progress counters to `*out`.
///
/// Returns `ESPV_OK`, `ESPV_ERR_NULL` / `ESPV_ERR_MISALIGNED` (`out`),
/// `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `t` is an initialized tracker; `out` is NULL or points at a writable
/// `espv_tracker_stats`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_tracker_get_stats(
    t: *mut EspvTracker,
    out: *mut EspvTrackerStats,
) -> c_int {
    let t = tracker_or_return!(t);
    let out = try_status!(Out::required(out));
    let st = t.core.stats();
    let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    let stats = EspvTrackerStats {
        scripts_pending: n(st.scripts_pending),
        txs_done: n(st.txs_done),
        txs_pending: n(st.txs_pending),
        txs_waiting_for_checkpoint: n(st.txs_waiting_for_checkpoint),
        in_flight: n(st.in_flight),
        checkpoint_height: st.checkpoint_height.unwrap_or(0),
        has_checkpoint: st.checkpoint_height.is_some(),
        lowest_waiting_height: st.lowest_waiting_height.unwrap_or(0),
        has_lowest_waiting_height: st.lowest_waiting_height.is_some(),
    };
    // SAFETY: the caller promises `out` is writable.
    unsafe { out.put(stats) };
    ESPV_OK
}

/// The last verified status of script `i`: returns `ESPV_OK` with `*has_status` true and the
/// status (32 bytes, internal byte order) in `status`, or `*has_status` false (and `status`
/// zeroed) for a verified empty history; `ESPV_NONE` while no history of it is verified.
///
/// Returns `ESPV_ERR_INVALID_ARGUMENT` (no script `i`), `ESPV_ERR_NULL`,
/// `ESPV_ERR_MISALIGNED` (`has_status`), `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `t` is an initialized tracker; `status` points at 32 writable bytes; `has_status` is NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_tracker_verified_status(
    t: *mut EspvTracker,
    i: u32,
    status: *mut u8,
    has_status: *mut bool,
) -> c_int {
    let t = tracker_or_return!(t);
    let has_status = try_status!(Out::required(has_status));
    if status.is_null() {
        return ESPV_ERR_NULL;
    }
    let i = i as usize;
    if t.core.script_hash(i).is_none() {
        return ESPV_ERR_INVALID_ARGUMENT;
    }
    let Some(verified) = t.core.verified_status(i) else {
        return ESPV_NONE;
    };
    // SAFETY: the caller promises 32 writable bytes at `status` and a writable `has_status`.
    unsafe {
        put_array(status, &verified.map_or([0; 32], |s| s.to_byte_array()));
        has_status.put(verified.is_some());
    }
    ESPV_OK
}

/// The `n`th reported transaction of script `i` (from 0, in table order: sort by `height`
/// and `pos` for chain order) to `*out`: returns `ESPV_OK`, or `ESPV_NONE` when the history
/// has `n` transactions or fewer. Only verified transactions are listed. Each call walks the
/// transaction table once (a whole history: `n` walks).
///
/// Returns `ESPV_ERR_INVALID_ARGUMENT` (no script `i`), `ESPV_ERR_NULL` /
/// `ESPV_ERR_MISALIGNED` (`out`), `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `t` is an initialized tracker; `out` is NULL or points at a writable `espv_tracker_tx`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_tracker_history_get(
    t: *mut EspvTracker,
    i: u32,
    n: usize,
    out: *mut EspvTrackerTx,
) -> c_int {
    let t = tracker_or_return!(t);
    let out = try_status!(Out::required(out));
    let i = i as usize;
    if t.core.script_hash(i).is_none() {
        return ESPV_ERR_INVALID_ARGUMENT;
    }
    let Some(entry) = t.core.history(i).nth(n) else {
        return ESPV_NONE;
    };
    let (block_hash, pos, block_time) = entry
        .block
        .map_or(([0; 32], 0, 0), |b| (b.hash.to_byte_array(), b.pos, b.time));
    let tx = EspvTrackerTx {
        txid: entry.txid.to_byte_array(),
        height: entry.height.to_i64(),
        confirmed: matches!(entry.height, TxHeight::Confirmed(_)) && entry.block.is_some(),
        block_hash,
        pos,
        block_time,
    };
    // SAFETY: the caller promises `out` is writable.
    unsafe { out.put(tx) };
    ESPV_OK
}

// ----- names -----

/// The name of an `ESPV_TRACKER_EVENT_*` kind (`"ESPV_TRACKER_EVENT_CONFIRMED"`) as a static
/// NUL-terminated string; `"ESPV_UNKNOWN"` for another value. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn espv_tracker_event_name(kind: u32) -> *const c_char {
    let name = match kind {
        ESPV_TRACKER_EVENT_NONE => c"ESPV_TRACKER_EVENT_NONE",
        ESPV_TRACKER_EVENT_STATUS_VERIFIED => c"ESPV_TRACKER_EVENT_STATUS_VERIFIED",
        ESPV_TRACKER_EVENT_CONFIRMED => c"ESPV_TRACKER_EVENT_CONFIRMED",
        ESPV_TRACKER_EVENT_UNCONFIRMED => c"ESPV_TRACKER_EVENT_UNCONFIRMED",
        ESPV_TRACKER_EVENT_REMOVED => c"ESPV_TRACKER_EVENT_REMOVED",
        ESPV_TRACKER_EVENT_HEADER_WANTED => c"ESPV_TRACKER_EVENT_HEADER_WANTED",
        ESPV_TRACKER_EVENT_SERVER_LIED => c"ESPV_TRACKER_EVENT_SERVER_LIED",
        ESPV_TRACKER_EVENT_FULL => c"ESPV_TRACKER_EVENT_FULL",
        ESPV_TRACKER_EVENT_TOO_LARGE => c"ESPV_TRACKER_EVENT_TOO_LARGE",
        _ => c"ESPV_UNKNOWN",
    };
    name.as_ptr()
}

/// The name of an `ESPV_LIE_*` code (`"ESPV_LIE_DUPLICATE_TXID"`) as a static NUL-terminated
/// string; `"ESPV_UNKNOWN"` for another value. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn espv_tracker_lie_name(lie: u32) -> *const c_char {
    let name = match lie {
        ESPV_LIE_NONE => c"ESPV_LIE_NONE",
        ESPV_LIE_STATUS_MISMATCH => c"ESPV_LIE_STATUS_MISMATCH",
        ESPV_LIE_NOT_CANONICAL => c"ESPV_LIE_NOT_CANONICAL",
        ESPV_LIE_DUPLICATE_TXID => c"ESPV_LIE_DUPLICATE_TXID",
        ESPV_LIE_MALFORMED => c"ESPV_LIE_MALFORMED",
        ESPV_LIE_PROOF_HEIGHT => c"ESPV_LIE_PROOF_HEIGHT",
        ESPV_LIE_HEADER_PROOF => c"ESPV_LIE_HEADER_PROOF",
        ESPV_LIE_MERKLE => c"ESPV_LIE_MERKLE",
        ESPV_LIE_BAD_TRANSACTION => c"ESPV_LIE_BAD_TRANSACTION",
        ESPV_LIE_TXID_MISMATCH => c"ESPV_LIE_TXID_MISMATCH",
        ESPV_LIE_UNRELATED => c"ESPV_LIE_UNRELATED",
        ESPV_LIE_REFUSED => c"ESPV_LIE_REFUSED",
        _ => c"ESPV_UNKNOWN",
    };
    name.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ffi::CStr;
    use electrum_spv_core::Txid;
    use electrum_spv_core::accumulator::HeaderProofError;
    use electrum_spv_core::merkle::MerkleError;

    fn name(p: *const c_char) -> &'static str {
        // SAFETY: both name functions return static NUL-terminated strings.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap()
    }

    #[test]
    fn every_kind_and_lie_is_named_after_its_constant() {
        let source = include_str!("tracker.rs");
        let mut seen = 0;
        for line in source.lines() {
            let Some(rest) = line.strip_prefix("pub const ") else {
                continue;
            };
            let constant = rest.split(':').next().unwrap();
            let value: u32 = match rest
                .rsplit('=')
                .next()
                .unwrap()
                .trim()
                .trim_end_matches(';')
            {
                v if !v.starts_with("0x") => match v.replace('_', "").parse() {
                    Ok(v) => v,
                    Err(_) => continue,
                },
                _ => continue,
            };
            let got = if constant.starts_with("ESPV_TRACKER_EVENT_") {
                name(espv_tracker_event_name(value))
            } else if constant.starts_with("ESPV_LIE_") {
                name(espv_tracker_lie_name(value))
            } else {
                continue;
            };
            assert_eq!(got, constant);
            seen += 1;
        }
        assert_eq!(seen, 9 + 12);
        assert_eq!(name(espv_tracker_lie_name(99)), "ESPV_UNKNOWN");
        assert_eq!(name(espv_tracker_event_name(99)), "ESPV_UNKNOWN");
    }

    #[test]
    fn lies_carry_their_detail() {
        let txid = Txid::from_byte_array([7; 32]);
        let e = EspvTrackerEvent::EMPTY;
        let dup = lie_fields(e, TrackerLie::History(HistoryFault::DuplicateTxid(txid)));
        assert_eq!(
            (dup.lie, dup.has_txid, dup.txid),
            (ESPV_LIE_DUPLICATE_TXID, true, [7; 32])
        );
        let m = lie_fields(e, TrackerLie::Merkle(MerkleError::RootMismatch));
        assert_eq!(
            (m.lie, m.reason),
            (
                ESPV_LIE_MERKLE,
                crate::status::ESPV_ERR_MERKLE_ROOT_MISMATCH
            )
        );
        let p = lie_fields(e, TrackerLie::ProofHeight { claimed: 9 });
        assert_eq!((p.lie, p.height), (ESPV_LIE_PROOF_HEIGHT, 9));
        let got = lie_fields(e, TrackerLie::TxidMismatch { got: txid });
        assert_eq!((got.lie, got.got), (ESPV_LIE_TXID_MISMATCH, [7; 32]));
        let h = lie_fields(e, TrackerLie::HeaderProof(HeaderProofError::RootMismatch));
        assert_eq!(
            (h.lie, h.reason),
            (
                ESPV_LIE_HEADER_PROOF,
                crate::status::ESPV_ERR_PROOF_ROOT_MISMATCH
            )
        );
    }
}
