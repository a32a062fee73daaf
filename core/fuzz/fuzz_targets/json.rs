//! Fuzz target `json`: the line framer, the envelope scanner, the push tokenizer, the decode
//! helpers, `unescape_into` and the request writer on arbitrary bytes.
//!
//! The first input byte picks a split point; the rest is the stream. Checked, beyond "no
//! panic": framing and tokenizing give the same result split or not; `scan` accepts a line
//! only if the tokenizer does; every span `scan` returns lies inside the line and is itself
//! valid JSON; the complete-line cursor gives the tokenizer's verdict, error for error; a
//! string is accepted by the tokenizer exactly when `unescape_into` can decode its content; the
//! one-pass list decoders stop at their first error; the writer's output scans back to what
//! was written.

#![no_main]

use electrum_spv_core::json::decode::{self, ArrayIter, DecodeError, ObjectIter};
use electrum_spv_core::json::{
    Envelope, Frame, Id, JsonError, JsonErrorKind, LineFramer, Message, RequestWriter, Token,
    Tokenizer, decode_error, scan, unescape_into,
};
use electrum_spv_core::session::response;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&pick, data)) = input.split_first() else {
        return;
    };
    let split = usize::from(pick) * data.len() / 255;
    let (a, b) = data.split_at(split);

    // Framer: same frames split or not.
    let frames = frame(&[data]);
    assert_eq!(frames, frame(&[a, b]));
    for f in &frames {
        if let Ok(line) = f {
            assert!(line.len() <= 4096);
            check_line(line);
        }
    }

    // Tokenizer over the whole input as one JSON text: same result split or not.
    let whole = tokenize(&[data]);
    assert_eq!(whole, tokenize(&[a, b]));
    check_line(data);

    // A string's content: the tokenizer accepts `"data"` exactly when unescape succeeds (and
    // the output never needs more room than the input).
    let mut quoted = Vec::with_capacity(data.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(data);
    quoted.push(b'"');
    let mut out = vec![0u8; data.len()];
    let unescaped = unescape_into(data, &mut out).map(|s| s.to_owned());
    assert_eq!(tokenize(&[&quoted]).is_ok(), unescaped.is_ok(), "{data:?}");
    // A smaller buffer fails cleanly or gives the same text.
    let mut small = vec![0u8; split];
    match unescape_into(data, &mut small) {
        Ok(s) => assert_eq!(Ok(s.to_owned()), unescaped.clone()),
        Err(e) => assert!(e.offset <= data.len()),
    }

    // The complete-line cursor behind `scan` and every decode helper agrees with the push
    // tokenizer, error for error.
    let verdict = whole.as_ref().map(|_| ()).map_err(|e| *e);
    match decode::bool_of(data) {
        Err(DecodeError::Json(e)) => assert_eq!(verdict, Err(e), "{data:?}"),
        _ => assert!(verdict.is_ok(), "{data:?}"),
    }

    // The one-pass list decoders end, and never yield an item after an error.
    if let Ok(items) = response::history(data) {
        ends_after_first_error(items);
    }
    if let Ok(items) = response::utxos(data) {
        ends_after_first_error(items);
    }
    if let Ok(headers) = response::block_headers(data) {
        ends_after_first_error(headers.headers());
    }

    // Decode helpers never panic.
    let _ = decode::u64_of(data);
    let _ = decode::i64_of(data);
    let _ = decode::bool_of(data);
    let _ = decode::hex_array_of::<4>(data);
    let _ = decode::display_hash_of(data);
    let _ = decode::hex_into(data, &mut [0u8; 16]);
    let _ = decode::from_span::<u64>(data);
    let _ = decode::from_span::<(&str, &str)>(data);
    if let Ok(it) = ArrayIter::new(data) {
        let n = it.len();
        assert_eq!(it.inspect(|s| valid_span(data, s)).count(), n);
    }
    if let Ok(it) = ObjectIter::new(data) {
        let n = it.len();
        assert_eq!(it.inspect(|(_, v)| valid_span(data, v)).count(), n);
    }

    // Writer: any UTF-8 string as method and parameter scans back.
    if let Ok(s) = core::str::from_utf8(data) {
        let mut buf = vec![0u8; 64 + 12 * s.len()];
        let mut w = RequestWriter::new(&mut buf);
        w.begin(u64::from(pick), s).unwrap();
        w.str(s).unwrap();
        w.end().unwrap();
        let n = w.finish().unwrap();
        let Ok(Message::Single(env)) = scan(&buf[..n - 1]) else {
            panic!("writer output does not scan")
        };
        assert_eq!(env.id, Some(Id::Num(u64::from(pick))));
        let mut out = vec![0u8; s.len()];
        assert_eq!(unescape_into(env.method.unwrap(), &mut out), Ok(s));
        // Too small buffers fail with a typed error.
        let mut buf = vec![0u8; split.min(n - 1)];
        let mut w = RequestWriter::new(&mut buf);
        let r = w.begin(1, s).and_then(|()| w.str(s)).and_then(|()| w.end());
        assert!(r.is_err() || w.finish().is_err());
    }
});

fn ends_after_first_error<T, E>(items: impl Iterator<Item = Result<T, E>>) {
    let mut failed = false;
    for item in items {
        assert!(!failed, "an item after an error");
        failed = item.is_err();
    }
}

