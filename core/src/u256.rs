//! A small unsigned 256-bit integer: just what targets, work and retargets need.
//!
//! Limbs are little-endian `u64`s. Arithmetic that could overflow says so in its name or its
//! return type; nothing here panics.

use core::cmp::Ordering;
use core::fmt;

/// Unsigned 256-bit integer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct U256([u64; 4]);

impl U256 {
    /// Zero.
    pub const ZERO: U256 = U256([0; 4]);
    /// One.
    pub const ONE: U256 = U256([1, 0, 0, 0]);
    /// 2^256 - 1.
    pub const MAX: U256 = U256([u64::MAX; 4]);

    /// From little-endian limbs.
    pub const fn from_limbs(limbs: [u64; 4]) -> Self {
        Self(limbs)
    }

    /// From a `u64`.
    pub const fn from_u64(v: u64) -> Self {
        Self([v, 0, 0, 0])
    }

    /// From 32 big-endian bytes.
    pub const fn from_be_bytes(b: [u8; 32]) -> Self {
        let mut limbs = [0u64; 4];
        let mut i = 0;
        while i < 4 {
            let mut w = 0u64;
            let mut j = 0;
            while j < 8 {
                w = (w << 8) | b[(3 - i) * 8 + j] as u64;
                j += 1;
            }
            limbs[i] = w;
            i += 1;
        }
        Self(limbs)
    }

    /// From 32 little-endian bytes (a hash in internal order read as a number).
    #[inline]
    pub fn from_le_bytes(b: &[u8; 32]) -> Self {
        let limb = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        Self([limb(0), limb(1), limb(2), limb(3)])
    }

    /// To 32 big-endian bytes.
    pub fn to_be_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, limb) in self.0.iter().enumerate() {
            out[(3 - i) * 8..(4 - i) * 8].copy_from_slice(&limb.to_be_bytes());
        }
        out
    }

    /// The little-endian limbs.
    pub const fn limbs(self) -> [u64; 4] {
        self.0
    }

    /// True when zero.
    pub const fn is_zero(self) -> bool {
        self.0[0] == 0 && self.0[1] == 0 && self.0[2] == 0 && self.0[3] == 0
    }

    /// Number of significant bits (0 for zero).
    pub const fn bits(self) -> u32 {
        let mut i = 4;
        while i > 0 {
            i -= 1;
            if self.0[i] != 0 {
                return 64 * i as u32 + (64 - self.0[i].leading_zeros());
            }
        }
        0
    }

    /// The low 64 bits.
    pub const fn low_u64(self) -> u64 {
        self.0[0]
    }

    /// Addition; `None` on overflow.
    pub const fn checked_add(self, rhs: U256) -> Option<U256> {
        let mut out = [0u64; 4];
        let mut carry = false;
        let mut i = 0;
        while i < 4 {
            let (s1, c1) = self.0[i].overflowing_add(rhs.0[i]);
            let (s2, c2) = s1.overflowing_add(carry as u64);
            out[i] = s2;
            carry = c1 || c2;
            i += 1;
        }
        if carry { None } else { Some(U256(out)) }
    }

    /// Addition that stops at [`U256::MAX`].
    pub const fn saturating_add(self, rhs: U256) -> U256 {
        match self.checked_add(rhs) {
            Some(v) => v,
            None => U256::MAX,
        }
    }

    /// Subtraction; `None` when `rhs > self`.
    pub const fn checked_sub(self, rhs: U256) -> Option<U256> {
        let mut out = [0u64; 4];
        let mut borrow = false;
        let mut i = 0;
        while i < 4 {
            let (d1, b1) = self.0[i].overflowing_sub(rhs.0[i]);
            let (d2, b2) = d1.overflowing_sub(borrow as u64);
            out[i] = d2;
            borrow = b1 || b2;
            i += 1;
        }
        if borrow { None } else { Some(U256(out)) }
    }

    /// Bitwise not.
    pub const fn not(self) -> U256 {
        U256([!self.0[0], !self.0[1], !self.0[2], !self.0[3]])
    }

    /// Left shift; bits shifted past 2^255 are lost.
    pub const fn shl(self, shift: u32) -> U256 {
        if shift >= 256 {
            return U256::ZERO;
        }
        let limbs = (shift / 64) as usize;
        let bits = shift % 64;
        let mut out = [0u64; 4];
        let mut i = 3;
        loop {
            if i >= limbs {
                let src = i - limbs;
                let mut v = self.0[src] << bits;
                if bits > 0 && src > 0 {
                    v |= self.0[src - 1] >> (64 - bits);
                }
                out[i] = v;
            }
            if i == 0 {
                break;
            }
            i -= 1;
        }
        U256(out)
    }

    /// Right shift.
    pub const fn shr(self, shift: u32) -> U256 {
        if shift >= 256 {
            return U256::ZERO;
        }
        let limbs = (shift / 64) as usize;
        let bits = shift % 64;
        let mut out = [0u64; 4];
        let mut i = 0;
        while i + limbs < 4 {
            let src = i + limbs;
            let mut v = self.0[src] >> bits;
            if bits > 0 && src + 1 < 4 {
                v |= self.0[src + 1] << (64 - bits);
            }
            out[i] = v;
            i += 1;
        }
        U256(out)
    }

    /// `self * rhs / div` computed with a 320-bit intermediate, so it is exact whenever the
    /// quotient fits. `None` when `div` is zero or the quotient overflows 256 bits.
    pub fn mul_div_u64(self, rhs: u64, div: u64) -> Option<U256> {
        if div == 0 {
            return None;
        }
        let mut wide = [0u64; 5];
        let mut carry = 0u128;
        for (i, limb) in self.0.iter().enumerate() {
            let p = u128::from(*limb) * u128::from(rhs) + carry;
            wide[i] = p as u64;
            carry = p >> 64;
        }
        wide[4] = carry as u64;
        let mut rem = 0u128;
        for limb in wide.iter_mut().rev() {
            let cur = (rem << 64) | u128::from(*limb);
            *limb = (cur / u128::from(div)) as u64;
            rem = cur % u128::from(div);
        }
        if wide[4] != 0 {
            return None;
        }
        Some(U256([wide[0], wide[1], wide[2], wide[3]]))
    }

    /// Quotient of `self / rhs` (binary long division); `None` when `rhs` is zero.
    pub fn checked_div(self, rhs: U256) -> Option<U256> {
        if rhs.is_zero() {
            return None;
        }
        if self < rhs {
            return Some(U256::ZERO);
        }
        let shift = self.bits() - rhs.bits();
        let mut divisor = rhs.shl(shift);
        let mut rem = self;
        let mut quot = U256::ZERO;
        let mut s = shift as i32;
        while s >= 0 {
            if let Some(r) = rem.checked_sub(divisor) {
                rem = r;
                quot.0[(s / 64) as usize] |= 1u64 << (s % 64);
            }
            divisor = divisor.shr(1);
            s -= 1;
        }
        Some(quot)
    }
}

