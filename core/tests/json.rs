//! The JSON layer against ElectrumX-shaped lines: framing, tokenizing split at every byte,
//! envelopes, decode helpers, the request writer, and hostile input.

mod common;

use electrum_spv_core::hex;
use electrum_spv_core::json::decode::{
    self, ArrayIter, ObjectIter, bool_of, display_hash_of, from_span, hex_array_of, hex_into,
    i64_of, is_null, str_of, u64_of,
};
use electrum_spv_core::json::{
    DecodeError, EncodeError, Envelope, Frame, Id, JsonError, JsonErrorKind, LineFramer, MAX_DEPTH,
    MAX_NUMBER_LEN, Message, RequestWriter, Token, Tokenizer, decode_error, scan, unescape_into,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Fixtures

fn header_hexes(n: usize) -> Vec<String> {
    common::read("mainnet/headers_0_10236.bin")
        .chunks_exact(80)
        .take(n)
        .map(|h| h.iter().map(|b| format!("{b:02x}")).collect())
        .collect()
}

const GENESIS_DISPLAY: &str = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";

/// Real-shaped server lines (no newline), as ElectrumX 1.18+/2.0 writes them (`result` before
/// `id`, `", "` and `": "` separators, padding spaces before the last closing bracket).
fn fixtures() -> Vec<String> {
    let h = header_hexes(3);
    vec![
        // blockchain.block.headers, protocol >= 1.6
        format!(
            r#"{{"jsonrpc": "2.0", "result": {{"count": 3, "headers": ["{}", "{}", "{}"], "max": 2016}}, "id": 5}}"#,
            h[0], h[1], h[2]
        ),
        // blockchain.block.headers, protocol < 1.6
        format!(
            r#"{{"jsonrpc": "2.0", "result": {{"hex": "{}{}", "count": 2, "max": 2016}}, "id": 6}}"#,
            h[0], h[1]
        ),
        // history
        format!(
            r#"{{"jsonrpc": "2.0", "result": [{{"tx_hash": "{GENESIS_DISPLAY}", "height": 200}}, {{"tx_hash": "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b", "height": 0, "fee": 225}}], "id": 7}}"#
        ),
        // notification
        format!(
            r#"{{"jsonrpc": "2.0", "method": "blockchain.headers.subscribe", "params": [{{"hex": "{}", "height": 0}}]}}"#,
            h[0]
        ),
        // error object (aiorpcX's message, missing parenthesis and all)
        r#"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "response too large (over 8,100,000 bytes"}, "id": 8}"#.into(),
        // plain string error, old Blockstream electrs
        r#"{"id":9,"jsonrpc":"2.0","error":"unknown method \"blockchain.foo\" \u00e9\ud83d\ude00"}"#.into(),
        // batch reply in completion order
        r#"[{"jsonrpc": "2.0", "result": 0.00001, "id": 12}, {"jsonrpc": "2.0", "error": {"code": 1, "message": "bad"}, "id": 10}, {"jsonrpc": "2.0", "result": "abc", "id": 11}]"#.into(),
        // padding before } and ]
        r#"{"jsonrpc": "2.0", "result": [1, 2, {"a": []                    }          ], "id": 13                                        }"#.into(),
        r#"[{"jsonrpc": "2.0", "result": null, "id": 14}                                  ]"#.into(),
        // server.version, JSON-RPC 1.0 style reply with both members
        r#"{"result": ["ElectrumX 2.0.0", "1.7"], "error": null, "id": 0}"#.into(),
    ]
}

// ---------------------------------------------------------------------------------------------
// Tokenizer helpers

/// Owned token, string/number chunks merged.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Str(bool, Vec<u8>),
    Num(Vec<u8>),
    Other(String),
}

/// Tokenizes `pieces` in order; returns merged tokens or the first error.
fn tokenize(pieces: &[&[u8]]) -> Result<Vec<Tok>, JsonError> {
    let mut tok = Tokenizer::new();
    let mut out = Vec::new();
    let mut open: Option<Tok> = None;
    let mut handle = |t: Token<'_>, out: &mut Vec<Tok>| match t {
        Token::StrStart { key } => open = Some(Tok::Str(key, Vec::new())),
        Token::StrChunk(c) => match &mut open {
            Some(Tok::Str(_, v)) => v.extend_from_slice(c),
            _ => panic!("chunk outside string"),
        },
        Token::NumChunk(c) => match &mut open {
            Some(Tok::Num(v)) => v.extend_from_slice(c),
            None => open = Some(Tok::Num(c.to_vec())),
            _ => panic!("number chunk inside string"),
        },
        Token::StrEnd | Token::NumEnd => out.push(open.take().expect("open value")),
        other => out.push(Tok::Other(format!("{other:?}"))),
    };
    for piece in pieces {
        let mut rest = *piece;
        while !rest.is_empty() {
            let (n, t) = tok.next(rest)?;
            assert!(n <= rest.len());
            if let Some(t) = t {
                if let Token::StrChunk(c) | Token::NumChunk(c) = t {
                    assert!(!c.is_empty());
                }
                handle(t, &mut out);
            } else {
                assert!(n > 0, "no progress");
            }
            rest = &rest[n..];
        }
    }
    if let Some(t) = tok.finish()? {
        handle(t, &mut out);
    }
    assert!(tok.is_done());
    Ok(out)
}

fn tokens(input: &[u8]) -> Result<Vec<Tok>, JsonError> {
    tokenize(&[input])
}

fn err(input: &[u8]) -> JsonError {
    tokens(input).expect_err("must fail")
}

fn single(line: &[u8]) -> Envelope<'_> {
    match scan(line).expect("scan") {
        Message::Single(e) => e,
        Message::Batch(_) => panic!("unexpected batch"),
    }
}

