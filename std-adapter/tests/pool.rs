//! The pool over several real ElectrumX servers: best verified tip, lagging servers kept but
//! not asked, liars dropped with their typed fault, failover, and cross-checked verified
//! histories equal to the kit's records.

mod common;

use common::{runtime, tcp};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use electrum_spv::activity::activity;
use electrum_spv::core::hash::Txid;
use electrum_spv::core::history::HistoryFault;
use electrum_spv::core::rpc::VersionRange;
use electrum_spv::core::script::TxHeight;
use electrum_spv::{ClientConfig, Fault, Network, Pool, PoolConfig, ServerAddr, SyncProgress};
use electrum_spv_testkit::chain::ALICE;
use electrum_spv_testkit::liar::{Attack, LyingProxy, Times};
use electrum_spv_testkit::{ElectrumX, Harness, ScriptKind};

fn core_txid(t: bitcoin::Txid) -> Txid {
    Txid::from_byte_array(bitcoin::hashes::Hash::to_byte_array(t))
}

#[test]
fn best_tip_lagging_server_kept_failover_and_verified_history() {
    let mut h = Harness::start().expect("kit");
    // A second ElectrumX over the same stand-in, and a whole second kit over an identical
    // (deterministic) chain that will fall behind.
    let mut second = ElectrumX::start(&h.bitcoind).expect("second ElectrumX");
    let stale = Harness::start().expect("second kit");
    h.bitcoind.mine(3);
    let (tip, _) = h.bitcoind.tip();
    h.electrumx
        .wait_for_height(tip, Duration::from_secs(60))
        .expect("first catches up");
    second
        .wait_for_height(tip, Duration::from_secs(60))
        .expect("second catches up");

    let servers = [tcp(stale.addr()), tcp(h.addr()), tcp(second.addr())];
    let config = PoolConfig::new(ClientConfig {
        versions: VersionRange::DEFAULT,
        ..ClientConfig::new(Network::Regtest)
    });
    let rt = runtime();
    rt.block_on(async {
        let mut pool = Pool::connect(&servers, config).await.expect("pool");
        assert_eq!(pool.best_tip().map(|t| t.0), Some(tip));
        // Three blocks behind is lag, not a lie: kept, ranked last, not asked.
        assert!(pool.dropped().is_empty(), "{:?}", pool.dropped());
        let members = pool.members();
        assert_eq!(members.len(), 3);
        assert_eq!(members[2].server, servers[0]);
        assert_eq!(members[2].tip.map(|t| t.0), Some(tip - 3));

        let script = h.bitcoind.chain().wallets()[ALICE]
            .script(ScriptKind::P2wpkh)
            .to_owned();
        let kit: Vec<(Txid, i64)> = h
            .bitcoind
            .history(&script)
            .into_iter()
            .map(|(t, hgt)| (core_txid(t), hgt))
            .collect();
        let got = pool
            .verified_history(script.as_bytes())
            .await
            .expect("history");
        let got: Vec<(Txid, i64)> = got
            .txs
            .iter()
            .map(|t| (t.txid, t.height.to_i64()))
            .collect();
        assert_eq!(got, kit);

        // One member dies: the other answers.
        second.kill();
        let again = pool
            .verified_history(script.as_bytes())
            .await
            .expect("failover");
        assert_eq!(again.txs.len(), kit.len());
        assert!(pool.dropped().is_empty(), "a disconnect is not a lie");
    });
}

#[test]
fn a_lying_member_is_detected_dropped_and_reported() {
    let h = Harness::start().expect("kit");
    let b = ElectrumX::start(&h.bitcoind).expect("second ElectrumX");
    let c = ElectrumX::start(&h.bitcoind).expect("third ElectrumX");
    let script = h.bitcoind.chain().wallets()[ALICE]
        .script(ScriptKind::P2wpkh)
        .to_owned();
    let kit: Vec<(Txid, i64)> = h
        .bitcoind
        .history(&script)
        .into_iter()
        .map(|(t, hgt)| (core_txid(t), hgt))
        .collect();
    let rt = runtime();
    type Expected = fn(Option<&Fault>) -> bool;
    let cases: [(Attack, Expected); 3] = [
        (Attack::ForgedMerkleBranch, |f| {
            matches!(f, Some(Fault::Merkle { .. }))
        }),
        (Attack::WrongStatus, |f| {
            matches!(
                f,
                Some(Fault::History {
                    fault: HistoryFault::StatusMismatch,
                    ..
                })
            )
        }),
        // A tip 3 blocks behind is lag, not a proven lie: the member is kept.
        (Attack::StaleTip(3), |f| f.is_none()),
    ];
    for (attack, expected) in cases {
        let liar = LyingProxy::start_with(c.addr(), attack.clone(), Times::Always).expect("liar");
        let servers = [tcp(h.addr()), tcp(b.addr()), tcp(liar.addr())];
        let config = PoolConfig::new(ClientConfig::new(Network::Regtest));
        rt.block_on(async {
            let mut pool = Pool::connect(&servers, config).await.expect("pool");
            let history = pool.audit(script.as_bytes()).await.expect("audit");
            let got: Vec<(Txid, i64)> = history
                .txs
                .iter()
                .map(|t| (t.txid, t.height.to_i64()))
                .collect();
            assert_eq!(got, kit, "{attack:?}: the result stays correct");
            let dropped = pool.dropped();
            let fault = dropped.first().and_then(|d| d.fault.as_ref());
            assert!(expected(fault), "{attack:?}: {dropped:?}");
            if fault.is_some() {
                assert_eq!(dropped.len(), 1, "{attack:?}: {dropped:?}");
                assert_eq!(dropped[0].server, servers[2], "{attack:?}");
                assert_eq!(pool.members().len(), 2);
            } else {
                assert!(dropped.is_empty(), "{attack:?}: {dropped:?}");
                assert_eq!(pool.members().len(), 3);
            }
        });
        assert!(liar.tampered() > 0, "{attack:?} never fired");
    }
}

