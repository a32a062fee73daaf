//! The real mainnet data the replay server answers from (headers, blocks), checked against
//! itself when loaded, and the server's index of it (script → history and unspent outputs).
//!
//! Loaded once per process: every server and every call to `examples` share it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bitcoin::consensus::encode::{deserialize, serialize};
use bitcoin::hashes::{Hash, sha256};
use bitcoin::{Block, BlockHash, OutPoint, Script, Transaction, Txid};

use crate::Error;

/// Size of a serialized block header.
pub(super) const HEADER_SIZE: usize = 80;
/// The magic that starts each block of a `blk*.dat` file (mainnet).
const BLK_MAGIC: [u8; 4] = [0xf9, 0xbe, 0xb4, 0xd9];
/// Heights of the blocks in `blocks_0_438.blk`.
const EARLY_BLOCKS: u32 = 439;
/// The one recent block the data holds in full.
const RECENT_BLOCK: u32 = 830_000;

/// The project's real chain data, shared with the core's tests.
pub(super) fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/data")
}

/// Consecutive raw headers starting at `start`.
pub(super) struct HeaderRange {
    pub(super) start: u32,
    pub(super) headers: Vec<[u8; HEADER_SIZE]>,
}

/// A block known in full.
pub(super) struct KnownBlock {
    pub(super) height: u32,
    pub(super) hash: BlockHash,
    pub(super) txids: Vec<Txid>,
    pub(super) txs: Vec<Transaction>,
}

/// One history row: a confirmed transaction touching a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) txid: Txid,
    pub(super) height: u32,
    /// Position in its block, which orders rows of the same height.
    pub(super) pos: u32,
}

/// An output paying a script that no known transaction spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Unspent {
    pub(super) txid: Txid,
    pub(super) vout: u32,
    pub(super) height: u32,
    pub(super) value: u64,
}

/// What the index knows about one script.
#[derive(Default)]
pub(super) struct ScriptRecord {
    /// In chain order (height, then position), each transaction once.
    pub(super) history: Vec<Entry>,
    /// In chain order (height, position, output index).
    pub(super) utxos: Vec<Unspent>,
}

/// Script index key: SHA-256 of the scriptPubKey, in digest order (the Electrum script hash
/// reversed).
pub(super) type ScriptKey = [u8; 32];

/// Everything the server knows.
pub(super) struct Data {
    pub(super) ranges: Vec<HeaderRange>,
    /// In height order.
    pub(super) blocks: Vec<KnownBlock>,
    by_height: HashMap<u32, usize>,
    /// Where each transaction is: (index into `blocks`, position).
    txs: HashMap<Txid, (usize, u32)>,
    pub(super) scripts: HashMap<ScriptKey, ScriptRecord>,
}

/// The data, loaded and indexed on first use.
pub(super) fn data() -> Result<&'static Data, Error> {
    static DATA: OnceLock<Result<Data, Error>> = OnceLock::new();
    DATA.get_or_init(|| load(&data_dir().join("mainnet")))
        .as_ref()
        .map_err(Clone::clone)
}

/// The index key of a script.
pub(super) fn script_key(script: &Script) -> ScriptKey {
    sha256::Hash::hash(script.as_bytes()).to_byte_array()
}

impl Data {
    /// The raw header at `height`, if known.
    pub(super) fn header(&self, height: u32) -> Option<&[u8; HEADER_SIZE]> {
        self.ranges.iter().find_map(|r| {
            let i = usize::try_from(height.checked_sub(r.start)?).ok()?;
            r.headers.get(i)
        })
    }

    /// The known headers from `start`, at most `count`, stopping at the end of `start`'s range.
    pub(super) fn headers_from(&self, start: u32, count: usize) -> Option<&[[u8; HEADER_SIZE]]> {
        self.ranges.iter().find_map(|r| {
            let i = usize::try_from(start.checked_sub(r.start)?).ok()?;
            let rest = r.headers.get(i..).filter(|rest| !rest.is_empty())?;
            Some(&rest[..count.min(rest.len())])
        })
    }

    /// Highest known header height (the tip the server reports).
    pub(super) fn tip(&self) -> u32 {
        self.ranges
            .iter()
            .map(|r| r.start + r.headers.len() as u32 - 1)
            .max()
            .unwrap_or(0)
    }

    /// The block at `height`, if known in full.
    pub(super) fn block(&self, height: u32) -> Option<&KnownBlock> {
        self.by_height.get(&height).map(|&i| &self.blocks[i])
    }

    /// A transaction, its block and its position.
    pub(super) fn tx(&self, txid: &Txid) -> Option<(&KnownBlock, u32)> {
        let &(b, pos) = self.txs.get(txid)?;
        Some((&self.blocks[b], pos))
    }
}

/// Reads, checks and indexes the data in `dir` (the `mainnet/` folder).
fn load(dir: &Path) -> Result<Data, Error> {
    let ranges = vec![
        header_range(&dir.join("headers_0_10236.bin"), 0)?,
        header_range(&dir.join("headers_822528_830592.bin"), 822_528)?,
    ];
    let mut raw_blocks = blk_blocks(&read(&dir.join("blocks_0_438.blk"))?)?;
    if raw_blocks.len() != EARLY_BLOCKS as usize {
        return Err(Error::msg(format!(
            "blocks_0_438.blk holds {} blocks, not {EARLY_BLOCKS}",
            raw_blocks.len()
        )));
    }
    raw_blocks.push(read(&dir.join(format!("blocks/{RECENT_BLOCK}.bin")))?);
    let heights = (0..EARLY_BLOCKS).chain([RECENT_BLOCK]);
    let mut data = Data {
        ranges,
        blocks: Vec::new(),
        by_height: HashMap::new(),
        txs: HashMap::new(),
        scripts: HashMap::new(),
    };
    for (height, raw) in heights.zip(raw_blocks) {
        let block = known_block(&data, height, &raw)?;
        data.by_height.insert(height, data.blocks.len());
        for (pos, txid) in block.txids.iter().enumerate() {
            data.txs.insert(*txid, (data.blocks.len(), pos as u32));
        }
        data.blocks.push(block);
    }
    data.scripts = index(&data.blocks);
    Ok(data)
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::msg(format!("{}: {e}", path.display())))
}

