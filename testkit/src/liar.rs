//! A lying Electrum server: a man-in-the-middle in front of a real ElectrumX that rewrites the
//! server's answers according to a scripted [`Attack`], so tests can check that a client turns
//! every lie it can detect into a clear error.
//!
//! For each client connection the proxy opens a connection to the real server, forwards the
//! client's lines upstream unchanged (parsing them only to remember which request id asked for
//! which method), and passes each server line through the attack before writing it to the
//! client. Lines are newline-framed JSON; a line the proxy cannot parse, notifications and
//! batch replies are relayed unchanged. Only responses to the attack's method are touched, and
//! by default only the first one that the attack applies to (see [`Times`]);
//! [`LyingProxy::tampered`] counts the lies told, so a test can check that its attack fired.
//!
//! Threads and `std::net` only; it binds 127.0.0.1 and is stopped (every connection closed)
//! on drop.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use bitcoin::block::Header;
use bitcoin::consensus::encode::{deserialize, serialize};
use bitcoin::hashes::Hash;
use serde_json::{Value, json};

use crate::Error;

/// Length of the line [`Attack::OversizeLine`] sends: 3 MiB, more than any client should
/// buffer for one line (`electrum_spv::connection::MAX_LINE` is 2 MiB).
pub const OVERSIZE_LINE: usize = 3 << 20;
/// Nesting depth of the result [`Attack::DeepNesting`] sends.
pub const DEEP_NESTING: usize = 10_000;
/// The genesis hash [`Attack::WrongGenesis`] claims: Bitcoin mainnet's.
pub const MAINNET_GENESIS: &str =
    "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";
/// The reply [`Attack::BroadcastHtml`] sends instead of a txid, as some servers do for
/// clients whose name they dislike.
pub const HTML_WARNING: &str = "<html><body><h1>Warning</h1><p>Your client is out of date. \
     Please upgrade at <a href=\"https://phish.example/\">phish.example</a></p></body></html>";
/// Index of the header (within a `blockchain.block.headers` chunk) the header attacks break,
/// or the last one of a shorter chunk.
pub const BROKEN_HEADER_INDEX: usize = 10;

