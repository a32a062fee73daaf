//! End-to-end: a real ElectrumX 2.0 indexing the kit's stand-in bitcoind must report exactly
//! the kit's own records. Each test starts its own harness; a failure to install or start
//! ElectrumX fails the test with the reason.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bitcoin::consensus::encode::{deserialize, serialize_hex};
use bitcoin::{Amount, Transaction};
use common::{
    Client, SYNC_TIMEOUT, all_scripts, harness, history_mismatches, kit_history, server_history,
    wait_histories_match,
};
use electrum_spv_testkit::chain::{ALICE, BOB, scripthash};
use electrum_spv_testkit::{ScriptKind, SendSpec, StandInBitcoind};
use serde_json::{Value, json};

fn hex_to_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn check_tip(c: &mut Client, b: &StandInBitcoind) {
    let tip = c.call("blockchain.headers.subscribe", json!([]));
    let (height, header) = b.tip();
    assert_eq!(tip["height"], json!(height), "tip height");
    assert_eq!(tip["hex"], json!(serialize_hex(&header)), "tip header");
}

/// get_balance, listunspent and the subscription status of every script equal the kit's.
fn check_balances_utxos_statuses(c: &mut Client, b: &StandInBitcoind) {
    let scripts = all_scripts(b);
    let mut reqs = Vec::new();
    for (_, s) in &scripts {
        let sh = scripthash(s);
        reqs.push(("blockchain.scripthash.get_balance", json!([sh])));
        reqs.push(("blockchain.scripthash.listunspent", json!([sh])));
        reqs.push(("blockchain.scripthash.subscribe", json!([sh])));
    }
    let results = c.call_many(&reqs);
    for ((label, s), r) in scripts.iter().zip(results.chunks(3)) {
        let bal = b.balance(s);
        assert_eq!(
            r[0],
            json!({"confirmed": bal.confirmed, "unconfirmed": bal.unconfirmed}),
            "{label}: balance"
        );
        let kit_utxos = b.listunspent(s);
        let got: Vec<(String, u64, u64, u64)> = r[1]
            .as_array()
            .expect("listunspent list")
            .iter()
            .map(|u| {
                (
                    u["tx_hash"].as_str().expect("tx_hash").to_owned(),
                    u["tx_pos"].as_u64().expect("tx_pos"),
                    u["height"].as_u64().expect("height"),
                    u["value"].as_u64().expect("value"),
                )
            })
            .collect();
        let want: Vec<(String, u64, u64, u64)> = kit_utxos
            .iter()
            .map(|u| {
                (
                    u.txid.to_string(),
                    u64::from(u.vout),
                    u64::from(u.height),
                    u.value,
                )
            })
            .collect();
        // Confirmed part in order; the mempool part (height 0) is unordered in ElectrumX.
        let split = |v: &[(String, u64, u64, u64)]| {
            let conf: Vec<_> = v.iter().filter(|u| u.2 > 0).cloned().collect();
            let mem: BTreeSet<_> = v.iter().filter(|u| u.2 == 0).cloned().collect();
            (conf, mem)
        };
        assert_eq!(split(&got), split(&want), "{label}: listunspent");
        assert_eq!(r[2], json!(b.status(s)), "{label}: status");
    }
}

