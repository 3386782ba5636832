//! Reminders and scheduled tasks: what fires when, durably.
//!
//! A schedule's next firing is a column. Firing is one write transaction
//! ([`Store::fire_due_schedules`]): the due rows are read, each one's next
//! firing is written and its message put in the outbox (keyed by schedule and
//! due time) before the transaction commits. The write lock (SQLite's one
//! writer, PostgreSQL's advisory lock) makes two gateways take turns, and the
//! second finds nothing due; a crash before the commit fires nothing, a crash
//! after it leaves the message in the outbox. So each firing happens once.
//! When it fires is not decided here: the caller passes the rule
//! (`clara_core::schedule::Timing`), the store only keeps its JSON.

use crate::StoreError;
use crate::backend::{in_tx, on_read, on_write};
use crate::proactive::{NewProactive, insert_proactive};
use crate::store::{Store, now_ms, parse_uuid};
use clara_core::{ChannelKind, ConversationId, ConversationRef, UserId};

/// A schedule's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScheduleId(pub uuid::Uuid);

impl ScheduleId {
    /// A fresh id.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// The first eight hex digits: how people and the CLI name it.
    pub fn short(&self) -> String {
        self.0.simple().to_string()[..8].to_owned()
    }
}

impl Default for ScheduleId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for ScheduleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What a schedule does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScheduleKind {
    /// Says its text.
    Reminder,
    /// Runs its text as a prompt and delivers the answer.
    Task,
}

impl ScheduleKind {
    /// The stable name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reminder => "reminder",
            Self::Task => "task",
        }
    }

    /// Parses [`ScheduleKind::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reminder" => Some(Self::Reminder),
            "task" => Some(Self::Task),
            _ => None,
        }
    }
}

/// A schedule to add.
#[derive(Clone, Debug, PartialEq)]
pub struct NewSchedule {
    /// Its id.
    pub id: ScheduleId,
    /// Whose it is.
    pub user: UserId,
    /// Where it is delivered.
    pub conversation: ConversationId,
    /// Reminder or task.
    pub kind: ScheduleKind,
    /// The reminder's text or the task's prompt.
    pub body: String,
    /// When it fires (`clara_core::schedule::Timing` as JSON).
    pub timing: serde_json::Value,
    /// The zone its local times are in.
    pub time_zone: String,
    /// Its first firing, Unix ms.
    pub next_at_ms: i64,
}

/// A stored schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleRecord {
    /// Its id.
    pub id: ScheduleId,
    /// Whose it is.
    pub user: UserId,
    /// Where it is delivered.
    pub conversation: ConversationId,
    /// The conversation as platforms know it.
    pub conversation_ref: ConversationRef,
    /// Reminder or task.
    pub kind: ScheduleKind,
    /// The text or prompt.
    pub body: String,
    /// When it fires, as JSON.
    pub timing: serde_json::Value,
    /// The zone of its local times.
    pub time_zone: String,
    /// Its next firing; `None` once it will not fire again.
    pub next_at_ms: Option<i64>,
    /// When it last fired.
    pub last_fired_at_ms: Option<i64>,
    /// How often it has fired.
    pub fired: u32,
    /// When it was made.
    pub created_at_ms: i64,
    /// When it was cancelled.
    pub cancelled_at_ms: Option<i64>,
}

impl ScheduleRecord {
    /// Whether it will still fire.
    pub fn is_active(&self) -> bool {
        self.next_at_ms.is_some() && self.cancelled_at_ms.is_none()
    }
}

/// What firing one due schedule does: its next firing and the message it
/// puts in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct Firing {
    /// The next firing; `None`: it is done.
    pub next_at_ms: Option<i64>,
    /// What is delivered now.
    pub message: NewProactive,
}

const COLUMNS: &str = "s.id, s.user_id, s.conversation_id, c.platform, c.channel, c.kind, s.kind, s.body, s.timing, \
                       s.time_zone, s.next_at_ms, s.last_fired_at_ms, s.fired, s.created_at_ms, s.cancelled_at_ms";
const FROM: &str = "FROM schedules s JOIN conversations c ON c.id = s.conversation_id";

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
    Option<i64>,
);

fn record(row: Row) -> Result<ScheduleRecord, StoreError> {
    let (
        id,
        user,
        conversation,
        platform,
        channel,
        channel_kind,
        kind,
        body,
        timing,
        time_zone,
        next_at_ms,
        last_fired_at_ms,
        fired,
        created_at_ms,
        cancelled_at_ms,
    ) = row;
    let bad = |what: &str, value: &str| {
        StoreError::invalid(format!("schedule {id} has unknown {what} {value:?}"))
    };
    Ok(ScheduleRecord {
        user: UserId(parse_uuid(&user, "schedules.user_id")?),
        conversation: ConversationId(parse_uuid(&conversation, "schedules.conversation_id")?),
        conversation_ref: ConversationRef {
            platform,
            channel,
            kind: ChannelKind::parse(&channel_kind)
                .ok_or_else(|| bad("channel kind", &channel_kind))?,
        },
        kind: ScheduleKind::parse(&kind).ok_or_else(|| bad("kind", &kind))?,
        body,
        timing: serde_json::from_str(&timing)
            .map_err(|e| StoreError::invalid(format!("schedule {id}'s timing is not JSON: {e}")))?,
        time_zone,
        next_at_ms,
        last_fired_at_ms,
        fired: u32::try_from(fired).unwrap_or(u32::MAX),
        created_at_ms,
        cancelled_at_ms,
        id: ScheduleId(parse_uuid(&id, "schedules.id")?),
    })
}

