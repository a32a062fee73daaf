//! Hostile server input through the `Session`, offline: every case gives its typed event or
//! error, nothing panics, and afterwards a normal request/response round trip still works
//! (or, after a fatal error, requests return `Closed`). Also the typed decoders on forged
//! results, and the documented size of the session.
//!
//! Expected values are derived from the input: ids come from `Session::request` (the pending
//! table hands out 0, 1, 2, … — `server.version` is 0 and `server.features` 1), lengths from
//! the bytes fed, versions from the replies.

use electrum_spv_core::chain::{MAINNET, REGTEST};
use electrum_spv_core::rpc::{Method, ProtocolVersion, VersionRange};
use electrum_spv_core::session::JsonErrorKind;
use electrum_spv_core::session::{
    Config, DEFAULT_PING_INTERVAL, DEFAULT_REQUEST_TIMEOUT, Event, FatalError,
    MAX_HEADERS_PER_REQUEST, MAX_QUEUED_EVENTS, Notification, PendingSlot, ProtocolError, Request,
    RequestError, SESSION_OVERHEAD, Session, SessionStorage, response,
};
use serde_json::Value;

type Small = Session<'static>;

/// A session over heap buffers of `L` bytes of line, `O` bytes of outgoing queue, `P` slots.
fn session<const L: usize, const O: usize, const P: usize>(
    config: Config,
    now: electrum_spv_core::time::Instant,
) -> Small {
    Session::new(SessionStorage::owned(L, O, P), config, now)
}

const TIMEOUT: u64 = DEFAULT_REQUEST_TIMEOUT.millis();
const PING: u64 = DEFAULT_PING_INTERVAL.millis();

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// An event as a string: results and messages as text, JSON errors by kind only.
fn norm(e: &Event<'_>) -> String {
    match *e {
        Event::Response {
            id,
            method,
            tag,
            result,
        } => format!("Response {id} {method:?} {tag} {}", text(result)),
        Event::ServerError {
            id,
            method,
            tag,
            error,
        } => format!(
            "ServerError {id} {method:?} {tag} {:?} {}",
            error.code,
            text(error.message)
        ),
        Event::ProtocolError(ProtocolError::Json(j)) => format!("Json({:?})", j.kind),
        _ => format!("{e:?}"),
    }
}

fn json(kind: JsonErrorKind) -> String {
    format!("Json({kind:?})")
}

fn pe(e: ProtocolError) -> String {
    norm(&Event::ProtocolError(e))
}

fn failed(e: FatalError) -> String {
    norm(&Event::Failed(e))
}

fn response(id: u64, method: Method, tag: u32, result: &str) -> String {
    format!("Response {id} {method:?} {tag} {result}")
}

/// Feeds `bytes` the documented way (drain after each line); returns the events.
fn feed(s: &mut Session<'_>, now: u64, bytes: &[u8]) -> Vec<String> {
    let mut events = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = s.handle_input(at(now), rest);
        assert!(n > 0 && n <= rest.len(), "handle_input consumed {n}");
        rest = &rest[n..];
        while let Some(e) = s.poll_event() {
            events.push(norm(&e));
        }
    }
    events
}

fn drain(s: &mut Session<'_>) -> Vec<String> {
    let mut events = Vec::new();
    while let Some(e) = s.poll_event() {
        events.push(norm(&e));
    }
    events
}

fn transmit(s: &mut Session<'_>) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        let n = s.poll_transmit(&mut buf);
        if n == 0 {
            return String::from_utf8(out).expect("UTF-8 output");
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// The JSON messages in transmitted text, one per line.
fn sent(out: &str) -> Vec<Value> {
    assert!(out.is_empty() || out.ends_with('\n'), "{out:?}");
    out.lines()
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect()
}

fn ok_reply(id: u64, result: &str) -> String {
    format!("{{\"jsonrpc\":\"2.0\",\"result\":{result},\"id\":{id}}}\n")
}

fn version_reply(v: &str) -> String {
    ok_reply(0, &format!("[\"ElectrumX 2.0.0\",\"{v}\"]"))
}

fn features_reply(genesis: &str) -> String {
    ok_reply(
        1,
        &format!(
            "{{\"hosts\":{{}},\"pruning\":null,\"server_version\":\"ElectrumX 2.0.0\",\
             \"genesis_hash\":\"{genesis}\",\"protocol_min\":\"1.4\",\"protocol_max\":\"1.7.0\"}}"
        ),
    )
}

fn regtest_genesis() -> String {
    REGTEST.genesis_hash.to_string()
}

fn config(versions: VersionRange) -> Config {
    Config {
        versions,
        ..Config::new(&REGTEST)
    }
}

fn range(min: ProtocolVersion, max: ProtocolVersion) -> VersionRange {
    VersionRange { min, max }
}

/// A session negotiated at `v` (the range is exactly `v`) at time `now`.
fn ready_at<const L: usize, const O: usize, const P: usize>(
    v: ProtocolVersion,
    now: u64,
) -> Box<Session<'static>> {
    let mut s = Box::new(session::<L, O, P>(config(range(v, v)), at(now)));
    let out = sent(&transmit(&mut s));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["method"], "server.version");
    assert_eq!(out[0]["id"], 0);
    assert_eq!(
        feed(&mut s, now, version_reply(&v.to_string()).as_bytes()),
        [] as [String; 0]
    );
    let out = sent(&transmit(&mut s));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["method"], "server.features");
    assert_eq!(out[0]["id"], 1);
    assert_eq!(
        feed(&mut s, now, features_reply(&regtest_genesis()).as_bytes()),
        [norm(&Event::Ready { version: v })]
    );
    assert_eq!(s.version(), Some(v));
    s
}

fn ready() -> Box<Small> {
    ready_at::<1024, 1024, 4>(ProtocolVersion::V1_4, 0)
}

/// A normal request/response still works: a ping goes out with a fresh id and its reply comes
/// back as a `Response` with the caller's tag.
fn round_trip(s: &mut Session<'_>, now: u64) {
    assert!(s.failure().is_none());
    let before = s.in_flight();
    let _ = transmit(s);
    let id = s
        .request(at(now), &Request::HeadersSubscribe, 4242)
        .expect("request accepted");
    let out = sent(&transmit(s));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["method"], "blockchain.headers.subscribe");
    assert_eq!(out[0]["id"].as_u64(), Some(id));
    assert_eq!(s.in_flight(), before + 1);
    let result = r#"{"hex":"00","height":7}"#;
    assert_eq!(
        feed(s, now, ok_reply(id, result).as_bytes()),
        [response(id, Method::HeadersSubscribe, 4242, result)]
    );
    assert_eq!(s.in_flight(), before);
}

/// After a fatal error: requests are refused as `Closed`, nothing is sent, input is swallowed.
fn closed(s: &mut Session<'_>, why: FatalError) {
    assert_eq!(s.failure(), Some(why));
    assert!(!s.is_ready() && s.version().is_none());
    assert_eq!(
        s.request(at(0), &Request::HeadersSubscribe, 1),
        Err(RequestError::Closed)
    );
    assert_eq!(transmit(s), "");
    assert_eq!(s.in_flight(), 0);
    let junk = ok_reply(0, "1");
    assert_eq!(s.handle_input(at(0), junk.as_bytes()), junk.len());
    assert_eq!(drain(s), [] as [String; 0]);
    s.handle_timeout(at(u64::MAX));
    assert_eq!(drain(s), [] as [String; 0]);
    assert_eq!(s.poll_timeout(), None);
}

