//! Installs and runs bcoin 1.0.2 (npm) full nodes on regtest, on 127.0.0.1: real Bitcoin P2P
//! peers for the P2P tests.
//!
//! * [`ensure_installed`]: installs bcoin once into `target/testkit-bcoin` (or `$BCOIN_DIR`).
//! * [`BcoinNode`]: one node (in-memory chain, its own process group, killed on drop) and its
//!   JSON-RPC.
//! * [`BcoinNet`]: nodes connected in a line (A-B-C...), a funded chain ([`BcoinNet::fund`]).
//! * [`Spender`]: legacy P2PKH transactions of the kit key, signed here.
//!
//! bcoin's regtest differs from Bitcoin Core's in ways the kit hides: its addresses use other
//! prefixes (P2PKH version byte `0x3c`, see [`bcoin_p2pkh_address`]), and its
//! `sendrawtransaction` returns the txid *before* the transaction is verified (it never
//! reports a rejection): use [`BcoinNode::wait_for_mempool`] to see it accepted.

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bitcoin::absolute::LockTime;
use bitcoin::consensus::encode::{deserialize, serialize_hex};
use bitcoin::hashes::{Hash, sha256};
use bitcoin::script::{Builder, PushBytesBuf};
use bitcoin::secp256k1::{All, Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version as TxVersion;
use bitcoin::{
    Amount, Block, BlockHash, CompressedPublicKey, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, Txid, Witness,
};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::Error;
use crate::install::{locked, run_quiet, tail};
use crate::process::GroupChild;

/// The bcoin version the kit installs.
pub const BCOIN_VERSION: &str = "1.0.2";
/// How long [`BcoinNode::start`] waits for the node's HTTP RPC to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`BcoinNet::line`] waits for every node to see its neighbours.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`BcoinNet`] waits for all nodes to agree on the tip after mining.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout of one JSON-RPC call (mining hundreds of blocks takes well under a second).
pub const RPC_TIMEOUT: Duration = Duration::from_secs(120);
/// Fee rate of [`Spender`] transactions in sat/vB (bcoin's minimum relay fee is 1 sat/vB).
pub const FEE_RATE_SAT_VB: u64 = 10;
/// Most outputs [`Spender::split`] makes in one transaction (stays far below the standard
/// weight limit).
pub const MAX_SPLIT_OUTPUTS: usize = 2500;
/// Most blocks [`BcoinNet::mine`] asks for in one `generatetoaddress`.
pub const MINE_CHUNK: u32 = 50;
/// Confirmations before a coinbase output may be spent (consensus rule).
pub const COINBASE_MATURITY: u32 = 100;
/// The height from which bcoin's regtest enforces segwit when its miner signals it (three
/// 144-block BIP9 periods).
pub const SEGWIT_HEIGHT: u32 = 432;
/// bcoin's regtest P2PKH address version byte (Bitcoin Core's regtest uses `0x6f`).
pub const BCOIN_REGTEST_P2PKH_PREFIX: u8 = 0x3c;

/// The install directory: `$BCOIN_DIR` if set, else `target/testkit-bcoin` under the
/// workspace root.
pub fn install_dir() -> PathBuf {
    if let Some(v) = std::env::var_os("BCOIN_DIR") {
        return PathBuf::from(v);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("target")
        .join("testkit-bcoin")
}

/// Makes sure bcoin 1.0.2 is installed in [`install_dir`], with the recipe of
/// `/work/shared/P2P.md`: `npm install --no-audit --no-fund --ignore-scripts bcoin@1.0.2
/// leveldown@6.1.1`, then removing `node_modules/bdb/node_modules/leveldown` (so `bdb` loads
/// leveldown 6 and its prebuilt binary), then `npm rebuild mrmr` (a small native module built
/// by node-gyp). Serialised across processes by an `flock` on `<dir>.lock`; a marker file
/// records a finished install. Checks that `node` and `npm` exist first. Returns the path of
/// `node_modules/bcoin/bin/node`.
pub fn ensure_installed() -> Result<PathBuf, Error> {
    let dir = install_dir();
    let bin = dir.join("node_modules/bcoin/bin/node");
    let marker = dir.join(".testkit-installed");
    if marker.exists() && bin.exists() {
        return Ok(bin);
    }
    let ctx = |what: &str, p: &Path, e: std::io::Error| {
        Error::msg(format!(
            "cannot install bcoin into {}: {what} {}: {e}",
            dir.display(),
            p.display()
        ))
    };
    check_tool("node")?;
    check_tool("npm")?;
    fs::create_dir_all(&dir).map_err(|e| ctx("create", &dir, e))?;
    locked(&dir.with_extension("lock"), || {
        if marker.exists() && bin.exists() {
            return Ok(bin.clone());
        }
        // A package.json of its own, so npm does not look for a project in parent
        // directories.
        let manifest = dir.join("package.json");
        if !manifest.exists() {
            fs::write(
                &manifest,
                "{\"name\":\"testkit-bcoin\",\"private\":true,\"version\":\"0.0.0\"}\n",
            )
            .map_err(|e| ctx("write", &manifest, e))?;
        }
        run_quiet(
            Command::new("npm").current_dir(&dir).args([
                "install",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                &format!("bcoin@{BCOIN_VERSION}"),
                "leveldown@6.1.1",
            ]),
            "npm install bcoin@1.0.2 leveldown@6.1.1 (needs the npm registry)",
        )?;
        let nested = dir.join("node_modules/bdb/node_modules/leveldown");
        if nested.exists() {
            fs::remove_dir_all(&nested).map_err(|e| ctx("remove", &nested, e))?;
        }
        run_quiet(
            Command::new("npm")
                .current_dir(&dir)
                .args(["rebuild", "mrmr"]),
            "npm rebuild mrmr (needs node-gyp's toolchain: python3, make, a C++ compiler)",
        )?;
        if !bin.exists() {
            return Err(Error::msg(format!(
                "npm installed bcoin but {} does not exist",
                bin.display()
            )));
        }
        fs::write(&marker, format!("bcoin@{BCOIN_VERSION}\n"))
            .map_err(|e| ctx("write", &marker, e))?;
        Ok(bin.clone())
    })
}

fn check_tool(tool: &str) -> Result<(), Error> {
    match Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(Error::msg(format!(
            "`{tool} --version` failed ({}); bcoin needs Node.js (>= 14) and npm",
            out.status
        ))),
        Err(e) => Err(Error::msg(format!(
            "cannot run `{tool}` ({e}); bcoin needs Node.js (>= 14) and npm on PATH \
             (on Debian: apt-get install nodejs npm)"
        ))),
    }
}

/// Ports are drawn below Linux's ephemeral range (32768-60999): the kernel hands those to
/// outgoing connections, which took a port between our check and bcoin's bind when tests ran
/// side by side.
const PORT_RANGE: std::ops::Range<u16> = 20_000..32_000;

/// A port of [`PORT_RANGE`] that binds now (bcoin binds it a moment later: a race that
/// [`STARTS`] attempts absorb).
fn free_port() -> Result<u16, Error> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let span = u64::from(PORT_RANGE.end - PORT_RANGE.start);
    let seed = u64::from(std::process::id()).wrapping_mul(7919);
    for _ in 0..span {
        let n = (seed + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = PORT_RANGE.start + u16::try_from(n).unwrap_or(0);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(Error::msg(format!("no free port in {PORT_RANGE:?}")))
}

/// Attempts to start a node or a line of nodes: a port taken between the check and bcoin's
/// bind makes a node exit at once; the next attempt draws other ports.
const STARTS: usize = 3;

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Reads one HTTP/1.1 response (status, body): `Content-Length`, chunked, or to EOF.
fn read_http_response(stream: TcpStream) -> Result<(u16, Vec<u8>), Error> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| Error::msg(format!("bad HTTP status line {line:?}")))?;
    let mut length = None;
    let mut chunked = false;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(Error::msg("HTTP response ended inside its headers"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| Error::msg(format!("bad Content-Length {value:?}")))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding")
                && value.eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size_hex = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| Error::msg(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
    }
    Ok((status, body))
}

static NODE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// One bcoin full node on regtest: in-memory chain and mempool, HTTP (JSON-RPC) and P2P on
/// 127.0.0.1, no worker processes, no wallet, its own process group, log in its temporary directory.
/// Dropping it kills the process group and removes the directory.
pub struct BcoinNode {
    child: GroupChild,
    dir: TempDir,
    http: SocketAddr,
    p2p: SocketAddr,
    api_key: String,
    name: String,
}

impl BcoinNode {
    /// Installs bcoin if needed ([`ensure_installed`]) and starts a node on free ports that
    /// connects only to `peers` (outbound; it accepts inbound connections from anyone). With
    /// no `peers` it makes no outbound connection (it is given `--only=127.0.0.1:1`, a closed
    /// port: a regtest node left to its seeds would dial 127.0.0.1:48444, possibly itself or
    /// another test's node). Waits (up to [`START_TIMEOUT`]) until its RPC answers.
    pub fn start(peers: &[SocketAddr]) -> Result<BcoinNode, Error> {
        let mut last = None;
        for _ in 0..STARTS {
            let p2p: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
            match BcoinNode::start_at(p2p, peers) {
                Ok(node) => return Ok(node),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::msg("bcoin did not start")))
    }

    /// As [`BcoinNode::start`], listening for P2P on `p2p` (which must be free).
    pub fn start_at(p2p: SocketAddr, peers: &[SocketAddr]) -> Result<BcoinNode, Error> {
        let mut node = BcoinNode::spawn(p2p, peers)?;
        node.wait_ready(START_TIMEOUT)?;
        Ok(node)
    }

    fn spawn(p2p: SocketAddr, peers: &[SocketAddr]) -> Result<BcoinNode, Error> {
        let bin = ensure_installed()?;
        let n = NODE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("bcoin-{}-{n}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix("testkit-bcoin-")
            .tempdir()?;
        let http: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let api_key = format!(
            "{:x}",
            sha256::Hash::hash(format!("{name}/{:?}", Instant::now()).as_bytes())
        );
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("bcoin.log"))?;
        let mut cmd = Command::new("node");
        cmd.arg(&bin)
            .arg("--network=regtest")
            .arg("--memory=true")
            .arg(format!("--prefix={}", dir.path().display()))
            .arg("--http-host=127.0.0.1")
            .arg(format!("--http-port={}", http.port()))
            .arg(format!("--api-key={api_key}"))
            .arg("--host=127.0.0.1")
            .arg(format!("--port={}", p2p.port()))
            .arg("--listen=true")
            .arg("--workers=false")
            // The wallet plugin would listen on the fixed regtest wallet port (48334).
            .arg("--no-wallet=true")
            .arg("--log-level=debug");
        if peers.is_empty() {
            // bcoin refuses `--max-outbound=0`; without `--only` it would dial its regtest
            // seed 127.0.0.1:48444 (itself, or another test's node). Port 1 (tcpmux) is
            // closed here: the node keeps trying and failing, and stays alone.
            cmd.arg("--only=127.0.0.1:1");
        } else {
            let only: Vec<String> = peers.iter().map(|p| p.to_string()).collect();
            cmd.arg(format!("--only={}", only.join(",")));
        }
        let child = GroupChild::spawn(
            cmd.current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log),
        )
        .map_err(|e| Error::msg(format!("cannot run node {}: {e}", bin.display())))?;
        Ok(BcoinNode {
            child,
            dir,
            http,
            p2p,
            api_key,
            name,
        })
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            let last = match self.rpc("getblockcount", json!([])) {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(self.error(&format!("RPC did not answer within {timeout:?} ({last})")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fails (with the log tail) if the node process has exited.
    pub fn check_alive(&mut self) -> Result<(), Error> {
        if let Some(status) = self.child.try_wait()? {
            return Err(self.error(&format!("exited ({status})")));
        }
        Ok(())
    }

    fn error(&self, what: &str) -> Error {
        Error::msg(format!(
            "bcoin node {} (p2p {}, http {}): {what}; log tail:\n{}",
            self.name,
            self.p2p,
            self.http,
            self.log_tail(3000)
        ))
    }

    /// The P2P address the node listens on.
    pub fn p2p_addr(&self) -> SocketAddr {
        self.p2p
    }

    /// The HTTP (JSON-RPC) address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// The API key (the HTTP basic-auth password; any user name).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The node's log file (its stdout and stderr, debug level).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("bcoin.log")
    }

    /// The last `n` bytes of the node's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        tail(&text, n).to_owned()
    }

    /// Calls a JSON-RPC method (HTTP POST with basic auth `x:API_KEY`, one connection per
    /// call). An RPC error becomes an [`Error`] with its code.
    pub fn rpc(&self, method: &str, params: Value) -> Result<Value, Error> {
        let body =
            json!({"jsonrpc": "1.0", "id": 1, "method": method, "params": params}).to_string();
        let ctx = |e: std::io::Error| Error::msg(format!("{method}: HTTP to {}: {e}", self.http));
        let mut stream =
            TcpStream::connect_timeout(&self.http, Duration::from_secs(5)).map_err(ctx)?;
        stream.set_read_timeout(Some(RPC_TIMEOUT)).map_err(ctx)?;
        stream.set_write_timeout(Some(RPC_TIMEOUT)).map_err(ctx)?;
        let auth = base64(format!("x:{}", self.api_key).as_bytes());
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {auth}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.http,
            body.len()
        );
        stream.write_all(request.as_bytes()).map_err(ctx)?;
        let (status, reply) = read_http_response(stream)
            .map_err(|e| Error::msg(format!("{method}: HTTP reply: {e}")))?;
        let reply: Value = match serde_json::from_slice(&reply) {
            Ok(v) => v,
            Err(_) => {
                return Err(Error::msg(format!(
                    "{method}: HTTP {status}: {}",
                    String::from_utf8_lossy(&reply[..reply.len().min(500)])
                )));
            }
        };
        match reply.get("error") {
            Some(e) if !e.is_null() => {
                let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
                let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
                Err(Error::rpc(code, &format!("{method}: {msg}")))
            }
            _ if status != 200 => Err(Error::msg(format!("{method}: HTTP {status}: {reply}"))),
            _ => Ok(reply.get("result").cloned().unwrap_or(Value::Null)),
        }
    }

    /// `generatetoaddress n addr` (addr in bcoin's regtest encoding, see
    /// [`bcoin_p2pkh_address`]): the hashes of the mined blocks.
    pub fn generate_to_address(&self, n: u32, addr: &str) -> Result<Vec<BlockHash>, Error> {
        let v = self.rpc("generatetoaddress", json!([n, addr]))?;
        let hashes = v
            .as_array()
            .ok_or_else(|| Error::msg(format!("generatetoaddress: not an array: {v}")))?;
        hashes.iter().map(parse_hash).collect()
    }

    /// `getblockhash h`.
    pub fn getblockhash(&self, height: u32) -> Result<BlockHash, Error> {
        parse_hash(&self.rpc("getblockhash", json!([height]))?)
    }

    /// `getblockcount`: the tip's height.
    pub fn getblockcount(&self) -> Result<u32, Error> {
        let v = self.rpc("getblockcount", json!([]))?;
        v.as_u64()
            .and_then(|h| u32::try_from(h).ok())
            .ok_or_else(|| Error::msg(format!("getblockcount: not a height: {v}")))
    }

    /// `getbestblockhash`.
    pub fn getbestblockhash(&self) -> Result<BlockHash, Error> {
        parse_hash(&self.rpc("getbestblockhash", json!([]))?)
    }

    /// `getblock hash false`: the block, decoded.
    pub fn getblock(&self, hash: &BlockHash) -> Result<Block, Error> {
        let v = self.rpc("getblock", json!([hash.to_string(), false]))?;
        let hex = v
            .as_str()
            .ok_or_else(|| Error::msg(format!("getblock: not a hex string: {v}")))?;
        let bytes = hex_to_bytes(hex)?;
        deserialize(&bytes).map_err(|e| Error::msg(format!("getblock: cannot decode block: {e}")))
    }

    /// `getrawmempool`: the txids in the node's mempool.
    pub fn getrawmempool(&self) -> Result<Vec<Txid>, Error> {
        let v = self.rpc("getrawmempool", json!([]))?;
        let ids = v
            .as_array()
            .ok_or_else(|| Error::msg(format!("getrawmempool: not an array: {v}")))?;
        ids.iter()
            .map(|t| {
                t.as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| Error::msg(format!("getrawmempool: bad txid {t}")))
            })
            .collect()
    }

    /// `sendrawtransaction hex`. bcoin answers with the txid at once and verifies later: a
    /// transaction it rejects is also answered with its txid (the rejection is only in its
    /// log). See [`BcoinNode::wait_for_mempool`].
    pub fn send_raw_transaction(&self, hex: &str) -> Result<Txid, Error> {
        let v = self.rpc("sendrawtransaction", json!([hex]))?;
        v.as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::msg(format!("sendrawtransaction: not a txid: {v}")))
    }

    /// [`BcoinNode::send_raw_transaction`] of `tx`'s serialization.
    pub fn send_tx(&self, tx: &Transaction) -> Result<Txid, Error> {
        self.send_raw_transaction(&serialize_hex(tx))
    }

    /// `getpeerinfo`: one object per connection (`addr`, `inbound`, `version`, `subver`, ...).
    pub fn getpeerinfo(&self) -> Result<Vec<Value>, Error> {
        match self.rpc("getpeerinfo", json!([]))? {
            Value::Array(a) => Ok(a),
            v => Err(Error::msg(format!("getpeerinfo: not an array: {v}"))),
        }
    }

    /// The P2P addresses of the node's outbound peers that finished the handshake.
    pub fn outbound_peers(&self) -> Result<Vec<SocketAddr>, Error> {
        Ok(self
            .getpeerinfo()?
            .iter()
            .filter(|p| p["inbound"] == json!(false) && p["version"].as_i64().unwrap_or(0) > 0)
            .filter_map(|p| p["addr"].as_str()?.parse().ok())
            .collect())
    }

    /// `clearbanned`: lifts every ban.
    pub fn clearbanned(&self) -> Result<(), Error> {
        self.rpc("clearbanned", json!([])).map(drop)
    }

    /// `addnode addr command` (`add`, `remove` or `onetry`).
    pub fn addnode(&self, addr: SocketAddr, command: &str) -> Result<(), Error> {
        self.rpc("addnode", json!([addr.to_string(), command]))
            .map(drop)
    }

    /// Waits until every txid of `txids` is in the node's mempool; fails after `timeout`
    /// saying how many are missing.
    pub fn wait_for_mempool(&mut self, txids: &[Txid], timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            let pool: std::collections::HashSet<Txid> = self.getrawmempool()?.into_iter().collect();
            let missing: Vec<&Txid> = txids.iter().filter(|t| !pool.contains(*t)).collect();
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::msg(format!(
                    "bcoin node {}: {} of {} transactions not in the mempool after {timeout:?} \
                     (first: {})",
                    self.name,
                    missing.len(),
                    txids.len(),
                    missing[0]
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the node's log contains `needle` (e.g. a rejection reason and txid: bcoin
    /// logs `Verification failure: <reason> (code=... score=... hash=<txid>)`); fails after
    /// `timeout`.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = fs::read_to_string(self.log_path()).unwrap_or_default();
            if text.contains(needle) {
                return Ok(());
            }
            self.check_alive()?;
            if Instant::now() >= deadline {
                return Err(self.error(&format!("log has no {needle:?} after {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the node now (SIGKILL to its process group).
    pub fn kill(&mut self) {
        self.child.kill();
    }
}

fn parse_hash(v: &Value) -> Result<BlockHash, Error> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::msg(format!("not a block hash: {v}")))
}

fn hex_to_bytes(s: &str) -> Result<Vec<u8>, Error> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return Err(Error::msg("odd-length or non-ASCII hex"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| Error::msg("invalid hex digit")))
        .collect()
}

/// bcoin nodes on regtest connected in a line: node `i` connects (`--only`) to nodes `i - 1`
/// and `i + 1` and to nothing else. Node 0 (A) is the one tests usually talk to.
pub struct BcoinNet {
    nodes: Vec<BcoinNode>,
}

/// The P2P addresses of node `i`'s neighbours in a line of nodes at `ports`.
fn neighbours(ports: &[SocketAddr], i: usize) -> Vec<SocketAddr> {
    let before = i.checked_sub(1).and_then(|j| ports.get(j));
    let after = ports.get(i + 1);
    before.into_iter().chain(after).copied().collect()
}

impl BcoinNet {
    /// Starts `n` nodes A-B-C... in a line, each answering RPC (not connected yet).
    fn spawn_line(n: usize) -> Result<BcoinNet, Error> {
        if n == 0 {
            return Err(Error::msg("BcoinNet::line needs at least one node"));
        }
        let ports: Vec<SocketAddr> = (0..n)
            .map(|_| Ok(([127, 0, 0, 1], free_port()?).into()))
            .collect::<Result<_, Error>>()?;
        let neighbours = |i: usize| neighbours(&ports, i);
        let mut nodes = Vec::with_capacity(n);
        for (i, &p2p) in ports.iter().enumerate() {
            nodes.push(BcoinNode::spawn(p2p, &neighbours(i))?);
        }
        let mut net = BcoinNet { nodes };
        for node in &mut net.nodes {
            node.wait_ready(START_TIMEOUT)?;
        }
        Ok(net)
    }

    /// Starts `n` nodes A-B-C... in a line (`--only`) and waits (up to [`CONNECT_TIMEOUT`])
    /// until every node has a handshaken outbound connection to each of its neighbours
    /// (re-dialling them with `addnode onetry` after 1 s, then every 5 s).
    ///
    /// # Errors
    /// Install, start (after three attempts) or connection failures, with log tails.
    pub fn line(n: usize) -> Result<BcoinNet, Error> {
        let mut started = Err(Error::msg("bcoin did not start"));
        for _ in 0..STARTS {
            started = BcoinNet::spawn_line(n);
            if started.is_ok() {
                break;
            }
        }
        let mut net = started?;
        let ports: Vec<SocketAddr> = net.nodes.iter().map(BcoinNode::p2p_addr).collect();
        let neighbours = |i: usize| neighbours(&ports, i);
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        // A node dials its neighbours at once, before later nodes listen; its retry comes
        // late, so re-dial missing links after 1 s and then every 5 s.
        let mut next_dial = Instant::now() + Duration::from_secs(1);
        loop {
            let mut missing = Vec::new();
            for (i, node) in net.nodes.iter_mut().enumerate() {
                node.check_alive()?;
                let have = node.outbound_peers()?;
                for want in neighbours(i) {
                    if !have.contains(&want) {
                        missing.push((i, want));
                    }
                }
            }
            if missing.is_empty() {
                return Ok(net);
            }
            if Instant::now() >= deadline {
                let (i, want) = missing[0];
                return Err(net.nodes[i].error(&format!(
                    "not connected to its neighbour {want} after {CONNECT_TIMEOUT:?} \
                     ({} links missing)",
                    missing.len()
                )));
            }
            if Instant::now() >= next_dial {
                for &(i, want) in &missing {
                    net.nodes[i].addnode(want, "onetry")?;
                }
                next_dial = Instant::now() + Duration::from_secs(5);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The nodes, in line order.
    pub fn nodes(&self) -> &[BcoinNode] {
        &self.nodes
    }

    /// Node `i` (0 = A). Panics if out of range.
    pub fn node(&self, i: usize) -> &BcoinNode {
        &self.nodes[i]
    }

    /// Node `i`, mutable (for [`BcoinNode::wait_for_mempool`], [`BcoinNode::kill`]).
    pub fn node_mut(&mut self, i: usize) -> &mut BcoinNode {
        &mut self.nodes[i]
    }

    /// Waits (up to `timeout`) until every node has the same best block as node 0, and
    /// returns it.
    pub fn wait_synced(&mut self, timeout: Duration) -> Result<BlockHash, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let tip = self.nodes[0].getbestblockhash()?;
            let mut behind = None;
            for (i, node) in self.nodes.iter_mut().enumerate().skip(1) {
                node.check_alive()?;
                if node.getbestblockhash()? != tip {
                    behind = Some(i);
                    break;
                }
            }
            let Some(i) = behind else {
                return Ok(tip);
            };
            if Instant::now() >= deadline {
                let h0 = self.nodes[0].getblockcount()?;
                let hi = self.nodes[i].getblockcount()?;
                return Err(self.nodes[i].error(&format!(
                    "at height {hi}, not at node 0's tip {tip} (height {h0}) after {timeout:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Mines `n` blocks on node 0 to the kit key's P2PKH address and waits until all nodes
    /// have them. Returns their hashes. Mines at most [`MINE_CHUNK`] blocks at a time and
    /// waits for the other nodes in between: a burst of a few hundred blocks sends bcoin's
    /// orphan-block resolution into a `getblocks` loop that stalls the sync for ~20 s.
    pub fn mine(&mut self, n: u32) -> Result<Vec<BlockHash>, Error> {
        let addr = KitKey::new().address();
        let mut hashes = Vec::with_capacity(n as usize);
        let mut left = n;
        while left > 0 {
            let k = left.min(MINE_CHUNK);
            hashes.extend(self.nodes[0].generate_to_address(k, &addr)?);
            self.wait_synced(SYNC_TIMEOUT)?;
            left -= k;
        }
        Ok(hashes)
    }

    /// Mines `blocks` blocks to the kit key on node 0, then [`COINBASE_MATURITY`] more so
    /// that their coinbases are spendable, and waits until every node has the same tip.
    /// Returns a [`Spender`] of those `blocks` coinbase outputs (read back from node 0).
    pub fn fund(&mut self, blocks: u32) -> Result<Spender, Error> {
        if blocks == 0 {
            return Err(Error::msg("BcoinNet::fund needs at least one block"));
        }
        let funding = self.mine(blocks)?;
        self.mine(COINBASE_MATURITY)?;
        let key = KitKey::new();
        let mut coinbases = Vec::with_capacity(funding.len());
        for hash in &funding {
            let block = self.nodes[0].getblock(hash)?;
            let cb = block
                .txdata
                .first()
                .ok_or_else(|| Error::msg(format!("block {hash} has no coinbase")))?;
            let txid = cb.compute_txid();
            for (vout, out) in cb.output.iter().enumerate() {
                if out.script_pubkey == key.script_pubkey && out.value > Amount::ZERO {
                    coinbases.push((OutPoint::new(txid, vout as u32), out.clone()));
                }
            }
        }
        if coinbases.is_empty() {
            return Err(Error::msg(
                "no coinbase of the funding blocks pays the kit key",
            ));
        }
        Ok(Spender::new(coinbases))
    }

    /// Mines (on node 0, to the kit key) until segwit is active on bcoin's regtest (BIP9:
    /// bcoin's miner signals it, so it locks in after two 144-block periods and is active
    /// from height 432), and waits until every node has the tip. Checks
    /// `getblockchaininfo` on every node says `active`.
    pub fn activate_segwit(&mut self) -> Result<(), Error> {
        let height = self.nodes[0].getblockcount()?;
        if height < SEGWIT_HEIGHT {
            self.mine(SEGWIT_HEIGHT - height)?;
        }
        for node in &self.nodes {
            let info = node.rpc("getblockchaininfo", json!([]))?;
            let status = &info["bip9_softforks"]["segwit"]["status"];
            if status != "active" {
                return Err(node.error(&format!(
                    "segwit is {status} at height {}, not active",
                    info["blocks"]
                )));
            }
        }
        Ok(())
    }

    /// Sends `tx` to node 0 by RPC, waits (30 s) until it is in node 0's mempool, mines one
    /// block and checks that it holds `tx`, then waits until all nodes have that block.
    pub fn confirm(&mut self, tx: &Transaction) -> Result<BlockHash, Error> {
        let txid = self.nodes[0].send_tx(tx)?;
        self.nodes[0].wait_for_mempool(&[txid], Duration::from_secs(30))?;
        let hashes = self.mine(1)?;
        let hash = hashes
            .first()
            .ok_or_else(|| Error::msg("generatetoaddress 1 returned no block"))?;
        let block = self.nodes[0].getblock(hash)?;
        if !block.txdata.iter().any(|t| t.compute_txid() == txid) {
            return Err(Error::msg(format!("block {hash} does not hold {txid}")));
        }
        Ok(*hash)
    }
}

/// The kit's fixed regtest key (secret key `SHA256("electrum-spv-testkit/bcoin")`) and its
/// P2PKH script.
#[derive(Clone, Debug)]
pub struct KitKey {
    /// The secret key.
    pub secret_key: SecretKey,
    /// Its compressed public key.
    pub public_key: CompressedPublicKey,
    /// Its P2PKH scriptPubKey.
    pub script_pubkey: ScriptBuf,
    /// Its P2WPKH scriptPubKey.
    pub p2wpkh_script: ScriptBuf,
}

/// The output types of [`Spender`] coins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CoinKind {
    /// Pay to public key hash (legacy sighash); accepted from the start.
    P2pkh,
    /// Native segwit v0 (BIP143 sighash); bcoin refuses spends of it (`no-witness-yet`)
    /// until segwit is active: see [`BcoinNet::activate_segwit`].
    P2wpkh,
}

impl Default for KitKey {
    fn default() -> KitKey {
        KitKey::new()
    }
}

impl KitKey {
    /// The kit key.
    pub fn new() -> KitKey {
        let secp = Secp256k1::signing_only();
        let digest = sha256::Hash::hash(b"electrum-spv-testkit/bcoin");
        let secret_key = SecretKey::from_slice(digest.as_byte_array()).expect("valid secret key");
        let public_key = CompressedPublicKey(secret_key.public_key(&secp));
        KitKey {
            secret_key,
            public_key,
            script_pubkey: ScriptBuf::new_p2pkh(&public_key.pubkey_hash()),
            p2wpkh_script: ScriptBuf::new_p2wpkh(&public_key.wpubkey_hash()),
        }
    }

    /// Its scriptPubKey of `kind`.
    pub fn script(&self, kind: CoinKind) -> &ScriptBuf {
        match kind {
            CoinKind::P2pkh => &self.script_pubkey,
            CoinKind::P2wpkh => &self.p2wpkh_script,
        }
    }

    /// Its P2PKH address in bcoin's regtest encoding.
    pub fn address(&self) -> String {
        bcoin_p2pkh_address(&self.public_key)
    }
}

/// The P2PKH address of `pk` as bcoin's regtest spells it (base58check, version byte
/// [`BCOIN_REGTEST_P2PKH_PREFIX`], so it starts with `R`); bcoin refuses Bitcoin Core's
/// regtest addresses (`m...`/`n...`).
pub fn bcoin_p2pkh_address(pk: &CompressedPublicKey) -> String {
    let mut data = vec![BCOIN_REGTEST_P2PKH_PREFIX];
    data.extend_from_slice(pk.pubkey_hash().as_byte_array());
    bitcoin::base58::encode_check(&data)
}

/// Builds and signs transactions of the [`KitKey`] at [`FEE_RATE_SAT_VB`]: legacy P2PKH,
/// and P2WPKH (see [`CoinKind`]).
///
/// It holds matured coinbase outputs (from [`BcoinNet::fund`]) and "coins": the outputs of
/// its split transactions. The flow for a batch of `n` transactions is
/// [`Spender::split`]`(n)` (one transaction paying `n` outputs to the kit key, which must be
/// accepted, e.g. by [`BcoinNet::confirm`], before the spends), then
/// [`Spender::spends`]`(n)`: `n` independent one-input one-output transactions, each spending
/// one output of the split. The Spender does not track the network: a transaction that was
/// built and never broadcast still counts as spent.
pub struct Spender {
    secp: Secp256k1<All>,
    key: KitKey,
    coinbases: VecDeque<(OutPoint, TxOut)>,
    coins: VecDeque<(OutPoint, TxOut)>,
}

impl CoinKind {
    /// The kind of a kit script, if it is one.
    fn of(script: &ScriptBuf) -> CoinKind {
        if script.is_p2wpkh() {
            CoinKind::P2wpkh
        } else {
            CoinKind::P2pkh
        }
    }

    /// Upper bound of the virtual size of an input spending it (73-byte signature with
    /// sighash byte, compressed key).
    fn input_vsize(self) -> u64 {
        match self {
            CoinKind::P2pkh => 149,
            // 41 bytes + a witness of (1 + 1 + 73 + 1 + 33) / 4 rounded up.
            CoinKind::P2wpkh => 69,
        }
    }

    /// Size of an output of it.
    fn output_vsize(self) -> u64 {
        match self {
            CoinKind::P2pkh => 34,
            CoinKind::P2wpkh => 31,
        }
    }
}

/// An upper bound of the virtual size of a transaction with one input of `input` and
/// `outputs` outputs of `output`.
fn estimated_vsize(input: CoinKind, outputs: usize, output: CoinKind) -> u64 {
    let varint = |n: usize| if n < 0xfd { 1 } else { 3 };
    let segwit = u64::from(input == CoinKind::P2wpkh); // marker and flag, rounded up
    8 + 1 + varint(outputs) + segwit + input.input_vsize() + output.output_vsize() * outputs as u64
}

impl Spender {
    /// A spender of the given outputs (each must pay the [`KitKey`]'s P2PKH script and, if
    /// a coinbase, be matured).
    pub fn new(coinbases: Vec<(OutPoint, TxOut)>) -> Spender {
        Spender {
            secp: Secp256k1::new(),
            key: KitKey::new(),
            coinbases: coinbases.into(),
            coins: VecDeque::new(),
        }
    }

    /// The key it signs with.
    pub fn key(&self) -> &KitKey {
        &self.key
    }

    /// Coinbase outputs not yet split.
    pub fn coinbases_left(&self) -> usize {
        self.coinbases.len()
    }

    /// Split outputs not yet spent by [`Spender::spends`].
    pub fn coins_left(&self) -> usize {
        self.coins.len()
    }

    /// One transaction spending the next unused coinbase output into `outputs` equal P2PKH
    /// outputs to the kit key (1 to [`MAX_SPLIT_OUTPUTS`]); those outputs become coins for
    /// [`Spender::spends`] and [`Spender::chain`]. The split must be accepted by the network
    /// before its spends are sent.
    pub fn split(&mut self, outputs: usize) -> Result<Transaction, Error> {
        self.split_to(outputs, CoinKind::P2pkh)
    }

    /// As [`Spender::split`], with outputs of `kind` (the split itself spends a P2PKH
    /// coinbase, so it is accepted before segwit is active; spends of P2WPKH coins are not).
    pub fn split_to(&mut self, outputs: usize, kind: CoinKind) -> Result<Transaction, Error> {
        if outputs == 0 || outputs > MAX_SPLIT_OUTPUTS {
            return Err(Error::msg(format!(
                "split: {outputs} outputs (1 to {MAX_SPLIT_OUTPUTS})"
            )));
        }
        let Some((outpoint, prev)) = self.coinbases.front().cloned() else {
            return Err(Error::msg(
                "split: no coinbase output left (fund more blocks)",
            ));
        };
        let fee =
            FEE_RATE_SAT_VB * estimated_vsize(CoinKind::of(&prev.script_pubkey), outputs, kind);
        let each = prev
            .value
            .to_sat()
            .checked_sub(fee)
            .map(|v| v / outputs as u64)
            .filter(|&v| v > FEE_RATE_SAT_VB * estimated_vsize(kind, 1, kind) + 546)
            .ok_or_else(|| {
                Error::msg(format!(
                    "split: {} cannot pay {outputs} outputs and the fee",
                    prev.value
                ))
            })?;
        let outs = vec![
            TxOut {
                value: Amount::from_sat(each),
                script_pubkey: self.key.script(kind).clone(),
            };
            outputs
        ];
        let tx = self.sign(&[(outpoint, prev)], outs, false)?;
        self.coinbases.pop_front();
        let txid = tx.compute_txid();
        self.coins.extend(
            tx.output
                .iter()
                .enumerate()
                .map(|(i, o)| (OutPoint::new(txid, i as u32), o.clone())),
        );
        Ok(tx)
    }

    /// `n` independent transactions, each spending one coin (an output of an earlier
    /// [`Spender::split`]) to one output of the kit key of the coin's kind. Fails if fewer than `n` coins
    /// are left (split more first).
    pub fn spends(&mut self, n: usize) -> Result<Vec<Transaction>, Error> {
        if self.coins.len() < n {
            return Err(Error::msg(format!(
                "spends({n}): only {} coins left; call split first",
                self.coins.len()
            )));
        }
        let mut txs = Vec::with_capacity(n);
        for _ in 0..n {
            let Some(coin) = self.coins.pop_front() else {
                break;
            };
            txs.push(self.spend_one(coin, false)?);
        }
        Ok(txs)
    }

    /// `n` chained transactions from one coin: each spends the single output of the one
    /// before (bcoin, like Core, keeps at most 25 unconfirmed ancestors in its mempool).
    pub fn chain(&mut self, n: usize) -> Result<Vec<Transaction>, Error> {
        let Some(mut coin) = self.coins.pop_front() else {
            return Err(Error::msg("chain: no coin left; call split first"));
        };
        let mut txs = Vec::with_capacity(n);
        for _ in 0..n {
            let tx = self.spend_one(coin, false)?;
            coin = (OutPoint::new(tx.compute_txid(), 0), tx.output[0].clone());
            txs.push(tx);
        }
        Ok(txs)
    }

    /// A transaction spending the next coin (or, with none, the next coinbase output)
    /// with an invalid signature (a valid-looking DER signature over the wrong digest):
    /// every node must refuse it. The coin stays available.
    pub fn invalid_spend(&self) -> Result<Transaction, Error> {
        let coin = self
            .coins
            .front()
            .or_else(|| self.coinbases.front())
            .cloned()
            .ok_or_else(|| Error::msg("invalid_spend: nothing left to spend"))?;
        self.spend_one(coin, true)
    }

    fn spend_one(
        &self,
        (outpoint, prev): (OutPoint, TxOut),
        bad: bool,
    ) -> Result<Transaction, Error> {
        let kind = CoinKind::of(&prev.script_pubkey);
        let fee = FEE_RATE_SAT_VB * estimated_vsize(kind, 1, kind);
        let value = prev
            .value
            .to_sat()
            .checked_sub(fee)
            .filter(|&v| v >= 546)
            .ok_or_else(|| Error::msg(format!("coin of {} cannot pay the fee", prev.value)))?;
        let out = TxOut {
            value: Amount::from_sat(value),
            script_pubkey: self.key.script(kind).clone(),
        };
        self.sign(&[(outpoint, prev)], vec![out], bad)
    }

    /// A version-2 transaction of `inputs` (the kit key's P2PKH or P2WPKH) and `outputs`,
    /// signed SIGHASH_ALL (over a wrong digest if `bad`).
    fn sign(
        &self,
        inputs: &[(OutPoint, TxOut)],
        outputs: Vec<TxOut>,
        bad: bool,
    ) -> Result<Transaction, Error> {
        let mut tx = Transaction {
            version: TxVersion::TWO,
            lock_time: LockTime::ZERO,
            input: inputs
                .iter()
                .map(|(op, _)| TxIn {
                    previous_output: *op,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::new(),
                })
                .collect(),
            output: outputs,
        };
        let mut unlocks = Vec::with_capacity(inputs.len());
        {
            let mut cache = SighashCache::new(&tx);
            for (i, (_, prev)) in inputs.iter().enumerate() {
                let err =
                    |e: &dyn std::fmt::Display| Error::msg(format!("sighash of input {i}: {e}"));
                let kind = CoinKind::of(&prev.script_pubkey);
                let digest = match kind {
                    CoinKind::P2pkh => cache
                        .legacy_signature_hash(
                            i,
                            &prev.script_pubkey,
                            EcdsaSighashType::All.to_u32(),
                        )
                        .map_err(|e| err(&e))?
                        .to_byte_array(),
                    CoinKind::P2wpkh => cache
                        .p2wpkh_signature_hash(
                            i,
                            &prev.script_pubkey,
                            prev.value,
                            EcdsaSighashType::All,
                        )
                        .map_err(|e| err(&e))?
                        .to_byte_array(),
                };
                let mut digest = digest;
                if bad {
                    digest[0] ^= 1;
                }
                let msg = Message::from_digest(digest);
                let sig = bitcoin::ecdsa::Signature::sighash_all(
                    self.secp.sign_ecdsa(&msg, &self.key.secret_key),
                );
                unlocks.push(match kind {
                    CoinKind::P2pkh => {
                        let mut sig_push = PushBytesBuf::new();
                        sig_push
                            .extend_from_slice(&sig.to_vec())
                            .map_err(|e| Error::msg(format!("signature push: {e}")))?;
                        let script_sig = Builder::new()
                            .push_slice(sig_push)
                            .push_slice(self.key.public_key.to_bytes())
                            .into_script();
                        (script_sig, Witness::new())
                    }
                    CoinKind::P2wpkh => (
                        ScriptBuf::new(),
                        Witness::p2wpkh(&sig, &self.key.public_key.0),
                    ),
                });
            }
        }
        for (input, (script_sig, witness)) in tx.input.iter_mut().zip(unlocks) {
            input.script_sig = script_sig;
            input.witness = witness;
        }
        Ok(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, out) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), out);
        }
    }

    #[test]
    fn kit_address_uses_bcoin_regtest_prefix() {
        let a = KitKey::new().address();
        assert!(a.starts_with('R'), "{a}");
        let decoded = bitcoin::base58::decode_check(&a).expect("base58check");
        assert_eq!(decoded[0], BCOIN_REGTEST_P2PKH_PREFIX);
        assert_eq!(
            &decoded[1..],
            KitKey::new().public_key.pubkey_hash().as_byte_array()
        );
    }

    #[test]
    fn split_and_spends_are_signed_and_sized() {
        let key = KitKey::new();
        let coinbase = (
            OutPoint::new(Txid::all_zeros(), 0),
            TxOut {
                value: Amount::from_sat(50 * 100_000_000),
                script_pubkey: key.script_pubkey.clone(),
            },
        );
        let mut s = Spender::new(vec![coinbase.clone()]);
        let split = s.split(1000).expect("split");
        assert_eq!(split.output.len(), 1000);
        let vsize = split.vsize() as u64;
        assert!(
            vsize <= estimated_vsize(CoinKind::P2pkh, 1000, CoinKind::P2pkh),
            "{vsize}"
        );
        let fee = 50 * 100_000_000 - split.output.iter().map(|o| o.value.to_sat()).sum::<u64>();
        assert!(fee >= FEE_RATE_SAT_VB * vsize, "fee {fee} for {vsize} vB");
        let txs = s.spends(1000).expect("spends");
        assert_eq!(txs.len(), 1000);
        assert_eq!(s.coins_left(), 0);
        let bad_none = s.invalid_spend().is_err();
        assert!(bad_none, "nothing left to spend");
        let secp = Secp256k1::verification_only();
        let verify = |tx: &Transaction, prev: &TxOut| -> bool {
            let cache = SighashCache::new(tx);
            let h = cache
                .legacy_signature_hash(0, &prev.script_pubkey, 1)
                .expect("sighash");
            let pushes: Vec<Vec<u8>> = tx.input[0]
                .script_sig
                .instructions()
                .filter_map(|i| i.ok()?.push_bytes().map(|p| p.as_bytes().to_vec()))
                .collect();
            let sig = bitcoin::ecdsa::Signature::from_slice(&pushes[0]).expect("sig");
            secp.verify_ecdsa(
                &Message::from_digest(h.to_byte_array()),
                &sig.signature,
                &key.public_key.0,
            )
            .is_ok()
        };
        assert!(verify(&split, &coinbase.1));
        assert!(verify(&txs[0], &split.output[0]));
        let s2 = Spender::new(vec![coinbase.clone()]);
        assert!(!verify(&s2.invalid_spend().expect("invalid"), &coinbase.1));
    }
}
