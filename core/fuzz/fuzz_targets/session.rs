//! Fuzz target `session`: a `Session` negotiated with canned replies, then fed arbitrary
//! server bytes.
//!
//! The first input byte picks the negotiated version (1.4, 1.6 or 1.7) and where the rest is
//! split into two reads. The reads are fed the documented way (drain `poll_event` after each
//! line); every few events a request is issued (every other header chunk or history request
//! streamed item by item), and `handle_timeout` is called with a clock that
//! advances by amounts taken from the input, so deadlines and keep-alive pings fire. Every
//! `Response` is also run through its typed decoder.
//!
//! Checked, beyond "no panic": `handle_input` always makes progress (fed after every event was
//! drained, it consumes at least a byte) and no event is ever dropped; stream items belong to an open streamed request; everything
//! `poll_transmit` gives is whole newline-terminated lines, each a JSON-RPC 2.0 request with an
//! integer id, a method and array params; every id the session reports as answered, failed or
//! timed out was issued and is reported at most once; tags come back as given; at most
//! `PENDING` requests are in flight; after `Failed`, requests return `Closed`.

#![no_main]

use std::collections::BTreeMap;

use electrum_spv_core::chain::REGTEST;
use electrum_spv_core::hash::Txid;
use electrum_spv_core::json::{Id, Message, scan};
use electrum_spv_core::rpc::{Method, ProtocolVersion, VersionRange};
use electrum_spv_core::session::{
    Config, Event, FeeMode, ProtocolError, Request, RequestError, Session, SessionStorage, response,
};
use electrum_spv_core::time::{Duration, Instant};
use libfuzzer_sys::fuzz_target;

const LINE: usize = 2048;
const OUT: usize = 1024;
const PENDING: usize = 4;
type S = Session<'static>;

const SPK: [u8; 22] = [
    0x00, 0x14, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
];
const RAW_TX: [u8; 60] = [0x02; 60];

fn request(n: u32, v: ProtocolVersion) -> Request<'static> {
    let txid = Txid::from_byte_array([n as u8; 32]);
    match n % 12 {
        0 => Request::HeadersSubscribe,
        1 => Request::BlockHeader {
            height: n,
            cp_height: n * 2,
        },
        2 => Request::BlockHeaders {
            start_height: n,
            count: 2016,
            cp_height: 0,
        },
        3 => Request::ScriptSubscribe(&SPK),
        4 => Request::ScriptGetHistory(&SPK),
        5 => Request::ScriptListUnspent(&SPK),
        6 => Request::TransactionGet(txid),
        7 => Request::TransactionGetMerkle { txid, height: n },
        8 => Request::Ping { pong_len: n },
        9 => Request::EstimateFee {
            blocks: n,
            mode: Some(FeeMode::Economical),
        },
        10 if v >= ProtocolVersion::V1_6 => Request::MempoolInfo,
        10 => Request::RelayFee,
        _ => Request::Broadcast(&RAW_TX),
    }
}

/// Runs the typed decoder of `method` over a result; only "no panic" is checked.
fn decode(method: Method, result: &[u8]) {
    match method {
        Method::HeadersSubscribe => {
            let _ = response::headers_subscribe(result);
        }
        Method::BlockHeader => {
            let _ = response::block_header(result);
            if let Ok(p) = response::block_header_proof(result) {
                let _ = p.branch.iter().count();
            }
        }
        Method::BlockHeaders => {
            if let Ok(h) = response::block_headers(result) {
                let _ = h.headers().count();
            }
        }
        Method::ScriptSubscribe => {
            let _ = response::subscribe_status(result);
        }
        Method::ScriptGetHistory => {
            if let Ok(items) = response::history(result) {
                let _ = items.count();
            }
        }
        Method::ScriptListUnspent => {
            if let Ok(items) = response::utxos(result) {
                let _ = items.count();
            }
        }
        Method::TransactionGet => {
            let _ = response::transaction_hex(result);
        }
        Method::TransactionGetMerkle => {
            if let Ok(p) = response::merkle_proof(result) {
                let _ = p.branch.iter().count();
            }
        }
        Method::TransactionBroadcast => {
            let _ = response::broadcast_txid(result);
        }
        Method::EstimateFee | Method::RelayFee => {
            let _ = response::fee_rate(result);
        }
        _ => {
            let _ = response::balance(result);
            let _ = response::features_genesis(result);
            let _ = response::version_reply(result);
        }
    }
}

struct Run {
    s: Box<S>,
    version: ProtocolVersion,
    now: Instant,
    /// Requests issued and not yet reported: id -> (tag, method).
    open: BTreeMap<u64, (u32, Method)>,
    issued: u32,
    events: u32,
    failed: bool,
}

impl Run {
    /// Every transmitted byte: whole lines of JSON-RPC 2.0 requests with our ids.
    fn transmit(&mut self) {
        let mut buf = [0u8; OUT];
        let n = self.s.poll_transmit(&mut buf);
        assert_eq!(
            self.s.poll_transmit(&mut buf[n..]),
            0,
            "one call drains OUT"
        );
        let out = &buf[..n];
        if out.is_empty() {
            return;
        }
        assert_eq!(
            out.last(),
            Some(&b'\n'),
            "{:?}",
            String::from_utf8_lossy(out)
        );
        for line in out[..n - 1].split(|&b| b == b'\n') {
            let Ok(Message::Single(env)) = scan(line) else {
                panic!("not one JSON object: {:?}", String::from_utf8_lossy(line));
            };
            assert!(matches!(env.id, Some(Id::Num(_))), "{env:?}");
            assert!(
                env.method.is_some() && env.jsonrpc == Some(&b"2.0"[..]),
                "{env:?}"
            );
            assert!(
                env.params.is_some_and(|p| p.first() == Some(&b'[')),
                "{env:?}"
            );
            assert!(env.result.is_none() && env.error.is_none());
        }
    }

