//! A header chain verified by core's [`HeaderVerifier`]: from an anchor (genesis, or the
//! latest checkpoint) to the server's tip, plus the 2016-header periods below the anchor that
//! a wallet's old transactions need, each verified from checkpoint `k - 1` to checkpoint `k`
//! as Electrum does.
//!
//! A resync after a reorg runs in a copy and replaces the chain only with strictly more work;
//! the header file grows only with headers the chain keeps.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::Path;

use electrum_spv_core::chain::{
    Anchor, Branch, DIFFICULTY_ADJUSTMENT_INTERVAL, HeaderVerifier, Network, Params, choose_branch,
};
use electrum_spv_core::hash::BlockHash;
use electrum_spv_core::header::{Header, Work};
use electrum_spv_core::sync::headers::{Pacing, request_cost_milli};

use crate::client::Client;
use crate::error::Error;
use crate::fault::Fault;
use crate::header_store::{HeaderStore, Stored};
use crate::pacing::{Bucket, PROOF_PACING};

/// Header chunks requested at once while syncing.
pub const SYNC_WINDOW: usize = 8;
/// Headers per request (the protocol's maximum) and per period.
const CHUNK: u32 = DIFFICULTY_ADJUSTMENT_INTERVAL;
/// Most periods below the anchor held in memory (161 KiB each): a wallet whose transactions
/// span more old periods fetches the oldest again when needed.
pub const MAX_OLD_PERIODS: usize = 512;

/// Headers verified from an anchor to a tip, held in memory (80 bytes each), and verified
/// periods below the anchor.
#[derive(Debug)]
pub struct HeaderChain {
    params: &'static Params,
    anchor: Anchor,
    verifier: HeaderVerifier,
    headers: Vec<[u8; 80]>,
    /// Verified periods below the anchor, by period number (`height / 2016`).
    periods: BTreeMap<u32, Box<[[u8; 80]]>>,
    bucket: Bucket,
    /// Pacing of merkle proofs and transactions asked of the same server.
    proofs: Bucket,
    store: Option<HeaderStore>,
}

/// A clone is held in memory only: it does not write to the original's header file.
impl Clone for HeaderChain {
    fn clone(&self) -> Self {
        HeaderChain {
            params: self.params,
            anchor: self.anchor,
            verifier: self.verifier.clone(),
            headers: self.headers.clone(),
            periods: self.periods.clone(),
            bucket: self.bucket,
            proofs: self.proofs,
            store: None,
        }
    }
}

/// The anchor after the last checkpoint of `params` (genesis where there is none, as on
/// regtest): where every header sync of the adapter starts, Electrum or P2P.
pub fn latest_anchor(params: &'static Params) -> Anchor {
    let height = params.checkpoint_periods_end().saturating_mul(CHUNK);
    Anchor::at_height(params, height).unwrap_or_else(|_| Anchor::genesis(params))
}

impl HeaderChain {
    /// A chain anchored at genesis.
    pub fn from_genesis(network: Network) -> HeaderChain {
        let params = network.params();
        HeaderChain::with_anchor(params, Anchor::genesis(params))
    }

    /// A chain anchored after the network's latest compiled-in checkpoint (genesis where there
    /// is none, as on regtest).
    pub fn from_latest_checkpoint(network: Network) -> HeaderChain {
        HeaderChain::after_checkpoints(network.params())
    }

    /// A chain anchored after the last checkpoint of `params` (from
    /// [`crate::checkpoints::network_params`], which may read a checkpoint file).
    pub fn after_checkpoints(params: &'static Params) -> HeaderChain {
        HeaderChain::with_anchor(params, latest_anchor(params))
    }

    fn with_anchor(params: &'static Params, anchor: Anchor) -> HeaderChain {
        HeaderChain {
            params,
            anchor,
            verifier: HeaderVerifier::new(params, anchor),
            headers: Vec::new(),
            periods: BTreeMap::new(),
            bucket: Bucket::new(Pacing::ELECTRUMX_DEFAULT),
            proofs: Bucket::new(PROOF_PACING),
            store: None,
        }
    }

    /// A chain kept in the header file at `path` (see [`crate::header_store`]), anchored
    /// after the network's latest checkpoint: the headers found there are verified again (on
    /// the most-work branch if the file holds forks; old periods against their checkpoints),
    /// and headers synced later are appended.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Store`] for a corrupt file.
    pub fn open(network: Network, path: &Path) -> Result<HeaderChain, Error> {
        HeaderChain::open_with(network.params(), path)
    }

