//! Proof verification against real chain data: transaction merkle branches, the two classic
//! merkle forgeries, `cp_height` header proofs, script hashes, and txids recomputed from raw
//! blocks reproducing their headers' merkle roots.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::read_varint;
use electrum_spv_core::accumulator::{
    HeaderProofError, HeaderProofFolder, MerkleAccumulator, header_branch_len, verify_header_proof,
};
use electrum_spv_core::hash::{sha256d, sha256d_pair};
use electrum_spv_core::merkle::{
    BranchFolder, MerkleError, MerkleRootError, TreeDepth, merkle_root, nodes_from_bytes,
    verify_coinbase_branch, verify_tx_branch, verify_tx_branch_pinned,
};
use electrum_spv_core::script::script_hash;
use electrum_spv_core::tx::{TxidHasher, txid};
use electrum_spv_core::{BlockHash, Header, MerkleNode, Txid, hex};
use serde_json::Value;

fn data_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(data_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn json(rel: &str) -> Value {
    serde_json::from_slice(&read(rel)).unwrap()
}

fn node(display_hex: &str) -> MerkleNode {
    display_hex.parse().unwrap()
}

fn nodes(array: &Value) -> Vec<MerkleNode> {
    array
        .as_array()
        .unwrap()
        .iter()
        .map(|v| node(v.as_str().unwrap()))
        .collect()
}

fn hex_bytes(s: &str) -> Vec<u8> {
    let mut out = vec![0u8; s.len() / 2];
    hex::decode_to_slice(s.as_bytes(), &mut out).unwrap();
    out
}

fn flip(mut bytes: [u8; 32], bit: usize) -> [u8; 32] {
    bytes[bit / 8] ^= 1 << (bit % 8);
    bytes
}

fn flip_bit(n: &MerkleNode, bit: usize) -> MerkleNode {
    MerkleNode::from_byte_array(flip(n.to_byte_array(), bit))
}

/// Txids of the transactions serialized back to back in `txs`, fed in pieces of `chunk` bytes
/// so that pieces straddle transaction boundaries. Also returns how many used segwit.
fn stream_txids(txs: &[u8], chunk: usize) -> (Vec<Txid>, usize) {
    let mut txids = Vec::new();
    let mut segwit = 0;
    let mut hasher = TxidHasher::new();
    for piece in txs.chunks(chunk) {
        let mut rest = piece;
        while !rest.is_empty() {
            let used = hasher.feed(rest).unwrap();
            rest = &rest[used..];
            if hasher.is_complete() {
                segwit += usize::from(hasher.has_witness());
                let done = std::mem::take(&mut hasher);
                txids.push(done.finish().unwrap());
            }
        }
    }
    assert_eq!(
        hasher.bytes_consumed(),
        0,
        "block ends inside a transaction"
    );
    (txids, segwit)
}

struct ParsedBlock {
    header: Header,
    txids: Vec<Txid>,
    segwit: usize,
}

fn parse_block(block: &[u8]) -> ParsedBlock {
    let header = Header::from_slice(&block[..80]).unwrap();
    let (count, len) = read_varint(&block[80..]);
    let txs = &block[80 + len..];
    let (txids, segwit) = stream_txids(txs, txs.len());
    assert_eq!(txids.len() as u64, count);
    // The same transactions in awkward pieces give the same txids.
    assert_eq!(stream_txids(txs, 997).0, txids);
    ParsedBlock {
        header,
        txids,
        segwit,
    }
}

fn merkle_root_of(txids: &[Txid]) -> (MerkleNode, bool) {
    let mut acc = MerkleAccumulator::new();
    for t in txids {
        acc.push_txid(t).unwrap();
    }
    (acc.root().unwrap(), acc.is_mutated())
}

#[test]
fn merkle_vectors_verify_against_header_roots() {
    let blocks = json("vectors/merkle_vectors.json");
    let mut verified = 0;
    let mut mutated_lists = 0;
    for block in blocks.as_array().unwrap() {
        let header = Header::from_hex(block["header_hex"].as_str().unwrap().as_bytes()).unwrap();
        let root = header.merkle_root;
        assert_eq!(root.to_string(), block["merkle_root"].as_str().unwrap());
        assert_eq!(
            header.block_hash().to_string(),
            block["hash"].as_str().unwrap()
        );
        let proofs = block["proofs"].as_array().unwrap();

        // The coinbase branch pins the depth of every other branch of the block.
        let depth = proofs.iter().find(|p| p["pos"] == 0).map(|p| {
            let coinbase: Txid = p["tx_hash"].as_str().unwrap().parse().unwrap();
            verify_coinbase_branch(&coinbase, nodes(&p["merkle"]), &root).unwrap()
        });
        let n_tx = block["n_tx"].as_u64().unwrap();
        if let Some(depth) = depth {
            // ceil(log2(n_tx)), with at least one level only when there are two leaves.
            let levels = u64::BITS - (n_tx - 1).leading_zeros();
            assert_eq!(u32::from(depth.get()), levels, "block {}", block["height"]);
        }

        for proof in proofs {
            let txid: Txid = proof["tx_hash"].as_str().unwrap().parse().unwrap();
            let pos = proof["pos"].as_u64().unwrap() as u32;
            let branch = nodes(&proof["merkle"]);
            let got = verify_tx_branch(&txid, pos, &branch, &root).unwrap();
            assert_eq!(usize::from(got.get()), branch.len());
            if let Some(depth) = depth {
                assert_eq!(
                    verify_tx_branch_pinned(&txid, pos, &branch, &root, depth),
                    Ok(depth)
                );
                let mut folder = BranchFolder::with_expected_depth(txid, pos, depth);
                for sibling in &branch {
                    folder.push(sibling).unwrap();
                }
                assert_eq!(folder.finish(&root), Ok(depth));
            }

            // Corrupted variants.
            for (i, sibling) in branch.iter().enumerate() {
                let mut bad = branch.clone();
                bad[i] = flip_bit(sibling, 7 * i + 3);
                assert_eq!(
                    verify_tx_branch(&txid, pos, &bad, &root),
                    Err(MerkleError::RootMismatch)
                );
            }
            let bad_txid = Txid::from_byte_array(flip(txid.to_byte_array(), 0));
            assert_eq!(
                verify_tx_branch(&bad_txid, pos, &branch, &root),
                Err(MerkleError::RootMismatch)
            );
            assert!(verify_tx_branch(&txid, pos ^ 1, &branch, &root).is_err());
            let beyond = pos + (1 << branch.len());
            assert_eq!(
                verify_tx_branch(&txid, beyond, &branch, &root),
                Err(MerkleError::IndexNotConsumed)
            );
            assert_eq!(
                verify_tx_branch(&txid, pos, &branch, &flip_bit(&root, 255)),
                Err(MerkleError::RootMismatch)
            );
            if let Some(depth) = depth {
                let short = &branch[..branch.len() - 1];
                assert_eq!(
                    verify_tx_branch_pinned(&txid, pos, short, &root, depth),
                    Err(MerkleError::DepthMismatch {
                        expected: depth.get(),
                        got: depth.get() - 1
                    })
                );
                let mut long = branch.clone();
                long.push(root);
                assert_eq!(
                    verify_tx_branch_pinned(&txid, pos, &long, &root, depth),
                    Err(MerkleError::DepthMismatch {
                        expected: depth.get(),
                        got: depth.get() + 1
                    })
                );
            }
            verified += 1;
        }

        // Small blocks list every txid: their merkle root is the header's.
        if let Some(all) = block.get("txids") {
            let txids: Vec<Txid> = all
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().parse().unwrap())
                .collect();
            assert_eq!(txids.len() as u64, n_tx);
            assert_eq!(merkle_root_of(&txids), (root, false));
            let leaves: Vec<[u8; 32]> = txids.iter().map(|t| t.to_byte_array()).collect();
            assert_eq!(merkle_root(&leaves), Ok(root));
            // CVE-2012-2459: the tail repeated as the tree pads it (the last txid of an odd
            // list, the last two of a list of 2 mod 4) keeps the root and is refused.
            let tail = match leaves.len() % 4 {
                1 | 3 => 1,
                2 if leaves.len() > 2 => 2,
                _ => continue,
            };
            let mut mutated = leaves.clone();
            mutated.extend_from_slice(&leaves[leaves.len() - tail..]);
            assert_eq!(merkle_root_of_leaves(&mutated), (root, true));
            assert_eq!(merkle_root(&mutated), Err(MerkleRootError::Mutated));
            mutated_lists += 1;
        }
    }
    assert!(verified >= 100, "only {verified} proofs checked");
    // testnet 924634 (15 txs), signet 31500 (3), mainnet 169482 (14).
    assert_eq!(mutated_lists, 3);
}

