//! The `embedded-io-async` driver against a scripted in-memory server: negotiation, typed calls,
//! streamed answers, notifications queued during calls, server errors, transport errors and
//! end of stream, keep-alive after a caller's timeout, cancellation at every await, and reads
//! and writes of one byte at a time. (Against a real ElectrumX: `testkit/tests/driver.rs`.)

#![cfg(feature = "embedded-io-async")]

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use electrum_spv_core::chain::REGTEST;
use electrum_spv_core::driver::{Driver, Error, Notice, StreamItem};
use electrum_spv_core::hash::ScriptHash;
use electrum_spv_core::rpc::ProtocolVersion;
use electrum_spv_core::script::script_hash;
use electrum_spv_core::session::{
    Config, Event, FatalError, Request, Session, SessionStorage, response,
};
use electrum_spv_core::time::{Duration, Instant};
use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use serde_json::{Value, json};

type Small = Session<'static>;

// ----- a scripted server -----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MockError;

impl std::fmt::Display for MockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mock transport failed")
    }
}

impl std::error::Error for MockError {}

impl embedded_io_async::Error for MockError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

/// What the server answers to one request line: reply lines (each without its newline).
type Responder = Box<dyn FnMut(&Value) -> Vec<String>>;

struct Mock {
    /// Bytes the server has sent and the client not yet read.
    to_client: VecDeque<u8>,
    /// Bytes the client wrote, up to the last newline handled.
    from_client: Vec<u8>,
    /// Every complete request the client sent.
    requests: Vec<Value>,
    respond: Responder,
    /// Largest read and write, in bytes.
    chunk: usize,
    /// Each write and read first returns `Pending` once.
    yield_once: bool,
    /// Reads end the stream (0) when nothing is left instead of waiting.
    eof_when_empty: bool,
    fail_reads: bool,
    write_zero: bool,
}

impl Mock {
    fn new(respond: impl FnMut(&Value) -> Vec<String> + 'static) -> Mock {
        Mock {
            to_client: VecDeque::new(),
            from_client: Vec::new(),
            requests: Vec::new(),
            respond: Box::new(respond),
            chunk: usize::MAX,
            yield_once: false,
            eof_when_empty: false,
            fail_reads: false,
            write_zero: false,
        }
    }

    fn push_line(&mut self, line: &str) {
        self.to_client.extend(line.as_bytes());
        self.to_client.push_back(b'\n');
    }

    fn methods(&self) -> Vec<&str> {
        self.requests
            .iter()
            .map(|r| r["method"].as_str().unwrap())
            .collect()
    }
}

/// Returns `Pending` on its first poll (and wakes), `Ready` on the next.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

impl ErrorType for Mock {
    type Error = MockError;
}

impl Read for Mock {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, MockError> {
        if self.yield_once {
            yield_now().await;
        }
        if self.fail_reads {
            return Err(MockError);
        }
        if self.to_client.is_empty() {
            if self.eof_when_empty {
                return Ok(0);
            }
            // A silent server: wait forever.
            std::future::pending::<()>().await;
        }
        let n = buf.len().min(self.chunk).min(self.to_client.len());
        for b in &mut buf[..n] {
            *b = self.to_client.pop_front().unwrap();
        }
        Ok(n)
    }
}

impl Write for Mock {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, MockError> {
        if self.yield_once {
            yield_now().await;
        }
        if self.write_zero {
            return Ok(0);
        }
        let n = buf.len().min(self.chunk);
        self.from_client.extend_from_slice(&buf[..n]);
        while let Some(nl) = self.from_client.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.from_client.drain(..=nl).collect();
            let request: Value = serde_json::from_slice(&line).expect("requests are JSON lines");
            for reply in (self.respond)(&request) {
                self.push_line(&reply);
            }
            self.requests.push(request);
        }
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), MockError> {
        Ok(())
    }
}

// ----- replies -----

fn reply(request: &Value, result: Value) -> String {
    json!({"jsonrpc": "2.0", "id": request["id"], "result": result}).to_string()
}

