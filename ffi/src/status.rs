//! Status codes: every `espv_*` function that can fail returns one of these as an `int`.
//!
//! `ESPV_OK` (0) and `ESPV_NONE` (1) are not errors; every error is negative. The same codes
//! explain a failed session or a refused input in [`crate::event::EspvEvent::reason`].
//! [`espv_status_name`] gives each code's name as a static string.

use core::ffi::{CStr, c_char, c_int};

use electrum_spv_core::accumulator::HeaderProofError;
use electrum_spv_core::chain::{AnchorError, HeaderErrorKind};
use electrum_spv_core::merkle::{MerkleError, MerkleRootError};
use electrum_spv_core::session::{FatalError, ProtocolError, RequestError};

// ----- success -----

/// Success.
pub const ESPV_OK: c_int = 0;
/// Success, with nothing to report: no event queued, no deadline, an empty history (whose
/// status is JSON `null`), a fee estimate the server does not have.
pub const ESPV_NONE: c_int = 1;

// ----- arguments and memory -----

/// A required pointer was NULL.
pub const ESPV_ERR_NULL: c_int = -1;
/// A caller buffer is too small (session memory, output array); nothing was written, unless
/// the function says otherwise.
pub const ESPV_ERR_BUFFER_TOO_SMALL: c_int = -2;
/// A typed pointer is not aligned for its type: session memory not aligned to
/// `espv_session_align()`, a state (`espv_verifier`, `espv_status_hasher`) or an out pointer
/// (`uint32_t *`, `size_t *`, `espv_tip *`, ...) not aligned as C aligns that type. Nothing
/// was done: it is checked before any work.
pub const ESPV_ERR_MISALIGNED: c_int = -3;
/// An argument is out of range: unknown network, empty or inverted version range, more than
/// 2016 headers, `cp_height` below the height, a reserved tag, a name that is not UTF-8,
/// tracker memory and tables that overlap.
pub const ESPV_ERR_INVALID_ARGUMENT: c_int = -4;
/// The state passed was not initialized by its `*_init` function.
pub const ESPV_ERR_NOT_INITIALIZED: c_int = -5;

// ----- requests -----

/// Version negotiation has not finished: wait for `ESPV_EVENT_READY`.
pub const ESPV_ERR_NOT_READY: c_int = -10;
/// The session has failed (`ESPV_EVENT_FAILED`); open a new connection and session.
pub const ESPV_ERR_CLOSED: c_int = -11;
/// The negotiated protocol version does not have this method.
pub const ESPV_ERR_NOT_AVAILABLE: c_int = -12;
/// Every pending slot is in use: wait for responses.
pub const ESPV_ERR_TOO_MANY_IN_FLIGHT: c_int = -13;
/// A streamed request is in flight, or (for a streamed request) some request is.
pub const ESPV_ERR_BUSY: c_int = -14;
/// The outgoing buffer cannot hold the request now: take the output and send it first.
pub const ESPV_ERR_OUTPUT_FULL: c_int = -15;

// ----- headers -----

/// A header is not 80 bytes (or its hex not 160 digits).
pub const ESPV_ERR_HEADER_PARSE: c_int = -20;
/// Block 0 does not hash to the network's genesis hash.
pub const ESPV_ERR_GENESIS_MISMATCH: c_int = -21;
/// A header does not point back to the previous header.
pub const ESPV_ERR_PREV_HASH_MISMATCH: c_int = -22;
/// A header disagrees with a compiled-in checkpoint.
pub const ESPV_ERR_CHECKPOINT_MISMATCH: c_int = -23;
/// A header's difficulty bits are not what the retarget rules give.
pub const ESPV_ERR_BITS_MISMATCH: c_int = -24;
/// At a retarget with an unknown period start, the target moved by more than 4x.
pub const ESPV_ERR_DIFFICULTY_TRANSITION: c_int = -25;
/// The compact target does not encode a usable target.
pub const ESPV_ERR_INVALID_BITS: c_int = -26;
/// The target is easier than the network's proof-of-work limit.
pub const ESPV_ERR_TARGET_ABOVE_LIMIT: c_int = -27;
/// The header's hash does not meet its target.
pub const ESPV_ERR_INSUFFICIENT_POW: c_int = -28;
/// The timestamp is not after the median of the previous 11.
pub const ESPV_ERR_TIME_NOT_AFTER_MEDIAN: c_int = -29;
/// BIP94: the first block of a period is dated too far before its parent.
pub const ESPV_ERR_TIMEWARP: c_int = -30;
/// The timestamp is more than two hours after the caller's clock.
pub const ESPV_ERR_TIME_TOO_NEW: c_int = -31;
/// The version is below what BIP34/66/65 require at this height.
pub const ESPV_ERR_OBSOLETE_VERSION: c_int = -32;
/// The chain reached height 2^32 - 1.
pub const ESPV_ERR_HEIGHT_OVERFLOW: c_int = -33;
/// No anchor at this start height: it is neither 0 nor a multiple of 2016 covered by a
/// compiled-in checkpoint.
pub const ESPV_ERR_NO_ANCHOR: c_int = -34;

