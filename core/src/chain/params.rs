//! Consensus parameters of the networks the verifier knows.

use core::fmt;
use core::str::FromStr;

use crate::chain::checkpoints::{self, Checkpoint};
use crate::hash::BlockHash;
use crate::header::{CompactTarget, Target};
use crate::u256::U256;

/// Blocks per difficulty period.
pub const DIFFICULTY_ADJUSTMENT_INTERVAL: u32 = 2016;

/// True for the first block of a difficulty period (a retarget height).
#[inline]
pub const fn is_period_start(height: u32) -> bool {
    height.is_multiple_of(DIFFICULTY_ADJUSTMENT_INTERVAL)
}

/// True for the last block of a difficulty period (a checkpoint height).
#[inline]
pub const fn is_period_end(height: u32) -> bool {
    height % DIFFICULTY_ADJUSTMENT_INTERVAL == DIFFICULTY_ADJUSTMENT_INTERVAL - 1
}

/// The networks whose rules are built in.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Network {
    /// Bitcoin mainnet.
    Mainnet,
    /// testnet3 (20-minute minimum-difficulty rule).
    Testnet3,
    /// testnet4 (BIP94).
    Testnet4,
    /// The default signet.
    Signet,
    /// regtest (no retargeting).
    Regtest,
}

impl Network {
    /// Every network, in a fixed order.
    pub const ALL: [Network; 5] = [
        Network::Mainnet,
        Network::Testnet3,
        Network::Testnet4,
        Network::Signet,
        Network::Regtest,
    ];

    /// The consensus parameters of this network.
    pub const fn params(self) -> &'static Params {
        match self {
            Network::Mainnet => &MAINNET,
            Network::Testnet3 => &TESTNET3,
            Network::Testnet4 => &TESTNET4,
            Network::Signet => &SIGNET,
            Network::Regtest => &REGTEST,
        }
    }

    /// Canonical lowercase name.
    pub const fn name(self) -> &'static str {
        match self {
            Network::Mainnet => "mainnet",
            Network::Testnet3 => "testnet",
            Network::Testnet4 => "testnet4",
            Network::Signet => "signet",
            Network::Regtest => "regtest",
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A network name that is not known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownNetwork;

impl fmt::Display for UnknownNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown network (expected mainnet, testnet, testnet4, signet or regtest)")
    }
}

impl FromStr for Network {
    type Err = UnknownNetwork;
    fn from_str(s: &str) -> Result<Self, UnknownNetwork> {
        Ok(match s {
            "mainnet" | "bitcoin" | "main" => Network::Mainnet,
            "testnet" | "testnet3" | "test" => Network::Testnet3,
            "testnet4" => Network::Testnet4,
            "signet" => Network::Signet,
            "regtest" => Network::Regtest,
            _ => return Err(UnknownNetwork),
        })
    }
}

/// Consensus parameters that header verification needs.
#[derive(Debug)]
pub struct Params {
    /// Which network these are.
    pub network: Network,
    /// Hash of block 0.
    pub genesis_hash: BlockHash,
    /// Easiest allowed target.
    pub pow_limit: Target,
    /// `pow_limit` in compact form (what a minimum-difficulty header carries).
    pub pow_limit_bits: CompactTarget,
    /// Intended duration of a difficulty period, seconds.
    pub pow_target_timespan: u32,
    /// Intended block interval, seconds.
    pub pow_target_spacing: u32,
    /// testnet rule: a block more than two spacings after its parent may use `pow_limit`.
    pub allow_min_difficulty_blocks: bool,
    /// regtest rule: difficulty never changes.
    pub no_retargeting: bool,
    /// BIP94 (testnet4): retarget from the period's first block and the timewarp rule.
    pub enforce_bip94: bool,
    /// Height from which block version must be >= 2 (BIP34).
    pub bip34_height: u32,
    /// Height from which block version must be >= 3 (BIP66).
    pub bip66_height: u32,
    /// Height from which block version must be >= 4 (BIP65).
    pub bip65_height: u32,
    /// Compiled-in checkpoints: entry `i` is the block at height
    /// `2016 * (first_checkpoint_period + i) + 2015`.
    pub checkpoints: &'static [Checkpoint],
    /// The period of `checkpoints[0]`: 0 for the built-in tables; later for a device that
    /// carries only some checkpoints ([`Params::checkpoints_from`]).
    pub first_checkpoint_period: u32,
}

