//! Stream isolation through a SOCKS5 proxy (Tor's `IsolateSOCKSAuth`): the test kit's proxy
//! records, per connection, the authentication methods offered and the RFC 1929 credentials
//! sent. Every P2P connection (broadcast recipients, watchers, redials) and every Electrum pool
//! server gets a pair of its own; with isolation off only "no authentication" is offered; a
//! proxy refusing the credentials is a typed drop reason.

use std::collections::HashSet;
use std::time::Duration;

use electrum_spv::core::p2p::Command as P2pCommand;
use electrum_spv::p2p::{
    BroadcastOptions, DropReason, PeerAddr, PeerPool, PeerPoolConfig, ProxyFailure,
};
use electrum_spv::socks5::{Credentials, Socks5Error};
use electrum_spv::{
    ClientConfig, ConnectOptions, Error, Network, Pool, PoolConfig, ReconnectPolicy, ServerAddr,
    Transport,
};
use electrum_spv_testkit::p2p_peer::{PeerScript, ScriptedPeer};
use electrum_spv_testkit::socks::{AuthPolicy, Destination, ProxyConnection, Socks5Proxy};

const WAIT: Duration = Duration::from_secs(15);

fn config(proxy: &Socks5Proxy) -> PeerPoolConfig {
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
    c.proxy = Some(proxy.addr().to_string());
    c
}

/// Through the proxy by name, so the proxy resolves it.
fn named(p: &ScriptedPeer) -> PeerAddr {
    PeerAddr::new("localhost", p.addr().port())
}

fn agent(name: &str) -> PeerScript {
    PeerScript {
        user_agent: name.into(),
        ..PeerScript::honest()
    }
}

/// One input, one output, no witness: a transaction for the table, never valid on a chain.
fn a_transaction() -> Vec<u8> {
    use bitcoin::{
        Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness, absolute,
        transaction,
    };
    let tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: bitcoin::hashes::Hash::all_zeros(),
                vout: 7,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(5_000),
            script_pubkey: ScriptBuf::new(),
        }],
    };
    bitcoin::consensus::serialize(&tx)
}

