//! One tokio task per P2P connection: it owns the stream and a core [`Peer`], runs the
//! sans-IO loop, pings, and hands events to its owner through a bounded channel.
//!
//! The loop: write what `poll_transmit` gives; feed what was read to `handle_input`, which
//! may take less than given while an event waits (then drain `poll_event` and
//! `poll_transmit` and feed the rest; after the last byte, feed nothing once more while that
//! still yields events: a list's end may come from the byte that also ended its last item);
//! call `handle_timeout` at `poll_timeout`.
//!
//! On top of the core peer this task adds what needs a clock and randomness: a `ping` with a
//! random nonce as soon as the handshake completes and every
//! [`ConnectionConfig::ping_interval`] after each `pong`. The core peer keeps each pong's
//! deadline ([`DropReason::PingTimeout`]; a pong with a wrong nonce is ignored, so a peer that
//! sends only those times out). Writes have the same deadline ([`DropReason::WriteStalled`]):
//! a peer that stops reading cannot hold the task forever.
//!
//! Messages from the owner ([`FrameSender`]) are taken only once the handshake is complete
//! (nothing but the handshake may precede `verack`) and go through the core peer's
//! [`Peer::send`] (lists split to fit its buffer), so it keeps the deadlines of what it sent.
//! A `tx` is written only with a [`ServePermit`] from the broadcast table
//! ([`Peer::serve_tx`]): never unsolicited.
//!
//! Bounds: [`COMMAND_QUEUE`] orders wait to be written, [`EVENT_QUEUE`] events wait for the
//! owner (when full, the task stops reading: backpressure reaches the peer through TCP), and
//! one read is at most [`READ_CHUNK`] bytes. A list's items are held until its checksum
//! matched (at most `MAX_INV_ITEMS`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use std::sync::Arc;

use electrum_spv_core::p2p::peer::MIN_OUT_CAPACITY;
use electrum_spv_core::p2p::{
    Command, HEADER_SIZE, INV_ITEM_SIZE, InvVector, Magic, NetAddr, Outgoing, Peer, PeerConfig,
    PeerError, PeerEvent, PeerInfo, PeerStorage, SendError as CoreSendError, ServePermit, WireTx,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::addr::PeerAddr;
use super::inv::{Collected, ListCollector};
use super::outgoing::{OwnedMessage, SendError};
use super::relay::Answers;
use crate::clock::{self, Clock};
use crate::error::Error;
use crate::server::{ServerAddr, Transport};
use crate::socks5::{Credentials, Socks5Error};
use crate::transport::{self, BoxStream, ConnectOptions};

/// The `NODE_WITNESS` service bit (BIP144).
pub const NODE_WITNESS: u64 = 1 << 3;
/// Orders (messages, transactions to serve) waiting to be written to one connection.
pub const COMMAND_QUEUE: usize = 64;
/// Items per `inv`/`getdata`/`notfound` message we write: what fits the core peer's outgoing
/// buffer ([`MIN_OUT_CAPACITY`]) with its frame header and a 3-byte count. Longer lists are
/// split.
pub const LIST_CHUNK: usize = (MIN_OUT_CAPACITY - HEADER_SIZE - 3) / INV_ITEM_SIZE as usize;
/// Longest `getheaders` locator we write (what fits the core peer's outgoing buffer).
pub const MAX_SENT_LOCATOR: usize = (MIN_OUT_CAPACITY - HEADER_SIZE - 4 - 1 - 32) / 32;
/// Events waiting for the connection's owner.
pub const EVENT_QUEUE: usize = 256;
/// Largest single read from the stream.
pub const READ_CHUNK: usize = 64 * 1024;

/// How a connection introduces itself and keeps the peer alive.
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    /// The network's magic.
    pub magic: Magic,
    /// Our user agent (BIP14), cut to 256 bytes by the core.
    pub user_agent: String,
    /// Our service bits (0; or `NODE_WITNESS` = 8 to be sent witness transactions).
    pub services: u64,
    /// Height of our best chain, for our `version`.
    pub start_height: i32,
    /// Ask the peer to announce transactions (BIP37 relay flag).
    pub relay: bool,
    /// How long the handshake may take.
    pub handshake_timeout: Duration,
    /// Time between a pong and the next ping.
    pub ping_interval: Duration,
    /// How long a pong (or a write) may take.
    pub ping_timeout: Duration,
    /// How long a `getheaders` may go unanswered before [`PeerEvent::RequestTimeout`].
    pub request_timeout: Duration,
}

