//! A BDK wallet behind the kit's lying proxy: electrum-spv-bdk refuses the answer, or drops the
//! liar and answers from the honest server; `bdk_electrum` 0.24, given the same liar, is
//! recorded doing what it does (the documented difference).

mod common;

use std::time::Duration;

use bdk_electrum::BdkElectrumClient;
use bdk_wallet::{KeychainKind, Wallet};
use bitcoin::Amount;
use common::{STOP_GAP, Seen, script, seen, wallet};
use electrum_spv::{ClientConfig, Fault, PoolConfig, ServerAddr, Transport};
use electrum_spv_bdk::blocking::BlockingChainSource;
use electrum_spv_bdk::{Error, ScanOptions};
use electrum_spv_testkit::Harness;
use electrum_spv_testkit::chain::ALICE;
use electrum_spv_testkit::liar::{Attack, LyingProxy, Times};

const AT: u64 = 1_800_000_000;

fn tcp(addr: std::net::SocketAddr) -> ServerAddr {
    ServerAddr::new(Transport::Tcp, "127.0.0.1".to_owned(), addr.port())
}

fn ours(servers: &[ServerAddr]) -> BlockingChainSource {
    let mut client = ClientConfig::new(electrum_spv::Network::Regtest);
    client.request_timeout = Duration::from_secs(10);
    BlockingChainSource::connect(servers, PoolConfig::new(client)).expect("connects")
}

fn scan_ours(source: &BlockingChainSource) -> Result<Seen, Error> {
    let mut w = wallet("wpkh");
    let update = source.full_scan(
        w.start_full_scan_at(AT).build(),
        STOP_GAP,
        &ScanOptions::default(),
    )?;
    w.apply_update(update).expect("update connects");
    Ok(seen(&w))
}

/// `bdk_electrum`'s full scan through `addr`: what its wallet then shows, or its error.
fn scan_theirs(addr: std::net::SocketAddr) -> Result<Seen, String> {
    let client =
        electrum_client::Client::new(&format!("tcp://{addr}")).map_err(|e| e.to_string())?;
    let client = BdkElectrumClient::new(client);
    let mut w: Wallet = wallet("wpkh");
    let update = client
        .full_scan(w.start_full_scan_at(AT).build(), STOP_GAP, 10, false)
        .map_err(|e| e.to_string())?;
    w.apply_update(update).map_err(|e| e.to_string())?;
    Ok(seen(&w))
}

/// The scan through a lone liar failed, and the liar is dropped with a proven fault (the
/// pool's error names the fault, or, having dropped its only member, says it is left with
/// none, the fault kept in `Pool::dropped`).
fn refused(source: &BlockingChainSource, outcome: Result<Seen, Error>) -> Option<Fault> {
    let e = match outcome {
        Err(Error::Client(e)) => e,
        other => panic!("a liar's answer accepted: {other:?}"),
    };
    let pool = source.inner().pool();
    let pool = pool.blocking_lock();
    let fault = pool.dropped().first().and_then(|d| d.fault.clone());
    assert!(
        e.is_server_fault() || fault.is_some(),
        "{e:?}, dropped {:?}",
        pool.dropped()
    );
    fault
}

fn confirmed_txs(s: &Seen) -> usize {
    s.txs.values().filter(|(p, _)| p.is_some()).count()
}

