//! `p2p::P2pHeaders`: real mainnet headers, as `headers` messages through a `Peer`, into the
//! same `HeaderVerifier` the Electrum side uses; and the message rules on crafted input.

mod common;

use common::headers;
use electrum_spv_core::chain::{Anchor, AnchorHash, HeaderErrorKind, HeaderVerifier, MAINNET};
use electrum_spv_core::hash::BlockHash;
use electrum_spv_core::p2p::headers::MAX_UNCONNECTING;
use electrum_spv_core::p2p::*;

const RECENT: &str = "mainnet/headers_822528_830592.bin";
const RECENT_START: u32 = 822_528;
const EARLY: &str = "mainnet/headers_0_10236.bin";

fn list(hs: &[[u8; 80]]) -> Vec<PeerEvent> {
    let mut events = vec![PeerEvent::ListStart {
        command: Command::Headers,
        count: hs.len() as u32,
    }];
    events.extend(hs.iter().map(|h| PeerEvent::Header(*h)));
    events.push(PeerEvent::ListEnd {
        command: Command::Headers,
    });
    events
}

fn apply(sync: &mut P2pHeaders, events: &[PeerEvent]) -> Result<Option<HeadersStep>, HeadersFault> {
    let mut step = None;
    for e in events {
        if let Some(s) = sync.handle(e)? {
            step = Some(s);
        }
    }
    Ok(step)
}

fn recent() -> P2pHeaders {
    let anchor = Anchor::at_height(&MAINNET, RECENT_START).unwrap();
    P2pHeaders::new(HeaderVerifier::new(&MAINNET, anchor))
}

/// A ready peer, handshaken with frames written by the crate's own encoder.
fn ready_peer() -> Peer<'static> {
    let config = PeerConfig {
        magic: Magic::MAINNET,
        services: 0,
        receiver: NetAddr {
            services: 0,
            ip: [0; 16],
            port: 8333,
        },
        user_agent: b"/t/",
        start_height: 0,
        relay: false,
        unix_time: electrum_spv_core::time::UnixTime::from_secs(0),
        handshake_timeout: electrum_spv_core::time::Duration::from_millis(1_000),
        ping_timeout: electrum_spv_core::time::Duration::from_millis(1_000),
        request_timeout: electrum_spv_core::time::Duration::from_millis(1_000),
    };
    let mut peer = Peer::new(PeerStorage::owned(), config, at(0), 1);
    let version = Version {
        version: 70016,
        services: 9,
        timestamp: 0,
        receiver: config.receiver,
        sender: config.receiver,
        nonce: 2,
        user_agent: b"/Satoshi:27.0.0/",
        start_height: 830_592,
        relay: Some(true),
        extra: &[],
    };
    let mut input = vec![0u8; 300];
    let mut n = encode(Magic::MAINNET, &Outgoing::Version(version), &mut input).unwrap();
    n += encode(Magic::MAINNET, &Outgoing::Verack, &mut input[n..]).unwrap();
    assert_eq!(peer.handle_input(at(0), &input[..n]), n);
    assert!(matches!(peer.poll_event(), Some(PeerEvent::Ready(_))));
    let mut sink = [0u8; 1024];
    while peer.poll_transmit(&mut sink) > 0 {}
    peer
}

