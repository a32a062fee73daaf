//! The sans-IO Electrum protocol session.
//!
//! # The caller's loop
//! Written once, with the types of [`crate::time`], in the crate docs:
//! [the caller's loop](crate#the-callers-loop).
//!
//! # Negotiation
//! `server.version` is sent first and alone with the configured range (or, with
//! [`Config::plain_version`], the range's lowest version as a plain string, for electrs
//! 0.8-0.9.13 which refuse the `[min, max]` form); the reply must be a version inside the range
//! (compared as number tuples). Then `server.features`, whose `genesis_hash` must be the
//! configured network's. A server without `server.features` (esplora builds answer -32601 or a
//! plain-string error) is checked instead by `blockchain.block.header(0)`, which must hash to
//! the network's genesis. Only then is [`Event::Ready`] reported and requests accepted.
//!
//! # Memory
//! The caller's [`SessionStorage`]: a line buffer, an outgoing queue (a ring buffer: requests
//! are encoded into it in place and taken from it without moving the rest) and one
//! [`PendingSlot`] per request in flight, each as large as the caller chooses; beside them the
//! session's own state, at most [`SESSION_OVERHEAD`] bytes (tested). With streamed requests
//! ([`Session::request_streamed`]) the line buffer only needs to hold the largest
//! *non-streamed* reply: 1 KiB of line and 1 KiB of queue verify 2016-header chunks and hash
//! 10,000-row histories.
//!
//! # Responses longer than the line buffer
//! A line longer than the line buffer is discarded before it is buffered; the framer keeps
//! only its first 256 and last 256 non-whitespace bytes (fewer for a buffer under 512 bytes),
//! inside the line buffer, and the envelope's `id` is read from them (ElectrumX writes it last,
//! Fulcrum and electrs first). If it names a request in flight, that request ends at once with
//! [`Event::ResponseTooLarge`] instead of waiting for its deadline: ask again streamed
//! ([`Session::request_streamed`]) or with a larger session. A line without a readable `id`
//! is reported as [`ProtocolError::OversizeLine`] and its request, if any, times out.
//!
//! # Bounds (DoS)
//! The line buffer's length per incoming line (longer lines are discarded before buffering),
//! the queue's length of outgoing requests, one request in flight per pending slot,
//! [`MAX_QUEUED_EVENTS`] owned events between two drains: input and timeouts are taken only
//! while the queue has room for what they report, so none is dropped.

mod event;
pub mod request;
pub mod response;
mod storage;
#[cfg(feature = "_test_exports")]
#[doc(hidden)]
pub mod stream;
#[cfg(not(feature = "_test_exports"))]
mod stream;
mod transmit;

pub use crate::buffer::Buffer;
pub use crate::rpc::PendingSlot;
pub use event::{Event, FatalError, Notification, ProtocolError, RpcError};
pub use request::{FeeMode, MAX_HEADERS_PER_REQUEST, Request, RequestError};
pub use storage::SessionStorage;
pub use stream::{StreamError, StreamKind};

pub use crate::json::envelope::unescape_into;
pub use crate::json::{JsonError, JsonErrorKind, MAX_DEPTH, MAX_NUMBER_LEN};

use crate::chain::Params;
use crate::hash::BlockHash;
use crate::header::Header;
use crate::json::bytes::find_byte;
use crate::json::envelope::{self, Envelope, Id, Message};
use crate::json::framer::{Frame, LineFramer};
use crate::json::oversize::oversize_id as envelope_id;
use crate::json::writer::EncodeError;
use crate::json::writer::RequestWriter;
use crate::rpc::{Method, NotificationKind, PendingTable, ProtocolVersion, VersionRange};
use crate::session::response::{BadResult, HistoryItem};
use crate::session::stream::{ResponseStream, STREAM_ERROR_MESSAGE, Step};
use crate::session::transmit::TransmitQueue;
use crate::time::{Duration, Instant};

/// ElectrumX answers or fails a request within 30 s (`REQUEST_TIMEOUT`); wait a little longer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(40);
/// ElectrumX drops sessions silent for 600 s and advises a ping after 450 s; Electrum pings
/// within 300 s. Ping after 240 s without sending anything.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(240);
/// Bytes of a session's own state, beside the caller's buffers: the stream parser, the event
/// queue and bookkeeping (tested; 1,920 on 64-bit targets today).
pub const SESSION_OVERHEAD: usize = 2048;
/// Owned events (timeouts, errors, readiness, streamed items) held between two drains.
pub const MAX_QUEUED_EVENTS: usize = 8;
/// Zero-byte steps one [`Session::handle_input`] call takes at most: each moves the parser on
/// (a number ended by the byte after it, a stream found to be a notification or to have
/// failed), so the step after it consumes; the bound keeps the call's work bounded regardless.
const MAX_ZERO_STEPS: usize = 4;
/// Bytes of input a streamed request looks at per [`Session::handle_input`] call.
const STREAM_WINDOW: usize = 512;
/// Tag of the session's own requests (version, features, keep-alive pings).
const INTERNAL_TAG: u32 = u32::MAX;

