//! A sans-IO state machine for one P2P connection: the handshake and ping/pong.
//!
//! [`Peer`] has the five calls of [`Session`](crate::session::Session): feed received bytes
//! with [`handle_input`](Peer::handle_input), write what [`poll_transmit`](Peer::poll_transmit)
//! gives to the connection, take [`PeerEvent`]s from [`poll_event`](Peer::poll_event), and call
//! [`handle_timeout`](Peer::handle_timeout) at [`poll_timeout`](Peer::poll_timeout). Time is the
//! caller's [`Instant`], as in [the caller's loop](crate#the-callers-loop); nonces are the
//! caller's too (draw them at random).
//!
//! ## Handshake (as Bitcoin Core 0.21+ does it)
//! * Our `version` ([`PROTOCOL_VERSION`], our services, the caller's nonce, the relay flag) is
//!   queued by [`Peer::new`].
//! * On their `version`: a nonce equal to ours is [`PeerError::SelfConnection`]; a protocol
//!   version under [`MIN_PEER_PROTO_VERSION`] is [`PeerError::Obsolete`]; if theirs is at least
//!   [`WTXID_RELAY_VERSION`] we send `wtxidrelay` and `sendaddrv2` **before** `verack`, then
//!   `verack`.
//! * Between their `version` and their `verack` only `wtxidrelay`, `sendaddrv2` and commands
//!   not decoded here are accepted; anything else (and anything but `version` before their
//!   `version`) is [`PeerError::BeforeVerack`]. `wtxidrelay` or `sendaddrv2` after their
//!   `verack` is [`PeerError::AfterVerack`]; a second `version` is ignored, as Core does, and
//!   so are unknown commands before their `version`.
//! * Their `verack` completes the handshake (ours was sent on their `version`):
//!   [`PeerEvent::Ready`]. If that has not happened by the deadline
//!   ([`PeerConfig::handshake_timeout`] after [`Peer::new`]), [`handle_timeout`](Peer::handle_timeout)
//!   fails the peer with [`PeerError::Timeout`].
//!
//! ## Ping
//! [`Peer::ping`] sends a `ping`; the `pong` with its nonce is [`PeerEvent::Pong`] with the
//! round trip time. A `pong` with any other nonce (or with no ping outstanding) is ignored and
//! counted ([`Peer::ignored_pongs`]). Their `ping` is answered with a `pong` of its nonce.
//!
//! ## Other messages, once ready
//! Passed up: `sendheaders`, `feefilter`, `sendcmpct`, `getaddr`, `inv` / `getdata` /
//! `notfound` / `headers` (list start, each item, list end), `reject`, the IP addresses of
//! `addr` and `addrv2` ([`PeerEvent::Addr`], entry by entry), and a `tx`'s ids
//! ([`PeerEvent::Tx`]; its bytes are not kept). A malformed message that the reader dropped
//! without losing the stream is [`PeerEvent::Dropped`]. Ignored: `getheaders`, a `tx`'s start
//! and bytes, addresses of other networks than IP, and commands not decoded here.
//!
//! ## Bounds
//! The peer works in the caller's [`PeerStorage`]: a message buffer of at least
//! [`BUFFER_SIZE`](super::BUFFER_SIZE) bytes and an outgoing queue of at least
//! [`MIN_OUT_CAPACITY`], sized at run time; outgoing bytes wait there, taken from its front by
//! [`Peer::poll_transmit`] without moving the rest. At most [`MAX_EVENTS`] events wait to be
//! polled. [`Peer::handle_input`] stops (returns fewer bytes than given) while an event waits
//! or while fewer than [`REPLY_RESERVE`] bytes of the queue are free: drain both and feed the
//! rest. `size_of::<Peer>()` is at most [`PEER_MAX_SIZE`] whatever the buffers' sizes
//! (tested).

use core::fmt;

use heapless::{Deque, Vec};

use super::broadcast::ServePermit;
use super::serve::{TxFrame, WireTx};
use super::storage::PeerStorage;
use super::{
    Command, InvVector, MAX_USER_AGENT, Magic, Message, MessageError, MessageReader, NetAddr,
    Outgoing, Version, encode,
};
use crate::buffer::Buffer;
use crate::hash::{Txid, Wtxid};
use crate::time::{Duration, Instant, UnixTime};

