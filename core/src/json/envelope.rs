//! The JSON-RPC envelope of one complete line: which request it answers, and where its parts
//! are.
//!
//! [`scan`] walks a line with the depth-limited [`Tokenizer`](super::tokenizer::Tokenizer) and
//! returns the raw byte spans of `result`, `error` and `params` plus the decoded `id`, without
//! decoding the payload: the session looks up the pending request by `id` first and then
//! decodes `result` with the type that request expects ([`super::decode`]).
//!
//! * Keys may come in any order (ElectrumX writes `result` before `id`).
//! * A known key (`id`, `result`, `error`, `method`, `params`, `jsonrpc`) twice is
//!   [`JsonErrorKind::DuplicateKey`]; other keys are skipped. Keys are compared as raw bytes, so
//!   an escaped spelling such as `"\u0069d"` counts as an unknown key.
//! * Spans exclude surrounding whitespace (ElectrumX pads with spaces before the closing `}`).
//! * A JSON-RPC 1.0 style `"error": null` is reported as `Some(b"null")`; use
//!   [`Envelope::error_value`] to treat it as absent.
//!
//! ```
//! use electrum_spv_core::json::{Id, Message, scan};
//! let line = br#"{"jsonrpc": "2.0", "result": [1, 2], "id": 3        }"#;
//! let Message::Single(env) = scan(line)? else { panic!() };
//! assert_eq!(env.id, Some(Id::Num(3)));
//! assert_eq!(env.result, Some(&b"[1, 2]"[..]));
//! # Ok::<(), electrum_spv_core::json::JsonError>(())
//! ```

use super::cursor::{Cursor, Entry, Kind, Value, error, parse_i128};
use super::tokenizer::{JsonError, JsonErrorKind};

/// A JSON-RPC id as received. We send non-negative integer ids only, so everything else is
/// kept only as what it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Id {
    /// A non-negative integer that fits a `u64`, written without fraction or exponent.
    Num(u64),
    /// `null`: the server could not read the request's id (e.g. a parse error reply).
    Null,
    /// A string, negative, fractional, exponent-form or too large number, object, array or
    /// boolean.
    Other,
}

/// The parts of one JSON-RPC message. Spans borrow the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Envelope<'a> {
    /// `id`, if present. Server notifications have none.
    pub id: Option<Id>,
    /// Raw JSON of `result`.
    pub result: Option<&'a [u8]>,
    /// Raw JSON of `error` (`null` included, see [`Envelope::error_value`]).
    pub error: Option<&'a [u8]>,
    /// Raw (still escaped) content of the `method` string.
    pub method: Option<&'a [u8]>,
    /// Raw JSON of `params`.
    pub params: Option<&'a [u8]>,
    /// Raw content of the `jsonrpc` string (`2.0` from every server examined).
    pub jsonrpc: Option<&'a [u8]>,
}

impl<'a> Envelope<'a> {
    /// `error` unless it is absent or `null`.
    pub fn error_value(&self) -> Option<&'a [u8]> {
        self.error.filter(|e| *e != b"null")
    }

    /// A notification: `method` and no `id`.
    pub fn is_notification(&self) -> bool {
        self.method.is_some() && self.id.is_none()
    }
}

/// A scanned line: one message or a batch.
#[derive(Debug, Clone)]
pub enum Message<'a> {
    /// A JSON object.
    Single(Envelope<'a>),
    /// A JSON array: a batch reply. The line has been validated completely; elements are
    /// parsed as the iterator advances.
    Batch(BatchIter<'a>),
}

/// The elements of a batch, in the order the server wrote them (completion order for
/// ElectrumX: match by id). An element that is not an object, or has a duplicate key or a
/// mistyped `method`/`jsonrpc`, yields an error and iteration continues with the next one.
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    cur: Cursor<'a>,
    remaining: usize,
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<Envelope<'a>, JsonError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let item = match self.cur.next_entry() {
            Ok(Some(Entry::Open(Kind::Object))) => {
                let r = parse_object(&mut self.cur);
                // Skip what is left of a refused element: the line is known to be valid.
                if r.is_err() && self.cur.skip_to_depth(2).is_err() {
                    self.remaining = 0;
                }
                r
            }
            Ok(Some(entry)) => match self.cur.finish_entry(entry) {
                Ok(v) => Err(error(v.start, JsonErrorKind::WrongType)),
                Err(_) => {
                    self.remaining = 0;
                    return None;
                }
            },
            Ok(None) | Err(_) => {
                self.remaining = 0;
                return None;
            }
        };
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for BatchIter<'_> {}

