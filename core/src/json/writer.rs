//! JSON-RPC request encoder into a caller buffer.
//!
//! Every request is JSON-RPC 2.0 with an integer `id` and positional `params` (the dialect
//! every server examined accepts). Notifications (no `id`, e.g. protocol 1.7's `server.ping`
//! notification) and batches are supported. Nothing allocates and nothing panics: a full
//! buffer or a call out of order is a typed [`EncodeError`], and the failed call leaves the
//! writer as it was before it, so the call sequence can be abandoned cleanly.
//!
//! ```
//! use electrum_spv_core::json::RequestWriter;
//! let mut buf = [0u8; 128];
//! let mut w = RequestWriter::new(&mut buf);
//! w.begin(1, "server.version")?;
//! w.str("electrum-spv 0.1")?;
//! w.str_array(&["1.4", "1.6"])?;
//! w.end()?;
//! let n = w.finish()?;
//! assert_eq!(
//!     &buf[..n],
//!     br#"{"jsonrpc":"2.0","id":1,"method":"server.version","params":["electrum-spv 0.1",["1.4","1.6"]]}
//! "#
//! );
//! # Ok::<(), electrum_spv_core::json::EncodeError>(())
//! ```

use core::fmt;

use super::cursor::Cursor;
use crate::hex;

/// Why a request could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The buffer is too small; the failed call needed a buffer of at least this many bytes.
    BufferTooSmall {
        /// A lower bound of the buffer size the message needs.
        needed_at_least: usize,
    },
    /// A parameter or `end` with no request open.
    NoOpenRequest,
    /// `begin`, `begin_batch`, `end_batch` or `finish` while a request's parameters are open.
    RequestOpen,
    /// `end_batch` outside a batch.
    NotInBatch,
    /// `end_batch` with no request in the batch (ElectrumX rejects empty batches).
    EmptyBatch,
    /// A new request or batch after the message was complete (one request, or one batch,
    /// per writer).
    MessageComplete,
    /// `finish` before a request or batch was completed.
    Unfinished,
    /// `raw` was given something other than one JSON value, or a value containing `\n`
    /// (which would break the line framing).
    InvalidRaw,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::BufferTooSmall { needed_at_least } => {
                write!(
                    f,
                    "request buffer too small: need at least {needed_at_least} bytes"
                )
            }
            EncodeError::NoOpenRequest => f.write_str("no request open"),
            EncodeError::RequestOpen => f.write_str("a request is still open"),
            EncodeError::NotInBatch => f.write_str("not in a batch"),
            EncodeError::EmptyBatch => f.write_str("empty batch"),
            EncodeError::MessageComplete => f.write_str("message already complete"),
            EncodeError::Unfinished => f.write_str("message not complete"),
            EncodeError::InvalidRaw => f.write_str("raw parameter is not one JSON value"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing written.
    Empty,
    /// Inside `[` of a batch, between requests.
    Batch { empty: bool },
    /// Inside `"params":[`.
    Params { first: bool },
    /// One request or one batch complete.
    Complete,
}

/// Writes one request, notification or batch into a caller buffer.
///
/// Call order: [`begin`](Self::begin) (or [`begin_notification`](Self::begin_notification)),
/// parameters, [`end`](Self::end), then [`finish`](Self::finish); for a batch, wrap any number
/// (at least one) of those begin...end sequences in [`begin_batch`](Self::begin_batch) and
/// [`end_batch`](Self::end_batch).
#[derive(Debug)]
pub struct RequestWriter<'a> {
    /// Where the message starts; `second` goes on where `first` ends (a ring buffer's free
    /// space wraps around its end).
    first: &'a mut [u8],
    second: &'a mut [u8],
    len: usize,
    state: State,
    batch: bool,
}

/// Longest decimal `u64`.
const U64_DIGITS: usize = 20;

/// Powers of ten a `u64` can hold, highest first.
const POWERS_OF_TEN: [u64; U64_DIGITS] = {
    let mut p = [1u64; U64_DIGITS];
    let mut i = U64_DIGITS - 1;
    while i > 0 {
        p[i - 1] = p[i] * 10;
        i -= 1;
    }
    p
};

/// `n` in decimal, each digit counted by subtracting its power of ten: no 64-bit division,
/// which on a 32-bit device would link compiler_builtins' ~1 KB `__aeabi_uldivmod`.
fn decimal(n: u64, out: &mut [u8; U64_DIGITS]) -> &[u8] {
    let mut rest = n;
    let mut len = 0;
    for (i, &power) in POWERS_OF_TEN.iter().enumerate() {
        let mut digit = b'0';
        while rest >= power {
            rest -= power;
            digit += 1;
        }
        if digit != b'0' || len != 0 || i == U64_DIGITS - 1 {
            if let Some(d) = out.get_mut(len) {
                *d = digit;
            }
            len += 1;
        }
    }
    out.get(..len).unwrap_or(&[])
}

