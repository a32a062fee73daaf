//! The interop matrix's Rust rows (issue 12): the same checks, through the Rust API, the CLI
//! and core's tracker, against each server implementation the test kit installs
//! (`Implementation::all`: ElectrumX releases and electrs), each over its own stand-in
//! bitcoind and the kit's funded chain; and the mixed pool of three. One test per
//! implementation, so `scripts/interop.sh` can run them side by side and filter by name (it
//! runs the Python rows, `bindings/python/interop_matrix.py`, after them).
//!
//! Each check prints one line, `interop: <implementation> <api|cli|core> <check> ok
//! (<detail>)` or `... FAILED (<reason>)`, and each row its line of README's table
//! (`interop-table: ...`); a test fails if any of its checks failed, or if its server cannot
//! be installed or started (never skipped). Not run by `cargo test --workspace`
//! (`test = false`): `scripts/interop.sh` runs it.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use bitcoin::consensus::encode::serialize;
use bitcoin::{Amount, ScriptBuf};
use common::runtime;
use electrum_spv::core::chain::REGTEST;
use electrum_spv::core::hash::Txid;
use electrum_spv::core::history::HistoryFault;
use electrum_spv::core::rpc::{ProtocolVersion, VersionRange};
use electrum_spv::core::script::StatusHasher;
use electrum_spv::core::session::{Config as SessionConfig, FeeMode, Request};
use electrum_spv::core::sync::headers::Pacing;
use electrum_spv::core::sync::tracker::{ScriptRef as CoreScriptRef, TrackerEvent};
use electrum_spv::verified::{ScriptRef, VerifiedHistory, verified_histories, verified_utxos};
use electrum_spv::watch::{Changes, WatchEvent, Watcher};
use electrum_spv::{Client, ClientConfig, HeaderChain, Network, Notice};
use electrum_spv::{Fault, Pool, PoolConfig};
use electrum_spv_testkit::chain::{ALICE, BOB};
use electrum_spv_testkit::driver::Driver;
use electrum_spv_testkit::liar::{Attack, LyingProxy, Times};
use electrum_spv_testkit::tracker_run::{Tracker, run_to_sync, verified_chain};
use electrum_spv_testkit::{
    Chain, ESTIMATED_FEERATE, Implementation, RELAY_FEE, ReorgTxs, ScriptKind, SendSpec, Server,
    ServerHarness as Harness, StandInBitcoind,
};
use serde_json::Value;
use tokio_stream::StreamExt;

const T: Duration = Duration::from_secs(30);

/// The checks' results for one server: counts, and a line printed per check.
struct Report {
    server: String,
    failed: Vec<String>,
    passed: usize,
    /// The checks passed, for the compatibility table.
    passed_names: Vec<String>,
    /// The protocol version negotiated, for the compatibility table.
    negotiated: String,
    /// What the server does not offer (methods, parameters), for the compatibility table.
    unavailable: Vec<String>,
}

impl Report {
    fn new(server: String) -> Report {
        Report {
            server,
            failed: Vec::new(),
            passed: 0,
            passed_names: Vec::new(),
            negotiated: String::new(),
            unavailable: Vec::new(),
        }
    }

    /// Runs `check` (a panic or an `Err` is a failure) and prints its line.
    fn check(&mut self, name: &str, check: impl FnOnce() -> Result<String, String>) {
        let started = Instant::now();
        let result = match catch_unwind(AssertUnwindSafe(check)) {
            Ok(r) => r,
            Err(p) => Err(p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panicked".to_owned())),
        };
        let secs = started.elapsed().as_secs_f64();
        match result {
            Ok(detail) => {
                self.passed += 1;
                self.passed_names.push(name.to_owned());
                println!("interop: {} {name} ok ({detail}) [{secs:.1}s]", self.server);
            }
            Err(why) => {
                let why = why.replace('\n', " | ");
                println!("interop: {} {name} FAILED ({why})", self.server);
                self.failed.push(name.to_owned());
            }
        }
    }

    fn finish(self) {
        // What was verified, by every interface that ran it (API, CLI, Python).
        let mut verified: Vec<&str> = Vec::new();
        for name in &self.passed_names {
            let what = ["api ", "cli ", "python "]
                .iter()
                .find_map(|p| name.strip_prefix(p))
                .unwrap_or(name);
            if what != "optional methods" && !verified.contains(&what) {
                verified.push(what);
            }
        }
        // One row of README's compatibility table (`scripts/interop.sh` collects them).
        println!(
            "interop-table: | {} | {} | {} | {} |",
            self.server.replace('-', " "),
            self.negotiated,
            if self.failed.is_empty() {
                verified.join(", ")
            } else {
                format!("FAILED: {}", self.failed.join(", "))
            },
            if self.unavailable.is_empty() {
                "nothing".to_owned()
            } else {
                self.unavailable.join(", ")
            }
        );
        assert!(
            self.failed.is_empty(),
            "{}: {} passed, failed: {}",
            self.server,
            self.passed,
            self.failed.join(", ")
        );
    }
}

fn core_txid(t: bitcoin::Txid) -> Txid {
    Txid::from_byte_array(bitcoin::hashes::Hash::to_byte_array(t))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every script of every kit wallet, with a label.
fn wallet_scripts(h: &Harness) -> Vec<(String, usize, ScriptKind, ScriptBuf)> {
    let chain = h.bitcoind.chain();
    let mut out = Vec::new();
    for (i, w) in chain.wallets().iter().enumerate() {
        for kind in ScriptKind::ALL {
            out.push((
                format!("wallet {i} {kind:?}"),
                i,
                kind,
                w.script(kind).to_owned(),
            ));
        }
    }
    out
}

fn config() -> ClientConfig {
    ClientConfig {
        versions: VersionRange::WITH_1_7,
        ..ClientConfig::new(Network::Regtest)
    }
}

fn cli(h: &Harness) -> Command {
    let mut c = common::cli(h.addr());
    c.args(["--protocol-1-7", "--json"]);
    c
}

/// Runs the CLI, one JSON value per stdout line.
fn cli_lines(h: &Harness, args: &[&str]) -> Result<Vec<Value>, String> {
    let out = cli(h)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run electrum-spv: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "electrum-spv {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{l}: {e}")))
        .collect()
}

