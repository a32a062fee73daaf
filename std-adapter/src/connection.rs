//! One tokio task per connection: it owns the socket and the core [`Session`], turns caller
//! commands into requests, and routes responses, errors and notifications back.
//!
//! The task is the whole I/O loop of the sans-IO contract: write the queued bytes
//! (`transmit_bytes`, then `transmitted`), feed what was read to `handle_input`, drain
//! `poll_event`, sleep until `poll_timeout`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use electrum_spv_core::hash::{ScriptHash, Status};
use electrum_spv_core::rpc::{Method, ProtocolVersion};
use electrum_spv_core::session::response::HistoryItem;
use electrum_spv_core::session::unescape_into;
use electrum_spv_core::session::{
    Config, Event, Notification, ProtocolError, Request, RequestError, RpcError, Session,
    SessionStorage,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::clock::Clock;
use crate::error::Error;
use crate::reconnect::ReconnectPolicy;
use crate::server::ServerAddr;
use crate::subscriptions::Subscriptions;
use crate::transport::{self, BoxStream, ConnectOptions};

/// Longest line accepted from a server: 2 MiB. A longer response is discarded; the session
/// reads its `id` from the line's ends (ElectrumX writes it last, Fulcrum and electrs first)
/// and ends that request at once with [`Error::ResponseTooLarge`], or, where no `id` can be
/// read, the request times out.
///
/// Script histories have no size limit (ElectrumX >= 1.18 and electrs send 21k+ rows, about
/// 95-99 bytes each, as one line: INTEROP row 8). Histories are pipelined like every request
/// (a streamed request must be alone on the connection, and ElectrumX holds each small reply
/// up to a second, so streaming every history would serialise them); one whose answer turns
/// out too long for a line is asked again streamed: it waits at the head of the queue until
/// no other request is in flight, is then sent alone with
/// [`Session::request_streamed`](electrum_spv_core::session::Session::request_streamed), and
/// every later call waits behind it until its last row is in. At most [`MAX_IN_FLIGHT`]
/// histories wait for such a retry at once (they come from the requests in flight), each is
/// retried once, and the caller sees only the full history (or the server's refusal, e.g.
/// [`Error::HistoryTooLarge`]).
pub const MAX_LINE: usize = 2 << 20;
/// Largest request: 1 MiB (a broadcast of a 400 kvB transaction is 800 KB of hex).
pub const MAX_REQUEST: usize = 1 << 20;
/// Requests in flight on one connection; more wait in the client's queue.
pub const MAX_IN_FLIGHT: usize = 64;
/// Bytes read from the connection at a time (one buffer per connection, allocated whole: a
/// 2 MiB reply takes 128 reads).
const READ_CHUNK: usize = 16 * 1024;

/// The session type the adapter drives: its buffers on the heap.
pub(crate) type Core = Session<'static>;

/// A server notification, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A new tip (`blockchain.headers.subscribe`), as the server claims it.
    Header {
        /// Height.
        height: u32,
        /// The 80-byte header.
        header: [u8; 80],
    },
    /// A script's status changed (`null` status: no history any more).
    ScriptStatus {
        /// The script.
        script_hash: ScriptHash,
        /// Its new status.
        status: Option<Status>,
    },
    /// An outpoint's status changed (1.7): the raw JSON params.
    Outpoint(Vec<u8>),
    /// The connection was lost (why); the client is reconnecting.
    Disconnected(String),
    /// The connection is back after this many attempts; subscriptions are being restored, and
    /// statuses or a tip that changed meanwhile follow as notices.
    Reconnected {
        /// Attempts it took.
        attempts: u32,
    },
}

/// A request with its arguments owned, so it can wait in a queue.
#[derive(Clone, Debug)]
pub(crate) enum OwnedRequest {
    /// A request whose arguments are all plain values.
    Plain(Request<'static>),
    /// A script method and the script's bytes.
    Script(ScriptOp, Vec<u8>),
    /// `blockchain.transaction.broadcast`.
    Broadcast(Vec<u8>),
    /// `broadcast_package` (`test_only`: `testmempoolaccept` instead).
    Package { txs: Vec<Vec<u8>>, test_only: bool },
}

impl OwnedRequest {
    fn method(&self) -> Method {
        self.with(|r| r.method())
    }

