//! Typed decoding of results and notifications, from the raw JSON spans the session hands out.
//!
//! Nothing here allocates: lists are iterated element by element, strings stay borrowed.
//! Every decoder checks shapes strictly and returns [`BadResult`] on anything unexpected.

use core::fmt;

use serde::Deserialize;

use crate::hash::{BlockHash, MerkleNode, ScriptHash, Status, Txid};
use crate::header::HEADER_SIZE;
use crate::hex;
use crate::json::cursor::{Cursor, Entry, Kind, Value, parse_i128};
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
    let mut cur = Cursor::new(result);
    if cur.next_entry() != Ok(Some(Entry::Open(Kind::Object))) {
        return Err(BadResult);
    }
    let [mut count, mut max, mut hex, mut list, mut branch, mut root] = [None; 6];
    let mut chunk: Option<usize> = None;
    while let Some((key, _)) = cur.next_key().map_err(|_| BadResult)? {
        let slot = match key {
            b"count" => &mut count,
            b"max" => &mut max,
            b"hex" => &mut hex,
            b"headers" => &mut list,
            b"branch" => &mut branch,
            b"root" => &mut root,
            _ => {
                cur.member_value().map_err(|_| BadResult)?;
                continue;
            }
        };
        if slot.is_some() {
            return Err(BadResult);
        }
        // ElectrumX sends `count` first: the headers can then be skipped by their size, and
        // are checked when `headers()` decodes them.
        let sized = match (key, chunk) {
            (b"hex", Some(n)) => cur.skip_sized_strings(None, n * HEADER_SIZE * 2),
            (b"headers", Some(n)) => cur.skip_sized_strings(Some(n), HEADER_SIZE * 2),
            _ => None,
        };
        *slot = Some(match sized {
            Some(v) => v,
            None => cur.member_value().map_err(|_| BadResult)?,
        });
        if key == b"count" {
            chunk = integer(&cur, count)
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n <= usize::from(u16::MAX));
        }
    }
    cur.expect_end().map_err(|_| BadResult)?;
    let number = |v: Option<Value>| -> Result<u32, BadResult> {
        u32::try_from(integer(&cur, v)?).map_err(|_| BadResult)
    };
    let (count, max) = (number(count)?, number(max)?);
    let form = match (hex, list) {
        (Some(v), _) => {
            let digits = string(&cur, Some(v))?;
            if digits.len() != count as usize * HEADER_SIZE * 2 {
                return Err(BadResult);
            }
            HeadersForm::Hex(digits)
        }
        (None, Some(v)) if v.kind == Kind::Array => HeadersForm::List(cur.span(v)),
        _ => return Err(BadResult),
    };
    let proof = match (branch, root) {
        (Some(branch), Some(root)) => Some((
            Branch::new(cur.span(branch))?,
            MerkleNode::from_byte_array(display_hash_value(&cur, Some(root))?),
        )),
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
    /// Each header, decoded, read from the result as the iterator advances. A header that is
    /// not 160 hex digits, or a list longer or shorter than `count`, yields `Err` (the last
    /// item).
    pub fn headers(&self) -> impl Iterator<Item = Result<[u8; HEADER_SIZE], BadResult>> + 'a {
        let (hex_form, list) = match self.form {
            HeadersForm::Hex(h) => (Some(h.chunks_exact(HEADER_SIZE * 2)), None),
            HeadersForm::List(l) => (
                None,
                list(l, b"", |cur| {
                    if let Some(header) = cur.fast_hex_element() {
                        return Ok(Some(header));
                    }
                    match element(cur)? {
                        Some(Entry::Scalar(v)) => hex::decode_array(string(cur, Some(v))?)
                            .map(Some)
                            .map_err(|_| BadResult),
                        Some(Entry::Open(_)) => Err(BadResult),
                        None => Ok(None),
                    }
                })
                .ok(),
            ),
        };
        let from_hex = hex_form
            .into_iter()
            .flatten()
            .map(|h| hex::decode_array(h).map_err(|_| BadResult));
        let from_list = list.into_iter().flatten();
        Counted {
            items: from_hex.chain(from_list),
            remaining: self.count,
            done: false,
        }
    }
}

