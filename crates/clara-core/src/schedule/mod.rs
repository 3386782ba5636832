//! Reminders, scheduled tasks and quiet hours: the pure rules.
//!
//! A schedule's [`Timing`] says when it fires; [`Timing::next_after`] finds the
//! next firing for a person in their time zone ([`Tz`]); [`parse_timing`] reads
//! what a person or the CLI writes ("in 10 minutes", "every weekday at 7");
//! [`QuietHours`] hold deliveries back at night; [`lateness`] and [`late_note`]
//! mark a firing that was missed while Clara was down.
//!
//! Nothing here reads the clock: every function takes the current instant
//! (`now_ms`, `after_ms`) in Unix milliseconds.
//!
//! # Daylight-saving time
//!
//! Local wall-clock times are turned into instants by [`local_to_utc`], one rule
//! for everything in this module:
//!
//! * a local time that does not exist that day (the spring-forward gap, e.g.
//!   02:30 on the day clocks jump 02:00→03:00) resolves to the first instant
//!   after the gap (03:00 new time): the reminder fires as soon as the clock
//!   shows a time at or past the one asked for, rather than being skipped;
//! * a local time that happens twice (fall-back) resolves to the earlier
//!   instant, so a daily reminder fires once that day, not twice.

mod parse;
mod quiet;
mod timing;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

pub use chrono_tz::Tz;
pub use parse::parse_timing;
pub use quiet::QuietHours;
pub use timing::Timing;

const MINUTE_MS: i64 = 60_000;

/// Why a schedule, time, zone or quiet-hours text was not accepted. Each message
/// is one sentence that says what is accepted.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    /// The text matched none of the accepted forms.
    #[error(
        "Could not read {0:?} as a time: try \"in 10 minutes\", \"tomorrow at 9\", \"2026-12-08 09:00\", \
         \"at 17:45\", \"every day at 7\", \"every weekday at 7\", \"every mon,wed at 8:30\", \
         \"monthly on 1 at 9\" or \"every 15 minutes\"."
    )]
    Unrecognised(String),
    /// A time of day that could not be read.
    #[error("{0:?} is not a time of day: write it like 7, 07:05, 7pm or 7:30am.")]
    BadTime(String),
    /// A calendar date that could not be read or does not exist.
    #[error("{0:?} is not a calendar date: write it like 2026-12-08.")]
    BadDate(String),
    /// A schedule that needs a time of day was given none.
    #[error("{0:?} needs a time of day, like \"every day at 7\" or \"tomorrow at 9:30\".")]
    MissingTime(String),
    /// A one-off time that has already passed.
    #[error("{0:?} is already in the past: give a time that is still ahead.")]
    InPast(String),
    /// A duration after "in" that could not be read.
    #[error(
        "{0:?} is not a duration: write it like \"in 90 seconds\", \"in 2 hours\", \"in 3 days\" or \"in 1h30m\"."
    )]
    BadDuration(String),
    /// An interval that is not a whole number of minutes, at least one.
    #[error(
        "{0:?} is not a usable interval: give whole minutes or hours, at least one minute, like \"every 15 minutes\"."
    )]
    BadInterval(String),
    /// A word that should have been a day of the week.
    #[error("{0:?} is not a day of the week: use monday to sunday or mon to sun.")]
    BadWeekday(String),
    /// A day of the month outside 1..=31.
    #[error(
        "{0:?} is not a day of the month: use 1 to 31 (a shorter month fires on its last day)."
    )]
    BadDayOfMonth(String),
    /// A time-zone name that is not in the IANA database.
    #[error(
        "{0:?} is not a known time zone: use an IANA name such as Europe/Berlin, America/New_York or UTC."
    )]
    UnknownTimeZone(String),
    /// Quiet hours that could not be read.
    #[error("{0:?} is not a quiet-hours range: write it like 22:00-07:00, 22-7 or 10pm-7am.")]
    BadQuietHours(String),
    /// An instant outside the dates this module can represent.
    #[error("{0:?} is too far from today: give a time within the next few thousand years.")]
    OutOfRange(String),
}

/// A local wall-clock time of day, minute precision. Serialises as `"HH:MM"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime {
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
}

impl LocalTime {
    /// A time of day; `None` unless `hour < 24` and `minute < 60`.
    pub const fn new(hour: u8, minute: u8) -> Option<Self> {
        if hour < 24 && minute < 60 {
            Some(Self { hour, minute })
        } else {
            None
        }
    }

