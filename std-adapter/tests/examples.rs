//! The adapter's examples (`examples/watch.rs`, `examples/spider.rs`) run against the test
//! kit's real ElectrumX. `cargo test` builds examples before it runs tests; they are found
//! next to this test's own binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use bitcoin::Amount;
use electrum_spv_testkit::chain::{ALICE, BOB};
use electrum_spv_testkit::{Harness, ScriptKind, example_binary};

#[test]
fn spider_lists_the_server_it_reached() {
    let h = Harness::start().expect("kit");
    let out = Command::new(example_binary("spider"))
        .args(["--network", "regtest", &format!("tcp://{}", h.addr())])
        .output()
        .expect("spider runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON list");
    let regtest = list["regtest"].as_array().expect("regtest servers");
    assert_eq!(regtest.len(), 1, "{list}");
    assert_eq!(regtest[0]["host"], "127.0.0.1");
    assert_eq!(regtest[0]["tcp"], h.addr().port());
}

#[test]
fn watch_reports_a_payment() {
    let h = Harness::start().expect("kit");
    let address = h.bitcoind.chain().wallets()[BOB]
        .address(ScriptKind::P2pkh)
        .to_string();
    let mut child = Command::new(example_binary("watch"))
        .args([
            "--network",
            "regtest",
            "--server",
            &format!("tcp://{}", h.addr()),
            &address,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("watch runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").unwrap();
    assert!(first.starts_with(&format!("{address}: ")), "{first}");
    let script = h.bitcoind.chain().wallets()[BOB]
        .script(ScriptKind::P2pkh)
        .to_owned();
    let txid = h
        .bitcoind
        .send(ALICE, &script, Amount::from_sat(21_000))
        .unwrap();
    let line = lines.next().expect("a change").unwrap();
    assert_eq!(line, format!("{address}: {txid} appeared"));
    child.kill().unwrap();
    child.wait().unwrap();
}
