//! The regtest exchange both firmwares replay, as recorded from ElectrumX
//! (`data/electrumx_1_6.json`): the heights, hashes and roots they check it against.

use electrum_spv_core::{BlockHash, MerkleNode, Txid};

/// The transaction whose raw bytes and merkle proof are fetched (confirmed at height 111).
pub const TXID: Txid = Txid::from_display_hex_const(
    "1f591459419b5b3134ec5f557888c468532b146e747030fd40e42c2600ede262",
);
/// Height of [`TXID`]'s block.
pub const TX_HEIGHT: u32 = 111;
/// First height of the verified header chunk.
pub const CHUNK_START: u32 = 100;
/// Headers in the chunk (100..=113).
pub const CHUNK_LEN: u32 = 14;
/// Hash of block 113.
pub const TIP_113: BlockHash = BlockHash::from_display_hex_const(
    "626793d85c0aec8f689866eb32cf5a048c49272f172036ae425055ab37a80be1",
);
/// Merkle root of the block hashes 0..=113: the trusted `cp_height` root. Pinned from the
/// recording, as a device ships checkpoint roots with its firmware; a root sent by the
/// server proves nothing.
pub const CP_ROOT_113: MerkleNode = MerkleNode::from_display_hex_const(
    "2c5628ecd01643385303c2e101838f2fe16c087e6c2007d60eb141b7744d5606",
);
