//! A blocking `std::net` driver for the core [`Session`]: the caller's loop of the sans-IO
//! contract, written once for tests and examples.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use electrum_spv_core::session::{
    Config, Event, FatalError, Request, RequestError, Session, SessionStorage,
};
use electrum_spv_core::time;

/// Line buffer of the test driver. A whole 2016-header result is 322,560 hex digits, but
/// ElectrumX 2.0 pads every reply up to a power of two (524,287 bytes), which does not fit: use
/// streamed requests or at most 1008 headers per request. Larger buffers would overflow a test
/// thread's stack while the session is built.
pub const DRIVER_LINE: usize = 400 * 1024;
/// Outgoing queue of the test driver.
pub const DRIVER_OUT: usize = 1 << 16;
/// Requests in flight.
pub const DRIVER_PENDING: usize = 64;

/// The session type the driver runs.
pub type DriverSession = Session<'static>;

/// An owned copy of an event, so tests can keep it after the next read.
#[derive(Clone, Debug, PartialEq)]
pub enum OwnedEvent {
    /// See [`Event::Ready`].
    Ready(electrum_spv_core::rpc::ProtocolVersion),
    /// A response: id, tag and the raw `result` JSON.
    Response {
        /// Request id.
        id: u64,
        /// Caller's tag.
        tag: u32,
        /// Raw result JSON.
        result: Vec<u8>,
    },
    /// A server error: id, tag, code and raw message.
    ServerError {
        /// Request id.
        id: u64,
        /// Caller's tag.
        tag: u32,
        /// Error code.
        code: Option<i64>,
        /// Raw message.
        message: Vec<u8>,
    },
    /// Anything else, rendered with `Debug`.
    Other(String),
}

impl OwnedEvent {
    fn from_event(e: &Event<'_>) -> OwnedEvent {
        match *e {
            Event::Ready { version } => OwnedEvent::Ready(version),
            Event::Response {
                id, tag, result, ..
            } => OwnedEvent::Response {
                id,
                tag,
                result: result.to_vec(),
            },
            Event::ServerError { id, tag, error, .. } => OwnedEvent::ServerError {
                id,
                tag,
                code: error.code,
                message: error.message.to_vec(),
            },
            ref other => OwnedEvent::Other(format!("{other:?}")),
        }
    }
}

/// Drives a session over a blocking TCP connection.
pub struct Driver {
    stream: TcpStream,
    /// The session (boxed: its buffers are large).
    pub session: Box<DriverSession>,
    start: Instant,
    rx: Vec<u8>,
    tx: Vec<u8>,
    /// Bytes read but not yet fed (the session stops after each line).
    unfed: Vec<u8>,
}

/// What can go wrong while driving.
#[derive(Debug)]
pub enum DriverError {
    /// The socket failed.
    Io(io::Error),
    /// The session failed.
    Fatal(FatalError),
    /// A request was refused by the session.
    Request(RequestError),
    /// Nothing arrived before the deadline.
    Timeout,
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverError::Io(e) => write!(f, "socket: {e}"),
            DriverError::Fatal(e) => write!(f, "session failed: {e}"),
            DriverError::Request(e) => write!(f, "request refused: {e}"),
            DriverError::Timeout => f.write_str("timed out"),
        }
    }
}

impl std::error::Error for DriverError {}

impl From<io::Error> for DriverError {
    fn from(e: io::Error) -> Self {
        DriverError::Io(e)
    }
}