/// Scans one complete line (without its newline) into an envelope or a batch.
///
/// The whole line is validated as JSON (depth-limited, no trailing data) before `Ok` is
/// returned. An empty array gives an empty batch.
///
/// # Errors
/// A JSON syntax or limit error; [`JsonErrorKind::WrongType`] if the line is not an object or
/// an array, or `method`/`jsonrpc` is not a string; [`JsonErrorKind::DuplicateKey`].
pub fn scan(line: &[u8]) -> Result<Message<'_>, JsonError> {
    let mut cur = Cursor::new(line);
    match cur.next_entry()? {
        Some(Entry::Open(Kind::Object)) => {
            let env = parse_object(&mut cur)?;
            cur.expect_end()?;
            Ok(Message::Single(env))
        }
        Some(Entry::Open(_)) => {
            let mut check = cur.clone();
            let mut remaining = 0usize;
            while check.next_value()?.is_some() {
                remaining += 1;
            }
            check.expect_end()?;
            Ok(Message::Batch(BatchIter { cur, remaining }))
        }
        Some(Entry::Scalar(v)) => Err(error(v.start, JsonErrorKind::WrongType)),
        None => Err(error(line.len(), JsonErrorKind::Incomplete)),
    }
}

const KEYS: [&[u8]; 6] = [b"id", b"result", b"error", b"method", b"params", b"jsonrpc"];

/// Parses the members of an object whose `{` was just read, up to its `}`.
fn parse_object<'a>(cur: &mut Cursor<'a>) -> Result<Envelope<'a>, JsonError> {
    let mut env = Envelope::default();
    let mut seen = 0u8;
    while let Some((key, key_at)) = cur.next_key()? {
        let v = cur.member_value()?;
        let Some(which) = KEYS.iter().position(|k| *k == key) else {
            continue;
        };
        let bit = 1u8 << which;
        if seen & bit != 0 {
            return Err(error(key_at, JsonErrorKind::DuplicateKey));
        }
        seen |= bit;
        let span = cur.span(v);
        match which {
            0 => env.id = Some(id_of(cur, v)),
            1 => env.result = Some(span),
            2 => env.error = Some(span),
            3 => env.method = Some(string_of(cur, v)?),
            4 => env.params = Some(span),
            _ => env.jsonrpc = Some(string_of(cur, v)?),
        }
    }
    Ok(env)
}

fn string_of<'a>(cur: &Cursor<'a>, v: Value) -> Result<&'a [u8], JsonError> {
    if v.kind == Kind::String {
        Ok(cur.string_content(v))
    } else {
        Err(error(v.start, JsonErrorKind::WrongType))
    }
}

fn id_of(cur: &Cursor<'_>, v: Value) -> Id {
    match v.kind {
        Kind::Null => Id::Null,
        Kind::Number => match parse_i128(cur.span(v)).map(u64::try_from) {
            Some(Ok(n)) if cur.span(v).first() != Some(&b'-') => Id::Num(n),
            _ => Id::Other,
        },
        _ => Id::Other,
    }
}

/// A server error, decoded by [`decode_error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcErrorRef<'a> {
    /// `code`; `None` for a plain string error (old Blockstream electrs) or an object without
    /// a code.
    pub code: Option<i64>,
    /// Raw (still escaped) `message` content, or the whole string of a string error; empty if
    /// absent. Decode it with [`unescape_into`] or [`RpcErrorRef::message_into`].
    pub message: &'a [u8],
    /// Raw JSON of `data`, if present.
    pub data: Option<&'a [u8]>,
}

impl RpcErrorRef<'_> {
    /// The message unescaped into `out` ([`unescape_into`]).
    ///
    /// # Errors
    /// As [`unescape_into`].
    pub fn message_into<'b>(&self, out: &'b mut [u8]) -> Result<&'b str, JsonError> {
        unescape_into(self.message, out)
    }
}