impl ConnectionConfig {
    /// Defaults for `magic`: user agent `/electrum-spv:VERSION/`, services `NODE_WITNESS`
    /// (so a peer without BIP339, bcoin or Core before 0.21, asks for our transactions with
    /// their witness: a stripped segwit transaction is invalid), relay on, handshake 20 s, a
    /// ping every 60 s, pong timeout 30 s, `getheaders` timeout 30 s.
    pub fn new(magic: Magic) -> ConnectionConfig {
        ConnectionConfig {
            magic,
            user_agent: format!("/electrum-spv:{}/", env!("CARGO_PKG_VERSION")),
            services: NODE_WITNESS,
            start_height: 0,
            relay: true,
            handshake_timeout: Duration::from_secs(20),
            ping_interval: Duration::from_secs(60),
            ping_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// What a connection reports to its owner.
// `Ready` and `Other` carry the core's event by value (a user agent of up to 256 bytes):
// the channel holds at most EVENT_QUEUE of them, and boxing would allocate per event.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnEvent {
    /// The handshake completed.
    Ready(PeerInfo),
    /// The pong of our ping came back after `rtt_ms`.
    Pong {
        /// Round trip in milliseconds.
        rtt_ms: u64,
    },
    /// An `inv`, `getdata` or `notfound` was received whole, its checksum matched.
    List {
        /// Which list.
        command: Command,
        /// Its items, in order.
        items: Vec<InvVector>,
        /// Unix time in milliseconds when it was complete.
        time_ms: u64,
    },
    /// Any other event of the core peer once ready (`headers` items, `tx`, `feefilter`, a
    /// message dropped as malformed, ...).
    Other(PeerEvent),
    /// The connection ended (the last event).
    Closed(DropReason),
}

/// Why a SOCKS5 proxy did not connect us (the I/O case is [`DropReason::Io`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyFailure {
    /// Not a SOCKS5 proxy, or no acceptable authentication method.
    NotSocks5,
    /// The host name is too long for SOCKS5.
    NameTooLong,
    /// Our username or password is empty or longer than 255 bytes (never for the pool's own
    /// random ones).
    BadCredentials,
    /// The proxy refused our username/password (RFC 1929 status): it does not take the
    /// credentials that isolate streams ([`PeerPoolConfig::isolate_streams`]).
    ///
    /// [`PeerPoolConfig::isolate_streams`]: super::PeerPoolConfig::isolate_streams
    AuthRefused(u8),
    /// The proxy's reply code (5: connection refused, 4: host unreachable, ...).
    Refused(u8),
    /// A malformed reply.
    BadReply,
}

/// Why a connection ended (or never started). Typed, so callers decide by kind, never by text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The core peer failed: a protocol violation, a fatal framing error (bad magic, oversize
    /// length, bad command), a handshake timeout, a connection to ourselves, an obsolete
    /// version.
    Peer(PeerError),
    /// Connecting, reading or writing failed.
    Io(std::io::ErrorKind),
    /// The peer closed the connection.
    Eof,
    /// TCP connect (and the proxy) did not finish in time.
    ConnectTimeout,
    /// The SOCKS5 proxy did not connect us.
    Proxy(ProxyFailure),
    /// A `.onion` peer needs a proxy.
    OnionNeedsProxy,
    /// No pong to our ping within the ping timeout.
    PingTimeout,
    /// A write did not finish within the ping timeout: the peer stopped reading.
    WriteStalled,
    /// The core peer took no input with nothing to drain (a broken contract, never expected):
    /// the stream cannot be read on.
    CoreStalled,
    /// The owner closed the connection (the pool was dropped or shut down).
    Shutdown,
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DropReason::Peer(e) => write!(f, "protocol: {e}"),
            DropReason::Io(kind) => write!(f, "i/o: {kind}"),
            DropReason::Eof => f.write_str("closed by the peer"),
            DropReason::ConnectTimeout => f.write_str("connect timed out"),
            DropReason::Proxy(p) => match p {
                ProxyFailure::NotSocks5 => f.write_str("SOCKS5 proxy refused the handshake"),
                ProxyFailure::NameTooLong => f.write_str("host name too long for SOCKS5"),
                ProxyFailure::BadCredentials => {
                    f.write_str("SOCKS5 username or password empty or too long")
                }
                ProxyFailure::AuthRefused(status) => {
                    write!(
                        f,
                        "SOCKS5 proxy refused username/password (status {status})"
                    )
                }
                ProxyFailure::Refused(code) => write!(f, "SOCKS5 proxy refused (code {code})"),
                ProxyFailure::BadReply => f.write_str("malformed SOCKS5 reply"),
            },
            DropReason::OnionNeedsProxy => f.write_str(".onion peers need a proxy"),
            DropReason::PingTimeout => f.write_str("no pong in time"),
            DropReason::WriteStalled => f.write_str("peer stopped reading"),
            DropReason::CoreStalled => f.write_str("peer state machine stalled"),
            DropReason::Shutdown => f.write_str("shut down"),
        }
    }
}