fn merkle_root_of_leaves(leaves: &[[u8; 32]]) -> (MerkleNode, bool) {
    let mut acc = MerkleAccumulator::new();
    for l in leaves {
        acc.push(*l).unwrap();
    }
    (acc.root().unwrap(), acc.is_mutated())
}

#[test]
fn cve_2017_12842_inner_node_posing_as_transaction_is_rejected() {
    let vectors = json("vectors/electrum_test_vectors.json");
    let v = &vectors["merkle_attack_vectors"]["CVE_2017_12842"];
    let root = node(v["merkle_root"].as_str().unwrap());
    let branch = nodes(&v["merkle_branch"]);
    let tx = hex_bytes(v["valid_64_byte_tx"].as_str().unwrap());
    assert_eq!(tx.len(), 64);
    let tx_id = txid(&tx).unwrap();
    let pos = v["leaf_pos"].as_u64().unwrap() as u32;

    // The 64-byte transaction itself is a legitimate leaf.
    assert_eq!(
        verify_tx_branch(&tx_id, pos, &branch, &root),
        Ok(TreeDepth::new(2).unwrap())
    );

    // Its halves, presented as a leaf and its sibling one level deeper.
    let left = <[u8; 32]>::try_from(&tx[..32]).unwrap();
    let right = <[u8; 32]>::try_from(&tx[32..]).unwrap();
    for (fake_pos, leaf, sibling) in [(2 * pos, left, right), (2 * pos + 1, right, left)] {
        let mut forged = vec![MerkleNode::from_byte_array(sibling)];
        forged.extend_from_slice(&branch);
        // Plain folding accepts the forgery: the attack is real.
        let (mut h, mut idx) = (leaf, fake_pos);
        for s in &forged {
            let s = s.to_byte_array();
            h = if idx & 1 == 1 {
                sha256d_pair(&s, &h)
            } else {
                sha256d_pair(&h, &s)
            };
            idx >>= 1;
        }
        assert_eq!((h, idx), (root.to_byte_array(), 0));
        assert_eq!(
            verify_tx_branch(&Txid::from_byte_array(leaf), fake_pos, &forged, &root),
            Err(MerkleError::InnerNodeIsTransaction { level: 0 })
        );
        // The same branch as bytes (as the C ABI holds it): the same rule refuses it.
        let bytes: Vec<u8> = forged.iter().flat_map(|n| n.to_byte_array()).collect();
        assert_eq!(
            verify_tx_branch(
                &Txid::from_byte_array(leaf),
                fake_pos,
                nodes_from_bytes(&bytes).unwrap(),
                &root
            ),
            Err(MerkleError::InnerNodeIsTransaction { level: 0 })
        );
        // Depth pinning alone also stops it.
        assert_eq!(
            verify_tx_branch_pinned(
                &Txid::from_byte_array(leaf),
                fake_pos,
                &forged,
                &root,
                TreeDepth::new(branch.len()).unwrap()
            ),
            Err(MerkleError::DepthMismatch {
                expected: 2,
                got: 3
            })
        );
    }
}

