//! Script hashes, address statuses and the canonical history order (PROTOCOL.md §4.2, §4.3).
//!
//! * [`script_hash`]: what Electrum servers index by: single SHA-256 of the scriptPubKey, shown
//!   reversed like a txid (forgetting the reversal is the classic "empty history" bug).
//! * [`StatusHasher`]: the status of a history is the SHA-256 of
//!   `"{txid}:{height}:"` repeated for every item, in the server's order. The hasher feeds each
//!   item into a running SHA-256, so a 10,000-item history needs no buffer.
//! * [`CanonicalOrder`]: from protocol 1.6 the order is fixed: confirmed items by height, then
//!   mempool items with height 0, then those with height -1, each mempool group ascending by the
//!   display-order txid hex. Checking it catches a server that reorders items.

use core::cmp::Ordering;
use core::fmt;

use sha2::{Digest, Sha256};

use crate::hash::{ScriptHash, Status, Txid, sha256};

/// The Electrum script hash of `script_pubkey`. Its [`Display`](core::fmt::Display) form is the
/// hex the protocol sends (digest reversed).
pub fn script_hash(script_pubkey: &[u8]) -> ScriptHash {
    // The digest is kept as the "internal" bytes so that display order is the reversed digest.
    ScriptHash::from_byte_array(sha256(script_pubkey))
}

/// Where a history item is: a block height or one of the two mempool classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxHeight {
    /// In the block at this height. Servers never send 0 here (that is [`TxHeight::Mempool`]);
    /// `Confirmed(0)` is written as `0` like the mempool class.
    Confirmed(u32),
    /// In the mempool, every input spending a confirmed output (protocol height `0`).
    Mempool,
    /// In the mempool, spending an output of another mempool transaction (protocol height
    /// `-1`).
    MempoolUnconfirmedParent,
}

/// A protocol height that is neither a block height nor `0` or `-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxHeightError {
    /// Below `-1`.
    Negative(i64),
    /// Above `u32::MAX`.
    TooHigh(i64),
}

impl fmt::Display for TxHeightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxHeightError::Negative(h) => write!(f, "history height {h} is below -1"),
            TxHeightError::TooHigh(h) => write!(f, "history height {h} does not fit 32 bits"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TxHeightError {}

impl TxHeight {
    /// Reads the protocol's signed height: `0` mempool, `-1` mempool with an unconfirmed
    /// parent, positive a block height.
    pub const fn from_i64(height: i64) -> Result<TxHeight, TxHeightError> {
        match height {
            0 => Ok(TxHeight::Mempool),
            -1 => Ok(TxHeight::MempoolUnconfirmedParent),
            h if h < -1 => Err(TxHeightError::Negative(h)),
            h if h > u32::MAX as i64 => Err(TxHeightError::TooHigh(h)),
            h => Ok(TxHeight::Confirmed(h as u32)),
        }
    }

    /// The protocol's signed height.
    pub const fn to_i64(self) -> i64 {
        match self {
            TxHeight::Confirmed(h) => h as i64,
            TxHeight::Mempool => 0,
            TxHeight::MempoolUnconfirmedParent => -1,
        }
    }

    /// Not confirmed yet.
    pub const fn is_mempool(self) -> bool {
        !matches!(self, TxHeight::Confirmed(_))
    }

    /// Writes the signed decimal form into `buf` and returns the written part.
    fn write_decimal(self, buf: &mut [u8; 11]) -> &[u8] {
        let (mut value, negative) = match self {
            TxHeight::Confirmed(h) => (h, false),
            TxHeight::Mempool => (0, false),
            TxHeight::MempoolUnconfirmedParent => (1, true),
        };
        // Digits are written from the end of the buffer backwards.
        let mut start = buf.len();
        for slot in buf.iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            start -= 1;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        if negative && let Some(slot) = start.checked_sub(1).and_then(|i| buf.get_mut(i)) {
            *slot = b'-';
            start -= 1;
        }
        buf.get(start..).unwrap_or(&[])
    }
}

impl fmt::Display for TxHeight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_i64())
    }
}

/// Longest status item: 64 hex digits, `:`, up to 10 digits or `-1`, `:`.
const MAX_ITEM_LEN: usize = 64 + 1 + 10 + 1;

/// Computes an address status from history items as they arrive.
///
/// `size_of::<StatusHasher>()` is under 128 bytes (tested).
#[derive(Clone, Default)]
pub struct StatusHasher {
    sha: Sha256,
    items: usize,
}

impl fmt::Debug for StatusHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusHasher")
            .field("items", &self.items)
            .finish()
    }
}

