//! Announced inventory: items of a list are held until the list's checksum is verified, then
//! handed on whole (pycoin's InvTracker sees every `inv` item of every connection).

use electrum_spv_core::p2p::{Command, InvType, InvVector, PeerEvent};

use super::addr::NodeId;

/// One item some peer announced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvItem {
    /// The node that announced it.
    pub peer: NodeId,
    /// What the hash names.
    pub kind: InvType,
    /// The hash, internal byte order (display hex is reversed: [`InvItem::hash_hex`]).
    pub hash: [u8; 32],
    /// Unix time in milliseconds when its `inv` was received whole (checksum verified).
    pub time_ms: u64,
}

impl InvItem {
    /// The hash as block explorers show it: byte-reversed hex.
    pub fn hash_hex(&self) -> String {
        let mut reversed = self.hash;
        reversed.reverse();
        crate::error::to_hex(&reversed)
    }
}

/// A lowercase name for an inventory type (`tx`, `block`, `filtered_block`, `cmpct_block`,
/// `wtx`, `witness_tx`, `witness_block`), or `unknown_0x...` for any other value.
pub fn inv_type_name(kind: InvType) -> String {
    match kind {
        InvType::TX => "tx".into(),
        InvType::BLOCK => "block".into(),
        InvType::FILTERED_BLOCK => "filtered_block".into(),
        InvType::CMPCT_BLOCK => "cmpct_block".into(),
        InvType::WTX => "wtx".into(),
        InvType::WITNESS_TX => "witness_tx".into(),
        InvType::WITNESS_BLOCK => "witness_block".into(),
        InvType(other) => format!("unknown_{other:#x}"),
    }
}

/// Items of the `inv`, `getdata` or `notfound` being read, until it ends.
///
/// Bound: one list's items, at most `MAX_INV_ITEMS` (50,000 x 36 bytes), which the core's
/// reader checks from the count before any item.
#[derive(Debug, Default)]
pub(crate) struct ListCollector {
    current: Option<Command>,
    items: Vec<InvVector>,
}

/// What a [`ListCollector`] made of an event.
// Short-lived, moved once: boxing the core's event would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Collected {
    /// The event belonged to a list and was taken.
    Taken,
    /// A list ended with its checksum matched: its command and items.
    List(Command, Vec<InvVector>),
    /// Not a list event: handle it elsewhere.
    Other(PeerEvent),
}

impl ListCollector {
    /// Takes list events; anything else is handed back. A message dropped as malformed (a bad
    /// checksum above all) discards the items collected so far: they were never confirmed.
    pub fn take(&mut self, event: PeerEvent) -> Collected {
        match event {
            PeerEvent::ListStart { command, .. } if is_inv_list(command) => {
                self.current = Some(command);
                self.items.clear();
                Collected::Taken
            }
            PeerEvent::Inventory(item) if self.current.is_some() => {
                self.items.push(item);
                Collected::Taken
            }
            PeerEvent::ListEnd { command } if self.current == Some(command) => {
                self.current = None;
                Collected::List(command, std::mem::take(&mut self.items))
            }
            PeerEvent::Dropped(e) => {
                self.current = None;
                self.items.clear();
                Collected::Other(PeerEvent::Dropped(e))
            }
            other => Collected::Other(other),
        }
    }
}

fn is_inv_list(command: Command) -> bool {
    matches!(command, Command::Inv | Command::GetData | Command::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use electrum_spv_core::p2p::{FrameError, MessageError};

    #[test]
    fn items_are_kept_until_the_checksum_matched() {
        let item = InvVector {
            kind: InvType::TX,
            hash: [7; 32],
        };
        let mut c = ListCollector::default();
        let start = PeerEvent::ListStart {
            command: Command::Inv,
            count: 1,
        };
        assert!(matches!(c.take(start.clone()), Collected::Taken));
        assert!(matches!(
            c.take(PeerEvent::Inventory(item)),
            Collected::Taken
        ));
        match c.take(PeerEvent::ListEnd {
            command: Command::Inv,
        }) {
            Collected::List(Command::Inv, items) => assert_eq!(items, vec![item]),
            _ => panic!("no list"),
        }
        // A bad checksum: the items go.
        let _ = c.take(start);
        let _ = c.take(PeerEvent::Inventory(item));
        let bad = MessageError::Frame(FrameError::BadChecksum {
            command: Command::Inv,
        });
        assert!(matches!(
            c.take(PeerEvent::Dropped(bad)),
            Collected::Other(_)
        ));
        assert!(matches!(
            c.take(PeerEvent::ListEnd {
                command: Command::Inv
            }),
            Collected::Other(_)
        ));
    }

    #[test]
    fn names_and_display_hex() {
        assert_eq!(inv_type_name(InvType::WITNESS_TX), "witness_tx");
        assert_eq!(inv_type_name(InvType(9)), "unknown_0x9");
        let mut hash = [0u8; 32];
        hash[0] = 0xab;
        let item = InvItem {
            peer: NodeId("a:1".into()),
            kind: InvType::TX,
            hash,
            time_ms: 0,
        };
        assert!(item.hash_hex().ends_with("ab"));
    }
}
