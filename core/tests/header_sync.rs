//! `HeaderSync` driven through a real `Session` fed by a scripted in-process server: real
//! mainnet headers from a checkpoint, forged headers, pacing, tip following and reorgs over
//! regtest headers mined here.

mod common;

use std::collections::VecDeque;

use electrum_spv_core::chain::{Anchor, HeaderErrorKind, MAINNET, Params, REGTEST};
use electrum_spv_core::hash::{BlockHash, sha256d};
use electrum_spv_core::rpc::Method;
use electrum_spv_core::session::{Config, Session, SessionStorage};
use electrum_spv_core::sync::headers::{
    FULL_CHUNK_COST_MILLI, MAX_REORG_DEPTH, RETRY_DELAY, request_cost_milli,
};
use electrum_spv_core::sync::{HeaderSync, Lie, Pacing, SyncError, SyncEvent};
use electrum_spv_core::{MerkleAccumulator, hex};
use serde_json::{Value, json};

const RECENT: &str = "mainnet/headers_822528_830592.bin";
const RECENT_START: u32 = 822_528;

/// Lines delivered at one `now` before a test calls it a request loop.
const MAX_LINES: usize = 100;

/// A session that buffers whole replies (a full chunk fits).
const BUFFERED: usize = 400 * 1024;
/// A session whose line buffer holds only small replies: chunks must be streamed.
const SMALL: usize = 1024;

fn hash(h: &[u8; 80]) -> BlockHash {
    BlockHash::from_byte_array(sha256d(h))
}

