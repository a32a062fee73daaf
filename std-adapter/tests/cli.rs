//! The `electrum-spv` command line end to end against the test kit's real ElectrumX: every
//! command's output checked against the kit's records, errors as one line with exit status 1.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bitcoin::Amount;
use bitcoin::consensus::encode::serialize;
use electrum_spv_testkit::chain::{ALICE, BOB};
use electrum_spv_testkit::{Harness, ScriptKind, SendSpec};
use serde_json::Value;

fn harness() -> Harness {
    Harness::start().unwrap_or_else(|e| panic!("cannot start the test kit's ElectrumX: {e}"))
}

fn cli(h: &Harness) -> Command {
    common::cli(h.addr())
}

fn run(mut c: Command) -> Output {
    c.output().expect("run electrum-spv")
}

/// Runs and parses each stdout line as JSON; fails the test on a non-zero exit.
fn json_lines(h: &Harness, args: &[&str]) -> Vec<Value> {
    let mut c = cli(h);
    c.arg("--json").args(args);
    let out = run(c);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn one(h: &Harness, args: &[&str]) -> Value {
    let mut lines = json_lines(h, args);
    assert_eq!(lines.len(), 1, "{args:?}: {lines:?}");
    lines.remove(0)
}

fn address(h: &Harness, wallet: usize, kind: ScriptKind) -> String {
    h.bitcoind.chain().wallets()[wallet]
        .address(kind)
        .to_string()
}

#[test]
fn every_command_against_the_kit() {
    let h = harness();
    let (tip, tip_header) = h.bitcoind.tip();
    let tip_hash = tip_header.block_hash().to_string();

    let t = one(&h, &["tip"]);
    assert_eq!(
        (t["height"].as_u64(), t["hash"].as_str()),
        (Some(u64::from(tip)), Some(tip_hash.as_str()))
    );

    let hs = one(&h, &["headers"]);
    assert_eq!(hs["verified"].as_u64(), Some(u64::from(tip) + 1));

    let block5 = h.bitcoind.chain().blocks()[5].header;
    let hd = one(&h, &["header", "5"]);
    let hex: String = serialize(&block5)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hd["hex"].as_str(), Some(hex.as_str()));
    assert_eq!(
        hd["hash"].as_str(),
        Some(block5.block_hash().to_string().as_str())
    );

    // History, by address, script and script hash: the kit's records, proven.
    for kind in ScriptKind::ALL {
        let addr = address(&h, ALICE, kind);
        let script = h.bitcoind.chain().wallets()[ALICE].script(kind).to_owned();
        let kit: Vec<(String, i64)> = h
            .bitcoind
            .history(&script)
            .into_iter()
            .map(|(t, hgt)| (t.to_string(), hgt))
            .collect();
        let script_hex: String = script
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let hash = electrum_spv::core::script_hash(script.as_bytes()).to_string();
        for args in [
            vec!["history", addr.as_str()],
            vec!["history", "--script", script_hex.as_str()],
            vec!["history", "--scripthash", hash.as_str()],
        ] {
            let v = one(&h, &args);
            let got: Vec<(String, i64)> = v["history"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["tx_hash"].as_str().unwrap().to_owned(),
                        e["height"].as_i64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(got, kit, "{args:?}");
            assert_eq!(
                v["status"].as_str().map(str::to_owned),
                h.bitcoind.status(&script)
            );
            for e in v["history"].as_array().unwrap() {
                let height = e["height"].as_i64().unwrap();
                if height > 0 {
                    let block = h.bitcoind.chain().blocks()[height as usize]
                        .block_hash()
                        .to_string();
                    assert_eq!(e["block_hash"].as_str(), Some(block.as_str()));
                } else {
                    assert!(e["block_hash"].is_null());
                }
            }
        }

        // Verified utxos and the balance summed from them equal the kit's unspent outputs.
        let mut kit_utxos: Vec<(String, u64, u64)> = h
            .bitcoind
            .listunspent(&script)
            .iter()
            .map(|u| (u.txid.to_string(), u64::from(u.vout), u.value))
            .collect();
        let mut utxos: Vec<(String, u64, u64)> = json_lines(&h, &["utxos", &addr])
            .iter()
            .map(|u| {
                (
                    u["tx_hash"].as_str().unwrap().to_owned(),
                    u["tx_pos"].as_u64().unwrap(),
                    u["value"].as_u64().unwrap(),
                )
            })
            .collect();
        utxos.sort();
        kit_utxos.sort();
        assert_eq!(utxos, kit_utxos, "utxos of {addr}");
        let b = one(&h, &["balance", &addr]);
        let total: u64 = kit_utxos.iter().map(|u| u.2).sum();
        assert_eq!(
            b["confirmed"].as_u64().unwrap() + b["unconfirmed"].as_u64().unwrap(),
            total
        );
    }

    // A transaction, by txid; a broadcast, answered with its txid.
    let script = h.bitcoind.chain().wallets()[ALICE]
        .script(ScriptKind::P2pkh)
        .to_owned();
    let (txid, _) = h.bitcoind.history(&script)[0];
    let tx = one(&h, &["tx", &txid.to_string()]);
    let raw = h
        .bitcoind
        .chain()
        .find_tx(&txid)
        .map(|(t, _)| serialize(t))
        .unwrap();
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(tx["hex"].as_str(), Some(hex.as_str()));

    let bob = h.bitcoind.chain().wallets()[BOB]
        .script(ScriptKind::P2wpkh)
        .to_owned();
    let spend = h
        .bitcoind
        .build_tx(SendSpec::new(ALICE, &bob, Amount::from_sat(12_345)))
        .unwrap();
    let spend_hex: String = serialize(&spend)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let sent = one(&h, &["broadcast", &spend_hex]);
    assert_eq!(
        sent["txid"].as_str(),
        Some(spend.compute_txid().to_string().as_str())
    );

    let fee = one(&h, &["fee", "--blocks", "2"]);
    assert!(
        (fee["btc_per_kvb"].as_f64().unwrap() - electrum_spv_testkit::ESTIMATED_FEERATE).abs()
            < 1e-12
    );
    json_lines(&h, &["peers"]);
    // The spider prints a server list holding the server it reached.
    let mut c = cli(&h);
    c.arg("spider");
    let out = run(c);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        list["regtest"][0]["tcp"].as_u64(),
        Some(u64::from(h.addr().port()))
    );

    // Headers from a file, binary and hex, checked offline.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("headers.bin");
    let headers: Vec<u8> = h
        .bitcoind
        .chain()
        .blocks()
        .iter()
        .flat_map(|b| serialize(&b.header))
        .collect();
    std::fs::write(&bin, &headers).unwrap();
    let v = one(
        &h,
        &[
            "verify-headers",
            bin.to_str().unwrap(),
            "--start-height",
            "0",
        ],
    );
    assert_eq!(v["verified"].as_u64(), Some(u64::from(tip) + 1));
    let mut bad = headers.clone();
    bad[80 * 7 + 4] ^= 1; // block 7's previous-block hash
    std::fs::write(&bin, &bad).unwrap();
    let mut c = cli(&h);
    c.args([
        "verify-headers",
        bin.to_str().unwrap(),
        "--start-height",
        "0",
    ]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("height 7"), "{err}");
}

