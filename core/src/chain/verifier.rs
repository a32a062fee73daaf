//! The constant-memory header verifier.

use core::fmt;

use crate::chain::anchor::{Anchor, AnchorHash};
use crate::chain::params::{
    DIFFICULTY_ADJUSTMENT_INTERVAL, Params, is_period_end, is_period_start,
};
use crate::hash::{BlockHash, sha256d};
use crate::header::{
    CompactError, CompactTarget, HEADER_SIZE, HeaderParseError, Target, Work, hash_at, le_u32,
};
use crate::hex;
use crate::time::UnixTime;

/// Number of previous timestamps in the median-time-past rule.
pub const MEDIAN_TIME_SPAN: usize = 11;

/// BIP94: a period's first block may not be more than this many seconds before its parent.
pub const MAX_TIMEWARP: u32 = 600;

/// Bitcoin Core's limit on how far a header's time may run ahead of the local clock.
pub const MAX_FUTURE_BLOCK_TIME: u32 = 2 * 60 * 60;

/// A header that broke a rule, and which rule.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HeaderError {
    /// Height of the offending header.
    pub height: u32,
    /// What was wrong with it.
    pub kind: HeaderErrorKind,
}

/// The rule a header broke. Rules are checked in this order: parse, link, target, time,
/// version, proof of work, checkpoint; the first that fails is reported.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HeaderErrorKind {
    /// Not 80 bytes, or not valid hex.
    Parse(HeaderParseError),
    /// Block 0 does not hash to the network's genesis hash.
    GenesisMismatch,
    /// The header does not point back to the previous header.
    PrevHashMismatch,
    /// The header disagrees with a compiled-in checkpoint (its parent at the start of a segment,
    /// or its own hash at the end of a period).
    CheckpointMismatch,
    /// The header's target is not the one the retarget rules give.
    BitsMismatch {
        /// Target the rules require.
        expected: CompactTarget,
        /// Target the header carries.
        got: CompactTarget,
    },
    /// At a retarget whose period start is unknown, the new target moved by more than 4x.
    DifficultyTransitionOutOfRange {
        /// Target the header carries.
        got: CompactTarget,
    },
    /// The compact target does not encode a usable target.
    InvalidBits(CompactError),
    /// The target is easier than the network's proof-of-work limit.
    TargetAbovePowLimit,
    /// The header's hash does not meet its target.
    InsufficientProofOfWork,
    /// The timestamp is not after the median of the previous 11.
    TimeNotAfterMedian {
        /// The header's time.
        time: u32,
        /// Median time past.
        median: u32,
    },
    /// BIP94: the first block of a period is dated too far before its parent.
    TimewarpAttack {
        /// The header's time.
        time: u32,
        /// Its parent's time.
        prev_time: u32,
    },
    /// The timestamp is more than two hours after the caller's clock.
    TimeTooNew {
        /// The header's time.
        time: u32,
        /// Latest acceptable time.
        limit: u32,
    },
    /// The version is below what BIP34/BIP66/BIP65 require at this height.
    ObsoleteVersion {
        /// The header's version.
        version: i32,
    },
    /// The chain reached height 2^32 - 1.
    HeightOverflow,
}

impl fmt::Display for HeaderErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderErrorKind::Parse(e) => write!(f, "{e}"),
            HeaderErrorKind::GenesisMismatch => {
                f.write_str("not the genesis block of this network")
            }
            HeaderErrorKind::PrevHashMismatch => {
                f.write_str("does not link to the previous header")
            }
            HeaderErrorKind::CheckpointMismatch => f.write_str("does not match the checkpoint"),
            HeaderErrorKind::BitsMismatch { expected, got } => {
                write!(f, "wrong difficulty bits {got}, expected {expected}")
            }
            HeaderErrorKind::DifficultyTransitionOutOfRange { got } => {
                write!(f, "difficulty bits {got} change by more than a factor of 4")
            }
            HeaderErrorKind::InvalidBits(e) => write!(f, "invalid difficulty bits: {e}"),
            HeaderErrorKind::TargetAbovePowLimit => {
                f.write_str("target above the proof-of-work limit")
            }
            HeaderErrorKind::InsufficientProofOfWork => {
                f.write_str("hash does not meet its target")
            }
            HeaderErrorKind::TimeNotAfterMedian { time, median } => {
                write!(f, "time {time} is not after median time past {median}")
            }
            HeaderErrorKind::TimewarpAttack { time, prev_time } => {
                write!(
                    f,
                    "time {time} is more than {MAX_TIMEWARP}s before parent time {prev_time}"
                )
            }
            HeaderErrorKind::TimeTooNew { time, limit } => {
                write!(f, "time {time} is after the limit {limit}")
            }
            HeaderErrorKind::ObsoleteVersion { version } => {
                write!(f, "version {version} is obsolete at this height")
            }
            HeaderErrorKind::HeightOverflow => f.write_str("height overflow"),
        }
    }
}