fn cli_one(h: &Harness, args: &[&str]) -> Result<Value, String> {
    let mut v = cli_lines(h, args)?;
    if v.len() != 1 {
        return Err(format!("{args:?}: expected one line, got {v:?}"));
    }
    Ok(v.remove(0))
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

/// The kit's history of `script` as (txid, height), sorted (mempool order differs between
/// releases: INTEROP.md #16).
fn kit_history(h: &Harness, script: &ScriptBuf) -> BTreeSet<(Txid, i64)> {
    h.bitcoind
        .history(script)
        .into_iter()
        .map(|(t, hgt)| (core_txid(t), hgt))
        .collect()
}

fn run_matrix_row(implementation: Implementation, expected: ProtocolVersion) {
    let started = Instant::now();
    let name = implementation.name();
    let h = Harness::start(&implementation)
        .unwrap_or_else(|e| panic!("cannot install or start {name}: {e}"));
    println!(
        "interop: {name} started in {:.1}s (tip {})",
        started.elapsed().as_secs_f64(),
        h.bitcoind.tip().0
    );
    let mut r = Report::new(name.clone());
    let rt = runtime();
    let client = rt.block_on(Client::connect(&common::tcp(h.addr()), &config()));
    let client = match client {
        Ok(c) => Some(c),
        Err(e) => {
            r.check("api negotiate", || Err(format!("connect: {e}")));
            None
        }
    };

    if let Some(c) = &client {
        r.negotiated = c.protocol_version().to_string();
        r.check("api negotiate", || {
            let v = c.protocol_version();
            ensure(v == expected, || {
                format!("negotiated {v}, expected {expected}")
            })?;
            Ok(v.to_string())
        });
        r.check("api headers", || {
            let mut chain =
                HeaderChain::from_genesis(Network::Regtest).with_pacing(Pacing::UNLIMITED);
            let tip = rt
                .block_on(chain.sync(c, |_, _| {}))
                .map_err(|e| format!("sync: {e}"))?;
            let (kit_tip, kit_header) = h.bitcoind.tip();
            ensure(tip == kit_tip, || {
                format!("synced to {tip}, kit at {kit_tip}")
            })?;
            for (height, block) in h.bitcoind.chain().blocks().iter().enumerate() {
                let got = chain
                    .header(height as u32)
                    .map(|hd| hd.block_hash().to_string());
                ensure(got == Some(block.block_hash().to_string()), || {
                    format!("header {height}: {got:?}")
                })?;
            }
            let _ = kit_header;
            Ok(format!("{} headers from genesis verified", tip + 1))
        });
        r.check("api wallets", || api_wallets(&rt, &h, c));
    }

    r.check("cli negotiate", || {
        let t = cli_one(&h, &["tip"])?;
        let (tip, header) = h.bitcoind.tip();
        ensure(
            t["height"].as_u64() == Some(u64::from(tip))
                && t["hash"].as_str() == Some(header.block_hash().to_string().as_str()),
            || format!("tip {t}"),
        )?;
        Ok("connected, genesis checked, tip verified; the CLI does not print the version".into())
    });
    r.check("cli headers", || {
        let v = cli_one(&h, &["headers"])?;
        let tip = h.bitcoind.tip().0;
        ensure(v["verified"].as_u64() == Some(u64::from(tip) + 1), || {
            format!("{v}")
        })?;
        Ok(format!("{} headers from genesis verified", tip + 1))
    });
    r.check("cli wallets", || cli_wallets(&h));

    if let Some(c) = &client {
        r.check("api broadcast", || {
            let to = h.bitcoind.chain().wallets()[BOB]
                .script(ScriptKind::P2tr)
                .to_owned();
            let tx = h
                .bitcoind
                .build_tx(SendSpec::new(ALICE, &to, Amount::from_sat(10_001)))
                .map_err(|e| format!("build: {e}"))?;
            let sent = rt
                .block_on(c.transaction_broadcast(&serialize(&tx)))
                .map_err(|e| format!("broadcast: {e}"))?;
            ensure(sent == core_txid(tx.compute_txid()), || {
                format!("server answered {sent}")
            })?;
            ensure(
                h.bitcoind
                    .chain()
                    .mempool()
                    .iter()
                    .any(|t| t.compute_txid() == tx.compute_txid()),
                || "not in the kit's mempool".into(),
            )?;
            Ok(format!("txid {sent}"))
        });
        r.check("api fee", || {
            let fee = rt
                .block_on(c.estimate_fee(2))
                .map_err(|e| format!("estimatefee: {e}"))?;
            let relay = rt
                .block_on(c.relay_fee())
                .map_err(|e| format!("relay fee: {e}"))?;
            let fee = fee.ok_or("no estimate")?;
            ensure((fee - ESTIMATED_FEERATE).abs() < 1e-12, || format!("{fee}"))?;
            ensure((relay - RELAY_FEE).abs() < 1e-12, || format!("{relay}"))?;
            Ok(format!("estimatefee(2) {fee}, relay {relay}"))
        });
    }
    if let Some(c) = &client {
        let mut unavailable = Vec::new();
        r.check("api optional methods", || {
            api_optional_methods(&rt, &h, c, &mut unavailable)
        });
        r.unavailable.extend(unavailable);
    }
    r.check("cli broadcast", || {
        let to = h.bitcoind.chain().wallets()[ALICE]
            .script(ScriptKind::P2wpkh)
            .to_owned();
        let tx = h
            .bitcoind
            .build_tx(
                SendSpec::new(BOB, &to, Amount::from_sat(12_345)).from_kind(ScriptKind::P2pkh),
            )
            .map_err(|e| format!("build: {e}"))?;
        let v = cli_one(&h, &["broadcast", &hex(&serialize(&tx))])?;
        let txid = tx.compute_txid().to_string();
        ensure(v["txid"].as_str() == Some(txid.as_str()), || format!("{v}"))?;
        Ok(format!("txid {txid}"))
    });
    r.check("cli fee", || {
        let v = cli_one(&h, &["fee", "--blocks", "2"])?;
        let fee = v["btc_per_kvb"].as_f64().ok_or_else(|| format!("{v}"))?;
        ensure((fee - ESTIMATED_FEERATE).abs() < 1e-12, || format!("{v}"))?;
        Ok(format!("fee --blocks 2: {fee}; no relay fee command"))
    });
    if let Some(c) = &client {
        r.check("api subscription", || api_subscription(&rt, &h, c));
    }
    r.check("cli subscription", || cli_subscription(&h));
    r.check("api reorg", || api_reorg(&rt, &h));
    r.check("first reply", || first_reply(&h));
    let mut header_proofs = None;
    r.check("core header proofs", || {
        core_header_proofs(&h, &mut header_proofs)
    });
    if header_proofs == Some(HeaderProofs::ChainOnly) {
        r.unavailable.push("cp_height proofs".to_owned());
    }
    println!(
        "interop: {name} done in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    r.finish();
}

/// Verified history (every confirmed entry proven into a verified header), status, verified
/// utxos and balance of every kit wallet script, against the kit's records.
fn api_wallets(rt: &tokio::runtime::Runtime, h: &Harness, c: &Client) -> Result<String, String> {
    let scripts = wallet_scripts(h);
    let mut chain = HeaderChain::from_genesis(Network::Regtest).with_pacing(Pacing::UNLIMITED);
    rt.block_on(chain.sync(c, |_, _| {}))
        .map_err(|e| format!("sync: {e}"))?;
    let refs: Vec<ScriptRef<'_>> = scripts
        .iter()
        .map(|(_, _, _, s)| ScriptRef::Script(s.as_bytes()))
        .collect();
    let histories = rt
        .block_on(verified_histories(c, &mut chain, &refs))
        .map_err(|e| format!("verified histories: {e}"))?;
    let blocks: Vec<String> = h
        .bitcoind
        .chain()
        .blocks()
        .iter()
        .map(|b| b.block_hash().to_string())
        .collect();
    let (mut entries, mut proven, mut utxo_count, mut unordered) = (0, 0, 0, 0);
    for ((label, _, _, script), hist) in scripts.iter().zip(&histories) {
        let got: BTreeSet<(Txid, i64)> = hist
            .txs
            .iter()
            .map(|t| (t.txid, t.height.to_i64()))
            .collect();
        ensure(got == kit_history(h, script), || {
            format!("{label}: history {got:?}")
        })?;
        // Below 1.6 ElectrumX lists the mempool in set order (INTEROP.md #16): the status
        // (already recomputed in the server's order by the verification) can then differ
        // from the kit's, which uses the canonical order.
        let mempool = hist.txs.iter().filter(|t| t.height.to_i64() <= 0).count();
        if c.protocol_version() >= ProtocolVersion::V1_6 || mempool <= 1 {
            ensure(
                hist.status.map(|s| s.to_string()) == h.bitcoind.status(script),
                || format!("{label}: status"),
            )?;
        } else {
            unordered += 1;
        }
        for t in &hist.txs {
            entries += 1;
            let height = t.height.to_i64();
            if height > 0 {
                let want = &blocks[height as usize];
                ensure(
                    t.block_hash.map(|b| b.to_string()).as_ref() == Some(want),
                    || format!("{label}: {} proven into {:?}", t.txid, t.block_hash),
                )?;
                proven += 1;
            }
        }
        let utxos = rt
            .block_on(verified_utxos(c, &mut chain, script.as_bytes()))
            .map_err(|e| format!("{label}: verified utxos: {e}"))?;
        let got: BTreeSet<(Txid, u32, u64)> =
            utxos.iter().map(|u| (u.txid, u.vout, u.value)).collect();
        let kit: BTreeSet<(Txid, u32, u64)> = h
            .bitcoind
            .listunspent(script)
            .iter()
            .map(|u| (core_txid(u.txid), u.vout, u.value))
            .collect();
        ensure(got == kit, || {
            format!("{label}: utxos {got:?}, kit {kit:?}")
        })?;
        utxo_count += utxos.len();
        let balance = rt
            .block_on(c.script_get_balance(script.as_bytes()))
            .map_err(|e| format!("{label}: balance: {e}"))?;
        let kit_balance = h.bitcoind.balance(script);
        ensure(
            (balance.confirmed as i64, balance.unconfirmed)
                == (kit_balance.confirmed as i64, kit_balance.unconfirmed),
            || format!("{label}: balance {balance:?}"),
        )?;
    }
    Ok(format!(
        "{} scripts: {entries} history entries ({proven} confirmed, each proven), {utxo_count} utxos, balances equal; statuses equal the kit's but {unordered} (mempool in set order)",
        scripts.len()
    ))
}

/// Every optional method and parameter asked once: offered, not offered (the session knows
/// it is not in the negotiated version, or the server answers -32601), or refused with an
/// error code. What is missing goes to `unavailable`; anything else than these three outcomes
/// (a timeout, a malformed answer, a dropped connection) fails the check.
fn api_optional_methods(
    rt: &tokio::runtime::Runtime,
    h: &Harness,
    c: &Client,
    unavailable: &mut Vec<String>,
) -> Result<String, String> {
    let alice: &'static [u8] = Box::leak(
        h.bitcoind.chain().wallets()[ALICE]
            .script(ScriptKind::P2wpkh)
            .to_bytes()
            .into_boxed_slice(),
    );
    let utxo = h
        .bitcoind
        .listunspent(&ScriptBuf::from_bytes(alice.to_vec()))
        .first()
        .map(|u| (core_txid(u.txid), u.vout))
        .ok_or("alice has no utxo")?;
    let unsent = h
        .bitcoind
        .build_tx(SendSpec::new(
            ALICE,
            &ScriptBuf::from_bytes(alice.to_vec()),
            Amount::from_sat(5_000),
        ))
        .map_err(|e| format!("build: {e}"))?;
    let raw: &'static [u8] = Box::leak(serialize(&unsent).into_boxed_slice());
    let package: &'static [&'static [u8]] = Box::leak(vec![raw].into_boxed_slice());
    let probes: Vec<(&str, Request<'static>)> = vec![
        ("server.features", Request::Features),
        ("server.banner", Request::Banner),
        ("server.donation_address", Request::DonationAddress),
        ("server.peers.subscribe", Request::PeersSubscribe),
        ("blockchain.relayfee", Request::RelayFee),
        (
            "estimatefee mode",
            Request::EstimateFee {
                blocks: 2,
                mode: Some(FeeMode::Economical),
            },
        ),
        ("get_mempool", Request::ScriptGetMempool(alice)),
        ("unsubscribe", Request::ScriptUnsubscribe(alice)),
        (
            "transaction.id_from_pos",
            Request::TransactionIdFromPos {
                height: 1,
                pos: 0,
                merkle: true,
            },
        ),
        ("mempool.get_fee_histogram", Request::FeeHistogram),
        ("mempool.get_info", Request::MempoolInfo),
        ("mempool.recent", Request::MempoolRecent),
        (
            "outpoint.get_status",
            Request::OutpointGetStatus {
                txid: utxo.0,
                vout: utxo.1,
                script_pubkey: alice,
            },
        ),
        (
            "transaction.testmempoolaccept",
            Request::TestMempoolAccept(package),
        ),
    ];
    let mut offered = Vec::new();
    for (name, request) in probes {
        match rt.block_on(c.raw_call(request)) {
            Ok(_) => offered.push(name),
            Err(electrum_spv::Error::NotAvailable(_)) => unavailable.push(name.to_owned()),
            Err(electrum_spv::Error::Server { code, .. }) => {
                unavailable.push(format!("{name} (refused, code {})", code.unwrap_or(0)))
            }
            Err(e) => return Err(format!("{name}: {e}")),
        }
    }
    Ok(format!(
        "offered: {}; not offered: {}",
        offered.join(", "),
        if unavailable.is_empty() {
            "none".to_owned()
        } else {
            unavailable.join(", ")
        }
    ))
}

