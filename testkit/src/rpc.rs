//! The stand-in bitcoind: a bitcoind-compatible JSON-RPC server (HTTP/1.1, keep-alive,
//! batches) over the kit's [`Chain`], plus the control API tests drive it with.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use bitcoin::block::Header;
use bitcoin::consensus::encode::{deserialize, serialize, serialize_hex};
use bitcoin::{Address, Amount, Block, BlockHash, Network, OutPoint, Script, Transaction, Txid};
use electrum_spv_core::p2p::Magic;
use serde_json::{Value, json};

use crate::Error;
use crate::chain::{Balance, Chain, ReorgTxs, SendSpec, TxLocation, Utxo, block_size};
use crate::daemon_p2p::DaemonP2p;

/// Version reported by `getnetworkinfo`: Bitcoin Core 31.0.0 (`major * 10000 + minor * 100 +
/// rev`); ElectrumX 2.0 refuses to start below 310000.
pub const DAEMON_VERSION: u64 = 310_000;
/// Fee rate returned by `estimatesmartfee`, in BTC/kvB.
pub const ESTIMATED_FEERATE: f64 = 0.000_02;
/// Minimum relay fee reported by `getnetworkinfo` / `getmempoolinfo`, in BTC/kvB.
pub const RELAY_FEE: f64 = 0.000_01;

/// Every method the stand-in answers.
pub const METHODS: &[&str] = &[
    "getblockcount",
    "getbestblockhash",
    "getblockhash",
    "getblock",
    "getblockheader",
    "getblockchaininfo",
    "getnetworkinfo",
    "getindexinfo",
    "getrawmempool",
    "getmempoolinfo",
    "getmempoolentry",
    "getrawtransaction",
    "gettxout",
    "gettxspendingprevout",
    "estimatesmartfee",
    "sendrawtransaction",
    "testmempoolaccept",
    "submitpackage",
    "getconnectioncount",
    "uptime",
    "ping",
];

