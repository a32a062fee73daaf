//! A verifying chain source for BDK wallets: `bdk_core` 0.6's [`FullScanRequest`] and
//! [`SyncRequest`] answered from electrum-spv's [`Pool`], so a `bdk_wallet` 3 wallet trusts its
//! Electrum servers for nothing they can be checked on.
//!
//! What `bdk_electrum` takes on trust, this crate verifies through the pool, the one verifying
//! engine the rest of electrum-spv uses (core's `ScriptTracker`):
//!
//! | BDK receives | `bdk_electrum` | electrum-spv-bdk |
//! |---|---|---|
//! | histories | as the server sends them | status recomputed, cross-checked across servers, a server that hides a proven transaction dropped |
//! | confirmation anchors | a merkle proof against a header the server sent | a hardened merkle proof against a header of the verified chain (proof of work, links, retargets, checkpoints) |
//! | the chain update | the server's last 8 headers, unverified | [`CheckPoint`]s from the verified header chain, from the block where it agrees with the wallet's tip |
//! | transactions | hashed to their txid | hashed to their txid, and shown to involve the script |
//! | a failed proof | dropped silently | an error ([`Error::Client`] with the typed fault); the liar is dropped from the pool |
//!
//! Semantics follow `bdk_electrum` 0.24 so a wallet can switch: mempool transactions get
//! `seen_at` = the request's start time; an expected txid missing from its script's history
//! gets `evicted_at`; a full scan scans `0..=last_revealed` then stops after `stop_gap` unused
//! scripts; txids and outpoints requests find their transactions through an output's script.
//! Unlike it, a full scan touches at most [`ScanOptions::max_scripts`] scripts per keychain
//! ([`Error::TooManyScripts`]), so a server reporting a history for every script cannot keep
//! it running for ever (bdk#2295).
//!
//! [`ChainSource`] is async (tokio); [`blocking::BlockingChainSource`] wraps it for callers
//! without a runtime.

mod chain_update;
mod error;
mod source;

pub mod blocking;

pub use error::Error;
pub use source::{ChainSource, ScanOptions};

pub use bdk_core;
pub use bdk_core::spk_client::{FullScanRequest, FullScanResponse, SyncRequest, SyncResponse};
pub use bdk_core::{CheckPoint, ConfirmationBlockTime};
pub use electrum_spv::Pool;