impl From<HeaderParseError> for HeaderErrorKind {
    fn from(e: HeaderParseError) -> Self {
        HeaderErrorKind::Parse(e)
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "height {}: {}", self.height, self.kind)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HeaderError {}

/// The last verified header and the chain's cumulative work.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ChainTip {
    /// Height of the tip.
    pub height: u32,
    /// Hash of the tip.
    pub hash: BlockHash,
    /// Timestamp of the tip.
    pub time: u32,
    /// Target of the tip.
    pub bits: CompactTarget,
    /// Work of all blocks up to and including the tip (see [`HeaderVerifier::work_is_absolute`]).
    pub chainwork: Work,
}

/// Upper bound on `size_of::<HeaderVerifier>()` on 64-bit targets (checked by a test); on
/// 32-bit targets it is smaller.
pub const HEADER_VERIFIER_MAX_SIZE: usize = 384;

/// A target and its work, computed once per distinct `bits` value.
#[derive(Clone, Copy, Debug)]
struct TargetCache {
    bits: CompactTarget,
    target: Target,
    work: Work,
}

impl TargetCache {
    fn new(params: &Params, bits: CompactTarget) -> Result<TargetCache, HeaderErrorKind> {
        let target = bits.to_target().map_err(HeaderErrorKind::InvalidBits)?;
        if target > params.pow_limit {
            return Err(HeaderErrorKind::TargetAbovePowLimit);
        }
        Ok(TargetCache {
            bits,
            target,
            work: target.work(),
        })
    }
}

/// Verifies a header chain one header at a time in constant memory (at most
/// [`HEADER_VERIFIER_MAX_SIZE`] bytes).
///
/// Checks, for each header: the link to its parent; the target (retarget every 2016 blocks,
/// testnet's 20-minute minimum-difficulty rule, BIP94 on testnet4, none on regtest); that the
/// time is after the median of the previous 11 (and, with [`Self::set_clock`], not more than two
/// hours ahead); BIP34/66/65 minimum versions; proof of work; compiled-in checkpoints.
///
/// A rejected header changes nothing: the verifier stays at its tip and accepts the right
/// header next. Cloning a verifier at a fork point gives two branches whose work
/// [`choose_branch`](crate::chain::choose_branch) compares.
///
/// What a segment that does not start at genesis cannot know: the median-time-past rule is
/// applied once 11 timestamps of the segment are seen; a segment anchored at a checkpoint whose
/// list carries no target (all but mainnet) takes the first header's target as given (bounded by
/// the proof-of-work limit), and its cumulative work counts from the anchor.
#[derive(Clone, Debug)]
pub struct HeaderVerifier {
    params: &'static Params,
    anchor: Anchor,
    /// `None` until the first header is accepted.
    tip: Option<ChainTip>,
    /// Time and target of the first block of the tip's period, if seen.
    period_start: Option<(u32, CompactTarget)>,
    /// testnet: target of the last block that was not a minimum-difficulty exception.
    last_regular_bits: CompactTarget,
    /// Ring of the last timestamps, oldest overwritten first.
    times: [u32; MEDIAN_TIME_SPAN],
    times_len: u8,
    times_next: u8,
    /// Whether every timestamp since genesis is in the ring (so short rings are exact).
    times_complete: bool,
    current: Option<TargetCache>,
    /// Work of a minimum-difficulty block, so testnet's frequent exceptions cost no division.
    limit_work: Work,
    clock_limit: Option<u32>,
}

impl HeaderVerifier {
    /// A verifier for a segment starting at `anchor`.
    pub fn new(params: &'static Params, anchor: Anchor) -> HeaderVerifier {
        HeaderVerifier {
            params,
            anchor,
            tip: None,
            period_start: None,
            last_regular_bits: params.pow_limit_bits,
            times: [0; MEDIAN_TIME_SPAN],
            times_len: 0,
            times_next: 0,
            times_complete: anchor.height == 0,
            current: None,
            limit_work: params
                .pow_limit_bits
                .to_target()
                .map_or(Work::ZERO, |t| t.work()),
            clock_limit: None,
        }
    }