#[test]
fn errors_are_one_line_and_exit_1() {
    let h = harness();
    for args in [
        vec!["history", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"], // a mainnet address
        vec!["tx", "nothex"],
        vec!["header", "99999"],
        vec!["broadcast", "00"],
    ] {
        let mut c = cli(&h);
        c.args(&args);
        let out = run(c);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("electrum-spv: "), "{err}");
    }
    // Several addresses, the last one of another network: nothing is printed for the first.
    let good = address(&h, ALICE, ScriptKind::P2wpkh);
    for command in ["history", "utxos", "balance"] {
        let mut c = cli(&h);
        c.args([command, &good, "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"]);
        let out = run(c);
        assert_eq!(out.status.code(), Some(1), "{command}");
        assert!(out.stdout.is_empty(), "{command}: {:?}", out.stdout);
    }
    // No --server and nothing bundled for regtest: one line saying so.
    let out = run({
        let mut c = Command::new(env!("CARGO_BIN_EXE_electrum-spv"));
        c.args(["--network", "regtest", "tip"]);
        c
    });
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("none bundled for regtest"));
    // The wrong network: the genesis check refuses the server.
    let out = run({
        let mut c = Command::new(env!("CARGO_BIN_EXE_electrum-spv"));
        c.args([
            "--network",
            "testnet",
            "--server",
            &format!("tcp://{}", h.addr()),
            "tip",
        ]);
        c
    });
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("genesis"));
}

#[test]
fn subscribe_reports_a_payment_and_its_confirmation() {
    let h = harness();
    let bob = address(&h, BOB, ScriptKind::P2tr);
    let mut child = cli(&h)
        .args(["--json", "subscribe", &bob])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("subscribe");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || -> Value {
        let line = lines.next().expect("a line").expect("readable");
        serde_json::from_str(&line).unwrap()
    };
    assert_eq!(next()["event"], "subscribed");
    let script = h.bitcoind.chain().wallets()[BOB]
        .script(ScriptKind::P2tr)
        .to_owned();
    let txid = h
        .bitcoind
        .send(ALICE, &script, Amount::from_sat(31_000))
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let appeared = next();
    assert_eq!(
        appeared["appeared"],
        serde_json::json!([txid]),
        "{appeared}"
    );
    // Mining confirms everything of Bob's that was in the mempool, this payment included.
    let mut pending: Vec<String> = h
        .bitcoind
        .history(&script)
        .into_iter()
        .filter(|(_, height)| *height <= 0)
        .map(|(t, _)| t.to_string())
        .collect();
    assert!(pending.contains(&txid));
    h.bitcoind.mine(1);
    let confirmed = next();
    let mut got: Vec<String> = confirmed["confirmed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    got.sort();
    pending.sort();
    assert_eq!(got, pending, "{confirmed}");
    assert_eq!(confirmed["appeared"], serde_json::json!([]));
    assert!(Instant::now() < deadline);
    child.kill().unwrap();
    child.wait().unwrap();
}