// ----- transaction merkle branches -----

/// More than 30 siblings.
pub const ESPV_ERR_MERKLE_TOO_DEEP: c_int = -40;
/// The position has bits above the branch length.
pub const ESPV_ERR_MERKLE_INDEX_NOT_CONSUMED: c_int = -41;
/// An inner node's 64-byte preimage parses as a transaction (CVE-2017-12842).
pub const ESPV_ERR_MERKLE_INNER_NODE_IS_TX: c_int = -42;
/// A right node duplicates its left sibling (CVE-2012-2459).
pub const ESPV_ERR_MERKLE_DUPLICATE_SIBLING: c_int = -43;
/// The branch length differs from the depth pinned by the coinbase branch.
pub const ESPV_ERR_MERKLE_DEPTH_MISMATCH: c_int = -44;
/// The folded branch does not reach the header's merkle root.
pub const ESPV_ERR_MERKLE_ROOT_MISMATCH: c_int = -45;
/// A leaf list with two equal sibling subtrees (`espv_merkle_root`): it has the root of a
/// shorter list, and a block with it is invalid (CVE-2012-2459; Bitcoin Core's "mutated").
pub const ESPV_ERR_MERKLE_MUTATED: c_int = -46;

// ----- cp_height header proofs -----

/// The proven height is above `cp_height`.
pub const ESPV_ERR_PROOF_HEIGHT_ABOVE_CP: c_int = -50;
/// The branch length is not ceil(log2(cp_height + 1)).
pub const ESPV_ERR_PROOF_BRANCH_LENGTH: c_int = -51;
/// Where the tree duplicates the last node of an odd level, the sibling is not that node.
pub const ESPV_ERR_PROOF_MISSING_DUPLICATE: c_int = -52;
/// A sibling equals the running node where the tree has two distinct nodes.
pub const ESPV_ERR_PROOF_UNEXPECTED_DUPLICATE: c_int = -53;
/// The folded branch does not reach the checkpoint root.
pub const ESPV_ERR_PROOF_ROOT_MISMATCH: c_int = -54;

// ----- decoding -----

/// A result does not have the documented shape.
pub const ESPV_ERR_BAD_RESULT: c_int = -60;
/// Not valid hex of the expected length.
pub const ESPV_ERR_BAD_HEX: c_int = -61;
/// Not exactly one well-formed transaction.
pub const ESPV_ERR_BAD_TRANSACTION: c_int = -62;

// ----- why a session failed (`ESPV_EVENT_FAILED`) -----

/// The server refused `server.version` (no common protocol version).
pub const ESPV_ERR_VERSION_REFUSED: c_int = -70;
/// The `server.version` reply could not be read.
pub const ESPV_ERR_BAD_VERSION_REPLY: c_int = -71;
/// The server negotiated a version outside the range asked for.
pub const ESPV_ERR_VERSION_OUT_OF_RANGE: c_int = -72;
/// `server.features` could not be read or has no `genesis_hash`.
pub const ESPV_ERR_BAD_FEATURES: c_int = -73;
/// The server is on another network: its genesis hash differs.
pub const ESPV_ERR_WRONG_GENESIS: c_int = -74;
/// `server.version` or `server.features` got no answer in time.
pub const ESPV_ERR_NEGOTIATION_TIMED_OUT: c_int = -75;
/// The outgoing buffer cannot hold the negotiation requests (a too long client name).
pub const ESPV_ERR_OUTPUT_TOO_SMALL: c_int = -76;

// ----- input the session refused (`ESPV_EVENT_PROTOCOL_ERROR`) -----

