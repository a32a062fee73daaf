//! Time as core sees it: the caller's monotonic clock ([`Instant`], [`Duration`]) and the
//! wall clock a block header's time is compared with ([`UnixTime`]).
//!
//! Core has no clock. The caller passes the time into every call that needs it
//! (see [the caller's loop](crate#the-callers-loop)); these types only keep milliseconds,
//! seconds and instants apart in signatures. smoltcp's `smoltcp::time` is the model.
//!
//! * [`Instant`]: milliseconds since an origin the caller picks (boot, the start of the
//!   program, the first call). Only differences between instants of one clock mean anything;
//!   the clock must not go backwards.
//! * [`Duration`]: a span of milliseconds.
//! * [`UnixTime`]: whole seconds since the Unix epoch, `u32` like a block header's `time`.
//!
//! Arithmetic saturates instead of overflowing or panicking: `Instant + Duration` stops at
//! [`Instant::MAX`] ("never"), `Instant - Duration` at [`Instant::ZERO`], and
//! `Instant - Instant` at [`Duration::ZERO`] when the right side is later.
//!
//! `Display` writes both [`Instant`] and [`Duration`] as whole milliseconds with an `ms`
//! suffix (`1234ms`), and [`UnixTime`] as whole seconds with an `s` suffix (`1700000000s`).

use core::fmt;
use core::ops::{Add, AddAssign, Sub, SubAssign};

/// A point in the caller's monotonic time: milliseconds since an origin the caller picks.
///
/// `Instant + Duration` saturates at [`Instant::MAX`]; `Instant - Duration` saturates at
/// [`Instant::ZERO`]; `Instant - Instant` is the [`Duration`] between them, zero if the right
/// side is the later one (see [`Instant::saturating_duration_since`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Instant {
    millis: u64,
}

impl Instant {
    /// The clock's origin.
    pub const ZERO: Instant = Instant { millis: 0 };
    /// The latest representable instant; a deadline that never comes.
    pub const MAX: Instant = Instant { millis: u64::MAX };

    /// The instant `millis` milliseconds after the origin.
    #[must_use]
    pub const fn from_millis(millis: u64) -> Instant {
        Instant { millis }
    }

    /// The instant `secs` seconds after the origin (saturating at [`Instant::MAX`]).
    #[must_use]
    pub const fn from_secs(secs: u64) -> Instant {
        Instant {
            millis: secs.saturating_mul(1000),
        }
    }

    /// Milliseconds since the origin.
    #[must_use]
    pub const fn millis(self) -> u64 {
        self.millis
    }

    /// The time from `earlier` to `self`; [`Duration::ZERO`] if `earlier` is later.
    #[must_use]
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.millis.saturating_sub(earlier.millis))
    }

    /// `self + duration`, saturating at [`Instant::MAX`]; usable in `const` contexts.
    #[must_use]
    pub const fn saturating_add(self, duration: Duration) -> Instant {
        Instant {
            millis: self.millis.saturating_add(duration.millis),
        }
    }

    /// `self - duration`, saturating at [`Instant::ZERO`]; usable in `const` contexts.
    #[must_use]
    pub const fn saturating_sub(self, duration: Duration) -> Instant {
        Instant {
            millis: self.millis.saturating_sub(duration.millis),
        }
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturates at [`Instant::MAX`].
    fn add(self, rhs: Duration) -> Instant {
        self.saturating_add(rhs)
    }
}

impl AddAssign<Duration> for Instant {
    /// Saturates at [`Instant::MAX`].
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    /// Saturates at [`Instant::ZERO`].
    fn sub(self, rhs: Duration) -> Instant {
        self.saturating_sub(rhs)
    }
}

impl SubAssign<Duration> for Instant {
    /// Saturates at [`Instant::ZERO`].
    fn sub_assign(&mut self, rhs: Duration) {
        *self = *self - rhs;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// The time from `rhs` to `self`; [`Duration::ZERO`] if `rhs` is later.
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Display for Instant {
    /// Milliseconds since the origin: `1234ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.millis)
    }
}

/// A span of time in whole milliseconds.
///
/// Sums saturate at [`Duration::MAX`], differences at [`Duration::ZERO`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Duration {
    millis: u64,
}

