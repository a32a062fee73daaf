//! What makes a script's history verified, as rules every engine and every layer applies:
//! the status recomputed in the server's order, the canonical mempool order at protocol 1.6
//! and later, no transaction listed twice, and entries reported in chain order.
//!
//! The merkle proof of each confirmed entry ([`crate::merkle`]), the header it is proven into
//! ([`crate::chain`], [`crate::accumulator`]) and the transaction's link to the script
//! ([`crate::tx::TxScan`], in [`crate::sync::tracker`]) are checked by their own modules; this one
//! holds what is checked of the list itself.

use core::cmp::Ordering;
use core::fmt;

use crate::hash::{Status, Txid};
use crate::script::{CanonicalOrder, OrderError, StatusHasher, TxHeight};

/// Why a history list is false.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HistoryFault {
    /// The history does not hash to the status the server announced.
    StatusMismatch,
    /// At 1.6+ the history is not in canonical order.
    NotCanonical(OrderError),
    /// The same transaction is listed twice.
    DuplicateTxid(Txid),
}

impl fmt::Display for HistoryFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryFault::StatusMismatch => {
                f.write_str("the history does not hash to the announced status")
            }
            HistoryFault::NotCanonical(e) => write!(f, "history not in canonical order: {e}"),
            HistoryFault::DuplicateTxid(t) => write!(f, "transaction {t} listed twice"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HistoryFault {}

/// Checks a history as it streams by, holding only the status hasher and the previous item:
/// the status recomputed in the server's order and, when `canonical`, the 1.6 order.
/// Duplicates further apart than adjacent items need the whole list: [`first_duplicate`].
#[derive(Clone, Debug)]
pub struct HistoryCheck {
    hasher: StatusHasher,
    order: Option<CanonicalOrder>,
}

impl HistoryCheck {
    /// A check before the first item; `canonical` at protocol 1.6 and later.
    pub fn new(canonical: bool) -> HistoryCheck {
        HistoryCheck {
            hasher: StatusHasher::new(),
            order: canonical.then(CanonicalOrder::new),
        }
    }

    /// The next item, in the server's order. It counts in the status also when its order is
    /// refused.
    ///
    /// # Errors
    /// [`HistoryFault::NotCanonical`] when the order breaks the 1.6 rules.
    pub fn push(&mut self, txid: &Txid, height: TxHeight) -> Result<(), HistoryFault> {
        self.hasher.push(txid, height);
        match &mut self.order {
            Some(order) => order.push(txid, height).map_err(HistoryFault::NotCanonical),
            None => Ok(()),
        }
    }

    /// The recomputed status, checked against the one the server announced.
    ///
    /// # Errors
    /// [`HistoryFault::StatusMismatch`].
    pub fn finish(self, announced: Option<Status>) -> Result<Option<Status>, HistoryFault> {
        let status = self.hasher.finish();
        if status == announced {
            Ok(status)
        } else {
            Err(HistoryFault::StatusMismatch)
        }
    }
}

/// The first transaction listed twice in `txids`, which it sorts (no allocation: the caller
/// passes a scratch copy).
pub fn first_duplicate(txids: &mut [Txid]) -> Option<Txid> {
    txids.sort_unstable_by(|a, b| a.as_byte_array().cmp(b.as_byte_array()));
    txids.windows(2).find_map(|w| match w {
        [a, b] if a == b => Some(*a),
        _ => None,
    })
}

/// Where a verified entry stands in the chain: confirmed entries by height, then by the
/// position in the block that their merkle proof fixes; mempool entries after every confirmed
/// one, in the server's order (`index`). Sorting by this key gives the order a wallet shows
/// and in which a parent precedes its child.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ChainPosition {
    /// Proven at `height`, at `pos` in the block.
    Confirmed {
        /// Block height.
        height: u32,
        /// Position in the block (from the merkle proof).
        pos: u32,
    },
    /// Unconfirmed; `index` is its place in the server's list.
    Mempool {
        /// Place in the server's list.
        index: usize,
    },
}

impl Ord for ChainPosition {
    fn cmp(&self, other: &Self) -> Ordering {
        use ChainPosition::*;
        match (self, other) {
            (Confirmed { height: h, pos: p }, Confirmed { height: g, pos: q }) => {
                (h, p).cmp(&(g, q))
            }
            (Confirmed { .. }, Mempool { .. }) => Ordering::Less,
            (Mempool { .. }, Confirmed { .. }) => Ordering::Greater,
            (Mempool { index: a }, Mempool { index: b }) => a.cmp(b),
        }
    }
}

impl PartialOrd for ChainPosition {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(b: u8) -> Txid {
        Txid::from_byte_array([b; 32])
    }

    #[test]
    fn status_is_recomputed_in_the_servers_order() {
        let mut honest = HistoryCheck::new(false);
        honest.push(&t(1), TxHeight::Confirmed(5)).unwrap();
        honest.push(&t(2), TxHeight::Confirmed(5)).unwrap();
        let mut reference = StatusHasher::new();
        reference.push(&t(1), TxHeight::Confirmed(5));
        reference.push(&t(2), TxHeight::Confirmed(5));
        let status = reference.finish();
        assert_eq!(honest.clone().finish(status), Ok(status));
        assert_eq!(honest.finish(None), Err(HistoryFault::StatusMismatch));
        assert_eq!(HistoryCheck::new(true).finish(None), Ok(None));
    }

    #[test]
    fn canonical_order_only_when_asked() {
        let mut loose = HistoryCheck::new(false);
        loose.push(&t(1), TxHeight::Confirmed(9)).unwrap();
        assert!(loose.push(&t(2), TxHeight::Confirmed(3)).is_ok());
        let mut strict = HistoryCheck::new(true);
        strict.push(&t(1), TxHeight::Confirmed(9)).unwrap();
        assert!(matches!(
            strict.push(&t(2), TxHeight::Confirmed(3)),
            Err(HistoryFault::NotCanonical(_))
        ));
    }

    #[test]
    fn duplicates_are_found_wherever_they_are() {
        let mut list = [t(3), t(1), t(2), t(1)];
        assert_eq!(first_duplicate(&mut list), Some(t(1)));
        let mut list = [t(3), t(1), t(2)];
        assert_eq!(first_duplicate(&mut list), None);
        assert_eq!(first_duplicate(&mut []), None);
    }

    #[test]
    fn chain_position_orders_by_block_position_then_mempool() {
        let mut v = [
            ChainPosition::Mempool { index: 0 },
            ChainPosition::Confirmed { height: 7, pos: 3 },
            ChainPosition::Confirmed { height: 7, pos: 1 },
            ChainPosition::Confirmed { height: 2, pos: 9 },
        ];
        v.sort();
        assert_eq!(
            v,
            [
                ChainPosition::Confirmed { height: 2, pos: 9 },
                ChainPosition::Confirmed { height: 7, pos: 1 },
                ChainPosition::Confirmed { height: 7, pos: 3 },
                ChainPosition::Mempool { index: 0 },
            ]
        );
    }
}