/// How a session is set up.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Sent in `server.version`. Keep it free of a `/x.y` version suffix: some servers then
    /// answer broadcasts with an HTML warning instead of the txid (PROTOCOL.md §2.4).
    pub client_name: &'static str,
    /// Versions asked for and accepted.
    pub versions: VersionRange,
    /// The network the server must be on.
    pub params: &'static Params,
    /// Deadline of each request after it is queued.
    pub request_timeout: Duration,
    /// Send `server.ping` after this long without sending anything.
    pub ping_interval: Duration,
    /// Send `server.version` with `versions.min` as a plain string instead of the
    /// `[min, max]` array. electrs 0.8 to 0.9.13 refuse the array (INTEROP row 1): a client
    /// whose first attempt was refused connects again with this set.
    pub plain_version: bool,
}

impl Config {
    /// Defaults for a network: name `electrum-spv`, versions 1.4 to 1.6, 40 s requests,
    /// ping every 240 s.
    pub const fn new(params: &'static Params) -> Config {
        Config {
            client_name: "electrum-spv",
            versions: VersionRange::DEFAULT,
            params,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            ping_interval: DEFAULT_PING_INTERVAL,
            plain_version: false,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    AwaitVersion,
    AwaitFeatures(ProtocolVersion),
    /// `server.features` was refused: header 0 must hash to the genesis instead.
    AwaitGenesisHeader(ProtocolVersion),
    Ready(ProtocolVersion),
    Failed(FatalError),
}

/// Events that own their data, queued until drained.
#[derive(Clone, Copy, Debug)]
enum Owned {
    Ready(ProtocolVersion),
    TimedOut {
        id: u64,
        method: Method,
        tag: u32,
    },
    TooLarge {
        id: u64,
        method: Method,
        tag: u32,
        len: usize,
    },
    Protocol(ProtocolError),
    Failed(FatalError),
    StreamHeader {
        id: u64,
        tag: u32,
        height: u32,
        header: [u8; 80],
    },
    StreamItem {
        id: u64,
        tag: u32,
        item: HistoryItem,
    },
    StreamEnd {
        id: u64,
        method: Method,
        tag: u32,
        items: u32,
    },
    StreamServerError {
        id: u64,
        method: Method,
        tag: u32,
        code: Option<i64>,
    },
}

impl Owned {
    fn event(self) -> Event<'static> {
        match self {
            Owned::Ready(version) => Event::Ready { version },
            Owned::TimedOut { id, method, tag } => Event::TimedOut { id, method, tag },
            Owned::TooLarge {
                id,
                method,
                tag,
                len,
            } => Event::ResponseTooLarge {
                id,
                method,
                tag,
                len,
            },
            Owned::Protocol(e) => Event::ProtocolError(e),
            Owned::Failed(e) => Event::Failed(e),
            Owned::StreamHeader {
                id,
                tag,
                height,
                header,
            } => Event::StreamHeader {
                id,
                tag,
                height,
                header,
            },
            Owned::StreamItem { id, tag, item } => Event::StreamHistoryItem { id, tag, item },
            Owned::StreamEnd {
                id,
                method,
                tag,
                items,
            } => Event::StreamEnd {
                id,
                method,
                tag,
                items,
            },
            // Converted with the kept message in `Session::poll_event`.
            Owned::StreamServerError {
                id,
                method,
                tag,
                code,
            } => Event::ServerError {
                id,
                method,
                tag,
                error: RpcError { code, message: b"" },
            },
        }
    }
}

/// How the current line of a streamed request is being read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum StreamMode {
    /// Parsing it as the response, item by item.
    Parsing,
    /// It is a notification: buffered by the framer as usual.
    Buffered,
    /// Skipping to the end of the line (the response ended, failed or timed out).
    Skipping,
}

/// A streamed request in flight.
struct ActiveStream {
    id: u64,
    tag: u32,
    method: Method,
    parser: ResponseStream,
    mode: StreamMode,
    /// The request is over (answered, failed or timed out); clear at the end of the line.
    over: bool,
    /// Bytes of the current line were consumed.
    mid_line: bool,
}

/// Where the session is in the current line.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LineCursor {
    /// No complete line waiting.
    None,
    /// A line waits; `next` messages of it (batch elements) are already handled.
    Pending { next: usize },
}