fn header(n: u8) -> [u8; 80] {
    let mut h = [n; 80];
    h[0] = 0x20;
    h
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn header_notification(height: u32, n: u8) -> String {
    json!({"jsonrpc": "2.0", "method": "blockchain.headers.subscribe",
           "params": [{"height": height, "hex": hex(&header(n))}]})
    .to_string()
}

fn status_notification(sh: &ScriptHash, status: &str) -> String {
    json!({"jsonrpc": "2.0", "method": "blockchain.scripthash.subscribe",
           "params": [sh.to_string(), status]})
    .to_string()
}

const STATUS_A: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const STATUS_B: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";

/// An ElectrumX-like server at 1.4 on regtest; `extra` answers anything else (`None`: the
/// default answers below).
fn server(mut extra: impl FnMut(&Value) -> Option<Vec<String>> + 'static) -> Mock {
    Mock::new(move |r| {
        if let Some(lines) = extra(r) {
            return lines;
        }
        match r["method"].as_str().unwrap() {
            "server.version" => vec![reply(r, json!(["ElectrumX 2.0.0", "1.4"]))],
            "server.features" => vec![reply(
                r,
                json!({"genesis_hash": REGTEST.genesis_hash.to_string(), "hosts": {},
                       "protocol_min": "1.4", "protocol_max": "1.7"}),
            )],
            "server.ping" => vec![reply(r, Value::Null)],
            "blockchain.headers.subscribe" => {
                vec![reply(r, json!({"height": 7, "hex": hex(&header(7))}))]
            }
            "blockchain.block.header" => {
                let height = r["params"][0].as_u64().unwrap();
                vec![reply(r, json!(hex(&header(height as u8))))]
            }
            "blockchain.block.headers" => {
                let start = r["params"][0].as_u64().unwrap() as u8;
                let count = r["params"][1].as_u64().unwrap() as u8;
                let all: String = (start..start + count).map(|n| hex(&header(n))).collect();
                vec![reply(r, json!({"count": count, "hex": all, "max": 2016}))]
            }
            m => panic!("unexpected {m}"),
        }
    })
}

// ----- a minimal executor -----

/// Polls `fut` until it is ready; `None` if it is still waiting after many polls (a silent
/// server: nothing will wake it).
fn block_on<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..100_000 {
        if let Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
            return Some(r);
        }
    }
    None
}

/// Polls `fut` exactly `n` times (then drops it): a caller's timeout at an arbitrary await.
fn poll_times<F: Future>(fut: F, n: usize) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..n {
        if let Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
            return Some(r);
        }
    }
    None
}

fn clock(now: &Rc<Cell<Instant>>) -> impl Fn() -> Instant + use<> {
    let now = Rc::clone(now);
    move || now.get()
}

fn session(now: Instant) -> Box<Small> {
    Box::new(Small::new(
        SessionStorage::owned(1024, 512, 4),
        Config::new(&REGTEST),
        now,
    ))
}

// ----- tests -----

#[test]
fn negotiates_calls_and_streams() {
    let now = Rc::new(Cell::new(Instant::ZERO));
    let mut s = session(Instant::ZERO);
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 64]);
    let mut d = Driver::new(&mut s, server(|_| None), clock(&now), &mut rx, &mut tx);

    assert_eq!(block_on(d.negotiate()).unwrap(), Ok(ProtocolVersion::V1_4));
    assert_eq!(
        d.transport_mut().methods(),
        ["server.version", "server.features"]
    );
    // Again: at once, no I/O.
    assert_eq!(block_on(d.negotiate()).unwrap(), Ok(ProtocolVersion::V1_4));

    assert_eq!(block_on(d.headers_subscribe()).unwrap(), Ok((7, header(7))));
    assert_eq!(block_on(d.block_header(3)).unwrap(), Ok(header(3)));
    // Any decoder, through `call`.
    let raw = block_on(d.call(
        &Request::BlockHeader {
            height: 4,
            cp_height: 0,
        },
        |r| response::block_header(r).map(|h| h[1]),
    ))
    .unwrap();
    assert_eq!(raw, Ok(4));

    let mut got = Vec::new();
    let n = block_on(d.block_headers(2, 5, |height, h| got.push((height, *h)))).unwrap();
    assert_eq!(n, Ok(5));
    assert_eq!(
        got,
        (2..7).map(|i| (i, header(i as u8))).collect::<Vec<_>>()
    );
    assert_eq!(d.protocol_errors(), 0);
    assert_eq!(d.dropped_notices(), 0);
}

