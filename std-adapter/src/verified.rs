//! Verified script histories and unspent outputs, checked by core's rules against a
//! [`HeaderChain`].
//!
//! A verified history is what core's
//! [`ScriptTracker`](electrum_spv_core::sync::tracker::ScriptTracker) accepts, the same
//! everywhere (DESIGN.md, "What is verified"); [`verified_histories`] drives it and adds only
//! I/O:
//!
//! * the list itself: its status recomputed in the server's order equals the announced one,
//!   the canonical order at protocol 1.6+, no txid twice (a status that does not match right
//!   after a block may be a server's cache racing its own index, as Fulcrum's does: it is
//!   asked again on the script's next status notification or a second later before it is
//!   called false);
//! * every transaction's raw bytes hash to its txid, and the transaction involves the script:
//!   an output pays it, or an input spends an output of the same history that paid it;
//! * every confirmed entry's merkle branch (hardened) reaches the verified header at its
//!   height: from the synced chain, or from the 2016-header period holding it, verified
//!   between its checkpoints, when it lies below the anchor;
//! * entries are reported in chain order: height, then the position in the block that the
//!   merkle proof fixes; mempool entries last, in the server's order.
//!
//! What cannot be proven is an error, never reported as confirmed. Memory: the tracker's
//! tables, about 150 bytes per transaction and per output paying the script; transactions are
//! read as they arrive, never held.

use std::collections::{HashMap, HashSet, VecDeque};

use electrum_spv_core::hash::{BlockHash, ScriptHash, Status, Txid};
use electrum_spv_core::merkle::verify_tx_branch;
use electrum_spv_core::script::{TxHeight, script_hash};
use electrum_spv_core::tx_parts::TxParts;

use crate::client::{Client, MerkleProof};
use crate::engine;
use crate::error::Error;
use crate::fault::Fault;
use crate::pacing::{MERKLE_COST_MILLI, TX_COST_MILLI};

pub use crate::header_chain::{HeaderChain, SYNC_WINDOW};

/// A transaction of a verified history.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct VerifiedTx {
    /// The transaction.
    pub txid: Txid,
    /// Confirmed height or mempool class.
    pub height: TxHeight,
    /// For a confirmed transaction: the verified block it is proven into.
    pub block_hash: Option<BlockHash>,
    /// For a confirmed transaction: its position in the block, fixed by the merkle proof.
    pub pos: Option<u32>,
    /// For a confirmed transaction: the time field of its verified block header (seconds
    /// since 1970, as the miner set it; BDK's `confirmation_time`).
    pub block_time: Option<u32>,
}

/// A script's history, every confirmed entry proven, in chain order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct VerifiedHistory {
    /// The status, recomputed and equal to the server's (computed in the server's order,
    /// which may differ from the chain order of `txs` within a block).
    pub status: Option<Status>,
    /// The history: confirmed entries by height and position in the block, then the mempool.
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

impl ScriptRef<'_> {
    /// The Electrum script hash.
    pub fn script_hash(&self) -> ScriptHash {
        match self {
            ScriptRef::Script(s) => script_hash(s),
            ScriptRef::Hash(h) => *h,
        }
    }
}

/// The script's status as the server announces it (subscribing to it).
///
/// # Errors
/// Transport and server errors.
pub async fn status_of(client: &Client, script: ScriptRef<'_>) -> Result<Option<Status>, Error> {
    match script {
        ScriptRef::Script(s) => client.script_subscribe(s).await,
        ScriptRef::Hash(h) => client.scripthash_subscribe(&h).await,
    }
}

/// Requests kept in flight by a verification (subscriptions, histories, proofs and
/// transactions; each connection also bounds its in-flight requests): a sliding window,
/// refilled as each answer arrives.
pub const PROOFS_AT_ONCE: usize = 48;

