//! Draining the session's outgoing queue: 1 MiB of queued requests taken with `poll_transmit` in
//! 64 KiB writes, as the std adapter does, beside a plain `memcpy` of the same bytes in the same
//! writes (the bound: each byte copied once). The ratio of the two is the figure (README).
//!
//! `cargo bench -p electrum-spv-core --bench transmit`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use electrum_spv_core::chain::REGTEST;
use electrum_spv_core::session::{Config, Event, Request, Session, SessionStorage};
use electrum_spv_core::time::Instant;

/// Bytes queued before draining.
const QUEUED: usize = 1 << 20;
/// Bytes taken per `poll_transmit`, as the adapter writes them.
const WRITE: usize = 64 << 10;
/// Raw transaction bytes per broadcast: its request is twice that in hex, plus the envelope.
const TX: usize = 100_000;

/// A negotiated session whose outgoing queue holds at least [`QUEUED`] bytes of broadcasts.
fn full_session() -> Session<'static> {
    let now = Instant::ZERO;
    let storage = SessionStorage::owned(4096, QUEUED + 4 * TX, 16);
    let mut s = Session::new(storage, Config::new(&REGTEST), now);
    let mut sink = vec![0u8; 4096];
    while s.poll_transmit(&mut sink) > 0 {}
    let version = "{\"jsonrpc\":\"2.0\",\"id\":0,\"result\":[\"ElectrumX 2.0.0\",\"1.4\"]}\n";
    let features = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{{\"genesis_hash\":\"{}\",\"hosts\":{{}},\
         \"protocol_min\":\"1.4\",\"protocol_max\":\"1.4\",\"pruning\":null,\
         \"server_version\":\"ElectrumX 2.0.0\"}}}}\n",
        REGTEST.genesis_hash
    );
    for line in [version.as_bytes(), features.as_bytes()] {
        let mut rest = line;
        while !rest.is_empty() {
            rest = &rest[s.handle_input(now, rest)..];
            while let Some(event) = s.poll_event() {
                assert!(!matches!(event, Event::Failed(_)), "{event:?}");
            }
        }
        while s.poll_transmit(&mut sink) > 0 {}
    }
    assert!(s.is_ready(), "negotiated");
    let tx = vec![0x5au8; TX];
    while s.transmit_len() < QUEUED {
        s.request(now, &Request::Broadcast(&tx), 0)
            .expect("the queue has room for one more broadcast");
    }
    s
}

fn drain(c: &mut Criterion) {
    let queued = full_session().transmit_len();
    let mut group = c.benchmark_group("transmit");
    group.throughput(Throughput::Bytes(queued as u64));
    let mut out = vec![0u8; WRITE];
    group.bench_function("poll_transmit 1 MiB in 64 KiB writes", |b| {
        b.iter_batched_ref(
            full_session,
            |s| {
                let mut taken = 0;
                loop {
                    let n = s.poll_transmit(&mut out);
                    if n == 0 {
                        break;
                    }
                    black_box(&out[..n]);
                    taken += n;
                }
                assert_eq!(taken, queued);
            },
            BatchSize::LargeInput,
        )
    });
    let source = vec![0x5au8; queued];
    group.bench_function("memcpy 1 MiB in 64 KiB writes", |b| {
        b.iter(|| {
            for chunk in black_box(&source).chunks(WRITE) {
                out[..chunk.len()].copy_from_slice(chunk);
                black_box(&out[..chunk.len()]);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, drain);
criterion_main!(benches);
