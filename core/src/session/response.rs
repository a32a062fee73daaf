//! Typed decoding of results and notifications, from the raw JSON spans the session hands out.
//!
//! Nothing here allocates: lists are iterated element by element, strings stay borrowed.
//! Every decoder checks shapes strictly and returns [`BadResult`] on anything unexpected.

use core::fmt;

use serde::Deserialize;

use crate::hash::{BlockHash, MerkleNode, ScriptHash, Status, Txid};
use crate::header::HEADER_SIZE;
use crate::hex;
use crate::json::decode::{ArrayIter, ObjectIter};
use crate::rpc::ProtocolVersion;
use crate::script::TxHeight;

/// A result or notification did not have the documented shape.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BadResult;

impl fmt::Display for BadResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("result does not have the documented shape")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BadResult {}

fn parse<'a, T: Deserialize<'a>>(span: &'a [u8]) -> Result<T, BadResult> {
    crate::json::decode::from_span(span).map_err(|_| BadResult)
}

/// The value of `key` in the object `span`; missing is an error.
fn field<'a>(span: &'a [u8], key: &str) -> Result<&'a [u8], BadResult> {
    ObjectIter::field(span, key)
        .map_err(|_| BadResult)?
        .ok_or(BadResult)
}

fn header_from_hex(hex_str: &str) -> Result<[u8; HEADER_SIZE], BadResult> {
    hex::decode_array(hex_str.as_bytes()).map_err(|_| BadResult)
}

fn display_hash<T>(s: &str, f: impl FnOnce([u8; 32]) -> T) -> Result<T, BadResult> {
    let mut b = [0u8; 32];
    hex::decode_reversed_to_slice(s.as_bytes(), &mut b).map_err(|_| BadResult)?;
    Ok(f(b))
}

/// `server.version` → the negotiated version (`[software, version]`).
pub fn version_reply(result: &[u8]) -> Result<ProtocolVersion, BadResult> {
    let (_software, version): (&str, &str) = parse(result)?;
    ProtocolVersion::parse(version.as_bytes()).map_err(|_| BadResult)
}

#[derive(Deserialize)]
struct Features<'a> {
    #[serde(borrow)]
    genesis_hash: &'a str,
}

/// `server.features` → its `genesis_hash`.
pub fn features_genesis(result: &[u8]) -> Result<BlockHash, BadResult> {
    let f: Features<'_> = parse(result)?;
    display_hash(f.genesis_hash, BlockHash::from_byte_array)
}

#[derive(Deserialize)]
struct HeaderAtHeight<'a> {
    #[serde(borrow)]
    hex: &'a str,
    height: u32,
}

/// `blockchain.headers.subscribe` result → `(height, header)`.
pub fn headers_subscribe(result: &[u8]) -> Result<(u32, [u8; HEADER_SIZE]), BadResult> {
    let h: HeaderAtHeight<'_> = parse(result)?;
    Ok((h.height, header_from_hex(h.hex)?))
}

/// `blockchain.headers.subscribe` notification params (`[{"hex","height"}]`).
pub fn header_notification(params: &[u8]) -> Result<(u32, [u8; HEADER_SIZE]), BadResult> {
    let (h,): (HeaderAtHeight<'_>,) = parse(params)?;
    Ok((h.height, header_from_hex(h.hex)?))
}

/// Script notification params (`[scripthash, status | null]`, also at 1.7).
pub fn script_notification(params: &[u8]) -> Result<(ScriptHash, Option<Status>), BadResult> {
    let (hash, status): (&str, Option<&str>) = parse(params)?;
    let script_hash = display_hash(hash, ScriptHash::from_byte_array)?;
    Ok((script_hash, script_status(status)?))
}

fn script_status(status: Option<&str>) -> Result<Option<Status>, BadResult> {
    status
        .map(|s| Status::from_hex(s.as_bytes()).map_err(|_| BadResult))
        .transpose()
}

/// `…subscribe` result: the current status (`null` for no history).
pub fn subscribe_status(result: &[u8]) -> Result<Option<Status>, BadResult> {
    let status: Option<&str> = parse(result)?;
    script_status(status)
}

/// `blockchain.block.header` without a proof → the header.
pub fn block_header(result: &[u8]) -> Result<[u8; HEADER_SIZE], BadResult> {
    header_from_hex(parse(result)?)
}

/// A `cp_height` proof: header, branch (display order, deepest first) and root.
#[derive(Clone, Copy, Debug)]
pub struct HeaderProof<'a> {
    /// The proven header (for `block.headers`: the last one returned).
    pub header: Option<[u8; HEADER_SIZE]>,
    /// The branch, as a JSON array span of display-order hashes.
    pub branch: Branch<'a>,
    /// The checkpoint root.
    pub root: MerkleNode,
}

