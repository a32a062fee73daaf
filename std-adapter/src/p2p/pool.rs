//! [`PeerPool`]: several P2P connections at once (Conduit's peer set, pycoin's pooled
//! connection factory).
//!
//! * Outbound peers from a list (and seeds files, [`read_seeds`](super::read_seeds)) are
//!   dialed concurrently, each by its own task, and dialed again after a loss with the
//!   adapter's [`ReconnectPolicy`] (exponential backoff with jitter; the count restarts after
//!   a connection that completed its handshake). A peer that broke the protocol, is us, or is
//!   obsolete is not dialed again.
//! * [`PeerPool::listen`] accepts inbound connections; each gets a core `Peer` too (at most
//!   [`PeerPoolConfig::max_inbound`] at once; inbound peers are never dialed back).
//! * [`PeerPool::peers`] ranks the ready peers by their last measured ping, fastest first.
//! * [`PeerPool::dropped`] keeps every ended connection with its typed [`DropReason`] (the
//!   last [`PeerPoolConfig::max_dropped`]), as the Electrum [`Pool`](crate::Pool) keeps
//!   dropped servers.
//! * [`PeerPool::invs`] streams every item of every `inv` received (pycoin's InvTracker),
//!   each named by the [`NodeId`] that announced it.
//!
//! `addr` gossip is not used yet: addresses peers send are ignored.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use electrum_spv_core::chain::Network;
use electrum_spv_core::p2p::{Command, Magic, PeerError, PeerEvent, PeerInfo};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::AbortHandle;

use super::addr::{NodeId, PeerAddr};
use super::connection::{
    self, ConnEvent, Connection, ConnectionConfig, DropReason, FrameSender, GetDataServer,
};
use super::gossip::AddrBook;
use super::inv::InvItem;
use super::outgoing::{OwnedMessage, SendError};
use super::relay::Relay;
use crate::reconnect::ReconnectPolicy;
use crate::socks5::Credentials;
use crate::transport::{BoxStream, DEFAULT_CONNECT_TIMEOUT};

/// Peer events kept for a receiver of [`PeerPool::events`] that falls behind (one full
/// `headers` message and its start and end).
pub const EVENT_CAPACITY: usize = 2_100;

/// How a pool connects and what it keeps.
#[derive(Clone, Debug)]
pub struct PeerPoolConfig {
    /// The network (its magic goes into [`PeerPoolConfig::connection`] in
    /// [`PeerPoolConfig::new`]).
    pub network: Network,
    /// How each connection introduces itself and pings.
    pub connection: ConnectionConfig,
    /// A SOCKS5 proxy (`host:port`, e.g. Tor's `127.0.0.1:9050`); names are resolved by it.
    pub proxy: Option<String>,
    /// With a proxy: every outbound connection (each dial, each redial) offers the proxy its
    /// own random username/password (RFC 1929), which Tor's `IsolateSOCKSAuth` (on by
    /// default) turns into a circuit of its own, so no two peers (broadcast recipients,
    /// watchers) see traffic from the same exit and cannot be linked by it. On by default, as
    /// in Tor Browser; a proxy that refuses the credentials fails each dial with
    /// [`ProxyFailure::AuthRefused`](super::ProxyFailure::AuthRefused) (turn this off for
    /// such a proxy: nothing is isolated then). Without a proxy it has no effect.
    pub isolate_streams: bool,
    /// Limit for TCP connect and proxy negotiation together.
    pub connect_timeout: Duration,
    /// Dial lost outbound peers again (`None`: each peer is dialed once).
    pub reconnect: Option<ReconnectPolicy>,
    /// Inbound connections at once; more are closed on accept.
    pub max_inbound: usize,
    /// Dropped connections remembered; older ones are forgotten.
    pub max_dropped: usize,
    /// Announced items buffered for each [`PeerPool::invs`] receiver; one that falls further
    /// behind loses the oldest (`RecvError::Lagged` says how many).
    pub inv_capacity: usize,
    /// Outbound connections to keep with addresses peers gossip (`addr`/`addrv2`, asked with
    /// `getaddr`, rate-limited as Core does: [`super::gossip`]); 0 turns gossip off. A gossiped
    /// peer is dialed once, never again after a loss.
    pub gossip_target: usize,
    /// Dial gossiped addresses that are not publicly routable (loopback, private, link-local):
    /// off by default, as Core's address manager, so a peer cannot make us probe the local
    /// network; on for tests and private networks.
    pub gossip_local: bool,
}