impl Driver {
    /// Connects and creates the session (which queues `server.version`).
    pub fn connect(addr: SocketAddr, config: Config) -> Result<Driver, DriverError> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        stream.set_nodelay(true)?;
        let start = Instant::now();
        let storage = SessionStorage::owned(DRIVER_LINE, DRIVER_OUT, DRIVER_PENDING);
        let session = Box::new(DriverSession::new(storage, config, time::Instant::ZERO));
        Ok(Driver {
            stream,
            session,
            start,
            rx: vec![0; 1 << 16],
            tx: vec![0; 1 << 16],
            unfed: Vec::new(),
        })
    }

    /// The session's clock: the time since the driver started.
    pub fn now(&self) -> time::Instant {
        time::Instant::ZERO + time::Duration::from(self.start.elapsed())
    }

    /// Queues a request.
    pub fn request(&mut self, request: &Request<'_>, tag: u32) -> Result<u64, DriverError> {
        let now = self.now();
        self.session
            .request(now, request, tag)
            .map_err(DriverError::Request)
    }

    /// Writes everything the session has queued.
    pub fn flush(&mut self) -> Result<(), DriverError> {
        loop {
            let n = self.session.poll_transmit(&mut self.tx);
            if n == 0 {
                return Ok(());
            }
            self.stream.write_all(&self.tx[..n])?;
        }
    }

    /// Runs the caller's loop until `f` returns `Some` for an event, or `timeout` passes.
    pub fn run_until<T>(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&Event<'_>) -> Option<T>,
    ) -> Result<T, DriverError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.flush()?;
            let now = self.now();
            self.session.handle_timeout(now);
            if let Some(t) = self.drain(&mut f)? {
                return Ok(t);
            }
            // Feed what is unfed, one line at a time, checking events after each.
            while !self.unfed.is_empty() {
                let used = self.session.handle_input(self.now(), &self.unfed);
                self.unfed.drain(..used);
                if let Some(t) = self.drain(&mut f)? {
                    return Ok(t);
                }
            }
            // Feeding may have queued requests (e.g. `server.features` after the version).
            self.flush()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(DriverError::Timeout);
            }
            let wake = self.session.poll_timeout().map(|t| Duration::from(t - now));
            let wait = wake.map_or(left, |d| left.min(d));
            self.stream
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
            match self.stream.read(&mut self.rx) {
                Ok(0) => return Err(DriverError::Io(io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => self.unfed.extend_from_slice(&self.rx[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn drain<T>(
        &mut self,
        f: &mut impl FnMut(&Event<'_>) -> Option<T>,
    ) -> Result<Option<T>, DriverError> {
        while let Some(ev) = self.session.poll_event() {
            if let Event::Failed(e) = ev {
                return Err(DriverError::Fatal(e));
            }
            if let Some(t) = f(&ev) {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }

    /// Waits for [`Event::Ready`]; returns the negotiated version.
    pub fn ready(
        &mut self,
        timeout: Duration,
    ) -> Result<electrum_spv_core::rpc::ProtocolVersion, DriverError> {
        self.run_until(timeout, |ev| match ev {
            Event::Ready { version } => Some(*version),
            _ => None,
        })
    }

    /// Sends all requests at once (pipelined: ElectrumX holds small replies up to ~1 s, so
    /// one-at-a-time calls crawl) and waits for every answer; results are in request order.
    pub fn call_many(
        &mut self,
        requests: &[Request<'_>],
        timeout: Duration,
    ) -> Result<Vec<OwnedEvent>, DriverError> {
        let mut results: Vec<Option<OwnedEvent>> = vec![None; requests.len()];
        for chunk_start in (0..requests.len()).step_by(DRIVER_PENDING / 2) {
            let chunk =
                &requests[chunk_start..requests.len().min(chunk_start + DRIVER_PENDING / 2)];
            let mut ids = Vec::with_capacity(chunk.len());
            for r in chunk {
                ids.push(self.request(r, 0)?);
            }
            let mut left = ids.len();
            self.run_until(timeout, |ev| {
                let id = match ev {
                    Event::Response { id, .. }
                    | Event::ServerError { id, .. }
                    | Event::TimedOut { id, .. } => *id,
                    _ => return None,
                };
                let slot = ids.iter().position(|i| *i == id)?;
                results[chunk_start + slot] = Some(OwnedEvent::from_event(ev));
                left -= 1;
                (left == 0).then_some(())
            })?;
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every id answered"))
            .collect())
    }

    /// Sends one request and waits for its response or error, returned owned.
    pub fn call(
        &mut self,
        request: &Request<'_>,
        timeout: Duration,
    ) -> Result<OwnedEvent, DriverError> {
        let id = self.request(request, 0)?;
        self.run_until(timeout, |ev| match ev {
            Event::Response { id: i, .. } | Event::ServerError { id: i, .. } if *i == id => {
                Some(OwnedEvent::from_event(ev))
            }
            Event::TimedOut { id: i, .. } if *i == id => Some(OwnedEvent::from_event(ev)),
            _ => None,
        })
    }
}