impl Store {
    /// Adds a schedule.
    pub async fn add_schedule(&self, schedule: &NewSchedule) -> Result<(), StoreError> {
        on_write!(&self.pools, |pool| sqlx::query(
            "INSERT INTO schedules (id, user_id, conversation_id, kind, body, timing, time_zone, next_at_ms, fired, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9)",
        )
        .bind(schedule.id.0.to_string())
        .bind(schedule.user.0.to_string())
        .bind(schedule.conversation.0.to_string())
        .bind(schedule.kind.as_str())
        .bind(&schedule.body)
        .bind(schedule.timing.to_string())
        .bind(&schedule.time_zone)
        .bind(schedule.next_at_ms)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(|e| self.err(e))
    }

    /// One schedule.
    pub async fn schedule(&self, id: ScheduleId) -> Result<Option<ScheduleRecord>, StoreError> {
        let row: Option<Row> = on_read!(&self.pools, |pool| sqlx::query_as(sqlx::AssertSqlSafe(
            format!("SELECT {COLUMNS} {FROM} WHERE s.id = $1")
        ))
        .bind(id.0.to_string())
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        row.map(record).transpose()
    }

    /// Schedules, oldest first: `user`'s or everyone's; only those that will
    /// still fire unless `include_ended`.
    pub async fn schedules(
        &self,
        user: Option<UserId>,
        include_ended: bool,
    ) -> Result<Vec<ScheduleRecord>, StoreError> {
        let rows: Vec<Row> = on_read!(&self.pools, |pool| sqlx::query_as(sqlx::AssertSqlSafe(
            format!(
                "SELECT {COLUMNS} {FROM} WHERE (CAST($1 AS TEXT) IS NULL OR s.user_id = $1) \
             AND ($2 = 1 OR (s.next_at_ms IS NOT NULL AND s.cancelled_at_ms IS NULL)) \
             ORDER BY s.created_at_ms, s.id"
            )
        ))
        .bind(user.map(|u| u.0.to_string()))
        .bind(i64::from(include_ended))
        .fetch_all(pool)
        .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(record).collect()
    }

    /// The schedules whose id starts with `prefix` (hex digits, dashes
    /// ignored), for people who name one by its first digits.
    pub async fn schedules_by_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<ScheduleRecord>, StoreError> {
        let wanted: String = prefix
            .chars()
            .filter(|c| *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if wanted.is_empty() || !wanted.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(Vec::new());
        }
        Ok(self
            .schedules(None, true)
            .await?
            .into_iter()
            .filter(|s| s.id.0.simple().to_string().starts_with(&wanted))
            .collect())
    }

    /// Cancels a schedule (only `user`'s, when given). Returns whether one
    /// was cancelled; an ended or cancelled one is left as it is.
    pub async fn cancel_schedule(
        &self,
        id: ScheduleId,
        user: Option<UserId>,
    ) -> Result<bool, StoreError> {
        let changed = on_write!(&self.pools, |pool| sqlx::query(
            "UPDATE schedules SET cancelled_at_ms = $1, next_at_ms = NULL \
             WHERE id = $2 AND (CAST($3 AS TEXT) IS NULL OR user_id = $3) AND cancelled_at_ms IS NULL AND next_at_ms IS NOT NULL",
        )
        .bind(now_ms())
        .bind(id.0.to_string())
        .bind(user.map(|u| u.0.to_string()))
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        Ok(changed > 0)
    }

    /// When the next schedule fires, if any does.
    pub async fn next_schedule_at(&self) -> Result<Option<i64>, StoreError> {
        let next: Option<(Option<i64>,)> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT MIN(next_at_ms) FROM schedules WHERE next_at_ms IS NOT NULL"
        )
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        Ok(next.and_then(|(n,)| n))
    }

    /// Fires up to `limit` schedules due at `now_ms`: for each, `plan` says
    /// its next firing and its message; both are written in one transaction
    /// with the outbox row. Returns the schedules fired, as they were.
    pub async fn fire_due_schedules(
        &self,
        now_ms: i64,
        limit: u32,
        plan: impl Fn(&ScheduleRecord) -> Firing,
    ) -> Result<Vec<ScheduleRecord>, StoreError> {
        let mut tx = self.begin_write().await?;
        let rows: Vec<Row> = in_tx!(&mut tx, |c| sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} {FROM} WHERE s.next_at_ms IS NOT NULL AND s.next_at_ms <= $1 \
             ORDER BY s.next_at_ms, s.id LIMIT $2"
        )))
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&mut *c)
        .await)
        .map_err(|e| self.err(e))?;
        let due = rows
            .into_iter()
            .map(record)
            .collect::<Result<Vec<_>, _>>()?;
        for schedule in &due {
            let firing = plan(schedule);
            insert_proactive(&mut tx, &firing.message)
                .await
                .map_err(|e| self.err(e))?;
            in_tx!(&mut tx, |c| sqlx::query(
                "UPDATE schedules SET next_at_ms = $1, last_fired_at_ms = $2, fired = fired + 1 WHERE id = $3",
            )
            .bind(firing.next_at_ms)
            .bind(now_ms)
            .bind(schedule.id.0.to_string())
            .execute(&mut *c)
            .await
            .map(|_| ()))
            .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(due)
    }
}
