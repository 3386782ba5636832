//! When a schedule fires, and the next firing after a given instant.

use super::{LocalTime, MINUTE_MS, Tz, describe_instant, local, local_to_utc};
use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// When a schedule fires. Stored as JSON in the database, so the shape is stable:
///
/// ```json
/// {"kind":"once","at_ms":1796716800000}
/// {"kind":"daily","time":"07:00"}
/// {"kind":"weekdays","time":"07:00"}
/// {"kind":"weekly","days":["mon","wed"],"time":"08:30"}
/// {"kind":"monthly","day":1,"time":"09:00"}
/// {"kind":"interval","minutes":15,"anchor_ms":1796716800000}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Timing {
    /// Once, at an instant (Unix ms, UTC).
    Once {
        /// The instant.
        at_ms: i64,
    },
    /// Every day at a local time.
    Daily {
        /// The local time of day.
        time: LocalTime,
    },
    /// Monday to Friday at a local time.
    Weekdays {
        /// The local time of day.
        time: LocalTime,
    },
    /// On the given days of the week at a local time (days as "mon".."sun" in JSON).
    /// No days means it never fires.
    Weekly {
        /// The days it fires on.
        #[serde(with = "weekday_names")]
        days: Vec<Weekday>,
        /// The local time of day.
        time: LocalTime,
    },
    /// On a day of the month (1..=31; a shorter month fires on its last day) at a
    /// local time. A day outside 1..=31 never fires.
    Monthly {
        /// The day of the month.
        day: u8,
        /// The local time of day.
        time: LocalTime,
    },
    /// Every N minutes (N >= 1) counted from `anchor_ms`: it fires at
    /// `anchor_ms + k·N minutes` for k = 1, 2, … (the anchor is when counting
    /// started, not a firing). N = 0 never fires.
    Interval {
        /// The period in minutes.
        minutes: u32,
        /// When counting started (Unix ms).
        anchor_ms: i64,
    },
}

/// How many local days ahead `next_after` looks for a matching day: a monthly
/// day 31 can be two months away, a weekly day at most a week.
const LOOKAHEAD_DAYS: u64 = 75;

impl Timing {
    /// The first firing strictly after `after_ms`, in Unix ms, for a person in
    /// `tz`; `None` when it never fires again (a `Once` already past, no weekly
    /// days, interval 0). Local times follow the DST rules of [`local_to_utc`]:
    /// a time in the spring-forward gap fires at the first instant after the gap
    /// (02:30 on the day clocks jump 02:00→03:00 fires at 03:00), and a time that
    /// happens twice fires once, at the earlier instant.
    pub fn next_after(&self, tz: Tz, after_ms: i64) -> Option<i64> {
        match self {
            Self::Once { at_ms } => (*at_ms > after_ms).then_some(*at_ms),
            Self::Interval { minutes, anchor_ms } => {
                let period = i64::from(*minutes).checked_mul(MINUTE_MS)?;
                if period == 0 {
                    return None;
                }
                // The smallest k >= 1 with anchor + k·period > after.
                let k = (after_ms.checked_sub(*anchor_ms)?.div_euclid(period) + 1).max(1);
                anchor_ms.checked_add(k.checked_mul(period)?)
            }
            Self::Daily { time } => next_local(tz, after_ms, *time, |_| true),
            Self::Weekdays { time } => next_local(tz, after_ms, *time, |date| {
                !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
            }),
            Self::Weekly { days, time } => {
                next_local(tz, after_ms, *time, |date| days.contains(&date.weekday()))
            }
            Self::Monthly { day, time } => {
                if !(1..=31).contains(day) {
                    return None;
                }
                next_local(tz, after_ms, *time, |date| {
                    date.day() == u32::from(*day).min(days_in_month(date))
                })
            }
        }
    }

    /// Whether it fires more than once.
    pub fn is_recurring(&self) -> bool {
        !matches!(self, Self::Once { .. })
    }