    /// A verifier whose first header is taken on trust (no parent or target check), for a
    /// segment that starts neither at genesis nor at a checkpointed boundary. Only the first
    /// header's own proof of work and its target's range are checked. If `height` is not a
    /// period boundary, the next retarget can only be bounded to a factor of 4 (as Bitcoin
    /// Core's `PermittedDifficultyTransition`), not computed.
    pub fn trusting_first(
        params: &'static Params,
        height: u32,
        header: &[u8; HEADER_SIZE],
    ) -> Result<HeaderVerifier, HeaderError> {
        let err = |kind| HeaderError { height, kind };
        let bits = CompactTarget(le_u32(header, 72));
        let cache = TargetCache::new(params, bits).map_err(err)?;
        let hash = BlockHash::from_byte_array(sha256d(header));
        if !cache.target.is_met_by(&hash) {
            return Err(err(HeaderErrorKind::InsufficientProofOfWork));
        }
        let anchor = Anchor {
            height,
            expected: AnchorHash::Checkpoint(BlockHash::from_byte_array(hash_at(header, 4))),
            bits: Some(bits),
            work_below: Work::ZERO,
            work_is_absolute: false,
        };
        let mut v = HeaderVerifier::new(params, anchor);
        v.accept(header, hash, cache, height);
        Ok(v)
    }

    /// Enables the "not more than two hours in the future" rule against the caller's
    /// wall-clock time `now`. Core has no clock; without this the rule is off.
    pub fn set_clock(&mut self, now: UnixTime) {
        // Compared with a header's `time` field, which is seconds since the epoch as a `u32`.
        self.clock_limit = Some(now.secs().saturating_add(MAX_FUTURE_BLOCK_TIME));
    }

