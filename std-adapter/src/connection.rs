//! One tokio task per connection: it owns the socket and the core [`Session`], turns caller
//! commands into requests, and routes responses, errors and notifications back.
//!
//! The task is the whole I/O loop of the sans-IO contract: write what `poll_transmit` gives,
//! feed what was read to `handle_input`, drain `poll_event`, sleep until `poll_timeout`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use electrum_spv_core::hash::{ScriptHash, Status};
use electrum_spv_core::json::unescape_into;
use electrum_spv_core::rpc::{Method, ProtocolVersion};
use electrum_spv_core::session::{
    Config, Event, Notification, Request, RequestError, RpcError, Session,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::error::Error;
use crate::transport::BoxStream;

/// Longest line accepted from a server: 2 MiB. A longer response (a history of more than
/// ~20,000 rows) is discarded and its request times out; ElectrumX itself refuses to send
/// more than 1 MB by default.
pub const MAX_LINE: usize = 2 << 20;
/// Largest request: 1 MiB (a broadcast of a 400 kvB transaction is 800 KB of hex).
pub const MAX_REQUEST: usize = 1 << 20;
/// Requests in flight on one connection; more wait in the client's queue.
pub const MAX_IN_FLIGHT: usize = 64;

/// The session type the adapter drives.
pub(crate) type Core = Session<MAX_LINE, MAX_REQUEST, MAX_IN_FLIGHT>;

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

/// What callers send to the task.
pub(crate) struct Call {
    pub request: OwnedRequest,
    pub reply: oneshot::Sender<Result<Vec<u8>, Error>>,
}

/// Bounds of one connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Calls waiting for a slot in the session's pending table.
    pub max_queued: usize,
}

/// The task's state.
struct Task {
    session: Box<Core>,
    start: Instant,
    queued: VecDeque<Call>,
    waiting: HashMap<u64, oneshot::Sender<Result<Vec<u8>, Error>>>,
    notices: broadcast::Sender<Notice>,
    limits: Limits,
    ready: Option<oneshot::Sender<Result<ProtocolVersion, Error>>>,
}

/// Builds a session on a thread with a large stack: `Core` is ~3 MiB and is built by value, so
/// on a tokio worker's 2 MiB stack (and in unoptimised builds) it would overflow.
pub(crate) fn new_session(config: Config) -> Result<Box<Core>, Error> {
    std::thread::Builder::new()
        .name("electrum-spv-session-init".into())
        .stack_size(64 << 20)
        .spawn(move || Box::new(Core::new(config, 0)))
        .map_err(Error::Io)?
        .join()
        .map_err(|_| Error::Io(std::io::Error::other("session construction panicked")))
}

/// Runs a connection until the stream closes, the session fails or every [`Client`] handle is
/// dropped. `ready` gets the negotiated version (or why negotiation failed).
///
/// [`Client`]: crate::Client
pub(crate) async fn run(
    stream: BoxStream,
    session: Box<Core>,
    calls: mpsc::Receiver<Call>,
    notices: broadcast::Sender<Notice>,
    limits: Limits,
    ready: oneshot::Sender<Result<ProtocolVersion, Error>>,
) {
    let mut task = Task {
        session,
        start: Instant::now(),
        queued: VecDeque::new(),
        waiting: HashMap::new(),
        notices,
        limits,
        ready: Some(ready),
    };
    let end = task.drive(stream, calls).await;
    task.fail_all(end);
}

impl Task {
    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    async fn drive(&mut self, mut stream: BoxStream, mut calls: mpsc::Receiver<Call>) -> Error {
        let mut read_buf = vec![0u8; 64 * 1024];
        let mut out = vec![0u8; 64 * 1024];
        let mut calls_open = true;
        loop {
            self.send_queued();
            loop {
                let n = self.session.poll_transmit(&mut out);
                if n == 0 {
                    break;
                }
                if let Err(e) = stream.write_all(&out[..n]).await {
                    return Error::Io(e);
                }
            }
            if let Err(e) = stream.flush().await {
                return Error::Io(e);
            }
            if let Some(e) = self.session.failure() {
                return Error::Session(e);
            }
            if !calls_open && self.waiting.is_empty() && self.queued.is_empty() {
                return Error::Closed;
            }
            let deadline = self
                .session
                .poll_timeout()
                .map(|t| self.start + Duration::from_millis(t));
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                read = stream.read(&mut read_buf) => match read {
                    Ok(0) => return Error::Disconnected,
                    Ok(n) => self.input(&read_buf[..n]),
                    Err(e) => return Error::Io(e),
                },
                call = calls.recv(), if calls_open => match call {
                    Some(call) => self.enqueue(call),
                    None => calls_open = false,
                },
                () = sleep => {
                    let now = self.now();
                    self.session.handle_timeout(now);
                    self.drain_events();
                }
            }
        }
    }

    fn enqueue(&mut self, call: Call) {
        if self.queued.len() >= self.limits.max_queued {
            let _ = call.reply.send(Err(Error::TooManyPending));
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
            let session = &mut self.session;
            match call.request.with(|r| session.request(now, r, 0)) {
                Ok(id) => {
                    self.waiting.insert(id, call.reply);
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
                    let _ = call.reply.send(Err(match e {
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
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Ready { version } => {
                    if let Some(ready) = self.ready.take() {
                        let _ = ready.send(Ok(version));
                    }
                }
                Event::Response { id, result, .. } => {
                    if let Some(reply) = self.waiting.remove(&id) {
                        let _ = reply.send(Ok(result.to_vec()));
                    }
                }
                Event::ServerError { id, error, .. } => {
                    if let Some(reply) = self.waiting.remove(&id) {
                        let _ = reply.send(Err(server_error(&error)));
                    }
                }
                Event::TimedOut { id, .. } => {
                    if let Some(reply) = self.waiting.remove(&id) {
                        let _ = reply.send(Err(Error::Timeout));
                    }
                }
                Event::Notification(n) => {
                    let notice = match n {
                        Notification::Header { height, header } => {
                            Notice::Header { height, header }
                        }
                        Notification::ScriptStatus {
                            script_hash,
                            status,
                        } => Notice::ScriptStatus {
                            script_hash,
                            status,
                        },
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
                // Refused input: the session carries on and the request it belonged to (if
                // any) ends by its deadline.
                Event::ProtocolError(_)
                | Event::StreamHeader { .. }
                | Event::StreamHistoryItem { .. }
                | Event::StreamEnd { .. } => {}
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
        for (_, reply) in self.waiting.drain() {
            let _ = reply.send(Err(each(&end)));
        }
        for call in self.queued.drain(..) {
            let _ = call.reply.send(Err(each(&end)));
        }
    }
}

/// A server error as the typed [`Error`] it is.
fn server_error(e: &RpcError<'_>) -> Error {
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
    } else {
        Error::Server {
            code: e.code,
            message,
        }
    }
}
