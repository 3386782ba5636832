//! Reading a schedule from what a person or the CLI writes.

use super::{LocalTime, MINUTE_MS, ScheduleError, Timing, Tz, local, local_to_utc};
use chrono::{Datelike, Days, NaiveDate, Weekday};

/// Parses a schedule, resolved in `tz` at `now_ms`. Case-insensitive; "am/pm"
/// accepted ("9am", "5:30 pm"). Accepted forms:
///
/// * one-off, relative: "in 2 minutes", "in 90 seconds", "in 1 hour", "in an hour",
///   "in 3 days", "in 1h30m", "in 1 hour and 30 minutes";
/// * one-off, local: "2026-12-08 09:00", "2026-12-08T09:00", "2026-12-08 at 9am",
///   "tomorrow at 9", "tomorrow 09:30", "today at 17:00", "at 17:45" / "17:45"
///   (today if still ahead, else tomorrow), "monday at 9" / "next monday at 9"
///   (the next such day on which that time is still ahead);
/// * recurring: "every day at 7", "daily at 07:00", "every weekday at 7:00",
///   "weekdays at 7", "every weekend at 10", "every monday at 8",
///   "every mon,wed,fri at 08:30", "every monday and wednesday at 8:30",
///   "weekly on mon at 8", "monthly on 1 at 9:00", "every month on the 15th at 9";
/// * interval: "every 15 minutes", "every 2 hours", "every hour", "every 1h30m"
///   (counted from `now_ms`).
///
/// A one-off time already past is an error, not a `Once` that never fires.
pub fn parse_timing(text: &str, tz: Tz, now_ms: i64) -> Result<Timing, ScheduleError> {
    let input = text.trim();
    let norm = normalise(input);
    let unrecognised = || ScheduleError::Unrecognised(input.to_owned());
    if norm.is_empty() {
        return Err(unrecognised());
    }
    if let Some(rest) = word(&norm, "in") {
        let seconds =
            parse_duration(rest).ok_or_else(|| ScheduleError::BadDuration(input.to_owned()))?;
        let at_ms = seconds
            .checked_mul(1000)
            .and_then(|ms| now_ms.checked_add(ms))
            .ok_or_else(|| ScheduleError::OutOfRange(input.to_owned()))?;
        return Ok(Timing::Once { at_ms });
    }
    if let Some(rest) = word(&norm, "every") {
        return parse_every(rest, input, now_ms);
    }
    if let Some(rest) = word(&norm, "daily") {
        return Ok(Timing::Daily {
            time: time_part(rest, input)?,
        });
    }
    if let Some(rest) = word(&norm, "weekdays").or_else(|| word(&norm, "on weekdays")) {
        return Ok(Timing::Weekdays {
            time: time_part(rest, input)?,
        });
    }
    if let Some(rest) = word(&norm, "weekly") {
        let rest = word(rest, "on").unwrap_or(rest);
        return weekly(rest, input);
    }
    if let Some(rest) = word(&norm, "monthly") {
        return monthly(rest, input);
    }
    parse_once(&norm, input, tz, now_ms)
}

/// Lower case, single spaces, "5:30 pm" → "5:30pm", no trailing full stop.
fn normalise(text: &str) -> String {
    let lower = text.to_lowercase();
    let lower = lower.trim_end_matches(['.', '!']);
    let mut words: Vec<String> = Vec::new();
    for token in lower.split_whitespace() {
        let meridiem = matches!(token, "am" | "pm" | "a.m." | "p.m." | "a.m" | "p.m");
        match words.last_mut() {
            Some(last) if meridiem && last.bytes().last().is_some_and(|b| b.is_ascii_digit()) => {
                last.push_str(&token.replace('.', ""));
            }
            _ => words.push(token.to_owned()),
        }
    }
    words.join(" ")
}

/// `text` without a leading word `w` (followed by a space or the end).
fn word<'a>(text: &'a str, w: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(w)?;
    if rest.is_empty() {
        Some(rest)
    } else {
        rest.strip_prefix(' ')
    }
}