/// Checks that an iterator yields exactly `remaining` items; the first error ends it.
struct Counted<I> {
    items: I,
    remaining: u32,
    done: bool,
}

impl<T, I: Iterator<Item = Result<T, BadResult>>> Iterator for Counted<I> {
    type Item = Result<T, BadResult>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match (self.items.next(), self.remaining) {
            (None, 0) => return None,
            (Some(Ok(x)), 1..) => {
                self.remaining -= 1;
                return Some(Ok(x));
            }
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(_)), 0) | (None, 1..) => Err(BadResult),
        };
        self.done = true;
        Some(item)
    }
}

/// The members `names` of the object element `entry` of a list.
fn element_fields<'a, const N: usize>(
    cur: &mut Cursor<'a>,
    entry: Entry,
    names: [&[u8]; N],
) -> Result<[Option<Value>; N], BadResult> {
    if entry != Entry::Open(Kind::Object) {
        return Err(BadResult);
    }
    cur.fields(names).map_err(|_| BadResult)
}

/// A present integer without fraction or exponent.
fn integer(cur: &Cursor<'_>, v: Option<Value>) -> Result<i128, BadResult> {
    match v {
        Some(v) if v.kind == Kind::Number => parse_i128(cur.span(v)).ok_or(BadResult),
        _ => Err(BadResult),
    }
}

/// The raw content of a present string.
fn string<'a>(cur: &Cursor<'a>, v: Option<Value>) -> Result<&'a [u8], BadResult> {
    match v {
        Some(v) if v.kind == Kind::String => Ok(cur.string_content(v)),
        _ => Err(BadResult),
    }
}

/// A present 64-digit display-order hash, in internal byte order.
fn display_hash_value(cur: &Cursor<'_>, v: Option<Value>) -> Result<[u8; 32], BadResult> {
    let mut out = [0u8; 32];
    hex::decode_reversed_to_slice(string(cur, v)?, &mut out).map_err(|_| BadResult)?;
    Ok(out)
}

