//! A validating reader over one complete, in-memory JSON text, with the byte span of every
//! value. Shared by the envelope scanner and the decode helpers.
//!
//! It accepts exactly what the push [`Tokenizer`](super::tokenizer::Tokenizer) accepts and
//! reports the same error kinds at the same offsets (checked by a differential test and the
//! `json` fuzz target), but it does not have to stop at every token or at the end of every
//! read: scalars come back whole, skipped containers are walked in a tight loop, and runs of
//! string bytes and padding are passed over a block at a time ([`super::bytes`]). Not
//! recursive: nesting is tracked in a 32-bit set, as in the tokenizer.

use super::bytes::{all_plain, plain_prefix, whitespace_prefix};
use super::tokenizer::{JsonError, JsonErrorKind, MAX_DEPTH, MAX_NUMBER_LEN};

/// The type of a value, from its first byte.
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

/// The start of the next value in an array (or at the top level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A `{` or `[` was read: the cursor is now inside it.
    Open(Kind),
    /// A complete string, number, boolean or `null`.
    Scalar(Value),
}

/// What the cursor expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The top-level value.
    Top,
    /// Right after `{` or `[`: a member or the closing bracket.
    First,
    /// After a value inside a container: `,` or the closing bracket.
    After,
    /// After an object key: `:` and the value.
    AfterKey,
    /// The top-level value is complete: whitespace only.
    Done,
}

#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
    /// Bit `i` set: the container at depth `i` (0-based) is an object.
    stack: u32,
    depth: u8,
    state: State,
}

pub(crate) fn error(offset: usize, kind: JsonErrorKind) -> JsonError {
    JsonError { offset, kind }
}

// One bit of `stack` per level.
const _: () = assert!(MAX_DEPTH <= u32::BITS as usize);

