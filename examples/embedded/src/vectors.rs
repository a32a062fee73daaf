//! Real mainnet data the firmware checks, kept as the strings an Electrum server would send.
//!
//! Source: `core/tests/data/vectors/merkle_vectors.json` (block 830000), whose proofs were
//! recomputed there from every txid of the block; the header data is
//! `data/mainnet_822528_824543.bin` (see `data/README.md`).

/// Height of the first header in [`PERIOD_HEADERS`]: the first block of difficulty period 408.
pub const PERIOD_START: u32 = 822_528;

/// Number of headers in [`PERIOD_HEADERS`]: one whole difficulty period.
pub const PERIOD_LEN: u32 = 2016;

/// Mainnet headers 822528..=824543, raw and concatenated (2016 * 80 bytes, in flash).
pub static PERIOD_HEADERS: &[u8; 2016 * 80] = include_bytes!("../data/mainnet_822528_824543.bin");

/// Display hash of block 824543, the last header of [`PERIOD_HEADERS`] (computed offline with
/// double SHA-256; it is also mainnet checkpoint 408).
pub const TIP_824543: &str = "00000000000000000001595b16989798f8997d89ac778ccc7d0d6c7e88ab4ec9";

/// Header of block 830000 as `blockchain.block.header` returns it.
pub const HEADER_830000_HEX: &str = "0080ee2578a3104f1a64159e5a953a4a1015795a1e66894bf7c00200000000000000000070adb2fd1ac9b017ea1a2e66457af0514dfbae502efd20473e6e77c2d4cf568a410fc9655dba0317403497a1";

/// Display hash of block 830000.
pub const HASH_830000: &str = "000000000000000000011d55599ed27d7efca05f5849b755319c89eb2cffbc1f";

/// Depth of block 830000's merkle tree (1851 transactions: 11 levels).
pub const DEPTH_830000: u8 = 11;

/// One `blockchain.transaction.get_merkle` answer: txid, position, siblings deepest first.
pub struct Proof {
    /// Display-order txid.
    pub tx_hash: &'static str,
    /// Position of the transaction in its block.
    pub pos: u32,
    /// Display-order sibling hashes, leaf level first.
    pub merkle: [&'static str; DEPTH_830000 as usize],
}

/// A transaction in the middle of block 830000.
pub const PROOF_925: Proof = Proof {
    tx_hash: "b0d99ad71ed48aeb4c04af887b926f3ce9c62131bf5cef43716317e26cb65a8d",
    pos: 925,
    merkle: [
        "b18fe6339773b753bbc6b5cc21a44e4e199ab053e26c5052ec78023f0836a7ab",
        "9a582b5ecf742561147c2995de6dc765ba16681343847ee078ec5def21da0032",
        "2a32b2b9fb1c83c19ff8ff4d8fc3f6b0098ae3d7cb566769901aedb10d34bd73",
        "82450eef3c4fca91b1eb8825d30dd75261805a73db529d2713506243bb1d62dd",
        "91d5ffdb2f6c665bf09d6f4c7dd4490d7c66f4b447b3fc81fa6fa6a82aebb1dc",
        "edfa668f29c0a434783c407a049f06f91d1d231da0c6a5dc8ce62257da53f1db",
        "c9fd2eb3be4dae7ec6b83194d0dcfb95f375102df26549a4f5f2fbbb88b434dc",
        "0e862d9497e37e7661d5400e16c9e3c1764256be0d5530f44cb4f1ac90b0fbed",
        "1caae0c9867027ad64345a5d2083f5690d04d2e1c5bdf93773dbebbdf9b1da08",
        "da67bf4f84417b6f7608366329bffe2f7cac7c5205a49443fa43c039da30bb4a",
        "f75eb77cdad28267ac1d833d22e989ec9e2a157b7d6319214ef6185f02d666bb",
    ],
};

/// The last transaction of block 830000. The block has an odd number of transactions, so this
/// leaf is paired with itself: its first sibling is its own txid, on the right. Moving it to
/// position 1851 puts the duplicate on the left, the CVE-2012-2459 forgery.
pub const PROOF_1850: Proof = Proof {
    tx_hash: "c24d5781d4d048d42ca6c9bef9035cf4d6a49c58e0a8dc091f137ba65efa5f1f",
    pos: 1850,
    merkle: [
        "c24d5781d4d048d42ca6c9bef9035cf4d6a49c58e0a8dc091f137ba65efa5f1f",
        "2dd2ca10d07aa1135c00e96647b233f46b942f9ed2aea751e8c5215c86469996",
        "92bce4187f7092cf0b3da3b14c2ab0265ac1675d9fcd0b7af8643a7f3d3d01f7",
        "8a9bc79d35fa4301f76d9389adf4772f6a380eccdeb9f3671f0aa52bc4328b05",
        "643d9b90fa71d4e82a795a1aa5a601a873ec5697e9c48c4e6d260a7a90870169",
        "c0775bba18080af8b7586c68676acfab0f910c7ccd30e7c0260d0dea3b8dc189",
        "8ae216288e08628456c7f4219f1af127b01b1b4985d211d2c11982d1f6900600",
        "686603fe451cac583d2af48b753fe91f73736b1645454adedd798fd631c82c21",
        "66db72be04b7c01c4a902e206bc58864816635e44fd3053b4ac8df907abebe72",
        "01f25cd11244356dcf7673530ab05203f570c41a56672d6d1e841c3466ddb61a",
        "dbcca526c4dc96394a56efbf3701a4adfaf97cf316beb4880647ad2c4a834ba3",
    ],
};
