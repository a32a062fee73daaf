//! Newline framing with a hard line cap.
//!
//! Electrum over TCP/TLS sends one JSON message per line, terminated by `\n` (a `\r\n` is
//! tolerated: the `\r` is dropped). [`LineFramer`] gathers one line in a buffer of `N` bytes,
//! which is the line cap: a line longer than `N` is never buffered. As soon as it is known to
//! be too long, the framer drops what it held, discards bytes up to the next `\n` and then
//! reports [`Frame::Oversize`] once, so the stream resynchronises on the following line
//! (ElectrumX's own framer does the same with requests over `MAX_RECV`).
//!
//! Empty and whitespace-only lines are skipped. Whitespace *inside* a line is JSON's business:
//! ElectrumX ≥ 1.18 pads packets to bucketed sizes by inserting runs of spaces just before the
//! final `}` or `]` of the last message in a packet, which is legal JSON whitespace that the
//! [tokenizer](super::tokenizer) skips.
//!
//! ```
//! use electrum_spv_core::json::{Frame, LineFramer};
//! let mut framer = LineFramer::<64>::new();
//! let mut lines = 0;
//! for read in [&b"{\"id\":1}\n{\"i"[..], b"d\":2}   \r\n\n"] {
//!     let mut rest = read;
//!     while !rest.is_empty() {
//!         let (n, frame) = framer.push(rest);
//!         rest = &rest[n..];
//!         if let Some(Frame::Line(line)) = frame {
//!             assert!(line.starts_with(b"{\"id\":"));
//!             lines += 1;
//!         }
//!     }
//! }
//! assert_eq!(lines, 2);
//! ```

/// One framing result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line, without its `\n` (or `\r\n`); never empty or whitespace-only.
    Line(&'a [u8]),
    /// A line longer than the cap was discarded.
    Oversize {
        /// Its length before the `\n`, any `\r` included (saturating at `usize::MAX`).
        len: usize,
    },
}

/// Splits a byte stream into lines of at most `N` bytes, held in an internal `[u8; N]`.
///
/// The cap counts the bytes before the terminating `\n`, except one `\r` right before it.
/// Memory: `size_of::<LineFramer<N>>()` is `N` plus at most 40 bytes (tested). Work: linear in
/// the bytes pushed; each byte is scanned once and copied at most once.
#[derive(Debug, Clone)]
pub struct LineFramer<const N: usize> {
    buf: [u8; N],
    len: usize,
    /// A `\r` was read after the buffered bytes and not yet stored (it is dropped if `\n`
    /// follows).
    pending_cr: bool,
    /// Discarding an over-long line: its length so far.
    discarding: Option<usize>,
    /// Length of the line the last `push` completed (0: none); valid until the next `push`.
    last_line: usize,
}

impl<const N: usize> Default for LineFramer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LineFramer<N> {
    /// The line cap: the longest line accepted, in bytes.
    pub const MAX_LINE: usize = N;

    /// An empty framer.
    pub const fn new() -> Self {
        LineFramer {
            buf: [0; N],
            len: 0,
            pending_cr: false,
            discarding: None,
            last_line: 0,
        }
    }

    /// The line the last [`push`](Self::push) completed, until the next `push` or `reset`.
    /// Lets a caller come back to a line after the borrow of `push` has ended.
    pub fn line(&self) -> Option<&[u8]> {
        match self.last_line {
            0 => None,
            n => self.buf.get(..n),
        }
    }

    /// Bytes of an incomplete line held (0 while discarding an over-long line).
    pub fn buffered(&self) -> usize {
        self.len + usize::from(self.pending_cr)
    }

    /// Currently discarding an over-long line.
    pub fn is_discarding(&self) -> bool {
        self.discarding.is_some()
    }

    /// Drops any partial line (for example after a reconnect).
    pub fn reset(&mut self) {
        self.len = 0;
        self.pending_cr = false;
        self.discarding = None;
        self.last_line = 0;
    }