/// An Electrum protocol session over caller memory ([`SessionStorage`]): a line buffer, an
/// outgoing queue and a pending table, each as large as the caller chose.
pub struct Session<'a> {
    framer: LineFramer<'a>,
    cursor: LineCursor,
    stream: Option<ActiveStream>,
    /// Message of the last streamed server error (the line itself is not kept).
    stream_message: [u8; STREAM_ERROR_MESSAGE],
    stream_message_len: usize,
    inner: Inner<'a>,
}

/// Everything but the line buffer, so that events can borrow the line while the rest changes.
struct Inner<'a> {
    config: Config,
    state: State,
    out: TransmitQueue<'a>,
    pending: PendingTable<'a>,
    queue: [Option<Owned>; MAX_QUEUED_EVENTS],
    queue_head: usize,
    queue_len: usize,
    dropped_events: u32,
    next_ping_at: Instant,
    /// The caller's time at the last call that passed one.
    now: Instant,
}

impl<'a> Session<'a> {
    /// A session over no memory, failed with [`FatalError::OutputTooSmall`] (what
    /// [`Session::new`] makes of empty buffers). It is a constant, so a `static` or a block of
    /// caller memory can hold a session before it has storage; [`Session::start`] then makes it
    /// a live one in place.
    pub const EMPTY: Self = Session {
        framer: LineFramer::EMPTY,
        cursor: LineCursor::None,
        stream: None,
        stream_message: [0; STREAM_ERROR_MESSAGE],
        stream_message_len: 0,
        inner: Inner {
            config: Config::new(&crate::chain::REGTEST),
            state: State::Failed(FatalError::OutputTooSmall),
            out: TransmitQueue::new(Buffer::empty()),
            pending: PendingTable::EMPTY,
            queue: [None; MAX_QUEUED_EVENTS],
            queue_head: 0,
            queue_len: 0,
            dropped_events: 0,
            next_ping_at: Instant::ZERO,
            now: Instant::ZERO,
        },
    };

    /// A session over `storage` that has queued `server.version`, to be sent on a fresh
    /// connection. The buffers are not moved, only their pointers; the session's own state
    /// ([`SESSION_OVERHEAD`] bytes at most) is returned by value. Where stack is tight, put
    /// [`Session::EMPTY`] in place and call [`Session::start`] on it instead.
    pub fn new(storage: SessionStorage<'a>, config: Config, now: Instant) -> Self {
        let mut session = Self::EMPTY;
        session.start(storage, config, now);
        session
    }

    /// Makes this session a fresh one over `storage`, in place: what [`Session::new`] returns,
    /// without building a session on the stack. Whatever the session held before (requests in
    /// flight, events not drained, its old storage) is forgotten.
    pub fn start(&mut self, storage: SessionStorage<'a>, config: Config, now: Instant) {
        let SessionStorage { line, out, pending } = storage;
        self.framer = LineFramer::new(line);
        self.cursor = LineCursor::None;
        self.stream = None;
        self.stream_message_len = 0;
        let inner = &mut self.inner;
        inner.config = config;
        inner.state = State::AwaitVersion;
        inner.out = TransmitQueue::new(out);
        inner.pending = PendingTable::new(pending);
        for event in &mut inner.queue {
            *event = None;
        }
        inner.queue_head = 0;
        inner.queue_len = 0;
        inner.dropped_events = 0;
        inner.next_ping_at = now + config.ping_interval;
        inner.now = now;
        if inner.send_version().is_err() {
            // Only an output buffer too small for one version request gets here.
            inner.fail(FatalError::OutputTooSmall);
        }
    }

    /// Starts over in the same storage, for a new connection (a reconnect): as
    /// [`Session::start`] with the buffers this session has.
    pub fn restart(&mut self, config: Config, now: Instant) {
        let storage = SessionStorage {
            line: self.framer.take_buffer(),
            out: self.inner.out.take_buffer(),
            pending: self.inner.pending.take_slots(),
        };
        self.start(storage, config, now);
    }

    // ----- getters -----

    /// The negotiated version, once [`Event::Ready`] was reported.
    pub fn version(&self) -> Option<ProtocolVersion> {
        match self.inner.state {
            State::Ready(v) => Some(v),
            _ => None,
        }
    }

    /// Whether requests can be sent.
    pub fn is_ready(&self) -> bool {
        matches!(self.inner.state, State::Ready(_))
    }

    /// Why the session failed, if it did.
    pub fn failure(&self) -> Option<FatalError> {
        match self.inner.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.inner.pending.len()
    }

    /// Requests that can be in flight at once (the storage's pending slots).
    pub fn max_in_flight(&self) -> usize {
        self.inner.pending.capacity()
    }

