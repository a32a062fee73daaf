//! The script tracker driven end to end through its public API, by a scripted in-memory server
//! answering from real mainnet data (blocks 0..438 of `mainnet/blocks_0_438.blk`): raw
//! transactions, merkle branches computed from every txid of their blocks, statuses computed
//! over the history each server sends, `cp_height` proofs over the real block hashes. Headers
//! come from the caller ([`ScriptTracker::provide_header`], the electrs path) unless a test sets
//! a checkpoint.
//!
//! The histories used (real, as an honest server at height 438 would list them):
//! * `B`, the P2PK key paid by output 0 of `F` (block 183): `F`, and `X` (block 187), which
//!   spends `F:0` and pays only another key. `X` is involved only through the funding output.
//! * `S`, the P2PK key of block 9's coinbase: the coinbase `CB9`, then `T170` (the first
//!   bitcoin transaction, block 170, spending `CB9:0`), `T181`, `T182`, `F`, `Y` (block 248):
//!   each spends the previous change output and pays `S` again.
//! * `Y` spends `F:1` (paid to `S`), so it is a real spend of the *other* output of `B`'s
//!   funding transaction: listed in `B`'s history it is unrelated.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use common::{read, read_varint};
use electrum_spv_core::accumulator::MerkleAccumulator;
use electrum_spv_core::hash::sha256d_pair;
use electrum_spv_core::header::Header;
use electrum_spv_core::history::{ChainPosition, HistoryFault};
use electrum_spv_core::rpc::{Method, ProtocolVersion};
use electrum_spv_core::script::{StatusHasher, TxHeight, script_hash};
use electrum_spv_core::session::response::HistoryItem;
use electrum_spv_core::session::{Event, Notification, Request, RequestError, RpcError};
use electrum_spv_core::sync::tracker::{
    HistoryEntry, ProvenIn, STATUS_ATTEMPTS, STATUS_RACES, STATUS_RETRY, ScriptRef, ScriptSlot,
    ScriptTracker, TrackerEvent, TrackerLie, TxSlot,
};
use electrum_spv_core::sync::{RequestSink, Slots};
use electrum_spv_core::time::{Duration, Instant};
use electrum_spv_core::tx::{TxError, TxidHasher};
use electrum_spv_core::tx_parts::{OutPoint, TxParts};
use electrum_spv_core::{BlockHash, HeaderProofError, MerkleNode, ScriptHash, Status, Txid};

const V14: ProtocolVersion = ProtocolVersion::V1_4;
const V16: ProtocolVersion = ProtocolVersion::V1_6;

const CB9: &str = "0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9";
const T170: &str = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16";
const T181: &str = "a16f3ce4dd5deb92d98ef5cf8afeaf0775ebca408f708b2146c4fb42b41e14be";
const T182: &str = "591e91f809d716912ca1d4a9295e70c3e78bab077683f79350f101da64588073";
const F: &str = "12b5633bad1f9c167d523ad1aa1947b2732a865bf5414eab2f9e5ae5d5c191ba";
const X: &str = "4385fcf8b14497d0659adccfe06ae7e38e0b5dc95ff8a13d7c62035994a0cd79";
const Y: &str = "828ef3b079f9c23829c56fe86e85b4a69d9e06e5b54ea597eef5fb3ffef509fe";

fn txid(display: &str) -> Txid {
    Txid::from_display_hex(display.as_bytes()).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// The chain: blocks 0..438.

struct Chain {
    headers: Vec<[u8; 80]>,
    block_txids: Vec<Vec<Txid>>,
    /// txid → (height, position, raw bytes).
    txs: HashMap<Txid, (u32, u32, Vec<u8>)>,
}

fn chain() -> &'static Chain {
    static CHAIN: OnceLock<Chain> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let blk = read("mainnet/blocks_0_438.blk");
        let mut chain = Chain {
            headers: Vec::new(),
            block_txids: Vec::new(),
            txs: HashMap::new(),
        };
        let mut rest = &blk[..];
        while !rest.is_empty() {
            assert_eq!(rest[..4], [0xf9, 0xbe, 0xb4, 0xd9]);
            let len = u32::from_le_bytes(rest[4..8].try_into().unwrap()) as usize;
            let block = &rest[8..8 + len];
            rest = &rest[8 + len..];
            let height = chain.headers.len() as u32;
            chain.headers.push(block[..80].try_into().unwrap());
            let (count, n) = read_varint(&block[80..]);
            let mut txs = &block[80 + n..];
            let mut ids = Vec::new();
            for pos in 0..count as u32 {
                let mut hasher = TxidHasher::new();
                let used = hasher.feed(txs).unwrap();
                let id = hasher.finish().unwrap();
                chain.txs.insert(id, (height, pos, txs[..used].to_vec()));
                ids.push(id);
                txs = &txs[used..];
            }
            assert!(
                txs.is_empty(),
                "block {height} has bytes after its transactions"
            );
            chain.block_txids.push(ids);
        }
        assert_eq!(chain.headers.len(), 439);
        chain
    })
}

impl Chain {
    fn header(&self, height: u32) -> [u8; 80] {
        self.headers[height as usize]
    }

    fn block_hash(&self, height: u32) -> BlockHash {
        Header::from_bytes(&self.header(height)).block_hash()
    }

    fn tx(&self, id: &Txid) -> &(u32, u32, Vec<u8>) {
        self.txs.get(id).expect("transaction in blocks 0..438")
    }

    /// A history row as an honest server lists it.
    fn row(&self, display: &str) -> (Txid, TxHeight) {
        let id = txid(display);
        (id, TxHeight::Confirmed(self.tx(&id).0))
    }

    fn output_script(&self, display: &str, vout: usize) -> Vec<u8> {
        let raw = &self.tx(&txid(display)).2;
        let parts = TxParts::parse(raw).unwrap();
        parts.outputs().nth(vout).unwrap().script_pubkey.to_vec()
    }
}

/// Siblings of leaf `pos` from the leaf upward (the last node of an odd level paired with
/// itself), in internal byte order.
fn branch(leaves: &[[u8; 32]], mut pos: usize) -> Vec<[u8; 32]> {
    let mut level = leaves.to_vec();
    let mut out = Vec::new();
    while level.len() > 1 {
        if level.len() % 2 == 1 {
            level.push(*level.last().unwrap());
        }
        out.push(level[pos ^ 1]);
        level = level
            .chunks(2)
            .map(|pair| sha256d_pair(&pair[0], &pair[1]))
            .collect();
        pos /= 2;
    }
    out
}

fn json_nodes(nodes: &[[u8; 32]]) -> String {
    let items: Vec<String> = nodes
        .iter()
        .map(|n| format!("\"{}\"", MerkleNode::from_byte_array(*n)))
        .collect();
    format!("[{}]", items.join(","))
}

fn status_of(rows: &[(Txid, TxHeight)]) -> Option<Status> {
    let mut hasher = StatusHasher::new();
    for (id, height) in rows {
        hasher.push(id, *height);
    }
    hasher.finish()
}

// ---------------------------------------------------------------------------------------------
// The sink: records every request.

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum What {
    Subscribe(ScriptHash),
    History(ScriptHash),
    Header { height: u32, cp_height: u32 },
    Merkle { txid: Txid, height: u32 },
    Tx(Txid),
}

#[derive(Clone, Copy, Debug)]
struct Asked {
    now: Instant,
    id: u64,
    tag: u32,
    method: Method,
    what: What,
}

#[derive(Default)]
struct Sink {
    /// Sent and not answered yet.
    pending: Vec<Asked>,
    /// Everything ever sent.
    log: Vec<Asked>,
    next_id: u64,
}

impl RequestSink for Sink {
    fn is_ready(&self) -> bool {
        true
    }