/// The CLI's verified history, utxos and balance of every kit wallet address, each command
/// asked once for all of them (one connection and one header sync per command).
fn cli_wallets(h: &Harness) -> Result<String, String> {
    let scripts = wallet_scripts(h);
    let addresses: Vec<String> = scripts
        .iter()
        .map(|(_, wallet, kind, _)| {
            h.bitcoind.chain().wallets()[*wallet]
                .address(*kind)
                .to_string()
        })
        .collect();
    let with = |command: &'static str| -> Vec<&str> {
        std::iter::once(command)
            .chain(addresses.iter().map(String::as_str))
            .collect()
    };
    let histories = cli_lines(h, &with("history"))?;
    let utxo_lines = cli_lines(h, &with("utxos"))?;
    let balances = cli_lines(h, &with("balance"))?;
    ensure(
        histories.len() == addresses.len() && balances.len() == addresses.len(),
        || format!("{} histories, {} balances", histories.len(), balances.len()),
    )?;
    let (mut entries, mut utxo_count) = (0, 0);
    for (i, (label, _, _, script)) in scripts.iter().enumerate() {
        let addr = addresses[i].as_str();
        let v = &histories[i];
        ensure(v["address"] == addr, || format!("{label}: line {i} is {v}"))?;
        let got: BTreeSet<(Txid, i64)> = v["history"]
            .as_array()
            .ok_or_else(|| format!("{label}: {v}"))?
            .iter()
            .map(|e| {
                let t = e["tx_hash"].as_str().unwrap_or_default();
                (
                    Txid::from_display_hex(t.as_bytes()).expect("txid"),
                    e["height"].as_i64().unwrap_or(i64::MIN),
                )
            })
            .collect();
        ensure(got == kit_history(h, script), || {
            format!("{label}: history {v}")
        })?;
        entries += got.len();
        let got: BTreeSet<(String, u64, u64)> = utxo_lines
            .iter()
            .filter(|u| u["address"] == addr)
            .map(|u| {
                (
                    u["tx_hash"].as_str().unwrap_or_default().to_owned(),
                    u["tx_pos"].as_u64().unwrap_or(u64::MAX),
                    u["value"].as_u64().unwrap_or(u64::MAX),
                )
            })
            .collect();
        let kit: BTreeSet<(String, u64, u64)> = h
            .bitcoind
            .listunspent(script)
            .iter()
            .map(|u| (u.txid.to_string(), u64::from(u.vout), u.value))
            .collect();
        ensure(got == kit, || format!("{label}: utxos {got:?}"))?;
        utxo_count += got.len();
        // The CLI's balance is summed from the verified unspent outputs.
        let b = &balances[i];
        let total: u64 = kit.iter().map(|u| u.2).sum();
        ensure(
            b["address"] == addr
                && b["confirmed"]
                    .as_u64()
                    .zip(b["unconfirmed"].as_u64())
                    .map(|(c, u)| c + u)
                    == Some(total),
            || format!("{label}: balance {b}, kit utxos sum to {total}"),
        )?;
    }
    ensure(utxo_lines.len() == utxo_count, || {
        format!("{} utxo lines, {utxo_count} matched", utxo_lines.len())
    })?;
    Ok(format!(
        "{} addresses in one call per command: {entries} verified history entries, {utxo_count} verified utxos, balances equal",
        scripts.len()
    ))
}

