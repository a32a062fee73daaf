//! [`ChainSource`]: BDK's full scans and syncs over the pool's verified histories.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bdk_core::spk_client::{
    FullScanRequest, FullScanResponse, SpkWithExpectedTxids, SyncRequest, SyncResponse,
};
use bdk_core::{BlockId, ConfirmationBlockTime, TxUpdate};
use bitcoin::{OutPoint, ScriptBuf, Transaction, Txid};
use electrum_spv::core::script::TxHeight;
use electrum_spv::verified::{RawTxs, VerifiedHistory};
use electrum_spv::{Pool, PoolConfig, ServerAddr};
use tokio::sync::Mutex;

use crate::chain_update::chain_update;
use crate::error::Error;

/// How a scan or sync asks.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Scripts whose histories are asked together (one pool call: pipelined, verified and
    /// cross-checked together). Default 32.
    pub batch_size: usize,
    /// Also fetch the outputs every transaction spends (its parents, each hashed to its
    /// txid), so BDK can compute fees of transactions whose inputs the wallet does not own.
    /// Default false, as in `bdk_electrum`.
    pub fetch_prev_txouts: bool,
    /// The most scripts a full scan asks of one keychain before failing with
    /// [`Error::TooManyScripts`]: a server reporting a history for every script cannot keep
    /// a scan going for ever (bdk#2295). Default 10,000.
    pub max_scripts: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            batch_size: 32,
            fetch_prev_txouts: false,
            max_scripts: 10_000,
        }
    }
}

/// A verifying chain source for BDK over a [`Pool`] (one or several servers deciding
/// together). See the [crate documentation](crate).
pub struct ChainSource {
    pool: Arc<Mutex<Pool>>,
    /// Transactions already fetched (each hashed to its txid when it was).
    txs: std::sync::Mutex<HashMap<Txid, Arc<Transaction>>>,
}

/// What one scan gathers before the transactions and anchors are fetched.
#[derive(Default)]
struct Gathered {
    /// Every transaction to return, in the order first met.
    txids: Vec<Txid>,
    /// Confirmed transactions: their verified block (and its header's time).
    confirmed: BTreeMap<Txid, ConfirmationBlockTime>,
    /// Mempool transactions.
    unconfirmed: BTreeSet<Txid>,
    /// Expected transactions no longer in their script's history.
    evicted: BTreeSet<Txid>,
}

impl Gathered {
    fn add(&mut self, history: &VerifiedHistory) {
        for t in &history.txs {
            let txid = bitcoin::Txid::from(t.txid);
            let new = !self.confirmed.contains_key(&txid) && !self.unconfirmed.contains(&txid);
            match (t.height, t.block_hash, t.block_time) {
                (TxHeight::Confirmed(height), Some(hash), Some(time)) => {
                    self.unconfirmed.remove(&txid);
                    let block_id = BlockId {
                        height,
                        hash: hash.into(),
                    };
                    let confirmation_time = u64::from(time);
                    self.confirmed.insert(
                        txid,
                        ConfirmationBlockTime {
                            block_id,
                            confirmation_time,
                        },
                    );
                }
                _ => {
                    if !self.confirmed.contains_key(&txid) {
                        self.unconfirmed.insert(txid);
                    }
                }
            }
            if new {
                self.txids.push(txid);
            }
        }
    }

    /// `expected` transactions of a script that its verified history no longer holds.
    fn evicted_from(&mut self, expected: &SpkWithExpectedTxids, history: &VerifiedHistory) {
        let held: BTreeSet<Txid> = history.txs.iter().map(|t| t.txid.into()).collect();
        self.evicted.extend(
            expected
                .expected_txids
                .iter()
                .filter(|t| !held.contains(*t))
                .copied(),
        );
    }
}

impl ChainSource {
    /// Connects a pool to `servers` (see [`Pool::connect`]).
    ///
    /// # Errors
    /// As [`Pool::connect`].
    pub async fn connect(servers: &[ServerAddr], config: PoolConfig) -> Result<Self, Error> {
        Ok(ChainSource::new(Pool::connect(servers, config).await?))
    }

