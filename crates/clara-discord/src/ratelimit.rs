//! Discord's REST rate limits, kept as Discord describes them: each route belongs
//! to a bucket (named by `X-RateLimit-Bucket`, per top-level resource such as the
//! channel), a bucket allows `X-RateLimit-Remaining` more requests until
//! `X-RateLimit-Reset-After`, and a 429 says how long to wait (for the bucket, or
//! for every route when it is global).
//!
//! Pure bookkeeping: the caller passes the time in and does the waiting.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Buckets kept before those already reset are forgotten (a reset bucket
/// allows as much as an unknown one, and its next answer tells it again).
const MAX_BUCKETS: usize = 4_096;

/// The longest wait a header or 429 body is taken at its word for, in seconds.
/// Longer (or absurd) values are cut to it, so a bad number can never overflow
/// a `Duration` or an `Instant`.
const LONGEST_WAIT_SECS: f64 = 86_400.0;

/// A number of seconds Discord sent, as a wait: `None` when it is not a
/// number of seconds at all (negative, NaN, infinite), capped at a day.
pub fn wait_of(seconds: f64) -> Option<Duration> {
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| Duration::from_secs_f64(seconds.min(LONGEST_WAIT_SECS)))
}

/// One REST route as rate limits see it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    /// Method and path with every id replaced: Discord names the bucket of
    /// each such route, the same for every channel.
    key: String,
    /// The top-level resource (channel id) the bucket is counted for.
    major: String,
}

impl Route {
    /// The route of `method` on `path` (relative to the REST root, e.g.
    /// `channels/1/messages/2`).
    pub fn new(method: &str, path: &str) -> Self {
        let mut key = vec![method.to_owned()];
        let mut major = String::new();
        let mut previous = "";
        let mut interaction = false;
        for part in path.trim_matches('/').split('/') {
            let is_id = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
            if interaction {
                // An interaction's token follows its id: one route for all of them.
                interaction = false;
                key.push("{token}".to_owned());
                previous = part;
                continue;
            }
            if is_id && previous == "interactions" {
                interaction = true;
            }
            if is_id && matches!(previous, "channels" | "guilds" | "webhooks") && major.is_empty() {
                major = part.to_owned();
                key.push("{major}".to_owned());
            } else if is_id {
                key.push("{id}".to_owned());
            } else {
                key.push(part.to_owned());
            }
            previous = part;
        }
        Self {
            key: key.join(" "),
            major,
        }
    }
}

/// What a response said about its bucket.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BucketHeaders {
    /// `X-RateLimit-Bucket`.
    pub bucket: Option<String>,
    /// `X-RateLimit-Limit`.
    pub limit: Option<u32>,
    /// `X-RateLimit-Remaining`.
    pub remaining: Option<u32>,
    /// `X-RateLimit-Reset-After`.
    pub reset_after: Option<Duration>,
}

impl BucketHeaders {
    /// Reads the headers by (lower-case) name.
    pub fn read<'a>(header: impl Fn(&str) -> Option<&'a str>) -> Self {
        Self {
            bucket: header("x-ratelimit-bucket").map(str::to_owned),
            limit: header("x-ratelimit-limit").and_then(|v| v.trim().parse().ok()),
            remaining: header("x-ratelimit-remaining").and_then(|v| v.trim().parse().ok()),
            reset_after: header("x-ratelimit-reset-after")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .and_then(wait_of),
        }
    }
}

#[derive(Debug)]
struct Bucket {
    limit: u32,
    remaining: u32,
    reset_at: Instant,
}

/// Every bucket learned so far, and the global limit.
#[derive(Debug, Default)]
pub struct RateLimits {
    /// Route key → bucket name, as the headers told.
    buckets_of: HashMap<String, String>,
    /// (bucket name, major resource) → its state.
    buckets: HashMap<(String, String), Bucket>,
    /// No request may go before this (a global 429).
    global_until: Option<Instant>,
}