struct Shared {
    /// Shared with the P2P port ([`StandInBitcoind::serve_p2p`]).
    chain: Arc<Mutex<Chain>>,
    stop: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
    calls: Mutex<BTreeMap<String, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A bitcoind stand-in on a free 127.0.0.1 port, serving the JSON-RPC ElectrumX 2.0 uses
/// over a shared [`Chain`]. Stopped on drop.
pub struct StandInBitcoind {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
    p2p: Mutex<Option<DaemonP2p>>,
}

impl StandInBitcoind {
    /// Starts serving `chain` on a free loopback port.
    pub fn start(chain: Chain) -> Result<StandInBitcoind, Error> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            chain: Arc::new(Mutex::new(chain)),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            calls: Mutex::new(BTreeMap::new()),
        });
        let sh = shared.clone();
        let accept = std::thread::Builder::new()
            .name("standin-accept".into())
            .spawn(move || accept_loop(listener, sh))?;
        Ok(StandInBitcoind {
            shared,
            addr,
            accept: Some(accept),
            p2p: Mutex::new(None),
        })
    }

    /// Opens the P2P port (once; later calls return the same address) serving the chain to
    /// servers that read blocks over P2P, as electrs does (see `daemon_p2p`).
    pub fn serve_p2p(&self) -> Result<SocketAddr, Error> {
        let mut p2p = lock(&self.p2p);
        if let Some(p) = p2p.as_ref() {
            return Ok(p.addr());
        }
        let port = DaemonP2p::start(self.shared.chain.clone(), Magic::REGTEST)?;
        let addr = port.addr();
        *p2p = Some(port);
        Ok(addr)
    }

    /// How many blocks the P2P port served (0 if it was never opened).
    pub fn p2p_blocks_served(&self) -> u64 {
        lock(&self.p2p).as_ref().map_or(0, DaemonP2p::blocks_served)
    }

    /// The RPC address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The RPC URL with credentials, as ElectrumX's `DAEMON_URL` wants it (any credentials
    /// are accepted).
    pub fn url(&self) -> String {
        format!("http://user:pass@{}", self.addr)
    }

    /// Locks the chain for direct access (keep the guard short: the RPC threads wait on it).
    pub fn chain(&self) -> MutexGuard<'_, Chain> {
        lock(&self.shared.chain)
    }

    /// Mines `n` blocks (the first takes the whole mempool). Returns their hashes.
    pub fn mine(&self, n: usize) -> Vec<BlockHash> {
        self.chain().mine(n)
    }

    /// Mines one block holding the mempool, its coinbase paying `script` (see
    /// [`Chain::mine_to`]).
    pub fn mine_to(&self, script: &Script) -> BlockHash {
        self.chain().mine_to(script)
    }

    /// Pays `amount` to `to_script` from wallet `from_wallet` (index in
    /// [`Chain::wallets`]), with change; the transaction enters the mempool.
    pub fn send(
        &self,
        from_wallet: usize,
        to_script: &Script,
        amount: Amount,
    ) -> Result<Txid, Error> {
        self.chain()
            .send(SendSpec::new(from_wallet, to_script, amount))
    }

    /// Builds a transaction per `spec` and adds it to the mempool.
    pub fn send_spec(&self, spec: SendSpec) -> Result<Txid, Error> {
        self.chain().send(spec)
    }

    /// Builds and signs a transaction per `spec` without adding it anywhere (for broadcast
    /// tests).
    pub fn build_tx(&self, spec: SendSpec) -> Result<Transaction, Error> {
        self.chain().build_tx(&spec)
    }

    /// Replaces the last `depth` blocks by `depth + 1` empty ones, returning their
    /// transactions to the mempool. Returns the new block hashes.
    pub fn reorg(&self, depth: usize) -> Vec<BlockHash> {
        self.chain().reorg(depth, ReorgTxs::ToMempool)
    }

    /// As [`StandInBitcoind::reorg`], choosing what happens to the removed transactions.
    pub fn reorg_with(&self, depth: usize, txs: ReorgTxs) -> Vec<BlockHash> {
        self.chain().reorg(depth, txs)
    }

    /// Tip height and header.
    pub fn tip(&self) -> (u32, Header) {
        let c = self.chain();
        (c.height(), c.tip().header)
    }

    /// Expected Electrum history of `script` (see [`Chain::history`]).
    pub fn history(&self, script: &Script) -> Vec<(Txid, i64)> {
        self.chain().history(script)
    }

    /// Expected Electrum status of `script` (see [`Chain::status`]).
    pub fn status(&self, script: &Script) -> Option<String> {
        self.chain().status(script)
    }

    /// Expected Electrum balance of `script` (see [`Chain::balance`]).
    pub fn balance(&self, script: &Script) -> Balance {
        self.chain().balance(script)
    }

    /// Expected Electrum `listunspent` of `script` (see [`Chain::listunspent`]).
    pub fn listunspent(&self, script: &Script) -> Vec<Utxo> {
        self.chain().listunspent(script)
    }

    /// How many times each RPC method has been called (batch items counted one by one).
    pub fn calls(&self) -> BTreeMap<String, u64> {
        lock(&self.shared.calls).clone()
    }
}

impl Drop for StandInBitcoind {
    fn drop(&mut self) {
        lock(&self.p2p).take();
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for c in lock(&self.shared.conns).drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                if stream.set_nonblocking(false).is_err() {
                    continue;
                }
                if let Ok(clone) = stream.try_clone() {
                    lock(&shared.conns).push(clone);
                }
                let sh = shared.clone();
                let _ = std::thread::Builder::new()
                    .name("standin-conn".into())
                    .spawn(move || serve_conn(stream, sh));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Serves HTTP/1.1 requests on one keep-alive connection.
fn serve_conn(stream: TcpStream, shared: Arc<Shared>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if request_line.trim().is_empty() {
            continue;
        }
        let mut content_length = 0usize;
        let mut close = request_line.contains("HTTP/1.0");
        loop {
            let mut h = String::new();
            match reader.read_line(&mut h) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                let name = name.trim().to_ascii_lowercase();
                let value = value.trim();
                if name == "content-length" {
                    content_length = value.parse().unwrap_or(0);
                } else if name == "connection" {
                    close = value.eq_ignore_ascii_case("close");
                }
            }
        }
        let mut body = vec![0u8; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, reply) = if !request_line.starts_with("POST") {
            (
                405,
                json!({"result": null, "error": {"code": -32600, "message": "JSON-RPC requires POST"}, "id": null}),
            )
        } else {
            handle_body(&body, &shared)
        };
        let text = reply.to_string();
        let reason = match status {
            200 => "OK",
            404 => "Not Found",
            405 => "Method Not Allowed",
            _ => "Internal Server Error",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
            text.len(),
            if close { "close" } else { "keep-alive" }
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(text.as_bytes()).is_err()
        {
            return;
        }
        if close {
            return;
        }
    }
}

/// Answers one HTTP body: a request object or a batch array. Like bitcoind, a single
/// request that fails gets HTTP 500 (404 for an unknown method); a batch always gets 200.
fn handle_body(body: &[u8], shared: &Shared) -> (u16, Value) {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            return (
                500,
                json!({"result": null, "error": {"code": -32700, "message": "Parse error"}, "id": null}),
            );
        }
    };
    match parsed {
        Value::Array(items) => {
            let replies: Vec<Value> = items.iter().map(|r| handle_request(r, shared)).collect();
            (200, Value::Array(replies))
        }
        req => {
            let reply = handle_request(&req, shared);
            let status = match reply["error"]["code"].as_i64() {
                None => 200,
                Some(-32601) => 404,
                Some(_) => 500,
            };
            (status, reply)
        }
    }
}

