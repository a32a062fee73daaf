//! bcoin 1.0.2 full nodes on regtest (the kit's real P2P peers): a line of three nodes
//! agrees on a funded chain, relays a spend from A to C, and refuses an invalid one. bcoin
//! is installed on first use; a failure to install or start it fails the test with the
//! reason (never a skip).

use std::time::{Duration, Instant};

use bitcoin::Txid;
use electrum_spv_testkit::bcoin::{
    BcoinNet, BcoinNode, COINBASE_MATURITY, CoinKind, KitKey, SEGWIT_HEIGHT,
};

/// Relay A -> B -> C takes about 10 s (Poisson announcement timers).
const RELAY_TIMEOUT: Duration = Duration::from_secs(60);

fn line3() -> BcoinNet {
    let t = Instant::now();
    let net = BcoinNet::line(3).expect("start three bcoin nodes in a line");
    eprintln!("line(3) started and connected in {:?}", t.elapsed());
    net
}

#[test]
fn line_of_three_is_connected_as_a_line() {
    let net = line3();
    let [a, b, c] = [net.node(0), net.node(1), net.node(2)];
    // Every node connects out to its neighbours only: never to itself, never A <-> C.
    let mut out_b = b.outbound_peers().expect("getpeerinfo B");
    out_b.sort();
    let mut want = vec![a.p2p_addr(), c.p2p_addr()];
    want.sort();
    assert_eq!(out_b, want, "B's outbound peers");
    assert_eq!(a.outbound_peers().expect("A"), vec![b.p2p_addr()]);
    assert_eq!(c.outbound_peers().expect("C"), vec![b.p2p_addr()]);
    for (name, node) in [("A", a), ("B", b), ("C", c)] {
        let peers = node.getpeerinfo().expect("getpeerinfo");
        assert!(
            peers
                .iter()
                .all(|p| p["addr"].as_str() != Some(&node.p2p_addr().to_string())),
            "{name} is connected to itself: {peers:?}"
        );
        assert!(
            peers
                .iter()
                .filter(|p| p["inbound"] == false)
                .all(|p| p["subver"].as_str().unwrap_or("").contains("bcoin")),
            "{name}: {peers:?}"
        );
        node.clearbanned().expect("clearbanned");
    }
}

#[test]
fn funded_chain_is_the_same_on_every_node() {
    let mut net = line3();
    let t = Instant::now();
    let spender = net.fund(20).expect("fund");
    eprintln!("fund(20) (120 blocks, synced) in {:?}", t.elapsed());
    assert_eq!(spender.coinbases_left(), 20);
    let height = 20 + COINBASE_MATURITY;
    for node in net.nodes() {
        assert_eq!(node.getblockcount().expect("getblockcount"), height);
    }
    for h in [0, 1, 20, 21, height] {
        let a = net.node(0).getblockhash(h).expect("getblockhash A");
        for node in &net.nodes()[1..] {
            assert_eq!(node.getblockhash(h).expect("getblockhash"), a, "height {h}");
        }
    }
    // The coinbases pay the kit key.
    let block = net
        .node(2)
        .getblock(&net.node(2).getblockhash(1).expect("hash"))
        .expect("getblock C");
    assert_eq!(
        block.txdata[0].output[0].script_pubkey,
        KitKey::new().script_pubkey
    );
    assert!(
        net.node(0)
            .getblockhash(height + 1)
            .expect_err("no block above the tip")
            .code
            .is_some()
    );
}

#[test]
fn spend_sent_to_a_reaches_c_and_invalid_spend_does_not() {
    let mut net = line3();
    let mut spender = net.fund(2).expect("fund");
    let split = spender.split(3).expect("split");
    net.confirm(&split).expect("confirm the split");

    let bad = spender.invalid_spend().expect("invalid spend");
    let bad_txid = net.node(0).send_tx(&bad).expect("sendrawtransaction (bad)");
    assert_eq!(
        bad_txid,
        bad.compute_txid(),
        "bcoin answers the txid even when it rejects"
    );

    let good = spender.spends(1).expect("spend").remove(0);
    let txid = net.node(0).send_tx(&good).expect("sendrawtransaction");
    assert_eq!(txid, good.compute_txid());
    net.node_mut(0)
        .wait_for_mempool(&[txid], Duration::from_secs(10))
        .expect("in A's mempool");
    let t = Instant::now();
    net.node_mut(2)
        .wait_for_mempool(&[txid], RELAY_TIMEOUT)
        .expect("relayed to C's mempool");
    eprintln!("A -> C relay: {:?}", t.elapsed());

    // The invalid spend was sent before the good one, so it had every chance.
    for (i, node) in net.nodes().iter().enumerate() {
        let pool: Vec<Txid> = node.getrawmempool().expect("getrawmempool");
        assert!(
            !pool.contains(&bad_txid),
            "node {i} accepted the bad signature"
        );
    }
    let log = net.node(0).log_tail(1_000_000);
    // bcoin logs e.g. "Verification failure: mandatory-script-verify-flag (code=nonstandard
    // score=100 hash=<txid>)".
    assert!(
        log.contains("mandatory-script-verify-flag") && log.contains(&format!("hash={bad_txid}")),
        "A's log does not show the rejection:\n{}",
        &log[log.len().saturating_sub(3000)..]
    );

    // Mined: the mempools empty on every node.
    net.mine(1).expect("mine");
    for node in net.nodes() {
        assert!(node.getrawmempool().expect("mempool").is_empty());
    }
}