impl PeerPoolConfig {
    /// Defaults for `network`: [`ConnectionConfig::new`], no proxy, streams isolated (once a
    /// proxy is set), 20 s connect timeout,
    /// reconnect with [`ReconnectPolicy::default`], 32 inbound, 1024 dropped remembered,
    /// 16384 announced items buffered.
    pub fn new(network: Network) -> PeerPoolConfig {
        PeerPoolConfig {
            network,
            connection: ConnectionConfig::new(Magic::of(network)),
            proxy: None,
            isolate_streams: true,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            reconnect: Some(ReconnectPolicy::default()),
            max_inbound: 32,
            max_dropped: 1024,
            inv_capacity: 16_384,
            gossip_target: 0,
            gossip_local: false,
        }
    }
}

/// Which side dialed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We dialed the peer.
    Outbound,
    /// The peer dialed our listener.
    Inbound,
}

/// A ready peer as [`PeerPool::peers`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    /// The node (`host:port`).
    pub node: NodeId,
    /// Which side dialed.
    pub direction: Direction,
    /// Their user agent (lossy UTF-8).
    pub user_agent: String,
    /// Their protocol version.
    pub version: i32,
    /// Their service bits.
    pub services: u64,
    /// Their best height when the handshake ran.
    pub start_height: i32,
    /// Their relay flag.
    pub relay: bool,
    /// Both sides relay transactions by wtxid (BIP339).
    pub wtxid_relay: bool,
    /// Round trip of the last ping, in milliseconds (`None` until the first pong).
    pub ping_ms: Option<u64>,
}

impl PeerStatus {
    fn new(node: NodeId, direction: Direction, info: &PeerInfo, ping_ms: Option<u64>) -> Self {
        PeerStatus {
            node,
            direction,
            user_agent: String::from_utf8_lossy(&info.user_agent).into_owned(),
            version: info.version,
            services: info.services,
            start_height: info.start_height,
            relay: info.relay,
            wtxid_relay: info.wtxid_relay,
            ping_ms,
        }
    }
}

/// An ended connection (or a dial that failed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedPeer {
    /// The node.
    pub node: NodeId,
    /// Which side dialed.
    pub direction: Direction,
    /// Why it ended.
    pub reason: DropReason,
    /// Whether its handshake had completed.
    pub was_ready: bool,
    /// Unix time in milliseconds when it ended.
    pub time_ms: u64,
}

/// A live connection.
struct Live {
    node: NodeId,
    direction: Direction,
    info: Option<PeerInfo>,
    ping_ms: Option<u64>,
    sender: FrameSender,
}

#[derive(Default)]
struct State {
    next_id: u64,
    live: HashMap<u64, Live>,
    dropped: VecDeque<DroppedPeer>,
    inbound: usize,
    /// Nodes an outbound task is dialing or connected to.
    dialing: HashSet<NodeId>,
}

pub(super) struct Shared {
    config: PeerPoolConfig,
    state: Mutex<State>,
    /// The broadcast table and what it serves (its own lock: `state` is never locked while it
    /// is held).
    relay: Mutex<Relay>,
    /// Gossiped addresses (its own lock, never held with another).
    book: Mutex<AddrBook>,
    /// Bumped on every change of `state`, so waiters wake.
    changed: watch::Sender<u64>,
    invs: broadcast::Sender<InvItem>,
    /// Peer events no other part of the pool takes (headers, `sendheaders`, ...), for header
    /// sync.
    events: broadcast::Sender<(NodeId, PeerEvent)>,
    tasks: Mutex<Vec<AbortHandle>>,
    /// Set by [`PeerPool::shutdown`] (under the `tasks` lock).
    closed: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// The state; a panic elsewhere while it was held does not make it unusable.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn relay(&self) -> MutexGuard<'_, Relay> {
        self.relay.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn touch(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        // After shutdown nothing new starts (a gossip refill racing it would leak a task).
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let handle = tokio::spawn(task).abort_handle();
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    fn register(&self, node: NodeId, direction: Direction, sender: FrameSender) -> u64 {
        let mut state = self.state();
        let id = state.next_id;
        state.next_id += 1;
        state.live.insert(
            id,
            Live {
                node,
                direction,
                info: None,
                ping_ms: None,
                sender,
            },
        );
        drop(state);
        self.touch();
        id
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut Live)) {
        if let Some(live) = self.state().live.get_mut(&id) {
            f(live);
        }
        self.touch();
    }

    fn record_drop(&self, node: NodeId, direction: Direction, reason: DropReason, ready: bool) {
        let mut state = self.state();
        self.push_drop(&mut state, node, direction, reason, ready);
        drop(state);
        self.touch();
    }

