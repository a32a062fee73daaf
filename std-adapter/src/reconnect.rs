//! When and how often a lost connection is opened again.

use std::hash::BuildHasher;
use std::time::Duration;

/// Reconnection with exponential backoff and jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Delay before the first attempt.
    pub initial: Duration,
    /// Longest delay between attempts.
    pub max: Duration,
    /// Give up after this many failed attempts in a row (`None`: never).
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    /// 250 ms, doubling up to 30 s, never giving up.
    fn default() -> Self {
        ReconnectPolicy {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
            max_attempts: None,
        }
    }
}

impl ReconnectPolicy {
    /// The delay before attempt `n` (1-based): `initial * 2^(n-1)`, capped at `max`, then
    /// scaled by a random factor in 0.75..1.25 so that many clients do not retry in step.
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        let base = self.initial.saturating_mul(1u32 << doublings).min(self.max);
        // Randomness from the standard library's per-process hash keys: enough for jitter.
        let noise = std::collections::hash_map::RandomState::new().hash_one(attempt);
        let factor = 0.75 + (noise % 1000) as f64 / 2000.0;
        base.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = ReconnectPolicy::default();
        for attempt in 1..40 {
            let d = p.delay(attempt);
            let base = (p.initial * 2u32.pow(attempt.saturating_sub(1).min(20))).min(p.max);
            assert!(
                d >= base.mul_f64(0.75) && d <= base.mul_f64(1.25),
                "{attempt}: {d:?}"
            );
        }
        assert!(p.delay(100) <= Duration::from_millis(37_500));
    }
}
