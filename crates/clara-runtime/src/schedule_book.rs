//! A person's reminders and scheduled tasks, and their settings for what
//! Clara sends first: one place that the `schedule__*` tools, `clara
//! schedule` and the web page all go through, so they agree on time zones,
//! wording and who may touch what.
//!
//! Local times ("tomorrow at 9", "every weekday at 7") need the person's time
//! zone. It is asked or inferred once and remembered: a zone given with a
//! schedule becomes theirs when they had none. "In 2 minutes" needs none.

use crate::clock::Clock;
use crate::proactive::{ProactiveSignals, zone_or_utc};
use clara_core::schedule::{
    QuietHours, ScheduleError, Timing, Tz, describe_instant, parse_time_zone, parse_timing,
};
use clara_core::{ConversationId, UserId};
use clara_store::{
    NewSchedule, PersonSettings, ScheduleId, ScheduleKind, ScheduleRecord, Store, StoreError,
};
use std::sync::Arc;

/// Why a schedule could not be made, found or changed. One sentence each,
/// written for the person (the tools hand it to the model as it is).
#[derive(Debug, thiserror::Error)]
pub enum ScheduleBookError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The time or zone could not be understood.
    #[error(transparent)]
    Time(#[from] ScheduleError),
    /// A local time was given and the person's zone is unknown.
    #[error(
        "{0}'s time zone is not known yet: ask them where they are (or infer it from what they said) and pass time_zone, e.g. \"Europe/Berlin\""
    )]
    NoTimeZone(String),
    /// No schedule of theirs has that id.
    #[error("no reminder or task {0:?} of this person; list them to see the ids")]
    NotFound(String),
    /// The id names several.
    #[error("{0:?} matches several reminders or tasks; give more of the id")]
    Ambiguous(String),
    /// The text is empty.
    #[error("the {0} is empty")]
    Empty(&'static str),
}

/// A schedule as people read it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ScheduleView {
    /// Its short id.
    pub id: String,
    /// `reminder` or `task`.
    pub kind: &'static str,
    /// The text or prompt.
    pub text: String,
    /// When it fires, in words ("every weekday at 07:00").
    pub when: String,
    /// The next firing, in the person's zone; none when it has ended.
    pub next: Option<String>,
    /// The next firing, Unix ms.
    pub next_at_ms: Option<i64>,
    /// The zone.
    pub time_zone: String,
    /// Still firing.
    pub active: bool,
    /// Where it is delivered (`telegram:123`).
    pub delivered_to: String,
}

/// The settings a person reads.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AlertSettingsView {
    /// Their time zone.
    pub time_zone: Option<String>,
    /// Where alerts go, in words.
    pub alerts_to: String,
    /// Quiet hours, or none.
    pub quiet_hours: Option<String>,
}

/// What to make.
#[derive(Clone, Debug)]
pub struct ScheduleRequest<'a> {
    /// Whose it is.
    pub user: UserId,
    /// Their name, for sentences.
    pub person: &'a str,
    /// Where it is delivered.
    pub conversation: ConversationId,
    /// Reminder or task.
    pub kind: ScheduleKind,
    /// When, as people write it.
    pub when: &'a str,
    /// The text or prompt.
    pub text: &'a str,
    /// A zone given with it.
    pub time_zone: Option<&'a str>,
}

/// People's schedules and settings.
#[derive(Clone)]
pub struct ScheduleBook {
    store: Store,
    clock: Arc<dyn Clock>,
    signals: Arc<ProactiveSignals>,
}

