//! Messages Clara sends first: alerts, reminders, scheduled tasks' answers.
//!
//! Producers (the [`Scheduler`](crate::scheduler::Scheduler), the e-mail
//! watcher through [`Proactive::alert`]) put a message in the store's outbox,
//! keyed by what it is, so producing it twice stores it once. A
//! [`ProactiveDelivery`] loop in each process that has platforms attached
//! claims due messages for its platforms (one process wins each claim) and
//! hands each to its conversation's actor, which delivers it through a
//! [`SendQueue`](crate::SendQueue) like any reply and stores it as Clara's
//! message with the event id `proactive:<key>` — so "what was that about?"
//! finds it in the window, and a message whose process died after sending is
//! recognised and not sent again. A scheduled task becomes a thought of the
//! person's, answered with their tools and memories.
//!
//! Alerts wait out the person's quiet hours; reminders and tasks come when the
//! person asked for them.

use crate::clock::Clock;
use crate::engine::Engine;
use clara_core::schedule::{QuietHours, Tz, parse_time_zone};
use clara_core::{EventId, UserId};
use clara_store::{NewProactive, ProactiveKind, ProactiveRecord, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The event id prefix of a delivered proactive message.
pub const EVENT_PREFIX: &str = "proactive:";

/// The event id a proactive message is stored with.
pub fn event_of(key: &str) -> EventId {
    EventId(format!("{EVENT_PREFIX}{key}"))
}

/// What an actor is handed to deliver.
#[derive(Debug)]
pub(crate) struct ProactiveMsg {
    /// The outbox key.
    pub(crate) key: String,
    /// What kind it is.
    pub(crate) kind: ProactiveKind,
    /// What the person reads (for a task: the prompt message stored as theirs).
    pub(crate) text: String,
    /// A task's: whose thought it becomes.
    pub(crate) author: Option<clara_core::Author>,
    /// Answered when it was delivered (or, for a task, its thought started).
    pub(crate) done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// How the outbox is worked.
#[derive(Clone, Debug)]
pub struct ProactiveConfig {
    /// How often the outbox and the schedules are looked at when nothing
    /// wakes them (another process may have added to them).
    pub poll: Duration,
    /// How long a claim holds before another process may take the message.
    pub lease: Duration,
    /// Attempts before a message is given up on.
    pub max_attempts: u32,
    /// A firing later than this is delivered with a note saying so.
    pub grace: Duration,
}

impl Default for ProactiveConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(5),
            lease: Duration::from_secs(120),
            max_attempts: 5,
            grace: Duration::from_secs(60),
        }
    }
}

/// Why a proactive message could not be delivered or queued. One sentence each.
#[derive(Debug, thiserror::Error)]
pub enum ProactiveError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No adapter of the conversation's platform runs in this process.
    #[error("no {0} adapter is running here")]
    NoAdapter(String),
    /// The person has no conversation to send it to.
    #[error("Clara has no direct conversation with this person to send it to")]
    Nowhere,
    /// The person is not known on the conversation's platform.
    #[error("this person is not known on {0}")]
    Unknown(String),
    /// The platform refused or the engine is stopping.
    #[error("{0}")]
    Failed(String),
}

/// Wakes the loops when something is due sooner than their next look.
#[derive(Debug, Default)]
pub struct ProactiveSignals {
    /// A schedule was added or changed.
    pub schedules: Notify,
    /// A message was put in the outbox.
    pub outbox: Notify,
}

/// The producer's side: puts alerts and notices in the outbox.
#[derive(Clone)]
pub struct Proactive {
    store: Store,
    signals: Arc<ProactiveSignals>,
    clock: Arc<dyn Clock>,
}

impl Proactive {
    /// Messages kept in `store`, waking the delivery loop through `signals`.
    pub fn new(store: Store, signals: Arc<ProactiveSignals>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            signals,
            clock,
        }
    }

    /// Queues an alert (or a notice) for `user`, to where their alerts go:
    /// the conversation they chose, else the direct conversation they last
    /// wrote in. Returns `false` when a message with `key` was queued before.
    pub async fn alert(
        &self,
        user: UserId,
        kind: ProactiveKind,
        key: &str,
        text: &str,
    ) -> Result<bool, ProactiveError> {
        let settings = self.store.person_settings(user).await?;
        let conversation = match settings.alerts_to {
            Some(conversation) => conversation,
            None => {
                self.store
                    .latest_direct_conversation(user)
                    .await?
                    .ok_or(ProactiveError::Nowhere)?
                    .0
            }
        };
        let queued = self
            .store
            .enqueue_proactive(&NewProactive {
                key: key.to_owned(),
                user: Some(user),
                conversation,
                kind,
                body: text.to_owned(),
                note: None,
                due_at_ms: self.clock.now_ms(),
            })
            .await?;
        if queued {
            self.signals.outbox.notify_one();
        }
        Ok(queued)
    }
}

/// The text a person reads for an outbox message (a task's is the prompt
/// message stored as theirs).
pub fn text_of(record: &ProactiveRecord) -> String {
    let body = match record.kind {
        ProactiveKind::Reminder => format!("⏰ Reminder: {}", record.body),
        ProactiveKind::Task => format!("⏰ Scheduled task: {}", record.body),
        ProactiveKind::Alert | ProactiveKind::Notice => record.body.clone(),
    };
    match &record.note {
        Some(note) => format!("{note}\n{body}"),
        None => body,
    }
}

