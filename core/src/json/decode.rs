//! Typed values from raw JSON spans (as [`scan`](super::envelope::scan) returns them).
//!
//! Every helper takes one complete JSON value (surrounding whitespace allowed), validates it
//! with the depth-limited tokenizer first and never panics. Strings come back raw (escapes not
//! decoded): fine for hex, and [`unescape_into`](super::envelope::unescape_into) decodes the
//! rest. [`from_span`] hands a span to `serde-json-core` for structured results, after the same
//! validation, so its recursion is bounded by [`MAX_DEPTH`](super::tokenizer::MAX_DEPTH).
//!
//! ```
//! use electrum_spv_core::json::decode::{ArrayIter, u64_of};
//! let heights = ArrayIter::new(b"[1, 2 ,3]")?;
//! let sum: u64 = heights.map(|h| u64_of(h).unwrap_or(0)).sum();
//! assert_eq!(sum, 6);
//! # Ok::<(), electrum_spv_core::json::DecodeError>(())
//! ```

use core::fmt;

use super::cursor::{Cursor, Entry, Kind, Value, parse_i128};
use super::tokenizer::JsonError;
use crate::hex::{self, HexError};

/// Why a span does not hold the expected value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The span is not one valid JSON value (or nests too deep).
    Json(JsonError),
    /// Valid JSON of another type (a fraction or exponent where an integer is expected, too).
    WrongType,
    /// An integer outside the range of the target type.
    OutOfRange,
    /// A string that is not the expected hex.
    Hex(HexError),
    /// `serde-json-core` refused the value ([`from_span`]).
    Serde(serde_json_core::de::Error),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Json(e) => write!(f, "invalid JSON: {e}"),
            DecodeError::WrongType => f.write_str("JSON value of the wrong type"),
            DecodeError::OutOfRange => f.write_str("number out of range"),
            DecodeError::Hex(e) => write!(f, "invalid hex string: {e}"),
            DecodeError::Serde(e) => write!(f, "cannot decode JSON value: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}

impl From<JsonError> for DecodeError {
    fn from(e: JsonError) -> Self {
        DecodeError::Json(e)
    }
}

impl From<HexError> for DecodeError {
    fn from(e: HexError) -> Self {
        DecodeError::Hex(e)
    }
}

fn whole(span: &[u8]) -> Result<(Cursor<'_>, Value), DecodeError> {
    Ok(Cursor::whole(span)?)
}

fn integer(span: &[u8]) -> Result<i128, DecodeError> {
    let (cur, v) = whole(span)?;
    if v.kind != Kind::Number {
        return Err(DecodeError::WrongType);
    }
    parse_i128(cur.span(v)).ok_or(
        // A fraction or exponent (a 21+ digit integer is out of range of everything here).
        if cur.span(v).iter().any(|b| matches!(b, b'.' | b'e' | b'E')) {
            DecodeError::WrongType
        } else {
            DecodeError::OutOfRange
        },
    )
}

/// A non-negative integer without fraction or exponent.
///
/// # Errors
/// [`DecodeError::WrongType`] for anything else, [`DecodeError::OutOfRange`] if it does not fit.
pub fn u64_of(span: &[u8]) -> Result<u64, DecodeError> {
    u64::try_from(integer(span)?).map_err(|_| DecodeError::OutOfRange)
}

/// An integer without fraction or exponent.
///
/// # Errors
/// [`DecodeError::WrongType`] for anything else, [`DecodeError::OutOfRange`] if it does not fit.
pub fn i64_of(span: &[u8]) -> Result<i64, DecodeError> {
    i64::try_from(integer(span)?).map_err(|_| DecodeError::OutOfRange)
}

/// `true` or `false`.
///
/// # Errors
/// [`DecodeError::WrongType`] for anything else.
pub fn bool_of(span: &[u8]) -> Result<bool, DecodeError> {
    let (cur, v) = whole(span)?;
    match (v.kind, cur.span(v)) {
        (Kind::Bool, b"true") => Ok(true),
        (Kind::Bool, _) => Ok(false),
        _ => Err(DecodeError::WrongType),
    }
}

/// The span is `null` (surrounding whitespace allowed); `false` for anything else, invalid
/// JSON included.
pub fn is_null(span: &[u8]) -> bool {
    matches!(whole(span), Ok((_, v)) if v.kind == Kind::Null)
}

/// The raw (still escaped) content of a string.
///
/// # Errors
/// [`DecodeError::WrongType`] if the value is not a string.
pub fn str_of(span: &[u8]) -> Result<&[u8], DecodeError> {
    let (cur, v) = whole(span)?;
    if v.kind != Kind::String {
        return Err(DecodeError::WrongType);
    }
    Ok(cur.string_content(v))
}

/// A string of exactly `2 * N` hex digits (either case) as `N` bytes, in string order.
///
/// # Errors
/// [`DecodeError::WrongType`] if not a string, [`DecodeError::Hex`] for a wrong length or a
/// non-hex character (an escape counts as one).
pub fn hex_array_of<const N: usize>(span: &[u8]) -> Result<[u8; N], DecodeError> {
    Ok(hex::decode_array(str_of(span)?)?)
}

/// A 64-digit display-order hash (txid, block hash as explorers show them) in internal byte
/// order, ready for [`Txid`](crate::Txid) or [`BlockHash`](crate::BlockHash).
///
/// # Errors
/// As [`hex_array_of`].
pub fn display_hash_of(span: &[u8]) -> Result<[u8; 32], DecodeError> {
    let mut out: [u8; 32] = hex_array_of(span)?;
    out.reverse();
    Ok(out)
}

/// A hex string of any length up to `2 * out.len()` digits, decoded into the front of `out`
/// (a raw transaction, a header list in the pre-1.6 `hex` form).
///
/// # Errors
/// [`DecodeError::WrongType`] if not a string; [`DecodeError::Hex`] for an odd length, a
/// string longer than `out` can hold (`expected` is then `2 * out.len()`) or a bad digit.
pub fn hex_into<'b>(span: &[u8], out: &'b mut [u8]) -> Result<&'b [u8], DecodeError> {
    let digits = str_of(span)?;
    let got = digits.len();
    if got % 2 != 0 || got / 2 > out.len() {
        return Err(DecodeError::Hex(HexError::BadLength {
            expected: if got % 2 != 0 { got + 1 } else { out.len() * 2 },
            got,
        }));
    }
    let dst = out.get_mut(..got / 2).unwrap_or(&mut []);
    hex::decode_to_slice(digits, dst)?;
    Ok(dst)
}