impl DropReason {
    /// The peer broke the protocol (as opposed to being unreachable, slow, or shut down by
    /// us).
    pub fn is_protocol_violation(&self) -> bool {
        matches!(
            self,
            DropReason::Peer(PeerError::BeforeVerack { .. })
                | DropReason::Peer(PeerError::AfterVerack { .. })
                | DropReason::Peer(PeerError::Message(_))
        )
    }
}

/// The reason of a failed [`transport::connect`].
fn connect_failure(e: Error) -> DropReason {
    match e {
        Error::Io(e) => DropReason::Io(e.kind()),
        Error::ConnectTimeout => DropReason::ConnectTimeout,
        Error::OnionNeedsProxy => DropReason::OnionNeedsProxy,
        Error::Socks5(Socks5Error::Io(e)) => DropReason::Io(e.kind()),
        Error::Socks5(Socks5Error::NotSocks5) => DropReason::Proxy(ProxyFailure::NotSocks5),
        Error::Socks5(Socks5Error::NameTooLong) => DropReason::Proxy(ProxyFailure::NameTooLong),
        Error::Socks5(Socks5Error::BadCredentials) => {
            DropReason::Proxy(ProxyFailure::BadCredentials)
        }
        Error::Socks5(Socks5Error::AuthRefused(s)) => {
            DropReason::Proxy(ProxyFailure::AuthRefused(s))
        }
        Error::Socks5(Socks5Error::Refused(c)) => DropReason::Proxy(ProxyFailure::Refused(c)),
        Error::Socks5(Socks5Error::BadReply) => DropReason::Proxy(ProxyFailure::BadReply),
        // Plain TCP has no other failure.
        _ => DropReason::Io(std::io::ErrorKind::Other),
    }
}

/// Opens a TCP stream to `addr`, through the SOCKS5 `proxy` (`host:port`) if given, which then
/// resolves the name (the adapter's [`transport::connect`]). `auth` is offered to the proxy
/// (ignored without one): to Tor, a stream isolation key.
///
/// # Errors
/// [`DropReason::Io`], [`DropReason::ConnectTimeout`], [`DropReason::Proxy`],
/// [`DropReason::OnionNeedsProxy`].
pub async fn open(
    addr: &PeerAddr,
    proxy: Option<&str>,
    auth: Option<Credentials>,
    timeout: Duration,
) -> Result<BoxStream, DropReason> {
    let server = ServerAddr::new(Transport::Tcp, addr.host.clone(), addr.port);
    let options = ConnectOptions {
        proxy: proxy.map(str::to_owned),
        socks_auth: auth,
        connect_timeout: timeout,
        ..ConnectOptions::default()
    };
    transport::connect(&server, &options)
        .await
        .map_err(connect_failure)
}

/// Answers one `getdata` (its items, in order): what to serve and what is not found.
pub(crate) type GetDataServer = Arc<dyn Fn(&[InvVector]) -> Answers + Send + Sync>;

/// What the owner asks a connection to write.
#[derive(Clone, Debug)]
enum Order {
    Send(OwnedMessage),
    /// A transaction the broadcast table allowed this node to be served.
    Serve(ServePermit, Arc<[u8]>),
}

