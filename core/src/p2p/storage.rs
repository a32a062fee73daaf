//! The memory a [`Peer`](super::Peer) works in, given by the caller: a message buffer for the
//! reader and an outgoing queue, sized at run time (at least [`BUFFER_SIZE`] and
//! [`MIN_OUT_CAPACITY`] bytes). Constructing a peer moves two pointers, not the buffers.

use core::fmt;

use super::BUFFER_SIZE;
use super::peer::MIN_OUT_CAPACITY;
use crate::buffer::{Buffer, TooSmall};

/// A peer's buffers: see the [module docs](self).
#[derive(Debug)]
pub struct PeerStorage<'a> {
    pub(super) message: Buffer<'a, u8>,
    pub(super) out: Buffer<'a, u8>,
}

/// Which of a peer's buffers is too small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerStorageError {
    /// The message buffer: at least [`BUFFER_SIZE`] bytes are needed.
    Message(TooSmall),
    /// The outgoing queue: at least [`MIN_OUT_CAPACITY`] bytes are needed.
    Out(TooSmall),
}

impl fmt::Display for PeerStorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerStorageError::Message(e) => write!(f, "P2P message buffer: {e}"),
            PeerStorageError::Out(e) => write!(f, "P2P outgoing queue: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PeerStorageError {}

impl<'a> PeerStorage<'a> {
    /// Storage over the caller's buffers: `message` holds a small message or a list item
    /// (bytes past [`BUFFER_SIZE`] are not used); `out` queues outgoing frames, so a larger
    /// one lets more be sent before [`Peer::poll_transmit`](super::Peer::poll_transmit).
    ///
    /// # Errors
    /// [`PeerStorageError`] naming the buffer under its minimum.
    pub fn new(
        message: impl Into<Buffer<'a, u8>>,
        out: impl Into<Buffer<'a, u8>>,
    ) -> Result<Self, PeerStorageError> {
        Ok(PeerStorage {
            message: message
                .into()
                .at_least(BUFFER_SIZE)
                .map_err(PeerStorageError::Message)?,
            out: out
                .into()
                .at_least(MIN_OUT_CAPACITY)
                .map_err(PeerStorageError::Out)?,
        })
    }

    /// Bytes of outgoing queue.
    pub fn out_capacity(&self) -> usize {
        self.out.len()
    }
}

#[cfg(feature = "alloc")]
impl PeerStorage<'static> {
    /// Heap buffers of the least sizes: [`BUFFER_SIZE`] and [`MIN_OUT_CAPACITY`] bytes.
    pub fn owned() -> Self {
        PeerStorage {
            message: Buffer::filled(0, BUFFER_SIZE),
            out: Buffer::filled(0, MIN_OUT_CAPACITY),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_buffer_has_its_minimum() {
        let mut message = [0u8; BUFFER_SIZE];
        let mut out = [0u8; MIN_OUT_CAPACITY];
        assert_eq!(
            PeerStorage::new(&mut message[1..], &mut out[..]).err(),
            Some(PeerStorageError::Message(TooSmall {
                len: BUFFER_SIZE - 1,
                min: BUFFER_SIZE
            }))
        );
        assert_eq!(
            PeerStorage::new(&mut message[..], &mut out[1..]).err(),
            Some(PeerStorageError::Out(TooSmall {
                len: MIN_OUT_CAPACITY - 1,
                min: MIN_OUT_CAPACITY
            }))
        );
        let storage = PeerStorage::new(&mut message, &mut out).unwrap();
        assert_eq!(storage.out_capacity(), MIN_OUT_CAPACITY);
    }
}
