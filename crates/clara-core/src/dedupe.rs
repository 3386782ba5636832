//! Remembering which platform events were already processed.
//!
//! Platforms redeliver (Discord resumes, Telegram retries a webhook, a long poll
//! overlaps). An event id seen within the window is ignored. Memory is bounded by a
//! capacity, so a flood of ids cannot grow it without limit.

use crate::EventId;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// A bounded, time-windowed set of recently seen event ids.
#[derive(Debug)]
pub struct RecentEvents {
    ttl: Duration,
    capacity: usize,
    seen: HashMap<EventId, Instant>,
    order: VecDeque<(Instant, EventId)>,
}

impl RecentEvents {
    /// Remembers ids for `ttl`, and at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Records `id`; returns `true` when it was not seen within the window.
    pub fn first_time(&mut self, id: &EventId, now: Instant) -> bool {
        self.expire(now);
        if self.seen.contains_key(id) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some((_, oldest)) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.seen.insert(id.clone(), now);
        self.order.push_back((now, id.clone()));
        true
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.ttl {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.seen.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_caught_within_the_window() {
        let t0 = Instant::now();
        let mut r = RecentEvents::new(Duration::from_secs(60), 100);
        assert!(r.first_time(&"a".into(), t0));
        assert!(!r.first_time(&"a".into(), t0 + Duration::from_secs(59)));
        assert!(
            r.first_time(&"a".into(), t0 + Duration::from_secs(61)),
            "expired"
        );
    }

    #[test]
    fn capacity_bounds_memory() {
        let t0 = Instant::now();
        let mut r = RecentEvents::new(Duration::from_secs(60), 3);
        for id in ["a", "b", "c", "d"] {
            assert!(r.first_time(&id.into(), t0));
        }
        assert_eq!(r.len(), 3);
        assert!(r.first_time(&"a".into(), t0), "oldest was evicted");
        assert!(!r.first_time(&"d".into(), t0));
    }
}
