//! `HeaderSync` against a real ElectrumX 2.0 over the kit's regtest chain: sync from genesis to
//! the kit's tip, follow mined blocks through notifications, switch on a reorg, and sync a
//! chain longer than one 2016-header chunk.

use std::time::{Duration, Instant};

use bitcoin::hashes::Hash;
use electrum_spv_core::MerkleAccumulator;
use electrum_spv_core::chain::{Anchor, ChainTip, REGTEST};
use electrum_spv_core::hash::BlockHash;
use electrum_spv_core::session::Config;
use electrum_spv_core::sync::headers::PADDED_FULL_CHUNK_LINE;
use electrum_spv_core::sync::{HeaderSync, SyncEvent};
use electrum_spv_core::time;
use electrum_spv_testkit::driver::{DRIVER_LINE, Driver, DriverError};
use electrum_spv_testkit::{Chain, Harness};

const T: Duration = Duration::from_secs(30);
/// Headers per request in the long-chain test (half a difficulty period).
const CHUNK: u32 = 1008;

fn core_hash(h: bitcoin::BlockHash) -> BlockHash {
    BlockHash::from_byte_array(h.to_byte_array())
}

fn kit_tip(h: &Harness) -> (u32, BlockHash) {
    let (height, header) = h.bitcoind.tip();
    (height, core_hash(header.block_hash()))
}

fn connect(h: &Harness) -> Driver {
    let mut d = Driver::connect(h.addr(), Config::new(&REGTEST)).expect("connect");
    d.ready(T).expect("negotiated");
    d
}

/// Runs the caller's loop (session + sync) until `f` accepts a sync event; returns it and
/// every sync event seen on the way.
fn run_sync<R>(
    d: &mut Driver,
    sync: &mut HeaderSync,
    timeout: Duration,
    mut f: impl FnMut(&HeaderSync, &SyncEvent) -> Option<R>,
) -> (R, Vec<SyncEvent>) {
    let deadline = Instant::now() + timeout;
    let clock = Instant::now();
    let mut seen = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "timed out; sync events so far: {seen:?}"
        );
        let now = d.now();
        sync.poll(now, &mut d.session).expect("sync poll");
        let got = d.run_until(Duration::from_millis(100), |ev| {
            if std::env::var_os("SYNC_DEBUG").is_some() {
                eprintln!(
                    "event: {}",
                    format!("{ev:?}").chars().take(200).collect::<String>()
                );
            }
            sync.handle_event(time::Instant::ZERO + clock.elapsed().into(), ev)
        });
        match got {
            Ok(ev) => {
                seen.push(ev);
                if let Some(r) = f(sync, &ev) {
                    return (r, seen);
                }
            }
            Err(DriverError::Timeout) => {}
            Err(e) => panic!("driver: {e}; sync events so far: {seen:?}"),
        }
    }
}

fn until_synced_at(d: &mut Driver, sync: &mut HeaderSync, want: BlockHash) -> Vec<SyncEvent> {
    let (_, seen) = run_sync(d, sync, T, |_, ev| match ev {
        SyncEvent::Synced { tip } if tip.hash == want => Some(()),
        SyncEvent::ServerLied(_) | SyncEvent::ReorgTooDeep { .. } => panic!("{ev:?}"),
        _ => None,
    });
    seen
}

