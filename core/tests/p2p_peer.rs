//! `p2p::Peer`: the handshake and ping/pong, two peers wired in memory and a remote side
//! crafted with rust-bitcoin.

use std::net::{Ipv4Addr, SocketAddr};

use bitcoin::consensus::encode::serialize;
use bitcoin::p2p::address::Address;
use bitcoin::p2p::message::{NetworkMessage, RawNetworkMessage};
use bitcoin::p2p::message_network::VersionMessage;
use bitcoin::p2p::{Magic as BMagic, ServiceFlags};
use electrum_spv_core::p2p::peer::{
    MIN_OUT_CAPACITY, PEER_MAX_SIZE, PROTOCOL_VERSION, REPLY_RESERVE,
};
use electrum_spv_core::p2p::*;

const MAGIC: Magic = Magic::REGTEST;
const TIMEOUT: u64 = 60_000;
const PING_TIMEOUT: u64 = 120_000;
const REQUEST_TIMEOUT: u64 = 30_000;

fn config(user_agent: &[u8]) -> PeerConfig<'_> {
    PeerConfig {
        magic: MAGIC,
        services: 8,
        receiver: NetAddr {
            services: 0,
            ip: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1],
            port: 18444,
        },
        user_agent,
        start_height: 100,
        relay: false,
        unix_time: electrum_spv_core::time::UnixTime::from_secs(1_700_000_000),
        handshake_timeout: electrum_spv_core::time::Duration::from_millis(TIMEOUT),
        ping_timeout: electrum_spv_core::time::Duration::from_millis(PING_TIMEOUT),
        request_timeout: electrum_spv_core::time::Duration::from_millis(REQUEST_TIMEOUT),
    }
}

/// Drains everything `from` has to send.
fn transmit(from: &mut Peer) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 100];
    loop {
        let n = from.poll_transmit(&mut buf);
        if n == 0 {
            return bytes;
        }
        bytes.extend_from_slice(&buf[..n]);
    }
}

/// Feeds `bytes` to `to` in pieces of `split`, draining its events as `handle_input` asks.
fn feed(to: &mut Peer, now: u64, bytes: &[u8], split: usize, events: &mut Vec<PeerEvent>) {
    let mut out = Vec::new();
    for chunk in bytes.chunks(split) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let n = to.handle_input(at(now), rest);
            rest = &rest[n..];
            while let Some(e) = to.poll_event() {
                events.push(e);
            }
            out.extend(transmit(to));
            assert!(n > 0 || to.poll_event().is_none(), "no progress");
        }
    }
    while let Some(e) = to.poll_event() {
        events.push(e);
    }
    // What `to` had to send while it was fed is kept for the caller of `pump`.
    PENDING.with(|p| p.borrow_mut().extend(out));
}

thread_local! {
    static PENDING: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One exchange: everything `a` has to send goes to `b`. Returns `b`'s events.
fn pump(a: &mut Peer, b: &mut Peer, now: u64, split: usize) -> (Vec<PeerEvent>, Vec<u8>) {
    let mut bytes = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    bytes.extend(transmit(a));
    let mut events = Vec::new();
    feed(b, now, &bytes, split, &mut events);
    (events, bytes)
}

/// The commands of a byte stream, decoded with the crate's own reader.
fn commands(bytes: &[u8]) -> Vec<Command> {
    let mut reader = MessageReader::owned(MAGIC);
    let mut rest = bytes;
    let mut out = Vec::new();
    loop {
        let (n, msg) = reader.feed(rest);
        rest = &rest[n..];
        match msg.unwrap() {
            Some(Message::Version(_)) => out.push(Command::Version),
            Some(Message::Verack) => out.push(Command::Verack),
            Some(Message::WtxidRelay) => out.push(Command::WtxidRelay),
            Some(Message::SendAddrV2) => out.push(Command::SendAddrV2),
            Some(Message::Ping(_)) => out.push(Command::Ping),
            Some(Message::Pong(_)) => out.push(Command::Pong),
            Some(other) => panic!("{other:?}"),
            None => return out,
        }
    }
}

fn ready(events: &[PeerEvent]) -> PeerInfo {
    match events {
        [PeerEvent::Ready(info)] => info.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_peers_handshake_and_ping_at_several_splits() {
    for split in [1, 2, 3, 7, 24, 25, 31, 100, 4096] {
        PENDING.with(|p| p.borrow_mut().clear());
        let mut a = Peer::new(PeerStorage::owned(), config(b"/a:1/"), at(0), 0xaaaa);
        let mut b = Peer::new(PeerStorage::owned(), config(b"/b:2/"), at(0), 0xbbbb);
        // a's version to b: b answers wtxidrelay, sendaddrv2, verack (and its own version).
        let (ev, sent) = pump(&mut a, &mut b, 10, split);
        assert!(ev.is_empty(), "{ev:?}");
        assert_eq!(commands(&sent), [Command::Version]);
        // b's version and replies to a: a replies and becomes ready.
        let (ev, sent) = pump(&mut b, &mut a, 20, split);
        assert_eq!(
            commands(&sent),
            [
                Command::Version,
                Command::WtxidRelay,
                Command::SendAddrV2,
                Command::Verack
            ]
        );
        let info = ready(&ev);
        assert_eq!(info.version, PROTOCOL_VERSION);
        assert_eq!(info.services, 8);
        assert_eq!(&info.user_agent[..], b"/b:2/");
        assert_eq!(info.start_height, 100);
        assert!(!info.relay && info.wtxid_relay && info.addrv2);
        assert!(a.is_ready() && !b.is_ready());
        assert_eq!(a.poll_timeout(), None);
        let (ev, _) = pump(&mut a, &mut b, 30, split);
        assert_eq!(&ready(&ev).user_agent[..], b"/a:1/");
        assert!(b.is_ready());

        // a pings at 100; b answers at once; a gets the pong at 137.
        a.ping(at(100), 42).unwrap();
        let (ev, sent) = pump(&mut a, &mut b, 110, split);
        assert!(ev.is_empty());
        assert_eq!(commands(&sent), [Command::Ping]);
        let (ev, sent) = pump(&mut b, &mut a, 137, split);
        assert_eq!(commands(&sent), [Command::Pong]);
        assert_eq!(
            ev,
            [PeerEvent::Pong {
                nonce: 42,
                rtt: ms(37)
            }]
        );
        // Both ways, and the pong after a second ping.
        b.ping(at(200), 7).unwrap();
        a.ping(at(200), 8).unwrap();
        let (ev, _) = pump(&mut b, &mut a, 205, split);
        assert!(ev.is_empty(), "{ev:?}");
        let (ev, _) = pump(&mut a, &mut b, 250, split);
        assert!(
            matches!(
                ev[..],
                [PeerEvent::Pong { nonce: 7, rtt }] if rtt == ms(50)
            ),
            "{ev:?}"
        );
        let (ev, _) = pump(&mut b, &mut a, 260, split);
        assert!(
            matches!(
                ev[..],
                [PeerEvent::Pong { nonce: 8, rtt }] if rtt == ms(60)
            ),
            "{ev:?}"
        );
        assert_eq!((a.ignored_pongs(), b.ignored_pongs()), (0, 0));
        assert_eq!((a.failure(), b.failure()), (None, None));
    }
}

fn core_version(version: u32, nonce: u64) -> Vec<u8> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 18444));
    let mut v = VersionMessage::new(
        ServiceFlags::NETWORK | ServiceFlags::WITNESS | ServiceFlags::NETWORK_LIMITED,
        1_700_000_000,
        Address::new(&addr, ServiceFlags::NONE),
        Address::new(&addr, ServiceFlags::NETWORK | ServiceFlags::WITNESS),
        nonce,
        "/Satoshi:27.0.0/".to_string(),
        850_000,
    );
    v.version = version;
    v.relay = true;
    raw(NetworkMessage::Version(v))
}