/// A header file, checked to be one linked chain (each header names its predecessor's hash).
fn header_range(path: &Path, start: u32) -> Result<HeaderRange, Error> {
    let bytes = read(path)?;
    if bytes.len() % HEADER_SIZE != 0 || bytes.is_empty() {
        return Err(Error::msg(format!("{}: not whole headers", path.display())));
    }
    let headers: Vec<[u8; HEADER_SIZE]> = bytes
        .chunks_exact(HEADER_SIZE)
        .map(|c| c.try_into().expect("chunks_exact yields HEADER_SIZE bytes"))
        .collect();
    for (i, pair) in headers.windows(2).enumerate() {
        let parent = bitcoin::hashes::sha256d::Hash::hash(&pair[0]).to_byte_array();
        if pair[1][4..36] != parent {
            return Err(Error::msg(format!(
                "{}: header {} does not link to its parent",
                path.display(),
                start as usize + i + 1
            )));
        }
    }
    Ok(HeaderRange { start, headers })
}

/// The blocks of a `blk*.dat` file: magic, little-endian length, block; in file order.
fn blk_blocks(bytes: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let mut blocks = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let bad = || Error::msg("blocks_0_438.blk: bad framing");
        if rest.len() < 8 || rest[..4] != BLK_MAGIC {
            return Err(bad());
        }
        let len = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let block = rest.get(8..8 + len).ok_or_else(bad)?;
        blocks.push(block.to_vec());
        rest = &rest[8 + len..];
    }
    Ok(blocks)
}

/// Parses the block at `height` and checks it against the header chain and its merkle root,
/// so the server never serves a block that is not the real one.
fn known_block(data: &Data, height: u32, raw: &[u8]) -> Result<KnownBlock, Error> {
    let err = |what: &str| Error::msg(format!("block {height}: {what}"));
    let block: Block = deserialize(raw).map_err(|e| err(&e.to_string()))?;
    if data.header(height).map(|h| &h[..]) != Some(&serialize(&block.header)[..]) {
        return Err(err("header differs from the header chain"));
    }
    if !block.check_merkle_root() {
        return Err(err("merkle root does not match its transactions"));
    }
    Ok(KnownBlock {
        height,
        hash: block.block_hash(),
        txids: block.txdata.iter().map(Transaction::compute_txid).collect(),
        txs: block.txdata,
    })
}

/// Builds the script index: a transaction is in a script's history if an output pays the
/// script or an input spends an output that paid it. Genesis is skipped, as Bitcoin Core
/// never indexes its coinbase (its output cannot be spent).
fn index(blocks: &[KnownBlock]) -> HashMap<ScriptKey, ScriptRecord> {
    let mut scripts: HashMap<ScriptKey, ScriptRecord> = HashMap::new();
    let mut paid: HashMap<OutPoint, ScriptKey> = HashMap::new();
    let mut spent: HashSet<OutPoint> = HashSet::new();
    for (block, pos, txid, tx) in indexed_txs(blocks) {
        let entry = Entry {
            txid,
            height: block.height,
            pos,
        };
        for input in tx.input.iter().filter(|_| !tx.is_coinbase()) {
            // Only outputs of the known blocks can be resolved.
            if let Some(key) = paid.get(&input.previous_output) {
                add_entry(&mut scripts.entry(*key).or_default().history, entry);
                spent.insert(input.previous_output);
            }
        }
        for (vout, out) in tx.output.iter().enumerate() {
            let key = script_key(&out.script_pubkey);
            paid.insert(OutPoint::new(txid, vout as u32), key);
            add_entry(&mut scripts.entry(key).or_default().history, entry);
        }
    }
    // Second pass: only now is it known which outputs stay unspent.
    for (block, _, txid, tx) in indexed_txs(blocks) {
        for (vout, out) in tx.output.iter().enumerate() {
            let outpoint = OutPoint::new(txid, vout as u32);
            if !spent.contains(&outpoint) {
                let record = scripts.entry(paid[&outpoint]).or_default();
                record.utxos.push(Unspent {
                    txid,
                    vout: vout as u32,
                    height: block.height,
                    value: out.value.to_sat(),
                });
            }
        }
    }
    scripts
}

/// Every indexed transaction (all but genesis's) in chain order, with its block and position.
pub(super) fn indexed_txs(
    blocks: &[KnownBlock],
) -> impl Iterator<Item = (&KnownBlock, u32, Txid, &Transaction)> {
    blocks.iter().filter(|b| b.height > 0).flat_map(|b| {
        b.txids
            .iter()
            .zip(&b.txs)
            .enumerate()
            .map(move |(pos, (txid, tx))| (b, pos as u32, *txid, tx))
    })
}

/// Appends a row unless the transaction is already the last one (a tx paying a script twice,
/// or spending and paying it, is listed once).
fn add_entry(history: &mut Vec<Entry>, entry: Entry) {
    if history.last().map(|e| e.txid) != Some(entry.txid) {
        history.push(entry);
    }
}