#[test]
fn syncs_from_genesis_follows_new_blocks_and_switches_on_a_reorg() {
    let h = Harness::start().expect("kit");
    let mut d = connect(&h);
    let mut sync = HeaderSync::new(&REGTEST, Anchor::genesis(&REGTEST));

    // To the kit's tip, verified from genesis.
    let (height, hash) = kit_tip(&h);
    until_synced_at(&mut d, &mut sync, hash);
    assert_eq!(sync.tip().map(|t| (t.height, t.hash)), Some((height, hash)));
    assert!(sync.is_synced());
    let blocks: Vec<BlockHash> = h
        .bitcoind
        .chain()
        .blocks()
        .iter()
        .map(|b| core_hash(b.block_hash()))
        .collect();
    let mut acc = MerkleAccumulator::new();
    for b in &blocks {
        acc.push_block_hash(b).unwrap();
    }
    assert_eq!(sync.cp_root(), Some((height, acc.root().unwrap())));
    assert_eq!(sync.hash_at(height - 3), Some(blocks[height as usize - 3]));

    // Three new blocks: followed through header notifications alone.
    h.bitcoind.mine(3);
    let (height, hash) = kit_tip(&h);
    until_synced_at(&mut d, &mut sync, hash);
    assert_eq!(sync.tip().unwrap().height, height);

    // reorg(2): the last two blocks replaced by three.
    let before = *sync.tip().unwrap();
    h.bitcoind.reorg(2);
    let (new_height, new_hash) = kit_tip(&h);
    let ((fork_height, new_tip), seen) = run_sync(&mut d, &mut sync, T, |_, ev| match ev {
        SyncEvent::Reorg {
            fork_height,
            new_tip,
        } => Some((*fork_height, *new_tip)),
        SyncEvent::ServerLied(_)
        | SyncEvent::ReorgTooDeep { .. }
        | SyncEvent::ForkRejected { .. } => panic!("{ev:?}"),
        _ => None,
    });
    assert_eq!(fork_height, before.height - 1, "events: {seen:?}");
    let kit_blocks: Vec<BlockHash> = h
        .bitcoind
        .chain()
        .blocks()
        .iter()
        .map(|b| core_hash(b.block_hash()))
        .collect();
    // The reported tip is on the kit's new branch; sync reaches the kit's tip.
    assert_eq!(
        Some(new_tip.hash),
        kit_blocks.get(new_tip.height as usize).copied()
    );
    if new_tip.hash != new_hash {
        until_synced_at(&mut d, &mut sync, new_hash);
    }
    let tip: ChainTip = *sync.tip().unwrap();
    assert_eq!((tip.height, tip.hash), (new_height, new_hash));
    assert_eq!(new_height, before.height + 1);
    assert!(tip.chainwork > before.chainwork);
    for height in fork_height - 2..=new_height {
        assert_eq!(
            sync.hash_at(height),
            Some(kit_blocks[height as usize]),
            "height {height}"
        );
    }
}

#[test]
fn a_chain_longer_than_2016_blocks_syncs_in_several_chunks() {
    let mut chain = Chain::funded().expect("chain");
    chain.mine_empty(2_100);
    let h = Harness::start_with(chain).expect("kit");
    let mut d = connect(&h);
    let (height, hash) = kit_tip(&h);
    assert!(height > 2016);

    // Streamed: full 2016-header periods, each header verified as it arrives.
    let mut sync = HeaderSync::new(&REGTEST, Anchor::genesis(&REGTEST)).with_streaming();
    let started = Instant::now();
    let seen = until_synced_at(&mut d, &mut sync, hash);
    let expected: Vec<u32> = (1..=height / 2016).map(|k| 2016 * k - 1).collect();
    assert_eq!(
        progress(&seen),
        expected,
        "one progress event per full period"
    );
    assert_eq!(sync.tip().map(|t| (t.height, t.hash)), Some((height, hash)));
    eprintln!("streamed {} headers in {:?}", height + 1, started.elapsed());

    // Buffered: the driver buffers whole lines in DRIVER_LINE (400 KiB), but ElectrumX 2.0
    // pads a full 2016-header reply to PADDED_FULL_CHUNK_LINE (512 KiB): ask for half periods.
    const { assert!(DRIVER_LINE < PADDED_FULL_CHUNK_LINE) };
    let mut sync = HeaderSync::new(&REGTEST, Anchor::genesis(&REGTEST)).with_chunk_limit(CHUNK);
    let started = Instant::now();
    let seen = until_synced_at(&mut d, &mut sync, hash);
    let expected: Vec<u32> = (1..=height / CHUNK).map(|k| CHUNK * k - 1).collect();
    assert!(expected.len() >= 2);
    assert_eq!(
        progress(&seen),
        expected,
        "one progress event per chunk below the tip"
    );
    assert_eq!(sync.tip().map(|t| (t.height, t.hash)), Some((height, hash)));
    eprintln!("buffered {} headers in {:?}", height + 1, started.elapsed());
}

fn progress(seen: &[SyncEvent]) -> Vec<u32> {
    seen.iter()
        .filter_map(|e| match e {
            SyncEvent::Progress { height } => Some(*height),
            _ => None,
        })
        .collect()
}