fn raw(msg: NetworkMessage) -> Vec<u8> {
    serialize(&RawNetworkMessage::new(BMagic::REGTEST, msg))
}

#[test]
fn core_70016_version_gets_wtxidrelay_before_verack() {
    let mut peer = Peer::new(PeerStorage::owned(), config(b"/x/"), at(0), 1);
    let ours = transmit(&mut peer);
    assert_eq!(commands(&ours), [Command::Version]);
    let mut input = core_version(70016, 99);
    input.extend(raw(NetworkMessage::WtxidRelay));
    input.extend(raw(NetworkMessage::SendAddrV2));
    // Bitcoin Core 26+ also sends `sendtxrcncl` before verack: an unknown command, accepted.
    input.extend(raw(NetworkMessage::Unknown {
        command: bitcoin::p2p::message::CommandString::try_from_static("sendtxrcncl").unwrap(),
        payload: vec![0; 12],
    }));
    input.extend(raw(NetworkMessage::Verack));
    let mut events = Vec::new();
    feed(&mut peer, 5, &input, 13, &mut events);
    let sent = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    assert_eq!(
        commands(&sent),
        [Command::WtxidRelay, Command::SendAddrV2, Command::Verack]
    );
    let info = ready(&events);
    assert_eq!(info.version, 70016);
    assert_eq!(info.services, 1 | 8 | 1024);
    assert_eq!(&info.user_agent[..], b"/Satoshi:27.0.0/");
    assert_eq!(info.start_height, 850_000);
    assert!(info.relay && info.wtxid_relay && info.addrv2);
    assert_eq!(peer.info(), Some(&info));
}

#[test]
fn a_70015_peer_gets_no_wtxidrelay() {
    let mut peer = Peer::new(PeerStorage::owned(), config(b"/x/"), at(0), 1);
    let _ = transmit(&mut peer);
    let mut input = core_version(70015, 99);
    // Even if it sent wtxidrelay, it is not in effect below 70016 (Core ignores it).
    input.extend(raw(NetworkMessage::WtxidRelay));
    input.extend(raw(NetworkMessage::Verack));
    let mut events = Vec::new();
    feed(&mut peer, 5, &input, 4096, &mut events);
    let sent = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    assert_eq!(commands(&sent), [Command::Verack]);
    let info = ready(&events);
    assert_eq!(info.version, 70015);
    assert!(!info.wtxid_relay);
}

