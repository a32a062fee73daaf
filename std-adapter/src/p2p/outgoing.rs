//! Messages the pool asks a connection to send, owned so they can wait in a channel.
//!
//! The handshake and ping/pong are the core `Peer`'s own (`version`, `verack`, `ping`,
//! `pong`, `wtxidrelay`, `sendaddrv2` cannot be sent from here): the pool must not be able to
//! break the state machine's view of the connection.

use electrum_spv_core::hash::BlockHash;
use electrum_spv_core::p2p::{
    Command, EncodeError, InvVector, MAX_INV_ITEMS, Magic, Outgoing, encode,
};

use super::connection::{LIST_CHUNK, MAX_SENT_LOCATOR};

/// A message for one connection, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedMessage {
    /// `inv`: announce objects (at most `MAX_INV_ITEMS`).
    Inv(Vec<InvVector>),
    /// `getdata`: request announced objects.
    GetData(Vec<InvVector>),
    /// `notfound`: objects asked for that we do not have.
    NotFound(Vec<InvVector>),
    /// `getheaders`.
    GetHeaders {
        /// Protocol version.
        version: u32,
        /// Locator, newest first (at most `MAX_LOCATOR`).
        locator: Vec<BlockHash>,
        /// Stop hash (all zero: as many as allowed).
        stop: BlockHash,
    },
    /// `sendheaders`.
    SendHeaders,
    /// `getaddr`.
    GetAddr,
    /// `feefilter`, satoshis per 1000 virtual bytes.
    FeeFilter(i64),
}

impl OwnedMessage {
    /// Runs `f` with the borrowed core message.
    fn with<R>(&self, f: impl FnOnce(&Outgoing<'_>) -> R) -> R {
        match self {
            OwnedMessage::Inv(items) => f(&Outgoing::Inv(items)),
            OwnedMessage::GetData(items) => f(&Outgoing::GetData(items)),
            OwnedMessage::NotFound(items) => f(&Outgoing::NotFound(items)),
            OwnedMessage::GetHeaders {
                version,
                locator,
                stop,
            } => f(&Outgoing::GetHeaders {
                version: *version,
                locator,
                stop: *stop,
            }),
            OwnedMessage::SendHeaders => f(&Outgoing::SendHeaders),
            OwnedMessage::GetAddr => f(&Outgoing::GetAddr),
            OwnedMessage::FeeFilter(rate) => f(&Outgoing::FeeFilter(*rate)),
        }
    }

    /// Checks the bounds of its command, and a locator of at most
    /// [`MAX_SENT_LOCATOR`](super::connection::MAX_SENT_LOCATOR) hashes.
    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        let too_many = |command, count: usize, cap: usize| {
            if count > cap {
                Err(EncodeError::TooManyItems {
                    command,
                    count,
                    cap: u32::try_from(cap).unwrap_or(u32::MAX),
                })
            } else {
                Ok(())
            }
        };
        let max_inv = MAX_INV_ITEMS as usize;
        match self {
            OwnedMessage::Inv(items) => too_many(Command::Inv, items.len(), max_inv),
            OwnedMessage::GetData(items) => too_many(Command::GetData, items.len(), max_inv),
            OwnedMessage::NotFound(items) => too_many(Command::NotFound, items.len(), max_inv),
            OwnedMessage::GetHeaders { locator, .. } => {
                too_many(Command::GetHeaders, locator.len(), MAX_SENT_LOCATOR)
            }
            _ => Ok(()),
        }
    }

    /// The message as core messages that each fit the core peer's outgoing buffer: lists in
    /// pieces of [`LIST_CHUNK`] items, anything else whole.
    pub(crate) fn parts(&self) -> Vec<Outgoing<'_>> {
        match self {
            OwnedMessage::Inv(items) => items.chunks(LIST_CHUNK).map(Outgoing::Inv).collect(),
            OwnedMessage::GetData(items) => {
                items.chunks(LIST_CHUNK).map(Outgoing::GetData).collect()
            }
            OwnedMessage::NotFound(items) => {
                items.chunks(LIST_CHUNK).map(Outgoing::NotFound).collect()
            }
            OwnedMessage::GetHeaders {
                version,
                locator,
                stop,
            } => vec![Outgoing::GetHeaders {
                version: *version,
                locator,
                stop: *stop,
            }],
            OwnedMessage::SendHeaders => vec![Outgoing::SendHeaders],
            OwnedMessage::GetAddr => vec![Outgoing::GetAddr],
            OwnedMessage::FeeFilter(rate) => vec![Outgoing::FeeFilter(*rate)],
        }
    }

    /// The whole frame (header, checksum, payload) for `magic`'s network.
    ///
    /// # Errors
    /// The message breaks a bound of its command (too many items, a payload over its cap).
    pub fn encode(&self, magic: Magic) -> Result<Vec<u8>, EncodeError> {
        self.with(|msg| {
            // First try a buffer that fits small messages; the encoder says what a larger one
            // needs.
            let mut buf = vec![0u8; 256];
            match encode(magic, msg, &mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    Ok(buf)
                }
                Err(EncodeError::BufferTooSmall { needed }) => {
                    buf.resize(needed, 0);
                    let n = encode(magic, msg, &mut buf)?;
                    buf.truncate(n);
                    Ok(buf)
                }
                Err(e) => Err(e),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use electrum_spv_core::p2p::{InvType, Message, MessageReader};

    #[test]
    fn encodes_small_and_large_messages() {
        let items: Vec<InvVector> = (0..100u8)
            .map(|i| InvVector {
                kind: InvType::TX,
                hash: [i; 32],
            })
            .collect();
        let frame = OwnedMessage::Inv(items.clone())
            .encode(Magic::REGTEST)
            .unwrap();
        assert_eq!(frame.len(), 24 + 1 + 100 * 36);
        let mut reader = MessageReader::owned(Magic::REGTEST);
        let mut rest = frame.as_slice();
        let mut seen = Vec::new();
        loop {
            let (n, msg) = reader.feed(rest);
            rest = &rest[n..];
            match msg.unwrap() {
                Some(Message::Inventory(inv)) => seen.push(inv),
                Some(Message::ListEnd { .. }) | None => break,
                Some(_) => {}
            }
        }
        assert_eq!(seen, items);
        let small = OwnedMessage::SendHeaders.encode(Magic::REGTEST).unwrap();
        assert_eq!(small.len(), 24);
    }
}

/// Why a message was not queued for a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The message breaks a bound of its command (nothing was queued).
    Encode(EncodeError),
    /// The connection's queue is full (its bound is
    /// [`COMMAND_QUEUE`](super::connection::COMMAND_QUEUE)): the peer reads slower than we
    /// write. Try later or another peer.
    Full,
    /// The connection is closed.
    Closed,
    /// No connection to that node is ready.
    NotConnected,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Encode(e) => write!(f, "cannot encode the message: {e}"),
            SendError::Full => f.write_str("the connection's send queue is full"),
            SendError::Closed => f.write_str("the connection is closed"),
            SendError::NotConnected => f.write_str("no ready connection to that node"),
        }
    }
}

impl std::error::Error for SendError {}