impl StatusHasher {
    /// A hasher for an empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next history item, in the order the server listed it.
    pub fn push(&mut self, txid: &Txid, height: TxHeight) {
        // One update per item: SHA-256 buffers partial blocks anyway, and fewer calls are
        // measurably faster than four small ones.
        let mut item = [0u8; MAX_ITEM_LEN];
        let mut decimal = [0u8; 11];
        let digits = height.write_decimal(&mut decimal);
        let (hex, rest) = item.split_at_mut(64);
        hex.copy_from_slice(&txid.to_display_hex());
        let len = 64 + 2 + digits.len();
        if let Some((colon, tail)) = rest.split_first_mut() {
            *colon = b':';
            for (dst, src) in tail.iter_mut().zip(digits.iter().chain(b":")) {
                *dst = *src;
            }
        }
        self.sha.update(item.get(..len).unwrap_or(&item));
        self.items = self.items.saturating_add(1);
    }

    /// Items pushed so far.
    pub fn len(&self) -> usize {
        self.items
    }

    /// No item pushed.
    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// The status, or `None` for an empty history (sent as JSON `null`).
    pub fn finish(self) -> Option<Status> {
        if self.items == 0 {
            return None;
        }
        Some(Status::from_byte_array(self.sha.finalize().into()))
    }
}