fn ping_request(s: &mut Small, tag: u32) -> u64 {
    let id = s
        .request(at(0), &Request::Ping { pong_len: 0 }, tag)
        .unwrap();
    let _ = transmit(s);
    id
}

// ----- framing and JSON ------------------------------------------------------------------

#[test]
fn oversize_line_is_dropped_and_the_next_line_works() {
    let mut s = ready();
    let id = ping_request(&mut s, 1);
    let long = "x".repeat(2000);
    let input = format!("{long}\n{}", ok_reply(id, "null"));
    let want = [
        pe(ProtocolError::OversizeLine { len: long.len() }),
        response(id, Method::ServerPing, 1, "null"),
    ];
    assert_eq!(feed(&mut s, 0, input.as_bytes()), want);
    round_trip(&mut s, 0);

    // The same, arriving in 100-byte reads.
    let id = ping_request(&mut s, 2);
    let input = format!("{long}\n{}", ok_reply(id, "null"));
    let mut events = Vec::new();
    for piece in input.as_bytes().chunks(100) {
        events.extend(feed(&mut s, 0, piece));
    }
    assert_eq!(
        events,
        [
            pe(ProtocolError::OversizeLine { len: long.len() }),
            response(id, Method::ServerPing, 2, "null"),
        ]
    );

    // A line of exactly LINE bytes is not oversize; one more byte is.
    let id = ping_request(&mut s, 3);
    let reply = ok_reply(id, "null");
    let padded = format!(
        "{}{}}}\n",
        &reply[..reply.len() - 2],
        " ".repeat(1024 - (reply.len() - 1))
    );
    assert_eq!(padded.len(), 1025);
    assert_eq!(
        feed(&mut s, 0, padded.as_bytes()),
        [response(id, Method::ServerPing, 3, "null")]
    );
    let id = ping_request(&mut s, 4);
    let reply = ok_reply(id, "null");
    let padded = format!(
        "{}{}}}\n",
        &reply[..reply.len() - 2],
        " ".repeat(1025 - (reply.len() - 1))
    );
    // Its id is read from the line's end: the request ends at once, not at its deadline.
    assert_eq!(
        feed(&mut s, 0, padded.as_bytes()),
        [norm(&Event::ResponseTooLarge {
            id,
            method: Method::ServerPing,
            tag: 4,
            len: 1025
        })]
    );
    assert_eq!(s.in_flight(), 0);
    // A reply that is not JSON is lost with its line: its request stays in flight until its
    // deadline.
    let id = ping_request(&mut s, 5);
    let input = format!("{{{long}\n");
    assert_eq!(
        feed(&mut s, 0, input.as_bytes()),
        [pe(ProtocolError::OversizeLine {
            len: long.len() + 1
        })]
    );
    assert_eq!(s.in_flight(), 1);
    s.handle_timeout(at(TIMEOUT));
    assert_eq!(
        drain(&mut s),
        [norm(&Event::TimedOut {
            id,
            method: Method::ServerPing,
            tag: 5
        })]
    );
    round_trip(&mut s, TIMEOUT);
}

/// A history of `rows` rows, as one line with `id` where a server writes it.
fn big_history(id: u64, rows: usize, id_first: bool, padding: usize) -> String {
    let mut rows_json = Vec::new();
    for i in 0..rows {
        rows_json.push(format!(
            "{{\"tx_hash\": \"{:064x}\", \"height\": {}}}",
            i + 1,
            i / 4 + 1
        ));
    }
    let rows_json = rows_json.join(", ");
    let pad = " ".repeat(padding);
    if id_first {
        format!("{{\"id\": {id}, \"jsonrpc\": \"2.0\", \"result\": [{rows_json}]{pad}}}\n")
    } else {
        format!("{{\"jsonrpc\": \"2.0\", \"result\": [{rows_json}], \"id\": {id}{pad}}}\n")
    }
}

#[test]
fn oversize_response_ends_the_request_its_id_names() {
    let mut s = ready();
    let script = [0x51u8];
    let history = |s: &mut Small, tag| {
        let id = s
            .request(at(0), &Request::ScriptGetHistory(&script), tag)
            .expect("sent");
        let _ = transmit(s);
        id
    };
    let too_large = |id, tag, len| {
        norm(&Event::ResponseTooLarge {
            id,
            method: Method::ScriptGetHistory,
            tag,
            len,
        })
    };
    // Three in flight; answers arrive in another order, ids at either end, ElectrumX's
    // padding after the id, in reads of every size.
    let (a, b, c) = (history(&mut s, 1), history(&mut s, 2), history(&mut s, 3));
    let first = big_history(b, 300, false, 3000);
    let second = big_history(a, 300, true, 0);
    let third = ok_reply(c, "[]");
    let input = format!("{first}{second}{third}");
    let want = [
        too_large(b, 2, first.len() - 1),
        too_large(a, 1, second.len() - 1),
        response(c, Method::ScriptGetHistory, 3, "[]"),
    ];
    assert_eq!(feed(&mut s, 0, input.as_bytes()), want);
    assert_eq!(s.in_flight(), 0);
    for size in [1, 7, 100, 4096] {
        let (a, b, c) = (history(&mut s, 1), history(&mut s, 2), history(&mut s, 3));
        let first = big_history(b, 300, false, 3000);
        let second = big_history(a, 300, true, 0);
        let input = format!("{first}{second}{}", ok_reply(c, "[]"));
        let mut events = Vec::new();
        for piece in input.as_bytes().chunks(size) {
            events.extend(feed(&mut s, 0, piece));
        }
        let want = [
            too_large(b, 2, first.len() - 1),
            too_large(a, 1, second.len() - 1),
            response(c, Method::ScriptGetHistory, 3, "[]"),
        ];
        assert_eq!(events, want, "reads of {size}");
    }
    // An id not in flight (answered already, or never sent): the line is only oversize.
    let line = big_history(a, 300, false, 0);
    assert_eq!(
        feed(&mut s, 0, line.as_bytes()),
        [pe(ProtocolError::OversizeLine {
            len: line.len() - 1
        })]
    );
    let line = big_history(999, 300, true, 0);
    assert_eq!(
        feed(&mut s, 0, line.as_bytes()),
        [pe(ProtocolError::OversizeLine {
            len: line.len() - 1
        })]
    );
    // A notification that is too long names no request even with an id-like member.
    let id = history(&mut s, 7);
    let note = format!(
        "{{\"jsonrpc\":\"2.0\",\"method\":\"blockchain.headers.subscribe\",\"params\":[\"{}\"],\"id\":{id}}}\n",
        "00".repeat(1000)
    );
    assert_eq!(
        feed(&mut s, 0, note.as_bytes()),
        [pe(ProtocolError::OversizeLine {
            len: note.len() - 1
        })]
    );
    assert_eq!(s.in_flight(), 1);
    round_trip(&mut s, 0);
}

#[test]
fn oversize_negotiation_reply_fails_at_once() {
    let mut s = Box::new(session::<1024, 1024, 4>(
        config(VersionRange::DEFAULT),
        at(0),
    ));
    let _ = transmit(&mut s);
    let long = format!(
        "{{\"jsonrpc\":\"2.0\",\"result\":[\"{}\",\"1.4\"],\"id\":0}}\n",
        "x".repeat(2000)
    );
    assert_eq!(
        feed(&mut s, 0, long.as_bytes()),
        [failed(FatalError::BadVersionReply)]
    );
}

