//! `electrum-spv` against rust-electrum-client (crate `electrum-client` 0.25, default features
//! off: plaintext TCP, no TLS, no proxy), both talking to the same local ElectrumX 2.0 of the
//! test kit (`Harness::start()`: the kit's funded regtest chain, 114 blocks, 3 wallets x 4
//! script kinds = 12 scripts, ElectrumX cost limits disabled) in the same run.
//!
//! Groups (within each, `bound_rust_electrum_client` is the bound; `scripts/bench-adapter.sh`
//! prints bound time / our time, so a ratio >= 1.0 means ours is at least as fast):
//!
//! * `wallet_sync`: from nothing to every test-wallet script's history, every confirmed entry's
//!   merkle proof and the header chain from genesis. The timed region includes connecting
//!   (a fresh connection per iteration on both sides), as a wallet starting up would.
//!   * `electrum_spv_verified`: `Client::connect` (`server.version`, then `server.features`
//!     with the genesis hash checked), `HeaderChain::from_genesis(Regtest)` with
//!     `Pacing::UNLIMITED` (the kit's ElectrumX has no cost limits) `.sync()`
//!     (`blockchain.headers.subscribe`, then 2016-header chunks, up to 8 in flight; every
//!     header verified), then `verified_history` for all 12 scripts concurrently
//!     (`futures::future::join_all`, each on its own clone of the synced chain because
//!     `verified_history` takes `&mut HeaderChain`): per script `blockchain.scripthash.subscribe`
//!     and `get_history` together, the status recomputed and compared, canonical order
//!     checked, then one `blockchain.transaction.get_merkle` per confirmed entry (pipelined),
//!     each branch verified against the verified header at its height.
//!   * `bound_rust_electrum_client`: `Client::new("tcp://...")` (`server.version`),
//!     `block_headers_subscribe` for the tip, `block_headers` in 2016-header chunks from
//!     genesis (one chunk here), `batch_script_get_history` for the 12 scripts (one batch),
//!     then `batch_transaction_get_merkle` for every confirmed history entry (one batch). No
//!     verification, no subscriptions, no status. Its batch calls write every request of the
//!     batch at once and read the answers, so it pipelines as much as ours does; the request
//!     sets are the same except ours adds `server.features` and the 12 subscriptions. Proofs
//!     are fetched per history entry on both sides (a transaction in two scripts' histories
//!     is fetched twice by both).
//! * `block_header_2000`: 2,000 `blockchain.block.header` requests (heights 0..=tip over and
//!   over) on one already-open connection (a fresh one per iteration, connecting not timed).
//!   `electrum_spv_pipelined`: 2,000 `Client::block_header` futures awaited with
//!   `join_all` (the client keeps up to 64 on the wire, the rest queued);
//!   `bound_rust_electrum_client`: one `batch_block_header` of the 2,000 heights (all written
//!   at once). Both decode the 80-byte headers.
//! * `script_history_2000`: the same with 2,000 `get_history` requests cycling over the 12
//!   scripts (the miner's history has 100+ rows): `join_all` of `Client::script_get_history`
//!   against one `batch_script_get_history`.
//!
//! * `verified_history_20000` (and any other size in [`LONG_ROWS`]): one script with a
//!   20,000-transaction history, on a second kit server started for it (its own regtest chain:
//!   101 coinbase blocks, then [`Chain::long_history`]: a funding payment and a chain of
//!   19,999 P2WPKH self-payments, mined 2,000 per block; built and indexed before timing).
//!   Connecting is not timed (a fresh connection per iteration on both sides).
//!   `electrum_spv_verified`: `verified_history` on a clone of a header chain synced beforehand
//!   (`Pacing::UNLIMITED` for headers and proofs): status and history, the status recomputed,
//!   all 20,000 transactions fetched, hashed and checked to involve the script, all 20,000
//!   merkle proofs checked against the verified headers. `bound_rust_electrum_client`: one
//!   `script_get_history`, unverified, nothing else fetched. So the ratio prices
//!   verification, not transport: ours makes 40,002 requests, theirs 1. Ours takes minutes:
//!   `verified_history` fetches transactions, then proofs, in fixed windows of
//!   `PROOFS_AT_ONCE` (48) and waits for each window's last reply, which ElectrumX 2.0 holds
//!   ~1 s (below), so ~1.1 s per 48 requests. Criterion's minimum (10 samples after a
//!   warm-up run) would take hours, so by default the group is timed by one run per side in
//!   [`check_long`] (each in a child process that also reports its peak RSS, its rows
//!   checked against the kit's); with [`LONG_CRITERION_ENV`] set criterion times it too. The
//!   check also prints the length of the reply's line as ElectrumX sends it (padding
//!   included) against the adapter's line cap ([`electrum_spv::connection::MAX_LINE`]). A
//!   criterion filter also selects the checks, RSS workloads and servers that run (see
//!   [`selected`]): the second server is only started for this group.
//!
//! ElectrumX 2.0 pads what it sends (`PaddedRSTransport`): a reply shorter than 1 KiB waits
//! until more replies fill the buffer or 1 s has passed since its last send. So every timed
//! iteration may end with up to ~1 s of waiting for the tail of the replies, on both sides, and
//! sequential calls run at about 1 per second whichever client makes them: sequential
//! throughput is printed once (3 calls each), not benchmarked.
//!
//! Before timing, the bench checks both sides against each other and against the kit's own
//! records (same headers byte for byte, same history txids and heights for every script, every
//! proof of theirs for the right height and verifying against our verified headers, same 2,000
//! headers and histories) and panics on any difference.
//!
//! The check also prints how long each phase of one `wallet_sync` took on each side.
//!
//! After timing it measures peak RSS: each workload runs in a child process (this binary
//! re-executed with `ELECTRUM_SPV_BENCH_WORKLOAD` set), three times over fresh connections,
//! and the child reports its `VmHWM` from `/proc/self/status` before it exits, with its CPU
//! time (user + system, all threads, from `/proc/self/stat`): the client's own cost, which the
//! wall-clock figures above hide behind the server's. An `idle` child gives the baseline of
//! the binary itself, a `connect only` workload the cost of an open connection, a
//! `verified_history_20000` workload one fetch of the long history per run (ours: connect,
//! headers synced, `verified_history`; theirs: connect, `script_get_history`). Our children
//! run the work on a current-thread tokio runtime (the calling thread, no workers), so both
//! sides use one thread, as theirs need no runtime; the timed benchmarks use 2 workers. (A
//! 2-worker runtime adds ~0.6 MiB to our `connect only` peak: two more thread stacks and
//! malloc arenas.)
//!
//! `cargo bench -p electrum-spv --bench vs_rust_electrum_client`, or `scripts/bench-adapter.sh`
//! for the table of ratios.