/// Decodes the raw `error` span of an envelope: `{"code": int, "message": str, ...}` or a
/// plain string.
///
/// # Errors
/// Invalid JSON; [`JsonErrorKind::WrongType`] for an error that is neither an object nor a
/// string, a non-integer `code` or a non-string `message`; [`JsonErrorKind::OutOfRange`] for a
/// code outside `i64`; [`JsonErrorKind::DuplicateKey`].
pub fn decode_error(span: &[u8]) -> Result<RpcErrorRef<'_>, JsonError> {
    let (_, whole) = Cursor::whole(span)?;
    let mut cur = Cursor::new(span);
    match whole.kind {
        Kind::String => {
            return Ok(RpcErrorRef {
                code: None,
                message: cur.string_content(whole),
                data: None,
            });
        }
        Kind::Object => {}
        _ => return Err(error(whole.start, JsonErrorKind::WrongType)),
    }
    // Consume the `{`.
    cur.next_entry()?;
    let mut out = RpcErrorRef {
        code: None,
        message: &[],
        data: None,
    };
    let mut seen = 0u8;
    while let Some((key, key_at)) = cur.next_key()? {
        let v = cur.member_value()?;
        let bit = match key {
            b"code" => 1,
            b"message" => 2,
            b"data" => 4,
            _ => continue,
        };
        if seen & bit != 0 {
            return Err(error(key_at, JsonErrorKind::DuplicateKey));
        }
        seen |= bit;
        match bit {
            1 => {
                if v.kind != Kind::Number {
                    return Err(error(v.start, JsonErrorKind::WrongType));
                }
                let n = parse_i128(cur.span(v)).ok_or(error(v.start, JsonErrorKind::WrongType))?;
                let n = i64::try_from(n).map_err(|_| error(v.start, JsonErrorKind::OutOfRange))?;
                out.code = Some(n);
            }
            2 => out.message = string_of(&cur, v)?,
            _ => out.data = Some(cur.span(v)),
        }
    }
    Ok(out)
}

/// Decodes the JSON escapes of raw string content (a string's bytes between its quotes, as
/// the session hands them over) into `out`, surrogate pairs included.
///
/// # Errors
/// [`JsonErrorKind::OutputTooSmall`] if `out` cannot hold the result (offset: where in `raw`);
/// [`JsonErrorKind::InvalidEscape`], [`JsonErrorKind::LoneSurrogate`],
/// [`JsonErrorKind::InvalidUtf8`], or [`JsonErrorKind::UnexpectedByte`] for a raw `"` or
/// control character.
pub fn unescape_into<'b>(raw: &[u8], out: &'b mut [u8]) -> Result<&'b str, JsonError> {
    let mut w = 0usize;
    let mut i = 0usize;
    let mut put = |bytes: &[u8], at: usize, w: &mut usize| -> Result<(), JsonError> {
        let dst = out
            .get_mut(*w..w.saturating_add(bytes.len()))
            .ok_or(error(at, JsonErrorKind::OutputTooSmall))?;
        dst.copy_from_slice(bytes);
        *w += bytes.len();
        Ok(())
    };
    while let Some(&b) = raw.get(i) {
        if b != b'\\' {
            if b < 0x20 || b == b'"' {
                return Err(error(i, JsonErrorKind::UnexpectedByte(b)));
            }
            // Copy the run up to the next escape in one go.
            let run = raw
                .get(i..)
                .unwrap_or(&[])
                .iter()
                .position(|&c| c == b'\\' || c < 0x20 || c == b'"')
                .unwrap_or(raw.len() - i);
            put(raw.get(i..i + run).unwrap_or(&[]), i, &mut w)?;
            i += run;
            continue;
        }
        let esc = raw
            .get(i + 1)
            .copied()
            .ok_or(error(i, JsonErrorKind::InvalidEscape))?;
        let simple = match esc {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'u' => None,
            _ => return Err(error(i + 1, JsonErrorKind::InvalidEscape)),
        };
        if let Some(c) = simple {
            put(&[c], i, &mut w)?;
            i += 2;
            continue;
        }
        let hi = hex4(raw, i + 2)?;
        let (ch, len) = match hi {
            0xd800..=0xdbff => {
                if raw.get(i + 6) != Some(&b'\\') || raw.get(i + 7) != Some(&b'u') {
                    return Err(error(i, JsonErrorKind::LoneSurrogate));
                }
                let lo = hex4(raw, i + 8)?;
                if !(0xdc00..=0xdfff).contains(&lo) {
                    return Err(error(i + 6, JsonErrorKind::LoneSurrogate));
                }
                let c = 0x10000 + ((u32::from(hi) - 0xd800) << 10) + (u32::from(lo) - 0xdc00);
                (c, 12)
            }
            0xdc00..=0xdfff => return Err(error(i, JsonErrorKind::LoneSurrogate)),
            c => (u32::from(c), 6),
        };
        let ch = char::from_u32(ch).ok_or(error(i, JsonErrorKind::LoneSurrogate))?;
        let mut buf = [0u8; 4];
        put(ch.encode_utf8(&mut buf).as_bytes(), i, &mut w)?;
        i += len;
    }
    let done = out.get(..w).unwrap_or(&[]);
    if let Err(e) = core::str::from_utf8(done) {
        // Map the output position back to the input: only runs of raw bytes can be invalid, so
        // report the first invalid raw byte.
        let at = first_invalid_utf8(raw).unwrap_or(e.valid_up_to());
        return Err(error(at, JsonErrorKind::InvalidUtf8));
    }
    let out = out.get(..w).unwrap_or(&[]);
    core::str::from_utf8(out).map_err(|_| error(0, JsonErrorKind::InvalidUtf8))
}