/// The protocol version we announce (Core 0.21's `PROTOCOL_VERSION`).
pub const PROTOCOL_VERSION: i32 = 70016;
/// The protocol version from which `wtxidrelay` is sent (BIP339's `WTXID_RELAY_VERSION`).
pub const WTXID_RELAY_VERSION: i32 = 70016;
/// Largest `feefilter` honoured: Core's money range, 21 million BTC in sat per 1000 vB.
pub const MAX_FEE_FILTER: i64 = 2_100_000_000_000_000;
/// Oldest protocol version accepted (Core's `MIN_PEER_PROTO_VERSION`).
pub const MIN_PEER_PROTO_VERSION: i32 = 31800;
/// Least bytes of the outgoing queue: our `version` with a user agent of [`MAX_USER_AGENT`]
/// (24 + 340 bytes), the three handshake replies and room for pings and pongs.
pub const MIN_OUT_CAPACITY: usize = 512;
/// Free outgoing bytes [`Peer::handle_input`] needs before it reads another message: the
/// largest reply to one message (`wtxidrelay`, `sendaddrv2`, `verack`: three empty frames).
pub const REPLY_RESERVE: usize = 3 * super::HEADER_SIZE;
/// Size of a `ping` or `pong` frame.
pub const PING_FRAME_SIZE: usize = super::HEADER_SIZE + 8;
/// Most events waiting to be polled: [`Peer::handle_input`] takes a new byte only when none
/// waits, and then an empty feed may end the list whose last item was just reported.
pub const MAX_EVENTS: usize = 2;
/// Upper bound of `size_of::<Peer>()` (tested), whatever the sizes of its buffers: a
/// [`MessageReader`], the outgoing queue's pointer, the remote's version info (its user agent
/// of up to [`MAX_USER_AGENT`] bytes inline) and [`MAX_EVENTS`] waiting events.
pub const PEER_MAX_SIZE: usize = super::MESSAGE_READER_MAX_SIZE + 1088;

/// Longest user agent we send (what the reader accepts).
const USER_AGENT_CAP: usize = MAX_USER_AGENT as usize;

/// A user agent, copied from a `version`.
pub type UserAgent = Vec<u8, USER_AGENT_CAP>;

/// What we announce in our `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerConfig<'a> {
    /// The network.
    pub magic: Magic,
    /// Our service bits (a light client: usually 0, or `NODE_WITNESS`).
    pub services: u64,
    /// The remote's address as we see it (Core fills in the peer's address and services).
    pub receiver: NetAddr,
    /// Our user agent, at most [`MAX_USER_AGENT`] bytes (BIP14, e.g. `/electrum-spv:0.1/`).
    pub user_agent: &'a [u8],
    /// Height of our best chain.
    pub start_height: i32,
    /// BIP37 relay flag: whether the remote should announce transactions to us.
    pub relay: bool,
    /// The caller's wall-clock time, for the `version`'s timestamp.
    pub unix_time: UnixTime,
    /// How long the handshake may take.
    pub handshake_timeout: Duration,
    /// How long a `pong` may take before the peer fails with [`PeerError::PingTimeout`]
    /// (Core: 20 minutes).
    pub ping_timeout: Duration,
    /// How long a `getheaders` may go unanswered before [`PeerEvent::RequestTimeout`] (not a
    /// failure: bcoin does not answer a `getheaders` at its tip).
    pub request_timeout: Duration,
}

/// BIP155 network id of IPv4.
const ADDRV2_IPV4: u8 = 1;
/// BIP155 network id of IPv6.
const ADDRV2_IPV6: u8 = 2;

/// A node address a peer gossiped (`addr`, or an IP entry of `addrv2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GossipAddr {
    /// When the peer says the node was last seen (Unix seconds).
    pub time: u32,
    /// Its service bits, as gossiped.
    pub services: u64,
    /// IPv6, or IPv4 mapped into `::ffff:0:0/96`.
    pub ip: [u8; 16],
    /// TCP port.
    pub port: u16,
}

/// What the remote announced, as [`PeerEvent::Ready`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Their protocol version.
    pub version: i32,
    /// Their service bits.
    pub services: u64,
    /// Their user agent (at most [`MAX_USER_AGENT`] bytes, as sent).
    pub user_agent: UserAgent,
    /// Height of their best chain when they connected.
    pub start_height: i32,
    /// Their relay flag (`true` when absent).
    pub relay: bool,
    /// Transactions are announced by wtxid (BIP339): both sides sent `wtxidrelay`.
    pub wtxid_relay: bool,
    /// They sent `sendaddrv2` (BIP155): they want `addrv2`.
    pub addrv2: bool,
}