use std::hint::black_box;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use bitcoin::ScriptBuf;
use bitcoin::hashes::Hash as _;
use criterion::{Criterion, SamplingMode, Throughput};
use electrum_client::ElectrumApi as _;
use electrum_spv::core::hash::{MerkleNode, Txid};
use electrum_spv::core::merkle::verify_tx_branch;
use electrum_spv::core::script::TxHeight;
use electrum_spv::core::sync::headers::Pacing;
use electrum_spv::{
    Client, ClientConfig, HeaderChain, Network, ScriptRef, ServerAddr, Transport, VerifiedHistory,
    verified_history,
};
use electrum_spv_testkit::chain::MINER;
use electrum_spv_testkit::{Chain, Harness, ScriptKind};

/// Selects a child workload (see [`child`]).
const WORKLOAD_ENV: &str = "ELECTRUM_SPV_BENCH_WORKLOAD";
/// The ElectrumX address, for a child.
const ADDR_ENV: &str = "ELECTRUM_SPV_BENCH_ADDR";
/// The scripts (hex, comma-separated), for a child.
const SCRIPTS_ENV: &str = "ELECTRUM_SPV_BENCH_SCRIPTS";
/// The tip height, for a child.
const TIP_ENV: &str = "ELECTRUM_SPV_BENCH_TIP";
/// Requests per iteration of the throughput groups.
const N: usize = 2000;
/// Runs of a workload in an RSS child.
const RSS_RUNS: usize = 3;
/// Sequential calls timed once per side.
const SEQUENTIAL: u32 = 3;
/// Rows of the long histories (one script each, on the long-history server): group
/// `verified_history_<rows>`.
const LONG_ROWS: [usize; 1] = [20_000];
/// Set (to anything) to time the long histories with criterion too (at least 11 runs each:
/// hours, see the module documentation); without it they are timed once in [`check_long`].
const LONG_CRITERION_ENV: &str = "ELECTRUM_SPV_BENCH_LONG_CRITERION";
/// Transactions per block of the long histories.
const LONG_PER_BLOCK: usize = 2_000;

/// What the workloads need to know about the server.
struct Target {
    addr: SocketAddr,
    scripts: Vec<ScriptBuf>,
    tip: u32,
}

impl Target {
    fn heights(&self) -> Vec<u32> {
        (0..N)
            .map(|i| u32::try_from(i).unwrap_or(0) % (self.tip + 1))
            .collect()
    }

