//! # electrum-spv-core
//!
//! The verifying heart of electrum-spv: `no_std`, no heap unless the `alloc` feature is on, and
//! sans-IO (no sockets, clocks, threads or randomness). It checks everything an Electrum server
//! says that can be checked:
//!
//! | module | job |
//! |---|---|
//! | [`hash`], [`hex`] | SHA-256d; `BlockHash`/`Txid`/`ScriptHash` newtypes that keep display and internal byte order apart; allocation-free hex |
//! | [`header`], [`u256`] | 80-byte headers, compact bits, targets, work |
//! | [`chain`] | network parameters, checkpoints, the constant-memory header verifier, fork choice |
//! | [`accumulator`] | incremental merkle root over block hashes; `cp_height` header proofs |
//! | [`merkle`] | hardened transaction merkle branches |
//! | [`script`] | script hashes, streaming address-status hashing, canonical mempool order |
//! | [`tx`] | streaming txid of a raw transaction; streaming scan of the outpoints it spends and the outputs paying a script; 64-byte-transaction detection |
//! | [`tx_parts`] | inputs and outputs of a transaction in memory |
//! | [`history`] | what is checked of a history list: status in the server's order, canonical order, no txid twice, chain order |
//! | `json` (internal) | newline framer with a hard line cap, resumable depth-limited tokenizer, envelope scanner, request writer, typed decoding: the session's own; its errors and limits are re-exported by [`session`] |
//! | [`rpc`] | protocol versions as tuples, the version-gated method catalogue |
//! | [`p2p`] | Bitcoin P2P wire format: frame reader with a per-command size cap checked before buffering and a streamed checksum, message decoding item by item, encoders into caller buffers |
//! | [`session`] | the sans-IO Electrum session: negotiation, genesis check, typed requests for every 1.4-1.7 method, events, keep-alive, deadlines, streamed responses |
//! | [`sync`] | verified sync engines on a session: header sync, script tracker |
//! | [`time`] | the caller's time: [`time::Instant`] and [`time::Duration`] (monotonic milliseconds), [`time::UnixTime`] (wall-clock seconds, for the header time rule) |
//! | `driver` (feature `embedded-io-async`) | the caller's loop written once: drives a session over any `embedded-io-async` transport (an embassy-net `TcpSocket`, TLS, a UART) with caller-owned buffers and the caller's clock; typed calls, streamed headers and histories, notifications |
//! | feature `serde` | `Serialize`/`Deserialize` of the hashes (display hex) and `TxHeight` (the protocol's signed height), without allocation |
//! | `bitcoin_types` (feature `bitcoin`) | `From` conversions of `Txid`, `Wtxid`, `BlockHash`, `MerkleNode`, `CompactTarget` and `Header` to and from rust-bitcoin 0.32's: the same bytes moved, nothing hashed or allocated (rust-bitcoin itself needs `alloc` and, for its secp256k1, a C compiler for the target) |
//!
//! ## The caller's loop
//! Core does no I/O and has no clock. The caller owns the socket and the clock and runs one
//! loop: write what [`session::Session::poll_transmit`] gives; feed what was read to
//! [`session::Session::handle_input`] and drain [`session::Session::poll_event`] after each
//! call; sleep until [`session::Session::poll_timeout`], then call
//! [`session::Session::handle_timeout`].
//!
//! ```text
//! // Any monotonic milliseconds since an origin of the caller's choosing (boot, program start).
//! let now = || Instant::from_millis(clock_ms());
//! // Memory the caller owns, sized as it likes: a line buffer, an outgoing queue, pending slots.
//! let storage = SessionStorage::new(&mut line, &mut out, &mut slots);
//! let mut session = Session::new(storage, config, now());
//! loop {
//!     while let n @ 1.. = session.poll_transmit(&mut buf) { socket.write_all(&buf[..n]) }
//!     // Sleep at most until the session's next deadline (None: no deadline, wait for data).
//!     let wait: Option<Duration> = session.poll_timeout().map(|t| t - now());
//!     let read = socket.read(&mut rx) with a timeout of wait;
//!     let mut rest = &rx[..read];
//!     while !rest.is_empty() {
//!         rest = &rest[session.handle_input(now(), rest)..];
//!         while let Some(event) = session.poll_event() { /* handle it */ }
//!     }
//!     session.handle_timeout(now());
//!     while let Some(event) = session.poll_event() { /* timeouts, pings */ }
//! }
//! ```
//! `handle_input` stops after each complete line so that events can borrow it; drain
//! `poll_event` before feeding the rest. That is the whole contract, and it guarantees
//! progress: fed with its events drained, `handle_input` takes at least one byte of any
//! non-empty input, so the inner loop ends; fed while events wait, it takes nothing (returns 0)
//! and no event is ever dropped.
//!
//! Memory: a session, the P2P peer and the engines work in buffers the caller gives them
//! ([`buffer::Buffer`]: borrowed slices, or with `alloc` owned ones), sized at run time; their
//! own state is small and fixed ([`session::SESSION_OVERHEAD`]). Where stack is tight, put
//! [`session::Session::EMPTY`] in its place and [`session::Session::start`] it there: no
//! session is built on the stack (740 bytes of stack on a Cortex-M4, `scripts/core-size.sh`).
//!
//! Time is the caller's: a [`time::Instant`] is milliseconds since any origin the caller
//! picks, from a clock that does not go backwards; deadlines ([`session::Session::poll_timeout`])
//! are on the same scale, and `deadline - now` is the [`time::Duration`] to sleep (zero when
//! due). The sync engines ([`sync`]) and the P2P peer ([`p2p`]) take the same `now`. Only the
//! header verifier's two-hour rule needs wall-clock time, as [`time::UnixTime`]
//! ([`chain::HeaderVerifier::set_clock`]).
//!
//! With the `embedded-io-async` feature, `driver` runs this loop over any
//! `embedded-io-async` transport (an embassy-net `TcpSocket`) with the caller's clock.

//! ## Bounds
//! Every structure here has a fixed size, known at compile time or given by the caller's
//! buffers; none grows with its input.
//! Inputs from the network are untrusted: functions return typed errors and do not panic.

#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod accumulator;
#[cfg(feature = "bitcoin")]
pub mod bitcoin_types;
pub mod buffer;
pub mod chain;
#[cfg(feature = "embedded-io-async")]
pub mod driver;
pub mod hash;
pub mod header;
pub mod hex;
pub mod history;
// The JSON tokenizer, framer, envelope, writer and decoders: internals of the session (its
// errors and limits are re-exported by `session`); public only for the crate's own tests and
// fuzz targets.
#[cfg(feature = "_test_exports")]
#[doc(hidden)]
pub mod json;
#[cfg(not(feature = "_test_exports"))]
mod json;
pub mod merkle;
pub mod p2p;
pub mod rpc;
pub mod script;
#[cfg(feature = "serde")]
mod serde_impls;
pub mod session;
pub mod sync;
pub mod time;
pub mod tx;
pub mod tx_parts;
pub mod u256;

pub use hash::{BlockHash, MerkleNode, ScriptHash, Status, Txid, Wtxid};
pub use header::{CompactTarget, Header, Target, Work};
pub use u256::U256;

pub use accumulator::{
    HeaderProofError, HeaderProofFolder, MerkleAccumulator, verify_header_proof,
};
pub use merkle::{
    BranchFolder, MerkleError, MerkleRootError, TreeDepth, merkle_root, verify_tx_branch,
};
pub use script::{CanonicalOrder, StatusHasher, TxHeight, script_hash};
pub use tx::{TxError, TxItem, TxScan, TxidHasher, txid};