/// A payment seen in the mempool, then its confirmation, by notifications.
fn api_subscription(
    rt: &tokio::runtime::Runtime,
    h: &Harness,
    c: &Client,
) -> Result<String, String> {
    rt.block_on(async {
        let mut notices = c.notifications();
        let bob = h.bitcoind.chain().wallets()[BOB]
            .script(ScriptKind::P2wpkh)
            .to_owned();
        let before = c
            .script_subscribe(bob.as_bytes())
            .await
            .map_err(|e| format!("subscribe: {e}"))?;
        let (tip, _) = c
            .block_headers_subscribe()
            .await
            .map_err(|e| format!("headers.subscribe: {e}"))?;
        let paid = core_txid(
            h.bitcoind
                .send(ALICE, &bob, Amount::from_sat(25_000))
                .map_err(|e| format!("payment: {e}"))?,
        );
        // Statuses are checked against the server's history recomputed (the kit's own status
        // assumes the canonical mempool order, which releases below 1.19 do not keep).
        let deadline = Instant::now() + T;
        let mut seen_in_mempool = false;
        let (mut saw_header, mut confirmed) = (false, false);
        while !(saw_header && confirmed) {
            let left = deadline.saturating_duration_since(Instant::now());
            let status = match tokio::time::timeout(left, notices.next()).await {
                Ok(Some(Ok(Notice::ScriptStatus { status, .. }))) => status,
                Ok(Some(Ok(Notice::Header { height, .. }))) => {
                    ensure(height == tip + 1, || format!("header {height}"))?;
                    saw_header = true;
                    continue;
                }
                Ok(Some(Ok(_))) => continue,
                other => {
                    return Err(format!(
                        "waiting (mempool seen: {seen_in_mempool}, header: {saw_header}): {other:?}"
                    ));
                }
            };
            ensure(status != before, || "status unchanged".into())?;
            let history = c
                .script_get_history(bob.as_bytes())
                .await
                .map_err(|e| format!("history: {e}"))?;
            let mut hasher = StatusHasher::new();
            for i in &history {
                hasher.push(&i.txid, i.height);
            }
            if hasher.finish() != status {
                continue; // a newer change is on its way
            }
            match history
                .iter()
                .find(|i| i.txid == paid)
                .map(|i| i.height.to_i64())
            {
                Some(hgt) if hgt <= 0 && !seen_in_mempool => {
                    seen_in_mempool = true;
                    h.bitcoind.mine(1);
                }
                Some(hgt) if hgt == i64::from(tip + 1) && seen_in_mempool => confirmed = true,
                _ => {}
            }
        }
        Ok("payment, then header and confirmation notified".to_owned())
    })
}