/// The verified history of `script` (see the [module documentation](self)). Syncs `chain`
/// further if the history mentions a block beyond its tip, and fetches the old periods its
/// transactions below the anchor need.
///
/// # Errors
/// Transport and server errors; [`Error::Verification`] with the [`Fault`] when a rule fails;
/// [`Error::Lagging`] when the history names a block above the server's own verified tip.
pub async fn verified_history(
    client: &Client,
    chain: &mut HeaderChain,
    script: ScriptRef<'_>,
) -> Result<VerifiedHistory, Error> {
    let mut histories = verified_histories(client, chain, &[script]).await?;
    histories.pop().ok_or(Error::Disconnected)
}

/// The verified histories of several scripts, in order, as [`verified_history`] checks each:
/// core's [`ScriptTracker`](electrum_spv_core::sync::tracker::ScriptTracker) runs over them
/// all at once, [`PROOFS_AT_ONCE`] requests in flight (ElectrumX holds small replies up to a
/// second: asking one after another is slow).
///
/// # Errors
/// As [`verified_history`], for the first script that fails.
pub async fn verified_histories(
    client: &Client,
    chain: &mut HeaderChain,
    scripts: &[ScriptRef<'_>],
) -> Result<Vec<VerifiedHistory>, Error> {
    run_tracker(client, chain, scripts, None).await
}

/// Raw transactions by txid, each kept from the answer the tracker verified it by (its bytes
/// hashed to the txid and read for the script): a caller that needs the transactions
/// themselves (a wallet) does not fetch them twice.
pub type RawTxs = HashMap<Txid, Vec<u8>>;

/// As [`verified_histories`], keeping the raw bytes of every transaction verified on the way
/// in `keep` (see [`RawTxs`]; memory: the transactions' size).
///
/// # Errors
/// As [`verified_histories`].
pub async fn verified_histories_keeping(
    client: &Client,
    chain: &mut HeaderChain,
    scripts: &[ScriptRef<'_>],
    keep: &mut RawTxs,
) -> Result<Vec<VerifiedHistory>, Error> {
    run_tracker(client, chain, scripts, Some(keep)).await
}

async fn run_tracker(
    client: &Client,
    chain: &mut HeaderChain,
    scripts: &[ScriptRef<'_>],
    keep: Option<&mut RawTxs>,
) -> Result<Vec<VerifiedHistory>, Error> {
    let mut tracker = engine::tracker_for(scripts, client.protocol_version())?;
    engine::run(client, chain, &mut tracker, keep).await?;
    Ok((0..scripts.len())
        .map(|i| VerifiedHistory {
            status: tracker.verified_status(i).flatten(),
            txs: engine::history_in_chain_order(&tracker, i),
        })
        .collect())
}

/// Each item of `items` once, in first-seen order.
fn unique<T: Copy + Eq + std::hash::Hash>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    items.filter(|i| seen.insert(*i)).collect()
}

/// Awaits a spawned task; a task that panicked or was cancelled is an I/O error.
async fn join<T>(task: tokio::task::JoinHandle<T>) -> Result<T, Error> {
    task.await.map_err(|e| Error::Io(std::io::Error::other(e)))
}

/// A request [`fetch`] keeps in flight.
enum Ask {
    Tx(Txid),
    Merkle(Txid, u32),
}

/// Its answer.
enum Answer {
    Tx(Txid, Vec<u8>),
    Merkle(MerkleProof),
}

/// The raw bytes of each of `txids` (hashed to its txid by [`Client::transaction_get`]) and
/// the merkle proof of each of `proofs` (in order, not yet checked): one sliding window of
/// [`PROOFS_AT_ONCE`] requests in flight, refilled as each answer arrives, paced by the
/// chain's proof bucket. One window for both, not batch after batch: ElectrumX holds small
/// replies until more arrive or a second passes, so each batch would wait that second.
async fn fetch(
    client: &Client,
    chain: &mut HeaderChain,
    txids: &[Txid],
    proofs: &[(Txid, u32)],
) -> Result<(HashMap<Txid, Vec<u8>>, Vec<MerkleProof>), Error> {
    let mut raw = HashMap::with_capacity(txids.len());
    let mut merkle = Vec::with_capacity(proofs.len());
    let mut next = txids
        .iter()
        .map(|t| Ask::Tx(*t))
        .chain(proofs.iter().map(|&(t, h)| Ask::Merkle(t, h)));
    let mut in_flight = VecDeque::with_capacity(PROOFS_AT_ONCE);
    loop {
        while in_flight.len() < PROOFS_AT_ONCE
            && let Some(ask) = next.next()
        {
            let c = client.clone();
            let task = match ask {
                Ask::Tx(txid) => {
                    chain.proof_bucket().take(TX_COST_MILLI).await;
                    tokio::spawn(async move {
                        c.transaction_get(&txid).await.map(|b| Answer::Tx(txid, b))
                    })
                }
                Ask::Merkle(txid, height) => {
                    chain.proof_bucket().take(MERKLE_COST_MILLI).await;
                    tokio::spawn(async move {
                        c.transaction_get_merkle(&txid, height)
                            .await
                            .map(Answer::Merkle)
                    })
                }
            };
            in_flight.push_back(task);
        }
        let Some(task) = in_flight.pop_front() else {
            return Ok((raw, merkle));
        };
        match join(task).await?? {
            Answer::Tx(txid, bytes) => {
                raw.insert(txid, bytes);
            }
            Answer::Merkle(proof) => merkle.push(proof),
        }
    }
}

/// Proves each `(txid, height)` into the verified header at its height (merkle proofs
/// fetched [`PROOFS_AT_ONCE`] in flight at a time, paced); returns each block hash and the
/// position in the block, in order. Syncs `chain` first if a height is beyond its tip, and fetches the
/// old periods of heights below its anchor.
///
/// # Errors
/// Transport and server errors; [`Error::Verification`] for a failed proof;
/// [`Error::Lagging`] for a height above the server's verified tip.
pub async fn prove_all(
    client: &Client,
    chain: &mut HeaderChain,
    txs: &[(Txid, u32)],
) -> Result<Vec<(BlockHash, u32)>, Error> {
    let (_, proofs) = fetch(client, chain, &[], txs).await?;
    Ok(check_proofs(client, chain, txs, proofs)
        .await?
        .into_iter()
        .map(|p| (p.hash, p.pos))
        .collect())
}

/// Where a proof placed a transaction.
struct Placed {
    hash: BlockHash,
    pos: u32,
    time: u32,
}

/// Checks each proof (of `txs`, in order) against the verified header at its height (old
/// periods fetched, the chain synced, as needed); returns each block hash, position and
/// header time.
async fn check_proofs(
    client: &Client,
    chain: &mut HeaderChain,
    txs: &[(Txid, u32)],
    proofs: Vec<MerkleProof>,
) -> Result<Vec<Placed>, Error> {
    let heights: Vec<u32> = txs.iter().map(|(_, h)| *h).collect();
    chain.ensure(client, &heights).await?;
    let mut out = Vec::with_capacity(txs.len());
    for (&(txid, height), proof) in txs.iter().zip(proofs) {
        let header = chain.header_at(client, height).await?;
        if proof.block_height != height {
            return Err(Fault::ProofHeight {
                txid,
                asked: height,
                claimed: proof.block_height,
            }
            .into());
        }
        verify_tx_branch(&txid, proof.pos, &proof.branch, &header.merkle_root).map_err(
            |error| Fault::Merkle {
                txid,
                height,
                error,
            },
        )?;
        out.push(Placed {
            hash: header.block_hash(),
            pos: proof.pos,
            time: header.time,
        });
    }
    Ok(out)
}

/// An unspent output whose value and script were read from its funding transaction (fetched
/// and hashed to its txid) and whose confirmation is proven.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
    /// The time field of that block's verified header, if confirmed.
    pub block_time: Option<u32>,
}

/// The unspent outputs of `script`, each checked as [`VerifiedUtxo`] says; no output twice.
/// Whether an output is still unspent cannot be proven by an SPV client: that is the
/// server's word.
///
/// # Errors
/// Transport and server errors; [`Error::Verification`] when a funding transaction does not
/// pay `script` at that index, an output is listed twice, or a proof fails.
pub async fn verified_utxos(
    client: &Client,
    chain: &mut HeaderChain,
    script: &[u8],
) -> Result<Vec<VerifiedUtxo>, Error> {
    let utxos = client.script_list_unspent(script).await?;
    let mut seen = HashSet::new();
    for u in &utxos {
        if !seen.insert((u.txid, u.vout)) {
            return Err(Fault::DuplicateOutpoint {
                txid: u.txid,
                vout: u.vout,
            }
            .into());
        }
    }
    let txids = unique(utxos.iter().map(|u| u.txid));
    // One proof per funding transaction, however many of its outputs are listed.
    let confirmed: Vec<(Txid, u32)> = unique(
        utxos
            .iter()
            .filter(|u| u.height > 0)
            .map(|u| (u.txid, u.height)),
    );
    let (raw, proofs) = fetch(client, chain, &txids, &confirmed).await?;
    let mut out = Vec::with_capacity(utxos.len());
    for u in &utxos {
        let not_ours = || Fault::NotAnOutputOfScript {
            txid: u.txid,
            vout: u.vout,
        };
        let bytes = raw.get(&u.txid).ok_or(Error::Disconnected)?;
        let tx = TxParts::parse(bytes).map_err(|error| Fault::MalformedTx {
            txid: u.txid,
            error,
        })?;
        let output = usize::try_from(u.vout)
            .ok()
            .and_then(|i| tx.outputs().nth(i))
            .ok_or_else(not_ours)?;
        if output.script_pubkey != script {
            return Err(not_ours().into());
        }
        out.push(VerifiedUtxo {
            txid: u.txid,
            vout: u.vout,
            value: output.value,
            height: u.height,
            block_hash: None,
            block_time: None,
        });
    }
    let blocks: HashMap<Txid, Placed> = confirmed
        .iter()
        .map(|(txid, _)| *txid)
        .zip(check_proofs(client, chain, &confirmed, proofs).await?)
        .collect();
    for u in &mut out {
        if let Some(placed) = blocks.get(&u.txid).filter(|_| u.height > 0) {
            u.block_hash = Some(placed.hash);
            u.block_time = Some(placed.time);
        }
    }
    Ok(out)
}

#[cfg(all(test, feature = "serde"))]
mod serde_tests {
    use super::*;

    #[test]
    fn a_verified_history_serializes_as_the_protocol_writes_it_and_back() {
        let txid: Txid = "0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098"
            .parse()
            .unwrap();
        let block: BlockHash = "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048"
            .parse()
            .unwrap();
        let history = VerifiedHistory {
            status: None,
            txs: vec![
                VerifiedTx {
                    txid,
                    height: TxHeight::Confirmed(1),
                    block_hash: Some(block),
                    pos: Some(0),
                    block_time: Some(1_231_469_665),
                },
                VerifiedTx {
                    txid,
                    height: TxHeight::Mempool,
                    block_hash: None,
                    pos: None,
                    block_time: None,
                },
            ],
        };
        let json = serde_json::to_value(&history).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"status": null, "txs": [
                {"txid": txid.to_string(), "height": 1, "block_hash": block.to_string(), "pos": 0,
                 "block_time": 1_231_469_665},
                {"txid": txid.to_string(), "height": 0, "block_hash": null, "pos": null,
                 "block_time": null},
            ]})
        );
        assert_eq!(
            serde_json::from_value::<VerifiedHistory>(json).unwrap(),
            history
        );
    }
}