    /// Runs `f` with the borrowed core request.
    fn with<R>(&self, f: impl FnOnce(&Request<'_>) -> R) -> R {
        match self {
            OwnedRequest::Plain(r) => f(r),
            OwnedRequest::Script(op, script) => f(&op.request(script)),
            OwnedRequest::Broadcast(tx) => f(&Request::Broadcast(tx)),
            OwnedRequest::Package { txs, test_only } => {
                let refs: Vec<&[u8]> = txs.iter().map(Vec::as_slice).collect();
                if *test_only {
                    f(&Request::TestMempoolAccept(&refs))
                } else {
                    f(&Request::BroadcastPackage(&refs))
                }
            }
        }
    }
}

/// A script method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScriptOp {
    History,
    Mempool,
    ListUnspent,
    Balance,
    Subscribe,
    Unsubscribe,
}

impl ScriptOp {
    fn request(self, script: &[u8]) -> Request<'_> {
        match self {
            ScriptOp::History => Request::ScriptGetHistory(script),
            ScriptOp::Mempool => Request::ScriptGetMempool(script),
            ScriptOp::ListUnspent => Request::ScriptListUnspent(script),
            ScriptOp::Balance => Request::ScriptGetBalance(script),
            ScriptOp::Subscribe => Request::ScriptSubscribe(script),
            ScriptOp::Unsubscribe => Request::ScriptUnsubscribe(script),
        }
    }
}

/// Where an answer goes.
pub(crate) enum Reply {
    /// A caller waiting on a [`Client`](crate::Client) method.
    Caller(oneshot::Sender<Result<Vec<u8>, Error>>),
    /// A caller waiting for a script history (a history request): sent as usual and decoded
    /// here, or, when its answer was too long for a line, asked again streamed row by row.
    History(oneshot::Sender<Result<Vec<HistoryItem>, Error>>),
    /// The task's own re-subscription of a script after a reconnect.
    Resubscribe(ScriptHash),
    /// The task's own re-subscription to headers after a reconnect.
    ResubscribeHeaders,
}

/// What callers send to the task.
pub(crate) struct Call {
    pub request: OwnedRequest,
    pub reply: Reply,
    /// When the caller made it: a call still unsent after the request timeout (the
    /// connection is down) fails with [`Error::Timeout`].
    pub since: Instant,
    /// A history whose answer was too long for a line: send it streamed, alone.
    streamed_only: bool,
}

impl Call {
    pub fn new(request: OwnedRequest, reply: Reply) -> Call {
        Call {
            request,
            reply,
            since: Instant::now(),
            streamed_only: false,
        }
    }

    fn answer(self, result: Result<Vec<u8>, Error>) -> Option<(Reply, Result<Vec<u8>, Error>)> {
        self.finish(result, None)
    }

    /// Answers with the raw result, or for a streamed history with the rows streamed
    /// (`streamed`, used when the result is a success).
    fn finish(
        self,
        result: Result<Vec<u8>, Error>,
        streamed: Option<Vec<HistoryItem>>,
    ) -> Option<(Reply, Result<Vec<u8>, Error>)> {
        let method = self.request.method();
        match self.reply {
            Reply::Caller(tx) => {
                let _ = tx.send(result);
                None
            }
            Reply::History(tx) => {
                let items = result.and_then(|raw| match streamed {
                    Some(items) => Ok(items),
                    None => crate::client::history(&raw, method),
                });
                let _ = tx.send(items);
                None
            }
            own => Some((own, result)),
        }
    }

    /// Waits for a caller (not the task's own re-subscriptions).
    fn is_callers(&self) -> bool {
        matches!(self.reply, Reply::Caller(_) | Reply::History(_))
    }

    /// Safe to send again on a new connection: everything but a broadcast.
    fn is_idempotent(&self) -> bool {
        !matches!(
            self.request,
            OwnedRequest::Broadcast(_)
                | OwnedRequest::Package {
                    test_only: false,
                    ..
                }
        )
    }
}

/// Bounds of one connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Calls waiting for a slot in the session's pending table.
    pub max_queued: usize,
    /// Scripts subscribed at once.
    pub max_subscriptions: usize,
}