    fn push_drop(
        &self,
        state: &mut State,
        node: NodeId,
        direction: Direction,
        reason: DropReason,
        ready: bool,
    ) {
        if state.dropped.len() >= self.config.max_dropped {
            state.dropped.pop_front();
        }
        state.dropped.push_back(DroppedPeer {
            node,
            direction,
            reason,
            was_ready: ready,
            time_ms: super::unix_ms(),
        });
    }

    /// Runs one connection until it ends; returns why and whether it was ready. The drop is
    /// recorded as the connection leaves the live set, at once: whoever sees it gone sees why.
    async fn serve(
        self: &Arc<Self>,
        node: NodeId,
        direction: Direction,
        stream: BoxStream,
        remote: Option<SocketAddr>,
    ) -> (DropReason, bool) {
        let server: GetDataServer = {
            let shared = self.clone();
            let node = node.clone();
            Arc::new(move |items| shared.relay().on_getdata(&node, items))
        };
        let mut conn =
            Connection::spawn_serving(stream, remote, self.config.connection.clone(), Some(server));
        let sender = conn.sender();
        let id = self.register(node.clone(), direction, sender.clone());
        let mut ready = false;
        let reason = loop {
            match conn.recv().await {
                None => break DropReason::Shutdown,
                Some(ConnEvent::Closed(reason)) => break reason,
                Some(ConnEvent::Ready(info)) => {
                    ready = true;
                    self.update(id, |l| l.info = Some(info));
                    if self.config.gossip_target > 0 && direction == Direction::Outbound {
                        self.book().solicited(&node, std::time::Instant::now());
                        let _ = sender.try_send(&OwnedMessage::GetAddr);
                    }
                }
                Some(ConnEvent::Other(PeerEvent::Addr(gossip))) => {
                    if self.config.gossip_target > 0 {
                        let local = self.config.gossip_local;
                        self.book()
                            .offer(&node, &gossip, local, std::time::Instant::now());
                        self.touch();
                        self.fill();
                    }
                }
                Some(ConnEvent::Pong { rtt_ms }) => self.update(id, |l| l.ping_ms = Some(rtt_ms)),
                Some(ConnEvent::List {
                    command: Command::Inv,
                    items,
                    time_ms,
                }) => {
                    self.relay().on_inv(&node, &items, time_ms);
                    self.touch();
                    for item in items {
                        // No receiver is not an error: nobody is watching announcements.
                        let _ = self.invs.send(InvItem {
                            peer: node.clone(),
                            kind: item.kind,
                            hash: item.hash,
                            time_ms,
                        });
                    }
                }
                // Answered by the connection itself (`spawn_serving`); who asked is in the
                // table now.
                Some(ConnEvent::List {
                    command: Command::GetData,
                    ..
                }) => self.touch(),
                Some(ConnEvent::List {
                    command: Command::NotFound,
                    items,
                    ..
                }) => {
                    self.relay().on_notfound(&node, &items);
                    self.touch();
                }
                Some(ConnEvent::Other(PeerEvent::Tx { txid, wtxid, .. })) => {
                    self.relay().on_tx(&node, &txid, &wtxid);
                    self.touch();
                }
                Some(ConnEvent::Other(PeerEvent::Reject {
                    message: Command::Tx,
                    hash: Some(hash),
                    ..
                })) => {
                    self.relay().on_reject(&node, &hash);
                    self.touch();
                }
                Some(ConnEvent::Other(event)) => {
                    // No receiver is not an error: nobody is syncing headers.
                    let _ = self.events.send((node.clone(), event));
                }
                Some(ConnEvent::List { .. }) => {}
            }
        };
        let others = {
            let mut state = self.state();
            state.live.remove(&id);
            let reason = reason.clone();
            self.push_drop(&mut state, node.clone(), direction, reason, ready);
            state.live.values().any(|l| l.node == node)
        };
        self.touch();
        if !others {
            self.relay().node_gone(&node);
        }
        (reason, ready)
    }

    fn book(&self) -> MutexGuard<'_, AddrBook> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Dials gossiped candidates while fewer than [`PeerPoolConfig::gossip_target`] outbound
    /// nodes are dialed or connected.
    fn fill(self: &Arc<Self>) {
        loop {
            let busy: HashSet<NodeId> = self.state().dialing.clone();
            if busy.len() >= self.config.gossip_target {
                return;
            }
            let Some(addr) = self.book().next(|n| busy.contains(n)) else {
                return;
            };
            self.state().dialing.insert(addr.node_id());
            self.spawn(self.clone().outbound(addr, false));
        }
    }