    /// As [`HeaderChain::open`], with the checkpoints of `params`.
    ///
    /// # Errors
    /// As [`HeaderChain::open`].
    pub fn open_with(params: &'static Params, path: &Path) -> Result<HeaderChain, Error> {
        let (store, loaded) = HeaderStore::open(path)?;
        let mut chain = HeaderChain::after_checkpoints(params);
        let best = best_branch(&chain, &loaded.records);
        chain.extend(&best)?;
        chain.periods = stored_periods(&chain, &loaded.records);
        chain.store = Some(store);
        Ok(chain)
    }

    /// A copy (held in memory only) of the chain up to `height`: the headers above it left
    /// out, verified again from the anchor; old periods kept. Below the anchor: no headers.
    ///
    /// # Errors
    /// [`Error::Verification`] only if the chain's own headers no longer verify (they do).
    pub fn truncated(&self, height: u32) -> Result<HeaderChain, Error> {
        let mut copy = HeaderChain::with_anchor(self.params, self.anchor);
        copy.bucket = self.bucket;
        copy.proofs = self.proofs;
        copy.periods = self.periods.clone();
        let keep = height.checked_sub(self.anchor.height).map_or(0, |n| {
            (n as usize).saturating_add(1).min(self.headers.len())
        });
        copy.extend(&self.headers[..keep])?;
        Ok(copy)
    }