/// Decodes a span with `serde-json-core`, after validating it with the depth-limited tokenizer
/// (so hostile nesting never reaches the recursive decoder). The whole span must be consumed
/// (trailing whitespace allowed).
///
/// Borrowed `&str` fields come back with their escapes undecoded (a `serde-json-core`
/// property); hex and numbers are unaffected.
///
/// # Errors
/// [`DecodeError::Json`] from the validation, [`DecodeError::Serde`] from the decoder.
pub fn from_span<'a, T: serde::Deserialize<'a>>(span: &'a [u8]) -> Result<T, DecodeError> {
    whole(span)?;
    let (value, _) = serde_json_core::from_slice(span).map_err(DecodeError::Serde)?;
    Ok(value)
}

/// The element spans of a JSON array, in order (history items, header hex strings, ...).
///
/// [`ArrayIter::new`] validates the whole span and counts its elements first, so iteration
/// cannot fail and the length is exact.
#[derive(Debug, Clone)]
pub struct ArrayIter<'a> {
    cur: Cursor<'a>,
    remaining: usize,
}

impl<'a> ArrayIter<'a> {
    /// Iterates the elements of the array `span`.
    ///
    /// # Errors
    /// [`DecodeError::Json`] for invalid JSON, [`DecodeError::WrongType`] if not an array.
    pub fn new(span: &'a [u8]) -> Result<Self, DecodeError> {
        let (cur, remaining) = open(span, Kind::Array)?;
        Ok(ArrayIter { cur, remaining })
    }
}

/// Validates `span` as a container opened by `start` and counts its members; returns a cursor
/// just inside it.
fn open(span: &[u8], kind: Kind) -> Result<(Cursor<'_>, usize), DecodeError> {
    let mut cur = Cursor::new(span);
    if cur.next_entry()? != Some(Entry::Open(kind)) {
        // Validate anyway so invalid JSON reports as such.
        whole(span)?;
        return Err(DecodeError::WrongType);
    }
    let inside = cur.clone();
    let mut n = 0usize;
    if kind == Kind::Array {
        while cur.next_value()?.is_some() {
            n += 1;
        }
    } else {
        while cur.next_key()?.is_some() {
            cur.member_value()?;
            n += 1;
        }
    }
    cur.expect_end()?;
    Ok((inside, n))
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        match self.cur.next_value() {
            Ok(Some(v)) => Some(self.cur.span(v)),
            _ => {
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for ArrayIter<'_> {}

/// The members of a JSON object as `(raw key, value span)`, in order, duplicates included.
/// Validated and counted up front like [`ArrayIter`].
#[derive(Debug, Clone)]
pub struct ObjectIter<'a> {
    cur: Cursor<'a>,
    remaining: usize,
}

impl<'a> ObjectIter<'a> {
    /// Iterates the members of the object `span`.
    ///
    /// # Errors
    /// [`DecodeError::Json`] for invalid JSON, [`DecodeError::WrongType`] if not an object.
    pub fn new(span: &'a [u8]) -> Result<Self, DecodeError> {
        let (cur, remaining) = open(span, Kind::Object)?;
        Ok(ObjectIter { cur, remaining })
    }

    /// The value of the first member whose raw key is `key`, if any.
    ///
    /// # Errors
    /// As [`ObjectIter::new`].
    pub fn field(span: &'a [u8], key: &str) -> Result<Option<&'a [u8]>, DecodeError> {
        Ok(Self::new(span)?
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| v))
    }
}

impl<'a> Iterator for ObjectIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let item = match self.cur.next_key() {
            Ok(Some((key, _))) => self.cur.member_value().map(|v| (key, self.cur.span(v))),
            _ => Err(super::cursor::error(
                0,
                super::tokenizer::JsonErrorKind::Incomplete,
            )),
        };
        item.map_err(|_| self.remaining = 0).ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for ObjectIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(u64_of(b" 18446744073709551615 "), Ok(u64::MAX));
        assert_eq!(
            u64_of(b"18446744073709551616"),
            Err(DecodeError::OutOfRange)
        );
        assert_eq!(u64_of(b"-1"), Err(DecodeError::OutOfRange));
        assert_eq!(u64_of(b"1.0"), Err(DecodeError::WrongType));
        assert_eq!(u64_of(b"1e3"), Err(DecodeError::WrongType));
        assert_eq!(u64_of(b"\"1\""), Err(DecodeError::WrongType));
        assert_eq!(
            u64_of(b"123456789012345678901234567890"),
            Err(DecodeError::OutOfRange)
        );
        assert_eq!(i64_of(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(i64_of(b"9223372036854775808"), Err(DecodeError::OutOfRange));
        assert!(matches!(u64_of(b"1 2"), Err(DecodeError::Json(_))));
    }
}
