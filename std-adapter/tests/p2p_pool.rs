//! `p2p::PeerPool` against the test kit's scripted P2P peers on 127.0.0.1: handshake and
//! ranking by ping, announcements, hostile peers dropped with their typed reason, reconnect,
//! inbound peers, SOCKS5, and the `p2p` CLI commands.

use std::process::{Command, Stdio};
use std::time::Duration;

use electrum_spv::Network;
use electrum_spv::ReconnectPolicy;
use electrum_spv::core::p2p::{
    Command as P2pCommand, FrameError, InvType, InvVector, MessageError, PeerError,
};
use electrum_spv::p2p::{
    Direction, DropReason, NodeId, OwnedMessage, PeerAddr, PeerPool, PeerPoolConfig, SendError,
    inv_type_name,
};
use electrum_spv_testkit::p2p_peer::{Behaviour, PeerScript, ScriptedPeer};
use electrum_spv_testkit::socks::{Destination, Socks5Proxy};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);

/// Short timeouts so hostile peers are found out quickly.
fn config() -> PeerPoolConfig {
    let mut c = PeerPoolConfig::new(Network::Regtest);
    c.connection.handshake_timeout = Duration::from_secs(2);
    c.connection.ping_interval = Duration::from_millis(200);
    c.connection.ping_timeout = Duration::from_secs(1);
    c.connect_timeout = Duration::from_secs(2);
    c.reconnect = Some(ReconnectPolicy {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(400),
        max_attempts: None,
    });
    c
}

fn addr(p: &ScriptedPeer) -> PeerAddr {
    PeerAddr::new("127.0.0.1", p.addr().port())
}

fn agent(name: &str) -> PeerScript {
    PeerScript {
        user_agent: name.into(),
        ..PeerScript::honest()
    }
}