impl Params {
    /// The checkpoint at the end of period `period`, if compiled in.
    pub fn checkpoint(&self, period: u32) -> Option<&Checkpoint> {
        let i = period.checked_sub(self.first_checkpoint_period)?;
        self.checkpoints.get(usize::try_from(i).ok()?)
    }

    /// Highest height covered by a checkpoint (the last block of the last checkpointed period).
    pub fn last_checkpoint_height(&self) -> Option<u32> {
        let n = u32::try_from(self.checkpoints.len()).ok()?;
        let last = n
            .checked_sub(1)?
            .checked_add(self.first_checkpoint_period)?;
        last.checked_mul(DIFFICULTY_ADJUSTMENT_INTERVAL)?
            .checked_add(DIFFICULTY_ADJUSTMENT_INTERVAL - 1)
    }

    /// The `N` checkpoints from the end of period `first_period` on, to be kept in a `static`
    /// of the caller's and given to [`Params::with_checkpoints`]; `None` if they are not all
    /// here. For a device short of flash (the mainnet table is 17 KB): it anchors its header
    /// sync at one of them and links only the table it names.
    ///
    /// ```
    /// use electrum_spv_core::chain::{Checkpoint, MAINNET, Params};
    /// const FIRST: u32 = MAINNET.checkpoint_periods_end() - 4;
    /// static RECENT: [Checkpoint; 4] = match MAINNET.checkpoints_from::<4>(FIRST) {
    ///     Some(table) => table,
    ///     None => panic!("not compiled in"),
    /// };
    /// static DEVICE: Params = MAINNET.with_checkpoints(FIRST, &RECENT);
    /// assert_eq!(DEVICE.last_checkpoint_height(), MAINNET.last_checkpoint_height());
    /// assert_eq!(DEVICE.checkpoint(FIRST), MAINNET.checkpoint(FIRST));
    /// assert!(DEVICE.checkpoint(FIRST - 1).is_none());
    /// ```
    pub const fn checkpoints_from<const N: usize>(
        &self,
        first_period: u32,
    ) -> Option<[Checkpoint; N]> {
        let Some(skip) = first_period.checked_sub(self.first_checkpoint_period) else {
            return None;
        };
        let skip = skip as usize;
        if skip > self.checkpoints.len() || N > self.checkpoints.len() - skip {
            return None;
        }
        let (_, tail) = self.checkpoints.split_at(skip);
        let mut out = [Checkpoint::from_parts(self.genesis_hash, None); N];
        let mut i = 0;
        while i < N {
            out[i] = tail[i];
            i += 1;
        }
        Some(out)
    }

    /// The period after the last checkpoint: `first_checkpoint_period` plus their count.
    pub const fn checkpoint_periods_end(&self) -> u32 {
        self.first_checkpoint_period
            .saturating_add(self.checkpoints.len() as u32)
    }

    /// These parameters with `checkpoints` instead, the first of them at the end of period
    /// `first_period`.
    pub const fn with_checkpoints(
        &self,
        first_period: u32,
        checkpoints: &'static [Checkpoint],
    ) -> Params {
        Params {
            checkpoints,
            first_checkpoint_period: first_period,
            ..*self
        }
    }
}

const LIMIT_1D00FFFF: Target = Target(U256::from_limbs([
    u64::MAX,
    u64::MAX,
    u64::MAX,
    0x0000_0000_ffff_ffff,
]));