fn scan_err(line: &[u8]) -> JsonError {
    scan(line).map(|_| ()).expect_err("must fail")
}

// ---------------------------------------------------------------------------------------------
// Split at every byte boundary

#[test]
fn tokens_are_the_same_split_at_every_byte() {
    for line in fixtures() {
        let line = line.as_bytes();
        let whole = tokens(line).unwrap();
        serde_json::from_slice::<serde_json::Value>(line).expect("fixture is valid JSON");
        for i in 0..=line.len() {
            assert_eq!(
                tokenize(&[&line[..i], &line[i..]]).unwrap(),
                whole,
                "split at {i}"
            );
        }
        let bytes: Vec<&[u8]> = line.chunks(1).collect();
        assert_eq!(tokenize(&bytes).unwrap(), whole);
        for k in [2, 3, 7, 64] {
            let pieces: Vec<&[u8]> = line.chunks(k).collect();
            assert_eq!(tokenize(&pieces).unwrap(), whole);
        }
    }
}

#[test]
fn errors_are_the_same_split_at_every_byte() {
    let bad: [&[u8]; 12] = [
        b"{\"a\": \"\xe2\x82\"}",
        b"{\"a\": \"\xf0\x9f\x98\x80\xed\xa0\x80\"}",
        br#"["\uD83D\u0041"]"#,
        br#"["\uDE00"]"#,
        br#"["\q"]"#,
        br#"["\u12x4"]"#,
        b"[1, 2,]",
        b"[01]",
        b"{\"id\": 1} x",
        b"[\"a\x1fb\"]",
        b"[true, fals]",
        b"{\"a\" 1}",
    ];
    for line in bad {
        let e = err(line);
        for i in 0..=line.len() {
            assert_eq!(
                tokenize(&[&line[..i], &line[i..]]),
                Err(e),
                "{line:?} split at {i}"
            );
        }
        let bytes: Vec<&[u8]> = line.chunks(1).collect();
        assert_eq!(tokenize(&bytes), Err(e));
        assert!(serde_json::from_slice::<serde_json::Value>(line).is_err());
    }
}

/// Frames and envelopes of a stream of real lines (some `\r\n`, blank lines, an over-long
/// line) fed in two pieces split at every byte, and byte by byte.
#[test]
fn frames_are_the_same_split_at_every_byte() {
    let mut stream = Vec::new();
    for (i, line) in fixtures().iter().enumerate() {
        stream.extend_from_slice(line.as_bytes());
        stream.extend_from_slice(if i % 2 == 0 { b"\n" } else { b"\r\n" });
        if i == 3 {
            stream.extend_from_slice(b"\n   \r\n");
            stream.extend_from_slice(&[b'x'; 2000]);
            stream.push(b'\n');
        }
    }
    fn run(stream_pieces: &[&[u8]]) -> Vec<Result<Vec<u8>, usize>> {
        let mut line_buffer = [0u8; 1024];
        let mut framer = LineFramer::new(&mut line_buffer);
        let mut out = Vec::new();
        for piece in stream_pieces {
            let mut rest = *piece;
            while !rest.is_empty() {
                let (n, f) = framer.push(rest);
                assert!(n > 0 && n <= rest.len());
                match f {
                    Some(Frame::Line(l)) => {
                        // Each frame scans like the fixture it came from.
                        scan(l).expect("scan frame");
                        out.push(Ok(l.to_vec()));
                    }
                    Some(Frame::Oversize { len, .. }) => out.push(Err(len)),
                    None => {}
                }
                assert!(framer.buffered() <= 1024);
                rest = &rest[n..];
            }
        }
        assert_eq!(framer.buffered(), 0);
        out
    }
    let whole = run(&[&stream]);
    let fx = fixtures();
    assert_eq!(whole.len(), fx.len() + 1);
    let lines: Vec<&[u8]> = whole.iter().filter_map(|r| r.as_deref().ok()).collect();
    let expected: Vec<&[u8]> = fx
        .iter()
        .map(|l| l.as_bytes())
        .filter(|l| l.len() <= 1024)
        .collect();
    assert_eq!(lines, expected);
    assert!(whole.contains(&Err(2000)));
    for i in 0..=stream.len() {
        assert_eq!(run(&[&stream[..i], &stream[i..]]), whole, "split at {i}");
    }
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(run(&bytes), whole);
}

// ---------------------------------------------------------------------------------------------
// Framer

#[test]
fn oversize_line_is_rejected_before_buffering_and_resyncs() {
    let mut line_buffer = [0u8; 16];
    let mut f = LineFramer::new(&mut line_buffer);
    assert_eq!(f.max_line(), 16);
    // 40 bytes without a newline: the framer must not hold them.
    let (n, fr) = f.push(&[b'a'; 40]);
    assert_eq!((n, fr), (40, None));
    assert!(f.is_discarding());
    assert_eq!(f.buffered(), 0);
    let (n, fr) = f.push(b"bbb\n{\"id\":1}\n");
    assert_eq!(
        (n, fr),
        (
            4,
            Some(Frame::Oversize {
                len: 43,
                head: b"aaaaaaaa",
                tail: b"aaaaabbb"
            })
        )
    );
    let (n, fr) = f.push(b"{\"id\":1}\n");
    assert_eq!((n, fr), (9, Some(Frame::Line(b"{\"id\":1}"))));
    // Exactly the cap is fine; one more is not.
    let line = [b'1'; 16];
    assert_eq!(f.push(&line).1, None);
    assert_eq!(f.buffered(), 16);
    assert_eq!(f.push(b"\r\n").1, Some(Frame::Line(&line[..])));
    assert_eq!(f.push(&[b'1'; 17]).1, None);
    assert!(matches!(
        f.push(b"\n").1,
        Some(Frame::Oversize { len: 17, .. })
    ));
    // Reset drops a partial line.
    f.push(b"abc");
    f.reset();
    assert_eq!(f.push(b"{}\n").1, Some(Frame::Line(b"{}")));
}