fn failed(events: &[PeerEvent]) -> PeerError {
    match events.last() {
        Some(PeerEvent::Failed(e)) => *e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn message_before_verack_is_an_error() {
    for (msg, command) in [
        (NetworkMessage::Ping(1), Command::Ping),
        (NetworkMessage::SendHeaders, Command::SendHeaders),
        (NetworkMessage::FeeFilter(1000), Command::FeeFilter),
        (NetworkMessage::Headers(vec![]), Command::Headers),
    ] {
        // Between their version and their verack.
        let mut peer = Peer::new(PeerStorage::owned(), config(b"/x/"), at(0), 1);
        let mut input = core_version(70016, 99);
        input.extend(raw(msg.clone()));
        input.extend(raw(NetworkMessage::Verack));
        let mut events = Vec::new();
        feed(&mut peer, 5, &input, 4096, &mut events);
        assert_eq!(failed(&events), PeerError::BeforeVerack { command });
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(!peer.is_ready());
        assert_eq!(transmit(&mut peer), [], "nothing is sent after a failure");
        assert_eq!(peer.handle_input(at(6), &raw(NetworkMessage::Verack)), 24);
        assert_eq!(peer.poll_event(), None, "a failure is reported once");
        // Before their version.
        let mut peer = Peer::new(PeerStorage::owned(), config(b"/x/"), at(0), 1);
        let mut events = Vec::new();
        feed(&mut peer, 5, &raw(msg), 4096, &mut events);
        assert_eq!(failed(&events), PeerError::BeforeVerack { command });
    }
    let mut peer = Peer::new(PeerStorage::owned(), config(b"/x/"), at(0), 1);
    let mut events = Vec::new();
    feed(
        &mut peer,
        5,
        &raw(NetworkMessage::Verack),
        4096,
        &mut events,
    );
    assert_eq!(
        failed(&events),
        PeerError::BeforeVerack {
            command: Command::Verack
        }
    );
}

#[test]
fn wtxidrelay_or_sendaddrv2_after_verack_is_an_error() {
    for (msg, command) in [
        (NetworkMessage::WtxidRelay, Command::WtxidRelay),
        (NetworkMessage::SendAddrV2, Command::SendAddrV2),
    ] {
        let mut peer = Peer::new(PeerStorage::owned(), config(b"/x/"), at(0), 1);
        let mut input = core_version(70016, 99);
        input.extend(raw(NetworkMessage::Verack));
        input.extend(raw(msg));
        let mut events = Vec::new();
        feed(&mut peer, 5, &input, 4096, &mut events);
        assert!(matches!(events[0], PeerEvent::Ready(_)));
        assert_eq!(failed(&events), PeerError::AfterVerack { command });
        assert!(!peer.is_ready());
    }
}

#[test]
fn self_connection() {
    let mut peer = Peer::new(PeerStorage::owned(), config(b"/x/"), at(0), 0x5e1f);
    let ours = transmit(&mut peer);
    let mut events = Vec::new();
    feed(&mut peer, 5, &ours, 4096, &mut events);
    assert_eq!(events, [PeerEvent::Failed(PeerError::SelfConnection)]);
    assert_eq!(transmit(&mut peer), []);
    // The same with a version crafted by rust-bitcoin.
    let mut peer = Peer::new(PeerStorage::owned(), config(b"/x/"), at(0), 77);
    let mut events = Vec::new();
    feed(&mut peer, 5, &core_version(70016, 77), 4096, &mut events);
    assert_eq!(events, [PeerEvent::Failed(PeerError::SelfConnection)]);
}

#[test]
fn obsolete_version() {
    let mut peer = Peer::new(PeerStorage::owned(), config(b"/x/"), at(0), 1);
    let mut events = Vec::new();
    feed(&mut peer, 5, &core_version(31799, 9), 4096, &mut events);
    assert_eq!(events, [PeerEvent::Failed(PeerError::Obsolete(31799))]);
}

#[test]
fn handshake_timeout() {
    let mut peer = Peer::new(PeerStorage::owned(), config(b"/x/"), at(1_000), 1);
    assert_eq!(peer.poll_timeout(), Some(at(1_000 + TIMEOUT)));
    peer.handle_timeout(at(1_000 + TIMEOUT - 1));
    assert_eq!(peer.poll_event(), None);
    // Their version alone does not finish the handshake.
    let mut events = Vec::new();
    feed(&mut peer, 2_000, &core_version(70016, 9), 4096, &mut events);
    assert!(events.is_empty());
    assert_eq!(peer.poll_timeout(), Some(at(1_000 + TIMEOUT)));
    peer.handle_timeout(at(1_000 + TIMEOUT));
    assert_eq!(
        peer.poll_event(),
        Some(PeerEvent::Failed(PeerError::Timeout))
    );
    assert_eq!(peer.poll_event(), None);
    assert_eq!(peer.poll_timeout(), None);
    assert_eq!(peer.failure(), Some(PeerError::Timeout));
    assert_eq!(peer.ping(at(70_000), 1), Err(PingError::NotReady));
}

fn ready_peer() -> Peer<'static> {
    ready_in(PeerStorage::owned())
}

/// A peer over `storage` through its handshake, its queue drained.
fn ready_in(storage: PeerStorage<'_>) -> Peer<'_> {
    let mut peer = Peer::new(storage, config(b"/x/"), at(0), 1);
    let mut input = core_version(70016, 99);
    input.extend(raw(NetworkMessage::Verack));
    let mut events = Vec::new();
    feed(&mut peer, 5, &input, 4096, &mut events);
    let _ = ready(&events);
    let _ = transmit(&mut peer);
    PENDING.with(|p| p.borrow_mut().clear());
    peer
}

#[test]
fn wrong_pong_nonce_is_ignored_and_counted() {
    let mut peer = ready_peer();
    assert_eq!(peer.poll_timeout(), None);
    peer.ping(at(1_000), 0x1234).unwrap();
    assert_eq!(commands(&transmit(&mut peer)), [Command::Ping]);
    let mut events = Vec::new();
    feed(
        &mut peer,
        1_010,
        &raw(NetworkMessage::Pong(0x4321)),
        5,
        &mut events,
    );
    assert!(events.is_empty());
    assert_eq!(peer.ignored_pongs(), 1);
    assert!(peer.is_ready());
    feed(
        &mut peer,
        1_020,
        &raw(NetworkMessage::Pong(0x1234)),
        5,
        &mut events,
    );
    assert_eq!(
        events,
        [PeerEvent::Pong {
            nonce: 0x1234,
            rtt: ms(20)
        }]
    );
    // A second pong of the same nonce: no ping is outstanding.
    events.clear();
    feed(
        &mut peer,
        1_030,
        &raw(NetworkMessage::Pong(0x1234)),
        5,
        &mut events,
    );
    assert!(events.is_empty());
    assert_eq!(peer.ignored_pongs(), 2);
}

#[test]
fn their_ping_is_answered_and_other_messages_passed_up() {
    let mut peer = ready_peer();
    let mut input = raw(NetworkMessage::Ping(0xfeed));
    input.extend(raw(NetworkMessage::SendHeaders));
    input.extend(raw(NetworkMessage::FeeFilter(1000)));
    input.extend(raw(NetworkMessage::GetAddr));
    input.extend(raw(NetworkMessage::Addr(vec![])));
    input.extend(raw(NetworkMessage::Headers(vec![])));
    let mut events = Vec::new();
    feed(&mut peer, 10, &input, 3, &mut events);
    let sent = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    assert_eq!(commands(&sent), [Command::Pong]);
    assert_eq!(&sent[24..], &0xfeed_u64.to_le_bytes());
    assert_eq!(
        events,
        [
            PeerEvent::SendHeaders,
            PeerEvent::FeeFilter(1000),
            PeerEvent::GetAddr,
            PeerEvent::ListStart {
                command: Command::Headers,
                count: 0
            },
            PeerEvent::ListEnd {
                command: Command::Headers
            },
        ]
    );
}

#[test]
fn input_waits_while_the_outgoing_buffer_is_full() {
    let mut peer = ready_peer();
    let pings: Vec<u8> = (0..40u64)
        .flat_map(|n| raw(NetworkMessage::Ping(n)))
        .collect();
    // Not drained: the peer stops once it lacks room for a reply.
    let used = peer.handle_input(at(10), &pings);
    assert!(used < pings.len());
    assert!(used >= (MIN_OUT_CAPACITY - REPLY_RESERVE) / 32 * 32);
    let mut all = transmit(&mut peer);
    let mut rest = &pings[used..];
    while !rest.is_empty() {
        let n = peer.handle_input(at(11), rest);
        rest = &rest[n..];
        all.extend(transmit(&mut peer));
    }
    assert_eq!(commands(&all), vec![Command::Pong; 40]);
}

/// The nonces of a stream of `pong` frames (32 bytes each: header, nonce).
fn pong_nonces(bytes: &[u8]) -> Vec<u64> {
    assert_eq!(commands(bytes), vec![Command::Pong; bytes.len() / 32]);
    bytes
        .chunks(32)
        .map(|frame| u64::from_le_bytes(frame[24..].try_into().unwrap()))
        .collect()
}

#[test]
fn borrowed_storage_larger_queue_and_partial_drains_keep_order() {
    let mut message = [0u8; BUFFER_SIZE + 10];
    let mut out = [0u8; 4 * MIN_OUT_CAPACITY];
    let mut peer = ready_in(PeerStorage::new(&mut message[..], &mut out[..]).unwrap());
    // 40 pongs (1,280 bytes) fit the larger queue: all the pings are taken without a drain.
    let pings: Vec<u8> = (0..40u64)
        .flat_map(|n| raw(NetworkMessage::Ping(n)))
        .collect();
    assert_eq!(peer.handle_input(at(10), &pings), pings.len());
    // Drained in odd pieces while more pongs are queued: the queue's front is taken in place
    // and its rest moves only when a frame no longer fits after it.
    let mut sent = Vec::new();
    let mut piece = [0u8; 45];
    let mut next = 40u64;
    while next < 200 {
        let n = peer.poll_transmit(&mut piece);
        sent.extend_from_slice(&piece[..n]);
        let more: Vec<u8> = (next..next + 3)
            .flat_map(|n| raw(NetworkMessage::Ping(n)))
            .collect();
        let mut rest = &more[..];
        while !rest.is_empty() {
            let used = peer.handle_input(at(11), rest);
            rest = &rest[used..];
            if used == 0 {
                let n = peer.poll_transmit(&mut piece);
                assert!(n > 0, "no progress with an empty queue");
                sent.extend_from_slice(&piece[..n]);
            }
        }
        next += 3;
    }
    sent.extend(transmit(&mut peer));
    assert_eq!(pong_nonces(&sent), (0..next).collect::<Vec<_>>());
}

#[test]
fn storage_under_its_minimum_is_refused() {
    let mut small = [0u8; BUFFER_SIZE - 1];
    assert_eq!(
        MessageReader::new(MAGIC, &mut small[..]).err(),
        Some(electrum_spv_core::buffer::TooSmall {
            len: BUFFER_SIZE - 1,
            min: BUFFER_SIZE
        })
    );
    let mut message = [0u8; BUFFER_SIZE];
    let mut out = [0u8; MIN_OUT_CAPACITY - 1];
    assert!(matches!(
        PeerStorage::new(&mut message[..], &mut out[..]),
        Err(PeerStorageError::Out(_))
    ));
}

#[test]
fn size_is_bounded() {
    println!(
        "size_of::<Peer<'static>>() = {}",
        size_of::<Peer<'static>>()
    );
    assert!(size_of::<Peer<'static>>() <= PEER_MAX_SIZE);
}

#[test]
fn a_list_ends_after_its_last_item() {
    let genesis = bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Regtest).header;
    for split in [1, 5, 4096] {
        let mut peer = ready_peer();
        let mut events = Vec::new();
        let input = raw(NetworkMessage::Headers(vec![genesis, genesis]));
        feed(&mut peer, 10, &input, split, &mut events);
        let header: [u8; 80] = serialize(&genesis).try_into().unwrap();
        assert_eq!(
            events,
            [
                PeerEvent::ListStart {
                    command: Command::Headers,
                    count: 2
                },
                PeerEvent::Header(header),
                PeerEvent::Header(header),
                PeerEvent::ListEnd {
                    command: Command::Headers
                },
            ]
        );
    }
}

// ---- broadcast: announce, serve on request, count other nodes' announcements ----

use bitcoin::hashes::Hash as _;
use bitcoin::p2p::message_blockdata::Inventory;
use electrum_spv_core::hash::{Txid, Wtxid};

/// A segwit transaction (one input with a two-item witness, one P2WPKH output).
fn segwit_tx(seed: u8) -> bitcoin::Transaction {
    use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, TxIn, TxOut, Witness};
    bitcoin::Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::new(bitcoin::Txid::from_byte_array([seed; 32]), 1),
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::from_slice(&[vec![seed; 72], vec![2u8; 33]]),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(5_000 + u64::from(seed)),
            script_pubkey: ScriptBuf::from_bytes([&[0x00, 0x14][..], &[seed; 20]].concat()),
        }],
    }
}

