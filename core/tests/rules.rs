//! Consensus rules that the bundled real data does not exercise (testnet's minimum-difficulty
//! exception, BIP94, version floors, a period end that contradicts its checkpoint, the clock),
//! checked on small chains mined here at easy targets with the real rule parameters otherwise.

use electrum_spv_core::chain::{
    Anchor, AnchorHash, Checkpoint, HeaderErrorKind, HeaderVerifier, Network, Params, REGTEST,
    TESTNET3, TESTNET4,
};
use electrum_spv_core::hash::sha256d;
use electrum_spv_core::header::{CompactTarget, Target, Work};
use electrum_spv_core::{BlockHash, Header, MerkleNode};

/// Easiest target that still retargets within range: 2^255-ish, like regtest's limit.
const LIMIT_BITS: u32 = 0x207fffff;
/// A harder regular difficulty (about 1 in 256 hashes).
const REGULAR_BITS: u32 = 0x2000ffff;

fn params_like(base: &'static Params, checkpoints: Vec<Checkpoint>) -> &'static Params {
    Box::leak(Box::new(Params {
        network: base.network,
        genesis_hash: base.genesis_hash,
        pow_limit: CompactTarget(LIMIT_BITS).to_target().unwrap(),
        pow_limit_bits: CompactTarget(LIMIT_BITS),
        pow_target_timespan: base.pow_target_timespan,
        pow_target_spacing: base.pow_target_spacing,
        allow_min_difficulty_blocks: base.allow_min_difficulty_blocks,
        no_retargeting: base.no_retargeting,
        enforce_bip94: base.enforce_bip94,
        bip34_height: base.bip34_height,
        bip66_height: base.bip66_height,
        bip65_height: base.bip65_height,
        checkpoints: Box::leak(checkpoints.into_boxed_slice()),
        first_checkpoint_period: 0,
    }))
}

/// Mines a header on `prev` (grinding the nonce) that meets `bits`.
fn mine(prev: BlockHash, time: u32, bits: u32, version: i32) -> [u8; 80] {
    let target = CompactTarget(bits).to_target().unwrap();
    let mut h = Header {
        version,
        prev_blockhash: prev,
        merkle_root: MerkleNode::from_byte_array(sha256d(&time.to_le_bytes())),
        time,
        bits: CompactTarget(bits),
        nonce: 0,
    };
    while !target.is_met_by(&h.block_hash()) {
        h.nonce += 1;
    }
    h.to_bytes()
}

/// A chain builder on a verifier: mines each header on the verifier's tip and pushes it.
struct Chain {
    v: HeaderVerifier,
    time: u32,
}

impl Chain {
    /// Starts from a trusted first header at `height`.
    fn start(params: &'static Params, height: u32, bits: u32) -> Chain {
        let time = 1_700_000_000;
        let first = mine(BlockHash::from_byte_array([7; 32]), time, bits, 0x2000_0000);
        let v = HeaderVerifier::trusting_first(params, height, &first).unwrap();
        Chain { v, time }
    }

    fn tip_hash(&self) -> BlockHash {
        self.v.tip().unwrap().hash
    }

    /// Mines the next header `gap` seconds after the tip with `bits`; returns the push result.
    fn try_next(
        &mut self,
        gap: u32,
        bits: u32,
    ) -> Result<BlockHash, electrum_spv_core::chain::HeaderError> {
        let h = mine(self.tip_hash(), self.time + gap, bits, 0x2000_0000);
        let r = self.v.push(&h);
        if r.is_ok() {
            self.time += gap;
        }
        r
    }

    fn next(&mut self, gap: u32, bits: u32) {
        self.try_next(gap, bits).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn testnet3_allows_minimum_difficulty_only_after_twenty_minutes() {
    let p = params_like(&TESTNET3, vec![]);
    let mut c = Chain::start(p, 2016 * 10, REGULAR_BITS);
    c.next(600, REGULAR_BITS);
    // Twenty minutes exactly is not "more than two spacings".
    let e = c.try_next(1200, LIMIT_BITS).unwrap_err();
    assert_eq!(
        e.kind,
        HeaderErrorKind::BitsMismatch {
            expected: CompactTarget(REGULAR_BITS),
            got: CompactTarget(LIMIT_BITS)
        }
    );
    c.next(1201, LIMIT_BITS);
    c.next(1300, LIMIT_BITS);
    // Back within twenty minutes: the last regular target applies again, not the limit.
    let e = c.try_next(60, LIMIT_BITS).unwrap_err();
    assert_eq!(
        e.kind,
        HeaderErrorKind::BitsMismatch {
            expected: CompactTarget(REGULAR_BITS),
            got: CompactTarget(LIMIT_BITS)
        }
    );
    c.next(60, REGULAR_BITS);
    // Mainnet rules never allow the exception.
    let m = params_like(&electrum_spv_core::chain::MAINNET, vec![]);
    let mut c = Chain::start(m, 2016 * 10, REGULAR_BITS);
    let e = c.try_next(3600, LIMIT_BITS).unwrap_err();
    assert!(matches!(e.kind, HeaderErrorKind::BitsMismatch { .. }));
}

/// Runs one whole period whose last block is a minimum-difficulty exception, then returns the
/// target each rule set requires for the first block of the next period.
fn bits_after_period_ending_in_min_difficulty(base: &'static Params) -> CompactTarget {
    let p = params_like(base, vec![]);
    let mut c = Chain::start(p, 2016 * 10, REGULAR_BITS);
    for _ in 0..2013 {
        c.next(600, REGULAR_BITS);
    }
    c.next(1500, LIMIT_BITS); // height 2016*10 + 2014
    c.next(1500, LIMIT_BITS); // height 2016*10 + 2015, the period's last block
    let e = c.try_next(600, 0x1f00ffff).unwrap_err();
    match e.kind {
        HeaderErrorKind::BitsMismatch { expected, .. } => expected,
        other => panic!("{other:?}"),
    }
}

#[test]
fn bip94_retargets_from_the_first_block_not_the_last() {
    let testnet3 = bits_after_period_ending_in_min_difficulty(&TESTNET3);
    let testnet4 = bits_after_period_ending_in_min_difficulty(&TESTNET4);
    // testnet3 scales the limit (the bug BIP94 fixes), capped at the limit; testnet4 scales the
    // regular target.
    assert_eq!(testnet3, CompactTarget(LIMIT_BITS));
    let regular = CompactTarget(REGULAR_BITS).to_target().unwrap();
    let span = 2013 * 600 + 3000; // the period's real duration from its first to last block
    let expected = Target(regular.0.mul_div_u64(span, 14 * 24 * 3600).unwrap()).to_compact();
    assert_eq!(testnet4, expected);
    assert_ne!(testnet3, testnet4);
}

#[test]
fn bip94_rejects_a_timewarped_period_start() {
    let p = params_like(&TESTNET4, vec![]);
    let mut c = Chain::start(p, 2016 * 10 + 2014, REGULAR_BITS);
    c.next(600, REGULAR_BITS); // last block of the period
    let prev_time = c.time;
    // The new period's first block may be at most 600 s before its parent.
    let bits = match c.try_next(0, 0x1f00ffff).unwrap_err().kind {
        HeaderErrorKind::DifficultyTransitionOutOfRange { .. } => REGULAR_BITS,
        HeaderErrorKind::BitsMismatch { expected, .. } => expected.0,
        other => panic!("{other:?}"),
    };
    let early = mine(c.tip_hash(), prev_time - 601, bits, 0x2000_0000);
    let e = c.v.push(&early).unwrap_err();
    assert_eq!(
        e.kind,
        HeaderErrorKind::TimewarpAttack {
            time: prev_time - 601,
            prev_time
        }
    );
    let ok = mine(c.tip_hash(), prev_time - 600, bits, 0x2000_0000);
    c.v.push(&ok).expect("600 s back is allowed");
    // testnet3 has no such rule.
    let p3 = params_like(&TESTNET3, vec![]);
    let c3 = Chain::start(p3, 2016 * 10 + 2015, REGULAR_BITS);
    let h = mine(c3.tip_hash(), c3.time - 601, REGULAR_BITS, 0x2000_0000);
    let mut c3 = c3;
    assert!(!matches!(
        c3.v.push(&h).map_err(|e| e.kind),
        Err(HeaderErrorKind::TimewarpAttack { .. })
    ));
}

#[test]
fn regtest_never_retargets() {
    let mut c = Chain::start(&REGTEST, 2015, LIMIT_BITS);
    c.next(1, LIMIT_BITS); // a boundary, minutes instead of weeks: same target
    assert_eq!(c.v.tip().unwrap().height, 2016);
}

#[test]
fn version_floors_follow_bip34_bip66_bip65() {
    let mut p = params_like(&REGTEST, vec![]);
    let owned = Params {
        bip34_height: 10,
        bip66_height: 20,
        bip65_height: 30,
        ..clone(p)
    };
    p = Box::leak(Box::new(owned));
    for (height, bad, good) in [(10u32, 1i32, 2i32), (20, 2, 3), (30, 3, 4)] {
        let mut c = Chain::start(p, height - 1, LIMIT_BITS);
        let h = mine(c.tip_hash(), c.time + 1, LIMIT_BITS, bad);
        assert_eq!(
            c.v.push(&h).unwrap_err().kind,
            HeaderErrorKind::ObsoleteVersion { version: bad }
        );
        let h = mine(c.tip_hash(), c.time + 1, LIMIT_BITS, good);
        c.v.push(&h).unwrap();
        c.time += 1;
    }
}

fn clone(p: &Params) -> Params {
    Params {
        checkpoints: p.checkpoints,
        ..*p
    }
}

#[test]
fn a_period_end_that_is_not_the_checkpointed_block_is_refused() {
    let p = params_like(&REGTEST, vec![Checkpoint::new(&"11".repeat(32), 0)]);
    let mut c = Chain::start(p, 2014, LIMIT_BITS);
    let e = c.try_next(60, LIMIT_BITS).unwrap_err();
    assert_eq!(
        (e.height, e.kind),
        (2015, HeaderErrorKind::CheckpointMismatch)
    );
    // A segment anchored at that checkpoint must link to it.
    let anchor = Anchor::at_height(p, 2016).unwrap();
    assert_eq!(
        anchor.expected,
        AnchorHash::Checkpoint(p.checkpoints[0].hash)
    );
    assert!(
        !anchor.work_is_absolute,
        "regtest has minimum-difficulty blocks"
    );
    assert_eq!(anchor.work_below, Work::ZERO);
}

#[test]
fn clock_rejects_headers_more_than_two_hours_ahead() {
    let mut c = Chain::start(&REGTEST, 100, LIMIT_BITS);
    c.v.set_clock(electrum_spv_core::time::UnixTime::from_secs(c.time));
    let e = c.try_next(7201, LIMIT_BITS).unwrap_err();
    assert_eq!(
        e.kind,
        HeaderErrorKind::TimeTooNew {
            time: c.time + 7201,
            limit: c.time + 7200
        }
    );
    c.next(7200, LIMIT_BITS);
}

#[test]
fn difficulty_jump_beyond_four_times_is_refused_when_period_start_is_unknown() {
    let p = params_like(&electrum_spv_core::chain::MAINNET, vec![]);
    let mut c = Chain::start(p, 2015, REGULAR_BITS);
    // 16x easier than the regular target.
    let easier = Target(
        CompactTarget(REGULAR_BITS)
            .to_target()
            .unwrap()
            .0
            .mul_div_u64(16, 1)
            .unwrap(),
    )
    .to_compact();
    let e = c.try_next(600, easier.0).unwrap_err();
    assert_eq!(
        e.kind,
        HeaderErrorKind::DifficultyTransitionOutOfRange { got: easier }
    );
    let twice = Target(
        CompactTarget(REGULAR_BITS)
            .to_target()
            .unwrap()
            .0
            .mul_div_u64(2, 1)
            .unwrap(),
    )
    .to_compact();
    c.next(600, twice.0);
    assert_eq!(c.v.tip().unwrap().bits, twice);
    assert_eq!(Network::Mainnet.params().network, p.network);
}
