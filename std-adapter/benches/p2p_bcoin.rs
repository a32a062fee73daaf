//! End to end: [`PeerPool::broadcast`] of 1,000 signed P2PKH transactions to three bcoin 1.0.2
//! nodes in a line A-B-C on 127.0.0.1 (the test kit's [`BcoinNet`]), K = 1, in two layouts:
//!
//! * `to A`: every transaction goes to A; B and C watch.
//! * `spread A+B`: half go to A (B and C watch them), half to B (A and C watch them), as two
//!   concurrent broadcasts on the same pool.
//!
//! Printed per layout (times from the moment the broadcast was called; the pool is already
//! connected to all three nodes):
//!
//! * **sent**: the last recipient `getdata` answered with a transaction
//!   ([`TxReport::served_ms`]; the `tx` frame is written right after): announce and serve of
//!   all N complete, as N / that time.
//! * **accepted**: the last of our transactions to appear in its recipient's mempool (bcoin
//!   RPC `getrawmempool`, polled without pause on all three nodes, one after another), as
//!   N / that time; and when all N were in all three mempools. Polling resolution: one round
//!   of three RPCs, printed as `poll`.
//! * **first announcement** by a non-recipient ([`TxReport::first_announcement_ms`]): p50,
//!   p99, max; **confirmed** (announced by at least one non-recipient) and **verified**
//!   counts; when the broadcast call returned.
//!
//! Not a criterion bench and not run in CI: it takes a few minutes (funding mines ~105
//! blocks). `scripts/bench-p2p.sh` runs it; `ELECTRUM_SPV_BENCH_P2P_TXS` changes N (at most
//! 2,500 per layout), `ELECTRUM_SPV_BENCH_P2P_ROUNDS` repeats both layouts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bitcoin::consensus::encode::serialize;
use electrum_spv::p2p::{BroadcastOptions, NodeId, PeerAddr, PeerPool, PeerPoolConfig, TxReport};
use electrum_spv_core::chain::Network;
use electrum_spv_testkit::bcoin::{BcoinNet, Spender};

/// How long a broadcast waits for its announcements (bcoin trickles on Poisson timers).
const TIMEOUT: Duration = Duration::from_secs(180);
/// How long the mempool poller waits for the last transaction after the broadcast returned.
const MEMPOOL_GRACE: Duration = Duration::from_secs(60);

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn addr(a: SocketAddr) -> PeerAddr {
    PeerAddr::new(a.ip().to_string(), a.port())
}

/// The `q` quantile (0..=1) of `v`, sorted in place.
fn quantile(v: &mut [u64], q: f64) -> Option<u64> {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).copied()
}

fn rate(n: usize, ms: Option<u64>) -> String {
    match ms {
        Some(ms) if ms > 0 => format!("{:.0} tx/s", n as f64 * 1000.0 / ms as f64),
        Some(_) => "-".into(),
        None => "incomplete".into(),
    }
}

fn ms(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| format!("{v} ms"))
}

/// First time (unix ms) each txid appeared in each node's mempool, and the longest poll round.
struct Seen {
    first: Vec<HashMap<bitcoin::Txid, u64>>,
    round_ms: u64,
}

