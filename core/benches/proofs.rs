//! Proof and status verification, each next to the bound it cannot beat: the raw hashing the
//! same work needs. Report results as a ratio to the bound measured in the same run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use electrum_spv_core::hash::{sha256, sha256d};
use electrum_spv_core::merkle::verify_tx_branch;
use electrum_spv_core::script::script_hash;
use electrum_spv_core::script::{StatusHasher, TxHeight};
use electrum_spv_core::tx::{TxItem, TxScan, TxidHasher};
use electrum_spv_core::{Header, MerkleNode, Txid};

const HISTORY_LEN: u32 = 10_000;

/// A 10,000-item history: distinct txids, non-decreasing heights, a mempool tail.
fn history() -> Vec<(Txid, TxHeight)> {
    (0..HISTORY_LEN)
        .map(|i| {
            let txid = Txid::from_byte_array(sha256d(&i.to_le_bytes()));
            let height = match HISTORY_LEN - i {
                1 => TxHeight::MempoolUnconfirmedParent,
                2..=5 => TxHeight::Mempool,
                _ => TxHeight::Confirmed(800_000 + i / 4),
            };
            (txid, height)
        })
        .collect()
}

fn status(c: &mut Criterion) {
    let items = history();
    let preformatted: String = items
        .iter()
        .map(|(txid, height)| format!("{txid}:{}:", height.to_i64()))
        .collect();
    let mut group = c.benchmark_group("status_10000_items");
    group.throughput(Throughput::Elements(u64::from(HISTORY_LEN)));
    group.bench_function("status_hasher", |b| {
        b.iter(|| {
            let mut hasher = StatusHasher::new();
            for (txid, height) in black_box(&items) {
                hasher.push(txid, *height);
            }
            hasher.finish()
        })
    });
    group.bench_function("bound_raw_sha256_of_preformatted_string", |b| {
        b.iter(|| sha256(black_box(preformatted.as_bytes())))
    });
    group.finish();
}

/// PROTOCOL.md §6.3 proof 2: mainnet block 437,303, position 6, 11 siblings.
fn real_branch() -> (Txid, u32, Vec<MerkleNode>, MerkleNode) {
    let header = Header::from_hex(b"0000002062fb852ae4d886c97eaea41373bcf03fdf223a0453e5ed0300000000000000007939717748846d76399cff7105bd31aa51e3a422c5e6f2807620db515d4393791f611c58d25504189eaf9d8d").unwrap();
    let branch = [
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
    ]
    .iter()
    .map(|h| h.parse().unwrap())
    .collect();
    let txid = "2933da99940403cfba6ebf8f7cde1b9f056f71a9c6a60020a7247043cb78bb32"
        .parse()
        .unwrap();
    (txid, 6, branch, header.merkle_root)
}

fn merkle_branch(c: &mut Criterion) {
    let (txid, pos, branch, root) = real_branch();
    assert!(verify_tx_branch(&txid, pos, &branch, &root).is_ok());
    let mut group = c.benchmark_group("merkle_branch_11_deep");
    group.bench_function("verify_tx_branch", |b| {
        b.iter(|| verify_tx_branch(black_box(&txid), black_box(pos), black_box(&branch), &root))
    });
    group.bench_function("bound_raw_sha256d_of_11_nodes", |b| {
        b.iter(|| {
            let mut node = [0u8; 64];
            node[..32].copy_from_slice(black_box(txid.as_byte_array()));
            for sibling in black_box(&branch) {
                node[32..].copy_from_slice(sibling.as_byte_array());
                let parent = sha256d(&node);
                node[..32].copy_from_slice(&parent);
            }
            node
        })
    });
    group.finish();
}

/// The transactions of mainnet block 481,829 (segwit era, about 1 MB), back to back.
fn block_transactions() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/mainnet/blocks/481829.bin"
    );
    let block = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // 80-byte header, then a 3-byte compact size (0xfd and two bytes) for the count.
    assert_eq!(block[80], 0xfd);
    block[83..].to_vec()
}

fn streaming_txids(c: &mut Criterion) {
    let txs = block_transactions();
    let mut group = c.benchmark_group("txids_block_481829");
    group.throughput(Throughput::Bytes(txs.len() as u64));
    group.bench_function("txid_hasher", |b| {
        b.iter(|| {
            let mut rest = black_box(&txs[..]);
            let mut last = None;
            while !rest.is_empty() {
                let mut hasher = TxidHasher::new();
                let used = hasher.feed(rest).unwrap();
                rest = &rest[used..];
                last = Some(hasher.finish().unwrap());
            }
            last
        })
    });
    // The txid, every outpoint and a script hash of every output: about twice the hashing.
    let script = script_hash(&[0x00, 0x14]);
    group.bench_function("tx_scan", |b| {
        b.iter(|| {
            let mut rest = black_box(&txs[..]);
            let mut items = 0u32;
            while !rest.is_empty() {
                let mut scan = TxScan::new(&script);
                let used = scan.feed(rest, &mut |_: TxItem| items += 1).unwrap();
                rest = &rest[used..];
                scan.finish().unwrap();
            }
            items
        })
    });
    // Hashing every byte once more than a txid needs (witnesses are not in its preimage).
    group.bench_function("bound_raw_sha256d_of_all_bytes", |b| {
        b.iter(|| sha256d(black_box(&txs)))
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = status, merkle_branch, streaming_txids
}
criterion_main!(benches);