fn handle_request(req: &Value, shared: &Shared) -> Value {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let method = req["method"].as_str().unwrap_or_default();
    *lock(&shared.calls).entry(method.to_owned()).or_default() += 1;
    let params = match req.get("params") {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(Value::Object(_)) => {
            let e = json!({"code": -32602, "message": "named parameters are not supported by the stand-in"});
            return json!({"result": null, "error": e, "id": id});
        }
        Some(_) => {
            let e = json!({"code": -32600, "message": "Params must be an array or object"});
            return json!({"result": null, "error": e, "id": id});
        }
    };
    let mut chain = lock(&shared.chain);
    match dispatch(method, &params, &mut chain) {
        Ok(result) => json!({"result": result, "error": null, "id": id}),
        Err(e) => json!({
            "result": null,
            "error": {"code": e.code.unwrap_or(-1), "message": e.message},
            "id": id,
        }),
    }
}

fn param_str<'a>(params: &'a [Value], i: usize, method: &str) -> Result<&'a str, Error> {
    params
        .get(i)
        .and_then(Value::as_str)
        .ok_or_else(|| usage(method))
}

fn usage(method: &str) -> Error {
    // bitcoind answers a wrong parameter count with its help text and RPC_MISC_ERROR (-1);
    // ElectrumX relies on this to probe methods (any code but -32601 means "available").
    Error::rpc(
        -1,
        &format!("{method}: wrong parameters (stand-in bitcoind)"),
    )
}

/// Verbosity flags arrive as booleans or integers.
fn param_level(params: &[Value], i: usize, default: u64) -> u64 {
    match params.get(i) {
        Some(Value::Bool(b)) => u64::from(*b),
        Some(Value::Number(n)) => n.as_u64().unwrap_or(default),
        _ => default,
    }
}

fn parse_hash<T: std::str::FromStr>(s: &str) -> Result<T, Error> {
    s.parse().map_err(|_| {
        Error::rpc(
            -8,
            &format!("parameter must be hexadecimal string (not '{s}') of length 64"),
        )
    })
}

fn btc(sat: u64) -> Value {
    json!(Amount::from_sat(sat).to_btc())
}

