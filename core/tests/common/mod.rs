//! Helpers shared by the integration tests: loading the bundled real chain data.

#![allow(dead_code)]

use std::path::PathBuf;

/// Path of a file under `core/tests/data`.
pub fn data_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// Reads a bundled data file; fails the test with the path if it is missing.
pub fn read(rel: &str) -> Vec<u8> {
    let p = data_path(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Reads a bundled JSON file.
pub fn json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&read(rel)).expect("valid json")
}

/// Splits raw concatenated headers into 80-byte arrays.
pub fn headers(rel: &str) -> Vec<[u8; 80]> {
    let raw = read(rel);
    assert_eq!(raw.len() % 80, 0, "{rel} is not a whole number of headers");
    raw.chunks_exact(80)
        .map(|c| c.try_into().unwrap())
        .collect()
}

/// Decodes hex with the crate's own decoder.
pub fn unhex(s: &str) -> Vec<u8> {
    let mut out = vec![0u8; s.len() / 2];
    electrum_spv_core::hex::decode_to_slice(s.as_bytes(), &mut out).expect("valid hex");
    out
}

/// Reads a compact size from the front of `bytes` (test data is trusted).
pub fn read_varint(bytes: &[u8]) -> (u64, usize) {
    match bytes[0] {
        0xfd => (u64::from(u16::from_le_bytes([bytes[1], bytes[2]])), 3),
        0xfe => (
            u64::from(u32::from_le_bytes(bytes[1..5].try_into().unwrap())),
            5,
        ),
        0xff => (u64::from_le_bytes(bytes[1..9].try_into().unwrap()), 9),
        n => (u64::from(n), 1),
    }
}
