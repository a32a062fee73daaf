//! A transaction as it goes on the wire: its ids, the form a `getdata` asks for, and the
//! `tx` frame written straight from the caller's bytes.
//!
//! A light client serves transactions that can be large (a standard one up to 400,000 weight
//! units, about 100 KB) from a peer whose outgoing buffer is [`MIN_OUT_CAPACITY`] bytes. So the
//! `tx` message is never copied: [`WireTx::frame`] gives the 24-byte frame header and the
//! payload as at most three slices of the caller's serialization, which the caller writes
//! after the peer's queued bytes. The header's checksum is the txid (stripped form) or the
//! wtxid (with witness), both computed by [`WireTx::parse`]: no byte is hashed again.
//!
//! [`MIN_OUT_CAPACITY`]: super::peer::MIN_OUT_CAPACITY

use super::{Command, HEADER_SIZE, InvType, InvVector, Magic};
use crate::hash::{Txid, Wtxid, sha256d};
use crate::tx::TxError;
use crate::tx_parts::TxParts;

/// The serialization a peer asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxForm {
    /// Without witness (`MSG_TX`): what a peer that did not negotiate segwit can read.
    Stripped,
    /// With witness (`MSG_WITNESS_TX`, or `MSG_WTX` under BIP339).
    Witness,
}

impl TxForm {
    /// The form an inventory type asks for, if it names a transaction. `MSG_TX` names it by
    /// txid, `MSG_WITNESS_TX` by txid and `MSG_WTX` by wtxid.
    pub fn of(kind: InvType) -> Option<TxForm> {
        match kind {
            InvType::TX => Some(TxForm::Stripped),
            InvType::WITNESS_TX | InvType::WTX => Some(TxForm::Witness),
            _ => None,
        }
    }
}

/// A serialized transaction held by the caller, checked, with its txid and wtxid.
#[derive(Debug, Clone, Copy)]
pub struct WireTx<'a> {
    parts: TxParts<'a>,
    raw: &'a [u8],
    wtxid: Wtxid,
}

/// A `tx` frame to write: `header`, then each of `payload` in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxFrame<'a> {
    /// The frame header (magic, `tx`, length, checksum).
    pub header: [u8; HEADER_SIZE],
    /// The payload, in pieces of the caller's serialization (some may be empty).
    pub payload: [&'a [u8]; 3],
}

impl TxFrame<'_> {
    /// Length of the whole frame, header included.
    pub fn len(&self) -> usize {
        HEADER_SIZE + self.payload.iter().map(|p| p.len()).sum::<usize>()
    }

    /// Never empty: a frame has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl<'a> WireTx<'a> {
    /// Checks `raw` as exactly one transaction (every bound of [`crate::tx`] applies).
    ///
    /// # Errors
    /// The [`TxError`] of [`crate::tx::txid`].
    pub fn parse(raw: &'a [u8]) -> Result<WireTx<'a>, TxError> {
        let parts = TxParts::parse(raw)?;
        let wtxid = if parts.has_witness() {
            Wtxid::from_byte_array(sha256d(raw))
        } else {
            Wtxid::from_byte_array(parts.txid().to_byte_array())
        };
        Ok(WireTx { parts, raw, wtxid })
    }

    /// The txid.
    pub fn txid(&self) -> Txid {
        self.parts.txid()
    }

    /// The wtxid (equal to the txid without witness).
    pub fn wtxid(&self) -> Wtxid {
        self.wtxid
    }

    /// The serialization as given.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Whether the inventory entry names this transaction in a form we can serve.
    pub fn is_named_by(&self, inv: &InvVector) -> bool {
        match inv.kind {
            InvType::TX | InvType::WITNESS_TX => inv.hash == self.txid().to_byte_array(),
            InvType::WTX => inv.hash == self.wtxid.to_byte_array(),
            _ => false,
        }
    }

    /// The payload of `form`, in pieces to write in order.
    pub fn payload(&self, form: TxForm) -> [&'a [u8]; 3] {
        match form {
            TxForm::Witness => [self.raw, &[], &[]],
            TxForm::Stripped => self.parts.stripped(),
        }
    }

    /// The `tx` frame of `form` on `magic`'s network.
    pub fn frame(&self, magic: Magic, form: TxForm) -> TxFrame<'a> {
        let payload = self.payload(form);
        let len: usize = payload.iter().map(|piece| piece.len()).sum();
        // The checksum is the payload's SHA-256d, which is already known: the stripped form
        // hashes to the txid, the whole serialization to the wtxid.
        let hash = match form {
            TxForm::Stripped => self.txid().to_byte_array(),
            TxForm::Witness => self.wtxid.to_byte_array(),
        };
        let mut header = [0u8; HEADER_SIZE];
        // A transaction is at most `MAX_TX_SIZE` bytes: the length fits.
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        super::frame::write_header_parts(magic, &Command::Tx, len, &hash, &mut header);
        TxFrame { header, payload }
    }
}