/// How the task talks to its [`Client`](crate::Client) handles.
pub(crate) struct Links {
    /// Calls from the handles.
    pub calls: mpsc::Receiver<Call>,
    /// Notifications to subscribers.
    pub notices: broadcast::Sender<Notice>,
    /// The first negotiation's outcome.
    pub ready: oneshot::Sender<Result<ProtocolVersion, Error>>,
    /// Whether the connection is up.
    pub connected: Arc<AtomicBool>,
    /// Bounds.
    pub limits: Limits,
}

/// How to open the connection again.
pub(crate) struct Endpoint {
    pub server: ServerAddr,
    pub options: ConnectOptions,
    pub config: Config,
    pub policy: Option<ReconnectPolicy>,
}

impl Endpoint {
    fn request_timeout(&self) -> Duration {
        self.config.request_timeout.into()
    }
}

/// What became of a request in flight; `None`: the session refused the response's envelope.
type Answer = Option<Result<Vec<u8>, Error>>;

/// How often calls waiting for a reconnect are checked against their deadline.
const EXPIRY_TICK: Duration = Duration::from_millis(250);

/// The task's state.
struct Task {
    session: Core,
    /// The session's time: core instants since the connection opened.
    clock: Clock,
    queued: VecDeque<Call>,
    waiting: HashMap<u64, Call>,
    notices: broadcast::Sender<Notice>,
    limits: Limits,
    ready: Option<oneshot::Sender<Result<ProtocolVersion, Error>>>,
    subscriptions: Subscriptions,
    calls_open: bool,
    /// Rows of the streamed history request in flight, by request id.
    streamed: HashMap<u64, Vec<HistoryItem>>,
}

/// A session over heap buffers of the adapter's capacities ([`MAX_LINE`], [`MAX_REQUEST`],
/// [`MAX_IN_FLIGHT`]). The line buffer and the outgoing queue start empty and grow as the
/// connection uses them (`SessionStorage::owned`), never past those caps, so an idle
/// connection holds a few hundred bytes of them, not 3 MiB.
pub(crate) fn new_session(config: Config) -> Core {
    let storage = SessionStorage::owned(MAX_LINE, MAX_REQUEST, MAX_IN_FLIGHT);
    Core::new(storage, config, electrum_spv_core::time::Instant::ZERO)
}

/// Runs a connection until every [`Client`] handle is dropped, the session fails (wrong
/// network, no common version), or the connection is lost and the reconnect policy (if any)
/// gives up. `ready` gets the negotiated version of the first connection.
///
/// After a reconnect, calls that were in flight are sent again (a broadcast fails with
/// [`Error::Disconnected`] instead), subscriptions are restored, and any script status or tip
/// that changed meanwhile is reported as a notice.
///
/// [`Client`]: crate::Client
pub(crate) async fn run(stream: BoxStream, session: Core, endpoint: Endpoint, links: Links) {
    let Links {
        mut calls,
        notices,
        ready,
        connected,
        limits,
    } = links;
    let mut task = Task {
        session,
        clock: Clock::start(),
        queued: VecDeque::new(),
        waiting: HashMap::new(),
        notices,
        limits,
        ready: Some(ready),
        subscriptions: Subscriptions::default(),
        calls_open: true,
        streamed: HashMap::new(),
    };
    let mut stream = stream;
    loop {
        let end = task.drive(stream, &mut calls).await;
        let give_up = matches!(end, Error::Closed | Error::Session(_)) || task.ready.is_some();
        let Some(policy) = endpoint.policy.filter(|_| !give_up) else {
            connected.store(false, Ordering::Relaxed);
            task.fail_all(end);
            return;
        };
        connected.store(false, Ordering::Relaxed);
        task.requeue_after_loss();
        let _ = task.notices.send(Notice::Disconnected(end.to_string()));
        match task.reconnect(&endpoint, policy, &mut calls).await {
            Some(s) => {
                stream = s;
                connected.store(true, Ordering::Relaxed);
            }
            None => {
                task.fail_all(Error::Disconnected);
                return;
            }
        }
    }
}

impl Task {
    fn now(&self) -> electrum_spv_core::time::Instant {
        self.clock.now()
    }

