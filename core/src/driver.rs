//! An async driver for the [`Session`] over any [`embedded_io_async`] transport (feature
//! `embedded-io-async`): an embassy-net `TcpSocket`, a TLS stream, a UART, or on a host a tokio
//! `TcpStream` through `embedded-io-adapters`. It is the caller's loop of the sans-IO contract
//! written once, `no_std` and without allocation, in memory the caller owns.
//!
//! ```ignore
//! let (mut line, mut out, mut slots) = ([0u8; 4096], [0u8; 1024], [PendingSlot::EMPTY; 4]);
//! let storage = SessionStorage::new(&mut line, &mut out, &mut slots);
//! let mut session = Session::new(storage, Config::new(&REGTEST), clock.now());
//! let (mut rx, mut tx) = ([0u8; 1024], [0u8; 256]);
//! let mut driver = Driver::new(&mut session, socket, clock, &mut rx, &mut tx);
//! let version = driver.negotiate().await?;               // server.version, genesis checked
//! let (height, header) = driver.headers_subscribe().await?;
//! driver.block_headers(0, 2016, |height, header| { /* verify as it arrives */ }).await?;
//! loop {
//!     match driver.next_notice().await? {
//!         Notice::Header { height, header } => { /* new tip, not yet verified */ }
//!         Notice::ScriptStatus { script_hash, status } => { /* fetch and recompute */ }
//!     }
//! }
//! ```
//!
//! # Time and timeouts
//! Core has no clock: the driver asks the caller's [`Clock`] (any monotonic [`Instant`], e.g.
//! `|| Instant::from_millis(embassy_time::Instant::now().as_millis())`; see
//! [the caller's loop](crate#the-callers-loop)). It has no timer either, and an
//! `embedded-io-async` read waits until bytes arrive, so while the server is silent the driver
//! cannot notice a passed deadline by itself. Every async method first expires requests past
//! their deadline and queues due keep-alive pings ([`Session::handle_timeout`]), and while data
//! flows that is enough. For a silent server, wrap each await in your executor's timeout:
//!
//! * waiting for notifications, wake the driver at [`Driver::until_timeout`] and call again:
//!   `with_timeout(Duration::from_millis(d.until_timeout().map_or(60_000, |d| d.millis())), d.next_notice())`;
//!   on expiry just call again: the call sends the keep-alive ping and expires late requests;
//! * for a call, give it a deadline of its own (the session's `request_timeout` is a good
//!   one) and treat expiry like [`Error::TimedOut`].
//!
//! On embassy-net, also set `TcpSocket::set_timeout` so that a dead peer closes the socket.
//!
//! # Cancellation
//! Every future of the driver may be dropped at any await (that is what a timeout does) without
//! losing or duplicating a byte: bytes taken from the session but not yet written stay in the
//! driver and are written first by the next call, bytes read but not yet fed are fed first, and
//! the transport's own `read`/`write` are assumed cancel-safe (embassy-net's and tokio's are).
//! The request of a dropped call stays in flight: its answer, when it comes, is ignored.
//!
//! # Events
//! [`Driver::call`] and the typed helpers wait for one response; header and script-status
//! notifications arriving meanwhile are kept in a queue of [`NOTICE_QUEUE`] for
//! [`Driver::next_notice`]. A notice replaces a queued one of the same subject (the tip, or the
//! same script: both are states, the newest wins); when the queue is full the oldest is dropped
//! and counted ([`Driver::dropped_notices`]), as are 1.7 outpoint notifications, which only
//! [`Driver::run_until`] reports. Protocol errors (a line the session refused; it carries on)
//! are counted ([`Driver::protocol_errors`]); a request whose answer was refused ends with
//! [`Error::TimedOut`] at its deadline.
//!
//! # Memory and bounds
//! Everything is the caller's: the session (`LINE + OUT` bytes and a little more, see
//! [`crate::session`]), a receive buffer `rx` (any size above 0, else [`Error::EmptyBuffer`]; bytes are fed from it to the session,
//! so it needs not hold a line: 512 bytes to a few KiB, about one TCP segment, is plenty) and a
//! transmit buffer `tx` (any size above 0; a request is written in `tx`-sized pieces). The driver itself
//! is about half a KiB besides the transport and the clock: [`DRIVER_OVERHEAD`] bytes bound it
//! on a 64-bit host (tested). Nothing allocates, nothing panics, and no loop runs without
//! input: every iteration reads, or feeds the session bytes it takes.