impl RateLimits {
    /// Rate limits knowing nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a request on `route` must wait at `now`; `None` means it may go
    /// now, and it has been counted against its bucket.
    pub fn acquire(&mut self, route: &Route, now: Instant) -> Option<Duration> {
        if let Some(until) = self.global_until {
            if now < until {
                return Some(until - now);
            }
            self.global_until = None;
        }
        // A route or bucket never seen has nothing to wait for (`?` lets it go):
        // its first answer tells its limits.
        let name = self.buckets_of.get(&route.key)?;
        let bucket = self.buckets.get_mut(&(name.clone(), route.major.clone()))?;
        if now >= bucket.reset_at {
            bucket.remaining = bucket.limit;
        }
        if bucket.remaining == 0 {
            return Some(
                bucket
                    .reset_at
                    .saturating_duration_since(now)
                    .max(Duration::from_millis(1)),
            );
        }
        bucket.remaining -= 1;
        None
    }

    /// Learns from a response's bucket headers (any status).
    pub fn update(&mut self, route: &Route, headers: &BucketHeaders, now: Instant) {
        let Some(name) = &headers.bucket else {
            return;
        };
        self.buckets_of.insert(route.key.clone(), name.clone());
        let (Some(remaining), Some(reset_after)) = (headers.remaining, headers.reset_after) else {
            return;
        };
        let limit = headers.limit.unwrap_or(remaining.max(1));
        self.forget_reset_buckets(now);
        self.buckets.insert(
            (name.clone(), route.major.clone()),
            Bucket {
                limit,
                remaining,
                reset_at: now + reset_after,
            },
        );
    }

    /// Records a 429: nothing more on this route's bucket (or, when `global`,
    /// on any route) for `retry_after`.
    pub fn limited(&mut self, route: &Route, retry_after: Duration, global: bool, now: Instant) {
        let until = now + retry_after;
        if global {
            self.global_until = Some(self.global_until.map_or(until, |u| u.max(until)));
            return;
        }
        let name = self
            .buckets_of
            .entry(route.key.clone())
            .or_insert_with(|| route.key.clone())
            .clone();
        self.forget_reset_buckets(now);
        let bucket = self
            .buckets
            .entry((name, route.major.clone()))
            .or_insert(Bucket {
                limit: 1,
                remaining: 0,
                reset_at: until,
            });
        bucket.remaining = 0;
        bucket.reset_at = bucket.reset_at.max(until);
    }

