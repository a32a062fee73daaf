//! What real servers do that a strict session would refuse (INTEROP.md), offline through the
//! `Session`: the plain-string `server.version` for electrs 0.8-0.9.13 (row 1), the genesis
//! check by header 0 where `server.features` is missing (row 2), `id_from_pos` with `merkle`
//! always sent and its object answer (row 11), and the recognised error replies (rows 3, 7, 12).

use electrum_spv_core::chain::{MAINNET, REGTEST};
use electrum_spv_core::hash::Txid;
use electrum_spv_core::header::Header;
use electrum_spv_core::rpc::ProtocolVersion;
use electrum_spv_core::session::{
    Config, Event, FatalError, Request, RpcError, Session, SessionStorage, response,
};
use serde_json::Value;

type Small = Session<'static>;

/// A session with 1 KiB buffers and 4 requests in flight.
fn small(config: Config) -> Small {
    Session::new(SessionStorage::owned(1024, 1024, 4), config, at(0))
}

/// The regtest genesis header (hashes to `REGTEST.genesis_hash`, checked below).
const REGTEST_GENESIS_HEADER: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4adae5494dffff7f2002000000";
/// The mainnet genesis header.
const MAINNET_GENESIS_HEADER: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";

fn transmit(s: &mut Small) -> Vec<Value> {
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let n = s.poll_transmit(&mut buf);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(out)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Feeds `line` and returns the owned events as debug strings.
fn feed(s: &mut Small, line: &str) -> Vec<String> {
    let mut events = Vec::new();
    let mut rest = line.as_bytes();
    while !rest.is_empty() {
        let n = s.handle_input(at(0), rest);
        rest = &rest[n..];
        while let Some(e) = s.poll_event() {
            events.push(format!("{e:?}"));
        }
    }
    events
}

fn reply(id: u64, result: &str) -> String {
    format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{result}}}\n")
}

fn error_reply(id: u64, error: &str) -> String {
    format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{error}}}\n")
}

fn ready_event(v: ProtocolVersion) -> String {
    format!("{:?}", Event::Ready { version: v })
}

fn failed(e: FatalError) -> String {
    format!("{:?}", Event::Failed(e))
}