#[test]
fn records_match_at_1_4_1_6_and_1_7() {
    let h = harness();
    let b = &h.bitcoind;

    // The default chain is meant to exercise everything: check the kit's own records first.
    let scripts = all_scripts(b);
    for (label, s) in &scripts {
        assert!(
            !kit_history(b, s).is_empty(),
            "{label} has no history in the default chain"
        );
    }
    let all: Vec<(String, i64)> = scripts
        .iter()
        .flat_map(|(_, s)| kit_history(b, s))
        .collect();
    assert!(all.iter().any(|(_, h)| *h == 0), "no height-0 mempool tx");
    assert!(all.iter().any(|(_, h)| *h == -1), "no height -1 mempool tx");

    let mut c = Client::connect(h.addr(), "1.4", "1.6");
    assert_eq!(c.version, "1.6");
    check_tip(&mut c, b);
    let bad = history_mismatches(&mut c, b);
    assert!(bad.is_empty(), "history mismatches:\n{}", bad.join("\n"));
    check_balances_utxos_statuses(&mut c, b);

    // blockchain.transaction.get returns the raw tx whose txid matches, for every tx.
    let txids: BTreeSet<String> = all.iter().map(|(t, _)| t.clone()).collect();
    let reqs: Vec<(&str, Value)> = txids
        .iter()
        .map(|t| ("blockchain.transaction.get", json!([t])))
        .collect();
    for (t, raw) in txids.iter().zip(c.call_many(&reqs)) {
        let tx: Transaction = deserialize(&hex_to_bytes(raw.as_str().expect("hex"))).expect("tx");
        assert_eq!(&tx.compute_txid().to_string(), t, "transaction.get txid");
        let (kit_tx, _) = b
            .chain()
            .find_tx(&tx.compute_txid())
            .map(|(t, l)| (t.clone(), l))
            .expect("kit tx");
        assert_eq!(tx, kit_tx, "transaction.get bytes");
    }

    // Protocol 1.4.
    let mut c4 = Client::connect(h.addr(), "1.4", "1.4");
    assert_eq!(c4.version, "1.4");
    check_tip(&mut c4, b);
    let bad = history_mismatches(&mut c4, b);
    assert!(
        bad.is_empty(),
        "history mismatches at 1.4:\n{}",
        bad.join("\n")
    );

    // Protocol 1.7: blockchain.scriptpubkey.* takes the script itself.
    let mut c7 = Client::connect(h.addr(), "1.4", "1.7");
    assert_eq!(c7.version, "1.7");
    let mut reqs = Vec::new();
    for (_, s) in &scripts {
        let spk = s.to_hex_string();
        reqs.push(("blockchain.scriptpubkey.get_history", json!([spk])));
        reqs.push(("blockchain.scriptpubkey.subscribe", json!([spk])));
    }
    let results = c7.call_many(&reqs);
    for ((label, s), r) in scripts.iter().zip(results.chunks(2)) {
        let hist = r[0]
            .get("history")
            .unwrap_or_else(|| panic!("{label}: no history key in {}", r[0]));
        assert_eq!(
            server_history(hist),
            kit_history(b, s),
            "{label}: 1.7 history"
        );
        assert_eq!(r[1], json!(b.status(s)), "{label}: 1.7 status");
    }

    // 1.7 blockchain.outpoint.get_status (getrawtransaction verbose + gettxspendingprevout
    // at the stand-in, plus ElectrumX's own mempool) for every output of every tx touching
    // the wallets: confirmed/mempool funders, unspent, spent in a block or in the mempool.
    let mut outpoints = Vec::new();
    for t in &txids {
        let txid: bitcoin::Txid = t.parse().expect("txid");
        let chain = b.chain();
        let (tx, _) = chain.find_tx(&txid).expect("kit tx");
        for (n, out) in tx.output.iter().enumerate() {
            outpoints.push((
                bitcoin::OutPoint::new(txid, n as u32),
                out.script_pubkey.clone(),
            ));
        }
    }
    let reqs: Vec<(&str, Value)> = outpoints
        .iter()
        .map(|(op, spk)| {
            let params = json!([op.txid.to_string(), op.vout, spk.to_hex_string()]);
            ("blockchain.outpoint.get_status", params)
        })
        .collect();
    let mut kinds = BTreeSet::new();
    for ((op, _), got) in outpoints.iter().zip(c7.call_many(&reqs)) {
        let st = b.chain().outpoint_status(op);
        let mut want = serde_json::Map::new();
        if let Some(fh) = st.funder_height {
            want.insert("funder_height".into(), json!(fh));
        }
        if let Some((sp, sh)) = st.spender {
            want.insert("spender_txhash".into(), json!(sp.to_string()));
            want.insert("spender_height".into(), json!(sh));
        }
        kinds.insert((
            st.funder_height.map(|h| h.min(1)),
            st.spender.map(|s| s.1.min(1)),
        ));
        assert_eq!(got, Value::Object(want), "outpoint.get_status {op}");
    }
    // Confirmed unspent, confirmed spent in a block / at heights 0 and -1, mempool funders.
    for k in [
        (Some(1), None),
        (Some(1), Some(1)),
        (Some(1), Some(0)),
        (Some(0), Some(-1)),
        (Some(0), None),
    ] {
        assert!(
            kinds.contains(&k),
            "outpoint case {k:?} not covered: {kinds:?}"
        );
    }

    // Fees come from the stand-in's estimatesmartfee / getnetworkinfo / getmempoolinfo.
    let fee = c.call("blockchain.estimatefee", json!([2]));
    // Compared as numbers: with serde_json's `arbitrary_precision` (enabled by another crate of
    // the workspace) `2e-05` and `0.00002` are different `Value`s.
    assert_eq!(fee.as_f64(), Some(electrum_spv_testkit::ESTIMATED_FEERATE));
    let info = c.call("mempool.get_info", json!([]));
    assert_eq!(
        info["minrelaytxfee"].as_f64(),
        Some(electrum_spv_testkit::RELAY_FEE)
    );
    let relay = c4.call("blockchain.relayfee", json!([]));
    assert_eq!(relay.as_f64(), Some(electrum_spv_testkit::RELAY_FEE));
    eprintln!("stand-in RPC calls: {:?}", b.calls());
}

