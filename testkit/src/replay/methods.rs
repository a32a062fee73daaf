//! JSON-RPC handling for the replay server: one client line in, at most one line out. Answers
//! as electrs (protocol "1.4") would, from [`Data`] only, with the server's lie applied to the
//! method it concerns.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::hashes::Hash;
use bitcoin::{TxMerkleNode, Txid};
use serde_json::{Value, json};

use super::data::{Data, Entry, HEADER_SIZE, ScriptKey, ScriptRecord, Unspent};
use super::{FORGED_HEIGHTS, ReplayLie, SERVER_VERSION};
use crate::chain::status_of;

/// Most headers `blockchain.block.headers` returns at once (electrs's and the spec's limit).
const MAX_HEADERS: usize = 2016;
/// The protocol version spoken.
const PROTOCOL: &str = "1.4";
/// Mainnet's genesis block hash.
const GENESIS: &str = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";

/// A JSON-RPC error answer.
struct RpcError {
    code: i64,
    message: String,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }

    fn params(message: impl Into<String>) -> RpcError {
        RpcError::new(-32602, message)
    }

    /// electrs's code for a request it understood but cannot serve (unknown height or tx).
    fn bad_request(message: impl Into<String>) -> RpcError {
        RpcError::new(1, message)
    }
}

type Answer = Result<Value, RpcError>;

/// What one connection's handler needs: the data, the lie, the lie counter, and the scripts
/// the connection subscribed to (for `unsubscribe`'s answer).
pub(super) struct Session<'a> {
    pub(super) data: &'static Data,
    pub(super) lie: ReplayLie,
    pub(super) tampered: &'a AtomicUsize,
    pub(super) subscribed: HashSet<ScriptKey>,
}