impl<'a> Cursor<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Cursor {
            input,
            pos: 0,
            stack: 0,
            depth: 0,
            state: State::Top,
        }
    }

    pub fn depth(&self) -> usize {
        usize::from(self.depth)
    }

    /// `input[start..end]`, empty if out of range (never, for spans this cursor produced).
    pub fn slice(&self, start: usize, end: usize) -> &'a [u8] {
        self.input.get(start..end).unwrap_or(&[])
    }

    /// Raw content of a string value (between the quotes).
    pub fn string_content(&self, v: Value) -> &'a [u8] {
        self.slice(v.start.saturating_add(1), v.end.saturating_sub(1))
    }

    pub fn span(&self, v: Value) -> &'a [u8] {
        self.slice(v.start, v.end)
    }

    /// Reads one complete value spanning the whole text (surrounding whitespace allowed).
    pub fn whole(input: &'a [u8]) -> Result<(Self, Value), JsonError> {
        let mut c = Cursor::new(input);
        let v = c
            .next_value()?
            .ok_or(error(input.len(), JsonErrorKind::Incomplete))?;
        c.expect_end()?;
        Ok((c, v))
    }

    /// The start of the next value of the enclosing array (or the top-level value); `None`
    /// when the array closes (its `]` is consumed) or, at the top level, when the value has
    /// been read and only whitespace is left.
    #[inline(always)]
    pub fn next_entry(&mut self) -> Result<Option<Entry>, JsonError> {
        let b = self.skip_whitespace();
        match self.state {
            State::Done => match b {
                None => Ok(None),
                Some(_) => Err(error(self.pos, JsonErrorKind::TrailingData)),
            },
            State::Top => self.entry(b).map(Some),
            State::AfterKey => Err(error(self.pos, JsonErrorKind::WrongType)),
            State::First if self.in_object() => Err(error(self.pos, JsonErrorKind::WrongType)),
            State::First if b == Some(b']') => {
                self.close();
                Ok(None)
            }
            State::First => self.entry(b).map(Some),
            State::After => match b {
                Some(b',') if !self.in_object() => {
                    self.pos += 1;
                    let b = self.skip_whitespace();
                    self.entry(b).map(Some)
                }
                Some(b']') if !self.in_object() => {
                    self.close();
                    Ok(None)
                }
                Some(b) => Err(error(self.pos, JsonErrorKind::UnexpectedByte(b))),
                None => Err(self.incomplete()),
            },
        }
    }

    /// The next value of the enclosing array (or the top-level value), containers read to
    /// their end; `None` as for [`Cursor::next_entry`].
    #[inline(always)]
    pub fn next_value(&mut self) -> Result<Option<Value>, JsonError> {
        match self.next_entry()? {
            Some(entry) => self.finish_entry(entry).map(Some),
            None => Ok(None),
        }
    }

    /// The next object key (raw content and offset of its opening quote), or `None` when the
    /// object closes (its `}` is consumed).
    #[inline(always)]
    pub fn next_key(&mut self) -> Result<Option<(&'a [u8], usize)>, JsonError> {
        let b = self.skip_whitespace();
        if !self.in_object() || !matches!(self.state, State::First | State::After) {
            return Err(error(self.pos, JsonErrorKind::WrongType));
        }
        let b = match (self.state, b) {
            (_, Some(b'}')) => {
                self.close();
                return Ok(None);
            }
            (State::After, Some(b',')) => {
                self.pos += 1;
                self.skip_whitespace()
            }
            (State::After, Some(b)) => {
                return Err(error(self.pos, JsonErrorKind::UnexpectedByte(b)));
            }
            (_, b) => b,
        };
        match b {
            Some(b'"') => {
                let start = self.pos;
                let end = self.string(start)?;
                self.pos = end;
                self.state = State::AfterKey;
                Ok(Some((self.slice(start + 1, end - 1), start)))
            }
            Some(b) => Err(error(self.pos, JsonErrorKind::UnexpectedByte(b))),
            None => Err(self.incomplete()),
        }
    }

    /// The start of the value after a key (its `:` is consumed).
    #[inline(always)]
    pub fn member_entry(&mut self) -> Result<Entry, JsonError> {
        if self.state != State::AfterKey {
            return Err(error(self.pos, JsonErrorKind::WrongType));
        }
        match self.skip_whitespace() {
            Some(b':') => {
                self.pos += 1;
                let b = self.skip_whitespace();
                self.entry(b)
            }
            Some(b) => Err(error(self.pos, JsonErrorKind::UnexpectedByte(b))),
            None => Err(self.incomplete()),
        }
    }

    /// The value after a key, containers read to their end.
    #[inline(always)]
    pub fn member_value(&mut self) -> Result<Value, JsonError> {
        let entry = self.member_entry()?;
        self.finish_entry(entry)
    }

    /// Reads the end of the text: nothing but whitespace may follow.
    pub fn expect_end(&mut self) -> Result<(), JsonError> {
        let b = self.skip_whitespace();
        match (self.state, b) {
            (State::Done, None) => Ok(()),
            (State::Done, Some(_)) => Err(error(self.pos, JsonErrorKind::TrailingData)),
            _ => Err(self.incomplete()),
        }
    }

    /// Reads the rest of the container that is open at depth `depth` (1-based), its closing
    /// bracket included.
    ///
    /// The same grammar as [`Cursor::next_entry`] and [`Cursor::next_key`], in one loop that
    /// neither returns entries nor slices keys: skipping is most of the work of scanning an
    /// envelope.
    pub fn skip_to_depth(&mut self, depth: usize) -> Result<(), JsonError> {
        while self.depth() >= depth && self.depth > 0 {
            let Some(b) = self.skip_whitespace() else {
                return Err(self.incomplete());
            };
            let object = self.in_object();
            let closer = if object { b'}' } else { b']' };
            let (key, next) = match self.state {
                State::AfterKey if b == b':' => {
                    self.pos += 1;
                    (false, self.skip_whitespace())
                }
                State::After if b == b',' => {
                    self.pos += 1;
                    (object, self.skip_whitespace())
                }
                State::After | State::First if b == closer => {
                    self.close();
                    continue;
                }
                State::First => (object, Some(b)),
                _ => return Err(error(self.pos, JsonErrorKind::UnexpectedByte(b))),
            };
            if !key {
                if next == Some(b'{')
                    && usize::from(self.depth) < MAX_DEPTH
                    && let Some(end) = self.flat_object_end(self.pos)
                {
                    self.pos = end;
                    self.state = State::After;
                    continue;
                }
                self.entry(next)?;
                continue;
            }
            match next {
                Some(b'"') => {
                    self.pos = self.string(self.pos)?;
                    self.state = State::AfterKey;
                }
                Some(b) => return Err(error(self.pos, JsonErrorKind::UnexpectedByte(b))),
                None => return Err(self.incomplete()),
            }
        }
        Ok(())
    }

    /// Reads the members of the object just opened, up to and including its `}`, and returns
    /// the value of each key in `names` (raw key bytes; other keys are skipped).
    ///
    /// A key of `names` twice is [`JsonErrorKind::DuplicateKey`] at its second occurrence.
    #[inline]
    pub fn fields<const N: usize>(
        &mut self,
        names: [&[u8]; N],
    ) -> Result<[Option<Value>; N], JsonError> {
        let mut out = [None; N];
        while let Some((key, key_at)) = self.next_key()? {
            let v = self.member_value()?;
            if let Some(slot) = names
                .iter()
                .position(|n| *n == key)
                .and_then(|i| out.get_mut(i))
            {
                if slot.is_some() {
                    return Err(error(key_at, JsonErrorKind::DuplicateKey));
                }
                *slot = Some(v);
            }
        }
        Ok(out)
    }

    /// A cursor just inside the array `text`, or inside the array under `key` when `text` is
    /// an object (Electrum 1.7 wraps lists: `{"history": [...]}`). `None` for any other shape.
    pub fn into_list(text: &'a [u8], key: &[u8]) -> Result<Option<Self>, JsonError> {
        let mut cur = Cursor::new(text);
        match cur.next_entry()? {
            Some(Entry::Open(Kind::Array)) => return Ok(Some(cur)),
            Some(Entry::Open(Kind::Object)) => {}
            _ => return Ok(None),
        }
        while let Some((k, _)) = cur.next_key()? {
            if k == key {
                return Ok(match cur.member_entry()? {
                    Entry::Open(Kind::Array) => Some(cur),
                    _ => None,
                });
            }
            cur.member_value()?;
        }
        Ok(None)
    }

    /// After a list from [`Cursor::into_list`] has closed: validates the rest of the text.
    pub fn finish_list(&mut self) -> Result<(), JsonError> {
        self.skip_to_depth(1)?;
        self.expect_end()
    }

    // ----- fast lane -----
    //
    // Electrum results are long lists of small, regular objects and hex strings. These
    // readers take the common shape in one touch per byte, accepting only bytes that are valid
    // JSON by construction; anything else returns `None` with the cursor unchanged, and the
    // caller reads that element again on the general path (which reports the error, if any).

    /// In an array, where the next element starts: after whitespace and, past the first
    /// element, the `,` before it.
    #[inline]
    fn next_element_at(&self) -> Option<usize> {
        if self.in_object() || !matches!(self.state, State::First | State::After) {
            return None;
        }
        let mut pos = self.pos + self.whitespace_at(self.pos);
        if self.state == State::After {
            if self.input.get(pos) != Some(&b',') {
                return None;
            }
            pos += 1;
            pos += self.whitespace_at(pos);
        }
        Some(pos)
    }

    /// The next array element as a string of exactly `2 * N` hex digits, decoded.
    #[inline]
    pub fn fast_hex_element<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (out, end) = self.hex_string_at::<N>(self.next_element_at()?)?;
        self.pos = end;
        self.state = State::After;
        Some(out)
    }

    /// The next array element, if it is an object: its `{` read (the cursor is inside it).
    #[inline]
    pub fn fast_open_object_element(&mut self) -> Option<()> {
        let pos = self.next_element_at()?;
        if self.input.get(pos) != Some(&b'{') || usize::from(self.depth) >= MAX_DEPTH {
            return None;
        }
        self.stack |= 1u32 << self.depth;
        self.depth += 1;
        self.pos = pos + 1;
        self.state = State::First;
        Some(())
    }

    /// Inside an object just opened: the next key, if it is plain ASCII, with its `:` read.
    /// `first` is true for the first member (no `,` before it).
    #[inline]
    pub fn fast_key(&mut self, first: bool) -> Option<&'a [u8]> {
        if !self.in_object() {
            return None;
        }
        let mut pos = self.pos + self.whitespace_at(self.pos);
        if !first {
            if self.input.get(pos) != Some(&b',') {
                return None;
            }
            pos += 1;
            pos += self.whitespace_at(pos);
        }
        if self.input.get(pos) != Some(&b'"') {
            return None;
        }
        let len = plain_prefix(self.input.get(pos + 1..)?);
        let close = pos + 1 + len;
        if self.input.get(close) != Some(&b'"') {
            return None;
        }
        let colon = close + 1 + self.whitespace_at(close + 1);
        if self.input.get(colon) != Some(&b':') {
            return None;
        }
        let key = self.input.get(pos + 1..close)?;
        self.pos = colon + 1 + self.whitespace_at(colon + 1);
        Some(key)
    }

    /// A member value that is a string of exactly `2 * N` hex digits, decoded and reversed
    /// (display order to internal order).
    #[inline]
    pub fn fast_hash_value<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (mut out, end) = self.hex_string_at::<N>(self.pos)?;
        out.reverse();
        self.pos = end;
        Some(out)
    }

    /// A member value that is an integer of at most 18 digits (no fraction or exponent).
    #[inline]
    pub fn fast_int_value(&mut self) -> Option<i64> {
        let start = self.pos;
        let neg = self.input.get(start) == Some(&b'-');
        let digits_at = start + usize::from(neg);
        let rest = self.input.get(digits_at..)?;
        let mut value = 0i64;
        let mut n = 0;
        while let Some(&d) = rest.get(n) {
            if !d.is_ascii_digit() || n == 18 {
                break;
            }
            value = value * 10 + i64::from(d - b'0');
            n += 1;
        }
        let next = rest.get(n).copied();
        if n == 0
            || (n > 1 && rest.first() == Some(&b'0'))
            || matches!(next, Some(b'0'..=b'9' | b'.' | b'e' | b'E'))
        {
            return None;
        }
        self.pos = digits_at + n;
        Some(if neg { -value } else { value })
    }

    /// A member value that is `null`.
    #[inline]
    pub fn fast_null_value(&mut self) -> Option<()> {
        (self.input.get(self.pos..self.pos + 4)? == b"null").then(|| self.pos += 4)
    }

    /// After a member value: `}` closes the object (`Some(true)`), `,` is left for the next
    /// [`Cursor::fast_key`] (`Some(false)`).
    #[inline]
    pub fn fast_object_end(&mut self) -> Option<bool> {
        self.pos += self.whitespace_at(self.pos);
        match self.input.get(self.pos) {
            Some(b'}') => {
                self.close();
                Some(true)
            }
            Some(b',') => Some(false),
            _ => None,
        }
    }

    /// After a key: skips a value that is a string of exactly `digits` bytes (`count` is
    /// `None`) or an array of `count` such strings, looking only at the quotes and separators,
    /// and returns its span. For a caller that decodes every byte of those strings as hex
    /// afterwards, which checks them more strictly than JSON would: a header chunk is then read
    /// once, not twice. `None`, cursor unchanged, if the value does not have that shape.
    pub fn skip_sized_strings(&mut self, count: Option<usize>, digits: usize) -> Option<Value> {
        if self.state != State::AfterKey {
            return None;
        }
        let colon = self.pos + self.whitespace_at(self.pos);
        if self.input.get(colon) != Some(&b':') {
            return None;
        }
        let start = colon + 1 + self.whitespace_at(colon + 1);
        let string_at = |pos: usize| {
            (self.input.get(pos) == Some(&b'"') && self.input.get(pos + 1 + digits) == Some(&b'"'))
                .then_some(pos + digits + 2)
        };
        let (kind, end) = match count {
            None => (Kind::String, string_at(start)?),
            Some(count) => {
                if self.input.get(start) != Some(&b'[') {
                    return None;
                }
                let mut pos = start + 1;
                for i in 0..count {
                    pos += self.whitespace_at(pos);
                    if i > 0 {
                        if self.input.get(pos) != Some(&b',') {
                            return None;
                        }
                        pos += 1;
                        pos += self.whitespace_at(pos);
                    }
                    pos = string_at(pos)?;
                }
                pos += self.whitespace_at(pos);
                if self.input.get(pos) != Some(&b']') {
                    return None;
                }
                (Kind::Array, pos + 1)
            }
        };
        self.pos = end;
        self.state = State::After;
        Some(Value { kind, start, end })
    }

    #[inline]
    fn whitespace_at(&self, pos: usize) -> usize {
        whitespace_prefix(self.input.get(pos..).unwrap_or(&[]))
    }

    /// `"` + `2 * N` hex digits + `"` at `pos`: the bytes and the offset after the string.
    #[inline]
    fn hex_string_at<const N: usize>(&self, pos: usize) -> Option<([u8; N], usize)> {
        let digits_end = pos + 1 + 2 * N;
        if self.input.get(pos) != Some(&b'"') || self.input.get(digits_end) != Some(&b'"') {
            return None;
        }
        let out = crate::hex::decode_array(self.input.get(pos + 1..digits_end)?).ok()?;
        Some((out, digits_end + 1))
    }

    /// The end of the object at `pos` if it is flat: plain keys, no nested containers, string
    /// values without escapes or non-ASCII. Such an object is valid JSON exactly when this
    /// returns `Some`; `None` sends the caller down the general path, which reports what (if
    /// anything) is wrong. Skipping history rows is most of scanning a history response.
    fn flat_object_end(&self, pos: usize) -> Option<usize> {
        let at = |i: usize| self.input.get(i).copied();
        let ws = |i: usize| i + self.whitespace_at(i);
        let plain_string_end = |i: usize| {
            // Hashes are 64 hex digits: try that length first, all bytes checked at once.
            if at(i + 65) == Some(b'"') && all_plain(self.input.get(i + 1..i + 65)?) {
                return Some(i + 66);
            }
            let n = plain_prefix(self.input.get(i + 1..)?);
            (at(i + 1 + n)? == b'"').then_some(i + 2 + n)
        };
        let mut i = ws(pos + 1);
        if at(i)? == b'}' {
            return Some(i + 1);
        }
        loop {
            if at(i)? != b'"' {
                return None;
            }
            i = ws(plain_string_end(i)?);
            if at(i)? != b':' {
                return None;
            }
            i = ws(i + 1);
            i = match at(i)? {
                b'"' => plain_string_end(i)?,
                b'-' | b'0'..=b'9' => self.number(i).ok()?,
                b't' => self.literal(i, b"true").ok()?,
                b'f' => self.literal(i, b"false").ok()?,
                b'n' => self.literal(i, b"null").ok()?,
                _ => return None,
            };
            i = ws(i);
            match at(i)? {
                b',' => i = ws(i + 1),
                b'}' => return Some(i + 1),
                _ => return None,
            }
        }
    }

    /// A value from its first part: a scalar as is, a container read to its end.
    #[inline(always)]
    pub fn finish_entry(&mut self, entry: Entry) -> Result<Value, JsonError> {
        match entry {
            Entry::Scalar(v) => Ok(v),
            Entry::Open(kind) => {
                let start = self.pos.saturating_sub(1);
                self.skip_to_depth(self.depth())?;
                Ok(Value {
                    kind,
                    start,
                    end: self.pos,
                })
            }
        }
    }

    fn incomplete(&self) -> JsonError {
        error(self.input.len(), JsonErrorKind::Incomplete)
    }

    #[inline(always)]
    fn in_object(&self) -> bool {
        self.depth > 0 && (self.stack >> (self.depth - 1)) & 1 == 1
    }

    /// Skips whitespace; the next byte, if any.
    #[inline(always)]
    fn skip_whitespace(&mut self) -> Option<u8> {
        let rest = self.input.get(self.pos..).unwrap_or(&[]);
        self.pos += whitespace_prefix(rest);
        self.input.get(self.pos).copied()
    }

    #[inline(always)]
    fn after_value(&self) -> State {
        if self.depth == 0 {
            State::Done
        } else {
            State::After
        }
    }

    #[inline(always)]
    fn close(&mut self) {
        self.pos += 1;
        self.depth = self.depth.saturating_sub(1);
        self.state = self.after_value();
    }

    /// Reads the value starting with `b` at `pos`.
    #[inline(always)]
    fn entry(&mut self, b: Option<u8>) -> Result<Entry, JsonError> {
        let start = self.pos;
        let Some(b) = b else {
            return Err(self.incomplete());
        };
        let (kind, end) = match b {
            b'{' | b'[' => {
                if usize::from(self.depth) >= MAX_DEPTH {
                    return Err(error(start, JsonErrorKind::TooDeep));
                }
                let bit = 1u32 << self.depth;
                let kind = if b == b'{' {
                    self.stack |= bit;
                    Kind::Object
                } else {
                    self.stack &= !bit;
                    Kind::Array
                };
                self.depth += 1;
                self.pos = start + 1;
                self.state = State::First;
                return Ok(Entry::Open(kind));
            }
            b'"' => (Kind::String, self.string(start)?),
            b'-' | b'0'..=b'9' => (Kind::Number, self.number(start)?),
            b't' => (Kind::Bool, self.literal(start, b"true")?),
            b'f' => (Kind::Bool, self.literal(start, b"false")?),
            b'n' => (Kind::Null, self.literal(start, b"null")?),
            _ => return Err(error(start, JsonErrorKind::UnexpectedByte(b))),
        };
        self.pos = end;
        self.state = self.after_value();
        Ok(Entry::Scalar(Value { kind, start, end }))
    }

    fn literal(&self, start: usize, word: &[u8]) -> Result<usize, JsonError> {
        for (i, &want) in word.iter().enumerate() {
            match self.input.get(start + i) {
                Some(&b) if b == want => {}
                Some(&b) => return Err(error(start + i, JsonErrorKind::UnexpectedByte(b))),
                None => return Err(self.incomplete()),
            }
        }
        Ok(start + word.len())
    }

    /// Validates the number at `start`; returns the offset after it.
    ///
    /// Errors as the tokenizer's byte-by-byte automaton: a number with more than
    /// [`MAX_NUMBER_LEN`] valid bytes fails at its first byte past the limit, before anything
    /// wrong that comes later.
    fn number(&self, start: usize) -> Result<usize, JsonError> {
        let fail = |i: usize| {
            if i - start > MAX_NUMBER_LEN {
                return error(start + MAX_NUMBER_LEN, JsonErrorKind::NumberTooLong);
            }
            match self.input.get(i) {
                Some(&b) => error(i, JsonErrorKind::UnexpectedByte(b)),
                None => self.incomplete(),
            }
        };
        let at = |i: usize| self.input.get(i).copied().unwrap_or(0);
        let digits = |i: usize| {
            let rest = self.input.get(i..).unwrap_or(&[]);
            rest.iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(rest.len())
        };
        let mut i = start + usize::from(at(start) == b'-');
        match at(i) {
            b'0' => i += 1,
            b'1'..=b'9' => i += digits(i),
            _ => return Err(fail(i)),
        }
        if at(i) == b'.' {
            let n = digits(i + 1);
            if n == 0 {
                return Err(fail(i + 1));
            }
            i += 1 + n;
        }
        if matches!(at(i), b'e' | b'E') {
            i += 1;
            i += usize::from(matches!(at(i), b'+' | b'-'));
            let n = digits(i);
            if n == 0 {
                return Err(fail(i));
            }
            i += n;
        }
        if i - start > MAX_NUMBER_LEN {
            return Err(error(start + MAX_NUMBER_LEN, JsonErrorKind::NumberTooLong));
        }
        Ok(i)
    }

    /// Validates the string whose `"` is at `start`; returns the offset after its closing `"`.
    fn string(&self, start: usize) -> Result<usize, JsonError> {
        let mut i = start + 1;
        loop {
            i += plain_prefix(self.input.get(i..).unwrap_or(&[]));
            let Some(&b) = self.input.get(i) else {
                return Err(self.incomplete());
            };
            i = match b {
                b'"' => return Ok(i + 1),
                b'\\' => self.escape(i)?,
                0x80..=0xff => self.utf8(i)?,
                _ => return Err(error(i, JsonErrorKind::UnexpectedByte(b))),
            };
        }
    }

    fn byte(&self, i: usize) -> Result<u8, JsonError> {
        self.input.get(i).copied().ok_or(self.incomplete())
    }

    /// The escape whose `\` is at `at`; returns the offset after it (after both halves of a
    /// surrogate pair).
    fn escape(&self, at: usize) -> Result<usize, JsonError> {
        match self.byte(at + 1)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(at + 2),
            b'u' => {
                let (unit, end) = self.hex4(at + 2)?;
                if (0xdc00..=0xdfff).contains(&unit) {
                    return Err(error(end - 1, JsonErrorKind::LoneSurrogate));
                }
                if !(0xd800..=0xdbff).contains(&unit) {
                    return Ok(end);
                }
                for (i, want) in [(end, b'\\'), (end + 1, b'u')] {
                    if self.byte(i)? != want {
                        return Err(error(i, JsonErrorKind::LoneSurrogate));
                    }
                }
                let (low, end) = self.hex4(end + 2)?;
                if !(0xdc00..=0xdfff).contains(&low) {
                    return Err(error(end - 1, JsonErrorKind::LoneSurrogate));
                }
                Ok(end)
            }
            _ => Err(error(at + 1, JsonErrorKind::InvalidEscape)),
        }
    }

    /// Four hex digits at `at`: their value and the offset after them.
    fn hex4(&self, at: usize) -> Result<(u16, usize), JsonError> {
        let mut value = 0u16;
        for i in at..at + 4 {
            let b = self.byte(i)?;
            let d = crate::hex::nibble(b).ok_or(error(i, JsonErrorKind::InvalidEscape))?;
            value = (value << 4) | u16::from(d);
        }
        Ok((value, at + 4))
    }

    /// The UTF-8 character whose lead byte is at `at`; returns the offset after it.
    fn utf8(&self, at: usize) -> Result<usize, JsonError> {
        let (need, lo, hi) = match self.byte(at)? {
            0xc2..=0xdf => (1, 0x80, 0xbf),
            0xe0 => (2, 0xa0, 0xbf),
            0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
            0xed => (2, 0x80, 0x9f),
            0xf0 => (3, 0x90, 0xbf),
            0xf1..=0xf3 => (3, 0x80, 0xbf),
            0xf4 => (3, 0x80, 0x8f),
            _ => return Err(error(at, JsonErrorKind::InvalidUtf8)),
        };
        let mut range = (lo, hi);
        for i in at + 1..=at + need {
            let b = self.byte(i)?;
            if b < range.0 || b > range.1 {
                return Err(error(i, JsonErrorKind::InvalidUtf8));
            }
            range = (0x80, 0xbf);
        }
        Ok(at + need + 1)
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

#[cfg(test)]
mod tests {
    use super::super::tokenizer::Tokenizer;
    use super::*;
    use proptest::prelude::*;

    /// The tokenizer's verdict on `input` fed in one piece.
    fn tokenizer_verdict(input: &[u8]) -> Result<(), JsonError> {
        let mut tok = Tokenizer::new();
        let mut rest = input;
        while !rest.is_empty() {
            let (n, _) = tok.next(rest)?;
            rest = &rest[n..];
        }
        tok.finish().map(|_| ())
    }

    fn cursor_verdict(input: &[u8]) -> Result<(), JsonError> {
        Cursor::whole(input).map(|_| ())
    }

    /// Fragments that build plausible, often almost-valid JSON.
    const PIECES: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b" ",
        b"\"",
        b"\"k\"",
        b"\"v\"",
        b"1",
        b"0",
        b"-",
        b".",
        b"e",
        b"+",
        b"12.5e-3",
        b"true",
        b"tru",
        b"null",
        b"false",
        b"\\",
        b"\\u",
        b"d83d",
        b"\\ude00",
        b"\\n",
        b"\\x",
        b"\xc3\xa9",
        b"\xe2\x82",
        b"\xed\xa0\x80",
        b"\xf4\x90",
        b"\x01",
        b"\t\r\n",
        b"00",
        b"{\"a\":[1,2,{\"b\":null}]}",
        b"\"0123456789abcdef\"",
        b"                                        ",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn agrees_with_the_tokenizer(parts in proptest::collection::vec(0..PIECES.len(), 0..24)) {
            let input: std::vec::Vec<u8> = parts.iter().flat_map(|&i| PIECES[i].iter().copied()).collect();
            prop_assert_eq!(cursor_verdict(&input), tokenizer_verdict(&input), "{:?}", std::string::String::from_utf8_lossy(&input));
        }

        #[test]
        fn agrees_on_arbitrary_bytes(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(cursor_verdict(&input), tokenizer_verdict(&input));
        }
    }

    #[test]
    fn agrees_on_deep_and_long_input() {
        let deep = "[".repeat(MAX_DEPTH + 1);
        let long = "1".repeat(MAX_NUMBER_LEN + 1);
        let mixed = "{\"k\":".repeat(MAX_DEPTH) + "1" + &"}".repeat(MAX_DEPTH);
        for input in [deep.as_str(), long.as_str(), mixed.as_str()] {
            assert_eq!(
                cursor_verdict(input.as_bytes()),
                tokenizer_verdict(input.as_bytes())
            );
        }
    }

    #[test]
    fn spans_and_skips() {
        let text = br#" {"a": [1, {"b": "x\"y"}], "c": -2.5e3 , "d": null}  "#;
        let (cur, v) = Cursor::whole(text).unwrap();
        assert_eq!(v.kind, Kind::Object);
        assert_eq!(cur.span(v), &text[1..text.len() - 2]);
        let mut cur = Cursor::new(text);
        assert_eq!(cur.next_entry().unwrap(), Some(Entry::Open(Kind::Object)));
        assert_eq!(cur.next_key().unwrap().unwrap().0, b"a");
        let a = cur.member_value().unwrap();
        assert_eq!(cur.span(a), br#"[1, {"b": "x\"y"}]"#);
        assert_eq!(cur.next_key().unwrap().unwrap().0, b"c");
        let c = cur.member_value().unwrap();
        assert_eq!((c.kind, cur.span(c)), (Kind::Number, &b"-2.5e3"[..]));
        cur.skip_to_depth(1).unwrap();
        assert_eq!(cur.depth(), 0);
        cur.expect_end().unwrap();
    }
}
