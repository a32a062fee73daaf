//! The script tracker against a real ElectrumX: every reported transaction is verified (header
//! proof, merkle branch, txid), and the tracker's output equals the kit's own wallet records.

use std::collections::BTreeSet;
use std::time::Duration;

use bitcoin::Amount;
use electrum_spv_core::chain::REGTEST;
use electrum_spv_core::hash::{BlockHash, Txid};
use electrum_spv_core::rpc::VersionRange;
use electrum_spv_core::session::Config;
use electrum_spv_core::sync::tracker::{ScriptRef, TrackerEvent};
use electrum_spv_testkit::chain::{ALICE, BOB};
use electrum_spv_testkit::driver::Driver;
use electrum_spv_testkit::tracker_run::{Tracker, run_to_sync, verified_chain};
use electrum_spv_testkit::{Harness, ReorgTxs, ScriptKind};

const T: Duration = Duration::from_secs(30);
/// Time to verify every kit script's history (a few hundred transactions, three proofs each).
const SYNC: Duration = Duration::from_secs(120);

fn core_txid(t: bitcoin::Txid) -> Txid {
    Txid::from_byte_array(bitcoin::hashes::Hash::to_byte_array(t))
}

/// Verifies every header from genesis; returns (tip height, root of 0..=tip).
fn verified_checkpoint(d: &mut Driver) -> (u32, electrum_spv_core::hash::MerkleNode) {
    let chain = verified_chain(d, T).expect("server headers verify");
    (chain.tip, chain.root)
}

/// Runs the tracker until it is synced; returns the events it reported. No header is given:
/// ElectrumX offers `cp_height` proofs, so the tracker must not want one.
fn run(d: &mut Driver, tracker: &mut Tracker) -> Vec<TrackerEvent> {
    run_to_sync(d, tracker, &[], SYNC)
        .expect("tracker syncs with cp_height proofs only")
        .events
}

fn assert_matches_kit(h: &Harness, tracker: &Tracker, scripts: &[bitcoin::ScriptBuf]) {
    let chain = h.bitcoind.chain();
    let block_hash = |height: u32| -> BlockHash {
        let b = chain.blocks()[height as usize].block_hash();
        BlockHash::from_byte_array(bitcoin::hashes::Hash::to_byte_array(b))
    };
    for (i, script) in scripts.iter().enumerate() {
        let kit: BTreeSet<(Txid, i64, Option<BlockHash>)> = chain
            .history(script)
            .into_iter()
            .map(|(t, hgt)| (core_txid(t), hgt, (hgt > 0).then(|| block_hash(hgt as u32))))
            .collect();
        let ours: BTreeSet<(Txid, i64, Option<BlockHash>)> = tracker
            .history(i)
            .map(|e| (e.txid, e.height.to_i64(), e.block.map(|b| b.hash)))
            .collect();
        assert_eq!(ours, kit, "verified history of script {i}");
        assert_eq!(
            tracker.verified_status(i).unwrap().map(|s| s.to_string()),
            chain.status(script),
            "status of script {i}"
        );
    }
}

#[test]
fn verified_histories_equal_the_kit_records_and_follow_a_new_block() {
    let h = Harness::start().unwrap_or_else(|e| panic!("cannot start ElectrumX: {e}"));
    for versions in [VersionRange::DEFAULT, VersionRange::WITH_1_7] {
        let (_, tracker, scripts, events) = synced_tracker(&h, versions);
        let confirmed = events
            .iter()
            .filter(|e| matches!(e, TrackerEvent::Confirmed { .. }))
            .count();
        let unconfirmed = events
            .iter()
            .filter(|e| matches!(e, TrackerEvent::Unconfirmed { .. }))
            .count();
        assert!(
            confirmed > 4 && unconfirmed > 0,
            "{confirmed} confirmed, {unconfirmed} unconfirmed"
        );
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, TrackerEvent::ServerLied { .. })),
            "{events:?}"
        );
        assert_matches_kit(&h, &tracker, &scripts);
    }

    // A new block confirms the mempool: statuses change, the tracker refetches, and the newly
    // confirmed transactions are reported once their header is under a verified checkpoint.
    let (mut d, mut tracker, scripts, _) = synced_tracker(&h, VersionRange::DEFAULT);
    let cp = tracker.stats().checkpoint_height.expect("checkpoint set");
    let alice = h.bitcoind.chain().wallets()[ALICE]
        .script(ScriptKind::P2tr)
        .to_owned();
    h.bitcoind
        .send(BOB, &alice, Amount::from_sat(40_000))
        .unwrap();
    h.bitcoind.mine(1);
    // Wait for the status notifications, then give the tracker the new verified checkpoint.
    let version = d.session.version().unwrap();
    let _ = d.run_until(Duration::from_secs(5), |ev| {
        tracker.handle_event(version, ev);
        None::<()>
    });
    let (cp2, root2) = verified_checkpoint(&mut d);
    assert_eq!(cp2, cp + 1);
    tracker.set_checkpoint(cp2, root2);
    let events = run(&mut d, &mut tracker);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TrackerEvent::Confirmed { height, .. } if *height == cp2)),
        "{events:?}"
    );
    assert_matches_kit(&h, &tracker, &scripts);
}

