//! Core's script tracker against a server without `cp_height` (the kit's mainnet replay
//! server answers as electrs does) on real mainnet data: the refused header proof is not a
//! lie; the tracker asks the caller for headers it verified (here, periods 0 and 411 checked
//! between their checkpoints), and reports every transaction proven, in chain order.

use std::time::{Duration, Instant};

use electrum_spv_core::chain::{Anchor, HeaderVerifier, MAINNET};
use electrum_spv_core::hash::MerkleNode;
use electrum_spv_core::session::Config;
use electrum_spv_core::sync::tracker::{
    ScriptRef, ScriptSlot, ScriptTracker, TrackerEvent, TxSlot,
};
use electrum_spv_testkit::driver::Driver;
use electrum_spv_testkit::replay::{self, ReplayLie, ReplayServer, TIP_HEIGHT};

const T: Duration = Duration::from_secs(30);

/// The verified header at `height` (periods 0 and 411 of the real data, each verified from
/// its anchor checkpoint to the next).
fn verified_header(height: u32) -> [u8; 80] {
    let (file, first): (&str, u32) = if height < 10_237 {
        ("headers_0_10236.bin", 0)
    } else {
        ("headers_822528_830592.bin", 822_528)
    };
    let data = std::fs::read(format!(
        "{}/../core/tests/data/mainnet/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let start = height / 2016 * 2016;
    let mut verifier = HeaderVerifier::new(&MAINNET, Anchor::at_height(&MAINNET, start).unwrap());
    let mut found = None;
    for (h, raw) in (start..start + 2016).zip(
        data.chunks_exact(80)
            .skip((start - first) as usize)
            .map(|c| <[u8; 80]>::try_from(c).unwrap()),
    ) {
        verifier.push(&raw).expect("real headers verify");
        if h == height {
            found = Some(raw);
        }
    }
    found.unwrap()
}

#[test]
fn a_server_without_cp_height_is_not_a_liar() {
    let server = ReplayServer::start(ReplayLie::None).unwrap();
    let examples = replay::examples().unwrap();
    let mut d = Driver::connect(server.addr(), Config::new(&MAINNET)).unwrap();
    let version = d.ready(T).unwrap();
    let mut tracker = ScriptTracker::new([ScriptSlot::EMPTY; 8], [TxSlot::EMPTY; 128]);
    for e in &examples {
        tracker.add(ScriptRef::Script(e.script.as_bytes())).unwrap();
    }
    // A checkpoint the server cannot prove against (it has no cp_height at all).
    tracker.set_checkpoint(TIP_HEIGHT, MerkleNode::default());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut events = Vec::new();
    loop {
        while let Some(height) = tracker.header_wanted() {
            tracker.provide_header(height, &verified_header(height));
        }
        tracker.poll(d.now(), &mut *d.session).unwrap();
        if tracker.is_synced() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not synced: {:?}",
            tracker.stats()
        );
        let _ = d.run_until(Duration::from_millis(200), |ev| {
            let e = tracker.handle_event(version, ev);
            let any = e.is_some();
            events.extend(e);
            while let Some(e) = tracker.poll_event() {
                events.push(e);
            }
            any.then_some(())
        });
    }
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, TrackerEvent::ServerLied { .. })),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TrackerEvent::HeaderWanted { .. })),
        "the refusal is reported as a header to provide: {events:?}"
    );
    for (i, e) in examples.iter().enumerate() {
        let mut got: Vec<_> = tracker.history(i).collect();
        got.sort_by_key(|entry| tracker.chain_position(i, &entry.txid));
        for entry in &got {
            // The block time reported is the real header's time field (bytes 68..72).
            let (block, height) = (entry.block.unwrap(), entry.height.to_i64() as u32);
            let header = verified_header(height);
            let time = u32::from_le_bytes(header[68..72].try_into().unwrap());
            assert_eq!(block.time, time, "{} at {height}", entry.txid);
        }
        let got: Vec<(String, i64, String)> = got
            .iter()
            .map(|e| {
                let block = e.block.unwrap();
                (
                    e.txid.to_string(),
                    e.height.to_i64(),
                    block.hash.to_string(),
                )
            })
            .collect();
        let want: Vec<(String, i64, String)> = e
            .history
            .iter()
            .map(|t| {
                (
                    t.txid.to_string(),
                    i64::from(t.height),
                    t.block_hash.to_string(),
                )
            })
            .collect();
        assert_eq!(got, want, "{}", e.name);
        assert_eq!(
            tracker.verified_status(i).unwrap().map(|s| s.to_string()),
            e.status,
            "{}",
            e.name
        );
    }
}