#[test]
fn batches_of_300_and_1000_spends_are_accepted() {
    let mut net = BcoinNet::line(1).expect("one bcoin node");
    let mut spender = net.fund(2).expect("fund");
    for n in [300, 1000] {
        let split = spender.split(n).expect("split");
        net.confirm(&split).expect("confirm the split");
        let txs = spender.spends(n).expect("spends");
        let t = Instant::now();
        let txids: Vec<Txid> = txs
            .iter()
            .map(|tx| net.node(0).send_tx(tx).expect("sendrawtransaction"))
            .collect();
        net.node_mut(0)
            .wait_for_mempool(&txids, Duration::from_secs(120))
            .expect("all in the mempool");
        eprintln!("{n} spends accepted by one node in {:?}", t.elapsed());
        net.mine(1).expect("mine");
        assert!(net.node(0).getrawmempool().expect("mempool").is_empty());
    }
}

#[test]
fn a_lone_node_does_not_connect_to_itself() {
    let node = BcoinNode::start(&[]).expect("start a bcoin node");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        node.getpeerinfo().expect("getpeerinfo"),
        Vec::<serde_json::Value>::new()
    );
}

#[test]
fn p2wpkh_spends_are_refused_before_segwit_and_relayed_after() {
    let mut net = BcoinNet::line(2).expect("two bcoin nodes");
    let mut spender = net.fund(2).expect("fund");
    // Paying to P2WPKH is fine before activation; spending it is not.
    let split = spender.split_to(4, CoinKind::P2wpkh).expect("split");
    net.confirm(&split).expect("confirm the split");
    let early = spender.spends(1).expect("spend").remove(0);
    assert!(early.input[0].script_sig.is_empty() && early.input[0].witness.len() == 2);
    let early_txid = net.node(0).send_tx(&early).expect("sendrawtransaction");
    net.node_mut(0)
        .wait_for_log(
            &format!("no-witness-yet (code=nonstandard score=0 hash={early_txid})"),
            Duration::from_secs(10),
        )
        .expect("refused before segwit");
    assert!(
        !net.node(0)
            .getrawmempool()
            .expect("mempool")
            .contains(&early_txid)
    );

    let t = Instant::now();
    net.activate_segwit().expect("activate segwit");
    eprintln!(
        "segwit activated (height {SEGWIT_HEIGHT}) in {:?}",
        t.elapsed()
    );
    let txs = spender.spends(2).expect("spends");
    let mut txids = Vec::new();
    for tx in [&early, &txs[0], &txs[1]] {
        txids.push(net.node(0).send_tx(tx).expect("sendrawtransaction"));
    }
    net.node_mut(0)
        .wait_for_mempool(&txids, Duration::from_secs(10))
        .expect("in A's mempool after activation");
    // Only the fresh ones: A already announced `early` to B before activation (bcoin
    // "broadcasts anyway" a transaction refused with score 0), B refused it then, and A never
    // announces a txid twice to the same peer.
    net.node_mut(1)
        .wait_for_mempool(&txids[1..], RELAY_TIMEOUT)
        .expect("relayed to B");
    eprintln!(
        "early tx at B: {}",
        net.node(1)
            .getrawmempool()
            .expect("mempool")
            .contains(&early_txid)
    );
    // A bad signature on a P2WPKH input is refused too.
    let bad = spender.invalid_spend().expect("invalid spend");
    assert!(bad.input[0].script_sig.is_empty());
    let bad_txid = net.node(0).send_tx(&bad).expect("sendrawtransaction");
    net.node_mut(0)
        .wait_for_log(&format!("hash={bad_txid})"), Duration::from_secs(10))
        .expect("refused");
    assert!(
        !net.node(0)
            .getrawmempool()
            .expect("mempool")
            .contains(&bad_txid)
    );
}
