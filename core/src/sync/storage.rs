//! Tables an engine keeps in storage its caller owns.
//!
//! An engine does not decide how much memory it has: firmware lends it a slice or an array
//! sized for its device (a static, or a buffer on a task's stack), and a program with a heap
//! lends it a `Vec` that grows one slot at a time when the table is full (feature `alloc`), as
//! smoltcp's `ManagedSlice` does for its socket set. The engine only ever sees `&[X]`.

/// Storage for a table of `X`: a fixed slice or array, or (feature `alloc`) a growing `Vec`.
pub trait Slots<X> {
    /// The slots.
    fn slots(&self) -> &[X];
    /// The slots, to change them.
    fn slots_mut(&mut self) -> &mut [X];
    /// Adds one empty slot at the end if the storage can grow; `false` for fixed storage.
    fn grow(&mut self) -> bool {
        false
    }
}

impl<X> Slots<X> for &mut [X] {
    fn slots(&self) -> &[X] {
        self
    }
    fn slots_mut(&mut self) -> &mut [X] {
        self
    }
}

impl<X, const N: usize> Slots<X> for [X; N] {
    fn slots(&self) -> &[X] {
        self
    }
    fn slots_mut(&mut self) -> &mut [X] {
        self
    }
}

#[cfg(feature = "alloc")]
impl<X: Default> Slots<X> for alloc::vec::Vec<X> {
    fn slots(&self) -> &[X] {
        self
    }
    fn slots_mut(&mut self) -> &mut [X] {
        self
    }
    fn grow(&mut self) -> bool {
        self.push(X::default());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Slots;

    #[test]
    fn fixed_storage_does_not_grow() {
        let mut array = [0u8; 2];
        assert!(!array.grow());
        let mut backing = [0u8; 3];
        let mut slice: &mut [u8] = &mut backing;
        assert!(!slice.grow());
        assert_eq!(slice.slots().len(), 3);
    }

    // The `Vec` storage exists with `alloc` (on in workspace runs, where other members ask for
    // `std`).
    #[cfg(feature = "alloc")]
    #[test]
    fn a_vec_grows() {
        let mut vec: Vec<u8> = Vec::new();
        assert!(vec.grow());
        assert_eq!(vec.slots(), &[0]);
    }
}