    /// The longest reply line buffered whole (the storage's line buffer).
    pub fn line_capacity(&self) -> usize {
        self.framer.max_line()
    }

    /// Bytes of outgoing queue (the storage's).
    pub fn transmit_capacity(&self) -> usize {
        self.inner.out.capacity()
    }

    /// Events dropped: always 0. Input and timeouts are taken only while the event queue has
    /// room for what they report (tested, and checked by the session fuzz target); kept so
    /// that a caller can assert it.
    pub fn dropped_events(&self) -> u32 {
        self.inner.dropped_events
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    // ----- commands -----

    /// Queues a request; returns its id. `tag` comes back with the response.
    pub fn request(
        &mut self,
        now: Instant,
        request: &Request<'_>,
        tag: u32,
    ) -> Result<u64, RequestError> {
        let version = match self.inner.state {
            State::Ready(v) => v,
            State::Failed(_) => return Err(RequestError::Closed),
            _ => return Err(RequestError::NotReady),
        };
        if tag == INTERNAL_TAG {
            return Err(RequestError::InvalidArgument);
        }
        if self.stream.is_some() {
            return Err(RequestError::Busy);
        }
        request.validate(version)?;
        self.inner.now = now;
        self.inner.send(request, version, tag)
    }

    /// Queues a request whose response is streamed item by item
    /// ([`Event::StreamHeader`] / [`Event::StreamHistoryItem`], then [`Event::StreamEnd`])
    /// instead of buffered, so it needs no line buffer of its size: a 2016-header chunk is
    /// verified as it arrives in a session with a few KiB of buffers.
    ///
    /// For `blockchain.block.headers` without `cp_height` and the script history methods.
    /// Servers may write `result` before `id`, so the request must be the only one in flight,
    /// and no other is accepted until it ends ([`RequestError::Busy`]); notifications still
    /// arrive in between.
    pub fn request_streamed(
        &mut self,
        now: Instant,
        request: &Request<'_>,
        tag: u32,
    ) -> Result<u64, RequestError> {
        let kind = match *request {
            Request::BlockHeaders {
                start_height,
                cp_height: 0,
                ..
            } => StreamKind::Headers { start_height },
            Request::ScriptGetHistory(_)
            | Request::ScriptGetMempool(_)
            | Request::ScriptHashGetHistory(_) => StreamKind::History,
            _ => return Err(RequestError::InvalidArgument),
        };
        if self.stream.is_some()
            || !self.inner.pending.is_empty()
            || self.cursor != LineCursor::None
        {
            return Err(RequestError::Busy);
        }
        let id = self.request(now, request, tag)?;
        self.stream = Some(ActiveStream {
            id,
            tag,
            method: request.method(),
            parser: ResponseStream::new(kind),
            mode: StreamMode::Parsing,
            over: false,
            mid_line: false,
        });
        Ok(id)
    }

    // ----- handle_* -----

    /// Feeds bytes read from the connection; returns how many were consumed. Stops after each
    /// complete line (and, for a streamed request, after each item) so that the line's events
    /// can borrow it: drain [`Session::poll_event`], then feed the rest.
    ///
    /// The contract ([the caller's loop](crate#the-callers-loop)): once `poll_event` has
    /// returned `None`, a call with non-empty input consumes at least one byte. Events are never
    /// dropped: fed again while events of an earlier call wait, it consumes nothing and returns
    /// 0 until they are drained. A failed session consumes (and ignores) everything.
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) -> usize {
        self.inner.now = now;
        if matches!(self.inner.state, State::Failed(_)) {
            return input.len();
        }
        // A zero-byte step still moves the parser on (a number ended by the byte after it, a
        // stream that turned out to be a notification or failed): the next step consumes.
        for _ in 0..MAX_ZERO_STEPS {
            if input.is_empty() || !self.takes_input() {
                return 0;
            }
            let used = self.input_step(input);
            if used > 0 {
                return used;
            }
        }
        0
    }

    /// Input is accepted: no line's events wait to be drained, and the event queue has room
    /// for what one step can add (its own event and a failure).
    fn takes_input(&self) -> bool {
        self.cursor == LineCursor::None && self.inner.queue_len + 2 <= MAX_QUEUED_EVENTS
    }

