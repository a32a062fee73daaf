//! Electrum's own test vectors for compact targets and a single header check.

mod common;

use common::json;
use electrum_spv_core::chain::{Anchor, HeaderVerifier, MAINNET};
use electrum_spv_core::header::{CompactTarget, Header, Target};
use electrum_spv_core::u256::U256;
use electrum_spv_core::{BlockHash, hex};

fn hex_u32(s: &str) -> u32 {
    u32::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex u32")
}

fn hex_u256(s: &str) -> U256 {
    U256::from_be_bytes(hex::decode_array(s.trim_start_matches("0x").as_bytes()).expect("32 bytes"))
}

#[test]
fn compact_bits_vectors_decode_and_round_trip_like_bitcoin_core() {
    let v = json("vectors/electrum_test_vectors.json");
    let vectors = v["compact_bits_vectors"].as_array().expect("vectors");
    assert!(vectors.len() >= 15);
    for case in vectors {
        let bits = CompactTarget(hex_u32(case["nbits"].as_str().unwrap()));
        let target = hex_u256(case["target"].as_str().unwrap());
        let round_trip = CompactTarget(hex_u32(case["nbits_roundtrip"].as_str().unwrap()));
        let decoded = bits.decode();
        assert_eq!(decoded.value, target, "decode {bits}");
        assert!(!decoded.overflow, "{bits}");
        assert_eq!(
            Target(decoded.value).to_compact(),
            round_trip,
            "encode {bits}"
        );
        // Zero targets are never usable for proof of work.
        if target.is_zero() {
            assert!(bits.to_target().is_err(), "{bits}");
        }
    }
}

#[test]
fn mainnet_header_100_links_to_its_parent_and_meets_its_target() {
    let v = json("vectors/electrum_test_vectors.json");
    let case = &v["verify_header_mainnet_100"];
    let header = Header::from_hex(case["header"].as_str().unwrap().as_bytes()).unwrap();
    let parent: BlockHash = case["prev_hash"].as_str().unwrap().parse().unwrap();
    assert_eq!(header.prev_blockhash, parent);
    assert_eq!(
        header.bits,
        CompactTarget(hex_u32(case["bits"].as_str().unwrap()))
    );
    assert!(
        header
            .bits
            .to_target()
            .unwrap()
            .is_met_by(&header.block_hash())
    );
    // And through the verifier: the first 101 real headers end in exactly this one.
    let headers = common::headers("mainnet/headers_0_10236.bin");
    let mut v = HeaderVerifier::new(&MAINNET, Anchor::genesis(&MAINNET));
    for h in &headers[..=100] {
        v.push(h).unwrap();
    }
    assert_eq!(v.tip().unwrap().hash, header.block_hash());
}