#[test]
fn cve_2012_2459_duplicated_sibling_is_rejected() {
    let vectors = json("vectors/electrum_test_vectors.json");
    let v = &vectors["merkle_attack_vectors"]["CVE_2012_2459"];
    let root = node(v["merkle_root"].as_str().unwrap());
    let branch = nodes(&v["merkle_branch"]);
    let tx: Txid = v["txid"].as_str().unwrap().parse().unwrap();
    let valid = v["valid_pos"].as_u64().unwrap() as u32;
    let forged = v["forged_pos"].as_u64().unwrap() as u32;
    assert_eq!(
        verify_tx_branch(&tx, valid, &branch, &root),
        Ok(TreeDepth::new(2).unwrap())
    );
    assert_eq!(
        verify_tx_branch(&tx, forged, &branch, &root),
        Err(MerkleError::LeftSiblingDuplicate { level: 0 })
    );
    let bytes: Vec<u8> = branch.iter().flat_map(|n| n.to_byte_array()).collect();
    assert_eq!(
        verify_tx_branch(&tx, forged, nodes_from_bytes(&bytes).unwrap(), &root),
        Err(MerkleError::LeftSiblingDuplicate { level: 0 })
    );
    let mut folder = BranchFolder::new(tx, forged);
    assert_eq!(
        folder.push(&branch[0]),
        Err(MerkleError::LeftSiblingDuplicate { level: 0 })
    );
    assert_eq!(
        folder.finish(&root),
        Err(MerkleError::LeftSiblingDuplicate { level: 0 })
    );
}

