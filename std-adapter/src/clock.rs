//! The one place where host time becomes core time (see core's
//! [caller's loop](electrum_spv_core#the-callers-loop)).
//!
//! A [`Clock`] fixes an origin on tokio's monotonic clock (which is the std clock unless a
//! test pauses tokio's time); a core [`Instant`](time::Instant) is the time elapsed since that
//! origin, in whole milliseconds, and a core deadline converts back to a tokio instant to sleep
//! until. [`unix_now`] is the wall clock as core's [`UnixTime`](time::UnixTime).

use electrum_spv_core::time;

/// An origin on the host's monotonic clock, against which core instants are measured.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    origin: tokio::time::Instant,
}

impl Clock {
    /// A clock whose origin is now: [`Clock::now`] starts at [`time::Instant::ZERO`].
    pub(crate) fn start() -> Clock {
        Clock {
            origin: tokio::time::Instant::now(),
        }
    }

    /// Now, as a core instant.
    pub(crate) fn now(&self) -> time::Instant {
        self.at(tokio::time::Instant::now())
    }

    /// A host instant (std or tokio) as a core instant: milliseconds since the origin, sub-
    /// millisecond parts dropped; an instant before the origin is the origin.
    pub(crate) fn at(&self, t: impl Into<tokio::time::Instant>) -> time::Instant {
        let since = t.into().saturating_duration_since(self.origin);
        time::Instant::ZERO + time::Duration::from(since)
    }

    /// A core instant (a deadline) as a tokio instant to sleep until; one too far to represent
    /// is a year away.
    pub(crate) fn deadline(&self, t: time::Instant) -> tokio::time::Instant {
        let since = std::time::Duration::from(t - time::Instant::ZERO);
        self.origin
            .checked_add(since)
            .unwrap_or_else(|| tokio::time::Instant::now() + FAR)
    }
}

/// A deadline too far to represent: about a year away.
const FAR: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// The wall clock as core's [`UnixTime`](time::UnixTime) (the epoch if the system clock is
/// before it, `u32::MAX` seconds after 2106).
pub(crate) fn unix_now() -> time::UnixTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    time::UnixTime::from_secs(u32::try_from(secs).unwrap_or(u32::MAX))
}

/// Unix milliseconds as a core instant whose origin is the Unix epoch. The relay's broadcast
/// table runs on the wall clock, as the pool's event times do (`time_ms` of an `inv`), so that
/// announcements before and after a broadcast compare; nothing else does.
pub(crate) fn unix_instant(unix_ms: u64) -> time::Instant {
    time::Instant::from_millis(unix_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn core_instants_are_milliseconds_since_the_origin_and_back() {
        let clock = Clock::start();
        assert_eq!(clock.now(), time::Instant::ZERO);
        tokio::time::advance(std::time::Duration::from_micros(1_500_900)).await;
        assert_eq!(clock.now(), time::Instant::from_millis(1_500));
        let deadline = time::Instant::from_millis(2_000);
        assert_eq!(
            clock.deadline(deadline) - clock.origin,
            std::time::Duration::from_secs(2)
        );
        assert_eq!(clock.at(clock.deadline(deadline)), deadline);
        // Before the origin is the origin; a deadline past what tokio holds is far away.
        assert_eq!(
            clock.at(clock.origin - std::time::Duration::from_secs(1)),
            time::Instant::ZERO
        );
        assert!(clock.deadline(time::Instant::MAX) > tokio::time::Instant::now() + FAR / 2);
    }
}
