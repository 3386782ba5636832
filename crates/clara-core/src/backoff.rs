//! How long to wait after the n-th failure in a row: doubling from a base up to
//! a cap, optionally with jitter. The one backoff every retry loop in Clara uses
//! (platform polling, reconnecting adapters, job retries, queue reconnects).

use std::time::Duration;

/// Exponential backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    /// One second, doubling up to a minute.
    fn default() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(60))
    }
}

impl Backoff {
    /// Doubling from `base` up to `max`.
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self { base, max }
    }

    /// The wait after `failures` failures in a row (1 for the first; 0 counts as 1).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.base
            .saturating_mul(1u32 << doublings)
            .min(self.max.max(self.base))
    }

    /// [`Backoff::delay`] with jitter, given a random `jitter` in `[0, 1)`: between
    /// half and all of the full delay, so many clients failing together do not
    /// retry in step. A jitter outside the range is clamped (NaN counts as 0).
    pub fn jittered(&self, failures: u32, jitter: f64) -> Duration {
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.delay(failures).mul_f64(0.5 + jitter / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_from_the_base_up_to_the_cap() {
        let b = Backoff::new(MS * 100, MS * 1000);
        let waits: Vec<u128> = (1..=6).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(u32::MAX), MS * 1000, "no overflow on a long outage");
        assert_eq!(b.delay(0), MS * 100);
    }

    #[test]
    fn jitter_takes_off_up_to_half() {
        let b = Backoff::new(MS * 100, MS * 10_000);
        assert_eq!(b.jittered(3, 0.0), MS * 200);
        assert_eq!(b.jittered(3, 0.5), MS * 300);
        assert_eq!(b.jittered(3, f64::NAN), MS * 200);
        assert_eq!(b.jittered(3, 7.0), MS * 400);
    }

    #[test]
    fn a_cap_below_the_base_waits_the_base() {
        let b = Backoff::new(MS * 500, MS * 100);
        assert_eq!(b.delay(4), MS * 500);
    }
}
