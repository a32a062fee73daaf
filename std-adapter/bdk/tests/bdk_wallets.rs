//! Two identical BDK wallets over the test kit's real ElectrumX: one synced by `bdk_electrum`
//! 0.24 on rust-electrum-client, one by electrum-spv-bdk. After each step (funding, mining, a
//! 2-block reorg, a spend built by BDK) both wallets must agree on everything a wallet shows,
//! and every anchor must be the kit's own block.

mod common;

use std::time::Duration;

use bdk_electrum::BdkElectrumClient;
use bdk_wallet::{KeychainKind, SignOptions, Wallet};
use bitcoin::Amount;
use common::{STOP_GAP, Seen, script, seen, wallet};
use electrum_spv::{ClientConfig, PoolConfig, ServerAddr, Transport};
use electrum_spv_bdk::{Error, ScanOptions};
use electrum_spv_testkit::chain::{ALICE, BOB};
use electrum_spv_testkit::{Harness, ReorgTxs, ScriptKind, example_binary};

const T: Duration = Duration::from_secs(60);

/// Every confirmed transaction's anchor is the kit's block at that height, with its time.
fn assert_anchors_are_the_kits(h: &Harness, s: &Seen) {
    let chain = h.bitcoind.chain();
    for (txid, (position, _)) in &s.txs {
        if let Some((height, hash, time)) = position {
            let block = &chain.blocks()[*height as usize];
            assert_eq!(*hash, block.block_hash(), "anchor of {txid}");
            assert_eq!(*time, u64::from(block.header.time), "time of {txid}");
        }
    }
}

struct Pair {
    theirs: Wallet,
    ours: Wallet,
}

impl Pair {
    fn new(kind: &str) -> Pair {
        Pair {
            theirs: wallet(kind),
            ours: wallet(kind),
        }
    }

    /// Full scans both (same start time), then compares.
    fn full_scan(
        &mut self,
        h: &Harness,
        theirs: &BdkElectrumClient<electrum_client::Client>,
        ours: &electrum_spv_bdk::blocking::BlockingChainSource,
    ) -> Seen {
        let at = 1_800_000_000;
        let request = self.theirs.start_full_scan_at(at).build();
        let update = theirs
            .full_scan(request, STOP_GAP, 10, true)
            .expect("bdk_electrum full scan");
        self.theirs.apply_update(update).expect("their update");
        let options = ScanOptions {
            fetch_prev_txouts: true,
            ..ScanOptions::default()
        };
        let request = self.ours.start_full_scan_at(at).build();
        let update = ours
            .full_scan(request, STOP_GAP, &options)
            .expect("electrum-spv-bdk full scan");
        self.ours.apply_update(update).expect("our update");
        self.compare(h)
    }

    /// Syncs both (revealed scripts), then compares.
    fn sync(
        &mut self,
        h: &Harness,
        theirs: &BdkElectrumClient<electrum_client::Client>,
        ours: &electrum_spv_bdk::blocking::BlockingChainSource,
        at: u64,
    ) -> Seen {
        let request = self.theirs.start_sync_with_revealed_spks_at(at).build();
        let update = theirs.sync(request, 10, true).expect("bdk_electrum sync");
        self.theirs.apply_update(update).expect("their update");
        let options = ScanOptions {
            fetch_prev_txouts: true,
            ..ScanOptions::default()
        };
        let request = self.ours.start_sync_with_revealed_spks_at(at).build();
        let update = ours.sync(request, &options).expect("electrum-spv-bdk sync");
        self.ours.apply_update(update).expect("our update");
        self.compare(h)
    }

    fn compare(&self, h: &Harness) -> Seen {
        let (theirs, ours) = (seen(&self.theirs), seen(&self.ours));
        assert_eq!(ours, theirs, "electrum-spv-bdk and bdk_electrum disagree");
        assert_eq!(
            self.ours.latest_checkpoint().block_id(),
            self.theirs.latest_checkpoint().block_id(),
            "chain tips"
        );
        assert_anchors_are_the_kits(h, &ours);
        ours
    }
}