fn decode_tx(hex: &str) -> Result<Transaction, Error> {
    let bytes = hex_decode(hex).ok_or_else(|| Error::rpc(-22, "TX decode failed"))?;
    deserialize(&bytes).map_err(|_| {
        Error::rpc(
            -22,
            "TX decode failed. Make sure the tx has at least one input.",
        )
    })
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

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn dispatch(method: &str, params: &[Value], chain: &mut Chain) -> Result<Value, Error> {
    let height = chain.height();
    match method {
        "getblockcount" => Ok(json!(height)),
        "getbestblockhash" => Ok(json!(chain.tip().block_hash().to_string())),
        "getblockhash" => {
            let h = params
                .first()
                .and_then(Value::as_i64)
                .ok_or_else(|| usage(method))?;
            if h < 0 || h > i64::from(height) {
                return Err(Error::rpc(-8, "Block height out of range"));
            }
            Ok(json!(chain.blocks()[h as usize].block_hash().to_string()))
        }
        "getblock" => {
            let hash: BlockHash = parse_hash(param_str(params, 0, method)?)?;
            let h = chain
                .block_height(&hash)
                .ok_or_else(|| Error::rpc(-5, "Block not found"))?;
            let block = &chain.blocks()[h as usize];
            match param_level(params, 1, 1) {
                0 => Ok(json!(serialize_hex(block))),
                level => Ok(block_json(chain, h, block, level >= 2)),
            }
        }
        "getblockheader" => {
            let hash: BlockHash = parse_hash(param_str(params, 0, method)?)?;
            let h = chain
                .block_height(&hash)
                .ok_or_else(|| Error::rpc(-5, "Block not found"))?;
            let block = &chain.blocks()[h as usize];
            if param_level(params, 1, 1) == 0 {
                Ok(json!(serialize_hex(&block.header)))
            } else {
                Ok(header_json(chain, h))
            }
        }
        "getblockchaininfo" => {
            let tip = chain.tip();
            Ok(json!({
                "chain": "regtest",
                "blocks": height,
                "headers": height,
                "bestblockhash": tip.block_hash().to_string(),
                "bits": format!("{:08x}", tip.header.bits.to_consensus()),
                "target": tip.header.target().to_string(),
                "difficulty": tip.header.difficulty_float(),
                "time": tip.header.time,
                "mediantime": median_time_past(chain, height),
                "verificationprogress": 1,
                "initialblockdownload": false,
                "chainwork": format!("{:064x}", chain_work(chain)),
                "size_on_disk": 0,
                "pruned": false,
                "warnings": [],
            }))
        }
        "getnetworkinfo" => Ok(json!({
            "version": DAEMON_VERSION,
            "subversion": "/Satoshi:31.0.0(electrum-spv-testkit stand-in)/",
            "protocolversion": 70016,
            "localservices": "0000000000000c09",
            "localservicesnames": ["NETWORK", "WITNESS", "NETWORK_LIMITED", "P2P_V2"],
            "localrelay": true,
            "timeoffset": 0,
            "networkactive": true,
            "connections": 0,
            "connections_in": 0,
            "connections_out": 0,
            "networks": [],
            "relayfee": RELAY_FEE,
            "incrementalfee": RELAY_FEE,
            "localaddresses": [],
            "warnings": [],
        })),
        "getindexinfo" => {
            let entry = json!({"synced": true, "best_block_height": height});
            let mut all = serde_json::Map::new();
            for name in ["txindex", "txospenderindex"] {
                all.insert(name.to_owned(), entry.clone());
            }
            match params.first().and_then(Value::as_str) {
                Some(name) => Ok(all.get(name).map(|v| json!({name: v})).unwrap_or(json!({}))),
                None => Ok(Value::Object(all)),
            }
        }
        "getrawmempool" => {
            if param_level(params, 0, 0) == 0 {
                let ids: Vec<String> = chain
                    .mempool()
                    .iter()
                    .map(|t| t.compute_txid().to_string())
                    .collect();
                Ok(json!(ids))
            } else {
                let mut m = serde_json::Map::new();
                for tx in chain.mempool() {
                    m.insert(tx.compute_txid().to_string(), mempool_entry(chain, tx));
                }
                Ok(Value::Object(m))
            }
        }
        "getmempoolinfo" => {
            let bytes: usize = chain.mempool().iter().map(|t| t.vsize()).sum();
            let fees: u64 = chain.mempool().iter().map(|t| fee_of(chain, t)).sum();
            Ok(json!({
                "loaded": true,
                "size": chain.mempool().len(),
                "bytes": bytes,
                "usage": bytes * 4,
                "total_fee": Amount::from_sat(fees).to_btc(),
                "maxmempool": 300_000_000,
                "mempoolminfee": RELAY_FEE,
                "minrelaytxfee": RELAY_FEE,
                "incrementalrelayfee": RELAY_FEE,
                "unbroadcastcount": 0,
                "fullrbf": true,
            }))
        }
        "getmempoolentry" => {
            let txid: Txid = parse_hash(param_str(params, 0, method)?)?;
            let tx = chain
                .mempool()
                .iter()
                .find(|t| t.compute_txid() == txid)
                .ok_or_else(|| Error::rpc(-5, "Transaction not in mempool"))?;
            Ok(mempool_entry(chain, tx))
        }
        "getrawtransaction" => {
            let txid: Txid = parse_hash(param_str(params, 0, method)?)?;
            let (tx, loc) = chain.find_tx(&txid).ok_or_else(|| {
                Error::rpc(-5, "No such mempool or blockchain transaction. Use gettransaction for wallet transactions.")
            })?;
            if param_level(params, 1, 0) == 0 {
                Ok(json!(serialize_hex(tx)))
            } else {
                Ok(tx_json(chain, tx, Some(loc)))
            }
        }
        "gettxout" => {
            let txid: Txid = parse_hash(param_str(params, 0, method)?)?;
            let n = params
                .get(1)
                .and_then(Value::as_u64)
                .ok_or_else(|| usage(method))? as u32;
            let include_mempool = params.get(2).and_then(Value::as_bool).unwrap_or(true);
            let Some((tx, loc)) = chain.find_tx(&txid) else {
                return Ok(Value::Null);
            };
            let Some(out) = tx.output.get(n as usize) else {
                return Ok(Value::Null);
            };
            let op = OutPoint::new(txid, n);
            let confirmations = match loc {
                TxLocation::Block { height: h, .. } => height - h + 1,
                TxLocation::Mempool { .. } if include_mempool => 0,
                TxLocation::Mempool { .. } => return Ok(Value::Null),
            };
            if spender(chain, &op, include_mempool).is_some() {
                return Ok(Value::Null);
            }
            Ok(json!({
                "bestblock": chain.tip().block_hash().to_string(),
                "confirmations": confirmations,
                "value": Amount::from_sat(out.value.to_sat()).to_btc(),
                "scriptPubKey": spk_json(&out.script_pubkey),
                "coinbase": tx.is_coinbase(),
            }))
        }
        "gettxspendingprevout" => {
            let outpoints = params
                .first()
                .and_then(Value::as_array)
                .ok_or_else(|| usage(method))?;
            let mempool_only = params
                .get(1)
                .and_then(|o| o.get("mempool_only"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let mut out = Vec::new();
            for o in outpoints {
                let txid: Txid = parse_hash(o["txid"].as_str().ok_or_else(|| usage(method))?)?;
                let vout = o["vout"].as_u64().ok_or_else(|| usage(method))? as u32;
                let mut item = json!({"txid": txid.to_string(), "vout": vout});
                if let Some((sp, loc)) = spender(chain, &OutPoint::new(txid, vout), true) {
                    let confirmed_block = match loc {
                        TxLocation::Block { height: h, .. } => {
                            Some(chain.blocks()[h as usize].block_hash())
                        }
                        TxLocation::Mempool { .. } => None,
                    };
                    if !(mempool_only && confirmed_block.is_some()) {
                        item["spendingtxid"] = json!(sp.to_string());
                        if let Some(b) = confirmed_block {
                            item["blockhash"] = json!(b.to_string());
                        }
                    }
                }
                out.push(item);
            }
            Ok(json!(out))
        }
        "estimatesmartfee" => {
            let n = params
                .first()
                .and_then(Value::as_u64)
                .ok_or_else(|| usage(method))?;
            Ok(json!({"feerate": ESTIMATED_FEERATE, "blocks": n.clamp(1, 1008)}))
        }
        "sendrawtransaction" => {
            let tx = decode_tx(param_str(params, 0, method)?)?;
            Ok(json!(chain.accept(tx)?.to_string()))
        }
        "testmempoolaccept" => {
            let raws = params
                .first()
                .and_then(Value::as_array)
                .ok_or_else(|| usage(method))?;
            let mut out = Vec::new();
            for raw in raws {
                let tx = decode_tx(raw.as_str().ok_or_else(|| usage(method))?)?;
                let mut item = json!({
                    "txid": tx.compute_txid().to_string(),
                    "wtxid": tx.compute_wtxid().to_string(),
                });
                match chain.test_accept(&tx) {
                    Ok(()) => {
                        item["allowed"] = json!(true);
                        item["vsize"] = json!(tx.vsize());
                        item["fees"] = json!({"base": btc(fee_with_inputs(chain, &tx))});
                    }
                    Err(e) => {
                        item["allowed"] = json!(false);
                        item["reject-reason"] = json!(e.message);
                    }
                }
                out.push(item);
            }
            Ok(json!(out))
        }
        "submitpackage" => {
            let raws = params
                .first()
                .and_then(Value::as_array)
                .ok_or_else(|| usage(method))?;
            let txs = raws
                .iter()
                .map(|r| decode_tx(r.as_str().ok_or_else(|| usage(method))?))
                .collect::<Result<Vec<_>, _>>()?;
            let mut results = serde_json::Map::new();
            let mut msg = "success".to_owned();
            for tx in txs {
                let wtxid = tx.compute_wtxid().to_string();
                let txid = tx.compute_txid().to_string();
                let vsize = tx.vsize();
                let fee = fee_with_inputs(chain, &tx);
                match chain.accept(tx) {
                    Ok(_) => {
                        results.insert(
                            wtxid,
                            json!({"txid": txid, "vsize": vsize, "fees": {"base": btc(fee)}}),
                        );
                    }
                    Err(e) => {
                        msg = "transaction failed".to_owned();
                        results.insert(wtxid, json!({"txid": txid, "error": e.message}));
                    }
                }
            }
            Ok(json!({"package_msg": msg, "tx-results": results, "replaced-transactions": []}))
        }
        "getconnectioncount" => Ok(json!(0)),
        "uptime" => Ok(json!(1)),
        "ping" => Ok(Value::Null),
        _ => Err(Error::rpc(-32601, "Method not found")),
    }
}

fn spender(chain: &Chain, op: &OutPoint, include_mempool: bool) -> Option<(Txid, TxLocation)> {
    for (h, b) in chain.blocks().iter().enumerate() {
        for (pos, tx) in b.txdata.iter().enumerate().skip(1) {
            if tx.input.iter().any(|i| i.previous_output == *op) {
                return Some((
                    tx.compute_txid(),
                    TxLocation::Block {
                        height: h as u32,
                        pos,
                    },
                ));
            }
        }
    }
    if include_mempool {
        for (index, tx) in chain.mempool().iter().enumerate() {
            if tx.input.iter().any(|i| i.previous_output == *op) {
                return Some((tx.compute_txid(), TxLocation::Mempool { index }));
            }
        }
    }
    None
}

fn prevout_value(chain: &Chain, op: &OutPoint) -> Option<u64> {
    let (tx, _) = chain.find_tx(&op.txid)?;
    tx.output.get(op.vout as usize).map(|o| o.value.to_sat())
}

/// Fee of a transaction whose inputs are all known; 0 for a coinbase.
fn fee_with_inputs(chain: &Chain, tx: &Transaction) -> u64 {
    if tx.is_coinbase() {
        return 0;
    }
    let vin: u64 = tx
        .input
        .iter()
        .filter_map(|i| prevout_value(chain, &i.previous_output))
        .sum();
    vin.saturating_sub(tx.output.iter().map(|o| o.value.to_sat()).sum())
}

fn fee_of(chain: &Chain, tx: &Transaction) -> u64 {
    fee_with_inputs(chain, tx)
}

fn mempool_entry(chain: &Chain, tx: &Transaction) -> Value {
    let fee = fee_of(chain, tx);
    let ids: Vec<Txid> = chain.mempool().iter().map(|t| t.compute_txid()).collect();
    let depends: Vec<String> = tx
        .input
        .iter()
        .filter(|i| ids.contains(&i.previous_output.txid))
        .map(|i| i.previous_output.txid.to_string())
        .collect();
    let txid = tx.compute_txid();
    let spentby: Vec<String> = chain
        .mempool()
        .iter()
        .filter(|t| t.input.iter().any(|i| i.previous_output.txid == txid))
        .map(|t| t.compute_txid().to_string())
        .collect();
    json!({
        "vsize": tx.vsize(),
        "weight": tx.weight().to_wu(),
        "time": chain.tip().header.time,
        "height": chain.height(),
        "descendantcount": 1 + spentby.len(),
        "descendantsize": tx.vsize(),
        "ancestorcount": 1 + depends.len(),
        "ancestorsize": tx.vsize(),
        "wtxid": tx.compute_wtxid().to_string(),
        "fees": {"base": btc(fee), "modified": btc(fee), "ancestor": btc(fee), "descendant": btc(fee)},
        "depends": depends,
        "spentby": spentby,
        "bip125-replaceable": tx.is_explicitly_rbf(),
        "unbroadcast": false,
    })
}

fn spk_json(spk: &Script) -> Value {
    let kind = if spk.is_p2pkh() {
        "pubkeyhash"
    } else if spk.is_p2sh() {
        "scripthash"
    } else if spk.is_p2wpkh() {
        "witness_v0_keyhash"
    } else if spk.is_p2wsh() {
        "witness_v0_scripthash"
    } else if spk.is_p2tr() {
        "witness_v1_taproot"
    } else if spk.is_op_return() {
        "nulldata"
    } else if spk.is_p2pk() {
        "pubkey"
    } else {
        "nonstandard"
    };
    let mut v = json!({"asm": spk.to_asm_string(), "desc": "", "hex": hex_encode(spk.as_bytes()), "type": kind});
    if let Ok(addr) = Address::from_script(spk, Network::Regtest) {
        v["address"] = json!(addr.to_string());
    }
    v
}

fn tx_json(chain: &Chain, tx: &Transaction, loc: Option<TxLocation>) -> Value {
    let vin: Vec<Value> = tx
        .input
        .iter()
        .map(|i| {
            let mut v = if tx.is_coinbase() {
                json!({"coinbase": hex_encode(i.script_sig.as_bytes())})
            } else {
                json!({
                    "txid": i.previous_output.txid.to_string(),
                    "vout": i.previous_output.vout,
                    "scriptSig": {"asm": i.script_sig.to_asm_string(), "hex": hex_encode(i.script_sig.as_bytes())},
                })
            };
            if !i.witness.is_empty() {
                v["txinwitness"] = json!(i.witness.iter().map(hex_encode).collect::<Vec<_>>());
            }
            v["sequence"] = json!(i.sequence.0);
            v
        })
        .collect();
    let vout: Vec<Value> = tx
        .output
        .iter()
        .enumerate()
        .map(|(n, o)| json!({"value": Amount::from_sat(o.value.to_sat()).to_btc(), "n": n, "scriptPubKey": spk_json(&o.script_pubkey)}))
        .collect();
    let mut v = json!({
        "txid": tx.compute_txid().to_string(),
        "hash": tx.compute_wtxid().to_string(),
        "version": tx.version.0,
        "size": serialize(tx).len(),
        "vsize": tx.vsize(),
        "weight": tx.weight().to_wu(),
        "locktime": tx.lock_time.to_consensus_u32(),
        "vin": vin,
        "vout": vout,
        "hex": serialize_hex(tx),
    });
    if let Some(TxLocation::Block { height: h, .. }) = loc {
        let b = &chain.blocks()[h as usize];
        v["blockhash"] = json!(b.block_hash().to_string());
        v["confirmations"] = json!(chain.height() - h + 1);
        v["time"] = json!(b.header.time);
        v["blocktime"] = json!(b.header.time);
    }
    v
}

fn header_json(chain: &Chain, h: u32) -> Value {
    let b = &chain.blocks()[h as usize];
    let hd = &b.header;
    let mut v = json!({
        "hash": b.block_hash().to_string(),
        "confirmations": chain.height() - h + 1,
        "height": h,
        "version": hd.version.to_consensus(),
        "versionHex": format!("{:08x}", hd.version.to_consensus()),
        "merkleroot": hd.merkle_root.to_string(),
        "time": hd.time,
        "mediantime": median_time_past(chain, h),
        "nonce": hd.nonce,
        "bits": format!("{:08x}", hd.bits.to_consensus()),
        "target": hd.target().to_string(),
        "difficulty": hd.difficulty_float(),
        "chainwork": format!("{:064x}", (h as u128 + 1) * 2),
        "nTx": b.txdata.len(),
    });
    if h > 0 {
        v["previousblockhash"] = json!(hd.prev_blockhash.to_string());
    }
    if let Some(next) = chain.blocks().get(h as usize + 1) {
        v["nextblockhash"] = json!(next.block_hash().to_string());
    }
    v
}

fn block_json(chain: &Chain, h: u32, block: &Block, full_txs: bool) -> Value {
    let mut v = header_json(chain, h);
    v["strippedsize"] = json!(
        serialize(&block.header).len() + block.txdata.iter().map(|t| t.base_size()).sum::<usize>()
    );
    v["size"] = json!(block_size(block));
    v["weight"] = json!(block.weight().to_wu());
    v["tx"] = if full_txs {
        json!(
            block
                .txdata
                .iter()
                .map(|t| tx_json(chain, t, None))
                .collect::<Vec<_>>()
        )
    } else {
        json!(
            block
                .txdata
                .iter()
                .map(|t| t.compute_txid().to_string())
                .collect::<Vec<_>>()
        )
    };
    v
}

fn median_time_past(chain: &Chain, h: u32) -> u32 {
    let start = (h as usize + 1).saturating_sub(11);
    let mut times: Vec<u32> = chain.blocks()[start..=h as usize]
        .iter()
        .map(|b| b.header.time)
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

/// Regtest work per block at bits 0x207fffff is 2.
fn chain_work(chain: &Chain) -> u128 {
    (chain.height() as u128 + 1) * 2
}