    /// The network parameters.
    pub fn params(&self) -> &'static Params {
        self.params
    }

    /// The anchor this segment started from.
    pub fn anchor(&self) -> &Anchor {
        &self.anchor
    }

    /// The last accepted header, if any.
    pub fn tip(&self) -> Option<&ChainTip> {
        self.tip.as_ref()
    }

    /// Height the next header must have.
    pub fn next_height(&self) -> u32 {
        match &self.tip {
            Some(t) => t.height.saturating_add(1),
            None => self.anchor.height,
        }
    }

    /// Whether [`ChainTip::chainwork`] counts from genesis (true) or from the anchor.
    pub fn work_is_absolute(&self) -> bool {
        self.anchor.work_is_absolute
    }

    /// Verifies a header given as 160 hex digits.
    pub fn push_hex(&mut self, hex: &[u8]) -> Result<BlockHash, HeaderError> {
        let mut bytes = [0u8; HEADER_SIZE];
        hex::decode_to_slice(hex, &mut bytes).map_err(|e| HeaderError {
            height: self.next_height(),
            kind: HeaderErrorKind::Parse(HeaderParseError::Hex(e)),
        })?;
        self.push(&bytes)
    }

    /// Verifies a header given as a slice, which must be 80 bytes.
    pub fn push_slice(&mut self, bytes: &[u8]) -> Result<BlockHash, HeaderError> {
        let header: &[u8; HEADER_SIZE] = bytes.try_into().map_err(|_| HeaderError {
            height: self.next_height(),
            kind: HeaderErrorKind::Parse(HeaderParseError::BadLength(bytes.len())),
        })?;
        self.push(header)
    }

    /// Verifies the next header and, if it follows every rule, makes it the tip.
    pub fn push(&mut self, header: &[u8; HEADER_SIZE]) -> Result<BlockHash, HeaderError> {
        let height = match &self.tip {
            Some(t) => t.height.checked_add(1),
            None => Some(self.anchor.height),
        };
        let Some(height) = height else {
            return Err(HeaderError {
                height: u32::MAX,
                kind: HeaderErrorKind::HeightOverflow,
            });
        };
        let err = |kind| HeaderError { height, kind };
        let hash = BlockHash::from_byte_array(sha256d(header));
        self.check_link(header, &hash).map_err(err)?;
        let bits = CompactTarget(le_u32(header, 72));
        let cache = self.check_bits(height, header, bits).map_err(err)?;
        self.check_time(height, le_u32(header, 68)).map_err(err)?;
        self.check_version(height, le_u32(header, 0) as i32)
            .map_err(err)?;
        if !cache.target.is_met_by(&hash) {
            return Err(err(HeaderErrorKind::InsufficientProofOfWork));
        }
        if is_period_end(height)
            && let Some(cp) = self
                .params
                .checkpoint(height / DIFFICULTY_ADJUSTMENT_INTERVAL)
            && cp.hash != hash
        {
            return Err(err(HeaderErrorKind::CheckpointMismatch));
        }
        self.accept(header, hash, cache, height);
        Ok(hash)
    }

    fn check_link(
        &self,
        header: &[u8; HEADER_SIZE],
        hash: &BlockHash,
    ) -> Result<(), HeaderErrorKind> {
        let prev = hash_at(header, 4);
        match (&self.tip, self.anchor.expected) {
            (Some(tip), _) if *tip.hash.as_byte_array() != prev => {
                Err(HeaderErrorKind::PrevHashMismatch)
            }
            (Some(_), _) => Ok(()),
            (None, AnchorHash::Genesis(g)) if g != *hash => Err(HeaderErrorKind::GenesisMismatch),
            (None, AnchorHash::Checkpoint(c)) if *c.as_byte_array() != prev => {
                Err(HeaderErrorKind::CheckpointMismatch)
            }
            (None, _) => Ok(()),
        }
    }

    /// Returns the target cache for `bits` once `bits` is shown to be what the rules require.
    fn check_bits(
        &mut self,
        height: u32,
        header: &[u8; HEADER_SIZE],
        bits: CompactTarget,
    ) -> Result<TargetCache, HeaderErrorKind> {
        let expected = match &self.tip {
            None => self.anchor.bits,
            Some(tip) => Some(self.required_bits(height, tip, le_u32(header, 68), bits)?),
        };
        if let Some(expected) = expected
            && expected != bits
        {
            return Err(HeaderErrorKind::BitsMismatch {
                expected,
                got: bits,
            });
        }
        match self.current {
            Some(c) if c.bits == bits => Ok(c),
            _ if bits == self.params.pow_limit_bits => Ok(TargetCache {
                bits,
                target: bits.to_target().map_err(HeaderErrorKind::InvalidBits)?,
                work: self.limit_work,
            }),
            _ => TargetCache::new(self.params, bits),
        }
    }

    /// The target the header at `height` must carry (Bitcoin Core's `GetNextWorkRequired`).
    fn required_bits(
        &self,
        height: u32,
        tip: &ChainTip,
        time: u32,
        bits: CompactTarget,
    ) -> Result<CompactTarget, HeaderErrorKind> {
        let p = self.params;
        if !is_period_start(height) {
            if !p.allow_min_difficulty_blocks {
                return Ok(tip.bits);
            }
            let late = u64::from(time) > u64::from(tip.time) + 2 * u64::from(p.pow_target_spacing);
            return Ok(if late {
                p.pow_limit_bits
            } else {
                self.last_regular_bits
            });
        }
        if p.no_retargeting {
            return Ok(tip.bits);
        }
        let base_bits = match (p.enforce_bip94, self.period_start) {
            (true, Some((_, first_bits))) => first_bits,
            _ => tip.bits,
        };
        let base = base_bits
            .to_target()
            .map_err(HeaderErrorKind::InvalidBits)?;
        let Some((first_time, _)) = self.period_start else {
            return if permitted_transition(p, base, bits) {
                Ok(bits)
            } else {
                Err(HeaderErrorKind::DifficultyTransitionOutOfRange { got: bits })
            };
        };
        Ok(next_period_bits(p, base, first_time, tip.time))
    }

    fn check_time(&self, height: u32, time: u32) -> Result<(), HeaderErrorKind> {
        if let Some(limit) = self.clock_limit
            && time > limit
        {
            return Err(HeaderErrorKind::TimeTooNew { time, limit });
        }
        let n = usize::from(self.times_len);
        if n > 0 && (n == MEDIAN_TIME_SPAN || self.times_complete) {
            let ring = &self.times[..n];
            // Most headers are later than every recent one; only the rest need the median.
            if ring.iter().any(|&t| t >= time) {
                let median = median(ring);
                if time <= median {
                    return Err(HeaderErrorKind::TimeNotAfterMedian { time, median });
                }
            }
        }
        if self.params.enforce_bip94
            && is_period_start(height)
            && let Some(tip) = &self.tip
            && u64::from(time) + u64::from(MAX_TIMEWARP) < u64::from(tip.time)
        {
            return Err(HeaderErrorKind::TimewarpAttack {
                time,
                prev_time: tip.time,
            });
        }
        Ok(())
    }

    fn check_version(&self, height: u32, version: i32) -> Result<(), HeaderErrorKind> {
        let p = self.params;
        let required = if height >= p.bip65_height {
            4
        } else if height >= p.bip66_height {
            3
        } else if height >= p.bip34_height {
            2
        } else {
            i32::MIN
        };
        if version < required {
            return Err(HeaderErrorKind::ObsoleteVersion { version });
        }
        Ok(())
    }

    fn accept(
        &mut self,
        header: &[u8; HEADER_SIZE],
        hash: BlockHash,
        cache: TargetCache,
        height: u32,
    ) {
        let time = le_u32(header, 68);
        let below = self.tip.map_or(self.anchor.work_below, |t| t.chainwork);
        self.tip = Some(ChainTip {
            height,
            hash,
            time,
            bits: cache.bits,
            chainwork: below.add(cache.work),
        });
        if is_period_start(height) {
            self.period_start = Some((time, cache.bits));
        }
        if is_period_start(height) || cache.bits != self.params.pow_limit_bits {
            self.last_regular_bits = cache.bits;
        }
        self.times[usize::from(self.times_next)] = time;
        self.times_next = (self.times_next + 1) % MEDIAN_TIME_SPAN as u8;
        self.times_len = (self.times_len + 1).min(MEDIAN_TIME_SPAN as u8);
        // Keep the cache on the period's target; a testnet min-difficulty block is recomputed.
        if cache.bits != self.params.pow_limit_bits || self.current.is_none() {
            self.current = Some(cache);
        }
    }
}