impl Session<'_> {
    /// The answer to one client line, if it needs one (notifications do not).
    pub(super) fn handle_line(&mut self, line: &[u8]) -> Option<Value> {
        let request: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(_) => {
                return Some(error_response(
                    Value::Null,
                    RpcError::new(-32700, "parse error"),
                ));
            }
        };
        match request {
            Value::Array(items) if items.is_empty() => Some(error_response(
                Value::Null,
                RpcError::new(-32600, "empty batch"),
            )),
            Value::Array(items) => {
                let answers: Vec<Value> = items
                    .iter()
                    .filter_map(|r| self.handle_request(r))
                    .collect();
                (!answers.is_empty()).then_some(Value::Array(answers))
            }
            single => self.handle_request(&single),
        }
    }

    fn handle_request(&mut self, request: &Value) -> Option<Value> {
        let Some(object) = request.as_object() else {
            return Some(error_response(
                Value::Null,
                RpcError::new(-32600, "invalid request"),
            ));
        };
        // A request without an id is a notification: never answered.
        let id = object.get("id")?.clone();
        let Some(method) = object.get("method").and_then(Value::as_str) else {
            return Some(error_response(id, RpcError::new(-32600, "missing method")));
        };
        let params = match object.get("params") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(params)) => &params[..],
            Some(_) => {
                return Some(error_response(
                    id,
                    RpcError::params("params must be an array"),
                ));
            }
        };
        Some(match self.call(method, params) {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err(e) => error_response(id, e),
        })
    }

    fn call(&mut self, method: &str, params: &[Value]) -> Answer {
        match method {
            "server.version" => version(args(params, 0, 2)?),
            "server.features" => args(params, 0, 0).map(|_| features()),
            "server.ping" => args(params, 0, 0).map(|_| Value::Null),
            "server.banner" => args(params, 0, 0).map(|_| json!(BANNER)),
            "server.donation_address" => args(params, 0, 0).map(|_| Value::Null),
            "server.peers.subscribe" => args(params, 0, 0).map(|_| json!([])),
            "blockchain.headers.subscribe" => args(params, 0, 0).and_then(|_| self.tip()),
            "blockchain.block.header" => self.block_header(args(params, 1, 2)?),
            "blockchain.block.headers" => self.block_headers(args(params, 2, 3)?),
            "blockchain.scripthash.subscribe" => self.subscribe(args(params, 1, 1)?),
            "blockchain.scripthash.unsubscribe" => self.unsubscribe(args(params, 1, 1)?),
            "blockchain.scripthash.get_history" => self.get_history(args(params, 1, 1)?),
            "blockchain.scripthash.listunspent" => self.listunspent(args(params, 1, 1)?),
            "blockchain.scripthash.get_balance" => self.get_balance(args(params, 1, 1)?),
            "blockchain.transaction.get" => self.transaction_get(args(params, 1, 2)?),
            "blockchain.transaction.get_merkle" => self.get_merkle(args(params, 2, 2)?),
            "blockchain.transaction.id_from_pos" => self.id_from_pos(args(params, 2, 3)?),
            "blockchain.estimatefee" => args(params, 1, 1).map(|_| json!(-1)),
            "blockchain.relayfee" => args(params, 0, 0).map(|_| json!(0.00001)),
            // Everything else, `blockchain.scripthash.get_mempool` included: electrs has no
            // such method.
            _ => Err(RpcError::new(
                -32601,
                format!("unknown method \"{method}\""),
            )),
        }
    }

    /// Counts one lie told, and passes the answer through.
    fn lied<T>(&self, answer: T) -> T {
        self.tampered.fetch_add(1, Ordering::SeqCst);
        answer
    }

    fn tip(&self) -> Answer {
        let height = self.data.tip();
        let header = self.header_hex(height)?;
        Ok(json!({"height": height, "hex": header}))
    }

    fn block_header(&self, params: &[Value]) -> Answer {
        let height = u32_arg(&params[0], "height")?;
        no_cp_height(params.get(1))?;
        self.header_hex(height).map(Value::String)
    }

    fn block_headers(&self, params: &[Value]) -> Answer {
        let start = u32_arg(&params[0], "start_height")?;
        let count = u32_arg(&params[1], "count")?;
        no_cp_height(params.get(2))?;
        let count = (count as usize).min(MAX_HEADERS);
        let headers = match self.data.headers_from(start, count) {
            Some(headers) => headers,
            None => return Err(unknown_height(start)),
        };
        let hex: String = (start..)
            .zip(headers)
            .map(|(height, header)| self.served_header(height, header))
            .collect();
        Ok(json!({"count": headers.len(), "hex": hex, "max": MAX_HEADERS}))
    }

    fn header_hex(&self, height: u32) -> Result<String, RpcError> {
        let header = self
            .data
            .header(height)
            .ok_or_else(|| unknown_height(height))?;
        Ok(self.served_header(height, header))
    }

    /// A header as hex, forged if the lie is [`ReplayLie::ForgedOldHeader`] and the height is
    /// one of [`FORGED_HEIGHTS`]: the lowest byte of the nonce changed, so the header no
    /// longer hashes to what its child names (and almost surely misses its target).
    fn served_header(&self, height: u32, header: &[u8; HEADER_SIZE]) -> String {
        let mut header = *header;
        if self.lie == ReplayLie::ForgedOldHeader && FORGED_HEIGHTS.contains(&height) {
            header[76] ^= 0x01;
            self.lied(());
        }
        to_hex(&header)
    }

    fn record(
        &self,
        params: &[Value],
    ) -> Result<(ScriptKey, Option<&'static ScriptRecord>), RpcError> {
        let key = scripthash_arg(&params[0])?;
        Ok((key, self.data.scripts.get(&key)))
    }

    fn subscribe(&mut self, params: &[Value]) -> Answer {
        let (key, record) = self.record(params)?;
        self.subscribed.insert(key);
        let honest = status_of(&status_rows(history(record)));
        // Only the honest-status liar keeps the full history's status.
        let status = match self.lie {
            ReplayLie::HiddenEntryHonestStatus => honest.clone(),
            _ => status_of(&status_rows(&self.served_history(record, false))),
        };
        if status != honest {
            self.lied(());
        }
        Ok(json!(status))
    }

    fn unsubscribe(&mut self, params: &[Value]) -> Answer {
        let key = scripthash_arg(&params[0])?;
        Ok(json!(self.subscribed.remove(&key)))
    }

    fn get_history(&self, params: &[Value]) -> Answer {
        let (_, record) = self.record(params)?;
        let rows: Vec<Value> = self
            .served_history(record, true)
            .iter()
            .map(|e| json!({"tx_hash": e.txid.to_string(), "height": e.height}))
            .collect();
        Ok(Value::Array(rows))
    }

    fn listunspent(&self, params: &[Value]) -> Answer {
        let (_, record) = self.record(params)?;
        let rows: Vec<Value> = self
            .served_utxos(record, true)
            .iter()
            .map(|u| {
                json!({"tx_hash": u.txid.to_string(), "tx_pos": u.vout, "height": u.height, "value": u.value})
            })
            .collect();
        Ok(Value::Array(rows))
    }

    /// The sum of what `listunspent` serves, so the liars' balances match their lists.
    fn get_balance(&self, params: &[Value]) -> Answer {
        let (_, record) = self.record(params)?;
        let confirmed: u64 = self
            .served_utxos(record, false)
            .iter()
            .map(|u| u.value)
            .sum();
        Ok(json!({"confirmed": confirmed, "unconfirmed": 0}))
    }

    /// The history the lie serves for a script (`count`: whether a change counts as a lie told,
    /// false when only derived from, e.g. for a status).
    fn served_history(&self, record: Option<&ScriptRecord>, count: bool) -> Vec<Entry> {
        let honest = history(record);
        let mut rows = honest.to_vec();
        match self.lie {
            ReplayLie::HiddenEntryHonestStatus | ReplayLie::HiddenEntryMatchingStatus => {
                rows = rows.split_off(1.min(rows.len()));
            }
            ReplayLie::UnrelatedTxInserted => {
                if let Some(extra) = self.unrelated_tx(honest) {
                    let at =
                        rows.partition_point(|e| (e.height, e.pos) < (extra.height, extra.pos));
                    rows.insert(at, extra);
                }
            }
            ReplayLie::DuplicateTxid => {
                if let Some(&first) = rows.first() {
                    rows.insert(0, first);
                }
            }
            _ => {}
        }
        if count && rows != honest {
            self.lied(());
        }
        rows
    }

    /// A transaction of the block of one of `history`'s rows that is not in `history` (so it
    /// neither pays nor spends the script): the first such, in chain order.
    fn unrelated_tx(&self, history: &[Entry]) -> Option<Entry> {
        let ours: HashSet<Txid> = history.iter().map(|e| e.txid).collect();
        history.iter().find_map(|e| {
            let block = self.data.block(e.height)?;
            let (pos, txid) = block
                .txids
                .iter()
                .enumerate()
                .find(|(_, t)| !ours.contains(*t))?;
            Some(Entry {
                txid: *txid,
                height: e.height,
                pos: pos as u32,
            })
        })
    }

    /// The unspent outputs the lie serves for a script.
    fn served_utxos(&self, record: Option<&ScriptRecord>, count: bool) -> Vec<Unspent> {
        let honest = record.map_or(&[][..], |r| &r.utxos[..]);
        let mut rows = honest.to_vec();
        match self.lie {
            // The consistent liar also hides the outputs of the transaction it hides.
            ReplayLie::HiddenEntryMatchingStatus => {
                if let Some(hidden) = history(record).first() {
                    rows.retain(|u| u.txid != hidden.txid);
                }
            }
            ReplayLie::DuplicateOutpoint => {
                if let Some(&first) = rows.first() {
                    rows.insert(0, first);
                }
            }
            _ => {}
        }
        if count && rows != honest {
            self.lied(());
        }
        rows
    }

    fn transaction_get(&self, params: &[Value]) -> Answer {
        let txid = txid_arg(&params[0])?;
        if params.get(1).is_some_and(|v| v != &json!(false)) {
            return Err(RpcError::params("verbose transactions are not supported"));
        }
        let (block, pos) = self.data.tx(&txid).ok_or_else(|| unknown_tx(&txid))?;
        Ok(json!(serialize_hex(&block.txs[pos as usize])))
    }

    fn get_merkle(&self, params: &[Value]) -> Answer {
        let txid = txid_arg(&params[0])?;
        let height = u32_arg(&params[1], "height")?;
        let (block, pos) = self
            .data
            .tx(&txid)
            .filter(|(b, _)| b.height == height)
            .ok_or_else(|| RpcError::bad_request(format!("tx {txid} is not in block {height}")))?;
        let mut branch_pos = pos;
        if self.lie == ReplayLie::WrongPositionBranch {
            // Another position of the same block: the sibling, or the first one.
            let n = block.txids.len() as u32;
            branch_pos = if pos ^ 1 < n { pos ^ 1 } else { 0 };
            if branch_pos != pos {
                self.lied(());
            }
        }
        let merkle = branch(&block.txids, branch_pos as usize);
        Ok(json!({"block_height": height, "merkle": merkle, "pos": pos}))
    }

    fn id_from_pos(&self, params: &[Value]) -> Answer {
        let height = u32_arg(&params[0], "height")?;
        let pos = u32_arg(&params[1], "tx_pos")?;
        let merkle = match params.get(2) {
            None => false,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| RpcError::params("merkle must be a bool"))?,
        };
        let block = self
            .data
            .block(height)
            .ok_or_else(|| unknown_height(height))?;
        let txid = block.txids.get(pos as usize).ok_or_else(|| {
            RpcError::bad_request(format!("no tx at position {pos} of block {height}"))
        })?;
        Ok(match merkle {
            false => json!(txid.to_string()),
            true => {
                json!({"tx_hash": txid.to_string(), "merkle": branch(&block.txids, pos as usize)})
            }
        })
    }
}

