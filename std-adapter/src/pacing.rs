//! Request pacing by ElectrumX's cost model (PROTOCOL.md §1.5): a token bucket of cost units
//! per server, in thousandths of a unit, as core's [`Pacing`] describes it.
//!
//! Headers use core's [`Pacing::ELECTRUMX_DEFAULT`] (a burst of 8 full chunks under the soft
//! limit). Proofs and transactions use [`PROOF_PACING`]: ElectrumX only slows a session down
//! above its soft limit of 1,000 units and disconnects at the hard limit of 10,000, so a big
//! wallet may spend up to 8,000 units at once and then about one unit per second.

use electrum_spv_core::sync::headers::Pacing;

/// ElectrumX's cost of a `blockchain.transaction.get_merkle` on a full mainnet block, with
/// its reply's bandwidth (about 2 units), in thousandths.
pub const MERKLE_COST_MILLI: u64 = 2_500;
/// ElectrumX's cost of a `blockchain.transaction.get` (1 unit) with a typical reply's
/// bandwidth, in thousandths.
pub const TX_COST_MILLI: u64 = 1_500;
/// Proof and transaction requests: 8,000 units at once (under ElectrumX's hard limit of
/// 10,000 with the header burst beside it), then ElectrumX's decay of about 1 unit/s.
pub const PROOF_PACING: Pacing = Pacing {
    burst_milli: 8_000_000,
    refill_milli_per_s: 1_000,
};

/// A token bucket of cost, refilled with time.
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    pacing: Pacing,
    tokens: u64,
    at: tokio::time::Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(pacing: Pacing) -> Bucket {
        Bucket {
            pacing,
            tokens: pacing.burst_milli,
            at: tokio::time::Instant::now(),
        }
    }

    /// Waits until `cost` is available, then spends it (a cost above the burst waits for a
    /// full bucket).
    pub async fn take(&mut self, cost: u64) {
        loop {
            let now = tokio::time::Instant::now();
            let elapsed = now.duration_since(self.at).as_millis();
            let add = u64::try_from(
                elapsed.saturating_mul(u128::from(self.pacing.refill_milli_per_s)) / 1000,
            )
            .unwrap_or(u64::MAX);
            self.tokens = self.tokens.saturating_add(add).min(self.pacing.burst_milli);
            self.at = now;
            let need = cost.min(self.pacing.burst_milli);
            if self.tokens >= need {
                self.tokens -= need;
                return;
            }
            let missing = need - self.tokens;
            let rate = self.pacing.refill_milli_per_s.max(1);
            let wait_ms = missing.saturating_mul(1000) / rate + 1;
            crate::trace::event_debug!(wait_ms, cost, "paced");
            tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_refill_rate() {
        let mut b = Bucket::new(Pacing {
            burst_milli: 10_000,
            refill_milli_per_s: 1_000,
        });
        let start = tokio::time::Instant::now();
        for _ in 0..4 {
            b.take(2_500).await;
        }
        assert_eq!(start.elapsed().as_secs(), 0);
        b.take(2_500).await;
        let waited = start.elapsed().as_millis();
        assert!((2_500..2_600).contains(&waited), "{waited} ms");
    }
}
