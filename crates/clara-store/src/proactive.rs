//! Messages Clara sends first: each person's settings for them (time zone,
//! where alerts go, quiet hours) and the outbox that delivers each once.
//!
//! **Once.** A proactive message is a row keyed by what it is
//! (`schedule:<id>:<due>`, `mail:<account>:<validity>:<uid>`): producing it
//! twice — two gateways firing the same reminder, a watcher restarted before
//! it saved its place — stores it once. A process claims due rows with a lease
//! (`pending` → `sending`) inside a write transaction, so two processes never
//! claim the same row; it marks the row `sent` after delivery. A claim whose
//! process died runs out and the row is claimed again; the deliverer checks
//! [`Store::has_event`] first, since the delivered message is stored with the
//! event id `proactive:<key>`.

use crate::StoreError;
use crate::backend::{in_tx, on_read, on_write};
use crate::store::{Store, now_ms, parse_uuid};
use clara_core::{ChannelKind, ConversationId, ConversationRef, UserId};

/// A person's settings for what Clara sends unasked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersonSettings {
    /// IANA time zone, once asked or inferred.
    pub time_zone: Option<String>,
    /// Where alerts go; `None`: the direct conversation they last wrote in.
    pub alerts_to: Option<ConversationId>,
    /// Quiet hours as `("22:00", "07:00")` in their zone.
    pub quiet_hours: Option<(String, String)>,
}

/// What kind of message Clara starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProactiveKind {
    /// Something worth knowing now (a mail that matched a rule).
    Alert,
    /// A text the person asked to be reminded of.
    Reminder,
    /// A prompt Clara runs, delivering its answer.
    Task,
    /// A sentence about Clara herself (a mailbox that cannot be read).
    Notice,
}

impl ProactiveKind {
    /// The stable name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alert => "alert",
            Self::Reminder => "reminder",
            Self::Task => "task",
            Self::Notice => "notice",
        }
    }

    /// Parses [`ProactiveKind::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "alert" => Some(Self::Alert),
            "reminder" => Some(Self::Reminder),
            "task" => Some(Self::Task),
            "notice" => Some(Self::Notice),
            _ => None,
        }
    }
}

/// A message to start, as producers hand it to the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct NewProactive {
    /// What it is; the same key is stored once.
    pub key: String,
    /// Whom it is for.
    pub user: Option<UserId>,
    /// Where it goes.
    pub conversation: ConversationId,
    /// What kind it is.
    pub kind: ProactiveKind,
    /// The text to say, or the task's prompt.
    pub body: String,
    /// A note put before it (a late delivery says so).
    pub note: Option<String>,
    /// When it may go, Unix ms.
    pub due_at_ms: i64,
}

/// Where an outbox row is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProactiveStatus {
    /// Waiting for its time (or for quiet hours to end).
    Pending,
    /// Claimed by a process delivering it.
    Sending,
    /// Delivered.
    Sent,
    /// Given up on; `last_error` says why.
    Failed,
}