const BANNER: &str = "ReplayServer: real mainnet headers 0-10236 and 822528-830592, \
                      blocks 0-438 and 830000; nothing else";

fn history(record: Option<&ScriptRecord>) -> &[Entry] {
    record.map_or(&[][..], |r| &r.history[..])
}

fn status_rows(rows: &[Entry]) -> Vec<(Txid, i64)> {
    rows.iter().map(|e| (e.txid, i64::from(e.height))).collect()
}

fn error_response(id: Value, e: RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": e.code, "message": e.message}})
}

/// The positional arguments, refused with -32602 unless there are `min..=max` of them (electrs
/// refuses extra arguments too).
fn args(params: &[Value], min: usize, max: usize) -> Result<&[Value], RpcError> {
    if params.len() < min || params.len() > max {
        return Err(RpcError::params(format!(
            "{} arguments given, {min} to {max} expected",
            params.len()
        )));
    }
    Ok(params)
}

/// `server.version(client_name, protocol_version)`: "1.4" if the client's version (a string)
/// or range (`[min, max]`) allows it, else error 1, as electrs.
fn version(params: &[Value]) -> Answer {
    let (min, max) = match params.get(1) {
        None => (PROTOCOL, PROTOCOL),
        Some(Value::String(v)) => (v.as_str(), v.as_str()),
        Some(Value::Array(range)) => match range.as_slice() {
            [Value::String(min), Value::String(max)] => (min.as_str(), max.as_str()),
            _ => {
                return Err(RpcError::params(
                    "protocol_version must be [min, max] strings",
                ));
            }
        },
        Some(_) => {
            return Err(RpcError::params(
                "protocol_version must be a string or [min, max]",
            ));
        }
    };
    let ours = [1, 4, 0, 0]; // PROTOCOL as a tuple
    match (version_tuple(min), version_tuple(max)) {
        (Some(lo), Some(hi)) if lo <= ours && ours <= hi => Ok(json!([SERVER_VERSION, PROTOCOL])),
        _ => Err(RpcError::bad_request(format!(
            "unsupported protocol version: {:?}",
            params.get(1)
        ))),
    }
}