#[test]
fn notifications_after_mine_send_and_reorg() {
    let h = harness();
    let b = &h.bitcoind;
    let mut c = Client::connect(h.addr(), "1.4", "1.6");
    check_tip(&mut c, b);
    let watched = b.chain().wallets()[BOB].script(ScriptKind::P2tr).to_owned();
    let sh = scripthash(&watched);
    let status = c.call("blockchain.scripthash.subscribe", json!([sh]));
    assert_eq!(status, json!(b.status(&watched)));

    // mine(1): a headers notification with the new tip.
    let mempool_before: Vec<_> = b
        .chain()
        .mempool()
        .iter()
        .map(|t| t.compute_txid())
        .collect();
    assert!(!mempool_before.is_empty());
    b.mine(1);
    let (height, header) = b.tip();
    let n = c
        .wait_notification("blockchain.headers.subscribe", SYNC_TIMEOUT, |p| {
            p[0]["height"] == json!(height)
        })
        .unwrap_or_else(|| {
            panic!(
                "no headers notification for height {height}\n{}",
                h.electrumx.log_tail(2000)
            )
        });
    assert_eq!(n[0]["hex"], json!(serialize_hex(&header)));
    wait_histories_match(&mut c, &h);
    check_balances_utxos_statuses(&mut c, b);

    // send: a scripthash notification whose status is the kit's.
    let txid = b
        .send(ALICE, &watched, Amount::from_sat(12_345_678))
        .expect("send");
    assert!(
        b.history(&watched)
            .iter()
            .any(|(t, h)| *t == txid && *h == 0)
    );
    let want = json!(b.status(&watched));
    c.wait_notification("blockchain.scripthash.subscribe", SYNC_TIMEOUT, |p| {
        p[0] == json!(sh) && p[1] == want
    })
    .unwrap_or_else(|| {
        panic!(
            "no status notification {want} for {sh}\n{}",
            h.electrumx.log_tail(2000)
        )
    });
    wait_histories_match(&mut c, &h);

    // Mine it, then reorg(2): the mined txs go back to the mempool on a longer branch.
    b.mine(1);
    let (height, _) = b.tip();
    c.wait_notification("blockchain.headers.subscribe", SYNC_TIMEOUT, |p| {
        p[0]["height"] == json!(height)
    })
    .expect("headers notification before reorg");
    wait_histories_match(&mut c, &h);
    let old_tip = b.tip().1.block_hash();
    b.reorg(2);
    let (height, header) = b.tip();
    assert_ne!(header.block_hash(), old_tip);
    assert!(
        b.history(&watched)
            .iter()
            .any(|(t, h)| *t == txid && *h <= 0),
        "sent tx back in the mempool"
    );
    let n = c
        .wait_notification("blockchain.headers.subscribe", SYNC_TIMEOUT, |p| {
            p[0]["height"] == json!(height)
        })
        .unwrap_or_else(|| {
            panic!(
                "no headers notification after reorg\n{}",
                h.electrumx.log_tail(3000)
            )
        });
    assert_eq!(n[0]["hex"], json!(serialize_hex(&header)));
    check_tip(&mut c, b);
    let log = h.electrumx.log_tail(1_000_000);
    assert!(
        log.contains("chain reorg detected") && log.contains("replacing 2 blocks"),
        "ElectrumX did not log a 2-block reorg:\n{}",
        h.electrumx.log_tail(3000)
    );
    wait_histories_match(&mut c, &h);
    check_balances_utxos_statuses(&mut c, b);
    let want = json!(b.status(&watched));
    c.wait_notification(
        "blockchain.scripthash.subscribe",
        Duration::from_secs(5),
        |p| p[1] == want,
    )
    .expect("status notification after reorg");
}

#[test]
fn broadcast_reaches_the_kit_mempool() {
    let h = harness();
    let b = &h.bitcoind;
    let mut c = Client::connect(h.addr(), "1.4", "1.6");
    let to = b.chain().wallets()[ALICE]
        .script(ScriptKind::P2tr)
        .to_owned();
    let tx = b
        .build_tx(SendSpec::new(BOB, &to, Amount::from_sat(5_000_000)).from_kind(ScriptKind::P2pkh))
        .expect("build");
    let txid = tx.compute_txid();
    assert!(b.chain().find_tx(&txid).is_none());

    // A tampered copy (one output changed) must be refused: its signatures no longer verify.
    let mut bad = tx.clone();
    bad.output[0].value = Amount::from_sat(5_000_001);
    let id = c.send(
        "blockchain.transaction.broadcast",
        json!([serialize_hex(&bad)]),
    );
    let err = c.wait(id).expect_err("tampered tx accepted");
    assert!(err.to_string().contains("verify"), "unexpected error {err}");

    let got = c.call(
        "blockchain.transaction.broadcast",
        json!([serialize_hex(&tx)]),
    );
    assert_eq!(got, json!(txid.to_string()));
    assert!(b.chain().mempool().iter().any(|t| t.compute_txid() == txid));
    assert!(b.history(&to).iter().any(|(t, h)| *t == txid && *h == 0));
    wait_histories_match(&mut c, &h);
    let raw = c.call("blockchain.transaction.get", json!([txid.to_string()]));
    assert_eq!(raw, json!(serialize_hex(&tx)));
}