#[test]
fn several_messages_per_read_and_blank_lines() {
    let mut line_buffer = [0u8; 64];
    let mut f = LineFramer::new(&mut line_buffer);
    let mut rest: &[u8] = b"\n\r\n  \t \n{\"a\":1}\n[2]\r\n{\"b\"";
    let mut lines = Vec::new();
    while !rest.is_empty() {
        let (n, fr) = f.push(rest);
        if let Some(Frame::Line(l)) = fr {
            lines.push(l.to_vec());
        }
        rest = &rest[n..];
    }
    assert_eq!(lines, [b"{\"a\":1}".to_vec(), b"[2]".to_vec()]);
    assert_eq!(f.buffered(), 4);
}

// ---------------------------------------------------------------------------------------------
// Tokenizer: hostile and edge input

#[test]
fn deep_nesting_is_too_deep_without_recursion() {
    let deep = "[".repeat(10_000);
    assert_eq!(
        err(deep.as_bytes()),
        JsonError {
            offset: MAX_DEPTH,
            kind: JsonErrorKind::TooDeep
        }
    );
    assert_eq!(scan_err(deep.as_bytes()).kind, JsonErrorKind::TooDeep);
    let deep_obj = "{\"a\":".repeat(10_000);
    assert_eq!(err(deep_obj.as_bytes()).kind, JsonErrorKind::TooDeep);
    assert_eq!(scan_err(deep_obj.as_bytes()).kind, JsonErrorKind::TooDeep);
    // Inside a result: scan refuses the line before anything decodes it.
    let line = format!("{{\"id\":1,\"result\":{}}}", "[".repeat(10_000));
    assert_eq!(scan_err(line.as_bytes()).kind, JsonErrorKind::TooDeep);
    // The decode helpers validate depth before serde-json-core recurses.
    let closed = "[".repeat(10_000) + &"]".repeat(10_000);
    assert!(matches!(
        from_span::<serde::de::IgnoredAny>(closed.as_bytes()),
        Err(DecodeError::Json(JsonError {
            kind: JsonErrorKind::TooDeep,
            ..
        }))
    ));
    assert!(matches!(
        ArrayIter::new(closed.as_bytes()),
        Err(DecodeError::Json(_))
    ));
    // The limit itself is fine.
    let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
    assert!(tokens(ok.as_bytes()).is_ok());
}