#[test]
fn a_flood_of_bad_lines_is_reported_line_by_line_and_nothing_is_dropped() {
    let mut s = ready();
    let lines = 2 * MAX_QUEUED_EVENTS;
    let input = format!("{}\n", "y".repeat(1500)).repeat(lines);
    let events = feed(&mut s, 0, input.as_bytes());
    assert_eq!(
        events,
        vec![pe(ProtocolError::OversizeLine { len: 1500 }); lines]
    );
    assert_eq!(s.dropped_events(), 0);
    round_trip(&mut s, 0);
}

#[test]
fn deep_nesting() {
    let mut s = ready_at::<16384, 1024, 4>(ProtocolVersion::V1_4, 0);
    let input = format!("{}\n", "[".repeat(10_000));
    assert_eq!(
        feed(&mut s, 0, input.as_bytes()),
        [json(JsonErrorKind::TooDeep)]
    );
    let input = format!("{}\n", "{\"a\":".repeat(3_000));
    assert_eq!(
        feed(&mut s, 0, input.as_bytes()),
        [json(JsonErrorKind::TooDeep)]
    );
    round_trip(&mut s, 0);
    // Nested too deeply inside a result: the line is refused, the request stays in flight.
    let id = s.request(at(0), &Request::Features, 9).unwrap();
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert_eq!(
        feed(&mut s, 0, ok_reply(id, &deep).as_bytes()),
        [json(JsonErrorKind::TooDeep)]
    );
    assert_eq!(s.in_flight(), 1);
    round_trip(&mut s, 0);
}

#[test]
fn invalid_utf8() {
    let mut s = ready();
    let id = ping_request(&mut s, 1);
    let cases: [(Vec<u8>, JsonErrorKind); 5] = [
        (
            format!("{{\"result\":\"a\u{0}\",\"id\":{id}}}\n").into_bytes(),
            JsonErrorKind::UnexpectedByte(0),
        ),
        (
            [
                &b"{\"result\":\"\xff\xfe\",\"id\":"[..],
                id.to_string().as_bytes(),
                b"}\n",
            ]
            .concat(),
            JsonErrorKind::InvalidUtf8,
        ),
        (
            b"{\"method\":\"blockchain.headers.subscribe\xc3\",\"params\":[]}\n".to_vec(),
            JsonErrorKind::InvalidUtf8,
        ),
        // A UTF-16 surrogate encoded as UTF-8 is not UTF-8.
        (
            b"{\"error\":{\"code\":1,\"message\":\"\xed\xa0\x80\"},\"id\":0}\n".to_vec(),
            JsonErrorKind::InvalidUtf8,
        ),
        // Outside strings, a non-ASCII byte is just unexpected.
        (
            b"{\"id\":1\xff}\n".to_vec(),
            JsonErrorKind::UnexpectedByte(0xff),
        ),
    ];
    for (bad, kind) in cases {
        assert_eq!(feed(&mut s, 0, &bad), [json(kind)], "{}", text(&bad));
    }
    assert_eq!(s.in_flight(), 1, "the garbled replies answered nothing");
    assert_eq!(
        feed(&mut s, 0, ok_reply(id, "null").as_bytes()),
        [response(id, Method::ServerPing, 1, "null")]
    );
    round_trip(&mut s, 0);
}