#[test]
fn protocol_section_6_3_transaction_proofs() {
    let cases = [
        (
            "020000009c669e13386f6a1f1a46264af97807cdef3c23ddf17d111600000000000000004104f1684937df4b453621e09b426f81aac5e4dd313dfc0fa0bc9e0b8df913f5da818a54747b1b187ad5f78d",
            "00000000000000001203c1ea455e38612bdf36e9967fdead11935c8e22283ecc",
            "f513f98d0b9ebca00ffc3d31dde4c5aa816f429be02136454bdf374968f10441",
            157,
            "d81054afb031966c295d0c8d9e86430245fbd19cc32e1aa9e8ee1efbc318fac8",
            &[
                "5d8cfb001d9ec17861ad9c158244239cb6e3298a619b2a5f7b176ddd54459c75",
                "06811172e13312f2e496259d2c8a7262f1192be5223fcf4d6a9ed7f58a2175ba",
                "cbcec841dea3294706809d1510c72b4424d141fac89106af65b70399b1d79f3f",
                "a24d6c3601a54d40f4350e6c8887bf82a873fe8619f95c772b573ec0373119d3",
                "2015c1bb133ee2c972e55fdcd205a9aee7b0122fd74c2f5d5d27b24a562c7790",
                "f379496fef2e603c4e1c03e2179ebaf5153d6463b8d61aa16d41db3321a18165",
                "7a798d6529663fd472d26cc90c434b64f78955747ac2f93c8dcd35b8f684946e",
                "ad3811062b8db664f2342cbff1b491865310b74416dd7b901f14d980886821f8",
            ][..],
        ),
        (
            "0000002062fb852ae4d886c97eaea41373bcf03fdf223a0453e5ed0300000000000000007939717748846d76399cff7105bd31aa51e3a422c5e6f2807620db515d4393791f611c58d25504189eaf9d8d",
            "000000000000000002d249a3d89f63ef3fee203adcca7c24008c13fd854513f2",
            "7993435d51db207680f2e6c522a4e351aa31bd0571ff9c39766d844877713979",
            6,
            "2933da99940403cfba6ebf8f7cde1b9f056f71a9c6a60020a7247043cb78bb32",
            &[
                "d29769df672657689fd6d293b416ee9211c77fbe243ab7820813f327b0e8dd47",
                "d71f0947b47cab0f64948acfe52d41c293f492fe9627690c330d4004f2852ce4",
                "5f36c4330c727d7c8d98cc906cb286f13a61b5b4cab2124c5d041897834b42d8",
                "e77d181f83355ed38d0e6305fdb87c9637373fd90d1dfb911262ac55d260181e",
                "a8f83ca44dc486d9d45c4cff9567839c254bda96e6960d310a5e471c70c6a95b",
                "e9a5ff7f74cb060b451ed2cd27de038efff4df911f4e0f99e2661b46ebcc7e1c",
                "6b0144095e3f0e0d0551cbaa6c5dfc89387024f836528281b6d290e356e196cf",
                "bb0761b0636ffd387e0ce322289a3579e926b6813e090130a88228bd80cff982",
                "ac327124304cccf6739da308a25bb365a6b63e9344bad2be139b0b02c042567c",
                "42e11f2d67050cd31295f85507ebc7706fc4c1fddf1e5a45b98ae3f7c63d2592",
                "52657042fcfc88067524bf6c5f9a66414c7de4f4fcabcb65bca56fa84cf309b4",
            ][..],
        ),
    ];
    for (header_hex, hash, root_hex, pos, tx_hex, branch_hex) in cases {
        let header = Header::from_hex(header_hex.as_bytes()).unwrap();
        assert_eq!(header.block_hash().to_string(), hash);
        assert_eq!(header.merkle_root.to_string(), root_hex);
        let branch: Vec<MerkleNode> = branch_hex.iter().map(|h| node(h)).collect();
        let tx: Txid = tx_hex.parse().unwrap();
        assert_eq!(
            verify_tx_branch(&tx, pos, &branch, &header.merkle_root),
            Ok(TreeDepth::new(branch.len()).unwrap())
        );
        assert_eq!(
            verify_tx_branch(&tx, pos + 1, &branch, &header.merkle_root),
            Err(MerkleError::RootMismatch)
        );
    }
}