/// How the proxy lies. Each attack targets the responses to one method (named in the
/// variant's documentation, or given as a method name such as `"blockchain.block.header"`);
/// every other line is relayed unchanged. History and subscription attacks apply to both the
/// `blockchain.scripthash.*` (below 1.7) and `blockchain.scriptpubkey.*` (1.7) forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attack {
    /// Tell the truth: relay everything unchanged (a control for the others).
    Honest,
    /// `server.features`: `genesis_hash` replaced by Bitcoin mainnet's ([`MAINNET_GENESIS`]).
    WrongGenesis,
    /// `server.features`: `genesis_hash` removed.
    FeaturesWithoutGenesis,
    /// `server.version`: the reply claims protocol `"1.2"`, below what any client asks for.
    VersionOutOfRange,
    /// `server.version`: answered with an error object (code 1, "unsupported protocol
    /// version") instead of a result.
    VersionRefused,
    /// `server.version`: the version is not a number tuple (`"one.four"`).
    BadVersionReply,
    /// `blockchain.transaction.get_merkle`: one hex digit of the first branch hash flipped.
    /// Not applied to an empty branch.
    ForgedMerkleBranch,
    /// `blockchain.transaction.get_merkle`: `pos` changed (lowest bit flipped).
    WrongMerklePos,
    /// `blockchain.transaction.get_merkle`: `block_height` one higher than the true one.
    WrongMerkleHeight,
    /// `blockchain.headers.subscribe`: the tip reported this many blocks lower than it is (a
    /// server that stopped following the chain).
    StaleTip(u32),
    /// Script `subscribe`: the status replaced by another valid-looking 64-hex status (one
    /// digit flipped; for a `null` status, `"ab"` repeated).
    WrongStatus,
    /// Script `get_history`: the first entry dropped (the status, from `subscribe`, kept).
    /// Not applied to an empty history.
    HistoryMissingTx,
    /// Script `get_history`: the last two entries swapped, when both are mempool entries
    /// (height 0 or -1), breaking the canonical mempool order of protocol 1.6.
    HistoryNonCanonicalOrder,
    /// `blockchain.transaction.get`: the result replaced by this hex (another transaction).
    WrongRawTx(String),
    /// `blockchain.transaction.broadcast`: the response (result or error) replaced by the
    /// result [`HTML_WARNING`].
    BroadcastHtml,
    /// `blockchain.transaction.broadcast`: the response (result or error) replaced by a
    /// result that is the broadcast transaction's txid with one byte changed.
    BroadcastWrongTxid,
    /// `blockchain.block.headers`: the nonce of the header at [`BROKEN_HEADER_INDEX`]
    /// changed until its hash no longer meets its target (its link to the previous header is
    /// intact; the next header's link breaks).
    BadHeaderPow,
    /// `blockchain.block.headers`: one byte of the previous-block hash of the header at
    /// [`BROKEN_HEADER_INDEX`] flipped.
    BadHeaderLink,
    /// `blockchain.block.headers`: the `bits` of the header at [`BROKEN_HEADER_INDEX`]
    /// replaced by mainnet's proof-of-work limit (`0x1d00ffff`).
    BadHeaderBits,
    /// `blockchain.block.headers`: one header more than returned (the last repeated) and
    /// `count` raised to match, so the chunk is longer than the client asked for.
    HeaderChunkTooLong,
    /// Script `listunspent`: the first output's `value` multiplied by 1000 (the server's
    /// word for a value the client can read from the funding transaction instead).
    UtxoWrongValue,
    /// Script `listunspent`: the first output's `tx_pos` raised by one, naming an output of
    /// the funding transaction that does not pay the script (or does not exist).
    UtxoWrongOutput,
    /// Script `get_history`: the first entry's height sent as a string (`"113"`).
    WrongTypes,
    /// Script `get_history`: the first entry's height is `-5`.
    NegativeHeight,
    /// Script `get_history`: the first entry's height is 2^70, beyond every integer type a
    /// client might decode it into.
    HugeNumber,
    /// `blockchain.estimatefee`: the result is `1e400`, beyond `f64`.
    HugeFloat,
    /// The response to `method` replaced by an error object with this code and message.
    ServerError {
        /// The method whose response is replaced.
        method: &'static str,
        /// JSON-RPC error code.
        code: i64,
        /// Error message.
        message: &'static str,
    },
    /// The response to this method replaced by a line that is not JSON (an HTML error page).
    Garbage(&'static str),
    /// The result of the response to this method replaced by a string holding invalid UTF-8
    /// (bytes `ff fe`).
    InvalidUtf8(&'static str),
    /// The response to this method replaced by one [`OVERSIZE_LINE`] bytes long.
    OversizeLine(&'static str),
    /// The result of the response to this method replaced by arrays nested [`DEEP_NESTING`]
    /// levels deep.
    DeepNesting(&'static str),
    /// The response to this method sent with neither `result` nor `error`.
    MissingResult(&'static str),
    /// The response to this method sent with both a `result` and a non-null `error`.
    ResultAndError(&'static str),
    /// Before the response to this method, copies of it sent with ids the client has not
    /// sent (the next id, 999999999, -1 and `"x"`); then the real response.
    UnknownId(&'static str),
    /// The response to this method sent twice.
    DuplicateResponse(&'static str),
    /// The response to `method` sent one byte per second for `slow_for`, then the rest at
    /// once. Later responses on the connection wait behind it.
    Slowloris {
        /// The method whose response is slowed.
        method: &'static str,
        /// How long to dribble.
        slow_for: Duration,
    },
    /// The first half of the response to this method sent, then the connection closed.
    DisconnectMidResponse(&'static str),
}

/// How many responses an attack tampers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Times {
    /// The first response the attack applies to (on any connection of the proxy); everything
    /// after it is relayed unchanged.
    Once,
    /// Every response the attack applies to.
    Always,
}

/// A lying proxy in front of a real Electrum server; stopped on drop.
pub struct LyingProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    upstream: SocketAddr,
    attack: Attack,
    times: Times,
    tampered: AtomicUsize,
    stop: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LyingProxy {
    /// Starts a proxy on a free loopback port that relays to `upstream` and tells the lie
    /// `attack` once ([`Times::Once`]).
    pub fn start(upstream: SocketAddr, attack: Attack) -> Result<LyingProxy, Error> {
        LyingProxy::start_with(upstream, attack, Times::Once)
    }

    /// As [`LyingProxy::start`], lying `times`.
    pub fn start_with(
        upstream: SocketAddr,
        attack: Attack,
        times: Times,
    ) -> Result<LyingProxy, Error> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            attack,
            times,
            tampered: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let accept = shared.clone();
        thread::Builder::new()
            .name("liar-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if accept.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let shared = accept.clone();
                        let _ = thread::Builder::new()
                            .name("liar-conn".into())
                            .spawn(move || serve(conn, &shared));
                    }
                }
            })?;
        Ok(LyingProxy { addr, shared })
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The attack it carries out.
    pub fn attack(&self) -> &Attack {
        &self.shared.attack
    }

    /// How many responses it has tampered with so far.
    pub fn tampered(&self) -> usize {
        self.shared.tampered.load(Ordering::SeqCst)
    }
}

impl Drop for LyingProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for c in lock(&self.shared.conns).drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// A request the client sent, remembered until its response passes.
struct Asked {
    method: String,
    params: Value,
}

/// What to do with one server line.
enum Action {
    /// Write these bytes (whole lines, newlines included).
    Send(Vec<u8>),
    /// Write these bytes one per second for the duration, then the rest at once.
    Slow(Vec<u8>, Duration),
    /// Write these bytes, then close both connections.
    SendAndClose(Vec<u8>),
}

fn serve(client: TcpStream, shared: &Arc<Shared>) {
    if shared.stop.load(Ordering::SeqCst) {
        return;
    }
    let Ok(upstream) = TcpStream::connect(shared.upstream) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    {
        let mut conns = lock(&shared.conns);
        for s in [&client, &upstream] {
            if let Ok(c) = s.try_clone() {
                conns.push(c);
            }
        }
    }
    let asked: Arc<Mutex<HashMap<String, Asked>>> = Arc::new(Mutex::new(HashMap::new()));
    let (Ok(client_in), Ok(mut upstream_out)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let log = asked.clone();
    let up = thread::Builder::new()
        .name("liar-up".into())
        .spawn(move || {
            let mut reader = BufReader::new(client_in);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                remember(&line, &log);
                if upstream_out.write_all(&line).is_err() {
                    break;
                }
            }
            let _ = upstream_out.shutdown(Shutdown::Write);
        });
    relay_down(upstream, client, shared, &asked);
    if let Ok(up) = up {
        let _ = up.join();
    }
}

/// Records the id and method of each request in a client line.
fn remember(line: &[u8], asked: &Mutex<HashMap<String, Asked>>) {
    let Ok(v) = serde_json::from_slice::<Value>(line) else {
        return;
    };
    let items = match v {
        Value::Array(items) => items,
        single => vec![single],
    };
    let mut asked = lock(asked);
    for mut item in items {
        let (Some(id), Some(method)) = (item.get("id"), item.get("method").and_then(Value::as_str))
        else {
            continue;
        };
        let (id, method) = (id.to_string(), method.to_owned());
        let params = item
            .get_mut("params")
            .map(Value::take)
            .unwrap_or(Value::Null);
        asked.insert(id, Asked { method, params });
    }
}

/// Server to client: each line through the attack.
fn relay_down(
    upstream: TcpStream,
    mut client: TcpStream,
    shared: &Shared,
    asked: &Mutex<HashMap<String, Asked>>,
) {
    let mut reader = BufReader::new(upstream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let action = shared.rewrite(&line, asked);
        let ok = match action {
            Action::Send(bytes) => client.write_all(&bytes).is_ok(),
            Action::Slow(bytes, slow_for) => {
                let slow = usize::try_from(slow_for.as_secs()).unwrap_or(usize::MAX);
                let mut sent = 0;
                let mut ok = true;
                while sent < bytes.len() && sent < slow && ok {
                    if shared.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    ok = client.write_all(&bytes[sent..=sent]).is_ok();
                    sent += 1;
                    thread::sleep(Duration::from_secs(1));
                }
                ok && client.write_all(&bytes[sent..]).is_ok()
            }
            Action::SendAndClose(bytes) => {
                let _ = client.write_all(&bytes);
                let _ = client.flush();
                let _ = client.shutdown(Shutdown::Both);
                let _ = reader.get_ref().shutdown(Shutdown::Both);
                return;
            }
        };
        if !ok {
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Write);
}

impl Shared {
    /// What to send the client for one server line.
    fn rewrite(&self, line: &[u8], asked: &Mutex<HashMap<String, Asked>>) -> Action {
        let unchanged = || Action::Send(line.to_vec());
        let Ok(Value::Object(response)) = serde_json::from_slice::<Value>(line) else {
            return unchanged();
        };
        let Some(id) = response.get("id").filter(|id| !id.is_null()) else {
            return unchanged();
        };
        let Some(request) = lock(asked).remove(&id.to_string()) else {
            return unchanged();
        };
        if !self.attack.targets(&request.method)
            || (self.times == Times::Once && self.tampered.load(Ordering::SeqCst) > 0)
        {
            return unchanged();
        }
        match self.attack.apply(Value::Object(response), line, &request) {
            Some(action) => {
                self.tampered.fetch_add(1, Ordering::SeqCst);
                action
            }
            None => unchanged(),
        }
    }
}

const HISTORY: [&str; 2] = [
    "blockchain.scripthash.get_history",
    "blockchain.scriptpubkey.get_history",
];
const LISTUNSPENT: [&str; 2] = [
    "blockchain.scripthash.listunspent",
    "blockchain.scriptpubkey.listunspent",
];
const SUBSCRIBE: [&str; 2] = [
    "blockchain.scripthash.subscribe",
    "blockchain.scriptpubkey.subscribe",
];

/// Stands for raw JSON text spliced into a serialised message (numbers and bytes serde_json
/// cannot hold).
const RAW: &str = "\u{1}liar-raw\u{1}";

impl Attack {
    /// Whether responses to `method` are this attack's target.
    fn targets(&self, method: &str) -> bool {
        let one = |m: &str| m == method;
        match self {
            Attack::Honest => false,
            Attack::WrongGenesis | Attack::FeaturesWithoutGenesis => one("server.features"),
            Attack::VersionOutOfRange | Attack::VersionRefused | Attack::BadVersionReply => {
                one("server.version")
            }
            Attack::ForgedMerkleBranch | Attack::WrongMerklePos | Attack::WrongMerkleHeight => {
                one("blockchain.transaction.get_merkle")
            }
            Attack::WrongStatus => SUBSCRIBE.contains(&method),
            Attack::StaleTip(_) => one("blockchain.headers.subscribe"),
            Attack::HistoryMissingTx
            | Attack::HistoryNonCanonicalOrder
            | Attack::WrongTypes
            | Attack::NegativeHeight
            | Attack::HugeNumber => HISTORY.contains(&method),
            Attack::UtxoWrongValue | Attack::UtxoWrongOutput => LISTUNSPENT.contains(&method),
            Attack::WrongRawTx(_) => one("blockchain.transaction.get"),
            Attack::BroadcastHtml | Attack::BroadcastWrongTxid => {
                one("blockchain.transaction.broadcast")
            }
            Attack::BadHeaderPow
            | Attack::BadHeaderLink
            | Attack::BadHeaderBits
            | Attack::HeaderChunkTooLong => one("blockchain.block.headers"),
            Attack::HugeFloat => one("blockchain.estimatefee"),
            Attack::ServerError { method: m, .. }
            | Attack::Slowloris { method: m, .. }
            | Attack::Garbage(m)
            | Attack::InvalidUtf8(m)
            | Attack::OversizeLine(m)
            | Attack::DeepNesting(m)
            | Attack::MissingResult(m)
            | Attack::ResultAndError(m)
            | Attack::UnknownId(m)
            | Attack::DuplicateResponse(m)
            | Attack::DisconnectMidResponse(m) => one(m),
        }
    }

    /// The lie told for one response (`None`: this response does not lend itself to it, and
    /// is relayed unchanged).
    fn apply(&self, mut response: Value, line: &[u8], request: &Asked) -> Option<Action> {
        let send = |v: &Value| Some(Action::Send(encode(v, None)));
        let result = response.get_mut("result");
        match self {
            Attack::Honest => None,
            Attack::WrongGenesis => {
                *result?.get_mut("genesis_hash")? = json!(MAINNET_GENESIS);
                send(&response)
            }
            Attack::FeaturesWithoutGenesis => {
                result?.as_object_mut()?.remove("genesis_hash")?;
                send(&response)
            }
            Attack::VersionOutOfRange => {
                let software = result
                    .as_ref()?
                    .get(0)
                    .cloned()
                    .unwrap_or(json!("ElectrumX"));
                *result? = json!([software, "1.2"]);
                send(&response)
            }
            Attack::VersionRefused => {
                let error = json!({"code": 1, "message": "unsupported protocol version: 1.4"});
                send(&with_error(response, error))
            }
            Attack::BadVersionReply => {
                *result? = json!(["ElectrumX 2.0.0", "one.four"]);
                send(&response)
            }
            Attack::ForgedMerkleBranch => {
                let first = result?.get_mut("merkle")?.get_mut(0)?;
                *first = json!(flip_hex_digit(first.as_str()?));
                send(&response)
            }
            Attack::WrongMerklePos => {
                let pos = result?.get_mut("pos")?;
                *pos = json!(pos.as_u64()? ^ 1);
                send(&response)
            }
            Attack::WrongMerkleHeight => {
                let height = result?.get_mut("block_height")?;
                *height = json!(height.as_u64()? + 1);
                send(&response)
            }
            Attack::StaleTip(behind) => {
                let height = result?.get_mut("height")?;
                *height = json!(height.as_u64()?.checked_sub(u64::from(*behind))?);
                send(&response)
            }
            Attack::WrongStatus => {
                let status = result?;
                *status = match status.as_str() {
                    Some(s) => json!(flip_hex_digit(s)),
                    None => json!("ab".repeat(32)),
                };
                send(&response)
            }
            Attack::HistoryMissingTx => {
                let items = history_items(result?)?;
                if items.is_empty() {
                    return None;
                }
                items.remove(0);
                send(&response)
            }
            Attack::HistoryNonCanonicalOrder => {
                let items = history_items(result?)?;
                let n = items.len();
                let mempool = |v: &Value| {
                    v.get("height")
                        .and_then(Value::as_i64)
                        .is_some_and(|h| h <= 0)
                };
                if n < 2 || !mempool(&items[n - 1]) || !mempool(&items[n - 2]) {
                    return None;
                }
                items.swap(n - 1, n - 2);
                send(&response)
            }
            Attack::UtxoWrongValue | Attack::UtxoWrongOutput => {
                let result = result?;
                let items = match result.get_mut("utxos") {
                    Some(utxos) => utxos.as_array_mut()?,
                    None => result.as_array_mut()?,
                };
                let (key, change): (&str, fn(u64) -> u64) = match self {
                    Attack::UtxoWrongValue => ("value", |v| v.saturating_mul(1000)),
                    _ => ("tx_pos", |p| p + 1),
                };
                let field = items.first_mut()?.get_mut(key)?;
                *field = json!(change(field.as_u64()?));
                send(&response)
            }
            Attack::WrongRawTx(hex) => {
                *result? = json!(hex);
                send(&response)
            }
            Attack::BroadcastHtml => send(&with_result(response, json!(HTML_WARNING))),
            Attack::BroadcastWrongTxid => {
                let raw = hex_decode(request.params.get(0)?.as_str()?)?;
                let tx: bitcoin::Transaction = deserialize(&raw).ok()?;
                let mut txid = tx.compute_txid().to_byte_array();
                txid[0] ^= 1;
                let wrong = bitcoin::Txid::from_byte_array(txid);
                send(&with_result(response, json!(wrong.to_string())))
            }
            Attack::BadHeaderPow | Attack::BadHeaderLink | Attack::BadHeaderBits => {
                let mut headers = Headers::read(result.as_deref()?)?;
                let i = BROKEN_HEADER_INDEX.min(headers.list.len().checked_sub(1)?);
                let mut header: Header = deserialize(&headers.list[i]).ok()?;
                match self {
                    Attack::BadHeaderPow => {
                        while header.validate_pow(header.target()).is_ok() {
                            header.nonce = header.nonce.wrapping_add(1);
                        }
                    }
                    Attack::BadHeaderLink => {
                        let mut prev = header.prev_blockhash.to_byte_array();
                        prev[0] ^= 1;
                        header.prev_blockhash = bitcoin::BlockHash::from_byte_array(prev);
                    }
                    _ => header.bits = bitcoin::CompactTarget::from_consensus(0x1d00_ffff),
                }
                headers.list[i] = serialize(&header);
                headers.write(result?);
                send(&response)
            }
            Attack::HeaderChunkTooLong => {
                let mut headers = Headers::read(result.as_deref()?)?;
                let last = headers.list.last()?.clone();
                headers.list.push(last);
                headers.write(result?);
                send(&response)
            }
            Attack::WrongTypes | Attack::NegativeHeight | Attack::HugeNumber => {
                let first = history_items(result?)?.first_mut()?;
                let height = first.get_mut("height")?;
                *height = match self {
                    Attack::WrongTypes => json!(height.to_string()),
                    Attack::NegativeHeight => json!(-5),
                    _ => json!(RAW),
                };
                Some(Action::Send(encode(
                    &response,
                    Some(b"1180591620717411303424"),
                )))
            }
            Attack::HugeFloat => {
                *result? = json!(RAW);
                Some(Action::Send(encode(&response, Some(b"1e400"))))
            }
            Attack::ServerError { code, message, .. } => send(&with_error(
                response,
                json!({"code": code, "message": message}),
            )),
            Attack::Garbage(_) => Some(Action::Send(
                b"<html><head><title>502 Bad Gateway</title></head></html>\n".to_vec(),
            )),
            Attack::InvalidUtf8(_) => {
                let response = with_result(response, json!(RAW));
                Some(Action::Send(encode(&response, Some(b"\"\xff\xfe\""))))
            }
            Attack::OversizeLine(_) => {
                let response = with_result(response, json!(RAW));
                let mut raw = vec![b'0'; OVERSIZE_LINE];
                raw[0] = b'"';
                raw[OVERSIZE_LINE - 1] = b'"';
                Some(Action::Send(encode(&response, Some(&raw))))
            }
            Attack::DeepNesting(_) => {
                let response = with_result(response, json!(RAW));
                let mut raw = vec![b'['; DEEP_NESTING];
                raw.resize(2 * DEEP_NESTING, b']');
                Some(Action::Send(encode(&response, Some(&raw))))
            }
            Attack::MissingResult(_) => {
                let map = response.as_object_mut()?;
                map.remove("result");
                map.remove("error");
                send(&response)
            }
            Attack::ResultAndError(_) => {
                response.as_object_mut()?.insert(
                    "error".into(),
                    json!({"code": 1, "message": "both a result and an error"}),
                );
                send(&response)
            }
            Attack::UnknownId(_) => {
                let next = response.get("id")?.as_u64()?.wrapping_add(1);
                let mut out = Vec::new();
                for forged in [json!(next), json!(999_999_999u64), json!(-1), json!("x")] {
                    let mut copy = response.clone();
                    copy["id"] = forged;
                    out.extend(encode(&copy, None));
                }
                out.extend(terminated(line));
                Some(Action::Send(out))
            }
            Attack::DuplicateResponse(_) => {
                let mut out = terminated(line);
                out.extend(terminated(line));
                Some(Action::Send(out))
            }
            Attack::Slowloris { slow_for, .. } => Some(Action::Slow(terminated(line), *slow_for)),
            Attack::DisconnectMidResponse(_) => {
                Some(Action::SendAndClose(line[..line.len() / 2].to_vec()))
            }
        }
    }
}

/// `line` with exactly one newline at its end.
fn terminated(line: &[u8]) -> Vec<u8> {
    let mut out = line.to_vec();
    if out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    out
}

/// The message as one line; the string [`RAW`] (quoted) replaced by `raw`.
fn encode(v: &Value, raw: Option<&[u8]>) -> Vec<u8> {
    let mut out = serde_json::to_vec(v).expect("a JSON value serialises");
    if let Some(raw) = raw {
        let marker = serde_json::to_vec(&json!(RAW)).expect("a string serialises");
        if let Some(at) = out
            .windows(marker.len())
            .position(|w| w == marker.as_slice())
        {
            out.splice(at..at + marker.len(), raw.iter().copied());
        }
    }
    out.push(b'\n');
    out
}

/// The response with `result` set and any `error` removed.
fn with_result(mut response: Value, result: Value) -> Value {
    if let Some(map) = response.as_object_mut() {
        map.remove("error");
        map.insert("result".into(), result);
    }
    response
}

/// The response with `error` set and any `result` removed.
fn with_error(mut response: Value, error: Value) -> Value {
    if let Some(map) = response.as_object_mut() {
        map.remove("result");
        map.insert("error".into(), error);
    }
    response
}

/// The entries of a history result: a list (below 1.7) or `{"history": [...]}` (1.7).
fn history_items(result: &mut Value) -> Option<&mut Vec<Value>> {
    if result.is_object() {
        return result.get_mut("history")?.as_array_mut();
    }
    result.as_array_mut()
}

/// A `blockchain.block.headers` result, decoded: `hex` (concatenated, below 1.6) or
/// `headers` (a list, 1.6+).
struct Headers {
    list: Vec<Vec<u8>>,
    concatenated: bool,
}

impl Headers {
    fn read(result: &Value) -> Option<Headers> {
        if let Some(hex) = result.get("hex").and_then(Value::as_str) {
            let bytes = hex_decode(hex)?;
            let list = bytes.chunks(80).map(<[u8]>::to_vec).collect();
            return Some(Headers {
                list,
                concatenated: true,
            });
        }
        let list = result
            .get("headers")?
            .as_array()?
            .iter()
            .map(|h| hex_decode(h.as_str()?))
            .collect::<Option<_>>()?;
        Some(Headers {
            list,
            concatenated: false,
        })
    }

    /// Writes the headers (and a matching `count`) back into `result`.
    fn write(&self, result: &mut Value) {
        if self.concatenated {
            result["hex"] = json!(hex_encode(&self.list.concat()));
        } else {
            result["headers"] = json!(self.list.iter().map(|h| hex_encode(h)).collect::<Vec<_>>());
        }
        result["count"] = json!(self.list.len());
    }
}

/// `s` with its first hex digit changed (still lowercase hex).
fn flip_hex_digit(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    if let Some(c) = chars.first_mut() {
        let d = c.to_digit(16).unwrap_or(0) ^ 1;
        *c = char::from_digit(d, 16).unwrap_or('0');
    }
    chars.into_iter().collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