/// Why a peer failed. Every error is final: drop the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerError {
    /// A message other than `wtxidrelay`, `sendaddrv2` or an unknown command came before their
    /// `verack` (or anything but `version` before their `version`).
    BeforeVerack {
        /// The command.
        command: Command,
    },
    /// `wtxidrelay` or `sendaddrv2` after their `verack`.
    AfterVerack {
        /// The command.
        command: Command,
    },
    /// Their `version` carries our nonce: we connected to ourselves.
    SelfConnection,
    /// Their protocol version is under [`MIN_PEER_PROTO_VERSION`].
    Obsolete(i32),
    /// The handshake did not finish before its deadline.
    Timeout,
    /// Our `ping` got no `pong` before its deadline ([`PeerConfig::ping_timeout`]).
    PingTimeout,
    /// The byte stream cannot be read on (a fatal [`MessageError`]).
    Message(MessageError),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::BeforeVerack { command } => write!(f, "{command} before verack"),
            PeerError::AfterVerack { command } => write!(f, "{command} after verack"),
            PeerError::SelfConnection => f.write_str("connected to self"),
            PeerError::Obsolete(v) => write!(f, "obsolete protocol version {v}"),
            PeerError::Timeout => f.write_str("handshake timed out"),
            PeerError::PingTimeout => f.write_str("no pong before the ping deadline"),
            PeerError::Message(e) => e.fmt(f),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PeerError {}

/// Why [`Peer::ping`], [`Peer::send`] or [`Peer::serve_tx`] sent nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The handshake is not complete, or the peer failed.
    NotReady,
    /// The outgoing buffer has no room: poll it first.
    Full,
    /// A `tx` frame needs the outgoing buffer drained first (it is written after it).
    Pending,
    /// The handshake's messages are the peer's own, and a `tx` goes only through
    /// [`Peer::serve_tx`].
    NotAllowed(Command),
    /// The transaction is not the one the permit names.
    WrongTx,
    /// The message does not encode (too many items, ...).
    Encode(super::EncodeError),
}

/// The name [`Peer::ping`]'s errors had when it was the only sender.
pub type PingError = SendError;

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotReady => f.write_str("peer not ready"),
            SendError::Full => f.write_str("outgoing buffer full"),
            SendError::Pending => f.write_str("outgoing bytes wait before a tx frame"),
            SendError::NotAllowed(c) => write!(f, "{c} is not sent this way"),
            SendError::WrongTx => f.write_str("transaction does not match the permit"),
            SendError::Encode(e) => e.fmt(f),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SendError {}

/// What [`Peer::poll_event`] reports.
// `Ready` carries the user agent by value: there is no heap to box it into, and the peer holds
// one event at a time.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// The handshake is complete.
    Ready(PeerInfo),
    /// The pong of our outstanding ping.
    Pong {
        /// Its nonce.
        nonce: u64,
        /// Caller time from [`Peer::ping`] to the input that completed the pong.
        rtt: Duration,
    },
    /// The peer failed (reported once; the peer then ignores input and sends nothing).
    Failed(PeerError),
    /// A message was malformed and dropped; the stream goes on.
    Dropped(MessageError),
    /// `sendheaders`.
    SendHeaders,
    /// `feefilter`, satoshis per 1000 virtual bytes, as sent.
    FeeFilter(i64),
    /// `sendcmpct`.
    SendCmpct {
        /// High-bandwidth mode requested.
        announce: bool,
        /// Compact block version.
        version: u64,
    },
    /// `getaddr`.
    GetAddr,
    /// An `inv`, `getdata`, `notfound` or `headers` starts.
    ListStart {
        /// Which list.
        command: Command,
        /// How many items follow.
        count: u32,
    },
    /// An entry of `inv`, `getdata` or `notfound` (provisional until [`PeerEvent::ListEnd`]).
    Inventory(InvVector),
    /// A header of `headers`.
    Header([u8; 80]),
    /// A list ended and its checksum matched.
    ListEnd {
        /// Which list.
        command: Command,
    },
    /// A `reject` (BIP61; informational).
    Reject {
        /// The command rejected, as sent (at most 12 bytes).
        message: Command,
        /// Reject code (0x01 malformed, 0x10 invalid, 0x40 nonstandard, ...).
        code: u8,
        /// The rejected object's hash, when sent.
        hash: Option<[u8; 32]>,
    },
    /// Our `getheaders` got no `headers` within [`PeerConfig::request_timeout`].
    RequestTimeout {
        /// The request's command.
        command: Command,
    },
    /// An entry of `addr`, or an IPv4 or IPv6 entry of `addrv2` (other networks are not
    /// reported). Not covered by the message's checksum yet, and unverifiable anyway: an
    /// address to try, nothing more.
    Addr(GossipAddr),
    /// A `tx` was received whole (its bytes are not kept).
    Tx {
        /// Its txid.
        txid: Txid,
        /// Its wtxid.
        wtxid: Wtxid,
        /// Its size in bytes.
        len: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for their `version`.
    AwaitVersion,
    /// Their `version` came; waiting for their `verack`.
    AwaitVerack,
    /// Handshake complete.
    Ready,
    /// Failed; the failure was or is to be reported.
    Failed,
}