/// Block hashes of `mainnet/headers_0_10236.bin`, height = index.
fn mainnet_block_hashes() -> Vec<BlockHash> {
    let headers = read("mainnet/headers_0_10236.bin");
    assert_eq!(headers.len(), 80 * 10_237);
    headers
        .chunks(80)
        .map(|h| Header::from_slice(h).unwrap().block_hash())
        .collect()
}

const CP8_ROOT: &str = "e347b1c43fd9b5415bf0d92708db8284b78daf4d0e24f9c3405f45feb85e25db";

#[test]
fn protocol_section_6_4_cp_height_proof() {
    let header = Header::from_hex(b"0100000085144a84488ea88d221c8bd6c059da090e88f8a2c99690ee55dbba4e00000000e11c48fecdd9e72510ca84f023370c9a38bf91ac5cae88019bee94d24528526344c36649ffff001d1d03e477").unwrap();
    let hash = header.block_hash();
    assert_eq!(
        hash.to_string(),
        "000000009b7262315dbf071787ad3656097b892abffd1f95a1a022f896f533fc"
    );
    let branch: Vec<MerkleNode> = [
        "000000004ebadb55ee9096c9a2f8880e09da59c0d68b1c228da88e48844a1485",
        "96cbbc84783888e4cc971ae8acf86dd3c1a419370336bb3c634c97695a8c5ac9",
        "965ac94082cebbcffe458075651e9cc33ce703ab0115c72d9e8b1a9906b2b636",
        "89e5daa6950b895190716dd26054432b564ccdc2868188ba1da76de8e1dc7591",
    ]
    .iter()
    .map(|h| node(h))
    .collect();
    let root = node(CP8_ROOT);
    assert_eq!(verify_header_proof(&hash, 5, 8, &branch, &root), Ok(()));

    let mut folder = HeaderProofFolder::new(&hash, 5, 8).unwrap();
    assert_eq!(folder.expected_len(), 4);
    for s in &branch {
        folder.push(s).unwrap();
    }
    assert_eq!(folder.finish(&root), Ok(()));

    assert_eq!(
        verify_header_proof(&hash, 4, 8, &branch, &root),
        Err(HeaderProofError::RootMismatch)
    );
    // The branch does not commit to cp_height: 9..=15 give the tree the same shape along this
    // path as 8. Only the trusted root for the cp_height asked about binds it, which is why the
    // caller supplies the root.
    for cp_height in 9..=15 {
        assert_eq!(
            verify_header_proof(&hash, 5, cp_height, &branch, &root),
            Ok(())
        );
    }
    assert_eq!(
        verify_header_proof(&hash, 5, 16, &branch, &root),
        Err(HeaderProofError::BranchLength {
            expected: 5,
            got: 4
        })
    );
    assert_eq!(
        verify_header_proof(&hash, 5, 8, &branch[..3], &root),
        Err(HeaderProofError::BranchLength {
            expected: 4,
            got: 3
        })
    );
    assert_eq!(
        verify_header_proof(&hash, 9, 8, &branch, &root),
        Err(HeaderProofError::HeightAboveCheckpoint {
            height: 9,
            cp_height: 8
        })
    );
    let mut bad = branch.clone();
    bad[2] = flip_bit(&bad[2], 100);
    assert_eq!(
        verify_header_proof(&hash, 5, 8, &bad, &root),
        Err(HeaderProofError::RootMismatch)
    );
    // The proof is for header 5 only.
    let hashes = mainnet_block_hashes();
    assert_eq!(hashes[5], hash);
    assert_eq!(
        branch[0].to_byte_array(),
        hashes[4].to_byte_array(),
        "branch[0] is block 4"
    );
    assert_eq!(
        verify_header_proof(&hashes[6], 5, 8, &branch, &root),
        Err(HeaderProofError::RootMismatch)
    );
    // Block 4 at height 5 would pair with a copy of itself where the tree has two blocks.
    assert_eq!(
        verify_header_proof(&hashes[4], 5, 8, &branch, &root),
        Err(HeaderProofError::UnexpectedDuplicate { level: 0 })
    );
}