    /// A short English description for people, times shown in `tz`:
    /// "once on Tue 8 Dec 2026 at 09:00", "every day at 07:00", "every weekday at
    /// 07:00", "every Mon and Wed at 08:30", "on day 1 of every month at 09:00",
    /// "every 15 minutes".
    pub fn describe(&self, tz: Tz) -> String {
        match self {
            Self::Once { at_ms } => format!("once on {}", describe_instant(*at_ms, tz)),
            Self::Daily { time } => format!("every day at {time}"),
            Self::Weekdays { time } => format!("every weekday at {time}"),
            Self::Weekly { days, time } => {
                let mut days = days.clone();
                days.sort_by_key(Weekday::num_days_from_monday);
                days.dedup();
                let names: Vec<String> = days.iter().map(ToString::to_string).collect();
                match names.split_last() {
                    None => "never (no days chosen)".to_owned(),
                    Some((last, [])) => format!("every {last} at {time}"),
                    Some((last, rest)) => format!("every {} and {last} at {time}", rest.join(", ")),
                }
            }
            Self::Monthly { day, time } => format!("on day {day} of every month at {time}"),
            Self::Interval { minutes, .. } => match minutes {
                0 => "never (an interval of 0 minutes)".to_owned(),
                1 => "every minute".to_owned(),
                60 => "every hour".to_owned(),
                m if m % 60 == 0 => format!("every {} hours", m / 60),
                m => format!("every {m} minutes"),
            },
        }
    }
}

/// The first instant after `after_ms` at local `time` on a local day that
/// `matches`, looking [`LOOKAHEAD_DAYS`] ahead.
fn next_local(
    tz: Tz,
    after_ms: i64,
    time: LocalTime,
    matches: impl Fn(NaiveDate) -> bool,
) -> Option<i64> {
    // Start a day early: a time resolved across a DST gap can land on the
    // previous local date's side of `after_ms`'s date boundary.
    let start = local(after_ms, tz)?
        .date_naive()
        .checked_sub_days(Days::new(1))?;
    (0..=LOOKAHEAD_DAYS)
        .filter_map(|offset| start.checked_add_days(Days::new(offset)))
        .filter(|date| matches(*date))
        .map(|date| local_to_utc(date, time, tz))
        .find(|at| *at > after_ms)
}