/// `electrum-spv subscribe`: the payment appears, then confirms.
fn cli_subscription(h: &Harness) -> Result<String, String> {
    let addr = h.bitcoind.chain().wallets()[BOB]
        .address(ScriptKind::P2tr)
        .to_string();
    let script = h.bitcoind.chain().wallets()[BOB]
        .script(ScriptKind::P2tr)
        .to_owned();
    let mut child = cli(h)
        .args(["subscribe", &addr])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("subscribe: {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || -> Result<Value, String> {
        let line = rx.recv_timeout(T).map_err(|e| format!("no line: {e}"))?;
        serde_json::from_str(&line).map_err(|e| format!("{line}: {e}"))
    };
    let result = (|| {
        let first = next()?;
        ensure(first["event"] == "subscribed", || format!("{first}"))?;
        let txid = h
            .bitcoind
            .send(ALICE, &script, Amount::from_sat(31_000))
            .map_err(|e| format!("payment: {e}"))?
            .to_string();
        let appeared = next()?;
        ensure(appeared["appeared"] == serde_json::json!([txid]), || {
            format!("{appeared}")
        })?;
        h.bitcoind.mine(1);
        let confirmed = next()?;
        let got: Vec<&str> = confirmed["confirmed"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        ensure(got.contains(&txid.as_str()), || format!("{confirmed}"))?;
        Ok("payment appeared, then confirmed".to_owned())
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// A payment seen and confirmed, then a 2-block reorg putting it back into the mempool, all
/// through the one watch loop apps use ([`Watcher`] over a pool of this server): the new tip is
/// the kit's, the payment is reported unconfirmed, and the verified history equals the kit's.
fn api_reorg(rt: &tokio::runtime::Runtime, h: &Harness) -> Result<String, String> {
    let script = h.bitcoind.chain().wallets()[ALICE]
        .script(ScriptKind::P2tr)
        .to_owned();
    rt.block_on(async {
        let pool = Pool::connect(&[common::tcp(h.addr())], PoolConfig::new(config()))
            .await
            .map_err(|e| format!("pool: {e}"))?;
        let pool = Arc::new(tokio::sync::Mutex::new(pool));
        let mut watcher = Watcher::start(pool.clone(), vec![script.to_bytes()])
            .await
            .map_err(|e| format!("watch: {e}"))?;
        let paid = core_txid(
            h.bitcoind
                .send(BOB, &script, Amount::from_sat(27_000))
                .map_err(|e| format!("payment: {e}"))?,
        );
        let mut next_change = async |what: &str| -> Result<(Changes, VerifiedHistory), String> {
            let deadline = Instant::now() + T;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, watcher.next()).await {
                    Ok(Some(WatchEvent::History {
                        changes,
                        history,
                        first: false,
                        ..
                    })) => return Ok((changes, history)),
                    Ok(Some(WatchEvent::Error(e))) => return Err(format!("{what}: {e}")),
                    Ok(Some(_)) => {}
                    other => return Err(format!("waiting for {what}: {other:?}")),
                }
            }
        };
        let (changes, _) = next_change("the payment").await?;
        ensure(changes.appeared == [paid], || {
            format!("payment: {changes:?}")
        })?;
        h.bitcoind.mine(1);
        let (changes, _) = next_change("its confirmation").await?;
        ensure(changes.confirmed == [paid], || {
            format!("confirmation: {changes:?}")
        })?;
        let fork = h.bitcoind.tip().0 - 1;
        h.bitcoind.reorg_with(2, ReorgTxs::ToMempool);
        let (changes, history) = next_change("the reorg").await?;
        ensure(changes.unconfirmed == [paid], || {
            format!("reorg: {changes:?}")
        })?;
        let ours: BTreeSet<(Txid, i64)> = history
            .txs
            .iter()
            .map(|t| (t.txid, t.height.to_i64()))
            .collect();
        ensure(ours == kit_history(h, &script), || {
            format!("after the reorg: {ours:?}")
        })?;
        let (kit_tip, kit_header) = h.bitcoind.tip();
        let kit_hash = kit_header.block_hash().to_string();
        // The tip may be reported before or after the history: wait for the kit's.
        let deadline = Instant::now() + T;
        loop {
            let tip = pool.lock().await.best_tip();
            if tip.map(|(height, hash)| (height, hash.to_string()))
                == Some((kit_tip, kit_hash.clone()))
            {
                break;
            }
            ensure(Instant::now() < deadline, || {
                format!("verified tip {tip:?}, kit at {kit_tip} {kit_hash}")
            })?;
            pool.lock()
                .await
                .refresh()
                .await
                .map_err(|e| format!("refresh: {e}"))?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let dropped = pool.lock().await.dropped().len();
        ensure(dropped == 0, || format!("{dropped} dropped"))?;
        Ok(format!(
            "payment appeared, confirmed, then unconfirmed by a reorg from height {fork}; \
             verified tip {kit_tip} is the kit's"
        ))
    })
}

/// The first reply of a connection, as the bytes arrive. ElectrumX from 1.18 pads every
/// reply to at least 1024 bytes from the first one; 1.18 also holds it up to a second (a
/// deviation: PROTOCOL.md §1.1 has small replies held only after a 1024-byte warm-up, as 1.20
/// and 2.0 do: they send the padded first reply at once). 1.16 and older, and electrs, never
/// pad. The pool's answer to the hold is to ping with the header sync's first request
/// (`join_member`). Padding is asserted for every row, the hold for 1.18 only (the others'
/// timing is reported, not asserted: a loaded machine may be slow to answer).
fn first_reply(h: &Harness) -> Result<String, String> {
    use std::io::Write;
    let (pads, holds) = match &h.implementation {
        Implementation::ElectrumX(v) => {
            let v = v.as_str();
            (["1.18.0", "1.20.0", "2.0.0"].contains(&v), v == "1.18.0")
        }
        Implementation::Electrs => (false, false),
    };
    let mut stream = std::net::TcpStream::connect(h.addr()).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(T))
        .map_err(|e| format!("{e}"))?;
    let started = Instant::now();
    stream
        .write_all(
            b"{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"server.version\",\"params\":[\"probe\",\"1.4\"]}\n",
        )
        .map_err(|e| format!("write: {e}"))?;
    let mut line = Vec::new();
    BufReader::new(&stream)
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("read: {e}"))?;
    let held = started.elapsed().as_secs_f64();
    let padded = line.len() >= 1024;
    ensure(line.starts_with(b"{") && padded == pads, || {
        format!("{} bytes, padded: {padded}, expected {pads}", line.len())
    })?;
    ensure(!holds || held >= 0.5, || {
        format!("answered after {held:.2} s: ElectrumX 1.18 holds its first reply ~1 s")
    })?;
    Ok(format!(
        "server.version answered in {} bytes after {held:.2} s{}{}",
        line.len(),
        if padded { ", padded" } else { "" },
        if holds {
            ", held from the first reply"
        } else {
            ""
        }
    ))
}

/// Where a server's headers are proven from, for the tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HeaderProofs {
    /// `cp_height` proofs against the root of our verified chain.
    CpHeight,
    /// The server refuses `cp_height` (electrs): headers from our verified chain.
    ChainOnly,
}

