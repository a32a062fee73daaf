//! Real mainnet data through the adapter, the pool and the CLI: the test kit's replay server
//! answers only from the blocks and headers in `core/tests/data` (as electrs does: protocol
//! 1.4, `hex` headers, no `cp_height`), and the checkpoint file ends at period 411, so every
//! transaction it knows (periods 0 and 411) lies below the verified anchor at 830592.
//!
//! Honest: every example script's history, status and unspent outputs verified, block hashes
//! equal to the real ones. Lying: each lie refused with its typed reason, and a server hiding
//! a transaction with a matching status caught by an honest one beside it.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use electrum_spv::checkpoints::network_params;
use electrum_spv::core::chain::HeaderErrorKind;
use electrum_spv::core::history::HistoryFault;
use electrum_spv::core::script::TxHeight;
use electrum_spv::{
    Client, ClientConfig, Error, Fault, HeaderChain, Network, Pool, PoolConfig, ScriptRef,
    ServerAddr, VerifiedHistory, verified_histories, verified_history, verified_utxos,
};
use electrum_spv_testkit::replay::{
    self, CHECKPOINT_COUNT, Example, FORGED_HEIGHTS, ReplayLie, ReplayServer, TIP_HEIGHT,
};
use serde_json::Value;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The kit's checkpoint file (entries 0..=411) in a directory kept for the test's life.
fn checkpoints() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = replay::checkpoints_file(dir.path()).unwrap();
    (dir, path)
}

fn start(lie: ReplayLie) -> (ReplayServer, ServerAddr) {
    let server = ReplayServer::start(lie).unwrap_or_else(|e| panic!("replay server: {e:?}"));
    let addr: ServerAddr = server.url().parse().unwrap();
    (server, addr)
}

fn examples() -> Vec<Example> {
    replay::examples().unwrap()
}

fn example(name: &str) -> Example {
    examples()
        .into_iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no example {name}"))
}

/// `(txid, height, block hash)` of a verified history, display hex.
fn rows(h: &VerifiedHistory) -> Vec<(String, u32, String)> {
    h.txs
        .iter()
        .map(|t| {
            let TxHeight::Confirmed(height) = t.height else {
                panic!("{} is not confirmed", t.txid)
            };
            (
                t.txid.to_string(),
                height,
                t.block_hash.expect("proven").to_string(),
            )
        })
        .collect()
}

fn expected_rows(e: &Example) -> Vec<(String, u32, String)> {
    e.history
        .iter()
        .map(|t| (t.txid.to_string(), t.height, t.block_hash.to_string()))
        .collect()
}

fn config() -> ClientConfig {
    let mut c = ClientConfig::new(Network::Mainnet);
    c.reconnect = None;
    c
}

/// A client and a header chain anchored after the file's last checkpoint, synced.
async fn verifier(addr: &ServerAddr, file: &std::path::Path) -> (Client, HeaderChain) {
    let client = Client::connect(addr, &config()).await.expect("connect");
    let params = network_params(Network::Mainnet, Some(file)).unwrap();
    assert_eq!(params.checkpoints.len(), CHECKPOINT_COUNT);
    let mut chain = HeaderChain::after_checkpoints(params);
    chain.sync(&client, |_, _| {}).await.expect("sync");
    assert_eq!(chain.anchor_height(), TIP_HEIGHT);
    assert_eq!(chain.tip().map(|t| t.0), Some(TIP_HEIGHT));
    (client, chain)
}

async fn pool(servers: &[ServerAddr], file: &std::path::Path) -> Pool {
    let mut config = PoolConfig::new(config());
    config.checkpoints_file = Some(file.to_owned());
    Pool::connect(servers, config).await.expect("pool")
}

