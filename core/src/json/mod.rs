//! The no-heap JSON layer under the Electrum session.
//!
//! Electrum speaks JSON-RPC over a byte stream, one message per `\n`-terminated line. Everything
//! here works on caller-owned memory and never allocates, recurses on input or panics:
//!
//! | module | job |
//! |---|---|
//! | [`framer`] | splits the byte stream into lines with a hard cap; over-long lines are dropped *before* they are buffered and reported once |
//! | [`tokenizer`] | a resumable, push-based, non-recursive JSON tokenizer with a depth limit; streams a value split over any number of reads without buffering it (a 322 KB `blockchain.block.headers` result can be verified header by header) |
//! | `cursor` (internal) | the same grammar over one complete line, for [`envelope`] and [`decode`]: scalars whole, containers skipped in a tight loop, string and whitespace runs a word at a time; agrees with the tokenizer error for error (differential tests, fuzzed) |
//! | [`envelope`] | over one complete line: finds `id`, `result`, `error`, `method`, `params` and `jsonrpc` in any order, for a single message or a batch; decodes error objects and unescapes strings |
//! | [`decode`] | typed values from the raw spans the envelope returns: integers, strings, hex, hashes, array and object iteration, and [`decode::from_span`] over `serde-json-core` |
//! | [`oversize`] | the `id` of a line too long to buffer, from the head and tail windows the framer keeps of it |
//! | [`writer`] | encodes requests, notifications and batches into a caller buffer |
//!
//! ## Why a scanner before `serde-json-core`
//! `serde-json-core` recurses without a depth limit (hostile nesting overflows the stack), cannot
//! decode a value of unknown type, and returns strings with their escapes undecoded. The
//! envelope is therefore scanned first by the depth-limited [`tokenizer::Tokenizer`], which
//! yields the raw span of `result`; the session looks up the pending request by `id` and only
//! then decodes that span with its real type (ElectrumX writes `result` *before* `id`, so a
//! single typed pass is impossible anyway).
//!
//! ## Bounds (DoS)
//! * nesting: [`tokenizer::MAX_DEPTH`] containers; deeper input is an error, found without
//!   recursion;
//! * numbers: [`tokenizer::MAX_NUMBER_LEN`] bytes;
//! * lines: the framer's const parameter `N`, chosen by the caller; of a longer line only
//!   two windows of [`probe_len(N)`](framer::probe_len) bytes are kept, inside the line buffer;
//! * work: every function is linear in its input; [`envelope::scan`] of a batch reads the line
//!   twice (validate, then iterate), [`decode::ArrayIter::new`] and
//!   [`decode::ObjectIter::new`] likewise.

// Some decoders are used only by the tests and fuzz targets (`_test_exports`).
#![cfg_attr(not(feature = "_test_exports"), allow(dead_code, unused_imports))]

pub mod decode;
pub mod envelope;
pub mod framer;
pub mod oversize;
pub mod tokenizer;
pub mod writer;

pub(crate) mod bytes;
pub(crate) mod cursor;

pub use decode::{ArrayIter, DecodeError, ObjectIter};
pub use envelope::{
    BatchIter, Envelope, Id, Message, RpcErrorRef, decode_error, scan, unescape_into,
};
pub use framer::{Frame, LineFramer, MAX_PROBE, probe_len};
pub use oversize::oversize_id;
pub use tokenizer::{JsonError, JsonErrorKind, MAX_DEPTH, MAX_NUMBER_LEN, Token, Tokenizer};
pub use writer::{EncodeError, RequestWriter};