    fn request(
        &mut self,
        now: Instant,
        request: &Request<'_>,
        tag: u32,
    ) -> Result<u64, RequestError> {
        let what = match *request {
            Request::ScriptSubscribe(spk) => What::Subscribe(script_hash(spk)),
            Request::ScriptHashSubscribe(h) => What::Subscribe(h),
            Request::ScriptGetHistory(spk) => What::History(script_hash(spk)),
            Request::ScriptHashGetHistory(h) => What::History(h),
            Request::BlockHeader { height, cp_height } => What::Header { height, cp_height },
            Request::TransactionGetMerkle { txid, height } => What::Merkle { txid, height },
            Request::TransactionGet(txid) => What::Tx(txid),
            ref other => panic!("the tracker asked for {other:?}"),
        };
        self.next_id += 1;
        let asked = Asked {
            now,
            id: self.next_id,
            tag,
            method: request.method(),
            what,
        };
        self.pending.push(asked);
        self.log.push(asked);
        Ok(asked.id)
    }
}

impl Sink {
    fn count(&self, what: What) -> usize {
        self.log.iter().filter(|a| a.what == what).count()
    }

    fn take(&mut self) -> Vec<Asked> {
        std::mem::take(&mut self.pending)
    }
}

// ---------------------------------------------------------------------------------------------
// The server: answers from tables built from the chain.

enum Reply {
    Result(String),
    Error,
    Timeout,
}

#[derive(Default)]
struct Server {
    /// What `get_history` returns.
    histories: HashMap<ScriptHash, Vec<(Txid, TxHeight)>>,
    /// What `subscribe` and notifications announce.
    statuses: HashMap<ScriptHash, Option<Status>>,
    /// Raw transactions' hex, overridable per txid (lies).
    tx_hex: HashMap<Txid, String>,
    /// `cp_height` proofs are answered when true, refused otherwise.
    header_proofs: bool,
    /// Requests answered with a timeout the first time they are asked.
    time_out_once: HashSet<What>,
    timed_out: HashSet<What>,
    /// Proofs falsified on purpose.
    tamper: Option<Tamper>,
}

/// A proof the server falsifies.
#[derive(Clone, Copy)]
enum Tamper {
    /// Merkle proofs name the block below the real one.
    MerkleHeight,
    /// Merkle proofs give the branch of the next position as this position's.
    MerklePos,
    /// `cp_height` proofs carry the branch of the block above the header proven.
    HeaderBranch,
}

impl Server {
    fn new() -> Server {
        let mut server = Server::default();
        for (id, (_, _, raw)) in &chain().txs {
            server.tx_hex.insert(*id, hex(raw));
        }
        server
    }

    /// An honest history: the rows and their status.
    fn set(&mut self, script: ScriptHash, rows: Vec<(Txid, TxHeight)>) {
        self.statuses.insert(script, status_of(&rows));
        self.histories.insert(script, rows);
    }

    fn status(&self, script: &ScriptHash) -> Option<Status> {
        self.statuses.get(script).copied().flatten()
    }

    fn answer(&mut self, asked: &Asked) -> Reply {
        if self.time_out_once.contains(&asked.what) && self.timed_out.insert(asked.what) {
            return Reply::Timeout;
        }
        let chain = chain();
        Reply::Result(match asked.what {
            What::Subscribe(h) => match self.status(&h) {
                Some(s) => format!("\"{s}\""),
                None => "null".into(),
            },
            What::History(h) => {
                let rows: Vec<String> = self
                    .histories
                    .get(&h)
                    .into_iter()
                    .flatten()
                    .map(|(id, height)| {
                        format!("{{\"tx_hash\":\"{id}\",\"height\":{}}}", height.to_i64())
                    })
                    .collect();
                format!("[{}]", rows.join(","))
            }
            What::Header { height, cp_height } => {
                if !self.header_proofs {
                    return Reply::Error;
                }
                let hashes: Vec<[u8; 32]> = (0..=cp_height)
                    .map(|h| chain.block_hash(h).to_byte_array())
                    .collect();
                let leaf = match self.tamper {
                    Some(Tamper::HeaderBranch) => height + 1,
                    _ => height,
                };
                format!(
                    "{{\"branch\":{},\"header\":\"{}\",\"root\":\"{}\"}}",
                    json_nodes(&branch(&hashes, leaf as usize)),
                    hex(&chain.header(height)),
                    checkpoint_root(cp_height),
                )
            }
            What::Merkle { txid, height } => {
                // The branch in the block that holds it, whatever height was asked (the
                // request's height is a hint to the server).
                let _ = height;
                let (at, pos, _) = *chain.tx(&txid);
                let leaves: Vec<[u8; 32]> = chain.block_txids[at as usize]
                    .iter()
                    .map(|t| t.to_byte_array())
                    .collect();
                let (said, leaf) = match self.tamper {
                    Some(Tamper::MerkleHeight) => (at - 1, pos),
                    Some(Tamper::MerklePos) => (at, pos ^ 1),
                    _ => (at, pos),
                };
                format!(
                    "{{\"block_height\":{said},\"merkle\":{},\"pos\":{pos}}}",
                    json_nodes(&branch(&leaves, leaf as usize))
                )
            }
            What::Tx(txid) => match self.tx_hex.get(&txid) {
                Some(h) => format!("\"{h}\""),
                None => return Reply::Error,
            },
        })
    }
}

/// The root of the block hashes `0..=cp_height`, as a client computes it from verified headers.
fn checkpoint_root(cp_height: u32) -> MerkleNode {
    let mut acc = MerkleAccumulator::new();
    for h in 0..=cp_height {
        acc.push_block_hash(&chain().block_hash(h)).unwrap();
    }
    acc.root().unwrap()
}

// ---------------------------------------------------------------------------------------------
// A growing table that the test can look at afterwards (a `Vec` through the `Slots` trait,
// whatever the crate's `alloc` feature).

struct Growing<'a>(&'a mut Vec<TxSlot>);

impl Slots<TxSlot> for Growing<'_> {
    fn slots(&self) -> &[TxSlot] {
        self.0
    }
    fn slots_mut(&mut self) -> &mut [TxSlot] {
        self.0
    }
    fn grow(&mut self) -> bool {
        self.0.push(TxSlot::EMPTY);
        true
    }
}

// ---------------------------------------------------------------------------------------------
// The caller's loop.

/// A row of [`ScriptTracker::history`]: txid, height, block hash and position.
type Reported = HistoryEntry;

struct Harness<T: Slots<TxSlot>> {
    tracker: ScriptTracker<[ScriptSlot; 4], T>,
    sink: Sink,
    server: Server,
    version: ProtocolVersion,
    now: Instant,
    /// Give the tracker every header it waits for, from the caller's (verified) chain.
    provide_headers: bool,
    events: Vec<TrackerEvent>,
}

impl<T: Slots<TxSlot>> Harness<T> {
    fn new(txs: T, version: ProtocolVersion) -> Self {
        Harness {
            tracker: ScriptTracker::new([ScriptSlot::EMPTY; 4], txs),
            sink: Sink::default(),
            server: Server::new(),
            version,
            now: Instant::ZERO,
            provide_headers: true,
            events: Vec::new(),
        }
    }

    fn add(&mut self, script: &[u8]) -> usize {
        self.tracker.add(ScriptRef::Script(script)).unwrap()
    }

    fn poll(&mut self) {
        if self.provide_headers {
            let mut provided = HashSet::new();
            while let Some(h) = self.tracker.header_wanted() {
                assert!(provided.insert(h), "header {h} provided and still wanted");
                self.tracker.provide_header(h, &chain().header(h));
            }
        }
        self.tracker.poll(self.now, &mut self.sink).unwrap();
    }