impl Ord for U256 {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        for i in (0..4).rev() {
            match self.0[i].cmp(&other.0[i]) {
                Ordering::Equal => continue,
                o => return o,
            }
        }
        Ordering::Equal
    }
}

impl PartialOrd for U256 {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "U256(0x{self:x})")
    }
}

impl fmt::LowerHex for U256 {
    /// Full-width, 64 digits, big-endian.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::hex::fmt_hex(f, &self.to_be_bytes(), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn to_u128(v: U256) -> Option<u128> {
        let l = v.limbs();
        (l[2] == 0 && l[3] == 0).then(|| (u128::from(l[1]) << 64) | u128::from(l[0]))
    }
    fn from_u128(v: u128) -> U256 {
        U256::from_limbs([v as u64, (v >> 64) as u64, 0, 0])
    }

    proptest! {
        #[test]
        fn arithmetic_matches_u128(a in 0..u128::MAX >> 1, b in 0..u128::MAX >> 1, s in 0u32..120) {
            let (x, y) = (from_u128(a), from_u128(b));
            prop_assert_eq!(to_u128(x.checked_add(y).unwrap()), Some(a + b));
            prop_assert_eq!(x.checked_sub(y).and_then(to_u128), a.checked_sub(b));
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            prop_assert_eq!(x.checked_div(y).and_then(to_u128), a.checked_div(b));
            prop_assert_eq!(to_u128(x.shr(s)), Some(a >> s));
            prop_assert_eq!(to_u128(x.shl(s).shr(s)), Some(a), "no bit is lost below 2^256");
            prop_assert_eq!(U256::from_be_bytes(x.to_be_bytes()), x);
        }

        #[test]
        fn mul_div_is_exact(a in any::<u64>(), m in any::<u64>(), d in 1u64..) {
            let got = U256::from_u64(a).mul_div_u64(m, d).unwrap();
            prop_assert_eq!(to_u128(got), Some(u128::from(a) * u128::from(m) / u128::from(d)));
        }
    }

    #[test]
    fn edges() {
        assert_eq!(U256::MAX.checked_add(U256::ONE), None);
        assert_eq!(U256::MAX.saturating_add(U256::ONE), U256::MAX);
        assert_eq!(U256::ONE.shl(255).bits(), 256);
        assert_eq!(U256::ONE.shl(256), U256::ZERO);
        assert_eq!(U256::MAX.mul_div_u64(2, 1), None);
        assert_eq!(U256::ONE.mul_div_u64(1, 0), None);
        assert_eq!(U256::ONE.checked_div(U256::ZERO), None);
        assert_eq!(U256::MAX.checked_div(U256::MAX), Some(U256::ONE));
    }
}