#[test]
fn verified_utxos_and_histories_equal_the_kits_and_fees_are_the_median() {
    let h = Harness::start().expect("kit");
    let b = ElectrumX::start(&h.bitcoind).expect("second ElectrumX");
    let rt = runtime();
    rt.block_on(async {
        // Nothing listens on the port of a stopped listener: the error is the connection's own,
        // not a bare "disconnected".
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let nobody = tcp(closed.local_addr().expect("addr"));
        drop(closed);
        let config = PoolConfig::new(ClientConfig::new(Network::Regtest));
        let e = Pool::connect(std::slice::from_ref(&nobody), config.clone())
            .await
            .expect_err("no server");
        assert!(matches!(e, electrum_spv::Error::Io(_)), "{e:?}");

        let mut pool = Pool::connect(&[tcp(h.addr()), tcp(b.addr())], config)
            .await
            .expect("pool");
        let wallets: Vec<_> = h.bitcoind.chain().wallets().to_vec();
        let mut nonempty = 0;
        for w in &wallets {
            for kind in ScriptKind::ALL {
                let script = w.script(kind);
                let mut want: Vec<(Txid, u32, u64, u32)> = h
                    .bitcoind
                    .listunspent(script)
                    .into_iter()
                    .map(|u| (core_txid(u.txid), u.vout, u.value, u.height))
                    .collect();
                let mut got: Vec<(Txid, u32, u64, u32)> = pool
                    .verified_utxos(script.as_bytes())
                    .await
                    .expect("utxos")
                    .into_iter()
                    .map(|u| {
                        assert_eq!(u.block_hash.is_some(), u.height > 0);
                        (u.txid, u.vout, u.value, u.height)
                    })
                    .collect();
                want.sort();
                got.sort();
                assert_eq!(got, want, "{} {}", w.name, kind.name());
                nonempty += usize::from(!want.is_empty());
            }
        }
        assert!(nonempty > 0, "some script should have unspent outputs");

        // Every script's history at once equals the kit's records, in order.
        let scripts: Vec<Vec<u8>> = wallets
            .iter()
            .flat_map(|w| ScriptKind::ALL.map(|k| w.script(k).to_bytes()))
            .collect();
        let histories = pool.verified_histories(&scripts).await.expect("histories");
        assert_eq!(histories.len(), scripts.len());
        for (script, history) in scripts.iter().zip(&histories) {
            let kit: Vec<(Txid, i64)> = h
                .bitcoind
                .history(bitcoin::Script::from_bytes(script))
                .into_iter()
                .map(|(t, hgt)| (core_txid(t), hgt))
                .collect();
            let got: Vec<(Txid, i64)> = history
                .txs
                .iter()
                .map(|t| (t.txid, t.height.to_i64()))
                .collect();
            assert_eq!(got, kit);
            assert!(
                history
                    .txs
                    .iter()
                    .all(|t| t.block_hash.is_some() == (t.height.to_i64() > 0))
            );
        }
        assert!(pool.dropped().is_empty(), "{:?}", pool.dropped());
        let fee = pool.estimate_fee(2).await.expect("fee");
        assert_eq!(fee, Some(electrum_spv_testkit::ESTIMATED_FEERATE));
    });
}

