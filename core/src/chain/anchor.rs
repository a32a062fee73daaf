//! Where a header segment starts, and what is known there.

use core::fmt;

use crate::chain::params::{DIFFICULTY_ADJUSTMENT_INTERVAL, Params, is_period_start};
use crate::hash::BlockHash;
use crate::header::{CompactTarget, Work};

/// What a verifier trusts about the block before its first header.
///
/// A segment that starts at height 0 is anchored by the genesis hash. One that starts at a
/// period boundary `2016 * k` is anchored by checkpoint `k - 1`: its hash is the first header's
/// parent, and (where the checkpoint list carries it) its target is the first header's target.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Anchor {
    /// Height of the first header of the segment.
    pub height: u32,
    /// What the first header must hash to (genesis) or point back to (checkpoint).
    pub expected: AnchorHash,
    /// The target the first header must carry, when known.
    pub bits: Option<CompactTarget>,
    /// Cumulative work of all blocks below `height`.
    pub work_below: Work,
    /// Whether `work_below` is the real chain work from genesis (false: counted from here).
    pub work_is_absolute: bool,
}

/// How an anchor identifies the chain.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AnchorHash {
    /// The first header is block 0 and must hash to this.
    Genesis(BlockHash),
    /// The first header's parent is this checkpointed block.
    Checkpoint(BlockHash),
}

/// Why no anchor exists at a height.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AnchorError {
    /// Only height 0 and period boundaries (multiples of 2016) are anchored.
    NotAPeriodBoundary {
        /// The height asked for.
        height: u32,
    },
    /// The boundary lies beyond the last compiled-in checkpoint.
    NoCheckpoint {
        /// The height asked for.
        height: u32,
    },
}

impl fmt::Display for AnchorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnchorError::NotAPeriodBoundary { height } => write!(
                f,
                "height {height} is not 0 or a multiple of {DIFFICULTY_ADJUSTMENT_INTERVAL}; \
                 only those are anchored by a checkpoint"
            ),
            AnchorError::NoCheckpoint { height } => {
                write!(f, "no compiled-in checkpoint anchors height {height}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for AnchorError {}

impl Anchor {
    /// The genesis anchor: the first header is block 0.
    pub fn genesis(params: &Params) -> Anchor {
        Anchor {
            height: 0,
            expected: AnchorHash::Genesis(params.genesis_hash),
            bits: Some(params.pow_limit_bits),
            work_below: Work::ZERO,
            work_is_absolute: true,
        }
    }

    /// The anchor for a segment starting at `height`: genesis for 0, a checkpoint for `2016k`.
    ///
    /// Where every earlier checkpoint carries its target and the network has no
    /// minimum-difficulty blocks (mainnet), the chain work below the anchor is computed from the
    /// targets, so cumulative work stays absolute. Cost: one 256-bit division per period below.
    pub fn at_height(params: &Params, height: u32) -> Result<Anchor, AnchorError> {
        if height == 0 {
            return Ok(Anchor::genesis(params));
        }
        if !is_period_start(height) {
            return Err(AnchorError::NotAPeriodBoundary { height });
        }
        let period = height / DIFFICULTY_ADJUSTMENT_INTERVAL;
        let checkpoint = params
            .checkpoint(period - 1)
            .ok_or(AnchorError::NoCheckpoint { height })?;
        let (work_below, work_is_absolute) = match absolute_work_below(params, period) {
            Some(w) => (w, true),
            None => (Work::ZERO, false),
        };
        Ok(Anchor {
            height,
            expected: AnchorHash::Checkpoint(checkpoint.hash),
            bits: checkpoint.next_bits(),
            work_below,
            work_is_absolute,
        })
    }
}

/// Sum of the work of periods `0..period`, when every block of each is known to carry the
/// period's target.
fn absolute_work_below(params: &Params, period: u32) -> Option<Work> {
    if params.allow_min_difficulty_blocks {
        return None;
    }
    let mut total = Work::ZERO;
    let mut bits = params.pow_limit_bits;
    for p in 0..period {
        let per_block = bits.to_target().ok()?.work();
        let per_period = per_block
            .0
            .mul_div_u64(u64::from(DIFFICULTY_ADJUSTMENT_INTERVAL), 1)?;
        total = total.add(Work(per_period));
        bits = params.checkpoint(p)?.next_bits()?;
    }
    Some(total)
}