    /// Keeps the chain in the header file at `path` from now on (see
    /// [`crate::header_store`]): the file is replaced by the chain's headers (atomically:
    /// written aside, then renamed) and headers synced later are appended.
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::Store`] for a corrupt file.
    pub fn keep_in(&mut self, path: &Path) -> Result<(), Error> {
        self.store = None;
        let (mut store, _) = HeaderStore::open(path)?;
        store.rewrite(&self.records())?;
        self.store = Some(store);
        Ok(())
    }

    /// Paces header requests with `pacing` instead of a default ElectrumX's limits
    /// ([`Pacing::UNLIMITED`] for one's own server).
    pub fn with_pacing(mut self, pacing: Pacing) -> HeaderChain {
        self.bucket = Bucket::new(pacing);
        self
    }

    /// Paces merkle proofs and transactions with `pacing` instead of
    /// [`PROOF_PACING`].
    pub fn with_proof_pacing(mut self, pacing: Pacing) -> HeaderChain {
        self.proofs = Bucket::new(pacing);
        self
    }

    /// The pacing of proofs and transactions asked of this chain's server.
    pub(crate) fn proof_bucket(&mut self) -> &mut Bucket {
        &mut self.proofs
    }

    /// Cumulative work of the verified chain (absolute where the anchor's work below is known).
    pub fn chainwork(&self) -> Work {
        self.verifier.tip().map_or(Work::ZERO, |t| t.chainwork)
    }

    /// The network parameters the chain is verified with.
    pub fn params(&self) -> &'static Params {
        self.params
    }

    /// Where the synced chain starts.
    pub fn anchor(&self) -> Anchor {
        self.anchor
    }

    /// Height of the first header of the synced chain.
    pub fn anchor_height(&self) -> u32 {
        self.anchor.height
    }

    /// Height and hash of the verified tip, if any header is held.
    pub fn tip(&self) -> Option<(u32, BlockHash)> {
        self.verifier.tip().map(|t| (t.height, t.hash))
    }

    /// The verified header at `height`, if held (synced, or in a verified old period).
    pub fn header(&self, height: u32) -> Option<Header> {
        let raw = match height.checked_sub(self.anchor.height) {
            Some(i) => self.headers.get(usize::try_from(i).ok()?),
            None => self
                .periods
                .get(&(height / CHUNK))
                .and_then(|p| p.get(usize::try_from(height % CHUNK).ok()?)),
        };
        raw.map(Header::from_bytes)
    }

    /// Periods below the anchor verified and held.
    pub fn old_periods(&self) -> impl Iterator<Item = u32> + '_ {
        self.periods.keys().copied()
    }

    /// The synced chain as store records.
    fn records(&self) -> Vec<Stored> {
        let old = self
            .periods
            .iter()
            .flat_map(|(k, p)| (k * CHUNK..).zip(p.iter().copied()));
        old.chain((self.anchor.height..).zip(self.headers.iter().copied()))
            .collect()
    }

    /// Verifies `headers` as the next ones (and appends them to the chain's header file, if it
    /// has one).
    ///
    /// # Errors
    /// [`Error::Verification`] naming the height and the rule broken; the chain keeps what it
    /// verified before it. [`Error::Io`] if the header file cannot be written.
    pub fn extend(&mut self, headers: &[[u8; 80]]) -> Result<(), Error> {
        let first = self.verifier.next_height();
        let before = self.headers.len();
        let mut verdict = Ok(());
        for h in headers {
            if let Err(e) = self.verifier.push(h) {
                verdict = Err(Fault::Header(e).into());
                break;
            }
            self.headers.push(*h);
        }
        // What was verified is kept on disk too, also when a later header failed.
        if let Some(store) = &mut self.store {
            let records: Vec<Stored> = (first..)
                .zip(self.headers.get(before..).unwrap_or(&[]).iter().copied())
                .collect();
            store.append(&records)?;
        }
        verdict
    }

    /// The verified header at `height`: held, or from the server (the period holding it when
    /// below the anchor, a sync when above the tip).
    ///
    /// # Errors
    /// Transport and server errors; [`Error::Verification`] when the server's headers break a
    /// rule; [`Error::Lagging`] when the height is above the server's verified tip.
    pub async fn header_at(&mut self, client: &Client, height: u32) -> Result<Header, Error> {
        if let Some(h) = self.header(height) {
            return Ok(h);
        }
        if height < self.anchor.height {
            self.fetch_periods(client, &BTreeSet::from([height / CHUNK]))
                .await?;
        } else {
            self.sync(client, |_, _| {}).await?;
        }
        self.header(height).ok_or(Error::Lagging {
            height,
            tip: self.tip().map(|(h, _)| h),
        })
    }

    /// Makes every height of `heights` available: the old periods holding those below the
    /// anchor are fetched and verified (several at once), and the chain is synced if one is
    /// above the tip. Heights above the server's tip are left out (the caller reports them).
    ///
    /// # Errors
    /// As [`HeaderChain::header_at`].
    pub async fn ensure(&mut self, client: &Client, heights: &[u32]) -> Result<(), Error> {
        let old: BTreeSet<u32> = heights
            .iter()
            .filter(|&&h| h < self.anchor.height && self.header(h).is_none())
            .map(|h| h / CHUNK)
            .collect();
        self.fetch_periods(client, &old).await?;
        let highest = heights.iter().copied().max();
        if let Some(h) = highest
            && self.tip().is_none_or(|(tip, _)| tip < h)
        {
            self.sync(client, |_, _| {}).await?;
        }
        Ok(())
    }

    /// Fetches the periods `periods` (all below the anchor) and verifies each from checkpoint
    /// `k - 1` to checkpoint `k`; keeps them in memory and in the header file.
    async fn fetch_periods(
        &mut self,
        client: &Client,
        periods: &BTreeSet<u32>,
    ) -> Result<(), Error> {
        let mut wanted = periods.iter().copied().peekable();
        let mut in_flight = VecDeque::new();
        loop {
            while in_flight.len() < SYNC_WINDOW
                && let Some(k) = wanted.next()
            {
                self.bucket.take(request_cost_milli(CHUNK)).await;
                let c = client.clone();
                in_flight.push_back((
                    k,
                    tokio::spawn(async move { c.block_headers(k * CHUNK, CHUNK).await }),
                ));
            }
            let Some((k, fetch)) = in_flight.pop_front() else {
                return Ok(());
            };
            let headers = fetch
                .await
                .map_err(|e| Error::Io(std::io::Error::other(e)))??;
            let period = verify_period(self.params, k, &headers)?;
            if let Some(store) = &mut self.store {
                let records: Vec<Stored> = (k * CHUNK..).zip(period.iter().copied()).collect();
                store.append(&records)?;
            }
            if self.periods.len() >= MAX_OLD_PERIODS {
                self.periods.pop_first();
            }
            self.periods.insert(k, period);
        }
    }

    /// Downloads and verifies headers up to the server's tip; `progress(height, tip)` is
    /// called after each chunk. If the server's chain no longer extends ours (a reorg), its
    /// chain is verified again from the anchor in a copy, which replaces ours only when it has
    /// strictly more work. Returns the new tip height.
    ///
    /// # Errors
    /// Transport and server errors, and [`Error::Verification`] when the server's headers
    /// break a rule or its chain has no more work than ours (the chain is then unchanged).
    pub async fn sync(
        &mut self,
        client: &Client,
        mut progress: impl FnMut(u32, u32),
    ) -> Result<u32, Error> {
        let (tip, _) = client.block_headers_subscribe().await?;
        match self.sync_to(client, tip, &mut progress).await {
            Err(e) if e.is_server_fault() && !self.headers.is_empty() => {
                let mut fresh = HeaderChain::with_anchor(self.params, self.anchor);
                fresh.bucket = self.bucket;
                let synced = fresh.sync_to(client, tip, &mut progress).await;
                self.bucket = fresh.bucket;
                let height = synced?;
                // Core's fork choice: only strictly more work replaces the verified chain.
                if choose_branch(&self.verifier, &fresh.verifier) != Ok(Branch::Candidate) {
                    return Err(Fault::LessWork { tip: height }.into());
                }
                crate::trace::event_info!(
                    tip = height,
                    "reorg: a chain with more work replaces ours"
                );
                self.verifier = fresh.verifier;
                self.headers = fresh.headers;
                let records = self.records();
                if let Some(store) = &mut self.store {
                    store.rewrite(&records)?;
                }
                Ok(height)
            }
            other => other,
        }
    }

    async fn sync_to(
        &mut self,
        client: &Client,
        tip: u32,
        progress: &mut impl FnMut(u32, u32),
    ) -> Result<u32, Error> {
        // `None` once every height up to `tip` was asked for (also when `tip` is u32::MAX).
        let mut next = Some(self.verifier.next_height()).filter(|&n| n <= tip);
        let mut in_flight = VecDeque::new();
        loop {
            while in_flight.len() < SYNC_WINDOW
                && let Some(start) = next
            {
                let count = CHUNK.min((tip - start).saturating_add(1));
                self.bucket.take(request_cost_milli(count)).await;
                let c = client.clone();
                in_flight.push_back((
                    count,
                    tokio::spawn(async move { c.block_headers(start, count).await }),
                ));
                next = start.checked_add(count).filter(|&n| n <= tip);
            }
            let Some((asked, chunk)) = in_flight.pop_front() else {
                break;
            };
            let headers = chunk
                .await
                .map_err(|e| Error::Io(std::io::Error::other(e)))??;
            self.extend(&headers)?;
            if let Some((h, _)) = self.tip() {
                progress(h, tip);
            }
            if headers.is_empty() {
                break;
            }
            // A short chunk: the server sends fewer per request, or its tip moved back. What
            // was asked after it would not link: ask again from where it ended.
            if headers.len() < asked as usize {
                for (_, rest) in in_flight.drain(..) {
                    rest.abort();
                }
                next = Some(self.verifier.next_height()).filter(|&n| n <= tip);
            }
        }
        Ok(self.tip().map_or(0, |(h, _)| h))
    }
}

/// Verifies the 2016 headers of period `k` below the anchor: from checkpoint `k - 1` (or
/// genesis) through every rule, ending on checkpoint `k` (the verifier checks it at the
/// period's last height).
fn verify_period(
    params: &'static Params,
    k: u32,
    headers: &[[u8; 80]],
) -> Result<Box<[[u8; 80]]>, Error> {
    let start = k * CHUNK;
    let anchor = Anchor::at_height(params, start)
        .map_err(|_| Error::InvalidArgument(format!("no checkpoint anchors period {k}")))?;
    if params.checkpoint(k).is_none() {
        return Err(Error::InvalidArgument(format!(
            "period {k} has no checkpoint to end on"
        )));
    }
    let mut verifier = HeaderVerifier::new(params, anchor);
    for h in headers.iter().take(CHUNK as usize) {
        verifier.push(h).map_err(Fault::Header)?;
    }
    if headers.len() < CHUNK as usize {
        return Err(Fault::MissingHeaders {
            height: start + u32::try_from(headers.len()).unwrap_or(CHUNK),
        }
        .into());
    }
    Ok(headers[..CHUNK as usize].into())
}

/// The complete, valid periods below the anchor among stored records.
fn stored_periods(chain: &HeaderChain, records: &[Stored]) -> BTreeMap<u32, Box<[[u8; 80]]>> {
    let mut by_height: BTreeMap<u32, [u8; 80]> = BTreeMap::new();
    for &(height, header) in records {
        if height < chain.anchor.height {
            by_height.insert(height, header);
        }
    }
    let periods: BTreeSet<u32> = by_height.keys().map(|h| h / CHUNK).collect();
    let mut out = BTreeMap::new();
    for k in periods {
        let headers: Vec<[u8; 80]> = by_height
            .range(k * CHUNK..(k + 1) * CHUNK)
            .map(|(_, h)| *h)
            .collect();
        if let Ok(period) = verify_period(chain.params, k, &headers) {
            out.insert(k, period);
        }
    }
    out
}

/// Most tips of a stored fork tree considered on open.
const MAX_STORED_TIPS: usize = 16;

/// The most-work branch from the chain's anchor among stored records (forks included),
/// verified; headers after the first invalid one on a branch are ignored.
fn best_branch(chain: &HeaderChain, records: &[Stored]) -> Vec<[u8; 80]> {
    let mut by_hash: HashMap<BlockHash, Stored> = HashMap::with_capacity(records.len());
    for &(height, header) in records {
        if height >= chain.anchor.height {
            by_hash.insert(Header::from_bytes(&header).block_hash(), (height, header));
        }
    }
    let parents: HashSet<BlockHash> = by_hash
        .values()
        .map(|(_, h)| Header::from_bytes(h).prev_blockhash)
        .collect();
    let mut tips: Vec<&Stored> = by_hash
        .iter()
        .filter(|(hash, _)| !parents.contains(hash))
        .map(|(_, r)| r)
        .collect();
    tips.sort_by_key(|(height, _)| std::cmp::Reverse(*height));
    tips.truncate(MAX_STORED_TIPS);
    let mut best: (Work, Vec<[u8; 80]>) = (Work::ZERO, Vec::new());
    for &(height, header) in tips {
        let mut branch = vec![header];
        let mut at = (height, header);
        while at.0 > chain.anchor.height {
            let prev = Header::from_bytes(&at.1).prev_blockhash;
            match by_hash.get(&prev) {
                Some(&(h, p)) if h + 1 == at.0 => {
                    branch.push(p);
                    at = (h, p);
                }
                _ => break,
            }
        }
        if at.0 != chain.anchor.height {
            continue;
        }
        branch.reverse();
        let mut candidate = HeaderChain::with_anchor(chain.params, chain.anchor);
        for h in &branch {
            if candidate.extend(std::slice::from_ref(h)).is_err() {
                break;
            }
        }
        if candidate.chainwork() > best.0 {
            best = (candidate.chainwork(), candidate.headers);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADERS_0: &[u8] = include_bytes!("../../core/tests/data/mainnet/headers_0_10236.bin");
    const HEADERS_822528: &[u8] =
        include_bytes!("../../core/tests/data/mainnet/headers_822528_830592.bin");

    fn period(data: &[u8], first_height: u32, k: u32) -> Vec<[u8; 80]> {
        let skip = (k * CHUNK - first_height) as usize;
        data.chunks_exact(80)
            .skip(skip)
            .take(CHUNK as usize)
            .map(|c| c.try_into().unwrap())
            .collect()
    }

    #[test]
    fn old_periods_verify_between_their_checkpoints() {
        let params = Network::Mainnet.params();
        for (data, first, k) in [
            (HEADERS_0, 0, 0),
            (HEADERS_0, 0, 4),
            (HEADERS_822528, 822528, 411),
        ] {
            let headers = period(data, first, k);
            let p = verify_period(params, k, &headers).unwrap();
            assert_eq!(
                Header::from_bytes(&p[2015]).block_hash(),
                params.checkpoint(k).unwrap().hash
            );
        }
    }

    #[test]
    fn a_forged_or_short_old_period_is_a_fault() {
        let params = Network::Mainnet.params();
        let mut headers = period(HEADERS_822528, 822528, 411);
        headers[500][76] ^= 1; // nonce
        assert!(matches!(
            verify_period(params, 411, &headers),
            Err(Error::Verification(Fault::Header(e))) if e.height == 411 * 2016 + 500
        ));
        let headers = period(HEADERS_0, 0, 1);
        assert!(matches!(
            verify_period(params, 1, &headers[..2000]),
            Err(Error::Verification(Fault::MissingHeaders { height: 4016 }))
        ));
        // Period 2's headers offered as period 1: they do not link to checkpoint 0.
        let wrong = period(HEADERS_0, 0, 2);
        assert!(
            verify_period(params, 1, &wrong)
                .unwrap_err()
                .is_server_fault()
        );
    }

    #[test]
    fn stored_periods_are_verified_again_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h");
        let good: Vec<Stored> = (0..).zip(period(HEADERS_0, 0, 0)).collect();
        let mut bad: Vec<Stored> = (2016..).zip(period(HEADERS_0, 0, 1)).collect();
        bad[7].1[76] ^= 1;
        {
            let (mut store, _) = HeaderStore::open(&path).unwrap();
            store.append(&good).unwrap();
            store.append(&bad).unwrap();
        }
        let chain = HeaderChain::open(Network::Mainnet, &path).unwrap();
        assert_eq!(chain.old_periods().collect::<Vec<_>>(), vec![0]);
        assert_eq!(
            chain.header(170).unwrap().block_hash().to_string(),
            "00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee"
        );
        assert!(chain.header(2016 + 7).is_none());
    }
}