/// Core's tracker, the one definition of a verified history, over one wallet: with the root of
/// the headers verified from genesis as its checkpoint, every confirmed transaction's header is
/// proven by a `cp_height` proof where the server has them, and by the verified chain where it
/// refuses them. The histories equal the kit's either way.
fn core_header_proofs(h: &Harness, kind: &mut Option<HeaderProofs>) -> Result<String, String> {
    let session = SessionConfig {
        versions: VersionRange::WITH_1_7,
        ..SessionConfig::new(&REGTEST)
    };
    let mut d = Driver::connect(h.addr(), session).map_err(|e| format!("connect: {e}"))?;
    d.ready(T).map_err(|e| format!("negotiate: {e}"))?;
    let chain = verified_chain(&mut d, T)?;
    let scripts = h.bitcoind.chain().wallets()[BOB].scripts();
    let mut tracker = Tracker::new(Vec::new(), Vec::new());
    tracker.set_max_in_flight(48);
    for s in &scripts {
        tracker
            .add(CoreScriptRef::Script(s.as_bytes()))
            .map_err(|e| format!("{e:?}"))?;
    }
    tracker.set_checkpoint(chain.tip, chain.root);
    let synced = run_to_sync(
        &mut d,
        &mut tracker,
        &chain.headers,
        Duration::from_secs(120),
    )?;
    let lies: Vec<_> = synced
        .events
        .iter()
        .filter(|e| matches!(e, TrackerEvent::ServerLied { .. }))
        .collect();
    ensure(lies.is_empty(), || format!("{lies:?}"))?;
    let mut confirmed = 0;
    for (i, script) in scripts.iter().enumerate() {
        let ours: BTreeSet<(Txid, i64)> = tracker
            .history(i)
            .map(|e| (e.txid, e.height.to_i64()))
            .collect();
        ensure(ours == kit_history(h, script), || {
            format!("script {i}: {ours:?}")
        })?;
        confirmed += ours.iter().filter(|(_, height)| *height > 0).count();
    }
    ensure(confirmed > 0, || "no confirmed transaction to prove".into())?;
    let proofs = if synced.headers_provided == 0 {
        HeaderProofs::CpHeight
    } else {
        HeaderProofs::ChainOnly
    };
    *kind = Some(proofs);
    Ok(match proofs {
        HeaderProofs::CpHeight => format!(
            "{confirmed} confirmed transactions' headers proven by cp_height {} proofs",
            chain.tip
        ),
        HeaderProofs::ChainOnly => format!(
            "cp_height refused: {confirmed} confirmed transactions' headers ({} heights) \
             from the chain verified from genesis",
            synced.headers_provided
        ),
    })
}

