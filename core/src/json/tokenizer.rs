//! A resumable, push-based, non-recursive JSON tokenizer.
//!
//! [`Tokenizer::next`] takes whatever bytes have arrived, consumes some of them and returns at
//! most one [`Token`]. Nothing is buffered: string contents and numbers come out as chunks that
//! borrow the caller's input, so a value of any size split over any number of reads needs only
//! the tokenizer's few dozen bytes of state (see [`Tokenizer`]). Feeding a message in one piece
//! or split at any byte boundaries yields the same tokens, except that string and number
//! contents may be cut into more [`Token::StrChunk`]/[`Token::NumChunk`] pieces.
//!
//! ```
//! use electrum_spv_core::json::{Token, Tokenizer};
//! let mut tok = Tokenizer::new();
//! let mut rest: &[u8] = br#"{"id": 7}"#;
//! let mut tokens = 0;
//! while !rest.is_empty() {
//!     let (n, token) = tok.next(rest)?;
//!     rest = &rest[n..];
//!     tokens += usize::from(token.is_some());
//! }
//! assert!(tok.is_done());
//! // ObjectStart, StrStart, StrChunk("id"), StrEnd, NumChunk("7"), NumEnd, ObjectEnd
//! assert_eq!(tokens, 7);
//! # Ok::<(), electrum_spv_core::json::JsonError>(())
//! ```
//!
//! ## Streaming a line
//! The tokenizer reads one value; a `\n` after it is whitespace, but the next message would be
//! [`JsonErrorKind::TrailingData`]. To stream a response too large for the
//! [framer](super::framer), find the line's `\n` in each read, feed only the bytes before it,
//! then call [`Tokenizer::finish`] and [`Tokenizer::reset`] for the next line. Values inside
//! the message can be located by their tokens: [`Token::StrStart`] tells keys from values,
//! [`Tokenizer::depth`] and [`Tokenizer::in_object`] tell where the tokenizer is.
//!
//! ## What is validated
//! The full RFC 8259 grammar: structure (commas, colons, keys are strings, matching brackets, no
//! trailing commas), the literals, the number grammar (no leading zeros, no `+`, digits after
//! `.` and `e`), escape syntax including the four hex digits of `\uXXXX` and the pairing of
//! UTF-16 surrogates, no raw control characters (below 0x20) in strings, and UTF-8 validity of
//! string bytes (no overlongs, no encoded surrogates, nothing above U+10FFFF), also when a
//! character is split between two inputs. One top-level value is read; only whitespace may
//! follow it.
//!
//! ## Bounds
//! Nesting is limited to [`MAX_DEPTH`] containers, tracked in a 32-bit set (no recursion, no
//! stack growth with input) and numbers to [`MAX_NUMBER_LEN`] bytes. Each call does work linear
//! in the bytes it consumes. No method panics.

use core::fmt;

use super::bytes::plain_prefix;

/// Deepest nesting of arrays and objects accepted. The 33rd open bracket is
/// [`JsonErrorKind::TooDeep`]. Electrum messages nest at most four levels (a batch of responses
/// whose results are lists of objects).
pub const MAX_DEPTH: usize = 32;

/// Longest number accepted, in bytes, sign, fraction and exponent included. Any `u64` or `i64`
/// (at most 20 bytes) and any `f64` as Python or Rust print it (at most 24) fits.
pub const MAX_NUMBER_LEN: usize = 64;