#[test]
fn one_byte_at_a_time_with_one_byte_buffers() {
    let now = Rc::new(Cell::new(Instant::ZERO));
    let mut s = session(Instant::ZERO);
    let (mut rx, mut tx) = ([0u8; 1], [0u8; 1]);
    let mut mock = server(|_| None);
    mock.chunk = 1;
    mock.yield_once = true;
    let mut d = Driver::new(&mut s, mock, clock(&now), &mut rx, &mut tx);
    assert_eq!(block_on(d.negotiate()).unwrap(), Ok(ProtocolVersion::V1_4));
    assert_eq!(block_on(d.headers_subscribe()).unwrap(), Ok((7, header(7))));
    let mut got = Vec::new();
    let n = block_on(d.block_headers(0, 3, |height, _| got.push(height))).unwrap();
    assert_eq!((n, got), (Ok(3), vec![0, 1, 2]));
}

#[test]
fn notifications_during_a_call_are_queued_coalesced_and_bounded() {
    let now = Rc::new(Cell::new(Instant::ZERO));
    let scripts: Vec<ScriptHash> = (0..6u8).map(|i| script_hash(&[0x51, i])).collect();
    let sh = scripts.clone();
    let mut s = session(Instant::ZERO);
    let (mut rx, mut tx) = ([0u8; 512], [0u8; 512]);
    let mock = server(move |r| {
        (r["method"] == "blockchain.block.header").then(|| {
            let mut lines = vec![
                header_notification(8, 8),
                status_notification(&sh[0], STATUS_A),
                header_notification(9, 9), // replaces the tip at 8, in place
                status_notification(&sh[0], STATUS_B), // replaces A
            ];
            lines.push(reply(r, json!(hex(&header(1)))));
            lines
        })
    });
    let mut d = Driver::new(&mut s, mock, clock(&now), &mut rx, &mut tx);
    block_on(d.negotiate()).unwrap().unwrap();
    assert_eq!(block_on(d.block_header(1)).unwrap(), Ok(header(1)));
    assert_eq!(
        block_on(d.next_notice()).unwrap(),
        Ok(Notice::Header {
            height: 9,
            header: header(9)
        })
    );
    let Ok(Notice::ScriptStatus {
        script_hash,
        status: Some(status),
    }) = block_on(d.next_notice()).unwrap()
    else {
        panic!("a status notice")
    };
    assert_eq!(
        (script_hash, status.to_string()),
        (scripts[0], STATUS_B.into())
    );
    assert_eq!(d.try_notice(), None);
    assert_eq!(d.dropped_notices(), 0);

    // Six scripts' statuses during one call: the queue keeps the newest four.
    for sh in &scripts {
        d.transport_mut()
            .push_line(&status_notification(sh, STATUS_A));
    }
    d.transport_mut().push_line(&header_notification(10, 10));
    assert_eq!(block_on(d.headers_subscribe()).unwrap(), Ok((7, header(7))));
    let mut kept = Vec::new();
    while let Some(n) = d.try_notice() {
        kept.push(n);
    }
    assert_eq!(d.dropped_notices(), 3);
    let kept_scripts: Vec<ScriptHash> = kept
        .iter()
        .filter_map(|n| match n {
            Notice::ScriptStatus { script_hash, .. } => Some(*script_hash),
            Notice::Header { .. } => None,
        })
        .collect();
    assert_eq!(kept.len(), 4);
    assert_eq!(kept_scripts, [scripts[3], scripts[4], scripts[5]]);
    assert!(matches!(kept[3], Notice::Header { height: 10, .. }));
}

#[test]
fn run_until_sees_queued_notices_first_then_every_event() {
    let now = Rc::new(Cell::new(Instant::ZERO));
    let mut s = session(Instant::ZERO);
    let (mut rx, mut tx) = ([0u8; 512], [0u8; 512]);
    let mock = server(|r| {
        (r["method"] == "server.ping")
            .then(|| vec![header_notification(8, 8), reply(r, Value::Null)])
    });
    let mut d = Driver::new(&mut s, mock, clock(&now), &mut rx, &mut tx);
    block_on(d.negotiate()).unwrap().unwrap();
    block_on(d.call(&Request::Ping { pong_len: 0 }, |_| Ok(())))
        .unwrap()
        .unwrap();
    // Pipelined: two requests queued, their answers collected by tag.
    let a = d
        .request(
            &Request::BlockHeader {
                height: 1,
                cp_height: 0,
            },
            11,
        )
        .unwrap();
    let b = d
        .request(
            &Request::BlockHeader {
                height: 2,
                cp_height: 0,
            },
            12,
        )
        .unwrap();
    let mut seen = Vec::new();
    let mut answered = 0;
    block_on(d.run_until(|e| {
        match e {
            Event::Notification(n) => {
                seen.push(format!("{n:?}").chars().take(6).collect::<String>())
            }
            Event::Response { id, tag, .. } => {
                seen.push(format!("{tag}"));
                assert!(*id == a || *id == b);
                answered += 1;
            }
            other => panic!("{other:?}"),
        }
        (answered == 2).then_some(())
    }))
    .unwrap()
    .unwrap();
    assert_eq!(seen, ["Header", "11", "12"]);
}