/// A line longer than the session's line buffer was discarded.
pub const ESPV_ERR_OVERSIZE_LINE: c_int = -80;
/// Not valid JSON, or nested too deeply.
pub const ESPV_ERR_JSON: c_int = -81;
/// A message that is neither a response nor a notification.
pub const ESPV_ERR_NOT_JSON_RPC: c_int = -82;
/// A response whose id is not an integer this client could have sent.
pub const ESPV_ERR_BAD_ID: c_int = -83;
/// A response to an id not in flight (never sent, duplicate, timed out).
pub const ESPV_ERR_UNKNOWN_ID: c_int = -84;
/// A response with neither or both of `result` and `error`.
pub const ESPV_ERR_RESULT_ERROR_MISMATCH: c_int = -85;
/// A notification for a known method with malformed params.
pub const ESPV_ERR_BAD_NOTIFICATION: c_int = -86;
/// The server sent a request; clients answer none.
pub const ESPV_ERR_UNEXPECTED_REQUEST: c_int = -87;
/// A streamed response was malformed or of the wrong shape; that request is over.
pub const ESPV_ERR_STREAM_FAILED: c_int = -88;
/// A reply longer than the session's line buffer, for the request its `id` names; that
/// request is over (`ESPV_EVENT_RESPONSE_TOO_LARGE`).
pub const ESPV_ERR_RESPONSE_TOO_LARGE: c_int = -89;

// ----- the script tracker -----

/// A table lent to the tracker has no free slot (`espv_tracker_add_script*`: the script
/// table).
pub const ESPV_ERR_TABLE_FULL: c_int = -90;
/// A script longer than `ESPV_TRACKER_MAX_SCRIPT_LEN` bytes.
pub const ESPV_ERR_SCRIPT_TOO_LONG: c_int = -91;