/// Bitcoin mainnet.
pub static MAINNET: Params = Params {
    network: Network::Mainnet,
    genesis_hash: BlockHash::from_display_hex_const(
        "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
    ),
    pow_limit: LIMIT_1D00FFFF,
    pow_limit_bits: CompactTarget(0x1d00ffff),
    pow_target_timespan: 14 * 24 * 60 * 60,
    pow_target_spacing: 600,
    allow_min_difficulty_blocks: false,
    no_retargeting: false,
    enforce_bip94: false,
    bip34_height: 227_931,
    bip66_height: 363_725,
    bip65_height: 388_381,
    checkpoints: &checkpoints::MAINNET,
    first_checkpoint_period: 0,
};

/// testnet3.
pub static TESTNET3: Params = Params {
    network: Network::Testnet3,
    genesis_hash: BlockHash::from_display_hex_const(
        "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943",
    ),
    pow_limit: LIMIT_1D00FFFF,
    pow_limit_bits: CompactTarget(0x1d00ffff),
    pow_target_timespan: 14 * 24 * 60 * 60,
    pow_target_spacing: 600,
    allow_min_difficulty_blocks: true,
    no_retargeting: false,
    enforce_bip94: false,
    bip34_height: 21_111,
    bip66_height: 330_776,
    bip65_height: 581_885,
    checkpoints: &checkpoints::TESTNET3,
    first_checkpoint_period: 0,
};

/// testnet4.
pub static TESTNET4: Params = Params {
    network: Network::Testnet4,
    genesis_hash: BlockHash::from_display_hex_const(
        "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043",
    ),
    pow_limit: LIMIT_1D00FFFF,
    pow_limit_bits: CompactTarget(0x1d00ffff),
    pow_target_timespan: 14 * 24 * 60 * 60,
    pow_target_spacing: 600,
    allow_min_difficulty_blocks: true,
    no_retargeting: false,
    enforce_bip94: true,
    bip34_height: 1,
    bip66_height: 1,
    bip65_height: 1,
    checkpoints: &checkpoints::TESTNET4,
    first_checkpoint_period: 0,
};

/// The default signet.
pub static SIGNET: Params = Params {
    network: Network::Signet,
    genesis_hash: BlockHash::from_display_hex_const(
        "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6",
    ),
    pow_limit: Target(U256::from_limbs([0, 0, 0, 0x0000_0377_ae00_0000])),
    pow_limit_bits: CompactTarget(0x1e0377ae),
    pow_target_timespan: 14 * 24 * 60 * 60,
    pow_target_spacing: 600,
    allow_min_difficulty_blocks: false,
    no_retargeting: false,
    enforce_bip94: false,
    bip34_height: 1,
    bip66_height: 1,
    bip65_height: 1,
    checkpoints: &checkpoints::SIGNET,
    first_checkpoint_period: 0,
};

/// regtest.
pub static REGTEST: Params = Params {
    network: Network::Regtest,
    genesis_hash: BlockHash::from_display_hex_const(
        "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
    ),
    pow_limit: Target(U256::from_limbs([0, 0, 0, 0x7fff_ff00_0000_0000])),
    pow_limit_bits: CompactTarget(0x207fffff),
    pow_target_timespan: 14 * 24 * 60 * 60,
    pow_target_spacing: 600,
    allow_min_difficulty_blocks: true,
    no_retargeting: true,
    enforce_bip94: false,
    bip34_height: 1,
    bip66_height: 1,
    bip65_height: 1,
    checkpoints: &[],
    first_checkpoint_period: 0,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pow_limit_bits_encode_pow_limit() {
        for n in Network::ALL {
            let p = n.params();
            assert_eq!(p.pow_limit.to_compact(), p.pow_limit_bits, "{n}");
            // Mainnet's limit is not a compact value; its compact form rounds it down.
            assert!(p.pow_limit_bits.to_target().unwrap() <= p.pow_limit, "{n}");
            assert_eq!(n.name().parse::<Network>(), Ok(n));
        }
        assert_eq!("nonsense".parse::<Network>(), Err(UnknownNetwork));
    }
}
