//! Real Bitcoin P2P peers for the bindings' tests: starts three bcoin 1.0.2 regtest nodes in a
//! line A-B-C on 127.0.0.1 (installed by the kit on first use, see `bcoin::ensure_installed`),
//! funds the kit key and confirms a split, then prints one JSON line:
//! `{"peers": [A, B, C], "txs": [{"txid", "hex"}...], "invalid": {"txid", "hex"}}` — `peers`
//! are the nodes' P2P addresses (`127.0.0.1:port`), `txs` N signed, valid, independent P2PKH
//! spends not sent anywhere (N is the first argument, default 2), `invalid` a spend with an
//! invalid signature (bcoin bans whoever relays it). Then answers commands read from standard
//! input, one JSON line each, until standard input closes (the nodes are stopped then):
//! `mempool` gives each node's mempool txids (`{"mempools": [[txid...], ...]}`), `clearbanned`
//! lifts every node's bans (`{"ok": true}`).

use std::io::{BufRead, Write};

use bitcoin::Transaction;
use bitcoin::consensus::encode::serialize_hex;
use electrum_spv_testkit::bcoin::BcoinNet;
use serde_json::{Value, json};

fn tx_json(tx: &Transaction) -> Value {
    json!({"txid": tx.compute_txid().to_string(), "hex": serialize_hex(tx)})
}

fn start(n: usize) -> Result<(BcoinNet, Value), electrum_spv_testkit::Error> {
    let mut net = BcoinNet::line(3)?;
    let mut spender = net.fund(2)?;
    // One more coin than spends, so the invalid spend has a coin of its own.
    let split = spender.split(n + 1)?;
    net.confirm(&split)?;
    let txs = spender.spends(n)?;
    let invalid = spender.invalid_spend()?;
    let peers: Vec<String> = net
        .nodes()
        .iter()
        .map(|node| node.p2p_addr().to_string())
        .collect();
    let hello = json!({
        "peers": peers,
        "txs": txs.iter().map(tx_json).collect::<Vec<_>>(),
        "invalid": tx_json(&invalid),
    });
    Ok((net, hello))
}

fn main() {
    let n = match std::env::args().nth(1).map(|a| a.parse::<usize>()) {
        None => 2,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => {
            eprintln!("bcoin-serve: usage: bcoin-serve [N >= 1]");
            std::process::exit(2);
        }
    };
    let (net, hello) = match start(n) {
        Ok(started) => started,
        Err(e) => {
            eprintln!("bcoin-serve: {e}");
            std::process::exit(1);
        }
    };
    println!("{hello}");
    let _ = std::io::stdout().flush();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let answer = match line.trim() {
            "mempool" => net
                .nodes()
                .iter()
                .map(|node| {
                    node.getrawmempool()
                        .map(|txids| txids.iter().map(ToString::to_string).collect::<Vec<_>>())
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|mempools| json!({"mempools": mempools})),
            "clearbanned" => net
                .nodes()
                .iter()
                .try_for_each(|node| node.clearbanned())
                .map(|()| json!({"ok": true})),
            _ => Ok(json!({"error": format!("unknown command {line:?}")})),
        };
        let answer = answer.unwrap_or_else(|e| json!({"error": e.to_string()}));
        println!("{answer}");
        let _ = std::io::stdout().flush();
    }
}
