//! Compiled-in checkpoints, one per difficulty period.
//!
//! The tables are generated from `core/tests/data/checkpoints/*.json` (the lists a widely used
//! desktop wallet ships) by `core/tests/checkpoints.rs`; that test fails when a table drifts from
//! its source and rewrites the tables when run with `REGENERATE_CHECKPOINTS=1`.

use crate::hash::BlockHash;
use crate::header::CompactTarget;

mod mainnet;
mod signet;
mod testnet3;
mod testnet4;

pub use mainnet::MAINNET;
pub use signet::SIGNET;
pub use testnet3::TESTNET3;
pub use testnet4::TESTNET4;

/// The last block of a difficulty period, and the target the next period uses.
///
/// 36 bytes: the target is kept raw (0 = not carried by the source list) so that the mainnet
/// table costs 17 KiB of flash rather than 19.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Checkpoint {
    /// Hash of block `2016 * i + 2015`.
    pub hash: BlockHash,
    next_bits: u32,
}

impl Checkpoint {
    /// Builds an entry at compile time from display hex; `next_bits == 0` means unknown.
    pub const fn new(hash_display_hex: &str, next_bits: u32) -> Checkpoint {
        Checkpoint {
            hash: BlockHash::from_display_hex_const(hash_display_hex),
            next_bits,
        }
    }

    /// Builds an entry at run time (from a checkpoint file): the block's hash and the compact
    /// target of the next period, if known.
    pub const fn from_parts(hash: BlockHash, next_bits: Option<CompactTarget>) -> Checkpoint {
        Checkpoint {
            hash,
            next_bits: match next_bits {
                Some(CompactTarget(bits)) => bits,
                None => 0,
            },
        }
    }

    /// Compact target of the next period, when the source list carries it (mainnet only).
    pub const fn next_bits(&self) -> Option<CompactTarget> {
        if self.next_bits == 0 {
            None
        } else {
            Some(CompactTarget(self.next_bits))
        }
    }
}
