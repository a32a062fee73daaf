//! `p2p::Peer`: the handshake and ping/pong, two peers wired in memory and a remote side
//! crafted with rust-bitcoin.

use std::net::{Ipv4Addr, SocketAddr};

use bitcoin::consensus::encode::serialize;
use bitcoin::p2p::address::Address;
use bitcoin::p2p::message::{NetworkMessage, RawNetworkMessage};
use bitcoin::p2p::message_network::VersionMessage;
use bitcoin::p2p::{Magic as BMagic, ServiceFlags};
use electrum_spv_core::p2p::peer::{
    OUT_BUFFER_SIZE, PEER_MAX_SIZE, PROTOCOL_VERSION, REPLY_RESERVE,
};
use electrum_spv_core::p2p::*;

const MAGIC: Magic = Magic::REGTEST;
const TIMEOUT: u64 = 60_000;

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
        unix_time: 1_700_000_000,
        handshake_timeout_ms: TIMEOUT,
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
            let n = to.handle_input(now, rest);
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
    let mut reader = MessageReader::new(MAGIC);
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
        let mut a = Peer::new(config(b"/a:1/"), 0, 0xaaaa);
        let mut b = Peer::new(config(b"/b:2/"), 0, 0xbbbb);
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
        a.ping(100, 42).unwrap();
        let (ev, sent) = pump(&mut a, &mut b, 110, split);
        assert!(ev.is_empty());
        assert_eq!(commands(&sent), [Command::Ping]);
        let (ev, sent) = pump(&mut b, &mut a, 137, split);
        assert_eq!(commands(&sent), [Command::Pong]);
        assert_eq!(
            ev,
            [PeerEvent::Pong {
                nonce: 42,
                rtt_ms: 37
            }]
        );
        // Both ways, and the pong after a second ping.
        b.ping(200, 7).unwrap();
        a.ping(200, 8).unwrap();
        let (ev, _) = pump(&mut b, &mut a, 205, split);
        assert!(ev.is_empty(), "{ev:?}");
        let (ev, _) = pump(&mut a, &mut b, 250, split);
        assert!(
            matches!(
                ev[..],
                [PeerEvent::Pong {
                    nonce: 7,
                    rtt_ms: 50
                }]
            ),
            "{ev:?}"
        );
        let (ev, _) = pump(&mut b, &mut a, 260, split);
        assert!(
            matches!(
                ev[..],
                [PeerEvent::Pong {
                    nonce: 8,
                    rtt_ms: 60
                }]
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
    let mut peer = Peer::new(config(b"/x/"), 0, 1);
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
    let mut peer = Peer::new(config(b"/x/"), 0, 1);
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
        let mut peer = Peer::new(config(b"/x/"), 0, 1);
        let mut input = core_version(70016, 99);
        input.extend(raw(msg.clone()));
        input.extend(raw(NetworkMessage::Verack));
        let mut events = Vec::new();
        feed(&mut peer, 5, &input, 4096, &mut events);
        assert_eq!(failed(&events), PeerError::BeforeVerack { command });
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(!peer.is_ready());
        assert_eq!(transmit(&mut peer), [], "nothing is sent after a failure");
        assert_eq!(peer.handle_input(6, &raw(NetworkMessage::Verack)), 24);
        assert_eq!(peer.poll_event(), None, "a failure is reported once");
        // Before their version.
        let mut peer = Peer::new(config(b"/x/"), 0, 1);
        let mut events = Vec::new();
        feed(&mut peer, 5, &raw(msg), 4096, &mut events);
        assert_eq!(failed(&events), PeerError::BeforeVerack { command });
    }
    let mut peer = Peer::new(config(b"/x/"), 0, 1);
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
        let mut peer = Peer::new(config(b"/x/"), 0, 1);
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
    let mut peer = Peer::new(config(b"/x/"), 0, 0x5e1f);
    let ours = transmit(&mut peer);
    let mut events = Vec::new();
    feed(&mut peer, 5, &ours, 4096, &mut events);
    assert_eq!(events, [PeerEvent::Failed(PeerError::SelfConnection)]);
    assert_eq!(transmit(&mut peer), []);
    // The same with a version crafted by rust-bitcoin.
    let mut peer = Peer::new(config(b"/x/"), 0, 77);
    let mut events = Vec::new();
    feed(&mut peer, 5, &core_version(70016, 77), 4096, &mut events);
    assert_eq!(events, [PeerEvent::Failed(PeerError::SelfConnection)]);
}

#[test]
fn obsolete_version() {
    let mut peer = Peer::new(config(b"/x/"), 0, 1);
    let mut events = Vec::new();
    feed(&mut peer, 5, &core_version(31799, 9), 4096, &mut events);
    assert_eq!(events, [PeerEvent::Failed(PeerError::Obsolete(31799))]);
}

#[test]
fn handshake_timeout() {
    let mut peer = Peer::new(config(b"/x/"), 1_000, 1);
    assert_eq!(peer.poll_timeout(), Some(1_000 + TIMEOUT));
    peer.handle_timeout(1_000 + TIMEOUT - 1);
    assert_eq!(peer.poll_event(), None);
    // Their version alone does not finish the handshake.
    let mut events = Vec::new();
    feed(&mut peer, 2_000, &core_version(70016, 9), 4096, &mut events);
    assert!(events.is_empty());
    assert_eq!(peer.poll_timeout(), Some(1_000 + TIMEOUT));
    peer.handle_timeout(1_000 + TIMEOUT);
    assert_eq!(
        peer.poll_event(),
        Some(PeerEvent::Failed(PeerError::Timeout))
    );
    assert_eq!(peer.poll_event(), None);
    assert_eq!(peer.poll_timeout(), None);
    assert_eq!(peer.failure(), Some(PeerError::Timeout));
    assert_eq!(peer.ping(70_000, 1), Err(PingError::NotReady));
}

fn ready_peer() -> Peer {
    let mut peer = Peer::new(config(b"/x/"), 0, 1);
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
    peer.ping(1_000, 0x1234).unwrap();
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
            rtt_ms: 20
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
    let used = peer.handle_input(10, &pings);
    assert!(used < pings.len());
    assert!(used >= (OUT_BUFFER_SIZE - REPLY_RESERVE) / 32 * 32);
    let mut all = transmit(&mut peer);
    let mut rest = &pings[used..];
    while !rest.is_empty() {
        let n = peer.handle_input(11, rest);
        rest = &rest[n..];
        all.extend(transmit(&mut peer));
    }
    assert_eq!(commands(&all), vec![Command::Pong; 40]);
}

#[test]
fn size_is_bounded() {
    println!("size_of::<Peer>() = {}", size_of::<Peer>());
    assert!(size_of::<Peer>() <= PEER_MAX_SIZE);
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