    /// A chain source over a connected pool.
    pub fn new(pool: Pool) -> Self {
        ChainSource {
            pool: Arc::new(Mutex::new(pool)),
            txs: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The pool (to inspect its members and the servers it dropped, and why).
    pub fn pool(&self) -> Arc<Mutex<Pool>> {
        self.pool.clone()
    }

    /// Scans every keychain of `request` from index 0: `0..=last_revealed`, then until
    /// `stop_gap` scripts in a row have no history (at most [`ScanOptions::max_scripts`]).
    ///
    /// # Errors
    /// [`Error::Client`] when the pool cannot answer or what it answers fails verification;
    /// [`Error::TooManyScripts`]; [`Error::NoAgreement`]; [`Error::MissingOutput`].
    pub async fn full_scan<K: Ord + Clone>(
        &self,
        request: impl Into<FullScanRequest<K>>,
        stop_gap: usize,
        options: &ScanOptions,
    ) -> Result<FullScanResponse<K>, Error> {
        let mut request = request.into();
        let start_time = request.start_time();
        let mut gathered = Gathered::default();
        let mut last_active_indices = BTreeMap::new();
        for keychain in request.keychains() {
            let last_revealed = request.last_revealed(&keychain);
            let mut spks = request.iter_spks(keychain.clone());
            let (mut unused, mut asked) = (0usize, 0usize);
            let mut last_active = None;
            'keychain: loop {
                let batch: Vec<(u32, ScriptBuf)> =
                    spks.by_ref().take(options.batch_size.max(1)).collect();
                if batch.is_empty() {
                    break;
                }
                asked += batch.len();
                if asked > options.max_scripts {
                    return Err(Error::TooManyScripts {
                        limit: options.max_scripts,
                    });
                }
                let histories = self.histories(batch.iter().map(|(_, s)| s)).await?;
                for ((index, _), history) in batch.iter().zip(&histories) {
                    gathered.add(history);
                    let beyond_revealed = last_revealed.is_none_or(|r| *index > r);
                    if !history.txs.is_empty() {
                        last_active = Some(*index);
                        unused = 0;
                    } else if beyond_revealed {
                        unused += 1;
                        if unused >= stop_gap {
                            break 'keychain;
                        }
                    }
                }
            }
            if let Some(index) = last_active {
                last_active_indices.insert(keychain, index);
            }
        }
        let tip = request.chain_tip();
        let (tx_update, chain_update) = self.finish(gathered, start_time, tip, options).await?;
        Ok(FullScanResponse {
            tx_update,
            chain_update,
            last_active_indices,
        })
    }

    /// Syncs the scripts (with the transactions the wallet expects of each), txids and
    /// outpoints of `request`.
    ///
    /// # Errors
    /// As [`ChainSource::full_scan`], but never [`Error::TooManyScripts`].
    pub async fn sync<I: 'static>(
        &self,
        request: impl Into<SyncRequest<I>>,
        options: &ScanOptions,
    ) -> Result<SyncResponse, Error> {
        let mut request = request.into();
        let start_time = request.start_time();
        let mut gathered = Gathered::default();
        let spks: Vec<SpkWithExpectedTxids> = request.iter_spks_with_expected_txids().collect();
        for batch in spks.chunks(options.batch_size.max(1)) {
            let histories = self.histories(batch.iter().map(|s| &s.spk)).await?;
            for (spk, history) in batch.iter().zip(&histories) {
                gathered.add(history);
                gathered.evicted_from(spk, history);
            }
        }
        let txids: Vec<Txid> = request.iter_txids().collect();
        self.gather_txids(&txids, &mut gathered).await?;
        let outpoints: Vec<OutPoint> = request.iter_outpoints().collect();
        self.gather_outpoints(&outpoints, &mut gathered).await?;
        let tip = request.chain_tip();
        let (tx_update, chain_update) = self.finish(gathered, start_time, tip, options).await?;
        Ok(SyncResponse {
            tx_update,
            chain_update,
        })
    }

    /// Broadcasts `tx` through the best server; its answer must be `tx`'s txid.
    ///
    /// # Errors
    /// [`Error::Client`]: the node's refusal (`Server`), another txid answered
    /// (`Verification`), no server.
    pub async fn broadcast(&self, tx: &Transaction) -> Result<Txid, Error> {
        let raw = bitcoin::consensus::encode::serialize(tx);
        let client = {
            let pool = self.pool.lock().await;
            pool.client()
                .cloned()
                .ok_or(electrum_spv::Error::Disconnected)?
        };
        Ok(client.transaction_broadcast(&raw).await?.into())
    }