    /// One line, one line's part, or one streamed item.
    fn input_step(&mut self, input: &[u8]) -> usize {
        if let Some(active) = &self.stream
            && active.mode != StreamMode::Buffered
        {
            return self.stream_input(input);
        }
        let mut used = 0;
        while used < input.len() {
            let (n, frame) = self.framer.push(&input[used..]);
            used += n;
            match frame {
                Some(Frame::Line(_)) => {
                    self.cursor = LineCursor::Pending { next: 0 };
                    if let Some(active) = &mut self.stream {
                        // The notification line is complete; the next line is parsed again.
                        active.mode = StreamMode::Parsing;
                        active.parser.next_line();
                    }
                    break;
                }
                Some(Frame::Oversize { len, head, tail }) => {
                    let id = envelope_id(head, tail);
                    if let Some(active) = &mut self.stream
                        && active.mode == StreamMode::Buffered
                    {
                        // The (notification) line it buffered is over; the next is parsed.
                        active.mode = StreamMode::Parsing;
                        active.parser.next_line();
                    }
                    let ended = self.inner.oversize(id, len);
                    if ended.is_some() && ended == self.stream.as_ref().map(|a| a.id) {
                        self.stream = None;
                    }
                    // One event per step; with a stream the next line is its parser's.
                    break;
                }
                None => {}
            }
        }
        used
    }

    /// Expires requests past their deadline and sends keep-alive pings.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now, self.stream.is_some());
        if let Some(active) = &mut self.stream
            && !active.over
            && self.inner.pending.get(active.id).is_none()
        {
            // Timed out: drop it; a line already started is skipped to its end.
            if active.mid_line {
                active.over = true;
                active.mode = StreamMode::Skipping;
            } else {
                self.stream = None;
            }
        }
    }

    /// Input while a streamed request owns the line: parse up to the newline, one item per
    /// call.
    fn stream_input(&mut self, input: &[u8]) -> usize {
        let Some(active) = &mut self.stream else {
            return 0;
        };
        // Look at a bounded window: the call returns after one item, and scanning all of a
        // large read for its newline on every item would cost O(read) per row.
        let window = &input[..input.len().min(STREAM_WINDOW)];
        let newline = find_byte(window, b'\n');
        let body = &window[..newline.unwrap_or(window.len())];
        let (used, step) = match active.mode {
            StreamMode::Skipping => (body.len(), Step::More),
            _ => active.parser.feed(body),
        };
        active.mid_line |= used > 0;
        let step = match (step, newline) {
            (Step::More, Some(nl)) if used == body.len() => {
                let last = active.parser.end_of_line();
                self.end_stream_line();
                self.stream_step(last);
                return nl + 1;
            }
            (step, _) => step,
        };
        if step == Step::NotResponse {
            // A notification: hand what was read to the framer and buffer the line as usual.
            if let Some(active) = &mut self.stream {
                active.mode = StreamMode::Buffered;
                let prefix = active.parser.prefix();
                let (_, frame) = self.framer.push(prefix);
                debug_assert!(frame.is_none(), "the prefix holds no newline");
            }
            return used;
        }
        self.stream_step(step);
        used
    }

    /// At the newline: a finished request is cleared, a continuing one reads a new line.
    fn end_stream_line(&mut self) {
        if let Some(active) = &mut self.stream {
            if active.over {
                self.stream = None;
            } else {
                active.parser.next_line();
                active.mode = StreamMode::Parsing;
                active.mid_line = false;
            }
        }
    }

    fn stream_step(&mut self, step: Step) {
        let Some(active) = &mut self.stream else {
            return;
        };
        let (id, tag, method) = (active.id, active.tag, active.method);
        if active.over {
            return;
        }
        let owned = match step {
            Step::More | Step::NotResponse => return,
            Step::Header { height, header } => Owned::StreamHeader {
                id,
                tag,
                height,
                header,
            },
            Step::HistoryItem(item) => Owned::StreamItem { id, tag, item },
            Step::Done { id: echoed, items } => {
                active.over = true;
                active.mode = StreamMode::Skipping;
                let _ = self.inner.pending.take(id);
                if echoed != Some(id) {
                    Owned::Protocol(ProtocolError::StreamFailed {
                        id,
                        error: StreamError::Shape,
                    })
                } else {
                    Owned::StreamEnd {
                        id,
                        method,
                        tag,
                        items,
                    }
                }
            }
            Step::ServerError { .. } => {
                active.over = true;
                active.mode = StreamMode::Skipping;
                let _ = self.inner.pending.take(id);
                let (code, message) = active.parser.error();
                self.stream_message_len = message.len();
                self.stream_message[..message.len()].copy_from_slice(message);
                Owned::StreamServerError {
                    id,
                    method,
                    tag,
                    code,
                }
            }
            Step::Failed(error) => {
                active.over = true;
                active.mode = StreamMode::Skipping;
                let _ = self.inner.pending.take(id);
                Owned::Protocol(ProtocolError::StreamFailed { id, error })
            }
        };
        self.inner.push_owned(owned);
    }

    // ----- poll_* -----

    /// Moves queued outgoing bytes into `buf`; returns how many. Write them all to the
    /// connection, in order.
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> usize {
        self.inner.out.take_into(buf)
    }

    /// The oldest queued outgoing bytes that lie in one piece, to write without copying them
    /// first; then report what was written with [`Session::transmitted`]. Empty when nothing
    /// is queued. Queued bytes that wrap around the end of the queue come in two pieces.
    #[must_use]
    pub fn transmit_bytes(&self) -> &[u8] {
        self.inner.out.front()
    }

    /// `n` bytes of [`Session::transmit_bytes`] were written: they leave the queue.
    pub fn transmitted(&mut self, n: usize) {
        self.inner.out.consume(n);
    }

    /// Outgoing bytes queued.
    pub fn transmit_len(&self) -> usize {
        self.inner.out.len()
    }

    /// When [`Session::handle_timeout`] should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ping = self.is_ready().then_some(self.inner.next_ping_at);
        match (self.inner.pending.next_deadline(), ping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next event, if any. Events from the current line borrow it.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        if let Some(owned) = self.inner.pop_owned() {
            if let Owned::StreamServerError {
                id,
                method,
                tag,
                code,
            } = owned
            {
                let message = &self.stream_message[..self.stream_message_len];
                return Some(Event::ServerError {
                    id,
                    method,
                    tag,
                    error: RpcError { code, message },
                });
            }
            return Some(owned.event());
        }
        loop {
            let LineCursor::Pending { next } = self.cursor else {
                return None;
            };
            let Some(line) = self.framer.line() else {
                self.cursor = LineCursor::None;
                return None;
            };
            // The `next`-th message of the line: the line itself, or a batch element.
            let scanned = envelope::scan(line);
            // A line with one message ends with it: no second scan just to find that out.
            let batch = matches!(scanned, Ok(Message::Batch(_)));
            let message = match scanned {
                Ok(Message::Single(env)) if next == 0 => Some(Ok(env)),
                Ok(Message::Single(_)) => None,
                Ok(Message::Batch(mut items)) => items.nth(next),
                Err(e) if next == 0 => Some(Err(e)),
                Err(_) => None,
            };
            let Some(message) = message else {
                self.cursor = LineCursor::None;
                return self.inner.pop_owned().map(Owned::event);
            };
            self.cursor = if batch {
                LineCursor::Pending { next: next + 1 }
            } else {
                LineCursor::None
            };
            let env = match message {
                Ok(env) => env,
                Err(e) => return Some(Event::ProtocolError(ProtocolError::Json(e))),
            };
            match self.inner.dispatch(env) {
                Dispatch::Event(ev) => return Some(ev),
                // Internal replies (negotiation, pings) may have queued an owned event.
                Dispatch::Internal => {
                    if let Some(owned) = self.inner.pop_owned() {
                        return Some(owned.event());
                    }
                }
            }
        }
    }
}