fn to_hex(b: &[u8]) -> String {
    let mut out = vec![0u8; b.len() * 2];
    hex::encode_to_slice(b, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// A scripted Electrum server over a header list, talking to a real `Session`.
struct Server<const L: usize = BUFFERED> {
    session: Box<Session<'static>>,
    /// Protocol version it negotiates: "1.4" answers `hex`, "1.6" answers `headers` lists.
    version: &'static str,
    genesis: BlockHash,
    /// Height of `chain[0]`.
    base: u32,
    chain: Vec<[u8; 80]>,
    /// Lines waiting to be read by the session.
    inbox: VecDeque<Vec<u8>>,
    /// `(start, count)` of every `blockchain.block.headers` request.
    header_requests: Vec<(u32, u32)>,
    subscribes: usize,
    /// Answer requests (false: swallow them, so they time out).
    answer: bool,
    /// Replace the next `block.headers` result with this raw JSON.
    next_result: Option<String>,
}

impl<const L: usize> Server<L> {
    fn new(
        params: &'static Params,
        version: &'static str,
        base: u32,
        chain: Vec<[u8; 80]>,
    ) -> Self {
        Server {
            session: Box::new(Session::new(
                SessionStorage::owned(L, 1 << 14, 16),
                Config::new(params),
                at(0),
            )),
            version,
            genesis: params.genesis_hash,
            base,
            chain,
            inbox: VecDeque::new(),
            header_requests: Vec::new(),
            subscribes: 0,
            answer: true,
            next_result: None,
        }
    }

    fn tip(&self) -> u32 {
        self.base + self.chain.len() as u32 - 1
    }

    fn header(&self, height: u32) -> [u8; 80] {
        self.chain[(height - self.base) as usize]
    }

    fn notify(&mut self) {
        let line = json!({"jsonrpc": "2.0", "method": "blockchain.headers.subscribe",
            "params": [{"hex": to_hex(&self.header(self.tip())), "height": self.tip()}]});
        self.inbox.push_back(line.to_string().into_bytes());
    }

    /// Reads what the session sent and queues the answers.
    fn serve(&mut self) -> bool {
        let mut buf = vec![0u8; 1 << 14];
        let mut sent = Vec::new();
        loop {
            let n = self.session.poll_transmit(&mut buf);
            if n == 0 {
                break;
            }
            sent.extend_from_slice(&buf[..n]);
        }
        let any = !sent.is_empty();
        for line in sent.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let req: Value = serde_json::from_slice(line).expect("session sends JSON");
            let id = req["id"].clone();
            let params = req["params"].as_array().cloned().unwrap_or_default();
            let result = match req["method"].as_str().unwrap() {
                "server.version" => json!(["ElectrumX 1.16.0", self.version]),
                "server.features" => json!({"genesis_hash": self.genesis.to_string()}),
                "server.ping" => Value::Null,
                "blockchain.headers.subscribe" => {
                    self.subscribes += 1;
                    json!({"hex": to_hex(&self.header(self.tip())), "height": self.tip()})
                }
                "blockchain.block.headers" => {
                    let start = params[0].as_u64().unwrap() as u32;
                    let count = params[1].as_u64().unwrap() as u32;
                    self.header_requests.push((start, count));
                    if let Some(raw) = self.next_result.take() {
                        let line = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{raw}}}"#);
                        if self.answer {
                            self.inbox.push_back(line.into_bytes());
                        }
                        continue;
                    }
                    let end = (start + count).min(self.tip() + 1);
                    let hs: Vec<[u8; 80]> = (start..end).map(|h| self.header(h)).collect();
                    if self.version == "1.4" {
                        let hex: String = hs.iter().map(|h| to_hex(h)).collect();
                        json!({"count": hs.len(), "hex": hex, "max": 2016})
                    } else {
                        let list: Vec<String> = hs.iter().map(|h| to_hex(h)).collect();
                        json!({"count": hs.len(), "headers": list, "max": 2016})
                    }
                }
                other => panic!("unexpected request {other}"),
            };
            if self.answer {
                let line = json!({"jsonrpc": "2.0", "id": id, "result": result});
                self.inbox.push_back(line.to_string().into_bytes());
            }
        }
        any
    }

    /// Polls the sync, serves, delivers, until nothing moves at this `now`. Returns the
    /// sync's events.
    fn run(&mut self, now: u64, sync: &mut HeaderSync) -> Vec<SyncEvent> {
        let now = at(now);
        let mut events = Vec::new();
        let mut lines = 0;
        loop {
            let _ = sync.poll(now, &mut self.session);
            let sent = self.serve();
            if !sent && self.inbox.is_empty() {
                return events;
            }
            while let Some(mut line) = self.inbox.pop_front() {
                lines += 1;
                assert!(
                    lines <= MAX_LINES,
                    "still talking after {MAX_LINES} lines (a request loop?): {events:?}"
                );
                line.push(b'\n');
                let mut rest = &line[..];
                while !rest.is_empty() {
                    let n = self.session.handle_input(now, rest);
                    rest = &rest[n..];
                    while let Some(ev) = self.session.poll_event() {
                        if let Some(s) = sync.handle_event(now, &ev) {
                            events.push(s);
                        }
                    }
                }
                let _ = sync.poll(now, &mut self.session);
                self.serve();
            }
        }
    }

    fn timeout(&mut self, now: u64, sync: &mut HeaderSync) -> Vec<SyncEvent> {
        let now = at(now);
        self.session.handle_timeout(now);
        let mut events = Vec::new();
        while let Some(ev) = self.session.poll_event() {
            if let Some(s) = sync.handle_event(now, &ev) {
                events.push(s);
            }
        }
        events
    }
}

fn recent() -> Vec<[u8; 80]> {
    common::headers(RECENT)
}

fn mainnet_sync(pacing: Pacing) -> HeaderSync {
    HeaderSync::with_pacing(
        &MAINNET,
        Anchor::at_height(&MAINNET, RECENT_START).unwrap(),
        pacing,
    )
}

fn synced_tip(events: &[SyncEvent]) -> Option<(u32, BlockHash)> {
    events.iter().rev().find_map(|e| match e {
        SyncEvent::Synced { tip } => Some((tip.height, tip.hash)),
        _ => None,
    })
}