    /// Dials `addr` until the reconnect policy gives up (once, without `redial`).
    async fn outbound(self: Arc<Self>, addr: PeerAddr, redial: bool) {
        let node = addr.node_id();
        self.state().dialing.insert(node.clone());
        self.dial(&addr, redial).await;
        self.state().dialing.remove(&node);
        if self.config.gossip_target > 0 {
            self.fill();
        }
    }

    async fn dial(self: &Arc<Self>, addr: &PeerAddr, redial: bool) {
        let node = addr.node_id();
        // Failed attempts in a row.
        let mut failures = 0u32;
        loop {
            let proxy = self.config.proxy.as_deref();
            // Fresh credentials for every attempt: a new circuit each time.
            let auth = proxy
                .filter(|_| self.config.isolate_streams)
                .map(|_| Credentials::random());
            let (reason, ready) =
                match connection::open(addr, proxy, auth, self.config.connect_timeout).await {
                    Ok(stream) => {
                        // Into our `version` only an address known without a lookup.
                        let remote = match (&self.config.proxy, addr.host.parse::<IpAddr>()) {
                            (None, Ok(ip)) => Some(SocketAddr::new(ip, addr.port)),
                            _ => None,
                        };
                        // Records its own drop.
                        self.serve(node.clone(), Direction::Outbound, stream, remote)
                            .await
                    }
                    Err(reason) => {
                        self.record_drop(node.clone(), Direction::Outbound, reason.clone(), false);
                        (reason, false)
                    }
                };
            let again = redial && may_redial(&reason);
            let Some(policy) = self.config.reconnect.filter(|_| again) else {
                return;
            };
            failures = if ready { 1 } else { failures.saturating_add(1) };
            if policy.max_attempts.is_some_and(|max| failures >= max) {
                return;
            }
            tokio::time::sleep(policy.delay(failures)).await;
        }
    }

    /// Accepts inbound connections on `listener`.
    async fn accept(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((stream, remote)) = listener.accept().await else {
                // Out of descriptors and the like: wait instead of spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            {
                let mut state = self.state();
                if state.inbound >= self.config.max_inbound {
                    continue;
                }
                state.inbound += 1;
            }
            let _ = stream.set_nodelay(true);
            let shared = self.clone();
            self.spawn(async move {
                let node = NodeId(remote.to_string());
                // Records its own drop.
                shared
                    .serve(node, Direction::Inbound, Box::new(stream), Some(remote))
                    .await;
                shared.state().inbound -= 1;
            });
        }
    }
}

/// Whether to dial a peer again after `reason`: not after a protocol violation, a connection
/// to ourselves, an obsolete version, or our own shutdown.
fn may_redial(reason: &DropReason) -> bool {
    !reason.is_protocol_violation()
        && !matches!(
            reason,
            DropReason::Shutdown
                | DropReason::Peer(PeerError::SelfConnection)
                | DropReason::Peer(PeerError::Obsolete(_))
        )
}

/// Several P2P connections. See the [module documentation](self). Dropping it closes them.
pub struct PeerPool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PeerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerPool")
            .field("network", &self.shared.config.network)
            .field("peers", &self.peers().len())
            .finish()
    }
}