#[test]
fn server_errors_bad_results_and_refused_requests_are_typed() {
    let now = Rc::new(Cell::new(Instant::ZERO));
    let mut s = session(Instant::ZERO);
    let (mut rx, mut tx) = ([0u8; 512], [0u8; 512]);
    let mock = server(|r| {
        (r["method"] == "blockchain.block.header").then(|| match r["params"][0].as_u64() {
            Some(1) => vec![
                json!({"jsonrpc": "2.0", "id": r["id"],
                       "error": {"code": 1, "message": format!("height {} out of range{}", 1, "!".repeat(100))}})
                .to_string(),
            ],
            _ => vec![reply(r, json!("zz"))],
        })
    });
    let mut d = Driver::new(&mut s, mock, clock(&now), &mut rx, &mut tx);
    // Before negotiation the session refuses requests.
    assert!(matches!(
        block_on(d.headers_subscribe()).unwrap(),
        Err(Error::Request(_))
    ));
    block_on(d.negotiate()).unwrap().unwrap();
    let Err(Error::Server(e)) = block_on(d.block_header(1)).unwrap() else {
        panic!("a server error")
    };
    assert_eq!(e.code(), Some(1));
    assert_eq!(e.message().len(), 64, "cut to SERVER_MESSAGE");
    assert!(e.message().starts_with(b"height 1 out of range!!"));
    assert!(e.to_string().starts_with("server error 1: height 1"));
    assert_eq!(block_on(d.block_header(2)).unwrap(), Err(Error::BadResult));
    // Not available at 1.4; not streamable.
    assert!(matches!(
        block_on(d.call(&Request::MempoolInfo, |_| Ok(()))).unwrap(),
        Err(Error::Request(_))
    ));
    assert!(matches!(
        block_on(d.call_streamed(&Request::HeadersSubscribe, |_| {})).unwrap(),
        Err(Error::Request(_))
    ));
    // The session is still fine.
    assert_eq!(block_on(d.headers_subscribe()).unwrap(), Ok((7, header(7))));
}

#[test]
fn wrong_genesis_fails_the_session() {
    let now = Rc::new(Cell::new(Instant::ZERO));
    let mut s = session(Instant::ZERO);
    let (mut rx, mut tx) = ([0u8; 512], [0u8; 512]);
    let mock = server(|r| {
        (r["method"] == "server.features").then(|| {
            vec![reply(
                r,
                json!({"genesis_hash": "00".repeat(32), "hosts": {}}),
            )]
        })
    });
    let mut d = Driver::new(&mut s, mock, clock(&now), &mut rx, &mut tx);
    assert_eq!(
        block_on(d.negotiate()).unwrap(),
        Err(Error::Session(FatalError::WrongGenesis))
    );
    // And stays failed, also for requests.
    assert_eq!(
        block_on(d.negotiate()).unwrap(),
        Err(Error::Session(FatalError::WrongGenesis))
    );
    assert_eq!(
        block_on(d.headers_subscribe()).unwrap(),
        Err(Error::Session(FatalError::WrongGenesis))
    );
}