#[test]
fn real_mainnet_headers_from_a_checkpoint_in_aligned_chunks() {
    for version in ["1.4", "1.6"] {
        let hs = recent();
        let mut server = Server::<BUFFERED>::new(&MAINNET, version, RECENT_START, hs.clone());
        let mut sync = mainnet_sync(Pacing::UNLIMITED);
        let events = server.run(0, &mut sync);
        assert_eq!(
            server.header_requests,
            vec![
                (822_528, 2016),
                (824_544, 2016),
                (826_560, 2016),
                (828_576, 2016),
                (830_592, 1)
            ],
            "{version}: one request per difficulty period"
        );
        let last = *hs.last().unwrap();
        assert_eq!(
            synced_tip(&events),
            Some((830_592, hash(&last))),
            "{version}"
        );
        assert!(sync.is_synced());
        let progress: Vec<u32> = events
            .iter()
            .filter_map(|e| match e {
                SyncEvent::Progress { height } => Some(*height),
                _ => None,
            })
            .collect();
        assert_eq!(progress, vec![824_543, 826_559, 828_575, 830_591]);
        // Recent hashes are kept; older ones and a checkpoint-anchored cp root are not.
        let tip = sync.tip().unwrap().height;
        assert_eq!(sync.hash_at(tip - 10), Some(hash(&hs[hs.len() - 11])));
        assert_eq!(sync.hash_at(tip - 200), None);
        assert_eq!(sync.hash_at(tip + 1), None);
        assert_eq!(sync.cp_root(), None);
        // Nothing more to do.
        assert!(server.run(1_000_000, &mut sync).is_empty());
        assert_eq!(server.header_requests.len(), 5);
    }
}

#[test]
fn a_forged_header_mid_chunk_is_a_lie_at_its_height_and_stops_everything() {
    // Flipped nonce (proof of work), and a real header moved to the wrong height (link).
    let forged_height = 825_000;
    let ix = (forged_height - RECENT_START) as usize;
    let mut bad_pow = recent();
    bad_pow[ix][79] ^= 0x01;
    let mut bad_link = recent();
    bad_link[ix] = bad_link[ix + 1];
    for (chain, kind) in [
        (bad_pow, HeaderErrorKind::InsufficientProofOfWork),
        (bad_link, HeaderErrorKind::PrevHashMismatch),
    ] {
        let mut server = Server::<BUFFERED>::new(&MAINNET, "1.6", RECENT_START, chain);
        let mut sync = mainnet_sync(Pacing::UNLIMITED);
        let events = server.run(0, &mut sync);
        let lie = events.iter().find_map(|e| match e {
            SyncEvent::ServerLied(Lie::InvalidHeader(e)) => Some(*e),
            _ => None,
        });
        let lie = lie.unwrap_or_else(|| panic!("no lie reported: {events:?}"));
        assert_eq!((lie.height, lie.kind), (forged_height, kind));
        assert_eq!(sync.tip().unwrap().height, forged_height - 1);
        assert_eq!(
            sync.hash_at(forged_height - 1),
            Some(hash(&recent()[ix - 1]))
        );
        // Halted: no further request, poll reports why.
        assert_eq!(server.header_requests.len(), 2);
        assert!(matches!(
            sync.poll(at(10_000_000), &mut server.session),
            Err(SyncError::ServerLied(_))
        ));
        assert!(server.run(10_000_000, &mut sync).is_empty());
        assert_eq!(server.header_requests.len(), 2);
        assert_eq!(sync.tip().unwrap().height, forged_height - 1);
    }
}

#[test]
fn malformed_and_oversized_results_are_lies() {
    let hs = recent();
    let cases = [
        (
            r#"{"count":1,"hex":"00","max":2016}"#.to_string(),
            "short hex",
        ),
        (
            format!(
                r#"{{"count":2017,"headers":[{}],"max":2016}}"#,
                vec![format!("\"{}\"", to_hex(&hs[0])); 2017].join(",")
            ),
            "more than asked",
        ),
        (
            format!(
                r#"{{"count":2,"headers":["{}"],"max":2016}}"#,
                to_hex(&hs[0])
            ),
            "list shorter than count",
        ),
    ];
    for (raw, what) in cases {
        let mut server = Server::<BUFFERED>::new(&MAINNET, "1.6", RECENT_START, hs.clone());
        server.next_result = Some(raw);
        let mut sync = mainnet_sync(Pacing::UNLIMITED);
        let events = server.run(0, &mut sync);
        assert!(
            matches!(
                events.last(),
                Some(SyncEvent::ServerLied(
                    Lie::Malformed {
                        method: Method::BlockHeaders
                    } | Lie::WrongCount { .. }
                ))
            ),
            "{what}: {events:?}"
        );
        assert!(sync.halted().is_some(), "{what}");
    }
}