    fn script_cycle(&self) -> Vec<&ScriptBuf> {
        (0..N)
            .map(|i| &self.scripts[i % self.scripts.len()])
            .collect()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The runtime of our RSS children: one thread (the caller's), as rust-electrum-client's
/// blocking calls use, so both sides' peak RSS counts one thread's stack and arena.
fn child_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ----- ours -----

async fn ours_connect(addr: SocketAddr) -> Client {
    let server = ServerAddr::new(Transport::Tcp, addr.ip().to_string(), addr.port());
    Client::connect(&server, &ClientConfig::new(Network::Regtest))
        .await
        .expect("electrum-spv connect")
}

/// Ours, `wallet_sync`: connect, verified headers from genesis, verified histories.
/// `lap(phase)` is called as each phase ends.
async fn ours_sync(
    t: &Target,
    mut lap: impl FnMut(&'static str),
) -> (HeaderChain, Vec<VerifiedHistory>) {
    let client = ours_connect(t.addr).await;
    lap("connect");
    let mut chain = HeaderChain::from_genesis(Network::Regtest).with_pacing(Pacing::UNLIMITED);
    chain
        .sync(&client, |_, _| {})
        .await
        .expect("electrum-spv header sync");
    lap("verified headers");
    let histories = futures::future::join_all(t.scripts.iter().map(|s| {
        let mut chain = chain.clone();
        let client = &client;
        async move {
            verified_history(client, &mut chain, ScriptRef::Script(s.as_bytes()))
                .await
                .expect("electrum-spv verified history")
        }
    }))
    .await;
    lap("verified histories and proofs");
    (chain, histories)
}

async fn ours_headers(client: &Client, heights: &[u32]) -> Vec<[u8; 80]> {
    futures::future::join_all(heights.iter().map(|&h| client.block_header(h)))
        .await
        .into_iter()
        .map(|r| r.expect("electrum-spv block_header"))
        .collect()
}

async fn ours_histories(
    client: &Client,
    scripts: &[&ScriptBuf],
) -> Vec<Vec<electrum_spv::core::session::response::HistoryItem>> {
    futures::future::join_all(
        scripts
            .iter()
            .map(|s| client.script_get_history(s.as_bytes())),
    )
    .await
    .into_iter()
    .map(|r| r.expect("electrum-spv script_get_history"))
    .collect()
}

// ----- theirs -----

fn theirs_connect(addr: SocketAddr) -> electrum_client::Client {
    electrum_client::Client::new(&format!("tcp://{addr}")).expect("rust-electrum-client connect")
}

/// What rust-electrum-client fetches in `wallet_sync`.
struct TheirSync {
    headers: Vec<bitcoin::block::Header>,
    histories: Vec<Vec<electrum_client::GetHistoryRes>>,
    proofs: Vec<electrum_client::GetMerkleRes>,
}

/// Theirs, `wallet_sync`: connect, headers from genesis, histories, proofs; unverified.
/// `lap(phase)` is called as each phase ends.
fn theirs_sync(t: &Target, mut lap: impl FnMut(&'static str)) -> TheirSync {
    let client = theirs_connect(t.addr);
    lap("connect");
    let tip = client
        .block_headers_subscribe()
        .expect("rust-electrum-client headers.subscribe")
        .height;
    lap("headers.subscribe");
    let mut headers = Vec::with_capacity(tip + 1);
    while headers.len() <= tip {
        let count = 2016.min(tip + 1 - headers.len());
        let chunk = client
            .block_headers(headers.len(), count)
            .expect("rust-electrum-client block_headers");
        if chunk.headers.is_empty() {
            break;
        }
        headers.extend(chunk.headers);
    }
    lap("block_headers");
    let histories = client
        .batch_script_get_history(t.scripts.iter().map(|s| s.as_script()))
        .expect("rust-electrum-client batch_script_get_history");
    lap("batch_script_get_history");
    let confirmed: Vec<(bitcoin::Txid, usize)> = histories
        .iter()
        .flatten()
        .filter_map(|e| {
            usize::try_from(e.height)
                .ok()
                .filter(|&h| h > 0)
                .map(|h| (e.tx_hash, h))
        })
        .collect();
    let proofs = client
        .batch_transaction_get_merkle(&confirmed)
        .expect("rust-electrum-client batch_transaction_get_merkle");
    lap("batch_transaction_get_merkle");
    TheirSync {
        headers,
        histories,
        proofs,
    }
}

fn theirs_headers(
    client: &electrum_client::Client,
    heights: &[u32],
) -> Vec<bitcoin::block::Header> {
    client
        .batch_block_header(heights)
        .expect("rust-electrum-client batch_block_header")
}

fn theirs_histories(
    client: &electrum_client::Client,
    scripts: &[&ScriptBuf],
) -> Vec<Vec<electrum_client::GetHistoryRes>> {
    client
        .batch_script_get_history(scripts.iter().map(|s| s.as_script()))
        .expect("rust-electrum-client batch_script_get_history")
}

// ----- long history -----

/// Ours, `verified_history_<rows>`: a verified history on a clone of a synced chain.
async fn ours_long(client: &Client, chain: &HeaderChain, script: &ScriptBuf) -> VerifiedHistory {
    let mut chain = chain.clone();
    verified_history(client, &mut chain, ScriptRef::Script(script.as_bytes()))
        .await
        .expect("electrum-spv verified history")
}

/// A header chain synced from genesis, nothing paced (the kit's ElectrumX has no limits).
async fn synced_chain(client: &Client) -> HeaderChain {
    let mut chain = HeaderChain::from_genesis(Network::Regtest)
        .with_pacing(Pacing::UNLIMITED)
        .with_proof_pacing(Pacing::UNLIMITED);
    chain
        .sync(client, |_, _| {})
        .await
        .expect("electrum-spv header sync");
    chain
}

/// Theirs, `verified_history_<rows>`: the history, unverified.
fn theirs_long(
    client: &electrum_client::Client,
    script: &ScriptBuf,
) -> Vec<electrum_client::GetHistoryRes> {
    client
        .script_get_history(script)
        .expect("rust-electrum-client script_get_history")
}

/// The long-history server: a kit chain whose wallet `long` has, per entry of [`LONG_ROWS`],
/// a script with that many transactions; and those scripts.
fn long_harness() -> (Harness, Vec<ScriptBuf>) {
    let start = Instant::now();
    let mut chain = Chain::new(&["miner", "long"]);
    chain.mine(101);
    let kinds = [ScriptKind::P2wpkh, ScriptKind::P2tr, ScriptKind::P2pkh];
    let scripts = LONG_ROWS
        .iter()
        .zip(kinds)
        .map(|(&rows, kind)| {
            chain
                .long_history(MINER, 1, kind, rows, LONG_PER_BLOCK)
                .expect("long history");
            chain.wallets()[1].script(kind).to_owned()
        })
        .collect();
    let (height, built) = (chain.height(), start.elapsed());
    let h = Harness::start_with(chain)
        .unwrap_or_else(|e| panic!("cannot start the long-history ElectrumX: {e}"));
    println!(
        "phases long-history kit: chain of {height} blocks built in {:.1} s, ElectrumX started \
         and indexed it in {:.1} s",
        built.as_secs_f64(),
        (start.elapsed() - built).as_secs_f64()
    );
    (h, scripts)
}

/// The reply line of `blockchain.scripthash.get_history` for `script` as the server sends it,
/// read over a raw socket: (its length before the `\n`, padding included; the length without
/// ElectrumX's padding spaces).
fn history_line_len(addr: SocketAddr, script: &ScriptBuf) -> (usize, usize) {
    let sh = electrum_spv_testkit::chain::scripthash(script);
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "{{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"server.version\",\"params\":[\"probe\",\"1.4\"]}}\n\
         {{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"blockchain.scripthash.get_history\",\"params\":[\"{sh}\"]}}\n"
    )
    .expect("write");
    let mut r = BufReader::new(s);
    loop {
        let mut line = Vec::new();
        r.read_until(b'\n', &mut line).expect("read");
        assert!(line.ends_with(b"\n"), "connection closed");
        line.pop();
        // The id is the reply's last member (ElectrumX writes compact JSON), then the padding.
        let end = line
            .trim_ascii_end()
            .strip_suffix(b"}")
            .unwrap_or(&[])
            .trim_ascii_end();
        if end.ends_with(b"\"id\":1") || end.ends_with(b"\"id\": 1") {
            // ElectrumX pads with spaces right before the final `}` of a packet's last reply.
            let body = line.len().saturating_sub(1);
            let pad = line[..body]
                .iter()
                .rev()
                .take_while(|&&b| b == b' ')
                .count();
            return (line.len(), line.len() - pad);
        }
    }
}

// ----- correctness -----

/// Phase timings of one run.
struct Laps {
    last: Instant,
    laps: Vec<(&'static str, Duration)>,
}

impl Laps {
    fn new() -> Laps {
        Laps {
            last: Instant::now(),
            laps: Vec::new(),
        }
    }

    fn lap(&mut self, phase: &'static str) {
        let now = Instant::now();
        self.laps.push((phase, now - self.last));
        self.last = now;
    }

    fn report(&self) -> String {
        self.laps
            .iter()
            .map(|(p, d)| format!("{p} {:.0} ms", d.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

type Rows = Vec<([u8; 32], i64)>;

fn our_rows(items: impl IntoIterator<Item = (Txid, TxHeight)>) -> Rows {
    items
        .into_iter()
        .map(|(t, h)| (t.to_byte_array(), h.to_i64()))
        .collect()
}

fn their_rows(items: &[electrum_client::GetHistoryRes]) -> Rows {
    items
        .iter()
        .map(|e| (e.tx_hash.to_byte_array(), i64::from(e.height)))
        .collect()
}

/// Both sides against each other and against the kit's records; panics on any difference.
fn check(h: &Harness, t: &Target, rt: &tokio::runtime::Runtime) {
    let kit_headers: Vec<[u8; 80]> = h
        .bitcoind
        .chain()
        .blocks()
        .iter()
        .map(|b| {
            let mut out = [0u8; 80];
            out.copy_from_slice(&bitcoin::consensus::serialize(&b.header));
            out
        })
        .collect();
    let kit_rows: Vec<Rows> = t
        .scripts
        .iter()
        .map(|s| {
            h.bitcoind
                .history(s)
                .into_iter()
                .map(|(txid, height)| (txid.to_byte_array(), height))
                .collect()
        })
        .collect();

    // wallet_sync, with the time each phase took
    if selected("wallet_sync") {
        let mut laps = Laps::new();
        let (chain, ours) = rt.block_on(ours_sync(t, |p| laps.lap(p)));
        println!("phases wallet_sync electrum-spv: {}", laps.report());
        let mut laps = Laps::new();
        let theirs = theirs_sync(t, |p| laps.lap(p));
        println!("phases wallet_sync rust-electrum-client: {}", laps.report());
        assert_eq!(chain.tip().map(|(h, _)| h), Some(t.tip), "our tip");
        let our_headers: Vec<[u8; 80]> = (0..=t.tip)
            .map(|i| chain.header(i).expect("verified header").to_bytes())
            .collect();
        let their_headers: Vec<[u8; 80]> = theirs
            .headers
            .iter()
            .map(|hd| {
                let mut out = [0u8; 80];
                out.copy_from_slice(&bitcoin::consensus::serialize(hd));
                out
            })
            .collect();
        assert_eq!(
            our_headers, kit_headers,
            "our headers differ from the kit's"
        );
        assert_eq!(
            their_headers, kit_headers,
            "their headers differ from the kit's"
        );
        let mut confirmed = 0;
        for (i, ((o, th), kit)) in ours
            .iter()
            .zip(&theirs.histories)
            .zip(&kit_rows)
            .enumerate()
        {
            let o_rows = our_rows(o.txs.iter().map(|tx| (tx.txid, tx.height)));
            assert_eq!(
                &o_rows, kit,
                "script {i}: our history differs from the kit's"
            );
            assert_eq!(
                &their_rows(th),
                kit,
                "script {i}: their history differs from the kit's"
            );
            for tx in &o.txs {
                assert_eq!(
                    tx.block_hash.is_some(),
                    !tx.height.is_mempool(),
                    "script {i}: {} proven iff confirmed",
                    tx.txid
                );
            }
            confirmed += o.txs.iter().filter(|tx| tx.block_hash.is_some()).count();
        }
        let their_confirmed: Vec<(bitcoin::Txid, i32)> = theirs
            .histories
            .iter()
            .flatten()
            .filter(|e| e.height > 0)
            .map(|e| (e.tx_hash, e.height))
            .collect();
        assert_eq!(theirs.proofs.len(), confirmed, "their proof count");
        assert_eq!(their_confirmed.len(), confirmed, "confirmed entries");
        for ((txid, height), proof) in their_confirmed.iter().zip(&theirs.proofs) {
            let height = u32::try_from(*height).expect("height");
            assert_eq!(proof.block_height, height as usize, "their proof of {txid}");
            let branch: Vec<MerkleNode> = proof
                .merkle
                .iter()
                .map(|n| {
                    let mut n = *n;
                    n.reverse(); // rust-electrum-client keeps the hex (display) order
                    MerkleNode::from_byte_array(n)
                })
                .collect();
            let root = chain.header(height).expect("header").merkle_root;
            let ours_txid = Txid::from_byte_array(txid.to_byte_array());
            verify_tx_branch(
                &ours_txid,
                u32::try_from(proof.pos).expect("pos"),
                &branch,
                &root,
            )
            .unwrap_or_else(|e| panic!("their proof of {txid} does not verify: {e:?}"));
        }
        let unique: std::collections::HashSet<_> =
            their_confirmed.iter().map(|(t, _)| *t).collect();
        println!(
            "check wallet_sync: ok, tip {}, {} scripts, {} history entries, {confirmed} confirmed \
         entries proven ({} distinct transactions), identical on both sides and to the kit",
            t.tip,
            t.scripts.len(),
            kit_rows.iter().map(Vec::len).sum::<usize>(),
            unique.len()
        );
    }
    // block_header_2000
    if selected("block_header_2000") {
        let heights = t.heights();
        let ours = rt.block_on(async {
            let c = ours_connect(t.addr).await;
            ours_headers(&c, &heights).await
        });
        let theirs: Vec<[u8; 80]> = theirs_headers(&theirs_connect(t.addr), &heights)
            .iter()
            .map(|hd| {
                let mut out = [0u8; 80];
                out.copy_from_slice(&bitcoin::consensus::serialize(hd));
                out
            })
            .collect();
        let expected: Vec<[u8; 80]> = heights.iter().map(|&h| kit_headers[h as usize]).collect();
        assert_eq!(ours, expected, "block_header_2000: ours");
        assert_eq!(theirs, expected, "block_header_2000: theirs");
        println!("check block_header_2000: ok, {N} headers identical on both sides and to the kit");
    }
    // script_history_2000
    if selected("script_history_2000") {
        let scripts = t.script_cycle();
        let ours = rt.block_on(async {
            let c = ours_connect(t.addr).await;
            ours_histories(&c, &scripts).await
        });
        let theirs = theirs_histories(&theirs_connect(t.addr), &scripts);
        let mut rows = 0;
        for (i, (o, th)) in ours.iter().zip(&theirs).enumerate() {
            let kit = &kit_rows[i % t.scripts.len()];
            assert_eq!(
                &our_rows(o.iter().map(|e| (e.txid, e.height))),
                kit,
                "script_history_2000 {i}: ours"
            );
            assert_eq!(&their_rows(th), kit, "script_history_2000 {i}: theirs");
            rows += kit.len();
        }
        assert_eq!(
            (ours.len(), theirs.len()),
            (N, N),
            "script_history_2000 count"
        );
        println!(
            "check script_history_2000: ok, {N} histories ({rows} rows) identical on both sides and \
         to the kit"
        );
    }
}

/// The long histories: each reply line's length against the adapter's line cap; then one
/// fetch per side, each in a child process ([`long_child`]) that reports its peak RSS (as
/// [`rss`] does) and the fetch's wall time, its rows checked against the kit's records
/// (their status, count and, for ours, every one proven). Ours takes minutes (see the
/// module documentation), so this single run is the figure unless criterion's group runs.
fn check_long(h: &Harness, t: &Target) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let idle = child_rss(t, "idle").peak;
    for (script, rows) in t.scripts.iter().zip(LONG_ROWS) {
        let group = format!("verified_history_{rows}");
        let (line, unpadded) = history_line_len(t.addr, script);
        let cap = electrum_spv::connection::MAX_LINE;
        println!(
            "line {group}: the get_history reply is one line of {line} bytes as ElectrumX sends \
             it ({unpadded} bytes without its padding spaces); the adapter's line cap \
             (connection::MAX_LINE) is {cap} bytes: {}",
            if line <= cap {
                "fits"
            } else {
                "EXCEEDS the cap (streamed only on an idle connection)"
            }
        );
        let kit = h.bitcoind.history(script);
        assert_eq!(kit.len(), rows, "{group}: the kit's history length");
        let kit_status = electrum_spv_testkit::chain::status_of(&kit).unwrap_or_default();
        let one = Target {
            addr: t.addr,
            scripts: vec![script.clone()],
            tip: t.tip,
        };
        let theirs = child_output(&one, "theirs:long");
        let ours = child_output(&one, "ours:long");
        for (side, out) in [("rust-electrum-client", &theirs), ("electrum-spv", &ours)] {
            assert_eq!(
                child_num(out, "rows="),
                rows as u64,
                "{group}: {side}'s row count"
            );
            assert_eq!(
                child_field(out, "status="),
                kit_status,
                "{group}: {side}'s rows differ from the kit's (status of the rows in its order)"
            );
        }
        assert_eq!(
            child_num(&ours, "proven="),
            rows as u64,
            "{group}: ours all proven"
        );
        let (t_ms, o_ms) = (
            child_num(&theirs, "elapsed_ms="),
            child_num(&ours, "elapsed_ms="),
        );
        println!(
            "check {group}: ok, {rows} rows identical on both sides and to the kit (in chain \
             order), all {rows} of ours proven; one run each, connecting not timed: \
             rust-electrum-client get_history {:.3} s, electrum-spv verified_history {:.1} s, \
             ratio ours / theirs {:.0}",
            t_ms as f64 / 1e3,
            o_ms as f64 / 1e3,
            o_ms as f64 / t_ms.max(1) as f64
        );
        let (tk, ok) = (
            child_num(&theirs, "vmhwm_kib="),
            child_num(&ours, "vmhwm_kib="),
        );
        println!(
            "rss {group} (x1): rust-electrum-client {:.1} MiB, electrum-spv {:.1} MiB, \
             ratio rust-electrum-client/electrum-spv {:.2}; above the idle baseline {:.1} / {:.1} \
             MiB; client cpu {} / {} ms",
            mib(tk),
            mib(ok),
            tk as f64 / ok as f64,
            mib(tk.saturating_sub(idle)),
            mib(ok.saturating_sub(idle)),
            child_num(&theirs, "cpu_ms="),
            child_num(&ours, "cpu_ms="),
        );
    }
}

// ----- timing -----

fn bench(c: &mut Criterion, t: &Target, rt: &tokio::runtime::Runtime) {
    let configure = |g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>| {
        g.sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(20));
    };

    let mut g = c.benchmark_group("wallet_sync");
    configure(&mut g);
    g.bench_function("bound_rust_electrum_client", |b| {
        b.iter(|| black_box(theirs_sync(t, |_| {})));
    });
    g.bench_function("electrum_spv_verified", |b| {
        b.iter(|| black_box(rt.block_on(ours_sync(t, |_| {}))));
    });
    g.finish();

    let heights = t.heights();
    let mut g = c.benchmark_group("block_header_2000");
    configure(&mut g);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("bound_rust_electrum_client", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let client = theirs_connect(t.addr);
                let start = Instant::now();
                black_box(theirs_headers(&client, &heights));
                total += start.elapsed();
            }
            total
        });
    });
    g.bench_function("electrum_spv_pipelined", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let client = ours_connect(t.addr).await;
                    let start = Instant::now();
                    black_box(ours_headers(&client, &heights).await);
                    total += start.elapsed();
                }
                total
            })
        });
    });
    g.finish();

    let scripts = t.script_cycle();
    let mut g = c.benchmark_group("script_history_2000");
    configure(&mut g);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("bound_rust_electrum_client", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let client = theirs_connect(t.addr);
                let start = Instant::now();
                black_box(theirs_histories(&client, &scripts));
                total += start.elapsed();
            }
            total
        });
    });
    g.bench_function("electrum_spv_pipelined", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let client = ours_connect(t.addr).await;
                    let start = Instant::now();
                    black_box(ours_histories(&client, &scripts).await);
                    total += start.elapsed();
                }
                total
            })
        });
    });
    g.finish();
}