fn ranked(pool: &PeerPool, n: usize) -> bool {
    let peers = pool.peers();
    peers.len() >= n && peers.iter().all(|p| p.ping_ms.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_and_ranking_by_ping() {
    let slow = ScriptedPeer::start(PeerScript {
        pong_delay: Duration::from_millis(150),
        ..agent("/slow:1/")
    })
    .unwrap();
    let fast = ScriptedPeer::start(agent("/fast:1/")).unwrap();
    let pool = PeerPool::start(&[addr(&slow), addr(&fast)], config());
    assert!(
        pool.wait_until(WAIT, |p| ranked(p, 2)).await,
        "{:?}",
        pool.dropped()
    );
    // Several pings each, so the ranking is of measured round trips, not of arrival order.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let peers = pool.peers();
    assert_eq!(peers.len(), 2, "{peers:?}");
    assert_eq!(peers[0].user_agent, "/fast:1/");
    assert_eq!(peers[1].user_agent, "/slow:1/");
    assert_eq!(peers[0].node, addr(&fast).node_id());
    assert!(peers[1].ping_ms.unwrap() >= 150, "{peers:?}");
    assert!(peers[0].ping_ms < peers[1].ping_ms);
    for p in &peers {
        assert_eq!((p.version, p.services, p.start_height), (70015, 9, 100));
        assert_eq!(p.direction, Direction::Outbound);
        assert!(!p.wtxid_relay, "70015 does not relay by wtxid");
    }
    assert!(fast.pongs() >= 2 && slow.pongs() >= 2);
    assert!(pool.dropped().is_empty(), "{:?}", pool.dropped());

    // The send hook: a message to one node, written after the handshake.
    let fast_node = addr(&fast).node_id();
    pool.send(&fast_node, &OwnedMessage::SendHeaders).unwrap();
    let items = vec![item(InvType::TX, 1); 3];
    pool.send(&fast_node, &OwnedMessage::GetData(items))
        .unwrap();
    let start = std::time::Instant::now();
    while fast.received(P2pCommand::GetData) == 0 && start.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fast.received(P2pCommand::SendHeaders), 1);
    assert_eq!(fast.received(P2pCommand::GetData), 1);
    assert_eq!(slow.received(P2pCommand::SendHeaders), 0);
    assert_eq!(
        pool.send(&NodeId("127.0.0.1:1".into()), &OwnedMessage::GetAddr),
        Err(SendError::NotConnected)
    );
    let too_many = vec![item(InvType::TX, 1); 50_001];
    assert!(matches!(
        pool.send(&fast_node, &OwnedMessage::Inv(too_many)),
        Err(SendError::Encode(_))
    ));
}

fn item(kind: InvType, byte: u8) -> InvVector {
    InvVector {
        kind,
        hash: [byte; 32],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invs_stream_sees_announcements_and_not_corrupted_ones() {
    let good = ScriptedPeer::start(agent("/good/")).unwrap();
    let corrupt = ScriptedPeer::start(PeerScript::hostile(Behaviour::BadChecksum)).unwrap();
    let pool = PeerPool::start(&[addr(&good), addr(&corrupt)], config());
    let mut invs = pool.invs();
    // Both sides must have seen the handshake complete: the pool counts a peer once it has
    // the peer's verack, the scripted peer only once it has ours.
    assert!(
        pool.wait_until(WAIT, |p| p.peers().len() == 2
            && good.ready_connections() == 1
            && corrupt.ready_connections() == 1)
            .await
    );

    // A bad checksum drops the message (its items never reach the stream), not the peer.
    assert_eq!(corrupt.announce(&[item(InvType::TX, 9)]), 1);
    let mut hash = [0u8; 32];
    hash[0] = 0xab;
    let announced = [
        InvVector {
            kind: InvType::TX,
            hash,
        },
        item(InvType::BLOCK, 2),
    ];
    assert_eq!(good.announce(&announced), 1);
    for want in announced {
        let got = tokio::time::timeout(WAIT, invs.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.peer, addr(&good).node_id());
        assert_eq!((got.kind, got.hash), (want.kind, want.hash));
        assert!(got.time_ms > 1_600_000_000_000);
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(500), invs.recv())
            .await
            .is_err(),
        "the corrupted announcement was reported"
    );
    assert_eq!(pool.peers().len(), 2, "{:?}", pool.dropped());
    let first = InvVector {
        kind: InvType::TX,
        hash,
    };
    assert_eq!(inv_type_name(first.kind), "tx");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_are_dropped_with_their_reason() {
    let good = ScriptedPeer::start(agent("/good/")).unwrap();
    let hostile: Vec<(Behaviour, ScriptedPeer)> = [
        Behaviour::BadMagic,
        Behaviour::Oversize,
        Behaviour::VerackBeforeVersion,
        Behaviour::WrongPongNonce,
        Behaviour::Slowloris,
    ]
    .into_iter()
    .map(|b| (b, ScriptedPeer::start(PeerScript::hostile(b)).unwrap()))
    .collect();
    let mut addrs = vec![addr(&good)];
    addrs.extend(hostile.iter().map(|(_, p)| addr(p)));
    let pool = PeerPool::start(&addrs, config());
    let nodes: Vec<NodeId> = hostile.iter().map(|(_, p)| addr(p).node_id()).collect();
    let all_dropped = |p: &PeerPool| {
        let dropped = p.dropped();
        nodes.iter().all(|n| dropped.iter().any(|d| &d.node == n))
    };
    assert!(
        pool.wait_until(WAIT, all_dropped).await,
        "{:?}",
        pool.dropped()
    );
    let dropped = pool.dropped();
    for (behaviour, peer) in &hostile {
        let node = addr(peer).node_id();
        let d = dropped.iter().find(|d| d.node == node).unwrap();
        let ok = match behaviour {
            Behaviour::BadMagic => matches!(
                d.reason,
                DropReason::Peer(PeerError::Message(MessageError::Frame(
                    FrameError::BadMagic(_)
                )))
            ),
            Behaviour::Oversize => matches!(
                d.reason,
                DropReason::Peer(PeerError::Message(MessageError::Frame(
                    FrameError::Oversize {
                        command: P2pCommand::Inv,
                        ..
                    }
                )))
            ),
            Behaviour::VerackBeforeVersion => {
                d.reason
                    == DropReason::Peer(PeerError::BeforeVerack {
                        command: P2pCommand::Verack,
                    })
            }
            // The handshake completed; the pongs never matched.
            Behaviour::WrongPongNonce => d.reason == DropReason::PingTimeout && d.was_ready,
            Behaviour::Slowloris => d.reason == DropReason::Peer(PeerError::Timeout),
            _ => false,
        };
        assert!(ok, "{behaviour:?}: {d:?}");
        assert!(
            !pool.peers().iter().any(|p| p.node == node) || *behaviour == Behaviour::WrongPongNonce,
            "{behaviour:?} still listed"
        );
    }
    // Protocol violators are not dialed again.
    for (behaviour, peer) in &hostile {
        if matches!(
            behaviour,
            Behaviour::BadMagic | Behaviour::Oversize | Behaviour::VerackBeforeVersion
        ) {
            assert_eq!(peer.accepted(), 1, "{behaviour:?} redialed");
        }
    }
    // The honest peer stayed, never dropped.
    let peers = pool.peers();
    assert!(peers.iter().any(|p| p.user_agent == "/good/"), "{peers:?}");
    let good_node = addr(&good).node_id();
    assert!(!pool.dropped().iter().any(|d| d.node == good_node));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_peer_restarts() {
    let peer = ScriptedPeer::start(agent("/first/")).unwrap();
    let at = peer.addr();
    let node = addr(&peer).node_id();
    let pool = PeerPool::start(&[addr(&peer)], config());
    assert!(pool.wait_until(WAIT, |p| p.peers().len() == 1).await);
    drop(peer);
    let lost = |p: &PeerPool| p.dropped().iter().any(|d| d.node == node && d.was_ready);
    assert!(pool.wait_until(WAIT, lost).await, "{:?}", pool.dropped());
    let reason = pool.dropped()[0].reason.clone();
    assert!(
        matches!(reason, DropReason::Eof | DropReason::Io(_)),
        "{reason:?}"
    );
    assert!(pool.peers().is_empty());
    // Down for a while: dials fail (refused) and back off.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = ScriptedPeer::start_at(at, agent("/second/")).unwrap();
    let back = |p: &PeerPool| p.peers().iter().any(|s| s.user_agent == "/second/");
    assert!(pool.wait_until(WAIT, back).await, "{:?}", pool.dropped());
    assert_eq!(
        pool.peers()[0].node,
        node,
        "same node id across connections"
    );
    assert!(again.accepted() >= 1);
    assert!(
        pool.dropped()
            .iter()
            .any(|d| d.reason == DropReason::Io(std::io::ErrorKind::ConnectionRefused)),
        "{:?}",
        pool.dropped()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_listener_accepts_a_peer() {
    let pool = PeerPool::new(config());
    let bound = pool.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dialer = ScriptedPeer::dial(bound, agent("/inbound/")).unwrap();
    assert!(
        pool.wait_until(WAIT, |p| ranked(p, 1)).await,
        "{:?}",
        pool.dropped()
    );
    let peers = pool.peers();
    assert_eq!(peers[0].direction, Direction::Inbound);
    assert_eq!(peers[0].user_agent, "/inbound/");
    assert_eq!(peers[0].node, NodeId(dialer.addr().to_string()));
    // The inbound peer's announcements are tracked too.
    let mut invs = pool.invs();
    assert!(dialer.ready_connections() == 1);
    dialer.announce(&[item(InvType::WTX, 5)]);
    let got = tokio::time::timeout(WAIT, invs.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.kind, InvType::WTX);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_socks5_proxy_with_names_resolved_by_it() {
    let proxy = Socks5Proxy::start().unwrap();
    let peer = ScriptedPeer::start(agent("/behind-proxy/")).unwrap();
    let mut c = config();
    c.proxy = Some(proxy.addr().to_string());
    let target = PeerAddr::new("localhost", peer.addr().port());
    let pool = PeerPool::start(std::slice::from_ref(&target), c);
    assert!(
        pool.wait_until(WAIT, |p| ranked(p, 1)).await,
        "{:?}",
        pool.dropped()
    );
    assert_eq!(pool.peers()[0].user_agent, "/behind-proxy/");
    assert_eq!(
        proxy.requests(),
        vec![Destination::Name("localhost".into(), peer.addr().port())]
    );
}

fn cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_electrum-spv"));
    c.args(["--network", "regtest", "--json", "p2p"]);
    c
}

#[test]
fn cli_p2p_peers_and_invs() {
    let slow = ScriptedPeer::start(PeerScript {
        pong_delay: Duration::from_millis(100),
        ..agent("/slow:1/")
    })
    .unwrap();
    let fast = ScriptedPeer::start(agent("/fast:1/")).unwrap();
    let out = cli()
        .args(["peers", "--peer", &slow.addr().to_string()])
        .args(["--peer", &fast.addr().to_string(), "--timeout", "10"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["peer"], fast.addr().to_string());
    assert_eq!(lines[0]["user_agent"], "/fast:1/");
    assert_eq!(lines[1]["user_agent"], "/slow:1/");
    for l in &lines {
        let keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 6, "{l}");
        assert_eq!(l["version"], 70015);
        assert_eq!(l["services"], 9);
        assert_eq!(l["height"], 100);
        assert!(l["ping_ms"].is_u64(), "{l}");
    }
    assert!(lines[0]["ping_ms"].as_u64() < lines[1]["ping_ms"].as_u64());

    // The same from a seeds file (comments, blank lines).
    let seeds = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        seeds.path(),
        format!("# local\n\n{}  # fast\n", fast.addr()),
    )
    .unwrap();
    let out = cli()
        .args(["peers", "--seeds", seeds.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let only: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(only["user_agent"], "/fast:1/");

    // No peer completes the handshake: a clear error and a non-zero exit.
    let hostile = ScriptedPeer::start(PeerScript::hostile(Behaviour::VerackBeforeVersion)).unwrap();
    let out = cli()
        .args(["peers", "--peer", &hostile.addr().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no peer completed the handshake"), "{err}");
    assert!(err.contains(&hostile.addr().to_string()), "{err}");

    // Announcements, as they come (after the `peers` run's connection is gone).
    let start = std::time::Instant::now();
    while fast.ready_connections() > 0 && start.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(20));
    }
    let child = cli()
        .args(["invs", "--peer", &fast.addr().to_string(), "--seconds", "5"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while fast.ready_connections() < 1 && start.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut hash = [0u8; 32];
    hash[31] = 0x01;
    fast.announce(&[InvVector {
        kind: InvType::WITNESS_TX,
        hash,
    }]);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let line: Value = serde_json::from_str(text.lines().next().expect("one announcement")).unwrap();
    assert_eq!(line["peer"], fast.addr().to_string());
    assert_eq!(line["type"], "witness_tx");
    // Display order: the last internal byte first.
    assert_eq!(line["hash"], format!("01{}", "00".repeat(31)));
    assert!(line["time_ms"].is_u64());
}
