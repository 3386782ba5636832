//! Fires reminders and scheduled tasks when they are due.
//!
//! A firing is one store transaction ([`Store::fire_due_schedules`]): the
//! schedule's next time is written and its message goes into the outbox,
//! keyed by schedule and due time, so two gateways on one database fire each
//! once. The next time is counted from now, not from the missed time: a
//! daily reminder missed for three days while Clara was down is delivered
//! once, late, with a note saying so — not three times, and not silently
//! dropped.

use crate::clock::Clock;
use crate::proactive::{ProactiveConfig, ProactiveSignals, zone_or_utc};
use clara_core::schedule::{Timing, late_note, lateness};
use clara_store::{
    Firing, NewProactive, ProactiveKind, ScheduleKind, ScheduleRecord, Store, StoreError,
};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Schedules fired per pass.
const BATCH: u32 = 50;

/// Fires due schedules into the outbox.
pub struct Scheduler {
    store: Store,
    clock: Arc<dyn Clock>,
    signals: Arc<ProactiveSignals>,
    config: ProactiveConfig,
}

impl Scheduler {
    /// A scheduler over `store`'s schedules, waking the outbox through `signals`.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        signals: Arc<ProactiveSignals>,
        config: ProactiveConfig,
    ) -> Self {
        Self {
            store,
            clock,
            signals,
            config,
        }
    }

    /// Fires until `shutdown`: at the next due time, when a schedule changes
    /// here, and every `poll` (another process may have added one).
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let wait = match self.fire_due().await {
                Ok(n) if n >= BATCH as usize => Duration::ZERO,
                Ok(_) => self.until_next().await,
                Err(error) => {
                    tracing::warn!(%error, "could not fire due schedules; retrying");
                    self.config.poll
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.signals.schedules.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// How long to sleep: until the next firing, at most `poll`.
    async fn until_next(&self) -> Duration {
        let next = self.store.next_schedule_at().await.ok().flatten();
        let now = self.clock.now_ms();
        match next {
            Some(at) => {
                Duration::from_millis(u64::try_from(at - now).unwrap_or(0)).min(self.config.poll)
            }
            None => self.config.poll,
        }
    }

    /// One pass: fires what is due now. Returns how many fired.
    pub async fn fire_due(&self) -> Result<usize, StoreError> {
        let now = self.clock.now_ms();
        let grace = i64::try_from(self.config.grace.as_millis()).unwrap_or(i64::MAX);
        let fired = self
            .store
            .fire_due_schedules(now, BATCH, |schedule| plan(schedule, now, grace))
            .await?;
        if !fired.is_empty() {
            for schedule in &fired {
                tracing::info!(schedule = %schedule.id.short(), kind = schedule.kind.as_str(), "schedule fired");
            }
            self.signals.outbox.notify_one();
        }
        Ok(fired.len())
    }
}

/// What firing `schedule` at `now_ms` does: its message (late ones say so)
/// and its next time, counted from now so missed firings are not repeated.
pub fn plan(schedule: &ScheduleRecord, now_ms: i64, grace_ms: i64) -> Firing {
    let tz = zone_or_utc(Some(&schedule.time_zone));
    let due = schedule.next_at_ms.unwrap_or(now_ms);
    let next_at_ms = match serde_json::from_value::<Timing>(schedule.timing.clone()) {
        Ok(timing) => timing.next_after(tz, now_ms.max(due)),
        Err(error) => {
            // Delivered now; it cannot say when it would fire next.
            tracing::error!(schedule = %schedule.id, %error, "a schedule's timing cannot be read; it fires once more and stops");
            None
        }
    };
    let note = lateness(due, now_ms, grace_ms).map(|_| late_note(due, tz));
    Firing {
        next_at_ms,
        message: NewProactive {
            key: format!("schedule:{}:{due}", schedule.id),
            user: Some(schedule.user),
            conversation: schedule.conversation,
            kind: match schedule.kind {
                ScheduleKind::Reminder => ProactiveKind::Reminder,
                ScheduleKind::Task => ProactiveKind::Task,
            },
            body: schedule.body.clone(),
            note,
            due_at_ms: now_ms,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clara_core::schedule::LocalTime;
    use clara_core::{ChannelKind, ConversationId, ConversationRef, UserId};
    use clara_store::ScheduleId;

    fn schedule(timing: &Timing, next_at_ms: i64) -> ScheduleRecord {
        ScheduleRecord {
            id: ScheduleId::new(),
            user: UserId::new(),
            conversation: ConversationId::new(),
            conversation_ref: ConversationRef {
                platform: "telegram".into(),
                channel: "1".into(),
                kind: ChannelKind::Direct,
            },
            kind: ScheduleKind::Reminder,
            body: "stretch".into(),
            timing: serde_json::to_value(timing).unwrap(),
            time_zone: "Europe/Berlin".into(),
            next_at_ms: Some(next_at_ms),
            last_fired_at_ms: None,
            fired: 0,
            created_at_ms: 0,
            cancelled_at_ms: None,
        }
    }

    const DAY: i64 = 86_400_000;
    // 2026-12-08 08:00 UTC = 09:00 in Berlin.
    const NINE_BERLIN: i64 = 1_796_716_800_000;

    #[test]
    fn on_time_has_no_note_and_the_next_is_tomorrow() {
        let daily = Timing::Daily {
            time: LocalTime { hour: 9, minute: 0 },
        };
        let s = schedule(&daily, NINE_BERLIN);
        let firing = plan(&s, NINE_BERLIN + 500, 60_000);
        assert_eq!(firing.message.note, None);
        assert_eq!(firing.next_at_ms, Some(NINE_BERLIN + DAY));
        assert_eq!(
            firing.message.key,
            format!("schedule:{}:{NINE_BERLIN}", s.id)
        );
    }

    #[test]
    fn missed_days_fire_once_late_with_a_note() {
        let daily = Timing::Daily {
            time: LocalTime { hour: 9, minute: 0 },
        };
        let s = schedule(&daily, NINE_BERLIN);
        let now = NINE_BERLIN + 3 * DAY + 3_600_000;
        let firing = plan(&s, now, 60_000);
        let note = firing.message.note.unwrap();
        assert!(note.contains("09:00"), "{note}");
        // The next is the coming 09:00, not one of the missed ones.
        assert_eq!(firing.next_at_ms, Some(NINE_BERLIN + 4 * DAY));
    }

    #[test]
    fn a_one_off_ends_and_an_unreadable_timing_stops() {
        let once = Timing::Once { at_ms: NINE_BERLIN };
        assert_eq!(
            plan(&schedule(&once, NINE_BERLIN), NINE_BERLIN, 60_000).next_at_ms,
            None
        );
        let mut broken = schedule(&once, NINE_BERLIN);
        broken.timing = serde_json::json!({"kind": "fortnightly"});
        let firing = plan(&broken, NINE_BERLIN, 60_000);
        assert_eq!(firing.next_at_ms, None);
        assert_eq!(firing.message.body, "stretch");
    }
}