/// The delivering side: claims due outbox messages for this process's
/// platforms and hands them to their conversations.
pub struct ProactiveDelivery {
    engine: Engine,
    clock: Arc<dyn Clock>,
    config: ProactiveConfig,
}

impl ProactiveDelivery {
    /// Delivers through `engine`'s attached platforms.
    pub fn new(engine: Engine, clock: Arc<dyn Clock>, config: ProactiveConfig) -> Self {
        Self {
            engine,
            clock,
            config,
        }
    }

    /// Delivers until `shutdown`: whenever woken, and every `poll`.
    pub async fn run(self, shutdown: CancellationToken) {
        let signals = Arc::clone(self.engine.proactive_signals());
        loop {
            match self.deliver_due().await {
                // A full batch: more may be due.
                Ok(n) if n >= BATCH as usize => continue,
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "could not read the outbox; retrying"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = signals.outbox.notified() => {}
                () = tokio::time::sleep(self.config.poll) => {}
            }
        }
    }

    /// One pass: claims what is due and delivers it. Returns how many were
    /// claimed.
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let store = self.engine.store();
        let platforms = self.engine.platforms();
        let now = self.clock.now_ms();
        let lease = i64::try_from(self.config.lease.as_millis()).unwrap_or(i64::MAX);
        let claimed = store.claim_proactive(now, &platforms, lease, BATCH).await?;
        let n = claimed.len();
        // At once: a conversation busy with a reply holds only its own message.
        let results = futures::future::join_all(
            claimed
                .into_iter()
                .map(|record| self.deliver_one(store, record, now)),
        )
        .await;
        // Delivered ones are marked in one statement: a crash before it is
        // covered by the stored event, which a second claim checks first.
        let mut sent = Vec::with_capacity(n);
        for result in results {
            sent.extend(result?);
        }
        store.proactive_sent(&sent, self.clock.now_ms()).await?;
        Ok(n)
    }

    /// Delivers one claimed message; its key when it reached the person (now
    /// or before), to be marked sent.
    async fn deliver_one(
        &self,
        store: &Store,
        record: ProactiveRecord,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        // Claimed before: the process that held it may have delivered it.
        if record.attempts > 1
            && store
                .has_event(record.conversation, &event_of(&record.key))
                .await?
        {
            return Ok(Some(record.key));
        }
        if let Some(until) = self.quiet_until(store, &record, now).await? {
            tracing::debug!(key = %record.key, until, "held for quiet hours");
            store
                .postpone_proactive(&record.key, until, Some("held for quiet hours"))
                .await?;
            return Ok(None);
        }
        match self.engine.deliver_proactive(&record).await {
            Ok(()) => {
                metrics::counter!("clara_proactive_sent_total", "kind" => record.kind.as_str())
                    .increment(1);
                Ok(Some(record.key))
            }
            Err(error) if record.attempts >= self.config.max_attempts => {
                tracing::error!(key = %record.key, %error, "a proactive message could not be delivered; giving up");
                store
                    .proactive_failed(&record.key, &error.to_string())
                    .await?;
                Ok(None)
            }
            Err(error) => {
                let retry = retry_delay(record.attempts);
                tracing::warn!(key = %record.key, %error, ?retry, "a proactive message could not be delivered; will retry");
                let at = now.saturating_add(i64::try_from(retry.as_millis()).unwrap_or(i64::MAX));
                store
                    .postpone_proactive(&record.key, at, Some(&error.to_string()))
                    .await?;
                Ok(None)
            }
        }
    }

    /// When an alert for a person in their quiet hours may go; `None` when
    /// it may go now (reminders and tasks always may: the person chose the time).
    async fn quiet_until(
        &self,
        store: &Store,
        record: &ProactiveRecord,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        if !matches!(record.kind, ProactiveKind::Alert | ProactiveKind::Notice) {
            return Ok(None);
        }
        let Some(user) = record.user else {
            return Ok(None);
        };
        let settings = store.person_settings(user).await?;
        let Some(quiet) = settings
            .quiet_hours
            .as_ref()
            .and_then(|(start, end)| QuietHours::parse(&format!("{start}-{end}")).ok())
        else {
            return Ok(None);
        };
        let tz = zone_or_utc(settings.time_zone.as_deref());
        Ok(quiet.contains(tz, now).then(|| quiet.end_after(tz, now)))
    }
}

/// Messages claimed per pass.
const BATCH: u32 = 20;

/// The person's zone, or UTC when they have none (or it no longer parses).
pub fn zone_or_utc(name: Option<&str>) -> Tz {
    name.and_then(|n| parse_time_zone(n).ok())
        .unwrap_or(Tz::UTC)
}

/// How long a failed delivery waits: 10 s, 40 s, 160 s, … up to 15 minutes.
fn retry_delay(attempts: u32) -> Duration {
    let secs = 10u64.saturating_mul(4u64.saturating_pow(attempts.saturating_sub(1)));
    Duration::from_secs(secs.min(15 * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_ceiling() {
        assert_eq!(retry_delay(1), Duration::from_secs(10));
        assert_eq!(retry_delay(2), Duration::from_secs(40));
        assert_eq!(retry_delay(9), Duration::from_secs(900));
    }

    #[test]
    fn zones_fall_back_to_utc() {
        assert_eq!(zone_or_utc(Some("Europe/Berlin")), Tz::Europe__Berlin);
        assert_eq!(zone_or_utc(Some("Mars/Olympus")), Tz::UTC);
        assert_eq!(zone_or_utc(None), Tz::UTC);
    }
}