    /// The verified histories of `scripts`, in order; the transactions verified on the way
    /// join the cache (they are not fetched again).
    async fn histories(
        &self,
        scripts: impl Iterator<Item = &ScriptBuf>,
    ) -> Result<Vec<VerifiedHistory>, Error> {
        let scripts: Vec<Vec<u8>> = scripts.map(|s| s.to_bytes()).collect();
        let (histories, raws) = self
            .pool
            .lock()
            .await
            .verified_histories_keeping(&scripts)
            .await?;
        let mut cache = self.lock_txs();
        for (txid, raw) in raws {
            let txid = Txid::from(txid);
            if let std::collections::hash_map::Entry::Vacant(slot) = cache.entry(txid) {
                slot.insert(Arc::new(parse(txid, &raw)?));
            }
        }
        Ok(histories)
    }

    /// Transactions by txid: cached, else fetched from the best server, each hashed to its
    /// txid (by the client) and parsed.
    async fn transactions(&self, txids: &[Txid]) -> Result<Vec<Arc<Transaction>>, Error> {
        let missing: Vec<electrum_spv::core::hash::Txid> = {
            let cache = self.lock_txs();
            txids
                .iter()
                .filter(|t| !cache.contains_key(*t))
                .map(|t| (*t).into())
                .collect()
        };
        if !missing.is_empty() {
            let mut raws = RawTxs::new();
            self.pool
                .lock()
                .await
                .fetch_transactions(&missing, &mut raws)
                .await?;
            let mut cache = self.lock_txs();
            for (txid, raw) in raws {
                let txid = Txid::from(txid);
                cache.insert(txid, Arc::new(parse(txid, &raw)?));
            }
        }
        let cache = self.lock_txs();
        Ok(txids.iter().filter_map(|t| cache.get(t).cloned()).collect())
    }

