//! A tokenizer walking one complete, in-memory JSON text, with the byte span of every value.
//! Shared by the envelope scanner and the decode helpers; not recursive.

use super::tokenizer::{JsonError, JsonErrorKind, Token, Tokenizer};

/// The type of a value, from its first token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

/// A value: its type and its bytes `start..end` in the text (for a string, quotes included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Value {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    input: &'a [u8],
    tok: Tokenizer,
}

pub(crate) fn error(offset: usize, kind: JsonErrorKind) -> JsonError {
    JsonError { offset, kind }
}

impl<'a> Cursor<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Cursor {
            input,
            tok: Tokenizer::new(),
        }
    }

    /// Offset of the first byte of the value most recently started.
    pub fn value_start(&self) -> usize {
        self.tok.value_start()
    }

    pub fn depth(&self) -> usize {
        self.tok.depth()
    }

    /// `input[start..end]`, empty if out of range (never, for spans this cursor produced).
    pub fn slice(&self, start: usize, end: usize) -> &'a [u8] {
        self.input.get(start..end).unwrap_or(&[])
    }

    /// The next token; `None` once the top-level value is complete and only whitespace is left.
    pub fn next(&mut self) -> Result<Option<Token<'a>>, JsonError> {
        loop {
            let rest = self.input.get(self.tok.offset()..).unwrap_or(&[]);
            if rest.is_empty() {
                return self.tok.finish();
            }
            let (n, t) = self.tok.next(rest)?;
            if t.is_some() {
                return Ok(t);
            }
            if n == 0 {
                // Unreachable: the tokenizer consumes or returns a token on non-empty input.
                return Err(error(self.tok.offset(), JsonErrorKind::Incomplete));
            }
        }
    }

    /// Reads the rest of the value whose first token `first` was just returned.
    /// `None` if `first` closes a container instead.
    pub fn rest_of_value(&mut self, first: Token<'a>) -> Result<Option<Value>, JsonError> {
        let start = self.tok.value_start();
        let kind = match first {
            Token::ObjectEnd | Token::ArrayEnd => return Ok(None),
            Token::ObjectStart | Token::ArrayStart => {
                let base = self.tok.depth();
                while self.tok.depth() >= base {
                    if self.next()?.is_none() {
                        return Err(error(self.tok.offset(), JsonErrorKind::Incomplete));
                    }
                }
                if first == Token::ObjectStart {
                    Kind::Object
                } else {
                    Kind::Array
                }
            }
            Token::StrStart { .. } | Token::StrChunk(_) => {
                self.until(Token::StrEnd)?;
                Kind::String
            }
            Token::NumChunk(_) => {
                self.until(Token::NumEnd)?;
                Kind::Number
            }
            Token::True | Token::False => Kind::Bool,
            Token::Null => Kind::Null,
            Token::StrEnd | Token::NumEnd => {
                return Err(error(start, JsonErrorKind::WrongType));
            }
        };
        Ok(Some(Value {
            kind,
            start,
            end: self.tok.offset(),
        }))
    }

    fn until(&mut self, end: Token<'static>) -> Result<(), JsonError> {
        loop {
            match self.next()? {
                Some(t) if t == end => return Ok(()),
                Some(_) => {}
                None => return Err(error(self.tok.offset(), JsonErrorKind::Incomplete)),
            }
        }
    }

    /// The next value, or `None` at the end of the enclosing array (or object).
    pub fn next_value(&mut self) -> Result<Option<Value>, JsonError> {
        match self.next()? {
            Some(t) => self.rest_of_value(t),
            None => Ok(None),
        }
    }

    /// The next object key (raw content and offset of its opening quote), or `None` at `}`.
    pub fn next_key(&mut self) -> Result<Option<(&'a [u8], usize)>, JsonError> {
        match self.next()? {
            Some(t @ Token::StrStart { key: true }) => {
                let v = self.rest_of_value(t)?;
                Ok(v.map(|v| (self.string_content(v), v.start)))
            }
            Some(Token::ObjectEnd) | None => Ok(None),
            Some(_) => Err(error(self.tok.value_start(), JsonErrorKind::WrongType)),
        }
    }

    /// The value after a key. Cannot be missing in valid JSON.
    pub fn member_value(&mut self) -> Result<Value, JsonError> {
        self.next_value()?
            .ok_or(error(self.tok.offset(), JsonErrorKind::Incomplete))
    }

    /// Raw content of a string value (between the quotes).
    pub fn string_content(&self, v: Value) -> &'a [u8] {
        self.slice(v.start.saturating_add(1), v.end.saturating_sub(1))
    }

    pub fn span(&self, v: Value) -> &'a [u8] {
        self.slice(v.start, v.end)
    }

    /// Reads the end of the text: nothing but whitespace may follow.
    pub fn expect_end(&mut self) -> Result<(), JsonError> {
        match self.next()? {
            None => Ok(()),
            Some(_) => Err(error(self.tok.value_start(), JsonErrorKind::TrailingData)),
        }
    }

    /// Reads one complete value spanning the whole text (surrounding whitespace allowed).
    pub fn whole(input: &'a [u8]) -> Result<(Self, Value), JsonError> {
        let mut c = Cursor::new(input);
        let v = c.next_value()?.ok_or(error(0, JsonErrorKind::Incomplete))?;
        c.expect_end()?;
        Ok((c, v))
    }
}

/// Parses the JSON integer `digits` (optional `-`, then digits; no fraction or exponent).
pub(crate) fn parse_i128(text: &[u8]) -> Option<i128> {
    let (neg, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut v: i128 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i128::from(d - b'0');
    }
    Some(if neg { -v } else { v })
}
