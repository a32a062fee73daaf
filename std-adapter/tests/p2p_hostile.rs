//! `p2p::PeerPool` against hostile scripted peers, each bound to its own 127.0.0.x address,
//! next to honest ones that must stay connected and usable: a cut frame, `wtxidrelay` after
//! `verack`, lists over their item bound (from the count, and with their honest length),
//! headers with bad proof of work or that do not connect, a Sybil serving other bytes under our
//! txid, a `getdata` for a transaction never announced to the asker, and a ping flood.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bitcoin::consensus::encode::serialize;
use electrum_spv::Error;
use electrum_spv::Network;
use electrum_spv::ReconnectPolicy;
use electrum_spv::core::chain::{Anchor, HeaderErrorKind, HeaderVerifier};
use electrum_spv::core::hash::{BlockHash, sha256d};
use electrum_spv::core::header::CompactTarget;
use electrum_spv::core::p2p::{
    Command as P2pCommand, FrameError, HeadersFault, InvType, InvVector, MAX_HEADERS,
    MAX_HEADERS_PAYLOAD, MAX_INV_ITEMS, MAX_INV_PAYLOAD, MessageError, P2pHeaders, PeerError,
    PeerEvent,
};
use electrum_spv::p2p::{
    BroadcastOptions, DropReason, NodeId, OwnedMessage, PeerAddr, PeerPool, PeerPoolConfig,
};
use electrum_spv_testkit::chain::Chain;
use electrum_spv_testkit::p2p_peer::{Behaviour, FLOOD_PINGS, PeerScript, ScriptedPeer};

const WAIT: Duration = Duration::from_secs(8);

/// Short timeouts so hostile peers are found out quickly.
fn config() -> PeerPoolConfig {
    let mut c = PeerPoolConfig::new(Network::Regtest);
    c.connection.handshake_timeout = Duration::from_secs(2);
    c.connection.ping_interval = Duration::from_millis(200);
    c.connection.ping_timeout = Duration::from_secs(1);
    c.connection.request_timeout = Duration::from_secs(2);
    c.connect_timeout = Duration::from_secs(2);
    c.reconnect = Some(ReconnectPolicy {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(400),
        max_attempts: None,
    });
    c
}

/// A scripted peer listening on 127.0.0.`host`.
fn at(host: u8, script: PeerScript) -> ScriptedPeer {
    let ip = IpAddr::from([127, 0, 0, host]);
    ScriptedPeer::start_at(SocketAddr::new(ip, 0), script).unwrap()
}

fn addr(p: &ScriptedPeer) -> PeerAddr {
    PeerAddr::new(p.addr().ip().to_string(), p.addr().port())
}

fn node(p: &ScriptedPeer) -> NodeId {
    addr(p).node_id()
}

fn honest(name: &str) -> PeerScript {
    PeerScript {
        user_agent: name.into(),
        ..PeerScript::honest()
    }
}

/// The pool completed the handshake with `p`, and `p` has read our `verack` (so what it
/// sends from now on goes to that connection).
fn ready(pool: &PeerPool, p: &ScriptedPeer) -> bool {
    pool.info(&node(p)).is_some() && p.ready_connections() >= 1
}

/// The first drop recorded for `p`.
fn first_drop(pool: &PeerPool, p: &ScriptedPeer) -> Option<electrum_spv::p2p::DroppedPeer> {
    let n = node(p);
    pool.dropped().into_iter().find(|d| d.node == n)
}