    fn handle(&mut self, event: &Event<'_>) {
        if let Some(e) = self.tracker.handle_event(self.version, event) {
            self.events.push(e);
        }
        while let Some(e) = self.tracker.poll_event() {
            self.events.push(e);
        }
    }

    fn deliver(&mut self, asked: &Asked, reply: Reply) {
        let (id, method, tag) = (asked.id, asked.method, asked.tag);
        match reply {
            Reply::Result(json) => self.handle(&Event::Response {
                id,
                method,
                tag,
                result: json.as_bytes(),
            }),
            Reply::Error => self.handle(&Event::ServerError {
                id,
                method,
                tag,
                error: RpcError {
                    code: Some(-32601),
                    message: b"unknown method",
                },
            }),
            Reply::Timeout => self.handle(&Event::TimedOut { id, method, tag }),
        }
    }

    fn answer(&mut self, asked: &Asked) {
        let reply = self.server.answer(asked);
        self.deliver(asked, reply);
    }

    /// One round: poll, then answer what was asked (in order, or last first). How many.
    fn step(&mut self, reversed: bool) -> usize {
        self.poll();
        let mut batch = self.sink.take();
        if reversed {
            batch.reverse();
        }
        for asked in &batch {
            self.answer(asked);
        }
        batch.len()
    }

    /// Rounds until the tracker asks nothing more.
    fn run(&mut self) {
        self.run_with(false);
    }

    /// Rounds, the clock moved by the retry delay between them, until the tracker asks for
    /// `script`'s history once more (after a mismatch: the delay, then its status, then its
    /// history).
    fn ask_history_again(&mut self, script: ScriptHash) {
        let before = self.sink.count(What::History(script));
        for _ in 0..8 {
            self.step(false);
            if self.sink.count(What::History(script)) > before {
                return;
            }
            self.now += STATUS_RETRY;
        }
        panic!(
            "the history was not asked again: {:?}",
            self.sink.log.last()
        );
    }

    fn run_with(&mut self, reversed: bool) {
        for _ in 0..64 {
            if self.step(reversed) == 0 {
                return;
            }
        }
        panic!("the tracker kept asking: {:?}", self.sink.log.last());
    }

    /// Polls and answers until a request matching `stop` is sent; returns it unanswered (the
    /// rest of its batch is answered).
    fn run_until(&mut self, stop: impl Fn(&What) -> bool) -> Asked {
        for _ in 0..64 {
            self.poll();
            let batch = self.sink.take();
            assert!(!batch.is_empty(), "the tracker went quiet");
            let mut held = None;
            for asked in &batch {
                if held.is_none() && stop(&asked.what) {
                    held = Some(*asked);
                } else {
                    self.answer(asked);
                }
            }
            if let Some(h) = held {
                return h;
            }
        }
        panic!("never asked");
    }

    /// The server announces `script`'s status.
    fn notify(&mut self, script: ScriptHash) {
        let status = self.server.status(&script);
        self.handle(&Event::Notification(Notification::ScriptStatus {
            script_hash: script,
            status,
        }));
    }

    fn lies(&self) -> Vec<TrackerEvent> {
        self.events
            .iter()
            .filter(|e| matches!(e, TrackerEvent::ServerLied { .. }))
            .copied()
            .collect()
    }

    fn confirmed(&self, script: usize) -> Vec<(Txid, u32, BlockHash)> {
        self.events
            .iter()
            .filter_map(|e| match *e {
                TrackerEvent::Confirmed {
                    script: s,
                    txid,
                    height,
                    block_hash,
                } if s == script => Some((txid, height, block_hash)),
                _ => None,
            })
            .collect()
    }

    /// The tracker's history of `script`, in chain order.
    fn history(&self, script: usize) -> Vec<Reported> {
        let mut h: Vec<_> = self.tracker.history(script).collect();
        h.sort_by_key(|e| self.tracker.chain_position(script, &e.txid));
        h
    }
}

/// The history a verified tracker must show for `rows`: each at its real height, block hash and
/// position.
fn expected(rows: &[(Txid, TxHeight)]) -> Vec<Reported> {
    rows.iter()
        .map(|(id, height)| {
            let (h, pos, _) = *chain().tx(id);
            assert_eq!(*height, TxHeight::Confirmed(h));
            let header = chain().header(h);
            HistoryEntry {
                txid: *id,
                height: *height,
                block: Some(ProvenIn {
                    hash: chain().block_hash(h),
                    pos,
                    // The header's time field.
                    time: u32::from_le_bytes(header[68..72].try_into().unwrap()),
                }),
            }
        })
        .collect()
}

fn script_b() -> Vec<u8> {
    chain().output_script(F, 0)
}

fn script_s() -> Vec<u8> {
    chain().output_script(CB9, 0)
}

fn history_b() -> Vec<(Txid, TxHeight)> {
    [F, X].iter().map(|t| chain().row(t)).collect()
}

fn history_s() -> Vec<(Txid, TxHeight)> {
    [CB9, T170, T181, T182, F, Y]
        .iter()
        .map(|t| chain().row(t))
        .collect()
}

/// A tracker of `B` over a fixed table of 8 slots, its honest history on the server.
fn tracking_b(version: ProtocolVersion) -> (Harness<[TxSlot; 8]>, usize, ScriptHash) {
    let mut h = Harness::new([TxSlot::EMPTY; 8], version);
    let b = h.add(&script_b());
    let hash = script_hash(&script_b());
    h.server.set(hash, history_b());
    (h, b, hash)
}

// ---------------------------------------------------------------------------------------------
// The data is what the tests say it is.

#[test]
fn the_real_data_has_the_shapes_the_tests_rely_on() {
    let c = chain();
    let (b, s) = (script_hash(&script_b()), script_hash(&script_s()));
    let parts = |t: &str| TxParts::parse(&c.tx(&txid(t)).2).unwrap();
    let pays = |t: &str, script: &ScriptHash| parts(t).pays(script);
    // F pays B at output 0 only and S at output 1; X spends F:0 and pays neither.
    let f_scripts: Vec<ScriptHash> = parts(F)
        .outputs()
        .map(|o| script_hash(o.script_pubkey))
        .collect();
    assert_eq!(f_scripts, [b, s]);
    let x_inputs: Vec<OutPoint> = parts(X).inputs().collect();
    assert_eq!(
        x_inputs,
        [OutPoint {
            txid: txid(F),
            vout: 0
        }]
    );
    assert!(!pays(X, &b) && !pays(X, &s));
    // Y spends F:1, the output of F that does not pay B.
    let y_inputs: Vec<OutPoint> = parts(Y).inputs().collect();
    assert_eq!(
        y_inputs,
        [OutPoint {
            txid: txid(F),
            vout: 1
        }]
    );
    assert!(!pays(Y, &b));
    // T170 spends the coinbase of block 9 and pays neither B nor... B.
    assert!(!pays(T170, &b));
    for t in [CB9, T170, T181, T182, F, Y] {
        assert!(pays(t, &s), "{t} pays S");
    }
    assert_eq!(c.row(F).1, TxHeight::Confirmed(183));
    assert_eq!(c.row(X).1, TxHeight::Confirmed(187));
}

// ---------------------------------------------------------------------------------------------
// 1. An honest server.

