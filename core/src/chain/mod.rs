//! Network parameters, checkpoints, the header verifier and fork choice.

mod anchor;
pub mod checkpoints;
mod fork;
mod params;
mod verifier;

pub use anchor::{Anchor, AnchorError, AnchorHash};
pub use checkpoints::Checkpoint;
pub use fork::{Branch, ForkChoiceError, choose_branch};
pub use params::{
    DIFFICULTY_ADJUSTMENT_INTERVAL, MAINNET, Network, Params, REGTEST, SIGNET, TESTNET3, TESTNET4,
    UnknownNetwork, is_period_end, is_period_start,
};
pub use verifier::{
    ChainTip, HEADER_VERIFIER_MAX_SIZE, HeaderError, HeaderErrorKind, HeaderVerifier,
    MAX_FUTURE_BLOCK_TIME, MAX_TIMEWARP, MEDIAN_TIME_SPAN, next_period_bits,
};