/// How a history breaks the protocol-1.6 canonical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderError {
    /// A confirmed item at a lower height than the one before it.
    HeightDecreased {
        /// Height of the previous item.
        previous: u32,
        /// Height of this item.
        got: u32,
    },
    /// A confirmed item after a mempool item.
    ConfirmedAfterMempool,
    /// A height-0 mempool item after a height-(-1) one.
    MempoolAfterUnconfirmedParent,
    /// Within a mempool group, a txid not above the previous one in display-order hex.
    NotAscending,
    /// The same item twice in a row.
    Duplicate,
}

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderError::HeightDecreased { previous, got } => {
                write!(f, "history height {got} follows height {previous}")
            }
            OrderError::ConfirmedAfterMempool => {
                f.write_str("confirmed history item after a mempool item")
            }
            OrderError::MempoolAfterUnconfirmedParent => {
                f.write_str("mempool item of height 0 after one of height -1")
            }
            OrderError::NotAscending => f.write_str("mempool txids not in ascending order"),
            OrderError::Duplicate => f.write_str("duplicate history item"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for OrderError {}

/// Checks that history items arrive in the protocol-1.6 canonical order, holding only the
/// previous item.
///
/// Within one block the order is the transactions' position, which the history does not
/// carry, so confirmed items of the same height are only checked for adjacent repeats; a
/// repeat further apart is not detectable without memory.
#[derive(Debug, Clone, Copy, Default)]
pub struct CanonicalOrder {
    previous: Option<(Txid, TxHeight)>,
}

impl CanonicalOrder {
    /// A checker before the first item.
    pub const fn new() -> Self {
        CanonicalOrder { previous: None }
    }

    /// Checks the next item against the previous one. An item that fails is not remembered.
    pub fn push(&mut self, txid: &Txid, height: TxHeight) -> Result<(), OrderError> {
        if let Some((prev_txid, prev_height)) = self.previous {
            check_pair(&prev_txid, prev_height, txid, height)?;
        }
        self.previous = Some((*txid, height));
        Ok(())
    }
}

fn check_pair(
    prev: &Txid,
    prev_height: TxHeight,
    txid: &Txid,
    height: TxHeight,
) -> Result<(), OrderError> {
    use TxHeight::*;
    match (prev_height, height) {
        (Confirmed(p), Confirmed(h)) if h < p => Err(OrderError::HeightDecreased {
            previous: p,
            got: h,
        }),
        (Confirmed(p), Confirmed(h)) if h == p && prev == txid => Err(OrderError::Duplicate),
        (Confirmed(_), _) => Ok(()),
        (_, Confirmed(_)) => Err(OrderError::ConfirmedAfterMempool),
        (MempoolUnconfirmedParent, Mempool) => Err(OrderError::MempoolAfterUnconfirmedParent),
        (Mempool, MempoolUnconfirmedParent) => Ok(()),
        // Same mempool group.
        _ => match display_order_cmp(prev, txid) {
            Ordering::Less => Ok(()),
            Ordering::Equal => Err(OrderError::Duplicate),
            Ordering::Greater => Err(OrderError::NotAscending),
        },
    }
}

/// Orders txids as their display-order hex strings sort: by the internal bytes read backwards.
pub fn display_order_cmp(a: &Txid, b: &Txid) -> Ordering {
    a.as_byte_array()
        .iter()
        .rev()
        .cmp(b.as_byte_array().iter().rev())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;

    #[test]
    fn script_hash_vectors() {
        // PROTOCOL.md §6.1.
        let vectors = [
            (
                "76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac",
                "8b01df4e368ea28f8dc0423bcf7a4923e3a12d307c875e47a0cfbf90b5c39161",
            ),
            (
                "4104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac",
                "740485f380ff6379d11ef6fe7d7cdd68aea7f8bd0d953d9fdf3531fb7d531833",
            ),
            (
                "00149f9aa3795e57c535d2f7b160ff023804c60fca6e",
                "f04bf26fc16a27abaa2f10540da7a24e369e6ec408f2d901202a7c0cd4a6112d",
            ),
            (
                "76a914206168f5322583ff37f8e55665a4789ae896353288ac",
                "8071d0292bab0bd456ade29aa8a9739df30f32800e7e2ab1f532896eb280cbb8",
            ),
            (
                "a914a773db925b09add367dcc253c1f9bbc1d11ec6fd87",
                "d0d086be88e3b2aa403dbedd5300ac399be7341eb8733a8a2bb90ce515852d06",
            ),
        ];
        for (script_hex, expected) in vectors {
            let mut script = vec![0u8; script_hex.len() / 2];
            hex::decode_to_slice(script_hex.as_bytes(), &mut script).unwrap();
            assert_eq!(script_hash(&script).to_string(), expected);
        }
        let raw = sha256(
            &hex::decode_array::<25>(b"76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac")
                .unwrap(),
        );
        assert_eq!(raw[0], 0x61, "raw digest 6191c3b5…");
        // ElectrumX hashX: first 11 bytes of the raw digest.
        let script =
            hex::decode_array::<25>(b"76a914206168f5322583ff37f8e55665a4789ae896353288ac").unwrap();
        assert_eq!(
            sha256(&script)[..11],
            hex::decode_array::<11>(b"b8cb80b26e8932f5b12a7e").unwrap()
        );
    }

    fn status_of(items: &[(&str, i64)]) -> Option<Status> {
        let mut hasher = StatusHasher::new();
        for (txid, height) in items {
            hasher.push(&txid.parse().unwrap(), TxHeight::from_i64(*height).unwrap());
        }
        assert_eq!(hasher.len(), items.len());
        hasher.finish()
    }

    fn is_canonical(items: &[(&str, i64)]) -> Result<(), OrderError> {
        let mut order = CanonicalOrder::new();
        for (txid, height) in items {
            order.push(&txid.parse().unwrap(), TxHeight::from_i64(*height).unwrap())?;
        }
        Ok(())
    }

    #[test]
    fn status_of_the_spec_example() {
        // PROTOCOL.md §6.2, current spec example.
        let items = [
            (
                "a6c9c361bd0bc536d6a22648efbf8f9b200e425ef6c3a7a9669dc444c532a347",
                2472,
            ),
            (
                "9c42f84b2fcdaff676ba25d9d4941741cc0d1a01cce0c23fdc4c0b2afa38431c",
                2473,
            ),
            (
                "770f2d4371b3fabb902dd9a103e2dd005fcd3971181078fca4a2a1d6ff127b30",
                2473,
            ),
            (
                "80b19848aed792565ab7c5a79b7c2a00fbf985741579396ebe0ab6098e607311",
                0,
            ),
            (
                "e02a1dadfa83b996b24175df807b271ea5d02937ef5b35c195fac1e1bdc3198f",
                0,
            ),
            (
                "bb4c8ab438c13b89ca80d1d5bee25b0b6b7f55673f4d801998ba97db161d9e85",
                -1,
            ),
        ];
        assert_eq!(
            status_of(&items).unwrap().to_string(),
            "78e96c6562cafa71c115503b9411fdfdc595a45031e2ab76ff75162fe1b0590d"
        );
        assert_eq!(is_canonical(&items), Ok(()));
    }

    #[test]
    fn status_depends_on_mempool_order() {
        // PROTOCOL.md §6.2, ordering-sensitive vector.
        let confirmed = [
            (
                "5c75485491ef13ca39c06a6c985de5223ac34a365fe26d461e567521f87bb378",
                1860,
            ),
            (
                "9a2808f0cebab7fd71033b2974ab476098f8a6deb972b72fed60878a44badeda",
                1861,
            ),
            (
                "07ec1e1dd23e337d55c7e21e892cca4d328cef5d6eddf29e59587e9056e891f7",
                1861,
            ),
        ];
        let a = (
            "98edd636bf8142d9ec0b88de3c8dbd3eb3da9bcfb02f7496f21408d8c6be58f2",
            0,
        );
        let b = (
            "73fe76fe862413b8ff0f74b72c65c21fa1229a07d0625d994028363aa7cd58f7",
            0,
        );
        let c = (
            "b870b52ab5ecc3c3133ef1b9fff54d8d49c9c3ab7aa4236bf4c8d734d4d3b231",
            -1,
        );
        let display: Vec<_> = confirmed.iter().copied().chain([b, a, c]).collect();
        let internal: Vec<_> = confirmed.iter().copied().chain([a, b, c]).collect();
        assert_eq!(
            status_of(&display).unwrap().to_string(),
            "696f65daf9b7cb305aef5a62206ac56287d61a4fce7fc21121399348d209e631"
        );
        assert_eq!(
            status_of(&internal).unwrap().to_string(),
            "3b3b8f1bf926bde2e8e21d80b7d23afbef8f8ef697e7e9204683d9a29801b671"
        );
        assert_eq!(is_canonical(&display), Ok(()));
        assert_eq!(is_canonical(&internal), Err(OrderError::NotAscending));
    }

    #[test]
    fn empty_history_is_null() {
        assert_eq!(StatusHasher::new().finish(), None);
        assert!(StatusHasher::new().is_empty());
    }

    #[test]
    fn status_hashes_the_documented_string() {
        let txid: Txid = "a6c9c361bd0bc536d6a22648efbf8f9b200e425ef6c3a7a9669dc444c532a347"
            .parse()
            .unwrap();
        for h in [
            TxHeight::Confirmed(u32::MAX),
            TxHeight::Confirmed(7),
            TxHeight::Mempool,
            TxHeight::MempoolUnconfirmedParent,
        ] {
            let mut hasher = StatusHasher::new();
            hasher.push(&txid, h);
            let text = format!("{txid}:{}:", h.to_i64());
            assert_eq!(
                hasher.finish().unwrap().to_byte_array(),
                sha256(text.as_bytes())
            );
        }
    }

    #[test]
    fn heights_round_trip() {
        for h in [0, -1, 1, 812_345, u32::MAX as i64] {
            assert_eq!(TxHeight::from_i64(h).unwrap().to_i64(), h);
        }
        assert_eq!(TxHeight::from_i64(-2), Err(TxHeightError::Negative(-2)));
        assert_eq!(
            TxHeight::from_i64(1 << 32),
            Err(TxHeightError::TooHigh(1 << 32))
        );
        assert_eq!(TxHeight::from_i64(5), Ok(TxHeight::Confirmed(5)));
    }

    #[test]
    fn order_violations() {
        let t1 = "0100000000000000000000000000000000000000000000000000000000000000";
        let t2 = "0200000000000000000000000000000000000000000000000000000000000000";
        assert_eq!(
            is_canonical(&[(t1, 10), (t2, 9)]),
            Err(OrderError::HeightDecreased {
                previous: 10,
                got: 9
            })
        );
        assert_eq!(
            is_canonical(&[(t1, 10), (t1, 10)]),
            Err(OrderError::Duplicate)
        );
        assert_eq!(
            is_canonical(&[(t2, 10), (t1, 10)]),
            Ok(()),
            "block position order"
        );
        assert_eq!(
            is_canonical(&[(t1, 0), (t2, 10)]),
            Err(OrderError::ConfirmedAfterMempool)
        );
        assert_eq!(
            is_canonical(&[(t1, -1), (t2, 0)]),
            Err(OrderError::MempoolAfterUnconfirmedParent)
        );
        assert_eq!(is_canonical(&[(t1, 0), (t2, -1)]), Ok(()));
        assert_eq!(is_canonical(&[(t1, -1), (t2, -1)]), Ok(()));
        assert_eq!(
            is_canonical(&[(t2, -1), (t1, -1)]),
            Err(OrderError::NotAscending)
        );
        assert_eq!(
            is_canonical(&[(t1, 0), (t1, 0)]),
            Err(OrderError::Duplicate)
        );
    }

    #[test]
    fn state_is_small() {
        std::println!(
            "size_of::<StatusHasher>() = {}",
            core::mem::size_of::<StatusHasher>()
        );
        std::println!(
            "size_of::<CanonicalOrder>() = {}",
            core::mem::size_of::<CanonicalOrder>()
        );
        assert!(core::mem::size_of::<StatusHasher>() <= 128);
        assert!(core::mem::size_of::<CanonicalOrder>() <= 40);
    }
}