impl<'a> RequestWriter<'a> {
    /// A writer filling `buf` from its start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self::split(buf, &mut [])
    }

    /// A writer filling `first`, then going on in `second`: the two free parts of a ring
    /// buffer, wrapped around its end.
    pub fn split(first: &'a mut [u8], second: &'a mut [u8]) -> Self {
        RequestWriter {
            first,
            second,
            len: 0,
            state: State::Empty,
            batch: false,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Runs `f`; on error restores the writer to where it was.
    fn atomically(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let (len, state, batch) = (self.len, self.state, self.batch);
        let r = f(self);
        if r.is_err() {
            self.len = len;
            self.state = state;
            self.batch = batch;
        }
        r
    }

    /// Claims the next `n` bytes.
    fn claim(&mut self, n: usize) -> Result<(), EncodeError> {
        let end = self.len.saturating_add(n);
        if end > self.first.len() + self.second.len() {
            return Err(EncodeError::BufferTooSmall {
                needed_at_least: end,
            });
        }
        self.len = end;
        Ok(())
    }

    /// The next `n` bytes, claimed, if they lie in one piece.
    fn room(&mut self, n: usize) -> Result<Option<&mut [u8]>, EncodeError> {
        let start = self.len;
        self.claim(n)?;
        let first = self.first.len();
        Ok(if self.len <= first {
            self.first.get_mut(start..self.len)
        } else if start >= first {
            self.second.get_mut(start - first..self.len - first)
        } else {
            None
        })
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let start = self.len;
        if let Some(dst) = self.room(bytes.len())? {
            dst.copy_from_slice(bytes);
            return Ok(());
        }
        // Across the wrap: the part that fits in `first`, the rest at the start of `second`.
        let (head, tail) = bytes.split_at(self.first.len().saturating_sub(start));
        if let (Some(a), Some(b)) = (
            self.first.get_mut(start..),
            self.second.get_mut(..tail.len()),
        ) {
            a.copy_from_slice(head);
            b.copy_from_slice(tail);
        }
        Ok(())
    }

    fn put_u64(&mut self, n: u64) -> Result<(), EncodeError> {
        let mut digits = [0u8; U64_DIGITS];
        self.put(decimal(n, &mut digits))
    }

    /// A quoted JSON string: `"` and `\` escaped, control characters as `\n`-style or `\u00XX`
    /// escapes, everything else (UTF-8 included) as is.
    fn put_str(&mut self, s: &str) -> Result<(), EncodeError> {
        self.put(b"\"")?;
        let bytes = s.as_bytes();
        let mut from = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let short = match b {
                b'"' => b'"',
                b'\\' => b'\\',
                b'\n' => b'n',
                b'\r' => b'r',
                b'\t' => b't',
                0x08 => b'b',
                0x0c => b'f',
                0..=0x1f => 0,
                _ => continue,
            };
            self.put(bytes.get(from..i).unwrap_or(&[]))?;
            if short != 0 {
                self.put(&[b'\\', short])?;
            } else {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let hex = |n: u8| HEX.get(usize::from(n)).copied().unwrap_or(b'0');
                self.put(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 0xf)])?;
            }
            from = i + 1;
        }
        self.put(bytes.get(from..).unwrap_or(&[]))?;
        self.put(b"\"")
    }

    fn open(&mut self, id: Option<u64>, method: &str) -> Result<(), EncodeError> {
        self.atomically(|w| {
            match w.state {
                State::Empty => w.batch = false,
                State::Batch { empty } => {
                    if !empty {
                        w.put(b",")?;
                    }
                }
                State::Params { .. } => return Err(EncodeError::RequestOpen),
                State::Complete => return Err(EncodeError::MessageComplete),
            }
            w.put(br#"{"jsonrpc":"2.0","#)?;
            if let Some(id) = id {
                w.put(br#""id":"#)?;
                w.put_u64(id)?;
                w.put(b",")?;
            }
            w.put(br#""method":"#)?;
            w.put_str(method)?;
            w.put(br#","params":["#)?;
            w.state = State::Params { first: true };
            Ok(())
        })
    }

    /// Opens a request: `{"jsonrpc":"2.0","id":<id>,"method":"<method>","params":[`.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`]; [`EncodeError::RequestOpen`] or
    /// [`EncodeError::MessageComplete`] when out of order.
    pub fn begin(&mut self, id: u64, method: &str) -> Result<(), EncodeError> {
        self.open(Some(id), method)
    }

    /// Opens a notification (no `id`, no reply): `{"jsonrpc":"2.0","method":...,"params":[`.
    ///
    /// # Errors
    /// As [`begin`](Self::begin).
    pub fn begin_notification(&mut self, method: &str) -> Result<(), EncodeError> {
        self.open(None, method)
    }

    /// Closes the open request's parameters and the request: `]}`.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`]; [`EncodeError::NoOpenRequest`].
    pub fn end(&mut self) -> Result<(), EncodeError> {
        self.atomically(|w| {
            if !matches!(w.state, State::Params { .. }) {
                return Err(EncodeError::NoOpenRequest);
            }
            w.put(b"]}")?;
            w.state = if w.batch {
                State::Batch { empty: false }
            } else {
                State::Complete
            };
            Ok(())
        })
    }

    /// Opens a batch: `[`.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`]; [`EncodeError::RequestOpen`] or
    /// [`EncodeError::MessageComplete`] unless nothing has been written yet.
    pub fn begin_batch(&mut self) -> Result<(), EncodeError> {
        self.atomically(|w| match w.state {
            State::Empty => {
                w.put(b"[")?;
                w.batch = true;
                w.state = State::Batch { empty: true };
                Ok(())
            }
            State::Params { .. } => Err(EncodeError::RequestOpen),
            State::Batch { .. } | State::Complete => Err(EncodeError::MessageComplete),
        })
    }

    /// Closes the batch: `]`.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`]; [`EncodeError::EmptyBatch`];
    /// [`EncodeError::RequestOpen`]; [`EncodeError::NotInBatch`].
    pub fn end_batch(&mut self) -> Result<(), EncodeError> {
        self.atomically(|w| match w.state {
            State::Batch { empty: false } => {
                w.put(b"]")?;
                w.state = State::Complete;
                Ok(())
            }
            State::Batch { empty: true } => Err(EncodeError::EmptyBatch),
            State::Params { .. } => Err(EncodeError::RequestOpen),
            State::Empty | State::Complete => Err(EncodeError::NotInBatch),
        })
    }

    /// Appends the terminating `\n` and returns the message length, newline included: the
    /// message is `buf[..len]` (from a [`split`](Self::split) writer: `first`, then `second`).
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`]; [`EncodeError::RequestOpen`] or
    /// [`EncodeError::Unfinished`] if the request or batch is not complete.
    pub fn finish(mut self) -> Result<usize, EncodeError> {
        match self.state {
            State::Complete => {
                self.put(b"\n")?;
                Ok(self.len)
            }
            State::Params { .. } => Err(EncodeError::RequestOpen),
            State::Empty | State::Batch { .. } => Err(EncodeError::Unfinished),
        }
    }

    /// Writes one parameter with `f`, after a comma if it is not the first.
    fn param(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        self.atomically(|w| {
            let State::Params { first } = w.state else {
                return Err(EncodeError::NoOpenRequest);
            };
            if !first {
                w.put(b",")?;
            }
            w.state = State::Params { first: false };
            f(w)
        })
    }

    /// A string parameter, escaped as JSON requires.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`]; [`EncodeError::NoOpenRequest`].
    pub fn str(&mut self, s: &str) -> Result<(), EncodeError> {
        self.param(|w| w.put_str(s))
    }

    /// An unsigned integer parameter.
    ///
    /// # Errors
    /// As [`str`](Self::str).
    pub fn u64(&mut self, n: u64) -> Result<(), EncodeError> {
        self.param(|w| w.put_u64(n))
    }

    /// A signed integer parameter.
    ///
    /// # Errors
    /// As [`str`](Self::str).
    pub fn i64(&mut self, n: i64) -> Result<(), EncodeError> {
        self.param(|w| {
            if n < 0 {
                w.put(b"-")?;
            }
            w.put_u64(n.unsigned_abs())
        })
    }

    /// A boolean parameter.
    ///
    /// # Errors
    /// As [`str`](Self::str).
    pub fn bool(&mut self, b: bool) -> Result<(), EncodeError> {
        self.param(|w| w.put(if b { b"true" } else { b"false" }))
    }

    fn put_hex(&mut self, bytes: &[u8], reversed: bool) -> Result<(), EncodeError> {
        self.put(b"\"")?;
        let start = self.len;
        let encode = |src: &[u8], dst: &mut [u8]| {
            let r = if reversed {
                hex::encode_reversed_to_slice(src, dst)
            } else {
                hex::encode_to_slice(src, dst)
            };
            // The lengths match by construction; report a failure as a size problem anyway.
            r.map_err(|_| EncodeError::BufferTooSmall {
                needed_at_least: usize::MAX,
            })
        };
        if let Some(dst) = self.room(bytes.len().saturating_mul(2))? {
            encode(bytes, dst)?;
        } else {
            // Across the wrap: through the stack, a chunk at a time (the last chunk first when
            // reversed, so the text still comes out in order).
            self.len = start;
            let mut text = [0u8; 64];
            let mut chunks = bytes.chunks(text.len() / 2);
            let mut rchunks = bytes.rchunks(text.len() / 2);
            while let Some(chunk) = if reversed {
                rchunks.next()
            } else {
                chunks.next()
            } {
                let text = text.get_mut(..chunk.len() * 2).unwrap_or(&mut []);
                encode(chunk, text)?;
                self.put(text)?;
            }
        }
        self.put(b"\"")
    }

    /// `bytes` as a quoted lowercase hex string, in order (a raw transaction, a script).
    ///
    /// # Errors
    /// As [`str`](Self::str).
    pub fn hex(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.param(|w| w.put_hex(bytes, false))
    }

    /// `bytes` as a quoted lowercase hex string, byte-reversed: the display form of a hash
    /// held in internal order (a txid, a block hash, a script hash).
    ///
    /// # Errors
    /// As [`str`](Self::str).
    pub fn hex_reversed(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.param(|w| w.put_hex(bytes, true))
    }

    /// An array of strings as one parameter (`server.version`'s `[min, max]`).
    ///
    /// # Errors
    /// As [`str`](Self::str).
    pub fn str_array(&mut self, items: &[&str]) -> Result<(), EncodeError> {
        self.param(|w| {
            w.put(b"[")?;
            for (i, s) in items.iter().enumerate() {
                if i > 0 {
                    w.put(b",")?;
                }
                w.put_str(s)?;
            }
            w.put(b"]")
        })
    }

    /// An array of byte strings, each as a quoted lowercase hex string (raw transactions).
    ///
    /// # Errors
    /// As [`str`](Self::str).
    pub fn hex_array(&mut self, items: &[&[u8]]) -> Result<(), EncodeError> {
        self.param(|w| {
            w.put(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    w.put(b",")?;
                }
                w.put_hex(item, false)?;
            }
            w.put(b"]")
        })
    }

    /// A parameter of ready-made JSON, copied as is. It is checked to be exactly one JSON value
    /// (depth-limited) without a raw `\n`.
    ///
    /// # Errors
    /// [`EncodeError::InvalidRaw`], or as [`str`](Self::str).
    pub fn raw(&mut self, json: &[u8]) -> Result<(), EncodeError> {
        if json.contains(&b'\n') || Cursor::whole(json).is_err() {
            return Err(EncodeError::InvalidRaw);
        }
        self.param(|w| w.put(json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_digits() {
        let mut d = [0u8; U64_DIGITS];
        assert_eq!(decimal(0, &mut d), b"0");
        assert_eq!(decimal(u64::MAX, &mut d), b"18446744073709551615");
        for n in [1, 9, 10, 99, 100, 4_294_967_296, 10_000_000_000_000_000_000] {
            assert_eq!(decimal(n, &mut d), n.to_string().as_bytes());
        }
    }

    #[test]
    fn order_errors() {
        let mut buf = [0u8; 256];
        let mut w = RequestWriter::new(&mut buf);
        assert_eq!(w.u64(1), Err(EncodeError::NoOpenRequest));
        assert_eq!(w.end(), Err(EncodeError::NoOpenRequest));
        assert_eq!(w.end_batch(), Err(EncodeError::NotInBatch));
        w.begin_batch().unwrap();
        assert_eq!(w.end_batch(), Err(EncodeError::EmptyBatch));
        assert_eq!(w.begin_batch(), Err(EncodeError::MessageComplete));
        w.begin(1, "a").unwrap();
        assert_eq!(w.begin(2, "b"), Err(EncodeError::RequestOpen));
        assert_eq!(w.end_batch(), Err(EncodeError::RequestOpen));
        w.end().unwrap();
        w.end_batch().unwrap();
        assert_eq!(w.begin(3, "c"), Err(EncodeError::MessageComplete));
        assert_eq!(w.finish(), Ok(52));
        let mut w = RequestWriter::new(&mut buf);
        assert_eq!(w.raw(b"[1,\n2]"), Err(EncodeError::InvalidRaw));
        w.begin(1, "a").unwrap();
        assert_eq!(w.raw(b"[1"), Err(EncodeError::InvalidRaw));
        assert_eq!(w.finish(), Err(EncodeError::RequestOpen));
    }
}