#[test]
fn honest_histories_are_verified_and_every_transaction_reported_once() {
    let mut h = Harness::new([TxSlot::EMPTY; 16], V16);
    let b = h.add(&script_b());
    let s = h.add(&script_s());
    let (hb, hs) = (script_hash(&script_b()), script_hash(&script_s()));
    h.server.set(hb, history_b());
    h.server.set(hs, history_s());
    h.run();

    assert_eq!(h.lies(), []);
    for (script, hash, rows) in [(b, hb, history_b()), (s, hs, history_s())] {
        let status = status_of(&rows);
        assert!(status.is_some());
        assert!(
            h.events
                .contains(&TrackerEvent::StatusVerified { script, status })
        );
        assert_eq!(h.tracker.verified_status(script), Some(status));
        assert_eq!(h.tracker.script_hash(script), Some(hash));
        let mut confirmed = h.confirmed(script);
        confirmed.sort_by_key(|(_, height, _)| *height);
        let want: Vec<_> = expected(&rows)
            .into_iter()
            .map(|e| {
                let TxHeight::Confirmed(height) = e.height else {
                    unreachable!()
                };
                (e.txid, height, e.block.unwrap().hash)
            })
            .collect();
        assert_eq!(confirmed, want, "each transaction confirmed exactly once");
        assert_eq!(h.history(script), expected(&rows));
        for (id, height) in &rows {
            let (at, pos, _) = *chain().tx(id);
            assert_eq!(*height, TxHeight::Confirmed(at));
            assert_eq!(
                h.tracker.chain_position(script, id),
                Some(ChainPosition::Confirmed { height: at, pos })
            );
        }
    }
    // F is in both histories: two entries, one per script.
    assert!(h.tracker.chain_position(b, &txid(F)).is_some());
    assert!(h.tracker.chain_position(s, &txid(F)).is_some());
    assert_eq!(h.tracker.chain_position(b, &txid(Y)), None);
    assert!(h.tracker.is_synced());
    let stats = h.tracker.stats();
    assert_eq!(stats.txs_done, 8);
    assert_eq!(stats.txs_pending, 0);
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.scripts_pending, 0);
    // Subscribed by script, each history asked once, each proof and transaction once.
    assert_eq!(h.sink.count(What::Subscribe(hb)), 1);
    assert_eq!(h.sink.count(What::History(hs)), 1);
    assert_eq!(h.sink.count(What::Tx(txid(X))), 1);
    assert!(h.sink.log.iter().all(|a| a.now == Instant::ZERO));
    // No header proofs without a checkpoint: the caller's headers were used.
    assert!(
        !h.sink
            .log
            .iter()
            .any(|a| matches!(a.what, What::Header { .. }))
    );
}

#[test]
fn one_poll_queues_every_request_that_is_due() {
    let mut h = Harness::new([TxSlot::EMPTY; 16], V16);
    h.add(&script_s());
    h.server.set(script_hash(&script_s()), history_s());
    h.step(false); // subscribe
    h.step(false); // history
    h.poll();
    let merkle: Vec<Txid> = h
        .sink
        .pending
        .iter()
        .filter_map(|a| match a.what {
            What::Merkle { txid, .. } => Some(txid),
            _ => None,
        })
        .collect();
    let all: Vec<Txid> = history_s().iter().map(|r| r.0).collect();
    assert_eq!(
        merkle, all,
        "every merkle branch asked in one poll, in table order"
    );
    assert_eq!(h.tracker.stats().in_flight, all.len());
}

#[test]
fn an_empty_history_is_verified_as_none() {
    let mut h = Harness::new([TxSlot::EMPTY; 2], V16);
    let i = h.add(b"\x6a\x0cnot a script");
    h.run();
    assert_eq!(
        h.events,
        [TrackerEvent::StatusVerified {
            script: i,
            status: None
        }]
    );
    assert_eq!(h.tracker.verified_status(i), Some(None));
    assert!(h.tracker.is_synced());
    // Nothing more is asked until the status changes.
    assert_eq!(h.step(false), 0);
}

// ---------------------------------------------------------------------------------------------
// 2. A spend read before its funding transaction.

#[test]
fn a_spend_answered_before_its_funding_transaction_is_verified_at_the_last_look() {
    let (mut h, b, _) = tracking_b(V16);
    h.run_with(true);
    assert_eq!(h.lies(), []);
    let order: Vec<Txid> = h.confirmed(b).iter().map(|c| c.0).collect();
    assert_eq!(order, [txid(F), txid(X)], "X proven only once F was read");
    // X was read once too early, then once more when every transaction had been read.
    assert_eq!(h.sink.count(What::Tx(txid(X))), 2);
    assert_eq!(h.sink.count(What::Tx(txid(F))), 1);
    assert_eq!(h.history(b), expected(&history_b()));
    assert!(h.tracker.is_synced());
}

#[test]
fn a_spend_listed_before_its_funding_transaction_is_verified_below_1_6() {
    let (mut h, b, hash) = tracking_b(V14);
    let mut rows = history_b();
    rows.reverse();
    h.server.set(hash, rows);
    h.run();
    assert_eq!(h.lies(), []);
    // Read once more at the last look if it was read before its funding transaction.
    assert!(matches!(h.sink.count(What::Tx(txid(X))), 1 | 2));
    assert_eq!(h.history(b), expected(&history_b()));
    assert!(h.tracker.is_synced());
}

// ---------------------------------------------------------------------------------------------
// 3, 4. Transactions that do not involve the script.

#[test]
fn an_unrelated_transaction_in_a_history_is_a_lie() {
    let (mut h, b, hash) = tracking_b(V16);
    // A real transaction (the first bitcoin payment), listed where it belongs by height; the
    // status is recomputed over the lying list.
    let mut rows = history_b();
    rows.insert(0, chain().row(T170));
    h.server.set(hash, rows);
    h.run();
    assert_eq!(
        h.lies(),
        [TrackerEvent::ServerLied {
            script: b,
            txid: Some(txid(T170)),
            lie: TrackerLie::Unrelated
        }]
    );
    // It was given its last look before being called unrelated.
    assert_eq!(h.sink.count(What::Tx(txid(T170))), 2);
    let reported: Vec<Txid> = h.confirmed(b).iter().map(|c| c.0).collect();
    assert!(!reported.contains(&txid(T170)));
    assert_eq!(h.tracker.chain_position(b, &txid(T170)), None);
    assert!(!h.tracker.is_synced());
}

#[test]
fn a_spend_of_another_output_of_a_funding_transaction_is_unrelated() {
    // Y spends F:1; only F:0 pays B.
    let (mut h, b, hash) = tracking_b(V16);
    let mut rows = history_b();
    rows.push(chain().row(Y));
    h.server.set(hash, rows);
    h.run();
    assert_eq!(
        h.lies(),
        [TrackerEvent::ServerLied {
            script: b,
            txid: Some(txid(Y)),
            lie: TrackerLie::Unrelated
        }]
    );
    let reported: Vec<Txid> = h.confirmed(b).iter().map(|c| c.0).collect();
    assert!(reported.contains(&txid(X)), "X spends F:0 and is related");
    assert!(!reported.contains(&txid(Y)));
}

// ---------------------------------------------------------------------------------------------
// 5. A txid listed twice.

#[test]
fn a_duplicate_in_a_first_history_leaves_nothing_in_the_table() {
    let (mut h, b, hash) = tracking_b(V14);
    let mut rows = history_b();
    rows.push(chain().row(F));
    h.server.set(hash, rows);
    h.run();
    assert_eq!(
        h.events,
        [TrackerEvent::ServerLied {
            script: b,
            txid: Some(txid(F)),
            lie: TrackerLie::History(HistoryFault::DuplicateTxid(txid(F)))
        }]
    );
    assert_eq!(h.tracker.verified_status(b), None);
    let stats = h.tracker.stats();
    assert_eq!((stats.txs_done, stats.txs_pending), (0, 0));
    assert!(!h.sink.log.iter().any(|a| matches!(a.what, What::Tx(_))));
}