/// "1.4" → [1, 4, 0, 0] (padded, so "1.4" and "1.4.0" compare equal).
fn version_tuple(v: &str) -> Option<[u32; 4]> {
    let mut out = [0; 4];
    for (i, part) in v.split('.').enumerate() {
        *out.get_mut(i)? = part.parse().ok()?;
    }
    Some(out)
}

fn features() -> Value {
    json!({
        "genesis_hash": GENESIS,
        "hosts": {},
        "protocol_min": PROTOCOL,
        "protocol_max": PROTOCOL,
        "hash_function": "sha256",
        "pruning": null,
        "server_version": SERVER_VERSION,
    })
}

/// electrs has no checkpoint proofs: a non-zero `cp_height` is refused with -32602.
fn no_cp_height(cp: Option<&Value>) -> Result<(), RpcError> {
    match cp.map(|v| u32_arg(v, "cp_height")).transpose()? {
        None | Some(0) => Ok(()),
        Some(_) => Err(RpcError::params("cp_height is not supported")),
    }
}

fn u32_arg(v: &Value, name: &str) -> Result<u32, RpcError> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| RpcError::params(format!("{name} must be a non-negative integer")))
}

/// A 64-hex-digit hash in display order, returned in internal (digest) order.
fn hash_arg(v: &Value, name: &str) -> Result<[u8; 32], RpcError> {
    let bad = || RpcError::params(format!("{name} must be 64 hex digits"));
    let s = v.as_str().filter(|s| s.len() == 64).ok_or_else(bad)?;
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
        let digits = std::str::from_utf8(pair).map_err(|_| bad())?;
        out[31 - i] = u8::from_str_radix(digits, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

fn scripthash_arg(v: &Value) -> Result<ScriptKey, RpcError> {
    hash_arg(v, "scripthash")
}

fn txid_arg(v: &Value) -> Result<Txid, RpcError> {
    hash_arg(v, "tx_hash").map(Txid::from_byte_array)
}

fn unknown_height(height: u32) -> RpcError {
    RpcError::bad_request(format!("height {height} is not known to the replay server"))
}

fn unknown_tx(txid: &Txid) -> RpcError {
    RpcError::bad_request(format!("tx {txid} is not known to the replay server"))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The merkle branch of position `pos` among `txids`: sibling hashes in display hex, deepest
/// first, an odd level's last node paired with itself (as Bitcoin's tree).
fn branch(txids: &[Txid], mut pos: usize) -> Vec<String> {
    let mut level: Vec<[u8; 32]> = txids.iter().map(|t| t.to_byte_array()).collect();
    let mut out = Vec::new();
    while level.len() > 1 {
        let sibling = level.get(pos ^ 1).unwrap_or(&level[pos]);
        out.push(TxMerkleNode::from_byte_array(*sibling).to_string());
        level = level
            .chunks(2)
            .map(|pair| {
                let mut both = [0u8; 64];
                both[..32].copy_from_slice(&pair[0]);
                both[32..].copy_from_slice(pair.get(1).unwrap_or(&pair[0]));
                bitcoin::hashes::sha256d::Hash::hash(&both).to_byte_array()
            })
            .collect();
        pos /= 2;
    }
    out
}

/// The answer (with its newline) to a request line longer than the server reads.
pub(super) fn too_long() -> String {
    let e = RpcError::new(-32600, "request line too long");
    format!("{}\n", error_response(Value::Null, e))
}
