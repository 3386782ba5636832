//! Sessions: spans of a conversation that end after a quiet period and get a summary.

use crate::StoreError;
use crate::backend::{in_tx, on_read, on_write};
use crate::store::{Store, parse_uuid};
use clara_core::{ConversationId, SessionId};

/// One session of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// Its id.
    pub id: SessionId,
    /// The conversation it belongs to.
    pub conversation: ConversationId,
    /// When it started, Unix ms.
    pub started_at_ms: i64,
    /// The newest activity in it, Unix ms.
    pub last_activity_at_ms: i64,
    /// When it ended; `None` while it is open.
    pub ended_at_ms: Option<i64>,
    /// Its summary, once written.
    pub summary: Option<String>,
}

/// The summary of an ended session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSummary {
    /// The session.
    pub session: SessionId,
    /// What the model wrote.
    pub summary: String,
    /// When the session ended, Unix ms.
    pub ended_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: String,
    conversation_id: String,
    started_at_ms: i64,
    last_activity_at_ms: i64,
    ended_at_ms: Option<i64>,
    summary: Option<String>,
}

impl TryFrom<SessionRow> for SessionRecord {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(SessionRecord {
            id: SessionId(parse_uuid(&r.id, "sessions.id")?),
            conversation: ConversationId(parse_uuid(
                &r.conversation_id,
                "sessions.conversation_id",
            )?),
            started_at_ms: r.started_at_ms,
            last_activity_at_ms: r.last_activity_at_ms,
            ended_at_ms: r.ended_at_ms,
            summary: r.summary,
        })
    }
}

impl Store {
    /// The open session of a conversation, if there is one.
    pub async fn current_session(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<SessionRow> = on_read!(&self.pools, |pool| {
            sqlx::query_as(
            "SELECT id, conversation_id, started_at_ms, last_activity_at_ms, ended_at_ms, summary \
             FROM sessions WHERE conversation_id = $1 AND ended_at_ms IS NULL",
        )
        .bind(conversation.0.to_string())
        .fetch_optional(pool)
        .await
        })
        .map_err(|e| self.err(e))?;
        row.map(SessionRecord::try_from).transpose()
    }

    /// Starts a session in a conversation.
    ///
    /// A conversation has at most one open session: when one is already open (for
    /// example another worker just started it) that one is returned unchanged, so
    /// callers racing here all end up in the same session.
    pub async fn start_session(
        &self,
        conversation: ConversationId,
        now_ms: i64,
    ) -> Result<SessionRecord, StoreError> {
        let conversation_id = conversation.0.to_string();
        let mut tx = self.begin_write().await?;
        in_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO sessions (id, conversation_id, started_at_ms, last_activity_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(SessionId::new().0.to_string())
        .bind(&conversation_id)
        .bind(now_ms)
        .bind(now_ms)
        .execute(&mut *c)
        .await
.map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        let row: SessionRow = in_tx!(&mut tx, |c| {
            sqlx::query_as(
            "SELECT id, conversation_id, started_at_ms, last_activity_at_ms, ended_at_ms, summary \
             FROM sessions WHERE conversation_id = $1 AND ended_at_ms IS NULL",
        )
        .bind(&conversation_id)
        .fetch_one(&mut *c)
        .await
        })
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        row.try_into()
    }

    /// Records activity: `last_activity_at_ms` becomes the later of its old value
    /// and `now_ms` (messages can be handled out of order).
    pub async fn touch_session(&self, session: SessionId, now_ms: i64) -> Result<(), StoreError> {
        let done = on_write!(&self.pools, |pool| sqlx::query(
            "UPDATE sessions SET last_activity_at_ms = CASE WHEN last_activity_at_ms < $1 THEN $2 ELSE last_activity_at_ms END \
             WHERE id = $3",
        )
        .bind(now_ms)
        .bind(now_ms)
        .bind(session.0.to_string())
        .execute(pool)
        .await
.map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        found(done, session)
    }

    /// Ends a session. Ending an ended session keeps its first end time.
    pub async fn end_session(
        &self,
        session: SessionId,
        ended_at_ms: i64,
    ) -> Result<(), StoreError> {
        let done = on_write!(&self.pools, |pool| sqlx::query(
            "UPDATE sessions SET ended_at_ms = COALESCE(ended_at_ms, $1) WHERE id = $2"
        )
        .bind(ended_at_ms)
        .bind(session.0.to_string())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        found(done, session)
    }

    /// Starts the conversation afresh: the messages stored so far stay, but no
    /// longer reach the window ([`Store::recent_messages`]). Flush the message
    /// writer first, or messages still in it count as after the fresh start.
    pub async fn reset_context(&self, conversation: ConversationId) -> Result<(), StoreError> {
        let id = conversation.0.to_string();
        on_write!(&self.pools, |pool| sqlx::query(
            "UPDATE conversations SET context_after_seq = \
             (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE conversation_id = $1) WHERE id = $2",
        )
        .bind(&id)
        .bind(&id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Stores (or replaces) a session's summary.
    pub async fn set_session_summary(
        &self,
        session: SessionId,
        summary: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let done = on_write!(&self.pools, |pool| sqlx::query(
            "UPDATE sessions SET summary = $1, summarized_at_ms = $2 WHERE id = $3"
        )
        .bind(summary)
        .bind(now_ms)
        .bind(session.0.to_string())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        found(done, session)
    }

    /// The newest summary of an ended session of this conversation.
    pub async fn last_summary(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<SessionSummary>, StoreError> {
        let row: Option<(String, String, i64)> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT id, summary, ended_at_ms FROM sessions \
             WHERE conversation_id = $1 AND ended_at_ms IS NOT NULL AND summary IS NOT NULL \
             ORDER BY ended_at_ms DESC, started_at_ms DESC LIMIT 1",
        )
        .bind(conversation.0.to_string())
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        row.map(|(id, summary, ended_at_ms)| {
            Ok(SessionSummary {
                session: SessionId(parse_uuid(&id, "sessions.id")?),
                summary,
                ended_at_ms,
            })
        })
        .transpose()
    }

    /// Open sessions whose last activity is before `idle_before_ms`, least recently
    /// active first (to be ended and summarised).
    pub async fn idle_sessions(
        &self,
        idle_before_ms: i64,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows: Vec<SessionRow> = on_read!(&self.pools, |pool| {
            sqlx::query_as(
            "SELECT id, conversation_id, started_at_ms, last_activity_at_ms, ended_at_ms, summary \
             FROM sessions WHERE ended_at_ms IS NULL AND last_activity_at_ms < $1 \
             ORDER BY last_activity_at_ms, id",
        )
        .bind(idle_before_ms)
        .fetch_all(pool)
        .await
        })
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(SessionRecord::try_from).collect()
    }

    /// A conversation's sessions, newest first, at most `limit`.
    pub async fn sessions_of(
        &self,
        conversation: ConversationId,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows: Vec<SessionRow> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT id, conversation_id, started_at_ms, last_activity_at_ms, ended_at_ms, summary \
             FROM sessions WHERE conversation_id = $1 ORDER BY started_at_ms DESC, id DESC LIMIT $2",
        )
        .bind(conversation.0.to_string())
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(SessionRecord::try_from).collect()
    }

    /// One session by id.
    pub async fn session(&self, session: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<SessionRow> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT id, conversation_id, started_at_ms, last_activity_at_ms, ended_at_ms, summary FROM sessions WHERE id = $1",
        )
        .bind(session.0.to_string())
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        row.map(SessionRecord::try_from).transpose()
    }
}

fn found(rows: u64, session: SessionId) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::not_found(format!("session {session}")))
    } else {
        Ok(())
    }
}
