//! Memory the caller gives a state machine: a slice it lends, or (feature `alloc`) one it
//! hands over.
//!
//! smoltcp's `ManagedSlice` is the model. A session, a P2P peer or an engine never chooses
//! its own buffer sizes and never allocates: firmware lends `static` or stack arrays sized at
//! run time, a std program hands over boxed slices. Either way constructing the state machine
//! moves a pointer and a length, not the buffers, so it costs a few hundred bytes of stack
//! whatever the buffers' sizes.

use core::fmt;
use core::ops::{Deref, DerefMut};

/// A slice of `T` the caller provides: borrowed for `'a`, or owned (feature `alloc`).
pub enum Buffer<'a, T: 'a> {
    /// Memory lent by the caller for the state machine's lifetime.
    Borrowed(&'a mut [T]),
    /// Memory handed over to the state machine.
    #[cfg(feature = "alloc")]
    Owned(alloc::boxed::Box<[T]>),
}

impl<T> Buffer<'_, T> {
    /// No memory: a buffer of length 0 (what a state machine holds before it is given any).
    pub const fn empty() -> Self {
        Buffer::Borrowed(&mut [])
    }
}

impl<T> Default for Buffer<'_, T> {
    fn default() -> Self {
        Self::empty()
    }
}

#[cfg(feature = "alloc")]
impl<T: Clone> Buffer<'static, T> {
    /// `len` copies of `value` on the heap.
    pub fn filled(value: T, len: usize) -> Self {
        Buffer::Owned(alloc::vec![value; len].into_boxed_slice())
    }
}

impl<T> Deref for Buffer<'_, T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Buffer::Borrowed(s) => s,
            #[cfg(feature = "alloc")]
            Buffer::Owned(b) => b,
        }
    }
}

impl<T> DerefMut for Buffer<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            Buffer::Borrowed(s) => s,
            #[cfg(feature = "alloc")]
            Buffer::Owned(b) => b,
        }
    }
}

impl<'a, T> From<&'a mut [T]> for Buffer<'a, T> {
    fn from(slice: &'a mut [T]) -> Self {
        Buffer::Borrowed(slice)
    }
}

impl<'a, T, const N: usize> From<&'a mut [T; N]> for Buffer<'a, T> {
    fn from(array: &'a mut [T; N]) -> Self {
        Buffer::Borrowed(array)
    }
}

#[cfg(feature = "alloc")]
impl<T> From<alloc::boxed::Box<[T]>> for Buffer<'static, T> {
    fn from(boxed: alloc::boxed::Box<[T]>) -> Self {
        Buffer::Owned(boxed)
    }
}

#[cfg(feature = "alloc")]
impl<T> From<alloc::vec::Vec<T>> for Buffer<'static, T> {
    fn from(vec: alloc::vec::Vec<T>) -> Self {
        Buffer::Owned(vec.into_boxed_slice())
    }
}

impl<T> fmt::Debug for Buffer<'_, T> {
    /// The length only: the contents are the state machine's business.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Buffer::Borrowed(_) => "Borrowed",
            #[cfg(feature = "alloc")]
            Buffer::Owned(_) => "Owned",
        };
        write!(f, "Buffer::{kind}(len {})", self.len())
    }
}

/// A buffer given to a state machine is shorter than it needs: `len` bytes (or items) where at
/// least `min` are needed. The state machine is not built; nothing else is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooSmall {
    /// Its length.
    pub len: usize,
    /// The least length that works.
    pub min: usize,
}

impl fmt::Display for TooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a buffer of {} is too small: at least {} needed",
            self.len, self.min
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TooSmall {}

impl<T> Buffer<'_, T> {
    /// `Ok(self)` if it holds at least `min` items, else [`TooSmall`].
    pub fn at_least(self, min: usize) -> Result<Self, TooSmall> {
        let len = self.len();
        if len < min {
            return Err(TooSmall { len, min });
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_is_the_callers_slice() {
        let mut mem = [1u8, 2, 3];
        let mut b = Buffer::from(&mut mem);
        b[0] = 9;
        assert_eq!(&*b, &[9, 2, 3]);
        assert_eq!(format!("{b:?}"), "Buffer::Borrowed(len 3)");
        drop(b);
        assert_eq!(mem[0], 9);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn owned_has_the_length_asked_for() {
        let b = Buffer::filled(0u8, 5);
        assert_eq!(b.len(), 5);
        assert_eq!(format!("{b:?}"), "Buffer::Owned(len 5)");
        assert_eq!(Buffer::from(vec![1u8, 2]).len(), 2);
    }
}