    /// Parses "7", "07:05", "7pm", "7:30am", "5:30 pm", "17h", "noon" and "midnight"
    /// (case-insensitive). With am/pm the hour is 1..=12 (12am is midnight).
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let bad = || ScheduleError::BadTime(text.trim().to_owned());
        let lower = text.trim().to_ascii_lowercase();
        match lower.as_str() {
            "noon" | "midday" => {
                return Ok(Self {
                    hour: 12,
                    minute: 0,
                });
            }
            "midnight" => return Ok(Self { hour: 0, minute: 0 }),
            _ => {}
        }
        let compact: String = lower.chars().filter(|c| !c.is_whitespace()).collect();
        let compact = compact.replace("a.m.", "am").replace("p.m.", "pm");
        let (digits, meridiem) = if let Some(d) = compact.strip_suffix("am") {
            (d, Some(false))
        } else if let Some(d) = compact.strip_suffix("pm") {
            (d, Some(true))
        } else {
            (compact.strip_suffix('h').unwrap_or(&compact), None)
        };
        let (h, m) = match digits.split_once([':', '.']) {
            Some((h, m)) if m.len() == 2 => (h, m),
            Some(_) => return Err(bad()),
            None => (digits, "0"),
        };
        let all_digits =
            |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(h) || !all_digits(m) {
            return Err(bad());
        }
        let (h, m): (u8, u8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        let hour = match meridiem {
            None => h,
            Some(_) if !(1..=12).contains(&h) => return Err(bad()),
            Some(false) => h % 12,
            Some(true) => h % 12 + 12,
        };
        Self::new(hour, m).ok_or_else(bad)
    }

    /// Minutes since midnight.
    pub const fn minutes(self) -> u32 {
        self.hour as u32 * 60 + self.minute as u32
    }

    fn naive(self) -> chrono::NaiveTime {
        // Invariant: the fields are in range (checked by `new`/`parse`/serde);
        // a hand-built out-of-range value falls back to midnight rather than panic.
        chrono::NaiveTime::from_hms_opt(u32::from(self.hour), u32::from(self.minute), 0)
            .unwrap_or(chrono::NaiveTime::MIN)
    }
}

impl fmt::Display for LocalTime {
    /// "07:05".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A local date and time in `tz` as Unix ms. A time in the spring-forward gap
/// gives the first instant after the gap; a time that happens twice gives the
/// earlier instant (see the module docs).
pub fn local_to_utc(date: NaiveDate, time: LocalTime, tz: Tz) -> i64 {
    resolve(date.and_time(time.naive()), tz).0
}

/// The instants a local date-time stands for in `tz`: (earlier, later), equal
/// unless the time happens twice. A time in a gap gives the gap's end twice.
fn resolve(naive: NaiveDateTime, tz: Tz) -> (i64, i64) {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(at) => (at.timestamp_millis(), at.timestamp_millis()),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.timestamp_millis(), b.timestamp_millis());
            (a.min(b), a.max(b))
        }
        LocalResult::None => {
            let end = chrono_tz::GapInfo::new(&naive, &tz)
                .and_then(|gap| gap.end)
                .map(|end| end.timestamp_millis())
                // Past the zone's known transitions: read it with the offset in force there.
                .unwrap_or_else(|| {
                    let offset = tz.offset_from_utc_datetime(&naive).fix().local_minus_utc();
                    naive.and_utc().timestamp_millis() - i64::from(offset) * 1000
                });
            (end, end)
        }
    }
}

/// `at_ms` as a date-time in `tz`; `None` outside chrono's range.
fn local(at_ms: i64, tz: Tz) -> Option<DateTime<Tz>> {
    DateTime::from_timestamp_millis(at_ms).map(|at| at.with_timezone(&tz))
}

/// The wall-clock time of day of a local date-time.
fn time_of(at: &DateTime<Tz>) -> LocalTime {
    // Invariant: chrono's hour/minute are always in range.
    LocalTime {
        hour: at.hour() as u8,
        minute: at.minute() as u8,
    }
}

/// Parses an IANA zone name ("Europe/Berlin", "UTC"); letter case is forgiven.
pub fn parse_time_zone(name: &str) -> Result<Tz, ScheduleError> {
    let trimmed = name.trim();
    trimmed
        .parse::<Tz>()
        .ok()
        .or_else(|| {
            chrono_tz::TZ_VARIANTS
                .iter()
                .copied()
                .find(|tz| tz.name().eq_ignore_ascii_case(trimmed))
        })
        .ok_or_else(|| ScheduleError::UnknownTimeZone(trimmed.to_owned()))
}

/// An instant for people, in `tz`: "Tue 8 Dec 2026 at 09:00".
pub fn describe_instant(at_ms: i64, tz: Tz) -> String {
    match local(at_ms, tz) {
        Some(at) => at.format("%a %-d %b %Y at %H:%M").to_string(),
        None => format!("{at_ms} ms after 1970"),
    }
}

/// How late a firing is: `Some(whole minutes late)` when `now_ms - due_ms`
/// exceeds `grace_ms` (a firing missed while Clara was down is delivered late,
/// with [`late_note`] in front), else `None`.
pub fn lateness(due_ms: i64, now_ms: i64, grace_ms: i64) -> Option<i64> {
    let late = now_ms.saturating_sub(due_ms);
    (late > grace_ms).then_some(late / MINUTE_MS)
}

