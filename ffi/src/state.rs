//! Rust state kept in fixed-size C structs the caller allocates (`espv_verifier`,
//! `espv_status_hasher`): a magic word, then the value. Sizes and alignments are checked at
//! compile time for every target.

use core::ffi::c_int;
use core::mem::{align_of, size_of};
use core::ptr;

use crate::ptr::checked_non_null;
use crate::status::ESPV_ERR_NOT_INITIALIZED;

/// The layout written into a blob.
#[repr(C)]
struct Tagged<T> {
    magic: u64,
    value: T,
}

/// Writes `value` into the blob at `blob`, tagged with `magic`.
///
/// # Safety
/// `blob` is NULL or points at a writable `B`.
pub(crate) unsafe fn init<B, T>(blob: *mut B, magic: u64, value: T) -> Result<(), c_int> {
    const {
        assert!(size_of::<Tagged<T>>() <= size_of::<B>());
        assert!(align_of::<Tagged<T>>() <= align_of::<B>());
    }
    checked_non_null(blob)?;
    // SAFETY: non-NULL, aligned for `B` and so for `Tagged<T>` (checked above), `B` is at
    // least as large; `write` does not read the old contents.
    unsafe { blob.cast::<Tagged<T>>().write(Tagged { magic, value }) };
    Ok(())
}

/// The value in a blob initialized by [`init`] with the same `magic` and `T`.
///
/// # Safety
/// `blob` is NULL or points at a `B` not otherwise referenced during `'a`; if its magic is
/// `magic`, it was initialized by [`init::<B, T>`](init).
pub(crate) unsafe fn get<'a, B, T>(blob: *mut B, magic: u64) -> Result<&'a mut T, c_int> {
    const {
        assert!(size_of::<Tagged<T>>() <= size_of::<B>());
        assert!(align_of::<Tagged<T>>() <= align_of::<B>());
    }
    checked_non_null(blob)?;
    let tagged = blob.cast::<Tagged<T>>();
    // SAFETY: non-NULL and aligned; the magic word is the first field of every blob.
    if unsafe { ptr::addr_of!((*tagged).magic).read() } != magic {
        return Err(ESPV_ERR_NOT_INITIALIZED);
    }
    // SAFETY: the magic says `init` wrote a `Tagged<T>` here; not aliased (contract).
    Ok(unsafe { &mut (*tagged).value })
}

/// Clears the magic of a blob so that it is no longer taken as initialized.
///
/// # Safety
/// `blob` is NULL or points at a writable `B` of at least 8 bytes, aligned to 8.
pub(crate) unsafe fn clear<B>(blob: *mut B) {
    if checked_non_null(blob).is_ok() {
        // SAFETY: non-NULL, aligned, and every blob starts with its 8-byte magic.
        unsafe { blob.cast::<u64>().write(0) };
    }
}