fn node(n: usize) -> NodeId {
    NodeId::new(n).unwrap()
}

/// The message a frame written by `serve_tx` decodes to, with rust-bitcoin.
fn served_message(frame: &TxFrame<'_>) -> (Vec<u8>, NetworkMessage) {
    let mut bytes = frame.header.to_vec();
    for piece in frame.payload {
        bytes.extend_from_slice(piece);
    }
    assert_eq!(bytes.len(), frame.len());
    let msg: RawNetworkMessage = bitcoin::consensus::deserialize(&bytes).unwrap();
    (bytes, msg.payload().clone())
}

#[test]
fn a_broadcast_is_announced_served_only_on_request_and_counted_from_other_nodes() {
    let tx = segwit_tx(7);
    let raw_tx = serialize(&tx);
    let wire = WireTx::parse(&raw_tx).unwrap();
    assert_eq!(
        wire.txid().to_byte_array(),
        tx.compute_txid().to_byte_array()
    );
    assert_eq!(
        wire.wtxid().to_byte_array(),
        tx.compute_wtxid().to_byte_array()
    );

    let mut table = BroadcastTable::new([TxStatus::default(); 4], ms(5_000));
    let recipient = node(0);
    let h = table
        .broadcast(&wire, [recipient].into_iter().collect(), at(100))
        .unwrap();
    assert_eq!(
        table.broadcast(&wire, NodeSet::EMPTY, at(100)),
        Err(TableError::Duplicate(h))
    );
    // Only a recipient is announced to, by wtxid when it relays by wtxid.
    assert_eq!(table.announce(h, node(1), true), None);
    let inv = table.announce(h, recipient, true).unwrap();
    assert_eq!(inv.kind, InvType::WTX);
    assert_eq!(inv.hash, wire.wtxid().to_byte_array());
    let inv_txid = table.announce(h, recipient, false).unwrap();
    assert_eq!(
        (inv_txid.kind, inv_txid.hash),
        (InvType::TX, wire.txid().to_byte_array())
    );
    let mut peer = ready_peer();
    peer.send(at(110), &Outgoing::Inv(&[inv])).unwrap();
    let sent = transmit(&mut peer);
    let msg: RawNetworkMessage = bitcoin::consensus::deserialize(&sent).unwrap();
    assert_eq!(
        msg.payload(),
        &NetworkMessage::Inv(vec![Inventory::WTx(tx.compute_wtxid())])
    );
    // Never an unsolicited tx, nor the handshake's messages.
    assert_eq!(
        peer.send(at(111), &Outgoing::Tx(&raw_tx)),
        Err(SendError::NotAllowed(Command::Tx))
    );
    assert_eq!(
        peer.send(at(111), &Outgoing::Verack),
        Err(SendError::NotAllowed(Command::Verack))
    );

    // A node it was not announced to gets notfound; a block request is not the table's.
    let by_txid = |kind| InvVector {
        kind,
        hash: wire.txid().to_byte_array(),
    };
    assert_eq!(
        table.on_getdata(node(1), &by_txid(InvType::WITNESS_TX)),
        GetData::NotFound
    );
    assert_eq!(
        table.on_getdata(recipient, &by_txid(InvType::BLOCK)),
        GetData::Ignore
    );
    assert_eq!(table.get(h).unwrap().requested_by(), NodeSet::EMPTY);

    // The recipient asks with witness, by wtxid: the exact bytes.
    let GetData::Serve(permit) = table.on_getdata(recipient, &inv) else {
        panic!("not served")
    };
    assert_eq!(permit.form(), TxForm::Witness);
    let (bytes, msg) = served_message(&peer.serve_tx(&permit, &wire).unwrap());
    assert_eq!(msg, NetworkMessage::Tx(tx.clone()));
    assert_eq!(&bytes[24..], &raw_tx[..]);
    // Stripped (MSG_TX): the serialization without witness, which hashes to the txid.
    let GetData::Serve(stripped) = table.on_getdata(recipient, &by_txid(InvType::TX)) else {
        panic!("not served")
    };
    assert_eq!(stripped.form(), TxForm::Stripped);
    let (bytes, msg) = served_message(&peer.serve_tx(&stripped, &wire).unwrap());
    let NetworkMessage::Tx(got) = msg else {
        panic!("{msg:?}")
    };
    assert_eq!(bytes.len() - 24, tx.base_size());
    assert!(got.input.iter().all(|i| i.witness.is_empty()));
    assert_eq!(got.compute_txid(), tx.compute_txid());
    assert_eq!(
        table.get(h).unwrap().requested_by(),
        NodeSet::from_iter([recipient])
    );

    // A frame waits for queued bytes; another transaction is refused.
    peer.ping(at(120), 5).unwrap();
    assert_eq!(
        peer.serve_tx(&permit, &wire).unwrap_err(),
        SendError::Pending
    );
    let _ = transmit(&mut peer);
    let other = serialize(&segwit_tx(8));
    let other = WireTx::parse(&other).unwrap();
    assert_eq!(
        peer.serve_tx(&permit, &other).unwrap_err(),
        SendError::WrongTx
    );

    // Announcements: the recipient's never count, another node's once per node.
    let wtx = InvVector {
        kind: InvType::WTX,
        hash: wire.wtxid().to_byte_array(),
    };
    assert_eq!(
        table.on_inv(recipient, &wtx, at(200)),
        InvSeen::FromRecipient(h)
    );
    assert_eq!(table.get(h).unwrap().confirmations(), 0);
    assert_eq!(
        table.on_inv(node(1), &by_txid(InvType::TX), at(4_100)),
        InvSeen::Announced {
            handle: h,
            first: true
        }
    );
    assert_eq!(
        table.on_inv(node(1), &wtx, at(4_200)),
        InvSeen::Announced {
            handle: h,
            first: false
        }
    );
    let status = table.get(h).unwrap();
    assert_eq!(status.confirmations(), 1);
    assert_eq!(status.first_announcement_at(), Some(at(4_100)));
    assert_eq!(status.announced_to(), NodeSet::from_iter([recipient]));

    // Verification: node 1 serves other bytes under our txid (a different witness).
    let (vh, asked, getdata) = table.next_verification(at(5_000), |_| false).unwrap();
    assert_eq!((vh, asked), (h, node(1)));
    assert_eq!(getdata, by_txid(InvType::WITNESS_TX));
    assert_eq!(
        table.next_verification(at(5_001), |_| false),
        None,
        "one at a time"
    );
    let forged = Wtxid::from_byte_array([9; 32]);
    assert_eq!(
        table.on_tx(node(1), &wire.txid(), &forged),
        TxSeen::Mismatch(h)
    );
    let status = table.get(h).unwrap();
    assert_eq!(
        status.confirmations(),
        0,
        "a node serving other bytes does not count"
    );
    assert_eq!(status.mismatched_by(), NodeSet::from_iter([node(1)]));
    assert_eq!(table.next_verification(at(5_002), |_| false), None);
    // Node 2 announces; asked by wtxid (it relays by wtxid); it does not answer in time.
    table.on_inv(node(2), &wtx, at(6_000));
    let (_, asked, getdata) = table
        .next_verification(at(6_000), |n| n == node(2))
        .unwrap();
    assert_eq!((asked, getdata), (node(2), wtx));
    assert_eq!(table.poll_timeout(), Some(at(11_000)));
    table.handle_timeout(at(10_999));
    assert_eq!(table.next_verification(at(10_999), |_| false), None);
    table.handle_timeout(at(11_000));
    // Node 3 announces and sends the right bytes; an unasked node's tx is not evidence.
    table.on_inv(node(3), &wtx, at(11_500));
    assert_eq!(
        table.on_tx(node(3), &wire.txid(), &wire.wtxid()),
        TxSeen::Other
    );
    let (_, asked, _) = table.next_verification(at(11_500), |_| false).unwrap();
    assert_eq!(asked, node(3));
    assert_eq!(
        table.on_tx(node(3), &wire.txid(), &wire.wtxid()),
        TxSeen::Verified(h)
    );
    let status = table.get(h).unwrap();
    assert_eq!(status.verified_by(), Some(node(3)));
    assert_eq!(status.confirmations(), 2);
    assert_eq!(
        status.announced_by(),
        NodeSet::from_iter([node(2), node(3)])
    );
}

