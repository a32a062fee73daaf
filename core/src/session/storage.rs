//! The memory a session works in, chosen and owned by the caller.

use crate::buffer::Buffer;
use crate::rpc::PendingSlot;

/// A session's three buffers: the line buffer (its length is the longest reply line buffered
/// whole; streamed replies need none of it), the outgoing queue (its length bounds the request
/// bytes waiting to be written; the largest single request must fit), and the pending table
/// (one [`PendingSlot`] per request in flight).
///
/// Firmware lends arrays (`static` ones, or on the stack of a long-lived task):
/// ```
/// use electrum_spv_core::session::{PendingSlot, SessionStorage};
/// let (mut line, mut out, mut pending) = ([0u8; 4096], [0u8; 512], [PendingSlot::EMPTY; 4]);
/// let storage = SessionStorage::new(&mut line, &mut out, &mut pending);
/// assert_eq!(storage.line_capacity(), 4096);
/// ```
/// A std program hands over heap memory with `SessionStorage::owned` (feature `alloc`), which
/// grows the line buffer and the outgoing queue as they are used, up to the capacities given.
#[derive(Debug)]
pub struct SessionStorage<'a> {
    pub(super) line: Buffer<'a, u8>,
    pub(super) out: Buffer<'a, u8>,
    pub(super) pending: Buffer<'a, PendingSlot>,
}

impl<'a> SessionStorage<'a> {
    /// Storage over the caller's buffers.
    pub fn new(
        line: impl Into<Buffer<'a, u8>>,
        out: impl Into<Buffer<'a, u8>>,
        pending: impl Into<Buffer<'a, PendingSlot>>,
    ) -> Self {
        SessionStorage {
            line: line.into(),
            out: out.into(),
            pending: pending.into(),
        }
    }

    /// The longest line buffered whole, in bytes.
    pub fn line_capacity(&self) -> usize {
        self.line.capacity()
    }

    /// Bytes of outgoing queue.
    pub fn out_capacity(&self) -> usize {
        self.out.capacity()
    }

    /// Requests that can be in flight at once.
    pub fn max_pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(feature = "alloc")]
impl SessionStorage<'static> {
    /// Heap buffers of the given capacities. The line buffer and the outgoing queue are
    /// [`Buffer::growing`]: they start empty and grow (doubling) as the longest line and the
    /// most bytes queued need, never past `line_cap` and `out_cap`, so a session costs the
    /// memory it has used, not its caps (an idle connection's few hundred bytes, where
    /// zeroed buffers of the full caps would be written over whenever the allocator hands
    /// back reused memory). The pending table (`max_pending` slots) is allocated whole.
    pub fn owned(line_cap: usize, out_cap: usize, max_pending: usize) -> Self {
        SessionStorage {
            line: Buffer::growing(line_cap),
            out: Buffer::growing(out_cap),
            pending: Buffer::filled(PendingSlot::EMPTY, max_pending),
        }
    }
}