#[test]
fn invalid_utf8_and_surrogates() {
    for (bad, kind) in [
        (&b"[\"\xff\"]"[..], JsonErrorKind::InvalidUtf8),
        (b"[\"\xc0\xaf\"]", JsonErrorKind::InvalidUtf8), // overlong '/'
        (b"[\"\xed\xa0\x80\"]", JsonErrorKind::InvalidUtf8), // encoded surrogate
        (b"[\"\xf4\x90\x80\x80\"]", JsonErrorKind::InvalidUtf8), // above U+10FFFF
        (b"[\"\xe2\x82\"]", JsonErrorKind::InvalidUtf8), // truncated
        (br#"["\ud800"]"#, JsonErrorKind::LoneSurrogate),
        (br#"["\udc00\ud800"]"#, JsonErrorKind::LoneSurrogate),
        (br#"["\ud800\ud800"]"#, JsonErrorKind::LoneSurrogate),
        (br#"["\ud800\n"]"#, JsonErrorKind::LoneSurrogate),
    ] {
        assert_eq!(err(bad).kind, kind, "{bad:?}");
        assert_eq!(scan_err(bad).kind, kind);
    }
    assert_eq!(err(b"[\"ab\xff\"]").offset, 4);
    assert!(tokens("[\"é€😀\u{7f}\"]".as_bytes()).is_ok());
}

#[test]
fn bad_escapes_numbers_literals_and_trailing_data() {
    for bad in [
        r#"["\a"]"#,
        r#"["\u"]"#,
        r#"["\u00"]"#,
        r#"["\u00G0"]"#,
        r#"["\U0041"]"#,
    ] {
        assert_eq!(
            err(bad.as_bytes()).kind,
            JsonErrorKind::InvalidEscape,
            "{bad}"
        );
    }
    let huge = "9".repeat(MAX_NUMBER_LEN + 1);
    assert_eq!(
        err(format!("[{huge}]").as_bytes()),
        JsonError {
            offset: 1 + MAX_NUMBER_LEN,
            kind: JsonErrorKind::NumberTooLong
        }
    );
    assert_eq!(
        scan_err(format!("{{\"id\":{huge}}}").as_bytes()).kind,
        JsonErrorKind::NumberTooLong
    );
    for bad in [
        "[1.]",
        "[-]",
        "[+1]",
        "[.5]",
        "[1e]",
        "[00]",
        "[0x10]",
        "[NaN]",
        "[Infinity]",
    ] {
        assert!(
            matches!(err(bad.as_bytes()).kind, JsonErrorKind::UnexpectedByte(_)),
            "{bad}"
        );
    }
    assert_eq!(
        err(b"{\"id\": 1}\n{\"id\": 2}"),
        JsonError {
            offset: 10,
            kind: JsonErrorKind::TrailingData
        }
    );
    assert_eq!(scan_err(b"{\"id\": 1} }").kind, JsonErrorKind::TrailingData);
    assert_eq!(
        scan_err(b"[{\"id\": 1}] x").kind,
        JsonErrorKind::TrailingData
    );
    assert_eq!(scan_err(b"{\"id\": 1").kind, JsonErrorKind::Incomplete);
    assert_eq!(scan_err(b"").kind, JsonErrorKind::Incomplete);
    assert_eq!(scan_err(b"   ").kind, JsonErrorKind::Incomplete);
    // Whitespace around the value is fine, including what framing leaves behind.
    assert!(scan(b" \t{\"id\": 1}  \r").is_ok());
}

/// Differential check against serde_json on short inputs from a JSON-ish alphabet (short
/// enough to stay within MAX_DEPTH and MAX_NUMBER_LEN, where both must agree).
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let pieces: Vec<&'static [u8]> = vec![
        b"[", b"]", b"{", b"}", b",", b":", b"\"", b"\"a\"", b"\"k\":", b"0", b"1", b"-", b".",
        b"e", b"+", b" ", b"true", b"null", b"fals", b"\\", b"\\u", b"d83d", b"de00", b"00e9",
        b"\xc3", b"\xa9", b"\x01", b"\\n",
    ];
    proptest::collection::vec(proptest::sample::select(pieces), 0..16).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn agrees_with_serde_json(input in jsonish()) {
        let ours = tokens(&input).is_ok();
        let theirs = serde_json::from_slice::<serde_json::Value>(&input).is_ok();
        prop_assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(&input));
    }

    #[test]
    fn any_split_gives_the_same_result(input in jsonish(), at in any::<prop::sample::Index>()) {
        let i = at.index(input.len() + 1);
        prop_assert_eq!(tokenize(&[&input[..i], &input[i..]]), tokens(&input));
    }
}

// ---------------------------------------------------------------------------------------------
// Envelope

#[test]
fn envelopes_of_the_fixtures() {
    let fx = fixtures();
    let h = header_hexes(3);

    let env = single(fx[0].as_bytes());
    assert_eq!(env.id, Some(Id::Num(5)));
    assert_eq!(env.jsonrpc, Some(&b"2.0"[..]));
    assert_eq!(env.method, None);
    let result = env.result.unwrap();
    assert!(result.starts_with(b"{\"count\": 3") && result.ends_with(b"\"max\": 2016}"));
    let headers = ObjectIter::field(result, "headers").unwrap().unwrap();
    let got: Vec<[u8; 80]> = ArrayIter::new(headers)
        .unwrap()
        .map(|s| hex_array_of::<80>(s).unwrap())
        .collect();
    let want: Vec<[u8; 80]> = h
        .iter()
        .map(|s| hex::decode_array(s.as_bytes()).unwrap())
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        u64_of(ObjectIter::field(result, "count").unwrap().unwrap()),
        Ok(3)
    );

    let env = single(fx[1].as_bytes());
    assert_eq!(env.id, Some(Id::Num(6)));
    let hex_span = ObjectIter::field(env.result.unwrap(), "hex")
        .unwrap()
        .unwrap();
    let mut buf = [0u8; 200];
    let raw = hex_into(hex_span, &mut buf).unwrap();
    assert_eq!(raw.len(), 160);
    assert_eq!(raw[..80], want[0]);

    // History: typed decode of each item with serde-json-core.
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Item<'a> {
        tx_hash: &'a str,
        height: i64,
        fee: Option<u64>,
    }
    let env = single(fx[2].as_bytes());
    let items: Vec<Item> = ArrayIter::new(env.result.unwrap())
        .unwrap()
        .map(|s| from_span(s).unwrap())
        .collect();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].tx_hash, GENESIS_DISPLAY);
    assert_eq!((items[1].height, items[1].fee), (0, Some(225)));
    let genesis = display_hash_of(
        ObjectIter::field(
            ArrayIter::new(env.result.unwrap()).unwrap().next().unwrap(),
            "tx_hash",
        )
        .unwrap()
        .unwrap(),
    )
    .unwrap();
    assert_eq!(genesis[31], 0x00);
    assert_eq!(genesis[0], 0x6f);
    // Whole result as a heapless::Vec.
    let all: heapless::Vec<Item, 4> = from_span(env.result.unwrap()).unwrap();
    assert_eq!(all.len(), 2);

    // Notification.
    let env = single(fx[3].as_bytes());
    assert!(env.is_notification());
    assert_eq!(env.method, Some(&b"blockchain.headers.subscribe"[..]));
    let params = env.params.unwrap();
    let first = ArrayIter::new(params).unwrap().next().unwrap();
    assert_eq!(
        u64_of(ObjectIter::field(first, "height").unwrap().unwrap()),
        Ok(0)
    );

    // Error object.
    let env = single(fx[4].as_bytes());
    assert_eq!(env.result, None);
    let e = decode_error(env.error_value().unwrap()).unwrap();
    assert_eq!(e.code, Some(-32600));
    assert_eq!(e.message, b"response too large (over 8,100,000 bytes");
    assert_eq!(e.data, None);

    // Plain string error, with escapes.
    let env = single(fx[5].as_bytes());
    assert_eq!(env.id, Some(Id::Num(9)));
    let e = decode_error(env.error.unwrap()).unwrap();
    assert_eq!(e.code, None);
    let mut out = [0u8; 64];
    assert_eq!(
        e.message_into(&mut out).unwrap(),
        "unknown method \"blockchain.foo\" é😀"
    );

    // Batch in completion order: match by id.
    let Message::Batch(batch) = scan(fx[6].as_bytes()).unwrap() else {
        panic!("batch expected")
    };
    assert_eq!(batch.len(), 3);
    let mut by_id: Vec<(u64, Envelope)> = batch
        .map(|e| {
            let e = e.unwrap();
            let Some(Id::Num(id)) = e.id else { panic!() };
            (id, e)
        })
        .collect();
    by_id.sort_by_key(|(id, _)| *id);
    assert_eq!(by_id[0].0, 10);
    assert_eq!(
        decode_error(by_id[0].1.error.unwrap()).unwrap().code,
        Some(1)
    );
    assert_eq!(str_of(by_id[1].1.result.unwrap()), Ok(&b"abc"[..]));
    let fee: f64 = from_span(by_id[2].1.result.unwrap()).unwrap();
    assert_eq!(fee, 0.00001);

    // Padding: spans exclude it.
    let env = single(fx[7].as_bytes());
    assert_eq!(env.id, Some(Id::Num(13)));
    let r = env.result.unwrap();
    assert!(r.starts_with(b"[1, 2, {") && r.ends_with(b"]"));
    let v: Vec<&[u8]> = ArrayIter::new(r).unwrap().collect();
    assert_eq!(v.len(), 3);
    assert!(v[2].ends_with(b"}"));
    let Message::Batch(mut b) = scan(fx[8].as_bytes()).unwrap() else {
        panic!()
    };
    let e = b.next().unwrap().unwrap();
    assert!(is_null(e.result.unwrap()));
    assert!(b.next().is_none());

    // 1.0-style reply: error null is no error.
    let env = single(fx[9].as_bytes());
    assert_eq!(env.id, Some(Id::Num(0)));
    assert_eq!(env.error, Some(&b"null"[..]));
    assert_eq!(env.error_value(), None);
    let version: (&str, &str) = from_span(env.result.unwrap()).unwrap();
    assert_eq!(version, ("ElectrumX 2.0.0", "1.7"));
}