/// A JSON array of display-order hashes, decoded lazily.
#[derive(Clone, Copy, Debug)]
pub struct Branch<'a>(&'a [u8]);

impl<'a> Branch<'a> {
    fn new(span: &'a [u8]) -> Result<Branch<'a>, BadResult> {
        ArrayIter::new(span).map_err(|_| BadResult)?;
        Ok(Branch(span))
    }

    /// Number of hashes.
    pub fn len(&self) -> usize {
        ArrayIter::new(self.0).map_or(0, |i| i.len())
    }

    /// No hashes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The hashes, deepest first; an item that is not a 64-digit hex string yields `Err`.
    pub fn iter(&self) -> impl Iterator<Item = Result<MerkleNode, BadResult>> + 'a {
        ArrayIter::new(self.0).into_iter().flatten().map(|span| {
            let s: &str = parse(span)?;
            display_hash(s, MerkleNode::from_byte_array)
        })
    }
}

#[derive(Deserialize)]
struct HeaderWithProof<'a> {
    #[serde(borrow)]
    header: &'a str,
    #[serde(borrow)]
    root: &'a str,
}

/// `blockchain.block.header` with `cp_height` → header and proof.
pub fn block_header_proof(result: &'_ [u8]) -> Result<HeaderProof<'_>, BadResult> {
    let h: HeaderWithProof<'_> = parse(result)?;
    Ok(HeaderProof {
        header: Some(header_from_hex(h.header)?),
        branch: Branch::new(field(result, "branch")?)?,
        root: display_hash(h.root, MerkleNode::from_byte_array)?,
    })
}

/// The headers of a `blockchain.block.headers` result, in either form.
#[derive(Clone, Copy, Debug)]
pub struct BlockHeaders<'a> {
    /// How many headers were returned.
    pub count: u32,
    /// The server's maximum per request.
    pub max: u32,
    form: HeadersForm<'a>,
    /// The proof of the last header, when `cp_height` was given.
    pub proof: Option<(Branch<'a>, MerkleNode)>,
}

#[derive(Clone, Copy, Debug)]
enum HeadersForm<'a> {
    /// Below 1.6: one string of concatenated header hex.
    Hex(&'a [u8]),
    /// 1.6 and later: a list of header hex strings (a JSON array span).
    List(&'a [u8]),
}

/// `blockchain.block.headers` → the headers, accepting both `hex` and `headers` forms whatever
/// the negotiated version (PROTOCOL.md §4.6). The result object is walked once: it can be a
/// 512 KiB line.
pub fn block_headers(result: &'_ [u8]) -> Result<BlockHeaders<'_>, BadResult> {
    let (mut count, mut max, mut hex, mut list, mut branch, mut root) =
        (None, None, None, None, None, None);
    for (key, value) in ObjectIter::new(result).map_err(|_| BadResult)? {
        match key {
            b"count" => count = Some(value),
            b"max" => max = Some(value),
            b"hex" => hex = Some(value),
            b"headers" => list = Some(value),
            b"branch" => branch = Some(value),
            b"root" => root = Some(value),
            _ => {}
        }
    }
    let number = |span: Option<&[u8]>| -> Result<u32, BadResult> {
        let v = crate::json::decode::u64_of(span.ok_or(BadResult)?).map_err(|_| BadResult)?;
        u32::try_from(v).map_err(|_| BadResult)
    };
    let (count, max) = (number(count)?, number(max)?);
    let form = match (hex, list) {
        (Some(span), _) => {
            let s: &str = parse(span)?;
            if s.len() != count as usize * HEADER_SIZE * 2 {
                return Err(BadResult);
            }
            HeadersForm::Hex(s.as_bytes())
        }
        (None, Some(span)) => {
            let items = ArrayIter::new(span).map_err(|_| BadResult)?;
            if items.len() != count as usize {
                return Err(BadResult);
            }
            HeadersForm::List(span)
        }
        (None, None) => return Err(BadResult),
    };
    let proof = match (branch, root) {
        (Some(branch), Some(root)) => {
            let root: &str = parse(root)?;
            Some((
                Branch::new(branch)?,
                display_hash(root, MerkleNode::from_byte_array)?,
            ))
        }
        _ => None,
    };
    Ok(BlockHeaders {
        count,
        max,
        form,
        proof,
    })
}

impl<'a> BlockHeaders<'a> {
    /// Each header, decoded (a list whose length differs from `count` was refused by
    /// [`block_headers`]).
    pub fn headers(&self) -> impl Iterator<Item = Result<[u8; HEADER_SIZE], BadResult>> + 'a {
        let (hex_form, list) = match self.form {
            HeadersForm::Hex(h) => (Some(h.chunks_exact(HEADER_SIZE * 2)), None),
            HeadersForm::List(l) => (None, ArrayIter::new(l).ok()),
        };
        let from_hex = hex_form.into_iter().flatten().map(header_from_hex_bytes);
        let from_list = list.into_iter().flatten().map(|span| {
            let s: &str = parse(span)?;
            header_from_hex(s)
        });
        from_hex.chain(from_list)
    }
}

fn header_from_hex_bytes(h: &[u8]) -> Result<[u8; HEADER_SIZE], BadResult> {
    hex::decode_array(h).map_err(|_| BadResult)
}

/// One history row: a transaction touching the script, its height, and (mempool) its fee.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HistoryItem {
    /// The transaction.
    pub txid: Txid,
    /// Confirmed height, or one of the two mempool heights.
    pub height: TxHeight,
    /// Fee in satoshis (mempool rows only).
    pub fee: Option<u64>,
}

#[derive(Deserialize)]
struct RawHistoryItem<'a> {
    #[serde(borrow)]
    tx_hash: &'a str,
    height: i64,
    fee: Option<u64>,
}