/// One lexical element of a JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    /// `{`
    ObjectStart,
    /// `}`
    ObjectEnd,
    /// `[`
    ArrayStart,
    /// `]`
    ArrayEnd,
    /// The opening `"` of a string.
    StrStart {
        /// The string is an object key.
        key: bool,
    },
    /// Raw bytes between the quotes: escapes are not decoded (see
    /// [`unescape_into`](super::envelope::unescape_into)). A string may come in several
    /// chunks; a chunk may end inside an escape or a UTF-8 character. Never empty.
    StrChunk(&'a [u8]),
    /// The closing `"` of a string.
    StrEnd,
    /// Bytes of a number, in one or more chunks. Never empty.
    NumChunk(&'a [u8]),
    /// The end of a number, seen at the first byte after it (which is not consumed) or at
    /// [`Tokenizer::finish`].
    NumEnd,
    /// `true`
    True,
    /// `false`
    False,
    /// `null`
    Null,
}

/// What is wrong with a JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonErrorKind {
    /// A byte that the grammar does not allow here (also a raw control character in a string,
    /// a digit after a leading zero, a missing comma or colon).
    UnexpectedByte(u8),
    /// More than [`MAX_DEPTH`] nested arrays and objects.
    TooDeep,
    /// String bytes that are not UTF-8.
    InvalidUtf8,
    /// A `\` not followed by one of `"\/bfnrtu`, or `\u` not followed by four hex digits.
    InvalidEscape,
    /// A `\u` escape of a UTF-16 surrogate that is not part of a high-low pair.
    LoneSurrogate,
    /// A number longer than [`MAX_NUMBER_LEN`] bytes.
    NumberTooLong,
    /// Something other than whitespace after the top-level value.
    TrailingData,
    /// The input ended inside a value.
    Incomplete,
    /// Valid JSON of the wrong type for its place (a message that is not an object or array, a
    /// non-string `method`, an error that is neither an object nor a string, ...).
    WrongType,
    /// An object key that may appear only once appeared twice.
    DuplicateKey,
    /// A number outside the range of the integer it must fit.
    OutOfRange,
    /// The caller's output buffer is too small ([`unescape_into`](super::envelope::unescape_into)).
    OutputTooSmall,
}

/// A JSON error and where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset of the offending byte (or value) from the start of the text: for a
    /// streamed value, from its first byte.
    pub offset: usize,
    /// What is wrong.
    pub kind: JsonErrorKind,
}

impl fmt::Display for JsonErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            JsonErrorKind::UnexpectedByte(b) => write!(f, "unexpected byte 0x{b:02x}"),
            JsonErrorKind::TooDeep => write!(f, "nested deeper than {MAX_DEPTH} levels"),
            JsonErrorKind::InvalidUtf8 => f.write_str("invalid UTF-8 in string"),
            JsonErrorKind::InvalidEscape => f.write_str("invalid escape sequence"),
            JsonErrorKind::LoneSurrogate => f.write_str("unpaired UTF-16 surrogate escape"),
            JsonErrorKind::NumberTooLong => {
                write!(f, "number longer than {MAX_NUMBER_LEN} bytes")
            }
            JsonErrorKind::TrailingData => f.write_str("data after the JSON value"),
            JsonErrorKind::Incomplete => f.write_str("JSON value incomplete"),
            JsonErrorKind::WrongType => f.write_str("JSON value of the wrong type"),
            JsonErrorKind::DuplicateKey => f.write_str("duplicate object key"),
            JsonErrorKind::OutOfRange => f.write_str("number out of range"),
            JsonErrorKind::OutputTooSmall => f.write_str("output buffer too small"),
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for JsonErrorKind {}

#[cfg(feature = "std")]
impl std::error::Error for JsonError {}

/// What the structural (between-values) state expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A value: at the top level, after `:` and after `,` in an array.
    Value,
    /// After `[`: a value or `]`.
    FirstElement,
    /// After `{`: a key or `}`.
    FirstKey,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// After a value inside a container: `,` or the closing bracket.
    AfterValue,
    /// The top-level value is complete: whitespace only.
    Done,
}

/// Position inside a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Str {
    Normal,
    /// After `\`.
    Escape,
    /// Inside `\uXXXX`: `n` digits read so far, their value, and whether this is the low half
    /// of a surrogate pair.
    Hex {
        n: u8,
        value: u16,
        low: bool,
    },
    /// After a high surrogate escape: `\` must follow.
    LowBackslash,
    /// After a high surrogate escape and `\`: `u` must follow.
    LowU,
    /// Inside a UTF-8 sequence: `need` continuation bytes to go, the next in `lo..=hi`.
    Utf8 {
        need: u8,
        lo: u8,
        hi: u8,
    },
}

/// Position inside a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Num {
    Start,
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    Exp,
    ExpSign,
    ExpInt,
}