    async fn drive(&mut self, mut stream: BoxStream, calls: &mut mpsc::Receiver<Call>) -> Error {
        let mut read_buf = vec![0u8; READ_CHUNK];
        loop {
            self.send_queued();
            // Written straight from the session's queue, no copy first.
            loop {
                let queued = self.session.transmit_bytes();
                if queued.is_empty() {
                    break;
                }
                match stream.write(queued).await {
                    Ok(0) => return Error::Io(std::io::ErrorKind::WriteZero.into()),
                    Ok(n) => self.session.transmitted(n),
                    Err(e) => return Error::Io(e),
                }
            }
            if let Err(e) = stream.flush().await {
                return Error::Io(e);
            }
            if let Some(e) = self.session.failure() {
                return Error::Session(e);
            }
            if !self.calls_open && self.waiting.is_empty() && self.queued.is_empty() {
                return Error::Closed;
            }
            let deadline = self.session.poll_timeout().map(|t| self.clock.deadline(t));
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                read = stream.read(&mut read_buf) => match read {
                    Ok(0) => return Error::Disconnected,
                    Ok(n) => self.input(&read_buf[..n]),
                    Err(e) => return Error::Io(e),
                },
                call = calls.recv(), if self.calls_open => match call {
                    Some(call) => self.enqueue(call),
                    None => self.calls_open = false,
                },
                () = sleep => {
                    let now = self.now();
                    self.session.handle_timeout(now);
                    self.drain_events();
                }
            }
        }
    }

    /// Opens the connection again, with backoff; calls arriving meanwhile are queued. `None`
    /// when the policy gives up or every handle is gone.
    async fn reconnect(
        &mut self,
        endpoint: &Endpoint,
        policy: ReconnectPolicy,
        calls: &mut mpsc::Receiver<Call>,
    ) -> Option<BoxStream> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if policy.max_attempts.is_some_and(|max| attempt > max) {
                return None;
            }
            let wait = tokio::time::sleep(policy.delay(attempt));
            tokio::pin!(wait);
            let mut tick = tokio::time::interval(EXPIRY_TICK);
            loop {
                tokio::select! {
                    () = &mut wait => break,
                    call = calls.recv(), if self.calls_open => match call {
                        Some(call) => self.enqueue(call),
                        None => self.calls_open = false,
                    },
                    _ = tick.tick() => self.expire_queued(endpoint.request_timeout()),
                }
            }
            self.expire_queued(endpoint.request_timeout());
            if !self.calls_open && self.waiting.is_empty() && self.queued.is_empty() {
                return None;
            }
            let Ok(stream) = transport::connect(&endpoint.server, &endpoint.options).await else {
                continue;
            };
            self.session = new_session(endpoint.config);
            self.clock = Clock::start();
            let restore = self.subscriptions.restore_calls();
            for call in restore.into_iter().rev() {
                self.queued.push_front(call);
            }
            let _ = self.notices.send(Notice::Reconnected { attempts: attempt });
            return Some(stream);
        }
    }

    /// Fails queued calls older than `timeout` with [`Error::Timeout`].
    fn expire_queued(&mut self, timeout: Duration) {
        let (expired, keep): (VecDeque<Call>, VecDeque<Call>) = std::mem::take(&mut self.queued)
            .into_iter()
            .partition(|c| c.is_callers() && c.since.elapsed() >= timeout);
        self.queued = keep;
        for call in expired {
            let _ = call.answer(Err(Error::Timeout));
        }
    }

    /// After a lost connection: calls in flight go back to the front of the queue, except
    /// broadcasts, which fail (whether they reached the server is unknown).
    fn requeue_after_loss(&mut self) {
        self.streamed.clear();
        let mut ids: Vec<u64> = self.waiting.keys().copied().collect();
        ids.sort_unstable();
        for id in ids.into_iter().rev() {
            let Some(call) = self.waiting.remove(&id) else {
                continue;
            };
            match call.reply {
                // Our own re-subscriptions are made again from the registry.
                Reply::Resubscribe(_) | Reply::ResubscribeHeaders => {}
                Reply::Caller(_) | Reply::History(_) if call.is_idempotent() => {
                    self.queued.push_front(call);
                }
                Reply::Caller(_) | Reply::History(_) => {
                    let _ = call.answer(Err(Error::Disconnected));
                }
            }
        }
        self.queued.retain(Call::is_callers);
    }

    fn enqueue(&mut self, call: Call) {
        if self.queued.len() >= self.limits.max_queued {
            let _ = call.answer(Err(Error::TooManyPending));
            return;
        }
        if let OwnedRequest::Script(ScriptOp::Subscribe, script) = &call.request
            && !self
                .subscriptions
                .has_room(script, self.limits.max_subscriptions)
        {
            let _ = call.answer(Err(Error::TooManySubscriptions));
            return;
        }
        self.queued.push_back(call);
    }

    /// Moves queued calls into the session while it has room.
    fn send_queued(&mut self) {
        if !self.session.is_ready() {
            return;
        }
        while let Some(call) = self.queued.pop_front() {
            let now = self.now();
            let method = call.request.method();
            if call.streamed_only && !self.waiting.is_empty() {
                // A history too long for a line waits for the connection to be idle, and every
                // call behind it waits too (see `MAX_LINE`).
                self.queued.push_front(call);
                return;
            }
            // Pipelined with the rest (a 2 MiB line); a history whose answer is longer is
            // asked again streamed.
            let stream = call.streamed_only;
            let session = &mut self.session;
            let sent = call.request.with(|r| match stream {
                true => session.request_streamed(now, r, 0),
                false => session.request(now, r, 0),
            });
            match sent {
                Ok(id) => {
                    if stream {
                        self.streamed.insert(id, Vec::new());
                    }
                    self.waiting.insert(id, call);
                }
                Err(RequestError::TooManyInFlight | RequestError::Busy) => {
                    self.queued.push_front(call);
                    return;
                }
                Err(RequestError::OutputFull(_)) if self.session.in_flight() > 0 => {
                    // Room comes back once the buffered requests are written.
                    self.queued.push_front(call);
                    return;
                }
                Err(e) => {
                    let _ = call.answer(Err(match e {
                        RequestError::NotAvailable { .. } => Error::NotAvailable(method),
                        RequestError::Closed => Error::Closed,
                        RequestError::OutputFull(_) => Error::InvalidArgument(format!(
                            "request larger than {MAX_REQUEST} bytes"
                        )),
                        other => Error::InvalidArgument(other.to_string()),
                    }));
                }
            }
        }
    }

    fn input(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let now = self.now();
            let n = self.session.handle_input(now, bytes);
            bytes = &bytes[n..];
            self.drain_events();
        }
    }

    fn drain_events(&mut self) {
        let mut answered: Vec<(u64, Answer)> = Vec::new();
        let mut too_large: Vec<(u64, Method, usize)> = Vec::new();
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Ready { version } => {
                    if let Some(ready) = self.ready.take() {
                        let _ = ready.send(Ok(version));
                    }
                }
                Event::Response { id, result, .. } => {
                    answered.push((id, Some(Ok(result.to_vec()))));
                }
                Event::ServerError {
                    id, method, error, ..
                } => {
                    answered.push((id, Some(Err(server_error(method, &error)))));
                }
                Event::TimedOut { id, .. } => answered.push((id, Some(Err(Error::Timeout)))),
                Event::ResponseTooLarge {
                    id, method, len, ..
                } => too_large.push((id, method, len)),
                Event::StreamHistoryItem { id, item, .. } => {
                    if let Some(rows) = self.streamed.get_mut(&id) {
                        rows.push(item);
                    }
                }
                Event::StreamEnd { id, .. } => answered.push((id, Some(Ok(Vec::new())))),
                Event::Notification(n) => {
                    let notice = match n {
                        Notification::Header { height, header } => {
                            self.subscriptions.tip = Some((height, header));
                            Notice::Header { height, header }
                        }
                        Notification::ScriptStatus {
                            script_hash,
                            status,
                        } => {
                            self.subscriptions.status_changed(&script_hash, status);
                            Notice::ScriptStatus {
                                script_hash,
                                status,
                            }
                        }
                        Notification::Outpoint { params } => Notice::Outpoint(params.to_vec()),
                    };
                    // No receiver is not an error: nobody subscribed to notices.
                    let _ = self.notices.send(notice);
                }
                Event::Failed(e) => {
                    if let Some(ready) = self.ready.take() {
                        let _ = ready.send(Err(Error::Session(e)));
                    }
                }
                // A response for a request in flight that the session refused: the request
                // is over (the session no longer holds it), so its caller is answered now.
                Event::ProtocolError(
                    ProtocolError::ResultAndErrorMismatch { id }
                    | ProtocolError::StreamFailed { id, .. },
                ) => answered.push((id, None)),
                // Other refused input belongs to no request in flight (a request whose line
                // was lost ends by its deadline); the session carries on.
                Event::ProtocolError(_) | Event::StreamHeader { .. } => {}
            }
        }
        for (id, method, len) in too_large {
            self.streamed.remove(&id);
            let Some(mut call) = self.waiting.remove(&id) else {
                continue;
            };
            if matches!(call.reply, Reply::History(_)) && !call.streamed_only {
                // Asked again streamed, ahead of everything queued (see `MAX_LINE`).
                call.streamed_only = true;
                self.queued.push_front(call);
            } else {
                answered.push((id, Some(Err(Error::ResponseTooLarge { method, len }))));
                self.waiting.insert(id, call);
            }
        }
        for (id, result) in answered {
            let streamed = self.streamed.remove(&id);
            let Some(call) = self.waiting.remove(&id) else {
                continue;
            };
            let result = result.unwrap_or_else(|| Err(Error::BadResult(call.request.method())));
            // A caller's (un)subscription changes the registry; our own restoring calls are
            // compared with it first, in `restored`.
            if let (Reply::Caller(_), Ok(raw)) = (&call.reply, &result) {
                self.subscriptions.record(&call.request, raw);
            }
            if let Some((own, result)) = call.finish(result, streamed)
                && let Some(notice) = self.subscriptions.restored(own, result)
            {
                let _ = self.notices.send(notice);
            }
        }
    }

    /// Ends every waiting and queued call with `end` (as fits each).
    fn fail_all(&mut self, end: Error) {
        let each = |e: &Error| match e {
            Error::Session(f) => Error::Session(*f),
            Error::Closed => Error::Closed,
            _ => Error::Disconnected,
        };
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Err(match end {
                Error::Session(f) => Error::Session(f),
                Error::Io(ref e) => Error::Io(std::io::Error::new(e.kind(), e.to_string())),
                _ => Error::Disconnected,
            }));
        }
        for (_, call) in self.waiting.drain() {
            let _ = call.answer(Err(each(&end)));
        }
        for call in self.queued.drain(..) {
            let _ = call.answer(Err(each(&end)));
        }
    }
}