/// A time of day after an optional "at"; an empty part is [`ScheduleError::MissingTime`].
fn time_part(part: &str, input: &str) -> Result<LocalTime, ScheduleError> {
    let part = part.trim();
    let part = word(part, "at").unwrap_or(part).trim();
    if part.is_empty() {
        return Err(ScheduleError::MissingTime(input.to_owned()));
    }
    LocalTime::parse(part)
}

/// Splits "DAYS at TIME" / "DAYS TIME" into (DAYS, "TIME"); the time may be missing.
fn split_time(text: &str) -> (&str, &str) {
    if let Some((head, time)) = text.rsplit_once(" at ") {
        return (head, time);
    }
    if let Some(time) = word(text, "at") {
        return ("", time);
    }
    match text.rsplit_once(' ') {
        Some((head, last)) if LocalTime::parse(last).is_ok() => (head, last),
        _ => (text, ""),
    }
}

/// Everything after "every".
fn parse_every(rest: &str, input: &str, now_ms: i64) -> Result<Timing, ScheduleError> {
    for (name, make) in [
        (
            "day",
            (|time| Timing::Daily { time }) as fn(LocalTime) -> Timing,
        ),
        ("weekday", |time| Timing::Weekdays { time }),
        ("weekdays", |time| Timing::Weekdays { time }),
        ("weekend", |time| Timing::Weekly {
            days: vec![Weekday::Sat, Weekday::Sun],
            time,
        }),
    ] {
        if let Some(tail) = word(rest, name) {
            return Ok(make(time_part(tail, input)?));
        }
    }
    if let Some(tail) = word(rest, "month") {
        return monthly(tail, input);
    }
    let starts_with_digit = rest.bytes().next().is_some_and(|b| b.is_ascii_digit());
    if starts_with_digit || matches!(rest, "minute" | "min" | "hour" | "hr" | "second") {
        let bad = || ScheduleError::BadInterval(input.to_owned());
        let text = if starts_with_digit {
            rest.to_owned()
        } else {
            format!("1 {rest}")
        };
        let seconds = parse_duration(&text).ok_or_else(bad)?;
        if seconds % 60 != 0 {
            return Err(bad());
        }
        let minutes = u32::try_from(seconds / 60).map_err(|_| bad())?;
        return Ok(Timing::Interval {
            minutes,
            anchor_ms: now_ms,
        });
    }
    weekly(rest, input)
}

/// "mon,wed,fri at 08:30", "monday and wednesday 8:30" → Weekly.
fn weekly(text: &str, input: &str) -> Result<Timing, ScheduleError> {
    let (days_text, time_text) = split_time(text);
    let mut days = Vec::new();
    for name in days_text
        .split([',', ' ', '&', '/', '+'])
        .filter(|w| !w.is_empty() && *w != "and")
    {
        let day = weekday(name).ok_or_else(|| {
            if days.is_empty() && !days_text.contains([',', ' ']) {
                ScheduleError::Unrecognised(input.to_owned())
            } else {
                ScheduleError::BadWeekday(name.to_owned())
            }
        })?;
        if !days.contains(&day) {
            days.push(day);
        }
    }
    if days.is_empty() {
        return Err(ScheduleError::Unrecognised(input.to_owned()));
    }
    days.sort_by_key(Weekday::num_days_from_monday);
    Ok(Timing::Weekly {
        days,
        time: time_part(time_text, input)?,
    })
}