impl Num {
    fn is_complete(self) -> bool {
        matches!(self, Num::Zero | Num::Int | Num::Frac | Num::ExpInt)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lit {
    True,
    False,
    Null,
}

impl Lit {
    fn word(self) -> &'static [u8] {
        match self {
            Lit::True => b"true",
            Lit::False => b"false",
            Lit::Null => b"null",
        }
    }
    fn token(self) -> Token<'static> {
        match self {
            Lit::True => Token::True,
            Lit::False => Token::False,
            Lit::Null => Token::Null,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Structural(Expect),
    InStr { key: bool, s: Str },
    InNum { s: Num, len: u8 },
    InLit { lit: Lit, matched: u8 },
    Failed(JsonError),
}

const fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

const fn hex_val(b: u8) -> Option<u16> {
    match b {
        b'0'..=b'9' => Some((b - b'0') as u16),
        b'a'..=b'f' => Some((b - b'a' + 10) as u16),
        b'A'..=b'F' => Some((b - b'A' + 10) as u16),
        _ => None,
    }
}

/// `input[a..b]`, or empty if out of range (it never is; this keeps the code panic-free).
fn sub(input: &[u8], a: usize, b: usize) -> &[u8] {
    input.get(a..b).unwrap_or(&[])
}

/// The push tokenizer. See the [module documentation](self).
///
/// `size_of::<Tokenizer>()` is 40 bytes on 64-bit targets (tested), less on 32-bit ones.
/// Once an error is returned the tokenizer keeps returning it until [`Tokenizer::reset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tokenizer {
    /// Bytes consumed since the start.
    offset: usize,
    /// Offset of the first byte of the value most recently started.
    value_start: usize,
    /// Bit `i` set: the container at depth `i` (0-based) is an object.
    stack: u32,
    depth: u8,
    state: State,
}

impl Default for Tokenizer {
    fn default() -> Self {
        Self::new()
    }
}

// One bit of `stack` per level.
const _: () = assert!(MAX_DEPTH <= u32::BITS as usize);

impl Tokenizer {
    /// A tokenizer expecting one top-level value.
    pub const fn new() -> Self {
        Tokenizer {
            offset: 0,
            value_start: 0,
            stack: 0,
            depth: 0,
            state: State::Structural(Expect::Value),
        }
    }

    /// Forgets everything, as [`Tokenizer::new`]: use it for the next message.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// One complete top-level value has been read (only whitespace may follow).
    pub fn is_done(&self) -> bool {
        self.state == State::Structural(Expect::Done)
    }

    /// The error returned earlier, if the tokenizer has failed.
    pub fn error(&self) -> Option<JsonError> {
        match self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Bytes consumed so far (the offset of the next byte to be fed).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Offset of the first byte (`{`, `[`, `"`, first character of a number or literal) of the
    /// value most recently started.
    pub fn value_start(&self) -> usize {
        self.value_start
    }

    /// Number of arrays and objects currently open.
    pub fn depth(&self) -> usize {
        usize::from(self.depth)
    }

    /// The innermost open container is an object (`false` at the top level).
    pub fn in_object(&self) -> bool {
        self.depth > 0 && (self.stack >> (self.depth - 1)) & 1 == 1
    }

    /// Consumes a prefix of `input` and returns its length with at most one token.
    ///
    /// Returns `(0, None)` only for empty input. A [`Token::NumEnd`] is returned with nothing
    /// consumed (the byte after a number is the next call's). Feed the rest of the input back
    /// until it is empty; at the end of the message call [`Tokenizer::finish`].
    ///
    /// # Errors
    /// The first syntax error, depth or number-length violation, with its offset; every later
    /// call returns the same error.
    #[allow(clippy::should_implement_trait)]
    pub fn next<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Option<Token<'a>>), JsonError> {
        let r = match self.state {
            State::Failed(e) => return Err(e),
            State::Structural(expect) => self.structural(expect, input),
            State::InStr { key, s } => self.string(key, s, input, 0),
            State::InNum { s, len } => self.number(s, len, input, 0),
            State::InLit { lit, matched } => self.literal(lit, matched, input, 0),
        };
        if let Ok((n, _)) = r {
            self.offset = self.offset.saturating_add(n);
        }
        r
    }

