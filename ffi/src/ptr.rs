//! Turning the C caller's pointers into references, in one place.
//!
//! The C contract, stated once in the header's module docs: a pointer with a length points at
//! that many readable (or writable) bytes, or is NULL with length 0; a pointer to a fixed-size
//! array (`uint8_t out[32]`) points at that many bytes; nothing passed in overlaps the session
//! memory; pointers are not used concurrently from two threads. These helpers check what can be
//! checked, NULL and alignment, and rely on the rest.
//!
//! Alignment: a typed pointer (`uint32_t *`, `size_t *`, `espv_tip *`, ...) that is not aligned
//! for its type is refused with `ESPV_ERR_MISALIGNED` before the function does anything, never
//! dereferenced. Every typed pointer goes through [`checked`] (directly, or through [`Out`],
//! [`OutSlice`], [`read`], [`slice`]); byte pointers need no alignment.

use core::ffi::c_int;
use core::slice;

use crate::status::{ESPV_ERR_INVALID_ARGUMENT, ESPV_ERR_MISALIGNED, ESPV_ERR_NULL};

/// Returns early with the status code of an `Err`: `try_status!(expr)` is the value of an
/// `Ok`. For `extern "C"` functions, which return their status as a plain `c_int`.
macro_rules! try_status {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(code) => return code,
        }
    };
}
pub(crate) use try_status;

/// `Ok` if `p` is NULL or aligned for `T`, `ESPV_ERR_MISALIGNED` otherwise: the one alignment
/// check of the crate.
pub(crate) fn checked<T>(p: *const T) -> Result<(), c_int> {
    if !p.is_null() && !p.is_aligned() {
        return Err(ESPV_ERR_MISALIGNED);
    }
    Ok(())
}

/// `Ok` if `p` is not NULL and aligned for `T`; `ESPV_ERR_NULL` or `ESPV_ERR_MISALIGNED`
/// otherwise.
pub(crate) fn checked_non_null<T>(p: *const T) -> Result<(), c_int> {
    if p.is_null() {
        return Err(ESPV_ERR_NULL);
    }
    checked(p)
}

/// A typed out pointer (`T *out` in C), checked for alignment before any work so that a
/// function refuses a misaligned one before it changes anything: NULL (nothing is written;
/// only from [`Out::optional`]) or aligned for `T`.
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// An out pointer the caller may leave NULL; `ESPV_ERR_MISALIGNED` if it is not aligned.
    pub(crate) fn optional(p: *mut T) -> Result<Out<T>, c_int> {
        checked(p)?;
        Ok(Out(p))
    }

    /// An out pointer the function needs: `ESPV_ERR_NULL` for NULL, `ESPV_ERR_MISALIGNED`.
    pub(crate) fn required(p: *mut T) -> Result<Out<T>, c_int> {
        checked_non_null(p)?;
        Ok(Out(p))
    }

    /// Writes `value` unless the pointer is NULL.
    ///
    /// # Safety
    /// The pointer given to [`optional`](Self::optional) or [`required`](Self::required) is
    /// NULL or valid for a write of `T`.
    pub(crate) unsafe fn put(&self, value: T) {
        if !self.0.is_null() {
            // SAFETY: non-NULL and aligned (checked when made); valid for a write (contract).
            unsafe { self.0.write(value) };
        }
    }
}

/// A typed out array (`T *items, size_t cap` in C), checked like [`Out`].
pub(crate) struct OutSlice<T> {
    p: *mut T,
    cap: usize,
}

impl<T> OutSlice<T> {
    /// Room for `cap` items at `p`: `ESPV_ERR_NULL` if `p` is NULL and `cap` is not 0,
    /// `ESPV_ERR_MISALIGNED` if `p` is not aligned.
    pub(crate) fn new(p: *mut T, cap: usize) -> Result<OutSlice<T>, c_int> {
        match cap {
            0 => checked(p)?,
            _ => checked_non_null(p)?,
        }
        Ok(OutSlice { p, cap })
    }

    /// Writes `value` as item `i`; returns whether there was room for it (`i < cap`).
    ///
    /// # Safety
    /// The pointer given to [`new`](Self::new) is valid for writes of `cap` items.
    pub(crate) unsafe fn put(&self, i: usize, value: T) -> bool {
        if i >= self.cap {
            return false;
        }
        // SAFETY: `i < cap`, so `p` is non-NULL (checked when made) and aligned; the caller
        // promises `cap` writable items.
        unsafe { self.p.add(i).write(value) };
        true
    }
}

/// The `T` at `p`, copied: `ESPV_ERR_NULL` for NULL, `ESPV_ERR_MISALIGNED`.
///
/// # Safety
/// `p` is NULL or points at a readable, initialized `T`.
pub(crate) unsafe fn read<T: Copy>(p: *const T) -> Result<T, c_int> {
    checked_non_null(p)?;
    // SAFETY: non-NULL and aligned (checked); readable and initialized (contract).
    Ok(unsafe { p.read() })
}

/// The `n` items at `p`: `ESPV_ERR_NULL` if `p` is NULL and `n` is not 0,
/// `ESPV_ERR_MISALIGNED` if `p` is not aligned.
///
/// # Safety
/// `p` is NULL or points at `n` readable, initialized items that stay unchanged for `'a`.
pub(crate) unsafe fn slice<'a, T>(p: *const T, n: usize) -> Result<&'a [T], c_int> {
    if n == 0 {
        checked(p)?;
        return Ok(&[]);
    }
    checked_non_null(p)?;
    // SAFETY: non-NULL and aligned (checked); `n` readable items (contract).
    Ok(unsafe { slice::from_raw_parts(p, n) })
}

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

/// The `n` hashes of 32 bytes at `p`, back to back: `ESPV_ERR_INVALID_ARGUMENT` if `32 * n`
/// overflows, `ESPV_ERR_NULL` if `p` is NULL and `n` is not 0.
///
/// # Safety
/// `p` is NULL or points at `32 * n` readable bytes that stay unchanged for `'a`.
pub(crate) unsafe fn hashes<'a>(p: *const u8, n: usize) -> Result<&'a [[u8; 32]], c_int> {
    let len = n.checked_mul(32).ok_or(ESPV_ERR_INVALID_ARGUMENT)?;
    // SAFETY: forwarded contract.
    let all = unsafe { bytes(p, len) }.ok_or(ESPV_ERR_NULL)?;
    Ok(all.as_chunks::<32>().0)
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

/// Copies `N` bytes into the array at `p` unless `p` is NULL; returns whether it wrote.
///
/// # Safety
/// `p` is NULL or points at `N` writable bytes.
pub(crate) unsafe fn put_array<const N: usize>(p: *mut u8, value: &[u8; N]) -> bool {
    if p.is_null() {
        return false;
    }
    // SAFETY: non-NULL and `N` writable bytes (contract); `[u8; N]` has alignment 1.
    unsafe { p.cast::<[u8; N]>().write(*value) };
    true
}
