//! The P2P pool against real peers: three bcoin 1.0.2 nodes in a line A-B-C on 127.0.0.1
//! (installed by the test kit from npm on first use; a failure to install or start fails the
//! test, never skips it).
//!
//! Broadcast goes to A while B and C watch: A must ask for each transaction, B and C must
//! announce it back, A never counts, the bytes an announcer serves must hash to our wtxid, and
//! every node's mempool (RPC) must hold it. Headers synced over P2P must equal bcoin's own
//! `getblockhash` answers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitcoin::consensus::encode::serialize;
use bitcoin::hashes::Hash as _;
use electrum_spv::p2p::{BroadcastOptions, NodeId, PeerAddr, PeerPool, PeerPoolConfig, TxReport};
use electrum_spv_core::chain::{Anchor, HeaderVerifier, Network};
use electrum_spv_core::p2p::{P2pHeaders, PeerEvent};
use electrum_spv_testkit::bcoin::{BcoinNet, CoinKind};
use electrum_spv_testkit::socks::Socks5Proxy;

/// bcoin announces on Poisson timers: A to B about 4 s, on to C about 9 s (P2P.md).
const PROPAGATION: Duration = Duration::from_secs(90);
/// `services` with NODE_WITNESS: bcoin then asks for transactions with their witness.
const NODE_WITNESS: u64 = 8;

fn addr(a: SocketAddr) -> PeerAddr {
    PeerAddr::new(a.ip().to_string(), a.port())
}

fn pool(net: &BcoinNet, services: u64, proxy: Option<String>) -> (PeerPool, [NodeId; 3]) {
    let addrs: Vec<PeerAddr> = net.nodes().iter().map(|n| addr(n.p2p_addr())).collect();
    let ids = [0, 1, 2].map(|i| addrs[i].node_id());
    let mut config = PeerPoolConfig::new(Network::Regtest);
    config.connection.services = services;
    config.proxy = proxy;
    (PeerPool::start(&addrs, config), ids)
}

fn options(recipient: &NodeId, announcers: usize) -> BroadcastOptions {
    BroadcastOptions {
        recipients: vec![recipient.clone()],
        announcers,
        timeout: PROPAGATION,
    }
}

fn raw(txs: &[bitcoin::Transaction]) -> Vec<Vec<u8>> {
    txs.iter().map(serialize).collect()
}

/// The report of a transaction A received and B and C announced, verified.
fn assert_propagated(report: &TxReport, tx: &bitcoin::Transaction, [a, b, c]: &[NodeId; 3]) {
    assert_eq!(
        report.txid.to_byte_array(),
        tx.compute_txid().to_byte_array()
    );
    assert_eq!(
        report.wtxid.to_byte_array(),
        tx.compute_wtxid().to_byte_array()
    );
    assert_eq!(report.recipients, std::slice::from_ref(a));
    assert_eq!(report.requested_by, std::slice::from_ref(a), "{report:?}");
    let mut announced = report.announced_by.clone();
    announced.sort();
    let mut want = vec![b.clone(), c.clone()];
    want.sort();
    assert_eq!(announced, want, "{report:?}");
    assert!(
        !report.announced_by.contains(a),
        "the recipient never counts"
    );
    let verifier = report
        .verified_by
        .as_ref()
        .expect("verified by an announcer");
    assert!(verifier == b || verifier == c, "{report:?}");
    assert!(
        report.mismatched_by.is_empty() && report.confirmed,
        "{report:?}"
    );
}

fn in_every_mempool(net: &BcoinNet, txs: &[bitcoin::Transaction]) {
    for (i, node) in net.nodes().iter().enumerate() {
        let pool = node.getrawmempool().expect("getrawmempool");
        for tx in txs {
            assert!(
                pool.contains(&tx.compute_txid()),
                "node {i} lacks {}",
                tx.compute_txid()
            );
        }
    }
}