impl ProactiveStatus {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "sending" => Some(Self::Sending),
            "sent" => Some(Self::Sent),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// An outbox row.
#[derive(Clone, Debug, PartialEq)]
pub struct ProactiveRecord {
    /// What it is.
    pub key: String,
    /// Whom it is for.
    pub user: Option<UserId>,
    /// Where it goes.
    pub conversation: ConversationId,
    /// The conversation as platforms know it.
    pub conversation_ref: ConversationRef,
    /// What kind it is.
    pub kind: ProactiveKind,
    /// The text, or the task's prompt.
    pub body: String,
    /// A note put before it.
    pub note: Option<String>,
    /// When it may go.
    pub due_at_ms: i64,
    /// Where it is in its life.
    pub status: ProactiveStatus,
    /// Claims so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub sent_at_ms: Option<i64>,
}

/// Columns of [`Row`], with the conversation joined in as `c`.
const COLUMNS: &str = "p.key, p.user_id, p.conversation_id, c.platform, c.channel, c.kind, p.kind, p.body, \
                       p.note, p.due_at_ms, p.status, p.attempts, p.last_error, p.sent_at_ms";

type Row = (
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    String,
    i64,
    Option<String>,
    Option<i64>,
);

fn record(row: Row) -> Result<ProactiveRecord, StoreError> {
    let (
        key,
        user,
        conversation,
        platform,
        channel,
        channel_kind,
        kind,
        body,
        note,
        due_at_ms,
        status,
        attempts,
        last_error,
        sent_at_ms,
    ) = row;
    let bad = |what: &str, value: &str| {
        StoreError::invalid(format!(
            "proactive message {key} has unknown {what} {value:?}"
        ))
    };
    Ok(ProactiveRecord {
        user: user
            .map(|u| parse_uuid(&u, "proactive.user_id").map(UserId))
            .transpose()?,
        conversation: ConversationId(parse_uuid(&conversation, "proactive.conversation_id")?),
        conversation_ref: ConversationRef {
            platform,
            channel,
            kind: ChannelKind::parse(&channel_kind)
                .ok_or_else(|| bad("channel kind", &channel_kind))?,
        },
        kind: ProactiveKind::parse(&kind).ok_or_else(|| bad("kind", &kind))?,
        body,
        note,
        due_at_ms,
        status: ProactiveStatus::parse(&status).ok_or_else(|| bad("status", &status))?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        last_error,
        sent_at_ms,
        key,
    })
}

impl Store {
    /// A person's settings (defaults when they set none).
    pub async fn person_settings(&self, user: UserId) -> Result<PersonSettings, StoreError> {
        type SettingsRow = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let row: Option<SettingsRow> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT time_zone, alerts_to, quiet_start, quiet_end FROM person_settings WHERE user_id = $1",
        )
        .bind(user.0.to_string())
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        let Some((time_zone, alerts_to, quiet_start, quiet_end)) = row else {
            return Ok(PersonSettings::default());
        };
        Ok(PersonSettings {
            time_zone,
            alerts_to: alerts_to
                .map(|c| parse_uuid(&c, "person_settings.alerts_to").map(ConversationId))
                .transpose()?,
            quiet_hours: quiet_start.zip(quiet_end),
        })
    }

    /// Replaces a person's settings.
    pub async fn set_person_settings(
        &self,
        user: UserId,
        settings: &PersonSettings,
    ) -> Result<(), StoreError> {
        let (quiet_start, quiet_end) = settings.quiet_hours.clone().unzip();
        on_write!(&self.pools, |pool| sqlx::query(
            "INSERT INTO person_settings (user_id, time_zone, alerts_to, quiet_start, quiet_end, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id) DO UPDATE SET time_zone = excluded.time_zone, \
             alerts_to = excluded.alerts_to, quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end, \
             updated_at_ms = excluded.updated_at_ms",
        )
        .bind(user.0.to_string())
        .bind(&settings.time_zone)
        .bind(settings.alerts_to.map(|c| c.0.to_string()))
        .bind(quiet_start)
        .bind(quiet_end)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(|e| self.err(e))
    }

    /// The direct conversation `user` last wrote in: where alerts go unless
    /// they chose otherwise.
    pub async fn latest_direct_conversation(
        &self,
        user: UserId,
    ) -> Result<Option<(ConversationId, ConversationRef)>, StoreError> {
        let row: Option<(String, String, String)> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT c.id, c.platform, c.channel FROM messages m JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.user_id = $1 AND m.role = 'user' AND c.kind = 'direct' \
             ORDER BY m.created_at_ms DESC, m.seq DESC LIMIT 1",
        )
        .bind(user.0.to_string())
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        row.map(|(id, platform, channel)| {
            Ok((
                ConversationId(parse_uuid(&id, "conversations.id")?),
                ConversationRef {
                    platform,
                    channel,
                    kind: ChannelKind::Direct,
                },
            ))
        })
        .transpose()
    }