/// The `verified_history_<rows>` groups, over the long-history server.
fn bench_long(c: &mut Criterion, t: &Target, rt: &tokio::runtime::Runtime) {
    for (script, rows) in t.scripts.iter().zip(LONG_ROWS) {
        let mut g = c.benchmark_group(format!("verified_history_{rows}"));
        g.sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(30))
            .throughput(Throughput::Elements(rows as u64));
        g.bench_function("bound_rust_electrum_client", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let client = theirs_connect(t.addr);
                    let start = Instant::now();
                    black_box(theirs_long(&client, script));
                    total += start.elapsed();
                }
                total
            });
        });
        g.bench_function("electrum_spv_verified", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let client = ours_connect(t.addr).await;
                        let chain = synced_chain(&client).await;
                        let start = Instant::now();
                        black_box(ours_long(&client, &chain, script).await);
                        total += start.elapsed();
                    }
                    total
                })
            });
        });
        g.finish();
    }
}

/// Sequential `blockchain.block.header` calls, once per side: shows ElectrumX's padding delay.
fn sequential(t: &Target, rt: &tokio::runtime::Runtime) {
    let client = theirs_connect(t.addr);
    // Spend the session's unpadded warm-up budget first, as a long-lived connection has.
    theirs_headers(&client, &t.heights());
    let start = Instant::now();
    for h in 0..SEQUENTIAL {
        black_box(client.block_header(h as usize).expect("block_header"));
    }
    let theirs = start.elapsed();
    let ours = rt.block_on(async {
        let client = ours_connect(t.addr).await;
        ours_headers(&client, &t.heights()).await;
        let start = Instant::now();
        for h in 0..SEQUENTIAL {
            black_box(client.block_header(h).await.expect("block_header"));
        }
        start.elapsed()
    });
    let rate = |d: Duration| f64::from(SEQUENTIAL) / d.as_secs_f64();
    println!(
        "sequential block_header x{SEQUENTIAL} (not benchmarked): rust-electrum-client {:.2} req/s, \
         electrum-spv {:.2} req/s (ElectrumX's padding holds each lone reply ~1 s)",
        rate(theirs),
        rate(ours)
    );
}