/// The note put in front of a late delivery, times in `tz`:
/// "(Late: this was due at 09:00 on Tue 8 Dec; Clara was offline.)".
pub fn late_note(due_ms: i64, tz: Tz) -> String {
    let when = match local(due_ms, tz) {
        Some(at) => at.format("%H:%M on %a %-d %b").to_string(),
        None => describe_instant(due_ms, tz),
    };
    format!("(Late: this was due at {when}; Clara was offline.)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America::New_York, Europe::Berlin};

    /// Unix ms of a UTC date-time.
    pub(super) fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    fn lt(hour: u8, minute: u8) -> LocalTime {
        LocalTime::new(hour, minute).unwrap()
    }

    #[test]
    fn local_time_parses_the_usual_forms() {
        assert_eq!(LocalTime::parse("7"), Ok(lt(7, 0)));
        assert_eq!(LocalTime::parse("07:05"), Ok(lt(7, 5)));
        assert_eq!(LocalTime::parse("7pm"), Ok(lt(19, 0)));
        assert_eq!(LocalTime::parse("7:30am"), Ok(lt(7, 30)));
        assert_eq!(LocalTime::parse("5:30 PM"), Ok(lt(17, 30)));
        assert_eq!(LocalTime::parse("12am"), Ok(lt(0, 0)));
        assert_eq!(LocalTime::parse("12pm"), Ok(lt(12, 0)));
        assert_eq!(LocalTime::parse("17h"), Ok(lt(17, 0)));
        assert_eq!(LocalTime::parse("9.15"), Ok(lt(9, 15)));
        assert_eq!(LocalTime::parse("noon"), Ok(lt(12, 0)));
        assert_eq!(LocalTime::parse("23:59"), Ok(lt(23, 59)));
        for bad in ["24:00", "7:60", "13pm", "0am", "7:5", "x", "", "-1", "123"] {
            assert_eq!(
                LocalTime::parse(bad),
                Err(ScheduleError::BadTime(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn local_time_displays_and_serialises_as_hh_mm() {
        assert_eq!(lt(7, 5).to_string(), "07:05");
        assert_eq!(serde_json::to_string(&lt(7, 5)).unwrap(), "\"07:05\"");
        assert_eq!(
            serde_json::from_str::<LocalTime>("\"23:10\"").unwrap(),
            lt(23, 10)
        );
        assert!(serde_json::from_str::<LocalTime>("\"25:00\"").is_err());
    }

    #[test]
    fn local_to_utc_follows_the_dst_rules() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        // Winter and summer in Berlin.
        assert_eq!(
            local_to_utc(day(2026, 12, 8), lt(9, 0), Berlin),
            utc(2026, 12, 8, 8, 0)
        );
        assert_eq!(
            local_to_utc(day(2026, 7, 1), lt(9, 0), Berlin),
            utc(2026, 7, 1, 7, 0)
        );
        // Spring-forward gap: 02:30 does not exist, fires at 03:00 CEST (01:00 UTC).
        assert_eq!(
            local_to_utc(day(2026, 3, 29), lt(2, 30), Berlin),
            utc(2026, 3, 29, 1, 0)
        );
        // Fall-back: 02:30 happens twice, the earlier (CEST, 00:30 UTC) wins.
        assert_eq!(
            local_to_utc(day(2026, 10, 25), lt(2, 30), Berlin),
            utc(2026, 10, 25, 0, 30)
        );
        // New York: gap 02:00→03:00 on 8 March, 01:00–02:00 twice on 1 November.
        assert_eq!(
            local_to_utc(day(2026, 3, 8), lt(2, 15), New_York),
            utc(2026, 3, 8, 7, 0)
        );
        assert_eq!(
            local_to_utc(day(2026, 11, 1), lt(1, 30), New_York),
            utc(2026, 11, 1, 5, 30)
        );
    }

    #[test]
    fn time_zones_parse_by_iana_name() {
        assert_eq!(parse_time_zone("Europe/Berlin"), Ok(Berlin));
        assert_eq!(parse_time_zone(" america/new_york "), Ok(New_York));
        assert_eq!(parse_time_zone("UTC"), Ok(Tz::UTC));
        let err = parse_time_zone("Mars/Olympus").unwrap_err();
        assert_eq!(err, ScheduleError::UnknownTimeZone("Mars/Olympus".into()));
        assert!(err.to_string().contains("\"Mars/Olympus\""));
    }

    #[test]
    fn lateness_counts_minutes_past_the_grace() {
        let due = utc(2026, 12, 8, 8, 0);
        assert_eq!(lateness(due, due, 60_000), None);
        assert_eq!(lateness(due, due + 60_000, 60_000), None);
        assert_eq!(lateness(due, due + 60_001, 60_000), Some(1));
        assert_eq!(
            lateness(due, due + 3 * 3_600_000 + 30_000, 300_000),
            Some(180)
        );
        assert_eq!(lateness(due, due - 10_000, 0), None);
    }

    #[test]
    fn late_note_names_the_local_due_time() {
        assert_eq!(
            late_note(utc(2026, 12, 8, 8, 0), Berlin),
            "(Late: this was due at 09:00 on Tue 8 Dec; Clara was offline.)"
        );
        assert_eq!(
            describe_instant(utc(2026, 12, 8, 8, 0), Berlin),
            "Tue 8 Dec 2026 at 09:00"
        );
    }
}