    /// Declares the end of the input. Returns [`Token::NumEnd`] if a top-level number was
    /// being read (only its end can complete it), `None` if a complete value was read.
    ///
    /// # Errors
    /// [`JsonErrorKind::Incomplete`] if the value is not complete; an earlier error again.
    pub fn finish(&mut self) -> Result<Option<Token<'static>>, JsonError> {
        match self.state {
            State::Failed(e) => Err(e),
            State::Structural(Expect::Done) => Ok(None),
            State::InNum { s, .. } if self.depth == 0 && s.is_complete() => {
                self.state = State::Structural(Expect::Done);
                Ok(Some(Token::NumEnd))
            }
            _ => Err(self.fail(0, JsonErrorKind::Incomplete)),
        }
    }

    fn fail(&mut self, at: usize, kind: JsonErrorKind) -> JsonError {
        let e = JsonError {
            offset: self.offset.saturating_add(at),
            kind,
        };
        self.state = State::Failed(e);
        e
    }

    fn after_value(&self) -> State {
        State::Structural(if self.depth == 0 {
            Expect::Done
        } else {
            Expect::AfterValue
        })
    }

    fn push(&mut self, object: bool, at: usize) -> Result<(), JsonError> {
        if usize::from(self.depth) >= MAX_DEPTH {
            return Err(self.fail(at, JsonErrorKind::TooDeep));
        }
        let bit = 1u32 << self.depth;
        if object {
            self.stack |= bit;
        } else {
            self.stack &= !bit;
        }
        self.depth += 1;
        Ok(())
    }

    fn pop(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        self.state = self.after_value();
    }

