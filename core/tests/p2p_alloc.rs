//! The P2P paths of `benches/p2p.rs` make no heap allocation: serving a transaction (announce,
//! `inv` out, the remote's `getdata` in, the permit, the `tx` frame) from tables of 1 and
//! 1,000, a 100 kB transaction, and a 50,000-item `inv` through the message reader and a peer.
//! A counting global allocator counts the allocations of this test's thread only (the
//! harness's threads allocate as they like).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

#[path = "common/p2p_paths.rs"]
mod p2p_paths;

use p2p_paths::{InvDecode, Serve, legacy_tx};

thread_local! {
    // `const` and without a destructor: reading it never allocates.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: no count while the thread's locals are being torn down.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

/// The system allocator, counting `alloc`, `alloc_zeroed` and `realloc` per thread.
struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as it does for `System`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result and the allocations this thread made meanwhile.
fn allocations<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let r = std::hint::black_box(f());
    (r, ALLOCATIONS.with(Cell::get) - before)
}

#[test]
fn the_counter_counts() {
    let (_, n) = allocations(|| vec![1u8; 10]);
    assert_eq!(n, 1);
}

#[test]
fn serving_a_transaction_allocates_nothing() {
    let mut one = Serve::new(vec![legacy_tx(0, 250)]);
    let mut many = Serve::new((0..1_000).map(|i| legacy_tx(i, 250)).collect());
    let mut large = Serve::new(vec![legacy_tx(7, 100_000)]);
    for (what, serve, want) in [
        ("1 tx of 250 B, 3 times", &mut one, 3 * (24 + 250)),
        ("1,000 txs of 250 B", &mut many, 1_000 * (24 + 250)),
        ("1 tx of 100 kB", &mut large, 24 + 100_000),
    ] {
        let (written, n) = allocations(|| {
            if what.ends_with("3 times") {
                (0..3).map(|_| serve.serve(0)).sum()
            } else {
                serve.serve_all()
            }
        });
        assert_eq!(written, want, "{what}");
        assert_eq!(n, 0, "{what}: {n} allocations");
    }
}

#[test]
fn decoding_a_50000_item_inv_allocates_nothing() {
    let mut inv = InvDecode::new(50_000);
    let expected = inv.reader();
    assert_eq!(expected.0, 50_000);
    let (got, n) = allocations(|| inv.reader());
    assert_eq!((got, n), (expected, 0), "message reader");
    let (got, n) = allocations(|| inv.peer());
    assert_eq!((got, n), (expected, 0), "peer");
}