#[test]
fn histories_below_the_anchor_verify_against_their_periods() {
    let (_dir, file) = checkpoints();
    let (_server, addr) = start(ReplayLie::None);
    runtime().block_on(async {
        let (client, mut chain) = verifier(&addr, &file).await;
        for e in examples() {
            let got = verified_history(&client, &mut chain, ScriptRef::Script(e.script.as_bytes()))
                .await
                .unwrap_or_else(|err| panic!("{}: {err}", e.name));
            assert_eq!(rows(&got), expected_rows(&e), "{}", e.name);
            assert_eq!(got.status.map(|s| s.to_string()), e.status, "{}", e.name);
            let utxos = verified_utxos(&client, &mut chain, e.script.as_bytes())
                .await
                .unwrap_or_else(|err| panic!("{} utxos: {err}", e.name));
            let got: Vec<(String, u32, u64, u32)> = utxos
                .iter()
                .map(|u| (u.txid.to_string(), u.vout, u.value, u.height))
                .collect();
            let want: Vec<(String, u32, u64, u32)> = e
                .utxos
                .iter()
                .map(|u| (u.txid.to_string(), u.vout, u.value, u.height))
                .collect();
            assert_eq!(got, want, "{} utxos", e.name);
            assert!(utxos.iter().all(|u| u.block_hash.is_some()));
        }
        // Periods 0 and 411 were fetched once each and verified between their checkpoints.
        assert_eq!(chain.old_periods().collect::<Vec<_>>(), vec![0, 411]);
        assert_eq!(
            chain.header(170).unwrap().block_hash().to_string(),
            "00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee"
        );
    });
}

/// A wallet of more scripts than requests kept in flight (48): every history is verified in
/// one run of the tracker (each history handed back frees its place in the window).
#[test]
fn a_wallet_of_more_scripts_than_the_window_verifies_every_history() {
    let (_dir, file) = checkpoints();
    let (_server, addr) = start(ReplayLie::None);
    runtime().block_on(async {
        let (client, mut chain) = verifier(&addr, &file).await;
        let examples = examples();
        let wallet: Vec<&Example> = examples.iter().cycle().take(60).collect();
        let scripts: Vec<ScriptRef<'_>> = wallet
            .iter()
            .map(|e| ScriptRef::Script(e.script.as_bytes()))
            .collect();
        let got = tokio::time::timeout(
            Duration::from_secs(120),
            verified_histories(&client, &mut chain, &scripts),
        )
        .await
        .expect("no stall")
        .expect("verified");
        assert_eq!(got.len(), 60);
        for (history, e) in got.iter().zip(&wallet) {
            assert_eq!(rows(history), expected_rows(e), "{}", e.name);
        }
    });
}

#[test]
fn old_periods_are_kept_in_the_header_file() {
    let (dir, file) = checkpoints();
    let (_server, addr) = start(ReplayLie::None);
    let satoshi = example("satoshi-block9-p2pk");
    let store = dir.path().join("mainnet.headers");
    runtime().block_on(async {
        let client = Client::connect(&addr, &config()).await.unwrap();
        let params = network_params(Network::Mainnet, Some(&file)).unwrap();
        let mut chain = HeaderChain::open_with(params, &store).unwrap();
        chain.sync(&client, |_, _| {}).await.unwrap();
        verified_history(
            &client,
            &mut chain,
            ScriptRef::Script(satoshi.script.as_bytes()),
        )
        .await
        .unwrap();
        drop(chain);
        let reopened = HeaderChain::open_with(params, &store).unwrap();
        assert_eq!(reopened.old_periods().collect::<Vec<_>>(), vec![0]);
        assert_eq!(reopened.tip().map(|t| t.0), Some(TIP_HEIGHT));
    });
    // 2016 old headers and the synced one, 88 bytes each: nothing appended twice.
    assert_eq!(std::fs::metadata(&store).unwrap().len(), (2016 + 1) * 88);
}

/// Each lie a lone server tells is refused with its typed reason, which is a server fault.
#[test]
fn each_lie_is_refused_with_its_reason() {
    let (_dir, file) = checkpoints();
    let satoshi = example("satoshi-block9-p2pk");
    let p2wpkh = example("block830000-p2wpkh");
    let rt = runtime();
    for lie in [
        ReplayLie::ForgedOldHeader,
        ReplayLie::WrongPositionBranch,
        ReplayLie::HiddenEntryHonestStatus,
        ReplayLie::UnrelatedTxInserted,
        ReplayLie::DuplicateTxid,
        ReplayLie::DuplicateOutpoint,
    ] {
        let (server, addr) = start(lie);
        rt.block_on(async {
            let (client, mut chain) = verifier(&addr, &file).await;
            let script = ScriptRef::Script(satoshi.script.as_bytes());
            let err = if lie == ReplayLie::DuplicateOutpoint {
                verified_utxos(&client, &mut chain, p2wpkh.script.as_bytes())
                    .await
                    .map(|_| ())
            } else {
                verified_history(&client, &mut chain, script)
                    .await
                    .map(|_| ())
            }
            .expect_err(lie.name());
            assert!(err.is_server_fault(), "{lie:?}: {err}");
            let Error::Verification(fault) = &err else {
                panic!("{lie:?}: {err}")
            };
            let expected = match (lie, fault) {
                (ReplayLie::ForgedOldHeader, Fault::Header(e)) => {
                    FORGED_HEIGHTS.contains(&e.height)
                        && e.kind != HeaderErrorKind::CheckpointMismatch
                        || e.kind == HeaderErrorKind::PrevHashMismatch
                }
                (ReplayLie::WrongPositionBranch, Fault::Merkle { .. }) => true,
                (
                    ReplayLie::HiddenEntryHonestStatus,
                    Fault::History {
                        fault: HistoryFault::StatusMismatch,
                        ..
                    },
                ) => true,
                (ReplayLie::UnrelatedTxInserted, Fault::Unrelated { .. }) => true,
                (
                    ReplayLie::DuplicateTxid,
                    Fault::History {
                        fault: HistoryFault::DuplicateTxid(_),
                        ..
                    },
                ) => true,
                (ReplayLie::DuplicateOutpoint, Fault::DuplicateOutpoint { .. }) => true,
                _ => false,
            };
            assert!(expected, "{lie:?} refused for another reason: {fault}");
            // The connection still answers truly.
            assert_eq!(client.block_header(170).await.unwrap().len(), 80);
        });
        assert!(server.tampered() > 0, "{lie:?} never fired");
    }
}