/// "on 1 at 9:00", "on the 15th at 9", "1st 9am" → Monthly.
fn monthly(text: &str, input: &str) -> Result<Timing, ScheduleError> {
    let text = word(text, "on").unwrap_or(text);
    let text = word(text, "the").unwrap_or(text);
    let text = word(text, "day").unwrap_or(text);
    let (day_text, rest) = text.split_once(' ').unwrap_or((text, ""));
    if day_text.is_empty() {
        return Err(ScheduleError::Unrecognised(input.to_owned()));
    }
    let digits = day_text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &day_text[digits.len()..];
    let bad_day = || ScheduleError::BadDayOfMonth(day_text.to_owned());
    if !matches!(suffix, "" | "st" | "nd" | "rd" | "th") {
        return Err(bad_day());
    }
    let day: u8 = digits.parse().map_err(|_| bad_day())?;
    if !(1..=31).contains(&day) {
        return Err(bad_day());
    }
    Ok(Timing::Monthly {
        day,
        time: time_part(rest, input)?,
    })
}

/// One-off local forms: a date, "today"/"tomorrow", a weekday, or a bare time.
fn parse_once(norm: &str, input: &str, tz: Tz, now_ms: i64) -> Result<Timing, ScheduleError> {
    let out_of_range = || ScheduleError::OutOfRange(input.to_owned());
    let today = local(now_ms, tz).ok_or_else(out_of_range)?.date_naive();
    let in_past = || ScheduleError::InPast(input.to_owned());
    let once = |date: NaiveDate, time: LocalTime| {
        let at_ms = local_to_utc(date, time, tz);
        if at_ms > now_ms {
            Ok(Timing::Once { at_ms })
        } else {
            Err(in_past())
        }
    };

    // "2026-12-08 09:00", "2026-12-08t09:00" (lower-cased), "2026-12-08 at 9".
    let first = norm.split(' ').next().unwrap_or(norm);
    let (date_text, inline_time) = first.split_once('t').unwrap_or((first, ""));
    if looks_like_date(date_text) {
        let date = NaiveDate::parse_from_str(date_text, "%Y-%m-%d")
            .map_err(|_| ScheduleError::BadDate(date_text.to_owned()))?;
        let rest = norm[first.len()..].trim();
        let time = match (inline_time, rest) {
            ("", rest) => time_part(rest, input)?,
            (time, "") => LocalTime::parse(time)?,
            _ => return Err(ScheduleError::Unrecognised(input.to_owned())),
        };
        return once(date, time);
    }
    if let Some(rest) = word(norm, "tomorrow") {
        let date = today
            .checked_add_days(Days::new(1))
            .ok_or_else(out_of_range)?;
        return once(date, time_part(rest, input)?);
    }
    if let Some(rest) = word(norm, "today").or_else(|| word(norm, "tonight")) {
        return once(today, time_part(rest, input)?);
    }
    // "monday at 9", "on monday at 9", "next monday at 9".
    let day_text = word(norm, "on")
        .or_else(|| word(norm, "next"))
        .unwrap_or(norm);
    let (name, rest) = day_text.split_once(' ').unwrap_or((day_text, ""));
    if let Some(day) = weekday(name) {
        let time = time_part(rest, input)?;
        return (0..=7)
            .filter_map(|ahead| today.checked_add_days(Days::new(ahead)))
            .filter(|date| date.weekday() == day)
            .map(|date| local_to_utc(date, time, tz))
            .find(|at_ms| *at_ms > now_ms)
            .map(|at_ms| Timing::Once { at_ms })
            .ok_or_else(out_of_range);
    }
    // "at 17:45", "17:45", "5pm": today if still ahead, else tomorrow.
    let time_text = word(norm, "at").unwrap_or(norm);
    let time =
        LocalTime::parse(time_text).map_err(|_| ScheduleError::Unrecognised(input.to_owned()))?;
    let at_ms = local_to_utc(today, time, tz);
    if at_ms > now_ms {
        return Ok(Timing::Once { at_ms });
    }
    let tomorrow = today
        .checked_add_days(Days::new(1))
        .ok_or_else(out_of_range)?;
    once(tomorrow, time)
}

/// "dddd-dd-dd"-ish: digits and dashes with two dashes, so a bad date is called a bad date.
fn looks_like_date(text: &str) -> bool {
    text.matches('-').count() == 2
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && text.bytes().next().is_some_and(|b| b.is_ascii_digit())
}