impl ScheduleBook {
    /// The book over `store`, waking this process's scheduler through `signals`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, signals: Arc<ProactiveSignals>) -> Self {
        Self {
            store,
            clock,
            signals,
        }
    }

    /// Makes a reminder or task.
    pub async fn add(
        &self,
        request: ScheduleRequest<'_>,
    ) -> Result<ScheduleRecord, ScheduleBookError> {
        let text = request.text.trim();
        if text.is_empty() {
            return Err(ScheduleBookError::Empty(match request.kind {
                ScheduleKind::Reminder => "reminder's text",
                ScheduleKind::Task => "task's prompt",
            }));
        }
        let now = self.clock.now_ms();
        let mut settings = self.store.person_settings(request.user).await?;
        let given = request
            .time_zone
            .map(str::trim)
            .filter(|z| !z.is_empty())
            .map(parse_time_zone)
            .transpose()?;
        let known = settings
            .time_zone
            .as_deref()
            .and_then(|z| parse_time_zone(z).ok());
        let tz = match (given, known) {
            (Some(tz), _) => tz,
            (None, Some(tz)) => tz,
            (None, None) if is_relative(request.when) => Tz::UTC,
            (None, None) => return Err(ScheduleBookError::NoTimeZone(request.person.to_owned())),
        };
        let timing = parse_timing(request.when, tz, now)?;
        let next = timing
            .next_after(tz, now)
            .ok_or_else(|| ScheduleError::InPast(request.when.to_owned()))?;
        if let (Some(tz), None) = (given, known) {
            // Told once, remembered.
            settings.time_zone = Some(tz.name().to_owned());
            self.store
                .set_person_settings(request.user, &settings)
                .await?;
        }
        let schedule = NewSchedule {
            id: ScheduleId::new(),
            user: request.user,
            conversation: request.conversation,
            kind: request.kind,
            body: text.to_owned(),
            timing: timing_json(&timing),
            time_zone: tz.name().to_owned(),
            next_at_ms: next,
        };
        self.store.add_schedule(&schedule).await?;
        self.signals.schedules.notify_one();
        self.store
            .schedule(schedule.id)
            .await?
            .ok_or_else(|| ScheduleBookError::NotFound(schedule.id.short()))
    }

    /// `user`'s schedules that still fire (or everyone's), oldest first.
    pub async fn list(
        &self,
        user: Option<UserId>,
        include_ended: bool,
    ) -> Result<Vec<ScheduleRecord>, ScheduleBookError> {
        Ok(self.store.schedules(user, include_ended).await?)
    }

    /// Cancels the schedule `id` names (a whole id or its first digits);
    /// only `user`'s when given.
    pub async fn cancel(
        &self,
        user: Option<UserId>,
        id: &str,
    ) -> Result<ScheduleRecord, ScheduleBookError> {
        let id = id.trim();
        let mut found: Vec<ScheduleRecord> = self
            .store
            .schedules_by_prefix(id)
            .await?
            .into_iter()
            .filter(|s| user.is_none_or(|u| s.user == u) && s.is_active())
            .collect();
        let schedule = match found.len() {
            0 => return Err(ScheduleBookError::NotFound(id.to_owned())),
            1 => found.remove(0),
            _ => return Err(ScheduleBookError::Ambiguous(id.to_owned())),
        };
        if !self.store.cancel_schedule(schedule.id, user).await? {
            return Err(ScheduleBookError::NotFound(id.to_owned()));
        }
        self.signals.schedules.notify_one();
        Ok(schedule)
    }

    /// A schedule as people read it.
    pub fn view(&self, schedule: &ScheduleRecord) -> ScheduleView {
        let tz = zone_or_utc(Some(&schedule.time_zone));
        let when = serde_json::from_value::<Timing>(schedule.timing.clone())
            .map(|t| t.describe(tz))
            .unwrap_or_else(|_| "(unreadable timing)".to_owned());
        let next_at_ms = schedule.next_at_ms.filter(|_| schedule.is_active());
        ScheduleView {
            id: schedule.id.short(),
            kind: schedule.kind.as_str(),
            text: schedule.body.clone(),
            when,
            next: next_at_ms.map(|at| describe_instant(at, tz)),
            next_at_ms,
            time_zone: schedule.time_zone.clone(),
            active: schedule.is_active(),
            delivered_to: format!(
                "{}:{}",
                schedule.conversation_ref.platform, schedule.conversation_ref.channel
            ),
        }
    }

    /// Sets the person's time zone.
    pub async fn set_time_zone(&self, user: UserId, zone: &str) -> Result<Tz, ScheduleBookError> {
        let tz = parse_time_zone(zone)?;
        let mut settings = self.store.person_settings(user).await?;
        settings.time_zone = Some(tz.name().to_owned());
        self.store.set_person_settings(user, &settings).await?;
        Ok(tz)
    }

    /// Changes where alerts go (`Some(conversation)`; `None` leaves it) and
    /// the quiet hours (`Some("off")` clears them).
    pub async fn set_alerts(
        &self,
        user: UserId,
        alerts_to: Option<ConversationId>,
        quiet_hours: Option<&str>,
    ) -> Result<PersonSettings, ScheduleBookError> {
        let mut settings = self.store.person_settings(user).await?;
        if let Some(conversation) = alerts_to {
            settings.alerts_to = Some(conversation);
        }
        match quiet_hours.map(str::trim) {
            None => {}
            Some(off) if off.eq_ignore_ascii_case("off") || off.eq_ignore_ascii_case("none") => {
                settings.quiet_hours = None;
            }
            Some(text) => {
                let quiet = QuietHours::parse(text)?;
                settings.quiet_hours = quiet
                    .is_set()
                    .then(|| (quiet.start.to_string(), quiet.end.to_string()));
            }
        }
        self.store.set_person_settings(user, &settings).await?;
        Ok(settings)
    }

    /// Sends the person's alerts back to the default (the direct
    /// conversation they last wrote in) — only if they now go to `only_from`,
    /// when given (unticking "send alerts here" leaves another choice alone).
    pub async fn reset_alerts_to(
        &self,
        user: UserId,
        only_from: Option<ConversationId>,
    ) -> Result<(), ScheduleBookError> {
        let mut settings = self.store.person_settings(user).await?;
        if settings.alerts_to.is_some() && only_from.is_none_or(|c| settings.alerts_to == Some(c)) {
            settings.alerts_to = None;
            self.store.set_person_settings(user, &settings).await?;
        }
        Ok(())
    }

    /// The person's settings, in words.
    pub async fn alert_settings(
        &self,
        user: UserId,
    ) -> Result<AlertSettingsView, ScheduleBookError> {
        let settings = self.store.person_settings(user).await?;
        let alerts_to = match settings.alerts_to {
            Some(conversation) => match self.store.conversation_ref(conversation).await? {
                Some(c) => format!("{}:{}", c.platform, c.channel),
                None => "the direct conversation they last wrote in".to_owned(),
            },
            None => "the direct conversation they last wrote in".to_owned(),
        };
        Ok(AlertSettingsView {
            time_zone: settings.time_zone,
            alerts_to,
            quiet_hours: settings
                .quiet_hours
                .map(|(start, end)| format!("{start}–{end}")),
        })
    }
}

/// "in 2 minutes", "in 1h30m": an instant that needs no time zone.
fn is_relative(when: &str) -> bool {
    when.trim().to_ascii_lowercase().starts_with("in ")
}

fn timing_json(timing: &Timing) -> serde_json::Value {
    // A plain enum of numbers and strings: serialising it cannot fail.
    serde_json::to_value(timing).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_need_no_zone() {
        assert!(is_relative("in 2 minutes"));
        assert!(is_relative(" In 1h30m"));
        assert!(!is_relative("tomorrow at 9"));
        assert!(!is_relative("every weekday at 7"));
    }
}
