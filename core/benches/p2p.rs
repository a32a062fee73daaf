//! P2P costs against their bound, raw SHA-256d of the same bytes (the frame checksum every
//! path must compute):
//!
//! * `p2p_serve_250B` (per 1,000 transactions of 250 B): `serve_table_1000`: each of 1,000
//!   transactions held in a 1,000-slot [`BroadcastTable`] is announced
//!   (`BroadcastTable::announce`, `Peer::send` of an `inv`, the `inv` frame polled out), the
//!   remote's `getdata` (bytes a real `Peer` wrote for that `inv`) is fed to our `Peer`, its
//!   events go to `BroadcastTable::on_getdata`, and at the list's end `Peer::serve_tx` gives the
//!   `tx` frame, whose header and payload are copied into the connection buffer.
//!   `serve_table_1`: the same with a one-slot table (one transaction, served 1,000 times):
//!   without the table's linear lookups. `bound_sha256d`: SHA-256d of the 1,000 transactions.
//! * `p2p_serve_100kB`: the same for one 100,000-byte transaction (table of 1).
//! * `p2p_inv_50000`: a 50,000-item `inv` frame (1.8 MB) decoded by `MessageReader`
//!   (`message_reader`) and by a ready `Peer` with its events drained (`peer`), fed at once;
//!   `bound_sha256d`: SHA-256d of the payload.
//!
//! Before measuring, a counting global allocator checks that none of these paths allocates
//! (`tests/p2p_alloc.rs` checks the same in CI). After each group a summary line prints the
//! median time per iteration of the timed samples and its multiple of the bound's
//! (`p2p: serve 1 tx 250 B ...: X µs, Y× sha256d`).
//!
//! `cargo bench -p electrum-spv-core --bench p2p`; `scripts/bench-ratios.sh p2p` prints the
//! same groups as bound_time / time.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};

#[path = "../tests/common/p2p_paths.rs"]
mod p2p_paths;

use p2p_paths::{InvDecode, Serve, legacy_tx};

// ----- counting allocator -----

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{Counting, count_allocations};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Asserts that `f` allocates nothing; returns its result.
fn no_allocations<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let (r, n) = count_allocations(f);
    assert_eq!(n, 0, "{what}: {n} heap allocations");
    r
}

// ----- timing kept for the summary lines -----

/// Per-iteration times of every call criterion made, per benchmark.
#[derive(Default)]
struct Times(RefCell<Vec<(String, Vec<f64>)>>);

impl Times {
    /// Times `run` as criterion asks and keeps the time per iteration of each call.
    fn bench<R>(
        &self,
        g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
        name: &str,
        mut run: impl FnMut() -> R,
    ) {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(run());
                }
                let elapsed = start.elapsed();
                self.push(name, elapsed.as_secs_f64() * 1e9 / iters as f64);
                elapsed
            })
        });
    }

    fn push(&self, name: &str, ns: f64) {
        let mut all = self.0.borrow_mut();
        match all.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => v.push(ns),
            None => all.push((name.to_string(), vec![ns])),
        }
    }

    /// Median ns per iteration of `name` (warm-up calls included; they are few).
    fn median(&self, name: &str) -> f64 {
        let all = self.0.borrow();
        let mut v = all
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }

    fn take(&self) {
        self.0.borrow_mut().clear();
    }
}

fn human(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

// ----- benches -----

fn p2p(c: &mut Criterion) {
    let times = Times::default();

    // Serving 250-byte transactions.
    let txs: Vec<Vec<u8>> = (0..1_000).map(|i| legacy_tx(i, 250)).collect();
    let mut many = Serve::new(txs.clone());
    let mut one = Serve::new(vec![txs[0].clone()]);
    no_allocations("serve 1,000 from a table of 1,000", || many.serve_all());
    no_allocations("serve 1 from a table of 1", || one.serve(0));
    assert_eq!(many.serve_all(), 1_000 * (24 + 250));
    let mut g = c.benchmark_group("p2p_serve_250B");
    g.throughput(Throughput::Elements(1_000));
    g.sample_size(50);
    times.bench(&mut g, "bound_sha256d", || many.bound());
    times.bench(&mut g, "serve_table_1000", || many.serve_all());
    times.bench(&mut g, "serve_table_1", || {
        (0..1_000).map(|_| one.serve(0)).sum::<usize>()
    });
    g.finish();
    for (name, table) in [("serve_table_1", 1), ("serve_table_1000", 1_000)] {
        let ours = times.median(name) / 1e3;
        let bound = times.median("bound_sha256d") / 1e3;
        println!(
            "p2p: serve 1 tx 250 B (table of {table}): {}, {:.2}× sha256d ({} per tx)",
            human(ours),
            ours / bound,
            human(bound)
        );
    }
    times.take();

    // One 100 kB transaction.
    let mut large = Serve::new(vec![legacy_tx(7, 100_000)]);
    no_allocations("serve 100 kB", || large.serve(0));
    let mut g = c.benchmark_group("p2p_serve_100kB");
    g.throughput(Throughput::Bytes(100_000));
    g.sample_size(50);
    times.bench(&mut g, "bound_sha256d", || large.bound());
    times.bench(&mut g, "serve_table_1", || large.serve(0));
    g.finish();
    let (ours, bound) = (times.median("serve_table_1"), times.median("bound_sha256d"));
    println!(
        "p2p: serve 1 tx 100 kB: {}, {:.2}× sha256d ({})",
        human(ours),
        ours / bound,
        human(bound)
    );
    times.take();

    // A 50,000-item inv.
    let mut inv = InvDecode::new(50_000);
    let expected = inv.reader();
    assert_eq!(expected.0, 50_000);
    assert_eq!(
        no_allocations("inv through the reader", || inv.reader()),
        expected
    );
    assert_eq!(
        no_allocations("inv through a peer", || inv.peer()),
        expected
    );
    println!("p2p: allocations: serve 0, inv 0 (asserted)");
    let mut g = c.benchmark_group("p2p_inv_50000");
    g.throughput(Throughput::Elements(50_000));
    g.sample_size(30);
    times.bench(&mut g, "bound_sha256d", || inv.bound());
    times.bench(&mut g, "message_reader", || inv.reader());
    times.bench(&mut g, "peer", || inv.peer());
    g.finish();
    let bound = times.median("bound_sha256d");
    for (what, name) in [("MessageReader", "message_reader"), ("Peer", "peer")] {
        let ours = times.median(name);
        println!(
            "p2p: decode inv 50,000 items ({} B) via {what}: {}, {:.2}× sha256d ({}), {:.1} ns/item",
            inv.frame.len(),
            human(ours),
            ours / bound,
            human(bound),
            ours / 50_000.0
        );
    }
}

criterion_group!(benches, p2p);
criterion_main!(benches);