/// Every code and its name, for [`espv_status_name`] (a test checks that every constant above
/// is listed with its own name).
const NAMES: &[(c_int, &CStr)] = &[
    (ESPV_OK, c"ESPV_OK"),
    (ESPV_NONE, c"ESPV_NONE"),
    (ESPV_ERR_NULL, c"ESPV_ERR_NULL"),
    (ESPV_ERR_BUFFER_TOO_SMALL, c"ESPV_ERR_BUFFER_TOO_SMALL"),
    (ESPV_ERR_MISALIGNED, c"ESPV_ERR_MISALIGNED"),
    (ESPV_ERR_INVALID_ARGUMENT, c"ESPV_ERR_INVALID_ARGUMENT"),
    (ESPV_ERR_NOT_INITIALIZED, c"ESPV_ERR_NOT_INITIALIZED"),
    (ESPV_ERR_NOT_READY, c"ESPV_ERR_NOT_READY"),
    (ESPV_ERR_CLOSED, c"ESPV_ERR_CLOSED"),
    (ESPV_ERR_NOT_AVAILABLE, c"ESPV_ERR_NOT_AVAILABLE"),
    (ESPV_ERR_TOO_MANY_IN_FLIGHT, c"ESPV_ERR_TOO_MANY_IN_FLIGHT"),
    (ESPV_ERR_BUSY, c"ESPV_ERR_BUSY"),
    (ESPV_ERR_OUTPUT_FULL, c"ESPV_ERR_OUTPUT_FULL"),
    (ESPV_ERR_HEADER_PARSE, c"ESPV_ERR_HEADER_PARSE"),
    (ESPV_ERR_GENESIS_MISMATCH, c"ESPV_ERR_GENESIS_MISMATCH"),
    (ESPV_ERR_PREV_HASH_MISMATCH, c"ESPV_ERR_PREV_HASH_MISMATCH"),
    (
        ESPV_ERR_CHECKPOINT_MISMATCH,
        c"ESPV_ERR_CHECKPOINT_MISMATCH",
    ),
    (ESPV_ERR_BITS_MISMATCH, c"ESPV_ERR_BITS_MISMATCH"),
    (
        ESPV_ERR_DIFFICULTY_TRANSITION,
        c"ESPV_ERR_DIFFICULTY_TRANSITION",
    ),
    (ESPV_ERR_INVALID_BITS, c"ESPV_ERR_INVALID_BITS"),
    (ESPV_ERR_TARGET_ABOVE_LIMIT, c"ESPV_ERR_TARGET_ABOVE_LIMIT"),
    (ESPV_ERR_INSUFFICIENT_POW, c"ESPV_ERR_INSUFFICIENT_POW"),
    (
        ESPV_ERR_TIME_NOT_AFTER_MEDIAN,
        c"ESPV_ERR_TIME_NOT_AFTER_MEDIAN",
    ),
    (ESPV_ERR_TIMEWARP, c"ESPV_ERR_TIMEWARP"),
    (ESPV_ERR_TIME_TOO_NEW, c"ESPV_ERR_TIME_TOO_NEW"),
    (ESPV_ERR_OBSOLETE_VERSION, c"ESPV_ERR_OBSOLETE_VERSION"),
    (ESPV_ERR_HEIGHT_OVERFLOW, c"ESPV_ERR_HEIGHT_OVERFLOW"),
    (ESPV_ERR_NO_ANCHOR, c"ESPV_ERR_NO_ANCHOR"),
    (ESPV_ERR_MERKLE_TOO_DEEP, c"ESPV_ERR_MERKLE_TOO_DEEP"),
    (
        ESPV_ERR_MERKLE_INDEX_NOT_CONSUMED,
        c"ESPV_ERR_MERKLE_INDEX_NOT_CONSUMED",
    ),
    (
        ESPV_ERR_MERKLE_INNER_NODE_IS_TX,
        c"ESPV_ERR_MERKLE_INNER_NODE_IS_TX",
    ),
    (
        ESPV_ERR_MERKLE_DUPLICATE_SIBLING,
        c"ESPV_ERR_MERKLE_DUPLICATE_SIBLING",
    ),
    (
        ESPV_ERR_MERKLE_DEPTH_MISMATCH,
        c"ESPV_ERR_MERKLE_DEPTH_MISMATCH",
    ),
    (
        ESPV_ERR_MERKLE_ROOT_MISMATCH,
        c"ESPV_ERR_MERKLE_ROOT_MISMATCH",
    ),
    (ESPV_ERR_MERKLE_MUTATED, c"ESPV_ERR_MERKLE_MUTATED"),
    (
        ESPV_ERR_PROOF_HEIGHT_ABOVE_CP,
        c"ESPV_ERR_PROOF_HEIGHT_ABOVE_CP",
    ),
    (
        ESPV_ERR_PROOF_BRANCH_LENGTH,
        c"ESPV_ERR_PROOF_BRANCH_LENGTH",
    ),
    (
        ESPV_ERR_PROOF_MISSING_DUPLICATE,
        c"ESPV_ERR_PROOF_MISSING_DUPLICATE",
    ),
    (
        ESPV_ERR_PROOF_UNEXPECTED_DUPLICATE,
        c"ESPV_ERR_PROOF_UNEXPECTED_DUPLICATE",
    ),
    (
        ESPV_ERR_PROOF_ROOT_MISMATCH,
        c"ESPV_ERR_PROOF_ROOT_MISMATCH",
    ),
    (ESPV_ERR_BAD_RESULT, c"ESPV_ERR_BAD_RESULT"),
    (ESPV_ERR_BAD_HEX, c"ESPV_ERR_BAD_HEX"),
    (ESPV_ERR_BAD_TRANSACTION, c"ESPV_ERR_BAD_TRANSACTION"),
    (ESPV_ERR_VERSION_REFUSED, c"ESPV_ERR_VERSION_REFUSED"),
    (ESPV_ERR_BAD_VERSION_REPLY, c"ESPV_ERR_BAD_VERSION_REPLY"),
    (
        ESPV_ERR_VERSION_OUT_OF_RANGE,
        c"ESPV_ERR_VERSION_OUT_OF_RANGE",
    ),
    (ESPV_ERR_BAD_FEATURES, c"ESPV_ERR_BAD_FEATURES"),
    (ESPV_ERR_WRONG_GENESIS, c"ESPV_ERR_WRONG_GENESIS"),
    (
        ESPV_ERR_NEGOTIATION_TIMED_OUT,
        c"ESPV_ERR_NEGOTIATION_TIMED_OUT",
    ),
    (ESPV_ERR_OUTPUT_TOO_SMALL, c"ESPV_ERR_OUTPUT_TOO_SMALL"),
    (ESPV_ERR_OVERSIZE_LINE, c"ESPV_ERR_OVERSIZE_LINE"),
    (ESPV_ERR_JSON, c"ESPV_ERR_JSON"),
    (ESPV_ERR_NOT_JSON_RPC, c"ESPV_ERR_NOT_JSON_RPC"),
    (ESPV_ERR_BAD_ID, c"ESPV_ERR_BAD_ID"),
    (ESPV_ERR_UNKNOWN_ID, c"ESPV_ERR_UNKNOWN_ID"),
    (
        ESPV_ERR_RESULT_ERROR_MISMATCH,
        c"ESPV_ERR_RESULT_ERROR_MISMATCH",
    ),
    (ESPV_ERR_BAD_NOTIFICATION, c"ESPV_ERR_BAD_NOTIFICATION"),
    (ESPV_ERR_UNEXPECTED_REQUEST, c"ESPV_ERR_UNEXPECTED_REQUEST"),
    (ESPV_ERR_STREAM_FAILED, c"ESPV_ERR_STREAM_FAILED"),
    (ESPV_ERR_RESPONSE_TOO_LARGE, c"ESPV_ERR_RESPONSE_TOO_LARGE"),
    (ESPV_ERR_TABLE_FULL, c"ESPV_ERR_TABLE_FULL"),
    (ESPV_ERR_SCRIPT_TOO_LONG, c"ESPV_ERR_SCRIPT_TOO_LONG"),
];