#[test]
fn a_notfound_or_a_gone_node_moves_verification_to_the_next_announcer() {
    let raw_tx = serialize(&segwit_tx(3));
    let wire = WireTx::parse(&raw_tx).unwrap();
    let mut table = BroadcastTable::new([TxStatus::default(); 1], ms(1_000));
    let h = table.broadcast(&wire, NodeSet::EMPTY, at(0)).unwrap();
    let inv = InvVector {
        kind: InvType::TX,
        hash: wire.txid().to_byte_array(),
    };
    for n in [4, 5, 6] {
        table.on_inv(node(n), &inv, at(10));
    }
    let (_, first, _) = table.next_verification(at(10), |_| false).unwrap();
    assert_eq!(first, node(4));
    table.on_notfound(node(4), &inv);
    let (_, second, _) = table.next_verification(at(20), |_| false).unwrap();
    assert_eq!(second, node(5));
    table.node_gone(node(5));
    let (_, third, _) = table.next_verification(at(30), |_| false).unwrap();
    assert_eq!(third, node(6));
    // Notfound and disconnection are not lies: all three still count.
    assert_eq!(table.get(h).unwrap().confirmations(), 3);
    // A one-slot table is full.
    assert_eq!(
        table.watch(Txid::from_byte_array([1; 32]), None, at(0)),
        Err(TableError::Full)
    );
    table.remove(h);
    assert!(table.get(h).is_none());
}

