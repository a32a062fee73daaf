//! Header verification throughput against its bound: raw double SHA-256 of the same headers.
//!
//! `cargo bench -p electrum-spv-core --bench headers`; `scripts/bench-ratios.sh` turns the
//! results into the ratios README reports (bound time / verifier time).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use electrum_spv_core::chain::{Anchor, HeaderVerifier, MAINNET};
use electrum_spv_core::hash::sha256d;
use electrum_spv_core::hex;
use std::hint::black_box;

const START: u32 = 822_528;

fn load() -> Vec<[u8; 80]> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/mainnet/headers_822528_830592.bin"
    );
    let raw = std::fs::read(path).expect("bundled headers");
    raw.chunks_exact(80)
        .map(|c| c.try_into().expect("80 bytes"))
        .collect()
}

fn headers(c: &mut Criterion) {
    let hs = load();
    let hexes: Vec<[u8; 160]> = hs
        .iter()
        .map(|h| {
            let mut out = [0u8; 160];
            hex::encode_to_slice(h, &mut out).expect("sized");
            out
        })
        .collect();
    let anchor = Anchor::at_height(&MAINNET, START).expect("checkpointed");
    let mut g = c.benchmark_group("headers_8065");
    g.throughput(Throughput::Elements(hs.len() as u64));
    g.sample_size(30);
    g.bench_function("bound_sha256d", |b| {
        b.iter(|| {
            let mut acc = 0u8;
            for h in &hs {
                acc ^= sha256d(black_box(h))[0];
            }
            acc
        })
    });
    g.bench_function("verify_bytes", |b| {
        b.iter(|| {
            let mut v = HeaderVerifier::new(&MAINNET, anchor);
            for h in &hs {
                v.push(black_box(h)).expect("real header");
            }
            v.tip().map(|t| t.height)
        })
    });
    g.bench_function("verify_hex", |b| {
        b.iter(|| {
            let mut v = HeaderVerifier::new(&MAINNET, anchor);
            for h in &hexes {
                v.push_hex(black_box(h)).expect("real header");
            }
            v.tip().map(|t| t.height)
        })
    });
    g.bench_function("hex_decode_only", |b| {
        b.iter(|| {
            let mut out = [0u8; 80];
            let mut acc = 0u8;
            for h in &hexes {
                hex::decode_to_slice(black_box(h), &mut out).expect("hex");
                acc ^= out[0];
            }
            acc
        })
    });
    g.finish();
}

criterion_group!(benches, headers);
criterion_main!(benches);