/// The number of days in `date`'s month.
fn days_in_month(date: NaiveDate) -> u32 {
    // The last day is the one before the first of next month.
    let (year, month) = if date.month() == 12 {
        (date.year() + 1, 1)
    } else {
        (date.year(), date.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|first| first.pred_opt())
        .map_or(31, |last| last.day())
}

/// Weekdays as "mon".."sun" in JSON (chrono's own serde writes "Mon").
mod weekday_names {
    use chrono::Weekday;
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

    pub(super) fn serialize<S: Serializer>(
        days: &[Weekday],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(days.len()))?;
        for day in days {
            seq.serialize_element(NAMES[day.num_days_from_monday() as usize])?;
        }
        seq.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Weekday>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|name| {
                name.parse::<Weekday>().map_err(|_| {
                    serde::de::Error::custom(format!("{name:?} is not a day of the week"))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::utc;
    use super::*;
    use chrono_tz::{America::New_York, Europe::Berlin};

    fn lt(hour: u8, minute: u8) -> LocalTime {
        LocalTime::new(hour, minute).unwrap()
    }

    /// The first `n` firings after `after`.
    fn firings(timing: &Timing, tz: Tz, after: i64, n: usize) -> Vec<i64> {
        let mut out = Vec::new();
        let mut at = after;
        while out.len() < n {
            match timing.next_after(tz, at) {
                Some(next) => {
                    assert!(next > at);
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }

    #[test]
    fn once_fires_only_while_ahead() {
        let at = utc(2026, 12, 8, 8, 0);
        let once = Timing::Once { at_ms: at };
        assert_eq!(once.next_after(Berlin, at - 1), Some(at));
        assert_eq!(once.next_after(Berlin, at), None);
        assert_eq!(once.next_after(Berlin, at + 1), None);
        assert!(!once.is_recurring());
    }

    #[test]
    fn daily_fires_every_local_day() {
        let daily = Timing::Daily { time: lt(7, 0) };
        assert!(daily.is_recurring());
        // 06:59 Berlin (winter, UTC+1) → today 07:00; exactly 07:00 → tomorrow.
        assert_eq!(
            daily.next_after(Berlin, utc(2026, 12, 8, 5, 59)),
            Some(utc(2026, 12, 8, 6, 0))
        );
        assert_eq!(
            daily.next_after(Berlin, utc(2026, 12, 8, 6, 0)),
            Some(utc(2026, 12, 9, 6, 0))
        );
        // Late evening UTC is already the next day in Berlin.
        let late = Timing::Daily { time: lt(0, 30) };
        assert_eq!(
            late.next_after(Berlin, utc(2026, 12, 8, 23, 10)),
            Some(utc(2026, 12, 8, 23, 30))
        );
    }

    #[test]
    fn daily_keeps_local_time_across_dst_switches() {
        let daily = Timing::Daily { time: lt(9, 0) };
        let berlin = firings(&daily, Berlin, utc(2026, 3, 28, 12, 0), 2);
        assert_eq!(berlin, vec![utc(2026, 3, 29, 7, 0), utc(2026, 3, 30, 7, 0)]);
        let berlin = firings(&daily, Berlin, utc(2026, 10, 24, 12, 0), 2);
        assert_eq!(
            berlin,
            vec![utc(2026, 10, 25, 8, 0), utc(2026, 10, 26, 8, 0)]
        );
        let ny = firings(&daily, New_York, utc(2026, 3, 7, 15, 0), 2);
        assert_eq!(ny, vec![utc(2026, 3, 8, 13, 0), utc(2026, 3, 9, 13, 0)]);
        let ny = firings(&daily, New_York, utc(2026, 10, 31, 14, 0), 2);
        assert_eq!(ny, vec![utc(2026, 11, 1, 14, 0), utc(2026, 11, 2, 14, 0)]);
    }

    #[test]
    fn daily_in_the_spring_forward_gap_fires_once_at_the_gap_end() {
        let daily = Timing::Daily { time: lt(2, 30) };
        // From the 28th's firing (02:30 CET = 01:30 UTC): the 29th fires at 03:00 CEST
        // (01:00 UTC), the 30th at 02:30 CEST (00:30 UTC).
        let got = firings(&daily, Berlin, utc(2026, 3, 28, 1, 30), 2);
        assert_eq!(got, vec![utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]);
        // New York: 02:30 on 8 March fires at 03:00 EDT (07:00 UTC), then 02:30 EDT.
        let got = firings(&daily, New_York, utc(2026, 3, 7, 7, 30), 2);
        assert_eq!(got, vec![utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)]);
    }

    #[test]
    fn daily_in_the_fall_back_overlap_fires_once() {
        let daily = Timing::Daily { time: lt(2, 30) };
        // Berlin 25 Oct: 02:30 CEST (00:30 UTC) and 02:30 CET (01:30 UTC); only the first.
        let got = firings(&daily, Berlin, utc(2026, 10, 24, 0, 30), 3);
        assert_eq!(
            got,
            vec![
                utc(2026, 10, 25, 0, 30),
                utc(2026, 10, 26, 1, 30),
                utc(2026, 10, 27, 1, 30)
            ]
        );
        // Even asked from between the two occurrences, the second one is not a firing.
        assert_eq!(
            daily.next_after(Berlin, utc(2026, 10, 25, 1, 0)),
            Some(utc(2026, 10, 26, 1, 30))
        );
        // New York 1 Nov: 01:30 EDT (05:30 UTC) and 01:30 EST (06:30 UTC).
        let ny = Timing::Daily { time: lt(1, 30) };
        let got = firings(&ny, New_York, utc(2026, 10, 31, 5, 30), 2);
        assert_eq!(got, vec![utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]);
    }

    #[test]
    fn weekdays_skip_the_weekend() {
        let weekdays = Timing::Weekdays { time: lt(7, 0) };
        // Friday 11 Dec 2026 after 07:00 → Monday 14 Dec.
        assert_eq!(
            weekdays.next_after(Tz::UTC, utc(2026, 12, 11, 8, 0)),
            Some(utc(2026, 12, 14, 7, 0))
        );
        let got = firings(&weekdays, Tz::UTC, utc(2026, 12, 7, 0, 0), 6);
        let days: Vec<u32> = got
            .iter()
            .map(|ms| super::super::local(*ms, Tz::UTC).unwrap().day())
            .collect();
        assert_eq!(days, vec![7, 8, 9, 10, 11, 14]);
    }

    #[test]
    fn weekly_fires_on_the_chosen_days() {
        let weekly = Timing::Weekly {
            days: vec![Weekday::Wed, Weekday::Mon],
            time: lt(8, 30),
        };
        // Tue 8 Dec → Wed 9 Dec, then Mon 14 Dec, Wed 16 Dec (Berlin, UTC+1).
        let got = firings(&weekly, Berlin, utc(2026, 12, 8, 12, 0), 3);
        assert_eq!(
            got,
            vec![
                utc(2026, 12, 9, 7, 30),
                utc(2026, 12, 14, 7, 30),
                utc(2026, 12, 16, 7, 30)
            ]
        );
        let none = Timing::Weekly {
            days: vec![],
            time: lt(8, 30),
        };
        assert_eq!(none.next_after(Berlin, 0), None);
    }

    #[test]
    fn monthly_day_31_fires_on_the_last_day_of_short_months() {
        let monthly = Timing::Monthly {
            day: 31,
            time: lt(9, 0),
        };
        let got = firings(&monthly, Tz::UTC, utc(2027, 1, 15, 0, 0), 4);
        assert_eq!(
            got,
            vec![
                utc(2027, 1, 31, 9, 0),
                utc(2027, 2, 28, 9, 0),
                utc(2027, 3, 31, 9, 0),
                utc(2027, 4, 30, 9, 0)
            ]
        );
        // Leap year February.
        assert_eq!(
            monthly.next_after(Tz::UTC, utc(2028, 2, 1, 0, 0)),
            Some(utc(2028, 2, 29, 9, 0))
        );
        let first = Timing::Monthly {
            day: 1,
            time: lt(9, 0),
        };
        assert_eq!(
            first.next_after(Berlin, utc(2026, 12, 8, 0, 0)),
            Some(utc(2027, 1, 1, 8, 0))
        );
        assert_eq!(
            Timing::Monthly {
                day: 0,
                time: lt(9, 0)
            }
            .next_after(Tz::UTC, 0),
            None
        );
        assert_eq!(
            Timing::Monthly {
                day: 32,
                time: lt(9, 0)
            }
            .next_after(Tz::UTC, 0),
            None
        );
    }

    #[test]
    fn interval_counts_from_the_anchor() {
        let anchor = utc(2026, 12, 8, 9, 0);
        let every15 = Timing::Interval {
            minutes: 15,
            anchor_ms: anchor,
        };
        let q = 15 * MINUTE_MS;
        assert_eq!(
            every15.next_after(Tz::UTC, anchor - 3_600_000),
            Some(anchor + q)
        );
        assert_eq!(every15.next_after(Tz::UTC, anchor), Some(anchor + q));
        assert_eq!(
            every15.next_after(Tz::UTC, anchor + q - 1),
            Some(anchor + q)
        );
        assert_eq!(
            every15.next_after(Tz::UTC, anchor + q),
            Some(anchor + 2 * q)
        );
        assert_eq!(
            every15.next_after(Tz::UTC, anchor + 10 * q + 5),
            Some(anchor + 11 * q)
        );
        assert_eq!(
            Timing::Interval {
                minutes: 0,
                anchor_ms: anchor
            }
            .next_after(Tz::UTC, anchor),
            None
        );
        assert!(every15.is_recurring());
    }

    #[test]
    fn describe_reads_naturally() {
        let at = utc(2026, 12, 8, 8, 0);
        assert_eq!(
            Timing::Once { at_ms: at }.describe(Berlin),
            "once on Tue 8 Dec 2026 at 09:00"
        );
        assert_eq!(
            Timing::Once { at_ms: at }.describe(New_York),
            "once on Tue 8 Dec 2026 at 03:00"
        );
        assert_eq!(
            Timing::Daily { time: lt(7, 0) }.describe(Berlin),
            "every day at 07:00"
        );
        assert_eq!(
            Timing::Weekdays { time: lt(7, 0) }.describe(Berlin),
            "every weekday at 07:00"
        );
        let weekly = |days| Timing::Weekly {
            days,
            time: lt(8, 30),
        };
        assert_eq!(
            weekly(vec![Weekday::Wed, Weekday::Mon]).describe(Berlin),
            "every Mon and Wed at 08:30"
        );
        assert_eq!(
            weekly(vec![Weekday::Fri, Weekday::Mon, Weekday::Wed]).describe(Berlin),
            "every Mon, Wed and Fri at 08:30"
        );
        assert_eq!(
            weekly(vec![Weekday::Sun]).describe(Berlin),
            "every Sun at 08:30"
        );
        assert_eq!(
            Timing::Monthly {
                day: 1,
                time: lt(9, 0)
            }
            .describe(Berlin),
            "on day 1 of every month at 09:00"
        );
        let every = |minutes| {
            Timing::Interval {
                minutes,
                anchor_ms: 0,
            }
            .describe(Berlin)
        };
        assert_eq!(every(15), "every 15 minutes");
        assert_eq!(every(1), "every minute");
        assert_eq!(every(60), "every hour");
        assert_eq!(every(120), "every 2 hours");
        assert_eq!(every(90), "every 90 minutes");
    }

    #[test]
    fn serde_shape_is_stable() {
        let cases = [
            (
                Timing::Once {
                    at_ms: 1_796_716_800_000,
                },
                r#"{"kind":"once","at_ms":1796716800000}"#,
            ),
            (
                Timing::Daily { time: lt(7, 0) },
                r#"{"kind":"daily","time":"07:00"}"#,
            ),
            (
                Timing::Weekdays { time: lt(7, 0) },
                r#"{"kind":"weekdays","time":"07:00"}"#,
            ),
            (
                Timing::Weekly {
                    days: vec![Weekday::Mon, Weekday::Wed],
                    time: lt(8, 30),
                },
                r#"{"kind":"weekly","days":["mon","wed"],"time":"08:30"}"#,
            ),
            (
                Timing::Monthly {
                    day: 1,
                    time: lt(9, 0),
                },
                r#"{"kind":"monthly","day":1,"time":"09:00"}"#,
            ),
            (
                Timing::Interval {
                    minutes: 15,
                    anchor_ms: 1_796_716_800_000,
                },
                r#"{"kind":"interval","minutes":15,"anchor_ms":1796716800000}"#,
            ),
        ];
        for (timing, json) in cases {
            assert_eq!(serde_json::to_string(&timing).unwrap(), json);
            assert_eq!(serde_json::from_str::<Timing>(json).unwrap(), timing);
        }
        assert!(
            serde_json::from_str::<Timing>(r#"{"kind":"weekly","days":["xyz"],"time":"08:30"}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<Timing>(r#"{"kind":"daily","time":"7:60"}"#).is_err());
    }
}