/// A server error as the typed [`Error`] it is: the one place where a server's error reply
/// is classified (the servers' own texts are recognised by [`RpcError`]'s methods).
///
/// * -101 / -102: [`Error::ExcessiveUsage`] / [`Error::ServerBusy`] (ElectrumX);
/// * "history too large" (ElectrumX 10001 or 1) and esplora's 500-row limits (INTEROP row 7):
///   [`Error::HistoryTooLarge`];
/// * -32603 "unavailable index" (electrs indexing, row 3): [`Error::Unavailable`];
/// * -32601 (a method the server does not offer, row 12): [`Error::NotAvailable`];
/// * anything else: [`Error::Server`] with the code and message as sent.
fn server_error(method: Method, e: &RpcError<'_>) -> Error {
    let mut buf = vec![0u8; e.message.len()];
    let message = unescape_into(e.message, &mut buf)
        .map(str::to_owned)
        .unwrap_or_else(|_| String::from_utf8_lossy(e.message).into_owned());
    if e.is_excessive_usage() {
        Error::ExcessiveUsage(message)
    } else if e.is_server_busy() {
        Error::ServerBusy(message)
    } else if e.is_history_too_large() {
        Error::HistoryTooLarge(message)
    } else if e.is_index_unavailable() {
        Error::Unavailable(message)
    } else if e.is_method_not_found() {
        Error::NotAvailable(method)
    } else {
        Error::Server {
            code: e.code,
            message,
        }
    }
}