/// A server that hides a transaction and reports the matching status cannot be caught alone;
/// beside an honest server it is, whichever answers first, and the whole history is returned.
#[test]
fn an_omission_another_server_proves_exposes_the_omitter() {
    let (_dir, file) = checkpoints();
    let satoshi = example("satoshi-block9-p2pk");
    let (_honest, honest_addr) = start(ReplayLie::None);
    let (liar, liar_addr) = start(ReplayLie::HiddenEntryMatchingStatus);
    let rt = runtime();
    for order in [
        [liar_addr.clone(), honest_addr.clone()],
        [honest_addr.clone(), liar_addr.clone()],
    ] {
        rt.block_on(async {
            let mut pool = pool(&order, &file).await;
            assert_eq!(pool.members().len(), 2);
            let got = pool
                .verified_history(satoshi.script.as_bytes())
                .await
                .expect("history");
            assert_eq!(rows(&got), expected_rows(&satoshi));
            assert_eq!(got.status.map(|s| s.to_string()), satoshi.status);
            let dropped = pool.dropped();
            assert_eq!(dropped.len(), 1, "{dropped:?}");
            assert_eq!(dropped[0].server, liar_addr);
            assert!(
                dropped[0].reason.contains("leaves out"),
                "{}",
                dropped[0].reason
            );
            assert_eq!(pool.members().len(), 1);
        });
    }
    assert!(liar.tampered() > 0);
}

fn cli(servers: &[&ServerAddr], file: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_electrum-spv"));
    c.args(["--network", "mainnet", "--json", "--checkpoints"]);
    c.arg(file);
    for s in servers {
        c.args(["--server", &s.to_string()]);
    }
    c.args(args).output().expect("run electrum-spv")
}

#[test]
fn the_cli_verifies_old_history_and_names_the_liar() {
    let (_dir, file) = checkpoints();
    let satoshi = example("satoshi-block9-p2pk");
    let script = electrum_spv::to_hex(satoshi.script.as_bytes());
    let (_honest, honest) = start(ReplayLie::None);
    let (_liar, liar) = start(ReplayLie::HiddenEntryMatchingStatus);

    let out = cli(&[&liar, &honest], &file, &["history", "--script", &script]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let line: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    let got: Vec<(String, u32, String)> = line["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["tx_hash"].as_str().unwrap().to_owned(),
                u32::try_from(r["height"].as_i64().unwrap()).unwrap(),
                r["block_hash"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(got, expected_rows(&satoshi));
    assert_eq!(line["tip"]["height"], TIP_HEIGHT);
    assert!(
        stderr.contains(&format!("dropped {liar}")) && stderr.contains("leaves out"),
        "{stderr}"
    );

    // A header of period 0, fetched and verified between checkpoints on demand.
    let out = cli(&[&honest], &file, &["header", "170"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        line["hash"],
        "00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee"
    );

    // Alone, a server with a forged old header is refused: exit 1, one line naming the rule.
    let (_forger, forger) = start(ReplayLie::ForgedOldHeader);
    let out = cli(&[&forger], &file, &["history", "--script", &script]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("dropped") && stderr.contains("header"),
        "{stderr}"
    );
}
