//! `cargo run -p electrum-spv-core --example verified_sync` against the real ElectrumX: one
//! verified JSON line per script, equal to the kit's own records, in chain order.

use std::collections::BTreeSet;
use std::process::Command;

use electrum_spv_testkit::Harness;
use electrum_spv_testkit::chain::scripthash;

#[test]
fn verified_sync_prints_the_kit_records() {
    let h = Harness::start().unwrap_or_else(|e| panic!("cannot start ElectrumX: {e}"));
    let scripts: Vec<bitcoin::ScriptBuf> = h.bitcoind.chain().wallets()[..2]
        .iter()
        .flat_map(|w| w.scripts())
        .collect();
    let hashes: Vec<String> = scripts.iter().map(|s| scripthash(s)).collect();
    let out = Command::new(env!("CARGO"))
        .args([
            "run",
            "-q",
            "-p",
            "electrum-spv-core",
            "--example",
            "verified_sync",
            "--",
            "--server",
        ])
        .arg(h.addr().to_string())
        .args(["--network", "regtest"])
        .args(&hashes)
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), scripts.len());
    let chain = h.bitcoind.chain();
    let tip = chain.height();
    for ((line, script), hash) in lines.iter().zip(&scripts).zip(&hashes) {
        assert_eq!(line["scripthash"], serde_json::json!(hash));
        assert_eq!(line["status"], serde_json::json!(chain.status(script)));
        assert_eq!(line["tip"]["height"], serde_json::json!(tip));
        assert_eq!(
            line["tip"]["hash"],
            serde_json::json!(chain.tip().block_hash().to_string())
        );
        let got: Vec<(String, i64, Option<String>)> = line["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["tx_hash"].as_str().unwrap().to_owned(),
                    i["height"].as_i64().unwrap(),
                    i["block_hash"].as_str().map(str::to_owned),
                )
            })
            .collect();
        let want: Vec<(String, i64, Option<String>)> = chain
            .history(script)
            .into_iter()
            .map(|(t, hgt)| {
                let block =
                    (hgt > 0).then(|| chain.blocks()[hgt as usize].block_hash().to_string());
                (t.to_string(), hgt, block)
            })
            .collect();
        // Confirmed entries in chain order (height, then position in the block: the kit lists
        // them as mined); the mempool after them, compared as a set.
        let split = |rows: Vec<(String, i64, Option<String>)>| {
            let (confirmed, mempool): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.1 > 0);
            (confirmed, mempool.into_iter().collect::<BTreeSet<_>>())
        };
        let (got_confirmed, got_mempool) = split(got.clone());
        assert!(
            got.iter().skip(got_confirmed.len()).all(|r| r.1 <= 0),
            "mempool last: {got:?}"
        );
        assert_eq!(
            (got_confirmed, got_mempool),
            split(want),
            "history of {hash}"
        );
    }
}