impl Inner<'_> {
    fn handle_timeout(&mut self, now: Instant, streaming: bool) {
        self.now = now;
        // Expire no more requests than the event queue can report, keeping a slot for a
        // failure; the rest stay due and are expired at the next call (their deadline is still
        // `poll_timeout`).
        while self.queue_len + 1 < MAX_QUEUED_EVENTS
            && let Some(p) = self.pending.take_expired(now)
        {
            if p.tag != INTERNAL_TAG {
                self.push_owned(Owned::TimedOut {
                    id: p.id,
                    method: p.method,
                    tag: p.tag,
                });
            } else if matches!(
                p.method,
                Method::ServerVersion | Method::ServerFeatures | Method::BlockHeader
            ) {
                self.fail(FatalError::NegotiationTimedOut);
            }
        }
        if let State::Ready(version) = self.state
            && now >= self.next_ping_at
            && !streaming
        {
            // A full output queue or pending table means traffic is flowing anyway.
            let _ = self.send(&Request::Ping { pong_len: 0 }, version, INTERNAL_TAG);
            self.next_ping_at = now + self.config.ping_interval;
        }
    }

    /// A line of `len` bytes was too long to buffer: the request its `id` names (if one is in
    /// flight) ends with [`Event::ResponseTooLarge`] (or, for the session's own requests, as
    /// a malformed reply); otherwise [`ProtocolError::OversizeLine`]. Returns the id ended.
    fn oversize(&mut self, id: Option<u64>, len: usize) -> Option<u64> {
        let Some(p) = id.and_then(|id| self.pending.take(id).ok()) else {
            self.push_owned(Owned::Protocol(ProtocolError::OversizeLine { len }));
            return None;
        };
        if p.tag == INTERNAL_TAG {
            self.internal_malformed(p.method);
        } else {
            self.push_owned(Owned::TooLarge {
                id: p.id,
                method: p.method,
                tag: p.tag,
                len,
            });
        }
        Some(p.id)
    }

    fn dispatch<'a>(&mut self, env: Envelope<'a>) -> Dispatch<'a> {
        match (env.id, env.method) {
            (None, Some(method)) => match notification(method, env.params) {
                Some(event) => Dispatch::Event(event),
                None => Dispatch::Internal,
            },
            (Some(_), Some(_)) => {
                Dispatch::Event(Event::ProtocolError(ProtocolError::UnexpectedRequest))
            }
            (None, None) => Dispatch::Event(Event::ProtocolError(ProtocolError::NotJsonRpc)),
            (Some(Id::Num(id)), None) => self.dispatch_response(id, env),
            (Some(_), None) => Dispatch::Event(Event::ProtocolError(ProtocolError::BadId)),
        }
    }

    fn dispatch_response<'a>(&mut self, id: u64, env: Envelope<'a>) -> Dispatch<'a> {
        let pending = match self.pending.take(id) {
            Ok(p) => p,
            Err(_) => return Dispatch::Event(Event::ProtocolError(ProtocolError::UnknownId(id))),
        };
        let outcome = match (env.result, env.error_value()) {
            (Some(result), None) => Ok(result),
            (None, Some(error)) => Err(error),
            // JSON-RPC 1.0 style: both members, the unused one null.
            (Some(b"null"), Some(error)) => Err(error),
            _ => {
                if pending.tag == INTERNAL_TAG {
                    // A negotiation reply that is neither: the session cannot go on.
                    self.internal_malformed(pending.method);
                    return Dispatch::Internal;
                }
                return Dispatch::Event(Event::ProtocolError(
                    ProtocolError::ResultAndErrorMismatch { id },
                ));
            }
        };
        if pending.tag == INTERNAL_TAG {
            self.internal_reply(pending.method, outcome);
            return Dispatch::Internal;
        }
        let (method, tag) = (pending.method, pending.tag);
        Dispatch::Event(match outcome {
            Ok(result) => Event::Response {
                id,
                method,
                tag,
                result,
            },
            Err(error) => {
                // An error that is neither an object nor a string is still this request's
                // end: report it with its raw JSON as the message.
                let error = match envelope::decode_error(error) {
                    Ok(e) => RpcError {
                        code: e.code,
                        message: e.message,
                    },
                    Err(_) => RpcError {
                        code: None,
                        message: error,
                    },
                };
                Event::ServerError {
                    id,
                    method,
                    tag,
                    error,
                }
            }
        })
    }

    fn internal_malformed(&mut self, method: Method) {
        match (method, self.state) {
            (Method::ServerVersion, State::AwaitVersion) => self.fail(FatalError::BadVersionReply),
            (Method::ServerFeatures, State::AwaitFeatures(_))
            | (Method::BlockHeader, State::AwaitGenesisHeader(_)) => {
                self.fail(FatalError::BadFeatures)
            }
            // A keep-alive ping: nothing depends on its answer.
            _ => {}
        }
    }

    fn internal_reply(&mut self, method: Method, outcome: Result<&[u8], &[u8]>) {
        match (method, self.state) {
            (Method::ServerVersion, State::AwaitVersion) => match outcome {
                Ok(result) => match response::version_reply(result) {
                    Ok(v) if self.config.versions.contains(v) => {
                        self.state = State::AwaitFeatures(v);
                        if self.send(&Request::Features, v, INTERNAL_TAG).is_err() {
                            self.fail(FatalError::OutputTooSmall);
                        }
                    }
                    Ok(got) => self.fail(FatalError::VersionOutOfRange { got }),
                    Err(_) => self.fail(FatalError::BadVersionReply),
                },
                Err(error) => {
                    let code = envelope::decode_error(error).ok().and_then(|e| e.code);
                    self.fail(FatalError::VersionRefused { code });
                }
            },
            (Method::ServerFeatures, State::AwaitFeatures(v)) => match outcome {
                Ok(result) => self.genesis_checked(v, response::features_genesis(result)),
                // No `server.features` (esplora): header 0 must hash to the genesis. Any error
                // reply qualifies: the fallback checks more than the features claim would.
                Err(_) => {
                    self.state = State::AwaitGenesisHeader(v);
                    let header0 = Request::BlockHeader {
                        height: 0,
                        cp_height: 0,
                    };
                    if self.send(&header0, v, INTERNAL_TAG).is_err() {
                        self.fail(FatalError::OutputTooSmall);
                    }
                }
            },
            (Method::BlockHeader, State::AwaitGenesisHeader(v)) => {
                let hash = outcome
                    .map_err(|_| response::BadResult)
                    .and_then(response::block_header)
                    .map(|h| Header::from_bytes(&h).block_hash());
                self.genesis_checked(v, hash);
            }
            // Keep-alive pings: any answer will do.
            _ => {}
        }
    }

    /// Ends negotiation on the server's genesis hash (from `server.features` or header 0).
    fn genesis_checked(&mut self, v: ProtocolVersion, genesis: Result<BlockHash, BadResult>) {
        match genesis {
            Ok(genesis) if genesis == self.config.params.genesis_hash => {
                self.state = State::Ready(v);
                self.push_owned(Owned::Ready(v));
            }
            Ok(_) => self.fail(FatalError::WrongGenesis),
            Err(_) => self.fail(FatalError::BadFeatures),
        }
    }

    fn send_version(&mut self) -> Result<(), RequestError> {
        let deadline = self.now + self.config.request_timeout;
        let id = self
            .pending
            .insert(Method::ServerVersion, deadline, INTERNAL_TAG)
            .map_err(|_| RequestError::TooManyInFlight)?;
        let range = self.config.versions;
        let (mut min, mut max) = ([0u8; 17], [0u8; 17]);
        let (min, max) = (range.min.write_to(&mut min), range.max.write_to(&mut max));
        let name = self.config.client_name;
        let plain = self.config.plain_version;
        let written = self.encode_with(|w| {
            w.begin(id, "server.version")?;
            w.str(name)?;
            if plain {
                w.str(min)?;
            } else {
                w.str_array(&[min, max])?;
            }
            w.end()
        });
        if let Err(e) = written {
            let _ = self.pending.take(id);
            return Err(e);
        }
        Ok(())
    }

    fn send(
        &mut self,
        request: &Request<'_>,
        version: ProtocolVersion,
        tag: u32,
    ) -> Result<u64, RequestError> {
        let deadline = self.now + self.config.request_timeout;
        let id = self
            .pending
            .insert(request.method(), deadline, tag)
            .map_err(|_| RequestError::TooManyInFlight)?;
        if let Err(e) = self.encode_with(|w| request.encode(id, version, w)) {
            let _ = self.pending.take(id);
            return Err(e);
        }
        self.next_ping_at = self.now + self.config.ping_interval;
        Ok(id)
    }

    /// Encodes one message after the queued bytes; nothing is queued if it does not fit.
    fn encode_with(
        &mut self,
        f: impl FnMut(&mut RequestWriter<'_>) -> Result<(), EncodeError>,
    ) -> Result<(), RequestError> {
        self.out.encode(f).map_err(RequestError::OutputFull)
    }

    fn fail(&mut self, e: FatalError) {
        if !matches!(self.state, State::Failed(_)) {
            self.state = State::Failed(e);
            self.pending.drain(|_| {});
            self.out.clear();
            self.push_owned(Owned::Failed(e));
        }
    }

    fn push_owned(&mut self, e: Owned) {
        if self.queue_len == MAX_QUEUED_EVENTS {
            self.dropped_events = self.dropped_events.saturating_add(1);
            return;
        }
        let slot = (self.queue_head + self.queue_len) % MAX_QUEUED_EVENTS;
        self.queue[slot] = Some(e);
        self.queue_len += 1;
    }

    fn pop_owned(&mut self) -> Option<Owned> {
        if self.queue_len == 0 {
            return None;
        }
        let e = self.queue[self.queue_head].take();
        self.queue_head = (self.queue_head + 1) % MAX_QUEUED_EVENTS;
        self.queue_len -= 1;
        e
    }
}

enum Dispatch<'a> {
    Event(Event<'a>),
    Internal,
}

/// Decodes a notification; `None` for ones there is nothing to act on: server pings (1.7),
/// ElectrumX's junk `blockchain.relayfee`/`estimatefee` notifications, altcoin extras.
fn notification<'a>(method: &'a [u8], params: Option<&'a [u8]>) -> Option<Event<'a>> {
    let kind = NotificationKind::from_method(method)?;
    let params = params.unwrap_or(b"[]");
    let decoded = match kind {
        NotificationKind::Headers => response::header_notification(params)
            .map(|(height, header)| Notification::Header { height, header }),
        NotificationKind::Script => {
            response::script_notification(params).map(|(script_hash, status)| {
                Notification::ScriptStatus {
                    script_hash,
                    status,
                }
            })
        }
        NotificationKind::Outpoint => Ok(Notification::Outpoint { params }),
        NotificationKind::Ping => return None,
    };
    Some(match decoded {
        Ok(n) => Event::Notification(n),
        Err(_) => Event::ProtocolError(ProtocolError::BadNotification),
    })
}
