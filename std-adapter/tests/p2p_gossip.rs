//! `addr` gossip: a pool asked to keep N outbound peers learns addresses from its peers
//! (`getaddr`), dials them, and rate-limits what it was not asked for.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use electrum_spv::p2p::{NodeId, PeerAddr, PeerPool, PeerPoolConfig};
use electrum_spv_core::chain::Network;
use electrum_spv_core::p2p::{Command, NetAddr, Outgoing, TimedAddr};
use electrum_spv_testkit::p2p_peer::{PeerScript, ScriptedPeer};

fn timed(addr: SocketAddr) -> TimedAddr {
    let ip = match addr.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    };
    TimedAddr {
        time: 1_700_000_000,
        addr: NetAddr {
            services: 9,
            ip,
            port: addr.port(),
        },
    }
}

fn id(addr: SocketAddr) -> NodeId {
    PeerAddr::new(addr.ip().to_string(), addr.port()).node_id()
}

#[test]
fn gossiped_peers_are_dialed_up_to_the_target_and_unsolicited_floods_rate_limited() {
    let seed = ScriptedPeer::start(PeerScript::honest()).unwrap();
    let learned: Vec<ScriptedPeer> = (2..=4)
        .map(|i| ScriptedPeer::start_at(([127, 0, 0, i], 0).into(), PeerScript::honest()).unwrap())
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut config = PeerPoolConfig::new(Network::Regtest);
        config.gossip_target = 3;
        config.gossip_local = true;
        let seed_addr = PeerAddr::new("127.0.0.1", seed.addr().port());
        let pool = PeerPool::start(std::slice::from_ref(&seed_addr), config);
        let seed_id = seed_addr.node_id();
        assert!(
            pool.wait_until(Duration::from_secs(10), |p| p.info(&seed_id).is_some())
                .await
        );
        // The pool asked for addresses once the handshake completed.
        let asked = pool
            .wait_until(Duration::from_secs(5), |_| {
                seed.received(Command::GetAddr) == 1
            })
            .await;
        assert!(asked, "getaddr sent");
        // The seed answers with three nodes and a useless entry (port 0).
        let mut entries: Vec<TimedAddr> = learned.iter().map(|p| timed(p.addr())).collect();
        let mut useless = timed(learned[0].addr());
        useless.addr.port = 0;
        entries.push(useless);
        assert_eq!(seed.send(&Outgoing::Addr(&entries)), 1);
        // Target 3: the seed and two of the three learned nodes.
        let three = pool
            .wait_until(Duration::from_secs(10), |p| p.peers().len() == 3)
            .await;
        assert!(three, "{:?} {:?}", pool.peers(), pool.dropped());
        let connected: Vec<NodeId> = pool.peers().into_iter().map(|p| p.node).collect();
        assert!(connected.contains(&seed_id));
        let dialed = learned
            .iter()
            .filter(|p| connected.contains(&id(p.addr())))
            .count();
        assert_eq!(dialed, 2, "{connected:?}");
        assert_eq!(pool.gossiped().len(), 1, "the third waits for a free place");

        // Unsolicited gossip from a dialed node: a token bucket, not 1,000 addresses at once.
        let flood: Vec<TimedAddr> = (0..1000u16)
            .map(|p| timed(SocketAddr::from(([10, 9, 0, 1], 10_000 + p))))
            .collect();
        let learned_node = learned
            .iter()
            .find(|p| connected.contains(&id(p.addr())))
            .unwrap();
        // It was asked too (getaddr to every outbound peer): the first 1,000 are welcome,
        // so flood twice.
        // Our verack may still be on its way to it: wait until it counts the connection.
        let mut waited = 0;
        while learned_node.ready_connections() == 0 && waited < 100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
        }
        assert_eq!(learned_node.send(&Outgoing::Addr(&flood)), 1);
        assert_eq!(learned_node.send(&Outgoing::Addr(&flood[..500])), 1);
        let limited = pool
            .wait_until(Duration::from_secs(5), |p| p.gossip_rate_limited() >= 499)
            .await;
        assert!(limited, "rate limited: {}", pool.gossip_rate_limited());
    });
}
