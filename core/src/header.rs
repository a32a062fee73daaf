//! The 80-byte block header: parse, serialize, hash; compact bits, targets and work.

use core::fmt;

use crate::hash::{BlockHash, MerkleNode, sha256d};
use crate::hex::{self, HexError};
use crate::u256::U256;

/// Size of a serialized block header.
pub const HEADER_SIZE: usize = 80;

/// A parsed block header. Field order and encoding follow the consensus serialization.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Header {
    /// Block version (signed, as in consensus code).
    pub version: i32,
    /// Hash of the previous block's header.
    pub prev_blockhash: BlockHash,
    /// Root of the block's transaction merkle tree.
    pub merkle_root: MerkleNode,
    /// Block timestamp, seconds since the Unix epoch.
    pub time: u32,
    /// Proof-of-work target in compact form.
    pub bits: CompactTarget,
    /// Nonce.
    pub nonce: u32,
}

#[inline(always)]
pub(crate) fn le_u32(b: &[u8; HEADER_SIZE], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline(always)]
pub(crate) fn hash_at(b: &[u8; HEADER_SIZE], at: usize) -> [u8; 32] {
    let mut h = [0u8; 32];
    h.copy_from_slice(&b[at..at + 32]);
    h
}

impl Header {
    /// Parses 80 bytes. Every byte pattern is a valid header at this level; consensus rules are
    /// checked by [`crate::chain::HeaderVerifier`].
    pub fn from_bytes(b: &[u8; HEADER_SIZE]) -> Header {
        Header {
            version: le_u32(b, 0) as i32,
            prev_blockhash: BlockHash::from_byte_array(hash_at(b, 4)),
            merkle_root: MerkleNode::from_byte_array(hash_at(b, 36)),
            time: le_u32(b, 68),
            bits: CompactTarget(le_u32(b, 72)),
            nonce: le_u32(b, 76),
        }
    }

    /// Parses a slice that must be exactly 80 bytes long.
    pub fn from_slice(b: &[u8]) -> Result<Header, HeaderParseError> {
        let arr: &[u8; HEADER_SIZE] = b
            .try_into()
            .map_err(|_| HeaderParseError::BadLength(b.len()))?;
        Ok(Header::from_bytes(arr))
    }

    /// Parses 160 hex digits.
    pub fn from_hex(hex: &[u8]) -> Result<Header, HeaderParseError> {
        let mut b = [0u8; HEADER_SIZE];
        hex::decode_to_slice(hex, &mut b).map_err(HeaderParseError::Hex)?;
        Ok(Header::from_bytes(&b))
    }

    /// Serializes to 80 bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..4].copy_from_slice(&self.version.to_le_bytes());
        b[4..36].copy_from_slice(self.prev_blockhash.as_byte_array());
        b[36..68].copy_from_slice(self.merkle_root.as_byte_array());
        b[68..72].copy_from_slice(&self.time.to_le_bytes());
        b[72..76].copy_from_slice(&self.bits.0.to_le_bytes());
        b[76..80].copy_from_slice(&self.nonce.to_le_bytes());
        b
    }

    /// The block hash (double SHA-256 of the serialization).
    pub fn block_hash(&self) -> BlockHash {
        BlockHash::from_byte_array(sha256d(&self.to_bytes()))
    }
}

/// Why bytes could not be read as a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderParseError {
    /// Not exactly 80 bytes; carries the length given.
    BadLength(usize),
    /// Not valid hex (or not 160 digits).
    Hex(HexError),
}

impl fmt::Display for HeaderParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderParseError::BadLength(n) => write!(f, "header is {n} bytes, expected 80"),
            HeaderParseError::Hex(e) => write!(f, "header hex: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HeaderParseError {}

/// A proof-of-work target in the 32-bit "compact" (nBits) encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CompactTarget(pub u32);

impl fmt::Debug for CompactTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CompactTarget({:#010x})", self.0)
    }
}

impl fmt::Display for CompactTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// The result of decoding a compact target exactly as Bitcoin Core's `SetCompact` does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DecodedCompact {
    /// The magnitude (what Core stores, truncated to 256 bits).
    pub value: U256,
    /// The sign bit was set on a non-zero mantissa.
    pub negative: bool,
    /// The value does not fit in 256 bits.
    pub overflow: bool,
}

/// Why a compact target is not a usable proof-of-work target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactError {
    /// The sign bit is set on a non-zero mantissa.
    Negative,
    /// The value does not fit in 256 bits.
    Overflow,
    /// The target is zero: no hash can meet it.
    Zero,
}

impl fmt::Display for CompactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CompactError::Negative => "negative compact target",
            CompactError::Overflow => "compact target overflows 256 bits",
            CompactError::Zero => "zero target",
        })
    }
}

