//! Serves the test kit's regtest chain through a real server on loopback, for demos and
//! manual testing: ElectrumX 2.0 with TLS by default, or `--server NAME` (an interop matrix
//! implementation: `electrumx-1.16.0`, `electrs-0.10.10`, ...; TCP only; `--list` prints
//! every name). Prints one JSON line
//! (`server`, `ssl` and `tls_pin` (null with `--server`), `socks5`: a recording SOCKS5 proxy,
//! `height`, `addresses`, `implementation`, `fee_rate` and `relay_fee`: what the stand-in
//! answers, in BTC/kvB), then keeps the servers up until its standard input closes. Commands
//! read from standard input, one per line: `mine N` mines N blocks; `reorg N` replaces the last
//! N blocks by N + 1 new ones, their transactions back into the mempool; `pay WALLET KIND SATS`
//! pays WALLET's KIND address from Alice; `build WALLET KIND SATS` builds and signs such a
//! payment without sending it (`{"txid", "hex"}`, for broadcast tests); `history ADDRESS` and
//! `utxos ADDRESS` answer the kit's own records of an address (what a verified client must
//! agree with, independent of the server); `block HEIGHT` answers the kit's block there
//! (`{"hash", "time"}`); `proxied` lists the destinations the SOCKS5 proxy
//! was asked for (`name:port` when sent as a name); each answers one JSON line.

use std::io::{BufRead, Write};

use bitcoin::Amount;
use electrum_spv_testkit::chain::ALICE;
use electrum_spv_testkit::socks::{Destination, Socks5Proxy};
use electrum_spv_testkit::{
    ESTIMATED_FEERATE, Harness, Implementation, RELAY_FEE, ReorgTxs, ScriptKind, SendSpec,
    ServerHarness, StandInBitcoind,
};

/// What serves the chain.
enum Served {
    /// ElectrumX 2.0 with TLS (the default).
    Default(Harness),
    /// An implementation named by `--server`.
    Named(ServerHarness),
}

impl Served {
    fn start() -> Result<Served, String> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        match args.as_slice() {
            [] => Harness::start().map(Served::Default),
            [flag] if flag == "--list" => {
                for i in Implementation::all() {
                    println!("{}", i.name());
                }
                std::process::exit(0);
            }
            [flag, name] if flag == "--server" => Implementation::parse(name)
                .and_then(|i| ServerHarness::start(&i))
                .map(Served::Named),
            _ => {
                return Err(format!(
                    "usage: testkit-serve [--server NAME | --list], not {args:?}"
                ));
            }
        }
        .map_err(|e| e.to_string())
    }

    fn bitcoind(&self) -> &StandInBitcoind {
        match self {
            Served::Default(h) => &h.bitcoind,
            Served::Named(h) => &h.bitcoind,
        }
    }
}

fn main() {
    let served = match Served::start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("testkit-serve: {e}");
            std::process::exit(1);
        }
    };
    let h = served.bitcoind();
    let mut addresses = serde_json::Map::new();
    for w in h.chain().wallets() {
        for kind in ScriptKind::ALL {
            addresses.insert(
                format!("{}-{}", w.name, kind.name()),
                w.address(kind).to_string().into(),
            );
        }
    }
    let (implementation, server, ssl, pin) = match &served {
        Served::Default(x) => (
            "electrumx-2.0.0".to_owned(),
            x.addr(),
            Some(format!("ssl://{}", x.electrumx.ssl_addr())),
            Some(
                electrum_spv_core::hash::sha256(x.electrumx.certificate())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
            ),
        ),
        Served::Named(x) => (x.implementation.name(), x.addr(), None, None),
    };
    let proxy = match Socks5Proxy::start() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("testkit-serve: SOCKS5 proxy: {e}");
            std::process::exit(1);
        }
    };
    let hello = serde_json::json!({
        "server": format!("tcp://{server}"),
        "ssl": ssl,
        "tls_pin": pin,
        "socks5": proxy.addr().to_string(),
        "height": h.tip().0,
        "addresses": addresses,
        "implementation": implementation,
        "fee_rate": ESTIMATED_FEERATE,
        "relay_fee": RELAY_FEE,
    });
    println!("{hello}");
    let _ = std::io::stdout().flush();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["mine", n] => match n.parse::<usize>() {
                Ok(n) => {
                    h.mine(n);
                    serde_json::json!({"height": h.tip().0})
                }
                Err(e) => serde_json::json!({"error": e.to_string()}),
            },
            ["reorg", n] => match n.parse::<usize>() {
                Ok(n) if n >= 1 && (n as u32) < h.tip().0 => {
                    h.reorg_with(n, ReorgTxs::ToMempool);
                    let (height, header) = h.tip();
                    serde_json::json!({"height": height, "hash": header.block_hash().to_string()})
                }
                Ok(n) => serde_json::json!({"error": format!("cannot reorg {n} blocks")}),
                Err(e) => serde_json::json!({"error": e.to_string()}),
            },
            ["pay", wallet, kind, sats] => pay(h, wallet, kind, sats, Payment::Send),
            ["build", wallet, kind, sats] => pay(h, wallet, kind, sats, Payment::Build),
            ["block", height] => match height.parse::<usize>() {
                Ok(n) => match h.chain().blocks().get(n) {
                    Some(b) => serde_json::json!({
                        "hash": b.header.block_hash().to_string(),
                        "time": b.header.time,
                    }),
                    None => serde_json::json!({"error": format!("no block {n}")}),
                },
                Err(e) => serde_json::json!({"error": e.to_string()}),
            },
            ["history", address] => records(h, address, history),
            ["utxos", address] => records(h, address, utxos),
            ["proxied"] => {
                let asked: Vec<String> = proxy
                    .requests()
                    .into_iter()
                    .map(|d| match d {
                        Destination::Name(name, port) => format!("{name}:{port}"),
                        Destination::Address(a) => format!("address {a}"),
                    })
                    .collect();
                serde_json::json!({"proxied": asked})
            }
            _ => serde_json::json!({"error": format!("unknown command {line:?}")}),
        };
        println!("{answer}");
        let _ = std::io::stdout().flush();
    }
}