// ----- peak RSS (and CPU time) in child processes -----

/// The workloads run in children: (name printed, workload).
const WORKLOADS: [(&str, &str); 4] = [
    ("connect only", "connect"),
    ("wallet_sync", "sync"),
    ("block_header_2000", "headers"),
    ("script_history_2000", "history"),
];

/// User + system CPU time of this process (all threads) in ms, from `/proc/self/stat`
/// (`utime`, `stime` in clock ticks; Linux's `USER_HZ` is 100).
fn cpu_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The fields after the command name (in parentheses, which may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields[11..13]
        .iter()
        .map(|f| f.parse::<u64>().expect("ticks"))
        .sum();
    ticks * 10
}

/// A child: runs one workload [`RSS_RUNS`] times, then prints its peak RSS and CPU time.
fn child(workload: &str) {
    let addr: SocketAddr = std::env::var(ADDR_ENV)
        .expect("address")
        .parse()
        .expect("address");
    let scripts = std::env::var(SCRIPTS_ENV)
        .expect("scripts")
        .split(',')
        .map(|s| ScriptBuf::from_hex(s).expect("script hex"))
        .collect();
    let tip = std::env::var(TIP_ENV).expect("tip").parse().expect("tip");
    let t = Target { addr, scripts, tip };
    let (side, work) = workload.split_once(':').unwrap_or((workload, ""));
    if work == "long" {
        long_child(side, &t);
        return;
    }
    match side {
        "idle" => {}
        "theirs" => {
            for _ in 0..RSS_RUNS {
                match work {
                    "connect" => drop(black_box(theirs_connect(addr))),
                    "sync" => drop(black_box(theirs_sync(&t, |_| {}))),
                    "headers" => drop(black_box(theirs_headers(
                        &theirs_connect(addr),
                        &t.heights(),
                    ))),
                    "history" => drop(black_box(theirs_histories(
                        &theirs_connect(addr),
                        &t.script_cycle(),
                    ))),
                    other => panic!("unknown workload {other}"),
                }
            }
        }
        "ours" => {
            let rt = child_runtime();
            for _ in 0..RSS_RUNS {
                rt.block_on(async {
                    match work {
                        "connect" => drop(black_box(ours_connect(addr).await)),
                        "sync" => drop(black_box(ours_sync(&t, |_| {}).await)),
                        "headers" => {
                            let c = ours_connect(addr).await;
                            drop(black_box(ours_headers(&c, &t.heights()).await));
                        }
                        "history" => {
                            let c = ours_connect(addr).await;
                            drop(black_box(ours_histories(&c, &t.script_cycle()).await));
                        }
                        other => panic!("unknown workload {other}"),
                    }
                });
            }
        }
        other => panic!("unknown side {other}"),
    }
    let (anon, file) = electrum_spv_testkit::rss_split_kib();
    println!(
        "vmhwm_kib={} cpu_ms={} anon_kib={anon} file_kib={file}",
        electrum_spv_testkit::peak_rss_kib(),
        cpu_ms()
    );
}

