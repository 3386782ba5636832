//! Quiet hours: a nightly spell in the person's zone when deliveries wait.

use super::{LocalTime, ScheduleError, Tz, local, resolve, time_of};
use chrono::Days;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Quiet hours in the person's zone: `[start, end)` on the wall clock, may wrap
/// midnight (22:00–07:00). `start == end` means none. JSON:
/// `{"start":"22:00","end":"07:00"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    /// When the quiet spell begins (inclusive).
    pub start: LocalTime,
    /// When it ends (exclusive).
    pub end: LocalTime,
}

impl QuietHours {
    /// Parses "22:00-07:00", "22-7", "10pm-7am", "22:00–07:00" or "22:00 to 07:00".
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let bad = || ScheduleError::BadQuietHours(text.trim().to_owned());
        let lower = text.trim().to_ascii_lowercase();
        let (start, end) = lower
            .split_once(['-', '–', '—'])
            .or_else(|| lower.split_once(" to "))
            .ok_or_else(bad)?;
        Ok(Self {
            start: LocalTime::parse(start).map_err(|_| bad())?,
            end: LocalTime::parse(end).map_err(|_| bad())?,
        })
    }

    /// Whether there are quiet hours at all (`start != end`).
    pub fn is_set(&self) -> bool {
        self.start != self.end
    }

    /// Whether the wall-clock time of `at_ms` in `tz` falls in the quiet hours.
    pub fn contains(&self, tz: Tz, at_ms: i64) -> bool {
        local(at_ms, tz).is_some_and(|at| self.contains_time(time_of(&at)))
    }

    fn contains_time(&self, time: LocalTime) -> bool {
        let (start, end, now) = (self.start, self.end, time);
        if start <= end {
            start <= now && now < end
        } else {
            now >= start || now < end
        }
    }

    /// When the quiet spell containing `at_ms` ends (Unix ms); `at_ms` itself when
    /// not quiet. An end time in a spring-forward gap ends at the gap's end; one
    /// that happens twice ends at its first occurrence still after `at_ms`.
    pub fn end_after(&self, tz: Tz, at_ms: i64) -> i64 {
        let Some(at) = local(at_ms, tz) else {
            return at_ms;
        };
        if !self.contains_time(time_of(&at)) {
            return at_ms;
        }
        // The spell ends today, unless it wraps midnight and began this evening.
        let today = at.date_naive();
        let end_date = if self.start > self.end && time_of(&at) >= self.start {
            today.checked_add_days(Days::new(1))
        } else {
            Some(today)
        };
        let Some(end_date) = end_date else {
            return at_ms;
        };
        let (earlier, later) = resolve(end_date.and_time(self.end.naive()), tz);
        [earlier, later]
            .into_iter()
            .find(|end| *end > at_ms)
            .unwrap_or(at_ms)
    }
}

impl fmt::Display for QuietHours {
    /// "22:00–07:00" (en dash).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}–{}", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::utc;
    use super::*;
    use chrono_tz::Europe::Berlin;

    fn lt(hour: u8, minute: u8) -> LocalTime {
        LocalTime::new(hour, minute).unwrap()
    }

    fn night() -> QuietHours {
        QuietHours {
            start: lt(22, 0),
            end: lt(7, 0),
        }
    }

    #[test]
    fn parses_the_usual_forms() {
        for text in [
            "22:00-07:00",
            "22-7",
            "10pm-7am",
            "22:00–07:00",
            "10 PM to 7 AM",
            " 22:00 - 07:00 ",
        ] {
            assert_eq!(QuietHours::parse(text), Ok(night()), "{text}");
        }
        assert_eq!(
            QuietHours::parse("13:30-14"),
            Ok(QuietHours {
                start: lt(13, 30),
                end: lt(14, 0)
            })
        );
        for bad in ["22:00", "late-7", "22-25", ""] {
            assert_eq!(
                QuietHours::parse(bad),
                Err(ScheduleError::BadQuietHours(bad.to_owned())),
                "{bad}"
            );
        }
        assert_eq!(night().to_string(), "22:00–07:00");
        assert_eq!(
            serde_json::to_string(&night()).unwrap(),
            r#"{"start":"22:00","end":"07:00"}"#
        );
    }

    #[test]
    fn wrapping_spell_covers_the_night() {
        let q = night();
        // Berlin in December is UTC+1.
        assert!(!q.contains(Berlin, utc(2026, 12, 8, 20, 59))); // 21:59
        assert!(q.contains(Berlin, utc(2026, 12, 8, 21, 0))); // 22:00
        assert!(q.contains(Berlin, utc(2026, 12, 8, 23, 30))); // 00:30
        assert!(q.contains(Berlin, utc(2026, 12, 9, 5, 59))); // 06:59
        assert!(!q.contains(Berlin, utc(2026, 12, 9, 6, 0))); // 07:00
        assert!(!q.contains(Berlin, utc(2026, 12, 9, 11, 0))); // 12:00
    }

    #[test]
    fn daytime_spell_and_none() {
        let nap = QuietHours {
            start: lt(13, 0),
            end: lt(14, 0),
        };
        assert!(nap.contains(Tz::UTC, utc(2026, 12, 8, 13, 30)));
        assert!(!nap.contains(Tz::UTC, utc(2026, 12, 8, 14, 0)));
        assert_eq!(
            nap.end_after(Tz::UTC, utc(2026, 12, 8, 13, 30)),
            utc(2026, 12, 8, 14, 0)
        );
        let none = QuietHours {
            start: lt(22, 0),
            end: lt(22, 0),
        };
        assert!(!none.is_set());
        assert!(!none.contains(Tz::UTC, utc(2026, 12, 8, 22, 0)));
        assert_eq!(none.end_after(Tz::UTC, 5), 5);
    }

    #[test]
    fn end_after_finds_the_morning() {
        let q = night();
        // 23:00 Berlin → 07:00 next morning (06:00 UTC).
        assert_eq!(
            q.end_after(Berlin, utc(2026, 12, 8, 22, 0)),
            utc(2026, 12, 9, 6, 0)
        );
        // 03:00 Berlin → 07:00 the same morning.
        assert_eq!(
            q.end_after(Berlin, utc(2026, 12, 9, 2, 0)),
            utc(2026, 12, 9, 6, 0)
        );
        // Not quiet: unchanged.
        let noon = utc(2026, 12, 9, 11, 0);
        assert_eq!(q.end_after(Berlin, noon), noon);
        // Over the spring-forward night the spell ends at 07:00 CEST (05:00 UTC).
        assert_eq!(
            q.end_after(Berlin, utc(2026, 3, 28, 22, 0)),
            utc(2026, 3, 29, 5, 0)
        );
    }

    #[test]
    fn end_in_the_fall_back_overlap() {
        // Quiet until 02:30 on the night Berlin falls back: 02:30 happens at 00:30 and 01:30 UTC.
        let q = QuietHours {
            start: lt(23, 0),
            end: lt(2, 30),
        };
        assert_eq!(
            q.end_after(Berlin, utc(2026, 10, 24, 22, 0)),
            utc(2026, 10, 25, 0, 30)
        );
        // In the repeated hour (02:10 CET, 01:10 UTC) the wall clock is quiet again until 02:30 CET.
        assert_eq!(
            q.end_after(Berlin, utc(2026, 10, 25, 1, 10)),
            utc(2026, 10, 25, 1, 30)
        );
    }
}
