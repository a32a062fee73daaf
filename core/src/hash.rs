//! SHA-256 helpers and hash newtypes that carry their byte order in the type.
//!
//! Bitcoin hashes are computed and stored in *internal* order (the digest as produced) but shown
//! and sent over the Electrum protocol in *display* order (reversed). Each newtype holds internal
//! order; only [`fmt::Display`], [`from_display_hex`](BlockHash::from_display_hex) and
//! [`to_display_hex`](BlockHash::to_display_hex) speak display order, so the two cannot be mixed
//! by accident. [`Status`] is the exception the protocol makes: its hex is the digest *as is*.

use core::fmt;
use core::str::FromStr;

use sha2::{Digest, Sha256};

use crate::hex::{self, HexError};

/// SHA-256 of `data`.
#[inline]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Double SHA-256 (SHA-256 of SHA-256) of `data`: block hashes, txids and merkle nodes.
#[inline]
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    sha256(&sha256(data))
}

/// Double SHA-256 of the concatenation `left || right` (one merkle tree node).
#[inline]
pub fn sha256d_pair(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(left);
    buf[32..].copy_from_slice(right);
    sha256d(&buf)
}

/// Incremental SHA-256 for data that arrives in pieces.
#[derive(Clone, Default)]
pub struct Sha256Engine(Sha256);

impl Sha256Engine {
    /// A fresh engine.
    pub fn new() -> Self {
        Self(Sha256::new())
    }

    /// Feeds more bytes.
    #[inline]
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// Finishes and returns the digest.
    pub fn finalize(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

impl fmt::Debug for Sha256Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sha256Engine")
    }
}

/// Incremental double SHA-256 for data that arrives in pieces: [`Sha256Engine`], hashed once
/// more at the end.
#[derive(Clone, Default)]
pub struct Sha256dEngine(Sha256Engine);

impl Sha256dEngine {
    /// A fresh engine.
    pub fn new() -> Self {
        Self(Sha256Engine::new())
    }

    /// Feeds more bytes.
    #[inline]
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// Finishes and returns the double SHA-256 in internal order.
    pub fn finalize(self) -> [u8; 32] {
        sha256(&self.0.finalize())
    }
}

impl fmt::Debug for Sha256dEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sha256dEngine")
    }
}

macro_rules! display_order_hash {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps bytes in internal order (as the hash function produced them).
            #[inline]
            pub const fn from_byte_array(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The bytes in internal order.
            #[inline]
            pub const fn to_byte_array(self) -> [u8; 32] {
                self.0
            }

            /// The bytes in internal order, borrowed.
            #[inline]
            pub const fn as_byte_array(&self) -> &[u8; 32] {
                &self.0
            }

            /// Parses the display-order hex form (64 digits, as sent by Electrum servers).
            pub fn from_display_hex(hex: &[u8]) -> Result<Self, HexError> {
                let mut bytes = [0u8; 32];
                hex::decode_reversed_to_slice(hex, &mut bytes)?;
                Ok(Self(bytes))
            }

            /// Parses display-order hex at compile time. Panics (a compile error in a `const`)
            /// on malformed input; use [`Self::from_display_hex`] for untrusted input.
            pub const fn from_display_hex_const(hex: &str) -> Self {
                let h = hex.as_bytes();
                assert!(h.len() == 64, "a hash is 64 hex digits");
                let mut bytes = [0u8; 32];
                let mut i = 0;
                while i < 32 {
                    let (Some(hi), Some(lo)) = (hex::nibble(h[2 * i]), hex::nibble(h[2 * i + 1]))
                    else {
                        panic!("invalid hex digit");
                    };
                    bytes[31 - i] = (hi << 4) | lo;
                    i += 1;
                }
                Self(bytes)
            }

            /// The display-order hex form, written into a 64-byte buffer.
            pub fn to_display_hex(&self) -> [u8; 64] {
                let mut out = [0u8; 64];
                // Lengths match by construction.
                let _ = hex::encode_reversed_to_slice(&self.0, &mut out);
                out
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                hex::fmt_hex(f, &self.0, true)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = HexError;
            fn from_str(s: &str) -> Result<Self, HexError> {
                Self::from_display_hex(s.as_bytes())
            }
        }
    };
}

display_order_hash!(
    /// Hash of an 80-byte block header (double SHA-256).
    BlockHash
);
display_order_hash!(
    /// Transaction id: double SHA-256 of the transaction without witness data.
    Txid
);
display_order_hash!(
    /// Witness transaction id (BIP141): double SHA-256 of the whole serialization, witness
    /// included; equal to the txid for a transaction without witness.
    Wtxid
);
display_order_hash!(
    /// Root or inner node of a merkle tree (transactions of a block, or block hashes for
    /// `cp_height` proofs).
    MerkleNode
);
display_order_hash!(
    /// Electrum script hash: single SHA-256 of a scriptPubKey. Shown reversed, like the others.
    ScriptHash
);

/// Electrum address status: SHA-256 of the history string. Unlike the other hashes its hex is
/// the digest **as is**, not reversed (PROTOCOL.md §4.3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Status([u8; 32]);

impl Status {
    /// Wraps a digest.
    pub const fn from_byte_array(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest.
    pub const fn to_byte_array(self) -> [u8; 32] {
        self.0
    }

    /// Parses the hex form sent by servers (not reversed).
    pub fn from_hex(hex: &[u8]) -> Result<Self, HexError> {
        hex::decode_array(hex).map(Self)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex::fmt_hex(f, &self.0, false)
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Status({self})")
    }
}

impl FromStr for Status {
    type Err = HexError;
    fn from_str(s: &str) -> Result<Self, HexError> {
        Self::from_hex(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_hash_display_order() {
        let genesis = crate::hex::decode_array::<80>(b"0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c").unwrap();
        let hash = BlockHash::from_byte_array(sha256d(&genesis));
        let shown = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";
        assert_eq!(format!("{hash}"), shown);
        assert_eq!(shown.parse::<BlockHash>().unwrap(), hash);
        assert_eq!(BlockHash::from_display_hex_const(shown), hash);
        assert_eq!(&hash.to_display_hex()[..], shown.as_bytes());
        assert_eq!(
            hash.as_byte_array()[31],
            0,
            "internal order ends in the zero bytes"
        );
    }

    #[test]
    fn status_hex_is_not_reversed() {
        let s = Status::from_byte_array(*b"hash_to_str\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        assert!(format!("{s}").starts_with("686173685f746f5f737472"));
    }

    #[test]
    fn single_engine_matches_one_shot() {
        let mut e = Sha256Engine::new();
        e.update(b"hello ");
        e.update(b"");
        e.update(b"world");
        assert_eq!(e.finalize(), sha256(b"hello world"));
        assert_eq!(Sha256Engine::default().finalize(), sha256(b""));
    }

    #[test]
    fn engine_matches_one_shot() {
        let mut e = Sha256dEngine::new();
        e.update(b"hello ");
        e.update(b"world");
        assert_eq!(e.finalize(), sha256d(b"hello world"));
    }
}