use core::fmt;

use embedded_io_async::{ErrorType, Read, Write};
use heapless::Deque;

use crate::hash::{ScriptHash, Status};
use crate::header::HEADER_SIZE;
use crate::rpc::ProtocolVersion;
use crate::session::response::{self, BadResult, HistoryItem};
use crate::session::{
    Event, FatalError, Notification, ProtocolError, Request, RequestError, RpcError, Session,
    StreamError,
};
use crate::time::{Duration, Instant};

/// Notifications kept while a call waits for its response.
pub const NOTICE_QUEUE: usize = 4;
/// Bytes of a server error message kept in [`ServerError`] (longer ones are cut).
pub const SERVER_MESSAGE: usize = 64;
/// Bound of `size_of::<Driver>()` on a 64-bit host with a zero-sized transport and clock
/// (tested; 488 bytes today, most of it the notice queue); less on 32-bit targets.
pub const DRIVER_OVERHEAD: usize = 512;

/// The caller's monotonic clock: an [`Instant`] from any fixed origin. It must not go
/// backwards. Closures `Fn() -> Instant` are clocks.
pub trait Clock {
    /// Now.
    fn now(&self) -> Instant;
}

impl<F: Fn() -> Instant> Clock for F {
    fn now(&self) -> Instant {
        self()
    }
}

/// A notification, owned. Not yet verified: feed a header to a header sync, and fetch and
/// recompute a script's history.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Notice {
    /// A new tip (`blockchain.headers.subscribe`), as the server claims it.
    Header {
        /// Height the server claims.
        height: u32,
        /// The raw 80-byte header.
        header: [u8; HEADER_SIZE],
    },
    /// A script's new status; `None` is JSON `null` (no history).
    ScriptStatus {
        /// Which script.
        script_hash: ScriptHash,
        /// The new status.
        status: Option<Status>,
    },
}

impl Notice {
    /// The owned form of a header or script-status notification; `None` for others.
    pub fn from_notification(n: &Notification<'_>) -> Option<Notice> {
        match *n {
            Notification::Header { height, header } => Some(Notice::Header { height, header }),
            Notification::ScriptStatus {
                script_hash,
                status,
            } => Some(Notice::ScriptStatus {
                script_hash,
                status,
            }),
            Notification::Outpoint { .. } => None,
        }
    }

    /// The session's form of it.
    pub fn notification(&self) -> Notification<'static> {
        match *self {
            Notice::Header { height, header } => Notification::Header { height, header },
            Notice::ScriptStatus {
                script_hash,
                status,
            } => Notification::ScriptStatus {
                script_hash,
                status,
            },
        }
    }

    /// Whether `self` is news about the same thing as `other` (the tip, or the same script).
    fn same_subject(&self, other: &Notice) -> bool {
        match (self, other) {
            (Notice::Header { .. }, Notice::Header { .. }) => true,
            (
                Notice::ScriptStatus { script_hash: a, .. },
                Notice::ScriptStatus { script_hash: b, .. },
            ) => a == b,
            _ => false,
        }
    }
}

/// One item of a streamed response (not yet verified).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StreamItem {
    /// A header of `blockchain.block.headers`.
    Header {
        /// Its height.
        height: u32,
        /// The header.
        header: [u8; HEADER_SIZE],
    },
    /// A history row.
    History(HistoryItem),
}