    /// Puts a message in the outbox. Returns `false` when one with its key
    /// was already there (it is not stored twice).
    pub async fn enqueue_proactive(&self, message: &NewProactive) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let inserted = insert_proactive(&mut tx, message)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(inserted)
    }

    /// Claims up to `limit` due messages for conversations on `platforms`,
    /// leased until `now_ms + lease_ms`; oldest first. A `sending` row whose
    /// lease ran out (its process died) is due again.
    pub async fn claim_proactive(
        &self,
        now_ms: i64,
        platforms: &[String],
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<ProactiveRecord>, StoreError> {
        if limit == 0 || platforms.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let list: Vec<String> = (0..platforms.len())
            .map(|i| format!("${}", i + 4))
            .collect();
        let due = format!(
            "SELECT p.key FROM proactive p JOIN conversations c ON c.id = p.conversation_id \
             WHERE ((p.status = 'pending' AND p.due_at_ms <= $1) OR (p.status = 'sending' AND p.claimed_until_ms <= $2)) \
             AND c.platform IN ({}) ORDER BY p.due_at_ms, p.key LIMIT $3",
            list.join(", ")
        );
        let keys: Vec<(String,)> = in_tx!(&mut tx, |c| {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(due.as_str()))
                .bind(now_ms)
                .bind(now_ms)
                .bind(i64::from(limit));
            for platform in platforms {
                query = query.bind(platform);
            }
            query.fetch_all(&mut *c).await
        })
        .map_err(|e| self.err(e))?;
        let mut claimed = Vec::with_capacity(keys.len());
        for (key,) in keys {
            in_tx!(&mut tx, |c| sqlx::query(
                "UPDATE proactive SET status = 'sending', claimed_until_ms = $1, attempts = attempts + 1 WHERE key = $2",
            )
            .bind(now_ms.saturating_add(lease_ms))
            .bind(&key)
            .execute(&mut *c)
            .await
            .map(|_| ()))
            .map_err(|e| self.err(e))?;
            let row: Row = in_tx!(&mut tx, |c| sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM proactive p JOIN conversations c ON c.id = p.conversation_id WHERE p.key = $1"
            )))
            .bind(&key)
            .fetch_one(&mut *c)
            .await)
            .map_err(|e| self.err(e))?;
            claimed.push(record(row)?);
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(claimed)
    }

    /// Marks claimed messages delivered, in one statement.
    pub async fn proactive_sent(&self, keys: &[String], at_ms: i64) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = (0..keys.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "UPDATE proactive SET status = 'sent', sent_at_ms = $1, claimed_until_ms = NULL WHERE key IN ({})",
            list.join(", ")
        );
        on_write!(&self.pools, |pool| {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(at_ms);
            for key in keys {
                query = query.bind(key);
            }
            query.execute(pool).await.map(|_| ())
        })
        .map_err(|e| self.err(e))
    }

    /// Hands a claimed message back, due again at `due_at_ms` (quiet hours,
    /// a platform that is down). `error`, when given, is kept as the reason.
    pub async fn postpone_proactive(
        &self,
        key: &str,
        due_at_ms: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        on_write!(&self.pools, |pool| sqlx::query(
            "UPDATE proactive SET status = 'pending', due_at_ms = $1, claimed_until_ms = NULL, \
             last_error = COALESCE($2, last_error) WHERE key = $3",
        )
        .bind(due_at_ms)
        .bind(error)
        .bind(key)
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(|e| self.err(e))
    }

    /// Gives up on a message; kept with its reason for the operator.
    pub async fn proactive_failed(&self, key: &str, error: &str) -> Result<(), StoreError> {
        on_write!(&self.pools, |pool| sqlx::query(
            "UPDATE proactive SET status = 'failed', last_error = $1, claimed_until_ms = NULL WHERE key = $2",
        )
        .bind(error)
        .bind(key)
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(|e| self.err(e))
    }

    /// One outbox row.
    pub async fn proactive(&self, key: &str) -> Result<Option<ProactiveRecord>, StoreError> {
        let row: Option<Row> = on_read!(&self.pools, |pool| sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM proactive p JOIN conversations c ON c.id = p.conversation_id WHERE p.key = $1"
        )))
        .bind(key)
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        row.map(record).transpose()
    }

    /// The most recent outbox rows (for `user`, or everyone's), newest first.
    pub async fn recent_proactive(
        &self,
        user: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<ProactiveRecord>, StoreError> {
        let rows: Vec<Row> = on_read!(&self.pools, |pool| sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM proactive p JOIN conversations c ON c.id = p.conversation_id \
             WHERE (CAST($1 AS TEXT) IS NULL OR p.user_id = $1) ORDER BY p.due_at_ms DESC, p.key LIMIT $2"
        )))
        .bind(user.map(|u| u.0.to_string()))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(record).collect()
    }
}

/// Inserts an outbox row inside a transaction; `false` when its key exists.
pub(crate) async fn insert_proactive(
    tx: &mut crate::backend::WriteTx,
    message: &NewProactive,
) -> Result<bool, sqlx::Error> {
    let inserted = in_tx!(tx, |c| {
        sqlx::query(
        "INSERT INTO proactive (key, user_id, conversation_id, kind, body, note, due_at_ms, status, attempts, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8) ON CONFLICT (key) DO NOTHING",
    )
    .bind(&message.key)
    .bind(message.user.map(|u| u.0.to_string()))
    .bind(message.conversation.0.to_string())
    .bind(message.kind.as_str())
    .bind(&message.body)
    .bind(&message.note)
    .bind(message.due_at_ms)
    .bind(now_ms())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(inserted > 0)
}