#[test]
fn liars_are_refused_or_dropped_and_bdk_electrum_is_recorded() {
    let mut h = Harness::start().unwrap_or_else(|e| panic!("cannot start the kit: {e}"));
    let w = wallet("wpkh");
    for (index, sats) in [(0, 110_000), (1, 220_000), (2, 330_000)] {
        h.bitcoind
            .send(
                ALICE,
                &script(&w, KeychainKind::External, index),
                Amount::from_sat(sats),
            )
            .expect("kit pays the wallet");
        h.bitcoind.mine(1);
    }
    let (tip, _) = h.bitcoind.tip();
    h.electrumx
        .wait_for_height(tip, Duration::from_secs(60))
        .expect("ElectrumX follows the kit");
    let honest = scan_ours(&ours(&[tcp(h.addr())])).expect("honest scan");
    assert_eq!(honest.balance[0], Amount::from_sat(660_000));
    assert_eq!(confirmed_txs(&honest), 3);
    assert_eq!(scan_theirs(h.addr()).expect("their honest scan"), honest);

    // A forged merkle branch, alone: refused with the typed fault.
    let liar =
        LyingProxy::start_with(h.addr(), Attack::ForgedMerkleBranch, Times::Always).expect("proxy");
    let source = ours(&[tcp(liar.addr())]);
    let fault = refused(&source, scan_ours(&source));
    assert!(matches!(fault, Some(Fault::Merkle { .. })), "{fault:?}");
    // bdk_electrum checks the branch too, but drops what fails silently: the wallet shows
    // its coins unconfirmed (spendable balance 0) and reports no error.
    let theirs = scan_theirs(liar.addr()).expect("bdk_electrum reports no error");
    assert_eq!(confirmed_txs(&theirs), 0, "{theirs:?}");
    assert_eq!(theirs.balance[0], Amount::ZERO);

    // A header that breaks proof of work, alone: refused.
    let liar =
        LyingProxy::start_with(h.addr(), Attack::BadHeaderPow, Times::Always).expect("proxy");
    match BlockingChainSource::connect(
        &[tcp(liar.addr())],
        PoolConfig::new(ClientConfig::new(electrum_spv::Network::Regtest)),
    ) {
        Err(_) => {}
        Ok(source) => {
            let fault = refused(&source, scan_ours(&source));
            assert!(matches!(fault, Some(Fault::Header(_))), "{fault:?}");
        }
    }
    // bdk_electrum never checks proof of work: its scan succeeds, and a transaction is
    // anchored to the forged block (a hash no block of the chain has).
    let theirs = scan_theirs(liar.addr()).expect("bdk_electrum reports no error");
    assert_eq!(theirs.balance, honest.balance);
    let chain = h.bitcoind.chain();
    let forged: Vec<_> = theirs
        .txs
        .iter()
        .filter_map(|(txid, (p, _))| p.map(|(height, hash, _)| (txid, height, hash)))
        .filter(|(_, height, hash)| chain.blocks()[*height as usize].block_hash() != *hash)
        .collect();
    assert!(!forged.is_empty(), "{theirs:?}");
    drop(chain);

    // A transaction hidden from a history (status kept) next to an honest server: the answer
    // is the honest one. The pool asks its fastest member for histories and the others for
    // their statuses only, which this liar keeps true: when the honest server is the faster,
    // the lie is never asked for and harms nothing; when the liar is, it is caught and
    // dropped with its fault. Never is the honest server dropped.
    let liar =
        LyingProxy::start_with(h.addr(), Attack::HistoryMissingTx, Times::Always).expect("proxy");
    let source = ours(&[tcp(liar.addr()), tcp(h.addr())]);
    assert_eq!(scan_ours(&source).expect("scan with one liar"), honest);
    {
        let pool = source.inner().pool();
        let pool = pool.blocking_lock();
        let dropped = pool.dropped();
        assert!(dropped.len() <= 1, "{dropped:?}");
        if let Some(d) = dropped.first() {
            assert_eq!(d.server, tcp(liar.addr()));
            assert!(
                matches!(
                    d.fault,
                    Some(Fault::History { .. } | Fault::Omission { .. })
                ),
                "{d:?}"
            );
        }
        assert_eq!(pool.members().len(), 2 - dropped.len());
    }
    // bdk_electrum takes the history as sent: a coin is missing and nothing says so.
    let theirs = scan_theirs(liar.addr()).expect("bdk_electrum reports no error");
    assert!(theirs.balance[0] < honest.balance[0], "{theirs:?}");
}
