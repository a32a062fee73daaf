//! Verified data: a header chain checked by the core verifier, and script histories whose every
//! confirmed transaction is proven into a verified header.
//!
//! * [`HeaderChain`] syncs headers from an anchor (genesis, or the network's latest compiled-in
//!   checkpoint) to the server's tip, every header checked (links, proof of work, retargets,
//!   median time, checkpoints), chunks of 2016 requested several at a time.
//! * [`verified_history`] recomputes the script's status from the history and compares it with
//!   the server's, checks the canonical mempool order (1.6+), and proves every confirmed
//!   transaction with its merkle branch against the verified header at its height. What cannot
//!   be proven is an error, never reported as confirmed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;

use electrum_spv_core::chain::{Anchor, HeaderVerifier, Network, Params};
use electrum_spv_core::hash::{BlockHash, ScriptHash, Status, Txid};
use electrum_spv_core::header::Header;
use electrum_spv_core::header::Work;
use electrum_spv_core::merkle::verify_tx_branch;
use electrum_spv_core::rpc::ProtocolVersion;
use electrum_spv_core::script::{CanonicalOrder, StatusHasher, TxHeight};
use electrum_spv_core::session::response::HistoryItem;
use electrum_spv_core::sync::headers::{Pacing, request_cost_milli};

use crate::client::Client;
use crate::error::Error;
use crate::header_store::{HeaderStore, Stored};

/// Header chunks requested at once while syncing.
pub const SYNC_WINDOW: usize = 8;
/// Headers per request (the protocol's maximum).
const CHUNK: u32 = 2016;

/// Headers verified from an anchor to a tip, held in memory (80 bytes each).
#[derive(Debug)]
pub struct HeaderChain {
    params: &'static Params,
    anchor: Anchor,
    verifier: HeaderVerifier,
    headers: Vec<[u8; 80]>,
    bucket: Bucket,
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
            bucket: self.bucket,
            store: None,
        }
    }
}

/// Request pacing by ElectrumX's cost model (the core's [`Pacing`]): a default-configured
/// ElectrumX allows a burst of 8 full chunks, then about one per 107 s.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    pacing: Pacing,
    tokens: u64,
    at: tokio::time::Instant,
}

impl Bucket {
    fn new(pacing: Pacing) -> Bucket {
        Bucket {
            pacing,
            tokens: pacing.burst_milli,
            at: tokio::time::Instant::now(),
        }
    }