    /// Consumes `input` up to and including the next `\n` (or all of it when there is none) and
    /// returns how many bytes it consumed, with the completed frame if there is one.
    ///
    /// Call it again with the rest of the input until that is empty; the returned line borrows
    /// the framer, so handle it before the next call.
    pub fn push<'a>(&'a mut self, input: &[u8]) -> (usize, Option<Frame<'a>>) {
        self.last_line = 0;
        let newline = super::bytes::find_byte(input, b'\n');
        let (segment, consumed) = match newline {
            Some(p) => (input.get(..p).unwrap_or(&[]), p + 1),
            None => (input, input.len()),
        };
        if let Some(so_far) = self.discarding {
            let total = so_far.saturating_add(segment.len());
            if newline.is_some() {
                self.discarding = None;
                return (consumed, Some(Frame::Oversize { len: total }));
            }
            self.discarding = Some(total);
            return (consumed, None);
        }
        // Store `segment` but hold back a final `\r`, which is dropped if `\n` comes next.
        let (body, cr) = match segment.split_last() {
            Some((b'\r', body)) => (body, true),
            _ => (segment, false),
        };
        let pending = usize::from(self.pending_cr && !segment.is_empty());
        let needed = self.len + pending + body.len();
        if needed > N {
            let total = (self.len + usize::from(self.pending_cr)).saturating_add(segment.len());
            self.len = 0;
            self.pending_cr = false;
            if newline.is_some() {
                return (consumed, Some(Frame::Oversize { len: total }));
            }
            self.discarding = Some(total);
            return (consumed, None);
        }
        if pending == 1 {
            self.store(b"\r");
        }
        self.store(body);
        if !segment.is_empty() {
            self.pending_cr = cr;
        }
        if newline.is_none() {
            return (consumed, None);
        }
        let len = self.len;
        self.len = 0;
        self.pending_cr = false;
        let line = self.buf.get(..len).unwrap_or(&[]);
        if line
            .iter()
            .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            return (consumed, None);
        }
        self.last_line = len;
        (consumed, Some(Frame::Line(line)))
    }

    fn store(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[derive(Debug, PartialEq)]
    enum F {
        Line(Vec<u8>),
        Oversize(usize),
    }

    fn frames<const N: usize>(framer: &mut LineFramer<N>, reads: &[&[u8]]) -> Vec<F> {
        let mut out = Vec::new();
        for read in reads {
            let mut rest = *read;
            while !rest.is_empty() {
                let (n, f) = framer.push(rest);
                assert!(n > 0 && n <= rest.len());
                match f {
                    Some(Frame::Line(l)) => out.push(F::Line(l.to_vec())),
                    Some(Frame::Oversize { len }) => out.push(F::Oversize(len)),
                    None => {}
                }
                rest = &rest[n..];
            }
        }
        out
    }

    #[test]
    fn cap_is_exact_and_cr_is_free() {
        let mut f = LineFramer::<4>::new();
        assert_eq!(
            frames(&mut f, &[b"abcd\nabcde\nabcd\r\nab\rc\nab\r\rc\n"]),
            [
                F::Line(b"abcd".to_vec()),
                F::Oversize(5),
                F::Line(b"abcd".to_vec()),
                F::Line(b"ab\rc".to_vec()),
                F::Oversize(5),
            ]
        );
        assert_eq!(
            frames(&mut f, &[b"abcde\r", b"\n", b"abcd\r\r\nok\n"]),
            [F::Oversize(6), F::Oversize(6), F::Line(b"ok".to_vec())]
        );
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn size() {
        assert!(core::mem::size_of::<LineFramer<4096>>() <= 4096 + 40);
        assert!(core::mem::size_of::<LineFramer<0>>() <= 40);
    }

    #[test]
    fn cr_split_across_reads() {
        let mut f = LineFramer::<4>::new();
        assert_eq!(
            frames(
                &mut f,
                &[b"abcd\r", b"\n", b"abcd\r", b"x\n", b"ab\r", b"", b"c\n"]
            ),
            [
                F::Line(b"abcd".to_vec()),
                F::Oversize(6),
                F::Line(b"ab\rc".to_vec())
            ]
        );
    }
}