/// The name of a status code (`"ESPV_OK"`, `"ESPV_ERR_WRONG_GENESIS"`, ...) as a static
/// NUL-terminated string; `"ESPV_UNKNOWN"` for a code that is not one of these. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn espv_status_name(code: c_int) -> *const c_char {
    NAMES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(c"ESPV_UNKNOWN", |(_, name)| name)
        .as_ptr()
}

pub(crate) fn request_error(e: RequestError) -> c_int {
    match e {
        RequestError::NotReady => ESPV_ERR_NOT_READY,
        RequestError::Closed => ESPV_ERR_CLOSED,
        RequestError::NotAvailable { .. } => ESPV_ERR_NOT_AVAILABLE,
        RequestError::InvalidArgument => ESPV_ERR_INVALID_ARGUMENT,
        RequestError::TooManyInFlight => ESPV_ERR_TOO_MANY_IN_FLIGHT,
        RequestError::Busy => ESPV_ERR_BUSY,
        RequestError::OutputFull(_) => ESPV_ERR_OUTPUT_FULL,
    }
}

pub(crate) fn header_error(kind: HeaderErrorKind) -> c_int {
    match kind {
        HeaderErrorKind::Parse(_) => ESPV_ERR_HEADER_PARSE,
        HeaderErrorKind::GenesisMismatch => ESPV_ERR_GENESIS_MISMATCH,
        HeaderErrorKind::PrevHashMismatch => ESPV_ERR_PREV_HASH_MISMATCH,
        HeaderErrorKind::CheckpointMismatch => ESPV_ERR_CHECKPOINT_MISMATCH,
        HeaderErrorKind::BitsMismatch { .. } => ESPV_ERR_BITS_MISMATCH,
        HeaderErrorKind::DifficultyTransitionOutOfRange { .. } => ESPV_ERR_DIFFICULTY_TRANSITION,
        HeaderErrorKind::InvalidBits(_) => ESPV_ERR_INVALID_BITS,
        HeaderErrorKind::TargetAbovePowLimit => ESPV_ERR_TARGET_ABOVE_LIMIT,
        HeaderErrorKind::InsufficientProofOfWork => ESPV_ERR_INSUFFICIENT_POW,
        HeaderErrorKind::TimeNotAfterMedian { .. } => ESPV_ERR_TIME_NOT_AFTER_MEDIAN,
        HeaderErrorKind::TimewarpAttack { .. } => ESPV_ERR_TIMEWARP,
        HeaderErrorKind::TimeTooNew { .. } => ESPV_ERR_TIME_TOO_NEW,
        HeaderErrorKind::ObsoleteVersion { .. } => ESPV_ERR_OBSOLETE_VERSION,
        HeaderErrorKind::HeightOverflow => ESPV_ERR_HEIGHT_OVERFLOW,
    }
}

pub(crate) fn anchor_error(_: AnchorError) -> c_int {
    ESPV_ERR_NO_ANCHOR
}