/// A server's error reply: its code and the first [`SERVER_MESSAGE`] bytes of its message (raw
/// JSON string contents, the server's untrusted text).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ServerError {
    code: Option<i64>,
    message: [u8; SERVER_MESSAGE],
    len: usize,
}

impl ServerError {
    /// A copy of the session's error, the message cut to [`SERVER_MESSAGE`] bytes.
    pub fn new(e: &RpcError<'_>) -> ServerError {
        let len = e.message.len().min(SERVER_MESSAGE);
        let mut message = [0; SERVER_MESSAGE];
        message[..len].copy_from_slice(&e.message[..len]);
        ServerError {
            code: e.code,
            message,
            len,
        }
    }

    /// The JSON-RPC error code, if the server sent one.
    pub fn code(&self) -> Option<i64> {
        self.code
    }

    /// The start of the raw message.
    pub fn message(&self) -> &[u8] {
        &self.message[..self.len]
    }

    /// As the session's error type, for its classifiers (`is_excessive_usage`, ...).
    pub fn rpc_error(&self) -> RpcError<'_> {
        RpcError {
            code: self.code,
            message: self.message(),
        }
    }
}

impl fmt::Debug for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerError")
            .field("code", &self.code)
            .field(
                "message",
                &format_args!("{}", self.message().escape_ascii()),
            )
            .finish()
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(c) => write!(f, "server error {c}: {}", self.message().escape_ascii()),
            None => write!(f, "server error: {}", self.message().escape_ascii()),
        }
    }
}

/// What can go wrong while driving: the transport (`E`, the transport's own error), the
/// session, or one request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Error<E> {
    /// The transport failed; the connection is unusable.
    Transport(E),
    /// The server closed the connection (a read gave 0 bytes, or a write took none).
    Closed,
    /// The `rx` or `tx` buffer given to [`Driver::new`] is empty.
    EmptyBuffer,
    /// The session cannot go on (wrong network, no common version, negotiation timed out, ...):
    /// open a new connection and session.
    Session(FatalError),
    /// The session refused the request (not ready, not available at the negotiated version,
    /// too large for the outgoing buffer, too many in flight, not streamable).
    Request(RequestError),
    /// The server answered the request with an error.
    Server(ServerError),
    /// No answer before the request's deadline (its answer may also have been a line the
    /// session refused, e.g. one longer than `LINE` whose `id` could not be read).
    TimedOut,
    /// The answer was longer than the session's line buffer (`LINE`) and was discarded; ask
    /// with [`Driver::call_streamed`] where the method streams, or use a larger session.
    ResponseTooLarge {
        /// The answer's length in bytes.
        len: usize,
    },
    /// The answer does not have the documented shape.
    BadResult,
    /// A streamed answer was malformed; the request is over.
    StreamFailed(StreamError),
    /// The session took none of the bytes read although its events were drained (it
    /// guarantees at least one: a bug in the session). The bytes are kept, unfed: close the
    /// connection.
    Stalled,
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Transport(e) => write!(f, "transport: {e}"),
            Error::Closed => f.write_str("the server closed the connection"),
            Error::EmptyBuffer => f.write_str("the driver's rx or tx buffer is empty"),
            Error::Session(e) => write!(f, "session failed: {e}"),
            Error::Request(e) => write!(f, "request refused: {e}"),
            Error::Server(e) => e.fmt(f),
            Error::TimedOut => f.write_str("no answer before the request's deadline"),
            Error::ResponseTooLarge { len } => {
                write!(f, "answer of {len} bytes is longer than the line buffer")
            }
            Error::BadResult => f.write_str("answer does not have the documented shape"),
            Error::StreamFailed(e) => write!(f, "streamed answer refused: {e:?}"),
            Error::Stalled => f.write_str("the session took no input: connection abandoned"),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Transport(e) => Some(e),
            _ => None,
        }
    }
}

/// The driver's result for transport `T`.
pub type Result<R, T> = core::result::Result<R, Error<<T as ErrorType>::Error>>;