fn first_invalid_utf8(raw: &[u8]) -> Option<usize> {
    core::str::from_utf8(raw).err().map(|e| e.valid_up_to())
}

fn hex4(raw: &[u8], at: usize) -> Result<u16, JsonError> {
    let digits = raw
        .get(at..at + 4)
        .ok_or(error(at, JsonErrorKind::InvalidEscape))?;
    let mut v = 0u16;
    for (k, &d) in digits.iter().enumerate() {
        let n = crate::hex::nibble(d).ok_or(error(at + k, JsonErrorKind::InvalidEscape))?;
        v = (v << 4) | u16::from(n);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(line: &[u8]) -> Envelope<'_> {
        match scan(line).unwrap() {
            Message::Single(e) => e,
            Message::Batch(_) => panic!("batch"),
        }
    }

    #[test]
    fn ids() {
        assert_eq!(single(br#"{"id":0}"#).id, Some(Id::Num(0)));
        assert_eq!(
            single(br#"{"id":18446744073709551615}"#).id,
            Some(Id::Num(u64::MAX))
        );
        for other in [
            "18446744073709551616",
            "-1",
            "-0",
            "1.0",
            "1e2",
            "\"1\"",
            "[1]",
            "{}",
            "true",
            "123456789012345678901234567890",
        ] {
            let line = std::format!("{{\"id\":{other}}}");
            assert_eq!(single(line.as_bytes()).id, Some(Id::Other), "{other}");
        }
        assert_eq!(single(br#"{"id":null}"#).id, Some(Id::Null));
        assert_eq!(single(br#"{"method":"x"}"#).id, None);
    }

    #[test]
    fn unescape_basics() {
        let mut out = [0u8; 32];
        assert_eq!(
            unescape_into(br#"a\"b\\c\/\n\u00e9\ud83d\ude00"#, &mut out).unwrap(),
            "a\"b\\c/\n\u{e9}\u{1f600}"
        );
        assert_eq!(
            unescape_into(br"\ud83d", &mut out).unwrap_err().kind,
            JsonErrorKind::LoneSurrogate
        );
        assert_eq!(
            unescape_into(b"abc", &mut out[..2]).unwrap_err(),
            error(0, JsonErrorKind::OutputTooSmall)
        );
        assert_eq!(
            unescape_into(b"ab\xff", &mut out).unwrap_err(),
            error(2, JsonErrorKind::InvalidUtf8)
        );
    }
}