/// The target of a new period (Bitcoin Core's `CalculateNextWorkRequired`): the previous target
/// (`base`; the last block's, or with BIP94 the period's first block's) scaled by how long the
/// period took, from `first_time` (its first block) to `last_time` (its last block), clamped to a
/// factor of 4 and capped at the proof-of-work limit.
pub fn next_period_bits(
    p: &Params,
    base: Target,
    first_time: u32,
    last_time: u32,
) -> CompactTarget {
    let span = i64::from(p.pow_target_timespan);
    let actual = (i64::from(last_time) - i64::from(first_time)).clamp(span / 4, span * 4);
    retarget(p, base, actual as u64).to_compact()
}

/// Median of at most [`MEDIAN_TIME_SPAN`] timestamps, as Bitcoin Core takes it (the upper
/// middle for an even count). An insertion sort: for 11 values it is as fast as a library sort
/// and keeps 2 KiB of sorting code out of firmware.
fn median(times: &[u32]) -> u32 {
    let mut sorted = [0u32; MEDIAN_TIME_SPAN];
    let sorted = &mut sorted[..times.len().min(MEDIAN_TIME_SPAN)];
    for (i, &t) in times.iter().take(MEDIAN_TIME_SPAN).enumerate() {
        let mut j = i;
        while j > 0 && sorted[j - 1] > t {
            sorted[j] = sorted[j - 1];
            j -= 1;
        }
        sorted[j] = t;
    }
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

/// `base * actual / timespan`, capped at the proof-of-work limit (`CalculateNextWorkRequired`).
fn retarget(p: &Params, base: Target, actual: u64) -> Target {
    match base.0.mul_div_u64(actual, u64::from(p.pow_target_timespan)) {
        Some(t) if Target(t) <= p.pow_limit => Target(t),
        _ => p.pow_limit,
    }
}

/// Bitcoin Core's `PermittedDifficultyTransition`: the new target lies within what the largest
/// and smallest allowed timespans would give.
fn permitted_transition(p: &Params, old: Target, new_bits: CompactTarget) -> bool {
    let Ok(observed) = new_bits.to_target() else {
        return false;
    };
    let span = u64::from(p.pow_target_timespan);
    let largest = retarget(p, old, span * 4).to_compact().decode().value;
    let smallest = retarget(p, old, span / 4).to_compact().decode().value;
    observed.0 <= largest && observed.0 >= smallest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_matches_a_sorted_copy() {
        let times = [9, 3, 7, 7, 1, 12, 5, 3, 11, 2, 8];
        for n in 1..=times.len() {
            let mut sorted = times[..n].to_vec();
            sorted.sort_unstable();
            assert_eq!(median(&times[..n]), sorted[n / 2], "n = {n}");
        }
    }

    /// The documented bound (doc comment of [`HeaderVerifier`]): the verifier's state does not
    /// grow with the chain, and fits a small device's stack.
    #[test]
    fn verifier_state_is_small_and_fixed() {
        let size = core::mem::size_of::<HeaderVerifier>();
        std::println!("size_of::<HeaderVerifier>() = {size}");
        assert!(
            size <= HEADER_VERIFIER_MAX_SIZE,
            "HeaderVerifier is {size} bytes"
        );
    }
}