/// Runs `workload` in a child and returns what it printed.
fn child_output(t: &Target, workload: &str) -> String {
    let scripts: Vec<String> = t.scripts.iter().map(|s| s.to_hex_string()).collect();
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .env(WORKLOAD_ENV, workload)
        .env(ADDR_ENV, t.addr.to_string())
        .env(SCRIPTS_ENV, scripts.join(","))
        .env(TIP_ENV, t.tip.to_string())
        .output()
        .expect("spawn the RSS child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "RSS child {workload} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The value of `name=` (`name` given with its `=`) in a child's output.
fn child_field<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix(name))
        .unwrap_or_else(|| panic!("the child printed no {name}: {stdout}"))
}

/// A numeric field of a child's output.
fn child_num(stdout: &str, name: &str) -> u64 {
    let v = child_field(stdout, name);
    v.parse()
        .unwrap_or_else(|_| panic!("the child printed {name}{v}"))
}

/// Runs `workload` in a child and returns its peak RSS in KiB and its CPU time in ms.
/// A short workload's child: its peak RSS, CPU time, and at its end its private anonymous
/// and file-backed resident KiB.
struct ChildRss {
    peak: u64,
    cpu_ms: u64,
    anon: u64,
    file: u64,
}

fn child_rss(t: &Target, workload: &str) -> ChildRss {
    let stdout = child_output(t, workload);
    ChildRss {
        peak: child_num(&stdout, "vmhwm_kib="),
        cpu_ms: child_num(&stdout, "cpu_ms="),
        anon: child_num(&stdout, "anon_kib="),
        file: child_num(&stdout, "file_kib="),
    }
}