/// `B` verified, then a second history that changes `change` and lists a new transaction
/// twice: the previous generation stays as it was.
fn duplicate_on_update(change: impl Fn(&mut Vec<(Txid, TxHeight)>)) {
    let (mut h, b, hash) = tracking_b(V14);
    h.run();
    assert!(h.tracker.is_synced());
    let before: Vec<_> = h.history(b);
    let verified = h.tracker.verified_status(b);
    let n_events = h.events.len();

    let mut rows = history_b();
    change(&mut rows);
    rows.push(chain().row(CB9));
    rows.push(chain().row(CB9));
    h.server.set(hash, rows);
    h.notify(hash);
    h.run();
    assert_eq!(
        h.events[n_events..],
        [TrackerEvent::ServerLied {
            script: b,
            txid: Some(txid(CB9)),
            lie: TrackerLie::History(HistoryFault::DuplicateTxid(txid(CB9)))
        }],
        "no Removed, no Confirmed"
    );
    assert_eq!(h.history(b), before, "the verified generation is unchanged");
    assert_eq!(h.tracker.verified_status(b), verified);
    let stats = h.tracker.stats();
    assert_eq!((stats.txs_done, stats.txs_pending), (2, 0));
    for e in &before {
        let (
            id,
            ProvenIn {
                hash: block, pos, ..
            },
        ) = (&e.txid, e.block.unwrap());
        assert_eq!(block, chain().block_hash(chain().tx(id).0));
        assert_eq!(
            h.tracker.chain_position(b, id),
            Some(ChainPosition::Confirmed {
                height: chain().tx(id).0,
                pos
            })
        );
    }

    // The server comes back to the verified history: nothing to do, nothing removed.
    h.server.set(hash, history_b());
    h.notify(hash);
    h.run();
    assert_eq!(h.events.len(), n_events + 1);
    assert!(h.tracker.is_synced());
}

#[test]
fn a_duplicate_in_a_later_history_rolls_the_merge_back() {
    duplicate_on_update(|_| {});
}

#[test]
fn a_duplicate_in_a_later_history_does_not_move_a_verified_transaction() {
    // The lying history also moves X to another height: the rolled-back merge must not keep it.
    duplicate_on_update(|rows| rows[1].1 = TxHeight::Confirmed(188));
}

#[test]
fn a_duplicate_in_a_later_history_keeps_a_transaction_still_being_verified() {
    // B's history accepted, F reported, X's transaction still asked when a history listing a
    // txid twice arrives: X belongs to the verified generation and must still be reported.
    let (mut h, b, hash) = tracking_b(V14);
    let held = h.run_until(|w| *w == What::Tx(txid(X)));
    h.run();
    assert_eq!(h.confirmed(b).len(), 1);
    let mut rows = history_b();
    rows.push(chain().row(CB9));
    rows.push(chain().row(CB9));
    h.server.set(hash, rows);
    h.notify(hash);
    h.run();
    assert_eq!(
        h.lies(),
        [TrackerEvent::ServerLied {
            script: b,
            txid: Some(txid(CB9)),
            lie: TrackerLie::History(HistoryFault::DuplicateTxid(txid(CB9)))
        }]
    );
    h.answer(&held);
    // The server announces the verified status again: nothing to fetch.
    h.server.set(hash, history_b());
    h.notify(hash);
    h.run();
    assert_eq!(h.sink.count(What::History(hash)), 2);
    assert_eq!(h.lies().len(), 1);
    assert!(h.confirmed(b).iter().any(|c| c.0 == txid(X)), "X reported");
    assert_eq!(h.history(b), expected(&history_b()));
    assert!(h.tracker.is_synced());
}

// ---------------------------------------------------------------------------------------------
// 6. Status mismatches.

#[test]
fn a_status_mismatch_is_asked_again_after_the_retry_delay_or_at_the_next_notification() {
    let (mut h, b, hash) = tracking_b(V16);
    // The server announces [F, X] but its index still lists only F.
    h.server.histories.insert(hash, vec![chain().row(F)]);
    h.now = at(5_000);
    h.step(false); // subscribe
    h.step(false); // history 1: mismatch
    assert_eq!(h.sink.count(What::History(hash)), 1);
    assert_eq!(h.events, []);
    // The retry delay counts from the next poll's clock.
    h.now = at(7_000);
    assert_eq!(h.step(false), 0);
    assert_eq!(h.tracker.poll_timeout(), Some(at(7_000) + STATUS_RETRY));
    h.now = at(7_000) + STATUS_RETRY - Duration::from_millis(1);
    assert_eq!(h.step(false), 0, "no request before the delay");
    h.now = at(7_000) + STATUS_RETRY;
    // The announced status may be the stale one: it is asked again, then the history.
    assert_eq!(h.step(false), 1);
    assert_eq!(h.sink.log.last().unwrap().what, What::Subscribe(hash));
    assert_eq!(h.step(false), 1); // history 2: mismatch
    assert_eq!(h.sink.log.last().unwrap().what, What::History(hash));
    assert_eq!(h.sink.log.last().unwrap().now, at(7_000) + STATUS_RETRY);
    assert_eq!(h.events, []);
    // A status notification asks again at once, whatever the clock.
    h.step(false);
    assert!(h.tracker.poll_timeout().is_some());
    h.server.set(hash, history_b());
    h.notify(hash);
    assert_eq!(h.tracker.poll_timeout(), None);
    h.run(); // history 3: matches
    assert_eq!(h.sink.count(What::History(hash)), 3);
    assert_eq!(h.sink.log.last().unwrap().now, at(7_000) + STATUS_RETRY);
    assert_eq!(h.lies(), []);
    assert!(h.events.contains(&TrackerEvent::StatusVerified {
        script: b,
        status: status_of(&history_b())
    }));
    assert_eq!(h.history(b), expected(&history_b()));
    assert!(h.tracker.is_synced());
}

#[test]
fn status_attempts_mismatches_in_a_row_are_a_lie() {
    let (mut h, b, hash) = tracking_b(V16);
    h.server.histories.insert(hash, vec![chain().row(F)]);
    for attempt in 1..=u64::from(STATUS_ATTEMPTS) {
        h.ask_history_again(hash);
        assert_eq!(h.sink.count(What::History(hash)), attempt as usize);
        if attempt < u64::from(STATUS_ATTEMPTS) {
            assert_eq!(h.lies(), [], "attempt {attempt}");
        }
    }
    assert_eq!(
        h.lies(),
        [TrackerEvent::ServerLied {
            script: b,
            txid: None,
            lie: TrackerLie::History(HistoryFault::StatusMismatch)
        }]
    );
    // Nothing more is asked after the lie.
    h.now += Duration::from_millis(10 * STATUS_RETRY.millis());
    assert_eq!(h.step(false), 0);
    assert_eq!(h.tracker.verified_status(b), None);
}

#[test]
fn mismatches_counted_in_a_row_start_again_after_a_verified_history() {
    let (mut h, b, hash) = tracking_b(V16);
    let honest = history_b();
    h.server.histories.insert(hash, vec![chain().row(F)]);
    h.step(false);
    h.step(false); // mismatch 1
    h.step(false); // the retry delay starts
    h.server.set(hash, honest.clone());
    h.now += STATUS_RETRY;
    h.run(); // matches
    assert_eq!(h.sink.count(What::History(hash)), 2);
    assert!(h.tracker.is_synced());
    // A new status, and two mismatches: still no lie.
    let mut more = honest;
    more.push(chain().row(T170));
    h.server.statuses.insert(hash, status_of(&more));
    h.notify(hash);
    for _ in 0..STATUS_ATTEMPTS - 1 {
        h.ask_history_again(hash);
    }
    assert_eq!(
        h.sink.count(What::History(hash)),
        2 + usize::from(STATUS_ATTEMPTS) - 1
    );
    assert_eq!(h.lies(), []);
    assert_eq!(h.tracker.verified_status(b), Some(status_of(&history_b())));
}

// ---------------------------------------------------------------------------------------------
// 7. Storage.