/// A message, owned, as the peer handles it.
enum Incoming {
    Version(PeerInfo, u64),
    Verack,
    Ping(u64),
    Pong(u64),
    WtxidRelay,
    SendAddrV2,
    /// A command not decoded by the reader: accepted before verack, ignored after.
    Unknown(Command),
    /// Decoded and passed up once ready; refused before verack.
    Event(Command, Option<PeerEvent>),
    /// Part of a message whose start was already checked (a `tx`'s bytes, an `addr` entry):
    /// never reported.
    Nothing,
}

fn incoming(msg: Message<'_>) -> Incoming {
    match msg {
        Message::Version(v) => {
            let mut user_agent = UserAgent::new();
            let n = v.user_agent.len().min(USER_AGENT_CAP);
            let _ = user_agent.extend_from_slice(v.user_agent.get(..n).unwrap_or(&[]));
            let info = PeerInfo {
                version: v.version,
                services: v.services,
                user_agent,
                start_height: v.start_height,
                relay: v.relay.unwrap_or(true),
                wtxid_relay: false,
                addrv2: false,
            };
            Incoming::Version(info, v.nonce)
        }
        Message::Verack => Incoming::Verack,
        Message::Ping(n) => Incoming::Ping(n),
        Message::Pong(n) => Incoming::Pong(n),
        Message::WtxidRelay => Incoming::WtxidRelay,
        Message::SendAddrV2 => Incoming::SendAddrV2,
        Message::Unknown { command, .. } => Incoming::Unknown(command),
        Message::SendHeaders => Incoming::Event(Command::SendHeaders, Some(PeerEvent::SendHeaders)),
        Message::FeeFilter(r) => Incoming::Event(Command::FeeFilter, Some(PeerEvent::FeeFilter(r))),
        Message::GetAddr => Incoming::Event(Command::GetAddr, Some(PeerEvent::GetAddr)),
        Message::SendCmpct { announce, version } => Incoming::Event(
            Command::SendCmpct,
            Some(PeerEvent::SendCmpct { announce, version }),
        ),
        Message::Reject(r) => {
            let mut field = [0u8; super::COMMAND_SIZE];
            let n = r.message.len().min(super::COMMAND_SIZE);
            if let (Some(dst), Some(src)) = (field.get_mut(..n), r.message.get(..n)) {
                dst.copy_from_slice(src);
            }
            let event = Command::parse(&field).map(|message| PeerEvent::Reject {
                message,
                code: r.code,
                hash: r.hash,
            });
            Incoming::Event(Command::Reject, event)
        }
        Message::ListStart { command, count } => {
            let event = reported_list(command).then_some(PeerEvent::ListStart { command, count });
            Incoming::Event(command, event)
        }
        Message::ListEnd { command } => {
            let event = reported_list(command).then_some(PeerEvent::ListEnd { command });
            Incoming::Event(command, event)
        }
        Message::Inventory(inv) => Incoming::Event(Command::Inv, Some(PeerEvent::Inventory(inv))),
        Message::Header(h) => Incoming::Event(Command::Headers, Some(PeerEvent::Header(*h))),
        Message::Addr(a) => Incoming::Event(
            Command::Addr,
            Some(PeerEvent::Addr(GossipAddr {
                time: a.time,
                services: a.addr.services,
                ip: a.addr.ip,
                port: a.addr.port,
            })),
        ),
        Message::AddrV2(a) => {
            let ip = match (a.network, a.addr) {
                (ADDRV2_IPV4, &[a0, a1, a2, a3]) => {
                    Some([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a0, a1, a2, a3])
                }
                (ADDRV2_IPV6, bytes) => <[u8; 16]>::try_from(bytes).ok(),
                _ => None,
            };
            let event = ip.map(|ip| {
                PeerEvent::Addr(GossipAddr {
                    time: a.time,
                    services: a.services,
                    ip,
                    port: a.port,
                })
            });
            Incoming::Event(Command::AddrV2, event)
        }
        Message::GetHeadersStart { .. } => Incoming::Event(Command::GetHeaders, None),
        Message::Locator(_) | Message::GetHeadersEnd { .. } => Incoming::Nothing,
        Message::TxStart { .. } => Incoming::Event(Command::Tx, None),
        Message::TxBytes(_) => Incoming::Nothing,
        Message::Tx { txid, wtxid, len } => {
            Incoming::Event(Command::Tx, Some(PeerEvent::Tx { txid, wtxid, len }))
        }
    }
}

