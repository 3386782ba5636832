//! When to try a request again, and how long to wait for a server.

use std::time::{Duration, SystemTime};

use clara_core::backoff::Backoff;
use rand::Rng;

/// How often and how patiently a provider retries a request that failed before the
/// answer started (429, 5xx, connection errors).
///
/// Waits use full-jitter exponential backoff (a random wait between zero and
/// `base_delay · 2^retry`, capped at `max_delay`), so many clients that failed together
/// do not come back together. A server's `Retry-After` replaces the backoff exactly,
/// unless it asks for more than [`RetryPolicy::MAX_RETRY_AFTER`]; then the call gives up
/// with [`crate::LlmError::RateLimited`] rather than keep a person waiting.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first; 0 is treated as 1.
    pub max_attempts: u32,
    /// Backoff before the first retry (before jitter).
    pub base_delay: Duration,
    /// Longest backoff between two attempts (before jitter).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The longest `Retry-After` that is waited out; anything longer ends the call.
    pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

    /// One attempt, no retries.
    pub fn no_retries() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Attempts in total, at least one.
    pub fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }

    /// The upper bound of the jittered wait before retry number `retry` (0 = the first retry):
    /// `base_delay` doubling up to `max_delay`, as [`Backoff`] counts it.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        // A cap below the base caps the base too (Backoff would wait the base).
        Backoff::new(self.base_delay.min(self.max_delay), self.max_delay)
            .delay(retry.saturating_add(1))
    }

    /// A random wait in `[0, backoff_ceiling(retry)]`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.backoff_ceiling(retry).as_millis();
        let ceiling = u64::try_from(ceiling).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=ceiling))
    }
}

/// How long a provider waits at each stage of a call.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeouts {
    /// Establishing the TCP/TLS connection.
    pub connect: Duration,
    /// From sending the request until the response headers arrive. Models can think for
    /// a long time before their first token, so this is generous.
    pub first_byte: Duration,
    /// Longest silence between two chunks of a streamed answer.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(60),
        }
    }
}

/// Reads a `Retry-After` value: delta-seconds or an HTTP-date (relative to `now`).
/// A date in the past means "now".
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // Not allowed by RFC 9110 but sent by some proxies; harmless to accept.
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Reads OpenAI's `retry-after-ms` header, which is more precise than `Retry-After`.
pub(crate) fn parse_retry_after_ms(value: &str) -> Option<Duration> {
    let ms = value.trim().parse::<f64>().ok()?;
    Duration::try_from_secs_f64(ms / 1000.0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts, 3);
        assert_eq!(p.base_delay, Duration::from_millis(500));
        assert_eq!(p.max_delay, Duration::from_secs(20));
        let t = Timeouts::default();
        assert_eq!(
            (
                t.connect.as_secs(),
                t.first_byte.as_secs(),
                t.idle.as_secs()
            ),
            (10, 60, 60)
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff_ceiling(0), Duration::from_millis(500));
        assert_eq!(p.backoff_ceiling(1), Duration::from_secs(1));
        assert_eq!(p.backoff_ceiling(3), Duration::from_secs(4));
        assert_eq!(p.backoff_ceiling(10), Duration::from_secs(20));
        assert_eq!(p.backoff_ceiling(u32::MAX), Duration::from_secs(20));
        for retry in 0..8 {
            assert!(p.backoff(retry) <= p.backoff_ceiling(retry));
        }
        // Full jitter: over many draws the waits are not all the same.
        let draws: std::collections::HashSet<_> = (0..50).map(|_| p.backoff(2)).collect();
        assert!(draws.len() > 1);
        assert_eq!(
            RetryPolicy {
                max_attempts: 0,
                ..p
            }
            .attempts(),
            1
        );
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(
            parse_retry_after_ms("1500"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after_ms("x"), None);
    }
}