#[test]
fn fixed_storage_without_room_for_a_funding_output_reports_full_not_a_lie() {
    let mut h = Harness::new([TxSlot::EMPTY; 2], V16);
    let b = h.add(&script_b());
    let hash = script_hash(&script_b());
    h.server.set(hash, history_b());
    h.run();
    assert!(h.events.contains(&TrackerEvent::Full { script: b }));
    assert_eq!(h.lies(), []);
    assert_eq!(h.confirmed(b), []);
    assert!(!h.tracker.is_synced());
    // One slot more is enough.
    let mut h = Harness::new([TxSlot::EMPTY; 3], V16);
    let b = h.add(&script_b());
    h.server.set(hash, history_b());
    h.run();
    assert_eq!(h.lies(), []);
    assert!(!h.events.contains(&TrackerEvent::Full { script: b }));
    assert_eq!(h.history(b), expected(&history_b()));
    assert!(h.tracker.is_synced());
}

#[test]
fn fixed_storage_too_small_for_a_history_rolls_it_back() {
    let mut h = Harness::new([TxSlot::EMPTY; 2], V16);
    let s = h.add(&script_s());
    let hash = script_hash(&script_s());
    h.server.set(hash, history_s());
    h.run();
    assert_eq!(h.events, [TrackerEvent::Full { script: s }]);
    assert_eq!(h.tracker.verified_status(s), None);
    let stats = h.tracker.stats();
    assert_eq!((stats.txs_done, stats.txs_pending), (0, 0));
    assert!(
        !h.sink
            .log
            .iter()
            .any(|a| matches!(a.what, What::Merkle { .. }))
    );
    // Asked again at the next status change, still full, still no lie.
    h.notify(hash);
    h.run();
    assert_eq!(h.sink.count(What::History(hash)), 2);
    assert_eq!(h.lies(), []);
}

#[test]
fn a_growing_table_grows_to_what_the_histories_need() {
    let mut table = Vec::new();
    {
        let mut h = Harness::new(Growing(&mut table), V16);
        let b = h.add(&script_b());
        let s = h.add(&script_s());
        h.server.set(script_hash(&script_b()), history_b());
        h.server.set(script_hash(&script_s()), history_s());
        h.run();
        assert_eq!(h.lies(), []);
        assert!(
            !h.events
                .iter()
                .any(|e| matches!(e, TrackerEvent::Full { .. }))
        );
        assert_eq!(h.history(b), expected(&history_b()));
        assert_eq!(h.history(s), expected(&history_s()));
        assert!(h.tracker.is_synced());
    }
    // 8 entries; funding outputs: F:0 for B, one per transaction of S.
    assert_eq!(table.len(), 8 + 1 + 6);
}

// ---------------------------------------------------------------------------------------------
// 8. A transaction removed while its request is in flight.

#[test]
fn a_late_answer_for_a_removed_transaction_is_ignored_and_its_slot_reused_after() {
    // Six slots: exactly what the last history needs (three entries, three funding outputs),
    // so the slot of the removed transaction must be free again by then.
    let mut h = Harness::new([TxSlot::EMPTY; 6], V16);
    let s = h.add(&script_s());
    let hash = script_hash(&script_s());
    let c = chain();
    h.server.set(hash, vec![c.row(CB9), c.row(T170)]);
    // Everything answered but the transaction T170.
    let late = h.run_until(|w| *w == What::Tx(txid(T170)));
    h.run();
    assert_eq!(h.confirmed(s).len(), 1);

    // T170 leaves the history while its transaction is asked.
    h.server.set(hash, vec![c.row(CB9)]);
    h.notify(hash);
    h.run();
    assert!(h.events.contains(&TrackerEvent::StatusVerified {
        script: s,
        status: status_of(&[c.row(CB9)])
    }));
    assert!(
        !h.events
            .iter()
            .any(|e| matches!(e, TrackerEvent::Removed { .. })),
        "T170 was never reported"
    );
    assert_eq!(h.tracker.stats().in_flight, 1);

    // A new transaction comes in; the late answer arrives while its transaction is asked.
    h.server.set(hash, vec![c.row(CB9), c.row(T181)]);
    h.notify(hash);
    let t181 = h.run_until(|w| *w == What::Tx(txid(T181)));
    assert_ne!(
        t181.tag & 0xF_FFFF,
        late.tag & 0xF_FFFF,
        "a retired slot is not reused while asked"
    );
    let n_events = h.events.len();
    h.answer(&late);
    assert_eq!(h.events.len(), n_events, "the late answer is ignored");
    h.answer(&t181);
    h.run();
    assert_eq!(h.lies(), []);
    assert!(h.confirmed(s).iter().any(|c| c.0 == txid(T181)));
    assert_eq!(h.history(s), expected(&[c.row(CB9), c.row(T181)]));
    assert!(h.tracker.is_synced());
    assert_eq!(h.tracker.stats().in_flight, 0);

    // The slot was freed by the late answer: the table holds the next history exactly.
    let rows = vec![c.row(CB9), c.row(T181), c.row(T182)];
    h.server.set(hash, rows.clone());
    h.notify(hash);
    h.run();
    assert_eq!(h.lies(), []);
    assert!(!h.events.contains(&TrackerEvent::Full { script: s }));
    assert_eq!(h.history(s), expected(&rows));
    assert!(h.tracker.is_synced());
}

#[test]
fn a_reported_transaction_that_leaves_the_history_is_removed() {
    let (mut h, b, hash) = tracking_b(V16);
    h.run();
    h.server.set(hash, vec![chain().row(F)]);
    h.notify(hash);
    h.run();
    let removed: Vec<_> = h
        .events
        .iter()
        .filter(|e| matches!(e, TrackerEvent::Removed { .. }))
        .collect();
    assert_eq!(
        removed,
        [&TrackerEvent::Removed {
            script: b,
            txid: txid(X)
        }]
    );
    assert_eq!(h.history(b), expected(&[chain().row(F)]));
    assert!(h.tracker.is_synced());
}

// ---------------------------------------------------------------------------------------------
// 9. Timeouts, refused proofs, checkpoints, a new connection.

#[test]
fn timed_out_requests_are_asked_again() {
    let (mut h, b, hash) = tracking_b(V16);
    for what in [
        What::Subscribe(hash),
        What::History(hash),
        What::Merkle {
            txid: txid(F),
            height: 183,
        },
        What::Tx(txid(X)),
    ] {
        h.server.time_out_once.insert(what);
    }
    h.run();
    assert_eq!(h.lies(), []);
    for what in h.server.time_out_once.clone() {
        assert_eq!(h.sink.count(what), 2, "{what:?} asked again");
    }
    assert_eq!(h.history(b), expected(&history_b()));
    assert_eq!(h.sink.count(What::Tx(txid(F))), 1);
    assert!(h.tracker.is_synced());
    assert_eq!(h.tracker.stats().in_flight, 0);
}

#[test]
fn header_proofs_against_a_checkpoint_verify_without_the_callers_headers() {
    let (mut h, b, _) = tracking_b(V16);
    h.provide_headers = false;
    h.server.header_proofs = true;
    h.tracker.set_checkpoint(438, checkpoint_root(438));
    h.run();
    assert_eq!(h.lies(), []);
    assert_eq!(h.tracker.header_wanted(), None);
    assert_eq!(
        h.sink.count(What::Header {
            height: 183,
            cp_height: 438
        }),
        1
    );
    assert_eq!(h.history(b), expected(&history_b()));
    assert!(h.tracker.is_synced());
}

