//! The session's outgoing bytes: a ring buffer in caller memory.
//!
//! Requests are encoded straight into its free space, wrapping around the end, and taken from
//! its front; nothing is ever moved inside it, so draining a queue of any size in writes of any
//! size copies each byte once. A growing buffer ([`Buffer::Growing`]) grows when a message does
//! not fit (doubling, up to its cap), moving the queued bytes that wrapped once.

use crate::buffer::Buffer;
use crate::json::writer::{EncodeError, RequestWriter};

/// Queued request bytes, oldest first.
#[derive(Debug)]
pub(crate) struct TransmitQueue<'a> {
    buf: Buffer<'a, u8>,
    /// Index of the oldest queued byte.
    head: usize,
    /// Bytes queued.
    len: usize,
}

impl<'a> TransmitQueue<'a> {
    pub(crate) const fn new(buf: Buffer<'a, u8>) -> Self {
        TransmitQueue {
            buf,
            head: 0,
            len: 0,
        }
    }

    /// Gives the buffer back, leaving an empty queue.
    pub(crate) fn take_buffer(&mut self) -> Buffer<'a, u8> {
        self.clear();
        core::mem::take(&mut self.buf)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The most bytes the queue can hold (a growing buffer's cap).
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Encodes one message with `f` after the queued bytes; on an error nothing is queued. A
    /// message that does not fit grows a growing buffer (up to its cap) and is encoded again,
    /// so `f` may be called a few times (at most once per doubling).
    pub(crate) fn encode(
        &mut self,
        mut f: impl FnMut(&mut RequestWriter<'_>) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        loop {
            match self.encode_once(&mut f) {
                Err(EncodeError::BufferTooSmall { needed_at_least }) => {
                    if !self.grow(needed_at_least) {
                        return Err(EncodeError::BufferTooSmall { needed_at_least });
                    }
                }
                other => return other,
            }
        }
    }

    /// Grows a growing buffer to hold at least `needed` more bytes than are queued (twice
    /// its length if that is more; never past its cap), keeping the queued bytes in order.
    /// False when it cannot grow any more.
    fn grow(&mut self, needed: usize) -> bool {
        let old = self.buf.len();
        let new = self.buf.grow_to(self.len.saturating_add(needed.max(1)));
        if new <= old {
            return false;
        }
        let tail = self.head + self.len;
        if tail > old {
            // The queued bytes wrap: `buf[head..old]`, then `buf[..tail - old]`. Move the
            // first part to the new end, where it again runs into the second.
            let first = old - self.head;
            self.buf.copy_within(self.head..old, new - first);
            self.head = new - first;
        }
        true
    }

    fn encode_once(
        &mut self,
        f: &mut impl FnMut(&mut RequestWriter<'_>) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let cap = self.buf.len();
        let tail = self.head + self.len;
        let (before, after) = self.buf.split_at_mut(self.head);
        let (first, second): (&mut [u8], &mut [u8]) = if tail <= cap {
            // Free: after the queued bytes to the end, then the start up to `head`.
            let free_after = after.get_mut(self.len..).unwrap_or(&mut []);
            (free_after, before)
        } else {
            // The queued bytes wrap: free is the gap between their end and `head`.
            let gap = before.get_mut(tail - cap..).unwrap_or(&mut []);
            (gap, &mut [])
        };
        let mut w = RequestWriter::split(first, second);
        f(&mut w)?;
        self.len += w.finish()?;
        Ok(())
    }

    /// The oldest queued bytes that lie in one piece (all of them unless they wrap).
    pub(crate) fn front(&self) -> &[u8] {
        let end = (self.head + self.len).min(self.buf.len());
        self.buf.get(self.head..end).unwrap_or(&[])
    }

    /// Drops the `n` oldest queued bytes (at most all of them).
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        // Back at the start when empty: the next message is in one piece, and `front` shows
        // all of it.
        self.head = match self.len {
            0 => 0,
            _ => (self.head + n) % self.buf.len(),
        };
    }

    /// Moves the oldest queued bytes into `out`; returns how many.
    pub(crate) fn take_into(&mut self, out: &mut [u8]) -> usize {
        let mut done = 0;
        while done < out.len() && self.len > 0 {
            let front = self.front();
            let n = front.len().min(out.len() - done);
            if let (Some(dst), Some(src)) = (out.get_mut(done..done + n), front.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.consume(n);
            done += n;
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn message(w: &mut RequestWriter<'_>, id: u64, param: &str) -> Result<(), EncodeError> {
        w.begin(id, "m")?;
        w.str(param)?;
        w.end()
    }

    /// Queues 200 messages of varied sizes into `q`, taking `take` bytes after each, and
    /// checks every byte comes out in order; returns (times the queued bytes wrapped, times
    /// the buffer grew while they wrapped).
    fn queue_and_take(mut q: TransmitQueue<'_>, take: usize) -> (usize, usize) {
        let (mut sent, mut got) = (Vec::new(), Vec::new());
        let (mut wrapped, mut grew_wrapped) = (0, 0);
        for id in 0..200u64 {
            let param = "x".repeat((id % 13) as usize);
            let before = q.len();
            let (size, was_wrapped) = (q.buf.len(), q.front().len() < q.len());
            match q.encode(|w| message(w, id, &param)) {
                Ok(()) => {
                    let mut one = [0u8; 128];
                    let mut w = RequestWriter::new(&mut one);
                    message(&mut w, id, &param).unwrap();
                    let n = w.finish().unwrap();
                    sent.extend_from_slice(&one[..n]);
                }
                // Refused: nothing of it was queued.
                Err(EncodeError::BufferTooSmall { .. }) => assert_eq!(q.len(), before),
                Err(e) => panic!("{e:?}"),
            }
            grew_wrapped += usize::from(was_wrapped && q.buf.len() > size);
            assert!(q.buf.len() <= q.capacity());
            wrapped += usize::from(q.front().len() < q.len());
            let mut out = vec![0u8; take];
            let n = q.take_into(&mut out);
            got.extend_from_slice(&out[..n]);
        }
        let mut out = [0u8; 64];
        loop {
            let n = q.take_into(&mut out);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&out[..n]);
        }
        assert_eq!(got, sent, "takes of {take} bytes");
        assert!(sent.len() > 128, "{} bytes sent", sent.len());
        (wrapped, grew_wrapped)
    }

    /// Messages queued and taken in every interleaving keep their bytes and their order, across
    /// the wrap, in takes of every size.
    #[test]
    fn order_and_bytes_survive_the_wrap() {
        for take in 1..40 {
            let mut mem = [0u8; 128];
            let (wrapped, _) = queue_and_take(TransmitQueue::new(Buffer::from(&mut mem)), take);
            assert!(wrapped > 0, "the queued bytes wrapped with takes of {take}");
        }
    }

    /// The same over a growing buffer: it grows to its cap at most, and growing while the
    /// queued bytes wrap keeps them in order.
    #[test]
    fn order_and_bytes_survive_growing_across_the_wrap() {
        let mut grew_wrapped = 0;
        for take in 1..40 {
            for first in [0, 40, 50, 70] {
                let mut buf = Buffer::growing(128);
                buf.grow_to(first);
                let (wrapped, grew) = queue_and_take(TransmitQueue::new(buf), take);
                assert!(wrapped > 0, "the queued bytes wrapped with takes of {take}");
                grew_wrapped += grew;
            }
        }
        assert!(
            grew_wrapped > 0,
            "a buffer grew while the queued bytes wrapped"
        );
    }

    /// Hex (written through the stack across the wrap) comes out as a contiguous writer
    /// writes it, wherever the wrap falls.
    #[test]
    fn hex_across_the_wrap_is_in_order() {
        let bytes: Vec<u8> = (0u8..40).collect();
        let hex_message = |w: &mut RequestWriter<'_>| {
            w.begin(2, "h")?;
            w.hex_reversed(&bytes)?;
            w.hex(&bytes)?;
            w.end()
        };
        let mut plain = [0u8; 256];
        let mut w = RequestWriter::new(&mut plain);
        hex_message(&mut w).unwrap();
        let n = w.finish().unwrap();
        let want = plain[..n].to_vec();
        let mut wrapped = 0;
        for filler in 0..120 {
            let mut mem = [0u8; 256];
            let mut q = TransmitQueue::new(Buffer::from(&mut mem));
            q.encode(|w| message(w, 1, &"f".repeat(filler))).unwrap();
            let mut sink = [0u8; 256];
            let _ = q.take_into(&mut sink[..q.len() - 1]);
            q.encode(hex_message).unwrap();
            wrapped += usize::from(q.front().len() < q.len());
            let mut out = [0u8; 256];
            let n = q.take_into(&mut out);
            assert_eq!(&out[1..n], &want[..], "filler {filler}");
        }
        assert!(wrapped > 50, "the hex message wrapped ({wrapped} times)");
    }
}