#[test]
fn the_watch_set_matches_txid_and_wtxid_announcements() {
    let tx = segwit_tx(11);
    let txid = Txid::from_byte_array(tx.compute_txid().to_byte_array());
    let wtxid = Wtxid::from_byte_array(tx.compute_wtxid().to_byte_array());
    let mut table = BroadcastTable::new([TxStatus::default(); 3], ms(1_000));
    let by_txid = table.watch(txid, None, at(0)).unwrap();
    let other = table
        .watch(Txid::from_byte_array([1; 32]), Some(wtxid), at(0))
        .unwrap();
    let inv = |kind, hash: [u8; 32]| InvVector { kind, hash };
    assert_eq!(
        table.on_inv(node(9), &inv(InvType::TX, txid.to_byte_array()), at(5)),
        InvSeen::Announced {
            handle: by_txid,
            first: true
        }
    );
    // A wtxid announcement matches the entry that knows the wtxid.
    assert_eq!(
        table.on_inv(node(9), &inv(InvType::WTX, wtxid.to_byte_array()), at(6)),
        InvSeen::Announced {
            handle: other,
            first: true
        }
    );
    assert_eq!(
        table.on_inv(node(9), &inv(InvType::BLOCK, txid.to_byte_array()), at(7)),
        InvSeen::Other
    );
    // A watched transaction is never served nor verified.
    assert_eq!(
        table.on_getdata(node(9), &inv(InvType::TX, txid.to_byte_array())),
        GetData::NotFound
    );
    assert_eq!(table.next_verification(at(8), |_| true), None);
    assert_eq!(table.entries().count(), 2);
}

