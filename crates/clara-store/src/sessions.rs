//! Sessions: spans of a conversation that end after a quiet period and get a summary.

use crate::StoreError;
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
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT id, conversation_id, started_at_ms, last_activity_at_ms, ended_at_ms, summary \
             FROM sessions WHERE conversation_id = ? AND ended_at_ms IS NULL",
        )
        .bind(conversation.0.to_string())
        .fetch_optional(&self.pool)
        .await
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
        sqlx::query(
            "INSERT INTO sessions (id, conversation_id, started_at_ms, last_activity_at_ms) VALUES (?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(SessionId::new().0.to_string())
        .bind(&conversation_id)
        .bind(now_ms)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let row: SessionRow = sqlx::query_as(
            "SELECT id, conversation_id, started_at_ms, last_activity_at_ms, ended_at_ms, summary \
             FROM sessions WHERE conversation_id = ? AND ended_at_ms IS NULL",
        )
        .bind(&conversation_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        row.try_into()
    }

    /// Records activity: `last_activity_at_ms` becomes the later of its old value
    /// and `now_ms` (messages can be handled out of order).
    pub async fn touch_session(&self, session: SessionId, now_ms: i64) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET last_activity_at_ms = CASE WHEN last_activity_at_ms < ? THEN ? ELSE last_activity_at_ms END \
             WHERE id = ?",
        )
        .bind(now_ms)
        .bind(now_ms)
        .bind(session.0.to_string())
        .execute(&self.write_pool)
        .await
        .map_err(|e| self.err(e))?;
        found(done.rows_affected(), session)
    }

    /// Ends a session. Ending an ended session keeps its first end time.
    pub async fn end_session(
        &self,
        session: SessionId,
        ended_at_ms: i64,
    ) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE sessions SET ended_at_ms = COALESCE(ended_at_ms, ?) WHERE id = ?")
                .bind(ended_at_ms)
                .bind(session.0.to_string())
                .execute(&self.write_pool)
                .await
                .map_err(|e| self.err(e))?;
        found(done.rows_affected(), session)
    }

    /// Starts the conversation afresh: the messages stored so far stay, but no
    /// longer reach the window ([`Store::recent_messages`]). Flush the message
    /// writer first, or messages still in it count as after the fresh start.
    pub async fn reset_context(&self, conversation: ConversationId) -> Result<(), StoreError> {
        let id = conversation.0.to_string();
        sqlx::query(
            "UPDATE conversations SET context_after_seq = \
             (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE conversation_id = ?) WHERE id = ?",
        )
        .bind(&id)
        .bind(&id)
        .execute(&self.write_pool)
        .await
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
        let done =
            sqlx::query("UPDATE sessions SET summary = ?, summarized_at_ms = ? WHERE id = ?")
                .bind(summary)
                .bind(now_ms)
                .bind(session.0.to_string())
                .execute(&self.write_pool)
                .await
                .map_err(|e| self.err(e))?;
        found(done.rows_affected(), session)
    }

    /// The newest summary of an ended session of this conversation.
    pub async fn last_summary(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<SessionSummary>, StoreError> {
        let row: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT id, summary, ended_at_ms FROM sessions \
             WHERE conversation_id = ? AND ended_at_ms IS NOT NULL AND summary IS NOT NULL \
             ORDER BY ended_at_ms DESC, started_at_ms DESC LIMIT 1",
        )
        .bind(conversation.0.to_string())
        .fetch_optional(&self.pool)
        .await
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
        let rows: Vec<SessionRow> = sqlx::query_as(
            "SELECT id, conversation_id, started_at_ms, last_activity_at_ms, ended_at_ms, summary \
             FROM sessions WHERE ended_at_ms IS NULL AND last_activity_at_ms < ? \
             ORDER BY last_activity_at_ms, id",
        )
        .bind(idle_before_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(SessionRecord::try_from).collect()
    }

    /// A conversation's sessions, newest first, at most `limit`.
    pub async fn sessions_of(
        &self,
        conversation: ConversationId,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows: Vec<SessionRow> = sqlx::query_as(
            "SELECT id, conversation_id, started_at_ms, last_activity_at_ms, ended_at_ms, summary \
             FROM sessions WHERE conversation_id = ? ORDER BY started_at_ms DESC, id DESC LIMIT ?",
        )
        .bind(conversation.0.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(SessionRecord::try_from).collect()
    }

    /// One session by id.
    pub async fn session(&self, session: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT id, conversation_id, started_at_ms, last_activity_at_ms, ended_at_ms, summary FROM sessions WHERE id = ?",
        )
        .bind(session.0.to_string())
        .fetch_optional(&self.pool)
        .await
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