    fn close(&mut self, id: u64, tag: Option<u32>, method: Option<Method>) {
        if let Some((t, m)) = self.open.remove(&id) {
            assert!(tag.is_none_or(|tag| tag == t));
            assert!(method.is_none_or(|method| method == m));
        } else {
            // Only the session's own requests (negotiation, pings) are not ours; they are
            // never reported with a tag.
            assert!(tag.is_none(), "id {id} reported twice or never issued");
        }
    }

    fn drain(&mut self) {
        while let Some(ev) = self.s.poll_event() {
            let (id, tag, method) = match ev {
                Event::Response {
                    id,
                    tag,
                    method,
                    result,
                } => {
                    decode(method, result);
                    (Some(id), Some(tag), Some(method))
                }
                Event::ServerError {
                    id, tag, method, ..
                }
                | Event::TimedOut { id, tag, method } => (Some(id), Some(tag), Some(method)),
                Event::ProtocolError(
                    ProtocolError::ResultAndErrorMismatch { id }
                    | ProtocolError::StreamFailed { id, .. },
                ) => (Some(id), None, None),
                Event::StreamHeader { id, tag, .. } | Event::StreamHistoryItem { id, tag, .. } => {
                    assert!(
                        self.open.get(&id).is_some_and(|(t, _)| *t == tag),
                        "stream item for {id} (tag {tag}), which is not open"
                    );
                    (None, None, None)
                }
                Event::StreamEnd {
                    id, tag, method, ..
                } => (Some(id), Some(tag), Some(method)),
                Event::Failed(_) => {
                    self.failed = true;
                    (None, None, None)
                }
                _ => (None, None, None),
            };
            if let Some(id) = id {
                self.close(id, tag, method);
            }
            self.events += 1;
            if self.events.is_multiple_of(3) {
                self.issue();
            }
        }
        assert!(self.s.in_flight() <= PENDING);
        if self.s.failure().is_some() {
            self.failed = true;
        }
    }

    fn issue(&mut self) {
        let r = request(self.issued, self.version);
        let tag = self.issued;
        self.issued += 1;
        let streamed = tag % 2 == 1
            && matches!(
                r,
                Request::BlockHeaders { cp_height: 0, .. } | Request::ScriptGetHistory(_)
            );
        let sent = if streamed {
            self.s.request_streamed(self.now, &r, tag)
        } else {
            self.s.request(self.now, &r, tag)
        };
        match sent {
            Ok(id) => {
                assert!(!self.failed);
                assert!(
                    self.open.insert(id, (tag, r.method())).is_none(),
                    "id reused"
                );
            }
            Err(RequestError::Closed) => assert!(self.failed || self.s.failure().is_some()),
            Err(
                RequestError::TooManyInFlight
                | RequestError::Busy
                | RequestError::OutputFull(_)
                | RequestError::NotAvailable { .. },
            ) => assert!(!self.failed),
            Err(e) => panic!("{e:?} for {r:?}"),
        }
        self.transmit();
    }

    /// Feeds `data`; with `advance`, the clock moves by an amount the input picks after each
    /// step, so deadlines and pings fire.
    fn feed(&mut self, mut data: &[u8], advance: bool) {
        while !data.is_empty() {
            let n = self.s.handle_input(self.now, data);
            assert!(
                n <= data.len(),
                "handle_input consumed {n} of {}",
                data.len()
            );
            if advance {
                self.now += Duration::from_millis(u64::from(data[0]) * 500);
            }
            data = &data[n..];
            self.drain();
            assert!(n > 0, "handle_input consumed nothing, its events drained");
            assert_eq!(self.s.dropped_events(), 0, "an event was dropped");
            self.transmit();
            self.s.handle_timeout(self.now);
            self.drain();
            self.transmit();
            if self.s.poll_timeout().is_some() {
                assert!(!self.failed, "a failed session has nothing to wait for");
            }
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&pick, data)) = input.split_first() else {
        return;
    };
    let version = [
        ProtocolVersion::V1_4,
        ProtocolVersion::V1_6,
        ProtocolVersion::V1_7,
    ][usize::from(pick % 3)];
    let config = Config {
        versions: VersionRange::WITH_1_7,
        ..Config::new(&REGTEST)
    };
    let mut run = Run {
        s: Box::new(S::new(
            SessionStorage::owned(LINE, OUT, PENDING),
            config,
            Instant::ZERO,
        )),
        version,
        now: Instant::ZERO,
        open: BTreeMap::new(),
        issued: 0,
        events: 0,
        failed: false,
    };
    run.transmit();
    let negotiation = format!(
        "{{\"jsonrpc\":\"2.0\",\"result\":[\"ElectrumX 2.0.0\",\"{version}\"],\"id\":0}}\n\
         {{\"jsonrpc\":\"2.0\",\"result\":{{\"genesis_hash\":\"{}\"}},\"id\":1}}\n",
        REGTEST.genesis_hash
    );
    run.feed(negotiation.as_bytes(), false);
    assert_eq!(run.s.version(), Some(version));
    let split = usize::from(pick) * data.len() / 255;
    let (a, b) = data.split_at(split);
    run.feed(a, true);
    run.feed(b, true);
    // A last request after the hostile input: accepted unless the session failed.
    run.issue();
});