    /// Waits until `cost` is available, then spends it (a cost above the burst waits for a
    /// full bucket).
    async fn take(&mut self, cost: u64) {
        loop {
            let now = tokio::time::Instant::now();
            let elapsed = now.duration_since(self.at).as_millis();
            let add = u64::try_from(
                elapsed.saturating_mul(u128::from(self.pacing.refill_milli_per_s)) / 1000,
            )
            .unwrap_or(u64::MAX);
            self.tokens = self.tokens.saturating_add(add).min(self.pacing.burst_milli);
            self.at = now;
            let need = cost.min(self.pacing.burst_milli);
            if self.tokens >= need {
                self.tokens -= need;
                return;
            }
            let missing = need - self.tokens;
            let rate = self.pacing.refill_milli_per_s.max(1);
            tokio::time::sleep(std::time::Duration::from_millis(
                missing.saturating_mul(1000) / rate + 1,
            ))
            .await;
        }
    }
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
        let params = network.params();
        let height = u32::try_from(params.checkpoints.len())
            .unwrap_or(0)
            .saturating_mul(CHUNK);
        let anchor = Anchor::at_height(params, height).unwrap_or_else(|_| Anchor::genesis(params));
        HeaderChain::with_anchor(params, anchor)
    }

    fn with_anchor(params: &'static Params, anchor: Anchor) -> HeaderChain {
        HeaderChain {
            params,
            anchor,
            verifier: HeaderVerifier::new(params, anchor),
            headers: Vec::new(),
            bucket: Bucket::new(Pacing::ELECTRUMX_DEFAULT),
            store: None,
        }
    }

    /// A chain kept in the header file at `path` (see [`crate::header_store`]), anchored
    /// after the network's latest checkpoint: the headers found there are verified again (on
    /// the most-work branch if the file holds forks), and headers synced later are appended.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Store`] for a corrupt file.
    pub fn open(network: Network, path: &Path) -> Result<HeaderChain, Error> {
        let (store, loaded) = HeaderStore::open(path)?;
        let mut chain = HeaderChain::from_latest_checkpoint(network);
        let best = best_branch(&chain, &loaded.records);
        chain.extend(&best)?;
        chain.store = Some(store);
        Ok(chain)
    }

    /// Paces header requests with `pacing` instead of a default ElectrumX's limits
    /// ([`Pacing::UNLIMITED`] for one's own server).
    pub fn with_pacing(mut self, pacing: Pacing) -> HeaderChain {
        self.bucket = Bucket::new(pacing);
        self
    }

    /// Cumulative work of the verified chain (absolute where the anchor's work below is known).
    pub fn chainwork(&self) -> Work {
        self.verifier.tip().map_or(Work::ZERO, |t| t.chainwork)
    }

    /// Height of the first header held.
    pub fn anchor_height(&self) -> u32 {
        self.anchor.height
    }

    /// Height and hash of the verified tip, if any header is held.
    pub fn tip(&self) -> Option<(u32, BlockHash)> {
        self.verifier.tip().map(|t| (t.height, t.hash))
    }

    /// The verified header at `height`, if held.
    pub fn header(&self, height: u32) -> Option<Header> {
        let i = height.checked_sub(self.anchor.height)?;
        self.headers
            .get(usize::try_from(i).ok()?)
            .map(Header::from_bytes)
    }

    /// The chain as store records.
    fn records(&self) -> Vec<Stored> {
        (self.anchor.height..)
            .zip(self.headers.iter().copied())
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
                verdict = Err(Error::Verification(format!("header {e}")));
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

    /// Downloads and verifies headers up to the server's tip; `progress(height, tip)` is
    /// called after each chunk. If the server's chain no longer extends ours (a reorg), the
    /// chain is verified again from the anchor. Returns the new tip height.
    ///
    /// # Errors
    /// Transport and server errors, and [`Error::Verification`] when the server's headers
    /// break a rule.
    pub async fn sync(
        &mut self,
        client: &Client,
        mut progress: impl FnMut(u32, u32),
    ) -> Result<u32, Error> {
        let (tip, _) = client.block_headers_subscribe().await?;
        match self.sync_to(client, tip, &mut progress).await {
            Err(Error::Verification(_)) if !self.headers.is_empty() => {
                // Possibly a reorg below our tip: verify the server's chain from the anchor.
                // Both branches stay in the store until the new one is shown to have more
                // work; a server offering less work than we verified before is refused.
                let before = self.chainwork();
                let bucket = self.bucket;
                let store = self.store.take();
                *self = HeaderChain::with_anchor(self.params, self.anchor);
                self.bucket = bucket;
                self.store = store;
                let height = self.sync_to(client, tip, &mut progress).await?;
                if self.chainwork() <= before {
                    return Err(Error::Verification(format!(
                        "the server's chain (tip {height}) has less work than the chain verified before"
                    )));
                }
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
        let mut next = self.verifier.next_height();
        let mut in_flight = VecDeque::new();
        loop {
            while in_flight.len() < SYNC_WINDOW && next <= tip {
                let count = CHUNK.min(tip - next + 1);
                self.bucket.take(request_cost_milli(count)).await;
                let c = client.clone();
                let start = next;
                in_flight.push_back(tokio::spawn(
                    async move { c.block_headers(start, count).await },
                ));
                next += count;
            }
            let Some(chunk) = in_flight.pop_front() else {
                break;
            };
            let headers = chunk
                .await
                .map_err(|e| Error::Io(std::io::Error::other(e)))??;
            if headers.is_empty() {
                break;
            }
            self.extend(&headers)?;
            if let Some((h, _)) = self.tip() {
                progress(h, tip);
            }
        }
        Ok(self.tip().map_or(0, |(h, _)| h))
    }
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

/// A transaction of a verified history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedTx {
    /// The transaction.
    pub txid: Txid,
    /// Confirmed height or mempool class.
    pub height: TxHeight,
    /// For a confirmed transaction: the verified block it is proven into.
    pub block_hash: Option<BlockHash>,
}

/// A script's history, every confirmed entry proven.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedHistory {
    /// The status, recomputed and equal to the server's.
    pub status: Option<Status>,
    /// The history in the server's (canonical) order.
    pub txs: Vec<VerifiedTx>,
}

/// A script, or only its Electrum script hash (below protocol 1.7).
#[derive(Clone, Copy, Debug)]
pub enum ScriptRef<'a> {
    /// The output script.
    Script(&'a [u8]),
    /// Its script hash.
    Hash(ScriptHash),
}

/// Tries this many times when the history changes between the status and the history request.
const STATUS_ATTEMPTS: usize = 3;

/// The verified history of `script` (see the [module documentation](self)). Syncs `chain`
/// further if the history mentions a block beyond its tip.
///
/// # Errors
/// Transport and server errors; [`Error::Verification`] when the status does not match the
/// history, the order is not canonical, a proof fails, or a transaction is below the chain's
/// anchor (and so cannot be proven with the headers held).
pub async fn verified_history(
    client: &Client,
    chain: &mut HeaderChain,
    script: ScriptRef<'_>,
) -> Result<VerifiedHistory, Error> {
    let mut histories = verified_histories(client, chain, &[script]).await?;
    histories.pop().ok_or(Error::Disconnected)
}

/// Histories [`verified_histories`] asks for at once.
pub const HISTORIES_AT_ONCE: usize = 32;

/// The verified histories of several scripts, in order, as [`verified_history`] checks each:
/// asked [`HISTORIES_AT_ONCE`] at a time, then every confirmed transaction of them all proven
/// in one go (ElectrumX holds small replies up to a second: asking one after another is slow).
///
/// # Errors
/// As [`verified_history`], for the first script that fails.
pub async fn verified_histories(
    client: &Client,
    chain: &mut HeaderChain,
    scripts: &[ScriptRef<'_>],
) -> Result<Vec<VerifiedHistory>, Error> {
    let mut checked = Vec::with_capacity(scripts.len());
    for batch in scripts.chunks(HISTORIES_AT_ONCE) {
        let asks: Vec<_> = batch
            .iter()
            .map(|script| {
                let (client, script) = (client.clone(), OwnedScript::from(*script));
                tokio::spawn(async move { checked_history(&client, script.as_ref()).await })
            })
            .collect();
        for ask in asks {
            checked.push(
                ask.await
                    .map_err(|e| Error::Io(std::io::Error::other(e)))??,
            );
        }
    }
    let confirmed: Vec<(Txid, u32)> = checked
        .iter()
        .flat_map(|(_, history)| history)
        .filter_map(|i| match i.height {
            TxHeight::Confirmed(h) => Some((i.txid, h)),
            _ => None,
        })
        .collect();
    let mut blocks = prove_all(client, chain, &confirmed).await?.into_iter();
    Ok(checked
        .into_iter()
        .map(|(status, history)| VerifiedHistory {
            status,
            txs: history
                .iter()
                .map(|item| VerifiedTx {
                    txid: item.txid,
                    height: item.height,
                    block_hash: match item.height {
                        TxHeight::Confirmed(_) => blocks.next(),
                        _ => None,
                    },
                })
                .collect(),
        })
        .collect())
}

/// A [`ScriptRef`] that owns its script, to move into a task.
enum OwnedScript {
    Script(Vec<u8>),
    Hash(ScriptHash),
}

impl From<ScriptRef<'_>> for OwnedScript {
    fn from(s: ScriptRef<'_>) -> Self {
        match s {
            ScriptRef::Script(s) => OwnedScript::Script(s.to_vec()),
            ScriptRef::Hash(h) => OwnedScript::Hash(h),
        }
    }
}

impl OwnedScript {
    fn as_ref(&self) -> ScriptRef<'_> {
        match self {
            OwnedScript::Script(s) => ScriptRef::Script(s),
            OwnedScript::Hash(h) => ScriptRef::Hash(*h),
        }
    }
}