#[test]
fn transport_failures_end_of_stream_and_empty_buffers() {
    let now = Rc::new(Cell::new(Instant::ZERO));
    let (mut rx, mut tx) = ([0u8; 512], [0u8; 512]);

    let mut s = session(Instant::ZERO);
    let mut mock = server(|_| Some(Vec::new()));
    mock.eof_when_empty = true;
    let mut d = Driver::new(&mut s, mock, clock(&now), &mut rx, &mut tx);
    assert_eq!(block_on(d.negotiate()).unwrap(), Err(Error::Closed));

    let mut s = session(Instant::ZERO);
    let mut mock = server(|_| None);
    mock.fail_reads = true;
    let mut d = Driver::new(&mut s, mock, clock(&now), &mut rx, &mut tx);
    let e = block_on(d.negotiate()).unwrap().unwrap_err();
    assert_eq!(e, Error::Transport(MockError));
    assert_eq!(e.to_string(), "transport: mock transport failed");
    assert!(std::error::Error::source(&e).is_some());

    let mut s = session(Instant::ZERO);
    let mut mock = server(|_| None);
    mock.write_zero = true;
    let mut d = Driver::new(&mut s, mock, clock(&now), &mut rx, &mut tx);
    assert_eq!(block_on(d.negotiate()).unwrap(), Err(Error::Closed));

    let mut s = session(Instant::ZERO);
    let mut empty = [0u8; 0];
    let mut d = Driver::new(&mut s, server(|_| None), clock(&now), &mut empty, &mut tx);
    assert_eq!(block_on(d.negotiate()).unwrap(), Err(Error::EmptyBuffer));
}

#[test]
fn a_silent_server_waits_and_deadlines_pass_when_the_caller_wakes_the_driver() {
    let now = Rc::new(Cell::new(Instant::ZERO));
    let mut s = session(Instant::ZERO);
    let (mut rx, mut tx) = ([0u8; 512], [0u8; 512]);
    let silent = Rc::new(Cell::new(false));
    let quiet = Rc::clone(&silent);
    let mock = server(move |_| quiet.get().then(Vec::new));
    let mut d = Driver::new(&mut s, mock, clock(&now), &mut rx, &mut tx);
    block_on(d.negotiate()).unwrap().unwrap();
    let ping_at = d.poll_timeout().unwrap();
    assert_eq!(ping_at, Instant::ZERO + Config::new(&REGTEST).ping_interval);
    assert_eq!(d.until_timeout(), Some(ping_at - Instant::ZERO));

    // A call the server never answers waits (the caller's timeout drops it)...
    silent.set(true);
    assert_eq!(block_on(d.block_header(1)), None);
    // ... and its request is still in flight, with a deadline.
    assert_eq!(d.session().in_flight(), 1);
    let deadline = Instant::ZERO + Config::new(&REGTEST).request_timeout;
    assert_eq!(d.poll_timeout(), Some(deadline));

    // The caller wakes the driver after its deadline: the stale request expires and a call
    // made now gets its own answer.
    now.set(deadline);
    assert_eq!(d.until_timeout(), Some(Duration::ZERO));
    silent.set(false);
    assert_eq!(block_on(d.block_header(2)).unwrap(), Ok(header(2)));
    assert_eq!(d.session().in_flight(), 0);

    // Waiting for notices on a quiet connection: at the keep-alive time, calling again sends
    // the ping.
    let pings = |d: &mut Driver<'_, '_, Mock, _>| {
        d.transport_mut()
            .methods()
            .iter()
            .filter(|m| **m == "server.ping")
            .count()
    };
    assert_eq!(block_on(d.next_notice()), None);
    assert_eq!(pings(&mut d), 0);
    now.set(now.get() + d.until_timeout().unwrap());
    assert_eq!(block_on(d.next_notice()), None);
    assert_eq!(pings(&mut d), 1);
    // A notice then arrives and is delivered.
    d.transport_mut().push_line(&header_notification(8, 8));
    assert!(matches!(
        block_on(d.next_notice()).unwrap(),
        Ok(Notice::Header { height: 8, .. })
    ));
}