#[test]
fn protocol_section_6_6_electrumx_merkle_vectors() {
    let leaves: Vec<[u8; 32]> = (0..8u8).map(|i| sha256d(&[i])).collect();
    let roots = [
        "1406e05881e299367766d313e26c05564ec91bf721d31726bd6e46e60689539a",
        "4bbe83bc38ebe2bcc7520d234139df1c0eb9ffa51f83eab1c5129b5b906b7655",
        "e129dfe02f567fc612d126596d43406144f40a771810ac7143421d2df3e5c1d0",
        "e32f5701a0115a2b4dc72f526af1614c592c19ee95cfcb0535961e0767baf78e",
        "f4113849d628f7c3bc91cc0ff785a6aee3ee236c1c912b28cc09c44f9f97b748",
        "fb5bb7e4825922eae8c2baec960c8f5233845222134a6a3d840e3c1201af75ed",
        "7de65c7d57cdc72971c9beab94af6ad4e99f233fb6ccebd2b4b19f13697ca54d",
        "6f97282ab347a265ae3383e1569e62da8c19a68cfa670d2b617a7fed4744bbfe",
    ];
    let raw = |h: &str| MerkleNode::from_byte_array(hex::decode_array(h.as_bytes()).unwrap());
    let mut acc = MerkleAccumulator::new();
    for (n, (leaf, root)) in leaves.iter().zip(roots).enumerate() {
        acc.push(*leaf).unwrap();
        assert_eq!(acc.root(), Some(raw(root)), "n = {}", n + 1);
    }
    let mut l4_hex = [0u8; 64];
    hex::encode_to_slice(&leaves[4], &mut l4_hex).unwrap();
    assert!(
        l4_hex.starts_with(b"214e63bf") && l4_hex.ends_with(b"89a7"),
        "L4 = 214e63bf…89a7"
    );
    // Branch of index 4 among 5 leaves: duplication at the two lowest levels.
    let branch = [
        MerkleNode::from_byte_array(leaves[4]),
        raw("7a865936b43ec09e83f8696e0239022a534be584736312a0bc62aff9451cb3fb"),
        raw(roots[3]),
    ];
    let l4 = BlockHash::from_byte_array(leaves[4]);
    assert_eq!(
        verify_header_proof(&l4, 4, 4, branch, &raw(roots[4])),
        Ok(())
    );
    assert_eq!(
        verify_header_proof(&l4, 4, 5, branch, &raw(roots[5])),
        Err(HeaderProofError::UnexpectedDuplicate { level: 0 })
    );
    for (leaf_count, len) in [
        (1, 0),
        (2, 1),
        (3, 2),
        (4, 2),
        (5, 3),
        (6, 3),
        (7, 3),
        (8, 3),
    ] {
        assert_eq!(
            header_branch_len(leaf_count - 1),
            len,
            "{leaf_count} leaves"
        );
    }
}

/// Root and branch of leaf `index` built level by level (the obvious way).
fn naive_tree(leaves: &[[u8; 32]], index: usize) -> ([u8; 32], Vec<MerkleNode>) {
    let mut level = leaves.to_vec();
    let mut idx = index;
    let mut branch = Vec::new();
    while level.len() > 1 {
        if level.len() % 2 == 1 {
            level.push(*level.last().unwrap());
        }
        branch.push(MerkleNode::from_byte_array(level[idx ^ 1]));
        level = level
            .chunks(2)
            .map(|p| sha256d_pair(&p[0], &p[1]))
            .collect();
        idx /= 2;
    }
    (level[0], branch)
}

