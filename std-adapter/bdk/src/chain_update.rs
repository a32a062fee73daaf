//! The chain update: [`CheckPoint`]s from the verified header chain, from the highest block
//! of the wallet's tip that the verified chain holds too.

use std::collections::BTreeSet;

use bdk_core::{BlockId, CheckPoint};
use electrum_spv::Pool;

use crate::error::Error;

/// The newest blocks always included in an update, as `bdk_electrum` does (so a reorg of up to
/// this depth replaces the wallet's blocks even where no transaction is anchored).
pub(crate) const CHAIN_SUFFIX: u32 = 8;

/// The wallet's `tip` brought to the pool's verified tip: the point of agreement, then the
/// last [`CHAIN_SUFFIX`] verified blocks and the block of every anchor height. A wallet tip
/// above the verified tip (every server lagging) is returned unchanged.
pub(crate) async fn chain_update(
    pool: &mut Pool,
    tip: CheckPoint,
    anchor_heights: &BTreeSet<u32>,
) -> Result<CheckPoint, Error> {
    pool.refresh().await?;
    let (verified_tip, _) = pool.best_tip().ok_or(electrum_spv::Error::Disconnected)?;
    if tip.height() > verified_tip {
        return Ok(tip);
    }
    let mut agreement = None;
    for cp in tip.iter() {
        let header = pool.header_at(cp.height()).await?;
        if bitcoin::BlockHash::from(header.block_hash()) == cp.hash() {
            agreement = Some(cp);
            break;
        }
    }
    let agreement = agreement.ok_or(Error::NoAgreement {
        wallet_tip: tip.height(),
        verified_tip,
    })?;
    let suffix_start = verified_tip.saturating_sub(CHAIN_SUFFIX - 1);
    let heights: BTreeSet<u32> = (suffix_start..=verified_tip)
        .chain(anchor_heights.iter().copied())
        .filter(|&h| h > agreement.height() && h <= verified_tip)
        .collect();
    let mut blocks = Vec::with_capacity(heights.len());
    for height in heights {
        let hash = pool.header_at(height).await?.block_hash().into();
        blocks.push(BlockId { height, hash });
    }
    // Heights are strictly increasing and above the agreement: `extend` cannot refuse them.
    let mut update = agreement.extend(blocks).unwrap_or_else(|cp| cp);
    // BDK counts a transaction as confirmed only if its anchor block is in the wallet's chain:
    // anchors at or below the agreement get their block too (the chains agree there, so this
    // never replaces one; the genesis block is never an anchor).
    for &height in anchor_heights.range(1..=update.height()) {
        if update.get(height).is_none() {
            let hash = pool.header_at(height).await?.block_hash().into();
            update = update.insert(BlockId { height, hash });
        }
    }
    Ok(update)
}