fn to_port(c: &ProxyConnection) -> Option<u16> {
    match c.destination {
        Some(Destination::Name(_, port)) => Some(port),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_of_a_broadcast_and_every_redial_has_its_own_credentials() {
    let proxy = Socks5Proxy::start().unwrap();
    let mut peers: Vec<ScriptedPeer> = ["/a/", "/b/", "/watcher/"]
        .iter()
        .map(|n| ScriptedPeer::start(agent(n)).unwrap())
        .collect();
    let addrs: Vec<PeerAddr> = peers.iter().map(named).collect();
    let c = config(&proxy);
    assert!(c.isolate_streams, "isolation is the default");
    let pool = PeerPool::start(&addrs, c);
    assert!(
        pool.wait_until(WAIT, |p| p.peers().len() == 3).await,
        "{:?}",
        pool.dropped()
    );

    let options = BroadcastOptions {
        recipients: vec![addrs[0].node_id(), addrs[1].node_id()],
        announcers: 1,
        timeout: Duration::from_millis(800),
    };
    let reports = pool.broadcast(&[a_transaction()], &options).await.unwrap();
    assert_eq!(reports[0].recipients, options.recipients);
    let start = std::time::Instant::now();
    while peers[..2].iter().any(|p| p.received(P2pCommand::Inv) == 0) && start.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(peers[..2].iter().all(|p| p.received(P2pCommand::Inv) == 1));
    assert_eq!(
        peers[2].received(P2pCommand::Inv),
        0,
        "the watcher only watches"
    );

    // Three connections, each offering both methods, each with a pair of its own.
    let seen = proxy.connections();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let ports: HashSet<u16> = seen.iter().filter_map(to_port).collect();
    let want: HashSet<u16> = peers.iter().map(|p| p.addr().port()).collect();
    assert_eq!(ports, want, "{seen:?}");
    for c in &seen {
        assert_eq!(c.methods, [0, 2], "{c:?}");
        let (user, pass) = c.credentials.as_ref().expect("credentials sent");
        assert!(!user.is_empty() && !pass.is_empty());
    }
    let pairs: HashSet<_> = seen.iter().map(|c| c.credentials.clone()).collect();
    assert_eq!(pairs.len(), 3, "three distinct pairs: {seen:?}");
    let users: HashSet<_> = seen
        .iter()
        .map(|c| c.credentials.clone().unwrap().0)
        .collect();
    assert_eq!(users.len(), 3, "distinct usernames too: {seen:?}");

    // The watcher goes away and comes back: the redial gets a fresh pair, not its old one.
    let at = peers[2].addr();
    let watcher = addrs[2].node_id();
    drop(peers.pop());
    let lost = |p: &PeerPool| p.dropped().iter().any(|d| d.node == watcher && d.was_ready);
    assert!(pool.wait_until(WAIT, lost).await, "{:?}", pool.dropped());
    // Its listener thread lets go of the port soon after the drop.
    let start = std::time::Instant::now();
    let again = loop {
        match ScriptedPeer::start_at(at, agent("/watcher-again/")) {
            Ok(p) => break p,
            Err(e) if start.elapsed() > WAIT => panic!("restart: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let back = |p: &PeerPool| p.peers().iter().any(|s| s.user_agent == "/watcher-again/");
    assert!(pool.wait_until(WAIT, back).await, "{:?}", pool.dropped());
    assert!(again.accepted() >= 1);
    let seen = proxy.connections();
    assert!(seen.len() >= 4, "{seen:?}");
    let pairs: HashSet<_> = seen.iter().map(|c| c.credentials.clone()).collect();
    assert_eq!(pairs.len(), seen.len(), "every dial its own pair: {seen:?}");
    assert!(seen.iter().all(|c| c.credentials.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_isolation_off_no_credentials_are_offered() {
    let proxy = Socks5Proxy::start().unwrap();
    let peers: Vec<ScriptedPeer> = ["/a/", "/b/"]
        .iter()
        .map(|n| ScriptedPeer::start(agent(n)).unwrap())
        .collect();
    let mut c = config(&proxy);
    c.isolate_streams = false;
    let addrs: Vec<PeerAddr> = peers.iter().map(named).collect();
    let pool = PeerPool::start(&addrs, c);
    assert!(
        pool.wait_until(WAIT, |p| p.peers().len() == 2).await,
        "{:?}",
        pool.dropped()
    );
    let seen = proxy.connections();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for c in &seen {
        assert_eq!(c.methods, [0], "only \"no authentication\": {c:?}");
        assert_eq!(c.credentials, None);
        assert!(c.destination.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_refusing_the_credentials_is_a_typed_drop() {
    let proxy = Socks5Proxy::start_with(AuthPolicy::Refuse).unwrap();
    let peer = ScriptedPeer::start(agent("/unreached/")).unwrap();
    let target = named(&peer);
    let pool = PeerPool::start(std::slice::from_ref(&target), config(&proxy));
    let refused = |p: &PeerPool| {
        p.dropped()
            .iter()
            .filter(|d| d.reason == DropReason::Proxy(ProxyFailure::AuthRefused(1)))
            .count()
            >= 2
    };
    assert!(pool.wait_until(WAIT, refused).await, "{:?}", pool.dropped());
    let dropped = pool.dropped();
    assert!(
        dropped
            .iter()
            .all(|d| d.node == target.node_id() && !d.was_ready),
        "{dropped:?}"
    );
    assert!(
        dropped[0].reason.to_string().contains("username/password"),
        "{}",
        dropped[0].reason
    );
    assert!(pool.peers().is_empty());
    assert_eq!(peer.accepted(), 0, "never tunnelled");
    // Each attempt offered a new pair, and none got through to a `CONNECT`.
    let seen = proxy.connections();
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(seen.iter().all(|c| c.destination.is_none()));
    let pairs: HashSet<_> = seen.iter().map(|c| c.credentials.clone()).collect();
    assert_eq!(pairs.len(), seen.len(), "{seen:?}");
    drop(pool);

    // The same proxy without isolation: "no authentication" is fine with it.
    let mut c = config(&proxy);
    c.isolate_streams = false;
    let pool = PeerPool::start(std::slice::from_ref(&target), c);
    assert!(
        pool.wait_until(WAIT, |p| p.peers().len() == 1).await,
        "{:?}",
        pool.dropped()
    );
}

/// Two Electrum servers the proxy cannot reach (refused ports): the pool fails, but the proxy
/// saw each server's credentials.
fn electrum_config(proxy: &Socks5Proxy, auth: Option<Credentials>) -> PoolConfig {
    PoolConfig::new(ClientConfig {
        connect: ConnectOptions {
            proxy: Some(proxy.addr().to_string()),
            socks_auth: auth,
            connect_timeout: Duration::from_secs(5),
            ..ConnectOptions::default()
        },
        ..ClientConfig::new(Network::Regtest)
    })
}

fn closed_ports() -> [u16; 2] {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    [
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_electrum_pool_isolates_each_server() {
    let servers: Vec<ServerAddr> = closed_ports()
        .iter()
        .map(|p| ServerAddr::new(Transport::Tcp, "localhost", *p))
        .collect();

    // Isolated (the default): one pair per server.
    let proxy = Socks5Proxy::start().unwrap();
    let config = electrum_config(&proxy, None);
    assert!(config.isolate_streams);
    let err = Pool::connect(&servers, config).await.unwrap_err();
    assert!(
        matches!(err, Error::Socks5(Socks5Error::Refused(4))),
        "{err:?}"
    );
    let seen = proxy.connections();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|c| c.methods == [0, 2]), "{seen:?}");
    let pairs: HashSet<_> = seen.iter().map(|c| c.credentials.clone()).collect();
    assert_eq!(pairs.len(), 2, "{seen:?}");
    assert!(!pairs.contains(&None));

    // Off: nothing offered.
    let proxy = Socks5Proxy::start().unwrap();
    let mut config = electrum_config(&proxy, None);
    config.isolate_streams = false;
    let _ = Pool::connect(&servers, config).await.unwrap_err();
    let seen = proxy.connections();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter()
            .all(|c| c.methods == [0] && c.credentials.is_none()),
        "{seen:?}"
    );

    // The caller's own pair is kept, for every server.
    let proxy = Socks5Proxy::start().unwrap();
    let mine = Credentials::new("me", "secret");
    let _ = Pool::connect(&servers, electrum_config(&proxy, Some(mine)))
        .await
        .unwrap_err();
    let seen = proxy.connections();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for c in &seen {
        assert_eq!(c.credentials, Some(("me".into(), "secret".into())), "{c:?}");
    }

    // Refused by the proxy: the adapter's typed error.
    let proxy = Socks5Proxy::start_with(AuthPolicy::Refuse).unwrap();
    let err = Pool::connect(&servers[..1], electrum_config(&proxy, None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Socks5(Socks5Error::AuthRefused(1))),
        "{err:?}"
    );
}