fn reported_list(command: Command) -> bool {
    matches!(
        command,
        Command::Inv | Command::GetData | Command::NotFound | Command::Headers
    )
}

/// One P2P connection's handshake and ping/pong, sans-IO. See the [module docs](self).
#[derive(Debug)]
pub struct Peer<'a> {
    magic: Magic,
    reader: MessageReader<'a>,
    state: State,
    nonce: u64,
    deadline: Instant,
    out: Buffer<'a, u8>,
    /// The queued bytes are `out[out_start..out_end]`.
    out_start: usize,
    out_end: usize,
    info: Option<PeerInfo>,
    events: Deque<PeerEvent, MAX_EVENTS>,
    failure: Option<(PeerError, bool)>,
    /// Nonce and send time of our outstanding ping.
    ping: Option<(u64, Instant)>,
    ignored_pongs: u32,
    ping_timeout: Duration,
    request_timeout: Duration,
    /// Deadline of our outstanding `getheaders`.
    headers_deadline: Option<Instant>,
    /// A request timed out and is to be reported.
    timed_out: Option<Command>,
    fee_filter: Option<i64>,
    send_headers: bool,
}

impl<'a> Peer<'a> {
    /// A peer at the start of a connection at caller time `now`, working in `storage`, with our
    /// `version` (carrying `nonce`) queued. A user agent over [`MAX_USER_AGENT`] bytes is cut
    /// to that length.
    pub fn new(
        storage: PeerStorage<'a>,
        config: PeerConfig<'_>,
        now: Instant,
        nonce: u64,
    ) -> Peer<'a> {
        let PeerStorage { message, out } = storage;
        let mut peer = Peer {
            magic: config.magic,
            reader: MessageReader::over(config.magic, message),
            state: State::AwaitVersion,
            nonce,
            deadline: now + config.handshake_timeout,
            out,
            out_start: 0,
            out_end: 0,
            info: None,
            events: Deque::new(),
            failure: None,
            ping: None,
            ignored_pongs: 0,
            ping_timeout: config.ping_timeout,
            request_timeout: config.request_timeout,
            headers_deadline: None,
            timed_out: None,
            fee_filter: None,
            send_headers: false,
        };
        let user_agent = config
            .user_agent
            .get(..config.user_agent.len().min(USER_AGENT_CAP))
            .unwrap_or(&[]);
        let version = Version {
            version: PROTOCOL_VERSION,
            services: config.services,
            timestamp: i64::from(config.unix_time.secs()),
            receiver: config.receiver,
            sender: NetAddr {
                services: config.services,
                ip: [0; 16],
                port: 0,
            },
            nonce,
            user_agent,
            start_height: config.start_height,
            relay: Some(config.relay),
            extra: &[],
        };
        // Fits: 24 + 80 + 3 + MAX_USER_AGENT + 5 < MIN_OUT_CAPACITY.
        let _ = peer.send_raw(&Outgoing::Version(version));
        peer
    }

    /// The handshake is complete and the peer has not failed.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Why the peer failed, if it did.
    pub fn failure(&self) -> Option<PeerError> {
        self.failure.map(|(e, _)| e)
    }

    /// What the remote announced, once the handshake is complete.
    pub fn info(&self) -> Option<&PeerInfo> {
        if self.state == State::Ready {
            self.info.as_ref()
        } else {
            None
        }
    }

    /// Pongs ignored: a wrong nonce, or none outstanding.
    pub fn ignored_pongs(&self) -> u32 {
        self.ignored_pongs
    }

    /// The fee rate below which the remote wants no announcements (BIP133 `feefilter`,
    /// satoshis per 1000 virtual bytes), if it sent one in the money range.
    pub fn fee_filter(&self) -> Option<i64> {
        self.fee_filter
    }

    /// Whether the remote would take a transaction paying `fee_rate` (sat per 1000 vB):
    /// `false` only when its `feefilter` is higher. Announce nothing it would not take.
    pub fn accepts_fee_rate(&self, fee_rate: u64) -> bool {
        self.fee_filter
            .is_none_or(|min| u64::try_from(min).is_ok_and(|min| fee_rate >= min))
    }

    /// The remote sent `sendheaders` (BIP130): it announces blocks with `headers`.
    pub fn announces_headers(&self) -> bool {
        self.send_headers
    }

    /// Sends a `ping` with `nonce` at caller time `now`. A ping still outstanding is forgotten
    /// (its pong will be ignored); without a `pong` within [`PeerConfig::ping_timeout`] the
    /// peer fails with [`PeerError::PingTimeout`].
    pub fn ping(&mut self, now: Instant, nonce: u64) -> Result<(), SendError> {
        if self.state != State::Ready {
            return Err(SendError::NotReady);
        }
        if self.out_free() < PING_FRAME_SIZE {
            return Err(SendError::Full);
        }
        self.send_raw(&Outgoing::Ping(nonce));
        self.ping = Some((nonce, now));
        Ok(())
    }

    /// Queues `msg` at caller time `now`: `inv`, `getdata`, `notfound`, `getheaders` (its
    /// answer is awaited, see [`PeerEvent::RequestTimeout`]), `headers`, `sendheaders`,
    /// `feefilter`, `getaddr`, `addr`, `addrv2`, `sendcmpct`, `reject`, `pong`.
    ///
    /// # Errors
    /// [`SendError::NotReady`] before the handshake completes; [`SendError::NotAllowed`] for
    /// the handshake's own messages, `ping` (use [`Peer::ping`]) and `tx` (use
    /// [`Peer::serve_tx`]); [`SendError::Full`] if it does not fit in the free part of the
    /// outgoing buffer (poll it, then send again; a message larger than
    /// [`MIN_OUT_CAPACITY`] never fits: split lists).
    pub fn send(&mut self, now: Instant, msg: &Outgoing<'_>) -> Result<(), SendError> {
        match msg {
            Outgoing::Version(_)
            | Outgoing::Verack
            | Outgoing::WtxidRelay
            | Outgoing::SendAddrV2
            | Outgoing::Ping(_)
            | Outgoing::Tx(_) => return Err(SendError::NotAllowed(msg.command())),
            _ => {}
        }
        if self.state != State::Ready {
            return Err(SendError::NotReady);
        }
        match self.enqueue(msg) {
            Ok(()) => {}
            Err(super::EncodeError::BufferTooSmall { .. }) => return Err(SendError::Full),
            Err(e) => return Err(SendError::Encode(e)),
        }
        if let Outgoing::GetHeaders { .. } = msg {
            self.headers_deadline = Some(now + self.request_timeout);
        }
        Ok(())
    }

    /// The `tx` frame answering a `getdata` the [`BroadcastTable`](super::BroadcastTable)
    /// allowed: write `frame.header` and then each of `frame.payload` to the connection, before
    /// anything [`Peer::poll_transmit`] gives next.
    ///
    /// # Errors
    /// [`SendError::NotReady`]; [`SendError::Pending`] while queued bytes wait (drain
    /// [`Peer::poll_transmit`] first, so the frame is not written before them);
    /// [`SendError::WrongTx`] if `tx` is not the transaction the permit names.
    pub fn serve_tx<'t>(
        &mut self,
        permit: &ServePermit,
        tx: &WireTx<'t>,
    ) -> Result<TxFrame<'t>, SendError> {
        if self.state != State::Ready {
            return Err(SendError::NotReady);
        }
        if self.out_end != self.out_start {
            return Err(SendError::Pending);
        }
        if !tx.is_named_by(&permit.inv()) {
            return Err(SendError::WrongTx);
        }
        Ok(tx.frame(self.magic, permit.form()))
    }

    /// Takes received bytes at caller time `now`; returns how many were consumed. Fewer than
    /// given means an event or outgoing bytes must be drained first ([`Peer::poll_event`] until
    /// `None`, [`Peer::poll_transmit`]); then feed the rest. After a failure all input is
    /// consumed and ignored.
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) -> usize {
        let mut used = 0;
        loop {
            if self.state == State::Failed {
                return input.len();
            }
            let rest = input.get(used..).unwrap_or(&[]);
            // A new byte only with no event waiting; with one waiting, an empty feed may still
            // finish a list whose last byte came with its last item (its end event).
            if self.events.is_full()
                || (!self.events.is_empty() && !rest.is_empty())
                || self.out_free() < REPLY_RESERVE
            {
                return used;
            }
            let (n, result) = self.reader.feed(rest);
            used += n;
            let msg = match result {
                Ok(None) => return used,
                Ok(Some(msg)) => incoming(msg),
                Err(e) if e.is_fatal() => {
                    self.fail(PeerError::Message(e));
                    continue;
                }
                Err(e) => {
                    self.push(PeerEvent::Dropped(e));
                    continue;
                }
            };
            self.handle(now, msg);
        }
    }

    fn push(&mut self, event: PeerEvent) {
        // Never full here: `handle_input` feeds only with a free slot, and one feed gives at
        // most one event.
        let _ = self.events.push_back(event);
    }

    fn handle(&mut self, now: Instant, msg: Incoming) {
        match (self.state, msg) {
            (_, Incoming::Nothing) | (State::Failed, _) => {}
            (State::AwaitVersion, Incoming::Version(info, nonce)) => {
                if nonce == self.nonce {
                    return self.fail(PeerError::SelfConnection);
                }
                if info.version < MIN_PEER_PROTO_VERSION {
                    return self.fail(PeerError::Obsolete(info.version));
                }
                if info.version >= WTXID_RELAY_VERSION {
                    self.send_raw(&Outgoing::WtxidRelay);
                    self.send_raw(&Outgoing::SendAddrV2);
                }
                self.send_raw(&Outgoing::Verack);
                self.info = Some(info);
                self.state = State::AwaitVerack;
            }
            (State::AwaitVersion, Incoming::Unknown(_)) => {}
            (State::AwaitVersion, msg) => self.fail(PeerError::BeforeVerack {
                command: command_of(&msg),
            }),
            (State::AwaitVerack, Incoming::WtxidRelay) => {
                if let Some(info) = &mut self.info {
                    // Core ignores `wtxidrelay` from a peer under 70016; we did not send ours.
                    info.wtxid_relay = info.version >= WTXID_RELAY_VERSION;
                }
            }
            (State::AwaitVerack, Incoming::SendAddrV2) => {
                if let Some(info) = &mut self.info {
                    info.addrv2 = true;
                }
            }
            (State::AwaitVerack, Incoming::Unknown(_)) => {}
            (State::AwaitVerack, Incoming::Verack) => {
                self.state = State::Ready;
                if let Some(info) = self.info.clone() {
                    self.push(PeerEvent::Ready(info));
                }
            }
            (State::AwaitVerack, msg) => self.fail(PeerError::BeforeVerack {
                command: command_of(&msg),
            }),
            (State::Ready, Incoming::WtxidRelay) => self.fail(PeerError::AfterVerack {
                command: Command::WtxidRelay,
            }),
            (State::Ready, Incoming::SendAddrV2) => self.fail(PeerError::AfterVerack {
                command: Command::SendAddrV2,
            }),
            (State::Ready, Incoming::Ping(nonce)) => {
                self.send_raw(&Outgoing::Pong(nonce));
            }
            (State::Ready, Incoming::Pong(nonce)) => match self.ping {
                Some((sent, at)) if sent == nonce => {
                    self.ping = None;
                    self.push(PeerEvent::Pong {
                        nonce,
                        rtt: now - at,
                    });
                }
                _ => self.ignored_pongs = self.ignored_pongs.saturating_add(1),
            },
            (State::Ready, Incoming::Event(_, event)) => {
                match &event {
                    // Core ignores a rate outside its money range (0..=21e14 sat/kvB).
                    Some(PeerEvent::FeeFilter(rate)) if (0..=MAX_FEE_FILTER).contains(rate) => {
                        self.fee_filter = Some(*rate);
                    }
                    Some(PeerEvent::SendHeaders) => self.send_headers = true,
                    Some(PeerEvent::ListStart {
                        command: Command::Headers,
                        ..
                    }) => self.headers_deadline = None,
                    _ => {}
                }
                if let Some(event) = event {
                    self.push(event);
                }
            }
            (State::Ready, Incoming::Version(..) | Incoming::Verack | Incoming::Unknown(_)) => {}
        }
    }

    fn fail(&mut self, error: PeerError) {
        if self.state != State::Failed {
            self.state = State::Failed;
            self.failure = Some((error, false));
            self.out_start = 0;
            self.out_end = 0;
            self.ping = None;
        }
    }

    /// Writes `msg` into the outgoing buffer; `false` (nothing written) if it does not fit.
    /// Callers keep [`REPLY_RESERVE`] or [`PING_FRAME_SIZE`] free first.
    fn send_raw(&mut self, msg: &Outgoing<'_>) -> bool {
        self.enqueue(msg).is_ok()
    }

    /// Free bytes of the outgoing queue.
    fn out_free(&self) -> usize {
        self.out.len() - (self.out_end - self.out_start)
    }

    /// Encodes `msg` after the queued bytes. A frame is written whole into one slice, so when
    /// it does not fit after them the queued bytes move to the front first: only then, when
    /// the queue was partly drained, never on [`Peer::poll_transmit`].
    fn enqueue(&mut self, msg: &Outgoing<'_>) -> Result<(), super::EncodeError> {
        let tail = self.out.get_mut(self.out_end..).unwrap_or(&mut []);
        let n = match encode(self.magic, msg, tail) {
            Err(super::EncodeError::BufferTooSmall { .. }) if self.out_start != 0 => {
                self.out.copy_within(self.out_start..self.out_end, 0);
                self.out_end -= self.out_start;
                self.out_start = 0;
                let tail = self.out.get_mut(self.out_end..).unwrap_or(&mut []);
                encode(self.magic, msg, tail)?
            }
            result => result?,
        };
        self.out_end += n;
        Ok(())
    }

    /// Moves queued outgoing bytes into `buf`; returns how many. Write them all to the
    /// connection, in order. Nothing is queued after a failure.
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> usize {
        let queued = self.out.get(self.out_start..self.out_end).unwrap_or(&[]);
        let n = buf.len().min(queued.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), queued.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.out_start += n;
        if self.out_start == self.out_end {
            self.out_start = 0;
            self.out_end = 0;
        }
        n
    }

    /// When [`Peer::handle_timeout`] should next be called: the handshake deadline while the
    /// handshake runs; once ready, the earliest of the ping and `getheaders` deadlines.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::AwaitVersion | State::AwaitVerack => Some(self.deadline),
            State::Failed => None,
            State::Ready => {
                let ping = self.ping.map(|(_, at)| at + self.ping_timeout);
                match (ping, self.headers_deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        }
    }

    /// Tells the peer caller time `now` came: past the handshake deadline an unfinished
    /// handshake fails with [`PeerError::Timeout`]; past the ping deadline the peer fails with
    /// [`PeerError::PingTimeout`]; past the `getheaders` deadline
    /// [`PeerEvent::RequestTimeout`] is reported.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::AwaitVersion | State::AwaitVerack if now >= self.deadline => {
                self.fail(PeerError::Timeout);
            }
            State::Ready => {
                if let Some((_, at)) = self.ping
                    && now >= at + self.ping_timeout
                {
                    self.fail(PeerError::PingTimeout);
                    return;
                }
                if self.headers_deadline.is_some_and(|d| now >= d) {
                    self.headers_deadline = None;
                    self.timed_out = Some(Command::GetHeaders);
                }
            }
            _ => {}
        }
    }

    /// The next event, if any. A failure is reported once, after any event still waiting.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<PeerEvent> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        if let Some(command) = self.timed_out.take() {
            return Some(PeerEvent::RequestTimeout { command });
        }
        match &mut self.failure {
            Some((error, reported)) if !*reported => {
                *reported = true;
                Some(PeerEvent::Failed(*error))
            }
            _ => None,
        }
    }
}

fn command_of(msg: &Incoming) -> Command {
    match msg {
        Incoming::Version(..) => Command::Version,
        Incoming::Verack => Command::Verack,
        Incoming::Ping(_) => Command::Ping,
        Incoming::Pong(_) => Command::Pong,
        Incoming::WtxidRelay => Command::WtxidRelay,
        Incoming::SendAddrV2 => Command::SendAddrV2,
        Incoming::Event(command, _) | Incoming::Unknown(command) => *command,
        // Not reached: `Nothing` is never checked against the state.
        Incoming::Nothing => Command::Verack,
    }
}