/// Queues messages for one connection; cheap to clone.
#[derive(Clone, Debug)]
pub struct FrameSender {
    orders: mpsc::Sender<Order>,
}

fn queued<T>(e: mpsc::error::TrySendError<T>) -> SendError {
    match e {
        mpsc::error::TrySendError::Full(_) => SendError::Full,
        mpsc::error::TrySendError::Closed(_) => SendError::Closed,
    }
}

impl FrameSender {
    /// Queues `msg` without waiting; it is written once the handshake is complete.
    ///
    /// # Errors
    /// [`SendError::Encode`] (a bound of its command, or a locator over
    /// [`MAX_SENT_LOCATOR`]), [`SendError::Full`], [`SendError::Closed`].
    pub fn try_send(&self, msg: &OwnedMessage) -> Result<(), SendError> {
        msg.check().map_err(SendError::Encode)?;
        self.orders
            .try_send(Order::Send(msg.clone()))
            .map_err(queued)
    }

    /// Queues `msg`, waiting for room.
    ///
    /// # Errors
    /// [`SendError::Encode`], [`SendError::Closed`].
    pub async fn send(&self, msg: &OwnedMessage) -> Result<(), SendError> {
        msg.check().map_err(SendError::Encode)?;
        self.orders
            .send(Order::Send(msg.clone()))
            .await
            .map_err(|_| SendError::Closed)
    }

    /// The connection has ended.
    pub fn is_closed(&self) -> bool {
        self.orders.is_closed()
    }
}

/// A running connection: its events, and a [`FrameSender`] for its messages. Dropping it ends
/// the task.
#[derive(Debug)]
pub struct Connection {
    sender: FrameSender,
    events: mpsc::Receiver<ConnEvent>,
    task: JoinHandle<()>,
}

impl Connection {
    /// Starts the task on `stream`. `remote` is the peer's address when known (it goes into
    /// our `version`, as Core fills it in; unknown through a proxy).
    pub fn spawn(
        stream: BoxStream,
        remote: Option<SocketAddr>,
        config: ConnectionConfig,
    ) -> Connection {
        Connection::spawn_serving(stream, remote, config, None)
    }

    /// As [`Connection::spawn`], answering every `getdata` with `server` in the task itself:
    /// the answer is written before anything read after the request, and no queue between the
    /// pool and the connection can lose it.
    pub(crate) fn spawn_serving(
        stream: BoxStream,
        remote: Option<SocketAddr>,
        config: ConnectionConfig,
        server: Option<GetDataServer>,
    ) -> Connection {
        let (orders_tx, orders_rx) = mpsc::channel(COMMAND_QUEUE);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let task = tokio::spawn(async move {
            let mut task = Task::new(config, remote, events_tx);
            task.server = server;
            let reason = task.drive(stream, orders_rx).await;
            let _ = task.events.send(ConnEvent::Closed(reason)).await;
        });
        Connection {
            sender: FrameSender { orders: orders_tx },
            events: events_rx,
            task,
        }
    }

    /// The next event; `None` after [`ConnEvent::Closed`].
    pub async fn recv(&mut self) -> Option<ConnEvent> {
        self.events.recv().await
    }