#[test]
fn pacing_bounds_chunk_requests_until_time_passes() {
    // A bucket of 2.5 full chunks refilling at 1 unit/s.
    let pacing = Pacing {
        burst_milli: FULL_CHUNK_COST_MILLI * 5 / 2,
        refill_milli_per_s: 1_000,
    };
    let mut server = Server::<BUFFERED>::new(&MAINNET, "1.6", RECENT_START, recent());
    let mut sync = mainnet_sync(pacing);
    server.run(0, &mut sync);
    assert_eq!(server.header_requests.len(), 2, "burst: two full chunks");
    for _ in 0..3 {
        server.run(0, &mut sync);
    }
    assert_eq!(server.header_requests.len(), 2, "no more without time");
    // The bucket holds 2.5 chunks minus two chunks and the subscription.
    let left = pacing.burst_milli - 2 * FULL_CHUNK_COST_MILLI - request_cost_milli(0);
    let wait = (FULL_CHUNK_COST_MILLI - left).div_ceil(1);
    let wake = sync.poll_timeout().expect("waiting for tokens").millis();
    assert_eq!(wake, wait, "poll_timeout is when the bucket holds a chunk");
    server.run(wake - 1, &mut sync);
    assert_eq!(server.header_requests.len(), 2);
    server.run(wake, &mut sync);
    assert_eq!(server.header_requests.len(), 3, "one more when due");
    // Then one full chunk per ~107 s, and the 1-header tail costs proportionally less.
    let next = sync.poll_timeout().unwrap().millis();
    assert_eq!(next - wake, FULL_CHUNK_COST_MILLI);
    server.run(next, &mut sync);
    assert_eq!(server.header_requests.len(), 4);
    let tail = sync.poll_timeout().unwrap().millis();
    assert_eq!(tail - next, request_cost_milli(1));
    let events = server.run(tail, &mut sync);
    assert_eq!(server.header_requests.len(), 5);
    assert_eq!(synced_tip(&events).map(|t| t.0), Some(830_592));
    assert_eq!(sync.poll_timeout(), None, "synced: nothing to wait for");
}

#[test]
fn default_pacing_sends_at_most_eight_full_chunks_at_once() {
    // A server whose tip is far ahead: the real data covers four periods, so check the
    // bucket arithmetic the engine uses against a long sync by counting what it would allow.
    let pacing = Pacing::ELECTRUMX_DEFAULT;
    let mut tokens = pacing.burst_milli - request_cost_milli(0);
    let mut n = 0;
    while tokens >= FULL_CHUNK_COST_MILLI {
        tokens -= FULL_CHUNK_COST_MILLI;
        n += 1;
    }
    assert_eq!(n, 8);
    // And the engine itself sends all four available chunks at once under the default.
    let mut server = Server::<BUFFERED>::new(&MAINNET, "1.6", RECENT_START, recent());
    let mut sync = mainnet_sync(pacing);
    let events = server.run(0, &mut sync);
    assert_eq!(server.header_requests.len(), 5);
    assert_eq!(synced_tip(&events).map(|t| t.0), Some(830_592));
}

#[test]
fn a_timed_out_chunk_is_retried_after_the_delay() {
    let hs = recent();
    let mut short = Server::<BUFFERED>::new(&MAINNET, "1.6", RECENT_START, hs[..10].to_vec());
    let mut s2 = mainnet_sync(Pacing::UNLIMITED);
    short.run(0, &mut s2);
    assert_eq!(s2.tip().unwrap().height, RECENT_START + 9);
    // The server announces ten more headers but swallows the request for them.
    short.chain = hs[..20].to_vec();
    short.answer = false;
    short.notify();
    short.run(1, &mut s2);
    assert_eq!(short.header_requests.last(), Some(&(RECENT_START + 10, 10)));
    let t = 1 + 40_000;
    let events = short.timeout(t, &mut s2);
    assert_eq!(
        events,
        vec![SyncEvent::RequestFailed {
            method: Method::BlockHeaders,
            code: None
        }]
    );
    short.answer = true;
    short.run(t, &mut s2);
    assert_eq!(short.header_requests.len(), 2, "not before the retry delay");
    assert_eq!(s2.poll_timeout(), Some(at(t) + RETRY_DELAY));
    let events = short.run(t + RETRY_DELAY.millis(), &mut s2);
    assert_eq!(short.header_requests.len(), 3);
    assert_eq!(synced_tip(&events).map(|t| t.0), Some(RECENT_START + 19));
}

// ----- regtest: headers mined here -----