/// The items of a `get_history`/`get_mempool` result: a list below 1.7, `{"history": [...]}`
/// from 1.7 (both accepted).
pub fn history(
    result: &'_ [u8],
) -> Result<impl Iterator<Item = Result<HistoryItem, BadResult>> + '_, BadResult> {
    let list = list_or_field(result, "history")?;
    let items = ArrayIter::new(list).map_err(|_| BadResult)?;
    Ok(items.map(|span| {
        let raw: RawHistoryItem<'_> = parse(span)?;
        Ok(HistoryItem {
            txid: display_hash(raw.tx_hash, Txid::from_byte_array)?,
            height: TxHeight::from_i64(raw.height).map_err(|_| BadResult)?,
            fee: raw.fee,
        })
    }))
}

/// An unspent output of a script.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Utxo {
    /// Funding transaction.
    pub txid: Txid,
    /// Output index.
    pub vout: u32,
    /// Confirmed height, or 0 for the mempool.
    pub height: u32,
    /// Value in satoshis (unverified for pre-segwit outputs until the funding tx is fetched).
    pub value: u64,
}

#[derive(Deserialize)]
struct RawUtxo<'a> {
    #[serde(borrow)]
    tx_hash: &'a str,
    tx_pos: u32,
    height: u32,
    value: u64,
}