#[test]
fn eight_thousand_mainnet_headers_stream_through_a_peer_into_the_verifier() {
    let hs = headers(RECENT);
    let mut sync = recent();
    // From a checkpoint anchor the locator is the checkpointed parent.
    let AnchorHash::Checkpoint(parent) = sync.verifier().anchor().expected else {
        panic!("not a checkpoint anchor")
    };
    let request = sync.request();
    assert!(matches!(
        request.outgoing(),
        Outgoing::GetHeaders { locator: [p], .. } if *p == parent
    ));
    let mut peer = ready_peer();
    let mut frame = vec![0u8; 9 + 2_000 * 81 + 24];
    let mut steps = Vec::new();
    for batch in hs.chunks(MAX_HEADERS as usize) {
        let request = sync.request();
        peer.send(at(0), &request.outgoing()).unwrap();
        let mut sink = [0u8; 1024];
        while peer.poll_transmit(&mut sink) > 0 {}
        let n = encode(Magic::MAINNET, &Outgoing::Headers(batch), &mut frame).unwrap();
        // Fed in odd pieces; every event goes to the sync as it comes.
        for piece in frame[..n].chunks(997) {
            let mut rest = piece;
            loop {
                let used = peer.handle_input(at(1), rest);
                rest = &rest[used..];
                while let Some(event) = peer.poll_event() {
                    if let Some(step) = sync.handle(&event).unwrap() {
                        steps.push(step);
                    }
                }
                if rest.is_empty() {
                    break;
                }
            }
        }
    }
    assert_eq!(
        steps,
        [
            HeadersStep::More,
            HeadersStep::More,
            HeadersStep::More,
            HeadersStep::More,
            HeadersStep::Synced
        ]
    );
    let tip = *sync.tip().unwrap();
    assert_eq!(tip.height, RECENT_START + hs.len() as u32 - 1);
    let last = electrum_spv_core::hash::sha256d(hs.last().unwrap());
    assert_eq!(tip.hash, BlockHash::from_byte_array(last));
    assert!(peer.is_ready());
    // The next request continues from the tip.
    assert!(matches!(
        sync.request().outgoing(),
        Outgoing::GetHeaders { locator: [t], .. } if *t == tip.hash
    ));
    // The block announced again (two connections, or `sendheaders`) changes nothing.
    assert_eq!(
        apply(&mut sync, &list(&hs[hs.len() - 1..])),
        Ok(Some(HeadersStep::Synced))
    );
    assert_eq!(sync.tip().unwrap().height, tip.height);
}

#[test]
fn a_genesis_sync_first_asks_for_genesis_itself() {
    let hs = headers(EARLY);
    let mut sync = P2pHeaders::new(HeaderVerifier::new(&MAINNET, Anchor::genesis(&MAINNET)));
    let request = sync.request();
    let Outgoing::GetHeaders { locator, stop, .. } = request.outgoing() else {
        panic!()
    };
    assert!(locator.is_empty());
    assert_eq!(stop, MAINNET.genesis_hash);
    assert_eq!(
        apply(&mut sync, &list(&hs[..1])),
        Ok(Some(HeadersStep::More))
    );
    assert_eq!(
        apply(&mut sync, &list(&hs[1..2001])),
        Ok(Some(HeadersStep::More))
    );
    assert_eq!(sync.tip().unwrap().height, 2000);
    // Before genesis is verified, any other first header does not connect (a late answer
    // to an earlier request, a block announced meanwhile): not a fault, nothing verified.
    let mut other = P2pHeaders::new(HeaderVerifier::new(&MAINNET, Anchor::genesis(&MAINNET)));
    assert_eq!(
        apply(&mut other, &list(&hs[5..9])),
        Ok(Some(HeadersStep::Unconnecting))
    );
    let mut bad = hs[0];
    bad[0] ^= 1;
    assert_eq!(
        apply(&mut other, &list(&[bad])),
        Ok(Some(HeadersStep::Unconnecting))
    );
    assert!(other.tip().is_none());
    assert_eq!(
        apply(&mut other, &list(&hs[..1])),
        Ok(Some(HeadersStep::More))
    );
}