#[test]
fn a_header_proof_against_another_root_is_a_lie() {
    let (mut h, b, _) = tracking_b(V16);
    h.provide_headers = false;
    h.server.header_proofs = true;
    // The client holds a wrong root for 438 (the root of 0..=437): the server's honest proof
    // for 438 does not reach it.
    h.tracker.set_checkpoint(438, checkpoint_root(437));
    h.run();
    let lies = h.lies();
    assert!(!lies.is_empty());
    for lie in lies {
        assert!(
            matches!(
                lie,
                TrackerEvent::ServerLied {
                    script,
                    lie: TrackerLie::HeaderProof(HeaderProofError::RootMismatch),
                    ..
                } if script == b
            ),
            "{lie:?}"
        );
    }
    assert_eq!(h.confirmed(b), []);
}

#[test]
fn a_header_proof_for_another_height_is_a_lie() {
    let (mut h, b, _) = tracking_b(V16);
    h.provide_headers = false;
    h.server.header_proofs = true;
    h.server.tamper = Some(Tamper::HeaderBranch);
    h.tracker.set_checkpoint(438, checkpoint_root(438));
    h.run();
    let lies = h.lies();
    assert!(!lies.is_empty());
    for lie in lies {
        assert!(
            matches!(
                lie,
                TrackerEvent::ServerLied {
                    script,
                    lie: TrackerLie::HeaderProof(_),
                    ..
                } if script == b
            ),
            "{lie:?}"
        );
    }
    assert_eq!(h.confirmed(b), []);
}

#[test]
fn a_refused_header_proof_wants_the_callers_header_and_is_no_lie() {
    let (mut h, b, _) = tracking_b(V16);
    h.provide_headers = false;
    h.server.header_proofs = false;
    h.tracker.set_checkpoint(438, checkpoint_root(438));
    h.run();
    assert_eq!(h.lies(), []);
    let mut wanted: Vec<u32> = h
        .events
        .iter()
        .filter_map(|e| match e {
            TrackerEvent::HeaderWanted { height } => Some(*height),
            _ => None,
        })
        .collect();
    wanted.sort();
    assert_eq!(wanted, [183, 187]);
    let header_requests = |h: &Harness<_>| {
        h.sink
            .log
            .iter()
            .filter(|a| matches!(a.what, What::Header { .. }))
            .count()
    };
    assert_eq!(header_requests(&h), 2);
    assert_eq!(h.tracker.header_wanted(), Some(183));
    assert!(!h.tracker.is_synced());
    // The caller's headers finish the job; no header proof is asked again.
    h.provide_headers = true;
    h.run();
    assert_eq!(h.lies(), []);
    assert_eq!(header_requests(&h), 2);
    assert_eq!(h.history(b), expected(&history_b()));
    assert!(h.tracker.is_synced());
}

#[test]
fn a_new_connection_subscribes_again_and_asks_again_what_was_in_flight() {
    let (mut h, b, hash) = tracking_b(V16);
    // Lost with the connection: the transaction request of X.
    let lost = h.run_until(|w| *w == What::Tx(txid(X)));
    h.run();
    assert!(!h.tracker.is_synced());
    assert_eq!(h.tracker.stats().in_flight, 1);
    h.tracker.reset_connection();
    assert_eq!(h.tracker.stats().in_flight, 0);
    h.poll();
    let again: Vec<What> = h.sink.pending.iter().map(|a| a.what).collect();
    assert!(again.contains(&What::Subscribe(hash)), "{again:?}");
    assert!(again.contains(&lost.what), "{again:?}");
    h.run();
    assert_eq!(h.lies(), []);
    assert_eq!(h.sink.count(What::Subscribe(hash)), 2);
    assert_eq!(h.sink.count(What::History(hash)), 1, "status unchanged");
    assert_eq!(h.history(b), expected(&history_b()));
    assert!(h.tracker.is_synced());

    // Once synced, a new connection only subscribes.
    let n = h.sink.log.len();
    h.tracker.reset_connection();
    h.run();
    let asked: Vec<What> = h.sink.log[n..].iter().map(|a| a.what).collect();
    assert_eq!(asked, [What::Subscribe(hash)]);
    assert!(h.tracker.is_synced());
}

// ---------------------------------------------------------------------------------------------
// 10. Bytes that are not the transaction.

fn lie_about_x(version: ProtocolVersion, hex_of_x: String) -> Vec<TrackerEvent> {
    let (mut h, _, _) = tracking_b(version);
    h.server.tx_hex.insert(txid(X), hex_of_x);
    h.run();
    assert!(h.confirmed(0).iter().all(|c| c.0 != txid(X)));
    h.lies()
}

fn lie_on_x(lie: TrackerLie) -> Vec<TrackerEvent> {
    vec![TrackerEvent::ServerLied {
        script: 0,
        txid: Some(txid(X)),
        lie,
    }]
}

#[test]
fn another_transactions_bytes_are_a_txid_mismatch() {
    let f = hex(&chain().tx(&txid(F)).2);
    assert_eq!(
        lie_about_x(V16, f),
        lie_on_x(TrackerLie::TxidMismatch { got: txid(F) })
    );
}

#[test]
fn bytes_that_are_not_a_transaction_are_malformed() {
    let x = hex(&chain().tx(&txid(X)).2);
    assert_eq!(
        lie_about_x(V16, "zz".repeat(x.len() / 2)),
        lie_on_x(TrackerLie::Malformed)
    );
    // Odd length: not hex bytes at all.
    assert_eq!(
        lie_about_x(V16, format!("{x}0")),
        lie_on_x(TrackerLie::Malformed)
    );
    // Cut short, or with a byte after the end.
    assert_eq!(
        lie_about_x(V16, x[..x.len() - 2].to_string()),
        lie_on_x(TrackerLie::Tx(TxError::Incomplete))
    );
    assert_eq!(
        lie_about_x(V16, format!("{x}00")),
        lie_on_x(TrackerLie::Tx(TxError::TrailingBytes))
    );
}

/// The lies of a tracker of `B` whose server falsifies its merkle proofs.
fn merkle_lies(tamper: Tamper) -> Vec<TrackerEvent> {
    let (mut h, b, _) = tracking_b(V16);
    h.server.tamper = Some(tamper);
    h.run();
    assert_eq!(h.confirmed(b), []);
    assert!(!h.sink.log.iter().any(|a| matches!(a.what, What::Tx(_))));
    let mut lies = h.lies();
    lies.sort_by_key(|e| match e {
        TrackerEvent::ServerLied { txid, .. } => txid.map(|t| chain().tx(&t).0),
        _ => None,
    });
    lies
}

#[test]
fn a_merkle_proof_for_another_block_is_a_lie() {
    let lie = |t, lie| TrackerEvent::ServerLied {
        script: 0,
        txid: Some(txid(t)),
        lie,
    };
    assert_eq!(
        merkle_lies(Tamper::MerkleHeight),
        [
            lie(F, TrackerLie::ProofHeight { claimed: 182 }),
            lie(X, TrackerLie::ProofHeight { claimed: 186 })
        ]
    );
    let lies = merkle_lies(Tamper::MerklePos);
    assert_eq!(lies.len(), 2);
    for lie in lies {
        assert!(
            matches!(
                lie,
                TrackerEvent::ServerLied {
                    lie: TrackerLie::Merkle(_),
                    ..
                }
            ),
            "{lie:?}"
        );
    }
}

#[test]
fn a_transaction_the_server_refuses_to_give_is_a_lie() {
    let (mut h, b, _) = tracking_b(V16);
    h.server.tx_hex.remove(&txid(X));
    h.run();
    assert_eq!(
        h.lies(),
        [TrackerEvent::ServerLied {
            script: b,
            txid: Some(txid(X)),
            lie: TrackerLie::Refused
        }]
    );
}

// ---------------------------------------------------------------------------------------------
// Histories handed over by the caller, requests in flight across resets.

/// `script`'s history as the server would list it, as the caller's streamed copy.
fn items_of(h: &Harness<[TxSlot; 8]>, script: &ScriptHash) -> Vec<HistoryItem> {
    h.server.histories[script]
        .iter()
        .map(|&(txid, height)| HistoryItem {
            txid,
            height,
            fee: None,
        })
        .collect()
}