fn wait_for_tip(h: &mut Harness) {
    let (tip, _) = h.bitcoind.tip();
    h.electrumx
        .wait_for_height(tip, T)
        .expect("ElectrumX follows the kit");
}

#[test]
fn the_same_wallet_through_bdk_electrum_and_electrum_spv_bdk() {
    let mut h = Harness::start().unwrap_or_else(|e| panic!("cannot start the kit: {e}"));
    let server = ServerAddr::new(Transport::Tcp, "127.0.0.1".to_owned(), h.addr().port());
    let theirs = BdkElectrumClient::new(
        electrum_client::Client::new(&format!("tcp://{}", h.addr())).unwrap(),
    );
    let ours = electrum_spv_bdk::blocking::BlockingChainSource::connect(
        &[server],
        PoolConfig::new(ClientConfig::new(electrum_spv::Network::Regtest)),
    )
    .expect("electrum-spv-bdk connects");

    let mut tr_seen = None;
    for kind in ["wpkh", "tr"] {
        let mut pair = Pair::new(kind);
        let w = &pair.ours;
        // External 0, 1, 3 and one beyond the stop gap; internal 0; an immature coinbase.
        for (keychain, index, sats) in [
            (KeychainKind::External, 0, 100_000),
            (KeychainKind::External, 1, 200_000),
            (KeychainKind::External, 3, 300_000),
            (KeychainKind::External, 3 + STOP_GAP as u32 + 2, 400_000),
            (KeychainKind::Internal, 0, 50_000),
        ] {
            h.bitcoind
                .send(ALICE, &script(w, keychain, index), Amount::from_sat(sats))
                .expect("kit pays the wallet");
        }
        h.bitcoind.mine(1);
        h.bitcoind.mine_to(&script(w, KeychainKind::External, 2));
        // A mempool payment.
        let paid = h
            .bitcoind
            .send(
                BOB,
                &script(w, KeychainKind::External, 4),
                Amount::from_sat(70_000),
            )
            .expect("mempool payment");
        wait_for_tip(&mut h);
        std::thread::sleep(Duration::from_secs(1));

        let s = pair.full_scan(&h, &theirs, &ours);
        assert_eq!(s.indices, [Some(4), Some(0)], "{kind}");
        assert!(s.txs.contains_key(&paid), "{kind}: mempool payment");
        assert!(s.balance[3] > Amount::ZERO, "{kind}: immature coinbase");
        assert!(
            s.balance[0] >= Amount::from_sat(650_000),
            "{kind}: confirmed {}",
            s.balance[0]
        );

        // Mined: both see the payment confirmed.
        h.bitcoind.mine(1);
        wait_for_tip(&mut h);
        let s = pair.sync(&h, &theirs, &ours, 1_800_000_100);
        assert!(s.txs[&paid].0.is_some(), "{kind}: payment confirmed");

        // A 2-block reorg puts it back into the mempool.
        h.bitcoind.reorg_with(2, ReorgTxs::ToMempool);
        wait_for_tip(&mut h);
        std::thread::sleep(Duration::from_secs(1));
        let s = pair.sync(&h, &theirs, &ours, 1_800_000_200);
        assert!(s.txs[&paid].0.is_none(), "{kind}: unconfirmed by the reorg");

        // A spend built and signed by BDK, broadcast through electrum-spv-bdk.
        let to = h.bitcoind.chain().wallets()[BOB]
            .script(ScriptKind::P2wpkh)
            .to_owned();
        let mut builder = pair.ours.build_tx();
        builder.add_recipient(to, Amount::from_sat(123_456));
        let mut psbt = builder.finish().expect("BDK builds a spend");
        // `Wallet::sign` is deprecated in bdk_wallet 3 but still signs and finalizes both
        // descriptor kinds in one call, which is all this test needs of it.
        #[allow(deprecated)]
        let signed = pair.ours.sign(&mut psbt, SignOptions::default());
        assert!(signed.expect("sign"), "{kind}: finalized");
        let tx = psbt.extract_tx().expect("signed");
        let sent = ours.broadcast(&tx).expect("broadcast");
        assert_eq!(sent, tx.compute_txid());
        assert!(
            h.bitcoind
                .chain()
                .mempool()
                .iter()
                .any(|t| t.compute_txid() == sent),
            "{kind}: the spend is in the kit's mempool"
        );
        // A full scan, so their wallet finds the change output BDK revealed in ours.
        h.bitcoind.mine(1);
        wait_for_tip(&mut h);
        let s = pair.full_scan(&h, &theirs, &ours);
        assert!(s.txs[&sent].0.is_some(), "{kind}: the spend confirmed");
        tr_seen = Some(s);
    }

    // Txids and outpoints requests (what a wallet asks of transactions it holds): both
    // chain sources return the same transactions, anchors and seen times.
    let tr = tr_seen.as_ref().expect("the tr wallet ran");
    let txids: Vec<bitcoin::Txid> = tr.txs.keys().copied().collect();
    let outpoints: Vec<bitcoin::OutPoint> = tr.unspent.iter().map(|u| u.0).collect();
    let request = || {
        bdk_core::spk_client::SyncRequest::<()>::builder_at(1_800_000_400)
            .txids(txids.clone())
            .outpoints(outpoints.clone())
            .build()
    };
    let their_update = theirs
        .sync(request(), 10, false)
        .expect("bdk_electrum sync");
    let our_update = ours
        .sync(request(), &ScanOptions::default())
        .expect("electrum-spv-bdk sync");
    let summary = |u: &bdk_core::TxUpdate<bdk_core::ConfirmationBlockTime>| {
        let mut txs: Vec<bitcoin::Txid> = u.txs.iter().map(|t| t.compute_txid()).collect();
        txs.sort();
        txs.dedup();
        (txs, u.anchors.clone(), u.seen_ats.clone())
    };
    assert_eq!(
        summary(&our_update.tx_update),
        summary(&their_update.tx_update)
    );
    assert!(
        our_update.tx_update.txs.len() >= txids.len(),
        "every txid asked is returned"
    );

    // bdk#2295: a full scan is bounded; a bound below the stop gap is met at once.
    let too_few = ScanOptions {
        max_scripts: 10,
        ..ScanOptions::default()
    };
    let w = wallet("wpkh");
    match ours.full_scan(w.start_full_scan().build(), STOP_GAP, &too_few) {
        Err(Error::TooManyScripts { limit: 10 }) => {}
        other => panic!("max_scripts not enforced: {:?}", other.map(|_| ())),
    }

    // examples/bdk_wallet.rs prints what the wallet holds.
    let (external, internal) = common::descriptors("tr");
    let out = std::process::Command::new(example_binary("bdk_wallet"))
        .args([
            "--network",
            "regtest",
            "--server",
            &format!("tcp://{}", h.addr()),
        ])
        .args([external, internal])
        .output()
        .expect("the example runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let tr = tr_seen.expect("the tr wallet ran");
    assert_eq!(
        lines[0]["balance"]["confirmed"].as_u64(),
        Some(tr.balance[0].to_sat()),
        "{lines:?}"
    );
    let printed: std::collections::BTreeSet<String> = lines[1..]
        .iter()
        .filter_map(|l| l["txid"].as_str().map(str::to_owned))
        .collect();
    let held: std::collections::BTreeSet<String> = tr.txs.keys().map(|t| t.to_string()).collect();
    assert_eq!(printed, held);

    let pool = ours.inner().pool();
    let pool = pool.blocking_lock();
    assert!(pool.dropped().is_empty(), "{:?}", pool.dropped());
}