    /// A handle to queue messages.
    pub fn sender(&self) -> FrameSender {
        self.sender.clone()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Our address as the core wants it: IPv4 mapped into IPv6.
fn net_addr(remote: Option<SocketAddr>, services: u64) -> NetAddr {
    let (ip, port) = match remote {
        Some(a) => {
            let ip = match a.ip() {
                IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                IpAddr::V6(v6) => v6.octets(),
            };
            (ip, a.port())
        }
        None => ([0; 16], 0),
    };
    NetAddr { services, ip, port }
}

struct Task {
    peer: Box<Peer<'static>>,
    config: ConnectionConfig,
    /// The core peer's time: core instants since the connection opened.
    clock: Clock,
    events: mpsc::Sender<ConnEvent>,
    out: Vec<u8>,
    lists: ListCollector,
    ready: bool,
    /// When the outstanding ping was sent.
    ping_sent: Option<Instant>,
    /// When to ping next (once ready and no ping is outstanding).
    next_ping: Option<Instant>,
    server: Option<GetDataServer>,
    /// Answers to `getdata` not written yet (at most one per message read in one chunk).
    answers: Vec<Order>,
}

impl Task {
    fn new(
        config: ConnectionConfig,
        remote: Option<SocketAddr>,
        events: mpsc::Sender<ConnEvent>,
    ) -> Task {
        let peer = Box::new(Peer::new(
            PeerStorage::owned(),
            PeerConfig {
                magic: config.magic,
                services: config.services,
                receiver: net_addr(remote, 0),
                user_agent: config.user_agent.as_bytes(),
                start_height: config.start_height,
                relay: config.relay,
                unix_time: clock::unix_now(),
                handshake_timeout: config.handshake_timeout.into(),
                ping_timeout: config.ping_timeout.into(),
                request_timeout: config.request_timeout.into(),
            },
            electrum_spv_core::time::Instant::ZERO,
            super::random_u64(),
        ));
        Task {
            peer,
            config,
            clock: Clock::start(),
            events,
            out: vec![0u8; 4096],
            lists: ListCollector::default(),
            ready: false,
            ping_sent: None,
            next_ping: None,
            server: None,
            answers: Vec::new(),
        }
    }

    fn now(&self) -> electrum_spv_core::time::Instant {
        self.clock.now()
    }

    /// The earliest of the core's deadline (handshake, pong, getheaders) and the next ping.
    fn deadline(&self) -> Option<Instant> {
        let core = self.peer.poll_timeout().map(|t| self.clock.deadline(t));
        let ping = self.next_ping.filter(|_| self.ping_sent.is_none());
        [core, ping].into_iter().flatten().min()
    }

    async fn drive(
        &mut self,
        mut stream: BoxStream,
        mut orders: mpsc::Receiver<Order>,
    ) -> DropReason {
        let mut read_buf = vec![0u8; READ_CHUNK];
        loop {
            if let Err(reason) = self.flush(&mut stream).await {
                return reason;
            }
            for order in std::mem::take(&mut self.answers) {
                if let Err(reason) = self.order(order, &mut stream).await {
                    return reason;
                }
            }
            let deadline = self.deadline();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let events = self.events.clone();
            tokio::select! {
                read = stream.read(&mut read_buf) => match read {
                    Ok(0) => return DropReason::Eof,
                    Ok(n) => {
                        let bytes = read_buf.get(..n).unwrap_or(&[]);
                        if let Err(reason) = self.input(bytes, &mut stream).await {
                            return reason;
                        }
                    }
                    Err(e) => return DropReason::Io(e.kind()),
                },
                order = orders.recv(), if self.ready => match order {
                    Some(order) => {
                        if let Err(reason) = self.order(order, &mut stream).await {
                            return reason;
                        }
                    }
                    None => return DropReason::Shutdown,
                },
                () = sleep => {
                    if let Err(reason) = self.on_timer().await {
                        return reason;
                    }
                }
                () = events.closed() => return DropReason::Shutdown,
            }
        }
    }

    /// Writes what the owner ordered, after the core's queued bytes (they may answer what came
    /// before).
    async fn order(&mut self, order: Order, stream: &mut BoxStream) -> Result<(), DropReason> {
        match order {
            Order::Send(msg) => {
                for part in msg.parts() {
                    self.send(&part, stream).await?;
                }
                Ok(())
            }
            Order::Serve(permit, raw) => {
                self.flush(stream).await?;
                // The table checked the bytes when the transaction was added.
                let Ok(wire) = WireTx::parse(&raw) else {
                    return Ok(());
                };
                match self.peer.serve_tx(&permit, &wire) {
                    Ok(frame) => {
                        let limit = self.config.ping_timeout;
                        write(stream, &frame.header, limit).await?;
                        for piece in frame.payload {
                            write(stream, piece, limit).await?;
                        }
                        Ok(())
                    }
                    // Not ready any more (the failure is reported as an event), or a permit for
                    // other bytes (the pool's mistake): nothing is written.
                    Err(_) => Ok(()),
                }
            }
        }
    }

    /// Queues `msg` on the core peer, writing its buffer out when full.
    async fn send(&mut self, msg: &Outgoing<'_>, stream: &mut BoxStream) -> Result<(), DropReason> {
        loop {
            match self.peer.send(self.now(), msg) {
                Ok(()) => return Ok(()),
                Err(CoreSendError::Full) => {
                    // Flushed, the buffer takes any message of `parts()`; if nothing was
                    // queued, this one can never fit: drop it rather than spin.
                    if !self.flush(stream).await? {
                        return Ok(());
                    }
                }
                Err(_) => return Ok(()),
            }
        }
    }

    /// Feeds `bytes` to the core peer as its contract asks.
    async fn input(&mut self, bytes: &[u8], stream: &mut BoxStream) -> Result<(), DropReason> {
        let mut rest = bytes;
        loop {
            let now = self.now();
            let n = self.peer.handle_input(now, rest);
            rest = rest.get(n..).unwrap_or(&[]);
            let got = self.drain_events().await?;
            let sent = self.flush(stream).await?;
            if rest.is_empty() && !got {
                return Ok(());
            }
            if n == 0 && !got && !sent && !rest.is_empty() {
                return Err(DropReason::CoreStalled);
            }
        }
    }

    /// Moves the core's events to the owner; `true` if there was any.
    async fn drain_events(&mut self) -> Result<bool, DropReason> {
        let mut any = false;
        while let Some(event) = self.peer.poll_event() {
            any = true;
            let out = match self.lists.take(event) {
                Collected::Taken => continue,
                Collected::List(command, items) => {
                    if let (Command::GetData, Some(server)) = (command, &self.server) {
                        let answers = server(&items);
                        self.answers.extend(
                            answers
                                .serve
                                .into_iter()
                                .map(|(permit, raw)| Order::Serve(permit, raw)),
                        );
                        if !answers.not_found.is_empty() {
                            let not_found = OwnedMessage::NotFound(answers.not_found);
                            self.answers.push(Order::Send(not_found));
                        }
                    }
                    ConnEvent::List {
                        command,
                        items,
                        time_ms: super::unix_ms(),
                    }
                }
                Collected::Other(PeerEvent::Ready(info)) => {
                    self.ready = true;
                    // The first ping at once: the pool ranks peers by it.
                    self.next_ping = Some(Instant::now());
                    ConnEvent::Ready(info)
                }
                Collected::Other(PeerEvent::Pong { rtt, .. }) => {
                    self.ping_sent = None;
                    self.next_ping = Some(Instant::now() + self.config.ping_interval);
                    ConnEvent::Pong {
                        rtt_ms: rtt.millis(),
                    }
                }
                Collected::Other(PeerEvent::Failed(PeerError::PingTimeout)) => {
                    return Err(DropReason::PingTimeout);
                }
                Collected::Other(PeerEvent::Failed(e)) => return Err(DropReason::Peer(e)),
                Collected::Other(other) => ConnEvent::Other(other),
            };
            self.events
                .send(out)
                .await
                .map_err(|_| DropReason::Shutdown)?;
        }
        Ok(any)
    }

    /// The core's deadline (handshake, pong, getheaders) or a ping due.
    async fn on_timer(&mut self) -> Result<(), DropReason> {
        let now = self.now();
        self.peer.handle_timeout(now);
        self.drain_events().await?;
        let at = Instant::now();
        if self.ping_sent.is_none() && self.next_ping.is_some_and(|t| at >= t) {
            match self.peer.ping(now, super::random_u64()) {
                Ok(()) => self.ping_sent = Some(at),
                // The outgoing buffer is full: it is written before the next loop, then
                // the ping is due again at once.
                Err(CoreSendError::Full) => {}
                Err(_) => self.next_ping = None,
            }
        }
        Ok(())
    }

    /// Writes everything the core peer queued; `true` if there was anything.
    async fn flush(&mut self, stream: &mut BoxStream) -> Result<bool, DropReason> {
        let mut any = false;
        loop {
            let n = self.peer.poll_transmit(&mut self.out);
            if n == 0 {
                break;
            }
            any = true;
            let chunk = self.out.get(..n).unwrap_or(&[]);
            write(stream, chunk, self.config.ping_timeout).await?;
        }
        Ok(any)
    }
}

/// Writes `bytes` whole within `limit`.
async fn write(stream: &mut BoxStream, bytes: &[u8], limit: Duration) -> Result<(), DropReason> {
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    match tokio::time::timeout(limit, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(DropReason::Io(e.kind())),
        Err(_) => Err(DropReason::WriteStalled),
    }
}