/// The honest peer is listed, was never dropped, and an announcement of it still arrives.
async fn honest_still_usable(pool: &PeerPool, good: &ScriptedPeer, marker: u8) {
    let good_node = node(good);
    let up = |pool: &PeerPool| ready(pool, good);
    assert!(pool.wait_until(WAIT, up).await, "{:?}", pool.dropped());
    assert!(
        !pool.dropped().iter().any(|d| d.node == good_node),
        "{:?}",
        pool.dropped()
    );
    let mut invs = pool.invs();
    let item = InvVector {
        kind: InvType::TX,
        hash: [marker; 32],
    };
    assert_eq!(good.announce(&[item]), 1);
    let got = tokio::time::timeout(WAIT, async {
        loop {
            let i = invs.recv().await.unwrap();
            if i.hash == item.hash {
                return i;
            }
        }
    })
    .await
    .expect("the honest peer's announcement");
    assert_eq!(got.peer, good_node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_frame_is_eof_or_ping_timeout_and_never_used() {
    let good = at(2, honest("/good/"));
    let closes = at(3, PeerScript::hostile(Behaviour::TruncatedThenClose));
    let stalls = at(4, PeerScript::hostile(Behaviour::TruncatedThenStall));
    let pool = PeerPool::new(config());
    let mut invs = pool.invs();
    for p in [&good, &closes, &stalls] {
        pool.add_peer(addr(p));
    }
    let both = |p: &PeerPool| first_drop(p, &closes).is_some() && first_drop(p, &stalls).is_some();
    assert!(pool.wait_until(WAIT, both).await, "{:?}", pool.dropped());
    let closed = first_drop(&pool, &closes).unwrap();
    assert_eq!(closed.reason, DropReason::Eof, "{closed:?}");
    assert!(closed.was_ready);
    let stalled = first_drop(&pool, &stalls).unwrap();
    // Silent after the cut frame: our ping gets no pong.
    assert_eq!(stalled.reason, DropReason::PingTimeout, "{stalled:?}");
    assert!(stalled.was_ready);
    // Neither is a protocol violation: both are dialed again (and cut again).
    let again = |_: &PeerPool| closes.accepted() >= 2 && stalls.accepted() >= 2;
    assert!(pool.wait_until(WAIT, again).await);
    // The whole first item of the cut `inv` was read, but the list never ended: no item of it
    // is used.
    while let Ok(item) = invs.try_recv() {
        assert_ne!(item.hash, [0x77; 32], "{item:?}");
    }
    honest_still_usable(&pool, &good, 0x21).await;
    while let Ok(item) = invs.try_recv() {
        assert_ne!(item.hash, [0x77; 32], "{item:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wtxidrelay_after_verack_is_a_violation() {
    // An honest 70016 peer sends `wtxidrelay` before its `verack`: accepted, negotiated.
    let good = at(
        5,
        PeerScript {
            version: 70016,
            ..honest("/good-70016/")
        },
    );
    let late = at(6, PeerScript::hostile(Behaviour::WtxidRelayAfterVerack));
    let pool = PeerPool::start(&[addr(&good), addr(&late)], config());
    let dropped = |p: &PeerPool| first_drop(p, &late).is_some() && ready(p, &good);
    assert!(pool.wait_until(WAIT, dropped).await, "{:?}", pool.dropped());
    let d = first_drop(&pool, &late).unwrap();
    assert_eq!(
        d.reason,
        DropReason::Peer(PeerError::AfterVerack {
            command: P2pCommand::WtxidRelay
        })
    );
    assert!(d.was_ready, "the handshake had completed");
    assert!(d.reason.is_protocol_violation());
    let info = pool.info(&node(&good)).unwrap();
    assert_eq!(info.version, 70016);
    assert!(info.wtxid_relay, "negotiated before verack");
    honest_still_usable(&pool, &good, 0x22).await;
    // A violator is not dialed again.
    assert_eq!(late.accepted(), 1);
}

/// Waits for `(from, Dropped(_))` on the pool's event stream.
async fn dropped_event(
    events: &mut tokio::sync::broadcast::Receiver<(NodeId, PeerEvent)>,
    from: &NodeId,
) -> MessageError {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await.unwrap() {
                (n, PeerEvent::Dropped(e)) if &n == from => return e,
                _ => {}
            }
        }
    })
    .await
    .expect("a dropped message")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inv_over_its_item_bound() {
    let good = at(7, honest("/good/"));
    let count = at(8, PeerScript::hostile(Behaviour::InvCountOverCap));
    let whole = at(9, PeerScript::hostile(Behaviour::InvOverCap));
    let pool = PeerPool::new(config());
    let mut events = pool.events();
    let mut invs = pool.invs();
    for p in [&good, &count, &whole] {
        pool.add_peer(addr(p));
    }
    // A count over the bound in a frame within the cap: refused from the count, the rest of
    // the payload skipped, the connection kept.
    let e = dropped_event(&mut events, &node(&count)).await;
    assert_eq!(
        e,
        MessageError::TooManyItems {
            command: P2pCommand::Inv,
            count: u64::from(MAX_INV_ITEMS) + 1,
            cap: MAX_INV_ITEMS,
        }
    );
    // A real 50,001-item inv is longer than the command's cap: refused from the frame header,
    // before any payload byte, and the stream cannot go on.
    let gone = |p: &PeerPool| first_drop(p, &whole).is_some();
    assert!(pool.wait_until(WAIT, gone).await, "{:?}", pool.dropped());
    let d = first_drop(&pool, &whole).unwrap();
    assert_eq!(
        d.reason,
        DropReason::Peer(PeerError::Message(MessageError::Frame(
            FrameError::Oversize {
                command: P2pCommand::Inv,
                len: 3 + (MAX_INV_ITEMS + 1) * 36,
                cap: MAX_INV_PAYLOAD,
            }
        )))
    );
    assert!(d.was_ready);
    assert_eq!(whole.accepted(), 1, "a violator is not dialed again");
    // The peer whose message was dropped stays, and keeps answering pings.
    let pongs = count.pongs();
    let more = |_: &PeerPool| count.pongs() >= pongs + 2;
    assert!(pool.wait_until(WAIT, more).await);
    assert!(ready(&pool, &count));
    assert!(first_drop(&pool, &count).is_none(), "{:?}", pool.dropped());
    honest_still_usable(&pool, &good, 0x23).await;
    // Nothing but the honest announcement reached the stream.
    while let Ok(item) = invs.try_recv() {
        assert_eq!(item.peer, node(&good), "{item:?}");
    }
}

// ----- regtest headers, mined here -----

fn hash(h: &[u8; 80]) -> BlockHash {
    BlockHash::from_byte_array(sha256d(h))
}

fn regtest_genesis() -> [u8; 80] {
    let mut h = [0u8; 80];
    h[0..4].copy_from_slice(&1u32.to_le_bytes());
    let merkle = BlockHash::from_display_hex(
        b"4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
    )
    .unwrap();
    h[36..68].copy_from_slice(merkle.as_byte_array());
    h[68..72].copy_from_slice(&1_296_688_602u32.to_le_bytes());
    h[72..76].copy_from_slice(&0x207f_ffffu32.to_le_bytes());
    h[76..80].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(hash(&h), Network::Regtest.params().genesis_hash);
    h
}

/// A header at `height` on `prev`, its nonce the first (from `nonce`) whose proof of work
/// meets the regtest limit (`valid`) or fails it (`!valid`).
fn header(prev: &[u8; 80], height: u32, salt: u8, valid: bool) -> [u8; 80] {
    let mut h = [0u8; 80];
    h[0..4].copy_from_slice(&0x2000_0000u32.to_le_bytes());
    h[4..36].copy_from_slice(hash(prev).as_byte_array());
    h[36] = salt;
    h[37..41].copy_from_slice(&height.to_le_bytes());
    h[68..72].copy_from_slice(&(1_296_688_602 + 600 * height).to_le_bytes());
    h[72..76].copy_from_slice(&0x207f_ffffu32.to_le_bytes());
    let target = CompactTarget(0x207f_ffff).to_target().unwrap();
    for nonce in 0u32.. {
        h[76..80].copy_from_slice(&nonce.to_le_bytes());
        if target.is_met_by(&hash(&h)) == valid {
            break;
        }
    }
    h
}

/// Genesis and `len - 1` headers on it; `salt` makes a distinct branch.
fn regtest_chain(len: usize, salt: u8) -> Vec<[u8; 80]> {
    let mut c = vec![regtest_genesis()];
    while c.len() < len {
        let h = header(c.last().unwrap(), c.len() as u32, salt, true);
        c.push(h);
    }
    c
}

fn new_sync() -> P2pHeaders {
    let params = Network::Regtest.params();
    P2pHeaders::new(HeaderVerifier::new(params, Anchor::genesis(params)))
}

/// A pool with `peers`, all ready.
async fn ready_pool(peers: &[&ScriptedPeer]) -> PeerPool {
    let addrs: Vec<PeerAddr> = peers.iter().map(|p| addr(p)).collect();
    let pool = PeerPool::start(&addrs, config());
    let all = |pool: &PeerPool| peers.iter().all(|p| ready(pool, p));
    assert!(pool.wait_until(WAIT, all).await, "{:?}", pool.dropped());
    pool
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_over_their_item_bound() {
    let chain = regtest_chain(10, 0);
    let good = at(
        10,
        PeerScript {
            chain: chain.clone(),
            ..honest("/good/")
        },
    );
    let count = at(11, PeerScript::hostile(Behaviour::HeadersCountOverCap));
    let whole = at(12, PeerScript::hostile(Behaviour::HeadersOverCap));
    let pool = ready_pool(&[&good, &count, &whole]).await;

    // Count over the bound, frame within the cap: the message is refused from its count (the
    // connection stays) and header sync fails with that fault, never "synced".
    let mut events = pool.events();
    let mut sync = new_sync();
    let err = pool
        .sync_headers(&node(&count), &mut sync, WAIT)
        .await
        .unwrap_err();
    let refused = MessageError::TooManyItems {
        command: P2pCommand::Headers,
        count: u64::from(MAX_HEADERS) + 1,
        cap: MAX_HEADERS,
    };
    assert!(
        matches!(&err, Error::P2pHeaders { fault: HeadersFault::Malformed(e), .. } if *e == refused),
        "{err:?}"
    );
    assert_eq!(dropped_event(&mut events, &node(&count)).await, refused);
    assert!(sync.tip().is_none());
    assert!(ready(&pool, &count), "{:?}", pool.dropped());

    // A real 2,001-header message: refused from the frame header, the peer dropped, and the
    // sync says so at once.
    let started = Instant::now();
    let mut sync = new_sync();
    let err = pool
        .sync_headers(&node(&whole), &mut sync, WAIT)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Disconnected), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let d = first_drop(&pool, &whole).unwrap();
    assert_eq!(
        d.reason,
        DropReason::Peer(PeerError::Message(MessageError::Frame(
            FrameError::Oversize {
                command: P2pCommand::Headers,
                len: 3 + (MAX_HEADERS + 1) * 81,
                cap: MAX_HEADERS_PAYLOAD,
            }
        )))
    );

    // The honest peer serves the chain.
    let mut sync = new_sync();
    pool.sync_headers(&node(&good), &mut sync, WAIT)
        .await
        .unwrap();
    assert_eq!(sync.tip().unwrap().height, 9);
    assert_eq!(sync.tip().unwrap().hash, hash(&chain[9]));
    honest_still_usable(&pool, &good, 0x24).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_with_bad_proof_of_work() {
    let chain = regtest_chain(30, 0);
    let mut bad = chain.clone();
    // Header 15 links to 14 and keeps the regtest bits and time: only its proof of work fails.
    bad[15] = header(&chain[14], 15, 0, false);
    let liar = at(
        13,
        PeerScript {
            chain: bad,
            ..honest("/bad-pow/")
        },
    );
    let good = at(
        14,
        PeerScript {
            chain: chain.clone(),
            ..honest("/good/")
        },
    );
    let pool = ready_pool(&[&good, &liar]).await;
    let mut sync = new_sync();
    let err = pool
        .sync_headers(&node(&liar), &mut sync, WAIT)
        .await
        .unwrap_err();
    match err {
        Error::P2pHeaders {
            peer,
            fault: HeadersFault::Invalid(e),
        } => {
            assert_eq!(peer, node(&liar).to_string());
            assert_eq!(e.height, 15);
            assert_eq!(e.kind, HeaderErrorKind::InsufficientProofOfWork);
        }
        other => panic!("{other:?}"),
    }
    // What came before the bad header stays verified.
    assert_eq!(sync.tip().unwrap().height, 14);
    assert_eq!(sync.tip().unwrap().hash, hash(&chain[14]));
    // The honest peer goes on from there.
    pool.sync_headers(&node(&good), &mut sync, WAIT)
        .await
        .unwrap();
    assert_eq!(sync.tip().unwrap().height, 29);
    honest_still_usable(&pool, &good, 0x25).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_do_not_connect() {
    let chain = regtest_chain(20, 0);
    // Valid headers of another branch, whose first header's parent we do not have.
    let other = regtest_chain(6, 9);
    let unconnecting = other[2..6].to_vec();
    let genesis = vec![chain[0]];

    // A few unconnecting messages, then the peer's chain connects: synced.
    let mut replies = vec![genesis.clone()];
    replies.extend(std::iter::repeat_n(unconnecting.clone(), 3));
    let wanders = at(
        15,
        PeerScript {
            chain: chain.clone(),
            headers_replies: replies,
            ..honest("/wanders/")
        },
    );
    // Only unconnecting messages: after 10 of them, the eleventh is a fault.
    let mut replies = vec![genesis];
    replies.extend(std::iter::repeat_n(unconnecting, 30));
    let lost = at(
        16,
        PeerScript {
            headers_replies: replies,
            ..honest("/lost/")
        },
    );
    let pool = ready_pool(&[&wanders, &lost]).await;

    let mut sync = new_sync();
    pool.sync_headers(&node(&wanders), &mut sync, WAIT)
        .await
        .unwrap();
    assert_eq!(sync.tip().unwrap().height, 19);
    assert_eq!(sync.tip().unwrap().hash, hash(&chain[19]));
    // Genesis; an unconnecting answer, after which the sync restarts from genesis (our tip
    // may not be on the node's chain); two more unconnecting answers to the genesis request;
    // genesis; the chain.
    assert_eq!(wanders.headers_requests(), 6);

    let mut sync = new_sync();
    let err = pool
        .sync_headers(&node(&lost), &mut sync, WAIT)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::P2pHeaders {
                fault: HeadersFault::TooManyUnconnecting,
                ..
            }
        ),
        "{err:?}"
    );
    // The first unconnecting answer restarted the sync from genesis (so nothing is held),
    // then eleven more in a row are the fault.
    assert!(sync.tip().is_none());
    // Genesis, one unconnecting answer, then eleven.
    assert_eq!(lost.headers_requests(), 13);
    honest_still_usable(&pool, &wanders, 0x26).await;
}

// ----- broadcast -----

/// A segwit transaction and the same one with another witness (same txid, other wtxid).
fn segwit_and_malleated() -> (bitcoin::Transaction, bitcoin::Transaction) {
    let chain = Chain::funded().unwrap();
    let tx = chain
        .mempool()
        .iter()
        .find(|t| t.input.iter().any(|i| !i.witness.is_empty()))
        .expect("a segwit transaction in the kit's mempool")
        .clone();
    let mut other = tx.clone();
    let input = other
        .input
        .iter_mut()
        .find(|i| !i.witness.is_empty())
        .unwrap();
    input.witness.push([0x51]);
    assert_eq!(other.compute_txid(), tx.compute_txid());
    assert_ne!(other.compute_wtxid(), tx.compute_wtxid());
    (tx, other)
}

fn txid_inv(tx: &bitcoin::Transaction) -> InvVector {
    use bitcoin::hashes::Hash as _;
    InvVector {
        kind: InvType::TX,
        hash: tx.compute_txid().to_byte_array(),
    }
}

fn recipient(host: u8) -> ScriptedPeer {
    at(
        host,
        PeerScript {
            request_announced: true,
            ..honest("/recipient/")
        },
    )
}

fn serving(host: u8, tx: &bitcoin::Transaction, name: &str) -> ScriptedPeer {
    at(
        host,
        PeerScript {
            txs: vec![serialize(tx)],
            ..honest(name)
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sybil_serving_other_bytes_never_confirms() {
    use bitcoin::hashes::Hash as _;
    let (tx, malleated) = segwit_and_malleated();
    let inv = txid_inv(&tx);

    // Recipient R, Sybil S announcing first, honest H announcing later.
    let r = recipient(17);
    let s = serving(18, &malleated, "/sybil/");
    let h = serving(19, &tx, "/honest-watcher/");
    let pool = ready_pool(&[&r, &s, &h]).await;
    s.announce_after(Duration::from_millis(100), vec![inv]);
    h.announce_after(Duration::from_millis(700), vec![inv]);
    let options = BroadcastOptions {
        recipients: vec![node(&r)],
        announcers: 1,
        timeout: WAIT,
    };
    let report = pool
        .broadcast(&[serialize(&tx)], &options)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        report.txid.to_byte_array(),
        tx.compute_txid().to_byte_array()
    );
    assert_eq!(report.requested_by, vec![node(&r)], "{report:?}");
    assert_eq!(report.mismatched_by, vec![node(&s)], "{report:?}");
    assert_eq!(report.announced_by, vec![node(&h)], "{report:?}");
    assert_eq!(report.verified_by, Some(node(&h)), "{report:?}");
    assert!(report.confirmed, "{report:?}");
    // The recipient got the transaction it asked for, whole.
    assert_eq!(r.received_txs().len(), 1);
    assert_eq!(
        r.received_txs()[0].to_byte_array(),
        tx.compute_txid().to_byte_array()
    );
    // S and H were asked for the bytes.
    assert_eq!(s.received(P2pCommand::GetData), 1);
    assert_eq!(h.received(P2pCommand::GetData), 1);
    drop(pool);

    // Only the Sybil watches: never confirmed.
    let r = recipient(20);
    let s = serving(21, &malleated, "/sybil/");
    let pool = ready_pool(&[&r, &s]).await;
    s.announce_after(Duration::from_millis(100), vec![inv]);
    let options = BroadcastOptions {
        recipients: vec![node(&r)],
        announcers: 1,
        timeout: Duration::from_secs(2),
    };
    let report = pool
        .broadcast(&[serialize(&tx)], &options)
        .await
        .unwrap()
        .remove(0);
    assert!(!report.confirmed, "{report:?}");
    assert_eq!(report.mismatched_by, vec![node(&s)], "{report:?}");
    assert!(report.announced_by.is_empty(), "{report:?}");
    assert_eq!(report.verified_by, None, "{report:?}");
    assert_eq!(report.requested_by, vec![node(&r)], "{report:?}");
    // The Sybil is not dropped for it (it may be a malleated witness on the way).
    assert!(ready(&pool, &s) && ready(&pool, &r), "{:?}", pool.dropped());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getdata_for_a_transaction_not_announced_to_the_asker_gets_notfound() {
    use bitcoin::hashes::Hash as _;
    let (tx, _) = segwit_and_malleated();
    let txid = tx.compute_txid().to_byte_array();
    let wtxid = tx.compute_wtxid().to_byte_array();
    let asks = [
        InvVector {
            kind: InvType::TX,
            hash: txid,
        },
        InvVector {
            kind: InvType::WITNESS_TX,
            hash: txid,
        },
        InvVector {
            kind: InvType::WTX,
            hash: wtxid,
        },
    ];
    let r = recipient(22);
    let nosy = at(23, honest("/nosy/"));
    let pool = ready_pool(&[&r, &nosy]).await;

    // Before any broadcast.
    assert_eq!(
        nosy.send(&electrum_spv::core::p2p::Outgoing::GetData(&asks)),
        1
    );
    // During the broadcast to R: once R has the announcement, the other node asks too.
    let asked = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let start = Instant::now();
            while r.received_items(P2pCommand::Inv).is_empty() && start.elapsed() < WAIT {
                std::thread::sleep(Duration::from_millis(10));
            }
            nosy.send(&electrum_spv::core::p2p::Outgoing::GetData(&asks))
        });
        let options = BroadcastOptions {
            recipients: vec![node(&r)],
            announcers: 1,
            timeout: Duration::from_millis(1500),
        };
        let rt = tokio::runtime::Handle::current();
        let report = tokio::task::block_in_place(|| {
            rt.block_on(pool.broadcast(&[serialize(&tx)], &options))
        })
        .unwrap()
        .remove(0);
        (watcher.join().unwrap(), report)
    });
    let (sent, report) = asked;
    assert_eq!(sent, 1);
    assert_eq!(report.requested_by, vec![node(&r)], "{report:?}");
    assert!(!report.confirmed);
    // R was served; the other node never, though it asked in every form.
    assert_eq!(r.received_txs().len(), 1);
    let start = Instant::now();
    while nosy.received_items(P2pCommand::NotFound).len() < 6 && start.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut want = asks.to_vec();
    want.extend(asks);
    assert_eq!(nosy.received_items(P2pCommand::NotFound), want);
    assert_eq!(nosy.received(P2pCommand::Tx), 0);
    assert!(nosy.received_txs().is_empty());
    assert!(ready(&pool, &nosy) && ready(&pool, &r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_unknown_command_flood_does_not_stall_us() {
    let good = at(24, honest("/good/"));
    let flood = at(25, PeerScript::hostile(Behaviour::Flood));
    let pool = ready_pool(&[&good, &flood]).await;
    let started = Instant::now();
    // Every ping of the flood is answered, in order, while the honest peer stays usable.
    honest_still_usable(&pool, &good, 0x27).await;
    let answered = |_: &PeerPool| flood.received(P2pCommand::Pong) >= FLOOD_PINGS;
    assert!(
        pool.wait_until(WAIT, answered).await,
        "{} pongs of {FLOOD_PINGS}",
        flood.received(P2pCommand::Pong)
    );
    assert!(started.elapsed() < WAIT);
    // Our own pings to both go on (the flooder answers them too).
    let (g, f) = (good.pongs(), flood.pongs());
    let more = |_: &PeerPool| good.pongs() >= g + 2 && flood.pongs() >= f + 2;
    assert!(pool.wait_until(WAIT, more).await);
    assert!(pool.dropped().is_empty(), "{:?}", pool.dropped());
    assert_eq!(pool.peers().len(), 2);
    // A message to the flooder still goes through.
    pool.send(&node(&flood), &OwnedMessage::SendHeaders)
        .unwrap();
    let start = Instant::now();
    while flood.received(P2pCommand::SendHeaders) == 0 && start.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(flood.received(P2pCommand::SendHeaders), 1);
}

/// More than sixteen full `headers` messages: the sync goes on to the node's tip (it used to
/// stop after sixteen full messages, taking them for messages that brought nothing new).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_chain_syncs_to_its_tip() {
    let chain = regtest_chain(40_050, 0);
    let long = at(
        17,
        PeerScript {
            chain: chain.clone(),
            ..honest("/long/")
        },
    );
    let pool = ready_pool(&[&long]).await;
    let mut sync = new_sync();
    pool.sync_headers(&node(&long), &mut sync, WAIT)
        .await
        .unwrap();
    assert_eq!(sync.tip().unwrap().height, 40_049);
    assert_eq!(sync.tip().unwrap().hash, hash(&chain[40_049]));
    // Genesis, twenty full messages, and the last short one.
    assert_eq!(long.headers_requests(), 22);
}
