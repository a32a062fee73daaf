//! Replay of what a real bcoin 1.0.2 regtest node sent to a fresh inbound connection
//! (`data/p2p/bcoin_1_0_2_regtest_inbound.bin`, recorded with `data/p2p/record_bcoin.py`):
//! `version` 70015 `/bcoin:v1.0.2/`, `verack`, `sendcmpct` (mode 0), `getaddr` and, 30 s in,
//! a `ping`. A [`Peer`] is fed the stream whole, cut in two at every byte position, and one
//! byte at a time: the events and the bytes it sends back must be the same every time.

mod common;

use electrum_spv_core::p2p::*;

const MAGIC: Magic = Magic::REGTEST;
const RECORDING: &str = "p2p/bcoin_1_0_2_regtest_inbound.bin";

fn config() -> PeerConfig<'static> {
    PeerConfig {
        magic: MAGIC,
        services: 0,
        receiver: NetAddr {
            services: 0,
            ip: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1],
            port: 48444,
        },
        user_agent: b"/electrum-spv:0.1/",
        start_height: 0,
        relay: false,
        unix_time: electrum_spv_core::time::UnixTime::from_secs(1_700_000_000),
        handshake_timeout: electrum_spv_core::time::Duration::from_millis(60_000),
        ping_timeout: electrum_spv_core::time::Duration::from_millis(1_200_000),
        request_timeout: electrum_spv_core::time::Duration::from_millis(30_000),
    }
}

/// What bcoin sent and the commands in it, read by the crate's own reader.
fn recording() -> (Vec<u8>, Vec<Command>) {
    let bytes = common::read(RECORDING);
    let commands = commands(&bytes);
    (bytes, commands)
}

fn commands(bytes: &[u8]) -> Vec<Command> {
    let mut reader = MessageReader::owned(MAGIC);
    let mut rest = bytes;
    let mut out = Vec::new();
    loop {
        let (n, msg) = reader.feed(rest);
        rest = &rest[n..];
        match msg.expect("bcoin's stream decodes") {
            None => return out,
            Some(Message::Version(_)) => out.push(Command::Version),
            Some(Message::Verack) => out.push(Command::Verack),
            Some(Message::SendCmpct { .. }) => out.push(Command::SendCmpct),
            Some(Message::GetAddr) => out.push(Command::GetAddr),
            Some(Message::Ping(_)) => out.push(Command::Ping),
            Some(Message::SendHeaders) => out.push(Command::SendHeaders),
            Some(Message::FeeFilter(_)) => out.push(Command::FeeFilter),
            Some(other) => panic!("bcoin sent {other:?}"),
        }
    }
}

/// Feeds `stream` cut at `cuts`, draining events and outgoing bytes as `handle_input` asks;
/// returns the events and everything the peer sent after its `version`.
fn replay(stream: &[u8], cuts: &[usize]) -> (Vec<PeerEvent>, Vec<u8>) {
    let mut peer = Peer::new(PeerStorage::owned(), config(), at(0), 0x5eed_0000_0000_0001);
    let mut sent = vec![0u8; 1024];
    let n = peer.poll_transmit(&mut sent);
    assert!(n > 0);
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut drain = |peer: &mut Peer, events: &mut Vec<PeerEvent>| {
        let mut waiting = 0;
        while let Some(e) = peer.poll_event() {
            events.push(e);
            waiting += 1;
        }
        let mut buf = [0u8; 64];
        loop {
            let n = peer.poll_transmit(&mut buf);
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        waiting
    };
    let mut start = 0;
    for end in cuts.iter().copied().chain([stream.len()]) {
        let mut rest = &stream[start..end];
        while !rest.is_empty() {
            let n = peer.handle_input(at(10), rest);
            rest = &rest[n..];
            let waiting = drain(&mut peer, &mut events);
            assert!(n > 0 || waiting > 0, "no progress and no event");
        }
        start = end;
    }
    loop {
        peer.handle_input(at(10), &[]);
        if drain(&mut peer, &mut events) == 0 {
            break;
        }
    }
    assert!(peer.is_ready());
    (events, out)
}

#[test]
fn bcoin_recording_is_what_p2p_md_documents() {
    let (_, commands) = recording();
    assert_eq!(
        &commands[..4],
        [
            Command::Version,
            Command::Verack,
            Command::SendCmpct,
            Command::GetAddr
        ]
    );
    assert_eq!(commands[4..], [Command::Ping]);
}

#[test]
fn bcoin_stream_gives_the_same_events_at_every_cut() {
    let (stream, _) = recording();
    let (events, sent) = replay(&stream, &[]);

    // The events: ready with bcoin's version info, then sendcmpct(0) and getaddr; the ping is
    // answered, not reported.
    let PeerEvent::Ready(info) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(info.version, 70015);
    assert_eq!(info.services, 9);
    assert_eq!(&info.user_agent[..], b"/bcoin:v1.0.2/");
    assert!(info.relay);
    assert!(!info.wtxid_relay && !info.addrv2);
    assert_eq!(
        events[1..],
        [
            PeerEvent::SendCmpct {
                announce: false,
                version: 1
            },
            PeerEvent::GetAddr
        ]
    );
    // What we sent back: verack only (no wtxidrelay/sendaddrv2 to a 70015 peer), then a pong
    // for every ping, with its nonce.
    let mut reader = MessageReader::owned(MAGIC);
    let mut rest = &stream[..];
    let mut pings = Vec::new();
    loop {
        let (n, msg) = reader.feed(rest);
        rest = &rest[n..];
        match msg.unwrap() {
            None => break,
            Some(Message::Ping(nonce)) => pings.push(nonce),
            Some(_) => {}
        }
    }
    let mut expected = vec![0u8; 24];
    encode(MAGIC, &Outgoing::Verack, &mut expected).unwrap();
    for nonce in &pings {
        let mut pong = [0u8; 32];
        let n = encode(MAGIC, &Outgoing::Pong(*nonce), &mut pong).unwrap();
        expected.extend_from_slice(&pong[..n]);
    }
    assert_eq!(sent, expected);

    for cut in 0..=stream.len() {
        assert_eq!(
            replay(&stream, &[cut]),
            (events.clone(), sent.clone()),
            "cut at {cut}"
        );
    }
    let every: Vec<usize> = (1..stream.len()).collect();
    assert_eq!(replay(&stream, &every), (events, sent), "byte at a time");
}

/// Caller time `ms` milliseconds after the origin.
fn at(ms: u64) -> electrum_spv_core::time::Instant {
    electrum_spv_core::time::Instant::from_millis(ms)
}
