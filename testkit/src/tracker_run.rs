//! Core's [`ScriptTracker`] run to sync over a [`Driver`]: the loop the tracker tests and the
//! interop matrix share. Headers are verified from genesis first; their merkle root at the tip
//! is the checkpoint `cp_height` proofs must reach, and the headers themselves answer the
//! tracker when a server has no `cp_height` proofs (electrs).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use electrum_spv_core::accumulator::MerkleAccumulator;
use electrum_spv_core::chain::{Anchor, HeaderVerifier, REGTEST};
use electrum_spv_core::hash::MerkleNode;
use electrum_spv_core::header::HEADER_SIZE;
use electrum_spv_core::session::{Request, response};
use electrum_spv_core::sync::tracker::{ScriptSlot, ScriptTracker, TrackerEvent, TxSlot};

use crate::driver::{Driver, OwnedEvent};

/// The tracker with tables that grow as histories arrive.
pub type Tracker = ScriptTracker<Vec<ScriptSlot>, Vec<TxSlot>>;

/// Most headers one `blockchain.block.headers` request asks for (every server's limit).
const HEADERS_PER_REQUEST: u32 = 2016;

/// The server's header chain, every header verified from the regtest genesis.
pub struct VerifiedChain {
    /// Height of the last header.
    pub tip: u32,
    /// Merkle root of the block hashes `0..=tip`: the checkpoint for `cp_height = tip`.
    pub root: MerkleNode,
    /// The headers, by height.
    pub headers: Vec<[u8; HEADER_SIZE]>,
}

/// A tracker run to sync.
pub struct Synced {
    /// What the tracker reported, in order.
    pub events: Vec<TrackerEvent>,
    /// Headers handed to the tracker because the server refused `cp_height` proofs.
    pub headers_provided: usize,
}

/// The result of a call, or why there is none.
fn result_of(d: &mut Driver, request: &Request<'_>, timeout: Duration) -> Result<Vec<u8>, String> {
    match d
        .call(request, timeout)
        .map_err(|e| format!("{request:?}: {e}"))?
    {
        OwnedEvent::Response { result, .. } => Ok(result),
        other => Err(format!("{request:?}: {other:?}")),
    }
}

/// Fetches and verifies every header from genesis to the server's tip.
///
/// # Errors
/// A failed call, a malformed answer, or a header that breaks a rule.
pub fn verified_chain(d: &mut Driver, timeout: Duration) -> Result<VerifiedChain, String> {
    let raw = result_of(d, &Request::HeadersSubscribe, timeout)?;
    let (tip, _) = response::headers_subscribe(&raw).map_err(|e| format!("{e:?}"))?;
    let mut verifier = HeaderVerifier::new(&REGTEST, Anchor::genesis(&REGTEST));
    let mut acc = MerkleAccumulator::new();
    let mut headers = Vec::new();
    let mut start = 0;
    while start <= tip {
        let count = HEADERS_PER_REQUEST.min(tip - start + 1);
        let request = Request::BlockHeaders {
            start_height: start,
            count,
            cp_height: 0,
        };
        let raw = result_of(d, &request, timeout)?;
        let got = response::block_headers(&raw).map_err(|e| format!("{e:?}"))?;
        for header in got.headers() {
            let header = header.map_err(|e| format!("{e:?}"))?;
            let hash = verifier
                .push(&header)
                .map_err(|e| format!("header {}: {e:?}", headers.len()))?;
            acc.push_block_hash(&hash).map_err(|e| format!("{e:?}"))?;
            headers.push(header);
        }
        if headers.len() as u32 != start + count {
            return Err(format!("asked {count} headers from {start}, got fewer"));
        }
        start += count;
    }
    let root = acc.root().ok_or("no headers")?;
    Ok(VerifiedChain { tip, root, headers })
}

/// Runs `tracker` until it is synced (or `within` passes), giving it the verified `headers`
/// (by height) it wants; returns what it reported.
///
/// # Errors
/// Not synced in time, a request the session refused, or a header wanted beyond `headers`.
pub fn run_to_sync(
    d: &mut Driver,
    tracker: &mut Tracker,
    headers: &[[u8; HEADER_SIZE]],
    within: Duration,
) -> Result<Synced, String> {
    let deadline = Instant::now() + within;
    let mut synced = Synced {
        events: Vec::new(),
        headers_provided: 0,
    };
    let version = d.session.version().ok_or("not negotiated")?;
    loop {
        tracker
            .poll(d.now(), &mut *d.session)
            .map_err(|e| format!("request refused: {e:?}"))?;
        let wanted: BTreeSet<u32> = tracker.headers_wanted().collect();
        for height in wanted {
            let header = headers
                .get(height as usize)
                .ok_or_else(|| format!("header {height} wanted beyond the verified headers"))?;
            tracker.provide_header(height, header);
            synced.headers_provided += 1;
        }
        if tracker.is_synced() {
            return Ok(synced);
        }
        if Instant::now() >= deadline {
            let events = &synced.events;
            return Err(format!(
                "tracker did not sync; {:?}; {} events, last: {:?}",
                tracker.stats(),
                events.len(),
                &events[events.len().saturating_sub(4)..]
            ));
        }
        let _ = d.run_until(Duration::from_millis(500), |ev| {
            let e = tracker.handle_event(version, ev);
            let mut any = e.is_some();
            synced.events.extend(e);
            while let Some(e) = tracker.poll_event() {
                synced.events.push(e);
                any = true;
            }
            any.then_some(())
        });
    }
}
