//! Conversions between core's types and rust-bitcoin 0.32's (feature `bitcoin`).
//!
//! Both keep hashes as 32 bytes in internal order and headers as their six fields, so every
//! conversion is a move of the same bytes: nothing is hashed, parsed or allocated. rust-bitcoin
//! itself needs `alloc`; core without this feature stays heap-free.

use bitcoin::hashes::Hash as _;

use crate::chain::Network;
use crate::hash::{BlockHash, MerkleNode, Txid, Wtxid};
use crate::header::{CompactTarget, Header};

macro_rules! same_bytes {
    ($ours:ty, $theirs:ty) => {
        impl From<$ours> for $theirs {
            #[inline]
            fn from(h: $ours) -> Self {
                <$theirs>::from_byte_array(h.to_byte_array())
            }
        }

        impl From<$theirs> for $ours {
            #[inline]
            fn from(h: $theirs) -> Self {
                <$ours>::from_byte_array(h.to_byte_array())
            }
        }
    };
}

same_bytes!(Txid, bitcoin::Txid);
same_bytes!(Wtxid, bitcoin::Wtxid);
same_bytes!(BlockHash, bitcoin::BlockHash);
same_bytes!(MerkleNode, bitcoin::TxMerkleNode);

impl From<CompactTarget> for bitcoin::CompactTarget {
    #[inline]
    fn from(bits: CompactTarget) -> Self {
        bitcoin::CompactTarget::from_consensus(bits.0)
    }
}

impl From<bitcoin::CompactTarget> for CompactTarget {
    #[inline]
    fn from(bits: bitcoin::CompactTarget) -> Self {
        CompactTarget(bits.to_consensus())
    }
}

impl From<Header> for bitcoin::block::Header {
    #[inline]
    fn from(h: Header) -> Self {
        bitcoin::block::Header {
            version: bitcoin::block::Version::from_consensus(h.version),
            prev_blockhash: h.prev_blockhash.into(),
            merkle_root: h.merkle_root.into(),
            time: h.time,
            bits: h.bits.into(),
            nonce: h.nonce,
        }
    }
}

impl From<bitcoin::block::Header> for Header {
    #[inline]
    fn from(h: bitcoin::block::Header) -> Self {
        Header {
            version: h.version.to_consensus(),
            prev_blockhash: h.prev_blockhash.into(),
            merkle_root: h.merkle_root.into(),
            time: h.time,
            bits: h.bits.into(),
            nonce: h.nonce,
        }
    }
}

impl From<Network> for bitcoin::Network {
    #[inline]
    fn from(n: Network) -> Self {
        match n {
            Network::Mainnet => bitcoin::Network::Bitcoin,
            Network::Testnet3 => bitcoin::Network::Testnet,
            Network::Testnet4 => bitcoin::Network::Testnet4,
            Network::Signet => bitcoin::Network::Signet,
            Network::Regtest => bitcoin::Network::Regtest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mainnet block 1's header.
    const BLOCK_1: &str = "010000006fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000982051fd1e4ba744bbbe680e1fee14677ba1a3c3540bf7b1cdb606e857233e0e61bc6649ffff001d01e36299";

    fn block_1() -> [u8; 80] {
        let mut raw = [0u8; 80];
        crate::hex::decode_to_slice(BLOCK_1.as_bytes(), &mut raw).unwrap();
        raw
    }

    #[test]
    fn headers_and_their_hashes_convert_both_ways_unchanged() {
        let ours = Header::from_bytes(&block_1());
        let theirs: bitcoin::block::Header = bitcoin::consensus::deserialize(&block_1()).unwrap();
        assert_eq!(bitcoin::block::Header::from(ours), theirs);
        assert_eq!(Header::from(theirs), ours);
        assert_eq!(
            bitcoin::BlockHash::from(ours.block_hash()),
            theirs.block_hash()
        );
        assert_eq!(BlockHash::from(theirs.block_hash()), ours.block_hash());
        assert_eq!(
            ours.block_hash().to_string(),
            "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048"
        );
        let merkle: bitcoin::TxMerkleNode = ours.merkle_root.into();
        assert_eq!(merkle, theirs.merkle_root);
        // Block 1's only transaction is its coinbase: the merkle root is its txid.
        let txid = Txid::from_byte_array(ours.merkle_root.to_byte_array());
        assert_eq!(
            bitcoin::Txid::from(txid).to_string(),
            "0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098"
        );
        assert_eq!(Txid::from(bitcoin::Txid::from(txid)), txid);
        let w = Wtxid::from_byte_array([7; 32]);
        assert_eq!(Wtxid::from(bitcoin::Wtxid::from(w)), w);
    }

    #[test]
    fn networks_have_the_same_genesis_in_both() {
        for n in Network::ALL {
            let theirs = bitcoin::blockdata::constants::genesis_block(bitcoin::Network::from(n));
            assert_eq!(
                bitcoin::BlockHash::from(n.params().genesis_hash),
                theirs.block_hash(),
                "{n:?}"
            );
        }
    }
}
