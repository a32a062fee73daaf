//! Peak stack measurement by painting: fill the unused stack with a pattern, run the work, then
//! find the lowest word the pattern no longer holds.
//!
//! The stack grows down from `_stack_start` (top of RAM) towards `_stack_end` (the end of the
//! statics; this firmware has no heap), both defined by cortex-m-rt's `link.x`. Everything in
//! between is unused until the stack reaches it, so it can be painted from a running function
//! as long as nothing else runs: no interrupts are enabled, and QEMU services semihosting calls
//! without stacking an exception frame.

use core::arch::asm;

/// The paint. An unlikely value, so a live word that happens to hold it is improbable (such a
/// word would make the peak read low by at most the distance to the next written word).
const PAINT: u32 = 0xC0DE_5EED;

/// Words just below the painter's own stack pointer that are left alone. Nothing lives below the
/// stack pointer, but keep clear of anything the compiler might spill there.
const GUARD_BYTES: usize = 64;

unsafe extern "C" {
    /// One past the highest stack word (the initial stack pointer).
    static _stack_start: u32;
    /// The lowest word the stack may use: the first word above the statics.
    static _stack_end: u32;
}

/// Address of the lowest stack word.
fn bottom() -> usize {
    // Taking a symbol's address reads nothing, so it needs no `unsafe`.
    (&raw const _stack_end) as usize
}

/// Address one past the highest stack word.
fn top() -> usize {
    (&raw const _stack_start) as usize
}

/// Bytes of stack in use at the call, counted from the top of RAM as [`peak_bytes`] counts:
/// subtracted from a peak, what the calls made after it took.
#[inline(always)]
pub fn used_now() -> usize {
    let sp: usize;
    // SAFETY: reads the stack pointer into a register; touches no memory.
    unsafe { asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    top().saturating_sub(sp)
}

/// Fills the free stack below the caller with [`PAINT`]. Call it before the work to measure,
/// from a frame that outlives that work (`main`), and keep the work in functions it calls.
#[inline(never)]
pub fn paint() {
    let sp: usize;
    // SAFETY: reads the stack pointer into a register; touches no memory.
    unsafe { asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    let end = sp.saturating_sub(GUARD_BYTES) & !3;
    let mut word = bottom();
    while word < end {
        // SAFETY: `word` is word-aligned and lies between the end of the statics and below the
        // current stack pointer, memory that no Rust object occupies (no heap, no interrupts).
        unsafe { (word as *mut u32).write_volatile(PAINT) };
        word += 4;
    }
}

/// Bytes of stack used since [`paint`] at the deepest point, counted from the top of RAM (so it
/// includes the reset handler's and `main`'s frames). Returns `None` if the paint is gone all the
/// way down: the stack reached the statics, and the figure would be a lower bound only.
pub fn peak_bytes() -> Option<usize> {
    let top = top();
    let mut word = bottom();
    // SAFETY: as in `paint`: aligned words between the statics and the stack top, read only.
    let painted = |w: usize| unsafe { (w as *const u32).read_volatile() } == PAINT;
    if !painted(word) {
        return None;
    }
    while word < top && painted(word) {
        word += 4;
    }
    Some(top - word)
}