/// A long-history child: connects (ours also syncs the headers), fetches the history of the
/// first script once (ours verified, theirs not), timing that fetch only, and prints its peak
/// RSS, CPU time, the fetch's wall time, the Electrum status of the rows it got in the order
/// it reports them (so the parent compares them with the kit's records) and how many of them
/// are proven.
fn long_child(side: &str, t: &Target) {
    let script = &t.scripts[0];
    let (rows, proven, elapsed) = match side {
        "theirs" => {
            let client = theirs_connect(t.addr);
            let start = Instant::now();
            let history = black_box(theirs_long(&client, script));
            let elapsed = start.elapsed();
            let rows: Vec<(bitcoin::Txid, i64)> = history
                .iter()
                .map(|e| (e.tx_hash, i64::from(e.height)))
                .collect();
            (rows, 0, elapsed)
        }
        "ours" => child_runtime().block_on(async {
            let client = ours_connect(t.addr).await;
            let chain = synced_chain(&client).await;
            let start = Instant::now();
            let history = black_box(ours_long(&client, &chain, script).await);
            let elapsed = start.elapsed();
            let rows = history
                .txs
                .iter()
                .map(|tx| {
                    (
                        bitcoin::Txid::from_byte_array(tx.txid.to_byte_array()),
                        tx.height.to_i64(),
                    )
                })
                .collect();
            let proven = history
                .txs
                .iter()
                .filter(|tx| tx.block_hash.is_some())
                .count();
            (rows, proven, elapsed)
        }),
        other => panic!("unknown side {other}"),
    };
    let status = electrum_spv_testkit::chain::status_of(&rows).unwrap_or_default();
    println!(
        "vmhwm_kib={} cpu_ms={} elapsed_ms={} rows={} status={status} proven={proven}",
        electrum_spv_testkit::peak_rss_kib(),
        cpu_ms(),
        elapsed.as_millis(),
        rows.len()
    );
}