    /// Keeps the map of buckets (one per bucket and channel) from growing
    /// with every channel Clara ever spoke in.
    fn forget_reset_buckets(&mut self, now: Instant) {
        if self.buckets.len() >= MAX_BUCKETS {
            self.buckets.retain(|_, b| b.reset_at > now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(bucket: &str, limit: u32, remaining: u32, reset_after: f64) -> BucketHeaders {
        BucketHeaders {
            bucket: Some(bucket.into()),
            limit: Some(limit),
            remaining: Some(remaining),
            reset_after: wait_of(reset_after),
        }
    }

    #[test]
    fn routes_keep_the_channel_and_hide_message_ids() {
        let a = Route::new("PATCH", "channels/10/messages/111");
        let b = Route::new("PATCH", "channels/10/messages/222");
        let c = Route::new("PATCH", "channels/11/messages/111");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, Route::new("POST", "channels/10/messages"));
        assert_eq!(Route::new("GET", "users/@me").major, "");
        assert_eq!(a.key, c.key, "one bucket name for every channel");
        // Interaction tokens are not kept: one route for every interaction.
        let x = Route::new("POST", "interactions/900/aW50ZXJhY3Rpb24:token-1/callback");
        let y = Route::new("POST", "interactions/901/other-token/callback");
        assert_eq!(x, y);
        assert!(!x.key.contains("token-1"), "{}", x.key);
    }

    #[test]
    fn buckets_of_many_channels_are_forgotten_once_reset() {
        let mut limits = RateLimits::new();
        let t0 = Instant::now();
        for channel in 0..MAX_BUCKETS {
            let route = Route::new("POST", &format!("channels/{channel}/messages"));
            limits.update(&route, &headers("abc", 5, 4, 1.0), t0);
        }
        assert_eq!(limits.buckets_of.len(), 1);
        assert_eq!(limits.buckets.len(), MAX_BUCKETS);
        let later = t0 + Duration::from_secs(2);
        let route = Route::new("POST", "channels/999999/messages");
        limits.update(&route, &headers("abc", 5, 0, 1.0), later);
        assert_eq!(limits.buckets.len(), 1, "only the live bucket stays");
        assert!(limits.acquire(&route, later).is_some());
    }

    #[test]
    fn an_unknown_route_goes_and_an_exhausted_bucket_waits_for_its_reset() {
        let mut limits = RateLimits::new();
        let route = Route::new("POST", "channels/1/messages");
        let t0 = Instant::now();
        assert_eq!(limits.acquire(&route, t0), None);
        limits.update(&route, &headers("abc", 5, 0, 0.5), t0);
        assert_eq!(
            limits.acquire(&route, t0 + Duration::from_millis(100)),
            Some(Duration::from_millis(400))
        );
        // After the reset the bucket is full again.
        assert_eq!(
            limits.acquire(&route, t0 + Duration::from_millis(500)),
            None
        );
    }

    #[test]
    fn remaining_requests_are_counted_down_before_answers_come() {
        let mut limits = RateLimits::new();
        let route = Route::new("POST", "channels/1/messages");
        let t0 = Instant::now();
        limits.update(&route, &headers("abc", 5, 2, 1.0), t0);
        assert_eq!(limits.acquire(&route, t0), None);
        assert_eq!(limits.acquire(&route, t0), None);
        assert_eq!(limits.acquire(&route, t0), Some(Duration::from_secs(1)));
    }

    #[test]
    fn buckets_are_per_channel_and_shared_between_routes_of_one_bucket() {
        let mut limits = RateLimits::new();
        let t0 = Instant::now();
        let post1 = Route::new("POST", "channels/1/messages");
        let post2 = Route::new("POST", "channels/2/messages");
        limits.update(&post1, &headers("abc", 5, 0, 2.0), t0);
        limits.update(&post2, &headers("abc", 5, 4, 2.0), t0);
        assert!(limits.acquire(&post1, t0).is_some());
        assert_eq!(limits.acquire(&post2, t0), None);
    }

    #[test]
    fn a_429_blocks_its_bucket_and_a_global_one_blocks_everything() {
        let mut limits = RateLimits::new();
        let t0 = Instant::now();
        let post = Route::new("POST", "channels/1/messages");
        let typing = Route::new("POST", "channels/1/typing");
        limits.limited(&post, Duration::from_millis(500), false, t0);
        assert_eq!(limits.acquire(&post, t0), Some(Duration::from_millis(500)));
        assert_eq!(limits.acquire(&typing, t0), None);
        limits.limited(&post, Duration::from_secs(2), true, t0);
        assert_eq!(limits.acquire(&typing, t0), Some(Duration::from_secs(2)));
        assert_eq!(limits.acquire(&typing, t0 + Duration::from_secs(2)), None);
    }

    #[test]
    fn headers_are_read_leniently() {
        let h = BucketHeaders::read(|name| match name {
            "x-ratelimit-bucket" => Some("abcd1234"),
            "x-ratelimit-limit" => Some("5"),
            "x-ratelimit-remaining" => Some("4"),
            "x-ratelimit-reset-after" => Some("1.234"),
            _ => None,
        });
        assert_eq!(h, headers("abcd1234", 5, 4, 1.234));
        assert_eq!(BucketHeaders::read(|_| Some("junk")).remaining, None);
        // Absurd waits are capped rather than overflowing the clock.
        let huge =
            BucketHeaders::read(|name| (name == "x-ratelimit-reset-after").then_some("1e300"));
        assert_eq!(huge.reset_after, Some(Duration::from_secs(86_400)));
        assert_eq!(wait_of(-1.0), None);
        assert_eq!(wait_of(f64::NAN), None);
    }
}
