//! How long to wait before reconnecting: doubling from `initial` up to `max`,
//! with jitter so many adapters restarted together do not reconnect in step.

use std::time::Duration;

/// The wait before reconnect attempt `attempt` (0 for the first retry), given a
/// random `jitter` in `[0, 1)`: between half and all of
/// `min(max, initial × 2^attempt)`.
pub fn reconnect_delay(attempt: u32, initial: Duration, max: Duration, jitter: f64) -> Duration {
    let full = initial
        .saturating_mul(1_u32 << attempt.min(20))
        .min(max.max(initial));
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    full.mul_f64(0.5 + jitter / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_delay_doubles_up_to_the_cap() {
        let (initial, max) = (MS * 100, MS * 1000);
        let top = |attempt| reconnect_delay(attempt, initial, max, 1.0);
        assert_eq!(top(0), MS * 100);
        assert_eq!(top(1), MS * 200);
        assert_eq!(top(3), MS * 800);
        assert_eq!(top(4), MS * 1000);
        assert_eq!(top(1000), MS * 1000, "no overflow on a long outage");
    }

    #[test]
    fn jitter_takes_off_up_to_half() {
        let d = |jitter| reconnect_delay(2, MS * 100, MS * 10_000, jitter);
        assert_eq!(d(0.0), MS * 200);
        assert_eq!(d(0.5), MS * 300);
        assert_eq!(d(f64::NAN), MS * 200);
        assert_eq!(d(7.0), MS * 400);
    }
}
