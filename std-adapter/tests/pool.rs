//! The pool over several real ElectrumX servers: best verified tip, lagging servers kept but
//! not asked, liars dropped with their typed fault, failover, and cross-checked verified
//! histories equal to the kit's records.

mod common;

use common::{runtime, tcp};
use std::time::Duration;

use electrum_spv::core::hash::Txid;
use electrum_spv::core::history::HistoryFault;
use electrum_spv::core::rpc::VersionRange;
use electrum_spv::{ClientConfig, Fault, Network, Pool, PoolConfig};
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