#[test]
fn a_reject_is_reported_and_recorded() {
    let raw_tx = serialize(&segwit_tx(4));
    let wire = WireTx::parse(&raw_tx).unwrap();
    let mut peer = ready_peer();
    let reject = bitcoin::p2p::message_network::Reject {
        message: "tx".into(),
        ccode: bitcoin::p2p::message_network::RejectReason::NonStandard,
        reason: "mandatory-script-verify-flag-failed".into(),
        hash: bitcoin::hashes::sha256d::Hash::from_byte_array(wire.txid().to_byte_array()),
    };
    let mut events = Vec::new();
    feed(
        &mut peer,
        10,
        &raw(NetworkMessage::Reject(reject)),
        7,
        &mut events,
    );
    let [
        PeerEvent::Reject {
            message,
            code,
            hash: Some(hash),
        },
    ] = events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!((message, code), (Command::Tx, 0x40));
    let mut table = BroadcastTable::new([TxStatus::default(); 1], ms(1_000));
    let h = table.broadcast(&wire, NodeSet::EMPTY, at(0)).unwrap();
    assert_eq!(table.on_reject(node(2), &hash), Some(h));
    assert_eq!(
        table.get(h).unwrap().rejected_by(),
        NodeSet::from_iter([node(2)])
    );
    assert_eq!(
        table.get(h).unwrap().confirmations(),
        0,
        "a reject confirms nothing"
    );
}

#[test]
fn a_missing_pong_fails_the_peer_at_its_deadline() {
    let mut peer = ready_peer();
    peer.ping(at(1_000), 77).unwrap();
    assert_eq!(peer.poll_timeout(), Some(at(1_000 + PING_TIMEOUT)));
    peer.handle_timeout(at(1_000 + PING_TIMEOUT - 1));
    assert!(peer.is_ready());
    peer.handle_timeout(at(1_000 + PING_TIMEOUT));
    assert_eq!(
        peer.poll_event(),
        Some(PeerEvent::Failed(PeerError::PingTimeout))
    );
    assert_eq!(peer.poll_timeout(), None);
}

#[test]
fn an_unanswered_getheaders_is_reported_and_the_peer_kept() {
    let mut peer = ready_peer();
    let locator = [electrum_spv_core::hash::BlockHash::from_byte_array([3; 32])];
    let getheaders = Outgoing::GetHeaders {
        version: 70016,
        locator: &locator,
        stop: electrum_spv_core::hash::BlockHash::from_byte_array([0; 32]),
    };
    peer.send(at(500), &getheaders).unwrap();
    let sent = transmit(&mut peer);
    let msg: RawNetworkMessage = bitcoin::consensus::deserialize(&sent).unwrap();
    assert!(matches!(msg.payload(), NetworkMessage::GetHeaders(g) if g.locator_hashes.len() == 1));
    assert_eq!(peer.poll_timeout(), Some(at(500 + REQUEST_TIMEOUT)));
    peer.handle_timeout(at(500 + REQUEST_TIMEOUT));
    assert_eq!(
        peer.poll_event(),
        Some(PeerEvent::RequestTimeout {
            command: Command::GetHeaders
        })
    );
    assert!(peer.is_ready());
    // An answer clears the deadline.
    peer.send(at(600), &getheaders).unwrap();
    let _ = transmit(&mut peer);
    let mut events = Vec::new();
    feed(
        &mut peer,
        700,
        &raw(NetworkMessage::Headers(vec![])),
        5,
        &mut events,
    );
    assert_eq!(peer.poll_timeout(), None);
}

