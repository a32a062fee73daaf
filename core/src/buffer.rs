//! Memory the caller gives a state machine: a slice it lends, or (feature `alloc`) one it
//! hands over, at its full length or growing on demand up to a cap.
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
    /// Memory handed over that starts empty and grows, filled with `T::default()`, as the
    /// state machine needs it ([`Buffer::grow_to`]), never beyond `cap` elements: a large
    /// capacity costs only what is used of it. Its length (the slice it derefs to) is what
    /// has been grown so far; [`Buffer::capacity`] is `cap`.
    /// (Boxed, so a buffer stays three words whatever its kind.)
    #[cfg(feature = "alloc")]
    Growing(alloc::boxed::Box<Growable<T>>),
}

/// The memory of a [`Buffer::Growing`]: the elements grown so far and the most it may hold.
#[cfg(feature = "alloc")]
#[derive(Debug)]
pub struct Growable<T> {
    vec: alloc::vec::Vec<T>,
    cap: usize,
}

impl<T> Buffer<'_, T> {
    /// No memory: a buffer of length 0 (what a state machine holds before it is given any).
    pub const fn empty() -> Self {
        Buffer::Borrowed(&mut [])
    }

    /// The most elements this buffer can hold: its length, except for a
    /// growing one (`Buffer::Growing`, feature `alloc`), which may grow to its cap.
    pub fn capacity(&self) -> usize {
        match self {
            #[cfg(feature = "alloc")]
            Buffer::Growing(g) => g.cap,
            _ => self.len(),
        }
    }

    /// `Ok(self)` if it holds at least `min` items, else [`TooSmall`].
    pub fn at_least(self, min: usize) -> Result<Self, TooSmall> {
        let len = self.len();
        if len < min {
            return Err(TooSmall { len, min });
        }
        Ok(self)
    }
}

impl<T: Clone + Default> Buffer<'_, T> {
    /// Makes the buffer at least `min(n, capacity)` elements long and returns its length. Only
    /// a growing one (`Buffer::Growing`, feature `alloc`) grows: to `n`, or to twice its
    /// length if that is more (so growing to the cap element by element copies each element a
    /// bounded number of times), but never past its cap. The other kinds are as long as they
    /// will ever be.
    pub fn grow_to(&mut self, n: usize) -> usize {
        #[cfg(feature = "alloc")]
        if let Buffer::Growing(g) = self {
            if g.vec.len() < n {
                let len = n.max(g.vec.len().saturating_mul(2)).min(g.cap);
                if len > g.vec.len() {
                    g.vec.resize(len, T::default());
                }
            }
            return g.vec.len();
        }
        // Without `alloc` no buffer grows: `n` only matters to a growing one.
        let _ = n;
        self.len()
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

    /// An empty [`Buffer::Growing`] that may grow to `cap` elements: nothing is allocated
    /// until the state machine needs it.
    pub fn growing(cap: usize) -> Self {
        Buffer::Growing(alloc::boxed::Box::new(Growable {
            vec: alloc::vec::Vec::new(),
            cap,
        }))
    }
}

impl<T> Deref for Buffer<'_, T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Buffer::Borrowed(s) => s,
            #[cfg(feature = "alloc")]
            Buffer::Owned(b) => b,
            #[cfg(feature = "alloc")]
            Buffer::Growing(g) => &g.vec,
        }
    }
}

impl<T> DerefMut for Buffer<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            Buffer::Borrowed(s) => s,
            #[cfg(feature = "alloc")]
            Buffer::Owned(b) => b,
            #[cfg(feature = "alloc")]
            Buffer::Growing(g) => &mut g.vec,
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
            #[cfg(feature = "alloc")]
            Buffer::Growing(g) => {
                return write!(f, "Buffer::Growing(len {}, cap {})", self.len(), g.cap);
            }
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

    #[cfg(feature = "alloc")]
    #[test]
    fn growing_grows_on_demand_up_to_its_cap_and_keeps_its_contents() {
        let mut b = Buffer::<u8>::growing(100);
        assert_eq!((b.len(), b.capacity()), (0, 100));
        assert_eq!(b.grow_to(3), 3);
        b.copy_from_slice(&[1, 2, 3]);
        // Doubling when that is more than asked; never past the cap.
        assert_eq!(b.grow_to(4), 6);
        assert_eq!(&b[..4], &[1, 2, 3, 0]);
        assert_eq!(b.grow_to(2), 6);
        assert_eq!(b.grow_to(1000), 100);
        assert_eq!(b.capacity(), 100);
        assert_eq!(format!("{b:?}"), "Buffer::Growing(len 100, cap 100)");
        // The other kinds never grow.
        let mut owned = Buffer::filled(0u8, 5);
        assert_eq!((owned.grow_to(50), owned.capacity()), (5, 5));
        // Three words, as the other kinds.
        assert_eq!(size_of::<Buffer<'_, u8>>(), 3 * size_of::<usize>());
    }
}