fn rss(t: &Target) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let idle = child_rss(t, "idle");
    println!(
        "rss baseline (idle child of this binary): {:.1} MiB (at its end {:.2} MiB private, {:.2} \
         MiB file-backed), cpu {} ms",
        mib(idle.peak),
        mib(idle.anon),
        mib(idle.file),
        idle.cpu_ms
    );
    let runs = WORKLOADS
        .iter()
        .filter(|(group, _)| *group == "connect only" || selected(group));
    for (group, work) in runs {
        let theirs = child_rss(t, &format!("theirs:{work}"));
        let ours = child_rss(t, &format!("ours:{work}"));
        // Above the baseline, split: private memory (heap, stacks) is what each connection
        // costs; file-backed pages are the code the work touched, paid once per process.
        println!(
            "rss {group} (x{RSS_RUNS}): rust-electrum-client {:.1} MiB, electrum-spv {:.1} MiB, \
             ratio rust-electrum-client/electrum-spv {:.2}; above the idle baseline {:.1} / {:.1} \
             MiB, at the end private {:.2} / {:.2} MiB and file-backed {:.2} / {:.2} MiB; client \
             cpu {} / {} ms",
            mib(theirs.peak),
            mib(ours.peak),
            theirs.peak as f64 / ours.peak as f64,
            mib(theirs.peak.saturating_sub(idle.peak)),
            mib(ours.peak.saturating_sub(idle.peak)),
            mib(theirs.anon.saturating_sub(idle.anon)),
            mib(ours.anon.saturating_sub(idle.anon)),
            mib(theirs.file.saturating_sub(idle.file)),
            mib(ours.file.saturating_sub(idle.file)),
            theirs.cpu_ms,
            ours.cpu_ms,
        );
    }
}

fn main() {
    if let Ok(workload) = std::env::var(WORKLOAD_ENV) {
        child(&workload);
        return;
    }
    // Arguments first: criterion exits on ones it refuses, and no server must be running then.
    let mut c = Criterion::default().configure_from_args();
    let h =
        Harness::start().unwrap_or_else(|e| panic!("cannot start the test kit's ElectrumX: {e}"));
    // Separate statements: the chain's lock guard lives to the end of its statement.
    let scripts = h
        .bitcoind
        .chain()
        .wallets()
        .iter()
        .flat_map(|w| w.scripts())
        .collect();
    let tip = h.bitcoind.tip().0;
    let t = Target {
        addr: h.addr(),
        scripts,
        tip,
    };
    let rt = runtime();
    check(&h, &t, &rt);
    let long = LONG_ROWS
        .iter()
        .any(|rows| selected(&format!("verified_history_{rows}")))
        .then(|| {
            let (lh, scripts) = long_harness();
            let tip = lh.bitcoind.tip().0;
            let lt = Target {
                addr: lh.addr(),
                scripts,
                tip,
            };
            check_long(&lh, &lt);
            (lh, lt)
        });
    bench(&mut c, &t, &rt);
    if let Some((_, lt)) = &long
        && std::env::var_os(LONG_CRITERION_ENV).is_some()
    {
        bench_long(&mut c, lt, &rt);
    }
    c.final_summary();
    sequential(&t, &rt);
    rss(&t);
}

/// Whether criterion may run group `name`, so whether its check, its RSS workload and (for
/// the long histories) the server it needs are worth the time: no criterion filter among the
/// arguments, or a `|`-separated part of one is a substring of `name` (criterion's own
/// filter is a regular expression; this is the common case of it).
fn selected(name: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty()
        || filters
            .iter()
            .any(|f| f.split('|').any(|part| name.contains(part)))
}