#[test]
fn ids_that_are_not_ours() {
    for (id, want) in [
        ("0", Id::Num(0)),
        ("18446744073709551615", Id::Num(u64::MAX)),
        ("18446744073709551616", Id::Other),
        ("-1", Id::Other),
        ("-0", Id::Other),
        ("1.5", Id::Other),
        ("1.0", Id::Other),
        ("1e3", Id::Other),
        ("\"7\"", Id::Other),
        ("null", Id::Null),
        ("[7]", Id::Other),
        ("{\"id\": 7}", Id::Other),
        ("false", Id::Other),
    ] {
        let line = format!("{{\"result\": 1, \"id\": {id}}}");
        assert_eq!(single(line.as_bytes()).id, Some(want), "{id}");
    }
}

#[test]
fn duplicate_and_unknown_keys() {
    assert_eq!(
        scan_err(br#"{"id": 1, "result": 2, "id": 3}"#),
        JsonError {
            offset: 23,
            kind: JsonErrorKind::DuplicateKey
        }
    );
    for k in ["result", "error", "method", "params", "jsonrpc"] {
        let line = format!(r#"{{"{k}": "x", "{k}": "x"}}"#);
        assert_eq!(scan_err(line.as_bytes()).kind, JsonErrorKind::DuplicateKey);
    }
    // Unknown keys, also nested ones, are skipped; duplicates of them are not our business.
    let env = single(br#"{"x": {"id": 5, "id": 6}, "y": [1], "y": 2, "id": 4}"#);
    assert_eq!(env.id, Some(Id::Num(4)));
    // Wrong types where a string is required.
    assert_eq!(scan_err(br#"{"method": 1}"#).kind, JsonErrorKind::WrongType);
    assert_eq!(
        scan_err(br#"{"jsonrpc": 2.0}"#).kind,
        JsonErrorKind::WrongType
    );
    assert_eq!(scan_err(b" 5").kind, JsonErrorKind::WrongType);
    assert_eq!(scan_err(b" 5").offset, 1);
    assert_eq!(scan_err(b"\"x\"").kind, JsonErrorKind::WrongType);
}

#[test]
fn batch_elements_with_problems() {
    let line = br#"[{"id": 1}, 5, {"id": 2, "id": 3}, {"method": 7}, [], {"id": 4}]"#;
    let Message::Batch(b) = scan(line).unwrap() else {
        panic!()
    };
    assert_eq!(b.len(), 6);
    let got: Vec<_> = b.map(|r| r.map(|e| e.id).map_err(|e| e.kind)).collect();
    assert_eq!(
        got,
        [
            Ok(Some(Id::Num(1))),
            Err(JsonErrorKind::WrongType),
            Err(JsonErrorKind::DuplicateKey),
            Err(JsonErrorKind::WrongType),
            Err(JsonErrorKind::WrongType),
            Ok(Some(Id::Num(4))),
        ]
    );
    let Message::Batch(b) = scan(b"[ ]").unwrap() else {
        panic!()
    };
    assert_eq!(b.len(), 0);
    // The whole batch line is validated before anything is returned.
    assert_eq!(
        scan_err(br#"[{"id": 1}, {"id": 2]"#).kind,
        JsonErrorKind::UnexpectedByte(b']')
    );
}

#[test]
fn error_shapes() {
    let e = decode_error(br#"{"message": "m", "code": 2, "data": {"x": [1]}}"#).unwrap();
    assert_eq!(
        (e.code, e.message, e.data),
        (Some(2), &b"m"[..], Some(&br#"{"x": [1]}"#[..]))
    );
    let e = decode_error(br#"{"message": "no code"}"#).unwrap();
    assert_eq!(e.code, None);
    let e = decode_error(br#" {"code": -9223372036854775808} "#).unwrap();
    assert_eq!((e.code, e.message), (Some(i64::MIN), &b""[..]));
    for (bad, kind) in [
        (&br#"{"code": 1.5}"#[..], JsonErrorKind::WrongType),
        (br#"{"code": "1"}"#, JsonErrorKind::WrongType),
        (
            br#"{"code": 9223372036854775808}"#,
            JsonErrorKind::OutOfRange,
        ),
        (br#"{"code": 1, "code": 2}"#, JsonErrorKind::DuplicateKey),
        (br#"{"message": 5}"#, JsonErrorKind::WrongType),
        (b"5", JsonErrorKind::WrongType),
        (b"null", JsonErrorKind::WrongType),
        (b"[1]", JsonErrorKind::WrongType),
        (b"{", JsonErrorKind::Incomplete),
    ] {
        assert_eq!(decode_error(bad).unwrap_err().kind, kind, "{bad:?}");
    }
}

#[test]
fn unescape_edge_cases() {
    let mut out = [0u8; 64];
    assert_eq!(unescape_into(b"", &mut out), Ok(""));
    assert_eq!(
        unescape_into(
            br#"\b\f\n\r\t\"\\\/\u0000\u001f\u20AC\uD834\uDD1E"#,
            &mut out
        ),
        Ok("\u{8}\u{c}\n\r\t\"\\/\u{0}\u{1f}€𝄞")
    );
    for (bad, kind) in [
        (&br"\ud834"[..], JsonErrorKind::LoneSurrogate),
        (br"\udd1e", JsonErrorKind::LoneSurrogate),
        (br"\ud834\u0041", JsonErrorKind::LoneSurrogate),
        (br"\ud834x", JsonErrorKind::LoneSurrogate),
        (br"\x", JsonErrorKind::InvalidEscape),
        (br"\", JsonErrorKind::InvalidEscape),
        (br"\u12", JsonErrorKind::InvalidEscape),
        (br"\u12g4", JsonErrorKind::InvalidEscape),
        (b"a\"", JsonErrorKind::UnexpectedByte(b'"')),
        (b"a\nb", JsonErrorKind::UnexpectedByte(b'\n')),
        (b"\xc3", JsonErrorKind::InvalidUtf8),
        (b"\xed\xa0\x80", JsonErrorKind::InvalidUtf8),
    ] {
        assert_eq!(
            unescape_into(bad, &mut out).unwrap_err().kind,
            kind,
            "{bad:?}"
        );
    }
    // Output exactly big enough, and one byte short, for each prefix of a mixed string.
    let raw = br#"a\u00e9\ud83d\ude00\n\"z"#;
    let want = "aé😀\n\"z";
    assert_eq!(unescape_into(raw, &mut [0u8; 10]).unwrap(), want);
    for n in 0..want.len() {
        assert_eq!(
            unescape_into(raw, &mut vec![0u8; n]).unwrap_err().kind,
            JsonErrorKind::OutputTooSmall
        );
    }
}

proptest! {
    /// serde_json's encoding of any string unescapes back to it.
    #[test]
    fn unescape_inverts_serde_json(s in any::<String>()) {
        let quoted = serde_json::to_string(&s).unwrap();
        let raw = &quoted.as_bytes()[1..quoted.len() - 1];
        let mut out = vec![0u8; s.len()];
        prop_assert_eq!(unescape_into(raw, &mut out).unwrap(), s.as_str());
        // And the tokenizer accepts it.
        prop_assert!(tokens(quoted.as_bytes()).is_ok());
    }
}

// ---------------------------------------------------------------------------------------------
// Decode helpers

#[test]
fn decode_helpers() {
    assert_eq!(u64_of(b"  42 "), Ok(42));
    assert_eq!(u64_of(b"-42"), Err(DecodeError::OutOfRange));
    assert_eq!(u64_of(b"4.2"), Err(DecodeError::WrongType));
    assert_eq!(u64_of(b"true"), Err(DecodeError::WrongType));
    assert!(matches!(u64_of(b"42,"), Err(DecodeError::Json(_))));
    assert_eq!(i64_of(b"-42"), Ok(-42));
    assert_eq!(i64_of(b"9223372036854775807"), Ok(i64::MAX));
    assert_eq!(bool_of(b"false"), Ok(false));
    assert_eq!(bool_of(b"0"), Err(DecodeError::WrongType));
    assert!(is_null(b" null "));
    assert!(!is_null(b"nul"));
    assert_eq!(str_of(br#""a\"b""#), Ok(&br#"a\"b"#[..]));
    assert_eq!(str_of(b"[]"), Err(DecodeError::WrongType));
    assert_eq!(hex_array_of::<2>(b"\"0aFf\""), Ok([0x0a, 0xff]));
    assert!(matches!(
        hex_array_of::<2>(b"\"0aF\""),
        Err(DecodeError::Hex(_))
    ));
    assert!(matches!(
        hex_array_of::<1>(br#""\u0030a""#),
        Err(DecodeError::Hex(_))
    ));
    let g = display_hash_of(format!("\"{GENESIS_DISPLAY}\"").as_bytes()).unwrap();
    let mut back = [0u8; 64];
    hex::encode_reversed_to_slice(&g, &mut back).unwrap();
    assert_eq!(&back[..], GENESIS_DISPLAY.as_bytes());
    let mut out = [0u8; 2];
    assert_eq!(hex_into(b"\"\"", &mut out), Ok(&[][..]));
    assert!(matches!(
        hex_into(b"\"000000\"", &mut out),
        Err(DecodeError::Hex(_))
    ));
    assert!(matches!(
        hex_into(b"\"000\"", &mut out),
        Err(DecodeError::Hex(_))
    ));
    // Iterators.
    assert_eq!(ArrayIter::new(b"[]").unwrap().len(), 0);
    assert_eq!(ArrayIter::new(b"{}").unwrap_err(), DecodeError::WrongType);
    assert!(matches!(ArrayIter::new(b"[1,]"), Err(DecodeError::Json(_))));
    let members: Vec<(&[u8], &[u8])> =
        ObjectIter::new(br#"{"a": [1, {"b": 2}], "c" : "d" , "a": null}"#)
            .unwrap()
            .collect();
    assert_eq!(
        members,
        [
            (&b"a"[..], &br#"[1, {"b": 2}]"#[..]),
            (b"c", br#""d""#),
            (b"a", b"null")
        ]
    );
    assert_eq!(ObjectIter::field(b"{}", "a"), Ok(None));
    assert_eq!(ObjectIter::new(b"[]").unwrap_err(), DecodeError::WrongType);
    assert_eq!(from_span::<u64>(b" 5 "), Ok(5));
    // serde-json-core errors are typed.
    assert!(matches!(
        from_span::<u8>(b"300"),
        Err(DecodeError::Serde(_))
    ));
    assert!(matches!(from_span::<u8>(b"[1"), Err(DecodeError::Json(_))));
    let _ = decode::ArrayIter::new(b"[1]").unwrap();
}

/// A 2016-header `blockchain.block.headers` result streamed through the tokenizer in reads of
/// varying size, with only an 160-byte buffer per header: what a device does with 322 KB.
#[test]
fn stream_a_full_chunk_header_by_header() {
    let hexes = header_hexes(2016);
    let line = format!(
        r#"{{"jsonrpc": "2.0", "result": {{"count": 2016, "headers": [{}], "max": 2016}}, "id": 77}}"#,
        hexes
            .iter()
            .map(|h| format!("\"{h}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(line.len() > 322_000);
    let want = common::read("mainnet/headers_0_10236.bin");
    let mut tok = Tokenizer::new();
    let mut cur = [0u8; 160];
    let (mut fill, mut got, mut in_headers, mut last_key) = (0usize, 0usize, false, Vec::new());
    let mut reads = line.as_bytes();
    let mut size = 1;
    while !reads.is_empty() {
        size = (size * 7 + 3) % 1500 + 1;
        let (read, rest) = reads.split_at(size.min(reads.len()));
        reads = rest;
        let mut rest = read;
        while !rest.is_empty() {
            let (n, t) = tok.next(rest).unwrap();
            rest = &rest[n..];
            match t {
                Some(Token::StrStart { key: true }) => last_key.clear(),
                Some(Token::StrChunk(c)) if tok.depth() == 2 && !in_headers => {
                    last_key.extend_from_slice(c)
                }
                Some(Token::ArrayStart) if last_key == b"headers" => in_headers = true,
                Some(Token::ArrayEnd) if in_headers => in_headers = false,
                Some(Token::StrChunk(c)) if in_headers => {
                    cur[fill..fill + c.len()].copy_from_slice(c);
                    fill += c.len();
                }
                Some(Token::StrEnd) if in_headers => {
                    let h: [u8; 80] = hex::decode_array(&cur[..fill]).unwrap();
                    assert_eq!(h[..], want[got * 80..got * 80 + 80]);
                    got += 1;
                    fill = 0;
                }
                _ => {}
            }
        }
    }
    assert!(tok.is_done());
    assert_eq!(tok.offset(), line.len());
    assert_eq!(got, 2016);
}

// ---------------------------------------------------------------------------------------------
// Writer

fn parse(buf: &[u8]) -> serde_json::Value {
    assert_eq!(buf.last(), Some(&b'\n'));
    assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1);
    serde_json::from_slice(&buf[..buf.len() - 1]).unwrap()
}

const TRICKY: &[&str] = &[
    "",
    "plain",
    "quote \" backslash \\ slash /",
    "\u{0}\u{1}\u{8}\u{9}\u{a}\u{b}\u{c}\u{d}\u{1f}\u{7f}",
    "é € 😀 \u{2028}\u{2029}",
    "\\u0041 not an escape",
    "}]\",\"x\":[",
];

/// A request using every parameter type; the same sequence at every buffer length.
fn write_everything(w: &mut RequestWriter<'_>) -> Result<(), EncodeError> {
    w.begin_batch()?;
    w.begin(u64::MAX, "blockchain.\"odd\"\nmethod")?;
    for s in TRICKY {
        w.str(s)?;
    }
    w.u64(0)?;
    w.u64(u64::MAX)?;
    w.i64(i64::MIN)?;
    w.i64(-1)?;
    w.i64(i64::MAX)?;
    w.bool(true)?;
    w.bool(false)?;
    w.hex(&[0x00, 0xab, 0xcd, 0xef, 0x12])?;
    w.hex_reversed(&[1, 2, 3])?;
    w.hex(&[])?;
    w.str_array(&["1.4", "1.6"])?;
    w.str_array(&[])?;
    w.raw(br#" {"a": [1, 2.5e3, null]} "#)?;
    w.end()?;
    w.begin_notification("server.ping")?;
    w.end()?;
    w.begin(0, "server.version")?;
    w.str_array(TRICKY)?;
    w.end()?;
    w.end_batch()
}

#[test]
fn writer_output_parses_back() {
    let mut buf = vec![0u8; 4096];
    let mut w = RequestWriter::new(&mut buf);
    write_everything(&mut w).unwrap();
    let n = w.finish().unwrap();
    let v = parse(&buf[..n]);
    let mut params: Vec<serde_json::Value> = TRICKY.iter().map(|s| (*s).into()).collect();
    params.extend([
        serde_json::json!(0),
        serde_json::json!(u64::MAX),
        serde_json::json!(i64::MIN),
        serde_json::json!(-1),
        serde_json::json!(i64::MAX),
        serde_json::json!(true),
        serde_json::json!(false),
        serde_json::json!("00abcdef12"),
        serde_json::json!("030201"),
        serde_json::json!(""),
        serde_json::json!(["1.4", "1.6"]),
        serde_json::json!([]),
        serde_json::from_str(r#"{"a": [1, 2.5e3, null]}"#).unwrap(),
    ]);
    let want = serde_json::json!([
        {"jsonrpc": "2.0", "id": u64::MAX, "method": "blockchain.\"odd\"\nmethod", "params": params},
        {"jsonrpc": "2.0", "method": "server.ping", "params": []},
        {"jsonrpc": "2.0", "id": 0, "method": "server.version", "params": [TRICKY]},
    ]);
    assert_eq!(v, want);
    // Our own scanner reads it too (a server would see the same envelope).
    let Message::Batch(b) = scan(&buf[..n - 1]).unwrap() else {
        panic!()
    };
    let ids: Vec<Option<Id>> = b.map(|e| e.unwrap().id).collect();
    assert_eq!(ids, [Some(Id::Num(u64::MAX)), None, Some(Id::Num(0))]);
}

#[test]
fn writer_single_request_exact_bytes() {
    let mut buf = [0u8; 200];
    let mut w = RequestWriter::new(&mut buf);
    w.begin(3, "blockchain.scripthash.subscribe").unwrap();
    w.hex_reversed(&[0xab; 32]).unwrap();
    w.end().unwrap();
    let n = w.finish().unwrap();
    let want = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"blockchain.scripthash.subscribe\",\"params\":[\"{}\"]}}\n",
        "ab".repeat(32)
    );
    assert_eq!(&buf[..n], want.as_bytes());
}

#[test]
fn writer_buffer_too_small_at_every_length() {
    let mut big = vec![0u8; 4096];
    let mut w = RequestWriter::new(&mut big);
    write_everything(&mut w).unwrap();
    let full = w.finish().unwrap();
    for len in 0..full {
        let mut buf = vec![0u8; len];
        let mut w = RequestWriter::new(&mut buf);
        let r = write_everything(&mut w).and_then(|()| w.finish().map(|_| ()));
        match r {
            Err(EncodeError::BufferTooSmall { needed_at_least }) => {
                assert!(
                    needed_at_least > len && needed_at_least <= full,
                    "len {len}"
                );
            }
            other => panic!("len {len}: {other:?}"),
        }
    }
    let mut exact = vec![0u8; full];
    let mut w = RequestWriter::new(&mut exact);
    write_everything(&mut w).unwrap();
    assert_eq!(w.finish(), Ok(full));
    assert_eq!(exact, big[..full]);
}

#[test]
fn writer_failed_call_leaves_state_unchanged() {
    let mut buf = [0u8; 60];
    let mut w = RequestWriter::new(&mut buf);
    w.begin(1, "m").unwrap();
    let before = w.len();
    assert!(matches!(
        w.str(&"x".repeat(100)),
        Err(EncodeError::BufferTooSmall { needed_at_least }) if needed_at_least > 60
    ));
    assert_eq!(w.len(), before);
    w.u64(5).unwrap();
    w.end().unwrap();
    let n = w.finish().unwrap();
    assert_eq!(
        parse(&buf[..n]),
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "m", "params": [5]})
    );
}

proptest! {
    #[test]
    fn writer_strings_round_trip(a in any::<String>(), b in any::<String>(), id in any::<u64>()) {
        let mut buf = vec![0u8; 128 + 12 * (a.len() + b.len())];
        let mut w = RequestWriter::new(&mut buf);
        w.begin(id, &a).unwrap();
        w.str(&b).unwrap();
        w.str_array(&[&a, &b]).unwrap();
        w.end().unwrap();
        let n = w.finish().unwrap();
        prop_assert_eq!(
            parse(&buf[..n]),
            serde_json::json!({"jsonrpc": "2.0", "id": id, "method": a, "params": [b, [a, b]]})
        );
        let env = single(&buf[..n - 1]);
        prop_assert_eq!(env.id, Some(Id::Num(id)));
        let mut out = vec![0u8; a.len()];
        prop_assert_eq!(unescape_into(env.method.unwrap(), &mut out).unwrap(), a.as_str());
    }
}

#[test]
fn errors_display() {
    let e = JsonError {
        offset: 7,
        kind: JsonErrorKind::TooDeep,
    };
    assert_eq!(e.to_string(), "nested deeper than 32 levels at byte 7");
    assert!(
        EncodeError::BufferTooSmall { needed_at_least: 9 }
            .to_string()
            .contains('9')
    );
    assert!(DecodeError::WrongType.to_string().contains("type"));
}

#[test]
fn tokenizer_position_accessors() {
    let mut tok = Tokenizer::new();
    let line = br#"{"a": [ 12, "x"], "b": true}"#;
    let (n, t) = tok.next(line).unwrap();
    assert_eq!(
        (n, t, tok.depth(), tok.in_object()),
        (1, Some(Token::ObjectStart), 1, true)
    );
    let mut rest = &line[n..];
    let mut starts = Vec::new();
    while !rest.is_empty() {
        let (n, t) = tok.next(rest).unwrap();
        rest = &rest[n..];
        if matches!(
            t,
            Some(Token::StrStart { .. } | Token::ArrayStart | Token::True)
        ) || matches!(t, Some(Token::NumChunk(_)))
        {
            starts.push((tok.value_start(), tok.depth(), tok.in_object()));
        }
    }
    assert_eq!(
        starts,
        [
            (1, 1, true),
            (6, 2, false),
            (8, 2, false),
            (12, 2, false),
            (18, 1, true),
            (23, 1, true)
        ]
    );
    assert!(tok.is_done() && tok.error().is_none());
}
