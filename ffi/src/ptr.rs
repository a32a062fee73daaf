//! Turning the C caller's pointers into references, in one place.
//!
//! The C contract, stated once in the header's module docs: a pointer with a length points at
//! that many readable (or writable) bytes, or is NULL with length 0; a pointer to a fixed-size
//! array (`uint8_t out[32]`) points at that many bytes; nothing passed in overlaps the session
//! memory; pointers are not used concurrently from two threads. These helpers check NULL and
//! rely on the rest.

use core::slice;

/// The `len` bytes at `p`; `None` if `p` is NULL and `len` is not 0.
///
/// # Safety
/// `p` is NULL or points at `len` readable bytes that stay unchanged for `'a`.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize) -> Option<&'a [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL, and the caller promises `len` readable bytes.
    Some(unsafe { slice::from_raw_parts(p, len) })
}

/// The `len` writable bytes at `p`; `None` if `p` is NULL and `len` is not 0.
///
/// # Safety
/// `p` is NULL or points at `len` writable bytes not otherwise referenced for `'a`.
pub(crate) unsafe fn bytes_mut<'a>(p: *mut u8, len: usize) -> Option<&'a mut [u8]> {
    if len == 0 {
        return Some(&mut []);
    }
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL, and the caller promises `len` writable, unaliased bytes.
    Some(unsafe { slice::from_raw_parts_mut(p, len) })
}

/// The `N` bytes at `p`, copied; `None` if `p` is NULL.
///
/// # Safety
/// `p` is NULL or points at `N` readable bytes.
pub(crate) unsafe fn array<const N: usize>(p: *const u8) -> Option<[u8; N]> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL and `N` readable bytes; `[u8; N]` has alignment 1.
    Some(unsafe { p.cast::<[u8; N]>().read() })
}

/// Writes `value` to `p` unless `p` is NULL; returns whether it wrote.
///
/// # Safety
/// `p` is NULL or valid for a write of `T` and aligned for it.
pub(crate) unsafe fn put<T>(p: *mut T, value: T) -> bool {
    if p.is_null() {
        return false;
    }
    // SAFETY: non-NULL; the caller promises it is valid and aligned for `T`.
    unsafe { p.write(value) };
    true
}

/// Copies `N` bytes into the array at `p` unless `p` is NULL; returns whether it wrote.
///
/// # Safety
/// `p` is NULL or points at `N` writable bytes.
pub(crate) unsafe fn put_array<const N: usize>(p: *mut u8, value: &[u8; N]) -> bool {
    // SAFETY: forwarded; `[u8; N]` has alignment 1.
    unsafe { put(p.cast::<[u8; N]>(), *value) }
}