impl Duration {
    /// No time.
    pub const ZERO: Duration = Duration { millis: 0 };
    /// The longest representable span.
    pub const MAX: Duration = Duration { millis: u64::MAX };

    /// `millis` milliseconds.
    #[must_use]
    pub const fn from_millis(millis: u64) -> Duration {
        Duration { millis }
    }

    /// `secs` seconds (saturating at [`Duration::MAX`]).
    #[must_use]
    pub const fn from_secs(secs: u64) -> Duration {
        Duration {
            millis: secs.saturating_mul(1000),
        }
    }

    /// The span in milliseconds.
    #[must_use]
    pub const fn millis(self) -> u64 {
        self.millis
    }

    /// The span in whole seconds (rounded down).
    #[must_use]
    pub const fn secs(self) -> u64 {
        self.millis / 1000
    }
}

impl Add for Duration {
    type Output = Duration;
    /// Saturates at [`Duration::MAX`].
    fn add(self, rhs: Duration) -> Duration {
        Duration::from_millis(self.millis.saturating_add(rhs.millis))
    }
}

impl AddAssign for Duration {
    /// Saturates at [`Duration::MAX`].
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub for Duration {
    type Output = Duration;
    /// Saturates at [`Duration::ZERO`].
    fn sub(self, rhs: Duration) -> Duration {
        Duration::from_millis(self.millis.saturating_sub(rhs.millis))
    }
}

impl SubAssign for Duration {
    /// Saturates at [`Duration::ZERO`].
    fn sub_assign(&mut self, rhs: Duration) {
        *self = *self - rhs;
    }
}

impl fmt::Display for Duration {
    /// Whole milliseconds: `1234ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.millis)
    }
}

impl From<core::time::Duration> for Duration {
    /// Whole milliseconds: sub-millisecond parts are dropped, and spans longer than
    /// [`Duration::MAX`] saturate.
    fn from(d: core::time::Duration) -> Duration {
        Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

impl From<Duration> for core::time::Duration {
    fn from(d: Duration) -> core::time::Duration {
        core::time::Duration::from_millis(d.millis)
    }
}

/// Wall-clock time: whole seconds since the Unix epoch, a `u32` like a block header's `time`
/// field (enough until 2106).
///
/// Only the header verifier's "not more than two hours in the future" rule uses it
/// ([`crate::chain::HeaderVerifier::set_clock`], [`crate::sync::HeaderSync::set_clock`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct UnixTime {
    secs: u32,
}

impl UnixTime {
    /// The Unix epoch, 1970-01-01T00:00:00Z.
    pub const EPOCH: UnixTime = UnixTime { secs: 0 };

    /// `secs` seconds after the Unix epoch.
    #[must_use]
    pub const fn from_secs(secs: u32) -> UnixTime {
        UnixTime { secs }
    }