    fn structural<'a>(
        &mut self,
        mut expect: Expect,
        input: &'a [u8],
    ) -> Result<(usize, Option<Token<'a>>), JsonError> {
        let mut i = 0;
        while let Some(&b) = input.get(i) {
            if is_ws(b) {
                i += 1;
                continue;
            }
            let unexpected = JsonErrorKind::UnexpectedByte(b);
            match expect {
                Expect::Done => return Err(self.fail(i, JsonErrorKind::TrailingData)),
                Expect::Colon => {
                    if b != b':' {
                        return Err(self.fail(i, unexpected));
                    }
                    expect = Expect::Value;
                    self.state = State::Structural(expect);
                    i += 1;
                }
                Expect::AfterValue => match b {
                    b',' => {
                        expect = if self.in_object() {
                            Expect::Key
                        } else {
                            Expect::Value
                        };
                        self.state = State::Structural(expect);
                        i += 1;
                    }
                    b'}' if self.in_object() => {
                        self.pop();
                        return Ok((i + 1, Some(Token::ObjectEnd)));
                    }
                    b']' if !self.in_object() => {
                        self.pop();
                        return Ok((i + 1, Some(Token::ArrayEnd)));
                    }
                    _ => return Err(self.fail(i, unexpected)),
                },
                Expect::FirstKey | Expect::Key => match b {
                    b'"' => {
                        self.value_start = self.offset.saturating_add(i);
                        self.state = State::InStr {
                            key: true,
                            s: Str::Normal,
                        };
                        return Ok((i + 1, Some(Token::StrStart { key: true })));
                    }
                    b'}' if expect == Expect::FirstKey => {
                        self.pop();
                        return Ok((i + 1, Some(Token::ObjectEnd)));
                    }
                    _ => return Err(self.fail(i, unexpected)),
                },
                Expect::FirstElement if b == b']' => {
                    self.pop();
                    return Ok((i + 1, Some(Token::ArrayEnd)));
                }
                Expect::FirstElement | Expect::Value => return self.value(b, input, i),
            }
        }
        Ok((i, None))
    }

    /// Starts the value whose first byte `b` is at `input[i]`.
    fn value<'a>(
        &mut self,
        b: u8,
        input: &'a [u8],
        i: usize,
    ) -> Result<(usize, Option<Token<'a>>), JsonError> {
        self.value_start = self.offset.saturating_add(i);
        match b {
            b'{' => {
                self.push(true, i)?;
                self.state = State::Structural(Expect::FirstKey);
                Ok((i + 1, Some(Token::ObjectStart)))
            }
            b'[' => {
                self.push(false, i)?;
                self.state = State::Structural(Expect::FirstElement);
                Ok((i + 1, Some(Token::ArrayStart)))
            }
            b'"' => {
                self.state = State::InStr {
                    key: false,
                    s: Str::Normal,
                };
                Ok((i + 1, Some(Token::StrStart { key: false })))
            }
            b'-' | b'0'..=b'9' => self.number(Num::Start, 0, input, i),
            b't' => self.literal(Lit::True, 0, input, i),
            b'f' => self.literal(Lit::False, 0, input, i),
            b'n' => self.literal(Lit::Null, 0, input, i),
            _ => Err(self.fail(i, JsonErrorKind::UnexpectedByte(b))),
        }
    }

    fn literal<'a>(
        &mut self,
        lit: Lit,
        mut matched: u8,
        input: &'a [u8],
        mut i: usize,
    ) -> Result<(usize, Option<Token<'a>>), JsonError> {
        let word = lit.word();
        while let Some(&want) = word.get(usize::from(matched)) {
            let Some(&b) = input.get(i) else {
                self.state = State::InLit { lit, matched };
                return Ok((i, None));
            };
            if b != want {
                return Err(self.fail(i, JsonErrorKind::UnexpectedByte(b)));
            }
            matched += 1;
            i += 1;
        }
        self.state = self.after_value();
        Ok((i, Some(lit.token())))
    }

    fn number<'a>(
        &mut self,
        mut s: Num,
        mut len: u8,
        input: &'a [u8],
        start: usize,
    ) -> Result<(usize, Option<Token<'a>>), JsonError> {
        let mut i = start;
        while let Some(&b) = input.get(i) {
            let next = match (s, b) {
                (Num::Start, b'-') => Num::Minus,
                (Num::Start | Num::Minus, b'0') => Num::Zero,
                (Num::Start | Num::Minus | Num::Int, b'1'..=b'9') | (Num::Int, b'0') => Num::Int,
                (Num::Zero | Num::Int, b'.') => Num::Dot,
                (Num::Dot | Num::Frac, b'0'..=b'9') => Num::Frac,
                (Num::Zero | Num::Int | Num::Frac, b'e' | b'E') => Num::Exp,
                (Num::Exp, b'+' | b'-') => Num::ExpSign,
                (Num::Exp | Num::ExpSign | Num::ExpInt, b'0'..=b'9') => Num::ExpInt,
                _ => break,
            };
            if usize::from(len) >= MAX_NUMBER_LEN {
                return Err(self.fail(i, JsonErrorKind::NumberTooLong));
            }
            len += 1;
            s = next;
            i += 1;
        }
        if i > start {
            self.state = State::InNum { s, len };
            return Ok((i, Some(Token::NumChunk(sub(input, start, i)))));
        }
        match input.get(i) {
            // Nothing consumed and nothing to read: only possible for empty input.
            None => Ok((i, None)),
            Some(_) if s.is_complete() => {
                self.state = self.after_value();
                Ok((i, Some(Token::NumEnd)))
            }
            Some(&b) => Err(self.fail(i, JsonErrorKind::UnexpectedByte(b))),
        }
    }

    fn string<'a>(
        &mut self,
        key: bool,
        mut s: Str,
        input: &'a [u8],
        start: usize,
    ) -> Result<(usize, Option<Token<'a>>), JsonError> {
        let mut i = start;
        loop {
            if s == Str::Normal {
                i += plain_prefix(input.get(i..).unwrap_or(&[]));
            }
            let Some(&b) = input.get(i) else { break };
            s = match s {
                Str::Normal => match b {
                    b'"' => {
                        if i > start {
                            break;
                        }
                        self.state = if key {
                            State::Structural(Expect::Colon)
                        } else {
                            self.after_value()
                        };
                        return Ok((i + 1, Some(Token::StrEnd)));
                    }
                    b'\\' => Str::Escape,
                    0xc2..=0xdf => Str::Utf8 {
                        need: 1,
                        lo: 0x80,
                        hi: 0xbf,
                    },
                    0xe0 => Str::Utf8 {
                        need: 2,
                        lo: 0xa0,
                        hi: 0xbf,
                    },
                    0xe1..=0xec | 0xee..=0xef => Str::Utf8 {
                        need: 2,
                        lo: 0x80,
                        hi: 0xbf,
                    },
                    0xed => Str::Utf8 {
                        need: 2,
                        lo: 0x80,
                        hi: 0x9f,
                    },
                    0xf0 => Str::Utf8 {
                        need: 3,
                        lo: 0x90,
                        hi: 0xbf,
                    },
                    0xf1..=0xf3 => Str::Utf8 {
                        need: 3,
                        lo: 0x80,
                        hi: 0xbf,
                    },
                    0xf4 => Str::Utf8 {
                        need: 3,
                        lo: 0x80,
                        hi: 0x8f,
                    },
                    0x80..=0xff => return Err(self.fail(i, JsonErrorKind::InvalidUtf8)),
                    _ => return Err(self.fail(i, JsonErrorKind::UnexpectedByte(b))),
                },
                Str::Utf8 { need, lo, hi } => {
                    if b < lo || b > hi {
                        return Err(self.fail(i, JsonErrorKind::InvalidUtf8));
                    }
                    if need <= 1 {
                        Str::Normal
                    } else {
                        Str::Utf8 {
                            need: need - 1,
                            lo: 0x80,
                            hi: 0xbf,
                        }
                    }
                }
                Str::Escape => match b {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Str::Normal,
                    b'u' => Str::Hex {
                        n: 0,
                        value: 0,
                        low: false,
                    },
                    _ => return Err(self.fail(i, JsonErrorKind::InvalidEscape)),
                },
                Str::Hex { n, value, low } => {
                    let Some(d) = hex_val(b) else {
                        return Err(self.fail(i, JsonErrorKind::InvalidEscape));
                    };
                    let value = (value << 4) | d;
                    if n < 3 {
                        Str::Hex {
                            n: n + 1,
                            value,
                            low,
                        }
                    } else {
                        let is_high = (0xd800..=0xdbff).contains(&value);
                        let is_low = (0xdc00..=0xdfff).contains(&value);
                        if low != is_low {
                            return Err(self.fail(i, JsonErrorKind::LoneSurrogate));
                        }
                        if is_high {
                            Str::LowBackslash
                        } else {
                            Str::Normal
                        }
                    }
                }
                Str::LowBackslash => {
                    if b != b'\\' {
                        return Err(self.fail(i, JsonErrorKind::LoneSurrogate));
                    }
                    Str::LowU
                }
                Str::LowU => {
                    if b != b'u' {
                        return Err(self.fail(i, JsonErrorKind::LoneSurrogate));
                    }
                    Str::Hex {
                        n: 0,
                        value: 0,
                        low: true,
                    }
                }
            };
            i += 1;
        }
        self.state = State::InStr { key, s };
        if i > start {
            Ok((i, Some(Token::StrChunk(sub(input, start, i)))))
        } else {
            Ok((i, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// Tokens of `input` fed in one piece, chunks merged, as owned values.
    fn tokens(input: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, JsonError> {
        let mut tok = Tokenizer::new();
        let mut out = Vec::new();
        let mut rest = input;
        while !rest.is_empty() {
            let (n, t) = tok.next(rest)?;
            rest = &rest[n..];
            if let Some(t) = t {
                out.push(t);
            }
        }
        if let Some(t) = tok.finish()? {
            out.push(t);
        }
        Ok(out
            .into_iter()
            .map(|t| match t {
                Token::StrChunk(c) => (b's', c.to_vec()),
                Token::NumChunk(c) => (b'n', c.to_vec()),
                other => (b'.', std::format!("{other:?}").into_bytes()),
            })
            .collect())
    }

    fn err(input: &[u8]) -> JsonError {
        tokens(input).unwrap_err()
    }

    #[test]
    fn size_is_small() {
        #[cfg(target_pointer_width = "64")]
        assert_eq!(core::mem::size_of::<Tokenizer>(), 40);
        assert!(core::mem::size_of::<Tokenizer>() <= 40);
    }

    #[test]
    fn scalars_at_top_level() {
        assert_eq!(tokens(b"12").unwrap().len(), 2);
        assert_eq!(tokens(b" -0.5e+3 ").unwrap()[0].1, b"-0.5e+3");
        assert_eq!(tokens(b"true").unwrap().len(), 1);
        assert_eq!(tokens(b"\"\"").unwrap().len(), 2);
    }

    #[test]
    fn number_grammar() {
        for good in ["0", "-0", "1.5", "1e5", "1E-5", "0.0e+0", "123456789"] {
            assert!(tokens(good.as_bytes()).is_ok(), "{good}");
        }
        for bad in [
            "01", "-", "1.", ".5", "+1", "1e", "1e+", "--1", "0x1", "1.e3", "-a",
        ] {
            assert!(tokens(bad.as_bytes()).is_err(), "{bad}");
        }
        let long = "1".repeat(MAX_NUMBER_LEN);
        assert!(tokens(long.as_bytes()).is_ok());
        let long = "1".repeat(MAX_NUMBER_LEN + 1);
        assert_eq!(
            err(long.as_bytes()),
            JsonError {
                offset: MAX_NUMBER_LEN,
                kind: JsonErrorKind::NumberTooLong
            }
        );
    }

    #[test]
    fn escapes_and_surrogates() {
        assert!(tokens(br#""\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00""#).is_ok());
        assert_eq!(err(br#""\x""#).kind, JsonErrorKind::InvalidEscape);
        assert_eq!(err(br#""\u12G4""#).kind, JsonErrorKind::InvalidEscape);
        assert_eq!(err(br#""\uD800""#).kind, JsonErrorKind::LoneSurrogate);
        assert_eq!(err(br#""\uD800x""#).kind, JsonErrorKind::LoneSurrogate);
        assert_eq!(err(br#""\uD800\n""#).kind, JsonErrorKind::LoneSurrogate);
        assert_eq!(err(br#""\uD800\u0041""#).kind, JsonErrorKind::LoneSurrogate);
        assert_eq!(err(br#""\uDC00""#).kind, JsonErrorKind::LoneSurrogate);
        assert_eq!(
            err(b"\"a\x01\""),
            JsonError {
                offset: 2,
                kind: JsonErrorKind::UnexpectedByte(1)
            }
        );
    }

    #[test]
    fn utf8_matches_core_str() {
        // Every 1..=4 byte sequence drawn from interesting bytes agrees with core::str.
        let bytes = [
            0x41u8, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1,
            0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff,
        ];
        let mut buf = Vec::new();
        for &a in &bytes {
            for &b in &bytes {
                for &c in &bytes {
                    for &d in &bytes {
                        for len in 1..=4 {
                            let s = &[a, b, c, d][..len];
                            buf.clear();
                            buf.push(b'"');
                            buf.extend_from_slice(s);
                            buf.push(b'"');
                            let ok = core::str::from_utf8(s).is_ok();
                            assert_eq!(tokens(&buf).is_ok(), ok, "{s:02x?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn structure_errors() {
        for bad in [
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{1:2}",
            "[1 2]",
            "[",
            "{",
            "]",
            "}",
            "[}",
            "{]",
            "{\"a\"}",
            "nul",
            "truex",
            "[tru]",
            "1 2",
            "{} x",
            "",
            "   ",
        ] {
            assert!(tokens(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(err(b"{} x").kind, JsonErrorKind::TrailingData);
        assert_eq!(err(b"[1").kind, JsonErrorKind::Incomplete);
    }

    #[test]
    fn depth_limit() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(tokens(ok.as_bytes()).is_ok());
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert_eq!(
            err(deep.as_bytes()),
            JsonError {
                offset: MAX_DEPTH,
                kind: JsonErrorKind::TooDeep
            }
        );
        // Objects and arrays interleaved track their kind at every level.
        let mut s = std::string::String::new();
        for i in 0..MAX_DEPTH {
            s.push_str(if i % 3 == 0 { "{\"k\":" } else { "[" });
        }
        for i in (0..MAX_DEPTH).rev() {
            s.push(if i % 3 == 0 { '}' } else { ']' });
        }
        assert!(tokens(s.as_bytes()).is_ok());
    }

    #[test]
    fn errors_are_sticky() {
        let mut tok = Tokenizer::new();
        let e = tok.next(b"]").unwrap_err();
        assert_eq!(tok.next(b"[]"), Err(e));
        assert_eq!(tok.finish(), Err(e));
        assert_eq!(tok.error(), Some(e));
        tok.reset();
        assert!(tok.next(b"[]").is_ok());
    }
}