#[test]
fn a_broadcast_to_a_is_requested_by_a_announced_by_b_and_c_and_in_every_mempool() {
    let mut net = BcoinNet::line(3).expect("start three bcoin nodes in a line");
    let mut spender = net.fund(4).expect("fund");
    let split = spender.split(400).expect("split");
    net.confirm(&split).expect("confirm the split");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (pool, ids) = pool(&net, 0, None);
        let [a, _, _] = ids.clone();

        // One legacy transaction: served stripped (services 0), announced by both others.
        let one = spender.spends(1).unwrap();
        let t = Instant::now();
        let reports = pool.broadcast(&raw(&one), &options(&a, 2)).await.unwrap();
        eprintln!("one transaction: {:?} ({:?})", t.elapsed(), reports[0]);
        assert_propagated(&reports[0], &one[0], &ids);
        in_every_mempool(&net, &one);

        // A batch of 300.
        let batch = spender.spends(300).unwrap();
        let t = Instant::now();
        let reports = pool.broadcast(&raw(&batch), &options(&a, 2)).await.unwrap();
        eprintln!(
            "300 transactions: {:?}, confirmed {}, requested {}, announced by B {}, by C {}, verified {}",
            t.elapsed(),
            reports.iter().filter(|r| r.confirmed).count(),
            reports.iter().filter(|r| !r.requested_by.is_empty()).count(),
            reports.iter().filter(|r| r.announced_by.contains(&ids[1])).count(),
            reports.iter().filter(|r| r.announced_by.contains(&ids[2])).count(),
            reports.iter().filter(|r| r.verified_by.is_some()).count(),
        );
        for (i, node) in net.nodes().iter().enumerate() {
            let pool = node.getrawmempool().unwrap();
            eprintln!("node {i}: {} of 300 in mempool", batch.iter().filter(|t| pool.contains(&t.compute_txid())).count());
        }
        assert_eq!(reports.len(), 300);
        for (report, tx) in reports.iter().zip(&batch) {
            assert_propagated(report, tx, &ids);
        }
        in_every_mempool(&net, &batch);

        // A transaction the network already has: A does not ask, but B and C announced it
        // to us before, and that counts.
        let known = spender.spends(1).unwrap();
        net.node(0).send_tx(&known[0]).unwrap();
        let want = [known[0].compute_txid()];
        for i in 0..3 {
            net.node_mut(i)
                .wait_for_mempool(&want, PROPAGATION)
                .expect("relayed by RPC");
        }
        // Give the announcements to us (Poisson timers, ~5 s on average) time to arrive.
        tokio::time::sleep(Duration::from_secs(15)).await;
        let reports = pool.broadcast(&raw(&known), &options(&a, 2)).await.unwrap();
        let r = &reports[0];
        assert!(r.requested_by.is_empty(), "a node that has it never asks: {r:?}");
        assert!(r.confirmed && r.verified_by.is_some(), "{r:?}");

        // An invalid transaction: A rejects it, nobody announces it.
        let invalid = spender.invalid_spend().unwrap();
        let short = BroadcastOptions {
            timeout: Duration::from_secs(20),
            ..options(&a, 1)
        };
        let reports = pool.broadcast(&raw(std::slice::from_ref(&invalid)), &short).await.unwrap();
        let r = &reports[0];
        assert_eq!(r.requested_by, std::slice::from_ref(&a), "{r:?}");
        assert!(!r.confirmed && r.announced_by.is_empty(), "{r:?}");
        assert_eq!(r.rejected_by, std::slice::from_ref(&a), "bcoin sends reject: {r:?}");
        for node in net.nodes() {
            assert!(!node.getrawmempool().unwrap().contains(&invalid.compute_txid()));
        }
        // bcoin bans the source of an invalid signature (score 100): A drops us, and the
        // pool keeps the two other nodes.
        let up: Vec<NodeId> = pool.peers().into_iter().map(|p| p.node).collect();
        assert!(up.contains(&ids[1]) && up.contains(&ids[2]), "{up:?}");
        let first_drop = pool.dropped().into_iter().next().expect("A dropped us");
        assert_eq!(first_drop.node, a);
        assert!(first_drop.was_ready, "{first_drop:?}");
        net.node(0).clearbanned().unwrap();
    });
}

#[test]
fn a_witness_transaction_is_served_with_its_witness_and_over_socks5() {
    let mut net = BcoinNet::line(3).expect("start three bcoin nodes in a line");
    let mut spender = net.fund(2).expect("fund");
    net.activate_segwit().expect("segwit");
    let split = spender.split_to(4, CoinKind::P2wpkh).expect("split");
    net.confirm(&split).expect("confirm the split");
    let proxy = Socks5Proxy::start().expect("socks5 proxy");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let socks = proxy.addr().to_string();
        let (pool, ids) = pool(&net, NODE_WITNESS, Some(socks));
        let tx = spender.spends(1).unwrap();
        assert!(tx[0].input.iter().all(|i| !i.witness.is_empty()));
        let reports = pool
            .broadcast(&raw(&tx), &options(&ids[0], 2))
            .await
            .unwrap();
        assert_propagated(&reports[0], &tx[0], &ids);
        in_every_mempool(&net, &tx);
    });
    // Every connection went through the proxy.
    assert!(proxy.requests().len() >= 3, "{:?}", proxy.requests());
}