#[test]
fn a_history_handed_over_by_the_caller_frees_its_place_in_the_window() {
    let (mut h, b, hash) = tracking_b(V16);
    h.tracker.set_max_in_flight(1);
    h.step(false); // subscribe
    h.poll();
    let asked = h.sink.take();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].what, What::History(hash));
    let items = items_of(&h, &hash);
    let verified = h.tracker.handle_history(V16, asked[0].tag, &items);
    assert!(matches!(
        verified,
        Some(TrackerEvent::StatusVerified { .. })
    ));
    // The window of one is free again: the transactions are asked.
    h.run();
    assert_eq!(h.lies(), []);
    assert_eq!(h.history(b), expected(&history_b()));
    assert!(h.tracker.is_synced());
}

#[test]
fn a_history_too_large_for_the_line_waits_for_the_callers_copy_or_the_next_status() {
    let (mut h, b, hash) = tracking_b(V16);
    h.step(false); // subscribe
    h.poll();
    let asked = h.sink.take();
    assert_eq!(asked[0].what, What::History(hash));
    h.handle(&Event::ResponseTooLarge {
        id: asked[0].id,
        method: asked[0].method,
        tag: asked[0].tag,
        len: 1 << 30,
    });
    assert_eq!(
        h.events,
        [TrackerEvent::TooLarge {
            script: b,
            tag: asked[0].tag
        }]
    );
    assert_eq!(h.step(false), 0, "not asked again on its own");
    assert!(!h.tracker.is_synced());
    // A status change asks again.
    h.notify(hash);
    h.poll();
    let again = h.sink.take();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].what, What::History(hash));
    h.handle(&Event::ResponseTooLarge {
        id: again[0].id,
        method: again[0].method,
        tag: again[0].tag,
        len: 1 << 30,
    });
    // The caller's streamed copy is checked as any history.
    let items = items_of(&h, &hash);
    let verified = h.tracker.handle_history(V16, again[0].tag, &items);
    assert!(matches!(
        verified,
        Some(TrackerEvent::StatusVerified { .. })
    ));
    h.run();
    assert_eq!(h.lies(), []);
    assert_eq!(h.history(b), expected(&history_b()));
    assert!(h.tracker.is_synced());
}

#[test]
fn a_transaction_reset_while_asked_is_not_asked_twice_and_its_late_answer_is_dropped() {
    let (mut h, b, _) = tracking_b(V16);
    let held = h.run_until(|w| matches!(w, What::Merkle { txid: t, .. } if *t == txid(F)));
    let merkles = |h: &Harness<[TxSlot; 8]>| {
        h.sink
            .log
            .iter()
            .filter(|a| matches!(a.what, What::Merkle { txid: t, .. } if t == txid(F)))
            .count()
    };
    assert_eq!(merkles(&h), 1);
    // A reorg below it: its header and branch are asked again, but not while the first
    // request is unanswered (one request per slot: the answer could be taken for the new one).
    h.tracker.reorg(0);
    h.step(false);
    assert_eq!(merkles(&h), 1, "asked again before the first answer came");
    h.answer(&held);
    assert_eq!(h.lies(), []);
    h.run();
    assert_eq!(merkles(&h), 2);
    assert_eq!(h.lies(), []);
    assert_eq!(h.history(b), expected(&history_b()));
    assert!(h.tracker.is_synced());
}

#[test]
fn a_new_connection_subscribes_every_script_again() {
    let (mut h, _, hash) = tracking_b(V16);
    h.run();
    assert!(h.tracker.is_synced());
    // A status change is announced, then the connection drops before the history is asked.
    let mut more = history_b();
    more.push(chain().row(T170));
    h.server.statuses.insert(hash, status_of(&more));
    h.notify(hash);
    h.tracker.reset_connection();
    h.server.set(hash, history_b());
    h.poll();
    let first = h.sink.take();
    assert_eq!(
        first.iter().map(|a| a.what).collect::<Vec<_>>(),
        [What::Subscribe(hash)],
        "subscribed again before anything else"
    );
}

#[test]
fn a_script_added_twice_hears_its_notifications_in_both_slots() {
    let mut h = Harness::new([TxSlot::EMPTY; 8], V16);
    let hash = script_hash(&script_b());
    let first = h.add(&script_b());
    let second = h.add(&script_b());
    h.server.set(hash, history_b());
    h.run();
    assert!(h.tracker.is_synced());
    let before = h.sink.count(What::History(hash));
    let mut more = history_b();
    more.push(chain().row(T170));
    h.server.statuses.insert(hash, status_of(&more));
    h.notify(hash);
    h.step(false);
    assert_eq!(h.sink.count(What::History(hash)), before + 2);
    assert_ne!(first, second);
}

#[test]
fn a_mempool_transaction_the_server_no_longer_gives_is_not_a_lie() {
    let (mut h, b, hash) = tracking_b(V16);
    // X in the mempool, then gone from the server's mempool before it is fetched.
    let rows = vec![chain().row(F), (txid(X), TxHeight::Mempool)];
    h.server.set(hash, rows);
    h.server.tx_hex.remove(&txid(X));
    h.run();
    assert_eq!(h.lies(), []);
    assert!(!h.tracker.is_synced(), "waits for the next history");
    // The next history, without it, is verified and complete.
    h.server.set(hash, vec![chain().row(F)]);
    h.notify(hash);
    h.run();
    assert_eq!(h.lies(), []);
    assert!(h.tracker.is_synced());
    assert_eq!(h.history(b).len(), 1);
}

#[test]
fn a_busy_address_whose_status_changes_during_each_fetch_is_not_a_liar() {
    let (mut h, b, hash) = tracking_b(V16);
    let short = vec![chain().row(F)];
    let long = history_b();
    h.server.set(hash, short.clone());
    for round in 0..2 * usize::from(STATUS_ATTEMPTS) {
        let held = h.run_until(|w| *w == What::History(hash));
        // Answered from the index as it was; a new status is announced before it arrives.
        let reply = h.server.answer(&held);
        let next = if round % 2 == 0 { &long } else { &short };
        h.server.set(hash, next.clone());
        h.notify(hash);
        h.deliver(&held, reply);
        assert_eq!(h.lies(), [], "round {round}");
    }
    h.run();
    assert_eq!(h.lies(), []);
    assert!(h.tracker.is_synced());
    assert_eq!(h.history(b), expected(&short));
}

#[test]
fn announcing_statuses_forever_does_not_keep_a_false_history_unnamed() {
    let (mut h, b, hash) = tracking_b(V16);
    // Every answer is a history that matches no status the server announces.
    let mut lied_at = None;
    for round in 0..usize::from(STATUS_RACES) + usize::from(STATUS_ATTEMPTS) + 2 {
        // Past a counted mismatch's retry delay (the first poll starts it).
        h.poll();
        h.now += STATUS_RETRY;
        let held = h.run_until(|w| *w == What::History(hash));
        let reply = h.server.answer(&held);
        let mut more = history_b();
        more.push(chain().row(T170));
        h.server.statuses.insert(hash, status_of(&more));
        h.notify(hash);
        h.deliver(&held, reply);
        if !h.lies().is_empty() {
            lied_at = Some(round);
            break;
        }
    }
    assert_eq!(
        h.lies(),
        [TrackerEvent::ServerLied {
            script: b,
            txid: None,
            lie: TrackerLie::History(HistoryFault::StatusMismatch)
        }]
    );
    assert_eq!(
        lied_at,
        Some(usize::from(STATUS_RACES) + usize::from(STATUS_ATTEMPTS) - 1)
    );
}

/// Caller time `ms` milliseconds after the origin.
fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}