fn regtest_genesis() -> [u8; 80] {
    let mut h = [0u8; 80];
    h[0..4].copy_from_slice(&1u32.to_le_bytes());
    let merkle = BlockHash::from_display_hex(
        b"4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
    )
    .unwrap();
    h[36..68].copy_from_slice(merkle.as_byte_array());
    h[68..72].copy_from_slice(&1_296_688_602u32.to_le_bytes());
    h[72..76].copy_from_slice(&0x207f_ffffu32.to_le_bytes());
    h[76..80].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(hash(&h), REGTEST.genesis_hash);
    h
}

/// Extends `chain` (heights from 0) to `len` headers; `salt` makes a distinct branch.
fn mine(chain: &mut Vec<[u8; 80]>, len: usize, salt: u8) {
    while chain.len() < len {
        let height = chain.len() as u32;
        let prev = hash(chain.last().unwrap());
        let mut h = [0u8; 80];
        h[0..4].copy_from_slice(&0x2000_0000u32.to_le_bytes());
        h[4..36].copy_from_slice(prev.as_byte_array());
        h[36] = salt;
        h[37..41].copy_from_slice(&height.to_le_bytes());
        h[68..72].copy_from_slice(&(1_296_688_602 + 600 * height).to_le_bytes());
        h[72..76].copy_from_slice(&0x207f_ffffu32.to_le_bytes());
        let target = electrum_spv_core::header::CompactTarget(0x207f_ffff)
            .to_target()
            .unwrap();
        let mut nonce = 0u32;
        loop {
            h[76..80].copy_from_slice(&nonce.to_le_bytes());
            if target.is_met_by(&hash(&h)) {
                break;
            }
            nonce += 1;
        }
        chain.push(h);
    }
}

fn regtest_chain(len: usize) -> Vec<[u8; 80]> {
    let mut c = vec![regtest_genesis()];
    mine(&mut c, len, 0);
    c
}

/// `chain` with its last `depth` headers replaced by `depth + extra` others.
fn fork(chain: &[[u8; 80]], depth: usize, extra: usize, salt: u8) -> Vec<[u8; 80]> {
    let mut c = chain[..chain.len() - depth].to_vec();
    mine(&mut c, chain.len() + extra, salt);
    c
}

fn regtest_synced(len: usize) -> (Server, HeaderSync, Vec<[u8; 80]>) {
    let chain = regtest_chain(len);
    let mut server = Server::<BUFFERED>::new(&REGTEST, "1.6", 0, chain.clone());
    let mut sync = HeaderSync::new(&REGTEST, Anchor::genesis(&REGTEST));
    let events = server.run(0, &mut sync);
    assert_eq!(
        synced_tip(&events),
        Some((len as u32 - 1, hash(chain.last().unwrap())))
    );
    (server, sync, chain)
}

#[test]
fn from_genesis_the_cp_root_is_the_merkle_root_of_all_hashes() {
    let (_, sync, chain) = regtest_synced(300);
    let mut acc = MerkleAccumulator::new();
    for h in &chain {
        acc.push_block_hash(&hash(h)).unwrap();
    }
    assert_eq!(sync.cp_root(), Some((299, acc.root().unwrap())));
}

#[test]
fn notifications_are_verified_directly_and_gaps_fetched() {
    let (mut server, mut sync, mut chain) = regtest_synced(100);
    let requests = server.header_requests.len();
    // The next height: verified from the notification alone.
    mine(&mut chain, 101, 0);
    server.chain = chain.clone();
    server.notify();
    let events = server.run(1, &mut sync);
    assert_eq!(synced_tip(&events), Some((100, hash(&chain[100]))));
    assert_eq!(server.header_requests.len(), requests, "no request needed");
    // A gap: fetched.
    mine(&mut chain, 106, 0);
    server.chain = chain.clone();
    server.notify();
    let events = server.run(2, &mut sync);
    assert_eq!(synced_tip(&events), Some((105, hash(&chain[105]))));
    assert_eq!(server.header_requests.last(), Some(&(101, 5)));
    // A repeated announcement changes nothing.
    server.notify();
    assert!(server.run(3, &mut sync).is_empty());
    // A forged next header from a notification is a lie.
    let mut forged = chain.clone();
    mine(&mut forged, 107, 0);
    // Regtest never retargets: other bits are always wrong.
    forged[106][72..76].copy_from_slice(&0x1d00_ffffu32.to_le_bytes());
    server.chain = forged.clone();
    server.notify();
    let events = server.run(4, &mut sync);
    assert!(
        matches!(events.as_slice(), [SyncEvent::ServerLied(Lie::InvalidHeader(e))]
            if e.height == 106 && matches!(e.kind, HeaderErrorKind::BitsMismatch { .. })),
        "{events:?}"
    );
    assert_eq!(sync.tip().unwrap().height, 105);
}