#[test]
fn headers_over_p2p_equal_bcoins_and_a_new_tip_arrives_by_sendheaders() {
    let mut net = BcoinNet::line(3).expect("start three bcoin nodes in a line");
    net.mine(150).expect("mine");
    let a = net.node(0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let peer = addr(a.p2p_addr());
        let node = peer.node_id();
        let mut config = PeerPoolConfig::new(Network::Regtest);
        config.connection.request_timeout = Duration::from_secs(3);
        let pool = PeerPool::start(&[peer], config);
        assert!(
            pool.wait_until(Duration::from_secs(30), |p| p.info(&node).is_some())
                .await
        );
        let params = Network::Regtest.params();
        let mut sync = P2pHeaders::new(HeaderVerifier::new(params, Anchor::genesis(params)));
        pool.sync_headers(&node, &mut sync, Duration::from_secs(30))
            .await
            .unwrap();
        let tip = *sync.tip().unwrap();
        assert_eq!(tip.height, a.getblockcount().unwrap());
        assert_eq!(
            tip.hash.to_byte_array(),
            a.getblockhash(tip.height).unwrap().to_byte_array()
        );

        // After `sendheaders`, a block mined on A arrives as one header.
        let mut events = pool.events();
        pool.send(&node, &electrum_spv::p2p::OwnedMessage::SendHeaders)
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mined = a
            .generate_to_address(1, &electrum_spv_testkit::bcoin::KitKey::new().address())
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (from, event) = tokio::time::timeout_at(deadline, events.recv())
                .await
                .expect("the new header in time")
                .unwrap();
            if from != node {
                continue;
            }
            if let Some(step) = sync.handle(&event).unwrap() {
                assert_eq!(step, electrum_spv_core::p2p::HeadersStep::Synced);
                break;
            }
            assert!(
                !matches!(event, PeerEvent::Inventory(_)),
                "announced by inv"
            );
        }
        let new = sync.tip().unwrap();
        assert_eq!(new.height, tip.height + 1);
        assert_eq!(new.hash.to_byte_array(), mined[0].to_byte_array());
    });
}

/// A regtest header on `prev` (a nonce found at regtest's trivial target).
fn mine_header(prev: &bitcoin::block::Header, salt: u8) -> bitcoin::block::Header {
    let mut header = bitcoin::block::Header {
        version: bitcoin::block::Version::from_consensus(0x2000_0000),
        prev_blockhash: prev.block_hash(),
        merkle_root: bitcoin::TxMerkleNode::from_byte_array([salt; 32]),
        time: prev.time + 1,
        bits: prev.bits,
        nonce: 0,
    };
    while header.validate_pow(header.target()).is_err() {
        header.nonce += 1;
    }
    header
}