#[test]
fn feefilter_is_honoured_within_the_money_range() {
    let mut peer = ready_peer();
    assert!(peer.accepts_fee_rate(0));
    let mut events = Vec::new();
    feed(
        &mut peer,
        10,
        &raw(NetworkMessage::FeeFilter(2_000)),
        4096,
        &mut events,
    );
    assert_eq!(peer.fee_filter(), Some(2_000));
    assert!(!peer.accepts_fee_rate(1_999));
    assert!(peer.accepts_fee_rate(2_000));
    // Out of the money range (bcoin bans for -1; Core ignores it): ignored, the last stays.
    feed(
        &mut peer,
        11,
        &raw(NetworkMessage::FeeFilter(-1)),
        4096,
        &mut events,
    );
    assert_eq!(peer.fee_filter(), Some(2_000));
    feed(
        &mut peer,
        12,
        &raw(NetworkMessage::SendHeaders),
        4096,
        &mut events,
    );
    assert!(peer.announces_headers());
    assert!(peer.is_ready());
}

#[test]
fn send_needs_a_ready_peer_and_room() {
    let mut fresh = Peer::new(PeerStorage::owned(), config(b"/x/"), at(0), 1);
    assert_eq!(
        fresh.send(at(0), &Outgoing::SendHeaders),
        Err(SendError::NotReady)
    );
    let mut peer = ready_peer();
    let items = [InvVector {
        kind: InvType::TX,
        hash: [1; 32],
    }; 20];
    // 20 items (24 + 1 + 720 bytes) never fit the 512-byte buffer: split the list.
    assert_eq!(
        peer.send(at(0), &Outgoing::Inv(&items)),
        Err(SendError::Full)
    );
    peer.send(at(0), &Outgoing::Inv(&items[..13])).unwrap();
    assert_eq!(
        peer.send(at(0), &Outgoing::Inv(&items[..13])),
        Err(SendError::Full)
    );
    assert_eq!(transmit(&mut peer).len(), 24 + 1 + 13 * 36);
}

#[test]
fn gossiped_ip_addresses_are_passed_up_and_other_networks_skipped() {
    use bitcoin::p2p::address::{AddrV2, AddrV2Message};
    let mut peer = ready_peer();
    let v4 = SocketAddr::from((Ipv4Addr::new(10, 1, 2, 3), 8333));
    let v6: SocketAddr = "[2001:db8::7]:18444".parse().unwrap();
    let mut input = raw(NetworkMessage::Addr(vec![
        (1_700_000_001, Address::new(&v4, ServiceFlags::NETWORK)),
        (1_700_000_002, Address::new(&v6, ServiceFlags::WITNESS)),
    ]));
    let v2 = |addr, port| AddrV2Message {
        time: 1_700_000_003,
        services: ServiceFlags::NETWORK,
        addr,
        port,
    };
    input.extend(raw(NetworkMessage::AddrV2(vec![
        v2(AddrV2::Ipv4(Ipv4Addr::new(192, 0, 2, 9)), 8333),
        v2(AddrV2::TorV3([5; 32]), 8333),
        v2(AddrV2::Ipv6("2001:db8::9".parse().unwrap()), 8334),
    ])));
    let mut events = Vec::new();
    feed(&mut peer, 10, &input, 11, &mut events);
    let addrs: Vec<GossipAddr> = events
        .iter()
        .map(|e| match e {
            PeerEvent::Addr(a) => *a,
            other => panic!("{other:?}"),
        })
        .collect();
    let mapped = |a: [u8; 4]| {
        let mut ip = [0u8; 16];
        ip[10] = 0xff;
        ip[11] = 0xff;
        ip[12..].copy_from_slice(&a);
        ip
    };
    let v6_bytes = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
    assert_eq!(
        addrs,
        [
            GossipAddr {
                time: 1_700_000_001,
                services: 1,
                ip: mapped([10, 1, 2, 3]),
                port: 8333
            },
            GossipAddr {
                time: 1_700_000_002,
                services: 8,
                ip: v6_bytes("2001:db8::7"),
                port: 18444
            },
            GossipAddr {
                time: 1_700_000_003,
                services: 1,
                ip: mapped([192, 0, 2, 9]),
                port: 8333
            },
            GossipAddr {
                time: 1_700_000_003,
                services: 1,
                ip: v6_bytes("2001:db8::9"),
                port: 8334
            },
        ]
    );
}

/// Caller time `ms` milliseconds after the origin.
fn at(ms: u64) -> electrum_spv_core::time::Instant {
    electrum_spv_core::time::Instant::from_millis(ms)
}

/// A duration of `n` milliseconds.
fn ms(n: u64) -> electrum_spv_core::time::Duration {
    electrum_spv_core::time::Duration::from_millis(n)
}