#[test]
fn huge_numbers() {
    let mut s = ready();
    // Ids that cannot be ours.
    for id in [
        "18446744073709551616",
        "-1",
        "1.5",
        "1e3",
        "\"2\"",
        "null",
        "[2]",
    ] {
        assert_eq!(
            feed(
                &mut s,
                0,
                format!("{{\"result\":1,\"id\":{id}}}\n").as_bytes()
            ),
            [pe(ProtocolError::BadId)],
            "{id}"
        );
    }
    assert_eq!(
        feed(&mut s, 0, ok_reply(u64::MAX, "1").as_bytes()),
        [pe(ProtocolError::UnknownId(u64::MAX))]
    );
    // A number longer than the tokenizer's limit.
    let long = "9".repeat(electrum_spv_core::session::MAX_NUMBER_LEN + 1);
    assert_eq!(
        feed(&mut s, 0, ok_reply(7, &long).as_bytes()),
        [json(JsonErrorKind::NumberTooLong)]
    );
    // Huge values inside a delivered result: the typed decoders refuse them.
    let id = s.request(at(0), &Request::HeadersSubscribe, 5).unwrap();
    let result = format!("{{\"hex\":\"{}\",\"height\":4294967296}}", "00".repeat(80));
    assert_eq!(
        feed(&mut s, 0, ok_reply(id, &result).as_bytes()),
        [response(id, Method::HeadersSubscribe, 5, &result)]
    );
    assert!(response::headers_subscribe(result.as_bytes()).is_err());
    assert!(response::balance(br#"{"confirmed":18446744073709551616,"unconfirmed":0}"#).is_err());
    assert!(response::balance(br#"{"confirmed":1,"unconfirmed":-9223372036854775809}"#).is_err());
    assert!(response::fee_rate(b"1e400").is_err());
    assert_eq!(response::fee_rate(b"-1"), Ok(None));
    round_trip(&mut s, 0);
}

#[test]
fn wrong_types_and_negative_heights_in_results() {
    let mut s = ready();
    let id = s.request(at(0), &Request::HeadersSubscribe, 1).unwrap();
    let header = "00".repeat(80);
    let result = format!("{{\"hex\":\"{header}\",\"height\":\"113\"}}");
    assert_eq!(
        feed(&mut s, 0, ok_reply(id, &result).as_bytes()),
        [response(id, Method::HeadersSubscribe, 1, &result)],
        "the session hands results over raw"
    );
    let txid = "11".repeat(32);
    let bad_results: [(&str, String); 12] = [
        ("headers_subscribe", result.clone()),
        (
            "headers_subscribe",
            format!("{{\"hex\":\"{header}\",\"height\":-1}}"),
        ),
        ("headers_subscribe", "{\"hex\":5,\"height\":1}".to_owned()),
        (
            "history",
            format!("[{{\"tx_hash\":\"{txid}\",\"height\":\"5\"}}]"),
        ),
        (
            "history",
            format!("[{{\"tx_hash\":\"{txid}\",\"height\":-2}}]"),
        ),
        ("history", "{\"history\":5}".to_owned()),
        (
            "utxos",
            format!("[{{\"tx_hash\":\"{txid}\",\"tx_pos\":0,\"height\":-1,\"value\":1}}]"),
        ),
        (
            "utxos",
            format!("[{{\"tx_hash\":\"{txid}\",\"tx_pos\":0,\"height\":1,\"value\":-1}}]"),
        ),
        (
            "balance",
            "{\"confirmed\":\"1\",\"unconfirmed\":0}".to_owned(),
        ),
        (
            "merkle",
            "{\"block_height\":1,\"pos\":-1,\"merkle\":[]}".to_owned(),
        ),
        (
            "merkle",
            "{\"block_height\":1,\"pos\":0,\"merkle\":\"ab\"}".to_owned(),
        ),
        ("status", "5".to_owned()),
    ];
    for (decoder, r) in &bad_results {
        let r = r.as_bytes();
        let err = match *decoder {
            "headers_subscribe" => response::headers_subscribe(r).is_err(),
            "history" => response::history(r).map_or(true, |mut i| i.any(|x| x.is_err())),
            "utxos" => response::utxos(r).map_or(true, |mut i| i.any(|x| x.is_err())),
            "balance" => response::balance(r).is_err(),
            "merkle" => response::merkle_proof(r).is_err(),
            "status" => response::subscribe_status(r).is_err(),
            _ => unreachable!(),
        };
        assert!(err, "{decoder} accepted {}", text(r));
    }
    // -1 and 0 are the two mempool heights: accepted.
    let ok = format!(
        "[{{\"tx_hash\":\"{txid}\",\"height\":-1,\"fee\":5}},{{\"tx_hash\":\"{txid}\",\"height\":0}}]"
    );
    assert!(response::history(ok.as_bytes()).unwrap().all(|i| i.is_ok()));
    round_trip(&mut s, 0);
}

// ----- JSON-RPC shapes -------------------------------------------------------------------

#[test]
fn duplicate_unknown_and_unsolicited_replies() {
    let mut s = ready();
    let id = ping_request(&mut s, 3);
    let reply = ok_reply(id, "null");
    assert_eq!(
        feed(&mut s, 0, reply.as_bytes()),
        [response(id, Method::ServerPing, 3, "null")]
    );
    assert_eq!(
        feed(&mut s, 0, reply.as_bytes()),
        [pe(ProtocolError::UnknownId(id))],
        "duplicate reply"
    );
    assert_eq!(
        feed(&mut s, 0, ok_reply(id + 1000, "1").as_bytes()),
        [pe(ProtocolError::UnknownId(id + 1000))],
        "reply to an id never sent"
    );
    // The negotiation ids are answered already.
    assert_eq!(
        feed(&mut s, 0, version_reply("1.4").as_bytes()),
        [pe(ProtocolError::UnknownId(0))]
    );
    // ElectrumX's reply to a line it could not parse has id null.
    let parse_error = "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32700,\"message\":\"invalid JSON\"},\"id\":null}\n";
    assert_eq!(
        feed(&mut s, 0, parse_error.as_bytes()),
        [pe(ProtocolError::BadId)]
    );
    // A key twice.
    let id = ping_request(&mut s, 4);
    assert_eq!(
        feed(
            &mut s,
            0,
            format!("{{\"id\":{id},\"id\":{id},\"result\":null}}\n").as_bytes()
        ),
        [json(JsonErrorKind::DuplicateKey)]
    );
    assert_eq!(s.in_flight(), 1);
    // Neither a response nor a notification; not an object.
    assert_eq!(
        feed(&mut s, 0, b"{\"result\":1}\n"),
        [pe(ProtocolError::NotJsonRpc)]
    );
    assert_eq!(feed(&mut s, 0, b"{}\n"), [pe(ProtocolError::NotJsonRpc)]);
    assert_eq!(feed(&mut s, 0, b"5\n"), [json(JsonErrorKind::WrongType)]);
    assert_eq!(
        feed(&mut s, 0, b"\"x\"\n"),
        [json(JsonErrorKind::WrongType)]
    );
    assert_eq!(
        feed(&mut s, 0, b"{\"id\":1,\n"),
        [json(JsonErrorKind::Incomplete)]
    );
    assert_eq!(
        feed(&mut s, 0, b"{} {}\n"),
        [json(JsonErrorKind::TrailingData)]
    );
    assert_eq!(feed(&mut s, 0, b"[]\n"), [] as [String; 0], "empty batch");
    assert_eq!(
        feed(&mut s, 0, ok_reply(id, "null").as_bytes()),
        [response(id, Method::ServerPing, 4, "null")]
    );
    round_trip(&mut s, 0);
}

#[test]
fn a_server_request_is_refused() {
    let mut s = ready();
    for line in [
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server.ping\",\"params\":[]}\n",
        "{\"id\":\"x\",\"method\":\"blockchain.headers.subscribe\"}\n",
        "{\"id\":null,\"method\":\"server.version\",\"params\":[\"a\",\"1.4\"]}\n",
    ] {
        assert_eq!(
            feed(&mut s, 0, line.as_bytes()),
            [pe(ProtocolError::UnexpectedRequest)],
            "{line}"
        );
    }
    assert!(
        s.request(at(0), &Request::Features, 0).is_ok(),
        "nothing was queued in reply"
    );
    let out = sent(&transmit(&mut s));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["method"], "server.features");
    round_trip(&mut s, 0);
}

#[test]
fn string_and_object_errors() {
    let mut s = ready();
    let cases: [(&str, Option<i64>, &str); 5] = [
        (
            "\"plain text from an old electrs\"",
            None,
            "plain text from an old electrs",
        ),
        (
            "{\"code\":-32601,\"message\":\"unknown method \\\"x\\\"\"}",
            Some(-32601),
            "unknown method \\\"x\\\"",
        ),
        (
            "{\"code\":1,\"message\":\"height 100,000 out of range\",\"data\":[1]}",
            Some(1),
            "height 100,000 out of range",
        ),
        ("{\"message\":\"no code\"}", None, "no code"),
        ("{\"code\":10001}", Some(10001), ""),
    ];
    for (i, (error, code, message)) in cases.into_iter().enumerate() {
        let id = ping_request(&mut s, i as u32);
        let line = format!("{{\"jsonrpc\":\"2.0\",\"error\":{error},\"id\":{id}}}\n");
        assert_eq!(
            feed(&mut s, 0, line.as_bytes()),
            [format!(
                "ServerError {id} ServerPing {i} {code:?} {message}"
            )],
            "{error}"
        );
    }
    // JSON-RPC 1.0 style: `"error": null` beside a result is a success.
    let id = ping_request(&mut s, 9);
    assert_eq!(
        feed(
            &mut s,
            0,
            format!("{{\"result\":null,\"error\":null,\"id\":{id}}}\n").as_bytes()
        ),
        [response(id, Method::ServerPing, 9, "null")]
    );
    assert_eq!(s.in_flight(), 0);
    round_trip(&mut s, 0);
}

#[test]
fn missing_result_and_error() {
    let mut s = ready();
    for line in [
        "{\"jsonrpc\":\"2.0\",\"id\":{id}}\n",
        "{\"id\":{id},\"result\":1,\"error\":{\"code\":1}}\n",
    ] {
        let id = ping_request(&mut s, 1);
        let line = line.replace("{id}", &id.to_string());
        assert_eq!(
            feed(&mut s, 0, line.as_bytes()),
            [pe(ProtocolError::ResultAndErrorMismatch { id })],
            "{line}"
        );
        // The malformed reply ends the request: a later good one is unknown.
        assert_eq!(s.in_flight(), 0);
        assert_eq!(
            feed(&mut s, 0, ok_reply(id, "null").as_bytes()),
            [pe(ProtocolError::UnknownId(id))]
        );
    }
    round_trip(&mut s, 0);
}

#[test]
fn notifications_good_bad_and_junk() {
    let mut s = ready();
    let header = "ab".repeat(80);
    let good = format!(
        "{{\"jsonrpc\":\"2.0\",\"method\":\"blockchain.headers.subscribe\",\"params\":[{{\"hex\":\"{header}\",\"height\":114}}]}}\n"
    );
    assert_eq!(
        feed(&mut s, 0, good.as_bytes()),
        [norm(&Event::Notification(Notification::Header {
            height: 114,
            header: [0xab; 80]
        }))]
    );
    for bad in [
        format!(
            "{{\"method\":\"blockchain.headers.subscribe\",\"params\":[{{\"hex\":\"{header}\",\"height\":-1}}]}}\n"
        ),
        format!(
            "{{\"method\":\"blockchain.headers.subscribe\",\"params\":[{{\"hex\":\"{}\",\"height\":1}}]}}\n",
            "ab".repeat(79)
        ),
        "{\"method\":\"blockchain.headers.subscribe\"}\n".to_owned(),
        "{\"method\":\"blockchain.scripthash.subscribe\",\"params\":[\"zz\",null]}\n".to_owned(),
        format!(
            "{{\"method\":\"blockchain.scriptpubkey.subscribe\",\"params\":[\"{}\",\"{}\"]}}\n",
            "00".repeat(32),
            "0".repeat(63)
        ),
    ] {
        assert_eq!(
            feed(&mut s, 0, bad.as_bytes()),
            [pe(ProtocolError::BadNotification)],
            "{bad}"
        );
    }
    // ElectrumX's junk notifications, 1.7 pings and altcoin extras are ignored.
    for junk in [
        "{\"jsonrpc\":\"2.0\",\"method\":\"blockchain.relayfee\"}\n",
        "{\"jsonrpc\":\"2.0\",\"method\":\"blockchain.estimatefee\"}\n",
        "{\"jsonrpc\":\"2.0\",\"method\":\"server.ping\",\"params\":[]}\n",
        "{\"jsonrpc\":\"2.0\",\"method\":\"masternode.subscribe\",\"params\":[1]}\n",
    ] {
        assert_eq!(
            feed(&mut s, 0, junk.as_bytes()),
            [] as [String; 0],
            "{junk}"
        );
    }
    // A script status with a null status.
    let hash = "00".repeat(31) + "01";
    let null_status = format!(
        "{{\"method\":\"blockchain.scripthash.subscribe\",\"params\":[\"{hash}\",null]}}\n"
    );
    let events = feed(&mut s, 0, null_status.as_bytes());
    assert_eq!(events.len(), 1);
    assert!(
        events[0].contains(&hash) && events[0].contains("status: None"),
        "{events:?}"
    );
    round_trip(&mut s, 0);
}

#[test]
fn a_batch_mixing_good_and_bad_elements() {
    let mut s = ready();
    let a = ping_request(&mut s, 1);
    let b = ping_request(&mut s, 2);
    let line = format!(
        "[{{\"result\":null,\"id\":{a}}},{{\"result\":2,\"id\":999}},7,{{\"error\":\"no\",\"id\":{b}}}]\n"
    );
    assert_eq!(
        feed(&mut s, 0, line.as_bytes()),
        [
            response(a, Method::ServerPing, 1, "null"),
            pe(ProtocolError::UnknownId(999)),
            json(JsonErrorKind::WrongType),
            format!("ServerError {b} ServerPing 2 None no"),
        ]
    );
    assert_eq!(s.in_flight(), 0);
    round_trip(&mut s, 0);
}

#[test]
fn feeding_again_before_draining_takes_nothing_and_loses_nothing() {
    let mut s = ready();
    let a = ping_request(&mut s, 1);
    let b = ping_request(&mut s, 2);
    let first = ok_reply(a, "null");
    let input = format!("{first}{}", ok_reply(b, "null"));
    // handle_input stops after the first complete line.
    assert_eq!(s.handle_input(at(0), input.as_bytes()), first.len());
    // Fed again without draining: nothing is taken, and the first line's event still waits.
    let rest = &input.as_bytes()[first.len()..];
    assert_eq!(s.handle_input(at(0), rest), 0);
    assert_eq!(drain(&mut s), [response(a, Method::ServerPing, 1, "null")]);
    assert_eq!(
        feed(&mut s, 0, rest),
        [response(b, Method::ServerPing, 2, "null")]
    );
    assert_eq!(s.dropped_events(), 0);
    assert_eq!(s.in_flight(), 0);
    round_trip(&mut s, 0);
}

// ----- negotiation -----------------------------------------------------------------------

fn negotiating(versions: VersionRange) -> Box<Small> {
    let mut s = Box::new(session::<1024, 1024, 4>(config(versions), at(0)));
    let out = sent(&transmit(&mut s));
    let (min, max) = (versions.min.to_string(), versions.max.to_string());
    assert_eq!(out[0]["params"][1], serde_json::json!([min, max]));
    s
}

#[test]
fn wrong_genesis_fails() {
    let mut s = negotiating(VersionRange::DEFAULT);
    assert_eq!(
        feed(&mut s, 0, version_reply("1.6").as_bytes()),
        [] as [String; 0]
    );
    let _ = transmit(&mut s);
    let mainnet = MAINNET.genesis_hash.to_string();
    assert_ne!(mainnet, regtest_genesis());
    assert_eq!(
        feed(&mut s, 0, features_reply(&mainnet).as_bytes()),
        [failed(FatalError::WrongGenesis)]
    );
    closed(&mut s, FatalError::WrongGenesis);
}

#[test]
fn bad_features_fail() {
    for result in [
        "[]",
        "{}",
        "{\"genesis_hash\":5}",
        "{\"genesis_hash\":\"00\"}",
        "null",
    ] {
        let mut s = negotiating(VersionRange::DEFAULT);
        feed(&mut s, 0, version_reply("1.6").as_bytes());
        assert_eq!(
            feed(&mut s, 0, ok_reply(1, result).as_bytes()),
            [failed(FatalError::BadFeatures)],
            "{result}"
        );
        closed(&mut s, FatalError::BadFeatures);
    }
}

#[test]
fn version_outside_the_range_fails() {
    for (reply, got) in [
        ("1.7", ProtocolVersion::V1_7),
        ("1.7.0", ProtocolVersion::V1_7),
        ("1.3", ProtocolVersion::new(1, 3, 0)),
        ("2", ProtocolVersion::new(2, 0, 0)),
    ] {
        let mut s = negotiating(VersionRange::DEFAULT);
        let why = FatalError::VersionOutOfRange { got };
        assert_eq!(
            feed(&mut s, 0, version_reply(reply).as_bytes()),
            [failed(why)]
        );
        closed(&mut s, why);
    }
    // Inside the range, even a never-specified version, is accepted.
    let mut s = negotiating(VersionRange::DEFAULT);
    assert_eq!(
        feed(&mut s, 0, version_reply("1.5").as_bytes()),
        [] as [String; 0]
    );
    assert_eq!(sent(&transmit(&mut s))[0]["method"], "server.features");
}

#[test]
fn version_refused_fails() {
    for (error, code) in [
        (
            "{\"code\":1,\"message\":\"unsupported protocol version: 1.8\"}",
            Some(1),
        ),
        ("\"unsupported\"", None),
        (
            "{\"code\":-32602,\"message\":\"invalid params\"}",
            Some(-32602),
        ),
    ] {
        let mut s = negotiating(VersionRange::DEFAULT);
        let why = FatalError::VersionRefused { code };
        let line = format!("{{\"jsonrpc\":\"2.0\",\"error\":{error},\"id\":0}}\n");
        assert_eq!(feed(&mut s, 0, line.as_bytes()), [failed(why)]);
        closed(&mut s, why);
    }
}

#[test]
fn malformed_version_reply_fails() {
    for result in [
        "\"ElectrumX 1.0\"",
        "[\"ElectrumX\"]",
        "[\"ElectrumX\",1.4]",
        "[\"ElectrumX\",\"abc\"]",
        "[\"ElectrumX\",\"1.4\",\"extra\"]",
        "{\"version\":\"1.4\"}",
        "null",
    ] {
        let mut s = negotiating(VersionRange::DEFAULT);
        assert_eq!(
            feed(&mut s, 0, ok_reply(0, result).as_bytes()),
            [failed(FatalError::BadVersionReply)],
            "{result}"
        );
        closed(&mut s, FatalError::BadVersionReply);
    }
}

#[test]
fn negotiation_times_out() {
    // No version reply.
    let mut s = Box::new(session::<1024, 1024, 4>(
        config(VersionRange::DEFAULT),
        at(500),
    ));
    assert_eq!(s.poll_timeout(), Some(at(500 + TIMEOUT)));
    s.handle_timeout(at(500 + TIMEOUT - 1));
    assert_eq!(drain(&mut s), [] as [String; 0]);
    s.handle_timeout(at(500 + TIMEOUT));
    assert_eq!(drain(&mut s), [failed(FatalError::NegotiationTimedOut)]);
    closed(&mut s, FatalError::NegotiationTimedOut);

    // No features reply: its deadline runs from when it was sent.
    let mut s = negotiating(VersionRange::DEFAULT);
    feed(&mut s, 1000, version_reply("1.4").as_bytes());
    assert_eq!(s.poll_timeout(), Some(at(1000 + TIMEOUT)));
    s.handle_timeout(at(1000 + TIMEOUT - 1));
    assert_eq!(drain(&mut s), [] as [String; 0]);
    s.handle_timeout(at(1000 + TIMEOUT));
    assert_eq!(drain(&mut s), [failed(FatalError::NegotiationTimedOut)]);
    closed(&mut s, FatalError::NegotiationTimedOut);
}

#[test]
fn requests_before_ready() {
    let mut s = negotiating(VersionRange::DEFAULT);
    assert_eq!(
        s.request(at(0), &Request::Features, 1),
        Err(RequestError::NotReady)
    );
    feed(&mut s, 0, version_reply("1.4").as_bytes());
    assert_eq!(
        s.request(at(0), &Request::HeadersSubscribe, 1),
        Err(RequestError::NotReady)
    );
    // Only the negotiation went out.
    let out = sent(&transmit(&mut s));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["method"], "server.features");
    feed(&mut s, 0, features_reply(&regtest_genesis()).as_bytes());
    round_trip(&mut s, 0);
}

#[test]
fn output_too_small_for_negotiation() {
    let mut s = Box::new(session::<1024, 40, 4>(config(VersionRange::DEFAULT), at(0)));
    assert_eq!(drain(&mut s), [failed(FatalError::OutputTooSmall)]);
    closed(&mut s, FatalError::OutputTooSmall);
}

#[test]
fn the_empty_session_is_failed_and_start_makes_it_live_in_place() {
    let mut s = Box::new(Session::EMPTY);
    assert_eq!(s.failure(), Some(FatalError::OutputTooSmall));
    assert_eq!(
        (s.line_capacity(), s.transmit_capacity(), s.max_in_flight()),
        (0, 0, 0)
    );
    assert_eq!(
        s.handle_input(at(0), b"{}\n"),
        3,
        "a failed session ignores input"
    );
    closed(&mut s, FatalError::OutputTooSmall);
    s.start(
        SessionStorage::owned(1024, 1024, 4),
        config(VersionRange::DEFAULT),
        at(5),
    );
    assert_eq!(s.failure(), None);
    let out = sent(&transmit(&mut s));
    assert_eq!(
        (out.len(), &out[0]["method"]),
        (1, &Value::from("server.version"))
    );
}

/// The queue can be written from in place: `transmit_bytes` then `transmitted`.
#[test]
fn queued_bytes_are_written_in_place() {
    let mut s = ready();
    let ping = Request::Ping { pong_len: 0 };
    let a = s.request(at(0), &ping, 1).unwrap();
    let b = s.request(at(0), &ping, 2).unwrap();
    let queued = s.transmit_len();
    assert!(queued > 0);
    let mut written = Vec::new();
    while s.transmit_len() > 0 {
        let bytes = s.transmit_bytes();
        assert!(!bytes.is_empty(), "queued bytes are shown");
        // A short write: part of what is shown.
        let n = bytes.len().min(7);
        written.extend_from_slice(&bytes[..n]);
        s.transmitted(n);
    }
    assert_eq!(written.len(), queued);
    let ids: Vec<Value> = sent(&String::from_utf8(written).unwrap())
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(ids, [Value::from(a), Value::from(b)]);
    assert!(s.transmit_bytes().is_empty());
}

/// A reconnect in the same storage: everything of the old connection is gone (requests in
/// flight, its version), and negotiation starts again from id 0.
#[test]
fn restart_begins_a_new_connection_in_the_same_storage() {
    let mut s = ready();
    let id = ping_request(&mut s, 9);
    assert_eq!(s.in_flight(), 1);
    s.restart(config(VersionRange::DEFAULT), at(100));
    assert_eq!((s.version(), s.in_flight(), s.failure()), (None, 1, None));
    assert_eq!(
        (s.line_capacity(), s.transmit_capacity(), s.max_in_flight()),
        (1024, 1024, 4)
    );
    let out = sent(&transmit(&mut s));
    assert_eq!(out.len(), 1, "only the new version request: {out:?}");
    assert_eq!(
        (&out[0]["method"], &out[0]["id"]),
        (&Value::from("server.version"), &Value::from(0))
    );
    // The old connection's answer cannot be matched to anything in the new one.
    assert_eq!(
        feed(&mut s, 100, ok_reply(id, "null").as_bytes()),
        [pe(ProtocolError::UnknownId(id))]
    );
    assert_eq!(drain(&mut s), Vec::<String>::new());
}

// ----- requests and time -----------------------------------------------------------------

#[test]
fn request_timeouts_and_late_replies() {
    let mut s = ready();
    let t = 1000;
    let id = s.request(at(t), &Request::Features, 11).unwrap();
    let _ = transmit(&mut s);
    assert_eq!(s.poll_timeout(), Some(at(t + TIMEOUT)));
    s.handle_timeout(at(t + TIMEOUT - 1));
    assert_eq!(drain(&mut s), [] as [String; 0]);
    s.handle_timeout(at(t + TIMEOUT));
    assert_eq!(
        drain(&mut s),
        [norm(&Event::TimedOut {
            id,
            method: Method::ServerFeatures,
            tag: 11
        })]
    );
    assert_eq!(s.in_flight(), 0);
    assert_eq!(
        feed(&mut s, t + TIMEOUT + 5, ok_reply(id, "{}").as_bytes()),
        [pe(ProtocolError::UnknownId(id))]
    );
    round_trip(&mut s, t + TIMEOUT + 5);
}

#[test]
fn keep_alive_ping_after_the_interval() {
    for v in [ProtocolVersion::V1_4, ProtocolVersion::V1_7] {
        // Ready at t = 10: server.features was the last thing sent.
        let mut s = ready_at::<1024, 1024, 4>(v, 10);
        assert_eq!(s.poll_timeout(), Some(at(10 + PING)));
        s.handle_timeout(at(10 + PING - 1));
        assert_eq!(transmit(&mut s), "");
        s.handle_timeout(at(10 + PING));
        assert_eq!(drain(&mut s), [] as [String; 0], "the ping is internal");
        // Ids 0 and 1 went to negotiation; 1.7 asks for a zero-length pong.
        let params = if v >= ProtocolVersion::V1_7 {
            "[0]"
        } else {
            "[]"
        };
        assert_eq!(
            transmit(&mut s),
            format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"server.ping\",\"params\":{params}}}\n"
            )
        );
        assert_eq!(s.in_flight(), 1);
        let pong = if v >= ProtocolVersion::V1_7 {
            "{\"data\":\"\"}"
        } else {
            "null"
        };
        assert_eq!(
            feed(&mut s, 10 + PING + 1, ok_reply(2, pong).as_bytes()),
            [] as [String; 0]
        );
        assert_eq!(s.in_flight(), 0);
        assert_eq!(s.poll_timeout(), Some(at(10 + 2 * PING)));

        // Sending a request postpones the next ping.
        let t = 10 + PING + PING / 2;
        let id = s.request(at(t), &Request::HeadersSubscribe, 1).unwrap();
        let _ = transmit(&mut s);
        feed(&mut s, t, ok_reply(id, "{}").as_bytes());
        s.handle_timeout(at(10 + 2 * PING));
        assert_eq!(transmit(&mut s), "");
        assert_eq!(s.poll_timeout(), Some(at(t + PING)));
        round_trip(&mut s, t);
    }
}

#[test]
fn methods_not_available_at_the_negotiated_version() {
    use ProtocolVersion as V;
    let spk = [0x51u8];
    let txid = electrum_spv_core::hash::Txid::from_byte_array([1; 32]);
    // PROTOCOL.md §2.7.
    let cases: [(ProtocolVersion, Request<'_>); 7] = [
        (V::V1_4, Request::MempoolInfo),
        (V::V1_4, Request::ScriptUnsubscribe(&spk)),
        (V::V1_4, Request::MempoolRecent),
        (V::V1_4, Request::BroadcastPackage(&[])),
        (V::V1_6, Request::RelayFee),
        (V::V1_6, Request::OutpointUnsubscribe { txid, vout: 0 }),
        (V::V1_7, Request::RelayFee),
    ];
    for (v, r) in cases {
        let mut s = ready_at::<1024, 1024, 4>(v, 0);
        let want = Err(RequestError::NotAvailable {
            method: r.method(),
            version: v,
        });
        assert_eq!(s.request(at(0), &r, 1), want, "{r:?} at {v}");
        assert_eq!(transmit(&mut s), "");
        assert_eq!(s.in_flight(), 0);
        round_trip(&mut s, 0);
    }
}

#[test]
fn invalid_arguments() {
    let mut s = ready();
    let max = MAX_HEADERS_PER_REQUEST;
    for r in [
        Request::BlockHeaders {
            start_height: 0,
            count: max + 1,
            cp_height: 0,
        },
        Request::BlockHeaders {
            start_height: 0,
            count: u32::MAX,
            cp_height: 0,
        },
        Request::BlockHeader {
            height: 10,
            cp_height: 9,
        },
    ] {
        assert_eq!(
            s.request(at(0), &r, 1),
            Err(RequestError::InvalidArgument),
            "{r:?}"
        );
    }
    // The session's own tag is not the caller's to use.
    assert_eq!(
        s.request(at(0), &Request::HeadersSubscribe, u32::MAX),
        Err(RequestError::InvalidArgument)
    );
    assert_eq!(transmit(&mut s), "");
    assert_eq!(s.in_flight(), 0);
    // Exactly the maximum is fine.
    let r = Request::BlockHeaders {
        start_height: 0,
        count: max,
        cp_height: 0,
    };
    let id = s.request(at(0), &r, 1).unwrap();
    assert_eq!(
        sent(&transmit(&mut s))[0]["params"],
        serde_json::json!([0, max])
    );
    feed(&mut s, 0, ok_reply(id, "{}").as_bytes());
    round_trip(&mut s, 0);
}

#[test]
fn a_full_pending_table() {
    let mut s = ready();
    let ids: Vec<u64> = (0..4)
        .map(|tag| s.request(at(0), &Request::HeadersSubscribe, tag).unwrap())
        .collect();
    assert_eq!(
        s.request(at(0), &Request::HeadersSubscribe, 9),
        Err(RequestError::TooManyInFlight)
    );
    assert_eq!(
        sent(&transmit(&mut s)).len(),
        4,
        "the refused request was not queued"
    );
    assert_eq!(
        feed(&mut s, 0, ok_reply(ids[2], "1").as_bytes()),
        [response(ids[2], Method::HeadersSubscribe, 2, "1")]
    );
    round_trip(&mut s, 0);
}

#[test]
fn a_too_small_output_buffer() {
    let mut s = ready_at::<1024, 160, 8>(ProtocolVersion::V1_4, 0);
    // A broadcast whose hex can never fit.
    let raw = [0u8; 200];
    match s.request(at(0), &Request::Broadcast(&raw), 1) {
        Err(RequestError::OutputFull(_)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(s.in_flight(), 0, "no pending slot leaked");
    assert_eq!(transmit(&mut s), "");
    // Requests that fit one by one fill the queue until transmitted.
    let mut queued = 0;
    let full = loop {
        match s.request(at(0), &Request::Banner, 2) {
            Ok(_) => queued += 1,
            Err(e) => break e,
        }
        assert!(queued < 10);
    };
    assert!(matches!(full, RequestError::OutputFull(_)), "{full:?}");
    assert!(queued >= 1);
    assert_eq!(s.in_flight(), queued);
    assert_eq!(sent(&transmit(&mut s)).len(), queued);
    assert!(
        s.request(at(0), &Request::Banner, 2).is_ok(),
        "room again after transmitting"
    );
}

// ----- typed decoders on forged data ------------------------------------------------------

#[test]
fn typed_decoders_refuse_forged_data() {
    let h = "00".repeat(80);
    // Headers: bad hex, wrong lengths.
    for bad in [
        format!("\"{}\"", "zz".repeat(80)),
        format!("\"{}\"", &h[..158]),
        format!("\"{h}00\""),
        format!("\"{}\"", &h[..159]),
        "5".to_owned(),
    ] {
        assert!(response::block_header(bad.as_bytes()).is_err(), "{bad}");
    }
    assert_eq!(
        response::block_header(format!("\"{h}\"").as_bytes()),
        Ok([0; 80])
    );
    // block.headers, hex form: the length must be 160 × count.
    for (count, hex) in [
        (2, h.repeat(3)),
        (2, h.clone()),
        (1, h.repeat(2)[..318].to_owned()),
        (0, h.clone()),
    ] {
        let r = format!("{{\"count\":{count},\"max\":2016,\"hex\":\"{hex}\"}}");
        assert!(
            response::block_headers(r.as_bytes()).is_err(),
            "{count} {}",
            hex.len()
        );
    }
    let r = format!("{{\"count\":2,\"max\":2016,\"hex\":\"{}\"}}", h.repeat(2));
    let ok = response::block_headers(r.as_bytes()).unwrap();
    assert_eq!(ok.headers().collect::<Vec<_>>(), [Ok([0; 80]), Ok([0; 80])]);
    // Bad hex inside a correctly sized hex form.
    let r = format!("{{\"count\":1,\"max\":2016,\"hex\":\"{}g\"}}", &h[..159]);
    assert!(
        response::block_headers(r.as_bytes()).map_or(true, |b| b.headers().any(|x| x.is_err()))
    );
    // List form: a bad element yields Err.
    let r = format!(
        "{{\"count\":2,\"max\":2016,\"headers\":[\"{h}\",\"{}\"]}}",
        &h[2..]
    );
    let b = response::block_headers(r.as_bytes()).unwrap();
    assert!(b.headers().nth(1).unwrap().is_err());
    // Neither form, or missing counts.
    assert!(response::block_headers(b"{\"count\":1,\"max\":2016}").is_err());
    assert!(response::block_headers(format!("{{\"hex\":\"{h}\"}}").as_bytes()).is_err());
    // Merkle branches and proofs: 64-digit hashes only.
    let node = "ab".repeat(32);
    let r = format!(
        "{{\"block_height\":5,\"pos\":1,\"merkle\":[\"{node}\",\"{}\",\"{}zz\"]}}",
        &node[..62],
        &node[..62]
    );
    let p = response::merkle_proof(r.as_bytes()).unwrap();
    let items: Vec<bool> = p.branch.iter().map(|x| x.is_ok()).collect();
    assert_eq!(items, [true, false, false]);
    let r = format!(
        "{{\"header\":\"{h}\",\"branch\":[],\"root\":\"{}\"}}",
        &node[..63]
    );
    assert!(response::block_header_proof(r.as_bytes()).is_err());
    let r = format!(
        "{{\"header\":\"{}\",\"branch\":[],\"root\":\"{node}\"}}",
        &h[..2]
    );
    assert!(response::block_header_proof(r.as_bytes()).is_err());
    // Txids, transactions, statuses.
    assert!(response::broadcast_txid(format!("\"{}\"", &node[..62]).as_bytes()).is_err());
    assert!(
        response::broadcast_txid(b"\"<html>Your transaction was successfully broadcast\"").is_err()
    );
    assert!(response::transaction_hex(b"\"abc\"").is_err());
    assert!(response::transaction_hex(b"{\"hex\":\"ab\"}").is_err());
    assert!(response::subscribe_status(format!("\"{}\"", &node[..62]).as_bytes()).is_err());
    assert_eq!(response::subscribe_status(b"null"), Ok(None));
    assert!(
        response::features_genesis(format!("{{\"genesis_hash\":\"{}\"}}", &node[..62]).as_bytes())
            .is_err()
    );
    assert!(response::version_reply(b"[\"x\",\"1.4.2.1\"]").is_err());
}

#[test]
fn block_headers_list_longer_than_count() {
    let h = "00".repeat(80);
    let r = format!("{{\"count\":1,\"max\":2016,\"headers\":[\"{h}\",\"{h}\"]}}");
    // Read in one pass: the first header comes out, the extra one is the error that ends it.
    let got: Vec<_> = response::block_headers(r.as_bytes())
        .unwrap()
        .headers()
        .collect();
    assert_eq!(got, [Ok([0; 80]), Err(response::BadResult)]);
    let short = format!("{{\"count\":3,\"max\":2016,\"headers\":[\"{h}\",\"{h}\"]}}");
    let got: Vec<_> = response::block_headers(short.as_bytes())
        .unwrap()
        .headers()
        .collect();
    assert_eq!(got, [Ok([0; 80]), Ok([0; 80]), Err(response::BadResult)]);
    let ok = format!("{{\"count\":2,\"max\":2016,\"headers\":[\"{h}\",\"{h}\"]}}");
    assert_eq!(
        response::block_headers(ok.as_bytes())
            .unwrap()
            .headers()
            .count(),
        2
    );
}

// ----- once bugs, found by these tests and fixed ------------------------------------------

#[test]
fn an_undecodable_error_still_ends_its_request_visibly() {
    let mut s = ready();
    let id = ping_request(&mut s, 1);
    let events = feed(
        &mut s,
        0,
        format!("{{\"error\":42,\"id\":{id}}}\n").as_bytes(),
    );
    s.handle_timeout(at(TIMEOUT));
    let events: Vec<String> = events.into_iter().chain(drain(&mut s)).collect();
    assert!(
        events
            .iter()
            .any(|e| e.contains(&format!("id: {id}"))
                || e.starts_with(&format!("ServerError {id} "))),
        "no event names request {id}: {events:?}"
    );
}

#[test]
fn a_mismatched_negotiation_reply_does_not_hang() {
    let mut s = negotiating(VersionRange::DEFAULT);
    feed(&mut s, 0, version_reply("1.4").as_bytes());
    let _ = transmit(&mut s);
    let mut events = feed(&mut s, 0, b"{\"jsonrpc\":\"2.0\",\"id\":1}\n");
    s.handle_timeout(at(u64::MAX / 2));
    events.extend(drain(&mut s));
    assert!(
        s.failure().is_some(),
        "still negotiating: events {events:?}, poll_timeout {:?}",
        s.poll_timeout()
    );
}

#[test]
fn every_expired_request_is_reported() {
    let n = 2 * MAX_QUEUED_EVENTS;
    let mut s = ready_at::<1024, 8192, { 2 * MAX_QUEUED_EVENTS }>(ProtocolVersion::V1_4, 0);
    for tag in 0..n {
        s.request(at(0), &Request::HeadersSubscribe, tag as u32)
            .unwrap();
    }
    let _ = transmit(&mut s);
    let mut timed_out = 0;
    // The caller's loop: handle_timeout, drain, and again while a deadline is due.
    for _ in 0..3 {
        s.handle_timeout(at(TIMEOUT));
        timed_out += drain(&mut s)
            .iter()
            .filter(|e| e.starts_with("TimedOut"))
            .count();
    }
    assert_eq!(timed_out, n, "dropped events: {}", s.dropped_events());
}

#[test]
fn a_json_rpc_1_0_error_reply() {
    let mut s = ready();
    let id = ping_request(&mut s, 1);
    let line =
        format!("{{\"result\":null,\"error\":{{\"code\":1,\"message\":\"m\"}},\"id\":{id}}}\n");
    assert_eq!(
        feed(&mut s, 0, line.as_bytes()),
        [format!("ServerError {id} ServerPing 1 Some(1) m")]
    );
}

// ----- size --------------------------------------------------------------------------------

/// The session's own state is the same whatever the caller's buffers, and within the bound.
#[test]
fn size_of_session() {
    let size = core::mem::size_of::<Session<'static>>();
    println!("size_of::<Session>() = {size}");
    assert!(size <= SESSION_OVERHEAD, "{size} > {SESSION_OVERHEAD}");
    let (mut line, mut out, mut slots) = ([0u8; 16], [0u8; 256], [PendingSlot::EMPTY; 2]);
    let small = Session::new(
        SessionStorage::new(&mut line, &mut out, &mut slots),
        config(VersionRange::DEFAULT),
        at(0),
    );
    let big = session::<400_000, 65536, 64>(config(VersionRange::DEFAULT), at(0));
    assert_eq!(
        (
            small.line_capacity(),
            small.transmit_capacity(),
            small.max_in_flight()
        ),
        (16, 256, 2)
    );
    assert_eq!(
        (
            big.line_capacity(),
            big.transmit_capacity(),
            big.max_in_flight()
        ),
        (400_000, 65536, 64)
    );
}

/// Caller time `ms` milliseconds after the origin.
fn at(ms: u64) -> electrum_spv_core::time::Instant {
    electrum_spv_core::time::Instant::from_millis(ms)
}