/// Drives a [`Session`] over a transport `T` with the caller's clock `C` and buffers. See the
/// [module docs](self) for time, cancellation and memory.
pub struct Driver<'a, 's, T, C> {
    session: &'a mut Session<'s>,
    transport: T,
    clock: C,
    /// `rx[rx_pos..rx_len]` was read and not yet fed.
    rx: &'a mut [u8],
    rx_pos: usize,
    rx_len: usize,
    /// `tx[tx_pos..tx_len]` was taken from the session and not yet written.
    tx: &'a mut [u8],
    tx_pos: usize,
    tx_len: usize,
    /// Bytes were written since the transport was last flushed.
    unflushed: bool,
    notices: Deque<Notice, NOTICE_QUEUE>,
    dropped_notices: u32,
    protocol_errors: u32,
    last_protocol_error: Option<ProtocolError>,
}

impl<'a, 's, T, C> Driver<'a, 's, T, C>
where
    T: Read + Write,
    C: Clock,
{
    /// A driver for a session on a fresh connection: `session` straight from
    /// [`Session::new`] (it has queued `server.version`), `rx` and `tx` not empty.
    pub fn new(
        session: &'a mut Session<'s>,
        transport: T,
        clock: C,
        rx: &'a mut [u8],
        tx: &'a mut [u8],
    ) -> Self {
        Driver {
            session,
            transport,
            clock,
            rx,
            rx_pos: 0,
            rx_len: 0,
            tx,
            tx_pos: 0,
            tx_len: 0,
            unflushed: false,
            notices: Deque::new(),
            dropped_notices: 0,
            protocol_errors: 0,
            last_protocol_error: None,
        }
    }

    // ----- getters -----

    /// The session.
    pub fn session(&self) -> &Session<'s> {
        self.session
    }

    /// The session, e.g. to queue requests of your own with the driver's
    /// [`Driver::now`] and collect their answers with [`Driver::run_until`].
    pub fn session_mut(&mut self) -> &mut Session<'s> {
        self.session
    }

    /// The transport.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives the transport back (to close it).
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// The clock's time.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// When the session next needs the driver (a request's deadline or the keep-alive ping),
    /// on the clock's scale.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    /// Time until [`Driver::poll_timeout`] ([`Duration::ZERO`] if due): how long to let an
    /// await run before waking the driver again.
    #[must_use]
    pub fn until_timeout(&self) -> Option<Duration> {
        let now = self.clock.now();
        self.session.poll_timeout().map(|t| t - now)
    }

    /// Notices dropped: the queue was full, or (outpoints) they have no owned form.
    pub fn dropped_notices(&self) -> u32 {
        self.dropped_notices
    }

    /// Lines or messages the session refused and carried on after.
    pub fn protocol_errors(&self) -> u32 {
        self.protocol_errors
    }

    /// The last of them.
    pub fn last_protocol_error(&self) -> Option<ProtocolError> {
        self.last_protocol_error
    }

    /// A queued notice, without I/O.
    pub fn try_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    // ----- commands without I/O -----

    /// Queues a request without waiting (to pipeline several: ElectrumX may hold a small
    /// reply for up to a second); it is written by the next async call. Collect its answer
    /// (which carries `tag`) with [`Driver::run_until`]: an answer that arrives while another
    /// method waits (a call, [`Driver::next_notice`]) is not for it and is dropped.
    pub fn request(&mut self, request: &Request<'_>, tag: u32) -> Result<u64, T> {
        let now = self.clock.now();
        self.session
            .request(now, request, tag)
            .map_err(|e| self.request_error(e))
    }

    // ----- async -----

    /// Waits until the version is negotiated and the server's genesis checked; returns the
    /// version (at once if it already is).
    pub async fn negotiate(&mut self) -> Result<ProtocolVersion, T> {
        if let Some(v) = self.session.version() {
            return Ok(v);
        }
        self.run(
            |event| match *event {
                Event::Ready { version } => Some(version),
                _ => None,
            },
            true,
        )
        .await
    }

    /// Sends a request and waits for its answer, decoded by `decode` (one of
    /// [`crate::session::response`]'s decoders, or a closure over one for results that borrow
    /// the line: it runs while the line is in the session's buffer).
    pub async fn call<R>(
        &mut self,
        request: &Request<'_>,
        decode: impl FnOnce(&[u8]) -> core::result::Result<R, BadResult>,
    ) -> Result<R, T> {
        let id = self.send(request, false).await?;
        let mut decode = Some(decode);
        self.run(
            |event| match *event {
                Event::Response { id: i, result, .. } if i == id => Some(match decode.take() {
                    Some(decode) => decode(result).map_err(|BadResult| Error::BadResult),
                    None => Err(Error::BadResult),
                }),
                Event::ServerError { id: i, error, .. } if i == id => {
                    Some(Err(Error::Server(ServerError::new(&error))))
                }
                Event::TimedOut { id: i, .. } if i == id => Some(Err(Error::TimedOut)),
                Event::ResponseTooLarge { id: i, len, .. } if i == id => {
                    Some(Err(Error::ResponseTooLarge { len }))
                }
                _ => None,
            },
            true,
        )
        .await?
    }

    /// Sends a request whose answer is streamed (`blockchain.block.headers` without
    /// `cp_height`, a script's history or mempool) and hands each item to `on_item` as it is
    /// parsed, so a 2016-header chunk needs no line buffer of its size; returns the number of
    /// items. Waits first until no other request is in flight (the session streams only the
    /// only request in flight).
    pub async fn call_streamed(
        &mut self,
        request: &Request<'_>,
        mut on_item: impl FnMut(StreamItem),
    ) -> Result<u32, T> {
        let id = self.send(request, true).await?;
        self.run(
            |event| match *event {
                Event::StreamHeader {
                    id: i,
                    height,
                    header,
                    ..
                } if i == id => {
                    on_item(StreamItem::Header { height, header });
                    None
                }
                Event::StreamHistoryItem { id: i, item, .. } if i == id => {
                    on_item(StreamItem::History(item));
                    None
                }
                Event::StreamEnd { id: i, items, .. } if i == id => Some(Ok(items)),
                Event::ServerError { id: i, error, .. } if i == id => {
                    Some(Err(Error::Server(ServerError::new(&error))))
                }
                Event::TimedOut { id: i, .. } if i == id => Some(Err(Error::TimedOut)),
                Event::ProtocolError(ProtocolError::StreamFailed { id: i, error }) if i == id => {
                    Some(Err(Error::StreamFailed(error)))
                }
                _ => None,
            },
            true,
        )
        .await?
    }

    /// The next header or script-status notification: a queued one, or the next to arrive.
    /// Waits as long as the server is silent: see the module docs for keep-alive.
    pub async fn next_notice(&mut self) -> Result<Notice, T> {
        if let Some(n) = self.notices.pop_front() {
            return Ok(n);
        }
        self.run(
            |event| match event {
                Event::Notification(n) => Notice::from_notification(n),
                _ => None,
            },
            true,
        )
        .await
    }

    /// Runs until `f` returns `Some` for an event (queued notices are handed to it first).
    /// `f` sees every event but [`Event::Failed`], which ends the run with
    /// [`Error::Session`]; what it lets pass is gone.
    pub async fn run_until<R>(
        &mut self,
        mut f: impl FnMut(&Event<'_>) -> Option<R>,
    ) -> Result<R, T> {
        while let Some(n) = self.notices.pop_front() {
            if let Some(r) = f(&Event::Notification(n.notification())) {
                return Ok(r);
            }
        }
        self.run(f, false).await
    }

    // ----- typed requests -----

    /// `blockchain.headers.subscribe`: the server's tip (height, raw header), not yet verified;
    /// new tips follow as [`Notice::Header`].
    pub async fn headers_subscribe(&mut self) -> Result<(u32, [u8; HEADER_SIZE]), T> {
        self.call(&Request::HeadersSubscribe, response::headers_subscribe)
            .await
    }

    /// `blockchain.block.header` without proof: the raw header at `height`, not yet verified.
    pub async fn block_header(&mut self, height: u32) -> Result<[u8; HEADER_SIZE], T> {
        let request = Request::BlockHeader {
            height,
            cp_height: 0,
        };
        self.call(&request, response::block_header).await
    }

    /// `blockchain.block.headers` streamed: `on_header(height, header)` for each of up to
    /// `count` (at most [`crate::session::MAX_HEADERS_PER_REQUEST`]) headers from
    /// `start_height`; returns how many came (fewer at the tip).
    pub async fn block_headers(
        &mut self,
        start_height: u32,
        count: u32,
        mut on_header: impl FnMut(u32, &[u8; HEADER_SIZE]),
    ) -> Result<u32, T> {
        let request = Request::BlockHeaders {
            start_height,
            count,
            cp_height: 0,
        };
        self.call_streamed(&request, |item| {
            if let StreamItem::Header { height, header } = item {
                on_header(height, &header);
            }
        })
        .await
    }

    /// Subscribes to a script (by its scriptPubKey); returns its current status. Changes
    /// follow as [`Notice::ScriptStatus`].
    pub async fn script_subscribe(&mut self, script: &[u8]) -> Result<Option<Status>, T> {
        self.call(
            &Request::ScriptSubscribe(script),
            response::subscribe_status,
        )
        .await
    }

    /// A script's history streamed, in the server's order: `on_item` for each row; returns
    /// how many came.
    pub async fn script_history(
        &mut self,
        script: &[u8],
        mut on_item: impl FnMut(HistoryItem),
    ) -> Result<u32, T> {
        self.call_streamed(&Request::ScriptGetHistory(script), |item| {
            if let StreamItem::History(row) = item {
                on_item(row);
            }
        })
        .await
    }

    // ----- the loop -----

    fn request_error(&self, e: RequestError) -> Error<T::Error> {
        match (e, self.session.failure()) {
            (RequestError::Closed, Some(fatal)) => Error::Session(fatal),
            _ => Error::Request(e),
        }
    }

    /// Queues a request, first reading on while the session is busy with a streamed answer
    /// (or, for a streamed request, while others are in flight).
    async fn send(&mut self, request: &Request<'_>, streamed: bool) -> Result<u64, T> {
        // Refused before the request is queued, not after it is left in flight unanswerable.
        if self.rx.is_empty() || self.tx.is_empty() {
            return Err(Error::EmptyBuffer);
        }
        loop {
            // Expire stale requests and take events left from the last call first: either may
            // be what keeps the session busy.
            let now = self.clock.now();
            self.session.handle_timeout(now);
            let _: Option<()> = self.drain(&mut |_| None, true)?;
            let queued = if streamed {
                self.session.request_streamed(now, request, 0)
            } else {
                self.session.request(now, request, 0)
            };
            match queued {
                Ok(id) => return Ok(id),
                Err(RequestError::Busy) => {
                    // Answers to calls dropped earlier, a keep-alive ping: read until they end.
                    let _: Option<()> = self.step(&mut |_| None, true).await?;
                }
                Err(e) => return Err(self.request_error(e)),
            }
        }
    }

    async fn run<R>(
        &mut self,
        mut f: impl FnMut(&Event<'_>) -> Option<R>,
        keep_notices: bool,
    ) -> Result<R, T> {
        loop {
            if let Some(r) = self.step(&mut f, keep_notices).await? {
                return Ok(r);
            }
        }
    }

    /// One turn of the caller's loop: timeouts, events left from the last turn, write, read
    /// once if nothing is left to feed, feed, write what feeding queued.
    async fn step<R>(
        &mut self,
        f: &mut impl FnMut(&Event<'_>) -> Option<R>,
        keep_notices: bool,
    ) -> Result<Option<R>, T> {
        if self.rx.is_empty() || self.tx.is_empty() {
            return Err(Error::EmptyBuffer);
        }
        self.session.handle_timeout(self.clock.now());
        if let Some(r) = self.drain(f, keep_notices)? {
            return Ok(Some(r));
        }
        if let Some(fatal) = self.session.failure() {
            return Err(Error::Session(fatal));
        }
        self.write_out().await?;
        if self.rx_pos >= self.rx_len {
            let n = self
                .transport
                .read(self.rx)
                .await
                .map_err(Error::Transport)?;
            if n == 0 {
                return Err(Error::Closed);
            }
            self.rx_pos = 0;
            self.rx_len = n.min(self.rx.len());
        }
        while self.rx_pos < self.rx_len {
            let now = self.clock.now();
            let used = self
                .session
                .handle_input(now, &self.rx[self.rx_pos..self.rx_len]);
            // Events are drained before every feed, so the session takes at least a byte
            // (its guarantee). Checked rather than trusted: a broken guarantee ends the
            // connection instead of spinning.
            if used == 0 {
                return Err(Error::Stalled);
            }
            self.rx_pos = self.rx_pos.saturating_add(used).min(self.rx_len);
            if let Some(r) = self.drain(f, keep_notices)? {
                return Ok(Some(r));
            }
        }
        // Input may have queued requests (`server.features` after the version reply).
        self.write_out().await?;
        Ok(None)
    }

    /// Hands every pending event to `f` until it returns `Some`; queues the notifications it
    /// let pass if `keep_notices`.
    fn drain<R>(
        &mut self,
        f: &mut impl FnMut(&Event<'_>) -> Option<R>,
        keep_notices: bool,
    ) -> Result<Option<R>, T> {
        while let Some(event) = self.session.poll_event() {
            let notice = match &event {
                Event::Failed(e) => return Err(Error::Session(*e)),
                Event::ProtocolError(e) => {
                    self.protocol_errors = self.protocol_errors.saturating_add(1);
                    self.last_protocol_error = Some(*e);
                    None
                }
                Event::Notification(n) => Some(Notice::from_notification(n)),
                _ => None,
            };
            if let Some(r) = f(&event) {
                return Ok(Some(r));
            }
            match notice {
                Some(Some(n)) if keep_notices => self.queue_notice(n),
                Some(None) if keep_notices => {
                    self.dropped_notices = self.dropped_notices.saturating_add(1);
                }
                _ => {}
            }
        }
        Ok(None)
    }

    fn queue_notice(&mut self, n: Notice) {
        if let Some(slot) = self.notices.iter_mut().find(|q| q.same_subject(&n)) {
            *slot = n;
            return;
        }
        if self.notices.is_full() {
            let _ = self.notices.pop_front();
            self.dropped_notices = self.dropped_notices.saturating_add(1);
        }
        let _ = self.notices.push_back(n);
    }

    /// Writes everything the session has queued, then flushes the transport.
    async fn write_out(&mut self) -> Result<(), T> {
        loop {
            if self.tx_pos >= self.tx_len {
                let n = self.session.poll_transmit(self.tx);
                if n == 0 {
                    break;
                }
                self.tx_pos = 0;
                self.tx_len = n.min(self.tx.len());
            }
            let n = self
                .transport
                .write(&self.tx[self.tx_pos..self.tx_len])
                .await
                .map_err(Error::Transport)?;
            if n == 0 {
                return Err(Error::Closed);
            }
            self.tx_pos = self.tx_pos.saturating_add(n).min(self.tx_len);
            self.unflushed = true;
        }
        if self.unflushed {
            self.transport.flush().await.map_err(Error::Transport)?;
            self.unflushed = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_size_is_bounded() {
        type D<'a> = Driver<'a, 'a, (), ()>;
        assert!(
            core::mem::size_of::<D<'static>>() <= DRIVER_OVERHEAD,
            "{}",
            core::mem::size_of::<D<'static>>()
        );
    }
}