/// A day name, full, short or plural ("monday", "mon", "mondays", "tues").
fn weekday(name: &str) -> Option<Weekday> {
    let name = name
        .strip_suffix('s')
        .filter(|n| n.ends_with("day"))
        .unwrap_or(name);
    Some(match name {
        "monday" | "mon" => Weekday::Mon,
        "tuesday" | "tue" | "tues" => Weekday::Tue,
        "wednesday" | "wed" => Weekday::Wed,
        "thursday" | "thu" | "thur" | "thurs" => Weekday::Thu,
        "friday" | "fri" => Weekday::Fri,
        "saturday" | "sat" => Weekday::Sat,
        "sunday" | "sun" => Weekday::Sun,
        _ => return None,
    })
}

/// Seconds in "2 minutes", "90 seconds", "an hour", "1h30m", "1 hour and 30 minutes";
/// `None` unless every part reads and the total is positive.
fn parse_duration(text: &str) -> Option<i64> {
    let text = word(text, "an")
        .or_else(|| word(text, "a"))
        .map_or_else(|| text.to_owned(), |rest| format!("1 {rest}"));
    let compact: String = text
        .split([' ', ','])
        .filter(|w| !w.is_empty() && *w != "and")
        .collect();
    let mut total: i64 = 0;
    let mut chars = compact.chars().peekable();
    let mut parts = 0;
    while chars.peek().is_some() {
        let number: String = std::iter::from_fn(|| chars.next_if(char::is_ascii_digit)).collect();
        let unit: String =
            std::iter::from_fn(|| chars.next_if(char::is_ascii_alphabetic)).collect();
        let value: i64 = number.parse().ok()?;
        let seconds = match unit.as_str() {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "wk" | "wks" | "week" | "weeks" => 604_800,
            _ => return None,
        };
        total = total.checked_add(value.checked_mul(seconds)?)?;
        parts += 1;
    }
    // Keep the total within what `MINUTE_MS` arithmetic and chrono can carry.
    (parts > 0 && total > 0 && total < i64::MAX / MINUTE_MS).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::super::tests::utc;
    use super::*;
    use chrono_tz::{America::New_York, Europe::Berlin};

    fn lt(hour: u8, minute: u8) -> LocalTime {
        LocalTime::new(hour, minute).unwrap()
    }

    /// Tue 8 Dec 2026, 10:00 in Berlin (09:00 UTC).
    fn now() -> i64 {
        utc(2026, 12, 8, 9, 0)
    }

    fn parse(text: &str) -> Result<Timing, ScheduleError> {
        parse_timing(text, Berlin, now())
    }

    fn once(at_ms: i64) -> Result<Timing, ScheduleError> {
        Ok(Timing::Once { at_ms })
    }

    #[test]
    fn relative_one_offs() {
        assert_eq!(parse("in 2 minutes"), once(now() + 120_000));
        assert_eq!(parse("in 90 seconds"), once(now() + 90_000));
        assert_eq!(parse("in 1 hour"), once(now() + 3_600_000));
        assert_eq!(parse("In An Hour"), once(now() + 3_600_000));
        assert_eq!(parse("in 3 days"), once(now() + 3 * 86_400_000));
        assert_eq!(parse("in 1h30m"), once(now() + 5_400_000));
        assert_eq!(parse("in 1 hour and 30 minutes."), once(now() + 5_400_000));
        assert_eq!(parse("in 2 weeks"), once(now() + 14 * 86_400_000));
        for bad in ["in 0 minutes", "in soon", "in 5 fortnights", "in", "in 5"] {
            assert_eq!(
                parse(bad),
                Err(ScheduleError::BadDuration(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn local_one_offs() {
        let dec8_9 = utc(2026, 12, 8, 8, 0);
        assert_eq!(
            parse_timing("2026-12-09 09:00", Berlin, now()),
            once(dec8_9 + 86_400_000)
        );
        assert_eq!(parse("2026-12-09T09:00"), once(dec8_9 + 86_400_000));
        assert_eq!(parse("2026-12-09 at 9am"), once(dec8_9 + 86_400_000));
        assert_eq!(parse("tomorrow at 9"), once(dec8_9 + 86_400_000));
        assert_eq!(parse("Tomorrow 09:30"), once(utc(2026, 12, 9, 8, 30)));
        assert_eq!(parse("tomorrow at 5:30 pm"), once(utc(2026, 12, 9, 16, 30)));
        assert_eq!(parse("today at 17:00"), once(utc(2026, 12, 8, 16, 0)));
        // Bare times: still ahead today, else tomorrow.
        assert_eq!(parse("at 17:45"), once(utc(2026, 12, 8, 16, 45)));
        assert_eq!(parse("17:45"), once(utc(2026, 12, 8, 16, 45)));
        assert_eq!(parse("at 9am"), once(utc(2026, 12, 9, 8, 0)));
        assert_eq!(parse("10:00"), once(utc(2026, 12, 9, 9, 0)));
        // Weekdays: Tuesday now, so "tuesday at 9" is next week, "tuesday at 11" today.
        assert_eq!(parse("monday at 9"), once(utc(2026, 12, 14, 8, 0)));
        assert_eq!(parse("next tuesday at 9"), once(utc(2026, 12, 15, 8, 0)));
        assert_eq!(parse("on tuesday at 11"), once(utc(2026, 12, 8, 10, 0)));
        // Resolved in the zone given.
        assert_eq!(
            parse_timing("2026-12-09 09:00", New_York, now()),
            once(utc(2026, 12, 9, 14, 0))
        );
        // DST gap in a one-off follows the same rule.
        assert_eq!(
            parse_timing("2027-03-28 02:30", Berlin, now()),
            once(utc(2027, 3, 28, 1, 0))
        );
    }

    #[test]
    fn one_off_errors() {
        assert_eq!(
            parse("2026-12-01 09:00"),
            Err(ScheduleError::InPast("2026-12-01 09:00".into()))
        );
        assert_eq!(
            parse("today at 9"),
            Err(ScheduleError::InPast("today at 9".into()))
        );
        assert_eq!(
            parse("2026-02-30 09:00"),
            Err(ScheduleError::BadDate("2026-02-30".into()))
        );
        assert_eq!(
            parse("2026-12-09"),
            Err(ScheduleError::MissingTime("2026-12-09".into()))
        );
        assert_eq!(
            parse("tomorrow"),
            Err(ScheduleError::MissingTime("tomorrow".into()))
        );
        assert_eq!(
            parse("tomorrow at 25"),
            Err(ScheduleError::BadTime("25".into()))
        );
        assert_eq!(
            parse("whenever"),
            Err(ScheduleError::Unrecognised("whenever".into()))
        );
        assert_eq!(parse("  "), Err(ScheduleError::Unrecognised(String::new())));
        let message = parse("whenever").unwrap_err().to_string();
        assert!(
            message.starts_with("Could not read \"whenever\" as a time: try"),
            "{message}"
        );
        assert!(
            message.ends_with('.') && message.matches(". ").count() == 0,
            "{message}"
        );
    }

    #[test]
    fn daily_and_weekdays() {
        let daily = |h, m| Ok(Timing::Daily { time: lt(h, m) });
        assert_eq!(parse("every day at 7"), daily(7, 0));
        assert_eq!(parse("Daily at 07:00"), daily(7, 0));
        assert_eq!(parse("daily 7pm"), daily(19, 0));
        assert_eq!(parse("every day at 10:15 PM"), daily(22, 15));
        let weekdays = |h, m| Ok(Timing::Weekdays { time: lt(h, m) });
        assert_eq!(parse("every weekday at 7:00"), weekdays(7, 0));
        assert_eq!(parse("weekdays at 7"), weekdays(7, 0));
        assert_eq!(parse("on weekdays at 6:45am"), weekdays(6, 45));
        assert_eq!(
            parse("every day"),
            Err(ScheduleError::MissingTime("every day".into()))
        );
        assert_eq!(
            parse("every weekend at 10"),
            Ok(Timing::Weekly {
                days: vec![Weekday::Sat, Weekday::Sun],
                time: lt(10, 0)
            })
        );
    }

    #[test]
    fn weekly() {
        let weekly = |days: &[Weekday], h, m| {
            Ok(Timing::Weekly {
                days: days.to_vec(),
                time: lt(h, m),
            })
        };
        use Weekday::{Fri, Mon, Thu, Tue, Wed};
        assert_eq!(parse("every monday at 8"), weekly(&[Mon], 8, 0));
        assert_eq!(
            parse("every mon,wed,fri at 08:30"),
            weekly(&[Mon, Wed, Fri], 8, 30)
        );
        assert_eq!(
            parse("every monday and wednesday at 8:30"),
            weekly(&[Mon, Wed], 8, 30)
        );
        assert_eq!(parse("every Fri, Mon 8:30am"), weekly(&[Mon, Fri], 8, 30));
        assert_eq!(
            parse("every tues & thurs at 18:00"),
            weekly(&[Tue, Thu], 18, 0)
        );
        assert_eq!(parse("weekly on mondays at 8"), weekly(&[Mon], 8, 0));
        assert_eq!(
            parse("every mon, funday at 8"),
            Err(ScheduleError::BadWeekday("funday".into()))
        );
        assert_eq!(
            parse("every monday"),
            Err(ScheduleError::MissingTime("every monday".into()))
        );
        assert_eq!(
            parse("every fortnight"),
            Err(ScheduleError::Unrecognised("every fortnight".into()))
        );
    }

    #[test]
    fn monthly() {
        let monthly = |day, h, m| {
            Ok(Timing::Monthly {
                day,
                time: lt(h, m),
            })
        };
        assert_eq!(parse("monthly on 1 at 9:00"), monthly(1, 9, 0));
        assert_eq!(parse("every month on the 15th at 9"), monthly(15, 9, 0));
        assert_eq!(parse("monthly on the 31st at 6pm"), monthly(31, 18, 0));
        assert_eq!(parse("every month on day 2 at 9"), monthly(2, 9, 0));
        assert_eq!(
            parse("monthly on 32 at 9"),
            Err(ScheduleError::BadDayOfMonth("32".into()))
        );
        assert_eq!(
            parse("monthly on 0 at 9"),
            Err(ScheduleError::BadDayOfMonth("0".into()))
        );
        assert_eq!(
            parse("monthly on 1"),
            Err(ScheduleError::MissingTime("monthly on 1".into()))
        );
    }

    #[test]
    fn intervals() {
        let every = |minutes| {
            Ok(Timing::Interval {
                minutes,
                anchor_ms: now(),
            })
        };
        assert_eq!(parse("every 15 minutes"), every(15));
        assert_eq!(parse("every 2 hours"), every(120));
        assert_eq!(parse("every hour"), every(60));
        assert_eq!(parse("every minute"), every(1));
        assert_eq!(parse("every 1h30m"), every(90));
        assert_eq!(parse("every 2 days"), every(2880));
        for bad in ["every 30 seconds", "every 90 seconds", "every 0 minutes"] {
            assert_eq!(
                parse(bad),
                Err(ScheduleError::BadInterval(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn parsed_timings_fire_where_expected() {
        // The lead's flow: parse, then ask for the first firing after now.
        let timing = parse("every weekday at 7").unwrap();
        assert_eq!(
            timing.next_after(Berlin, now()),
            Some(utc(2026, 12, 9, 6, 0))
        );
        let timing = parse("every 15 minutes").unwrap();
        assert_eq!(
            timing.next_after(Berlin, now()),
            Some(now() + 15 * MINUTE_MS)
        );
    }
}