/// The elements of a result list (`text` itself, or the array under `key` of a 1.7 object),
/// each read by `item` as the iterator advances (`Ok(None)`: the list has ended): one pass, no
/// counting pass first. The first error ends the iteration; after the last element the rest
/// of `text` is validated.
fn list<'a, T: 'a, F>(
    text: &'a [u8],
    key: &[u8],
    item: F,
) -> Result<impl Iterator<Item = Result<T, BadResult>> + 'a, BadResult>
where
    F: FnMut(&mut Cursor<'a>) -> Result<Option<T>, BadResult> + 'a,
{
    let cur = Cursor::into_list(text, key)
        .ok()
        .flatten()
        .ok_or(BadResult)?;
    let mut state = Some((cur, item));
    Ok(core::iter::from_fn(move || {
        let (cur, item) = state.as_mut()?;
        let r = match item(cur) {
            Ok(Some(x)) => return Some(Ok(x)),
            Ok(None) => cur.finish_list().map_err(|_| BadResult).err().map(Err),
            Err(e) => Some(Err(e)),
        };
        state = None;
        r
    }))
}

/// The next element of a list on the general path; `None` at its end.
fn element(cur: &mut Cursor<'_>) -> Result<Option<Entry>, BadResult> {
    cur.next_entry().map_err(|_| BadResult)
}

/// Reads an object element of a list whose members are all read by `member` on the fast lane
/// (returning `None` for anything unusual); `None` with the cursor unchanged otherwise.
fn fast_object<'a>(
    cur: &mut Cursor<'a>,
    mut member: impl FnMut(&mut Cursor<'a>, &[u8]) -> Option<()>,
) -> Option<()> {
    let saved = cur.clone();
    let mut read = || {
        cur.fast_open_object_element()?;
        let mut first = true;
        loop {
            let key = cur.fast_key(first)?;
            member(cur, key)?;
            if cur.fast_object_end()? {
                return Some(());
            }
            first = false;
        }
    };
    let done = read();
    if done.is_none() {
        *cur = saved;
    }
    done
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

/// The items of a `get_history`/`get_mempool` result: a list below 1.7, `{"history": [...]}`
/// from 1.7 (both accepted). Read in one pass as the iterator advances; the first malformed
/// item is the last one yielded.
pub fn history(
    result: &'_ [u8],
) -> Result<impl Iterator<Item = Result<HistoryItem, BadResult>> + '_, BadResult> {
    list(result, b"history", |cur| {
        let (mut txid, mut height, mut fee) = (None, None, None);
        let fast = fast_object(cur, |cur, key| {
            match key {
                b"tx_hash" if txid.is_none() => txid = Some(cur.fast_hash_value()?),
                b"height" if height.is_none() => height = Some(cur.fast_int_value()?),
                b"fee" if fee.is_none() => {
                    fee = Some(match cur.fast_null_value() {
                        Some(()) => None,
                        None => Some(u64::try_from(cur.fast_int_value()?).ok()?),
                    })
                }
                _ => return None,
            }
            Some(())
        });
        if fast.is_some() {
            let item = HistoryItem {
                txid: Txid::from_byte_array(txid.ok_or(BadResult)?),
                height: TxHeight::from_i64(height.ok_or(BadResult)?).map_err(|_| BadResult)?,
                fee: fee.flatten(),
            };
            return Ok(Some(item));
        }
        let Some(entry) = element(cur)? else {
            return Ok(None);
        };
        let [txid, height, fee] = element_fields(cur, entry, [b"tx_hash", b"height", b"fee"])?;
        let height = i64::try_from(integer(cur, height)?).map_err(|_| BadResult)?;
        Ok(Some(HistoryItem {
            txid: Txid::from_byte_array(display_hash_value(cur, txid)?),
            height: TxHeight::from_i64(height).map_err(|_| BadResult)?,
            fee: match fee {
                Some(v) if v.kind == Kind::Null => None,
                Some(v) => Some(u64::try_from(integer(cur, Some(v))?).map_err(|_| BadResult)?),
                None => None,
            },
        }))
    })
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

/// The items of a `listunspent` result: a list below 1.7, `{"utxos": [...]}` from 1.7. Read
/// in one pass like [`history`].
pub fn utxos(
    result: &'_ [u8],
) -> Result<impl Iterator<Item = Result<Utxo, BadResult>> + '_, BadResult> {
    list(result, b"utxos", |cur| {
        let Some(entry) = element(cur)? else {
            return Ok(None);
        };
        let [txid, vout, height, value] =
            element_fields(cur, entry, [b"tx_hash", b"tx_pos", b"height", b"value"])?;
        let int = |v| integer(cur, v);
        Ok(Some(Utxo {
            txid: Txid::from_byte_array(display_hash_value(cur, txid)?),
            vout: u32::try_from(int(vout)?).map_err(|_| BadResult)?,
            height: u32::try_from(int(height)?).map_err(|_| BadResult)?,
            value: u64::try_from(int(value)?).map_err(|_| BadResult)?,
        }))
    })
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

/// `blockchain.transaction.id_from_pos` without merkle → the txid: a plain string, or the
/// object `{"tx_hash": …}` that electrs <= 0.11.1 answers even when merkle is false (INTEROP
/// row 11; a `merkle` member beside it is ignored).
pub fn txid(result: &[u8]) -> Result<Txid, BadResult> {
    if let Ok(txid) = broadcast_txid(result) {
        return Ok(txid);
    }
    let hash = field(result, "tx_hash")?;
    let s: &str = parse(hash)?;
    display_hash(s, Txid::from_byte_array)
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