/// A script's status and history as the server sent them, the status recomputed from the
/// history and the order checked (at 1.6+); nothing proven yet.
async fn checked_history(
    client: &Client,
    script: ScriptRef<'_>,
) -> Result<(Option<Status>, Vec<HistoryItem>), Error> {
    let mut last = None;
    for _ in 0..STATUS_ATTEMPTS {
        let (status, history) = match script {
            ScriptRef::Script(s) => {
                tokio::join!(client.script_subscribe(s), client.script_get_history(s))
            }
            ScriptRef::Hash(h) => tokio::join!(
                client.scripthash_subscribe(&h),
                client.scripthash_get_history(&h)
            ),
        };
        let (status, history) = (status?, history?);
        let mut hasher = StatusHasher::new();
        let mut order = CanonicalOrder::new();
        for item in &history {
            hasher.push(&item.txid, item.height);
            if client.protocol_version() >= ProtocolVersion::V1_6 {
                order.push(&item.txid, item.height).map_err(|e| {
                    Error::Verification(format!("history not in canonical order: {e:?}"))
                })?;
            }
        }
        if hasher.finish() == status {
            return Ok((status, history));
        }
        last = Some(status);
    }
    Err(Error::Verification(format!(
        "status {:?} does not match the history the server sent ({STATUS_ATTEMPTS} attempts)",
        last.flatten().map(|s| s.to_string())
    )))
}