/// Polls every node's mempool for `txids` until all are everywhere or `stop` is set and
/// [`MEMPOOL_GRACE`] passed.
fn poll_mempools(net: &BcoinNet, txids: &[bitcoin::Txid], stop: &AtomicBool) -> Seen {
    let mut seen = Seen {
        first: vec![HashMap::new(); net.nodes().len()],
        round_ms: 0,
    };
    let mut stopped_at = None;
    loop {
        let round = Instant::now();
        for (i, node) in net.nodes().iter().enumerate() {
            let Ok(pool) = node.getrawmempool() else {
                continue;
            };
            let now = unix_ms();
            for txid in pool {
                seen.first[i].entry(txid).or_insert(now);
            }
        }
        seen.round_ms = seen.round_ms.max(round.elapsed().as_millis() as u64);
        let everywhere = seen
            .first
            .iter()
            .all(|m| txids.iter().all(|t| m.contains_key(t)));
        if everywhere {
            return seen;
        }
        if stop.load(Ordering::SeqCst) {
            let at = *stopped_at.get_or_insert_with(Instant::now);
            if at.elapsed() >= MEMPOOL_GRACE {
                return seen;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One layout: `plan` gives each recipient its transactions.
fn run(
    rt: &tokio::runtime::Runtime,
    net: &BcoinNet,
    pool: &PeerPool,
    ids: &[NodeId; 3],
    label: &str,
    plan: Vec<(usize, Vec<bitcoin::Transaction>)>,
) {
    let n: usize = plan.iter().map(|(_, txs)| txs.len()).sum();
    // Recipient node index of each txid, for "accepted by its recipient".
    let recipient_of: HashMap<bitcoin::Txid, usize> = plan
        .iter()
        .flat_map(|(r, txs)| txs.iter().map(move |t| (t.compute_txid(), *r)))
        .collect();
    let txids: Vec<bitcoin::Txid> = recipient_of.keys().copied().collect();
    let stop = AtomicBool::new(false);
    let reports: Mutex<Vec<TxReport>> = Mutex::new(Vec::new());
    let mut returned_ms = 0;
    let t0 = unix_ms();
    let seen = std::thread::scope(|s| {
        let poller = s.spawn(|| poll_mempools(net, &txids, &stop));
        rt.block_on(async {
            let calls = plan.iter().map(|(r, txs)| {
                let raw: Vec<Vec<u8>> = txs.iter().map(serialize).collect();
                let options = BroadcastOptions {
                    recipients: vec![ids[*r].clone()],
                    announcers: 1,
                    timeout: TIMEOUT,
                };
                async move { pool.broadcast(&raw, &options).await }
            });
            for result in futures::future::join_all(calls).await {
                reports.lock().unwrap().extend(result.expect("broadcast"));
            }
        });
        returned_ms = unix_ms() - t0;
        stop.store(true, Ordering::SeqCst);
        poller.join().expect("poller")
    });
    let reports = reports.into_inner().unwrap();
    assert_eq!(reports.len(), n);

    // The broadcast measures from its own start (a few ms after t0 at most: the pool is
    // ready); the mempool times are from t0.
    let served: Vec<u64> = reports.iter().filter_map(|r| r.served_ms).collect();
    let sent_ms = (served.len() == n).then(|| served.iter().copied().max().unwrap_or(0));
    let accepted: Vec<u64> = txids
        .iter()
        .filter_map(|t| seen.first[recipient_of[t]].get(t).map(|at| at - t0))
        .collect();
    let accepted_ms = (accepted.len() == n).then(|| accepted.iter().copied().max().unwrap_or(0));
    let everywhere: Vec<u64> = txids
        .iter()
        .filter_map(|t| {
            let times: Option<Vec<u64>> = seen.first.iter().map(|m| m.get(t).copied()).collect();
            times.map(|v| v.into_iter().max().unwrap_or(0) - t0)
        })
        .collect();
    let everywhere_ms =
        (everywhere.len() == n).then(|| everywhere.iter().copied().max().unwrap_or(0));
    let mut first: Vec<u64> = reports
        .iter()
        .filter_map(|r| r.first_announcement_ms)
        .collect();
    let confirmed = reports.iter().filter(|r| r.confirmed).count();
    let verified = reports.iter().filter(|r| r.verified_by.is_some()).count();
    let requested = reports
        .iter()
        .filter(|r| !r.requested_by.is_empty())
        .count();
    let announcements = first.len();
    println!(
        "p2p-bcoin {label}: {n} tx, K=1: sent {} ({}), accepted by recipients {} ({}), \
         in all 3 mempools {} ({}), poll {} ms",
        ms(sent_ms),
        rate(n, sent_ms),
        ms(accepted_ms),
        rate(n, accepted_ms),
        ms(everywhere_ms),
        rate(n, everywhere_ms),
        seen.round_ms,
    );
    println!(
        "p2p-bcoin {label}: first non-recipient announcement p50 {} p99 {} max {} \
         ({announcements} announced); requested {requested}/{n}, confirmed {confirmed}/{n}, \
         verified {verified}/{n}; broadcast returned after {returned_ms} ms",
        ms(quantile(&mut first, 0.5)),
        ms(quantile(&mut first, 0.99)),
        ms(quantile(&mut first, 1.0)),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass test flags: run only
    // under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("p2p_bcoin: run with cargo bench (scripts/bench-p2p.sh)");
        return;
    }
    let n = env_usize("ELECTRUM_SPV_BENCH_P2P_TXS", 1_000).clamp(2, 2_500);
    let rounds = env_usize("ELECTRUM_SPV_BENCH_P2P_ROUNDS", 1).max(1);
    let setup = Instant::now();
    let mut net = BcoinNet::line(3).expect("start three bcoin nodes in a line");
    let mut spender: Spender = net.fund(2 * rounds as u32).expect("fund");
    let mut splits = Vec::new();
    for _ in 0..2 * rounds {
        splits.push(spender.split(n).expect("split"));
    }
    for split in &splits {
        net.confirm(split).expect("confirm the split");
    }
    eprintln!("setup: {:?}", setup.elapsed());

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let addrs: Vec<PeerAddr> = net.nodes().iter().map(|n| addr(n.p2p_addr())).collect();
    let ids = [0, 1, 2].map(|i| addrs[i].node_id());
    for round in 0..rounds {
        for spread in [false, true] {
            // A fresh pool each time: no state of the last layout is carried over.
            let pool = rt.block_on(async {
                let pool = PeerPool::start(&addrs, PeerPoolConfig::new(Network::Regtest));
                let all = |p: &PeerPool| ids.iter().all(|id| p.info(id).is_some());
                assert!(
                    pool.wait_until(Duration::from_secs(30), all).await,
                    "pool not ready"
                );
                pool
            });
            let txs = spender.spends(n).expect("spends");
            let (label, plan) = if spread {
                let (a, b) = txs.split_at(n / 2);
                ("spread A+B", vec![(0, a.to_vec()), (1, b.to_vec())])
            } else {
                ("to A", vec![(0, txs)])
            };
            println!("p2p-bcoin round {}:", round + 1);
            run(&rt, &net, &pool, &ids, label, plan);
            rt.block_on(async { pool.shutdown() });
            drop(pool);
            // Empty the mempools for the next layout.
            net.mine(1).expect("mine");
            let left = net.node(0).getrawmempool().expect("mempool").len();
            if left > 0 {
                eprintln!("note: {left} transactions left in A's mempool after mining");
            }
        }
    }
}