#[test]
fn a_reorg_to_more_work_switches_at_the_fork() {
    let (mut server, mut sync, chain) = regtest_synced(100);
    let old_98 = sync.hash_at(98);
    // Like the kit's reorg(2): the last two blocks replaced by three.
    let branch = fork(&chain, 2, 1, 1);
    server.chain = branch.clone();
    server.notify();
    let events = server.run(1, &mut sync);
    match events.as_slice() {
        [
            SyncEvent::Reorg {
                fork_height,
                new_tip,
            },
        ] => {
            assert_eq!(*fork_height, 98);
            assert_eq!((new_tip.height, new_tip.hash), (100, hash(&branch[100])));
        }
        other => panic!("expected one reorg: {other:?}"),
    }
    assert!(sync.is_synced());
    assert_eq!(sync.hash_at(97), Some(hash(&chain[97])));
    assert_ne!(sync.hash_at(98), old_98);
    assert_eq!(sync.hash_at(98), Some(hash(&branch[98])));
    // The accumulator followed the switch.
    let mut acc = MerkleAccumulator::new();
    for h in &branch {
        acc.push_block_hash(&hash(h)).unwrap();
    }
    assert_eq!(sync.cp_root(), Some((100, acc.root().unwrap())));
    // And the new branch is followed.
    let mut branch = branch;
    mine(&mut branch, 102, 1);
    server.chain = branch.clone();
    server.notify();
    let events = server.run(2, &mut sync);
    assert_eq!(synced_tip(&events), Some((101, hash(&branch[101]))));
}

#[test]
fn a_branch_without_more_work_is_rejected() {
    let (mut server, mut sync, chain) = regtest_synced(100);
    let tip = *sync.tip().unwrap();
    // Same length: equal work, the first seen is kept.
    server.chain = fork(&chain, 3, 0, 2);
    server.notify();
    let events = server.run(1, &mut sync);
    assert_eq!(events, vec![SyncEvent::ForkRejected { server_height: 99 }]);
    assert_eq!(*sync.tip().unwrap(), tip);
    assert!(!sync.is_synced());
    let n = server.header_requests.len();
    assert!(server.run(1_000_000, &mut sync).is_empty());
    assert_eq!(
        server.header_requests.len(),
        n,
        "idle until the next announcement"
    );
    // A shorter branch announced below our tip: rejected too.
    server.chain = fork(&chain, 5, 0, 3)[..97].to_vec();
    server.notify();
    let events = server.run(2, &mut sync);
    assert_eq!(events, vec![SyncEvent::ForkRejected { server_height: 96 }]);
    assert_eq!(*sync.tip().unwrap(), tip);
}

#[test]
fn reorgs_up_to_the_documented_depth_are_handled_deeper_ones_halt() {
    let depth = MAX_REORG_DEPTH as usize;
    for len in [193usize, 200, 224, 225] {
        let (mut server, mut sync, chain) = regtest_synced(len);
        let branch = fork(&chain, depth, 1, 4);
        server.chain = branch.clone();
        server.notify();
        let events = server.run(1, &mut sync);
        assert!(
            matches!(events.as_slice(), [SyncEvent::Reorg { fork_height, new_tip }]
                if *fork_height as usize == len - depth && new_tip.hash == hash(branch.last().unwrap())),
            "len {len}: {events:?}"
        );
    }
    // Far deeper than any snapshot: a typed halt, the chain unchanged.
    let (mut server, mut sync, chain) = regtest_synced(200);
    let tip = *sync.tip().unwrap();
    server.chain = fork(&chain, 100, 1, 5);
    server.notify();
    let events = server.run(1, &mut sync);
    assert!(
        matches!(events.as_slice(), [SyncEvent::ReorgTooDeep { below }] if *below <= 200 - MAX_REORG_DEPTH),
        "{events:?}"
    );
    assert_eq!(*sync.tip().unwrap(), tip);
    assert!(matches!(
        sync.poll(at(2), &mut server.session),
        Err(SyncError::ReorgTooDeep { .. })
    ));
}