    /// Seconds since the Unix epoch.
    #[must_use]
    pub const fn secs(self) -> u32 {
        self.secs
    }
}

impl fmt::Display for UnixTime {
    /// Seconds since the Unix epoch: `1700000000s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.secs)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
    const fn at(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn constructors_and_accessors() {
        assert_eq!(Instant::ZERO.millis(), 0);
        assert_eq!(Instant::MAX.millis(), u64::MAX);
        assert_eq!(at(1234).millis(), 1234);
        assert_eq!(Instant::from_secs(12), at(12_000));
        assert_eq!(Instant::from_secs(u64::MAX), Instant::MAX);
        assert_eq!(Instant::default(), Instant::ZERO);
        assert_eq!(Duration::ZERO.millis(), 0);
        assert_eq!(Duration::MAX.millis(), u64::MAX);
        assert_eq!(Duration::from_secs(40), ms(40_000));
        assert_eq!(Duration::from_secs(u64::MAX), Duration::MAX);
        assert_eq!(ms(40_999).secs(), 40);
        assert_eq!(Duration::default(), Duration::ZERO);
        assert_eq!(UnixTime::from_secs(1_700_000_000).secs(), 1_700_000_000);
        assert_eq!(UnixTime::default(), UnixTime::EPOCH);
    }

    #[test]
    fn instant_plus_duration_saturates_at_max() {
        assert_eq!(at(1000) + ms(234), at(1234));
        assert_eq!(at(u64::MAX - 1) + ms(1), Instant::MAX);
        assert_eq!(at(u64::MAX - 1) + ms(2), Instant::MAX);
        assert_eq!(Instant::MAX + Duration::MAX, Instant::MAX);
        let mut t = at(5);
        t += ms(5);
        assert_eq!(t, at(10));
        t += Duration::MAX;
        assert_eq!(t, Instant::MAX);
        assert_eq!(at(7).saturating_add(ms(3)), at(10));
    }

    #[test]
    fn instant_minus_duration_saturates_at_zero() {
        assert_eq!(at(1234) - ms(234), at(1000));
        assert_eq!(at(1) - ms(1), Instant::ZERO);
        assert_eq!(at(1) - ms(2), Instant::ZERO);
        assert_eq!(Instant::ZERO - Duration::MAX, Instant::ZERO);
        let mut t = at(10);
        t -= ms(4);
        assert_eq!(t, at(6));
        t -= ms(100);
        assert_eq!(t, Instant::ZERO);
        assert_eq!(at(7).saturating_sub(ms(3)), at(4));
    }

    #[test]
    fn instant_minus_instant_saturates_at_zero() {
        assert_eq!(at(1234) - at(1000), ms(234));
        assert_eq!(at(1000) - at(1000), Duration::ZERO);
        assert_eq!(at(1000) - at(1234), Duration::ZERO);
        assert_eq!(Instant::MAX - Instant::ZERO, Duration::MAX);
        assert_eq!(Instant::ZERO - Instant::MAX, Duration::ZERO);
        assert_eq!(at(50).saturating_duration_since(at(20)), ms(30));
        assert_eq!(at(20).saturating_duration_since(at(50)), Duration::ZERO);
    }

    #[test]
    fn duration_sums_and_differences_saturate() {
        assert_eq!(ms(2) + ms(3), ms(5));
        assert_eq!(Duration::MAX + ms(1), Duration::MAX);
        assert_eq!(ms(5) - ms(3), ms(2));
        assert_eq!(ms(3) - ms(5), Duration::ZERO);
        let mut d = ms(1);
        d += ms(1);
        assert_eq!(d, ms(2));
        d += Duration::MAX;
        assert_eq!(d, Duration::MAX);
        d -= Duration::MAX;
        assert_eq!(d, Duration::ZERO);
        d -= ms(1);
        assert_eq!(d, Duration::ZERO);
    }

    #[test]
    fn ordering() {
        assert!(at(1) < at(2));
        assert!(Instant::ZERO < Instant::MAX);
        assert_eq!(at(3).max(at(9)), at(9));
        assert!(ms(1) < ms(2));
        assert!(Duration::ZERO < Duration::MAX);
        assert!(UnixTime::from_secs(1) < UnixTime::from_secs(2));
    }

    #[test]
    fn conversions_with_core_duration() {
        use core::time::Duration as Core;
        assert_eq!(Duration::from(Core::from_millis(1234)), ms(1234));
        // Sub-millisecond parts are dropped, not rounded.
        assert_eq!(Duration::from(Core::from_micros(1999)), ms(1));
        assert_eq!(Duration::from(Core::from_nanos(999_999)), Duration::ZERO);
        // Longer than u64::MAX milliseconds saturates.
        assert_eq!(Duration::from(Core::MAX), Duration::MAX);
        assert_eq!(
            Duration::from(Core::from_millis(u64::MAX)),
            Duration::MAX,
            "exactly the maximum"
        );
        assert_eq!(Core::from(ms(1234)), Core::from_millis(1234));
        assert_eq!(Core::from(Duration::MAX), Core::from_millis(u64::MAX));
        assert_eq!(Core::from(Duration::ZERO), Core::ZERO);
    }

    #[test]
    fn display() {
        assert_eq!(at(1234).to_string(), "1234ms");
        assert_eq!(ms(40_000).to_string(), "40000ms");
        assert_eq!(Duration::ZERO.to_string(), "0ms");
        assert_eq!(
            UnixTime::from_secs(1_700_000_000).to_string(),
            "1700000000s"
        );
    }
}