#[test]
fn cp_height_roots_from_the_mainnet_headers_file() {
    let hashes = mainnet_block_hashes();
    let mut acc = MerkleAccumulator::new();
    let mut roots = Vec::new();
    for h in &hashes {
        acc.push_block_hash(h).unwrap();
        roots.push(acc.root().unwrap());
    }
    assert_eq!(roots[8].to_string(), CP8_ROOT);

    // Proofs built from the whole file verify against the accumulator's roots.
    let leaves: Vec<[u8; 32]> = hashes.iter().map(|h| h.to_byte_array()).collect();
    let cp_height = (hashes.len() - 1) as u32;
    for height in [0, 1, 5, 4095, 4096, 8191, 10_000, 10_235, 10_236] {
        let (root, branch) = naive_tree(&leaves, height);
        assert_eq!(roots[cp_height as usize].to_byte_array(), root);
        assert_eq!(branch.len(), 14);
        let h = height as u32;
        assert_eq!(
            verify_header_proof(
                &hashes[height],
                h,
                cp_height,
                &branch,
                &roots[cp_height as usize]
            ),
            Ok(())
        );
        assert!(verify_header_proof(&hashes[height], h, cp_height, &branch, &roots[8]).is_err());
    }
    for cp in [1usize, 2, 2015, 2016, 4096] {
        let (root, branch) = naive_tree(&leaves[..=cp], cp / 2);
        assert_eq!(roots[cp].to_byte_array(), root);
        assert_eq!(
            verify_header_proof(
                &hashes[cp / 2],
                (cp / 2) as u32,
                cp as u32,
                &branch,
                &roots[cp]
            ),
            Ok(())
        );
    }
}

fn raw_block_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for net in ["mainnet", "signet", "testnet", "testnet4"] {
        for entry in std::fs::read_dir(data_path(net).join("blocks")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "bin") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn txids_of_raw_blocks_reproduce_header_merkle_roots() {
    // Expected facts from merkle_vectors.json, keyed by file.
    let vectors = json("vectors/merkle_vectors.json");
    let by_file: HashMap<String, &Value> = vectors
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["file"].as_str().unwrap().to_string(), b))
        .collect();

    let files = raw_block_files();
    assert_eq!(files.len(), 17);
    let (mut segwit_total, mut legacy_total) = (0, 0);
    for path in files {
        let rel = path
            .strip_prefix(data_path(""))
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let block = parse_block(&std::fs::read(&path).unwrap());
        let (root, mutated) = merkle_root_of(&block.txids);
        assert_eq!(root, block.header.merkle_root, "{rel}");
        assert!(!mutated, "{rel}");
        if let Some(v) = by_file.get(&rel) {
            assert_eq!(
                block.txids.len() as u64,
                v["n_tx"].as_u64().unwrap(),
                "{rel}"
            );
            assert_eq!(
                block.segwit as u64,
                v["segwit_txs"].as_u64().unwrap(),
                "{rel}"
            );
            for proof in v["proofs"].as_array().unwrap() {
                let pos = proof["pos"].as_u64().unwrap() as usize;
                assert_eq!(
                    block.txids[pos].to_string(),
                    proof["tx_hash"].as_str().unwrap()
                );
            }
        }
        segwit_total += block.segwit;
        legacy_total += block.txids.len() - block.segwit;
    }
    assert!(
        segwit_total > 5000 && legacy_total > 5000,
        "{segwit_total} segwit, {legacy_total} legacy"
    );
}

#[test]
fn txids_of_blk_file_blocks_reproduce_header_merkle_roots() {
    let blk = read("mainnet/blocks_0_438.blk");
    let hashes = mainnet_block_hashes();
    let mut rest = &blk[..];
    let mut height = 0;
    while !rest.is_empty() {
        assert_eq!(
            rest[..4],
            [0xf9, 0xbe, 0xb4, 0xd9],
            "magic at height {height}"
        );
        let len = u32::from_le_bytes(rest[4..8].try_into().unwrap()) as usize;
        let block = parse_block(&rest[8..8 + len]);
        assert_eq!(block.header.block_hash(), hashes[height], "height {height}");
        assert_eq!(
            merkle_root_of(&block.txids),
            (block.header.merkle_root, false),
            "height {height}"
        );
        rest = &rest[8 + len..];
        height += 1;
    }
    assert_eq!(height, 439);
}

/// A BIP37 partial merkle tree: every node it reveals, by (level above the leaves, index).
struct PartialTree {
    nodes: HashMap<(u32, u32), [u8; 32]>,
    matched: Vec<u32>,
    height: u32,
    root: [u8; 32],
}