/// Proves each `(txid, height)` into the verified header at its height (merkle proofs fetched
/// concurrently); returns the block hashes, in order. Syncs `chain` first if a height is
/// beyond its tip.
///
/// # Errors
/// Transport and server errors; [`Error::Verification`] for a failed proof or a height below
/// the chain's anchor.
pub async fn prove_all(
    client: &Client,
    chain: &mut HeaderChain,
    txs: &[(Txid, u32)],
) -> Result<Vec<BlockHash>, Error> {
    let highest = txs.iter().map(|(_, h)| *h).max();
    if let Some(h) = highest
        && chain.tip().is_none_or(|(tip, _)| tip < h)
    {
        chain.sync(client, |_, _| {}).await?;
    }
    let proofs: Vec<_> = txs
        .iter()
        .map(|&(txid, height)| {
            let c = client.clone();
            tokio::spawn(async move { c.transaction_get_merkle(&txid, height).await })
        })
        .collect();
    let mut out = Vec::with_capacity(txs.len());
    for (&(txid, height), proof) in txs.iter().zip(proofs) {
        let proof = proof
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        let header = chain.header(height).ok_or_else(|| {
            Error::Verification(format!(
                "transaction {txid} at height {height} is below the verified anchor {}",
                chain.anchor_height()
            ))
        })?;
        if proof.block_height != height {
            return Err(Error::Verification(format!(
                "merkle proof of {txid} is for height {}, not {height}",
                proof.block_height
            )));
        }
        verify_tx_branch(&txid, proof.pos, &proof.branch, &header.merkle_root).map_err(|e| {
            Error::Verification(format!("merkle proof of {txid} at height {height}: {e:?}"))
        })?;
        out.push(header.block_hash());
    }
    Ok(out)
}

/// An unspent output whose value and script were read from its funding transaction (fetched
/// and hashed to its txid) and whose confirmation is proven.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedUtxo {
    /// Funding transaction.
    pub txid: Txid,
    /// Output index.
    pub vout: u32,
    /// Value in satoshis, from the transaction itself.
    pub value: u64,
    /// Confirmed height, 0 for the mempool.
    pub height: u32,
    /// The verified block it is proven into, if confirmed.
    pub block_hash: Option<BlockHash>,
}

/// The unspent outputs of `script`, each checked as [`VerifiedUtxo`] says. Whether an output
/// is still unspent cannot be proven by an SPV client: that is the server's word.
///
/// # Errors
/// Transport and server errors; [`Error::Verification`] when a funding transaction does not
/// pay `script` at that index, or a proof fails.
pub async fn verified_utxos(
    client: &Client,
    chain: &mut HeaderChain,
    script: &[u8],
) -> Result<Vec<VerifiedUtxo>, Error> {
    let utxos = client.script_list_unspent(script).await?;
    let fetches: Vec<_> = utxos
        .iter()
        .map(|u| {
            let c = client.clone();
            let txid = u.txid;
            tokio::spawn(async move { c.transaction_get(&txid).await })
        })
        .collect();
    let mut out = Vec::with_capacity(utxos.len());
    for (u, raw) in utxos.iter().zip(fetches) {
        let raw = raw
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        let tx: bitcoin::Transaction = bitcoin::consensus::deserialize(&raw)
            .map_err(|e| Error::Verification(format!("transaction {}: {e}", u.txid)))?;
        let output = usize::try_from(u.vout)
            .ok()
            .and_then(|i| tx.output.get(i))
            .ok_or_else(|| {
                Error::Verification(format!("transaction {} has no output {}", u.txid, u.vout))
            })?;
        if output.script_pubkey.as_bytes() != script {
            return Err(Error::Verification(format!(
                "output {}:{} does not pay this script",
                u.txid, u.vout
            )));
        }
        out.push(VerifiedUtxo {
            txid: u.txid,
            vout: u.vout,
            value: output.value.to_sat(),
            height: u.height,
            block_hash: None,
        });
    }
    let confirmed: Vec<(Txid, u32)> = out
        .iter()
        .filter(|u| u.height > 0)
        .map(|u| (u.txid, u.height))
        .collect();
    let mut blocks = prove_all(client, chain, &confirmed).await?.into_iter();
    for u in out.iter_mut().filter(|u| u.height > 0) {
        u.block_hash = blocks.next();
    }
    Ok(out)
}