#[test]
fn histories_with_their_transactions_and_headers_kept_between_runs() {
    let mut h = Harness::start().expect("kit");
    let mut b = ElectrumX::start(&h.bitcoind).expect("second ElectrumX");
    let (tip, _) = h.bitcoind.tip();
    b.wait_for_height(tip, Duration::from_secs(60))
        .expect("second catches up");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("headers");
    let calls: Arc<Mutex<Vec<(ServerAddr, u32, u32)>>> = Arc::default();
    let mut config = PoolConfig::new(ClientConfig::new(Network::Regtest));
    config.headers_file = Some(file.clone());
    config.progress = Some(SyncProgress({
        let calls = calls.clone();
        Arc::new(move |server: &ServerAddr, height, tip| {
            calls.lock().unwrap().push((server.clone(), height, tip));
        })
    }));
    let servers = [tcp(h.addr()), tcp(b.addr())];
    let rt = runtime();
    rt.block_on(async {
        let mut pool = Pool::connect(&servers, config.clone()).await.expect("pool");
        // Each server's sync reported, ending at its tip.
        for s in &servers {
            let last = calls.lock().unwrap().iter().rfind(|c| c.0 == *s).cloned();
            assert_eq!(last, Some((s.clone(), tip, tip)), "{s}");
        }
        let size = std::fs::metadata(&file).expect("header file").len();
        assert!(
            size >= 88 * u64::from(tip),
            "{size} bytes for {tip} headers"
        );

        // Every transaction of the histories comes with them, hashed to its txid; what each
        // does to its script adds up to the kit's unspent outputs, block times are the kit's.
        let wallets: Vec<_> = h.bitcoind.chain().wallets().to_vec();
        let scripts: Vec<Vec<u8>> = wallets
            .iter()
            .flat_map(|w| ScriptKind::ALL.map(|k| w.script(k).to_bytes()))
            .collect();
        let (histories, raws) = pool
            .verified_histories_keeping(&scripts)
            .await
            .expect("histories");
        let mut spends = 0;
        for (script, history) in scripts.iter().zip(&histories) {
            for t in &history.txs {
                let raw = raws.get(&t.txid).expect("every transaction kept");
                assert_eq!(electrum_spv::core::txid(raw).expect("parses"), t.txid);
                if let TxHeight::Confirmed(height) = t.height {
                    let kit_time = h.bitcoind.chain().blocks()[height as usize].header.time;
                    assert_eq!(t.block_time, Some(kit_time), "{}", t.txid);
                }
            }
            let effects = activity(script, history, &raws).expect("activity");
            let mut unspent: BTreeMap<(Txid, u32), u64> = BTreeMap::new();
            for (t, e) in history.txs.iter().zip(&effects) {
                for r in &e.received {
                    unspent.insert((t.txid, r.vout), r.value);
                }
            }
            for e in &effects {
                for s in &e.spent {
                    spends += 1;
                    assert_eq!(unspent.remove(&(s.txid, s.vout)), Some(s.value));
                }
            }
            let kit: BTreeMap<(Txid, u32), u64> = h
                .bitcoind
                .listunspent(bitcoin::Script::from_bytes(script))
                .into_iter()
                .map(|u| ((core_txid(u.txid), u.vout), u.value))
                .collect();
            assert_eq!(unspent, kit);
            let net: i64 = effects.iter().map(|e| e.net()).sum();
            assert_eq!(net, kit.values().map(|v| *v as i64).sum::<i64>());
        }
        assert!(spends > 0, "some transaction should spend a kit output");
        drop(pool);

        // The next run finds every header in the file: nothing downloaded again.
        calls.lock().unwrap().clear();
        let mut pool = Pool::connect(&servers, config.clone())
            .await
            .expect("pool again");
        assert_eq!(pool.best_tip().map(|t| t.0), Some(tip));
        assert!(calls.lock().unwrap().is_empty(), "{:?}", calls.lock());
        assert_eq!(std::fs::metadata(&file).expect("file").len(), size);

        // Three more blocks reach the file.
        h.bitcoind.mine(3);
        h.electrumx
            .wait_for_height(tip + 3, Duration::from_secs(60))
            .expect("ElectrumX indexes the new blocks");
        pool.refresh().await.expect("refresh");
        drop(pool);
        assert_eq!(std::fs::metadata(&file).expect("file").len(), size + 3 * 88);

        // A server behind the file (a kit over the same chain, three blocks behind) starts
        // at its own tip, not the file's: lag, not a lie, and not hidden.
        let mut stale = Harness::start().expect("second kit");
        let one = [tcp(stale.addr())];
        let pool = Pool::connect(&one, config.clone()).await.expect("stale");
        assert_eq!(pool.best_tip().map(|t| t.0), Some(tip));
        assert!(pool.dropped().is_empty(), "{:?}", pool.dropped());
        drop(pool);

        // The file's block at the server's tip was reorganised away there: the member starts
        // from the checkpoint and follows the server, which is not dropped.
        stale.bitcoind.reorg(1);
        let (stale_tip, stale_header) = stale.bitcoind.tip();
        assert_eq!(stale_tip, tip + 1);
        stale
            .electrumx
            .wait_for_height(stale_tip, Duration::from_secs(60))
            .expect("ElectrumX follows the reorg");
        let mut pool = Pool::connect(&one, config).await.expect("reorged");
        let (height, hash) = pool.best_tip().expect("tip");
        assert_eq!(height, stale_tip);
        assert_eq!(
            hash.to_byte_array(),
            bitcoin::hashes::Hash::to_byte_array(stale_header.block_hash())
        );
        assert!(pool.dropped().is_empty(), "{:?}", pool.dropped());
        let script = stale.bitcoind.chain().wallets()[ALICE]
            .script(ScriptKind::P2wpkh)
            .to_owned();
        pool.verified_history(script.as_bytes())
            .await
            .expect("its histories verify");
    });
}
