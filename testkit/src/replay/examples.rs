//! Real example scripts and what an honest server must report for them, computed by scanning
//! the blocks for each script on its own (not through the server's index).

use std::collections::{HashMap, HashSet};

use bitcoin::{BlockHash, OutPoint, Script, ScriptBuf, Txid};

use super::data::{KnownBlock, data, indexed_txs};
use crate::Error;
use crate::chain::{scripthash, status_of};

/// A confirmed transaction an example's history must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedTx {
    /// The transaction.
    pub txid: Txid,
    /// Its block's height.
    pub height: u32,
    /// Its block's hash.
    pub block_hash: BlockHash,
}

/// An output an example's `listunspent` must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedUtxo {
    /// The funding transaction.
    pub txid: Txid,
    /// The output's index in it.
    pub vout: u32,
    /// The funding transaction's height.
    pub height: u32,
    /// Value in satoshis.
    pub value: u64,
}

/// A real mainnet script the replay server knows, with its expected records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// Short name, e.g. `"satoshi-block9-p2pk"`.
    pub name: String,
    /// The scriptPubKey.
    pub script: ScriptBuf,
    /// Its Electrum script hash (display hex).
    pub scripthash: String,
    /// Its history in chain order (height, then position in the block).
    pub history: Vec<ExpectedTx>,
    /// The Electrum status of that history (`None` for none).
    pub status: Option<String>,
    /// Its outputs not spent by any known transaction, in chain order.
    pub utxos: Vec<ExpectedUtxo>,
}

/// The example scripts, in this order:
///
/// * `satoshi-block9-p2pk`: the P2PK script of the block-9 coinbase (Satoshi's key); its coin
///   is spent in block 170 (to Hal Finney), so two entries and no unspent output.
/// * `early-coinbase-p2pk`: the first other coinbase P2PK script of blocks 1..=438 whose coin
///   stays unspent (block 1's).
/// * `block830000-p2wpkh`, `block830000-p2tr`, `block830000-p2pkh`: for each kind, the first
///   script paid in block 830000 (output order) that has two or more history entries in that
///   block, or the first script of the kind if none has.
pub fn examples() -> Result<Vec<Example>, Error> {
    let data = data()?;
    let blocks = &data.blocks[..];
    let block = |h| {
        data.block(h)
            .ok_or_else(|| Error::msg(format!("block {h} missing")))
    };
    let coinbase_script = |h| -> Result<ScriptBuf, Error> {
        let b = block(h)?;
        Ok(b.txs[0].output[0].script_pubkey.clone())
    };
    let mut out = vec![example(blocks, "satoshi-block9-p2pk", coinbase_script(9)?)];
    let early = (1..=438)
        .filter(|&h| h != 9)
        .map(coinbase_script)
        .find(|s| {
            s.as_ref()
                .is_ok_and(|s| s.is_p2pk() && !scan(blocks, s).1.is_empty())
        })
        .ok_or_else(|| Error::msg("no early P2PK coinbase with an unspent coin"))??;
    out.push(example(blocks, "early-coinbase-p2pk", early));
    let recent = block(830_000)?;
    let kinds: [(&str, IsKind); 3] = [
        ("block830000-p2wpkh", Script::is_p2wpkh),
        ("block830000-p2tr", Script::is_p2tr),
        ("block830000-p2pkh", Script::is_p2pkh),
    ];
    for (name, is_kind) in kinds {
        let script = pick_recent(recent, is_kind)
            .ok_or_else(|| Error::msg(format!("{name}: no such script in block 830000")))?;
        out.push(example(blocks, name, script));
    }
    Ok(out)
}

/// Whether a script is of some kind (`Script::is_p2wpkh`, ...).
type IsKind = fn(&Script) -> bool;

fn example(blocks: &[KnownBlock], name: &str, script: ScriptBuf) -> Example {
    let (history, utxos) = scan(blocks, &script);
    let rows: Vec<(Txid, i64)> = history
        .iter()
        .map(|t| (t.txid, i64::from(t.height)))
        .collect();
    Example {
        name: name.to_owned(),
        scripthash: scripthash(&script),
        status: status_of(&rows),
        script,
        history,
        utxos,
    }
}

/// One script's history and unspent outputs, by walking every indexed transaction and
/// following the script's coins.
fn scan(blocks: &[KnownBlock], script: &Script) -> (Vec<ExpectedTx>, Vec<ExpectedUtxo>) {
    let mut history = Vec::new();
    let mut coins: Vec<ExpectedUtxo> = Vec::new();
    for (block, _, txid, tx) in indexed_txs(blocks) {
        let before = coins.len();
        coins.retain(|c| {
            !tx.input
                .iter()
                .any(|i| i.previous_output == OutPoint::new(c.txid, c.vout))
        });
        let spends = coins.len() != before;
        let mut pays = false;
        for (vout, o) in tx.output.iter().enumerate() {
            if o.script_pubkey == *script {
                pays = true;
                coins.push(ExpectedUtxo {
                    txid,
                    vout: vout as u32,
                    height: block.height,
                    value: o.value.to_sat(),
                });
            }
        }
        if spends || pays {
            history.push(ExpectedTx {
                txid,
                height: block.height,
                block_hash: block.hash,
            });
        }
    }
    (history, coins)
}

/// The first script of a kind paid in `block` with two or more transactions of the block
/// touching it (paying it, or spending an output of the block that paid it); else the first
/// script of the kind.
fn pick_recent(block: &KnownBlock, is_kind: IsKind) -> Option<ScriptBuf> {
    let mut touching: HashMap<&Script, HashSet<usize>> = HashMap::new();
    let mut paid: HashMap<OutPoint, &Script> = HashMap::new();
    let mut order: Vec<&Script> = Vec::new();
    for (pos, (tx, txid)) in block.txs.iter().zip(&block.txids).enumerate() {
        for input in &tx.input {
            if let Some(s) = paid.get(&input.previous_output) {
                touching.entry(*s).or_default().insert(pos);
            }
        }
        for (vout, o) in tx.output.iter().enumerate() {
            let s = o.script_pubkey.as_script();
            paid.insert(OutPoint::new(*txid, vout as u32), s);
            if is_kind(s) && touching.entry(s).or_default().insert(pos) && touching[s].len() == 1 {
                order.push(s);
            }
        }
    }
    let busy = order.iter().find(|s| touching[**s].len() >= 2);
    busy.or(order.first()).map(|s| s.to_owned().to_owned())
}
