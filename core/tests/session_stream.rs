//! Streamed responses: a real 2016-header period verified header by header as bytes arrive, in
//! both result forms, and a 10,000-row history hashed into a status, all in a session whose line
//! buffer (1 KiB) is far smaller than the responses.

use electrum_spv_core::chain::{Anchor, HeaderVerifier, MAINNET};
use electrum_spv_core::hash::{Txid, sha256d};
use electrum_spv_core::hex;
use electrum_spv_core::script::{StatusHasher, TxHeight};
use electrum_spv_core::session::stream::ResponseStream;
use electrum_spv_core::session::{
    Config, Event, Notification, ProtocolError, Request, RequestError, Session, SessionStorage,
    StreamKind,
};

/// A firmware-sized session: 1 KiB line buffer, 1 KiB output, 4 requests in flight.
type Small = Session<'static>;

/// A session with 1 KiB buffers and 4 requests in flight, as a small device would give it.
fn small(config: Config, now: electrum_spv_core::time::Instant) -> Small {
    Session::new(SessionStorage::owned(1024, 1024, 4), config, now)
}

const START: u32 = 822_528;
const GENESIS: &str = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";

fn headers() -> Vec<[u8; 80]> {
    let raw = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/mainnet/headers_822528_830592.bin"
    ))
    .expect("bundled headers");
    raw.chunks_exact(80)
        .take(2016)
        .map(|c| c.try_into().unwrap())
        .collect()
}