#[test]
fn electrumx_kyuupichan_1_15_0() {
    run_matrix_row(
        Implementation::ElectrumX("kyuupichan-1.15.0".into()),
        ProtocolVersion::V1_4_2,
    );
}

#[test]
fn electrumx_1_16_0() {
    run_matrix_row(
        Implementation::ElectrumX("1.16.0".into()),
        ProtocolVersion::V1_4_2,
    );
}

#[test]
fn electrumx_1_18_0() {
    run_matrix_row(
        Implementation::ElectrumX("1.18.0".into()),
        ProtocolVersion::new(1, 4, 3),
    );
}

#[test]
fn electrumx_1_20_0() {
    run_matrix_row(
        Implementation::ElectrumX("1.20.0".into()),
        ProtocolVersion::V1_6,
    );
}

#[test]
fn electrumx_2_0_0() {
    run_matrix_row(
        Implementation::ElectrumX("2.0.0".into()),
        ProtocolVersion::V1_7,
    );
}

#[test]
fn electrs_0_10_10() {
    run_matrix_row(Implementation::Electrs, ProtocolVersion::V1_4);
}

/// The mixed pool: ElectrumX 1.16 (protocol 1.4.2, mempool in set order), ElectrumX 2.0 (1.7)
/// and electrs (1.4, its own orders, no `cp_height`, no `get_mempool`) over one chain at once.
/// Every wallet's audited history (each member verified, statuses compared) and verified utxos
/// equal the kit's with nobody dropped; then a liar in front of each in turn is caught and
/// dropped with its typed fault while the answer stays right.
#[test]
fn mixed_pool_electrumx_1_16_electrumx_2_0_electrs() {
    let started = Instant::now();
    let bitcoind = StandInBitcoind::start(Chain::funded().expect("chain")).expect("stand-in");
    let members: Vec<(String, Server)> = [
        Implementation::ElectrumX("1.16.0".into()),
        Implementation::ElectrumX("2.0.0".into()),
        Implementation::Electrs,
    ]
    .iter()
    .map(|i| {
        let s = Server::start(i, &bitcoind)
            .unwrap_or_else(|e| panic!("cannot install or start {}: {e}", i.name()));
        (i.name(), s)
    })
    .collect();
    println!(
        "interop: mixed-pool started in {:.1}s (tip {})",
        started.elapsed().as_secs_f64(),
        bitcoind.tip().0
    );
    let mut r = Report::new("mixed-pool".into());
    let rt = runtime();
    let servers: Vec<_> = members.iter().map(|(_, s)| common::tcp(s.addr())).collect();
    let pool_config = || PoolConfig::new(config());
    let scripts: Vec<ScriptBuf> = bitcoind
        .chain()
        .wallets()
        .iter()
        .flat_map(|w| ScriptKind::ALL.map(|k| w.script(k).to_owned()))
        .collect();
    let kit_of = |s: &ScriptBuf| -> BTreeSet<(Txid, i64)> {
        bitcoind
            .history(s)
            .into_iter()
            .map(|(t, hgt)| (core_txid(t), hgt))
            .collect()
    };

    let mut negotiated = Vec::new();
    r.check("honest audit", || {
        rt.block_on(async {
            let mut pool = Pool::connect(&servers, pool_config())
                .await
                .map_err(|e| format!("pool: {e}"))?;
            for (name, server) in &members {
                let addr = common::tcp(server.addr());
                if let Some(m) = pool.members().iter().find(|m| m.server == addr) {
                    negotiated.push(format!("{} with {name}", m.protocol));
                }
            }
            let versions: Vec<String> = pool
                .clients()
                .iter()
                .map(|c| format!("{} {}", c.server(), c.protocol_version()))
                .collect();
            ensure(pool.members().len() == 3, || {
                format!("members {versions:?}")
            })?;
            let (mut entries, mut mempool_orders) = (0, 0);
            for (i, s) in scripts.iter().enumerate() {
                let h = pool
                    .audit(s.as_bytes())
                    .await
                    .map_err(|e| format!("script {i}: audit: {e}"))?;
                let got: BTreeSet<(Txid, i64)> =
                    h.txs.iter().map(|t| (t.txid, t.height.to_i64())).collect();
                ensure(got == kit_of(s), || format!("script {i}: {got:?}"))?;
                entries += got.len();
                mempool_orders += usize::from(got.iter().filter(|e| e.1 <= 0).count() > 1);
                let utxos = pool
                    .verified_utxos(s.as_bytes())
                    .await
                    .map_err(|e| format!("script {i}: utxos: {e}"))?;
                let got: BTreeSet<(Txid, u32, u64)> =
                    utxos.iter().map(|u| (u.txid, u.vout, u.value)).collect();
                let kit: BTreeSet<(Txid, u32, u64)> = bitcoind
                    .listunspent(s)
                    .iter()
                    .map(|u| (core_txid(u.txid), u.vout, u.value))
                    .collect();
                ensure(got == kit, || format!("script {i}: utxos {got:?}"))?;
            }
            let fee = pool
                .estimate_fee(2)
                .await
                .map_err(|e| format!("fee: {e}"))?;
            ensure(fee == Some(ESTIMATED_FEERATE), || format!("fee {fee:?}"))?;
            ensure(pool.dropped().is_empty(), || {
                format!("dropped {:?}", pool.dropped())
            })?;
            ensure(pool.members().len() == 3, || "a member left".into())?;
            Ok(format!(
                "members {}; {} scripts audited by all three: {entries} entries equal the kit's, \
                 {mempool_orders} with several mempool entries; utxos equal; \
                 fee median {ESTIMATED_FEERATE}; nobody dropped",
                versions.join(", "),
                scripts.len()
            ))
        })
    });
    r.negotiated = negotiated.join(", ");

    let alice = bitcoind.chain().wallets()[ALICE]
        .script(ScriptKind::P2wpkh)
        .to_owned();
    type Expected = fn(&Fault) -> bool;
    let liars: [(usize, Attack, Expected); 3] = [
        (2, Attack::ForgedMerkleBranch, |f| {
            matches!(f, Fault::Merkle { .. })
        }),
        (0, Attack::WrongStatus, |f| {
            matches!(
                f,
                Fault::History {
                    fault: HistoryFault::StatusMismatch,
                    ..
                }
            )
        }),
        (1, Attack::HistoryMissingTx, |f| {
            matches!(f, Fault::History { .. })
        }),
    ];
    for (victim, attack, expected) in liars {
        let name = &members[victim].0;
        r.check(&format!("liar {attack:?} in front of {name}"), || {
            let liar =
                LyingProxy::start_with(members[victim].1.addr(), attack.clone(), Times::Always)
                    .map_err(|e| format!("liar: {e}"))?;
            let mut servers = servers.clone();
            servers[victim] = common::tcp(liar.addr());
            rt.block_on(async {
                let mut pool = Pool::connect(&servers, pool_config())
                    .await
                    .map_err(|e| format!("pool: {e}"))?;
                let h = pool
                    .audit(alice.as_bytes())
                    .await
                    .map_err(|e| format!("audit: {e}"))?;
                let got: BTreeSet<(Txid, i64)> =
                    h.txs.iter().map(|t| (t.txid, t.height.to_i64())).collect();
                ensure(got == kit_of(&alice), || format!("answer {got:?}"))?;
                let dropped = pool.dropped();
                ensure(
                    dropped.len() == 1
                        && dropped[0].server == servers[victim]
                        && dropped[0].fault.as_ref().is_some_and(expected),
                    || format!("dropped {dropped:?}"),
                )?;
                ensure(pool.members().len() == 2, || "members".into())?;
                ensure(liar.tampered() > 0, || "the attack never fired".into())?;
                Ok(format!(
                    "dropped: {}; the answer equals the kit's",
                    dropped[0].reason
                ))
            })
        });
    }
    println!(
        "interop: mixed-pool done in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    r.finish();
}
