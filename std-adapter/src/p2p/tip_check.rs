//! The tip cross-check: the Electrum side's verified chain against what P2P nodes show,
//! verified by the same [`HeaderVerifier`] rules from the same anchor.
//!
//! An Electrum server that hides new blocks, or one that shows blocks no node has, is
//! noticed here: a wallet then has a second, independent view of the chain tip.
//! [`compare`] is the decision, [`PeerPool::cross_check`] gathers the P2P side (every ready
//! node synced from the Electrum chain's anchor; the one with the most work counts) and, when
//! the Electrum tip is above it, waits a grace period for the nodes to catch up before calling
//! it suspect.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use electrum_spv_core::chain::{ChainTip, HeaderVerifier};
use electrum_spv_core::hash::BlockHash;
use electrum_spv_core::header::Work;
use electrum_spv_core::p2p::P2pHeaders;

use super::pool::PeerPool;
use crate::error::Error;
use crate::header_chain::HeaderChain;

/// How often the P2P side is asked again while the Electrum tip is ahead.
const RECHECK: Duration = Duration::from_secs(2);

/// The chain one node showed: the hash at each height it sent, and its tip's work.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct P2pChain {
    /// Hashes by height, from the anchor up.
    pub hashes: BTreeMap<u32, BlockHash>,
    /// Work of its tip (as [`ChainTip::chainwork`]).
    pub work: Work,
}

impl P2pChain {
    /// Height and hash of its tip.
    pub fn tip(&self) -> Option<(u32, BlockHash)> {
        self.hashes.iter().next_back().map(|(h, b)| (*h, *b))
    }

    fn record(&mut self, tip: &ChainTip) {
        // A sync that restarted from the anchor (the node is on another branch) replaces
        // what it showed above this height.
        self.hashes.split_off(&tip.height);
        self.hashes.insert(tip.height, tip.hash);
        self.work = tip.chainwork;
    }
}

/// How the Electrum tip compares with the P2P tip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TipCheck {
    /// The same block.
    Equal {
        /// Its height.
        height: u32,
    },
    /// The Electrum tip is on the P2P chain, `blocks` below its tip.
    ElectrumBehind {
        /// How far behind.
        blocks: u32,
    },
    /// The P2P tip is on the Electrum chain, `blocks` below its tip. `suspect`: no node showed
    /// the Electrum tip within the grace period.
    ElectrumAhead {
        /// How far ahead.
        blocks: u32,
        /// No node confirmed it in time.
        suspect: bool,
    },
    /// Neither tip is on the other chain: different branches.
    Diverged {
        /// The Electrum tip.
        electrum: (u32, BlockHash),
        /// The P2P tip.
        p2p: (u32, BlockHash),
    },
    /// One side has no verified header yet.
    Unknown,
}

/// Compares the Electrum chain with the chain a node showed (`suspect` is set on
/// [`TipCheck::ElectrumAhead`] as given).
pub fn compare(electrum: &HeaderChain, p2p: &P2pChain, suspect: bool) -> TipCheck {
    let (Some(e), Some(p)) = (electrum.tip(), p2p.tip()) else {
        return TipCheck::Unknown;
    };
    if p.0 >= e.0 {
        return match p2p.hashes.get(&e.0) {
            Some(hash) if *hash == e.1 && p.0 == e.0 => TipCheck::Equal { height: e.0 },
            Some(hash) if *hash == e.1 => TipCheck::ElectrumBehind { blocks: p.0 - e.0 },
            _ => TipCheck::Diverged {
                electrum: e,
                p2p: p,
            },
        };
    }
    match electrum.header(p.0) {
        Some(h) if h.block_hash() == p.1 => TipCheck::ElectrumAhead {
            blocks: e.0 - p.0,
            suspect,
        },
        _ => TipCheck::Diverged {
            electrum: e,
            p2p: p,
        },
    }
}

impl PeerPool {
    /// Syncs headers from every ready node, from `electrum`'s anchor with its network's rules,
    /// and compares the Electrum tip with the chain of the most work. If the Electrum tip is
    /// ahead, the nodes are asked again for up to `grace`; still ahead then, it is suspect.
    /// `timeout` bounds each answer.
    ///
    /// # Errors
    /// [`Error::NoPeerReady`] when no node is ready; [`Error::P2pHeaders`] if a node's headers
    /// break a rule (that node's fault, named).
    pub async fn cross_check(
        &self,
        electrum: &HeaderChain,
        grace: Duration,
        timeout: Duration,
    ) -> Result<TipCheck, Error> {
        let start = Instant::now();
        loop {
            let best = self.best_p2p_chain(electrum, timeout).await?;
            let check = compare(electrum, &best, false);
            match check {
                TipCheck::ElectrumAhead { blocks, .. } => {
                    if start.elapsed() >= grace {
                        return Ok(TipCheck::ElectrumAhead {
                            blocks,
                            suspect: true,
                        });
                    }
                    tokio::time::sleep(RECHECK.min(grace.saturating_sub(start.elapsed()))).await;
                }
                other => return Ok(other),
            }
        }
    }

    /// The chain of the most work among the ready nodes, each synced from the anchor.
    async fn best_p2p_chain(
        &self,
        electrum: &HeaderChain,
        timeout: Duration,
    ) -> Result<P2pChain, Error> {
        let nodes: Vec<_> = self.peers().into_iter().map(|p| p.node).collect();
        if nodes.is_empty() {
            return Err(Error::NoPeerReady(Vec::new()));
        }
        let mut best = P2pChain::default();
        for node in nodes {
            let verifier = HeaderVerifier::new(electrum.params(), electrum.anchor());
            let mut sync = P2pHeaders::new(verifier);
            let mut chain = P2pChain::default();
            let synced = self
                .sync_headers_with(&node, &mut sync, timeout, |tip| chain.record(tip))
                .await;
            match synced {
                Ok(()) => {}
                // A node that went away, stopped answering, or sent a header that breaks a
                // rule (its fault, not the Electrum side's): the others decide.
                Err(Error::Timeout | Error::Disconnected | Error::P2pHeaders { .. }) => continue,
                Err(e) => return Err(e),
            }
            if chain.work > best.work {
                best = chain;
            }
        }
        Ok(best)
    }
}