#[test]
fn the_tip_cross_check_tells_equal_behind_ahead_and_diverged() {
    use electrum_spv::header_chain::HeaderChain;
    use electrum_spv::p2p::TipCheck;

    let mut net = BcoinNet::line(1).expect("start a bcoin node");
    net.mine(120).expect("mine");
    let node = net.node(0);
    let headers: Vec<bitcoin::block::Header> = (0..=120)
        .map(|h| {
            node.getblock(&node.getblockhash(h).unwrap())
                .unwrap()
                .header
        })
        .collect();
    let raw = |hs: &[bitcoin::block::Header]| -> Vec<[u8; 80]> {
        hs.iter()
            .map(|h| serialize(h).try_into().unwrap())
            .collect()
    };
    // "Electrum" chains: the kit gives them verified headers the way a server would.
    let chain = |hs: &[bitcoin::block::Header]| {
        let mut c = HeaderChain::from_genesis(Network::Regtest);
        c.extend(&raw(hs)).expect("verified");
        c
    };
    let mut ahead = headers.clone();
    for salt in 0..3 {
        let next = mine_header(ahead.last().unwrap(), salt);
        ahead.push(next);
    }
    let mut fork = headers[..=100].to_vec();
    for salt in 10..15 {
        let next = mine_header(fork.last().unwrap(), salt);
        fork.push(next);
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let peer = addr(node.p2p_addr());
        let id = peer.node_id();
        let mut config = PeerPoolConfig::new(Network::Regtest);
        config.connection.request_timeout = Duration::from_secs(2);
        let pool = PeerPool::start(&[peer], config);
        assert!(
            pool.wait_until(Duration::from_secs(30), |p| p.info(&id).is_some())
                .await
        );
        let grace = Duration::from_secs(1);
        let answer = Duration::from_secs(20);
        let check = |c| {
            let pool = &pool;
            async move { pool.cross_check(&c, grace, answer).await.unwrap() }
        };
        assert_eq!(
            check(chain(&headers)).await,
            TipCheck::Equal { height: 120 }
        );
        assert_eq!(
            check(chain(&headers[..=115])).await,
            TipCheck::ElectrumBehind { blocks: 5 }
        );
        let t = Instant::now();
        assert_eq!(
            check(chain(&ahead)).await,
            TipCheck::ElectrumAhead {
                blocks: 3,
                suspect: true
            }
        );
        assert!(t.elapsed() >= grace, "the grace period is waited");
        let TipCheck::Diverged { electrum, p2p } = check(chain(&fork)).await else {
            panic!("not diverged")
        };
        assert_eq!((electrum.0, p2p.0), (105, 120));
    });
}

fn cli() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_electrum-spv"));
    c.args(["--network", "regtest", "p2p"]);
    c
}

fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn cli_p2p_broadcast_and_headers_print_the_documented_shapes() {
    let mut net = BcoinNet::line(3).expect("start three bcoin nodes in a line");
    let mut spender = net.fund(2).expect("fund");
    let split = spender.split(3).expect("split");
    net.confirm(&split).expect("confirm the split");
    let peers: Vec<String> = net
        .nodes()
        .iter()
        .map(|n| n.p2p_addr().to_string())
        .collect();

    // Two transactions from a file, one recipient (the first peer), K = 2.
    let txs = spender.spends(2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("txs.hex");
    let hex: Vec<String> = txs
        .iter()
        .map(|t| electrum_spv::to_hex(&serialize(t)))
        .collect();
    std::fs::write(&file, format!("{}\n\n{}\n", hex[0], hex[1])).unwrap();
    let mut c = cli();
    c.arg("broadcast");
    for p in &peers {
        c.args(["--peer", p]);
    }
    let out = c
        .args(["--recipients", "1", "--announcers", "2", "--timeout", "90"])
        .arg("--file")
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (line, tx) in lines.iter().zip(&txs) {
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = [
            "txid",
            "wtxid",
            "recipients",
            "requested_by",
            "announced_by",
            "verified_by",
            "rejected_by",
            "elapsed_ms",
        ];
        want.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(line["txid"], tx.compute_txid().to_string());
        assert_eq!(line["recipients"], serde_json::json!([peers[0]]));
        assert_eq!(line["requested_by"], serde_json::json!([peers[0]]));
        let mut announced: Vec<String> = line["announced_by"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        announced.sort();
        let mut others = vec![peers[1].clone(), peers[2].clone()];
        others.sort();
        assert_eq!(announced, others);
        assert!(line["elapsed_ms"].as_u64().is_some());
    }
    let summary = &lines[2];
    assert_eq!(summary["sent"], 2);
    assert_eq!(summary["accepted"], 2);
    assert_eq!(summary["confirmed"], 2);
    assert!(summary["seconds"].as_f64().unwrap() > 0.0);

    // Not enough announcers within the timeout: the lines, then exit status 1.
    let one = spender.spends(1).unwrap();
    let out = cli()
        .args(["broadcast", "--peer", &peers[0], "--peer", &peers[1]])
        .args(["--announcers", "2", "--timeout", "15"])
        .arg(electrum_spv::to_hex(&serialize(&one[0])))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["confirmed"], 0);

    // Headers over P2P from genesis (regtest has no checkpoint): bcoin's own tip.
    let a = net.node(0);
    let out = cli()
        .args(["headers", "--peer", &peers[0], "--timeout", "20"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let height = a.getblockcount().unwrap();
    let tip = a.getblockhash(height).unwrap();
    assert_eq!(
        text.lines().last().unwrap(),
        format!("ok {} 0..{height} {tip}", height + 1)
    );
}