/// The items of a `listunspent` result: a list below 1.7, `{"utxos": [...]}` from 1.7.
pub fn utxos(
    result: &'_ [u8],
) -> Result<impl Iterator<Item = Result<Utxo, BadResult>> + '_, BadResult> {
    let list = list_or_field(result, "utxos")?;
    let items = ArrayIter::new(list).map_err(|_| BadResult)?;
    Ok(items.map(|span| {
        let raw: RawUtxo<'_> = parse(span)?;
        Ok(Utxo {
            txid: display_hash(raw.tx_hash, Txid::from_byte_array)?,
            vout: raw.tx_pos,
            height: raw.height,
            value: raw.value,
        })
    }))
}

fn list_or_field<'a>(result: &'a [u8], key: &str) -> Result<&'a [u8], BadResult> {
    match result.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => Ok(result),
        Some(b'{') => field(result, key),
        _ => Err(BadResult),
    }
}

/// Confirmed and unconfirmed balance in satoshis (unverifiable: prefer verified history).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Deserialize)]
pub struct Balance {
    /// Sum of confirmed unspent outputs.
    pub confirmed: u64,
    /// Mempool delta; may be negative.
    pub unconfirmed: i64,
}

/// `get_balance` → the balance.
pub fn balance(result: &[u8]) -> Result<Balance, BadResult> {
    parse(result)
}

/// A transaction merkle proof: position, branch and the block height the server used.
#[derive(Clone, Copy, Debug)]
pub struct MerkleProof<'a> {
    /// Height of the block (what the server used; the request's height is a hint).
    pub block_height: u32,
    /// Position of the transaction in the block.
    pub pos: u32,
    /// Sibling hashes, deepest first.
    pub branch: Branch<'a>,
}

#[derive(Deserialize)]
struct RawMerkle {
    block_height: u32,
    pos: u32,
}

/// `blockchain.transaction.get_merkle` → the proof.
pub fn merkle_proof(result: &'_ [u8]) -> Result<MerkleProof<'_>, BadResult> {
    let raw: RawMerkle = parse(result)?;
    let branch = field(result, "merkle")?;
    Ok(MerkleProof {
        block_height: raw.block_height,
        pos: raw.pos,
        branch: Branch::new(branch)?,
    })
}

/// `blockchain.transaction.get` (raw form) → the transaction's hex digits (decode or stream
/// them into [`crate::tx::TxidHasher`]).
pub fn transaction_hex(result: &[u8]) -> Result<&[u8], BadResult> {
    let s: &str = parse(result)?;
    if !s.len().is_multiple_of(2) {
        return Err(BadResult);
    }
    Ok(s.as_bytes())
}

/// `blockchain.transaction.broadcast` → the txid the server returned. Compare it with the one
/// computed locally: some servers answer an HTML warning instead (PROTOCOL.md §2.4).
pub fn broadcast_txid(result: &[u8]) -> Result<Txid, BadResult> {
    let s: &str = parse(result)?;
    display_hash(s, Txid::from_byte_array)
}

/// `blockchain.transaction.id_from_pos` without merkle → the txid.
pub fn txid(result: &[u8]) -> Result<Txid, BadResult> {
    broadcast_txid(result)
}

/// `blockchain.estimatefee` / `blockchain.relayfee` → BTC per kvB, `None` for `-1` (no estimate).
pub fn fee_rate(result: &[u8]) -> Result<Option<f64>, BadResult> {
    let v: f64 = parse(result)?;
    if v < 0.0 {
        Ok(None)
    } else if v.is_finite() {
        Ok(Some(v))
    } else {
        Err(BadResult)
    }
}
