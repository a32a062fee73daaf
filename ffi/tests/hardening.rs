//! The C ABI's proof functions refuse what core refuses, by the same rule, on the real vectors
//! (`core/tests/data/vectors/`): mutated txid lists (CVE-2012-2459) in `espv_merkle_root`, the
//! CVE-2017-12842 and CVE-2012-2459 forged branches in `espv_verify_merkle`, forged
//! `cp_height` branches in `espv_verify_header_proof`; and every typed pointer of the pure
//! functions is refused when misaligned, before anything is written.

use std::ffi::CStr;

use electrum_spv_core::accumulator::{HeaderProofError, verify_header_proof};
use electrum_spv_core::merkle::{MerkleError, verify_tx_branch};
use electrum_spv_core::{BlockHash, MerkleNode, Txid};
use electrum_spv_ffi::decode::*;
use electrum_spv_ffi::headers::*;
use electrum_spv_ffi::network::*;
use electrum_spv_ffi::proofs::*;
use electrum_spv_ffi::script::*;
use electrum_spv_ffi::status::*;
use serde_json::Value;

fn name(code: i32) -> &'static str {
    // SAFETY: espv_status_name returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(espv_status_name(code)) }
        .to_str()
        .unwrap()
}

fn vectors(file: &str) -> Value {
    let path = format!(
        "{}/../core/tests/data/vectors/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A hash from its display hex, in internal byte order.
fn hash(display_hex: &str) -> [u8; 32] {
    display_hex.parse::<MerkleNode>().unwrap().to_byte_array()
}

fn hashes(list: &Value) -> Vec<[u8; 32]> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|h| hash(h.as_str().unwrap()))
        .collect()
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// The status the C ABI documents for each of core's merkle errors.
fn merkle_status(e: MerkleError) -> i32 {
    match e {
        MerkleError::TooDeep => ESPV_ERR_MERKLE_TOO_DEEP,
        MerkleError::IndexNotConsumed => ESPV_ERR_MERKLE_INDEX_NOT_CONSUMED,
        MerkleError::InnerNodeIsTransaction { .. } => ESPV_ERR_MERKLE_INNER_NODE_IS_TX,
        MerkleError::LeftSiblingDuplicate { .. } => ESPV_ERR_MERKLE_DUPLICATE_SIBLING,
        MerkleError::DepthMismatch { .. } => ESPV_ERR_MERKLE_DEPTH_MISMATCH,
        MerkleError::RootMismatch => ESPV_ERR_MERKLE_ROOT_MISMATCH,
    }
}

fn proof_status(e: HeaderProofError) -> i32 {
    match e {
        HeaderProofError::HeightAboveCheckpoint { .. } => ESPV_ERR_PROOF_HEIGHT_ABOVE_CP,
        HeaderProofError::BranchLength { .. } => ESPV_ERR_PROOF_BRANCH_LENGTH,
        HeaderProofError::MissingDuplicate { .. } => ESPV_ERR_PROOF_MISSING_DUPLICATE,
        HeaderProofError::UnexpectedDuplicate { .. } => ESPV_ERR_PROOF_UNEXPECTED_DUPLICATE,
        HeaderProofError::RootMismatch => ESPV_ERR_PROOF_ROOT_MISMATCH,
    }
}

/// `espv_verify_merkle`, and core's `verify_tx_branch` on the same input: the ABI's status is
/// exactly core's verdict.
fn verify_both(txid: &[u8; 32], pos: u32, branch: &[[u8; 32]], root: &[u8; 32]) -> i32 {
    let flat = branch.concat();
    // SAFETY: 32 readable bytes at `txid` and `root`, `32 * n` at `flat`.
    let code = unsafe {
        espv_verify_merkle(
            txid.as_ptr(),
            pos,
            flat.as_ptr(),
            branch.len(),
            root.as_ptr(),
        )
    };
    let nodes: Vec<MerkleNode> = branch
        .iter()
        .map(|h| MerkleNode::from_byte_array(*h))
        .collect();
    let core = verify_tx_branch(
        &Txid::from_byte_array(*txid),
        pos,
        &nodes,
        &MerkleNode::from_byte_array(*root),
    );
    assert_eq!(
        code,
        core.map_or_else(merkle_status, |_| ESPV_OK),
        "core says {core:?}, the ABI {}",
        name(code)
    );
    code
}

fn merkle_root(leaves: &[[u8; 32]]) -> (i32, [u8; 32]) {
    let flat = leaves.concat();
    let mut out = [0xeeu8; 32];
    // SAFETY: `32 * n` readable bytes at `flat`, 32 writable at `out`.
    let code = unsafe { espv_merkle_root(flat.as_ptr(), leaves.len(), out.as_mut_ptr()) };
    (code, out)
}

#[test]
fn mutated_txid_lists_are_refused() {
    let mut lists = 0;
    let mut mutated = 0;
    for block in vectors("merkle_vectors.json").as_array().unwrap() {
        let Some(txids) = block.get("txids") else {
            continue;
        };
        let txids = hashes(txids);
        let root = hash(block["merkle_root"].as_str().unwrap());
        assert_eq!(merkle_root(&txids), (ESPV_OK, root));
        lists += 1;
        // The tail repeated as the tree pads it: the same root, a block Core calls mutated.
        let tail = match txids.len() % 4 {
            1 | 3 => 1,
            2 if txids.len() > 2 => 2,
            _ => continue,
        };
        let mut forged = txids.clone();
        forged.extend_from_slice(&txids[txids.len() - tail..]);
        let (code, out) = merkle_root(&forged);
        assert_eq!(name(code), "ESPV_ERR_MERKLE_MUTATED");
        assert_eq!(out, [0xee; 32], "nothing written");
        mutated += 1;
    }
    assert_eq!((lists, mutated), (11, 3));
    // [a, a]: a one-transaction block with its coinbase doubled.
    let a = hash(
        vectors("merkle_vectors.json")[0]["merkle_root"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(name(merkle_root(&[a, a]).0), "ESPV_ERR_MERKLE_MUTATED");
    assert_eq!(merkle_root(&[a]), (ESPV_OK, a));
    assert_eq!(name(merkle_root(&[]).0), "ESPV_NONE");
}

#[test]
fn forged_branches_are_refused_by_cores_rule() {
    let v = vectors("electrum_test_vectors.json");
    let attacks = &v["merkle_attack_vectors"];

    // CVE-2012-2459: the last transaction of testnet3 block 4909055 at its real position and
    // at the position after it, where its duplicate would be a left sibling.
    let dup = &attacks["CVE_2012_2459"];
    let txid = hash(dup["txid"].as_str().unwrap());
    let branch = hashes(&dup["merkle_branch"]);
    let root = hash(dup["merkle_root"].as_str().unwrap());
    let valid = dup["valid_pos"].as_u64().unwrap() as u32;
    let forged = dup["forged_pos"].as_u64().unwrap() as u32;
    assert_eq!(verify_both(&txid, valid, &branch, &root), ESPV_OK);
    assert_eq!(
        name(verify_both(&txid, forged, &branch, &root)),
        "ESPV_ERR_MERKLE_DUPLICATE_SIBLING"
    );

    // CVE-2017-12842: a 64-byte transaction's halves posing as a leaf and its sibling.
    let inner = &attacks["CVE_2017_12842"];
    let tx = unhex(inner["valid_64_byte_tx"].as_str().unwrap());
    let branch = hashes(&inner["merkle_branch"]);
    let root = hash(inner["merkle_root"].as_str().unwrap());
    let pos = inner["leaf_pos"].as_u64().unwrap() as u32;
    let mut txid = [0u8; 32];
    // SAFETY: 64 readable bytes, 32 writable.
    let code = unsafe { espv_txid(tx.as_ptr(), tx.len(), txid.as_mut_ptr()) };
    assert_eq!(code, ESPV_OK);
    assert_eq!(verify_both(&txid, pos, &branch, &root), ESPV_OK);
    let left: [u8; 32] = tx[..32].try_into().unwrap();
    let right: [u8; 32] = tx[32..].try_into().unwrap();
    for (fake_pos, leaf, sibling) in [(2 * pos, left, right), (2 * pos + 1, right, left)] {
        let mut forged = vec![sibling];
        forged.extend_from_slice(&branch);
        assert_eq!(
            name(verify_both(&leaf, fake_pos, &forged, &root)),
            "ESPV_ERR_MERKLE_INNER_NODE_IS_TX"
        );
    }

    // The depth bound and the position rule, on the same branch.
    assert_eq!(
        name(verify_both(&txid, pos + 4, &branch, &root)),
        "ESPV_ERR_MERKLE_INDEX_NOT_CONSUMED"
    );
    let deep = vec![[7u8; 32]; 31];
    assert_eq!(
        name(verify_both(&txid, 0, &deep, &root)),
        "ESPV_ERR_MERKLE_TOO_DEEP"
    );
    // A count whose byte size overflows is refused before the pointer is read.
    // SAFETY: nothing is read: the size check comes first.
    let code = unsafe {
        espv_verify_merkle(
            txid.as_ptr(),
            0,
            branch[0].as_ptr(),
            usize::MAX / 16,
            root.as_ptr(),
        )
    };
    assert_eq!(name(code), "ESPV_ERR_INVALID_ARGUMENT");
}

#[test]
fn forged_header_proofs_are_refused_by_cores_rule() {
    // PROTOCOL.md §6.4: mainnet header 5 proven against cp_height 8.
    let header_hash = hash("000000009b7262315dbf071787ad3656097b892abffd1f95a1a022f896f533fc");
    let branch = [
        hash("000000004ebadb55ee9096c9a2f8880e09da59c0d68b1c228da88e48844a1485"),
        hash("96cbbc84783888e4cc971ae8acf86dd3c1a419370336bb3c634c97695a8c5ac9"),
        hash("965ac94082cebbcffe458075651e9cc33ce703ab0115c72d9e8b1a9906b2b636"),
        hash("89e5daa6950b895190716dd26054432b564ccdc2868188ba1da76de8e1dc7591"),
    ];
    let root = hash("e347b1c43fd9b5415bf0d92708db8284b78daf4d0e24f9c3405f45feb85e25db");
    let check = |leaf: &[u8; 32], height: u32, cp: u32, branch: &[[u8; 32]]| -> i32 {
        let flat = branch.concat();
        // SAFETY: 32 readable bytes at `leaf` and `root`, `32 * n` at `flat`.
        let code = unsafe {
            espv_verify_header_proof(
                leaf.as_ptr(),
                height,
                cp,
                flat.as_ptr(),
                branch.len(),
                root.as_ptr(),
            )
        };
        let nodes = branch.iter().map(|h| MerkleNode::from_byte_array(*h));
        let core = verify_header_proof(
            &BlockHash::from_byte_array(*leaf),
            height,
            cp,
            nodes,
            &MerkleNode::from_byte_array(root),
        );
        assert_eq!(code, core.map_or_else(proof_status, |()| ESPV_OK));
        code
    };
    assert_eq!(check(&header_hash, 5, 8, &branch), ESPV_OK);
    // Block 4 (branch[0]) at height 5 would pair with a copy of itself.
    assert_eq!(
        name(check(&branch[0], 5, 8, &branch)),
        "ESPV_ERR_PROOF_UNEXPECTED_DUPLICATE"
    );
    // Height 8 is the last of an odd level: its sibling must be itself.
    assert_eq!(
        name(check(&header_hash, 8, 8, &branch)),
        "ESPV_ERR_PROOF_MISSING_DUPLICATE"
    );
    assert_eq!(
        name(check(&header_hash, 5, 8, &branch[..3])),
        "ESPV_ERR_PROOF_BRANCH_LENGTH"
    );
    assert_eq!(
        name(check(&header_hash, 5, 16, &branch)),
        "ESPV_ERR_PROOF_BRANCH_LENGTH"
    );
    assert_eq!(
        name(check(&header_hash, 9, 8, &branch)),
        "ESPV_ERR_PROOF_HEIGHT_ABOVE_CP"
    );
}

/// Memory with room for a `T` one byte past an 8-aligned address.
#[repr(C, align(8))]
struct Room([u8; 512]);

impl Room {
    fn new() -> Box<Room> {
        Box::new(Room([0x5a; 512]))
    }

    /// A pointer one byte into the room: misaligned for every type wider than a byte.
    fn odd<T>(&mut self) -> *mut T {
        assert!(size_of::<T>() < 511);
        self.0[1..].as_mut_ptr().cast()
    }

    fn untouched(&self) -> bool {
        self.0.iter().all(|b| *b == 0x5a)
    }
}

#[test]
fn misaligned_out_pointers_of_the_pure_functions_are_refused() {
    let headers_path = format!(
        "{}/../core/tests/data/mainnet/headers_822528_830592.bin",
        env!("CARGO_MANIFEST_DIR")
    );
    let headers = std::fs::read(headers_path).unwrap();
    let mut room = Room::new();
    let mut ok_u32 = 0u32;
    let mut tip = std::mem::MaybeUninit::<EspvTip>::uninit();
    // SAFETY: every pointer points at memory of its size (misaligned ones into `room`); the
    // functions refuse the misaligned ones before touching them, which `untouched` checks.
    unsafe {
        let code = espv_verify_headers(
            ESPV_NETWORK_MAINNET,
            822_528,
            headers.as_ptr(),
            10,
            room.odd(),
            &mut ok_u32,
        );
        assert_eq!(name(code), "ESPV_ERR_MISALIGNED");
        let code = espv_verify_headers(
            ESPV_NETWORK_MAINNET,
            822_528,
            headers.as_ptr(),
            10,
            tip.as_mut_ptr(),
            room.odd(),
        );
        assert_eq!(name(code), "ESPV_ERR_MISALIGNED");

        let mut v = EspvVerifier {
            opaque: [0; ESPV_VERIFIER_WORDS],
        };
        assert_eq!(
            espv_verifier_init(&mut v, ESPV_NETWORK_MAINNET, 822_528),
            ESPV_OK
        );
        let code = espv_verifier_tip(&mut v, room.odd(), std::ptr::null_mut());
        assert_eq!(name(code), "ESPV_ERR_MISALIGNED");
        let code = espv_verifier_tip(&mut v, std::ptr::null_mut(), room.odd());
        assert_eq!(name(code), "ESPV_ERR_MISALIGNED");

        // Decoders: every typed out pointer is checked before the result is read.
        let merkle = br#"{"block_height":450538,"merkle":["713d6c7e6ce7bbea708d61162231eaa8ecb31c4c5dd84f81c20409a90069cb24"],"pos":710}"#;
        let mut branch = [0u8; 32];
        let (mut h, mut pos, mut n) = (0u32, 0u32, 0usize);
        for (bh, p, nn) in [
            (room.odd(), &mut pos as *mut u32, &mut n as *mut usize),
            (&mut h as *mut u32, room.odd(), &mut n as *mut usize),
            (&mut h as *mut u32, &mut pos as *mut u32, room.odd()),
        ] {
            let code = espv_decode_merkle(
                merkle.as_ptr(),
                merkle.len(),
                bh,
                p,
                branch.as_mut_ptr(),
                1,
                nn,
            );
            assert_eq!(name(code), "ESPV_ERR_MISALIGNED");
        }
        assert_eq!((h, pos, n, branch), (0, 0, 0, [0; 32]));

        let history = br#"[{"tx_hash":"a6c9c361bd0bc536d6a22648efbf8f9b200e425ef6c3a7a9669dc444c532a347","height":2472}]"#;
        let mut items = [EspvHistoryItem::default(); 1];
        let code = espv_decode_history(history.as_ptr(), history.len(), room.odd(), 1, &mut n);
        assert_eq!(name(code), "ESPV_ERR_MISALIGNED");
        let code = espv_decode_history(
            history.as_ptr(),
            history.len(),
            items.as_mut_ptr(),
            1,
            room.odd(),
        );
        assert_eq!(name(code), "ESPV_ERR_MISALIGNED");
        assert_eq!(items[0], EspvHistoryItem::default());

        let mut out = [0u8; 80];
        let code = espv_decode_block_headers(b"{}".as_ptr(), 2, out.as_mut_ptr(), 1, room.odd());
        assert_eq!(name(code), "ESPV_ERR_MISALIGNED");
        let sub = format!(
            "{{\"hex\":\"{}\",\"height\":822528}}",
            headers[..80]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let code =
            espv_decode_headers_subscribe(sub.as_ptr(), sub.len(), room.odd(), out.as_mut_ptr());
        assert_eq!(name(code), "ESPV_ERR_MISALIGNED");
        assert_eq!(out, [0; 80], "the header is not written either");
        let code = espv_decode_transaction(b"\"00\"".as_ptr(), 4, out.as_mut_ptr(), 80, room.odd());
        assert_eq!(name(code), "ESPV_ERR_MISALIGNED");
        let code = espv_decode_fee_rate(b"0.0001".as_ptr(), 6, room.odd());
        assert_eq!(name(code), "ESPV_ERR_MISALIGNED");

        // A typed input array, too.
        let code = espv_status_hash(room.odd::<EspvHistoryItem>(), 1, out.as_mut_ptr());
        assert_eq!(name(code), "ESPV_ERR_MISALIGNED");
    }
    assert!(room.untouched());
}