/// What `pay` does with the payment.
enum Payment {
    /// Into the mempool (the stand-in's `sendrawtransaction`).
    Send,
    /// Built and signed only: returned for the client to broadcast.
    Build,
}

fn pay(
    h: &StandInBitcoind,
    wallet: &str,
    kind: &str,
    sats: &str,
    what: Payment,
) -> serde_json::Value {
    let Some(kind) = ScriptKind::ALL.into_iter().find(|k| k.name() == kind) else {
        return serde_json::json!({"error": format!("unknown kind {kind}")});
    };
    let Ok(sats) = sats.parse::<u64>() else {
        return serde_json::json!({"error": format!("bad amount {sats}")});
    };
    let script = {
        let chain = h.chain();
        let Some(w) = chain.wallets().iter().find(|w| w.name == wallet) else {
            return serde_json::json!({"error": format!("unknown wallet {wallet}")});
        };
        w.script(kind).to_owned()
    };
    let spec = SendSpec::new(ALICE, &script, Amount::from_sat(sats));
    let outcome = match what {
        Payment::Send => h
            .send_spec(spec)
            .map(|txid| serde_json::json!({"txid": txid.to_string()})),
        Payment::Build => h.build_tx(spec).map(|tx| {
            serde_json::json!({
                "txid": tx.compute_txid().to_string(),
                "hex": bitcoin::consensus::encode::serialize_hex(&tx),
            })
        }),
    };
    outcome.unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}))
}

/// The kit's records of `address` (one of the hello line's), as `answer` renders them.
fn records(
    h: &StandInBitcoind,
    address: &str,
    answer: fn(&electrum_spv_testkit::chain::Chain, &bitcoin::Script) -> serde_json::Value,
) -> serde_json::Value {
    let chain = h.chain();
    let script = chain.wallets().iter().find_map(|w| {
        ScriptKind::ALL
            .into_iter()
            .find(|&k| w.address(k).to_string() == address)
            .map(|k| w.script(k).to_owned())
    });
    match script {
        Some(script) => answer(&chain, &script),
        None => serde_json::json!({"error": format!("not a kit address: {address}")}),
    }
}

/// `{"status", "txs": [{"txid", "height"}]}` with Electrum heights (0, -1 for the mempool).
fn history(
    chain: &electrum_spv_testkit::chain::Chain,
    script: &bitcoin::Script,
) -> serde_json::Value {
    let txs: Vec<_> = chain
        .history(script)
        .into_iter()
        .map(|(txid, height)| serde_json::json!({"txid": txid.to_string(), "height": height}))
        .collect();
    serde_json::json!({"status": chain.status(script), "txs": txs})
}

/// `{"utxos": [{"txid", "vout", "height", "value"}]}`.
fn utxos(
    chain: &electrum_spv_testkit::chain::Chain,
    script: &bitcoin::Script,
) -> serde_json::Value {
    let utxos: Vec<_> = chain
        .listunspent(script)
        .into_iter()
        .map(|u| {
            serde_json::json!({"txid": u.txid.to_string(), "vout": u.vout, "height": u.height, "value": u.value})
        })
        .collect();
    serde_json::json!({"utxos": utxos})
}