fn hexs(b: &[u8]) -> String {
    let mut out = vec![0u8; b.len() * 2];
    hex::encode_to_slice(b, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// A session negotiated at `version` with canned ElectrumX replies (padding included).
fn ready(version: &str) -> Small {
    let mut s = small(Config::new(&MAINNET), at(0));
    let mut out = [0u8; 1024];
    let _ = s.poll_transmit(&mut out);
    let replies = format!(
        "{{\"jsonrpc\":\"2.0\",\"result\":[\"ElectrumX 2.0.0\",\"{version}\"],\"id\":0     }}\n\
         {{\"jsonrpc\":\"2.0\",\"result\":{{\"genesis_hash\":\"{GENESIS}\",\"protocol_min\":\"1.4\"}},\"id\":1}}\n"
    );
    feed(&mut s, replies.as_bytes(), 7, |_| {});
    assert!(s.is_ready(), "negotiated");
    let _ = s.poll_transmit(&mut out);
    s
}

/// Feeds `bytes` in pieces of `step`, draining events into `f` (as owned Debug strings).
fn feed(s: &mut Small, bytes: &[u8], step: usize, mut f: impl FnMut(&Event<'_>)) {
    for piece in bytes.chunks(step) {
        let mut rest = piece;
        while !rest.is_empty() {
            let used = s.handle_input(at(1), rest);
            // The contract: fed with its events drained, the session takes a byte.
            assert!(
                used > 0,
                "handle_input took nothing of {} bytes",
                rest.len()
            );
            rest = &rest[used..];
            while let Some(ev) = s.poll_event() {
                f(&ev);
            }
        }
    }
}

fn headers_response(id: u64, hs: &[[u8; 80]], list_form: bool) -> String {
    let body = if list_form {
        let items: Vec<String> = hs.iter().map(|h| format!("\"{}\"", hexs(h))).collect();
        format!("\"headers\":[{}]", items.join(","))
    } else {
        format!(
            "\"hex\":\"{}\"",
            hs.iter().map(|h| hexs(h)).collect::<String>()
        )
    };
    format!(
        "{{\"jsonrpc\":\"2.0\",\"result\":{{\"count\":{},{body},\"max\":2016}},\"id\":{id}          }}\n",
        hs.len()
    )
}

#[test]
fn a_real_period_streams_and_verifies_header_by_header_in_both_forms() {
    let hs = headers();
    for (version, list_form) in [("1.6", true), ("1.4", false)] {
        for step in [1usize, 7, 160, 1000, 65_536] {
            let mut s = ready(version);
            let id = s
                .request_streamed(
                    at(1),
                    &Request::BlockHeaders {
                        start_height: START,
                        count: 2016,
                        cp_height: 0,
                    },
                    9,
                )
                .unwrap();
            assert_eq!(
                s.request(at(1), &Request::Features, 0),
                Err(RequestError::Busy),
                "nothing else while streaming"
            );
            let mut verifier =
                HeaderVerifier::new(&MAINNET, Anchor::at_height(&MAINNET, START).unwrap());
            let (mut seen, mut ended, mut notified) = (0u32, None, false);
            // A tip notification arrives before the response and is delivered as usual.
            let notification = format!(
                "{{\"jsonrpc\":\"2.0\",\"method\":\"blockchain.headers.subscribe\",\"params\":[{{\"hex\":\"{}\",\"height\":{}}}]}}\n",
                hexs(&hs[5]),
                START + 5
            );
            let stream = notification + &headers_response(id, &hs, list_form);
            feed(&mut s, stream.as_bytes(), step, |ev| match *ev {
                Event::StreamHeader {
                    id: i,
                    tag,
                    height,
                    header,
                } => {
                    assert_eq!((i, tag, height), (id, 9, START + seen));
                    verifier.push(&header).unwrap_or_else(|e| panic!("{e}"));
                    seen += 1;
                }
                Event::StreamEnd { id: i, items, .. } => ended = Some((i, items)),
                Event::Notification(Notification::Header { height, header }) => {
                    assert_eq!((height, header), (START + 5, hs[5]));
                    notified = true;
                }
                ref other => panic!("unexpected {other:?}"),
            });
            assert_eq!(ended, Some((id, 2016)), "version {version}, step {step}");
            assert!(notified);
            assert_eq!(verifier.tip().unwrap().height, START + 2015);
            assert_eq!(s.in_flight(), 0);
            // The session is usable again.
            s.request(at(1), &Request::Features, 0).unwrap();
        }
    }
}

#[test]
fn a_forged_or_misshapen_chunk_is_refused() {
    let hs = headers();
    // A header one digit short.
    let mut s = ready("1.6");
    let id = s
        .request_streamed(
            at(1),
            &Request::BlockHeaders {
                start_height: START,
                count: 3,
                cp_height: 0,
            },
            0,
        )
        .unwrap();
    let good = headers_response(id, &hs[..3], true);
    let bad = good.replacen(&hexs(&hs[1]), &hexs(&hs[1])[1..], 1);
    let mut events = Vec::new();
    feed(&mut s, bad.as_bytes(), 13, |ev| {
        events.push(format!("{ev:?}"))
    });
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[0].starts_with("StreamHeader"));
    assert!(events[1].contains("StreamFailed"), "{events:?}");
    // A count that disagrees with the headers sent.
    let mut s = ready("1.6");
    let id = s
        .request_streamed(
            at(1),
            &Request::BlockHeaders {
                start_height: START,
                count: 3,
                cp_height: 0,
            },
            0,
        )
        .unwrap();
    let lying = headers_response(id, &hs[..3], true).replacen("\"count\":3", "\"count\":4", 1);
    let mut failed = false;
    feed(&mut s, lying.as_bytes(), 100, |ev| {
        failed |= matches!(ev, Event::ProtocolError(ProtocolError::StreamFailed { .. }))
    });
    assert!(failed);
    // A server error instead of a result keeps its code and message.
    let mut s = ready("1.6");
    let id = s
        .request_streamed(
            at(1),
            &Request::BlockHeaders {
                start_height: 9_999_999,
                count: 1,
                cp_height: 0,
            },
            0,
        )
        .unwrap();
    let err = format!(
        "{{\"jsonrpc\":\"2.0\",\"error\":{{\"code\":1,\"message\":\"height 9,999,999 out of range\"}},\"id\":{id}}}\n"
    );
    let mut got = None;
    feed(&mut s, err.as_bytes(), 5, |ev| {
        if let Event::ServerError { error, .. } = ev {
            got = Some((error.code, error.message.to_vec()));
        }
    });
    assert_eq!(
        got,
        Some((Some(1), b"height 9,999,999 out of range".to_vec()))
    );
    s.request(at(1), &Request::Features, 0)
        .expect("usable after a server error");
}

fn history_line(id: u64, n: usize, nested: bool) -> (String, Vec<(Txid, i64)>) {
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for i in 0..n {
        let txid = Txid::from_byte_array(sha256d(&(i as u64).to_le_bytes()));
        let (height, fee) = if i + 3 >= n {
            (if i + 1 == n { -1 } else { 0 }, Some(200 + i))
        } else {
            (100 + i as i64 / 3, None)
        };
        rows.push((txid, height));
        let fee = fee.map(|f| format!(",\"fee\":{f}")).unwrap_or_default();
        items.push(format!(
            "{{\"tx_hash\":\"{txid}\",\"height\":{height}{fee}}}"
        ));
    }
    let list = format!("[{}]", items.join(","));
    let result = if nested {
        format!("{{\"history\":{list}}}")
    } else {
        list
    };
    (
        format!("{{\"jsonrpc\":\"2.0\",\"result\":{result},\"id\":{id}}}\n"),
        rows,
    )
}

#[test]
fn a_10000_row_history_streams_into_the_status_hasher() {
    for (version, nested) in [("1.6", false), ("1.7", true)] {
        let mut s = {
            let mut s = small(
                Config {
                    versions: electrum_spv_core::rpc::VersionRange::WITH_1_7,
                    ..Config::new(&MAINNET)
                },
                at(0),
            );
            let mut out = [0u8; 1024];
            let _ = s.poll_transmit(&mut out);
            let replies = format!(
                "{{\"jsonrpc\":\"2.0\",\"result\":[\"ElectrumX 2.0.0\",\"{version}\"],\"id\":0}}\n{{\"jsonrpc\":\"2.0\",\"result\":{{\"genesis_hash\":\"{GENESIS}\"}},\"id\":1}}\n"
            );
            feed(&mut s, replies.as_bytes(), 64, |_| {});
            s
        };
        let spk = [
            0x00, 0x14, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
        ];
        let id = s
            .request_streamed(at(1), &Request::ScriptGetHistory(&spk), 3)
            .unwrap();
        let (line, rows) = history_line(id, 10_000, nested);
        let mut expected = StatusHasher::new();
        for (t, h) in &rows {
            expected.push(t, TxHeight::from_i64(*h).unwrap());
        }
        let mut hasher = StatusHasher::new();
        let mut streamed = Vec::new();
        let mut end = None;
        feed(&mut s, line.as_bytes(), 4096, |ev| match *ev {
            Event::StreamHistoryItem { item, .. } => {
                hasher.push(&item.txid, item.height);
                streamed.push((item.txid, item.height.to_i64()));
            }
            Event::StreamEnd { items, .. } => end = Some(items),
            ref other => panic!("{other:?}"),
        });
        assert_eq!(end, Some(10_000), "{version}");
        assert_eq!(streamed, rows);
        assert_eq!(hasher.finish(), expected.finish());
    }
}

#[test]
fn streaming_state_is_small() {
    let stream = core::mem::size_of::<ResponseStream>();
    let session = core::mem::size_of::<Small>();
    println!("size_of::<ResponseStream>() = {stream}, size_of::<Session>() = {session}");
    assert!(stream <= 768, "ResponseStream is {stream} bytes");
    // The bound documented on `Session`: its state, whatever the caller's buffers.
    const SESSION_OVERHEAD: usize = electrum_spv_core::session::SESSION_OVERHEAD;
    assert!(session <= SESSION_OVERHEAD, "Session is {session} bytes");
    let _ = StreamKind::History;
}

#[test]
fn an_oversize_notification_before_a_streamed_reply_does_not_derail_it() {
    // A notification longer than the line buffer (it carries `method`, so it ends nothing),
    // then the streamed reply, in reads of several sizes.
    let note = format!(
        "{{\"jsonrpc\":\"2.0\",\"method\":\"blockchain.headers.subscribe\",\"params\":[{{\"hex\":\"{}\",\"height\":1}}]}}\n",
        "00".repeat(2000)
    );
    for step in [1, 100, 4096] {
        let mut s = ready("1.6");
        let id = s
            .request_streamed(at(1), &Request::ScriptGetHistory(&[0x51]), 3)
            .unwrap();
        let (line, rows) = history_line(id, 50, false);
        let input = format!("{note}{line}");
        let mut got = Vec::new();
        let mut oversize = None;
        let mut end = None;
        feed(&mut s, input.as_bytes(), step, |ev| match *ev {
            Event::ProtocolError(ProtocolError::OversizeLine { len }) => oversize = Some(len),
            Event::StreamHistoryItem { item, .. } => got.push((item.txid, item.height.to_i64())),
            Event::StreamEnd { items, .. } => end = Some(items),
            ref other => panic!("{other:?}"),
        });
        assert_eq!(oversize, Some(note.len() - 1), "step {step}");
        assert_eq!(end, Some(50), "step {step}");
        assert_eq!(got, rows, "step {step}");
        assert_eq!(s.in_flight(), 0);
    }
}

/// Caller time `ms` milliseconds after the origin.
fn at(ms: u64) -> electrum_spv_core::time::Instant {
    electrum_spv_core::time::Instant::from_millis(ms)
}