/// A session past `server.version` at 1.4, with `server.features` sent (id 1).
fn awaiting_features() -> Box<Small> {
    let mut s = Box::new(small(Config::new(&REGTEST)));
    let _ = transmit(&mut s);
    assert!(feed(&mut s, &reply(0, r#"["electrs-esplora 0.4.1","1.4"]"#)).is_empty());
    let out = transmit(&mut s);
    assert_eq!(out[0]["method"], "server.features");
    s
}

#[test]
fn genesis_headers_hash_to_the_networks_genesis() {
    for (hex, params) in [
        (REGTEST_GENESIS_HEADER, &REGTEST),
        (MAINNET_GENESIS_HEADER, &MAINNET),
    ] {
        let h = Header::from_hex(hex.as_bytes()).expect("header");
        assert_eq!(h.block_hash(), params.genesis_hash);
    }
}

#[test]
fn plain_version_sends_the_lowest_version_as_a_string() {
    let mut s = Box::new(small(Config::new(&REGTEST)));
    let out = transmit(&mut s);
    assert_eq!(out[0]["params"][1], serde_json::json!(["1.4", "1.6"]));

    let config = Config {
        plain_version: true,
        ..Config::new(&REGTEST)
    };
    let mut s = Box::new(small(config));
    let out = transmit(&mut s);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["method"], "server.version");
    assert_eq!(out[0]["params"], serde_json::json!(["electrum-spv", "1.4"]));
    assert!(feed(&mut s, &reply(0, r#"["electrs/0.9.10","1.4"]"#)).is_empty());
    assert_eq!(transmit(&mut s)[0]["method"], "server.features");
    let features = format!(r#"{{"genesis_hash":"{}"}}"#, REGTEST.genesis_hash);
    assert_eq!(
        feed(&mut s, &reply(1, &features)),
        [ready_event(ProtocolVersion::V1_4)]
    );
}

#[test]
fn missing_features_is_checked_by_header_zero() {
    for error in [
        r#"{"code":-32601,"message":"unknown method server.features"}"#,
        r#""unknown method server.features []""#,
        r#"{"code":1,"message":"no"}"#,
    ] {
        let mut s = awaiting_features();
        assert!(feed(&mut s, &error_reply(1, error)).is_empty(), "{error}");
        assert!(!s.is_ready());
        let out = transmit(&mut s);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["method"], "blockchain.block.header");
        assert_eq!(out[0]["params"], serde_json::json!([0]));
        let id = out[0]["id"].as_u64().expect("id");
        assert_eq!(
            feed(&mut s, &reply(id, &format!("\"{REGTEST_GENESIS_HEADER}\""))),
            [ready_event(ProtocolVersion::V1_4)],
            "{error}"
        );
        assert!(s.is_ready());
        // Requests flow as usual afterwards.
        s.request(at(0), &Request::HeadersSubscribe, 7)
            .expect("request accepted");
    }
}

#[test]
fn missing_features_and_a_wrong_or_bad_header_zero_fail() {
    let cases = [
        (
            reply(2, &format!("\"{MAINNET_GENESIS_HEADER}\"")),
            FatalError::WrongGenesis,
        ),
        (reply(2, "\"00\""), FatalError::BadFeatures),
        (reply(2, "5"), FatalError::BadFeatures),
        (
            error_reply(2, r#"{"code":-32601,"message":"no"}"#),
            FatalError::BadFeatures,
        ),
    ];
    for (line, why) in cases {
        let mut s = awaiting_features();
        let not_found = r#"{"code":-32601,"message":"unknown method"}"#;
        assert!(feed(&mut s, &error_reply(1, not_found)).is_empty());
        assert_eq!(transmit(&mut s)[0]["id"], 2);
        assert_eq!(feed(&mut s, &line), [failed(why)], "{line}");
        assert_eq!(s.failure(), Some(why));
    }
    // And no answer at all: negotiation times out.
    let mut s = awaiting_features();
    let not_found = r#"{"code":-32601,"message":"unknown method"}"#;
    assert!(feed(&mut s, &error_reply(1, not_found)).is_empty());
    let deadline = s.poll_timeout().expect("deadline");
    s.handle_timeout(deadline);
    let mut events = Vec::new();
    while let Some(e) = s.poll_event() {
        events.push(format!("{e:?}"));
    }
    assert_eq!(events, [failed(FatalError::NegotiationTimedOut)]);
}

#[test]
fn id_from_pos_sends_merkle_false_and_accepts_the_object_form() {
    let mut s = awaiting_features();
    let features = format!(r#"{{"genesis_hash":"{}"}}"#, REGTEST.genesis_hash);
    feed(&mut s, &reply(1, &features));
    let request = Request::TransactionIdFromPos {
        height: 100,
        pos: 3,
        merkle: false,
    };
    s.request(at(0), &request, 1).expect("request accepted");
    let out = transmit(&mut s);
    assert_eq!(out[0]["method"], "blockchain.transaction.id_from_pos");
    assert_eq!(out[0]["params"], serde_json::json!([100, 3, false]));

    let txid = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";
    let want: Txid = txid.parse().expect("txid");
    assert_eq!(response::txid(format!("\"{txid}\"").as_bytes()), Ok(want));
    assert_eq!(
        response::txid(format!(r#"{{"tx_hash":"{txid}"}}"#).as_bytes()),
        Ok(want)
    );
    assert_eq!(
        response::txid(format!(r#"{{"merkle":[],"tx_hash":"{txid}"}}"#).as_bytes()),
        Ok(want)
    );
    for bad in [
        "{}",
        r#"{"tx_hash":5}"#,
        r#"{"tx_hash":"00"}"#,
        "[]",
        "null",
    ] {
        assert!(response::txid(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn server_errors_are_recognised() {
    let e = |code: Option<i64>, message: &'static str| RpcError {
        code,
        message: message.as_bytes(),
    };
    // Row 7: esplora's 500-row limits, like ElectrumX's "history too large".
    for too_large in [
        e(Some(10001), "history too large"),
        e(Some(1), "history too large"),
        e(Some(1), "Too many history entries"),
        e(None, "Too many history entries"),
        e(
            None,
            "Too many history transactions (>500). Contact support to raise limits.",
        ),
    ] {
        assert!(too_large.is_history_too_large(), "{too_large:?}");
    }
    for other in [
        e(Some(1), "unsupported protocol version"),
        e(None, "unknown method"),
        e(Some(-32603), "Too many history entries"),
    ] {
        assert!(!other.is_history_too_large(), "{other:?}");
    }
    // Row 3: electrs while indexing.
    assert!(e(Some(-32603), "unavailable index").is_index_unavailable());
    assert!(!e(Some(-32603), "internal server error").is_index_unavailable());
    assert!(!e(Some(1), "unavailable index").is_index_unavailable());
    // Row 12: optional methods missing.
    assert!(e(Some(-32601), "unknown method").is_method_not_found());
    assert!(!e(Some(-32602), "invalid params").is_method_not_found());
}

/// Caller time `ms` milliseconds after the origin.
fn at(ms: u64) -> electrum_spv_core::time::Instant {
    electrum_spv_core::time::Instant::from_millis(ms)
}
