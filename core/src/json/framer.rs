//! Newline framing with a hard line cap.
//!
//! Electrum over TCP/TLS sends one JSON message per line, terminated by `\n` (a `\r\n` is
//! tolerated: the `\r` is dropped). [`LineFramer`] gathers one line in a buffer of `N` bytes,
//! which is the line cap: a line longer than `N` is never buffered. As soon as it is known to
//! be too long, the framer drops what it held, discards bytes up to the next `\n` and then
//! reports [`Frame::Oversize`] once, so the stream resynchronises on the following line
//! (ElectrumX's own framer does the same with requests over `MAX_RECV`).
//!
//! An over-long line is not kept, but two small windows of it are, in the line buffer it no
//! longer needs: its first [`probe_len(N)`](probe_len) bytes (the head) and its last
//! `probe_len(N)` bytes that are not JSON whitespace (the tail; ElectrumX pads a large reply
//! with up to megabytes of spaces before its final `}`). Both come with
//! [`Frame::Oversize`], so a caller can read the envelope's `id` from them
//! ([`oversize_id`](super::oversize::oversize_id)) and end that request instead of waiting
//! for its deadline. `probe_len(N)` is `min(256, N / 2)`: the windows cost no memory beyond
//! the line buffer.
//!
//! Empty and whitespace-only lines are skipped. Whitespace *inside* a line is JSON's business:
//! ElectrumX ≥ 1.18 pads packets to bucketed sizes by inserting runs of spaces just before the
//! final `}` or `]` of the last message in a packet, which is legal JSON whitespace that the
//! [tokenizer](super::tokenizer) skips.
//!
//! ```
//! use electrum_spv_core::json::{Frame, LineFramer};
//! let mut line_buffer = [0u8; 64];
//! let mut framer = LineFramer::new(&mut line_buffer);
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
        /// Its first [`probe_len(N)`](probe_len) bytes, as sent.
        head: &'a [u8],
        /// Its last bytes that are not JSON whitespace (space, tab, `\r`), at most
        /// [`probe_len(N)`](probe_len) of them, in order: whitespace is left out, so a string
        /// in it may read differently than sent; structure and scalars without whitespace
        /// (keys, numbers) read as sent.
        tail: &'a [u8],
    },
}

use crate::buffer::Buffer;

/// Largest head or tail window kept of an over-long line (see [`Frame::Oversize`]).
pub const MAX_PROBE: usize = 256;

/// The head and tail window size of a [`LineFramer`] with a line cap of `n`: `min(MAX_PROBE, N / 2)`.
pub const fn probe_len(n: usize) -> usize {
    if n / 2 < MAX_PROBE { n / 2 } else { MAX_PROBE }
}

/// JSON whitespace (and `\n`, which never reaches a window).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Splits a byte stream into lines of at most `N` bytes, held in a caller's buffer of `N`
/// bytes.
///
/// The cap counts the bytes before the terminating `\n`, except one `\r` right before it.
/// Memory: the caller's `N` bytes, plus `size_of::<LineFramer>()` (at most 64 bytes, tested);
/// the head and tail
/// windows of an over-long line live in the line buffer, and `push` uses [`MAX_PROBE`] bytes of
/// stack while it moves them. Work: linear in the bytes pushed; each byte is scanned at most
/// twice and copied at most twice (an over-long line's buffered part once more, when it is
/// found too long).
#[derive(Debug)]
pub struct LineFramer<'a> {
    buf: Buffer<'a, u8>,
    len: usize,
    /// A `\r` was read after the buffered bytes and not yet stored (it is dropped if `\n`
    /// follows).
    pending_cr: bool,
    /// Discarding an over-long line: its length so far.
    discarding: Option<usize>,
    /// Length of the line the last `push` completed (0: none); valid until the next `push`.
    last_line: usize,
    /// Bytes in the tail window of the line being discarded (right-aligned in
    /// `buf[P..2P]`, `P = probe_len(N)`).
    tail_len: u16,
}

impl<'a> LineFramer<'a> {
    /// An empty framer over `buf`, whose capacity is the line cap (a growing buffer grows as
    /// lines need it, never past its cap).
    pub fn new(buf: impl Into<Buffer<'a, u8>>) -> Self {
        LineFramer {
            buf: buf.into(),
            len: 0,
            pending_cr: false,
            discarding: None,
            last_line: 0,
            tail_len: 0,
        }
    }

    /// A framer with no buffer (every non-empty line is over-long).
    pub const EMPTY: Self = LineFramer {
        buf: Buffer::empty(),
        len: 0,
        pending_cr: false,
        discarding: None,
        last_line: 0,
        tail_len: 0,
    };