#[test]
fn a_header_without_proof_of_work_is_a_fault_and_those_before_it_stay() {
    let hs = headers(RECENT);
    let mut sync = recent();
    let mut batch = hs[..10].to_vec();
    batch[6][76] ^= 0x55; // the nonce: the hash no longer meets the target
    let err = apply(&mut sync, &list(&batch)).unwrap_err();
    let HeadersFault::Invalid(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(e.height, RECENT_START + 6);
    assert_eq!(e.kind, HeaderErrorKind::InsufficientProofOfWork);
    assert_eq!(sync.tip().unwrap().height, RECENT_START + 5);
}

#[test]
fn a_gap_inside_one_message_is_a_fault() {
    let hs = headers(RECENT);
    let mut sync = recent();
    let batch = [hs[0], hs[1], hs[3]];
    assert_eq!(
        apply(&mut sync, &list(&batch)),
        Err(HeadersFault::NotContinuous { index: 2 })
    );
}

#[test]
fn unconnecting_messages_are_tolerated_up_to_cores_limit() {
    let hs = headers(RECENT);
    let mut sync = recent();
    assert_eq!(
        apply(&mut sync, &list(&hs[..100])),
        Ok(Some(HeadersStep::Synced))
    );
    // A block announced whose parent we lack: ask again, not a fault...
    for _ in 0..MAX_UNCONNECTING {
        assert_eq!(
            apply(&mut sync, &list(&hs[200..201])),
            Ok(Some(HeadersStep::Unconnecting))
        );
    }
    assert_eq!(sync.tip().unwrap().height, RECENT_START + 99);
    // ...until one too many in a row.
    assert_eq!(
        apply(&mut sync, &list(&hs[200..201])),
        Err(HeadersFault::TooManyUnconnecting)
    );
    // A connecting message resets the count.
    let mut sync = recent();
    apply(&mut sync, &list(&hs[..100])).unwrap();
    for _ in 0..MAX_UNCONNECTING {
        apply(&mut sync, &list(&hs[200..201])).unwrap();
    }
    assert_eq!(
        apply(&mut sync, &list(&hs[100..101])),
        Ok(Some(HeadersStep::Synced))
    );
    assert_eq!(
        apply(&mut sync, &list(&hs[200..201])),
        Ok(Some(HeadersStep::Unconnecting))
    );
    // An empty answer: nothing newer.
    assert_eq!(apply(&mut sync, &list(&[])), Ok(Some(HeadersStep::Synced)));
}

#[test]
fn a_refused_headers_message_is_a_fault_and_a_bad_checksum_is_not() {
    let hs = headers(RECENT);
    let mut sync = recent();
    apply(&mut sync, &list(&hs[..10])).unwrap();
    // The reader refused a message from its count: no list start came, yet it is a fault
    // (before, it was ignored and the request's timeout read as "synced").
    let refused = MessageError::TooManyItems {
        command: Command::Headers,
        count: 2_001,
        cap: MAX_HEADERS,
    };
    assert_eq!(
        sync.handle(&PeerEvent::Dropped(refused)),
        Err(HeadersFault::Malformed(refused))
    );
    // A non-zero transaction count in the middle of a message: a fault, the list abandoned.
    let mut events = list(&hs[10..20]);
    events.truncate(5);
    apply(&mut sync, &events).unwrap();
    let malformed = MessageError::Malformed {
        command: Command::Headers,
        why: message::Malformed::NonZeroTxCount,
    };
    assert_eq!(
        sync.handle(&PeerEvent::Dropped(malformed)),
        Err(HeadersFault::Malformed(malformed))
    );
    // Refused messages of other commands are not this sync's business.
    let inv = MessageError::TooManyItems {
        command: Command::Inv,
        count: 50_001,
        cap: MAX_INV_ITEMS,
    };
    assert_eq!(sync.handle(&PeerEvent::Dropped(inv)), Ok(None));
    // A bad checksum is not a fault (Core drops the message and keeps the peer): the message
    // is lost, and asked for again; the rest of it is ignored.
    let mut events = list(&hs[10..20]);
    events.truncate(5);
    apply(&mut sync, &events).unwrap();
    let bad = MessageError::Frame(FrameError::BadChecksum {
        command: Command::Headers,
    });
    assert_eq!(
        sync.handle(&PeerEvent::Dropped(bad)),
        Ok(Some(HeadersStep::Lost))
    );
    assert_eq!(sync.handle(&PeerEvent::Header(hs[14])), Ok(None));
    // Headers verified before stay; the sync goes on.
    assert_eq!(sync.tip().unwrap().height, RECENT_START + 13);
    assert_eq!(
        apply(&mut sync, &list(&hs[14..20])),
        Ok(Some(HeadersStep::Synced))
    );
}

#[test]
fn sizes_are_bounded() {
    use electrum_spv_core::p2p::broadcast::TX_STATUS_MAX_SIZE;
    use electrum_spv_core::p2p::headers::P2P_HEADERS_MAX_SIZE;
    let sizes = (
        size_of::<P2pHeaders>(),
        size_of::<TxStatus>(),
        size_of::<BroadcastTable<[TxStatus; 0]>>(),
    );
    assert!(sizes.0 <= P2P_HEADERS_MAX_SIZE, "{sizes:?}");
    assert!(sizes.1 <= TX_STATUS_MAX_SIZE, "{sizes:?}");
    assert!(sizes.2 <= 16, "{sizes:?}");
}

/// Caller time `ms` milliseconds after the origin.
fn at(ms: u64) -> electrum_spv_core::time::Instant {
    electrum_spv_core::time::Instant::from_millis(ms)
}