#[test]
fn a_lying_reorg_branch_is_caught_and_nothing_switches() {
    let (mut server, mut sync, chain) = regtest_synced(100);
    let tip = *sync.tip().unwrap();
    // Heights 98..=100 replaced: the branch has more work only with its last header.
    let mut branch = fork(&chain, 2, 1, 6);
    // Forge the branch's last header (its proof of work, by the merkle root).
    let last = branch.len() - 1;
    let target = electrum_spv_core::header::CompactTarget(0x207f_ffff)
        .to_target()
        .unwrap();
    let mut salt = 0u8;
    while target.is_met_by(&hash(&branch[last])) {
        branch[last][40] = salt;
        salt += 1;
    }
    server.chain = branch;
    server.notify();
    let events = server.run(1, &mut sync);
    assert!(
        matches!(events.as_slice(), [SyncEvent::ServerLied(Lie::InvalidHeader(e))]
            if e.height == 100 && e.kind == HeaderErrorKind::InsufficientProofOfWork),
        "{events:?}"
    );
    // The forged header was the one that would have overtaken: nothing switched.
    assert_eq!(*sync.tip().unwrap(), tip);
    assert_eq!(sync.hash_at(98), Some(hash(&chain[98])));
}

// ----- streamed: chunks verified header by header in a 1 KiB line buffer -----

#[test]
fn streamed_chunks_verify_real_headers_in_a_small_session() {
    let hs = recent();
    let mut server = Server::<SMALL>::new(&MAINNET, "1.6", RECENT_START, hs.clone());
    let mut sync = mainnet_sync(Pacing::UNLIMITED).with_streaming();
    let events = server.run(0, &mut sync);
    assert_eq!(server.header_requests.len(), 5);
    assert_eq!(
        synced_tip(&events),
        Some((830_592, hash(hs.last().unwrap())))
    );
    // The same sync without streaming cannot take a chunk through a 1 KiB line.
    let mut server = Server::<SMALL>::new(&MAINNET, "1.6", RECENT_START, hs);
    let mut sync = mainnet_sync(Pacing::UNLIMITED);
    let events = server.run(0, &mut sync);
    assert_eq!(sync.tip(), None, "{events:?}");
}

#[test]
fn streamed_forged_header_is_a_lie_at_its_height() {
    let forged_height = 825_000;
    let ix = (forged_height - RECENT_START) as usize;
    let mut chain = recent();
    chain[ix][79] ^= 0x01;
    let mut server = Server::<SMALL>::new(&MAINNET, "1.4", RECENT_START, chain);
    let mut sync = mainnet_sync(Pacing::UNLIMITED).with_streaming();
    let events = server.run(0, &mut sync);
    assert!(
        matches!(events.as_slice(), [.., SyncEvent::ServerLied(Lie::InvalidHeader(e))]
            if e.height == forged_height && e.kind == HeaderErrorKind::InsufficientProofOfWork),
        "{events:?}"
    );
    assert_eq!(sync.tip().unwrap().height, forged_height - 1);
    assert_eq!(server.header_requests.len(), 2);
    assert!(server.run(1_000_000, &mut sync).is_empty());
    assert_eq!(server.header_requests.len(), 2);
}

#[test]
fn streamed_reorg_switches_at_the_fork() {
    let chain = regtest_chain(100);
    let mut server = Server::<SMALL>::new(&REGTEST, "1.6", 0, chain.clone());
    let mut sync = HeaderSync::new(&REGTEST, Anchor::genesis(&REGTEST)).with_streaming();
    let events = server.run(0, &mut sync);
    assert_eq!(synced_tip(&events), Some((99, hash(&chain[99]))));
    let branch = fork(&chain, 2, 1, 1);
    server.chain = branch.clone();
    server.notify();
    let events = server.run(1, &mut sync);
    assert!(
        matches!(events.as_slice(), [SyncEvent::Reorg { fork_height: 98, new_tip }]
            if new_tip.hash == hash(&branch[100])),
        "{events:?}"
    );
}

/// Caller time `ms` milliseconds after the origin.
fn at(ms: u64) -> electrum_spv_core::time::Instant {
    electrum_spv_core::time::Instant::from_millis(ms)
}