    /// Gives the line buffer back, leaving a framer with none.
    pub fn take_buffer(&mut self) -> Buffer<'a, u8> {
        self.reset();
        core::mem::take(&mut self.buf)
    }

    /// The line cap: the longest line accepted, in bytes.
    pub fn max_line(&self) -> usize {
        self.buf.capacity()
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
        self.tail_len = 0;
    }

    /// Consumes `input` up to and including the next `\n` (or all of it when there is none) and
    /// returns how many bytes it consumed, with the completed frame if there is one.
    ///
    /// Call it again with the rest of the input until that is empty; the returned line borrows
    /// the framer, so handle it before the next call.
    pub fn push(&mut self, input: &[u8]) -> (usize, Option<Frame<'_>>) {
        self.last_line = 0;
        let newline = super::bytes::find_byte(input, b'\n');
        let (segment, consumed) = match newline {
            Some(p) => (input.get(..p).unwrap_or(&[]), p + 1),
            None => (input, input.len()),
        };
        if let Some(so_far) = self.discarding {
            self.probe(segment, so_far);
            let total = so_far.saturating_add(segment.len());
            if newline.is_some() {
                self.discarding = None;
                return (consumed, Some(self.oversize(total)));
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
        if needed > self.buf.capacity() {
            // The windows live in `buf[..2P]` (`2P` is at most the cap).
            self.buf.grow_to(2 * probe_len(self.buf.capacity()));
            let held = self.len + usize::from(self.pending_cr);
            let total = held.saturating_add(segment.len());
            self.start_probe();
            if self.pending_cr {
                self.probe(b"\r", self.len);
            }
            self.probe(segment, held);
            self.len = 0;
            self.pending_cr = false;
            if newline.is_some() {
                return (consumed, Some(self.oversize(total)));
            }
            self.discarding = Some(total);
            return (consumed, None);
        }
        self.buf.grow_to(needed);
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

    /// The frame of a discarded line of `len` bytes, with its windows.
    fn oversize(&mut self, len: usize) -> Frame<'_> {
        let p = probe_len(self.buf.capacity());
        let tail_len = usize::from(self.tail_len).min(p);
        self.tail_len = 0;
        Frame::Oversize {
            len,
            head: self.buf.get(..p.min(len)).unwrap_or(&[]),
            tail: self.buf.get(2 * p - tail_len..2 * p).unwrap_or(&[]),
        }
    }

    /// A line was just found too long while `buf[..len]` holds its start: that start becomes
    /// the head window (it is there already) and what follows the head the tail window.
    fn start_probe(&mut self) {
        let p = probe_len(self.buf.capacity());
        self.tail_len = 0;
        if self.len <= p {
            return;
        }
        // The tail window overlaps the buffered bytes: gather its part through the stack.
        let mut tmp = [0u8; MAX_PROBE];
        let mut k = 0;
        let after_head = self.buf.get(p..self.len).unwrap_or(&[]);
        for &b in after_head.iter().rev() {
            if k == p {
                break;
            }
            if !is_space(b) {
                k += 1;
                if let Some(slot) = tmp.get_mut(MAX_PROBE - k) {
                    *slot = b;
                }
            }
        }
        let gathered = tmp.get(MAX_PROBE - k..).unwrap_or(&[]);
        if let Some(dst) = self.buf.get_mut(2 * p - k..2 * p) {
            dst.copy_from_slice(gathered);
            self.tail_len = k as u16;
        }
    }

    /// Records `bytes` of the discarded line, of which `seen` bytes came before: into the head
    /// window while it has room, the rest into the tail window.
    fn probe(&mut self, bytes: &[u8], seen: usize) {
        let p = probe_len(self.buf.capacity());
        let mut rest = bytes;
        if seen < p {
            let k = (p - seen).min(rest.len());
            if let (Some(dst), Some(src)) = (self.buf.get_mut(seen..seen + k), rest.get(..k)) {
                dst.copy_from_slice(src);
            }
            rest = rest.get(k..).unwrap_or(&[]);
        }
        // The last (up to) `p` non-whitespace bytes of `rest`, from `start` on.
        let mut k = 0;
        let mut start = rest.len();
        for (i, &b) in rest.iter().enumerate().rev() {
            if k == p {
                break;
            }
            if !is_space(b) {
                k += 1;
                start = i;
            }
        }
        if k == 0 {
            return;
        }
        let Some(window) = self.buf.get_mut(p..2 * p) else {
            return;
        };
        // Byte by byte rather than `copy_within`: the window is small, and this is the only
        // overlapping copy a device's session makes, so it spares it `memmove` (~1.6 KB).
        for i in k..p {
            if let Some(&b) = window.get(i)
                && let Some(slot) = window.get_mut(i - k)
            {
                *slot = b;
            }
        }
        let mut at = p - k;
        for &b in rest.get(start..).unwrap_or(&[]) {
            if !is_space(b)
                && let Some(slot) = window.get_mut(at)
            {
                *slot = b;
                at += 1;
            }
        }
        self.tail_len = (usize::from(self.tail_len) + k).min(p) as u16;
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

    fn frames(framer: &mut LineFramer<'_>, reads: &[&[u8]]) -> Vec<F> {
        let mut out = Vec::new();
        for read in reads {
            let mut rest = *read;
            while !rest.is_empty() {
                let (n, f) = framer.push(rest);
                assert!(n > 0 && n <= rest.len());
                match f {
                    Some(Frame::Line(l)) => out.push(F::Line(l.to_vec())),
                    Some(Frame::Oversize { len, .. }) => out.push(F::Oversize(len)),
                    None => {}
                }
                rest = &rest[n..];
            }
        }
        out
    }

    #[test]
    fn cap_is_exact_and_cr_is_free() {
        let mut mem = [0u8; 4];
        let mut f = LineFramer::new(&mut mem);
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
        assert!(core::mem::size_of::<LineFramer<'_>>() <= 64);
    }

    /// The head and tail windows of every discarded line, in any split of the reads.
    fn windows<const N: usize>(reads: &[&[u8]]) -> Vec<(usize, Vec<u8>, Vec<u8>)> {
        let mut mem = [0u8; N];
        let mut framer = LineFramer::new(&mut mem);
        let mut out = Vec::new();
        for read in reads {
            let mut rest = *read;
            while !rest.is_empty() {
                let (n, f) = framer.push(rest);
                if let Some(Frame::Oversize { len, head, tail }) = f {
                    out.push((len, head.to_vec(), tail.to_vec()));
                }
                rest = &rest[n..];
            }
        }
        out
    }

    #[test]
    fn oversize_windows_keep_head_and_non_space_tail() {
        assert_eq!(probe_len(4096), 256);
        assert_eq!(probe_len(300), 150);
        assert_eq!(probe_len(1), 0);
        // ElectrumX's shape: id last, then a long run of padding before the final `}`.
        let mut line = b"{\"jsonrpc\":\"2.0\",\"result\":[".to_vec();
        for i in 0..40 {
            line.extend_from_slice(format!("{{\"h\": {i}}}, ").as_bytes());
        }
        line.extend_from_slice(b"{\"h\": 99}],\"id\": 7");
        line.extend_from_slice(&[b' '; 700]);
        line.extend_from_slice(b"}\r\n");
        let body = &line[..line.len() - 1];
        let nonspace: Vec<u8> = body.iter().copied().filter(|b| !is_space(*b)).collect();
        let want = (
            body.len(),
            line[..32].to_vec(),
            nonspace[nonspace.len() - 32..].to_vec(),
        );
        assert_eq!(windows::<64>(&[&line]), std::slice::from_ref(&want));
        for at in 0..line.len() {
            let (a, b) = line.split_at(at);
            assert_eq!(
                windows::<64>(&[a, b]),
                std::slice::from_ref(&want),
                "split at {at}"
            );
        }
        let bytes: Vec<&[u8]> = line.chunks(1).collect();
        assert_eq!(windows::<64>(&bytes), std::slice::from_ref(&want));
        let bytes: Vec<&[u8]> = line.chunks(7).collect();
        assert_eq!(windows::<64>(&bytes), [want]);
        // A line just over the cap: the windows cover all of it that is not whitespace.
        let got = windows::<8>(&[b"{\"id\":1 }\n"]);
        assert_eq!(got, [(9, b"{\"id".to_vec(), b"\":1}".to_vec())]);
        // Tail shorter than its window: only what was seen.
        let got = windows::<8>(&[b"abcdef     g\n"]);
        assert_eq!(got, [(12, b"abcd".to_vec(), b"efg".to_vec())]);
        // No windows at a zero cap, and the next line is unaffected.
        assert_eq!(windows::<1>(&[b"ab\n"]), [(2, vec![], vec![])]);
    }

    #[test]
    fn cr_split_across_reads() {
        let mut mem = [0u8; 4];
        let mut f = LineFramer::new(&mut mem);
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