fn frame(pieces: &[&[u8]]) -> Vec<Result<Vec<u8>, usize>> {
    let mut line_buffer = [0u8; 4096];
    let mut framer = LineFramer::new(&mut line_buffer);
    let mut out = Vec::new();
    for piece in pieces {
        let mut rest = *piece;
        while !rest.is_empty() {
            let (n, f) = framer.push(rest);
            assert!(n > 0 && n <= rest.len());
            match f {
                Some(Frame::Line(l)) => {
                    assert!(!l.is_empty());
                    out.push(Ok(l.to_vec()));
                }
                Some(Frame::Oversize { len, .. }) => {
                    assert!(len > 4096);
                    out.push(Err(len));
                }
                None => {}
            }
            assert!(framer.buffered() <= 4096);
            rest = &rest[n..];
        }
    }
    out
}

#[derive(Debug, PartialEq)]
enum Tok {
    Str(bool, Vec<u8>),
    Num(Vec<u8>),
    Other(Token<'static>),
}

fn tokenize(pieces: &[&[u8]]) -> Result<Vec<Tok>, JsonError> {
    let mut tok = Tokenizer::new();
    let mut out = Vec::new();
    let mut open: Option<Tok> = None;
    for piece in pieces {
        let mut rest = *piece;
        while !rest.is_empty() {
            let before = tok.offset();
            let (n, t) = tok.next(rest)?;
            assert!(n <= rest.len());
            assert_eq!(tok.offset(), before + n);
            assert!(tok.depth() <= electrum_spv_core::json::MAX_DEPTH);
            match t {
                None => assert!(n > 0),
                Some(Token::StrStart { key }) => open = Some(Tok::Str(key, Vec::new())),
                Some(Token::StrChunk(c)) => {
                    assert!(!c.is_empty());
                    match &mut open {
                        Some(Tok::Str(_, v)) => v.extend_from_slice(c),
                        _ => panic!("chunk outside a string"),
                    }
                }
                Some(Token::NumChunk(c)) => {
                    assert!(!c.is_empty());
                    match &mut open {
                        Some(Tok::Num(v)) => v.extend_from_slice(c),
                        None => open = Some(Tok::Num(c.to_vec())),
                        _ => panic!("number chunk inside a string"),
                    }
                }
                Some(Token::StrEnd | Token::NumEnd) => out.push(open.take().expect("open value")),
                Some(Token::ObjectStart) => out.push(Tok::Other(Token::ObjectStart)),
                Some(Token::ObjectEnd) => out.push(Tok::Other(Token::ObjectEnd)),
                Some(Token::ArrayStart) => out.push(Tok::Other(Token::ArrayStart)),
                Some(Token::ArrayEnd) => out.push(Tok::Other(Token::ArrayEnd)),
                Some(Token::True) => out.push(Tok::Other(Token::True)),
                Some(Token::False) => out.push(Tok::Other(Token::False)),
                Some(Token::Null) => out.push(Tok::Other(Token::Null)),
            }
            rest = &rest[n..];
        }
    }
    if tok.finish()? == Some(Token::NumEnd) {
        out.push(open.take().expect("open number"));
    }
    assert!(tok.is_done() && open.is_none());
    Ok(out)
}

/// `span` lies inside `line` and is one valid JSON value.
fn valid_span(line: &[u8], span: &[u8]) {
    let lo = line.as_ptr() as usize;
    let p = span.as_ptr() as usize;
    assert!(p >= lo && p + span.len() <= lo + line.len());
    assert!(tokenize(&[span]).is_ok(), "span {span:?}");
}

fn check_envelope(line: &[u8], env: &Envelope<'_>) {
    for span in [env.result, env.error, env.params].into_iter().flatten() {
        valid_span(line, span);
    }
    for raw in [env.method, env.jsonrpc].into_iter().flatten() {
        let mut out = vec![0u8; raw.len()];
        assert!(unescape_into(raw, &mut out).is_ok());
    }
    if let Some(e) = env.error {
        if let Ok(e) = decode_error(e) {
            let mut out = vec![0u8; e.message.len()];
            assert!(e.message_into(&mut out).is_ok());
        }
    }
}

fn check_line(line: &[u8]) {
    let tokens = tokenize(&[line]);
    match scan(line) {
        Ok(msg) => {
            assert!(tokens.is_ok(), "scan accepted what the tokenizer refuses");
            match msg {
                Message::Single(env) => check_envelope(line, &env),
                Message::Batch(batch) => {
                    let n = batch.len();
                    let mut seen = 0;
                    for env in batch {
                        seen += 1;
                        if let Ok(env) = env {
                            check_envelope(line, &env);
                        }
                    }
                    assert_eq!(seen, n);
                }
            }
        }
        Err(e) => {
            assert!(e.offset <= line.len());
            if let Ok(t) = &tokens {
                // Valid JSON refused only for its shape.
                assert!(
                    matches!(
                        e.kind,
                        JsonErrorKind::WrongType | JsonErrorKind::DuplicateKey
                    ),
                    "{e:?} for valid {t:?}"
                );
            } else if !matches!(
                e.kind,
                JsonErrorKind::WrongType | JsonErrorKind::DuplicateKey
            ) {
                // Otherwise the scanner stopped at the tokenizer's error.
                assert_eq!(Err(e), tokens.map(|_| ()), "scan and tokenizer disagree");
            }
        }
    }
}