/// Connects at `versions`, verifies headers and runs a tracker over every kit script to sync;
/// returns what the sync reported too.
fn synced_tracker(
    h: &Harness,
    versions: VersionRange,
) -> (Driver, Tracker, Vec<bitcoin::ScriptBuf>, Vec<TrackerEvent>) {
    let config = Config {
        versions,
        ..Config::new(&REGTEST)
    };
    let mut d = Driver::connect(h.addr(), config).unwrap();
    d.ready(T).unwrap();
    let (cp, root) = verified_checkpoint(&mut d);
    let scripts: Vec<bitcoin::ScriptBuf> = h
        .bitcoind
        .chain()
        .wallets()
        .iter()
        .flat_map(|w| w.scripts())
        .collect();
    let mut tracker = Tracker::new(Vec::new(), Vec::new());
    tracker.set_max_in_flight(48);
    for s in &scripts {
        tracker.add(ScriptRef::Script(s.as_bytes())).unwrap();
    }
    tracker.set_checkpoint(cp, root);
    let events = run(&mut d, &mut tracker);
    (d, tracker, scripts, events)
}

/// After a reorg: let notifications arrive, re-verify headers, tell the tracker, resync.
fn follow_reorg(d: &mut Driver, tracker: &mut Tracker, fork_height: u32) -> Vec<TrackerEvent> {
    let version = d.session.version().unwrap();
    let mut events = Vec::new();
    let _ = d.run_until(Duration::from_secs(5), |ev| {
        events.extend(tracker.handle_event(version, ev));
        None::<()>
    });
    let (cp, root) = verified_checkpoint(d);
    tracker.set_checkpoint(cp, root);
    tracker.reorg(fork_height);
    events.extend(run(d, tracker));
    while let Some(e) = tracker.poll_event() {
        events.push(e);
    }
    events
}

#[test]
fn reorged_out_transactions_are_removed_and_reburied_ones_reverified() {
    let mut h = Harness::start().unwrap_or_else(|e| panic!("cannot start ElectrumX: {e}"));
    // Confirm some payments in the last two blocks, so that a 2-block reorg touches them.
    let alice = h.bitcoind.chain().wallets()[ALICE]
        .script(ScriptKind::P2wpkh)
        .to_owned();
    let paid = h
        .bitcoind
        .send(BOB, &alice, Amount::from_sat(30_000))
        .unwrap();
    h.bitcoind.mine(2);
    // Connect only once ElectrumX has indexed them: the verified checkpoint is its tip.
    let (kit_tip, _) = h.bitcoind.tip();
    h.electrumx
        .wait_for_height(kit_tip, T)
        .expect("ElectrumX indexes the new blocks");
    let (mut d, mut tracker, scripts, _) = synced_tracker(&h, VersionRange::DEFAULT);
    let (tip, _) = h.bitcoind.tip();
    assert!(
        tracker
            .history(scripts.iter().position(|s| *s == alice).unwrap())
            .any(|e| e.txid == core_txid(paid) && e.block.is_some())
    );

    // The reorged blocks' transactions go back to the mempool: reported unconfirmed again.
    h.bitcoind.reorg_with(2, ReorgTxs::ToMempool);
    let events = follow_reorg(&mut d, &mut tracker, tip - 1);
    assert!(
        events.iter().any(
            |e| matches!(e, TrackerEvent::Unconfirmed { txid, .. } if *txid == core_txid(paid))
        ),
        "{events:?}"
    );
    assert_matches_kit(&h, &tracker, &scripts);

    // Mined again, then reorged away and dropped: removed from the verified history.
    h.bitcoind.mine(1);
    let (tip, _) = h.bitcoind.tip();
    let events = follow_reorg(&mut d, &mut tracker, tip);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TrackerEvent::Confirmed { txid, .. } if *txid == core_txid(paid)))
    );
    h.bitcoind.reorg_with(1, ReorgTxs::Drop);
    let events = follow_reorg(&mut d, &mut tracker, tip);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TrackerEvent::Removed { txid, .. } if *txid == core_txid(paid))),
        "{events:?}"
    );
    assert_matches_kit(&h, &tracker, &scripts);
}