fn parse_partial_tree(total: u32, hashes: &[[u8; 32]], flags: &[u8]) -> PartialTree {
    let width = |level: u32| (total + (1 << level) - 1) >> level;
    let mut height = 0;
    while width(height) > 1 {
        height += 1;
    }
    struct Walk<'a> {
        hashes: std::slice::Iter<'a, [u8; 32]>,
        bit: usize,
        flags: &'a [u8],
        tree: PartialTree,
    }
    fn walk(w: &mut Walk, width: &dyn Fn(u32) -> u32, level: u32, pos: u32) -> [u8; 32] {
        let flag = w.flags[w.bit / 8] >> (w.bit % 8) & 1 == 1;
        w.bit += 1;
        let hash = if level == 0 || !flag {
            if level == 0 && flag {
                w.tree.matched.push(pos);
            }
            *w.hashes.next().unwrap()
        } else {
            let left = walk(w, width, level - 1, pos * 2);
            let right = if pos * 2 + 1 < width(level - 1) {
                walk(w, width, level - 1, pos * 2 + 1)
            } else {
                left
            };
            sha256d_pair(&left, &right)
        };
        w.tree.nodes.insert((level, pos), hash);
        hash
    }
    let mut w = Walk {
        hashes: hashes.iter(),
        bit: 0,
        flags,
        tree: PartialTree {
            nodes: HashMap::new(),
            matched: Vec::new(),
            height,
            root: [0; 32],
        },
    };
    w.tree.root = walk(&mut w, &width, height, 0);
    assert!(w.hashes.next().is_none(), "unused hashes");
    w.tree
}

#[test]
fn txoutproof_merkleblocks_give_branches_that_verify() {
    let dir = data_path("mainnet/txoutproof");
    let (mut checked, mut expected_total) = (0, 0);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let (_, positions) = name.split_once('-').unwrap();
        let expected: Vec<u32> = positions.split('_').map(|p| p.parse().unwrap()).collect();
        expected_total += expected.len();
        let bytes = std::fs::read(&path).unwrap();
        let header = Header::from_slice(&bytes[..80]).unwrap();
        let total = u32::from_le_bytes(bytes[80..84].try_into().unwrap());
        let (n_hashes, len) = read_varint(&bytes[84..]);
        let mut at = 84 + len;
        let hashes: Vec<[u8; 32]> = (0..n_hashes)
            .map(|i| bytes[at + 32 * i as usize..][..32].try_into().unwrap())
            .collect();
        at += 32 * n_hashes as usize;
        let (n_flags, len) = read_varint(&bytes[at..]);
        let flags = &bytes[at + len..at + len + n_flags as usize];
        assert_eq!(at + len + n_flags as usize, bytes.len());

        let tree = parse_partial_tree(total, &hashes, flags);
        assert_eq!(
            MerkleNode::from_byte_array(tree.root),
            header.merkle_root,
            "{name}"
        );
        assert_eq!(tree.matched, expected, "{name}");
        let depth = TreeDepth::new(tree.height as usize).unwrap();
        for &pos in &tree.matched {
            let leaf = Txid::from_byte_array(tree.nodes[&(0, pos)]);
            let branch: Vec<MerkleNode> = (0..tree.height)
                .map(|level| {
                    let idx = pos >> level;
                    let sibling = tree
                        .nodes
                        .get(&(level, idx ^ 1))
                        .unwrap_or(&tree.nodes[&(level, idx)]);
                    MerkleNode::from_byte_array(*sibling)
                })
                .collect();
            assert_eq!(
                verify_tx_branch_pinned(&leaf, pos, &branch, &header.merkle_root, depth),
                Ok(depth)
            );
            checked += 1;
        }
    }
    assert_eq!(checked, expected_total);
    assert_eq!(checked, 17);
}

#[test]
fn address_script_hashes_match_electrum() {
    let vectors = json("vectors/electrum_test_vectors.json");
    let items = vectors["address_scripthash_mainnet"].as_array().unwrap();
    assert_eq!(items.len(), 9);
    for item in items {
        let script = hex_bytes(item["scriptPubKey"].as_str().unwrap());
        assert_eq!(
            script_hash(&script).to_string(),
            item["scripthash"].as_str().unwrap(),
            "{}",
            item["address"]
        );
    }
}