impl PeerPool {
    /// A pool with no peers yet. Call from inside a tokio runtime.
    pub fn new(config: PeerPoolConfig) -> PeerPool {
        let (changed, _) = watch::channel(0);
        let (invs, _) = broadcast::channel(config.inv_capacity.max(1));
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        PeerPool {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(State::default()),
                relay: Mutex::new(Relay::default()),
                book: Mutex::new(AddrBook::default()),
                changed,
                invs,
                events,
                tasks: Mutex::new(Vec::new()),
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// A pool dialing every peer of `peers` concurrently.
    pub fn start(peers: &[PeerAddr], config: PeerPoolConfig) -> PeerPool {
        let pool = PeerPool::new(config);
        let mut seen = HashSet::new();
        // One connection per node: two would mix their answers (headers of one request).
        for peer in peers.iter().filter(|p| seen.insert(p.node_id())) {
            pool.add_peer(peer.clone());
        }
        pool
    }

    /// Dials `addr` (and again after a loss, by the reconnect policy).
    pub fn add_peer(&self, addr: PeerAddr) {
        self.shared.spawn(self.shared.clone().outbound(addr, true));
    }

    /// Accepts inbound peers on `addr` (port 0: any free port); returns the bound address.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn listen(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        self.shared.spawn(self.shared.clone().accept(listener));
        Ok(bound)
    }

    /// The ready peers, fastest first (by the last ping; peers not yet measured last).
    pub fn peers(&self) -> Vec<PeerStatus> {
        let state = self.shared.state();
        let mut out: Vec<PeerStatus> = state
            .live
            .values()
            .filter_map(|l| {
                let info = l.info.as_ref()?;
                Some(PeerStatus::new(
                    l.node.clone(),
                    l.direction,
                    info,
                    l.ping_ms,
                ))
            })
            .collect();
        drop(state);
        out.sort_by(|a, b| {
            let key = |p: &PeerStatus| (p.ping_ms.is_none(), p.ping_ms);
            key(a).cmp(&key(b)).then_with(|| a.node.cmp(&b.node))
        });
        out
    }

    /// Gossiped addresses waiting to be dialed ([`PeerPoolConfig::gossip_target`]).
    pub fn gossiped(&self) -> Vec<PeerAddr> {
        self.shared.book().candidates()
    }

    /// Gossiped addresses dropped for exceeding their node's rate ([`super::gossip`]).
    pub fn gossip_rate_limited(&self) -> u64 {
        self.shared.book().rate_limited()
    }

    /// Ended connections and failed dials, oldest first (at most
    /// [`PeerPoolConfig::max_dropped`]).
    pub fn dropped(&self) -> Vec<DroppedPeer> {
        self.shared.state().dropped.iter().cloned().collect()
    }

    /// Every item of every `inv` received from now on, with the node that announced it.
    /// Items arrive once their `inv`'s checksum matched. A receiver more than
    /// [`PeerPoolConfig::inv_capacity`] items behind loses the oldest.
    pub fn invs(&self) -> broadcast::Receiver<InvItem> {
        self.shared.invs.subscribe()
    }

    /// The peer events no other part of the pool takes (`headers` items, `sendheaders`,
    /// `feefilter`, request timeouts, messages dropped as malformed), with the node that sent
    /// them, from now on. A receiver more than [`EVENT_CAPACITY`] events behind loses the
    /// oldest.
    pub fn events(&self) -> broadcast::Receiver<(NodeId, PeerEvent)> {
        self.shared.events.subscribe()
    }

    /// A receiver that wakes on every change of the pool or the broadcast table.
    pub(super) fn changes(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    pub(super) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The info of a ready connection to `node` (the fastest, if there are several).
    pub fn info(&self, node: &NodeId) -> Option<PeerInfo> {
        let state = self.shared.state();
        state
            .live
            .values()
            .filter(|l| &l.node == node)
            .filter_map(|l| Some((l.ping_ms.unwrap_or(u64::MAX), l.info.clone()?)))
            .min_by_key(|(ping, _)| *ping)
            .map(|(_, info)| info)
    }

    /// Queues `msg` on a ready connection to `node` (the fastest, if there are several).
    ///
    /// # Errors
    /// [`SendError::NotConnected`] when no connection to `node` is ready; else as
    /// [`FrameSender::try_send`].
    pub fn send(&self, node: &NodeId, msg: &OwnedMessage) -> Result<(), SendError> {
        self.sender(node)
            .ok_or(SendError::NotConnected)?
            .try_send(msg)
    }

    /// Queues `msg` on a ready connection to `node`, waiting for room in its queue.
    ///
    /// # Errors
    /// [`SendError::NotConnected`] when no connection to `node` is ready; else as
    /// [`FrameSender::send`].
    pub async fn send_wait(&self, node: &NodeId, msg: &OwnedMessage) -> Result<(), SendError> {
        let sender = self.sender(node).ok_or(SendError::NotConnected)?;
        sender.send(msg).await
    }

    /// The sender of the fastest ready connection to `node`.
    fn sender(&self, node: &NodeId) -> Option<FrameSender> {
        let state = self.shared.state();
        state
            .live
            .values()
            .filter(|l| &l.node == node && l.info.is_some())
            .min_by_key(|l| l.ping_ms.unwrap_or(u64::MAX))
            .map(|l| l.sender.clone())
    }

    /// Waits until `done(self)` holds, re-checking after every change (a peer ready, a ping
    /// measured, a drop); `false` if `timeout` passed first.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&PeerPool) -> bool,
    ) -> bool {
        let mut changes = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if done(self) {
                return true;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives as long as the pool; a timeout ends the wait.
                Ok(Err(_)) | Err(_) => return done(self),
            }
        }
    }

    /// Closes every connection and stops dialing and accepting.
    pub fn shutdown(&self) {
        let tasks = {
            let mut tasks = self.shared.tasks.lock().unwrap_or_else(|e| e.into_inner());
            self.shared
                .closed
                .store(true, std::sync::atomic::Ordering::SeqCst);
            std::mem::take(&mut *tasks)
        };
        for task in tasks {
            task.abort();
        }
    }
}

impl Drop for PeerPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}