impl CompactTarget {
    /// Decodes like Bitcoin Core's `arith_uint256::SetCompact`, reporting sign and overflow.
    pub const fn decode(self) -> DecodedCompact {
        let size = self.0 >> 24;
        let mut word = self.0 & 0x007f_ffff;
        let value = if size <= 3 {
            word >>= 8 * (3 - size);
            U256::from_u64(word as u64)
        } else {
            U256::from_u64(word as u64).shl(8 * (size - 3))
        };
        DecodedCompact {
            value,
            negative: word != 0 && (self.0 & 0x0080_0000) != 0,
            overflow: word != 0
                && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32)),
        }
    }

    /// The target, if it is a valid proof-of-work target (positive, in range, non-zero).
    pub const fn to_target(self) -> Result<Target, CompactError> {
        let d = self.decode();
        if d.negative {
            Err(CompactError::Negative)
        } else if d.overflow {
            Err(CompactError::Overflow)
        } else if d.value.is_zero() {
            Err(CompactError::Zero)
        } else {
            Ok(Target(d.value))
        }
    }
}

/// A proof-of-work target: a block hash, read as a little-endian number, must not exceed it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Target(pub U256);

impl Target {
    /// Encodes like Bitcoin Core's `arith_uint256::GetCompact` (never sets the sign bit).
    pub const fn to_compact(self) -> CompactTarget {
        let mut size = self.0.bits().div_ceil(8);
        let mut compact = if size <= 3 {
            self.0.low_u64() << (8 * (3 - size))
        } else {
            self.0.shr(8 * (size - 3)).low_u64()
        };
        if compact & 0x0080_0000 != 0 {
            compact >>= 8;
            size += 1;
        }
        CompactTarget((compact as u32) | (size << 24))
    }

    /// True when `hash` (internal order) meets this target.
    #[inline]
    pub fn is_met_by(&self, hash: &BlockHash) -> bool {
        U256::from_le_bytes(hash.as_byte_array()) <= self.0
    }

    /// Expected number of hashes to find a block at this target: `2^256 / (target + 1)`.
    pub fn work(&self) -> Work {
        // 2^256 does not fit, so compute (2^256 - target - 1) / (target + 1) + 1.
        match self.0.checked_add(U256::ONE) {
            Some(denominator) => {
                let q = self.0.not().checked_div(denominator).unwrap_or(U256::ZERO);
                Work(q.saturating_add(U256::ONE))
            }
            // target == 2^256 - 1: exactly one hash is expected.
            None => Work(U256::ONE),
        }
    }
}

/// Amount of work (expected hashes), as a 256-bit integer.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Work(pub U256);

impl Work {
    /// No work.
    pub const ZERO: Work = Work(U256::ZERO);

    /// Sum of two amounts of work (saturates; real chains are far from 2^256).
    #[inline]
    pub const fn add(self, other: Work) -> Work {
        Work(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GENESIS: &[u8] = b"0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";

    #[test]
    fn genesis_round_trip() {
        let h = Header::from_hex(GENESIS).unwrap();
        assert_eq!(h.bits, CompactTarget(0x1d00ffff));
        assert_eq!(h.time, 1231006505);
        let mut hex = [0u8; 160];
        hex::encode_to_slice(&h.to_bytes(), &mut hex).unwrap();
        assert_eq!(&hex[..], GENESIS);
        assert_eq!(
            h.block_hash().to_string(),
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
        );
        let target = h.bits.to_target().unwrap();
        assert!(target.is_met_by(&h.block_hash()));
        assert_eq!(target.work().0, U256::from_u64(0x1_0001_0001));
    }

    #[test]
    fn bad_inputs_are_typed() {
        assert_eq!(
            Header::from_slice(&[0; 79]),
            Err(HeaderParseError::BadLength(79))
        );
        assert!(matches!(
            Header::from_hex(&GENESIS[..158]),
            Err(HeaderParseError::Hex(_))
        ));
        assert_eq!(
            CompactTarget(0x04923456).to_target(),
            Err(CompactError::Negative)
        );
        assert_eq!(
            CompactTarget(0xff123456).to_target(),
            Err(CompactError::Overflow)
        );
        assert_eq!(
            CompactTarget(0x01003456).to_target(),
            Err(CompactError::Zero)
        );
    }

    #[test]
    fn max_target_work_is_one() {
        assert_eq!(Target(U256::MAX).work().0, U256::ONE);
        assert_eq!(Target(U256::ZERO).work().0, U256::MAX, "2^256 saturates");
    }

    proptest! {
        /// Any target decoded from canonical bits encodes back to the same bits.
        #[test]
        fn compact_round_trip(mantissa in 0x008000u32..0x800000, size in 3u32..=32) {
            let bits = CompactTarget((size << 24) | mantissa);
            let target = bits.to_target().unwrap();
            prop_assert_eq!(target.to_compact(), bits);
        }

        /// Encoding any value then decoding keeps exactly its leading mantissa bytes.
        #[test]
        fn encode_decode_truncates(limbs in any::<[u64; 4]>(), shift in 0u32..256) {
            let v = U256::from_limbs(limbs).shr(shift);
            let compact = Target(v).to_compact();
            let back = compact.decode();
            prop_assert!(!back.negative && !back.overflow);
            let granularity = 8 * (compact.0 >> 24).saturating_sub(3);
            prop_assert_eq!(back.value, v.shr(granularity).shl(granularity));
        }
    }
}
