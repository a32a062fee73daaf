//! The chain update: [`CheckPoint`]s from the verified header chain, from the highest block
//! of the wallet's tip that the verified chain holds too.

use std::collections::{BTreeMap, BTreeSet};

use bdk_core::{BlockId, CheckPoint};
use electrum_spv::Pool;

use crate::error::Error;

/// The newest blocks always included in an update, as `bdk_electrum` does (so a reorg of up to
/// this depth replaces the wallet's blocks even where no transaction is anchored).
pub(crate) const CHAIN_SUFFIX: u32 = 8;

/// The wallet's `tip` brought to the pool's verified tip: the point of agreement, then the
/// last [`CHAIN_SUFFIX`] verified blocks and the block of every anchor. A wallet tip above the
/// verified tip (every server lagging) is returned unchanged.
///
/// `anchors` are the verified blocks transactions were proven into, by height; those at or
/// below the chain's checkpointed anchor are final and used as they are (asking the chain
/// would fetch and verify their whole 2016-header period again), the others are read from
/// the chain as it is now.
pub(crate) async fn chain_update(
    pool: &mut Pool,
    tip: CheckPoint,
    anchors: &BTreeMap<u32, bitcoin::BlockHash>,
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
        .chain(anchors.keys().copied())
        .filter(|&h| h > agreement.height() && h <= verified_tip)
        .collect();
    let mut blocks = Vec::with_capacity(heights.len());
    for height in heights {
        let hash = block_at(pool, height, anchors).await?;
        blocks.push(BlockId { height, hash });
    }
    // Heights are strictly increasing and above the agreement: `extend` cannot refuse them.
    let mut update = agreement.extend(blocks).unwrap_or_else(|cp| cp);
    // BDK counts a transaction as confirmed only if its anchor block is in the wallet's chain:
    // anchors at or below the agreement get their block too (the chains agree there, so this
    // never replaces one; the genesis block is never an anchor).
    for (&height, _) in anchors.range(1..=update.height()) {
        if update.get(height).is_none() {
            let hash = block_at(pool, height, anchors).await?;
            update = update.insert(BlockId { height, hash });
        }
    }
    Ok(update)
}

/// The verified block at `height`: an anchor's own block when it is final (at or below the
/// checkpointed anchor of the best chain), else the chain's header there now.
async fn block_at(
    pool: &mut Pool,
    height: u32,
    anchors: &BTreeMap<u32, bitcoin::BlockHash>,
) -> Result<bitcoin::BlockHash, Error> {
    let finality = pool.best_chain().map_or(0, |c| c.anchor_height());
    if height <= finality
        && let Some(hash) = anchors.get(&height)
    {
        return Ok(*hash);
    }
    Ok(pool.header_at(height).await?.block_hash().into())
}