    /// One transaction, or `None` when the server answers with an error (it does not know
    /// it, as for a txid the wallet only expects); a lie or a lost connection is an error.
    async fn known_transaction(&self, txid: Txid) -> Result<Option<Arc<Transaction>>, Error> {
        match self.transactions(&[txid]).await {
            Ok(mut txs) => Ok(txs.pop()),
            Err(Error::Client(electrum_spv::Error::Server { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn lock_txs(&self) -> std::sync::MutexGuard<'_, HashMap<Txid, Arc<Transaction>>> {
        // A panic while holding the cache leaves it consistent (inserts only).
        self.txs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Txids asked by a sync: each transaction fetched, and its state read from the verified
    /// history of the first output script the server indexes (else of an input's previous
    /// output, as `bdk_electrum` does). A txid the server does not know is left out; any other
    /// failure fails the sync.
    async fn gather_txids(&self, txids: &[Txid], gathered: &mut Gathered) -> Result<(), Error> {
        for &txid in txids {
            let Some(tx) = self.known_transaction(txid).await? else {
                continue;
            };
            let mut script = tx
                .output
                .iter()
                .map(|o| &o.script_pubkey)
                .find(|s| !s.is_op_return() && !s.as_bytes().starts_with(&[0x00, 0x6a]))
                .cloned();
            if script.is_none() && !tx.is_coinbase() {
                for input in &tx.input {
                    let prev = input.previous_output;
                    if let Some(parent) = self.known_transaction(prev.txid).await?
                        && let Some(out) = parent.output.get(prev.vout as usize)
                    {
                        script = Some(out.script_pubkey.clone());
                        break;
                    }
                }
            }
            let Some(script) = script else { continue };
            let history = self.histories(std::iter::once(&script)).await?;
            if let Some(history) = history.first() {
                let only_this = VerifiedHistory {
                    status: history.status,
                    txs: history
                        .txs
                        .iter()
                        .filter(|t| bitcoin::Txid::from(t.txid) == txid)
                        .cloned()
                        .collect(),
                };
                gathered.add(&only_this);
            }
        }
        Ok(())
    }

    /// Outpoints asked by a sync: the transaction holding each, and the one spending it, from
    /// the verified history of the output's script.
    async fn gather_outpoints(
        &self,
        outpoints: &[OutPoint],
        gathered: &mut Gathered,
    ) -> Result<(), Error> {
        for &outpoint in outpoints {
            let Some(tx) = self.known_transaction(outpoint.txid).await? else {
                continue;
            };
            let Some(out) = tx.output.get(outpoint.vout as usize) else {
                continue;
            };
            let history = self.histories(std::iter::once(&out.script_pubkey)).await?;
            let Some(history) = history.first() else {
                continue;
            };
            let mut keep = Vec::new();
            for t in &history.txs {
                let txid = bitcoin::Txid::from(t.txid);
                if txid == outpoint.txid {
                    keep.push(t.clone());
                    continue;
                }
                let spends = self
                    .transactions(&[txid])
                    .await?
                    .first()
                    .is_some_and(|s| s.input.iter().any(|i| i.previous_output == outpoint));
                if spends {
                    keep.push(t.clone());
                }
            }
            gathered.add(&VerifiedHistory {
                status: history.status,
                txs: keep,
            });
        }
        Ok(())
    }

    /// Fetches the transactions, builds the anchors from verified headers and the chain
    /// update.
    async fn finish(
        &self,
        gathered: Gathered,
        start_time: u64,
        tip: Option<bdk_core::CheckPoint>,
        options: &ScanOptions,
    ) -> Result<
        (
            TxUpdate<ConfirmationBlockTime>,
            Option<bdk_core::CheckPoint>,
        ),
        Error,
    > {
        let mut update = TxUpdate::<ConfirmationBlockTime>::default();
        update.txs = self.transactions(&gathered.txids).await?;
        {
            let mut pool = self.pool.lock().await;
            let finality = pool.best_chain().map_or(0, |c| c.anchor_height());
            for (&txid, &anchor) in &gathered.confirmed {
                let height = anchor.block_id.height;
                // Above the checkpointed anchor a block may have been reorganised away since
                // the history was verified: no anchor to a block the chain no longer has; the
                // next sync places the transaction.
                if height > finality
                    && bitcoin::BlockHash::from(pool.header_at(height).await?.block_hash())
                        != anchor.block_id.hash
                {
                    update.seen_ats.insert((txid, start_time));
                    continue;
                }
                update.anchors.insert((anchor, txid));
            }
        }
        update
            .seen_ats
            .extend(gathered.unconfirmed.iter().map(|t| (*t, start_time)));
        update
            .evicted_ats
            .extend(gathered.evicted.iter().map(|t| (*t, start_time)));
        if options.fetch_prev_txouts {
            self.prev_txouts(&mut update).await?;
        }
        let chain = match tip {
            Some(tip) => {
                let anchors: BTreeMap<u32, bitcoin::BlockHash> = update
                    .anchors
                    .iter()
                    .map(|(a, _)| (a.block_id.height, a.block_id.hash))
                    .collect();
                Some(chain_update(&mut *self.pool.lock().await, tip, &anchors).await?)
            }
            None => None,
        };
        Ok((update, chain))
    }

    /// The outputs spent by every non-coinbase transaction of `update`, from its parents.
    async fn prev_txouts(&self, update: &mut TxUpdate<ConfirmationBlockTime>) -> Result<(), Error> {
        let spent: Vec<OutPoint> = update
            .txs
            .iter()
            .filter(|t| !t.is_coinbase())
            .flat_map(|t| t.input.iter().map(|i| i.previous_output))
            .collect();
        let parents: Vec<Txid> = spent.iter().map(|o| o.txid).collect();
        self.transactions(&parents).await?;
        let cache = self.lock_txs();
        for outpoint in spent {
            let out = cache
                .get(&outpoint.txid)
                .and_then(|parent| parent.output.get(outpoint.vout as usize))
                .ok_or(Error::MissingOutput(outpoint))?;
            update.txouts.insert(outpoint, out.clone());
        }
        Ok(())
    }
}

/// A transaction's bytes, already hashed to `txid`, in rust-bitcoin's form.
fn parse(txid: Txid, raw: &[u8]) -> Result<Transaction, Error> {
    bitcoin::consensus::deserialize(raw).map_err(|_| Error::Transaction { txid })
}