#[test]
fn a_timed_out_call_reports_timed_out() {
    let now = Rc::new(Cell::new(Instant::ZERO));
    let mut s = session(Instant::ZERO);
    let (mut rx, mut tx) = ([0u8; 512], [0u8; 512]);
    // The server never answers `blockchain.block.header`, but keeps sending notifications.
    let mock = server(|r| (r["method"] == "blockchain.block.header").then(Vec::new));
    let mut d = Driver::new(&mut s, mock, clock(&now), &mut rx, &mut tx);
    block_on(d.negotiate()).unwrap().unwrap();
    let deadline = Instant::ZERO + Config::new(&REGTEST).request_timeout;
    assert_eq!(block_on(d.block_header(1)), None, "no answer: waits");
    // Time passes, the caller's timeout dropped the call. The next call expires the stale
    // request first, so a streamed request (which needs an empty pipeline) goes out at once.
    now.set(deadline);
    let n = block_on(d.call_streamed(
        &Request::BlockHeaders {
            start_height: 0,
            count: 1,
            cp_height: 0,
        },
        |_| {},
    ));
    assert_eq!(n.unwrap(), Ok(1));

    // A call that is still running when its deadline passes ends with TimedOut.
    let mut s = session(Instant::ZERO);
    let now = Rc::new(Cell::new(Instant::ZERO));
    let (mut rx, mut tx) = ([0u8; 512], [0u8; 512]);
    let clock_now = Rc::clone(&now);
    let mock = server(move |r| {
        (r["method"] == "blockchain.block.header").then(|| {
            // Answer with notifications only, arriving after the deadline.
            clock_now.set(deadline + Duration::from_millis(1));
            vec![header_notification(8, 8)]
        })
    });
    let mut d = Driver::new(&mut s, mock, clock(&now), &mut rx, &mut tx);
    block_on(d.negotiate()).unwrap().unwrap();
    assert_eq!(block_on(d.block_header(1)).unwrap(), Err(Error::TimedOut));
    assert!(matches!(
        d.try_notice(),
        Some(Notice::Header { height: 8, .. })
    ));
}

#[test]
fn dropping_a_call_at_any_await_loses_no_byte() {
    // Cancel the first call after k polls, for every k, then make more calls: every line the
    // server receives is whole, and the later calls get their own answers.
    for k in 0..40 {
        let now = Rc::new(Cell::new(Instant::ZERO));
        let mut s = session(Instant::ZERO);
        let (mut rx, mut tx) = ([0u8; 7], [0u8; 5]);
        let mut mock = server(|_| None);
        mock.chunk = 3;
        mock.yield_once = true;
        let mut d = Driver::new(&mut s, mock, clock(&now), &mut rx, &mut tx);
        block_on(d.negotiate()).unwrap().unwrap();
        let first = poll_times(d.block_header(1), k);
        if let Some(r) = first {
            assert_eq!(r, Ok(header(1)));
        }
        assert_eq!(block_on(d.block_header(2)).unwrap(), Ok(header(2)), "k={k}");
        let mut got = Vec::new();
        let n = block_on(d.block_headers(3, 2, |h, _| got.push(h))).unwrap();
        assert_eq!((n, got), (Ok(2), vec![3, 4]), "k={k}");
        assert_eq!(d.protocol_errors(), 0, "k={k}");
        let methods = d.transport_mut().methods();
        // A future never polled never ran: it queued nothing.
        let expected = if k == 0 { 4 } else { 5 };
        assert_eq!(methods.len(), expected, "k={k}: {methods:?}");
    }
}

#[test]
fn streamed_history_with_a_notification_in_between() {
    let now = Rc::new(Cell::new(Instant::ZERO));
    let mut s = session(Instant::ZERO);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let sh = script_hash(&[0x51]);
    let rows = json!([
        {"tx_hash": "11".repeat(32), "height": 5},
        {"tx_hash": "22".repeat(32), "height": 0, "fee": 300},
    ]);
    let mock = server(move |r| {
        (r["method"] == "blockchain.scripthash.get_history").then(|| {
            assert_eq!(r["params"][0], sh.to_string());
            vec![status_notification(&sh, STATUS_A), reply(r, rows.clone())]
        })
    });
    let mut d = Driver::new(&mut s, mock, clock(&now), &mut rx, &mut tx);
    block_on(d.negotiate()).unwrap().unwrap();
    let mut items = Vec::new();
    let n = block_on(d.script_history(&[0x51], |i| items.push(i))).unwrap();
    assert_eq!(n, Ok(2));
    assert_eq!(items[0].height.to_i64(), 5);
    assert_eq!((items[1].height.to_i64(), items[1].fee), (0, Some(300)));
    assert!(matches!(d.try_notice(), Some(Notice::ScriptStatus { .. })));
    // `call_streamed` hands out the same items.
    let mut kinds = Vec::new();
    block_on(d.call_streamed(&Request::ScriptGetHistory(&[0x51]), |i| {
        kinds.push(matches!(i, StreamItem::History(_)))
    }))
    .unwrap()
    .unwrap();
    assert_eq!(kinds, [true, true]);
}