pub(crate) fn merkle_error(e: MerkleError) -> c_int {
    match e {
        MerkleError::TooDeep => ESPV_ERR_MERKLE_TOO_DEEP,
        MerkleError::IndexNotConsumed => ESPV_ERR_MERKLE_INDEX_NOT_CONSUMED,
        MerkleError::InnerNodeIsTransaction { .. } => ESPV_ERR_MERKLE_INNER_NODE_IS_TX,
        MerkleError::LeftSiblingDuplicate { .. } => ESPV_ERR_MERKLE_DUPLICATE_SIBLING,
        MerkleError::DepthMismatch { .. } => ESPV_ERR_MERKLE_DEPTH_MISMATCH,
        MerkleError::RootMismatch => ESPV_ERR_MERKLE_ROOT_MISMATCH,
    }
}

/// `ESPV_NONE` for no leaves (no root, not an error).
pub(crate) fn merkle_root_error(e: MerkleRootError) -> c_int {
    match e {
        MerkleRootError::Empty => ESPV_NONE,
        MerkleRootError::TooMany => ESPV_ERR_INVALID_ARGUMENT,
        MerkleRootError::Mutated => ESPV_ERR_MERKLE_MUTATED,
    }
}

pub(crate) fn proof_error(e: HeaderProofError) -> c_int {
    match e {
        HeaderProofError::HeightAboveCheckpoint { .. } => ESPV_ERR_PROOF_HEIGHT_ABOVE_CP,
        HeaderProofError::BranchLength { .. } => ESPV_ERR_PROOF_BRANCH_LENGTH,
        HeaderProofError::MissingDuplicate { .. } => ESPV_ERR_PROOF_MISSING_DUPLICATE,
        HeaderProofError::UnexpectedDuplicate { .. } => ESPV_ERR_PROOF_UNEXPECTED_DUPLICATE,
        HeaderProofError::RootMismatch => ESPV_ERR_PROOF_ROOT_MISMATCH,
    }
}

pub(crate) fn fatal_error(e: FatalError) -> c_int {
    match e {
        FatalError::VersionRefused { .. } => ESPV_ERR_VERSION_REFUSED,
        FatalError::BadVersionReply => ESPV_ERR_BAD_VERSION_REPLY,
        FatalError::VersionOutOfRange { .. } => ESPV_ERR_VERSION_OUT_OF_RANGE,
        FatalError::BadFeatures => ESPV_ERR_BAD_FEATURES,
        FatalError::WrongGenesis => ESPV_ERR_WRONG_GENESIS,
        FatalError::NegotiationTimedOut => ESPV_ERR_NEGOTIATION_TIMED_OUT,
        FatalError::OutputTooSmall => ESPV_ERR_OUTPUT_TOO_SMALL,
    }
}

pub(crate) fn protocol_error(e: ProtocolError) -> c_int {
    match e {
        ProtocolError::OversizeLine { .. } => ESPV_ERR_OVERSIZE_LINE,
        ProtocolError::Json(_) => ESPV_ERR_JSON,
        ProtocolError::NotJsonRpc => ESPV_ERR_NOT_JSON_RPC,
        ProtocolError::BadId => ESPV_ERR_BAD_ID,
        ProtocolError::UnknownId(_) => ESPV_ERR_UNKNOWN_ID,
        ProtocolError::ResultAndErrorMismatch { .. } => ESPV_ERR_RESULT_ERROR_MISMATCH,
        ProtocolError::BadNotification => ESPV_ERR_BAD_NOTIFICATION,
        ProtocolError::UnexpectedRequest => ESPV_ERR_UNEXPECTED_REQUEST,
        ProtocolError::StreamFailed { .. } => ESPV_ERR_STREAM_FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn every_constant_is_named_after_itself() {
        let source = include_str!("status.rs");
        let mut seen = 0;
        for line in source.lines() {
            let Some(rest) = line.strip_prefix("pub const ") else {
                continue;
            };
            let name = rest.split(':').next().unwrap();
            let value: c_int = rest
                .rsplit('=')
                .next()
                .unwrap()
                .trim()
                .trim_end_matches(';')
                .parse()
                .unwrap();
            // SAFETY: espv_status_name returns a static NUL-terminated string.
            let got = unsafe { CStr::from_ptr(espv_status_name(value)) };
            assert_eq!(got.to_str().unwrap(), name, "code {value}");
            seen += 1;
        }
        assert_eq!(seen, NAMES.len(), "a row of NAMES is missing or extra");
        let mut codes: Vec<c_int> = NAMES.iter().map(|r| r.0).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), NAMES.len(), "two constants share a value");
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(espv_status_name(-1000)) };
        assert_eq!(unknown.to_str().unwrap(), "ESPV_UNKNOWN");
    }
}
